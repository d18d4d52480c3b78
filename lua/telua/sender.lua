--- The host's sender: sends what the outbox holds, paced, with retries.
--
-- Rules never wait on Twilio: `req.send{...}` writes the message to the
-- store's outbox and returns its id at once. The sender (one thread of
-- the host, its own Lua state and store connection) claims due entries,
-- and for each:
--
-- 1. checks the opt-out list again at send time (an entry for a number
--    that opted out since it was queued is `skipped`);
-- 2. paces per sender with GCRA in segments, at the rate of the sender's
--    type (reference hosts-and-ratelimit.md §5.6: US long code 1 segment/s,
--    toll-free 3, short code 100, WhatsApp 10) and under the account's
--    2,000 MPS; an entry that may not go yet goes back with its time;
-- 3. sends up to `concurrency` at once through `telua.client`, which
--    retries 429/20429, 5xx and dropped connections with backoff;
-- 4. files the answer: `sent` with the MessageSid (and the message log
--    entry); 21610 records the opt-out and fails; a timeout on the request
--    marks the entry `unknown` (Twilio may have it: never resent blind);
--    a retryable error is queued again with exponential backoff and full
--    jitter up to `max_attempts`; anything else fails.
--
-- At start, entries a crash left `sending` are reconciled: the sender looks
-- for the message in Twilio's list (same To, From and Body, created after
-- the claim) and files its SID; when it is not there the entry stays
-- `unknown` for a person to decide.
--
-- @module telua.sender

local gcra = require "telua.gcra"
local segments = require "telua.segments"

local pairs, ipairs, tostring, tonumber, setmetatable, min, max, random, floor =
  pairs, ipairs, tostring, tonumber, setmetatable, math.min, math.max, math.random, math.floor

local _M = { _VERSION = "0.1.0" }

--- Default pacing, in segments per second, by sender type.
_M.RATES = { long_code = 1, toll_free = 3, short_code = 100, whatsapp = 10, messaging_service = 100, account = 2000 }

local TOLL_FREE = { ["800"] = true, ["833"] = true, ["844"] = true, ["855"] = true, ["866"] = true,
                    ["877"] = true, ["888"] = true }

--- The type of a sender address: `whatsapp`, `short_code`, `toll_free`,
-- `messaging_service` or `long_code`.
function _M.sender_type(from)
  if from:sub(1, 9) == "whatsapp:" then return "whatsapp" end
  if from:find("^MG%x+$") then return "messaging_service" end
  if from:find("^%d%d%d%d%d%d?$") then return "short_code" end
  local npa = from:match("^%+1(%d%d%d)")
  if npa and TOLL_FREE[npa] then return "toll_free" end
  return "long_code"
end

--- Parses `"long_code=1,toll_free=3"` into a table over the defaults.
-- A rate of 0 turns pacing off for that type.
-- @return the rates | nil, message
function _M.parse_rates(s)
  local rates = {}
  for k, v in pairs(_M.RATES) do rates[k] = v end
  if s == nil or s == "" then return rates end
  for item in s:gmatch("[^,]+") do
    local k, v = item:match("^%s*([%w_]+)%s*=%s*([%d.]+)%s*$")
    if not k or not rates[k] or not tonumber(v) then
      return nil, "bad rate '" .. item .. "' (want TYPE=SEGMENTS_PER_SECOND with TYPE one of " ..
        "long_code, toll_free, short_code, whatsapp, messaging_service, account)"
    end
    rates[k] = tonumber(v)
  end
  return rates
end

local Sender = {}
Sender.__index = Sender

--- Makes a sender.
-- @tparam table opts `store` (a `telua.store` on the host's SQLite file),
--   `client` (a `telua.client`), `rates` (see `RATES`), `concurrency`
--   (requests at once, default 8), `max_attempts` (default 5),
--   `retry_base` (seconds, default 30), `retry_cap` (default 3600),
--   `log` (function(level, message))
function _M.new(opts)
  local self = setmetatable({
    store = assert(opts.store, "sender needs a store"),
    client = assert(opts.client, "sender needs a client"),
    rates = opts.rates or _M.RATES,
    concurrency = opts.concurrency or 8,
    max_attempts = opts.max_attempts or 5,
    retry_base = opts.retry_base or 30,
    retry_cap = opts.retry_cap or 3600,
    log = opts.log or function() end,
    limiters = {},
    sent = 0, failed = 0,
  }, Sender)
  for kind, rate in pairs(self.rates) do
    if rate > 0 then
      -- burst: a whole 10-segment message must be able to pass
      self.limiters[kind] = gcra.new{ rate = rate, burst = max(10, floor(rate)), queue = 36000 }
    end
  end
  return self
end

-- Seconds until this entry may go (0 = now), charging the limiters only
-- when it goes.
function Sender:pace(entry, cost)
  local kind = _M.sender_type(entry.sender)
  local lim, acct = self.limiters[kind], self.limiters.account
  local d1 = lim and lim:incoming(entry.sender, cost, false) or 0
  local d2 = acct and acct:incoming("account", cost, false) or 0
  local d = max(d1 or 0, d2 or 0)
  if d > 0 then return d end
  if lim then lim:incoming(entry.sender, cost, true) end
  if acct then acct:incoming("account", cost, true) end
  return 0
end

function Sender:backoff(attempts, err)
  local d = random() * min(self.retry_cap, self.retry_base * 2 ^ (attempts - 1))
  if err and err.retry_after then d = max(d, err.retry_after) end
  return d
end

local function bare(addr) return (addr:gsub("^%a+:", "")) end

-- Files one answer.
function Sender:file(entry, msg, err, now)
  local store, p = self.store, entry.params
  if msg then
    self.sent = self.sent + 1
    store:outbox_set(entry.id, "sent", { sid = msg.sid })
    store:message_status(msg.sid, msg.status or "queued", {
      to = p.to, from = p.from, segments = tonumber(msg.num_segments) })
    return
  end
  local code = err.code
  if code == 21610 then -- Twilio says they opted out: remember it here too
    store:optout_add(p.from or p.messaging_service_sid, p.to, "21610")
    self.log("info", ("outbox %d: %s has opted out (21610); recorded"):format(entry.id, p.to))
  end
  if err.where == "transport" and err.transport == "timeout" then
    self.failed = self.failed + 1
    store:outbox_set(entry.id, "unknown", { error = "timed out in flight: Twilio may have it" })
    self.log("warn", ("outbox %d: request timed out in flight; marked unknown"):format(entry.id))
    return
  end
  if err.retryable and code ~= 21610 and entry.attempts < self.max_attempts then
    local at = now + self:backoff(entry.attempts, err)
    store:outbox_set(entry.id, "queued", { error_code = code, error = err.message, not_before = at })
    self.log("info", ("outbox %d: %s; retry %d at +%.1fs"):format(entry.id, tostring(err), entry.attempts, at - now))
    return
  end
  self.failed = self.failed + 1
  store:outbox_set(entry.id, "failed", { error_code = code, error = err.message })
  self.log("warn", ("outbox %d failed: %s"):format(entry.id, tostring(err)))
end

--- One round: claim what is due, send it, file the answers.
-- @tparam[opt] number now epoch seconds
-- @treturn number how many were sent or filed this round
function Sender:step(now)
  now = now or require("telua.core").time()
  local store = self.store
  local claimed, err = store:outbox_claim(self.concurrency, now)
  if not claimed then
    self.log("error", "outbox: " .. tostring(err))
    return 0
  end
  if #claimed == 0 then return 0 end
  local go, batch = {}, {}
  for _, e in ipairs(claimed) do
    local p = e.params
    local out = store:is_opted_out(p.from or p.messaging_service_sid, p.to)
      or store:is_opted_out(p.from or p.messaging_service_sid, bare(p.to))
    if out then
      store:outbox_set(e.id, "skipped", { error = "opted out" })
      self.log("info", ("outbox %d: %s opted out since it was queued; skipped"):format(e.id, p.to))
    else
      local seg = p.body and segments.count(p.body)
      local d = self:pace(e, seg and seg.segments or 1)
      if d > 0 then
        store:outbox_defer(e.id, now + d)
      else
        go[#go + 1] = e
        batch[#batch + 1] = p
      end
    end
  end
  if #batch > 0 then
    local results = self.client.messages.create_many(batch)
    for i, e in ipairs(go) do
      local r = results[i]
      self:file(e, r[1], r[2], now)
    end
  end
  return #claimed
end

--- Reconciles entries a crash left in flight (see the module notes).
-- @treturn number how many were found at Twilio
function Sender:reconcile()
  local store = self.store
  store:outbox_recover()
  local rows = store.db:query("SELECT id FROM outbox WHERE state = 'unknown' AND sid IS NULL " ..
                              "AND error = 'in flight when the host stopped'")
  local found = 0
  for _, r in ipairs(rows or {}) do
    local e = store:outbox_get(r.id)
    local p = e.params
    local list = self.client.messages.list{ to = p.to, limit = 50 }
    for _, m in ipairs(list or {}) do
      if m.from == (p.from or m.from) and m.body == p.body then
        store:outbox_set(e.id, "sent", { sid = m.sid, error = "reconciled after a restart" })
        store:message_status(m.sid, m.status or "queued", { to = p.to, from = p.from })
        found = found + 1
        break
      end
    end
    if not list then self.log("warn", ("outbox %d: cannot reconcile yet"):format(e.id)) end
  end
  if #(rows or {}) > 0 then
    self.log("info", ("outbox: %d in flight at the last stop, %d found at Twilio, %d left unknown")
      :format(#rows, found, #rows - found))
  end
  return found
end

--- The sender thread's loop (the host calls it; it returns when `stopping()` is true).
-- @tparam table opts as for `new`, plus `stopping` (function -> boolean)
--   and `sleep` (function(seconds))
function _M.run(opts)
  local s = _M.new(opts)
  s:reconcile()
  local sleep, stopping, store = opts.sleep, opts.stopping, opts.store
  local idle = 0
  while not stopping() do
    local n = s:step()
    if n == 0 then
      -- nothing due: sleep until the next entry, at most 20 ms (new work may arrive)
      local nxt = store:outbox_next()
      local now = require("telua.core").time()
      local wait = nxt and max(0, min(0.02, nxt - now)) or 0.02
      if wait > 0 then sleep(wait) end
      idle = idle + 1
      if idle % 3000 == 0 then store:kv_expire() end
    end
  end
end

return _M
