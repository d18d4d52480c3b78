/*
 * vm.h - one bounded lua_State of the host.
 *
 * Each state has an allocator with a byte cap and an instruction-count
 * hook that enforces a CPU deadline per call (Redis script_lua.c pattern:
 * once the deadline passes the hook raises on every check, so a pcall in
 * user code cannot swallow it). Calls run under lua_pcall with a message
 * handler that adds a traceback (lua.c msghandler).
 */
#ifndef TELUA_VM_H
#define TELUA_VM_H

#include <lua.h>
#include <stddef.h>

typedef struct tl_vm {
    lua_State *L;
    size_t used, limit;      /* bytes held by this state, and its cap */
    long long deadline_ns;   /* CLOCK_MONOTONIC; 0 = no deadline */
    unsigned cpu_ms;
    int handler_ref;         /* registry ref of the request handler */
    int idle_co_ref;         /* a finished coroutine kept for the next request (LUA_NOREF: none) */
} tl_vm;

/* A new state with the standard libraries, telua.core preloaded and
 * package.path pointing at lua_dir (rules' lib.* is resolved by telua.rules).
 * NULL on failure. */
tl_vm *tl_vm_new(size_t mem_limit, unsigned cpu_ms, const char *lua_dir);

void tl_vm_free(tl_vm *vm);

/* lua_pcall(nargs, nresults) under the message handler and, when
 * `budget` is set, the CPU deadline. Returns the lua_pcall status; on
 * error the message (with traceback) is on the stack top. */
int tl_vm_pcall(tl_vm *vm, int nargs, int nresults, int budget);

/* lua_resume(co, nargs) under the CPU deadline: *budget_ns is what is
 * left of the request's budget and is reduced by the time this slice
 * took (waiting for I/O between slices does not count). On an error the
 * message with co's traceback is on co's stack top. */
int tl_vm_resume(tl_vm *vm, lua_State *co, int nargs, int *nres, long long *budget_ns);

long long tl_now_ns(void);

#endif
