-- wrk script: POST /webhook, each request a different pre-signed body from a pool file.
--
--   wrk -s bench/ack.lua <url> -- <pool file> <path>
--
-- The pool file has one `<X-Hub-Signature-256>\t<body>` line per request (bench/bodies.py).
-- Each wrk thread takes every n-th line, so no two threads send the same body; a thread that
-- runs past the end of its share starts over, and `done` reports how often that happened (a
-- wrapped pool means duplicates, which are cheaper for the server: the runner sizes pools so
-- that it does not happen, and flags the figure when it does).

local thread_count = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  local pool_file, path = args[1], args[2] or "/webhook"
  local n = 0
  requests = {}
  wraps = 0
  cursor = 0
  -- The runner passes wrk's -t in WRK_THREADS (a thread cannot see the others' setup()).
  local stride = tonumber(os.getenv("WRK_THREADS") or "1")
  for line in io.lines(pool_file) do
    if n % stride == thread_id then
      local tab = line:find("\t", 1, true)
      local headers = {
        ["Content-Type"] = "application/json",
        ["X-Hub-Signature-256"] = line:sub(1, tab - 1),
      }
      requests[#requests + 1] = wrk.format("POST", path, headers, line:sub(tab + 1))
    end
    n = n + 1
  end
  if #requests == 0 then
    error("empty pool share for thread " .. thread_id .. " in " .. pool_file)
  end
end

function request()
  cursor = cursor + 1
  if cursor > #requests then
    cursor = 1
    wraps = wraps + 1
  end
  return requests[cursor]
end

function done(summary, latency, _)
  local wrapped = 0
  for _, thread in ipairs(threads) do
    wrapped = wrapped + thread:get("wraps")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"non2xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"pool_wraps":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean,
    e.status, e.connect, e.read, e.write, e.timeout, wrapped))
end
