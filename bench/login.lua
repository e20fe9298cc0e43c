-- wrk script: POST one login per request, each with a fresh random X-WX-OPENID, so every bff
-- login writes a new session key. The same request goes to the stub and nginx (they ignore the
-- headers). Settings come from the environment (bench/wrk.py sets them). done() prints one
-- JSON line that bench/wrk.py parses.
local path = os.getenv("BENCH_PATH") or "/api/v1/login"
local secret = os.getenv("BENCH_GATEWAY_SECRET") or ""
local body = '{"code":"bench-wx-code"}'
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + id * 7919)
end

function request()
  local openid = string.format("wb%08x%08x%04x", math.random(0, 0x7fffffff),
    math.random(0, 0x7fffffff), math.random(0, 0xffff))
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
