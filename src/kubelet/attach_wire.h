/*
 * attach_wire: the frames on a container's attach socket, between the
 * kubelet (tunnel.c, the client) and coracle-monitor (monitor_io.c, the
 * server that holds the container's stdin and output).
 *
 * The socket is <state>/attach (a unix stream socket the monitor binds
 * in the container's state dir, so that it outlives kubelet restarts as
 * the monitor does). Paths there can pass sun_path's 108 bytes: both ends
 * reach it through /proc/self/fd/<dirfd>/attach (attach_wire_addr).
 *
 * A frame is a 1-byte type, a 4-byte big-endian length and that many
 * bytes (at most ATTACH_WIRE_MAX). Client to monitor:
 *   'h' hello, 1 byte of flags (ATTACH_WIRE_STDIN: the session brings
 *       stdin; a stdinOnce container's stdin closes when it ends)
 *   'i' stdin bytes
 *   'c' the session's stdin ended
 *   'w' a window size: rows, columns (2 bytes each, big-endian)
 * Monitor to client: 'o' stdout bytes, 'e' stderr bytes (a terminal's
 * output is all 'o'). The monitor closes the socket when the container
 * ended and its output is sent.
 */
#ifndef CORACLE_KUBELET_ATTACH_WIRE_H
#define CORACLE_KUBELET_ATTACH_WIRE_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#define ATTACH_WIRE_HDR 5
#define ATTACH_WIRE_MAX (64u << 10)
#define ATTACH_WIRE_STDIN 1
#define ATTACH_WIRE_SOCK "attach"

/* A frame's header for type and len into hdr. */
static inline void attach_wire_hdr(uint8_t hdr[ATTACH_WIRE_HDR], char type, uint32_t len)
{
    hdr[0] = (uint8_t)type;
    hdr[1] = (uint8_t)(len >> 24);
    hdr[2] = (uint8_t)(len >> 16);
    hdr[3] = (uint8_t)(len >> 8);
    hdr[4] = (uint8_t)len;
}

static inline uint32_t attach_wire_len(const uint8_t *hdr)
{
    return (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
}

/* The address of name in the directory open as dirfd (any path length). */
static inline socklen_t attach_wire_addr(struct sockaddr_un *sa, int dirfd, const char *name)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/%s", dirfd, name);
    return (socklen_t)sizeof *sa;
}

#endif
