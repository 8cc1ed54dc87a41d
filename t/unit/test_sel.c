/*
 * test_sel: label and field selectors (src/lib/sel.c): every operator,
 * matching, and the error texts with their columns.
 */
#include "config.h"
#include "sel.h"
#include "tap.h"
#include "util.h"

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
    return done_testing();
}
