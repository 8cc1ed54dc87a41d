/*
 * smap: string-keyed chained hash map. See smap.h.
 *
 * An entry keeps its key's hash beside the key, so a chain is walked
 * comparing integers, and the bytes only of the entry whose hash matches.
 */
#include "config.h"
#include "smap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define SMAP_MIN_BUCKETS 16 /* a power of two: a key's bucket is its hash & (nb - 1) */

struct ent {
    struct ent *next;
    uint32_t h;
    void *val;
    char key[];
};

struct smap {
    struct ent **b;
    size_t nb, n;
};

smap_t *smap_new(void)
{
    smap_t *m = xcalloc(1, sizeof(*m));
    m->nb = SMAP_MIN_BUCKETS;
    m->b = xcalloc(m->nb, sizeof(*m->b));
    return m;
}

void smap_clear(smap_t *m, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->nb; i++) {
        for (struct ent *e = m->b[i], *nx; e; e = nx) {
            nx = e->next;
            if (free_val)
                free_val(e->val);
            free(e);
        }
        m->b[i] = NULL;
    }
    m->n = 0;
}

void smap_free(smap_t *m, void (*free_val)(void *))
{
    if (!m)
        return;
    smap_clear(m, free_val);
    free(m->b);
    free(m);
}

static struct ent *find(const smap_t *m, const char *key)
{
    uint32_t h = smap_hash(key);
    for (struct ent *e = m->b[h & (m->nb - 1)]; e; e = e->next)
        if (e->h == h && !strcmp(e->key, key))
            return e;
    return NULL;
}

void *smap_get(const smap_t *m, const char *key)
{
    struct ent *e = find(m, key);
    return e ? e->val : NULL;
}

const char *smap_key(const smap_t *m, const char *key)
{
    struct ent *e = find(m, key);
    return e ? e->key : NULL;
}

static void grow(smap_t *m)
{
    size_t nb = m->nb * 2;
    struct ent **b = xcalloc(nb, sizeof(*b));
    for (size_t i = 0; i < m->nb; i++)
        for (struct ent *e = m->b[i], *nx; e; e = nx) {
            nx = e->next;
            e->next = b[e->h & (nb - 1)];
            b[e->h & (nb - 1)] = e;
        }
    free(m->b);
    m->b = b;
    m->nb = nb;
}

void *smap_put(smap_t *m, const char *key, void *val)
{
    uint32_t h = smap_hash(key);
    for (struct ent *e = m->b[h & (m->nb - 1)]; e; e = e->next)
        if (e->h == h && !strcmp(e->key, key)) {
            void *old = e->val;
            e->val = val;
            return old;
        }
    size_t kl = strlen(key);
    struct ent *e = xmalloc(sizeof(*e) + kl + 1);
    memcpy(e->key, key, kl + 1);
    e->h = h;
    e->val = val;
    e->next = m->b[h & (m->nb - 1)];
    m->b[h & (m->nb - 1)] = e;
    if (++m->n > m->nb)
        grow(m);
    return NULL;
}

void *smap_del(smap_t *m, const char *key)
{
    uint32_t h = smap_hash(key);
    for (struct ent **pp = &m->b[h & (m->nb - 1)]; *pp; pp = &(*pp)->next) {
        struct ent *e = *pp;
        if (e->h == h && !strcmp(e->key, key)) {
            void *v = e->val;
            *pp = e->next;
            free(e);
            m->n--;
            return v;
        }
    }
    return NULL;
}

size_t smap_count(const smap_t *m)
{
    return m->n;
}

int smap_each(const smap_t *m, int (*fn)(const char *key, void *val, void *arg), void *arg)
{
    for (size_t i = 0; i < m->nb; i++)
        for (struct ent *e = m->b[i]; e; e = e->next) {
            int rc = fn(e->key, e->val, arg);
            if (rc)
                return rc;
        }
    return 0;
}
