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

#endif
