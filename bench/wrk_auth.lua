-- wrk script for forward-auth checks (bench/auth.py): a GET of BENCH_PATH with
-- "Authorization: Bearer <handle>", cycling through the comma-separated BENCH_HANDLES (each
-- thread starts at its own offset). done() prints one JSON line, as bench/wrk.lua does.
local path = os.getenv("BENCH_PATH") or "/company/orders"
local handles = {}
for handle in string.gmatch(os.getenv("BENCH_HANDLES") or "", "[^,]+") do
  table.insert(handles, handle)
end
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

local n = 0

function init(args)
  n = (id or 1) * 7919
end

function request()
  n = n + 1
  return wrk.format("GET", path, {
    ["Authorization"] = "Bearer " .. handles[(n % #handles) + 1],
    ["X-operating-sys-version"] = "iOS 17.4",
    ["X-device-fingerprint"] = "bench-fingerprint",
    ["User-Agent"] = "bench/1.0",
  })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
