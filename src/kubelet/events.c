/*
 * events: the kubelet's event recorder. Each event is one Events/Create
 * (fire and forget) named "<pod>.<16 hex>" like Kubernetes', with source
 * {component: kubelet, host: <node>} and the involved pod (fieldPath
 * spec.containers{name} / spec.initContainers{name} for a container).
 * Repeats are folded by the apiserver (count, lastTimestamp).
 */
#include "config.h"
#include "klet.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void event_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    if (code != 0)
        log_debug("event: %s", message);
}

/* Creates the event named after objname in ns about ref. Fire and forget. */
static void event_send(struct klet *k, const char *ns, const char *objname,
                       Coracle__V1__ObjectReference *ref, const char *type, const char *reason,
                       char *msg)
{
    /* Kubernetes names an event <object>.<its time in hex>; strictly
     * increasing times make names unique and a list's order (by name) the
     * events' order, which clients sorting by a timestamp with ties keep */
    int64_t now = now_ns();
    if (now <= k->last_event_ns)
        now = k->last_event_ns + 1;
    k->last_event_ns = now;
    char name[512];
    snprintf(name, sizeof name, "%s.%016llx", objname, (unsigned long long)now);

    Coracle__V1__ObjectMeta meta = CORACLE__V1__OBJECT_META__INIT;
    meta.name = name;
    meta.namespace_ = (char *)ns;
    Coracle__V1__EventSource src = CORACLE__V1__EVENT_SOURCE__INIT;
    src.component = "kubelet";
    src.host = k->cfg.node_name;
    Coracle__V1__Time ts = CORACLE__V1__TIME__INIT;
    ts.has_seconds = 1;
    ts.seconds = now / 1000000000LL;
    ts.has_nanos = 1;
    ts.nanos = (int32_t)(now % 1000000000LL);
    Coracle__V1__Event ev = CORACLE__V1__EVENT__INIT;
    ev.metadata = &meta;
    ev.involvedobject = ref;
    ev.reason = (char *)reason;
    ev.message = msg;
    ev.source = &src;
    ev.firsttimestamp = &ts;
    ev.lasttimestamp = &ts;
    ev.has_count = 1;
    ev.count = 1;
    ev.type = (char *)type;
    ev.reportingcomponent = "kubelet";
    ev.reportinginstance = k->cfg.node_name;
    if (k->api)
        gcl_call(k->api, "/coracle.v1.Events/Create", &ev.base, NULL, event_done, NULL, 10000);
}

void klet_event(struct klet *k, const struct klet_pod *p, const struct klet_ctr *c,
                const char *type, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    log_info("event %s %s/%s: %s %s", type, p->ns, p->name, reason, msg);
    char *field =
        c ? xasprintf("spec.%s{%s}", c->init ? "initContainers" : "containers", c->name) : NULL;
    Coracle__V1__ObjectReference ref = CORACLE__V1__OBJECT_REFERENCE__INIT;
    ref.kind = "Pod";
    ref.namespace_ = p->ns;
    ref.name = p->name;
    ref.uid = p->uid;
    ref.apiversion = "v1";
    ref.fieldpath = field;
    event_send(k, p->ns, p->name, &ref, type, reason, msg);
    free(field);
    free(msg);
}

void klet_event_node(struct klet *k, const char *type, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    log_info("event %s node %s: %s %s", type, k->cfg.node_name, reason, msg);
    /* as Kubernetes' kubelet: the Node's uid is its name, the event in "default" */
    Coracle__V1__ObjectReference ref = CORACLE__V1__OBJECT_REFERENCE__INIT;
    ref.kind = "Node";
    ref.name = k->cfg.node_name;
    ref.uid = k->cfg.node_name;
    event_send(k, "default", k->cfg.node_name, &ref, type, reason, msg);
    free(msg);
}
