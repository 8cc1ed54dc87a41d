/*
 * etcd: a client for etcd's v3 gRPC API (KV, Watch, Maintenance) over
 * coracle's HTTP/2 client (gcl.c, nghttp2, TLS included), on the caller's
 * libevent loop. Messages are declared in proto/etcd.proto from etcd's
 * documented field numbers (api/etcdserverpb/rpc.proto, api/mvccpb/kv.proto).
 *
 * One etcd_t talks to one cluster through a list of endpoints. It keeps one
 * connection, to the endpoint in use; when that endpoint fails (connection
 * refused or lost, keepalive timeout, or etcd answers "no leader" /
 * "leader changed" / UNAVAILABLE), it moves to the next endpoint, with
 * backoff and jitter, and retries the request there until the request's
 * deadline. A member that does not answer within the attempt deadline is
 * treated as failed the same way: a request caught on a member whose leader
 * just died (its proposal lost, etcd answering only after its own request
 * timeout, 5 s plus two election timeouts) goes to another member instead
 * of waiting there. A member dying therefore costs a retry, not an error.
 *
 * Retried Txns: a Txn whose connection broke after it was sent may have been
 * applied; it is sent again. With a compare on the key's mod_revision the
 * second attempt then fails its compare: the caller sees succeeded = 0 and
 * must check whether the key now holds what it wrote (etcd_txn_resp.retried
 * says a retry happened).
 *
 * Every callback may call any function here, etcd_free included.
 * Decoded answers live in an arena (protobuf-c's unpack with a bump
 * allocator): the views handed to callbacks point into it, no copies.
 *
 * Not thread-safe: every call and callback on the loop thread.
 */
#ifndef CORACLE_ETCD_H
#define CORACLE_ETCD_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct etcd etcd_t;
typedef struct etcd_watch etcd_watch_t;
struct ssl_ctx_st;

struct etcd_opts {
    /* "http://127.0.0.1:2379" or "https://..." (https needs tls); at least one */
    const char *const *endpoints;
    size_t n_endpoints;
    struct ssl_ctx_st *tls; /* tls_client_ctx(cafile, certfile, keyfile); etcd takes a ref */
    int dial_timeout_ms;    /* default 2000 */
    int request_timeout_ms; /* a request's whole deadline, retries included; default 10000 */
    /* one attempt's deadline on one member (default 2000): no answer within it, the request
     * goes to the next member; doubled each round over the members (see etcd.c) */
    int attempt_timeout_ms;
    int keepalive_interval_ms; /* PING after this much silence; default 2000 */
    int keepalive_timeout_ms;  /* no PONG within: the endpoint is dead; default 2000 */
};

/* NULL and *err (malloc'd) if opts are unusable (no endpoint, bad URL). Does not connect yet. */
etcd_t *etcd_new(struct event_base *base, const struct etcd_opts *opts, char **err);
/* Cancels every request and watch (no callbacks run) and frees. */
void etcd_free(etcd_t *e);
/* The endpoint in use now (for logs and tests). */
const char *etcd_endpoint(const etcd_t *e);

/* mvccpb.KeyValue; bytes valid only during the callback that gives them. */
struct etcd_kv {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    int64_t create_revision, mod_revision, version, lease;
};

/*
 * Errors: err is a grpc code (grpc.h: GRPC_OK, GRPC_UNAVAILABLE after the
 * deadline passed with every endpoint failing, GRPC_OUT_OF_RANGE for a
 * compacted revision (etcd's "mvcc: required revision has been compacted"),
 * GRPC_INVALID_ARGUMENT, ...) and msg says what failed (etcd's own text,
 * or "etcd: no endpoint answered within 10000 ms (last: connect to
 * 127.0.0.1:2379: Connection refused)"). msg valid during the callback.
 */

/* ---- KV.Range ---- */
struct etcd_range_req {
    const void *key;
    size_t key_len;
    const void *range_end; /* NULL: just key; see etcd_prefix_end */
    size_t range_end_len;
    int64_t limit;     /* 0: no limit */
    int64_t revision;  /* 0: newest */
    bool serializable; /* answered by the member alone (may be stale) */
    bool keys_only, count_only;
};
struct etcd_range_resp {
    int64_t revision; /* header.revision */
    const struct etcd_kv *kvs;
    size_t n_kvs;
    bool more;
    int64_t count;
};
typedef void (*etcd_range_fn)(void *arg, int err, const char *msg, const struct etcd_range_resp *r);
void etcd_range(etcd_t *e, const struct etcd_range_req *req, etcd_range_fn cb, void *arg);

/*
 * One page of a prefix read in pages: the keys under prefix after the key
 * `after` (NULL: from the first), at revision (0: newest; pass the first
 * page's answer's revision for the next pages, so they agree), limit keys
 * at most. r->more says whether there is another page; it starts after the
 * last key of this one.
 */
void etcd_range_page(etcd_t *e, const void *prefix, size_t prefix_len, const void *after,
                     size_t after_len, int64_t revision, int64_t limit, etcd_range_fn cb,
                     void *arg);

/* Writes into out (at least key_len bytes) the range_end that covers every key with this
 * prefix; returns its length (0 with out[0]=0 means "to the end": prefix all 0xff). Pass out
 * and that length as range_end, range_end_len: a non-NULL range_end of length 0 is sent as
 * etcd's "\0" (every key from key on), here as in ops and watches. */
size_t etcd_prefix_end(const void *prefix, size_t len, uint8_t *out);

/* ---- KV.Txn ---- */
enum etcd_cmp_target {
    ETCD_CMP_VERSION = 0,
    ETCD_CMP_CREATE = 1,
    ETCD_CMP_MOD = 2,
    ETCD_CMP_VALUE = 3
};
enum etcd_cmp_result {
    ETCD_CMP_EQUAL = 0,
    ETCD_CMP_GREATER = 1,
    ETCD_CMP_LESS = 2,
    ETCD_CMP_NOT_EQUAL = 3
};
struct etcd_cmp {
    const void *key;
    size_t key_len;
    enum etcd_cmp_target target;
    enum etcd_cmp_result result;
    int64_t number;    /* version, create or mod revision */
    const void *value; /* for ETCD_CMP_VALUE */
    size_t value_len;
};
enum etcd_op_type { ETCD_OP_RANGE = 0, ETCD_OP_PUT = 1, ETCD_OP_DELETE = 2 };
struct etcd_op {
    enum etcd_op_type type;
    const void *key;
    size_t key_len;
    const void *value; /* put */
    size_t value_len;
    const void *range_end; /* range, delete: NULL = this key alone */
    size_t range_end_len;
    bool prev_kv; /* put, delete: answer the previous value */
};
struct etcd_txn_req {
    const struct etcd_cmp *cmp;
    size_t n_cmp;
    const struct etcd_op *success, *failure;
    size_t n_success, n_failure;
};
/* One answer per op of the branch that ran, in order. */
struct etcd_op_resp {
    enum etcd_op_type type;
    const struct etcd_kv *kvs; /* range: the keys; put/delete with prev_kv: the previous ones */
    size_t n_kvs;
    int64_t deleted; /* delete */
};
struct etcd_txn_resp {
    int64_t revision; /* header.revision: the txn's revision if it wrote */
    bool succeeded;
    bool retried; /* sent more than once (see above) */
    const struct etcd_op_resp *resps;
    size_t n_resps;
};
typedef void (*etcd_txn_fn)(void *arg, int err, const char *msg, const struct etcd_txn_resp *r);
void etcd_txn(etcd_t *e, const struct etcd_txn_req *req, etcd_txn_fn cb, void *arg);

/* Put and DeleteRange are one-op Txns without compares: use etcd_txn. */

/* ---- KV.Compact ---- */
typedef void (*etcd_done_fn)(void *arg, int err, const char *msg, int64_t revision);
void etcd_compact(etcd_t *e, int64_t revision, bool physical, etcd_done_fn cb, void *arg);

/* ---- Maintenance.Status of the endpoint in use (revision = header.revision) ---- */
struct etcd_status {
    int64_t revision;
    uint64_t member_id, leader, raft_term;
    int64_t db_size;
};
typedef void (*etcd_status_fn)(void *arg, int err, const char *msg, const struct etcd_status *st);
void etcd_status(etcd_t *e, etcd_status_fn cb, void *arg);

/* ---- Watch ---- */
enum etcd_event_type { ETCD_EV_PUT = 0, ETCD_EV_DELETE = 1 };
struct etcd_event {
    enum etcd_event_type type;
    struct etcd_kv kv;      /* for DELETE: key and mod_revision (the deletion's) only */
    struct etcd_kv prev_kv; /* with prev_kv; key_len 0 if absent */
};
struct etcd_watch_opts {
    const void *key;
    size_t key_len;
    const void *range_end;
    size_t range_end_len;
    int64_t start_revision; /* 0: from now */
    bool prev_kv;
    bool progress_notify;
};
struct etcd_watch_cbs {
    /*
     * Events of one WatchResponse, in revision order (several may share a
     * revision: one txn), or n == 0 for a progress notification: everything
     * up to revision has been sent. revision = header.revision.
     */
    void (*events)(void *arg, int64_t revision, const struct etcd_event *ev, size_t n);
    /*
     * The watch ended and will not resume: err GRPC_OUT_OF_RANGE with
     * compact_revision (the start revision is compacted: re-list), or the
     * server canceled it (msg), or GRPC_UNAVAILABLE when no endpoint came
     * back within request_timeout_ms. The watch is freed after return.
     */
    void (*ended)(void *arg, int err, const char *msg, int64_t compact_revision);
};
/*
 * Opens a watch on the shared Watch stream ("hasleader" metadata set, so a
 * member cut off from its leader cancels it). When the stream or endpoint
 * fails, the client re-creates the watch on the next endpoint from the last
 * delivered revision + 1: the caller sees no gap and no duplicate, only a
 * delay.
 */
etcd_watch_t *etcd_watch(etcd_t *e, const struct etcd_watch_opts *o,
                         const struct etcd_watch_cbs *cbs, void *arg);
/* Asks etcd for a progress notification on the stream (etcd >= 3.4's
 * WatchRequest.progress_request); it arrives as events(n == 0), to every
 * watch of the stream (etcd answers the stream, not one watch). Nothing is
 * sent while the stream is being re-established. */
void etcd_watch_progress(etcd_watch_t *w);
/* Cancels; no callback runs afterwards. */
void etcd_watch_cancel(etcd_watch_t *w);

#endif
