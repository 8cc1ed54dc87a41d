/*
 * queue: the scheduling queue of pending pods, after Kubernetes' three
 * queues. active: pods to try now, higher spec.priority first, then in order
 * of arrival (Kubernetes' PrioritySort). backoff: pods that failed,
 * waiting out 1 s doubling to 10 s per attempt (one timer for the earliest
 * expiry). unschedulable: pods no node fits, parked until a relevant
 * cluster event (node added/changed, a pod released resources) moves them
 * back (to active, or to backoff if their backoff has not expired). A pod
 * that fails while such an event happened during its attempt goes to backoff
 * directly, so no event is lost. Nothing polls.
 */
#ifndef CORACLE_SCHED_QUEUE_H
#define CORACLE_SCHED_QUEUE_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

enum sched_qstate { SCHED_Q_ACTIVE, SCHED_Q_BACKOFF, SCHED_Q_UNSCHED, SCHED_Q_INFLIGHT };

struct sched_qpod {
    char *key; /* "ns/name" */
    enum sched_qstate state;
    int attempts;
    int64_t backoff_until;          /* mono ns */
    uint64_t move_seq;              /* the queue's move counter when the attempt began */
    int64_t added_ns;               /* mono ns when first queued */
    int gone;                       /* removed while in flight: freed when the attempt ends */
    int32_t priority;               /* spec.priority */
    double ev_tokens;               /* event spam filter (sched.c): tokens left */
    int64_t ev_at;                  /* ... and when they were counted (mono ns, 0 = never) */
    uint64_t seq;                   /* order of arrival in active */
    struct sched_qpod *prev, *next; /* unschedulable list */
    size_t heap_idx;                /* in the active or backoff heap */
};

typedef struct sched_queue sched_queue_t;

/*
 * kick(arg) is called (from the loop) when pods become active. Backoff
 * durations in ms.
 */
sched_queue_t *sched_queue_new(struct event_base *base, int initial_ms, int max_ms,
                               void (*kick)(void *arg), void *arg);
void sched_queue_free(sched_queue_t *q);

/* A new pending pod: queued active unless already known. Returns 1 if added. */
int sched_queue_add(sched_queue_t *q, const char *key, int32_t priority);
/* The pending pod changed: its priority is updated; if unschedulable, it is moved
 * back (active, or backoff until its backoff expires). */
void sched_queue_update(sched_queue_t *q, const char *key, int32_t priority);
/* The pod is no longer pending (bound, deleted, finished, not ours). */
void sched_queue_remove(sched_queue_t *q, const char *key);
/* Takes the next active pod (state INFLIGHT) or NULL. */
struct sched_qpod *sched_queue_pop(sched_queue_t *q);
/* The attempt ended well or the pod is no longer ours: forget it. */
void sched_queue_done(sched_queue_t *q, struct sched_qpod *p);
/* No node fits: unschedulable (or backoff if something moved meanwhile). */
void sched_queue_unschedulable(sched_queue_t *q, struct sched_qpod *p);
/* An error (bind failed): retry after the backoff. */
void sched_queue_backoff(sched_queue_t *q, struct sched_qpod *p);
/* A relevant cluster event: every unschedulable pod moves back. */
void sched_queue_move_all(sched_queue_t *q);

struct sched_queue_counts {
    size_t active, backoff, unsched, inflight;
};
void sched_queue_counts(const sched_queue_t *q, struct sched_queue_counts *c);
/* The backoff a pod gets after n failed attempts, in ms. */
int sched_queue_backoff_ms(const sched_queue_t *q, int attempts);

#endif
