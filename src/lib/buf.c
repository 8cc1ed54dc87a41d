/*
 * buf: a growable byte buffer. See buf.h.
 */
#include "config.h"
#include "buf.h"
#include "pb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN 256

void buf_grow(struct buf *b, size_t n)
{
    size_t cap = b->cap ? b->cap : BUF_MIN;
    while (cap < b->len + n + 1)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    size_t room = b->cap - b->len; /* the NUL's byte included; 0 before the first add */
    int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
    if (n < 0)
        fatal("buf: vsnprintf: bad format \"%s\"", fmt);
    if ((size_t)n >= room)
        vsnprintf(buf_reserve(b, (size_t)n), (size_t)n + 1, fmt, again);
    va_end(again);
    b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_varint(struct buf *b, uint64_t v)
{
    buf_commit(b, pb_varint_put(buf_reserve(b, PB_VARINT_MAX), v));
}

void buf_field(struct buf *b, uint32_t field, const void *d, size_t n)
{
    /* one reservation for tag, length and bytes: this writes every item of a List */
    uint8_t *w = buf_reserve(b, 2 * PB_VARINT_MAX + n);
    size_t k = pb_varint_put(w, (uint64_t)field << 3 | 2);
    k += pb_varint_put(w + k, n);
    if (n)
        memcpy(w + k, d, n);
    buf_commit(b, k + n);
}

void buf_consume(struct buf *b, size_t n)
{
    if (!n)
        return;
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    b->p[b->len] = '\0';
}

char *buf_take(struct buf *b)
{
    char *p = b->p ? b->p : xstrdup("");
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void buf_free(struct buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
