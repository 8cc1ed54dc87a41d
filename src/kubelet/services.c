/*
 * services: the kubelet's one watch of Services and EndpointSlices (all
 * namespaces, as kube-proxy and CoreDNS watch them), shared by the
 * Service proxy (proxy.c, told of each change) and the cluster DNS
 * (dns.c, which reads the caches for each query). Started when either
 * is on.
 */
#include "config.h"
#include "informer.h"
#include "kinds.h"
#include "klet.h"
#include "proxy.h"

#include <time.h>

static void changed(struct klet *k, inf_t *inf, const ProtobufCMessage *old,
                    const ProtobufCMessage *obj)
{
    k->svc_serial = (uint32_t)time(NULL);
    klet_proxy_changed(k, inf, old, obj);
}

static void on_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    changed(arg, inf, NULL, obj);
}

static void on_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                      void *arg)
{
    changed(arg, inf, old, obj);
}

static void on_synced(inf_t *inf, void *arg)
{
    klet_proxy_synced(arg);
}

void klet_services_start(struct klet *k)
{
    if (k->svc_inf)
        return;
    struct inf_handlers h = {
        .on_add = on_add,
        .on_update = on_update,
        .on_delete = on_add,
        .on_synced = on_synced,
        .arg = k,
    };
    struct inf_opts o = {0};
    k->svc_serial = (uint32_t)time(NULL);
    k->svc_inf = inf_new(k->base, k->api, &kind_service, &o, &h);
    k->slice_inf = inf_new(k->base, k->api, &kind_endpointslice, &o, &h);
    inf_start(k->svc_inf);
    inf_start(k->slice_inf);
}

void klet_services_stop(struct klet *k)
{
    inf_free(k->svc_inf);
    inf_free(k->slice_inf);
    k->svc_inf = k->slice_inf = NULL;
}
