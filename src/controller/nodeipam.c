/*
 * The node IPAM controller, as Kubernetes' range allocator
 * (pkg/controller/nodeipam/ipam/range_allocator.go): with
 * --allocate-node-cidrs, every Node gets a spec.podCIDR (and podCIDRs)
 * of --node-cidr-mask-size bits carved out of --cluster-cidr, once; the
 * kubelet configures its pod network from it. The apiserver refuses to
 * change a range once set, so a range is only ever taken or given back
 * here.
 *
 * The set of ranges in use is a bitmap rebuilt from the Nodes the
 * informer lists at the start (and marked again for every Node seen
 * with a range, so a range set by hand is never handed out twice); a
 * deleted Node's range is released. Ranges are handed out round-robin
 * from the last one given (cidrset's nextCandidate), so a range just
 * freed is not reused at once. When none is left the Node gets an event
 * CIDRNotAvailable and is synced again after the usual backoff. IPv4
 * only.
 */
#include "config.h"

#include "cidr.h"
#include "controllers.h"
#include "grpc.h"
#include "pb.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Kubernetes' cidrset: a node mask at most 16 bits longer than the cluster's. */
#define MAX_SUBNET_BITS 16

struct ipam {
    ctrl_t *c;
    struct cidr4 cluster;
    int mask;      /* --node-cidr-mask-size */
    uint8_t *used; /* one byte a range */
    size_t n, in_use;
    size_t next; /* where the next search starts */
};

/* The indexes of the node ranges that cidr s overlaps, [*lo, *hi); false if none. */
static bool ipam_span(const struct ipam *a, const char *s, size_t *lo, size_t *hi)
{
    struct cidr4 c;
    if (cidr_parse4(s, &c) < 0)
        return false;
    uint32_t base = cidr_network(&a->cluster), net = cidr_network(&c);
    int shift = 32 - a->mask;
    if (c.bits >= a->mask) { /* inside one node range */
        if (!cidr_contains(&a->cluster, net))
            return false;
        *lo = (net - base) >> shift;
        *hi = *lo + 1;
        return true;
    }
    if (c.bits < a->cluster.bits) /* covers the whole cluster range, or none of it */
        return cidr_contains(&c, base) && (*lo = 0, *hi = a->n, true);
    if (!cidr_contains(&a->cluster, net))
        return false;
    *lo = (net - base) >> shift;
    *hi = *lo + ((size_t)1 << (a->mask - c.bits));
    return true;
}

static void ipam_mark(struct ipam *a, const Coracle__V1__Node *n, bool used)
{
    if (!n->spec)
        return;
    for (size_t i = 0; i < n->spec->n_podcidrs; i++) {
        size_t lo, hi;
        if (!ipam_span(a, n->spec->podcidrs[i], &lo, &hi))
            continue;
        for (size_t j = lo; j < hi && j < a->n; j++) {
            a->in_use += used && !a->used[j];
            a->in_use -= !used && a->used[j];
            a->used[j] = used;
        }
    }
}

static void ipam_added(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    struct ipam *a = ctrl_state(arg);
    ipam_mark(a, (const Coracle__V1__Node *)obj, true);
    ctrl_enqueue_added(inf, obj, arg);
}

static void ipam_updated(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                         void *arg)
{
    struct ipam *a = ctrl_state(arg);
    ipam_mark(a, (const Coracle__V1__Node *)obj, true);
    ctrl_enqueue_updated(inf, old, obj, arg);
}

static void ipam_deleted(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    struct ipam *a = ctrl_state(arg);
    const Coracle__V1__Node *n = (const void *)obj;
    ipam_mark(a, n, false);
    if (n->spec && n->spec->n_podcidrs)
        log_info("%s: released %s of deleted node %s", ctrl_name(arg), n->spec->podcidrs[0],
                 n->metadata ? n->metadata->name : "");
}

static void *ipam_setup(cm_t *cm, ctrl_t *c)
{
    const char *cluster;
    int mask;
    if (!cm_node_cidrs(cm, &cluster, &mask))
        return NULL; /* --allocate-node-cidrs=false: nothing to do */
    struct ipam *a = xcalloc(1, sizeof(*a));
    a->c = c;
    if (cidr_parse4(cluster, &a->cluster) < 0 || mask < a->cluster.bits || mask > 32 ||
        mask - a->cluster.bits > MAX_SUBNET_BITS)
        fatal("--cluster-cidr %s, --node-cidr-mask-size %d: need an IPv4 range at most %d bits "
              "shorter than the node mask",
              cluster, mask, MAX_SUBNET_BITS);
    a->mask = mask;
    a->n = (size_t)1 << (mask - a->cluster.bits);
    a->used = xcalloc(a->n, 1);
    struct inf_handlers h = {ipam_added, ipam_updated, ipam_deleted, NULL, c};
    cm_on(cm, &kind_node, &h);
    return a;
}

static void ipam_free(void *state)
{
    struct ipam *a = state;
    if (a)
        free(a->used);
    free(a);
}

/* The next free range (marked used) into buf, or false when the cluster range is full. */
static bool ipam_next(struct ipam *a, char *buf, size_t len)
{
    for (size_t i = 0; i < a->n; i++) {
        size_t j = (a->next + i) % a->n;
        if (a->used[j])
            continue;
        a->used[j] = 1;
        a->in_use++;
        a->next = (j + 1) % a->n;
        struct cidr4 c = {cidr_network(&a->cluster) + (uint32_t)(j << (32 - a->mask)), a->mask};
        cidr_format4(&c, buf, len);
        return true;
    }
    return false;
}

struct ipam_write {
    struct ipam *a;
    char *key;
    char cidr[32];
};

static void ipam_written(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct ipam_write *w = arg;
    ctrl_t *c = w->a->c;
    if (code == GRPC_OK) {
        log_info("%s: set node %s PodCIDR to [%s]", ctrl_name(c), w->key, w->cidr);
    } else {
        /* give it back: a Node seen later with a range marks it again */
        Coracle__V1__NodeSpec s = CORACLE__V1__NODE_SPEC__INIT;
        Coracle__V1__Node n = CORACLE__V1__NODE__INIT;
        char *one = w->cidr;
        s.podcidrs = &one;
        s.n_podcidrs = 1;
        n.spec = &s;
        ipam_mark(w->a, &n, false);
        const ProtobufCMessage *node = cm_get(ctrl_cm(c), &kind_node, NULL, w->key);
        if (node && code != GRPC_ABORTED && code != GRPC_NOT_FOUND)
            ctrl_event(c, &kind_node, node, "Normal", "CIDRAssignmentFailed",
                       "Node %s status is now: CIDRAssignmentFailed", w->key);
    }
    /* NOT_FOUND: the node went meanwhile; ABORTED: a newer version syncs again */
    ctrl_done(c, w->key, code == GRPC_OK || code == GRPC_NOT_FOUND || code == GRPC_ABORTED,
              message);
    free(w->key);
    free(w);
}

static void ipam_sync(ctrl_t *c, const char *key, void *state)
{
    struct ipam *a = state;
    cm_t *cm = ctrl_cm(c);
    const Coracle__V1__Node *node = (const void *)cm_get(cm, &kind_node, NULL, key);
    if (!a || !node || (node->spec && node->spec->n_podcidrs) ||
        (node->metadata && node->metadata->deletiontimestamp)) {
        ctrl_done(c, key, true, NULL);
        return;
    }
    struct ipam_write *w = xcalloc(1, sizeof(*w));
    if (!ipam_next(a, w->cidr, sizeof(w->cidr))) {
        free(w);
        ctrl_event(c, &kind_node, &node->base, "Normal", "CIDRNotAvailable",
                   "Node %s status is now: CIDRNotAvailable", key);
        ctrl_done(c, key, false,
                  "failed to allocate cidr from cluster cidr: CIDR allocation "
                  "failed; there are no remaining CIDRs left to allocate in the "
                  "accepted range");
        return;
    }
    w->a = a;
    w->key = xstrdup(key);
    Coracle__V1__Node *upd = (void *)pb_clone(&node->base);
    if (!upd->spec) {
        upd->spec = xmalloc(sizeof(*upd->spec));
        coracle__v1__node_spec__init(upd->spec);
    }
    free(upd->spec->podcidr);
    upd->spec->podcidr = xstrdup(w->cidr);
    upd->spec->podcidrs = xmalloc(sizeof(*upd->spec->podcidrs));
    upd->spec->podcidrs[0] = xstrdup(w->cidr);
    upd->spec->n_podcidrs = 1;
    cm_call(cm, &kind_node, "Update", &upd->base, ipam_written, w);
    protobuf_c_message_free_unpacked(&upd->base, NULL);
}

static void ipam_metrics(FILE *f, void *state)
{
    struct ipam *a = state;
    if (!a)
        return;
    fprintf(f,
            "# HELP node_ipam_controller_cidrset_usage_cidrs Fraction of node ranges in use.\n"
            "# TYPE node_ipam_controller_cidrset_usage_cidrs gauge\n"
            "node_ipam_controller_cidrset_usage_cidrs %g\n",
            (double)a->in_use / (double)a->n);
}

const struct ctrl_def ctrl_nodeipam = {
    .name = "nodeipam",
    .workers = 1, /* allocations in order, as the range allocator's single updater */
    .setup = ipam_setup,
    .sync = ipam_sync,
    .free = ipam_free,
    .metrics = ipam_metrics,
};
