/*
 * arena: a bump allocator for the many small pieces of one operation that
 * all die together (kssa's field sets, kobj's document tree): each piece
 * is carved from a chunk, and one arena_free releases them all, with no
 * free per piece.
 *
 * A zero-initialised struct arena is empty. Chunks start small (4 KiB, so
 * an arena for a small request costs one small allocation) and double up
 * to 64 KiB; a piece bigger than that gets a chunk of its own. Pieces are
 * aligned as malloc's are. Not thread-safe.
 */
#ifndef CORACLE_ARENA_H
#define CORACLE_ARENA_H

#include <stddef.h>

struct arena {
    struct achunk *head; /* the chunk being carved; the older ones behind it */
};

/* n zeroed bytes, valid until arena_free(a); aborts when memory is exhausted. */
void *arena_alloc(struct arena *a, size_t n);
/* A copy of s in a (s may be NULL: ""). */
char *arena_strdup(struct arena *a, const char *s);
/* A copy of the n bytes at s in a, with a NUL after them. */
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* Frees every piece of a; a is empty (and reusable) after. */
void arena_free(struct arena *a);

#endif
