/*
 * coraclectl create role|clusterrole|rolebinding|clusterrolebinding NAME:
 * RBAC objects from flags, as kubectl's `create role` and friends
 * (--verb, --resource, --resource-name, --role, --clusterrole, --user,
 * --group, --serviceaccount). The object is written as YAML and read by
 * kobj, the same mapper as `create -f`, then created.
 */
#include "config.h"

#include "client.h"
#include "ctl.h"
#include "grpc.h"
#include "kobj.h"
#include "output.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char rbac_help[] =
    "Create a Role, ClusterRole, RoleBinding or ClusterRoleBinding.\n\n"
    "Usage:\n"
    "  coraclectl create role NAME --verb=VERB --resource=RESOURCE[.GROUP][/SUB] "
    "[--resource-name=NAME]\n"
    "  coraclectl create clusterrole NAME --verb=VERB --resource=... | "
    "--non-resource-url=URL\n"
    "  coraclectl create rolebinding NAME --role=ROLE|--clusterrole=ROLE [--user=U] "
    "[--group=G] [--serviceaccount=NS:NAME]\n"
    "  coraclectl create clusterrolebinding NAME --clusterrole=ROLE [--user=U] [--group=G] "
    "[--serviceaccount=NS:NAME]\n\n"
    "Flags may repeat and take comma-separated lists, as kubectl's.\n";

/* Appends each comma-separated item of the flag's values as a YAML flow list item. */
static void yaml_items(struct buf *b, const struct ctl_strv *v)
{
    bool first = true;
    for (size_t i = 0; i < v->n; i++) {
        for (const char *p = v->v[i]; *p;) {
            size_t l = strcspn(p, ",");
            if (l) {
                buf_printf(b, "%s'%.*s'", first ? "" : ", ", (int)l, p);
                first = false;
            }
            p += l + (p[l] == ',');
        }
    }
}

/* The API group of a --resource value ("pods", "deployments.apps", "pods/log") into g. */
static void resource_group(const char *res, char *base, size_t bn, char *g, size_t gn)
{
    size_t bl = strcspn(res, "/.");
    snprintf(base, bn, "%.*s", (int)bl, res);
    g[0] = '\0';
    if (res[bl] == '.') {
        snprintf(g, gn, "%.*s", (int)strcspn(res + bl + 1, "/"), res + bl + 1);
        return;
    }
    const struct kind *k = kind_lookup(base);
    const char *slash = k ? strchr(k->api_version, '/') : NULL;
    if (k) {
        snprintf(base, bn, "%s", k->resource);
        if (slash)
            snprintf(g, gn, "%.*s", (int)(slash - k->api_version), k->api_version);
    }
}

/* One rule per API group, as kubectl groups --resource values. */
static void yaml_rules(struct buf *b, const struct ctl_strv *verbs, const struct ctl_strv *res,
                       const struct ctl_strv *names)
{
    char groups[16][64];
    size_t ng = 0;
    for (size_t i = 0; i < res->n; i++) {
        char base[128], g[64];
        for (const char *p = res->v[i]; *p;) {
            size_t l = strcspn(p, ",");
            char one[192];
            snprintf(one, sizeof(one), "%.*s", (int)l, p);
            p += l + (p[l] == ',');
            if (!*one)
                continue;
            resource_group(one, base, sizeof(base), g, sizeof(g));
            size_t j = 0;
            while (j < ng && strcmp(groups[j], g))
                j++;
            if (j == ng && ng < 16)
                snprintf(groups[ng++], sizeof(groups[0]), "%s", g);
        }
    }
    for (size_t j = 0; j < ng; j++) {
        buf_printf(b, "- apiGroups: ['%s']\n  resources: [", groups[j]);
        bool first = true;
        for (size_t i = 0; i < res->n; i++) {
            for (const char *p = res->v[i]; *p;) {
                size_t l = strcspn(p, ",");
                char one[192], base[128], g[64];
                snprintf(one, sizeof(one), "%.*s", (int)l, p);
                p += l + (p[l] == ',');
                if (!*one)
                    continue;
                resource_group(one, base, sizeof(base), g, sizeof(g));
                if (strcmp(g, groups[j]))
                    continue;
                const char *sub = strchr(one, '/');
                buf_printf(b, "%s'%s%s'", first ? "" : ", ", base, sub ? sub : "");
                first = false;
            }
        }
        buf_printf(b, "]\n  verbs: [");
        yaml_items(b, verbs);
        buf_printf(b, "]\n");
        if (names->n) {
            buf_printf(b, "  resourceNames: [");
            yaml_items(b, names);
            buf_printf(b, "]\n");
        }
    }
}

static void yaml_subjects(struct buf *b, const struct ctl_strv *users,
                          const struct ctl_strv *groups, const struct ctl_strv *sas)
{
    buf_printf(b, "subjects:\n");
    const struct ctl_strv *lists[] = {users, groups};
    const char *kinds[] = {"User", "Group"};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < lists[k]->n; i++)
            buf_printf(b, "- {kind: %s, apiGroup: rbac.authorization.k8s.io, name: '%s'}\n",
                       kinds[k], lists[k]->v[i]);
    for (size_t i = 0; i < sas->n; i++) {
        const char *colon = strchr(sas->v[i], ':');
        if (colon)
            buf_printf(b, "- {kind: ServiceAccount, namespace: '%.*s', name: '%s'}\n",
                       (int)(colon - sas->v[i]), sas->v[i], colon + 1);
    }
}

struct rbac_flags {
    struct ctl_strv verbs, res, names, urls, users, groups, sas;
    const char *role, *clusterrole;
};

/* The object's YAML, or NULL after printing kubectl's complaint. */
static char *rbac_yaml(const struct kind *k, const char *name, const struct rbac_flags *f)
{
    struct buf b = {0};
    buf_printf(&b, "apiVersion: rbac.authorization.k8s.io/v1\nkind: %s\nmetadata:\n  name: '%s'\n",
               k->kind, name);
    if (k->namespaced)
        buf_printf(&b, "  namespace: '%s'\n", ctl_namespace());
    if (k == &kind_role || k == &kind_clusterrole) {
        if (!f->verbs.n || (!f->res.n && !f->urls.n)) {
            fprintf(stderr, "error: at least one verb and one resource must be specified\n");
            buf_free(&b);
            return NULL;
        }
        buf_printf(&b, "rules:\n");
        yaml_rules(&b, &f->verbs, &f->res, &f->names);
        if (f->urls.n) {
            buf_printf(&b, "- nonResourceURLs: [");
            yaml_items(&b, &f->urls);
            buf_printf(&b, "]\n  verbs: [");
            yaml_items(&b, &f->verbs);
            buf_printf(&b, "]\n");
        }
    } else {
        const char *rk = f->clusterrole ? "ClusterRole" : "Role";
        const char *rn = f->clusterrole ? f->clusterrole : f->role;
        if (!rn || (f->role && f->clusterrole) || (k == &kind_clusterrolebinding && f->role)) {
            fprintf(stderr, "error: exactly one of clusterrole or role must be specified\n");
            buf_free(&b);
            return NULL;
        }
        buf_printf(&b, "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: %s, name: '%s'}\n", rk,
                   rn);
        yaml_subjects(&b, &f->users, &f->groups, &f->sas);
    }
    return buf_take(&b);
}

static int create_obj(const struct kind *k, const char *yaml)
{
    struct kobjs objs = {0};
    char *err = NULL;
    if (kobj_parse("flags", yaml, strlen(yaml), &objs, &err) < 0 || objs.n != 1) {
        fprintf(stderr, "error: %s\n", err ? err : "no object");
        free(err);
        kobjs_free(&objs);
        return 1;
    }
    struct ctl_client c;
    int rc = 1;
    if (ctl_client_open(&c) == 0) {
        ProtobufCMessage *resp = NULL;
        int code = ctl_call(&c, k, "Create", objs.v[0].msg, k->desc, &resp, &err);
        if (code == GRPC_OK) {
            printf("%s/%s created\n", ctl_kind_label(k).s, kind_meta(resp)->name);
            protobuf_c_message_free_unpacked(resp, NULL);
            rc = 0;
        } else {
            ctl_print_error(&c, code, err);
            free(err);
        }
        ctl_client_close(&c);
    }
    kobjs_free(&objs);
    return rc;
}

int ctl_create_rbac(int argc, char **argv)
{
    struct rbac_flags f = {0};
    struct ctl_strv pos = {0};
    const struct ctl_flag flags[] = {
        {"verb", 0, CTL_FLAG_LIST, &f.verbs, NULL},
        {"resource", 0, CTL_FLAG_LIST, &f.res, NULL},
        {"resource-name", 0, CTL_FLAG_LIST, &f.names, NULL},
        {"non-resource-url", 0, CTL_FLAG_LIST, &f.urls, NULL},
        {"user", 0, CTL_FLAG_LIST, &f.users, NULL},
        {"group", 0, CTL_FLAG_LIST, &f.groups, NULL},
        {"serviceaccount", 0, CTL_FLAG_LIST, &f.sas, NULL},
        {"role", 0, CTL_FLAG_STR, &f.role, NULL},
        {"clusterrole", 0, CTL_FLAG_STR, &f.clusterrole, NULL},
    };
    int rc = 1;
    if (ctl_parse_flags(argc, argv, flags, ARRAY_SIZE(flags), &pos, NULL) < 0)
        goto out;
    if (ctl_g.help) {
        fputs(rbac_help, stdout);
        rc = 0;
        goto out;
    }
    const struct kind *k = pos.n ? kind_lookup(pos.v[0]) : NULL;
    if (pos.n != 2 || !k) {
        fprintf(stderr, "error: exactly one NAME is required, got %zu\n", pos.n ? pos.n - 1 : 0);
        goto out;
    }
    char *yaml = rbac_yaml(k, pos.v[1], &f);
    if (yaml)
        rc = create_obj(k, yaml);
    free(yaml);
out:
    free(f.verbs.v);
    free(f.res.v);
    free(f.names.v);
    free(f.urls.v);
    free(f.users.v);
    free(f.groups.v);
    free(f.sas.v);
    free(pos.v);
    return rc;
}
