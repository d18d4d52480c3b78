/*
 * listen.c - see listen.h.
 */
#include "listen.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* "PORT" with nothing after it, 0-65535; -1 when not. */
static long parse_port(const char *p)
{
    char *end;
    long port;
    if (!*p) return -1;
    port = strtol(p, &end, 10);
    if (*end || port < 0 || port > 65535) return -1;
    return port;
}

int tl_listen_host(const char *s, char *out, size_t outlen)
{
    const char *end;
    if (s[0] == '[') {
        end = strchr(s, ']');
        if (!end || (size_t)(end - s - 1) >= outlen) return -1;
        memcpy(out, s + 1, (size_t)(end - s - 1));
        out[end - s - 1] = 0;
        return 0;
    }
    end = strrchr(s, ':');
    if (!end || (size_t)(end - s) >= outlen) return -1;
    memcpy(out, s, (size_t)(end - s));
    out[end - s] = 0;
    return 0;
}

int tl_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len, int *v6)
{
    char host[256];
    long port;
    memset(ss, 0, sizeof *ss);
    if (tl_listen_host(s, host, sizeof host) != 0) return -1;
    if (s[0] == '[') {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        const char *end = strchr(s, ']');
        if (end[1] != ':' || (port = parse_port(end + 2)) < 0) return -1;
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return -1;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((unsigned short)port);
        *len = sizeof *a;
        *v6 = 1;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        if ((port = parse_port(strrchr(s, ':') + 1)) < 0) return -1;
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return -1;
        a->sin_family = AF_INET;
        a->sin_port = htons((unsigned short)port);
        *len = sizeof *a;
        *v6 = 0;
    }
    return 0;
}
