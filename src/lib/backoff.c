/*
 * backoff: a table of keys, each with its window and the time of its last
 * failure; see backoff.h.
 */
#include "config.h"

#include "backoff.h"
#include "smap.h"
#include "util.h"

#include <stdlib.h>

struct backoff {
    int64_t base, max;
    smap_t *keys; /* key -> struct entry */
};

struct entry {
    int64_t window; /* ns */
    int64_t last;   /* the last failure */
};

backoff_t *backoff_new(int64_t base, int64_t max)
{
    backoff_t *b = xcalloc(1, sizeof(*b));
    b->base = base > 0 ? base : 1;
    b->max = max >= b->base ? max : b->base;
    b->keys = smap_new();
    return b;
}

void backoff_free(backoff_t *b)
{
    if (!b)
        return;
    smap_free(b->keys, free);
    free(b);
}

/* Nothing happened to e for twice the cap: it starts over. */
static int stable(const backoff_t *b, const struct entry *e, int64_t now)
{
    return now - e->last > 2 * b->max;
}

int64_t backoff_next(backoff_t *b, const char *key, int64_t now)
{
    struct entry *e = smap_get(b->keys, key);
    if (!e) {
        e = xcalloc(1, sizeof(*e));
        smap_put(b->keys, key, e);
    }
    if (e->window == 0 || stable(b, e, now))
        e->window = b->base;
    else
        e->window = e->window > b->max / 2 ? b->max : e->window * 2;
    e->last = now;
    return e->window;
}

int64_t backoff_wait(const backoff_t *b, const char *key, int64_t now)
{
    const struct entry *e = smap_get(b->keys, key);
    if (!e || stable(b, e, now) || now - e->last >= e->window)
        return 0;
    return e->window - (now - e->last);
}

int64_t backoff_last(const backoff_t *b, const char *key)
{
    const struct entry *e = smap_get(b->keys, key);
    return e ? e->last : 0;
}

void backoff_reset(backoff_t *b, const char *key)
{
    free(smap_del(b->keys, key));
}

struct gc_arg {
    const backoff_t *b;
    int64_t now;
    char **stale;
    size_t n;
};

static int collect(const char *key, void *val, void *arg)
{
    struct gc_arg *g = arg;
    if (stable(g->b, val, g->now))
        g->stale[g->n++] = xstrdup(key);
    return 0;
}

void backoff_gc(backoff_t *b, int64_t now)
{
    struct gc_arg g = {b, now, xcalloc(smap_count(b->keys) + 1, sizeof(char *)), 0};
    smap_each(b->keys, collect, &g);
    for (size_t i = 0; i < g.n; i++) {
        backoff_reset(b, g.stale[i]);
        free(g.stale[i]);
    }
    free(g.stale);
}
