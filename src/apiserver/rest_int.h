/*
 * rest_int: what the files of the Kubernetes REST API share (rest.c the
 * dispatcher and read verbs, rest_disc.c discovery, rest_query.c the
 * query string, rest_write.c the write verbs, rest_connect.c log, exec and
 * attach, rest_openapi.c the OpenAPI documents). Loop thread only.
 */
#ifndef CORACLE_REST_INT_H
#define CORACLE_REST_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "gcpolicy.h"
#include "columns.h"
#include "h2s.h"
#include "kinds.h"
#include "kobj.h"
#include "rest.h"
#include "tunnel.h"

#define REST_JSON "application/json"
#define REST_YAML "application/yaml"
#define REST_PB "application/vnd.kubernetes.protobuf"
#define REST_TABLE "application/json;as=Table;v=v1;g=meta.k8s.io"

/* What a request was, for the counters (/metrics). */
enum rverb {
    RV_OTHER,
    RV_DISCOVERY,
    RV_GET,
    RV_LIST,
    RV_WATCH,
    RV_CREATE,
    RV_UPDATE,
    RV_PATCH,
    RV_DELETE,
    RV_DELETECOLLECTION,
    RV_CONNECT, /* log, exec, attach */
    RV_OPENAPI,
    RV_N
};
#define RCODES 16 /* distinct HTTP statuses counted per verb */

struct rest_openapi; /* rest_openapi.c: the documents, made at the first request */

struct rest {
    struct rest_config cfg;
    struct rest_openapi *openapi;
    struct rest_streams streams; /* log, exec, attach (rest_connect.c) */
    struct {
        int status;
        uint64_t n;
    } counts[RV_N][RCODES];
    const struct kind *last_kind; /* the kind of the last resource request (parse_resource) */
};

/* A parsed resource request. */
struct rreq {
    const struct kind *k;
    const char *ns;            /* NULL: cluster-scoped kind, or all namespaces */
    const char *name;          /* NULL: the collection */
    const char *sub;           /* subresource, or NULL */
    bool table;                /* the client asks for a meta.k8s.io Table (Accept) */
    bool pb;                   /* or for Kubernetes' protobuf (Accept; kpb.h) */
    enum cols_include include; /* and what its rows carry (?includeObject=) */
};

/* The query string: every parameter, percent-decoded (malloc'd). */
struct rquery {
    size_t n;
    char **keys, **vals;
};

/* ---- rest_query.c ---- */
void rest_query_parse(const char *q, struct rquery *out);
void rest_query_free(struct rquery *q);
/* The last value of parameter name, or NULL if absent ("" if it has no '='). */
const char *rest_query_get(const struct rquery *q, const char *name);
/* "true", "1" or "" (a bare parameter). */
bool rest_query_true(const char *v);
/* A decimal int64 parameter: 0 (absent: *out untouched), -1 malformed. */
int rest_query_int(const char *v, int64_t *out);
/*
 * The Accept header's clauses, one a call: *cur starts at the header's
 * value (NULL: none) and moves on. Copies the next clause's media type
 * into type (tn bytes) and its parameters, ';'-separated, into params
 * (pn bytes), blanks removed, truncated to fit. Clauses with q=0 (refused)
 * are passed over. false when none is left.
 */
bool rest_accept_next(const char **cur, char *type, size_t tn, char *params, size_t pn);
/* What a resource read answers in, by the Accept header (Kubernetes' negotiation). */
enum rest_fmt {
    RF_JSON,
    RF_TABLE, /* application/json;as=Table;g=meta.k8s.io;v=v1 (or v1beta1) */
    RF_PB,    /* application/vnd.kubernetes.protobuf */
};
/*
 * The first acceptable of accept's clauses (NULL: no header): the highest
 * q, a specific type before a wildcard, then the client's order; JSON when
 * nothing in it is served. *pb_only: protobuf is acceptable and JSON is
 * not (errors then go in protobuf too).
 */
enum rest_fmt rest_accept(const char *accept, bool *pb_only);

/* ---- rest.c: answers ---- */

/* Remembers what r is (verb, kind, Table), for answers made later and the counters. */
void rest_set_what(h2s_req_t *r, enum rverb v, const struct rreq *rq);
/* The parts of rq rest_set_what kept (kind, table, pb, include). */
struct rreq rest_what_rreq(const h2s_req_t *r);
/* Counts an answer to r (by the verb rest_set_what gave it). */
void rest_count(rest_t *rs, h2s_req_t *r, int status);
void rest_answer_json(rest_t *rs, h2s_req_t *r, int status, const char *body, size_t len);
void rest_answer_table(rest_t *rs, h2s_req_t *r, const char *body, size_t len);
void rest_answer_pb(rest_t *rs, h2s_req_t *r, const char *body, size_t len);
/*
 * A Status failure; details name the resource of k and name when given.
 * In protobuf if the client accepts nothing else (rest_accept's pb_only),
 * in JSON otherwise.
 */
void rest_answer_status(rest_t *rs, h2s_req_t *r, int status, const char *reason, const char *msg,
                        const struct kind *k, const char *name);
/* A failure from the shared machinery, which speaks gRPC codes. */
void rest_answer_grpc(rest_t *rs, h2s_req_t *r, int code, const char *msg, const struct kind *k,
                      const char *name);
void rest_not_found_path(rest_t *rs, h2s_req_t *r);

/* ---- rest_scale.c: the scale subresource (kind_has_scale kinds) ---- */

/* The autoscaling/v1 Scale of obj (an object of k). Free with obj_free. */
Coracle__V1__Scale *rest_scale_of(const struct kind *k, const ProtobufCMessage *obj);
/* The Scale of obj (an object of k) as compact JSON, malloc'd. */
char *rest_scale_json(const struct kind *k, const ProtobufCMessage *obj);
/* GET NAME/scale. */
void rest_scale_get(rest_t *rs, h2s_req_t *r, const struct rreq *rq);
/* Sets obj's spec.replicas; -1 if obj has no spec. */
int rest_scale_set(const struct kind *k, ProtobufCMessage *obj, int32_t replicas);

/* ---- rest_token.c: serviceaccounts/NAME/token, the OpenID discovery documents ---- */

/* POST serviceaccounts/NAME/token (rq: that path) by u. */
void rest_token(rest_t *rs, h2s_req_t *r, const struct auth_user *u, const struct rreq *rq);
/* Answers the discovery document at r's path and returns true, or false if none is served. */
bool rest_oidc(rest_t *rs, h2s_req_t *r);

/* ---- rest_disc.c: discovery ---- */

/* "v1" or "coordination.k8s.io/v1": the group ("" for core) and version of a kind. */
void rest_kind_gv(const struct kind *k, const char **group, size_t *glen, const char **version);
void rest_discovery_version(rest_t *rs, h2s_req_t *r);
/*
 * /api, /apis, /apis/GROUP, /api/v1, /apis/GROUP/VERSION (seg: the path's
 * n segments): answers and returns true, or false if the path is not one
 * of those (a resource path).
 */
bool rest_discovery(rest_t *rs, h2s_req_t *r, char **seg, size_t n);
/* Whether accept asks for aggregated discovery v2 before the legacy JSON. */
bool rest_accept_aggregated(const char *accept);

/* ---- rest_body.c: write request bodies (pure; fuzzed) ---- */

/* A refusal: HTTP status, Kubernetes' reason (static), message (malloc'd). */
struct rest_err {
    int status;
    const char *reason;
    char *msg;
};

/* A Content-Type's media type, parameters dropped, lower case; "" for NULL. malloc'd. */
char *rest_media_type(const char *content_type);
/*
 * A write's body (media from rest_media_type: "" is JSON) as a message of
 * desc, whose kind and apiVersion the body must name if it names any:
 * JSON or YAML (fields: fieldValidation; ko's OUT fields get the problems
 * for Warn and the type the body names: kobj_opts_free them), or
 * Kubernetes' protobuf envelope. Returns the message (obj_free), or NULL
 * with *e (400, or 415 for another media type).
 */
ProtobufCMessage *rest_body_decode(const char *media, const void *body, size_t len,
                                   const ProtobufCMessageDescriptor *desc, const char *kind,
                                   const char *api_version, enum kobj_fields fields,
                                   struct kobj_opts *ko, struct rest_err *e);

/* DeleteOptions, from a JSON or protobuf body or (without a body) the query. */
struct rest_delete_opts {
    bool has_grace;
    int64_t grace;
    char *pre_uid, *pre_rv;  /* preconditions, NULL if none */
    bool dry_run;            /* the body's dryRun: ["All"] (the query's is the write's option) */
    char *policy;            /* propagationPolicy, NULL if unset */
    bool has_orphan, orphan; /* orphanDependents (deprecated), if sent */
    enum gcpolicy gc;        /* what policy and orphanDependents ask for */
};
/* 0, or -1 with *e: 400, 415, or 422 (Kubernetes' Invalid text of DeleteOptions). */
int rest_delete_opts_parse(const char *media, const void *body, size_t len, const struct rquery *q,
                           struct rest_delete_opts *o, struct rest_err *e);
void rest_delete_opts_free(struct rest_delete_opts *o);

/* ---- rest_write.c: create, update, patch, delete, deletecollection ---- */

/* The query options every write takes (Kubernetes' Create/Update/Patch/DeleteOptions). */
struct rwrite_opts {
    bool dry_run;            /* dryRun=All: the answer as if, nothing written */
    char *field_manager;     /* fieldManager (validated; for server-side apply's managedFields) */
    enum kobj_fields fields; /* fieldValidation: Strict, Warn (default) or Ignore */
};

/* Whether sub is a subresource k takes writes on ("status", "binding"). */
bool rest_write_sub(const struct kind *k, const char *sub);

/* Any method but GET and HEAD on a resource path (rq), after authentication. */
void rest_write(rest_t *rs, h2s_req_t *r, const struct auth_user *u, struct rreq *rq,
                const struct rquery *q);

/* ---- rest_connect.c: pods/log, pods/exec, pods/attach ---- */

/* Whether sub is a subresource rest_connect serves. */
bool rest_connect_sub(const char *sub);
void rest_connect(rest_t *rs, h2s_req_t *r, const struct auth_user *u, struct rreq *rq,
                  const struct rquery *q);

/*
 * ---- exec and attach streams: rest_connect.c (the session), rest_ws.c
 * (WebSocket, v5/v4.channel.k8s.io), rest_spdy.c (SPDY/3.1, v4) ----
 *
 * A transport carries the channels of Kubernetes' remote command
 * protocol (stdin 0, stdout 1, stderr 2, the error/status stream 3,
 * resize 4) over an upgraded connection; the session (struct rxs) relays
 * them to the kubelet's tunnel.
 */
enum { RCH_STDIN, RCH_STDOUT, RCH_STDERR, RCH_ERROR, RCH_RESIZE, RCH_N };
struct rxs;
/* What a transport does for the session (t is its own state). */
struct rx_transport {
    /* Output on channel ch (RCH_STDOUT, RCH_STDERR). */
    void (*out)(void *t, int ch, const uint8_t *data, size_t len);
    /*
     * The end: status (a metav1.Status, JSON) on the error channel, the
     * streams closed, the connection closed gracefully; t is freed and
     * the transport calls the session no more.
     */
    void (*finish)(void *t, const char *status);
    /* Bytes written and not yet sent. */
    size_t (*queued)(void *t);
};
/* Which streams the client asked for (?stdin=, stdout=, stderr=, tty=). */
struct rx_want {
    bool stdin, stdout, stderr, tty;
};
/* The transport calls these: input from the client. */
void rxs_stdin(struct rxs *x, const uint8_t *data, size_t len);
void rxs_stdin_close(struct rxs *x);
/* A resize message: {"Width":W,"Height":H} (garbage is ignored). */
void rxs_resize(struct rxs *x, const uint8_t *json, size_t len);
/*
 * The streams are open (SPDY: once the client created them): start the
 * process. No call here ends the session at once: a transport's callbacks
 * (out, finish) come from the tunnel's events or a later loop turn.
 */
void rxs_ready(struct rxs *x);
/* The connection is gone (why: for the log): the session is cancelled and x freed. */
void rxs_gone(struct rxs *x, const char *why);

/* Whether a comma-separated header (every line of it) lists token (rest_connect.c). */
bool rest_header_token(h2s_req_t *r, const char *name, const char *token);

/*
 * rest_ws.c: answers r 101 and runs the WebSocket side (proto: the
 * subprotocol chosen); returns its state for the rx_transport calls, or
 * NULL after answering an error (x untouched).
 */
void *rest_ws_start(rest_t *rs, h2s_req_t *r, const char *proto, struct rxs *x);
/* A WebSocket subprotocol of the client's list (Sec-WebSocket-Protocol) we speak, or NULL. */
const char *rest_ws_protocol(h2s_req_t *r);
extern const struct rx_transport rest_ws_transport;
/* rest_spdy.c: the same for SPDY/3.1 (want: which streams the client will open). */
void *rest_spdy_start(rest_t *rs, h2s_req_t *r, const char *proto, const struct rx_want *want,
                      struct rxs *x);
const char *rest_spdy_protocol(h2s_req_t *r);
extern const struct rx_transport rest_spdy_transport;

/* ---- rest_openapi.c ---- */

/* /openapi/v2, /openapi/v3[/...] (seg: the path's n segments), after authentication. */
void rest_openapi(rest_t *rs, h2s_req_t *r, char **seg, size_t n);
/*
 * What accept (NULL: none) takes first: 1 JSON, 2 gnostic's protobuf
 * (only if pb: /openapi/v2), 0 neither (406).
 */
int rest_openapi_accept(const char *accept, bool pb);
/* Frees the documents rest_openapi made (rest_free). */
void rest_openapi_free(rest_t *rs);

#endif
