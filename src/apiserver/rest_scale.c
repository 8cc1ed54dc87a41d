/*
 * rest_scale: the scale subresource of the kinds that have one
 * (kind_has_scale: deployments, replicasets), as kube-apiserver serves it:
 * an autoscaling/v1 Scale made from the object (spec.replicas,
 * status.replicas, status.selector as a selector string). GET answers it;
 * PUT and PATCH (rest_write.c) change only the object's spec.replicas, as
 * an update of the object through the shared pipeline. See rest_int.h.
 */
#include "config.h"
#include "rest_int.h"
#include "api.h"
#include "buf.h"
#include "columns.h"
#include "kobj.h"
#include "obj.h"
#include "store.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* The replicas fields of the kinds with a scale (their specs and statuses). */
static void replicas_of(const struct kind *k, const ProtobufCMessage *obj, int32_t *spec,
                        int32_t *status, const Coracle__V1__LabelSelector **sel)
{
    *spec = *status = 0;
    *sel = NULL;
    if (k == &kind_deployment) {
        const Coracle__V1__Deployment *d = (const void *)obj;
        *spec = d->spec ? d->spec->replicas : 0;
        *status = d->status ? d->status->replicas : 0;
        *sel = d->spec ? d->spec->selector : NULL;
    } else if (k == &kind_replicaset) {
        const Coracle__V1__ReplicaSet *rs = (const void *)obj;
        *spec = rs->spec ? rs->spec->replicas : 0;
        *status = rs->status ? rs->status->replicas : 0;
        *sel = rs->spec ? rs->spec->selector : NULL;
    }
}

Coracle__V1__Scale *rest_scale_of(const struct kind *k, const ProtobufCMessage *obj)
{
    int32_t spec, status;
    const Coracle__V1__LabelSelector *sel;
    replicas_of(k, obj, &spec, &status, &sel);
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    Coracle__V1__Scale *s = xmalloc(sizeof(*s));
    coracle__v1__scale__init(s);
    s->metadata = xmalloc(sizeof(*s->metadata));
    coracle__v1__object_meta__init(s->metadata);
    if (m) {
        obj_set_str(&s->metadata->name, m->name);
        obj_set_str(&s->metadata->namespace_, m->namespace_);
        obj_set_str(&s->metadata->uid, m->uid);
        obj_set_str(&s->metadata->resourceversion, m->resourceversion);
        if (m->creationtimestamp)
            s->metadata->creationtimestamp = (void *)obj_clone(&m->creationtimestamp->base);
    }
    s->spec = xmalloc(sizeof(*s->spec));
    coracle__v1__scale_spec__init(s->spec);
    s->spec->has_replicas = spec != 0; /* omitempty */
    s->spec->replicas = spec;
    s->status = xmalloc(sizeof(*s->status));
    coracle__v1__scale_status__init(s->status);
    s->status->has_replicas = 1;
    s->status->replicas = status;
    char *selector = cols_label_selector(sel);
    if (*selector)
        s->status->selector = selector;
    else
        free(selector);
    return s;
}

char *rest_scale_json(const struct kind *k, const ProtobufCMessage *obj)
{
    Coracle__V1__Scale *s = rest_scale_of(k, obj);
    char *bare = kobj_emit(NULL, &s->base, KOBJ_FMT_JSON_COMPACT);
    obj_free(&s->base);
    /* the bare message's members after kind and apiVersion, as every object has them */
    char *j = xconcat("{\"kind\":\"Scale\",\"apiVersion\":\"autoscaling/v1\"",
                      bare[1] == '}' ? "" : ",", bare + 1, NULL);
    free(bare);
    return j;
}

struct scale_get {
    rest_t *rs;
    h2s_req_t *r;
    const struct kind *k;
    bool answered;
};

static void scale_get_cb(const void *val, size_t len, void *arg)
{
    struct scale_get *g = arg;
    ProtobufCMessage *obj = obj_decode(g->k->desc, val, len);
    char *j = obj ? rest_scale_json(g->k, obj) : NULL;
    obj_free(obj);
    g->answered = true;
    if (!j) {
        rest_answer_status(g->rs, g->r, 500, "InternalError", "undecodable stored object", NULL,
                           NULL);
        return;
    }
    size_t n = strlen(j);
    rest_answer_json(g->rs, g->r, 200, j, n);
    free(j);
}

void rest_scale_get(rest_t *rs, h2s_req_t *r, const struct rreq *rq)
{
    struct scale_get g = {rs, r, rq->k, false};
    int rc = read_object(rs->cfg.st, rq->k, rq->ns ? rq->ns : "", rq->name, scale_get_cb, &g);
    if (rc == STORE_ENOTFOUND) {
        char *m = xasprintf("%s \"%s\" not found", rq->k->resource, rq->name);
        rest_answer_status(rs, r, 404, "NotFound", m, rq->k, rq->name);
        free(m);
    } else if (rc != 0) {
        rest_answer_status(rs, r, 503, "ServiceUnavailable", store_strerror(rc), NULL, NULL);
    } else if (!g.answered) {
        rest_answer_status(rs, r, 500, "InternalError", "undecodable stored object", NULL, NULL);
    }
}

int rest_scale_set(const struct kind *k, ProtobufCMessage *obj, int32_t replicas)
{
    if (k == &kind_deployment && ((Coracle__V1__Deployment *)obj)->spec) {
        ((Coracle__V1__Deployment *)obj)->spec->has_replicas = 1;
        ((Coracle__V1__Deployment *)obj)->spec->replicas = replicas;
        return 0;
    }
    if (k == &kind_replicaset && ((Coracle__V1__ReplicaSet *)obj)->spec) {
        ((Coracle__V1__ReplicaSet *)obj)->spec->has_replicas = 1;
        ((Coracle__V1__ReplicaSet *)obj)->spec->replicas = replicas;
        return 0;
    }
    return -1;
}
