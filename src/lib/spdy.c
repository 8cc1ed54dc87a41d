/*
 * spdy: SPDY/3.1 frames and header blocks. See spdy.h.
 *
 * Wire format (SPDY/3.1 draft, sections 2.2 and 2.6): a control frame is
 * 1|version(15) type(16) flags(8) length(24) then its fields; a data frame
 * is 0|stream-id(31) flags(8) length(24) then the payload. Header blocks
 * (SYN_STREAM, SYN_REPLY, HEADERS) are count(32) then length-prefixed
 * names and values, compressed with zlib over one stream per direction
 * for the whole connection, primed with the SPDY/3 dictionary, each block
 * ending in a sync flush.
 */
#include "config.h"
#include "spdy.h"
#include "util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SPDY_VERSION 3

/* The SPDY/3 header compression dictionary (SPDY/3 draft, section 2.6.10.1). */
static const char spdy_dict[] =
    "\000\000\000\007options\000\000\000\004head\000\000\000\004post\000\000\000\003p"
    "ut\000\000\000\006delete\000\000\000\005trace\000\000\000\006accept\000\000\000\016"
    "accept-charset\000\000\000\017accept-encoding\000\000\000\017accept-language\000"
    "\000\000\015accept-ranges\000\000\000\003age\000\000\000\005allow\000\000\000\015"
    "authorization\000\000\000\015cache-control\000\000\000\012connection\000\000\000"
    "\014content-base\000\000\000\020content-encoding\000\000\000\020content-language"
    "\000\000\000\016content-length\000\000\000\020content-location\000\000\000\013co"
    "ntent-md5\000\000\000\015content-range\000\000\000\014content-type\000\000\000\004"
    "date\000\000\000\004etag\000\000\000\006expect\000\000\000\007expires\000\000\000"
    "\004from\000\000\000\004host\000\000\000\010if-match\000\000\000\021if-modified-"
    "since\000\000\000\015if-none-match\000\000\000\010if-range\000\000\000\023if-unm"
    "odified-since\000\000\000\015last-modified\000\000\000\010location\000\000\000\014"
    "max-forwards\000\000\000\006pragma\000\000\000\022proxy-authenticate\000\000\000"
    "\023proxy-authorization\000\000\000\005range\000\000\000\007referer\000\000\000\013"
    "retry-after\000\000\000\006server\000\000\000\002te\000\000\000\007trailer\000\000"
    "\000\021transfer-encoding\000\000\000\007upgrade\000\000\000\012user-agent\000\000"
    "\000\004vary\000\000\000\003via\000\000\000\007warning\000\000\000\020www-authen"
    "ticate\000\000\000\006method\000\000\000\003get\000\000\000\006status\000\000\000"
    "\006200 OK\000\000\000\007version\000\000\000\010HTTP/1.1\000\000\000\003url\000"
    "\000\000\006public\000\000\000\012set-cookie\000\000\000\012keep-alive\000\000\000"
    "\006origin1001012012022052063003023033043053063074024054064074084094104114124134"
    "14415416417502504505203 Non-Authoritative Information204 No Content301 Moved Per"
    "manently400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Se"
    "rver Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul "
    "Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text"
    "/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/p"
    "lain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset="
    "iso-8859-1,utf-,*,enq=0.";
_Static_assert(sizeof(spdy_dict) - 1 == 1423, "the SPDY/3 dictionary is 1423 bytes");

struct spdy {
    size_t max_frame, max_headers;
    z_stream in, out;
    int in_ok, out_ok;
    uint8_t *scratch; /* max_headers bytes: an inflated block */
};

spdy_t *spdy_new(size_t max_frame, size_t max_headers)
{
    spdy_t *z = xcalloc(1, sizeof(*z));
    z->max_frame = max_frame;
    z->max_headers = max_headers;
    z->scratch = xmalloc(max_headers);
    if (inflateInit(&z->in) != Z_OK || deflateInit(&z->out, Z_DEFAULT_COMPRESSION) != Z_OK)
        fatal("zlib: cannot initialise");
    z->in_ok = z->out_ok = 1;
    if (deflateSetDictionary(&z->out, (const Bytef *)spdy_dict, sizeof(spdy_dict) - 1) != Z_OK)
        fatal("zlib: cannot set the SPDY dictionary");
    return z;
}

void spdy_free(spdy_t *z)
{
    if (!z)
        return;
    inflateEnd(&z->in);
    deflateEnd(&z->out);
    free(z->scratch);
    free(z);
}

void spdy_frame_clear(struct spdy_frame *f)
{
    buf_free(&f->hdrs);
    memset(f, 0, sizeof(*f));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Inflates a compressed block into z->scratch: its length, or -1. */
static ssize_t inflate_block(spdy_t *z, const uint8_t *p, size_t n, const char **err)
{
    z->in.next_in = (Bytef *)p;
    z->in.avail_in = (uInt)n;
    z->in.next_out = z->scratch;
    z->in.avail_out = (uInt)z->max_headers;
    while (z->in.avail_in) {
        int rc = inflate(&z->in, Z_SYNC_FLUSH);
        if (rc == Z_NEED_DICT) {
            rc = inflateSetDictionary(&z->in, (const Bytef *)spdy_dict, sizeof(spdy_dict) - 1);
            if (rc == Z_OK)
                continue;
        }
        if (rc == Z_BUF_ERROR && z->in.avail_out == 0) {
            *err = "header block too large";
            return -1;
        }
        if (rc != Z_OK) {
            *err = "bad header block compression";
            return -1;
        }
        if (z->in.avail_out == 0 && z->in.avail_in) {
            *err = "header block too large";
            return -1;
        }
    }
    return (ssize_t)(z->max_headers - z->in.avail_out);
}

/* An inflated header block into f->hdrs: 0, or -1. */
static int parse_block(const uint8_t *p, size_t n, struct spdy_frame *f, const char **err)
{
    if (n < 4)
        goto bad;
    uint32_t count = get32(p);
    size_t off = 4;
    if (count > (n - 4) / 8)
        goto bad; /* each pair takes 8 bytes of lengths at least */
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *part[2];
        uint32_t plen[2];
        for (int k = 0; k < 2; k++) {
            if (n - off < 4)
                goto bad;
            plen[k] = get32(p + off);
            off += 4;
            if (plen[k] > n - off)
                goto bad;
            part[k] = p + off;
            off += plen[k];
        }
        if (!plen[0] || memchr(part[0], '\0', plen[0])) {
            *err = "empty or bad header name";
            return -1;
        }
        const uint8_t *nul = memchr(part[1], '\0', plen[1]);
        buf_add(&f->hdrs, part[0], plen[0]);
        buf_add(&f->hdrs, "", 1);
        buf_add(&f->hdrs, part[1], nul ? (size_t)(nul - part[1]) : plen[1]);
        buf_add(&f->hdrs, "", 1);
        f->nhdrs++;
    }
    if (off != n)
        goto bad;
    return 0;
bad:
    *err = "malformed header block";
    return -1;
}

static int headers(spdy_t *z, const uint8_t *p, size_t n, struct spdy_frame *f, const char **err)
{
    ssize_t m = inflate_block(z, p, n, err);
    return m < 0 ? -1 : parse_block(z->scratch, (size_t)m, f, err);
}

/* A control frame's fields (p: after the 8-byte head, n: its length). */
static int control(spdy_t *z, const uint8_t *p, size_t n, struct spdy_frame *f, const char **err)
{
    size_t need[] = {[SPDY_SYN_STREAM] = 10, [SPDY_SYN_REPLY] = 4,    [SPDY_RST_STREAM] = 8,
                     [SPDY_SETTINGS] = 4,    [SPDY_PING] = 4,         [SPDY_GOAWAY] = 8,
                     [SPDY_HEADERS] = 4,     [SPDY_WINDOW_UPDATE] = 8};
    if (f->type <= SPDY_WINDOW_UPDATE && n < need[f->type]) {
        *err = "control frame too short";
        return -1;
    }
    bool exact = f->type == SPDY_RST_STREAM || f->type == SPDY_PING || f->type == SPDY_GOAWAY ||
                 f->type == SPDY_WINDOW_UPDATE;
    if (f->type <= SPDY_WINDOW_UPDATE && exact && n != need[f->type]) {
        *err = "control frame of the wrong length";
        return -1;
    }
    switch (f->type) {
    case SPDY_SYN_STREAM:
    case SPDY_SYN_REPLY:
    case SPDY_HEADERS:
        f->stream_id = get32(p) & 0x7fffffff;
        if (!f->stream_id) {
            *err = "stream id 0";
            return -1;
        }
        {
            size_t skip = f->type == SPDY_SYN_STREAM ? 10 : 4;
            return headers(z, p + skip, n - skip, f, err);
        }
    case SPDY_RST_STREAM:
    case SPDY_GOAWAY:
    case SPDY_WINDOW_UPDATE:
        f->stream_id = get32(p) & 0x7fffffff;
        f->value = get32(p + 4) & (f->type == SPDY_WINDOW_UPDATE ? 0x7fffffff : 0xffffffff);
        return 0;
    case SPDY_PING:
        f->value = get32(p);
        return 0;
    case SPDY_SETTINGS:
        if (n != 4 + 8 * (size_t)get32(p)) {
            *err = "SETTINGS of the wrong length";
            return -1;
        }
        return 0;
    default:
        return 0; /* unknown control frames are ignored (SPDY/3 2.2.1) */
    }
}

ssize_t spdy_parse(spdy_t *z, const uint8_t *buf, size_t len, struct spdy_frame *f,
                   const char **err)
{
    memset(f, 0, sizeof(*f));
    if (len < 8)
        return 0;
    size_t n = get32(buf + 4) & 0xffffff;
    f->flags = buf[4];
    if (n > z->max_frame) {
        *err = "frame too large";
        return -1;
    }
    if ((buf[0] & 0x80) && ((buf[0] & 0x7f) << 8 | buf[1]) != SPDY_VERSION) {
        *err = "not SPDY version 3";
        return -1;
    }
    if (len < 8 + n)
        return 0;
    if (!(buf[0] & 0x80)) {
        f->type = SPDY_DATA;
        f->stream_id = get32(buf) & 0x7fffffff;
        f->data = buf + 8;
        f->len = n;
        if (!f->stream_id) {
            *err = "DATA on stream 0";
            return -1;
        }
        return (ssize_t)(8 + n);
    }
    f->type = buf[2] << 8 | buf[3];
    if (f->type == SPDY_DATA) {
        *err = "control frame of type 0";
        return -1;
    }
    if (control(z, buf + 8, n, f, err) < 0) {
        spdy_frame_clear(f);
        return -1;
    }
    return (ssize_t)(8 + n);
}

/* ---- writing */

static void put_head(struct buf *out, int control, uint32_t first, uint8_t flags, size_t len)
{
    uint8_t h[8];
    put32(h, control ? 0x80000000u | (uint32_t)SPDY_VERSION << 16 | first : first & 0x7fffffff);
    put32(h + 4, (uint32_t)flags << 24 | (uint32_t)len);
    buf_add(out, h, 8);
}

void spdy_put_data(struct buf *out, uint32_t stream_id, uint8_t flags, const void *data, size_t len)
{
    put_head(out, 0, stream_id, flags, len);
    buf_add(out, data, len);
}

/* The compressed header block of hdrs into blk. */
static void deflate_block(spdy_t *z, struct buf *blk, const char *const *hdrs, size_t n)
{
    struct buf raw = {0};
    uint8_t l[4];
    put32(l, (uint32_t)n);
    buf_add(&raw, l, 4);
    for (size_t i = 0; i < 2 * n; i++) {
        put32(l, (uint32_t)strlen(hdrs[i]));
        buf_add(&raw, l, 4);
        buf_puts(&raw, hdrs[i]);
    }
    z->out.next_in = (Bytef *)raw.p;
    z->out.avail_in = (uInt)raw.len;
    do {
        size_t room = raw.len + 64;
        z->out.next_out = buf_reserve(blk, room);
        z->out.avail_out = (uInt)room;
        deflate(&z->out, Z_SYNC_FLUSH);
        buf_commit(blk, room - z->out.avail_out);
    } while (z->out.avail_out == 0);
    buf_free(&raw);
}

static void put_syn(spdy_t *z, struct buf *out, int type, uint32_t stream_id, uint8_t flags,
                    const char *const *hdrs, size_t n)
{
    struct buf blk = {0};
    deflate_block(z, &blk, hdrs, n);
    size_t fixed = type == SPDY_SYN_STREAM ? 10 : 4;
    put_head(out, 1, (uint32_t)type, flags, fixed + blk.len);
    uint8_t f[10] = {0};
    put32(f, stream_id & 0x7fffffff);
    buf_add(out, f, fixed);
    buf_add(out, blk.p, blk.len);
    buf_free(&blk);
}

void spdy_put_syn_reply(spdy_t *z, struct buf *out, uint32_t stream_id, uint8_t flags,
                        const char *const *hdrs, size_t n)
{
    put_syn(z, out, SPDY_SYN_REPLY, stream_id, flags, hdrs, n);
}

void spdy_put_syn_stream(spdy_t *z, struct buf *out, uint32_t stream_id, uint8_t flags,
                         const char *const *hdrs, size_t n)
{
    put_syn(z, out, SPDY_SYN_STREAM, stream_id, flags, hdrs, n);
}

static void put_two(struct buf *out, int type, uint32_t a, uint32_t b)
{
    put_head(out, 1, (uint32_t)type, 0, 8);
    uint8_t p[8];
    put32(p, a);
    put32(p + 4, b);
    buf_add(out, p, 8);
}

void spdy_put_rst_stream(struct buf *out, uint32_t stream_id, uint32_t status)
{
    put_two(out, SPDY_RST_STREAM, stream_id & 0x7fffffff, status);
}

void spdy_put_goaway(struct buf *out, uint32_t last_good, uint32_t status)
{
    put_two(out, SPDY_GOAWAY, last_good & 0x7fffffff, status);
}

void spdy_put_ping(struct buf *out, uint32_t id)
{
    put_head(out, 1, SPDY_PING, 0, 4);
    uint8_t p[4];
    put32(p, id);
    buf_add(out, p, 4);
}
