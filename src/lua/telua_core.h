/*
 * telua_core.h - entry points of the telua.core Lua module.
 */
#ifndef TELUA_CORE_LUA_H
#define TELUA_CORE_LUA_H

#include <lua.h>

/* The one version string; lua/telua/init.lua and the rockspec carry the same. */
#define TELUA_VERSION "0.1.0"

/* require("telua.core"): pushes the module table. */
int luaopen_telua_core(lua_State *L);

/* Pushes core.sqlite_open and registers the telua.SQLite metatable. */
void tl_open_sqlite(lua_State *L);

/* Sets core.http_request, core.http_batch and core.http_version in the
 * table at the top of the stack (libcurl). */
void tl_open_http(lua_State *L);

/* libcurl's global init, once per process, before the first transfer (and
 * not when telua.core is opened: a program that never uses libcurl, such
 * as nginx on cosockets, never starts it). Any thread. */
void tl_http_global_init(void);

/*
 * Prepared HTTP requests, for a host that runs them on its own event loop
 * (the telua host's workers: the Lua caller yields, the request runs on
 * the worker's I/O thread, the caller resumes with the answer).
 *
 * tl_http_prepare reads the options at idx (one request table, or with
 * `batch` a list of them) exactly as core.http_request / http_batch do,
 * raising on bad options; it returns a job whose easy handles the host adds
 * to its own multi handle. tl_http_job_done records one finished transfer
 * and returns how many are left; tl_http_job_push pushes the answer(s) as
 * core.http_request / http_batch return them; tl_http_job_free releases
 * everything. Prepare, push and free run on the thread that owns L.
 */
#include <curl/curl.h>
typedef struct tl_http_job tl_http_job;
tl_http_job *tl_http_prepare(lua_State *L, int idx, int batch);
int tl_http_job_count(const tl_http_job *j);
CURL *tl_http_job_easy(tl_http_job *j, int i);
int tl_http_job_done(tl_http_job *j, CURL *easy, CURLcode result);
void tl_http_job_abort(tl_http_job *j);
/* Marks the unfinished transfers as timed out (code "timeout"): the host's
 * deadline for a request passed before they were done. */
void tl_http_job_expire(tl_http_job *j);
int tl_http_job_push(lua_State *L, tl_http_job *j, int batch);
void tl_http_job_free(tl_http_job *j);

#endif
