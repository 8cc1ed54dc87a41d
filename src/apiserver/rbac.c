/*
 * rbac: the in-memory index of the stored RBAC objects and Kubernetes'
 * rule evaluation. See rbac.h.
 */
#include "config.h"
#include "rbac.h"
#include "obj.h"
#include "smap.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A stored binding as the index needs it. */
struct bind {
    char *role_key; /* "clusterroles//NAME" or "roles/NS/NAME" */
    char **subj;    /* the index keys it is listed under */
    size_t nsubj;
    ProtobufCMessage *obj; /* the decoded RoleBinding or ClusterRoleBinding */
};

/* The bindings listed under one index key. */
struct blist {
    struct bind **v;
    size_t n;
};

struct rbac {
    store_t *st;
    smap_t *roles; /* store key -> Role or ClusterRole (decoded) */
    smap_t *binds; /* store key -> struct bind */
    smap_t *subj;  /* "U:name\nns", "G:name\nns" ("" ns: cluster-wide) -> struct blist */
};

/* Role and ClusterRole are read through one layout (metadata, rules). */
_Static_assert(offsetof(Coracle__V1__Role, rules) == offsetof(Coracle__V1__ClusterRole, rules) &&
                   offsetof(Coracle__V1__Role, n_rules) ==
                       offsetof(Coracle__V1__ClusterRole, n_rules),
               "role layout");
_Static_assert(offsetof(Coracle__V1__RoleBinding, roleref) ==
                       offsetof(Coracle__V1__ClusterRoleBinding, roleref) &&
                   offsetof(Coracle__V1__RoleBinding, subjects) ==
                       offsetof(Coracle__V1__ClusterRoleBinding, subjects),
               "binding layout");

/* ---------------------------------------------------------------- rules */

static bool has(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i], s))
            return true;
    return false;
}

static bool resource_matches(const Coracle__V1__PolicyRule *r, const char *res, const char *sub)
{
    size_t rl = strlen(res), sl = sub ? strlen(sub) : 0;
    for (size_t i = 0; i < r->n_resources; i++) {
        const char *rr = r->resources[i];
        if (!strcmp(rr, "*"))
            return true;
        if (!sub) {
            if (!strcmp(rr, res))
                return true;
            continue;
        }
        /* "pods/log" names the subresource; "* /log" (no space) every resource's */
        if (!strncmp(rr, res, rl) && rr[rl] == '/' && !strcmp(rr + rl + 1, sub))
            return true;
        if (rr[0] == '*' && rr[1] == '/' && strlen(rr + 2) == sl && !strcmp(rr + 2, sub))
            return true;
    }
    return false;
}

static bool url_matches(const Coracle__V1__PolicyRule *r, const char *path)
{
    for (size_t i = 0; i < r->n_nonresourceurls; i++) {
        const char *u = r->nonresourceurls[i];
        size_t ul = strlen(u);
        if (!strcmp(u, "*") || !strcmp(u, path))
            return true;
        if (ul && u[ul - 1] == '*' && !strncmp(u, path, ul - 1))
            return true;
    }
    return false;
}

bool rbac_rule_allows(const Coracle__V1__PolicyRule *r, const struct rbac_attrs *a)
{
    if (!has(r->verbs, r->n_verbs, "*") && !has(r->verbs, r->n_verbs, a->verb))
        return false;
    if (a->path)
        return url_matches(r, a->path);
    if (!has(r->apigroups, r->n_apigroups, "*") &&
        !has(r->apigroups, r->n_apigroups, a->group ? a->group : ""))
        return false;
    if (!resource_matches(r, a->resource ? a->resource : "", a->sub && *a->sub ? a->sub : NULL))
        return false;
    return r->n_resourcenames == 0 ||
           (a->name && has(r->resourcenames, r->n_resourcenames, a->name));
}

/* Appends ", Field:[\"a\" \"b\"]" as Go's %q prints a []string. */
static void field_string(FILE *f, bool *first, const char *field, char *const *v, size_t n)
{
    if (!n)
        return;
    fprintf(f, "%s%s:[", *first ? "" : ", ", field);
    *first = false;
    for (size_t i = 0; i < n; i++) {
        fputs(i ? " \"" : "\"", f);
        for (const char *p = v[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                fputc('\\', f);
            fputc(*p, f);
        }
        fputc('"', f);
    }
    fputc(']', f);
}

char *rbac_rule_string(const Coracle__V1__PolicyRule *r)
{
    char *buf = NULL;
    size_t sz = 0;
    FILE *f = open_memstream(&buf, &sz);
    bool first = true;
    fputc('{', f);
    field_string(f, &first, "APIGroups", r->apigroups, r->n_apigroups);
    field_string(f, &first, "Resources", r->resources, r->n_resources);
    field_string(f, &first, "NonResourceURLs", r->nonresourceurls, r->n_nonresourceurls);
    field_string(f, &first, "ResourceNames", r->resourcenames, r->n_resourcenames);
    field_string(f, &first, "Verbs", r->verbs, r->n_verbs);
    fputc('}', f);
    fclose(f);
    return buf;
}

/* ---------------------------------------------------------------- index */

static const Coracle__V1__RoleBinding *as_binding(const void *m)
{
    return m;
}

static void bind_free(void *p)
{
    struct bind *b = p;
    if (!b)
        return;
    free(b->role_key);
    for (size_t i = 0; i < b->nsubj; i++)
        free(b->subj[i]);
    free(b->subj);
    obj_free(b->obj);
    free(b);
}

static void blist_free(void *p)
{
    struct blist *l = p;
    free(l->v);
    free(l);
}

static void role_free(void *p)
{
    obj_free(p);
}

/* The index key of a subject of a binding in ns ("" for a ClusterRoleBinding), or NULL. */
static char *subject_key(const Coracle__V1__Subject *s, const char *ns)
{
    const char *kind = s->kind ? s->kind : "", *name = s->name ? s->name : "";
    if (!*name)
        return NULL;
    if (!strcmp(kind, "User"))
        return xasprintf("U:%s\n%s", name, ns);
    if (!strcmp(kind, "Group"))
        return xasprintf("G:%s\n%s", name, ns);
    if (!strcmp(kind, "ServiceAccount")) {
        /* as Kubernetes' appliesToUser: no namespace means the binding's */
        const char *sans = s->namespace_ && *s->namespace_ ? s->namespace_ : ns;
        return xasprintf("U:system:serviceaccount:%s:%s\n%s", sans, name, ns);
    }
    return NULL;
}

static void index_remove(rbac_t *rb, const char *key)
{
    struct bind *b = smap_del(rb->binds, key);
    if (!b)
        return;
    for (size_t i = 0; i < b->nsubj; i++) {
        struct blist *l = smap_get(rb->subj, b->subj[i]);
        for (size_t j = 0; l && j < l->n; j++) {
            if (l->v[j] == b) {
                l->v[j] = l->v[--l->n];
                break;
            }
        }
        if (l && !l->n)
            blist_free(smap_del(rb->subj, b->subj[i]));
    }
    bind_free(b);
}

static void index_add(rbac_t *rb, const struct kind *k, const char *key, ProtobufCMessage *obj)
{
    const Coracle__V1__RoleBinding *rbd = as_binding(obj);
    bool cluster = k == &kind_clusterrolebinding;
    const char *ns =
        !cluster && rbd->metadata && rbd->metadata->namespace_ ? rbd->metadata->namespace_ : "";
    const Coracle__V1__RoleRef *ref = rbd->roleref;
    if (!ref || !ref->name || !ref->kind) {
        obj_free(obj);
        return;
    }
    struct bind *b = xcalloc(1, sizeof(*b));
    b->obj = obj;
    b->role_key = !strcmp(ref->kind, "Role") && !cluster
                      ? kind_key(&kind_role, ns, ref->name)
                      : kind_key(&kind_clusterrole, NULL, ref->name);
    for (size_t i = 0; i < rbd->n_subjects; i++) {
        char *sk = subject_key(rbd->subjects[i], ns);
        if (!sk)
            continue;
        struct blist *l = smap_get(rb->subj, sk);
        if (!l) {
            l = xcalloc(1, sizeof(*l));
            smap_put(rb->subj, sk, l);
        }
        bool dup = false;
        for (size_t j = 0; j < l->n; j++)
            dup = dup || l->v[j] == b;
        if (dup) {
            free(sk);
            continue;
        }
        l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
        l->v[l->n++] = b;
        b->subj = xrealloc(b->subj, (b->nsubj + 1) * sizeof(*b->subj));
        b->subj[b->nsubj++] = sk;
    }
    smap_put(rb->binds, key, b);
}

/* Sets (val != NULL) or removes the object under store key key. */
static void index_set(rbac_t *rb, const char *key, size_t key_len, const void *val, size_t val_len)
{
    const struct kind *k = kind_by_key(key, key_len);
    if (k != &kind_role && k != &kind_clusterrole && k != &kind_rolebinding &&
        k != &kind_clusterrolebinding)
        return;
    char *kz = xstrndup(key, key_len);
    ProtobufCMessage *obj = val ? obj_decode(k->desc, val, val_len) : NULL;
    if (k == &kind_role || k == &kind_clusterrole) {
        void *old = obj ? smap_put(rb->roles, kz, obj) : smap_del(rb->roles, kz);
        role_free(old);
    } else {
        index_remove(rb, kz);
        if (obj)
            index_add(rb, k, kz, obj);
    }
    free(kz);
}

static int load_one(const char *key, size_t key_len, const void *val, size_t val_len, void *arg)
{
    index_set(arg, key, key_len, val, val_len);
    return 0;
}

/* (Re)fills the index from a read snapshot. */
static void load(rbac_t *rb)
{
    smap_clear(rb->subj, blist_free);
    smap_clear(rb->binds, bind_free);
    smap_clear(rb->roles, role_free);
    store_rtxn_t *t;
    if (!rb->st || store_read_begin(rb->st, &t) < 0)
        return;
    static const struct kind *const ks[] = {&kind_clusterrole, &kind_role, &kind_clusterrolebinding,
                                            &kind_rolebinding};
    for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
        char *prefix = xconcat(ks[i]->resource, "/", NULL);
        store_scan(t, prefix, strlen(prefix), NULL, 0, load_one, rb);
        free(prefix);
    }
    store_read_end(t);
}

rbac_t *rbac_new(store_t *st)
{
    rbac_t *rb = xcalloc(1, sizeof(*rb));
    rb->st = st;
    rb->roles = smap_new();
    rb->binds = smap_new();
    rb->subj = smap_new();
    load(rb);
    return rb;
}

void rbac_free(rbac_t *rb)
{
    if (!rb)
        return;
    smap_free(rb->subj, blist_free);
    smap_free(rb->binds, bind_free);
    smap_free(rb->roles, role_free);
    free(rb);
}

void rbac_on_change(rbac_t *rb, const struct store_change *ch)
{
    if (ch->type == STORE_RESYNC) {
        load(rb);
        return;
    }
    index_set(rb, ch->key, ch->key_len, ch->type == STORE_DELETE ? NULL : ch->val, ch->val_len);
}

/* ---------------------------------------------------------------- decisions */

/* Whether a role bound under index key key allows a. */
static bool bound_allows(const rbac_t *rb, const char *key, const struct rbac_attrs *a)
{
    const struct blist *l = smap_get(rb->subj, key);
    for (size_t i = 0; l && i < l->n; i++) {
        const Coracle__V1__Role *r = smap_get(rb->roles, l->v[i]->role_key);
        for (size_t j = 0; r && j < r->n_rules; j++)
            if (rbac_rule_allows(r->rules[j], a))
                return true;
    }
    return false;
}

/* The subject kind+name looked up at the cluster scope and in a's namespace. */
static bool subject_allows(const rbac_t *rb, char kind, const char *name,
                           const struct rbac_attrs *a)
{
    char buf[512];
    const char *ns = a->path ? NULL : a->ns;
    size_t need = strlen(name) + (ns ? strlen(ns) : 0) + 4;
    char *key = need <= sizeof(buf) ? buf : xmalloc(need);
    snprintf(key, need, "%c:%s\n", kind, name);
    bool ok = bound_allows(rb, key, a);
    if (!ok && ns && *ns) {
        snprintf(key, need, "%c:%s\n%s", kind, name, ns);
        ok = bound_allows(rb, key, a);
    }
    if (key != buf)
        free(key);
    return ok;
}

bool rbac_allows(const rbac_t *rb, const char *user, const char *const *groups,
                 const struct rbac_attrs *a)
{
    if (!rb)
        return false;
    if (user && subject_allows(rb, 'U', user, a))
        return true;
    for (size_t i = 0; groups && groups[i]; i++)
        if (subject_allows(rb, 'G', groups[i], a))
            return true;
    return false;
}

/* The rules of the roles bound under index key key, to cb. */
static void bound_rules(const rbac_t *rb, const char *key, rbac_rule_cb cb, void *arg)
{
    const struct blist *l = smap_get(rb->subj, key);
    for (size_t i = 0; l && i < l->n; i++) {
        const Coracle__V1__Role *r = smap_get(rb->roles, l->v[i]->role_key);
        for (size_t j = 0; r && j < r->n_rules; j++)
            cb(r->rules[j], arg);
    }
}

/* A subject's rules at the cluster scope and, with ns, in ns. */
static void subject_rules(const rbac_t *rb, char kind, const char *name, const char *ns,
                          rbac_rule_cb cb, void *arg)
{
    char *key = xasprintf("%c:%s\n", kind, name);
    bound_rules(rb, key, cb, arg);
    free(key);
    if (ns && *ns) {
        key = xasprintf("%c:%s\n%s", kind, name, ns);
        bound_rules(rb, key, cb, arg);
        free(key);
    }
}

void rbac_rules_for(const rbac_t *rb, const char *user, const char *const *groups, const char *ns,
                    rbac_rule_cb cb, void *arg)
{
    if (!rb)
        return;
    if (user)
        subject_rules(rb, 'U', user, ns, cb, arg);
    for (size_t i = 0; groups && groups[i]; i++)
        subject_rules(rb, 'G', groups[i], ns, cb, arg);
}

const Coracle__V1__ClusterRole *rbac_cluster_role(const rbac_t *rb, const char *name)
{
    char *key = kind_key(&kind_clusterrole, NULL, name);
    const Coracle__V1__ClusterRole *r = smap_get(rb->roles, key);
    free(key);
    return r;
}

const Coracle__V1__Role *rbac_role(const rbac_t *rb, const char *ns, const char *name)
{
    char *key = kind_key(&kind_role, ns, name);
    const Coracle__V1__Role *r = smap_get(rb->roles, key);
    free(key);
    return r;
}

const Coracle__V1__ClusterRoleBinding *rbac_cluster_binding(const rbac_t *rb, const char *name)
{
    char *key = kind_key(&kind_clusterrolebinding, NULL, name);
    const struct bind *b = smap_get(rb->binds, key);
    free(key);
    return b ? (const Coracle__V1__ClusterRoleBinding *)b->obj : NULL;
}

/* ---------------------------------------------------------------- coverage */

/* Atoms not held, merged by everything but the verb (Kubernetes' CompactRules). */
struct missing {
    Coracle__V1__PolicyRule *v;
    size_t n;
};

static void strv_add(char ***v, size_t *n, const char *s)
{
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = xstrdup(s);
}

static bool same1(char *const *v, size_t n, const char *s)
{
    return s ? n == 1 && !strcmp(v[0], s) : n == 0;
}

static void missing_add(struct missing *m, const char *verb, const char *group, const char *res,
                        const char *name, const char *url)
{
    for (size_t i = 0; i < m->n; i++) {
        Coracle__V1__PolicyRule *r = &m->v[i];
        if (same1(r->apigroups, r->n_apigroups, group) &&
            same1(r->resources, r->n_resources, res) &&
            same1(r->resourcenames, r->n_resourcenames, name) &&
            same1(r->nonresourceurls, r->n_nonresourceurls, url)) {
            if (!has(r->verbs, r->n_verbs, verb))
                strv_add(&r->verbs, &r->n_verbs, verb);
            return;
        }
    }
    m->v = xrealloc(m->v, (m->n + 1) * sizeof(*m->v));
    Coracle__V1__PolicyRule *r = &m->v[m->n++];
    coracle__v1__policy_rule__init(r);
    strv_add(&r->verbs, &r->n_verbs, verb);
    if (group)
        strv_add(&r->apigroups, &r->n_apigroups, group);
    if (res)
        strv_add(&r->resources, &r->n_resources, res);
    if (name)
        strv_add(&r->resourcenames, &r->n_resourcenames, name);
    if (url)
        strv_add(&r->nonresourceurls, &r->n_nonresourceurls, url);
}

static void strv_free_n(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void missing_free(struct missing *m)
{
    for (size_t i = 0; i < m->n; i++) {
        Coracle__V1__PolicyRule *r = &m->v[i];
        strv_free_n(r->verbs, r->n_verbs);
        strv_free_n(r->apigroups, r->n_apigroups);
        strv_free_n(r->resources, r->n_resources);
        strv_free_n(r->resourcenames, r->n_resourcenames);
        strv_free_n(r->nonresourceurls, r->n_nonresourceurls);
    }
    free(m->v);
}

/* One resource atom: "pods/log" split into resource and subresource. */
static void atom_resource(struct missing *m, const char *verb, const char *group, const char *res,
                          const char *name, const char *ns,
                          bool (*held)(const struct rbac_attrs *a, void *arg), void *arg)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", res);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    struct rbac_attrs a = {verb, group, buf, slash ? slash + 1 : NULL, ns, name, NULL};
    if (!held(&a, arg))
        missing_add(m, verb, group, res, name, NULL);
}

/* Each atom of rule r (Kubernetes' BreakdownRule) not held goes to m. */
static void rule_missing(const Coracle__V1__PolicyRule *r, const char *ns,
                         bool (*held)(const struct rbac_attrs *a, void *arg), void *arg,
                         struct missing *m)
{
    for (size_t v = 0; v < r->n_verbs; v++) {
        const char *verb = r->verbs[v];
        for (size_t g = 0; g < r->n_apigroups; g++)
            for (size_t i = 0; i < r->n_resources; i++) {
                if (!r->n_resourcenames)
                    atom_resource(m, verb, r->apigroups[g], r->resources[i], NULL, ns, held, arg);
                for (size_t n = 0; n < r->n_resourcenames; n++)
                    atom_resource(m, verb, r->apigroups[g], r->resources[i], r->resourcenames[n],
                                  ns, held, arg);
            }
        for (size_t u = 0; u < r->n_nonresourceurls; u++) {
            struct rbac_attrs a = {.verb = verb, .path = r->nonresourceurls[u]};
            if (!held(&a, arg))
                missing_add(m, verb, NULL, NULL, NULL, r->nonresourceurls[u]);
        }
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *rbac_rules_missing(Coracle__V1__PolicyRule *const *rules, size_t n, const char *ns,
                         bool (*held)(const struct rbac_attrs *a, void *arg), void *arg)
{
    struct missing m = {0};
    for (size_t i = 0; i < n; i++)
        rule_missing(rules[i], ns, held, arg, &m);
    if (!m.n)
        return NULL;
    char **lines = xcalloc(m.n, sizeof(*lines));
    size_t len = 0;
    for (size_t i = 0; i < m.n; i++) {
        lines[i] = rbac_rule_string(&m.v[i]);
        len += strlen(lines[i]) + 1;
    }
    qsort(lines, m.n, sizeof(*lines), cmp_str);
    char *out = xmalloc(len);
    char *p = out;
    for (size_t i = 0; i < m.n; i++) {
        if (!i || strcmp(lines[i], lines[i - 1])) /* a sorted set, as Kubernetes' */
            p += sprintf(p, "%s%s", p > out ? "\n" : "", lines[i]);
    }
    for (size_t i = 0; i < m.n; i++)
        free(lines[i]);
    free(lines);
    missing_free(&m);
    return out;
}

/* held() for rbac_rules_cover: some rule of the owner's allows the atom. */
struct owner {
    Coracle__V1__PolicyRule *const *rules;
    size_t n;
};

static bool owner_holds(const struct rbac_attrs *a, void *arg)
{
    const struct owner *o = arg;
    for (size_t i = 0; i < o->n; i++)
        if (rbac_rule_allows(o->rules[i], a))
            return true;
    return false;
}

bool rbac_rules_cover(Coracle__V1__PolicyRule *const *owner, size_t n,
                      const Coracle__V1__PolicyRule *r)
{
    struct owner o = {owner, n};
    char *miss = rbac_rules_missing((Coracle__V1__PolicyRule *const *)&r, 1, NULL, owner_holds, &o);
    bool covered = !miss;
    free(miss);
    return covered;
}
