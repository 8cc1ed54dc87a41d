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

/* DeleteOptions from a JSON body into o; NULL or what is wrong (malloc'd). */
static char *delete_json(const json_t *j, struct rest_delete_opts *o, bool *orphan)
{
    const char *policy = json_str(json_get(j, "propagationPolicy"));
    if (policy)
        o->policy = xstrdup(policy);
    *orphan = json_get(j, "orphanDependents") != NULL;
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
        if (!d || strcmp(d, "All"))
            return xasprintf("dryRun: Unsupported value: []string{\"%s\"}: supported values: "
                             "\"All\"",
                             d ? d : "");
        o->dry_run = true;
    }
    return NULL;
}

int rest_delete_opts_parse(const char *media, const void *body, size_t len, const struct rquery *q,
                           struct rest_delete_opts *o, struct rest_err *e)
{
    memset(o, 0, sizeof(*o));
    char *why = NULL;
    bool orphan = rest_query_get(q, "orphanDependents") != NULL;
    if (len) {
        if (*media && strcmp(media, REST_JSON)) {
            fail(e, 415, "UnsupportedMediaType",
                 xstrdup("the body of the request was in an unknown format - accepted media "
                         "types include: " REST_JSON));
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
        why = delete_json(j, o, &orphan);
        json_free(j);
    } else {
        const char *policy = rest_query_get(q, "propagationPolicy"),
                   *grace = rest_query_get(q, "gracePeriodSeconds");
        o->policy = policy ? xstrdup(policy) : NULL;
        o->has_grace = grace != NULL;
        if (grace && rest_query_int(grace, &o->grace) < 0)
            why = xstrdup("gracePeriodSeconds: Invalid value: must be an integer");
    }
    const char *p = o->policy;
    if (!why && p && strcmp(p, "Orphan") && strcmp(p, "Background") && strcmp(p, "Foreground"))
        why = xasprintf("propagationPolicy: Unsupported value: \"%s\": supported values: "
                        "\"Foreground\", \"Background\", \"Orphan\", \"nil\"",
                        p);
    if (!why && p && orphan)
        why = xstrdup("propagationPolicy: Invalid value: \"\": orphanDependents and "
                      "deletionPropagation cannot be both set");
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
