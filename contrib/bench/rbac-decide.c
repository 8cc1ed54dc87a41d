/*
 * rbac-decide: the authorizer's decision alone, in process, CPU time per
 * call: auth_check for an ordinary user allowed by one RoleBinding among
 * ROLES Roles and RoleBindings (and ROLES/10 ClusterRoles and bindings to
 * groups), against the same auth_t in AlwaysAllow mode. What h2load's
 * figures in rbac-bench cannot resolve on a busy machine.
 *
 *     rbac-decide [-r ROLES] [-n CALLS]
 */
#include "config.h"
#include "auth.h"
#include "kobj.h"
#include "obj.h"
#include "rbac.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void put(rbac_t *rb, const char *yaml)
{
    struct kobjs objs = {0};
    char *err = NULL;
    if (kobj_parse("bench", yaml, strlen(yaml), &objs, &err) < 0 || objs.n != 1) {
        fprintf(stderr, "rbac-decide: %s\n", err ? err : "no object");
        exit(1);
    }
    Coracle__V1__ObjectMeta *m = obj_meta(objs.v[0].msg);
    char *key = kind_key(objs.v[0].kind, m->namespace_, m->name);
    size_t len;
    void *val = obj_encode(objs.v[0].msg, &len);
    struct store_change ch = {1, STORE_PUT_NEW, key, strlen(key), val, len, NULL, 0};
    rbac_on_change(rb, &ch);
    free(val);
    free(key);
    kobjs_free(&objs);
}

static void fill(rbac_t *rb, int roles)
{
    char buf[1024];
    for (int i = 0; i < roles; i++) {
        snprintf(buf, sizeof(buf),
                 "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"
                 "metadata: {name: r%d, namespace: ns%d}\n"
                 "rules: [{verbs: [get, list, watch], apiGroups: [''], resources: [pods]}]\n",
                 i, i % 20);
        put(rb, buf);
        snprintf(buf, sizeof(buf),
                 "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
                 "metadata: {name: b%d, namespace: ns%d}\n"
                 "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r%d}\n"
                 "subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: user%d}]\n",
                 i, i % 20, i, i);
        put(rb, buf);
    }
    for (int i = 0; i < roles / 10; i++) {
        snprintf(buf, sizeof(buf),
                 "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
                 "metadata: {name: cr%d}\n"
                 "rules: [{verbs: [get], apiGroups: [''], resources: [nodes]}]\n",
                 i);
        put(rb, buf);
        snprintf(buf, sizeof(buf),
                 "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
                 "metadata: {name: crb%d}\n"
                 "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cr%d}\n"
                 "subjects: [{kind: Group, apiGroup: rbac.authorization.k8s.io, name: g%d}]\n",
                 i, i, i);
        put(rb, buf);
    }
    put(rb, "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"
            "metadata: {name: reader, namespace: bench}\n"
            "rules: [{verbs: [get, list, watch], apiGroups: [''], resources: [pods]}]\n");
    put(rb, "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
            "metadata: {name: bob, namespace: bench}\n"
            "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}\n"
            "subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: bob}]\n");
}

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* CPU ns per auth_check of bob's get of bench/p1; -1 if one was refused. */
static double per_call(const auth_t *au, long n)
{
    static const char *const groups[] = {"system:authenticated", NULL};
    struct auth_user u = {"bob", groups, NULL, ""};
    double t0 = cpu_ns();
    for (long i = 0; i < n; i++) {
        char *err = NULL;
        if (auth_check(au, &u, NULL, "get", &kind_pod, NULL, "bench", "p1", NULL, &err) < 0) {
            fprintf(stderr, "rbac-decide: refused: %s\n", err);
            free(err);
            return -1;
        }
    }
    return (cpu_ns() - t0) / (double)n;
}

static auth_t *auth_for(const char *tokens, int rbac)
{
    struct auth_config cfg = {.token_file = tokens, .rbac = rbac};
    auth_t *au;
    char *err;
    if (auth_new(&cfg, &au, &err) < 0) {
        fprintf(stderr, "rbac-decide: %s\n", err);
        exit(1);
    }
    return au;
}

int main(int argc, char **argv)
{
    int roles = 200, opt;
    long n = 2000000;
    while ((opt = getopt(argc, argv, "r:n:")) != -1) {
        if (opt == 'r')
            roles = atoi(optarg);
        else if (opt == 'n')
            n = atol(optarg);
        else
            return 2;
    }
    log_set_level(LOG_LVL_WARN);
    char tokens[] = "/tmp/rbac-decide.XXXXXX";
    int fd = mkstemp(tokens);
    if (fd < 0 || write(fd, "t,bob,1\n", 8) != 8)
        return 1;
    close(fd);
    rbac_t *rb = rbac_new(NULL);
    fill(rb, roles);
    auth_t *on = auth_for(tokens, 1), *off = auth_for(tokens, 0);
    auth_set_rbac(on, rb);
    unlink(tokens);
    double best_on = 1e18, best_off = 1e18;
    for (int round = 0; round < 5; round++) {
        double a = per_call(off, n / 5), b = per_call(on, n / 5);
        if (a < 0 || b < 0)
            return 1;
        best_off = a < best_off ? a : best_off;
        best_on = b < best_on ? b : best_on;
    }
    printf("decision: RBAC (%d Roles, %d RoleBindings, %d ClusterRoles and bindings) %.0f ns, "
           "AlwaysAllow %.0f ns per call (CPU, best of 5 x %ld)\n",
           roles + 1, roles + 1, roles / 10, best_on, best_off, n / 5);
    auth_free(on);
    auth_free(off);
    rbac_free(rb);
    return 0;
}
