/*
 * store_meta: the store's on-disk meta records ("schema", "rev",
 * "compacted": a big-endian u64 under its name in the "meta" database),
 * read by the store and by coracle-backup, which opens a data directory
 * (or a backup file) with LMDB directly, without an apiserver.
 */
#ifndef CORACLE_STORE_META_H
#define CORACLE_STORE_META_H

#include <lmdb.h>
#include <stdint.h>

/* *out = the record name; 0, an LMDB error, or MDB_CORRUPTED if it is not 8 bytes. */
int store_meta_get(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *out);

#endif
