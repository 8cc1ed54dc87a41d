/*
 * kjson: the Kubernetes JSON forms the REST API answers with, made from
 * the stored (protobuf) bytes: objects (apiVersion and kind first, by
 * kobj), lists, watch event lines, Tables (columns.h), and Status errors
 * with Kubernetes' reason and code. Pure and thread-safe (the watch hub may build frames
 * in the read worker).
 */
#ifndef CORACLE_KJSON_H
#define CORACLE_KJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "columns.h"
#include "kinds.h"
#include "util.h"

/* An object of kind k from its encoded bytes: malloc'd JSON (one line), or NULL if malformed. */
char *kjson_object(const struct kind *k, const void *bytes, size_t len);
/*
 * A list (kind "PodList"...) from a ListResponse's bytes (items as field
 * 2, ListMeta as field 1): malloc'd JSON and *out_len, or NULL if malformed.
 */
char *kjson_list(const struct kind *k, const uint8_t *resp, size_t len, size_t *out_len);
/* A watch event line {"type":type,"object":...}\n from an object's bytes; NULL if malformed. */
rbuf_t *kjson_watch_frame(const struct kind *k, const char *type, const void *bytes, size_t len);
/*
 * A BOOKMARK line: the kind with metadata.resourceVersion only, and with
 * initial_end the annotation k8s.io/initial-events-end: "true" (the end
 * of a WatchList's initial state).
 */
rbuf_t *kjson_bookmark_frame(const struct kind *k, uint64_t rev, bool initial_end);

/*
 * meta.k8s.io/v1 Tables (what kubectl's get asks for), with the columns
 * of columns.h; rows carry what include says (?includeObject=). Of a
 * ListResponse's bytes, of one object's, and a watch event line whose
 * object is the Table of the event's object (with its columnDefinitions
 * if headers: a watch's first event). malloc'd, *out_len; NULL if
 * malformed.
 */
char *kjson_table_list(const struct kind *k, const uint8_t *resp, size_t len,
                       enum cols_include include, size_t *out_len);
char *kjson_table_object(const struct kind *k, const void *bytes, size_t len,
                         enum cols_include include, size_t *out_len);
rbuf_t *kjson_table_watch_frame(const struct kind *k, const char *type, const void *bytes,
                                size_t len, bool headers);

/* Kubernetes' Status failure for a gRPC code: the HTTP status and the reason. */
int kjson_http_status(int grpc_code, const char **reason);
/*
 * A Status failure (malloc'd JSON, one line ending in a newline): message,
 * and details {name, kind} when name is not NULL (kind is the resource,
 * "pods", as Kubernetes does).
 */
char *kjson_status(int http_status, const char *reason, const char *message, const char *resource,
                   const char *name);
/*
 * Kubernetes' Invalid (422) Status for message, an admission error as
 * Kubernetes words it (`Pod "x" is invalid: spec.containers[0].image:
 * Required value`, several as `[a, b]`): details name the object (kind
 * "Pod", group when not core) and carry one cause per field error (reason
 * FieldValueRequired..., message, field). malloc'd, ending in a newline.
 */
char *kjson_invalid(const char *group, const char *kind, const char *name, const char *message);
/*
 * Server-side apply's 409 (Kubernetes' NewApplyConflict): e's message and
 * one cause {reason FieldManagerConflict, message, field} per conflict.
 * malloc'd, ending in a newline.
 */
struct kssa_err;
char *kjson_apply_conflict(const struct kssa_err *e);
/* An ERROR watch event line carrying such a Status. */
rbuf_t *kjson_error_frame(int http_status, const char *reason, const char *message);

#endif
