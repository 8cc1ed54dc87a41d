/*
 * fuzz_spdy: src/lib/spdy.c on arbitrary client bytes, as rest_spdy.c
 * reads them: frames parsed one after the other over one connection's
 * state (the header decompressor carries over), until the input ends or
 * a frame is refused; every frame with headers is answered through the
 * writers (SYN_REPLY with the headers it brought), whose output must
 * parse back with a second state, the way the client would read it.
 */
#include "config.h"
#include "fuzz.h"
#include "spdy.h"

#include <stdlib.h>
#include <string.h>

int fuzz_spdy_one(const uint8_t *data, size_t size)
{
    spdy_t *srv = spdy_new(1u << 16, 4096), *cli = spdy_new(1u << 20, 1u << 16);
    struct buf out = {0};
    size_t off = 0;
    for (;;) {
        struct spdy_frame f;
        const char *err = NULL;
        ssize_t n = spdy_parse(srv, data + off, size - off, &f, &err);
        if (n < 0 && !err)
            abort(); /* a refusal always says why */
        if (n <= 0)
            break;
        off += (size_t)n;
        if (f.nhdrs) {
            const char **h = calloc(2 * f.nhdrs, sizeof(char *));
            size_t k = 0;
            for (size_t o = 0; o < f.hdrs.len && k < 2 * f.nhdrs; k++) {
                h[k] = f.hdrs.p + o;
                o += strlen(h[k]) + 1;
            }
            if (k != 2 * f.nhdrs)
                abort(); /* the pairs are what nhdrs says */
            spdy_put_syn_reply(srv, &out, f.stream_id ? f.stream_id : 1, 0, h, f.nhdrs);
            free(h);
        }
        if (f.type == SPDY_DATA)
            spdy_put_data(&out, f.stream_id, f.flags & SPDY_FLAG_FIN, f.data, f.len);
        else if (f.type == SPDY_PING)
            spdy_put_ping(&out, f.value);
        spdy_frame_clear(&f);
    }
    /* what we wrote must read back */
    for (size_t o = 0; o < out.len;) {
        struct spdy_frame f;
        const char *err = NULL;
        ssize_t n = spdy_parse(cli, (const uint8_t *)out.p + o, out.len - o, &f, &err);
        if (n <= 0)
            abort();
        o += (size_t)n;
        spdy_frame_clear(&f);
    }
    buf_free(&out);
    spdy_free(srv);
    spdy_free(cli);
    return 0;
}

FUZZ_ENTRY(fuzz_spdy_one)
