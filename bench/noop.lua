-- The ceiling: an authenticated no-op (key lookup, rate-limit check, JSON
-- answer) on the same server, measured in the same run as decide.
wrk.headers["x-api-key"] = os.getenv("GATEHOUSE_BENCH_KEY")
