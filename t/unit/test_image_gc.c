/*
 * Unit tests of image garbage collection's choice (src/lib/image_gc.c,
 * img_gc_plan: images with sizes, last-used and first-seen times, the
 * in-use set and the filesystem's usage in; what to delete out) and of the
 * per-key back-off the kubelet's image pulls use (src/lib/backoff.c).
 */
#include "config.h"
#include "tap.h"

#include "backoff.h"
#include "image_gc.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEC 1000000000LL
#define NOW (1000000 * SEC)

static const struct img_gc_policy kubelet = {85, 80, 120 * SEC, 0};

/* The plan's deletions as "id:why id:why ..." (why a or s). */
static char *order(const struct img_gc_item *it, const struct img_gc_plan *p)
{
    char *s = xstrdup("");
    for (size_t k = 0; k < p->ndel; k++) {
        char *t = xasprintf("%s%s%s:%c", s, k ? " " : "", it[p->del[k]].id,
                            p->why[k] == IMG_GC_AGE ? 'a' : 's');
        free(s);
        s = t;
    }
    return s;
}

static void check(const char *name, const struct img_gc_policy *pol, const struct img_gc_item *it,
                  size_t n, uint64_t cap, uint64_t avail, int64_t began, const char *want,
                  int64_t to_free, int64_t freed)
{
    struct img_gc_plan p;
    char *err = NULL;
    int rc = img_gc_plan(pol, it, n, cap, avail, NOW, began, &p, &err);
    ok(rc == 0, "%s: planned%s%s", name, err ? ": " : "", err ? err : "");
    char *got = order(it, &p);
    is_str(got, want, name);
    if (to_free >= 0) {
        is_int(p.to_free, to_free, "  bytes wanted");
        is_int(p.freed, freed, "  bytes found");
    }
    free(got);
    free(err);
    img_gc_plan_free(&p);
}

static void test_space(void)
{
    struct img_gc_item it[] = {
        {.id = "a", .size = 60, .last_used = NOW - 100 * SEC, .first_seen = NOW - 9000 * SEC},
        {.id = "b", .size = 60, .last_used = NOW - 500 * SEC, .first_seen = NOW - 9000 * SEC},
        {.id = "c", .size = 60, .last_used = 0, .first_seen = NOW - 8000 * SEC},
        {.id = "d", .size = 60, .last_used = 0, .first_seen = NOW - 9000 * SEC, .in_use = true},
        {.id = "e", .size = 60, .last_used = NOW - 10 * SEC, .first_seen = NOW - 9000 * SEC},
        {.id = "f", .size = 60, .last_used = 0, .first_seen = NOW - 8500 * SEC},
    };
    size_t n = sizeof(it) / sizeof(it[0]);
    check("below the high threshold: nothing", &kubelet, it, n, 1000, 160, NOW, "", -1, 0);
    /* 90% used: 1000*20/100 - 100 = 100 bytes to free; never used first (by first seen),
     * then least recently used; the image in use never */
    check("over: never used first, then least recently used", &kubelet, it, n, 1000, 100, NOW,
          "f:s c:s", 100, 120);
    check("at exactly the high threshold", &kubelet, it, n, 1000, 150, NOW, "f:s", 50, 60);
    struct img_gc_policy to_zero = {85, 0, 120 * SEC, 0};
    check("everything eligible is not enough", &to_zero, it, n, 1000, 0, NOW, "f:s c:s b:s a:s e:s",
          1000, 300);

    struct img_gc_item busy[] = {
        {.id = "x", .size = 500, .first_seen = NOW - 9000 * SEC, .in_use = true},
        {.id = "y", .size = 100, .last_used = NOW, .first_seen = NOW - 9000 * SEC},
        {.id = "z", .size = 100, .first_seen = NOW - 60 * SEC},
    };
    /* in use, used at the GC's time, younger than the minimum age: nothing eligible */
    check("in use, just used, too young: kept", &kubelet, busy, 3, 1000, 0, NOW, "", 200, 0);
    struct img_gc_policy no_min = kubelet;
    no_min.min_age = 0;
    check("minimum age 0: the young one goes", &no_min, busy, 3, 1000, 0, NOW, "z:s", 200, 100);
}

static void test_age(void)
{
    struct img_gc_policy pol = {85, 80, 120 * SEC, 3600 * SEC};
    struct img_gc_item it[] = {
        {.id = "old", .size = 10, .last_used = NOW - 7200 * SEC, .first_seen = NOW - 9e4 * SEC},
        {.id = "new", .size = 10, .last_used = NOW - 60 * SEC, .first_seen = NOW - 9e4 * SEC},
        {.id = "never", .size = 10, .first_seen = NOW - 4000 * SEC},
        {.id = "fresh", .size = 10, .first_seen = NOW - 100 * SEC},
        {.id = "busy", .size = 10, .last_used = NOW - 7200 * SEC, .first_seen = 1, .in_use = true},
    };
    check("max age: unused longer than it go, under the threshold too", &pol, it, 5, 1000, 900,
          NOW - 7200 * SEC, "never:a old:a", -1, 0);
    check("max age waits until the collector ran that long", &pol, it, 5, 1000, 900,
          NOW - 600 * SEC, "", -1, 0);
    /* 100% used: the age deletions count as freed space before the threshold is checked */
    check("age deletions lower the usage", &pol, it, 5, 1000, 140, NOW - 7200 * SEC,
          "never:a old:a", -1, 0);
    check("then space: LRU among the rest", &pol, it, 5, 1000, 130, NOW - 7200 * SEC,
          "never:a old:a new:s", 50, 10);
}

static void test_layers(void)
{
    static const char *const l_xy[] = {"sha256:base", "sha256:x"};
    static const uint64_t s_xy[] = {500, 7};
    static const char *const l_y[] = {"sha256:base"};
    static const uint64_t s_y[] = {500};
    struct img_gc_item it[] = {
        {.id = "x",
         .size = 10,
         .layers = l_xy,
         .layer_sizes = s_xy,
         .nlayers = 2,
         .last_used = NOW - 200 * SEC,
         .first_seen = 1},
        {.id = "y",
         .size = 10,
         .layers = l_y,
         .layer_sizes = s_y,
         .nlayers = 1,
         .last_used = NOW - 100 * SEC,
         .first_seen = 1},
    };
    /* 1000*20/100 - 0 = 200: x alone frees 17 (its own layer), y then the shared one */
    check("a shared layer is freed with its last image", &kubelet, it, 2, 1000, 0, NOW, "x:s y:s",
          200, 527);
    it[1].in_use = true;
    check("shared with an image in use: not freed", &kubelet, it, 2, 1000, 0, NOW, "x:s", 200, 17);
}

static void test_errors(void)
{
    struct img_gc_plan p;
    char *err = NULL;
    ok(img_gc_plan(&kubelet, NULL, 0, 0, 0, NOW, NOW, &p, &err) < 0 && err &&
           !strcmp(err, "invalid capacity 0 on image filesystem"),
       "capacity 0: %s", err ? err : "?");
    free(err);
    err = NULL;
    struct img_gc_policy bad = {70, 80, 0, 0};
    ok(img_gc_plan(&bad, NULL, 0, 10, 0, NOW, NOW, &p, &err) < 0 && err &&
           !strcmp(err, "LowThresholdPercent 80 can not be higher than HighThresholdPercent 70"),
       "low above high: %s", err ? err : "?");
    free(err);
}

static void test_backoff(void)
{
    backoff_t *b = backoff_new(10 * SEC, 300 * SEC);
    int64_t t = NOW;
    is_int(backoff_wait(b, "nginx", t), 0, "unknown key: no back-off");
    static const int64_t want[] = {10, 20, 40, 80, 160, 300, 300};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char name[64];
        int64_t w = backoff_next(b, "nginx", t);
        snprintf(name, sizeof name, "failure %zu: window %llds", i + 1, (long long)want[i]);
        is_int(w / SEC, want[i], name);
        is_int(backoff_wait(b, "nginx", t + SEC), w - SEC, "  in back-off a second later");
        t += w;
        is_int(backoff_wait(b, "nginx", t), 0, "  over when the window has passed");
    }
    is_int(backoff_wait(b, "busybox", t), 0, "keys are separate");
    is_int(backoff_next(b, "nginx", t + 601 * SEC) / SEC, 10, "stable for 2 x max: starts over");
    backoff_reset(b, "nginx");
    is_int(backoff_wait(b, "nginx", t + 602 * SEC), 0, "reset: no back-off");
    is_int(backoff_next(b, "nginx", t) / SEC, 10, "reset: starts at the base");
    backoff_next(b, "old", t - 1000 * SEC);
    backoff_gc(b, t);
    is_int(backoff_last(b, "old"), 0, "gc forgets stable keys");
    ok(backoff_last(b, "nginx") == t, "gc keeps the others");
    backoff_free(b);
}

int main(void)
{
    test_space();
    test_age();
    test_layers();
    test_errors();
    test_backoff();
    return done_testing();
}
