/*
 * embed.h - the embedding API's inner parts (embed.c): events from the
 * Lua states to telua_config.on_event, and telua_send's own state.
 */
#ifndef TELUA_EMBED_H
#define TELUA_EMBED_H

#include "telua.h"

#include <lua.h>

/* Pushes a Lua function(kind, fields) that hands the event to fn(ud) as a
 * telua_event ("inbound", "optout", "optin", "status"; other kinds are
 * ignored), or nil when fn is NULL. */
void tl_push_event_fn(lua_State *L, telua_event_fn fn, void *ud);

/* Adds package.preload[name] = open for each module (raises on a module
 * without a name or function). */
void tl_preload_modules(lua_State *L, const telua_module *mods, size_t n);

/* Pushes the list of the modules' names. */
void tl_push_module_names(lua_State *L, const telua_module *mods, size_t n);

#endif
