/*
 * store_etcd: the store's etcd3 backend. The apiserver's store (store.h)
 * stays the one interface the handlers, admission and the watch hub use;
 * with this backend its LMDB environment is a replica of etcd, fed by one
 * watch over the prefix, and store_submit's ops become etcd transactions:
 *
 *   - reads (get, list, paging, watch replay) come from the replica at its
 *     revision, which is etcd's revision: etcd sees writes and one watch,
 *     not every read;
 *   - a write runs the op's apply on the replica's current value, then a
 *     Txn comparing the key's mod_revision with the value apply saw (or
 *     create_revision 0 for an absent key): another apiserver's write in
 *     between fails the compare, the replica catches up and apply runs
 *     again (Kubernetes' GuaranteedUpdate). Ops on one key are sent one at
 *     a time, so this apiserver never races itself;
 *   - an op is answered once the replica holds its revision, after the
 *     listener (the watch hub) saw the change: read-your-writes and the
 *     listener-before-done order hold as on LMDB.
 *
 * Stored as Kubernetes stores: key <prefix>/<resource>/<namespace>/<name>
 * (<prefix>/<resource>/<name> for cluster-scoped kinds; nodes under
 * "minions" as kube-apiserver keeps them), value the protobuf envelope
 * ("k8s\0" + runtime.Unknown around the object's bytes, resourceVersion
 * unset: etcd's mod_revision is the object's resourceVersion).
 *
 * On start the replica is rebuilt: a snapshot of the prefix at a revision
 * up to `history` revisions back (at most 10,000: as far as etcd still
 * has), then the watch replays from there, so watches resume across
 * apiservers from any revision in that window. A watch that falls behind etcd's compaction
 * rebuilds the replica the same way. Compaction: every interval, one of
 * the apiservers (the one whose compare-and-set on the key
 * "compact_rev_key" wins, as kube-apiserver's compactor does) compacts
 * etcd to the revision the previous round recorded.
 */
#ifndef CORACLE_STORE_ETCD_H
#define CORACLE_STORE_ETCD_H

#include "store.h"

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

struct store_etcd_opts {
    const char *const *servers; /* URLs, http:// or https:// */
    size_t n_servers;
    const char *cafile, *certfile, *keyfile; /* TLS to etcd; NULL: cleartext */
    const char *prefix;                      /* default "/registry" */
    int compaction_interval_s;               /* 0: this apiserver never compacts */
    uint64_t history;                        /* revisions replayed on start (compact_keep) */
    int start_timeout_ms;                    /* give up the first sync after this (default 60000) */
    /* encryption at rest (enc.h; NULL: none): values go to etcd sealed, the
     * etcd key as aesgcm's additional data, as kube-apiserver writes them */
    const struct enc *enc;
};

/*
 * Makes replica (a store opened with .replica = 1, listener set) the cache
 * of etcd: rebuilds it, runs the loop until it has caught up with etcd's
 * revision at the time of the call, then leaves the feed and the writer
 * running. Returns 0, or -1 with *err (malloc'd) when etcd could not be
 * reached or read within start_timeout_ms.
 */
int store_etcd_open(store_t *replica, struct event_base *base, const struct store_etcd_opts *o,
                    char **err);

/* The etcd key of a store key ("pods/default/web" -> "/registry/pods/default/web"); malloc'd,
 * NULL for a key of no known kind. Exposed for coracle-backup and tests. */
char *store_etcd_key(const char *prefix, const char *key, size_t key_len, size_t *out_len);
/* The store key of an etcd key under prefix, or NULL if it is none of coracle's kinds. */
char *store_etcd_local_key(const char *prefix, const void *ekey, size_t ekey_len);

#endif
