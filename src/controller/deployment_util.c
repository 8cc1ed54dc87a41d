/*
 * The Deployment controller's arithmetic, as Kubernetes'
 * pkg/controller/deployment/util: see deployment_int.h.
 */
#include "config.h"

#include "deployment_int.h"
#include "pb.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- spec */

int32_t dep_replicas(const Coracle__V1__Deployment *d)
{
    return d->spec && d->spec->has_replicas ? d->spec->replicas : 1;
}

bool dep_rolling(const Coracle__V1__Deployment *d)
{
    const Coracle__V1__DeploymentStrategy *s = d->spec ? d->spec->strategy : NULL;
    return !s || !s->type || !*s->type || !strcmp(s->type, "RollingUpdate");
}

int32_t dep_progress_deadline(const Coracle__V1__Deployment *d)
{
    if (!d->spec || !d->spec->has_progressdeadlineseconds)
        return 600;
    return d->spec->progressdeadlineseconds == INT32_MAX ? -1 : d->spec->progressdeadlineseconds;
}

int32_t dep_history_limit(const Coracle__V1__Deployment *d)
{
    return d->spec && d->spec->has_revisionhistorylimit ? d->spec->revisionhistorylimit : 10;
}

int32_t dep_min_ready(const Coracle__V1__Deployment *d)
{
    return d->spec && d->spec->has_minreadyseconds ? d->spec->minreadyseconds : 0;
}

int32_t dep_rs_replicas(const Coracle__V1__ReplicaSet *rs)
{
    return rs->spec && rs->spec->has_replicas ? rs->spec->replicas : 1;
}

int dep_scaled(const Coracle__V1__IntOrString *v, int32_t total, bool round_up, int32_t *out)
{
    *out = 0;
    if (!v)
        return 0;
    if (v->type != 1) {
        *out = v->intval;
        return 0;
    }
    const char *s = v->strval ? v->strval : "";
    char *end;
    errno = 0;
    long pct = strtol(s, &end, 10);
    if (end == s || strcmp(end, "%") || errno)
        return -1;
    double scaled = (double)pct * total / 100.0;
    *out = (int32_t)(round_up ? ceil(scaled) : floor(scaled));
    return 0;
}

/* ResolveFenceposts over the strategy's values, 25% each when unset (the API defaults). */
static void fenceposts(const Coracle__V1__Deployment *d, int32_t *surge, int32_t *unavailable)
{
    static const Coracle__V1__IntOrString quarter = {
        PROTOBUF_C_MESSAGE_INIT(&coracle__v1__int_or_string__descriptor),
        1,
        1,
        0,
        0,
        (char *)"25%"};
    const Coracle__V1__DeploymentStrategy *s = d->spec ? d->spec->strategy : NULL;
    const Coracle__V1__RollingUpdateDeployment *ru = s ? s->rollingupdate : NULL;
    int32_t desired = dep_replicas(d);
    dep_scaled(ru ? ru->maxsurge : &quarter, desired, true, surge);
    dep_scaled(ru ? ru->maxunavailable : &quarter, desired, false, unavailable);
    if (*surge == 0 && *unavailable == 0)
        *unavailable = 1;
}

int32_t dep_max_surge(const Coracle__V1__Deployment *d)
{
    int32_t surge, unavailable;
    if (!dep_rolling(d))
        return 0;
    fenceposts(d, &surge, &unavailable);
    return surge;
}

int32_t dep_max_unavailable(const Coracle__V1__Deployment *d)
{
    int32_t surge, unavailable;
    if (!dep_rolling(d) || dep_replicas(d) == 0)
        return 0;
    fenceposts(d, &surge, &unavailable);
    return unavailable > dep_replicas(d) ? dep_replicas(d) : unavailable;
}

/* ------------------------------------------------------ template hash */

typedef Coracle__V1__ObjectMeta__LabelsEntry map_entry;
_Static_assert(sizeof(Coracle__V1__ObjectMeta__AnnotationsEntry) == sizeof(map_entry), "layout");
_Static_assert(sizeof(Coracle__V1__LabelSelector__MatchLabelsEntry) == sizeof(map_entry), "layout");

static int entry_cmp(const void *a, const void *b)
{
    return strcmp((*(map_entry *const *)a)->key, (*(map_entry *const *)b)->key);
}

/* Whether the n bytes at p are all 0. */
static bool zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* Unsets a singular scalar, string or bytes field f of m that holds its zero value. */
static void prune_scalar(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    char *at = (char *)m + f->offset;
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        char **s = (char **)at;
        if (*s && !**s) {
            if (*s != f->default_value)
                free(*s);
            *s = NULL;
        }
        return;
    }
    if (f->label != PROTOBUF_C_LABEL_OPTIONAL || !f->quantifier_offset)
        return;
    protobuf_c_boolean *has = (protobuf_c_boolean *)((char *)m + f->quantifier_offset);
    if (f->type == PROTOBUF_C_TYPE_BYTES)
        *has = *has && ((ProtobufCBinaryData *)at)->len > 0;
    else
        *has = *has && !zero(at, pb_elt_size(f->type));
}

/*
 * Drops what holds nothing in m: zero scalars, empty strings, submessages
 * left empty, and the fields proto/ does not know (kept by protobuf-c:
 * a client's protobuf may carry Kubernetes fields coracle has not got,
 * such as PodSpec's deprecated serviceAccount). Go's value fields make no
 * difference between zero and absent, so a template is the same whether
 * it came as protobuf (every string written, empty or not) or through
 * JSON ("resources": {}, empty strings left out), as kubectl's rollout
 * undo sends it back.
 */
static void prune(ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        free(m->unknown_fields[i].data);
    free(m->unknown_fields);
    m->unknown_fields = NULL;
    m->n_unknown_fields = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        void *at = (char *)m + f->offset;
        if (f->type != PROTOBUF_C_TYPE_MESSAGE) {
            if (f->label != PROTOBUF_C_LABEL_REPEATED)
                prune_scalar(m, f);
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(size_t *)((char *)m + f->quantifier_offset);
            for (size_t j = 0; j < n; j++)
                prune((*(ProtobufCMessage ***)at)[j]);
            continue;
        }
        ProtobufCMessage **sub = at;
        if (!*sub)
            continue;
        prune(*sub);
        if (protobuf_c_message_get_packed_size(*sub) == 0) {
            protobuf_c_message_free_unpacked(*sub, NULL);
            *sub = NULL;
        }
    }
}

/*
 * The template's bytes as equality and the hash see them: empty parts
 * dropped, the label and annotation maps sorted, the hash label left out.
 */
static void *canonical(const Coracle__V1__PodTemplateSpec *t, size_t *len)
{
    Coracle__V1__PodTemplateSpec *c = (Coracle__V1__PodTemplateSpec *)pb_clone(&t->base);
    Coracle__V1__ObjectMeta *m = c->metadata;
    if (m) {
        dep_map_del((void ***)&m->labels, &m->n_labels, DEP_HASH_LABEL);
        if (m->n_labels > 1)
            qsort(m->labels, m->n_labels, sizeof(*m->labels), entry_cmp);
        if (m->n_annotations > 1)
            qsort(m->annotations, m->n_annotations, sizeof(*m->annotations), entry_cmp);
    }
    prune(&c->base);
    void *bytes = pb_encode(&c->base, len);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    return bytes;
}

bool dep_template_equal(const Coracle__V1__PodTemplateSpec *a,
                        const Coracle__V1__PodTemplateSpec *b)
{
    if (!a || !b)
        return a == b;
    size_t la, lb;
    void *ba = canonical(a, &la), *bb = canonical(b, &lb);
    bool eq = la == lb && !memcmp(ba, bb, la);
    free(ba);
    free(bb);
    return eq;
}

static uint32_t fnv32a(uint32_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

void dep_safe_encode(char *s)
{
    static const char alphanums[] = "bcdfghjklmnpqrstvwxz2456789";
    for (; *s; s++)
        *s = alphanums[(unsigned char)*s % (sizeof(alphanums) - 1)];
}

/*
 * Kubernetes' ComputeHash feeds FNV-32a with a printout of the Go struct
 * (DeepHashObject, spew's format), which has no equivalent outside Go:
 * here the template's protobuf bytes take its place, in the canonical
 * form dep_template_equal compares (protobuf-c writes fields in number
 * order; maps sorted, empty parts dropped), so that equal templates have
 * one hash. The rest is Kubernetes': the collision count as 8 bytes, its low
 * 32 bits little-endian, the 32-bit sum printed in decimal and each
 * digit mapped through SafeEncodeString's alphabet. The names differ
 * from Kubernetes' for the same template; their shape does not.
 */
void dep_template_hash(const Coracle__V1__PodTemplateSpec *t, const int32_t *cc, char out[16])
{
    uint32_t h = 2166136261u;
    if (t) {
        size_t len;
        uint8_t *bytes = canonical(t, &len);
        h = fnv32a(h, bytes, len);
        free(bytes);
    }
    if (cc) {
        uint8_t le[8] = {0};
        uint32_t v = (uint32_t)*cc;
        for (int i = 0; i < 4; i++)
            le[i] = (uint8_t)(v >> (8 * i));
        h = fnv32a(h, le, sizeof(le));
    }
    snprintf(out, 16, "%" PRIu32, h);
    dep_safe_encode(out);
}

/* ------------------------------------------------- maps in messages */

const char *dep_map_get(void *const *v, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        const map_entry *e = v[i];
        if (e->key && !strcmp(e->key, key))
            return e->value ? e->value : "";
    }
    return NULL;
}

bool dep_map_set(void ***v, size_t *n, const ProtobufCMessageDescriptor *d, const char *key,
                 const char *value)
{
    for (size_t i = 0; i < *n; i++) {
        map_entry *e = (*v)[i];
        if (e->key && !strcmp(e->key, key)) {
            if (e->value && !strcmp(e->value, value))
                return false;
            free(e->value);
            e->value = xstrdup(value);
            return true;
        }
    }
    map_entry *e = xmalloc(sizeof(*e));
    protobuf_c_message_init(d, e);
    e->key = xstrdup(key);
    e->value = xstrdup(value);
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = e;
    return true;
}

void dep_map_del(void ***v, size_t *n, const char *key)
{
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        map_entry *e = (*v)[i];
        if (e->key && !strcmp(e->key, key))
            protobuf_c_message_free_unpacked(&e->base, NULL);
        else
            (*v)[k++] = e;
    }
    *n = k;
}

const char *dep_ann(const Coracle__V1__ObjectMeta *m, const char *key)
{
    return m ? dep_map_get((void *const *)m->annotations, m->n_annotations, key) : NULL;
}

bool dep_ann_set(Coracle__V1__ObjectMeta *m, const char *key, const char *value)
{
    return dep_map_set((void ***)&m->annotations, &m->n_annotations,
                       &coracle__v1__object_meta__annotations_entry__descriptor, key, value);
}

bool dep_ann_int(const Coracle__V1__ObjectMeta *m, const char *key, int64_t *out)
{
    const char *s = dep_ann(m, key);
    char *end;
    if (!s || !*s)
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno)
        return false;
    *out = v;
    return true;
}

/* ------------------------------------------ ReplicaSet annotations */

int64_t dep_revision(const Coracle__V1__ReplicaSet *rs)
{
    int64_t v;
    return dep_ann_int(rs->metadata, DEP_REVISION, &v) ? v : 0;
}

static bool set_int_ann(Coracle__V1__ObjectMeta *m, const char *key, int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return dep_ann_set(m, key, buf);
}

bool dep_set_replicas_ann(Coracle__V1__ReplicaSet *rs, int32_t desired, int32_t max)
{
    bool a = set_int_ann(rs->metadata, DEP_DESIRED, desired);
    bool b = set_int_ann(rs->metadata, DEP_MAX, max);
    return a || b;
}

bool dep_ann_skipped(const char *key)
{
    static const char *const skip[] = {
        "kubectl.kubernetes.io/last-applied-configuration",
        DEP_REVISION,
        DEP_REVISION_HISTORY,
        DEP_DESIRED,
        DEP_MAX,
        "deprecated.deployment.rollback.to",
    };
    for (size_t i = 0; i < sizeof(skip) / sizeof(*skip); i++)
        if (!strcmp(key, skip[i]))
            return true;
    return false;
}

/* Appends old to the comma list of former revisions, dropping the oldest beyond the limit. */
static void keep_history(Coracle__V1__ObjectMeta *m, const char *old)
{
    const char *hist = dep_ann(m, DEP_REVISION_HISTORY);
    if (!hist || !*hist) {
        dep_ann_set(m, DEP_REVISION_HISTORY, old);
        return;
    }
    const char *start = hist;
    size_t total = strlen(hist) + strlen(old) + 1;
    while (total > DEP_HISTORY_CHARS && start) {
        const char *comma = strchr(start, ',');
        total -= (comma ? (size_t)(comma - start) : strlen(start)) + 1;
        start = comma ? comma + 1 : NULL;
    }
    if (total > DEP_HISTORY_CHARS)
        return; /* Kubernetes logs and leaves it */
    char *joined = start ? xconcat(start, ",", old, NULL) : xstrdup(old);
    dep_ann_set(m, DEP_REVISION_HISTORY, joined);
    free(joined);
}

bool dep_set_new_rs_ann(const Coracle__V1__Deployment *d, Coracle__V1__ReplicaSet *rs,
                        const char *new_revision, bool exists)
{
    bool changed = false;
    const Coracle__V1__ObjectMeta *dm = d->metadata;
    for (size_t i = 0; dm && i < dm->n_annotations; i++) {
        const Coracle__V1__ObjectMeta__AnnotationsEntry *e = dm->annotations[i];
        if (e->key && !dep_ann_skipped(e->key))
            changed |= dep_ann_set(rs->metadata, e->key, e->value ? e->value : "");
    }
    const char *cur = dep_ann(rs->metadata, DEP_REVISION);
    char *old = cur ? xstrdup(cur) : NULL;
    int64_t old_rev = 0, new_rev = strtoll(new_revision, NULL, 10);
    if (old && *old && !dep_ann_int(rs->metadata, DEP_REVISION, &old_rev)) {
        free(old); /* Kubernetes refuses to touch a malformed revision */
        return false;
    }
    if (old_rev < new_rev) {
        dep_ann_set(rs->metadata, DEP_REVISION, new_revision);
        changed = true;
        if (old) /* a rollback to this ReplicaSet: its former revisions are kept */
            keep_history(rs->metadata, old);
    }
    free(old);
    if (!exists)
        changed |= dep_set_replicas_ann(rs, dep_replicas(d), dep_replicas(d) + dep_max_surge(d));
    return changed;
}

/* ------------------------------------------------------ ReplicaSets */

static int64_t created_s(const Coracle__V1__ReplicaSet *rs)
{
    const Coracle__V1__Time *t = rs->metadata ? rs->metadata->creationtimestamp : NULL;
    return t ? t->seconds : 0;
}

static int by_creation(const Coracle__V1__ReplicaSet *a, const Coracle__V1__ReplicaSet *b)
{
    if (created_s(a) != created_s(b))
        return created_s(a) < created_s(b) ? -1 : 1;
    const char *na = a->metadata && a->metadata->name ? a->metadata->name : "";
    const char *nb = b->metadata && b->metadata->name ? b->metadata->name : "";
    return strcmp(na, nb);
}

#define RS_ARG(p) (*(const Coracle__V1__ReplicaSet *const *)(p))

int dep_by_creation(const void *a, const void *b)
{
    return by_creation(RS_ARG(a), RS_ARG(b));
}

int dep_by_size_older(const void *a, const void *b)
{
    int32_t ra = dep_rs_replicas(RS_ARG(a)), rb = dep_rs_replicas(RS_ARG(b));
    if (ra != rb)
        return ra > rb ? -1 : 1;
    return by_creation(RS_ARG(a), RS_ARG(b));
}

int dep_by_size_newer(const void *a, const void *b)
{
    int32_t ra = dep_rs_replicas(RS_ARG(a)), rb = dep_rs_replicas(RS_ARG(b));
    if (ra != rb)
        return ra > rb ? -1 : 1;
    return by_creation(RS_ARG(b), RS_ARG(a));
}

int dep_by_revision(const void *a, const void *b)
{
    int64_t ra = dep_revision(RS_ARG(a)), rb = dep_revision(RS_ARG(b));
    if (ra != rb)
        return ra < rb ? -1 : 1;
    return by_creation(RS_ARG(a), RS_ARG(b));
}

/* getReplicaSetFraction: rs's share of the new size, relative to its current one. */
static int32_t fraction(const Coracle__V1__ReplicaSet *rs, const Coracle__V1__Deployment *d)
{
    int32_t size = dep_rs_replicas(rs);
    if (dep_replicas(d) == 0)
        return -size;
    int32_t max_now = dep_replicas(d) + dep_max_surge(d);
    int64_t before = 0;
    if (!dep_ann_int(rs->metadata, DEP_MAX, &before) || before == 0) {
        /* replicas edited by hand: the deployment's size stands in */
        before = d->status ? d->status->replicas : 0;
        if (before == 0)
            return 0;
    }
    double scaled = (double)size * max_now / (double)before;
    return (int32_t)lround(scaled) - size;
}

int32_t dep_proportion(const Coracle__V1__ReplicaSet *rs, const Coracle__V1__Deployment *d,
                       int32_t to_add, int32_t added)
{
    if (!rs || dep_rs_replicas(rs) == 0 || to_add == 0 || to_add == added)
        return 0;
    int32_t f = fraction(rs, d), allowed = to_add - added;
    if (to_add > 0)
        return f < allowed ? f : allowed;
    return f > allowed ? f : allowed;
}

/* ------------------------------------------------------- conditions */

Coracle__V1__DeploymentCondition *dep_cond_get(const Coracle__V1__DeploymentStatus *st,
                                               const char *type)
{
    for (size_t i = 0; st && i < st->n_conditions; i++)
        if (st->conditions[i]->type && !strcmp(st->conditions[i]->type, type))
            return st->conditions[i];
    return NULL;
}

void dep_cond_del(Coracle__V1__DeploymentStatus *st, const char *type)
{
    size_t k = 0;
    for (size_t i = 0; i < st->n_conditions; i++) {
        Coracle__V1__DeploymentCondition *c = st->conditions[i];
        if (c->type && !strcmp(c->type, type))
            protobuf_c_message_free_unpacked(&c->base, NULL);
        else
            st->conditions[k++] = c;
    }
    st->n_conditions = k;
}

static Coracle__V1__Time *new_time(int64_t s)
{
    Coracle__V1__Time *t = xmalloc(sizeof(*t));
    coracle__v1__time__init(t);
    t->has_seconds = 1;
    t->seconds = s;
    return t;
}

/* Appends a new condition; its transition time is keep_transition's if >= 0. */
static void cond_add(Coracle__V1__DeploymentStatus *st, const char *type, const char *status,
                     const char *reason, const char *message, int64_t now_s,
                     int64_t keep_transition)
{
    Coracle__V1__DeploymentCondition *c = xmalloc(sizeof(*c));
    coracle__v1__deployment_condition__init(c);
    c->type = xstrdup(type);
    c->status = xstrdup(status);
    c->reason = xstrdup(reason);
    c->message = xstrdup(message);
    c->lastupdatetime = new_time(now_s);
    c->lasttransitiontime = new_time(keep_transition >= 0 ? keep_transition : now_s);
    st->conditions = xrealloc(st->conditions, (st->n_conditions + 1) * sizeof(*st->conditions));
    st->conditions[st->n_conditions++] = c;
}

static int64_t transition_s(const Coracle__V1__DeploymentCondition *c)
{
    return c->lasttransitiontime ? c->lasttransitiontime->seconds : 0;
}

void dep_cond_set(Coracle__V1__DeploymentStatus *st, const char *type, const char *status,
                  const char *reason, const char *message, int64_t now_s)
{
    const Coracle__V1__DeploymentCondition *cur = dep_cond_get(st, type);
    if (cur && cur->status && !strcmp(cur->status, status) && cur->reason &&
        !strcmp(cur->reason, reason))
        return;
    int64_t keep = cur && cur->status && !strcmp(cur->status, status) ? transition_s(cur) : -1;
    dep_cond_del(st, type);
    cond_add(st, type, status, reason, message, now_s, keep);
}

void dep_cond_replace(Coracle__V1__DeploymentStatus *st, const char *type, const char *status,
                      const char *reason, const char *message, int64_t now_s)
{
    const Coracle__V1__DeploymentCondition *cur = dep_cond_get(st, type);
    int64_t keep = cur && cur->status && !strcmp(cur->status, status) ? transition_s(cur) : -1;
    dep_cond_del(st, type);
    cond_add(st, type, status, reason, message, now_s, keep);
}

bool dep_complete(const Coracle__V1__Deployment *d, const Coracle__V1__DeploymentStatus *st)
{
    int32_t want = dep_replicas(d);
    int64_t gen = d->metadata ? d->metadata->generation : 0;
    return st->updatedreplicas == want && st->replicas == want && st->availablereplicas == want &&
           st->observedgeneration >= gen;
}

bool dep_progressing(const Coracle__V1__Deployment *d, const Coracle__V1__DeploymentStatus *st)
{
    static const Coracle__V1__DeploymentStatus none = CORACLE__V1__DEPLOYMENT_STATUS__INIT;
    const Coracle__V1__DeploymentStatus *old = d->status ? d->status : &none;
    int32_t old_old = old->replicas - old->updatedreplicas;
    int32_t new_old = st->replicas - st->updatedreplicas;
    return st->updatedreplicas > old->updatedreplicas || new_old < old_old ||
           st->readyreplicas > old->readyreplicas || st->availablereplicas > old->availablereplicas;
}

bool dep_timed_out(const Coracle__V1__Deployment *d, const Coracle__V1__DeploymentStatus *st,
                   int64_t now_s)
{
    int32_t deadline = dep_progress_deadline(d);
    const Coracle__V1__DeploymentCondition *c = dep_cond_get(st, "Progressing");
    if (deadline < 0 || !c || !c->reason)
        return false;
    if (!strcmp(c->reason, "NewReplicaSetAvailable"))
        return false;
    if (!strcmp(c->reason, "ProgressDeadlineExceeded"))
        return true;
    int64_t from = c->lastupdatetime ? c->lastupdatetime->seconds : 0;
    return from + deadline < now_s;
}
