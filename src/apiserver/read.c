/*
 * read: Get and List, answered from store read snapshots without decoding
 * what need not be decoded: Get copies the stored bytes (already the
 * encoded object) into the reply; List concatenates stored items as field 2
 * entries and appends the ListMeta (field 1; protobuf accepts fields in any
 * order), decoding an item only when a selector needs it.
 *
 * limit/continue: the token carries the list's revision and the last key.
 * A continued page is read as of that revision, as Kubernetes does with
 * etcd: the current objects after the key are merged with the state at the
 * token's revision rebuilt from the store log (the first change of each key
 * after it carries its previous bytes). A token older than the compacted
 * log is OUT_OF_RANGE, like Kubernetes' 410 Expired.
 */
#include "config.h"
#include "api.h"
#include "buf.h"
#include "grpc.h"
#include "obj.h"
#include "rpool.h"
#include "sel.h"
#include "util.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- continue token ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64_encode(const uint8_t *d, size_t n)
{
    char *o = xmalloc(n / 3 * 4 + 5), *p = o;
    size_t i;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *p++ = b64[v >> 18];
        *p++ = b64[v >> 12 & 63];
        *p++ = b64[v >> 6 & 63];
        *p++ = b64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
        *p++ = b64[v >> 18];
        *p++ = b64[v >> 12 & 63];
        if (i + 1 < n)
            *p++ = b64[v >> 6 & 63];
    }
    *p = 0;
    return o;
}

static int b64_decode(const char *s, uint8_t **out, size_t *out_len)
{
    size_t n = strlen(s);
    if (n % 4 == 1)
        return -1;
    uint8_t *o = xmalloc(n / 4 * 3 + 3);
    size_t j = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        const char *q = strchr(b64, s[i]);
        if (!q || !s[i]) {
            free(o);
            return -1;
        }
        acc = acc << 6 | (uint32_t)(q - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[j++] = (uint8_t)(acc >> bits);
        }
    }
    *out = o;
    *out_len = j;
    return 0;
}

char *read_token_encode(uint64_t rev, const char *key, size_t key_len)
{
    char *raw = xasprintf("c1:%" PRIu64 ":%.*s", rev, (int)key_len, key);
    char *t = b64_encode((const uint8_t *)raw, strlen(raw));
    free(raw);
    return t;
}

int read_token_decode(const char *tok, uint64_t *rev, char **key)
{
    uint8_t *raw;
    size_t n;
    if (!tok || b64_decode(tok, &raw, &n) < 0)
        return -1;
    int r = -1;
    if (n < 5 || memcmp(raw, "c1:", 3) || memchr(raw, 0, n))
        goto out;
    size_t i = 3;
    uint64_t v = 0;
    if (raw[i] < '0' || raw[i] > '9')
        goto out;
    while (i < n && raw[i] >= '0' && raw[i] <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            goto out;
        v = v * 10 + (uint64_t)(raw[i++] - '0');
    }
    if (i >= n || raw[i] != ':' || v == 0)
        goto out;
    i++;
    *rev = v;
    *key = xstrndup((const char *)raw + i, n - i);
    r = 0;
out:
    free(raw);
    return r;
}

/* ---- Get ---- */

int read_object(store_t *st, const struct kind *k, const char *ns, const char *name,
                void (*fn)(const void *val, size_t len, void *arg), void *arg)
{
    char *key = kind_key(k, ns, name);
    store_rtxn_t *t;
    int r = store_read_begin(st, &t);
    if (r < 0) {
        free(key);
        return r;
    }
    const void *val;
    size_t vlen;
    r = store_get(t, key, strlen(key), &val, &vlen);
    if (r == 0)
        fn(val, vlen, arg);
    store_read_end(t);
    free(key);
    return r;
}

struct get_reply {
    struct api_route *rt;
    h2s_call_t *c;
};

static void get_reply_cb(const void *val, size_t len, void *arg)
{
    struct get_reply *g = arg;
    api_reply(g->rt, g->c, val, len);
}

void read_get(struct api_route *rt, store_t *st, h2s_call_t *c, const uint8_t *msg, size_t len)
{
    const struct kind *k = rt->k;
    Coracle__V1__GetRequest *req =
        (void *)obj_decode(&coracle__v1__get_request__descriptor, msg, len);
    if (!req) {
        api_fail(rt, c, GRPC_INVALID_ARGUMENT, "failed to decode GetRequest: invalid protobuf");
        return;
    }
    if (!req->name || !*req->name) {
        api_fail(rt, c, GRPC_INVALID_ARGUMENT, "resource name may not be empty");
        goto out;
    }
    const char *ns = req->namespace_ && *req->namespace_ ? req->namespace_ : "default";
    struct get_reply gr = {rt, c};
    int r = read_object(st, k, ns, req->name, get_reply_cb, &gr);
    if (r == STORE_ENOTFOUND)
        api_failf(rt, c, GRPC_NOT_FOUND, "%s \"%s\" not found", k->group_resource, req->name);
    else if (r == STORE_ECLOSED || r == STORE_EIO)
        api_fail(rt, c, GRPC_UNAVAILABLE, store_strerror(r));
    else if (r < 0)
        api_fail(rt, c, GRPC_INTERNAL, store_strerror(r));
out:
    obj_free(&req->base);
}

/* ---- reads not older than a resourceVersion ---- */

struct read_rvwait {
    store_t *st;
    struct store_wait *w;
    struct event *timer;
    uint64_t rev;
    read_rv_fn fn;
    void *arg;
};

void read_rv_cancel(struct read_rvwait *x)
{
    if (!x)
        return;
    if (x->w)
        store_wait_cancel(x->st, x->w);
    event_free(x->timer);
    free(x);
}

static void rv_reached(void *arg)
{
    struct read_rvwait *x = arg;
    read_rv_fn fn = x->fn;
    void *fn_arg = x->arg;
    x->w = NULL;
    read_rv_cancel(x);
    fn(fn_arg, NULL);
}

static void rv_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct read_rvwait *x = arg;
    (void)fd;
    (void)what;
    read_rv_fn fn = x->fn;
    void *fn_arg = x->arg;
    char *m = xasprintf("Too large resource version: %" PRIu64 ", current: %" PRIu64, x->rev,
                        store_rev(x->st));
    read_rv_cancel(x);
    fn(fn_arg, m);
    free(m);
}

struct read_rvwait *read_rv_hold(store_t *st, struct event_base *base, const char *rv,
                                 read_rv_fn fn, void *arg)
{
    if (!rv || !*rv || strspn(rv, "0123456789") != strlen(rv) || strlen(rv) > 19 || !base)
        return NULL;
    uint64_t n = strtoull(rv, NULL, 10);
    if (n <= store_rev(st))
        return NULL;
    struct read_rvwait *x = xcalloc(1, sizeof(*x));
    *x = (struct read_rvwait){.st = st, .rev = n, .fn = fn, .arg = arg};
    x->timer = evtimer_new(base, rv_timeout, x);
    struct timeval tv = {READ_RV_WAIT_MS / 1000, (READ_RV_WAIT_MS % 1000) * 1000};
    evtimer_add(x->timer, &tv);
    x->w = store_wait_rev(st, n, rv_reached, x);
    return x;
}

/* ---- List ---- */

struct ovr {
    char *key;
    uint64_t rev;
    void *val; /* NULL: absent at the list revision */
    size_t len;
};

/*
 * A List in progress, read from one snapshot held until the answer. It
 * starts on the loop; one that is still at work after LIST_INLINE_NS, or
 * whose request is big enough that parsing its selectors alone would hold
 * the loop (LIST_INLINE_MAX_REQ), goes on in the read worker (rpool.h), and comes back to the loop
 * to be answered. So no List holds the loop for more than about LIST_INLINE_NS, whatever its
 * selectors or the store's size, and the many small Lists of a busy cluster never pay a thread
 * hand-off. When the inline part ends after an item (or log record), the worker resumes after the
 * last one fully handled (resume_key / log_done): an item whose overrides were only partly emitted
 * is visited again (flush_ovr's progress, iov, makes that idempotent).
 */
struct lctx {
    const struct kind *k;
    Coracle__V1__ListRequest *req;
    sel_t *ls, *fs;
    int64_t limit;
    struct buf out;
    int64_t count;
    char *last_key;
    size_t last_len;
    bool more;
    const char *prefix;
    size_t plen;
    const char *after; /* continue: keys <= this were listed */
    struct ovr *ov;
    size_t nov, iov, cap_ov;
    store_rtxn_t *t;
    uint64_t list_rev;  /* the page's revision */
    uint64_t compacted; /* the store's compacted revision when the List began */
    int phase;          /* LIST_PARSE, LIST_LOG, LIST_SCAN, LIST_FLUSH, LIST_DONE */
    uint64_t log_done;  /* log records up to this one were collected */
    char *resume_key;   /* scanned keys up to this one were handled */
    size_t resume_len;
    bool paused;
    int fail_code; /* nonzero: answer with this code and fail_msg */
    char *fail_msg;
    char *prefix_buf, *after_buf;
    /* who gets the page, on the loop */
    read_list_done_fn done;
    void *owner, *owner2;
    struct rjob job; /* in the read worker */
};

enum { LIST_PARSE, LIST_LOG, LIST_SCAN, LIST_FLUSH, LIST_DONE };

/* Work on the loop, at most (the item that crosses it finishes first). */
#define LIST_INLINE_NS 1000000
/* Requests bigger than this go to the worker before their selectors are parsed. */
#define LIST_INLINE_MAX_REQ (64u << 10)
/* Without a selector an item is a copy: read the clock every this many. */
#define LIST_CHECK_PLAIN 32

/* Whether to stop here (time to hand over, or nobody waits any more); counts one item. */
static bool slice_spent(struct lctx *x)
{
    if (!rjob_spent(&x->job, x->ls || x->fs ? 1 : LIST_CHECK_PLAIN))
        return false;
    x->paused = true;
    return true;
}

/* Adds one object to the page. Returns nonzero to stop. */
static int emit(struct lctx *x, const char *key, size_t klen, const void *val, size_t vlen)
{
    if (x->ls || x->fs) {
        ProtobufCMessage *o = obj_decode(x->k->desc, val, vlen);
        struct obj_fields_arg fa = {x->k, o};
        bool m = o && (!x->ls || obj_match_labels(x->ls, o)) &&
                 (!x->fs || sel_match(x->fs, obj_field_get, &fa));
        obj_free(o);
        if (!m)
            return 0;
    }
    if (x->limit > 0 && x->count == x->limit) {
        x->more = true;
        return 1;
    }
    buf_field(&x->out, 2, val, vlen);
    x->count++;
    free(x->last_key);
    x->last_key = xstrndup(key, klen);
    x->last_len = klen;
    return 0;
}

static int keycmp(const char *a, size_t al, const char *b)
{
    size_t bl = strlen(b);
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al < bl ? -1 : al > bl);
}

/* Emits the overrides with keys below key (all of them if key is NULL). */
static int flush_ovr(struct lctx *x, const char *key, size_t klen)
{
    while (x->iov < x->nov && (!key || keycmp(key, klen, x->ov[x->iov].key) > 0)) {
        struct ovr *o = &x->ov[x->iov++];
        if (o->val && emit(x, o->key, strlen(o->key), o->val, o->len))
            return 1;
        if (slice_spent(x))
            return 1;
    }
    return 0;
}

static int scan_item(struct lctx *x, const char *key, size_t klen, const void *val, size_t vlen)
{
    if (x->nov) {
        if (flush_ovr(x, key, klen))
            return 1;
        if (x->iov < x->nov && keycmp(key, klen, x->ov[x->iov].key) == 0) {
            struct ovr *o = &x->ov[x->iov++];
            return o->val ? emit(x, key, klen, o->val, o->len) : 0;
        }
    }
    return emit(x, key, klen, val, vlen);
}

static int scan_cb(const char *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    struct lctx *x = arg;
    if (scan_item(x, key, klen, val, vlen))
        return 1;
    if (!slice_spent(x))
        return 0;
    free(x->resume_key);
    x->resume_key = xstrndup(key, klen);
    x->resume_len = klen;
    return 1;
}

/* Collects, for keys in the listed range, the first change after the list revision. */
static int log_cb(const struct store_change *ch, void *arg)
{
    struct lctx *x = arg;
    x->log_done = ch->rev;
    if (ch->key_len < x->plen || memcmp(ch->key, x->prefix, x->plen) ||
        keycmp(ch->key, ch->key_len, x->after) <= 0)
        return slice_spent(x);
    struct ovr *o = XPUSH(x->ov, x->nov, x->cap_ov);
    o->key = xstrndup(ch->key, ch->key_len);
    o->rev = ch->rev;
    o->val = ch->prev ? xmemdup(ch->prev, ch->prev_len) : NULL;
    o->len = ch->prev_len;
    return slice_spent(x);
}

static int ovr_cmp(const void *a, const void *b)
{
    const struct ovr *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->rev < y->rev ? -1 : x->rev > y->rev);
}

/* Sorts by key then revision and keeps the first change of each key. */
static void ovr_settle(struct lctx *x)
{
    qsort(x->ov, x->nov, sizeof(*x->ov), ovr_cmp);
    size_t j = 0;
    for (size_t i = 0; i < x->nov; i++) {
        if (j && !strcmp(x->ov[j - 1].key, x->ov[i].key)) {
            free(x->ov[i].key);
            free(x->ov[i].val);
            continue;
        }
        x->ov[j++] = x->ov[i];
    }
    x->nov = j;
}

#define CONTINUE_TOO_OLD                                                                           \
    "The provided continue parameter is too old to display a consistent list result. You can "     \
    "start a new list without the continue parameter, or use the continue token in this "          \
    "response to retrieve the remainder of the results. Continuing with the provided token "       \
    "results in an inconsistent list - objects that were created, modified, or deleted between "   \
    "the time the first chunk was returned and now may show up in the list."

static void list_free(struct lctx *x)
{
    if (x->t)
        store_read_end(x->t);
    for (size_t i = 0; i < x->nov; i++) {
        free(x->ov[i].key);
        free(x->ov[i].val);
    }
    free(x->ov);
    buf_free(&x->out);
    free(x->last_key);
    free(x->resume_key);
    free(x->fail_msg);
    sel_free(x->ls);
    sel_free(x->fs);
    free(x->prefix_buf);
    free(x->after_buf);
    if (x->req)
        obj_free(&x->req->base);
    free(x);
}

static int list_fail(struct lctx *x, int code, const char *msg)
{
    x->fail_code = code;
    x->fail_msg = xstrdup(msg);
    x->phase = LIST_DONE;
    return 0;
}

/* The page is complete: ListMeta after the items. */
static void list_meta(struct lctx *x)
{
    Coracle__V1__ListMeta lm = CORACLE__V1__LIST_META__INIT;
    char rvs[24];
    snprintf(rvs, sizeof(rvs), "%" PRIu64, x->list_rev);
    lm.resourceversion = rvs;
    char *tok = NULL;
    if (x->more) {
        tok = read_token_encode(x->list_rev, x->last_key, x->last_len);
        lm.continue_ = tok;
    }
    size_t ml;
    void *mb = obj_encode(&lm.base, &ml);
    buf_field(&x->out, 1, mb, ml);
    free(mb);
    free(tok);
}

/* Selectors, parsed where the rest of the work runs. */
static int list_parse(struct lctx *x)
{
    char *err = NULL;
    if (sel_parse_labels(x->req->labelselector, &x->ls, &err) < 0 ||
        obj_check_field_selector(x->k, x->req->fieldselector, &err) < 0 ||
        sel_parse_fields(x->req->fieldselector, &x->fs, &err) < 0) {
        list_fail(x, GRPC_INVALID_ARGUMENT, err);
        free(err);
        return -1;
    }
    if (sel_empty(x->ls)) {
        sel_free(x->ls);
        x->ls = NULL;
    }
    if (sel_empty(x->fs)) {
        sel_free(x->fs);
        x->fs = NULL;
    }
    return 0;
}

/*
 * Works until the page is done (phase LIST_DONE: answer or fail_code set)
 * or the deadline passes (paused: call again to go on). Loop or worker.
 */
static void list_work(struct lctx *x)
{
    x->paused = false;
    int r;
    if (x->phase == LIST_PARSE) {
        if (list_parse(x) < 0)
            return;
        x->phase = x->log_done ? LIST_LOG : LIST_SCAN;
    }
    if (x->phase == LIST_LOG) {
        r = store_log_scan(x->t, x->log_done, log_cb, x);
        if (r == STORE_ECOMPACTED || x->list_rev < x->compacted) {
            list_fail(x, GRPC_OUT_OF_RANGE, CONTINUE_TOO_OLD);
            return;
        }
        if (r < 0) {
            list_fail(x, GRPC_INTERNAL, store_strerror(r));
            return;
        }
        if (x->paused)
            return;
        ovr_settle(x);
        x->phase = LIST_SCAN;
    }
    if (x->phase == LIST_SCAN) {
        const char *from = x->resume_key ? x->resume_key : x->after;
        size_t from_len = x->resume_key ? x->resume_len : from ? strlen(from) : 0;
        r = store_scan(x->t, x->prefix, x->plen, from, from_len, scan_cb, x);
        if (r < 0) {
            list_fail(x, GRPC_INTERNAL, store_strerror(r));
            return;
        }
        if (x->paused)
            return;
        x->phase = LIST_FLUSH;
    }
    if (!x->more && flush_ovr(x, NULL, 0) && x->paused)
        return;
    list_meta(x);
    x->phase = LIST_DONE;
}

/* On the loop, once done: the answer, then the List is gone. */
static void list_finish(struct lctx *x)
{
    if (x->fail_code)
        x->done(x->owner, x->owner2, x->fail_code, x->fail_msg, NULL, 0);
    else
        x->done(x->owner, x->owner2, GRPC_OK, NULL, (const uint8_t *)(x->out.p ? x->out.p : ""),
                x->out.len);
    list_free(x);
}

static void list_job_work(struct rjob *j)
{
    list_work(RJOB_OWNER(j, struct lctx, job));
}

static void list_job_done(struct rjob *j, bool cancelled)
{
    struct lctx *x = RJOB_OWNER(j, struct lctx, job);
    if (cancelled)
        list_free(x); /* the client is gone */
    else
        list_finish(x);
}

void read_list_cancel(struct lctx *x)
{
    rjob_cancel(&x->job); /* the worker has it; list_job_done frees it */
}

static void list_closed(h2s_call_t *c, void *arg)
{
    read_list_cancel(arg);
}

static void list_answer(void *owner, void *owner2, int code, const char *msg, const uint8_t *out,
                        size_t len)
{
    h2s_call_t *c = owner2;
    h2s_call_on_close(c, NULL, NULL);
    if (code == GRPC_OK)
        api_reply(owner, c, out, len);
    else
        api_fail(owner, c, code, msg);
}

/* A gRPC List held until the store reaches its resourceVersion. */
struct list_held {
    struct api_route *rt;
    store_t *st;
    rpool_t *pool;
    h2s_call_t *c;
    Coracle__V1__ListRequest *req;
    size_t len;
    struct read_rvwait *w;
};

static void list_go(struct api_route *rt, store_t *st, rpool_t *pool, h2s_call_t *c,
                    Coracle__V1__ListRequest *req, size_t len)
{
    struct lctx *x = read_list_start(st, pool, rt->k, req, len, list_answer, rt, c);
    if (x)
        h2s_call_on_close(c, list_closed, x);
}

static void list_held_gone(h2s_call_t *c, void *arg)
{
    struct list_held *h = arg;
    (void)c;
    read_rv_cancel(h->w);
    obj_free(&h->req->base);
    free(h);
}

static void list_held_end(void *arg, const char *too_large)
{
    struct list_held *h = arg;
    h2s_call_on_close(h->c, NULL, NULL);
    if (too_large) {
        api_fail(h->rt, h->c, READ_RV_TOO_LARGE_CODE, too_large);
        obj_free(&h->req->base);
    } else {
        list_go(h->rt, h->st, h->pool, h->c, h->req, h->len);
    }
    free(h);
}

void read_list(struct api_route *rt, store_t *st, rpool_t *pool, struct event_base *base,
               h2s_call_t *c, const uint8_t *msg, size_t len)
{
    Coracle__V1__ListRequest *req =
        (void *)obj_decode(&coracle__v1__list_request__descriptor, msg, len);
    if (!req) {
        api_fail(rt, c, GRPC_INVALID_ARGUMENT, "failed to decode ListRequest: invalid protobuf");
        return;
    }
    struct list_held *h = xcalloc(1, sizeof(*h));
    *h = (struct list_held){.rt = rt, .st = st, .pool = pool, .c = c, .req = req, .len = len};
    h->w = read_rv_hold(st, base, req->resourceversion, list_held_end, h);
    if (h->w) {
        h2s_call_on_close(c, list_held_gone, h);
        return;
    }
    free(h);
    list_go(rt, st, pool, c, req, len);
}

struct lctx *read_list_start(store_t *st, rpool_t *pool, const struct kind *k,
                             Coracle__V1__ListRequest *req, size_t len, read_list_done_fn done,
                             void *owner, void *owner2)
{
    struct lctx *x = xcalloc(1, sizeof(*x));
    *x = (struct lctx){.k = k, .req = req, .done = done, .owner = owner, .owner2 = owner2};
    x->job.work = list_job_work;
    x->job.done = list_job_done;
    if (req->has_limit && req->limit < 0) {
        char *err = xasprintf(
            "limit: Invalid value: %" PRId64 ": must be greater than or equal to 0", req->limit);
        list_fail(x, GRPC_INVALID_ARGUMENT, err);
        free(err);
        goto finish;
    }
    x->limit = req->has_limit ? req->limit : 0;
    const char *ns = k->namespaced && req->namespace_ && *req->namespace_ ? req->namespace_ : NULL;
    x->prefix_buf = ns ? xasprintf("%s/%s/", k->resource, ns) : xasprintf("%s/", k->resource);
    x->prefix = x->prefix_buf;
    x->plen = strlen(x->prefix);
    uint64_t list_rev = 0;
    if (req->continue_ && *req->continue_) {
        if (read_token_decode(req->continue_, &list_rev, &x->after_buf) < 0 ||
            strncmp(x->after_buf, x->prefix, x->plen)) {
            list_fail(x, GRPC_INVALID_ARGUMENT,
                      "continue key is not valid: the token is malformed or for another list");
            goto finish;
        }
        x->after = x->after_buf;
    }
    int r = store_read_begin(st, &x->t);
    if (r < 0) {
        list_fail(x, GRPC_UNAVAILABLE, store_strerror(r));
        goto finish;
    }
    uint64_t snap = store_rtxn_rev(x->t);
    if (list_rev && list_rev < snap)
        x->log_done = list_rev; /* a continued page: the log from its revision on */
    x->list_rev = !list_rev || list_rev > snap ? snap : list_rev;
    x->compacted = store_compacted(st);
    x->phase = LIST_PARSE;
    if (len <= LIST_INLINE_MAX_REQ) {
        x->job.deadline = mono_ns() + LIST_INLINE_NS;
        list_work(x);
        if (x->phase == LIST_DONE)
            goto finish;
    }
    rpool_submit(pool, &x->job);
    return x;
finish:
    list_finish(x);
    return NULL;
}
