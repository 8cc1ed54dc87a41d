/*
 * etcd_int: what etcd.c (the client, its endpoints, unary requests and
 * the arena answers are decoded into) and etcd_watch.c (the shared Watch
 * stream) share. Private to those two files.
 */
#ifndef CORACLE_ETCD_INT_H
#define CORACLE_ETCD_INT_H

#include "etcd.h"
#include "etcd.pb-c.h"
#include "gcl.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Decoding allocates every message, repeated array and bytes field of an
 * answer; with a bump allocator that is a pointer increment each, and the
 * whole answer is dropped at once after its callback.
 */
struct arena {
    struct arena *next_spare;
    char *blk;        /* the current block */
    size_t cap, used; /* of blk */
    char **old;       /* earlier, full blocks */
    size_t n_old, cap_old;
    size_t total; /* bytes asked for since the last reset */
};

struct endpoint {
    char *url; /* as given */
    gcl_t *g;
};

struct ereq;

struct etcd_watch {
    etcd_t *e;
    etcd_watch_t *prev, *next; /* e->watches, or e->grave */
    uint8_t *key, *range_end;
    size_t key_len, range_end_len;
    bool prev_kv, progress_notify;
    bool dead;
    int64_t next_rev; /* where a new create starts; 0: now */
    int64_t id;       /* etcd's watch_id on the current stream; -1 until created */
    struct etcd_watch_cbs cbs;
    void *arg;
};

struct etcd {
    struct event_base *base;
    struct endpoint *ep;
    size_t n_ep;
    size_t cur;
    char *ep_list; /* "a, b, c" for messages */
    int request_timeout_ms;
    int attempt_timeout_ms;
    uint64_t rng;
    struct ereq *reqs;
    etcd_watch_t *watches, *watches_tail;
    etcd_watch_t *grave;
    /* the Watch stream */
    gcl_call_t *ws;
    size_t ws_ep;
    etcd_watch_t **pend; /* creates awaiting their created response; NULL = cancelled since */
    size_t pend_head, n_pend, cap_pend;
    struct event *ws_timer;
    int64_t ws_down_since; /* mono ns of the first failure since the stream last worked */
    int ws_attempts;
    char *ws_last_err;
    struct arena *spare; /* arenas not in use */
    int busy;
    bool dead;
};

/* "hasleader: true": a member without a leader refuses the call (UNAVAILABLE) */
extern const struct gcl_md etcd_hasleader_md[1];

/* ---- etcd.c ---- */
/* An empty arena (reused or new); back with etcd_arena_put, which empties it. */
struct arena *etcd_arena_get(etcd_t *e);
void etcd_arena_put(etcd_t *e, struct arena *a);
/* size bytes from the arena (a protobuf-c allocator's alloc). */
void *etcd_arena_alloc(void *arena, size_t size);
/* protobuf-c's unpack into the arena; NULL if the bytes do not decode. */
ProtobufCMessage *etcd_decode(struct arena *a, const ProtobufCMessageDescriptor *d,
                              const uint8_t *msg, size_t len);
/* m packed into a new malloc'd buffer of *len bytes. */
uint8_t *etcd_encode(const ProtobufCMessage *m, size_t *len);
/* The pause in ms before the next attempt after n (see etcd.c). */
int etcd_backoff_ms(etcd_t *e, int n);
/* Endpoint i failed (why): the next one is used from now on. */
void etcd_ep_failed(etcd_t *e, size_t i, const char *why);
/* Ends a loop entry that did e->busy++ (e may be freed here). */
void etcd_leave(etcd_t *e);
/* The caller's view of k (NULL: all zero); it points into k. */
void etcd_kv_view(const Etcdserverpb__KeyValue *k, struct etcd_kv *o);

/* ---- etcd_watch.c ---- */
void etcd_ws_init(etcd_t *e);    /* etcd_new */
void etcd_ws_close(etcd_t *e);   /* etcd_free: every watch goes, no callback */
void etcd_ws_reap(etcd_t *e);    /* frees the watches cancelled during a loop entry */
void etcd_ws_destroy(etcd_t *e); /* the last of the watch state */

static inline ProtobufCBinaryData etcd_bin(const void *p, size_t len)
{
    return (ProtobufCBinaryData){len, (uint8_t *)p};
}

/* A range end: none (NULL), or etcd's "\0" for "to the end" (etcd_prefix_end's 0). */
static inline ProtobufCBinaryData etcd_end(const void *p, size_t len)
{
    if (!p)
        return etcd_bin(NULL, 0);
    return len ? etcd_bin(p, len) : etcd_bin("", 1);
}

static inline int64_t etcd_hdr_rev(const Etcdserverpb__ResponseHeader *h)
{
    return h ? h->revision : 0;
}

static inline void etcd_timer_in(struct event *ev, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

#endif
