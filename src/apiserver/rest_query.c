/*
 * rest_query: the REST API's query string, every parameter kept by name
 * (percent-decoded), and the Accept header's clauses and what they ask
 * for. See rest_int.h.
 */
#include "config.h"
#include "rest_int.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decodes s[0..n) ('+' is a space); malloc'd. */
static char *unescape(const char *s, size_t n)
{
    char *o = xmalloc(n + 1), *w = o;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *w++ = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
            i += 2;
        } else {
            *w++ = s[i] == '+' ? ' ' : s[i];
        }
    }
    *w = '\0';
    return o;
}

void rest_query_parse(const char *q, struct rquery *out)
{
    memset(out, 0, sizeof(*out));
    size_t cap = 0;
    while (*q) {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        size_t kl = eq ? (size_t)(eq - q) : n;
        if (n) {
            if (out->n == cap) {
                cap = cap ? 2 * cap : 8;
                out->keys = xrealloc(out->keys, cap * sizeof(*out->keys));
                out->vals = xrealloc(out->vals, cap * sizeof(*out->vals));
            }
            out->keys[out->n] = unescape(q, kl);
            out->vals[out->n] = eq ? unescape(eq + 1, n - kl - 1) : xstrdup("");
            out->n++;
        }
        q += n;
        if (*q == '&')
            q++;
    }
}

void rest_query_free(struct rquery *q)
{
    for (size_t i = 0; i < q->n; i++) {
        free(q->keys[i]);
        free(q->vals[i]);
    }
    free(q->keys);
    free(q->vals);
    memset(q, 0, sizeof(*q));
}

const char *rest_query_get(const struct rquery *q, const char *name)
{
    for (size_t i = q->n; i-- > 0;)
        if (!strcmp(q->keys[i], name))
            return q->vals[i];
    return NULL;
}

bool rest_query_true(const char *v)
{
    return v && (!strcmp(v, "true") || !strcmp(v, "1") || !*v);
}

int rest_query_int(const char *v, int64_t *out)
{
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || !*v || *end)
        return -1;
    *out = x;
    return 0;
}

bool rest_accept_next(const char **cur, char *type, size_t tn, char *params, size_t pn)
{
    while (*cur && **cur) {
        const char *c = *cur;
        size_t n = strcspn(c, ",");
        *cur = c + n + (c[n] == ',');
        size_t t = 0, p = 0;
        bool in_params = false;
        for (size_t i = 0; i < n; i++) {
            if (c[i] == ' ' || c[i] == '\t')
                continue;
            if (c[i] == ';' && !in_params) {
                in_params = true;
                continue;
            }
            if (!in_params && t + 1 < tn)
                type[t++] = c[i];
            else if (in_params && p + 1 < pn)
                params[p++] = c[i];
        }
        type[t] = '\0';
        params[p] = '\0';
        bool refused = false;
        for (const char *q = params; q && *q; q = strchr(q, ';') ? strchr(q, ';') + 1 : NULL)
            if (!strncmp(q, "q=", 2) && strtod(q + 2, NULL) == 0)
                refused = true;
        if (t && !refused)
            return true;
    }
    return false;
}

/* The value of parameter name in params ("k=v;k=v"), or NULL; *len its length. */
static const char *accept_param(const char *params, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (const char *p = params; p && *p; p = strchr(p, ';') ? strchr(p, ';') + 1 : NULL) {
        if (!strncmp(p, name, nl) && p[nl] == '=') {
            *len = strcspn(p + nl + 1, ";");
            return p + nl + 1;
        }
    }
    return NULL;
}

static bool param_is(const char *params, const char *name, const char *want)
{
    size_t n;
    const char *v = accept_param(params, name, &n);
    return v && n == strlen(want) && !strncmp(v, want, n);
}

/* 2 for star/star, 1 for application/star, 0 for a specific type. */
static int accept_wild(const char *type)
{
    return !strcmp(type, "*/*") ? 2 : !strcasecmp(type, "application/*") ? 1 : 0;
}

/* What a clause asks for that is served: an enum rest_fmt, or -1. */
static int accept_fmt(const char *type, const char *params)
{
    size_t n;
    bool json = !strcasecmp(type, "application/json") || accept_wild(type);
    if (accept_param(params, "as", &n)) { /* a transform: Tables, in JSON only */
        bool table = param_is(params, "as", "Table") && param_is(params, "g", "meta.k8s.io") &&
                     (param_is(params, "v", "v1") || param_is(params, "v", "v1beta1"));
        return json && table ? RF_TABLE : -1;
    }
    if (json)
        return RF_JSON;
    return !strcasecmp(type, "application/vnd.kubernetes.protobuf") ? RF_PB : -1;
}

/* q in thousandths (rest_accept_next has passed q=0 over). */
static int accept_q(const char *params)
{
    size_t n;
    const char *v = accept_param(params, "q", &n);
    double q = v ? strtod(v, NULL) : 1;
    return q > 1 ? 1000 : (int)(q * 1000 + 0.5);
}

enum rest_fmt rest_accept(const char *accept, bool *pb_only)
{
    if (accept && *accept && !strpbrk(accept, ",; \t")) { /* one bare type: most clients */
        int f = accept_fmt(accept, "");
        *pb_only = f == RF_PB;
        return f < 0 ? RF_JSON : (enum rest_fmt)f;
    }
    const char *cur = accept;
    char type[64], params[128];
    int best = -1, best_q = -1, best_wild = 3;
    bool json_ok = false;
    while (rest_accept_next(&cur, type, sizeof(type), params, sizeof(params))) {
        int f = accept_fmt(type, params);
        if (f < 0)
            continue;
        int q = accept_q(params), w = accept_wild(type);
        json_ok |= f == RF_JSON;
        if (q > best_q || (q == best_q && w < best_wild)) {
            best = f;
            best_q = q;
            best_wild = w;
        }
    }
    *pb_only = best == RF_PB && !json_ok;
    return best < 0 ? RF_JSON : (enum rest_fmt)best;
}
