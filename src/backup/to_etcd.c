/*
 * to_etcd: coracle-backup --to-etcd. Every object of an LMDB store (a data
 * directory, the apiserver may be running on it, or a backup file) read in
 * one read transaction and written to etcd as an apiserver on
 * --storage-backend etcd3 writes it: the key store_etcd_key() gives, the
 * protobuf envelope around the stored bytes with resourceVersion left out.
 * So uid, creationTimestamp, labels, status and managedFields stay byte for
 * byte; resourceVersion becomes etcd's mod_revision.
 *
 * Writes only create: a Txn comparing each key's create_revision with 0.
 * Objects go BATCH_OPS to a Txn (etcd's default --max-txn-ops), under
 * BATCH_BYTES (its --max-request-bytes is 1.5 MiB), INFLIGHT Txns at a
 * time. A Txn whose compare fails (some key exists) is sent again one
 * object a Txn, so each object that exists is found and reported; one
 * that holds exactly these bytes already (a run repeated, or a Txn retried
 * after its connection broke) counts as there. With overwrite the puts go
 * without compares and prev_kv says what was replaced.
 */
#include "config.h"

#include "backup.h"
#include "grpc.h"
#include "kpb.h"
#include "store_etcd.h"
#include "store_meta.h"
#include "util.h"
#include "wire.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_OPS 128
#define BATCH_BYTES (1u << 20)
#define INFLIGHT 4

/* One object on its way to etcd. */
struct xobj {
    const struct kind *k;
    char *name; /* for messages: "pods/default/web" */
    char *ekey;
    size_t ekey_len;
    void *val; /* the envelope (sealed, with encryption at rest) */
    size_t val_len;
    void *plain; /* the envelope before it was sealed, else NULL */
    size_t plain_len;
};

struct export;

struct xbatch {
    struct export *x;
    struct xobj *objs;
    size_t n;
    size_t singles; /* one-object Txns still out, after the batch's compare failed */
};

struct xsingle {
    struct xbatch *b;
    struct xobj *o;
};

struct export
{
    etcd_t *e;
    const char *prefix;
    const struct enc *enc;
    bool overwrite;
    MDB_txn *txn;
    MDB_dbi objs;
    MDB_cursor *cur;
    MDB_cursor_op next; /* MDB_FIRST, then MDB_NEXT */
    bool eof, stop;
    struct xobj pending; /* read, not in the last batch: it would not fit */
    bool has_pending;
    int inflight;
    struct bk_tally copied;
    size_t replaced, same, exist, failed;
    int64_t rev; /* etcd's revision after our last write */
};

static void fill(struct export *x);

static void xobj_clear(struct xobj *o)
{
    free(o->name);
    free(o->ekey);
    free(o->val);
    free(o->plain);
}

static void note_rev(struct export *x, int64_t rev)
{
    if (rev > x->rev)
        x->rev = rev;
}

static bool is_unavailable(int err)
{
    return err == GRPC_UNAVAILABLE || err == GRPC_DEADLINE_EXCEEDED;
}

/* The stored bytes of the object at key as etcd keeps them; 0, or -1 having reported why not. */
static int xobj_make(struct export *x, const MDB_val *k, const MDB_val *v, struct xobj *o)
{
    memset(o, 0, sizeof(*o));
    o->name = bk_obj_name(k->mv_data, k->mv_size);
    o->k = kind_by_key(k->mv_data, k->mv_size);
    if (o->k)
        o->ekey = store_etcd_key(x->prefix, k->mv_data, k->mv_size, &o->ekey_len);
    size_t raw_len, pl;
    const void *plain;
    void *owned = NULL, *raw = NULL;
    char *why = NULL;
    if (o->ekey && bk_value_open(x->enc, k->mv_data, k->mv_size, k->mv_data, k->mv_size, v->mv_data,
                                 v->mv_size, &plain, &pl, &owned, &why) == 0)
        raw = wire_set_rv(plain, pl, 0, &raw_len);
    free(owned);
    if (!raw) {
        fprintf(stderr, "coracle-backup: %s: %s; not copied\n", o->name,
                why       ? why
                : o->ekey ? "the stored object is not valid protobuf"
                          : "not a key of a kind coracle knows");
        free(why);
        x->failed++;
        xobj_clear(o);
        return -1;
    }
    o->val_len = kpb_envelope_len(o->k->api_version, o->k->kind, raw_len);
    o->val = xmalloc(o->val_len);
    kpb_envelope_put(o->val, o->k->api_version, o->k->kind, raw, raw_len);
    free(raw);
    void *sealed;
    size_t sl;
    if (bk_value_seal(x->enc, k->mv_data, k->mv_size, o->ekey, o->ekey_len, o->val, o->val_len,
                      &sealed, &sl, &why)) {
        fprintf(stderr, "coracle-backup: %s: %s; not copied\n", o->name, why);
        free(why);
        x->failed++;
        xobj_clear(o);
        return -1;
    }
    if (sealed) {
        o->plain = o->val;
        o->plain_len = o->val_len;
        o->val = sealed;
        o->val_len = sl;
    }
    return 0;
}

/* The next object of the snapshot into *o; false at the end or on a read error (reported). */
static bool next_obj(struct export *x, struct xobj *o)
{
    MDB_val k, v;
    while (!x->eof) {
        int rc = mdb_cursor_get(x->cur, &k, &v, x->next);
        x->next = MDB_NEXT;
        if (rc) {
            if (rc != MDB_NOTFOUND) {
                fprintf(stderr, "coracle-backup: reading the store: %s\n", mdb_strerror(rc));
                x->failed++;
                x->stop = true;
            }
            x->eof = true;
            break;
        }
        if (xobj_make(x, &k, &v, o) == 0)
            return true;
    }
    return false;
}

/* kv (may be NULL) holds exactly o's bytes (sealed ones: once opened, with a nonce of their own).
 */
static bool holds(const struct export *x, const struct etcd_kv *kv, const struct xobj *o)
{
    if (!kv)
        return false;
    if (kv->value_len == o->val_len && !memcmp(kv->value, o->val, o->val_len))
        return true;
    if (!o->plain)
        return false;
    const void *p;
    size_t pl;
    void *owned;
    char *why = NULL;
    /* o->name begins with the resource, as a store key does: enough to find the rule */
    bool same = bk_value_open(x->enc, o->name, strlen(o->name), o->ekey, o->ekey_len, kv->value,
                              kv->value_len, &p, &pl, &owned, &why) == 0 &&
                pl == o->plain_len && !memcmp(p, o->plain, pl);
    free(owned);
    free(why);
    return same;
}

static void report_failed(struct export *x, const struct xobj *o, int err, const char *msg)
{
    fprintf(stderr, "coracle-backup: %s: writing %.*s to etcd: %s\n", o->name, (int)o->ekey_len,
            o->ekey, msg);
    x->failed++;
    if (is_unavailable(err))
        x->stop = true;
}

static void batch_end(struct xbatch *b)
{
    struct export *x = b->x;
    for (size_t i = 0; i < b->n; i++)
        xobj_clear(&b->objs[i]);
    free(b->objs);
    free(b);
    x->inflight--;
    fill(x);
}

static void single_done(void *arg, int err, const char *msg, const struct etcd_txn_resp *r)
{
    struct xsingle *s = arg;
    struct xbatch *b = s->b;
    struct export *x = b->x;
    struct xobj *o = s->o;
    free(s);
    if (err) {
        report_failed(x, o, err, msg);
    } else if (r->succeeded) {
        note_rev(x, r->revision);
        bk_tally_add(&x->copied, o->k);
    } else {
        const struct etcd_kv *kv = r->n_resps && r->resps[0].n_kvs ? &r->resps[0].kvs[0] : NULL;
        if (holds(x, kv, o)) {
            x->same++;
        } else {
            fprintf(stderr,
                    "coracle-backup: %s: %.*s exists in etcd (created at revision %" PRId64
                    ", modified at %" PRId64 "): left as it is (--overwrite replaces it)\n",
                    o->name, (int)o->ekey_len, o->ekey, kv ? kv->create_revision : 0,
                    kv ? kv->mod_revision : 0);
            x->exist++;
        }
    }
    if (--b->singles == 0)
        batch_end(b);
}

/* Creates o alone: put if the key is absent, else read what is there. */
static void single_send(struct xbatch *b, struct xobj *o)
{
    struct xsingle *s = xmalloc(sizeof(*s));
    s->b = b;
    s->o = o;
    struct etcd_cmp cmp = {
        .key = o->ekey, .key_len = o->ekey_len, .target = ETCD_CMP_CREATE, .number = 0};
    struct etcd_op put = {.type = ETCD_OP_PUT,
                          .key = o->ekey,
                          .key_len = o->ekey_len,
                          .value = o->val,
                          .value_len = o->val_len};
    struct etcd_op get = {.type = ETCD_OP_RANGE, .key = o->ekey, .key_len = o->ekey_len};
    struct etcd_txn_req req = {&cmp, 1, &put, &get, 1, 1};
    etcd_txn(b->x->e, &req, single_done, s);
}

static void batch_singles(struct xbatch *b)
{
    b->singles = b->n;
    for (size_t i = 0; i < b->n; i++)
        single_send(b, &b->objs[i]);
}

static void batch_done(void *arg, int err, const char *msg, const struct etcd_txn_resp *r)
{
    struct xbatch *b = arg;
    struct export *x = b->x;
    if (err && (b->n == 1 || is_unavailable(err))) {
        for (size_t i = 0; i < b->n; i++)
            report_failed(x, &b->objs[i], err, msg);
    } else if (err || !r->succeeded) {
        /* a key exists, or etcd refused the batch (its limits set lower): one by one */
        batch_singles(b);
        return;
    } else {
        note_rev(x, r->revision);
        for (size_t i = 0; i < b->n; i++) {
            const struct xobj *o = &b->objs[i];
            const struct etcd_kv *prev =
                i < r->n_resps && r->resps[i].n_kvs ? &r->resps[i].kvs[0] : NULL;
            if (holds(x, prev, o)) {
                x->same++;
                continue;
            }
            bk_tally_add(&x->copied, o->k);
            if (prev)
                x->replaced++;
        }
    }
    batch_end(b);
}

/* Sends the next objects of the snapshot as one Txn (nothing at the end). */
static void batch_send(struct export *x)
{
    struct xbatch *b = xcalloc(1, sizeof(*b));
    b->x = x;
    b->objs = xcalloc(BATCH_OPS, sizeof(*b->objs));
    size_t bytes = 0;
    while (b->n < BATCH_OPS && !x->stop) {
        if (!x->has_pending && !(x->has_pending = next_obj(x, &x->pending)))
            break;
        size_t sz = 2 * x->pending.ekey_len + x->pending.val_len + 32;
        if (b->n && bytes + sz > BATCH_BYTES)
            break;
        b->objs[b->n++] = x->pending;
        x->has_pending = false;
        bytes += sz;
    }
    if (!b->n) {
        free(b->objs);
        free(b);
        return;
    }
    struct etcd_cmp *cmp = xcalloc(b->n, sizeof(*cmp));
    struct etcd_op *put = xcalloc(b->n, sizeof(*put));
    for (size_t i = 0; i < b->n; i++) {
        const struct xobj *o = &b->objs[i];
        cmp[i] = (struct etcd_cmp){
            .key = o->ekey, .key_len = o->ekey_len, .target = ETCD_CMP_CREATE, .number = 0};
        put[i] = (struct etcd_op){.type = ETCD_OP_PUT,
                                  .key = o->ekey,
                                  .key_len = o->ekey_len,
                                  .value = o->val,
                                  .value_len = o->val_len,
                                  .prev_kv = x->overwrite};
    }
    struct etcd_txn_req req = {cmp, x->overwrite ? 0 : b->n, put, NULL, b->n, 0};
    x->inflight++;
    etcd_txn(x->e, &req, batch_done, b);
    free(cmp);
    free(put);
}

/* Keeps INFLIGHT Txns out while objects remain. */
static void fill(struct export *x)
{
    while (x->inflight < INFLIGHT && !x->stop && (x->has_pending || !x->eof)) {
        int before = x->inflight;
        batch_send(x);
        if (x->inflight == before)
            break;
    }
}

struct probe {
    bool done;
    int err;
    char *msg;
    int64_t rev;
};

static void probe_done(void *arg, int err, const char *msg, const struct etcd_range_resp *r)
{
    struct probe *p = arg;
    p->done = true;
    p->err = err;
    if (err)
        p->msg = xstrdup(msg);
    else
        p->rev = r->revision;
}

/* One read of the prefix (a count): is etcd there, and may we read? 0, or -1 with *err. */
static int probe(struct event_base *base, struct export *x, char **err)
{
    char *dir = bk_prefix_dir(x->prefix);
    size_t pl = strlen(dir);
    uint8_t *end = xmalloc(pl + 1);
    size_t el = etcd_prefix_end(dir, pl, end);
    struct etcd_range_req rq = {.key = dir,
                                .key_len = pl,
                                .range_end = end,
                                .range_end_len = el ? el : 1,
                                .count_only = true};
    struct probe p = {0};
    etcd_range(x->e, &rq, probe_done, &p);
    free(end);
    while (!p.done)
        event_base_loop(base, EVLOOP_ONCE);
    if (p.err) {
        *err = xasprintf("cannot read %s from etcd: %s", dir, p.msg);
        free(p.msg);
        free(dir);
        return -1;
    }
    free(dir);
    x->rev = p.rev;
    return 0;
}

/* One read transaction over the store at path: its objects and *rev. 0, or -1 with *err. */
static int snapshot_open(MDB_env *env, const char *path, struct export *x, uint64_t *rev,
                         char **err)
{
    MDB_dbi meta;
    uint64_t schema = 0;
    const char *what = "mdb_txn_begin";
    int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &x->txn);
    if (rc == MDB_MAP_RESIZED) { /* the apiserver grew the map since we opened */
        mdb_env_set_mapsize(env, 0);
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &x->txn);
    }
    if (rc)
        goto fail;
    what = "open the store's databases (not a coracle store?)";
    if ((rc = mdb_dbi_open(x->txn, "meta", 0, &meta)) ||
        (rc = mdb_dbi_open(x->txn, "objects", 0, &x->objs)))
        goto fail;
    what = "read meta";
    if ((rc = store_meta_get(x->txn, meta, "schema", &schema)) ||
        (rc = store_meta_get(x->txn, meta, "rev", rev)))
        goto fail;
    if (schema < 1 || schema > BK_SCHEMA) {
        *err = xasprintf("%s: store schema %llu, this program knows %d", path,
                         (unsigned long long)schema, BK_SCHEMA);
        return -1;
    }
    what = "mdb_cursor_open";
    if ((rc = mdb_cursor_open(x->txn, x->objs, &x->cur)))
        goto fail;
    x->next = MDB_FIRST;
    return 0;
fail:
    *err = xasprintf("%s: %s: %s", path, what, mdb_strerror(rc));
    return -1;
}

static void print_summary(const struct export *x, const char *path, uint64_t src_rev, int64_t t0)
{
    char *tally = bk_tally_str(&x->copied);
    double s = (double)(mono_ns() - t0) / 1e9;
    printf("copied %s from %s (revision %llu) at revision %" PRId64 " in %.3f s", tally, path,
           (unsigned long long)src_rev, x->rev, s);
    if (x->replaced)
        printf("; %zu of them replaced objects in etcd", x->replaced);
    if (x->same)
        printf("; %zu were in etcd already, the same", x->same);
    printf("\n");
    free(tally);
    if (x->exist)
        fprintf(stderr,
                "coracle-backup: %zu object%s in etcd already, left as they are "
                "(--overwrite replaces them)\n",
                x->exist, x->exist == 1 ? " was" : "s were");
    if (x->failed)
        fprintf(stderr, "coracle-backup: %zu object%s not copied (see above)\n", x->failed,
                x->failed == 1 ? " was" : "s were");
    if (x->stop && (x->has_pending || !x->eof))
        fprintf(stderr, "coracle-backup: stopped there: the objects after those were not "
                        "copied either; run it again once etcd answers\n");
}

int bk_to_etcd(const char *path, int is_file, const struct bk_etcd_opts *o, int overwrite,
               char **err)
{
    struct export x = {.prefix = o->prefix, .enc = o->enc, .overwrite = overwrite};
    int64_t t0 = mono_ns();
    int rc = -1;
    uint64_t src_rev = 0;
    MDB_env *env = NULL;
    struct event_base *base = event_base_new();
    if (!base) {
        *err = xstrdup("event_base_new failed");
        return -1;
    }
    if (!(x.e = bk_etcd_new(base, o, err)) || probe(base, &x, err) < 0 ||
        bk_open(path, is_file, &env, err) < 0 || snapshot_open(env, path, &x, &src_rev, err) < 0)
        goto out;
    fill(&x);
    while (x.inflight)
        event_base_loop(base, EVLOOP_ONCE);
    print_summary(&x, path, src_rev, t0);
    rc = x.failed || x.exist ? 1 : 0;
out:
    if (x.has_pending)
        xobj_clear(&x.pending);
    if (x.cur)
        mdb_cursor_close(x.cur);
    if (x.txn)
        mdb_txn_abort(x.txn);
    if (env)
        mdb_env_close(env);
    if (x.e)
        etcd_free(x.e);
    event_base_free(base);
    return rc;
}
