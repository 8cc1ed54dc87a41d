/*
 * refs: the ConfigMaps and Secrets this node's pods use, each kept by an
 * informer of its own (list and watch of the one object: its namespace and
 * fieldSelector metadata.name=NAME, which is all node restriction lets a
 * node read, and what Kubernetes' kubelet watches too). A pod registers
 * what it refers to when it arrives and releases it when it goes; the
 * last user frees the informer. Any change of an object (created, updated,
 * deleted, or first listed) kicks the pods that use it: envvars.c then
 * starts a container that waited for it, cfgvol.c rewrites its volumes.
 * Nothing polls. Object contents are never logged. Each object is kept in
 * the durable record (record.c) as listed; while the kubelet runs from
 * that record (the apiserver out of reach since it started), the recorded
 * object stands in for the informer's until the informer has listed.
 */
#include "config.h"
#include "informer.h"
#include "kinds.h"
#include "klet.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

struct klet_ref {
    enum podref_kind kind;
    char *ns, *name;
    int users;
    inf_t *inf;
    struct klet *k;
    ProtobufCMessage *rec; /* the recorded object, loaded while running from the record */
};

static const struct kind *ref_kind(enum podref_kind kind)
{
    return kind == PODREF_SECRET ? &kind_secret : &kind_configmap;
}

static struct klet_ref *ref_find(const struct klet *k, enum podref_kind kind, const char *ns,
                                 const char *name)
{
    for (size_t i = 0; i < k->nrefs; i++) {
        struct klet_ref *r = k->refs[i];
        if (r->kind == kind && !strcmp(r->name, name) && !strcmp(r->ns, ns))
            return r;
    }
    return NULL;
}

/* The object changed (or is known for the first time): its pods sync. */
static void ref_changed(struct klet_ref *r)
{
    struct klet *k = r->k;
    for (size_t i = 0; i < k->npods; i++) {
        struct klet_pod *p = k->pods[i];
        if (!strcmp(p->ns, r->ns) && podref_uses(p->pod->spec, r->kind, r->name))
            klet_pod_kick(p);
    }
}

static void rec_drop(struct klet_ref *r)
{
    if (r->rec)
        protobuf_c_message_free_unpacked(r->rec, NULL);
    r->rec = NULL;
}

static void on_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    struct klet_ref *r = arg;
    klet_record_ref(r->k, r->kind, obj);
    ref_changed(r);
}

static void on_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                      void *arg)
{
    struct klet_ref *r = arg;
    klet_record_ref(r->k, r->kind, obj);
    ref_changed(r);
}

static void on_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    struct klet_ref *r = arg;
    klet_record_ref_forget(r->k, r->kind, r->ns, r->name);
    ref_changed(r);
}

static void on_synced(inf_t *inf, void *arg)
{
    struct klet_ref *r = arg;
    if (!inf_get(inf, r->ns, r->name)) /* listed: there is none (any more) */
        klet_record_ref_forget(r->k, r->kind, r->ns, r->name);
    rec_drop(r);
    ref_changed(r);
}

static int ref_hold(enum podref_kind kind, const char *name, void *arg)
{
    struct klet_pod *p = arg;
    struct klet *k = p->k;
    struct klet_ref *r = ref_find(k, kind, p->ns, name);
    if (r) {
        r->users++;
        return 0;
    }
    r = xcalloc(1, sizeof *r);
    r->kind = kind;
    r->ns = xstrdup(p->ns);
    r->name = xstrdup(name);
    r->users = 1;
    r->k = k;
    char *sel = xasprintf("metadata.name=%s", name);
    struct inf_opts o = {.ns = r->ns, .field_selector = sel};
    struct inf_handlers h = {
        .on_add = on_add,
        .on_update = on_update,
        .on_delete = on_delete,
        .on_synced = on_synced,
        .arg = r,
    };
    r->inf = inf_new(k->base, k->api, ref_kind(kind), &o, &h);
    free(sel);
    inf_start(r->inf);
    k->refs = xrealloc(k->refs, (k->nrefs + 1) * sizeof *k->refs);
    k->refs[k->nrefs++] = r;
    return 0;
}

static int ref_release(enum podref_kind kind, const char *name, void *arg)
{
    struct klet_pod *p = arg;
    struct klet *k = p->k;
    struct klet_ref *r = ref_find(k, kind, p->ns, name);
    if (!r || --r->users > 0)
        return 0;
    for (size_t i = 0; i < k->nrefs; i++)
        if (k->refs[i] == r)
            k->refs[i] = k->refs[--k->nrefs];
    inf_free(r->inf);
    klet_record_ref_forget(k, r->kind, r->ns, r->name);
    rec_drop(r);
    free(r->ns);
    free(r->name);
    free(r);
    return 0;
}

void klet_refs_hold(struct klet_pod *p)
{
    podref_each(p->pod->spec, ref_hold, p);
}

void klet_refs_release(struct klet_pod *p)
{
    podref_each(p->pod->spec, ref_release, p);
}

enum klet_ref_state klet_ref_get(const struct klet_pod *p, enum podref_kind kind, const char *name,
                                 const ProtobufCMessage **obj)
{
    *obj = NULL;
    struct klet_ref *r = ref_find(p->k, kind, p->ns, name);
    if (r && !inf_synced(r->inf) && p->k->offline) {
        if (!r->rec)
            r->rec = klet_record_ref_load(p->k, kind, p->ns, name);
        *obj = r->rec;
        return r->rec ? KREF_FOUND : KREF_PENDING;
    }
    if (!r || !inf_synced(r->inf))
        return KREF_PENDING;
    *obj = inf_get(r->inf, p->ns, name);
    return *obj ? KREF_FOUND : KREF_MISSING;
}

char *klet_ref_missing(enum podref_kind kind, const char *name)
{
    /* Kubernetes' kubelet: NotFound of the resource "configmap" or "secret" */
    return xasprintf("%s \"%s\" not found", kind == PODREF_SECRET ? "secret" : "configmap", name);
}

size_t klet_ref_data(const ProtobufCMessage *obj, enum podref_kind kind, bool binary,
                     struct klet_kv **out)
{
    struct klet_kv *v = NULL;
    size_t n = 0;
    if (kind == PODREF_SECRET) {
        const Coracle__V1__Secret *s = (const void *)obj;
        v = xcalloc(s->n_data + 1, sizeof *v);
        for (size_t i = 0; i < s->n_data; i++)
            if (s->data[i]->key)
                v[n++] = (struct klet_kv){s->data[i]->key, s->data[i]->value.data,
                                          s->data[i]->value.len};
    } else {
        const Coracle__V1__ConfigMap *c = (const void *)obj;
        v = xcalloc(c->n_data + c->n_binarydata + 1, sizeof *v);
        for (size_t i = 0; i < c->n_data; i++)
            if (c->data[i]->key)
                v[n++] = (struct klet_kv){c->data[i]->key, (const uint8_t *)c->data[i]->value,
                                          c->data[i]->value ? strlen(c->data[i]->value) : 0};
        for (size_t i = 0; binary && i < c->n_binarydata; i++)
            if (c->binarydata[i]->key)
                v[n++] = (struct klet_kv){c->binarydata[i]->key, c->binarydata[i]->value.data,
                                          c->binarydata[i]->value.len};
    }
    *out = v;
    return n;
}

const struct klet_kv *klet_kv_find(const struct klet_kv *v, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].key, key))
            return &v[i];
    return NULL;
}

void klet_ref_key(const struct klet_ref *r, enum podref_kind *kind, const char **ns,
                  const char **name)
{
    *kind = r->kind;
    *ns = r->ns;
    *name = r->name;
}
