/*
 * sender.c - the sender thread: lua/telua/sender.lua on a state of its
 * own, sending what rules queued in the outbox.
 */
#include "host.h"
#include "embed.h"
#include "log.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

static int sender_stopping(lua_State *L)
{
    telua_host *h = lua_touserdata(L, lua_upvalueindex(1));
    lua_pushboolean(L, atomic_load(&h->stopping));
    return 1;
}

static void *sender_main(void *arg)
{
    telua_host *h = arg;
    lua_State *L = h->sender->L;
    /* the stack holds: telua.sender, opts (built by tl_sender_start) */
    if (tl_vm_pcall(h->sender, 1, 0, 0) != LUA_OK)
        tl_log("error", "sender stopped: %s", lua_tostring(L, -1));
    lua_settop(L, 0);
    return NULL;
}

/* lua_pcall'd: pushes require("telua.host").sender and its options. */
static int prepare(lua_State *L)
{
    telua_host *h = lua_touserdata(L, 1);
    const telua_config *cfg = &h->cfg;
    lua_settop(L, 0);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "telua.host");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "sender");
    lua_remove(L, -2);
    lua_createtable(L, 0, 8);
    lua_pushstring(L, cfg->store);
    lua_setfield(L, -2, "store");
    lua_pushstring(L, cfg->account_sid);
    lua_setfield(L, -2, "account_sid");
    lua_pushstring(L, cfg->auth_token);
    lua_setfield(L, -2, "auth_token");
    if (cfg->twilio_base_url) {
        lua_pushstring(L, cfg->twilio_base_url);
        lua_setfield(L, -2, "base_url");
    }
    if (cfg->send_rates) {
        lua_pushstring(L, cfg->send_rates);
        lua_setfield(L, -2, "rates");
    }
    lua_pushinteger(L, cfg->send_concurrency > 0 ? cfg->send_concurrency : 8);
    lua_setfield(L, -2, "concurrency");
    lua_pushstring(L, h->consumer);
    lua_setfield(L, -2, "consumer");
    if (cfg->claim_timeout_s) {
        lua_pushinteger(L, (lua_Integer)cfg->claim_timeout_s);
        lua_setfield(L, -2, "visibility");
    }
    lua_pushlightuserdata(L, h);
    lua_pushcclosure(L, sender_stopping, 1);
    lua_setfield(L, -2, "stopping");
    tl_push_event_fn(L, cfg->on_event, cfg->event_ud);
    lua_setfield(L, -2, "on_event");
    tl_push_metric_fn(L, h->metrics, -1);
    lua_setfield(L, -2, "metric");
    return 2;
}

/* Starts the sender when an account SID is configured. The auth token is
 * handed to the sender's client (kept in that state only). */
int tl_sender_start(telua_host *h, char *err, size_t errlen)
{
    const telua_config *cfg = &h->cfg;
    lua_State *L;
    if (!cfg->account_sid) return 0;
    if (!tl_store_shared(cfg->store)) {
        tl_log("warn", "outbound sending needs a store the workers and the sender share (sqlite:FILE, memory or "
                       "Redis); no sender");
        return 0;
    }
    h->sender = tl_vm_new(0, 0, h->gens.lua_dir);
    if (!h->sender) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    L = h->sender->L;
    lua_pushcfunction(L, prepare);
    lua_pushlightuserdata(L, h);
    if (tl_vm_pcall(h->sender, 1, 2, 0) != LUA_OK) {
        snprintf(err, errlen, "sender: %s", lua_tostring(L, -1));
        tl_vm_free(h->sender);
        h->sender = NULL;
        return -1;
    }
    if (pthread_create(&h->sender_thread, NULL, sender_main, h) != 0) {
        snprintf(err, errlen, "cannot start the sender thread");
        tl_vm_free(h->sender);
        h->sender = NULL;
        return -1;
    }
    return 0;
}

void tl_sender_stop(telua_host *h)
{
    if (!h->sender) return;
    atomic_store(&h->stopping, 1); /* the sender finishes the batch in flight, then returns */
    pthread_join(h->sender_thread, NULL);
    tl_vm_free(h->sender);
    h->sender = NULL;
}
