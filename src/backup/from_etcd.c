/*
 * from_etcd: coracle-backup --from-etcd. Every object under the prefix,
 * read in pages at one revision (the first page's), written into a new
 * store (store.h, as the apiserver opens it with --storage-backend lmdb).
 *
 * resourceVersions are kept: each object's is its mod_revision in etcd,
 * and the store starts at the revision read (STORE_OP_RESET, as a replica
 * rebuilt from a snapshot; objects go in with STORE_OP_NOLOG), compacted
 * there. So the objects are byte for byte what an apiserver on that etcd
 * served, a client's update with the resourceVersion it read still
 * applies, and the next write's resourceVersion is above every one a
 * client has seen; a watch from before the copy is answered 410 Gone (no
 * history came along), as after a compaction, and the client lists again.
 *
 * Pages are read ahead while the store commits the previous ones.
 */
#include "config.h"

#include "backup.h"
#include "store.h"
#include "store_etcd.h"
#include "util.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 500
/* under the prefix, of no kind: the apiservers' sync marker (store_etcd.c) */
#define BARRIER_NAME "coracle-sync"

struct import {
    struct event_base *base;
    etcd_t *e;
    char *prefix; /* with its '/' */
    size_t plen;
    const char *dir;
    const struct enc *enc; /* opens etcd's values; the new store seals them again */
    store_t *st;
    int64_t rev; /* the revision read at: the first page's */
    char *after; /* the last key of the previous page */
    size_t after_len;
    bool paging; /* a page is being read */
    int ops;     /* store ops not done yet */
    char *fatal; /* why it stopped */
    struct bk_tally copied;
    size_t failed, skipped;
};

struct iop {
    struct store_op op;
    struct import *im;
    const struct kind *k;
    void *val;
    size_t val_len;
};

static int iop_apply(struct store_op *op, const void *cur, size_t cur_len, uint64_t rev, void **out,
                     size_t *out_len, int *del)
{
    struct iop *p = (struct iop *)op;
    (void)cur;
    (void)cur_len;
    (void)rev;
    (void)del;
    *out = p->val; /* NULL for the reset */
    *out_len = p->val_len;
    p->val = NULL;
    return 0;
}

static void iop_done(struct store_op *op, int err, const struct store_change *ch)
{
    struct iop *p = (struct iop *)op;
    struct import *im = p->im;
    (void)ch;
    if (err) {
        char *name = bk_obj_name(op->key, op->key_len);
        fprintf(stderr, "coracle-backup: %s: writing it to %s: %s\n", p->k ? name : "the store",
                im->dir, store_strerror(err));
        free(name);
        im->failed++;
    } else if (p->k) {
        bk_tally_add(&im->copied, p->k);
    }
    im->ops--;
    free(p->val);
    free(op->key);
    free(p);
}

/* Queues the write of key (malloc'd, taken) with val (malloc'd, taken; NULL: the reset). */
static void submit(struct import *im, char *key, const struct kind *k, void *val, size_t val_len,
                   int flags)
{
    struct iop *p = xcalloc(1, sizeof(*p));
    p->im = im;
    p->k = k;
    p->val = val;
    p->val_len = val_len;
    p->op.key = key;
    p->op.key_len = strlen(key);
    p->op.apply = iop_apply;
    p->op.done = iop_done;
    p->op.rev = (uint64_t)im->rev;
    p->op.flags = flags;
    im->ops++;
    if (store_submit(im->st, &p->op) < 0) {
        im->ops--;
        free(val);
        free(key);
        free(p);
        if (!im->fatal)
            im->fatal = xasprintf("%s: the store closed", im->dir);
    }
}

/*
 * The object bytes in an etcd value (the envelope, k8s\0 + runtime.Unknown)
 * of kind k, with resourceVersion rev: malloc'd, or NULL with *why.
 */
static void *unwrap(const struct kind *k, const uint8_t *v, size_t len, int64_t rev,
                    size_t *out_len, const char **why)
{
    const uint8_t *tm, *kind, *raw;
    size_t tml, kl, rl;
    *why = "not a Kubernetes protobuf object (k8s\\0 + runtime.Unknown)";
    if (len < 4 || memcmp(v, "k8s\0", 4) || wire_find(v + 4, len - 4, 1, &tm, &tml) != 1 ||
        wire_find(tm, tml, 2, &kind, &kl) != 1 || wire_find(v + 4, len - 4, 2, &raw, &rl) != 1)
        return NULL;
    if (kl != strlen(k->kind) || memcmp(kind, k->kind, kl)) {
        *why = "its envelope names another kind";
        return NULL;
    }
    void *r = wire_set_rv(raw, rl, (uint64_t)rev, out_len);
    if (!r)
        *why = "the object in the envelope is not valid protobuf";
    return r;
}

static void take(struct import *im, const struct etcd_kv *kv)
{
    char *key = store_etcd_local_key(im->prefix, kv->key, kv->key_len);
    if (!key) {
        bool barrier = kv->key_len == im->plen + strlen(BARRIER_NAME) &&
                       !memcmp(kv->key + im->plen, BARRIER_NAME, strlen(BARRIER_NAME));
        if (!barrier) {
            fprintf(stderr, "coracle-backup: etcd key %.*s: of no kind coracle knows; skipped\n",
                    (int)kv->key_len, (const char *)kv->key);
            im->skipped++;
        }
        return;
    }
    const struct kind *k = kind_by_key(key, strlen(key));
    const char *why = "";
    char *ewhy = NULL;
    size_t vl, pl;
    const void *plain;
    void *owned, *v = NULL;
    if (bk_value_open(im->enc, key, strlen(key), kv->key, kv->key_len, kv->value, kv->value_len,
                      &plain, &pl, &owned, &ewhy) == 0)
        v = unwrap(k, plain, pl, kv->mod_revision, &vl, &why);
    free(owned);
    if (!v) {
        char *name = bk_obj_name(key, strlen(key));
        fprintf(stderr,
                "coracle-backup: %s: etcd key %.*s (revision %" PRId64 "): %s; not copied\n", name,
                (int)kv->key_len, (const char *)kv->key, kv->mod_revision, ewhy ? ewhy : why);
        free(ewhy);
        free(name);
        free(key);
        im->failed++;
        return;
    }
    submit(im, key, k, v, vl, STORE_OP_NOLOG);
}

static void page_next(struct import *im);

static void page_done(void *arg, int err, const char *msg, const struct etcd_range_resp *r)
{
    struct import *im = arg;
    im->paging = false;
    if (err) {
        im->fatal = xasprintf("cannot read %s from etcd: %s", im->prefix, msg);
        return;
    }
    if (!im->st) {
        /* the first page: the revision everything is read at, and the store begins there */
        struct store_opts so = {.dir = im->dir, .enc = im->enc};
        char *serr = NULL;
        if (store_open(&im->st, &so, im->base, &serr) < 0) {
            im->fatal = serr ? serr : xasprintf("cannot open a store in %s", im->dir);
            return;
        }
        im->rev = r->revision;
        submit(im, xstrdup("~reset"), NULL, NULL, 0, STORE_OP_RESET | STORE_OP_NOLOG);
    }
    for (size_t i = 0; i < r->n_kvs; i++)
        take(im, &r->kvs[i]);
    if (r->more && r->n_kvs && !im->fatal) {
        free(im->after);
        im->after_len = r->kvs[r->n_kvs - 1].key_len;
        im->after = xmemdup(r->kvs[r->n_kvs - 1].key, im->after_len);
        page_next(im);
        return;
    }
    /* the end: the store takes the reset and every object in one transaction */
    if (!im->fatal)
        submit(im, xstrdup("~end"), NULL, NULL, 0, STORE_OP_NOLOG | STORE_OP_SNAP_END);
}

/* Reads the page after im->after (the first page without it). */
static void page_next(struct import *im)
{
    im->paging = true;
    etcd_range_page(im->e, im->prefix, im->plen, im->after, im->after_len, im->rev, PAGE, page_done,
                    im);
}

/* 0 if dir holds no store (or does not exist); else -1 with *err. */
static int check_empty(const char *dir, char **err)
{
    char *data = xasprintf("%s/data.mdb", dir);
    int rc = 0;
    if (access(data, F_OK) == 0) {
        *err = xasprintf("%s holds a store already (%s): give a new or empty directory", dir, data);
        rc = -1;
    } else if (errno != ENOENT) {
        *err = xasprintf("%s: %s", data, strerror(errno));
        rc = -1;
    }
    free(data);
    return rc;
}

/* After a failure: the partial store's files go, so no apiserver starts on it. */
static void remove_store(const char *dir)
{
    static const char *const files[] = {"data.mdb", "lock.mdb", "writer.lock", "wal", "snap.mdb"};
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        char *f = xasprintf("%s/%s", dir, files[i]);
        unlink(f);
        free(f);
    }
}

int bk_from_etcd(const struct bk_etcd_opts *o, const char *dir, char **err)
{
    struct import im = {.dir = dir, .enc = o->enc};
    int64_t t0 = mono_ns();
    int rc = -1;
    if (check_empty(dir, err) < 0)
        return -1;
    if (!(im.base = event_base_new())) {
        *err = xstrdup("event_base_new failed");
        return -1;
    }
    im.prefix = bk_prefix_dir(o->prefix);
    im.plen = strlen(im.prefix);
    if (!(im.e = bk_etcd_new(im.base, o, err)))
        goto out;
    page_next(&im);
    while ((im.paging || im.ops) && !im.fatal)
        event_base_loop(im.base, EVLOOP_ONCE);
    /* the ops still queued are done (or fail) inside store_close */
    if (im.st)
        store_close(im.st);
    im.st = NULL;
    if (im.fatal) {
        if (im.rev)
            remove_store(dir);
        *err = im.fatal;
        im.fatal = NULL;
        goto out;
    }
    char *tally = bk_tally_str(&im.copied);
    printf("copied %s at revision %" PRId64 " into %s in %.3f s\n", tally, im.rev, dir,
           (double)(mono_ns() - t0) / 1e9);
    free(tally);
    if (im.skipped)
        fprintf(stderr, "coracle-backup: %zu key%s of no coracle kind skipped (see above)\n",
                im.skipped, im.skipped == 1 ? "" : "s");
    if (im.failed)
        fprintf(stderr, "coracle-backup: %zu object%s not copied (see above)\n", im.failed,
                im.failed == 1 ? " was" : "s were");
    rc = im.failed ? 1 : 0;
out:
    if (im.e)
        etcd_free(im.e);
    event_base_free(im.base);
    free(im.prefix);
    free(im.after);
    return rc;
}
