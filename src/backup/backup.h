/*
 * backup: what coracle-backup's modes share. main.c parses the flags and
 * holds the LMDB file modes (--out, --restore, --inspect); to_etcd.c and
 * from_etcd.c move a store between LMDB and etcd, in the form
 * kube-apiserver keeps objects there (store_etcd.h), through bk_etcd.c's
 * connection and tally.
 */
#ifndef CORACLE_BACKUP_H
#define CORACLE_BACKUP_H

#include "etcd.h"
#include "kinds.h"

#include <event2/event.h>
#include <lmdb.h>
#include <stddef.h>

#define BK_SCHEMA 2 /* the newest store schema this program knows (store.c STORE_SCHEMA); 1 too */

/*
 * Opens the LMDB environment at path: a data directory (read-only, shared
 * with a running apiserver) or, with is_file, a backup file. Returns 0 and
 * *envp (close with mdb_env_close), or -1 with *err (malloc'd).
 */
int bk_open(const char *path, int is_file, MDB_env **envp, char **err);

/* Where the objects are in etcd: the flags as the apiserver takes them. */
struct bk_etcd_opts {
    const char *servers;                     /* "URL,URL,..." (--etcd-servers) */
    const char *cafile, *certfile, *keyfile; /* NULL: cleartext */
    const char *prefix;                      /* "/registry" */
    int timeout_ms;                          /* a request's deadline, retries included */
    /* the apiserver's --encryption-provider-config (enc.h), or NULL: values
     * of the resources it names are opened from one store and sealed again
     * for the other (the additional data of aesgcm differs between them) */
    const struct enc *enc;
};

/*
 * A client of o's etcd on base (etcd.h). Returns it, or NULL with *err
 * (malloc'd) when the flags are unusable (no server, a bad URL or TLS
 * file). Does not connect yet.
 */
etcd_t *bk_etcd_new(struct event_base *base, const struct bk_etcd_opts *o, char **err);

/* The prefix with one '/' at its end, as ranges over it need ("/registry/"): malloc'd. */
char *bk_prefix_dir(const char *prefix);

/* "pods/default/web", "nodes/node0": a store key as messages name the object. malloc'd. */
char *bk_obj_name(const char *key, size_t key_len);

/*
 * The plain bytes of a stored value v of store key key, kept under ad (the
 * store key in LMDB, the etcd key in etcd): opened with enc (may be NULL)
 * when it is sealed. Returns 0 with *out (v itself, or malloc'd and also in
 * *owned), or -1 with *why (malloc'd; names no byte of the value).
 */
int bk_value_open(const struct enc *enc, const char *key, size_t key_len, const void *ad,
                  size_t ad_len, const void *v, size_t len, const void **out, size_t *out_len,
                  void **owned, char **why);
/*
 * v sealed for a store where it is kept under ad, if enc names key's
 * resource: 0 with *out (malloc'd) or NULL (stored as it is), or -1 with *why.
 */
int bk_value_seal(const struct enc *enc, const char *key, size_t key_len, const void *ad,
                  size_t ad_len, const void *v, size_t len, void **out, size_t *out_len,
                  char **why);

/* Objects counted by kind, for the summary line. Zero-initialised is empty. */
struct bk_tally {
    size_t n[KINDS_N]; /* by index in kinds_all */
    size_t total;
};
void bk_tally_add(struct bk_tally *t, const struct kind *k);
/* "123 objects (pods 100, nodes 3, ...)": malloc'd. */
char *bk_tally_str(const struct bk_tally *t);

/*
 * Copies every object of the store at path (a data directory, or a backup
 * file with is_file), read in one snapshot, to etcd: created where the key
 * is absent; an object already there is reported and left, or replaced
 * with overwrite. Reports each object that was not copied on stderr and a
 * summary on stdout. Returns 0 when every object is in etcd, 1 when some
 * were not (reported), or -1 with *err (malloc'd) when it could not run.
 */
int bk_to_etcd(const char *path, int is_file, const struct bk_etcd_opts *o, int overwrite,
               char **err);

/*
 * Writes every object under o's prefix, read at one revision, into a new
 * store in dir (created if missing; refused if it holds a store already),
 * each keeping its resourceVersion (etcd's mod_revision), the store at
 * that revision. Returns as bk_to_etcd.
 */
int bk_from_etcd(const struct bk_etcd_opts *o, const char *dir, char **err);

#endif
