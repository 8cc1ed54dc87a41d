/*
 * openapi: the OpenAPI documents of the Kubernetes API coracle serves,
 * made from proto/'s descriptors and the kinds table, not written per
 * kind: Swagger 2.0 (/openapi/v2, as JSON and as gnostic's protobuf) and
 * OpenAPI 3.0 per group-version (/openapi/v3/api/v1, ...). kubectl reads
 * them for `explain`, for client-side apply's merge keys and to decide it
 * may leave validation to the server (fieldValidation on PATCH).
 *
 * Definitions are named as Kubernetes names them (io.k8s.api.core.v1.Pod,
 * io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta): a rule (a kind's
 * package from its apiVersion, core/v1 otherwise) and a short table of
 * exceptions. Properties are typed from the field types, with kmeta's
 * patch and list markers, a small table of required fields, and the
 * comments of proto/coracle.proto as descriptions (oapi_docs, generated
 * at build time by protodoc.awk).
 *
 * Generation walks descriptors and allocates; the apiserver does it once
 * and serves the bytes (rest_openapi.c). Any thread; no state.
 */
#ifndef CORACLE_OPENAPI_H
#define CORACLE_OPENAPI_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "kinds.h"

struct buf;

/* A comment of proto/coracle.proto: field "" describes the message itself. */
struct oapi_doc {
    const char *msg;   /* "coracle.v1.PodSpec" */
    const char *field; /* "containers", or "" */
    const char *text;
};
/* Every comment, ending with an entry whose msg is NULL (coracle_doc.c, generated). */
extern const struct oapi_doc oapi_docs[];

/* The description of field (or of the message, field "") of d, or NULL. */
const char *oapi_doc(const ProtobufCMessageDescriptor *d, const char *field);

/*
 * Kubernetes' definition name of message d ("io.k8s.api.core.v1.PodSpec")
 * into buf (n bytes, 128 are plenty); returns buf.
 */
const char *oapi_name(const ProtobufCMessageDescriptor *d, char *buf, size_t n);

/* A subresource of a kind beyond status (which a kind has if its object has a status field). */
struct oapi_sub {
    const char *resource;     /* the parent: "pods" */
    const char *name;         /* "binding", "log", "exec", "attach" */
    const char *kind;         /* what it answers or takes: "Binding", "Pod", "PodExecOptions" */
    const char *const *verbs; /* discovery's verbs, NULL-terminated */
    const char *api_version;  /* kind's group-version if not the parent's ("autoscaling/v1") */
};
/* Every such subresource, ending with an entry whose resource is NULL. */
extern const struct oapi_sub oapi_subs[];
/* Whether kind k has a status subresource (its object has a "status" field). */
bool oapi_has_status(const struct kind *k);

/* The Swagger 2.0 document, JSON. malloc'd; *len its length. */
char *oapi_v2(size_t *len);
/*
 * The OpenAPI 3.0 document of group-version gv ("v1",
 * "coordination.k8s.io/v1"), JSON, malloc'd (*len its length), or NULL
 * if no kind has gv.
 */
char *oapi_v3(const char *gv, size_t *len);

/*
 * openapi_pb.c: a Swagger 2.0 JSON document (json, len bytes) as gnostic's
 * openapi.v2.Document protobuf (what kubectl asks /openapi/v2 for),
 * appended to out. Returns 0, or -1 with *err (malloc'd) if json does
 * not parse. Members gnostic has no field for are left out.
 */
int oapi_v2_pb(const char *json, size_t len, struct buf *out, char **err);

#endif
