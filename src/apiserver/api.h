/*
 * api: the apiserver's gRPC API: one generic set of handlers over the kinds
 * table (Create, Get, List, Update, UpdateStatus, Delete, Watch for every
 * kind; Pods.Bind; Log and Exec are relayed by tunnel.c), each request
 * passing the named stages authenticate -> authorize -> admit -> store.
 * It owns the watch hub, the event index and TTL, the node lifecycle
 * controller, and the /healthz, /readyz and /metrics answers. Loop thread
 * only.
 */
#ifndef CORACLE_API_H
#define CORACLE_API_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "apply.h"
#include "auth.h"
#include "h2s.h"
#include "kinds.h"
#include "obs.h"
#include "psa.h"
#include "rpool.h"
#include "store.h"
#include "svcalloc.h"

typedef struct api api_t;

struct api_config {
    int64_t event_ttl_s;       /* default 3600 */
    int64_t node_grace_s;      /* node-monitor-grace, default 40 */
    int bookmark_interval_s;   /* default 60 */
    size_t watch_queue_bytes;  /* default 16 MiB */
    size_t watch_memory_limit; /* all watches' unsent bytes; default 256 MiB */
    auth_t *auth;              /* who may call (borrowed: outlives the api_t) */
    /* REST exec/attach: the client's streams must be open within (SPDY), and it may be
     * silent at most (both protocols): seconds, 0 for the defaults (30, 14400) */
    int stream_setup_timeout_s, stream_idle_timeout_s;
    /* namespaces need not exist to be written into (nslife.h) */
    bool implicit_namespaces;
    /* ServiceAccount tokens and admission (borrowed; NULL: none) */
    struct satoken *sat;
    /* Pod Security admission's defaults and exemptions (psa.h; lists borrowed) */
    struct psa_config pod_security;
    struct audit *audit; /* the audit log (audit.h), or NULL (borrowed) */
    /* more lines for /metrics (certexp_metrics), or NULL */
    void (*metrics_extra)(FILE *f, void *arg);
    void *metrics_arg;
    /* Services' cluster IP and node port ranges (svcalloc.h) */
    struct svcalloc_config svc;
    /* several apiservers may share the store (etcd): node lifecycle and event expiry run
     * only on the holder of their Lease (kube-system/node-lifecycle-controller,
     * kube-system/coracle-apiserver-event-ttl) */
    bool elect_singletons;
    /* this apiserver among them ("<host>_<listen address>": the same after a restart, so it
     * takes its Lease back at once); NULL: "<host>_<uuid>" */
    const char *identity;
};

/* Registers every route and the HTTP handler on srv; st must be open. */
api_t *api_new(struct event_base *base, store_t *st, h2s_t *srv, const struct api_config *cfg);
/* The kubelet tunnel (tunnel.c), for /metrics and the REST API's log, exec, attach. */
struct tun_hub;
void api_set_tunnel(api_t *a, struct tun_hub *t);
/* Keeps the `kubernetes` Service and its EndpointSlice (svckube.h): this
 * apiserver is at ip (IPv4), its secure port is port. */
void api_set_kubernetes(api_t *a, const char *ip, int port);
/* Calls accepted and not yet answered (watches excluded once ended). */
int64_t api_inflight(const api_t *a);
/* Shutdown: refuses new calls, ends every watch cleanly (OK). */
void api_stop(api_t *a);
/* After h2s_free, before store_close: ends the read snapshots Lists in progress hold. */
void api_end_reads(api_t *a);
void api_free(api_t *a);

/* ---- shared by the apiserver's files ---- */

/*
 * Escalation prevention for a create or update of obj (kind k) by u, when
 * RBAC is on (rbac_admit). 0, or -1 with *code (gRPC) and *msg (malloc'd).
 */
struct auth_user;
/* Whether writes of k go through api_rbac_admit: they must be decoded on the loop. */
bool api_escalation_checked(const api_t *a, const struct kind *k);
int api_rbac_admit(api_t *a, const struct auth_user *u, const struct kind *k,
                   const ProtobufCMessage *obj, int *code, char **msg);

enum api_verb {
    API_CREATE,
    API_GET,
    API_LIST,
    API_UPDATE,
    API_STATUS,
    API_DELETE,
    API_WATCH,
    API_BIND,
    API_LOG,
    API_EXEC,
    API_NVERBS
};

/* One registered gRPC method, with its counters for /metrics. */
struct api_route {
    api_t *api;
    const struct kind *k;
    enum api_verb verb;
    char *path;
    uint64_t codes[17];
    struct obs_hist lat; /* unary calls: seconds from the handler to the answer */
};

/*
 * ---- the write pipeline's stages, for both APIs (gRPC here, the REST
 * API's writes in rest_write.c) ----
 */

/* authorize: auth_check with the api's policy and store. 0, or -1 with *err (malloc'd). */
int api_authorize(api_t *a, const struct auth_user *u, const char *verb, const struct kind *k,
                  const char *subresource, const char *ns, const char *name,
                  const char *field_selector, char **err);
/* admit: defaults, then validation. 0, or -1 with *msg (malloc'd, Kubernetes' Invalid text). */
int api_admit(const struct kind *k, ProtobufCMessage *obj, char **msg);
/* metadata.name from metadata.generateName, as Kubernetes makes it. */
void api_gen_name(Coracle__V1__ObjectMeta *m);
/*
 * store and answer: submits o (taken; o->ow, owner and owner2 set by the
 * caller) and calls o->ow->answer once on the loop when it is durable or
 * has failed (from inside api_submit only for a dry run, a stopping server
 * or a closed store). A create whose generated name is taken is retried with
 * another, as for gRPC calls. Counted in api_inflight until answered.
 * dry_run: the op's decision runs now against the stored object, nothing
 * is written, and the answer is what would have been stored
 * (resourceVersion: the stored object's; empty for a create).
 */
void api_submit(api_t *a, struct apply_op *o, bool dry_run);
/*
 * The field manager a write is recorded under (metadata.managedFields), as
 * Kubernetes picks it: field_manager (the fieldManager parameter) if given,
 * else the user agent's product name (before the first '/': "kubectl",
 * "coraclectl"), else "unknown". malloc'd.
 */
char *api_field_manager(const char *field_manager, const char *user_agent);
/* A Binding's checks (name, target) as Kubernetes words them: 0, or -1 with *msg (malloc'd). */
int api_bind_validate(const Coracle__V1__Binding *b, char **msg);
/* Whether kind k serves verb (Bind: pods only), as the gRPC routes do. */
bool api_has_verb(const struct kind *k, enum api_verb v);

/* Answer a call and count it (route's counters, in-flight gauge). */
void api_reply(struct api_route *rt, h2s_call_t *c, const void *msg, size_t len);
void api_fail(struct api_route *rt, h2s_call_t *c, int code, const char *msg);
void api_failf(struct api_route *rt, h2s_call_t *c, int code, const char *fmt, ...) PRINTF(4, 5);
/* Counts a call that ended without an answer from us (the client went away: code -1). */
void api_count(struct api_route *rt, int code);

/* read.c: Get and List straight from store read snapshots. */
void read_get(struct api_route *rt, store_t *st, h2s_call_t *c, const uint8_t *msg, size_t len);
/*
 * List reads from one snapshot held until the answer. At most about a
 * millisecond of its work runs on the loop; the rest (and all of a List
 * whose request is big) runs in the read worker (pool) and is answered back
 * on the loop. So no List holds the loop longer, whatever its selectors or
 * the number of objects.
 */
void read_list(struct api_route *rt, store_t *st, rpool_t *pool, struct event_base *base,
               h2s_call_t *c, const uint8_t *msg, size_t len);
/*
 * Reads not older than a resourceVersion (both APIs). A get or list with
 * resourceVersion N (not "0": any) must not be older than N: a replica of
 * etcd that has not reached N yet (the client saw N through another
 * apiserver) holds the read until it has, for at most READ_RV_WAIT_MS
 * (kube-apiserver's 3 s), then fails it as Kubernetes does: "Too large
 * resource version" (REST 504 Timeout; gRPC READ_RV_TOO_LARGE_CODE, the
 * code that maps to it).
 *
 * read_rv_hold returns NULL if the read may run now (rv empty, "0", not a
 * number, or reached). Else it returns the wait and calls fn(arg, NULL)
 * once the store reached rv, or fn(arg, msg) at the deadline (msg valid
 * during the call); the wait is gone before fn runs. read_rv_cancel(w)
 * forgets w (fn never runs); NULL is a no-op.
 */
#define READ_RV_WAIT_MS 3000
#define READ_RV_TOO_LARGE_CODE GRPC_DEADLINE_EXCEEDED
typedef void (*read_rv_fn)(void *arg, const char *too_large);
struct read_rvwait;
struct read_rvwait *read_rv_hold(store_t *st, struct event_base *base, const char *rv,
                                 read_rv_fn fn, void *arg);
void read_rv_cancel(struct read_rvwait *w);
/*
 * The List both APIs share: reads the page req asks for (kind k; req is
 * taken, len is its encoded size) as read_list does, and calls done once,
 * on the loop: code GRPC_OK and the ListResponse bytes (items as field 2,
 * ListMeta as field 1; valid during the call), or a gRPC code and msg.
 * Returns NULL if done already ran, else the List in progress: if its
 * client goes away first, read_list_cancel(it) and done is never called.
 */
typedef void (*read_list_done_fn)(void *owner, void *owner2, int code, const char *msg,
                                  const uint8_t *out, size_t len);
struct lctx;
struct lctx *read_list_start(store_t *st, rpool_t *pool, const struct kind *k,
                             Coracle__V1__ListRequest *req, size_t len, read_list_done_fn done,
                             void *owner, void *owner2);
void read_list_cancel(struct lctx *x);
/*
 * Get's read: calls fn with the stored object's bytes (valid during the
 * call). Returns 0, STORE_ENOTFOUND or another store error.
 */
int read_object(store_t *st, const struct kind *k, const char *ns, const char *name,
                void (*fn)(const void *val, size_t len, void *arg), void *arg);
/* The continue token codec: opaque (base64url) encoding of the list revision and last key. */
char *read_token_encode(uint64_t rev, const char *key, size_t key_len);
/* Returns 0 with *rev and *key (malloc'd), or -1. */
int read_token_decode(const char *tok, uint64_t *rev, char **key);

#endif
