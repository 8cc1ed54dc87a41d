/*
 * kpatch: the entry point, the limits, what the formats share (parsing,
 * errors, Go's way of printing values) and JSON merge patch (RFC 7386, as
 * evanphx/json-patch's MergePatch, which Kubernetes uses). JSON patch is
 * kpatch_json.c, strategic merge patch kpatch_strategic.c. See kpatch.h.
 *
 * Patches are untrusted: they are first checked by json.c's strict parser
 * (RFC 8259 exactly, bounded depth and size; json-c alone accepts a few
 * things RFC 8259 refuses, such as single-quoted strings), in a file of its
 * own (kpatch_dup.c) since json.h's names clash with json-c's. Then both
 * texts are parsed by json-c, patched in place and written out.
 */
#include "config.h"
#include "buf.h"
#include "kpatch_int.h"
#include "util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* kpatch_dup.c: json.c's strict check of a patch; 0, or -1 with *err. */
int kpatch_check_strict(const char *buf, size_t len, char **err);

/* ------------------------------------------------------------- helpers */

int kp_fail(struct kp *c, int status, const char *fmt, ...)
{
    if (c->status)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    c->err = xvasprintf(fmt, ap);
    va_end(ap);
    c->status = status;
    return -1;
}

int kp_charge(struct kp *c, size_t n)
{
    c->work += n;
    if (c->work <= KPATCH_MAX_WORK)
        return 0;
    return kp_fail(c, 413, "Request entity too large: the patch takes more than %u steps to apply",
                   KPATCH_MAX_WORK);
}

const char *kp_text(json_object *v)
{
    return json_object_to_json_string_ext(v,
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

const char *kp_gotype(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        return "<nil>";
    case json_type_boolean:
        return "bool";
    case json_type_double:
        return "float64";
    case json_type_int:
        return "int64";
    case json_type_object:
        return "map[string]interface {}";
    case json_type_array:
        return "[]interface {}";
    case json_type_string:
        return "string";
    }
    return "<nil>";
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

#define GOFMT_MAX 1024

static void gofmt(struct buf *b, json_object *v)
{
    if (b->len > GOFMT_MAX)
        return;
    switch (json_object_get_type(v)) {
    case json_type_null:
        buf_add(b, "<nil>", 5);
        break;
    case json_type_string:
        buf_add(b, json_object_get_string(v), (size_t)json_object_get_string_len(v));
        break;
    case json_type_array:
        buf_add(b, "[", 1);
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            if (i)
                buf_add(b, " ", 1);
            gofmt(b, json_object_array_get_idx(v, i));
        }
        buf_add(b, "]", 1);
        break;
    case json_type_object: {
        size_t n = (size_t)json_object_object_length(v), i = 0;
        char **keys = xmalloc((n + 1) * sizeof(*keys));
        json_object_object_foreach(v, k, val)
        {
            (void)val;
            keys[i++] = k;
        }
        qsort(keys, n, sizeof(*keys), cmp_str);
        buf_add(b, "map[", 4);
        for (i = 0; i < n; i++) {
            buf_printf(b, "%s%s:", i ? " " : "", keys[i]);
            gofmt(b, json_object_object_get(v, keys[i]));
        }
        buf_add(b, "]", 1);
        free(keys);
        break;
    }
    default:
        buf_add(b, kp_text(v), strlen(kp_text(v)));
    }
}

char *kp_gofmt(json_object *v)
{
    struct buf b = {0};
    gofmt(&b, v);
    if (b.len > GOFMT_MAX) {
        b.len = GOFMT_MAX;
        buf_add(&b, "...", 3);
    }
    if (!b.p)
        buf_add(&b, "", 0);
    return buf_take(&b);
}

/* The JSON type of v as Go's encoding/json names it in "cannot unmarshal" messages. */
const char *kp_gojson(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_boolean:
        return "bool";
    case json_type_double:
    case json_type_int:
        return "number";
    case json_type_object:
        return "object";
    case json_type_array:
        return "array";
    case json_type_string:
        return "string";
    default:
        return "null";
    }
}

/*
 * Parses a JSON text with json-c into *out (json-c's NULL is JSON null).
 * A bare number at the end of the input needs a delimiter before json-c
 * returns it: one space is fed then. 0, or -1 failing with status.
 */
static int parse(struct kp *c, const char *s, size_t len, int status, const char *what,
                 json_object **out)
{
    if (len > 0x7fffffff)
        len = 0x7fffffff; /* refused by the size limits before this */
    json_tokener *tok = json_tokener_new_ex(KPATCH_MAX_DEPTH + 1);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *v = json_tokener_parse_ex(tok, s, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (!v && e == json_tokener_continue) {
        v = json_tokener_parse_ex(tok, " ", 1);
        e = json_tokener_get_error(tok);
        end = len; /* all of s was read before */
    }
    if (e == json_tokener_success && end < len) {
        while (end < len && strchr(" \t\r\n", s[end]))
            end++;
        if (end < len)
            e = json_tokener_error_parse_unexpected;
    }
    json_tokener_free(tok);
    if (e == json_tokener_success) {
        *out = v;
        return 0;
    }
    json_object_put(v);
    *out = NULL;
    return kp_fail(c, status, "%s: %s", what,
                   e == json_tokener_continue ? "unexpected end of JSON input"
                                              : json_tokener_error_desc(e));
}

/* --------------------------------------------------------- merge patch */

/* Removes null members of objects, recursively (not null array elements), as evanphx does. */
static void prune_nulls(json_object *v)
{
    if (json_object_is_type(v, json_type_object)) {
        struct lh_entry *e = json_object_get_object(v)->head, *next;
        for (; e; e = next) {
            next = e->next;
            json_object *val = (json_object *)lh_entry_v(e);
            if (!val)
                json_object_object_del(v, (const char *)lh_entry_k(e));
            else
                prune_nulls(val);
        }
    } else if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            prune_nulls(json_object_array_get_idx(v, i));
    }
}

/* RFC 7386 MergePatch of patch (an object) into doc (an object), both json-c's. */
static void merge_docs(json_object *doc, json_object *patch)
{
    json_object_object_foreach(patch, k, pv)
    {
        json_object *cur = NULL;
        if (!pv) {
            json_object_object_del(doc, k);
        } else if (!json_object_object_get_ex(doc, k, &cur) ||
                   !json_object_is_type(cur, json_type_object)) {
            prune_nulls(pv);
            json_object_object_add(doc, k, json_object_get(pv));
        } else if (!json_object_is_type(pv, json_type_object)) {
            json_object_object_add(doc, k, json_object_get(pv));
        } else {
            merge_docs(cur, pv);
        }
    }
}

static int merge_patch(struct kp *c, json_object **doc, json_object *patch)
{
    if (!patch)
        return kp_fail(c, 400, "Invalid JSON Patch");
    if (json_object_is_type(patch, json_type_object) &&
        json_object_is_type(*doc, json_type_object)) {
        merge_docs(*doc, patch);
        return 0;
    }
    /* Not two objects: the patch becomes the document, as evanphx's MergePatch does. */
    if (!json_object_is_type(patch, json_type_object) &&
        !json_object_is_type(patch, json_type_array))
        return kp_fail(c, 400, "Invalid JSON Patch");
    prune_nulls(patch);
    json_object_put(*doc);
    *doc = json_object_get(patch);
    return 0;
}

/* --------------------------------------------------------------- entry */

int kpatch_type_of(const char *ct)
{
    static const char *const types[] = {
        [KPATCH_JSON] = "application/json-patch+json",
        [KPATCH_MERGE] = "application/merge-patch+json",
        [KPATCH_STRATEGIC] = "application/strategic-merge-patch+json",
    };
    if (!ct)
        return -1;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    while (n > 0 && (*ct == ' ' || *ct == '\t'))
        ct++, n--;
    for (int t = 0; t < (int)ARRAY_SIZE(types); t++)
        if (strlen(types[t]) == n && !strncasecmp(ct, types[t], n))
            return t;
    return -1;
}

static char *fail_out(struct kp *c, int *status, char **err)
{
    *status = c->status ? c->status : 500;
    *err = c->err ? c->err : xstrdup("patch failed");
    return NULL;
}

char *kpatch_apply(enum kpatch_type t, const ProtobufCMessageDescriptor *desc, const char *doc,
                   size_t doc_len, const char *patch, size_t patch_len, size_t *out_len,
                   int *status, char **err)
{
    struct kp c = {0};
    json_object *d = NULL, *p = NULL;
    char *perr = NULL, *out = NULL;
    *out_len = 0;
    *status = 0;
    *err = NULL;
    if (patch_len > KPATCH_MAX_BYTES) {
        kp_fail(&c, 413, "Request entity too large: limit is %u", KPATCH_MAX_BYTES);
        goto done;
    }
    if (doc_len > KPATCH_MAX_DOC) {
        kp_fail(&c, 413, "Request entity too large: limit is %u", KPATCH_MAX_DOC);
        goto done;
    }
    if (kpatch_check_strict(patch, patch_len, &perr) < 0) {
        if (t == KPATCH_MERGE)
            kp_fail(&c, 400, "Invalid JSON Patch");
        else
            kp_fail(&c, 400, "error decoding patch: %s", perr);
        goto done;
    }
    if (parse(&c, doc, doc_len, 422, "invalid JSON document", &d) < 0 ||
        parse(&c, patch, patch_len, 400, "error decoding patch", &p) < 0)
        goto done;
    /* p is NULL for a "null" patch: json-c's NULL is JSON null. */
    int r = -1;
    switch (t) {
    case KPATCH_JSON:
        r = kp_json_patch(&c, &d, p);
        break;
    case KPATCH_MERGE:
        r = merge_patch(&c, &d, p);
        break;
    case KPATCH_STRATEGIC:
        if (p && !json_object_is_type(p, json_type_object)) {
            kp_fail(&c, 400,
                    "json: cannot unmarshal %s into Go value of type map[string]interface {}",
                    kp_gojson(p));
            break;
        }
        if (!json_object_is_type(d, json_type_object)) {
            kp_fail(&c, 422, "invalid JSON document");
            break;
        }
        r = p ? kp_strategic(&c, &d, p, desc) : 0;
        break;
    default:
        kp_fail(&c, 415, "unknown patch type");
    }
    if (r < 0)
        goto done;
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        d, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (len > KPATCH_MAX_RESULT) {
        kp_fail(&c, 413, "Request entity too large: limit is %u", KPATCH_MAX_RESULT);
        goto done;
    }
    out = xmemdup(s, len + 1);
    *out_len = len;
done:
    free(perr);
    json_object_put(d);
    json_object_put(p);
    if (!out)
        return fail_out(&c, status, err);
    free(c.err);
    return out;
}
