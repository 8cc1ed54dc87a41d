/*
 * wal: the store's write-ahead log, one preallocated file (DIR/wal) that
 * every durable commit appends one record to and syncs once.
 *
 * Why: a durable LMDB commit syncs twice (data pages, then the meta page)
 * and writes its copy-on-write pages scattered over the map. Appending the
 * batch's changes to a file whose blocks are already allocated and written
 * costs one fdatasync of one or two blocks and no file-system journal
 * commit (the file's size and extents do not change), while LMDB runs
 * without syncs and is made durable only at a checkpoint (store.c).
 *
 * File layout. Block 0 (4096 bytes) is the header: magic "CRLWAL01", u32le
 * CRC-32C of bytes 12..63, u32le format version (2; 1 before records
 * could be packed: read, and rewritten as 2), u64le epoch, u32le
 * clean, u32le 0, u64le clean_rev, u64le base_rev (the checkpoint's
 * revision: the records continue from it), zeros. Records follow from offset 4096,
 * one after the other, each:
 *     u32le len      bytes of the whole record, header included
 *     u32le crc      CRC-32C of the record with this field read as 0
 *     u64le epoch    the header's epoch when the record was written
 *     u64le rev_before, rev_after, compacted
 *     u32le n        entries, then n entries (or, with bit 31 of n set,
 *                    u32le the entries' bytes and their LZ4 block):
 *         u8 kind    1 new object, 2 modified, 3 deleted (a change with a
 *                    log record at rev), 16 the object's stored form only
 *         u64le rev, u32le key_len, u32le val_len, u32le prev_len,
 *         key, val, prev
 * The records of the current epoch end at the first record that is all
 * zeros, of another epoch, or whose checksum fails: a torn tail, since a
 * record is written by one pwrite and acknowledged after the sync. A
 * failed record followed by a valid one of the same epoch is corruption
 * in the middle, and is refused. Starting a new epoch (wal_restart)
 * empties the log without writing the old records' bytes again. Epochs
 * are random (0 only in a log that never had a checkpoint), so that the
 * stale bytes past the tail, which hold values clients chose, cannot be
 * crafted into a record of a later epoch.
 *
 * One thread at a time (the store's commit thread, or store_open/close).
 */
#ifndef CORACLE_WAL_H
#define CORACLE_WAL_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>

#define WAL_HDR_SIZE 4096
#define WAL_REC_HDR 44
#define WAL_ENT_HDR 21
/* wal_entry.kind for an object's new stored form without a change (resealing) */
#define WAL_OBJ 16
/* wal_rec_pack: the record's n field says its entries are packed */
#define WAL_REC_LZ4 0x80000000u
/* entries packed only from this size (smaller records fill a page anyway) up to this */
#define WAL_PACK_MIN 2048
#define WAL_RAW_MAX ((size_t)64 << 20)
/* wal_append: the record does not fit in the file's free space (checkpoint, or wal_grow) */
#define WAL_EFULL (-1000)

typedef struct wal wal_t;

/* ---- records (pure functions: also the fuzz target's and unit test's surface) ---- */

struct wal_entry {
    int kind; /* 1..3 (enum store_change_type) or WAL_OBJ */
    uint64_t rev;
    const void *key, *val, *prev;
    size_t key_len, val_len, prev_len;
};

struct wal_rec {
    size_t len; /* bytes of the record */
    uint64_t epoch, rev_before, rev_after, compacted;
    uint32_t n;
    const uint8_t *ents; /* the entries, ents_len bytes (inside the parsed bytes) */
    size_t ents_len;
};

/* Starts a record in b (emptied first): room for its header. */
void wal_rec_start(struct buf *b);
/* Appends one entry to the record being built in b. */
void wal_rec_add(struct buf *b, const struct wal_entry *e);
/*
 * Packs the entries of the record being built in b with LZ4 (b's n field
 * gets WAL_REC_LZ4; the entries become u32le their bytes, then the LZ4
 * block) when they are WAL_PACK_MIN to WAL_RAW_MAX bytes and packing makes
 * them smaller. tmp: scratch. Before wal_rec_finish. 1 if packed, else 0.
 */
int wal_rec_pack(struct buf *b, struct buf *tmp);
/* The bytes of the record (len as written) with its entries unpacked: what a replay reads. */
size_t wal_rec_raw_len(const void *rec, size_t len);
/* Finishes the record in b: header fields and checksum. b then holds exactly the record. */
void wal_rec_finish(struct buf *b, uint64_t epoch, uint64_t rev_before, uint64_t rev_after,
                    uint64_t compacted);

enum { WAL_REC_OK = 0, WAL_REC_END = 1, WAL_REC_BAD = 2 };
/*
 * Parses the record at p (avail bytes readable). WAL_REC_OK fills *out
 * (pointing into p, or for a packed record into raw, which holds its
 * entries unpacked until the next call with it); WAL_REC_END: zeros, or a
 * record of another epoch than epoch; WAL_REC_BAD: truncated, a bad
 * checksum, entries that do not unpack or are malformed. *claimed is the
 * length the record's header gives (0 if none).
 */
int wal_rec_parse(const uint8_t *p, size_t avail, uint64_t epoch, struct wal_rec *out,
                  size_t *claimed, struct buf *raw);
/*
 * The next entry of r after *pos (start at 0). 1 with *e filled (pointing
 * into the record), 0 after the last one. Entries were checked by
 * wal_rec_parse.
 */
int wal_rec_next(const struct wal_rec *r, size_t *pos, struct wal_entry *e);

/* CRC-32C (Castagnoli) of n bytes, continuing from crc (0 to start): the
 * CPU's instruction where there is one, else wal_crc32c_table's. */
uint32_t wal_crc32c(uint32_t crc, const void *p, size_t n);

/* The same by a table, byte by byte (the reference the tests compare with). */
uint32_t wal_crc32c_table(uint32_t crc, const void *p, size_t n);

/* ---- the file ---- */

/*
 * Opens DIR/wal, or creates it: size bytes of zeros written (not a sparse
 * or fallocated file, so later syncs change no metadata), synced, with an
 * epoch 0 header; *created is then 1. At most a quarter of the disk's
 * free space (64 KiB at least). 0, or -1 with *err (malloc'd)
 * naming the file and what failed.
 */
int wal_open(wal_t **out, const char *dir, size_t size, int *created, char **err);
void wal_close(wal_t *w);
/*
 * Without opening the log for writing: *in_use = 1 if DIR/wal says the
 * map is not the state on its own (an apiserver runs on it, or stopped
 * without closing it: then the map may be torn until the next start
 * rebuilds it). No log: 0. 0, or -1 with *err (malloc'd).
 */
int wal_peek(const char *dir, int *in_use, char **err);
const char *wal_path(const wal_t *w);
/* The header's epoch (0: no checkpoint was ever taken), base revision, clean flag and revision. */
uint64_t wal_epoch(const wal_t *w);
uint64_t wal_base(const wal_t *w);
int wal_clean(const wal_t *w, uint64_t *rev);

/*
 * Calls fn for each record of the current epoch, in order, and leaves the
 * append position after the last one. A torn tail is ignored (logged) and
 * overwritten with zeros, so that the epoch can go on after it;
 * corruption in the middle fails: -1 with *err naming the file and the
 * offset. fn returns 0 to go on, or -1 with *err set to stop with it.
 */
typedef int (*wal_scan_fn)(const struct wal_rec *r, void *arg, char **err);
int wal_scan(wal_t *w, wal_scan_fn fn, void *arg, char **err);

/*
 * Appends the record (len bytes) at the append position and syncs it
 * (one pwrite of whole pages on an O_DSYNC descriptor, O_DIRECT where the
 * file system takes it: data only, like fdatasync). 0, WAL_EFULL (nothing
 * written), or -errno (the record may be partly there: a torn tail; the
 * position does not move).
 */
int wal_append(wal_t *w, const void *rec, size_t len);
/* Bytes of pages wal_append wrote since wal_open (what the device was sent). */
uint64_t wal_written(const wal_t *w);
/* Undoes the last wal_append (its transaction failed): its header zeroed and synced. 0 or -errno.
 */
int wal_revoke(wal_t *w);
/*
 * Makes the file hold at least need more bytes past the append position
 * (zeros, synced), counting records unpacked (wal_used).
 */
int wal_grow(wal_t *w, size_t need);
/*
 * Bytes of records in the current epoch, packed ones counted unpacked:
 * what a replay reads. The file's size bounds this as well as the bytes
 * written (wal_append answers WAL_EFULL for either), so that packing
 * makes the log's writes smaller but not a replay longer.
 */
size_t wal_used(const wal_t *w);
size_t wal_size(const wal_t *w);

/*
 * A new, empty epoch, random (the old records become stale), continuing
 * from base_rev: header rewritten and synced. 0 or -errno.
 */
int wal_restart(wal_t *w, uint64_t base_rev);
/* Epoch 0 (the log is not in use: the map is the state on its own): header rewritten, synced. */
int wal_abandon(wal_t *w);
/* Header's clean flag: 1 (with rev) once the map itself is synced, 0 before it is written again. */
int wal_mark(wal_t *w, int clean, uint64_t rev);

#endif
