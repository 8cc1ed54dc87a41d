/*
 * kssa: Kubernetes' server-side apply and metadata.managedFields, as
 * sigs.k8s.io/structured-merge-diff and apiserver's fieldmanager define
 * them, over protobuf-c messages: the types come from the descriptors (a
 * message is a struct, map<> a granular map, a repeated field a list whose
 * kind kmeta.h gives: "map" by its keys, "set", else atomic; kmeta can make
 * a map or struct atomic), and field names are the JSON names kobj uses.
 *
 * Every write records who changed what: kssa_update on creates, updates and
 * patches, kssa_apply for PATCH application/apply-patch+yaml. Field sets are
 * stored as FieldsV1 in structured-merge-diff's JSON, byte for byte
 * (`{"f:metadata":{"f:labels":{".":{},"f:app":{}}}}`); entries are sorted as
 * Kubernetes sorts them.
 *
 * Pure and thread-safe: the functions touch only their arguments. Where the
 * protobuf form cannot say what JSON can, kssa follows the message: an
 * empty list or map is no field at all, and null is an absent field.
 */
#ifndef CORACLE_KSSA_H
#define CORACLE_KSSA_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

/* The endpoint a write came through. */
struct kssa_opts {
    const char *api_version; /* the kind's apiVersion: "v1", "coordination.k8s.io/v1" */
    const char *subresource; /* "status", or NULL for the resource itself */
    /* Fields this endpoint resets, which no manager of it owns (Kubernetes'
     * strategies' GetResetFields): dotted JSON paths ("status",
     * "metadata.deletionTimestamp"), NULL-terminated; or NULL. */
    const char *const *reset;
};

/* One Status cause of a 409 (type FieldManagerConflict). */
struct kssa_cause {
    char *message; /* `conflict with "kubectl-client-side-apply" using v1` */
    char *field;   /* `.spec.containers[name="main"].image` */
};

/* Why an apply failed, as a Kubernetes Status says it. */
struct kssa_err {
    int code;                  /* 409 Conflict, 400 BadRequest, 500 InternalError */
    char *message;             /* Kubernetes' message */
    struct kssa_cause *causes; /* 409 only */
    size_t ncauses;
};
void kssa_err_free(struct kssa_err *e);

/*
 * Server-side apply of config (an object of the live object's type, parsed
 * from the request body) by manager (the fieldManager parameter; the caller
 * refuses an empty one as Kubernetes does), onto live (NULL: the object does
 * not exist, this apply creates it). force takes the fields other managers
 * own instead of answering 409. now: seconds since the epoch, for the
 * entry's time.
 *
 * Returns 0 and *out, the object to store (a new message, caller frees with
 * protobuf_c_message_free_unpacked): live merged with config, the fields
 * manager applied before and no longer applies removed unless another
 * manager owns them, and metadata.managedFields updated. Admission (defaults,
 * validation) and the resourceVersion precondition are the caller's, as for
 * an update. Or returns -1 and *err (free with kssa_err_free): 409 with one
 * cause per conflicting field, 400 for a config that cannot be applied
 * (managedFields set, duplicate or keyless list items), 500 if the live
 * object's managedFields cannot be read.
 */
int kssa_apply(const ProtobufCMessage *live, const ProtobufCMessage *config, const char *manager,
               int force, const struct kssa_opts *o, int64_t now, ProtobufCMessage **out,
               struct kssa_err *err);

/*
 * Records a write (create: old is NULL; update, patch, a subresource's
 * update) by manager (fieldManager, "" or NULL: the client's user agent
 * should be given; "unknown" if none) in nw's metadata.managedFields, in
 * place: the fields the write changed become manager's (an Update entry) and
 * leave the other managers' sets. managedFields the client sent in nw are
 * kept if they are valid (that is how clients edit them; one empty entry
 * clears them), else old's stay. Never fails: managedFields that cannot be
 * read are dropped, as Kubernetes does.
 */
void kssa_update(const ProtobufCMessage *old, ProtobufCMessage *nw, const char *manager,
                 const struct kssa_opts *o, int64_t now);

#endif
