/*
 * queue: active heap (priority, then FIFO), backoff heap (expiry) with one
 * timer, unschedulable list.
 * See queue.h.
 */
#include "config.h"

#include "queue.h"
#include "smap.h"
#include "util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct list {
    struct sched_qpod *head, *tail;
    size_t n;
};

/* A binary heap of qpods (each qpod is in at most one heap: heap_idx is shared). */
struct heap {
    struct sched_qpod **v;
    size_t n, cap;
    bool (*less)(const struct sched_qpod *a, const struct sched_qpod *b);
};

struct sched_queue {
    struct event_base *base;
    int initial_ms, max_ms;
    void (*kick)(void *);
    void *arg;
    smap_t *all; /* key -> qpod (every state) */
    struct heap active, backoff;
    struct list unsched;
    uint64_t seq; /* order of arrival in active */
    size_t inflight;
    uint64_t move_seq;
    struct event *timer;
    int64_t timer_at; /* mono ns the timer is set for, 0 if unset */
};

static void list_push(struct list *l, struct sched_qpod *p)
{
    p->next = NULL;
    p->prev = l->tail;
    if (l->tail)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
    l->n++;
}

static void list_unlink(struct list *l, struct sched_qpod *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        l->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        l->tail = p->prev;
    p->prev = p->next = NULL;
    l->n--;
}

/* ---- heaps ---- */

static bool active_less(const struct sched_qpod *a, const struct sched_qpod *b)
{
    /* Kubernetes' PrioritySort: higher priority first, then first come */
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->seq < b->seq;
}

static bool backoff_less(const struct sched_qpod *a, const struct sched_qpod *b)
{
    return a->backoff_until < b->backoff_until;
}

static void heap_swap(struct heap *h, size_t a, size_t b)
{
    struct sched_qpod *t = h->v[a];
    h->v[a] = h->v[b];
    h->v[b] = t;
    h->v[a]->heap_idx = a;
    h->v[b]->heap_idx = b;
}

static void heap_up(struct heap *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!h->less(h->v[i], h->v[p]))
            break;
        heap_swap(h, p, i);
        i = p;
    }
}

static void heap_down(struct heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->less(h->v[l], h->v[m]))
            m = l;
        if (r < h->n && h->less(h->v[r], h->v[m]))
            m = r;
        if (m == i)
            break;
        heap_swap(h, m, i);
        i = m;
    }
}

static void heap_push(struct heap *h, struct sched_qpod *p)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
    }
    p->heap_idx = h->n;
    h->v[h->n++] = p;
    heap_up(h, p->heap_idx);
}

static void heap_remove(struct heap *h, struct sched_qpod *p)
{
    size_t i = p->heap_idx;
    h->n--;
    if (i != h->n) {
        h->v[i] = h->v[h->n];
        h->v[i]->heap_idx = i;
        heap_down(h, i);
        heap_up(h, i);
    }
}

static void arm_timer(sched_queue_t *q)
{
    if (!q->backoff.n) {
        if (q->timer_at) {
            evtimer_del(q->timer);
            q->timer_at = 0;
        }
        return;
    }
    int64_t at = q->backoff.v[0]->backoff_until;
    if (q->timer_at && q->timer_at <= at)
        return;
    int64_t d = at - mono_ns();
    if (d < 0)
        d = 0;
    struct timeval tv = {(time_t)(d / 1000000000), (suseconds_t)(d % 1000000000 / 1000)};
    evtimer_add(q->timer, &tv);
    q->timer_at = at;
}

/* ---- states ---- */

static void detach(sched_queue_t *q, struct sched_qpod *p)
{
    switch (p->state) {
    case SCHED_Q_ACTIVE:
        heap_remove(&q->active, p);
        break;
    case SCHED_Q_UNSCHED:
        list_unlink(&q->unsched, p);
        break;
    case SCHED_Q_BACKOFF:
        heap_remove(&q->backoff, p);
        break;
    case SCHED_Q_INFLIGHT:
        q->inflight--;
        break;
    }
}

static void to_active(sched_queue_t *q, struct sched_qpod *p)
{
    bool was_empty = q->active.n == 0;
    p->state = SCHED_Q_ACTIVE;
    p->seq = ++q->seq;
    heap_push(&q->active, p);
    if (was_empty && q->kick)
        q->kick(q->arg);
}

static void to_backoff(sched_queue_t *q, struct sched_qpod *p)
{
    p->state = SCHED_Q_BACKOFF;
    heap_push(&q->backoff, p);
    arm_timer(q);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    sched_queue_t *q = arg;
    q->timer_at = 0;
    int64_t now = mono_ns();
    while (q->backoff.n && q->backoff.v[0]->backoff_until <= now + 1000000) {
        struct sched_qpod *p = q->backoff.v[0];
        heap_remove(&q->backoff, p);
        to_active(q, p);
    }
    arm_timer(q);
}

sched_queue_t *sched_queue_new(struct event_base *base, int initial_ms, int max_ms,
                               void (*kick)(void *arg), void *arg)
{
    sched_queue_t *q = xcalloc(1, sizeof(*q));
    q->base = base;
    q->initial_ms = initial_ms > 0 ? initial_ms : 1000;
    q->max_ms = max_ms >= q->initial_ms ? max_ms : q->initial_ms;
    q->kick = kick;
    q->arg = arg;
    q->all = smap_new();
    q->active.less = active_less;
    q->backoff.less = backoff_less;
    q->timer = evtimer_new(base, timer_cb, q);
    return q;
}

static void qpod_free(void *v)
{
    struct sched_qpod *p = v;
    free(p->key);
    free(p);
}

void sched_queue_free(sched_queue_t *q)
{
    if (!q)
        return;
    /* in-flight pods are owned by their attempt: mark them gone instead */
    smap_free(q->all, qpod_free);
    free(q->active.v);
    free(q->backoff.v);
    event_free(q->timer);
    free(q);
}

int sched_queue_add(sched_queue_t *q, const char *key, int32_t priority)
{
    if (smap_get(q->all, key))
        return 0;
    struct sched_qpod *p = xcalloc(1, sizeof(*p));
    p->key = xstrdup(key);
    p->priority = priority;
    p->added_ns = mono_ns();
    smap_put(q->all, key, p);
    to_active(q, p);
    return 1;
}

static void move_back(sched_queue_t *q, struct sched_qpod *p)
{
    if (p->backoff_until > mono_ns())
        to_backoff(q, p);
    else
        to_active(q, p);
}

void sched_queue_update(sched_queue_t *q, const char *key, int32_t priority)
{
    struct sched_qpod *p = smap_get(q->all, key);
    if (!p)
        return;
    if (p->priority != priority) {
        p->priority = priority;
        if (p->state == SCHED_Q_ACTIVE) {
            heap_down(&q->active, p->heap_idx);
            heap_up(&q->active, p->heap_idx);
        }
    }
    if (p->state != SCHED_Q_UNSCHED)
        return;
    list_unlink(&q->unsched, p);
    move_back(q, p);
}

void sched_queue_remove(sched_queue_t *q, const char *key)
{
    struct sched_qpod *p = smap_del(q->all, key);
    if (!p)
        return;
    if (p->state == SCHED_Q_INFLIGHT) {
        p->gone = 1; /* its attempt frees it */
        return;
    }
    detach(q, p);
    qpod_free(p);
}

struct sched_qpod *sched_queue_pop(sched_queue_t *q)
{
    if (!q->active.n)
        return NULL;
    struct sched_qpod *p = q->active.v[0];
    heap_remove(&q->active, p);
    p->state = SCHED_Q_INFLIGHT;
    p->move_seq = q->move_seq;
    q->inflight++;
    return p;
}

void sched_queue_done(sched_queue_t *q, struct sched_qpod *p)
{
    if (p->gone) {
        q->inflight--;
        qpod_free(p);
        return;
    }
    smap_del(q->all, p->key);
    detach(q, p);
    qpod_free(p);
}

int sched_queue_backoff_ms(const sched_queue_t *q, int attempts)
{
    int64_t d = q->initial_ms;
    for (int i = 1; i < attempts && d < q->max_ms; i++)
        d *= 2;
    return (int)(d > q->max_ms ? q->max_ms : d);
}

/* Ends an attempt that failed; returns 0, or -1 if the pod is gone (freed). */
static int attempt_failed(sched_queue_t *q, struct sched_qpod *p)
{
    q->inflight--;
    if (p->gone) {
        qpod_free(p);
        return -1;
    }
    p->attempts++;
    p->backoff_until = mono_ns() + (int64_t)sched_queue_backoff_ms(q, p->attempts) * 1000000;
    return 0;
}

void sched_queue_unschedulable(sched_queue_t *q, struct sched_qpod *p)
{
    if (attempt_failed(q, p) < 0)
        return;
    if (p->move_seq != q->move_seq) {
        to_backoff(q, p); /* the cluster changed during the attempt */
        return;
    }
    p->state = SCHED_Q_UNSCHED;
    list_push(&q->unsched, p);
}

void sched_queue_backoff(sched_queue_t *q, struct sched_qpod *p)
{
    if (attempt_failed(q, p) < 0)
        return;
    to_backoff(q, p);
}

void sched_queue_move_all(sched_queue_t *q)
{
    q->move_seq++;
    struct sched_qpod *p;
    while ((p = q->unsched.head)) {
        list_unlink(&q->unsched, p);
        move_back(q, p);
    }
}

void sched_queue_counts(const sched_queue_t *q, struct sched_queue_counts *c)
{
    c->active = q->active.n;
    c->backoff = q->backoff.n;
    c->unsched = q->unsched.n;
    c->inflight = q->inflight;
}
