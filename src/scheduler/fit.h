/*
 * fit: the scheduler's filter and score plugins, as pure functions over a
 * pod's digest (sched_pod) and a node's digest (sched_node): no I/O, no
 * loop, so the unit tests feed them structs. Texts are Kubernetes' own
 * (pkg/scheduler/framework/plugins/...), so users see the same
 * FailedScheduling messages:
 *   NodeName           "node(s) didn't match the requested node name"
 *   NodeUnschedulable  "node(s) were unschedulable"
 *   TaintToleration    "node(s) had untolerated taint {key: value}"; a node
 *                      whose Ready condition is not True counts as tainted
 *                      NoSchedule with node.kubernetes.io/not-ready (False, or
 *                      no condition yet: a kubelet's registration taint) or
 *                      node.kubernetes.io/unreachable (Unknown), as Kubernetes'
 *                      node lifecycle controller taints it (coracle's apiserver
 *                      sets the condition, not the taint)
 *   NodeAffinity       "node(s) didn't match Pod's node affinity/selector"
 *   NodePorts          "node(s) didn't have free ports for the requested pod ports"
 *   NodeResourcesFit   "Too many pods", "Insufficient cpu", "Insufficient memory"
 * Filters run in Kubernetes' order and a node reports the reasons of the
 * first plugin that rejects it. Scores: LeastAllocated and
 * BalancedAllocation, each 0-100, weight 1 each.
 */
#ifndef CORACLE_SCHED_FIT_H
#define CORACLE_SCHED_FIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coracle.pb-c.h"

#define SCHED_REASON_NODE_NAME "node(s) didn't match the requested node name"
#define SCHED_REASON_UNSCHEDULABLE "node(s) were unschedulable"
#define SCHED_REASON_AFFINITY "node(s) didn't match Pod's node affinity/selector"
#define SCHED_REASON_PORTS "node(s) didn't have free ports for the requested pod ports"
#define SCHED_REASON_CPU "Insufficient cpu"
#define SCHED_REASON_MEMORY "Insufficient memory"
#define SCHED_REASON_PODS "Too many pods"
#define SCHED_NO_NODES "no nodes available to schedule pods"

/* Kubernetes' defaults for containers without requests (scoring only). */
#define SCHED_DEFAULT_MILLI_CPU 100
#define SCHED_DEFAULT_MEMORY (200LL * 1024 * 1024)

enum sched_proto { SCHED_TCP, SCHED_UDP, SCHED_SCTP };

struct sched_port {
    int32_t port;
    enum sched_proto proto;
    char ip[48]; /* "0.0.0.0" when unset */
};

/* What a pod asks of a node. */
struct sched_req {
    int64_t cpu;    /* millicores: max(max(init), sum(containers)) */
    int64_t mem;    /* bytes, same rule */
    int64_t cpu_nz; /* same with Kubernetes' non-zero defaults, for scoring */
    int64_t mem_nz;
    size_t n_ports; /* host ports (hostPort > 0) */
    struct sched_port *ports;
};

/*
 * Computes r from the pod's containers and init containers. Returns 0, or
 * -1 with *err (malloc'd) naming the container and resource when a quantity
 * does not parse ("spec.containers[0].resources.requests[cpu]: ..."); r is
 * usable (that quantity counts as 0) either way. Free with sched_req_free.
 */
int sched_req_of(const Coracle__V1__Pod *pod, struct sched_req *r, char **err);
void sched_req_free(struct sched_req *r);

/* A port held on a node, with the number of pods holding it. */
struct sched_used_port {
    struct sched_port p;
    int n;
};

enum sched_ready { SCHED_READY_TRUE, SCHED_READY_FALSE, SCHED_READY_UNKNOWN };

/* What the scheduler knows of a node: the object and what is charged to it. */
struct sched_node {
    char *name;
    Coracle__V1__Node *node; /* a deep copy, owned; NULL until the Node is seen */
    int64_t alloc_cpu, alloc_mem, alloc_pods;
    enum sched_ready ready;
    /* charged: bound and assumed pods that are not finished */
    int64_t req_cpu, req_mem, req_cpu_nz, req_mem_nz, npods;
    struct sched_used_port *ports;
    size_t n_ports, cap_ports;
    long idx; /* position in the scheduler's node array, -1 if none */
};

/*
 * Sets (or replaces) the node object of n (deep-copies it) and recomputes
 * allocatable and readiness. Missing allocatable falls back to capacity; a
 * node without a pods entry takes no pods (as in Kubernetes).
 */
void sched_node_set(struct sched_node *n, const Coracle__V1__Node *node);
/*
 * A node's readiness from its Ready condition: False when it has none
 * yet (a kubelet registers its node not ready).
 */
enum sched_ready sched_node_readiness(const Coracle__V1__Node *node);
/* Frees what n owns (not n). */
void sched_node_clear(struct sched_node *n);
/* Charges (sign = +1) or releases (sign = -1) a pod's requests. */
void sched_node_charge(struct sched_node *n, const struct sched_req *r, int sign);

/* The pod being scheduled: the object and its digest. */
struct sched_pod {
    const Coracle__V1__Pod *pod;
    struct sched_req req;
};

/* Up to 3 reasons from one node (NodeResourcesFit can give several). */
struct sched_reasons {
    const char *r[3];
    size_t n;
    char buf[512]; /* holds a formatted taint reason */
};

/* Runs every filter. Returns true if the node fits; else fills why. */
bool sched_filter(const struct sched_pod *p, const struct sched_node *n, struct sched_reasons *why);

/* The individual filters (true = passes). */
bool sched_filter_node_name(const Coracle__V1__Pod *pod, const struct sched_node *n);
bool sched_filter_unschedulable(const Coracle__V1__Pod *pod, const struct sched_node *n);
/* On failure writes "node(s) had untolerated taint {k: v}" into buf. */
bool sched_filter_taints(const Coracle__V1__Pod *pod, const struct sched_node *n, char *buf,
                         size_t len);
bool sched_filter_affinity(const Coracle__V1__Pod *pod, const struct sched_node *n);
bool sched_filter_ports(const struct sched_req *r, const struct sched_node *n);
/* Adds 0-3 reasons; true if none. */
bool sched_filter_resources(const struct sched_req *r, const struct sched_node *n,
                            struct sched_reasons *why);

/* Toleration matching (Kubernetes' Toleration.ToleratesTaint). */
bool sched_tolerates(const Coracle__V1__Toleration *t, const char *key, const char *value,
                     const char *effect);

/* Scores 0-100 of placing r on n (r not yet charged to n). */
int sched_score_least_allocated(const struct sched_req *r, const struct sched_node *n);
int sched_score_balanced(const struct sched_req *r, const struct sched_node *n);
/* The weighted sum of the scores (weights 1 and 1: 0-200). */
int sched_score(const struct sched_req *r, const struct sched_node *n);

/* A histogram of reasons over the nodes of one attempt. */
struct sched_hist {
    struct {
        char *reason;
        int count;
    } * v;
    size_t n, cap;
};
void sched_hist_add(struct sched_hist *h, const struct sched_reasons *why);
void sched_hist_free(struct sched_hist *h);
/*
 * Kubernetes' FitError text: "0/3 nodes are available: 1 Insufficient cpu,
 * 2 node(s) didn't match Pod's node affinity/selector." (the "count reason"
 * strings sorted as strings); SCHED_NO_NODES when there are no nodes.
 * malloc'd.
 */
char *sched_fit_message(int nnodes, const struct sched_hist *h);

#endif
