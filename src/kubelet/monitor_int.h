/*
 * monitor_int: what coracle-monitor's two files share. monitor_main.c
 * runs the container and writes its log; monitor_io.c holds the
 * container's stdin (a pipe, or the terminal's master) and serves the
 * attach sessions on <state>/attach (attach_wire.h). One process, one
 * container: monitor_io.c's state is a file-level singleton, as
 * monitor_main.c's is.
 */
#ifndef CORACLE_KUBELET_MONITOR_INT_H
#define CORACLE_KUBELET_MONITOR_INT_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Starts serving attach sessions on listen_fd (a listening unix socket,
 * owned from now on). in_fd: the container's stdin pipe to write to
 * (owned: closed when stdin ends), or -1 when it has none. stdin_once:
 * the stdin ends when the first session that brought stdin ends.
 */
void mio_init(int listen_fd, int in_fd, bool stdin_once);
/* The container runs on a terminal: master (the caller's) takes window sizes, and stdin. */
void mio_init_terminal(int master, bool with_stdin);
/* Appends the descriptors to poll to p (room for at least MIO_POLL_MAX); returns how many. */
#define MIO_POLL_MAX 20
int mio_pollfds(struct pollfd *p);
/* Handles what poll said about the n descriptors mio_pollfds gave. */
void mio_handle(const struct pollfd *p, int n);
/* The container printed data (is_err: on stderr): a copy to every session. */
void mio_output(bool is_err, const char *data, size_t len);
/* The container ended and its output is in: sessions get what is queued and are closed. */
void mio_end(void);

#endif
