/*
 * openapi_pb: a Swagger 2.0 JSON document as gnostic's openapi.v2.Document
 * protobuf (github.com/google/gnostic-models openapiv2/OpenAPIv2.proto),
 * what kubectl asks /openapi/v2 for. See openapi.h.
 *
 * The conversion is table-driven: each gnostic message is a table of the
 * JSON members it has (name, field number, kind), plus where the members
 * it has no field for go: "x-" members into vendor_extension (NamedAny,
 * whose YAML is the member's JSON text: JSON is YAML), the others into
 * a repeated Named<T> field for the maps (definitions, properties, paths,
 * responses). gnostic's oneof wrappers (ParametersItem, Parameter,
 * NonBodyParameter, ResponseValue, AdditionalPropertiesItem, TypeItem,
 * ItemsItem) choose the field the whole node becomes. Only what Swagger
 * 2.0 documents of the Kubernetes API use is mapped; other members are
 * left out.
 */
#include "config.h"
#include "openapi.h"
#include "buf.h"
#include "json.h"
#include "kobj.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* How a JSON member becomes a field. */
enum gk {
    G_STR,  /* string */
    G_BOOL, /* bool */
    G_INT,  /* int64 */
    G_DBL,  /* double */
    G_STRS, /* repeated string (a lone string is one) */
    G_MSG,  /* message */
    G_MSGS, /* repeated message (a lone object is one) */
    G_ANY,  /* Any {yaml = 2}: the node's JSON text */
    G_ANYS, /* repeated Any */
};

struct gmsg;
struct gfield {
    const char *key;
    uint32_t num;
    enum gk kind;
    const struct gmsg *sub;
};
struct gmsg {
    const struct gfield *fields; /* ending with a NULL key */
    uint32_t ext;                /* vendor_extension's number ("x-" members), 0: none */
    uint32_t named;              /* other members: Named{name 1, value 2 (named_sub)}, 0: none */
    const struct gmsg *named_sub;
    /* a oneof wrapper: the field the whole node becomes */
    const struct gfield *(*pick)(const json_t *v);
};

#define END                                                                                        \
    {                                                                                              \
        NULL, 0, G_STR, NULL                                                                       \
    }

static const struct gmsg g_schema, g_parameter, g_response_value, g_path_item;

static const struct gmsg g_json_reference = {
    .fields =
        (const struct gfield[]){{"$ref", 1, G_STR, NULL}, {"description", 2, G_STR, NULL}, END}};

static const struct gfield *pick_type(const json_t *v)
{
    static const struct gfield f = {NULL, 1, G_STRS, NULL};
    return &f;
}
static const struct gmsg g_type_item = {.pick = pick_type};

static const struct gfield *pick_items(const json_t *v)
{
    static const struct gfield f = {NULL, 1, G_MSGS, &g_schema};
    return &f;
}
static const struct gmsg g_items_item = {.pick = pick_items};

static const struct gfield *pick_additional(const json_t *v)
{
    static const struct gfield schema = {NULL, 1, G_MSG, &g_schema};
    static const struct gfield boolean = {NULL, 2, G_BOOL, NULL};
    return json_is(v, JSON_TRUE) || json_is(v, JSON_FALSE) ? &boolean : &schema;
}
static const struct gmsg g_additional = {.pick = pick_additional};

static const struct gmsg g_named_schemas = {.named = 1,
                                            .named_sub = &g_schema}; /* Definitions, Properties */

static const struct gmsg g_schema = {.fields =
                                         (const struct gfield[]){
                                             {"$ref", 1, G_STR, NULL},
                                             {"format", 2, G_STR, NULL},
                                             {"title", 3, G_STR, NULL},
                                             {"description", 4, G_STR, NULL},
                                             {"default", 5, G_ANY, NULL},
                                             {"multipleOf", 6, G_DBL, NULL},
                                             {"maximum", 7, G_DBL, NULL},
                                             {"exclusiveMaximum", 8, G_BOOL, NULL},
                                             {"minimum", 9, G_DBL, NULL},
                                             {"exclusiveMinimum", 10, G_BOOL, NULL},
                                             {"maxLength", 11, G_INT, NULL},
                                             {"minLength", 12, G_INT, NULL},
                                             {"pattern", 13, G_STR, NULL},
                                             {"maxItems", 14, G_INT, NULL},
                                             {"minItems", 15, G_INT, NULL},
                                             {"uniqueItems", 16, G_BOOL, NULL},
                                             {"maxProperties", 17, G_INT, NULL},
                                             {"minProperties", 18, G_INT, NULL},
                                             {"required", 19, G_STRS, NULL},
                                             {"enum", 20, G_ANYS, NULL},
                                             {"additionalProperties", 21, G_MSG, &g_additional},
                                             {"type", 22, G_MSG, &g_type_item},
                                             {"items", 23, G_MSG, &g_items_item},
                                             {"allOf", 24, G_MSGS, &g_schema},
                                             {"properties", 25, G_MSG, &g_named_schemas},
                                             {"discriminator", 26, G_STR, NULL},
                                             {"readOnly", 27, G_BOOL, NULL},
                                             {"example", 30, G_ANY, NULL},
                                             END,
                                         },
                                     .ext = 31};

/* PrimitivesItems: the items of an array parameter. */
static const struct gmsg g_primitives = {.fields =
                                             (const struct gfield[]){
                                                 {"type", 1, G_STR, NULL},
                                                 {"format", 2, G_STR, NULL},
                                                 {"items", 3, G_MSG, &g_primitives},
                                                 {"collectionFormat", 4, G_STR, NULL},
                                                 {"default", 5, G_ANY, NULL},
                                                 {"uniqueItems", 15, G_BOOL, NULL},
                                                 {"enum", 16, G_ANYS, NULL},
                                                 END,
                                             },
                                         .ext = 18};

/* QueryParameterSubSchema and FormDataParameterSubSchema number alike. */
static const struct gmsg g_query_param = {.fields =
                                              (const struct gfield[]){
                                                  {"required", 1, G_BOOL, NULL},
                                                  {"in", 2, G_STR, NULL},
                                                  {"description", 3, G_STR, NULL},
                                                  {"name", 4, G_STR, NULL},
                                                  {"allowEmptyValue", 5, G_BOOL, NULL},
                                                  {"type", 6, G_STR, NULL},
                                                  {"format", 7, G_STR, NULL},
                                                  {"items", 8, G_MSG, &g_primitives},
                                                  {"collectionFormat", 9, G_STR, NULL},
                                                  {"default", 10, G_ANY, NULL},
                                                  {"uniqueItems", 20, G_BOOL, NULL},
                                                  {"enum", 21, G_ANYS, NULL},
                                                  END,
                                              },
                                          .ext = 23};

/* PathParameterSubSchema and HeaderParameterSubSchema number alike. */
static const struct gmsg g_path_param = {.fields =
                                             (const struct gfield[]){
                                                 {"required", 1, G_BOOL, NULL},
                                                 {"in", 2, G_STR, NULL},
                                                 {"description", 3, G_STR, NULL},
                                                 {"name", 4, G_STR, NULL},
                                                 {"type", 5, G_STR, NULL},
                                                 {"format", 6, G_STR, NULL},
                                                 {"items", 7, G_MSG, &g_primitives},
                                                 {"collectionFormat", 8, G_STR, NULL},
                                                 {"default", 9, G_ANY, NULL},
                                                 {"uniqueItems", 19, G_BOOL, NULL},
                                                 {"enum", 20, G_ANYS, NULL},
                                                 END,
                                             },
                                         .ext = 22};

static const struct gfield *pick_non_body(const json_t *v)
{
    static const struct gfield header = {NULL, 1, G_MSG, &g_path_param};
    static const struct gfield form = {NULL, 2, G_MSG, &g_query_param};
    static const struct gfield query = {NULL, 3, G_MSG, &g_query_param};
    static const struct gfield path = {NULL, 4, G_MSG, &g_path_param};
    const char *in = json_str(json_get(v, "in"));
    if (!in)
        return NULL;
    return !strcmp(in, "header")     ? &header
           : !strcmp(in, "formData") ? &form
           : !strcmp(in, "path")     ? &path
                                     : &query;
}
static const struct gmsg g_non_body = {.pick = pick_non_body};

static const struct gmsg g_body_param = {.fields =
                                             (const struct gfield[]){
                                                 {"description", 1, G_STR, NULL},
                                                 {"name", 2, G_STR, NULL},
                                                 {"in", 3, G_STR, NULL},
                                                 {"required", 4, G_BOOL, NULL},
                                                 {"schema", 5, G_MSG, &g_schema},
                                                 END,
                                             },
                                         .ext = 6};

static const struct gfield *pick_parameter(const json_t *v)
{
    static const struct gfield body = {NULL, 1, G_MSG, &g_body_param};
    static const struct gfield other = {NULL, 2, G_MSG, &g_non_body};
    const char *in = json_str(json_get(v, "in"));
    return in && !strcmp(in, "body") ? &body : &other;
}
static const struct gmsg g_parameter = {.pick = pick_parameter};

/* ParametersItem, ResponseValue: a $ref or the thing itself. */
static const struct gfield *pick_parameters_item(const json_t *v)
{
    static const struct gfield param = {NULL, 1, G_MSG, &g_parameter};
    static const struct gfield ref = {NULL, 2, G_MSG, &g_json_reference};
    return json_get(v, "$ref") ? &ref : &param;
}
static const struct gmsg g_parameters_item = {.pick = pick_parameters_item};

static const struct gfield *pick_schema_item(const json_t *v)
{
    static const struct gfield schema = {NULL, 1, G_MSG, &g_schema};
    return &schema;
}
static const struct gmsg g_schema_item = {.pick = pick_schema_item};

static const struct gmsg g_response = {.fields =
                                           (const struct gfield[]){
                                               {"description", 1, G_STR, NULL},
                                               {"schema", 2, G_MSG, &g_schema_item},
                                               END,
                                           },
                                       .ext = 5};

static const struct gfield *pick_response_value(const json_t *v)
{
    static const struct gfield resp = {NULL, 1, G_MSG, &g_response};
    static const struct gfield ref = {NULL, 2, G_MSG, &g_json_reference};
    return json_get(v, "$ref") ? &ref : &resp;
}
static const struct gmsg g_response_value = {.pick = pick_response_value};

static const struct gmsg g_responses = {.ext = 2, .named = 1, .named_sub = &g_response_value};

static const struct gmsg g_operation = {.fields =
                                            (const struct gfield[]){
                                                {"tags", 1, G_STRS, NULL},
                                                {"summary", 2, G_STR, NULL},
                                                {"description", 3, G_STR, NULL},
                                                {"operationId", 5, G_STR, NULL},
                                                {"produces", 6, G_STRS, NULL},
                                                {"consumes", 7, G_STRS, NULL},
                                                {"parameters", 8, G_MSGS, &g_parameters_item},
                                                {"responses", 9, G_MSG, &g_responses},
                                                {"schemes", 10, G_STRS, NULL},
                                                {"deprecated", 11, G_BOOL, NULL},
                                                END,
                                            },
                                        .ext = 13};

static const struct gmsg g_path_item = {.fields =
                                            (const struct gfield[]){
                                                {"$ref", 1, G_STR, NULL},
                                                {"get", 2, G_MSG, &g_operation},
                                                {"put", 3, G_MSG, &g_operation},
                                                {"post", 4, G_MSG, &g_operation},
                                                {"delete", 5, G_MSG, &g_operation},
                                                {"options", 6, G_MSG, &g_operation},
                                                {"head", 7, G_MSG, &g_operation},
                                                {"patch", 8, G_MSG, &g_operation},
                                                {"parameters", 9, G_MSGS, &g_parameters_item},
                                                END,
                                            },
                                        .ext = 10};

static const struct gmsg g_paths = {.ext = 1, .named = 2, .named_sub = &g_path_item};
static const struct gmsg g_named_parameters = {.named = 1, .named_sub = &g_parameter};

static const struct gmsg g_info = {.fields =
                                       (const struct gfield[]){
                                           {"title", 1, G_STR, NULL},
                                           {"version", 2, G_STR, NULL},
                                           {"description", 3, G_STR, NULL},
                                           {"termsOfService", 4, G_STR, NULL},
                                           END,
                                       },
                                   .ext = 7};

static const struct gmsg g_document = {.fields =
                                           (const struct gfield[]){
                                               {"swagger", 1, G_STR, NULL},
                                               {"info", 2, G_MSG, &g_info},
                                               {"host", 3, G_STR, NULL},
                                               {"basePath", 4, G_STR, NULL},
                                               {"schemes", 5, G_STRS, NULL},
                                               {"consumes", 6, G_STRS, NULL},
                                               {"produces", 7, G_STRS, NULL},
                                               {"paths", 8, G_MSG, &g_paths},
                                               {"definitions", 9, G_MSG, &g_named_schemas},
                                               {"parameters", 10, G_MSG, &g_named_parameters},
                                               END,
                                           },
                                       .ext = 16};

/* ------------------------------------------------------------ encoding */

/* v's JSON text onto b (the YAML of an Any: JSON is YAML). */
static void json_text(struct buf *b, const json_t *v)
{
    switch (v->type) {
    case JSON_NULL:
        buf_puts(b, "null");
        break;
    case JSON_TRUE:
        buf_puts(b, "true");
        break;
    case JSON_FALSE:
        buf_puts(b, "false");
        break;
    case JSON_NUMBER:
        buf_add(b, v->str, v->len);
        break;
    case JSON_STRING:
        kobj_json_str(b, v->str, v->len);
        break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        buf_puts(b, v->type == JSON_ARRAY ? "[" : "{");
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                buf_puts(b, ",");
            if (v->type == JSON_OBJECT) {
                kobj_json_str(b, v->keys[i], strlen(v->keys[i]));
                buf_puts(b, ":");
            }
            json_text(b, v->kids[i]);
        }
        buf_puts(b, v->type == JSON_ARRAY ? "]" : "}");
        break;
    }
}

static void put_tag(struct buf *b, uint32_t num, int wire)
{
    buf_varint(b, (uint64_t)num << 3 | (uint64_t)wire);
}

static void encode_msg(struct buf *out, const struct gmsg *m, const json_t *v);

/* Message m of node v as length-delimited field num. */
static void put_msg(struct buf *out, uint32_t num, const struct gmsg *m, const json_t *v)
{
    struct buf sub = {0};
    encode_msg(&sub, m, v);
    buf_field(out, num, sub.p ? sub.p : "", sub.len);
    buf_free(&sub);
}

static void put_any(struct buf *out, uint32_t num, const json_t *v)
{
    struct buf text = {0}, any = {0};
    json_text(&text, v);
    buf_field(&any, 2, text.p, text.len);
    buf_field(out, num, any.p, any.len);
    buf_free(&text);
    buf_free(&any);
}

/* One element of field f from node v. */
static void put_one(struct buf *out, const struct gfield *f, const json_t *v)
{
    int64_t i;
    switch (f->kind) {
    case G_STR:
    case G_STRS:
        if (json_is(v, JSON_STRING))
            buf_field(out, f->num, v->str, v->len);
        break;
    case G_BOOL:
        if (json_is(v, JSON_TRUE) || json_is(v, JSON_FALSE)) {
            put_tag(out, f->num, 0);
            buf_varint(out, json_is(v, JSON_TRUE));
        }
        break;
    case G_INT:
        if (json_int64(v, &i) == 0) {
            put_tag(out, f->num, 0);
            buf_varint(out, (uint64_t)i);
        }
        break;
    case G_DBL:
        if (json_is(v, JSON_NUMBER)) {
            uint64_t bits;
            memcpy(&bits, &v->num, sizeof(bits));
            put_tag(out, f->num, 1);
            for (int k = 0; k < 8; k++) {
                uint8_t byte = (uint8_t)(bits >> (8 * k));
                buf_add(out, &byte, 1);
            }
        }
        break;
    case G_MSG:
    case G_MSGS:
        put_msg(out, f->num, f->sub, v);
        break;
    case G_ANY:
    case G_ANYS:
        put_any(out, f->num, v);
        break;
    }
}

static void put_field(struct buf *out, const struct gfield *f, const json_t *v)
{
    bool repeated = f->kind == G_STRS || f->kind == G_MSGS || f->kind == G_ANYS;
    if (repeated && json_is(v, JSON_ARRAY)) {
        for (size_t i = 0; i < v->n; i++)
            put_one(out, f, v->kids[i]);
    } else {
        put_one(out, f, v);
    }
}

/* Named{name = 1, value = 2} for member key of value v, as field num. */
static void put_named(struct buf *out, uint32_t num, const char *key, const struct gmsg *m,
                      const json_t *v)
{
    struct buf named = {0};
    buf_field(&named, 1, key, strlen(key));
    if (m)
        put_msg(&named, 2, m, v);
    else
        put_any(&named, 2, v);
    buf_field(out, num, named.p, named.len);
    buf_free(&named);
}

static void encode_msg(struct buf *out, const struct gmsg *m, const json_t *v)
{
    if (m->pick) {
        const struct gfield *f = m->pick(v);
        if (f)
            put_field(out, f, v);
        return;
    }
    if (!json_is(v, JSON_OBJECT))
        return;
    for (size_t i = 0; i < v->n; i++) {
        const char *key = v->keys[i];
        const struct gfield *f = m->fields;
        while (f && f->key && strcmp(f->key, key))
            f++;
        if (f && f->key)
            put_field(out, f, v->kids[i]);
        else if (!strncmp(key, "x-", 2) && m->ext)
            put_named(out, m->ext, key, NULL, v->kids[i]);
        else if (m->named)
            put_named(out, m->named, key, m->named_sub, v->kids[i]);
    }
}

int oapi_v2_pb(const char *json, size_t len, struct buf *out, char **err)
{
    json_t *doc;
    struct json_limits lim = {.max_bytes = len + 1, .max_depth = 64, .max_nodes = 1u << 22};
    if (json_parse(json, len, &lim, &doc, err) < 0)
        return -1;
    encode_msg(out, &g_document, doc);
    json_free(doc);
    return 0;
}
