/*
 * kjson: Kubernetes JSON from stored bytes. See kjson.h. Objects are
 * decoded and written by kobj (the one mapper coraclectl uses too); the
 * envelopes around them (lists, watch events, Status) are written here.
 */
#include "config.h"
#include "kjson.h"
#include "buf.h"
#include "grpc.h"
#include "kobj.h"
#include "kssa.h"
#include "obj.h"
#include "pb.h"
#include "wire.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The object's JSON appended to b, from its bytes as they are; -1 if they do not decode. */
static int object_to(struct buf *b, const struct kind *k, const void *bytes, size_t len)
{
    return kobj_emit_pb_buf(b, k, bytes, len, KOBJ_FMT_JSON_COMPACT);
}

char *kjson_object(const struct kind *k, const void *bytes, size_t len)
{
    struct buf b = {0};
    buf_reserve(&b, 3 * len + 256); /* about what JSON takes: no growing on the way */
    if (object_to(&b, k, bytes, len) < 0) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b);
}

/* The list's kind and apiVersion, then its metadata, then the items. */
char *kjson_list(const struct kind *k, const uint8_t *resp, size_t len, size_t *out_len)
{
    struct buf b = {0};
    buf_printf(&b, "{\"kind\":\"%sList\",\"apiVersion\":\"%s\",\"metadata\":{", k->kind,
               k->api_version);
    const uint8_t *mv;
    size_t ml;
    if (wire_find(resp, len, 1, &mv, &ml) == 1) {
        Coracle__V1__ListMeta *lm = (void *)obj_decode(&coracle__v1__list_meta__descriptor, mv, ml);
        if (!lm)
            goto bad;
        const char *sep = "";
        if (lm->resourceversion) {
            buf_puts(&b, "\"resourceVersion\":");
            kobj_json_str(&b, lm->resourceversion, strlen(lm->resourceversion));
            sep = ",";
        }
        if (lm->continue_ && *lm->continue_) {
            buf_printf(&b, "%s\"continue\":", sep);
            kobj_json_str(&b, lm->continue_, strlen(lm->continue_));
        }
        obj_free(&lm->base);
    }
    buf_puts(&b, "},\"items\":[");
    const uint8_t *p = resp, *end = resp + len;
    const char *sep = "";
    while (p < end) {
        uint64_t tag, n;
        if (pb_varint_get(&p, end, &tag) < 0 || (tag & 7) != 2 || pb_varint_get(&p, end, &n) < 0 ||
            n > (uint64_t)(end - p))
            goto bad;
        if (tag >> 3 == 2) {
            buf_puts(&b, sep);
            if (object_to(&b, k, p, (size_t)n) < 0)
                goto bad;
            sep = ",";
        }
        p += n;
    }
    buf_puts(&b, "]}\n");
    *out_len = b.len;
    return buf_take(&b);
bad:
    buf_free(&b);
    return NULL;
}

/* ---- Tables ---- */

/* COLS_INCLUDE_OBJECT's writer: the object as get answers it. */
static void table_object(FILE *f, const struct kind *k, const ProtobufCMessage *obj, void *arg)
{
    char *j = kobj_emit(k, obj, KOBJ_FMT_JSON_COMPACT);
    fputs(j, f);
    free(j);
}

static struct cols_table_opts table_opts(enum cols_include include)
{
    return (struct cols_table_opts){
        .now_ns = now_ns(), .include = include, .object_fn = table_object};
}

char *kjson_table_list(const struct kind *k, const uint8_t *resp, size_t len,
                       enum cols_include include, size_t *out_len)
{
    ProtobufCMessage **objs = NULL;
    size_t n = 0, cap = 0;
    Coracle__V1__ListMeta *lm = NULL;
    char *out = NULL;
    const uint8_t *p = resp, *end = resp + len;
    while (p < end) {
        uint64_t tag, l;
        if (pb_varint_get(&p, end, &tag) < 0 || (tag & 7) != 2 || pb_varint_get(&p, end, &l) < 0 ||
            l > (uint64_t)(end - p))
            goto out;
        if (tag >> 3 == 1 && !lm) {
            lm = (void *)obj_decode(&coracle__v1__list_meta__descriptor, p, (size_t)l);
            if (!lm)
                goto out;
        } else if (tag >> 3 == 2) {
            ProtobufCMessage *o = obj_decode(k->desc, p, (size_t)l);
            if (!o)
                goto out;
            *XPUSH(objs, n, cap) = o;
        }
        p += l;
    }
    struct cols_table_opts o = table_opts(include);
    if (lm) {
        o.resource_version = lm->resourceversion;
        o.continue_token = lm->continue_;
    }
    out = cols_table(k, objs, n, &o, out_len);
out:
    for (size_t i = 0; i < n; i++)
        obj_free(objs[i]);
    free(objs);
    if (lm)
        obj_free(&lm->base);
    return out;
}

char *kjson_table_object(const struct kind *k, const void *bytes, size_t len,
                         enum cols_include include, size_t *out_len)
{
    ProtobufCMessage *m = obj_decode(k->desc, bytes, len);
    if (!m)
        return NULL;
    struct cols_table_opts o = table_opts(include);
    char *t = cols_table_one(k, m, &o, out_len);
    obj_free(m);
    return t;
}

/* "{"type":"T","object":" + object + "}\n" */
static rbuf_t *event_line(const char *type, const char *obj)
{
    size_t tl = strlen(type), ol = strlen(obj);
    static const char a[] = "{\"type\":\"", b[] = "\",\"object\":", c[] = "}\n";
    size_t n = sizeof(a) - 1 + tl + sizeof(b) - 1 + ol + sizeof(c) - 1;
    rbuf_t *f = rbuf_alloc(n);
    char *w = (char *)f->data;
    memcpy(w, a, sizeof(a) - 1), w += sizeof(a) - 1;
    memcpy(w, type, tl), w += tl;
    memcpy(w, b, sizeof(b) - 1), w += sizeof(b) - 1;
    memcpy(w, obj, ol), w += ol;
    memcpy(w, c, sizeof(c) - 1);
    return f;
}

rbuf_t *kjson_watch_frame(const struct kind *k, const char *type, const void *bytes, size_t len)
{
    char *o = kjson_object(k, bytes, len);
    if (!o)
        return NULL;
    rbuf_t *f = event_line(type, o);
    free(o);
    return f;
}

/*
 * The column definitions only with headers: Kubernetes leaves them out
 * after a watch's first event (the client keeps the first ones).
 */
rbuf_t *kjson_table_watch_frame(const struct kind *k, const char *type, const void *bytes,
                                size_t len, bool headers)
{
    ProtobufCMessage *m = obj_decode(k->desc, bytes, len);
    if (!m)
        return NULL;
    struct cols_table_opts o = table_opts(COLS_INCLUDE_METADATA);
    o.no_headers = !headers;
    size_t n;
    char *t = cols_table_one(k, m, &o, &n);
    obj_free(m);
    rbuf_t *f = event_line(type, t);
    free(t);
    return f;
}

rbuf_t *kjson_bookmark_frame(const struct kind *k, uint64_t rev, bool initial_end)
{
    char *o =
        xasprintf("{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":{\"resourceVersion\":"
                  "\"%" PRIu64 "\"%s}}",
                  k->kind, k->api_version, rev,
                  initial_end ? ",\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}" : "");
    rbuf_t *f = event_line("BOOKMARK", o);
    free(o);
    return f;
}

static const struct {
    int grpc, http;
    const char *reason;
} codes[] = {
    {GRPC_INVALID_ARGUMENT, 400, "BadRequest"},
    {GRPC_UNAUTHENTICATED, 401, "Unauthorized"},
    {GRPC_PERMISSION_DENIED, 403, "Forbidden"},
    {GRPC_NOT_FOUND, 404, "NotFound"},
    {GRPC_UNIMPLEMENTED, 405, "MethodNotAllowed"},
    {GRPC_ALREADY_EXISTS, 409, "AlreadyExists"},
    {GRPC_ABORTED, 409, "Conflict"},
    {GRPC_FAILED_PRECONDITION, 409, "Conflict"},
    {GRPC_OUT_OF_RANGE, 410, "Expired"},
    {GRPC_RESOURCE_EXHAUSTED, 429, "TooManyRequests"},
    {GRPC_UNAVAILABLE, 503, "ServiceUnavailable"},
    {GRPC_DEADLINE_EXCEEDED, 504, "Timeout"},
};

int kjson_http_status(int grpc_code, const char **reason)
{
    for (size_t i = 0; i < ARRAY_SIZE(codes); i++) {
        if (codes[i].grpc == grpc_code) {
            *reason = codes[i].reason;
            return codes[i].http;
        }
    }
    *reason = "InternalError";
    return 500;
}

char *kjson_status(int http_status, const char *reason, const char *message, const char *resource,
                   const char *name)
{
    struct buf b = {0};
    buf_puts(&b, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":"
                 "\"Failure\",\"message\":");
    kobj_json_str(&b, message ? message : "", message ? strlen(message) : 0);
    buf_printf(&b, ",\"reason\":\"%s\"", reason);
    if (name) {
        buf_puts(&b, ",\"details\":{\"name\":");
        kobj_json_str(&b, name, strlen(name));
        buf_printf(&b, ",\"kind\":\"%s\"}", resource);
    }
    buf_printf(&b, ",\"code\":%d}\n", http_status);
    return buf_take(&b);
}

char *kjson_apply_conflict(const struct kssa_err *e)
{
    struct buf b = {0};
    buf_puts(&b, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":"
                 "\"Failure\",\"message\":");
    kobj_json_str(&b, e->message ? e->message : "", e->message ? strlen(e->message) : 0);
    buf_puts(&b, ",\"reason\":\"Conflict\",\"details\":{\"causes\":[");
    for (size_t i = 0; i < e->ncauses; i++) {
        buf_printf(&b, "%s{\"reason\":\"FieldManagerConflict\",\"message\":", i ? "," : "");
        kobj_json_str(&b, e->causes[i].message, strlen(e->causes[i].message));
        buf_puts(&b, ",\"field\":");
        kobj_json_str(&b, e->causes[i].field, strlen(e->causes[i].field));
        buf_puts(&b, "}");
    }
    buf_puts(&b, "]},\"code\":409}\n");
    return buf_take(&b);
}

rbuf_t *kjson_error_frame(int http_status, const char *reason, const char *message)
{
    char *st = kjson_status(http_status, reason, message, NULL, NULL);
    st[strlen(st) - 1] = '\0'; /* the line's newline comes after the event */
    rbuf_t *f = event_line("ERROR", st);
    free(st);
    return f;
}

/* Kubernetes' field error types (field.ErrorType): the text and the cause's reason. */
static const struct {
    const char *text, *reason;
} cause_types[] = {
    {"Required value", "FieldValueRequired"},
    {"Invalid value", "FieldValueInvalid"},
    {"Unsupported value", "FieldValueNotSupported"},
    {"Forbidden", "FieldValueForbidden"},
    {"Duplicate value", "FieldValueDuplicate"},
    {"Too long", "FieldValueTooLong"},
    {"Too many", "FieldValueTooMany"},
    {"Not found", "FieldValueNotFound"},
    {"Internal error", "InternalError"},
};

/*
 * Whether p starts one field error, "field.path[0]: Type..." (Type one of
 * cause_types, then ':', ',', ']' or the end): its field's length and type.
 */
static bool cause_start(const char *p, size_t *flen, size_t *type)
{
    size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.[]/-");
    if (!n || strncmp(p + n, ": ", 2))
        return false;
    for (size_t i = 0; i < ARRAY_SIZE(cause_types); i++) {
        size_t tl = strlen(cause_types[i].text);
        const char *e = p + n + 2 + tl;
        if (!strncmp(p + n + 2, cause_types[i].text, tl) && strchr(":,]", *e)) {
            *flen = n;
            *type = i;
            return true;
        }
    }
    return false;
}

/* The causes of an Invalid message's errors part ("f: T: x" or "[f: T: x, g: T]"). */
static void invalid_causes(struct buf *b, const char *errs)
{
    size_t len = strlen(errs);
    if (len >= 2 && errs[0] == '[' && errs[len - 1] == ']') {
        errs++;
        len -= 2;
    }
    const char *p = errs, *end = errs + len, *sep = "";
    size_t flen, type;
    if (!cause_start(p, &flen, &type))
        return;
    buf_puts(b, ",\"causes\":[");
    while (p < end) {
        /* this error ends where ", " starts the next one */
        const char *q = p + flen, *next = end;
        for (; (q = strstr(q, ", ")) && q < end; q += 2) {
            size_t f2, t2;
            if (cause_start(q + 2, &f2, &t2)) {
                next = q;
                break;
            }
        }
        const char *msg = p + flen + 2;
        buf_printf(b, "%s{\"reason\":\"%s\",\"message\":", sep, cause_types[type].reason);
        kobj_json_str(b, msg, (size_t)(next - msg));
        buf_puts(b, ",\"field\":");
        kobj_json_str(b, p, flen);
        buf_puts(b, "}");
        sep = ",";
        if (next == end || !cause_start(next + 2, &flen, &type))
            break;
        p = next + 2;
    }
    buf_puts(b, "]");
}

char *kjson_invalid(const char *group, const char *kind, const char *name, const char *message)
{
    struct buf b = {0};
    buf_puts(&b, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":"
                 "\"Failure\",\"message\":");
    kobj_json_str(&b, message, strlen(message));
    buf_puts(&b, ",\"reason\":\"Invalid\",\"details\":{\"name\":");
    kobj_json_str(&b, name ? name : "", name ? strlen(name) : 0);
    if (group && *group)
        buf_printf(&b, ",\"group\":\"%s\"", group);
    buf_printf(&b, ",\"kind\":\"%s\"", kind);
    const char *errs = strstr(message, " is invalid: ");
    if (errs)
        invalid_causes(&b, errs + strlen(" is invalid: "));
    buf_puts(&b, "},\"code\":422}\n");
    return buf_take(&b);
}
