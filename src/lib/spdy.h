/*
 * spdy: a strict parser and writer of SPDY/3.1 frames (the framing
 * Kubernetes' exec, attach and port-forward fall back to, and the only
 * one kubectl before 1.29 speaks), with the header blocks' zlib
 * compression and its SPDY/3 dictionary. No library in Debian does this
 * (spdylay is gone), so here it is, small: frames in, frames out; what a
 * stream means is the caller's.
 *
 * Bounds: a frame longer than max_frame, a header block that inflates
 * beyond max_headers, a header block or a control frame whose lengths do
 * not add up, a control frame of another version: the frame is refused
 * with a reason, and the connection cannot go on (the decompressor's
 * state is shared by every header block of the connection).
 */
#ifndef CORACLE_SPDY_H
#define CORACLE_SPDY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

enum spdy_type {
    SPDY_DATA = 0,
    SPDY_SYN_STREAM = 1,
    SPDY_SYN_REPLY = 2,
    SPDY_RST_STREAM = 3,
    SPDY_SETTINGS = 4,
    SPDY_PING = 6,
    SPDY_GOAWAY = 7,
    SPDY_HEADERS = 8,
    SPDY_WINDOW_UPDATE = 9,
};
#define SPDY_FLAG_FIN 0x01
#define SPDY_RST_PROTOCOL_ERROR 1
#define SPDY_RST_REFUSED_STREAM 3
#define SPDY_GOAWAY_OK 0
#define SPDY_GOAWAY_PROTOCOL_ERROR 1

/* One frame as parsed. Unknown control frame types come back with their type, to be ignored. */
struct spdy_frame {
    int type; /* enum spdy_type, or another control type */
    uint8_t flags;
    uint32_t stream_id;  /* DATA, SYN_*, RST_STREAM, HEADERS, WINDOW_UPDATE; GOAWAY: last good */
    uint32_t value;      /* RST_STREAM and GOAWAY: status; PING: id; WINDOW_UPDATE: delta */
    const uint8_t *data; /* DATA: the payload (points into the input) */
    size_t len;
    /* SYN_STREAM, SYN_REPLY, HEADERS: the headers, "name\0value\0" pairs (a value's first part
     * when it has several, NUL-separated), nhdrs of them; the frame owns them */
    struct buf hdrs;
    size_t nhdrs;
};

typedef struct spdy spdy_t;

/* A connection's state (both directions' header compression). max_*: bytes. */
spdy_t *spdy_new(size_t max_frame, size_t max_headers);
void spdy_free(spdy_t *z);
/*
 * Parses the first frame of buf[0..len): returns the bytes it takes (> 0)
 * with *f filled (spdy_frame_clear it after use), 0 if buf holds no
 * complete frame yet, or -1 with *err (a static string) if the input is
 * malformed: the connection must end (GOAWAY PROTOCOL_ERROR).
 */
ssize_t spdy_parse(spdy_t *z, const uint8_t *buf, size_t len, struct spdy_frame *f,
                   const char **err);
void spdy_frame_clear(struct spdy_frame *f);

/* Writers: each appends one frame to out. hdrs are n "name", "value" pairs (n pairs). */
void spdy_put_data(struct buf *out, uint32_t stream_id, uint8_t flags, const void *data,
                   size_t len);
void spdy_put_syn_reply(spdy_t *z, struct buf *out, uint32_t stream_id, uint8_t flags,
                        const char *const *hdrs, size_t n);
/* SYN_STREAM (for tests and clients: the server side never opens streams). */
void spdy_put_syn_stream(spdy_t *z, struct buf *out, uint32_t stream_id, uint8_t flags,
                         const char *const *hdrs, size_t n);
void spdy_put_rst_stream(struct buf *out, uint32_t stream_id, uint32_t status);
void spdy_put_ping(struct buf *out, uint32_t id);
void spdy_put_goaway(struct buf *out, uint32_t last_good, uint32_t status);

#endif
