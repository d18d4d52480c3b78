/*
 * strmatch.h - Lua 5.4's pattern functions (string.find, match, gmatch,
 * gsub) with the CPU budget inside the matcher.
 *
 * Lua's own matcher (lstrlib.c) backtracks in C without ever returning to
 * the VM, so no count hook can stop it: ("a"):rep(400):find((".-"):rep(4).."b")
 * holds a thread for seconds, and a few more ".-" for years. These are the
 * same functions with the same semantics and error messages (Lua 5.4
 * reference manual §6.4.1), written for the host, that look at the state's
 * CPU deadline every 4,096 steps of the matcher and raise the budget error
 * when it has passed. A plain find uses glibc's memmem (linear), not
 * lstrlib's quadratic scan.
 */
#ifndef TELUA_STRMATCH_H
#define TELUA_STRMATCH_H

#include <lua.h>

/* Replaces find, match, gmatch and gsub in the `string` table of L (and so
 * the methods of every string). The state's extra space must hold its tl_vm. */
void tl_strmatch_install(lua_State *L);

#endif
