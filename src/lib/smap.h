/*
 * smap: the string-keyed hash map of pointers every coracle program uses
 * (the apiserver's watchers by node, event and lease indexes, identities;
 * the scheduler's nodes, charged and queued pods; an informer's cache),
 * and smap_hash, the one string hash (FNV-1a) for tables of any shape.
 *
 * Chained buckets, doubling at load factor 1; each entry is one allocation
 * holding its key, so a lookup touches the bucket array and the entries of
 * one chain, nothing else.
 *
 * Ownership: the map copies keys and owns the copies; values are the
 * caller's pointers, never freed by the map except through the free_val a
 * caller passes to smap_clear or smap_free. Keys handed to callbacks are
 * the map's and stay valid until their entry is removed. Not thread-safe:
 * one thread (the event loop) at a time.
 */
#ifndef CORACLE_SMAP_H
#define CORACLE_SMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct smap smap_t;

/* FNV-1a (32 bits) of the string s. */
static inline uint32_t smap_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* An empty map (free with smap_free). */
smap_t *smap_new(void);
/* Frees the map and its keys; calls free_val (if not NULL) on each value. NULL m is a no-op. */
void smap_free(smap_t *m, void (*free_val)(void *));
/* Removes every entry as smap_free does, keeping the map (and its buckets) for reuse. */
void smap_clear(smap_t *m, void (*free_val)(void *));
/* The value under key, or NULL. */
void *smap_get(const smap_t *m, const char *key);
/*
 * The map's own copy of key, or NULL if absent: valid until the entry is
 * removed (growing the map moves no entry), so a value may point to its
 * key instead of holding a copy.
 */
const char *smap_key(const smap_t *m, const char *key);
/* Sets key (copied) to val. Returns the value it replaces (the caller's again), or NULL. */
void *smap_put(smap_t *m, const char *key, void *val);
/* Removes key. Returns its value (the caller's again), or NULL if absent. */
void *smap_del(smap_t *m, const char *key);
size_t smap_count(const smap_t *m);
/*
 * Calls fn on every entry, in no particular order, until fn returns
 * non-zero; returns that value (0 when every entry was visited). fn must
 * not add or remove entries (collect the keys and change the map after).
 */
int smap_each(const smap_t *m, int (*fn)(const char *key, void *val, void *arg), void *arg);

#endif
