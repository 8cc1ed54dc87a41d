/*
 * svckube: the `kubernetes` Service in `default` and its EndpointSlice,
 * kept by every apiserver as kube-apiserver's lease endpoint reconciler
 * does. Each apiserver renews a Lease of its own in kube-system
 * (apiserver-endpoint-<ip>, 15 s) every 10 s; the slice lists the addresses
 * whose Lease is fresh, so with several apiservers on one etcd each adds
 * itself and a stopped one drops out within the lease's duration. The
 * Service (clusterIP the range's first IP, port 443 "https" to the
 * apiserver's secure port) is created when missing. Writes go through the
 * api's ops (put). Loop thread only.
 */
#ifndef CORACLE_SVCKUBE_H
#define CORACLE_SVCKUBE_H

#include <event2/event.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "kinds.h"
#include "store.h"

typedef struct svckube svckube_t;

struct svckube_ops {
    /* create (update false) or replace obj (taken); errors are logged */
    void (*put)(void *arg, const struct kind *k, ProtobufCMessage *obj, bool update);
    void *arg;
};

struct svckube_config {
    const char *ip;       /* this apiserver's advertised IPv4 address (copied) */
    int port;             /* its secure port */
    const char *first_ip; /* the `kubernetes` Service's clusterIP (copied) */
};

svckube_t *svckube_new(struct event_base *base, store_t *st, const struct svckube_config *cfg,
                       const struct svckube_ops *ops);
void svckube_free(svckube_t *s);

#endif
