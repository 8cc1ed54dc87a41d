/*
 * cmd_auth: `coraclectl auth can-i` and `coraclectl auth whoami`, as
 * kubectl's: a SelfSubjectAccessReview (can-i VERB TYPE[/NAME] or a
 * non-resource URL: "yes" and exit 0, or "no" and exit 1), a
 * SelfSubjectRulesReview (can-i --list: the rules broken down to one
 * resource and verb each, merged back by resource, sorted and printed as
 * kubectl prints them) and a SelfSubjectReview (whoami). The answers come
 * from the apiserver's authorizer, the one that decides real calls.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "client.h"
#include "ctl.h"
#include "grpc.h"
#include "output.h"
#include "print.h"

static const char auth_help[] = "Inspect authorization.\n"
                                "\n"
                                "Available Commands:\n"
                                "  can-i         Check whether an action is allowed\n"
                                "  whoami        Experimental: Check self subject attributes\n"
                                "\n"
                                "Usage:\n"
                                "  coraclectl auth [flags] [options]\n";

static const char can_i_help[] =
    "Check whether an action is allowed.\n"
    "\n"
    " VERB is a logical Kubernetes API verb like 'get', 'list', 'watch', 'delete', etc. TYPE is "
    "a Kubernetes resource. Shortcuts and groups will be resolved. NONRESOURCEURL is a partial "
    "URL that starts with \"/\". NAME is the name of a particular Kubernetes resource.\n"
    "\n"
    "Options:\n"
    "    -A, --all-namespaces=false: If true, check the specified action in all namespaces.\n"
    "    --list=false: If true, prints all allowed actions.\n"
    "    --no-headers=false: If true, prints allowed actions without headers\n"
    "    -q, --quiet=false: If true, suppress output and just return the exit code.\n"
    "    --subresource='': SubResource such as pod/log or deployment/scale\n"
    "\n"
    "Usage:\n"
    "  coraclectl auth can-i VERB [TYPE | TYPE/NAME | NONRESOURCEURL] [options]\n";

static const char whoami_help[] =
    "Experimental: Check who you are and your attributes (groups, extra).\n"
    "\n"
    "Options:\n"
    "    -o, --output='': Output format. One of: (json, yaml).\n"
    "\n"
    "Usage:\n"
    "  coraclectl auth whoami [options]\n";

/* Calls Create on virtual kind k with req; prints the error and returns -1, or 0 with *resp. */
static int create(const struct kind *k, const ProtobufCMessage *req, ProtobufCMessage **resp)
{
    struct ctl_client c;
    char *err = NULL;
    if (ctl_client_open(&c) < 0)
        return -1;
    int code = ctl_call(&c, k, "Create", req, k->desc, resp, &err);
    if (code != GRPC_OK)
        ctl_print_error(&c, code, err);
    free(err);
    ctl_client_close(&c);
    return code == GRPC_OK ? 0 : -1;
}

/* ---- can-i --list ---- */

/* One rule broken down: a verb list on one group/resource[/name], or on one URL. */
struct prule {
    const char **verbs;
    size_t nverbs;
    const char *group, *resource, *name, *url; /* url: a non-resource rule */
    char *key;                                 /* kubectl's sort key (PolicyRule.String()) */
};

struct prules {
    struct prule *v;
    size_t n;
};

static void verb_add(struct prule *p, const char *verb)
{
    for (size_t i = 0; i < p->nverbs; i++)
        if (!strcmp(p->verbs[i], verb))
            return;
    p->verbs = xrealloc(p->verbs, (p->nverbs + 1) * sizeof(*p->verbs));
    p->verbs[p->nverbs++] = verb;
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Adds verb on group/resource/name (merged into a rule on the same), or on url (never merged). */
static void prule_add(struct prules *rs, const char *verb, const char *group, const char *res,
                      const char *name, const char *url)
{
    for (size_t i = 0; !url && i < rs->n; i++) {
        struct prule *p = &rs->v[i];
        if (!p->url && same(p->group, group) && same(p->resource, res) && same(p->name, name)) {
            verb_add(p, verb);
            return;
        }
    }
    rs->v = xrealloc(rs->v, (rs->n + 1) * sizeof(*rs->v));
    struct prule *p = &rs->v[rs->n++];
    memset(p, 0, sizeof(*p));
    p->group = group;
    p->resource = res;
    p->name = name;
    p->url = url;
    verb_add(p, verb);
}

/* Go's %v of a []string: "[a b]". */
static void strs_v(struct buf *b, const char *const *v, size_t n)
{
    buf_puts(b, "[");
    for (size_t i = 0; i < n; i++)
        buf_printf(b, "%s%s", i ? " " : "", v[i]);
    buf_puts(b, "]");
}

static char *prule_key(const struct prule *p)
{
    struct buf b = {0};
    buf_puts(&b, "&PolicyRule{Verbs:");
    strs_v(&b, p->verbs, p->nverbs);
    buf_puts(&b, ",APIGroups:");
    strs_v(&b, &p->group, p->url ? 0 : 1);
    buf_puts(&b, ",Resources:");
    strs_v(&b, &p->resource, p->url ? 0 : 1);
    buf_puts(&b, ",ResourceNames:");
    strs_v(&b, &p->name, p->name ? 1 : 0);
    buf_puts(&b, ",NonResourceURLs:");
    strs_v(&b, &p->url, p->url ? 1 : 0);
    buf_puts(&b, ",}");
    return buf_take(&b);
}

static int by_key(const void *a, const void *b)
{
    const struct prule *x = a, *y = b;
    return strcmp(x->key, y->key);
}

/* kubectl's describe.CombineResourceGroup: "deployments.apps/scale". */
static void combined(struct buf *b, const struct prule *p)
{
    if (p->url)
        return;
    const char *slash = strchr(p->resource, '/');
    size_t bl = slash ? (size_t)(slash - p->resource) : strlen(p->resource);
    buf_add(b, p->resource, bl);
    if (*p->group)
        buf_printf(b, ".%s", p->group);
    if (slash)
        buf_puts(b, slash);
}

static void print_rules(const Coracle__V1__SubjectRulesReviewStatus *st, bool no_headers)
{
    struct prules rs = {0};
    for (size_t i = 0; i < st->n_resourcerules; i++) {
        const Coracle__V1__ResourceRule *r = st->resourcerules[i];
        for (size_t g = 0; g < r->n_apigroups; g++)
            for (size_t x = 0; x < r->n_resources; x++)
                for (size_t v = 0; v < r->n_verbs; v++) {
                    for (size_t n = 0; n < r->n_resourcenames; n++)
                        prule_add(&rs, r->verbs[v], r->apigroups[g], r->resources[x],
                                  r->resourcenames[n], NULL);
                    if (!r->n_resourcenames)
                        prule_add(&rs, r->verbs[v], r->apigroups[g], r->resources[x], NULL, NULL);
                }
    }
    for (size_t i = 0; i < st->n_nonresourcerules; i++) {
        const Coracle__V1__NonResourceRule *r = st->nonresourcerules[i];
        for (size_t u = 0; u < r->n_nonresourceurls; u++)
            for (size_t v = 0; v < r->n_verbs; v++)
                prule_add(&rs, r->verbs[v], NULL, NULL, NULL, r->nonresourceurls[u]);
    }
    for (size_t i = 0; i < rs.n; i++)
        rs.v[i].key = prule_key(&rs.v[i]);
    qsort(rs.v, rs.n, sizeof(*rs.v), by_key);
    struct ctl_tw tw;
    ctl_tw_init(&tw, 6, 3, false);
    if (!no_headers)
        ctl_tw_printf(&tw, "Resources\tNon-Resource URLs\tResource Names\tVerbs\n");
    for (size_t i = 0; i < rs.n; i++) {
        const struct prule *p = &rs.v[i];
        struct buf b = {0};
        combined(&b, p);
        buf_puts(&b, "\t");
        strs_v(&b, &p->url, p->url ? 1 : 0);
        buf_puts(&b, "\t");
        strs_v(&b, &p->name, p->name ? 1 : 0);
        buf_puts(&b, "\t");
        strs_v(&b, p->verbs, p->nverbs);
        ctl_tw_printf(&tw, "%s\n", b.p ? b.p : "");
        buf_free(&b);
    }
    struct buf out = {0};
    ctl_tw_flush(&tw, &out);
    fwrite(out.p ? out.p : "", 1, out.len, stdout);
    buf_free(&out);
    ctl_tw_free(&tw);
    for (size_t i = 0; i < rs.n; i++) {
        free(rs.v[i].verbs);
        free(rs.v[i].key);
    }
    free(rs.v);
}

static int can_i_list(bool no_headers)
{
    Coracle__V1__SelfSubjectRulesReview req = CORACLE__V1__SELF_SUBJECT_RULES_REVIEW__INIT;
    Coracle__V1__SelfSubjectRulesReviewSpec spec =
        CORACLE__V1__SELF_SUBJECT_RULES_REVIEW_SPEC__INIT;
    spec.namespace_ = (char *)ctl_namespace();
    req.spec = &spec;
    ProtobufCMessage *resp;
    if (create(&kind_selfsubjectrulesreview, &req.base, &resp) < 0)
        return 1;
    const Coracle__V1__SubjectRulesReviewStatus *st =
        ((Coracle__V1__SelfSubjectRulesReview *)resp)->status;
    if (st && st->incomplete)
        fprintf(stderr, "Warning: the list may be incomplete: %s\n",
                st->evaluationerror ? st->evaluationerror : "");
    if (st)
        print_rules(st, no_headers);
    protobuf_c_message_free_unpacked(resp, NULL);
    return 0;
}

/* ---- can-i VERB WHAT ---- */

struct can_i {
    const char *verb, *what, *subresource;
    bool all_ns, quiet;
};

/* The kind TYPE or TYPE.GROUP names (tl bytes of s), or NULL. */
static const struct kind *resolve(const char *s, size_t tl)
{
    char type[128];
    snprintf(type, sizeof(type), "%.*s", (int)(tl < sizeof(type) ? tl : sizeof(type) - 1), s);
    char *dot = strchr(type, '.');
    if (dot)
        *dot++ = '\0';
    const struct kind *k = kind_lookup(type);
    if (!k || !dot)
        return k;
    const char *slash = strchr(k->api_version, '/');
    size_t gl = slash ? (size_t)(slash - k->api_version) : 0;
    return strlen(dot) == gl && !strncmp(dot, k->api_version, gl) ? k : NULL;
}

/* The resource attributes of o->what (TYPE[/NAME]), as kubectl's resourceFor resolves them. */
static void resource_attrs(const struct can_i *o, Coracle__V1__ResourceAttributes *ra, char *group,
                           size_t gn, char *res, size_t rn)
{
    size_t tl = strcmp(o->what, "*") ? strcspn(o->what, "/") : 1;
    const char *name = o->what[tl] ? o->what + tl + 1 : NULL;
    const struct kind *k = strcmp(o->what, "*") ? resolve(o->what, tl) : NULL;
    if (k) {
        const char *slash = strchr(k->api_version, '/');
        snprintf(group, gn, "%.*s", slash ? (int)(slash - k->api_version) : 0, k->api_version);
        snprintf(res, rn, "%s", k->resource);
    } else {
        snprintf(group, gn, "%s", "");
        snprintf(res, rn, "%.*s", (int)tl, o->what);
        for (char *p = res; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        if (strcmp(res, "*"))
            fprintf(stderr, "Warning: the server doesn't have a resource type '%s'\n\n", res);
    }
    if (k && !k->namespaced && !o->all_ns)
        fprintf(stderr, "Warning: resource '%s' is not namespace scoped%s%s%s\n\n", k->resource,
                *group ? " in group '" : "", group, *group ? "'" : "");
    ra->verb = (char *)o->verb;
    ra->group = group;
    ra->resource = res;
    ra->subresource = (char *)(o->subresource ? o->subresource : "");
    ra->name = (char *)(name ? name : "");
    ra->namespace_ = (char *)(o->all_ns ? "" : ctl_namespace());
}

static int can_i_check(const struct can_i *o)
{
    Coracle__V1__SelfSubjectAccessReview req = CORACLE__V1__SELF_SUBJECT_ACCESS_REVIEW__INIT;
    Coracle__V1__SelfSubjectAccessReviewSpec spec =
        CORACLE__V1__SELF_SUBJECT_ACCESS_REVIEW_SPEC__INIT;
    Coracle__V1__ResourceAttributes ra = CORACLE__V1__RESOURCE_ATTRIBUTES__INIT;
    Coracle__V1__NonResourceAttributes nra = CORACLE__V1__NON_RESOURCE_ATTRIBUTES__INIT;
    char group[128], res[128];
    req.spec = &spec;
    if (o->what[0] == '/') {
        if (o->subresource) {
            fprintf(stderr, "error: --subresource can not be used with NonResourceURL\n");
            return 1;
        }
        nra.verb = (char *)o->verb;
        nra.path = (char *)o->what;
        spec.nonresourceattributes = &nra;
    } else {
        resource_attrs(o, &ra, group, sizeof(group), res, sizeof(res));
        spec.resourceattributes = &ra;
    }
    ProtobufCMessage *resp;
    if (create(&kind_selfsubjectaccessreview, &req.base, &resp) < 0)
        return 1;
    const Coracle__V1__SubjectAccessReviewStatus *st =
        ((Coracle__V1__SelfSubjectAccessReview *)resp)->status;
    bool allowed = st && st->allowed;
    if (!o->quiet) {
        if (allowed) {
            puts("yes");
        } else {
            fputs("no", stdout);
            if (st && st->reason && *st->reason)
                printf(" - %s", st->reason);
            if (st && st->evaluationerror && *st->evaluationerror)
                printf(" - %s", st->evaluationerror);
            putchar('\n');
        }
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    return allowed ? 0 : 1;
}

static int can_i(int argc, char **argv)
{
    struct can_i o = {0};
    bool list = false, no_headers = false;
    const struct ctl_flag flags[] = {
        {"all-namespaces", 'A', CTL_FLAG_BOOL, &o.all_ns, NULL},
        {"quiet", 'q', CTL_FLAG_BOOL, &o.quiet, NULL},
        {"subresource", 0, CTL_FLAG_STR, &o.subresource, NULL},
        {"list", 0, CTL_FLAG_BOOL, &list, NULL},
        {"no-headers", 0, CTL_FLAG_BOOL, &no_headers, NULL},
    };
    struct ctl_strv pos;
    if (ctl_parse_flags(argc, argv, flags, ARRAY_SIZE(flags), &pos, NULL) < 0)
        return 1;
    int rc = 1;
    if (ctl_g.help) {
        fputs(can_i_help, stdout);
        rc = 0;
    } else if (list) {
        if (o.quiet || o.all_ns || (o.subresource && *o.subresource))
            fprintf(stderr, "error: list option can't be specified with neither quiet, "
                            "all-namespaces nor subresource options\n");
        else if (pos.n)
            fprintf(stderr, "error: list option must be specified with no arguments\n");
        else
            rc = can_i_list(no_headers);
    } else if (pos.n != 2) {
        fprintf(stderr, "error: you must specify two arguments: verb resource or verb "
                        "resource/resourceName.\nSee 'coraclectl auth can-i -h' for help and "
                        "examples.\n");
    } else if (no_headers) {
        fprintf(stderr, "error: --no-headers cannot be set without --list specified\n");
    } else {
        o.verb = pos.v[0];
        o.what = pos.v[1];
        if (o.subresource && !*o.subresource)
            o.subresource = NULL;
        rc = can_i_check(&o);
    }
    free(pos.v);
    return rc;
}

/* ---- whoami ---- */

static int whoami(int argc, char **argv)
{
    const char *out = NULL;
    const struct ctl_flag flags[] = {{"output", 'o', CTL_FLAG_STR, &out, NULL}};
    struct ctl_strv pos;
    if (ctl_parse_flags(argc, argv, flags, ARRAY_SIZE(flags), &pos, NULL) < 0)
        return 1;
    free(pos.v);
    if (ctl_g.help) {
        fputs(whoami_help, stdout);
        return 0;
    }
    struct ctl_output o;
    if (out && *out && (strcmp(out, "yaml") && strcmp(out, "json"))) {
        fprintf(stderr,
                "error: unable to match a printer suitable for the output format \"%s\", "
                "allowed formats are: json,yaml\n",
                out);
        return 1;
    }
    if (ctl_parse_output(out, &o) < 0)
        return 1;
    Coracle__V1__SelfSubjectReview req = CORACLE__V1__SELF_SUBJECT_REVIEW__INIT;
    ProtobufCMessage *resp;
    if (create(&kind_selfsubjectreview, &req.base, &resp) < 0) {
        ctl_output_free(&o);
        return 1;
    }
    const Coracle__V1__SelfSubjectReviewStatus *st =
        ((Coracle__V1__SelfSubjectReview *)resp)->status;
    const Coracle__V1__UserInfo *ui = st ? st->userinfo : NULL;
    int rc = 0;
    if (o.fmt != CTL_OUT_TABLE) {
        rc = ctl_print_objs(&kind_selfsubjectreview, &resp, 1, false, &o, NULL) < 0;
    } else if (ui) {
        struct ctl_tw tw;
        ctl_tw_init(&tw, 6, 3, false);
        ctl_tw_printf(&tw, "ATTRIBUTE\tVALUE\n");
        if (ui->username && *ui->username)
            ctl_tw_printf(&tw, "Username\t%s\n", ui->username);
        if (ui->uid && *ui->uid)
            ctl_tw_printf(&tw, "UID\t%s\n", ui->uid);
        if (ui->n_groups) {
            struct buf b = {0};
            strs_v(&b, (const char *const *)ui->groups, ui->n_groups);
            ctl_tw_printf(&tw, "Groups\t%s\n", b.p);
            buf_free(&b);
        }
        struct buf b = {0};
        ctl_tw_flush(&tw, &b);
        fwrite(b.p ? b.p : "", 1, b.len, stdout);
        buf_free(&b);
        ctl_tw_free(&tw);
    }
    ctl_output_free(&o);
    protobuf_c_message_free_unpacked(resp, NULL);
    return rc;
}

int ctl_cmd_auth(int argc, char **argv)
{
    /* the subcommand: the first argument that is not a global flag or its value */
    for (int i = 1; i < argc; i++) {
        int n = ctl_global_flag_args(argv[i]);
        if (n) {
            i += n - 1;
            continue;
        }
        if (argv[i][0] == '-')
            continue;
        if (strcmp(argv[i], "can-i") && strcmp(argv[i], "whoami"))
            break;
        char *sub = argv[i];
        memmove(&argv[i], &argv[i + 1], (size_t)(argc - i - 1) * sizeof(*argv));
        argv[argc - 1] = sub; /* kept in the array, past the end the verb sees */
        return !strcmp(sub, "can-i") ? can_i(argc - 1, argv) : whoami(argc - 1, argv);
    }
    fputs(auth_help, ctl_g.help ? stdout : stderr);
    return ctl_g.help ? 0 : 1;
}
