/*
 * daemonset_int.h: what the DaemonSet controller's files share
 * (daemonset.c: handlers, placement, the per-node reconcile, status;
 * daemonset_update.c: the rolling update, as Kubernetes' update.go).
 * Nothing here is for other modules.
 */
#ifndef CORACLE_DAEMONSET_INT_H
#define CORACLE_DAEMONSET_INT_H

#include "cm.h"
#include "smap.h"

#include <stdbool.h>
#include <stdint.h>

#define DS_HASH_LABEL "controller-revision-hash"
#define DS_N_TOLERATIONS 7 /* the daemon tolerations (daemonset.c) */

/*
 * The template as the pod Kubernetes' NodeShouldRunDaemonPod checks: its
 * spec with the daemon tolerations added (replacing an equal one).
 * Borrows from the DaemonSet; ds_probe_free frees what it owns.
 */
struct probe {
    Coracle__V1__Pod pod;
    Coracle__V1__PodSpec spec;
    Coracle__V1__Toleration added[DS_N_TOLERATIONS];
    Coracle__V1__Toleration **tols;
};

/* One sync in flight: the writes it waits for. */
struct dsync {
    ctrl_t *c;
    char *key;
    int pending;
    int errors;
    char *why;
};

/* A DaemonSet's pods for one node. */
struct on_node {
    const Coracle__V1__Pod **p;
    size_t n, cap;
};

/* What a sync works from; valid while it runs. */
struct view {
    const Coracle__V1__DaemonSet *ds;
    const char *name;
    struct probe pr;
    char hash[CM_HASH_LEN];
    smap_t *by_node; /* target node -> struct on_node */
    inf_t *nodes;
    int32_t min_ready;
    int64_t now_s;
    /* what manage decided: nodes to get a pod, pods to delete */
    const char **create;
    size_t n_create, cap_create;
    const Coracle__V1__Pod **del;
    size_t n_del, cap_del;
};

/* Fills pr from the DaemonSet's template (borrowed). */
void ds_probe_init(struct probe *pr, const Coracle__V1__DaemonSet *ds);
void ds_probe_free(struct probe *pr);
/*
 * Kubernetes' NodeShouldRunDaemonPod: whether a pod should be placed on
 * node (returned) and whether one already there may stay (*stay).
 */
bool ds_should_run(const struct probe *pr, const Coracle__V1__Node *node, bool *stay);

/* Pod p carries the DaemonSet's current template hash (util.IsPodUpdated). */
bool ds_pod_updated(const struct view *v, const Coracle__V1__Pod *p);
/* Ready for minReadySeconds. */
bool ds_available(const struct view *v, const Coracle__V1__Pod *p);
/* Has a deletionTimestamp. */
bool ds_deleting(const Coracle__V1__Pod *p);

/* Adds a node to get a pod, or a pod to delete, to what the next ds_sync_nodes writes. */
void ds_to_create(struct view *v, const char *node);
void ds_to_delete(struct view *v, const Coracle__V1__Pod *p);
/*
 * Writes the creates and deletes gathered in v (Kubernetes' syncNodes),
 * at most BURST of each, expecting them; empties the lists. Returns the
 * number of writes.
 */
int ds_sync_nodes(struct dsync *s, struct view *v);

/* maxSurge scaled to desired nodes: 0 without RollingUpdate or surge. */
int32_t ds_max_surge(const struct view *v, int32_t desired);
/* Replaces pods of old templates within maxUnavailable or maxSurge (RollingUpdate only). */
void ds_rolling_update(struct dsync *s, struct view *v);

#endif
