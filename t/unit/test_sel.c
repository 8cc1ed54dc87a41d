/*
 * test_sel: label and field selectors (src/lib/sel.c): every operator,
 * matching, and the error texts with their columns.
 */
#include "config.h"
#include "sel.h"
#include "tap.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* a map as "k=v" strings */
static const char *get(void *arg, const char *key)
{
    const char **kv = arg;
    size_t kl = strlen(key);
    for (; *kv; kv++)
        if (!strncmp(*kv, key, kl) && (*kv)[kl] == '=')
            return *kv + kl + 1;
    return NULL;
}

static int m(const char *sel, const char **labels)
{
    sel_t *s;
    char *err;
    if (sel_parse_labels(sel, &s, &err) < 0) {
        diag("parse %s: %s", sel, err);
        free(err);
        return -1;
    }
    int r = sel_match(s, get, labels);
    sel_free(s);
    return r;
}

static int mf(const char *sel, const char **fields)
{
    sel_t *s;
    char *err;
    if (sel_parse_fields(sel, &s, &err) < 0) {
        diag("parse %s: %s", sel, err);
        free(err);
        return -1;
    }
    int r = sel_match(s, get, fields);
    sel_free(s);
    return r;
}

static void perr(const char *sel, const char *want)
{
    sel_t *s = NULL;
    char *err = NULL;
    int r = sel_parse_labels(sel, &s, &err);
    ok(r == -1 && s == NULL, "'%s' is an error", sel);
    is_str(err, want, sel);
    free(err);
}

/* ---- a reference evaluator for random selectors ---- */

enum { NKEYS = 12, NVALS = 24 };

struct rterm {
    int op; /* 0 =, 1 !=, 2 in, 3 notin, 4 exists, 5 !exists */
    int key;
    int vals[12];
    int nvals;
};

/* labels: value index per key, -1 absent */
static int ref_match(const struct rterm *t, int n, const int *labels)
{
    for (int i = 0; i < n; i++) {
        int v = labels[t[i].key], in = 0;
        for (int j = 0; j < t[i].nvals; j++)
            in |= t[i].vals[j] == v;
        int m = t[i].op == 0   ? v >= 0 && in
                : t[i].op == 1 ? v < 0 || !in
                : t[i].op == 2 ? v >= 0 && in
                : t[i].op == 3 ? v < 0 || !in
                : t[i].op == 4 ? v >= 0
                               : v < 0;
        if (!m)
            return 0;
    }
    return 1;
}

static void ref_text(const struct rterm *t, int n, char *out, size_t cap)
{
    static const char *ops[] = {"=", "!=", " in ", " notin "};
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        o += (size_t)snprintf(out + o, cap - o, "%s", i ? "," : "");
        if (t[i].op == 5)
            o += (size_t)snprintf(out + o, cap - o, "!");
        o += (size_t)snprintf(out + o, cap - o, "k%02d", t[i].key);
        if (t[i].op >= 4)
            continue;
        o += (size_t)snprintf(out + o, cap - o, "%s%s", ops[t[i].op], t[i].op >= 2 ? "(" : "");
        for (int j = 0; j < t[i].nvals; j++)
            o += (size_t)snprintf(out + o, cap - o, "%sv%02d", j ? "," : "", t[i].vals[j]);
        if (t[i].op >= 2)
            o += (size_t)snprintf(out + o, cap - o, ")");
    }
}

/* sel_match through lookups and sel_match_sorted through the merge agree
 * with the reference on random selectors (sets long enough for the binary
 * search, repeated keys, duplicate values) and random label sets. */
static void random_selectors(void)
{
    srand(7);
    int bad = 0, matched = 0;
    char text[4096], kv[NKEYS][32], *arr[NKEYS + 1];
    for (int round = 0; round < 3000; round++) {
        struct rterm t[8];
        int n = 1 + rand() % 8;
        for (int i = 0; i < n; i++) {
            t[i].op = rand() % 6;
            t[i].key = rand() % NKEYS;
            t[i].nvals = t[i].op < 2 ? 1 : t[i].op < 4 ? 1 + rand() % 12 : 0;
            for (int j = 0; j < t[i].nvals; j++)
                t[i].vals[j] = rand() % NVALS;
        }
        ref_text(t, n, text, sizeof(text));
        int labels[NKEYS], na = 0;
        struct sel_label sorted[NKEYS];
        int ns = 0;
        for (int k = 0; k < NKEYS; k++)
            labels[k] = rand() % 3 ? rand() % NVALS : -1;
        /* keys k00 .. k11: index order is strcmp order, as the merge wants */
        char names[NKEYS][16], vals[NKEYS][16];
        for (int k = 0; k < NKEYS; k++) {
            if (labels[k] < 0)
                continue;
            snprintf(names[k], sizeof(names[k]), "k%02d", k);
            snprintf(vals[k], sizeof(vals[k]), "v%02d", labels[k]);
            sorted[ns++] = (struct sel_label){names[k], vals[k]};
            snprintf(kv[na], sizeof(kv[na]), "k%02d=v%02d", k, labels[k]);
            arr[na] = kv[na];
            na++;
        }
        arr[na] = NULL;
        sel_t *s;
        char *err;
        if (sel_parse_labels(text, &s, &err) < 0) {
            diag("%s: %s", text, err);
            free(err);
            bad++;
            continue;
        }
        int want = ref_match(t, n, labels);
        int a = sel_match(s, get, arr), b = sel_match_sorted(s, sorted, (size_t)ns);
        if (a != want || b != want) {
            if (bad++ < 5)
                diag("%s: reference %d, lookups %d, merge %d", text, want, a, b);
        }
        matched += want;
        sel_free(s);
    }
    is_int(bad, 0, "3,000 random selectors: lookups and merge agree with the reference");
    ok(matched > 100 && matched < 2900, "both answers were exercised (%d matched)", matched);
}

/*
 * Every realloc of the code under test comes here (-Wl,--wrap=realloc): the
 * bytes asked for while counting. Arrays that double ask for about twice
 * their final size in all; arrays grown by one element per realloc ask for
 * about n^2 / 2 elements, which is what made parsing quadratic wherever
 * realloc cannot extend in place (under ASan always).
 */
void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);
static size_t realloc_bytes;
static int counting;

void *__wrap_realloc(void *p, size_t n)
{
    if (counting)
        realloc_bytes += n;
    return __real_realloc(p, n);
}

/* A selector of n terms "kN=vN" (malloc'd). */
static char *terms(size_t n)
{
    char *text = xmalloc(n * 24 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(text + o, "%sk%zu=v%zu", i ? "," : "", i, i);
    text[o] = 0;
    return text;
}

/*
 * Parsing does work linear in the selector's size: the bytes its arrays ask
 * realloc for stay within a small multiple of the text's length, however
 * long (counted, not timed: a slower machine changes nothing).
 */
static void big_selectors(void)
{
    sel_t *s;
    char *err;
    for (size_t n = 1000; n <= 400000; n *= 20) {
        char *text = terms(n);
        realloc_bytes = 0;
        counting = 1;
        int r = sel_parse_labels(text, &s, &err);
        counting = 0;
        size_t len = strlen(text);
        ok(r == 0 && sel_count(s) == n, "%zu terms parse", n);
        ok(realloc_bytes < 32 * len,
           "%zu terms: arrays asked realloc for %zu bytes, %.1fx the text", n, realloc_bytes,
           (double)realloc_bytes / (double)len);
        sel_free(s);
        free(text);
    }
    /* a 400,000-value set: sorted once, found by halves */
    char *set = xmalloc(400000 * 9 + 16);
    size_t o = (size_t)sprintf(set, "a in (");
    for (int i = 399999; i >= 0; i--)
        o += (size_t)sprintf(set + o, "x%d%s", i, i ? "," : ")");
    const char *a1[] = {"a=x0", NULL}, *a2[] = {"a=x200000", NULL}, *a3[] = {"a=y", NULL};
    realloc_bytes = 0;
    counting = 1;
    int r = sel_parse_labels(set, &s, &err);
    counting = 0;
    ok(r == 0, "400,000-value set parses");
    ok(realloc_bytes < 16 * o, "its array asked realloc for %.1fx the text",
       (double)realloc_bytes / (double)o);
    ok(sel_match(s, get, a1) && sel_match(s, get, a2) && !sel_match(s, get, a3),
       "its first, middle and absent values");
    sel_free(s);
    free(set);
}

int main(void)
{
    const char *web[] = {"app=web", "tier=front", "env=prod", "n=5", NULL};
    const char *none[] = {NULL};
    sel_t *s;
    char *err;

    ok(sel_parse_labels("", &s, &err) == 0 && sel_empty(s), "empty selector");
    ok(sel_match(s, get, web), "empty matches all");
    sel_free(s);
    ok(sel_parse_labels(NULL, &s, &err) == 0 && sel_empty(s), "NULL selector");
    sel_free(s);
    ok(sel_empty(NULL) && sel_match(NULL, get, web), "NULL sel_t matches");

    is_int(m("app=web", web), 1, "=");
    is_int(m("app==web", web), 1, "==");
    is_int(m("app=db", web), 0, "= mismatch");
    is_int(m("app!=db", web), 1, "!=");
    is_int(m("app!=web", web), 0, "!= mismatch");
    is_int(m("missing!=x", web), 1, "!= matches absent key");
    is_int(m("app in (db,web)", web), 1, "in");
    is_int(m("app in (db, cache)", web), 0, "in mismatch");
    is_int(m("app notin (db,cache)", web), 1, "notin");
    is_int(m("app notin (web)", web), 0, "notin mismatch");
    is_int(m("missing notin (x)", web), 1, "notin matches absent key");
    is_int(m("app", web), 1, "exists");
    is_int(m("missing", web), 0, "exists mismatch");
    is_int(m("!missing", web), 1, "!exists");
    is_int(m("!app", web), 0, "!exists mismatch");
    is_int(m("n>4", web), 1, "gt");
    is_int(m("n<4", web), 0, "lt");
    is_int(m("app=web,tier=front,env in (prod),!legacy", web), 1, "conjunction");
    is_int(m("app=web,tier=back", web), 0, "conjunction mismatch");
    is_int(m("  app = web , tier  !=  back ", web), 1, "whitespace");
    is_int(m("example.com/app=x", none), 0, "prefixed key parses");
    is_int(m("app=", none), 0, "empty value does not match absent");
    is_int(m("app in ()", none), 0, "in () parses");

    ok(sel_parse_labels("app=web,tier=front", &s, &err) == 0, "parse");
    is_str(sel_required_value(s, "app"), "web", "required value");
    ok(sel_required_value(s, "env") == NULL, "no required value");
    sel_free(s);

    perr("app=web,", "found '', expected: identifier after ',' (at column 9)");
    perr("=web", "found '=', expected: !, identifier, or 'end of string' (at column 1)");
    perr("app=web)", "found ')', expected: ',' or 'end of string' (at column 8)");
    perr("app in web", "unable to parse requirement: found 'web', expected: '(' (at column 8)");
    perr("app in (a b)",
         "unable to parse requirement: found 'b', expected: ',' or ')' (at column 11)");
    perr("app in (a", "unable to parse requirement: found '', expected: ',', ')' or identifier "
                      "(at column 10)");
    perr("app ~ x", "unable to parse requirement: found '~', expected: in, notin, =, ==, !=, "
                    "gt, lt (at column 5)");
    perr("app=a b", "found 'b', expected: ',' or 'end of string' (at column 7)");
    perr("!app=x", "unable to parse requirement: found '=', expected: ',' or 'end of string' "
                   "(at column 5)");
    perr("a b=c", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, "
                  "lt (at column 3)");
    perr("-app=x", "unable to parse requirement: invalid label key \"-app\": name part must "
                   "consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                   "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
                   "'123-abc', regex used for validation is "
                   "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') (at column 1)");
    perr("app=-x", "unable to parse requirement: invalid label value: \"-x\": a valid label must "
                   "be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                   "and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
                   "'my_value',  or '12345', regex used for validation is "
                   "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?') (at column 5)");
    perr("n>x", "unable to parse requirement: for 'gt', 'lt' operators, the value must be an "
                "integer (at column 3)");

    /* field selectors */
    const char *pod[] = {"metadata.name=mc1", "spec.nodeName=node1", "status.phase=Running", NULL};
    const char *unbound[] = {"metadata.name=mc2", "status.phase=Pending", NULL};
    is_int(mf("spec.nodeName=node1", pod), 1, "field =");
    is_int(mf("spec.nodeName==node1", pod), 1, "field ==");
    is_int(mf("spec.nodeName!=node1", pod), 0, "field !=");
    is_int(mf("spec.nodeName=", unbound), 1, "field = '' matches an unset field");
    is_int(mf("spec.nodeName=", pod), 0, "field = '' mismatch");
    is_int(mf("spec.nodeName=node1,status.phase!=Running", pod), 0, "field conjunction");
    is_int(mf("metadata.name=mc1,status.phase=Running", pod), 1, "field conjunction match");
    const char *esc[] = {"metadata.name=a,b", NULL};
    is_int(mf("metadata.name=a\\,b", esc), 1, "escaped comma");
    ok(sel_parse_fields("spec.nodeName=n1,status.phase=Running", &s, &err) == 0, "parse");
    is_str(sel_required_value(s, "spec.nodeName"), "n1", "field required value");
    sel_free(s);
    s = NULL;
    err = NULL;
    ok(sel_parse_fields("spec.nodeName", &s, &err) == -1, "field without operator fails");
    is_str(err, "invalid selector: 'spec.nodeName'; can't understand 'spec.nodeName' (at column 1)",
           "field error");
    free(err);
    ok(sel_parse_fields("a=b,=c", &s, &err) == -1, "field without key fails");
    is_str(err, "invalid selector: 'a=b,=c'; can't understand '=c' (at column 5)", "error column");
    free(err);
    ok(sel_parse_fields("a in (b)", &s, &err) == -1, "field selectors have no 'in'");
    free(err);

    ok(sel_parse_labels("b=1,a=2,b=3,a", &s, &err) == 0 && sel_count(s) == 4, "four terms");
    is_str(sel_required_value(s, "b"), "1", "required value: the first of its key");
    sel_free(s);
    random_selectors();
    big_selectors();
    return done_testing();
}
