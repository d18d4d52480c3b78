/*
 * compat.h - the few Lua 5.2+ API calls telua.core uses that LuaJIT (5.1
 * API) lacks, chosen by LUA_VERSION_NUM so one source builds for both.
 * (Pattern of lua-compat-5.3 and luasocket's compat.h; names are prefixed
 * so they never clash with a runtime's own.)
 */
#ifndef TELUA_COMPAT_H
#define TELUA_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM == 501
#define tl_rawlen(L, i) lua_objlen((L), (i))
static inline int tl_absindex(lua_State *L, int i)
{
    return (i > 0 || i <= LUA_REGISTRYINDEX) ? i : lua_gettop(L) + i + 1;
}
#else
#define tl_rawlen(L, i) lua_rawlen((L), (i))
#define tl_absindex(L, i) lua_absindex((L), (i))
#endif

#endif
