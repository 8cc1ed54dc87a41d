/*
 * buf: the growing text buffer coraclectl builds its output in (tables,
 * YAML, JSON) before writing it out in one go.
 */
#include "config.h"
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ctl_buf_add(struct ctl_buf *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void ctl_buf_puts(struct ctl_buf *b, const char *s)
{
    ctl_buf_add(b, s, strlen(s));
}

void ctl_buf_vprintf(struct ctl_buf *b, const char *fmt, va_list ap)
{
    char *s = xvasprintf(fmt, ap);
    ctl_buf_puts(b, s);
    free(s);
}

void ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctl_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

char *ctl_buf_take(struct ctl_buf *b)
{
    char *p = b->p ? b->p : xstrdup("");
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void ctl_buf_free(struct ctl_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
