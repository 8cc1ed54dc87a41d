/*
 * Unit tests for the DaemonSet controller's pure parts, without a server:
 * the template hash (against values computed independently from Python's
 * protobuf bytes), which nodes should run a daemon pod and which may keep
 * one (selectors, affinity, taints, readiness, cordon), the tolerations
 * added, the pod made for a node, its target node, and maxUnavailable or
 * maxSurge scaled from percentages.
 */
#include "config.h"
#include "tap.h"
#include "testobj.h"

#include "../../src/controller/daemonset.c"
#include "../../src/controller/daemonset_update.c"

static const char *DS_YAML = "apiVersion: apps/v1\n"
                             "kind: DaemonSet\n"
                             "metadata: {name: d, namespace: default, uid: u1}\n"
                             "spec:\n"
                             "  selector: {matchLabels: {app: d}}\n"
                             "  template:\n"
                             "    metadata: {labels: {app: d, controller-revision-hash: stale}}\n"
                             "    spec:\n"
                             "      nodeSelector: {tier: a}\n"
                             "      tolerations:\n"
                             "      - {key: node.kubernetes.io/not-ready, operator: Exists,\n"
                             "         effect: NoExecute, tolerationSeconds: 300}\n"
                             "      - {key: dedicated, operator: Equal, value: infra, effect: "
                             "NoSchedule}\n"
                             "      containers: [{name: c, image: busybox}]\n";

static Coracle__V1__Node *node(const char *yaml_spec_status)
{
    char *y = xconcat("apiVersion: v1\nkind: Node\n", yaml_spec_status, NULL);
    Coracle__V1__Node *n = (Coracle__V1__Node *)obj(y);
    free(y);
    return n;
}

#define READY "status: {conditions: [{type: Ready, status: \"True\"}]}\n"

static void test_hash(void)
{
    char h[CM_HASH_LEN];
    Coracle__V1__PodTemplateSpec empty = CORACLE__V1__POD_TEMPLATE_SPEC__INIT;
    cm_template_hash(&empty, NULL, h);
    is_str(h, "65bb57b6b5", "empty template: FNV-32a offset basis, SafeEncodeString'd");
    Coracle__V1__DaemonSet *ds =
        (Coracle__V1__DaemonSet *)obj("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: t}\n"
                                      "spec:\n  template:\n    metadata: {labels: {app: x}}\n"
                                      "    spec: {containers: [{name: c, image: busybox}]}\n");
    cm_template_hash(ds->spec->template_, NULL, h);
    is_str(h, "5c7576d96f", "a template: the hash of its protobuf bytes");
    int32_t one = 1;
    cm_template_hash(ds->spec->template_, &one, h);
    is_str(h, "9b7d85d4d", "collisionCount 1 changes it");
    protobuf_c_message_free_unpacked(&ds->base, NULL);
}

static void test_tolerations(const Coracle__V1__DaemonSet *ds)
{
    struct probe pr;
    ds_probe_init(&pr, ds);
    is_int((int)pr.spec.n_tolerations, 7, "2 of the template + 6 daemon ones, one replacing");
    const Coracle__V1__Toleration *t0 = pr.spec.tolerations[0];
    ok(!strcmp(t0->key, "node.kubernetes.io/not-ready") && !t0->has_tolerationseconds,
       "the template's equal not-ready toleration replaced, without tolerationSeconds");
    is_str(pr.spec.tolerations[1]->key, "dedicated", "the template's own kept");
    is_int((int)ds->spec->template_->spec->n_tolerations, 2, "the template itself unchanged");
    bool net = false;
    for (size_t i = 0; i < pr.spec.n_tolerations; i++)
        net |= !strcmp(pr.spec.tolerations[i]->key, "node.kubernetes.io/network-unavailable");
    ok(!net, "no network-unavailable toleration without hostNetwork");
    ds_probe_free(&pr);
    Coracle__V1__DaemonSet hn = *ds;
    Coracle__V1__DaemonSetSpec spec = *ds->spec;
    Coracle__V1__PodTemplateSpec tmpl = *spec.template_;
    Coracle__V1__PodSpec ps = *tmpl.spec;
    ps.has_hostnetwork = ps.hostnetwork = 1;
    tmpl.spec = &ps;
    spec.template_ = &tmpl;
    hn.spec = &spec;
    ds_probe_init(&pr, &hn);
    is_str(pr.spec.tolerations[pr.spec.n_tolerations - 1]->key,
           "node.kubernetes.io/network-unavailable", "hostNetwork: network-unavailable too");
    ds_probe_free(&pr);
}

static void check_node(const struct probe *pr, const char *yaml, bool run, bool stay,
                       const char *name)
{
    Coracle__V1__Node *n = node(yaml);
    bool s, r = ds_should_run(pr, n, &s);
    ok(r == run && s == stay, "%s: should run %d (want %d), may stay %d (want %d)", name, r, run, s,
       stay);
    protobuf_c_message_free_unpacked(&n->base, NULL);
}

static void test_should_run(const Coracle__V1__DaemonSet *ds)
{
    struct probe pr;
    ds_probe_init(&pr, ds);
    check_node(&pr, "metadata: {name: a, labels: {tier: a}}\n" READY, true, true, "matching node");
    check_node(&pr, "metadata: {name: b, labels: {tier: b}}\n" READY, false, false,
               "nodeSelector does not match");
    check_node(&pr, "metadata: {name: a, labels: {tier: a}}\n", false, true,
               "no Ready condition: not-ready NoSchedule, tolerated NoExecute");
    check_node(&pr,
               "metadata: {name: a, labels: {tier: a}}\n"
               "status: {conditions: [{type: Ready, status: Unknown}]}\n",
               false, true, "Ready Unknown: unreachable, likewise");
    check_node(&pr,
               "metadata: {name: a, labels: {tier: a}}\n"
               "spec: {unschedulable: true}\n" READY,
               true, true, "cordoned: the daemon pod tolerates unschedulable");
    check_node(&pr,
               "metadata: {name: a, labels: {tier: a}}\n"
               "spec: {taints: [{key: dedicated, value: infra, effect: NoSchedule}]}\n" READY,
               true, true, "a tolerated NoSchedule taint");
    check_node(&pr,
               "metadata: {name: a, labels: {tier: a}}\n"
               "spec: {taints: [{key: gpu, effect: NoSchedule}]}\n" READY,
               false, true, "an untolerated NoSchedule taint: none new, the old one stays");
    check_node(&pr,
               "metadata: {name: a, labels: {tier: a}}\n"
               "spec: {taints: [{key: gpu, effect: NoExecute}]}\n" READY,
               false, false, "an untolerated NoExecute taint: it goes");
    check_node(
        &pr,
        "metadata: {name: a, labels: {tier: a}}\n"
        "spec: {taints: [{key: node.kubernetes.io/memory-pressure, effect: NoSchedule}]}\n" READY,
        true, true, "memory pressure tolerated");
    ds_probe_free(&pr);
}

static void test_daemon_pod(Coracle__V1__DaemonSet *ds)
{
    struct view v = {0};
    v.ds = ds;
    v.name = "d";
    ds_probe_init(&v.pr, ds);
    strcpy(v.hash, "abc");
    struct daemon_pod dp;
    daemon_pod(&dp, &v, "node-7", "d-");
    const Coracle__V1__Pod *p = &dp.pp.pod;
    is_str(target_node(p), "node-7", "its target: the matchFields metadata.name In");
    is_str(label_of(p, DS_HASH_LABEL), "abc", "the hash label replaces the template's");
    is_int((int)p->metadata->n_labels, 2, "app and the hash");
    is_int((int)p->spec->n_tolerations, 7, "with the daemon tolerations");
    ok(p->spec->nodeselector && p->spec->n_nodeselector == 1, "the template's nodeSelector kept");
    is_str(p->metadata->ownerreferences[0]->uid, "u1", "owned by the DaemonSet");
    free(dp.labels);
    Coracle__V1__Pod bound = *p;
    Coracle__V1__PodSpec bs = *p->spec;
    bs.nodename = "other";
    bound.spec = &bs;
    is_str(target_node(&bound), "other", "spec.nodeName wins");
    ds_probe_free(&v.pr);
}

static void test_scaled(void)
{
    Coracle__V1__IntOrString i = CORACLE__V1__INT_OR_STRING__INIT;
    i.has_intval = 1;
    i.intval = 3;
    is_int(scaled(&i, 10, 1), 3, "an int is itself");
    i.has_type = 1;
    i.type = 1;
    i.strval = "10%";
    is_int(scaled(&i, 15, 1), 2, "10% of 15: 2 (rounded up)");
    i.strval = "0%";
    is_int(scaled(&i, 15, 1), 0, "0%: 0");
    is_int(scaled(NULL, 15, 1), 1, "absent: the default");
}

static Coracle__V1__Pod *pod(const char *name, const char *hash, bool ready)
{
    char *y = xasprintf("apiVersion: v1\nkind: Pod\n"
                        "metadata: {name: %s, labels: {controller-revision-hash: %s}}\n"
                        "spec: {nodeName: x, containers: [{name: c, image: busybox}]}\n"
                        "status: {phase: Running, conditions: [{type: Ready, status: \"%s\"}]}\n",
                        name, hash, ready ? "True" : "False");
    Coracle__V1__Pod *p = (Coracle__V1__Pod *)obj(y);
    free(y);
    return p;
}

static bool deletes(const struct view *v, const char *names)
{
    char got[256] = "";
    for (size_t i = 0; i < v->n_del; i++) {
        strcat(got, i ? "," : "");
        strcat(got, v->del[i]->metadata->name);
    }
    if (strcmp(got, names))
        diag("deleted %s, want %s", got, names);
    return !strcmp(got, names);
}

static void test_roll_unavailable(Coracle__V1__DaemonSet *ds)
{
    Coracle__V1__Pod *a = pod("a", "old", true), *b = pod("b", "old", true);
    Coracle__V1__Pod *c = pod("c", "new", false), *d = pod("d", "old", false);
    struct view v = {0};
    v.ds = ds;
    strcpy(v.hash, "new");
    struct node_pods np[] = {
        {"na", NULL, a, true},
        {"nb", NULL, b, true},
        {"nc", c, NULL, true},
        {"nd", NULL, d, true},
    };
    struct roll r = {&v, np, 4, 4, 4};
    roll_unavailable(&v, &r, 2);
    ok(deletes(&v, "d,a"), "maxUnavailable 2, one new pod not available: the unavailable old "
                           "pod and one more go");
    v.n_del = 0;
    roll_unavailable(&v, &r, 1);
    ok(deletes(&v, "d"), "maxUnavailable 1: only the old pod that is unavailable anyway");
    v.n_del = 0;
    np[0].ok = false; /* say, two old pods there */
    roll_unavailable(&v, &r, 2);
    ok(deletes(&v, "d"), "a node with two pods of one kind counts unavailable (the reconcile "
                         "prunes it): no room left");
    free(v.del);
    Coracle__V1__Pod *all[] = {a, b, c, d};
    for (size_t i = 0; i < 4; i++)
        protobuf_c_message_free_unpacked(&all[i]->base, NULL);
}

int main(void)
{
    Coracle__V1__DaemonSet *ds = (Coracle__V1__DaemonSet *)obj(DS_YAML);
    test_hash();
    test_tolerations(ds);
    test_should_run(ds);
    test_daemon_pod(ds);
    test_scaled();
    test_roll_unavailable(ds);
    protobuf_c_message_free_unpacked(&ds->base, NULL);
    done_testing();
    return tap_failed != 0;
}
