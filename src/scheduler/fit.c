/*
 * fit: filters and scores of coracle-scheduler (see fit.h), after
 * Kubernetes' NodeUnschedulable, NodeName, TaintToleration, NodeAffinity,
 * NodePorts, NodeResourcesFit, LeastAllocated and BalancedAllocation plugins.
 */
#include "config.h"

#include "fit.h"
#include "informer.h"
#include "qty.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAINT_NOT_READY "node.kubernetes.io/not-ready"
#define TAINT_UNREACHABLE "node.kubernetes.io/unreachable"
#define TAINT_UNSCHEDULABLE "node.kubernetes.io/unschedulable"

static const char *S(const char *s)
{
    return s ? s : "";
}

/* ------------------------------------------------------------ requests */

/* A quantity from a ResourceRequirements map (requests, else limits). */
static const char *req_string(const Coracle__V1__ResourceRequirements *rr, const char *name,
                              const char **which)
{
    if (!rr)
        return NULL;
    for (size_t i = 0; i < rr->n_requests; i++)
        if (rr->requests[i]->key && !strcmp(rr->requests[i]->key, name) && rr->requests[i]->value)
            return *which = "requests", rr->requests[i]->value->string;
    /* Kubernetes defaults a missing request to the limit. */
    for (size_t i = 0; i < rr->n_limits; i++)
        if (rr->limits[i]->key && !strcmp(rr->limits[i]->key, name) && rr->limits[i]->value)
            return *which = "limits", rr->limits[i]->value->string;
    return NULL;
}

/* cpu in millicores, memory in bytes; -1 if absent. */
static int64_t container_req(const Coracle__V1__Container *c, const char *name, const char *path,
                             size_t idx, char **err)
{
    const char *which = "requests";
    const char *s = req_string(c->resources, name, &which);
    if (!s)
        return -1;
    int64_t milli;
    char *e = NULL;
    if (qty_parse(s, &milli, &e) < 0) {
        if (err && !*err)
            *err = xasprintf("%s[%zu].resources.%s[%s]: Invalid value: \"%s\": %s", path, idx,
                             which, name, s, e ? e : "bad quantity");
        free(e);
        return -1;
    }
    return strcmp(name, "cpu") ? qty_value(milli) : milli;
}

static void add_port(struct sched_req *r, const Coracle__V1__ContainerPort *cp)
{
    if (!cp->has_hostport || cp->hostport <= 0)
        return;
    r->ports = xrealloc(r->ports, (r->n_ports + 1) * sizeof(*r->ports));
    struct sched_port *p = &r->ports[r->n_ports++];
    p->port = cp->hostport;
    p->proto = SCHED_TCP;
    if (cp->protocol && !strcmp(cp->protocol, "UDP"))
        p->proto = SCHED_UDP;
    else if (cp->protocol && !strcmp(cp->protocol, "SCTP"))
        p->proto = SCHED_SCTP;
    snprintf(p->ip, sizeof p->ip, "%s", cp->hostip && *cp->hostip ? cp->hostip : "0.0.0.0");
}

int sched_req_of(const Coracle__V1__Pod *pod, struct sched_req *r, char **err)
{
    memset(r, 0, sizeof(*r));
    if (err)
        *err = NULL;
    const Coracle__V1__PodSpec *spec = pod->spec;
    if (!spec)
        return 0;
    char *e = NULL;
    for (size_t i = 0; i < spec->n_containers; i++) {
        const Coracle__V1__Container *c = spec->containers[i];
        int64_t cpu = container_req(c, "cpu", "spec.containers", i, &e);
        int64_t mem = container_req(c, "memory", "spec.containers", i, &e);
        r->cpu += cpu > 0 ? cpu : 0;
        r->mem += mem > 0 ? mem : 0;
        /* Kubernetes' non-zero rule: only an absent request gets the default */
        r->cpu_nz += cpu >= 0 ? cpu : SCHED_DEFAULT_MILLI_CPU;
        r->mem_nz += mem >= 0 ? mem : SCHED_DEFAULT_MEMORY;
        for (size_t j = 0; j < c->n_ports; j++)
            add_port(r, c->ports[j]);
    }
    for (size_t i = 0; i < spec->n_initcontainers; i++) {
        const Coracle__V1__Container *c = spec->initcontainers[i];
        int64_t cpu = container_req(c, "cpu", "spec.initContainers", i, &e);
        int64_t mem = container_req(c, "memory", "spec.initContainers", i, &e);
        if (cpu > r->cpu)
            r->cpu = cpu;
        if (mem > r->mem)
            r->mem = mem;
        int64_t cnz = cpu >= 0 ? cpu : SCHED_DEFAULT_MILLI_CPU;
        int64_t mnz = mem >= 0 ? mem : SCHED_DEFAULT_MEMORY;
        if (cnz > r->cpu_nz)
            r->cpu_nz = cnz;
        if (mnz > r->mem_nz)
            r->mem_nz = mnz;
    }
    if (e) {
        if (err)
            *err = e;
        else
            free(e);
        return -1;
    }
    return 0;
}

void sched_req_free(struct sched_req *r)
{
    free(r->ports);
    r->ports = NULL;
    r->n_ports = 0;
}

/* ------------------------------------------------------------ nodes */

static int64_t node_res(const Coracle__V1__NodeStatus *st, const char *name, bool *found)
{
    Coracle__V1__NodeStatus__AllocatableEntry **v = st->allocatable;
    size_t n = st->n_allocatable;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            if (!v[i]->key || strcmp(v[i]->key, name) || !v[i]->value || !v[i]->value->string)
                continue;
            int64_t milli;
            if (qty_parse(v[i]->value->string, &milli, NULL) < 0)
                continue;
            *found = true;
            return strcmp(name, "cpu") ? qty_value(milli) : milli;
        }
        /* no allocatable entry: capacity (same entry layout) */
        v = (Coracle__V1__NodeStatus__AllocatableEntry **)st->capacity;
        n = st->n_capacity;
    }
    *found = false;
    return 0;
}

_Static_assert(sizeof(Coracle__V1__NodeStatus__AllocatableEntry) ==
                   sizeof(Coracle__V1__NodeStatus__CapacityEntry),
               "map entries alike");

void sched_node_set(struct sched_node *n, const Coracle__V1__Node *node)
{
    if (n->node)
        protobuf_c_message_free_unpacked(&n->node->base, NULL);
    n->node = (Coracle__V1__Node *)inf_copy(&node->base);
    n->alloc_cpu = n->alloc_mem = n->alloc_pods = 0;
    n->ready = sched_node_readiness(n->node);
    const Coracle__V1__NodeStatus *st = n->node->status;
    if (!st)
        return;
    bool f;
    n->alloc_cpu = node_res(st, "cpu", &f);
    n->alloc_mem = node_res(st, "memory", &f);
    n->alloc_pods = node_res(st, "pods", &f);
}

enum sched_ready sched_node_readiness(const Coracle__V1__Node *node)
{
    /* no Ready condition yet: a kubelet registers its node tainted not-ready */
    enum sched_ready r = SCHED_READY_FALSE;
    const Coracle__V1__NodeStatus *st = node->status;
    for (size_t i = 0; st && i < st->n_conditions; i++) {
        const Coracle__V1__NodeCondition *c = st->conditions[i];
        if (!c->type || strcmp(c->type, "Ready"))
            continue;
        if (c->status && !strcmp(c->status, "True"))
            r = SCHED_READY_TRUE;
        else if (c->status && !strcmp(c->status, "False"))
            r = SCHED_READY_FALSE;
        else
            r = SCHED_READY_UNKNOWN;
    }
    return r;
}

void sched_node_clear(struct sched_node *n)
{
    if (n->node)
        protobuf_c_message_free_unpacked(&n->node->base, NULL);
    n->node = NULL;
    free(n->ports);
    n->ports = NULL;
    n->n_ports = n->cap_ports = 0;
    free(n->name);
    n->name = NULL;
}

static bool same_port(const struct sched_port *a, const struct sched_port *b)
{
    return a->port == b->port && a->proto == b->proto && !strcmp(a->ip, b->ip);
}

void sched_node_charge(struct sched_node *n, const struct sched_req *r, int sign)
{
    n->req_cpu += sign * r->cpu;
    n->req_mem += sign * r->mem;
    n->req_cpu_nz += sign * r->cpu_nz;
    n->req_mem_nz += sign * r->mem_nz;
    n->npods += sign;
    for (size_t i = 0; i < r->n_ports; i++) {
        size_t j;
        for (j = 0; j < n->n_ports; j++)
            if (same_port(&n->ports[j].p, &r->ports[i]))
                break;
        if (sign > 0) {
            if (j == n->n_ports) {
                if (n->n_ports == n->cap_ports) {
                    n->cap_ports = n->cap_ports ? n->cap_ports * 2 : 4;
                    n->ports = xrealloc(n->ports, n->cap_ports * sizeof(*n->ports));
                }
                n->ports[n->n_ports].p = r->ports[i];
                n->ports[n->n_ports++].n = 0;
            }
            n->ports[j].n++;
        } else if (j < n->n_ports && --n->ports[j].n <= 0) {
            n->ports[j] = n->ports[--n->n_ports];
        }
    }
}

/* ------------------------------------------------------------ filters */

bool sched_tolerates(const Coracle__V1__Toleration *t, const char *key, const char *value,
                     const char *effect)
{
    if (t->effect && *t->effect && strcmp(t->effect, S(effect)))
        return false;
    if (t->key && *t->key && strcmp(t->key, S(key)))
        return false;
    if (!t->operator_ || !*t->operator_ || !strcmp(t->operator_, "Equal"))
        return !strcmp(S(t->value), S(value));
    return !strcmp(t->operator_, "Exists");
}

static bool pod_tolerates(const Coracle__V1__Pod *pod, const char *key, const char *value,
                          const char *effect)
{
    const Coracle__V1__PodSpec *spec = pod->spec;
    for (size_t i = 0; spec && i < spec->n_tolerations; i++)
        if (sched_tolerates(spec->tolerations[i], key, value, effect))
            return true;
    return false;
}

bool sched_filter_node_name(const Coracle__V1__Pod *pod, const struct sched_node *n)
{
    /* only reached for pods with spec.nodeName set but unbound (never, in
     * practice: such pods are not scheduled) */
    const char *want = pod->spec ? pod->spec->nodename : NULL;
    return !want || !*want || !strcmp(want, n->name);
}

bool sched_filter_unschedulable(const Coracle__V1__Pod *pod, const struct sched_node *n)
{
    if (!n->node || !n->node->spec || !n->node->spec->has_unschedulable ||
        !n->node->spec->unschedulable)
        return true;
    return pod_tolerates(pod, TAINT_UNSCHEDULABLE, NULL, "NoSchedule");
}

bool sched_filter_taints(const Coracle__V1__Pod *pod, const struct sched_node *n, char *buf,
                         size_t len)
{
    const Coracle__V1__NodeSpec *spec = n->node ? n->node->spec : NULL;
    for (size_t i = 0; spec && i < spec->n_taints; i++) {
        const Coracle__V1__Taint *t = spec->taints[i];
        const char *eff = S(t->effect);
        if (strcmp(eff, "NoSchedule") && strcmp(eff, "NoExecute"))
            continue;
        if (!pod_tolerates(pod, t->key, t->value, eff)) {
            snprintf(buf, len, "node(s) had untolerated taint {%s: %s}", S(t->key), S(t->value));
            return false;
        }
    }
    /* the taint Kubernetes' node lifecycle controller would have put */
    if (n->ready != SCHED_READY_TRUE) {
        const char *key = n->ready == SCHED_READY_FALSE ? TAINT_NOT_READY : TAINT_UNREACHABLE;
        bool has = false;
        for (size_t i = 0; spec && i < spec->n_taints; i++)
            if (!strcmp(S(spec->taints[i]->key), key))
                has = true;
        if (!has && !pod_tolerates(pod, key, NULL, "NoSchedule")) {
            snprintf(buf, len, "node(s) had untolerated taint {%s: }", key);
            return false;
        }
    }
    return true;
}

static const char *node_label(const struct sched_node *n, const char *key)
{
    const Coracle__V1__ObjectMeta *m = n->node ? n->node->metadata : NULL;
    for (size_t i = 0; m && i < m->n_labels; i++)
        if (m->labels[i]->key && !strcmp(m->labels[i]->key, key))
            return S(m->labels[i]->value);
    return NULL;
}

static bool parse_i64(const char *s, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return *s && !*end && !errno;
}

/* One requirement against a value (NULL = the label is absent). */
static bool req_match(const Coracle__V1__NodeSelectorRequirement *r, const char *val)
{
    const char *op = S(r->operator_);
    if (!strcmp(op, "In") || !strcmp(op, "NotIn")) {
        bool in = false;
        for (size_t i = 0; val && i < r->n_values; i++)
            if (!strcmp(S(r->values[i]), val))
                in = true;
        return !strcmp(op, "In") ? in : !in;
    }
    if (!strcmp(op, "Exists"))
        return val != NULL;
    if (!strcmp(op, "DoesNotExist"))
        return val == NULL;
    if (!strcmp(op, "Gt") || !strcmp(op, "Lt")) {
        long long a, b;
        if (!val || r->n_values != 1 || !parse_i64(val, &a) || !parse_i64(S(r->values[0]), &b))
            return false;
        return !strcmp(op, "Gt") ? a > b : a < b;
    }
    return false;
}

static bool term_match(const Coracle__V1__NodeSelectorTerm *t, const struct sched_node *n)
{
    if (t->n_matchexpressions == 0 && t->n_matchfields == 0)
        return false; /* an empty term matches nothing */
    for (size_t i = 0; i < t->n_matchexpressions; i++) {
        const Coracle__V1__NodeSelectorRequirement *r = t->matchexpressions[i];
        if (!req_match(r, node_label(n, S(r->key))))
            return false;
    }
    for (size_t i = 0; i < t->n_matchfields; i++) {
        const Coracle__V1__NodeSelectorRequirement *r = t->matchfields[i];
        const char *op = S(r->operator_);
        if (strcmp(S(r->key), "metadata.name") || (strcmp(op, "In") && strcmp(op, "NotIn")))
            return false;
        if (!req_match(r, n->name))
            return false;
    }
    return true;
}

bool sched_filter_affinity(const Coracle__V1__Pod *pod, const struct sched_node *n)
{
    const Coracle__V1__PodSpec *spec = pod->spec;
    if (!spec)
        return true;
    for (size_t i = 0; i < spec->n_nodeselector; i++) {
        const char *v = node_label(n, S(spec->nodeselector[i]->key));
        if (!v || strcmp(v, S(spec->nodeselector[i]->value)))
            return false;
    }
    const Coracle__V1__NodeSelector *ns =
        spec->affinity && spec->affinity->nodeaffinity
            ? spec->affinity->nodeaffinity->requiredduringschedulingignoredduringexecution
            : NULL;
    if (!ns)
        return true;
    for (size_t i = 0; i < ns->n_nodeselectorterms; i++)
        if (term_match(ns->nodeselectorterms[i], n))
            return true;
    return false;
}

bool sched_filter_ports(const struct sched_req *r, const struct sched_node *n)
{
    for (size_t i = 0; i < r->n_ports; i++) {
        const struct sched_port *a = &r->ports[i];
        for (size_t j = 0; j < n->n_ports; j++) {
            const struct sched_port *b = &n->ports[j].p;
            if (a->port != b->port || a->proto != b->proto)
                continue;
            if (!strcmp(a->ip, "0.0.0.0") || !strcmp(b->ip, "0.0.0.0") || !strcmp(a->ip, b->ip))
                return false;
        }
    }
    return true;
}

static void why_add(struct sched_reasons *why, const char *r)
{
    if (why && why->n < ARRAY_SIZE(why->r))
        why->r[why->n++] = r;
}

bool sched_filter_resources(const struct sched_req *r, const struct sched_node *n,
                            struct sched_reasons *why)
{
    bool fits = true;
    if (n->npods + 1 > n->alloc_pods) {
        why_add(why, SCHED_REASON_PODS);
        fits = false;
    }
    if (r->cpu == 0 && r->mem == 0)
        return fits;
    if (r->cpu > 0 && r->cpu > n->alloc_cpu - n->req_cpu) {
        why_add(why, SCHED_REASON_CPU);
        fits = false;
    }
    if (r->mem > 0 && r->mem > n->alloc_mem - n->req_mem) {
        why_add(why, SCHED_REASON_MEMORY);
        fits = false;
    }
    return fits;
}

bool sched_filter(const struct sched_pod *p, const struct sched_node *n, struct sched_reasons *why)
{
    why->n = 0;
    if (!sched_filter_unschedulable(p->pod, n)) {
        why_add(why, SCHED_REASON_UNSCHEDULABLE);
        return false;
    }
    if (!sched_filter_node_name(p->pod, n)) {
        why_add(why, SCHED_REASON_NODE_NAME);
        return false;
    }
    if (!sched_filter_taints(p->pod, n, why->buf, sizeof why->buf)) {
        why_add(why, why->buf);
        return false;
    }
    if (!sched_filter_affinity(p->pod, n)) {
        why_add(why, SCHED_REASON_AFFINITY);
        return false;
    }
    if (!sched_filter_ports(&p->req, n)) {
        why_add(why, SCHED_REASON_PORTS);
        return false;
    }
    return sched_filter_resources(&p->req, n, why);
}

/* ------------------------------------------------------------ scores */

static int64_t least(int64_t requested, int64_t capacity)
{
    if (capacity <= 0 || requested > capacity)
        return 0;
    /* (capacity - requested) * 100 / capacity without overflow for huge memory */
    return (int64_t)((__int128)(capacity - requested) * 100 / capacity);
}

int sched_score_least_allocated(const struct sched_req *r, const struct sched_node *n)
{
    int64_t cpu = least(n->req_cpu_nz + r->cpu_nz, n->alloc_cpu);
    int64_t mem = least(n->req_mem_nz + r->mem_nz, n->alloc_mem);
    return (int)((cpu + mem) / 2);
}

int sched_score_balanced(const struct sched_req *r, const struct sched_node *n)
{
    double f[2];
    int k = 0;
    if (n->alloc_cpu > 0) {
        double x = (double)(n->req_cpu + r->cpu) / (double)n->alloc_cpu;
        f[k++] = x > 1 ? 1 : x;
    }
    if (n->alloc_mem > 0) {
        double x = (double)(n->req_mem + r->mem) / (double)n->alloc_mem;
        f[k++] = x > 1 ? 1 : x;
    }
    double std = k == 2 ? fabs((f[0] - f[1]) / 2) : 0;
    return (int)((1 - std) * 100);
}

int sched_score(const struct sched_req *r, const struct sched_node *n)
{
    return sched_score_least_allocated(r, n) + sched_score_balanced(r, n);
}

/* ------------------------------------------------------------ messages */

void sched_hist_add(struct sched_hist *h, const struct sched_reasons *why)
{
    for (size_t i = 0; i < why->n; i++) {
        size_t j;
        for (j = 0; j < h->n; j++)
            if (!strcmp(h->v[j].reason, why->r[i]))
                break;
        if (j == h->n) {
            if (h->n == h->cap) {
                h->cap = h->cap ? h->cap * 2 : 8;
                h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
            }
            h->v[j].reason = xstrdup(why->r[i]);
            h->v[j].count = 0;
            h->n++;
        }
        h->v[j].count++;
    }
}

void sched_hist_free(struct sched_hist *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->v[i].reason);
    free(h->v);
    memset(h, 0, sizeof(*h));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *sched_fit_message(int nnodes, const struct sched_hist *h)
{
    if (nnodes == 0)
        return xstrdup(SCHED_NO_NODES);
    char **s = xcalloc(h->n + 1, sizeof(*s));
    size_t len = 64;
    for (size_t i = 0; i < h->n; i++) {
        s[i] = xasprintf("%d %s", h->v[i].count, h->v[i].reason);
        len += strlen(s[i]) + 2;
    }
    qsort(s, h->n, sizeof(*s), cmp_str); /* as Kubernetes: sort.Strings */
    char *out = xmalloc(len);
    int o = snprintf(out, len, "0/%d nodes are available:", nnodes);
    for (size_t i = 0; i < h->n; i++) {
        o += snprintf(out + o, len - (size_t)o, "%s%s", i ? ", " : " ", s[i]);
        free(s[i]);
    }
    snprintf(out + o, len - (size_t)o, ".");
    free(s);
    return out;
}
