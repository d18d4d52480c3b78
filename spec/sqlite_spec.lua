-- telua.core's SQLite binding: prepared statements are cached per
-- connection; these check that the cache never changes what a call returns.
-- Expected values are SQLite's own answers (the sqlite3 semantics of the
-- statements), not derived from the binding.
local core = require "telua.core"

describe("telua.SQLite statement cache", function()
  local db
  before_each(function()
    db = assert(core.sqlite_open(":memory:"))
    assert(db:exec("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)"))
  end)
  after_each(function() db:close() end)

  it("gives the same rows when a cached statement is run again with new bindings", function()
    for i = 1, 5 do assert.are.equal(1, db:run("INSERT INTO t VALUES (?, ?)", "k" .. i, i)) end
    for i = 1, 5 do
      local rows = assert(db:query("SELECT v FROM t WHERE k = ?", "k" .. i))
      assert.are.same({ { v = i } }, rows)
    end
    assert.are.same({}, db:query("SELECT v FROM t WHERE k = ?", "nope"))
  end)

  it("keeps working past the cache's size, with old statements evicted and re-prepared", function()
    for i = 1, 40 do
      assert(db:run("INSERT INTO t VALUES (?, " .. i .. ")", "k" .. i))
    end
    for i = 40, 1, -1 do
      local rows = assert(db:query("SELECT v + " .. i .. " AS s FROM t WHERE k = ?", "k" .. i))
      assert.are.same({ { s = 2 * i } }, rows)
    end
  end)

  it("leaves a cached statement reusable after a bad argument raised", function()
    local sql = "SELECT count(*) AS n FROM t WHERE k = ?"
    assert.are.same({ { n = 0 } }, db:query(sql, "a"))
    assert.has_error(function() db:query(sql, {}) end)
    assert.are.same({ { n = 0 } }, db:query(sql, "a"))
  end)

  it("raises when given more arguments than the statement has parameters", function()
    assert.has_error(function() db:run("INSERT INTO t VALUES (?, ?)", "a", 1, 2) end,
                     "SQL statement takes 2 parameters, 3 given")
  end)

  it("binds missing trailing arguments as NULL, as sqlite3_bind leaves them", function()
    assert(db:run("INSERT INTO t VALUES (?, ?)", "a"))
    assert.are.same({ { k = "a" } }, db:query("SELECT k, v FROM t"))
  end)

  it("does not keep a bound value from the previous run", function()
    local sql = "SELECT ? IS NULL AS is_null"
    assert.are.same({ { is_null = 0 } }, db:query(sql, "x"))
    assert.are.same({ { is_null = 1 } }, db:query(sql))
  end)

  it("reports a constraint error as a value and stays usable", function()
    assert(db:run("INSERT INTO t VALUES (?, ?)", "a", 1))
    local ok, err, code = db:run("INSERT INTO t VALUES (?, ?)", "a", 2)
    assert.is_nil(ok)
    assert.matches("UNIQUE constraint failed", err)
    assert.are.equal("sqlite", code)
    assert.are.equal(1, db:run("INSERT INTO t VALUES (?, ?)", "b", 2))
  end)

  it("lets a schema change re-prepare a cached statement", function()
    local sql = "SELECT * FROM t"
    assert(db:run("INSERT INTO t VALUES (?, ?)", "a", 1))
    assert.are.same({ { k = "a", v = 1 } }, db:query(sql))
    assert(db:exec("ALTER TABLE t ADD COLUMN w TEXT DEFAULT 'x'"))
    assert.are.same({ { k = "a", v = 1, w = "x" } }, db:query(sql))
  end)

  it("refuses use after close", function()
    assert(db:query("SELECT 1 AS one"))
    db:close()
    assert.has_error(function() db:query("SELECT 1 AS one") end, "attempt to use a closed SQLite database")
    db = assert(core.sqlite_open(":memory:")) -- for after_each
  end)
end)

describe("telua.SQLite db:atomically", function()
  local path, a, b
  before_each(function()
    path = os.tmpname()
    a = assert(core.sqlite_open(path))
    b = assert(core.sqlite_open(path))
    assert(a:exec("CREATE TABLE t (v INTEGER)"))
  end)
  after_each(function()
    a:close()
    b:close()
    os.remove(path)
    os.remove(path .. "-wal")
    os.remove(path .. "-shm")
  end)

  it("rolls back when fn raises, and the lock is free for another connection at once", function()
    local ok, err = pcall(a.atomically, a, function()
      assert(a:run("INSERT INTO t VALUES (1)"))
      error("raised inside", 0)
    end)
    assert.is_false(ok)
    assert.are.equal("raised inside", err)
    assert.are.same({}, a:query("SELECT v FROM t"))
    -- SQLite's own answer: a write from the other connection goes through
    -- only if no transaction of the first one is left open
    assert.is_truthy(b:exec("BEGIN IMMEDIATE; INSERT INTO t VALUES (2); COMMIT"))
    assert.are.same({ { v = 2 } }, a:query("SELECT v FROM t"))
  end)

  it("commits unless fn's first result is nil, and gives its results back", function()
    local kept = { a:atomically(function() a:run("INSERT INTO t VALUES (1)") return false, "x" end) }
    assert.are.same({ false, "x" }, kept)
    local r = { a:atomically(function() a:run("INSERT INTO t VALUES (2)") return nil, "no", "code" end) }
    assert.are.same({ nil, "no", "code" }, r)
    assert.are.same({ { v = 1 } }, b:query("SELECT v FROM t"))
  end)

  it("runs fn inside an open transaction without a transaction of its own", function()
    assert(a:exec("BEGIN IMMEDIATE"))
    assert.are.equal(7, a:atomically(function() a:run("INSERT INTO t VALUES (3)") return 7 end))
    assert(a:exec("ROLLBACK")) -- the outer one decides
    assert.are.same({}, a:query("SELECT v FROM t"))
  end)
end)
