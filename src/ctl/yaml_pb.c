/*
 * yaml_pb: YAML/JSON <-> protobuf-c messages by walking descriptors. See
 * yaml_pb.h. Parsing reads libyaml's events into a small tree of nodes (with
 * their marks), refusing aliases and deep nesting, then maps the tree onto
 * the message type strictly. Emitting walks the message in field order and
 * drives libyaml's emitter (YAML) or writes JSON itself.
 */
#include "config.h"
#include "yaml_pb.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yaml.h>

#include "ctl.h"
#include "json.h"
#include "qty.h"
#include "pb.h"
#include "util.h"

/* ------------------------------------------------------------ the tree */

enum ynode_type { YN_SCALAR, YN_SEQ, YN_MAP };

struct ynode {
    enum ynode_type type;
    int line, col; /* 1-based */
    char *val;     /* scalar text */
    size_t len;
    int plain;           /* plain and untagged: YAML's implicit typing applies */
    struct ynode **kids; /* seq: items; map: key, value, key, value... */
    size_t n, cap;
};

static void ynode_free(struct ynode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++)
        ynode_free(n->kids[i]);
    free(n->kids);
    free(n->val);
    free(n);
}

static void ynode_add(struct ynode *p, struct ynode *k)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 8;
        p->kids = xrealloc(p->kids, p->cap * sizeof(*p->kids));
    }
    p->kids[p->n++] = k;
}

struct pctx {
    const char *name;
    char *err;
};

static int perr_at(struct pctx *c, int line, int col, const char *path, const char *fmt, ...)
    PRINTF(5, 6);
static int perr_at(struct pctx *c, int line, int col, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    free(c->err);
    if (path && *path)
        c->err = xasprintf("%s:%d:%d: %s: %s", c->name, line, col, path, msg);
    else
        c->err = xasprintf("%s:%d:%d: %s", c->name, line, col, msg);
    free(msg);
    return -1;
}
#define perr(c, node, path, ...) perr_at((c), (node)->line, (node)->col, (path), __VA_ARGS__)

/* Reads the whole stream into one tree per document (NULL for empty ones). */
static int load_docs(struct pctx *c, const char *buf, size_t len, struct ynode ***docs,
                     size_t *ndocs)
{
    yaml_parser_t p;
    yaml_event_t ev;
    struct ynode *stack[CTL_YAML_MAX_DEPTH + 1];
    int sp = 0, rc = -1, done = 0;
    struct ynode *root = NULL;

    *docs = NULL;
    *ndocs = 0;
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
                ynode_add(stack[sp - 1], n);
            else
                root = n;
            if (n->type != YN_SCALAR) {
                if (sp >= CTL_YAML_MAX_DEPTH) {
                    perr_at(c, line, col, NULL, "nesting deeper than %d levels",
                            CTL_YAML_MAX_DEPTH);
                    yaml_event_delete(&ev);
                    if (!*ndocs || (*docs)[*ndocs - 1] != root)
                        ynode_free(root);
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
        ynode_free(root);
        for (size_t i = 0; i < *ndocs; i++)
            ynode_free((*docs)[i]);
        free(*docs);
        *docs = NULL;
        *ndocs = 0;
    }
    yaml_parser_delete(&p);
    return rc;
}

/* ----------------------------------------------------- implicit typing */

enum res { R_NULL, R_BOOL, R_INT, R_FLOAT, R_STR };

static int all_in(const char *s, const char *set)
{
    if (!*s)
        return 0;
    return strspn(s, set) == strlen(s);
}

/* YAML 1.2 core schema resolution of a plain scalar. */
static enum res resolve(const char *s)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    static const char *const bools[] = {"true", "True", "TRUE", "false", "False", "FALSE"};
    for (size_t i = 0; i < ARRAY_SIZE(nulls); i++)
        if (!strcmp(s, nulls[i]))
            return R_NULL;
    for (size_t i = 0; i < ARRAY_SIZE(bools); i++)
        if (!strcmp(s, bools[i]))
            return R_BOOL;
    const char *d = s + (*s == '-' || *s == '+');
    if (all_in(d, "0123456789"))
        return R_INT;
    if ((!strncmp(s, "0x", 2) && all_in(s + 2, "0123456789abcdefABCDEF")) ||
        (!strncmp(s, "0o", 2) && all_in(s + 2, "01234567")))
        return R_INT;
    if (!strcmp(d, ".inf") || !strcmp(d, ".Inf") || !strcmp(d, ".INF") || !strcmp(s, ".nan") ||
        !strcmp(s, ".NaN") || !strcmp(s, ".NAN"))
        return R_FLOAT;
    /* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
    const char *p = d;
    size_t ip = strspn(p, "0123456789");
    p += ip;
    size_t fp = 0;
    if (*p == '.') {
        p++;
        fp = strspn(p, "0123456789");
        p += fp;
    } else if (!ip)
        return R_STR;
    if (!ip && !fp)
        return R_STR;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        size_t ep = strspn(p, "0123456789");
        if (!ep)
            return R_STR;
        p += ep;
    }
    return *p ? R_STR : R_FLOAT;
}

static int is_null(const struct ynode *n)
{
    return n->type == YN_SCALAR && n->plain && resolve(n->val) == R_NULL;
}

/* What a node is, for "expected X, got Y". malloc'd. */
static char *describe_node(const struct ynode *n)
{
    if (n->type == YN_MAP)
        return xstrdup("mapping");
    if (n->type == YN_SEQ)
        return xstrdup("sequence");
    if (n->plain) {
        switch (resolve(n->val)) {
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

static int expected(struct pctx *c, const struct ynode *n, const char *path, const char *what)
{
    char *got = describe_node(n);
    perr(c, n, path, "expected %s, got %s", what, got);
    free(got);
    return -1;
}

/* ----------------------------------------------- descriptor helpers */

/* Fields Kubernetes inlines into their parent in YAML/JSON. */
static const struct {
    const ProtobufCMessageDescriptor *desc;
    const char *field;
} inlined[] = {
    {&coracle__v1__probe__descriptor, "handler"},
    {&coracle__v1__volume__descriptor, "volumeSource"},
};

static int is_inlined(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
    for (size_t i = 0; i < ARRAY_SIZE(inlined); i++)
        if (inlined[i].desc == d && !strcmp(inlined[i].field, f->name))
            return 1;
    return 0;
}

static int is_ptr_type(ProtobufCType t)
{
    return t == PROTOBUF_C_TYPE_STRING || t == PROTOBUF_C_TYPE_MESSAGE;
}

static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 8;
}

int ctl_desc_is_map_entry(const ProtobufCMessageDescriptor *d)
{
    size_t nl = strlen(d->name);
    return d->n_fields == 2 && nl > 5 && !strcmp(d->name + nl - 5, "Entry") &&
           d->fields[0].id == 1 && !strcmp(d->fields[0].name, "key") && d->fields[1].id == 2 &&
           !strcmp(d->fields[1].name, "value");
}

static ProtobufCMessage *msg_new(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = xcalloc(1, d->sizeof_message);
    d->message_init(m);
    return m;
}

static void elem_free(const ProtobufCFieldDescriptor *f, void *slot)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        char *s = *(char **)slot;
        if (s && s != (const char *)f->default_value)
            free(s);
        *(char **)slot = NULL;
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        if (*(ProtobufCMessage **)slot)
            protobuf_c_message_free_unpacked(*(ProtobufCMessage **)slot, NULL);
        *(ProtobufCMessage **)slot = NULL;
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = slot;
        free(b->data);
        b->data = NULL;
        b->len = 0;
        break;
    }
    default:
        memset(slot, 0, elem_size(f));
    }
}

int ctl_field_is_set(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)(base + f->quantifier_offset) > 0;
    if (is_ptr_type(f->type))
        return *(void *const *)(base + f->offset) != NULL;
    if (f->quantifier_offset)
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset) != 0;
    return 1;
}

void ctl_field_clear(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    char *base = (char *)m;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t *n = (size_t *)(base + f->quantifier_offset);
        char **arr = (char **)(base + f->offset);
        size_t es = elem_size(f);
        for (size_t i = 0; i < *n; i++)
            elem_free(f, *arr + i * es);
        free(*arr);
        *arr = NULL;
        *n = 0;
        return;
    }
    elem_free(f, base + f->offset);
    if (!is_ptr_type(f->type) && f->quantifier_offset)
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 0;
}

void ctl_field_move(ProtobufCMessage *dst, ProtobufCMessage *src, const ProtobufCFieldDescriptor *f)
{
    char *d = (char *)dst, *s = (char *)src;
    ctl_field_clear(dst, f);
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        memcpy(d + f->offset, s + f->offset, sizeof(void *));
        memcpy(d + f->quantifier_offset, s + f->quantifier_offset, sizeof(size_t));
        memset(s + f->offset, 0, sizeof(void *));
        memset(s + f->quantifier_offset, 0, sizeof(size_t));
        return;
    }
    memcpy(d + f->offset, s + f->offset, elem_size(f));
    memset(s + f->offset, 0, elem_size(f));
    if (!is_ptr_type(f->type) && f->quantifier_offset) {
        memcpy(d + f->quantifier_offset, s + f->quantifier_offset, sizeof(protobuf_c_boolean));
        memset(s + f->quantifier_offset, 0, sizeof(protobuf_c_boolean));
    }
}

ProtobufCMessage *ctl_msg_dup(const ProtobufCMessage *m)
{
    return pb_clone(m);
}

/* ------------------------------------------------------------ time */

void ctl_fmt_rfc3339(char *buf, size_t n, int64_t sec, int32_t nanos, int micro)
{
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    char s[40];
    strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
    if (micro)
        snprintf(buf, n, "%s.%06dZ", s, nanos / 1000);
    else
        snprintf(buf, n, "%sZ", s);
}

int ctl_parse_rfc3339(const char *s, int64_t *sec, int32_t *nanos)
{
    int y, mo, d, h, mi, se, used = 0;
    if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &used) != 6 ||
        used != 19)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    const char *p = s + used;
    int32_t ns = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 9) {
                ns = ns * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        if (!digits)
            return -1;
        for (; digits < 9; digits++)
            ns *= 10;
    }
    long off = 0;
    if (*p == 'Z' || *p == 'z')
        p++;
    else if (*p == '+' || *p == '-') {
        int oh, om, u = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &u) != 2 || u != 5)
            return -1;
        off = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
        p += 6;
    } else
        return -1;
    if (*p)
        return -1;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = se};
    *sec = (int64_t)timegm(&tm) - off;
    *nanos = ns;
    return 0;
}

/* ------------------------------------------------------ YAML -> pb */

static char *join(const char *path, const char *key)
{
    return xasprintf("%s%s%s", path, *path ? "." : "", key);
}

static int map_to_msg(struct pctx *c, const ProtobufCMessageDescriptor *d, ProtobufCMessage *m,
                      const struct ynode *node, const char *path, int toplevel, int depth);
static int set_field(struct pctx *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                     const struct ynode *node, const char *path, int depth);

static int parse_int(struct pctx *c, const struct ynode *n, const char *path, int64_t lo,
                     int64_t hi, int64_t *out)
{
    if (n->type != YN_SCALAR || !n->plain || resolve(n->val) != R_INT)
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

/* One scalar value of a non-message field into slot. */
static int scalar_value(struct pctx *c, const ProtobufCFieldDescriptor *f, const struct ynode *n,
                        const char *path, void *slot)
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
            (resolve(n->val) != R_INT && resolve(n->val) != R_FLOAT))
            return expected(c, n, path, "number");
        double dv = strtod(n->val, NULL);
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)slot = (float)dv;
        else
            *(double *)slot = dv;
        return 0;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (n->type != YN_SCALAR || !n->plain || resolve(n->val) != R_BOOL)
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
        if (n->type != YN_SCALAR || (n->plain && resolve(n->val) != R_STR))
            return expected(c, n, path, "string");
        if (strlen(n->val) != n->len)
            return perr(c, n, path, "NUL byte in string");
        *(char **)slot = xstrdup(n->val);
        return 0;
    case PROTOBUF_C_TYPE_BYTES:
        return perr(c, n, path, "bytes fields are not supported in manifests");
    case PROTOBUF_C_TYPE_MESSAGE:
        break;
    }
    return perr(c, n, path, "unsupported field type");
}

/* A message value: returns 0 and *out (NULL for null), or -1. */
static int node_to_msg(struct pctx *c, const ProtobufCMessageDescriptor *d, const struct ynode *n,
                       const char *path, ProtobufCMessage **out, int depth)
{
    *out = NULL;
    if (is_null(n))
        return 0;
    if (d == &coracle__v1__quantity__descriptor) {
        if (n->type != YN_SCALAR || (n->plain && resolve(n->val) == R_BOOL))
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
        Coracle__V1__Quantity *q = (Coracle__V1__Quantity *)msg_new(d);
        q->string = xstrdup(n->val);
        *out = &q->base;
        return 0;
    }
    if (d == &coracle__v1__int_or_string__descriptor) {
        if (n->type != YN_SCALAR ||
            (n->plain && resolve(n->val) != R_INT && resolve(n->val) != R_STR))
            return expected(c, n, path, "integer or string");
        Coracle__V1__IntOrString *is = (Coracle__V1__IntOrString *)msg_new(d);
        is->has_type = 1;
        if (n->plain && resolve(n->val) == R_INT) {
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
        if (n->type != YN_SCALAR || ctl_parse_rfc3339(n->val, &sec, &ns) < 0)
            return expected(c, n, path, "RFC 3339 time");
        /* Time and MicroTime have the same layout: seconds = 1, nanos = 2. */
        Coracle__V1__Time *t = (Coracle__V1__Time *)msg_new(d);
        t->has_seconds = 1;
        t->seconds = sec;
        if (ns && d == &coracle__v1__micro_time__descriptor) {
            t->has_nanos = 1;
            t->nanos = ns - ns % 1000;
        }
        *out = &t->base;
        return 0;
    }
    if (n->type != YN_MAP)
        return expected(c, n, path, "mapping");
    ProtobufCMessage *m = msg_new(d);
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

/*
 * Keys must be scalars and unique. Sorting makes this O(n log n), so a
 * mapping with very many keys cannot stall the parser; the duplicate
 * reported is the first one in the document.
 */
static int check_map(struct pctx *c, const struct ynode *map, const char *path)
{
    size_t n = map->n / 2, best = SIZE_MAX;
    for (size_t i = 0; i < n; i++)
        if (map->kids[2 * i]->type != YN_SCALAR)
            return perr(c, map->kids[2 * i], path, "mapping keys must be strings");
    if (n < 2)
        return 0;
    struct kidx *v = xmalloc(n * sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i].key = map->kids[2 * i]->val;
        v[i].idx = i;
    }
    qsort(v, n, sizeof(*v), cmp_kidx);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(v[i].key, v[i - 1].key) && v[i].idx < best)
            best = v[i].idx;
    free(v);
    if (best != SIZE_MAX)
        return perr(c, map->kids[2 * best], path, "duplicate key \"%s\"", map->kids[2 * best]->val);
    return 0;
}

static int set_map_field(struct pctx *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                         const struct ynode *n, const char *path, int depth)
{
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    if (n->type != YN_MAP)
        return expected(c, n, path, "mapping");
    if (check_map(c, n, path) < 0)
        return -1;
    size_t cnt = n->n / 2;
    ProtobufCMessage **arr = xcalloc(cnt ? cnt : 1, sizeof(*arr));
    for (size_t i = 0; i < cnt; i++) {
        const struct ynode *k = n->kids[2 * i], *v = n->kids[2 * i + 1];
        char *kp = join(path, k->val);
        ProtobufCMessage *e = msg_new(ed);
        arr[i] = e;
        *(char **)((char *)e + ed->fields[0].offset) = xstrdup(k->val);
        int rc;
        if (is_null(v))
            rc = expected(c, v, kp,
                          ed->fields[1].type == PROTOBUF_C_TYPE_STRING ? "string" : "value");
        else
            rc = set_field(c, e, &ed->fields[1], v, kp, depth);
        free(kp);
        if (rc < 0)
            goto fail;
    }
    *(size_t *)((char *)m + f->quantifier_offset) = cnt;
    *(ProtobufCMessage ***)((char *)m + f->offset) = arr;
    return 0;
fail:
    for (size_t i = 0; i < cnt; i++)
        if (arr[i])
            protobuf_c_message_free_unpacked(arr[i], NULL);
    free(arr);
    return -1;
}

static int set_field(struct pctx *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                     const struct ynode *n, const char *path, int depth)
{
    char *base = (char *)m;
    if (is_null(n))
        return 0;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && ctl_desc_is_map_entry(f->descriptor))
            return set_map_field(c, m, f, n, path, depth);
        if (n->type != YN_SEQ)
            return expected(c, n, path, "sequence");
        size_t es = elem_size(f), cnt = n->n;
        char *arr = xcalloc(cnt ? cnt : 1, es);
        for (size_t i = 0; i < cnt; i++) {
            char *ip = xasprintf("%s[%zu]", path, i);
            int rc;
            if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                ProtobufCMessage *sub;
                rc = node_to_msg(c, f->descriptor, n->kids[i], ip, &sub, depth);
                if (rc == 0 && !sub)
                    rc = expected(c, n->kids[i], ip, "mapping");
                *(ProtobufCMessage **)(arr + i * es) = sub;
            } else
                rc = scalar_value(c, f, n->kids[i], ip, arr + i * es);
            free(ip);
            if (rc < 0) {
                for (size_t j = 0; j < i; j++)
                    elem_free(f, arr + j * es);
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
    if (!is_ptr_type(f->type) && f->quantifier_offset)
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    return 0;
}

/* Finds key in d, or in one of d's inlined fields (then *owner is that field). */
static const ProtobufCFieldDescriptor *lookup(const ProtobufCMessageDescriptor *d, const char *key,
                                              const ProtobufCFieldDescriptor **owner)
{
    *owner = NULL;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
    if (f && !is_inlined(d, f))
        return f;
    for (size_t i = 0; i < ARRAY_SIZE(inlined); i++) {
        if (inlined[i].desc != d)
            continue;
        const ProtobufCFieldDescriptor *of =
            protobuf_c_message_descriptor_get_field_by_name(d, inlined[i].field);
        const ProtobufCFieldDescriptor *sf =
            protobuf_c_message_descriptor_get_field_by_name(of->descriptor, key);
        if (sf) {
            *owner = of;
            return sf;
        }
    }
    return NULL;
}

static int map_to_msg(struct pctx *c, const ProtobufCMessageDescriptor *d, ProtobufCMessage *m,
                      const struct ynode *node, const char *path, int toplevel, int depth)
{
    if (depth > CTL_YAML_MAX_DEPTH)
        return perr(c, node, path, "nesting deeper than %d levels", CTL_YAML_MAX_DEPTH);
    if (check_map(c, node, path) < 0)
        return -1;
    for (size_t i = 0; i < node->n / 2; i++) {
        const struct ynode *k = node->kids[2 * i], *v = node->kids[2 * i + 1];
        if (toplevel && (!strcmp(k->val, "apiVersion") || !strcmp(k->val, "kind")))
            continue;
        const ProtobufCFieldDescriptor *owner, *f = lookup(d, k->val, &owner);
        char *fp = join(path, k->val);
        if (!f) {
            perr(c, k, fp, "unknown field \"%s\"", k->val);
            free(fp);
            return -1;
        }
        ProtobufCMessage *target = m;
        if (owner) {
            ProtobufCMessage **sp = (ProtobufCMessage **)((char *)m + owner->offset);
            if (!*sp)
                *sp = msg_new(owner->descriptor);
            target = *sp;
        }
        int rc = set_field(c, target, f, v, fp, depth);
        free(fp);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static const struct ynode *map_get(const struct ynode *map, const char *key)
{
    for (size_t i = 0; i < map->n / 2; i++)
        if (map->kids[2 * i]->type == YN_SCALAR && !strcmp(map->kids[2 * i]->val, key))
            return map->kids[2 * i + 1];
    return NULL;
}

static void objs_push(struct ctl_objs *o, const struct kind *k, ProtobufCMessage *m, char *where)
{
    o->v = xrealloc(o->v, (o->n + 1) * sizeof(*o->v));
    o->v[o->n].kind = k;
    o->v[o->n].msg = m;
    o->v[o->n].where = where;
    o->n++;
}

static int doc_to_objs(struct pctx *c, const struct ynode *doc, const char *path,
                       struct ctl_objs *out, int depth)
{
    if (doc->type != YN_MAP)
        return expected(c, doc, path, "mapping (an object with apiVersion and kind)");
    const struct ynode *av = map_get(doc, "apiVersion"), *kn = map_get(doc, "kind");
    if (!kn || kn->type != YN_SCALAR || !*kn->val)
        return perr(c, doc, path, "Object 'Kind' is missing");
    if (!av || av->type != YN_SCALAR || !*av->val)
        return perr(c, doc, path, "Object 'apiVersion' is missing");
    if (!strcmp(kn->val, "List") && !strcmp(av->val, "v1")) {
        if (check_map(c, doc, path) < 0)
            return -1;
        for (size_t i = 0; i < doc->n / 2; i++) {
            const struct ynode *k = doc->kids[2 * i];
            if (strcmp(k->val, "apiVersion") && strcmp(k->val, "kind") && strcmp(k->val, "items") &&
                strcmp(k->val, "metadata")) {
                char *fp = join(path, k->val);
                perr(c, k, fp, "unknown field \"%s\"", k->val);
                free(fp);
                return -1;
            }
        }
        const struct ynode *items = map_get(doc, "items");
        if (!items || is_null(items))
            return 0;
        char *ip = join(path, "items");
        if (items->type != YN_SEQ) {
            expected(c, items, ip, "sequence");
            free(ip);
            return -1;
        }
        if (depth >= 4) {
            free(ip);
            return perr(c, items, path, "Lists nested too deep");
        }
        for (size_t i = 0; i < items->n; i++) {
            char *ep = xasprintf("%s[%zu]", ip, i);
            int rc = doc_to_objs(c, items->kids[i], ep, out, depth + 1);
            free(ep);
            if (rc < 0) {
                free(ip);
                return -1;
            }
        }
        free(ip);
        return 0;
    }
    const struct kind *k = NULL;
    for (size_t i = 0; kinds_all[i]; i++)
        if (!strcmp(kinds_all[i]->kind, kn->val))
            k = kinds_all[i];
    if (!k || strcmp(k->api_version, av->val))
        return perr(c, kn, path, "no matches for kind \"%s\" in version \"%s\"", kn->val, av->val);
    ProtobufCMessage *m = msg_new(k->desc);
    if (map_to_msg(c, k->desc, m, doc, path, 1, 1) < 0) {
        protobuf_c_message_free_unpacked(m, NULL);
        return -1;
    }
    objs_push(out, k, m, xasprintf("%s:%d", c->name, doc->line));
    return 0;
}

void ctl_objs_free(struct ctl_objs *objs)
{
    for (size_t i = 0; i < objs->n; i++) {
        protobuf_c_message_free_unpacked(objs->v[i].msg, NULL);
        free(objs->v[i].where);
    }
    free(objs->v);
    objs->v = NULL;
    objs->n = 0;
}

int ctl_yaml_parse(const char *name, const char *buf, size_t len, struct ctl_objs *out, char **err)
{
    struct pctx c = {name, NULL};
    struct ynode **docs;
    size_t ndocs;
    struct ctl_objs tmp = {NULL, 0};
    int rc = -1;

    *err = NULL;
    if (load_docs(&c, buf, len, &docs, &ndocs) < 0)
        goto out;
    rc = 0;
    for (size_t i = 0; i < ndocs && rc == 0; i++)
        if (docs[i] && !is_null(docs[i]))
            rc = doc_to_objs(&c, docs[i], "", &tmp, 0);
    for (size_t i = 0; i < ndocs; i++)
        ynode_free(docs[i]);
    free(docs);
    if (rc < 0) {
        ctl_objs_free(&tmp);
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

ProtobufCMessage *ctl_yaml_parse_msg(const char *name, const char *buf, size_t len,
                                     const ProtobufCMessageDescriptor *desc, char **err)
{
    struct pctx c = {name, NULL};
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
        expected(&c, docs[0], "", "mapping");
    } else {
        m = msg_new(desc);
        if (map_to_msg(&c, desc, m, docs[0], "", 1, 1) < 0) {
            protobuf_c_message_free_unpacked(m, NULL);
            m = NULL;
        }
    }
    for (size_t i = 0; i < ndocs; i++)
        ynode_free(docs[i]);
    free(docs);
    *err = c.err;
    return m;
}

/* ------------------------------------------------------ pb -> text */

struct em {
    enum ctl_fmt fmt;
    yaml_emitter_t ye;
    struct ctl_buf out;
    int depth;
    int first[CTL_YAML_MAX_DEPTH * 2 + 8];
    int after_key;
};

static int em_write(void *data, unsigned char *buf, size_t size)
{
    struct em *e = data;
    ctl_buf_add(&e->out, buf, size);
    return 1;
}

static void ye_emit(struct em *e, yaml_event_t *ev)
{
    if (!yaml_emitter_emit(&e->ye, ev))
        fatal("yaml emitter: %s", e->ye.problem ? e->ye.problem : "failed");
}

static void json_pre(struct em *e)
{
    if (e->after_key) {
        e->after_key = 0;
        return;
    }
    if (e->depth > 0) {
        if (!e->first[e->depth])
            ctl_buf_puts(&e->out, ",");
        e->first[e->depth] = 0;
        if (e->fmt == CTL_FMT_JSON)
            ctl_buf_printf(&e->out, "\n%*s", e->depth * 4, "");
    }
}

static void em_json_str(struct ctl_buf *b, const char *s, size_t len)
{
    ctl_buf_puts(b, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '"':
            ctl_buf_puts(b, "\\\"");
            break;
        case '\\':
            ctl_buf_puts(b, "\\\\");
            break;
        case '\n':
            ctl_buf_puts(b, "\\n");
            break;
        case '\t':
            ctl_buf_puts(b, "\\t");
            break;
        case '\r':
            ctl_buf_puts(b, "\\r");
            break;
        case '<':
        case '>':
        case '&':
            /* as Go's encoding/json does */
            ctl_buf_printf(b, "\\u%04x", ch);
            break;
        default:
            if (ch < 0x20) {
                ctl_buf_printf(b, "\\u%04x", ch);
            } else if (ch < 0x80) {
                ctl_buf_add(b, &s[i], 1);
            } else {
                /* Protobuf strings are not checked for UTF-8 (an annotation can hold
                 * any bytes): as Go's encoding/json, each bad byte becomes U+FFFD, so
                 * the JSON stays valid for -o jsonpath's json_parse and for readers. */
                size_t k = json_utf8_len(s + i, len - i);
                if (k)
                    ctl_buf_add(b, &s[i], k);
                else
                    ctl_buf_puts(b, "\\ufffd");
                i += k ? k - 1 : 0;
            }
        }
    }
    ctl_buf_puts(b, "\"");
}

static void em_open(struct em *e, int map)
{
    if (e->fmt == CTL_FMT_YAML) {
        yaml_event_t ev;
        if (map)
            yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
        else
            yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
        ye_emit(e, &ev);
        return;
    }
    json_pre(e);
    ctl_buf_puts(&e->out, map ? "{" : "[");
    e->depth++;
    if ((size_t)e->depth >= ARRAY_SIZE(e->first))
        fatal("ctl_emit: nesting too deep");
    e->first[e->depth] = 1;
}

static void em_close(struct em *e, int map)
{
    if (e->fmt == CTL_FMT_YAML) {
        yaml_event_t ev;
        if (map)
            yaml_mapping_end_event_initialize(&ev);
        else
            yaml_sequence_end_event_initialize(&ev);
        ye_emit(e, &ev);
        return;
    }
    int empty = e->first[e->depth];
    e->depth--;
    if (!empty && e->fmt == CTL_FMT_JSON)
        ctl_buf_printf(&e->out, "\n%*s", e->depth * 4, "");
    ctl_buf_puts(&e->out, map ? "}" : "]");
}

/* Must this string be quoted in YAML to stay a string? (YAML 1.1 and 1.2 readers.) */
static int yaml_ambiguous(const char *s)
{
    static const char *const b11[] = {"y",  "Y",  "yes", "Yes", "YES", "n",   "N",   "no",
                                      "No", "NO", "on",  "On",  "ON",  "off", "Off", "OFF"};
    if (resolve(s) != R_STR)
        return 1;
    for (size_t i = 0; i < ARRAY_SIZE(b11); i++)
        if (!strcmp(s, b11[i]))
            return 1;
    /* YAML 1.1 ints/floats with '_' or sexagesimal ':' */
    const char *d = s + (*s == '-' || *s == '+');
    if (*d >= '0' && *d <= '9' && all_in(d, "0123456789_:.eE+-"))
        return 1;
    return 0;
}

/*
 * s with every byte that starts no valid UTF-8 sequence replaced by U+FFFD
 * (malloc'd, length in *n), or NULL if s is valid: libyaml refuses invalid
 * UTF-8 (and says so in misleading words), and the JSON writer makes the
 * same replacement, as Go does.
 */
static char *utf8_fixed(const char *s, size_t len, size_t *n)
{
    size_t i = 0;
    while (i < len) {
        size_t k = (unsigned char)s[i] < 0x80 ? 1 : json_utf8_len(s + i, len - i);
        if (!k)
            break;
        i += k;
    }
    if (i == len)
        return NULL;
    char *out = xmalloc(len * 3 + 1), *w = out;
    for (i = 0; i < len;) {
        size_t k = (unsigned char)s[i] < 0x80 ? 1 : json_utf8_len(s + i, len - i);
        if (k) {
            memcpy(w, s + i, k);
            w += k;
            i += k;
        } else {
            w += json_utf8_encode(w, 0xFFFD);
            i++;
        }
    }
    *w = 0;
    *n = (size_t)(w - out);
    return out;
}

static void em_scalar(struct em *e, const char *s, size_t len, int is_str, int force_quote)
{
    if (e->fmt == CTL_FMT_YAML) {
        size_t fl = 0;
        char *fixed = is_str ? utf8_fixed(s, len, &fl) : NULL;
        if (fixed) {
            em_scalar(e, fixed, fl, is_str, force_quote);
            free(fixed);
            return;
        }
        yaml_event_t ev;
        yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
        int plain_ok = 1;
        if (!is_str)
            style = YAML_PLAIN_SCALAR_STYLE;
        else if (force_quote || yaml_ambiguous(s)) {
            style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
            plain_ok = 0;
        } else if (memchr(s, '\n', len))
            style = YAML_LITERAL_SCALAR_STYLE;
        yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)len, plain_ok, 1,
                                     style);
        ye_emit(e, &ev);
        return;
    }
    json_pre(e);
    if (is_str)
        em_json_str(&e->out, s, len);
    else
        ctl_buf_add(&e->out, s, len);
}

static void em_str(struct em *e, const char *s)
{
    em_scalar(e, s, strlen(s), 1, 0);
}

static void em_lit(struct em *e, const char *s)
{
    em_scalar(e, s, strlen(s), 0, 0);
}

static void em_key(struct em *e, const char *k)
{
    if (e->fmt == CTL_FMT_YAML) {
        em_str(e, k);
        return;
    }
    json_pre(e);
    em_json_str(&e->out, k, strlen(k));
    ctl_buf_puts(&e->out, e->fmt == CTL_FMT_JSON ? ": " : ":");
    e->after_key = 1;
}

static void emit_msg(struct em *e, const ProtobufCMessage *m);

static void b64(struct ctl_buf *b, const uint8_t *p, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        char o[4] = {t[v >> 18 & 63], t[v >> 12 & 63], i + 1 < n ? t[v >> 6 & 63] : '=',
                     i + 2 < n ? t[v & 63] : '='};
        ctl_buf_add(b, o, 4);
    }
}

static void emit_value(struct em *e, const ProtobufCFieldDescriptor *f, const void *slot)
{
    char num[64];
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        snprintf(num, sizeof(num), "%" PRId32, *(const int32_t *)slot);
        em_lit(e, num);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        snprintf(num, sizeof(num), "%" PRIu32, *(const uint32_t *)slot);
        em_lit(e, num);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(num, sizeof(num), "%" PRId64, *(const int64_t *)slot);
        em_lit(e, num);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(num, sizeof(num), "%" PRIu64, *(const uint64_t *)slot);
        em_lit(e, num);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        snprintf(num, sizeof(num), "%.9g", (double)*(const float *)slot);
        em_lit(e, num);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        snprintf(num, sizeof(num), "%.17g", *(const double *)slot);
        em_lit(e, num);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        em_lit(e, *(const protobuf_c_boolean *)slot ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)slot);
        if (v)
            em_str(e, v->name);
        else {
            snprintf(num, sizeof(num), "%d", *(const int *)slot);
            em_lit(e, num);
        }
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
        em_str(e, *(char *const *)slot ? *(char *const *)slot : "");
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bd = slot;
        struct ctl_buf b = {0};
        b64(&b, bd->data, bd->len);
        char *s = ctl_buf_take(&b);
        em_str(e, s);
        free(s);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;
        if (sub)
            emit_msg(e, sub);
        else
            em_lit(e, "null");
        break;
    }
    }
}

static void emit_fields(struct em *e, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!ctl_field_is_set(m, f))
            continue;
        if (is_inlined(d, f)) {
            emit_fields(e, *(ProtobufCMessage *const *)(base + f->offset));
            continue;
        }
        em_key(e, f->name);
        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
            emit_value(e, f, base + f->offset);
            continue;
        }
        size_t n = *(const size_t *)(base + f->quantifier_offset), es = elem_size(f);
        const char *arr = *(char *const *)(base + f->offset);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && ctl_desc_is_map_entry(f->descriptor)) {
            const ProtobufCMessageDescriptor *ed = f->descriptor;
            em_open(e, 1);
            for (size_t j = 0; j < n; j++) {
                const char *ent = *(char *const *)(arr + j * es);
                const char *key = *(char *const *)(ent + ed->fields[0].offset);
                em_key(e, key ? key : "");
                if (ctl_field_is_set((const ProtobufCMessage *)ent, &ed->fields[1]))
                    emit_value(e, &ed->fields[1], ent + ed->fields[1].offset);
                else
                    em_str(e, "");
            }
            em_close(e, 1);
            continue;
        }
        em_open(e, 0);
        for (size_t j = 0; j < n; j++)
            emit_value(e, f, arr + j * es);
        em_close(e, 0);
    }
}

static void emit_msg(struct em *e, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    char buf[64];
    if (d == &coracle__v1__quantity__descriptor) {
        const Coracle__V1__Quantity *q = (const Coracle__V1__Quantity *)m;
        em_str(e, q->string ? q->string : "0");
        return;
    }
    if (d == &coracle__v1__int_or_string__descriptor) {
        const Coracle__V1__IntOrString *is = (const Coracle__V1__IntOrString *)m;
        if (is->type == 1)
            em_str(e, is->strval ? is->strval : "");
        else {
            snprintf(buf, sizeof(buf), "%" PRId32, is->intval);
            em_lit(e, buf);
        }
        return;
    }
    if (d == &coracle__v1__time__descriptor || d == &coracle__v1__micro_time__descriptor) {
        const Coracle__V1__Time *t = (const Coracle__V1__Time *)m;
        ctl_fmt_rfc3339(buf, sizeof(buf), t->seconds, t->nanos,
                        d == &coracle__v1__micro_time__descriptor);
        em_scalar(e, buf, strlen(buf), 1, 1);
        return;
    }
    em_open(e, 1);
    emit_fields(e, m);
    em_close(e, 1);
}

static void emit_obj(struct em *e, const struct kind *k, const ProtobufCMessage *m)
{
    em_open(e, 1);
    if (k) {
        em_key(e, "apiVersion");
        em_str(e, k->api_version);
        em_key(e, "kind");
        em_str(e, k->kind);
    }
    emit_fields(e, m);
    em_close(e, 1);
}

static void em_begin(struct em *e, enum ctl_fmt fmt)
{
    memset(e, 0, sizeof(*e));
    e->fmt = fmt;
    if (fmt != CTL_FMT_YAML)
        return;
    yaml_event_t ev;
    if (!yaml_emitter_initialize(&e->ye))
        fatal("yaml_emitter_initialize");
    yaml_emitter_set_output(&e->ye, em_write, e);
    yaml_emitter_set_width(&e->ye, -1);
    yaml_emitter_set_unicode(&e->ye, 1);
    yaml_emitter_set_indent(&e->ye, 2);
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    ye_emit(e, &ev);
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    ye_emit(e, &ev);
}

static char *em_end(struct em *e)
{
    if (e->fmt == CTL_FMT_YAML) {
        yaml_event_t ev;
        yaml_document_end_event_initialize(&ev, 1);
        ye_emit(e, &ev);
        yaml_stream_end_event_initialize(&ev);
        ye_emit(e, &ev);
        yaml_emitter_delete(&e->ye);
    } else if (e->fmt == CTL_FMT_JSON)
        ctl_buf_puts(&e->out, "\n");
    return ctl_buf_take(&e->out);
}

char *ctl_emit(const struct kind *k, const ProtobufCMessage *msg, enum ctl_fmt fmt)
{
    struct em e;
    em_begin(&e, fmt);
    emit_obj(&e, k, msg);
    return em_end(&e);
}

char *ctl_emit_list(const struct kind *k, ProtobufCMessage *const *items, size_t n,
                    enum ctl_fmt fmt)
{
    struct em e;
    em_begin(&e, fmt);
    em_open(&e, 1);
    em_key(&e, "apiVersion");
    em_str(&e, "v1");
    em_key(&e, "items");
    em_open(&e, 0);
    for (size_t i = 0; i < n; i++)
        emit_obj(&e, k, items[i]);
    em_close(&e, 0);
    em_key(&e, "kind");
    em_str(&e, "List");
    em_key(&e, "metadata");
    em_open(&e, 1);
    em_key(&e, "resourceVersion");
    em_str(&e, "");
    em_close(&e, 1);
    em_close(&e, 1);
    return em_end(&e);
}
