/*
 * store_etcd: etcd3 as the store's durable copy, the LMDB environment as
 * its replica (see store_etcd.h).
 *
 * Loop thread only. State per write (struct eop): the caller's op, the
 * value apply saw (cur, and its mod_revision), the value written, and the
 * revision etcd gave it. Writes on one key queue behind each other
 * (struct kq in `keys`); a committed write, or one that lost a compare,
 * waits in `waiting` (ordered by revision) until the replica has reached
 * that revision: then it is answered, or applied again.
 *
 * The feed: each watch event becomes a replica op carrying its revision
 * (struct fop); its done callback runs after the replica's listener saw
 * the change, and releases the waiting writes up to that revision.
 */
#include "config.h"
#include "store_etcd.h"
#include "enc.h"
#include "etcd.h"
#include "grpc.h"
#include "kinds.h"
#include "kpb.h"
#include "smap.h"
#include "tls.h"
#include "util.h"
#include "wire.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 500
#define COMPACT_KEY "compact_rev_key"
/* under the prefix, of no kind: a write to it marks a point in the watch (see sync_barrier) */
#define BARRIER_NAME "coracle-sync"
#define RESYNC_DELAY_MS 1000
/*
 * History replayed on start, at most: etcd 3.4 feeds a watch that is
 * behind 1,000 revisions per 100 ms, so this bounds a restart to about a
 * second; history then grows up to --compact-keep as the replica runs.
 */
#define START_HISTORY 10000

struct eop;

struct kq {
    struct eop *head, *tail; /* head is the one in flight */
};

struct eop {
    struct setcd *se;
    struct store_op *op;
    struct eop *next_in_key;
    struct eop *next_wait; /* also: the list of writes about to start */
    void *cur;             /* the value apply saw (replica bytes), or NULL */
    size_t cur_len;
    int64_t cur_mod;
    void *raw; /* what apply wrote, resourceVersion unset; NULL for a delete */
    size_t raw_len;
    void *val; /* the envelope sent to etcd */
    size_t val_len;
    int del;
    int64_t rev; /* committed at, or the revision to catch up to before retrying */
    bool retry;  /* waiting to run apply again */
    char *ekey;
    size_t ekey_len;
};

struct fop {
    struct store_op op;
    struct setcd *se;
    struct fop *next; /* in the snapshot being read */
    char *key;
    void *val; /* replica bytes, or NULL to delete / change nothing */
    size_t val_len;
    bool del;
};

struct setcd {
    store_t *st;
    struct event_base *base;
    etcd_t *e;
    char *prefix; /* with a trailing '/' */
    size_t plen;
    uint64_t history;
    etcd_watch_t *w;
    smap_t *keys;
    struct eop *wait_head;
    struct eop *start_head, *start_tail; /* submitted, started from start_ev */
    struct fop *snap_head, *snap_tail;   /* the snapshot being read */
    int64_t fed;                         /* last revision handed to the replica */
    int64_t applied;                     /* last revision the replica holds (its listener saw it) */
    int64_t snap_rev;                    /* the snapshot being loaded */
    char *page_after;                    /* the last key of the previous page */
    size_t page_after_len;
    bool loading, closing;
    bool serving;        /* store_etcd_open has returned */
    bool watch_down;     /* since the watch ended, until the feed hears from etcd again */
    int64_t sync_target; /* etcd's revision when the sync began */
    int sync_err;
    char *sync_msg;
    char unavail[256];
    struct event *start_ev, *resync_ev, *rewatch_ev, *compact_ev;
    int compact_interval_s;
    int64_t compact_version; /* compact_rev_key's version last seen */
    int64_t compact_prev;    /* the revision recorded by the last round */
    const struct enc *enc;   /* encryption at rest, or NULL */
    smap_t *stale;           /* store keys whose etcd value an older key sealed (or none) */
};

/* ---- keys ---- */

/* Kubernetes' etcd path of a resource where it is not the resource's name. */
static const char *etcd_resource(const char *resource)
{
    if (!strcmp(resource, "nodes"))
        return "minions";
    if (!strcmp(resource, "services"))
        return "services/specs";
    return resource;
}

/* The kind whose etcd path p..end starts with (and a '/' after it): *rest is past that '/'. */
static const struct kind *kind_by_etcd_path(const char *p, const char *end, const char **rest)
{
    for (int pass = 0; pass < 2; pass++)
        for (const struct kind *const *k = pass ? kinds_internal : kinds_all; *k; k++) {
            const char *er = etcd_resource((*k)->resource);
            size_t n = strlen(er);
            if ((size_t)(end - p) > n && !memcmp(p, er, n) && p[n] == '/') {
                *rest = p + n + 1;
                return *k;
            }
        }
    return NULL;
}

char *store_etcd_key(const char *prefix, const char *key, size_t key_len, size_t *out_len)
{
    const struct kind *k = kind_by_key(key, key_len);
    const char *s1 = memchr(key, '/', key_len);
    const char *s2 = s1 ? memchr(s1 + 1, '/', key_len - (size_t)(s1 + 1 - key)) : NULL;
    if (!k || !s2)
        return NULL;
    const char *ns = s1 + 1, *name = s2 + 1;
    int nsl = (int)(s2 - ns), namel = (int)(key + key_len - name);
    size_t pl = strlen(prefix);
    const char *sep = pl && prefix[pl - 1] == '/' ? "" : "/";
    char *r = k->namespaced
                  ? xasprintf("%s%s%s/%.*s/%.*s", prefix, sep, etcd_resource(k->resource), nsl, ns,
                              namel, name)
                  : xasprintf("%s%s%s/%.*s", prefix, sep, etcd_resource(k->resource), namel, name);
    *out_len = strlen(r);
    return r;
}

char *store_etcd_local_key(const char *prefix, const void *ekey, size_t ekey_len)
{
    size_t pl = strlen(prefix);
    const char *p = ekey, *end = p + ekey_len;
    if (ekey_len < pl || memcmp(p, prefix, pl))
        return NULL;
    p += pl;
    if (p < end && *p == '/' && (!pl || prefix[pl - 1] != '/'))
        p++;
    const char *rest;
    const struct kind *k = kind_by_etcd_path(p, end, &rest);
    if (!k)
        return NULL;
    const char *s2 = memchr(rest, '/', (size_t)(end - rest));
    if (k->namespaced != (s2 != NULL) || (s2 && memchr(s2 + 1, '/', (size_t)(end - s2 - 1))) ||
        memchr(rest, 0, (size_t)(end - rest)) || rest == end)
        return NULL;
    if (k->namespaced)
        return xasprintf("%s/%.*s", k->resource, (int)(end - rest), rest);
    return xasprintf("%s//%.*s", k->resource, (int)(end - rest), rest);
}

/* ---- values ---- */

/* metadata.resourceVersion of replica bytes, 0 if absent. */
static int64_t bytes_rv(const void *b, size_t len)
{
    return (int64_t)wire_get_rv(b, len);
}

/* The replica bytes of an etcd value at revision rev: the envelope's raw, with the revision. */
static void *unwrap(const uint8_t *v, size_t len, int64_t rev, size_t *out_len)
{
    const uint8_t *raw;
    size_t rl;
    if (len < 4 || memcmp(v, "k8s\0", 4) || wire_find(v + 4, len - 4, 2, &raw, &rl) != 1)
        return NULL;
    return wire_set_rv(raw, rl, (uint64_t)rev, out_len);
}

/*
 * The replica bytes of etcd value kv of store key key: opened if its
 * resource is encrypted, then unwrapped. NULL if it is no Kubernetes
 * object. One that does not decrypt (a key this apiserver lacks) comes
 * back as it is, *flags marked STORE_OP_SEALED: the replica keeps it so
 * that reads of it fail, as kube-apiserver's do, instead of finding nothing.
 */
static void *replica_value(struct setcd *se, const char *key, const struct etcd_kv *kv,
                           size_t *out_len, int *flags)
{
    const enc_rule_t *r = enc_rule_for_key(se->enc, key, strlen(key));
    const uint8_t *v = kv->value;
    size_t len = kv->value_len;
    void *plain = NULL;
    if (!r && len >= 8 && !memcmp(v, "k8s:enc:", 8)) {
        log_err("store: etcd key %.*s at revision %" PRId64 ": encrypted, but the encryption "
                "config does not name its resource",
                (int)kv->key_len, (const char *)kv->key, kv->mod_revision);
        *flags |= STORE_OP_SEALED;
        *out_len = len;
        return xmemdup(v, len);
    }
    if (r) {
        char *err = NULL;
        size_t pl;
        int stale = 0;
        if (enc_open(r, kv->key, kv->key_len, v, len, &plain, &pl, &stale, &err)) {
            log_err("store: etcd key %.*s at revision %" PRId64 ": %s", (int)kv->key_len,
                    (const char *)kv->key, kv->mod_revision, err);
            free(err);
            *flags |= STORE_OP_SEALED;
            *out_len = len;
            return xmemdup(v, len);
        }
        if (plain) {
            v = plain;
            len = pl;
        }
        if (stale)
            smap_put(se->stale, key, se);
        else
            smap_del(se->stale, key);
    }
    void *out = unwrap(v, len, kv->mod_revision, out_len);
    free(plain);
    return out;
}

/* ---- writes ---- */

static void eop_start(struct eop *x);

static void eop_free(struct eop *x)
{
    free(x->cur);
    free(x->raw);
    free(x->val);
    free(x->ekey);
    free(x);
}

/* Answers x's op, frees x, starts the next write on its key. */
static void eop_finish(struct eop *x, int err, const struct store_change *ch)
{
    struct setcd *se = x->se;
    struct store_op *op = x->op;
    char *key = xstrndup(op->key, op->key_len);
    /* ch may point into x; done may queue another write on the key behind x */
    op->done(op, err, ch);
    struct kq *q = smap_get(se->keys, key);
    struct eop *next = x->next_in_key;
    eop_free(x);
    if (next && !se->closing) {
        q->head = next;
        eop_start(next);
    } else if (q) {
        smap_del(se->keys, key);
        free(q);
    }
    free(key);
}

static void eop_committed(struct eop *x)
{
    size_t vl = 0;
    void *val = x->del ? NULL : wire_set_rv(x->raw, x->raw_len, (uint64_t)x->rev, &vl);
    struct store_change ch = {
        .rev = (uint64_t)x->rev,
        .type = x->del   ? STORE_DELETE
                : x->cur ? STORE_PUT_MOD
                         : STORE_PUT_NEW,
        .key = x->op->key,
        .key_len = x->op->key_len,
        .val = val,
        .val_len = vl,
        .prev = x->cur,
        .prev_len = x->cur_len,
    };
    eop_finish(x, 0, &ch);
    free(val);
}

/* Writes waiting for the replica: answered or retried once it reached their revision. */
static void wait_add(struct setcd *se, struct eop *x)
{
    struct eop **pp = &se->wait_head;
    while (*pp && (*pp)->rev <= x->rev)
        pp = &(*pp)->next_wait;
    x->next_wait = *pp;
    *pp = x;
}

/* have: the replica holds every change up to it, and the listener saw them. */
static void wait_release(struct setcd *se, int64_t have)
{
    while (se->wait_head && se->wait_head->rev <= have) {
        struct eop *x = se->wait_head;
        se->wait_head = x->next_wait;
        if (x->retry)
            eop_start(x);
        else
            eop_committed(x);
    }
}

static int unavail(struct setcd *se, const char *msg)
{
    snprintf(se->unavail, sizeof(se->unavail), "%s%s", strncmp(msg, "etcd", 4) ? "etcd: " : "",
             msg);
    return STORE_EUNAVAIL;
}

static void txn_done(void *arg, int err, const char *msg, const struct etcd_txn_resp *r)
{
    struct eop *x = arg;
    struct setcd *se = x->se;
    if (err) {
        log_warn("store: etcd txn on %.*s: %s", (int)x->ekey_len, x->ekey, msg);
        eop_finish(x,
                   err == GRPC_UNAVAILABLE || err == GRPC_DEADLINE_EXCEEDED ? unavail(se, msg)
                                                                            : STORE_EIO,
                   NULL);
        return;
    }
    if (r->succeeded) {
        x->rev = r->revision;
    } else {
        const struct etcd_kv *kv = r->n_resps && r->resps[0].n_kvs ? &r->resps[0].kvs[0] : NULL;
        bool ours = r->retried && (x->del ? !kv
                                          : kv && kv->value_len == x->val_len &&
                                                !memcmp(kv->value, x->val, x->val_len));
        if (ours) {
            /* the first attempt went through before its connection broke */
            x->rev = kv ? kv->mod_revision : r->revision;
        } else {
            /* another writer got there first: catch up, then decide again */
            x->rev = kv ? kv->mod_revision : r->revision;
            x->retry = true;
        }
    }
    if (se->applied >= x->rev) {
        if (x->retry)
            eop_start(x);
        else
            eop_committed(x);
    } else {
        wait_add(se, x);
    }
}

static bool stale_key(struct setcd *se, const struct store_op *op)
{
    char *key = xstrndup(op->key, op->key_len);
    bool stale = smap_get(se->stale, key) != NULL;
    free(key);
    return stale;
}

/* x's envelope sealed in place if its resource is encrypted. 0 or -1 (logged). */
static int seal_put(struct setcd *se, struct eop *x)
{
    const enc_rule_t *r = enc_rule_for_key(se->enc, x->op->key, x->op->key_len);
    void *sealed;
    size_t sl;
    char *err = NULL;
    if (!r)
        return 0;
    if (enc_seal(r, x->ekey, x->ekey_len, x->val, x->val_len, &sealed, &sl, &err)) {
        log_err("store: etcd key %.*s: %s", (int)x->ekey_len, x->ekey, err);
        free(err);
        return -1;
    }
    if (sealed) {
        free(x->val);
        x->val = sealed;
        x->val_len = sl;
    }
    return 0;
}

static void eop_start(struct eop *x)
{
    struct setcd *se = x->se;
    struct store_op *op = x->op;
    x->retry = false;
    free(x->cur);
    free(x->raw);
    free(x->val);
    x->cur = x->raw = x->val = NULL;
    x->cur_len = x->raw_len = x->val_len = 0;
    x->cur_mod = 0;
    x->del = 0;

    store_rtxn_t *t;
    int rc = store_read_begin(se->st, &t);
    if (rc) {
        eop_finish(x, rc, NULL);
        return;
    }
    const void *cur;
    size_t cur_len;
    rc = store_get(t, op->key, op->key_len, &cur, &cur_len);
    if (rc == 0) {
        x->cur = xmemdup(cur, cur_len);
        x->cur_len = cur_len;
        x->cur_mod = bytes_rv(cur, cur_len);
    } else if (rc != STORE_ENOTFOUND) {
        /* a value that does not decrypt: no write may decide on it */
        store_read_end(t);
        eop_finish(x, rc, NULL);
        return;
    }
    uint64_t next = store_rtxn_rev(t) + 1;
    store_read_end(t);

    void *out = NULL;
    size_t out_len = 0;
    int del = 0;
    int err = op->apply(op, x->cur, x->cur_len, next, &out, &out_len, &del);
    if (!err && !out && !del && x->cur && stale_key(se, op)) {
        /* unchanged, but sealed by an older key: written again under the first (rotation) */
        out = xmemdup(x->cur, x->cur_len);
        out_len = x->cur_len;
    }
    if (err || (!out && !del) || (del && !x->cur)) {
        free(out);
        eop_finish(x, err ? err : del ? STORE_ENOTFOUND : 0, NULL);
        return;
    }
    const struct kind *k = kind_by_key(op->key, op->key_len);
    struct etcd_op put = {.key = x->ekey, .key_len = x->ekey_len};
    if (del) {
        free(out);
        x->del = 1;
        put.type = ETCD_OP_DELETE;
    } else {
        x->raw = wire_set_rv(out, out_len, 0, &x->raw_len);
        free(out);
        if (!x->raw) {
            eop_finish(x, STORE_EIO, NULL);
            return;
        }
        x->val_len = kpb_envelope_len(k->api_version, k->kind, x->raw_len);
        x->val = xmalloc(x->val_len);
        kpb_envelope_put(x->val, k->api_version, k->kind, x->raw, x->raw_len);
        if (seal_put(se, x)) {
            eop_finish(x, STORE_ETRANSFORM, NULL);
            return;
        }
        put.type = ETCD_OP_PUT;
        put.value = x->val;
        put.value_len = x->val_len;
    }
    struct etcd_cmp cmp = {.key = x->ekey, .key_len = x->ekey_len};
    if (x->cur) {
        cmp.target = ETCD_CMP_MOD;
        cmp.number = x->cur_mod;
    } else {
        cmp.target = ETCD_CMP_CREATE;
        cmp.number = 0;
    }
    struct etcd_op get = {.type = ETCD_OP_RANGE, .key = x->ekey, .key_len = x->ekey_len};
    struct etcd_txn_req req = {&cmp, 1, &put, &get, 1, 1};
    etcd_txn(se->e, &req, txn_done, x);
}

static int se_submit(void *impl, struct store_op *op)
{
    struct setcd *se = impl;
    if (se->closing)
        return STORE_ECLOSED;
    struct eop *x = xcalloc(1, sizeof(*x));
    x->se = se;
    x->op = op;
    op->flags |= STORE_OP_RERUN;
    x->ekey = store_etcd_key(se->prefix, op->key, op->key_len, &x->ekey_len);
    char *key = xstrndup(op->key, op->key_len);
    if (!x->ekey) {
        log_err("store: key \"%s\" has no etcd path", key);
        free(key);
        free(x);
        return STORE_EIO; /* as a key LMDB refuses */
    }
    struct kq *q = smap_get(se->keys, key);
    if (q) {
        q->tail->next_in_key = x;
        q->tail = x;
        free(key);
        return 0;
    }
    q = xcalloc(1, sizeof(*q));
    q->head = q->tail = x;
    smap_put(se->keys, key, q);
    free(key);
    /* started from the loop, never inside store_submit: callers expect done later */
    if (se->start_tail)
        se->start_tail->next_wait = x;
    else
        se->start_head = x;
    se->start_tail = x;
    event_active(se->start_ev, EV_TIMEOUT, 0);
    return 0;
}

static void start_cb(evutil_socket_t fd, short what, void *arg)
{
    struct setcd *se = arg;
    (void)fd;
    (void)what;
    struct eop *x = se->start_head;
    se->start_head = se->start_tail = NULL;
    while (x) {
        struct eop *next = x->next_wait;
        x->next_wait = NULL;
        eop_start(x);
        x = next;
    }
}

/* The replica follows etcd only while its watch runs. */
static const char *se_unhealthy(void *impl)
{
    struct setcd *se = impl;
    if (se->loading)
        return "etcd: the replica is being rebuilt";
    if (!se->w || se->watch_down)
        return se->unavail[0] ? se->unavail : "etcd: the watch is not running";
    return NULL;
}

static const char *se_unavail_reason(void *impl)
{
    struct setcd *se = impl;
    return se->unavail;
}

/* ---- the feed ---- */

static int fop_apply(struct store_op *op, const void *cur, size_t cur_len, uint64_t rev, void **out,
                     size_t *out_len, int *del)
{
    struct fop *f = (struct fop *)op;
    (void)cur;
    (void)cur_len;
    (void)rev;
    if (f->del) {
        *del = cur != NULL;
    } else if (f->val) {
        *out = f->val;
        *out_len = f->val_len;
        f->val = NULL;
    }
    return 0;
}

static void fop_done(struct store_op *op, int err, const struct store_change *ch)
{
    struct fop *f = (struct fop *)op;
    struct setcd *se = f->se;
    (void)ch;
    int64_t rev = (int64_t)f->op.rev;
    if (err && err != STORE_ENOTFOUND)
        log_err("store: replica: revision %" PRId64 ": %s", rev, store_strerror(err));
    /* the batch's listener calls are done (store_rev() moves after its last done) */
    if ((f->op.flags & STORE_OP_RESET) || rev > se->applied)
        se->applied = rev;
    free(f->val);
    free(f->key);
    free(f);
    if (!se->closing)
        wait_release(se, se->applied);
}

static struct fop *fop_new(struct setcd *se, const char *key, int64_t rev, int flags, void *val,
                           size_t val_len, bool del)
{
    struct fop *f = xcalloc(1, sizeof(*f));
    f->se = se;
    f->key = xstrdup(key);
    f->val = val;
    f->val_len = val_len;
    f->del = del;
    f->op.key = f->key;
    f->op.key_len = strlen(f->key);
    f->op.apply = fop_apply;
    f->op.done = fop_done;
    f->op.rev = (uint64_t)rev;
    f->op.flags = flags;
    return f;
}

static void fop_submit(struct setcd *se, struct fop *f)
{
    if (store_submit_local(se->st, &f->op)) {
        free(f->val);
        free(f->key);
        free(f);
    }
}

static void feed(struct setcd *se, const char *key, int64_t rev, int flags, void *val,
                 size_t val_len, bool del)
{
    fop_submit(se, fop_new(se, key, rev, flags, val, val_len, del));
}

/*
 * The snapshot's ops are kept until its last page is in, then queued
 * together, the last one marked: the replica takes them in one
 * transaction, so no reader sees it emptied or half loaded.
 */
static void snap_add(struct setcd *se, struct fop *f)
{
    if (se->snap_tail)
        se->snap_tail->next = f;
    else
        se->snap_head = f;
    se->snap_tail = f;
}

static void snap_submit(struct setcd *se)
{
    if (!se->snap_tail)
        return;
    se->snap_tail->op.flags |= STORE_OP_SNAP_END;
    struct fop *f = se->snap_head;
    se->snap_head = se->snap_tail = NULL;
    while (f) {
        struct fop *next = f->next;
        fop_submit(se, f);
        f = next;
    }
}

static void snap_drop(struct setcd *se)
{
    for (struct fop *f = se->snap_head, *next; f; f = next) {
        next = f->next;
        free(f->val);
        free(f->key);
        free(f);
    }
    se->snap_head = se->snap_tail = NULL;
}

static void watch_start(struct setcd *se);
static void sync_begin(struct setcd *se);
static void sync_barrier(struct setcd *se, etcd_txn_fn cb);

static void on_events(void *arg, int64_t revision, const struct etcd_event *ev, size_t n)
{
    struct setcd *se = arg;
    se->watch_down = false;
    if (n == 0) {
        /* progress: everything up to revision has been sent */
        if (revision > se->fed) {
            feed(se, "~progress", revision, 0, NULL, 0, false);
            se->fed = revision;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct etcd_kv *kv = &ev[i].kv;
        int64_t rev = kv->mod_revision;
        char *key = store_etcd_local_key(se->prefix, kv->key, kv->key_len);
        if (!key) {
            /* not one of coracle's kinds; the barrier still moves the replica */
            if (kv->key_len == se->plen + strlen(BARRIER_NAME) &&
                !memcmp(kv->key + se->plen, BARRIER_NAME, strlen(BARRIER_NAME)) && rev > se->fed) {
                feed(se, "~progress", rev, 0, NULL, 0, false);
                se->fed = rev;
            }
            continue;
        }
        /* a revision is one change in the log; more keys of one etcd txn go in unlogged */
        int flags = rev <= se->fed ? STORE_OP_NOLOG : 0;
        if (ev[i].type == ETCD_EV_DELETE) {
            smap_del(se->stale, key);
            feed(se, key, rev, flags, NULL, 0, true);
        } else {
            size_t vl;
            void *v = replica_value(se, key, kv, &vl, &flags);
            if (!v)
                log_err("store: etcd key %.*s at revision %" PRId64
                        ": not a Kubernetes protobuf object; ignored",
                        (int)kv->key_len, (const char *)kv->key, rev);
            feed(se, key, rev, flags, v, vl, false);
        }
        if (rev > se->fed)
            se->fed = rev;
        free(key);
    }
}

static void resync_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sync_begin(arg);
}

static void barrier_done(void *arg, int err, const char *msg, const struct etcd_txn_resp *r)
{
    (void)arg;
    (void)r;
    if (err)
        log_warn("store: etcd barrier: %s", msg);
}

/* The watch again, and a barrier whose event says it is back (for /readyz). */
static void rewatch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct setcd *se = arg;
    (void)fd;
    (void)what;
    watch_start(se);
    sync_barrier(se, barrier_done);
}

static void on_watch_end(void *arg, int err, const char *msg, int64_t compact_revision)
{
    struct setcd *se = arg;
    se->w = NULL;
    if (se->closing)
        return;
    se->watch_down = true;
    struct timeval tv = {RESYNC_DELAY_MS / 1000, (RESYNC_DELAY_MS % 1000) * 1000};
    if (err == GRPC_OUT_OF_RANGE) {
        log_warn("store: etcd compacted revision %" PRId64 " before the replica read it: "
                 "rebuilding the replica",
                 compact_revision);
        event_active(se->resync_ev, EV_TIMEOUT, 0);
        return;
    }
    log_warn("store: etcd watch ended: %s; resuming from revision %" PRId64, msg, se->fed + 1);
    unavail(se, msg);
    event_add(se->rewatch_ev, &tv);
}

static void watch_start(struct setcd *se)
{
    uint8_t end[512];
    size_t el = etcd_prefix_end(se->prefix, se->plen, end);
    struct etcd_watch_opts wo = {
        .key = se->prefix,
        .key_len = se->plen,
        .range_end = end,
        .range_end_len = el ? el : 1,
        .start_revision = se->fed + 1,
        .progress_notify = true,
    };
    static const struct etcd_watch_cbs cbs = {on_events, on_watch_end};
    se->w = etcd_watch(se->e, &wo, &cbs, se);
}

/* ---- the snapshot ---- */

static void page_done(void *arg, int err, const char *msg, const struct etcd_range_resp *r);

static void page_next(struct setcd *se)
{
    etcd_range_page(se->e, se->prefix, se->plen, se->page_after, se->page_after_len, se->snap_rev,
                    PAGE, page_done, se);
}

static void sync_fail(struct setcd *se, int err, const char *msg)
{
    snap_drop(se);
    se->sync_err = err ? err : GRPC_UNKNOWN;
    free(se->sync_msg);
    se->sync_msg = xstrdup(msg);
    if (!se->serving) {
        se->loading = false; /* store_etcd_open gives up */
        return;
    }
    /* a rebuild while serving: try again (still loading: /readyz says so) */
    log_warn("store: rebuilding the replica from etcd: %s; trying again", msg);
    unavail(se, msg);
    struct timeval tv = {RESYNC_DELAY_MS / 1000, (RESYNC_DELAY_MS % 1000) * 1000};
    event_add(se->resync_ev, &tv);
}

/*
 * compact_rev_key holds the revision the next compaction goes to: etcd
 * still has it (the last compaction went to an older one). Without a
 * record, the snapshot starts at the newest revision: no history.
 */
static void compact_rec_done(void *arg, int err, const char *msg, const struct etcd_range_resp *r)
{
    struct setcd *se = arg;
    (void)msg;
    if (se->closing)
        return;
    int64_t v = 0;
    if (!err && r->n_kvs && r->kvs[0].value_len < 20) {
        char b[24];
        memcpy(b, r->kvs[0].value, r->kvs[0].value_len);
        b[r->kvs[0].value_len] = 0;
        v = strtoll(b, NULL, 10);
    }
    se->snap_rev = v > se->snap_rev && v <= se->sync_target ? v : se->sync_target;
    page_next(se);
}

static void page_done(void *arg, int err, const char *msg, const struct etcd_range_resp *r)
{
    struct setcd *se = arg;
    if (se->closing)
        return;
    if (err == GRPC_OUT_OF_RANGE && se->snap_rev != se->sync_target && !se->page_after) {
        /* that far back is compacted: start where the compactor's record says history is */
        struct etcd_range_req rq = {.key = COMPACT_KEY, .key_len = strlen(COMPACT_KEY)};
        etcd_range(se->e, &rq, compact_rec_done, se);
        return;
    }
    if (err) {
        sync_fail(se, err, msg);
        return;
    }
    if (!se->page_after) {
        snap_drop(se);
        smap_clear(se->stale, NULL);
        snap_add(se, fop_new(se, "~reset", se->snap_rev, STORE_OP_RESET | STORE_OP_NOLOG, NULL, 0,
                             false));
    }
    for (size_t i = 0; i < r->n_kvs; i++) {
        const struct etcd_kv *kv = &r->kvs[i];
        char *key = store_etcd_local_key(se->prefix, kv->key, kv->key_len);
        if (!key)
            continue;
        size_t vl;
        int flags = STORE_OP_NOLOG;
        void *v = replica_value(se, key, kv, &vl, &flags);
        if (v)
            snap_add(se, fop_new(se, key, se->snap_rev, flags, v, vl, false));
        else
            log_err("store: etcd key %.*s: not a Kubernetes protobuf object; ignored",
                    (int)kv->key_len, (const char *)kv->key);
        free(key);
    }
    if (r->more && r->n_kvs) {
        free(se->page_after);
        se->page_after_len = r->kvs[r->n_kvs - 1].key_len;
        se->page_after = xmemdup(r->kvs[r->n_kvs - 1].key, se->page_after_len);
        page_next(se);
        return;
    }
    free(se->page_after);
    se->page_after = NULL;
    snap_submit(se);
    se->fed = se->snap_rev;
    se->loading = false;
    log_info("store: replica loaded from etcd at revision %" PRId64 "; watching from %" PRId64,
             se->snap_rev, se->snap_rev + 1);
    watch_start(se);
}

static void head_done(void *arg, int err, const char *msg, const struct etcd_txn_resp *r)
{
    struct setcd *se = arg;
    if (se->closing)
        return;
    if (err) {
        sync_fail(se, err, msg);
        return;
    }
    se->sync_target = r->revision;
    se->snap_rev = r->revision > (int64_t)se->history ? r->revision - (int64_t)se->history : 1;
    if (se->snap_rev > r->revision)
        se->snap_rev = r->revision;
    page_next(se);
}

/*
 * A write to the barrier key: the watch delivers it after every change
 * before it, so once the replica holds its revision it has all of them.
 * (etcd 3.4 answers a progress request with its current revision even
 * while the watch is still replaying older events: no use as a barrier.)
 */
static void sync_barrier(struct setcd *se, etcd_txn_fn cb)
{
    size_t kl = se->plen + strlen(BARRIER_NAME);
    char *key = xconcat(se->prefix, BARRIER_NAME, NULL);
    struct etcd_op put = {
        .type = ETCD_OP_PUT, .key = key, .key_len = kl, .value = "", .value_len = 0};
    struct etcd_txn_req req = {NULL, 0, &put, NULL, 1, 0};
    etcd_txn(se->e, &req, cb, se);
    free(key);
}

/* Rebuilds the replica: etcd's revision now (a barrier), then a snapshot history revisions back. */
static void sync_begin(struct setcd *se)
{
    if (se->w) {
        etcd_watch_cancel(se->w);
        se->w = NULL;
    }
    se->loading = true;
    se->sync_err = 0;
    free(se->page_after);
    se->page_after = NULL;
    sync_barrier(se, head_done);
}

/* ---- compaction ---- */

static void compact_done(void *arg, int err, const char *msg, int64_t revision)
{
    (void)arg;
    (void)revision;
    if (err && err != GRPC_OUT_OF_RANGE)
        log_warn("store: etcd compaction: %s", msg);
}

static void compact_txn_done(void *arg, int err, const char *msg, const struct etcd_txn_resp *r)
{
    struct setcd *se = arg;
    if (se->closing)
        return;
    if (err) {
        log_warn("store: etcd compaction round: %s", msg);
        return;
    }
    if (!r->succeeded) {
        /* another apiserver ran this round: follow its record */
        const struct etcd_kv *kv = r->n_resps && r->resps[0].n_kvs ? &r->resps[0].kvs[0] : NULL;
        se->compact_version = kv ? kv->version : 0;
        se->compact_prev = 0;
        return;
    }
    se->compact_version++;
    int64_t target = se->compact_prev;
    se->compact_prev = r->revision;
    if (target > 0) {
        log_info("store: compacting etcd at revision %" PRId64, target);
        etcd_compact(se->e, target, false, compact_done, se);
    }
}

/*
 * One round: compare-and-set compact_rev_key's version; the apiserver that
 * wins records the current revision and compacts to the one recorded a
 * round ago, so at least one interval of history always stays.
 */
static void compact_cb(evutil_socket_t fd, short what, void *arg)
{
    struct setcd *se = arg;
    (void)fd;
    (void)what;
    char rev[24];
    int rl = snprintf(rev, sizeof(rev), "%" PRId64, se->fed);
    struct etcd_cmp cmp = {.key = COMPACT_KEY,
                           .key_len = strlen(COMPACT_KEY),
                           .target = ETCD_CMP_VERSION,
                           .number = se->compact_version};
    struct etcd_op put = {.type = ETCD_OP_PUT,
                          .key = COMPACT_KEY,
                          .key_len = strlen(COMPACT_KEY),
                          .value = rev,
                          .value_len = (size_t)rl};
    struct etcd_op get = {
        .type = ETCD_OP_RANGE, .key = COMPACT_KEY, .key_len = strlen(COMPACT_KEY)};
    struct etcd_txn_req req = {&cmp, 1, &put, &get, 1, 1};
    etcd_txn(se->e, &req, compact_txn_done, se);
}

/* ---- open / close ---- */

static int finish_closed(const char *key, void *val, void *arg)
{
    struct kq *q = val;
    (void)key;
    (void)arg;
    for (struct eop *x = q->head, *next; x; x = next) {
        next = x->next_in_key;
        struct store_op *op = x->op;
        eop_free(x);
        op->done(op, STORE_ECLOSED, NULL);
    }
    return 0;
}

/* Stops: the watch, etcd (no callback runs after), and answers every write "closed". */
static void se_close(void *impl)
{
    struct setcd *se = impl;
    se->closing = true;
    if (se->w)
        etcd_watch_cancel(se->w);
    se->w = NULL;
    etcd_free(se->e);
    se->e = NULL;
    se->wait_head = se->start_head = se->start_tail = NULL;
    smap_each(se->keys, finish_closed, NULL);
    smap_free(se->keys, free);
    smap_free(se->stale, NULL);
    se->keys = NULL;
    event_free(se->start_ev);
    event_free(se->resync_ev);
    event_free(se->rewatch_ev);
    if (se->compact_ev)
        event_free(se->compact_ev);
}

/* After the replica's last op is done. */
static void se_free(void *impl)
{
    struct setcd *se = impl;
    snap_drop(se);
    free(se->prefix);
    free(se->page_after);
    free(se->sync_msg);
    free(se);
}

int store_etcd_open(store_t *replica, struct event_base *base, const struct store_etcd_opts *o,
                    char **err)
{
    *err = NULL;
    SSL_CTX *tls = NULL;
    if (o->cafile || o->certfile || o->keyfile) {
        tls = tls_client_ctx(o->cafile, o->certfile, o->keyfile, err);
        if (!tls)
            return -1;
    }
    struct etcd_opts eo = {.endpoints = o->servers, .n_endpoints = o->n_servers, .tls = tls};
    etcd_t *e = etcd_new(base, &eo, err);
    if (tls)
        SSL_CTX_free(tls);
    if (!e)
        return -1;
    struct setcd *se = xcalloc(1, sizeof(*se));
    se->st = replica;
    se->base = base;
    se->e = e;
    const char *p = o->prefix && *o->prefix ? o->prefix : "/registry";
    se->prefix = p[strlen(p) - 1] == '/' ? xstrdup(p) : xconcat(p, "/", NULL);
    se->plen = strlen(se->prefix);
    se->history = o->history < START_HISTORY ? o->history : START_HISTORY;
    se->keys = smap_new();
    se->stale = smap_new();
    se->start_ev = event_new(base, -1, 0, start_cb, se);
    se->resync_ev = event_new(base, -1, 0, resync_cb, se);
    se->rewatch_ev = event_new(base, -1, 0, rewatch_cb, se);
    se->compact_interval_s = o->compaction_interval_s;
    se->enc = o->enc;

    struct store_remote r = {se_submit, se_close, se_free, se_unavail_reason, se_unhealthy, se};
    store_set_remote(replica, &r);

    int64_t deadline =
        mono_ns() + (int64_t)(o->start_timeout_ms > 0 ? o->start_timeout_ms : 60000) * 1000000;
    sync_begin(se);
    while ((se->loading || se->applied < se->sync_target) && !se->sync_err && mono_ns() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    if (se->sync_err || se->applied < se->sync_target) {
        *err = xasprintf("cannot read the store from etcd (%s): %s", etcd_endpoint(se->e),
                         se->sync_err ? se->sync_msg : "timed out");
        return -1;
    }
    se->serving = true;
    if (se->compact_interval_s > 0) {
        se->compact_ev = event_new(base, -1, EV_PERSIST, compact_cb, se);
        struct timeval tv = {se->compact_interval_s, 0};
        event_add(se->compact_ev, &tv);
    }
    log_info("store: etcd at revision %" PRIu64 " (prefix %s)", store_rev(replica), se->prefix);
    return 0;
}
