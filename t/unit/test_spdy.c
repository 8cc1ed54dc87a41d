/*
 * Unit tests for src/lib/spdy.c: frames written and read back (header
 * blocks through the shared compression state, several in a row), a
 * frame cut anywhere waits for more, and each refusal says why.
 */
#include "config.h"
#include "tap.h"

#include "spdy.h"

#include <string.h>

static void test_roundtrip(void)
{
    spdy_t *w = spdy_new(1 << 20, 4096), *r = spdy_new(1 << 20, 4096);
    struct buf out = {0};
    const char *h1[] = {"streamtype", "error"};
    const char *h2[] = {"streamtype", "stdout", "x-other", "value"};
    spdy_put_syn_stream(w, &out, 1, 0, h1, 1);
    spdy_put_syn_stream(w, &out, 3, SPDY_FLAG_FIN, h2, 2);
    spdy_put_syn_reply(w, &out, 3, 0, NULL, 0);
    spdy_put_data(&out, 3, SPDY_FLAG_FIN, "hello", 5);
    spdy_put_ping(&out, 7);
    spdy_put_rst_stream(&out, 5, SPDY_RST_REFUSED_STREAM);
    spdy_put_goaway(&out, 3, SPDY_GOAWAY_OK);
    struct spdy_frame f;
    const char *err = NULL;
    size_t off = 0;
    ssize_t n = spdy_parse(r, (const uint8_t *)out.p, out.len, &f, &err);
    ok(n > 0 && f.type == SPDY_SYN_STREAM && f.stream_id == 1 && f.nhdrs == 1 &&
           !strcmp(f.hdrs.p, "streamtype") && !strcmp(f.hdrs.p + 11, "error"),
       "SYN_STREAM 1 with its header");
    off += (size_t)n;
    spdy_frame_clear(&f);
    n = spdy_parse(r, (const uint8_t *)out.p + off, out.len - off, &f, &err);
    ok(n > 0 && f.stream_id == 3 && f.flags == SPDY_FLAG_FIN && f.nhdrs == 2,
       "a second header block from the same compression state");
    off += (size_t)n;
    spdy_frame_clear(&f);
    n = spdy_parse(r, (const uint8_t *)out.p + off, out.len - off, &f, &err);
    ok(n > 0 && f.type == SPDY_SYN_REPLY && f.nhdrs == 0, "SYN_REPLY with no headers");
    off += (size_t)n;
    spdy_frame_clear(&f);
    n = spdy_parse(r, (const uint8_t *)out.p + off, out.len - off, &f, &err);
    ok(n > 0 && f.type == SPDY_DATA && f.stream_id == 3 && f.len == 5 &&
           !memcmp(f.data, "hello", 5) && f.flags == SPDY_FLAG_FIN,
       "DATA with FIN");
    off += (size_t)n;
    n = spdy_parse(r, (const uint8_t *)out.p + off, out.len - off, &f, &err);
    ok(n > 0 && f.type == SPDY_PING && f.value == 7, "PING");
    off += (size_t)n;
    n = spdy_parse(r, (const uint8_t *)out.p + off, out.len - off, &f, &err);
    ok(n > 0 && f.type == SPDY_RST_STREAM && f.stream_id == 5 && f.value == 3, "RST_STREAM");
    off += (size_t)n;
    n = spdy_parse(r, (const uint8_t *)out.p + off, out.len - off, &f, &err);
    ok(n > 0 && f.type == SPDY_GOAWAY && f.stream_id == 3 && off + (size_t)n == out.len,
       "GOAWAY, the last frame");
    /* every cut of the first frame waits */
    spdy_t *r2 = spdy_new(1 << 20, 4096);
    int waits = 1;
    for (size_t cut = 0; cut < 20; cut++)
        waits &= spdy_parse(r2, (const uint8_t *)out.p, cut, &f, &err) == 0;
    ok(waits, "a frame cut short: 0, more input needed");
    spdy_free(r2);
    buf_free(&out);
    spdy_free(w);
    spdy_free(r);
}

static void refused(const char *what, const void *in, size_t len, size_t max_headers,
                    const char *why)
{
    spdy_t *r = spdy_new(64, max_headers);
    struct spdy_frame f;
    const char *err = NULL;
    ssize_t n = spdy_parse(r, in, len, &f, &err);
    ok(n == -1 && err && strstr(err, why), "%s: refused (%s)", what, err ? err : "no reason");
    spdy_free(r);
}

static void test_refusals(void)
{
    refused("a frame over the cap", "\x80\x03\x00\x01\x00\x01\x00\x00", 8, 4096, "too large");
    refused("SPDY/2", "\x80\x02\x00\x01\x00\x00\x00\x0a", 8, 4096, "version 3");
    refused("control type 0", "\x80\x03\x00\x00\x00\x00\x00\x00", 8, 4096, "type 0");
    refused("DATA on stream 0", "\x00\x00\x00\x00\x00\x00\x00\x00", 8, 4096, "stream 0");
    refused("PING of 3 bytes", "\x80\x03\x00\x06\x00\x00\x00\x03\x00\x00\x00", 11, 4096,
            "too short");
    refused("PING of 5 bytes", "\x80\x03\x00\x06\x00\x00\x00\x05\x00\x00\x00\x00\x00", 13, 4096,
            "wrong length");
    refused("SYN_STREAM without its fields", "\x80\x03\x00\x01\x00\x00\x00\x02\x00\x00", 10, 4096,
            "too short");
    refused("a header block that is not zlib",
            "\x80\x03\x00\x01\x00\x00\x00\x0e\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
            "abcd",
            22, 4096, "compression");
    /* a block that inflates beyond max_headers */
    spdy_t *w = spdy_new(1 << 20, 4096);
    struct buf out = {0};
    char big[3000];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *h[] = {"a", big, "b", big};
    spdy_put_syn_stream(w, &out, 1, 0, h, 2);
    spdy_t *r = spdy_new(1 << 20, 4096);
    struct spdy_frame f;
    const char *err = NULL;
    ok(spdy_parse(r, (const uint8_t *)out.p, out.len, &f, &err) == -1 && err &&
           strstr(err, "too large"),
       "a header block inflating over the cap: refused (%s)", err ? err : "");
    spdy_free(r);
    spdy_free(w);
    buf_free(&out);
}

int main(void)
{
    test_roundtrip();
    test_refusals();
    return done_testing();
}
