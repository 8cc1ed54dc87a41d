/*
 * The Deployment controller, as Kubernetes' (pkg/controller/deployment):
 * a Deployment owns ReplicaSets named <deployment>-<pod-template-hash>,
 * one per template it has had; the one whose template is the
 * Deployment's is the new one, the others are old. A rollout moves
 * replicas from the old to the new: RollingUpdate within maxSurge and
 * maxUnavailable (rolling steps below), Recreate by emptying the old ones
 * and waiting for their pods to be gone first. A change of
 * spec.replicas mid-rollout is spread over them in proportion; a paused
 * Deployment only scales. Old ReplicaSets beyond revisionHistoryLimit
 * with nothing left in them are deleted. Status counts the ReplicaSets'
 * replicas and carries the Available and Progressing conditions
 * (ProgressDeadlineExceeded after progressDeadlineSeconds without
 * progress: the key is requeued for that moment).
 *
 * A sync works on copies of the cached objects, changing them as
 * Kubernetes' sync changes its objects, and writes every changed
 * ReplicaSet once at the end (an Update carrying the resourceVersion
 * read: a stale cache gets a conflict and a retry), then the
 * Deployment's revision annotation (Update) and its status
 * (UpdateStatus). Making the new ReplicaSet is the one write the sync
 * waits for, as Kubernetes' sync carries on with the created object; an
 * expectation keeps the next sync from making it twice before the cache
 * has seen it.
 */
#include "config.h"

#include "controllers.h"
#include "deployment_int.h"
#include "pb.h"
#include "sel.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define GRPC_ALREADY_EXISTS 6
#define GRPC_NOT_FOUND 5

/* --------------------------------------------------------------- handlers */

static void enqueue_ns_name(ctrl_t *c, const char *ns, const char *name)
{
    char *key = xconcat(ns ? ns : "", "/", name, NULL);
    ctrl_enqueue(c, key);
    free(key);
}

static const char *ns_of(const ProtobufCMessage *obj)
{
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    return m && m->namespace_ ? m->namespace_ : "";
}

/* The Deployment controlling obj (a ReplicaSet), or NULL. */
static const Coracle__V1__OwnerReference *deployment_ref(const ProtobufCMessage *obj)
{
    const Coracle__V1__OwnerReference *o = cm_controller_of(obj);
    return o && o->kind && o->name && !strcmp(o->kind, "Deployment") ? o : NULL;
}

struct orphan_walk {
    ctrl_t *c;
    const Coracle__V1__ReplicaSet *rs;
};

static int offer_orphan(const ProtobufCMessage *obj, void *arg)
{
    struct orphan_walk *w = arg;
    const Coracle__V1__Deployment *d = (const Coracle__V1__Deployment *)obj;
    struct sel *sel;
    if (strcmp(ns_of(obj), ns_of(&w->rs->base)) || !d->spec ||
        !cm_selector(d->spec->selector, &sel))
        return 0;
    if (!sel_empty(sel) && cm_labels_match(sel, w->rs->metadata))
        enqueue_ns_name(w->c, ns_of(obj), d->metadata->name);
    sel_free(sel);
    return 0;
}

/* A ReplicaSet changed: its Deployment, or for an orphan every Deployment selecting it. */
static void enqueue_owner(ctrl_t *c, const ProtobufCMessage *obj)
{
    const Coracle__V1__OwnerReference *o = deployment_ref(obj);
    if (o) {
        enqueue_ns_name(c, ns_of(obj), o->name);
        return;
    }
    if (cm_controller_of(obj))
        return;
    struct orphan_walk w = {c, (const Coracle__V1__ReplicaSet *)obj};
    inf_foreach(cm_informer(ctrl_cm(c), &kind_deployment), offer_orphan, &w);
}

static void rs_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    ctrl_t *c = arg;
    const Coracle__V1__OwnerReference *o = deployment_ref(obj);
    if (o) {
        char *key = xconcat(ns_of(obj), "/", o->name, NULL);
        cm_observed(c, key, 1, 0);
        free(key);
    }
    enqueue_owner(c, obj);
}

static void rs_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                      void *arg)
{
    const Coracle__V1__OwnerReference *a = cm_controller_of(old), *b = cm_controller_of(obj);
    if (a && (!b || strcmp(a->uid ? a->uid : "", b->uid ? b->uid : "")))
        enqueue_owner(arg, old);
    enqueue_owner(arg, obj);
}

static void rs_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    const Coracle__V1__OwnerReference *o = deployment_ref(obj);
    if (o)
        enqueue_ns_name(arg, ns_of(obj), o->name);
}

/* A pod gone: a Recreate rollout may have been waiting for it. */
static void pod_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    ctrl_t *c = arg;
    const Coracle__V1__OwnerReference *o = cm_controller_of(obj);
    if (!o || !o->kind || !o->name || strcmp(o->kind, "ReplicaSet"))
        return;
    const ProtobufCMessage *rs = cm_get(ctrl_cm(c), &kind_replicaset, ns_of(obj), o->name);
    const Coracle__V1__OwnerReference *dref = rs ? deployment_ref(rs) : NULL;
    if (!dref)
        return;
    const Coracle__V1__Deployment *d = (const Coracle__V1__Deployment *)cm_get(
        ctrl_cm(c), &kind_deployment, ns_of(obj), dref->name);
    if (d && !dep_rolling(d))
        enqueue_ns_name(c, ns_of(obj), dref->name);
}

static void d_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    char *key = cm_key(obj);
    ctrl_enqueue(arg, key);
    free(key);
}

static void d_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                     void *arg)
{
    d_add(inf, obj, arg);
}

static void d_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    char *key = cm_key(obj);
    cm_expect_forget(arg, key);
    ctrl_enqueue(arg, key);
    free(key);
}

static void *d_setup(cm_t *cm, ctrl_t *c)
{
    struct inf_handlers dh = {d_add, d_update, d_delete, NULL, c};
    struct inf_handlers rh = {rs_add, rs_update, rs_delete, NULL, c};
    struct inf_handlers ph = {NULL, NULL, pod_delete, NULL, c};
    cm_on(cm, &kind_deployment, &dh);
    cm_on(cm, &kind_replicaset, &rh);
    cm_on(cm, &kind_pod, &ph);
    return NULL;
}

/* ------------------------------------------------------------ sync state */

/* One ReplicaSet of the Deployment as the sync sees it. */
struct drs {
    Coracle__V1__ReplicaSet *rs; /* a copy, changed as the sync decides */
    int32_t was;                 /* spec.replicas as read */
    bool dirty;                  /* to be written back */
    bool drop;                   /* to be deleted (history cleanup) */
};

struct dsync {
    ctrl_t *c;
    char *key;
    Coracle__V1__Deployment *d;          /* a copy; d->status is what the sync has set so far */
    Coracle__V1__DeploymentStatus *orig; /* the status as read (NULL if none) */
    Coracle__V1__DeploymentStatus *st;   /* the status to write, NULL: leave it */
    bool meta_dirty;                     /* the Deployment itself changed (annotations, rollback) */
    struct drs *rs;                      /* every ReplicaSet it owns, oldest first */
    size_t n, cap;
    int new_ix;  /* the new ReplicaSet's index, -1 if none */
    char *rev;   /* the revision a new ReplicaSet takes */
    int64_t now; /* seconds */
    void (*then)(struct dsync *s);
    int pending;
    int errors;
    char *why;
};

static void dsync_unref(struct dsync *s)
{
    if (--s->pending > 0)
        return;
    ctrl_done(s->c, s->key, s->errors == 0, s->why);
    for (size_t i = 0; i < s->n; i++)
        protobuf_c_message_free_unpacked(&s->rs[i].rs->base, NULL);
    free(s->rs);
    protobuf_c_message_free_unpacked(&s->d->base, NULL);
    if (s->orig)
        protobuf_c_message_free_unpacked(&s->orig->base, NULL);
    if (s->st)
        protobuf_c_message_free_unpacked(&s->st->base, NULL);
    free(s->rev);
    free(s->why);
    free(s->key);
    free(s);
}

static void fail(struct dsync *s, const char *what, const char *message)
{
    s->errors++;
    if (!s->why)
        s->why = xasprintf("%s: %s", what, message ? message : "");
}

static void write_done(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct dsync *s = arg;
    if (code != 0 && code != GRPC_NOT_FOUND)
        fail(s, "write", message);
    dsync_unref(s);
}

static struct drs *drs_add(struct dsync *s, const ProtobufCMessage *rs)
{
    s->rs = xgrow(s->rs, &s->cap, s->n + 1, sizeof(*s->rs));
    struct drs *r = &s->rs[s->n++];
    memset(r, 0, sizeof(*r));
    r->rs = (Coracle__V1__ReplicaSet *)pb_clone(rs);
    if (!r->rs->spec) {
        r->rs->spec = xmalloc(sizeof(*r->rs->spec));
        coracle__v1__replica_set_spec__init(r->rs->spec);
    }
    r->was = dep_rs_replicas(r->rs);
    return r;
}

static int32_t replicas(const struct drs *r)
{
    return dep_rs_replicas(r->rs);
}

static int32_t available(const struct drs *r)
{
    return r->rs->status ? r->rs->status->availablereplicas : 0;
}

static int32_t actual(const struct drs *r)
{
    return r->rs->status ? r->rs->status->replicas : 0;
}

static bool is_old(const struct dsync *s, size_t i)
{
    return (int)i != s->new_ix;
}

static struct drs *new_rs(struct dsync *s)
{
    return s->new_ix >= 0 ? &s->rs[s->new_ix] : NULL;
}

/* The sum of spec.replicas over every ReplicaSet (old ones only if olds). */
static int32_t sum_replicas(const struct dsync *s, bool olds)
{
    int32_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!olds || is_old(s, i))
            n += replicas(&s->rs[i]);
    return n;
}

/* ---------------------------------------------------------------- scaling */

/* Kubernetes' scaleReplicaSet: the size and the replicas annotations; true if the size changes. */
static bool scale(struct dsync *s, struct drs *r, int32_t n)
{
    int32_t want = dep_replicas(s->d);
    bool size = replicas(r) != n;
    bool ann = dep_set_replicas_ann(r->rs, want, want + dep_max_surge(s->d));
    if (!size && !ann)
        return false;
    r->rs->spec->has_replicas = 1;
    r->rs->spec->replicas = n;
    r->dirty = true;
    return size;
}

/* scaleReplicaSetAndRecordEvent: nothing if the size is right (the event comes with the write). */
static bool scale_to(struct dsync *s, struct drs *r, int32_t n)
{
    return replicas(r) != n && scale(s, r, n);
}

/* NewRSNewReplicas: the new ReplicaSet's next size, from cur. */
static int32_t new_rs_replicas(const struct dsync *s, int32_t cur)
{
    int32_t want = dep_replicas(s->d);
    if (!dep_rolling(s->d))
        return want;
    int32_t total = sum_replicas(s, true) + cur;
    int32_t max_total = want + dep_max_surge(s->d);
    if (total >= max_total)
        return cur;
    int32_t up = max_total - total;
    if (up > want - cur)
        up = want - cur;
    return cur + up;
}

/* FindActiveOrLatest: the one ReplicaSet with replicas, or the newest if none has any. */
static struct drs *active_or_latest(struct dsync *s)
{
    struct drs *one = NULL, *latest_old = NULL;
    int active = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (is_old(s, i))
            latest_old = &s->rs[i];
        if (replicas(&s->rs[i]) > 0) {
            active++;
            one = &s->rs[i];
        }
    }
    if (active == 1)
        return one;
    if (active == 0)
        return new_rs(s) ? new_rs(s) : latest_old;
    return NULL;
}

static bool saturated(struct dsync *s)
{
    struct drs *r = new_rs(s);
    int64_t desired;
    int32_t want = dep_replicas(s->d);
    return r && dep_ann_int(r->rs->metadata, DEP_DESIRED, &desired) && replicas(r) == want &&
           desired == want && available(r) == want;
}

static int by_size_newer(const void *a, const void *b)
{
    return dep_by_size_newer(&(*(struct drs *const *)a)->rs, &(*(struct drs *const *)b)->rs);
}

static int by_size_older(const void *a, const void *b)
{
    return dep_by_size_older(&(*(struct drs *const *)a)->rs, &(*(struct drs *const *)b)->rs);
}

/* Kubernetes' scale(): a change of spec.replicas spread over the ReplicaSets. */
static void scale_all(struct dsync *s)
{
    int32_t want = dep_replicas(s->d);
    struct drs *one = active_or_latest(s);
    if (one) {
        scale_to(s, one, want);
        return;
    }
    if (saturated(s)) {
        for (size_t i = 0; i < s->n; i++)
            if (is_old(s, i) && replicas(&s->rs[i]) > 0)
                scale_to(s, &s->rs[i], 0);
        return;
    }
    if (!dep_rolling(s->d))
        return;
    struct drs **act = xmalloc((s->n + 1) * sizeof(*act));
    int32_t *size = xmalloc((s->n + 1) * sizeof(*size));
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (replicas(&s->rs[i]) > 0)
            act[k++] = &s->rs[i];
    int32_t total = 0;
    for (size_t i = 0; i < k; i++)
        total += replicas(act[i]);
    int32_t allowed = want > 0 ? want + dep_max_surge(s->d) : 0;
    int32_t to_add = allowed - total, added = 0;
    /* scaling up, the newer of equal ones first; down, the older */
    if (k < 2)
        ; /* nothing to order */
    else if (to_add > 0)
        qsort(act, k, sizeof(*act), by_size_newer);
    else if (to_add < 0)
        qsort(act, k, sizeof(*act), by_size_older);
    for (size_t i = 0; i < k; i++) {
        int32_t p = to_add ? dep_proportion(act[i]->rs, s->d, to_add, added) : 0;
        size[i] = replicas(act[i]) + p;
        added += p;
    }
    if (k && to_add) { /* what rounding left goes to the largest */
        size[0] += to_add - added;
        if (size[0] < 0)
            size[0] = 0;
    }
    for (size_t i = 0; i < k; i++)
        scale(s, act[i], size[i]);
    free(size);
    free(act);
}

/* cleanupDeployment: old ReplicaSets beyond revisionHistoryLimit with nothing in them go. */
static void cleanup(struct dsync *s)
{
    Coracle__V1__ReplicaSet **c = xmalloc((s->n + 1) * sizeof(*c));
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (is_old(s, i) && !s->rs[i].rs->metadata->deletiontimestamp)
            c[k++] = s->rs[i].rs;
    long diff = (long)k - dep_history_limit(s->d);
    if (diff > 0 && k > 1)
        qsort(c, k, sizeof(*c), dep_by_revision);
    for (long i = 0; i < diff; i++) {
        const Coracle__V1__ReplicaSet *rs = c[i];
        int64_t observed = rs->status ? rs->status->observedgeneration : 0;
        if (rs->status && rs->status->replicas != 0)
            continue;
        if (dep_rs_replicas(rs) != 0 || rs->metadata->generation > observed)
            continue;
        for (size_t j = 0; j < s->n; j++)
            if (s->rs[j].rs == rs)
                s->rs[j].drop = true;
    }
    free(c);
}

/* ----------------------------------------------------------------- status */

static Coracle__V1__DeploymentStatus *status_copy(const Coracle__V1__DeploymentStatus *st)
{
    return (Coracle__V1__DeploymentStatus *)pb_clone(&st->base);
}

/* calculateStatus: the counts of the ReplicaSets, the Available condition. */
static Coracle__V1__DeploymentStatus *calc_status(struct dsync *s)
{
    Coracle__V1__DeploymentStatus *st = status_copy(s->d->status);
    int32_t avail = 0, ready = 0, act = 0;
    for (size_t i = 0; i < s->n; i++) {
        const Coracle__V1__ReplicaSet *rs = s->rs[i].rs;
        avail += available(&s->rs[i]);
        act += actual(&s->rs[i]);
        ready += rs->status ? rs->status->readyreplicas : 0;
    }
    int32_t unavail = sum_replicas(s, false) - avail;
    st->has_observedgeneration = st->has_replicas = st->has_updatedreplicas = 1;
    st->has_readyreplicas = st->has_availablereplicas = st->has_unavailablereplicas = 1;
    st->observedgeneration = s->d->metadata->generation;
    st->replicas = act;
    st->updatedreplicas = new_rs(s) ? actual(new_rs(s)) : 0;
    st->readyreplicas = ready;
    st->availablereplicas = avail;
    st->unavailablereplicas = unavail < 0 ? 0 : unavail;
    st->has_terminatingreplicas = 0;
    st->terminatingreplicas = 0;
    if (avail >= dep_replicas(s->d) - dep_max_unavailable(s->d))
        dep_cond_set(st, "Available", "True", "MinimumReplicasAvailable",
                     "Deployment has minimum availability.", s->now);
    else
        dep_cond_set(st, "Available", "False", "MinimumReplicasUnavailable",
                     "Deployment does not have minimum availability.", s->now);
    return st;
}

/* getReplicaFailures: a ReplicaFailure of the new ReplicaSet first, else of any. */
static const Coracle__V1__ReplicaSetCondition *replica_failure(struct dsync *s)
{
    for (size_t k = 0; k <= s->n; k++) {
        const struct drs *r = k == 0 ? new_rs(s) : &s->rs[k - 1];
        for (size_t j = 0; r && r->rs->status && j < r->rs->status->n_conditions; j++) {
            const Coracle__V1__ReplicaSetCondition *c = r->rs->status->conditions[j];
            if (c->type && !strcmp(c->type, "ReplicaFailure"))
                return c;
        }
    }
    return NULL;
}

/* Whether the status differs from the one read. */
static bool status_changed(const struct dsync *s)
{
    return s->st && (!s->orig || !pb_equal(&s->orig->base, &s->st->base));
}

/* requeueStuckDeployment: sync again when the progress deadline would pass. */
static void requeue_stuck(struct dsync *s)
{
    const Coracle__V1__DeploymentCondition *cur = dep_cond_get(s->d->status, "Progressing");
    int32_t deadline = dep_progress_deadline(s->d);
    if (deadline < 0 || !cur || dep_complete(s->d, s->st))
        return;
    if (cur->reason && !strcmp(cur->reason, "ProgressDeadlineExceeded"))
        return;
    int64_t from = cur->lastupdatetime ? cur->lastupdatetime->seconds : 0;
    int64_t after = from + deadline - s->now;
    ctrl_enqueue_after(s->c, s->key, after < 1 ? 1000 : (after + 1) * 1000);
}

/* syncRolloutStatus: the counts, and Progressing as the rollout goes. */
static void rollout_status(struct dsync *s)
{
    Coracle__V1__DeploymentStatus *st = calc_status(s);
    const Coracle__V1__Deployment *d = s->d;
    const struct drs *nr = new_rs(s);
    const char *nn = nr ? nr->rs->metadata->name : NULL;
    int32_t deadline = dep_progress_deadline(d);
    if (deadline < 0)
        dep_cond_del(st, "Progressing");
    const Coracle__V1__DeploymentCondition *cur = dep_cond_get(d->status, "Progressing");
    bool done = st->replicas == st->updatedreplicas && cur && cur->reason &&
                !strcmp(cur->reason, "NewReplicaSetAvailable");
    char *msg = NULL;
    if (deadline >= 0 && !done) {
        if (dep_complete(d, st)) {
            msg =
                nn ? xasprintf("ReplicaSet \"%s\" has successfully progressed.", nn)
                   : xasprintf("Deployment \"%s\" has successfully progressed.", d->metadata->name);
            dep_cond_set(st, "Progressing", "True", "NewReplicaSetAvailable", msg, s->now);
        } else if (dep_progressing(d, st)) {
            msg = nn ? xasprintf("ReplicaSet \"%s\" is progressing.", nn)
                     : xasprintf("Deployment \"%s\" is progressing.", d->metadata->name);
            dep_cond_replace(st, "Progressing", "True", "ReplicaSetUpdated", msg, s->now);
        } else if (dep_timed_out(d, st, s->now)) {
            msg = nn ? xasprintf("ReplicaSet \"%s\" has timed out progressing.", nn)
                     : xasprintf("Deployment \"%s\" has timed out progressing.", d->metadata->name);
            dep_cond_set(st, "Progressing", "False", "ProgressDeadlineExceeded", msg, s->now);
        }
    }
    free(msg);
    const Coracle__V1__ReplicaSetCondition *f = replica_failure(s);
    if (f)
        dep_cond_set(st, "ReplicaFailure", f->status ? f->status : "", f->reason ? f->reason : "",
                     f->message ? f->message : "", s->now);
    else
        dep_cond_del(st, "ReplicaFailure");
    s->st = st;
    if (!status_changed(s))
        requeue_stuck(s);
}

/* checkPausedConditions: Progressing says paused or resumed (unless it timed out). */
static void paused_conditions(struct dsync *s)
{
    Coracle__V1__DeploymentStatus *st = s->d->status;
    const Coracle__V1__DeploymentCondition *cur = dep_cond_get(st, "Progressing");
    bool paused = s->d->spec->paused;
    if (dep_progress_deadline(s->d) < 0)
        return;
    if (cur && cur->reason && !strcmp(cur->reason, "ProgressDeadlineExceeded"))
        return;
    bool marked = cur && cur->reason && !strcmp(cur->reason, "DeploymentPaused");
    if (paused && !marked)
        dep_cond_set(st, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused",
                     s->now);
    else if (!paused && marked)
        dep_cond_set(st, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed",
                     s->now);
}

/* ----------------------------------------------------------------- writes */

struct rs_write {
    struct dsync *s;
    size_t i;
};

static void rs_written(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct rs_write *w = arg;
    struct dsync *s = w->s;
    const struct drs *r = &s->rs[w->i];
    if (code == 0 && replicas(r) != r->was)
        ctrl_event(s->c, &kind_deployment, &s->d->base, "Normal", "ScalingReplicaSet",
                   "Scaled %s replica set %s from %d to %d", replicas(r) > r->was ? "up" : "down",
                   r->rs->metadata->name, r->was, replicas(r));
    else if (code != 0)
        fail(s, "update replica set", message);
    free(w);
    dsync_unref(s);
}

static void write_status(struct dsync *s, const Coracle__V1__Deployment *base)
{
    Coracle__V1__Deployment upd = *base;
    upd.status = s->st;
    s->pending++;
    cm_call(ctrl_cm(s->c), &kind_deployment, "UpdateStatus", &upd.base, write_done, s);
}

static void meta_written(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct dsync *s = arg;
    if (code != 0)
        fail(s, "update deployment", message);
    else if (status_changed(s) && resp)
        write_status(s, (const Coracle__V1__Deployment *)resp);
    dsync_unref(s);
}

/* The end of a sync: every change written, the ReplicaSets first. */
static void finish(struct dsync *s)
{
    cm_t *cm = ctrl_cm(s->c);
    for (size_t i = 0; i < s->n; i++) {
        struct drs *r = &s->rs[i];
        const Coracle__V1__ObjectMeta *m = r->rs->metadata;
        if (r->drop) {
            s->pending++;
            cm_delete(cm, &kind_replicaset, m->namespace_, m->name, m->uid, NULL, write_done, s);
        } else if (r->dirty) {
            struct rs_write *w = xmalloc(sizeof(*w));
            w->s = s;
            w->i = i;
            s->pending++;
            cm_call(cm, &kind_replicaset, "Update", &r->rs->base, rs_written, w);
        }
    }
    if (s->meta_dirty) {
        s->pending++;
        cm_call(cm, &kind_deployment, "Update", &s->d->base, meta_written, s);
    } else if (status_changed(s)) {
        write_status(s, s->d);
    }
    dsync_unref(s);
}

/* ------------------------------------------------------ the new ReplicaSet */

static int drs_by_creation(const void *a, const void *b)
{
    return dep_by_creation(&((const struct drs *)a)->rs, &((const struct drs *)b)->rs);
}

static void set_revision(struct dsync *s, const char *rev)
{
    const char *cur = dep_ann(s->d->metadata, DEP_REVISION);
    if (!cur || strcmp(cur, rev)) {
        dep_ann_set(s->d->metadata, DEP_REVISION, rev);
        s->meta_dirty = true;
    }
}

/*
 * getAllReplicaSetsAndSyncRevision for an existing new ReplicaSet: finds
 * it (the oldest with the Deployment's template), gives it the next
 * revision and the Deployment's annotations, or once it has them, gives
 * its revision to the Deployment.
 */
static void find_new(struct dsync *s)
{
    if (s->n > 1)
        qsort(s->rs, s->n, sizeof(*s->rs), drs_by_creation);
    s->new_ix = -1;
    for (size_t i = 0; i < s->n && s->new_ix < 0; i++)
        if (dep_template_equal(s->rs[i].rs->spec->template_, s->d->spec->template_))
            s->new_ix = (int)i;
    int64_t max = 0;
    for (size_t i = 0; i < s->n; i++)
        if (is_old(s, i) && dep_revision(s->rs[i].rs) > max)
            max = dep_revision(s->rs[i].rs);
    s->rev = xasprintf("%lld", (long long)max + 1);
    struct drs *r = new_rs(s);
    if (!r)
        return;
    bool changed = dep_set_new_rs_ann(s->d, r->rs, s->rev, true);
    int32_t min_ready = dep_min_ready(s->d);
    Coracle__V1__ReplicaSetSpec *spec = r->rs->spec;
    if (changed || spec->minreadyseconds != min_ready) {
        spec->has_minreadyseconds = min_ready != 0 || spec->has_minreadyseconds;
        spec->minreadyseconds = min_ready;
        r->dirty = true;
        return;
    }
    const char *rev = dep_ann(r->rs->metadata, DEP_REVISION);
    set_revision(s, rev ? rev : "");
    if (dep_progress_deadline(s->d) >= 0 && !dep_cond_get(s->d->status, "Progressing")) {
        char *msg = xasprintf("Found new replica set \"%s\"", r->rs->metadata->name);
        dep_cond_set(s->d->status, "Progressing", "True", "FoundNewReplicaSet", msg, s->now);
        free(msg);
    }
}

static Coracle__V1__OwnerReference *controller_ref(const Coracle__V1__Deployment *d)
{
    Coracle__V1__OwnerReference *o = xmalloc(sizeof(*o));
    coracle__v1__owner_reference__init(o);
    o->apiversion = xstrdup(kind_deployment.api_version);
    o->kind = xstrdup(kind_deployment.kind);
    o->name = xstrdup(d->metadata->name);
    o->uid = xstrdup(d->metadata->uid ? d->metadata->uid : "");
    o->has_controller = o->controller = 1;
    o->has_blockownerdeletion = o->blockownerdeletion = 1;
    return o;
}

/* The new ReplicaSet for d: its template and selector with the hash label (malloc'd). */
static Coracle__V1__ReplicaSet *new_rs_object(struct dsync *s, const char *hash)
{
    const Coracle__V1__Deployment *d = s->d;
    Coracle__V1__ReplicaSet *rs = xmalloc(sizeof(*rs));
    coracle__v1__replica_set__init(rs);
    Coracle__V1__ObjectMeta *m = rs->metadata = xmalloc(sizeof(*m));
    coracle__v1__object_meta__init(m);
    m->name = xconcat(d->metadata->name, "-", hash, NULL);
    m->namespace_ = xstrdup(ns_of(&d->base));
    m->ownerreferences = xmalloc(sizeof(*m->ownerreferences));
    m->ownerreferences[0] = controller_ref(d);
    m->n_ownerreferences = 1;
    Coracle__V1__ReplicaSetSpec *spec = rs->spec = xmalloc(sizeof(*spec));
    coracle__v1__replica_set_spec__init(spec);
    spec->template_ = (Coracle__V1__PodTemplateSpec *)pb_clone(&d->spec->template_->base);
    if (!spec->template_->metadata) {
        spec->template_->metadata = xmalloc(sizeof(*spec->template_->metadata));
        coracle__v1__object_meta__init(spec->template_->metadata);
    }
    Coracle__V1__ObjectMeta *tm = spec->template_->metadata;
    dep_map_set((void ***)&tm->labels, &tm->n_labels,
                &coracle__v1__object_meta__labels_entry__descriptor, DEP_HASH_LABEL, hash);
    for (size_t i = 0; i < tm->n_labels; i++)
        dep_map_set((void ***)&m->labels, &m->n_labels,
                    &coracle__v1__object_meta__labels_entry__descriptor, tm->labels[i]->key,
                    tm->labels[i]->value ? tm->labels[i]->value : "");
    spec->selector = (Coracle__V1__LabelSelector *)pb_clone(&d->spec->selector->base);
    dep_map_set((void ***)&spec->selector->matchlabels, &spec->selector->n_matchlabels,
                &coracle__v1__label_selector__match_labels_entry__descriptor, DEP_HASH_LABEL, hash);
    spec->has_minreadyseconds = d->spec->has_minreadyseconds;
    spec->minreadyseconds = d->spec->minreadyseconds;
    spec->has_replicas = 1;
    spec->replicas = new_rs_replicas(s, 0);
    dep_set_new_rs_ann(d, rs, s->rev, false);
    return rs;
}

struct create {
    struct dsync *s;
    Coracle__V1__ReplicaSet *rs;
};

/* The name taken: ours after all (a cache behind), or a hash collision (the count goes up). */
static void create_exists(struct dsync *s, const Coracle__V1__ReplicaSet *mine)
{
    const char *ns = ns_of(&s->d->base), *name = mine->metadata->name;
    const ProtobufCMessage *have = cm_get(ctrl_cm(s->c), &kind_replicaset, ns, name);
    const Coracle__V1__OwnerReference *o = have ? deployment_ref(have) : NULL;
    const Coracle__V1__ReplicaSet *hrs = (const Coracle__V1__ReplicaSet *)have;
    if (o && o->uid && !strcmp(o->uid, cm_uid(&s->d->base)) && hrs->spec &&
        dep_template_equal(hrs->spec->template_, s->d->spec->template_)) {
        s->new_ix = (int)s->n;
        drs_add(s, have);
        set_revision(s, s->rev);
        s->then(s);
        return;
    }
    if (have) {
        Coracle__V1__DeploymentStatus *st = s->d->status;
        st->collisioncount = st->has_collisioncount ? st->collisioncount + 1 : 1;
        st->has_collisioncount = 1;
        s->st = status_copy(st);
        log_info("deployment %s: hash collision on %s, collisionCount now %d", s->key, name,
                 st->collisioncount);
    }
    fail(s, "create replica set", "already exists");
    finish(s);
}

static void created(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct create *cr = arg;
    struct dsync *s = cr->s;
    const char *name = cr->rs->metadata->name;
    if (code != 0)
        cm_observed(s->c, s->key, 1, 0); /* never to be seen */
    if (code == 0 && resp) {
        s->new_ix = (int)s->n;
        struct drs *r = drs_add(s, resp);
        r->was = replicas(r);
        if (replicas(r) > 0)
            ctrl_event(s->c, &kind_deployment, &s->d->base, "Normal", "ScalingReplicaSet",
                       "Scaled up replica set %s from 0 to %d", name, replicas(r));
        set_revision(s, s->rev);
        if (dep_progress_deadline(s->d) >= 0) {
            char *msg = xasprintf("Created new replica set \"%s\"", name);
            dep_cond_set(s->d->status, "Progressing", "True", "NewReplicaSetCreated", msg, s->now);
            free(msg);
        }
        s->then(s);
    } else if (code == GRPC_ALREADY_EXISTS) {
        create_exists(s, cr->rs);
    } else {
        char *msg = xasprintf("Failed to create new replica set \"%s\": %s", name, message);
        if (dep_progress_deadline(s->d) >= 0) {
            dep_cond_set(s->d->status, "Progressing", "False", "ReplicaSetCreateError", msg,
                         s->now);
            s->st = status_copy(s->d->status);
        }
        ctrl_event(s->c, &kind_deployment, &s->d->base, "Warning", "ReplicaSetCreateError", "%s",
                   msg);
        fail(s, "create replica set", message);
        free(msg);
        finish(s);
    }
    protobuf_c_message_free_unpacked(&cr->rs->base, NULL);
    free(cr);
}

/* Makes the new ReplicaSet, then goes on with then(s) (which ends the sync). */
static void create_new(struct dsync *s, void (*then)(struct dsync *s))
{
    const Coracle__V1__DeploymentStatus *st = s->d->status;
    char hash[16];
    dep_template_hash(s->d->spec->template_, st->has_collisioncount ? &st->collisioncount : NULL,
                      hash);
    struct create *cr = xmalloc(sizeof(*cr));
    cr->s = s;
    cr->rs = new_rs_object(s, hash);
    s->then = then;
    cm_expect(s->c, s->key, 1, 0);
    cm_call(ctrl_cm(s->c), &kind_replicaset, "Create", &cr->rs->base, created, cr);
}

/* ---------------------------------------------------------------- rollouts */

/* reconcileNewReplicaSet: the new one grows within maxSurge (or shrinks to the size). */
static bool reconcile_new(struct dsync *s)
{
    struct drs *r = new_rs(s);
    int32_t want = dep_replicas(s->d);
    if (replicas(r) == want)
        return false;
    if (replicas(r) > want)
        return scale_to(s, r, want);
    return scale_to(s, r, new_rs_replicas(s, replicas(r)));
}

/* cleanupUnhealthyReplicas: the old ones' unavailable pods go first, at most max of them. */
static int32_t cleanup_unhealthy(struct dsync *s, int32_t max)
{
    int32_t total = 0;
    for (size_t i = 0; i < s->n && total < max; i++) {
        struct drs *r = &s->rs[i];
        int32_t rep = replicas(r);
        if (!is_old(s, i) || rep == 0 || rep == available(r))
            continue;
        int32_t n = rep - available(r);
        if (n > max - total)
            n = max - total;
        scale_to(s, r, rep - n);
        total += n;
    }
    return total;
}

/* scaleDownOldReplicaSetsForRollingUpdate: as far as maxUnavailable allows, oldest first. */
static int32_t scale_down_old(struct dsync *s)
{
    int32_t min_avail = dep_replicas(s->d) - dep_max_unavailable(s->d), avail = 0;
    for (size_t i = 0; i < s->n; i++)
        avail += available(&s->rs[i]);
    if (avail <= min_avail)
        return 0;
    int32_t total = 0, todo = avail - min_avail;
    for (size_t i = 0; i < s->n && total < todo; i++) {
        struct drs *r = &s->rs[i];
        int32_t rep = replicas(r);
        if (!is_old(s, i) || rep == 0)
            continue;
        int32_t n = rep < todo - total ? rep : todo - total;
        scale_to(s, r, rep - n);
        total += n;
    }
    return total;
}

/* reconcileOldReplicaSets */
static bool reconcile_old(struct dsync *s)
{
    if (sum_replicas(s, true) == 0)
        return false;
    struct drs *nr = new_rs(s);
    int32_t min_avail = dep_replicas(s->d) - dep_max_unavailable(s->d);
    int32_t new_unavail = replicas(nr) - available(nr);
    int32_t max_down = sum_replicas(s, false) - min_avail - new_unavail;
    if (max_down <= 0)
        return false;
    int32_t cleaned = cleanup_unhealthy(s, max_down);
    return cleaned + scale_down_old(s) > 0;
}

static void rolling_rest(struct dsync *s)
{
    if (!reconcile_new(s) && !reconcile_old(s) && dep_complete(s->d, s->d->status))
        cleanup(s);
    rollout_status(s);
    finish(s);
}

static void rolling(struct dsync *s)
{
    if (s->new_ix < 0)
        create_new(s, rolling_rest);
    else
        rolling_rest(s);
}

static int pod_running(const ProtobufCMessage *obj, void *arg)
{
    const Coracle__V1__Pod *p = (const Coracle__V1__Pod *)obj;
    const char *ph = p->status && p->status->phase ? p->status->phase : "";
    return strcmp(ph, "Succeeded") && strcmp(ph, "Failed");
}

/* oldPodsRunning: an old ReplicaSet still counts pods, or has one not finished. */
static bool old_pods_running(struct dsync *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (is_old(s, i) && actual(&s->rs[i]) > 0)
            return true;
    for (size_t i = 0; i < s->n; i++)
        if (is_old(s, i) && cm_owned(ctrl_cm(s->c), &kind_pod, ns_of(&s->d->base),
                                     cm_uid(&s->rs[i].rs->base), pod_running, NULL))
            return true;
    return false;
}

static void recreate_rest(struct dsync *s)
{
    scale_to(s, new_rs(s), dep_replicas(s->d));
    if (dep_complete(s->d, s->d->status))
        cleanup(s);
    rollout_status(s);
    finish(s);
}

/* rolloutRecreate: the old ones to 0, their pods gone, then the new one at full size. */
static void recreate(struct dsync *s)
{
    bool scaled = false;
    for (size_t i = 0; i < s->n; i++)
        if (is_old(s, i) && replicas(&s->rs[i]) > 0)
            scaled |= scale_to(s, &s->rs[i], 0);
    if (scaled || old_pods_running(s)) {
        rollout_status(s);
        finish(s);
    } else if (s->new_ix < 0) {
        create_new(s, recreate_rest);
    } else {
        recreate_rest(s);
    }
}

/* ---------------------------------------------------------------- rollback */

#define ROLLBACK_TO "deprecated.deployment.rollback.to"

/* The revision the deprecated rollback annotation asks for, or -1 for none. */
static int64_t rollback_to(const struct dsync *s)
{
    int64_t rev;
    return dep_ann_int(s->d->metadata, ROLLBACK_TO, &rev) ? rev : -1;
}

/* LastRevision: the revision before the newest one (0 if none). */
static int64_t last_revision(const struct dsync *s)
{
    int64_t max = 0, second = 0;
    for (size_t i = 0; i < s->n; i++) {
        int64_t v = dep_revision(s->rs[i].rs);
        if (v > max) {
            second = max;
            max = v;
        } else if (v > second && v != max) {
            second = v;
        }
    }
    return second;
}

/*
 * rollbackToTemplate: the Deployment takes rs's template (without the
 * hash label) and rs's annotations, but those the controller writes.
 */
static bool take_template(struct dsync *s, const Coracle__V1__ReplicaSet *rs)
{
    Coracle__V1__DeploymentSpec *spec = s->d->spec;
    if (dep_template_equal(spec->template_, rs->spec->template_)) {
        ctrl_event(s->c, &kind_deployment, &s->d->base, "Warning",
                   "DeploymentRollbackTemplateUnchanged",
                   "The rollback revision contains the same template as current deployment "
                   "\"%s\"",
                   s->d->metadata->name);
        return false;
    }
    protobuf_c_message_free_unpacked(&spec->template_->base, NULL);
    spec->template_ = (Coracle__V1__PodTemplateSpec *)pb_clone(&rs->spec->template_->base);
    Coracle__V1__ObjectMeta *tm = spec->template_->metadata;
    if (tm)
        dep_map_del((void ***)&tm->labels, &tm->n_labels, DEP_HASH_LABEL);
    Coracle__V1__ObjectMeta *m = s->d->metadata;
    size_t k = 0;
    for (size_t i = 0; i < m->n_annotations; i++) {
        if (m->annotations[i]->key && dep_ann_skipped(m->annotations[i]->key))
            m->annotations[k++] = m->annotations[i];
        else
            protobuf_c_message_free_unpacked(&m->annotations[i]->base, NULL);
    }
    m->n_annotations = k;
    const Coracle__V1__ObjectMeta *rm = rs->metadata;
    for (size_t i = 0; i < rm->n_annotations; i++)
        if (rm->annotations[i]->key && !dep_ann_skipped(rm->annotations[i]->key))
            dep_ann_set(m, rm->annotations[i]->key,
                        rm->annotations[i]->value ? rm->annotations[i]->value : "");
    return true;
}

/*
 * rollback.go: the deprecated rollback annotation (extensions/v1beta1's
 * rollbackTo) puts an old revision's template back and goes; kubectl's
 * rollout undo patches the template itself and never sets it.
 */
static void rollback(struct dsync *s)
{
    int64_t rev = rollback_to(s);
    if (rev == 0 && (rev = last_revision(s)) == 0) {
        ctrl_event(s->c, &kind_deployment, &s->d->base, "Warning",
                   "DeploymentRollbackRevisionNotFound", "Unable to find last revision.");
    } else {
        size_t i = 0;
        while (i < s->n && dep_revision(s->rs[i].rs) != rev)
            i++;
        if (i == s->n || !s->rs[i].rs->spec->template_)
            ctrl_event(s->c, &kind_deployment, &s->d->base, "Warning",
                       "DeploymentRollbackRevisionNotFound",
                       "Unable to find the revision to rollback to.");
        else if (take_template(s, s->rs[i].rs))
            ctrl_event(s->c, &kind_deployment, &s->d->base, "Normal", "DeploymentRollback",
                       "Rolled back deployment \"%s\" to revision %lld", s->d->metadata->name,
                       (long long)rev);
    }
    dep_map_del((void ***)&s->d->metadata->annotations, &s->d->metadata->n_annotations,
                ROLLBACK_TO);
    s->meta_dirty = true;
    s->st = status_copy(s->d->status); /* what paused_conditions changed */
    finish(s);
}

/* isScalingEvent: a ReplicaSet with replicas was sized for another spec.replicas. */
static bool scaling_event(struct dsync *s)
{
    for (size_t i = 0; i < s->n; i++) {
        int64_t desired;
        if (replicas(&s->rs[i]) > 0 && dep_ann_int(s->rs[i].rs->metadata, DEP_DESIRED, &desired) &&
            desired != dep_replicas(s->d))
            return true;
    }
    return false;
}

/* ------------------------------------------------------------ ownership */

/* Takes an orphan ReplicaSet (or lets one go: adopt false) with one Update. */
static void own(struct dsync *s, const Coracle__V1__ReplicaSet *rs, bool adopt)
{
    cm_t *cm = ctrl_cm(s->c);
    s->pending++;
    if (adopt)
        cm_adopt(cm, &kind_replicaset, &rs->base, &kind_deployment, &s->d->base, write_done, s);
    else
        cm_release(cm, &kind_replicaset, &rs->base, write_done, s);
}

struct claim {
    struct dsync *s;
    const struct sel *sel;
    bool deleting; /* the Deployment: it neither adopts nor releases */
    int changes;
};

static int claim_owned(const ProtobufCMessage *obj, void *arg)
{
    struct claim *cl = arg;
    const Coracle__V1__ReplicaSet *rs = (const Coracle__V1__ReplicaSet *)obj;
    if (!cl->deleting && !cm_labels_match(cl->sel, rs->metadata)) {
        own(cl->s, rs, false);
        cl->changes++;
        return 0;
    }
    drs_add(cl->s, obj);
    return 0;
}

static int claim_orphan(const ProtobufCMessage *obj, void *arg)
{
    struct claim *cl = arg;
    const Coracle__V1__ReplicaSet *rs = (const Coracle__V1__ReplicaSet *)obj;
    if (cl->deleting || rs->metadata->deletiontimestamp || !cm_labels_match(cl->sel, rs->metadata))
        return 0;
    own(cl->s, rs, true);
    cl->changes++;
    return 0;
}

/*
 * ClaimReplicaSets: the owned ones that still match, orphans that match
 * adopted and owned ones that no longer match released. Adoptions and
 * releases are counted from the next sync (their updates enqueue it).
 */
static int claim(struct dsync *s, const struct sel *sel)
{
    cm_t *cm = ctrl_cm(s->c);
    const char *ns = ns_of(&s->d->base);
    struct claim cl = {s, sel, s->d->metadata->deletiontimestamp != NULL, 0};
    cm_owned(cm, &kind_replicaset, ns, cm_uid(&s->d->base), claim_owned, &cl);
    cm_owned(cm, &kind_replicaset, ns, "", claim_orphan, &cl);
    return cl.changes;
}

/* ------------------------------------------------------------------ sync */

static struct dsync *dsync_new(ctrl_t *c, const char *key, const ProtobufCMessage *d)
{
    struct dsync *s = xcalloc(1, sizeof(*s));
    s->c = c;
    s->key = xstrdup(key);
    s->pending = 1; /* the sync itself, ended by finish */
    s->new_ix = -1;
    s->now = now_ns() / 1000000000;
    s->d = (Coracle__V1__Deployment *)pb_clone(d);
    if (s->d->status) {
        s->orig = status_copy(s->d->status);
    } else {
        s->d->status = xmalloc(sizeof(*s->d->status));
        coracle__v1__deployment_status__init(s->d->status);
    }
    if (!s->d->spec) {
        s->d->spec = xmalloc(sizeof(*s->d->spec));
        coracle__v1__deployment_spec__init(s->d->spec);
    }
    return s;
}

/* A Deployment selecting everything does nothing but observe its generation. */
static void selects_all(struct dsync *s)
{
    ctrl_event(s->c, &kind_deployment, &s->d->base, "Warning", "SelectingAll",
               "This deployment is selecting all pods. A non-empty selector is required.");
    Coracle__V1__DeploymentStatus *st = s->d->status;
    if (st->observedgeneration < s->d->metadata->generation) {
        st->has_observedgeneration = 1;
        st->observedgeneration = s->d->metadata->generation;
        s->st = status_copy(st);
    }
    finish(s);
}

/* syncDeployment once the ReplicaSets are known: status only, scaling, or a rollout. */
static void sync_claimed(struct dsync *s)
{
    find_new(s);
    if (s->d->metadata->deletiontimestamp) {
        s->st = calc_status(s);
        finish(s);
        return;
    }
    paused_conditions(s);
    if (!s->d->spec->paused && rollback_to(s) >= 0) {
        rollback(s);
    } else if (s->d->spec->paused || scaling_event(s)) {
        scale_all(s);
        if (s->d->spec->paused && rollback_to(s) < 0)
            cleanup(s);
        s->st = calc_status(s);
        finish(s);
    } else if (dep_rolling(s->d)) {
        rolling(s);
    } else {
        recreate(s);
    }
}

static void d_sync(ctrl_t *c, const char *key, void *state)
{
    char *ns = xstrdup(key), *name = strchr(ns, '/');
    *name++ = '\0';
    const ProtobufCMessage *obj = cm_get(ctrl_cm(c), &kind_deployment, ns, name);
    free(ns);
    if (!obj) {
        cm_expect_forget(c, key);
        ctrl_done(c, key, true, NULL);
        return;
    }
    if (!cm_satisfied(c, key)) { /* its new ReplicaSet not seen yet: that enqueues it */
        ctrl_done(c, key, true, NULL);
        return;
    }
    struct dsync *s = dsync_new(c, key, obj);
    struct sel *sel = NULL;
    if (!cm_selector(s->d->spec->selector, &sel) || !s->d->spec->template_) {
        log_info("deployment %s: invalid selector or no template", key);
        finish(s);
    } else if (sel_empty(sel)) {
        selects_all(s);
    } else if (claim(s, sel) > 0) {
        finish(s);
    } else {
        sync_claimed(s);
    }
    sel_free(sel);
}

const struct ctrl_def ctrl_deployment = {
    .name = "deployment",
    .workers = 5,
    .setup = d_setup,
    .sync = d_sync,
};
