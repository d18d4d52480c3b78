/*
 * compat.h - the few Lua 5.2+ API calls telua.core uses that the 5.1 API
 * lacks, chosen by LUA_VERSION_NUM so one source builds for Lua 5.4, 5.3,
 * LuaJIT 2.1 and PUC Lua 5.1 (a rock built with --lua-version=5.1 against
 * Debian's lua5.1 headers, which LuaJIT then loads: same ABI). LuaJIT 2.1's
 * headers have luaL_newlib and luaL_setmetatable; PUC 5.1's do not.
 * (Pattern of lua-compat-5.3 and luasocket's compat.h; names are prefixed
 * so they never clash with a runtime's own.)
 */
#ifndef TELUA_COMPAT_H
#define TELUA_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 501 || LUA_VERSION_NUM > 504
#error "telua.core builds for Lua 5.1 (and LuaJIT), 5.3 and 5.4"
#endif

#if LUA_VERSION_NUM == 501
#ifndef LUA_OK
#define LUA_OK 0
#endif
#ifndef luaL_newlib /* PUC Lua 5.1 headers */
static inline void tl_setfuncs51(lua_State *L, const luaL_Reg *l)
{
    for (; l->name; l++) {
        lua_pushcfunction(L, l->func);
        lua_setfield(L, -2, l->name);
    }
}
#define luaL_newlib(L, l) (lua_createtable((L), 0, (int)(sizeof(l) / sizeof((l)[0])) - 1), tl_setfuncs51((L), (l)))
#define luaL_setmetatable(L, tname) (luaL_getmetatable((L), (tname)), lua_setmetatable((L), -2))
#endif
#define tl_rawlen(L, i) lua_objlen((L), (i))
/* lua_rawget / lua_rawgeti give the value's type from 5.3 on */
#define tl_rawget(L, i) (lua_rawget((L), (i)), lua_type((L), -1))
#define tl_rawgeti(L, i, n) (lua_rawgeti((L), (i), (n)), lua_type((L), -1))
static inline int tl_absindex(lua_State *L, int i)
{
    return (i > 0 || i <= LUA_REGISTRYINDEX) ? i : lua_gettop(L) + i + 1;
}
#else
#define tl_rawlen(L, i) lua_rawlen((L), (i))
#define tl_absindex(L, i) lua_absindex((L), (i))
#define tl_rawget(L, i) lua_rawget((L), (i))
#define tl_rawgeti(L, i, n) lua_rawgeti((L), (i), (n))
#endif

/* a full userdata without user values */
#if LUA_VERSION_NUM >= 504
#define tl_newuserdata(L, n) lua_newuserdatauv((L), (n), 0)
#else
#define tl_newuserdata(L, n) lua_newuserdata((L), (n))
#endif

#endif
