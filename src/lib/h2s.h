/*
 * h2s: the gRPC server over HTTP/2 (nghttp2 + libevent). It accepts on TCP
 * and unix-socket listeners, speaks h2c with prior knowledge, hands every
 * request that is not gRPC (HTTP/1.1, or HTTP/2 without a gRPC
 * content-type: /healthz, /metrics, the Kubernetes REST API) on the same
 * port to one request handler (h2s_req_*), and turns each HTTP/2 stream whose :path is a registered
 * gRPC method into a call handed to a handler. It knows nothing of the
 * API's kinds: the apiserver registers its methods.
 *
 * Everything runs on the caller's event loop; no function here is
 * thread-safe. Limits (message size, streams per connection, header size,
 * idle timeouts) are enforced here so no handler ever sees oversize input.
 *
 * TLS (h2s_listen_tls): TLS 1.2/1.3 through libevent's bufferevent_openssl,
 * ALPN h2 (or http/1.1, which clients offer for upgrades: kubectl's exec);
 * the client certificate, if one was presented and verified, is
 * reachable from each call (h2s_call_ssl). Hostile clients: a connection
 * must finish its TLS handshake and HTTP/2 preface, and each stream its
 * request headers, within handshake_timeout_s (slowloris); control-frame
 * floods (PING, SETTINGS, PRIORITY, RST_STREAM: rapid reset, empty DATA)
 * end the connection with GOAWAY ENHANCE_YOUR_CALM; unary calls beyond the
 * in-flight limits wait in a bounded FIFO queue (10 x the limit, 10 s at
 * most) and beyond it get RESOURCE_EXHAUSTED "too many requests, please
 * try again later".
 */
#ifndef CORACLE_H2S_H
#define CORACLE_H2S_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef struct h2s h2s_t;
typedef struct h2s_call h2s_call_t;

struct h2s_config {
    uint32_t max_msg;          /* request message cap, bytes (default GRPC_MAX_MSG_DEFAULT) */
    uint32_t max_streams;      /* SETTINGS_MAX_CONCURRENT_STREAMS (default 1000) */
    uint32_t max_header_bytes; /* header block cap (default 16 KiB) */
    int idle_timeout_s;      /* close connections idle this long with no open call (default 300) */
    size_t max_conns;        /* refuse connections beyond this (default 10000) */
    int handshake_timeout_s; /* TLS handshake + preface, and each stream's headers (default 10) */
    uint32_t max_streaming;  /* long-running calls (watches, logs) per connection (default 1000) */
};

/*
 * A handler gets the call and, for unary and server-streaming methods, the
 * one request message (valid only during the call to the handler). It must
 * eventually end the call with h2s_call_reply / h2s_call_finish (possibly
 * later, from another callback, e.g. when a commit is durable), unless the
 * call is closed first (see h2s_call_on_close).
 * For client-streaming/bidi methods (H2S_BIDI) the handler is called with
 * msg == NULL when the stream opens and on_msg callbacks deliver messages.
 */
typedef void (*h2s_handler_fn)(h2s_call_t *call, const uint8_t *msg, size_t len, void *arg);

enum h2s_method_kind { H2S_UNARY, H2S_SERVER_STREAM, H2S_BIDI };

h2s_t *h2s_new(struct event_base *base, const struct h2s_config *cfg);
/* Stops listening, ends every open call with UNAVAILABLE "server shutting down", frees. */
void h2s_free(h2s_t *s);

/* addr is "host:port" (IPv4/IPv6, "[::1]:port") or "unix:/path". Returns 0 or -errno; logs why. */
int h2s_listen(h2s_t *s, const char *addr);
/*
 * The same with TLS when tls is not NULL (h2s takes its own reference;
 * see tls.h for making one). Unix sockets never use TLS: tls must be NULL.
 */
struct ssl_ctx_st;
int h2s_listen_tls(h2s_t *s, const char *addr, struct ssl_ctx_st *tls);
/* 1 if addr ("host:port", "unix:/path") is a unix socket or a loopback address, else 0. */
int h2s_addr_is_local(const char *addr);
/*
 * In-flight limits for unary calls (server-streaming and bidi calls are
 * long-running and not counted): is_mutating(path) says which limit a path
 * falls under. 0 = no limit. A call over its limit waits for a slot in a
 * FIFO queue of 10 x the limit, at most 10 s; a full queue or a longer
 * wait ends it with RESOURCE_EXHAUSTED "too many requests, please try
 * again later".
 */
void h2s_set_inflight_limits(h2s_t *s, size_t max_read, size_t max_mutating,
                             int (*is_mutating)(const char *path));
/* The TCP port of the first TCP listener (useful with port 0), or 0. */
int h2s_port(h2s_t *s);
/* Stops accepting new connections (graceful shutdown step 1: sends GOAWAY). */
void h2s_stop_accepting(h2s_t *s);

/*
 * Keepalive for connections with open calls (watches): after interval_s
 * without a byte from the client, send a PING; no answer within timeout_s
 * closes the connection (on_close runs for its calls). Default 60 s / 20 s;
 * interval_s 0 turns it off.
 */
void h2s_set_keepalive(h2s_t *s, int interval_s, int timeout_s);

/* path is "/coracle.v1.Pods/Create". arg is passed to fn. */
void h2s_route(h2s_t *s, const char *path, enum h2s_method_kind kind, h2s_handler_fn fn, void *arg);

/* ---- a call ---- */

/* Unary: sends the message and OK trailers; the call is finished and freed after return. */
void h2s_call_reply(h2s_call_t *c, const void *msg, size_t len);
/* Sends a protobuf-c message (packs it) then OK trailers. */
struct ProtobufCMessage;
void h2s_call_reply_pb(h2s_call_t *c, const struct ProtobufCMessage *m);
/*
 * One more trailer (gRPC metadata) for when the call ends: name lower-case;
 * value's bytes outside printable ASCII become '?'. Both copied. At most
 * H2S_MAX_TRAILERS of at most H2S_MAX_TRAILER_BYTES together are kept (a
 * value cut to what is left, the rest dropped): clients refuse metadata
 * over 8 KiB by default (grpc-core), and the call with it.
 */
#define H2S_MAX_TRAILERS 16
#define H2S_MAX_TRAILER_BYTES 4096
void h2s_call_add_trailer(h2s_call_t *c, const char *name, const char *value);
/* Ends the call with a status; message may be NULL. The call is freed after return. */
void h2s_call_finish(h2s_call_t *c, int code, const char *message);
void h2s_call_finishf(h2s_call_t *c, int code, const char *fmt, ...) PRINTF(3, 4);

/*
 * Streaming: queues one already framed message (5-byte header included)
 * held by an rbuf; takes a reference, so one encoding serves many calls.
 * Returns 0, or -1 if the call is closed.
 */
int h2s_call_send_framed(h2s_call_t *c, rbuf_t *framed);
/* Queues a message (frames and copies it). */
int h2s_call_send(h2s_call_t *c, const void *msg, size_t len);
/* Bytes queued on this call and not yet written to the socket. */
size_t h2s_call_queued(const h2s_call_t *c);
/* How long its unsent bytes have not moved (0: none queued); now from mono_ns(). */
int64_t h2s_call_stuck_ns(const h2s_call_t *c, int64_t now);
/*
 * Ends a streaming call at once (a watcher too slow to keep): drops every
 * queued message not yet started on the wire (a partly sent one is kept so
 * the stream stays well framed), frees those bytes now, and ends the call
 * with code/message, which the client reads after what was already sent.
 * The call is freed after return, as with h2s_call_finish.
 */
void h2s_call_abort(h2s_call_t *c, int code, const char *message);

/* Bidi: called for each message from the client; msg == NULL at end of client stream. */
typedef void (*h2s_msg_fn)(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg);
void h2s_call_on_msg(h2s_call_t *c, h2s_msg_fn fn, void *arg);

/*
 * Called once if the client goes away (RST_STREAM, connection closed)
 * before the handler finished the call. After it returns the call is
 * freed: the handler must forget it and never touch it again.
 */
void h2s_call_on_close(h2s_call_t *c, void (*fn)(h2s_call_t *c, void *arg), void *arg);

/* Request metadata: a header value (lowercase name) or NULL; the peer ("1.2.3.4:5678" or "unix").
 */
const char *h2s_call_header(const h2s_call_t *c, const char *name);
const char *h2s_call_peer(const h2s_call_t *c);
/* When the call's stream opened (mono_ns()). */
int64_t h2s_call_born(const h2s_call_t *c);
/* The call's TLS session (borrowed; NULL on cleartext connections). */
struct ssl_st;
struct ssl_st *h2s_call_ssl(const h2s_call_t *c);
/* 1 if the call came over a unix socket or from a loopback address. */
int h2s_call_is_local(const h2s_call_t *c);
/*
 * Counts the call against an owner (e.g. the authenticated user's identity)
 * until the handler finishes it or the stream closes: 0, or -1 when key
 * already holds max calls (max 0: no cap, only counting). Once per call.
 */
int h2s_call_claim(h2s_call_t *c, const void *key, unsigned max);
/* Handler-owned per-call pointer. */
void h2s_call_set_data(h2s_call_t *c, void *data);
void *h2s_call_data(const h2s_call_t *c);

/* ---- plain HTTP requests (not gRPC) ---- */

/*
 * A request that is not a gRPC call: an HTTP/2 stream whose content-type
 * does not start with "application/grpc" (or a GET/HEAD), or any HTTP/1.1
 * request. One handler serves them all; it answers with h2s_req_respond
 * (a whole answer) or h2s_req_start / h2s_req_send / h2s_req_end (a
 * streamed one), now or later from another callback, unless the client
 * goes first (h2s_req_on_close). Without a handler every request is 404.
 *
 * In-flight limits (h2s_set_inflight_limits) apply as to unary calls:
 * GET and HEAD under the read limit, other methods under the mutating
 * one; beyond it the answer is 429 with Retry-After: 1 and a Kubernetes
 * Status body. A streamed answer is long-running: it stops counting at
 * h2s_req_start; a request h2s_set_req_long_running's test names
 * long-running (a watch, logs, exec) never counts, nor is refused.
 */
typedef struct h2s_req h2s_req_t;
typedef void (*h2s_req_fn)(h2s_req_t *r, void *arg);
/*
 * Every non-gRPC request (both protocols) once its body is complete
 * (bodies capped by max_msg: 413 beyond).
 */
void h2s_set_req_handler(h2s_t *s, h2s_req_fn fn, void *arg);
/* Which requests are long-running, out of the in-flight limits (fn returns nonzero; NULL: none). */
void h2s_set_req_long_running(h2s_t *s, int (*fn)(const h2s_req_t *r));
/* The request line. Strings are the request's: valid until it is finished or closed. */
const char *h2s_req_method(const h2s_req_t *r); /* "GET", "POST", ... */
const char *h2s_req_path(const h2s_req_t *r);   /* raw (not percent-decoded), no query */
const char *h2s_req_query(const h2s_req_t *r);  /* raw query after '?', "" if none */
/* A request header's value (name in lower case), or NULL. */
const char *h2s_req_header(const h2s_req_t *r, const char *lowercase_name);
/* Its nth value (0 first) when the header comes several times, or NULL. */
const char *h2s_req_header_nth(const h2s_req_t *r, const char *lowercase_name, size_t nth);
/* The request body (len 0 if none); valid as the strings are. */
const uint8_t *h2s_req_body(const h2s_req_t *r, size_t *len);
struct ssl_st;
struct ssl_st *h2s_req_ssl(const h2s_req_t *r); /* borrowed; NULL on cleartext */
int h2s_req_is_local(const h2s_req_t *r);       /* unix socket or loopback peer */
const char *h2s_req_peer(const h2s_req_t *r);   /* "1.2.3.4:5678" or "unix" */
int64_t h2s_req_born(const h2s_req_t *r);       /* when it arrived (mono_ns()) */
int h2s_req_http_version(const h2s_req_t *r);   /* 1 or 2 */
/* A response header to add (before respond/start); both strings copied. */
void h2s_req_add_header(h2s_req_t *r, const char *name, const char *value);
/* A whole answer (body copied); the request is finished and freed after return. */
void h2s_req_respond(h2s_req_t *r, int status, const char *content_type, const void *body,
                     size_t len);
/*
 * A streamed answer (watch, logs): headers now, then chunks (HTTP/1.1:
 * chunked encoding; HTTP/2: DATA frames under flow control), then
 * h2s_req_end. send returns 0, or -1 if the client is gone.
 */
int h2s_req_start(h2s_req_t *r, int status, const char *content_type);
int h2s_req_send(h2s_req_t *r, const void *data, size_t len); /* copies */
int h2s_req_send_rbuf(h2s_req_t *r, rbuf_t *chunk);           /* takes a reference */
/* Bytes of a streamed answer not yet written to the socket. */
size_t h2s_req_queued(const h2s_req_t *r);
/* How long those bytes have not moved (0: none queued); now from mono_ns(). */
int64_t h2s_req_stuck_ns(const h2s_req_t *r, int64_t now);
/* Ends a streamed answer; the request is finished and freed after return. */
void h2s_req_end(h2s_req_t *r);
/*
 * Ends a streamed answer at once (a client too slow to keep): unsent
 * chunks are dropped and the stream is reset (HTTP/2) or the connection
 * closed (HTTP/1.1). The request is freed after return.
 */
void h2s_req_abort(h2s_req_t *r);
/*
 * Called once if the client goes away before the handler finished; after
 * it returns the request is freed: the handler must forget it.
 */
void h2s_req_on_close(h2s_req_t *r, void (*fn)(h2s_req_t *r, void *arg), void *arg);
/* As h2s_call_claim, for a long-running request (a watch): until it is freed. */
int h2s_req_claim(h2s_req_t *r, const void *key, unsigned max);
/* Handler-owned per-request pointer. */
void h2s_req_set_data(h2s_req_t *r, void *data);
void *h2s_req_data(const h2s_req_t *r);

/*
 * ---- upgraded connections (HTTP/1.1 101 Switching Protocols) ----
 *
 * An HTTP/1.1 request that asks for Upgrade (WebSocket, SPDY/3.1: exec,
 * attach) can be turned into a raw byte stream: h2s_req_upgrade answers
 * 101 with "Connection: Upgrade", "Upgrade: <protocol>" and the headers
 * added with h2s_req_add_header, and from then on the connection's bytes
 * are the handler's. Reading is by callback (on_read: h2s_raw_read what
 * is there), writing is buffered (h2s_raw_write); the stream keeps the
 * request's h2s_req_claim and does not count against the in-flight
 * limits. An upgrade request answered with anything but 101 closes its
 * connection after the answer (its next bytes may be the other protocol).
 */
typedef struct h2s_raw h2s_raw_t;
struct h2s_raw_ops {
    /* Input is waiting (h2s_raw_read / h2s_raw_pending). */
    void (*on_read)(h2s_raw_t *w, void *arg);
    /* The output fell below 64 KiB (optional: a writer held back may go on). */
    void (*on_drain)(h2s_raw_t *w, void *arg);
    /*
     * The peer went away, an error, or no input within the timeout (why
     * says which). Called once, never after h2s_raw_close; w is freed
     * after it returns.
     */
    void (*on_close)(h2s_raw_t *w, const char *why, void *arg);
};
/*
 * Answers r (an HTTP/1.1 request; NULL on HTTP/2, r untouched) with 101
 * and hands its connection to ops/arg. r's strings stay valid until the
 * stream is freed; r itself must not be answered again. Input already
 * read after the request is delivered by on_read from the next loop turn.
 */
h2s_raw_t *h2s_req_upgrade(h2s_req_t *r, const char *protocol, const struct h2s_raw_ops *ops,
                           void *arg);
/* Takes up to max input bytes into buf; returns how many. */
size_t h2s_raw_read(h2s_raw_t *w, void *buf, size_t max);
/* Input bytes waiting. */
size_t h2s_raw_pending(const h2s_raw_t *w);
/* Queues bytes (copied); 0, or -1 once the stream is closing or gone. */
int h2s_raw_write(h2s_raw_t *w, const void *data, size_t len);
/* Bytes written and not yet in the socket. */
size_t h2s_raw_queued(const h2s_raw_t *w);
/* Closes the stream if no input comes for seconds (0: never); resets at each byte. */
void h2s_raw_set_timeout(h2s_raw_t *w, int seconds);
/* The peer ("1.2.3.4:5678" or "unix"). */
const char *h2s_raw_peer(const h2s_raw_t *w);
/*
 * The handler is done: no callback runs after this. What is queued is
 * written, then the connection is closed gracefully (our side shut, the
 * peer's remaining input read and dropped for a few seconds, so that
 * the peer reads all we sent instead of a reset; a peer that reads
 * nothing for 30 s, or the stream's timeout if shorter, is cut). w is
 * freed by h2s.
 */
void h2s_raw_close(h2s_raw_t *w);

/* Counters for /metrics. */
struct h2s_stats {
    uint64_t conns_open, conns_total, calls_open, calls_total, bytes_in, bytes_out;
    uint64_t conns_refused;     /* over max_conns */
    uint64_t tls_failures;      /* failed TLS handshakes */
    uint64_t slow_closed;       /* handshake, preface or headers too slow */
    uint64_t flood_closed;      /* control-frame floods */
    uint64_t inflight_rejected; /* RESOURCE_EXHAUSTED for the in-flight limits */
    uint64_t bytes_queued;      /* response bytes queued in calls, not yet in socket buffers */
    uint64_t queue_mem;         /* memory of the calls' queues themselves (a slot per message) */
    /* what holds the in-flight limits' slots now */
    uint64_t inflight_read, inflight_mutating;
};
void h2s_get_stats(const h2s_t *s, struct h2s_stats *out);
/* Framed bytes in the connections' output buffers, waiting for room in the sockets
 * (O(connections)). */
uint64_t h2s_out_buffered(const h2s_t *s);

#endif
