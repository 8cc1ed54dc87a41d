/*
 * kssa_set: structured-merge-diff's fieldpath package: path elements, their
 * order and serialization, field sets and their algebra, and FieldsV1 (the
 * JSON form of a set) both ways. See kssa_int.h.
 */
#include "config.h"
#include "kssa_int.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "kobj.h"
#include "util.h"

/* ------------------------------------------------------ path elements */

static int cmp3(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

static int fcmp(double a, double b)
{
    return (a > b) - (a < b);
}

/* value.Compare for the scalars path elements hold; ints and floats compare as numbers. */
int sval_cmp(const struct sval *a, const struct sval *b)
{
    if (a->t == SV_FLOAT || b->t == SV_FLOAT) {
        int an = a->t == SV_FLOAT || a->t == SV_INT, bn = b->t == SV_FLOAT || b->t == SV_INT;
        if (an && bn)
            return fcmp(a->t == SV_FLOAT ? a->f : (double)a->i,
                        b->t == SV_FLOAT ? b->f : (double)b->i);
        return a->t == SV_FLOAT ? -1 : 1;
    }
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    switch (a->t) {
    case SV_INT:
    case SV_BOOL:
        return cmp3(a->i, b->i);
    case SV_STR: {
        size_t n = a->len < b->len ? a->len : b->len;
        int r = memcmp(a->s, b->s, n);
        return r ? (r < 0 ? -1 : 1) : cmp3((int64_t)a->len, (int64_t)b->len);
    }
    default:
        return 0;
    }
}

int pe_cmp(const struct pe *a, const struct pe *b)
{
    if (a->k != b->k)
        return a->k < b->k ? -1 : 1;
    switch (a->k) {
    case PE_FIELD: {
        int r = strcmp(a->name, b->name);
        return (r > 0) - (r < 0);
    }
    case PE_KEY:
        for (size_t i = 0;; i++) {
            if (i >= a->nkeys || i >= b->nkeys)
                return cmp3(i < a->nkeys, i < b->nkeys);
            int r = strcmp(a->keys[i].name, b->keys[i].name);
            if (r)
                return (r > 0) - (r < 0);
            if ((r = sval_cmp(&a->keys[i].v, &b->keys[i].v)))
                return r;
        }
    case PE_VALUE:
        return sval_cmp(&a->v, &b->v);
    case PE_INDEX:
        return cmp3(a->idx, b->idx);
    }
    return 0;
}

struct pe pe_field(struct arena *a, const char *name)
{
    struct pe p = {.k = PE_FIELD, .name = arena_strdup(a, name)};
    return p;
}

/* A float as Go's encoding/json writes it (shortest that reads back). */
static void float_json(struct buf *b, double f)
{
    char tmp[40];
    if (f == 0)
        f = 0; /* no "-0": it would read back as the integer 0 */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, f);
        if (strtod(tmp, NULL) == f)
            break;
    }
    buf_puts(b, tmp);
}

static void sval_json(struct buf *b, const struct sval *v)
{
    switch (v->t) {
    case SV_FLOAT:
        float_json(b, v->f);
        break;
    case SV_INT:
        buf_printf(b, "%" PRId64, v->i);
        break;
    case SV_STR:
        kobj_json_str(b, v->s, v->len);
        break;
    case SV_BOOL:
        buf_puts(b, v->i ? "true" : "false");
        break;
    case SV_NULL:
        buf_puts(b, "null");
        break;
    }
}

void pe_serialize(struct buf *b, const struct pe *p)
{
    switch (p->k) {
    case PE_FIELD:
        buf_puts(b, "f:");
        buf_puts(b, p->name);
        break;
    case PE_KEY:
        buf_puts(b, "k:{");
        for (size_t i = 0; i < p->nkeys; i++) {
            if (i)
                buf_puts(b, ",");
            kobj_json_str(b, p->keys[i].name, strlen(p->keys[i].name));
            buf_puts(b, ":");
            sval_json(b, &p->keys[i].v);
        }
        buf_puts(b, "}");
        break;
    case PE_VALUE:
        buf_puts(b, "v:");
        sval_json(b, &p->v);
        break;
    case PE_INDEX:
        buf_printf(b, "i:%" PRId64, p->idx);
        break;
    }
}

/* Go's %q: printable UTF-8 as it is, the rest escaped. */
static void go_quote(struct buf *b, const char *s, size_t len)
{
    buf_puts(b, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\r':
            esc = "\\r";
            break;
        }
        if (esc) {
            buf_puts(b, esc);
        } else if (c >= 0x20 && c < 0x7f) {
            buf_add(b, &s[i], 1);
        } else if (c >= 0x80 && json_utf8_len(s + i, len - i)) {
            size_t k = json_utf8_len(s + i, len - i);
            buf_add(b, s + i, k);
            i += k - 1;
        } else {
            buf_printf(b, "\\x%02x", c);
        }
    }
    buf_puts(b, "\"");
}

/* value.ToString. */
static void sval_string(struct buf *b, const struct sval *v)
{
    if (v->t == SV_STR)
        go_quote(b, v->s, v->len);
    else
        sval_json(b, v);
}

void pe_string(struct buf *b, const struct pe *p)
{
    switch (p->k) {
    case PE_FIELD:
        buf_puts(b, ".");
        buf_puts(b, p->name);
        break;
    case PE_KEY:
        buf_puts(b, "[");
        for (size_t i = 0; i < p->nkeys; i++) {
            buf_printf(b, "%s%s=", i ? "," : "", p->keys[i].name);
            sval_string(b, &p->keys[i].v);
        }
        buf_puts(b, "]");
        break;
    case PE_VALUE:
        buf_puts(b, "[=");
        sval_string(b, &p->v);
        buf_puts(b, "]");
        break;
    case PE_INDEX:
        buf_printf(b, "[%" PRId64 "]", p->idx);
        break;
    }
}

/* --------------------------------------------------------------- sets */

struct set *set_new(struct arena *a)
{
    return arena_alloc(a, sizeof(struct set));
}

/*
 * Index of p in n sorted elements of size stride starting with a struct pe
 * (members, or children whose pe comes first), or where it would go; *found.
 */
static size_t find_pe(const void *base, size_t n, size_t stride, const struct pe *p, int *found)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = pe_cmp((const struct pe *)((const char *)base + mid * stride), p);
        if (!r) {
            *found = 1;
            return mid;
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static size_t find_member(const struct set *s, const struct pe *p, int *found)
{
    return find_pe(s->m, s->nm, sizeof(*s->m), p, found);
}

static size_t find_child(const struct set *s, const struct pe *p, int *found)
{
    _Static_assert(offsetof(struct snode, pe) == 0, "find_pe reads a child's pe at its start");
    return find_pe(s->c, s->nc, sizeof(*s->c), p, found);
}

/* Room for one more element in an arena array of n elements of size sz. */
static void *agrow(struct arena *a, void *arr, size_t n, size_t *cap, size_t sz)
{
    if (n < *cap)
        return arr;
    size_t nc = *cap ? *cap * 2 : 4;
    void *na = arena_alloc(a, nc * sz);
    if (n)
        memcpy(na, arr, n * sz);
    *cap = nc;
    return na;
}

static void add_member(struct arena *a, struct set *s, const struct pe *p)
{
    int found = 0;
    size_t i = s->nm && pe_cmp(&s->m[s->nm - 1], p) < 0 ? s->nm : find_member(s, p, &found);
    if (found)
        return;
    s->m = agrow(a, s->m, s->nm, &s->capm, sizeof(*s->m));
    memmove(&s->m[i + 1], &s->m[i], (s->nm - i) * sizeof(*s->m));
    s->m[i] = *p;
    s->nm++;
}

/* SetNodeMap.Descend: the child set of p, created empty if absent. */
static struct set *descend(struct arena *a, struct set *s, const struct pe *p)
{
    int found = 0;
    size_t i = s->nc && pe_cmp(&s->c[s->nc - 1].pe, p) < 0 ? s->nc : find_child(s, p, &found);
    if (found)
        return s->c[i].s;
    s->c = agrow(a, s->c, s->nc, &s->capc, sizeof(*s->c));
    memmove(&s->c[i + 1], &s->c[i], (s->nc - i) * sizeof(*s->c));
    s->c[i].pe = *p;
    s->c[i].s = set_new(a);
    s->nc++;
    return s->c[i].s;
}

void set_insert(struct arena *a, struct set *s, const struct pe *p, size_t n)
{
    for (; n > 1; p++, n--)
        s = descend(a, s, p);
    if (n == 1)
        add_member(a, s, p);
}

int set_empty(const struct set *s)
{
    if (!s || s->nm)
        return !s;
    for (size_t i = 0; i < s->nc; i++)
        if (!set_empty(s->c[i].s))
            return 0;
    return 1;
}

int set_has_member(const struct set *s, const struct pe *p)
{
    int found = 0;
    if (s)
        find_member(s, p, &found);
    return found;
}

struct set *set_child(const struct set *s, const struct pe *p)
{
    int found = 0;
    size_t i = s ? find_child(s, p, &found) : 0;
    return found ? s->c[i].s : NULL;
}

int set_has(const struct set *s, const struct pe *p, size_t n)
{
    for (; s && n > 1; p++, n--)
        s = set_child(s, p);
    return n == 1 && set_has_member(s, p);
}

/* The members of x and y merged: op 0 union, 1 intersection, 2 x minus y. */
static void members_op(struct arena *a, struct set *o, const struct set *x, const struct set *y,
                       int op)
{
    size_t i = 0, j = 0;
    o->m = arena_alloc(a, (x->nm + y->nm + 1) * sizeof(*o->m));
    o->capm = x->nm + y->nm + 1;
    while (i < x->nm || j < y->nm) {
        int r = i >= x->nm ? 1 : j >= y->nm ? -1 : pe_cmp(&x->m[i], &y->m[j]);
        if (r < 0) {
            if (op != 1)
                o->m[o->nm++] = x->m[i];
            i++;
        } else if (r > 0) {
            if (op == 0)
                o->m[o->nm++] = y->m[j];
            j++;
        } else {
            if (op != 2)
                o->m[o->nm++] = x->m[i];
            i++;
            j++;
        }
    }
}

static void child_push(struct arena *a, struct set *o, const struct pe *p, struct set *s)
{
    o->c = agrow(a, o->c, o->nc, &o->capc, sizeof(*o->c));
    o->c[o->nc].pe = *p;
    o->c[o->nc].s = s;
    o->nc++;
}

struct set *set_union(struct arena *a, const struct set *x, const struct set *y)
{
    struct set *o = set_new(a);
    members_op(a, o, x, y, 0);
    size_t i = 0, j = 0;
    while (i < x->nc || j < y->nc) {
        int r = i >= x->nc ? 1 : j >= y->nc ? -1 : pe_cmp(&x->c[i].pe, &y->c[j].pe);
        if (r < 0) {
            child_push(a, o, &x->c[i].pe, x->c[i].s);
            i++;
        } else if (r > 0) {
            child_push(a, o, &y->c[j].pe, y->c[j].s);
            j++;
        } else {
            child_push(a, o, &x->c[i].pe, set_union(a, x->c[i].s, y->c[j].s));
            i++;
            j++;
        }
    }
    return o;
}

struct set *set_intersect(struct arena *a, const struct set *x, const struct set *y)
{
    struct set *o = set_new(a);
    members_op(a, o, x, y, 1);
    size_t i = 0, j = 0;
    while (i < x->nc && j < y->nc) {
        int r = pe_cmp(&x->c[i].pe, &y->c[j].pe);
        if (r < 0) {
            i++;
        } else if (r > 0) {
            j++;
        } else {
            struct set *s = set_intersect(a, x->c[i].s, y->c[j].s);
            if (!set_empty(s))
                child_push(a, o, &x->c[i].pe, s);
            i++;
            j++;
        }
    }
    return o;
}

/* Difference (rec 0: parent - child = parent, child - parent = {}) or
 * RecursiveDifference (rec 1: y's members take their whole subtree from x). */
static struct set *diff(struct arena *a, const struct set *x, const struct set *y, int rec)
{
    struct set *o = set_new(a);
    members_op(a, o, x, y, 2);
    size_t j = 0;
    for (size_t i = 0; i < x->nc; i++) {
        const struct snode *n = &x->c[i];
        if (rec && set_has_member(y, &n->pe))
            continue;
        while (j < y->nc && pe_cmp(&y->c[j].pe, &n->pe) < 0)
            j++;
        if (j < y->nc && !pe_cmp(&y->c[j].pe, &n->pe)) {
            struct set *d = diff(a, n->s, y->c[j].s, rec);
            if (!set_empty(d))
                child_push(a, o, &n->pe, d);
        } else {
            child_push(a, o, &n->pe, n->s);
        }
    }
    return o;
}

struct set *set_diff(struct arena *a, const struct set *x, const struct set *y)
{
    return diff(a, x, y, 0);
}

struct set *set_rdiff(struct arena *a, const struct set *x, const struct set *y)
{
    return diff(a, x, y, 1);
}

#define MAX_PATH 256

static void iterate(const struct set *s, struct pe *path, size_t n, set_iter_fn fn, void *arg)
{
    if (n >= MAX_PATH)
        return;
    for (size_t i = 0; i < s->nm; i++) {
        path[n] = s->m[i];
        fn(arg, path, n + 1);
    }
    for (size_t i = 0; i < s->nc; i++) {
        path[n] = s->c[i].pe;
        iterate(s->c[i].s, path, n + 1, fn, arg);
    }
}

void set_iterate(const struct set *s, set_iter_fn fn, void *arg)
{
    struct pe *path = xmalloc(MAX_PATH * sizeof(*path));
    iterate(s, path, 0, fn, arg);
    free(path);
}

/* ------------------------------------------------------------ FieldsV1 */

static void key_json(struct buf *b, const struct pe *p)
{
    struct buf k = {0};
    pe_serialize(&k, p);
    kobj_json_str(b, k.p, k.len);
    buf_free(&k);
}

/* emitContentsV1: members and children merged in order, "." first for a member with children. */
static void emit_v1(struct buf *b, const struct set *s, int self)
{
    size_t i = 0, j = 0;
    int first = 1;
    if (self && (s->nm || s->nc)) {
        buf_puts(b, "\".\":{}");
        first = 0;
    }
    while (i < s->nm || j < s->nc) {
        int r = i >= s->nm ? 1 : j >= s->nc ? -1 : pe_cmp(&s->m[i], &s->c[j].pe);
        if (!first)
            buf_puts(b, ",");
        first = 0;
        if (r < 0) {
            key_json(b, &s->m[i++]);
            buf_puts(b, ":{}");
            continue;
        }
        key_json(b, &s->c[j].pe);
        buf_puts(b, ":{");
        emit_v1(b, s->c[j].s, r == 0);
        buf_puts(b, "}");
        if (r == 0)
            i++;
        j++;
    }
}

void set_to_json(struct buf *b, const struct set *s)
{
    buf_puts(b, "{");
    emit_v1(b, s, 0);
    buf_puts(b, "}");
}

/*
 * FieldsV1 is read straight from its bytes (it is on every write): a small
 * JSON reader for what a field set holds, objects whose keys are path
 * elements, and the scalars inside those keys. Nesting is bounded.
 */
struct rd {
    struct arena *a;
    const char *p, *end;
    int depth;
    char *err;
};

static int rd_fail(struct rd *r, const char *what)
{
    if (!r->err)
        r->err = xasprintf("invalid field set: %s", what);
    return -1;
}

static void rd_ws(struct rd *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int rd_eat(struct rd *r, char c)
{
    rd_ws(r);
    if (r->p >= r->end || *r->p != c)
        return 0;
    r->p++;
    return 1;
}

static int hex4(const char *p, unsigned *out)
{
    *out = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (v < 0)
            return -1;
        *out = *out << 4 | (unsigned)v;
    }
    return 0;
}

/* A JSON string into the arena (NUL-terminated, *len bytes); NULL on error. */
static char *rd_str(struct rd *r, size_t *len)
{
    if (!rd_eat(r, '"')) {
        rd_fail(r, "expected a string");
        return NULL;
    }
    const char *q = r->p;
    while (q < r->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20 &&
           (unsigned char)*q < 0x80)
        q++;
    if (q < r->end && *q == '"') { /* no escapes: most keys */
        *len = (size_t)(q - r->p);
        char *out = arena_alloc(r->a, *len + 1);
        memcpy(out, r->p, *len);
        r->p = q + 1;
        return out;
    }
    struct buf b = {0};
    buf_add(&b, r->p, (size_t)(q - r->p));
    r->p = q;
    while (r->p < r->end && *r->p != '"') {
        unsigned char c = (unsigned char)*r->p++;
        if (c < 0x20)
            goto bad;
        if (c >= 0x80) { /* invalid UTF-8 reads as U+FFFD, as Go's decoder does */
            size_t k = json_utf8_len(r->p - 1, (size_t)(r->end - r->p + 1));
            buf_add(&b, k ? r->p - 1 : "\xef\xbf\xbd", k ? k : 3);
            r->p += k ? k - 1 : 0;
            continue;
        }
        if (c != '\\') {
            buf_add(&b, &c, 1);
            continue;
        }
        if (r->p >= r->end)
            goto bad;
        char e = *r->p++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (simple && e) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            buf_add(&b, &map[simple - "\"\\/bfnrt"], 1);
            continue;
        }
        unsigned cp, lo;
        if (e != 'u' || r->end - r->p < 4 || hex4(r->p, &cp) < 0)
            goto bad;
        r->p += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && r->end - r->p >= 6 && r->p[0] == '\\' &&
            r->p[1] == 'u' && hex4(r->p + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            r->p += 6;
        } else if (cp >= 0xd800 && cp < 0xe000) {
            cp = 0xfffd;
        }
        if (!cp)
            goto bad;
        char u[4];
        buf_add(&b, u, json_utf8_encode(u, cp));
    }
    if (r->p >= r->end)
        goto bad;
    r->p++;
    buf_puts(&b, "");
    *len = b.len;
    char *out = arena_alloc(r->a, b.len + 1);
    memcpy(out, b.p, b.len + 1);
    buf_free(&b);
    return out;
bad:
    buf_free(&b);
    rd_fail(r, "bad string");
    return NULL;
}

/* A scalar: string, number, true, false, null. */
static int rd_scalar(struct rd *r, struct sval *v)
{
    memset(v, 0, sizeof(*v));
    rd_ws(r);
    if (r->p >= r->end)
        return rd_fail(r, "expected a value");
    if (*r->p == '"') {
        v->t = SV_STR;
        return (v->s = rd_str(r, &v->len)) ? 0 : -1;
    }
    static const struct {
        const char *lit;
        enum svt t;
        int i;
    } lits[] = {{"true", SV_BOOL, 1}, {"false", SV_BOOL, 0}, {"null", SV_NULL, 0}};
    for (size_t i = 0; i < ARRAY_SIZE(lits); i++) {
        size_t n = strlen(lits[i].lit);
        if ((size_t)(r->end - r->p) >= n && !memcmp(r->p, lits[i].lit, n)) {
            r->p += n;
            v->t = lits[i].t;
            v->i = lits[i].i;
            return 0;
        }
    }
    /* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)? */
    const char *q = r->p;
    int frac = 0;
    if (q < r->end && *q == '-')
        q++;
    if (q >= r->end || *q < '0' || *q > '9')
        return rd_fail(r, "expected a value");
    if (*q == '0')
        q++;
    else
        while (q < r->end && *q >= '0' && *q <= '9')
            q++;
    if (q < r->end && *q == '.') {
        frac = 1;
        if (++q >= r->end || *q < '0' || *q > '9')
            return rd_fail(r, "bad number");
        while (q < r->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < r->end && (*q == 'e' || *q == 'E')) {
        frac = 1;
        q++;
        if (q < r->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= r->end || *q < '0' || *q > '9')
            return rd_fail(r, "bad number");
        while (q < r->end && *q >= '0' && *q <= '9')
            q++;
    }
    char num[64];
    if ((size_t)(q - r->p) >= sizeof(num))
        return rd_fail(r, "number too long");
    memcpy(num, r->p, (size_t)(q - r->p));
    num[q - r->p] = 0;
    r->p = q;
    errno = 0;
    long long iv = frac ? 0 : strtoll(num, NULL, 10);
    if (!frac && !errno) {
        v->t = SV_INT;
        v->i = iv;
    } else {
        v->t = SV_FLOAT;
        v->f = strtod(num, NULL);
        if (!isfinite(v->f))
            return rd_fail(r, "number out of range");
    }
    return 0;
}

/* Skips any JSON value (what a later version may put under an element it knows). */
static int rd_skip(struct rd *r)
{
    rd_ws(r);
    if (r->p >= r->end)
        return rd_fail(r, "expected a value");
    char open = *r->p;
    if (open != '{' && open != '[') {
        struct sval v;
        return rd_scalar(r, &v);
    }
    if (++r->depth > KSSA_MAX_DEPTH)
        return rd_fail(r, "nested too deep");
    r->p++;
    char close = open == '{' ? '}' : ']';
    if (!rd_eat(r, close)) {
        do {
            size_t n;
            if (open == '{' && (!rd_str(r, &n) || !rd_eat(r, ':')))
                return rd_fail(r, "expected a member");
            if (rd_skip(r) < 0)
                return -1;
        } while (rd_eat(r, ','));
        if (!rd_eat(r, close))
            return rd_fail(r, "unterminated value");
    }
    r->depth--;
    return 0;
}

static int cmp_kv(const void *x, const void *y)
{
    return strcmp(((const struct kv *)x)->name, ((const struct kv *)y)->name);
}

/* DeserializePathElement. 1: an element type this version does not know (skipped). */
static int pe_parse(struct arena *a, const char *s, size_t len, struct pe *out, char **err)
{
    memset(out, 0, sizeof(*out));
    if (len < 2 || s[1] != ':') {
        *err = xasprintf("invalid path element %s", s);
        return -1;
    }
    const char *body = s + 2;
    struct rd r = {a, body, s + len, 0, NULL};
    switch (s[0]) {
    case 'f':
        out->k = PE_FIELD;
        out->name = body;
        return 0;
    case 'i': {
        char *end;
        errno = 0;
        long long n = strtoll(body, &end, 10);
        if (!*body || *end || errno) {
            *err = xasprintf("invalid index in path element %s", s);
            return -1;
        }
        out->k = PE_INDEX;
        out->idx = n;
        return 0;
    }
    case 'v':
        out->k = PE_VALUE;
        if (rd_scalar(&r, &out->v) < 0)
            goto bad;
        break;
    case 'k': {
        out->k = PE_KEY;
        if (!rd_eat(&r, '{'))
            goto bad;
        size_t cap = 0;
        if (!rd_eat(&r, '}')) {
            do {
                size_t n;
                struct kv kv;
                if (!(kv.name = rd_str(&r, &n)) || !rd_eat(&r, ':') || rd_scalar(&r, &kv.v) < 0)
                    goto bad;
                out->keys = agrow(a, out->keys, out->nkeys, &cap, sizeof(*out->keys));
                out->keys[out->nkeys++] = kv;
            } while (rd_eat(&r, ','));
            if (!rd_eat(&r, '}'))
                goto bad;
        }
        /* stable, as fields.Sort: a repeated name keeps its order */
        for (size_t i = 1; i < out->nkeys; i++)
            for (size_t j = i; j > 0 && cmp_kv(&out->keys[j - 1], &out->keys[j]) > 0; j--) {
                struct kv t = out->keys[j];
                out->keys[j] = out->keys[j - 1];
                out->keys[j - 1] = t;
            }
        break;
    }
    default:
        return 1;
    }
    rd_ws(&r);
    if (r.p != r.end)
        goto bad;
    free(r.err);
    return 0;
bad:
    free(r.err);
    *err = xasprintf("invalid path element %s", s);
    return -1;
}

/* readIterV1: the children of one object; *member if it is also (or only) a member. */
static struct set *read_v1(struct rd *r, int *member)
{
    struct set *kids = NULL;
    *member = 0;
    if (!rd_eat(r, '{')) {
        rd_fail(r, "expected a JSON object in a field set");
        return NULL;
    }
    if (++r->depth > KSSA_MAX_DEPTH) {
        rd_fail(r, "nested too deep");
        return NULL;
    }
    if (!rd_eat(r, '}')) {
        do {
            size_t len;
            const char *key = rd_str(r, &len);
            if (!key || !rd_eat(r, ':'))
                return rd_fail(r, "expected a member"), NULL;
            struct pe p;
            int rc = !strcmp(key, ".") ? 2 : pe_parse(r->a, key, len, &p, &r->err);
            if (rc < 0)
                return NULL;
            if (rc > 0) { /* ".", or an element type this version does not know */
                if (rd_skip(r) < 0)
                    return NULL;
                *member |= rc == 2;
                continue;
            }
            int cm;
            struct set *g = read_v1(r, &cm);
            if (r->err)
                return NULL;
            if (!kids)
                kids = set_new(r->a);
            if (cm)
                add_member(r->a, kids, &p);
            if (g) {
                int found;
                size_t at = find_child(kids, &p, &found);
                if (found)
                    kids->c[at].s = g;
                else
                    *descend(r->a, kids, &p) = *g;
            }
        } while (rd_eat(r, ','));
        if (!rd_eat(r, '}')) {
            rd_fail(r, "unterminated object");
            return NULL;
        }
    }
    r->depth--;
    if (!kids)
        *member = 1;
    return kids;
}

struct set *set_from_v1(struct arena *a, const void *data, size_t len, char **err)
{
    struct rd r = {a, data, (const char *)data + len, 0, NULL};
    int member;
    struct set *s = read_v1(&r, &member);
    rd_ws(&r);
    if (!r.err && r.p != r.end)
        rd_fail(&r, "unexpected trailing data after JSON object");
    if (r.err) {
        *err = r.err;
        return NULL;
    }
    *err = NULL;
    return s ? s : set_new(a);
}
