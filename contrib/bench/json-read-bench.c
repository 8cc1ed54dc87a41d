/*
 * json-read-bench: how fast JSON request bodies are read, by the readers
 * coracle could use for them, on a typical pod and on a big one. The
 * choice it informed is in doc/DESIGN.md ("JSON"). For each input:
 *
 *   REST body          kobj_parse_msg_opts (Warn) as the REST API reads a create's body:
 *                      straight into the message (kobj_direct.c), no tree
 *   kobj_parse JSON    kobj_parse as manifests are read: kobj_json's tree, then the mapper
 *   kobj_parse YAML    the same bytes after a "---" line: libyaml's tree, then the mapper
 *   kobj_json tree     kobj_json_load alone (the tree the mapper reads, with line:column)
 *   libyaml events     yaml_parser_parse over every event, no tree built (a lower bound)
 *   json.c             src/lib/json.c: json_parse into its tree, json_free
 *   jansson            json_loadb (JSON_REJECT_DUPLICATES), json_decref
 *   json-c             json_tokener_parse_ex, json_object_put
 *
 * The three libraries build trees of their own without positions, so
 * using one would add a conversion to kobj's tree and lose the line:column
 * every error names; their times are a lower bound of what they would
 * cost. jansson and json-c are read in files of their own
 * (json-read-bench-jansson.c, json-read-bench-json-c.c: their names clash
 * with each other and with json.h); jansson only when configure found it.
 *
 *   contrib/bench/json-read-bench [CALLS [typical|big]]
 *
 * Prints one line per reader and input: ns per call (best of 7 rounds)
 * and MB/s. Arguments: calls per round (default: about 20 MB of input),
 * then "typical" or "big" for one input only (for callgrind, whose
 * instruction counts are steadier than times on a shared machine).
 */
#include "config.h"
#include "buf.h"
#include "json.h"
#include "kobj_int.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yaml.h>

static int64_t ns_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct input {
    const char *name;
    char *json, *yaml; /* yaml: "---\n" + json */
    size_t len;
};

static void r_rest_body(const struct input *in)
{
    struct kobj_opts o = {.fields = KOBJ_FIELDS_WARN};
    char *err = NULL;
    ProtobufCMessage *m =
        kobj_parse_msg_opts("b", in->json, in->len, &coracle__v1__pod__descriptor, &o, &err);
    if (!m || o.n_warnings)
        fatal("kobj_parse_msg_opts: %s", err ? err : o.warnings[0]);
    protobuf_c_message_free_unpacked(m, NULL);
    kobj_opts_free(&o);
}

static void r_kobj_json(const struct input *in)
{
    struct kobjs o = {0};
    char *err = NULL;
    if (kobj_parse("b", in->json, in->len, &o, &err) < 0)
        fatal("kobj_parse JSON: %s", err);
    kobjs_free(&o);
}

static void r_kobj_yaml(const struct input *in)
{
    struct kobjs o = {0};
    char *err = NULL;
    if (kobj_parse("b", in->yaml, in->len + 4, &o, &err) < 0)
        fatal("kobj_parse YAML: %s", err);
    kobjs_free(&o);
}

static void r_tree(const struct input *in)
{
    struct ynode *t;
    if (kobj_json_load(in->json, in->len, &t) < 0)
        fatal("kobj_json_load refused the input");
    kobj_ynode_free(t);
}

static void r_libyaml(const struct input *in)
{
    yaml_parser_t p;
    yaml_event_t ev;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)in->json, in->len);
    for (int done = 0; !done;) {
        if (!yaml_parser_parse(&p, &ev))
            fatal("libyaml: %s", p.problem);
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
}

static void r_jsonc_own(const struct input *in)
{
    json_t *v;
    char *err = NULL;
    if (json_parse(in->json, in->len, NULL, &v, &err) < 0)
        fatal("json.c: %s", err);
    json_free(v);
}

/* In json-read-bench-jansson.c and json-read-bench-json-c.c: parse and free, 0 or -1. */
int jb_jansson(const char *buf, size_t len);
int jb_json_c(const char *buf, size_t len);

#ifdef HAVE_JANSSON
static void r_jansson(const struct input *in)
{
    if (jb_jansson(in->json, in->len) < 0)
        fatal("jansson refused the input");
}
#endif

static void r_json_c(const struct input *in)
{
    if (jb_json_c(in->json, in->len) < 0)
        fatal("json-c refused the input");
}

static const struct {
    const char *name;
    void (*fn)(const struct input *);
} readers[] = {
    {"REST body", r_rest_body}, /* the REST API's creates and updates */
    {"kobj_parse JSON", r_kobj_json},
    {"kobj_parse YAML", r_kobj_yaml},
    {"kobj_json tree", r_tree},
    {"libyaml events", r_libyaml},
    {"json.c", r_jsonc_own},
#ifdef HAVE_JANSSON
    {"jansson", r_jansson},
#endif
    {"json-c", r_json_c},
};

/* One container of the big pod: env, args, ports, resources, probes. */
static void big_container(struct buf *b, int i)
{
    buf_printf(
        b,
        "{\"name\":\"c%d\",\"image\":\"registry.example.com/team/app-%d:v1.2.%d\","
        "\"args\":[\"--port=80%02d\",\"--log-level=info\",\"--config=/etc/app/%d.yaml\"],"
        "\"ports\":[{\"name\":\"http\",\"containerPort\":%d,\"protocol\":\"TCP\"}],\"env\":[",
        i, i, i, i % 100, i, 8000 + i);
    for (int e = 0; e < 20; e++)
        buf_printf(b, "%s{\"name\":\"VAR_%d_%d\",\"value\":\"value \\\"%d\\\" of container %d\"}",
                   e ? "," : "", i, e, e, i);
    buf_printf(b,
               "],\"resources\":{\"requests\":{\"cpu\":\"%dm\",\"memory\":\"%dMi\"},"
               "\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}},"
               "\"readinessProbe\":{\"httpGet\":{\"path\":\"/healthz\",\"port\":%d},"
               "\"periodSeconds\":5},\"imagePullPolicy\":\"IfNotPresent\"}",
               10 * (i + 1), 16 * (i + 1), 8000 + i);
}

static void make_input(struct input *in, const char *name, char *json)
{
    in->name = name;
    in->json = json;
    in->len = strlen(json);
    in->yaml = xasprintf("---\n%s", json);
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 0;
    struct input in[2];
    /* a pod as kubectl sends one: the seed's multiple-container pod */
    make_input(
        &in[0], "typical pod",
        xstrdup("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
                "\"multiple-container-pod\",\"namespace\":\"default\",\"labels\":{\"app\":"
                "\"web\",\"tier\":\"frontend\"},\"annotations\":{\"kubectl.kubernetes.io/"
                "last-applied-configuration\":\"{\\\"apiVersion\\\":\\\"v1\\\",\\\"kind\\\":"
                "\\\"Pod\\\",\\\"metadata\\\":{\\\"name\\\":\\\"multiple-container-pod\\\"}}"
                "\\n\"}},\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":"
                "\"nginx:1.25\",\"ports\":[{\"containerPort\":80,\"protocol\":\"TCP\"}],"
                "\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"}}},"
                "{\"name\":\"sidecar\",\"image\":\"busybox:1.36\",\"command\":[\"sh\",\"-c\","
                "\"while true; do date; sleep 5; done\"],\"env\":[{\"name\":\"MODE\","
                "\"value\":\"tail\"}]}],\"restartPolicy\":\"Always\"}}"));
    struct buf b = {0};
    buf_puts(&b, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"big\","
                 "\"namespace\":\"default\",\"labels\":{");
    for (int i = 0; i < 200; i++)
        buf_printf(&b, "%s\"example.com/label-%d\":\"value-%d\"", i ? "," : "", i, i);
    buf_puts(&b, "}},\"spec\":{\"containers\":[");
    for (int i = 0; i < 50; i++) {
        if (i)
            buf_puts(&b, ",");
        big_container(&b, i);
    }
    buf_puts(&b, "]}}");
    make_input(&in[1], "big pod", buf_take(&b));
    for (size_t k = 0; k < 2; k++) {
        if (argc > 2 && !strstr(in[k].name, argv[2]))
            continue;
        long n = rounds ? rounds : (long)(20000000 / in[k].len) + 1;
        for (size_t r = 0; r < ARRAY_SIZE(readers); r++) {
            int64_t best = INT64_MAX;
            for (int round = 0; round < 7; round++) {
                int64_t t0 = ns_now();
                for (long i = 0; i < n; i++)
                    readers[r].fn(&in[k]);
                int64_t t = (ns_now() - t0) / n;
                if (t < best)
                    best = t;
            }
            printf("json %s (%zu bytes) %-16s %9lld ns %7.1f MB/s\n", in[k].name, in[k].len,
                   readers[r].name, (long long)best, (double)in[k].len * 1e3 / (double)best);
        }
    }
    return 0;
}
