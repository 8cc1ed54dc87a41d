/*
 * test_ctl_apply: apply's merge of a manifest onto the live object (it
 * includes cmd_apply.c to reach the static functions) and the command-line
 * flag parser every verb uses.
 */
#include "cmd_apply.c"

#include "tap.h"

static ProtobufCMessage *pod(const char *yaml)
{
    struct kobjs o = {0};
    char *err = NULL;
    if (kobj_parse("t.yaml", yaml, strlen(yaml), &o, &err) < 0 || o.n != 1) {
        diag("parse: %s", err ? err : "?");
        exit(1);
    }
    ProtobufCMessage *m = o.v[0].msg;
    o.v[0].msg = NULL;
    kobjs_free(&o);
    return m;
}

static void test_merge(void)
{
    ProtobufCMessage *live =
        pod("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n"
            "  namespace: default\n  uid: u-1\n  resourceVersion: \"7\"\n"
            "  labels:\n    app: web\n    old: x\n"
            "  annotations:\n    keep: server\n    mine: \"1\"\n"
            "spec:\n  nodeName: n1\n  restartPolicy: Always\n  containers:\n"
            "  - name: a\n    image: nginx:1\n    imagePullPolicy: IfNotPresent\n"
            "    env:\n    - name: E1\n      value: \"1\"\n    - name: E2\n"
            "      value: \"2\"\n    ports:\n    - containerPort: 80\n"
            "      protocol: TCP\n"
            "  - name: b\n    image: busybox\nstatus:\n  phase: Running\n");
    ProtobufCMessage *last = pod("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n"
                                 "  labels:\n    app: web\n    old: x\n"
                                 "  annotations:\n    mine: \"1\"\nspec:\n  containers:\n"
                                 "  - name: a\n    image: nginx:1\n    env:\n    - name: E1\n"
                                 "      value: \"1\"\n    - name: E2\n      value: \"2\"\n"
                                 "    ports:\n    - containerPort: 80\n"
                                 "  - name: b\n    image: busybox\n");
    ProtobufCMessage *want = pod("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n"
                                 "  labels:\n    app: web2\nspec:\n  hostNetwork: true\n"
                                 "  containers:\n  - name: a\n    image: nginx:2\n    env:\n"
                                 "    - name: E1\n      value: \"1\"\n"
                                 "    ports:\n    - containerPort: 80\n");
    apply_merge(live, want, "{\"applied\":1}", last);
    char *y = kobj_emit(&kind_pod, live, KOBJ_FMT_YAML);
    is_str(y,
           "apiVersion: v1\n"
           "kind: Pod\n"
           "metadata:\n"
           "  name: web\n"
           "  namespace: default\n"
           "  uid: u-1\n"
           "  resourceVersion: \"7\"\n"
           "  labels:\n"
           "    app: web2\n"
           "  annotations:\n"
           "    keep: server\n"
           "    kubectl.kubernetes.io/last-applied-configuration: '{\"applied\":1}'\n"
           "spec:\n"
           "  containers:\n"
           "  - name: a\n"
           "    image: nginx:2\n"
           "    ports:\n"
           "    - containerPort: 80\n"
           "      protocol: TCP\n"
           "    env:\n"
           "    - name: E1\n"
           "      value: \"1\"\n"
           "    imagePullPolicy: IfNotPresent\n"
           "  restartPolicy: Always\n"
           "  nodeName: n1\n"
           "  hostNetwork: true\n"
           "status:\n"
           "  phase: Running\n",
           "merge: manifest fields replace, dropped ones go, server fields and defaults stay");
    free(y);
    protobuf_c_message_free_unpacked(live, NULL);
    protobuf_c_message_free_unpacked(last, NULL);
    protobuf_c_message_free_unpacked(want, NULL);

    /* no last-applied (object made by create): nothing is removed */
    live = pod("apiVersion: v1\nkind: Pod\nmetadata:\n  name: w\n  labels:\n    x: y\n"
               "spec:\n  containers:\n  - name: a\n    image: i\n    args: [a]\n");
    want = pod("apiVersion: v1\nkind: Pod\nmetadata:\n  name: w\nspec:\n  containers:\n"
               "  - name: a\n    image: j\n");
    apply_merge(live, want, "{}", NULL);
    Coracle__V1__Pod *p = (Coracle__V1__Pod *)live;
    ok(p->metadata->n_labels == 1 && p->spec->containers[0]->n_args == 1 &&
           !strcmp(p->spec->containers[0]->image, "j"),
       "merge without last-applied keeps what the manifest does not mention");
    protobuf_c_message_free_unpacked(live, NULL);
    protobuf_c_message_free_unpacked(want, NULL);
}

static void test_flags(void)
{
    bool i = false, tt = false, w = true;
    const char *cont = NULL, *out = NULL;
    long long grace = -1;
    struct ctl_strv files = {0}, pos;
    int dd;
    const struct ctl_flag f[] = {
        {"stdin", 'i', CTL_FLAG_BOOL, &i, NULL},         {"tty", 't', CTL_FLAG_BOOL, &tt, NULL},
        {"container", 'c', CTL_FLAG_STR, &cont, NULL},   {"output", 'o', CTL_FLAG_STR, &out, NULL},
        {"grace-period", 0, CTL_FLAG_INT, &grace, NULL}, {"wait", 0, CTL_FLAG_BOOL, &w, NULL},
        {"filename", 'f', CTL_FLAG_LIST, &files, NULL},
    };
    char *a1[] = {"exec", "-it", "po/nginx", "-c", "busybox", "sh", NULL};
    ok(ctl_parse_flags(6, a1, f, ARRAY_SIZE(f), &pos, &dd) == 0 && i && tt &&
           !strcmp(cont, "busybox") && pos.n == 2 && !strcmp(pos.v[0], "po/nginx") &&
           !strcmp(pos.v[1], "sh") && dd == -1,
       "-it combined, -c value, positionals");
    free(pos.v);
    char *a2[] = {"get",
                  "--namespace=kube-system",
                  "-owide",
                  "pods",
                  "--wait=false",
                  "-n",
                  "x",
                  "-f",
                  "a",
                  "--filename=b",
                  "--grace-period",
                  "-1",
                  NULL};
    ok(ctl_parse_flags(12, a2, f, ARRAY_SIZE(f), &pos, NULL) == 0 &&
           !strcmp(ctl_namespace(), "x") && !strcmp(out, "wide") && !w && files.n == 2 &&
           !strcmp(files.v[1], "b") && grace == -1 && pos.n == 1,
       "--k=v, -ovalue, global -n anywhere, repeated -f, negative value");
    free(pos.v);
    free(files.v);
    char *a3[] = {"exec", "p", "--", "ls", "-l", NULL};
    ok(ctl_parse_flags(5, a3, f, ARRAY_SIZE(f), &pos, &dd) == 0 && pos.n == 3 && dd == 1 &&
           !strcmp(pos.v[2], "-l"),
       "-- ends the flags");
    free(pos.v);
    char *a4[] = {"get", "--bogus", NULL};
    ok(ctl_parse_flags(2, a4, f, ARRAY_SIZE(f), &pos, NULL) < 0, "unknown flag refused");
    free(pos.v);
    char *a5[] = {"get", "-c", NULL};
    ok(ctl_parse_flags(2, a5, f, ARRAY_SIZE(f), &pos, NULL) < 0, "missing value refused");
    free(pos.v);
    char *a6[] = {"get", "--grace-period=soon", NULL};
    ok(ctl_parse_flags(2, a6, f, ARRAY_SIZE(f), &pos, NULL) < 0, "bad integer refused");
    free(pos.v);
}

int main(void)
{
    test_merge();
    test_flags();
    return done_testing();
}
