/*
 * The root CA certificate publisher, as Kubernetes' (pkg/controller/
 * certificates/rootcacertpublisher): every namespace has a ConfigMap
 * kube-root-ca.crt whose ca.crt is the CA that verifies the apiserver
 * (--root-ca-file), for the ca.crt file of the pods' projected
 * ServiceAccount volumes. A namespace added, or the ConfigMap changed or
 * deleted, syncs the namespace: the ConfigMap is created, or put back to
 * exactly {ca.crt} with Kubernetes' description annotation. Off when the
 * manager has no root CA.
 */
#include "config.h"

#include "controllers.h"
#include "grpc.h"
#include "pb.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define ROOT_CA_CM "kube-root-ca.crt"
#define DESC_KEY "kubernetes.io/description"
#define DESC                                                                                       \
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "      \
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "      \
    "guaranteed across distributions of Kubernetes clusters."

static void ns_added(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    (void)inf;
    const Coracle__V1__Namespace *ns = (const void *)obj;
    if (ns->metadata && ns->metadata->name)
        ctrl_enqueue(arg, ns->metadata->name);
}

static void ns_updated(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                       void *arg)
{
    (void)old;
    ns_added(inf, obj, arg);
}

/* Only the ConfigMap this controller owns concerns it: its namespace is synced. */
static void cm_changed(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    (void)inf;
    const Coracle__V1__ConfigMap *c = (const void *)obj;
    if (c->metadata && c->metadata->name && !strcmp(c->metadata->name, ROOT_CA_CM) &&
        c->metadata->namespace_)
        ctrl_enqueue(arg, c->metadata->namespace_);
}

static void cm_updated(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                       void *arg)
{
    (void)old;
    cm_changed(inf, obj, arg);
}

static void *rootca_setup(cm_t *cm, ctrl_t *c)
{
    if (!cm_root_ca(cm)) {
        log_info("%s: no --root-ca-file: kube-root-ca.crt ConfigMaps are not published",
                 ctrl_name(c));
        return NULL;
    }
    struct inf_handlers nh = {ns_added, ns_updated, NULL, NULL, c};
    cm_on(cm, &kind_namespace, &nh);
    struct inf_handlers ch = {NULL, cm_updated, cm_changed, NULL, c};
    cm_on(cm, &kind_configmap, &ch);
    return NULL;
}

static const char *map_get(Coracle__V1__ConfigMap__DataEntry *const *e, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++)
        if (e[i]->key && !strcmp(e[i]->key, k))
            return e[i]->value ? e[i]->value : "";
    return NULL;
}

/* Whether c is exactly what is published: data {ca.crt}, the description annotation. */
static bool current(const Coracle__V1__ConfigMap *c, const char *ca)
{
    const char *d = map_get(c->data, c->n_data, "ca.crt");
    const char *a = NULL;
    for (size_t i = 0; c->metadata && i < c->metadata->n_annotations; i++)
        if (!strcmp(c->metadata->annotations[i]->key, DESC_KEY))
            a = c->metadata->annotations[i]->value;
    return c->n_data == 1 && d && !strcmp(d, ca) && a && !strcmp(a, DESC) && !c->n_binarydata;
}

/* Sets c's data to {ca.crt: ca} and its description annotation. */
static void publish(Coracle__V1__ConfigMap *c, const char *ca)
{
    for (size_t i = 0; i < c->n_data; i++)
        protobuf_c_message_free_unpacked(&c->data[i]->base, NULL);
    for (size_t i = 0; i < c->n_binarydata; i++)
        protobuf_c_message_free_unpacked(&c->binarydata[i]->base, NULL);
    free(c->binarydata);
    c->binarydata = NULL;
    c->n_binarydata = 0;
    c->data = xrealloc(c->data, sizeof(*c->data));
    c->n_data = 1;
    c->data[0] = xmalloc(sizeof(*c->data[0]));
    coracle__v1__config_map__data_entry__init(c->data[0]);
    c->data[0]->key = xstrdup("ca.crt");
    c->data[0]->value = xstrdup(ca);
    Coracle__V1__ObjectMeta *m = c->metadata;
    for (size_t i = 0; i < m->n_annotations; i++) {
        if (!strcmp(m->annotations[i]->key, DESC_KEY)) {
            free(m->annotations[i]->value);
            m->annotations[i]->value = xstrdup(DESC);
            return;
        }
    }
    m->annotations = xrealloc(m->annotations, (m->n_annotations + 1) * sizeof(*m->annotations));
    Coracle__V1__ObjectMeta__AnnotationsEntry *a = xmalloc(sizeof(*a));
    coracle__v1__object_meta__annotations_entry__init(a);
    a->key = xstrdup(DESC_KEY);
    a->value = xstrdup(DESC);
    m->annotations[m->n_annotations++] = a;
}

struct write {
    ctrl_t *c;
    char *key;
};

static void written(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    (void)resp;
    struct write *w = arg;
    /* ALREADY_EXISTS/ABORTED: the cache is behind; its change syncs again */
    bool ok = code == GRPC_OK || code == GRPC_ALREADY_EXISTS || code == GRPC_ABORTED;
    ctrl_done(w->c, w->key, ok, message);
    free(w->key);
    free(w);
}

static void rootca_sync(ctrl_t *c, const char *key, void *state)
{
    (void)state;
    cm_t *cm = ctrl_cm(c);
    const char *ca = cm_root_ca(cm);
    const Coracle__V1__Namespace *ns = (const void *)cm_get(cm, &kind_namespace, NULL, key);
    if (!ca || !ns || (ns->metadata && ns->metadata->deletiontimestamp)) {
        ctrl_done(c, key, true, NULL); /* gone or going: nothing to publish into */
        return;
    }
    const Coracle__V1__ConfigMap *have = (const void *)cm_get(cm, &kind_configmap, key, ROOT_CA_CM);
    if (have && current(have, ca)) {
        ctrl_done(c, key, true, NULL);
        return;
    }
    Coracle__V1__ConfigMap *want;
    if (have) {
        want = (void *)pb_clone(&have->base);
    } else {
        want = xmalloc(sizeof(*want));
        coracle__v1__config_map__init(want);
        want->metadata = xmalloc(sizeof(*want->metadata));
        coracle__v1__object_meta__init(want->metadata);
        want->metadata->name = xstrdup(ROOT_CA_CM);
        want->metadata->namespace_ = xstrdup(key);
    }
    publish(want, ca);
    struct write *w = xmalloc(sizeof(*w));
    w->c = c;
    w->key = xstrdup(key);
    cm_call(cm, &kind_configmap, have ? "Update" : "Create", &want->base, written, w);
    protobuf_c_message_free_unpacked(&want->base, NULL);
}

const struct ctrl_def ctrl_rootcacertpublisher = {
    .name = "root-ca-cert-publisher",
    .workers = 5,
    .setup = rootca_setup,
    .sync = rootca_sync,
};
