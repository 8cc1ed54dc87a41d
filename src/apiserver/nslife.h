/*
 * nslife: the namespace lifecycle inside the apiserver, what Kubernetes
 * splits between the NamespaceLifecycle admission plugin and the
 * namespace, system-namespaces and service-account controllers:
 *   - admission: a new namespaced object needs its namespace to exist
 *     (NotFound otherwise) and not to be Terminating (Forbidden);
 *   - default, kube-system, kube-public and kube-node-lease exist: they are
 *     created when missing, at start and then on a timer (a store that did
 *     not answer at start gets them once it does);
 *   - every new namespace gets the ServiceAccount "default";
 *   - a Terminating namespace (apply.c marks it on delete) has its content
 *     deleted through the ordinary delete, then is removed itself once
 *     nothing is left in it.
 * It knows which namespaces exist from the store's changes (a cache of
 * name -> phase, filled on demand from a read snapshot); its writes go
 * through the store as ops (callbacks into the api). Loop thread only.
 */
#ifndef CORACLE_NSLIFE_H
#define CORACLE_NSLIFE_H

#include <event2/event.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "kinds.h"
#include "store.h"

typedef struct nslife nslife_t;

/* The writes, as internal ops (their errors are only logged). */
struct nslife_ops {
    /* Create obj (taken; an object of kind k, namespace and name set). */
    void (*create)(void *arg, const struct kind *k, ProtobufCMessage *obj);
    /* Delete ns/name of kind k as a client's delete would (the kind's grace). */
    void (*remove)(void *arg, const struct kind *k, const char *ns, const char *name);
    /* Remove the Terminating namespace name whose uid is uid. */
    void (*finish)(void *arg, const char *name, const char *uid);
    void *arg;
};

/*
 * implicit: namespaces are not the apiserver's to manage, as before they
 * were objects: any namespace may be written into, and no system namespace
 * or default ServiceAccount is created (the store holds only what clients
 * wrote). A Namespace object a client makes is still checked when
 * Terminating, and its deletion still takes its content along.
 */
nslife_t *nslife_new(struct event_base *base, store_t *st, bool implicit,
                     const struct nslife_ops *ops);
void nslife_free(nslife_t *n);
/* Every committed change (the api's listener); STORE_RESYNC forgets the cache. */
void nslife_on_change(nslife_t *n, const struct store_change *ch);

/*
 * NamespaceLifecycle for a create of kind k named name in namespace ns:
 * 0 if allowed, else -1 with *code (a gRPC code: NOT_FOUND or
 * PERMISSION_DENIED) and *msg (malloc'd), Kubernetes' text.
 */
int nslife_admit(nslife_t *n, const struct kind *k, const char *ns, const char *name, int *code,
                 char **msg);

/* A namespace that may not be deleted (default, kube-system, kube-public). */
bool nslife_undeletable(const char *name);

#endif
