/*
 * grpc: what the server and the client share of gRPC over HTTP/2: status
 * codes, their names, and the 5-byte length-prefixed message framing
 * (1 byte compressed flag, 4 bytes big-endian length, then the message).
 */
#ifndef CORACLE_GRPC_H
#define CORACLE_GRPC_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum grpc_code {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_ALREADY_EXISTS = 6,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_ABORTED = 10,
    GRPC_OUT_OF_RANGE = 11,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
    GRPC_DATA_LOSS = 15,
    GRPC_UNAUTHENTICATED = 16,
};

#define GRPC_FRAME_HDR 5
/* Default cap on one request message (--max-request-bytes; doc/security.md): 1.5 MiB. */
#define GRPC_MAX_MSG_DEFAULT (3u << 19)

/* "NOT_FOUND" etc.; "UNKNOWN" for codes out of range. Static string. */
const char *grpc_code_name(int code);

/* Writes the 5-byte header for a message of len bytes into hdr. */
void grpc_frame_hdr(uint8_t hdr[GRPC_FRAME_HDR], uint32_t len);

/* m encoded (pb_encode) behind its 5-byte header, in a new rbuf (refs = 1). */
rbuf_t *grpc_frame_msg(const ProtobufCMessage *m);

/*
 * Looks at buf[0..avail): returns 1 and sets *msg_len when a whole header is
 * there (the message may still be incomplete), 0 when fewer than 5 bytes,
 * -1 when the compressed flag is set (we do not compress).
 */
int grpc_frame_peek(const uint8_t *buf, size_t avail, uint32_t *msg_len);

/*
 * Percent-encodes a grpc-message value as the gRPC spec requires (bytes
 * outside 0x20-0x7e and '%'). Returns a malloc'd string.
 */
char *grpc_message_encode(const char *msg);
/* The reverse; malloc'd. */
char *grpc_message_decode(const char *msg, size_t len);

#endif
