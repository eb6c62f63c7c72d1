-- wrk script of bench/http: one endpoint per run, chosen by RG_MODE.
--
--   healthz  GET /healthz
--   score    POST /risk/bin/score; amount, card last4, user, session and
--            order number change with every request, the device (RG_DEVICE,
--            an ingested and ready request id) stays the same
--   ingest   POST /fingerprint/ingest with a new request id every time, so
--            each answer is a durable fetch job, not a cache hit
--
-- The API key comes from the environment (RG_API_KEY), not the command line,
-- so that it does not show in the process list. RG_PREFIX keeps the ids of
-- one wrk run apart from every other run's (rounds, processes).
--
-- done() writes RG_OUT: the summary as "name value" lines, then the latency
-- histogram ("hist <microseconds> <count>"), which lets bench/http merge the
-- p99 of two wrk processes exactly.

local mode = os.getenv("RG_MODE") or "healthz"
local api_key = os.getenv("RG_API_KEY") or ""
local subscriber = os.getenv("RG_SUBSCRIBER") or ""
local device = os.getenv("RG_DEVICE") or ""
local prefix = os.getenv("RG_PREFIX") or "b"
local out_path = os.getenv("RG_OUT")

if mode ~= "healthz" and mode ~= "score" and mode ~= "ingest" then
  error("RG_MODE must be healthz, score or ingest, not " .. mode)
end

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

-- Per thread (each wrk thread has its own Lua state).
counter = 0
non2xx = 0
first_bad = ""
local tag = prefix
local healthz_request = nil
local headers = { ["Content-Type"] = "application/json", ["X-API-Key"] = api_key }

-- Real BINs of a few card ranges (Visa, Mastercard, Amex, Discover, JCB).
local bins = { "411111", "424242", "555555", "378282", "601100", "356611" }

function init(args)
  tag = prefix .. "t" .. tostring(thread_id or 0)
  healthz_request = wrk.format("GET", "/healthz")
end

local function score_body(n)
  -- Amounts from 10.00 to 899.99; the multipliers only spread neighbours apart.
  local cents = 1000 + (n * 7919) % 89000
  local user = n % 10000
  return string.format(
    '{"request_id":"%s","subscriber_id":"%s","payload":{'
      .. '"transaction_amount":%d.%02d,"currency":"USD","bin":"%s","last4":"%04d",'
      .. '"user_id":"u-%d","session_id":"s-%s-%d","external_transaction_number":"tx-%s-%d",'
      .. '"ip_address":"203.0.113.%d","email":"user%d@example.com","billing_country":"US"}}',
    device, subscriber, math.floor(cents / 100), cents % 100, bins[n % #bins + 1],
    (n * 7207) % 10000, user, tag, n, tag, n, user % 250 + 1, user)
end

local function ingest_body(n)
  return string.format(
    '{"request_id":"%s-%d","subscriber_id":"%s","session_id":"s-%s-%d","user_id":"u-%d"}',
    tag, n, subscriber, tag, n, n % 10000)
end

function request()
  counter = counter + 1
  if mode == "score" then
    return wrk.format("POST", "/risk/bin/score", headers, score_body(counter))
  elseif mode == "ingest" then
    return wrk.format("POST", "/fingerprint/ingest", headers, ingest_body(counter))
  end
  return healthz_request
end

function response(status, resp_headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_bad == "" then
      first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 200):gsub("[\r\n]", " ")
    end
  end
end

function done(summary, latency, requests)
  local bad, example = 0, ""
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("non2xx") or 0)
    local first = thread:get("first_bad") or ""
    if example == "" then
      example = first
    end
  end
  local lines = {
    "requests " .. summary.requests,
    "duration_us " .. summary.duration,
    "non2xx " .. bad,
    "err_connect " .. summary.errors.connect,
    "err_read " .. summary.errors.read,
    "err_write " .. summary.errors.write,
    "err_timeout " .. summary.errors.timeout,
    "p99_us " .. latency:percentile(99),
    "first_bad " .. example,
  }
  for i = 1, #latency do
    local value, count = latency(i)
    if count and count > 0 then
      table.insert(lines, "hist " .. value .. " " .. count)
    end
  end
  local text = table.concat(lines, "\n") .. "\n"
  if out_path and out_path ~= "" then
    local file = assert(io.open(out_path, "w"))
    file:write(text)
    file:close()
  else
    io.write(text)
  end
end
