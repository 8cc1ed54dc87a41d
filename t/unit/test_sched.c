/*
 * Unit tests for the scheduler without a server: the filters with their
 * Kubernetes texts, the requests rule (init containers, non-zero defaults),
 * the scores, the FailedScheduling message, numFeasibleNodesToFind, and
 * the queue's backoff/unschedulable movements on a real event loop.
 */
#include "config.h"
#include "tap.h"

#include "fit.h"
#include "queue.h"
#include "sched.h"
#include "util.h"

#include <event2/event.h>

/* ---- builders (everything malloc'd, freed with free_unpacked) ---- */

#define NEW(T, init)                                                                               \
    ({                                                                                             \
        T *p_ = xmalloc(sizeof(T));                                                                \
        init(p_);                                                                                  \
        p_;                                                                                        \
    })
#define PUSH(arr, n, v)                                                                            \
    do {                                                                                           \
        (arr) = xrealloc((arr), ((n) + 1) * sizeof(*(arr)));                                       \
        (arr)[(n)++] = (v);                                                                        \
    } while (0)

static Coracle__V1__Quantity *q(const char *s)
{
    Coracle__V1__Quantity *x = NEW(Coracle__V1__Quantity, coracle__v1__quantity__init);
    x->string = xstrdup(s);
    return x;
}

static Coracle__V1__Node *mknode(const char *name, const char *cpu, const char *mem,
                                 const char *pods)
{
    Coracle__V1__Node *n = NEW(Coracle__V1__Node, coracle__v1__node__init);
    n->metadata = NEW(Coracle__V1__ObjectMeta, coracle__v1__object_meta__init);
    n->metadata->name = xstrdup(name);
    n->spec = NEW(Coracle__V1__NodeSpec, coracle__v1__node_spec__init);
    n->status = NEW(Coracle__V1__NodeStatus, coracle__v1__node_status__init);
    const char *k[] = {"cpu", "memory", "pods"}, *v[] = {cpu, mem, pods};
    for (int i = 0; i < 3; i++) {
        if (!v[i])
            continue;
        Coracle__V1__NodeStatus__AllocatableEntry *e =
            NEW(Coracle__V1__NodeStatus__AllocatableEntry,
                coracle__v1__node_status__allocatable_entry__init);
        e->key = xstrdup(k[i]);
        e->value = q(v[i]);
        PUSH(n->status->allocatable, n->status->n_allocatable, e);
    }
    Coracle__V1__NodeCondition *c =
        NEW(Coracle__V1__NodeCondition, coracle__v1__node_condition__init);
    c->type = xstrdup("Ready");
    c->status = xstrdup("True");
    PUSH(n->status->conditions, n->status->n_conditions, c);
    return n;
}

static void node_label(Coracle__V1__Node *n, const char *k, const char *v)
{
    Coracle__V1__ObjectMeta__LabelsEntry *e =
        NEW(Coracle__V1__ObjectMeta__LabelsEntry, coracle__v1__object_meta__labels_entry__init);
    e->key = xstrdup(k);
    e->value = xstrdup(v);
    PUSH(n->metadata->labels, n->metadata->n_labels, e);
}

static void node_taint(Coracle__V1__Node *n, const char *k, const char *v, const char *eff)
{
    Coracle__V1__Taint *t = NEW(Coracle__V1__Taint, coracle__v1__taint__init);
    t->key = xstrdup(k);
    t->value = v ? xstrdup(v) : NULL;
    t->effect = xstrdup(eff);
    PUSH(n->spec->taints, n->spec->n_taints, t);
}

static void node_ready(Coracle__V1__Node *n, const char *status)
{
    free(n->status->conditions[0]->status);
    n->status->conditions[0]->status = xstrdup(status);
}

static Coracle__V1__Container *mkcont(const char *cpu, const char *mem)
{
    Coracle__V1__Container *c = NEW(Coracle__V1__Container, coracle__v1__container__init);
    c->name = xstrdup("c");
    c->image = xstrdup("busybox");
    if (cpu || mem) {
        c->resources =
            NEW(Coracle__V1__ResourceRequirements, coracle__v1__resource_requirements__init);
        const char *k[] = {"cpu", "memory"}, *v[] = {cpu, mem};
        for (int i = 0; i < 2; i++) {
            if (!v[i])
                continue;
            Coracle__V1__ResourceRequirements__RequestsEntry *e =
                NEW(Coracle__V1__ResourceRequirements__RequestsEntry,
                    coracle__v1__resource_requirements__requests_entry__init);
            e->key = xstrdup(k[i]);
            e->value = q(v[i]);
            PUSH(c->resources->requests, c->resources->n_requests, e);
        }
    }
    return c;
}

static Coracle__V1__Pod *mkpod(const char *name, const char *cpu, const char *mem)
{
    Coracle__V1__Pod *p = NEW(Coracle__V1__Pod, coracle__v1__pod__init);
    p->metadata = NEW(Coracle__V1__ObjectMeta, coracle__v1__object_meta__init);
    p->metadata->name = xstrdup(name);
    p->metadata->namespace_ = xstrdup("default");
    p->spec = NEW(Coracle__V1__PodSpec, coracle__v1__pod_spec__init);
    PUSH(p->spec->containers, p->spec->n_containers, mkcont(cpu, mem));
    return p;
}

static void pod_tol(Coracle__V1__Pod *p, const char *k, const char *op, const char *v,
                    const char *eff)
{
    Coracle__V1__Toleration *t = NEW(Coracle__V1__Toleration, coracle__v1__toleration__init);
    t->key = k ? xstrdup(k) : NULL;
    t->operator_ = op ? xstrdup(op) : NULL;
    t->value = v ? xstrdup(v) : NULL;
    t->effect = eff ? xstrdup(eff) : NULL;
    PUSH(p->spec->tolerations, p->spec->n_tolerations, t);
}

static void pod_nodesel(Coracle__V1__Pod *p, const char *k, const char *v)
{
    Coracle__V1__PodSpec__NodeSelectorEntry *e = NEW(
        Coracle__V1__PodSpec__NodeSelectorEntry, coracle__v1__pod_spec__node_selector_entry__init);
    e->key = xstrdup(k);
    e->value = xstrdup(v);
    PUSH(p->spec->nodeselector, p->spec->n_nodeselector, e);
}

/* Adds a term with one expression (or field if field != 0); values comma-separated. */
static void pod_term(Coracle__V1__Pod *p, int field, const char *k, const char *op,
                     const char *vals)
{
    if (!p->spec->affinity) {
        p->spec->affinity = NEW(Coracle__V1__Affinity, coracle__v1__affinity__init);
        p->spec->affinity->nodeaffinity =
            NEW(Coracle__V1__NodeAffinity, coracle__v1__node_affinity__init);
        p->spec->affinity->nodeaffinity->requiredduringschedulingignoredduringexecution =
            NEW(Coracle__V1__NodeSelector, coracle__v1__node_selector__init);
    }
    Coracle__V1__NodeSelector *ns =
        p->spec->affinity->nodeaffinity->requiredduringschedulingignoredduringexecution;
    Coracle__V1__NodeSelectorTerm *t =
        NEW(Coracle__V1__NodeSelectorTerm, coracle__v1__node_selector_term__init);
    if (k) {
        Coracle__V1__NodeSelectorRequirement *r =
            NEW(Coracle__V1__NodeSelectorRequirement, coracle__v1__node_selector_requirement__init);
        r->key = xstrdup(k);
        r->operator_ = xstrdup(op);
        if (vals) {
            char *dup = xstrdup(vals), *save = NULL;
            for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
                PUSH(r->values, r->n_values, xstrdup(tok));
            free(dup);
        }
        if (field)
            PUSH(t->matchfields, t->n_matchfields, r);
        else
            PUSH(t->matchexpressions, t->n_matchexpressions, r);
    }
    PUSH(ns->nodeselectorterms, ns->n_nodeselectorterms, t);
}

static void pod_clear_affinity(Coracle__V1__Pod *p)
{
    if (p->spec->affinity)
        protobuf_c_message_free_unpacked(&p->spec->affinity->base, NULL);
    p->spec->affinity = NULL;
}

static void pod_port(Coracle__V1__Pod *p, int port, const char *proto, const char *ip)
{
    Coracle__V1__ContainerPort *cp =
        NEW(Coracle__V1__ContainerPort, coracle__v1__container_port__init);
    cp->has_containerport = 1;
    cp->containerport = 80;
    cp->has_hostport = 1;
    cp->hostport = port;
    cp->protocol = proto ? xstrdup(proto) : NULL;
    cp->hostip = ip ? xstrdup(ip) : NULL;
    Coracle__V1__Container *c = p->spec->containers[0];
    PUSH(c->ports, c->n_ports, cp);
}

static void sn_init(struct sched_node *sn, Coracle__V1__Node *n)
{
    memset(sn, 0, sizeof(*sn));
    sn->name = xstrdup(n->metadata->name);
    sn->idx = -1;
    sched_node_set(sn, n);
}

/* The reasons the full filter chain gives ("" if the node fits). */
static const char *why_of(Coracle__V1__Pod *p, const struct sched_node *sn)
{
    static char out[1024];
    struct sched_pod sp = {.pod = p};
    sched_req_of(p, &sp.req, NULL);
    struct sched_reasons why;
    out[0] = 0;
    if (!sched_filter(&sp, sn, &why))
        for (size_t i = 0; i < why.n; i++)
            snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", i ? "|" : "", why.r[i]);
    sched_req_free(&sp.req);
    return out;
}

static void free_msg(void *m)
{
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
}

/* ---- tests ---- */

static void test_requests(void)
{
    Coracle__V1__Pod *p = mkpod("p", "100m", "64Mi");
    PUSH(p->spec->containers, p->spec->n_containers, mkcont("200m", NULL));
    PUSH(p->spec->initcontainers, p->spec->n_initcontainers, mkcont("250m", "32Mi"));
    struct sched_req r;
    ok(sched_req_of(p, &r, NULL) == 0, "requests parse");
    is_int(r.cpu, 300, "cpu: sum of containers beats the init container");
    is_int(r.mem, 64 << 20, "memory: sum (64Mi + none)");
    is_int(r.cpu_nz, 300, "non-zero cpu");
    is_int(r.mem_nz, (64LL << 20) + SCHED_DEFAULT_MEMORY, "non-zero memory adds the default");
    sched_req_free(&r);
    PUSH(p->spec->initcontainers, p->spec->n_initcontainers, mkcont("1", "1Gi"));
    sched_req_of(p, &r, NULL);
    is_int(r.cpu, 1000, "cpu: max(init) wins when larger");
    is_int(r.mem, 1 << 30, "memory: max(init) wins");
    sched_req_free(&r);
    free_msg(p);

    p = mkpod("bad", "lots", NULL);
    char *err = NULL;
    ok(sched_req_of(p, &r, &err) == -1, "bad quantity reported");
    is_str(err,
           "spec.containers[0].resources.requests[cpu]: Invalid value: \"lots\": quantities must "
           "match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
           "its error names the field");
    is_int(r.cpu, 0, "and counts as 0");
    free(err);
    sched_req_free(&r);
    free_msg(p);
}

static void test_filters(void)
{
    Coracle__V1__Node *n = mknode("node1", "2", "4Gi", "110");
    struct sched_node sn;
    sn_init(&sn, n);
    is_int(sn.alloc_cpu, 2000, "allocatable cpu");
    is_int(sn.alloc_mem, 4LL << 30, "allocatable memory");
    is_int(sn.alloc_pods, 110, "allocatable pods");

    Coracle__V1__Pod *p = mkpod("p", "500m", "1Gi");
    is_str(why_of(p, &sn), "", "plain pod fits");

    /* NodeName */
    p->spec->nodename = xstrdup("node2");
    is_str(why_of(p, &sn), SCHED_REASON_NODE_NAME, "NodeName");
    free(p->spec->nodename);
    p->spec->nodename = NULL;

    /* NodeUnschedulable */
    n->spec->has_unschedulable = 1;
    n->spec->unschedulable = 1;
    sched_node_set(&sn, n);
    is_str(why_of(p, &sn), "node(s) were unschedulable", "NodeUnschedulable");
    pod_tol(p, "node.kubernetes.io/unschedulable", "Exists", NULL, "NoSchedule");
    is_str(why_of(p, &sn), "", "tolerating the unschedulable taint passes");
    n->spec->unschedulable = 0;
    sched_node_set(&sn, n);

    /* TaintToleration */
    node_taint(n, "dedicated", "gpu", "NoSchedule");
    sched_node_set(&sn, n);
    is_str(why_of(p, &sn), "node(s) had untolerated taint {dedicated: gpu}", "NoSchedule taint");
    pod_tol(p, "dedicated", "Equal", "cpu", "NoSchedule");
    is_str(why_of(p, &sn), "node(s) had untolerated taint {dedicated: gpu}", "wrong value");
    pod_tol(p, "dedicated", NULL, "gpu", NULL);
    is_str(why_of(p, &sn), "", "empty operator means Equal; empty effect matches all");
    node_taint(n, "zone", NULL, "NoExecute");
    node_taint(n, "soft", "x", "PreferNoSchedule");
    sched_node_set(&sn, n);
    is_str(why_of(p, &sn), "node(s) had untolerated taint {zone: }", "NoExecute taint, no value");
    pod_tol(p, NULL, "Exists", NULL, "NoExecute");
    is_str(why_of(p, &sn), "", "empty key with Exists tolerates every NoExecute taint");

    Coracle__V1__Toleration t = CORACLE__V1__TOLERATION__INIT;
    t.key = "k";
    t.operator_ = "Exists";
    ok(sched_tolerates(&t, "k", "anything", "NoSchedule"), "Exists ignores the value");
    t.effect = "NoExecute";
    ok(!sched_tolerates(&t, "k", "v", "NoSchedule"), "effect must match");
    t.operator_ = "Bogus";
    t.effect = NULL;
    ok(!sched_tolerates(&t, "k", "v", "NoSchedule"), "unknown operator tolerates nothing");

    /* node Ready */
    Coracle__V1__Pod *p2 = mkpod("p2", NULL, NULL);
    Coracle__V1__Node *n2 = mknode("node2", "2", "4Gi", "110");
    struct sched_node sn2;
    sn_init(&sn2, n2);
    node_ready(n2, "False");
    sched_node_set(&sn2, n2);
    is_str(why_of(p2, &sn2), "node(s) had untolerated taint {node.kubernetes.io/not-ready: }",
           "Ready=False: not-ready taint");
    node_ready(n2, "Unknown");
    sched_node_set(&sn2, n2);
    is_str(why_of(p2, &sn2), "node(s) had untolerated taint {node.kubernetes.io/unreachable: }",
           "Ready=Unknown: unreachable taint");
    pod_tol(p2, "node.kubernetes.io/unreachable", "Exists", NULL, NULL);
    is_str(why_of(p2, &sn2), "", "tolerated");
    n2->status->n_conditions = 0; /* the array is still freed with the node */
    sched_node_set(&sn2, n2);
    is_str(why_of(p2, &sn2), "node(s) had untolerated taint {node.kubernetes.io/not-ready: }",
           "no Ready condition yet: not-ready taint");
    n2->status->n_conditions = 1;
    node_taint(n2, "node.kubernetes.io/unreachable", NULL, "NoExecute");
    node_ready(n2, "Unknown");
    sched_node_set(&sn2, n2);
    is_str(why_of(p2, &sn2), "", "the real taint, tolerated, is not doubled by the implied one");
    protobuf_c_message_free_unpacked(&n2->spec->taints[0]->base, NULL);
    n2->spec->n_taints = 0;
    node_ready(n2, "True");
    sched_node_set(&sn2, n2);

    /* NodeAffinity: nodeSelector */
    node_label(n2, "disk", "ssd");
    node_label(n2, "gen", "5");
    sched_node_set(&sn2, n2);
    pod_nodesel(p2, "disk", "ssd");
    is_str(why_of(p2, &sn2), "", "nodeSelector matches");
    pod_nodesel(p2, "zone", "a");
    is_str(why_of(p2, &sn2), SCHED_REASON_AFFINITY, "nodeSelector with a missing label");
    protobuf_c_message_free_unpacked(&p2->spec->nodeselector[1]->base, NULL);
    p2->spec->n_nodeselector = 1;

    /* required node affinity */
    struct {
        int field;
        const char *k, *op, *vals;
        int match;
    } cases[] = {
        {0, "disk", "In", "hdd,ssd", 1},
        {0, "disk", "In", "hdd", 0},
        {0, "disk", "NotIn", "hdd", 1},
        {0, "disk", "NotIn", "ssd", 0},
        {0, "nolabel", "NotIn", "x", 1},
        {0, "disk", "Exists", NULL, 1},
        {0, "nolabel", "Exists", NULL, 0},
        {0, "nolabel", "DoesNotExist", NULL, 1},
        {0, "disk", "DoesNotExist", NULL, 0},
        {0, "gen", "Gt", "4", 1},
        {0, "gen", "Gt", "5", 0},
        {0, "gen", "Lt", "6", 1},
        {0, "disk", "Gt", "1", 0},
        {1, "metadata.name", "In", "node2", 1},
        {1, "metadata.name", "NotIn", "node2", 0},
        {1, "metadata.uid", "In", "x", 0},
        {0, NULL, NULL, NULL, 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        pod_clear_affinity(p2);
        pod_term(p2, cases[i].field, cases[i].k, cases[i].op, cases[i].vals);
        ok(sched_filter_affinity(p2, &sn2) == cases[i].match, "affinity %s %s %s: %s",
           cases[i].k ? cases[i].k : "(empty term)", cases[i].op ? cases[i].op : "",
           cases[i].vals ? cases[i].vals : "", cases[i].match ? "match" : "no match");
    }
    pod_clear_affinity(p2);
    pod_term(p2, 0, "disk", "In", "hdd");
    pod_term(p2, 0, "gen", "Gt", "1");
    ok(sched_filter_affinity(p2, &sn2), "terms are ORed");
    pod_clear_affinity(p2);
    pod_term(p2, 0, "disk", "In", "hdd");
    is_str(why_of(p2, &sn2), SCHED_REASON_AFFINITY, "affinity reason text");
    pod_clear_affinity(p2);

    /* NodePorts */
    Coracle__V1__Pod *hp = mkpod("hp", NULL, NULL);
    pod_port(hp, 8080, NULL, NULL);
    struct sched_req hr;
    sched_req_of(hp, &hr, NULL);
    is_int(hr.n_ports, 1, "one host port");
    sched_node_charge(&sn2, &hr, +1);
    Coracle__V1__Pod *hp2 = mkpod("hp2", NULL, NULL);
    pod_port(hp2, 8080, "TCP", "10.0.0.1");
    is_str(why_of(hp2, &sn2), SCHED_REASON_PORTS, "8080/TCP on 0.0.0.0 conflicts with any IP");
    Coracle__V1__Pod *hp3 = mkpod("hp3", NULL, NULL);
    pod_port(hp3, 8080, "UDP", NULL);
    is_str(why_of(hp3, &sn2), "", "8080/UDP is free");
    sched_node_charge(&sn2, &hr, -1);
    is_str(why_of(hp2, &sn2), "", "port freed on release");
    sched_req_free(&hr);
    sched_req_of(hp2, &hr, NULL);
    sched_node_charge(&sn2, &hr, +1);
    Coracle__V1__Pod *hp4 = mkpod("hp4", NULL, NULL);
    pod_port(hp4, 8080, "TCP", "10.0.0.2");
    is_str(why_of(hp4, &sn2), "", "same port on another IP is free");
    is_str(why_of(hp, &sn2), SCHED_REASON_PORTS, "0.0.0.0 conflicts with a specific IP");
    sched_node_charge(&sn2, &hr, -1);
    sched_req_free(&hr);

    /* NodeResourcesFit */
    Coracle__V1__Node *n3 = mknode("node3", "1", "1Gi", "2");
    struct sched_node sn3;
    sn_init(&sn3, n3);
    Coracle__V1__Pod *big = mkpod("big", "1500m", "2Gi");
    is_str(why_of(big, &sn3), "Insufficient cpu|Insufficient memory", "cpu and memory");
    Coracle__V1__Pod *half = mkpod("half", "500m", "512Mi");
    struct sched_req rh;
    sched_req_of(half, &rh, NULL);
    sched_node_charge(&sn3, &rh, +1);
    is_str(why_of(half, &sn3), "", "second half fits exactly");
    sched_node_charge(&sn3, &rh, +1);
    is_str(why_of(half, &sn3), "Too many pods|Insufficient cpu|Insufficient memory",
           "full node: all three, in Kubernetes' order");
    Coracle__V1__Pod *zero = mkpod("zero", NULL, NULL);
    is_str(why_of(zero, &sn3), "Too many pods", "a pod without requests only counts");
    sched_node_charge(&sn3, &rh, -1);
    is_str(why_of(zero, &sn3), "", "zero-request pod fits a cpu-full node with a pod slot");
    sched_node_charge(&sn3, &rh, -1);
    is_int(sn3.req_cpu, 0, "released to zero");
    sched_req_free(&rh);
    Coracle__V1__Node *n4 = mknode("node4", "1", "1Gi", NULL);
    struct sched_node sn4;
    sn_init(&sn4, n4);
    is_str(why_of(zero, &sn4), "Too many pods", "a node without a pods entry takes none");

    sched_node_clear(&sn);
    sched_node_clear(&sn2);
    sched_node_clear(&sn3);
    sched_node_clear(&sn4);
    Coracle__V1__Pod *pods[] = {p, p2, hp, hp2, hp3, hp4, big, half, zero};
    for (size_t i = 0; i < ARRAY_SIZE(pods); i++)
        free_msg(pods[i]);
    free_msg(n);
    free_msg(n2);
    free_msg(n3);
    free_msg(n4);
}

static void test_scores(void)
{
    Coracle__V1__Node *n = mknode("n", "4", "8Gi", "110");
    struct sched_node sn;
    sn_init(&sn, n);
    Coracle__V1__Pod *p = mkpod("p", "1", "2Gi");
    struct sched_req r;
    sched_req_of(p, &r, NULL);
    /* cpu (4000-1000)*100/4000 = 75, memory (8-2)*100/8 = 75 */
    is_int(sched_score_least_allocated(&r, &sn), 75, "LeastAllocated");
    is_int(sched_score_balanced(&r, &sn), 100, "BalancedAllocation: equal fractions");
    is_int(sched_score(&r, &sn), 175, "weighted sum");
    Coracle__V1__Pod *q2 = mkpod("q", "2", "1Gi");
    struct sched_req r2;
    sched_req_of(q2, &r2, NULL);
    /* fractions .5 and .125: std .1875 -> 81 */
    is_int(sched_score_balanced(&r2, &sn), 81, "BalancedAllocation: unequal fractions");
    /* cpu 50, mem 87 -> (50+87)/2 = 68 */
    is_int(sched_score_least_allocated(&r2, &sn), 68, "LeastAllocated unequal");
    sched_node_charge(&sn, &r2, +1);
    is_int(sched_score_least_allocated(&r, &sn), 43, "LeastAllocated after charging: (25+62)/2");
    Coracle__V1__Pod *z = mkpod("z", NULL, NULL);
    struct sched_req rz;
    sched_req_of(z, &rz, NULL);
    is_int(sched_score_least_allocated(&rz, &sn), 66,
           "defaults (100m, 200Mi) count in LeastAllocated: (47+85)/2");
    sched_req_free(&r);
    sched_req_free(&r2);
    sched_req_free(&rz);
    sched_node_clear(&sn);
    free_msg(n);
    free_msg(p);
    free_msg(q2);
    free_msg(z);
}

static void test_message(void)
{
    struct sched_hist h = {0};
    struct sched_reasons a = {.r = {SCHED_REASON_AFFINITY}, .n = 1};
    struct sched_reasons c = {.r = {SCHED_REASON_CPU}, .n = 1};
    sched_hist_add(&h, &a);
    sched_hist_add(&h, &c);
    sched_hist_add(&h, &a);
    char *m = sched_fit_message(3, &h);
    is_str(m,
           "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node "
           "affinity/selector.",
           "FailedScheduling message as in Kubernetes");
    free(m);
    sched_hist_free(&h);
    for (int i = 0; i < 10; i++)
        sched_hist_add(&h, &c);
    sched_hist_add(&h, &a);
    sched_hist_add(&h, &a);
    m = sched_fit_message(12, &h);
    is_str(m,
           "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) didn't match Pod's node "
           "affinity/selector.",
           "sorted as strings (\"10 ...\" before \"2 ...\")");
    free(m);
    sched_hist_free(&h);
    m = sched_fit_message(0, &h);
    is_str(m, "no nodes available to schedule pods", "no nodes");
    free(m);
}

static void test_misc(void)
{
    is_int(sched_num_to_find(50, 0), 50, "under 100 nodes: all");
    is_int(sched_num_to_find(1000, 0), 420, "1000 nodes: 42%");
    is_int(sched_num_to_find(5000, 0), 500, "5000 nodes: 10%");
    is_int(sched_num_to_find(100000, 0), 5000, "floor of 5%");
    is_int(sched_num_to_find(150, 0), 100, "at least 100");
    is_int(sched_num_to_find(1000, 100), 1000, "100% = all");
    is_int(sched_num_to_find(1000, 30), 300, "explicit percentage");

    Coracle__V1__Pod *p = mkpod("p", NULL, NULL);
    ok(sched_pod_is_pending(p, "default-scheduler"), "unbound pod is pending");
    p->spec->schedulername = xstrdup("other");
    ok(!sched_pod_is_pending(p, "default-scheduler"), "another scheduler's pod is not ours");
    ok(sched_pod_is_pending(p, "other"), "but that scheduler's");
    free(p->spec->schedulername);
    p->spec->schedulername = NULL;
    p->status = NEW(Coracle__V1__PodStatus, coracle__v1__pod_status__init);
    p->status->phase = xstrdup("Failed");
    ok(!sched_pod_is_pending(p, "default-scheduler"), "finished pod is not pending");
    ok(sched_pod_is_terminal(p), "Failed is terminal");
    free(p->status->phase);
    p->status->phase = xstrdup("Pending");
    p->metadata->deletiontimestamp = NEW(Coracle__V1__Time, coracle__v1__time__init);
    ok(!sched_pod_is_pending(p, "default-scheduler"), "deleting pod is not pending");
    free_msg(p);
}

static int kicks;
static void on_kick(void *arg)
{
    kicks++;
}

static void stop_loop(evutil_socket_t fd, short w, void *arg)
{
    event_base_loopbreak(arg);
}

static void test_queue(void)
{
    struct event_base *base = event_base_new();
    sched_queue_t *q = sched_queue_new(base, 1000, 10000, on_kick, NULL);
    is_int(sched_queue_backoff_ms(q, 1), 1000, "backoff 1 s");
    is_int(sched_queue_backoff_ms(q, 2), 2000, "2 s");
    is_int(sched_queue_backoff_ms(q, 4), 8000, "8 s");
    is_int(sched_queue_backoff_ms(q, 5), 10000, "capped at 10 s");
    is_int(sched_queue_backoff_ms(q, 40), 10000, "still capped");
    sched_queue_free(q);

    q = sched_queue_new(base, 50, 400, on_kick, NULL);
    ok(sched_queue_add(q, "default/a", 0) == 1, "add");
    ok(sched_queue_add(q, "default/a", 0) == 0, "add twice is a no-op");
    sched_queue_add(q, "default/b", 0);
    is_int(kicks, 1, "kicked once when the active queue became non-empty");
    struct sched_qpod *a = sched_queue_pop(q);
    is_str(a->key, "default/a", "FIFO");
    struct sched_queue_counts c;
    sched_queue_unschedulable(q, a);
    sched_queue_counts(q, &c);
    ok(c.active == 1 && c.unsched == 1 && c.backoff == 0, "a is unschedulable");
    struct sched_qpod *b = sched_queue_pop(q);
    sched_queue_move_all(q); /* an event while b is being tried */
    sched_queue_unschedulable(q, b);
    sched_queue_counts(q, &c);
    ok(c.unsched == 0 && c.backoff == 2, "event: a to backoff; b (failed during) to backoff");
    /* run the loop until the backoff timer moves them to active */
    struct event *stop = evtimer_new(base, stop_loop, base);
    struct timeval tv = {0, 300000};
    evtimer_add(stop, &tv);
    int64_t t0 = mono_ns();
    event_base_dispatch(base);
    sched_queue_counts(q, &c);
    ok(c.active == 2 && c.backoff == 0, "backoff expired: both active again (%lld ms)",
       (long long)((mono_ns() - t0) / 1000000));
    a = sched_queue_pop(q);
    sched_queue_remove(q, a->key); /* deleted while in flight */
    sched_queue_backoff(q, a);     /* frees it */
    sched_queue_counts(q, &c);
    is_int(c.inflight, 0, "in-flight pod removed");
    ok(sched_queue_add(q, "default/a", 0) == 1, "re-created pod is new");
    event_free(stop);
    sched_queue_free(q);

    /* PrioritySort: higher priority first, then first come first served */
    q = sched_queue_new(base, 50, 400, on_kick, NULL);
    sched_queue_add(q, "ns/low1", 0);
    sched_queue_add(q, "ns/high", 1000);
    sched_queue_add(q, "ns/low2", 0);
    sched_queue_add(q, "ns/mid", 10);
    sched_queue_add(q, "ns/low3", 0);
    sched_queue_update(q, "ns/low3", 100); /* priority raised while queued */
    const char *want[] = {"ns/high", "ns/low3", "ns/mid", "ns/low1", "ns/low2"};
    char got[256] = "", exp[256] = "";
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        struct sched_qpod *p = sched_queue_pop(q);
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s ", p ? p->key : "(none)");
        snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s ", want[i]);
        if (p)
            sched_queue_done(q, p);
    }
    is_str(got, exp, "active queue order: priority, then arrival");
    ok(sched_queue_pop(q) == NULL, "empty");
    /* many pods: the heap keeps FIFO among equals */
    char key[32];
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "ns/p%03d", i);
        sched_queue_add(q, key, i % 3 == 0 ? 5 : 0);
    }
    int order_ok = 1, last_prio = 1 << 30, last_idx = -1;
    for (int i = 0; i < 500; i++) {
        struct sched_qpod *p = sched_queue_pop(q);
        int idx = atoi(p->key + 4), prio = idx % 3 == 0 ? 5 : 0;
        if (prio > last_prio || (prio == last_prio && idx < last_idx))
            order_ok = 0;
        last_prio = prio;
        last_idx = idx;
        sched_queue_done(q, p);
    }
    ok(order_ok, "500 pods popped by priority, FIFO within a priority");
    sched_queue_free(q);
    event_base_free(base);
}

int main(void)
{
    test_requests();
    test_filters();
    test_scores();
    test_message();
    test_misc();
    test_queue();
    return done_testing();
}
