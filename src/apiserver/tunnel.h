/*
 * tunnel: logs and exec through the kubelet's own stream. Each kubelet
 * keeps one NodeTunnel.Connect call open to the apiserver (so a node
 * behind NAT needs no inbound port). A client's Pods/Log or Pods/Exec call
 * (or a REST pods/log, pods/exec, pods/attach request: tun_log_open,
 * tun_exec_open; an attach is an ExecRequest with attach set) becomes a
 * session on the tunnel of the pod's node: the apiserver relays frames
 * both ways and never interprets the bytes.
 */
#ifndef CORACLE_APISERVER_TUNNEL_H
#define CORACLE_APISERVER_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "coracle.pb-c.h"
#include "h2s.h"
#include "store.h"

typedef struct tun_hub tun_hub_t;

/*
 * Registers /coracle.v1.NodeTunnel/Connect, /coracle.v1.Pods/Log and
 * /coracle.v1.Pods/Exec on s. Pods are read from st, callers checked by
 * au (both borrowed). Free with tun_hub_free (before h2s_free).
 */
tun_hub_t *tun_hub_new(h2s_t *s, store_t *st, auth_t *au);
void tun_hub_free(tun_hub_t *h);

/*
 * ---- sessions, for other clients than the gRPC ones (the REST API) ----
 *
 * A session's client: how output reaches it and how it learns the end.
 * Callbacks run on the loop, from the kubelet's frames.
 */
struct tun_client_ops {
    /*
     * Output of the session: fd 1 (stdout; a log's lines) or 2 (stderr).
     * len 0 on fd 1: the kubelet accepted the session (nothing to show
     * yet). Returns 0, or 1 to stop: the session is cancelled (the
     * kubelet told) and forgotten without an end call.
     */
    int (*output)(void *arg, int fd, const uint8_t *data, size_t len);
    /*
     * The session is over and forgotten: code 0 (GRPC_OK) with exit_code
     * the process's exit status (exec) or -1 (the log ended), or a gRPC
     * code and msg (Kubernetes' words: the container is waiting to start,
     * the node's tunnel closed...).
     */
    void (*end)(void *arg, int code, const char *msg, int exit_code);
    /* Bytes the client holds unsent; beyond 8 MiB the session ends RESOURCE_EXHAUSTED. */
    size_t (*queued)(void *arg);
};
typedef struct tun_session tun_session_t;

/*
 * Opens a log session for req (namespace "" is "default"; no container:
 * the pod's only one) after the caller authorized it. Returns 0 with
 * *out, owned by the hub until ops->end runs or tun_session_cancel; or a
 * gRPC code with *err (malloc'd, Kubernetes' words: NOT_FOUND `pods "x"
 * not found`, INVALID_ARGUMENT for a container missing or not in the
 * pod, FAILED_PRECONDITION for a pod on no node yet, UNAVAILABLE for a
 * node whose kubelet is not connected). req is only read during the call.
 */
int tun_log_open(tun_hub_t *h, const Coracle__V1__PodLogRequest *req,
                 const struct tun_client_ops *ops, void *arg, tun_session_t **out, char **err);
/* What tun_log_open would answer, without opening a session (0: it would open one). */
int tun_check(tun_hub_t *h, const char *ns, const char *name, const char *container, char **err);
/* The same for an exec: the window size and first stdin bytes may come with it (or NULL). */
int tun_exec_open(tun_hub_t *h, const Coracle__V1__ExecRequest *req,
                  const Coracle__V1__TerminalSize *size, const ProtobufCBinaryData *stdin_data,
                  const struct tun_client_ops *ops, void *arg, tun_session_t **out, char **err);
/* Input for an exec: stdin bytes (data NULL: none), a new window size (or NULL), end of stdin. */
void tun_session_input(tun_session_t *s, const void *data, size_t len,
                       const Coracle__V1__TerminalSize *resize, bool stdin_closed);
/* The client is gone: the kubelet stops the session; no callback runs after this. */
void tun_session_cancel(tun_session_t *s);

/* Number of kubelets connected (for /metrics). */
size_t tun_hub_nodes(const tun_hub_t *h);

#endif
