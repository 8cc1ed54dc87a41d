/*
 * nodelife: node lifecycle (lease monitor). See nodelife.h.
 */
#include "config.h"
#include "nodelife.h"
#include "obj.h"
#include "smap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define LEASE_PREFIX "leases/kube-node-lease/"

struct seen {
    int64_t mono;  /* last lease change observed */
    int pods_done; /* pods marked since the node went silent */
};

struct nodelife {
    struct event_base *base;
    store_t *st;
    int64_t grace_ns, start;
    struct nodelife_ops ops;
    smap_t *seen; /* node -> struct seen */
    struct event *timer;
    char **stale;
    size_t nstale;
    bool active;
};

static struct seen *seen_get(nodelife_t *n, const char *node)
{
    struct seen *s = smap_get(n->seen, node);
    if (!s) {
        s = xcalloc(1, sizeof(*s));
        s->mono = n->start;
        smap_put(n->seen, node, s);
    }
    return s;
}

void nodelife_on_change(nodelife_t *n, const struct store_change *ch)
{
    size_t pl = strlen(LEASE_PREFIX);
    if (ch->key_len <= pl || memcmp(ch->key, LEASE_PREFIX, pl) || !ch->val)
        return;
    char *node = xstrndup(ch->key + pl, ch->key_len - pl);
    struct seen *s = seen_get(n, node);
    s->mono = mono_ns();
    s->pods_done = 0;
    free(node);
}

static const char *node_ready(const Coracle__V1__Node *nd)
{
    if (nd->status)
        for (size_t i = 0; i < nd->status->n_conditions; i++)
            if (nd->status->conditions[i]->type &&
                !strcmp(nd->status->conditions[i]->type, "Ready"))
                return nd->status->conditions[i]->status ? nd->status->conditions[i]->status : "";
    return NULL;
}

static int node_cb(const char *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    nodelife_t *n = arg;
    Coracle__V1__Node *nd = (void *)obj_decode(&coracle__v1__node__descriptor, val, vlen);
    if (!nd || !nd->metadata || !nd->metadata->name) {
        obj_free(nd ? &nd->base : NULL);
        return 0;
    }
    const char *name = nd->metadata->name;
    struct seen *s = seen_get(n, name);
    if (mono_ns() - s->mono > n->grace_ns) {
        const char *ready = node_ready(nd);
        if (!ready || strcmp(ready, "Unknown")) {
            log_info("node %s: no lease renewal for %llds, marking it Unknown", name,
                     (long long)((mono_ns() - s->mono) / 1000000000));
            n->ops.mark_node(n->ops.arg, name);
        }
        if (!s->pods_done) {
            s->pods_done = 1;
            n->stale = xrealloc(n->stale, (n->nstale + 1) * sizeof(*n->stale));
            n->stale[n->nstale++] = xstrdup(name);
        }
    }
    obj_free(&nd->base);
    return 0;
}

static int pod_cb(const char *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    nodelife_t *n = arg;
    Coracle__V1__Pod *p = (void *)obj_decode(&coracle__v1__pod__descriptor, val, vlen);
    if (!p)
        return 0;
    const char *node = obj_pod_node(&p->base);
    for (size_t i = 0; *node && i < n->nstale; i++)
        if (!strcmp(node, n->stale[i]) && p->metadata) {
            int ready = 0;
            if (p->status)
                for (size_t j = 0; j < p->status->n_conditions; j++) {
                    Coracle__V1__PodCondition *c = p->status->conditions[j];
                    if (c->type && !strcmp(c->type, "Ready") && c->status &&
                        strcmp(c->status, "False"))
                        ready = 1;
                }
            if (ready)
                n->ops.mark_pod(n->ops.arg, p->metadata->namespace_, p->metadata->name, node);
            break;
        }
    obj_free(&p->base);
    return 0;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    nodelife_t *n = arg;
    store_rtxn_t *t;
    if (!n->active || store_read_begin(n->st, &t) < 0)
        return;
    store_scan(t, "nodes/", 6, NULL, 0, node_cb, n);
    if (n->nstale)
        store_scan(t, "pods/", 5, NULL, 0, pod_cb, n);
    store_read_end(t);
    for (size_t i = 0; i < n->nstale; i++)
        free(n->stale[i]);
    n->nstale = 0;
}

nodelife_t *nodelife_new(struct event_base *base, store_t *st, int64_t grace_s,
                         const struct nodelife_ops *ops)
{
    nodelife_t *n = xcalloc(1, sizeof(*n));
    n->base = base;
    n->st = st;
    n->grace_ns = (grace_s > 0 ? grace_s : 40) * 1000000000LL;
    n->start = mono_ns();
    n->ops = *ops;
    n->active = true;
    n->seen = smap_new();
    int64_t iv = n->grace_ns / 4 / 1000000; /* ms */
    if (iv > 5000)
        iv = 5000;
    if (iv < 250)
        iv = 250;
    n->timer = event_new(base, -1, EV_PERSIST, tick, n);
    struct timeval tv = {iv / 1000, (iv % 1000) * 1000};
    event_add(n->timer, &tv);
    return n;
}

void nodelife_free(nodelife_t *n)
{
    if (!n)
        return;
    event_free(n->timer);
    smap_free(n->seen, free);
    free(n->stale);
    free(n);
}

void nodelife_set_active(nodelife_t *n, bool on)
{
    if (on && !n->active)
        log_info("node lifecycle: running on this apiserver");
    n->active = on;
}
