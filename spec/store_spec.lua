-- telua.store's kinds of database and its schema versions: the process's
-- shared "memory" store, a private sqlite::memory:, migrations by PRAGMA
-- user_version (an old file is brought up to date with its data kept, a
-- newer one is refused), and a raise inside a transaction that rolls back
-- and lets go of the lock.
local store_mod = require "telua.store"
local core = require "telua.core"
local h = require "spec.helpers"
local backends = require "spec.helpers.backends"

local US, THEM = "+14155550100", "+14155550199"

-- A database file made by hand with sql (as an older or newer telua left
-- it): its folder and path.
local function db_file(name, sql)
  local dir = h.tmpdir()
  local path = dir .. "/" .. name
  local db = assert(core.sqlite_open(path))
  assert(db:exec(sql))
  db:close()
  return dir, path
end

describe("telua.store", function()
  it("'memory' is one database for the process: every connection sees the same data", function()
    local a = assert(store_mod.open("memory"))
    local b = assert(store_mod.open("memory"))
    assert(a:optout_add(US, THEM, "STOP"))
    assert.is_true(b:is_opted_out(US, THEM))
    assert(b:optout_remove(US, THEM))
    assert.is_false(a:is_opted_out(US, THEM))
    a:close()
    b:close()
  end)

  it("'sqlite::memory:' is a private database of one connection", function()
    local a = assert(store_mod.open("sqlite::memory:"))
    local b = assert(store_mod.open("sqlite::memory:"))
    assert(a:optout_add(US, THEM, "STOP"))
    assert.is_false(b:is_opted_out(US, THEM))
    a:close()
    b:close()
  end)

  it("a new file is made at the current schema version", function()
    local dir = h.tmpdir()
    local s = assert(store_mod.open("sqlite:" .. dir .. "/new.db"))
    assert.are.equal(store_mod.SCHEMA_VERSION, s.db:query("PRAGMA user_version")[1].user_version)
    s:close()
    os.execute("rm -rf " .. dir)
  end)

  it("migrates a file of the first releases (no version, an outbox without the campaign columns), keeping its rows", function()
    -- the first release's tables, as it made them
    local dir, path = db_file("old.db", [[
      CREATE TABLE optouts (sender TEXT NOT NULL, recipient TEXT NOT NULL, keyword TEXT NOT NULL,
                            created_at INTEGER NOT NULL, PRIMARY KEY (sender, recipient));
      CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, params TEXT NOT NULL, sender TEXT NOT NULL,
                           to_addr TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                           not_before REAL NOT NULL, sid TEXT, error_code INTEGER, error TEXT, resend_of INTEGER,
                           dedupe TEXT UNIQUE, created_at REAL NOT NULL, updated_at REAL NOT NULL);
      CREATE INDEX outbox_due ON outbox (state, not_before);
      INSERT INTO optouts VALUES ('+14155550100', '+14155550199', 'STOP', 1);
      INSERT INTO outbox (params, sender, to_addr, state, not_before, created_at, updated_at)
        VALUES ('{"to":"+14155550111","from":"+14155550100","body":"hi"}', '+14155550100', '+14155550111',
                'queued', 0, 0, 0);
    ]])
    local s = assert(store_mod.open("sqlite:" .. path))
    assert.are.equal(store_mod.SCHEMA_VERSION, s.db:query("PRAGMA user_version")[1].user_version)
    assert.is_true(s:is_opted_out(US, THEM))
    -- the opt-outs of before reach as far as their scope says: account (the default), and number
    assert.is_true(s:is_opted_out("+14155550101", THEM))
    assert.is_false(s:is_opted_out("+14155550101", THEM, { scope = "number" }))
    local cols = {}
    for _, c in ipairs(s.db:query("PRAGMA table_info(outbox)")) do cols[c.name] = true end
    for _, want in ipairs{ "campaign", "rate", "reserved", "segments" } do assert.is_true(cols[want], want) end
    local e = s.outbox:get(1)
    assert.are.equal("+14155550111", e.params.to)
    assert.are.equal(0, #s.db:query("SELECT name FROM sqlite_master WHERE name = 'outbox_due'"))
    s:close()
    -- opened again: nothing to do, nothing changes
    s = assert(store_mod.open("sqlite:" .. path))
    assert.are.equal(1, #s.db:query("SELECT id FROM outbox"))
    s:close()
    os.execute("rm -rf " .. dir)
  end)

  it("refuses a file of a newer schema version than it knows, and leaves it as it was", function()
    local dir, path = db_file("future.db", "CREATE TABLE x (a); PRAGMA user_version = " .. (store_mod.SCHEMA_VERSION + 5))
    local s, err, code = store_mod.open("sqlite:" .. path)
    assert.is_nil(s)
    assert.are.equal("store", code)
    assert.matches("newer than this telua's " .. store_mod.SCHEMA_VERSION, err, 1, true)
    local db = assert(core.sqlite_open(path))
    assert.are.equal(0, #db:query("SELECT name FROM sqlite_master WHERE name = 'optouts'"))
    db:close()
    os.execute("rm -rf " .. dir)
  end)

  it("a raise inside a transaction rolls back and frees the lock for the other connections", function()
    local dir = h.tmpdir()
    local a = assert(store_mod.open("sqlite:" .. dir .. "/t.db"))
    local b = assert(store_mod.open("sqlite:" .. dir .. "/t.db"))
    local ok, err = pcall(a.transaction, a, function()
      assert(a:optout_add(US, THEM, "STOP"))
      error("the rule broke mid-transaction")
    end)
    assert.is_false(ok)
    assert.matches("the rule broke mid%-transaction", tostring(err))
    assert.is_false(a:is_opted_out(US, THEM)) -- rolled back
    local t0 = core.monotonic()
    assert.is_true(b:optout_add(US, "+14155550142", "STOP")) -- not "database is locked"
    assert.is_true(core.monotonic() - t0 < 1)
    a:close()
    b:close()
    os.execute("rm -rf " .. dir)
  end)
end)

-- The same person reached three ways: our number A, our number B, and the
-- Messaging Service MG that A belongs to. Each scope answers as
-- telua.store.OPTOUT_SCOPES documents.
backends.each("opt-out scopes", function(BK)
  local A, B, MG, MG2 = "+14155550100", "+14155550101", "MG" .. ("a"):rep(32), "MG" .. ("b"):rep(32)
  local s
  before_each(function() s = BK.open() end)
  after_each(function() s:close() end)

  it("account (the default): a STOP to one number stops every number and service", function()
    assert(s:optout_add(A, THEM, "STOP", { service = MG }))
    for _, from in ipairs{ A, B, MG, MG2 } do
      assert.is_true(s:is_opted_out(from, THEM), from)
      assert.is_true(s:is_opted_out(from, THEM, { scope = "account" }), from)
    end
    assert.is_false(s:is_opted_out(A, "+14155550142")) -- someone else
    assert(s:optout_remove(B, THEM)) -- START to any of them opts back in everywhere
    assert.is_false(s:is_opted_out(A, THEM))
  end)

  it("service: a STOP through a Messaging Service stops its sends and its numbers, not another service's", function()
    local scope = { scope = "service" }
    assert(s:optout_add(A, THEM, "STOP", { service = MG }))
    assert.is_true(s:is_opted_out(MG, THEM, scope)) -- sending through the service
    assert.is_true(s:is_opted_out(A, THEM, scope)) -- the number it came to
    assert.is_true(s:is_opted_out(B, THEM, { scope = "service", service = MG })) -- another number of MG
    assert.is_false(s:is_opted_out(B, THEM, scope)) -- a number outside the service
    assert.is_false(s:is_opted_out(MG2, THEM, scope)) -- another service
    -- a 21610 on a send through MG2 is recorded for MG2
    assert(s:optout_add(MG2, THEM, "21610"))
    assert.is_true(s:is_opted_out(MG2, THEM, scope))
    assert(s:optout_remove(A, THEM, { scope = "service", service = MG }))
    assert.is_false(s:is_opted_out(MG, THEM, scope))
    assert.is_true(s:is_opted_out(MG2, THEM, scope)) -- START through MG leaves MG2's opt-out
  end)

  it("number: a STOP covers the one number or service it was sent to", function()
    local scope = { scope = "number" }
    assert(s:optout_add(A, THEM, "STOP", { service = MG }))
    assert.is_true(s:is_opted_out(A, THEM, scope))
    assert.is_false(s:is_opted_out(B, THEM, scope))
    assert.is_false(s:is_opted_out(MG, THEM, scope))
    assert(s:optout_remove(B, THEM, scope)) -- START to B changes nothing for A
    assert.is_true(s:is_opted_out(A, THEM, scope))
  end)

  it("an unknown scope is an error, not a silent default", function()
    assert.has_error(function() s:is_opted_out(A, THEM, { scope = "global" }) end,
                     "opt-out scope must be account, service or number, got global")
  end)

  it("many lookups at once answer each in its scope, in order (the sender's round)", function()
    local OTHER = "+14155550142"
    assert(s:optout_add(A, THEM, "STOP", { service = MG }))
    local list = {
      { B, THEM }, { A, OTHER }, { A, THEM, { scope = "number" } }, { B, THEM, { scope = "number" } },
      { MG, THEM, { scope = "service" } }, { MG2, THEM, { scope = "service" } }, { MG2, OTHER, { scope = "account" } },
    }
    -- the expected answers are the single lookups'
    local want = {}
    for i, q in ipairs(list) do want[i] = s:is_opted_out(q[1], q[2], q[3]) end
    assert.are.same({ true, false, true, false, true, false, false }, want)
    assert.are.same(want, s:is_opted_out_many(list))
    assert.are.same(want, s:is_opted_out_many(list)) -- again (on Redis, some from the process's view)
    assert.are.same({}, s:is_opted_out_many({}))
  end)
end)

-- The scopes through the router: a STOP as a webhook (with the
-- MessagingServiceSid Twilio adds when the number belongs to a service),
-- then a reply on another number and req.send through the service.
backends.each("opt-out scopes in the router", function(BK)
  local router = require "telua.router"
  local twiml = require "telua.twiml"
  local A, B, MG = "+14155550100", "+14155550101", "MG" .. ("c"):rep(32)
  local EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

  local function sms(body, to, service)
    local form = { { "From", THEM }, { "To", to }, { "Body", body } }
    if service then form[#form + 1] = { "MessagingServiceSid", service } end
    return { method = "POST", path = "/sms/incoming", query = "", url = "https://x.example.com/sms/incoming", form = form }
  end

  local function setup_router(scope)
    local store = BK.open()
    local r = router.new{ store = store, log = function() end }
    local sent = {}
    assert(r:add("a.lua", {
      settings = { optout_scope = scope },
      messages = { { handler = function(req)
        sent[#sent + 1] = { req.send{ to = req.from, messaging_service_sid = MG, body = "news" } }
        local m = twiml.messaging()
        m:message("hi")
        return m
      end } },
    }))
    assert.matches("unsubscribed", r:handle(sms("STOP", A, MG)).body)
    return r, sent, store
  end

  it("account: B's reply is suppressed and the send through the service refused (21610)", function()
    local r, sent = setup_router(nil)
    assert.are.equal(EMPTY, r:handle(sms("hello", B)).body)
    assert.is_nil(sent[1][1])
    assert.are.equal(21610, sent[1][2].code)
  end)

  it("service: B outside the service still gets replies; sends through the service are refused", function()
    local r, sent = setup_router("service")
    assert.matches("<Message>hi</Message>", r:handle(sms("hello", B)).body)
    assert.are.equal(21610, sent[1][2].code)
    -- B inside the service (the webhook says so): suppressed
    assert.are.equal(EMPTY, r:handle(sms("hello", B, MG)).body)
  end)

  it("number: only A is stopped; B replies and the service may send", function()
    local r, sent, store = setup_router("number")
    assert.matches("<Message>hi</Message>", r:handle(sms("hello", B)).body)
    assert.is_number(sent[1][1])
    assert.are.equal("number", store.outbox:get(sent[1][1]).optout_scope)
    assert.are.equal(EMPTY, r:handle(sms("hello", A)).body)
    -- the sender gets the entry's scope with it, and checks again in it at send time
    local claimed = assert(store.outbox:claim(10))
    assert.are.equal(2, #claimed) -- the rules ran for A's message too (only the reply is dropped)
    assert.are.equal("number", claimed[1].optout_scope)
    assert.are.equal("number", claimed[2].optout_scope)
    assert.is_false(store:is_opted_out(MG, THEM, { scope = claimed[1].optout_scope }))
    assert.is_true(store:is_opted_out(MG, THEM)) -- as an account-scope entry it would be skipped
  end)

  it("a rules file with an unknown scope fails to load", function()
    local r = router.new{ store = BK.open(), log = function() end }
    local ok, err = r:add("a.lua", { settings = { optout_scope = "everything" } })
    assert.is_nil(ok)
    assert.matches('settings.optout_scope must be "account", "service" or "number", got everything', err, 1, true)
  end)
end)

backends.each("the outbox interface (store.outbox)", function(BK)
  it("moves claimed entries by name: complete, retry, fail, skip, lose, and reclaims what a stopped sender held", function()
    local s = BK.open()
    local o = s.outbox
    local ids = {}
    for i = 1, 6 do
      ids[i] = assert(o:enqueue({ to = "+1415555020" .. i, from = US, body = "m" .. i }, { optout_scope = "number" }))
    end
    local claimed = assert(o:claim(6, core.time()))
    assert.are.equal(6, #claimed)
    assert(o:complete(ids[1], "SM" .. ("1"):rep(32)))
    assert(o:retry(ids[2], core.time() + 60, 20429, "Too Many Requests"))
    assert(o:fail(ids[3], 21211, "invalid To"))
    assert(o:skip(ids[4], "opted out"))
    assert(o:lose(ids[5], "timed out in flight"))
    local want = { "sent", "queued", "failed", "skipped", "unknown", "sending" }
    for i, state in ipairs(want) do assert.are.equal(state, o:get(ids[i]).state, "entry " .. i) end
    assert.are.equal("SM" .. ("1"):rep(32), o:get(ids[1]).sid)
    assert.are.equal(ids[1], o:get("SM" .. ("1"):rep(32)).id) -- by MessageSid too
    assert.are.equal(20429, o:get(ids[2]).error_code)
    assert.are.equal("number", o:get(ids[3]).optout_scope)
    -- the host stopped with entry 6 in flight: reclaimed as unknown, to be reconciled before any resend
    assert(o:reclaim())
    assert.are.equal("unknown", o:get(ids[6]).state)
    assert.are.same({ ids[6] }, o:unreconciled()) -- entry 5 timed out in flight: not a stop, left for a person
    assert(o:requeue(ids[6], "not at Twilio after a restart"))
    assert.are.equal("queued", o:get(ids[6]).state)
    assert.are.same({ queued = 2, sent = 1, failed = 1, skipped = 1, unknown = 1 }, o:counts())
    s:close()
  end)
end)

backends.each("a campaign's figures (outbox:progress) and the unfinal list", function(BK)
  it("counts entries by state, segments, and the delivery statuses of the sent ones", function()
    local s = BK.open()
    local o = s.outbox
    local list = {}
    for i = 1, 4 do
      list[i] = { { to = "+1415555030" .. i, from = US, body = "spring sale" },
                  { campaign = "spring", rate = 10, segments = 2, dedupe = "spring:" .. i } }
    end
    assert.are.equal(4, o:enqueue_many(list))
    assert.are.equal(0, o:enqueue_many(list)) -- a rerun queues only what is missing
    local c = assert(o:claim(4, core.time()))
    assert.are.equal(4, #c)
    local sids = {}
    for i = 1, 3 do
      sids[i] = "SM" .. tostring(i):rep(32)
      assert(o:complete(c[i].id, sids[i]))
      assert(s:message_status(sids[i], "queued"))
    end
    assert(o:fail(c[4].id, 21211, "invalid To"))
    assert(s:message_status(sids[1], "delivered"))
    assert(s:message_status(sids[2], "undelivered", { error_code = 30003 }))
    assert(s:message_status(sids[1], "read")) -- delivered then read: still one delivered
    local p = assert(o:progress("spring"))
    assert.are.same({ 0, 3, 1, 6, 1, 1 }, { p.queued, p.sent, p.failed, p.segments, p.delivered, p.undelivered })
    assert.is_number(p.first_sent)
    -- the one still without a final status is what the sender asks Twilio about
    assert.are.same({ sids[3] }, o:unfinal(0, core.time() + 1))
    s:close()
  end)
end)

describe("opt-out answers kept per SQLite connection while the database is unchanged", function()
  local dir, a, b
  before_each(function()
    dir = h.tmpdir()
    a = assert(store_mod.open("sqlite:" .. dir .. "/t.db"))
    b = assert(store_mod.open("sqlite:" .. dir .. "/t.db")) -- another worker's connection
  end)
  after_each(function()
    a:close()
    b:close()
    os.execute("rm -rf " .. h.quote(dir))
  end)

  it("sees another connection's STOP and START at once", function()
    for _ = 1, 3 do assert.is_false(a:is_opted_out(US, THEM)) end -- kept
    assert(b:optout_add(US, THEM, "STOP"))
    assert.is_true(a:is_opted_out(US, THEM))
    assert.is_true(a:is_opted_out(US, THEM))
    assert(b:optout_remove(US, THEM))
    assert.is_false(a:is_opted_out(US, THEM))
    -- another scope is another answer
    assert(b:optout_add(US, THEM, "STOP", { scope = "number" }))
    assert.is_true(a:is_opted_out(US, THEM, { scope = "number" }))
    assert.is_false(a:is_opted_out("+14155550101", THEM, { scope = "number" }))
  end)

  it("sees a write by another process (the sqlite3 command line) at once", function()
    local db = h.quote(dir .. "/t.db")
    assert.is_false(a:is_opted_out(US, THEM))
    assert(os.execute("sqlite3 " .. db .. " \"INSERT INTO optouts (sender, recipient, keyword, created_at) " ..
                      "VALUES ('" .. US .. "', '" .. THEM .. "', 'STOP', 0)\""))
    assert.is_true(a:is_opted_out(US, THEM))
    assert(os.execute("sqlite3 " .. db .. " \"DELETE FROM optouts\""))
    assert.is_false(a:is_opted_out(US, THEM))
  end)

  it("inside a transaction answers from SQLite, its own writes included", function()
    assert.is_false(a:is_opted_out(US, THEM))
    local seen
    assert(a:transaction(function()
      assert(a:optout_add(US, THEM, "STOP"))
      seen = a:is_opted_out(US, THEM)
      return true
    end))
    assert.is_true(seen)
    assert.is_true(b:is_opted_out(US, THEM))
  end)
end)

describe("the outbox on Redis, many hosts", function()
  local srv
  setup(function() srv = require("spec.helpers.redis").start{ appendonly = true } end)
  teardown(function() srv:destroy() end)

  it("a host's claimed entries are taken over by another past the visibility timeout, to be reconciled", function()
    srv:flush()
    local a, b = assert(store_mod.open(srv.url)), assert(store_mod.open(srv.url))
    a.outbox:set_consumer("host-a")
    b.outbox:set_consumer("host-b")
    local ids = {}
    for i = 1, 3 do ids[i] = assert(a.outbox:enqueue({ to = "+1415555040" .. i, from = US, body = "x" })) end
    local got = assert(a.outbox:claim(2, core.time()))
    assert.are.equal(2, #got)
    -- b sees only what a did not claim
    local other = assert(b.outbox:claim(10, core.time()))
    assert.are.same({ ids[3] }, { other[1].id })
    assert(b.outbox:complete(ids[3], "SM" .. ("3"):rep(32)))
    -- a dies holding two; within the timeout nothing moves, past it b takes them over
    assert.are.equal(0, b.outbox:takeover(5))
    core.sleep(0.2)
    assert.are.equal(2, b.outbox:takeover(0.1))
    for i = 1, 2 do
      local e = b.outbox:get(ids[i])
      assert.are.same({ "unknown", "in flight when the host stopped" }, { e.state, e.error })
    end
    assert.are.same({ ids[1], ids[2] }, b.outbox:unreconciled())
    -- reconciled: one found at Twilio, one queued again and claimed by b
    assert(b.outbox:complete(ids[1], "SM" .. ("1"):rep(32), "reconciled after a restart"))
    assert(b.outbox:requeue(ids[2], "not at Twilio after a restart: queued again"))
    assert.are.same({}, b.outbox:unreconciled())
    got = assert(b.outbox:claim(10, core.time()))
    assert.are.same({ ids[2], 2 }, { got[1].id, got[1].attempts })
    assert.are.same({ sent = 2, sending = 1 }, b.outbox:counts())
    -- a comes back: its own held nothing any more
    assert.are.equal(0, a.outbox:reclaim())
    a:close()
    b:close()
  end)

  it("a transaction's writes go in one round trip; a failed one is filed again whole", function()
    srv:flush()
    local s = assert(store_mod.open(srv.url))
    local ids = {}
    for i = 1, 10 do ids[i] = assert(s.outbox:enqueue({ to = "+1415555050" .. (i - 1), from = US, body = "x" })) end
    assert.are.equal(10, #assert(s.outbox:claim(10, core.time())))
    local c = srv:connect()
    local function reads()
      return tonumber(assert(c:call("INFO", "stats")):match("total_reads_processed:(%d+)"))
    end
    local function filing()
      for i, id in ipairs(ids) do
        local sid = "SM" .. ("%032d"):format(i)
        assert.is_true(s.outbox:complete(id, sid))
        assert.is_true(s:message_status(sid, "queued", { to = "+1415555050" .. (i - 1), from = US }))
      end
      return true
    end
    local r0 = reads()
    assert.is_true(s:transaction(filing))
    -- the 20 writes in one pipeline: one read event on the server (and one for this INFO)
    assert.is_true(reads() - r0 <= 3, ("%d read events"):format(reads() - r0))
    assert.are.same({ sent = 10 }, s.outbox:counts())
    assert.equal("queued", s:message_get("SM" .. ("%032d"):format(1)).status)
    -- Redis gone while filing: nil, err; filed again when it is back, nothing counted twice
    srv:stop()
    local ok, err = s:transaction(filing)
    assert.is_nil(ok)
    assert.matches("^redis: ", err)
    srv:start_again()
    c = srv:connect()
    assert.is_true(s:transaction(filing))
    assert.are.same({ sent = 10 }, s.outbox:counts())
    -- a script the server forgot (SCRIPT FLUSH) is loaded again, and the writes still land
    assert(c:call("SCRIPT", "FLUSH"))
    assert.is_true(s:transaction(function()
      assert.is_true(s:message_status("SM" .. ("%032d"):format(2), "delivered"))
      return true
    end))
    assert.equal("delivered", s:message_get("SM" .. ("%032d"):format(2)).status)
    c:close()
    s:close()
  end)

  it("a Redis that went away: calls return nil, message, code; the next call after it is back works", function()
    srv:flush()
    local s = assert(store_mod.open(srv.url))
    assert(s:optout_add(US, THEM, "STOP"))
    srv:stop()
    local ok, err, code = s:is_opted_out(US, THEM)
    assert.is_nil(ok)
    assert.matches("^redis: ", err)
    assert.is_string(code)
    local id, eerr = s.outbox:enqueue({ to = THEM, from = US, body = "x" })
    assert.is_nil(id)
    assert.is_string(eerr)
    srv:start_again()
    assert.is_true(s:is_opted_out(US, THEM)) -- kept by the server's append-only file
    -- a restart between two calls: the kept connection is stale, the next call still works
    srv:stop()
    srv:start_again()
    assert.is_true(s:is_opted_out(US, THEM))
    s:close()
  end)
end)

describe("Redis connections: TLS, Unix sockets, passwords, long commands", function()
  local srv, locked
  local PASS = "s3cret-spec-pass"
  setup(function()
    srv = require("spec.helpers.redis").start{ tls = true }
    locked = require("spec.helpers.redis").start{ password = PASS }
  end)
  teardown(function()
    srv:destroy()
    locked:destroy()
  end)

  it("rediss:// verifies the server's certificate against ?cainfo and works like redis://", function()
    srv:flush()
    local s = assert(store_mod.open(srv.tls_url))
    assert(s:optout_add(US, THEM, "STOP"))
    local plain = assert(store_mod.open(srv.url)) -- the same server, seen without TLS
    assert.is_true(plain:is_opted_out(US, THEM))
    -- the certificate names 127.0.0.1 too (an IP checked as an IP)
    local by_ip = assert(store_mod.open("rediss://127.0.0.1:" .. srv.tls_port .. "?cainfo=" .. srv.cainfo))
    assert.is_true(by_ip:is_opted_out(US, THEM))
    s:close(); plain:close(); by_ip:close()
  end)

  it("rediss:// refuses a certificate no trusted CA signed, or made out to another name", function()
    local s, err, code = store_mod.open("rediss://localhost:" .. srv.tls_port) -- the system's CAs
    assert.is_nil(s)
    assert.matches("certificate", err)
    assert.equal("store", code)
    s, err = store_mod.open("rediss://localhost:" .. srv.tls_port .. "?cainfo=" .. srv.cainfo ..
                            "&servername=redis.example.com")
    assert.is_nil(s)
    assert.matches("certificate", err)
    -- TLS spoken to the plain port, and plain to the TLS port: an error, not a hang
    s, err = store_mod.open("rediss://localhost:" .. srv.port .. "?cainfo=" .. srv.cainfo)
    assert.is_nil(s)
    assert.matches("^redis: ", err)
    s, err = store_mod.open("redis://127.0.0.1:" .. srv.tls_port .. "?timeout=0.5")
    assert.is_nil(s)
    assert.matches("^redis: ", err)
  end)

  it("unix:// reaches the server through its socket, ?db=N selects a database", function()
    srv:flush()
    local s = assert(store_mod.open("unix://" .. srv.socket .. "?db=3"))
    assert(s:kv_set("ns", "k", "v", 60))
    local same = assert(store_mod.open("redis://127.0.0.1:" .. srv.port .. "/3"))
    local other = assert(store_mod.open("redis://127.0.0.1:" .. srv.port .. "/0"))
    assert.equal("v", same:kv_get("ns", "k"))
    assert.is_nil(other:kv_get("ns", "k"))
    s:close(); same:close(); other:close()
    local bad, err = store_mod.open("unix://" .. srv.dir .. "/nosuch.sock")
    assert.is_nil(bad)
    assert.matches("^redis: ", err)
  end)

  it("a password (and user) in the URL authenticates; a wrong one is refused without showing it", function()
    local url = "redis://:" .. PASS .. "@127.0.0.1:" .. locked.port
    local s = assert(store_mod.open(url))
    assert(s:optout_add(US, THEM, "STOP"))
    local as_user = assert(store_mod.open("redis://default:" .. PASS .. "@127.0.0.1:" .. locked.port))
    assert.is_true(as_user:is_opted_out(US, THEM))
    assert.equal("redis://***@127.0.0.1:" .. locked.port, s.path) -- what logs and /-/status show
    s:close(); as_user:close()
    local none, err = store_mod.open("redis://127.0.0.1:" .. locked.port)
    assert.is_nil(none)
    assert.matches("NOAUTH", err)
    local wrong, werr = store_mod.open("redis://:not-the-" .. PASS .. "@127.0.0.1:" .. locked.port)
    assert.is_nil(wrong)
    assert.matches("^redis: ", werr)
    assert.is_nil(werr:find(PASS, 1, true))
  end)

  it("commands of any length: 1 to 5,000 arguments, each of them sent (the Lua stack grows to hold them)", function()
    local c = srv:connect()
    for _, n in ipairs({ 1, 19, 40, 64, 65, 300, 5000 }) do
      local cmd = { "RPUSH", "len:" .. n }
      for i = 1, n do cmd[#cmd + 1] = i end
      assert.equal(n, c:call((table.unpack or unpack)(cmd))) -- luacheck: ignore 143
      local res = assert(c:pipeline({ { "LLEN", "len:" .. n }, cmd, { "LINDEX", "len:" .. n, -1 } }))
      assert.are.same({ n, 2 * n, tostring(n) }, res)
    end
    c:close()
  end)

  it("a campaign of 1,200 queues in chunks of long commands, and a rerun queues nothing twice", function()
    srv:flush()
    local s = assert(store_mod.open(srv.url))
    local list = {}
    for i = 1, 1200 do
      list[i] = { { to = "+1415556" .. (1000 + i), from = US, body = "hello " .. i },
                  { campaign = "big", dedupe = "big:" .. i } }
    end
    assert.equal(1200, s.outbox:enqueue_many(list))
    assert.equal(0, s.outbox:enqueue_many(list))
    assert.equal(1200, s.outbox:progress("big").queued)
    s:close()
  end)
end)

describe("the process's opt-out view on Redis (client-side caching)", function()
  local srv
  setup(function() srv = require("spec.helpers.redis").start{ appendonly = true } end)
  teardown(function() srv:destroy() end)

  local function exists_calls()
    local c = srv:connect()
    local info = assert(c:call("INFO", "commandstats"))
    c:close()
    return tonumber(info:match("cmdstat_exists:calls=(%d+)")) or 0
  end
  local function until_true(fn)
    for _ = 1, 100 do
      if fn() then return true end
      core.sleep(0.01)
    end
    return false
  end

  it("answers repeated lookups without Redis, and sees another host's STOP and START within milliseconds", function()
    srv:flush()
    local a = assert(store_mod.open(srv.url, { optout_view = true })) -- this host
    local b = assert(store_mod.open(srv.url))                         -- another host
    assert.is_true(until_true(function() return a.view:live() end))
    assert.is_false(a:is_opted_out(US, THEM))
    local before = exists_calls()
    for _ = 1, 100 do assert.is_false(a:is_opted_out(US, THEM)) end
    assert.equal(before, exists_calls())
    -- the other host's STOP reaches this one by the invalidation message
    assert(b:optout_add(US, THEM, "STOP"))
    assert.is_true(until_true(function() return a:is_opted_out(US, THEM) end))
    -- this host's own START is seen by its next lookup, at once
    assert(a:optout_remove(US, THEM))
    assert.is_false(a:is_opted_out(US, THEM))
    -- a write from outside telua (redis-cli, a script) is seen too, and FLUSHALL empties the view
    local c = srv:connect()
    assert(c:call("HSET", "telua:opt:" .. THEM, US, "STOP\t0\t"))
    assert.is_true(until_true(function() return a:is_opted_out(US, THEM) end))
    assert(c:call("FLUSHALL"))
    c:close()
    assert.is_true(until_true(function() return a:is_opted_out(US, THEM) == false end))
    a:close(); b:close()
  end)

  it("while its subscription is down every lookup goes to Redis; after a restart it answers again", function()
    srv:flush()
    local a = assert(store_mod.open(srv.url, { optout_view = true }))
    assert.is_true(until_true(function() return a.view:live() end))
    assert.is_false(a:is_opted_out(US, THEM))
    srv:stop()
    assert.is_true(until_true(function() return not a.view:live() end))
    local v, err = a:is_opted_out(US, THEM)
    assert.is_nil(v) -- not the stale false: Redis cannot say
    assert.matches("^redis: ", err)
    srv:start_again()
    local b = assert(store_mod.open(srv.url))
    assert(b:optout_add(US, THEM, "STOP")) -- written before the view is back, too
    assert.is_true(a:is_opted_out(US, THEM))
    for _ = 1, 300 do
      if a.view:live() then break end
      core.sleep(0.02)
    end
    assert.is_true(a.view:live())
    assert.is_true(a:is_opted_out(US, THEM))
    a:close(); b:close()
  end)
end)
