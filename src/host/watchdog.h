/*
 * watchdog.h - the rules' CPU budget without an instruction hook on the
 * common path.
 *
 * A count hook makes Lua 5.4 stop in luaG_traceexec before every
 * instruction (lvm.c: `trap` stays set while any hook mask is), which cost
 * a third of the interpreter's time on the webhook path. Instead each
 * thread that runs rules arms a slot (the deadline and the lua_State
 * running) and one watchdog thread looks at the armed slots every tick;
 * past a deadline it sends the slot's thread a signal, and the handler, on
 * that thread, sets the budget hook on the running state - what lua.c does
 * from its SIGINT handler (lua_sethook "can be called asynchronously",
 * ldebug.c). The hook then raises on every instruction, as before. A
 * request stops at most one tick past its budget.
 *
 * The signal is SIGURG (its default action is to ignore it, so a stray one
 * harms nothing; Go's runtime uses it for preemption for the same reason).
 * A handler the process had before is called for every SIGURG that is not
 * the watchdog's. Threads without a slot (the rules' loader, an embedder's
 * own) keep the count hook.
 */
#ifndef TELUA_WATCHDOG_H
#define TELUA_WATCHDOG_H

#include <lua.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

typedef struct tl_wd_slot {
    struct tl_wd_slot *next;        /* the watchdog's list (guarded by its mutex) */
    pthread_t thread;
    atomic_llong due_ns;            /* CLOCK_MONOTONIC deadline; 0: nothing armed */
    atomic_int kicked;              /* the watchdog signalled this arming */
    atomic_uint sent;               /* signals the watchdog sent this thread */
    unsigned seen;                  /* of those, the ones the handler took (this thread only) */
    lua_State *volatile co;         /* the thread running Lua now: the one the handler hooks */
} tl_wd_slot;

/* Starts the watchdog thread (counted: each start needs a stop), looking
 * every tick_ms (at least 1). Returns 0, or -1 when the thread or the
 * signal handler cannot be set up (the callers then keep the count hook). */
int tl_wd_start(unsigned tick_ms);
void tl_wd_stop(void);

/* This thread's slot, made and registered on the first call while the
 * watchdog runs (the signal is unblocked in this thread then); NULL when
 * it does not run or out of memory. The slot goes with the thread. */
tl_wd_slot *tl_wd_join(void);

/* This thread's slot if it has one and the watchdog runs, else NULL. */
tl_wd_slot *tl_wd_self(void);

/* Arming and disarming, on the slot's own thread only. */
void tl_wd_arm(tl_wd_slot *s, lua_State *co, long long due_ns);
void tl_wd_disarm(tl_wd_slot *s);

/* The running state changes (a rule resumes a coroutine of its own, or it
 * returns): the slot follows it; past the deadline the new one is hooked
 * at once. */
void tl_wd_switch(tl_wd_slot *s, lua_State *co);

#endif
