/*
 * kmeta: what Kubernetes' Go types say about lists and maps beyond their
 * shape (the +patchStrategy, +patchMergeKey, +listType, +listMapKey and
 * +mapType markers of types.go), for the fields of proto/ that carry them.
 * Strategic merge patch, server-side apply and the OpenAPI documents
 * (x-kubernetes-patch-strategy, x-kubernetes-patch-merge-key,
 * x-kubernetes-list-type, x-kubernetes-list-map-keys, x-kubernetes-map-type)
 * read it. A field added to proto/ whose Go type has such markers gets its
 * line in kmeta.c, copied from types.go.
 *
 * A field without an entry: a repeated field is an atomic list (replaced
 * whole by a patch, owned whole by one manager), a map or message is
 * granular (merged key by key).
 */
#ifndef CORACLE_KMETA_H
#define CORACLE_KMETA_H

#include <protobuf-c/protobuf-c.h>

#define KMETA_MAX_KEYS 2

struct kmeta {
    const char *msg;       /* the message's full proto name: "coracle.v1.PodSpec" */
    const char *field;     /* the field's JSON name: "containers" */
    const char *strategy;  /* patch strategy: "merge", "merge,retainKeys", "replace", or NULL */
    const char *merge_key; /* strategic merge key ("name"), or NULL */
    const char *list_type; /* "atomic", "set", "map", or NULL (not a list, or unmarked) */
    const char *map_keys[KMETA_MAX_KEYS]; /* list_type "map": the keys, NULL-padded */
    const char *map_type;                 /* maps and structs: "atomic" or NULL (granular) */
};

/* The entry of field (JSON name) of message d, or NULL if Kubernetes marks nothing. */
const struct kmeta *kmeta_lookup(const ProtobufCMessageDescriptor *d, const char *field);
/* Every entry, ending with one whose msg is NULL (for the OpenAPI documents and tests). */
extern const struct kmeta kmeta_all[];

#endif
