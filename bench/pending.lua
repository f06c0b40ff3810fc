-- POST a high-risk Gate request, which the starter policies send to
-- review: fills the console's queue for bench/console.sh.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = os.getenv("GATEHOUSE_BENCH_KEY")
wrk.body = '{"workflow_name":"Customer Support","task_label":"Refund request","tool_name":"issue_refund","subject":"cus_99","risk_level":"high","payload":{"amount":50000,"currency":"usd","customer_id":"cus_99"}}'
