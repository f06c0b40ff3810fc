-- POST /api/decide with the billing example from the product pages.
-- Half the requests are allowed and half go to review (discount_percent is
-- the same; risk alternates), so both outcomes are measured.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = os.getenv("GATEHOUSE_BENCH_KEY")
local bodies = {
  '{"question":"Approve annual-plan discount exception before billing update?","mode":"single","context":{"workflow":"billing_discount_gate","customer_id":"cus_1","invoice_or_subscription_id":"sub_1","requested_action":"apply_discount","discount_percent":15,"margin_floor":"passed","owner_rule":"verified","risk":"low"}}',
  '{"question":"Approve annual-plan discount exception before billing update?","mode":"single","context":{"workflow":"billing_discount_gate","customer_id":"cus_2","invoice_or_subscription_id":"sub_2","requested_action":"apply_discount","discount_percent":15,"margin_floor":"passed","owner_rule":"verified","risk":"high"}}'
}
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[(n % 2) + 1])
end
