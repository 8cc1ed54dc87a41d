/*
 * store: the apiserver's durable state in LMDB, written through a commit
 * thread with group commit (see store.h for the contract).
 *
 * Threads. The event loop thread submits ops, opens read transactions and
 * receives results. The commit thread owns the only write transaction (but
 * for a write alone, which the loop commits itself while the commit thread
 * sleeps: commit_here_locked): it takes every queued op (up to max_batch),
 * runs each op's apply against the current value, writes object + log
 * record, bumps meta "rev", and commits once (LMDB's default durable
 * sync). The finished batch goes back to the
 * loop on a list guarded by the mutex, with one byte down a pipe watched by
 * a libevent event; the loop calls the listener for each change, then each
 * op's done, then advances store_rev().
 *
 * Map growth. mdb_env_set_mapsize may run only while this process has no
 * active transaction. The commit thread therefore parks between
 * transactions and asks the loop (pipe) to grow; the loop grows inside its
 * pipe callback when it holds no read transaction (or as soon as the last
 * one ends), then wakes the thread. A proactive grow (map more than 75%
 * used) is skipped if the loop is reading; a grow after MDB_MAP_FULL waits
 * for the readers, and the batch is then replayed: ops already applied keep
 * their result (apply runs exactly once per op), which is exact because the
 * replay starts from the same committed state with the same revisions.
 *
 * Encryption at rest (store_opts.enc): write_op opens an encrypted
 * resource's current value before apply sees it and seals what apply
 * wrote; the op keeps both forms (val_ for the loop, sval_ for the map and
 * the log). Reads open what they find; the plain copies live as long as the
 * read transaction. The additional data of aesgcm is the store key.
 *
 * Log record value: u8 type, u32le key_len, u32le val_len, u32le prev_len,
 * then key, val, prev. Or, when the key's previous change is in the log
 * too (type | LOGREC_REF): u8 type, u32le key_len, u32le val_len, be64
 * revision of that change, then key, val: the previous value is not
 * stored twice (see "History" below). Log key: big-endian u64 revision.
 * Meta values: big-endian u64.
 */
#include "config.h"
#include "store.h"
#include "enc.h"
#include "store_meta.h"
#include "util.h"
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* 2: log records may refer to their previous value (LOGREC_REF), the "prevs" database */
#define STORE_SCHEMA 2
#define STORE_DEFAULT_MAP ((size_t)1 << 30)
#define STORE_DEFAULT_KEEP 100000
#define STORE_DEFAULT_BATCH 10000
#define STORE_MAXREADERS 1024
#define STORE_RTXN_CACHE 32
#define STORE_GROW_TRIES 12
#define LOGREC_HDR 13
#define LOGREC_REF 0x80
#define LOGREC_REF_HDR 17
#define STORE_DEFAULT_WAL ((size_t)64 << 20)
/* the log is kept at least a checkpoint's size over this, up to STORE_WAL_MAX (wal_follow) */
#define STORE_WAL_PER_COPY 4
#define STORE_WAL_MAX ((uint64_t)1 << 30)
/* the loop commits a write alone only while commits take less than this (the loop's bound) */
#define STORE_LOOP_COMMIT_NS 1000000

/* commit_ops on the loop thread: the batch needs the commit thread (grow, checkpoint, ...) */
#define COMMIT_DEFER 1

/* Op states kept in op->type_ (0 = apply not yet run). */
#define OP_NOCHANGE (-1)

struct store_batch {
    struct store_batch *next;
    struct store_op *ops; /* linked by next_, in revision order */
    int err;              /* whole-batch failure, or 0 */
    uint64_t rev, compacted;
};

struct store_wait {
    struct store_wait *next;
    uint64_t rev;
    void (*fn)(void *arg);
    void *arg;
};

struct store_rtxn {
    store_t *s;
    MDB_txn *txn;
    uint64_t rev, compacted;
    struct store_rtxn *next_free;
    void **plain; /* opened values handed out, freed at store_read_end */
    size_t n_plain, cap_plain;
};

struct store {
    int lock_fd; /* flock'd: one apiserver per data directory */
    /* Why the last batch failed with STORE_EFULL; written by the commit thread
     * before the batch is handed back, read by the loop after. */
    char full_reason[160];
    MDB_env *env;
    MDB_dbi dbi_obj, dbi_log, dbi_meta, dbi_prev, dbi_refs;
    uint64_t (*value_rev)(const void *val, size_t len); /* store_opts.value_rev */
    struct event_base *base;
    struct event *ev;
    int pipe_rd, pipe_wr;
    pthread_t thread;
    int thread_started;
    uint64_t keep;
    int max_batch;
    size_t psize;
    unsigned int maxkey;
    const struct enc *enc; /* read-only: both threads */

    pthread_mutex_t mu;
    pthread_cond_t cv_thread; /* commit thread waits: work, grow answer */
    pthread_cond_t cv_loop;   /* store_close waits: batch, grow request, exit */
    /* the ops' prepare hooks, run while a batch is made durable (prep_start) */
    struct {
        pthread_t th;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        struct store_op *job; /* the batch to prepare, or NULL */
        int busy, stop;
        int state; /* 0: no thread yet, 1: running, -1: none (prepare inline) */
    } prep;
    /* ---- under mu ---- */
    struct store_op *q_head, *q_tail;
    int thread_idle;
    int stopping;
    int thread_exited;
    int closing;
    struct store_batch *done_head, *done_tail;
    int notified; /* a wake-up byte is in the pipe */
    size_t grow_want;
    int grow_urgent, grow_pending, grow_answered, grow_result;
    struct store_stats st;
    int64_t last_commit_ns; /* the last commit's log write and mdb_txn_commit */
    int broken;             /* env unusable (failed remap): every call answers STORE_EIO */
    int replica;
    struct store_remote remote; /* submit set: writes go there */

    /* ---- loop thread only ---- */
    uint64_t rev, compacted;
    struct store_wait *waits; /* by revision */
    store_listener_fn listener;
    void *listener_arg;
    int readers;
    uint64_t unanswered; /* ops submitted and not yet delivered */
    int loop_commits;    /* store_opts.loop_commits */
    struct store_rtxn *rtxn_free;
    int n_rtxn_free;
    uint64_t meta_txnid, meta_rev, meta_compacted; /* cache for read_begin */

    /* ---- commit thread only (and open/close) ---- */
    char *dir;
    char *map_dir; /* where data.mdb lives: dir, or a directory in memory (store_opts.map_dir) */
    wal_t *wal;    /* NULL on a replica */
    int direct;    /* the log is off for lack of space: every commit syncs the map */
    struct buf walrec;  /* the record being built */
    struct buf walpack; /* scratch of wal_rec_pack */
    uint64_t crev, ccompacted;
    size_t mapsize;
    uint64_t ncommits, grow_retry_at;
};

const char *store_full_reason(const store_t *s)
{
    return s->full_reason[0] ? s->full_reason : "no space left for the store";
}

const char *store_unavail_reason(const store_t *s)
{
    const char *r = s->remote.unavail_reason ? s->remote.unavail_reason(s->remote.impl) : NULL;
    return r && *r ? r : "the store did not answer";
}

const char *store_strerror(int err)
{
    switch (err) {
    case STORE_OK:
        return "success";
    case STORE_ENOTFOUND:
        return "not found";
    case STORE_ECOMPACTED:
        return "revision compacted";
    case STORE_EFULL:
        return "store full";
    case STORE_EIO:
        return "store I/O error";
    case STORE_ECLOSED:
        return "store closed";
    case STORE_EUNAVAIL:
        return "store unavailable";
    case STORE_ETRANSFORM:
        return "a stored value cannot be decrypted (the apiserver's log says which and why)";
    }
    return err <= STORE_EAPP ? "application error" : "unknown store error";
}

/* ---- encoding helpers ---- */

static void be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t be64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void le32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t le32_get(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * Decodes a log record into ch; 0 or STORE_EIO if malformed. A record that
 * refers to its previous value (LOGREC_REF) gives its revision in *prev_rev
 * (else 0) and ch->prev NULL: logrec_prev finds it.
 */
static int logrec_decode(uint64_t rev, const MDB_val *v, struct store_change *ch,
                         uint64_t *prev_rev)
{
    const uint8_t *p = v->mv_data;
    *prev_rev = 0;
    if (v->mv_size >= LOGREC_REF_HDR && (p[0] & LOGREC_REF)) {
        uint32_t kl = le32_get(p + 1), vl = le32_get(p + 5);
        int type = p[0] & ~LOGREC_REF;
        if ((uint64_t)LOGREC_REF_HDR + kl + vl != v->mv_size || type < STORE_PUT_MOD ||
            type > STORE_DELETE)
            return STORE_EIO;
        *prev_rev = be64_get(p + 9);
        ch->rev = rev;
        ch->type = type;
        ch->key = (const char *)p + LOGREC_REF_HDR;
        ch->key_len = kl;
        ch->val = type == STORE_DELETE ? NULL : p + LOGREC_REF_HDR + kl;
        ch->val_len = type == STORE_DELETE ? 0 : vl;
        ch->prev = NULL;
        ch->prev_len = 0;
        return *prev_rev && *prev_rev < rev ? 0 : STORE_EIO;
    }
    if (v->mv_size < LOGREC_HDR)
        return STORE_EIO;
    uint32_t kl = le32_get(p + 1), vl = le32_get(p + 5), pl = le32_get(p + 9);
    if ((uint64_t)LOGREC_HDR + kl + vl + pl != v->mv_size || p[0] < STORE_PUT_NEW ||
        p[0] > STORE_DELETE)
        return STORE_EIO;
    ch->rev = rev;
    ch->type = p[0];
    ch->key = (const char *)p + LOGREC_HDR;
    ch->key_len = kl;
    ch->val = ch->type == STORE_DELETE ? NULL : p + LOGREC_HDR + kl;
    ch->val_len = vl;
    ch->prev = ch->type == STORE_PUT_NEW ? NULL : p + LOGREC_HDR + kl + vl;
    ch->prev_len = pl;
    return 0;
}

int store_meta_get(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *out)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc)
        return rc;
    if (v.mv_size != 8)
        return MDB_CORRUPTED;
    *out = be64_get(v.mv_data);
    return 0;
}

static int meta_put(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t val)
{
    uint8_t b[8];
    be64_put(b, val);
    MDB_val k = {strlen(name), (void *)name}, v = {8, b};
    return mdb_put(txn, dbi, &k, &v, 0);
}

/* ---- stored forms (enc.h) ---- */

/*
 * The plain bytes of key's stored value v: v itself for a resource that is
 * not encrypted (or a plain value identity reads), else a malloc'd copy,
 * also in *owned. 0, or STORE_ETRANSFORM (logged, without the value).
 */
static int open_stored(const store_t *s, const void *key, size_t key_len, const void *v, size_t vl,
                       const void **out, size_t *out_len, void **owned, int *stale)
{
    const enc_rule_t *r = enc_rule_for_key(s->enc, key, key_len);
    *owned = NULL;
    *out = v;
    *out_len = vl;
    if (!r) {
        /* sealed, but the config no longer names the resource: no plain bytes to give
         * (an object's protobuf begins with field 1's tag, never with 'k') */
        if (vl < 8 || *(const char *)v != 'k' || memcmp(v, "k8s:enc:", 8))
            return 0;
        log_err("store: %.*s: the value is encrypted, but the encryption config does not name "
                "its resource",
                (int)key_len, (const char *)key);
        return STORE_ETRANSFORM;
    }
    void *p;
    size_t pl;
    char *err = NULL;
    if (enc_open(r, key, key_len, v, vl, &p, &pl, stale, &err)) {
        log_err("store: %.*s: %s", (int)key_len, (const char *)key, err);
        free(err);
        return STORE_ETRANSFORM;
    }
    if (p) {
        *out = *owned = p;
        *out_len = pl;
    }
    return 0;
}

/* Keeps p (may be NULL) until the read transaction ends. */
static void rtxn_keep(struct store_rtxn *t, void *p)
{
    if (p)
        *XPUSH(t->plain, t->n_plain, t->cap_plain) = p;
}

/*
 * Commit thread: cur (the op's key's stored value) opened for apply. On
 * failure an op of its own fails; a replica's op, which decides on the
 * key alone, goes on with the stored bytes, hidden from the listener.
 * Returns 0 and sets *cur and *cur_len (the plain copy in *owned, the stored
 * bytes in *stored, *stale if another key than the first sealed them), or
 * STORE_ETRANSFORM.
 */
static int open_cur(store_t *s, struct store_op *op, const void **cur, size_t *cur_len,
                    void **owned, MDB_val *stored, int *stale)
{
    *owned = NULL;
    *stale = 0;
    stored->mv_data = (void *)*cur;
    stored->mv_size = *cur_len;
    if (!*cur ||
        open_stored(s, op->key, op->key_len, *cur, *cur_len, cur, cur_len, owned, stale) == 0)
        return 0;
    if (!op->rev)
        return STORE_ETRANSFORM;
    op->opaque_ = 1;
    return 0;
}

/* Commit thread: what apply wrote, sealed into op->sval_ if its resource is encrypted. */
static int seal_val(store_t *s, struct store_op *op)
{
    const enc_rule_t *r = enc_rule_for_key(s->enc, op->key, op->key_len);
    if (op->flags & STORE_OP_SEALED) {
        op->opaque_ = 1;
        return 0;
    }
    if (!r)
        return 0;
    char *err = NULL;
    if (enc_seal(r, op->key, op->key_len, op->val_, op->val_len_, &op->sval_, &op->sval_len_,
                 &err)) {
        log_err("store: %.*s: %s", (int)op->key_len, op->key, err);
        free(err);
        return STORE_ETRANSFORM;
    }
    return 0;
}

/* ---- commit thread <-> loop handshake ---- */

/* mu held. Wakes the loop (pipe) and store_close (cv_loop). */
static void notify_loop_locked(store_t *s)
{
    if (!s->notified) {
        s->notified = 1;
        char c = 1;
        ssize_t n;
        do
            n = write(s->pipe_wr, &c, 1);
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno != EAGAIN)
            log_err("store: write wake-up pipe: %s", strerror(errno));
    }
    pthread_cond_signal(&s->cv_loop);
}

static void post_batch(store_t *s, struct store_batch *b)
{
    pthread_mutex_lock(&s->mu);
    if (s->done_tail)
        s->done_tail->next = b;
    else
        s->done_head = b;
    s->done_tail = b;
    notify_loop_locked(s);
    pthread_mutex_unlock(&s->mu);
}

/*
 * Commit thread, between transactions: asks the loop to set the map size to
 * want and parks until it answers. Returns 0 if the map grew.
 */
static int thread_grow(store_t *s, size_t want, int urgent)
{
    pthread_mutex_lock(&s->mu);
    s->grow_want = want;
    s->grow_urgent = urgent;
    s->grow_answered = 0;
    s->grow_pending = 1;
    notify_loop_locked(s);
    while (!s->grow_answered)
        pthread_cond_wait(&s->cv_thread, &s->mu);
    s->grow_pending = 0;
    int rc = s->grow_result;
    pthread_mutex_unlock(&s->mu);
    if (rc == 0) {
        MDB_envinfo info;
        mdb_env_info(s->env, &info);
        s->mapsize = info.me_mapsize;
    }
    return rc;
}

/*
 * Loop thread, mu held: answers a parked grow request if it can. The commit
 * thread is parked (no write txn); growth needs no read txn either.
 */
static void loop_try_grow_locked(store_t *s)
{
    if (!s->grow_pending || s->grow_answered)
        return;
    if (s->readers > 0) {
        if (s->grow_urgent && !s->closing)
            return; /* store_read_end retries */
        s->grow_result = -1;
    } else if (s->broken) {
        s->grow_result = -1;
    } else {
        MDB_envinfo info;
        mdb_env_info(s->env, &info);
        int rc = mdb_env_set_mapsize(s->env, s->grow_want);
        if (rc) {
            log_err("store: mdb_env_set_mapsize(%zu): %s", s->grow_want, mdb_strerror(rc));
            /* A failed remap leaves LMDB without a map: nothing is safe any more. */
            s->broken = 1;
            s->grow_result = rc;
        } else {
            log_info("store: map size grown from %zu to %zu bytes", info.me_mapsize, s->grow_want);
            s->st.map_size = s->grow_want;
            s->grow_result = 0;
        }
    }
    s->grow_answered = 1;
    pthread_cond_signal(&s->cv_thread);
}

/* ---- the commit thread ---- */

/*
 * After a commit: grow the map once it is 75% used. If the loop is reading
 * (grow refused), try again 16 commits later; past 90% wait for the readers.
 */
static void maybe_grow(store_t *s)
{
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    uint64_t used = ((uint64_t)info.me_last_pgno + 1) * s->psize;
    uint64_t map = info.me_mapsize;
    if (used * 4 <= map * 3 || (s->ncommits < s->grow_retry_at && used * 10 <= map * 9))
        return;
    if (thread_grow(s, info.me_mapsize * 2, used * 10 > map * 9))
        s->grow_retry_at = s->ncommits + 16;
}

static int errno_is_full(int rc)
{
    return rc == ENOSPC || rc == EDQUOT || rc == EFBIG || rc == EIO;
}

static void op_reset_results(struct store_op *op)
{
    free(op->val_);
    free(op->prev_);
    free(op->sval_);
    free(op->sprev_);
    op->val_ = op->prev_ = op->sval_ = op->sprev_ = NULL;
    op->val_len_ = op->prev_len_ = op->sval_len_ = op->sprev_len_ = 0;
    op->opaque_ = 0;
}

/*
 * An unchanged value sealed by an older key (or not at all) is sealed again
 * with the first one, in place: the same object at the same revision, so
 * no log record and no event, only its stored form moves to the current
 * key (rotation: kubectl replace of every object). Log records keep the
 * forms they were written in until compaction drops them.
 */
static void reseal(store_t *s, struct store_op *op, const void *cur, size_t cur_len)
{
    const enc_rule_t *r = enc_rule_for_key(s->enc, op->key, op->key_len);
    char *err = NULL;
    void *sealed;
    size_t sl;
    if (enc_seal(r, op->key, op->key_len, cur, cur_len, &sealed, &sl, &err)) {
        log_err("store: %.*s: %s", (int)op->key_len, op->key, err);
        free(err);
        return;
    }
    /* identity first: the plain bytes themselves */
    op->sval_ = sealed ? sealed : xmemdup(cur, cur_len);
    op->sval_len_ = sealed ? sl : cur_len;
}

static int reseal_put(store_t *s, MDB_txn *txn, struct store_op *op, int *changed)
{
    MDB_val k = {op->key_len, op->key}, v = {op->sval_len_, op->sval_};
    int rc = mdb_put(txn, s->dbi_obj, &k, &v, 0);
    if (!rc)
        *changed = 1;
    return rc;
}

/*
 * ---- History ----
 *
 * The log keeps each change's new value. The previous value of a change
 * is the new value of the key's change before it: a record whose key's
 * previous change is still in the log names that change's revision
 * (LOGREC_REF) instead of holding a copy, as etcd keeps one value per
 * revision. Which revision that is, the value says (store_opts.value_rev:
 * metadata.resourceVersion), and the store checks it: that record must
 * be a put of the same key with byte-equal value, else the record holds
 * its previous value itself, as every record did before (and does when
 * there is no value_rev). The "refs" database marks each revision so
 * referred to (value: the referring revision), one referrer at most. When
 * compaction drops a marked put, its value moves to "prevs" (key: its
 * revision) until the referring record is compacted too: at most one
 * value a key, for keys changed on both sides of the compaction point.
 * All of it is in the write transaction: nothing to rebuild at open,
 * nothing to undo when a commit fails.
 */

/*
 * The revision e's record may refer to for its previous value (0: none,
 * the record holds it): the key's previous put, still in the log, whose
 * value is e's previous value byte for byte, not referred to yet.
 */
static uint64_t prev_ref(store_t *s, MDB_txn *txn, const struct wal_entry *e)
{
    if (!s->value_rev || e->kind == STORE_PUT_NEW || !e->prev)
        return 0;
    uint64_t p = s->value_rev(e->prev, e->prev_len);
    if (!p || p >= e->rev)
        return 0;
    uint8_t kb[8];
    be64_put(kb, p);
    MDB_val k = {8, kb}, v;
    struct store_change pc;
    uint64_t pr;
    if (mdb_get(txn, s->dbi_log, &k, &v) || logrec_decode(p, &v, &pc, &pr) || !pc.val ||
        pc.key_len != e->key_len || memcmp(pc.key, e->key, e->key_len) ||
        pc.val_len != e->prev_len || memcmp(pc.val, e->prev, e->prev_len))
        return 0;
    if (mdb_get(txn, s->dbi_refs, &k, &v) != MDB_NOTFOUND)
        return 0;
    return p;
}

/*
 * One log record dropped by compaction (decoded in ch, referring to
 * prev_rev or not): the value it referred to is no longer needed, and its
 * own moves to "prevs" if a later record refers to it.
 */
static int hist_drop(store_t *s, MDB_txn *txn, const struct store_change *ch, uint64_t prev_rev)
{
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    void *copy = NULL;
    int rc;
    if (ch->type != STORE_DELETE) {
        /* referred to: its value, copied before any write moves the page it is in */
        be64_put(kb, ch->rev);
        if ((rc = mdb_get(txn, s->dbi_refs, &k, &v)) == 0)
            copy = xmemdup(ch->val, ch->val_len);
        else if (rc != MDB_NOTFOUND)
            return rc;
    }
    if (prev_rev) {
        uint8_t pb[8];
        be64_put(pb, prev_rev);
        MDB_val pk = {8, pb};
        rc = mdb_del(txn, s->dbi_prev, &pk, NULL);
        if (rc && rc != MDB_NOTFOUND)
            goto out;
    }
    rc = 0;
    if (!copy)
        goto out;
    if ((rc = mdb_del(txn, s->dbi_refs, &k, NULL)))
        goto out;
    v.mv_size = ch->val_len;
    v.mv_data = copy;
    rc = mdb_put(txn, s->dbi_prev, &k, &v, MDB_APPEND);
    if (rc == MDB_KEYEXIST)
        rc = mdb_put(txn, s->dbi_prev, &k, &v, 0);
out:
    free(copy);
    return rc;
}

/* Deletes up to limit of the oldest log records at or below target. */
static int compact_step(store_t *s, MDB_txn *txn, uint64_t target, size_t limit,
                        uint64_t *compacted)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->dbi_log, &c);
    if (rc)
        return rc;
    uint64_t last = *compacted;
    size_t n = 0;
    MDB_val k, v;
    while (n < limit && (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0) {
        if (k.mv_size != 8)
            break;
        uint64_t r = be64_get(k.mv_data), pr;
        if (r > target)
            break;
        struct store_change ch;
        if (logrec_decode(r, &v, &ch, &pr)) {
            log_err("store: log record %llu is corrupt", (unsigned long long)r);
            rc = MDB_CORRUPTED;
            goto out;
        }
        if ((rc = hist_drop(s, txn, &ch, pr)) || (rc = mdb_cursor_del(c, 0)))
            goto out;
        last = r;
        n++;
    }
    if (rc == MDB_NOTFOUND || rc == 0) {
        rc = 0;
        /* An empty (or exhausted) log below target: everything up to it is gone. */
        if (n < limit)
            last = target;
        if (last > *compacted)
            *compacted = last;
    }
out:
    mdb_cursor_close(c);
    return rc;
}

/* An op that changed nothing: a replica's op with a revision still moves the store there. */
static int op_nochange(struct store_op *op, uint64_t *r, int *changed)
{
    if (op->rev > *r && !(op->flags & STORE_OP_NOLOG)) {
        *r = op->rev;
        *changed = 1;
    }
    return 0;
}

/* STORE_OP_RESET: every object and log record dropped, the store restarts at rev. */
static int reset_env(store_t *s, MDB_txn *txn, uint64_t rev, uint64_t *r, uint64_t *compacted)
{
    int rc;
    if ((rc = mdb_drop(txn, s->dbi_obj, 0)) || (rc = mdb_drop(txn, s->dbi_log, 0)) ||
        (rc = mdb_drop(txn, s->dbi_prev, 0)) || (rc = mdb_drop(txn, s->dbi_refs, 0)))
        return rc;
    *r = *compacted = rev;
    return 0;
}

/*
 * The log record of change e (a wal_entry of kind 1..3: the same fields) at
 * e->rev: its previous value by reference when its key's previous change
 * is in the log.
 */
static int put_logrec(store_t *s, MDB_txn *txn, const struct wal_entry *e, unsigned int flags)
{
    uint8_t kb[8];
    be64_put(kb, e->rev);
    uint64_t pr = prev_ref(s, txn, e);
    size_t plen = pr ? 0 : e->prev_len;
    MDB_val lk = {8, kb},
            lv = {(pr ? LOGREC_REF_HDR : LOGREC_HDR) + e->key_len + e->val_len + plen, NULL};
    int rc = mdb_put(txn, s->dbi_log, &lk, &lv, flags | MDB_RESERVE);
    if (rc)
        return rc;
    /* the reserved space is filled before the next write (LMDB may move it after) */
    uint8_t *p = lv.mv_data;
    p[0] = (uint8_t)(e->kind | (pr ? LOGREC_REF : 0));
    le32_put(p + 1, (uint32_t)e->key_len);
    le32_put(p + 5, (uint32_t)e->val_len);
    if (pr) {
        be64_put(p + 9, pr);
        p += LOGREC_REF_HDR;
    } else {
        le32_put(p + 9, (uint32_t)e->prev_len);
        p += LOGREC_HDR;
    }
    memcpy(p, e->key, e->key_len);
    p += e->key_len;
    if (e->val_len)
        memcpy(p, e->val, e->val_len);
    p += e->val_len;
    if (plen)
        memcpy(p, e->prev, plen);
    if (pr) {
        uint8_t pb[8];
        be64_put(pb, pr);
        MDB_val rk = {8, pb}, rv = {8, kb};
        rc = mdb_put(txn, s->dbi_refs, &rk, &rv, 0);
    }
    return rc;
}

/*
 * Writes one op into txn. Runs apply the first time; on a replay (after a
 * map grow) reuses the result. Returns an LMDB code that dooms the txn, or
 * 0. *r is the last revision used; *changed is set if the op wrote.
 */
static int write_op(store_t *s, MDB_txn *txn, struct store_op *op, uint64_t *r, uint64_t *compacted,
                    int *changed)
{
    MDB_val k = {op->key_len, op->key}, v;
    int rc;
    if (op->flags & STORE_OP_RESET) {
        if ((rc = reset_env(s, txn, op->rev, r, compacted)))
            return rc;
        *changed = 1;
    }
    if (op->type_ == 0) {
        const void *cur = NULL;
        size_t cur_len = 0;
        if (op->key_len == 0 || op->key_len > s->maxkey) {
            log_err("store: op key of %zu bytes refused (1..%u)", op->key_len, s->maxkey);
            op->err_ = STORE_EIO;
            op->type_ = OP_NOCHANGE;
            return op_nochange(op, r, changed);
        }
        rc = mdb_get(txn, s->dbi_obj, &k, &v);
        if (rc == 0) {
            cur = v.mv_data;
            cur_len = v.mv_size;
        } else if (rc != MDB_NOTFOUND) {
            return rc;
        }
        void *out = NULL, *cur_plain;
        size_t out_len = 0;
        int del = 0;
        MDB_val stored;
        int stale;
        int err = open_cur(s, op, &cur, &cur_len, &cur_plain, &stored, &stale);
        if (!err)
            err = op->apply(op, cur, cur_len, op->rev ? op->rev : *r + 1, &out, &out_len, &del);
        if (!err && !out && !del && stale)
            reseal(s, op, cur, cur_len);
        if (!err && op->rev && op->rev <= *r && !(op->flags & STORE_OP_NOLOG)) {
            log_err("store: op for revision %llu after revision %llu refused",
                    (unsigned long long)op->rev, (unsigned long long)*r);
            err = STORE_EIO;
        }
        if (err || (!out && !del) || (del && !cur)) {
            free(out);
            free(cur_plain);
            op->err_ = err ? err : del ? STORE_ENOTFOUND : 0;
            op->type_ = OP_NOCHANGE;
            if (op->sval_ && (rc = reseal_put(s, txn, op, changed)))
                return rc;
            return err ? 0 : op_nochange(op, r, changed);
        }
        if (del) {
            free(out);
            op->type_ = STORE_DELETE;
        } else {
            op->type_ = cur ? STORE_PUT_MOD : STORE_PUT_NEW;
            op->val_ = out;
            op->val_len_ = out_len;
        }
        if (cur) {
            op->prev_ = cur_plain ? cur_plain : xmemdup(cur, cur_len);
            op->prev_len_ = cur_len;
            if (cur_plain) {
                op->sprev_ = xmemdup(stored.mv_data, stored.mv_size);
                op->sprev_len_ = stored.mv_size;
            }
        }
        if (!del && (err = seal_val(s, op))) {
            op_reset_results(op);
            op->err_ = err;
            op->type_ = OP_NOCHANGE;
            return 0;
        }
    } else if (op->type_ == OP_NOCHANGE) {
        if (op->sval_ && (rc = reseal_put(s, txn, op, changed)))
            return rc;
        return op->err_ ? 0 : op_nochange(op, r, changed);
    }
    *changed = 1;
    if (op->flags & STORE_OP_NOLOG)
        op->rev_ = op->rev;
    else
        op->rev_ = *r = op->rev ? op->rev : *r + 1;

    /* what goes into the map: the sealed forms where there are */
    const void *sval = op->sval_ ? op->sval_ : op->val_,
               *sprev = op->sprev_ ? op->sprev_ : op->prev_;
    size_t sval_len = op->sval_ ? op->sval_len_ : op->val_len_;
    size_t sprev_len = op->sprev_ ? op->sprev_len_ : op->prev_len_;
    if (op->type_ == STORE_DELETE) {
        rc = mdb_del(txn, s->dbi_obj, &k, NULL);
    } else {
        v.mv_size = sval_len;
        v.mv_data = (void *)sval;
        rc = mdb_put(txn, s->dbi_obj, &k, &v, 0);
    }
    if (rc || (op->flags & STORE_OP_NOLOG))
        return rc;

    struct wal_entry e = {op->type_,
                          op->rev_,
                          op->key,
                          op->type_ == STORE_DELETE ? NULL : sval,
                          sprev,
                          op->key_len,
                          op->type_ == STORE_DELETE ? 0 : sval_len,
                          sprev_len};
    return put_logrec(s, txn, &e, MDB_APPEND);
}

/* ---- the write-ahead log (wal.h) ---- */

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) < 0 ? errno : 0;
    close(fd);
    return rc;
}

/*
 * Copies the committed map to path: written as path.tmp, synced, renamed.
 * Any thread; no write transaction of this thread may be open. 0, or an
 * errno or LMDB code with *err (malloc'd) saying why.
 *
 * Page for page (free pages too), from the map straight to the disk with
 * O_DIRECT where the file system takes it. A compacting copy walks every
 * tree and writes through the page cache; at 740 MB that took 1.48 s
 * against 0.39 s, and most of the apiserver's CPU in a run of creates
 * that met a checkpoint (contrib/bench's store benchmark, 800,000 pods).
 * The map's pages are aligned and whole, as O_DIRECT wants; a file system
 * that refuses it at open or at the first write gets a buffered copy.
 * Backups stay compact (store_backup, coracle-backup).
 */
static int copy_env(store_t *s, const char *path, char **err)
{
    char *tmp = xasprintf("%s.tmp", path);
    int direct = 1, rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0600);
    if (fd < 0 && errno == EINVAL) {
        direct = 0;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
        rc = errno;
        *err = xasprintf("open %s: %s", tmp, strerror(rc));
        goto out;
    }
    rc = mdb_env_copyfd2(s->env, fd, 0);
    if (rc == EINVAL && direct) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_DIRECT) < 0 || ftruncate(fd, 0) < 0 ||
            lseek(fd, 0, SEEK_SET) < 0)
            rc = errno;
        else
            rc = mdb_env_copyfd2(s->env, fd, 0);
    }
    if (rc)
        *err = xasprintf("copy to %s: mdb_env_copyfd2: %s", path, mdb_strerror(rc));
    else if (fsync(fd) < 0) {
        rc = errno;
        *err = xasprintf("fsync %s: %s", tmp, strerror(rc));
    }
    close(fd);
    if (!rc && rename(tmp, path) < 0) {
        rc = errno;
        *err = xasprintf("rename %s to %s: %s", tmp, path, strerror(rc));
    }
out:
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}

/*
 * The log grows with the map. A checkpoint copies the whole map each time
 * the log fills, so behind a log of fixed size its cost per byte logged
 * grows with the store: a 600 MiB map behind the default 64 MiB log wrote
 * ten bytes of copy per byte of log, and the copies' writes (system time)
 * took most of the apiserver's CPU under creates. After a checkpoint of
 * copied bytes the log is made at least copied / STORE_WAL_PER_COPY, so
 * a checkpoint costs at most about that many bytes per byte logged. Bounded
 * by STORE_WAL_MAX (what a restart after a crash replays), a quarter of the
 * disk's free space (as the log's first size) and the room a checkpoint
 * needs besides (checkpoint_fits). The log only grows; its file keeps the
 * size across restarts.
 */
static void wal_follow(store_t *s, uint64_t copied)
{
    struct statvfs sv;
    uint64_t want = copied / STORE_WAL_PER_COPY, have = wal_size(s->wal);
    if (want <= have || statvfs(s->dir, &sv) < 0)
        return;
    uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize, keep = 2 * copied + ((uint64_t)8 << 20);
    uint64_t room = avail > keep ? avail - keep : 0;
    want = want < STORE_WAL_MAX ? want : STORE_WAL_MAX;
    want = want < avail / 4 ? want : avail / 4;
    want = want < room ? want : room;
    if (want <= have + (have >> 3)) /* not for less than an eighth more */
        return;
    int rc = -wal_grow(s->wal, (size_t)(want - wal_used(s->wal)));
    if (rc)
        log_warn("store: grow %s to %llu bytes: %s (it stays at %llu)", wal_path(s->wal),
                 (unsigned long long)want, strerror(rc), (unsigned long long)have);
    else
        log_info("store: %s grown to %zu bytes: the checkpoint copied %llu", wal_path(s->wal),
                 wal_size(s->wal), (unsigned long long)copied);
}

/*
 * A checkpoint: the committed map copied to DIR/snap.mdb (synced, the
 * directory too), then a new log epoch that continues from its revision.
 * A crash between the two leaves the new copy and the old log, whose
 * records up to the copy's revision replay skips. No write transaction may
 * be open. 0, or an errno or LMDB code (logged; the log keeps its records).
 */
static int checkpoint(store_t *s)
{
    char *snap = xasprintf("%s/snap.mdb", s->dir), *err = NULL;
    int64_t t0 = mono_ns();
    size_t used = wal_used(s->wal);
    int rc = copy_env(s, snap, &err);
    struct stat st = {.st_size = 0};
    if (!rc && stat(snap, &st) == 0) {
        pthread_mutex_lock(&s->mu);
        s->st.checkpoints++;
        s->st.checkpoint_bytes += (uint64_t)st.st_size;
        pthread_mutex_unlock(&s->mu);
    }
    if (!rc && (rc = sync_dir(s->dir)))
        err = xasprintf("fsync %s: %s", s->dir, strerror(rc));
    if (!rc && (rc = -wal_restart(s->wal, s->crev)))
        err = xasprintf("restart %s: %s", wal_path(s->wal), strerror(rc));
    if (rc)
        log_err("store: checkpoint: %s", err);
    else
        log_info("store: checkpoint at revision %llu: %zu bytes of log now in %s (%.1f ms)",
                 (unsigned long long)s->crev, used, snap, (double)(mono_ns() - t0) / 1e6);
    if (!rc)
        wal_follow(s, (uint64_t)st.st_size);
    free(err);
    free(snap);
    return rc;
}

/* ---- prepare hooks: a helper thread ---- */

/* An op whose prepare hook is to run: it has one, and it wrote. */
static bool prep_due(const struct store_op *op)
{
    return op->prepare && op->type_ > 0 && !op->err_;
}

static void prep_run(struct store_op *ops)
{
    for (struct store_op *op = ops; op; op = op->next_)
        if (prep_due(op))
            op->prepare(op);
}

static void *prep_main(void *arg)
{
    store_t *s = arg;
    pthread_mutex_lock(&s->prep.mu);
    for (;;) {
        while (!s->prep.job && !s->prep.stop)
            pthread_cond_wait(&s->prep.cv, &s->prep.mu);
        if (!s->prep.job)
            break;
        struct store_op *ops = s->prep.job;
        s->prep.job = NULL;
        pthread_mutex_unlock(&s->prep.mu);
        prep_run(ops);
        pthread_mutex_lock(&s->prep.mu);
        s->prep.busy = 0;
        pthread_cond_broadcast(&s->prep.cv);
    }
    pthread_mutex_unlock(&s->prep.mu);
    return NULL;
}

/*
 * Hands the batch's prepare hooks to the helper thread (started on first
 * use; if it cannot start, they run here). 1 if prep_join must follow.
 */
static int prep_start(store_t *s, struct store_op *ops, int n)
{
    struct store_op *op = ops;
    while (op && !prep_due(op))
        op = op->next_;
    if (!op || n < 2)
        return 0;
    if (s->prep.state == 0) {
        pthread_mutex_init(&s->prep.mu, NULL);
        pthread_cond_init(&s->prep.cv, NULL);
        s->prep.state = pthread_create(&s->prep.th, NULL, prep_main, s) == 0 ? 1 : -1;
    }
    if (s->prep.state < 0) {
        prep_run(ops);
        return 0;
    }
    pthread_mutex_lock(&s->prep.mu);
    s->prep.job = ops;
    s->prep.busy = 1;
    pthread_cond_broadcast(&s->prep.cv);
    pthread_mutex_unlock(&s->prep.mu);
    return 1;
}

static void prep_join(store_t *s, int started)
{
    if (!started)
        return;
    pthread_mutex_lock(&s->prep.mu);
    while (s->prep.busy)
        pthread_cond_wait(&s->prep.cv, &s->prep.mu);
    pthread_mutex_unlock(&s->prep.mu);
}

static void prep_stop(store_t *s)
{
    if (s->prep.state != 1)
        return;
    pthread_mutex_lock(&s->prep.mu);
    s->prep.stop = 1;
    pthread_cond_broadcast(&s->prep.cv);
    pthread_mutex_unlock(&s->prep.mu);
    pthread_join(s->prep.th, NULL);
    s->prep.state = 0;
}

/*
 * Appends the batch's changes (the forms the map holds: sealed values,
 * their log records) and the revisions it moves the store between to the
 * log, and syncs it: from here the batch is durable. 0, WAL_EFULL, or
 * -errno.
 */
static int wal_log(store_t *s, struct store_op *ops, uint64_t r, uint64_t compacted)
{
    struct buf *b = &s->walrec;
    wal_rec_start(b);
    for (struct store_op *op = ops; op; op = op->next_) {
        struct wal_entry e = {.key = op->key, .key_len = op->key_len};
        if (op->type_ > 0) {
            e.kind = op->type_;
            e.rev = op->rev_;
            if (op->type_ != STORE_DELETE) {
                e.val = op->sval_ ? op->sval_ : op->val_;
                e.val_len = op->sval_ ? op->sval_len_ : op->val_len_;
            }
            e.prev = op->sprev_ ? op->sprev_ : op->prev_;
            e.prev_len = op->sprev_ ? op->sprev_len_ : op->prev_len_;
        } else if (op->sval_) {
            e.kind = WAL_OBJ;
            e.val = op->sval_;
            e.val_len = op->sval_len_;
        } else {
            continue;
        }
        wal_rec_add(b, &e);
    }
    wal_rec_pack(b, &s->walpack);
    wal_rec_finish(b, wal_epoch(s->wal), s->crev, r, compacted);
    return wal_append(s->wal, b->p, b->len);
}

/*
 * Room for a checkpoint: its copy (at most the map's used size) and the
 * map's growth after it, with a margin. Below that the store runs direct.
 */
static int checkpoint_fits(store_t *s)
{
    struct statvfs sv;
    MDB_envinfo info;
    if (statvfs(s->dir, &sv) < 0)
        return 1;
    mdb_env_info(s->env, &info);
    uint64_t used = ((uint64_t)info.me_last_pgno + 1) * s->psize;
    return (uint64_t)sv.f_bavail * sv.f_frsize >= 2 * used + ((uint64_t)4 << 20);
}

/*
 * Direct mode, when the disk has no room for a checkpoint's copy: the map
 * synced, then every commit durable in the map itself (LMDB's two syncs,
 * as without a log); the log's epoch 0 says the map is the state, so
 * snap.mdb can go and give its space back. 0 or an errno or LMDB code.
 */
static int enter_direct(store_t *s)
{
    int rc = mdb_env_sync(s->env, 1);
    if (!rc)
        rc = mdb_env_set_flags(s->env, MDB_NOSYNC, 0);
    if (!rc)
        rc = -wal_abandon(s->wal);
    if (rc) {
        log_err("store: %s: cannot make the map durable without the log: %s", s->dir,
                mdb_strerror(rc));
        return rc;
    }
    char *snap = xasprintf("%s/snap.mdb", s->dir);
    unlink(snap);
    free(snap);
    s->direct = 1;
    log_warn("store: %s: no room for a checkpoint: commits now sync the map itself (slower) "
             "until the disk has room again",
             s->dir);
    return 0;
}

/* A checkpoint, then the map unsynced again behind the log. 0 or a code (logged). */
static int leave_direct(store_t *s)
{
    int rc = checkpoint(s);
    if (!rc && (rc = mdb_env_set_flags(s->env, MDB_NOSYNC, 1)))
        log_err("store: mdb_env_set_flags: %s", mdb_strerror(rc));
    if (!rc) {
        s->direct = 0;
        log_info("store: %s: the write-ahead log is on again", s->dir);
    }
    return rc;
}

/*
 * A checkpoint if the disk has room for it, else direct mode. A map in
 * memory cannot be made durable by syncing it: only the checkpoint then.
 */
static int checkpoint_or_direct(store_t *s)
{
    if (s->map_dir != s->dir)
        return checkpoint(s);
    if (checkpoint_fits(s) && checkpoint(s) == 0)
        return 0;
    return enter_direct(s);
}

/* After WAL_EFULL: a checkpoint empties the log; an empty one grows to hold the record. 0 or an
 * errno. */
static int wal_make_room(store_t *s)
{
    if (wal_used(s->wal) > 0)
        return checkpoint_or_direct(s);
    int rc = -wal_grow(s->wal, wal_rec_raw_len(s->walrec.p, s->walrec.len));
    if (rc)
        log_err("store: grow %s: %s", wal_path(s->wal), strerror(rc));
    return rc;
}

/*
 * The map refused a batch the log already holds (mdb_txn_commit failed
 * with rc): the record is taken back, or the store is broken (a restart
 * would replay what clients were told failed).
 */
static void wal_undo(store_t *s)
{
    int wrc = wal_revoke(s->wal);
    if (wrc) {
        log_err("store: %s: cannot take back a record the map refused: %s; stopping writes",
                wal_path(s->wal), strerror(-wrc));
        pthread_mutex_lock(&s->mu);
        s->broken = 1;
        pthread_mutex_unlock(&s->mu);
    }
}

/* Fails every op of the list that has no own apply error with err, and posts them. */
static void fail_ops(store_t *s, struct store_op *ops, int err)
{
    struct store_batch *b = xcalloc(1, sizeof(*b));
    b->ops = ops;
    b->err = err;
    b->rev = s->crev;
    b->compacted = s->ccompacted;
    post_batch(s, b);
}

/*
 * Commits ops (n of them, linked by next_) as one transaction and posts the
 * result to the loop. Returns 0 or the batch's error. On the loop thread
 * (inl, one op, the commit thread idle: store_submit_local), whatever would
 * wait for the loop or hold it long (growing the map, a checkpoint, a
 * compaction step) is left to the commit thread instead: COMMIT_DEFER,
 * nothing committed or posted, the op's apply result kept for the replay.
 */
static int commit_ops(store_t *s, struct store_op *ops, int n, int inl)
{
    int tries = 0, rc;
    const char *what;
    for (;;) {
        MDB_txn *txn;
        uint64_t r = s->crev, compacted = s->ccompacted;
        int changed = 0;
        int64_t t0;
        struct store_op *op;
        what = "mdb_txn_begin";
        if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)))
            goto fail;

        uint64_t margin = s->keep / 8 < 1024 ? s->keep / 8 : 1024;
        if (s->crev > s->ccompacted + s->keep + margin) {
            if (inl) {
                mdb_txn_abort(txn);
                return COMMIT_DEFER;
            }
            what = "compact";
            rc = compact_step(s, txn, s->crev - s->keep, (size_t)n + 1024, &compacted);
            if (rc)
                goto abort;
            changed = compacted != s->ccompacted;
        }
        what = "put";
        for (op = ops; op; op = op->next_)
            if ((rc = write_op(s, txn, op, &r, &compacted, &changed)))
                goto abort;
        if (r != s->crev || changed) {
            changed = 1;
            if ((rc = meta_put(txn, s->dbi_meta, "rev", r)))
                goto abort;
        }
        if (compacted != s->ccompacted && (rc = meta_put(txn, s->dbi_meta, "compacted", compacted)))
            goto abort;
        if (!changed) {
            /* Nothing written: the ops decided on state that is already durable. */
            mdb_txn_abort(txn);
        } else {
            t0 = mono_ns();
            int prep = inl ? 0 : prep_start(s, ops, n);
            if (s->wal && !s->direct) {
                what = "write-ahead log";
                rc = wal_log(s, ops, r, compacted);
                if (rc) {
                    prep_join(s, prep);
                    prep = 0;
                }
                if (rc == WAL_EFULL && inl) {
                    mdb_txn_abort(txn);
                    return COMMIT_DEFER;
                }
                if (rc == WAL_EFULL && tries++ < STORE_GROW_TRIES) {
                    mdb_txn_abort(txn);
                    if ((rc = wal_make_room(s)))
                        goto fail;
                    continue; /* the batch again, with its ops' results */
                }
                if (rc)
                    rc = rc == WAL_EFULL ? ENOSPC : -rc;
                if (rc)
                    goto abort;
            }
            what = "mdb_txn_commit";
            rc = mdb_txn_commit(txn);
            prep_join(s, prep);
            if (rc && s->wal && !s->direct)
                wal_undo(s);
            if (rc)
                goto fail;
            int64_t dt = mono_ns() - t0;
            MDB_envinfo info;
            mdb_env_info(s->env, &info);
            pthread_mutex_lock(&s->mu);
            s->st.commits++;
            s->st.ops += (uint64_t)n;
            s->st.fsync_ns_total += (uint64_t)dt;
            s->last_commit_ns = dt;
            if ((uint64_t)n > s->st.batch_max)
                s->st.batch_max = (uint64_t)n;
            s->st.map_size = info.me_mapsize;
            s->st.map_used = ((uint64_t)info.me_last_pgno + 1) * s->psize;
            s->st.rev = r;
            s->st.compacted = compacted;
            if (s->wal && !s->direct) {
                s->st.wal_rec_bytes += s->walrec.len;
                s->st.wal_write_bytes = wal_written(s->wal);
                s->st.wal_size = wal_size(s->wal);
            }
            pthread_mutex_unlock(&s->mu);
            s->mapsize = info.me_mapsize;
            s->ncommits++;
        }
        s->crev = r;
        s->ccompacted = compacted;
        struct store_batch *b = xcalloc(1, sizeof(*b));
        b->ops = ops;
        b->rev = r;
        b->compacted = compacted;
        post_batch(s, b);

        if (changed && !inl)
            maybe_grow(s);
        if (s->direct && s->ncommits % 64 == 0 && checkpoint_fits(s))
            leave_direct(s);
        return 0;

    abort:
        mdb_txn_abort(txn);
    fail:
        if (rc == MDB_MAP_FULL && inl)
            return COMMIT_DEFER;
        if (rc == MDB_MAP_FULL && tries++ < STORE_GROW_TRIES) {
            log_info("store: commit: %s: %s; growing the map", what, mdb_strerror(rc));
            if (thread_grow(s, s->mapsize * 2, 1) == 0)
                continue;
        }
        if (rc == MDB_TXN_FULL && n > 1) {
            /* Too many dirty pages for one txn: commit the halves in turn. */
            struct store_op *second = ops;
            int half = n / 2;
            for (int i = 1; i < half; i++)
                second = second->next_;
            struct store_op *rest = second->next_;
            second->next_ = NULL;
            int err = commit_ops(s, ops, half, 0);
            if (err) {
                fail_ops(s, rest, err);
                return err;
            }
            /* ops past the split that already ran apply saw the first half: still exact */
            return commit_ops(s, rest, n - half, 0);
        }
        break;
    }
    int err =
        rc == MDB_MAP_FULL || rc == MDB_TXN_FULL || errno_is_full(rc) ? STORE_EFULL : STORE_EIO;
    if (err == STORE_EFULL)
        snprintf(s->full_reason, sizeof(s->full_reason), "%s",
                 rc == MDB_MAP_FULL   ? "the LMDB map is full and could not grow"
                 : rc == MDB_TXN_FULL ? "the write transaction grew too large"
                                      : "no space left on the disk of the data directory");
    log_err("store: commit: %s: %s (%d ops failed with %s%s)", what, mdb_strerror(rc), n,
            err == STORE_EFULL ? "STORE_EFULL" : "STORE_EIO",
            errno_is_full(rc) ? "; is the disk full?" : "");
    /* The next transaction starts over from the committed state. */
    for (struct store_op *op = ops; op; op = op->next_)
        if (op->type_ > 0)
            op_reset_results(op);
    fail_ops(s, ops, err);
    return err;
}

static void *commit_thread(void *arg)
{
    store_t *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->q_head && !s->stopping) {
            s->thread_idle = 1;
            pthread_cond_wait(&s->cv_thread, &s->mu);
            s->thread_idle = 0;
        }
        if (!s->q_head) {
            s->thread_exited = 1;
            notify_loop_locked(s);
            pthread_mutex_unlock(&s->mu);
            return NULL;
        }
        struct store_op *ops = s->q_head, *last = ops;
        int n = 1;
        if (ops->flags & STORE_OP_RESET) {
            /* a snapshot: all of it, in one transaction, once all of it is queued */
            while (!(last->flags & STORE_OP_SNAP_END) && last->next_) {
                last = last->next_;
                n++;
            }
            if (!(last->flags & STORE_OP_SNAP_END) && !s->stopping) {
                s->thread_idle = 1;
                pthread_cond_wait(&s->cv_thread, &s->mu);
                s->thread_idle = 0;
                pthread_mutex_unlock(&s->mu);
                continue;
            }
        }
        /* a snapshot ends a batch and starts one of its own */
        while (n < s->max_batch && last->next_ && !(last->flags & STORE_OP_SNAP_END) &&
               !(last->next_->flags & STORE_OP_RESET)) {
            last = last->next_;
            n++;
        }
        s->q_head = last->next_;
        if (!s->q_head)
            s->q_tail = NULL;
        last->next_ = NULL;
        int broken = s->broken;
        pthread_mutex_unlock(&s->mu);
        if (broken)
            fail_ops(s, ops, STORE_EIO);
        else
            commit_ops(s, ops, n, 0);
    }
}

/* ---- loop side ---- */

static void deliver(store_t *s, struct store_batch *b)
{
    struct store_change ch;
    struct store_op *op, *next;
    if (!b->err && s->listener) {
        for (op = b->ops; op; op = op->next_) {
            if (op->flags & STORE_OP_RESET) {
                ch = (struct store_change){.rev = op->rev, .type = STORE_RESYNC};
                s->listener(&ch, s->listener_arg);
            }
            if (op->type_ <= 0 || op->err_ || (op->flags & STORE_OP_NOLOG))
                continue;
            if (op->opaque_) {
                log_err("store: %.*s: revision %llu not shown to watchers: a value of it does "
                        "not decrypt",
                        (int)op->key_len, op->key, (unsigned long long)op->rev_);
                continue;
            }
            ch = (struct store_change){op->rev_, op->type_,    op->key,   op->key_len,
                                       op->val_, op->val_len_, op->prev_, op->prev_len_};
            s->listener(&ch, s->listener_arg);
        }
    }
    for (op = b->ops; op; op = next) {
        next = op->next_;
        s->unanswered--;
        void *val = op->val_, *prev = op->prev_, *sval = op->sval_, *sprev = op->sprev_;
        int err = op->err_ ? op->err_ : b->err;
        if (!err && op->type_ > 0) {
            ch = (struct store_change){op->rev_, op->type_,    op->key,   op->key_len,
                                       op->val_, op->val_len_, op->prev_, op->prev_len_};
            op->done(op, 0, &ch);
        } else {
            op->done(op, err, NULL);
        }
        free(val);
        free(prev);
        free(sval);
        free(sprev);
    }
    if (!b->err) {
        s->rev = b->rev;
        s->compacted = b->compacted;
    }
    free(b);
    while (s->waits && s->waits->rev <= s->rev) {
        struct store_wait *w = s->waits;
        s->waits = w->next;
        w->fn(w->arg);
        free(w);
    }
}

/*
 * Takes and delivers the finished batches, then answers a grow request.
 * One pass only: batches that finish meanwhile have written a new byte to
 * the pipe, so the loop serves its sockets between passes.
 */
static void loop_drain(store_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->notified = 0;
    struct store_batch *b = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (b) {
        struct store_batch *next = b->next;
        deliver(s, b);
        b = next;
    }
    pthread_mutex_lock(&s->mu);
    loop_try_grow_locked(s);
    pthread_mutex_unlock(&s->mu);
}

static void pipe_cb(evutil_socket_t fd, short what, void *arg)
{
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    loop_drain(arg);
}

/* ---- open / close ---- */

static int mkdir_p(const char *dir)
{
    char *p = xstrdup(dir);
    int rc = 0;
    for (char *q = p + 1;; q++) {
        if (*q == '/' || *q == 0) {
            char c = *q;
            *q = 0;
            if (mkdir(p, 0700) < 0 && errno != EEXIST) {
                rc = -errno;
                free(p);
                return rc;
            }
            *q = c;
            if (!c)
                break;
        }
    }
    free(p);
    return rc;
}

/* How store_open finds the log. */
enum wal_state {
    WAL_FRESH = 1, /* no checkpoint yet: the map is what the old layout (or nothing) left */
    WAL_CLEAN,     /* closed cleanly: the map is synced, the log goes on */
    WAL_RECOVER,   /* not closed cleanly: the map is rebuilt from snap.mdb and the log */
};

/*
 * DIR/<from> (snap.mdb; data.mdb when a map moves to a map directory)
 * copied over MAP_DIR/data.mdb: a crash may have left the map torn, and a
 * map in memory is gone after a reboot.
 */
static int restore_snapshot(const char *dir, const char *map_dir, const char *from, char **err)
{
    char *snap = xasprintf("%s/%s", dir, from), *data = xasprintf("%s/data.mdb", map_dir),
         *tmp = xasprintf("%s/data.mdb.recover", map_dir);
    int in = open(snap, O_RDONLY | O_CLOEXEC), rc = 0, out = -1;
    if (in < 0) {
        *err = xasprintf("store: %s/wal says the map is to be rebuilt from %s, which is missing: "
                         "%s; restore the directory from a backup",
                         dir, snap, strerror(errno));
        rc = -1;
        goto out;
    }
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    char *buf = xmalloc(1 << 20);
    ssize_t n = out < 0 ? -1 : 0;
    while (n >= 0 && (n = read(in, buf, 1 << 20)) > 0)
        for (ssize_t w = 0, k; w < n; w += k)
            if ((k = write(out, buf + w, (size_t)(n - w))) < 0) {
                n = -1;
                break;
            }
    free(buf);
    /* no sync: until the log is marked clean again a crash restores from snap.mdb anew */
    if (n < 0 || rename(tmp, data) < 0) {
        *err = xasprintf("store: restore %s from %s: %s", data, snap, strerror(errno));
        unlink(tmp);
        rc = -1;
    }
out:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    free(snap);
    free(data);
    free(tmp);
    return rc;
}

/* Opens (or creates) DIR/wal and, after a crash, puts snap.mdb back as the map. */
static int open_wal(store_t *s, size_t size, enum wal_state *state, char **err)
{
    int created;
    uint64_t clean_rev;
    if (wal_open(&s->wal, s->dir, size ? size : STORE_DEFAULT_WAL, &created, err))
        return -1;
    if (created || wal_epoch(s->wal) == 0)
        *state = WAL_FRESH;
    else if (wal_clean(s->wal, &clean_rev) && s->map_dir == s->dir)
        *state = WAL_CLEAN;
    else
        *state = WAL_RECOVER; /* a map in memory is rebuilt at every start */
    if (*state == WAL_RECOVER)
        return restore_snapshot(s->dir, s->map_dir, "snap.mdb", err);
    /* a map the data directory held before it moved to a map directory */
    char *old = xasprintf("%s/data.mdb", s->dir), *cur = xasprintf("%s/data.mdb", s->map_dir);
    int rc = 0;
    if (s->map_dir != s->dir && access(old, F_OK) == 0 && access(cur, F_OK) < 0)
        rc = restore_snapshot(s->dir, s->map_dir, "data.mdb", err);
    free(old);
    free(cur);
    return rc;
}

/* Replays one log record into the map: its changes, log records and revisions, in one txn. */
static int replay_txn(store_t *s, const struct wal_rec *r, uint64_t *compacted)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return rc;
    struct wal_entry e;
    size_t pos = 0;
    *compacted = s->ccompacted;
    while (!rc && wal_rec_next(r, &pos, &e)) {
        MDB_val k = {e.key_len, (void *)e.key}, v = {e.val_len, (void *)e.val};
        if (e.kind == STORE_DELETE) {
            rc = mdb_del(txn, s->dbi_obj, &k, NULL);
            rc = rc == MDB_NOTFOUND ? 0 : rc;
        } else {
            rc = mdb_put(txn, s->dbi_obj, &k, &v, 0);
        }
        if (!rc && e.kind != WAL_OBJ)
            rc = put_logrec(s, txn, &e, 0);
    }
    if (!rc && r->compacted > *compacted)
        rc = compact_step(s, txn, r->compacted, SIZE_MAX, compacted);
    if (!rc)
        rc = meta_put(txn, s->dbi_meta, "rev", r->rev_after);
    if (!rc)
        rc = meta_put(txn, s->dbi_meta, "compacted", *compacted);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

static int replay_rec(const struct wal_rec *r, void *arg, char **err)
{
    store_t *s = arg;
    /* already in the copy (a crash between a checkpoint's copy and its new epoch) */
    if (r->rev_after < s->crev || (r->rev_after == s->crev && r->rev_before < s->crev))
        return 0;
    if (r->rev_before != s->crev) {
        *err = xasprintf("store: %s: a record for revisions %llu..%llu follows revision %llu: "
                         "the log does not continue %s/snap.mdb",
                         wal_path(s->wal), (unsigned long long)r->rev_before,
                         (unsigned long long)r->rev_after, (unsigned long long)s->crev, s->dir);
        return -1;
    }
    uint64_t compacted;
    int rc;
    for (int tries = 0;; tries++) {
        rc = replay_txn(s, r, &compacted);
        if (rc != MDB_MAP_FULL || tries >= STORE_GROW_TRIES)
            break;
        MDB_envinfo info;
        mdb_env_info(s->env, &info);
        if ((rc = mdb_env_set_mapsize(s->env, info.me_mapsize * 2)))
            break;
    }
    if (rc) {
        *err = xasprintf("store: %s: replay of revisions %llu..%llu: %s", wal_path(s->wal),
                         (unsigned long long)r->rev_before, (unsigned long long)r->rev_after,
                         mdb_strerror(rc));
        return -1;
    }
    s->crev = r->rev_after;
    s->ccompacted = compacted;
    return 0;
}

/* Finds the end of the log's records; *last is the revision they reach (the base if none). */
static int scan_last(const struct wal_rec *r, void *arg, char **err)
{
    (void)err;
    *(uint64_t *)arg = r->rev_after;
    return 0;
}

/*
 * Once the map is open: after a crash the log replayed into it (a full
 * disk does not stop the start: no checkpoint needed); on a fresh or
 * replaced map a checkpoint; after a clean close the log goes on where it
 * ends. Then the log is marked not clean: the map runs unsynced from here.
 */
static int start_wal(store_t *s, enum wal_state state, char **err)
{
    uint64_t rev0 = s->crev, last = wal_base(s->wal), clean_rev;
    int rc = 0;
    if (state == WAL_RECOVER) {
        if (s->crev < wal_base(s->wal)) {
            *err = xasprintf("store: %s/snap.mdb is at revision %llu, older than %s's start "
                             "(%llu)",
                             s->dir, (unsigned long long)s->crev, wal_path(s->wal),
                             (unsigned long long)wal_base(s->wal));
            return -1;
        }
        if (wal_scan(s->wal, replay_rec, s, err))
            return -1;
        if (s->map_dir != s->dir)
            log_info("store: map rebuilt in %s from %s/snap.mdb at revision %llu and the log up "
                     "to revision %llu",
                     s->map_dir, s->dir, (unsigned long long)rev0, (unsigned long long)s->crev);
        else
            log_info("store: %s was not closed cleanly: rebuilt from snap.mdb at revision %llu "
                     "and the log up to revision %llu",
                     s->dir, (unsigned long long)rev0, (unsigned long long)s->crev);
        /* the log goes on after its records: snap.mdb and all of them are the state */
    } else if (state == WAL_FRESH) {
        if (!(rc = mdb_env_sync(s->env, 1)))
            rc = checkpoint_or_direct(s);
    } else {
        if (wal_scan(s->wal, scan_last, &last, err))
            return -1;
        wal_clean(s->wal, &clean_rev);
        /* a map put back by hand (coracle-backup --restore) is not what the log continues */
        rc = clean_rev != s->crev || last != s->crev ? checkpoint_or_direct(s)
                                                     : -wal_mark(s->wal, 0, 0);
    }
    if (rc) {
        *err =
            xasprintf("store: %s: cannot start the write-ahead log: %s", s->dir, mdb_strerror(rc));
        return -1;
    }
    return 0;
}

int store_open(store_t **out, const struct store_opts *opts, struct event_base *base, char **err)
{
    store_t *s = xcalloc(1, sizeof(*s));
    const char *what = "";
    int rc;
    MDB_txn *txn = NULL;
    *out = NULL;
    if (err)
        *err = NULL;
    s->pipe_rd = s->pipe_wr = -1;
    s->lock_fd = -1;
    s->keep = opts->compact_keep ? opts->compact_keep : STORE_DEFAULT_KEEP;
    s->max_batch = opts->max_batch > 0 ? opts->max_batch : STORE_DEFAULT_BATCH;
    s->loop_commits = opts->loop_commits;
    s->base = base;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv_thread, NULL);
    pthread_cond_init(&s->cv_loop, NULL);

    if (!opts->dir || !*opts->dir) {
        if (err)
            *err = xstrdup("store: no data directory given");
        goto fail_free;
    }
    if ((rc = mkdir_p(opts->dir)) < 0) {
        if (err)
            *err = xasprintf("store: mkdir %s: %s", opts->dir, strerror(-rc));
        goto fail_free;
    }
    /* LMDB lets many processes write one environment; two apiservers on one
     * directory would each hand out the same revisions. A separate lock file
     * (not lock.mdb) keeps readers such as coracle-backup welcome. */
    char *lock_path = xasprintf("%s/writer.lock", opts->dir);
    s->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        if (err)
            *err = e == EWOULDBLOCK
                       ? xasprintf("store: %s is in use by another coracle-apiserver (%s is "
                                   "locked): stop it first",
                                   opts->dir, lock_path)
                       : xasprintf("store: %s: %s", lock_path, strerror(e));
        free(lock_path);
        goto fail_free;
    }
    free(lock_path);
    s->dir = xstrdup(opts->dir);
    s->map_dir = s->dir;
    if (opts->map_dir && *opts->map_dir && !opts->replica) {
        s->map_dir = xstrdup(opts->map_dir);
        if ((rc = mkdir_p(s->map_dir)) < 0) {
            if (err)
                *err = xasprintf("store: mkdir %s: %s", s->map_dir, strerror(-rc));
            goto fail_free;
        }
    }
    enum wal_state wstate = 0;
    if (!opts->replica && open_wal(s, opts->wal_size, &wstate, err))
        goto fail_free;
    what = "mdb_env_create";
    if ((rc = mdb_env_create(&s->env)))
        goto fail_mdb;
    what = "mdb_env_set_maxdbs";
    if ((rc = mdb_env_set_maxdbs(s->env, 5)))
        goto fail_mdb;
    what = "mdb_env_set_maxreaders";
    if ((rc = mdb_env_set_maxreaders(s->env, STORE_MAXREADERS)))
        goto fail_mdb;
    what = "mdb_env_set_mapsize";
    if ((rc = mdb_env_set_mapsize(s->env, opts->map_size ? opts->map_size : STORE_DEFAULT_MAP)))
        goto fail_mdb;
    what = "mdb_env_open";
    s->replica = opts->replica;
    s->enc = opts->enc;
    s->value_rev = opts->value_rev;
    /* the log makes commits durable: the map is synced at checkpoints and at close */
    if ((rc = mdb_env_open(s->env, s->map_dir,
                           MDB_NOTLS | MDB_NOSYNC | MDB_NORDAHEAD |
                               (s->replica ? MDB_WRITEMAP | MDB_MAPASYNC : 0),
                           0600)))
        goto fail_mdb;
    int dead = 0;
    mdb_reader_check(s->env, &dead);
    if (dead)
        log_info("store: cleared %d stale reader slot(s)", dead);
    MDB_stat est;
    mdb_env_stat(s->env, &est);
    s->psize = est.ms_psize;
    s->maxkey = (unsigned int)mdb_env_get_maxkeysize(s->env);

    what = "mdb_txn_begin";
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)))
        goto fail_mdb;
    what = "mdb_dbi_open";
    if ((rc = mdb_dbi_open(txn, "objects", MDB_CREATE, &s->dbi_obj)) ||
        (rc = mdb_dbi_open(txn, "log", MDB_CREATE, &s->dbi_log)) ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->dbi_meta)) ||
        (rc = mdb_dbi_open(txn, "prevs", MDB_CREATE, &s->dbi_prev)) ||
        (rc = mdb_dbi_open(txn, "refs", MDB_CREATE, &s->dbi_refs)))
        goto fail_mdb;
    uint64_t schema;
    what = "read meta";
    rc = store_meta_get(txn, s->dbi_meta, "schema", &schema);
    if (rc == MDB_NOTFOUND) {
        what = "write meta";
        if ((rc = meta_put(txn, s->dbi_meta, "schema", STORE_SCHEMA)) ||
            (rc = meta_put(txn, s->dbi_meta, "rev", 0)) ||
            (rc = meta_put(txn, s->dbi_meta, "compacted", 0)))
            goto fail_mdb;
        s->crev = s->ccompacted = 0;
    } else if (rc) {
        goto fail_mdb;
    } else if (schema < 1 || schema > STORE_SCHEMA) {
        if (err)
            *err = xasprintf("store: %s: schema %llu, this program knows %d", opts->dir,
                             (unsigned long long)schema, STORE_SCHEMA);
        goto fail_env;
    } else if ((rc = store_meta_get(txn, s->dbi_meta, "rev", &s->crev)) ||
               (rc = store_meta_get(txn, s->dbi_meta, "compacted", &s->ccompacted))) {
        goto fail_mdb;
    } else if (schema < STORE_SCHEMA) {
        /* 1: every record holds its previous value; they still read the same */
        what = "write meta";
        if ((rc = meta_put(txn, s->dbi_meta, "schema", STORE_SCHEMA)))
            goto fail_mdb;
    }
    what = "mdb_txn_commit";
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc)
        goto fail_mdb;

    /* An old environment may be fuller than the map asked for: grow now, no txn is open. */
    for (;;) {
        MDB_envinfo info;
        mdb_env_info(s->env, &info);
        s->mapsize = info.me_mapsize;
        uint64_t used = ((uint64_t)info.me_last_pgno + 1) * s->psize;
        s->st.map_size = s->mapsize;
        s->st.map_used = used;
        if (used * 4 <= (uint64_t)s->mapsize * 3)
            break;
        what = "mdb_env_set_mapsize";
        if ((rc = mdb_env_set_mapsize(s->env, s->mapsize * 2)))
            goto fail_mdb;
    }
    if (s->wal && start_wal(s, wstate, err))
        goto fail_env;
    s->rev = s->st.rev = s->crev;
    s->compacted = s->st.compacted = s->ccompacted;

    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        if (err)
            *err = xasprintf("store: pipe: %s", strerror(errno));
        goto fail_env;
    }
    s->pipe_rd = fds[0];
    s->pipe_wr = fds[1];
    s->ev = event_new(base, s->pipe_rd, EV_READ | EV_PERSIST, pipe_cb, s);
    if (!s->ev || event_add(s->ev, NULL) < 0) {
        if (err)
            *err = xstrdup("store: cannot watch the wake-up pipe");
        goto fail_env;
    }
    if ((rc = pthread_create(&s->thread, NULL, commit_thread, s))) {
        if (err)
            *err = xasprintf("store: pthread_create: %s", strerror(rc));
        goto fail_env;
    }
    s->thread_started = 1;
    log_info("store: opened %s at revision %llu (compacted %llu, map %zu bytes)", opts->dir,
             (unsigned long long)s->crev, (unsigned long long)s->ccompacted, s->mapsize);
    *out = s;
    return 0;

fail_mdb:
    if (err)
        *err = xasprintf("store: %s: %s: %s", opts->dir, what, mdb_strerror(rc));
fail_env:
    if (txn)
        mdb_txn_abort(txn);
    if (s->ev)
        event_free(s->ev);
    if (s->pipe_rd >= 0)
        close(s->pipe_rd);
    if (s->pipe_wr >= 0)
        close(s->pipe_wr);
    if (s->env)
        mdb_env_close(s->env);
fail_free:
    wal_close(s->wal);
    buf_free(&s->walrec);
    buf_free(&s->walpack);
    if (s->map_dir != s->dir)
        free(s->map_dir);
    free(s->dir);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    pthread_cond_destroy(&s->cv_loop);
    pthread_cond_destroy(&s->cv_thread);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return STORE_EIO;
}

/*
 * A clean close: the map synced, then the log marked clean (the next open
 * trusts the map). A map in memory is checkpointed instead, so that the
 * next start, which rebuilds it, has no log to replay.
 */
static void close_wal(store_t *s)
{
    if (!s->wal)
        return;
    if (s->map_dir != s->dir) {
        if (!s->broken && wal_used(s->wal) > 0)
            checkpoint(s);
        wal_close(s->wal);
        buf_free(&s->walrec);
        buf_free(&s->walpack);
        return;
    }
    int rc = s->broken ? 0 : mdb_env_sync(s->env, 1);
    if (!s->broken && !rc)
        rc = -wal_mark(s->wal, 1, s->crev);
    if (rc)
        log_err("store: close %s: %s (the next start replays the log)", s->dir, mdb_strerror(rc));
    wal_close(s->wal);
    buf_free(&s->walrec);
    buf_free(&s->walpack);
}

void store_close(store_t *s)
{
    if (!s)
        return;
    if (s->remote.close)
        s->remote.close(s->remote.impl);
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    s->closing = 1;
    pthread_cond_signal(&s->cv_thread);
    /* Drive the thread to the end: deliver its batches, answer its grow requests. */
    for (;;) {
        struct store_batch *b = s->done_head;
        s->done_head = s->done_tail = NULL;
        if (b) {
            pthread_mutex_unlock(&s->mu);
            while (b) {
                struct store_batch *next = b->next;
                deliver(s, b);
                b = next;
            }
            pthread_mutex_lock(&s->mu);
            continue;
        }
        loop_try_grow_locked(s);
        if (s->thread_exited)
            break;
        pthread_cond_wait(&s->cv_loop, &s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    prep_stop(s);
    if (s->readers)
        log_err("store: closed with %d read transaction(s) still open", s->readers);
    while (s->rtxn_free) {
        struct store_rtxn *t = s->rtxn_free;
        s->rtxn_free = t->next_free;
        mdb_txn_abort(t->txn);
        free(t->plain);
        free(t);
    }
    event_free(s->ev);
    close(s->pipe_rd);
    close(s->pipe_wr);
    close_wal(s);
    mdb_env_close(s->env);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    if (s->remote.free)
        s->remote.free(s->remote.impl);
    while (s->waits) {
        struct store_wait *w = s->waits;
        s->waits = w->next;
        free(w);
    }
    pthread_cond_destroy(&s->cv_loop);
    pthread_cond_destroy(&s->cv_thread);
    pthread_mutex_destroy(&s->mu);
    if (s->map_dir != s->dir)
        free(s->map_dir);
    free(s->dir);
    free(s);
}

uint64_t store_rev(const store_t *s)
{
    return s->rev;
}

uint64_t store_compacted(const store_t *s)
{
    return s->compacted;
}

bool store_is_replica(const store_t *s)
{
    return s->replica != 0;
}

struct store_wait *store_wait_rev(store_t *s, uint64_t rev, void (*fn)(void *arg), void *arg)
{
    if (rev <= s->rev) {
        fn(arg);
        return NULL;
    }
    struct store_wait *w = xcalloc(1, sizeof(*w)), **pp = &s->waits;
    w->rev = rev;
    w->fn = fn;
    w->arg = arg;
    while (*pp && (*pp)->rev <= rev)
        pp = &(*pp)->next;
    w->next = *pp;
    *pp = w;
    return w;
}

void store_wait_cancel(store_t *s, struct store_wait *w)
{
    for (struct store_wait **pp = &s->waits; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            free(w);
            return;
        }
}

void store_set_listener(store_t *s, store_listener_fn fn, void *arg)
{
    s->listener = fn;
    s->listener_arg = arg;
}

void store_set_remote(store_t *s, const struct store_remote *r)
{
    s->remote = *r;
}

const char *store_unhealthy(const store_t *s)
{
    if (s->broken)
        return "the store is broken (a failed map resize): restart the apiserver";
    return s->remote.unhealthy ? s->remote.unhealthy(s->remote.impl) : NULL;
}

int store_submit(store_t *s, struct store_op *op)
{
    if (s->remote.submit)
        return s->remote.submit(s->remote.impl, op);
    return store_submit_local(s, op);
}

/*
 * mu held, loop thread: whether the op being submitted is committed right
 * here instead of on the commit thread. Only for a write alone (none other
 * unanswered) of the apiserver's own (no replica flags, no revision given:
 * a snapshot's ops must queue together), the commit thread asleep with
 * nothing queued (so it holds no transaction and touches nothing of its own
 * until the loop queues work), the log on and the map well short of full.
 * One create then wakes no other thread: the loop applies, appends and
 * commits, and its answer waits for the next turn of the loop (the pipe),
 * as from the commit thread. While the log's write is under way the loop
 * serves nothing else: one sync, and only while syncs are quick (the last
 * commit under STORE_LOOP_COMMIT_NS; a slow one sends the next to the
 * commit thread, whose commits then measure again).
 */
static int commit_here_locked(store_t *s, const struct store_op *op)
{
    return s->loop_commits && op->flags == 0 && op->rev == 0 && s->unanswered == 1 &&
           s->thread_idle && !s->q_head && !s->grow_pending && !s->broken && s->readers == 0 &&
           s->wal && !s->direct && s->last_commit_ns < STORE_LOOP_COMMIT_NS &&
           s->st.map_used * 10 < s->st.map_size * 7;
}

int store_submit_local(store_t *s, struct store_op *op)
{
    op->next_ = NULL;
    op->err_ = 0;
    op->rev_ = 0;
    op->type_ = 0;
    op->val_ = op->prev_ = op->sval_ = op->sprev_ = NULL;
    op->val_len_ = op->prev_len_ = op->sval_len_ = op->sprev_len_ = 0;
    op->opaque_ = 0;
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        return STORE_ECLOSED;
    }
    s->unanswered++;
    if (commit_here_locked(s, op)) {
        pthread_mutex_unlock(&s->mu);
        int rc = commit_ops(s, op, 1, 1);
        pthread_mutex_lock(&s->mu);
        if (rc != COMMIT_DEFER) {
            s->st.loop_commits++;
            pthread_mutex_unlock(&s->mu);
            return 0;
        }
    }
    if (s->q_tail)
        s->q_tail->next_ = op;
    else
        s->q_head = op;
    s->q_tail = op;
    if (s->thread_idle) {
        s->thread_idle = 0; /* one wake-up is enough */
        pthread_cond_signal(&s->cv_thread);
    }
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* ---- reads ---- */

int store_read_begin(store_t *s, store_rtxn_t **out)
{
    struct store_rtxn *t = s->rtxn_free;
    int rc;
    *out = NULL;
    if (s->broken)
        return STORE_EIO;
    if (t) {
        s->rtxn_free = t->next_free;
        s->n_rtxn_free--;
        if ((rc = mdb_txn_renew(t->txn))) {
            log_err("store: mdb_txn_renew: %s", mdb_strerror(rc));
            mdb_txn_abort(t->txn);
            free(t->plain);
            free(t);
            return STORE_EIO;
        }
    } else {
        t = xcalloc(1, sizeof(*t));
        t->s = s;
        if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t->txn))) {
            log_err("store: read: mdb_txn_begin: %s", mdb_strerror(rc));
            free(t);
            return STORE_EIO;
        }
    }
    size_t id = mdb_txn_id(t->txn);
    if (id != s->meta_txnid || !id) {
        if ((rc = store_meta_get(t->txn, s->dbi_meta, "rev", &s->meta_rev)) ||
            (rc = store_meta_get(t->txn, s->dbi_meta, "compacted", &s->meta_compacted))) {
            log_err("store: read meta: %s", mdb_strerror(rc));
            mdb_txn_abort(t->txn);
            free(t->plain);
            free(t);
            return STORE_EIO;
        }
        s->meta_txnid = id;
    }
    t->rev = s->meta_rev;
    t->compacted = s->meta_compacted;
    s->readers++;
    *out = t;
    return 0;
}

void store_read_end(store_rtxn_t *t)
{
    if (!t)
        return;
    store_t *s = t->s;
    for (size_t i = 0; i < t->n_plain; i++)
        free(t->plain[i]);
    t->n_plain = 0;
    if (s->n_rtxn_free < STORE_RTXN_CACHE) {
        mdb_txn_reset(t->txn);
        t->next_free = s->rtxn_free;
        s->rtxn_free = t;
        s->n_rtxn_free++;
    } else {
        mdb_txn_abort(t->txn);
        free(t->plain);
        free(t);
    }
    if (--s->readers == 0) {
        pthread_mutex_lock(&s->mu);
        loop_try_grow_locked(s);
        pthread_mutex_unlock(&s->mu);
    }
}

uint64_t store_rtxn_rev(const store_rtxn_t *t)
{
    return t->rev;
}

int store_get(store_rtxn_t *t, const char *key, size_t key_len, const void **val, size_t *val_len)
{
    MDB_val k = {key_len, (void *)key}, v;
    int rc = mdb_get(t->txn, t->s->dbi_obj, &k, &v);
    if (rc == MDB_NOTFOUND || rc == MDB_BAD_VALSIZE)
        return STORE_ENOTFOUND;
    if (rc) {
        log_err("store: get: %s", mdb_strerror(rc));
        return STORE_EIO;
    }
    void *owned;
    if ((rc = open_stored(t->s, key, key_len, v.mv_data, v.mv_size, val, val_len, &owned, NULL)))
        return rc;
    rtxn_keep(t, owned);
    return 0;
}

/* LMDB's default key order: memcmp, then length. */
static int key_cmp(const void *a, size_t al, const void *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : al < bl ? -1 : al > bl;
}

int store_scan(store_rtxn_t *t, const char *prefix, size_t prefix_len, const char *start_after,
               size_t start_after_len, store_scan_fn fn, void *arg)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, t->s->dbi_obj, &c), ret = 0;
    if (rc) {
        log_err("store: scan: mdb_cursor_open: %s", mdb_strerror(rc));
        return STORE_EIO;
    }
    MDB_val k = {prefix_len, (void *)prefix}, v;
    if (start_after && key_cmp(start_after, start_after_len, prefix, prefix_len) > 0) {
        k.mv_size = start_after_len;
        k.mv_data = (void *)start_after;
    }
    if (k.mv_size == 0 || k.mv_size > t->s->maxkey)
        rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    else
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (start_after && key_cmp(k.mv_data, k.mv_size, start_after, start_after_len) <= 0)
            continue;
        if (k.mv_size < prefix_len || memcmp(k.mv_data, prefix, prefix_len) != 0) {
            if (key_cmp(k.mv_data, k.mv_size, prefix, prefix_len) > 0)
                break;
            continue;
        }
        const void *pv;
        size_t pl;
        void *owned;
        if ((ret = open_stored(t->s, k.mv_data, k.mv_size, v.mv_data, v.mv_size, &pv, &pl, &owned,
                               NULL)))
            break;
        rtxn_keep(t, owned);
        if (fn(k.mv_data, k.mv_size, pv, pl, arg))
            break;
    }
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND) {
        log_err("store: scan: %s", mdb_strerror(rc));
        return STORE_EIO;
    }
    return ret;
}

/*
 * ch->prev of a record that refers to it: the new value of the change at
 * prev_rev, from its log record, or from "prevs" once that is compacted.
 * 0 or STORE_EIO.
 */
static int logrec_prev(struct store_rtxn *t, uint64_t prev_rev, struct store_change *ch)
{
    uint8_t kb[8];
    be64_put(kb, prev_rev);
    MDB_val k = {8, kb}, v;
    int rc = mdb_get(t->txn, t->s->dbi_log, &k, &v);
    if (rc == 0) {
        struct store_change pc;
        uint64_t pr;
        if (logrec_decode(prev_rev, &v, &pc, &pr) || !pc.val || pc.key_len != ch->key_len ||
            memcmp(pc.key, ch->key, ch->key_len))
            return STORE_EIO;
        ch->prev = pc.val;
        ch->prev_len = pc.val_len;
        return 0;
    }
    if (rc == MDB_NOTFOUND && (rc = mdb_get(t->txn, t->s->dbi_prev, &k, &v)) == 0) {
        ch->prev = v.mv_data;
        ch->prev_len = v.mv_size;
        return 0;
    }
    return STORE_EIO;
}

/* A log record's values opened in place (the plain copies kept by t). */
static int open_change(struct store_rtxn *t, struct store_change *ch)
{
    void *owned;
    int rc;
    if (ch->val) {
        if ((rc = open_stored(t->s, ch->key, ch->key_len, ch->val, ch->val_len, &ch->val,
                              &ch->val_len, &owned, NULL)))
            return rc;
        rtxn_keep(t, owned);
    }
    if (ch->prev) {
        if ((rc = open_stored(t->s, ch->key, ch->key_len, ch->prev, ch->prev_len, &ch->prev,
                              &ch->prev_len, &owned, NULL)))
            return rc;
        rtxn_keep(t, owned);
    }
    return 0;
}

int store_log_scan(store_rtxn_t *t, uint64_t after, store_log_fn fn, void *arg)
{
    if (after < t->compacted)
        return STORE_ECOMPACTED;
    if (after >= t->rev)
        return 0;
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, t->s->dbi_log, &c), ret = 0;
    if (rc) {
        log_err("store: log scan: mdb_cursor_open: %s", mdb_strerror(rc));
        return STORE_EIO;
    }
    uint8_t kb[8];
    be64_put(kb, after + 1);
    MDB_val k = {8, kb}, v;
    uint64_t want = after + 1;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        uint64_t r = k.mv_size == 8 ? be64_get(k.mv_data) : 0;
        if (r > t->rev)
            break;
        struct store_change ch;
        uint64_t pr;
        /* a replica's log skips the revisions the other store spent elsewhere */
        if (r < want || (r != want && !t->s->replica) || logrec_decode(r, &v, &ch, &pr) ||
            (pr && logrec_prev(t, pr, &ch))) {
            log_err("store: log record %llu is corrupt (expected %llu)", (unsigned long long)r,
                    (unsigned long long)want);
            ret = STORE_EIO;
            break;
        }
        want = r + 1;
        if ((ret = open_change(t, &ch)))
            break;
        if (fn(&ch, arg))
            break;
    }
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND) {
        log_err("store: log scan: %s", mdb_strerror(rc));
        ret = STORE_EIO;
    }
    return ret;
}

/* ---- stats, backup ---- */

void store_get_stats(store_t *s, struct store_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
    out->rev = s->rev;
    out->compacted = s->compacted;
}

int store_backup(store_t *s, const char *path, char **err)
{
    char *tmp = xasprintf("%s.tmp", path);
    int fd = -1, rc = STORE_EIO;
    if (err)
        *err = NULL;
    if (s->broken) {
        if (err)
            *err = xstrdup("store: backup: the store is broken");
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (err)
            *err = xasprintf("store: backup: open %s: %s", tmp, strerror(errno));
        goto out;
    }
    int mrc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
    if (mrc) {
        if (err)
            *err = xasprintf("store: backup to %s: mdb_env_copyfd2: %s", path, mdb_strerror(mrc));
        rc = errno_is_full(mrc) ? STORE_EFULL : STORE_EIO;
        goto out;
    }
    if (fsync(fd) < 0) {
        if (err)
            *err = xasprintf("store: backup: fsync %s: %s", tmp, strerror(errno));
        rc = errno_is_full(errno) ? STORE_EFULL : STORE_EIO;
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) < 0) {
        if (err)
            *err = xasprintf("store: backup: rename %s to %s: %s", tmp, path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    free(tmp);
    return rc;
}
