/*
 * rndmsg.h: random messages of any type in coracle.proto (every field
 * present or absent, empty strings, negative and large numbers, repeated
 * fields of 0-3 elements) and random damage to their bytes, for the unit
 * tests that compare two codecs on them (test_pb, test_yaml). One seed for
 * the whole test: the runs repeat.
 */
#ifndef CORACLE_RNDMSG_H
#define CORACLE_RNDMSG_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pb.h"
#include "util.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t rnd_num(void)
{
    switch (rnd() % 6) {
    case 0:
        return 0;
    case 1:
        return rnd() % 128;
    case 2:
        return rnd() % 100000;
    case 3:
        return (uint64_t) - (int64_t)(rnd() % 1000); /* negative */
    case 4:
        return rnd() >> (rnd() % 64);
    default:
        return (uint64_t)INT32_MIN;
    }
}

static char *rnd_str(void)
{
    size_t n = rnd() % 4 == 0 ? 0 : rnd() % (rnd() % 8 == 0 ? 300 : 20);
    char *s = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)('a' + rnd() % 26);
    s[n] = 0;
    return s;
}

static ProtobufCMessage *rnd_msg(const ProtobufCMessageDescriptor *d, int depth);

static void rnd_value(const ProtobufCFieldDescriptor *f, void *p, int depth)
{
    uint64_t v = rnd_num();
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        *(char **)p = rnd_str();
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = p;
        char *s = rnd_str();
        b->len = strlen(s);
        b->data = (uint8_t *)s;
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        *(ProtobufCMessage **)p = rnd_msg(f->descriptor, depth + 1);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)p = (protobuf_c_boolean)(rnd() % 2);
        break;
    default:
        memcpy(p, &v, pb_elt_size(f->type));
        break;
    }
}

static ProtobufCMessage *rnd_msg(const ProtobufCMessageDescriptor *d, int depth)
{
    ProtobufCMessage *m = xmalloc(d->sizeof_message);
    d->message_init(m);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *member = (char *)m + f->offset;
        if (depth > 6 || rnd() % 3 == 0)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = rnd() % 4;
            *(size_t *)((char *)m + f->quantifier_offset) = n;
            void *arr = n ? xcalloc(n, pb_elt_size(f->type)) : NULL;
            *(void **)member = arr;
            for (size_t j = 0; j < n; j++)
                rnd_value(f, (char *)arr + j * pb_elt_size(f->type), depth);
        } else {
            rnd_value(f, member, depth);
            if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
                *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
        }
    }
    return m;
}

/* b mutated once: a byte changed, cut short, a piece doubled or dropped, bytes inserted. */
static size_t mutate(uint8_t *b, size_t n, size_t cap)
{
    if (!n)
        return 0;
    size_t at = rnd() % n, k;
    switch (rnd() % 5) {
    case 0:
        b[at] = (uint8_t)rnd();
        return n;
    case 1:
        return at;
    case 2:
        k = 1 + rnd() % (n - at);
        if (n + k > cap)
            return n;
        memmove(b + at + k, b + at, n - at);
        return n + k; /* b[at, at+k) repeated */
    case 3:
        k = 1 + rnd() % (n - at);
        memmove(b + at, b + at + k, n - at - k);
        return n - k;
    default:
        k = 1 + rnd() % 4;
        if (n + k > cap)
            return n;
        memmove(b + at + k, b + at, n - at);
        for (size_t i = 0; i < k; i++)
            b[at + i] = (uint8_t)rnd();
        return n + k;
    }
}

#endif
