-- wrk script of `bench/run`: cycles through the request paths of a file, one per line,
-- with the API key from the environment, and prints the figures as one JSON line.
local paths = {}
local key = os.getenv("CLOUDPF_BENCH_KEY") or ""
local file = os.getenv("CLOUDPF_BENCH_PATHS")
if file and #file > 0 then
  for line in io.lines(file) do
    if #line > 0 then paths[#paths + 1] = line end
  end
end
if #paths == 0 then paths[1] = "/health" end

local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  -- Each thread starts at its own place in the list, so threads do not send the same
  -- request at the same time.
  counter = (id or 0) * 7919
end

function request()
  counter = counter + 1
  local path = paths[(counter % #paths) + 1]
  return wrk.format("GET", path, { ["X-API-Key"] = key })
end

function done(summary, latency, requests)
  local s = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "timeouts": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, s.status, s.connect, s.read, s.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
