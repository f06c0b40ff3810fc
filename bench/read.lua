-- GET an allowed Gate request ($GATEHOUSE_BENCH_PATH): the answer carries
-- may_proceed and the approval token, so every request runs the check that
-- the stored approval is supported by the signed log.
wrk.method = "GET"
wrk.headers["x-api-key"] = os.getenv("GATEHOUSE_BENCH_KEY")
wrk.path = os.getenv("GATEHOUSE_BENCH_PATH")
