/*
 * apply: the write operations of the apiserver as store ops. Each verb's
 * decision (existence, preconditions, resourceVersion compare-and-set,
 * server-set fields, generation, graceful deletion, finalizers, binding)
 * runs in its apply function on the store's commit thread inside the
 * write transaction, so it is exact however many writers race. Apply functions
 * touch only their op and the bytes the store hands them (thread-safe).
 * The op's done callback (loop thread) is set by the submitter.
 */
#ifndef CORACLE_APPLY_H
#define CORACLE_APPLY_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "gcpolicy.h"
#include "kinds.h"
#include "psa.h"
#include "store.h"

enum apply_verb {
    APPLY_CREATE,
    APPLY_UPDATE,
    APPLY_STATUS, /* UpdateStatus */
    APPLY_DELETE,
    APPLY_BIND,
    APPLY_EVENT_BUMP,   /* repeated event: count++ and lastTimestamp */
    APPLY_EVENT_EXPIRE, /* TTL: delete if still older than the TTL */
    APPLY_NODE_UNKNOWN, /* node lifecycle: conditions -> Unknown */
    APPLY_POD_NOTREADY, /* node lifecycle: pod Ready -> False */
    APPLY_NS_REMOVE,    /* namespace lifecycle: delete a Terminating namespace */
};

/* An apply error: op->code/op->msg say what to answer. */
#define APPLY_EFAIL (STORE_EAPP - 1)
/* Event bump target is gone: the caller creates the event instead. */
#define APPLY_EGONE (STORE_EAPP - 2)

struct apply_op {
    struct store_op op; /* first: the store hands back &op */
    const struct kind *k;
    enum apply_verb verb;
    char *ns, *name;       /* for messages */
    ProtobufCMessage *obj; /* the request object (create/update/status/bump); owned */
    /* a create as the client sent it, when obj is NULL (malloc'd): decoded,
     * admitted and encoded by apply on the commit thread (see api.c) */
    void *req;
    size_t req_len;
    /* delete */
    int has_grace;
    int64_t grace;
    char *pre_uid, *pre_rv;
    enum gcpolicy gc; /* propagationPolicy */
    /* bind: target node; pod_notready: the node the pod must be on */
    char *node;
    int64_t ttl_ns; /* expire */
    int gen_tries;  /* create with a generated name: attempts so far (0: not generated) */
    /* create/update/status: the field manager metadata.managedFields records
     * the write under (malloc'd; kssa_update). NULL: not recorded (internal
     * writers, and server-side apply, whose result already says it). */
    char *manager;
    int managed;  /* obj's managedFields are to be stored as they are (server-side apply) */
    int recorded; /* a create's managedFields were recorded before submit (apply_record_create) */
    /* Pod Security (psa.h): the user who asked (malloc'd; NULL: an internal
     * writer), and what create/update checks the object against (NULL: nothing) */
    char *user;
    struct psa_req *psa;
    /* warnings for the client (Kubernetes' Warning headers), each malloc'd;
     * set before submit (loop) or by apply (commit thread) */
    char **warnings;
    size_t n_warnings;
    /* a Service's create or update: the addresses taken for it (svcalloc.h), freed
     * again if the write fails; claimed: taken already (a retry keeps them) */
    struct svc_claim *claim;
    int claimed;
    /* results, set by apply */
    int code;  /* gRPC code when apply fails */
    char *msg; /* malloc'd message */
    void *res; /* the object's bytes when nothing was written (malloc'd) */
    size_t res_len;
    /* owner's fields (loop thread): who hears the outcome (api.c's submitters) */
    const struct apply_owner *ow; /* NULL: an internal writer (errors are logged) */
    void *owner;
    void *owner2;
    /* the written object in JSON, for an owner that answers it (apply_pre_json):
     * made while the batch is made durable, off the loop (malloc'd, or NULL) */
    char *json;
    size_t json_len;
    int counted; /* api_submit counted it in api_inflight until done */
    int rv_held; /* waited for the store to reach the resourceVersion it carries (api.c) */
};

/*
 * The answer side of an op, one per kind of submitter (a gRPC call, a REST
 * request). Loop thread.
 */
struct apply_owner {
    /* The outcome, once: code GRPC_OK and the object's bytes (val, len: the
     * written object, the deleted one, or the unchanged one), or a gRPC
     * code and msg. Both valid during the call. */
    void (*answer)(struct apply_op *o, int code, const char *msg, const void *val, size_t len);
    /* Optional: a retry moved the request from o to n (owner fields already
     * copied); o is freed after it returns. */
    void (*moved)(struct apply_op *o, struct apply_op *n);
};

/* A new op for verb on key (copied); the caller sets the verb's fields and op.done. */
struct apply_op *apply_op_new(const struct kind *k, enum apply_verb verb, const char *ns,
                              const char *name);
void apply_op_free(struct apply_op *o);

/*
 * A create admitted before submit (o->obj defaulted and valid, o->manager
 * set): its managedFields recorded now, by the caller's thread, instead of
 * on the commit thread. A create's entry depends on the object alone: what
 * the commit thread sets later (uid, creationTimestamp, generation, the
 * status admit_prepare_create makes) is not recorded. Not for a Job, whose
 * selector admit_prepare_create makes from its uid.
 */
void apply_record_create(struct apply_op *o);

/* o's written object is to be answered in JSON: made ahead into o->json (store_op.prepare). */
void apply_pre_json(struct apply_op *o);

/* Kubernetes' conflict text: `Operation cannot be fulfilled on pods "x": <why>` (malloc'd). */
char *apply_conflict_msg(const struct kind *k, const char *name, const char *why);

#endif
