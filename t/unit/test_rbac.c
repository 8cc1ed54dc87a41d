/*
 * test_rbac: Kubernetes' RBAC rule matching (verbs, apiGroups, resources
 * and subresources with "res/sub" and "* /sub", resourceNames,
 * nonResourceURLs with a trailing *), coverage and its messages, the
 * index fed by store changes (bindings by user, group, ServiceAccount,
 * namespace; removal), and the default roles' reconciliation.
 */
#include "config.h"
#include "kobj.h"
#include "obj.h"
#include "rbac.h"
#include "tap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static Coracle__V1__PolicyRule *rule(const char *yaml)
{
    char *err = NULL;
    ProtobufCMessage *m =
        kobj_parse_msg("rule", yaml, strlen(yaml), &coracle__v1__policy_rule__descriptor, &err);
    if (!m)
        diag("%s: %s", yaml, err);
    free(err);
    return (Coracle__V1__PolicyRule *)m;
}

static bool allows(const char *yaml, const struct rbac_attrs *a)
{
    Coracle__V1__PolicyRule *r = rule(yaml);
    bool ok = r && rbac_rule_allows(r, a);
    obj_free(&r->base);
    return ok;
}

static void test_rules(void)
{
    struct rbac_attrs get_pod = {"get", "", "pods", NULL, "default", "web", NULL};
    ok(allows("{verbs: [get], apiGroups: [''], resources: [pods]}", &get_pod), "get pods");
    ok(!allows("{verbs: [list], apiGroups: [''], resources: [pods]}", &get_pod), "verb differs");
    ok(allows("{verbs: ['*'], apiGroups: ['*'], resources: ['*']}", &get_pod), "* * *");
    ok(!allows("{verbs: [get], apiGroups: [apps], resources: [pods]}", &get_pod), "group differs");
    ok(!allows("{verbs: [get], resources: [pods]}", &get_pod), "no apiGroups: nothing");
    ok(allows("{verbs: [get], apiGroups: [''], resources: [pods], resourceNames: [web]}", &get_pod),
       "resourceNames has it");
    ok(!allows("{verbs: [get], apiGroups: [''], resources: [pods], resourceNames: [db]}", &get_pod),
       "resourceNames has not");
    struct rbac_attrs list_pods = {"list", "", "pods", NULL, "default", NULL, NULL};
    ok(!allows("{verbs: [list], apiGroups: [''], resources: [pods], resourceNames: [web]}",
               &list_pods),
       "resourceNames: a list names none");
    struct rbac_attrs log = {"get", "", "pods", "log", "default", "web", NULL};
    ok(!allows("{verbs: [get], apiGroups: [''], resources: [pods]}", &log),
       "pods does not include pods/log");
    ok(allows("{verbs: [get], apiGroups: [''], resources: [pods/log]}", &log), "pods/log");
    ok(allows("{verbs: [get], apiGroups: [''], resources: ['*/log']}", &log), "*/log");
    ok(!allows("{verbs: [get], apiGroups: [''], resources: ['*/status']}", &log), "*/status");
    ok(!allows("{verbs: [get], apiGroups: [''], resources: [pods/log]}", &get_pod),
       "pods/log does not include pods");
    struct rbac_attrs dep = {"update", "apps", "deployments", "scale", "default", "d", NULL};
    ok(allows("{verbs: [update], apiGroups: [apps], resources: [deployments/scale]}", &dep),
       "deployments/scale in apps");
    struct rbac_attrs healthz = {.verb = "get", .path = "/healthz"};
    struct rbac_attrs apis = {.verb = "get", .path = "/apis/apps/v1"};
    ok(allows("{verbs: [get], nonResourceURLs: [/healthz]}", &healthz), "nonResourceURL exact");
    ok(!allows("{verbs: [get], nonResourceURLs: [/apis]}", &apis), "/apis is not /apis/apps/v1");
    ok(allows("{verbs: [get], nonResourceURLs: [/apis/*]}", &apis), "/apis/* prefix");
    ok(allows("{verbs: [get], nonResourceURLs: ['*']}", &apis), "*");
    ok(!allows("{verbs: [post], nonResourceURLs: ['*']}", &apis), "verb of a URL");
    ok(!allows("{verbs: [get], apiGroups: ['*'], resources: ['*']}", &apis),
       "resource rules do not grant URLs");
}

static bool hold_get_pods(const struct rbac_attrs *a, void *arg)
{
    (void)arg;
    return !a->path && !strcmp(a->verb, "get") && !strcmp(a->resource, "pods") && !a->sub;
}

static void test_missing(void)
{
    Coracle__V1__PolicyRule *r =
        rule("{verbs: [get, list], apiGroups: ['', apps], resources: [pods, secrets]}");
    char *s = rbac_rule_string(r);
    is_str(
        s,
        "{APIGroups:[\"\" \"apps\"], Resources:[\"pods\" \"secrets\"], Verbs:[\"get\" \"list\"]}",
        "CompactString");
    free(s);
    char *miss = rbac_rules_missing(&r, 1, "default", hold_get_pods, NULL);
    is_str(miss,
           "{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"list\"]}\n"
           "{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"list\"]}\n"
           "{APIGroups:[\"apps\"], Resources:[\"pods\"], Verbs:[\"list\"]}\n"
           "{APIGroups:[\"apps\"], Resources:[\"secrets\"], Verbs:[\"get\" \"list\"]}",
           "the atoms not held, verbs merged, sorted");
    free(miss);
    Coracle__V1__PolicyRule *own[] = {
        rule("{verbs: ['*'], apiGroups: [''], resources: ['*']}"),
        rule("{verbs: [get], apiGroups: [apps], resources: [pods, secrets]}"),
    };
    Coracle__V1__PolicyRule *one = rule("{verbs: [get], apiGroups: ['', apps], resources: [pods]}");
    ok(rbac_rules_cover(own, 2, one), "covered across two rules");
    ok(!rbac_rules_cover(own, 2, r), "apps list not covered");
    Coracle__V1__PolicyRule *star = rule("{verbs: [get], apiGroups: [''], resources: ['*']}");
    ok(rbac_rules_cover(own, 2, star), "* covered by *");
    ok(!rbac_rules_cover(&own[1], 1, star), "* not covered by names");
    obj_free(&star->base);
    obj_free(&one->base);
    obj_free(&own[0]->base);
    obj_free(&own[1]->base);
    obj_free(&r->base);
}

/* Feeds obj (YAML of kind k) to rb as a committed PUT. */
static void put(rbac_t *rb, const char *yaml)
{
    struct kobjs objs = {0};
    char *err = NULL;
    if (kobj_parse("obj", yaml, strlen(yaml), &objs, &err) < 0 || objs.n != 1) {
        diag("%s", err ? err : "no object");
        free(err);
        return;
    }
    const struct kind *k = objs.v[0].kind;
    Coracle__V1__ObjectMeta *m = obj_meta(objs.v[0].msg);
    char *key = kind_key(k, m->namespace_, m->name);
    size_t len;
    void *val = obj_encode(objs.v[0].msg, &len);
    struct store_change ch = {1, STORE_PUT_NEW, key, strlen(key), val, len, NULL, 0};
    rbac_on_change(rb, &ch);
    free(val);
    free(key);
    kobjs_free(&objs);
}

static void del(rbac_t *rb, const char *key)
{
    struct store_change ch = {2, STORE_DELETE, key, strlen(key), NULL, 0, NULL, 0};
    rbac_on_change(rb, &ch);
}

static void test_index(void)
{
    rbac_t *rb = rbac_new(NULL);
    put(rb, "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"
            "metadata: {name: reader, namespace: team}\n"
            "rules: [{verbs: [get, list], apiGroups: [''], resources: [pods]}]\n");
    put(rb, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
            "metadata: {name: nodes}\n"
            "rules: [{verbs: [list], apiGroups: [''], resources: [nodes]}]\n");
    put(rb, "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
            "metadata: {name: b, namespace: team}\n"
            "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}\n"
            "subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: bob},"
            " {kind: ServiceAccount, name: robot}]\n");
    put(rb, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
            "metadata: {name: devs}\n"
            "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: nodes}\n"
            "subjects: [{kind: Group, apiGroup: rbac.authorization.k8s.io, name: devs}]\n");
    const char *const none[] = {NULL};
    const char *const devs[] = {"system:authenticated", "devs", NULL};
    struct rbac_attrs list_team = {"list", "", "pods", NULL, "team", NULL, NULL};
    struct rbac_attrs list_other = {"list", "", "pods", NULL, "other", NULL, NULL};
    struct rbac_attrs list_all = {"list", "", "pods", NULL, NULL, NULL, NULL};
    struct rbac_attrs nodes = {"list", "", "nodes", NULL, NULL, NULL, NULL};
    ok(rbac_allows(rb, "bob", none, &list_team), "RoleBinding: bob in team");
    ok(!rbac_allows(rb, "bob", none, &list_other), "not in other");
    ok(!rbac_allows(rb, "bob", none, &list_all), "not across namespaces");
    ok(!rbac_allows(rb, "carl", none, &list_team), "carl: nothing");
    ok(rbac_allows(rb, "system:serviceaccount:team:robot", none, &list_team),
       "ServiceAccount subject: the binding's namespace");
    ok(!rbac_allows(rb, "system:serviceaccount:other:robot", none, &list_team),
       "not another namespace's robot");
    ok(rbac_allows(rb, "carl", devs, &nodes), "ClusterRoleBinding to group devs");
    ok(!rbac_allows(rb, "carl", none, &nodes), "not without the group");
    del(rb, "rolebindings/team/b");
    ok(!rbac_allows(rb, "bob", none, &list_team), "binding deleted: refused");
    del(rb, "clusterroles//nodes");
    ok(!rbac_allows(rb, "carl", devs, &nodes), "role deleted: its binding grants nothing");
    struct store_change resync = {3, STORE_RESYNC, NULL, 0, NULL, 0, NULL, 0};
    rbac_on_change(rb, &resync);
    ok(!rbac_allows(rb, "carl", devs, &nodes), "a resync without a store: empty");
    rbac_free(rb);
}

static int creates, updates;

static void count_create(void *arg, const struct kind *k, ProtobufCMessage *obj)
{
    rbac_t *rb = arg;
    Coracle__V1__ObjectMeta *m = obj_meta(obj);
    char *key = kind_key(k, NULL, m->name);
    size_t len;
    void *val = obj_encode(obj, &len);
    struct store_change ch = {1, STORE_PUT_NEW, key, strlen(key), val, len, NULL, 0};
    rbac_on_change(rb, &ch);
    free(val);
    free(key);
    obj_free(obj);
    creates++;
}

static void count_update(void *arg, const struct kind *k, ProtobufCMessage *obj)
{
    count_create(arg, k, obj);
    creates--;
    updates++;
}

static void test_boot(void)
{
    rbac_t *rb = rbac_new(NULL);
    struct rbac_boot_ops ops = {count_create, count_update, rb};
    int n = rbac_boot_reconcile(rb, &ops);
    ok(n > 20 && creates == n && updates == 0, "first pass: every default created (%d)", n);
    ok(rbac_boot_reconcile(rb, &ops) == 0, "second pass: nothing to do");
    const Coracle__V1__ClusterRole *d = rbac_cluster_role(rb, "system:discovery");
    ok(d && d->n_rules == 1, "system:discovery stored");
    put(rb, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
            "metadata: {name: system:discovery}\n"
            "rules: [{verbs: [get], nonResourceURLs: [/extra]}]\n");
    ok(rbac_boot_reconcile(rb, &ops) == 1 && updates == 1, "an edited default: reconciled");
    d = rbac_cluster_role(rb, "system:discovery");
    ok(d && d->n_rules == 2 && !strcmp(d->rules[0]->nonresourceurls[0], "/extra"),
       "its rule added back, the extra kept");
    put(rb, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
            "metadata: {name: system:discovery, annotations:"
            " {rbac.authorization.kubernetes.io/autoupdate: 'false'}}\n"
            "rules: []\n");
    ok(rbac_boot_reconcile(rb, &ops) == 0, "autoupdate false: left alone");
    rbac_free(rb);
}

int main(void)
{
    test_rules();
    test_missing();
    test_index();
    test_boot();
    return done_testing();
}
