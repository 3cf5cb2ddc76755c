-- PATCH /api/v1/tasks/{id} with If-Match: each request changes a task of
-- $BENCH_TASKS ("<id> <version>" per line) at the version it has, each thread taking
-- every $BENCH_THREADS-th task, so no two requests change one task. A run that sends
-- more requests than there are tasks comes round again, and those get 412: bench/run
-- reports them.
local tasks = {}
for line in io.lines(os.getenv("BENCH_TASKS")) do
  local id, version = line:match("^(%S+) (%S+)$")
  tasks[#tasks + 1] = { id = id, version = version }
end
local step = tonumber(os.getenv("BENCH_THREADS"))
local threads = 0

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

local sent = 0

function request()
  local task = tasks[(offset + sent * step) % #tasks + 1]
  sent = sent + 1
  local headers = {}
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
  headers["Content-Type"] = "application/json"
  headers["If-Match"] = '"' .. task.version .. '"'
  return wrk.format("PATCH", "/api/v1/tasks/" .. task.id, headers, '{"title":"Benchmarked"}')
end
