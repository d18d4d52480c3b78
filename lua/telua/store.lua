--- Durable state on SQLite: opt-outs and expiring key/values.
--
-- One file in WAL mode, safe to open from several threads or processes
-- (each opens its own connection). Times are wall-clock seconds since the
-- epoch (records, not pacing). Phone numbers stay strings.
--
-- @module telua.store
-- @usage
-- local store = assert(require("telua.store").open("sqlite:/var/lib/telua/telua.db"))
-- store:optout_add("+14155550100", "+14155550199", "STOP")
-- assert(store:is_opted_out("+14155550100", "+14155550199"))

local core = require "telua.core"

local type, error, tostring, setmetatable, os_time = type, error, tostring, setmetatable, os.time

local _M = { _VERSION = "0.1.0" }
local Store = {}
Store.__index = Store

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS optouts (
  sender     TEXT NOT NULL,      -- our number (the To of the inbound message)
  recipient  TEXT NOT NULL,      -- their number (the From)
  keyword    TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (sender, recipient)
);
CREATE TABLE IF NOT EXISTS kv (
  ns         TEXT NOT NULL,
  key        TEXT NOT NULL,
  value      TEXT NOT NULL,
  expires_at INTEGER,            -- NULL: never
  PRIMARY KEY (ns, key)
);
CREATE INDEX IF NOT EXISTS kv_expiry ON kv (expires_at) WHERE expires_at IS NOT NULL;
]]

--- Opens (creating if needed) a store.
-- @tparam string spec `"sqlite:PATH"`, or `"memory"` for a private in-memory database
-- @return a store, or `nil, message, "store"`
-- @raise when spec is not a string
function _M.open(spec)
  if type(spec) ~= "string" then error("store spec must be a string", 2) end
  local path
  if spec == "memory" then path = ":memory:"
  else path = spec:match("^sqlite:(.+)$") end
  if not path then return nil, "unsupported store '" .. spec .. "' (use sqlite:PATH)", "store" end
  local db, err = core.sqlite_open(path)
  if not db then return nil, err, "store" end
  local ok, serr = db:exec(SCHEMA)
  if not ok then
    db:close()
    return nil, serr, "store"
  end
  return setmetatable({ db = db, path = path }, Store)
end

local function check_number(v, name)
  if type(v) ~= "string" or v == "" then error(name .. " must be a non-empty string", 3) end
end

--- Records that `recipient` opted out of messages from `sender`.
-- @tparam string sender our number (E.164 or a channel address such as `whatsapp:+1...`)
-- @tparam string recipient their number
-- @tparam[opt="STOP"] string keyword the word they sent
-- @return `true`, or `nil, message, "sqlite"`
function Store:optout_add(sender, recipient, keyword)
  check_number(sender, "sender")
  check_number(recipient, "recipient")
  local n, err, code = self.db:run(
    "INSERT INTO optouts (sender, recipient, keyword, created_at) VALUES (?, ?, ?, ?) " ..
    "ON CONFLICT (sender, recipient) DO UPDATE SET keyword = excluded.keyword",
    sender, recipient, keyword or "STOP", os_time())
  if not n then return nil, err, code end
  return true
end

--- Removes an opt-out (after START, YES or UNSTOP).
-- @return `true` (also when there was none), or `nil, message, "sqlite"`
function Store:optout_remove(sender, recipient)
  check_number(sender, "sender")
  check_number(recipient, "recipient")
  local n, err, code = self.db:run("DELETE FROM optouts WHERE sender = ? AND recipient = ?",
                                   sender, recipient)
  if not n then return nil, err, code end
  return true
end

--- Whether `recipient` has opted out of messages from `sender`.
-- @return boolean, or `nil, message, "sqlite"`
function Store:is_opted_out(sender, recipient)
  check_number(sender, "sender")
  check_number(recipient, "recipient")
  local rows, err, code = self.db:query(
    "SELECT 1 AS x FROM optouts WHERE sender = ? AND recipient = ?", sender, recipient)
  if not rows then return nil, err, code end
  return rows[1] ~= nil
end

--- Sets a value in namespace `ns` with an optional time to live. Every
-- thousandth set also deletes the expired values (`kv_expire`).
-- @tparam string ns namespace, e.g. `"flow:CA123..."`
-- @tparam string key
-- @tparam string value
-- @tparam[opt] number ttl seconds; nil keeps it until deleted
-- @return `true`, or `nil, message, "sqlite"`
function Store:kv_set(ns, key, value, ttl)
  if type(ns) ~= "string" or type(key) ~= "string" then error("ns and key must be strings", 2) end
  if type(value) ~= "string" then error("value must be a string", 2) end
  local n, err, code = self.db:run(
    "INSERT INTO kv (ns, key, value, expires_at) VALUES (?, ?, ?, ?) " ..
    "ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
    ns, key, value, ttl and (os_time() + ttl) or nil)
  if not n then return nil, err, code end
  self.sets = (self.sets or 0) + 1
  if self.sets % 1000 == 0 then self:kv_expire() end -- expired rows go now and then, not only on read
  return true
end

--- Gets a value; expired values read as nil.
-- @return the string, `nil` when absent, or `nil, message, "sqlite"`
function Store:kv_get(ns, key)
  if type(ns) ~= "string" or type(key) ~= "string" then error("ns and key must be strings", 2) end
  local rows, err, code = self.db:query(
    "SELECT value FROM kv WHERE ns = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)",
    ns, key, os_time())
  if not rows then return nil, err, code end
  return rows[1] and rows[1].value
end

--- Deletes expired key/values; returns how many.
function Store:kv_expire()
  return self.db:run("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", os_time())
end

--- Closes the connection (idempotent).
function Store:close()
  self.db:close()
end

Store.__tostring = function(self) return "telua.Store (" .. tostring(self.path) .. ")" end

return _M
