/*
 * cidr: IP ranges as Kubernetes writes them ("10.244.0.0/16"), for the
 * node IPAM allocator, the kubelet's pod network and Node validation.
 * IPv4 ranges are parsed into numbers (the allocator's arithmetic);
 * IPv6 ones are only checked.
 */
#ifndef CORACLE_CIDR_H
#define CORACLE_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An IPv4 range: the address in host byte order and the prefix length. */
struct cidr4 {
    uint32_t addr;
    int bits;
};

/* Whether s is an IPv4 or IPv6 CIDR as Go's net.ParseCIDR takes it ("10.0.0.1/8" too). */
bool cidr_valid(const char *s);
/* Parses an IPv4 CIDR into *out (OUT; host bits kept). 0, or -1 if s is none. */
int cidr_parse4(const char *s, struct cidr4 *out);
/* The network address: addr with the host bits cleared. */
uint32_t cidr_network(const struct cidr4 *c);
/* Whether ip (host order) lies in c. */
bool cidr_contains(const struct cidr4 *c, uint32_t ip);
/* "a.b.c.d/bits" of the network (host bits cleared) into buf (OUT, >= 19 bytes). */
void cidr_format4(const struct cidr4 *c, char *buf, size_t len);
/* "a.b.c.d" of ip (host order) into buf (OUT, >= 16 bytes). */
void cidr_ip4(uint32_t ip, char *buf, size_t len);

#endif
