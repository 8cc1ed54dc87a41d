/*
 * watch: the kubelet's pods, as the informer (src/lib/informer.h) keeps
 * them: list + watch with field selector spec.nodeName=<node>, resumed and
 * re-listed by the informer. Each add/update/delete goes to pods.c; once the
 * initial list is in, pods.c re-adopts what runs and starts syncing.
 *
 * Offline start: when that list has not come within KLET_OFFLINE_AFTER_MS
 * (the apiserver is down or the uplink is cut), the pods of the durable
 * record run instead (pods.c), so a node that rebooted alone gets its
 * workloads back; the informer keeps retrying, and its first list
 * reconciles (pods deleted meanwhile are stopped, new ones start).
 */
#include "config.h"
#include "informer.h"
#include "kinds.h"
#include "klet.h"
#include "util.h"

#include <stdlib.h>

/* Long enough for a reachable apiserver to answer the first list, short enough that a node
 * cut off from it is back to work at once. */
#define KLET_OFFLINE_AFTER_MS 1000

static void on_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    klet_pods_upsert(arg, (const Coracle__V1__Pod *)obj);
}

static void on_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                      void *arg)
{
    klet_pods_upsert(arg, (const Coracle__V1__Pod *)obj);
}

static void on_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    klet_pods_deleted(arg, (const Coracle__V1__Pod *)obj);
}

static void on_synced(inf_t *inf, void *arg)
{
    struct klet *k = arg;
    log_info("pods synced: %zu on this node", inf_count(inf));
    if (k->offline_ev)
        event_del(k->offline_ev);
    if (!k->synced)
        klet_pods_synced(k);
    else if (k->offline)
        klet_pods_reconcile(k);
    klet_record_prune(k);        /* pods deleted while this kubelet was down */
    klet_record_set_complete(k); /* every pod listed has been recorded */
}

static void offline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct klet *k = arg;
    if (!k->synced)
        klet_pods_from_record(k);
}

void klet_watch_start(struct klet *k)
{
    char *sel = xasprintf("spec.nodeName=%s", k->cfg.node_name);
    struct inf_opts o = {.field_selector = sel};
    struct inf_handlers h = {
        .on_add = on_add,
        .on_update = on_update,
        .on_delete = on_delete,
        .on_synced = on_synced,
        .arg = k,
    };
    k->pod_inf = inf_new(k->base, k->api, &kind_pod, &o, &h);
    free(sel);
    inf_start(k->pod_inf);
    k->offline_ev = evtimer_new(k->base, offline_cb, k);
    struct timeval tv = {KLET_OFFLINE_AFTER_MS / 1000, (KLET_OFFLINE_AFTER_MS % 1000) * 1000};
    event_add(k->offline_ev, &tv);
}

void klet_watch_stop(struct klet *k)
{
    inf_free(k->pod_inf);
    k->pod_inf = NULL;
    if (k->offline_ev)
        event_free(k->offline_ev);
    k->offline_ev = NULL;
}
