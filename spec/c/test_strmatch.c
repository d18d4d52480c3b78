/*
 * test_strmatch.c - src/host/strmatch.c against Lua 5.4's own string
 * library (liblua5.4's lstrlib, the independent oracle): the same results
 * and the same errors for string.find, match, gmatch and gsub over
 * table-driven cases and randomly generated patterns and subjects
 * (strmatch_cases.lua), then the budget: a pattern that backtracks for
 * years stops at the deadline. TAP output.
 */
#include "../../src/host/strmatch.h"
#include "../../src/host/vm.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <string.h>

static int ok_count, fail_count;

static void tap(int ok, const char *name, const char *detail)
{
    printf("%s %d - %s\n", ok ? "ok" : "not ok", ok_count + fail_count + 1, name);
    if (!ok && detail) printf("# %s\n", detail);
    if (ok) ok_count++;
    else fail_count++;
}

/* t_to[name] = t_from[name] for the four pattern functions (t_to made if
 * it is not there yet). */
static void copy_fns(lua_State *L, const char *from, const char *to)
{
    static const char *const names[] = { "find", "match", "gmatch", "gsub" };
    size_t i;
    if (lua_getglobal(L, to) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setglobal(L, to);
    }
    lua_getglobal(L, from);
    for (i = 0; i < 4; i++) {
        lua_getfield(L, -1, names[i]);
        lua_setfield(L, -3, names[i]);
    }
    lua_pop(L, 2);
}

int main(int argc, char **argv)
{
    const char *cases = argc > 1 ? argv[1] : "spec/c/strmatch_cases.lua";
    lua_State *L = luaL_newstate();
    tl_vm vm;
    int rc;
    printf("TAP version 13\n");
    memset(&vm, 0, sizeof vm);
    vm.L = L;
    vm.cpu_ms = 50;
    *(tl_vm **)lua_getextraspace(L) = &vm;
    luaL_openlibs(L);
    /* real = the liblua functions; ours = strmatch's; string.* stays real */
    copy_fns(L, "string", "real");
    tl_strmatch_install(L);
    copy_fns(L, "string", "ours");
    copy_fns(L, "real", "string");

    /* the cases script returns (mismatch count, cases run, first mismatch) */
    if (luaL_loadfile(L, cases) != LUA_OK || lua_pcall(L, 0, 3, 0) != LUA_OK) {
        tap(0, "strmatch_cases.lua runs", lua_tostring(L, -1));
    } else {
        char name[128];
        snprintf(name, sizeof name, "the same results and errors as lstrlib in %lld cases",
                 (long long)lua_tointeger(L, -2));
        tap(lua_tointeger(L, -3) == 0, name, lua_tostring(L, -1));
    }
    lua_settop(L, 0);

    /* the budget: ("a"):rep(400):find((".-"):rep(8).."b") backtracks ~400^8 steps */
    {
        long long t0 = tl_now_ns(), ms;
        vm.deadline_ns = t0 + 50 * 1000000LL;
        vm.budget_ms = 50;
        luaL_loadstring(L, "return ours.find(('a'):rep(400), ('.-'):rep(8) .. 'b')");
        rc = lua_pcall(L, 0, 1, 0);
        ms = (tl_now_ns() - t0) / 1000000;
        vm.deadline_ns = 0;
        tap(rc == LUA_ERRRUN && strstr(lua_tostring(L, -1), "exceeded the CPU budget of 50 ms") != NULL,
            "a catastrophic pattern raises the budget error", lua_tostring(L, -1));
        tap(ms < 200, "and stops within 200 ms of a 50 ms deadline", NULL);
        tap(vm.budget_hit == 1, "the budget hit is recorded", NULL);
        lua_settop(L, 0);
    }
    /* a plain find is linear: a 4 MB needle that almost matches everywhere */
    {
        long long t0 = tl_now_ns();
        luaL_loadstring(L, "local h = ('a'):rep(8e6) return ours.find(h, ('a'):rep(4e6) .. 'b', 1, true)");
        rc = lua_pcall(L, 0, 1, 0);
        tap(rc == LUA_OK && lua_isnil(L, -1) && (tl_now_ns() - t0) < 2000000000LL,
            "a plain find of a long near-miss needle takes linear time", lua_tostring(L, -1));
        lua_settop(L, 0);
    }
    lua_close(L);
    printf("1..%d\n", ok_count + fail_count);
    return fail_count ? 1 : 0;
}
