/*
 * watch: the kubelet's pods, as the informer (src/lib/informer.h) keeps
 * them: list + watch with field selector spec.nodeName=<node>, resumed and
 * re-listed by the informer. Each add/update/delete goes to pods.c; once the
 * initial list is in, pods.c re-adopts what runs and starts syncing.
 */
#include "config.h"
#include "informer.h"
#include "kinds.h"
#include "klet.h"
#include "util.h"

#include <stdlib.h>

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
    if (!k->synced)
        klet_pods_synced(k);
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
    inf_t *inf = inf_new(k->base, k->api, &kind_pod, &o, &h);
    free(sel);
    inf_start(inf);
}
