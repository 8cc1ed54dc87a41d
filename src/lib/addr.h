/*
 * addr: parsing of "host:port" listen and connect addresses, shared by the
 * gRPC server (h2s) and client (gcl).
 */
#ifndef CORACLE_ADDR_H
#define CORACLE_ADDR_H

#include <sys/socket.h>

/*
 * Parses "1.2.3.4:port", "[::1]:port", "localhost:port" or ":port" (any
 * address) into *ss and *sslen; port 0 is allowed. Returns 0, or -1 if addr
 * is not of that shape.
 */
int addr_parse_hostport(const char *addr, struct sockaddr_storage *ss, int *sslen);

/* The host's first up, non-loopback IPv4 address, or "127.0.0.1" (malloc'd). */
char *addr_host_ipv4(void);

#endif
