/*
 * store: the apiserver's durable state in LMDB. One environment, five
 * named databases:
 *   objects  key "<resource>/<namespace>/<name>" -> the encoded object
 *   log      key big-endian uint64 revision -> a change record
 *            {type, key, object, previous object}, the previous object
 *            as the revision of the key's previous record when that is
 *            in the log (each value is stored once)
 *   prevs    key big-endian uint64 revision -> the object of a compacted
 *            record that a record still in the log refers to
 *   refs     key big-endian uint64 revision -> the revision of the record
 *            that refers to it
 *   meta     "rev" (current revision), "compacted" (oldest revision still
 *            replayable minus one), "schema"
 * An object and its log record are written in the same transaction, so a
 * revision is never half there.
 *
 * Writes go through a commit thread with group commit: every op submitted
 * while a commit is in flight joins the next write transaction, and one
 * durable commit (LMDB's default sync mode) serves them all. An op's
 * decision runs on the commit thread inside the write transaction (see
 * struct store_op.apply), so compare-and-set is exact; a write alone (none
 * other unanswered, the commit thread asleep) may be committed by the loop
 * thread itself, inside store_submit, sparing two thread wake-ups
 * (store_opts.loop_commits). Results
 * come back to the event loop (through a pipe) only once durable: first
 * the change listener sees each change in revision order, then each op's
 * done callback runs. Reads use their own read transactions on the loop thread
 * and never wait for writers.
 */
#ifndef CORACLE_STORE_H
#define CORACLE_STORE_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store_t;
typedef struct store_rtxn store_rtxn_t;

/* Error codes (negative returns). */
enum {
    STORE_OK = 0,
    STORE_ENOTFOUND = -1,  /* no such key */
    STORE_ECOMPACTED = -2, /* revision older than the compacted log */
    STORE_EFULL = -3,      /* map or disk full: write refused, reads still work */
    STORE_EIO = -4,        /* LMDB or file-system error (logged) */
    STORE_ECLOSED = -5,    /* store is shutting down */
    STORE_EUNAVAIL = -6,   /* the remote store (etcd) did not answer; store_unavail_reason */
    STORE_ETRANSFORM = -7, /* a stored value would not decrypt, or encrypt (logged, with why) */
    /* ops' apply functions may return their own codes below this */
    STORE_EAPP = -100,
};
const char *store_strerror(int err);
/* After a write failed with STORE_EFULL: why ("no space left on the disk of
 * the data directory", "the LMDB map is full and could not grow"). Loop thread. */
const char *store_full_reason(const store_t *s);
/* After a write failed with STORE_EUNAVAIL: what the remote store said. Loop thread. */
const char *store_unavail_reason(const store_t *s);

struct store_opts {
    const char *dir;       /* created if missing; holds data.mdb */
    size_t map_size;       /* initial map size, bytes (default 1 GiB); grows as needed */
    uint64_t compact_keep; /* log revisions kept behind the current one (default 100000) */
    int max_batch;         /* ops per write transaction at most (default 10000) */
    /*
     * A replica: this environment caches another store (etcd, see
     * store_etcd.h) and can be rebuilt from it, so commits are not synced
     * and go straight into the map (MDB_WRITEMAP: no write() per page);
     * ops carry the revisions the other store gave them (store_op.rev), and
     * the log may skip revisions.
     */
    int replica;
    /*
     * Encryption at rest (enc.h; NULL: none). The values of the resources
     * it names are sealed on their way into the map (objects and log) and
     * opened on every way out: store_get, store_scan, store_log_scan, the
     * listener, an apply's cur and the changes handed to done. Callers see
     * plain bytes only. Must outlive the store.
     */
    const struct enc *enc;
    /*
     * Bytes of DIR/wal, the write-ahead log that makes a commit durable
     * with one sync (default 64 MiB; less if the disk is short of it). A
     * full log triggers a checkpoint: the map copied to DIR/snap.mdb. Not
     * used by a replica.
     */
    size_t wal_size;
    /*
     * NULL: the map is DIR/data.mdb. Else the map (data.mdb, lock.mdb)
     * lives in this directory, meant to be in memory (a tmpfs): it is
     * rebuilt from DIR/snap.mdb and the log at every start and never
     * synced, a clean close checkpoints instead, and without room for a
     * checkpoint writes fail (no direct mode). An idle store then writes
     * only its log. DIR/data.mdb, if there is one, is the first map.
     */
    const char *map_dir;
    /*
     * The revision a stored value says it was written at (the apiserver:
     * metadata.resourceVersion), 0 if it says none. With it the log
     * stores a change's previous value as a reference to the record that
     * wrote it (checked byte for byte) instead of a copy. NULL: a copy.
     */
    uint64_t (*value_rev)(const void *val, size_t len);
    /*
     * A write alone may commit on the submitting (loop) thread, inside
     * store_submit (see there): its apply then runs on that thread too, so
     * an apply must never wait for the loop. 0: every op commits on the
     * commit thread.
     */
    int loop_commits;
};

/*
 * Opens (or creates) the store and starts its commit thread. Results are
 * delivered on base. Returns 0 or a negative code; *err (malloc'd) says why.
 */
int store_open(store_t **out, const struct store_opts *opts, struct event_base *base, char **err);
/*
 * Waits for queued ops to commit (their done callbacks run), stops the thread,
 * closes. Call it from the loop, not from a store callback, with every read
 * snapshot ended.
 */
void store_close(store_t *s);

/*
 * Last revision whose changes have been delivered to the loop (listener). It
 * advances once a batch's listener calls and done callbacks have all run.
 */
uint64_t store_rev(const store_t *s);
/* Revisions <= this are no longer in the log. */
uint64_t store_compacted(const store_t *s);
/* Whether the store is a replica of another (store_opts.replica: etcd). */
bool store_is_replica(const store_t *s);

/*
 * Calls fn(arg) on the loop once store_rev() >= rev: a read that must not
 * be older than a revision a client has seen elsewhere (another apiserver
 * on the same etcd) waits for the replica to get there. Returns a handle
 * for store_wait_cancel, or NULL after calling fn at once (already there).
 */
struct store_wait;
struct store_wait *store_wait_rev(store_t *s, uint64_t rev, void (*fn)(void *arg), void *arg);
/* Forgets w (fn does not run). */
void store_wait_cancel(store_t *s, struct store_wait *w);

/* ---- changes ---- */

enum store_change_type {
    STORE_PUT_NEW = 1,
    STORE_PUT_MOD = 2,
    STORE_DELETE = 3,
    /* listener only, no key: a replica was rebuilt (STORE_OP_RESET) at rev,
     * its log starts there; watchers must resume (or re-list) */
    STORE_RESYNC = 4,
};

struct store_change {
    uint64_t rev;
    enum store_change_type type;
    const char *key;
    size_t key_len;
    const void *val; /* new object bytes; NULL for DELETE */
    size_t val_len;
    const void *prev; /* previous object bytes; NULL for PUT_NEW */
    size_t prev_len;
};

/*
 * One listener (the watch hub) sees every committed change, in revision
 * order, on the loop thread, before the ops' done callbacks. The change's
 * bytes are valid only during the call.
 */
typedef void (*store_listener_fn)(const struct store_change *ch, void *arg);
void store_set_listener(store_t *s, store_listener_fn fn, void *arg);

/* ---- writes ---- */

struct store_op;
/*
 * Runs on the commit thread inside the write transaction. cur/cur_len is
 * the key's current value (NULL if absent). rev is the revision this op's
 * change will get. To write: set *out (malloc'd, the store frees it) and
 * *out_len; to delete: set *del = 1; to change nothing and succeed: leave
 * both. Return 0, or a negative code (use STORE_EAPP - n for your own) to
 * fail this op alone; other ops in the batch go on. Must be thread-safe:
 * touch only the op and the bytes given. apply runs exactly once per op
 * (a batch retried after the map grew reuses its result). *del = 1 on an
 * absent key fails the op with STORE_ENOTFOUND; *del wins over *out.
 */
typedef int (*store_apply_fn)(struct store_op *op, const void *cur, size_t cur_len, uint64_t rev,
                              void **out, size_t *out_len, int *del);
/*
 * Runs on the loop thread once the transaction is durable (or has failed:
 * err is STORE_EFULL / STORE_EIO for the whole batch, or the apply's
 * code). ch is the change made (NULL if none), valid during the call.
 */
typedef void (*store_done_fn)(struct store_op *op, int err, const struct store_change *ch);

/* store_op.flags, for replicas */
enum {
    /* write the object only: no log record, no listener call, the revision
     * not moved (loading a snapshot taken at one revision) */
    STORE_OP_NOLOG = 1,
    /* before this op, drop every object and log record and restart at
     * op.rev, compacted there too (a replica rebuilt from a snapshot) */
    STORE_OP_RESET = 2,
    /* set by a remote writer on the ops it takes: their apply may run
     * again (see store_submit), so it must leave the op's inputs as it
     * found them */
    STORE_OP_RERUN = 4,
    /* the last op of a snapshot: the ops from a STORE_OP_RESET to this one
     * commit in one transaction however many they are (queue them together),
     * so readers never see a replica half loaded */
    STORE_OP_SNAP_END = 8,
    /* the value apply gives is already in its stored form: written as it
     * is, not sealed (a remote value this store could not open, kept so
     * that reads of it fail as the remote store's would) and not shown to
     * the listener */
    STORE_OP_SEALED = 16,
};

struct store_op {
    char *key; /* owned by the caller; must live until done */
    size_t key_len;
    store_apply_fn apply;
    store_done_fn done;
    void *arg;
    /*
     * Replicas: the revision this op's change takes, above every earlier
     * one; an op that changes nothing still moves the store to it (a
     * progress mark). 0 on a store that hands out its own revisions.
     */
    uint64_t rev;
    int flags;
    /*
     * Optional: run once the op's change is decided (val_ holds the written
     * value), on a helper thread while the batch is made durable, so that
     * work on the result (an answer's encoding) waits for neither the
     * loop nor the commit thread. The batch joins it before its ops are
     * done; if the batch then fails, what it made goes unused. Not for a
     * write committed alone, nor on a store with a remote writer.
     */
    void (*prepare)(struct store_op *op);
    /* private to the store */
    struct store_op *next_;
    int err_;
    uint64_t rev_;
    int type_;
    void *val_;
    size_t val_len_;
    void *prev_;
    size_t prev_len_;
    void *sval_; /* val_ as stored when sealed, else NULL */
    size_t sval_len_;
    void *sprev_; /* prev_ as stored when it was opened, else NULL */
    size_t sprev_len_;
    int opaque_; /* a value of the change did not open: the listener does not see it */
};

/*
 * Queues op; it commits with the next batch. Returns 0 or STORE_ECLOSED (done
 * is not called). With store_opts.loop_commits, a write alone may be
 * applied and committed before this returns, on the calling thread (the op
 * must be complete when submitted);
 * done still runs later, from the loop, never inside store_submit. Keys
 * must be 1..511 bytes (LMDB's limit); a longer key fails the op with
 * STORE_EIO. On a store with a remote writer (below) the op goes there;
 * apply may then run more than once (another apiserver changed the key
 * first: apply runs again on the newer value), so each run must decide
 * from the op's inputs and cur alone.
 */
int store_submit(store_t *s, struct store_op *op);

/*
 * A remote writer: store_submit hands ops to submit (etcd's transactions,
 * store_etcd.c), which feeds the changes it learns back through
 * store_submit_local with their revisions, and completes the ops itself.
 * Set once, right after store_open, on a replica.
 */
struct store_remote {
    int (*submit)(void *impl, struct store_op *op);
    void (*close)(void *impl); /* first in store_close: stop, answer what is queued */
    void (*free)(void *impl);  /* last, once this environment's own ops are done */
    const char *(*unavail_reason)(void *impl);
    /* NULL while the remote store is reachable and followed, else why not (optional) */
    const char *(*unhealthy)(void *impl);
    void *impl;
};
void store_set_remote(store_t *s, const struct store_remote *r);
/* NULL if the store can serve (a remote one reachable), else why not: for /readyz. */
const char *store_unhealthy(const store_t *s);
/* Queues op on this environment itself (a replica's feed). As store_submit without a remote. */
int store_submit_local(store_t *s, struct store_op *op);

/* ---- reads (loop thread; never wait on writers) ---- */

/* A read snapshot. Values returned through it stay valid until store_read_end. */
int store_read_begin(store_t *s, store_rtxn_t **out);
void store_read_end(store_rtxn_t *t);
/*
 * The revision the snapshot was taken at. It may be ahead of store_rev():
 * changes committed but not yet delivered are visible to reads at once and
 * reach the listener (and ops' done) shortly after.
 */
uint64_t store_rtxn_rev(const store_rtxn_t *t);

/*
 * Returns 0 with *val pointing into the map (or, for a value of an
 * encrypted resource, to its plain bytes, kept until store_read_end),
 * STORE_ENOTFOUND, or STORE_ETRANSFORM when the value does not decrypt.
 */
int store_get(store_rtxn_t *t, const char *key, size_t key_len, const void **val, size_t *val_len);

/*
 * Calls fn for each key starting with prefix, in key order, starting after
 * start_after (NULL: from the first). fn returns 0 to go on, nonzero to
 * stop. Returns 0 or a negative code (STORE_ETRANSFORM: a value did not
 * decrypt; the scan stops there).
 */
typedef int (*store_scan_fn)(const char *key, size_t key_len, const void *val, size_t val_len,
                             void *arg);
int store_scan(store_rtxn_t *t, const char *prefix, size_t prefix_len, const char *start_after,
               size_t start_after_len, store_scan_fn fn, void *arg);

/*
 * Calls fn for each log record with revision > after, in order, up to the
 * snapshot's revision. STORE_ECOMPACTED if after < store_compacted.
 * fn returns 0 to go on, nonzero to stop.
 */
typedef int (*store_log_fn)(const struct store_change *ch, void *arg);
int store_log_scan(store_rtxn_t *t, uint64_t after, store_log_fn fn, void *arg);

/* ---- stats, backup ---- */

struct store_stats {
    uint64_t rev, compacted, commits, ops, fsync_ns_total, map_size, map_used, batch_max;
    /* the write-ahead log: bytes of records appended, bytes of pages those appends wrote,
     * its file's size; checkpoints taken and the bytes of the copies they wrote */
    uint64_t wal_rec_bytes, wal_write_bytes, wal_size, checkpoints, checkpoint_bytes;
    uint64_t loop_commits; /* commits made on the loop thread (a write alone) */
};
void store_get_stats(store_t *s, struct store_stats *out);
/*
 * Online, consistent, compacted copy of the environment to path (a file,
 * written as path.tmp then renamed; open it as data.mdb of a directory, or
 * with MDB_NOSUBDIR). Runs on the loop thread and blocks it for the copy;
 * writes keep committing meanwhile. 0, STORE_EFULL or STORE_EIO (*err says why).
 */
int store_backup(store_t *s, const char *path, char **err);

#endif
