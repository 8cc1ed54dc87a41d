/*
 * pb: one-pass protobuf encoding, back to front, and decoding. See pb.h.
 *
 * The scratch buffer is filled from its end: w->used bytes sit at
 * buf[cap - used, cap). Fields go in reverse order (last field, last
 * element first), so the bytes read front to back in protobuf-c's order.
 * Growing copies the written tail to the end of a larger buffer; a thread's
 * buffer is kept for its next message, so in steady state nothing grows.
 */
#include "config.h"
#include "pb.h"
#include "util.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct wb {
    uint8_t *buf;
    size_t cap, used;
};

#define PB_SCRATCH_MIN 4096
#define PB_SCRATCH_KEEP (256 * 1024)

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
    struct wb *w = p;
    free(w->buf);
    free(w);
}

static void scratch_init(void)
{
    if (pthread_key_create(&scratch_key, scratch_free))
        abort();
}

static struct wb *scratch(void)
{
    pthread_once(&scratch_once, scratch_init);
    struct wb *w = pthread_getspecific(scratch_key);
    if (!w) {
        w = xcalloc(1, sizeof(*w));
        pthread_setspecific(scratch_key, w);
    }
    return w;
}

static void grow(struct wb *w, size_t n)
{
    size_t cap = w->cap ? w->cap * 2 : PB_SCRATCH_MIN;
    while (cap - w->used < n)
        cap *= 2;
    uint8_t *b = xmalloc(cap);
    if (w->used)
        memcpy(b + cap - w->used, w->buf + w->cap - w->used, w->used);
    free(w->buf);
    w->buf = b;
    w->cap = cap;
}

/* Makes room for n more bytes and returns where they start. */
static inline uint8_t *reserve(struct wb *w, size_t n)
{
    if (w->cap - w->used < n)
        grow(w, n);
    w->used += n;
    return w->buf + w->cap - w->used;
}

static inline void put_bytes(struct wb *w, const void *p, size_t n)
{
    if (n)
        memcpy(reserve(w, n), p, n);
}

static inline void put_varint(struct wb *w, uint64_t v)
{
    if (v < 0x80) {
        *reserve(w, 1) = (uint8_t)v;
        return;
    }
    uint8_t t[PB_VARINT_MAX];
    size_t n = pb_varint_put(t, v);
    memcpy(reserve(w, n), t, n);
}

/* A fixed-width value of n bytes (4 or 8), little-endian on the wire. */
static void put_fixed(struct wb *w, const void *member, size_t n)
{
    uint64_t v = 0;
    if (n == 4) {
        uint32_t x;
        memcpy(&x, member, 4);
        v = x;
    } else {
        memcpy(&v, member, 8);
    }
    uint8_t *p = reserve(w, n);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put_tag(struct wb *w, uint32_t id, unsigned wire)
{
    put_varint(w, (uint64_t)id << 3 | wire);
}

size_t pb_elt_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

static int enc_msg(struct wb *w, const ProtobufCMessage *m);

/* One value of field f at member, with its tag. -1: a message protobuf-c must pack. */
static int enc_value(struct wb *w, const ProtobufCFieldDescriptor *f, const void *member)
{
    unsigned wire = PROTOBUF_C_WIRE_TYPE_VARINT;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)member;
        size_t n = s ? strlen(s) : 0;
        put_bytes(w, s, n);
        put_varint(w, n);
        wire = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = member;
        put_bytes(w, b->data, b->len);
        put_varint(w, b->len);
        wire = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)member;
        size_t before = w->used;
        if (sub && enc_msg(w, sub) < 0)
            return -1;
        put_varint(w, w->used - before);
        wire = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
        break;
    }
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_ENUM:
        /* negative: the ten bytes of its 64-bit sign extension */
        put_varint(w, (uint64_t)(int64_t) * (const int32_t *)member);
        break;
    case PROTOBUF_C_TYPE_UINT32:
        put_varint(w, *(const uint32_t *)member);
        break;
    case PROTOBUF_C_TYPE_SINT32: {
        int32_t v = *(const int32_t *)member;
        put_varint(w, ((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
        break;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
        put_varint(w, *(const uint64_t *)member);
        break;
    case PROTOBUF_C_TYPE_SINT64: {
        int64_t v = *(const int64_t *)member;
        put_varint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
        break;
    }
    case PROTOBUF_C_TYPE_BOOL:
        *reserve(w, 1) = *(const protobuf_c_boolean *)member ? 1 : 0;
        break;
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        put_fixed(w, member, 4);
        wire = PROTOBUF_C_WIRE_TYPE_32BIT;
        break;
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        put_fixed(w, member, 8);
        wire = PROTOBUF_C_WIRE_TYPE_64BIT;
        break;
    default:
        return -1;
    }
    put_tag(w, f->id, wire);
    return 0;
}

static int enc_msg(struct wb *w, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (size_t i = m->n_unknown_fields; i-- > 0;) {
        const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        put_bytes(w, u->data, u->len);
        put_tag(w, u->tag, u->wire_type);
    }
    for (unsigned i = d->n_fields; i-- > 0;) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *member = (const char *)m + f->offset;
        const char *quant = (const char *)m + f->quantifier_offset;
        if (f->flags & (PROTOBUF_C_FIELD_FLAG_ONEOF | PROTOBUF_C_FIELD_FLAG_PACKED))
            return -1;
        switch (f->label) {
        case PROTOBUF_C_LABEL_REQUIRED:
            break;
        case PROTOBUF_C_LABEL_OPTIONAL:
            if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) {
                const void *p = *(const void *const *)member;
                if (!p || p == f->default_value)
                    continue;
            } else if (!*(const protobuf_c_boolean *)quant) {
                continue;
            }
            break;
        case PROTOBUF_C_LABEL_REPEATED: {
            size_t n = *(const size_t *)quant, es = pb_elt_size(f->type);
            const char *arr = *(const char *const *)member;
            for (size_t j = n; j-- > 0;)
                if (enc_value(w, f, arr + j * es) < 0)
                    return -1;
            continue;
        }
        default:
            return -1;
        }
        if (enc_value(w, f, member) < 0)
            return -1;
    }
    return 0;
}

const uint8_t *pb_encode_scratch(const ProtobufCMessage *m, size_t *len)
{
    struct wb *w = scratch();
    w->used = 0;
    if (w->cap > PB_SCRATCH_KEEP) {
        /* a big message once does not keep its buffer for good */
        free(w->buf);
        w->buf = NULL;
        w->cap = 0;
    }
    if (enc_msg(w, m) < 0) {
        size_t n = protobuf_c_message_get_packed_size(m);
        w->used = 0;
        uint8_t *p = reserve(w, n);
        protobuf_c_message_pack(m, p);
    }
    *len = w->used;
    return w->used ? w->buf + w->cap - w->used : (const uint8_t *)"";
}

/* ---- decoding ---- */

const ProtobufCFieldDescriptor *pb_field_by_id(const ProtobufCMessageDescriptor *d, uint32_t id,
                                               unsigned *hint)
{
    unsigned h = *hint;
    if (h < d->n_fields && d->fields[h].id == id)
        return &d->fields[h];
    if (h + 1 < d->n_fields && d->fields[h + 1].id == id) {
        *hint = h + 1;
        return &d->fields[h + 1];
    }
    /* protobuf-c's generated descriptors list fields by number */
    unsigned lo = 0, hi = d->n_fields;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (d->fields[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < d->n_fields && d->fields[lo].id == id) {
        *hint = lo;
        return &d->fields[lo];
    }
    return NULL;
}

int pb_plain_type(const ProtobufCMessageDescriptor *d)
{
    /* by address: descriptors lie 96 to 256 bytes apart, a prime spreads them */
    static __thread const ProtobufCMessageDescriptor *known[251];
    unsigned h = (unsigned)(((uintptr_t)d >> 3) % 251);
    if (known[h] == d)
        return 1;
    if (!d->message_init)
        return 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->label == PROTOBUF_C_LABEL_REQUIRED || f->label == PROTOBUF_C_LABEL_NONE ||
            (f->flags & (PROTOBUF_C_FIELD_FLAG_ONEOF | PROTOBUF_C_FIELD_FLAG_PACKED)) ||
            (i && f->id <= d->fields[i - 1].id))
            return 0;
    }
    known[h] = d;
    return 1;
}

/* A length prefix as protobuf-c takes it (at most 5 bytes, at most INT_MAX, inside end). */
static inline int rd_len(const uint8_t **pp, const uint8_t *end, size_t *n)
{
    const uint8_t *p = *pp;
    uint64_t v;
    if (pb_varint_get(&p, end, &v) < 0 || p - *pp > 5 || v > INT32_MAX || v > (uint64_t)(end - p))
        return -1;
    *pp = p;
    *n = (size_t)v;
    return 0;
}

/*
 * A new last element of m's repeated field f (the array grown by doubling
 * from 4, the count raised); the caller fills it at once.
 */
static void *push_elt(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    char **arr = (char **)((char *)m + f->offset);
    size_t *n = (size_t *)((char *)m + f->quantifier_offset), es = pb_elt_size(f->type);
    if (*n == 0)
        *arr = xmalloc(4 * es);
    else if (*n >= 4 && !(*n & (*n - 1)))
        *arr = xrealloc(*arr, 2 * *n * es);
    return *arr + (*n)++ * es;
}

static int dec_msg(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                   ProtobufCMessage **out);

/*
 * dec_fields' and dec_msg's "no": -1 hands the bytes to protobuf-c,
 * DEC_REFUSE answers NULL. Field number 0 does not exist; protobuf-c takes
 * it when the tag is spelled in two bytes (0x85 0x00) and keeps it as an
 * unknown field, but then packs it as a one-byte tag that it refuses to
 * read back: an object stored that way would not decode again, and
 * copying one (obj_clone, on an update) aborted the apiserver.
 */
#define DEC_REFUSE (-2)

/*
 * One scalar of field f, read off the wire as decoded (a varint in v, a
 * fixed-size one at val), into dst. 0, or -1 when the wire type is not f's.
 */
static int put_scalar(const ProtobufCFieldDescriptor *f, unsigned wire, uint64_t v,
                      const uint8_t *val, void *dst)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_ENUM:
        if (wire != PROTOBUF_C_WIRE_TYPE_VARINT)
            return -1;
        *(uint32_t *)dst = (uint32_t)v;
        return 0;
    case PROTOBUF_C_TYPE_SINT32:
        if (wire != PROTOBUF_C_WIRE_TYPE_VARINT)
            return -1;
        *(int32_t *)dst = (int32_t)(((uint32_t)v >> 1) ^ -((uint32_t)v & 1));
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
        if (wire != PROTOBUF_C_WIRE_TYPE_VARINT)
            return -1;
        *(uint64_t *)dst = v;
        return 0;
    case PROTOBUF_C_TYPE_SINT64:
        if (wire != PROTOBUF_C_WIRE_TYPE_VARINT)
            return -1;
        *(int64_t *)dst = (int64_t)((v >> 1) ^ -(v & 1));
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (wire != PROTOBUF_C_WIRE_TYPE_VARINT)
            return -1;
        *(protobuf_c_boolean *)dst = v != 0;
        return 0;
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        if (wire != PROTOBUF_C_WIRE_TYPE_32BIT)
            return -1;
        memcpy(dst, val, 4);
        return 0;
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        if (wire != PROTOBUF_C_WIRE_TYPE_64BIT)
            return -1;
        memcpy(dst, val, 8);
        return 0;
    default:
        return -1;
    }
}

/* A packed run of f's scalars, p..end, appended to m's array. 0, or -1. */
static int dec_packed(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const uint8_t *p,
                      const uint8_t *end)
{
    unsigned wire;
    switch (f->type) {
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        wire = PROTOBUF_C_WIRE_TYPE_32BIT;
        break;
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        wire = PROTOBUF_C_WIRE_TYPE_64BIT;
        break;
    default:
        wire = PROTOBUF_C_WIRE_TYPE_VARINT;
    }
    while (p < end) {
        uint64_t v = 0;
        const uint8_t *val = p;
        if (wire == PROTOBUF_C_WIRE_TYPE_VARINT) {
            if (pb_varint_get(&p, end, &v) < 0)
                return -1;
        } else {
            size_t w = wire == PROTOBUF_C_WIRE_TYPE_64BIT ? 8 : 4;
            if ((size_t)(end - p) < w)
                return -1;
            p += w;
        }
        if (put_scalar(f, wire, v, val, push_elt(m, f)) < 0)
            return -1;
    }
    return 0;
}

/*
 * Decodes the fields at p..end into m (made and initialised by the caller).
 * Returns 0, or -1 for anything to leave to protobuf-c; m stays freeable.
 */
static int dec_fields(ProtobufCMessage *m, const uint8_t *p, const uint8_t *end)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    unsigned hint = 0;
    size_t ucap = 0;
    while (p < end) {
        const uint8_t *tag_at = p;
        uint64_t key, v = 0;
        if (!(*p & 0xf8) || pb_varint_get(&p, end, &key) < 0 || p - tag_at > 5 || key >> 32)
            return -1;
        uint32_t id = (uint32_t)(key >> 3);
        unsigned wire = (unsigned)(key & 7);
        if (id == 0)
            return DEC_REFUSE;
        const uint8_t *after_tag = p, *val = p;
        size_t n = 0;
        switch (wire) {
        case PROTOBUF_C_WIRE_TYPE_VARINT:
            if (pb_varint_get(&p, end, &v) < 0)
                return -1;
            break;
        case PROTOBUF_C_WIRE_TYPE_64BIT:
            if (end - p < 8)
                return -1;
            p += 8;
            break;
        case PROTOBUF_C_WIRE_TYPE_32BIT:
            if (end - p < 4)
                return -1;
            p += 4;
            break;
        case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED:
            if (rd_len(&p, end, &n) < 0)
                return -1;
            val = p; /* the payload; the prefix sits before it */
            p += n;
            break;
        default:
            return -1;
        }
        const ProtobufCFieldDescriptor *f = pb_field_by_id(d, id, &hint);
        if (!f) {
            /* kept as protobuf-c keeps it: the value's bytes, a length prefix included */
            if (m->n_unknown_fields == ucap) {
                ucap = ucap ? 2 * ucap : 4;
                m->unknown_fields =
                    xrealloc(m->unknown_fields, ucap * sizeof(ProtobufCMessageUnknownField));
            }
            ProtobufCMessageUnknownField *u = &m->unknown_fields[m->n_unknown_fields++];
            u->tag = id;
            u->wire_type = (ProtobufCWireType)wire;
            u->len = (size_t)(p - after_tag);
            u->data = xmemdup(after_tag, u->len);
            continue;
        }
        char *member = (char *)m + f->offset;
        int repeated = f->label == PROTOBUF_C_LABEL_REPEATED;
        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING: {
            if (wire != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
                return -1;
            char *str = xmalloc(n + 1);
            memcpy(str, val, n);
            str[n] = 0;
            if (repeated) {
                *(char **)push_elt(m, f) = str;
            } else {
                char *old = *(char **)member;
                if (old && old != f->default_value)
                    free(old);
                *(char **)member = str;
            }
            break;
        }
        case PROTOBUF_C_TYPE_BYTES: {
            if (wire != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
                return -1;
            ProtobufCBinaryData bd = {n, n ? xmemdup(val, n) : NULL};
            if (repeated) {
                *(ProtobufCBinaryData *)push_elt(m, f) = bd;
            } else {
                ProtobufCBinaryData *old = (ProtobufCBinaryData *)member;
                const ProtobufCBinaryData *def = f->default_value;
                if (old->data && (!def || old->data != def->data))
                    free(old->data);
                *old = bd;
                *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
            }
            break;
        }
        case PROTOBUF_C_TYPE_MESSAGE: {
            if (wire != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
                return -1;
            if (!repeated && *(ProtobufCMessage **)member)
                return -1; /* given twice: protobuf-c merges the two */
            ProtobufCMessage *sub;
            int r = dec_msg(f->descriptor, val, n, &sub);
            if (r < 0)
                return r;
            if (repeated) {
                *(ProtobufCMessage **)push_elt(m, f) = sub;
            } else {
                *(ProtobufCMessage **)member = sub;
            }
            break;
        }
        default:
            if (!repeated) {
                if (put_scalar(f, wire, v, val, member) < 0)
                    return -1;
                *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
            } else if (wire != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) {
                if (put_scalar(f, wire, v, val, push_elt(m, f)) < 0)
                    return -1;
            } else if (dec_packed(m, f, val, val + n) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

static int dec_msg(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                   ProtobufCMessage **out)
{
    if (!pb_plain_type(d))
        return -1;
    ProtobufCMessage *m = xmalloc(d->sizeof_message);
    d->message_init(m);
    int r = dec_fields(m, p, p + len);
    if (r < 0) {
        protobuf_c_message_free_unpacked(m, NULL);
        return r;
    }
    *out = m;
    return 0;
}

static __thread unsigned long fallbacks;

unsigned long pb_decode_fallbacks(void)
{
    return fallbacks;
}

ProtobufCMessage *pb_decode(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len)
{
    ProtobufCMessage *m;
    int r = len <= INT32_MAX ? dec_msg(d, buf, len, &m) : -1;
    if (r == 0)
        return m;
    if (r == DEC_REFUSE)
        return NULL;
    fallbacks++;
    return protobuf_c_message_unpack(d, NULL, len, buf);
}

ProtobufCMessage *pb_clone(const ProtobufCMessage *m)
{
    size_t n;
    const uint8_t *b = pb_encode_scratch(m, &n);
    ProtobufCMessage *c = pb_decode(m->descriptor, b, n);
    if (!c)
        abort();
    return c;
}

/* ---- compact copies ---- */

#define CALIGN(n) (((n) + 7) & ~(size_t)7)

/* A string field's value that is its own (not absent, not the descriptor's default). */
static bool own_string(const ProtobufCFieldDescriptor *f, const char *s)
{
    return s && s != (const char *)f->default_value;
}

static size_t compact_size(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    size_t n = CALIGN(d->sizeof_message);
    n += CALIGN(m->n_unknown_fields * sizeof(*m->unknown_fields));
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        n += CALIGN(m->unknown_fields[i].len);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *at = (const char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t cnt = *(const size_t *)((const char *)m + f->quantifier_offset);
            if (!cnt)
                continue;
            n += CALIGN(cnt * pb_elt_size(f->type));
            for (size_t j = 0; j < cnt; j++) {
                if (f->type == PROTOBUF_C_TYPE_STRING) {
                    const char *v = (*(char **const *)at)[j];
                    n += CALIGN(strlen(v ? v : "") + 1);
                } else if (f->type == PROTOBUF_C_TYPE_BYTES)
                    n += CALIGN((*(ProtobufCBinaryData *const *)at)[j].len);
                else if (f->type == PROTOBUF_C_TYPE_MESSAGE)
                    n += compact_size((*(ProtobufCMessage * *const *)at)[j]);
            }
        } else if (f->type == PROTOBUF_C_TYPE_STRING) {
            const char *v = *(char *const *)at;
            if (own_string(f, v))
                n += CALIGN(strlen(v) + 1);
        } else if (f->type == PROTOBUF_C_TYPE_BYTES) {
            const ProtobufCBinaryData *b = (const ProtobufCBinaryData *)at;
            if (b->data && b->len)
                n += CALIGN(b->len);
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            const ProtobufCMessage *sub = *(ProtobufCMessage *const *)at;
            if (sub)
                n += compact_size(sub);
        }
    }
    return n;
}

/* Bump allocation in the block being filled. */
static void *take(char **p, size_t n)
{
    void *r = *p;
    *p += CALIGN(n);
    return r;
}

static char *copy_str(char **p, const char *s)
{
    size_t l = strlen(s) + 1;
    return memcpy(take(p, l), s, l);
}

static ProtobufCMessage *compact_into(char **p, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    ProtobufCMessage *c = memcpy(take(p, d->sizeof_message), m, d->sizeof_message);
    if (m->n_unknown_fields) {
        c->unknown_fields =
            memcpy(take(p, m->n_unknown_fields * sizeof(*m->unknown_fields)), m->unknown_fields,
                   m->n_unknown_fields * sizeof(*m->unknown_fields));
        for (unsigned i = 0; i < m->n_unknown_fields; i++)
            if (m->unknown_fields[i].len)
                c->unknown_fields[i].data =
                    memcpy(take(p, m->unknown_fields[i].len), m->unknown_fields[i].data,
                           m->unknown_fields[i].len);
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *from = (const char *)m + f->offset;
        char *to = (char *)c + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t cnt = *(const size_t *)((const char *)m + f->quantifier_offset);
            if (!cnt) {
                *(void **)to = NULL;
                continue;
            }
            size_t es = pb_elt_size(f->type);
            void *arr = memcpy(take(p, cnt * es), *(void *const *)from, cnt * es);
            *(void **)to = arr;
            for (size_t j = 0; j < cnt; j++) {
                if (f->type == PROTOBUF_C_TYPE_STRING) {
                    char **s = (char **)arr + j;
                    *s = copy_str(p, *s ? *s : "");
                } else if (f->type == PROTOBUF_C_TYPE_BYTES) {
                    ProtobufCBinaryData *b = (ProtobufCBinaryData *)arr + j;
                    b->data = b->len ? memcpy(take(p, b->len), b->data, b->len) : NULL;
                } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                    ProtobufCMessage **sm = (ProtobufCMessage **)arr + j;
                    *sm = compact_into(p, *sm);
                }
            }
        } else if (f->type == PROTOBUF_C_TYPE_STRING) {
            const char *v = *(char *const *)from;
            if (own_string(f, v))
                *(char **)to = copy_str(p, v);
        } else if (f->type == PROTOBUF_C_TYPE_BYTES) {
            ProtobufCBinaryData *b = (ProtobufCBinaryData *)to;
            if (b->data && b->len)
                b->data = memcpy(take(p, b->len), b->data, b->len);
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            const ProtobufCMessage *sub = *(ProtobufCMessage *const *)from;
            if (sub)
                *(ProtobufCMessage **)to = compact_into(p, sub);
        }
    }
    return c;
}

ProtobufCMessage *pb_compact(const ProtobufCMessage *m)
{
    size_t n = compact_size(m);
    char *block = xmalloc(n), *p = block;
    ProtobufCMessage *c = compact_into(&p, m);
    assert((size_t)(p - block) == n);
    return c;
}

int pb_equal(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    if (!a || !b)
        return a == b;
    size_t na, nb;
    uint8_t *x = pb_encode(a, &na);
    const uint8_t *y = pb_encode_scratch(b, &nb);
    int eq = na == nb && !memcmp(x, y, na);
    free(x);
    return eq;
}

void *pb_encode(const ProtobufCMessage *m, size_t *len)
{
    const uint8_t *p = pb_encode_scratch(m, len);
    return xmemdup(p, *len);
}
