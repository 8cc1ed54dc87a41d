/*
 * wire: byte-level protobuf helpers. See wire.h.
 */
#include "config.h"
#include "wire.h"
#include "grpc.h"
#include "pb.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads one field header and skips its value; vs and vl set for wire type 2. */
static int next_field(const uint8_t **p, const uint8_t *end, uint32_t *f, const uint8_t **start,
                      const uint8_t **vs, size_t *vl)
{
    *start = *p;
    uint64_t tag, n;
    if (pb_varint_get(p, end, &tag) < 0)
        return -1;
    *f = (uint32_t)(tag >> 3);
    *vs = NULL;
    *vl = 0;
    switch (tag & 7) {
    case 0:
        return pb_varint_get(p, end, &n);
    case 1:
        if (end - *p < 8)
            return -1;
        *p += 8;
        return 0;
    case 2:
        if (pb_varint_get(p, end, &n) < 0 || n > (uint64_t)(end - *p))
            return -1;
        *vs = *p;
        *vl = (size_t)n;
        *p += n;
        return 0;
    case 5:
        if (end - *p < 4)
            return -1;
        *p += 4;
        return 0;
    default:
        return -1;
    }
}

int wire_find(const void *buf, size_t len, uint32_t f, const uint8_t **val, size_t *vlen)
{
    const uint8_t *p = buf, *end = p + len, *start, *vs;
    size_t vl;
    uint32_t fn;
    int found = 0;
    while (p < end) {
        if (next_field(&p, end, &fn, &start, &vs, &vl) < 0)
            return -1;
        if (fn == f && vs) {
            *val = vs;
            *vlen = vl;
            found = 1;
        }
    }
    return found;
}

int wire_meta_names(const void *buf, size_t len, char **name, char **generate_name, char **ns)
{
    const uint8_t *p = buf, *end = p + len, *start, *vs, *q, *qe, *ms, *mvs;
    const uint8_t *val[4] = {NULL, NULL, NULL, NULL};
    size_t vl, mvl, vlen[4] = {0, 0, 0, 0};
    uint32_t fn, mf;
    while (p < end) {
        if (next_field(&p, end, &fn, &start, &vs, &vl) < 0)
            return -1;
        if (fn != 1 || !vs)
            continue;
        for (q = vs, qe = vs + vl; q < qe;) {
            if (next_field(&q, qe, &mf, &ms, &mvs, &mvl) < 0)
                return -1;
            if (mf >= 1 && mf <= 3 && mvs) {
                val[mf] = mvs;
                vlen[mf] = mvl;
            }
        }
    }
    char **out[4] = {NULL, name, generate_name, ns};
    for (int i = 1; i <= 3; i++)
        *out[i] = val[i] ? xstrndup((const char *)val[i], vlen[i]) : NULL;
    return 0;
}

/* Writes metadata.resourceVersion (field 6) = rv at w; returns the byte after it. */
static uint8_t *put_rv_field(uint8_t *w, const char *rv, size_t rvl)
{
    *w++ = 6 << 3 | 2;
    w += pb_varint_put(w, rvl);
    memcpy(w, rv, rvl);
    return w + rvl;
}

uint64_t wire_get_rv(const void *buf, size_t len)
{
    const uint8_t *meta, *rv;
    size_t ml, rl;
    if (wire_find(buf, len, 1, &meta, &ml) != 1 || wire_find(meta, ml, 6, &rv, &rl) != 1 ||
        rl == 0 || rl > 20)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < rl; i++) {
        if (rv[i] < '0' || rv[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t)(rv[i] - '0');
    }
    return v;
}

void *wire_set_rv(const void *buf, size_t len, uint64_t rev, size_t *out_len)
{
    const uint8_t *in = buf, *end = in + len, *start, *vs;
    const uint8_t *meta = NULL, *q, *qe;
    size_t metalen = 0, vl;
    uint32_t fn;
    if (wire_find(buf, len, 1, &meta, &metalen) < 0)
        return NULL;
    char rv[24];
    size_t rvl = (size_t)snprintf(rv, sizeof(rv), "%" PRIu64, rev);
    size_t rvfield = rev ? 1 + pb_varint_len(rvl) + rvl : 0;
    /*
     * The new metadata is the old one without field 6, with field 6 put
     * before the first field numbered above it: the order protobuf-c packs
     * in, so a canonical object stays canonical (byte-equal to packing it
     * with the revision set). A first pass checks the bytes and sizes it.
     */
    size_t kept = 0;
    for (q = meta, qe = meta ? meta + metalen : NULL; q && q < qe;) {
        if (next_field(&q, qe, &fn, &start, &vs, &vl) < 0)
            return NULL;
        if (fn != 6)
            kept += (size_t)(q - start);
    }
    size_t newmeta = kept + rvfield;
    uint8_t *o = xmalloc(len + newmeta + 32), *w = o;
    *w++ = 1 << 3 | 2;
    w += pb_varint_put(w, newmeta);
    int wrote_rv = rev == 0;
    for (q = meta; q && q < qe;) {
        next_field(&q, qe, &fn, &start, &vs, &vl);
        if (fn == 6)
            continue;
        if (fn > 6 && !wrote_rv) {
            w = put_rv_field(w, rv, rvl);
            wrote_rv = 1;
        }
        memcpy(w, start, (size_t)(q - start));
        w += q - start;
    }
    if (!wrote_rv)
        w = put_rv_field(w, rv, rvl);
    /* then every other top-level field, in its order */
    for (q = in; q < end;) {
        next_field(&q, end, &fn, &start, &vs, &vl);
        if (fn != 1) {
            memcpy(w, start, (size_t)(q - start));
            w += q - start;
        }
    }
    *out_len = (size_t)(w - o);
    return o;
}

/* Writes a length-delimited field at p; returns the bytes written. */
static size_t put_field(uint8_t *p, uint32_t field, const void *d, size_t n)
{
    size_t o = pb_varint_put(p, (uint64_t)field << 3 | 2);
    o += pb_varint_put(p + o, n);
    if (n)
        memcpy(p + o, d, n);
    return o + n;
}

rbuf_t *wire_watch_frame(const char *type, const void *obj, size_t len)
{
    size_t tl = strlen(type);
    size_t msg = 1 + pb_varint_len(tl) + tl + 1 + pb_varint_len(len) + len;
    rbuf_t *r = rbuf_alloc(GRPC_FRAME_HDR + msg);
    grpc_frame_hdr(r->data, (uint32_t)msg);
    size_t o = GRPC_FRAME_HDR;
    o += put_field(r->data + o, 1, type, tl);
    put_field(r->data + o, 2, obj, len);
    return r;
}

rbuf_t *wire_bookmark_frame(uint64_t rev)
{
    char rv[24];
    int rvl = snprintf(rv, sizeof(rv), "%" PRIu64, rev);
    uint8_t meta[40], obj[48];
    size_t ml = put_field(meta, 6, rv, (size_t)rvl);
    size_t ol = put_field(obj, 1, meta, ml);
    return wire_watch_frame("BOOKMARK", obj, ol);
}
