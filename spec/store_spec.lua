-- telua.store's kinds of database and its schema versions: the process's
-- shared "memory" store, a private sqlite::memory:, migrations by PRAGMA
-- user_version (an old file is brought up to date with its data kept, a
-- newer one is refused), and a raise inside a transaction that rolls back
-- and lets go of the lock.
local store_mod = require "telua.store"
local core = require "telua.core"
local h = require "spec.helpers"

local US, THEM = "+14155550100", "+14155550199"

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
    local dir = h.tmpdir()
    local path = dir .. "/old.db"
    local db = assert(core.sqlite_open(path))
    -- the first release's tables, as it made them
    assert(db:exec([[
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
    ]]))
    db:close()
    local s = assert(store_mod.open("sqlite:" .. path))
    assert.are.equal(store_mod.SCHEMA_VERSION, s.db:query("PRAGMA user_version")[1].user_version)
    assert.is_true(s:is_opted_out(US, THEM))
    local cols = {}
    for _, c in ipairs(s.db:query("PRAGMA table_info(outbox)")) do cols[c.name] = true end
    for _, want in ipairs{ "campaign", "rate", "reserved", "segments" } do assert.is_true(cols[want], want) end
    local e = s:outbox_get(1)
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
    local dir = h.tmpdir()
    local path = dir .. "/future.db"
    local db = assert(core.sqlite_open(path))
    assert(db:exec("CREATE TABLE x (a); PRAGMA user_version = " .. (store_mod.SCHEMA_VERSION + 5)))
    db:close()
    local s, err, code = store_mod.open("sqlite:" .. path)
    assert.is_nil(s)
    assert.are.equal("store", code)
    assert.matches("newer than this telua's " .. store_mod.SCHEMA_VERSION, err, 1, true)
    db = assert(core.sqlite_open(path))
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
