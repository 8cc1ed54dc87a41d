/*
 * Unit tests for src/lib/etcd.c without a server: prefix range ends, the
 * options etcd_new refuses, the decoding arena (includes the .c to reach
 * it). The client against real members: t/39-etcd-client.t.
 */
#include "config.h"
#include "tap.h"

#include "../../src/lib/etcd.c"

#include <stdint.h>

static void test_prefix_end(void)
{
    uint8_t out[8];
    is_int(etcd_prefix_end("a/", 2, out), 2, "a/: 2 bytes");
    ok(memcmp(out, "a0", 2) == 0, "a/ -> a0");
    is_int(etcd_prefix_end("a\xff", 2, out), 1, "a\\xff: 1 byte");
    ok(out[0] == 'b', "a\\xff -> b");
    is_int(etcd_prefix_end("\xff\xff", 2, out), 0, "all 0xff: 0 bytes");
    ok(out[0] == 0, "with out[0] = 0: to the end");
    ProtobufCBinaryData b = etcd_end(out, 0);
    ok(b.len == 1 && b.data[0] == 0, "a range end of length 0 is sent as \"\\0\"");
    ok(etcd_end(NULL, 0).len == 0, "no range end: nothing sent");
}

static void test_new_errors(void)
{
    struct event_base *base = event_base_new();
    char *err = NULL;
    struct etcd_opts o = {0};
    etcd_t *e = etcd_new(base, &o, &err);
    ok(!e && err && strstr(err, "no endpoint"), "no endpoint: %s", err ? err : "-");
    free(err);
    const char *bad[] = {"127.0.0.1", "http://127.0.0.1:0", "ftp://h:1", "http://h:1/x",
                         "https://h:1"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        o.endpoints = &bad[i];
        o.n_endpoints = 1;
        err = NULL;
        e = etcd_new(base, &o, &err);
        ok(!e && err && strstr(err, bad[i]), "refused: %s", err ? err : bad[i]);
        free(err);
    }
    const char *good[] = {"http://127.0.0.1:2379", "localhost:2379"};
    o.endpoints = good;
    o.n_endpoints = 2;
    e = etcd_new(base, &o, &err);
    ok(e && !err, "two endpoints accepted");
    ok(e && strcmp(etcd_endpoint(e), good[0]) == 0, "the first is in use");
    etcd_free(e);
    event_base_free(base);
}

static void test_arena(void)
{
    struct arena *a = xcalloc(1, sizeof(*a));
    int aligned = 1;
    for (int i = 0; i < 5000; i++) {
        char *p = etcd_arena_alloc(a, (size_t)(i % 37) + 1);
        aligned &= (uintptr_t)p % alignof(max_align_t) == 0;
        memset(p, 0xaa, (size_t)(i % 37) + 1);
    }
    ok(aligned, "every allocation aligned");
    ok(a->n_old > 0, "grew over several blocks (%zu)", a->n_old);
    arena_reset(a);
    ok(a->n_old == 0 && a->blk && a->cap >= a->total, "reset: one block kept (%zu bytes)", a->cap);
    etcd_arena_alloc(a, ARENA_KEEP + 1);
    arena_reset(a);
    ok(!a->blk && a->cap == 0, "after an answer over %u bytes nothing is kept", ARENA_KEEP);
    /* bytes that do not decode: NULL, nothing leaked (the arena owns it all) */
    ok(!etcd_decode(a, &etcdserverpb__watch_response__descriptor,
                    (const uint8_t *)"\x0a\x05"
                                     "ab",
                    4),
       "a truncated WatchResponse does not decode");
    Etcdserverpb__KeyValue kv = ETCDSERVERPB__KEY_VALUE__INIT;
    kv.key = etcd_bin("k", 1);
    kv.value = etcd_bin("v", 1);
    kv.mod_revision = 7;
    size_t len;
    uint8_t *buf = etcd_encode(&kv.base, &len);
    Etcdserverpb__KeyValue *d =
        (Etcdserverpb__KeyValue *)etcd_decode(a, &etcdserverpb__key_value__descriptor, buf, len);
    struct etcd_kv v;
    etcd_kv_view(d, &v);
    ok(v.key_len == 1 && v.key[0] == 'k' && v.value[0] == 'v' && v.mod_revision == 7,
       "a KeyValue round trip through the arena");
    free(buf);
    arena_destroy(a);
}

int main(void)
{
    log_init("test_etcd");
    log_set_level(LOG_LVL_ERR);
    test_prefix_end();
    test_new_errors();
    test_arena();
    done_testing();
}
