-- wrk script: POST one request per call with a fresh sequential X-WX-OPENID,
-- "{BENCH_OPENID_PREFIX}{thread}_{n}" (thread = 1, 2, ...; n = 0, 1, 2, ... per thread), so every
-- login writes a new session key and every bind finds the pending bind the harness seeded for
-- it. The same request goes to the stub and nginx (they ignore the headers). Settings come from
-- the environment (bench/drivers.py sets them). done() prints one JSON line that
-- bench/drivers.py parses.
local path = os.getenv("BENCH_PATH") or "/api/v1/login"
local secret = os.getenv("BENCH_GATEWAY_SECRET") or ""
local body = os.getenv("BENCH_BODY") or '{"code":"bench-wx-code"}'
local prefix = os.getenv("BENCH_OPENID_PREFIX") or "o_b"
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

local head = nil
local n = 0

function init(args)
  head = prefix .. id .. "_"
end

function request()
  local openid = head .. n
  n = n + 1
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["X-Gateway-Secret"] = secret,
    ["X-WX-OPENID"] = openid,
    ["X-operating-sys-version"] = "iOS 17.4",
    ["X-device-fingerprint"] = "bench-fingerprint",
    ["User-Agent"] = "bench/1.0",
  }, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
