/*
 * test_openapi: the OpenAPI documents (src/apiserver/openapi.c): Kubernetes'
 * definition names, one schema in each version, the operations kubectl
 * looks at, the protobuf form; and the Accept header clauses discovery and
 * the OpenAPI endpoints choose their answer by (rest_disc.c,
 * rest_openapi.c), hostile headers included.
 */
#include "config.h"
#include "buf.h"
#include "json.h"
#include "openapi.h"
#include "rest_int.h"
#include "tap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static void names(void)
{
    static const struct {
        const ProtobufCMessageDescriptor *d;
        const char *name;
    } want[] = {
        {&coracle__v1__pod__descriptor, "io.k8s.api.core.v1.Pod"},
        {&coracle__v1__pod_spec__descriptor, "io.k8s.api.core.v1.PodSpec"},
        {&coracle__v1__pod_list__descriptor, "io.k8s.api.core.v1.PodList"},
        {&coracle__v1__object_meta__descriptor, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        {&coracle__v1__time__descriptor, "io.k8s.apimachinery.pkg.apis.meta.v1.Time"},
        {&coracle__v1__micro_time__descriptor, "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"},
        {&coracle__v1__quantity__descriptor, "io.k8s.apimachinery.pkg.api.resource.Quantity"},
        {&coracle__v1__int_or_string__descriptor,
         "io.k8s.apimachinery.pkg.util.intstr.IntOrString"},
        {&coracle__v1__lease__descriptor, "io.k8s.api.coordination.v1.Lease"},
        {&coracle__v1__lease_spec__descriptor, "io.k8s.api.coordination.v1.LeaseSpec"},
        {&coracle__v1__lease_list__descriptor, "io.k8s.api.coordination.v1.LeaseList"},
        {&coracle__v1__node_system_info__descriptor, "io.k8s.api.core.v1.NodeSystemInfo"},
    };
    char buf[128];
    for (size_t i = 0; i < ARRAY_SIZE(want); i++)
        is_str(oapi_name(want[i].d, buf, sizeof(buf)), want[i].name, want[i].name);
    ok(oapi_doc(&coracle__v1__container__descriptor, "name") != NULL,
       "Container.name has a description from proto/'s comments");
    ok(oapi_doc(&coracle__v1__pod__descriptor, "") != NULL, "so has Pod");
}

static const char *str_at(const json_t *v, const char *k)
{
    return json_str(json_get(v, k));
}

/* Whether array a holds the string s. */
static bool has(const json_t *a, const char *s)
{
    for (size_t i = 0; json_at(a, i); i++)
        if (json_str(json_at(a, i)) && !strcmp(json_str(json_at(a, i)), s))
            return true;
    return false;
}

/* The parameter named name of operation op, or NULL. */
static const json_t *param(const json_t *op, const char *name)
{
    const json_t *ps = json_get(op, "parameters");
    for (size_t i = 0; json_at(ps, i); i++)
        if (str_at(json_at(ps, i), "name") && !strcmp(str_at(json_at(ps, i), "name"), name))
            return json_at(ps, i);
    return NULL;
}

static void v3(void)
{
    size_t len;
    char *doc = oapi_v3("v1", &len);
    json_t *d = NULL;
    char *err = NULL;
    ok(doc && json_parse(doc, len, NULL, &d, &err) == 0, "the v1 document is JSON (%s)",
       err ? err : "");
    free(err);
    is_str(str_at(d, "openapi"), "3.0.0", "OpenAPI 3.0");
    const json_t *s = json_get(json_get(d, "components"), "schemas");
    const json_t *c = json_get(s, "io.k8s.api.core.v1.Container");
    is_str(str_at(c, "type"), "object", "Container: an object");
    ok(has(json_get(c, "required"), "name"), "Container: name required");
    const json_t *ports = json_get(json_get(c, "properties"), "ports");
    is_str(str_at(ports, "type"), "array", "ports: an array");
    is_str(str_at(json_get(ports, "items"), "$ref"),
           "#/components/schemas/io.k8s.api.core.v1.ContainerPort", "of ContainerPort");
    is_str(str_at(ports, "x-kubernetes-list-type"), "map", "ports: list-type map");
    ok(has(json_get(ports, "x-kubernetes-list-map-keys"), "containerPort") &&
           has(json_get(ports, "x-kubernetes-list-map-keys"), "protocol"),
       "ports: map keys containerPort, protocol");
    is_str(str_at(ports, "x-kubernetes-patch-merge-key"), "containerPort", "ports: merge key");
    is_str(str_at(ports, "x-kubernetes-patch-strategy"), "merge", "ports: strategy merge");
    const json_t *probe = json_get(json_get(c, "properties"), "livenessProbe");
    is_str(str_at(json_at(json_get(probe, "allOf"), 0), "$ref"),
           "#/components/schemas/io.k8s.api.core.v1.Probe", "livenessProbe: allOf [$ref Probe]");
    ok(str_at(probe, "description") != NULL, "with its description beside");
    const json_t *pp = json_get(json_get(s, "io.k8s.api.core.v1.Probe"), "properties");
    ok(json_get(pp, "exec") && json_get(pp, "httpGet") && !json_get(pp, "handler"),
       "Probe: the handler's fields inlined");
    const json_t *res =
        json_get(json_get(s, "io.k8s.api.core.v1.ResourceRequirements"), "properties");
    is_str(str_at(json_get(json_get(res, "limits"), "additionalProperties"), "$ref"),
           "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity",
           "limits: a map of Quantity");
    const json_t *t = json_get(s, "io.k8s.apimachinery.pkg.apis.meta.v1.Time");
    ok(!strcmp(str_at(t, "type"), "string") && !strcmp(str_at(t, "format"), "date-time"),
       "Time: string, date-time");
    is_str(str_at(json_get(s, "io.k8s.apimachinery.pkg.api.resource.Quantity"), "type"), "string",
           "Quantity: string");
    ok(json_is(json_get(json_get(s, "io.k8s.apimachinery.pkg.util.intstr.IntOrString"),
                        "x-kubernetes-int-or-string"),
               JSON_TRUE),
       "IntOrString: x-kubernetes-int-or-string");
    const json_t *gvk = json_at(
        json_get(json_get(s, "io.k8s.api.core.v1.Pod"), "x-kubernetes-group-version-kind"), 0);
    ok(gvk && !strcmp(str_at(gvk, "group"), "") && !strcmp(str_at(gvk, "kind"), "Pod") &&
           !strcmp(str_at(gvk, "version"), "v1"),
       "Pod: x-kubernetes-group-version-kind");
    ok(!json_get(s, "io.k8s.api.coordination.v1.Lease"), "no Lease in api/v1");

    const json_t *paths = json_get(d, "paths");
    const json_t *patch =
        json_get(json_get(paths, "/api/v1/namespaces/{namespace}/pods/{name}"), "patch");
    ok(param(patch, "fieldValidation") && param(patch, "dryRun") && param(patch, "force"),
       "PATCH pods/{name}: fieldValidation, dryRun, force");
    is_str(str_at(json_get(patch, "x-kubernetes-group-version-kind"), "kind"), "Pod",
           "tagged with Pod's GVK");
    ok(json_get(json_get(json_get(patch, "requestBody"), "content"),
                "application/apply-patch+yaml"),
       "takes apply-patch+yaml");
    const json_t *list = json_get(json_get(paths, "/api/v1/namespaces/{namespace}/pods"), "get");
    is_str(str_at(list, "x-kubernetes-action"), "list", "list: x-kubernetes-action");
    ok(param(list, "watch") && param(list, "sendInitialEvents") && param(list, "continue"),
       "list: watch, sendInitialEvents, continue");
    ok(json_get(json_get(paths, "/api/v1/pods"), "get"), "pods across namespaces");
    ok(json_get(json_get(paths, "/api/v1/nodes/{name}/status"), "patch"), "nodes/status");
    ok(json_get(json_get(paths, "/api/v1/namespaces/{namespace}/pods/{name}/exec"), "post"),
       "pods/exec");
    ok(!json_get(paths, "/api/v1/namespaces/{namespace}/events/{name}/status"),
       "no status for a kind without one");
    json_free(d);
    free(doc);
    ok(oapi_v3("policy/v1", &len) == NULL, "no document for a group-version not served");
}

static void v2(void)
{
    size_t len;
    char *doc = oapi_v2(&len);
    json_t *d = NULL;
    ok(json_parse(doc, len, NULL, &d, NULL) == 0, "the v2 document is JSON");
    const json_t *defs = json_get(d, "definitions");
    const json_t *pod = json_get(defs, "io.k8s.api.core.v1.Pod");
    ok(pod && !json_get(pod, "type") && json_get(pod, "properties"),
       "v2 Pod: properties and no type (kubectl 1.20 reads an object type as a map)");
    is_str(str_at(json_get(json_get(pod, "properties"), "spec"), "$ref"),
           "#/definitions/io.k8s.api.core.v1.PodSpec", "v2 spec: a $ref");
    ok(json_get(defs, "io.k8s.api.coordination.v1.Lease") != NULL, "v2 has every group");
    const json_t *patch = json_get(
        json_get(json_get(d, "paths"), "/api/v1/namespaces/{namespace}/pods/{name}"), "patch");
    ok(has(json_get(patch, "consumes"), "application/strategic-merge-patch+json"),
       "v2 PATCH consumes strategic merge patch");
    const json_t *body = param(patch, "body");
    ok(body && !strcmp(str_at(body, "in"), "body"), "v2 PATCH: a body parameter");
    json_free(d);

    struct buf pb = {0};
    char *err = NULL;
    ok(oapi_v2_pb(doc, len, &pb, &err) == 0 && pb.len > 1000, "the v2 document as protobuf");
    ok(pb.len > 5 && !memcmp(pb.p,
                             "\x0a\x03"
                             "2.0",
                             5),
       "starts with swagger = \"2.0\"");
    buf_free(&pb);
    free(doc);

    /* one schema with a type and a vendor extension, byte by byte (gnostic's field numbers) */
    static const char small[] =
        "{\"swagger\":\"2.0\",\"definitions\":{\"X\":{\"type\":\"string\",\"x-a\":1}}}";
    static const unsigned char want[] = {0x0a, 0x03, '2',  '.',  '0',  0x4a, 0x1f, 0x0a, 0x1d, 0x0a,
                                         0x01, 'X',  0x12, 0x18, 0xb2, 0x01, 0x08, 0x0a, 0x06, 's',
                                         't',  'r',  'i',  'n',  'g',  0xfa, 0x01, 0x0a, 0x0a, 0x03,
                                         'x',  '-',  'a',  0x12, 0x03, 0x12, 0x01, '1'};
    ok(oapi_v2_pb(small, strlen(small), &pb, &err) == 0 && pb.len == sizeof(want) &&
           !memcmp(pb.p, want, sizeof(want)),
       "Document{swagger, definitions{X: Schema{type, vendor_extension}}}");
    buf_free(&pb);
    ok(oapi_v2_pb("{\"swagger\":", 11, &pb, &err) < 0 && err, "not JSON: an error");
    free(err);
    buf_free(&pb);
}

static void accept_header(void)
{
    static const char kubectl[] =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
        "application/json";
    ok(rest_accept_aggregated(kubectl), "kubectl 1.32's Accept: aggregated");
    ok(!rest_accept_aggregated("application/json, */*"), "kubectl 1.20's: legacy");
    ok(!rest_accept_aggregated(NULL), "none: legacy");
    ok(!rest_accept_aggregated("application/json;g=apidiscovery.k8s.io;v=v2beta1;"
                               "as=APIGroupDiscoveryList,application/json"),
       "v2beta1 only: legacy");
    ok(rest_accept_aggregated(" application/json ; g=apidiscovery.k8s.io ; v=v2 ; "
                              "as=APIGroupDiscoveryList ; q=0.9"),
       "blanks and q are allowed");
    ok(!rest_accept_aggregated("application/json;g=apidiscovery.k8s.io;v=v2;"
                               "as=APIGroupDiscoveryList;q=0,application/json"),
       "q=0 refuses it");
    is_int(rest_openapi_accept("application/com.github.proto-openapi.spec.v2@v1.0+protobuf", true),
           2, "kubectl's /openapi/v2 Accept: protobuf");
    is_int(rest_openapi_accept("application/com.github.proto-openapi.spec.v2.v1.0+protobuf, "
                               "application/json",
                               true),
           2, "the new spelling too");
    is_int(rest_openapi_accept("application/com.github.proto-openapi.spec.v2@v1.0+protobuf", false),
           0, "not for v3");
    is_int(rest_openapi_accept("application/json", true), 1, "JSON");
    is_int(rest_openapi_accept(NULL, true), 1, "no Accept: JSON");
    is_int(rest_openapi_accept("text/html;q=0.9, */*;q=0.8", true), 1, "*/*: JSON");
    is_int(rest_openapi_accept("text/html", true), 0, "text/html: nothing");
    is_int(rest_openapi_accept(",,;;,=,;q=,", true), 0, "garbage: nothing");

    /* a long header of many clauses: each one bounded, all read */
    struct buf b = {0};
    for (int i = 0; i < 2000; i++)
        buf_puts(&b, "application/x-very-long-type-name-that-does-not-fit-anywhere-at-all-xx;a=b;");
    buf_puts(&b, ",application/json");
    is_int(rest_openapi_accept(b.p, true), 1, "a 150 KB clause, then JSON");
    buf_free(&b);
    const char *cur = "a/b;q=0, c/d ;x=1";
    char type[8], params[4];
    ok(rest_accept_next(&cur, type, sizeof(type), params, sizeof(params)) && !strcmp(type, "c/d") &&
           !strcmp(params, "x=1"),
       "clauses: q=0 passed over, blanks removed");
    ok(!rest_accept_next(&cur, type, sizeof(type), params, sizeof(params)), "then none");
}

int main(void)
{
    names();
    v3();
    v2();
    accept_header();
    return done_testing();
}
