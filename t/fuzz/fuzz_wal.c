/*
 * fuzz_wal: the write-ahead log's record reader (src/apiserver/wal.h), as
 * store_open runs it over DIR/wal after a crash: the first 8 bytes are the
 * epoch, the rest is records one after the other. Every record parsed is
 * walked entry by entry; each entry must lie inside its record, and a
 * record's entries must add up to it exactly.
 */
#include "config.h"
#include "fuzz.h"
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

int fuzz_wal_one(const uint8_t *data, size_t size)
{
    uint64_t epoch = 0;
    if (size < 8)
        return 0;
    memcpy(&epoch, data, 8);
    size_t off = 8, claimed;
    while (off < size) {
        struct wal_rec r;
        if (wal_rec_parse(data + off, size - off, epoch, &r, &claimed) != WAL_REC_OK)
            break;
        if (r.len < WAL_REC_HDR || r.len > size - off)
            abort();
        walk(&r);
        off += r.len;
    }
    return 0;
}

FUZZ_ENTRY(fuzz_wal_one)
