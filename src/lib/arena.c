/*
 * arena: the bump allocator. See arena.h.
 */
#include "config.h"
#include "arena.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct achunk {
    struct achunk *next;
    size_t used, cap;
    max_align_t data[];
};

#define ACHUNK_MIN (4 * 1024 - sizeof(struct achunk)) /* the chunk with its header: 4 KiB */
#define ACHUNK_MAX (64 * 1024)

static void *carve(struct achunk *c, size_t n)
{
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

static void *alloc(struct arena *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct achunk *c = a->head;
    if (c && c->cap - c->used >= n)
        return carve(c, n);
    size_t cap = !c ? ACHUNK_MIN : c->cap * 2 < ACHUNK_MAX ? c->cap * 2 : ACHUNK_MAX;
    if (cap < n)
        cap = n;
    c = xmalloc(sizeof(*c) + cap);
    c->used = 0;
    c->cap = cap;
    c->next = a->head;
    a->head = c;
    return carve(c, n);
}

void *arena_alloc(struct arena *a, size_t n)
{
    return memset(alloc(a, n), 0, n);
}

char *arena_strdup(struct arena *a, const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s) + 1;
    return memcpy(alloc(a, n), s, n);
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *p = alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void arena_free(struct arena *a)
{
    while (a->head) {
        struct achunk *n = a->head->next;
        free(a->head);
        a->head = n;
    }
}
