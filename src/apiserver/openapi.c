/*
 * openapi: the Swagger 2.0 and OpenAPI 3.0 documents, written as JSON
 * from the descriptors and the kinds table: the names, the schemas and
 * the documents (openapi_paths.c writes their paths). See openapi.h.
 *
 * One writer makes both versions; they differ in where definitions live
 * (#/definitions/ or #/components/schemas/), in how parameters, bodies
 * and answers are spelled, and in "type": "object": the 2.0 document
 * leaves it off structs, as Kubernetes did when kubectl 1.20's parser
 * (which takes an object type for a map) was written.
 */
#include "config.h"
#include "openapi_int.h"
#include "kmeta.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- names */

#define APPS "io.k8s.api.apps.v1"
#define BATCH "io.k8s.api.batch.v1"
#define AUTOSCALING "io.k8s.api.autoscaling.v1"
#define RBAC "io.k8s.api.rbac.v1"
#define AUTHN "io.k8s.api.authentication.v1"
#define AUTHZ "io.k8s.api.authorization.v1"

/* Messages outside the package the rule gives them. */
static const struct {
    const ProtobufCMessageDescriptor *d;
    const char *pkg;
} name_exceptions[] = {
    {&coracle__v1__time__descriptor, META},
    {&coracle__v1__micro_time__descriptor, META},
    {&coracle__v1__object_meta__descriptor, META},
    {&coracle__v1__list_meta__descriptor, META},
    {&coracle__v1__owner_reference__descriptor, META},
    {&coracle__v1__preconditions__descriptor, META},
    {&coracle__v1__managed_fields_entry__descriptor, META},
    {&coracle__v1__fields_v1__descriptor, META},
    {&coracle__v1__quantity__descriptor, "io.k8s.apimachinery.pkg.api.resource"},
    {&coracle__v1__int_or_string__descriptor, "io.k8s.apimachinery.pkg.util.intstr"},
    {&coracle__v1__lease_spec__descriptor, "io.k8s.api.coordination.v1"},
    {&coracle__v1__label_selector__descriptor, META},
    {&coracle__v1__label_selector_requirement__descriptor, META},
    {&coracle__v1__deployment_spec__descriptor, APPS},
    {&coracle__v1__deployment_strategy__descriptor, APPS},
    {&coracle__v1__rolling_update_deployment__descriptor, APPS},
    {&coracle__v1__deployment_status__descriptor, APPS},
    {&coracle__v1__deployment_condition__descriptor, APPS},
    {&coracle__v1__replica_set_spec__descriptor, APPS},
    {&coracle__v1__replica_set_status__descriptor, APPS},
    {&coracle__v1__replica_set_condition__descriptor, APPS},
    {&coracle__v1__daemon_set_spec__descriptor, APPS},
    {&coracle__v1__daemon_set_update_strategy__descriptor, APPS},
    {&coracle__v1__rolling_update_daemon_set__descriptor, APPS},
    {&coracle__v1__daemon_set_status__descriptor, APPS},
    {&coracle__v1__daemon_set_condition__descriptor, APPS},
    {&coracle__v1__job_spec__descriptor, BATCH},
    {&coracle__v1__job_status__descriptor, BATCH},
    {&coracle__v1__job_condition__descriptor, BATCH},
    {&coracle__v1__uncounted_terminated_pods__descriptor, BATCH},
    {&coracle__v1__job_template_spec__descriptor, BATCH},
    {&coracle__v1__cron_job_spec__descriptor, BATCH},
    {&coracle__v1__cron_job_status__descriptor, BATCH},
    {&coracle__v1__scale__descriptor, AUTOSCALING},
    {&coracle__v1__scale_spec__descriptor, AUTOSCALING},
    {&coracle__v1__scale_status__descriptor, AUTOSCALING},
    {&coracle__v1__policy_rule__descriptor, RBAC},
    {&coracle__v1__subject__descriptor, RBAC},
    {&coracle__v1__role_ref__descriptor, RBAC},
    {&coracle__v1__aggregation_rule__descriptor, RBAC},
    {&coracle__v1__user_info__descriptor, AUTHN},
    {&coracle__v1__self_subject_review_status__descriptor, AUTHN},
    {&coracle__v1__extra_value__descriptor, AUTHZ},
    {&coracle__v1__resource_attributes__descriptor, AUTHZ},
    {&coracle__v1__non_resource_attributes__descriptor, AUTHZ},
    {&coracle__v1__subject_access_review_spec__descriptor, AUTHZ},
    {&coracle__v1__subject_access_review_status__descriptor, AUTHZ},
    {&coracle__v1__self_subject_access_review_spec__descriptor, AUTHZ},
    {&coracle__v1__resource_rule__descriptor, AUTHZ},
    {&coracle__v1__non_resource_rule__descriptor, AUTHZ},
    {&coracle__v1__self_subject_rules_review_spec__descriptor, AUTHZ},
    {&coracle__v1__subject_rules_review_status__descriptor, AUTHZ},
};

/* The kind whose object or list d is, or NULL. */
static const struct kind *kind_of(const ProtobufCMessageDescriptor *d, bool *list)
{
    for (size_t i = 0; kinds_all[i]; i++) {
        if (kinds_all[i]->desc == d || kinds_all[i]->list_desc == d) {
            if (list)
                *list = kinds_all[i]->list_desc == d;
            return kinds_all[i];
        }
    }
    return NULL;
}

/* "io.k8s.api.core.v1" for "v1", "io.k8s.api.coordination.v1" for "coordination.k8s.io/v1". */
static void gv_package(const char *api_version, char *buf, size_t n)
{
    const char *slash = strchr(api_version, '/');
    if (!slash) {
        snprintf(buf, n, "io.k8s.api.core.%s", api_version);
        return;
    }
    size_t gl = strcspn(api_version, "./");
    snprintf(buf, n, "io.k8s.api.%.*s.%s", (int)gl, api_version, slash + 1);
}

const char *oapi_name(const ProtobufCMessageDescriptor *d, char *buf, size_t n)
{
    char pkg[96];
    const struct kind *k = kind_of(d, NULL);
    gv_package(k ? k->api_version : "v1", pkg, sizeof(pkg));
    for (size_t i = 0; i < ARRAY_SIZE(name_exceptions); i++)
        if (name_exceptions[i].d == d)
            snprintf(pkg, sizeof(pkg), "%s", name_exceptions[i].pkg);
    snprintf(buf, n, "%s.%s", pkg, d->short_name);
    return buf;
}

const char *oapi_doc(const ProtobufCMessageDescriptor *d, const char *field)
{
    for (const struct oapi_doc *o = oapi_docs; o->msg; o++)
        if (!strcmp(o->msg, d->name) && !strcmp(o->field, field))
            return o->text;
    return NULL;
}

/* ------------------------------------------------- API surface tables */

static const char *const verbs_get[] = {"get", NULL};
static const char *const verbs_create[] = {"create", NULL};
static const char *const verbs_connect[] = {"create", "get", NULL};
static const char *const verbs_scale[] = {"get", "patch", "update", NULL};

const struct oapi_sub oapi_subs[] = {
    {"pods", "attach", "PodAttachOptions", verbs_connect, NULL},
    {"pods", "binding", "Binding", verbs_create, NULL},
    {"pods", "exec", "PodExecOptions", verbs_connect, NULL},
    {"pods", "log", "Pod", verbs_get, NULL},
    {"deployments", "scale", "Scale", verbs_scale, "autoscaling/v1"},
    {"replicasets", "scale", "Scale", verbs_scale, "autoscaling/v1"},
    {NULL, NULL, NULL, NULL, NULL},
};

bool oapi_has_status(const struct kind *k)
{
    return !kind_virtual(k) &&
           protobuf_c_message_descriptor_get_field_by_name(k->desc, "status") != NULL;
}

/* Fields Kubernetes marks required (+required, no omitempty), per message. */
static const struct {
    const ProtobufCMessageDescriptor *d;
    const char *fields[4];
} required[] = {
    {&coracle__v1__binding__descriptor, {"target", NULL}},
    {&coracle__v1__container__descriptor, {"name", NULL}},
    {&coracle__v1__container_port__descriptor, {"containerPort", NULL}},
    {&coracle__v1__container_state_terminated__descriptor, {"exitCode", NULL}},
    {&coracle__v1__container_status__descriptor, {"name", "ready", "restartCount", NULL}},
    {&coracle__v1__env_var__descriptor, {"name", NULL}},
    {&coracle__v1__event__descriptor, {"metadata", "involvedObject", NULL}},
    {&coracle__v1__host_path_volume_source__descriptor, {"path", NULL}},
    {&coracle__v1__httpget_action__descriptor, {"port", NULL}},
    {&coracle__v1__httpheader__descriptor, {"name", "value", NULL}},
    {&coracle__v1__node_address__descriptor, {"type", "address", NULL}},
    {&coracle__v1__node_condition__descriptor, {"type", "status", NULL}},
    {&coracle__v1__node_selector__descriptor, {"nodeSelectorTerms", NULL}},
    {&coracle__v1__node_selector_requirement__descriptor, {"key", "operator", NULL}},
    {&coracle__v1__owner_reference__descriptor, {"apiVersion", "kind", "name", NULL}},
    {&coracle__v1__pod_condition__descriptor, {"type", "status", NULL}},
    {&coracle__v1__pod_ip__descriptor, {"ip", NULL}},
    {&coracle__v1__pod_spec__descriptor, {"containers", NULL}},
    {&coracle__v1__taint__descriptor, {"key", "effect", NULL}},
    {&coracle__v1__tcpsocket_action__descriptor, {"port", NULL}},
    {&coracle__v1__volume__descriptor, {"name", NULL}},
    {&coracle__v1__volume_mount__descriptor, {"name", "mountPath", NULL}},
};

/* ------------------------------------------------------------ schemas */

static bool is_map(const ProtobufCFieldDescriptor *f)
{
    return f->type == PROTOBUF_C_TYPE_MESSAGE && kobj_desc_is_map_entry(f->descriptor);
}

static void value_schema(struct gen *g, const char *key, const ProtobufCFieldDescriptor *f);

/* The members of the schema of one value of f (one element if repeated). */
static void value_members(struct gen *g, const ProtobufCFieldDescriptor *f)
{
    const char *type = "string", *format = NULL;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        type = "integer", format = "int32";
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        type = "integer", format = "int64";
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        type = "number", format = "float";
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        type = "number", format = "double";
        break;
    case PROTOBUF_C_TYPE_BOOL:
        type = "boolean";
        break;
    case PROTOBUF_C_TYPE_BYTES:
        format = "byte";
        break;
    case PROTOBUF_C_TYPE_MESSAGE:
        if (is_map(f)) {
            const ProtobufCMessageDescriptor *e = f->descriptor;
            w_str(g, "type", "object");
            value_schema(g, "additionalProperties", &e->fields[1]);
        } else {
            w_ref_member(g, oapi_name(f->descriptor, g->tmp, sizeof(g->tmp)));
        }
        return;
    default: /* strings, enums */
        break;
    }
    w_str(g, "type", type);
    if (format)
        w_str(g, "format", format);
}

static void value_schema(struct gen *g, const char *key, const ProtobufCFieldDescriptor *f)
{
    w_open(g, key, '{');
    value_members(g, f);
    w_close(g, '}');
}

/* Kubernetes' list and patch markers of field f of d (kmeta). */
static void markers(struct gen *g, const ProtobufCMessageDescriptor *d, const char *field)
{
    const struct kmeta *m = kmeta_lookup(d, field);
    if (!m)
        return;
    if (m->list_type)
        w_str(g, "x-kubernetes-list-type", m->list_type);
    if (m->map_keys[0]) {
        w_open(g, "x-kubernetes-list-map-keys", '[');
        for (int i = 0; i < KMETA_MAX_KEYS && m->map_keys[i]; i++)
            w_str(g, NULL, m->map_keys[i]);
        w_close(g, ']');
    }
    if (m->map_type)
        w_str(g, "x-kubernetes-map-type", m->map_type);
    if (m->merge_key)
        w_str(g, "x-kubernetes-patch-merge-key", m->merge_key);
    if (m->strategy)
        w_str(g, "x-kubernetes-patch-strategy", m->strategy);
}

/* One property of a definition: field f of message d. */
static void property(struct gen *g, const ProtobufCMessageDescriptor *d,
                     const ProtobufCFieldDescriptor *f)
{
    const char *doc = oapi_doc(d, f->name);
    w_open(g, f->name, '{');
    if (f->label == PROTOBUF_C_LABEL_REPEATED && !is_map(f)) {
        w_str(g, "type", "array");
        value_schema(g, "items", f);
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE && !is_map(f) && g->v == V3) {
        /* OpenAPI 3.0 ignores a $ref's siblings: Kubernetes wraps it in allOf */
        w_open(g, "allOf", '[');
        w_ref(g, NULL, f->descriptor);
        w_close(g, ']');
    } else {
        value_members(g, f);
    }
    if (doc)
        w_str(g, "description", doc);
    markers(g, d, f->name);
    w_close(g, '}');
}

/* The properties of d's fields, those of inlined messages among them. */
static void properties(struct gen *g, const ProtobufCMessageDescriptor *d)
{
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (kobj_is_inlined(d, f))
            properties(g, f->descriptor);
        else
            property(g, d, f);
    }
}

static void type_meta_props(struct gen *g)
{
    w_open(g, "apiVersion", '{');
    w_str(g, "description",
          "APIVersion defines the versioned schema of this representation of an object.");
    w_str(g, "type", "string");
    w_close(g, '}');
    w_open(g, "kind", '{');
    w_str(g, "description",
          "Kind is a string value representing the REST resource this object "
          "represents. In CamelCase.");
    w_str(g, "type", "string");
    w_close(g, '}');
}

/* The definitions Kubernetes writes as strings. */
static bool scalar_definition(struct gen *g, const ProtobufCMessageDescriptor *d)
{
    if (d == &coracle__v1__time__descriptor || d == &coracle__v1__micro_time__descriptor) {
        w_str(g, "description",
              d == &coracle__v1__time__descriptor
                  ? "Time is a wrapper around time.Time; RFC 3339, in seconds."
                  : "MicroTime is version of Time with microsecond level precision.");
        w_str(g, "type", "string");
        w_str(g, "format", "date-time");
    } else if (d == &coracle__v1__quantity__descriptor) {
        w_str(g, "description",
              "Quantity is a fixed-point representation of a number: \"100m\", \"128Mi\", \"1G\".");
        w_str(g, "type", "string");
    } else if (d == &coracle__v1__fields_v1__descriptor) {
        w_str(g, "description",
              "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON format.");
        w_str(g, "type", "object");
    } else if (d == &coracle__v1__int_or_string__descriptor) {
        w_str(g, "description", "IntOrString is a type that can hold an int32 or a string.");
        w_str(g, "type", "string");
        w_str(g, "format", "int-or-string");
        w_raw(g, "x-kubernetes-int-or-string", "true");
    } else {
        return false;
    }
    return true;
}

static void required_fields(struct gen *g, const ProtobufCMessageDescriptor *d, bool list)
{
    if (list) {
        static const char *const items[] = {"items", NULL};
        w_strs(g, "required", items);
        return;
    }
    for (size_t i = 0; i < ARRAY_SIZE(required); i++) {
        if (required[i].d != d)
            continue;
        w_open(g, "required", '[');
        for (int j = 0; j < 4 && required[i].fields[j]; j++)
            w_str(g, NULL, required[i].fields[j]);
        w_close(g, ']');
    }
}

static void definition(struct gen *g, const ProtobufCMessageDescriptor *d)
{
    char name[128];
    w_open(g, oapi_name(d, name, sizeof(name)), '{');
    if (!scalar_definition(g, d)) {
        bool list = false;
        const struct kind *k = kind_of(d, &list);
        const char *doc = oapi_doc(d, "");
        if (doc)
            w_str(g, "description", doc);
        if (g->v == V3)
            w_str(g, "type", "object");
        w_open(g, "properties", '{');
        if (k)
            type_meta_props(g);
        properties(g, d);
        w_close(g, '}');
        required_fields(g, d, list);
        if (k) {
            char kn[64];
            snprintf(kn, sizeof(kn), "%s%s", k->kind, list ? "List" : "");
            w_open(g, "x-kubernetes-group-version-kind", '[');
            w_gvk(g, NULL, k->api_version, kn);
            w_close(g, ']');
        }
    }
    w_close(g, '}');
}

/* Adds d and what its fields reach to the definitions to write. */
static void reach(struct gen *g, const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < g->ndefs; i++)
        if (g->defs[i] == d)
            return;
    if (g->ndefs == MAX_DEFS)
        fatal("openapi: more than %d definitions", MAX_DEFS);
    g->defs[g->ndefs++] = d;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const ProtobufCMessageDescriptor *sub = f->descriptor;
        if (is_map(f))
            f = &sub->fields[1];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (kobj_is_inlined(d, f)) {
            /* not a definition of its own: what its fields reach */
            const ProtobufCMessageDescriptor *in = f->descriptor;
            for (unsigned j = 0; j < in->n_fields; j++)
                if (in->fields[j].type == PROTOBUF_C_TYPE_MESSAGE)
                    reach(g, in->fields[j].descriptor);
        } else {
            reach(g, f->descriptor);
        }
    }
}

static int by_name(const void *a, const void *b)
{
    char na[128], nb[128];
    return strcmp(oapi_name(*(const ProtobufCMessageDescriptor *const *)a, na, sizeof(na)),
                  oapi_name(*(const ProtobufCMessageDescriptor *const *)b, nb, sizeof(nb)));
}

/* A property of a hand-written definition: type (NULL: any), format and desc optional. */
static void prop(struct gen *g, const char *name, const char *type, const char *format,
                 const char *desc)
{
    w_open(g, name, '{');
    if (desc)
        w_str(g, "description", desc);
    if (type)
        w_str(g, "type", type);
    if (format)
        w_str(g, "format", format);
    w_close(g, '}');
}

/* A hand-written definition's start: its name, description, and type in 3.0. */
static void def_open(struct gen *g, const char *name, const char *desc)
{
    w_open(g, name, '{');
    w_str(g, "description", desc);
    if (g->v == V3)
        w_str(g, "type", "object");
}

static void def_delete_options(struct gen *g)
{
    def_open(g, META ".DeleteOptions",
             "DeleteOptions may be provided when deleting an API object.");
    w_open(g, "properties", '{');
    type_meta_props(g);
    w_open(g, "dryRun", '{');
    w_str(g, "description", "When present, indicates that modifications should not be persisted.");
    w_str(g, "type", "array");
    w_open(g, "items", '{');
    w_str(g, "type", "string");
    w_close(g, '}');
    w_close(g, '}');
    prop(g, "gracePeriodSeconds", "integer", "int64",
         "The duration in seconds before the object should be deleted.");
    w_open(g, "preconditions", '{');
    w_ref_member(g, META ".Preconditions");
    w_str(g, "description", "Must be fulfilled before a deletion is carried out.");
    w_close(g, '}');
    prop(g, "propagationPolicy", "string", NULL,
         "Whether and how garbage collection will be performed: Orphan, Background or "
         "Foreground.");
    w_close(g, '}');
    w_close(g, '}');
}

static void def_status(struct gen *g)
{
    def_open(g, META ".Status",
             "Status is a return value for calls that don't return other objects.");
    w_open(g, "properties", '{');
    type_meta_props(g);
    prop(g, "code", "integer", "int32",
         "Suggested HTTP return code for this status, 0 if not set.");
    prop(g, "details", NULL, NULL, "Extended data associated with the reason.");
    prop(g, "message", "string", NULL,
         "A human-readable description of the status of this operation.");
    w_open(g, "metadata", '{');
    w_ref_member(g, META ".ListMeta");
    w_close(g, '}');
    prop(g, "reason", "string", NULL,
         "A machine-readable description of why this operation failed.");
    prop(g, "status", "string", NULL, "Status of the operation: Success or Failure.");
    w_close(g, '}');
    w_close(g, '}');
}

/* The meta/v1 definitions that are not in proto/: what the operations take and answer. */
static void meta_definitions(struct gen *g)
{
    def_delete_options(g);
    def_open(g, META ".Patch",
             "Patch is provided to give a concrete name and type to the Kubernetes PATCH request "
             "body.");
    w_close(g, '}');
    def_status(g);
    def_open(g, META ".WatchEvent", "Event represents a single event to a watched resource.");
    w_open(g, "properties", '{');
    prop(g, "object", NULL, NULL,
         "Object is: the object (ADDED, MODIFIED, DELETED), the bookmark (BOOKMARK) or a Status "
         "(ERROR).");
    prop(g, "type", "string", NULL, NULL);
    w_close(g, '}');
    static const char *const req[] = {"type", "object", NULL};
    w_strs(g, "required", req);
    w_close(g, '}');
}

/* Every definition the kinds of gv (all kinds if NULL) reach, under key. */
static void definitions(struct gen *g, const char *key, const char *gv)
{
    g->ndefs = 0;
    for (size_t i = 0; kinds_all[i]; i++) {
        if (gv && strcmp(kinds_all[i]->api_version, gv))
            continue;
        reach(g, kinds_all[i]->desc);
        if (kinds_all[i]->list_desc)
            reach(g, kinds_all[i]->list_desc);
        for (const struct oapi_sub *s = oapi_subs; s->resource; s++)
            if (!strcmp(s->resource, kinds_all[i]->resource) && !strcmp(s->kind, "Binding"))
                reach(g, &coracle__v1__binding__descriptor);
            else if (!strcmp(s->resource, kinds_all[i]->resource) && !strcmp(s->kind, "Scale"))
                reach(g, &coracle__v1__scale__descriptor);
    }
    reach(g, &coracle__v1__preconditions__descriptor);
    reach(g, &coracle__v1__list_meta__descriptor);
    qsort(g->defs, g->ndefs, sizeof(g->defs[0]), by_name);
    w_open(g, key, '{');
    for (size_t i = 0; i < g->ndefs; i++)
        definition(g, g->defs[i]);
    meta_definitions(g);
    w_close(g, '}');
}

/* ------------------------------------------------------------ documents */

static void info(struct gen *g)
{
    w_open(g, "info", '{');
    w_str(g, "title", "Kubernetes");
    w_str(g, "version", "v1.32.0-coracle");
    w_close(g, '}');
}

char *oapi_v2(size_t *len)
{
    struct gen g = {.v = V2, .first = {true}};
    w_open(&g, NULL, '{');
    w_str(&g, "swagger", "2.0");
    info(&g);
    oapi_paths(&g, NULL);
    definitions(&g, "definitions", NULL);
    w_close(&g, '}');
    *len = g.b.len;
    return buf_take(&g.b);
}

char *oapi_v3(const char *gv, size_t *len)
{
    bool any = false;
    for (size_t i = 0; kinds_all[i]; i++)
        any |= !strcmp(kinds_all[i]->api_version, gv);
    if (!any)
        return NULL;
    struct gen g = {.v = V3, .first = {true}};
    w_open(&g, NULL, '{');
    w_str(&g, "openapi", "3.0.0");
    info(&g);
    oapi_paths(&g, gv);
    w_open(&g, "components", '{');
    definitions(&g, "schemas", gv);
    w_close(&g, '}');
    w_close(&g, '}');
    *len = g.b.len;
    return buf_take(&g.b);
}
