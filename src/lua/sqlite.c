/*
 * sqlite.c - a small SQLite binding for telua's stores (userdata "telua.SQLite").
 *
 * Just what the stores need: open with WAL and a busy timeout, exec a
 * script, run one statement with bound parameters, and fetch rows as
 * tables. SQL errors are values (nil, message, "sqlite"); wrong argument
 * types raise. One connection belongs to one lua_State (one thread).
 */
#include "compat.h"
#include "telua_core.h"
#include "../core/gcra.h" /* tl_gcra_now: the monotonic clock */

#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SQLITE_MT "telua.SQLite"

/* Prepared statements are kept per connection, keyed by their SQL text, so
 * a store's hot queries (the opt-out check on every inbound message) skip
 * SQLite's parser. Small and round-robin: stores use a handful of fixed
 * statements; anything else only costs a re-prepare. */
#define STMT_CACHE 16

typedef struct {
    char *sql;
    size_t len;
    sqlite3_stmt *st;
} tl_cached;

typedef struct {
    sqlite3 *db; /* NULL once closed */
    tl_cached cache[STMT_CACHE];
    unsigned next; /* round-robin victim */
    uint64_t busy_since; /* when the current wait for a lock began (ns, monotonic) */
    volatile void *wal_region; /* the WAL index's first region, once mapped (see db_wal_mark) */
    unsigned char wal_hdr[48]; /* the WAL-index header db:wal_mark last saw */
    lua_Integer wal_gen;       /* and its number: one more each time the header read differs */
} tl_db;

static tl_db *check_db(lua_State *L)
{
    tl_db *d = luaL_checkudata(L, 1, SQLITE_MT);
    if (!d->db) luaL_error(L, "attempt to use a closed SQLite database");
    return d;
}

static int push_error(lua_State *L, sqlite3 *db)
{
    lua_pushnil(L);
    lua_pushfstring(L, "sqlite: %s", db ? sqlite3_errmsg(db) : "out of memory");
    lua_pushliteral(L, "sqlite");
    return 3;
}

/* Idempotent close shared by db:close(), __gc and __close. */
static int db_close(lua_State *L)
{
    tl_db *d = luaL_checkudata(L, 1, SQLITE_MT);
    if (d->db) {
        int i;
        for (i = 0; i < STMT_CACHE; i++) {
            sqlite3_finalize(d->cache[i].st);
            free(d->cache[i].sql);
            d->cache[i].st = NULL;
            d->cache[i].sql = NULL;
        }
        sqlite3_close_v2(d->db);
        d->db = NULL;
    }
    return 0;
}

static int db_tostring(lua_State *L)
{
    tl_db *d = luaL_checkudata(L, 1, SQLITE_MT);
    lua_pushfstring(L, SQLITE_MT " (%s)", d->db ? "open" : "closed");
    return 1;
}

/* How long a statement waits for another connection's lock, in ns. */
#define BUSY_TIMEOUT_NS 5000000000ULL

/* The busy handler: polls every 0.5 ms for up to BUSY_TIMEOUT_NS (5 s). SQLite's
 * own (sqlite3_busy_timeout) backs off to 100 ms sleeps, so a waiter could
 * sleep through every short gap between another writer's transactions --
 * a campaign queueing thousands of rows in batches starved the sender for
 * the whole enqueue. SQLite has no queue of waiters; polling this often is
 * what lets a waiter in between two batches. */
static int busy_wait(void *arg, int n)
{
    uint64_t *since = arg;
    struct timespec pause = { 0, 500000 };
    if (n == 0) *since = tl_gcra_now();
    else if (tl_gcra_now() - *since >= BUSY_TIMEOUT_NS) return 0;
    nanosleep(&pause, NULL);
    return 1;
}

/* core.sqlite_open(path) -> db | nil, message, "sqlite". The userdata is
 * created closed first, so a failed open is collected safely. */
static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    tl_db *d = lua_newuserdata(L, sizeof *d);
    int rc;
    memset(d, 0, sizeof *d);
    luaL_setmetatable(L, SQLITE_MT);
    /* "file:..." is a URI (the store's shared memory database: file:/name?vfs=memdb) */
    rc = sqlite3_open_v2(path, &d->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                             (strncmp(path, "file:", 5) == 0 ? SQLITE_OPEN_URI : 0),
                         NULL);
    if (rc != SQLITE_OK) {
        int n = push_error(L, d->db);
        sqlite3_close_v2(d->db);
        d->db = NULL;
        return n;
    }
    sqlite3_busy_handler(d->db, busy_wait, &d->busy_since);
    sqlite3_exec(d->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL);
    return 1;
}

/* db:exec(sql) -> true | nil, message, "sqlite" (several statements allowed) */
static int db_exec(lua_State *L)
{
    tl_db *d = check_db(L);
    const char *sql = luaL_checkstring(L, 2);
    if (sqlite3_exec(d->db, sql, NULL, NULL, NULL) != SQLITE_OK) return push_error(L, d->db);
    lua_pushboolean(L, 1);
    return 1;
}

/* Binds arguments first..top to stmt. Returns 0, or the stack index of an
 * argument that cannot be bound (the caller resets and raises). */
static int bind_args(lua_State *L, sqlite3_stmt *st, int first)
{
    int i, top = lua_gettop(L);
    for (i = first; i <= top; i++) {
        int k = i - first + 1;
        switch (lua_type(L, i)) {
        case LUA_TNIL: sqlite3_bind_null(st, k); break;
        case LUA_TBOOLEAN: sqlite3_bind_int(st, k, lua_toboolean(L, i)); break;
        case LUA_TNUMBER: {
            lua_Number v = lua_tonumber(L, i);
#if LUA_VERSION_NUM >= 503
            if (lua_isinteger(L, i)) {
                sqlite3_bind_int64(st, k, (sqlite3_int64)lua_tointeger(L, i));
                break;
            }
#endif
            if (v == (lua_Number)(sqlite3_int64)v) sqlite3_bind_int64(st, k, (sqlite3_int64)v);
            else sqlite3_bind_double(st, k, (double)v);
            break;
        }
        case LUA_TSTRING: {
            size_t len;
            const char *s = lua_tolstring(L, i, &len);
            sqlite3_bind_text(st, k, s, (int)len, SQLITE_TRANSIENT);
            break;
        }
        default:
            return i;
        }
    }
    return 0;
}

static void push_column(lua_State *L, sqlite3_stmt *st, int c)
{
    switch (sqlite3_column_type(st, c)) {
    case SQLITE_INTEGER: lua_pushinteger(L, (lua_Integer)sqlite3_column_int64(st, c)); break;
    case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_column_double(st, c)); break;
    case SQLITE_NULL: lua_pushnil(L); break;
    default:
        lua_pushlstring(L, (const char *)sqlite3_column_blob(st, c),
                        (size_t)sqlite3_column_bytes(st, c));
    }
}

/* The prepared statement for sql, from the cache or freshly prepared and
 * cached. NULL with the connection's error set when SQLite refuses it. */
static sqlite3_stmt *prepare(tl_db *d, const char *sql, size_t len)
{
    unsigned i;
    tl_cached *slot;
    sqlite3_stmt *st = NULL;
    char *copy;
    for (i = 0; i < STMT_CACHE; i++)
        if (d->cache[i].st && d->cache[i].len == len && memcmp(d->cache[i].sql, sql, len) == 0)
            return d->cache[i].st;
    if (sqlite3_prepare_v2(d->db, sql, (int)len, &st, NULL) != SQLITE_OK || !st) {
        sqlite3_finalize(st);
        return NULL;
    }
    copy = malloc(len + 1);
    if (!copy) return st; /* uncached: still usable, finalized by the caller */
    memcpy(copy, sql, len);
    copy[len] = 0;
    slot = &d->cache[d->next++ % STMT_CACHE];
    sqlite3_finalize(slot->st);
    free(slot->sql);
    slot->sql = copy;
    slot->len = len;
    slot->st = st;
    return st;
}

/* Returns st to its idle state, or finalizes it when it is not cached. */
static void done(tl_db *d, sqlite3_stmt *st)
{
    unsigned i;
    for (i = 0; i < STMT_CACHE; i++)
        if (d->cache[i].st == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return;
        }
    sqlite3_finalize(st);
}

/* Shared by run and query: prepare (cached), bind, step all rows. When
 * `rows` is set, pushes a list of row tables (column name -> value); else
 * pushes the number of changed rows. */
static int run_statement(lua_State *L, int rows)
{
    tl_db *d = check_db(L);
    size_t len;
    const char *sql = luaL_checklstring(L, 2, &len);
    sqlite3_stmt *st;
    int rc, n = 0, list = 0, bad;
    if (!(st = prepare(d, sql, len))) return push_error(L, d->db);
    if ((bad = bind_args(L, st, 3)) != 0) {
        done(d, st);
        return luaL_argerror(L, bad, "SQL parameters must be nil, boolean, number or string");
    }
    if (lua_gettop(L) - 2 > sqlite3_bind_parameter_count(st)) { /* fewer bind NULL */
        int want = sqlite3_bind_parameter_count(st);
        done(d, st);
        return luaL_error(L, "SQL statement takes %d parameters, %d given", want, lua_gettop(L) - 2);
    }
    if (rows) {
        lua_newtable(L);
        list = lua_gettop(L);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (rows) {
            int c, cols = sqlite3_column_count(st);
            lua_createtable(L, 0, cols);
            for (c = 0; c < cols; c++) {
                push_column(L, st, c);
                lua_setfield(L, -2, sqlite3_column_name(st, c));
            }
            lua_rawseti(L, list, ++n);
        }
    }
    if (rc != SQLITE_DONE) {
        n = push_error(L, d->db);
        done(d, st);
        return n;
    }
    done(d, st);
    if (!rows) lua_pushinteger(L, sqlite3_changes(d->db));
    return 1;
}

/* db:run(sql, ...) -> changes | nil, message, "sqlite" */
static int db_run(lua_State *L) { return run_statement(L, 0); }

/* db:query(sql, ...) -> { {col = value, ...}, ... } | nil, message, "sqlite" */
static int db_query(lua_State *L) { return run_statement(L, 1); }

/* db:atomically(fn) -> what fn returns | nil, message, "sqlite".
 * One write transaction (BEGIN IMMEDIATE: a read and the write that depends
 * on it, atomic across connections): ROLLBACK when fn's first result is
 * nil (fn returns nil, message, code), COMMIT otherwise. When fn raises, the rollback is done
 * here in C before the error goes on: a CPU budget that raises on every Lua
 * instruction could stop a rollback written in Lua, and a transaction left
 * open locks every other connection out. Inside an open transaction fn just
 * runs in it (the outer one decides). */
static int db_atomically(lua_State *L)
{
    tl_db *d = check_db(L);
    int n;
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    if (!sqlite3_get_autocommit(d->db)) {
        lua_call(L, 0, LUA_MULTRET);
        return lua_gettop(L) - 1;
    }
    if (sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return push_error(L, d->db);
    if (lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK) {
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        return lua_error(L);
    }
    n = lua_gettop(L) - 1;
    if (n == 0 || lua_isnil(L, 2)) {
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        return n;
    }
    if (sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        n = push_error(L, d->db);
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        return n;
    }
    return n;
}

/* db:wal_mark() -> integer | nil: a number that stays the same while the
 * WAL-index header of the database does (walformat.html, "the WAL-index
 * header": iChange, mxFrame, the salts and checksums, 48 bytes), which
 * every committed transaction of any connection in any process rewrites.
 * The same mark twice means nothing was committed in between, so answers
 * read after the first are still true. The connection keeps the header it
 * saw last and counts up when the one it reads differs (a number: no
 * string made per call). Readers compare the header's two copies as
 * SQLite's own do (walIndexTryHdr), and a mark is only given when they
 * agree. nil when there is no shared WAL index (not WAL mode, the memdb
 * VFS) or inside a transaction (this connection's own uncommitted writes
 * do not move it). The index is reached through the VFS's xShmMap on the
 * connection's own file, the mapping SQLite itself uses, valid while the
 * connection is open (SQLite unmaps it only when it closes the WAL: when
 * the connection closes or leaves WAL mode, which the store never does),
 * so it is looked up once and kept. */
#define WAL_HDR 48
static int db_wal_mark(lua_State *L)
{
    tl_db *d = check_db(L);
    sqlite3_file *f = NULL;
    volatile void *region = NULL;
    unsigned char a[WAL_HDR], b[WAL_HDR];
    if (!sqlite3_get_autocommit(d->db)) return 0;
    region = d->wal_region;
    if (!region) { /* mapped once: xShmMap takes the database's and the shared index's mutexes, which
                    * every worker's connection would take on every webhook */
        if (sqlite3_file_control(d->db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK || !f || !f->pMethods ||
            f->pMethods->iVersion < 2 || !f->pMethods->xShmMap)
            return 0;
        if (f->pMethods->xShmMap(f, 0, 32768, 0, &region) != SQLITE_OK || !region) return 0;
        d->wal_region = region;
    }
    memcpy(a, (const void *)region, WAL_HDR);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    memcpy(b, (const unsigned char *)region + WAL_HDR, WAL_HDR);
    if (memcmp(a, b, WAL_HDR) != 0 || a[12] != 1) return 0; /* being written, or not initialised (isInit) */
    if (d->wal_gen == 0 || memcmp(a, d->wal_hdr, WAL_HDR) != 0) {
        memcpy(d->wal_hdr, a, WAL_HDR);
        d->wal_gen++;
    }
    lua_pushinteger(L, d->wal_gen);
    return 1;
}

static const luaL_Reg db_methods[] = {
    { "wal_mark", db_wal_mark },
    { "exec", db_exec },
    { "atomically", db_atomically },
    { "run", db_run },
    { "query", db_query },
    { "close", db_close },
    { NULL, NULL }
};

void tl_open_sqlite(lua_State *L)
{
    if (luaL_newmetatable(L, SQLITE_MT)) {
        luaL_newlib(L, db_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, db_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, db_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, db_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_open);
}
