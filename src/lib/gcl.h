/*
 * gcl: the gRPC client over HTTP/2 (nghttp2 + libevent) that the scheduler,
 * the kubelet and coraclectl use to talk to the apiserver. One gcl_t is one
 * connection at a time (h2c on TCP or a unix socket), multiplexing any
 * number of calls. Unary, server-streaming and bidi calls; a blocking
 * wrapper for the CLI. Nothing here reconnects by itself: a broken
 * connection fails every open call with UNAVAILABLE, and the next call made
 * opens a new connection. Retrying and resuming watches is the informer's
 * business.
 *
 * Failover: a gcl_t may be given several apiservers ("a:6443,b:6443").
 * It talks to one at a time; when a connection to it fails (refused,
 * lost, keepalive timeout), the next connection goes to the next address
 * of the list, round and round. Calls that had not gone out yet (the
 * connection never came up) move to the next address at once, each
 * trying every address once before it fails; calls that had gone out fail
 * with UNAVAILABLE as they do with one address, and the caller's retry
 * reaches the next one. The first connection after a failure is opened at
 * once, later ones back off (gcl_failover_delay_ms) until a server answers.
 * With one address nothing of this applies.
 *
 * Runs on the caller's event loop; not thread-safe.
 */
#ifndef CORACLE_GCL_H
#define CORACLE_GCL_H

#include <event2/event.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gcl gcl_t;
typedef struct gcl_call gcl_call_t;

struct ssl_ctx_st;
struct gcl_opts {
    int connect_timeout_ms;   /* default 3000 */
    const char *bearer_token; /* sent as "authorization: Bearer ..." if set */
    /* sent as user-agent if set ("coraclectl/0.1"): the server records
     * writes under its product name as their field manager */
    const char *user_agent;
    /*
     * TLS for TCP addresses (tls.h: tls_client_ctx; gcl takes its own
     * reference). NULL: cleartext. The server certificate must carry the
     * address's host (name or IP) unless tls_server_name says otherwise.
     */
    struct ssl_ctx_st *tls;
    const char *tls_server_name;
    /* Called with each "warning" trailer or header the server sends (the
     * apiserver's warnings, as Kubernetes' Warning headers), if set; msg is
     * valid during the call. */
    void (*on_warning)(const char *msg, void *arg);
    void *warning_arg;
};

/*
 * addr: "host:port", "https://host:port" (needs opts->tls), "http://host:port"
 * or "unix:/path", or a comma-separated list of them (failover, above;
 * the first is tried first). Does not connect yet. Returns NULL and logs
 * if an address cannot be parsed. opts may be NULL.
 */
gcl_t *gcl_new(struct event_base *base, const char *addr, const struct gcl_opts *opts);
/* Cancels every open call (their done callbacks run with CANCELLED) and frees. */
void gcl_free(gcl_t *g);

/*
 * The client side of the kubeconfig-like keys every program takes
 * (certificate-authority, client-certificate, client-key, token): fills
 * *o (tls and bearer_token; the strings are borrowed, the context is
 * owned by the caller: SSL_CTX_free after gcl_new). ca NULL = cleartext
 * (unless addr starts with https://, then the system CA store is used).
 * Returns 0, or -1 with *err (malloc'd).
 */
int gcl_opts_setup(struct gcl_opts *o, const char *addr, const char *ca, const char *cert,
                   const char *key, const char *token, char **err);
/*
 * New TLS credentials (a renewed client certificate) for the connections
 * to come: g takes its own reference to ctx and drops the old context.
 * The current connection takes no new calls from now on; the calls open
 * on it (watches, tunnels) go on there until they end, so nothing in
 * flight fails, and it closes with its last call. No-op for a cleartext g.
 */
void gcl_set_tls(gcl_t *g, struct ssl_ctx_st *ctx);
/* The address the next connection goes to (without its scheme); valid while g lives. */
const char *gcl_addr(const gcl_t *g);
/*
 * The failover backoff before the connection that follows `fails`
 * failed connections in a row: 0 for up to one, then 100 ms doubling to
 * 1 s, less up to a fifth of jitter.
 */
int gcl_failover_delay_ms(int fails);
/*
 * Keepalive while calls are open (watches): after interval_ms without a
 * byte from the server, send a PING; no answer within timeout_ms fails the
 * connection (its calls end UNAVAILABLE). Default 30000 / 20000; 0 turns it
 * off. Applies to connections opened afterwards.
 */
void gcl_set_keepalive(gcl_t *g, int interval_ms, int timeout_ms);

/* Each response message: msg valid only during the callback. */
typedef void (*gcl_msg_fn)(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg);
/*
 * The end of a call: code is a grpc_code; message is grpc-message decoded
 * (may be ""), valid only during the callback. For connection failures
 * code is UNAVAILABLE and message says what failed ("connect to
 * 127.0.0.1:6443: Connection refused"). The call is freed after return.
 */
typedef void (*gcl_done_fn)(gcl_call_t *call, int code, const char *message, void *arg);

/*
 * Starts a call to path ("/coracle.v1.Pods/Get") with one request message
 * (packed here). on_msg gets each response message (once for unary).
 * Returns the call (valid until on_done returns). Never NULL: failures are
 * reported through on_done, possibly from inside this call.
 * timeout_ms > 0 sends grpc-timeout and fails with DEADLINE_EXCEEDED locally.
 */
gcl_call_t *gcl_call(gcl_t *g, const char *path, const ProtobufCMessage *req, gcl_msg_fn on_msg,
                     gcl_done_fn on_done, void *arg, int timeout_ms);
/* Same with a pre-packed request body (no 5-byte header). */
gcl_call_t *gcl_call_raw(gcl_t *g, const char *path, const void *req, size_t len, gcl_msg_fn on_msg,
                         gcl_done_fn on_done, void *arg, int timeout_ms);

/*
 * Extra request headers (gRPC metadata) for one call, e.g. etcd's
 * "hasleader: true": names in lower case, neither pseudo-headers nor the
 * ones gcl sets itself. Copied when the call starts.
 */
struct gcl_md {
    const char *name, *value;
};
/* gcl_call_raw with metadata. */
gcl_call_t *gcl_call_raw_md(gcl_t *g, const char *path, const struct gcl_md *md, size_t n_md,
                            const void *req, size_t len, gcl_msg_fn on_msg, gcl_done_fn on_done,
                            void *arg, int timeout_ms);

/* Bidi: opens the call with no message; then gcl_call_send for each one, gcl_call_close_send at the
 * end. */
gcl_call_t *gcl_call_bidi(gcl_t *g, const char *path, gcl_msg_fn on_msg, gcl_done_fn on_done,
                          void *arg);
/* gcl_call_bidi with metadata. */
gcl_call_t *gcl_call_bidi_md(gcl_t *g, const char *path, const struct gcl_md *md, size_t n_md,
                             gcl_msg_fn on_msg, gcl_done_fn on_done, void *arg);
int gcl_call_send(gcl_call_t *c, const ProtobufCMessage *m);
/* Bidi: sends a pre-packed message (no 5-byte header; copied). 0, or -1 if the call ended. */
int gcl_call_send_raw(gcl_call_t *c, const void *msg, size_t len);
void gcl_call_close_send(gcl_call_t *c);

/* Cancels (RST_STREAM); on_done runs with CANCELLED before this returns. */
void gcl_call_cancel(gcl_call_t *c);

/*
 * Blocking unary call for the CLI: runs the loop until the call ends.
 * On GRPC_OK, *resp is the unpacked response (free with
 * protobuf_c_message_free_unpacked). Otherwise *errmsg (malloc'd) holds the
 * message. Returns the grpc code.
 */
int gcl_unary_sync(gcl_t *g, const char *path, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                   char **errmsg);
/* The same with a deadline (timeout_ms > 0: grpc-timeout and DEADLINE_EXCEEDED locally). */
int gcl_unary_sync_timeout(gcl_t *g, const char *path, const ProtobufCMessage *req,
                           const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                           char **errmsg, int timeout_ms);

#endif
