/*
 * test_vm.c - src/host/vm.c's last resorts: a panic (an error outside any
 * protected call) jumps back to the armed recovery point and marks the
 * state broken instead of aborting the process; a coroutine that runs out
 * of memory gets its message without needing memory first; the CPU budget
 * cannot be swallowed by pcall, armed by a count hook or by the watchdog
 * (src/host/watchdog.c: no hook until the deadline passes, a coroutine the
 * rule runs is the one stopped, another SIGURG handler still gets its
 * signals). TAP output.
 */
#include "../../src/host/vm.h"
#include "../../src/host/watchdog.h"

#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static int n_ok, n_fail;
static volatile sig_atomic_t program_urgs; /* the SIGURGs the program's own handler saw */

static void program_handler(int sig)
{
    (void)sig;
    program_urgs++;
}

/* Runs chunk as a request's coroutine under a 50 ms budget; returns the
 * resume status, with the message in msg and the milliseconds in *ms. */
static int run_budgeted(tl_vm *vm, const char *chunk, int *hooked, char *msg, size_t msglen, double *ms)
{
    lua_State *L = vm->L, *co = lua_newthread(L);
    long long t0;
    int rc, nres;
    luaL_loadstring(co, chunk);
    t0 = tl_now_ns();
    tl_vm_budget_start(vm, co, 50000000LL, 50);
    *hooked = lua_gethook(co) != NULL;
    rc = lua_resume(co, L, 0, &nres);
    tl_vm_budget_stop(vm, co, t0);
    *ms = (double)(tl_now_ns() - t0) / 1e6;
    snprintf(msg, msglen, "%s", lua_type(co, -1) == LUA_TSTRING ? lua_tostring(co, -1) : "(no message)");
    *hooked = *hooked || lua_gethook(co) != NULL; /* (none left after stop either) */
    lua_pop(L, 1);
    return rc;
}

static void tap(int ok, const char *name, const char *detail)
{
    printf("%s %d - %s\n", ok ? "ok" : "not ok", n_ok + n_fail + 1, name);
    if (!ok && detail) printf("# %s\n", detail);
    if (ok) n_ok++;
    else n_fail++;
}

/* An unprotected error: lua_error with no lua_pcall around it. */
static int panics(tl_vm *vm)
{
    jmp_buf jb;
    vm->panic_jmp = &jb;
    if (setjmp(jb) != 0) {
        vm->panic_jmp = NULL;
        return 1;
    }
    lua_pushliteral(vm->L, "an unprotected error");
    lua_error(vm->L);
    return 0; /* not reached */
}

int main(void)
{
    tl_vm *vm;
    lua_State *L, *co;
    int rc, nres;
    printf("TAP version 13\n");

    vm = tl_vm_new(0, 50, "lua");
    tap(vm != NULL, "a state", NULL);
    tap(panics(vm) == 1, "a panic jumps back to the recovery point (the process lives)", NULL);
    tap(vm->broken == 2, "and marks the state broken", NULL);
    tl_vm_free(vm);

    /* out of memory inside a coroutine, with the state at its cap */
    vm = tl_vm_new(8u << 20, 50, "lua");
    L = vm->L;
    co = lua_newthread(L);
    luaL_loadstring(co, "local t = {} for i = 1, 1e9 do t[i] = { i } end");
    rc = lua_resume(co, L, 0, &nres);
    tap(rc == LUA_ERRMEM, "filling the cap with small tables is a memory error", NULL);
    lua_pop(L, 1);
    {
        int base = lua_gettop(L);
        tl_vm_push_error(vm, L, co, rc);
        tap(lua_gettop(L) == base + 1 && strncmp(lua_tostring(L, -1), "[string \"local t = {}", 20) == 0 &&
                strstr(lua_tostring(L, -1), "\"]:1: not enough memory (the state's cap is 8 MiB)") != NULL,
            "its message names the line, built after the coroutine let go of the memory", lua_tostring(L, -1));
        tap(vm->used < vm->limit / 2, "the memory is back", NULL);
        tap(vm->broken == 0, "the state is not marked broken (nothing kept the memory)", NULL);
    }
    tl_vm_free(vm);

    /* the budget through pcall */
    vm = tl_vm_new(0, 50, "lua");
    L = vm->L;
    luaL_loadstring(L, "for _ = 1, 100 do pcall(function() while true do end end) end return 'swallowed'");
    rc = tl_vm_pcall(vm, 0, 1, 50);
    tap(rc == LUA_ERRRUN && strstr(lua_tostring(L, -1), "rule exceeded its CPU budget of 50 ms") != NULL,
        "pcall cannot swallow the CPU budget", lua_tostring(L, -1));
    tap(vm->budget_hit && strncmp(vm->budget_file, "[string \"for _ = 1, 100 do pcall", 31) == 0 &&
        vm->budget_line == 1, "where it ran out is recorded", vm->budget_file);
    tl_vm_free(vm);

    /* the budget armed by the watchdog */
    {
        struct sigaction sa;
        char msg[300];
        int hooked;
        double ms;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = program_handler;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGURG, &sa, NULL);
        tap(tl_wd_start(2) == 0, "the watchdog starts", NULL);
        raise(SIGURG);
        tap(program_urgs == 1, "a SIGURG on a thread without a slot reaches the program's handler", NULL);
        tap(tl_wd_join() != NULL && tl_wd_self() == tl_wd_join(), "this thread has a slot", NULL);
        vm = tl_vm_new(0, 50, "lua");
        rc = run_budgeted(vm, "local n = 0 for _ = 1, 1e9 do pcall(function() while true do n = n + 1 end end) end",
                          &hooked, msg, sizeof msg, &ms);
        tap(rc == LUA_ERRRUN && strstr(msg, "rule exceeded its CPU budget of 50 ms") != NULL,
            "a loop under pcall stops at the budget", msg);
        tap(!hooked, "no hook was set before the deadline, none is left after", NULL);
        tap(ms >= 50 && ms < 1000, "it stopped soon after its 50 ms", NULL);
        rc = run_budgeted(vm, "local resume = debug.getregistry()['telua.resume'] "
                              "local co = coroutine.create(function() while true do end end) "
                              "local ok, err = resume(co) "
                              "for _ = 1, 1e9 do end return 'went on after: ' .. tostring(err)",
                          &hooked, msg, sizeof msg, &ms);
        tap(rc == LUA_ERRRUN && strstr(msg, "CPU budget") != NULL, "a loop in a coroutine the rule resumes stops, "
            "and so does the rule that caught its error", msg);
        rc = run_budgeted(vm, "return 'quick'", &hooked, msg, sizeof msg, &ms);
        tap(rc == LUA_OK && strcmp(msg, "quick") == 0 && !hooked, "a quick rule runs hook-free", msg);
        raise(SIGURG);
        tap(program_urgs == 2, "a SIGURG not sent by the watchdog still reaches the program's handler", NULL);
        tl_vm_free(vm);
        tl_wd_stop();
    }

    printf("1..%d\n", n_ok + n_fail);
    return n_fail ? 1 : 0;
}
