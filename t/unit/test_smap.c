/*
 * Unit tests for src/lib/smap.c: the string map and its hash. Includes the
 * .c to check the buckets themselves (growth, chains of colliding keys).
 */
#include "config.h"
#include "tap.h"

#include "../../src/lib/smap.c"

#include <stdint.h>

static void test_hash(void)
{
    /* FNV-1a 32-bit reference values */
    is_int(smap_hash(""), 0x811c9dc5u, "hash of the empty string is the offset basis");
    is_int(smap_hash("a"), 0xe40c292cu, "hash of \"a\"");
    is_int(smap_hash("foobar"), 0xbf9cf968u, "hash of \"foobar\"");
    /* known FNV-1a 32-bit collisions */
    ok(smap_hash("costarring") == smap_hash("liquid"), "costarring and liquid collide");
    ok(smap_hash("declinate") == smap_hash("macallums"), "declinate and macallums collide");
}

static void test_basic(void)
{
    smap_t *m = smap_new();
    is_int(smap_count(m), 0, "new map is empty");
    ok(smap_get(m, "x") == NULL, "get on an empty map");
    ok(smap_del(m, "x") == NULL, "del on an empty map");
    int a, b;
    ok(smap_put(m, "k", &a) == NULL, "put of a new key returns NULL");
    ok(smap_get(m, "k") == &a, "get finds it");
    ok(smap_put(m, "k", &b) == &a, "put of a present key returns the old value");
    ok(smap_get(m, "k") == &b, "and replaces it");
    is_int(smap_count(m), 1, "a replacement adds no entry");
    ok(smap_put(m, "", &a) == NULL, "the empty key is a key");
    ok(smap_get(m, "") == &a && smap_get(m, "k") == &b, "beside the others");
    char key[] = "copied";
    smap_put(m, key, &a);
    key[0] = 'C';
    ok(smap_get(m, "copied") == &a && smap_get(m, "Copied") == NULL, "keys are copied");
    ok(smap_del(m, "k") == &b, "del returns the value");
    ok(smap_get(m, "k") == NULL, "and the key is gone");
    is_int(smap_count(m), 2, "count follows");
    smap_free(m, NULL);
    smap_free(NULL, NULL); /* a no-op */
}

/* Colliding keys share a chain: each must still be found, replaced, removed alone. */
static void test_collisions(void)
{
    static const char *const k[] = {"costarring", "liquid", "declinate", "macallums"};
    smap_t *m = smap_new();
    for (intptr_t i = 0; i < 4; i++)
        smap_put(m, k[i], (void *)(i + 1));
    struct ent *e = m->b[smap_hash("liquid") & (m->nb - 1)];
    ok(e && e->next && e->h == e->next->h, "two entries with one hash in one chain");
    int found = 1;
    for (intptr_t i = 0; i < 4; i++)
        found &= smap_get(m, k[i]) == (void *)(i + 1);
    ok(found, "each colliding key finds its own value");
    ok(smap_put(m, "liquid", (void *)9) == (void *)2, "replace in a shared chain");
    ok(smap_get(m, "costarring") == (void *)1, "the other key keeps its value");
    ok(smap_del(m, "costarring") == (void *)1, "del the first of a shared chain");
    ok(smap_get(m, "liquid") == (void *)9 && smap_get(m, "costarring") == NULL,
       "the other stays, the removed is gone");
    ok(smap_get(m, "liquie") == NULL, "a near miss is a miss");
    smap_free(m, NULL);
}

/* Every entry is in the bucket its hash names, and the count is the entries'. */
static int check_buckets(const smap_t *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nb; i++)
        for (const struct ent *e = m->b[i]; e; e = e->next, n++)
            if ((e->h & (m->nb - 1)) != i || e->h != smap_hash(e->key))
                return 0;
    return n == m->n;
}

static int count_cb(const char *key, void *val, void *arg)
{
    (*(size_t *)arg)++;
    return 0;
}

static int stop_at_3(const char *key, void *val, void *arg)
{
    return ++*(int *)arg == 3 ? 42 : 0;
}

static void free_val(void *p)
{
    free(p);
}

/* 100,000 keys: 13 doublings from 16 buckets, with many bucket collisions on the way. */
static void test_growth(void)
{
    enum { N = 100000 };
    smap_t *m = smap_new();
    char k[32];
    size_t nb0 = m->nb, grows = 0, last = m->nb;
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "ns-%d/pod-%d", i % 7, i);
        int *v = xmalloc(sizeof(*v));
        *v = i;
        smap_put(m, k, v);
        if (m->nb != last) {
            grows++;
            last = m->nb;
        }
    }
    is_int(smap_count(m), N, "holds 100000");
    ok(grows >= 12, "grew %zu times (%zu -> %zu buckets)", grows, nb0, m->nb);
    ok(m->n <= m->nb, "load factor at most 1 (%zu in %zu)", m->n, m->nb);
    ok(check_buckets(m), "every entry in its hash's bucket after growth");
    int all = 1;
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "ns-%d/pod-%d", i % 7, i);
        int *v = smap_get(m, k);
        all &= v && *v == i;
    }
    ok(all, "every key finds its value after growth");
    for (int i = 0; i < N; i += 2) {
        snprintf(k, sizeof k, "ns-%d/pod-%d", i % 7, i);
        free(smap_del(m, k));
    }
    is_int(smap_count(m), N / 2, "half deleted");
    all = 1;
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "ns-%d/pod-%d", i % 7, i);
        int *v = smap_get(m, k);
        all &= (i % 2) ? v && *v == i : v == NULL;
    }
    ok(all, "the deleted miss, the others hit");
    ok(check_buckets(m), "buckets consistent after deletes");
    size_t n = 0;
    is_int(smap_each(m, count_cb, &n), 0, "each over all returns 0");
    is_int(n, N / 2, "each visits every entry once");
    int seen = 0;
    is_int(smap_each(m, stop_at_3, &seen), 42, "each returns fn's non-zero");
    is_int(seen, 3, "and stops there");
    size_t nb = m->nb;
    smap_clear(m, free_val);
    is_int(smap_count(m), 0, "clear empties");
    is_int(m->nb, nb, "and keeps the buckets");
    ok(smap_get(m, "ns-1/pod-1") == NULL, "nothing left after clear");
    smap_put(m, "again", xstrdup("v"));
    is_str(smap_get(m, "again"), "v", "a cleared map takes new keys");
    smap_free(m, free_val);
}

/* The map used as in the scheduler: 1000 pod keys. */
static void test_pod_keys(void)
{
    smap_t *m = smap_new();
    char k[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "ns/p%d", i);
        smap_put(m, k, (void *)(intptr_t)(i + 1));
    }
    is_int(smap_count(m), 1000, "map holds 1000");
    is_int((intptr_t)smap_get(m, "ns/p777"), 778, "map get");
    is_int((intptr_t)smap_del(m, "ns/p777"), 778, "map del");
    ok(smap_get(m, "ns/p777") == NULL, "deleted");
    smap_free(m, NULL);
}

/* smap_key: the map's copy, stable while the map grows, usable to delete. */
static void test_key(void)
{
    smap_t *m = smap_new();
    smap_put(m, "first", m);
    const char *k = smap_key(m, "first");
    ok(k && !strcmp(k, "first"), "smap_key: the map's copy of the key");
    char buf[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(buf, sizeof buf, "k%d", i);
        smap_put(m, buf, m);
    }
    ok(smap_key(m, "first") == k, "the same copy after the map grew");
    ok(smap_key(m, "nope") == NULL, "NULL for a key not there");
    ok(smap_del(m, k) == m && !smap_get(m, "first"), "the copy deletes its own entry");
    smap_free(m, NULL);
}

int main(void)
{
    test_hash();
    test_key();
    test_basic();
    test_collisions();
    test_growth();
    test_pod_keys();
    return done_testing();
}
