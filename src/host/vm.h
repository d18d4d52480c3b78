/*
 * vm.h - one bounded lua_State of the host.
 *
 * Each state has an allocator with a byte cap and a CPU deadline: on a
 * thread with a watchdog slot (watchdog.h) the watchdog sets the budget
 * hook once the deadline passes, elsewhere an instruction-count hook looks
 * every 1000 instructions; past the deadline the hook raises on every
 * instruction (Redis script_lua.c pattern), so a pcall in user code cannot
 * swallow it. The pattern functions check the same deadline
 * from inside the matcher (strmatch.h). Calls run under lua_pcall with a
 * message handler that adds a traceback (lua.c msghandler); a panic (an
 * error outside any protected call, which the host never makes on
 * purpose) is logged and, where a recovery point is armed, jumps back to
 * it instead of aborting the process.
 */
#ifndef TELUA_VM_H
#define TELUA_VM_H

#include "clock.h"
#include "metrics.h"

#include <lua.h>
#include <setjmp.h>
#include <stddef.h>

typedef struct tl_vm {
    lua_State *L;
    size_t used, limit;      /* bytes held by this state, and its cap (0: none) */
    long long deadline_ns;   /* CLOCK_MONOTONIC; 0 = no deadline */
    unsigned cpu_ms;         /* the request budget, for messages */
    unsigned budget_ms;      /* the budget of the call running now, for messages */
    int handler_ref;         /* registry ref of the request handler */
    int idle_co_ref;         /* a finished coroutine kept for the next request (LUA_NOREF: none) */
    int budget_hit;          /* the deadline passed during the current call */
    char budget_file[256];   /* where it passed: the Lua function running then */
    int budget_line;
    volatile int broken;     /* 1: full for good, 2: panicked; either way the generation is rebuilt */
    jmp_buf *panic_jmp;      /* where a panic jumps to (NULL: log and abort) */
    struct tl_wd_slot *wd;   /* the watchdog slot armed for the running call (NULL: the count hook) */
} tl_vm;

/* Where telua's Lua modules are: $TELUA_LUA_DIR, else share/lua/5.4 under
 * the install prefix of the running executable or of libtelua.so (when it
 * holds telua/router.lua), else the folder compiled in (the checkout for a
 * build that is not installed). Never NULL. */
const char *tl_default_lua_dir(void);

/* A new state with the standard libraries, the bounded pattern functions,
 * telua.core preloaded and package.path pointing at lua_dir. NULL when out
 * of memory. In the registry: "telua.host_log" (level, message) and
 * "telua.resume" (coroutine.resume under the caller's budget: the rules'
 * coroutine.resume and coroutine.wrap). */
tl_vm *tl_vm_new(size_t mem_limit, unsigned cpu_ms, const char *lua_dir);

void tl_vm_free(tl_vm *vm);

/* Pushes the function telua.metrics.use takes: records into m from shard
 * (a worker's index on its own thread, or -1); nil when m is NULL. */
void tl_push_metric_fn(lua_State *L, tl_metrics *m, int shard);

/* lua_pcall(nargs, nresults) under the message handler and, when
 * budget_ms > 0, a CPU deadline that far ahead. Returns the lua_pcall
 * status; on error the message (with traceback) is on the stack top, and
 * vm->budget_hit says whether the deadline was the cause. */
int tl_vm_pcall(tl_vm *vm, int nargs, int nresults, unsigned budget_ms);

/* Arms the deadline `ns` from now on thread co (the hook raises in co
 * once it passes: through the thread's watchdog slot when it has one, else
 * a count hook); stop disarms it and returns the nanoseconds used. */
void tl_vm_budget_start(tl_vm *vm, lua_State *co, long long ns, unsigned budget_ms);
long long tl_vm_budget_stop(tl_vm *vm, lua_State *co, long long started_ns);

/* The budget hook (set by the count hook arming or the watchdog). */
void tl_vm_budget_hook(lua_State *L, lua_Debug *ar);

/* Records, once per call, where the budget ran out (the running Lua
 * function's file:line). Called by the hook and by the matcher. */
void tl_vm_note_budget(tl_vm *vm, lua_State *L);

/* After lua_resume(co) failed with status rc: pushes onto L (not co) the
 * error as a string with co's traceback. For LUA_ERRMEM it builds nothing
 * that needs memory first: it notes the file:line of the innermost Lua
 * frame, resets co (freeing its stack), collects, and only then pushes
 * "file:line: not enough memory"; if the state is still nearly full the vm
 * is marked broken. Raises only out of memory: call it protected. co must
 * not be resumed again. */
void tl_vm_push_error(tl_vm *vm, lua_State *L, lua_State *co, int rc);

#endif
