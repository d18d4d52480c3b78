--- Pacing and rate limits: GCRA (the Generic Cell Rate Algorithm) and a concurrency limiter.
--
-- A limit admits `burst` events back to back and then one every `1/rate`
-- seconds; an event may cost more than one (an SMS of 3 segments costs 3:
-- Twilio counts throughput in segments). As with a token bucket of
-- `burst` tokens refilled at `rate`, an event of cost q goes when q tokens
-- are there, so no second holds more than `rate + burst` of cost: set
-- `burst` to at least the largest cost (a message's segments), since a
-- cost above it can never pass a policing limiter ("too_large") and waits
-- `(q - burst) / rate` from idle under shaping. The API follows
-- lua-resty-limit-traffic: the limiter never sleeps, it answers with a
-- delay and the caller waits (or schedules) or gives up.
--
--     local gcra = require "telua.gcra"
--     local lim = gcra.new{ rate = 1, burst = 5, queue = 60 }   -- 1 MPS long code, 60 s of queue
--     local delay, err, wait = lim:incoming("+14155550100", 3)  -- 3 segments
--     -- delay: 0 (now) or seconds to wait; nil, "rejected", wait: over even with the queue
--
-- State lives in a process-wide C store (`telua.core`): limiters with the
-- same parameters share it, across workers and rules generations, so a hot
-- reload keeps pacing; other parameters mean other state, so a changed
-- limit starts afresh. Time is CLOCK_MONOTONIC in integer nanoseconds and
-- the interval is exact (3 per second never drifts). Standard: ITU-T I.371
-- GCRA in its virtual-scheduling form (as redis-cell's CL.THROTTLE).
--
-- Inside nginx the workers are processes: `gcra.share()` in `init_by_lua`
-- puts that store in memory the master maps shared before it forks the
-- workers, so every worker decides on one schedule per key (each decision
-- takes the key's bucket lock, an atomic test-and-set byte in that memory,
-- reads the TAT, writes the new one and lets go: no other worker can
-- decide in between). `gcra.new` under nginx refuses to make a limiter on
-- a store that is not shared, since each worker would then send at the
-- full rate; `per_process = true` allows it.
--
-- @module telua.gcra

local core = require "telua.core"

local type, error, floor, tostring, setmetatable = type, error, math.floor, tostring, setmetatable

local _M = { _VERSION = "0.1.0" }

-- Inside nginx's workers (or its master, at init): processes, not threads.
local ngx = rawget(_G, "ngx")
local IN_NGINX = ngx and type(ngx.worker) == "table" or false

--- Puts the limiters' store in memory shared with the processes forked
-- after the call: in nginx, call it in `init_by_lua` (the master) so all
-- workers pace on one schedule. Idempotent.
-- @tparam[opt=65536] integer keys the store's capacity
-- @return `true`, or `nil, message` (the store was used before the call,
--   or the mapping failed)
function _M.share(keys)
  if keys ~= nil and (type(keys) ~= "number" or keys < 16) then error("gcra.share: keys must be >= 16", 2) end
  return core.gcra_share(keys)
end

--- Whether the store is shared (`share` was called in this process or its parent).
-- @treturn boolean
function _M.shared() return core.gcra_shared() end

local function whole(v, what)
  if type(v) ~= "number" or v ~= v or v < 0 or v ~= floor(v) then
    error("gcra: " .. what .. " must be a whole number >= 0, got " .. tostring(v), 3)
  end
  return v
end

--- Creates a GCRA limiter.
-- @tparam table opts `rate` (events per second, up to 3 decimals, e.g.
--   `0.5`), or `count` per `period` seconds; `burst` (events allowed back
--   to back, default 1); `queue` (seconds: shaping accepts an event due in
--   up to this long, default 0 = policing); `per_process` (inside nginx:
--   allow a store that is not shared, so each worker paces alone)
-- @treturn userdata a limiter with `incoming`, `incoming_at`, `uncommit`
-- @raise on missing or non-positive parameters; inside nginx, when the
--   store is not shared (see `share`) and `per_process` is not set
function _M.new(opts)
  if type(opts) ~= "table" then error("gcra.new needs a table of options", 2) end
  if IN_NGINX and not opts.per_process and not core.gcra_shared() then
    error("gcra.new: inside nginx each worker would pace alone; call require('telua.gcra').share() in " ..
          "init_by_lua (or pass per_process = true)", 2)
  end
  local count, period_ns
  if opts.rate ~= nil then
    local r = opts.rate
    if type(r) ~= "number" or not (r > 0) or r > 1e9 then -- luacheck: ignore 581 (not (r > 0) is also true for NaN)
      error("gcra: rate must be a number of events per second > 0", 2)
    end
    if r == floor(r) then
      count, period_ns = r, 1e9
    else -- millisecond precision on the rate: 2.5/s = 2500 per 1000 s
      count, period_ns = floor(r * 1000 + 0.5), 1e12
    end
  else
    count = whole(opts.count, "count")
    local p = opts.period
    if type(p) ~= "number" or not (p > 0) or p > 1e7 then -- luacheck: ignore 581 (NaN too)
      error("gcra: period must be seconds > 0", 2)
    end
    period_ns = floor(p * 1e9 + 0.5)
  end
  local burst = opts.burst == nil and 1 or whole(opts.burst, "burst")
  local queue = opts.queue == nil and 0 or opts.queue
  if type(queue) ~= "number" or not (queue >= 0) or queue > 1e7 then -- luacheck: ignore 581 (NaN too)
    error("gcra: queue must be seconds >= 0", 2)
  end
  if count < 1 or burst < 1 then error("gcra: rate and burst must be positive", 2) end
  return core.gcra_new(count, period_ns, burst, floor(queue * 1e9 + 0.5))
end

--- @type limiter

--- Decides one event now.
-- @function limiter:incoming
-- @tparam string key e.g. the sender number
-- @tparam[opt=1] integer cost e.g. the message's segments
-- @tparam[opt=true] boolean commit false only looks
-- @treturn number delay in seconds: 0 to go now, or when it may go (shaping)
-- @return or `nil, "rejected", wait` (seconds until it would be accepted,
--   rounded up to the nanosecond), or `nil, "too_large"` when the cost is
--   more than the limit can ever accept

--- The same at a given monotonic time (seconds), for schedulers and tests.
-- @function limiter:incoming_at
-- @tparam number now seconds on the monotonic clock (`gcra.now()`)

--- Gives back an accepted event (a send that was not made).
-- @function limiter:uncommit
-- @tparam string key
-- @tparam[opt=1] integer cost

--- @section end

--- The monotonic clock the limiters use, in seconds.
-- @function now
_M.now = core.gcra_now

--- The store's use: keys held, capacity, keys evicted to stay within it.
-- @treturn table `{ keys = n, capacity = n, evicted = n, shared = boolean }`
function _M.stats()
  local keys, capacity, evicted = core.gcra_stats()
  return { keys = keys, capacity = capacity, evicted = evicted, shared = core.gcra_shared() }
end

local Conc = {}
Conc.__index = Conc

--- A concurrency limiter: at most `max` at once per key, e.g. REST calls in
-- flight (Twilio answers 20429 above an account's concurrency).
-- @tparam table opts `max` (whole number >= 1)
-- @treturn table with `enter(key)` and `leave(key)`
function _M.concurrency(opts)
  if type(opts) ~= "table" then error("gcra.concurrency needs a table of options", 2) end
  local max = opts.max
  if type(max) ~= "number" or max < 1 or max ~= floor(max) then
    error("gcra: max must be a whole number >= 1", 2)
  end
  return setmetatable({ max = max, n = {} }, Conc)
end

--- Takes a slot for key.
-- @treturn boolean true, or `nil, "rejected", in_flight`
function Conc:enter(key)
  local n = self.n[key] or 0
  if n >= self.max then return nil, "rejected", n end
  self.n[key] = n + 1
  return true
end

--- Gives the slot back (call it on every path, errors and timeouts too).
-- @treturn integer calls still in flight for key
function Conc:leave(key)
  local n = (self.n[key] or 0) - 1
  if n < 0 then error("gcra: leave(" .. tostring(key) .. ") without enter", 2) end
  self.n[key] = n > 0 and n or nil
  return n
end

return _M
