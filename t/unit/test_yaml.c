/*
 * test_yaml: the YAML/JSON <-> protobuf mapper of coraclectl. The seed
 * manifests as golden tests, round trips (yaml -> pb -> yaml -> pb gives the
 * same bytes), strict errors with exact positions, YAML bombs, lists.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "tap.h"
#include "kobj.h"
#include "kobj_int.h"
#include "pb.h"
#include "rndmsg.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    b[*len] = 0;
    fclose(f);
    return b;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *n)
{
    *n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*n + 1);
    protobuf_c_message_pack(m, b);
    return b;
}

/* yaml -> pb -> yaml -> pb: same bytes, same text. Returns the first YAML output. */
static char *round_trip(const char *name, const char *text)
{
    struct kobjs a = {0}, b = {0};
    char *err = NULL;
    if (kobj_parse(name, text, strlen(text), &a, &err) < 0 || a.n != 1) {
        ok(0, "%s: parses (%s)", name, err ? err : "n != 1");
        free(err);
        return NULL;
    }
    char *y1 = kobj_emit(a.v[0].kind, a.v[0].msg, KOBJ_FMT_YAML);
    if (kobj_parse("out.yaml", y1, strlen(y1), &b, &err) < 0) {
        ok(0, "%s: output parses back (%s)\n%s", name, err, y1);
        free(err);
        kobjs_free(&a);
        return y1;
    }
    size_t n1, n2;
    uint8_t *p1 = pack(a.v[0].msg, &n1), *p2 = pack(b.v[0].msg, &n2);
    ok(n1 == n2 && !memcmp(p1, p2, n1), "%s: yaml round trip gives identical protobuf bytes", name);
    char *y2 = kobj_emit(b.v[0].kind, b.v[0].msg, KOBJ_FMT_YAML);
    is_str(y2, y1, "second YAML output identical");
    /* and through JSON */
    char *j = kobj_emit(a.v[0].kind, a.v[0].msg, KOBJ_FMT_JSON);
    struct kobjs c = {0};
    if (kobj_parse("out.json", j, strlen(j), &c, &err) == 0) {
        size_t n3;
        uint8_t *p3 = pack(c.v[0].msg, &n3);
        ok(n1 == n3 && !memcmp(p1, p3, n1), "%s: json round trip identical bytes", name);
        free(p3);
    } else {
        ok(0, "%s: json parses back: %s\n%s", name, err, j);
        free(err);
    }
    kobjs_free(&c);
    free(j);
    free(y2);
    free(p1);
    free(p2);
    kobjs_free(&a);
    kobjs_free(&b);
    return y1;
}

static void expect_err(const char *text, const char *want, const char *what)
{
    struct kobjs o = {0};
    char *err = NULL;
    int rc = kobj_parse("pod.yaml", text, strlen(text), &o, &err);
    ok(rc < 0 && o.n == 0, "%s: rejected", what);
    is_str(err ? err : "(none)", want, what);
    free(err);
    kobjs_free(&o);
}

static const char *const seed_golden[] = {
    "multiple-container-pod.yaml",
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata:\n"
    "  name: nginx\n"
    "spec:\n"
    "  containers:\n"
    "  - name: nginx-1\n"
    "    image: nginx:1.14.2\n"
    "    ports:\n"
    "    - containerPort: 80\n"
    "  - name: busybox\n"
    "    image: progrium/busybox\n"
    "    args:\n"
    "    - sleep\n"
    "    - \"1000000\"\n",
    "shared-volume-pod.yaml",
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata:\n"
    "  name: mc1\n"
    "spec:\n"
    "  volumes:\n"
    "  - name: html\n"
    "    emptyDir: {}\n"
    "  containers:\n"
    "  - name: 1st\n"
    "    image: nginx\n"
    "    volumeMounts:\n"
    "    - name: html\n"
    "      mountPath: /usr/share/nginx/html\n"
    "  - name: 2nd\n"
    "    image: debian\n"
    "    command:\n"
    "    - /bin/sh\n"
    "    - -c\n"
    "    args:\n"
    "    - while true; do mkdir -p /share-volume/; echo \"Container 2 write $(date "
    "+%F_%H-%M-%S)\">> /share-volume/index.html; sleep 10000; done\n"
    "    volumeMounts:\n"
    "    - name: html\n"
    "      mountPath: /share-volume\n",
    "single-container-pod.yaml",
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata:\n"
    "  name: nginx\n"
    "spec:\n"
    "  containers:\n"
    "  - name: nginx\n"
    "    image: nginx:1.14.2\n"
    "    ports:\n"
    "    - containerPort: 80\n",
};

static void test_seeds(void)
{
    for (size_t i = 0; i < sizeof(seed_golden) / sizeof(*seed_golden); i += 2) {
        char path[512];
        size_t len;
        snprintf(path, sizeof(path), "%s/%s", TEST_DATA, seed_golden[i]);
        char *text = slurp(path, &len);
        if (!ok(text != NULL, "read %s", path))
            continue;
        char *y = round_trip(seed_golden[i], text);
        is_str(y ? y : "", seed_golden[i + 1], seed_golden[i]);
        free(y);
        free(text);
    }
    /* field values of the shared-volume pod */
    char path[512];
    size_t len;
    snprintf(path, sizeof(path), "%s/shared-volume-pod.yaml", TEST_DATA);
    char *text = slurp(path, &len), *err = NULL;
    struct kobjs o = {0};
    ok(text && kobj_parse("shared-volume-pod.yaml", text, len, &o, &err) == 0 && o.n == 1,
       "shared-volume-pod parses");
    if (o.n == 1) {
        Coracle__V1__Pod *p = (Coracle__V1__Pod *)o.v[0].msg;
        ok(o.v[0].kind == &kind_pod, "kind Pod");
        is_str(o.v[0].where, "shared-volume-pod.yaml:1", "where");
        is_int(p->spec->n_containers, 2, "two containers");
        is_str(p->spec->containers[0]->name, "1st", "container named 1st");
        ok(p->spec->volumes[0]->volumesource && p->spec->volumes[0]->volumesource->emptydir,
           "emptyDir: {} is set (inlined volumeSource)");
        is_int(p->spec->containers[1]->n_args, 1, "one folded arg");
    }
    kobjs_free(&o);
    free(text);
}

static const char rich[] = "apiVersion: v1\n"
                           "kind: Pod\n"
                           "metadata:\n"
                           "  name: web\n"
                           "  namespace: prod\n"
                           "  labels:\n"
                           "    app: web\n"
                           "    \"yes\": \"true\"\n"
                           "  annotations:\n"
                           "    note: |\n"
                           "      line one\n"
                           "      line two\n"
                           "  creationTimestamp: \"2026-11-28T06:35:04Z\"\n"
                           "spec:\n"
                           "  containers:\n"
                           "  - name: web\n"
                           "    image: nginx\n"
                           "    env:\n"
                           "    - name: EMPTY\n"
                           "      value: \"\"\n"
                           "    - name: NUM\n"
                           "      value: \"0123\"\n"
                           "    resources:\n"
                           "      limits:\n"
                           "        cpu: 500m\n"
                           "        memory: 128Mi\n"
                           "      requests:\n"
                           "        cpu: \"1\"\n"
                           "    livenessProbe:\n"
                           "      httpGet:\n"
                           "        path: /healthz\n"
                           "        port: http\n"
                           "      initialDelaySeconds: 3\n"
                           "    readinessProbe:\n"
                           "      tcpSocket:\n"
                           "        port: 8080\n"
                           "    startupProbe:\n"
                           "      exec:\n"
                           "        command: [cat, /tmp/ok]\n"
                           "    ports:\n"
                           "    - name: http\n"
                           "      containerPort: 8080\n"
                           "      protocol: TCP\n"
                           "    stdin: true\n"
                           "  volumes:\n"
                           "  - name: data\n"
                           "    hostPath:\n"
                           "      path: /srv\n"
                           "      type: Directory\n"
                           "  nodeSelector:\n"
                           "    disk: ssd\n"
                           "  tolerations:\n"
                           "  - key: k\n"
                           "    operator: Exists\n"
                           "    tolerationSeconds: 300\n"
                           "status:\n"
                           "  phase: Running\n"
                           "  startTime: 2026-11-28T06:35:05.5+01:00\n";

static void test_rich(void)
{
    char *y = round_trip("rich.yaml", rich);
    ok(y && strstr(y, "    livenessProbe:\n      httpGet:\n        path: /healthz\n        port: "
                      "http\n      initialDelaySeconds: 3\n"),
       "probe handler inlined on output");
    ok(y && strstr(y, "  creationTimestamp: \"2026-11-28T06:35:04Z\"\n"), "time quoted");
    ok(y && strstr(y, "  startTime: \"2026-11-28T05:35:05Z\"\n"), "time with offset to UTC");
    ok(y && strstr(y, "    \"yes\": \"true\"\n"), "ambiguous strings quoted");
    ok(y && strstr(y, "        cpu: \"1\"\n"), "quantity 1 quoted");
    ok(y && strstr(y, "      value: \"0123\"\n"), "digit string quoted");
    ok(y && strstr(y, "    note: |-\n      line one\n      line two\n") == NULL &&
           strstr(y, "    note: |\n      line one\n      line two\n"),
       "multi-line string as a literal block");
    if (y && !strstr(y, "note: |\n"))
        diag("%s", y);
    free(y);

    /* JSON output layout */
    struct kobjs o = {0};
    char *err = NULL;
    const char *small = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels: {x: y}\n"
                        "spec:\n  containers:\n  - name: c\n    image: i\n    command: []\n";
    ok(kobj_parse("s.yaml", small, strlen(small), &o, &err) == 0, "small parses");
    char *j = kobj_emit(o.v[0].kind, o.v[0].msg, KOBJ_FMT_JSON);
    is_str(j,
           "{\n"
           "    \"apiVersion\": \"v1\",\n"
           "    \"kind\": \"Pod\",\n"
           "    \"metadata\": {\n"
           "        \"name\": \"a\",\n"
           "        \"labels\": {\n"
           "            \"x\": \"y\"\n"
           "        }\n"
           "    },\n"
           "    \"spec\": {\n"
           "        \"containers\": [\n"
           "            {\n"
           "                \"name\": \"c\",\n"
           "                \"image\": \"i\"\n"
           "            }\n"
           "        ]\n"
           "    }\n"
           "}\n",
           "-o json layout");
    free(j);
    j = kobj_emit(o.v[0].kind, o.v[0].msg, KOBJ_FMT_JSON_COMPACT);
    is_str(j,
           "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"labels\":{\"x\":"
           "\"y\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}",
           "compact JSON (last-applied)");
    free(j);
    char *l = kobj_emit_list(&kind_pod, &o.v[0].msg, 1, KOBJ_FMT_YAML);
    is_str(l,
           "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: a\n"
           "    labels:\n      x: \"y\"\n  spec:\n    containers:\n    - name: c\n      image: i\n"
           "kind: List\nmetadata:\n  resourceVersion: \"\"\n",
           "list YAML");
    struct kobjs lo = {0};
    ok(kobj_parse("list.yaml", l, strlen(l), &lo, &err) == 0 && lo.n == 1,
       "kind: List parses back into its items");
    kobjs_free(&lo);
    free(l);
    kobjs_free(&o);
}

static void test_errors(void)
{
    expect_err("apiVersion: v1\n"
               "kind: Pod\n"
               "metadata:\n"
               "  name: x\n"
               "spec:\n"
               "  containers:\n"
               "  - name: c\n"
               "    image: i\n"
               "    ports:\n"
               "    - name: web\n"
               "      protocol: TCP\n"
               "      containerPort: http\n",
               "pod.yaml:12:22: spec.containers[0].ports[0].containerPort: expected integer, got "
               "\"http\"",
               "wrong type names file:line:col and path");
    expect_err("apiVersion: v1\n"
               "kind: Pod\n"
               "metadata:\n"
               "  name: x\n"
               "spec:\n"
               "  contaners:\n"
               "  - name: c\n",
               "pod.yaml:6:3: spec.contaners: unknown field \"contaners\"", "unknown field");
    expect_err("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  name: y\n",
               "pod.yaml:5:3: metadata: duplicate key \"name\"", "duplicate key");
    expect_err("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: c\n    resources:\n"
               "      limits:\n        cpu: lots\n",
               "pod.yaml:8:14: spec.containers[0].resources.limits.cpu: quantities must match the "
               "regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
               "bad quantity");
    expect_err("apiVersion: v1\nkind: Pod\nmetadata:\n  labels:\n    a: 1\n",
               "pod.yaml:5:8: metadata.labels.a: expected string, got 1", "int for a string");
    expect_err("apiVersion: v1\nkind: Pod\nspec:\n  hostNetwork: yes\n",
               "pod.yaml:4:16: spec.hostNetwork: expected boolean, got \"yes\"", "bool");
    expect_err("apiVersion: v1\nkind: Pod\nspec:\n  containers: {}\n",
               "pod.yaml:4:15: spec.containers: expected sequence, got mapping", "seq");
    expect_err("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - livenessProbe:\n"
               "      handler: {}\n",
               "pod.yaml:6:7: spec.containers[0].livenessProbe.handler: unknown field \"handler\"",
               "inlined field is not a key itself");
    expect_err("apiVersion: v2\nkind: Pod\n",
               "pod.yaml:2:7: no matches for kind \"Pod\" in version \"v2\"", "bad apiVersion");
    expect_err("apiVersion: v1\nkind: Pdo\n",
               "pod.yaml:2:7: no matches for kind \"Pdo\" in version \"v1\"", "unknown kind");
    expect_err("metadata:\n  name: x\n", "pod.yaml:1:1: Object 'Kind' is missing", "no kind");
    expect_err("apiVersion: v1\nkind: Pod\nmetadata: &m\n  name: x\nspec: *m\n",
               "pod.yaml:5:7: YAML aliases are not supported", "aliases refused");
    expect_err("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [x\n",
               "pod.yaml:5:1: did not find expected ',' or ']' while parsing a flow sequence",
               "syntax error");
    expect_err("apiVersion: v1\nkind: Pod\nmetadata:\n  creationTimestamp: yesterday\n",
               "pod.yaml:4:22: metadata.creationTimestamp: expected RFC 3339 time, got "
               "\"yesterday\"",
               "bad time");
    expect_err("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - ports:\n"
               "    - containerPort: 99999999999\n",
               "pod.yaml:6:22: spec.containers[0].ports[0].containerPort: integer 99999999999 "
               "out of range",
               "int32 range");

    /* a YAML bomb: deep nesting */
    struct buf b = {0};
    buf_puts(&b, "apiVersion: v1\nkind: Pod\nmetadata: ");
    for (int i = 0; i < 100000; i++)
        buf_puts(&b, "[");
    struct kobjs o = {0};
    char *err = NULL;
    int brc = kobj_parse("bomb.yaml", b.p, b.len, &o, &err);
    ok(brc < 0 && err && strstr(err, "nesting deeper than 64 levels"), "deep nesting refused: %s",
       err ? err : "");
    free(err);
    buf_free(&b);
    /* the billion laughs */
    const char *laughs = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a]\n"
                         "c: [*b, *b, *b, *b, *b, *b, *b]\n";
    ok(kobj_parse("laughs.yaml", laughs, strlen(laughs), &o, &err) < 0 && err &&
           strstr(err, "aliases are not supported"),
       "billion laughs refused");
    free(err);

    /* very many keys: linear-ish, and the first duplicate in document order is named */
    struct buf m = {0};
    buf_puts(&m, "apiVersion: v1\nkind: Pod\nmetadata:\n  labels:\n");
    for (int i = 0; i < 200000; i++)
        buf_printf(&m, "    k%d: v\n", i);
    buf_puts(&m, "    k7: again\n    k3: again\n");
    clock_t t0 = clock();
    err = NULL;
    int mrc = kobj_parse("many.yaml", m.p, m.len, &o, &err);
    ok(mrc < 0 && err && !strcmp(err, "many.yaml:200005:5: metadata.labels: duplicate key \"k7\""),
       "200000 keys: duplicate found (%s)", err ? err : "");
    ok((double)(clock() - t0) / CLOCKS_PER_SEC < 20, "200000 keys: no quadratic blowup");
    free(err);
    buf_free(&m);
}

/* strings YAML could take for something else, or that need quoting or escapes */
static void test_tricky_strings(void)
{
    static const char *const strs[] = {
        "",
        " lead",
        "trail ",
        "- dash",
        ": colon",
        "a: b",
        "#hash",
        "a #b",
        "@at",
        "`tick",
        "!bang",
        "&amp",
        "*star",
        "%pct",
        "{brace}",
        "[bracket]",
        "'single'",
        "\"double\"",
        "yes",
        "No",
        "on",
        "OFF",
        "y",
        "true",
        "False",
        "null",
        "~",
        "1",
        "-1",
        "0x1F",
        "0o17",
        "1.5",
        "1e3",
        ".inf",
        ".nan",
        "1_000",
        "12:30",
        "2026-11-28",
        "multi\nline\n",
        "trailing\n\n",
        "tab\there",
        "back\\slash",
        "\u00e9t\u00e9 \u65e5\u672c",
        "ctl\x01char",
        "---",
        "...",
        "? q",
        "a,b",
        "<html>&",
    };
    size_t n = sizeof(strs) / sizeof(*strs);
    int good = 1;
    for (size_t i = 0; i < n; i++) {
        Coracle__V1__Pod p = CORACLE__V1__POD__INIT;
        Coracle__V1__PodSpec sp = CORACLE__V1__POD_SPEC__INIT;
        Coracle__V1__Container ct = CORACLE__V1__CONTAINER__INIT, *cp = &ct;
        char *args[1] = {(char *)strs[i]};
        ct.name = (char *)"c";
        ct.args = args;
        ct.n_args = 1;
        sp.containers = &cp;
        sp.n_containers = 1;
        p.spec = &sp;
        for (int fmt = 0; fmt < 3; fmt++) {
            char *y = kobj_emit(&kind_pod, &p.base, (enum kobj_fmt)fmt), *err = NULL;
            struct kobjs o = {0};
            int rc = kobj_parse("s", y, strlen(y), &o, &err);
            const Coracle__V1__Pod *q = rc == 0 && o.n == 1 ? (Coracle__V1__Pod *)o.v[0].msg : NULL;
            if (!q || !q->spec || q->spec->containers[0]->n_args != 1 ||
                strcmp(q->spec->containers[0]->args[0], strs[i])) {
                diag("string %zu (format %d) did not survive: %s\n%s", i, fmt, err ? err : "", y);
                good = 0;
            }
            free(err);
            free(y);
            kobjs_free(&o);
        }
    }
    ok(good, "%zu tricky strings survive YAML, JSON and compact JSON", n);
}

static void test_multi(void)
{
    const char *two = "# two pods\n"
                      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n"
                      "---\n"
                      "---\n"
                      "apiVersion: v1\nkind: List\nitems:\n"
                      "- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: b\n"
                      "- apiVersion: coordination.k8s.io/v1\n  kind: Lease\n  metadata:\n"
                      "    name: l\n  spec:\n    holderIdentity: n1\n"
                      "    renewTime: \"2026-11-28T06:35:04.123456Z\"\n";
    struct kobjs o = {0};
    char *err = NULL;
    ok(kobj_parse("m.yaml", two, strlen(two), &o, &err) == 0, "multi-doc parses %s",
       err ? err : "");
    is_int(o.n, 3, "three objects (empty document skipped, List expanded)");
    if (o.n == 3) {
        is_str(o.v[0].where, "m.yaml:2", "first where");
        ok(o.v[2].kind == &kind_lease, "third is a Lease");
        char *y = kobj_emit(o.v[2].kind, o.v[2].msg, KOBJ_FMT_YAML);
        ok(strstr(y, "apiVersion: coordination.k8s.io/v1\nkind: Lease\n") &&
               strstr(y, "renewTime: \"2026-11-28T06:35:04.123456Z\""),
           "lease with MicroTime");
        free(y);
    }
    const char *bad = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n"
                      "---\n"
                      "apiVersion: v1\nkind: Pod\nmetadata:\n  nme: b\n";
    size_t before = o.n;
    ok(kobj_parse("m.yaml", bad, strlen(bad), &o, &err) < 0 && o.n == before,
       "one bad document: nothing appended");
    is_str(err, "m.yaml:9:3: metadata.nme: unknown field \"nme\"", "bad doc's error");
    free(err);
    kobjs_free(&o);

    /* JSON input */
    const char *json = "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": "
                       "\"j\"}, \"spec\": {\"containers\": [{\"name\": \"c\", \"ports\": "
                       "[{\"containerPort\": 80}]}]}}";
    ok(kobj_parse("p.json", json, strlen(json), &o, &err) == 0 && o.n == 1, "JSON input");
    kobjs_free(&o);

    /* parse one bare message (the last-applied annotation path) */
    const char *ann = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\"}}";
    ProtobufCMessage *m =
        kobj_parse_msg("ann", ann, strlen(ann), &coracle__v1__pod__descriptor, &err);
    ok(m && !strcmp(((Coracle__V1__Pod *)m)->metadata->name, "a"), "bare message parse");
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
}

static void test_fields(void)
{
    Coracle__V1__Pod a = CORACLE__V1__POD__INIT, b = CORACLE__V1__POD__INIT;
    Coracle__V1__ObjectMeta *md = malloc(sizeof(*md));
    coracle__v1__object_meta__init(md);
    md->name = strdup("x");
    md->has_generation = 1;
    md->generation = 3;
    b.metadata = md;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(&coracle__v1__pod__descriptor, "metadata");
    ok(!kobj_field_is_set(&a.base, f) && kobj_field_is_set(&b.base, f), "field_is_set");
    kobj_field_move(&a.base, &b.base, f);
    ok(a.metadata == md && !b.metadata, "field_move");
    const ProtobufCFieldDescriptor *g = protobuf_c_message_descriptor_get_field_by_name(
        &coracle__v1__object_meta__descriptor, "generation");
    kobj_field_clear(&md->base, g);
    ok(!md->has_generation, "field_clear scalar");
    kobj_field_clear(&a.base, f);
    ok(!a.metadata, "field_clear message");
    int64_t s;
    int32_t ns;
    ok(kobj_parse_rfc3339("2026-11-28T06:35:04Z", &s, &ns) == 0 && s == 1795847704 && ns == 0,
       "rfc3339 parse");
    char buf[40];
    kobj_fmt_rfc3339(buf, sizeof(buf), 1795847704, 5000, 1);
    is_str(buf, "2026-11-28T06:35:04.000005Z", "rfc3339 micro");
}

/* fieldValidation's modes: unknown and duplicate fields dropped and named, or errors */
static void test_field_modes(void)
{
    const char *doc = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\","
                      "\"name\":\"b\",\"foo\":1,\"labels\":{\"k\":\"1\",\"k\":\"2\"}},"
                      "\"spec\":{\"bar\":[1],\"containers\":[{\"name\":\"c\",\"baz\":true}]}}";
    char *err = NULL;
    struct kobj_opts o = {.fields = KOBJ_FIELDS_WARN};
    Coracle__V1__Pod *p =
        (void *)kobj_parse_msg_opts("d", doc, strlen(doc), &coracle__v1__pod__descriptor, &o, &err);
    ok(p && !err, "Warn: parsed");
    is_str(p ? p->metadata->name : NULL, "b", "Warn: of duplicates the last wins");
    ok(p && p->metadata->n_labels == 1 && !strcmp(p->metadata->labels[0]->value, "2"),
       "Warn: a duplicate map key: the last value");
    is_int(o.n_warnings, 5, "Warn: five problems named");
    if (o.n_warnings == 5) {
        is_str(o.warnings[0], "duplicate field \"metadata.name\"", "duplicate field's path");
        is_str(o.warnings[1], "unknown field \"metadata.foo\"", "unknown field's path");
        is_str(o.warnings[2], "duplicate field \"metadata.labels.k\"", "duplicate map key");
        is_str(o.warnings[3], "unknown field \"spec.bar\"", "unknown nested field");
        is_str(o.warnings[4], "unknown field \"spec.containers[0].baz\"", "unknown in a list");
    }
    is_str(o.kind, "Pod", "the kind seen");
    is_str(o.api_version, "v1", "the apiVersion seen");
    if (p)
        protobuf_c_message_free_unpacked(&p->base, NULL);
    kobj_opts_free(&o);

    struct kobj_opts ign = {.fields = KOBJ_FIELDS_IGNORE};
    p = (void *)kobj_parse_msg_opts("d", doc, strlen(doc), &coracle__v1__pod__descriptor, &ign,
                                    &err);
    ok(p && ign.n_warnings == 0, "Ignore: parsed, nothing named");
    if (p)
        protobuf_c_message_free_unpacked(&p->base, NULL);
    kobj_opts_free(&ign);

    struct kobj_opts st = {.fields = KOBJ_FIELDS_STRICT};
    p = (void *)kobj_parse_msg_opts("d", doc, strlen(doc), &coracle__v1__pod__descriptor, &st,
                                    &err);
    ok(!p && err && strstr(err, "duplicate key \"name\""), "Strict: an error as before (%s)", err);
    free(err);
    kobj_opts_free(&st);
}

/* The hand-made date writer against gmtime and strftime, over its whole range and its edges. */
static void test_time_writer(void)
{
    const int64_t lo = -30610224000LL, hi = 253402300800LL;
    int64_t edges[] = {lo, lo + 1, -86401, -86400, -1, 0, 1, 951782400, 951868800, hi - 1};
    int bad = 0, n = 0;
    for (int64_t sec = lo; sec < hi + 10; sec += 9999991, n++) {
        int64_t s = n < (int)(sizeof(edges) / sizeof(*edges)) ? edges[n] : sec;
        char got[48], want[48];
        time_t t = (time_t)s;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
        strcat(want, ".000007Z");
        kobj_fmt_rfc3339(got, sizeof(got), s, 7999, 1);
        if (strcmp(got, want) && bad++ < 3)
            diag("%lld: %s, want %s", (long long)s, got, want);
    }
    ok(!bad, "rfc3339 writer equals strftime at %d instants", n);
}

/* Every byte value alone and inside a plain run: escaped as before the table. */
static void test_json_str(void)
{
    int bad = 0;
    for (int c = 0; c < 256; c++) {
        char in[4] = {'a', (char)c, 'b', 0}, want[16];
        if (c == '"' || c == '\\')
            snprintf(want, sizeof(want), "\"a\\%cb\"", c);
        else if (c == '\n' || c == '\t' || c == '\r')
            snprintf(want, sizeof(want), "\"a\\%cb\"", c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
        else if (c < 0x20 || c == '<' || c == '>' || c == '&')
            snprintf(want, sizeof(want), "\"a\\u%04xb\"", c);
        else if (c < 0x80)
            snprintf(want, sizeof(want), "\"a%cb\"", c);
        else
            snprintf(want, sizeof(want), "\"a\\ufffdb\"");
        struct buf b = {0};
        kobj_json_str(&b, in, 3);
        if (strcmp(b.p, want) && bad++ < 3)
            diag("byte %d: %s, want %s", c, b.p, want);
        buf_free(&b);
    }
    ok(!bad, "kobj_json_str: every byte value");
    /* and at every place of runs of every length the scan takes by words (4, 8 bytes) */
    bad = 0;
    for (int c = 0; c < 256; c++)
        for (int n = 1; n <= 19; n++)
            for (int at = 0; at < n; at++) {
                char in[20], one[2] = {(char)c, 0}, want[64];
                memset(in, 'a', sizeof(in));
                in[at] = (char)c;
                struct buf w1 = {0}, got = {0};
                kobj_json_str(&w1, one, 1); /* the byte alone: every value checked above */
                snprintf(want, sizeof(want), "\"%.*s%.*s%.*s\"", at, in, (int)w1.len - 2, w1.p + 1,
                         n - 1 - at, in + at + 1);
                kobj_json_str(&got, in, (size_t)n);
                if (strcmp(got.p, want) && bad++ < 3)
                    diag("byte %d at %d of %d: %s, want %s", c, at, n, got.p, want);
                buf_free(&w1);
                buf_free(&got);
            }
    ok(!bad, "kobj_json_str: every byte value at every place of runs of 1 to 19 bytes");
    struct buf b = {0};
    kobj_json_str(&b, "\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80", 10);
    is_str(b.p, "\"\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80\"", "kobj_json_str: UTF-8 kept");
    buf_free(&b);
    kobj_json_str(&b, "", 0);
    is_str(b.p, "\"\"", "kobj_json_str: empty");
    buf_free(&b);
}

/*
 * JSON goes through kobj_json, and must come out as libyaml would have read
 * it: the same objects, or the same message at the same line:column. The
 * YAML reading is the same text after a "---" line (one line lower).
 */
static void json_as_yaml(const char *json, int json_reads, const char *what)
{
    struct ynode *t = NULL;
    int took = kobj_json_load(json, strlen(json), &t) == 0;
    kobj_ynode_free(t);
    ok(took == json_reads, "%s: %s", what, json_reads ? "read by kobj_json" : "left to libyaml");
    char *y = xasprintf("---\n%s", json), *ej = NULL, *ey = NULL;
    struct kobjs a = {0}, b = {0};
    int rj = kobj_parse("t", json, strlen(json), &a, &ej);
    int ry = kobj_parse("t", y, strlen(y), &b, &ey);
    if (rj == 0 && ry == 0) {
        int same = a.n == b.n;
        for (size_t i = 0; same && i < a.n; i++)
            same = a.v[i].kind == b.v[i].kind && pb_equal(a.v[i].msg, b.v[i].msg);
        ok(same, "%s: the objects YAML reads", what);
    } else if (rj < 0 && ry < 0) {
        int lj, cj, ly, cy, nj = 0, ny = 0;
        sscanf(ej, "t:%d:%d: %n", &lj, &cj, &nj);
        sscanf(ey, "t:%d:%d: %n", &ly, &cy, &ny);
        ok(nj && ny && lj == ly - 1 && cj == cy && !strcmp(ej + nj, ey + ny),
           "%s: YAML's error (%s / %s)", what, ej, ey);
    } else {
        ok(0, "%s: JSON %s, YAML %s", what, ej ? ej : "ok", ey ? ey : "ok");
    }
    free(ej);
    free(ey);
    free(y);
    kobjs_free(&a);
    kobjs_free(&b);
}

static void test_json_reader(void)
{
    json_as_yaml("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\","
                 "\"labels\":{\"x\":\"\\u00e9\\t\\\"\\\\\\/\\u0041\"}},\"spec\":"
                 "{\"containers\":[{\"name\":\"c\",\"image\":\"i\",\"ports\":[{\"containerPort\":"
                 "80}]}]}}",
                 1, "a pod, escapes");
    json_as_yaml("{\r\n  \"apiVersion\": \"v1\",\r\n  \"kind\": \"Pod\",\r\n  \"metadata\": "
                 "{\"name\": \"x\", \"bogus\": 1}\r\n}\r\n",
                 1, "unknown field after CR LF lines");
    json_as_yaml(
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"\xc3\xa9\xe6\x97\xa5\","
        "\"generation\":\"1\"}}",
        1, "columns count characters");
    json_as_yaml(
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"x\",\"name\":\"y\"}}", 1,
        "duplicate key");
    json_as_yaml("{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[{\"apiVersion\":\"v1\","
                 "\"kind\":\"Pod\",\"metadata\":{\"name\":\"x\"}},{\"apiVersion\":\"v1\",\"kind\":"
                 "\"Node\",\"metadata\":{\"name\":\"n\"}}]}",
                 1, "a List");
    json_as_yaml("{apiVersion: v1, kind: Pod, metadata: {name: x,},}", 0, "YAML flow style");
    json_as_yaml("{\"apiVersion\": \"v1\", \"kind\": }", 0, "bad JSON");
    json_as_yaml("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"x\"}}\n---\n"
                 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"y\"}}",
                 0, "two documents");
    char deep[200] = "";
    for (int i = 0; i < 65; i++)
        strcat(deep, "[");
    for (int i = 0; i < 65; i++)
        strcat(deep, "]");
    json_as_yaml(deep, 0, "nesting too deep");
    deep[64] = 0; /* 64 '[' */
    for (int i = 0; i < 64; i++)
        strcat(deep, "]");
    json_as_yaml(deep, 1, "nesting at the limit");
    /* what libyaml refuses and JSON allows: a character outside the BMP as a surrogate pair */
    const char *sp = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"x\","
                     "\"labels\":{\"a\":\"\\ud83d\\ude00\"}}}";
    struct kobjs o = {0};
    char *err = NULL;
    ok(kobj_parse("t", sp, strlen(sp), &o, &err) == 0 && o.n == 1, "JSON: a surrogate pair");
    char *j = o.n ? kobj_emit(o.v[0].kind, o.v[0].msg, KOBJ_FMT_JSON_COMPACT) : NULL;
    ok(j && strstr(j, "\"a\":\"\xf0\x9f\x98\x80\""), "JSON: the pair is one character");
    free(j);
    free(err);
    kobjs_free(&o);
}

/* kobj_emit_pb_buf gives b's JSON (or YAML) as decoding b and kobj_emit_buf do: 1 if so. */
static int same_emit(const struct kind *k, const uint8_t *b, size_t n, enum kobj_fmt fmt)
{
    struct buf got = {0}, want = {0};
    buf_puts(&got, "[");
    buf_puts(&want, "[");
    int rc = kobj_emit_pb_buf(&got, k, b, n, fmt);
    ProtobufCMessage *m = pb_decode(k->desc, b, n);
    if (m)
        kobj_emit_buf(&want, k, m, fmt);
    int same = (rc == 0) == (m != NULL) && got.len == want.len && !strcmp(got.p, want.p);
    if (!same)
        diag("%s: got (%d) %s\nwant %s", k->kind, rc, got.p, want.p);
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    buf_free(&got);
    buf_free(&want);
    return same;
}

/*
 * The answers' JSON straight from stored bytes: the same text as from the
 * decoded message, for random objects of every kind, for their bytes
 * damaged, and for bytes out of coracle's order (a field given twice, a
 * repeated field in two runs), which the walk leaves to the decoder.
 */
static void test_emit_pb(void)
{
    static const uint8_t twice[] = {0x0a, 0x03, 0x0a, 0x01, 'x'}; /* metadata { name: "x" } again */
    for (size_t i = 0; kinds_all[i]; i++) {
        const struct kind *k = kinds_all[i];
        int n = 200, same = 0, msame = 0, mn = 0, osame = 0;
        for (int r = 0; r < n; r++) {
            ProtobufCMessage *m = rnd_msg(k->desc, 0);
            size_t len, cap;
            uint8_t *enc = pb_encode(m, &len);
            protobuf_c_message_free_unpacked(m, NULL);
            cap = 2 * len + 64;
            uint8_t *b = xmalloc(cap);
            memcpy(b, enc, len);
            free(enc);
            same += same_emit(k, b, len, KOBJ_FMT_JSON_COMPACT) &&
                    same_emit(k, b, len, KOBJ_FMT_JSON) && same_emit(k, b, len, KOBJ_FMT_YAML);
            memcpy(b + len, twice, sizeof(twice));
            osame += same_emit(k, b, len + sizeof(twice), KOBJ_FMT_JSON_COMPACT);
            for (int j = 0; j < 10; j++, mn++) {
                size_t ml = len;
                for (int c = 1 + (int)(rnd() % 3); c > 0; c--)
                    ml = mutate(b, ml, cap);
                msame += same_emit(k, b, ml, KOBJ_FMT_JSON_COMPACT);
            }
            free(b);
        }
        ok(same == n && osame == n && msame == mn,
           "%s from bytes: %d of %d random, %d of %d out of order, %d of %d damaged the same",
           k->kind, same, n, osame, n, msame, mn);
    }
}

/* A pod from its JSON, encoded (malloc'd; length in *n). */
static uint8_t *pod_bytes(const char *name, const char *image, size_t *n)
{
    char *y =
        xasprintf("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
                  "\"managedFields\":[{\"manager\":\"kubectl\",\"operation\":\"Update\","
                  "\"apiVersion\":\"v1\",\"time\":\"2026-12-07T21:30:49Z\","
                  "\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:spec\":{\"f:%s\":{}}}}]},"
                  "\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":\"%s\","
                  "\"ports\":[{\"containerPort\":80}],\"imagePullPolicy\":\"IfNotPresent\"}],"
                  "\"restartPolicy\":\"Always\",\"dnsPolicy\":\"ClusterFirst\","
                  "\"schedulerName\":\"default-scheduler\"},\"status\":{\"phase\":\"Pending\"}}",
                  name, image, image);
    struct kobjs o = {0};
    char *err = NULL;
    uint8_t *b = NULL;
    if (kobj_parse("t", y, strlen(y), &o, &err) == 0 && o.n == 1)
        b = pb_encode(o.v[0].msg, n);
    free(err);
    free(y);
    kobjs_free(&o);
    return b;
}

/*
 * Parts known by their bytes (one spec in pods of one template, one
 * managedFields entry) come out as written the first time; a part a byte
 * apart is its own.
 */
static void test_emit_parts(void)
{
    const struct kind *k = kind_lookup("Pod");
    size_t na, nb, nc;
    uint8_t *a = pod_bytes("a", "nginx:1.25", &na), *b = pod_bytes("b", "nginx:1.25", &nb),
            *c = pod_bytes("c", "nginx:1.26", &nc);
    ok(k && a && b && c, "pods of one template encoded");
    if (!k || !a || !b || !c)
        goto out;
    int same = 0;
    for (int r = 0; r < 3; r++)
        same += same_emit(k, a, na, KOBJ_FMT_JSON_COMPACT) &&
                same_emit(k, b, nb, KOBJ_FMT_JSON_COMPACT) &&
                same_emit(k, c, nc, KOBJ_FMT_JSON_COMPACT);
    ok(same == 3, "one spec in several pods, and one a byte apart: each written as decoded");
    struct buf j = {0};
    ok(kobj_emit_pb_buf(&j, k, c, nc, KOBJ_FMT_JSON_COMPACT) == 0 && strstr(j.p, "nginx:1.26") &&
           strstr(j.p, "\"f:nginx:1.26\"") && !strstr(j.p, "nginx:1.25"),
       "the spec and managedFields entry a byte apart are not the other's");
    buf_free(&j);
out:
    free(a);
    free(b);
    free(c);
}

/* bytes fields: standard base64 with padding, as Kubernetes' JSON; strict */
static void test_bytes(void)
{
    free(round_trip("secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n"
                                   "data:\n  a: aGVsbG8=\n  b: aGk=\n  c: \"\"\n  d: AP8A/w==\n"
                                   "type: Opaque\n"));
    struct kobjs o = {0};
    char *err = NULL;
    const char *cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
                     "binaryData:\n  bin: AP8=\n";
    ok(kobj_parse("cm.yaml", cm, strlen(cm), &o, &err) == 0 && o.n == 1, "binaryData parses");
    const Coracle__V1__ConfigMap *c = o.n ? (const void *)o.v[0].msg : NULL;
    ok(c && c->n_binarydata == 1 && c->binarydata[0]->value.len == 2 &&
           !memcmp(c->binarydata[0]->value.data, "\x00\xff", 2),
       "binaryData decoded");
    kobjs_free(&o);
    expect_err("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  a: aGVsbG8\n",
               "pod.yaml:6:6: data.a: illegal base64 data", "base64 without its padding");
    expect_err("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  a: a=Vs\n",
               "pod.yaml:6:6: data.a: illegal base64 data", "padding inside base64");
    expect_err("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  a: 12\n",
               "pod.yaml:6:6: data.a: expected base64 string, got 12", "a number for bytes");
}

int main(void)
{
    test_seeds();
    test_bytes();
    test_json_reader();
    test_time_writer();
    test_json_str();
    test_rich();
    test_errors();
    test_multi();
    test_tricky_strings();
    test_fields();
    test_field_modes();
    test_emit_pb();
    test_emit_parts();
    return done_testing();
}
