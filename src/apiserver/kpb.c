/*
 * kpb: Kubernetes' protobuf envelope and watch frames. See kpb.h.
 *
 * Everything is sized first and written in one allocation: an answer
 * costs one copy of the stored bytes, as a gRPC answer does.
 */
#include "config.h"
#include "kpb.h"
#include "buf.h"
#include "pb.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t magic[4] = {'k', '8', 's', 0};

/* Bytes of a length-delimited field of n bytes (field numbers below 16: a one-byte tag). */
static size_t ld_len(size_t n)
{
    return 1 + pb_varint_len(n) + n;
}

/* Writes a length-delimited field's tag and length at w; returns where its n bytes go. */
static uint8_t *put_hdr(uint8_t *w, uint32_t field, size_t n)
{
    *w++ = (uint8_t)(field << 3 | 2);
    return w + pb_varint_put(w, n);
}

static uint8_t *put_ld(uint8_t *w, uint32_t field, const void *d, size_t n)
{
    w = put_hdr(w, field, n);
    if (n)
        memcpy(w, d, n);
    return w + n;
}

/* The runtime.TypeMeta's bytes (apiVersion 1, kind 2). */
static size_t type_meta_len(const char *api_version, const char *kind)
{
    return ld_len(strlen(api_version)) + ld_len(strlen(kind));
}

/* The runtime.Unknown's bytes; contentEncoding and contentType are there, empty, as Go writes
 * them. */
static size_t unknown_len(const char *api_version, const char *kind, size_t rawlen)
{
    return ld_len(type_meta_len(api_version, kind)) + ld_len(rawlen) + 2 + 2;
}

size_t kpb_envelope_len(const char *api_version, const char *kind, size_t rawlen)
{
    return sizeof(magic) + unknown_len(api_version, kind, rawlen);
}

size_t kpb_envelope_put(uint8_t *p, const char *api_version, const char *kind, const void *raw,
                        size_t rawlen)
{
    uint8_t *w = p;
    memcpy(w, magic, sizeof(magic));
    w += sizeof(magic);
    w = put_hdr(w, 1, type_meta_len(api_version, kind));
    w = put_ld(w, 1, api_version, strlen(api_version));
    w = put_ld(w, 2, kind, strlen(kind));
    w = put_ld(w, 2, raw, rawlen);
    w = put_ld(w, 3, NULL, 0);
    w = put_ld(w, 4, NULL, 0);
    return (size_t)(w - p);
}

static char *envelope(const char *api_version, const char *kind, const void *raw, size_t rawlen,
                      size_t *out_len)
{
    size_t n = kpb_envelope_len(api_version, kind, rawlen);
    char *o = xmalloc(n);
    *out_len = kpb_envelope_put((uint8_t *)o, api_version, kind, raw, rawlen);
    return o;
}

char *kpb_object(const struct kind *k, const void *bytes, size_t len, size_t *out_len)
{
    return envelope(k->api_version, k->kind, bytes, len, out_len);
}

char *kpb_list(const struct kind *k, const uint8_t *resp, size_t len, size_t *out_len)
{
    char kind[64];
    snprintf(kind, sizeof(kind), "%sList", k->kind);
    return envelope(k->api_version, kind, resp, len, out_len);
}

/* A frame: length, WatchEvent {type, RawExtension {the enveloped raw}}. */
static rbuf_t *event_frame(const char *type, const char *api_version, const char *kind,
                           const void *raw, size_t rawlen)
{
    size_t tl = strlen(type), env = kpb_envelope_len(api_version, kind, rawlen);
    size_t ev = ld_len(tl) + ld_len(ld_len(env));
    rbuf_t *f = rbuf_alloc(4 + ev);
    uint8_t *w = f->data;
    w[0] = (uint8_t)(ev >> 24);
    w[1] = (uint8_t)(ev >> 16);
    w[2] = (uint8_t)(ev >> 8);
    w[3] = (uint8_t)ev;
    w = put_ld(w + 4, 1, type, tl);
    w = put_hdr(w, 2, ld_len(env));
    w = put_hdr(w, 1, env);
    kpb_envelope_put(w, api_version, kind, raw, rawlen);
    return f;
}

rbuf_t *kpb_watch_frame(const struct kind *k, const char *type, const void *bytes, size_t len)
{
    return event_frame(type, k->api_version, k->kind, bytes, len);
}

rbuf_t *kpb_bookmark_frame(const struct kind *k, uint64_t rev, bool initial_end)
{
    static const char ak[] = "k8s.io/initial-events-end", av[] = "true";
    char rv[24];
    size_t rvl = (size_t)snprintf(rv, sizeof(rv), "%" PRIu64, rev);
    size_t entry = ld_len(sizeof(ak) - 1) + ld_len(sizeof(av) - 1);
    size_t meta = ld_len(rvl) + (initial_end ? ld_len(entry) : 0);
    uint8_t obj[128], *w = obj;
    w = put_hdr(w, 1, meta);
    w = put_ld(w, 6, rv, rvl);
    if (initial_end) {
        w = put_hdr(w, 12, entry);
        w = put_ld(w, 1, ak, sizeof(ak) - 1);
        w = put_ld(w, 2, av, sizeof(av) - 1);
    }
    return event_frame("BOOKMARK", k->api_version, k->kind, obj, (size_t)(w - obj));
}

/* A v1 Status's own bytes (no envelope) into b. */
static void status_raw(struct buf *b, int http_status, const char *reason, const char *message,
                       const char *resource, const char *name)
{
    buf_field(b, 1, NULL, 0); /* metadata: an empty ListMeta */
    buf_field(b, 2, "Failure", 7);
    buf_field(b, 3, message ? message : "", message ? strlen(message) : 0);
    buf_field(b, 4, reason, strlen(reason));
    if (name) {
        struct buf d = {0};
        buf_field(&d, 1, name, strlen(name));
        buf_field(&d, 3, resource ? resource : "", resource ? strlen(resource) : 0);
        buf_field(b, 5, d.p, d.len);
        buf_free(&d);
    }
    buf_varint(b, 6 << 3);
    buf_varint(b, (uint64_t)(uint32_t)http_status);
}

char *kpb_status(int http_status, const char *reason, const char *message, const char *resource,
                 const char *name, size_t *out_len)
{
    struct buf b = {0};
    status_raw(&b, http_status, reason, message, resource, name);
    char *o = envelope("v1", "Status", b.p, b.len, out_len);
    buf_free(&b);
    return o;
}

rbuf_t *kpb_error_frame(int http_status, const char *reason, const char *message)
{
    struct buf b = {0};
    status_raw(&b, http_status, reason, message, NULL, NULL);
    rbuf_t *f = event_frame("ERROR", "v1", "Status", b.p, b.len);
    buf_free(&b);
    return f;
}
