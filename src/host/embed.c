/*
 * embed.c - the embedding API beyond start and stop: events, C modules,
 * and telua_send (see telua.h).
 *
 * telua_send runs on a Lua state of its own (h->api, created at the first
 * call, guarded by h->api_mu): require("telua.host").api{...} gives it the
 * same queueing function req.send uses (telua.router.queue), on its own
 * connection to the host's SQLite store.
 */
#include "embed.h"
#include "host.h"
#include "log.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    telua_event_fn fn;
    void *ud;
} event_sink;

static const char *opt_field(lua_State *L, int t, const char *k)
{
    const char *s;
    lua_getfield(L, t, k);
    s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1); /* the string stays alive: the table holds it */
    return s;
}

static long long int_field(lua_State *L, int t, const char *k)
{
    long long n;
    lua_getfield(L, t, k);
    n = lua_isnumber(L, -1) ? (long long)lua_tonumber(L, -1) : 0;
    lua_pop(L, 1);
    return n;
}

/* function(kind, fields) */
static int l_event(lua_State *L)
{
    event_sink *sink = lua_touserdata(L, lua_upvalueindex(1));
    const char *kind = luaL_checkstring(L, 1);
    telua_event e;
    luaL_checktype(L, 2, LUA_TTABLE);
    memset(&e, 0, sizeof e);
    if (!strcmp(kind, "inbound")) e.kind = TELUA_EVENT_INBOUND;
    else if (!strcmp(kind, "optout")) e.kind = TELUA_EVENT_OPTOUT;
    else if (!strcmp(kind, "optin")) e.kind = TELUA_EVENT_OPTIN;
    else if (!strcmp(kind, "status")) e.kind = TELUA_EVENT_STATUS;
    else return 0;
    e.from = opt_field(L, 2, "from");
    e.to = opt_field(L, 2, "to");
    e.body = opt_field(L, 2, "body");
    e.keyword = opt_field(L, 2, "keyword");
    e.message_sid = opt_field(L, 2, "message_sid");
    e.status = opt_field(L, 2, "status");
    e.error_code = (int)int_field(L, 2, "error_code");
    e.outbox_id = int_field(L, 2, "outbox_id");
    sink->fn(&e, sink->ud);
    return 0;
}

void tl_push_event_fn(lua_State *L, telua_event_fn fn, void *ud)
{
    event_sink *sink;
    if (!fn) {
        lua_pushnil(L);
        return;
    }
    sink = lua_newuserdata(L, sizeof *sink);
    sink->fn = fn;
    sink->ud = ud;
    lua_pushcclosure(L, l_event, 1);
}

void tl_preload_modules(lua_State *L, const telua_module *mods, size_t n)
{
    size_t i;
    if (!n) return;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    for (i = 0; i < n; i++) {
        if (!mods[i].name || !mods[i].name[0] || !mods[i].open)
            luaL_error(L, "telua_config.modules[%d] needs a name and an open function", (int)i);
        lua_pushcfunction(L, mods[i].open);
        lua_setfield(L, -2, mods[i].name);
    }
    lua_pop(L, 2);
}

void tl_push_module_names(lua_State *L, const telua_module *mods, size_t n)
{
    size_t i;
    lua_createtable(L, (int)n, 0);
    for (i = 0; i < n; i++) {
        lua_pushstring(L, mods[i].name ? mods[i].name : "");
        lua_rawseti(L, -2, (int)i + 1);
    }
}

/* ---- telua_send --------------------------------------------------------- */

/* lua_pcall'd on the api state: pushes require("telua.host").api{...}. */
static int api_prepare(lua_State *L)
{
    telua_host *h = lua_touserdata(L, 1);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "telua.host");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "api");
    lua_createtable(L, 0, 4);
    lua_pushstring(L, h->cfg.store);
    lua_setfield(L, -2, "store");
    if (h->cfg.default_region) {
        lua_pushstring(L, h->cfg.default_region);
        lua_setfield(L, -2, "region");
    }
    lua_call(L, 1, 1);
    return 1;
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (!v) return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

/* lua_pcall'd: the send function is at 1, the message at 2 (light
 * userdata); returns what the send function returns. */
static int api_call(lua_State *L)
{
    const telua_message *m = lua_touserdata(L, 2);
    size_t i;
    lua_settop(L, 1);
    lua_createtable(L, 0, 10);
    set_str(L, "to", m->to);
    set_str(L, "from", m->from);
    set_str(L, "messaging_service_sid", m->messaging_service_sid);
    set_str(L, "body", m->body);
    set_str(L, "content_sid", m->content_sid);
    set_str(L, "content_variables", m->content_variables);
    set_str(L, "status_callback", m->status_callback);
    set_str(L, "dedupe", m->dedupe);
    if (m->media_urls && m->nmedia) {
        lua_createtable(L, (int)m->nmedia, 0);
        for (i = 0; i < m->nmedia; i++) {
            lua_pushstring(L, m->media_urls[i] ? m->media_urls[i] : "");
            lua_rawseti(L, -2, (int)i + 1);
        }
        lua_setfield(L, -2, "media_url");
    }
    lua_call(L, 1, 2);
    return 2;
}

static void set_err(telua_send_error *err, int code, const char *msg)
{
    if (!err) return;
    err->code = code;
    snprintf(err->message, sizeof err->message, "%s", msg ? msg : "failed");
}

long long telua_send(telua_host *h, const telua_message *m, telua_send_error *err)
{
    lua_State *L;
    long long id = -1;
    int rc;
    if (err) memset(err, 0, sizeof *err);
    if (!h || !m) {
        set_err(err, 0, "telua_send needs a host and a message");
        return -1;
    }
    if (!tl_store_shared(h->cfg.store)) {
        set_err(err, 0, "telua_send needs a store the sender shares (telua_config.store = \"sqlite:FILE\" or "
                        "\"memory\")");
        return -1;
    }
    pthread_mutex_lock(&h->api_mu);
    if (!h->api) {
        h->api = tl_vm_new(0, 0, h->gens.lua_dir);
        if (!h->api) {
            pthread_mutex_unlock(&h->api_mu);
            set_err(err, 0, "out of memory");
            return -1;
        }
        lua_pushcfunction(h->api->L, api_prepare);
        lua_pushlightuserdata(h->api->L, h);
        if (tl_vm_pcall(h->api, 1, 1, 0) != LUA_OK) {
            tl_log("error", "telua_send: %s", lua_tostring(h->api->L, -1));
            set_err(err, 0, lua_tostring(h->api->L, -1));
            tl_vm_free(h->api);
            h->api = NULL;
            pthread_mutex_unlock(&h->api_mu);
            return -1;
        }
        h->api_ref = luaL_ref(h->api->L, LUA_REGISTRYINDEX);
    }
    L = h->api->L;
    lua_settop(L, 0);
    lua_pushcfunction(L, api_call);
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->api_ref);
    lua_pushlightuserdata(L, (void *)m);
    rc = tl_vm_pcall(h->api, 2, 2, 0);
    if (rc != LUA_OK) {
        set_err(err, 0, lua_tostring(L, -1));
    } else if (lua_isnumber(L, -2)) {
        id = (long long)lua_tonumber(L, -2);
    } else if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "code");
        lua_getfield(L, -2, "message");
        set_err(err, (int)lua_tointeger(L, -2), lua_tostring(L, -1));
    } else {
        set_err(err, 0, lua_tostring(L, -1));
    }
    lua_settop(L, 0);
    pthread_mutex_unlock(&h->api_mu);
    return id;
}
