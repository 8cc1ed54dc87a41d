/*
 * cm: coracle-controller-manager's core (doc/man/coracle-controller-manager.8),
 * the frame every controller runs in, as kube-controller-manager's
 * shared informers and work queues are.
 *
 * One informer per kind, shared by every controller that watches it
 * (cm_on adds a controller's handlers to it). A controller is a work
 * queue of keys ("ns/name" of the objects it reconciles) and a sync
 * function: handlers map a change to the keys it concerns (a pod's
 * change to its owner's key) and enqueue them; the queue holds each key
 * once, never syncs one key twice at a time (a key enqueued during its
 * sync is synced again after), runs at most `workers` syncs at once, and
 * requeues a failed sync with a per-key backoff (5 ms doubling to 60 s,
 * as client-go's default rate limiter, capped lower). Syncs start only
 * once every informer has listed and this manager leads (leader
 * election, --leader-elect); the caches are kept warm meanwhile.
 *
 * A sync reads the caches (cm_get, cm_owned: never the apiserver), then
 * writes through cm_call, and reports its end with exactly one
 * ctrl_done, possibly later from a write's callback. What it wrote is
 * seen again through the informers, which enqueue the key once more:
 * the usual level-triggered loop. Expectations (cm_expect_*) stop a sync
 * from acting again on a cache that has not seen its own writes yet, as
 * Kubernetes' ControllerExpectations do.
 *
 * Runs on one libevent loop; nothing polls. Not thread-safe.
 */
#ifndef CORACLE_CM_H
#define CORACLE_CM_H

#include <event2/event.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "coracle.pb-c.h"
#include "gcl.h"
#include "informer.h"
#include "kinds.h"

typedef struct cm cm_t;
typedef struct ctrl ctrl_t;

/* A controller, as --controllers names it. */
struct ctrl_def {
    const char *name; /* "replicaset", "deployment", "garbagecollector" */
    int workers;      /* syncs in flight at most (0: 5, as --concurrent-*-syncs) */
    /*
     * Called once by cm_start, before the informers start: register
     * handlers (cm_on) and make the controller's state, returned (may be
     * NULL). c stays valid for the manager's life.
     */
    void *(*setup)(cm_t *cm, ctrl_t *c);
    /* Reconciles key; ends with exactly one ctrl_done(c, key, ...), now or later. */
    void (*sync)(ctrl_t *c, const char *key, void *state);
    /* Frees the state (may be NULL). */
    void (*free)(void *state);
    /* Optional: Prometheus lines of its own for /metrics. */
    void (*metrics)(FILE *f, void *state);
};

struct cm_cfg {
    const char *server;          /* apiserver ADDR(s) */
    const char *token;           /* bearer token or NULL */
    struct ssl_ctx_st *tls;      /* borrowed: gcl takes its own reference */
    const char *user_agent;      /* "coracle-controller-manager/VERSION" */
    bool standby;                /* do not sync until cm_lead (leader election) */
    int max_inflight;            /* API writes in flight at most (queued beyond); 0: 500 */
    const char *root_ca;         /* PEM the kube-root-ca.crt ConfigMaps publish (--root-ca-file) */
    const char *cluster_cidr;    /* --cluster-cidr with --allocate-node-cidrs; NULL: no node IPAM */
    int node_cidr_mask_size;     /* --node-cidr-mask-size */
    int max_endpoints_per_slice; /* the EndpointSlice controller's; 0: 100 */
};

/* Copies cfg. NULL (logged) if the server address is bad. */
cm_t *cm_new(struct event_base *base, const struct cm_cfg *cfg);
/* Adds a controller (before cm_start). */
ctrl_t *cm_add(cm_t *cm, const struct ctrl_def *def);
/* Runs every setup, then starts the informers. */
void cm_start(cm_t *cm);
/* This manager won the election: syncs start (once the caches are synced). */
void cm_lead(cm_t *cm);
/* Cancels everything and frees (state freed through each def's free). */
void cm_free(cm_t *cm);

struct event_base *cm_base(const cm_t *cm);
/* cm_cfg's root_ca (copied), or NULL. */
const char *cm_root_ca(const cm_t *cm);
/* Whether nodes get pod ranges: cm_cfg's cluster_cidr (*cidr, valid as cm) and mask size. */
bool cm_node_cidrs(const cm_t *cm, const char **cidr, int *mask);
/* cm_cfg's max_endpoints_per_slice (100 if it was 0). */
int cm_max_endpoints_per_slice(const cm_t *cm);
/* The component name events carry ("deployment-controller"): "<name>-controller". */
const char *ctrl_name(const ctrl_t *c);
cm_t *ctrl_cm(const ctrl_t *c);
void *ctrl_state(const ctrl_t *c);

/* ------------------------------------------------------------ informers */

/*
 * Adds handlers for changes to kind k (all namespaces); the informer is
 * made on the first call and shared. Only from setup. Handlers run also
 * for the initial list (on_add), before syncing starts; they should only
 * enqueue.
 */
void cm_on(cm_t *cm, const struct kind *k, const struct inf_handlers *h);
/* The shared informer of kind k, or NULL if nobody registered for it. */
inf_t *cm_informer(const cm_t *cm, const struct kind *k);
/* A cached object (NULL if absent); valid until control returns to the loop. */
const ProtobufCMessage *cm_get(const cm_t *cm, const struct kind *k, const char *ns,
                               const char *name);
/*
 * Calls fn on every cached object of kind k in namespace ns whose
 * controller owner reference (controller: true) has this uid, via an
 * index the manager keeps (no scan); owner_uid "" walks the orphans (no
 * controller). Stops when fn returns non-zero and returns that. Only for
 * kinds someone registered for.
 */
int cm_owned(const cm_t *cm, const struct kind *k, const char *ns, const char *owner_uid,
             int (*fn)(const ProtobufCMessage *obj, void *arg), void *arg);
/*
 * The objects cm_owned walks, as an array (malloc'd, NULL when *n is 0;
 * the objects are the cache's, valid until control returns to the loop).
 */
const ProtobufCMessage **cm_owned_list(const cm_t *cm, const struct kind *k, const char *ns,
                                       const char *owner_uid, size_t *n);
/* The owner reference with controller: true of obj, or NULL. */
const Coracle__V1__OwnerReference *cm_controller_of(const ProtobufCMessage *obj);

/* ---------------------------------------------------------------- queue */

/* Adds key (copied); a key queued already or being synced is not doubled. */
void ctrl_enqueue(ctrl_t *c, const char *key);
/* Enqueues key after ms milliseconds (the earliest of several wins). */
void ctrl_enqueue_after(ctrl_t *c, const char *key, int64_t ms);
/* The key of a cached object: "ns/name" (malloc'd). */
char *cm_key(const ProtobufCMessage *obj);
/*
 * Adds handlers (cm_on) for kind k whose objects controller c's objects
 * (of kind owner) control, as a Job's pods: a change enqueues the
 * controller's key, both old and new when an update moves the object;
 * a create seen lowers the key's expected adds, a delete its expected
 * dels, and an object marked for deletion (deletionTimestamp set) counts
 * as deleted then, as Kubernetes' controllers count it. Only from setup.
 */
void cm_on_owned(cm_t *cm, ctrl_t *c, const struct kind *k, const struct kind *owner);
/*
 * Handlers (inf_handlers' on_add, on_update; arg: the ctrl_t) that
 * enqueue the changed object's own key, for a controller's own kind.
 */
void ctrl_enqueue_added(inf_t *inf, const ProtobufCMessage *obj, void *arg);
void ctrl_enqueue_updated(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                          void *arg);
/*
 * The end of a sync. ok: the key's backoff is forgotten. !ok: requeued
 * after its backoff (why is logged at info, with the controller's name).
 */
void ctrl_done(ctrl_t *c, const char *key, bool ok, const char *why);

/* --------------------------------------------------------------- writes */

/*
 * A unary call to kind k's service ("Create", "Update", "UpdateStatus",
 * "Delete"): req is packed at once (the caller keeps it). done gets the
 * grpc code, message and the response (unpacked with the kind's
 * descriptor for object answers, NULL on error or for a response of
 * another type; valid during the callback). Writes beyond max_inflight
 * wait in a queue. done may be NULL.
 */
typedef void (*cm_done_fn)(int code, const char *message, const ProtobufCMessage *resp, void *arg);
void cm_call(cm_t *cm, const struct kind *k, const char *method, const ProtobufCMessage *req,
             cm_done_fn done, void *arg);
/*
 * Kubernetes' ControllerRefManager: cm_adopt makes owner (of kind ok) the
 * controller of obj (kind k: an Update adding an owner reference with
 * controller and blockOwnerDeletion); cm_release lets obj go (its
 * controller reference removed). Packed at once, as cm_call.
 */
void cm_adopt(cm_t *cm, const struct kind *k, const ProtobufCMessage *obj, const struct kind *ok,
              const ProtobufCMessage *owner, cm_done_fn done, void *arg);
void cm_release(cm_t *cm, const struct kind *k, const ProtobufCMessage *obj, cm_done_fn done,
                void *arg);
/* Deletes ns/name of kind k with the given propagation policy (NULL: the kind's default). */
void cm_delete(cm_t *cm, const struct kind *k, const char *ns, const char *name, const char *uid,
               const char *propagation, cm_done_fn done, void *arg);

/*
 * An Event about obj (kind k) as Kubernetes' recorders write them: type
 * "Normal"/"Warning", reason "SuccessfulCreate", message; source
 * component ctrl_name(c). Fire and forget.
 */
void ctrl_event(ctrl_t *c, const struct kind *k, const ProtobufCMessage *obj, const char *type,
                const char *reason, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/*
 * A sync's writes: the sync ends (ctrl_done) when the last of them has
 * answered, failed if any did (NOT_FOUND, a thing gone already, does not
 * count). cm_batch_new counts the sync itself as one write: end it with
 * cm_batch_end(b, 0, NULL, NULL) once every write is started.
 * cm_batch_add counts one more write, whose callback calls cm_batch_end
 * with its code, message and what it was ("create pod"). The batch frees
 * itself with its last end.
 */
struct cm_batch;
struct cm_batch *cm_batch_new(ctrl_t *c, const char *key);
void cm_batch_add(struct cm_batch *b);
void cm_batch_end(struct cm_batch *b, int code, const char *message, const char *what);
ctrl_t *cm_batch_ctrl(const struct cm_batch *b);
/* The key synced (valid while the batch is). */
const char *cm_batch_key(const struct cm_batch *b);
/* A cm_done_fn for a write that needs nothing but its end counted (arg: the batch). */
void cm_batch_done(int code, const char *message, const ProtobufCMessage *resp, void *arg);

/* --------------------------------------------------------- expectations */

/*
 * Kubernetes' ControllerExpectations for key: a sync that created n
 * objects (or deleted n) calls cm_expect(c, key, n, 0); each object seen
 * through the informer (or each failed write) lowers the count
 * (cm_observed); cm_satisfied says whether the cache has caught up (or
 * the expectation is older than 5 minutes, as Kubernetes' TTL).
 */
void cm_expect(ctrl_t *c, const char *key, int adds, int dels);
void cm_observed(ctrl_t *c, const char *key, int adds, int dels);
bool cm_satisfied(ctrl_t *c, const char *key);
/* Forgets key's expectations (its object was deleted). */
void cm_expect_forget(ctrl_t *c, const char *key);

/* ------------------------------------------------------------- helpers */

/* Kubernetes' time now, as a Time message value (seconds, no nanos). */
void cm_time_now(Coracle__V1__Time *t);
/* obj's metadata.uid ("" if none). */
const char *cm_uid(const ProtobufCMessage *obj);
/*
 * A label selector message as a matcher: returns true and fills *out
 * (sel_free) or false for a selector that matches nothing (NULL) or is
 * invalid. An empty selector matches everything.
 */
struct sel;
bool cm_selector(const Coracle__V1__LabelSelector *ls, struct sel **out);
/* Whether the labels of meta match sel. */
bool cm_labels_match(const struct sel *sel, const Coracle__V1__ObjectMeta *meta);

/* ------------------------------------------------------------------ pods */

/* Neither finished (Succeeded, Failed) nor being deleted. */
bool cm_pod_active(const Coracle__V1__Pod *p);
/* Its Ready condition is True. */
bool cm_pod_ready(const Coracle__V1__Pod *p);
/* Ready for at least min_ready seconds at now_s (Kubernetes' IsPodAvailable). */
bool cm_pod_available(const Coracle__V1__Pod *p, int32_t min_ready, int64_t now_s);

/*
 * qsort order of pods (const Coracle__V1__Pod *[]) as Kubernetes'
 * ActivePods: the ones to delete first come first (unscheduled, pending,
 * not ready, most restarts, newest).
 */
int cm_pod_delete_order(const void *pa, const void *pb);

/*
 * A pod made from template t for owner (of kind ok) as its controller,
 * as Kubernetes' controllers create them: generateName "<prefix>",
 * the template's labels and annotations, finalizers, spec, an owner
 * reference with controller and blockOwnerDeletion. Everything in *pp is
 * borrowed (from t, owner and the struct itself): pack it (cm_call)
 * before the loop runs again.
 */
struct cm_pod_parts {
    Coracle__V1__Pod pod;
    Coracle__V1__ObjectMeta meta;
    Coracle__V1__OwnerReference ref;
    Coracle__V1__OwnerReference *refs[1];
};
void cm_pod_from_template(struct cm_pod_parts *pp, const Coracle__V1__PodTemplateSpec *t,
                          const struct kind *ok, const ProtobufCMessage *owner,
                          const char *generate_name);

/*
 * The hash of a pod template that names its revision, as Kubernetes'
 * controller.ComputeHash: FNV-32a of the template (here its protobuf
 * bytes), then of collisions (little-endian) if not NULL, the decimal
 * number written in the alphabet of rand.SafeEncodeString (no vowels, no
 * look-alikes). out gets at most 10 characters and a NUL.
 */
#define CM_HASH_LEN 11
void cm_template_hash(const Coracle__V1__PodTemplateSpec *t, const int32_t *collisions,
                      char out[CM_HASH_LEN]);

/* For /metrics and `systemctl status`. */
void cm_metrics_write(FILE *f, void *arg);
void cm_describe(char *buf, size_t len, void *arg);

#endif
