/*
 * test_auth: the token file, the policy file (parsing, errors, default
 * deny, namespaces, subresources, masters), node restriction and the
 * Kubernetes-shaped denial messages, reload, the watch cap, the in-flight
 * classifier. Uses the shipped conf/policy.
 */
#include "config.h"
#include "auth.h"
#include "tap.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/test_auth.XXXXXX";
static auth_t *au; /* the one under test */

/* A fresh au from cfg (the old one freed): auth_new's result. */
static int au_new(const struct auth_config *cfg, char **err)
{
    auth_free(au);
    au = NULL;
    return auth_new(cfg, &au, err);
}

static char *write_file(const char *name, const char *text)
{
    char *p = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    return p;
}

static int has_group(const struct auth_user *u, const char *g)
{
    for (size_t i = 0; u->groups[i]; i++)
        if (strcmp(u->groups[i], g) == 0)
            return 1;
    return 0;
}

static struct auth_user tok(const char *t)
{
    struct auth_user u = {0};
    char *err = NULL;
    char *h = xasprintf("Bearer %s", t);
    if (auth_authenticate_token(au, h, &u, &err) < 0)
        u.name = NULL;
    free(h);
    free(err);
    return u;
}

/* 0 allowed, -1 denied; *msg gets the denial */
static int az(const struct auth_user *u, const char *verb, const struct kind *k, const char *sub,
              const char *ns, const char *name, const char *fsel, const char *pod_node, char **msg)
{
    struct auth_attrs a = {verb, k, sub, ns, name, fsel, pod_node};
    char *err = NULL;
    int r = auth_authorize_attrs(au, u, &a, &err);
    if (msg)
        *msg = err;
    else
        free(err);
    return r;
}

static void test_tokens(char *policy)
{
    char *tf = write_file("tokens.csv", "# comment\n"
                                        "tok-admin,admin,1,\"system:masters\"\n"
                                        "tok-bob,bob,2\n"
                                        "tok-n1,system:node:n1,3,\"system:nodes\"\n"
                                        "tok-n2,system:node:n2,4,system:nodes\n"
                                        "tok-sched,system:kube-scheduler,5,\"\"\n"
                                        "tok-multi, carol ,6,\"dev,ops\"\n");
    struct auth_config cfg = {.token_file = tf, .policy_file = policy};
    char *err = NULL;
    ok(au_new(&cfg, &err) == 0, "init with tokens and conf/policy (%s)", err ? err : "");
    free(err);
    ok(auth_required(au), "auth required with a token file");
    struct auth_user u = tok("tok-bob");
    is_str(u.name, "bob", "token -> user");
    ok(u.name && has_group(&u, "system:authenticated"), "authenticated group added");
    u = tok("tok-multi");
    ok(u.name && strcmp(u.name, "carol") == 0 && has_group(&u, "dev") && has_group(&u, "ops"),
       "quoted group list split, spaces trimmed");
    u = tok("tok-bo");
    ok(!u.name, "prefix of a token refused");
    u = tok("");
    ok(!u.name, "empty token refused");
    struct auth_user x;
    ok(auth_authenticate_token(au, NULL, &x, &err) < 0 && strcmp(err, "Unauthorized") == 0,
       "no header: Unauthorized");
    free(err);
    ok(auth_authenticate_token(au, "Basic dG9rLWJvYg==", &x, &err) < 0, "Basic auth refused");
    free(err);
    free(tf);
}

static void test_policy(void)
{
    char *msg;
    struct auth_user bob = tok("tok-bob"), admin = tok("tok-admin"), sched = tok("tok-sched");
    struct auth_user n1 = tok("tok-n1");
    ok(az(&bob, "get", &kind_pod, NULL, "default", "x", NULL, NULL, &msg) < 0,
       "default deny: bob cannot get a pod");
    is_str(msg,
           "pods \"x\" is forbidden: User \"bob\" cannot get resource \"pods\" in API group \"\" "
           "in the namespace \"default\"",
           "Kubernetes' denial text");
    free(msg);
    ok(az(&bob, "list", &kind_node, NULL, NULL, NULL, NULL, NULL, &msg) < 0,
       "bob cannot list nodes");
    is_str(msg,
           "nodes is forbidden: User \"bob\" cannot list resource \"nodes\" in API group \"\" at "
           "the cluster scope",
           "cluster-scoped denial text");
    free(msg);
    ok(az(&bob, "update", &kind_lease, NULL, "kube-node-lease", "n1", NULL, NULL, &msg) < 0,
       "bob cannot update a lease");
    ok(msg && strstr(msg, "in API group \"coordination.k8s.io\""), "lease API group named");
    free(msg);
    ok(az(&admin, "delete", &kind_node, NULL, NULL, "n1", NULL, NULL, NULL) == 0,
       "system:masters pass everything");
    ok(az(&sched, "watch", &kind_pod, NULL, NULL, NULL, NULL, NULL, NULL) == 0,
       "scheduler may watch pods in all namespaces");
    ok(az(&sched, "create", &kind_pod, "binding", "default", "p", NULL, NULL, NULL) == 0,
       "scheduler may bind");
    ok(az(&sched, "update", &kind_pod, "status", "default", "p", NULL, NULL, NULL) == 0,
       "scheduler may update pod status");
    ok(az(&sched, "create", &kind_event, NULL, "default", NULL, NULL, NULL, NULL) == 0,
       "scheduler may create events");
    ok(az(&sched, "delete", &kind_pod, NULL, "default", "p", NULL, NULL, &msg) < 0,
       "scheduler may not delete pods");
    free(msg);
    ok(az(&sched, "update", &kind_pod, NULL, "default", "p", NULL, NULL, &msg) < 0,
       "scheduler may not update pod spec (pods/status is not pods)");
    free(msg);
    ok(az(&sched, "get", &kind_pod, "exec", "default", "p", NULL, NULL, &msg) < 0,
       "scheduler may not exec");
    ok(msg && strstr(msg, "resource \"pods/exec\""), "subresource named in the denial");
    free(msg);
    /* coarse pre-check */
    ok(auth_authorize(au, &sched, "list", &kind_pod, NULL, &msg) == 0,
       "coarse: scheduler list pods");
    ok(auth_authorize(au, &bob, "list", &kind_pod, NULL, &msg) < 0, "coarse: bob denied");
    free(msg);
    ok(auth_authorize(au, &n1, "update", &kind_pod, "status", &msg) == 0, "coarse: node status ok");

    /* node restriction */
    ok(az(&n1, "update", &kind_node, NULL, NULL, "n1", NULL, NULL, NULL) == 0,
       "n1 may update its own Node");
    ok(az(&n1, "update", &kind_node, "status", NULL, "n2", NULL, NULL, &msg) < 0,
       "n1 may not update n2's Node status");
    is_str(msg,
           "nodes \"n2\" is forbidden: User \"system:node:n1\" cannot update resource "
           "\"nodes/status\" in API group \"\" at the cluster scope: node \"n1\" can only modify "
           "its own Node",
           "node restriction reason");
    free(msg);
    ok(az(&n1, "get", &kind_node, NULL, NULL, "n2", NULL, NULL, NULL) == 0, "n1 may read nodes");
    ok(az(&n1, "update", &kind_lease, NULL, "kube-node-lease", "n1", NULL, NULL, NULL) == 0,
       "n1 may renew its Lease");
    ok(az(&n1, "update", &kind_lease, NULL, "kube-node-lease", "n2", NULL, NULL, &msg) < 0,
       "n1 may not renew n2's Lease");
    free(msg);
    ok(az(&n1, "update", &kind_lease, NULL, "default", "n1", NULL, NULL, &msg) < 0,
       "n1's lease rights are in kube-node-lease only");
    free(msg);
    ok(az(&n1, "watch", &kind_pod, NULL, NULL, NULL, "spec.nodeName=n1", NULL, NULL) == 0,
       "n1 may watch its pods");
    ok(az(&n1, "list", &kind_pod, NULL, NULL, NULL, "status.phase=Running,spec.nodeName==n1", NULL,
          NULL) == 0,
       "n1 may list its pods (== and other terms)");
    ok(az(&n1, "list", &kind_pod, NULL, NULL, NULL, NULL, NULL, &msg) < 0,
       "n1 may not list all pods");
    ok(msg && strstr(msg, "can only list pods with fieldSelector spec.nodeName=n1"),
       "list denial says why");
    free(msg);
    ok(az(&n1, "watch", &kind_pod, NULL, NULL, NULL, "spec.nodeName=n10", NULL, &msg) < 0,
       "n1 may not watch n10's pods");
    free(msg);
    ok(az(&n1, "watch", &kind_pod, NULL, NULL, NULL, "spec.nodeName!=n1", NULL, &msg) < 0,
       "n1 may not watch with != selector");
    free(msg);
    ok(az(&n1, "update", &kind_pod, "status", "default", "p", NULL, "n1", NULL) == 0,
       "n1 may update the status of its pod");
    ok(az(&n1, "update", &kind_pod, "status", "default", "p", NULL, "n2", &msg) < 0,
       "n1 may not update the status of n2's pod");
    ok(msg && strstr(msg, "can only access pods bound to it"), "status denial says why");
    free(msg);
    ok(az(&n1, "get", &kind_pod, NULL, "default", "p", NULL, "", &msg) < 0,
       "n1 may not read an unbound pod");
    free(msg);
    ok(az(&n1, "delete", &kind_pod, NULL, "default", "p", NULL, "n1", NULL) == 0,
       "n1 may delete its pod");
    ok(az(&n1, "delete", &kind_pod, NULL, "default", "p", NULL, "n2", &msg) < 0,
       "n1 may not delete n2's pod");
    free(msg);
    ok(az(&n1, "update", &kind_pod, NULL, "default", "p", NULL, "n1", &msg) < 0,
       "n1 may not update its pod's spec");
    free(msg);
    ok(az(&n1, "create", &kind_pod, NULL, "default", "p", NULL, NULL, &msg) < 0,
       "n1 may not create pods");
    free(msg);
    ok(az(&n1, "create", &kind_event, NULL, "default", NULL, NULL, NULL, NULL) == 0,
       "n1 may post events");
    ok(auth_node_tunnel(au, &n1, "n1", &msg) == 0, "n1 serves its own tunnel");
    ok(auth_node_tunnel(au, &n1, "n2", &msg) < 0 && strstr(msg, "own tunnel"),
       "n1 may not serve n2's tunnel");
    free(msg);
    ok(auth_node_tunnel(au, &bob, "n1", &msg) < 0, "bob may not serve a tunnel");
    free(msg);
    ok(auth_node_tunnel(au, &admin, "n1", &msg) == 0, "masters may");
    /* a user named like a node but not in system:nodes gets no node rights */
    ok(az(&bob, "update", &kind_lease, NULL, "kube-node-lease", "bob", NULL, NULL, &msg) < 0,
       "no node rights without system:nodes");
    free(msg);
}

static void test_policy_errors(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"role r get pods\nbind r user:x\nfrobnicate\n", ":3: unknown directive \"frobnicate\""},
        {"role r fly pods\n", ":1: unknown verb \"fly\""},
        {"role r get pods/shell\n", ":1: unknown resource \"pods/shell\""},
        {"role r get deployments.batch\n", ":1: unknown resource \"deployments.batch\""},
        {"role r get\n", ":1: expected: role NAME VERBS RESOURCES [NAMESPACES]"},
        {"bind r user:x\n", "bind names role \"r\", which is not defined"},
        {"role r get pods\nbind r alice\n", ":2: subject \"alice\": expected user:NAME"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p = write_file("bad.policy", cases[i].text);
        struct auth_config cfg = {.token_file = NULL, .policy_file = p};
        char *err = NULL;
        int r = au_new(&cfg, &err);
        ok(r < 0 && err && strstr(err, cases[i].want), "policy error %zu: %s", i,
           err ? err : "(none)");
        free(err);
        free(p);
    }
    char *tf = write_file("bad.csv", "tok,alice,1\n\"unbalanced,bob,2\n");
    struct auth_config cfg = {.token_file = tf};
    char *err = NULL;
    ok(au_new(&cfg, &err) < 0 && err && strstr(err, "bad.csv:2:"), "token file error: %s",
       err ? err : "(none)");
    free(err);
    free(tf);
}

static void test_reload(char *policy)
{
    char *tf = write_file("t.csv", "t1,alice,1\n");
    char *pf = write_file("p.policy", "role r get pods dev\nbind r user:alice\n");
    struct auth_config cfg = {.token_file = tf, .policy_file = pf, .max_watches = 2};
    char *err = NULL;
    ok(au_new(&cfg, &err) == 0, "init for reload");
    free(err);
    struct auth_user a = tok("t1");
    ok(az(&a, "get", &kind_pod, NULL, "dev", "x", NULL, NULL, NULL) == 0, "alice may get in dev");
    ok(az(&a, "get", &kind_pod, NULL, "prod", "x", NULL, NULL, NULL) < 0,
       "alice may not get in prod (namespace list)");
    free(write_file("p.policy", "role r get pods dev,prod\nbind r user:alice\n"));
    free(write_file("t.csv", "t2,alice,1\n"));
    ok(auth_reload(au, &err) == 0, "reload");
    free(err);
    ok(az(&a, "get", &kind_pod, NULL, "prod", "x", NULL, NULL, NULL) == 0,
       "after reload alice may get in prod");
    ok(!tok("t1").name && tok("t2").name, "after reload the new token works, the old one not");
    free(write_file("p.policy", "role r get pods\nbind q user:alice\n"));
    ok(auth_reload(au, &err) < 0, "a broken policy is refused on reload");
    free(err);
    ok(az(&a, "get", &kind_pod, NULL, "prod", "x", NULL, NULL, NULL) == 0,
       "... and the old one kept");
    ok(auth_max_watches(au) == 2, "the watch cap is configured");
    /* resources may carry their API group, as RBAC's rules name them */
    free(write_file("p.policy",
                    "role r get,update deployments.apps,deployments.apps/scale,jobs.batch\n"
                    "bind r user:alice\n"));
    err = NULL;
    ok(auth_reload(au, &err) == 0, "a policy naming deployments.apps and jobs.batch (%s)",
       err ? err : "");
    free(err);
    ok(az(&a, "update", &kind_deployment, "scale", "prod", "x", NULL, NULL, NULL) == 0 &&
           az(&a, "get", &kind_job, NULL, "prod", "x", NULL, NULL, NULL) == 0 &&
           az(&a, "get", &kind_pod, NULL, "prod", "x", NULL, NULL, NULL) < 0,
       "grants exactly those");
    free(tf);
    free(pf);
}

/* The REST API's verbs: patch and deletecollection in policies; a node patches only status. */
static void test_rest_verbs(void)
{
    char *tf = write_file("t.csv", "t1,alice,1\nt2,system:node:n1,2,system:nodes\n");
    char *pf = write_file("p.policy", "role r patch,deletecollection pods\nbind r user:alice\n"
                                      "role n patch pods,pods/status\nbind n group:system:nodes\n");
    struct auth_config cfg = {.token_file = tf, .policy_file = pf};
    char *err = NULL, *msg = NULL;
    ok(au_new(&cfg, &err) == 0, "a policy with patch and deletecollection: %s", err ? err : "ok");
    free(err);
    struct auth_user a = tok("t1"), n1 = tok("t2");
    ok(az(&a, "patch", &kind_pod, NULL, "dev", "x", NULL, NULL, NULL) == 0, "alice may patch");
    ok(az(&a, "deletecollection", &kind_pod, NULL, "dev", NULL, NULL, NULL, NULL) == 0,
       "alice may deletecollection");
    ok(az(&a, "delete", &kind_pod, NULL, "dev", "x", NULL, NULL, NULL) < 0, "not delete");
    ok(az(&n1, "patch", &kind_pod, "status", "default", "p", NULL, "n1", NULL) == 0,
       "n1 may patch the status of its pod");
    ok(az(&n1, "patch", &kind_pod, NULL, "default", "p", NULL, "n1", &msg) < 0 && msg &&
           strstr(msg, "can only update the status of its pods"),
       "n1 may not patch its pod's spec");
    free(msg);
    free(tf);
    free(pf);
}

static void test_misc(void)
{
    struct auth_config cfg = {0};
    char *err = NULL;
    ok(au_new(&cfg, &err) == 0 && !auth_required(au), "no CA, no tokens: dev mode");
    ok(auth_max_watches(au) == 0, "dev mode: no per-user watch cap");
    ok(auth_is_mutating("/coracle.v1.Pods/Create") && auth_is_mutating("/coracle.v1.Pods/Bind") &&
           auth_is_mutating("/coracle.v1.Nodes/UpdateStatus") &&
           !auth_is_mutating("/coracle.v1.Pods/List") && !auth_is_mutating("/coracle.v1.Pods/Get"),
       "mutating paths");
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    const char *src = getenv("CORACLE_SRC");
    char *policy = xasprintf("%s/conf/policy", src ? src : SRCDIR);
    test_tokens(policy);
    test_policy();
    test_policy_errors();
    test_reload(policy);
    test_misc();
    test_rest_verbs();
    auth_free(au);
    free(policy);
    char *cmd = xasprintf("rm -rf %s", dir);
    if (system(cmd) != 0)
        diag("cleanup failed");
    free(cmd);
    return done_testing();
}
