--- IVR flows: a table of named steps, each answering with TwiML.
--
-- Twilio is stateless between the requests of a call: each `<Gather>`,
-- `<Record>` or `<Redirect>` names the URL of the next request. A flow
-- mounted at `/voice/incoming` answers its `start` step there and step
-- `name` at `/voice/incoming/name`; `call:url("name", {k = v})` builds that
-- URL with state in its query string (read back as `call.query.k`), and
-- `call:get(k)` / `call:set(k, v)` keep state in the store keyed by CallSid.
--
-- @module telua.flow
-- @usage
-- local flow = require "telua.flow"
-- local menu = flow.new{ start = "menu", steps = {
--   menu = function(call)
--     local r = twiml.voice()
--     r:gather{ num_digits = 1, action = call:url("choice") }:say("Press 1.")
--     return r
--   end,
--   choice = function(call) ... end,
-- } }

local webhook = require "telua.webhook"

local type, pairs, error, setmetatable, tostring, format = type, pairs, error, setmetatable, tostring, string.format

local _M = { _VERSION = "0.1.0" }
local Flow = {}
Flow.__index = Flow

--- Defines a flow.
-- @tparam table def `start` (name of the first step), `steps` (name ->
--   function(call) returning TwiML), optional `ttl` (seconds the store
--   keeps call state, default 14400)
-- @treturn table the flow, to mount under `voice` in a rules table
-- @raise when the definition is malformed (the rules file fails to load)
function _M.new(def)
  if type(def) ~= "table" then error("flow.new needs a table", 2) end
  if type(def.steps) ~= "table" then error("flow.new: steps must be a table of functions", 2) end
  local first
  for name, fn in pairs(def.steps) do
    if type(name) ~= "string" or not name:match("^[%w_%-]+$") then
      error("flow.new: step names must be words ([A-Za-z0-9_-]), got " .. tostring(name), 2)
    end
    if type(fn) ~= "function" then error("flow.new: step '" .. name .. "' must be a function", 2) end
    first = first or fn
  end
  if type(def.start) ~= "string" or not def.steps[def.start] then
    error("flow.new: start must name one of the steps", 2)
  end
  return setmetatable({ is_flow = true, start = def.start, steps = def.steps,
                        ttl = def.ttl or 14400, source_fn = def.steps[def.start] }, Flow)
end

local Call = {}
Call.__index = function(t, k) return Call[k] or t._req[k] end

--- URL of a step of this flow, with state in the query string.
-- @tparam string step a step name
-- @tparam[opt] table params query parameters (map, written sorted)
-- @treturn string an absolute path, e.g. `/voice/incoming/choice?tries=2`
function Call:url(step, params)
  if not self._flow.steps[step] then error("flow: no step named '" .. tostring(step) .. "'", 2) end
  local u = self._base .. "/" .. step
  if params and next(params) then u = u .. "?" .. webhook.encode_form(params) end
  return u
end

local function call_ns(self)
  local sid = self._req.call_sid
  if not sid then error("flow: call state needs a CallSid", 3) end
  if not self._req.store then error("flow: call state needs a store", 3) end
  return "call:" .. sid
end

--- Reads call state kept with `set`.
-- @treturn string|nil
function Call:get(key)
  return (self._req.store:kv_get(call_ns(self), key))
end

--- Keeps call state for the rest of the call (strings; numbers are converted).
function Call:set(key, value)
  return assert(self._req.store:kv_set(call_ns(self), key, tostring(value), self._flow.ttl))
end

--- Runs the step for a request (called by the router).
function Flow:run(req, base, step, ctx, respond)
  step = step or self.start
  local fn = self.steps[step]
  if not fn then
    return { status = 404, content_type = "text/plain", body = format("no step '%s' in flow %s\n", step, base) }
  end
  local info = debug.getinfo(fn, "S")
  ctx.rule = (info.source:sub(1, 1) == "@" and info.source:sub(2) or info.short_src) .. ":" .. info.linedefined
  local query = {}
  if req.query and req.query ~= "" then
    local q = webhook.parse_form(req.query)
    if q then query = webhook.first_values(q) end
  end
  local call = setmetatable({ _req = req, _flow = self, _base = base, step = step, query = query }, Call)
  return respond(fn(call), "voice")
end

return _M
