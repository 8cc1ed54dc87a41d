/*
 * kpatch_json: JSON patch (RFC 6902) with the behaviour and the messages of
 * evanphx/json-patch v4, which Kubernetes' apiserver applies: JSON pointers
 * (~0, ~1, "-" to append, negative indices from the end), the six
 * operations, a missing object member read as null, replace adding a
 * missing member. Every step is counted against the work bound; a value
 * may not nest the document deeper than KPATCH_MAX_DEPTH; copies add at
 * most KPATCH_MAX_COPY_BYTES. See kpatch.h.
 */
#include "config.h"
#include "kpatch_int.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------- JSON pointer */

/* One reference token of a pointer, decoded (~1 -> '/', then ~0 -> '~'). */
static char *token(const char *s, size_t n)
{
    char *t = xmalloc(n + 1), *o = t;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '~' && i + 1 < n && (s[i + 1] == '1' || s[i + 1] == '0')) {
            *o++ = s[i + 1] == '1' ? '/' : '~';
            i++;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return t;
}

/*
 * An array index as Go's strconv.Atoi reads it: optional sign, decimal
 * digits. 0, or -1 with *err in Atoi's words.
 */
static int atoi_go(const char *s, long *out, char **err)
{
    const char *p = s + (*s == '+' || *s == '-');
    if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 12) {
        *err = xasprintf("strconv.Atoi: parsing \"%s\": %s", s,
                         *p && strspn(p, "0123456789") == strlen(p) ? "value out of range"
                                                                    : "invalid syntax");
        return -1;
    }
    *out = strtol(s, NULL, 10);
    return 0;
}

/*
 * Finds the container a pointer's last token is in, as evanphx's findObject
 * does: every token but the last must name an existing object member or
 * array element. Returns the container (borrowed) and *key (malloc'd, the
 * decoded last token), or NULL when the path has no '/' or a step is
 * missing. *depth: the container's depth below the root.
 */
static json_object *find_container(struct kp *c, json_object *root, const char *path, char **key,
                                   size_t *depth)
{
    *key = NULL;
    *depth = 0;
    if (*path != '/')
        return NULL;
    json_object *cur = root;
    const char *p = path + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (!slash) {
            *key = token(p, strlen(p));
            return cur;
        }
        char *t = token(p, (size_t)(slash - p));
        json_object *next = NULL;
        if (json_object_is_type(cur, json_type_object)) {
            next = json_object_object_get(cur, t);
        } else if (json_object_is_type(cur, json_type_array)) {
            long i;
            char *e = NULL;
            if (atoi_go(t, &i, &e) == 0 && i >= 0 && (size_t)i < json_object_array_length(cur))
                next = json_object_array_get_idx(cur, (size_t)i);
            free(e);
        }
        free(t);
        if (!next || !(json_object_is_type(next, json_type_object) ||
                       json_object_is_type(next, json_type_array)))
            return NULL;
        if (kp_charge(c, 1) < 0)
            return NULL;
        cur = next;
        (*depth)++;
        p = slash + 1;
    }
}

/* Height of v: 0 for a scalar, 1 + the deepest child for containers. Charged per node. */
static int height(struct kp *c, json_object *v, size_t *nodes)
{
    (*nodes)++;
    int h = 0;
    if (json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, k, val)
        {
            (void)k;
            int hh = height(c, val, nodes);
            h = hh > h ? hh : h;
        }
        return h + 1;
    }
    if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            int hh = height(c, json_object_array_get_idx(v, i), nodes);
            h = hh > h ? hh : h;
        }
        return h + 1;
    }
    return 0;
}

/* Refuses a value of v's height under a container at depth: the result must stay parseable. */
static int check_depth(struct kp *c, json_object *v, size_t depth)
{
    size_t nodes = 0;
    int h = height(c, v, &nodes);
    if (kp_charge(c, nodes) < 0)
        return -1;
    if (depth + 1 + (size_t)h > KPATCH_MAX_DEPTH)
        return kp_fail(c, 422, "nesting deeper than %d levels", KPATCH_MAX_DEPTH);
    return 0;
}

/* Inserts val (owned) into array a at i (0 <= i <= length). */
static void array_insert(json_object *a, size_t i, json_object *val)
{
    size_t n = json_object_array_length(a);
    if (i == n) {
        json_object_array_add(a, val);
        return;
    }
    json_object **tail = xmalloc((n - i) * sizeof(*tail));
    for (size_t j = i; j < n; j++)
        tail[j - i] = json_object_get(json_object_array_get_idx(a, j));
    json_object_array_del_idx(a, i, n - i);
    json_object_array_add(a, val);
    for (size_t j = 0; j < n - i; j++)
        json_object_array_add(a, tail[j]);
    free(tail);
}

/* ---------------------------------------------------------- JSON patch */

/* One operation's string member: 1 found (*out borrowed), 0 absent, -1 not a string. */
static int op_str(json_object *op, const char *name, const char **out)
{
    json_object *v;
    *out = NULL;
    if (!json_object_object_get_ex(op, name, &v) || json_object_is_type(v, json_type_null))
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return -1;
    *out = json_object_get_string(v);
    return 1;
}

/* The "value" member (borrowed; json-c's NULL is JSON null), *has whether it is there. */
static json_object *op_value(json_object *op, int *has)
{
    json_object *v = NULL;
    *has = json_object_object_get_ex(op, "value", &v);
    return v;
}

/* Adds val (owned) at key of container con, as evanphx's add does. path names it in messages. */
static int con_add(struct kp *c, json_object *con, const char *key, json_object *val,
                   const char *path, const char *verb)
{
    if (json_object_is_type(con, json_type_object)) {
        json_object_object_add(con, key, val);
        return 0;
    }
    size_t n = json_object_array_length(con);
    if (!strcmp(key, "-")) {
        json_object_array_add(con, val);
        return 0;
    }
    long i;
    char *e = NULL;
    if (atoi_go(key, &i, &e) < 0) {
        kp_fail(c, 422, "error in %s for path: '%s': value was not a proper array index: '%s': %s",
                verb, path, key, e);
        free(e);
        json_object_put(val);
        return -1;
    }
    if (i > (long)n || i < -(long)n - 1) {
        json_object_put(val);
        return kp_fail(c, 422,
                       "error in %s for path: '%s': Unable to access invalid index: %ld: invalid "
                       "index referenced",
                       verb, path, i);
    }
    if (i < 0)
        i += (long)n + 1;
    if (kp_charge(c, (n - (size_t)i) / 16) < 0) {
        json_object_put(val);
        return -1;
    }
    array_insert(con, (size_t)i, val);
    return 0;
}

/* Index key of array con for get/remove/replace: 0 or -1 (*e: Atoi's or the index message). */
static int con_index(json_object *con, const char *key, int negative, size_t *out, char **e)
{
    long i;
    size_t n = json_object_array_length(con);
    if (atoi_go(key, &i, e) < 0)
        return -1;
    if (negative && i < 0 && i >= -(long)n)
        i += (long)n;
    if (i < 0 || i >= (long)n) {
        *e = xasprintf("Unable to access invalid index: %ld: invalid index referenced", i);
        return -1;
    }
    *out = (size_t)i;
    return 0;
}

/*
 * The value at key of con: 1 and *v (borrowed; json-c's NULL for null), 0
 * when an object has no such key, -1 with *e (malloc'd) for a bad index.
 */
static int con_get(json_object *con, const char *key, json_object **v, char **e)
{
    *e = NULL;
    *v = NULL;
    if (json_object_is_type(con, json_type_object))
        return json_object_object_get_ex(con, key, v) ? 1 : 0;
    size_t i;
    if (con_index(con, key, 0, &i, e) < 0)
        return -1;
    *v = json_object_array_get_idx(con, i);
    return 1;
}

/* Removes key from con. verb/path name it in messages. */
static int con_remove(struct kp *c, json_object *con, const char *key, const char *verb,
                      const char *path)
{
    if (json_object_is_type(con, json_type_object)) {
        if (!json_object_object_get_ex(con, key, NULL))
            return kp_fail(c, 422,
                           "error in %s for path: '%s': Unable to remove nonexistent key: %s: "
                           "missing value",
                           verb, path, key);
        json_object_object_del(con, key);
        return 0;
    }
    size_t i;
    char *e = NULL;
    if (con_index(con, key, 1, &i, &e) < 0) {
        kp_fail(c, 422, "error in %s for path: '%s': %s", verb, path, e);
        free(e);
        return -1;
    }
    if (kp_charge(c, json_object_array_length(con) / 16) < 0)
        return -1;
    json_object_array_del_idx(con, i, 1);
    return 0;
}

/*
 * Where an operation's messages differ: evanphx's words each its own way.
 * no_member: the member ("path" or "from") is missing or not a string;
 * no_target: the container it points into is missing (%s: the pointer).
 */
struct words {
    const char *no_member, *no_target;
};

static const struct words add_path = {
    "add operation failed to decode path: missing value",
    "add operation does not apply: doc is missing path: \"%s\": missing value"};
static const struct words remove_path = {
    "remove operation failed to decode path: missing value",
    "remove operation does not apply: doc is missing path: \"%s\": missing value"};
static const struct words replace_path = {
    "replace operation failed to decode path: operation missing path field: missing value",
    "replace operation does not apply: doc is missing path: %s: missing value"};
static const struct words test_path = {
    "test operation failed to decode path: operation missing path field: missing value",
    "test operation does not apply: is missing path: %s: missing value"};
static const struct words move_from = {
    "move operation failed to decode from: operation, missing from field: missing value",
    "move operation does not apply: doc is missing from path: %s: missing value"};
static const struct words move_path = {
    "move operation failed to decode path: operation missing path field: missing value",
    "move operation does not apply: doc is missing destination path: %s: missing value"};
static const struct words copy_from = {
    "copy operation failed to decode from: operation, missing from field: missing value",
    "copy operation does not apply: doc is missing from path: %s: missing value"};
static const struct words copy_path = {
    "copy operation failed to decode path: missing value",
    "copy operation does not apply: doc is missing destination path: %s: missing value"};

/* Where one of an operation's pointers leads. */
struct loc {
    const char *ptr;  /* the pointer (borrowed from the patch) */
    json_object *con; /* the container it points into (borrowed) */
    char *key;        /* the last token, decoded (owned) */
    size_t depth;     /* con's depth below the root */
};

/* Finds op's member (path or from) in doc: 0, or -1 failing in w's words. */
static int locate(struct kp *c, json_object *doc, json_object *op, const char *member,
                  const struct words *w, struct loc *l)
{
    memset(l, 0, sizeof(*l));
    if (op_str(op, member, &l->ptr) <= 0)
        return kp_fail(c, 422, "%s", w->no_member);
    l->con = find_container(c, doc, l->ptr, &l->key, &l->depth);
    if (l->con)
        return 0;
    free(l->key);
    l->key = NULL;
    return c->status ? -1 : kp_fail(c, 422, w->no_target, l->ptr);
}

static int op_add(struct kp *c, json_object *doc, json_object *op)
{
    struct loc to;
    if (locate(c, doc, op, "path", &add_path, &to) < 0)
        return -1;
    int has;
    json_object *val = op_value(op, &has);
    int r = check_depth(c, val, to.depth);
    if (r == 0)
        r = con_add(c, to.con, to.key, json_object_get(val), to.ptr, "add");
    free(to.key);
    return r;
}

static int op_remove(struct kp *c, json_object *doc, json_object *op)
{
    struct loc at;
    if (locate(c, doc, op, "path", &remove_path, &at) < 0)
        return -1;
    int r = con_remove(c, at.con, at.key, "remove", at.ptr);
    free(at.key);
    return r;
}

static int op_replace(struct kp *c, json_object *doc, json_object *op)
{
    struct loc at;
    if (locate(c, doc, op, "path", &replace_path, &at) < 0)
        return -1;
    char *e = NULL;
    json_object *old;
    int has, r, is_obj = json_object_is_type(at.con, json_type_object);
    /* evanphx's v4 (and so Kubernetes) replaces a missing object member as add
     * does, where RFC 6902 wants an error; a missing array index is an error. */
    int found = con_get(at.con, at.key, &old, &e);
    json_object *val = op_value(op, &has);
    if (found < 0 || (found == 0 && !is_obj)) {
        r = kp_fail(c, 422,
                    "replace operation does not apply: doc is missing key: %s: missing value",
                    at.ptr);
    } else if ((r = check_depth(c, val, at.depth)) == 0) {
        size_t i = 0;
        if (is_obj)
            json_object_object_add(at.con, at.key, json_object_get(val));
        else if (con_index(at.con, at.key, 0, &i, &e) == 0)
            json_object_array_put_idx(at.con, i, json_object_get(val));
    }
    free(e);
    free(at.key);
    return r;
}

/*
 * The value at op's "from" (a new reference, json-c NULL for null) and
 * where it is, or -1. A missing object member is null here: copy then adds
 * a null and move fails removing it, as evanphx's do.
 */
static int get_from(struct kp *c, json_object *doc, json_object *op, const char *verb,
                    const struct words *w, struct loc *from, json_object **out)
{
    if (locate(c, doc, op, "from", w, from) < 0)
        return -1;
    char *e = NULL;
    json_object *v;
    int found = con_get(from->con, from->key, &v, &e), r = 0;
    if (found < 0)
        r = kp_fail(c, 422, "error in %s for %s: '%s': %s", verb,
                    strcmp(verb, "copy") ? "path" : "from",
                    strcmp(verb, "copy") ? from->key : from->ptr, e);
    else
        *out = found ? json_object_get(v) : NULL;
    free(e);
    return r;
}

static int op_move(struct kp *c, json_object *doc, json_object *op)
{
    struct loc from, to = {0};
    json_object *val = NULL;
    int r = get_from(c, doc, op, "move", &move_from, &from, &val);
    if (r == 0)
        r = con_remove(c, from.con, from.key, "move", from.key);
    if (r == 0)
        r = locate(c, doc, op, "path", &move_path, &to);
    /* Moving up or sideways keeps the document within its depth; only deeper needs a look. */
    if (r == 0 && to.depth > from.depth)
        r = check_depth(c, val, to.depth);
    if (r == 0) {
        r = con_add(c, to.con, to.key, val, to.ptr, "move");
        val = NULL;
    }
    json_object_put(val);
    free(from.key);
    free(to.key);
    return r;
}

static int op_copy(struct kp *c, json_object *doc, json_object *op, size_t *copied)
{
    struct loc from, to = {0};
    json_object *val = NULL, *dup = NULL;
    int r = get_from(c, doc, op, "copy", &copy_from, &from, &val);
    if (r == 0)
        r = locate(c, doc, op, "path", &copy_path, &to);
    if (r == 0 && (*copied += strlen(kp_text(val))) > KPATCH_MAX_COPY_BYTES)
        r = kp_fail(c, 422,
                    "Unable to complete the copy, the accumulated size increase of copy is %zu, "
                    "exceeding the limit %u",
                    *copied, KPATCH_MAX_COPY_BYTES);
    if (r == 0)
        r = check_depth(c, val, to.depth);
    if (r == 0 && val && json_object_deep_copy(val, &dup, NULL) != 0)
        fatal("kpatch: out of memory");
    if (r == 0)
        r = con_add(c, to.con, to.key, dup, to.ptr, "add");
    json_object_put(val);
    free(from.key);
    free(to.key);
    return r;
}

static int op_test(struct kp *c, json_object *doc, json_object *op)
{
    struct loc at;
    if (locate(c, doc, op, "path", &test_path, &at) < 0)
        return -1;
    char *e = NULL;
    json_object *cur;
    int found = con_get(at.con, at.key, &cur, &e);
    int has, r = 0;
    json_object *val = op_value(op, &has);
    size_t nodes = 0;
    height(c, val, &nodes);
    if (kp_charge(c, nodes) < 0)
        r = -1;
    else if (found < 0)
        r = kp_fail(c, 422, "error in test for path: '%s': %s", at.ptr, e);
    else if (!cur) /* absent or null: passes against null, as in evanphx's */
        r = has && !val ? 0 : kp_fail(c, 422, "testing value %s failed: test failed", at.ptr);
    else if (!has || !json_object_equal(cur, val))
        r = kp_fail(c, 422, "testing value %s failed: test failed", at.ptr);
    free(e);
    free(at.key);
    return r;
}

/* Applies the operations of patch (an array, checked) to *doc in order. */
static int apply_ops(struct kp *c, json_object **doc, json_object *patch)
{
    size_t n = json_object_array_length(patch), copied = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *op = json_object_array_get_idx(patch, i);
        const char *kind = NULL;
        if (op_str(op, "op", &kind) <= 0)
            kind = "unknown";
        int r;
        if (!strcmp(kind, "add"))
            r = op_add(c, *doc, op);
        else if (!strcmp(kind, "remove"))
            r = op_remove(c, *doc, op);
        else if (!strcmp(kind, "replace"))
            r = op_replace(c, *doc, op);
        else if (!strcmp(kind, "move"))
            r = op_move(c, *doc, op);
        else if (!strcmp(kind, "copy"))
            r = op_copy(c, *doc, op, &copied);
        else if (!strcmp(kind, "test"))
            r = op_test(c, *doc, op);
        else
            r = kp_fail(c, 422, "Unexpected kind: %s", kind);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* What DecodePatch (Go's json.Unmarshal into []map[string]json.RawMessage) refuses. */
static int json_patch_shape(struct kp *c, json_object *patch)
{
    if (!json_object_is_type(patch, json_type_array))
        return json_object_is_type(patch, json_type_null)
                   ? 0
                   : kp_fail(c, 400,
                             "json: cannot unmarshal %s into Go value of type jsonpatch.Patch",
                             kp_gojson(patch));
    size_t n = json_object_array_length(patch);
    for (size_t i = 0; i < n; i++) {
        json_object *op = json_object_array_get_idx(patch, i);
        if (op && !json_object_is_type(op, json_type_object))
            return kp_fail(c, 400,
                           "json: cannot unmarshal %s into Go value of type jsonpatch.Operation",
                           kp_gojson(op));
    }
    if (n > KPATCH_MAX_OPS)
        return kp_fail(c, 413, "The allowed maximum operations in a JSON patch is %d, got %zu",
                       KPATCH_MAX_OPS, n);
    return 0;
}

int kp_json_patch(struct kp *c, json_object **doc, json_object *patch)
{
    if (json_patch_shape(c, patch) < 0)
        return -1;
    return patch ? apply_ops(c, doc, patch) : 0;
}
