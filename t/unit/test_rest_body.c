/*
 * test_rest_body: the REST API's write bodies (rest_body.c) and the
 * Invalid Status of admission errors (kjson_invalid): media types, the
 * three encodings, fieldValidation's modes, apiVersion and kind against
 * the path's, DeleteOptions from a body and from the query, and causes
 * split from messages whose details hold commas. Also which requests are
 * long-running (rest_long_running), out of the in-flight limits.
 */
#include "config.h"
#include "h2s_int.h"
#include "json.h"
#include "kjson.h"
#include "obj.h"
#include "rest.h"
#include "rest_int.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static const char pod[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\","
    "\"foo\":1},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}";

/* Decodes body as a Pod; returns the HTTP status (0: decoded) and *msg (malloc'd) */
static int pod_status(const char *media, const void *body, size_t len, enum kobj_fields f,
                      char **msg, size_t *warnings)
{
    struct kobj_opts ko = {0};
    struct rest_err e = {0};
    ProtobufCMessage *m =
        rest_body_decode(media, body, len, kind_pod.desc, "Pod", "v1", f, &ko, &e);
    *warnings = ko.n_warnings;
    kobj_opts_free(&ko);
    *msg = e.msg;
    if (m)
        obj_free(m);
    return m ? 0 : e.status;
}

static void test_bodies(void)
{
    char *mt = rest_media_type("Application/JSON; charset=utf-8");
    is_str(mt, "application/json", "media type: parameters dropped, lower case");
    free(mt);
    char *msg;
    size_t w;
    is_int(pod_status("", pod, strlen(pod), KOBJ_FIELDS_WARN, &msg, &w), 0, "no type: JSON");
    is_int(w, 1, "Warn: the unknown field named");
    is_int(pod_status("application/json", pod, strlen(pod), KOBJ_FIELDS_STRICT, &msg, &w), 400,
           "Strict: 400");
    is_str(msg,
           "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown "
           "field \"metadata.foo\"",
           "Strict: Kubernetes' words");
    free(msg);
    is_int(pod_status("application/json", pod, strlen(pod), KOBJ_FIELDS_IGNORE, &msg, &w), 0,
           "Ignore: decoded");
    is_int(w, 0, "Ignore: nothing named");
    static const char yaml[] = "kind: Pod\nmetadata: {name: y}\n";
    is_int(pod_status("application/yaml", yaml, strlen(yaml), KOBJ_FIELDS_STRICT, &msg, &w), 0,
           "YAML, apiVersion left out");
    static const char node[] = "{\"apiVersion\":\"v1\",\"kind\":\"Node\"}";
    is_int(pod_status("", node, strlen(node), KOBJ_FIELDS_WARN, &msg, &w), 400, "a Node: 400");
    free(msg);
    static const char v2[] = "{\"apiVersion\":\"v2\"}";
    is_int(pod_status("", v2, strlen(v2), KOBJ_FIELDS_WARN, &msg, &w), 400, "apiVersion v2: 400");
    is_str(msg, "the API version in the data (v2) does not match the expected API version (v1)",
           "apiVersion: Kubernetes' words");
    free(msg);
    is_int(pod_status("text/plain", pod, strlen(pod), KOBJ_FIELDS_WARN, &msg, &w), 415,
           "text/plain: 415");
    free(msg);
    /* "k8s\0", Unknown{typeMeta{"v1", "Pod"}, raw: Pod{metadata{name "p"}}} */
    static const uint8_t pb[] = {'k',  '8', 's', 0,   0x0a, 0x09, 0x0a, 0x02, 'v',  '1',  0x12,
                                 0x03, 'P', 'o', 'd', 0x12, 0x05, 0x0a, 0x03, 0x0a, 0x01, 'p'};
    is_int(pod_status("application/vnd.kubernetes.protobuf", pb, sizeof(pb), KOBJ_FIELDS_STRICT,
                      &msg, &w),
           0, "the protobuf envelope");
    is_int(pod_status("application/vnd.kubernetes.protobuf", pb, 6, KOBJ_FIELDS_STRICT, &msg, &w),
           400, "a cut envelope: 400");
    free(msg);
    is_int(pod_status("application/vnd.kubernetes.protobuf", pb + 1, sizeof(pb) - 1,
                      KOBJ_FIELDS_STRICT, &msg, &w),
           400, "no magic: 400");
    free(msg);
}

static void test_delete_options(void)
{
    struct rquery q;
    struct rest_delete_opts d;
    struct rest_err e;
    static const char body[] = "{\"gracePeriodSeconds\":5,\"preconditions\":{\"uid\":\"u\"},"
                               "\"propagationPolicy\":\"Foreground\",\"dryRun\":[\"All\"]}";
    rest_query_parse("", &q);
    ok(rest_delete_opts_parse("application/json", body, strlen(body), &q, &d, &e) == 0 &&
           d.has_grace && d.grace == 5 && d.pre_uid && !strcmp(d.pre_uid, "u") && !d.pre_rv &&
           d.dry_run && !strcmp(d.policy, "Foreground"),
       "DeleteOptions from a body");
    rest_delete_opts_free(&d);
    static const char bad[] = "{\"propagationPolicy\":\"Sideways\"}";
    ok(rest_delete_opts_parse("", bad, strlen(bad), &q, &d, &e) < 0 && e.status == 422 &&
           strstr(e.msg, "propagationPolicy: Unsupported value: \"Sideways\""),
       "a bad propagationPolicy: 422");
    free(e.msg);
    ok(rest_delete_opts_parse("application/yaml", bad, strlen(bad), &q, &d, &e) < 0 &&
           e.status == 415,
       "a YAML DeleteOptions: 415");
    free(e.msg);
    rest_query_free(&q);
    rest_query_parse("gracePeriodSeconds=0&propagationPolicy=Background", &q);
    ok(rest_delete_opts_parse("", "", 0, &q, &d, &e) == 0 && d.has_grace && d.grace == 0 &&
           !strcmp(d.policy, "Background"),
       "DeleteOptions from the query");
    rest_delete_opts_free(&d);
    rest_query_free(&q);
    rest_query_parse("gracePeriodSeconds=-1", &q);
    ok(rest_delete_opts_parse("", "", 0, &q, &d, &e) < 0 && e.status == 422, "grace < 0: 422");
    free(e.msg);
    rest_query_free(&q);
}

/* DeleteOptions in Kubernetes' protobuf envelope, and the deprecated orphanDependents. */
static void test_delete_options_pb(void)
{
    struct rquery q;
    struct rest_delete_opts d;
    struct rest_err e;
    /* "k8s\0", runtime.Unknown{raw: DeleteOptions{gracePeriodSeconds: 5,
     * preconditions: {uid: "u"}, propagationPolicy: "Orphan", dryRun: ["All"]}} */
    static const uint8_t pb[] = {'k', '8',  's', 0,    0x12, 20,  0x08, 5,   0x12,
                                 3,   0x0a, 1,   'u',  0x22, 6,   'O',  'r', 'p',
                                 'h', 'a',  'n', 0x2a, 3,    'A', 'l',  'l'};
    rest_query_parse("", &q);
    ok(rest_delete_opts_parse(REST_PB, pb, sizeof(pb), &q, &d, &e) == 0 && d.has_grace &&
           d.grace == 5 && d.pre_uid && !strcmp(d.pre_uid, "u") && d.gc == GCPOLICY_ORPHAN &&
           d.dry_run,
       "DeleteOptions from a protobuf body");
    rest_delete_opts_free(&d);
    ok(rest_delete_opts_parse(REST_PB, pb, 10, &q, &d, &e) < 0 && e.status == 400,
       "a truncated protobuf DeleteOptions: 400");
    free(e.msg);
    static const char both[] = "{\"propagationPolicy\":\"Orphan\",\"orphanDependents\":true}";
    ok(rest_delete_opts_parse("", both, strlen(both), &q, &d, &e) < 0 && e.status == 422 &&
           strstr(e.msg, "orphanDependents and deletionPropagation cannot be both set"),
       "propagationPolicy with orphanDependents: 422");
    free(e.msg);
    static const char od[] = "{\"orphanDependents\":false}";
    ok(rest_delete_opts_parse("", od, strlen(od), &q, &d, &e) == 0 && d.gc == GCPOLICY_BACKGROUND,
       "orphanDependents: false is Background");
    rest_delete_opts_free(&d);
    rest_query_free(&q);
    rest_query_parse("orphanDependents=true", &q);
    ok(rest_delete_opts_parse("", "", 0, &q, &d, &e) == 0 && d.gc == GCPOLICY_ORPHAN,
       "orphanDependents=true in the query is Orphan");
    rest_delete_opts_free(&d);
    rest_query_free(&q);
    rest_query_parse("orphanDependents=maybe", &q);
    ok(rest_delete_opts_parse("", "", 0, &q, &d, &e) < 0 && e.status == 400,
       "orphanDependents=maybe: 400");
    free(e.msg);
    rest_query_free(&q);
}

static void test_invalid(void)
{
    char *s = kjson_invalid("", "Pod", "x",
                            "Pod \"x\" is invalid: [spec.restartPolicy: Unsupported value: "
                            "\"Sometimes\": supported values: \"Always\", \"Never\", "
                            "spec.containers[0].image: Required value]");
    json_t *j = NULL;
    ok(json_parse(s, strlen(s), NULL, &j, NULL) == 0, "Invalid: JSON");
    json_t *causes = json_get(json_get(j, "details"), "causes");
    is_int(causes ? (int)causes->n : -1, 2, "two causes, commas in a message kept");
    is_str(json_str(json_get(json_at(causes, 0), "field")), "spec.restartPolicy", "first field");
    is_str(json_str(json_get(json_at(causes, 0), "message")),
           "Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\"",
           "first message");
    is_str(json_str(json_get(json_at(causes, 0), "reason")), "FieldValueNotSupported",
           "first reason");
    is_str(json_str(json_get(json_at(causes, 1), "reason")), "FieldValueRequired", "second reason");
    is_int(json_int64(json_get(j, "code"), &(int64_t){0}), 0, "a code");
    json_free(j);
    free(s);
    s = kjson_invalid("meta.k8s.io", "DeleteOptions", "", "no colon here");
    ok(strstr(s, "\"group\":\"meta.k8s.io\"") && !strstr(s, "causes"), "no causes to find");
    free(s);
}

/* Kubernetes' long-running check: the watch and proxy verbs, the connect subresources. */
static void test_long_running(void)
{
    static const struct {
        const char *method, *target;
        int want;
    } cases[] = {
        {"GET", "/api/v1/namespaces/default/pods?watch=true", 1},
        {"GET", "/api/v1/pods?labelSelector=a&watch=1", 1},
        {"GET", "/apis/apps/v1/namespaces/d/deployments?watch", 1},
        {"GET", "/api/v1/namespaces/default/pods/p?watch=true", 1},
        {"GET", "/api/v1/watch/namespaces/default/pods", 1},
        {"GET", "/api/v1/namespaces/default/pods/p/log?follow=true", 1},
        {"GET", "/api/v1/namespaces/default/pods/p/log", 1},
        {"POST", "/api/v1/namespaces/default/pods/p/exec?command=sh", 1},
        {"GET", "/api/v1/namespaces/default/pods/p/attach", 1},
        {"POST", "/api/v1/namespaces/default/pods/p/portforward", 1},
        {"GET", "/api/v1/nodes/n1/proxy/metrics", 1},
        {"GET", "/api/v1/namespaces/default/services/s/proxy/x", 1},
        {"GET", "/api/v1/namespaces/default/pods?watch=false", 0},
        {"GET", "/api/v1/namespaces/default/pods?allowWatchBookmarks=true", 0},
        {"POST", "/api/v1/namespaces/default/pods?watch=true", 0},
        {"GET", "/api/v1/namespaces/default/pods/p", 0},
        {"GET", "/api/v1/namespaces/default/pods/log", 0}, /* a pod named "log" */
        {"GET", "/api/v1/namespaces/log/status", 0},
        {"GET", "/apis/apps/v1/namespaces/d/deployments/x/scale", 0},
        {"GET", "/api/v1", 0},
        {"GET", "/metrics", 0},
        {"GET", "/openapi/v2?watch=true", 0},
        {"POST", "/api//v1///namespaces/default/pods/p//exec/", 1}, /* empty segments */
        {"GET", "/apis/", 0},
        {"GET", "/api/v1/namespaces/default/pods/p/exec/a/b/c/d", 1},
        {"GET", "/api/v1/a/b/c/d/e/f/g/h/proxy", 0}, /* past the segments looked at */
    };
    struct event_base *base = event_base_new();
    struct h2s_config cfg = {0};
    h2s_t *s = h2s_new(base, &cfg);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        h2s_req_t *r = h2s_req_new(s, NULL, cases[i].method, strlen(cases[i].method),
                                   cases[i].target, strlen(cases[i].target));
        int got = rest_long_running(r);
        ok(got == cases[i].want, "%s %s: %s (%d)", cases[i].method, cases[i].target,
           cases[i].want ? "long-running" : "counted", got);
        h2s_req_free(r);
    }
    h2s_free(s);
    event_base_free(base);
}

int main(void)
{
    test_long_running();
    test_bodies();
    test_delete_options();
    test_delete_options_pb();
    test_invalid();
    return done_testing();
}
