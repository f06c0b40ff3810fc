-- POST a low-risk Gate request (allowed under the starter policies) and
-- write each answer's approval token to $GATEHOUSE_BENCH_TOKENS, one per
-- line, for redeem.lua. Run with one thread: the file handle is per thread.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = os.getenv("GATEHOUSE_BENCH_KEY")
wrk.body = '{"workflow_name":"Customer Support","task_label":"Refund request","tool_name":"issue_refund","subject":"Issue a $500 refund to customer cus_99","risk_level":"low","payload":{"amount":500,"currency":"usd","customer_id":"cus_99"}}'
local out = io.open(os.getenv("GATEHOUSE_BENCH_TOKENS"), "a")
response = function(status, headers, body)
  local token = string.match(body, '"approval_token":"([^"]+)"')
  if token then
    out:write(token, "\n")
    out:flush()
  end
end
