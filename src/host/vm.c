/*
 * vm.c - bounded lua_State (see vm.h).
 */
#include "vm.h"
#include "log.h"
#include "strmatch.h"
#include "watchdog.h"

#include "../lua/telua_core.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* lua_Alloc with a byte cap: refusing a growth makes Lua raise a memory
 * error in the running call, which the host turns into the fallback. With
 * ptr NULL, osize is a type tag, not a size. Frees and shrinks always
 * succeed. */
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    tl_vm *vm = ud;
    size_t old = ptr ? osize : 0;
    void *p;
    if (nsize == 0) {
        free(ptr);
        vm->used -= old;
        return NULL;
    }
    if (nsize > old && vm->limit && vm->used - old + nsize > vm->limit) return NULL;
    p = realloc(ptr, nsize);
    if (!p) return NULL;
    vm->used = vm->used - old + nsize;
    return p;
}

void tl_vm_note_budget(tl_vm *vm, lua_State *L)
{
    lua_Debug ar;
    int level;
    if (vm->budget_hit) return;
    vm->budget_hit = 1;
    vm->budget_file[0] = 0;
    vm->budget_line = 0;
    for (level = 0; lua_getstack(L, level, &ar); level++) { /* the innermost Lua function */
        if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0) continue;
        snprintf(vm->budget_file, sizeof vm->budget_file, "%s", ar.short_src);
        vm->budget_line = ar.currentline;
        return;
    }
}

/* Every 1000 instructions (threads without a watchdog slot), or once the
 * watchdog saw the deadline pass: past the deadline, raise; then check on
 * every instruction so a pcall inside the rule cannot swallow the error.
 * Called before the deadline (a signal for an arming already over), it
 * stands down: off under the watchdog, back to every 1000 otherwise. */
void tl_vm_budget_hook(lua_State *L, lua_Debug *ar)
{
    tl_vm *vm = *(tl_vm **)lua_getextraspace(L);
    (void)ar;
    if (vm->deadline_ns && tl_now_ns() > vm->deadline_ns) {
        lua_sethook(L, tl_vm_budget_hook, LUA_MASKCOUNT, 1);
        tl_vm_note_budget(vm, L);
        if (vm->budget_file[0])
            lua_pushfstring(L, "%s:%d: rule exceeded its CPU budget of %d ms", vm->budget_file, vm->budget_line,
                            (int)vm->budget_ms);
        else
            lua_pushfstring(L, "rule exceeded its CPU budget of %d ms", (int)vm->budget_ms);
        lua_error(L);
    }
    if (lua_gethookcount(L) == 1) {
        if (vm->wd) lua_sethook(L, NULL, 0, 0);
        else lua_sethook(L, tl_vm_budget_hook, LUA_MASKCOUNT, 1000);
    }
}

/* An error outside any protected call. The host makes every call into Lua
 * protected, so this is a bug; it is logged, the state is marked broken,
 * and with a recovery point armed the request is failed instead of the
 * process. The message is read only when it is already a string: no
 * allocation here. */
static int panic_handler(lua_State *L)
{
    tl_vm *vm = *(tl_vm **)lua_getextraspace(L);
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(error object is not a string)";
    tl_log("error", "Lua panic (unprotected error in the host): %s", msg);
    if (vm) {
        vm->broken = 2;
        if (vm->panic_jmp) longjmp(*vm->panic_jmp, 1);
    }
    return 0; /* Lua aborts */
}

/* Message handler: the error as a string plus a traceback. */
static int msghandler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static int host_log(lua_State *L)
{
    const char *level = luaL_checkstring(L, 1);
    const char *msg = luaL_checkstring(L, 2);
    tl_log(level, "%s", msg);
    return 0;
}

/* The metric function of a state (telua.metrics.use): upvalues the
 * registry (light userdata) and the shard (a worker's index, or -1). Label
 * values are strings or numbers (never converted through __tostring: the
 * caller may be rule code); anything else is "". */
static int host_metric(lua_State *L)
{
    tl_metrics *m = lua_touserdata(L, lua_upvalueindex(1));
    int shard = (int)lua_tointeger(L, lua_upvalueindex(2));
    const char *name = luaL_checkstring(L, 1);
    double v = luaL_checknumber(L, 2);
    const char *vals[3] = { "", "", "" };
    int fam = tl_metrics_find(name), n, i;
    if (fam < 0 || fam == TL_M_DELIVERY_RATIO) return luaL_error(L, "metrics: no family %s", name);
    n = tl_metrics_nlabels(fam);
    for (i = 0; i < n; i++) {
        int t = lua_type(L, 3 + i);
        if (t == LUA_TSTRING || t == LUA_TNUMBER) vals[i] = lua_tostring(L, 3 + i);
    }
    tl_metrics_record(m, shard, fam, vals, v);
    return 0;
}

void tl_push_metric_fn(lua_State *L, tl_metrics *m, int shard)
{
    if (!m) {
        lua_pushnil(L);
        return;
    }
    lua_pushlightuserdata(L, m);
    lua_pushinteger(L, shard);
    lua_pushcclosure(L, host_metric, 2);
}

/* telua.resume(co, ...): coroutine.resume (lcorolib.c auxresume) for the
 * rules, under the request's budget whatever hook co had when it was
 * made. Under the watchdog the slot follows the running coroutine (so a
 * loop in it is the one hooked) and goes back to the caller after; on a
 * thread without one, co gets the caller's count hook for the resume. */
static int host_resume(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    tl_vm *vm = *(tl_vm **)lua_getextraspace(L);
    tl_wd_slot *s = vm ? vm->wd : NULL;
    lua_State *prev = NULL;
    int narg = lua_gettop(L) - 1, status, nres = 0, lent = 0;
    luaL_argexpected(L, co, 1, "coroutine");
    if (!lua_checkstack(co, narg)) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "too many arguments to resume");
        return 2;
    }
    if (s && s->co == L && co != L) {
        prev = L;
        tl_wd_switch(s, co);
    } else if (co != L && lua_gethook(L)) {
        lua_sethook(co, lua_gethook(L), lua_gethookmask(L), lua_gethookcount(L));
        lent = 1;
    }
    lua_xmove(L, co, narg);
    status = lua_resume(co, L, narg, &nres);
    if (prev) {
        tl_wd_switch(s, prev);
        lua_sethook(co, NULL, 0, 0);
    } else if (lent) {
        lua_sethook(co, NULL, 0, 0);
    }
    if (status == LUA_OK || status == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushboolean(L, 0);
            lua_pushliteral(L, "too many results to resume");
            return 2;
        }
        lua_pushboolean(L, 1);
        lua_xmove(co, L, nres);
        return nres + 1;
    }
    lua_pushboolean(L, 0);
    lua_xmove(co, L, 1); /* the error */
    return 2;
}

/* Runs in protected mode: the libraries and the host's registry entries. */
static int vm_init(lua_State *L)
{
    const char *lua_dir = lua_touserdata(L, 1);
    luaL_openlibs(L);
    tl_strmatch_install(L);
    /* package.path: the telua modules (rules' lib.* is resolved by telua.rules) */
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", lua_dir, lua_dir);
    lua_setfield(L, -2, "path");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_telua_core);
    lua_setfield(L, -2, "telua.core");
    lua_pop(L, 2);
    lua_pushcfunction(L, host_log);
    lua_setfield(L, LUA_REGISTRYINDEX, "telua.host_log");
    lua_pushcfunction(L, host_resume);
    lua_setfield(L, LUA_REGISTRYINDEX, "telua.resume");
    return 0;
}

tl_vm *tl_vm_new(size_t mem_limit, unsigned cpu_ms, const char *lua_dir)
{
    tl_vm *vm = calloc(1, sizeof *vm);
    lua_State *L;
    if (!vm) return NULL;
    vm->limit = mem_limit;
    vm->cpu_ms = cpu_ms;
    vm->handler_ref = LUA_NOREF;
    vm->idle_co_ref = LUA_NOREF;
    L = lua_newstate(capped_alloc, vm);
    if (!L) {
        free(vm);
        return NULL;
    }
    vm->L = L;
    *(tl_vm **)lua_getextraspace(L) = vm;
    lua_atpanic(L, panic_handler);
    lua_pushcfunction(L, vm_init);
    lua_pushlightuserdata(L, (void *)lua_dir);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        tl_log("error", "cannot set up a Lua state: %s",
               lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "out of memory");
        tl_vm_free(vm);
        return NULL;
    }
    return vm;
}

void tl_vm_free(tl_vm *vm)
{
    if (!vm) return;
    if (vm->L) lua_close(vm->L);
    free(vm);
}

void tl_vm_budget_start(tl_vm *vm, lua_State *co, long long ns, unsigned budget_ms)
{
    tl_wd_slot *s = tl_wd_self();
    vm->deadline_ns = tl_now_ns() + (ns > 0 ? ns : 1);
    vm->budget_ms = budget_ms;
    vm->budget_hit = 0;
    if (s) {
        vm->wd = s;
        tl_wd_arm(s, co, vm->deadline_ns);
    } else {
        lua_sethook(co, tl_vm_budget_hook, LUA_MASKCOUNT, 1000);
    }
}

long long tl_vm_budget_stop(tl_vm *vm, lua_State *co, long long started_ns)
{
    if (vm->wd) {
        tl_wd_disarm(vm->wd);
        vm->wd = NULL;
    }
    lua_sethook(co, NULL, 0, 0);
    vm->deadline_ns = 0;
    return tl_now_ns() - started_ns;
}

void tl_vm_push_error(tl_vm *vm, lua_State *L, lua_State *co, int rc)
{
    if (rc == LUA_ERRMEM) {
        char where[300] = "";
        lua_Debug ar;
        int level;
        for (level = 0; lua_getstack(co, level, &ar); level++) /* no allocation in here */
            if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0) {
                snprintf(where, sizeof where, "%s:%d: ", ar.short_src, ar.currentline);
                break;
            }
#if LUA_VERSION_RELEASE_NUM >= 50406
        lua_closethread(co, L);
#else
        lua_resetthread(co);
#endif
        lua_gc(L, LUA_GCCOLLECT, 0);
        if (vm->limit && vm->used > vm->limit / 8 * 7 && !vm->broken) vm->broken = 1; /* the rules keep it */
        lua_pushfstring(L, "%snot enough memory (the state's cap is %d MiB)", where, (int)(vm->limit >> 20));
        return;
    }
    if (lua_type(co, -1) == LUA_TSTRING) {
        luaL_traceback(L, co, lua_tostring(co, -1), 0);
    } else {
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(co, -1));
        luaL_traceback(L, co, lua_tostring(L, -1), 0);
        lua_remove(L, -2);
    }
}

int tl_vm_pcall(tl_vm *vm, int nargs, int nresults, unsigned budget_ms)
{
    lua_State *L = vm->L;
    int base = lua_gettop(L) - nargs, rc;
    long long t0 = 0;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    if (budget_ms) {
        t0 = tl_now_ns();
        tl_vm_budget_start(vm, L, (long long)budget_ms * 1000000LL, budget_ms);
    }
    rc = lua_pcall(L, nargs, nresults, base);
    if (budget_ms) tl_vm_budget_stop(vm, L, t0);
    lua_remove(L, base);
    return rc;
}
