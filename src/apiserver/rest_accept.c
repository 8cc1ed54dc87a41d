/*
 * rest_accept: which of the REST API's encodings an Accept header asks
 * for, as Kubernetes negotiates (apiserver endpoints/handlers/negotiation):
 * the media ranges by q (stable: the client's order among equals, a
 * wildcard after a specific type), the first one served wins. See
 * rest_int.h.
 */
#include "config.h"
#include "rest_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_RANGES 16

struct mrange {
    const char *type; /* "application/json", into the copy; "*" parts as given */
    const char *as, *g, *v;
    int q; /* thousandths */
    int order;
};

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* q=0.5 in thousandths; malformed counts as 1 (Go's goautoneg does likewise). */
static int qvalue(const char *v)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || d < 0 || d > 1)
        return 1000;
    return (int)(d * 1000 + 0.5);
}

/* One media range "type/sub;k=v;..." (cut in place). */
static void parse_range(char *s, int order, struct mrange *m)
{
    *m = (struct mrange){.q = 1000, .order = order};
    char *save = NULL;
    char *t = strtok_r(s, ";", &save);
    m->type = t ? trim(t) : "";
    for (char *p; (p = strtok_r(NULL, ";", &save));) {
        char *eq = strchr(p, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *k = trim(p), *v = trim(eq + 1);
        if (!strcmp(k, "q"))
            m->q = qvalue(v);
        else if (!strcmp(k, "as"))
            m->as = v;
        else if (!strcmp(k, "g"))
            m->g = v;
        else if (!strcmp(k, "v"))
            m->v = v;
    }
}

static int wild(const struct mrange *m)
{
    return !strcmp(m->type, "*/*") ? 2 : !strcasecmp(m->type, "application/*") ? 1 : 0;
}

static int range_cmp(const void *a, const void *b)
{
    const struct mrange *x = a, *y = b;
    if (x->q != y->q)
        return y->q - x->q;
    if (wild(x) != wild(y))
        return wild(x) - wild(y);
    return x->order - y->order;
}

/* What m asks for and coracle serves: an enum rest_fmt, or -1. */
static int served(const struct mrange *m)
{
    bool json = !strcasecmp(m->type, "application/json") || wild(m);
    if (m->as) {
        bool table = !strcmp(m->as, "Table") && m->g && !strcmp(m->g, "meta.k8s.io") && m->v &&
                     (!strcmp(m->v, "v1") || !strcmp(m->v, "v1beta1"));
        return json && table ? RF_TABLE : -1; /* Tables in JSON only; no other transform */
    }
    if (json)
        return RF_JSON;
    return !strcasecmp(m->type, "application/vnd.kubernetes.protobuf") ? RF_PB : -1;
}

enum rest_fmt rest_accept(const char *accept, bool *pb_only)
{
    *pb_only = false;
    if (!accept || !*accept)
        return RF_JSON;
    if (!strpbrk(accept, ",; \t")) { /* one bare type, what most clients send: no parsing */
        struct mrange m = {.type = accept};
        int f = served(&m);
        *pb_only = f == RF_PB;
        return f < 0 ? RF_JSON : (enum rest_fmt)f;
    }
    char *copy = xstrdup(accept), *save = NULL;
    struct mrange r[MAX_RANGES];
    size_t n = 0;
    for (char *p = strtok_r(copy, ",", &save); p && n < MAX_RANGES;
         p = strtok_r(NULL, ",", &save)) {
        parse_range(p, (int)n, &r[n]);
        if (*r[n].type)
            n++;
    }
    qsort(r, n, sizeof(*r), range_cmp);
    int fmt = -1;
    bool json_ok = false;
    for (size_t i = 0; i < n; i++) {
        int f = r[i].q > 0 ? served(&r[i]) : -1;
        if (fmt < 0)
            fmt = f;
        json_ok |= f == RF_JSON;
    }
    free(copy);
    *pb_only = fmt == RF_PB && !json_ok;
    return fmt < 0 ? RF_JSON : (enum rest_fmt)fmt;
}
