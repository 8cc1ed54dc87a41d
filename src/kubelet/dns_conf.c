/*
 * dns_conf: resolv.conf as the kubelet reads the node's and writes a
 * pod's (Kubernetes' pkg/kubelet/network/dns): the node's file gives the
 * nameservers, the last search line and the options; a pod's follows its
 * dnsPolicy, then its dnsConfig is merged in (nameservers and searches
 * appended without duplicates, options overriding by name), then cut to
 * the resolver's limits (3 nameservers; 32 search domains, none over 253
 * characters, 2048 characters in all) with a DNSConfigForming event. The
 * text is laid out as containerd writes it: search, nameserver, options.
 */
#include "config.h"
#include "buf.h"
#include "dns.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define MAX_NAMESERVERS 3
#define MAX_SEARCHES 32
#define MAX_SEARCH_CHARS 2048
#define MAX_SUBDOMAIN 253

/* A growable list of strings (owned). */
struct strs {
    char **v;
    size_t n;
};

static bool has(const struct strs *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s))
            return true;
    return false;
}

static void add(struct strs *l, const char *s)
{
    l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n++] = xstrdup(s);
}

static void add_unique(struct strs *l, const char *s)
{
    if (!has(l, s))
        add(l, s);
}

static void strs_free(struct strs *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    *l = (struct strs){0};
}

/* The length of an option's name ("ndots:5" -> 5). */
static size_t opt_name_len(const char *o)
{
    const char *c = strchr(o, ':');
    return c ? (size_t)(c - o) : strlen(o);
}

/* Sets option o, replacing one of the same name where it stands. */
static void opt_set(struct strs *l, const char *o)
{
    size_t nl = opt_name_len(o);
    for (size_t i = 0; i < l->n; i++)
        if (opt_name_len(l->v[i]) == nl && !strncmp(l->v[i], o, nl)) {
            free(l->v[i]);
            l->v[i] = xstrdup(o);
            return;
        }
    add(l, o);
}

void kdns_resolv_parse(const char *text, struct kdns_resolv *out)
{
    struct strs sv = {0}, se = {0}, op = {0};
    char *copy = xstrdup(text ? text : ""), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[64], *s2 = NULL;
        size_t n = 0;
        for (char *t = strtok_r(line, " \t\r", &s2); t && n < ARRAY_SIZE(f);
             t = strtok_r(NULL, " \t\r", &s2))
            f[n++] = t;
        if (!n || f[0][0] == '#' || f[0][0] == ';')
            continue;
        if (!strcmp(f[0], "nameserver") && n > 1) {
            add(&sv, f[1]);
        } else if (!strcmp(f[0], "search")) {
            strs_free(&se);
            for (size_t i = 1; i < n; i++) {
                size_t len = strlen(f[i]);
                if (!strcmp(f[i], "."))
                    continue;
                if (len > 1 && f[i][len - 1] == '.')
                    f[i][len - 1] = '\0';
                add(&se, f[i]);
            }
        } else if (!strcmp(f[0], "options")) {
            for (size_t i = 1; i < n; i++)
                opt_set(&op, f[i]);
        }
    }
    free(copy);
    *out = (struct kdns_resolv){sv.v, sv.n, se.v, se.n, op.v, op.n};
}

void kdns_resolv_free(struct kdns_resolv *r)
{
    struct strs a = {r->servers, r->nservers}, b = {r->searches, r->nsearches},
                c = {r->options, r->noptions};
    strs_free(&a);
    strs_free(&b);
    strs_free(&c);
    *r = (struct kdns_resolv){0};
}

enum pod_dns { DNS_CLUSTER, DNS_HOST, DNS_NONE };

static enum pod_dns pod_dns_type(const struct kdns_pod_in *in)
{
    const char *p = in->policy && *in->policy ? in->policy : "ClusterFirst";
    if (!strcmp(p, "None"))
        return DNS_NONE;
    if (!strcmp(p, "ClusterFirstWithHostNet"))
        return DNS_CLUSTER;
    if (!strcmp(p, "ClusterFirst") && !in->hostnet)
        return DNS_CLUSTER;
    return DNS_HOST; /* Default, and ClusterFirst on the host's network */
}

static void from_list(struct strs *l, char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        add(l, v[i]);
}

/* The cluster's part: --cluster-dns, the cluster search path, ndots:5. false: no cluster DNS. */
static bool cluster(const struct kdns_pod_in *in, struct strs *sv, struct strs *se, struct strs *op)
{
    if (!in->cluster_dns || !*in->cluster_dns)
        return false;
    char *list = xstrdup(in->cluster_dns), *save = NULL;
    for (char *a = strtok_r(list, ", ", &save); a; a = strtok_r(NULL, ", ", &save))
        add(sv, a);
    free(list);
    if (in->domain && *in->domain) {
        char *s = xasprintf("%s.svc.%s", in->ns, in->domain);
        add(se, s);
        free(s);
        s = xasprintf("svc.%s", in->domain);
        add_unique(se, s);
        free(s);
        add_unique(se, in->domain);
    }
    for (size_t i = 0; in->host && i < in->host->nsearches; i++)
        add_unique(se, in->host->searches[i]);
    add(op, "ndots:5");
    return true;
}

static void host(const struct kdns_pod_in *in, struct strs *sv, struct strs *se, struct strs *op)
{
    if (!in->host) { /* --resolv-conf "": no lookups beyond the node itself */
        add(sv, "127.0.0.1");
        add(se, ".");
        return;
    }
    from_list(sv, in->host->servers, in->host->nservers);
    from_list(se, in->host->searches, in->host->nsearches);
    from_list(op, in->host->options, in->host->noptions);
}

static void merge_pod_config(const Coracle__V1__PodDNSConfig *c, struct strs *sv, struct strs *se,
                             struct strs *op)
{
    for (size_t i = 0; i < c->n_nameservers; i++)
        add_unique(sv, c->nameservers[i]);
    for (size_t i = 0; i < c->n_searches; i++)
        add_unique(se, c->searches[i]);
    for (size_t i = 0; i < c->n_options; i++) {
        const Coracle__V1__PodDNSConfigOption *o = c->options[i];
        if (!o->name)
            continue;
        char *s = o->value && *o->value ? xasprintf("%s:%s", o->name, o->value) : xstrdup(o->name);
        opt_set(op, s);
        free(s);
    }
}

static char *joined(const struct strs *l)
{
    struct buf b = {0};
    for (size_t i = 0; i < l->n; i++)
        buf_printf(&b, "%s%s", i ? " " : "", l->v[i]);
    return b.len ? buf_take(&b) : xstrdup("");
}

static void warn(const struct kdns_pod_in *in, const char *reason, const char *what,
                 const struct strs *l)
{
    char *line = joined(l);
    char *msg = xasprintf("%s limits were exceeded, some %s have been omitted, the applied %s "
                          "line is: %s",
                          what, !strcmp(what, "Nameserver") ? "nameservers" : "search paths",
                          !strcmp(what, "Nameserver") ? "nameserver" : "search", line);
    if (in->warn)
        in->warn(in->warn_arg, reason, msg);
    free(msg);
    free(line);
}

static void fit_limits(const struct kdns_pod_in *in, struct strs *sv, struct strs *se)
{
    if (sv->n > MAX_NAMESERVERS) {
        while (sv->n > MAX_NAMESERVERS)
            free(sv->v[--sv->n]);
        warn(in, "DNSConfigForming", "Nameserver", sv);
    }
    bool cut = false;
    while (se->n > MAX_SEARCHES) {
        free(se->v[--se->n]);
        cut = true;
    }
    size_t keep = 0, chars = 0;
    for (size_t i = 0; i < se->n; i++) {
        if (strlen(se->v[i]) > MAX_SUBDOMAIN) {
            free(se->v[i]);
            cut = true;
            continue;
        }
        chars += strlen(se->v[i]) + (keep ? 1 : 0);
        se->v[keep++] = se->v[i];
    }
    se->n = keep;
    while (chars > MAX_SEARCH_CHARS && se->n) {
        char *last = se->v[--se->n];
        chars -= strlen(last) + (se->n ? 1 : 0);
        free(last);
        cut = true;
    }
    if (cut)
        warn(in, "DNSConfigForming", "Search Line", se);
}

char *kdns_pod_resolv(const struct kdns_pod_in *in)
{
    struct strs sv = {0}, se = {0}, op = {0};
    enum pod_dns t = pod_dns_type(in);
    if (t == DNS_CLUSTER && !cluster(in, &sv, &se, &op)) {
        if (in->warn)
            in->warn(in->warn_arg, "MissingClusterDNS",
                     "kubelet does not have ClusterDNS IP configured and cannot create Pod "
                     "using \"ClusterFirst\" policy. Falling back to \"Default\" policy.");
        t = DNS_HOST;
    }
    if (t == DNS_HOST)
        host(in, &sv, &se, &op);
    if (in->cfg)
        merge_pod_config(in->cfg, &sv, &se, &op);
    fit_limits(in, &sv, &se);
    struct buf b = {0};
    if (se.n) {
        char *s = joined(&se);
        buf_printf(&b, "search %s\n", s);
        free(s);
    }
    for (size_t i = 0; i < sv.n; i++)
        buf_printf(&b, "nameserver %s\n", sv.v[i]);
    if (op.n) {
        char *s = joined(&op);
        buf_printf(&b, "options %s\n", s);
        free(s);
    }
    strs_free(&sv);
    strs_free(&se);
    strs_free(&op);
    return b.len ? buf_take(&b) : xstrdup("");
}
