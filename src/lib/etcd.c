/*
 * etcd: the etcd v3 client over gcl. See etcd.h.
 *
 * Each endpoint has its own gcl_t (made by etcd_new, connecting on first
 * use); e->cur is the one in use. A unary request (struct ereq) keeps its
 * packed body so it can be sent again: an UNAVAILABLE answer (connection
 * refused or lost, keepalive timeout, etcd's "no leader", "leader
 * changed") moves e->cur to the next endpoint and retries after a backoff
 * that is zero for the first round over the endpoints and then doubles,
 * jittered, until the request's deadline.
 *
 * Each attempt has a deadline of its own (attempt_ms), so that a member
 * which holds the request without answering costs that much, not the
 * whole request deadline: etcd accepts a proposal on a follower whose
 * leader just died (it notices after an election timeout), loses it, and
 * answers only after its request timeout (5 s + 2 election timeouts),
 * longer than a short Lease's renew deadline. clientv3 has no such
 * deadline (its caller's context bounds the whole call and it retries a
 * Txn only if it was never sent); here a retried Txn is safe (see
 * etcd.h), so an attempt that times out is retried on the next member as
 * a lost connection is. The attempt deadline doubles with each round
 * over the members, so a slow but healthy cluster still answers a big
 * request; the first is 2 s by default: a healthy member answers a
 * write in milliseconds and an election takes about one election
 * timeout (1 s by default), while keepalive (2 s + 2 s) finds a dead
 * connection no sooner.
 *
 * The watches are etcd_watch.c's.
 *
 * Callbacks may call anything, etcd_free included. Every entry from the
 * loop (gcl callbacks, timers) and etcd_free hold e->busy; objects freed
 * while it is held wait in e->grave (watches) or are unlinked before the
 * callback (requests), and e itself goes when the outermost entry leaves.
 */
#include "config.h"
#include "etcd.h"
#include "buf.h"
#include "etcd_int.h"
#include "grpc.h"
#include "util.h"

#include <openssl/ssl.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000
#define ARENA_MIN (16u << 10)
#define ARENA_KEEP (1u << 20)

const struct gcl_md etcd_hasleader_md[1] = {{"hasleader", "true"}};

/* ---------------------------------------------------------------- arena */

void *etcd_arena_alloc(void *data, size_t size)
{
    struct arena *a = data;
    const size_t al = alignof(max_align_t);
    size = (size + al - 1) & ~(al - 1);
    a->total += size;
    if (a->used + size > a->cap) {
        if (a->blk) {
            a->old = xgrow(a->old, &a->cap_old, a->n_old + 1, sizeof(*a->old));
            a->old[a->n_old++] = a->blk;
        }
        a->cap = size > 2 * a->cap ? size : 2 * a->cap;
        if (a->cap < ARENA_MIN)
            a->cap = ARENA_MIN;
        a->blk = xmalloc(a->cap);
        a->used = 0;
    }
    void *p = a->blk + a->used;
    a->used += size;
    return p;
}

static void arena_nofree(void *data, void *p)
{
    (void)data;
    (void)p;
}

/* Empties a: one block of the size the last answer needed is kept, unless that was more
 * than ARENA_KEEP (a big list must not stay allocated). */
static void arena_reset(struct arena *a)
{
    for (size_t i = 0; i < a->n_old; i++)
        free(a->old[i]);
    if (a->n_old || a->cap > ARENA_KEEP) {
        free(a->blk);
        a->blk = NULL;
        a->cap = 0;
        if (a->total <= ARENA_KEEP) {
            a->cap = a->total < ARENA_MIN ? ARENA_MIN : a->total;
            a->blk = xmalloc(a->cap);
        }
    }
    a->n_old = 0;
    a->used = 0;
    a->total = 0;
}

static void arena_destroy(struct arena *a)
{
    arena_reset(a);
    free(a->blk);
    free(a->old);
    free(a);
}

/* ---------------------------------------------------------------- types */

enum ereq_kind { REQ_RANGE, REQ_TXN, REQ_COMPACT, REQ_STATUS };

struct ereq {
    etcd_t *e;
    struct ereq *prev, *next; /* e->reqs */
    enum ereq_kind kind;
    uint8_t *body;
    size_t len;
    bool hasleader;
    union {
        etcd_range_fn range;
        etcd_txn_fn txn;
        etcd_done_fn done;
        etcd_status_fn status;
    } cb;
    void *arg;
    int64_t deadline; /* mono ns */
    gcl_call_t *call; /* the attempt under way */
    int ep;           /* its endpoint */
    struct event *timer;
    int attempts;
    bool maybe_sent; /* an earlier attempt may have reached etcd */
    char *last_err;
    struct arena *ar;
    ProtobufCMessage *resp;
    int nmsg;
};

static void etcd_destroy(etcd_t *e);

/* ---------------------------------------------------------------- helpers */

struct arena *etcd_arena_get(etcd_t *e)
{
    struct arena *a = e->spare;
    if (a) {
        e->spare = a->next_spare;
        return a;
    }
    return xcalloc(1, sizeof(*a));
}

void etcd_arena_put(etcd_t *e, struct arena *a)
{
    if (!a)
        return;
    arena_reset(a);
    a->next_spare = e->spare;
    e->spare = a;
}

ProtobufCMessage *etcd_decode(struct arena *a, const ProtobufCMessageDescriptor *d,
                              const uint8_t *msg, size_t len)
{
    ProtobufCAllocator al = {etcd_arena_alloc, arena_nofree, a};
    return protobuf_c_message_unpack(d, &al, len, msg);
}

uint8_t *etcd_encode(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = xmalloc(*len ? *len : 1);
    protobuf_c_message_pack(m, b);
    return b;
}

static uint32_t rnd(etcd_t *e)
{
    /* xorshift64*: jitter only */
    e->rng ^= e->rng >> 12;
    e->rng ^= e->rng << 25;
    e->rng ^= e->rng >> 27;
    return (uint32_t)((e->rng * 2685821657736338717ull) >> 32);
}

/* The pause before attempt n + 1 (n attempts made): none while the first
 * round over the endpoints lasts, then doubling from BACKOFF_MIN_MS, in
 * [d/2, d]. */
int etcd_backoff_ms(etcd_t *e, int n)
{
    int round = n / (int)e->n_ep;
    if (round == 0)
        return 0;
    int d = BACKOFF_MIN_MS;
    for (int i = 1; i < round && d < BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > BACKOFF_MAX_MS)
        d = BACKOFF_MAX_MS;
    return d / 2 + (int)(rnd(e) % (uint32_t)(d / 2 + 1));
}

/* The deadline of attempt n + 1 (n made): attempt_timeout_ms, doubled each round over the
 * endpoints, at most 8 times. */
static int attempt_ms(const etcd_t *e, int n)
{
    int round = n / (int)e->n_ep;
    return e->attempt_timeout_ms << (round < 3 ? round : 3);
}

/* Endpoint i failed: the next one is used from now on (once per failure
 * of the one in use, however many calls saw it). */
void etcd_ep_failed(etcd_t *e, size_t i, const char *why)
{
    if (e->cur != i)
        return;
    e->cur = (i + 1) % e->n_ep;
    if (e->n_ep > 1)
        log_info("etcd: %s failed (%s); trying %s", e->ep[i].url, why, e->ep[e->cur].url);
}

/* Leaving a loop entry: e goes if etcd_free was called meanwhile, and the
 * watches cancelled meanwhile go. */
void etcd_leave(etcd_t *e)
{
    if (--e->busy > 0)
        return;
    etcd_ws_reap(e);
    if (e->dead)
        etcd_destroy(e);
}

/* ---------------------------------------------------------------- views */

void etcd_kv_view(const Etcdserverpb__KeyValue *k, struct etcd_kv *o)
{
    if (!k) {
        memset(o, 0, sizeof(*o));
        return;
    }
    o->key = k->key.data;
    o->key_len = k->key.len;
    o->value = k->value.data;
    o->value_len = k->value.len;
    o->create_revision = k->create_revision;
    o->mod_revision = k->mod_revision;
    o->version = k->version;
    o->lease = k->lease;
}

static struct etcd_kv *kvs_view(struct arena *a, Etcdserverpb__KeyValue **k, size_t n)
{
    struct etcd_kv *v = n ? etcd_arena_alloc(a, n * sizeof(*v)) : NULL;
    for (size_t i = 0; i < n; i++)
        etcd_kv_view(k[i], &v[i]);
    return v;
}

/* ---------------------------------------------------------------- unary requests */

static const char *const req_path[] = {
    [REQ_RANGE] = "/etcdserverpb.KV/Range",
    [REQ_TXN] = "/etcdserverpb.KV/Txn",
    [REQ_COMPACT] = "/etcdserverpb.KV/Compact",
    [REQ_STATUS] = "/etcdserverpb.Maintenance/Status",
};
static const ProtobufCMessageDescriptor *const req_resp[] = {
    [REQ_RANGE] = &etcdserverpb__range_response__descriptor,
    [REQ_TXN] = &etcdserverpb__txn_response__descriptor,
    [REQ_COMPACT] = &etcdserverpb__compaction_response__descriptor,
    [REQ_STATUS] = &etcdserverpb__status_response__descriptor,
};

static void req_unlink(struct ereq *r)
{
    etcd_t *e = r->e;
    if (r->prev)
        r->prev->next = r->next;
    else if (e->reqs == r)
        e->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void req_free(struct ereq *r)
{
    req_unlink(r);
    if (r->timer)
        event_free(r->timer);
    if (r->ar)
        etcd_arena_put(r->e, r->ar);
    free(r->body);
    free(r->last_err);
    free(r);
}

/* The answer, as the caller's views, to the caller. */
static void req_deliver(struct ereq *r)
{
    struct arena *a = r->ar;
    switch (r->kind) {
    case REQ_RANGE: {
        Etcdserverpb__RangeResponse *m = (Etcdserverpb__RangeResponse *)r->resp;
        struct etcd_range_resp v = {etcd_hdr_rev(m->header), kvs_view(a, m->kvs, m->n_kvs),
                                    m->n_kvs, m->more, m->count};
        r->cb.range(r->arg, GRPC_OK, "", &v);
        break;
    }
    case REQ_TXN: {
        Etcdserverpb__TxnResponse *m = (Etcdserverpb__TxnResponse *)r->resp;
        struct etcd_op_resp *ops =
            m->n_responses ? etcd_arena_alloc(a, m->n_responses * sizeof(*ops)) : NULL;
        for (size_t i = 0; i < m->n_responses; i++) {
            Etcdserverpb__ResponseOp *o = m->responses[i];
            struct etcd_op_resp *v = &ops[i];
            memset(v, 0, sizeof(*v));
            switch (o->response_case) {
            case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE:
                v->type = ETCD_OP_RANGE;
                v->kvs = kvs_view(a, o->response_range->kvs, o->response_range->n_kvs);
                v->n_kvs = o->response_range->n_kvs;
                break;
            case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT:
                v->type = ETCD_OP_PUT;
                if (o->response_put->prev_kv) {
                    v->kvs = kvs_view(a, &o->response_put->prev_kv, 1);
                    v->n_kvs = 1;
                }
                break;
            case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE:
                v->type = ETCD_OP_DELETE;
                v->kvs = kvs_view(a, o->response_delete_range->prev_kvs,
                                  o->response_delete_range->n_prev_kvs);
                v->n_kvs = o->response_delete_range->n_prev_kvs;
                v->deleted = o->response_delete_range->deleted;
                break;
            default: /* nested txns are never sent */
                v->type = ETCD_OP_RANGE;
                break;
            }
        }
        struct etcd_txn_resp v = {etcd_hdr_rev(m->header), m->succeeded, r->maybe_sent, ops,
                                  m->n_responses};
        r->cb.txn(r->arg, GRPC_OK, "", &v);
        break;
    }
    case REQ_COMPACT:
        r->cb.done(r->arg, GRPC_OK, "",
                   etcd_hdr_rev(((Etcdserverpb__CompactionResponse *)r->resp)->header));
        break;
    case REQ_STATUS: {
        Etcdserverpb__StatusResponse *m = (Etcdserverpb__StatusResponse *)r->resp;
        struct etcd_status st = {etcd_hdr_rev(m->header), m->header ? m->header->member_id : 0,
                                 m->leader, m->raftterm, m->dbsize};
        r->cb.status(r->arg, GRPC_OK, "", &st);
        break;
    }
    }
}

static void req_fail(struct ereq *r, int code, const char *msg)
{
    switch (r->kind) {
    case REQ_RANGE:
        r->cb.range(r->arg, code, msg, NULL);
        break;
    case REQ_TXN:
        r->cb.txn(r->arg, code, msg, NULL);
        break;
    case REQ_COMPACT:
        r->cb.done(r->arg, code, msg, 0);
        break;
    case REQ_STATUS:
        r->cb.status(r->arg, code, msg, NULL);
        break;
    }
}

/* The end of r: its callback, then r goes (unlinked first: etcd_free from the callback must not
 * find it). */
static void req_end(struct ereq *r, int code, const char *msg)
{
    req_unlink(r);
    if (code == GRPC_OK)
        req_deliver(r);
    else
        req_fail(r, code, msg);
    req_free(r);
}

static void req_give_up(struct ereq *r, const char *last)
{
    etcd_t *e = r->e;
    char *m = xasprintf("etcd: no endpoint answered within %d ms (%s; last: %s)",
                        e->request_timeout_ms, e->ep_list, last);
    req_end(r, GRPC_UNAVAILABLE, m);
    free(m);
}

static void req_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct ereq *r = arg;
    if (r->nmsg++ || r->e->dead)
        return;
    if (!r->ar)
        r->ar = etcd_arena_get(r->e);
    r->resp = etcd_decode(r->ar, req_resp[r->kind], msg, len);
}

static void req_send(struct ereq *r);

static void req_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ereq *r = arg;
    etcd_t *e = r->e;
    e->busy++;
    req_send(r);
    etcd_leave(e);
}

/*
 * etcd 3.4 answers a proposal its raft dropped (a follower that lost its
 * leader, a leader stepping down) with code Unknown, "raft proposal
 * dropped": it never reached the log, so another member may take it.
 */
static bool dropped(const char *message)
{
    return strstr(message, "raft proposal dropped") != NULL;
}

static void req_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct ereq *r = arg;
    etcd_t *e = r->e;
    r->call = NULL;
    if (e->dead) {
        req_free(r);
        return;
    }
    e->busy++;
    if (code == GRPC_OK && (r->nmsg != 1 || !r->resp)) {
        char m[160];
        snprintf(m, sizeof(m), "etcd: %s answered %s with %s", e->ep[r->ep].url, req_path[r->kind],
                 r->nmsg != 1 ? "no single message" : "bytes that do not decode");
        req_end(r, GRPC_INTERNAL, m);
    } else if (code == GRPC_OK) {
        req_end(r, GRPC_OK, "");
    } else if (code == GRPC_DEADLINE_EXCEEDED && mono_ns() >= r->deadline) {
        if (r->last_err)
            req_give_up(r, r->last_err);
        else
            req_end(r, GRPC_DEADLINE_EXCEEDED, message);
    } else if (code != GRPC_UNAVAILABLE && code != GRPC_DEADLINE_EXCEEDED && !dropped(message)) {
        req_end(r, code, message); /* etcd's own error: passed on */
    } else {
        /* not sent if the connection never came up or etcd refused it before the raft log */
        if (code == GRPC_DEADLINE_EXCEEDED || (strncmp(message, "connect to ", 11) != 0 &&
                                               !strstr(message, "no leader") && !dropped(message)))
            r->maybe_sent = true;
        char m[96];
        if (code == GRPC_DEADLINE_EXCEEDED) {
            snprintf(m, sizeof(m), "no answer within the attempt deadline (%d ms)",
                     attempt_ms(e, r->attempts - 1));
            message = m;
        }
        free(r->last_err);
        r->last_err = xstrdup(message);
        if (r->ar)
            arena_reset(r->ar);
        r->resp = NULL;
        r->nmsg = 0;
        etcd_ep_failed(e, (size_t)r->ep, message);
        int d = etcd_backoff_ms(e, r->attempts);
        if (mono_ns() + (int64_t)d * 1000000 >= r->deadline) {
            req_give_up(r, message);
        } else {
            if (!r->timer)
                r->timer = evtimer_new(e->base, req_retry_cb, r);
            etcd_timer_in(r->timer, d);
        }
    }
    etcd_leave(e);
}

static void req_send(struct ereq *r)
{
    etcd_t *e = r->e;
    int64_t left = (r->deadline - mono_ns()) / 1000000;
    if (left <= 0) {
        req_give_up(r, r->last_err ? r->last_err : "no attempt made");
        return;
    }
    int ms = attempt_ms(e, r->attempts);
    r->attempts++;
    r->ep = (int)e->cur;
    r->call =
        gcl_call_raw_md(e->ep[e->cur].g, req_path[r->kind], etcd_hasleader_md, r->hasleader ? 1 : 0,
                        r->body, r->len, req_msg, req_done, r, ms < left ? ms : (int)left);
}

static struct ereq *req_new(etcd_t *e, enum ereq_kind kind, const ProtobufCMessage *m, void *arg)
{
    struct ereq *r = xcalloc(1, sizeof(*r));
    r->e = e;
    r->kind = kind;
    r->body = etcd_encode(m, &r->len);
    r->arg = arg;
    r->hasleader = true;
    r->deadline = mono_ns() + (int64_t)e->request_timeout_ms * 1000000;
    r->next = e->reqs;
    if (e->reqs)
        e->reqs->prev = r;
    e->reqs = r;
    return r;
}

void etcd_range(etcd_t *e, const struct etcd_range_req *req, etcd_range_fn cb, void *arg)
{
    Etcdserverpb__RangeRequest m = ETCDSERVERPB__RANGE_REQUEST__INIT;
    m.key = etcd_bin(req->key, req->key_len);
    m.range_end = etcd_end(req->range_end, req->range_end_len);
    m.limit = req->limit;
    m.revision = req->revision;
    m.serializable = req->serializable;
    m.keys_only = req->keys_only;
    m.count_only = req->count_only;
    struct ereq *r = req_new(e, REQ_RANGE, &m.base, arg);
    r->cb.range = cb;
    r->hasleader = !req->serializable; /* a serializable read is what a lone member can answer */
    req_send(r);
}

void etcd_range_page(etcd_t *e, const void *prefix, size_t prefix_len, const void *after,
                     size_t after_len, int64_t revision, int64_t limit, etcd_range_fn cb, void *arg)
{
    uint8_t *end = xmalloc(prefix_len + 1);
    size_t el = etcd_prefix_end(prefix, prefix_len, end);
    uint8_t *from = NULL;
    if (after) {
        /* the smallest key after the last one read */
        from = xmalloc(after_len + 1);
        memcpy(from, after, after_len);
        from[after_len] = 0;
    }
    struct etcd_range_req rq = {
        .key = from ? (const void *)from : prefix,
        .key_len = from ? after_len + 1 : prefix_len,
        .range_end = end,
        .range_end_len = el ? el : 1,
        .limit = limit,
        .revision = revision,
    };
    etcd_range(e, &rq, cb, arg);
    free(from);
    free(end);
}

size_t etcd_prefix_end(const void *prefix, size_t len, uint8_t *out)
{
    memcpy(out, prefix, len);
    while (len > 0) {
        if (out[len - 1] < 0xff) {
            out[len - 1]++;
            return len;
        }
        len--;
    }
    out[0] = 0;
    return 0;
}

/* The protobuf form of one op; its sub-message lives in *sub (one of the three). */
struct op_pb {
    Etcdserverpb__RequestOp op;
    union {
        Etcdserverpb__RangeRequest range;
        Etcdserverpb__PutRequest put;
        Etcdserverpb__DeleteRangeRequest del;
    } u;
};

static Etcdserverpb__RequestOp **ops_pb(const struct etcd_op *ops, size_t n, struct op_pb *st)
{
    Etcdserverpb__RequestOp **pp = xcalloc(n ? n : 1, sizeof(*pp));
    for (size_t i = 0; i < n; i++) {
        const struct etcd_op *o = &ops[i];
        struct op_pb *s = &st[i];
        etcdserverpb__request_op__init(&s->op);
        ProtobufCBinaryData end = etcd_end(o->range_end, o->range_end_len);
        switch (o->type) {
        case ETCD_OP_RANGE:
            etcdserverpb__range_request__init(&s->u.range);
            s->u.range.key = etcd_bin(o->key, o->key_len);
            s->u.range.range_end = end;
            s->op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
            s->op.request_range = &s->u.range;
            break;
        case ETCD_OP_PUT:
            etcdserverpb__put_request__init(&s->u.put);
            s->u.put.key = etcd_bin(o->key, o->key_len);
            s->u.put.value = etcd_bin(o->value, o->value_len);
            s->u.put.prev_kv = o->prev_kv;
            s->op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
            s->op.request_put = &s->u.put;
            break;
        case ETCD_OP_DELETE:
            etcdserverpb__delete_range_request__init(&s->u.del);
            s->u.del.key = etcd_bin(o->key, o->key_len);
            s->u.del.range_end = end;
            s->u.del.prev_kv = o->prev_kv;
            s->op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
            s->op.request_delete_range = &s->u.del;
            break;
        }
        pp[i] = &s->op;
    }
    return pp;
}

void etcd_txn(etcd_t *e, const struct etcd_txn_req *req, etcd_txn_fn cb, void *arg)
{
    Etcdserverpb__TxnRequest m = ETCDSERVERPB__TXN_REQUEST__INIT;
    Etcdserverpb__Compare *cmps = xcalloc(req->n_cmp ? req->n_cmp : 1, sizeof(*cmps));
    Etcdserverpb__Compare **cp = xcalloc(req->n_cmp ? req->n_cmp : 1, sizeof(*cp));
    for (size_t i = 0; i < req->n_cmp; i++) {
        const struct etcd_cmp *c = &req->cmp[i];
        Etcdserverpb__Compare *p = &cmps[i];
        etcdserverpb__compare__init(p);
        p->key = etcd_bin(c->key, c->key_len);
        p->result = (Etcdserverpb__Compare__CompareResult)c->result;
        p->target = (Etcdserverpb__Compare__CompareTarget)c->target;
        switch (c->target) {
        case ETCD_CMP_VERSION:
            p->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION;
            p->version = c->number;
            break;
        case ETCD_CMP_CREATE:
            p->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
            p->create_revision = c->number;
            break;
        case ETCD_CMP_MOD:
            p->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
            p->mod_revision = c->number;
            break;
        case ETCD_CMP_VALUE:
            p->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
            p->value = etcd_bin(c->value, c->value_len);
            break;
        }
        cp[i] = p;
    }
    struct op_pb *st = xcalloc(req->n_success + req->n_failure + 1, sizeof(*st));
    m.n_compare = req->n_cmp;
    m.compare = cp;
    m.n_success = req->n_success;
    m.success = ops_pb(req->success, req->n_success, st);
    m.n_failure = req->n_failure;
    m.failure = ops_pb(req->failure, req->n_failure, st + req->n_success);
    struct ereq *r = req_new(e, REQ_TXN, &m.base, arg);
    free(m.success);
    free(m.failure);
    free(st);
    free(cp);
    free(cmps);
    r->cb.txn = cb;
    req_send(r);
}

void etcd_compact(etcd_t *e, int64_t revision, bool physical, etcd_done_fn cb, void *arg)
{
    Etcdserverpb__CompactionRequest m = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
    m.revision = revision;
    m.physical = physical;
    struct ereq *r = req_new(e, REQ_COMPACT, &m.base, arg);
    r->cb.done = cb;
    req_send(r);
}

void etcd_status(etcd_t *e, etcd_status_fn cb, void *arg)
{
    Etcdserverpb__StatusRequest m = ETCDSERVERPB__STATUS_REQUEST__INIT;
    struct ereq *r = req_new(e, REQ_STATUS, &m.base, arg);
    r->cb.status = cb;
    r->hasleader = false; /* the member's own view, leader or not */
    req_send(r);
}

/* ---------------------------------------------------------------- the client */

static int ep_check(const char *url, bool tls, char **err)
{
    const char *hp = url;
    if (strncmp(url, "https://", 8) == 0) {
        if (!tls) {
            *err = xasprintf("etcd: %s: https needs a TLS context (etcd_opts.tls)", url);
            return -1;
        }
        hp += 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        hp += 7;
    } else if (strstr(url, "://")) {
        *err = xasprintf("etcd: %s: expected http://HOST:PORT or https://HOST:PORT", url);
        return -1;
    }
    const char *colon = strrchr(hp, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || colon == hp || !colon[1] || *end || port <= 0 || port > 65535 ||
        strchr(hp, '/')) {
        *err = xasprintf("etcd: %s: expected http://HOST:PORT or https://HOST:PORT", url);
        return -1;
    }
    return 0;
}

etcd_t *etcd_new(struct event_base *base, const struct etcd_opts *opts, char **err)
{
    *err = NULL;
    if (!opts->n_endpoints) {
        *err = xstrdup("etcd: no endpoint given");
        return NULL;
    }
    for (size_t i = 0; i < opts->n_endpoints; i++)
        if (ep_check(opts->endpoints[i], opts->tls != NULL, err) < 0)
            return NULL;
    etcd_t *e = xcalloc(1, sizeof(*e));
    e->base = base;
    e->request_timeout_ms = opts->request_timeout_ms > 0 ? opts->request_timeout_ms : 10000;
    e->attempt_timeout_ms = opts->attempt_timeout_ms > 0 ? opts->attempt_timeout_ms : 2000;
    e->rng = (uint64_t)mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)e;
    if (!e->rng)
        e->rng = 1;
    e->n_ep = opts->n_endpoints;
    e->ep = xcalloc(e->n_ep, sizeof(*e->ep));
    struct buf list = {0};
    for (size_t i = 0; i < e->n_ep; i++) {
        const char *url = opts->endpoints[i];
        bool https = strncmp(url, "https://", 8) == 0;
        struct gcl_opts go = {
            .connect_timeout_ms = opts->dial_timeout_ms > 0 ? opts->dial_timeout_ms : 2000,
            .tls = https ? opts->tls : NULL,
        };
        e->ep[i].url = xstrdup(url);
        e->ep[i].g = gcl_new(base, url, &go);
        if (!e->ep[i].g) {
            *err = xasprintf("etcd: %s: not a usable endpoint", url);
            buf_free(&list);
            e->n_ep = i;
            etcd_destroy(e);
            return NULL;
        }
        gcl_set_keepalive(e->ep[i].g,
                          opts->keepalive_interval_ms > 0 ? opts->keepalive_interval_ms : 2000,
                          opts->keepalive_timeout_ms > 0 ? opts->keepalive_timeout_ms : 2000);
        buf_printf(&list, "%s%s", i ? ", " : "", url);
    }
    e->ep_list = buf_take(&list);
    etcd_ws_init(e);
    return e;
}

/* Frees what is left; every gcl_t is gone already or goes here without calls. */
static void etcd_destroy(etcd_t *e)
{
    for (size_t i = 0; i < e->n_ep; i++) {
        gcl_free(e->ep[i].g);
        free(e->ep[i].url);
    }
    while (e->reqs)
        req_free(e->reqs);
    etcd_ws_destroy(e);
    while (e->spare) {
        struct arena *a = e->spare;
        e->spare = a->next_spare;
        arena_destroy(a);
    }
    free(e->ep);
    free(e->ep_list);
    free(e);
}

void etcd_free(etcd_t *e)
{
    if (!e || e->dead)
        return;
    e->dead = true;
    e->busy++;
    /* the calls' done callbacks see e->dead: requests free themselves, nothing reaches the user */
    for (size_t i = 0; i < e->n_ep; i++) {
        gcl_free(e->ep[i].g);
        e->ep[i].g = NULL;
    }
    etcd_ws_close(e);
    etcd_leave(e);
}

const char *etcd_endpoint(const etcd_t *e)
{
    return e->ep[e->cur].url;
}
