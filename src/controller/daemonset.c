/*
 * The DaemonSet controller, as Kubernetes' (pkg/controller/daemon): one
 * pod of a DaemonSet on every node that should run it, none elsewhere.
 *
 * A node should run the pod when the template, as a pod with the daemon
 * tolerations Kubernetes adds (not-ready and unreachable NoExecute; disk,
 * memory and pid pressure, unschedulable, and network-unavailable for
 * hostNetwork, NoSchedule), passes the scheduler's NodeName,
 * NodeAffinity (nodeSelector, required node affinity) and
 * TaintToleration filters (fit.h: a node not Ready counts as tainted
 * not-ready NoSchedule, as coracle-scheduler sees it); a pod already
 * there may stay while the node's NoExecute taints are tolerated. A cordon
 * changes neither: the pod tolerates unschedulable, as in Kubernetes. Pods
 * are created unscheduled with a required node affinity on the node's
 * metadata.name, which coracle-scheduler binds, as Kubernetes has done
 * since ScheduleDaemonSetPods.
 *
 * Revisions: Kubernetes keeps a ControllerRevision per template; that is
 * not a kind here, so the template's hash (cm_template_hash, collision
 * count included) is the revision, put on each pod as the
 * controller-revision-hash label. RollingUpdate replaces old pods within
 * maxUnavailable, or with maxSurge new pods first; OnDelete waits for
 * pods to be deleted. Status counts nodes as Kubernetes does, so `kubectl
 * rollout status ds/x` reads it.
 *
 * Kubernetes leaves the pods bound to a deleted node to its pod garbage
 * collector; coracle has none, so this controller deletes its own pods
 * on nodes that no longer exist.
 */
#include "config.h"

#include "controllers.h"
#include "daemonset_int.h"
#include "fit.h"
#include "sel.h"
#include "smap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define BURST 250 /* Kubernetes' BurstReplicas for DaemonSets */
#define FAILED_BACKOFF_FIRST_MS 1000
#define FAILED_BACKOFF_MAX_MS (15 * 60 * 1000)

static const char *S(const char *s)
{
    return s ? s : "";
}

/* The tolerations every daemon pod gets (util.AddOrUpdateDaemonPodTolerations). */
static const struct {
    const char *key, *effect;
    bool host_network_only;
} daemon_tolerations[] = {
    {"node.kubernetes.io/not-ready", "NoExecute", false},
    {"node.kubernetes.io/unreachable", "NoExecute", false},
    {"node.kubernetes.io/disk-pressure", "NoSchedule", false},
    {"node.kubernetes.io/memory-pressure", "NoSchedule", false},
    {"node.kubernetes.io/pid-pressure", "NoSchedule", false},
    {"node.kubernetes.io/unschedulable", "NoSchedule", false},
    {"node.kubernetes.io/network-unavailable", "NoSchedule", true},
};
_Static_assert(sizeof(daemon_tolerations) / sizeof(daemon_tolerations[0]) == DS_N_TOLERATIONS,
               "struct probe holds them all");

/* The controller's state: the backoff of deleting failed pods, per DaemonSet and node. */
struct ds_state {
    smap_t *backoff; /* "uid/observedGeneration/node" -> struct backoff */
};

struct backoff {
    int64_t last_ns;
    int64_t delay_ms;
};

/* ------------------------------------------------------------ placement */

static bool same_toleration(const Coracle__V1__Toleration *a, const Coracle__V1__Toleration *b)
{
    return !strcmp(S(a->key), S(b->key)) && !strcmp(S(a->operator_), S(b->operator_)) &&
           !strcmp(S(a->value), S(b->value)) && !strcmp(S(a->effect), S(b->effect));
}

void ds_probe_init(struct probe *pr, const Coracle__V1__DaemonSet *ds)
{
    const Coracle__V1__PodTemplateSpec *t = ds->spec ? ds->spec->template_ : NULL;
    pr->pod = (Coracle__V1__Pod)CORACLE__V1__POD__INIT;
    pr->spec = (Coracle__V1__PodSpec)CORACLE__V1__POD_SPEC__INIT;
    if (t && t->spec)
        pr->spec = *t->spec;
    size_t n = pr->spec.n_tolerations;
    pr->tols = xmalloc((n + DS_N_TOLERATIONS) * sizeof(*pr->tols));
    if (n)
        memcpy(pr->tols, pr->spec.tolerations, n * sizeof(*pr->tols));
    for (size_t i = 0; i < DS_N_TOLERATIONS; i++) {
        if (daemon_tolerations[i].host_network_only && !pr->spec.hostnetwork)
            continue;
        Coracle__V1__Toleration *a = &pr->added[i];
        *a = (Coracle__V1__Toleration)CORACLE__V1__TOLERATION__INIT;
        a->key = (char *)daemon_tolerations[i].key;
        a->operator_ = "Exists";
        a->effect = (char *)daemon_tolerations[i].effect;
        size_t j = 0;
        while (j < n && !same_toleration(pr->tols[j], a))
            j++;
        pr->tols[j] = a; /* replaces an equal one (tolerationSeconds dropped) or appends */
        if (j == n)
            n++;
    }
    pr->spec.tolerations = pr->tols;
    pr->spec.n_tolerations = n;
    pr->pod.metadata = t ? t->metadata : NULL;
    pr->pod.spec = &pr->spec;
}

void ds_probe_free(struct probe *pr)
{
    free(pr->tols);
}

bool ds_should_run(const struct probe *pr, const Coracle__V1__Node *node, bool *stay)
{
    struct sched_node n = {0};
    char why[256];
    n.name = node->metadata ? node->metadata->name : NULL;
    n.node = (Coracle__V1__Node *)node;
    n.ready = sched_node_readiness(node);
    *stay = false;
    if (!n.name || !sched_filter_node_name(&pr->pod, &n) || !sched_filter_affinity(&pr->pod, &n))
        return false;
    if (sched_filter_taints(&pr->pod, &n, why, sizeof(why)))
        return *stay = true;
    const Coracle__V1__NodeSpec *ns = node->spec;
    *stay = true;
    for (size_t i = 0; ns && i < ns->n_taints && *stay; i++) {
        const Coracle__V1__Taint *t = ns->taints[i];
        if (strcmp(S(t->effect), "NoExecute"))
            continue;
        bool tolerated = false;
        for (size_t j = 0; j < pr->spec.n_tolerations && !tolerated; j++)
            tolerated = sched_tolerates(pr->spec.tolerations[j], t->key, t->value, t->effect);
        *stay = tolerated;
    }
    return false;
}

/*
 * The node a daemon pod is for (util.GetTargetNodeName): spec.nodeName,
 * else the one value of a required matchFields metadata.name In; NULL if
 * neither.
 */
static const char *target_node(const Coracle__V1__Pod *p)
{
    const Coracle__V1__PodSpec *sp = p->spec;
    if (!sp)
        return NULL;
    if (sp->nodename && *sp->nodename)
        return sp->nodename;
    const Coracle__V1__NodeSelector *ns =
        sp->affinity && sp->affinity->nodeaffinity
            ? sp->affinity->nodeaffinity->requiredduringschedulingignoredduringexecution
            : NULL;
    for (size_t i = 0; ns && i < ns->n_nodeselectorterms; i++) {
        const Coracle__V1__NodeSelectorTerm *t = ns->nodeselectorterms[i];
        for (size_t j = 0; j < t->n_matchfields; j++) {
            const Coracle__V1__NodeSelectorRequirement *r = t->matchfields[j];
            if (!strcmp(S(r->key), "metadata.name") && !strcmp(S(r->operator_), "In"))
                return r->n_values == 1 ? r->values[0] : NULL;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------- handlers */

static void enqueue_obj(ctrl_t *c, const ProtobufCMessage *obj)
{
    char *key = cm_key(obj);
    ctrl_enqueue(c, key);
    free(key);
}

/* The key of pod's controlling DaemonSet, or NULL (malloc'd). */
static char *owner_key(const ProtobufCMessage *pod)
{
    const Coracle__V1__OwnerReference *o = cm_controller_of(pod);
    if (!o || !o->kind || strcmp(o->kind, "DaemonSet") || !o->name)
        return NULL;
    return xconcat(S(kind_meta(pod)->namespace_), "/", o->name, NULL);
}

struct orphan_walk {
    ctrl_t *c;
    const Coracle__V1__Pod *pod;
};

static int offer_orphan(const ProtobufCMessage *obj, void *arg)
{
    struct orphan_walk *w = arg;
    const Coracle__V1__DaemonSet *ds = (const Coracle__V1__DaemonSet *)obj;
    struct sel *sel;
    if (strcmp(S(ds->metadata->namespace_), S(w->pod->metadata->namespace_)) || !ds->spec ||
        !cm_selector(ds->spec->selector, &sel))
        return 0;
    if (!sel_empty(sel) && cm_labels_match(sel, w->pod->metadata))
        enqueue_obj(w->c, obj);
    sel_free(sel);
    return 0;
}

/* A pod changed: enqueue its DaemonSet, or for an orphan every DaemonSet selecting it. */
static void enqueue_owner(ctrl_t *c, const Coracle__V1__Pod *pod)
{
    char *key = owner_key(&pod->base);
    if (key) {
        ctrl_enqueue(c, key);
        free(key);
        return;
    }
    if (cm_controller_of(&pod->base) || !cm_pod_active(pod))
        return;
    struct orphan_walk w = {c, pod};
    inf_foreach(cm_informer(ctrl_cm(c), &kind_daemonset), offer_orphan, &w);
}

static void pod_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    char *key = owner_key(obj);
    if (key)
        cm_observed(arg, key, 1, 0);
    free(key);
    enqueue_owner(arg, (const Coracle__V1__Pod *)obj);
}

/* The pod's PodScheduled condition if the scheduler found no place for it. */
static const Coracle__V1__PodCondition *unschedulable(const Coracle__V1__Pod *p)
{
    for (size_t i = 0; p->status && i < p->status->n_conditions; i++) {
        const Coracle__V1__PodCondition *c = p->status->conditions[i];
        if (!strcmp(S(c->type), "PodScheduled") && !strcmp(S(c->status), "False") &&
            !strcmp(S(c->reason), "Unschedulable"))
            return c;
    }
    return NULL;
}

/*
 * FailedPlacement, once per new scheduling verdict: Kubernetes wrote it
 * when it placed daemon pods itself; the scheduler places them now, so
 * its verdict on a daemon pod is reported on the DaemonSet as well.
 */
static void report_placement(ctrl_t *c, const Coracle__V1__Pod *old, const Coracle__V1__Pod *p)
{
    const Coracle__V1__PodCondition *now = unschedulable(p), *before = unschedulable(old);
    const char *node = target_node(p);
    if (!now || !node || (before && !strcmp(S(before->message), S(now->message))))
        return;
    const Coracle__V1__OwnerReference *o = cm_controller_of(&p->base);
    const ProtobufCMessage *ds =
        cm_get(ctrl_cm(c), &kind_daemonset, p->metadata->namespace_, o->name);
    if (ds && !strcmp(cm_uid(ds), S(o->uid)))
        ctrl_event(c, &kind_daemonset, ds, "Warning", "FailedPlacement",
                   "failed to place pod on \"%s\": %s", node, S(now->message));
}

static void pod_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                       void *arg)
{
    ctrl_t *c = arg;
    const Coracle__V1__OwnerReference *a = cm_controller_of(old), *b = cm_controller_of(obj);
    if (a && (!b || strcmp(S(a->uid), S(b->uid))))
        enqueue_owner(c, (const Coracle__V1__Pod *)old);
    enqueue_owner(c, (const Coracle__V1__Pod *)obj);
    char *key = owner_key(obj);
    if (key)
        report_placement(c, (const Coracle__V1__Pod *)old, (const Coracle__V1__Pod *)obj);
    free(key);
}

static void pod_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    char *key = owner_key(obj);
    if (key) {
        cm_observed(arg, key, 0, 1);
        ctrl_enqueue(arg, key);
    }
    free(key);
}

static void ds_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    enqueue_obj(arg, obj);
}

static void ds_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                      void *arg)
{
    enqueue_obj(arg, obj);
}

static void ds_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    char *key = cm_key(obj);
    cm_expect_forget(arg, key);
    ctrl_enqueue(arg, key); /* the sync finds it gone */
    free(key);
}

/* A node changed: the DaemonSets whose verdict on it changed are enqueued. */
struct node_walk {
    ctrl_t *c;
    const Coracle__V1__Node *old, *cur; /* old NULL: added; cur NULL: deleted */
};

static int node_changed_for(const ProtobufCMessage *obj, void *arg)
{
    struct node_walk *w = arg;
    struct probe pr;
    bool stay_old = false, stay_cur = false, run_old = false, run_cur = false;
    ds_probe_init(&pr, (const Coracle__V1__DaemonSet *)obj);
    if (w->old)
        run_old = ds_should_run(&pr, w->old, &stay_old);
    if (w->cur)
        run_cur = ds_should_run(&pr, w->cur, &stay_cur);
    ds_probe_free(&pr);
    if (!w->cur || run_old != run_cur || stay_old != stay_cur)
        enqueue_obj(w->c, obj);
    return 0;
}

static void node_each(ctrl_t *c, const ProtobufCMessage *old, const ProtobufCMessage *cur)
{
    struct node_walk w = {c, (const Coracle__V1__Node *)old, (const Coracle__V1__Node *)cur};
    inf_foreach(cm_informer(ctrl_cm(c), &kind_daemonset), node_changed_for, &w);
}

static void node_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    node_each(arg, NULL, obj);
}

static void node_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                        void *arg)
{
    node_each(arg, old, obj);
}

static void node_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    node_each(arg, obj, NULL);
}

static void backoff_free(void *v)
{
    free(v);
}

static void *ds_setup(cm_t *cm, ctrl_t *c)
{
    struct inf_handlers dh = {ds_add, ds_update, ds_delete, NULL, c};
    struct inf_handlers ph = {pod_add, pod_update, pod_delete, NULL, c};
    struct inf_handlers nh = {node_add, node_update, node_delete, NULL, c};
    cm_on(cm, &kind_daemonset, &dh);
    cm_on(cm, &kind_pod, &ph);
    cm_on(cm, &kind_node, &nh);
    struct ds_state *st = xcalloc(1, sizeof(*st));
    st->backoff = smap_new();
    return st;
}

static void ds_free(void *state)
{
    struct ds_state *st = state;
    if (!st)
        return;
    smap_free(st->backoff, backoff_free);
    free(st);
}

/* ------------------------------------------------------------------ sync */

static void dsync_finish(struct dsync *s)
{
    if (--s->pending > 0)
        return;
    ctrl_done(s->c, s->key, s->errors == 0, s->why);
    free(s->why);
    free(s->key);
    free(s);
}

static void dsync_error(struct dsync *s, const char *what, const char *message)
{
    s->errors++;
    if (!s->why)
        s->why = xasprintf("%s: %s", what, message);
}

static void write_done(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    if (code != 0 && code != 5 /* NOT_FOUND: already gone */)
        dsync_error(arg, "update", message);
    dsync_finish(arg);
}

/* The DaemonSet of the sync s, from the cache (NULL if gone). */
static const ProtobufCMessage *dsync_owner(const struct dsync *s)
{
    char *ns = xstrdup(s->key), *name = strchr(ns, '/');
    *name++ = '\0';
    const ProtobufCMessage *ds = cm_get(ctrl_cm(s->c), &kind_daemonset, ns, name);
    free(ns);
    return ds;
}

static void create_done(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct dsync *s = arg;
    const ProtobufCMessage *ds = dsync_owner(s);
    if (ds && code == 0 && resp)
        ctrl_event(s->c, &kind_daemonset, ds, "Normal", "SuccessfulCreate", "Created pod: %s",
                   kind_meta(resp)->name);
    else if (ds && code != 0)
        ctrl_event(s->c, &kind_daemonset, ds, "Warning", "FailedCreate", "Error creating: %s",
                   message);
    if (code != 0) {
        cm_observed(s->c, s->key, 1, 0); /* it will never be seen */
        dsync_error(s, "create pod", message);
    }
    dsync_finish(s);
}

struct del_arg {
    struct dsync *s;
    char *name;
};

static void delete_done(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct del_arg *d = arg;
    struct dsync *s = d->s;
    const ProtobufCMessage *ds = dsync_owner(s);
    if (ds && code == 0)
        ctrl_event(s->c, &kind_daemonset, ds, "Normal", "SuccessfulDelete", "Deleted pod: %s",
                   d->name);
    if (code != 0) {
        cm_observed(s->c, s->key, 0, 1);
        if (code != 5) {
            if (ds)
                ctrl_event(s->c, &kind_daemonset, ds, "Warning", "FailedDelete",
                           "Error deleting: %s", message);
            dsync_error(s, "delete pod", message);
        }
    }
    free(d->name);
    free(d);
    dsync_finish(s);
}

/* The parts of a daemon pod for one node, borrowed as cm_pod_from_template's. */
struct daemon_pod {
    struct cm_pod_parts pp;
    Coracle__V1__PodSpec spec;
    Coracle__V1__Affinity aff;
    Coracle__V1__NodeAffinity na;
    Coracle__V1__NodeSelector sel;
    Coracle__V1__NodeSelectorTerm term, *terms[1];
    Coracle__V1__NodeSelectorRequirement req, *reqs[1];
    char *values[1];
    Coracle__V1__ObjectMeta__LabelsEntry hash, **labels;
};

/*
 * The pod for node: the template with the daemon tolerations, the hash
 * label, and its required node affinity replaced by the node's name
 * (util.ReplaceDaemonSetPodNodeNameNodeAffinity: the template's own was
 * checked already). dp->labels is malloc'd.
 */
static void daemon_pod(struct daemon_pod *dp, const struct view *v, const char *node,
                       const char *generate_name)
{
    const Coracle__V1__PodTemplateSpec *t = v->ds->spec->template_;
    cm_pod_from_template(&dp->pp, t, &kind_daemonset, &v->ds->base, generate_name);
    dp->spec = v->pr.spec;
    dp->aff = (Coracle__V1__Affinity)CORACLE__V1__AFFINITY__INIT;
    if (dp->spec.affinity)
        dp->aff = *dp->spec.affinity;
    dp->na = (Coracle__V1__NodeAffinity)CORACLE__V1__NODE_AFFINITY__INIT;
    if (dp->aff.nodeaffinity)
        dp->na = *dp->aff.nodeaffinity;
    dp->sel = (Coracle__V1__NodeSelector)CORACLE__V1__NODE_SELECTOR__INIT;
    dp->term = (Coracle__V1__NodeSelectorTerm)CORACLE__V1__NODE_SELECTOR_TERM__INIT;
    dp->req = (Coracle__V1__NodeSelectorRequirement)CORACLE__V1__NODE_SELECTOR_REQUIREMENT__INIT;
    dp->values[0] = (char *)node;
    dp->req.key = "metadata.name";
    dp->req.operator_ = "In";
    dp->req.n_values = 1;
    dp->req.values = dp->values;
    dp->reqs[0] = &dp->req;
    dp->term.n_matchfields = 1;
    dp->term.matchfields = dp->reqs;
    dp->terms[0] = &dp->term;
    dp->sel.n_nodeselectorterms = 1;
    dp->sel.nodeselectorterms = dp->terms;
    dp->na.requiredduringschedulingignoredduringexecution = &dp->sel;
    dp->aff.nodeaffinity = &dp->na;
    dp->spec.affinity = &dp->aff;
    dp->pp.pod.spec = &dp->spec;
    /* the template's labels, the hash label set */
    Coracle__V1__ObjectMeta *m = &dp->pp.meta;
    dp->hash = (Coracle__V1__ObjectMeta__LabelsEntry)CORACLE__V1__OBJECT_META__LABELS_ENTRY__INIT;
    dp->hash.key = DS_HASH_LABEL;
    dp->hash.value = (char *)v->hash;
    dp->labels = xmalloc((m->n_labels + 1) * sizeof(*dp->labels));
    size_t n = 0;
    for (size_t i = 0; i < m->n_labels; i++)
        if (strcmp(S(m->labels[i]->key), DS_HASH_LABEL))
            dp->labels[n++] = m->labels[i];
    dp->labels[n++] = &dp->hash;
    m->labels = dp->labels;
    m->n_labels = n;
}

static const char *label_of(const Coracle__V1__Pod *p, const char *key)
{
    const Coracle__V1__ObjectMeta *m = p->metadata;
    for (size_t i = 0; m && i < m->n_labels; i++)
        if (!strcmp(S(m->labels[i]->key), key))
            return S(m->labels[i]->value);
    return NULL;
}

/* Of the template the DaemonSet has now (util.IsPodUpdated). */
bool ds_pod_updated(const struct view *v, const Coracle__V1__Pod *p)
{
    const char *h = label_of(p, DS_HASH_LABEL);
    return h && !strcmp(h, v->hash);
}

static const char *phase(const Coracle__V1__Pod *p)
{
    return p->status ? S(p->status->phase) : "";
}

static bool terminal(const Coracle__V1__Pod *p)
{
    return !strcmp(phase(p), "Succeeded") || !strcmp(phase(p), "Failed");
}

bool ds_deleting(const Coracle__V1__Pod *p)
{
    return p->metadata && p->metadata->deletiontimestamp;
}

bool ds_available(const struct view *v, const Coracle__V1__Pod *p)
{
    return cm_pod_available(p, v->min_ready, v->now_s);
}

static int64_t created(const Coracle__V1__Pod *p)
{
    const Coracle__V1__Time *t = p->metadata ? p->metadata->creationtimestamp : NULL;
    return t ? t->seconds : 0;
}

/* podByCreationTimestampAndPhase: scheduled first, then the oldest, then by name. */
static int oldest_first(const void *pa, const void *pb)
{
    const Coracle__V1__Pod *a = *(const Coracle__V1__Pod *const *)pa;
    const Coracle__V1__Pod *b = *(const Coracle__V1__Pod *const *)pb;
    bool sa = a->spec && a->spec->nodename && *a->spec->nodename;
    bool sb = b->spec && b->spec->nodename && *b->spec->nodename;
    if (sa != sb)
        return sa ? -1 : 1;
    if (created(a) != created(b))
        return created(a) < created(b) ? -1 : 1;
    return strcmp(S(a->metadata->name), S(b->metadata->name));
}

/* ----------------------------------------------------------- claim pods */

struct claim {
    struct dsync *s;
    struct view *v;
    const struct sel *sel;
    bool orphans;
};

static void on_node_add(struct view *v, const char *node, const Coracle__V1__Pod *p)
{
    struct on_node *on = smap_get(v->by_node, node);
    if (!on) {
        on = xcalloc(1, sizeof(*on));
        smap_put(v->by_node, node, on);
    }
    *XPUSH(on->p, on->n, on->cap) = p;
}

/*
 * The ControllerRefManager's claim: an owned pod that no longer matches
 * is released, a matching orphan adopted (and counted at once, as
 * ClaimPods returns it); the pods kept are grouped by their target node
 * (terminal ones being deleted left out, as getNodesToDaemonPods does).
 */
static int claim_one(const ProtobufCMessage *obj, void *arg)
{
    struct claim *cl = arg;
    const Coracle__V1__Pod *p = (const Coracle__V1__Pod *)obj;
    bool match = cm_labels_match(cl->sel, p->metadata);
    cm_t *cm = ctrl_cm(cl->s->c);
    if (cl->orphans) {
        if (!match || ds_deleting(p))
            return 0;
        cl->s->pending++;
        cm_adopt(cm, &kind_pod, obj, &kind_daemonset, &cl->v->ds->base, write_done, cl->s);
    } else if (!match) {
        if (!ds_deleting(p)) {
            cl->s->pending++;
            cm_release(cm, &kind_pod, obj, write_done, cl->s);
        }
        return 0;
    }
    const char *node = target_node(p);
    if (node && !(terminal(p) && ds_deleting(p)))
        on_node_add(cl->v, node, p);
    return 0;
}

/* ---------------------------------------------------------------- manage */

struct gc_walk {
    int64_t now;
    char **keys;
    size_t n, cap;
};

static int backoff_stale(const char *key, void *val, void *arg)
{
    struct gc_walk *w = arg;
    const struct backoff *b = val;
    if (w->now - b->last_ns > 2LL * FAILED_BACKOFF_MAX_MS * 1000000)
        *XPUSH(w->keys, w->n, w->cap) = xstrdup(key);
    return 0;
}

/* Forgets backoffs quiet for twice the longest delay, as Kubernetes' Backoff.GC. */
static void backoff_gc(smap_t *m, int64_t now)
{
    struct gc_walk w = {now, NULL, 0, 0};
    smap_each(m, backoff_stale, &w);
    for (size_t i = 0; i < w.n; i++) {
        free(smap_del(m, w.keys[i]));
        free(w.keys[i]);
    }
    free(w.keys);
}

/* Whether the failed pod's deletion on node must wait (Kubernetes' failedPodsBackoff). */
static bool failed_backoff(struct dsync *s, struct view *v, const char *node)
{
    struct ds_state *st = ctrl_state(s->c);
    const Coracle__V1__DaemonSetStatus *dst = v->ds->status;
    char *key = xasprintf("%s/%lld/%s", cm_uid(&v->ds->base),
                          (long long)(dst ? dst->observedgeneration : 0), node);
    int64_t now = now_ns();
    struct backoff *b = smap_get(st->backoff, key);
    if (b && now - b->last_ns < b->delay_ms * 1000000) {
        ctrl_enqueue_after(s->c, s->key, b->delay_ms - (now - b->last_ns) / 1000000 + 1);
        free(key);
        return true;
    }
    if (!b) {
        backoff_gc(st->backoff, now);
        b = xcalloc(1, sizeof(*b));
        b->delay_ms = FAILED_BACKOFF_FIRST_MS;
        smap_put(st->backoff, key, b);
    } else if (now - b->last_ns > 2LL * FAILED_BACKOFF_MAX_MS * 1000000) {
        b->delay_ms = FAILED_BACKOFF_FIRST_MS; /* long quiet: start over */
    } else {
        b->delay_ms =
            b->delay_ms * 2 > FAILED_BACKOFF_MAX_MS ? FAILED_BACKOFF_MAX_MS : b->delay_ms * 2;
    }
    b->last_ns = now;
    free(key);
    return false;
}

void ds_to_create(struct view *v, const char *node)
{
    *XPUSH(v->create, v->n_create, v->cap_create) = node;
}

void ds_to_delete(struct view *v, const Coracle__V1__Pod *p)
{
    *XPUSH(v->del, v->n_del, v->cap_del) = p;
}

/*
 * With surge, two pods may share a node: the oldest old one while the
 * oldest new one is not yet available (unless the old one is not ready
 * either). Every other pod goes.
 */
static void prune_surge(struct view *v, const Coracle__V1__Pod **run, size_t n)
{
    const Coracle__V1__Pod *oldest_new = NULL, *oldest_old = NULL;
    for (size_t i = 0; i < n; i++) {
        const Coracle__V1__Pod **slot = ds_pod_updated(v, run[i]) ? &oldest_new : &oldest_old;
        if (!*slot)
            *slot = run[i];
        else
            ds_to_delete(v, run[i]);
    }
    if (oldest_new && oldest_old && (!cm_pod_ready(oldest_old) || ds_available(v, oldest_new)))
        ds_to_delete(v, oldest_old);
}

/* podsShouldBeOnNode for one node. */
static void manage_node(struct dsync *s, struct view *v, const Coracle__V1__Node *node)
{
    const char *name = node->metadata->name;
    bool stay, run = ds_should_run(&v->pr, node, &stay);
    struct on_node *on = smap_get(v->by_node, name);
    if (run && !on) {
        ds_to_create(v, name);
        return;
    }
    if (!on)
        return;
    if (!stay) {
        for (size_t i = 0; i < on->n; i++)
            if (!ds_deleting(on->p[i]))
                ds_to_delete(v, on->p[i]);
        return;
    }
    const ProtobufCMessage *ds = &v->ds->base;
    const Coracle__V1__Pod **live = xmalloc(on->n * sizeof(*live));
    size_t n = 0;
    for (size_t i = 0; i < on->n; i++) {
        const Coracle__V1__Pod *p = on->p[i];
        const Coracle__V1__ObjectMeta *m = p->metadata;
        if (ds_deleting(p))
            continue;
        if (!strcmp(phase(p), "Failed")) {
            /* a kubelet rejecting the pod would fight the controller: back off */
            if (failed_backoff(s, v, name))
                continue;
            ctrl_event(s->c, &kind_daemonset, ds, "Warning", "FailedDaemonPod",
                       "Found failed daemon pod %s/%s on node %s, will try to kill it",
                       S(m->namespace_), S(m->name), name);
            ds_to_delete(v, p);
        } else if (!strcmp(phase(p), "Succeeded")) {
            ctrl_event(s->c, &kind_daemonset, ds, "Normal", "SucceededDaemonPod",
                       "Found succeeded daemon pod %s/%s on node %s, will try to delete it",
                       S(m->namespace_), S(m->name), name);
            ds_to_delete(v, p);
        } else {
            live[n++] = p;
        }
    }
    qsort(live, n, sizeof(*live), oldest_first);
    if (ds_max_surge(v, 1) == 0) {
        for (size_t i = 1; i < n; i++) /* the oldest stays */
            ds_to_delete(v, live[i]);
    } else if (n == 0 && run) {
        ds_to_create(v, name); /* surging: a node keeps at least one pod */
    } else if (n > 1) {
        prune_surge(v, live, n);
    }
    free(live);
}

struct manage_walk {
    struct dsync *s;
    struct view *v;
};

static int manage_one(const ProtobufCMessage *obj, void *arg)
{
    struct manage_walk *w = arg;
    const Coracle__V1__Node *node = (const Coracle__V1__Node *)obj;
    if (node->metadata && node->metadata->name)
        manage_node(w->s, w->v, node);
    return 0;
}

/* Pods for nodes that are gone: Kubernetes' pod GC would take the bound ones. */
static int orphaned_on(const char *node, void *val, void *arg)
{
    struct view *v = arg;
    const struct on_node *on = val;
    if (inf_get(v->nodes, NULL, node))
        return 0;
    for (size_t i = 0; i < on->n; i++)
        if (!ds_deleting(on->p[i]))
            ds_to_delete(v, on->p[i]);
    return 0;
}

/* Writes what manage and the rolling update decided (syncNodes), at most BURST of each. */
int ds_sync_nodes(struct dsync *s, struct view *v)
{
    cm_t *cm = ctrl_cm(s->c);
    int nc = v->n_create > BURST ? BURST : (int)v->n_create;
    int nd = v->n_del > BURST ? BURST : (int)v->n_del;
    cm_expect(s->c, s->key, nc, nd);
    char *gen = xconcat(v->name, "-", NULL);
    for (int i = 0; i < nc; i++) {
        struct daemon_pod dp;
        daemon_pod(&dp, v, v->create[i], gen);
        s->pending++;
        cm_call(cm, &kind_pod, "Create", &dp.pp.pod.base, create_done, s);
        free(dp.labels);
    }
    free(gen);
    for (int i = 0; i < nd; i++) {
        const Coracle__V1__ObjectMeta *m = v->del[i]->metadata;
        struct del_arg *d = xmalloc(sizeof(*d));
        d->s = s;
        d->name = xstrdup(S(m->name));
        s->pending++;
        cm_delete(cm, &kind_pod, m->namespace_, m->name, m->uid, NULL, delete_done, d);
    }
    v->n_create = v->n_del = 0;
    return nc + nd;
}

static int manage(struct dsync *s, struct view *v)
{
    struct manage_walk w = {s, v};
    inf_foreach(v->nodes, manage_one, &w);
    smap_each(v->by_node, orphaned_on, v);
    return ds_sync_nodes(s, v);
}

/* ---------------------------------------------------------------- status */

struct counts {
    struct view *v;
    int32_t desired, current, misscheduled, ready, available, updated;
};

static int count_node(const ProtobufCMessage *obj, void *arg)
{
    struct counts *k = arg;
    const Coracle__V1__Node *node = (const Coracle__V1__Node *)obj;
    if (!node->metadata || !node->metadata->name)
        return 0;
    bool stay, run = ds_should_run(&k->v->pr, node, &stay);
    struct on_node *on = smap_get(k->v->by_node, node->metadata->name);
    bool scheduled = on && on->n > 0;
    if (!run) {
        k->misscheduled += scheduled;
        return 0;
    }
    k->desired++;
    if (!scheduled)
        return 0;
    k->current++;
    qsort(on->p, on->n, sizeof(*on->p), oldest_first);
    const Coracle__V1__Pod *p = on->p[0];
    if (cm_pod_ready(p)) {
        k->ready++;
        k->available += ds_available(k->v, p);
    }
    k->updated += ds_pod_updated(k->v, p);
    return 0;
}

static void update_status(struct dsync *s, struct view *v, bool observed)
{
    const Coracle__V1__DaemonSet *ds = v->ds;
    struct counts k = {v, 0, 0, 0, 0, 0, 0};
    inf_foreach(v->nodes, count_node, &k);
    const Coracle__V1__DaemonSetStatus *cur = ds->status;
    static const Coracle__V1__DaemonSetStatus none = CORACLE__V1__DAEMON_SET_STATUS__INIT;
    if (!cur)
        cur = &none;
    int64_t gen = ds->metadata->has_generation ? ds->metadata->generation : 0;
    if (cur->desirednumberscheduled == k.desired && cur->currentnumberscheduled == k.current &&
        cur->numbermisscheduled == k.misscheduled && cur->numberready == k.ready &&
        cur->updatednumberscheduled == k.updated && cur->numberavailable == k.available &&
        cur->numberunavailable == k.desired - k.available && cur->observedgeneration >= gen)
        goto requeue;
    Coracle__V1__DaemonSetStatus st = *cur;
    st.has_desirednumberscheduled = st.has_currentnumberscheduled = 1;
    st.has_numbermisscheduled = st.has_numberready = st.has_updatednumberscheduled = 1;
    st.has_numberavailable = st.has_numberunavailable = 1;
    st.desirednumberscheduled = k.desired;
    st.currentnumberscheduled = k.current;
    st.numbermisscheduled = k.misscheduled;
    st.numberready = k.ready;
    st.updatednumberscheduled = k.updated;
    st.numberavailable = k.available;
    st.numberunavailable = k.desired - k.available;
    if (observed) {
        st.has_observedgeneration = 1;
        st.observedgeneration = gen;
    }
    Coracle__V1__DaemonSet upd = *ds;
    upd.status = &st;
    s->pending++;
    cm_call(ctrl_cm(s->c), &kind_daemonset, "UpdateStatus", &upd.base, write_done, s);
requeue:
    /* availability comes with time: look again when minReadySeconds have passed */
    if (v->min_ready > 0 && k.ready != k.available)
        ctrl_enqueue_after(s->c, s->key, (int64_t)v->min_ready * 1000 + 100);
}

/* ------------------------------------------------------------------ sync */

static int free_on_node(const char *key, void *val, void *arg)
{
    struct on_node *on = val;
    free(on->p);
    free(on);
    return 0;
}

static void ds_sync(ctrl_t *c, const char *key, void *state)
{
    cm_t *cm = ctrl_cm(c);
    char *ns = xstrdup(key), *name = strchr(ns, '/');
    *name++ = '\0';
    const Coracle__V1__DaemonSet *ds =
        (const Coracle__V1__DaemonSet *)cm_get(cm, &kind_daemonset, ns, name);
    struct sel *sel = NULL;
    if (!ds)
        cm_expect_forget(c, key);
    else if (ds->spec && cm_selector(ds->spec->selector, &sel) && sel_empty(sel))
        ctrl_event(c, &kind_daemonset, &ds->base, "Warning", "SelectingAll",
                   "This daemon set is selecting all pods. A non-empty selector is required.");
    if (!ds || !sel || sel_empty(sel) || !ds->spec->template_ || ds->metadata->deletiontimestamp) {
        /* gone, selecting nothing or everything, or being deleted: no status to trust */
        sel_free(sel);
        free(ns);
        ctrl_done(c, key, true, NULL);
        return;
    }
    struct dsync *s = xcalloc(1, sizeof(*s));
    s->c = c;
    s->key = xstrdup(key);
    s->pending = 1; /* the sync itself, ended below */
    struct view v = {0};
    v.ds = ds;
    v.name = name;
    v.by_node = smap_new();
    v.nodes = cm_informer(cm, &kind_node);
    v.min_ready = ds->spec->has_minreadyseconds ? ds->spec->minreadyseconds : 0;
    v.now_s = now_ns() / 1000000000;
    ds_probe_init(&v.pr, ds);
    const Coracle__V1__DaemonSetStatus *st = ds->status;
    cm_template_hash(ds->spec->template_, st && st->has_collisioncount ? &st->collisioncount : NULL,
                     v.hash);
    struct claim cl = {s, &v, sel, false};
    cm_owned(cm, &kind_pod, ns, cm_uid(&ds->base), claim_one, &cl);
    cl.orphans = true;
    cm_owned(cm, &kind_pod, ns, "", claim_one, &cl);
    bool satisfied = cm_satisfied(c, key);
    if (satisfied && manage(s, &v) == 0)
        ds_rolling_update(s, &v); /* once the nodes have their pods */
    update_status(s, &v, satisfied);
    smap_each(v.by_node, free_on_node, NULL);
    smap_free(v.by_node, NULL);
    ds_probe_free(&v.pr);
    free(v.create);
    free(v.del);
    sel_free(sel);
    free(ns);
    dsync_finish(s);
}

const struct ctrl_def ctrl_daemonset = {
    .name = "daemonset",
    .workers = 2, /* --concurrent-daemonset-syncs */
    .setup = ds_setup,
    .sync = ds_sync,
    .free = ds_free,
};
