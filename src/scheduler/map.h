/*
 * map: a string-keyed hash map of pointers for the scheduler's tables
 * (nodes by name, charged pods and queued pods by "ns/name"). Keys are
 * copied; values are the caller's. Not thread-safe.
 */
#ifndef CORACLE_SCHED_MAP_H
#define CORACLE_SCHED_MAP_H

#include <stddef.h>

typedef struct sched_map sched_map_t;

sched_map_t *sched_map_new(void);
/* Frees the map and its keys; free_val (may be NULL) is called on each value. */
void sched_map_free(sched_map_t *m, void (*free_val)(void *));
void *sched_map_get(const sched_map_t *m, const char *key);
/* Sets key to val; returns the value it replaces (or NULL). */
void *sched_map_put(sched_map_t *m, const char *key, void *val);
/* Removes key; returns its value (or NULL). */
void *sched_map_del(sched_map_t *m, const char *key);
size_t sched_map_count(const sched_map_t *m);
/* Visits every entry (fn must not change the map); stops when fn returns non-zero. */
int sched_map_foreach(const sched_map_t *m, int (*fn)(const char *key, void *val, void *arg),
                      void *arg);

#endif
