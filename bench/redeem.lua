-- POST /api/tokens/redeem, each request with the next unused token from
-- $GATEHOUSE_BENCH_TOKENS (written by create.lua). Run with one thread so
-- no token is sent twice; a token sent twice would answer 409 and the run
-- would be reported as failed.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = os.getenv("GATEHOUSE_BENCH_KEY")
local action = '{"tool_name":"issue_refund","subject":"Issue a $500 refund to customer cus_99","payload":{"amount":500,"currency":"usd","customer_id":"cus_99"}}'
local tokens = {}
for line in io.lines(os.getenv("GATEHOUSE_BENCH_TOKENS")) do
  tokens[#tokens + 1] = line
end
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, '{"token":"' .. tokens[((n - 1) % #tokens) + 1] .. '","action":' .. action .. '}')
end
