--- The bookkeeping of status callbacks: the message log and resends.
--
-- Set as a router's `on_status` (`telua.host.load` and `telua.ngx` do it); the router
-- only dispatches. For a message status callback it logs the status,
-- moves the store's message log forward (a status only moves forward:
-- Twilio's callbacks may come late or twice; `req.status_changed` and
-- `req.message_status` tell the handler), tells `on_event`, and queues a
-- resend of an undelivered message with a transient carrier error. A call
-- status is logged. When the message log cannot be written the answer is
-- 503, so that Twilio retries the callback.
--
-- Resends (`settings.resend_codes`, default 30003 unreachable handset and
-- 30008 unknown error; Twilio's guidance on error codes): queued again from
-- the outbox after `settings.resend_backoff` seconds (default 300),
-- doubling each time, up to `settings.resend_max` resends (default 3). A
-- repeated callback cannot queue it twice (the new entry's dedupe key is
-- the SID). A message sent with fallback channels (`telua.fallback`) gets
-- its next channel instead of a resend.
--
-- @module telua.status

local metrics = require "telua.metrics"
local store_mod = require "telua.store"
local router_mod = require "telua.router"
local fallback = require "telua.fallback"

local format, tostring, tonumber = string.format, tostring, tonumber

local _M = { _VERSION = "0.1.0" }

local DEFAULT_RESEND = { [30003] = true, [30008] = true }
local FINAL = { delivered = true, read = true, undelivered = true, failed = true }

-- Queues the resend of sid (outbox entry e) when its code calls for one.
local function resend(router, e, sid, code)
  if not code then return end
  local settings, store = router.settings, router.store
  local codes = settings.resend_codes or DEFAULT_RESEND
  if not codes[code] then return end
  local n = 1
  local prev = e
  while prev and prev.resend_of do
    n = n + 1
    prev = store.outbox:get(prev.resend_of)
  end
  if n > (settings.resend_max or 3) then
    router.log("info", format("%s undelivered (%d) after %d resends: giving up", sid, code, n - 1))
    return
  end
  local delay = (settings.resend_backoff or 300) * 2 ^ (n - 1)
  local id = store.outbox:enqueue(e.params, { resend_of = e.id, dedupe = "resend:" .. sid,
                                          not_before = require("telua.core").time() + delay,
                                          optout_scope = e.optout_scope })
  router.log("info", format("%s undelivered (%d): resend %d queued as outbox %s in %.0fs", sid, code, n,
                            tostring(id), delay))
end

--- Keeps the books of one status callback (a router's `on_status`).
-- @tparam table router the `telua.router`
-- @tparam table r the request table the handler will get
-- @return nil to go on to the handler, or a response (503 when the message
--   log could not be written)
function _M.record(router, r)
  local p, store, log = r.params, router.store, router.log
  if p.MessageSid then
    local status = p.MessageStatus or p.SmsStatus
    local code = tonumber(p.ErrorCode)
    log("info", format("status %s %s%s", p.MessageSid, tostring(status), p.ErrorCode and (" error " .. p.ErrorCode) or ""))
    local known = store_mod.STATUS_RANK[status]
    -- label values from Twilio's own set only (the labels stay bounded)
    metrics.record("telua_status_callbacks_total", 1, known and status or "other", code or "")
    if not store or not known then return nil end
    local changed, now = store:message_status(p.MessageSid, status, { to = r.to, from = r.from, error_code = code })
    if changed == nil then return router_mod.store_failed(log, "message log update of " .. p.MessageSid, now) end
    r.status_changed, r.message_status = changed, now
    if changed and FINAL[now] then
      metrics.record("telua_messages_final_total", 1, p.From or "", now, code or "")
    end
    if changed then
      if router.on_event then
        local e = store.outbox:get(p.MessageSid)
        router:emit("status", { from = r.from, to = r.to, message_sid = p.MessageSid, status = now,
                                 error_code = code, outbox_id = e and e.id })
      end
      local e = (status == "undelivered" or status == "failed") and store.outbox:get(p.MessageSid)
      if e and e.policy and e.policy.fallback then -- its fallback channel instead of a resend
        fallback.on_failed(store, e, code, require("telua.core").time(), log)
      elseif e then
        resend(router, e, p.MessageSid, code)
      end
    end
  elseif p.CallSid then
    log("info", format("status %s %s%s", p.CallSid, tostring(p.CallStatus),
                       p.CallDuration and (" " .. p.CallDuration .. "s") or ""))
  end
  return nil
end

--- Makes a router keep the books of its status callbacks.
-- @tparam table router a `telua.router`
-- @treturn table the router
function _M.attach(router)
  router.on_status = _M.record
  return router
end

return _M
