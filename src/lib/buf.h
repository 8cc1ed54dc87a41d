/*
 * buf: the growable byte buffer every coracle program builds output and
 * gathers input in: coraclectl's tables, YAML and JSON; the apiserver's
 * List replies (protobuf fields written one after the other, hence the
 * varint and length-delimited writers); the gRPC client's partial
 * response frames; a CNI plugin's stdout; log lines cut at a chunk's end.
 *
 * A zero-initialised struct buf is empty (p NULL, nothing allocated). Once
 * a byte has been added p[len] is always '\0', so text can be used as a C
 * string in place; binary contents may hold NULs of their own. Capacity
 * doubles from 256 bytes, so appending is amortised O(1).
 *
 * Ownership: the buffer owns p until buf_take hands it to the caller or
 * buf_free releases it. Any call that adds bytes may move p: pointers into
 * the contents stay valid only until the next such call. Not thread-safe.
 */
#ifndef CORACLE_BUF_H
#define CORACLE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util.h"

struct buf {
    char *p;    /* the contents, NUL-terminated; NULL until the first add */
    size_t len; /* bytes of contents (the NUL not counted) */
    size_t cap; /* bytes allocated at p */
};

/* buf_reserve's slow path: reallocates p to hold len + n bytes and the NUL. */
void buf_grow(struct buf *b, size_t n);

/*
 * Makes room for n more bytes (and the NUL after them) and returns where
 * they go (p + len). Write at most n bytes there, then buf_commit what was
 * written: for read(2) and other writers that want memory to fill.
 * (This and the two below are inline: the gRPC server stages every frame
 * it sends through buf_add.)
 */
static inline void *buf_reserve(struct buf *b, size_t n)
{
    if (b->len + n + 1 > b->cap)
        buf_grow(b, n);
    return b->p + b->len;
}

/* The next n bytes (written at buf_reserve's pointer) become contents. */
static inline void buf_commit(struct buf *b, size_t n)
{
    b->len += n;
    b->p[b->len] = '\0';
}

/* Appends the n bytes at d. */
static inline void buf_add(struct buf *b, const void *d, size_t n)
{
    void *w = buf_reserve(b, n);
    if (n)
        memcpy(w, d, n);
    buf_commit(b, n);
}

/* Empties the contents, keeping the memory for what comes next. */
void buf_reset(struct buf *b);
/* Appends the string s (without its NUL). Inline: the JSON and YAML writers
 * put short literals, whose length then folds at compile time. */
static inline void buf_puts(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}
/* Appends printf's output. */
void buf_printf(struct buf *b, const char *fmt, ...) PRINTF(2, 3);
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);

/* Appends v as a protobuf varint. */
void buf_varint(struct buf *b, uint64_t v);
/* Appends a protobuf length-delimited field: tag (field, wire type 2), length, the n bytes at d. */
void buf_field(struct buf *b, uint32_t field, const void *d, size_t n);

/* Drops the first n (<= len) bytes, moving the rest to the front; the memory stays. */
void buf_consume(struct buf *b, size_t n);

/* The contents as a malloc'd string (the caller frees it; "" if nothing was added); b is empty
 * after. */
char *buf_take(struct buf *b);
/* Frees the contents; b is empty (and reusable) after. */
void buf_free(struct buf *b);

#endif
