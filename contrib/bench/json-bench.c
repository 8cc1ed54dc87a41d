/*
 * json-bench: what a PATCH costs in JSON. First the libraries a mutable JSON
 * tree could come from, on the text the apiserver patches (a pod as
 * Kubernetes' JSON, about 2 KB, and one with 1,000 containers, about 300 KB):
 * parse + serialize with src/lib/json.c (parse only: it has no writer),
 * jansson and json-c. Then kpatch_apply (src/lib/kpatch.c) on the pod:
 * a strategic merge patch as `kubectl apply` sends it, a merge patch as
 * `kubectl label` sends it, and a JSON patch.
 *
 *   json-bench [-n CALLS]
 *
 * Prints one line per measurement, "json <doc> <library>: X ns" or
 * "patch pod <type>: X ns" (CPU time, best of 7 rounds of -n calls each).
 * jansson's and json-c's names clash with each other's and json.h's, so
 * each library is called from a file of its own (json-bench-*.c);
 * jansson's only when configure found it.
 */
#include "config.h"
#include "buf.h"
#include "coracle.pb-c.h"
#include "json.h"
#include "kpatch.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile size_t sink;

/* Parse + serialize with one library: the length of the text written. */
size_t json_bench_jansson(const char *doc, size_t len);
size_t json_bench_json_c(const char *doc, size_t len);

static const char pod_head[] =
    "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"web-7d4b9c8f6d-x2x7q\","
    "\"generateName\":\"web-7d4b9c8f6d-\",\"namespace\":\"default\","
    "\"uid\":\"4f0c3a2e-8b7d-4c1e-9f3a-2b6d5e8c1a90\",\"resourceVersion\":\"123456\","
    "\"creationTimestamp\":\"2026-12-07T06:00:00Z\",\"labels\":{\"app\":\"web\","
    "\"pod-template-hash\":\"7d4b9c8f6d\",\"tier\":\"frontend\"},\"annotations\":{"
    "\"kubectl.kubernetes.io/last-applied-configuration\":\"{\\\"apiVersion\\\":\\\"v1\\\","
    "\\\"kind\\\":\\\"Pod\\\",\\\"metadata\\\":{\\\"name\\\":\\\"web\\\"}}\\n\"},"
    "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":"
    "\"web-7d4b9c8f6d\",\"uid\":\"0d7a6c1b-3e2f-4a5b-8c9d-1e2f3a4b5c6d\",\"controller\":true,"
    "\"blockOwnerDeletion\":true}],\"finalizers\":[\"example.com/protect\"]},"
    "\"spec\":{\"volumes\":[{\"name\":\"data\",\"emptyDir\":{}},{\"name\":\"config\","
    "\"configMap\":{\"name\":\"web-config\",\"defaultMode\":420}}],\"containers\":[";
static const char pod_container[] =
    "{\"name\":\"%s\",\"image\":\"registry.example.com/web:1.25.3\",\"command\":[\"/bin/web\"],"
    "\"args\":[\"--port=8080\",\"--verbose\"],\"ports\":[{\"name\":\"http\",\"containerPort\":8080,"
    "\"protocol\":\"TCP\"}],\"env\":[{\"name\":\"MODE\",\"value\":\"production\"},{\"name\":"
    "\"LOG_LEVEL\",\"value\":\"info\"}],\"resources\":{\"limits\":{\"cpu\":\"500m\",\"memory\":"
    "\"256Mi\"},\"requests\":{\"cpu\":\"250m\",\"memory\":\"128Mi\"}},\"volumeMounts\":[{\"name\":"
    "\"data\",\"mountPath\":\"/data\"},{\"name\":\"config\",\"mountPath\":\"/etc/"
    "web\",\"readOnly\":"
    "true}],\"readinessProbe\":{\"httpGet\":{\"path\":\"/healthz\",\"port\":8080},"
    "\"periodSeconds\":10},\"imagePullPolicy\":\"IfNotPresent\"}";
static const char pod_tail[] =
    "],\"restartPolicy\":\"Always\",\"terminationGracePeriodSeconds\":30,\"dnsPolicy\":"
    "\"ClusterFirst\",\"nodeName\":\"node-1\",\"schedulerName\":\"default-scheduler\","
    "\"tolerations\":[{\"key\":\"node.kubernetes.io/not-ready\",\"operator\":\"Exists\","
    "\"effect\":\"NoExecute\",\"tolerationSeconds\":300}],\"priority\":0},\"status\":{\"phase\":"
    "\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"lastTransitionTime\":"
    "\"2026-12-07T06:00:05Z\"},{\"type\":\"PodScheduled\",\"status\":\"True\","
    "\"lastTransitionTime\":\"2026-12-07T06:00:00Z\"}],\"hostIP\":\"10.0.0.11\",\"podIP\":"
    "\"10.244.1.17\",\"podIPs\":[{\"ip\":\"10.244.1.17\"}],\"startTime\":\"2026-12-07T06:00:00Z\","
    "\"qosClass\":\"Burstable\"}}";

/* A pod with n containers main, c1, c2, ... */
static char *pod_json(int n, size_t *len)
{
    struct buf b = {0};
    buf_add(&b, pod_head, strlen(pod_head));
    for (int i = 0; i < n; i++) {
        char name[16];
        if (i)
            buf_add(&b, ",", 1);
        snprintf(name, sizeof(name), i ? "c%d" : "main", i);
        buf_printf(&b, pod_container, name);
    }
    buf_add(&b, pod_tail, strlen(pod_tail));
    *len = b.len;
    return buf_take(&b);
}

/* CPU time, not wall time: the figures should not depend on what else the machine runs. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

enum lib { LIB_JSONC_OURS, LIB_JANSSON, LIB_JSON_C };
static const char *lib_name[] = {"json.c (parse only)", "jansson", "json-c"};

static void one(enum lib l, const char *doc, size_t len)
{
    switch (l) {
    case LIB_JSONC_OURS: {
        json_t *v = NULL;
        struct json_limits lim = {.max_bytes = 64u << 20};
        if (json_parse(doc, len, &lim, &v, NULL) != 0)
            fatal("json.c refused the document");
        sink += v->n;
        json_free(v);
        break;
    }
    case LIB_JANSSON:
#ifdef HAVE_JANSSON
        sink += json_bench_jansson(doc, len);
#endif
        break;
    case LIB_JSON_C:
        sink += json_bench_json_c(doc, len);
        break;
    }
}

/* ns per call of fn, best of 7 rounds of n calls. */
#define BEST_OF(n, stmt)                                                                           \
    ({                                                                                             \
        double best_ = 1e30;                                                                       \
        for (int r_ = 0; r_ < 7; r_++) {                                                           \
            double t0_ = now_s();                                                                  \
            for (int i_ = 0; i_ < (n); i_++) {                                                     \
                stmt;                                                                              \
            }                                                                                      \
            double dt_ = (now_s() - t0_) * 1e9 / (n);                                              \
            if (dt_ < best_)                                                                       \
                best_ = dt_;                                                                       \
        }                                                                                          \
        best_;                                                                                     \
    })

static void patch_line(const char *what, enum kpatch_type t, const char *doc, size_t len,
                       const char *patch, int n)
{
    size_t out_len = 0;
    int status = 0;
    char *err = NULL;
    double ns = BEST_OF(n, {
        char *o = kpatch_apply(t, &coracle__v1__pod__descriptor, doc, len, patch, strlen(patch),
                               &out_len, &status, &err);
        if (!o)
            fatal("patch %s: %d %s", what, status, err);
        sink += out_len;
        free(o);
    });
    printf("patch pod %s: %.0f ns\n", what, ns);
}

int main(int argc, char **argv)
{
    int n = 2000;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            n = atoi(argv[++i]);
    if (n < 1)
        n = 1;
    size_t small_len, big_len;
    char *small = pod_json(1, &small_len);
    char *big = pod_json(1000, &big_len);
    int big_n = n / 200 > 0 ? n / 200 : 1;
    for (enum lib l = LIB_JSONC_OURS; l <= LIB_JSON_C; l++) {
#ifndef HAVE_JANSSON
        if (l == LIB_JANSSON) {
            printf("json jansson: not built (no libjansson-dev)\n");
            continue;
        }
#endif
        double s = BEST_OF(n, one(l, small, small_len));
        double b = BEST_OF(big_n, one(l, big, big_len));
        printf("json pod (%zu B) %s: %.0f ns\n", small_len, lib_name[l], s);
        printf("json pod-1000 (%zu B) %s: %.0f ns\n", big_len, lib_name[l], b);
    }
    patch_line("strategic (kubectl apply)", KPATCH_STRATEGIC, small, small_len,
               "{\"metadata\":{\"annotations\":{\"kubectl.kubernetes.io/last-applied-"
               "configuration\":\"{}\"}},\"spec\":{\"$setElementOrder/containers\":[{\"name\":"
               "\"main\"}],\"containers\":[{\"image\":\"busybox:1.36\",\"name\":\"main\"}]}}",
               n);
    patch_line("merge (kubectl label)", KPATCH_MERGE, small, small_len,
               "{\"metadata\":{\"labels\":{\"tier\":\"backend\"}}}", n);
    patch_line("json", KPATCH_JSON, small, small_len,
               "[{\"op\":\"replace\",\"path\":\"/spec/containers/0/image\",\"value\":\"busybox\"},"
               "{\"op\":\"add\",\"path\":\"/metadata/labels/x\",\"value\":\"y\"}]",
               n);
    free(small);
    free(big);
    return 0;
}
