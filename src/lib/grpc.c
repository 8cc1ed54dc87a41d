/*
 * grpc: status names and message framing. See grpc.h.
 */
#include "config.h"
#include "grpc.h"
#include "pb.h"
#include "util.h"

#include <string.h>

const char *grpc_code_name(int code)
{
    static const char *names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    if (code < 0 || (size_t)code >= ARRAY_SIZE(names))
        return "UNKNOWN";
    return names[code];
}

void grpc_frame_hdr(uint8_t hdr[GRPC_FRAME_HDR], uint32_t len)
{
    hdr[0] = 0;
    hdr[1] = (uint8_t)(len >> 24);
    hdr[2] = (uint8_t)(len >> 16);
    hdr[3] = (uint8_t)(len >> 8);
    hdr[4] = (uint8_t)len;
}

int grpc_frame_peek(const uint8_t *buf, size_t avail, uint32_t *msg_len)
{
    if (avail < GRPC_FRAME_HDR)
        return 0;
    if (buf[0] != 0)
        return -1;
    *msg_len = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | buf[4];
    return 1;
}

char *grpc_message_encode(const char *msg)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(msg);
    char *out = xmalloc(n * 3 + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c < 0x20 || c > 0x7e || c == '%') {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        } else {
            *o++ = (char)c;
        }
    }
    *o = '\0';
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *grpc_message_decode(const char *msg, size_t len)
{
    char *out = xmalloc(len + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        int h, l;
        if (msg[i] == '%' && i + 2 < len && (h = hexval(msg[i + 1])) >= 0 &&
            (l = hexval(msg[i + 2])) >= 0) {
            *o++ = (char)(h << 4 | l);
            i += 2;
        } else {
            *o++ = msg[i];
        }
    }
    *o = '\0';
    return out;
}

rbuf_t *grpc_frame_msg(const ProtobufCMessage *m)
{
    size_t len;
    const uint8_t *p = pb_encode_scratch(m, &len);
    rbuf_t *b = rbuf_alloc(GRPC_FRAME_HDR + len);
    grpc_frame_hdr(b->data, (uint32_t)len);
    if (len)
        memcpy(b->data + GRPC_FRAME_HDR, p, len);
    return b;
}
