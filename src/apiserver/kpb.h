/*
 * kpb: Kubernetes' protobuf forms (application/vnd.kubernetes.protobuf)
 * of the REST API's answers, made from the stored (protobuf) bytes without
 * decoding them: coracle's messages use Kubernetes' field numbers, so the
 * stored bytes are what Kubernetes puts in the envelope.
 *
 * The envelope (apimachinery runtime/serializer/protobuf): the magic
 * "k8s\0", then a runtime.Unknown {1: typeMeta {1: apiVersion, 2: kind},
 * 2: raw (the object's bytes), 3: contentEncoding "", 4: contentType ""}.
 * A list's raw is the List message (ListMeta 1, items 2): a ListResponse's
 * bytes as read.c makes them. A watch stream is frames of a 4-byte
 * big-endian length and a metav1.WatchEvent {1: type, 2: RawExtension
 * {1: raw}} (no envelope of its own) whose raw is the enveloped object.
 * Pure and thread-safe.
 */
#ifndef CORACLE_KPB_H
#define CORACLE_KPB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kinds.h"
#include "util.h"

#define KPB_TYPE "application/vnd.kubernetes.protobuf"
#define KPB_WATCH_TYPE "application/vnd.kubernetes.protobuf;stream=watch"

/* The envelope's bytes around rawlen bytes of raw, and writing it at p (returns the bytes). */
size_t kpb_envelope_len(const char *api_version, const char *kind, size_t rawlen);
size_t kpb_envelope_put(uint8_t *p, const char *api_version, const char *kind, const void *raw,
                        size_t rawlen);

/* An object of kind k from its stored bytes, enveloped: malloc'd, *out_len. */
char *kpb_object(const struct kind *k, const void *bytes, size_t len, size_t *out_len);
/* A list ("PodList") from a ListResponse's bytes (taken as they are): malloc'd, *out_len. */
char *kpb_list(const struct kind *k, const uint8_t *resp, size_t len, size_t *out_len);

/* A watch frame of type with an object's stored bytes (refs = 1). */
rbuf_t *kpb_watch_frame(const struct kind *k, const char *type, const void *bytes, size_t len);
/*
 * A BOOKMARK frame: an object of kind k with only metadata.resourceVersion
 * (rev) and, when initial_end is set, the annotation
 * k8s.io/initial-events-end: "true" (the end of a WatchList's initial state).
 */
rbuf_t *kpb_bookmark_frame(const struct kind *k, uint64_t rev, bool initial_end);

/*
 * A Status failure (v1 Status: message, reason, code; details {name,
 * kind} when name is not NULL, kind being the resource as Kubernetes
 * does), enveloped: malloc'd, *out_len.
 */
char *kpb_status(int http_status, const char *reason, const char *message, const char *resource,
                 const char *name, size_t *out_len);
/* An ERROR watch frame carrying such a Status (no details). */
rbuf_t *kpb_error_frame(int http_status, const char *reason, const char *message);

#endif
