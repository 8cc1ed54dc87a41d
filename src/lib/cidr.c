/*
 * cidr: parsing and printing IP ranges. See cidr.h.
 */
#include "config.h"

#include "cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits "addr/bits": the address into a (max bytes) and the prefix length; -1 if malformed. */
static int split(const char *s, char *a, size_t max, int maxbits)
{
    const char *slash = s ? strchr(s, '/') : NULL;
    if (!slash || (size_t)(slash - s) >= max || !slash[1] || strlen(slash + 1) > 3)
        return -1;
    memcpy(a, s, (size_t)(slash - s));
    a[slash - s] = '\0';
    int bits = 0;
    for (const char *p = slash + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        bits = bits * 10 + (*p - '0');
    }
    if (slash[1] == '0' && slash[2]) /* Go rejects leading zeros */
        return -1;
    return bits <= maxbits ? bits : -1;
}

int cidr_parse4(const char *s, struct cidr4 *out)
{
    char a[INET_ADDRSTRLEN];
    int bits = split(s, a, sizeof(a), 32);
    struct in_addr in;
    if (bits < 0 || inet_pton(AF_INET, a, &in) != 1)
        return -1;
    out->addr = ntohl(in.s_addr);
    out->bits = bits;
    return 0;
}

bool cidr_valid(const char *s)
{
    struct cidr4 c;
    if (cidr_parse4(s, &c) == 0)
        return true;
    char a[INET6_ADDRSTRLEN];
    struct in6_addr in6;
    int bits = split(s, a, sizeof(a), 128);
    return bits >= 0 && inet_pton(AF_INET6, a, &in6) == 1;
}

uint32_t cidr_network(const struct cidr4 *c)
{
    return c->bits ? c->addr & (0xffffffffu << (32 - c->bits)) : 0;
}

bool cidr_contains(const struct cidr4 *c, uint32_t ip)
{
    struct cidr4 x = {ip, c->bits};
    return cidr_network(&x) == cidr_network(c);
}

void cidr_ip4(uint32_t ip, char *buf, size_t len)
{
    snprintf(buf, len, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

void cidr_format4(const struct cidr4 *c, char *buf, size_t len)
{
    char ip[16];
    cidr_ip4(cidr_network(c), ip, sizeof(ip));
    snprintf(buf, len, "%s/%d", ip, c->bits);
}
