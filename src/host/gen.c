/*
 * gen.c - rules generations and hot reload (see gen.h).
 */
#include "gen.h"
#include "metrics.h"
#include "embed.h"
#include "log.h"
#include "clock.h"

#include <lauxlib.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_lua_file(const char *dir, const char *name)
{
    size_t n = strlen(name);
    char path[4096];
    struct stat st;
    if (n < 5 || strcmp(name + n - 4, ".lua") != 0 || name[0] == '.') return 0;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int tl_list_rules(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **files = NULL;
    int n = 0, cap = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL) {
        if (!is_lua_file(dir, e->d_name)) continue;
        if (n == cap) {
            char **nf = realloc(files, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *files);
            if (!nf) break;
            files = nf;
        }
        files[n] = strdup(e->d_name);
        if (files[n]) n++;
    }
    closedir(d);
    if (n) qsort(files, (size_t)n, sizeof *files, cmp_str);
    *out = files;
    return n;
}

void tl_free_list(char **files, int n)
{
    int i;
    for (i = 0; i < n; i++) free(files[i]);
    free(files);
}

static void hash_file(EVP_MD_CTX *md, const char *dir, const char *name)
{
    char path[4096], buf[16384];
    size_t r;
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    EVP_DigestUpdate(md, name, strlen(name) + 1);
    f = fopen(path, "rb");
    if (!f) {
        EVP_DigestUpdate(md, "\0missing", 8);
        return;
    }
    while ((r = fread(buf, 1, sizeof buf, f)) > 0) EVP_DigestUpdate(md, buf, r);
    fclose(f);
    EVP_DigestUpdate(md, "\0", 1);
}

int tl_hash_rules(const char *dir, char **files, int n, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char d[32];
    unsigned int dl = 0;
    char libdir[4096], **lib = NULL;
    int i, nlib;
    if (!md) return -1;
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    for (i = 0; i < n; i++) hash_file(md, dir, files[i]);
    snprintf(libdir, sizeof libdir, "%s/lib", dir);
    nlib = tl_list_rules(libdir, &lib);
    for (i = 0; i < nlib; i++) {
        char name[4096];
        snprintf(name, sizeof name, "lib/%s", lib[i]);
        hash_file(md, dir, name);
    }
    if (nlib > 0) tl_free_list(lib, nlib);
    EVP_DigestFinal_ex(md, d, &dl);
    EVP_MD_CTX_free(md);
    for (i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = 0;
    return 0;
}

/* Copies a Lua load error ({file, line, message} or a string) into err. */
static void take_error(lua_State *L, int idx, tl_load_error *err, const char *dflt_file)
{
    idx = lua_absindex(L, idx);
    memset(err, 0, sizeof *err);
    snprintf(err->file, sizeof err->file, "%s", dflt_file);
    if (lua_istable(L, idx)) {
        lua_getfield(L, idx, "file");
        if (lua_isstring(L, -1)) snprintf(err->file, sizeof err->file, "%s", lua_tostring(L, -1));
        lua_getfield(L, idx, "line");
        err->line = (int)lua_tointeger(L, -1);
        lua_getfield(L, idx, "message");
        snprintf(err->message, sizeof err->message, "%s",
                 lua_isstring(L, -1) ? lua_tostring(L, -1) : "load failed");
        lua_pop(L, 3);
    } else {
        snprintf(err->message, sizeof err->message, "%s",
                 lua_isstring(L, idx) ? lua_tostring(L, idx) : "load failed");
    }
    err->at = time(NULL);
}

void tl_empty_rules_error(const char *dir, tl_load_error *err)
{
    memset(err, 0, sizeof *err);
    snprintf(err->file, sizeof err->file, "%s", dir);
    snprintf(err->message, sizeof err->message,
             "no rules files (*.lua) in the folder: an empty rules folder is refused");
    err->at = time(NULL);
}

/* A load that failed on the CPU budget: where the code was, not where the
 * error surfaced (the loader's own pcalls re-raise it). */
static void budget_error(tl_vm *vm, unsigned load_ms, const char *dflt_file, tl_load_error *err)
{
    memset(err, 0, sizeof *err);
    snprintf(err->file, sizeof err->file, "%s", vm->budget_file[0] ? vm->budget_file : dflt_file);
    err->line = vm->budget_line;
    snprintf(err->message, sizeof err->message,
             "the rules' top-level code ran past the load budget of %u ms (--load-ms)", load_ms);
    err->at = time(NULL);
}

/* lua_pcall'd: registry["telua.env"] = { TWILIO_ACCOUNT_SID = ..., ... } */
static int set_env(lua_State *L)
{
    const tl_gens *g = lua_touserdata(L, 1);
    lua_createtable(L, 0, 3);
    if (g->account_sid) {
        lua_pushstring(L, g->account_sid);
        lua_setfield(L, -2, "TWILIO_ACCOUNT_SID");
    }
    if (g->auth_token) {
        lua_pushstring(L, g->auth_token);
        lua_setfield(L, -2, "TWILIO_AUTH_TOKEN");
    }
    if (g->twilio_base_url) {
        lua_pushstring(L, g->twilio_base_url);
        lua_setfield(L, -2, "TELUA_TWILIO_BASE_URL");
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "telua.env");
    lua_pushboolean(L, 1); /* a worker state: telua.http must never block it */
    lua_setfield(L, LUA_REGISTRYINDEX, "telua.worker");
    tl_preload_modules(L, g->modules, g->nmodules);
    return 0;
}

tl_vm *tl_load_rules(const tl_gens *g, int index, char **files, int nfiles, tl_load_error *err)
{
    const char *rules_dir = g->rules_dir, *lua_dir = g->lua_dir, *store = g->store;
    unsigned load_ms = g->load_ms;
    int unsafe = g->unsafe;
    tl_vm *vm = tl_vm_new(g->mem_limit, g->cpu_ms, lua_dir);
    lua_State *L;
    int i;
    if (!vm) {
        memset(err, 0, sizeof *err);
        snprintf(err->message, sizeof err->message, "cannot create a Lua state (out of memory)");
        return NULL;
    }
    L = vm->L;
    lua_pushcfunction(L, set_env);
    lua_pushlightuserdata(L, (void *)g);
    if (tl_vm_pcall(vm, 1, 0, 0) != LUA_OK) {
        take_error(L, -1, err, rules_dir);
        tl_vm_free(vm);
        return NULL;
    }
    /* require("telua.host").load(dir, files, store, log, opts) -> handler | nil, err */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "telua.host");
    if (tl_vm_pcall(vm, 1, 1, load_ms) != LUA_OK) {
        take_error(L, -1, err, lua_dir);
        tl_vm_free(vm);
        return NULL;
    }
    lua_getfield(L, -1, "load");
    lua_pushstring(L, rules_dir);
    lua_createtable(L, nfiles, 0);
    for (i = 0; i < nfiles; i++) {
        lua_pushstring(L, files[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushstring(L, store);
    lua_getfield(L, LUA_REGISTRYINDEX, "telua.host_log");
    lua_createtable(L, 0, 4);
    tl_push_metric_fn(L, g->metrics, index);
    lua_setfield(L, -2, "metric");
    lua_pushboolean(L, unsafe);
    lua_setfield(L, -2, "unsafe");
    tl_push_module_names(L, g->modules, g->nmodules);
    lua_setfield(L, -2, "modules");
    tl_push_event_fn(L, g->on_event, g->event_ud);
    lua_setfield(L, -2, "on_event");
    if (tl_vm_pcall(vm, 5, 2, load_ms) != LUA_OK || !lua_isfunction(L, -2)) {
        if (vm->budget_hit) budget_error(vm, load_ms, rules_dir, err);
        else take_error(L, -1, err, rules_dir);
        tl_vm_free(vm);
        return NULL;
    }
    lua_pop(L, 1);
    vm->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    /* generational from here on: what loading built becomes old at once, and
     * a webhook's garbage (its tables, its reply) dies young in minor
     * collections that leave the rules and modules alone; measured 3.5 us of
     * CPU less per webhook than the incremental mode (bench/RESULTS.md) */
    lua_gc(L, LUA_GCGEN, 0, 0);
    return vm;
}

static void gen_free(tl_gen *gen)
{
    int i;
    for (i = 0; i < gen->nvm; i++) tl_vm_free(gen->vm[i]);
    free(gen->vm);
    free(gen);
}

/* Builds a whole generation; NULL with err on the first failure. */
static tl_gen *gen_build(tl_gens *g, char **files, int nfiles, const char *hash, tl_load_error *err)
{
    tl_gen *gen;
    int i;
    if (nfiles == 0) {
        tl_empty_rules_error(g->rules_dir, err);
        return NULL;
    }
    gen = calloc(1, sizeof *gen);
    if (!gen || !(gen->vm = calloc((size_t)g->workers, sizeof *gen->vm))) {
        free(gen);
        memset(err, 0, sizeof *err);
        snprintf(err->message, sizeof err->message, "out of memory");
        return NULL;
    }
    for (i = 0; i < g->workers; i++) {
        gen->vm[i] = tl_load_rules(g, i, files, nfiles, err);
        if (!gen->vm[i]) {
            gen->nvm = i;
            gen_free(gen);
            return NULL;
        }
        gen->nvm = i + 1;
    }
    snprintf(gen->hash, sizeof gen->hash, "%s", hash);
    gen->loaded_at = time(NULL);
    gen->nfiles = nfiles;
    atomic_init(&gen->refs, 1); /* the reference held as "current" */
    return gen;
}

tl_gen *tl_gen_acquire(tl_gens *g)
{
    tl_gen *gen;
    pthread_rwlock_rdlock(&g->cur_lock);
    gen = g->current;
    if (gen) atomic_fetch_add(&gen->refs, 1);
    pthread_rwlock_unlock(&g->cur_lock);
    return gen;
}

void tl_gen_release(tl_gen *gen)
{
    if (gen && atomic_fetch_sub(&gen->refs, 1) == 1) gen_free(gen);
}

int tl_gens_reload(tl_gens *g, int force)
{
    char **files = NULL, hash[65];
    int n = tl_list_rules(g->rules_dir, &files), same;
    tl_load_error err;
    tl_gen *gen, *old;
    if (n < 0) {
        tl_log("error", "reload: cannot read %s: %s", g->rules_dir, strerror(errno));
        return -1;
    }
    tl_hash_rules(g->rules_dir, files, n, hash);
    pthread_mutex_lock(&g->mu);
    same = !force && ((g->current && strcmp(g->current->hash, hash) == 0) ||
                      (g->has_error && strcmp(g->last_error.hash, hash) == 0));
    if (same && g->has_error && g->current && strcmp(g->current->hash, hash) == 0) {
        /* the broken edit was undone: the files are the ones being served */
        g->has_error = 0;
        tl_log("info", "rules are back to generation %d's files (sha256 %.12s): still serving it, "
                       "last reload error cleared", g->current->id, hash);
    }
    pthread_mutex_unlock(&g->mu);
    if (same) {
        tl_free_list(files, n);
        return 0;
    }
    gen = gen_build(g, files, n, hash, &err);
    tl_free_list(files, n);
    pthread_mutex_lock(&g->mu);
    if (!gen) {
        snprintf(err.hash, sizeof err.hash, "%s", hash);
        g->last_error = err;
        g->has_error = 1;
        g->failures++;
        pthread_mutex_unlock(&g->mu);
        tl_metrics_record(g->metrics, -1, TL_M_RELOADS, (const char *[]){ "failed" }, 1);
        if (err.line)
            tl_log("error", "reload failed, still serving generation %d: %s:%d: %s",
                   g->current ? g->current->id : 0, err.file, err.line, err.message);
        else
            tl_log("error", "reload failed, still serving generation %d: %s: %s",
                   g->current ? g->current->id : 0, err.file, err.message);
        return -1;
    }
    gen->id = ++g->next_id;
    old = g->current;
    pthread_rwlock_wrlock(&g->cur_lock);
    g->current = gen;
    pthread_rwlock_unlock(&g->cur_lock);
    g->has_error = 0;
    g->reloads++;
    pthread_mutex_unlock(&g->mu);
    tl_metrics_record(g->metrics, -1, TL_M_RELOADS, (const char *[]){ "ok" }, 1);
    tl_log("info", "rules generation %d loaded (%d files, sha256 %.12s)%s", gen->id, gen->nfiles, hash,
           force ? ": fresh states" : "");
    tl_gen_release(old);
    return 1;
}

int tl_gens_init(tl_gens *g, tl_load_error *err)
{
    char **files = NULL, hash[65];
    int n;
    tl_gen *gen;
    pthread_mutex_init(&g->mu, NULL);
    pthread_rwlock_init(&g->cur_lock, NULL);
    g->current = NULL;
    g->has_error = 0;
    g->next_id = 0;
    g->watching = 0;
    g->wake_pipe[0] = g->wake_pipe[1] = -1;
    atomic_init(&g->refresh, 0);
    n = tl_list_rules(g->rules_dir, &files);
    if (n < 0) {
        memset(err, 0, sizeof *err);
        snprintf(err->file, sizeof err->file, "%s", g->rules_dir);
        snprintf(err->message, sizeof err->message, "cannot read the rules folder: %s", strerror(errno));
        return -1;
    }
    tl_hash_rules(g->rules_dir, files, n, hash);
    gen = gen_build(g, files, n, hash, err);
    tl_free_list(files, n);
    if (!gen) return -1;
    gen->id = ++g->next_id;
    g->current = gen;
    tl_log("info", "rules generation %d loaded (%d files, sha256 %.12s)", gen->id, gen->nfiles, hash);
    return 0;
}

/* Whether a state of the current generation is broken (a request still
 * finishing on an older generation's broken state asks for a rebuild the
 * current one does not need). */
static int current_broken(tl_gens *g)
{
    int i, broken = 0;
    pthread_mutex_lock(&g->mu);
    for (i = 0; g->current && i < g->current->nvm; i++) broken |= g->current->vm[i]->broken;
    pthread_mutex_unlock(&g->mu);
    return broken;
}

/* Watches the folder (and lib/) with inotify on the directories, so saves
 * by rename count; reloads once the folder has been quiet for debounce_ms.
 * Without inotify it re-hashes once a second (the hash makes that cheap
 * when nothing changed). */
static void *watch_main(void *arg)
{
    tl_gens *g = arg;
    const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
                          IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC), pending = 0;
    long long due = 0;
    char libdir[4096], buf[8192];
    snprintf(libdir, sizeof libdir, "%s/lib", g->rules_dir);
    if (fd >= 0) {
        if (inotify_add_watch(fd, g->rules_dir, mask) < 0) {
            close(fd);
            fd = -1;
        } else {
            inotify_add_watch(fd, libdir, mask); /* may not exist; created later is seen on dir */
        }
    }
    if (fd < 0) tl_log("warn", "inotify unavailable (%s); checking the rules folder every second", strerror(errno));
    /* a change made between the first build and the watch above has no
     * event: look once, now that the watch is in place */
    pending = 1;
    due = tl_now_ns() + (long long)g->debounce_ms * 1000000LL;
    for (;;) {
        struct pollfd p[3] = { { g->stop_pipe[0], POLLIN, 0 }, { g->wake_pipe[0], POLLIN, 0 }, { fd, POLLIN, 0 } };
        int timeout = 1000, rc;
        if (pending) {
            long long left = (due - tl_now_ns()) / 1000000;
            timeout = left < 0 ? 0 : (int)left;
        }
        rc = poll(p, fd >= 0 ? 3 : 2, timeout);
        if (rc < 0 && errno != EINTR) break;
        if (p[0].revents) break;
        if (rc > 0 && (p[1].revents & POLLIN)) {
            while (read(g->wake_pipe[0], buf, sizeof buf) > 0) {}
            if (atomic_exchange(&g->refresh, 0) && current_broken(g)) tl_gens_reload(g, 1);
            continue;
        }
        if (fd >= 0 && rc > 0 && (p[2].revents & POLLIN)) {
            while (read(fd, buf, sizeof buf) > 0) {}
            inotify_add_watch(fd, libdir, mask); /* no-op if already watched */
            pending = 1;
            due = tl_now_ns() + (long long)g->debounce_ms * 1000000LL;
            continue;
        }
        if (fd < 0 || (pending && tl_now_ns() >= due)) {
            pending = 0;
            tl_gens_reload(g, 0);
        }
    }
    if (fd >= 0) close(fd);
    return NULL;
}

void tl_gens_refresh(tl_gens *g)
{
    if (atomic_exchange(&g->refresh, 1) == 0 && g->wake_pipe[1] >= 0) {
        ssize_t w = write(g->wake_pipe[1], "r", 1);
        (void)w;
    }
}

int tl_gens_watch(tl_gens *g)
{
    if (pipe(g->stop_pipe) != 0) return -1;
    if (pipe2(g->wake_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        close(g->stop_pipe[0]);
        close(g->stop_pipe[1]);
        return -1;
    }
    if (pthread_create(&g->watcher, NULL, watch_main, g) != 0) {
        close(g->stop_pipe[0]);
        close(g->stop_pipe[1]);
        close(g->wake_pipe[0]);
        close(g->wake_pipe[1]);
        g->wake_pipe[0] = g->wake_pipe[1] = -1;
        return -1;
    }
    g->watching = 1;
    return 0;
}

void tl_gens_close(tl_gens *g)
{
    tl_gen *gen;
    if (g->watching) {
        ssize_t w = write(g->stop_pipe[1], "x", 1);
        (void)w;
        pthread_join(g->watcher, NULL);
        close(g->stop_pipe[0]);
        close(g->stop_pipe[1]);
        close(g->wake_pipe[0]);
        close(g->wake_pipe[1]);
        g->wake_pipe[0] = g->wake_pipe[1] = -1;
        g->watching = 0;
    }
    pthread_mutex_lock(&g->mu);
    gen = g->current;
    pthread_rwlock_wrlock(&g->cur_lock);
    g->current = NULL;
    pthread_rwlock_unlock(&g->cur_lock);
    pthread_mutex_unlock(&g->mu);
    tl_gen_release(gen);
    pthread_rwlock_destroy(&g->cur_lock);
    pthread_mutex_destroy(&g->mu);
}
