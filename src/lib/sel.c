/*
 * sel: Kubernetes label and field selectors, parsed once into a flat array
 * of requirements and matched many times (the watch hub matches every
 * committed change against every interested watcher, so matching does no
 * allocation). The label grammar and the error texts follow
 * k8s.io/apimachinery/pkg/labels/selector.go; field selectors follow
 * k8s.io/apimachinery/pkg/fields/selector.go (terms split on unescaped ',',
 * operators "!=", "==", "=", '\' escapes). Errors add the 1-based column
 * where the problem starts, which Kubernetes does not, to help users.
 */
#include "config.h"
#include "sel.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum sel_op { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOTEXISTS, OP_GT, OP_LT };

struct sel_req {
    const char *key; /* into the selector's arena */
    enum sel_op op;
    const char **vals; /* OP_IN / OP_NOTIN: sorted, no duplicates (sel_settle) */
    size_t nvals, cap;
    long long num; /* OP_GT / OP_LT */
    size_t order;  /* position in the text: ties keep it when sorting by key */
};

/*
 * Requirements are sorted by key once parsed (as Kubernetes sorts them), so
 * that matching against labels sorted by key is one merge (sel_match_sorted),
 * and set values are sorted for binary search: a selector of n terms costs
 * O(n + labels) per object, not O(n x labels). Every key and value is a
 * slice of one arena, sized from the text up front: parsing allocates a
 * constant number of blocks whatever the selector's size.
 */
struct sel {
    struct sel_req *reqs;
    size_t n, cap;
    bool fields; /* field selector: an absent field reads as "" */
    char *arena; /* keys and values, NUL-terminated, back to back */
    size_t used, size;
};

/* Set values are searched in halves past this many; linear below. */
#define SEL_LINEAR_MAX 8

void sel_free(sel_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->reqs[i].vals);
    free(s->reqs);
    free(s->arena);
    free(s);
}

bool sel_empty(const sel_t *s)
{
    return !s || s->n == 0;
}

size_t sel_count(const sel_t *s)
{
    return s ? s->n : 0;
}

/*
 * An empty selector with room for the strings of text: every key and value
 * taken from it is at most its own length plus a NUL, and there are at most
 * strlen(text) + 1 of them (an empty value between every two commas), so
 * 2 x strlen + 2 bytes always do.
 */
static sel_t *sel_new(const char *text, bool fields)
{
    sel_t *s = xcalloc(1, sizeof(*s));
    s->fields = fields;
    s->size = 2 * strlen(text) + 2;
    s->arena = xmalloc(s->size);
    return s;
}

/* Copies v[0..len) into the arena; returns the copy. */
static const char *sel_str(sel_t *s, const char *v, size_t len)
{
    char *o = s->arena + s->used;
    memcpy(o, v, len);
    o[len] = 0;
    s->used += len + 1;
    return o;
}

/* A new requirement on key, a string already in the arena. */
static struct sel_req *req_new(sel_t *s, const char *key, enum sel_op op)
{
    size_t order = s->n;
    struct sel_req *r = XPUSH(s->reqs, s->n, s->cap);
    *r = (struct sel_req){.key = key, .op = op, .order = order};
    return r;
}

static struct sel_req *sel_add(sel_t *s, const char *key, size_t klen, enum sel_op op)
{
    return req_new(s, sel_str(s, key, klen), op);
}

static void req_add_val(sel_t *s, struct sel_req *r, const char *v, size_t len)
{
    *XPUSH(r->vals, r->nvals, r->cap) = sel_str(s, v, len);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int req_cmp(const void *a, const void *b)
{
    const struct sel_req *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

/* Once parsed: requirements by key (then text order), set values sorted and unique. */
static void sel_settle(sel_t *s)
{
    if (s->n > 1)
        qsort(s->reqs, s->n, sizeof(*s->reqs), req_cmp);
    for (size_t i = 0; i < s->n; i++) {
        struct sel_req *r = &s->reqs[i];
        if ((r->op != OP_IN && r->op != OP_NOTIN) || r->nvals < 2)
            continue;
        qsort(r->vals, r->nvals, sizeof(*r->vals), str_cmp);
        size_t j = 1;
        for (size_t k = 1; k < r->nvals; k++)
            if (strcmp(r->vals[k], r->vals[j - 1]))
                r->vals[j++] = r->vals[k];
        r->nvals = j;
    }
}

/* ---- label selector lexer (selector.go's Lexer) ---- */

enum tok {
    T_ERR,
    T_END,
    T_IDENT,
    T_NOTEXISTS, /* ! */
    T_EQ,        /* = */
    T_DEQ,       /* == */
    T_NE,        /* != */
    T_GT,
    T_LT,
    T_IN,
    T_NOTIN,
    T_COMMA,
    T_OPEN,
    T_CLOSE,
};

struct lex {
    const char *s;
    size_t pos;
    /* the last token */
    enum tok t;
    const char *lit;
    size_t len;
    size_t at; /* 0-based start of the token */
};

static int is_special(char c)
{
    return c == '!' || c == '=' || c == '>' || c == '<' || c == '(' || c == ')' || c == ',';
}

static enum tok lex_next(struct lex *l)
{
    const char *s = l->s;
    while (s[l->pos] && isspace((unsigned char)s[l->pos]))
        l->pos++;
    l->at = l->pos;
    l->lit = s + l->pos;
    char c = s[l->pos];
    if (!c) {
        l->len = 0;
        return l->t = T_END;
    }
    if (is_special(c)) {
        size_t n = 1;
        enum tok t;
        if (c == '!' && s[l->pos + 1] == '=')
            n = 2, t = T_NE;
        else if (c == '=' && s[l->pos + 1] == '=')
            n = 2, t = T_DEQ;
        else if (c == '!')
            t = T_NOTEXISTS;
        else if (c == '=')
            t = T_EQ;
        else if (c == '>')
            t = T_GT;
        else if (c == '<')
            t = T_LT;
        else if (c == '(')
            t = T_OPEN;
        else if (c == ')')
            t = T_CLOSE;
        else
            t = T_COMMA;
        l->pos += n;
        l->len = n;
        return l->t = t;
    }
    size_t n = 0;
    while (s[l->pos + n] && !isspace((unsigned char)s[l->pos + n]) && !is_special(s[l->pos + n]))
        n++;
    l->pos += n;
    l->len = n;
    if (n == 2 && !memcmp(l->lit, "in", 2))
        return l->t = T_IN;
    if (n == 5 && !memcmp(l->lit, "notin", 5))
        return l->t = T_NOTIN;
    return l->t = T_IDENT;
}

/* Peeks at the next token without consuming it. */
static enum tok lex_peek(struct lex *l, struct lex *out)
{
    *out = *l;
    return lex_next(out);
}

static int fail(char **err, const struct lex *l, const char *fmt, ...) PRINTF(3, 4);
static int fail(char **err, const struct lex *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = xvasprintf(fmt, ap);
    va_end(ap);
    if (err)
        *err = xasprintf("%s (at column %zu)", m, l->at + 1);
    free(m);
    return -1;
}

/* Label key: [prefix/]name, prefix a DNS-1123 subdomain (<= 253), name <= 63. */
static const char *label_name_err(const char *s, size_t n)
{
    if (n == 0)
        return "name part must be non-empty";
    if (n > 63)
        return "name part must be no more than 63 characters";
    if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        goto bad;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            goto bad;
    return NULL;
bad:
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
           "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
           "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
}

static const char *label_key_err(const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    if (!slash)
        return label_name_err(s, n);
    size_t pl = (size_t)(slash - s);
    if (pl == 0)
        return "prefix part must be non-empty";
    if (pl > 253)
        return "prefix part must be no more than 253 characters";
    for (size_t i = 0; i < pl; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
        int edge = i == 0 || i == pl - 1 || s[i - 1] == '.' || s[i + 1] == '.';
        if (!ok || (edge && !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))))
            return "prefix part a lowercase RFC 1123 subdomain must consist of lower case "
                   "alphanumeric characters, '-' or '.', and must start and end with an "
                   "alphanumeric character (e.g. 'example.com', regex used for validation is "
                   "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    }
    return label_name_err(slash + 1, n - pl - 1);
}

static const char *label_value_err(const char *s, size_t n)
{
    if (n == 0)
        return NULL;
    if (n > 63)
        return "must be no more than 63 characters";
    if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        goto bad;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            goto bad;
    return NULL;
bad:
    return "a valid label must be an empty string or consist of alphanumeric characters, '-', "
           "'_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  "
           "or 'my_value',  or '12345', regex used for validation is "
           "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
}

static int check_value(struct lex *l, char **err)
{
    const char *e = label_value_err(l->lit, l->len);
    if (e)
        return fail(err, l, "unable to parse requirement: invalid label value: \"%.*s\": %s",
                    (int)l->len, l->lit, e);
    return 0;
}

static int parse_requirement(sel_t *s, struct lex *l, char **err)
{
    bool notexists = false;
    lex_next(l);
    if (l->t == T_NOTEXISTS) {
        notexists = true;
        lex_next(l);
    }
    if (l->t != T_IDENT)
        return fail(err, l, "unable to parse requirement: found '%.*s', expected: identifier",
                    (int)l->len, l->lit);
    const char *e = label_key_err(l->lit, l->len);
    if (e)
        return fail(err, l, "unable to parse requirement: invalid label key \"%.*s\": %s",
                    (int)l->len, l->lit, e);
    const char *key = l->lit;
    size_t klen = l->len;
    struct lex p;
    enum tok nt = lex_peek(l, &p);
    if (nt == T_END || nt == T_COMMA) {
        sel_add(s, key, klen, notexists ? OP_NOTEXISTS : OP_EXISTS);
        return 0;
    }
    if (notexists)
        return fail(err, &p,
                    "unable to parse requirement: found '%.*s', expected: ',' or 'end "
                    "of string'",
                    (int)p.len, p.lit);
    lex_next(l);
    enum sel_op op;
    switch (l->t) {
    case T_EQ:
    case T_DEQ:
        op = OP_EQ;
        break;
    case T_NE:
        op = OP_NE;
        break;
    case T_GT:
        op = OP_GT;
        break;
    case T_LT:
        op = OP_LT;
        break;
    case T_IN:
        op = OP_IN;
        break;
    case T_NOTIN:
        op = OP_NOTIN;
        break;
    default:
        return fail(err, l,
                    "unable to parse requirement: found '%.*s', expected: in, notin, =, ==, "
                    "!=, gt, lt",
                    (int)l->len, l->lit);
    }
    struct sel_req *r = sel_add(s, key, klen, op);
    if (op == OP_IN || op == OP_NOTIN) {
        lex_next(l);
        if (l->t != T_OPEN)
            return fail(err, l, "unable to parse requirement: found '%.*s', expected: '('",
                        (int)l->len, l->lit);
        /* identifiers separated by commas; empty entries are "" */
        bool want_val = true;
        for (;;) {
            lex_next(l);
            if (l->t == T_IDENT) {
                if (!want_val)
                    return fail(err, l,
                                "unable to parse requirement: found '%.*s', expected: ',' or "
                                "')'",
                                (int)l->len, l->lit);
                if (check_value(l, err) < 0)
                    return -1;
                req_add_val(s, r, l->lit, l->len);
                want_val = false;
            } else if (l->t == T_COMMA) {
                if (want_val)
                    req_add_val(s, r, "", 0);
                want_val = true;
            } else if (l->t == T_CLOSE) {
                if (want_val)
                    req_add_val(s, r, "", 0);
                break;
            } else {
                return fail(err, l,
                            "unable to parse requirement: found '%.*s', expected: ',', ')' or "
                            "identifier",
                            (int)l->len, l->lit);
            }
        }
        return 0;
    }
    /* exact value: an identifier, or empty before ',' / end */
    nt = lex_peek(l, &p);
    if (nt == T_END || nt == T_COMMA) {
        if (op == OP_GT || op == OP_LT)
            return fail(err, &p,
                        "unable to parse requirement: for 'gt', 'lt' operators, exactly "
                        "one value is required");
        req_add_val(s, r, "", 0);
        return 0;
    }
    lex_next(l);
    if (l->t != T_IDENT && l->t != T_IN && l->t != T_NOTIN)
        return fail(err, l, "unable to parse requirement: found '%.*s', expected: identifier",
                    (int)l->len, l->lit);
    if (op != OP_GT && op != OP_LT && check_value(l, err) < 0)
        return -1;
    req_add_val(s, r, l->lit, l->len);
    if (op == OP_GT || op == OP_LT) {
        const char *v = r->vals[0];
        char *end;
        errno = 0;
        r->num = strtoll(v, &end, 10);
        if (errno || *end || end == v)
            return fail(err, l,
                        "unable to parse requirement: for 'gt', 'lt' operators, the value must "
                        "be an integer");
    }
    return 0;
}

int sel_parse_labels(const char *str, sel_t **out, char **err)
{
    if (err)
        *err = NULL;
    if (!str)
        str = "";
    sel_t *s = sel_new(str, false);
    struct lex l = {.s = str};
    struct lex p;
    enum tok t = lex_peek(&l, &p);
    if (t == T_END)
        goto done;
    for (;;) {
        t = lex_peek(&l, &p);
        if (t != T_IDENT && t != T_NOTEXISTS) {
            fail(err, &p, "found '%.*s', expected: !, identifier, or 'end of string'", (int)p.len,
                 p.lit);
            goto bad;
        }
        if (parse_requirement(s, &l, err) < 0)
            goto bad;
        lex_next(&l);
        if (l.t == T_END)
            break;
        if (l.t != T_COMMA) {
            fail(err, &l, "found '%.*s', expected: ',' or 'end of string'", (int)l.len, l.lit);
            goto bad;
        }
        t = lex_peek(&l, &p);
        if (t != T_IDENT && t != T_NOTEXISTS) {
            fail(err, &p, "found '%.*s', expected: identifier after ','", (int)p.len, p.lit);
            goto bad;
        }
    }
done:
    sel_settle(s);
    *out = s;
    return 0;
bad:
    sel_free(s);
    return -1;
}

/* ---- field selectors ---- */

/* Copies v[0..n) without the '\' escapes into the arena. */
static char *unescape(sel_t *s, const char *v, size_t n)
{
    char *o = s->arena + s->used;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '\\' && i + 1 < n)
            i++;
        o[j++] = v[i];
    }
    o[j] = 0;
    s->used += j + 1;
    return o;
}

int sel_parse_fields(const char *str, sel_t **out, char **err)
{
    if (err)
        *err = NULL;
    if (!str)
        str = "";
    sel_t *s = sel_new(str, true);
    if (!*str)
        goto done;
    size_t i = 0, len = strlen(str);
    while (i <= len) {
        /* one term up to an unescaped ',' */
        size_t start = i;
        while (i < len && str[i] != ',') {
            if (str[i] == '\\' && i + 1 < len)
                i++;
            i++;
        }
        const char *term = str + start;
        size_t tl = i - start;
        /* find the first unescaped operator */
        size_t k;
        enum sel_op op = OP_EQ;
        size_t oplen = 0;
        for (k = 0; k < tl; k++) {
            if (term[k] == '\\') {
                k++;
                continue;
            }
            if (term[k] == '!' && k + 1 < tl && term[k + 1] == '=') {
                op = OP_NE, oplen = 2;
                break;
            }
            if (term[k] == '=') {
                op = OP_EQ;
                oplen = (k + 1 < tl && term[k + 1] == '=') ? 2 : 1;
                break;
            }
        }
        if (!oplen || k == 0) {
            if (err)
                *err = xasprintf("invalid selector: '%s'; can't understand '%.*s' (at column %zu)",
                                 str, (int)tl, term, start + 1);
            goto bad;
        }
        char *key = unescape(s, term, k);
        /* keys are plain field paths */
        size_t kl = strlen(key);
        while (kl && isspace((unsigned char)key[kl - 1]))
            key[--kl] = 0;
        while (isspace((unsigned char)*key))
            key++;
        struct sel_req *r = req_new(s, key, op);
        *XPUSH(r->vals, r->nvals, r->cap) = unescape(s, term + k + oplen, tl - k - oplen);
        i++; /* past ',' (or the end) */
        if (i == len + 1)
            break;
    }
done:
    sel_settle(s);
    *out = s;
    return 0;
bad:
    sel_free(s);
    return -1;
}

/* ---- matching ---- */

static bool in_set(const struct sel_req *r, const char *v)
{
    if (r->nvals <= SEL_LINEAR_MAX) {
        for (size_t j = 0; j < r->nvals; j++)
            if (!strcmp(v, r->vals[j]))
                return true;
        return false;
    }
    return bsearch(&v, r->vals, r->nvals, sizeof(*r->vals), str_cmp) != NULL;
}

/* Whether v (NULL: absent) meets r. */
static bool req_match(const struct sel_req *r, const char *v)
{
    switch (r->op) {
    case OP_EXISTS:
        return v != NULL;
    case OP_NOTEXISTS:
        return v == NULL;
    case OP_EQ:
        return v && !strcmp(v, r->vals[0]);
    case OP_NE:
        return !v || strcmp(v, r->vals[0]);
    case OP_IN:
        return v && in_set(r, v);
    case OP_NOTIN:
        return !v || !in_set(r, v);
    case OP_GT:
    case OP_LT: {
        if (!v)
            return false;
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || *end || end == v)
            return false;
        return r->op == OP_GT ? n > r->num : n < r->num;
    }
    }
    return false;
}

bool sel_match(const sel_t *s, sel_get_fn get, void *arg)
{
    if (!s)
        return true;
    const char *v = NULL;
    for (size_t i = 0; i < s->n; i++) {
        const struct sel_req *r = &s->reqs[i];
        /* terms sorted by key: one lookup per key, however many terms name it */
        if (i == 0 || strcmp(r->key, s->reqs[i - 1].key)) {
            v = get(arg, r->key);
            if (!v && s->fields)
                v = "";
        }
        if (!req_match(r, v))
            return false;
    }
    return true;
}

bool sel_match_sorted(const sel_t *s, const struct sel_label *l, size_t n)
{
    if (!s)
        return true;
    size_t j = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct sel_req *r = &s->reqs[i];
        int c = 1;
        while (j < n && (c = strcmp(l[j].key, r->key)) < 0)
            j++;
        const char *v = j < n && c == 0 ? l[j].value : NULL;
        if (!v && s->fields)
            v = "";
        if (!req_match(r, v))
            return false;
    }
    return true;
}

const char *sel_required_value(const sel_t *s, const char *key)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (s->reqs[i].op == OP_EQ && !strcmp(s->reqs[i].key, key))
            return s->reqs[i].vals[0];
    return NULL;
}
