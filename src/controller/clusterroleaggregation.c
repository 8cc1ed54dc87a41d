/*
 * The ClusterRole aggregation controller, as Kubernetes'
 * (pkg/controller/clusterroleaggregation): a ClusterRole with an
 * aggregationRule gets as its rules the union of the rules of every other
 * ClusterRole its clusterRoleSelectors match (in name order, each rule
 * once), written back when they differ. Any ClusterRole's change may
 * change an aggregate, so it enqueues every aggregated role, as
 * Kubernetes does. (admin, edit and view are built this way from the
 * system:aggregate-to-* roles and whatever else carries their labels.)
 */
#include "config.h"

#include "controllers.h"
#include "grpc.h"
#include "pb.h"
#include "sel.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

struct agg {
    cm_t *cm;
    ctrl_t *c;
};

static int enqueue_aggregated(const ProtobufCMessage *obj, void *arg)
{
    const Coracle__V1__ClusterRole *r = (const void *)obj;
    struct agg *a = arg;
    if (r->aggregationrule && r->metadata && r->metadata->name)
        ctrl_enqueue(a->c, r->metadata->name);
    return 0;
}

static void enqueue_all(struct agg *a)
{
    inf_foreach(cm_informer(a->cm, &kind_clusterrole), enqueue_aggregated, a);
}

static void on_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    (void)inf, (void)obj;
    enqueue_all(arg);
}

static void on_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                      void *arg)
{
    (void)old;
    on_add(inf, obj, arg);
}

static void *agg_setup(cm_t *cm, ctrl_t *c)
{
    struct agg *a = xcalloc(1, sizeof(*a));
    a->cm = cm;
    a->c = c;
    struct inf_handlers h = {on_add, on_update, on_add, NULL, a};
    cm_on(cm, &kind_clusterrole, &h);
    return a;
}

/* What a sync gathers: the matching roles (borrowed from the cache), then their rules. */
struct gather {
    const Coracle__V1__ClusterRole *self;
    struct sel **sels;
    size_t nsels;
    const Coracle__V1__ClusterRole **roles;
    size_t n;
};

static int gather_one(const ProtobufCMessage *obj, void *arg)
{
    struct gather *g = arg;
    const Coracle__V1__ClusterRole *r = (const void *)obj;
    if (r == g->self || !r->metadata)
        return 0;
    for (size_t i = 0; i < g->nsels; i++) {
        if (cm_labels_match(g->sels[i], r->metadata)) {
            g->roles = xrealloc(g->roles, (g->n + 1) * sizeof(*g->roles));
            g->roles[g->n++] = r;
            break;
        }
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    const Coracle__V1__ClusterRole *x = *(const Coracle__V1__ClusterRole *const *)a;
    const Coracle__V1__ClusterRole *y = *(const Coracle__V1__ClusterRole *const *)b;
    return strcmp(x->metadata->name ? x->metadata->name : "",
                  y->metadata->name ? y->metadata->name : "");
}

/* The union of the gathered roles' rules, each once (borrowed pointers; the array malloc'd). */
static Coracle__V1__PolicyRule **union_rules(const struct gather *g, size_t *n)
{
    Coracle__V1__PolicyRule **v = NULL;
    *n = 0;
    for (size_t i = 0; i < g->n; i++) {
        for (size_t j = 0; j < g->roles[i]->n_rules; j++) {
            Coracle__V1__PolicyRule *r = g->roles[i]->rules[j];
            bool seen = false;
            for (size_t k = 0; k < *n && !seen; k++)
                seen = pb_equal(&v[k]->base, &r->base);
            if (seen)
                continue;
            v = xrealloc(v, (*n + 1) * sizeof(*v));
            v[(*n)++] = r;
        }
    }
    return v;
}

static bool same_rules(Coracle__V1__PolicyRule *const *a, size_t na,
                       Coracle__V1__PolicyRule *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!pb_equal(&a[i]->base, &b[i]->base))
            return false;
    return true;
}

/* The role with rules (copied) in place of its own, for the Update. */
static ProtobufCMessage *with_rules(const Coracle__V1__ClusterRole *r,
                                    Coracle__V1__PolicyRule *const *rules, size_t n)
{
    Coracle__V1__ClusterRole *u = (Coracle__V1__ClusterRole *)pb_clone(&r->base);
    for (size_t i = 0; i < u->n_rules; i++)
        protobuf_c_message_free_unpacked(&u->rules[i]->base, NULL);
    free(u->rules);
    u->rules = n ? xcalloc(n, sizeof(*u->rules)) : NULL;
    for (size_t i = 0; i < n; i++)
        u->rules[i] = (Coracle__V1__PolicyRule *)pb_clone(&rules[i]->base);
    u->n_rules = n;
    return &u->base;
}

static void updated(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    ctrl_t *c = ((void **)arg)[0];
    char *key = ((void **)arg)[1];
    (void)resp;
    bool ok = code == GRPC_OK || code == GRPC_NOT_FOUND;
    ctrl_done(c, key, ok, message);
    free(key);
    free(arg);
}

static void agg_sync(ctrl_t *c, const char *key, void *state)
{
    struct agg *a = state;
    const Coracle__V1__ClusterRole *r = (const void *)cm_get(a->cm, &kind_clusterrole, "", key);
    if (!r || !r->aggregationrule || !r->metadata) {
        ctrl_done(c, key, true, NULL);
        return;
    }
    struct gather g = {.self = r};
    const Coracle__V1__AggregationRule *ar = r->aggregationrule;
    for (size_t i = 0; i < ar->n_clusterroleselectors; i++) {
        struct sel *s;
        if (!cm_selector(ar->clusterroleselectors[i], &s))
            continue;
        g.sels = xrealloc(g.sels, (g.nsels + 1) * sizeof(*g.sels));
        g.sels[g.nsels++] = s;
    }
    inf_foreach(cm_informer(a->cm, &kind_clusterrole), gather_one, &g);
    if (g.n)
        qsort(g.roles, g.n, sizeof(*g.roles), by_name);
    size_t n;
    Coracle__V1__PolicyRule **rules = union_rules(&g, &n);
    if (same_rules(r->rules, r->n_rules, rules, n)) {
        ctrl_done(c, key, true, NULL);
    } else {
        ProtobufCMessage *u = with_rules(r, rules, n);
        void **arg = xcalloc(2, sizeof(*arg));
        arg[0] = c;
        arg[1] = xstrdup(key);
        log_info("%s: %s: %zu rules from %zu roles", ctrl_name(c), key, n, g.n);
        cm_call(a->cm, &kind_clusterrole, "Update", u, updated, arg);
        protobuf_c_message_free_unpacked(u, NULL);
    }
    free(rules);
    for (size_t i = 0; i < g.nsels; i++)
        sel_free(g.sels[i]);
    free(g.sels);
    free(g.roles);
}

const struct ctrl_def ctrl_clusterroleaggregation = {
    .name = "clusterrole-aggregation",
    .workers = 1,
    .setup = agg_setup,
    .sync = agg_sync,
    .free = free,
};
