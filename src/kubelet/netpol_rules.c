/*
 * netpol_rules: NetworkPolicies' nftables objects (netpol.h has the
 * table's layout). Pure: model in, text out, so the unit tests read
 * exactly what the kernel gets; proxy_rules.c's kpx_script_diff_in turns
 * two object lists into the transaction between them.
 */
#include "config.h"
#include "cidr.h"
#include "netpol.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static void obj_add(struct kpx_objs *o, char type, char *name, char *key, char *val)
{
    o->v = xrealloc(o->v, (o->n + 1) * sizeof *o->v);
    o->v[o->n++] = (struct kpx_obj){type, name, key, val};
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The declaration, then each distinct key (sorted) of keys as an element of set name. */
static void set_objs(const char *name, const char *decl, char **keys, size_t n,
                     struct kpx_objs *out)
{
    obj_add(out, 's', xstrdup(name), xstrdup(decl), NULL);
    qsort(keys, n, sizeof *keys, cmp_str);
    for (size_t i = 0; i < n; i++)
        if (!i || strcmp(keys[i], keys[i - 1]))
            obj_add(out, 'e', xstrdup(name), xstrdup(keys[i]), NULL);
}

static void keys_free(char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

void knp_pods_set_objs(const char *name, const char *const *ips, size_t n, struct kpx_objs *out)
{
    char **keys = xcalloc(n + 1, sizeof *keys);
    for (size_t i = 0; i < n; i++)
        keys[i] = xstrdup(ips[i]);
    set_objs(name, "type ipv4_addr;", keys, n, out);
    keys_free(keys, n);
}

void knp_dests_set_objs(const char *name, const struct knp_dest *d, size_t n, struct kpx_objs *out)
{
    char **keys = xcalloc(n + 1, sizeof *keys);
    for (size_t i = 0; i < n; i++)
        keys[i] = xasprintf("%s . %s . %d", d[i].ip, d[i].proto, d[i].port);
    set_objs(name, "type ipv4_addr . inet_proto . inet_service;", keys, n, out);
    keys_free(keys, n);
}

/* ---- ipBlocks: IPv4 ranges, except subtracted, overlaps merged ---- */

struct span {
    uint32_t lo, hi;
};
struct spans {
    struct span *v;
    size_t n;
};

static void span_add(struct spans *s, uint32_t lo, uint32_t hi)
{
    s->v = xrealloc(s->v, (s->n + 1) * sizeof *s->v);
    s->v[s->n++] = (struct span){lo, hi};
}

static bool span_of(const char *cidr, struct span *out)
{
    struct cidr4 c;
    if (cidr_parse4(cidr, &c) < 0)
        return false;
    uint32_t net = cidr_network(&c);
    uint32_t host = c.bits >= 32 ? 0 : (c.bits <= 0 ? UINT32_MAX : UINT32_MAX >> c.bits);
    *out = (struct span){net, net | host};
    return true;
}

/* s minus x, in place. */
static void span_subtract(struct spans *s, struct span x)
{
    struct spans r = {0};
    for (size_t i = 0; i < s->n; i++) {
        struct span a = s->v[i];
        if (x.hi < a.lo || x.lo > a.hi) {
            span_add(&r, a.lo, a.hi);
            continue;
        }
        if (x.lo > a.lo)
            span_add(&r, a.lo, x.lo - 1);
        if (x.hi < a.hi)
            span_add(&r, x.hi + 1, a.hi);
    }
    free(s->v);
    *s = r;
}

static int cmp_span(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

void knp_cidrs_set_objs(const char *name, const struct knp_block *b, size_t n, struct kpx_objs *out)
{
    struct spans all = {0};
    for (size_t i = 0; i < n; i++) {
        struct span sp, x;
        if (!span_of(b[i].cidr, &sp))
            continue; /* IPv6: this table matches IPv4 only */
        struct spans one = {0};
        span_add(&one, sp.lo, sp.hi);
        for (size_t j = 0; j < b[i].nexcept; j++)
            if (span_of(b[i].except[j], &x))
                span_subtract(&one, x);
        for (size_t j = 0; j < one.n; j++)
            span_add(&all, one.v[j].lo, one.v[j].hi);
        free(one.v);
    }
    if (all.n)
        qsort(all.v, all.n, sizeof *all.v, cmp_span);
    obj_add(out, 's', xstrdup(name), xstrdup("type ipv4_addr; flags interval;"), NULL);
    for (size_t i = 0; i < all.n;) {
        struct span m = all.v[i++];
        /* merge what overlaps or touches */
        while (i < all.n && (m.hi == UINT32_MAX || all.v[i].lo <= m.hi + 1)) {
            if (all.v[i].hi > m.hi)
                m.hi = all.v[i].hi;
            i++;
        }
        char lo[16], hi[16];
        cidr_ip4(m.lo, lo, sizeof lo);
        cidr_ip4(m.hi, hi, sizeof hi);
        obj_add(out, 'e', xstrdup(name), m.lo == m.hi ? xstrdup(lo) : xasprintf("%s-%s", lo, hi),
                NULL);
    }
    free(all.v);
}

char *knp_id(const char *ns, const char *name)
{
    char *id = xasprintf("%s/%s", ns, name);
    if (strlen(id) <= KNP_ID_MAX)
        return id;
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *c = id; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    char *s = xasprintf("%.*s~%08x", KNP_ID_MAX - 9, id, h);
    free(id);
    return s;
}

/* ---- a local pod's chain ---- */

/* The lines of rule r: each peer match times each port match, each allowing ("return"). */
static void rule_lines(struct buf *b, const char *addr, const struct knp_rule *r)
{
    const char *peers[3];
    size_t np = 0;
    char *own[2] = {NULL, NULL};
    if (r->all_peers) {
        peers[np++] = "";
    } else {
        if (r->pods_set)
            peers[np++] = own[0] = xasprintf("ip %s @%s ", addr, r->pods_set);
        if (r->cidrs_set)
            peers[np++] = own[1] = xasprintf("ip %s @%s ", addr, r->cidrs_set);
    }
    for (size_t i = 0; i < np; i++) {
        if (r->all_ports) {
            buf_printf(b, "%sreturn\n", peers[i]);
            continue;
        }
        for (size_t j = 0; j < r->nports; j++) {
            const struct knp_port *p = &r->ports[j];
            if (p->named_set)
                continue;
            buf_printf(b, "%smeta l4proto %s ", peers[i], p->proto);
            if (p->port && p->end_port > p->port)
                buf_printf(b, "th dport %d-%d ", p->port, p->end_port);
            else if (p->port)
                buf_printf(b, "th dport %d ", p->port);
            buf_puts(b, "return\n");
        }
    }
    /* a named port of an egress rule: its set already holds only the peers' ports */
    for (size_t j = 0; !r->all_ports && j < r->nports; j++)
        if (r->ports[j].named_set)
            buf_printf(b, "ip daddr . meta l4proto . th dport @%s return\n", r->ports[j].named_set);
    free(own[0]);
    free(own[1]);
}

void knp_pod_objs(const char *dir, const char *ns, const char *pod, const char *ip,
                  const struct knp_rule *r, size_t n, struct kpx_objs *out)
{
    const char *addr = !strcmp(dir, "egress") ? "daddr" : "saddr";
    struct buf b = {0};
    for (size_t i = 0; i < n; i++)
        rule_lines(&b, addr, &r[i]);
    buf_puts(&b, "drop\n");
    char *id = knp_id(ns, pod);
    char *chain = xasprintf("%s-%s", dir, id);
    free(id);
    obj_add(out, 'c', xstrdup(chain), buf_take(&b), NULL);
    obj_add(out, 'e', xasprintf("%s-pods", dir), xstrdup(ip), xasprintf("jump %s", chain));
    free(chain);
}

void knp_script_base(struct buf *b)
{
    buf_puts(b, "add table " KNP_TABLE "\n"
                "delete table " KNP_TABLE "\n"
                "table " KNP_TABLE " {\n"
                "  comment \"NetworkPolicy rules, by coracle-kubelet\"\n"
                "  map ingress-pods { type ipv4_addr : verdict; }\n"
                "  map egress-pods { type ipv4_addr : verdict; }\n"
                "  chain forward {\n"
                "    type filter hook forward priority filter; policy accept;\n"
                "    ct state established,related accept\n"
                "    ip saddr vmap @egress-pods\n"
                "    ip daddr vmap @ingress-pods\n"
                "  }\n"
                "  chain input {\n"
                "    type filter hook input priority filter; policy accept;\n"
                "    ct state established,related accept\n"
                "    ip saddr vmap @egress-pods\n"
                "  }\n"
                "}\n");
}
