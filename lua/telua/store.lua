--- Durable state on SQLite: opt-outs, the message log, WhatsApp session windows, counters, key/values.
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

local type, error, tostring, setmetatable, pairs, ipairs, os_time =
  type, error, tostring, setmetatable, pairs, ipairs, os.time

local _M = { _VERSION = "0.1.0" }
local Store = {}
Store.__index = Store
local Outbox = {} -- store.outbox: see "outbox" below
Outbox.__index = Outbox

-- The error an entry gets when the host stopped (or crashed) while its
-- request was in flight: Twilio may or may not have it (Outbox:reclaim).
local IN_FLIGHT_AT_STOP = "in flight when the host stopped"

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
CREATE TABLE IF NOT EXISTS messages (
  sid        TEXT PRIMARY KEY,   -- MessageSid
  status     TEXT NOT NULL,
  rank       INTEGER NOT NULL,   -- status order; only ever grows
  to_addr    TEXT,
  from_addr  TEXT,
  error_code INTEGER,
  segments   INTEGER,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS windows (
  sender     TEXT NOT NULL,      -- our WhatsApp address
  recipient  TEXT NOT NULL,      -- theirs
  last_in    INTEGER NOT NULL,   -- their last inbound message
  PRIMARY KEY (sender, recipient)
);
CREATE TABLE IF NOT EXISTS outbox (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  params     TEXT NOT NULL,      -- JSON: the create parameters (snake_case)
  sender     TEXT NOT NULL,      -- From or MessagingServiceSid: the pacing key
  to_addr    TEXT NOT NULL,
  state      TEXT NOT NULL,      -- queued, sending, sent, failed, unknown, skipped
  attempts   INTEGER NOT NULL DEFAULT 0,
  not_before REAL NOT NULL,      -- epoch seconds: earliest send
  sid        TEXT,               -- MessageSid once Twilio took it
  error_code INTEGER,
  error      TEXT,
  resend_of  INTEGER,            -- the entry this one sends again
  dedupe     TEXT UNIQUE,        -- optional caller key: one entry per key
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL,
  campaign   TEXT,               -- the campaign it belongs to
  rate       REAL,               -- the campaign's pace, messages per second
  reserved   INTEGER NOT NULL DEFAULT 0, -- 1: not_before is a pacing slot already taken
  segments   INTEGER
);
DROP INDEX IF EXISTS outbox_due; -- (state, not_before) in the first version
CREATE INDEX IF NOT EXISTS outbox_slots ON outbox (state, reserved, not_before);
CREATE INDEX IF NOT EXISTS outbox_single ON outbox (state, reserved, not_before) WHERE campaign IS NULL;
CREATE INDEX IF NOT EXISTS outbox_sid ON outbox (sid) WHERE sid IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_campaign ON outbox (campaign) WHERE campaign IS NOT NULL;
CREATE TABLE IF NOT EXISTS counters (
  ns         TEXT NOT NULL,
  key        TEXT NOT NULL,
  count      INTEGER NOT NULL,
  started    INTEGER NOT NULL,   -- start of the current window
  PRIMARY KEY (ns, key)
);
]]

-- Message statuses in the order Twilio moves through them ("Outbound
-- Message Status in Status Callbacks"): a callback may arrive late or
-- twice, so a status only replaces one of a lower rank. The final states
-- share a rank: the first one reported stays.
local RANK = {
  accepted = 1, scheduled = 1, queued = 1, receiving = 1,
  sending = 2,
  sent = 3, received = 3,
  delivered = 4, undelivered = 4, failed = 4, canceled = 4, partially_delivered = 4,
  read = 5,
}
_M.STATUS_RANK = RANK

--- WhatsApp's customer service window: 24 hours after the user's last message.
_M.WINDOW_SECONDS = 24 * 3600

-- The process's shared in-memory database: SQLite's memdb VFS shares a
-- database whose name starts with "/" among every connection of the
-- process (every worker state of every rules generation, the sender), and
-- keeps it while one of them is open (the host holds one for its life).
_M.MEMORY_URI = "file:/telua-memory?vfs=memdb"

-- Schema versions (PRAGMA user_version) and how to reach each from the one
-- before. A database made before versions were kept reads 0 and goes
-- through 1, whose steps are all "if not there yet".
local MIGRATIONS = {
  -- 1: the tables of SCHEMA; outbox tables of the first releases lack the campaign columns
  function(db)
    local cols = db:query("PRAGMA table_info(outbox)") or {}
    if #cols > 0 then
      local have = {}
      for _, c in ipairs(cols) do have[c.name] = true end
      for _, add in ipairs{ "campaign TEXT", "rate REAL", "reserved INTEGER NOT NULL DEFAULT 0", "segments INTEGER" } do
        if not have[add:match("^(%w+)")] then
          local ok, err = db:exec("ALTER TABLE outbox ADD COLUMN " .. add)
          if not ok then return nil, err end
        end
      end
    end
    return db:exec(SCHEMA)
  end,
  -- 2: opt-out scopes: the Messaging Service a STOP came through, a lookup by
  -- recipient alone (account scope), and the scope an outbox entry is checked in
  function(db)
    return db:exec([[
      ALTER TABLE optouts ADD COLUMN service TEXT;
      CREATE INDEX optouts_recipient ON optouts (recipient);
      ALTER TABLE outbox ADD COLUMN optout_scope TEXT;
    ]])
  end,
  -- 3: an entry's delivery policy (JSON: quiet hours, a per-recipient cap)
  function(db)
    return db:exec("ALTER TABLE outbox ADD COLUMN policy TEXT")
  end,
}
_M.SCHEMA_VERSION = #MIGRATIONS

local function user_version(db)
  local rows, err = db:query("PRAGMA user_version")
  if not rows then return nil, err end
  return rows[1] and rows[1].user_version or 0
end

-- Brings db to SCHEMA_VERSION, each step in its own write transaction with
-- the version it reaches (so a step is never half done, and two processes
-- opening the same new file migrate it once).
local function migrate(db)
  for v = 1, #MIGRATIONS do
    local ok, err = db:atomically(function()
      local have, qerr = user_version(db)
      if not have then return nil, qerr end
      if have >= v then return true end
      local done, merr = MIGRATIONS[v](db)
      if not done then return nil, merr end
      return db:exec("PRAGMA user_version = " .. v)
    end)
    if not ok then return nil, ("schema migration to version %d: %s"):format(v, tostring(err)) end
  end
  local have = user_version(db) or 0
  if have > #MIGRATIONS then
    return nil, ("the database is at schema version %d, newer than this telua's %d"):format(have, #MIGRATIONS)
  end
  return true
end

--- Opens (creating if needed) a store, at the current schema version.
-- @tparam string spec `"sqlite:PATH"` (a file; `sqlite::memory:` is a
--   private in-memory database of this connection), `"memory"`: the
--   process's shared in-memory database (every connection of the process
--   opened with `"memory"` sees the same data; gone with the process), or
--   a Redis server: `redis://[user:password@]host[:port][/db]`,
--   `rediss://...` (TLS), `unix:///path/to/redis.sock[?db=N]` (see
--   `telua.store.redis`)
-- @tparam[opt] table opts Redis only: `connect = false` opens without
--   reaching the server (it is reached at the first call);
--   `optout_view = true` answers opt-out lookups in the account scope from
--   the process's view of the opt-out keys, kept exact by Redis's
--   invalidation messages (client-side caching; `telua.store.redis`)
-- @return a store, or `nil, message, "store"` (cannot open, or a database
--   of a newer schema version than this code knows)
-- @raise when spec is not a string
function _M.open(spec, opts)
  if type(spec) ~= "string" then error("store spec must be a string", 2) end
  if spec:find("^redis://") or spec:find("^rediss://") or spec:find("^unix://") then
    local redis = require "telua.store.redis"
    redis.bind(_M)
    return redis.open(spec, opts)
  end
  local path
  if spec == "memory" then path = _M.MEMORY_URI
  else path = spec:match("^sqlite:(.+)$") end
  if not path then
    return nil, "unsupported store '" .. spec .. "' (use sqlite:PATH, memory, redis://, rediss:// or unix://)", "store"
  end
  local db, err = core.sqlite_open(path)
  if not db then return nil, err, "store" end
  local ok, merr = migrate(db)
  if not ok then
    db:close()
    return nil, merr, "store"
  end
  local store = setmetatable({ db = db, path = path, backend = "sqlite" }, Store)
  store.outbox = setmetatable({ db = db, store = store }, Outbox)
  return store
end

-- Runs fn inside one write transaction (BEGIN IMMEDIATE: a read and the
-- write that depends on it, atomic across workers and processes). fn
-- returns its results, or nil, message, code to roll back; a raise inside
-- it rolls back too (in C: telua.SQLite's db:atomically). Inside an outer
-- transaction (Store:transaction) an inner one just runs in it: the outer
-- commit or rollback decides for both.
local function atomically(db, fn)
  return db:atomically(fn)
end

--- Runs fn inside one write transaction: every store call fn makes joins
-- it, and all of them commit together (one WAL commit instead of one per
-- call: the sender files a whole round of answers this way).
-- @tparam function fn returns a true value to commit, or nil, message to roll back
-- @return what fn returned | nil, message, code
function Store:transaction(fn)
  return atomically(self.db, fn)
end

local function check_number(v, name)
  if type(v) ~= "string" or v == "" then error(name .. " must be a non-empty string", 3) end
end

--- Opt-out scopes: how far a STOP reaches (`settings.optout_scope`).
-- `account` (the default): every send to that person, from any of the
-- business's numbers or services (the FCC's 2024 consent-revocation rule
-- treats a revocation as applying to the sender, not to one number);
-- `service`: the Messaging Service it came through (as Twilio does for a
-- service), and the number it was sent to; `number`: the one sender
-- number or service (as Twilio does for a standalone number).
_M.OPTOUT_SCOPES = { account = true, service = true, number = true }
_M.DEFAULT_OPTOUT_SCOPE = "account"

-- (called by in_scope, called by a Store method: level 4 blames its caller)
local function scope_of(opts)
  local scope = opts and opts.scope or _M.DEFAULT_OPTOUT_SCOPE
  if not _M.OPTOUT_SCOPES[scope] then
    error("opt-out scope must be account, service or number, got " .. tostring(scope), 4)
  end
  return scope
end

--- Records that `recipient` opted out of messages from `sender`.
-- @tparam string sender our number (E.164 or a channel address such as
--   `whatsapp:+1...`), or the Messaging Service SID (`MG...`) it was sent from
-- @tparam string recipient their number
-- @tparam[opt="STOP"] string keyword the word they sent (or "21610")
-- @tparam[opt] table opts `service`: the Messaging Service the message came
--   through (the inbound webhook's `MessagingServiceSid`)
-- @return `true`, or `nil, message, "sqlite"`
function Store:optout_add(sender, recipient, keyword, opts)
  check_number(sender, "sender")
  check_number(recipient, "recipient")
  local service = opts and opts.service
  if service == sender then service = nil end
  local n, err, code = self.db:run(
    "INSERT INTO optouts (sender, recipient, keyword, created_at, service) VALUES (?, ?, ?, ?, ?) " ..
    "ON CONFLICT (sender, recipient) DO UPDATE SET keyword = excluded.keyword, " ..
    "service = coalesce(excluded.service, optouts.service)",
    sender, recipient, keyword or "STOP", os_time(), service)
  if not n then return nil, err, code end
  return true
end

-- The opt-outs reaching a send from sender (and, if known, its Messaging
-- Service) to recipient, by scope: the WHERE clause (one constant SQL text
-- each, so the connection's statement cache keeps it prepared) and its
-- arguments. In the service scope: the pair itself, or the same Messaging
-- Service either way round.
local SCOPE_WHERE = {
  account = "recipient = ?1",
  number = "recipient = ?1 AND sender = ?2",
  service = "recipient = ?1 AND (sender = ?2 OR service = ?2)",
  service_of = "recipient = ?1 AND (sender = ?2 OR sender = ?3 OR service = ?2 OR service = ?3)",
}
local LOOKUP, REMOVE = {}, {}
for k, where in pairs(SCOPE_WHERE) do
  LOOKUP[k] = "SELECT 1 AS x FROM optouts WHERE " .. where .. " LIMIT 1"
  REMOVE[k] = "DELETE FROM optouts WHERE " .. where
end

-- Runs sqls[kind] (db:query or db:run, as method) with the arguments the
-- scope's WHERE clause takes.
local function in_scope(db, method, sqls, opts, sender, recipient)
  local scope, service = scope_of(opts), opts and opts.service
  if scope == "account" then return db[method](db, sqls.account, recipient) end
  if scope == "service" and service and service ~= sender then
    return db[method](db, sqls.service_of, recipient, sender, service)
  end
  return db[method](db, sqls[scope], recipient, sender)
end

--- Removes the opt-outs of `recipient` that a send from `sender` would
-- meet in the scope (after START, YES or UNSTOP): in the account scope all
-- of them, in the service scope those of the service, in the number scope
-- the one pair.
-- @tparam[opt] table opts `scope` (default `"account"`), `service`
-- @return `true` (also when there was none), or `nil, message, "sqlite"`
-- @raise on an unknown scope
function Store:optout_remove(sender, recipient, opts)
  check_number(sender, "sender")
  check_number(recipient, "recipient")
  local n, err, code = in_scope(self.db, "run", REMOVE, opts, sender, recipient)
  if not n then return nil, err, code end
  return true
end

local OPT_CACHE_MAX = 10000 -- answers kept per connection (see is_opted_out)

--- Whether `recipient` has opted out of messages from `sender`, in the
-- scope (see `OPTOUT_SCOPES`).
-- @tparam string sender our number, or the Messaging Service SID sent from
-- @tparam string recipient their number
-- @tparam[opt] table opts `scope` (default `"account"`), `service` (the
--   Messaging Service of a send from a number, when known)
-- @return boolean, or `nil, message, "sqlite"`
-- @raise on an unknown scope
--
-- Answers are kept per connection while the database is unchanged: the
-- WAL index's header (`db:wal_mark()`), which any commit by any connection
-- or process rewrites, is read first, and a kept answer is given only
-- while it reads the same. A webhook's lookup then takes no SQLite lock
-- until something is written; inside a transaction there is no mark, and
-- the lookup goes to SQLite.
function Store:is_opted_out(sender, recipient, opts)
  if type(sender) ~= "string" or sender == "" then check_number(sender, "sender") end
  if type(recipient) ~= "string" or recipient == "" then check_number(recipient, "recipient") end
  local mark, key = self.db:wal_mark(), nil
  if mark then
    if mark ~= self.opt_mark then self.opt_cache, self.opt_mark, self.opt_n = {}, mark, 0 end
    -- the account scope looks at the recipient alone (no number holds a NUL)
    local scope = opts and opts.scope
    if scope == nil or scope == "account" then key = recipient
    else key = scope .. "\0" .. (opts.service or "") .. "\0" .. sender .. "\0" .. recipient end
    local hit = self.opt_cache[key]
    if hit ~= nil then return hit end
  end
  local rows, err, code = in_scope(self.db, "query", LOOKUP, opts, sender, recipient)
  if not rows then return nil, err, code end
  local out = rows[1] ~= nil
  if key and self.opt_n < OPT_CACHE_MAX then
    self.opt_cache[key] = out
    self.opt_n = self.opt_n + 1
  end
  return out
end

--- Many opt-out lookups at once (the sender's round): on Redis one
-- round trip for all of them.
-- @tparam table list of `{ sender, recipient, opts }` (as `is_opted_out`)
-- @treturn table a boolean for each, in order
-- @return or `nil, message, code` when any lookup failed
-- @raise on an unknown scope or a bad number
function Store:is_opted_out_many(list)
  local out = {}
  for i, q in ipairs(list) do
    local v, err, code = self:is_opted_out(q[1], q[2], q[3])
    if v == nil then return nil, err, code end
    out[i] = v
  end
  return out
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

--- Records a message's status, moving it only forward.
-- Creates the entry on first sight. A status of a lower or equal rank than
-- the stored one (a late or repeated callback) changes nothing; the error
-- code, segments and addresses fill in whenever they are given.
-- @tparam string sid the MessageSid
-- @tparam string status Twilio's status (`queued`, `sent`, `delivered`, ...)
-- @tparam[opt] table fields `to`, `from`, `error_code` (number), `segments` (number)
-- @treturn boolean whether the status changed, and the stored status
-- @return or `nil, message, "sqlite"`
-- @raise on an unknown status or bad arguments
function Store:message_status(sid, status, fields)
  check_number(sid, "sid")
  local rank = RANK[status]
  if not rank then error("unknown message status '" .. tostring(status) .. "'", 2) end
  fields = fields or {}
  local db = self.db
  return atomically(db, function()
    local rows, err, code = db:query("SELECT status, rank FROM messages WHERE sid = ?", sid)
    if not rows then return nil, err, code end
    local n
    n, err, code = db:run(
      "INSERT INTO messages (sid, status, rank, to_addr, from_addr, error_code, segments, updated_at) " ..
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sid) DO UPDATE SET " ..
      "status = CASE WHEN excluded.rank > rank THEN excluded.status ELSE status END, " ..
      "updated_at = CASE WHEN excluded.rank > rank THEN excluded.updated_at ELSE updated_at END, " ..
      "to_addr = coalesce(excluded.to_addr, to_addr), from_addr = coalesce(excluded.from_addr, from_addr), " ..
      "error_code = coalesce(excluded.error_code, error_code), segments = coalesce(excluded.segments, segments), " ..
      "rank = max(rank, excluded.rank)",
      sid, status, rank, fields.to, fields.from, fields.error_code, fields.segments, os_time())
    if not n then return nil, err, code end
    local old = rows[1]
    if old == nil or rank > old.rank then return true, status end
    return false, old.status
  end)
end

--- A message's log entry.
-- @treturn table `{ sid, status, rank, to, from, error_code, segments, updated_at }` or nil
function Store:message_get(sid)
  check_number(sid, "sid")
  local rows, err, code = self.db:query(
    "SELECT sid, status, rank, to_addr AS [to], from_addr AS [from], error_code, segments, updated_at " ..
    "FROM messages WHERE sid = ?", sid)
  if not rows then return nil, err, code end
  return rows[1]
end

--- Notes an inbound WhatsApp message: it opens (or renews) the 24-hour window.
-- @tparam string sender our address (`whatsapp:+1...`)
-- @tparam string recipient the user's address
-- @tparam[opt] number at seconds since the epoch (default now)
function Store:window_touch(sender, recipient, at)
  check_number(sender, "sender")
  check_number(recipient, "recipient")
  local n, err, code = self.db:run(
    "INSERT INTO windows (sender, recipient, last_in) VALUES (?, ?, ?) " ..
    "ON CONFLICT (sender, recipient) DO UPDATE SET last_in = max(last_in, excluded.last_in)",
    sender, recipient, at or os_time())
  if not n then return nil, err, code end
  return true
end

--- Whether free-form WhatsApp messages may go to recipient now.
-- @treturn boolean open, and the time (epoch seconds) it closes or closed (nil: never opened)
function Store:window_open(sender, recipient, now)
  check_number(sender, "sender")
  check_number(recipient, "recipient")
  local rows, err, code = self.db:query(
    "SELECT last_in FROM windows WHERE sender = ? AND recipient = ?", sender, recipient)
  if not rows then return nil, err, code end
  if not rows[1] then return false, nil end
  local closes = rows[1].last_in + _M.WINDOW_SECONDS
  return (now or os_time()) < closes, closes
end

--- Counts an attempt against a limit per window (e.g. verifications per number).
-- The window starts at the first attempt and lasts `window` seconds; past
-- it the count starts again.
-- @tparam string ns e.g. `"verify"`
-- @tparam string key e.g. the phone number
-- @tparam number limit attempts allowed per window
-- @tparam number window seconds
-- @treturn boolean allowed, then the count in this window (this attempt
--   included when allowed) and the seconds until the window ends
-- @return or `nil, message, "sqlite"`
function Store:counter_hit(ns, key, limit, window, now)
  if type(ns) ~= "string" or type(key) ~= "string" then error("ns and key must be strings", 2) end
  if type(limit) ~= "number" or limit < 1 or type(window) ~= "number" or window <= 0 then
    error("limit must be >= 1 and window > 0 seconds", 2)
  end
  now = now or os_time()
  local db = self.db
  return atomically(db, function()
    local rows, err, code = db:query("SELECT count, started FROM counters WHERE ns = ? AND key = ?", ns, key)
    if not rows then return nil, err, code end
    local count, started = 0, now
    if rows[1] and rows[1].started + window > now then count, started = rows[1].count, rows[1].started end
    local allowed = count < limit
    if allowed then count = count + 1 end
    local n
    n, err, code = db:run(
      "INSERT INTO counters (ns, key, count, started) VALUES (?, ?, ?, ?) " ..
      "ON CONFLICT (ns, key) DO UPDATE SET count = excluded.count, started = excluded.started",
      ns, key, count, started)
    if not n then return nil, err, code end
    return allowed, count, started + window - now
  end)
end

-- ---------------------------------------------------------------------------
-- outbox: messages waiting to be sent by the host's sender, its own
-- interface (`store.outbox`) on the store's backend: enqueue,
-- enqueue_many, claim, then for each claimed entry complete, retry,
-- fail, skip, lose or defer; reclaim (at start: what a stopped sender
-- had claimed), unreconciled, requeue; get, counts, next_due, progress,
-- unfinal.
--
-- States: `queued` (waiting for `not_before`), `sending` (claimed by the
-- sender, request in flight), `sent` (Twilio answered with a SID),
-- `failed` (a permanent error), `skipped` (opted out at send time),
-- `unknown` (the host stopped or crashed while the request was in flight:
-- Twilio may or may not have the message; a person decides, nothing
-- resends it by itself).

local cjson = require "cjson.safe"

--- Queues a message for the sender.
-- @tparam table params create parameters (`to`, `from` or
--   `messaging_service_sid`, `body`, ...; see `telua.client`), already checked
-- @tparam[opt] table opts `not_before` (epoch seconds, default now),
--   `dedupe` (a key: a second add with the same key returns the first id),
--   `resend_of` (id of the entry this one repeats), `attempts`,
--   `campaign`, `rate`, `segments`, `optout_scope`, `policy` (the
--   sender's delivery policy: `{ quiet = { from = MINUTES, to = MINUTES },
--   max_per_day = N, fallback = CHAIN, ... }`, see `telua.quiet`,
--   `telua.fallback` and `telua.sender`; kept as JSON)
-- @treturn number the entry's id, and whether it was new
-- @return or `nil, message, code`
function Outbox:enqueue(params, opts)
  if type(params) ~= "table" then error("outbox:enqueue: params must be a table", 2) end
  opts = opts or {}
  local to = params.to
  local sender = params.from or params.messaging_service_sid
  if type(to) ~= "string" or type(sender) ~= "string" then
    error("outbox:enqueue: params need to and from (or messaging_service_sid)", 2)
  end
  local json, jerr = cjson.encode(params)
  if not json then return nil, "outbox:enqueue: " .. tostring(jerr), "json" end
  local policy = opts.policy and cjson.encode(opts.policy)
  local now = core.time()
  local db = self.db
  return atomically(db, function()
    if opts.dedupe then
      local rows, err, code = db:query("SELECT id FROM outbox WHERE dedupe = ?", opts.dedupe)
      if not rows then return nil, err, code end
      if rows[1] then return rows[1].id, false end
    end
    local rows, err, code = db:query(
      "INSERT INTO outbox (params, sender, to_addr, state, attempts, not_before, resend_of, dedupe, created_at, " ..
      "updated_at, campaign, rate, segments, optout_scope, policy) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, " ..
      "?, ?, ?, ?) RETURNING id",
      json, sender, to, opts.attempts or 0, opts.not_before or now, opts.resend_of, opts.dedupe, now, now,
      opts.campaign, opts.rate, opts.segments, opts.optout_scope, policy)
    if not rows then return nil, err, code end
    return rows[1].id, true
  end)
end

--- Queues many messages in one transaction (one fsync with
-- `synchronous = FULL`): a campaign's rows. Entries whose `dedupe` key is
-- already queued are skipped, so a rerun queues only what is missing.
-- @tparam table list of `{ params, opts }` as for `enqueue`
-- @treturn number how many were new
-- @return or `nil, message, code` (nothing of the batch is queued then)
function Outbox:enqueue_many(list)
  local db, now, added = self.db, core.time(), 0
  return atomically(db, function()
    for _, item in ipairs(list) do
      local params, opts = item[1], item[2] or {}
      local json, jerr = cjson.encode(params)
      if not json then return nil, "outbox:enqueue_many: " .. tostring(jerr), "json" end
      local n, err, code = db:run(
        "INSERT INTO outbox (params, sender, to_addr, state, attempts, not_before, dedupe, created_at, " ..
        "updated_at, campaign, rate, segments, policy) VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?, ?, ?, ?) " ..
        "ON CONFLICT (dedupe) DO NOTHING",
        json, params.from or params.messaging_service_sid, params.to, opts.not_before or now, opts.dedupe,
        now, now, opts.campaign, opts.rate, opts.segments, opts.policy and cjson.encode(opts.policy))
      if not n then return nil, err, code end
      added = added + n
    end
    return added
  end)
end

--- Counts a campaign's entries by state, with the delivery statuses the
-- message log has for the sent ones.
-- @treturn table `{ queued, sending, sent, failed, skipped, unknown,
--   reconciling (unknown ones the sender will still look for at Twilio),
--   delivered, undelivered, segments, first_sent, last_sent }` (times in epoch seconds)
function Outbox:progress(name)
  local db = self.db
  local out = { queued = 0, sending = 0, sent = 0, failed = 0, skipped = 0, unknown = 0,
                delivered = 0, undelivered = 0, msg_failed = 0, segments = 0 }
  local rows, err, code = db:query(
    "SELECT state, count(*) AS n, sum(coalesce(segments, 1)) AS seg, min(CASE WHEN state = 'sent' THEN updated_at END) AS first, " ..
    "max(CASE WHEN state = 'sent' THEN updated_at END) AS last FROM outbox WHERE campaign = ? GROUP BY state", name)
  if not rows then return nil, err, code end
  for _, r in ipairs(rows) do
    out[r.state] = r.n
    if r.state == "sent" then
      out.segments, out.first_sent, out.last_sent = r.seg or 0, r.first, r.last
    end
  end
  local rec = db:query("SELECT count(*) AS n FROM outbox WHERE campaign = ? AND state = 'unknown' AND sid IS NULL " ..
                       "AND error = ?", name, IN_FLIGHT_AT_STOP)
  out.reconciling = rec and rec[1] and rec[1].n or 0 -- the sender will look for these at Twilio
  rows = db:query("SELECT m.status, count(*) AS n FROM outbox o JOIN messages m ON m.sid = o.sid " ..
                  "WHERE o.campaign = ? GROUP BY m.status", name) or {}
  for _, r in ipairs(rows) do
    if r.status == "delivered" or r.status == "read" then out.delivered = out.delivered + r.n
    elseif r.status == "undelivered" then out.undelivered = out.undelivered + r.n
    elseif r.status == "failed" then out.msg_failed = out.msg_failed + r.n end
  end
  return out
end

local function outbox_row(r)
  if r then
    r.params = cjson.decode(r.params)
    if r.policy then r.policy = cjson.decode(r.policy) end
  end
  return r
end

local CLAIM = "UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_at = ? WHERE id IN " ..
  "(SELECT id FROM outbox %s WHERE state = 'queued' AND reserved = %d AND not_before <= ? %s " ..
  "ORDER BY not_before, id LIMIT ?) " ..
  "RETURNING id, params, sender, to_addr, attempts, not_before, resend_of, campaign, rate, reserved, segments, " ..
  "optout_scope, created_at, policy"
-- entries holding a pacing slot (their time is now); single messages (a
-- verification code must not wait behind a campaign's backlog); campaign
-- entries. Each through an index of its own.
local CLAIM_RESERVED = CLAIM:format("INDEXED BY outbox_slots", 1, "")
local CLAIM_SINGLE = CLAIM:format("INDEXED BY outbox_single", 0, "AND campaign IS NULL")
local CLAIM_BULK = CLAIM:format("INDEXED BY outbox_slots", 0, "AND campaign IS NOT NULL")

--- Claims up to `limit` due entries for sending (queued -> sending,
-- attempts + 1) in one transaction: first those holding a pacing slot,
-- then single messages, then campaign entries, each group oldest first.
-- @tparam number limit
-- @tparam[opt] number now epoch seconds
-- @treturn table the claimed entries `{ id, params, sender, to_addr, attempts, ... }`,
--   slot holders first, then by id
function Outbox:claim(limit, now)
  now = now or core.time()
  local db = self.db
  return atomically(db, function()
    local rows = {}
    for _, q in ipairs{ CLAIM_RESERVED, CLAIM_SINGLE, CLAIM_BULK } do
      local want = limit - #rows
      if want <= 0 then break end
      local got, err, code = db:query(q, now, now, want)
      if not got then return nil, err, code end
      for _, r in ipairs(got) do rows[#rows + 1] = r end
    end
    table.sort(rows, function(a, b)
      if a.reserved ~= b.reserved then return a.reserved > b.reserved end
      return a.id < b.id
    end)
    for _, r in ipairs(rows) do outbox_row(r) end
    return rows
  end)
end

--- Moves a claimed entry to its next state.
-- @tparam number id
-- @tparam string state `sent`, `failed`, `skipped`, `unknown` or `queued` (retry later)
-- @tparam[opt] table f `sid`, `error_code`, `error`, `not_before` (with `queued`)
function Outbox:set(id, state, f)
  f = f or {}
  local n, err, code = self.db:run(
    "UPDATE outbox SET state = ?, sid = coalesce(?, sid), error_code = ?, error = ?, " ..
    "not_before = coalesce(?, not_before), updated_at = ? WHERE id = ?",
    state, f.sid, f.error_code, f.error, f.not_before, core.time(), id)
  if not n then return nil, err, code end
  return n == 1
end

--- A claimed entry went out: Twilio took it (`sent`, with its SID).
-- @tparam number id
-- @tparam string sid the MessageSid
-- @tparam[opt] string note kept in the entry's `error` (e.g. "reconciled after a restart")
function Outbox:complete(id, sid, note)
  return self:set(id, "sent", { sid = sid, error = note })
end

--- A claimed entry failed for good (`failed`): a permanent error, or the
-- attempts are spent.
function Outbox:fail(id, code, message)
  return self:set(id, "failed", { error_code = code, error = message })
end

--- A claimed entry goes back to `queued`, due at `at` (epoch seconds): a
-- retryable error, with backoff.
function Outbox:retry(id, at, code, message)
  return self:set(id, "queued", { not_before = at, error_code = code, error = message })
end

--- A claimed entry is not sent (`skipped`): the recipient opted out since.
function Outbox:skip(id, why)
  return self:set(id, "skipped", { error = why })
end

--- A claimed entry's outcome is not known (`unknown`): its request timed
-- out in flight, so Twilio may have the message. Never resent blind.
function Outbox:lose(id, why)
  return self:set(id, "unknown", { error = why })
end

--- Puts back a claimed entry whose pacing delay says "not yet", without
-- counting it as an attempt. With `reserved`, not_before is a pacing slot
-- the sender already took: the entry goes at that time without asking the
-- limiters again (so a restart keeps the schedule).
function Outbox:defer(id, not_before, reserved)
  local n, err, code = self.db:run(
    "UPDATE outbox SET state = 'queued', attempts = attempts - 1, not_before = ?, reserved = ?, updated_at = ? " ..
    "WHERE id = ?", not_before, reserved and 1 or 0, core.time(), id)
  if not n then return nil, err, code end
  return n == 1
end

--- One outbox entry by id or by MessageSid.
function Outbox:get(id_or_sid)
  local col = type(id_or_sid) == "string" and id_or_sid:find("^[SM]M") and "sid" or "id"
  local rows, err, code = self.db:query(
    "SELECT id, params, sender, to_addr, state, attempts, not_before, sid, error_code, error, resend_of, " ..
    "created_at, updated_at, optout_scope, policy FROM outbox WHERE " .. col .. " = ?", id_or_sid)
  if not rows then return nil, err, code end
  return outbox_row(rows[1])
end

--- After a crash or a stop: entries left `sending` become `unknown`
-- (Twilio may have them; they are never resent on their own).
-- @treturn number how many
function Outbox:reclaim()
  return self.db:run("UPDATE outbox SET state = 'unknown', error = ?, updated_at = ? WHERE state = 'sending'",
                     IN_FLIGHT_AT_STOP, core.time())
end

--- The entries `reclaim` marked that are still unresolved (no SID
-- yet): the sender looks for each in Twilio's list before any resend.
-- @treturn table their ids, oldest first
-- @return or `nil, message, code`
function Outbox:unreconciled()
  local rows, err, code = self.db:query(
    "SELECT id FROM outbox WHERE state = 'unknown' AND sid IS NULL AND error = ? ORDER BY id", IN_FLIGHT_AT_STOP)
  if not rows then return nil, err, code end
  local ids = {}
  for i, r in ipairs(rows) do ids[i] = r.id end
  return ids
end

--- Queues an entry again at once (its pacing slot given up): one that was
-- in flight at a stop and that Twilio does not have.
-- @tparam number id
-- @tparam string why kept in the entry's `error`
-- @tparam[opt] number now epoch seconds
function Outbox:requeue(id, why, now)
  now = now or core.time()
  return self.db:run("UPDATE outbox SET state = 'queued', reserved = 0, not_before = ?, error = ?, updated_at = ? " ..
                     "WHERE id = ?", now, why, now, id)
end

--- The SIDs of messages sent between `older_than` seconds and a day ago
-- whose log has no final status yet (their callbacks may have come while
-- the host was down), oldest first.
-- @tparam number older_than seconds since the send
-- @tparam[opt] number now epoch seconds
-- @tparam[opt=200] number limit
-- @treturn table SIDs
function Outbox:unfinal(older_than, now, limit)
  now = now or core.time()
  local rows = self.db:query(
    "SELECT o.sid FROM outbox o JOIN messages m ON m.sid = o.sid WHERE o.state = 'sent' AND m.rank < ? " ..
    "AND o.updated_at <= ? AND o.updated_at >= ? ORDER BY o.updated_at LIMIT ?",
    RANK.delivered, now - older_than, now - 86400, limit or 200) or {}
  local sids = {}
  for i, r in ipairs(rows) do sids[i] = r.sid end
  return sids
end

--- Makes every commit of this connection durable against power loss
-- (`synchronous = FULL`, one fsync a commit) or back to WAL's default
-- (`NORMAL`): a campaign's bulk enqueue must not lose rows it reported.
-- @tparam boolean on
function Store:durable_commits(on)
  return self.db:exec(on and "PRAGMA synchronous = FULL" or "PRAGMA synchronous = NORMAL")
end

--- Counts entries by state.
-- @treturn table state -> count
function Outbox:counts()
  local rows, err, code = self.db:query("SELECT state, count(*) AS n FROM outbox GROUP BY state")
  if not rows then return nil, err, code end
  local out = {}
  for _, r in ipairs(rows) do out[r.state] = r.n end
  return out
end

--- The earliest `not_before` of a queued entry (nil when none).
function Outbox:next_due()
  -- one index lookup per kind of entry (a min over both would scan them all)
  local rows = self.db:query(
    "SELECT min(t) AS t FROM (SELECT min(not_before) AS t FROM outbox WHERE state = 'queued' AND reserved = 1 " ..
    "UNION ALL SELECT min(not_before) FROM outbox WHERE state = 'queued' AND reserved = 0)")
  return rows and rows[1] and rows[1].t or nil
end

--- Deletes expired key/values; returns how many.
function Store:kv_expire()
  return self.db:run("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", os_time())
end

--- The store's shared pacer, when pacing state lives in the store (Redis:
-- one schedule for every host). SQLite has none: the sender paces on
-- telua.core's process-wide GCRA store.
-- @return nil
function Store:pacer() return nil end

--- Names this host's sender in a shared outbox (Redis); nothing on SQLite.
function Outbox:set_consumer() end

--- Entries other hosts claimed and did not file in time: none on SQLite
-- (one host; its own are `reclaim`ed at start).
-- @treturn number 0
function Outbox:takeover() return 0 end

--- Closes the connection (idempotent).
function Store:close()
  self.db:close()
end

Store.__tostring = function(self) return "telua.Store (" .. tostring(self.path) .. ")" end

return _M
