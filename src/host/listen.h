/*
 * listen.h - listen addresses, shared by the host and the sandbox.
 */
#ifndef TELUA_LISTEN_H
#define TELUA_LISTEN_H

#include <sys/socket.h>

/* Parses "HOST:PORT" (IPv4) or "[V6]:PORT" into ss/len; *v6 says which.
 * The port must be 0-65535 and nothing may follow it. Returns 0 or -1. */
int tl_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len, int *v6);

/* The address part of s ("127.0.0.1", "::1") into out; 0 or -1. */
int tl_listen_host(const char *s, char *out, size_t outlen);

#endif
