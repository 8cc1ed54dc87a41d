/*
 * fuzz_wal: the write-ahead log's record reader (src/apiserver/wal.h), as
 * store_open runs it over DIR/wal after a crash: the first 8 bytes are the
 * epoch, the rest is records one after the other. Every record parsed is
 * walked entry by entry; each entry must lie inside its record, and a
 * record's entries must add up to it exactly. The input is also read as
 * a packed record's LZ4 block (a checksum made good for it), and written
 * as a batch's values, packed, and read back: it must be the same.
 */
#include "config.h"
#include "fuzz.h"
#include "util.h"
#include "wal.h"

#include <stdlib.h>
#include <string.h>

static void walk(const struct wal_rec *r)
{
    struct wal_entry e;
    size_t pos = 0, prev = 0;
    uint32_t n = 0;
    while (wal_rec_next(r, &pos, &e)) {
        const uint8_t *end = r->ents + r->ents_len;
        if ((const uint8_t *)e.key < r->ents || (const uint8_t *)e.prev + e.prev_len > end ||
            pos <= prev)
            abort(); /* an entry outside its record */
        prev = pos;
        n++;
    }
    if (n != r->n || pos != r->ents_len)
        abort(); /* entries that do not fill the record */
}

/* The input as a packed record's block (first 4 bytes: its unpacked size), checksum made good. */
static void packed(const uint8_t *data, size_t size, struct buf *b, struct buf *raw)
{
    size_t claimed;
    struct wal_rec r;
    wal_rec_start(b);
    uint8_t *p = (uint8_t *)b->p;
    p[40] = 1;    /* one entry */
    p[43] = 0x80; /* WAL_REC_LZ4 */
    buf_add(b, data, size);
    wal_rec_finish(b, 1, 0, 1, 0);
    if (wal_rec_parse((uint8_t *)b->p, b->len, 1, &r, &claimed, raw) == WAL_REC_OK)
        walk(&r);
}

/* The input as the values of a batch's entries: packed, it must parse back the same. */
static void round_trip(const uint8_t *data, size_t size, struct buf *b, struct buf *tmp,
                       struct buf *raw)
{
    size_t n = 1 + (size ? data[0] % 16 : 0), claimed, pos = 0;
    wal_rec_start(b);
    for (size_t i = 0; i < n; i++) {
        struct wal_entry e = {1 + (int)(i % 3),    i, "pods/a/b", data, data, 8, size,
                              i % 2 ? 0 : size / 2};
        wal_rec_add(b, &e);
    }
    size_t len = b->len;
    char *orig = xmemdup(b->p + WAL_REC_HDR, len - WAL_REC_HDR);
    wal_rec_pack(b, tmp);
    wal_rec_finish(b, 2, 0, n, 0);
    struct wal_rec r;
    struct wal_entry e;
    if (wal_rec_parse((uint8_t *)b->p, b->len, 2, &r, &claimed, raw) != WAL_REC_OK || r.n != n ||
        r.ents_len != len - WAL_REC_HDR || memcmp(r.ents, orig, r.ents_len))
        abort(); /* a packed record does not read back as it was written */
    while (wal_rec_next(&r, &pos, &e))
        ;
    free(orig);
}

int fuzz_wal_one(const uint8_t *data, size_t size)
{
    uint64_t epoch = 0;
    struct buf raw = {0}, b = {0}, tmp = {0};
    packed(data, size, &b, &raw);
    round_trip(data, size, &b, &tmp, &raw);
    buf_free(&b);
    buf_free(&tmp);
    if (size < 8) {
        buf_free(&raw);
        return 0;
    }
    memcpy(&epoch, data, 8);
    size_t off = 8, claimed;
    while (off < size) {
        struct wal_rec r;
        if (wal_rec_parse(data + off, size - off, epoch, &r, &claimed, &raw) != WAL_REC_OK)
            break;
        if (r.len < WAL_REC_HDR || r.len > size - off)
            abort();
        walk(&r);
        off += r.len;
    }
    buf_free(&raw);
    return 0;
}

FUZZ_ENTRY(fuzz_wal_one)
