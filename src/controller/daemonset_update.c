/*
 * The DaemonSet controller's rolling update, as Kubernetes' update.go:
 * once every node has its pod (daemonset.c's reconcile wrote nothing),
 * pods of an old template are replaced. Without maxSurge, old pods are
 * deleted while no more than maxUnavailable of the nodes that should run
 * a pod lack an available one (the reconcile then makes the new pod);
 * with maxSurge, the new pod is made beside the old one on at most
 * maxSurge nodes at a time and the old one deleted once the new one is
 * available. Old pods that are not available anyway are replaced at
 * once.
 */
#include "config.h"

#include "daemonset_int.h"
#include "informer.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* GetScaledValueFromIntOrPercent, rounding up; absent: dflt. */
static int32_t scaled(const Coracle__V1__IntOrString *is, int32_t total, int32_t dflt)
{
    if (!is)
        return dflt;
    if (!(is->has_type && is->type == 1))
        return is->intval;
    const char *s = is->strval ? is->strval : "";
    char *end;
    long pct = strtol(s, &end, 10);
    if (end == s || strcmp(end, "%") || pct < 0)
        return dflt; /* validation keeps these out */
    return (int32_t)((pct * total + 99) / 100);
}

static const Coracle__V1__RollingUpdateDaemonSet *rolling(const struct view *v)
{
    const Coracle__V1__DaemonSetUpdateStrategy *st = v->ds->spec->updatestrategy;
    if (st && st->type && *st->type && strcmp(st->type, "RollingUpdate"))
        return NULL; /* OnDelete */
    static const Coracle__V1__RollingUpdateDaemonSet dflt =
        CORACLE__V1__ROLLING_UPDATE_DAEMON_SET__INIT;
    return st && st->rollingupdate ? st->rollingupdate : &dflt;
}

int32_t ds_max_surge(const struct view *v, int32_t desired)
{
    const Coracle__V1__RollingUpdateDaemonSet *ru = rolling(v);
    return ru ? scaled(ru->maxsurge, desired, 0) : 0;
}

/* The pods on one node, old and new, for the rolling update (findUpdatedPodsOnNode). */
struct node_pods {
    const char *node;
    const Coracle__V1__Pod *new_pod, *old_pod;
    bool ok; /* at most one of each */
};

static struct node_pods split_node(const struct view *v, const char *node, const struct on_node *on)
{
    struct node_pods np = {node, NULL, NULL, true};
    for (size_t i = 0; on && i < on->n; i++) {
        const Coracle__V1__Pod *p = on->p[i];
        if (ds_deleting(p))
            continue;
        const Coracle__V1__Pod **slot = ds_pod_updated(v, p) ? &np.new_pod : &np.old_pod;
        if (*slot)
            np.ok = false;
        *slot = p;
    }
    return np;
}

/* The rolling update's inputs: every node with pods, and every desired node without. */
struct roll {
    struct view *v;
    struct node_pods *np;
    size_t n, cap;
    int32_t desired;
};

static int roll_desired(const ProtobufCMessage *obj, void *arg)
{
    struct roll *r = arg;
    const Coracle__V1__Node *node = (const Coracle__V1__Node *)obj;
    bool stay;
    if (!node->metadata || !node->metadata->name || !ds_should_run(&r->v->pr, node, &stay))
        return 0;
    r->desired++;
    if (!smap_get(r->v->by_node, node->metadata->name))
        *XPUSH(r->np, r->n, r->cap) = split_node(r->v, node->metadata->name, NULL);
    return 0;
}

static int roll_with_pods(const char *node, void *val, void *arg)
{
    struct roll *r = arg;
    *XPUSH(r->np, r->n, r->cap) = split_node(r->v, node, val);
    return 0;
}

static bool node_should_run(const struct view *v, const char *name)
{
    const Coracle__V1__Node *node = (const Coracle__V1__Node *)inf_get(v->nodes, NULL, name);
    bool stay;
    return node && ds_should_run(&v->pr, node, &stay);
}

/* Without surge: delete old pods while no more than maxUnavailable nodes lack an available pod. */
static void roll_unavailable(struct view *v, struct roll *r, int32_t max_unavailable)
{
    int32_t unavailable = 0;
    const Coracle__V1__Pod **cand = xmalloc((r->n + 1) * sizeof(*cand));
    size_t n_cand = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct node_pods *np = &r->np[i];
        if (!np->ok || (!np->old_pod && !np->new_pod) || (np->old_pod && np->new_pod)) {
            unavailable++; /* manage sees to these */
        } else if (np->new_pod) {
            if (!ds_available(v, np->new_pod))
                unavailable++;
        } else if (!ds_available(v, np->old_pod)) {
            ds_to_delete(v, np->old_pod); /* replacing it costs nothing */
        } else if (unavailable < max_unavailable) {
            cand[n_cand++] = np->old_pod;
        }
    }
    int32_t room = max_unavailable - unavailable;
    for (size_t i = 0; room > 0 && i < n_cand; i++, room--)
        ds_to_delete(v, cand[i]);
    free(cand);
}

/*
 * With surge: a new pod beside an old one on at most maxSurge nodes at a
 * time (at once where the old one is unavailable); the old one goes once
 * the new one is available.
 */
static void roll_surge(struct view *v, struct roll *r, int32_t surge)
{
    int32_t surging = 0, avail = 0;
    const char **cand = xmalloc((r->n + 1) * sizeof(*cand));
    const Coracle__V1__Pod **leaving = xmalloc((r->n + 1) * sizeof(*leaving));
    size_t n_cand = 0, n_leaving = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct node_pods *np = &r->np[i];
        if (!np->ok) {
            surging++;
            continue;
        }
        const Coracle__V1__Pod *p = np->old_pod ? np->old_pod : np->new_pod;
        if (p && ds_available(v, p))
            avail++;
        if (!np->old_pod)
            continue; /* manage sees to it */
        if (!np->new_pod) {
            bool run = node_should_run(v, np->node);
            if (!ds_available(v, np->old_pod)) {
                if (run)
                    ds_to_create(v, np->node);
                else
                    ds_to_delete(v, np->old_pod);
            } else if (!run) {
                leaving[n_leaving++] = np->old_pod;
            } else if (surging < surge) {
                cand[n_cand++] = np->node;
            }
        } else if (!ds_available(v, np->new_pod)) {
            surging++;
        } else {
            ds_to_delete(v, np->old_pod);
        }
    }
    /* pods leaving nodes that no longer want them go only as others become available */
    for (int32_t i = 0; i < avail - r->desired && (size_t)i < n_leaving; i++)
        ds_to_delete(v, leaving[i]);
    int32_t room = surge - surging;
    for (size_t i = 0; room > 0 && i < n_cand; i++, room--)
        ds_to_create(v, cand[i]);
    free(cand);
    free(leaving);
}

void ds_rolling_update(struct dsync *s, struct view *v)
{
    const Coracle__V1__RollingUpdateDaemonSet *ru = rolling(v);
    if (!ru)
        return;
    struct roll r = {v, NULL, 0, 0, 0};
    inf_foreach(v->nodes, roll_desired, &r);
    smap_each(v->by_node, roll_with_pods, &r);
    int32_t unavailable = scaled(ru->maxunavailable, r.desired, 1);
    int32_t surge = scaled(ru->maxsurge, r.desired, 0);
    if (r.desired > 0 && unavailable == 0 && surge == 0)
        unavailable = 1; /* an impossible configuration: Kubernetes' default */
    if (surge == 0)
        roll_unavailable(v, &r, unavailable);
    else
        roll_surge(v, &r, surge);
    free(r.np);
    ds_sync_nodes(s, v);
}
