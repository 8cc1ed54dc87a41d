/*
 * map: chained hash map with FNV-1a hashing, doubling at load factor 1.
 * See map.h.
 */
#include "config.h"

#include "map.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ent {
    struct ent *next;
    uint32_t hash;
    char *key;
    void *val;
};

struct sched_map {
    struct ent **b;
    size_t nb, n;
};

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

sched_map_t *sched_map_new(void)
{
    sched_map_t *m = xcalloc(1, sizeof(*m));
    m->nb = 64;
    m->b = xcalloc(m->nb, sizeof(*m->b));
    return m;
}

void sched_map_free(sched_map_t *m, void (*free_val)(void *))
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nb; i++) {
        struct ent *e = m->b[i], *nx;
        for (; e; e = nx) {
            nx = e->next;
            if (free_val)
                free_val(e->val);
            free(e->key);
            free(e);
        }
    }
    free(m->b);
    free(m);
}

static struct ent **find(const sched_map_t *m, const char *key, uint32_t h)
{
    struct ent **pp = &m->b[h & (m->nb - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && !strcmp((*pp)->key, key))
            break;
    return pp;
}

void *sched_map_get(const sched_map_t *m, const char *key)
{
    struct ent **pp = find(m, key, hash_str(key));
    return *pp ? (*pp)->val : NULL;
}

static void grow(sched_map_t *m)
{
    size_t nb = m->nb * 2;
    struct ent **b = xcalloc(nb, sizeof(*b));
    for (size_t i = 0; i < m->nb; i++) {
        struct ent *e = m->b[i], *nx;
        for (; e; e = nx) {
            nx = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
}

void *sched_map_put(sched_map_t *m, const char *key, void *val)
{
    uint32_t h = hash_str(key);
    struct ent **pp = find(m, key, h);
    if (*pp) {
        void *old = (*pp)->val;
        (*pp)->val = val;
        return old;
    }
    if (m->n >= m->nb) {
        grow(m);
        pp = &m->b[h & (m->nb - 1)];
    }
    struct ent *e = xmalloc(sizeof(*e));
    e->hash = h;
    e->key = xstrdup(key);
    e->val = val;
    e->next = *pp;
    *pp = e;
    m->n++;
    return NULL;
}

void *sched_map_del(sched_map_t *m, const char *key)
{
    struct ent **pp = find(m, key, hash_str(key));
    struct ent *e = *pp;
    if (!e)
        return NULL;
    *pp = e->next;
    void *v = e->val;
    free(e->key);
    free(e);
    m->n--;
    return v;
}

size_t sched_map_count(const sched_map_t *m)
{
    return m->n;
}

int sched_map_foreach(const sched_map_t *m, int (*fn)(const char *key, void *val, void *arg),
                      void *arg)
{
    for (size_t i = 0; i < m->nb; i++)
        for (struct ent *e = m->b[i]; e; e = e->next) {
            int rc = fn(e->key, e->val, arg);
            if (rc)
                return rc;
        }
    return 0;
}
