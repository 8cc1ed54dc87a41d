/*
 * tunnel (kubelet side): keeps one NodeTunnel.Connect stream open to the
 * apiserver and serves the log, exec and attach sessions the apiserver
 * relays on it. Exec runs `runc exec` (with a pseudo-terminal for -t);
 * attach joins the container's monitor on its attach socket
 * (attach_wire.h); logs read the container's CRI-format log file
 * (following it with inotify for -f). The stream is reopened whenever it
 * ends, for ever: after 200 ms doubling to 10 s, jittered, the wait starting
 * over once a stream has lasted. A link that goes silent is noticed by
 * gcl's keepalive (its calls end UNAVAILABLE), so a network disruption
 * cannot leave the node without a tunnel.
 */
#ifndef CORACLE_KUBELET_TUNNEL_H
#define CORACLE_KUBELET_TUNNEL_H

#include <event2/event.h>
#include <stdint.h>

#include "gcl.h"

typedef struct ktun ktun_t;

/* Where a container is, as the kubelet knows it. Strings are malloc'd; ktun frees them. */
struct ktun_target {
    char *runc_root;    /* --root for runc */
    char *container_id; /* runc container id (of the current instance) */
    char *log_path;     /* CRI log of the requested instance (current or previous) */
    int running;        /* exec needs a running container */
    char *state_dir;    /* the current instance's state dir (its attach socket), or NULL */
    int stdin, tty;     /* the container's spec keeps a stdin open, runs on a terminal */
};

/*
 * Resolves ns/pod/container to a target. previous selects the previous
 * instance's log. Returns 0, or a grpc code with *err (malloc'd) in
 * Kubernetes' words (e.g. NOT_FOUND `previous terminated container "c" in
 * pod "p" not found`).
 */
typedef int (*ktun_resolve_fn)(void *arg, const char *ns, const char *pod, const char *container,
                               int previous, struct ktun_target *out, char **err);

struct ktun_opts {
    const char *node;
    const char *runc; /* runc binary, default "runc" */
    ktun_resolve_fn resolve;
    void *arg;
};

ktun_t *ktun_start(struct event_base *base, gcl_t *g, const struct ktun_opts *opts);
/* Ends every session (killing exec'd processes) and closes the stream. */
void ktun_free(ktun_t *t);

/* Exposed for tests: writes the content of CRI log lines in buf to out, returns bytes used
 * (complete lines only). */
size_t ktun_cri_decode(const char *buf, size_t len, char **out, size_t *out_len);
/* How lines are chosen and shown (kubectl logs --since, --since-time, --timestamps). */
struct ktun_cri_opts {
    int64_t since_ns; /* lines older than this (ns since the epoch) are left out; 0: none */
    int timestamps;   /* each line after its time (RFC3339Nano) and a space */
};
/* ktun_cri_decode with opts (NULL: all lines, no timestamps); out holds up to 2 x len bytes. */
size_t ktun_cri_decode_opts(const char *buf, size_t len, const struct ktun_cri_opts *opts,
                            char **out, size_t *out_len);

#endif
