/*
 * sched: coracle-scheduler's core (doc/man/coracle-scheduler.8). Informers on pods (all
 * namespaces) and nodes feed a scheduling queue (queue.h); each pending pod
 * is filtered and scored against the nodes (fit.h), charged to the chosen
 * node at once (the assume cache: a burst never double-books) and bound with
 * Pods.Bind, many binds in flight. Success gives a Normal "Scheduled" event;
 * no fit gives a Warning "FailedScheduling" event and the pod's PodScheduled
 * condition False/Unschedulable (written only when it changes), and the pod
 * waits for a relevant change; its events go through Kubernetes' spam filter
 * (25, then one per 5 minutes per pod).
 * What is charged to a node follows the pod informer (bound, finished,
 * deleted). Runs on one libevent loop; never polls.
 */
#ifndef CORACLE_SCHED_H
#define CORACLE_SCHED_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "coracle.pb-c.h"
#include "obs.h"

struct sched_cfg {
    const char *server;     /* apiserver ADDR ("127.0.0.1:6443", "unix:/path") */
    const char *name;       /* scheduler name (spec.schedulerName we serve) */
    int backoff_initial_ms; /* a failed pod's first backoff */
    int backoff_max_ms;     /* its cap */
    int max_inflight;       /* API calls (binds, events, status) in flight at most */
    int percentage_nodes;   /* of nodes to find feasible, 0 = Kubernetes' adaptive rule */
    const char *token;      /* bearer token or NULL */
    struct ssl_ctx_st *tls; /* TLS to the apiserver or NULL; borrowed: gcl takes a ref */
    bool standby;           /* watch but do not schedule until sched_lead (leader election) */
};

typedef struct sched sched_t;

/* Copies cfg. Returns NULL (logged) if the server address is bad. */
sched_t *sched_new(struct event_base *base, const struct sched_cfg *cfg);
/* Starts the informers; scheduling begins once both have synced (and, on standby, sched_lead). */
void sched_start(sched_t *s);
/* This scheduler won the election: it schedules from now on (with caches kept warm meanwhile). */
void sched_lead(sched_t *s);
/* Cancels everything and frees. */
void sched_free(sched_t *s);

struct sched_stats {
    uint64_t attempts;      /* scheduling attempts */
    uint64_t bound;         /* successful binds */
    uint64_t unschedulable; /* attempts that found no node */
    uint64_t bind_errors;   /* binds that failed */
    size_t nodes, pods_charged;
    size_t q_active, q_backoff, q_unschedulable, binds_inflight; /* queue lengths */
    const struct obs_hist *algorithm_seconds; /* filter+score time per attempt; owned by sched */
    const struct obs_hist *e2e_seconds;       /* attempt start to Bind answered OK */
};
void sched_get_stats(const sched_t *s, struct sched_stats *st);
/* /metrics of the health endpoint: Prometheus text from sched_get_stats. arg: the sched_t. */
void sched_metrics_write(FILE *f, void *arg);
/* STATUS= for `systemctl status` ("3 nodes, 10 pods bound, ..."). arg: the sched_t. */
void sched_describe(char *buf, size_t len, void *arg);

/* True if the pod waits for this scheduler: no nodeName, schedulerName
 * empty or name, not being deleted, not finished. */
bool sched_pod_is_pending(const Coracle__V1__Pod *pod, const char *name);
/* True if the pod's phase is Succeeded or Failed. */
bool sched_pod_is_terminal(const Coracle__V1__Pod *pod);
/* How many feasible nodes to find among n (Kubernetes' numFeasibleNodesToFind). */
size_t sched_num_to_find(size_t n, int percentage);

#endif
