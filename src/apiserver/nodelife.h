/*
 * nodelife: the node lifecycle controller inside the apiserver. It notes
 * when each node's Lease (kube-node-lease/<node>) last changed, as seen by
 * this apiserver (Kubernetes does the same: local observation times, so
 * clock skew between nodes does not matter), and on a timer marks nodes
 * silent for longer than node-monitor-grace: their conditions go Unknown
 * (NodeStatusUnknown, "Kubelet stopped posting node status.") and their
 * pods' Ready condition False. The writes go through the store as ops
 * (callbacks into the api). Loop thread only.
 */
#ifndef CORACLE_NODELIFE_H
#define CORACLE_NODELIFE_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

typedef struct nodelife nodelife_t;

struct nodelife_ops {
    void (*mark_node)(void *arg, const char *node);
    void (*mark_pod)(void *arg, const char *ns, const char *name, const char *node);
    void *arg;
};

nodelife_t *nodelife_new(struct event_base *base, store_t *st, int64_t grace_s,
                         const struct nodelife_ops *ops);
void nodelife_free(nodelife_t *n);
void nodelife_on_change(nodelife_t *n, const struct store_change *ch);
/* Whether this instance marks nodes and pods (default true); it observes Leases either way, so
 * one that becomes active knows how long each node has been silent. */
void nodelife_set_active(nodelife_t *n, bool on);

#endif
