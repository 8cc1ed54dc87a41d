/*
 * smap: a small string-keyed hash map (chained, grows by doubling) for the
 * apiserver's in-memory indexes: watchers by node name, the event
 * de-duplication index, lease observations. Keys are copied; values are
 * the caller's pointers. Not thread-safe (loop thread only).
 */
#ifndef CORACLE_SMAP_H
#define CORACLE_SMAP_H

#include <stddef.h>

typedef struct smap smap_t;

smap_t *smap_new(void);
/* Frees the map and its keys; calls free_val on each value if non-NULL. */
void smap_free(smap_t *m, void (*free_val)(void *));
void *smap_get(const smap_t *m, const char *key);
/* Sets key to val; returns the old value (or NULL). */
void *smap_put(smap_t *m, const char *key, void *val);
/* Removes key; returns its value (or NULL). */
void *smap_del(smap_t *m, const char *key);
size_t smap_count(const smap_t *m);
/* Calls fn for each entry; fn may not change the map. */
void smap_each(const smap_t *m, void (*fn)(const char *key, void *val, void *arg), void *arg);

#endif
