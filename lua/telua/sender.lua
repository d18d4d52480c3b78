--- The outbox's sender: sends what the outbox holds, paced, with retries.
--
-- Rules never wait on Twilio: `req.send{...}` writes the message to the
-- store's outbox and returns its id at once. The sender (in the host, a
-- thread with its own Lua state and store connection; under nginx, one
-- worker's timer, `telua.ngx`) claims due entries, and for each:
--
-- 1. checks the opt-out list again at send time (an entry for a number
--    that opted out since it was queued is `skipped`);
-- 2. holds an entry whose policy has quiet hours (`telua.quiet`) while
--    the recipient's local time is inside them in any of the zones their
--    number may be in: it goes back to the outbox until the window ends in
--    all of them (not counted as an attempt);
-- 3. paces per sender with GCRA in segments, at the rate of the sender's
--    type (reference hosts-and-ratelimit.md §5.6: US long code 1 segment/s,
--    toll-free 3, short code 100, WhatsApp 10), under the account's 2,000
--    MPS and, for a campaign, at the campaign's own rate (evenly spaced,
--    with a burst of 20 ms of messages: 1 up to 50 MPS, 20 at 1,000). An entry that may not go yet goes back with its time: within
--    a second, its slot is taken then and there and kept in the outbox
--    (`reserved`), so the schedule survives a restart; further out, it is
--    looked at again shortly before;
--    An entry with a `max_per_day` cap is counted as it goes (the store's
--    `per_day` counter of the recipient); past the cap it waits for the
--    counter's day to end;
-- 4. sends up to `concurrency` at once through `telua.client`, which
--    retries 429/20429, 5xx and dropped connections with backoff. With
--    libcurl (the host) the requests are a flight (`client:flight()`):
--    each holds its own slot until its answer is in, and the loop claims,
--    paces and sends the next entries meanwhile, so a request held by a
--    slow network holds back nothing else; inside nginx a round's batch is
--    waited for;
-- 5. files the answer: `sent` with the MessageSid (and the message log
--    entry); 21610 records the opt-out and fails; a timeout on the request
--    marks the entry `unknown` (Twilio may have it: never resent blind);
--    a retryable error is queued again with exponential backoff and full
--    jitter up to `max_attempts`; anything else fails.
--
-- At start, entries a crash left `sending` are reconciled: the sender looks
-- for the message in Twilio's list (same To, From and Body, created after
-- the claim) and files its SID. When Twilio does not have it once the
-- request could no longer be pending there (`RECONCILE_GRACE`, past the
-- request timeout), it is queued again; until then, or while Twilio cannot
-- be asked, it stays `unknown` and is looked at again every 5 seconds.
-- Nothing is ever resent without that check. With a flight the lookups
-- (and the status fetches of sent messages) are calls of it, answered
-- beside the sending: the sender does not wait for them.
--
-- On a shared store (Redis) several hosts' senders work one outbox: each
-- is a consumer of its streams (`consumer`, the host's name), the pacing
-- decisions are the store's (one GCRA schedule across hosts, one round
-- trip a decision), and every `visibility / 4` seconds a sender takes over
-- the entries another host claimed and did not file within `visibility`
-- seconds (that host died or is cut off): they are reconciled exactly as
-- the entries of a crash are. While the store cannot be reached the
-- sender sends nothing (the opt-out list cannot be read) and tries again
-- every half second; a round whose answers could not be filed is filed
-- again before anything new is claimed.
--
-- @module telua.sender

local client_mod = require "telua.client"
local core = require "telua.core"
local store_mod = require "telua.store"
local gcra = require "telua.gcra"
local metrics = require "telua.metrics"
local quiet = require "telua.quiet"
local fallback = require "telua.fallback"
local heap_mod = require "telua.heap"

local pairs, ipairs, tostring, tonumber, setmetatable, min, max, random, floor, ceil =
  pairs, ipairs, tostring, tonumber, setmetatable, math.min, math.max, math.random, math.floor, math.ceil

local _M = { _VERSION = "0.1.0" }

--- Default pacing, in segments per second, by sender type.
-- `voice`: calls a second (a fallback hop's call; Twilio's default CPS of an account is 1).
_M.RATES = { long_code = 1, toll_free = 3, short_code = 100, whatsapp = 10, messaging_service = 100, account = 2000,
             voice = 1 }

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
        "long_code, toll_free, short_code, whatsapp, messaging_service, account, voice)"
    end
    rates[k] = tonumber(v)
  end
  return rates
end

local Sender = {}
Sender.__index = Sender

local clocks = 0 -- senders made with a clock of their own

local function bare(addr) return (addr:gsub("^%a+:", "")) end

--- Makes a sender.
-- @tparam table opts `store` (a `telua.store` on the host's SQLite file),
--   `client` (a `telua.client`), `rates` (see `RATES`), `concurrency`
--   (requests at once, default 8), `max_attempts` (default 5),
--   `retry_base` (seconds, default 30), `retry_cap` (default 3600),
--   `log` (function(level, message)), `on_event` (function(kind, fields):
--   `"status"` {outbox_id, from, to, message_sid, status, error_code} when
--   Twilio took a message or it failed for good, `"optout"` {from, to,
--   keyword = "21610"} when Twilio said the recipient had opted out),
--   `consumer` (this host's name in a shared outbox), `visibility`
--   (seconds, default 60: how long another host's claim stands), `clock`
--   (function -> epoch seconds, default `telua.core.time`: the time the
--   pacing, the quiet hours and the caps see)
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
    on_event = opts.on_event,
    limiters = {},
    campaign_limiters = {},
    recent = {},      -- campaign -> ring of its last rate + 1 send times (epoch seconds)
    waiting = {},     -- limiter key -> when the last entry put back on it is due (see pace)
    campaigns_seen = {}, -- campaigns sent for, shown in the host's metrics (publish_gauges)
    sent = 0, failed = 0,
    visibility = opts.visibility or _M.VISIBILITY,
    clock = opts.clock or core.time,
    sending = 0,     -- sends out in the flight
    looking = {},    -- outbox id -> true: its reconciliation lookup is out
    fetching = {},   -- MessageSid -> true: its status fetch is out
  }, Sender)
  -- requests that each finish on their own (libcurl); without (nginx's
  -- cosockets, a transport without flights) a round waits for its batch
  if opts.flight ~= false and self.client.flight then self.flight = self.client:flight() end
  if opts.clock then -- pacing on the caller's clock (see decide)
    clocks = clocks + 1
    self.ns, self.clock_base = ("clock%d:%s:"):format(clocks, core.random_hex(4)), opts.clock() - 1
  end
  self.pacer = self.store.pacer and self.store:pacer() or nil
  if opts.consumer and self.store.outbox.set_consumer then self.store.outbox:set_consumer(opts.consumer) end
  for kind, rate in pairs(self.rates) do
    if rate > 0 then
      -- burst: a whole 10-segment message must be able to pass
      self.limiters[kind] = gcra.new{ rate = rate, burst = max(10, floor(rate)), queue = 36000 }
    end
  end
  return self
end

-- How far ahead a pacing slot is taken; further out, an entry is looked at
-- again shortly before its time, so other traffic can still get slots.
local RESERVE_AHEAD = 1.0
-- Sent at once when its slot is this close (the schedule itself stays exact).
local SLACK = 0.002

-- The limiters an entry goes through: its sender type's, the account's
-- and, for a campaign, the campaign's own (see campaign_burst); each as
-- { limiter, key, rate }.
function Sender:limiters_for(entry)
  local list = {}
  local ch = entry.policy and entry.policy.channel
  if ch == "voice" or ch == "verify" then -- a call: the account's calls per second
    local rate = self.rates.voice
    if self.limiters.voice then
      list[1] = { self.limiters.voice, "voice", rate, key = "voice", rate = rate, burst = max(10, floor(rate)),
                  queue = 36000 }
    end
    return list
  end
  local kind = _M.sender_type(entry.sender)
  if self.limiters[kind] then
    local rate = self.rates[kind]
    list[#list + 1] = { self.limiters[kind], entry.sender, rate, key = entry.sender, rate = rate,
                        burst = max(10, floor(rate)), queue = 36000 }
  end
  if self.limiters.account then
    local rate = self.rates.account
    list[#list + 1] = { self.limiters.account, "account", rate, key = "account", rate = rate,
                        burst = max(10, floor(rate)), queue = 36000 }
  end
  if entry.campaign and entry.rate and entry.rate > 0 then
    local lim = self.campaign_limiters[entry.rate]
    local burst = _M.campaign_burst(entry.rate)
    if not lim then
      lim = gcra.new{ rate = entry.rate, burst = burst, queue = 36000 }
      self.campaign_limiters[entry.rate] = lim
    end
    list[#list + 1] = { lim, "campaign:" .. entry.campaign, entry.rate, key = "campaign:" .. entry.campaign,
                        rate = entry.rate, burst = burst, queue = 36000 }
  end
  return list
end

-- Paces one claimed entry. Returns 0 when it goes now; else the time it
-- was put back for (a reserved slot when near, else a look again).
--- A campaign's burst: the messages of 20 ms at its rate, at least 1.
function _M.campaign_burst(rate) return max(1, ceil(rate / 50)) end

-- A campaign never sends more than rate + burst in any second: the times
-- of its last rate + burst sends are kept in a ring, and an entry goes only
-- when the oldest of them is a second old (plus a margin: what the carrier,
-- or the sandbox, sees is the send time plus a network delay that varies by
-- some milliseconds). Within that, an entry whose slot came while the
-- sender was busy (the store was locked, the host was stopped) goes at
-- once, at most `burst` per 10 ms, so the campaign catches up and keeps its
-- rate instead of losing the slot, and late entries never leave in a clump.
function Sender:spacing(entry, now)
  if not entry.campaign or not entry.rate or entry.rate <= 0 then return 0 end
  local ring = self.recent[entry.campaign]
  local b = _M.campaign_burst(entry.rate)
  local k = floor(entry.rate) + b
  if not ring or ring.k ~= k or ring.n == 0 then return 0 end
  if b <= ring.n then
    local bth = ring[(ring.head - 1 - b) % k + 1] -- the b-th newest send
    if now - bth < 0.01 then return bth + 0.01 - now end
  end
  if ring.n < k then return 0 end
  local oldest = ring[ring.head]
  local span = 1 + min(0.05, 0.75 * b / entry.rate)
  if now - oldest >= span then return 0 end
  return oldest + span - now
end

function Sender:sent_at(entry, now)
  if not entry.campaign or not entry.rate or entry.rate <= 0 then return end
  local k = floor(entry.rate) + _M.campaign_burst(entry.rate)
  local ring = self.recent[entry.campaign]
  if not ring or ring.k ~= k then
    ring = { k = k, n = 0, head = 1 }
    self.recent[entry.campaign] = ring
  end
  ring[ring.head] = now -- overwrite the oldest
  entry.ring_slot, entry.ring_at = ring.head, now
  ring.head = ring.head % k + 1
  if ring.n < k then ring.n = ring.n + 1 end
end

-- One limiter's decision: on the monotonic clock, or with a clock of the
-- caller's (`opts.clock`) on that clock, under keys of this sender's own
-- (the limiters' state is process-wide).
function Sender:decide(l, cost, commit, now)
  if not self.ns then return l[1]:incoming(l[2], cost, commit) end
  return l[1]:incoming_at(now - self.clock_base, self.ns .. l[2], cost, commit)
end

-- Paces one claimed entry: 0 when it goes now; else the time to put it
-- back for and whether that time is a slot it now holds (near), or a time
-- to look again (far). The caller writes the deferral after sending, so
-- what goes now goes at the time it was decided.
function Sender:pace(entry, cost, now)
  if entry.reserved == 1 then
    local wait = self:spacing(entry, now)
    if wait <= 0 then
      self:sent_at(entry, now)
      return 0
    end
    return now + wait, true
  end
  local lims = self:limiters_for(entry)
  local d, bind, taken = 0, nil, false
  if self.pacer and #lims > 0 then
    -- the store's schedule, shared with the other hosts: one decision
    -- over every limit, the slot taken in the same step when near
    local x, i, t = self.pacer:decide(lims, cost, RESERVE_AHEAD)
    if not x then
      if i ~= "rejected" then return now + 0.5, false end -- the store cannot be reached: look again
      x, i = 36000, 1
    end
    d, bind, taken = x, lims[i], t
  else
    for _, l in ipairs(lims) do
      local x = self:decide(l, cost, false, now) or 0
      if x > d then d, bind = x, l end
    end
  end
  if d > RESERVE_AHEAD then
    -- Too far to hold a slot: look again shortly before its turn. The
    -- limiter knows only the slots taken; the entries already put back to
    -- wait on the same key are ahead of this one, so its turn is counted
    -- behind them (a shadow of the queue, per key), and a backlog comes
    -- back spread over its schedule instead of all at once.
    local key, unit = bind[2], 1 / bind[3]
    -- its turn: when its last segment's slot comes (as GCRA counts a cost)
    local turn = max((self.waiting[key] or 0) + (cost - 1) * unit, now + d)
    self.waiting[key] = turn + unit
    return turn - RESERVE_AHEAD / 2, false
  end
  if not taken then
    for _, l in ipairs(lims) do self:decide(l, cost, true, now) end
  end
  if d <= SLACK then
    local wait = self:spacing(entry, now)
    if wait <= 0 then
      self:sent_at(entry, now)
      return 0
    end
    d = wait
  end
  return now + d, true
end

function Sender:backoff(attempts, err)
  local d = random() * min(self.retry_cap, self.retry_base * 2 ^ (attempts - 1))
  if err and err.retry_after then d = max(d, err.retry_after) end
  return d
end

-- Tells opts.on_event; an error there is the embedder's, logged and dropped.
function Sender:emit(kind, fields)
  if not self.on_event then return end
  local ok, err = pcall(self.on_event, kind, fields)
  if not ok then self.log("error", ("event handler (%s): %s"):format(kind, tostring(err))) end
end

--- When an entry inside its recipient's quiet hours may go (its policy's
-- `quiet` window, `telua.quiet`): the end of the window in every zone the
-- number may be in; nil when it may go now. When no hour is outside the
-- window in all its zones at once, the first of them (the data's order)
-- decides.
function Sender:quiet_hold(e, now)
  local w = e.policy and e.policy.quiet
  if not w then return nil end
  local zones = quiet.zones(e.params.to)
  local at, waited = quiet.next_allowed(zones, w, now)
  if at == nil then at, waited = quiet.next_allowed({ zones[1] }, w, now) end
  return waited and at or nil
end

--- Counts an entry that goes now against its policy's `max_per_day`
-- (the store's counter `per_day` of the recipient's number, a window of
-- 24 hours from its first message): nil when it may go, else when to look
-- again (the window's end; half a second when the store did not answer).
function Sender:capped(e, now)
  local n = e.policy and e.policy.max_per_day
  if not n then return nil end
  local ok, _, left = self.store:counter_hit("per_day", bare(e.params.to), n, 86400, floor(now))
  if ok == nil then return now + 0.5 end
  if ok then return nil end
  self.log("info", ("outbox %d: %s had %d messages today (max_per_day); waits %ds"):format(e.id, e.params.to, n, left))
  return now + left
end

-- Files one answer.
function Sender:file(entry, msg, err, now)
  local store, p = self.store, entry.params
  local from = p.from or p.messaging_service_sid
  if msg then
    self.sent = self.sent + 1
    metrics.record("telua_sends_total", 1, "sent", "")
    store.outbox:complete(entry.id, msg.sid)
    if not (entry.policy and entry.policy.channel == "verify") then -- (a verification is no message)
      store:message_status(msg.sid, msg.status or "queued", {
        to = p.to, from = p.from, segments = tonumber(msg.num_segments) })
    end
    if entry.policy and entry.policy.fallback then fallback.on_sent(store, entry, now, self.log) end
    self:emit("status", { outbox_id = entry.id, from = from, to = p.to, message_sid = msg.sid,
                          status = msg.status or "queued" })
    return
  end
  local code = err.code
  if code == 21610 then -- Twilio says they opted out: remember it here too
    store:optout_add(from, p.to, "21610", { service = p.messaging_service_sid })
    self.log("info", ("outbox %d: %s has opted out (21610); recorded"):format(entry.id, p.to))
    self:emit("optout", { from = p.to, to = from, keyword = "21610" })
    metrics.record("telua_optouts_total", 1, "21610")
  end
  if err.where == "transport" and err.transport == "timeout" then
    self.failed = self.failed + 1
    store.outbox:lose(entry.id, "timed out in flight: Twilio may have it")
    metrics.record("telua_sends_total", 1, "unknown", "")
    self.log("warn", ("outbox %d: request timed out in flight; marked unknown"):format(entry.id))
    return
  end
  if err.retryable and code ~= 21610 and entry.attempts < self.max_attempts then
    local at = now + self:backoff(entry.attempts, err)
    store.outbox:retry(entry.id, at, code, err.message)
    metrics.record("telua_sends_total", 1, "retry", code)
    self.log("info", ("outbox %d: %s; retry %d at +%.1fs"):format(entry.id, tostring(err), entry.attempts, at - now))
    return
  end
  self.failed = self.failed + 1
  store.outbox:fail(entry.id, code, err.message)
  if entry.policy and entry.policy.fallback and code ~= 21610 then fallback.on_failed(store, entry, code, now, self.log) end
  metrics.record("telua_sends_total", 1, "failed", code)
  metrics.record("telua_messages_final_total", 1, from, "failed", code) -- Twilio never took it: no callback comes
  self.log("warn", ("outbox %d failed: %s"):format(entry.id, tostring(err)))
  self:emit("status", { outbox_id = entry.id, from = from, to = p.to, status = "failed", error_code = code })
end

-- The store failed (logged once until it works again).
function Sender:store_down(what, err)
  if not self.down then
    self.log("error", ("outbox: %s: %s; nothing is sent until the store answers again"):format(what, tostring(err)))
  end
  self.down = true
end

-- The store answers (logged when it had failed).
function Sender:store_up()
  if self.down then self.log("info", "outbox: the store answers again; sending") end
  self.down = false
end

--- One round: claim what is due, send it, file the answers.
-- @tparam[opt] number now epoch seconds
-- @treturn number how many were sent or filed this round, or -1 when the
--   store could not be reached (the caller waits before the next round)
function Sender:step(now)
  now = now or self.clock()
  local store = self.store
  if self.unfiled then -- rounds whose answers could not be written: first those
    local list = self.unfiled
    local ok, terr = store:transaction(function()
      for _, f in ipairs(list) do f() end
      return true
    end)
    if not ok then
      self:store_down("filing a round again", terr)
      return -1
    end
    self.unfiled = nil
  end
  local fl = self.flight
  if fl and fl:count() > 0 and self:collect(0) < 0 then return -1 end
  -- each request out holds its slot until its answer is in (and only its own)
  local room = self.concurrency - self.sending
  if room <= 0 then return 0 end
  local claimed, err = store.outbox:claim(room, now)
  if not claimed then
    self:store_down("claim", err)
    return -1
  end
  self:store_up()
  if #claimed == 0 then return 0 end
  local go, batch, later, skipped, invalid = {}, {}, {}, {}, {}
  -- the round's opt-out lookups at once (one round trip on Redis): the
  -- recipient as written, and a WhatsApp recipient's bare number too
  local checks, main_at, bare_at = {}, {}, {}
  for i, e in ipairs(claimed) do
    local p = e.params
    local from = p.from or p.messaging_service_sid
    local scope = { scope = e.optout_scope, service = p.messaging_service_sid }
    checks[#checks + 1] = { from, p.to, scope }
    main_at[i] = #checks
    if p.to:find(":", 1, true) then
      checks[#checks + 1] = { from, bare(p.to), scope }
      bare_at[i] = #checks
    end
  end
  local found, oerr = store:is_opted_out_many(checks)
  for i, e in ipairs(claimed) do
    local p = e.params
    local out = found and found[main_at[i]]
    if out == false and bare_at[i] then out = found[bare_at[i]] end
    local gated = out == false and e.policy and e.policy.hop and fallback.gate(store, e)
    if out == nil then -- the opt-out list cannot be read: never send blind
      self:store_down("opt-out lookup", oerr)
      later[#later + 1] = { e.id, now + 0.5, false }
    elseif out then
      skipped[#skipped + 1] = { e, "opted out since it was queued" }
    elseif gated then -- a fallback hop no longer needed
      skipped[#skipped + 1] = { e, gated }
    else
      -- the client's checks, made once and before the pacing decision: a
      -- first use of a region's numbering plan compiles its patterns, which
      -- must not sit between a decision and its send
      local ch = e.policy and e.policy.channel
      local checked, cerr
      if ch == "voice" then checked, cerr = client_mod.check_call(p)
      elseif ch == "verify" then checked = { to = p.to, channel = "call", locale = p.locale } -- Verify checks the rest
      else checked, cerr = client_mod.check_message(p) end
      local hold = checked and self:quiet_hold(e, now)
      if not checked then
        invalid[#invalid + 1] = { e, cerr }
      elseif hold then -- inside the recipient's quiet hours: back until they end
        later[#later + 1] = { e.id, hold, false }
      else
        local cost = e.segments or (checked._segments and checked._segments.segments) or 1
        local at, reserved = self:pace(e, cost, self.clock())
        local capped = at == 0 and self:capped(e, now)
        if capped then
          later[#later + 1] = { e.id, capped, false }
        elseif at == 0 then
          go[#go + 1] = e
          batch[#batch + 1] = checked
        else
          later[#later + 1] = { e.id, at, reserved }
        end
      end
    end
  end
  -- send first, the store writes after; the ring holds when each message
  -- left, not when it was decided (the checks and store reads of the rest
  -- of the round came in between)
  local t_send = self.clock()
  local measure = metrics.on()
  for _, e in ipairs(go) do
    local ring = e.ring_slot and self.recent[e.campaign]
    if ring and ring[e.ring_slot] == e.ring_at then ring[e.ring_slot] = t_send end
    -- pacing delay: queued to sent, for first attempts sent as soon as they
    -- could be (a resend or a retry waits for its backoff first)
    if measure and e.campaign then self.campaigns_seen[e.campaign] = true end
    if measure and e.attempts <= 1 and not e.resend_of and e.created_at then
      metrics.record("telua_pacing_delay_seconds", max(0, t_send - e.created_at), _M.sender_type(e.sender))
    end
  end
  local results
  if fl then
    for i, e in ipairs(go) do
      local ch = e.policy and e.policy.channel
      if ch == "voice" then fl:create_call(batch[i], { "send", e })
      elseif ch == "verify" then fl:start_verification(e.policy.service, batch[i], { "send", e })
      else fl:create_message(batch[i], { "send", e }) end
    end
    self.sending = self.sending + #go
  else
    local msgs, at = {}, {}
    results = {}
    for i, e in ipairs(go) do
      local ch = e.policy and e.policy.channel
      if ch == "voice" then
        results[i] = { self.client.calls.create(batch[i]) }
      elseif ch == "verify" then
        results[i] = { self.client.verify.start(e.policy.service, batch[i]) }
      else
        msgs[#msgs + 1] = batch[i]
        at[#msgs] = i
      end
    end
    local got = #msgs > 0 and self.client.messages.create_many(msgs, { checked = true }) or {}
    for j, r in ipairs(got) do results[at[j]] = r end
  end
  -- every write of the round in one transaction (filed again at the next
  -- round, before anything new is claimed, if the store failed)
  local function filing()
    for _, x in ipairs(later) do store.outbox:defer(x[1], x[2], x[3]) end
    for _, x in ipairs(skipped) do
      local e, why = x[1], x[2]
      store.outbox:skip(e.id, why)
      metrics.record("telua_sends_total", 1, "skipped", "")
      self.log("info", ("outbox %d to %s: %s; skipped"):format(e.id, e.params.to, why))
    end
    for _, x in ipairs(invalid) do self:file(x[1], nil, x[2], now) end
    for i, r in ipairs(results or {}) do self:file(go[i], r[1], r[2], now) end
    return true
  end
  local ok, terr = store:transaction(filing)
  if not ok then
    self:store_down("filing a round", terr)
    self:keep_unfiled(filing)
  end
  return #claimed
end

-- A filing the store refused: written again, in order, before the next claim.
function Sender:keep_unfiled(filing)
  self.unfiled = self.unfiled or {}
  self.unfiled[#self.unfiled + 1] = filing
end

--- Files what came back from the flight (sends, reconciliation lookups,
-- status fetches), waiting up to `wait` seconds for a first answer.
-- @treturn number how many answers were filed, or -1 when the store
--   refused them (they are filed again before the next claim)
function Sender:collect(wait)
  local got = self.flight:poll(wait)
  if #got == 0 then return 0 end
  local now = self.clock()
  for _, r in ipairs(got) do
    local kind = r[1][1]
    if kind == "send" then self.sending = self.sending - 1
    elseif kind == "reconcile" then self.looking[r[1][2].id] = nil
    elseif kind == "refresh" then self.fetching[r[1][2]] = nil end
  end
  local function filing()
    for _, r in ipairs(got) do
      local kind, v, err = r[1][1], r[2], r[3]
      if kind == "send" then
        self:file(r[1][2], v, err, now)
      elseif kind == "reconcile" then
        self:reconciled(r[1][2], v and v.messages, now)
      elseif kind == "check" then
        self:checked(v, err)
      elseif v then
        self:refreshed(v)
      end
    end
    return true
  end
  local ok, terr = self.store:transaction(filing)
  if not ok then
    self:store_down("filing answers", terr)
    self:keep_unfiled(filing)
    return -1
  end
  return #got
end

--- Waits up to `seconds`: for answers when requests are out (filed as
-- they come), else asleep.
function Sender:wait(seconds, sleep)
  if self.flight and self.flight:count() > 0 then
    self:collect(seconds)
  else
    sleep(seconds)
  end
end

--- Files the answers of the sends still out, for up to `seconds` (at a stop).
function Sender:settle(seconds)
  if not self.flight then return end
  local deadline = core.monotonic() + seconds
  while self.sending > 0 do
    local left = deadline - core.monotonic()
    if left <= 0 then break end
    self:collect(min(left, 0.1))
  end
end

local OUTBOX_STATES = { "queued", "sending", "sent", "failed", "skipped", "unknown" }
local CAMPAIGN_FIGURES = { "queued", "sending", "sent", "failed", "skipped", "unknown", "delivered",
                           "undelivered", "msg_failed" }

--- How often the sender counts the outbox for the host's metrics (seconds).
_M.GAUGE_INTERVAL = 2

--- Counts the outbox by state, and the entries of each campaign it has
-- sent for, into the host's metrics (`telua_outbox_entries`,
-- `telua_campaign_entries`). A campaign is shown until it has nothing
-- left to send and its figures were shown once more.
function Sender:publish_gauges()
  local store = self.store
  local counts = store.outbox:counts()
  if counts then
    for _, st in ipairs(OUTBOX_STATES) do metrics.record("telua_outbox_entries", counts[st] or 0, st) end
  end
  for name in pairs(self.campaigns_seen) do
    local p = store.outbox:progress(name)
    if p then
      for _, k in ipairs(CAMPAIGN_FIGURES) do metrics.record("telua_campaign_entries", p[k] or 0, name, k) end
      if (p.queued or 0) + (p.sending or 0) == 0 then self.campaigns_seen[name] = nil end
    end
  end
end

--- Plans when each of a list of entries would go, by the pacing this
-- sender applies, simulated on a clock of its own: its sender type's rate
-- and the account's (`RATES`, or the host's `--send-rates`), a campaign's
-- own rate, the entries' due times and their quiet hours. It is the
-- sender's own round, event by event: an entry due inside its recipient's
-- quiet hours goes back until they end (taking no pacing slot); else
-- `pace` decides (now, a slot held up to a second ahead, or a look again
-- shortly before its turn), as a round of `step` does. `telua campaign`
-- estimates a campaign's time and its progress ETA with it.
-- @tparam table list entries `{ sender = FROM, to = TO, segments = N,
--   not_before = EPOCH, campaign = NAME, rate = MPS, policy = POLICY }`
--   (as queued; `segments` default 1, `not_before` default `start`)
-- @tparam[opt] table opts `rates` (default `RATES`), `start` (epoch
--   seconds, default now)
-- @treturn table the send time of each entry (epoch seconds, the list's
--   order), then `{ finish = EPOCH (the last send), held = N (entries that
--   wait for quiet hours to end), held_until = EPOCH (the latest such end) }`
function _M.schedule(list, opts)
  opts = opts or {}
  local start = opts.start or core.time()
  -- a sender of its own on a clock of its own (its limiters' keys its own:
  -- their state is process-wide, shared with a sender pacing for real)
  local s = _M.new{ store = {}, client = {}, rates = opts.rates or _M.RATES, clock = function() return start end }
  local events = heap_mod.new() -- the outbox: (time, entry), earliest first
  local entries = {}
  for i, x in ipairs(list) do
    entries[i] = { sender = x.sender, params = { to = x.to }, policy = x.policy, campaign = x.campaign, rate = x.rate,
                   reserved = 0, cost = x.segments or 1 }
    events:push{ at = max(start, x.not_before or start), i = i }
  end
  local times, held, held_until, finish, waited = {}, 0, nil, start, {}
  while events.n > 0 do
    local ev = events:pop()
    local t, i = ev.at, ev.i
    local e = entries[i]
    local hold = s:quiet_hold(e, t)
    if hold then
      e.reserved = 0
      if not waited[i] then waited[i], held = true, held + 1 end
      held_until = max(held_until or hold, hold)
      events:push{ at = hold, i = i }
    else
      local at, reserved = s:pace(e, e.cost, t)
      if at == 0 then
        times[i] = t
        finish = max(finish, t)
      else
        e.reserved = reserved and 1 or 0
        events:push{ at = at, i = i }
      end
    end
  end
  return times, { finish = finish, held = held, held_until = held_until }
end

--- The shortest time between two rounds that found work (seconds).
_M.TICK = 0.004

--- How long another host's claim on an outbox entry stands (seconds): past
-- it, the entry is taken over and reconciled. Longer than the client's
-- request timeout (30 s), so a live host always files first.
_M.VISIBILITY = 60

--- How long after its claim an in-flight entry that Twilio does not list
-- is taken as never created and queued again: past the client's request
-- timeout (30 s), Twilio has either created the message or never will.
_M.RECONCILE_GRACE = 35

--- Reconciles entries a crash left in flight (see the module notes): each
-- is looked for in Twilio's list (same To, From and Body, created after it
-- was claimed). Found: `sent` with its SID. Not found once the grace time
-- has passed: queued again. Not found before that, or the list cannot be
-- read: left `unknown` and looked at again on the next call.
-- @tparam[opt] number now epoch seconds
-- @treturn number how many were filed (found or queued again)
function Sender:reconcile(now)
  local store = self.store
  now = now or self.clock()
  if not self.recovered then -- once, at start: what was `sending` belongs to the last run
    self.recovered = store.outbox:reclaim() ~= nil
  end
  local rows = store.outbox:unreconciled()
  if not rows then return 0, 1 end -- the store cannot be read: again later
  if self.flight then
    -- beside sending: each lookup is a call of the flight, filed when its
    -- answer is in (`collect`); the rows still looked for count as pending
    for _, id in ipairs(rows) do
      if not self.looking[id] then
        local e = store.outbox:get(id)
        if e and e.params then
          self.looking[id] = true
          self.flight:list_messages({ to = e.params.to, page_size = 50 }, { "reconcile", e })
        end
      end
    end
    return 0, #rows
  end
  local found, requeued = 0, 0
  for _, id in ipairs(rows) do
    local e = store.outbox:get(id)
    local list = e and e.params and self.client.messages.list{ to = e.params.to, limit = 50 }
    local r = e and self:reconciled(e, list, now)
    if r == "found" then found = found + 1 elseif r == "requeued" then requeued = requeued + 1 end
  end
  return found + requeued, #rows - found - requeued
end

-- The answer to the sender's first request (a page of one message): it
-- checks the credentials (a 20003 is logged now, not at the first
-- message) and opens the connection.
function Sender:checked(page, err)
  if page then
    self.log("info", "sender: " .. self.client.api_base .. " answers; credentials accepted")
  else
    self.log("warn", "sender: first request failed: " .. tostring(err))
  end
end

--- Files one in-flight entry by Twilio's list of messages to its number:
-- the message found (same From and Body, created after the claim) is the
-- entry's, `sent`; none once the grace time has passed, queued again; no
-- list (Twilio could not be asked) or still in the grace time, left.
-- @treturn string|nil `"found"`, `"requeued"` or nil (still unknown)
function Sender:reconciled(e, list, now)
  local store, p = self.store, e.params
  local hit
  for _, m in ipairs(list or {}) do
    local created = client_mod.parse_date(m.date_created)
    if m.from == (p.from or m.from) and m.body == (p.body or m.body) and
       (not created or created >= e.updated_at - 60) then
      hit = m
      break
    end
  end
  if hit then
    store.outbox:complete(e.id, hit.sid, "reconciled after a restart")
    store:message_status(hit.sid, hit.status or "queued", { to = p.to, from = p.from })
    self.log("info", ("outbox %d: in flight at the last stop; found at Twilio as %s"):format(e.id, hit.sid))
    return "found"
  elseif list and now - e.updated_at >= _M.RECONCILE_GRACE then
    store.outbox:requeue(e.id, "not at Twilio after a restart: queued again", now)
    self.log("info", ("outbox %d: in flight at the last stop; not at Twilio: queued again"):format(e.id))
    return "requeued"
  end
  return nil
end

--- Asks Twilio for the status of sent messages whose log has no final
-- status yet (their callbacks may have come while the host was down):
-- at start, then every minute for those sent over a minute ago.
-- @tparam number older_than seconds since the send
-- @treturn number how many were updated
function Sender:refresh_statuses(older_than, now)
  local store = self.store
  now = now or self.clock()
  local n = 0
  for _, sid in ipairs(store.outbox:unfinal(older_than, now)) do
    if self.flight then -- beside sending: filed when the answer is in
      if not self.fetching[sid] then
        self.fetching[sid] = true
        self.flight:fetch_message(sid, { "refresh", sid })
      end
    else
      local m = self.client.messages.fetch(sid)
      if m and self:refreshed(m) then n = n + 1 end
    end
  end
  if n > 0 then self.log("info", ("outbox: %d message statuses fetched from Twilio"):format(n)) end
  return n
end

--- Files a message's status as Twilio answered a fetch; true when it moved on.
function Sender:refreshed(m)
  if not (m.status and store_mod.STATUS_RANK[m.status]) then return false end
  local store = self.store
  local changed, now_status = store:message_status(m.sid, m.status, { error_code = m.error_code })
  if not changed then return false end
  local e = self.on_event and store.outbox:get(m.sid)
  self:emit("status", { outbox_id = e and e.id, from = m.from, to = m.to, message_sid = m.sid,
                        status = now_status, error_code = tonumber(m.error_code) })
  return true
end

--- The sender thread's loop (the host calls it; it returns when `stopping()` is true).
-- @tparam table opts as for `new`, plus `stopping` (function -> boolean)
--   and `sleep` (function(seconds))
function _M.run(opts)
  local s = _M.new(opts)
  -- one small request first: it checks the credentials (a 20003 is logged
  -- now, not at the first message) and opens the connection, so the first
  -- paced message does not carry the set-up time
  if s.flight then
    s.flight:list_messages({ page_size = 1 }, { "check" }) -- answered beside the sending
  else
    s:checked(s.client.messages.page{ page_size = 1 })
  end
  local _, pending = s:reconcile()
  s:refresh_statuses(0)
  local sleep, stopping, store = opts.sleep, opts.stopping, opts.store
  local idle = 0
  local next_reconcile, next_refresh = core.time() + 5, core.time() + 60
  local next_takeover = core.time() + s.visibility / 4
  local next_gauges = 0
  while not stopping() do
    local t = core.time()
    if t >= next_takeover then -- another host's claims past the visibility timeout
      local n = store.outbox:takeover(s.visibility)
      if n and n > 0 then
        s.log("warn", ("outbox: took over %d entries another host claimed and did not file within %gs; "
                       .. "reconciling them with Twilio"):format(n, s.visibility))
        pending, next_reconcile = pending + n, t
      end
      next_takeover = t + s.visibility / 4
    end
    if pending > 0 and t >= next_reconcile then
      _, pending = s:reconcile()
      next_reconcile = t + 5
    end
    if t >= next_refresh then
      s:refresh_statuses(60)
      next_refresh = t + 60
    end
    if t >= next_gauges and metrics.on() and not s.down then -- (never poll a store known to be down)
      s:publish_gauges()
      next_gauges = t + _M.GAUGE_INTERVAL
    end
    local n = s:step()
    if n < 0 then
      sleep(0.5) -- the store cannot be reached
    elseif n > 0 and n < s.concurrency then
      -- everything due was taken: rounds at most every TICK, so at a high
      -- rate a round carries several messages (each at most TICK late)
      s:wait(_M.TICK, sleep)
    elseif n == 0 then
      -- nothing due: sleep until the next entry (exactly, so slow paces
      -- keep their schedule), at most 20 ms (new work may arrive)
      local nxt = store.outbox:next_due()
      local now = core.time()
      local wait = not nxt and 0.02 or nxt > now and min(0.02, nxt - now) or _M.TICK
      s:wait(wait, sleep)
      idle = idle + 1
      if idle % 3000 == 0 then
        store:kv_expire()
        for k, turn in pairs(s.waiting) do if turn < now then s.waiting[k] = nil end end
      end
    end
  end
  s:settle(5) -- what is out is filed if it answers soon; else reconciled at the next start
end

return _M
