/*
 * Unit tests for src/apiserver/audit_policy.c: the audit policy's
 * validation messages, Kubernetes' RequestInfo of REST paths, and the rule
 * matcher (users, userGroups, verbs, resources as res/sub, any resource's
 * sub, every sub of res, and resourceNames, namespaces with "" for cluster-scoped
 * requests, nonResourceURLs with a trailing '*', omitStages, first match
 * wins, no match is None).
 */
#include "config.h"
#include "tap.h"

#include "audit_policy.c"

#define HEAD "apiVersion: audit.k8s.io/v1\nkind: Policy\n"

static struct audit_policy *parse(const char *text)
{
    char *err = NULL;
    struct audit_policy *p = audit_policy_parse("p.yaml", text, strlen(text), &err);
    if (!p)
        diag("unexpected error: %s", err);
    free(err);
    return p;
}

static void bad(const char *text, const char *want)
{
    char *err = NULL;
    struct audit_policy *p = audit_policy_parse("p.yaml", text, strlen(text), &err);
    ok(!p && err && strstr(err, want), "refused: %s (%s)", want, err ? err : "accepted");
    audit_policy_free(p);
    free(err);
}

/* The level p gives method path?query by user u in groups g (NULL: unauthenticated). */
static int level(const struct audit_policy *p, const char *user, const char *group,
                 const char *method, const char *path, const char *query, bool *omit)
{
    const char *groups[] = {group, "system:authenticated", NULL};
    struct auth_user u = {user, groups, NULL, ""};
    struct audit_req q;
    char buf[256];
    bool o;
    audit_request_info(method, path, query, &q, buf, sizeof(buf));
    return (int)audit_policy_level(p, user ? &u : NULL, &q, omit ? omit : &o);
}

static void test_request_info(void)
{
    struct audit_req q;
    char buf[256];
    audit_request_info("GET", "/api/v1/namespaces/ns1/pods/p/log", "", &q, buf, sizeof(buf));
    ok(q.resource && !strcmp(q.verb, "get") && !strcmp(q.api_group, "") &&
           !strcmp(q.api_version, "v1") && !strcmp(q.res, "pods") && !strcmp(q.ns, "ns1") &&
           !strcmp(q.name, "p") && !strcmp(q.subresource, "log"),
       "a pod's log: get pods/log in ns1");
    audit_request_info("GET", "/apis/apps/v1/deployments", "watch=true", &q, buf, sizeof(buf));
    ok(q.resource && !strcmp(q.verb, "watch") && !strcmp(q.api_group, "apps") && !q.ns &&
           !strcmp(q.res, "deployments"),
       "watch=true across namespaces: watch deployments.apps");
    audit_request_info("DELETE", "/api/v1/namespaces/ns1/pods", "", &q, buf, sizeof(buf));
    ok(!strcmp(q.verb, "deletecollection"), "DELETE on a collection: deletecollection");
    audit_request_info("PUT", "/api/v1/namespaces/ns1", "", &q, buf, sizeof(buf));
    ok(!strcmp(q.verb, "update") && !strcmp(q.res, "namespaces") && !strcmp(q.name, "ns1") &&
           !strcmp(q.ns, "ns1"),
       "a namespace itself: namespaces/ns1, in its own namespace (as Kubernetes)");
    audit_request_info("GET", "/apis/apps/v1", "", &q, buf, sizeof(buf));
    ok(!q.resource && !strcmp(q.verb, "get"), "discovery: a non-resource get");
    audit_request_info("POST", "/version", "", &q, buf, sizeof(buf));
    ok(!q.resource && !strcmp(q.verb, "post") && !strcmp(q.path, "/version"),
       "a non-resource verb is the method in lower case");
}

static void test_errors(void)
{
    bad(HEAD "rules:\n- level: Loud\n", "rules[0].level: Unsupported value");
    bad(HEAD "rules:\n- users: [a]\n", "rules[0].level: Required value");
    bad(HEAD "rules:\n- level: None\n  nonResourceURLs: [/a]\n  resources: [{group: \"\"}]\n",
        "rules cannot apply to both regular resources and non-resource URLs");
    bad(HEAD "rules:\n- level: None\n  nonResourceURLs: [a]\n", "must begin with a '/'");
    bad(HEAD "rules:\n- level: None\n  nonResourceURLs: [/a*b]\n", "must be the final character");
    bad(HEAD "rules:\n- level: None\n  resources: [{resourceNames: [x]}]\n",
        "using resourceNames requires at least one resource");
    bad(HEAD "omitStages: [Later]\nrules: []\n", "omitStages[0]: Unsupported value: \"Later\"");
    bad(HEAD "rules:\n- level: None\n  bogus: 1\n", "bogus");
    bad("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\n", "expected apiVersion audit.k8s.io/v1");
}

static void test_match(void)
{
    struct audit_policy *p = parse(HEAD "omitStages: [RequestReceived]\n"
                                        "rules:\n"
                                        "- level: None\n  users: [quiet]\n"
                                        "- level: None\n  userGroups: [bots]\n  verbs: [watch]\n"
                                        "- level: None\n  nonResourceURLs: [/healthz*]\n"
                                        "- level: Request\n  resources:\n"
                                        "  - group: apps\n    resources: [\"*/scale\"]\n"
                                        "- level: RequestResponse\n  resources:\n"
                                        "  - group: \"\"\n    resources: [\"pods/*\"]\n"
                                        "- level: Request\n  resources:\n"
                                        "  - group: \"\"\n    resources: [secrets]\n"
                                        "    resourceNames: [keep]\n"
                                        "- level: None\n  namespaces: [\"\"]\n"
                                        "- level: Metadata\n  omitStages: [ResponseComplete]\n"
                                        "  namespaces: [hidden]\n"
                                        "- level: Metadata\n");
    bool omit;
    is_int(level(p, "quiet", "g", "GET", "/api/v1/pods", "", NULL), AUDIT_NONE, "users: None");
    is_int(level(p, "b", "bots", "GET", "/api/v1/pods", "watch=1", NULL), AUDIT_NONE,
           "userGroups and verbs: a bot's watch, None");
    is_int(level(p, "b", "bots", "GET", "/api/v1/namespaces/x/configmaps", "", NULL),
           AUDIT_METADATA, "a bot's list: the catch-all");
    is_int(level(p, "a", "g", "GET", "/healthz/etcd", "", NULL), AUDIT_NONE,
           "nonResourceURLs /healthz*: a prefix");
    is_int(level(p, "a", "g", "GET", "/version", "", NULL), AUDIT_METADATA,
           "another non-resource path: the catch-all");
    is_int(level(p, "a", "g", "PUT", "/apis/apps/v1/namespaces/x/deployments/d/scale", "", NULL),
           AUDIT_REQUEST, "*/scale in apps");
    is_int(level(p, "a", "g", "PUT", "/apis/apps/v1/namespaces/x/deployments/d", "", NULL),
           AUDIT_METADATA, "but not the deployment itself");
    is_int(level(p, "a", "g", "GET", "/api/v1/namespaces/x/pods/p/log", "", NULL),
           AUDIT_REQUEST_RESPONSE, "pods/* matches pods/log");
    is_int(level(p, "a", "g", "GET", "/api/v1/namespaces/x/pods/p", "", NULL),
           AUDIT_REQUEST_RESPONSE, "and pods itself (Kubernetes' res/*)");
    is_int(level(p, "a", "g", "GET", "/api/v1/namespaces/x/secrets/keep", "", NULL), AUDIT_REQUEST,
           "resourceNames: the named secret");
    is_int(level(p, "a", "g", "GET", "/api/v1/namespaces/x/secrets/other", "", NULL),
           AUDIT_METADATA, "another secret: the catch-all");
    is_int(level(p, "a", "g", "GET", "/api/v1/nodes", "", NULL), AUDIT_NONE,
           "namespaces [\"\"]: cluster-scoped requests");
    is_int(level(p, "a", "g", "GET", "/api/v1/namespaces/hidden/configmaps", "", &omit),
           AUDIT_METADATA, "namespaces [hidden]: its rule's level");
    ok(omit, "and its omitStages: ResponseComplete left out");
    is_int(level(p, NULL, NULL, "GET", "/api/v1/namespaces/x/pods", "", NULL),
           AUDIT_REQUEST_RESPONSE, "an unauthenticated request matches rules without users");
    audit_policy_free(p);
    p = parse(HEAD "rules: []\n");
    is_int(level(p, "a", "g", "GET", "/api/v1/pods", "", NULL), AUDIT_NONE,
           "no rules: every request None");
    audit_policy_free(p);
}

int main(void)
{
    test_request_info();
    test_errors();
    test_match();
    return done_testing();
}
