/*
 * gen.h - rules generations and hot reload.
 *
 * A generation is the rules folder loaded into one lua_State per worker.
 * It is built whole off the request path (by the watcher thread) and only
 * then made current; a failed build leaves the current one serving and is
 * remembered by content hash so it is not retried until the files change.
 * Requests hold a reference to the generation they started on, so a swap
 * never pulls a state out from under a running rule; the last reference
 * frees it.
 */
#ifndef TELUA_GEN_H
#define TELUA_GEN_H

#include "telua.h"
#include "vm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

typedef struct tl_gen {
    int id;
    char hash[65];               /* SHA-256 of the rules files' names and contents */
    time_t loaded_at;
    int nfiles;
    int nvm;
    tl_vm **vm;                  /* one per worker */
    atomic_int refs;
} tl_gen;

typedef struct tl_load_error {
    char file[512];
    int line;                    /* 0 when unknown */
    char message[1024];
    char hash[65];
    time_t at;
} tl_load_error;

typedef struct tl_gens {
    /* settings, fixed after init */
    const char *rules_dir, *lua_dir, *store;
    int workers;
    size_t mem_limit;
    unsigned cpu_ms, load_ms, debounce_ms;
    int unsafe;                  /* rules get the whole standard library */
    const char *account_sid, *auth_token, *twilio_base_url; /* for the rules' telua.client (may be NULL) */
    const telua_module *modules; /* the embedder's C modules, preloaded in every state */
    size_t nmodules;
    telua_event_fn on_event;     /* NULL: no events */
    void *event_ud;
    struct tl_metrics *metrics;  /* the host's (NULL: none, as for telua check) */

    pthread_mutex_t mu;          /* guards current, last_error, next_id */
    pthread_rwlock_t cur_lock;   /* also taken (write, inside mu) to swap current, so
                                    the per-request acquire only read-locks */
    tl_gen *current;
    tl_load_error last_error;    /* message[0] == 0: none since the last success */
    int has_error;
    int next_id;
    unsigned long reloads, failures;

    pthread_t watcher;
    int stop_pipe[2];
    int wake_pipe[2];            /* tl_gens_refresh wakes the watcher */
    atomic_int refresh;          /* rebuild even though the files did not change */
    int watching;
} tl_gens;

/* Builds the first generation. Returns 0, or -1 with err filled. */
int tl_gens_init(tl_gens *g, tl_load_error *err);

/* Starts the watcher thread (inotify, or polling when inotify fails). */
int tl_gens_watch(tl_gens *g);

/* Stops the watcher and drops the current generation. */
void tl_gens_close(tl_gens *g);

/* The current generation with a reference taken; release when done. */
tl_gen *tl_gen_acquire(tl_gens *g);
void tl_gen_release(tl_gen *gen);

/* Builds and, when it loads whole, installs a new generation now if the
 * files changed (or, with force, even if not). Returns 1 swapped, 0
 * unchanged/known-bad, -1 failed. An empty folder is a failure: the
 * current generation keeps serving (a deploy that deletes before it
 * copies must not take every route away). */
int tl_gens_reload(tl_gens *g, int force);

/* Asks the watcher to rebuild the current files into fresh states (a
 * state panicked or stays full); safe from any thread. The watcher
 * rebuilds only while a state of the current generation is broken. */
void tl_gens_refresh(tl_gens *g);

/* Loads the rules into one fresh state (used by every build and by
 * `telua check`, which fills only the settings), their top-level code
 * under a CPU budget of load_ms. The credentials go into the registry's
 * "telua.env" (where telua.client looks before the process environment,
 * and where rules cannot look). On
 * success the vm's handler_ref is set; on failure err names file and line
 * (for a budget overrun, where the code was running when it ran out). */
tl_vm *tl_load_rules(const tl_gens *settings, int index, char **files, int nfiles, tl_load_error *err);

/* The error for a folder without rules files. */
void tl_empty_rules_error(const char *dir, tl_load_error *err);

/* Sorted *.lua names of dir (malloc'd); returns the count or -1. */
int tl_list_rules(const char *dir, char ***out);
void tl_free_list(char **files, int n);

/* SHA-256 over the names and contents of the rules files and of lib/ files. */
int tl_hash_rules(const char *dir, char **files, int n, char out[65]);

#endif
