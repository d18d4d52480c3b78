/*
 * vm.c - bounded lua_State (see vm.h).
 */
#include "vm.h"
#include "log.h"

#include "../lua/telua_core.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

long long tl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* lua_Alloc with a byte cap: refusing a growth makes Lua raise a memory
 * error in the running call, which the host turns into the fallback. */
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

/* Every 1000 instructions: past the deadline, raise; then check on every
 * instruction so a pcall inside the rule cannot swallow the error. */
static void budget_hook(lua_State *L, lua_Debug *ar)
{
    tl_vm *vm = *(tl_vm **)lua_getextraspace(L);
    (void)ar;
    if (vm->deadline_ns && tl_now_ns() > vm->deadline_ns) {
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "rule exceeded its CPU budget of %d ms", (int)vm->cpu_ms);
    }
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
    luaL_openlibs(L);
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
    return vm;
}

void tl_vm_free(tl_vm *vm)
{
    if (!vm) return;
    if (vm->L) lua_close(vm->L);
    free(vm);
}

int tl_vm_resume(tl_vm *vm, lua_State *co, int nargs, int *nres, long long *budget_ns)
{
    long long start = tl_now_ns();
    int rc;
    if (budget_ns) {
        vm->deadline_ns = start + (*budget_ns > 0 ? *budget_ns : 1);
        lua_sethook(co, budget_hook, LUA_MASKCOUNT, 1000);
    }
    rc = lua_resume(co, vm->L, nargs, nres);
    if (budget_ns) {
        lua_sethook(co, NULL, 0, 0);
        vm->deadline_ns = 0;
        *budget_ns -= tl_now_ns() - start;
    }
    if (rc != LUA_OK && rc != LUA_YIELD) { /* the error with the coroutine's traceback, on co */
        const char *msg = lua_tostring(co, -1);
        luaL_traceback(co, co, msg ? msg : "(error object is not a string)", 0);
    }
    return rc;
}

int tl_vm_pcall(tl_vm *vm, int nargs, int nresults, int budget)
{
    lua_State *L = vm->L;
    int base = lua_gettop(L) - nargs, rc;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    if (budget && vm->cpu_ms) {
        vm->deadline_ns = tl_now_ns() + (long long)vm->cpu_ms * 1000000LL;
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1000);
    }
    rc = lua_pcall(L, nargs, nresults, base);
    if (budget && vm->cpu_ms) {
        lua_sethook(L, NULL, 0, 0);
        vm->deadline_ns = 0;
    }
    lua_remove(L, base);
    return rc;
}
