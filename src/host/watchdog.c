/*
 * watchdog.c - the CPU budget's watchdog thread (see watchdog.h).
 */
#include "watchdog.h"
#include "clock.h"
#include "log.h"
#include "vm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WD_SIGNAL SIGURG

static pthread_mutex_t wd_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cv;
static pthread_t wd_thread;
static int wd_users;                 /* starts not yet stopped */
static atomic_int wd_running;        /* the thread runs: slots are handed out and looked at */
static long long wd_tick_ns;
static tl_wd_slot *wd_slots;         /* every registered thread's slot */
static struct sigaction wd_old;      /* the handler before ours, called for other SIGURGs */
static int wd_installed;
static pthread_once_t wd_once = PTHREAD_ONCE_INIT;
static pthread_key_t wd_key;         /* its destructor unregisters a thread's slot */

/* Read by the signal handler: initial-exec keeps the access free of any
 * allocation (the handler must stay async-signal-safe). */
static __thread tl_wd_slot *wd_self __attribute__((tls_model("initial-exec")));

/* On the thread that was signalled: hook the running state if its
 * deadline has passed. Everything read here is written by this same
 * thread (or is atomic), and lua_sethook only stores fields. */
static void on_signal(int sig, siginfo_t *si, void *uc)
{
    tl_wd_slot *s = wd_self;
    int saved = errno;
    unsigned sent = s ? atomic_load(&s->sent) : 0;
    if (s && sent != s->seen) { /* the watchdog's (signals pending together are delivered once) */
        lua_State *co = s->co;
        long long due = atomic_load_explicit(&s->due_ns, memory_order_relaxed);
        s->seen = sent;
        if (co && due && tl_now_ns() >= due) lua_sethook(co, tl_vm_budget_hook, LUA_MASKCOUNT, 1);
    } else if (wd_old.sa_flags & SA_SIGINFO) { /* not ours: whoever had SIGURG before */
        if (wd_old.sa_sigaction) wd_old.sa_sigaction(sig, si, uc);
    } else if (wd_old.sa_handler != SIG_DFL && wd_old.sa_handler != SIG_IGN && wd_old.sa_handler) {
        wd_old.sa_handler(sig);
    }
    errno = saved;
}

static void slot_gone(void *p)
{
    tl_wd_slot *s = p, **pp;
    pthread_mutex_lock(&wd_mu);
    for (pp = &wd_slots; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    pthread_mutex_unlock(&wd_mu);
    wd_self = NULL;
    free(s);
}

static void make_key(void)
{
    pthread_condattr_t ca;
    if (pthread_key_create(&wd_key, slot_gone) != 0) wd_key = (pthread_key_t)-1;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wd_cv, &ca);
    pthread_condattr_destroy(&ca);
}

static void *wd_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&wd_mu);
    while (wd_users > 0) {
        struct timespec ts;
        long long now = tl_now_ns(), next = now + wd_tick_ns;
        tl_wd_slot *s;
        for (s = wd_slots; s; s = s->next) {
            long long due = atomic_load(&s->due_ns);
            if (due && now >= due && !atomic_load(&s->kicked)) {
                atomic_store(&s->kicked, 1);
                atomic_fetch_add(&s->sent, 1);
                pthread_kill(s->thread, WD_SIGNAL); /* the thread is alive: it unregisters under wd_mu */
            }
        }
        ts.tv_sec = next / 1000000000LL;
        ts.tv_nsec = next % 1000000000LL;
        pthread_cond_timedwait(&wd_cv, &wd_mu, &ts);
    }
    pthread_mutex_unlock(&wd_mu);
    return NULL;
}

int tl_wd_start(unsigned tick_ms)
{
    long long tick = (long long)(tick_ms ? tick_ms : 1) * 1000000LL;
    int rc = 0;
    pthread_once(&wd_once, make_key);
    if (wd_key == (pthread_key_t)-1) return -1;
    pthread_mutex_lock(&wd_mu);
    if (wd_users > 0) {
        if (tick < wd_tick_ns) wd_tick_ns = tick;
        wd_users++;
        pthread_mutex_unlock(&wd_mu);
        return 0;
    }
    if (!wd_installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_signal;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (sigaction(WD_SIGNAL, &sa, &wd_old) != 0) rc = -1;
        else wd_installed = 1;
    }
    if (rc == 0) {
        wd_tick_ns = tick;
        wd_users = 1;
        if (pthread_create(&wd_thread, NULL, wd_main, NULL) != 0) {
            wd_users = 0;
            rc = -1;
        } else {
            atomic_store(&wd_running, 1);
        }
    }
    pthread_mutex_unlock(&wd_mu);
    return rc;
}

void tl_wd_stop(void)
{
    int last;
    pthread_mutex_lock(&wd_mu);
    last = wd_users == 1;
    if (wd_users > 0) wd_users--;
    if (last) {
        atomic_store(&wd_running, 0);
        pthread_cond_signal(&wd_cv);
    }
    pthread_mutex_unlock(&wd_mu);
    if (last) pthread_join(wd_thread, NULL); /* the handler stays: a late signal finds no deadline */
}

tl_wd_slot *tl_wd_self(void)
{
    return atomic_load_explicit(&wd_running, memory_order_relaxed) ? wd_self : NULL;
}

tl_wd_slot *tl_wd_join(void)
{
    tl_wd_slot *s;
    sigset_t set;
    if (!atomic_load(&wd_running)) return NULL;
    if (wd_self) return wd_self;
    s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->thread = pthread_self();
    if (pthread_setspecific(wd_key, s) != 0) {
        free(s);
        return NULL;
    }
    sigemptyset(&set);
    sigaddset(&set, WD_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    pthread_mutex_lock(&wd_mu);
    s->next = wd_slots;
    wd_slots = s;
    pthread_mutex_unlock(&wd_mu);
    wd_self = s;
    return s;
}

void tl_wd_arm(tl_wd_slot *s, lua_State *co, long long due_ns)
{
    s->co = co;
    atomic_store_explicit(&s->kicked, 0, memory_order_relaxed);
    atomic_store(&s->due_ns, due_ns); /* (seq_cst: after co, for the handler and the watchdog) */
}

void tl_wd_disarm(tl_wd_slot *s)
{
    atomic_store(&s->due_ns, 0);
    s->co = NULL;
    atomic_signal_fence(memory_order_seq_cst);
}

void tl_wd_switch(tl_wd_slot *s, lua_State *co)
{
    long long due;
    s->co = co;
    atomic_signal_fence(memory_order_seq_cst);
    /* signalled before the switch: the handler hooked the state left, so
     * the one that runs now is hooked here */
    due = atomic_load(&s->due_ns);
    if (due && atomic_load(&s->kicked) && tl_now_ns() >= due) lua_sethook(co, tl_vm_budget_hook, LUA_MASKCOUNT, 1);
}
