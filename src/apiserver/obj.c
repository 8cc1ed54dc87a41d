/*
 * obj: protobuf-c object helpers for the apiserver. See obj.h.
 */
#include "config.h"
#include "obj.h"
#include "pb.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

ProtobufCMessage *obj_decode(const ProtobufCMessageDescriptor *d, const void *buf, size_t len)
{
    return pb_decode(d, buf, len);
}

void obj_free(ProtobufCMessage *m)
{
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
}

void *obj_encode(const ProtobufCMessage *m, size_t *len)
{
    return pb_encode(m, len);
}

ProtobufCMessage *obj_clone(const ProtobufCMessage *m)
{
    return pb_clone(m);
}

bool obj_equal(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    return pb_equal(a, b);
}

/* Map entries are messages {1: string key, 2: value}; key sits right after the base. */
static bool is_map_entry(const ProtobufCMessageDescriptor *d)
{
    return d->n_fields == 2 && d->fields[0].id == 1 &&
           d->fields[0].type == PROTOBUF_C_TYPE_STRING && !strcmp(d->fields[0].name, "key") &&
           d->fields[1].id == 2 && d->fields[0].offset == sizeof(ProtobufCMessage);
}

struct map_entry {
    ProtobufCMessage base;
    char *key;
};

static int entry_cmp(const void *a, const void *b)
{
    const struct map_entry *x = *(const struct map_entry *const *)a;
    const struct map_entry *y = *(const struct map_entry *const *)b;
    return strcmp(x->key ? x->key : "", y->key ? y->key : "");
}

void obj_normalize(ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(size_t *)((char *)m + f->quantifier_offset);
            ProtobufCMessage **arr = *(ProtobufCMessage ***)((char *)m + f->offset);
            for (size_t j = 0; j < n; j++)
                obj_normalize(arr[j]);
            if (n > 1 && is_map_entry(f->descriptor))
                qsort(arr, n, sizeof(*arr), entry_cmp);
        } else {
            ProtobufCMessage *sub = *(ProtobufCMessage **)((char *)m + f->offset);
            if (sub)
                obj_normalize(sub);
        }
    }
}

/* A Time or MicroTime with neither field: Go's zero time, as its protobuf carries it. */
static bool zero_time(const ProtobufCMessage *m)
{
    if (m->descriptor != &coracle__v1__time__descriptor &&
        m->descriptor != &coracle__v1__micro_time__descriptor)
        return false;
    const Coracle__V1__Time *t = (const Coracle__V1__Time *)m; /* MicroTime: the same layout */
    return !(t->has_seconds && t->seconds) && !(t->has_nanos && t->nanos);
}
_Static_assert(sizeof(Coracle__V1__Time) == sizeof(Coracle__V1__MicroTime), "Time layout");

/* Whether field f of d is marked +omitzero (few fields are: a scan, done only for zeros). */
static bool omitzero(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
    for (const struct obj_omitzero *z = obj_omitzero; z->msg; z++)
        if (!strcmp(z->field, f->name) && !strcmp(z->msg, d->short_name))
            return true;
    return false;
}

/* Whether the optional integer or bool f of m is set to its zero. */
static bool scalar_zero(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *at = (const char *)m + f->offset;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF || !f->quantifier_offset ||
        !*(const protobuf_c_boolean *)((const char *)m + f->quantifier_offset))
        return false;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return !*(const uint32_t *)at;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return !*(const uint64_t *)at;
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)at;
    default:
        return false;
    }
}

void obj_clear_go_zero(ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (is_map_entry(d))
        return; /* a label's empty value is a value */
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        void *at = (char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (f->type != PROTOBUF_C_TYPE_MESSAGE)
                continue;
            size_t n = *(size_t *)((char *)m + f->quantifier_offset);
            for (size_t j = 0; j < n; j++)
                obj_clear_go_zero((*(ProtobufCMessage ***)at)[j]);
        } else if (f->type == PROTOBUF_C_TYPE_STRING) {
            char **s = at;
            if (*s && !**s && *s != (char *)f->default_value) {
                free(*s);
                *s = NULL;
            }
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            ProtobufCMessage **sub = at;
            if (!*sub)
                continue;
            if (zero_time(*sub)) {
                obj_free(*sub);
                *sub = NULL;
            } else {
                obj_clear_go_zero(*sub);
            }
        } else if (scalar_zero(m, f) && omitzero(d, f)) {
            *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 0;
        }
    }
}

Coracle__V1__ObjectMeta *obj_meta(ProtobufCMessage *m)
{
    Coracle__V1__ObjectMeta *meta = kind_meta(m);
    if (!meta) {
        meta = xmalloc(sizeof(*meta));
        coracle__v1__object_meta__init(meta);
        kind_set_meta(m, meta);
    }
    return meta;
}

void obj_set_str(char **field, const char *v)
{
    free(*field);
    *field = v ? xstrdup(v) : NULL;
}

Coracle__V1__Time *obj_time(int64_t ns)
{
    Coracle__V1__Time *t = xmalloc(sizeof(*t));
    coracle__v1__time__init(t);
    t->has_seconds = 1;
    t->seconds = ns / 1000000000;
    /* Kubernetes' Time has second precision on the wire in practice; keep nanos 0 */
    return t;
}

Coracle__V1__MicroTime *obj_microtime(int64_t ns)
{
    Coracle__V1__MicroTime *t = xmalloc(sizeof(*t));
    coracle__v1__micro_time__init(t);
    t->has_seconds = 1;
    t->seconds = ns / 1000000000;
    t->has_nanos = 1;
    t->nanos = (int32_t)(ns % 1000000000 / 1000 * 1000);
    return t;
}

int64_t obj_time_ns(const Coracle__V1__Time *t)
{
    return t ? t->seconds * 1000000000 + t->nanos : 0;
}

int64_t obj_microtime_ns(const Coracle__V1__MicroTime *t)
{
    return t ? t->seconds * 1000000000 + t->nanos : 0;
}

const char *obj_label(const Coracle__V1__ObjectMeta *m, const char *key)
{
    if (!m)
        return NULL;
    for (size_t i = 0; i < m->n_labels; i++)
        if (m->labels[i]->key && !strcmp(m->labels[i]->key, key))
            return m->labels[i]->value ? m->labels[i]->value : "";
    return NULL;
}

const char *obj_label_get(void *obj, const char *key)
{
    return obj_label(kind_meta(obj), key);
}

static const char *const pod_fields[] = {"metadata.name",
                                         "metadata.namespace",
                                         "spec.nodeName",
                                         "spec.restartPolicy",
                                         "spec.schedulerName",
                                         "spec.serviceAccountName",
                                         "status.phase",
                                         "status.podIP",
                                         "status.nominatedNodeName",
                                         NULL};
static const char *const node_fields[] = {"metadata.name", "spec.unschedulable", NULL};
static const char *const event_fields[] = {"metadata.name",
                                           "metadata.namespace",
                                           "involvedObject.kind",
                                           "involvedObject.namespace",
                                           "involvedObject.name",
                                           "involvedObject.uid",
                                           "involvedObject.apiVersion",
                                           "involvedObject.resourceVersion",
                                           "involvedObject.fieldPath",
                                           "reason",
                                           "reportingComponent",
                                           "source",
                                           "type",
                                           NULL};
static const char *const lease_fields[] = {"metadata.name", "metadata.namespace", NULL};
static const char *const namespace_fields[] = {"metadata.name", "status.phase", NULL};
static const char *const secret_fields[] = {"metadata.name", "metadata.namespace", "type", NULL};

bool obj_field_supported(const struct kind *k, const char *path)
{
    const char *const *f = k == &kind_pod         ? pod_fields
                           : k == &kind_node      ? node_fields
                           : k == &kind_event     ? event_fields
                           : k == &kind_namespace ? namespace_fields
                           : k == &kind_secret    ? secret_fields
                                                  : lease_fields;
    for (; *f; f++)
        if (!strcmp(*f, path))
            return true;
    return false;
}

#define S(x) ((x) ? (x) : "")

const char *obj_field_get(void *argp, const char *path)
{
    struct obj_fields_arg *a = argp;
    const Coracle__V1__ObjectMeta *meta = kind_meta(a->obj);
    if (!strcmp(path, "metadata.name"))
        return meta ? S(meta->name) : "";
    if (!strcmp(path, "metadata.namespace"))
        return meta ? S(meta->namespace_) : "";
    if (a->k == &kind_pod) {
        const Coracle__V1__Pod *p = (const void *)a->obj;
        const Coracle__V1__PodSpec *sp = p->spec;
        const Coracle__V1__PodStatus *st = p->status;
        if (!strcmp(path, "spec.nodeName"))
            return sp ? S(sp->nodename) : "";
        if (!strcmp(path, "spec.restartPolicy"))
            return sp ? S(sp->restartpolicy) : "";
        if (!strcmp(path, "spec.schedulerName"))
            return sp ? S(sp->schedulername) : "";
        if (!strcmp(path, "spec.serviceAccountName"))
            return sp ? S(sp->serviceaccountname) : "";
        if (!strcmp(path, "status.phase"))
            return st ? S(st->phase) : "";
        if (!strcmp(path, "status.podIP"))
            return st ? S(st->podip) : "";
        if (!strcmp(path, "status.nominatedNodeName"))
            return st ? S(st->nominatednodename) : "";
    } else if (a->k == &kind_node) {
        const Coracle__V1__Node *n = (const void *)a->obj;
        if (!strcmp(path, "spec.unschedulable"))
            return n->spec && n->spec->unschedulable ? "true" : "false";
    } else if (a->k == &kind_event) {
        const Coracle__V1__Event *e = (const void *)a->obj;
        const Coracle__V1__ObjectReference *o = e->involvedobject;
        if (!strcmp(path, "involvedObject.kind"))
            return o ? S(o->kind) : "";
        if (!strcmp(path, "involvedObject.namespace"))
            return o ? S(o->namespace_) : "";
        if (!strcmp(path, "involvedObject.name"))
            return o ? S(o->name) : "";
        if (!strcmp(path, "involvedObject.uid"))
            return o ? S(o->uid) : "";
        if (!strcmp(path, "involvedObject.apiVersion"))
            return o ? S(o->apiversion) : "";
        if (!strcmp(path, "involvedObject.resourceVersion"))
            return o ? S(o->resourceversion) : "";
        if (!strcmp(path, "involvedObject.fieldPath"))
            return o ? S(o->fieldpath) : "";
        if (!strcmp(path, "reason"))
            return S(e->reason);
        if (!strcmp(path, "reportingComponent"))
            return S(e->reportingcomponent);
        if (!strcmp(path, "source"))
            return e->source ? S(e->source->component) : "";
        if (!strcmp(path, "type"))
            return S(e->type);
    } else if (a->k == &kind_namespace) {
        const Coracle__V1__Namespace *n = (const void *)a->obj;
        if (!strcmp(path, "status.phase"))
            return n->status ? S(n->status->phase) : "";
    } else if (a->k == &kind_secret) {
        if (!strcmp(path, "type"))
            return S(((const Coracle__V1__Secret *)a->obj)->type);
    }
    return NULL;
}

int obj_check_field_selector(const struct kind *k, const char *fs, char **err)
{
    if (!fs)
        return 0;
    const char *p = fs;
    while (*p) {
        /* a term's key runs up to its first unescaped '=' or '!=' */
        const char *q = p;
        /* room for the key as written (not strlen(p): quadratic over the terms) */
        while (*q && *q != ',' && *q != '=' && !(q[0] == '!' && q[1] == '='))
            q += *q == '\\' && q[1] ? 2 : 1;
        char *key = xmalloc((size_t)(q - p) + 1);
        size_t kl = 0;
        q = p;
        while (*q && *q != ',' && *q != '=' && !(q[0] == '!' && q[1] == '=')) {
            if (*q == '\\' && q[1])
                q++;
            if (*q != ' ')
                key[kl++] = *q;
            q++;
        }
        key[kl] = 0;
        if (kl && !obj_field_supported(k, key)) {
            *err = xasprintf("field label not supported: %s", key);
            free(key);
            return -1;
        }
        free(key);
        /* skip to the next unescaped ',' */
        while (*q && *q != ',') {
            if (*q == '\\' && q[1])
                q++;
            q++;
        }
        p = *q ? q + 1 : q;
    }
    return 0;
}

const char *obj_pod_node(const ProtobufCMessage *pod)
{
    const Coracle__V1__Pod *p = (const void *)pod;
    return p->spec && p->spec->nodename ? p->spec->nodename : "";
}

/* Below this many terms x labels, lookups one by one beat building the merge's array. */
#define LABEL_MERGE_MIN 64

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct sel_label *)a)->key, ((const struct sel_label *)b)->key);
}

bool obj_match_labels(const sel_t *s, const ProtobufCMessage *obj)
{
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    size_t n = m ? m->n_labels : 0;
    if (sel_count(s) * n <= LABEL_MERGE_MIN)
        return sel_match(s, obj_label_get, (void *)obj);
    struct sel_label *l = xmalloc(n * sizeof(*l));
    size_t k = 0;
    bool sorted = true;
    for (size_t i = 0; i < n; i++) {
        const Coracle__V1__ObjectMeta__LabelsEntry *e = m->labels[i];
        if (!e->key)
            continue;
        l[k] = (struct sel_label){e->key, e->value ? e->value : ""};
        if (k && strcmp(l[k - 1].key, e->key) > 0)
            sorted = false;
        k++;
    }
    /* stored objects have theirs sorted already (obj_normalize), so that the
     * first of duplicate keys is obj_label's */
    if (!sorted)
        qsort(l, k, sizeof(*l), label_cmp);
    bool r = sel_match_sorted(s, l, k);
    free(l);
    return r;
}
