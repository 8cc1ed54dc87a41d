/*
 * auth: authentication (client certificates, static tokens), RBAC-like
 * authorization from a policy file, node restriction, the watch cap.
 * See auth.h; the policy format is described in conf/policy.
 */
#include "config.h"
#include "auth.h"
#include "grpc.h"
#include "obj.h"
#include "tls.h"
#include "pb.h"
#include "pki.h"
#include "podref.h"
#include "smap.h"
#include "util.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ID_MAX 100000 /* interned identities; beyond this new ones are refused */

struct ident {
    char *name;
    char *uid;
    char **groups; /* NULL-terminated */
};

struct token {
    char *token;
    struct ident *id;
};

struct rule {
    char **verbs;     /* NULL-terminated; "*" matches all */
    char **resources; /* "pods", "pods/status", "pods/" "*" (every subresource), "*" */
    char **nss;       /* namespaces, "*" */
};

struct role {
    char *name;
    struct rule *rules;
    size_t nrules;
};

struct binding {
    char *role;
    char **subjects; /* "user:NAME", "group:NAME" */
};

struct policy {
    struct role *roles;
    size_t nroles;
    struct binding *binds;
    size_t nbinds;
};

struct auth {
    int client_ca;
    char *token_file, *policy_file;
    unsigned max_watches;
    struct token *tokens;
    size_t ntokens;
    struct policy *pol;    /* NULL: no bootstrap policy */
    int rbac_on;           /* the stored RBAC objects decide too (with or without pol) */
    const rbac_t *rbac;    /* their index (api.c's), or NULL before it exists */
    smap_t *ids;           /* name "\n" uid "\n" group "\n" ... -> struct ident */
    store_t *st;           /* bootstrap tokens' Secrets (auth_set_store), or NULL */
    struct ident dev;      /* the development mode's anonymous master */
    auth_bearer_fn bearer; /* tokens the file does not know (service account JWTs) */
    void *bearer_arg;
};

/* ---------------------------------------------------------------- identities */

static void strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static void strv_push(char ***v, size_t *n, const char *s, size_t len)
{
    *v = xrealloc(*v, (*n + 2) * sizeof(**v));
    (*v)[(*n)++] = xstrndup(s, len);
    (*v)[*n] = NULL;
}

static int strv_has(char *const *v, const char *s)
{
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp(v[i], s) == 0)
            return 1;
    return 0;
}

static void ident_free(void *p)
{
    struct ident *id = p;
    free(id->name);
    free(id->uid);
    strv_free(id->groups);
    free(id);
}

/* The interned identity for name + uid + groups (+ system:authenticated); NULL when full. */
static struct ident *intern(auth_t *au, const char *name, const char *uid, char *const *groups,
                            int authenticated)
{
    size_t n = strlen(name) + strlen(uid) + 3;
    for (size_t i = 0; groups && groups[i]; i++)
        n += strlen(groups[i]) + 1;
    char *key = xmalloc(n + 32);
    char *p = key;
    p += sprintf(p, "%s\n%s\n", name, uid);
    for (size_t i = 0; groups && groups[i]; i++)
        p += sprintf(p, "%s\n", groups[i]);
    struct ident *id = smap_get(au->ids, key);
    if (id || smap_count(au->ids) >= ID_MAX) {
        free(key);
        return id;
    }
    id = xcalloc(1, sizeof(*id));
    id->name = xstrdup(name);
    id->uid = xstrdup(uid);
    size_t ng = 0;
    for (size_t i = 0; groups && groups[i]; i++)
        if (!strv_has(id->groups, groups[i]))
            strv_push(&id->groups, &ng, groups[i], strlen(groups[i]));
    const char *extra = authenticated ? "system:authenticated" : NULL;
    if (extra && !strv_has(id->groups, extra))
        strv_push(&id->groups, &ng, extra, strlen(extra));
    if (!id->groups)
        id->groups = xcalloc(1, sizeof(char *));
    smap_put(au->ids, key, id);
    free(key);
    return id;
}

static void user_set(struct auth_user *u, struct ident *id)
{
    u->name = id->name;
    u->groups = (const char *const *)id->groups;
    u->id = id;
    u->uid = id->uid;
}

/* ---------------------------------------------------------------- token file */

/* Splits one CSV line into fields (quotes as RFC 4180). Returns the count, -1 on bad quoting. */
static int csv_split(const char *line, char ***out)
{
    char **v = NULL;
    size_t n = 0;
    const char *p = line;
    char *buf = xmalloc(strlen(line) + 1);
    for (;;) {
        size_t bl = 0;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '"') {
            p++;
            for (;;) {
                if (!*p) {
                    free(buf);
                    strv_free(v);
                    return -1;
                }
                if (*p == '"') {
                    if (p[1] == '"') {
                        buf[bl++] = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                buf[bl++] = *p++;
            }
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p && *p != ',') {
                free(buf);
                strv_free(v);
                return -1;
            }
        } else {
            while (*p && *p != ',')
                buf[bl++] = *p++;
            while (bl && (buf[bl - 1] == ' ' || buf[bl - 1] == '\t'))
                bl--;
        }
        strv_push(&v, &n, buf, bl);
        if (*p != ',')
            break;
        p++;
    }
    free(buf);
    *out = v;
    return (int)n;
}

static void tokens_free(struct token *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(t[i].token);
    free(t);
}

static int tokens_load(auth_t *au, const char *path, struct token **out, size_t *nout, char **err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        *err = xasprintf("%s: %s", path, strerror(errno));
        return -1;
    }
    struct token *t = NULL;
    size_t n = 0, lineno = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        const char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            continue;
        char **fv = NULL;
        int nf = csv_split(s, &fv);
        if (nf < 3 || !*fv[0] || !*fv[1]) {
            *err = xasprintf("%s:%zu: expected token,user,uid[,\"group1,group2\"]%s", path, lineno,
                             nf < 0 ? " (unbalanced quotes)" : "");
            strv_free(fv);
            rc = -1;
            break;
        }
        char **groups = NULL;
        size_t ng = 0;
        for (int i = 3; i < nf; i++) {
            for (const char *g = fv[i]; *g;) {
                const char *e = strchr(g, ',');
                size_t gl = e ? (size_t)(e - g) : strlen(g);
                if (gl)
                    strv_push(&groups, &ng, g, gl);
                g += gl + (e ? 1 : 0);
            }
        }
        struct ident *id = intern(au, fv[1], fv[2], groups, 1);
        strv_free(groups);
        if (!id) {
            *err = xasprintf("%s:%zu: too many identities", path, lineno);
            strv_free(fv);
            rc = -1;
            break;
        }
        t = xrealloc(t, (n + 1) * sizeof(*t));
        t[n].token = xstrdup(fv[0]);
        t[n].id = id;
        n++;
        strv_free(fv);
    }
    free(line);
    fclose(f);
    if (rc < 0) {
        tokens_free(t, n);
        return -1;
    }
    *out = t;
    *nout = n;
    return 0;
}

/* ---------------------------------------------------------------- policy file */

static void policy_free(struct policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nroles; i++) {
        for (size_t j = 0; j < p->roles[i].nrules; j++) {
            strv_free(p->roles[i].rules[j].verbs);
            strv_free(p->roles[i].rules[j].resources);
            strv_free(p->roles[i].rules[j].nss);
        }
        free(p->roles[i].rules);
        free(p->roles[i].name);
    }
    free(p->roles);
    for (size_t i = 0; i < p->nbinds; i++) {
        free(p->binds[i].role);
        strv_free(p->binds[i].subjects);
    }
    free(p->binds);
    free(p);
}

static char **split_list(const char *s)
{
    char **v = NULL;
    size_t n = 0;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l)
            strv_push(&v, &n, s, l);
        s += l + (e ? 1 : 0);
    }
    if (!v)
        v = xcalloc(1, sizeof(char *));
    return v;
}

static const char *const known_verbs[] = {"get",    "list",     "watch",  "create",
                                          "update", "patch",    "delete", "deletecollection",
                                          "bind",   "escalate", "*",      NULL};
/* The pod's subresources beyond status (its verbs past API_UPDATE's). */
static const char *const pod_subs[] = {"binding", "log", "exec", NULL};

static int in_list(const char *const *l, const char *s);

/*
 * A resource a rule may name: "*", a kind's resource ("pods"), or one of
 * its subresources ("nodes/status", "pods/log") or all of them ("pods/" "*").
 */
static bool known_resource(const char *res)
{
    if (!strcmp(res, "*"))
        return true;
    size_t bl = strcspn(res, "/");
    const char *sub = res[bl] ? res + bl + 1 : NULL;
    for (size_t i = 0; kinds_all[i]; i++) {
        const struct kind *k = kinds_all[i];
        if (strlen(k->resource) != bl || strncmp(k->resource, res, bl))
            continue;
        return !sub || !strcmp(sub, "*") || !strcmp(sub, "status") ||
               (k == &kind_pod && in_list(pod_subs, sub)) ||
               (k == &kind_serviceaccount && !strcmp(sub, "token")) ||
               (!strcmp(sub, "scale") && kind_has_scale(k)) ||
               (!strcmp(sub, "approval") && k == &kind_csr);
    }
    return false;
}

/*
 * "deployments.apps" or "deployments.apps/scale" (a resource with its API
 * group, as RBAC names both) becomes "deployments" / "deployments/scale":
 * rules match on the resource, which names one kind. Left as it is when the
 * group is not the kind's, so the rule is refused as unknown.
 */
static void unqualify(char **res)
{
    size_t bl = strcspn(*res, "/");
    const char *dot = memchr(*res, '.', bl);
    if (!dot)
        return;
    for (size_t i = 0; kinds_all[i]; i++) {
        const struct kind *k = kinds_all[i];
        if (strlen(k->group_resource) == bl && !strncmp(k->group_resource, *res, bl)) {
            char *n = xconcat(k->resource, *res + bl, NULL);
            free(*res);
            *res = n;
            return;
        }
    }
}

static int in_list(const char *const *l, const char *s)
{
    for (; *l; l++)
        if (strcmp(*l, s) == 0)
            return 1;
    return 0;
}

static struct role *role_find(struct policy *p, const char *name)
{
    for (size_t i = 0; i < p->nroles; i++)
        if (strcmp(p->roles[i].name, name) == 0)
            return &p->roles[i];
    return NULL;
}

/*
 * Parses the policy text. Lines:
 *   role NAME VERBS RESOURCES [NAMESPACES]
 *   bind ROLE SUBJECT[,SUBJECT...]      (user:NAME or group:NAME)
 * Returns the policy, or NULL with *err naming the line.
 */
static struct policy *policy_parse(const char *path, FILE *f, char **err)
{
    struct policy *p = xcalloc(1, sizeof(*p));
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *w[8];
        int nw = 0;
        for (char *tok = strtok(line, " \t\r\n"); tok; tok = strtok(NULL, " \t\r\n")) {
            if (nw == 8) {
                nw = 9;
                break;
            }
            w[nw++] = tok;
        }
        if (nw == 0)
            continue;
        if (strcmp(w[0], "role") == 0) {
            if (nw < 4 || nw > 5) {
                *err = xasprintf("%s:%zu: expected: role NAME VERBS RESOURCES [NAMESPACES]", path,
                                 lineno);
                goto fail;
            }
            struct rule r = {split_list(w[2]), split_list(w[3]), split_list(nw == 5 ? w[4] : "*")};
            const char *bad = NULL, *what = NULL;
            for (char **v = r.verbs; *v && !bad; v++)
                if (!in_list(known_verbs, *v))
                    bad = *v, what = "verb";
            for (char **v = r.resources; *v && !bad; v++) {
                unqualify(v);
                if (!known_resource(*v))
                    bad = *v, what = "resource";
            }
            if (bad || !r.verbs[0] || !r.resources[0] || !r.nss[0]) {
                *err = bad ? xasprintf("%s:%zu: unknown %s \"%s\"", path, lineno, what, bad)
                           : xasprintf("%s:%zu: empty list", path, lineno);
                strv_free(r.verbs), strv_free(r.resources), strv_free(r.nss);
                goto fail;
            }
            struct role *ro = role_find(p, w[1]);
            if (!ro) {
                p->roles = xrealloc(p->roles, (p->nroles + 1) * sizeof(*p->roles));
                ro = &p->roles[p->nroles++];
                memset(ro, 0, sizeof(*ro));
                ro->name = xstrdup(w[1]);
            }
            ro->rules = xrealloc(ro->rules, (ro->nrules + 1) * sizeof(*ro->rules));
            ro->rules[ro->nrules++] = r;
        } else if (strcmp(w[0], "bind") == 0) {
            if (nw != 3) {
                *err = xasprintf("%s:%zu: expected: bind ROLE user:NAME|group:NAME[,...]", path,
                                 lineno);
                goto fail;
            }
            char **subj = split_list(w[2]);
            for (char **s = subj; *s; s++) {
                if ((strncmp(*s, "user:", 5) != 0 || !(*s)[5]) &&
                    (strncmp(*s, "group:", 6) != 0 || !(*s)[6])) {
                    *err = xasprintf("%s:%zu: subject \"%s\": expected user:NAME or group:NAME",
                                     path, lineno, *s);
                    strv_free(subj);
                    goto fail;
                }
            }
            p->binds = xrealloc(p->binds, (p->nbinds + 1) * sizeof(*p->binds));
            p->binds[p->nbinds].role = xstrdup(w[1]);
            p->binds[p->nbinds].subjects = subj;
            p->nbinds++;
        } else {
            *err = xasprintf("%s:%zu: unknown directive \"%s\" (expected role or bind)", path,
                             lineno, w[0]);
            goto fail;
        }
    }
    for (size_t i = 0; i < p->nbinds; i++) {
        if (!role_find(p, p->binds[i].role)) {
            *err = xasprintf("%s: bind names role \"%s\", which is not defined", path,
                             p->binds[i].role);
            goto fail;
        }
    }
    free(line);
    return p;
fail:
    free(line);
    policy_free(p);
    return NULL;
}

static struct policy *policy_load(const char *path, char **err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        *err = xasprintf("%s: %s", path, strerror(errno));
        return NULL;
    }
    struct policy *p = policy_parse(path, f, err);
    fclose(f);
    return p;
}

/* ---------------------------------------------------------------- setup */

static const char *const dev_groups[] = {"system:masters", "system:authenticated", NULL};

static int load_files(auth_t *au, char **err)
{
    struct token *t = NULL;
    size_t nt = 0;
    struct policy *p = NULL;
    if (au->token_file && tokens_load(au, au->token_file, &t, &nt, err) < 0)
        return -1;
    if (au->policy_file && !(p = policy_load(au->policy_file, err))) {
        tokens_free(t, nt);
        return -1;
    }
    tokens_free(au->tokens, au->ntokens);
    au->tokens = t;
    au->ntokens = nt;
    policy_free(au->pol);
    au->pol = p;
    return 0;
}

int auth_new(const struct auth_config *cfg, auth_t **out, char **err)
{
    *err = NULL;
    *out = NULL;
    auth_t *au = xcalloc(1, sizeof(*au));
    au->client_ca = cfg->client_ca;
    au->token_file = cfg->token_file && *cfg->token_file ? xstrdup(cfg->token_file) : NULL;
    au->policy_file = cfg->policy_file && *cfg->policy_file ? xstrdup(cfg->policy_file) : NULL;
    au->max_watches = cfg->max_watches ? cfg->max_watches : 1000;
    au->rbac_on = cfg->rbac || au->policy_file;
    au->ids = smap_new();
    au->dev.name = "system:anonymous";
    au->dev.uid = "";
    au->dev.groups = (char **)dev_groups;
    if (load_files(au, err) < 0) {
        auth_free(au);
        return -1;
    }
    if (au->token_file)
        log_info("auth: %zu tokens from %s", au->ntokens, au->token_file);
    if (au->policy_file)
        log_info("auth: policy %s: %zu roles, %zu bindings", au->policy_file, au->pol->nroles,
                 au->pol->nbinds);
    else if (auth_required(au) && !au->rbac_on)
        log_warn("auth: no --authorization-policy-file and no RBAC: every authenticated user "
                 "may do everything");
    *out = au;
    return 0;
}

int auth_reload(auth_t *au, char **err)
{
    *err = NULL;
    if (load_files(au, err) < 0) {
        log_err("auth: reload failed, keeping the old token file and policy: %s", *err);
        return -1;
    }
    log_info("auth: reloaded (%zu tokens%s)", au->ntokens, au->pol ? ", policy" : "");
    return 0;
}

void auth_free(auth_t *au)
{
    if (!au)
        return;
    tokens_free(au->tokens, au->ntokens);
    policy_free(au->pol);
    free(au->token_file);
    free(au->policy_file);
    smap_free(au->ids, ident_free);
    free(au);
}

int auth_required(const auth_t *au)
{
    return au->client_ca || au->token_file;
}

int auth_listen(const auth_t *au, h2s_t *srv, const char *addr, SSL_CTX *tls, int insecure_loopback,
                char **err)
{
    *err = NULL;
    int local = h2s_addr_is_local(addr);
    int is_unix = strncmp(addr, "unix:", 5) == 0;
    if (!tls && !local) {
        *err = xasprintf("refusing to serve cleartext on %s, which is not a loopback address: "
                         "give --tls-cert-file and --tls-private-key-file (see contrib/certs)",
                         addr);
        return -1;
    }
    if (!local && !auth_required(au)) {
        *err = xasprintf("refusing to serve %s without authentication: give --client-ca-file "
                         "and/or --token-auth-file",
                         addr);
        return -1;
    }
    SSL_CTX *use = is_unix || (local && insecure_loopback) ? NULL : tls;
    if (h2s_listen_tls(srv, addr, use) < 0) {
        *err = xasprintf("cannot listen on %s", addr);
        return -1;
    }
    if (!use && !is_unix && tls)
        log_warn("serving cleartext on loopback %s (--insecure-loopback)", addr);
    return 0;
}

/* ---------------------------------------------------------------- authenticate */

void auth_set_bearer(auth_t *au, auth_bearer_fn fn, void *arg)
{
    au->bearer = fn;
    au->bearer_arg = arg;
}

/* The identity the bearer hook gives tok, or NULL (the hook's reason logged). */
static struct ident *bearer_ident(const auth_t *au, const char *tok)
{
    char *name = NULL, **groups = NULL, *why = NULL;
    int r = au->bearer(au->bearer_arg, tok, &name, &groups, &why);
    struct ident *id = r == 0 ? intern((auth_t *)au, name, "", groups, 1) : NULL;
    if (r < 0)
        log_info("auth: bearer token refused: %s", why ? why : "invalid");
    free(why);
    free(name);
    strv_free(groups);
    return id;
}

int auth_authenticate_token(const auth_t *au, const char *header, struct auth_user *u, char **err)
{
    *err = NULL;
    if (!header || strncasecmp(header, "Bearer ", 7) != 0) {
        *err = xstrdup("Unauthorized");
        return -1;
    }
    const char *tok = header + 7;
    while (*tok == ' ')
        tok++;
    size_t tl = strlen(tok);
    struct ident *found = NULL;
    for (size_t i = 0; i < au->ntokens; i++) {
        /* constant time in the token's bytes */
        if (strlen(au->tokens[i].token) == tl && CRYPTO_memcmp(au->tokens[i].token, tok, tl) == 0)
            found = au->tokens[i].id;
    }
    char id[7], secret[17];
    if (!found && tl && au->bearer &&
        pki_token_split(tok, id, secret) < 0) /* not a bootstrap one */
        found = bearer_ident(au, tok);
    if (!found || !tl) {
        *err = xstrdup("Unauthorized");
        return -1;
    }
    user_set(u, found);
    return 0;
}

/* ---------------------------------------------------------------- bootstrap tokens */

#define BOOTSTRAP_NS "kube-system"
#define BOOTSTRAP_TYPE "bootstrap.kubernetes.io/token"

void auth_set_store(auth_t *au, store_t *st)
{
    au->st = st;
}

static const ProtobufCBinaryData *secret_data(const Coracle__V1__Secret *sc, const char *key)
{
    for (size_t i = 0; i < sc->n_data; i++)
        if (sc->data[i]->key && !strcmp(sc->data[i]->key, key))
            return &sc->data[i]->value;
    return NULL;
}

static int data_is(const Coracle__V1__Secret *sc, const char *key, const char *want)
{
    const ProtobufCBinaryData *v = secret_data(sc, key);
    return v && v->len == strlen(want) && !memcmp(v->data, want, v->len);
}

/* The token's Secret, decoded (obj_free), or NULL. */
static Coracle__V1__Secret *bootstrap_secret(store_t *st, const char *id)
{
    store_rtxn_t *t;
    if (!st || store_read_begin(st, &t) < 0)
        return NULL;
    char name[64];
    snprintf(name, sizeof(name), "bootstrap-token-%s", id);
    char *key = kind_key(&kind_secret, BOOTSTRAP_NS, name);
    const void *v;
    size_t vl;
    Coracle__V1__Secret *sc = NULL;
    if (store_get(t, key, strlen(key), &v, &vl) == 0)
        sc = (Coracle__V1__Secret *)pb_decode(kind_secret.desc, v, vl);
    free(key);
    store_read_end(t);
    return sc;
}

/* Why the Secret does not admit the token now (static text), or NULL. */
static const char *bootstrap_refusal(const Coracle__V1__Secret *sc, const char *secret)
{
    const ProtobufCBinaryData *s = secret_data(sc, "token-secret");
    if (!sc->type || strcmp(sc->type, BOOTSTRAP_TYPE))
        return "is not of type " BOOTSTRAP_TYPE;
    if (!s || s->len != 16 || CRYPTO_memcmp(s->data, secret, 16) != 0)
        return "has another secret";
    if (sc->metadata && sc->metadata->deletiontimestamp)
        return "is being deleted";
    int64_t at;
    int has = pki_token_expiration(sc, &at);
    if (has < 0)
        return "has an expiration that is not RFC 3339";
    if (has > 0 && (int64_t)time(NULL) >= at)
        return "has expired";
    if (!data_is(sc, "usage-bootstrap-authentication", "true"))
        return "is not marked usage-bootstrap-authentication=true";
    return NULL;
}

/* auth-extra-groups: a comma list, each system:bootstrappers:...; appended to *g. */
static const char *bootstrap_groups(const Coracle__V1__Secret *sc, char ***g, size_t *n)
{
    strv_push(g, n, "system:bootstrappers", 20);
    const ProtobufCBinaryData *v = secret_data(sc, "auth-extra-groups");
    const char *p = v ? (const char *)v->data : NULL, *end = p ? p + v->len : NULL;
    while (p && p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        size_t l = (size_t)((c ? c : end) - p);
        if (l < 22 || memcmp(p, "system:bootstrappers:", 21))
            return "has an auth-extra-groups entry outside system:bootstrappers:";
        strv_push(g, n, p, l);
        p = c ? c + 1 : end;
    }
    return NULL;
}

/*
 * Kubernetes' bootstrap token authenticator: "<id>.<secret>" against the
 * Secret bootstrap-token-<id> in kube-system. 1 and *u (system:bootstrap:<id>
 * in system:bootstrappers and its extra groups), 0 if tok is no bootstrap
 * token, -1 with *err saying why it is refused (the id is not secret; the
 * reason tells a joining node what to fix).
 */
static int bootstrap_authenticate(auth_t *au, const char *tok, struct auth_user *u, char **err)
{
    char id[7], secret[17];
    if (!au->st || pki_token_split(tok, id, secret) < 0)
        return 0;
    Coracle__V1__Secret *sc = bootstrap_secret(au->st, id);
    const char *why = !sc ? "was not found (never created, deleted or cleaned up after expiring)"
                          : bootstrap_refusal(sc, secret);
    char **groups = NULL;
    size_t ng = 0;
    if (!why)
        why = bootstrap_groups(sc, &groups, &ng);
    struct ident *id_ = NULL;
    if (!why) {
        char name[64];
        snprintf(name, sizeof(name), "system:bootstrap:%s", id);
        if (!(id_ = intern(au, name, "", groups, 1)))
            why = "cannot be interned (too many identities)";
    }
    strv_free(groups);
    if (sc)
        protobuf_c_message_free_unpacked(&sc->base, NULL);
    if (why) {
        *err = xasprintf("Unauthorized: bootstrap token \"%s\" %s", id, why);
        log_info("auth: %s", *err);
        return -1;
    }
    user_set(u, id_);
    return 1;
}

/* Either API's request: its TLS session (or NULL), Authorization header (or NULL), peer. */
static int authenticate(auth_t *au, SSL *ssl, const char *authz, const char *peer,
                        struct auth_user *u, char **err)
{
    *err = NULL;
    if (!auth_required(au) && !(authz && au->bearer)) {
        user_set(u, &au->dev);
        return 0;
    }
    char *cn = NULL, **og = NULL;
    if (ssl && tls_peer_identity(ssl, &cn, &og) == 0) {
        struct ident *id = intern(au, cn, "", og, 1);
        tls_identity_free(cn, og);
        if (id) {
            user_set(u, id);
            return 0;
        }
    }
    if (authz && auth_authenticate_token(au, authz, u, err) == 0)
        return 0;
    if (authz && !strncasecmp(authz, "Bearer ", 7)) {
        const char *tok = authz + 7;
        while (*tok == ' ')
            tok++;
        char *why = NULL;
        int r = bootstrap_authenticate(au, tok, u, &why);
        if (r > 0) {
            free(*err);
            *err = NULL;
            return 0;
        }
        if (r < 0) {
            free(*err);
            *err = why;
        }
    }
    if (authz)
        return -1;
    *err = xstrdup("Unauthorized");
    log_info("auth: %s: no client certificate and no bearer token: Unauthorized", peer);
    return -1;
}

int auth_authenticate(auth_t *au, h2s_call_t *c, struct auth_user *u, char **err)
{
    return authenticate(au, h2s_call_ssl(c), h2s_call_header(c, "authorization"), h2s_call_peer(c),
                        u, err);
}

int auth_authenticate_req(auth_t *au, h2s_req_t *r, struct auth_user *u, char **err)
{
    return authenticate(au, h2s_req_ssl(r), h2s_req_header(r, "authorization"), h2s_req_peer(r), u,
                        err);
}

/* ---------------------------------------------------------------- authorize */

static int is_master(const struct auth_user *u)
{
    for (size_t i = 0; u->groups && u->groups[i]; i++)
        if (strcmp(u->groups[i], "system:masters") == 0)
            return 1;
    return 0;
}

static int match_verb(char *const *verbs, const char *verb)
{
    return strv_has(verbs, "*") || strv_has(verbs, verb);
}

static int match_res(char *const *res, const char *resource, const char *sub)
{
    char full[64];
    if (strv_has(res, "*"))
        return 1;
    if (!sub)
        return strv_has(res, resource);
    snprintf(full, sizeof(full), "%s/%s", resource, sub);
    if (strv_has(res, full))
        return 1;
    snprintf(full, sizeof(full), "%s/*", resource);
    return strv_has(res, full);
}

/* ns NULL: the coarse check (any namespace) or a cluster-scoped / all-namespace request. */
static int match_ns(char *const *nss, bool namespaced, const char *ns, int coarse)
{
    if (!namespaced || coarse || strv_has(nss, "*"))
        return 1;
    return ns && strv_has(nss, ns);
}

static int subject_match(char *const *subjects, const struct auth_user *u)
{
    for (size_t i = 0; subjects[i]; i++) {
        const char *s = subjects[i];
        if (strncmp(s, "user:", 5) == 0 && strcmp(s + 5, u->name) == 0)
            return 1;
        if (strncmp(s, "group:", 6) == 0)
            for (size_t j = 0; u->groups && u->groups[j]; j++)
                if (strcmp(s + 6, u->groups[j]) == 0)
                    return 1;
    }
    return 0;
}

/*
 * What Kubernetes' system:basic-user role grants every authenticated user:
 * asking what they themselves may do (SelfSubjectAccessReview,
 * SelfSubjectRulesReview) and who they are (SelfSubjectReview).
 */
static int basic_user(const char *verb, const struct kind *k, const char *sub)
{
    return !sub && !strcmp(verb, "create") &&
           (k == &kind_selfsubjectaccessreview || k == &kind_selfsubjectrulesreview ||
            k == &kind_selfsubjectreview);
}

/* The policy file's decision on a kind of the table (k). */
static int policy_allows(const struct policy *pol, const struct auth_user *u, const char *verb,
                         const struct kind *k, const char *sub, const char *ns, int coarse)
{
    for (size_t i = 0; pol && i < pol->nbinds; i++) {
        const struct binding *b = &pol->binds[i];
        if (!subject_match(b->subjects, u))
            continue;
        const struct role *r = role_find((struct policy *)pol, b->role);
        for (size_t j = 0; r && j < r->nrules; j++) {
            const struct rule *ru = &r->rules[j];
            if (match_verb(ru->verbs, verb) && match_res(ru->resources, k->resource, sub) &&
                match_ns(ru->nss, k->namespaced, ns, coarse))
                return 1;
        }
    }
    return 0;
}

/* The API group of k ("" for the core group), into buf. */
static const char *kind_group(const struct kind *k, char *buf, size_t n)
{
    const char *slash = strchr(k->api_version, '/');
    snprintf(buf, n, "%.*s", slash ? (int)(slash - k->api_version) : 0, k->api_version);
    return buf;
}

/* The kind of the table serving group/resource, or NULL. */
static const struct kind *kind_of(const char *group, const char *resource)
{
    char g[64];
    for (size_t i = 0; resource && kinds_all[i]; i++)
        if (!strcmp(kinds_all[i]->resource, resource) &&
            !strcmp(kind_group(kinds_all[i], g, sizeof(g)), group ? group : ""))
            return kinds_all[i];
    return NULL;
}

static int always_allow(const auth_t *au)
{
    return !au->pol && !au->rbac_on;
}

bool auth_allows(const auth_t *au, const struct auth_user *u, const struct rbac_attrs *a)
{
    if (is_master(u) || always_allow(au))
        return true;
    if (!a->path) {
        const struct kind *k = kind_of(a->group, a->resource);
        if (k && policy_allows(au->pol, u, a->verb, k, a->sub, a->ns, 0))
            return true;
    }
    return au->rbac_on && rbac_allows(au->rbac, u->name, u->groups, a);
}

/* The RBAC attributes of a request on kind k (group into gbuf). */
static struct rbac_attrs kind_attrs(const struct kind *k, const char *verb, const char *sub,
                                    const char *ns, const char *name, char *gbuf, size_t gn)
{
    return (struct rbac_attrs){
        verb, kind_group(k, gbuf, gn), k->resource, sub, k->namespaced ? ns : NULL, name, NULL};
}

static int rbac_allows_kind(const auth_t *au, const struct auth_user *u, const char *verb,
                            const struct kind *k, const char *sub, const char *ns, const char *name,
                            int coarse)
{
    if (is_master(u) || always_allow(au) || basic_user(verb, k, sub))
        return 1;
    if (policy_allows(au->pol, u, verb, k, sub, ns, coarse))
        return 1;
    char g[64];
    struct rbac_attrs a = kind_attrs(k, verb, sub, ns, name, g, sizeof(g));
    return au->rbac_on && rbac_allows(au->rbac, u->name, u->groups, &a);
}

/* Kubernetes' denial text for verb on group/resource[/sub] (name, ns: may be NULL). */
static char *forbidden_res(const struct auth_user *u, const char *verb, const char *group,
                           const char *resource, const char *sub, const char *ns, const char *name,
                           const char *why)
{
    char *scope =
        ns && *ns ? xasprintf("in the namespace \"%s\"", ns) : xstrdup("at the cluster scope");
    char *gr = group && *group ? xasprintf("%s.%s", resource, group) : xstrdup(resource);
    char *obj = name && *name ? xasprintf("%s \"%s\"", gr, name) : xstrdup(gr);
    char *m = xasprintf("%s is forbidden: User \"%s\" cannot %s resource \"%s%s%s\" in API "
                        "group \"%s\" %s%s%s",
                        obj, u->name, verb, resource, sub ? "/" : "", sub ? sub : "",
                        group ? group : "", scope, why ? ": " : "", why ? why : "");
    free(obj);
    free(gr);
    free(scope);
    log_info("auth: denied: %s", m);
    return m;
}

static char *forbidden(const struct auth_user *u, const char *verb, const struct kind *k,
                       const char *sub, const char *ns, const char *name, const char *why)
{
    char g[64];
    return forbidden_res(u, verb, kind_group(k, g, sizeof(g)), k->resource, sub,
                         k->namespaced ? ns : NULL, name, why);
}

int auth_authorize_rbac(const auth_t *au, const struct auth_user *u, const struct rbac_attrs *a,
                        char **err)
{
    *err = NULL;
    if (!auth_required(au) || auth_allows(au, u, a))
        return 0;
    if (!a->path) {
        *err = forbidden_res(u, a->verb, a->group, a->resource, a->sub, a->ns, a->name, NULL);
        return -1;
    }
    *err = xasprintf("forbidden: User \"%s\" cannot %s path \"%s\"", u->name, a->verb, a->path);
    log_info("auth: denied: %s", *err);
    return -1;
}

int auth_authorize_path(const auth_t *au, const struct auth_user *u, const char *verb,
                        const char *path, char **err)
{
    struct rbac_attrs a = {.verb = verb, .path = path};
    return auth_authorize_rbac(au, u, &a, err);
}

void auth_set_rbac(auth_t *au, const rbac_t *rb)
{
    au->rbac = rb;
}

int auth_rbac_on(const auth_t *au)
{
    return au->rbac_on;
}

int auth_authorize(const auth_t *au, const struct auth_user *u, const char *verb,
                   const struct kind *k, const char *subresource, char **err)
{
    *err = NULL;
    if (rbac_allows_kind(au, u, verb, k, subresource, NULL, NULL, 1))
        return 0;
    *err = forbidden(u, verb, k, subresource, NULL, NULL, NULL);
    return -1;
}

/* "system:node:<name>" in group system:nodes: its node name, else NULL. */
static const char *node_of(const struct auth_user *u)
{
    if (strncmp(u->name, "system:node:", 12) != 0 || !u->name[12])
        return NULL;
    for (size_t i = 0; u->groups && u->groups[i]; i++)
        if (strcmp(u->groups[i], "system:nodes") == 0)
            return u->name + 12;
    return NULL;
}

/* The value of the field selector's term key=VALUE (or ==): a pointer into sel and its length
 * in *vl, or NULL without such a term. */
static const char *sel_term(const char *sel, const char *key, size_t *vl)
{
    size_t kl = strlen(key);
    for (const char *p = sel; p && *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        while (l && *p == ' ')
            p++, l--;
        while (l && p[l - 1] == ' ')
            l--;
        if (l > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            const char *v = p + kl + 1 + (l > kl + 1 && p[kl + 1] == '=');
            *vl = (size_t)(p + l - v);
            return v;
        }
        p = e ? e + 1 : NULL;
    }
    return NULL;
}

/* 1 if the field selector has the term spec.nodeName=<node> (or ==). */
static int selects_node(const char *sel, const char *node)
{
    size_t vl;
    const char *v = sel_term(sel, "spec.nodeName", &vl);
    return v && vl == strlen(node) && strncmp(v, node, vl) == 0;
}

static int is_write(const char *verb)
{
    return strcmp(verb, "create") == 0 || strcmp(verb, "update") == 0 ||
           strcmp(verb, "delete") == 0 || strcmp(verb, "patch") == 0;
}

/*
 * Node restriction of ConfigMaps and Secrets, as Kubernetes' node
 * authorizer: a node reads only those the pods bound to it refer to (get
 * by name; list and watch of one object through the field selector
 * metadata.name=NAME, which is how the kubelet watches them), and writes
 * none.
 */
static const char *node_restrict_config(const char *node, const struct auth_attrs *a, int node_uses,
                                        char *buf, size_t bl)
{
    const char *v = a->verb;
    if (strcmp(v, "get") != 0 && strcmp(v, "list") != 0 && strcmp(v, "watch") != 0) {
        snprintf(buf, bl, "node \"%s\" can only read the %s its pods use", node, a->k->resource);
        return buf;
    }
    if (strcmp(v, "get") != 0 && node_uses < 0) {
        snprintf(buf, bl,
                 "node \"%s\" can only %s %s in a namespace with fieldSelector "
                 "metadata.name=NAME",
                 node, v, a->k->resource);
        return buf;
    }
    if (node_uses > 0)
        return NULL;
    snprintf(buf, bl, "no relationship found between node '%s' and this object", node);
    return buf;
}

/* Node restriction: NULL when allowed, else why not (static text or into buf). node_uses: see
 * config_node_uses. */
static const char *node_restrict(const char *node, const struct auth_attrs *a, int node_uses,
                                 char *buf, size_t bl)
{
    const char *v = a->verb;
    const char *name = a->name ? a->name : "";
    if (a->k == &kind_node || a->k == &kind_lease) {
        if (!is_write(v))
            return NULL;
        if (strcmp(name, node) == 0)
            return NULL;
        snprintf(buf, bl, "node \"%s\" can only modify its own %s", node,
                 a->k == &kind_node ? "Node" : "Lease");
        return buf;
    }
    if (a->k == &kind_configmap || a->k == &kind_secret)
        return node_restrict_config(node, a, node_uses, buf, bl);
    if (a->k != &kind_pod)
        return NULL; /* events: as the policy says */
    if (strcmp(v, "list") == 0 || strcmp(v, "watch") == 0) {
        if (selects_node(a->field_selector, node))
            return NULL;
        snprintf(buf, bl, "node \"%s\" can only %s pods with fieldSelector spec.nodeName=%s", node,
                 v, node);
        return buf;
    }
    if (strcmp(v, "create") == 0 ||
        ((strcmp(v, "update") == 0 || strcmp(v, "patch") == 0) && !a->subresource)) {
        snprintf(buf, bl, "node \"%s\" can only update the status of its pods", node);
        return buf;
    }
    if (a->subresource && strcmp(a->subresource, "status") != 0) {
        snprintf(buf, bl, "node \"%s\" cannot %s pods/%s", node, v, a->subresource);
        return buf;
    }
    /* get, update status, delete: only pods bound to this node */
    if (a->pod_node && strcmp(a->pod_node, node) == 0)
        return NULL;
    snprintf(buf, bl, "node \"%s\" can only access pods bound to it", node);
    return buf;
}

/* auth_authorize_attrs, with what config_node_uses found (-1: not looked up). */
static int authorize_attrs(const auth_t *au, const struct auth_user *u, const struct auth_attrs *a,
                           int node_uses, char **err)
{
    *err = NULL;
    const char *node = node_of(u);
    if (!rbac_allows_kind(au, u, a->verb, a->k, a->subresource, a->ns, a->name, 0)) {
        *err = forbidden(u, a->verb, a->k, a->subresource, a->ns, a->name, NULL);
        return -1;
    }
    char buf[256];
    const char *why =
        node && !is_master(u) ? node_restrict(node, a, node_uses, buf, sizeof(buf)) : NULL;
    if (why) {
        *err = forbidden(u, a->verb, a->k, a->subresource, a->ns, a->name, why);
        return -1;
    }
    return 0;
}

int auth_authorize_attrs(const auth_t *au, const struct auth_user *u, const struct auth_attrs *a,
                         char **err)
{
    return authorize_attrs(au, u, a, -1, err);
}

/* spec.nodeName of the stored pod ns/name (malloc'd, "" if unbound), or NULL if there is none. */
static char *stored_pod_node(store_t *st, const char *ns, const char *name)
{
    store_rtxn_t *t;
    if (!st || store_read_begin(st, &t) < 0)
        return NULL;
    char *key = kind_key(&kind_pod, ns ? ns : "default", name);
    const void *v;
    size_t vl;
    char *out = NULL;
    if (store_get(t, key, strlen(key), &v, &vl) == 0) {
        ProtobufCMessage *m = pb_decode(kind_pod.desc, v, vl);
        if (m) {
            const char *n = obj_pod_node(m);
            out = xstrdup(n ? n : "");
            protobuf_c_message_free_unpacked(m, NULL);
        }
    }
    free(key);
    store_read_end(t);
    return out;
}

struct node_uses {
    const char *node, *name;
    enum podref_kind kind;
    int found;
};

static int pod_uses_obj(const char *key, size_t key_len, const void *val, size_t val_len, void *arg)
{
    struct node_uses *nu = arg;
    Coracle__V1__Pod *pod = (Coracle__V1__Pod *)pb_decode(kind_pod.desc, val, val_len);
    if (!pod)
        return 0;
    const char *n = obj_pod_node(&pod->base);
    nu->found = n && !strcmp(n, nu->node) && podref_uses(pod->spec, nu->kind, nu->name);
    protobuf_c_message_free_unpacked(&pod->base, NULL);
    return nu->found;
}

/*
 * 1 if a pod in ns bound to node refers to the ConfigMap (k) or Secret
 * name, else 0: the pods of the namespace are read from the store (the
 * kubelet asks once per object it starts watching).
 */
static int stored_node_uses(store_t *st, const char *node, const struct kind *k, const char *ns,
                            const char *name)
{
    store_rtxn_t *t;
    if (!st || !ns || !name || store_read_begin(st, &t) < 0)
        return 0;
    struct node_uses nu = {node, name, k == &kind_secret ? PODREF_SECRET : PODREF_CONFIGMAP, 0};
    char *prefix = kind_key(&kind_pod, ns, "");
    store_scan(t, prefix, strlen(prefix), NULL, 0, pod_uses_obj, &nu);
    free(prefix);
    store_read_end(t);
    return nu.found;
}

/*
 * Whether a node's get, list or watch of ConfigMaps or Secrets is about an
 * object its pods use: 1 if a pod bound to it refers to the object (named
 * by name, or for list/watch by the field selector metadata.name=NAME), 0
 * if none does or the get names none, -1 for a list/watch of no one object.
 */
static int config_node_uses(store_t *st, const char *node, const char *verb, const struct kind *k,
                            const char *ns, const char *name, const char *field_selector)
{
    if (strcmp(verb, "get") != 0 && strcmp(verb, "list") != 0 && strcmp(verb, "watch") != 0)
        return 0;
    if (strcmp(verb, "get") == 0)
        return name && *name ? stored_node_uses(st, node, k, ns, name) : 0;
    size_t vl;
    const char *v = sel_term(field_selector, "metadata.name", &vl);
    if (!v || !vl || !ns || !*ns)
        return -1;
    char *sel = xstrndup(v, vl);
    int r = stored_node_uses(st, node, k, ns, sel);
    free(sel);
    return r;
}

int auth_check(const auth_t *au, const struct auth_user *u, store_t *st, const char *verb,
               const struct kind *k, const char *subresource, const char *ns, const char *name,
               const char *field_selector, char **err)
{
    *err = NULL;
    if (!auth_required(au) || is_master(u))
        return 0;
    struct auth_attrs a = {verb, k, subresource, ns, name, field_selector, NULL};
    char *pn = NULL;
    int uses = -1;
    if ((k == &kind_configmap || k == &kind_secret) && node_of(u))
        uses = config_node_uses(st, node_of(u), verb, k, ns, name, field_selector);
    if (k == &kind_pod && name && *name && node_of(u) &&
        (strcmp(verb, "get") == 0 || strcmp(verb, "update") == 0 || strcmp(verb, "patch") == 0 ||
         strcmp(verb, "delete") == 0))
        a.pod_node = pn = stored_pod_node(st, ns, name);
    int r = authorize_attrs(au, u, &a, uses, err);
    free(pn);
    return r;
}

int auth_call(auth_t *au, h2s_call_t *c, store_t *st, const char *verb, const struct kind *k,
              const char *subresource, const char *ns, const char *name, struct auth_user *u)
{
    struct auth_user tmp;
    char *err = NULL;
    if (!u)
        u = &tmp;
    if (auth_authenticate(au, c, u, &err) < 0) {
        h2s_call_finish(c, GRPC_UNAUTHENTICATED, err ? err : "Unauthorized");
        free(err);
        return -1;
    }
    if (auth_check(au, u, st, verb, k, subresource, ns, name, NULL, &err) < 0) {
        h2s_call_finish(c, GRPC_PERMISSION_DENIED, err ? err : "forbidden");
        free(err);
        return -1;
    }
    return 0;
}

int auth_node_tunnel(const auth_t *au, const struct auth_user *u, const char *node, char **err)
{
    *err = NULL;
    if (!auth_required(au) || is_master(u))
        return 0;
    const char *me = node_of(u);
    if (me && node && strcmp(me, node) == 0)
        return 0;
    *err = forbidden(u, "create", &kind_node, "proxy", NULL, node,
                     me ? "a node can only serve its own tunnel" : NULL);
    return -1;
}

/* ---------------------------------------------------------------- rules of a user */

/* The API group of k's api_version ("" for core) into buf. */
static const char *group_of(const char *api_version, char *buf, size_t n)
{
    const char *slash = strchr(api_version, '/');
    snprintf(buf, n, "%.*s", slash ? (int)(slash - api_version) : 0, api_version);
    return buf;
}

/* One policy-file rule, one resource at a time (they may be of several groups). */
static void policy_rule_emit(const struct rule *ru, const char *ns, auth_rule_cb cb, void *arg)
{
    static const char *const none[] = {NULL};
    char g[64];
    for (char **res = ru->resources; *res; res++) {
        const char *groups[2] = {"*", NULL}, *resources[2] = {*res, NULL};
        bool any_ns = strv_has(ru->nss, "*") || (ns && *ns && strv_has(ru->nss, ns));
        if (strcmp(*res, "*")) {
            size_t bl = strcspn(*res, "/");
            const struct kind *k = NULL;
            for (size_t i = 0; kinds_all[i] && !k; i++)
                if (strlen(kinds_all[i]->resource) == bl &&
                    !strncmp(kinds_all[i]->resource, *res, bl))
                    k = kinds_all[i];
            if (!k || (k->namespaced && !any_ns))
                continue;
            groups[0] = group_of(k->api_version, g, sizeof(g));
        } else if (!any_ns) {
            continue;
        }
        struct auth_rule r = {(const char *const *)ru->verbs, groups, resources, none, none};
        cb(&r, arg);
    }
}

/* An RBAC rule as an auth_rule, to the caller's cb. */
struct rules_to {
    auth_rule_cb cb;
    void *arg;
};

/* v[0..n) NULL-terminated, in a (malloc'd) array of pointers to the same strings. */
static const char **strv_of(char *const *v, size_t n)
{
    const char **r = xmalloc((n + 1) * sizeof(*r));
    for (size_t i = 0; i < n; i++)
        r[i] = v[i];
    r[n] = NULL;
    return r;
}

static void rbac_rule_to(const Coracle__V1__PolicyRule *p, void *arg)
{
    struct rules_to *to = arg;
    const char **verbs = strv_of(p->verbs, p->n_verbs);
    const char **groups = strv_of(p->apigroups, p->n_apigroups);
    const char **res = strv_of(p->resources, p->n_resources);
    const char **names = strv_of(p->resourcenames, p->n_resourcenames);
    const char **urls = strv_of(p->nonresourceurls, p->n_nonresourceurls);
    to->cb(&(struct auth_rule){verbs, groups, res, names, urls}, to->arg);
    free(verbs);
    free(groups);
    free(res);
    free(names);
    free(urls);
}

int auth_rules_for(const auth_t *au, const struct auth_user *u, const char *ns, auth_rule_cb cb,
                   void *arg, const char **why)
{
    static const char *const none[] = {NULL}, *const all[] = {"*", NULL};
    static const char *const create[] = {"create", NULL};
    static const char *const authz[] = {"authorization.k8s.io", NULL};
    static const char *const authn[] = {"authentication.k8s.io", NULL};
    static const char *const self_authz[] = {"selfsubjectaccessreviews", "selfsubjectrulesreviews",
                                             NULL};
    static const char *const self_authn[] = {"selfsubjectreviews", NULL};
    *why = NULL;
    if (!auth_required(au) || is_master(u) || always_allow(au)) { /* cluster-admin's rules */
        cb(&(struct auth_rule){all, all, all, none, none}, arg);
        cb(&(struct auth_rule){all, none, none, none, all}, arg);
        return 0;
    }
    cb(&(struct auth_rule){create, authz, self_authz, none, none}, arg);
    cb(&(struct auth_rule){create, authn, self_authn, none, none}, arg);
    const struct policy *pol = au->pol;
    for (size_t i = 0; pol && i < pol->nbinds; i++) {
        if (!subject_match(pol->binds[i].subjects, u))
            continue;
        const struct role *r = role_find((struct policy *)pol, pol->binds[i].role);
        for (size_t j = 0; r && j < r->nrules; j++)
            policy_rule_emit(&r->rules[j], ns, cb, arg);
    }
    if (au->rbac_on) {
        struct rules_to to = {cb, arg};
        rbac_rules_for(au->rbac, u->name, u->groups, ns, rbac_rule_to, &to);
    }
    if (node_of(u)) {
        *why = "node restriction narrows these rules: a node reaches only its own objects";
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- limits */

int auth_is_mutating(const char *path)
{
    const char *m = strrchr(path, '/');
    if (!m)
        return 0;
    m++;
    return strcmp(m, "Create") == 0 || strcmp(m, "Update") == 0 || strcmp(m, "UpdateStatus") == 0 ||
           strcmp(m, "Delete") == 0 || strcmp(m, "Bind") == 0 || strcmp(m, "Patch") == 0;
}

unsigned auth_max_watches(const auth_t *au)
{
    /* development mode: every caller is the same anonymous user; no cap (0) */
    if (!auth_required(au))
        return 0;
    return au->max_watches ? au->max_watches : 1000;
}
