/*
 * kobj_parse: YAML (and JSON, a subset) -> protobuf-c messages, for
 * kobj_parse and kobj_parse_msg (see kobj.c for the whole
 * module). libyaml's events become a tree of nodes carrying their
 * line:column (aliases refused, nesting bounded), or kobj_json.c builds
 * the same tree from JSON, then the tree is mapped
 * onto the message type by its descriptor, strictly: every error names
 * file:line:column and the field path.
 */
#include "config.h"
#include "kobj_int.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "buf.h"
#include "json.h"
#include "qty.h"
#include "pb.h"
#include "util.h"

/* ------------------------------------------------------------ the tree */

void kobj_ynode_free(struct ynode *n)
{
    if (!n)
        return;
    if (n->arena) {
        struct arena a = *n->arena; /* that struct lives in the arena too */
        arena_free(&a);
        return;
    }
    for (size_t i = 0; i < n->n; i++)
        kobj_ynode_free(n->kids[i]);
    free(n->kids);
    free(n->val);
    free(n);
}

void kobj_ynode_add(struct ynode *p, struct ynode *k)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 8;
        p->kids = xrealloc(p->kids, p->cap * sizeof(*p->kids));
    }
    p->kids[p->n++] = k;
}

/*
 * A field's path ("spec.containers[0].name"): the chain of its steps, each
 * on the stack of the mapper's call for it. It becomes text only for an
 * error or a warning, so reading a field allocates nothing for its path.
 */
struct kpath {
    const struct kpath *up; /* NULL: the document itself */
    const char *key;        /* a field's name or a map's key; NULL: item idx of a sequence */
    size_t idx;
};

static void path_put(struct buf *b, const struct kpath *p)
{
    if (!p)
        return;
    path_put(b, p->up);
    if (!p->key)
        buf_printf(b, "[%zu]", p->idx);
    else {
        if (b->len)
            buf_puts(b, ".");
        buf_puts(b, p->key);
    }
}

/* The path as text (malloc'd; "" for the document itself). */
static char *path_text(const struct kpath *p)
{
    struct buf b = {0};
    path_put(&b, p);
    return buf_take(&b);
}

struct pctx {
    const char *name;
    char *err;
    struct kobj_opts *o; /* NULL: strict, nothing reported (kobj_parse) */
    const char *buf;     /* the text: where a JSON tree's nodes are */
};

/* Unknown and duplicate fields are errors unless o says otherwise. */
static int strict(const struct pctx *c)
{
    return !c->o || c->o->fields == KOBJ_FIELDS_STRICT;
}

/* Notes a dropped field for KOBJ_FIELDS_WARN: what (`unknown field`) and its path. */
static void warn_field(struct pctx *c, const char *what, const struct kpath *path)
{
    if (c->o->fields != KOBJ_FIELDS_WARN)
        return;
    char *ps = path_text(path);
    c->o->warnings = xrealloc(c->o->warnings, (c->o->n_warnings + 1) * sizeof(char *));
    c->o->warnings[c->o->n_warnings++] = xasprintf("%s \"%s\"", what, ps);
    free(ps);
}

/* Keeps the top-level apiVersion or kind (key) for the caller to check. */
static void keep_type_meta(struct kobj_opts *o, const char *key, const char *val)
{
    char **dst = !strcmp(key, "kind") ? &o->kind : &o->api_version;
    free(*dst);
    *dst = xstrdup(val);
}

static int perr_at(struct pctx *c, int line, int col, const struct kpath *path, const char *fmt,
                   ...) PRINTF(5, 6);
static int perr_at(struct pctx *c, int line, int col, const struct kpath *path, const char *fmt,
                   ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    free(c->err);
    char *ps = path_text(path);
    if (*ps)
        c->err = xasprintf("%s:%d:%d: %s: %s", c->name, line, col, ps, msg);
    else
        c->err = xasprintf("%s:%d:%d: %s", c->name, line, col, msg);
    free(ps);
    free(msg);
    return -1;
}

/* Where node n starts (a JSON tree's nodes know their offset only). */
static void node_pos(const struct pctx *c, const struct ynode *n, int *line, int *col)
{
    *line = n->line;
    *col = n->col;
    if (!n->line)
        kobj_json_pos(c->buf, n->off, line, col);
}

static int perr_node(struct pctx *c, const struct ynode *n, const struct kpath *path,
                     const char *fmt, ...) PRINTF(4, 5);
static int perr_node(struct pctx *c, const struct ynode *n, const struct kpath *path,
                     const char *fmt, ...)
{
    int line, col;
    node_pos(c, n, &line, &col);
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    perr_at(c, line, col, path, "%s", msg);
    free(msg);
    return -1;
}
#define perr(c, node, path, ...) perr_node((c), (node), (path), __VA_ARGS__)

/* Reads the whole stream into one tree per document (NULL for empty ones). */
static int load_docs(struct pctx *c, const char *buf, size_t len, struct ynode ***docs,
                     size_t *ndocs)
{
    yaml_parser_t p;
    yaml_event_t ev;
    struct ynode *stack[KOBJ_MAX_DEPTH + 1];
    int sp = 0, rc = -1, done = 0;
    struct ynode *root = NULL;

    *docs = NULL;
    *ndocs = 0;
    /* JSON (what API clients send) without libyaml's event machinery; see kobj_json.c */
    if (kobj_json_looks(buf, len) && kobj_json_load(buf, len, &root) == 0) {
        *docs = xmalloc(sizeof(**docs));
        (*docs)[0] = root;
        *ndocs = 1;
        return 0;
    }
    if (!yaml_parser_initialize(&p))
        fatal("yaml_parser_initialize");
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    while (!done) {
        if (!yaml_parser_parse(&p, &ev)) {
            const char *ctx = p.context ? p.context : NULL;
            if (ctx)
                perr_at(c, (int)p.problem_mark.line + 1, (int)p.problem_mark.column + 1, NULL,
                        "%s %s", p.problem ? p.problem : "invalid YAML", ctx);
            else
                perr_at(c, (int)p.problem_mark.line + 1, (int)p.problem_mark.column + 1, NULL, "%s",
                        p.problem ? p.problem : "invalid YAML");
            goto out;
        }
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        struct ynode *n = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            root = NULL;
            sp = 0;
            break;
        case YAML_DOCUMENT_END_EVENT:
            *docs = xrealloc(*docs, (*ndocs + 1) * sizeof(**docs));
            (*docs)[(*ndocs)++] = root;
            root = NULL;
            break;
        case YAML_ALIAS_EVENT:
            perr_at(c, line, col, NULL, "YAML aliases are not supported");
            yaml_event_delete(&ev);
            goto out;
        case YAML_SCALAR_EVENT:
            n = xcalloc(1, sizeof(*n));
            n->type = YN_SCALAR;
            n->val = xmemdup(ev.data.scalar.value, ev.data.scalar.length + 1);
            n->len = ev.data.scalar.length;
            n->plain = ev.data.scalar.plain_implicit && !ev.data.scalar.tag;
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            n = xcalloc(1, sizeof(*n));
            n->type = ev.type == YAML_SEQUENCE_START_EVENT ? YN_SEQ : YN_MAP;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (sp > 0)
                sp--;
            break;
        default:
            break;
        }
        if (n) {
            n->line = line;
            n->col = col;
            if (sp > 0)
                kobj_ynode_add(stack[sp - 1], n);
            else
                root = n;
            if (n->type != YN_SCALAR) {
                if (sp >= KOBJ_MAX_DEPTH) {
                    perr_at(c, line, col, NULL, "nesting deeper than %d levels", KOBJ_MAX_DEPTH);
                    yaml_event_delete(&ev);
                    if (!*ndocs || (*docs)[*ndocs - 1] != root)
                        kobj_ynode_free(root);
                    root = NULL;
                    goto out;
                }
                stack[sp++] = n;
            }
        }
        yaml_event_delete(&ev);
    }
    rc = 0;
out:
    if (rc < 0) {
        kobj_ynode_free(root);
        for (size_t i = 0; i < *ndocs; i++)
            kobj_ynode_free((*docs)[i]);
        free(*docs);
        *docs = NULL;
        *ndocs = 0;
    }
    yaml_parser_delete(&p);
    return rc;
}

static int is_null(const struct ynode *n)
{
    return n->type == YN_SCALAR && n->plain && kobj_resolve(n->val) == R_NULL;
}

/* What a node is, for "expected X, got Y". malloc'd. */
static char *describe_node(const struct ynode *n)
{
    if (n->type == YN_MAP)
        return xstrdup("mapping");
    if (n->type == YN_SEQ)
        return xstrdup("sequence");
    if (n->plain) {
        switch (kobj_resolve(n->val)) {
        case R_NULL:
            return xstrdup("null");
        case R_BOOL:
        case R_INT:
        case R_FLOAT:
            return xstrdup(n->val);
        default:
            break;
        }
    }
    return xasprintf("\"%s\"", n->val);
}

static int expected(struct pctx *c, const struct ynode *n, const struct kpath *path,
                    const char *what)
{
    char *got = describe_node(n);
    perr(c, n, path, "expected %s, got %s", what, got);
    free(got);
    return -1;
}

/* ------------------------------------------------------ YAML -> pb */

static int map_to_msg(struct pctx *c, const ProtobufCMessageDescriptor *d, ProtobufCMessage *m,
                      const struct ynode *node, const struct kpath *path, int toplevel, int depth);
static int set_field(struct pctx *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                     const struct ynode *node, const struct kpath *path, int depth);

static int parse_int(struct pctx *c, const struct ynode *n, const struct kpath *path, int64_t lo,
                     int64_t hi, int64_t *out)
{
    if (n->type != YN_SCALAR || !n->plain || kobj_resolve(n->val) != R_INT)
        return expected(c, n, path, "integer");
    errno = 0;
    char *end;
    long long v = strtoll(n->val, &end, 0);
    if (!strncmp(n->val, "0o", 2))
        v = strtoll(n->val + 2, &end, 8);
    if (errno || *end || v < lo || v > hi)
        return perr(c, n, path, "integer %s out of range", n->val);
    *out = v;
    return 0;
}

/*
 * Standard base64 with padding (RFC 4648 section 4, what Go's
 * encoding/base64.StdEncoding reads, and so Kubernetes for []byte fields)
 * into *bd (malloc'd). Line breaks are not allowed, as in Go. Returns 0,
 * or -1 on any other character, a bad length or bad padding.
 */
static int b64_decode(const char *s, size_t len, ProtobufCBinaryData *bd)
{
    if (len % 4)
        return -1;
    uint8_t *out = xmalloc(len / 4 * 3 + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t acc = 0;
        int pad = 0;
        for (size_t j = 0; j < 4; j++) {
            char ch = s[i + j];
            int v = ch >= 'A' && ch <= 'Z'   ? ch - 'A'
                    : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26
                    : ch >= '0' && ch <= '9' ? ch - '0' + 52
                    : ch == '+'              ? 62
                    : ch == '/'              ? 63
                                             : -1;
            if (ch == '=' && i + 4 == len && j >= 2 && (j == 3 || s[i + 3] == '=')) {
                pad++;
                v = 0;
            } else if (v < 0 || pad) {
                free(out);
                return -1;
            }
            acc = acc << 6 | (uint32_t)v;
        }
        out[n++] = (uint8_t)(acc >> 16);
        if (pad < 2)
            out[n++] = (uint8_t)(acc >> 8);
        if (pad < 1)
            out[n++] = (uint8_t)acc;
    }
    bd->data = out;
    bd->len = n;
    return 0;
}

/* One scalar value of a non-message field into slot. */
static int scalar_value(struct pctx *c, const ProtobufCFieldDescriptor *f, const struct ynode *n,
                        const struct kpath *path, void *slot)
{
    int64_t v;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (parse_int(c, n, path, INT32_MIN, INT32_MAX, &v) < 0)
            return -1;
        *(int32_t *)slot = (int32_t)v;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (parse_int(c, n, path, 0, UINT32_MAX, &v) < 0)
            return -1;
        *(uint32_t *)slot = (uint32_t)v;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (parse_int(c, n, path, INT64_MIN, INT64_MAX, &v) < 0)
            return -1;
        *(int64_t *)slot = v;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (parse_int(c, n, path, 0, INT64_MAX, &v) < 0)
            return -1;
        *(uint64_t *)slot = (uint64_t)v;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        if (n->type != YN_SCALAR || !n->plain ||
            (kobj_resolve(n->val) != R_INT && kobj_resolve(n->val) != R_FLOAT))
            return expected(c, n, path, "number");
        double dv = strtod(n->val, NULL);
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)slot = (float)dv;
        else
            *(double *)slot = dv;
        return 0;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (n->type != YN_SCALAR || !n->plain || kobj_resolve(n->val) != R_BOOL)
            return expected(c, n, path, "boolean");
        *(protobuf_c_boolean *)slot = (n->val[0] == 't' || n->val[0] == 'T');
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        const ProtobufCEnumValue *ev = NULL;
        if (n->type == YN_SCALAR)
            ev = protobuf_c_enum_descriptor_get_value_by_name(ed, n->val);
        if (!ev)
            return expected(c, n, path, "one of the enum's names");
        *(int *)slot = ev->value;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING:
        if (n->type != YN_SCALAR || (n->plain && kobj_resolve(n->val) != R_STR))
            return expected(c, n, path, "string");
        if (strlen(n->val) != n->len)
            return perr(c, n, path, "NUL byte in string");
        *(char **)slot = xstrdup(n->val);
        return 0;
    case PROTOBUF_C_TYPE_BYTES:
        if (n->type != YN_SCALAR || (n->plain && kobj_resolve(n->val) != R_STR))
            return expected(c, n, path, "base64 string");
        if (b64_decode(n->val, n->len, slot) < 0)
            return perr(c, n, path, "illegal base64 data");
        return 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        break;
    }
    return perr(c, n, path, "unsupported field type");
}

static int check_map(struct pctx *c, const struct ynode *map, const struct kpath *path,
                     char **skip);

/*
 * A FieldsV1 mapping as compact JSON onto b: mappings and sequences as they
 * are, null and booleans, decimal integers as numbers, any other scalar as
 * a string, so the bytes are always valid JSON.
 */
static int fields_v1_json(struct pctx *c, struct buf *b, const struct ynode *n,
                          const struct kpath *path)
{
    if (n->type == YN_SCALAR) {
        enum res r = n->plain ? kobj_resolve(n->val) : R_STR;
        if (r == R_NULL)
            buf_puts(b, "null");
        else if (r == R_BOOL)
            buf_puts(b, n->val[0] == 't' || n->val[0] == 'T' ? "true" : "false");
        else if (r == R_INT && kobj_all_in(n->val + (n->val[0] == '-'), "0123456789"))
            buf_puts(b, n->val);
        else
            kobj_json_str(b, n->val, n->len);
        return 0;
    }
    int map = n->type == YN_MAP;
    char *skip = NULL; /* keys repeated later, when duplicates are not errors */
    if (map && check_map(c, n, path, &skip) < 0)
        return -1;
    buf_puts(b, map ? "{" : "[");
    int first = 1, rc = 0;
    for (size_t i = 0; i < n->n && rc == 0; i++) {
        if (map && skip && skip[i / 2])
            continue;
        if (!first)
            buf_puts(b, map && i % 2 ? ":" : ",");
        first = 0;
        rc = fields_v1_json(c, b, n->kids[i], path);
    }
    free(skip);
    if (rc < 0)
        return -1;
    buf_puts(b, map ? "}" : "]");
    return 0;
}

/* A message value: returns 0 and *out (NULL for null), or -1. */
static int node_to_msg(struct pctx *c, const ProtobufCMessageDescriptor *d, const struct ynode *n,
                       const struct kpath *path, ProtobufCMessage **out, int depth)
{
    *out = NULL;
    if (is_null(n))
        return 0;
    if (d == &coracle__v1__quantity__descriptor) {
        if (n->type != YN_SCALAR || (n->plain && kobj_resolve(n->val) == R_BOOL))
            return expected(c, n, path, "quantity");
        int64_t milli;
        char *e = NULL;
        if (qty_parse(n->val, &milli, &e) < 0) {
            perr(c, n, path, "%s",
                 e ? e
                   : "quantities must match the regular expression "
                     "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
            free(e);
            return -1;
        }
        Coracle__V1__Quantity *q = (Coracle__V1__Quantity *)kobj_msg_new(d);
        q->string = xstrdup(n->val);
        *out = &q->base;
        return 0;
    }
    if (d == &coracle__v1__int_or_string__descriptor) {
        if (n->type != YN_SCALAR ||
            (n->plain && kobj_resolve(n->val) != R_INT && kobj_resolve(n->val) != R_STR))
            return expected(c, n, path, "integer or string");
        Coracle__V1__IntOrString *is = (Coracle__V1__IntOrString *)kobj_msg_new(d);
        is->has_type = 1;
        if (n->plain && kobj_resolve(n->val) == R_INT) {
            int64_t v;
            if (parse_int(c, n, path, INT32_MIN, INT32_MAX, &v) < 0) {
                protobuf_c_message_free_unpacked(&is->base, NULL);
                return -1;
            }
            is->type = 0;
            is->has_intval = 1;
            is->intval = (int32_t)v;
        } else {
            is->type = 1;
            is->strval = xstrdup(n->val);
        }
        *out = &is->base;
        return 0;
    }
    if (d == &coracle__v1__time__descriptor || d == &coracle__v1__micro_time__descriptor) {
        int64_t sec;
        int32_t ns;
        if (n->type != YN_SCALAR || kobj_parse_rfc3339(n->val, &sec, &ns) < 0)
            return expected(c, n, path, "RFC 3339 time");
        *out = kobj_time_new(d, sec, ns);
        return 0;
    }
    if (n->type != YN_MAP)
        return expected(c, n, path, "mapping");
    if (d == &coracle__v1__fields_v1__descriptor) {
        struct buf b = {0};
        if (fields_v1_json(c, &b, n, path) < 0) {
            buf_free(&b);
            return -1;
        }
        Coracle__V1__FieldsV1 *fv = (Coracle__V1__FieldsV1 *)kobj_msg_new(d);
        fv->has_raw = 1;
        fv->raw.len = b.len;
        fv->raw.data = (uint8_t *)buf_take(&b);
        *out = &fv->base;
        return 0;
    }
    ProtobufCMessage *m = kobj_msg_new(d);
    if (map_to_msg(c, d, m, n, path, 0, depth + 1) < 0) {
        protobuf_c_message_free_unpacked(m, NULL);
        return -1;
    }
    *out = m;
    return 0;
}

struct kidx {
    const char *key;
    size_t idx;
};

static int cmp_kidx(const void *a, const void *b)
{
    const struct kidx *x = a, *y = b;
    int r = strcmp(x->key, y->key);
    return r ? r : (x->idx > y->idx) - (x->idx < y->idx);
}

/* Mappings with at most this many keys are checked pair by pair when they have no duplicate. */
#define FEW_KEYS 8

/* Whether the few (<= FEW_KEYS) keys of map are all different: no allocation, no sort. */
static bool few_keys_unique(const struct ynode *map, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(map->kids[2 * i]->val, map->kids[2 * j]->val))
                return false;
    return true;
}

/*
 * Keys must be scalars and unique. Sorting makes this O(n log n), so a
 * mapping with very many keys cannot stall the parser; the duplicate
 * reported is the first one in the document. When duplicates are not
 * errors (strict() is false) the last of each wins: *skip (malloc'd, one
 * flag per key; NULL if there are none) marks the others.
 */
static int check_map(struct pctx *c, const struct ynode *map, const struct kpath *path, char **skip)
{
    size_t n = map->n / 2, best = SIZE_MAX;
    *skip = NULL;
    for (size_t i = 0; i < n; i++)
        if (map->kids[2 * i]->type != YN_SCALAR)
            return perr(c, map->kids[2 * i], path, "mapping keys must be strings");
    if (n < 2 || (n <= FEW_KEYS && few_keys_unique(map, n)))
        return 0;
    struct kidx *v = xmalloc(n * sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i].key = map->kids[2 * i]->val;
        v[i].idx = i;
    }
    qsort(v, n, sizeof(*v), cmp_kidx);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i].key, v[i - 1].key))
            continue;
        if (v[i].idx < best)
            best = v[i].idx;
        if (!strict(c)) {
            if (!*skip)
                *skip = xcalloc(n, 1);
            (*skip)[v[i - 1].idx] = 1;
            struct kpath kp = {path, v[i].key, 0};
            warn_field(c, "duplicate field", &kp);
        }
    }
    free(v);
    if (best != SIZE_MAX && strict(c))
        return perr(c, map->kids[2 * best], path, "duplicate key \"%s\"", map->kids[2 * best]->val);
    return 0;
}

static int set_map_field(struct pctx *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                         const struct ynode *n, const struct kpath *path, int depth)
{
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    if (n->type != YN_MAP)
        return expected(c, n, path, "mapping");
    char *skip;
    if (check_map(c, n, path, &skip) < 0)
        return -1;
    size_t cnt = 0;
    ProtobufCMessage **arr = xcalloc(n->n / 2 ? n->n / 2 : 1, sizeof(*arr));
    for (size_t i = 0; i < n->n / 2; i++) {
        const struct ynode *k = n->kids[2 * i], *v = n->kids[2 * i + 1];
        if (skip && skip[i])
            continue;
        struct kpath kp = {path, k->val, 0};
        ProtobufCMessage *e = kobj_msg_new(ed);
        arr[cnt++] = e;
        *(char **)((char *)e + ed->fields[0].offset) = xstrdup(k->val);
        int rc;
        if (is_null(v))
            rc = expected(c, v, &kp,
                          ed->fields[1].type == PROTOBUF_C_TYPE_STRING ? "string" : "value");
        else
            rc = set_field(c, e, &ed->fields[1], v, &kp, depth);
        if (rc < 0)
            goto fail;
    }
    free(skip);
    *(size_t *)((char *)m + f->quantifier_offset) = cnt;
    *(ProtobufCMessage ***)((char *)m + f->offset) = arr;
    return 0;
fail:
    free(skip);
    for (size_t i = 0; i < cnt; i++)
        if (arr[i])
            protobuf_c_message_free_unpacked(arr[i], NULL);
    free(arr);
    return -1;
}

static int set_field(struct pctx *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                     const struct ynode *n, const struct kpath *path, int depth)
{
    char *base = (char *)m;
    if (is_null(n))
        return 0;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && kobj_desc_is_map_entry(f->descriptor))
            return set_map_field(c, m, f, n, path, depth);
        if (n->type != YN_SEQ)
            return expected(c, n, path, "sequence");
        size_t es = kobj_elem_size(f), cnt = n->n;
        char *arr = xcalloc(cnt ? cnt : 1, es);
        for (size_t i = 0; i < cnt; i++) {
            struct kpath ip = {path, NULL, i};
            int rc;
            if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                ProtobufCMessage *sub;
                rc = node_to_msg(c, f->descriptor, n->kids[i], &ip, &sub, depth);
                if (rc == 0 && !sub)
                    rc = expected(c, n->kids[i], &ip, "mapping");
                *(ProtobufCMessage **)(arr + i * es) = sub;
            } else
                rc = scalar_value(c, f, n->kids[i], &ip, arr + i * es);
            if (rc < 0) {
                for (size_t j = 0; j < i; j++)
                    kobj_elem_free(f, arr + j * es);
                free(arr);
                return -1;
            }
        }
        *(size_t *)(base + f->quantifier_offset) = cnt;
        *(char **)(base + f->offset) = arr;
        return 0;
    }
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        ProtobufCMessage *sub;
        if (node_to_msg(c, f->descriptor, n, path, &sub, depth) < 0)
            return -1;
        *(ProtobufCMessage **)(base + f->offset) = sub;
        return 0;
    }
    if (scalar_value(c, f, n, path, base + f->offset) < 0)
        return -1;
    if (!kobj_is_ptr_type(f->type) && f->quantifier_offset)
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    return 0;
}

static int map_to_msg(struct pctx *c, const ProtobufCMessageDescriptor *d, ProtobufCMessage *m,
                      const struct ynode *node, const struct kpath *path, int toplevel, int depth)
{
    if (depth > KOBJ_MAX_DEPTH)
        return perr(c, node, path, "nesting deeper than %d levels", KOBJ_MAX_DEPTH);
    char *skip;
    if (check_map(c, node, path, &skip) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < node->n / 2 && rc == 0; i++) {
        const struct ynode *k = node->kids[2 * i], *v = node->kids[2 * i + 1];
        if (skip && skip[i])
            continue;
        if (toplevel && (!strcmp(k->val, "apiVersion") || !strcmp(k->val, "kind"))) {
            if (c->o && v->type == YN_SCALAR)
                keep_type_meta(c->o, k->val, v->val);
            continue;
        }
        const ProtobufCFieldDescriptor *owner, *f = kobj_lookup(d, k->val, &owner);
        struct kpath fp = {path, k->val, 0};
        if (!f && !strict(c)) {
            warn_field(c, "unknown field", &fp);
            continue;
        }
        if (!f) {
            rc = perr(c, k, &fp, "unknown field \"%s\"", k->val);
            break;
        }
        ProtobufCMessage *target = m;
        if (owner) {
            ProtobufCMessage **sp = (ProtobufCMessage **)((char *)m + owner->offset);
            if (!*sp)
                *sp = kobj_msg_new(owner->descriptor);
            target = *sp;
        }
        rc = set_field(c, target, f, v, &fp, depth);
    }
    free(skip);
    return rc;
}

static const struct ynode *map_get(const struct ynode *map, const char *key)
{
    for (size_t i = 0; i < map->n / 2; i++)
        if (map->kids[2 * i]->type == YN_SCALAR && !strcmp(map->kids[2 * i]->val, key))
            return map->kids[2 * i + 1];
    return NULL;
}

static void objs_push(struct kobjs *o, const struct kind *k, ProtobufCMessage *m, char *where)
{
    o->v = xrealloc(o->v, (o->n + 1) * sizeof(*o->v));
    o->v[o->n].kind = k;
    o->v[o->n].msg = m;
    o->v[o->n].where = where;
    o->n++;
}

static int doc_to_objs(struct pctx *c, const struct ynode *doc, const struct kpath *path,
                       struct kobjs *out, int depth)
{
    if (doc->type != YN_MAP)
        return expected(c, doc, path, "mapping (an object with apiVersion and kind)");
    const struct ynode *av = map_get(doc, "apiVersion"), *kn = map_get(doc, "kind");
    if (!kn || kn->type != YN_SCALAR || !*kn->val)
        return perr(c, doc, path, "Object 'Kind' is missing");
    if (!av || av->type != YN_SCALAR || !*av->val)
        return perr(c, doc, path, "Object 'apiVersion' is missing");
    if (!strcmp(kn->val, "List") && !strcmp(av->val, "v1")) {
        char *skip; /* kobj_parse is strict: never set */
        if (check_map(c, doc, path, &skip) < 0)
            return -1;
        for (size_t i = 0; i < doc->n / 2; i++) {
            const struct ynode *k = doc->kids[2 * i];
            if (strcmp(k->val, "apiVersion") && strcmp(k->val, "kind") && strcmp(k->val, "items") &&
                strcmp(k->val, "metadata")) {
                struct kpath fp = {path, k->val, 0};
                return perr(c, k, &fp, "unknown field \"%s\"", k->val);
            }
        }
        const struct ynode *items = map_get(doc, "items");
        if (!items || is_null(items))
            return 0;
        struct kpath ip = {path, "items", 0};
        if (items->type != YN_SEQ)
            return expected(c, items, &ip, "sequence");
        if (depth >= 4)
            return perr(c, items, path, "Lists nested too deep");
        for (size_t i = 0; i < items->n; i++) {
            struct kpath ep = {&ip, NULL, i};
            if (doc_to_objs(c, items->kids[i], &ep, out, depth + 1) < 0)
                return -1;
        }
        return 0;
    }
    const struct kind *k = NULL;
    for (size_t i = 0; kinds_all[i]; i++)
        if (!strcmp(kinds_all[i]->kind, kn->val))
            k = kinds_all[i];
    if (!k || strcmp(k->api_version, av->val))
        return perr(c, kn, path, "no matches for kind \"%s\" in version \"%s\"", kn->val, av->val);
    ProtobufCMessage *m = kobj_msg_new(k->desc);
    if (map_to_msg(c, k->desc, m, doc, path, 1, 1) < 0) {
        protobuf_c_message_free_unpacked(m, NULL);
        return -1;
    }
    int line, col;
    node_pos(c, doc, &line, &col);
    objs_push(out, k, m, xasprintf("%s:%d", c->name, line));
    return 0;
}

void kobjs_free(struct kobjs *objs)
{
    for (size_t i = 0; i < objs->n; i++) {
        protobuf_c_message_free_unpacked(objs->v[i].msg, NULL);
        free(objs->v[i].where);
    }
    free(objs->v);
    objs->v = NULL;
    objs->n = 0;
}

int kobj_parse(const char *name, const char *buf, size_t len, struct kobjs *out, char **err)
{
    struct pctx c = {name, NULL, NULL, buf};
    struct ynode **docs;
    size_t ndocs;
    struct kobjs tmp = {NULL, 0};
    int rc = -1;

    *err = NULL;
    if (load_docs(&c, buf, len, &docs, &ndocs) < 0)
        goto out;
    rc = 0;
    for (size_t i = 0; i < ndocs && rc == 0; i++)
        if (docs[i] && !is_null(docs[i]))
            rc = doc_to_objs(&c, docs[i], NULL, &tmp, 0);
    for (size_t i = 0; i < ndocs; i++)
        kobj_ynode_free(docs[i]);
    free(docs);
    if (rc < 0) {
        kobjs_free(&tmp);
        goto out;
    }
    out->v = xrealloc(out->v, (out->n + tmp.n + 1) * sizeof(*out->v));
    if (tmp.n)
        memcpy(out->v + out->n, tmp.v, tmp.n * sizeof(*tmp.v));
    out->n += tmp.n;
    free(tmp.v);
out:
    if (rc < 0)
        *err = c.err;
    else
        free(c.err);
    return rc;
}

ProtobufCMessage *kobj_parse_msg(const char *name, const char *buf, size_t len,
                                 const ProtobufCMessageDescriptor *desc, char **err)
{
    return kobj_parse_msg_opts(name, buf, len, desc, NULL, err);
}

ProtobufCMessage *kobj_parse_msg_opts(const char *name, const char *buf, size_t len,
                                      const ProtobufCMessageDescriptor *desc, struct kobj_opts *o,
                                      char **err)
{
    /* JSON without a problem (nearly every API request) straight into the message */
    if (kobj_json_looks(buf, len)) {
        ProtobufCMessage *m = kobj_json_direct(buf, len, desc, o);
        if (m) {
            *err = NULL;
            return m;
        }
    }
    return kobj_parse_msg_tree(name, buf, len, desc, o, err);
}

ProtobufCMessage *kobj_parse_msg_tree(const char *name, const char *buf, size_t len,
                                      const ProtobufCMessageDescriptor *desc, struct kobj_opts *o,
                                      char **err)
{
    struct pctx c = {name, NULL, o, buf};
    struct ynode **docs;
    size_t ndocs;
    ProtobufCMessage *m = NULL;

    *err = NULL;
    if (load_docs(&c, buf, len, &docs, &ndocs) < 0) {
        *err = c.err;
        return NULL;
    }
    if (ndocs != 1 || !docs[0]) {
        perr_at(&c, 1, 1, NULL, "expected one document");
    } else if (docs[0]->type != YN_MAP) {
        expected(&c, docs[0], NULL, "mapping");
    } else {
        m = kobj_msg_new(desc);
        if (map_to_msg(&c, desc, m, docs[0], NULL, 1, 1) < 0) {
            protobuf_c_message_free_unpacked(m, NULL);
            m = NULL;
        }
    }
    for (size_t i = 0; i < ndocs; i++)
        kobj_ynode_free(docs[i]);
    free(docs);
    *err = c.err;
    return m;
}

void kobj_opts_free(struct kobj_opts *o)
{
    for (size_t i = 0; i < o->n_warnings; i++)
        free(o->warnings[i]);
    free(o->warnings);
    free(o->api_version);
    free(o->kind);
    o->warnings = NULL;
    o->n_warnings = 0;
    o->api_version = o->kind = NULL;
}
