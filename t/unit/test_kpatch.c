/*
 * test_kpatch: the three PATCH formats (src/lib/kpatch.c): RFC 6902's and
 * RFC 7386's appendix examples, strategic merge patch as Kubernetes applies
 * it to pods (merge keys, directives, the shape kubectl apply sends), the
 * errors with their status and wording, and the limits.
 */
#include "config.h"
#include "buf.h"
#include "coracle.pb-c.h"
#include "kpatch.h"
#include "tap.h"
#include "util.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define POD (&coracle__v1__pod__descriptor)

/* Do two JSON texts hold the same value (object keys in any order, lists in order)? */
static int same_json(const char *a, const char *b)
{
    json_object *x = json_tokener_parse(a), *y = json_tokener_parse(b);
    int eq = (x || !strcmp(a, "null")) && (y || !strcmp(b, "null")) && json_object_equal(x, y);
    json_object_put(x);
    json_object_put(y);
    return eq;
}

static char *apply(enum kpatch_type t, const ProtobufCMessageDescriptor *d, const char *doc,
                   const char *patch, int *status, char **err)
{
    size_t n;
    return kpatch_apply(t, d, doc, strlen(doc), patch, strlen(patch), &n, status, err);
}

/* patch applied to doc gives want. */
static void check(const char *name, enum kpatch_type t, const ProtobufCMessageDescriptor *d,
                  const char *doc, const char *patch, const char *want)
{
    int status = 0;
    char *err = NULL;
    char *got = apply(t, d, doc, patch, &status, &err);
    if (!ok(got && same_json(got, want), "%s", name))
        diag("got %s (%d %s), want %s", got ? got : "NULL", status, err ? err : "", want);
    free(got);
    free(err);
}

/* patch applied to doc fails with status and a message starting with msg. */
static void fails(const char *name, enum kpatch_type t, const ProtobufCMessageDescriptor *d,
                  const char *doc, const char *patch, int want_status, const char *msg)
{
    int status = 0;
    char *err = NULL;
    char *got = apply(t, d, doc, patch, &status, &err);
    if (!ok(!got && status == want_status && err && !strncmp(err, msg, strlen(msg)), "%s", name))
        diag("got %s, %d \"%s\"; want %d \"%s...\"", got ? got : "NULL", status, err ? err : "",
             want_status, msg);
    free(got);
    free(err);
}

static void test_type_of(void)
{
    is_int(kpatch_type_of("application/json-patch+json"), KPATCH_JSON, "json-patch+json");
    is_int(kpatch_type_of("application/merge-patch+json; charset=utf-8"), KPATCH_MERGE,
           "merge-patch+json with a parameter");
    is_int(kpatch_type_of("application/strategic-merge-patch+json"), KPATCH_STRATEGIC,
           "strategic-merge-patch+json");
    is_int(kpatch_type_of("application/apply-patch+yaml"), -1, "apply-patch+yaml is not ours");
    is_int(kpatch_type_of("application/json"), -1, "application/json");
    is_int(kpatch_type_of(NULL), -1, "no content type");
}

/* RFC 6902, appendix A. */
static void test_rfc6902(void)
{
    enum kpatch_type J = KPATCH_JSON;
    check("A.1 add an object member", J, NULL, "{\"foo\":\"bar\"}",
          "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]",
          "{\"baz\":\"qux\",\"foo\":\"bar\"}");
    check("A.2 add an array element", J, NULL, "{\"foo\":[\"bar\",\"baz\"]}",
          "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
          "{\"foo\":[\"bar\",\"qux\",\"baz\"]}");
    check("A.3 remove an object member", J, NULL, "{\"baz\":\"qux\",\"foo\":\"bar\"}",
          "[{\"op\":\"remove\",\"path\":\"/baz\"}]", "{\"foo\":\"bar\"}");
    check("A.4 remove an array element", J, NULL, "{\"foo\":[\"bar\",\"qux\",\"baz\"]}",
          "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]", "{\"foo\":[\"bar\",\"baz\"]}");
    check("A.5 replace a value", J, NULL, "{\"baz\":\"qux\",\"foo\":\"bar\"}",
          "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
          "{\"baz\":\"boo\",\"foo\":\"bar\"}");
    check("A.6 move a value", J, NULL,
          "{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":\"grault\"}}",
          "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/thud\"}]",
          "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\",\"thud\":\"fred\"}}");
    check("A.7 move an array element", J, NULL, "{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}",
          "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
          "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}");
    check("A.8 test a value: success", J, NULL, "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
          "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},"
          "{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
          "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}");
    fails("A.9 test a value: error", J, NULL, "{\"baz\":\"qux\"}",
          "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]", 422,
          "testing value /baz failed: test failed");
    check("A.10 add a nested member object", J, NULL, "{\"foo\":\"bar\"}",
          "[{\"op\":\"add\",\"path\":\"/child\",\"value\":{\"grandchild\":{}}}]",
          "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}");
    check("A.11 ignore unrecognized elements", J, NULL, "{\"foo\":\"bar\"}",
          "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"xyz\":123}]",
          "{\"foo\":\"bar\",\"baz\":\"qux\"}");
    fails("A.12 add to a nonexistent target", J, NULL, "{\"foo\":\"bar\"}",
          "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]", 422,
          "add operation does not apply: doc is missing path: \"/baz/bat\": missing value");
    /* A.13: two "op" members; the last wins (Go's decoder), a remove of a missing key. */
    fails("A.13 invalid JSON patch document", J, NULL, "{\"foo\":\"bar\"}",
          "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"op\":\"remove\"}]", 422,
          "error in remove for path: '/baz': Unable to remove nonexistent key: baz");
    check("A.14 ~ escape ordering", J, NULL, "{\"/\":9,\"~1\":10}",
          "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":10}]", "{\"/\":9,\"~1\":10}");
    fails("A.15 comparing strings and numbers", J, NULL, "{\"/\":9,\"~1\":10}",
          "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":\"10\"}]", 422,
          "testing value /~01 failed: test failed");
    check("A.16 add an array value", J, NULL, "{\"foo\":[\"bar\"]}",
          "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":[\"abc\",\"def\"]}]",
          "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}");
}

static void test_json_patch(void)
{
    enum kpatch_type J = KPATCH_JSON;
    const char *pod = "{\"metadata\":{\"name\":\"x\",\"labels\":{\"a/b\":\"1\"}},"
                      "\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"busybox\"}]}}";
    check("replace an image, add a label with ~1", J, POD, pod,
          "[{\"op\":\"replace\",\"path\":\"/spec/containers/0/image\",\"value\":\"nginx\"},"
          "{\"op\":\"add\",\"path\":\"/metadata/labels/c~1d\",\"value\":\"2\"},"
          "{\"op\":\"remove\",\"path\":\"/metadata/labels/a~1b\"}]",
          "{\"metadata\":{\"name\":\"x\",\"labels\":{\"c/d\":\"2\"}},"
          "\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"nginx\"}]}}");
    check("copy, then negative index removal", J, NULL, "{\"a\":[1,2,3],\"b\":{}}",
          "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b/c\"},"
          "{\"op\":\"remove\",\"path\":\"/a/-1\"}]",
          "{\"a\":[1,2],\"b\":{\"c\":[1,2,3]}}");
    check("a null value is a value", J, NULL, "{\"a\":1}",
          "[{\"op\":\"add\",\"path\":\"/b\",\"value\":null},"
          "{\"op\":\"test\",\"path\":\"/b\",\"value\":null}]",
          "{\"a\":1,\"b\":null}");
    check("an empty patch changes nothing", J, NULL, "{\"a\":1}", "[]", "{\"a\":1}");
    fails("remove a missing key", J, NULL, "{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/x\"}]",
          422,
          "error in remove for path: '/x': Unable to remove nonexistent key: x: missing value");
    check("replace a missing member adds it, as Kubernetes does", J, NULL, "{\"a\":1}",
          "[{\"op\":\"replace\",\"path\":\"/x\",\"value\":1}]", "{\"a\":1,\"x\":1}");
    fails("replace a missing index", J, NULL, "{\"a\":[]}",
          "[{\"op\":\"replace\",\"path\":\"/a/0\",\"value\":1}]", 422,
          "replace operation does not apply: doc is missing key: /a/0: missing value");
    check("copy of a missing member copies null, as evanphx's does", J, NULL, "{\"a\":{}}",
          "[{\"op\":\"copy\",\"from\":\"/a/x\",\"path\":\"/a/y\"}]", "{\"a\":{\"y\":null}}");
    fails("move of a missing member", J, NULL, "{\"a\":{}}",
          "[{\"op\":\"move\",\"from\":\"/a/x\",\"path\":\"/b\"}]", 422,
          "error in move for path: 'x': Unable to remove nonexistent key: x: missing value");
    check("test of a missing member against null passes", J, NULL, "{\"a\":1}",
          "[{\"op\":\"test\",\"path\":\"/b\",\"value\":null}]", "{\"a\":1}");
    check("negative indices count from the end", J, NULL, "{\"a\":[1,2]}",
          "[{\"op\":\"add\",\"path\":\"/a/-1\",\"value\":9}]", "{\"a\":[1,2,9]}");
    fails("index past the end", J, NULL, "{\"a\":[1]}",
          "[{\"op\":\"add\",\"path\":\"/a/5\",\"value\":1}]", 422,
          "error in add for path: '/a/5': Unable to access invalid index: 5: invalid index "
          "referenced");
    fails("an index that is not a number", J, NULL, "{\"a\":[1]}",
          "[{\"op\":\"add\",\"path\":\"/a/x\",\"value\":1}]", 422,
          "error in add for path: '/a/x': value was not a proper array index: 'x': strconv.Atoi: "
          "parsing \"x\": invalid syntax");
    fails("unknown op", J, NULL, "{}", "[{\"op\":\"frob\",\"path\":\"/a\"}]", 422,
          "Unexpected kind: frob");
    fails("no path", J, NULL, "{}", "[{\"op\":\"add\",\"value\":1}]", 422,
          "add operation failed to decode path: missing value");
    fails("move from a missing path", J, NULL, "{}",
          "[{\"op\":\"move\",\"from\":\"/a/b\",\"path\":\"/c\"}]", 422,
          "move operation does not apply: doc is missing from path: /a/b: missing value");
    fails("move into its own child", J, NULL, "{\"a\":{\"b\":1}}",
          "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/c\"}]", 422,
          "move operation does not apply: doc is missing destination path: /a/c");
    fails("an object, not a list", J, NULL, "{}", "{\"op\":\"add\"}", 400,
          "json: cannot unmarshal object into Go value of type jsonpatch.Patch");
    fails("a list of strings", J, NULL, "{}", "[\"add\"]", 400,
          "json: cannot unmarshal string into Go value of type jsonpatch.Operation");
    fails("not JSON", J, NULL, "{}", "[{\"op\":'add'}]", 400, "error decoding patch: line 1");
    fails("trailing garbage", J, NULL, "{}", "[] []", 400, "error decoding patch:");
    fails("root path", J, NULL, "{}", "[{\"op\":\"add\",\"path\":\"\",\"value\":1}]", 422,
          "add operation does not apply: doc is missing path: \"\"");
}

static void test_json_patch_limits(void)
{
    /* 10,001 operations: 413 before any is applied. */
    struct buf b = {0};
    buf_add(&b, "[", 1);
    for (int i = 0; i <= KPATCH_MAX_OPS; i++)
        buf_printf(&b, "%s{\"op\":\"test\",\"path\":\"/a\",\"value\":1}", i ? "," : "");
    buf_add(&b, "]", 1);
    fails("10001 operations", KPATCH_JSON, NULL, "{\"a\":1}", b.p, 413,
          "The allowed maximum operations in a JSON patch is 10000, got 10001");
    buf_free(&b);

    /* Copies adding more than 3 MiB in all. */
    struct buf doc = {0};
    buf_add(&doc, "{\"a\":\"", 6);
    for (int i = 0; i < 1 << 20; i++)
        buf_add(&doc, "x", 1);
    buf_add(&doc, "\"}", 2);
    fails("copies past 3 MiB", KPATCH_JSON, NULL, doc.p,
          "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b\"},"
          "{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/c\"},"
          "{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/d\"}]",
          422, "Unable to complete the copy, the accumulated size increase of copy is");
    buf_free(&doc);

    /* Copying a value into itself doubles the depth: bounded. */
    struct buf deep = {0}, ops = {0};
    buf_add(&deep, "{\"a\":", 5);
    for (int i = 0; i < 40; i++)
        buf_add(&deep, "{\"x\":", 5);
    buf_add(&deep, "1", 1);
    for (int i = 0; i < 41; i++)
        buf_add(&deep, "}", 1);
    buf_add(
        &ops,
        "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/a/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/"
        "x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/y\"}]",
        strlen("[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/a/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/"
               "x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/y\"}]"));
    fails("a copy nesting deeper than 64", KPATCH_JSON, NULL, deep.p, ops.p, 422,
          "nesting deeper than 64 levels");
    buf_free(&deep);
    buf_free(&ops);

    /* A patch over 3 MiB. */
    size_t n = KPATCH_MAX_BYTES + 16;
    char *big = xmalloc(n + 1);
    memset(big, ' ', n);
    memcpy(big, "[]", 2);
    big[n] = '\0';
    fails("a patch over 3 MiB", KPATCH_JSON, NULL, "{}", big, 413, "Request entity too large");
    free(big);
}

/* RFC 7386, appendix A (where Kubernetes' evanphx/json-patch agrees; see below). */
static void test_rfc7386(void)
{
    enum kpatch_type M = KPATCH_MERGE;
    static const char *const cases[][3] = {
        {"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
        {"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
        {"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
        {"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}"},
        {"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
        {"[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"},
        {"{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"},
        {"{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"},
        {"[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"},
        {"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *name = xasprintf("RFC 7386 A: %s + %s", cases[i][0], cases[i][1]);
        check(name, M, NULL, cases[i][0], cases[i][1], cases[i][2]);
        free(name);
    }
    /* RFC 7386 makes these the document; Kubernetes refuses them. */
    fails("a null merge patch", M, NULL, "{\"a\":\"foo\"}", "null", 400, "Invalid JSON Patch");
    fails("a string merge patch", M, NULL, "{\"a\":\"foo\"}", "\"bar\"", 400, "Invalid JSON Patch");
    fails("a merge patch that is not JSON", M, NULL, "{}", "{\"a\":", 400, "Invalid JSON Patch");
    check("kubectl label", M, POD, "{\"metadata\":{\"name\":\"x\",\"labels\":{\"a\":\"1\"}}}",
          "{\"metadata\":{\"labels\":{\"b\":\"2\",\"a\":null}}}",
          "{\"metadata\":{\"name\":\"x\",\"labels\":{\"b\":\"2\"}}}");
}

/* The pod strategic merge patches apply to. */
static const char pod[] =
    "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"web\",\"namespace\":"
    "\"default\",\"labels\":{\"app\":\"web\"},\"finalizers\":[\"a/x\",\"b/y\"]},"
    "\"spec\":{\"volumes\":[{\"name\":\"data\",\"emptyDir\":{}},{\"name\":\"cfg\",\"configMap\":"
    "{\"name\":\"c\"}}],\"containers\":[{\"name\":\"main\",\"image\":\"nginx:1\",\"args\":[\"-v\"],"
    "\"env\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"B\",\"value\":\"2\"}],"
    "\"ports\":[{\"containerPort\":80,\"protocol\":\"TCP\"},{\"containerPort\":443,\"protocol\":"
    "\"TCP\"}],\"resources\":{\"limits\":{\"cpu\":\"500m\"}}},{\"name\":\"side\",\"image\":"
    "\"busybox\"}],\"tolerations\":[{\"key\":\"k\",\"operator\":\"Exists\"}]}}";

/* s with the first from replaced by to (malloc'd): the expectations below. */
static char *edit(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    if (!at)
        fatal("test: %s not in %s", from, s);
    return xasprintf("%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
}

/* The pod patched is the pod with from replaced by to (and from2 by to2 if given). */
static void check_pod2(const char *name, const char *patch, const char *from, const char *to,
                       const char *from2, const char *to2)
{
    char *want = edit(pod, from, to);
    if (from2) {
        char *w2 = edit(want, from2, to2);
        free(want);
        want = w2;
    }
    check(name, KPATCH_STRATEGIC, POD, pod, patch, want);
    free(want);
}

static void check_pod(const char *name, const char *patch, const char *from, const char *to)
{
    check_pod2(name, patch, from, to, NULL, NULL);
}

#define MAIN_C                                                                                     \
    "{\"name\":\"main\",\"image\":\"nginx:1\",\"args\":[\"-v\"],\"env\":[{\"name\":\"A\","         \
    "\"value\":\"1\"},{\"name\":\"B\",\"value\":\"2\"}],\"ports\":[{\"containerPort\":80,"         \
    "\"protocol\":\"TCP\"},{\"containerPort\":443,\"protocol\":\"TCP\"}],\"resources\":{"          \
    "\"limits\":{\"cpu\":\"500m\"}}}"
#define SIDE_C "{\"name\":\"side\",\"image\":\"busybox\"}"

static void test_strategic(void)
{
    check_pod("containers merge by name",
              "{\"spec\":{\"containers\":[{\"name\":\"side\","
              "\"image\":\"busybox:2\"}]}}",
              "\"image\":\"busybox\"", "\"image\":\"busybox:2\"");
    /* Kubernetes puts patch items not in the live list first (normalizeElementOrder). */
    check_pod("a new container goes before the live ones",
              "{\"spec\":{\"containers\":[{\"name\":\"new\",\"image\":\"x\"}]}}",
              "\"containers\":[", "\"containers\":[{\"name\":\"new\",\"image\":\"x\"},");
    check_pod("env merges by name",
              "{\"spec\":{\"containers\":[{\"name\":\"main\",\"env\":[{\"name\":\"B\",\"value\":"
              "\"3\"},{\"name\":\"C\",\"value\":\"4\"}]}]}}",
              "{\"name\":\"B\",\"value\":\"2\"}",
              "{\"name\":\"B\",\"value\":\"3\"},{\"name\":\"C\",\"value\":\"4\"}");
    check_pod("ports merge by containerPort",
              "{\"spec\":{\"containers\":[{\"name\":\"main\",\"ports\":[{\"containerPort\":443,"
              "\"name\":\"https\"}]}]}}",
              "{\"containerPort\":443,\"protocol\":\"TCP\"}",
              "{\"containerPort\":443,\"protocol\":\"TCP\",\"name\":\"https\"}");
    check_pod("volumes with $retainKeys drop the old source",
              "{\"spec\":{\"volumes\":[{\"name\":\"data\",\"hostPath\":{\"path\":\"/srv\"},"
              "\"$retainKeys\":[\"name\",\"hostPath\"]}]}}",
              "{\"name\":\"data\",\"emptyDir\":{}}",
              "{\"name\":\"data\",\"hostPath\":{\"path\":\"/srv\"}}");
    check_pod("finalizers merge as a set, patch order first",
              "{\"metadata\":{\"finalizers\":[\"c/z\",\"a/x\"]}}", "[\"a/x\",\"b/y\"]",
              "[\"c/z\",\"a/x\",\"b/y\"]");
    check_pod("$deleteFromPrimitiveList",
              "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":"
              "[\"a/x\"]}}",
              "[\"a/x\",\"b/y\"]", "[\"b/y\"]");
    check_pod("$patch: delete in a list",
              "{\"spec\":{\"containers\":[{\"name\":\"side\",\"$patch\":\"delete\"}]}}", "," SIDE_C,
              "");
    check_pod("$patch: replace in a list",
              "{\"spec\":{\"containers\":[{\"name\":\"only\",\"image\":\"x\"},{\"$patch\":"
              "\"replace\"}]}}",
              MAIN_C "," SIDE_C, "{\"name\":\"only\",\"image\":\"x\"}");
    check_pod("$patch: replace on a map",
              "{\"metadata\":{\"labels\":{\"$patch\":\"replace\",\"new\":\"1\"}}}",
              "{\"app\":\"web\"}", "{\"new\":\"1\"}");
    check_pod("$patch: replace with $retainKeys",
              "{\"metadata\":{\"labels\":{\"$patch\":\"replace\",\"$retainKeys\":[\"a\"],"
              "\"a\":\"1\"}}}",
              "{\"app\":\"web\"}", "{\"a\":\"1\"}");
    check_pod("$patch: delete on a map", "{\"metadata\":{\"labels\":{\"$patch\":\"delete\"}}}",
              "{\"app\":\"web\"}", "{}");
    check_pod(
        "$setElementOrder orders the list",
        "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"side\"},{\"name\":\"main\"}],"
        "\"containers\":[{\"name\":\"main\",\"image\":\"nginx:2\"}]}}",
        MAIN_C "," SIDE_C,
        SIDE_C ",{\"name\":\"main\",\"image\":\"nginx:2\",\"args\":[\"-v\"],\"env\":[{"
               "\"name\":\"A\",\"value\":\"1\"},{\"name\":\"B\",\"value\":\"2\"}],\"ports\":[{"
               "\"containerPort\":80,\"protocol\":\"TCP\"},{\"containerPort\":443,"
               "\"protocol\":\"TCP\"}],\"resources\":{\"limits\":{\"cpu\":\"500m\"}}}");
    check_pod("$setElementOrder of a primitive list",
              "{\"metadata\":{\"$setElementOrder/finalizers\":[\"b/y\",\"a/x\"]}}",
              "[\"a/x\",\"b/y\"]", "[\"b/y\",\"a/x\"]");
    check_pod2("null deletes",
               "{\"metadata\":{\"labels\":{\"app\":null}},\"spec\":{\"containers\":"
               "[{\"name\":\"main\",\"env\":null}]}}",
               "{\"app\":\"web\"}", "{}",
               "\"env\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"B\",\"value\":\"2\"}],", "");
    check_pod("a null for a missing key changes nothing", "{\"metadata\":{\"zzz\":null}}", "", "");
    check_pod("labels merge key by key", "{\"metadata\":{\"labels\":{\"tier\":\"db\"}}}",
              "{\"app\":\"web\"}", "{\"app\":\"web\",\"tier\":\"db\"}");
    check_pod2("lists without a strategy are replaced",
               "{\"spec\":{\"containers\":[{\"name\":\"main\",\"args\":[\"-q\"]}],"
               "\"tolerations\":[]}}",
               "\"args\":[\"-v\"]", "\"args\":[\"-q\"]",
               "[{\"key\":\"k\",\"operator\":\"Exists\"}]", "[]");
    check_pod("a Quantity is a scalar",
              "{\"spec\":{\"containers\":[{\"name\":\"main\",\"resources\":{\"limits\":{\"cpu\":"
              "\"1\"}}}]}}",
              "\"500m\"", "\"1\"");

    /* kubectl apply's patch (/work/shared/K8S-API.md): annotation, order, the changed item. */
    const char *applied = "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"x\","
                          "\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":"
                          "\"{}\"}},\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":"
                          "\"busybox:1.35\",\"imagePullPolicy\":\"IfNotPresent\"}]}}";
    check(
        "kubectl apply's patch", KPATCH_STRATEGIC, POD, applied,
        "{\"metadata\":{\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":"
        "\"{\\\"new\\\":1}\\n\"}},\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"main\"}],"
        "\"containers\":[{\"image\":\"busybox:1.36\",\"name\":\"main\"}]}}",
        "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"x\",\"annotations\":{"
        "\"kubectl.kubernetes.io/last-applied-configuration\":\"{\\\"new\\\":1}\\n\"}},"
        "\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"busybox:1.36\","
        "\"imagePullPolicy\":\"IfNotPresent\"}]}}");
    check("kubectl apply adding a container keeps the applied order", KPATCH_STRATEGIC, POD,
          applied,
          "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"main\"},{\"name\":\"two\"}],"
          "\"containers\":[{\"image\":\"b\",\"name\":\"two\"}]}}",
          "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"x\",\"annotations\":{"
          "\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\"}},\"spec\":{\"containers\":"
          "[{\"name\":\"main\",\"image\":\"busybox:1.35\",\"imagePullPolicy\":\"IfNotPresent\"},"
          "{\"image\":\"b\",\"name\":\"two\"}]}}");
    check("without a type every list is replaced", KPATCH_STRATEGIC, NULL,
          "{\"spec\":{\"containers\":[{\"name\":\"a\"},{\"name\":\"b\"}]}}",
          "{\"spec\":{\"containers\":[{\"name\":\"c\"}]}}",
          "{\"spec\":{\"containers\":[{\"name\":\"c\"}]}}");
    check("directives in new values are applied, not stored", KPATCH_STRATEGIC, POD, "{}",
          "{\"spec\":{\"containers\":[{\"name\":\"a\",\"env\":[{\"name\":\"X\",\"$patch\":"
          "\"delete\"}]}]}}",
          "{\"spec\":{\"containers\":[{\"name\":\"a\",\"env\":[]}]}}");
    check("a null patch changes nothing", KPATCH_STRATEGIC, POD, "{\"a\":1}", "null", "{\"a\":1}");
}

static void test_strategic_errors(void)
{
    enum kpatch_type S = KPATCH_STRATEGIC;
    fails("an item without its merge key", S, POD, pod,
          "{\"spec\":{\"containers\":[{\"image\":\"x\"}]}}", 422,
          "map: map[image:x] does not contain declared merge key: name");
    fails("an unknown $patch", S, POD, pod, "{\"metadata\":{\"labels\":{\"$patch\":\"frob\"}}}",
          422, "unknown patch type: frob in map: map[$patch:frob]");
    fails("$patch: merge in a list", S, POD, pod,
          "{\"spec\":{\"containers\":[{\"$patch\":\"merge\"}]}}", 422,
          "merging lists cannot yet be specified in the patch");
    fails("not JSON", S, POD, pod, "{\"spec\":", 400, "error decoding patch: line 1");
    fails("a list, not an object", S, POD, pod, "[]", 400,
          "json: cannot unmarshal array into Go value of type map[string]interface {}");
    fails("$setElementOrder that does not match", S, POD, pod,
          "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"main\"}],\"containers\":[{"
          "\"name\":\"side\",\"image\":\"x\"}]}}",
          422, "The order in patch list:");
    fails("$retainKeys not listing a key the patch sets", S, POD, pod,
          "{\"spec\":{\"volumes\":[{\"name\":\"data\",\"hostPath\":{\"path\":\"/srv\"},"
          "\"$retainKeys\":[\"name\"]}]}}",
          400, "invalid patch format of retainKeys");
    fails("$retainKeys not a list", S, POD, pod,
          "{\"spec\":{\"volumes\":[{\"name\":\"data\",\"$retainKeys\":\"name\"}]}}", 400,
          "invalid patch format of retainKeys");
    fails("a bad $deleteFromPrimitiveList key", S, POD, pod,
          "{\"metadata\":{\"$deleteFromPrimitiveList\":[\"a/x\"]}}", 400,
          "invalid patch format of primitive list");
    fails("a bad $setElementOrder key", S, POD, pod,
          "{\"metadata\":{\"$setElementOrderX/finalizers\":[\"a/x\"]}}", 400,
          "invalid patch format of setElementOrder list");
    fails("lists of lists", S, POD, "{}", "{\"metadata\":{\"finalizers\":[[\"a\"]]}}", 422,
          "lists of lists are not supported");
    fails("mixed item types", S, POD, pod, "{\"metadata\":{\"finalizers\":[1]}}", 422,
          "list element types are not identical");
}

/* Cases of Kubernetes' strategicpatch tests (patch_test.go), on pod fields: containers for
 * a list merged by name, finalizers for a merged list of scalars. */
static void test_strategic_upstream(void)
{
    enum kpatch_type S = KPATCH_STRATEGIC;
#define C(n, rest) "{\"name\":\"" n "\"" rest "}"
#define SPEC(list) "{\"spec\":{\"containers\":[" list "]}}"
#define FIN(list) "{\"metadata\":{\"finalizers\":[" list "]}}"
    check("unique scalars when merging lists", S, POD, FIN("\"1\",\"2\""), FIN("\"2\",\"3\""),
          FIN("\"1\",\"2\",\"3\""));
    check("delete all items from merging list", S, POD, SPEC(C("1", ) "," C("2", )),
          SPEC("{\"$patch\":\"replace\"}"), SPEC(""));
    check("merge empty merging lists", S, POD, SPEC(""), SPEC(""), SPEC(""));
    check("add key and delete all keys from map", S, POD, "{\"kind\":\"Pod\"}",
          "{\"other\":\"a\",\"$patch\":\"replace\"}", "{\"other\":\"a\"}");
    check("delete all duplicate entries in a merging list", S, POD,
          SPEC(C("1", ) "," C("1", ) "," C("2", ",\"image\":\"a\"") "," C("3", ) "," C("3", )),
          SPEC(C("1", ",\"$patch\":\"delete\"") "," C("3", ",\"$patch\":\"delete\"")),
          SPEC(C("2", ",\"image\":\"a\"")));
    check("preserve the order from the patch in a merging list", S, POD,
          SPEC(C("1", ) "," C("2", ",\"image\":\"b\"") "," C("3", )),
          SPEC(C("3", ",\"image\":\"c\"") "," C("1", ",\"image\":\"a\"") "," C(
              "2", ",\"workingDir\":\"x\"")),
          SPEC(C("3", ",\"image\":\"c\"") "," C("1", ",\"image\":\"a\"") "," C(
              "2", ",\"image\":\"b\",\"workingDir\":\"x\"")));
    check("preserve the order from the patch in a merging list 2", S, POD,
          SPEC(C("1", ) "," C("2", ",\"image\":\"b\"") "," C("3", )),
          SPEC(C("3", ",\"image\":\"c\"") "," C("1", ",\"image\":\"a\"")),
          SPEC(C("2", ",\"image\":\"b\"") "," C("3", ",\"image\":\"c\"") "," C(
              "1", ",\"image\":\"a\"")));
    check("preserve the order from the patch in a merging int list", S, POD,
          FIN("\"1\",\"2\",\"3\""), FIN("\"3\",\"1\""), FIN("\"2\",\"3\",\"1\""));
    check("$setElementOrder contains an item not in the list", S, POD, SPEC(C("1", ) "," C("3", )),
          "{\"spec\":{\"$setElementOrder/containers\":[" C("3", ) "," C("2", ) "," C(
              "1", ) "],"
                     "\"containers\":[" C("3", ",\"image\":\"3\"") "," C("1",
                                                                         ",\"image\":\"1\"") "]}}",
          SPEC(C("3", ",\"image\":\"3\"") "," C("1", ",\"image\":\"1\"")));
    check("$setElementOrder contains an item not in the int list", S, POD, FIN("\"1\",\"3\""),
          "{\"metadata\":{\"$setElementOrder/finalizers\":[\"3\",\"2\",\"1\"]}}",
          FIN("\"3\",\"1\""));
    fails("the order in $setElementOrder and the patch list must match", S, POD,
          SPEC(C("1", ) "," C("3", ) "," C("2", )),
          "{\"spec\":{\"$setElementOrder/containers\":[" C("1", ) "," C("2", ) "," C(
              "3", ) "],"
                     "\"containers\":[" C("3", ",\"image\":\"3\"") "," C("1",
                                                                         ",\"image\":\"1\"") "]}}",
          422, "The order in patch list:");
    check("a live-only item goes before a patch item after it", S, POD,
          SPEC(C("a", ) "," C("sidecar", ) "," C("b", )),
          "{\"spec\":{\"$setElementOrder/containers\":[" C("b", ) "," C("a", ) "]}}",
          SPEC(C("sidecar", ) "," C("b", ) "," C("a", )));
#undef C
#undef SPEC
#undef FIN
}

/* ---- kubectl as the oracle: `kubectl patch --local` runs the same apimachinery and
 * evanphx/json-patch code the apiserver does, on the client. */

static const char *const oracle_cases[][2] = {
    {"strategic", "{\"spec\":{\"containers\":[{\"name\":\"new\",\"image\":\"x\"}]}}"},
    {"strategic", "{\"spec\":{\"containers\":[{\"name\":\"main\",\"env\":[{\"name\":\"B\","
                  "\"value\":\"3\"},{\"name\":\"C\",\"value\":\"4\"}]}]}}"},
    {"strategic", "{\"spec\":{\"containers\":[{\"name\":\"main\",\"ports\":[{\"containerPort\":"
                  "443,\"name\":\"https\"},{\"containerPort\":8080}]}]}}"},
    {"strategic", "{\"spec\":{\"volumes\":[{\"name\":\"data\",\"hostPath\":{\"path\":\"/srv\"},"
                  "\"$retainKeys\":[\"name\",\"hostPath\"]}]}}"},
    {"strategic", "{\"metadata\":{\"finalizers\":[\"c/z\",\"a/x\"]}}"},
    {"strategic", "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"a/x\"],"
                  "\"finalizers\":[\"q\"]}}"},
    {"strategic", "{\"spec\":{\"containers\":[{\"name\":\"only\",\"image\":\"x\"},{\"$patch\":"
                  "\"replace\"}]}}"},
    {"strategic", "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"main\"},{\"name\":"
                  "\"side\"},{\"name\":\"third\"}],\"containers\":[{\"name\":\"third\",\"image\":"
                  "\"t\"}]}}"},
    {"strategic", "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"main\"}],"
                  "\"containers\":[{\"name\":\"side\",\"$patch\":\"delete\"}]}}"},
    {"strategic",
     "{\"spec\":{\"containers\":[{\"name\":\"main\",\"$setElementOrder/env\":[{"
     "\"name\":\"B\"},{\"name\":\"A\"}],\"env\":[{\"name\":\"A\",\"value\":\"9\"}]}]}}"},
    {"strategic", "{\"metadata\":{\"labels\":{\"app\":null,\"x\":\"y\"}},\"spec\":{\"containers\":"
                  "[{\"name\":\"main\",\"env\":null,\"args\":[\"-q\"]}],\"tolerations\":[]}}"},
    {"strategic", "{\"spec\":{\"containers\":[{\"image\":\"x\"}]}}"},
    {"strategic", "{\"metadata\":{\"labels\":{\"$patch\":\"frob\"}}}"},
    {"strategic", "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"main\"}],"
                  "\"containers\":[{\"name\":\"side\",\"image\":\"x\"}]}}"},
    {"strategic", "{\"spec\":{\"volumes\":[{\"name\":\"data\",\"hostPath\":{\"path\":\"/srv\"},"
                  "\"$retainKeys\":[\"name\"]}]}}"},
    {"strategic", "{\"metadata\":{\"finalizers\":[1]}}"},
    {"merge", "{\"metadata\":{\"labels\":{\"tier\":\"db\",\"app\":null}},\"spec\":{\"x\":{\"y\":"
              "null,\"z\":1}}}"},
    {"json", "[{\"op\":\"replace\",\"path\":\"/spec/containers/0/image\",\"value\":\"n:2\"},"
             "{\"op\":\"add\",\"path\":\"/metadata/labels/a~1b\",\"value\":\"x\"},"
             "{\"op\":\"move\",\"from\":\"/spec/containers/1\",\"path\":\"/spec/containers/0\"},"
             "{\"op\":\"copy\",\"from\":\"/metadata/name\",\"path\":\"/metadata/labels/n\"},"
             "{\"op\":\"remove\",\"path\":\"/metadata/finalizers/-1\"},"
             "{\"op\":\"replace\",\"path\":\"/metadata/nope\",\"value\":\"r\"},"
             "{\"op\":\"test\",\"path\":\"/metadata/absent\",\"value\":null}]"},
    {"json", "[{\"op\":\"test\",\"path\":\"/metadata/name\",\"value\":\"nope\"}]"},
    {"json", "[{\"op\":\"remove\",\"path\":\"/metadata/nope\"}]"},
    {"json", "[{\"op\":\"add\",\"path\":\"/metadata/a/b\",\"value\":1}]"},
    {"json", "[{\"op\":\"add\",\"path\":\"/spec/containers/9\",\"value\":{}}]"},
    {"json", "[{\"op\":\"move\",\"from\":\"/metadata/nope\",\"path\":\"/a\"}]"},
    {"json", "[{\"op\":\"remove\",\"path\":\"/metadata/finalizers/x\"}]"},
    {"json", "[{\"op\":\"frob\",\"path\":\"/a\"}]"},
    {"json", "{\"op\":\"add\"}"},
};

/* Runs kubectl patch --local on doc_path; *out: its stdout, or its error line. 0 or -1. */
static int run_kubectl(const char *kubectl, const char *dir, const char *doc_path, const char *type,
                       const char *patch, char **out, int *failed)
{
    char *out_path = xasprintf("%s/out", dir), *home = xasprintf("HOME=%s", dir);
    char *argv[] = {(char *)kubectl, "patch", "--local",     "-f", (char *)doc_path, "--type",
                    (char *)type,    "-p",    (char *)patch, "-o", "json",           NULL};
    char *envp[] = {home, "PATH=/usr/bin:/bin", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int st = -1, r = posix_spawn(&pid, kubectl, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    if (r == 0)
        waitpid(pid, &st, 0);
    struct buf b = {0};
    FILE *f = fopen(out_path, "r");
    char line[4096];
    while (f && fgets(line, sizeof(line), f))
        buf_add(&b, line, strlen(line));
    if (f)
        fclose(f);
    if (!b.p)
        buf_add(&b, "", 0);
    *failed = !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    *out = buf_take(&b);
    free(out_path);
    free(home);
    return r == 0 ? 0 : -1;
}

/* Drops what kubectl's typed round trip adds (status, metadata.creationTimestamp). */
static json_object *comparable(const char *s)
{
    json_object *v = json_tokener_parse(s), *m;
    if (json_object_is_type(v, json_type_object)) {
        json_object_object_del(v, "status");
        if (json_object_object_get_ex(v, "metadata", &m) &&
            json_object_is_type(m, json_type_object))
            json_object_object_del(m, "creationTimestamp");
    }
    return v;
}

static void test_against_kubectl(void)
{
    const char *kubectl =
        getenv("KUBECTL") ? getenv("KUBECTL") : "/usr/lib/google-cloud-sdk/bin/kubectl.1.32";
    if (access(kubectl, X_OK) != 0) {
        ok(1, "# SKIP no kubectl at %s", kubectl);
        return;
    }
    char dir[] = "/tmp/test_kpatch.XXXXXX";
    if (!mkdtemp(dir))
        fatal("mkdtemp: %m");
    char *doc_path = xasprintf("%s/pod.json", dir);
    FILE *f = fopen(doc_path, "w");
    fputs(pod, f);
    fclose(f);
    for (size_t i = 0; i < ARRAY_SIZE(oracle_cases); i++) {
        const char *type = oracle_cases[i][0], *patch = oracle_cases[i][1];
        enum kpatch_type t = (enum kpatch_type)kpatch_type_of(
            !strcmp(type, "json")    ? "application/json-patch+json"
            : !strcmp(type, "merge") ? "application/merge-patch+json"
                                     : "application/strategic-merge-patch+json");
        char *want = NULL, *err = NULL;
        int failed = 0, status = 0;
        if (run_kubectl(kubectl, dir, doc_path, type, patch, &want, &failed) < 0) {
            ok(0, "kubectl runs");
            free(want);
            continue;
        }
        char *got = apply(t, POD, pod, patch, &status, &err);
        int same;
        if (failed) {
            /* kubectl prints "error: <message>" */
            size_t n = strcspn(want, "\n");
            const char *msg = !strncmp(want, "error: ", 7) ? want + 7 : want;
            same = !got && err && !strncmp(msg, err, n - (size_t)(msg - want)) &&
                   strlen(err) >= n - (size_t)(msg - want);
        } else {
            json_object *a = comparable(want), *b = got ? comparable(got) : NULL;
            same = a && b && json_object_equal(a, b);
            json_object_put(a);
            json_object_put(b);
        }
        if (!ok(same, "as kubectl patch --local --type %s: %.60s", type, patch))
            diag("kubectl: %s\nkpatch: %s", want, got ? got : err);
        free(want);
        free(got);
        free(err);
    }
    char *out_path = xasprintf("%s/out", dir);
    unlink(out_path);
    unlink(doc_path);
    rmdir(dir);
    free(out_path);
    free(doc_path);
}

/* Long lists merge in O(n log n): 20,000 env entries against 20,000 (a quadratic merge
 * would make 4e8 comparisons). */
static void test_long_lists(void)
{
    struct buf doc = {0}, patch = {0};
    const char *head = "{\"spec\":{\"containers\":[{\"name\":\"main\",\"env\":[";
    buf_add(&doc, head, strlen(head));
    buf_add(&patch, head, strlen(head));
    for (int i = 0; i < 20000; i++) {
        buf_printf(&doc, "%s{\"name\":\"V%d\",\"value\":\"a\"}", i ? "," : "", i);
        buf_printf(&patch, "%s{\"name\":\"V%d\",\"value\":\"b\"}", i ? "," : "", 19999 - i);
    }
    buf_add(&doc, "]}]}}", 5);
    buf_add(&patch, "]}]}}", 5);
    int status = 0;
    char *err = NULL;
    size_t n;
    char *out =
        kpatch_apply(KPATCH_STRATEGIC, POD, doc.p, doc.len, patch.p, patch.len, &n, &status, &err);
    if (!ok(out && strstr(out, "{\"name\":\"V19999\",\"value\":\"b\"},{\"name\":\"V19998\""),
            "20,000 env entries merged by name, in patch order"))
        diag("%d %s", status, err ? err : "");
    free(out);
    free(err);
    buf_free(&doc);
    buf_free(&patch);
}

static void test_duplicate(void)
{
    const char *t = "{\"metadata\":{\"labels\":{\"a\":\"1\",\"a\":\"2\"}}}";
    char *d = kpatch_duplicate(t, strlen(t));
    is_str(d, "duplicate field \"metadata.labels.a\"", "a duplicate key is named with its path");
    free(d);
    t = "[{\"op\":\"add\",\"op\":\"remove\"}]";
    d = kpatch_duplicate(t, strlen(t));
    is_str(d, "duplicate field \"[0].op\"", "in a list");
    free(d);
    ok(!kpatch_duplicate("{\"a\":{\"a\":1}}", 13), "the same key at two levels is no duplicate");
    check("a duplicate keeps the last value", KPATCH_MERGE, NULL, "{}", "{\"a\":1,\"a\":2}",
          "{\"a\":2}");
}

int main(void)
{
    test_type_of();
    test_rfc6902();
    test_json_patch();
    test_json_patch_limits();
    test_rfc7386();
    test_strategic();
    test_strategic_errors();
    test_strategic_upstream();
    test_against_kubectl();
    test_long_lists();
    test_duplicate();
    return done_testing();
}
