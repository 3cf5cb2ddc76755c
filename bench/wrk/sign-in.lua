-- POST /api/v1/auth/login with the right password, on every request.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_CREDENTIALS")
wrk.headers["Content-Type"] = "application/json"
