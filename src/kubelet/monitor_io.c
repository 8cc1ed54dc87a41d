/*
 * monitor_io: coracle-monitor's attach sessions (see monitor_int.h and
 * attach_wire.h). The monitor's poll loop asks which descriptors to
 * watch (mio_pollfds) and hands back what poll saw (mio_handle).
 *
 * Stdin from every session goes to the container in arrival order
 * through one queue; while it holds MIO_STDIN_MAX bytes the sessions are
 * not read (their kubelet side buffers). Output is copied to each
 * session's own queue; a session that lets MIO_OUT_MAX pile up is closed
 * (the log file still has everything), so a stalled reader never stalls
 * the container.
 */
#include "config.h"
#include "monitor_int.h"
#include "attach_wire.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <termios.h>
#include <unistd.h>

#define MIO_CLIENTS_MAX (MIO_POLL_MAX - 2)
#define MIO_STDIN_MAX (1u << 20)
#define MIO_OUT_MAX (4u << 20)

struct mbuf {
    uint8_t *p;
    size_t len, cap;
};

struct client {
    int fd;
    bool had_stdin;
    size_t inlen;
    uint8_t in[ATTACH_WIRE_HDR + ATTACH_WIRE_MAX];
    struct mbuf out;
};

static int listen_fd = -1;
static int in_fd = -1, term_fd = -1;
static bool stdin_once, stdin_ended;
static struct mbuf in_q;
static struct client *clients[MIO_CLIENTS_MAX];

static void mbuf_add(struct mbuf *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            abort();
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

static void mbuf_consume(struct mbuf *b, size_t n)
{
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

/* Writes what b holds to fd without blocking: 0, or -1 if fd is broken. */
static int mbuf_flush(struct mbuf *b, int fd)
{
    while (b->len) {
        ssize_t n = write(fd, b->p, b->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0)
            return -1;
        mbuf_consume(b, (size_t)n);
    }
    return 0;
}

void mio_init(int lfd, int ifd, bool once)
{
    listen_fd = lfd;
    in_fd = ifd;
    stdin_once = once;
}

void mio_init_terminal(int master, bool with_stdin)
{
    term_fd = master;
    in_fd = with_stdin ? master : -1;
}

/* Nothing more goes to the container's stdin: a pipe closes once drained, a terminal gets ^D. */
static void stdin_end(void)
{
    if (stdin_ended || in_fd < 0)
        return;
    stdin_ended = true;
    if (in_fd == term_fd)
        mbuf_add(&in_q, "\x04", 1);
}

static void stdin_flush(void)
{
    if (in_fd < 0)
        return;
    if (mbuf_flush(&in_q, in_fd) < 0) {
        in_q.len = 0; /* the container closed its stdin: what it will never read goes */
        stdin_ended = true;
    }
    if (stdin_ended && !in_q.len && in_fd != term_fd) {
        close(in_fd);
        in_fd = -1;
    }
}

static void client_drop(int i)
{
    struct client *c = clients[i];
    if (c->had_stdin && stdin_once)
        stdin_end();
    close(c->fd);
    free(c->out.p);
    free(c);
    clients[i] = NULL;
    stdin_flush();
}

static void client_frame(struct client *c, char type, const uint8_t *p, uint32_t len)
{
    bool open = in_fd >= 0 && !stdin_ended;
    if (type == 'h' && len >= 1) {
        c->had_stdin = open && (p[0] & ATTACH_WIRE_STDIN);
    } else if (type == 'i' && open && c->had_stdin) {
        mbuf_add(&in_q, p, len);
    } else if (type == 'c' && c->had_stdin && stdin_once) {
        stdin_end();
    } else if (type == 'w' && len >= 4 && term_fd >= 0) {
        struct winsize ws = {.ws_row = (unsigned short)(p[0] << 8 | p[1]),
                             .ws_col = (unsigned short)(p[2] << 8 | p[3])};
        ioctl(term_fd, TIOCSWINSZ, &ws);
    }
}

/* Reads from client i: 0, or -1 when it went (or broke the framing) and must be dropped. */
static int client_read(int i)
{
    struct client *c = clients[i];
    ssize_t n = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0)
        return -1;
    c->inlen += (size_t)n;
    size_t used = 0;
    while (c->inlen - used >= ATTACH_WIRE_HDR) {
        uint32_t len = attach_wire_len(c->in + used);
        if (len > ATTACH_WIRE_MAX)
            return -1;
        if (c->inlen - used < ATTACH_WIRE_HDR + len)
            break;
        client_frame(c, (char)c->in[used], c->in + used + ATTACH_WIRE_HDR, len);
        used += ATTACH_WIRE_HDR + len;
    }
    memmove(c->in, c->in + used, c->inlen - used);
    c->inlen -= used;
    stdin_flush();
    return 0;
}

static void accept_clients(void)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        size_t i = 0;
        while (i < MIO_CLIENTS_MAX && clients[i])
            i++;
        if (i == MIO_CLIENTS_MAX) {
            close(fd); /* enough sessions on one container */
            continue;
        }
        clients[i] = calloc(1, sizeof *clients[i]);
        if (!clients[i])
            abort();
        clients[i]->fd = fd;
    }
}

int mio_pollfds(struct pollfd *p)
{
    int n = 0;
    if (listen_fd >= 0)
        p[n++] = (struct pollfd){listen_fd, POLLIN, 0};
    if (in_fd >= 0 && in_q.len)
        p[n++] = (struct pollfd){in_fd, POLLOUT, 0};
    for (size_t i = 0; i < MIO_CLIENTS_MAX; i++) {
        const struct client *c = clients[i];
        if (!c)
            continue;
        short ev = (short)((in_q.len < MIO_STDIN_MAX ? POLLIN : 0) | (c->out.len ? POLLOUT : 0));
        p[n++] = (struct pollfd){c->fd, ev, 0};
    }
    return n;
}

void mio_handle(const struct pollfd *p, int n)
{
    for (int j = 0; j < n; j++) {
        if (!p[j].revents)
            continue;
        if (p[j].fd == listen_fd) {
            accept_clients();
            continue;
        }
        if (p[j].fd == in_fd && (p[j].events & POLLOUT)) {
            stdin_flush();
            continue;
        }
        for (int i = 0; i < MIO_CLIENTS_MAX; i++) {
            struct client *c = clients[i];
            if (!c || c->fd != p[j].fd)
                continue;
            int bad = (p[j].revents & POLLOUT) && mbuf_flush(&c->out, c->fd) < 0;
            if (!bad && (p[j].revents & (POLLIN | POLLHUP | POLLERR)))
                bad = client_read(i) < 0;
            if (bad)
                client_drop(i);
            break;
        }
    }
}

void mio_output(bool is_err, const char *data, size_t len)
{
    for (int i = 0; i < MIO_CLIENTS_MAX; i++) {
        struct client *c = clients[i];
        if (!c)
            continue;
        for (size_t off = 0; off < len; off += ATTACH_WIRE_MAX) {
            size_t n = len - off < ATTACH_WIRE_MAX ? len - off : ATTACH_WIRE_MAX;
            uint8_t hdr[ATTACH_WIRE_HDR];
            attach_wire_hdr(hdr, is_err ? 'e' : 'o', (uint32_t)n);
            mbuf_add(&c->out, hdr, sizeof hdr);
            mbuf_add(&c->out, data + off, n);
        }
        if (mbuf_flush(&c->out, c->fd) < 0 || c->out.len > MIO_OUT_MAX)
            client_drop(i);
    }
}

void mio_end(void)
{
    if (listen_fd >= 0)
        close(listen_fd);
    listen_fd = -1;
    for (int i = 0; i < MIO_CLIENTS_MAX; i++) {
        struct client *c = clients[i];
        if (!c)
            continue;
        /* the rest of the output, waiting a little for a slow reader */
        struct timeval tv = {2, 0};
        fcntl(c->fd, F_SETFL, 0);
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        mbuf_flush(&c->out, c->fd);
        client_drop(i);
    }
    if (in_fd >= 0 && in_fd != term_fd)
        close(in_fd);
    in_fd = -1;
    free(in_q.p);
    in_q = (struct mbuf){0};
}
