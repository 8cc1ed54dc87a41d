/*
 * test_jsonpath: kubectl's JSONPath in coraclectl (src/ctl/jsonpath.c): the
 * JSON reader, the template parser and its errors, every construct against
 * the outputs client-go's own tests expect, custom-columns cells, and a pod
 * written by kobj_emit (the tree -o jsonpath really sees). The JSON reader is
 * src/lib/json.c; here we check what ctl_jp_parse_json adds (key order,
 * limits).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "jsonpath.h"
#include "tap.h"
#include "kobj.h"

/* The output of tmpl on json, or "ERR: message" for a parse or execution error. */
static char *run(const char *tmpl, const char *json, int flags)
{
    json_t *v = NULL;
    struct ctl_jp *jp = NULL;
    char *err = NULL, *res;
    if (ctl_jp_parse_json(json, strlen(json), &v, &err) < 0) {
        res = xasprintf("JSON: %s", err);
        free(err);
        return res;
    }
    struct buf out = {0};
    if (ctl_jp_parse(tmpl, &jp, &err) < 0 || ctl_jp_exec(jp, v, flags, &out, &err) < 0) {
        res = xasprintf("ERR: %s", err);
        free(err);
        buf_free(&out);
    } else
        res = buf_take(&out);
    ctl_jp_free(jp);
    json_free(v);
    return res;
}

#define A CTL_JP_ALLOW_MISSING

static void check(const char *tmpl, const char *json, int flags, const char *want, const char *name)
{
    char *got = run(tmpl, json, flags);
    is_str(got, want, name);
    free(got);
}

/* client-go's TestKubernetes input. */
static const char nodes[] =
    "{\"kind\":\"List\",\"items\":["
    "{\"kind\":\"None\",\"metadata\":{\"name\":\"127.0.0.1\",\"labels\":{\"kubernetes.io/"
    "hostname\":\"127.0.0.1\"}},\"status\":{\"capacity\":{\"cpu\":\"4\"},\"ready\":true,"
    "\"addresses\":[{\"type\":\"LegacyHostIP\",\"address\":\"127.0.0.1\"}]}},"
    "{\"kind\":\"None\",\"metadata\":{\"name\":\"127.0.0.2\",\"labels\":{\"kubernetes.io/"
    "hostname\":\"127.0.0.2\"}},\"status\":{\"capacity\":{\"cpu\":\"8\"},\"ready\":false,"
    "\"addresses\":[{\"type\":\"LegacyHostIP\",\"address\":\"127.0.0.2\"},"
    "{\"type\":\"another\",\"address\":\"127.0.0.3\"}]}}],"
    "\"users\":[{\"name\":\"myself\",\"user\":{}},"
    "{\"name\":\"e2e\",\"user\":{\"username\":\"admin\",\"password\":\"secret\"}}]}";

/* client-go's TestTypesInput, as JSON. */
static const char types[] =
    "{\"bools\":[true,false,true,false],\"integers\":[1,2,3,4],\"floats\":[1.5,2.2,3.3,4.5],"
    "\"strings\":[\"one\",\"two\",\"three\",\"four\"],\"interfaces\":[true,\"one\",1,1.1],"
    "\"maps\":[{\"name\":\"one\",\"value\":1},{\"name\":\"two\",\"value\":2.02},"
    "{\"name\":\"three\",\"value\":3.03},{\"name\":\"four\",\"value\":4.04}]}";

static void test_json(void)
{
    json_t *v = NULL;
    char *err = NULL;
    const char *j = " {\"b\":[1,-2.5e3,true,false,null],\"a\":\"x\\\"\\u00e9\\ud83d\\ude00\\n\","
                    "\"c\":{}} ";
    ok(ctl_jp_parse_json(j, strlen(j), &v, &err) == 0, "json: parses");
    if (!v)
        return;
    is_int(v->type, JSON_OBJECT, "json: an object");
    is_int(v->n, 3, "json: three members");
    is_str(v->keys[0], "a", "json: keys sorted (a first)");
    is_str(v->kids[0]->str, "x\"\xc3\xa9\xf0\x9f\x98\x80\n",
           "json: escapes, \\u and surrogate pairs");
    is_str(v->kids[1]->kids[1]->str, "-2.5e3", "json: number text kept");
    is_int(v->kids[1]->kids[4]->type, JSON_NULL, "json: null");
    json_free(v);
    static const char *const bad[] = {"{",   "[1,]",  "{\"a\" 1}", "\"abc",
                                      "tru", "[1] x", "{1:2}",     "\"\\q\""};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        v = NULL;
        err = NULL;
        int rc = ctl_jp_parse_json(bad[i], strlen(bad[i]), &v, &err);
        ok(rc < 0 && err && !v, "json: refuses %s (%s)", bad[i], err ? err : "no error");
        free(err);
        json_free(v);
    }
    /* deep nesting is refused, not a stack overflow */
    char deep[4000];
    memset(deep, '[', sizeof(deep) - 1);
    deep[sizeof(deep) - 1] = '\0';
    err = NULL;
    v = NULL;
    ok(ctl_jp_parse_json(deep, strlen(deep), &v, &err) < 0 && err && strstr(err, "nested deeper"),
       "json: nesting limit");
    free(err);
    /* nested objects are sorted too, and a big List is not refused: more values
     * than json_parse's default limit (1M) */
    check("{.x[0]}", "{\"x\":[{\"b\":1,\"a\":2}]}", 0, "{\"a\":2,\"b\":1}",
          "json: nested objects sorted");
    size_t n = JSON_DEFAULT_MAX_NODES + 10;
    char *big = xmalloc(2 * n + 16);
    size_t len = (size_t)sprintf(big, "{\"items\":[0");
    for (size_t i = 1; i < n; i++) {
        big[len++] = ',';
        big[len++] = '0';
    }
    len += (size_t)sprintf(big + len, "]}");
    v = NULL;
    err = NULL;
    ok(ctl_jp_parse_json(big, len, &v, &err) == 0 && v && v->kids[0]->n == n,
       "json: more values than json_parse's default limit (%s)", err ? err : "ok");
    free(err);
    json_free(v);
    free(big);
}

static void test_parse_errors(void)
{
    static const struct {
        const char *tmpl, *err;
    } cases[] = {
        {"{.metadata.name", "unclosed action"},
        {"{.a\n}", "unclosed action"},
        {"{.a[0}", "unterminated array"},
        {"{.a[x]}", "invalid array index x"},
        {"{.a[1:2:3:4]}", "invalid array index 1:2:3:4"},
        {"{.a[-]}", "array index - is not a number"},
        {"{.a[?(@.x==1}", "unterminated filter"},
        {"{.a[?(@.x==1)}", "unclosed array expect ]"},
        {"{\"abc}", "unterminated quoted string"},
        {"{\"a\\qb\"}", "unquote string \"a\\qb\" error invalid syntax"},
        {"{#}", "unrecognized character in action: U+0023 '#'"},
        {"{.a\t}", "unrecognized character in action: U+0009"},
        {"{....a}", "invalid multiple recursive descent"},
        {"{1.2.3}", "cannot parse number 1.2.3"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct ctl_jp *jp = NULL;
        char *err = NULL;
        int rc = ctl_jp_parse(cases[i].tmpl, &jp, &err);
        ok(rc < 0 && !jp, "parse error %zu: %s", i, cases[i].err);
        is_str(err, cases[i].err, "  message");
        free(err);
        ctl_jp_free(jp);
    }
    /* these parse */
    static const char *const good[] = {
        "",         "plain text", "{}", "{ }", "{$}", "{@}", "{range .items[*]}{.x}{end}",
        "{.a\\.b}", "}{.a}}"};
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        struct ctl_jp *jp = NULL;
        char *err = NULL;
        ok(ctl_jp_parse(good[i], &jp, &err) == 0, "parses: '%s' %s", good[i], err ? err : "");
        free(err);
        ctl_jp_free(jp);
    }
}

static void test_constructs(void)
{
    /* text, fields, literals */
    check("hello jsonpath", "null", A, "hello jsonpath", "plain text");
    check("hello {.name}!", "{\"name\":\"jp\"}", A, "hello jp!", "field in text");
    check("{\"{\"}", "null", A, "{", "quoted brace");
    check("{.a}{\"\\t\"}{.b}{'\\n'}", "{\"a\":1,\"b\":true}", A, "1\ttrue\n",
          "string literals with escapes, numbers and bools as text");
    check("{.m}", "{\"m\":{\"b\":\"<x>\",\"a\":[1,\"s\"]}}", A,
          "{\"a\":[1,\"s\"],\"b\":\"\\u003cx\\u003e\"}",
          "maps as compact JSON, sorted keys, HTML-safe as Go");
    check("{$.name}{@.name}", "{\"name\":\"r\"}", A, "rr", "$ and @");
    check("{.a.b\\.c/d}", "{\"a\":{\"b.c/d\":\"esc\"}}", A, "esc", "escaped dot in a key");
    check("{.items[0].metadata.labels.kubernetes\\.io/hostname}", nodes, A, "127.0.0.1",
          "client-go: hostname");
    /* arrays (client-go's TestTypesInput) */
    check("{ .bools }", types, A, "[true,false,true,false]", "list as JSON");
    check("{ .bools[-1] }", types, A, "false", "[-1]");
    check("{ .integers[-2] }", types, A, "3", "[-2]");
    check("{ .integers[0:2] }", types, A, "1 2", "[0:2] joined by a space");
    check("{ .integers[:2] }", types, A, "1 2", "[:2]");
    check("{ .integers[:4:2] }", types, A, "1 3", "[:4:2]");
    check("{ .integers[1:] }", types, A, "2 3 4", "[1:]");
    check("{ .integers[-1:] }", types, A, "4", "[-1:]");
    check("{ .integers[0:-1] }", types, A, "1 2 3", "[0:-1]");
    check("{ .integers[2:2] }", types, A, "", "empty slice");
    check("{ .strings[*] }", types, A, "one two three four", "[*]");
    check("{ .strings.* }", types, A, "one two three four", ".*");
    check("{ .floats[-2] }", types, A, "3.3", "float");
    check("{ .interfaces[0:2] }", types, A, "true one", "mixed list");
    check("{ .maps[::2] }", types, A,
          "{\"name\":\"one\",\"value\":1} {\"name\":\"three\",\"value\":3.03}", "[::2] of maps");
    check("{[1,3,4]}", "[0,1,2,3,4]", A, "1 3 4", "union of indexes");
    check("{[0]['id']}", "[{\"id\":\"i1\"}]", A, "i1", "['key']");
    /* client-go's TestKubernetes */
    check("{range .items[*]}{.metadata.name}, {end}{.kind}", nodes, A, "127.0.0.1, 127.0.0.2, List",
          "range item");
    check("{range .items[*]}{.metadata.name}{\"\\t\"}{end}", nodes, A, "127.0.0.1\t127.0.0.2\t",
          "range with a quoted tab");
    check("{.items[*].status.addresses[*].address}", nodes, A, "127.0.0.1 127.0.0.2 127.0.0.3",
          "nested [*]");
    check("{range .items[*]}{range .status.addresses[*]}{.address}, {end}{end}", nodes, A,
          "127.0.0.1, 127.0.0.2, 127.0.0.3, ", "double range");
    check("{.items[*]['metadata.name', 'status.capacity']}", nodes, A,
          "127.0.0.1 127.0.0.2 {\"cpu\":\"4\"} {\"cpu\":\"8\"}", "union of paths");
    check("{range .items[*]}[{.metadata.name}, {.status.capacity}] {end}", nodes, A,
          "[127.0.0.1, {\"cpu\":\"4\"}] [127.0.0.2, {\"cpu\":\"8\"}] ", "range with maps");
    check("{.users[?(@.name==\"e2e\")].user.password}", nodes, A, "secret", "filter ==");
    check("{.items[?(@.metadata.labels.kubernetes\\.io/hostname==\"127.0.0.1\")].kind}", nodes, A,
          "None", "filter on an escaped key");
    check("{.items[?(@..ready==true)].metadata.name}", nodes, A, "127.0.0.1", "filter on a bool");
    check("{..name}", nodes, A, "127.0.0.1 127.0.0.2 myself e2e", "recursive descent");
    check("{...name}", nodes, A, "127.0.0.1 127.0.0.2 myself e2e", "... is .. then .");
    check("{..}", "[1,2,3]", A, "[1,2,3]", "{..} alone");
    check("{range .items[*]}{.metadata.name}{end}", "{\"items\":[]}", A, "", "empty range");
    check("{range .items[*]}{range .x[*]}{.y}{end}{end}", "{\"items\":[]}", A, "",
          "empty nested range");
    check("{range .a[*]}{@} {end}", "{\"a\":[\"x\",\"y\"]}", A, "x y ", "range with @");
    check("{range .a[*]}{@}", "{\"a\":[\"x\",\"y\"]}", A, "xy",
          "range without end runs to the end");
    /* filters */
    const char *pts =
        "[{\"id\":\"i1\",\"x\":4},{\"id\":\"i2\",\"x\":-2,\"z\":1},{\"id\":\"i3\",\"x\":8},"
        "{\"id\":\"i5\",\"x\":0,\"z\":1}]";
    check("{[?(@.z)].id}", pts, A, "i2 i5", "exists filter");
    check("{[?(@.x<1)].id}", pts, A, "i2 i5", "filter <");
    check("{[?(@.x>4)].id}", pts, A, "i3", "filter >");
    check("{[?(@.x>=4)].id}", pts, A, "i1 i3", "filter >=");
    check("{[?(@.x<=0)].id}", pts, A, "i2 i5", "filter <=");
    check("{[?(@.id!='i1')].id}", pts, A, "i2 i3 i5", "filter != with single quotes");
    check("{[?(@.id > \"i2\")].id}", pts, A, "i3 i5", "string order, spaces around the operator");
    check("{[?(@<5)]}", "[2,6,3,7]", A, "2 3", "filter on scalars");
    check("{.conditions[?(@.type==\"Ready\")].status}",
          "{\"conditions\":[{\"type\":\"Initialized\",\"status\":\"True\"},"
          "{\"type\":\"Ready\",\"status\":\"False\"}]}",
          A, "False", "the Ready condition");
    /* missing keys */
    check("{.hello}", nodes, A, "", "missing key: nothing");
    check("before-{.hello}after", nodes, A, "before-after", "missing key inside text");
    check("{range .items[*]}{.nope}{.kind}{end}", nodes, 0, "ERR: nope is not found",
          "missing key without allow: error");
    check("{.hello}", nodes, 0, "ERR: hello is not found", "client-go: hello is not found");
    /* execution errors (client-go's failStoreTests) */
    check("{hello}", nodes, A, "ERR: unrecognized identifier hello", "unknown identifier");
    check("{.kind[0]}", nodes, A, "ERR: string is not array or slice", "index into a string");
    check("{.metadata[0]}", "{\"metadata\":{}}", A,
          "ERR: map[string]interface {} is not array or slice", "index into a map");
    check("{.items[?(@.x<>10)]}", "{\"items\":[{\"x\":1}]}", A,
          "ERR: unrecognized filter operator <>", "bad filter operator");
    check("{range .items[*]}{@}{end}{end}", nodes, A, "ERR: not in range, nothing to end",
          "redundant end");
    check("{.items[5]}", nodes, A, "ERR: array index out of bounds: index 5, length 2",
          "index out of range");
    check("{.items[0:5]}", nodes, A, "ERR: array index out of bounds: index 4, length 2",
          "slice end out of range");
    check("{.items[::0]}", nodes, A, "ERR: step must be > 0", "step 0");
    check("{.items[?(@.kind==1)]}", nodes, A, "ERR: incompatible types for comparison",
          "string == number");
    check("{.items[?(@.status<1)]}", nodes, A, "ERR: invalid type for comparison", "map < number");
    check("{.items[?(@.status.ready<true)]}", nodes, A, "ERR: invalid type for comparison",
          "bool ordered");
    check("{.items.x[?(@.a)]}", "{\"items\":{\"x\":\"s\"}}", A,
          "ERR: s is not array or slice and cannot be filtered", "filter on a string");
    check("{.a}{.b[3]}", "{\"a\":\"printed?\",\"b\":[]}", A,
          "ERR: array index out of bounds: index 3, length 0", "an error prints nothing at all");
    /* jsonpath-as-json */
    check("{.items[*].metadata.name}", nodes, A | CTL_JP_AS_JSON,
          "[\n    \"127.0.0.1\",\n    \"127.0.0.2\"\n]\n", "as-json: a list per {}");
    check("{.items[0].status.capacity}{.nope}", nodes, A | CTL_JP_AS_JSON,
          "[\n    {\n        \"cpu\": \"4\"\n    }\n]\n[]\n", "as-json: indented maps, empty list");
}

static void cell(const char *expr, const char *json, const char *want, const char *name)
{
    char *tmpl = NULL, *err = NULL;
    json_t *v = NULL;
    struct ctl_jp *jp = NULL;
    struct buf out = {0};
    if (ctl_jp_parse_json(json, strlen(json), &v, &err) < 0 ||
        ctl_jp_relaxed(expr, &tmpl, &err) < 0 || ctl_jp_parse(tmpl, &jp, &err) < 0 ||
        ctl_jp_cell(jp, v, &out, &err) < 0) {
        buf_free(&out);
        buf_printf(&out, "ERR: %s", err);
    }
    char *got = buf_take(&out);
    is_str(got, want, name);
    free(got);
    free(tmpl);
    free(err);
    ctl_jp_free(jp);
    json_free(v);
}

static void test_columns(void)
{
    static const struct {
        const char *in, *out;
    } relaxed[] = {{".metadata.name", "{.metadata.name}"},
                   {"metadata.name", "{.metadata.name}"},
                   {"{.metadata.name}", "{.metadata.name}"},
                   {"{metadata.name}", "{.metadata.name}"},
                   {".spec.containers[*].image", "{.spec.containers[*].image}"},
                   {"", ""}};
    for (size_t i = 0; i < ARRAY_SIZE(relaxed); i++) {
        char *tmpl = NULL, *err = NULL;
        ok(ctl_jp_relaxed(relaxed[i].in, &tmpl, &err) == 0, "relaxed: '%s'", relaxed[i].in);
        is_str(tmpl, relaxed[i].out, "  as kubectl's RelaxedJSONPathExpression");
        free(tmpl);
        free(err);
    }
    char *tmpl = NULL, *err = NULL;
    ok(ctl_jp_relaxed("{.a}.b}", &tmpl, &err) < 0 && !tmpl, "relaxed: braces inside refused");
    is_str(err,
           "unexpected path string, expected a 'name1.name2' or '.name1.name2' or "
           "'{name1.name2}' or '{.name1.name2}'",
           "  kubectl's message");
    free(err);

    const char *pod =
        "{\"metadata\":{\"name\":\"web\",\"labels\":{\"tier\":\"fe\",\"app\":\"web\"}},"
        "\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"nginx\"},"
        "{\"name\":\"b\",\"image\":\"busybox\",\"ports\":[{\"containerPort\":80}]}]},"
        "\"status\":{\"phase\":\"\"}}";
    cell(".metadata.name", pod, "web", "cell: a string");
    cell(".spec.nodeName", pod, "<none>", "cell: missing is <none>");
    cell(".status.phase", pod, "", "cell: an empty string stays empty");
    cell(".spec.containers[*].image", pod, "nginx,busybox", "cell: several values joined by ,");
    cell(".metadata.labels", pod, "map[app:web tier:fe]", "cell: a map as Go's %v");
    cell(".spec.containers[1].ports", pod, "[map[containerPort:80]]", "cell: a list as Go's %v");
    cell(".spec.containers[5].name", pod, "ERR: array index out of bounds: index 5, length 2",
         "cell: errors are errors");
}

/* The tree a real object gives: kobj_emit's JSON, as -o json prints it. */
static void test_emitted_pod(void)
{
    const char *yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: nginx\n  labels:\n"
                       "    app: web\n  creationTimestamp: \"2026-11-28T11:57:00Z\"\nspec:\n"
                       "  containers:\n  - name: c\n    image: nginx:1.14.2\n    resources:\n"
                       "      limits:\n        cpu: 500m\n        memory: 64Mi\n"
                       "    ports:\n    - containerPort: 80\nstatus:\n  phase: Running\n"
                       "  conditions:\n  - type: Ready\n    status: \"True\"\n";
    struct kobjs o = {0};
    char *err = NULL;
    if (kobj_parse("t.yaml", yaml, strlen(yaml), &o, &err) < 0 || o.n != 1) {
        ok(0, "test pod parses: %s", err ? err : "?");
        free(err);
        return;
    }
    char *json = kobj_emit(o.v[0].kind, o.v[0].msg, KOBJ_FMT_JSON_COMPACT);
    check("{.status.phase}", json, A, "Running", "pod: phase");
    check("{.metadata.creationTimestamp}", json, A, "2026-11-28T11:57:00Z", "pod: RFC 3339 time");
    check("{.spec.containers[0].resources.limits.cpu}", json, A, "500m",
          "pod: a quantity is a string");
    check("{.spec.containers[0].ports[0].containerPort}", json, A, "80", "pod: an int");
    check("{.metadata.labels}", json, A, "{\"app\":\"web\"}", "pod: labels as kubectl prints maps");
    check("{.status.conditions[?(@.type==\"Ready\")].status}", json, A, "True",
          "pod: Ready condition");
    check("{.kind}/{.apiVersion}", json, A, "Pod/v1", "pod: kind and apiVersion");
    free(json);
    json = kobj_emit_list(o.v[0].kind, &o.v[0].msg, 1, KOBJ_FMT_JSON_COMPACT);
    check("{.kind} {.apiVersion} {.items[*].metadata.name} {.metadata}", json, A,
          "List v1 nginx {\"resourceVersion\":\"\"}", "list: the List object");
    free(json);
    /* protobuf does not check UTF-8, so a stored value may hold any bytes: the
     * emitter writes U+FFFD for them (as Go does) and the JSON still parses */
    Coracle__V1__Pod *pod = (Coracle__V1__Pod *)o.v[0].msg;
    free(pod->metadata->labels[0]->value);
    pod->metadata->labels[0]->value = xstrdup("a\xff\xc3(\xed\xa0\x80z\xc3\xa9");
    json = kobj_emit(o.v[0].kind, o.v[0].msg, KOBJ_FMT_JSON_COMPACT);
    check("{.metadata.labels.app}", json, A,
          "a\xef\xbf\xbd\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz\xc3\xa9",
          "pod: invalid UTF-8 becomes U+FFFD per bad byte");
    free(json);
    /* the same in YAML (libyaml refuses invalid UTF-8) */
    char *y = kobj_emit(o.v[0].kind, o.v[0].msg, KOBJ_FMT_YAML);
    const char *want = "a\xef\xbf\xbd\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz\xc3\xa9";
    ok(y && strstr(y, want) != NULL, "pod: -o yaml writes U+FFFD for invalid UTF-8 too");
    if (!y || !strstr(y, want))
        diag("%s", y ? y : "(null)");
    free(y);
    kobjs_free(&o);
}

static void test_go_quote(void)
{
    struct buf b = {0};
    ctl_jp_go_quote(&b, "{.a}{\"\\t\"}\n");
    is_str(b.p, "\"{.a}{\\\"\\\\t\\\"}\\n\"", "go %q of a template");
    buf_free(&b);
}

/* A template literal may hold a NUL ("\x00"); all of it is printed. */
static void test_nul_literal(void)
{
    struct ctl_jp *jp = NULL;
    struct buf out = {0};
    char *err = NULL;
    json_t null = {.type = JSON_NULL};
    ok(ctl_jp_parse("{\"a\\x00bcdefghijklmnop\"}", &jp, &err) == 0 &&
           ctl_jp_exec(jp, &null, 0, &out, &err) == 0 && out.len == 17 &&
           !memcmp(out.p, "a\0bcdefghijklmnop", 17),
       "a NUL in a string literal is printed with what follows it");
    free(err);
    buf_free(&out);
    ctl_jp_free(jp);
}

int main(void)
{
    test_json();
    test_parse_errors();
    test_constructs();
    test_columns();
    test_emitted_pod();
    test_go_quote();
    test_nul_literal();
    return done_testing();
}
