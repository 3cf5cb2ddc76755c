-- POST /api/v1/tasks: a new task with two checklist items on every request.
wrk.method = "POST"
wrk.body = '{"title":"Benchmark","checklist":["one","two"]}'
wrk.headers["Content-Type"] = "application/json"
