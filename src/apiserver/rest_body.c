/*
 * rest_body: the request bodies of the REST API's writes, as pure
 * functions of the content type and the bytes (rest_write.c answers what
 * they say; t/fuzz/fuzz_rest_body.c feeds them garbage): objects in JSON,
 * YAML or Kubernetes' protobuf envelope with fieldValidation, and
 * DeleteOptions. Errors carry Kubernetes' status, reason and wording. See
 * rest_int.h.
 */
#include "config.h"
#include "rest_int.h"
#include "buf.h"
#include "json.h"
#include "obj.h"
#include "pb.h"
#include "wire.h"
#include "util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void *fail(struct rest_err *e, int status, const char *reason, char *msg)
{
    e->status = status;
    e->reason = reason;
    e->msg = msg;
    return NULL;
}

char *rest_media_type(const char *ct)
{
    if (!ct)
        return xstrdup("");
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    char *m = xstrndup(ct, n);
    for (char *p = m; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return m;
}

/*
 * The protobuf envelope: "k8s\0" then a runtime.Unknown {typeMeta = 1
 * {apiVersion = 1, kind = 2}, raw = 2, contentEncoding = 3, contentType =
 * 4}. Returns 0 with the raw object's bytes and the type's strings
 * (malloc'd into ko, NULL if absent), or -1 with *why (static).
 */
static int pb_envelope(const uint8_t *body, size_t len, const uint8_t **raw, size_t *raw_len,
                       struct kobj_opts *ko, const char **why)
{
    static const uint8_t magic[4] = {'k', '8', 's', 0};
    const uint8_t *tm, *v, *enc;
    size_t tml, vl, encl;
    *why = "the protobuf body does not start with the \"k8s\\0\" prefix";
    if (len < 4 || memcmp(body, magic, 4))
        return -1;
    body += 4;
    len -= 4;
    *why = "the protobuf envelope (runtime.Unknown) is malformed";
    int rt = wire_find(body, len, 1, &tm, &tml), rr = wire_find(body, len, 2, raw, raw_len);
    int re = wire_find(body, len, 3, &enc, &encl);
    if (rt < 0 || rr < 0 || re < 0)
        return -1;
    if (rr == 0) {
        *raw = body;
        *raw_len = 0;
    }
    if (re == 1 && encl) {
        *why = "the protobuf envelope's contentEncoding is not supported";
        return -1;
    }
    if (rt == 1) {
        if (wire_find(tm, tml, 1, &v, &vl) == 1)
            ko->api_version = xstrndup((const char *)v, vl);
        if (wire_find(tm, tml, 2, &v, &vl) == 1)
            ko->kind = xstrndup((const char *)v, vl);
    }
    return 0;
}

/* s unless empty or NULL, else dflt (the kind a body names, for messages). */
static const char *named(const char *s, const char *dflt)
{
    return s && *s ? s : dflt;
}

/* JSON or YAML: every problem collected as Warn does; Strict refuses them all at once. */
static ProtobufCMessage *decode_text(const char *text, size_t len,
                                     const ProtobufCMessageDescriptor *desc, const char *kind,
                                     const char *api_version, enum kobj_fields fields,
                                     struct kobj_opts *ko, struct rest_err *e)
{
    char *err = NULL;
    ko->fields = fields == KOBJ_FIELDS_IGNORE ? KOBJ_FIELDS_IGNORE : KOBJ_FIELDS_WARN;
    ProtobufCMessage *m = kobj_parse_msg_opts("body", text, len, desc, ko, &err);
    const char *bk = named(ko->kind, kind), *bv = named(ko->api_version, api_version);
    if (!m) {
        fail(e, 400, "BadRequest",
             xasprintf("%s in version \"%s\" cannot be handled as a %s: %s", bk, bv, kind,
                       err ? err : "malformed body"));
        free(err);
        return NULL;
    }
    if (fields != KOBJ_FIELDS_STRICT || !ko->n_warnings)
        return m;
    struct buf b = {0};
    buf_printf(&b, "%s in version \"%s\" cannot be handled as a %s: strict decoding error: ", bk,
               bv, kind);
    for (size_t i = 0; i < ko->n_warnings; i++)
        buf_printf(&b, "%s%s", i ? ", " : "", ko->warnings[i]);
    obj_free(m);
    return fail(e, 400, "BadRequest", buf_take(&b));
}

ProtobufCMessage *rest_body_decode(const char *media, const void *body, size_t len,
                                   const ProtobufCMessageDescriptor *desc, const char *kind,
                                   const char *api_version, enum kobj_fields fields,
                                   struct kobj_opts *ko, struct rest_err *e)
{
    ProtobufCMessage *m = NULL;
    if (!*media || !strcmp(media, REST_JSON) || !strcmp(media, REST_YAML)) {
        m = decode_text(body, len, desc, kind, api_version, fields, ko, e);
    } else if (!strcmp(media, REST_PB)) {
        const uint8_t *raw;
        size_t rl;
        const char *why;
        if (pb_envelope(body, len, &raw, &rl, ko, &why) < 0)
            return fail(e, 400, "BadRequest", xstrdup(why));
        if (!(m = obj_decode(desc, raw, rl)))
            return fail(e, 400, "BadRequest",
                        xasprintf("%s in version \"%s\" cannot be handled as a %s: invalid "
                                  "protobuf wire data (%zu bytes)",
                                  named(ko->kind, kind), named(ko->api_version, api_version), kind,
                                  rl));
        obj_clear_go_zero(m);
    } else {
        return fail(e, 415, "UnsupportedMediaType",
                    xstrdup("the body of the request was in an unknown format - accepted media "
                            "types include: " REST_JSON ", " REST_YAML ", " REST_PB));
    }
    if (!m)
        return NULL;
    if (ko->api_version && *ko->api_version && strcmp(ko->api_version, api_version)) {
        obj_free(m);
        return fail(e, 400, "BadRequest",
                    xasprintf("the API version in the data (%s) does not match the expected API "
                              "version (%s)",
                              ko->api_version, api_version));
    }
    if (ko->kind && *ko->kind && strcmp(ko->kind, kind)) {
        obj_free(m);
        return fail(e, 400, "BadRequest",
                    xasprintf("%s in version \"%s\" cannot be handled as a %s: the object "
                              "provided is not a %s",
                              ko->kind, named(ko->api_version, api_version), kind, kind));
    }
    return m;
}

/* ---- DeleteOptions ---- */

/* A dryRun value: "All" is the only one. NULL, or what is wrong (malloc'd). */
static char *dry_run_value(const char *d, size_t n, struct rest_delete_opts *o)
{
    if (n == 3 && !memcmp(d, "All", 3)) {
        o->dry_run = true;
        return NULL;
    }
    return xasprintf("dryRun: Unsupported value: []string{\"%.*s\"}: supported values: \"All\"",
                     (int)n, d);
}

/* DeleteOptions from a JSON body into o; NULL or what is wrong (malloc'd). */
static char *delete_json(const json_t *j, struct rest_delete_opts *o)
{
    const char *policy = json_str(json_get(j, "propagationPolicy"));
    if (policy)
        o->policy = xstrdup(policy);
    json_t *od = json_get(j, "orphanDependents");
    if (od && !json_is(od, JSON_NULL)) {
        if (!json_is(od, JSON_TRUE) && !json_is(od, JSON_FALSE))
            return xstrdup("orphanDependents: Invalid value: must be a boolean");
        o->has_orphan = true;
        o->orphan = json_is(od, JSON_TRUE);
    }
    json_t *g = json_get(j, "gracePeriodSeconds");
    if (g && !json_is(g, JSON_NULL)) {
        o->has_grace = true;
        if (json_int64(g, &o->grace) < 0)
            return xstrdup("gracePeriodSeconds: Invalid value: must be an integer");
    }
    json_t *pre = json_get(j, "preconditions");
    const char *uid = json_str(json_get(pre, "uid")),
               *rv = json_str(json_get(pre, "resourceVersion"));
    if (uid && *uid)
        o->pre_uid = xstrdup(uid);
    if (rv && *rv)
        o->pre_rv = xstrdup(rv);
    json_t *dry = json_get(j, "dryRun");
    for (size_t i = 0; json_is(dry, JSON_ARRAY) && i < dry->n; i++) {
        const char *d = json_str(json_at(dry, i));
        char *why = dry_run_value(d ? d : "", d ? strlen(d) : 0, o);
        if (why)
            return why;
    }
    return NULL;
}

/* A string field of the protobuf form as a C string (malloc'd, text up to a NUL). */
static char *pb_str(const uint8_t *v, size_t n)
{
    return xstrndup((const char *)v, n);
}

/*
 * DeleteOptions (meta/v1) from Kubernetes' protobuf form: gracePeriodSeconds
 * 1, preconditions 2 {uid 1, resourceVersion 2}, orphanDependents 3,
 * propagationPolicy 4, dryRun 5; other fields are skipped. Returns 0
 * (*why: NULL, or a value that is wrong, malloc'd), or -1 if the bytes are
 * not protobuf.
 */
static int delete_pb(const uint8_t *p, size_t len, struct rest_delete_opts *o, char **why)
{
    const uint8_t *end = p + len;
    while (p < end) {
        uint64_t key, v;
        if (pb_varint_get(&p, end, &key) < 0)
            return -1;
        uint32_t f = (uint32_t)(key >> 3);
        switch (key & 7) {
        case 0:
            if (pb_varint_get(&p, end, &v) < 0)
                return -1;
            if (f == 1) {
                o->has_grace = true;
                o->grace = (int64_t)v;
            } else if (f == 3) {
                o->has_orphan = true;
                o->orphan = v != 0;
            }
            break;
        case 2: {
            if (pb_varint_get(&p, end, &v) < 0 || v > (uint64_t)(end - p))
                return -1;
            const uint8_t *s;
            size_t sl;
            if (f == 2) {
                free(o->pre_uid);
                free(o->pre_rv);
                o->pre_uid = o->pre_rv = NULL;
                if (wire_find(p, (size_t)v, 1, &s, &sl) == 1 && sl)
                    o->pre_uid = pb_str(s, sl);
                if (wire_find(p, (size_t)v, 2, &s, &sl) == 1 && sl)
                    o->pre_rv = pb_str(s, sl);
            } else if (f == 4) {
                free(o->policy);
                o->policy = pb_str(p, (size_t)v);
            } else if (f == 5 && !*why) {
                *why = dry_run_value((const char *)p, (size_t)v, o);
            }
            p += v;
            break;
        }
        case 1:
        case 5:
            if ((size_t)(end - p) < ((key & 7) == 1 ? 8u : 4u))
                return -1;
            p += (key & 7) == 1 ? 8 : 4;
            break;
        default:
            return -1;
        }
    }
    return 0;
}

/* A query's boolean as Go's strconv.ParseBool reads it: 0 or -1. */
static int query_bool(const char *v, bool *out)
{
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True", NULL};
    static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False", NULL};
    for (size_t i = 0; t[i]; i++) {
        if (!strcmp(v, t[i]))
            return *out = true, 0;
        if (!strcmp(v, f[i]))
            return *out = false, 0;
    }
    return -1;
}

/* The body (JSON or protobuf) into o: 0, or -1 with *e for what cannot be read at all. */
static int delete_body(const char *media, const void *body, size_t len, struct rest_delete_opts *o,
                       char **why, struct rest_err *e)
{
    if (!strcmp(media, REST_PB)) {
        const uint8_t *raw;
        size_t rl;
        const char *bad;
        struct kobj_opts ko = {0};
        int r = pb_envelope(body, len, &raw, &rl, &ko, &bad);
        kobj_opts_free(&ko);
        if (r < 0) {
            fail(e, 400, "BadRequest", xstrdup(bad));
            return -1;
        }
        if (delete_pb(raw, rl, o, why) < 0) {
            free(*why);
            *why = NULL;
            fail(e, 400, "BadRequest",
                 xasprintf("DeleteOptions: invalid protobuf wire data (%zu bytes)", rl));
            return -1;
        }
        return 0;
    }
    if (*media && strcmp(media, REST_JSON)) {
        fail(e, 415, "UnsupportedMediaType",
             xstrdup("the body of the request was in an unknown format - accepted media "
                     "types include: " REST_JSON ", " REST_PB));
        return -1;
    }
    json_t *j = NULL;
    char *err = NULL;
    if (json_parse(body, len, NULL, &j, &err) < 0 || !json_is(j, JSON_OBJECT)) {
        fail(e, 400, "BadRequest",
             xasprintf("DeleteOptions: %s", err ? err : "expected an object"));
        free(err);
        json_free(j);
        return -1;
    }
    *why = delete_json(j, o);
    json_free(j);
    return 0;
}

int rest_delete_opts_parse(const char *media, const void *body, size_t len, const struct rquery *q,
                           struct rest_delete_opts *o, struct rest_err *e)
{
    memset(o, 0, sizeof(*o));
    char *why = NULL;
    if (len) {
        if (delete_body(media, body, len, o, &why, e) < 0) {
            rest_delete_opts_free(o);
            return -1;
        }
    } else {
        const char *policy = rest_query_get(q, "propagationPolicy"),
                   *grace = rest_query_get(q, "gracePeriodSeconds"),
                   *orphan = rest_query_get(q, "orphanDependents");
        o->policy = policy ? xstrdup(policy) : NULL;
        o->has_grace = grace != NULL;
        if (grace && rest_query_int(grace, &o->grace) < 0)
            why = xstrdup("gracePeriodSeconds: Invalid value: must be an integer");
        o->has_orphan = orphan != NULL;
        if (orphan && query_bool(orphan, &o->orphan) < 0) {
            fail(e, 400, "BadRequest",
                 xasprintf("strconv.ParseBool: parsing \"%s\": invalid syntax", orphan));
            rest_delete_opts_free(o);
            return -1;
        }
    }
    if (!why)
        gcpolicy_parse(o->policy, o->has_orphan, o->orphan, &o->gc, &why);
    if (!why && o->has_grace && o->grace < 0)
        why = xasprintf("gracePeriodSeconds: Invalid value: %" PRId64
                        ": must be greater than or equal to 0",
                        o->grace);
    if (!why)
        return 0;
    fail(e, 422, "Invalid", xasprintf("DeleteOptions.meta.k8s.io \"\" is invalid: %s", why));
    free(why);
    rest_delete_opts_free(o);
    return -1;
}

void rest_delete_opts_free(struct rest_delete_opts *o)
{
    free(o->pre_uid);
    free(o->pre_rv);
    free(o->policy);
    memset(o, 0, sizeof(*o));
}
