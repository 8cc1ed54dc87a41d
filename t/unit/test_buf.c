/*
 * Unit tests for src/lib/buf.c (the growable byte buffer and its protobuf
 * writers) and pb.h's varints, which those writers use.
 */
#include "config.h"
#include "tap.h"

#include "buf.h"
#include "pb.h"

#include <stdint.h>

static void test_text(void)
{
    struct buf b = {0};
    char *s = buf_take(&b);
    is_str(s, "", "take of an empty buffer is \"\"");
    free(s);
    ok(b.p == NULL && b.len == 0 && b.cap == 0, "and leaves it empty");
    buf_puts(&b, "abc");
    buf_add(&b, "defg", 2);
    buf_printf(&b, "-%d-%s", 42, "x");
    is_str(b.p, "abcde-42-x", "puts, add and printf append, NUL-terminated");
    is_int(b.len, 10, "len counts the bytes, not the NUL");
    buf_add(&b, "", 0);
    is_int(b.len, 10, "adding nothing adds nothing");
    s = buf_take(&b);
    is_str(s, "abcde-42-x", "take hands the string over");
    free(s);
    ok(b.p == NULL && b.len == 0, "take empties the buffer");
    buf_printf(&b, "%s", "");
    ok(b.p && b.p[0] == '\0' && b.len == 0, "printf of nothing leaves a valid empty string");
    buf_free(&b);
    ok(b.p == NULL && b.cap == 0, "free empties");
}

/* Every size from 0 to 70,000 bytes in odd-sized steps: seven doublings from 256. */
static void test_growth(void)
{
    struct buf b = {0};
    size_t caps = 0, last = 0, want = 0;
    int same = 1;
    char chunk[97];
    for (int i = 0; b.len < 70000; i++) {
        size_t n = (size_t)(i % 97);
        for (size_t j = 0; j < n; j++)
            chunk[j] = (char)('a' + (want + j) % 26);
        buf_add(&b, chunk, n);
        want += n;
        if (b.cap != last) {
            caps++;
            last = b.cap;
        }
        same &= b.len == want && b.p[b.len] == '\0' && b.len < b.cap;
    }
    ok(same, "len and the NUL right after every add");
    ok(caps >= 9, "capacity changed %zu times, now %zu", caps, b.cap);
    int bytes = 1;
    for (size_t j = 0; j < b.len; j++)
        bytes &= b.p[j] == (char)('a' + j % 26);
    ok(bytes, "every byte kept across the moves");
    /* printf longer than the room left */
    buf_free(&b);
    buf_puts(&b, "x");
    char big[3000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    buf_printf(&b, "[%s]", big);
    ok(b.len == 3002 && b.p[0] == 'x' && b.p[1] == '[' && b.p[3001] == ']' && !b.p[3002],
       "printf past the capacity grows and writes it all");
    buf_free(&b);
}

static void test_reserve_consume(void)
{
    struct buf b = {0};
    char *w = buf_reserve(&b, 5000);
    ok(w && b.cap >= 5001, "reserve makes room for the bytes and the NUL");
    memcpy(w, "hello world", 11);
    buf_commit(&b, 11);
    is_str(b.p, "hello world", "commit makes written bytes contents");
    buf_consume(&b, 6);
    is_str(b.p, "world", "consume drops the front");
    is_int(b.len, 5, "and shortens");
    size_t cap = b.cap;
    buf_consume(&b, 0);
    is_str(b.p, "world", "consuming nothing changes nothing");
    buf_consume(&b, 5);
    ok(b.len == 0 && b.p[0] == '\0' && b.cap == cap, "consuming all keeps the memory");
    buf_puts(&b, "again");
    cap = b.cap;
    buf_reset(&b);
    ok(b.len == 0 && b.p && b.p[0] == '\0' && b.cap == cap, "reset empties, keeps the memory");
    buf_free(&b);
    buf_consume(&b, 0); /* on an empty buffer */
    buf_reset(&b);
    ok(b.p == NULL, "consume and reset of an empty buffer allocate nothing");
}

static int bytes_are(const struct buf *b, const uint8_t *want, size_t n)
{
    return b->len == n && !memcmp(b->p, want, n);
}

static void test_varint(void)
{
    static const struct {
        uint64_t v;
        uint8_t enc[10];
        size_t n;
    } cases[] = {
        {0, {0x00}, 1},
        {1, {0x01}, 1},
        {127, {0x7f}, 1},
        {128, {0x80, 0x01}, 2},
        {300, {0xac, 0x02}, 2},
        {16383, {0xff, 0x7f}, 2},
        {16384, {0x80, 0x80, 0x01}, 3},
        {UINT32_MAX, {0xff, 0xff, 0xff, 0xff, 0x0f}, 5},
        {UINT64_MAX, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct buf b = {0};
        buf_varint(&b, cases[i].v);
        ok(bytes_are(&b, cases[i].enc, cases[i].n), "varint %llu: %zu bytes",
           (unsigned long long)cases[i].v, cases[i].n);
        is_int(pb_varint_len(cases[i].v), cases[i].n, "pb_varint_len");
        const uint8_t *p = (const uint8_t *)b.p;
        uint64_t v = 0;
        ok(pb_varint_get(&p, p + b.len, &v) == 0 && v == cases[i].v &&
               p == (const uint8_t *)b.p + b.len,
           "pb_varint_get reads it back and moves past it");
        if (cases[i].n > 1) {
            p = (const uint8_t *)b.p;
            ok(pb_varint_get(&p, p + b.len - 1, &v) < 0 && p == (const uint8_t *)b.p,
               "cut short: -1, nothing moved");
        }
        buf_free(&b);
    }
    static const uint8_t eleven[11] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                       0x80, 0x80, 0x80, 0x80, 0x01};
    const uint8_t *p = eleven;
    uint64_t v;
    ok(pb_varint_get(&p, eleven + 11, &v) < 0, "an 11-byte varint is refused");
}

static void test_field(void)
{
    struct buf b = {0};
    buf_field(&b, 1, "abc", 3);
    buf_field(&b, 2, "", 0);
    static const uint8_t want[] = {0x0a, 3, 'a', 'b', 'c', 0x12, 0};
    ok(bytes_are(&b, want, sizeof want), "length-delimited fields: tag, length, bytes");
    buf_free(&b);
    /* a field number past one tag byte, a length past one length byte */
    char big[200];
    memset(big, 'z', sizeof big);
    buf_field(&b, 16, big, sizeof big);
    static const uint8_t head[] = {0x82, 0x01, 0xc8, 0x01};
    ok(b.len == 4 + sizeof big && !memcmp(b.p, head, 4) && !memcmp(b.p + 4, big, sizeof big),
       "two-byte tag and length");
    buf_free(&b);
}

int main(void)
{
    test_text();
    test_growth();
    test_reserve_consume();
    test_varint();
    test_field();
    return done_testing();
}
