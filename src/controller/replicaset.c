/*
 * The ReplicaSet controller, as Kubernetes' (pkg/controller/replicaset):
 * keeps spec.replicas pods of a ReplicaSet alive, adopting matching
 * orphans and releasing pods that no longer match, and reports status
 * (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
 * observedGeneration). At most 500 creates or deletes per sync (its
 * burstReplicas); expectations keep a sync from acting twice on a cache
 * that has not seen its own writes.
 */
#include "config.h"

#include "controllers.h"
#include "sel.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define BURST 500

struct orphan_walk {
    ctrl_t *c;
    const Coracle__V1__Pod *pod;
    const char *ns;
};

static int offer_orphan(const ProtobufCMessage *obj, void *arg)
{
    struct orphan_walk *w = arg;
    const Coracle__V1__ReplicaSet *rs = (const Coracle__V1__ReplicaSet *)obj;
    const char *ns = rs->metadata->namespace_ ? rs->metadata->namespace_ : "";
    struct sel *sel;
    if (strcmp(ns, w->ns) || !rs->spec || !cm_selector(rs->spec->selector, &sel))
        return 0;
    if (!sel_empty(sel) && cm_labels_match(sel, w->pod->metadata)) {
        char *key = cm_key(obj);
        ctrl_enqueue(w->c, key);
        free(key);
    }
    sel_free(sel);
    return 0;
}

/* Pods changed: enqueue their controller, or for an orphan every ReplicaSet selecting it. */
static void enqueue_owner(ctrl_t *c, const Coracle__V1__Pod *pod)
{
    const Coracle__V1__OwnerReference *o = cm_controller_of(&pod->base);
    const char *ns = pod->metadata && pod->metadata->namespace_ ? pod->metadata->namespace_ : "";
    if (o) {
        if (o->kind && !strcmp(o->kind, "ReplicaSet") && o->name) {
            char *key = xconcat(ns, "/", o->name, NULL);
            ctrl_enqueue(c, key);
            free(key);
        }
        return;
    }
    if (!cm_pod_active(pod))
        return;
    struct orphan_walk w = {c, pod, ns};
    inf_foreach(cm_informer(ctrl_cm(c), &kind_replicaset), offer_orphan, &w);
}

static void pod_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    ctrl_t *c = arg;
    const Coracle__V1__OwnerReference *o = cm_controller_of(obj);
    if (o && o->kind && !strcmp(o->kind, "ReplicaSet")) {
        const Coracle__V1__ObjectMeta *m = kind_meta(obj);
        char *key = xconcat(m->namespace_ ? m->namespace_ : "", "/", o->name, NULL);
        cm_observed(c, key, 1, 0);
        free(key);
    }
    enqueue_owner(c, (const Coracle__V1__Pod *)obj);
}

static void pod_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                       void *arg)
{
    ctrl_t *c = arg;
    const Coracle__V1__OwnerReference *a = cm_controller_of(old), *b = cm_controller_of(obj);
    if (a && (!b || strcmp(a->uid, b->uid)))
        enqueue_owner(c, (const Coracle__V1__Pod *)old);
    enqueue_owner(c, (const Coracle__V1__Pod *)obj);
}

static void pod_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    ctrl_t *c = arg;
    const Coracle__V1__OwnerReference *o = cm_controller_of(obj);
    if (o && o->kind && !strcmp(o->kind, "ReplicaSet")) {
        const Coracle__V1__ObjectMeta *m = kind_meta(obj);
        char *key = xconcat(m->namespace_ ? m->namespace_ : "", "/", o->name, NULL);
        cm_observed(c, key, 0, 1);
        ctrl_enqueue(c, key);
        free(key);
    }
}

static void rs_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    char *key = cm_key(obj);
    ctrl_enqueue(arg, key);
    free(key);
}

static void rs_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                      void *arg)
{
    rs_add(inf, obj, arg);
}

static void rs_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    char *key = cm_key(obj);
    cm_expect_forget(arg, key);
    ctrl_enqueue(arg, key); /* the sync finds it gone and forgets it */
    free(key);
}

static void *rs_setup(cm_t *cm, ctrl_t *c)
{
    struct inf_handlers rh = {rs_add, rs_update, rs_delete, NULL, c};
    struct inf_handlers ph = {pod_add, pod_update, pod_delete, NULL, c};
    cm_on(cm, &kind_replicaset, &rh);
    cm_on(cm, &kind_pod, &ph);
    return NULL;
}

/* ------------------------------------------------------------------ sync */

/* One sync in flight: what it counted and the writes it waits for. */
struct rsync {
    ctrl_t *c;
    char *key;
    int pending;
    int errors;
    int adopted; /* orphans taken this sync: they count from the next one */
    char *why;
};

static void rsync_finish(struct rsync *s)
{
    if (--s->pending > 0)
        return;
    ctrl_done(s->c, s->key, s->errors == 0, s->why);
    free(s->why);
    free(s->key);
    free(s);
}

static void write_done(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct rsync *s = arg;
    if (code != 0 && code != 5 /* NOT_FOUND: already gone */) {
        s->errors++;
        if (!s->why)
            s->why = xstrdup(message);
    }
    rsync_finish(s);
}

static void create_done(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct rsync *s = arg;
    const ProtobufCMessage *rs = NULL;
    char *ns = xstrdup(s->key), *name = strchr(ns, '/');
    *name++ = '\0';
    rs = cm_get(ctrl_cm(s->c), &kind_replicaset, ns, name);
    if (rs && code == 0 && resp)
        ctrl_event(s->c, &kind_replicaset, rs, "Normal", "SuccessfulCreate", "Created pod: %s",
                   kind_meta(resp)->name);
    else if (rs && code != 0)
        ctrl_event(s->c, &kind_replicaset, rs, "Warning", "FailedCreate", "Error creating: %s",
                   message);
    free(ns);
    if (code != 0) {
        cm_observed(s->c, s->key, 1, 0); /* it will never be seen */
        s->errors++;
        if (!s->why)
            s->why = xasprintf("create pod: %s", message);
    }
    rsync_finish(s);
}

static void delete_done(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct rsync *s = arg;
    if (code != 0) {
        cm_observed(s->c, s->key, 0, 1);
        if (code != 5) {
            s->errors++;
            if (!s->why)
                s->why = xasprintf("delete pod: %s", message);
        }
    }
    rsync_finish(s);
}

/* Takes an orphan: the ReplicaSet becomes its controller (it counts from the next sync). */
static void adopt(struct rsync *s, const Coracle__V1__ReplicaSet *rs, const Coracle__V1__Pod *p)
{
    s->pending++;
    s->adopted++;
    cm_adopt(ctrl_cm(s->c), &kind_pod, &p->base, &kind_replicaset, &rs->base, write_done, s);
}

/* Lets go of a pod whose labels no longer match: its owner reference to us goes. */
static void release(struct rsync *s, const Coracle__V1__Pod *p)
{
    s->pending++;
    cm_release(ctrl_cm(s->c), &kind_pod, &p->base, write_done, s);
}

/* The pods a sync looks at. */
struct podset {
    const Coracle__V1__Pod **p;
    size_t n, cap;
};

static int collect(const ProtobufCMessage *obj, void *arg)
{
    struct podset *ps = arg;
    ps->p = xgrow(ps->p, &ps->cap, ps->n + 1, sizeof(*ps->p));
    ps->p[ps->n++] = (const Coracle__V1__Pod *)obj;
    return 0;
}

static bool labels_superset(const Coracle__V1__ObjectMeta *have,
                            const Coracle__V1__ObjectMeta *want)
{
    if (!want)
        return true;
    for (size_t i = 0; i < want->n_labels; i++) {
        bool found = false;
        for (size_t j = 0; have && j < have->n_labels && !found; j++)
            found = !strcmp(have->labels[j]->key, want->labels[i]->key) &&
                    !strcmp(have->labels[j]->value ? have->labels[j]->value : "",
                            want->labels[i]->value ? want->labels[i]->value : "");
        if (!found)
            return false;
    }
    return true;
}

static bool status_equal(const Coracle__V1__ReplicaSetStatus *a,
                         const Coracle__V1__ReplicaSetStatus *b)
{
    if (!a)
        return false;
    return a->replicas == b->replicas && a->fullylabeledreplicas == b->fullylabeledreplicas &&
           a->readyreplicas == b->readyreplicas && a->availablereplicas == b->availablereplicas &&
           a->observedgeneration == b->observedgeneration &&
           a->has_observedgeneration == b->has_observedgeneration;
}

static void rs_sync(ctrl_t *c, const char *key, void *state)
{
    cm_t *cm = ctrl_cm(c);
    char *ns = xstrdup(key), *name = strchr(ns, '/');
    *name++ = '\0';
    const Coracle__V1__ReplicaSet *rs =
        (const Coracle__V1__ReplicaSet *)cm_get(cm, &kind_replicaset, ns, name);
    if (!rs) {
        cm_expect_forget(c, key);
        ctrl_done(c, key, true, NULL);
        free(ns);
        return;
    }
    struct rsync *s = xcalloc(1, sizeof(*s));
    s->c = c;
    s->key = xstrdup(key);
    s->pending = 1; /* the sync itself, ended below */
    struct podset ps = {0}, orphans = {0};
    cm_owned(cm, &kind_pod, ns, cm_uid(&rs->base), collect, &ps);
    bool deleting = rs->metadata && rs->metadata->deletiontimestamp;
    struct sel *sel = NULL;
    bool selects = rs->spec && cm_selector(rs->spec->selector, &sel) && !sel_empty(sel);
    if (selects && !deleting) {
        cm_owned(cm, &kind_pod, ns, "", collect, &orphans);
        for (size_t i = 0; i < orphans.n; i++)
            if (cm_pod_active(orphans.p[i]) && cm_labels_match(sel, orphans.p[i]->metadata))
                adopt(s, rs, orphans.p[i]);
    }
    /* the active ones, and what their status says */
    const Coracle__V1__ReplicaSetSpec *spec = rs->spec;
    int32_t want = spec && spec->has_replicas ? spec->replicas : 1;
    int32_t min_ready = spec && spec->has_minreadyseconds ? spec->minreadyseconds : 0;
    const Coracle__V1__PodTemplateSpec *tmpl = spec ? spec->template_ : NULL;
    int64_t now_s = now_ns() / 1000000000;
    size_t active = 0;
    int32_t labeled = 0, ready = 0, available = 0, terminating = 0;
    bool wait_available = false;
    for (size_t i = 0; i < ps.n; i++) {
        const Coracle__V1__Pod *p = ps.p[i];
        if (!cm_pod_active(p)) {
            if (p->metadata && p->metadata->deletiontimestamp)
                terminating++;
            continue;
        }
        if (selects && !cm_labels_match(sel, p->metadata)) {
            if (!deleting)
                release(s, p);
            continue;
        }
        ps.p[active++] = p;
        if (labels_superset(p->metadata, tmpl ? tmpl->metadata : NULL))
            labeled++;
        if (cm_pod_ready(p)) {
            ready++;
            if (cm_pod_available(p, min_ready, now_s))
                available++;
            else
                wait_available = true;
        }
    }
    if (cm_satisfied(c, key) && !deleting && !s->adopted) {
        long diff = (long)active - want;
        if (diff < 0) {
            int n = (int)(-diff > BURST ? BURST : -diff);
            cm_expect(c, key, n, 0);
            char *gen = xconcat(name, "-", NULL);
            for (int i = 0; i < n; i++) {
                struct cm_pod_parts pp;
                cm_pod_from_template(&pp, tmpl, &kind_replicaset, &rs->base, gen);
                s->pending++;
                cm_call(cm, &kind_pod, "Create", &pp.pod.base, create_done, s);
            }
            free(gen);
        } else if (diff > 0) {
            int n = (int)(diff > BURST ? BURST : diff);
            qsort(ps.p, active, sizeof(*ps.p), cm_pod_delete_order);
            cm_expect(c, key, 0, n);
            for (int i = 0; i < n; i++) {
                const Coracle__V1__ObjectMeta *pm = ps.p[i]->metadata;
                s->pending++;
                ctrl_event(c, &kind_replicaset, &rs->base, "Normal", "SuccessfulDelete",
                           "Deleted pod: %s", pm->name);
                cm_delete(cm, &kind_pod, pm->namespace_, pm->name, pm->uid, NULL, delete_done, s);
            }
        }
    }
    /* status, written when it changed */
    Coracle__V1__ReplicaSetStatus st = CORACLE__V1__REPLICA_SET_STATUS__INIT;
    st.has_replicas = st.has_fullylabeledreplicas = st.has_readyreplicas = 1;
    st.has_availablereplicas = 1;
    st.replicas = (int32_t)active;
    st.fullylabeledreplicas = labeled;
    st.readyreplicas = ready;
    st.availablereplicas = available;
    if (terminating) {
        st.has_terminatingreplicas = 1;
        st.terminatingreplicas = terminating;
    }
    if (rs->metadata && rs->metadata->has_generation) {
        st.has_observedgeneration = 1;
        st.observedgeneration = rs->metadata->generation;
    }
    if (!status_equal(rs->status, &st)) {
        Coracle__V1__ReplicaSet upd = *rs;
        if (rs->status) {
            st.n_conditions = rs->status->n_conditions;
            st.conditions = rs->status->conditions;
        }
        upd.status = &st;
        s->pending++;
        cm_call(cm, &kind_replicaset, "UpdateStatus", &upd.base, write_done, s);
    }
    if (wait_available && min_ready > 0)
        ctrl_enqueue_after(c, key, (int64_t)min_ready * 1000 + 100);
    free(ps.p);
    free(orphans.p);
    sel_free(sel);
    free(ns);
    rsync_finish(s);
}

const struct ctrl_def ctrl_replicaset = {
    .name = "replicaset",
    .workers = 5,
    .setup = rs_setup,
    .sync = rs_sync,
};
