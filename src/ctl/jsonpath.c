/*
 * jsonpath: kubectl's JSONPath templates over a JSON tree. See jsonpath.h.
 * The parser and the evaluator mirror client-go's util/jsonpath closely
 * (same grammar quirks, same error texts) so that templates written for
 * kubectl behave the same here; where Go visits a map in random order we
 * use key order. Evaluation collects all output first, so an error prints
 * nothing, as kubectl's Execute does.
 */
#include "config.h"
#include "jsonpath.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ------------------------------------------------------------ JSON tree */

struct member {
    char *key;
    json_t *val;
    size_t pos;
};

static int cmp_member(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Sorts every object's members by key (equal keys keep their order), recursively. */
static void sort_members(json_t *v)
{
    for (size_t i = 0; i < v->n; i++)
        sort_members(v->kids[i]);
    if (v->type != JSON_OBJECT || v->n < 2)
        return;
    struct member *m = xcalloc(v->n, sizeof(*m));
    for (size_t i = 0; i < v->n; i++)
        m[i] = (struct member){v->keys[i], v->kids[i], i};
    qsort(m, v->n, sizeof(*m), cmp_member);
    for (size_t i = 0; i < v->n; i++) {
        v->keys[i] = m[i].key;
        v->kids[i] = m[i].val;
    }
    free(m);
}

int ctl_jp_parse_json(const char *text, size_t len, json_t **out, char **err)
{
    /* A List of many thousand objects is tens of MB: bound only the nesting. */
    const struct json_limits lim = {
        .max_bytes = SIZE_MAX / 2, .max_depth = CTL_JP_MAX_DEPTH, .max_nodes = SIZE_MAX / 2};
    if (json_parse(text, len, &lim, out, err) < 0)
        return -1;
    sort_members(*out);
    return 0;
}

/* The member key of an object sorted by sort_members; the first of duplicates. */
static const json_t *member(const json_t *o, const char *key)
{
    size_t lo = 0, hi = o->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(o->keys[mid], key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < o->n && !strcmp(o->keys[lo], key) ? o->kids[lo] : NULL;
}

/* ------------------------------------------------------------ printing */

/* A string as Go's encoding/json writes it (HTML-safe). */
static void go_json_str(struct buf *b, const char *s, size_t len)
{
    buf_puts(b, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *e = NULL;
        switch (c) {
        case '"':
            e = "\\\"";
            break;
        case '\\':
            e = "\\\\";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\t':
            e = "\\t";
            break;
        case '\b':
            e = "\\b";
            break;
        case '\f':
            e = "\\f";
            break;
        }
        if (e)
            buf_puts(b, e);
        else if (c < 0x20 || c == '<' || c == '>' || c == '&')
            buf_printf(b, "\\u%04x", c);
        else if (c == 0xe2 && i + 2 < len && (unsigned char)s[i + 1] == 0x80 &&
                 ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9)) {
            buf_printf(b, "\\u202%c", (unsigned char)s[i + 2] == 0xa8 ? '8' : '9');
            i += 2;
        } else
            buf_add(b, &s[i], 1);
    }
    buf_puts(b, "\"");
}

/* json.Marshal (indent < 0) or json.MarshalIndent(v, "", "    ") at depth. */
static void json_write(struct buf *b, const json_t *v, int indent)
{
    switch (v->type) {
    case JSON_NULL:
        buf_puts(b, "null");
        return;
    case JSON_FALSE:
    case JSON_TRUE:
        buf_puts(b, v->type == JSON_TRUE ? "true" : "false");
        return;
    case JSON_NUMBER:
        buf_add(b, v->str, v->len);
        return;
    case JSON_STRING:
        go_json_str(b, v->str, v->len);
        return;
    case JSON_ARRAY:
    case JSON_OBJECT:
        break;
    }
    bool obj = v->type == JSON_OBJECT;
    buf_puts(b, obj ? "{" : "[");
    for (size_t i = 0; i < v->n; i++) {
        if (i)
            buf_puts(b, ",");
        if (indent >= 0)
            buf_printf(b, "\n%*s", (indent + 1) * 4, "");
        if (obj) {
            go_json_str(b, v->keys[i], strlen(v->keys[i]));
            buf_puts(b, indent >= 0 ? ": " : ":");
        }
        json_write(b, v->kids[i], indent >= 0 ? indent + 1 : -1);
    }
    if (indent >= 0 && v->n)
        buf_printf(b, "\n%*s", indent * 4, "");
    buf_puts(b, obj ? "}" : "]");
}

/* Go's fmt %v of a decoded JSON value: map[a:1 b:x], [x y], <nil>. */
static void go_fmt(struct buf *b, const json_t *v)
{
    switch (v->type) {
    case JSON_NULL:
        buf_puts(b, "<nil>");
        break;
    case JSON_FALSE:
    case JSON_TRUE:
        buf_puts(b, v->type == JSON_TRUE ? "true" : "false");
        break;
    case JSON_NUMBER:
    case JSON_STRING:
        buf_add(b, v->str, v->len);
        break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        buf_puts(b, v->type == JSON_OBJECT ? "map[" : "[");
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                buf_puts(b, " ");
            if (v->type == JSON_OBJECT)
                buf_printf(b, "%s:", v->keys[i]);
            go_fmt(b, v->kids[i]);
        }
        buf_puts(b, "]");
        break;
    }
}

/* How PrintResults writes one result: strings raw, maps and lists as JSON. */
static void print_value(struct buf *b, const json_t *v)
{
    if (v->type == JSON_STRING || v->type == JSON_NUMBER)
        buf_add(b, v->str, v->len);
    else
        json_write(b, v, -1);
}

void ctl_jp_go_quote(struct buf *b, const char *s)
{
    buf_puts(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            buf_printf(b, "\\%c", c);
        else if (c == '\n')
            buf_puts(b, "\\n");
        else if (c == '\t')
            buf_puts(b, "\\t");
        else if (c == '\r')
            buf_puts(b, "\\r");
        else if (c < 0x20 || c == 0x7f)
            buf_printf(b, "\\x%02x", c);
        else
            buf_add(b, s, 1);
    }
    buf_puts(b, "\"");
}

/* ------------------------------------------------------------ templates */

enum jp_step_type {
    JS_TEXT,   /* a string literal: one result whatever the input */
    JS_LIT,    /* a number or bool: one result per input */
    JS_FIELD,  /* .name */
    JS_WILD,   /* .* */
    JS_REC,    /* .. */
    JS_ARRAY,  /* [a:b:c] */
    JS_UNION,  /* [x,y] */
    JS_FILTER, /* [?(left op right)] */
    JS_IDENT,  /* range, end or an unknown word (an error when evaluated) */
};

struct jp_step;
struct jp_list {
    struct jp_step *v;
    size_t n, cap;
};

struct jp_step {
    enum jp_step_type type;
    char *name;     /* FIELD, IDENT */
    json_t *lit;    /* TEXT, LIT */
    long long p[3]; /* ARRAY: start, end, step */
    bool known[3], derived;
    struct jp_list *u; /* UNION: alternatives */
    size_t nu;
    struct jp_list l, r; /* FILTER */
    char *op;            /* FILTER: "==" ... or "exists" */
};

enum jp_item_type { JI_EXPR, JI_RANGE, JI_END };

struct jp_item {
    enum jp_item_type type;
    struct jp_list expr;
    size_t body_end; /* RANGE: index of its {end}, or the item count */
};

struct ctl_jp {
    struct jp_item *v;
    size_t n, cap;
};

static void list_free(struct jp_list *l);

static void step_free(struct jp_step *s)
{
    free(s->name);
    json_free(s->lit);
    for (size_t i = 0; i < s->nu; i++)
        list_free(&s->u[i]);
    free(s->u);
    list_free(&s->l);
    list_free(&s->r);
    free(s->op);
}

static void list_free(struct jp_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        step_free(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

void ctl_jp_free(struct ctl_jp *jp)
{
    if (!jp)
        return;
    for (size_t i = 0; i < jp->n; i++)
        list_free(&jp->v[i].expr);
    free(jp->v);
    free(jp);
}

static struct jp_step *list_add(struct jp_list *l, enum jp_step_type t)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    struct jp_step *s = &l->v[l->n++];
    memset(s, 0, sizeof(*s));
    s->type = t;
    return s;
}

/* A template's string literal; unlike a parsed string it may hold NULs ("\x00"). */
static json_t *lit_str(const char *s, size_t len)
{
    json_t *v = xcalloc(1, sizeof(*v));
    v->type = JSON_STRING;
    v->str = xmalloc(len + 1);
    memcpy(v->str, s, len);
    v->str[len] = '\0';
    v->len = len;
    return v;
}

struct jp_parser {
    const char *in;
    size_t len, pos, start;
    char *err;
};

#define JP_EOF (-1)

/* The first error stays (*err set once); returns -1. Parse and execution errors both. */
static int err_first(char **err, const char *fmt, va_list ap)
{
    if (!*err)
        *err = xvasprintf(fmt, ap);
    return -1;
}

static int perr(struct jp_parser *p, const char *fmt, ...) PRINTF(2, 3);
static int perr(struct jp_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_first(&p->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* The next byte (UTF-8 continuation bytes are letters to us) or JP_EOF. */
static int pnext(struct jp_parser *p)
{
    if (p->pos >= p->len)
        return JP_EOF;
    return (unsigned char)p->in[p->pos++];
}

static void pbackup(struct jp_parser *p, int c)
{
    if (c != JP_EOF)
        p->pos--;
}

static int ppeek(struct jp_parser *p)
{
    return p->pos < p->len ? (unsigned char)p->in[p->pos] : JP_EOF;
}

static bool is_alnum(int c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c >= 0x80;
}

static bool is_terminator(int c)
{
    return c == JP_EOF || c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
           (c < 0x80 && strchr(".,[]$@{}", c) && c);
}

static bool has_prefix(struct jp_parser *p, const char *s)
{
    size_t n = strlen(s);
    return p->len - p->pos >= n && !memcmp(p->in + p->pos, s, n);
}

static int parse_template(const char *in, size_t len, struct ctl_jp *jp, char **err);

/* client-go's parseAction: text parsed as "{text}", its action's steps into *out. */
static int parse_sub(struct jp_parser *p, const char *text, size_t len, struct jp_list *out)
{
    struct buf b = {0};
    buf_puts(&b, "{");
    buf_add(&b, text, len);
    buf_puts(&b, "}");
    struct ctl_jp sub = {0};
    char *err = NULL;
    int rc = parse_template(b.p, b.len, &sub, &err);
    buf_free(&b);
    if (rc < 0) {
        perr(p, "%s", err);
        free(err);
        return -1;
    }
    /* the first node is the action; steps of range/end stay as IDENT steps */
    if (sub.n) {
        *out = sub.v[0].expr;
        memset(&sub.v[0].expr, 0, sizeof(sub.v[0].expr));
    }
    for (size_t i = 0; i < sub.n; i++)
        list_free(&sub.v[i].expr);
    free(sub.v);
    return 0;
}

static int parse_field(struct jp_parser *p, struct jp_list *cur)
{
    p->start = p->pos;
    for (;;) {
        int c = pnext(p);
        if (c == '\\')
            pnext(p);
        else if (is_terminator(c)) {
            pbackup(p, c);
            break;
        }
    }
    size_t n = p->pos - p->start;
    if (n == 1 && p->in[p->start] == '*') {
        list_add(cur, JS_WILD);
    } else {
        char *name = xmalloc(n + 1), *d = name;
        for (size_t i = 0; i < n; i++)
            if (p->in[p->start + i] != '\\')
                *d++ = p->in[p->start + i];
        *d = '\0';
        list_add(cur, JS_FIELD)->name = name;
    }
    p->start = p->pos;
    return 0;
}

/* Go's strconv.Atoi: optional sign, decimal digits, no overflow. */
static int atoi_go(const char *s, size_t n, long long *out)
{
    char buf[32];
    if (!n || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    const char *d = buf + (buf[0] == '+' || buf[0] == '-');
    if (!*d || strspn(d, "0123456789") != strlen(d))
        return -1;
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno)
        return -1;
    *out = v;
    return 0;
}

/* The digits run of sliceOperatorRex: -?\d* */
static size_t slice_num(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

static int parse_array(struct jp_parser *p, struct jp_list *cur)
{
    /* '[' is consumed; p->start is at it */
    for (;;) {
        int c = pnext(p);
        if (c == JP_EOF || c == '\n')
            return perr(p, "unterminated array");
        if (c == ']')
            break;
    }
    const char *text = p->in + p->start + 1;
    size_t tl = p->pos - p->start - 2;
    p->start = p->pos;
    if (tl == 1 && text[0] == '*') {
        text = ":";
        tl = 1;
    }
    if (memchr(text, ',', tl)) { /* union */
        struct jp_step *s = list_add(cur, JS_UNION);
        const char *part = text, *end = text + tl;
        for (;;) {
            const char *comma = memchr(part, ',', (size_t)(end - part));
            const char *pe = comma ? comma : end;
            const char *a = part;
            while (a < pe && *a == ' ')
                a++;
            while (pe > a && pe[-1] == ' ')
                pe--;
            struct buf b = {0};
            buf_puts(&b, "[");
            buf_add(&b, a, (size_t)(pe - a));
            buf_puts(&b, "]");
            s->u = xrealloc(s->u, (s->nu + 1) * sizeof(*s->u));
            memset(&s->u[s->nu], 0, sizeof(*s->u));
            int rc = parse_sub(p, b.p, b.len, &s->u[s->nu]);
            s->nu++;
            buf_free(&b);
            if (rc < 0)
                return -1;
            if (!comma)
                break;
            part = comma + 1;
        }
        return 0;
    }
    if (tl >= 2 && text[0] == '\'' && text[tl - 1] == '\'' && !memchr(text + 1, '\'', tl - 2)) {
        /* ['a.b']: the same as .a.b */
        struct buf b = {0};
        struct jp_list sub = {0};
        buf_puts(&b, ".");
        buf_add(&b, text + 1, tl - 2);
        int rc = parse_sub(p, b.p, b.len, &sub);
        buf_free(&b);
        if (rc < 0)
            return -1;
        for (size_t i = 0; i < sub.n; i++)
            *list_add(cur, sub.v[i].type) = sub.v[i]; /* moved, not copied */
        free(sub.v);
        return 0;
    }
    /* ^(-?\d*)(:-?\d*)?(:-?\d*)?$ */
    const char *g[3] = {NULL, NULL, NULL};
    size_t gl[3] = {0, 0, 0};
    size_t i = slice_num(text, tl);
    g[0] = text;
    gl[0] = i;
    for (int k = 1; k < 3 && i < tl && text[i] == ':'; k++) {
        size_t m = slice_num(text + i + 1, tl - i - 1);
        g[k] = text + i;
        gl[k] = m + 1;
        i += m + 1;
    }
    if (i != tl)
        return perr(p, "invalid array index %.*s", (int)tl, text);
    struct jp_step *s = list_add(cur, JS_ARRAY);
    for (int k = 0; k < 3; k++) {
        if (gl[k]) {
            const char *v = g[k] + (k > 0);
            size_t vl = gl[k] - (k > 0);
            if (k > 0 && !vl) {
                s->known[k] = false;
            } else {
                s->known[k] = true;
                if (atoi_go(v, vl, &s->p[k]) < 0)
                    return perr(p, "array index %.*s is not a number", (int)vl, v);
            }
        } else if (k == 1) {
            s->known[1] = true;
            s->p[1] = s->p[0] + 1;
            s->derived = true;
        }
    }
    return 0;
}

static int parse_filter(struct jp_parser *p, struct jp_list *cur)
{
    p->pos += 3;
    p->start = p->pos;
    bool begin = false, end = false;
    int pair = 0;
    for (;;) {
        int c = pnext(p);
        if (c == JP_EOF || c == '\n')
            return perr(p, "unterminated filter");
        if (c == '"' || c == '\'') {
            if (!begin) {
                begin = true;
                pair = c;
                continue;
            }
            if (p->in[p->pos - 2] != '\\' && c == pair)
                end = true;
        } else if (c == ')' && begin == end)
            break;
    }
    if (pnext(p) != ']')
        return perr(p, "unclosed array expect ]");
    const char *text = p->in + p->start;
    size_t tl = p->pos - p->start - 2;
    p->start = p->pos;
    /* ^([^!<>=]+)([!<>=~]+)(.+?)$ */
    size_t l = 0;
    while (l < tl && !strchr("!<>=", text[l]))
        l++;
    size_t o = l;
    while (o < tl && strchr("!<>=~", text[o]))
        o++;
    if (o == tl && o > l + 1)
        o--; /* the right side needs a character */
    struct jp_step *s = list_add(cur, JS_FILTER);
    if (l == 0 || o == l || o == tl) {
        s->op = xstrdup("exists");
        return parse_sub(p, text, tl, &s->l);
    }
    s->op = xstrndup(text + l, o - l);
    if (parse_sub(p, text, l, &s->l) < 0)
        return -1;
    return parse_sub(p, text + o, tl - o, &s->r);
}

/* strconv.UnquoteChar for one escape at s (after the backslash); appends to b. */
static int unquote_esc(const char *s, size_t n, char quote, struct buf *b, size_t *used)
{
    static const char simple[] = "a\ab\bf\fn\nr\rt\tv\v\\\\";
    if (!n)
        return -1;
    const char *e = strchr(simple, s[0]);
    if (s[0] && e && (e - simple) % 2 == 0) {
        buf_add(b, e + 1, 1);
        *used = 1;
        return 0;
    }
    if (s[0] == quote) {
        buf_add(b, s, 1);
        *used = 1;
        return 0;
    }
    if (s[0] >= '0' && s[0] <= '7') {
        if (n < 3)
            return -1;
        unsigned v = 0;
        for (int i = 0; i < 3; i++) {
            if (s[i] < '0' || s[i] > '7')
                return -1;
            v = v * 8 + (unsigned)(s[i] - '0');
        }
        if (v > 255)
            return -1;
        char ch = (char)v;
        buf_add(b, &ch, 1);
        *used = 3;
        return 0;
    }
    size_t digits = s[0] == 'x' ? 2 : s[0] == 'u' ? 4 : s[0] == 'U' ? 8 : 0;
    if (!digits || n < digits + 1)
        return -1;
    uint32_t v = 0;
    for (size_t i = 1; i <= digits; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    if (s[0] == 'x') {
        char ch = (char)v;
        buf_add(b, &ch, 1);
    } else {
        if (v > 0x10ffff || (v >= 0xd800 && v < 0xe000))
            return -1;
        char u[4];
        buf_add(b, u, json_utf8_encode(u, v));
    }
    *used = digits + 1;
    return 0;
}

static int parse_quote(struct jp_parser *p, struct jp_list *cur, int q)
{
    /* the opening quote is consumed; p->start is at it */
    for (;;) {
        int c = pnext(p);
        if (c == JP_EOF || c == '\n')
            return perr(p, "unterminated quoted string");
        if (c == q && p->in[p->pos - 2] != '\\')
            break;
    }
    const char *s = p->in + p->start + 1;
    size_t n = p->pos - p->start - 2;
    struct buf b = {0};
    for (size_t i = 0; i < n;) {
        size_t used;
        if (s[i] == q || s[i] == '\n') {
            goto bad;
        } else if (s[i] == '\\') {
            if (unquote_esc(s + i + 1, n - i - 1, (char)q, &b, &used) < 0)
                goto bad;
            i += used + 1;
        } else {
            buf_add(&b, s + i, 1);
            i++;
        }
    }
    list_add(cur, JS_TEXT)->lit = lit_str(b.p ? b.p : "", b.len);
    buf_free(&b);
    p->start = p->pos;
    return 0;
bad:
    buf_free(&b);
    return perr(p, "unquote string %.*s error invalid syntax", (int)(n + 2), s - 1);
}

/* Go's %v of a float64: the shortest text that reads back the same. */
static char *fmt_float(double d)
{
    char buf[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return xstrdup(buf);
}

static int parse_number(struct jp_parser *p, struct jp_list *cur)
{
    p->start = p->pos;
    int c = ppeek(p);
    if (c == '+' || c == '-')
        pnext(p);
    for (;;) {
        c = pnext(p);
        if (c != '.' && !(c >= '0' && c <= '9')) {
            pbackup(p, c);
            break;
        }
    }
    const char *s = p->in + p->start;
    size_t n = p->pos - p->start;
    p->start = p->pos;
    long long iv;
    json_t *v = xcalloc(1, sizeof(*v));
    v->type = JSON_NUMBER;
    if (atoi_go(s, n, &iv) == 0) {
        v->str = xasprintf("%lld", iv);
    } else {
        char *t = xstrndup(s, n), *e;
        double d = strtod(t, &e);
        bool ok = n && !*e && strchr("+-.0123456789", t[0]) && strpbrk(t, "0123456789");
        free(t);
        if (!ok) {
            free(v);
            return perr(p, "cannot parse number %.*s", (int)n, s);
        }
        v->str = fmt_float(d);
    }
    v->len = strlen(v->str);
    v->num = strtod(v->str, NULL);
    list_add(cur, JS_LIT)->lit = v;
    return 0;
}

static int parse_ident(struct jp_parser *p, struct jp_list *cur)
{
    p->start = p->pos;
    for (;;) {
        int c = pnext(p);
        if (is_terminator(c)) {
            pbackup(p, c);
            break;
        }
    }
    size_t n = p->pos - p->start;
    const char *s = p->in + p->start;
    p->start = p->pos;
    if ((n == 4 && !memcmp(s, "true", 4)) || (n == 5 && !memcmp(s, "false", 5))) {
        json_t *v = xcalloc(1, sizeof(*v));
        v->type = n == 4 ? JSON_TRUE : JSON_FALSE;
        list_add(cur, JS_LIT)->lit = v;
    } else
        list_add(cur, JS_IDENT)->name = xstrndup(s, n);
    return 0;
}

/* Inside {}: steps until the closing brace (consumed). */
static int parse_inside(struct jp_parser *p, struct jp_list *cur)
{
    for (;;) {
        int rc = 0;
        if (has_prefix(p, "}")) {
            p->pos++;
            p->start = p->pos;
            return 0;
        }
        if (has_prefix(p, "[?(")) {
            rc = parse_filter(p, cur);
        } else if (has_prefix(p, "..")) {
            if (cur->n && cur->v[cur->n - 1].type == JS_REC)
                return perr(p, "invalid multiple recursive descent");
            p->pos += 2;
            p->start = p->pos;
            list_add(cur, JS_REC);
            if (is_alnum(ppeek(p)))
                rc = parse_field(p, cur);
        } else {
            p->start = p->pos;
            int c = pnext(p);
            if (c == JP_EOF || c == '\r' || c == '\n')
                return perr(p, "unclosed action");
            else if (c == ' ' || c == '@' || c == '$')
                p->start = p->pos;
            else if (c == '[')
                rc = parse_array(p, cur);
            else if (c == '"' || c == '\'')
                rc = parse_quote(p, cur, c);
            else if (c == '.')
                rc = parse_field(p, cur);
            else if (c == '+' || c == '-' || (c >= '0' && c <= '9')) {
                pbackup(p, c);
                rc = parse_number(p, cur);
            } else if (is_alnum(c)) {
                pbackup(p, c);
                rc = parse_ident(p, cur);
            } else if (c >= 0x20 && c < 0x7f)
                return perr(p, "unrecognized character in action: U+%04X '%c'", (unsigned)c, c);
            else
                return perr(p, "unrecognized character in action: U+%04X", (unsigned)c);
        }
        if (rc < 0)
            return -1;
    }
}

static struct jp_item *item_add(struct ctl_jp *jp, enum jp_item_type t)
{
    if (jp->n == jp->cap) {
        jp->cap = jp->cap ? jp->cap * 2 : 8;
        jp->v = xrealloc(jp->v, jp->cap * sizeof(*jp->v));
    }
    struct jp_item *it = &jp->v[jp->n++];
    memset(it, 0, sizeof(*it));
    it->type = t;
    return it;
}

/* The flat node list of client-go's parser: text and actions, in order. */
static int parse_template(const char *in, size_t len, struct ctl_jp *jp, char **err)
{
    struct jp_parser p = {.in = in, .len = len};
    while (p.pos < len) {
        const char *lb = memchr(in + p.pos, '{', len - p.pos);
        size_t tend = lb ? (size_t)(lb - in) : len;
        if (tend > p.pos) {
            struct jp_item *it = item_add(jp, JI_EXPR);
            list_add(&it->expr, JS_TEXT)->lit = lit_str(in + p.pos, tend - p.pos);
        }
        if (!lb)
            break;
        p.pos = tend + 1;
        p.start = p.pos;
        struct jp_item *it = item_add(jp, JI_EXPR);
        if (parse_inside(&p, &it->expr) < 0) {
            *err = p.err;
            return -1;
        }
    }
    return 0;
}

int ctl_jp_parse(const char *tmpl, struct ctl_jp **out, char **err)
{
    struct ctl_jp *jp = xcalloc(1, sizeof(*jp));
    if (parse_template(tmpl, strlen(tmpl), jp, err) < 0) {
        ctl_jp_free(jp);
        return -1;
    }
    /*
     * {range ...} and {end}: an action holding the word range starts a
     * loop over its results, {end} closes the innermost one; a range left
     * open runs to the end of the template, as in client-go.
     */
    size_t *stack = xcalloc(jp->n + 1, sizeof(*stack)), depth = 0;
    for (size_t i = 0; i < jp->n; i++) {
        struct jp_list *l = &jp->v[i].expr;
        for (size_t k = 0; k < l->n; k++) {
            if (l->v[k].type != JS_IDENT)
                continue;
            if (!strcmp(l->v[k].name, "end")) {
                jp->v[i].type = JI_END;
                break;
            }
            if (!strcmp(l->v[k].name, "range") && jp->v[i].type == JI_EXPR) {
                jp->v[i].type = JI_RANGE;
                step_free(&l->v[k]);
                memmove(&l->v[k], &l->v[k + 1], (l->n - k - 1) * sizeof(*l->v));
                l->n--;
                k--;
            }
        }
        if (jp->v[i].type == JI_RANGE) {
            jp->v[i].body_end = jp->n;
            stack[depth++] = i;
        } else if (jp->v[i].type == JI_END && depth)
            jp->v[stack[--depth]].body_end = i;
    }
    free(stack);
    *out = jp;
    return 0;
}

int ctl_jp_relaxed(const char *expr, char **tmpl, char **err)
{
    size_t n = strlen(expr);
    if (!n) {
        *tmpl = xstrdup("");
        return 0;
    }
    const char *in = expr;
    size_t il = n;
    if (n >= 2 && expr[0] == '{' && expr[n - 1] == '}') {
        in = expr + 1;
        il = n - 2;
    }
    if (!il || memchr(in, '{', il) || memchr(in, '}', il)) {
        *err = xstrdup("unexpected path string, expected a 'name1.name2' or '.name1.name2' or "
                       "'{name1.name2}' or '{.name1.name2}'");
        return -1;
    }
    if (il > 1 && in[0] == '.') {
        in++;
        il--;
    }
    *tmpl = xasprintf("{.%.*s}", (int)il, in);
    return 0;
}

/* ------------------------------------------------------------ evaluation */

struct jvec {
    const json_t **v;
    size_t n, cap;
};

static void vpush(struct jvec *r, const json_t *v)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
    }
    r->v[r->n++] = v;
}

struct ectx {
    int flags;
    char *err;
};

static int eerr(struct ectx *x, const char *fmt, ...) PRINTF(2, 3);
static int eerr(struct ectx *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_first(&x->err, fmt, ap);
    va_end(ap);
    return -1;
}

static bool num_is_int(const json_t *v)
{
    return !strpbrk(v->str, ".eE");
}

/* The Go type of a decoded JSON value, for messages. */
static const char *go_type(const json_t *v)
{
    switch (v->type) {
    case JSON_NULL:
        return "<nil>";
    case JSON_FALSE:
    case JSON_TRUE:
        return "bool";
    case JSON_NUMBER:
        return num_is_int(v) ? "int64" : "float64";
    case JSON_STRING:
        return "string";
    case JSON_ARRAY:
        return "[]interface {}";
    case JSON_OBJECT:
        return "map[string]interface {}";
    }
    return "?";
}

static int eval_list(struct ectx *x, const struct jp_list *l, const struct jvec *in,
                     struct jvec *out);

static void recurse(const struct jvec *in, struct jvec *out)
{
    for (size_t i = 0; i < in->n; i++) {
        const json_t *v = in->v[i];
        if ((v->type != JSON_ARRAY && v->type != JSON_OBJECT) || !v->n)
            continue;
        vpush(out, v);
        struct jvec kids = {(const json_t **)v->kids, v->n, v->n};
        recurse(&kids, out);
    }
}

static int eval_array(struct ectx *x, const struct jp_step *s, const struct jvec *in,
                      struct jvec *out)
{
    for (size_t i = 0; i < in->n; i++) {
        const json_t *v = in->v[i];
        if (v->type == JSON_NULL)
            continue;
        if (v->type != JSON_ARRAY)
            return eerr(x, "%s is not array or slice", go_type(v));
        long long len = (long long)v->n, p0 = s->p[0], p1 = s->p[1];
        if (!s->known[0])
            p0 = 0;
        if (p0 < 0)
            p0 += len;
        if (!s->known[1])
            p1 = len;
        if (p1 < 0 || (p1 == 0 && s->derived))
            p1 += len;
        if (p1 == p0)
            continue; /* client-go returns here: zero elements asked */
        if (p0 >= len || p0 < 0)
            return eerr(x, "array index out of bounds: index %lld, length %lld", p0, len);
        if (p1 > len || p1 < 0)
            return eerr(x, "array index out of bounds: index %lld, length %lld", p1 - 1, len);
        if (p0 > p1)
            return eerr(x, "starting index %lld is greater than ending index %lld", p0, p1);
        long long step = 1;
        if (s->known[2]) {
            if (s->p[2] <= 0)
                return eerr(x, "step must be > 0");
            step = s->p[2];
        }
        for (long long k = p0; k < p1; k += step)
            vpush(out, v->kids[k]);
    }
    return 0;
}

enum cmp_kind { CK_BAD, CK_BOOL, CK_INT, CK_FLOAT, CK_STR };

static enum cmp_kind cmp_kind(const json_t *v)
{
    switch (v->type) {
    case JSON_FALSE:
    case JSON_TRUE:
        return CK_BOOL;
    case JSON_NUMBER:
        return num_is_int(v) ? CK_INT : CK_FLOAT;
    case JSON_STRING:
        return CK_STR;
    default:
        return CK_BAD;
    }
}

/* Go text/template's eq/lt for basic kinds: -1, 0, 1 into *c; -1 with an error. */
static int compare(struct ectx *x, const json_t *a, const json_t *b, bool ordered, int *c)
{
    enum cmp_kind ka = cmp_kind(a), kb = cmp_kind(b);
    if (ka == CK_BAD || kb == CK_BAD)
        return eerr(x, "invalid type for comparison");
    if (ka != kb)
        return eerr(x, "incompatible types for comparison");
    switch (ka) {
    case CK_BOOL:
        if (ordered)
            return eerr(x, "invalid type for comparison");
        *c = a->type != b->type;
        break;
    case CK_INT: {
        long long ia = strtoll(a->str, NULL, 10), ib = strtoll(b->str, NULL, 10);
        *c = ia < ib ? -1 : ia > ib;
        break;
    }
    case CK_FLOAT: {
        double da = strtod(a->str, NULL), db = strtod(b->str, NULL);
        *c = da < db ? -1 : da > db ? 1 : da == db ? 0 : 2;
        break;
    }
    case CK_STR: {
        size_t m = a->len < b->len ? a->len : b->len;
        int r = memcmp(a->str, b->str, m);
        *c = r ? (r < 0 ? -1 : 1) : a->len < b->len ? -1 : a->len > b->len;
        break;
    }
    case CK_BAD:
        break;
    }
    return 0;
}

static int eval_filter(struct ectx *x, const struct jp_step *s, const struct jvec *in,
                       struct jvec *out)
{
    bool exists = !strcmp(s->op, "exists");
    for (size_t i = 0; i < in->n; i++) {
        const json_t *v = in->v[i];
        if (v->type != JSON_ARRAY) {
            struct buf b = {0};
            go_fmt(&b, v);
            eerr(x, "%s is not array or slice and cannot be filtered", b.p);
            buf_free(&b);
            return -1;
        }
        for (size_t k = 0; k < v->n; k++) {
            const json_t *el = v->kids[k];
            struct jvec temp = {&el, 1, 1}, lefts = {0}, rights = {0};
            struct ectx lx = {x->flags, NULL};
            int rc = eval_list(&lx, &s->l, &temp, &lefts);
            if (exists) {
                if (lefts.n)
                    vpush(out, el);
                free(lefts.v);
                free(lx.err);
                continue;
            }
            if (rc < 0) {
                x->err = lx.err;
                free(lefts.v);
                return -1;
            }
            if (lefts.n != 1) {
                free(lefts.v);
                if (!lefts.n)
                    continue;
                return eerr(x, "can only compare one element at a time");
            }
            const json_t *left = lefts.v[0];
            free(lefts.v);
            if (eval_list(x, &s->r, &temp, &rights) < 0) {
                free(rights.v);
                return -1;
            }
            if (rights.n != 1) {
                free(rights.v);
                if (!rights.n)
                    continue;
                return eerr(x, "can only compare one element at a time");
            }
            const json_t *right = rights.v[0];
            free(rights.v);
            const char *op = s->op;
            bool ordered;
            if (!strcmp(op, "==") || !strcmp(op, "!="))
                ordered = false;
            else if (!strcmp(op, "<") || !strcmp(op, ">") || !strcmp(op, "<=") || !strcmp(op, ">="))
                ordered = true;
            else
                return eerr(x, "unrecognized filter operator %s", op);
            int c = 0;
            if (compare(x, left, right, ordered, &c) < 0)
                return -1;
            bool pass = !strcmp(op, "==")   ? c == 0
                        : !strcmp(op, "!=") ? c != 0
                        : !strcmp(op, "<")  ? c == -1
                        : !strcmp(op, ">")  ? c == 1
                        : !strcmp(op, "<=") ? c == -1 || c == 0
                                            : c == 1 || c == 0;
            if (pass)
                vpush(out, el);
        }
    }
    return 0;
}

static int eval_step(struct ectx *x, const struct jp_step *s, const struct jvec *in,
                     struct jvec *out)
{
    switch (s->type) {
    case JS_TEXT:
        vpush(out, s->lit);
        return 0;
    case JS_LIT:
        for (size_t i = 0; i < in->n; i++)
            vpush(out, s->lit);
        return 0;
    case JS_FIELD:
        if (!in->n)
            return 0;
        for (size_t i = 0; i < in->n; i++) {
            const json_t *r = in->v[i]->type == JSON_OBJECT ? member(in->v[i], s->name) : NULL;
            if (r)
                vpush(out, r);
        }
        if (!out->n && !(x->flags & CTL_JP_ALLOW_MISSING))
            return eerr(x, "%s is not found", s->name);
        return 0;
    case JS_WILD:
        for (size_t i = 0; i < in->n; i++)
            if (in->v[i]->type == JSON_OBJECT || in->v[i]->type == JSON_ARRAY)
                for (size_t k = 0; k < in->v[i]->n; k++)
                    vpush(out, in->v[i]->kids[k]);
        return 0;
    case JS_REC:
        recurse(in, out);
        return 0;
    case JS_ARRAY:
        return eval_array(x, s, in, out);
    case JS_UNION:
        for (size_t i = 0; i < s->nu; i++) {
            struct jvec r = {0};
            if (eval_list(x, &s->u[i], in, &r) < 0) {
                free(r.v);
                return -1;
            }
            for (size_t k = 0; k < r.n; k++)
                vpush(out, r.v[k]);
            free(r.v);
        }
        return 0;
    case JS_FILTER:
        return eval_filter(x, s, in, out);
    case JS_IDENT:
        if (!strcmp(s->name, "range")) {
            for (size_t i = 0; i < in->n; i++)
                vpush(out, in->v[i]);
            return 0;
        }
        if (!strcmp(s->name, "end"))
            return eerr(x, "not in range, nothing to end");
        return eerr(x, "unrecognized identifier %s", s->name);
    }
    return 0;
}

static int eval_list(struct ectx *x, const struct jp_list *l, const struct jvec *in,
                     struct jvec *out)
{
    struct jvec cur = {0};
    for (size_t i = 0; i < in->n; i++)
        vpush(&cur, in->v[i]);
    for (size_t i = 0; i < l->n; i++) {
        struct jvec next = {0};
        int rc = eval_step(x, &l->v[i], &cur, &next);
        free(cur.v);
        cur = next;
        if (rc < 0)
            break;
    }
    *out = cur;
    return x->err ? -1 : 0;
}

/* One {}'s results as PrintResults writes them. */
static void print_group(struct buf *b, const struct jvec *r, int flags)
{
    if (flags & CTL_JP_AS_JSON) {
        json_t arr = {.type = JSON_ARRAY, .kids = (json_t **)r->v, .n = r->n};
        json_write(b, &arr, 0);
        buf_puts(b, "\n");
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (i)
            buf_puts(b, " ");
        print_value(b, r->v[i]);
    }
}

static const json_t jv_null = {.type = JSON_NULL};

/* client-go's FindResults over items [from, to) with cur as the root. */
static int exec_items(struct ectx *x, const struct ctl_jp *jp, size_t from, size_t to,
                      const json_t *cur, struct buf *out)
{
    struct jvec in = {&cur, 1, 1};
    for (size_t i = from; i < to; i++) {
        const struct jp_item *it = &jp->v[i];
        if (it->type == JI_END)
            return eerr(x, "not in range, nothing to end");
        struct jvec r = {0};
        if (eval_list(x, &it->expr, &in, &r) < 0) {
            free(r.v);
            return -1;
        }
        if (it->type == JI_EXPR) {
            print_group(out, &r, x->flags);
            free(r.v);
            continue;
        }
        int rc = 0;
        for (size_t k = 0; k < r.n && rc == 0; k++)
            rc = exec_items(x, jp, i + 1, it->body_end, r.v[k], out);
        if (!r.n && rc == 0) {
            /* client-go still walks an empty range's body (its errors count) */
            struct buf discard = {0};
            rc = exec_items(x, jp, i + 1, it->body_end, &jv_null, &discard);
            buf_free(&discard);
        }
        free(r.v);
        if (rc < 0)
            return -1;
        i = it->body_end;
    }
    return 0;
}

int ctl_jp_exec(const struct ctl_jp *jp, const json_t *root, int flags, struct buf *out, char **err)
{
    struct ectx x = {flags, NULL};
    struct buf b = {0};
    if (exec_items(&x, jp, 0, jp->n, root, &b) < 0) {
        buf_free(&b);
        *err = x.err;
        return -1;
    }
    if (b.len)
        buf_add(out, b.p, b.len);
    buf_free(&b);
    return 0;
}

int ctl_jp_cell(const struct ctl_jp *jp, const json_t *root, struct buf *out, char **err)
{
    struct ectx x = {CTL_JP_ALLOW_MISSING, NULL};
    struct jvec in = {&root, 1, 1};
    struct buf b = {0};
    size_t nvals = 0;
    bool first_empty = true;
    for (size_t i = 0; i < jp->n; i++) {
        struct jvec r = {0};
        /* a column is one expression; ranges make no sense here and are evaluated flat */
        if (eval_list(&x, &jp->v[i].expr, &in, &r) < 0) {
            free(r.v);
            buf_free(&b);
            *err = x.err;
            return -1;
        }
        if (i == 0)
            first_empty = r.n == 0;
        for (size_t k = 0; k < r.n; k++) {
            if (nvals++)
                buf_puts(&b, ",");
            go_fmt(&b, r.v[k]);
        }
        free(r.v);
    }
    if (!jp->n || first_empty)
        buf_puts(out, nvals ? "<none>," : "<none>");
    if (b.len)
        buf_add(out, b.p, b.len);
    buf_free(&b);
    return 0;
}
