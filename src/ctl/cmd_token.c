/*
 * cmd_token: `coraclectl token create|list|delete`, kubeadm's bootstrap
 * tokens: a Secret bootstrap-token-<id> of type bootstrap.kubernetes.io/token
 * in kube-system, which the apiserver accepts as "Bearer <id>.<secret>"
 * until it expires. create prints the token and the command that joins a
 * node with it, pinning the cluster CA by its hash.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "columns.h"
#include "ctl.h"
#include "grpc.h"
#include "kobj.h"
#include "pki.h"

#define TOKEN_NS "kube-system"
#define TOKEN_TYPE "bootstrap.kubernetes.io/token"
#define TOKEN_GROUP "system:bootstrappers:coracle:default-node-token"

static const char token_help[] =
    "Manage bootstrap tokens: Secrets of type bootstrap.kubernetes.io/token in kube-system that\n"
    "let a new node's kubelet ask for its client certificate.\n"
    "\n"
    "Commands:\n"
    "  create   Create a token and print it with the command that joins a node\n"
    "  list     List the tokens (TOKEN TTL EXPIRES USAGES DESCRIPTION EXTRA GROUPS)\n"
    "  delete   Delete tokens, by id or whole token\n"
    "\n"
    "Options (create):\n"
    "      --ttl=24h: How long the token is valid (0: forever).\n"
    "      --description='': A human-friendly description of how this token is used.\n"
    "      --groups=[system:bootstrappers:coracle:default-node-token]: Extra groups the token\n"
    "          authenticates as (each system:bootstrappers:...), comma-separated.\n"
    "      --usages=[signing,authentication]: The ways the token may be used, comma-separated.\n"
    "\n"
    "Usage:\n"
    "  coraclectl token create [--ttl 24h] [--description TEXT] [--groups G] [--usages U]\n"
    "  coraclectl token list\n"
    "  coraclectl token delete ID|TOKEN...\n";

static void add_data(Coracle__V1__Secret *sc, const char *key, const char *val)
{
    Coracle__V1__Secret__DataEntry *e = xmalloc(sizeof(*e));
    coracle__v1__secret__data_entry__init(e);
    e->key = xstrdup(key);
    e->has_value = 1;
    e->value.data = (uint8_t *)xstrdup(val);
    e->value.len = strlen(val);
    sc->data = xrealloc(sc->data, (sc->n_data + 1) * sizeof(*sc->data));
    sc->data[sc->n_data++] = e;
}

/* "https://HOST:PORT" of the server coraclectl talks to (malloc'd). */
static char *server_url(const struct ctl_client *c)
{
    const char *a = c->addr;
    if (!strncmp(a, "https://", 8) || !strncmp(a, "http://", 7))
        return xstrdup(a);
    return xasprintf("https://%s", a);
}

/* The token's options (kubeadm's flags). */
struct token_opts {
    const char *ttl, *desc, *groups, *usages;
};

/* --groups and --usages as kubeadm checks them: NULL, or what is wrong (static text). */
static const char *check_lists(const struct token_opts *o)
{
    char *g = xstrdup(o->groups), *save = NULL;
    const char *why = NULL;
    for (char *t = strtok_r(g, ",", &save); t && !why; t = strtok_r(NULL, ",", &save))
        if (strncmp(t, "system:bootstrappers:", 21) || !t[21])
            why = "--groups: each group must start with system:bootstrappers:";
    free(g);
    char *u = xstrdup(o->usages);
    save = NULL;
    for (char *t = strtok_r(u, ",", &save); t && !why; t = strtok_r(NULL, ",", &save))
        if (strcmp(t, "signing") && strcmp(t, "authentication"))
            why = "--usages: each usage must be signing or authentication";
    free(u);
    return why;
}

static int token_create(struct ctl_client *c, const struct token_opts *o)
{
    const char *ttl = o->ttl, *desc = o->desc, *why = check_lists(o);
    if (why) {
        fprintf(stderr, "error: %s\n", why);
        return 1;
    }
    int64_t ttl_ns = 0;
    if (parse_duration(ttl, &ttl_ns) < 0 || ttl_ns < 0) {
        fprintf(stderr, "error: --ttl: \"%s\" is not a duration (24h, 30m, 0)\n", ttl);
        return 1;
    }
    char hash[PKI_HASH_LEN] = "", *err = NULL;
    if (!c->ca_file || !*c->ca_file) {
        fprintf(stderr, "error: the join command pins the cluster CA: give "
                        "--certificate-authority (or certificate-authority in the config)\n");
        return 1;
    }
    if (pki_ca_hash_file(c->ca_file, hash, &err) < 0) {
        fprintf(stderr, "error: %s\n", err);
        free(err);
        return 1;
    }
    char tok[24], id[7], secret[17];
    if (pki_token_new(tok) < 0 || pki_token_split(tok, id, secret) < 0) {
        fprintf(stderr, "error: no randomness for a token\n");
        return 1;
    }
    Coracle__V1__Secret sc = CORACLE__V1__SECRET__INIT;
    Coracle__V1__ObjectMeta m = CORACLE__V1__OBJECT_META__INIT;
    char name[64];
    snprintf(name, sizeof(name), "bootstrap-token-%s", id);
    m.name = name;
    m.namespace_ = TOKEN_NS;
    sc.metadata = &m;
    sc.type = TOKEN_TYPE;
    add_data(&sc, "token-id", id);
    add_data(&sc, "token-secret", secret);
    if (ttl_ns > 0) {
        char exp[64];
        kobj_fmt_rfc3339(exp, sizeof(exp), (int64_t)time(NULL) + ttl_ns / 1000000000, 0, 0);
        add_data(&sc, "expiration", exp);
    }
    if (desc && *desc)
        add_data(&sc, "description", desc);
    char *u = xasprintf(",%s,", o->usages);
    if (strstr(u, ",authentication,"))
        add_data(&sc, "usage-bootstrap-authentication", "true");
    if (strstr(u, ",signing,"))
        add_data(&sc, "usage-bootstrap-signing", "true");
    free(u);
    if (*o->groups)
        add_data(&sc, "auth-extra-groups", o->groups);
    ProtobufCMessage *resp = NULL;
    int code = ctl_call(c, &kind_secret, "Create", &sc.base, kind_secret.desc, &resp, &err);
    sc.metadata = NULL;
    sc.type = NULL;
    for (size_t i = 0; i < sc.n_data; i++) {
        free(sc.data[i]->key);
        free(sc.data[i]->value.data);
        free(sc.data[i]);
    }
    free(sc.data);
    if (code != GRPC_OK) {
        ctl_print_error(c, code, err);
        free(err);
        return 1;
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    char *url = server_url(c);
    printf("%s\n", tok);
    printf("coracle-kubelet --server %s --token %s --ca-cert-hash %s\n", url, tok, hash);
    free(url);
    return 0;
}

static const ProtobufCBinaryData *data_of(const Coracle__V1__Secret *sc, const char *key)
{
    for (size_t i = 0; i < sc->n_data; i++)
        if (sc->data[i]->key && !strcmp(sc->data[i]->key, key))
            return &sc->data[i]->value;
    return NULL;
}

/* The data value as text, or dflt. */
static const char *text_of(const Coracle__V1__Secret *sc, const char *key, char *buf, size_t n,
                           const char *dflt)
{
    const ProtobufCBinaryData *v = data_of(sc, key);
    if (!v || !v->len)
        return dflt;
    snprintf(buf, n, "%.*s", (int)v->len, (const char *)v->data);
    return buf;
}

/* kubeadm's USAGES: the usage-bootstrap-* keys set to "true", comma-joined. */
static void usages_of(const Coracle__V1__Secret *sc, char *buf, size_t n)
{
    size_t l = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sc->n_data && l + 1 < n; i++) {
        const char *k = sc->data[i]->key ? sc->data[i]->key : "";
        const ProtobufCBinaryData *v = &sc->data[i]->value;
        if (!strncmp(k, "usage-bootstrap-", 16) && v->len == 4 && !memcmp(v->data, "true", 4))
            l += (size_t)snprintf(buf + l, n - l, "%s%s", l ? "," : "", k + 16);
    }
}

static void token_row(const Coracle__V1__Secret *sc, int64_t now)
{
    char id[64], secret[64], exp[64], ttl[32] = "<forever>", usages[128], desc[256], groups[256];
    const char *e = text_of(sc, "expiration", exp, sizeof(exp), "<never>");
    int64_t sec;
    int32_t ns;
    if (strcmp(e, "<never>") && kobj_parse_rfc3339(e, &sec, &ns) == 0) {
        if (sec > now)
            cols_human_duration(ttl, sizeof(ttl), (sec - now) * 1000000000LL);
        else
            snprintf(ttl, sizeof(ttl), "<invalid>");
    }
    usages_of(sc, usages, sizeof(usages));
    printf("%s.%s\t%s\t%s\t%s\t%s\t%s\n", text_of(sc, "token-id", id, sizeof(id), ""),
           text_of(sc, "token-secret", secret, sizeof(secret), ""), ttl, e,
           *usages ? usages : "<none>", text_of(sc, "description", desc, sizeof(desc), "<none>"),
           text_of(sc, "auth-extra-groups", groups, sizeof(groups), "<none>"));
}

static int token_list(struct ctl_client *c)
{
    Coracle__V1__ListRequest req = CORACLE__V1__LIST_REQUEST__INIT;
    req.namespace_ = TOKEN_NS;
    ProtobufCMessage *resp = NULL;
    char *err = NULL;
    int code = ctl_list_all(c, &kind_secret, &req, &resp, &err);
    if (code != GRPC_OK) {
        ctl_print_error(c, code, err);
        free(err);
        return 1;
    }
    Coracle__V1__SecretList *l = (void *)resp;
    printf("TOKEN\tTTL\tEXPIRES\tUSAGES\tDESCRIPTION\tEXTRA GROUPS\n");
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < l->n_items; i++)
        if (l->items[i]->type && !strcmp(l->items[i]->type, TOKEN_TYPE))
            token_row(l->items[i], now);
    protobuf_c_message_free_unpacked(resp, NULL);
    return 0;
}

static int token_delete(struct ctl_client *c, const struct ctl_strv *ids)
{
    int rc = 0;
    for (size_t i = 1; i < ids->n; i++) {
        char id[7], secret[17], name[64];
        const char *arg = ids->v[i];
        if (pki_token_split(arg, id, secret) == 0)
            arg = id;
        if (strlen(arg) != 6) {
            fprintf(stderr, "error: \"%s\" is neither a token id nor a token\n", ids->v[i]);
            rc = 1;
            continue;
        }
        snprintf(name, sizeof(name), "bootstrap-token-%s", arg);
        Coracle__V1__DeleteRequest req = CORACLE__V1__DELETE_REQUEST__INIT;
        req.namespace_ = TOKEN_NS;
        req.name = name;
        ProtobufCMessage *resp = NULL;
        char *err = NULL;
        int code = ctl_call(c, &kind_secret, "Delete", &req.base, kind_secret.desc, &resp, &err);
        if (code == GRPC_OK) {
            protobuf_c_message_free_unpacked(resp, NULL);
            printf("bootstrap token \"%s\" deleted\n", arg);
        } else {
            ctl_print_error(c, code, err);
            rc = 1;
        }
        free(err);
    }
    return rc;
}

int ctl_cmd_token(int argc, char **argv)
{
    struct token_opts o = {"24h", NULL, TOKEN_GROUP, "signing,authentication"};
    const struct ctl_flag flags[] = {
        {"ttl", 0, CTL_FLAG_STR, &o.ttl, NULL},
        {"description", 0, CTL_FLAG_STR, &o.desc, NULL},
        {"groups", 0, CTL_FLAG_STR, &o.groups, NULL},
        {"usages", 0, CTL_FLAG_STR, &o.usages, NULL},
    };
    struct ctl_strv pos;
    if (ctl_parse_flags(argc, argv, flags, ARRAY_SIZE(flags), &pos, NULL) < 0)
        return 1;
    if (ctl_g.help || !pos.n) {
        fputs(token_help, ctl_g.help ? stdout : stderr);
        free(pos.v);
        return ctl_g.help ? 0 : 1;
    }
    const char *sub = pos.v[0];
    if (strcmp(sub, "create") && strcmp(sub, "list") && strcmp(sub, "delete")) {
        fprintf(stderr, "error: unknown command \"%s\" for \"coraclectl token\"\n", sub);
        free(pos.v);
        return 1;
    }
    if (!strcmp(sub, "delete") && pos.n < 2) {
        fprintf(stderr, "error: missing subcommand; \"token delete\" needs a token id\n");
        free(pos.v);
        return 1;
    }
    struct ctl_client c;
    if (ctl_client_open(&c) < 0) {
        free(pos.v);
        return 1;
    }
    int rc = !strcmp(sub, "create") ? token_create(&c, &o)
             : !strcmp(sub, "list") ? token_list(&c)
                                    : token_delete(&c, &pos);
    ctl_client_close(&c);
    free(pos.v);
    return rc;
}
