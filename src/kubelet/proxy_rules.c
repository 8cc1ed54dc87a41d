/*
 * proxy_rules: a Service's nftables objects and the transaction script
 * between two versions of them (proxy.h has the table's layout). Pure:
 * text in, text out, so the unit tests read exactly what the kernel gets.
 */
#include "config.h"
#include "proxy.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void obj_add(struct kpx_objs *o, char type, char *name, char *key, char *val)
{
    o->v = xrealloc(o->v, (o->n + 1) * sizeof *o->v);
    o->v[o->n++] = (struct kpx_obj){type, name, key, val};
}

void kpx_objs_free(struct kpx_objs *o)
{
    for (size_t i = 0; i < o->n; i++) {
        free(o->v[i].name);
        free(o->v[i].key);
        free(o->v[i].val);
    }
    free(o->v);
    o->v = NULL;
    o->n = 0;
}

/* "<ns>/<name>/<proto>/<port name or number>" */
static char *port_id(const struct kpx_svc *s, const struct kpx_port *p)
{
    if (p->name && *p->name)
        return xasprintf("%s/%s/%s/%s", s->ns, s->name, p->proto, p->name);
    return xasprintf("%s/%s/%s/%d", s->ns, s->name, p->proto, p->port);
}

/* Marks the packet for masquerade in postrouting (inline: a jump would make the kernel validate
 * the whole table's jumps at the commit of every change). */
#define MARK_MASQ "meta mark set meta mark | 0x4000"

/* How many of p's endpoints a spread over local_only (or all) endpoints takes. */
static size_t spread_count(const struct kpx_port *p, bool local_only)
{
    size_t n = 0;
    for (size_t i = 0; i < p->neps; i++)
        n += !local_only || p->eps[i].local;
    return n;
}

/* Affinity: a numgen vmap over the endpoint chains of eps (only the local ones if
 * local_only). */
static void spread_chains(struct buf *b, const char *sp, const struct kpx_port *p, bool local_only)
{
    buf_printf(b, "numgen random mod %zu vmap { ", spread_count(p, local_only));
    size_t j = 0;
    for (size_t i = 0; i < p->neps; i++) {
        if (local_only && !p->eps[i].local)
            continue;
        buf_printf(b, "%s%zu : goto endpoint-%s__%s/%d", j ? ", " : "", j, sp, p->eps[i].ip,
                   p->eps[i].port);
        j++;
    }
    buf_puts(b, " }\n");
}

/* No affinity: DNAT straight to the address a numgen map picks (one rule, no chain per
 * endpoint: a change rewrites one chain and nothing jumps). Hairpin traffic is marked in
 * filter-forward, for every Service at once (kpx_script_base). */
static void spread_dnat(struct buf *b, const struct kpx_port *p, bool local_only)
{
    size_t n = spread_count(p, local_only), j = 0;
    if (n == 1) {
        for (size_t i = 0; i < p->neps; i++)
            if (!local_only || p->eps[i].local)
                buf_printf(b, "meta l4proto %s dnat to %s:%d\n", p->proto, p->eps[i].ip,
                           p->eps[i].port);
        return;
    }
    buf_printf(b, "meta l4proto %s dnat ip addr . port to numgen random mod %zu map { ", p->proto,
               n);
    for (size_t i = 0; i < p->neps; i++) {
        if (local_only && !p->eps[i].local)
            continue;
        buf_printf(b, "%s%zu : %s . %d", j ? ", " : "", j, p->eps[i].ip, p->eps[i].port);
        j++;
    }
    buf_puts(b, " }\n");
}

/* Whether p's service chain picks its endpoint in a shared map service-endpoints-*: only
 * when the chain then names no endpoint (no affinity chains) and only ClusterIPs lead to it,
 * as the map's key starts with the packet's destination. An endpoint that changes is then
 * one element changed: libnftables' cache (every set of the table) stays small, and no
 * chain is rewritten. */
static bool spread_shared(const struct kpx_svc *s, const struct kpx_port *p)
{
    return s->affinity_timeout == 0 && p->node_port <= 0 && s->next_ips == 0 &&
           (!strcmp(p->proto, "tcp") || !strcmp(p->proto, "udp") || !strcmp(p->proto, "sctp"));
}

/* Which of p->proto's KPX_EP_MAPS maps holds the endpoints of <sp> (FNV-1a); a map per
 * protocol, as its key then needs no meta l4proto, which libnftables 1.0.6 cannot read back
 * beside th dport in a map's typeof. Several maps, as the
 * kernel checks a map's new element against every rule that uses the map, and every rule
 * binding a map against its elements: one map for all would make a full sync quadratic. */
static unsigned ep_map(const char *sp)
{
    uint32_t h = 2166136261u;
    for (; *sp; sp++)
        h = (h ^ (unsigned char)*sp) * 16777619u;
    return h % KPX_EP_MAPS;
}

/* The shared map's rule; its elements (ClusterIP . port . slot : endpoint) come from
 * shared_elements. */
static void spread_map(struct buf *b, const char *sp, const struct kpx_port *p)
{
    buf_printf(b,
               "meta l4proto %s dnat ip addr . port to ip daddr . %s dport . "
               "numgen random mod %zu map @service-endpoints-%s-%u\n",
               p->proto, p->proto, p->neps, p->proto, ep_map(sp));
}

static void shared_elements(const struct kpx_svc *s, const char *sp, const struct kpx_port *p,
                            struct kpx_objs *out)
{
    for (size_t v = 0; v < s->nvips; v++)
        for (size_t i = 0; i < p->neps; i++)
            obj_add(out, 'e', xasprintf("service-endpoints-%s-%u", p->proto, ep_map(sp)),
                    xasprintf("%s . %d . %zu", s->vips[v], p->port, i),
                    xasprintf("%s . %d", p->eps[i].ip, p->eps[i].port));
}

/* The spread over the endpoints (only the local ones if local_only); nothing when there are
 * none. */
static void spread_rule(struct buf *b, const struct kpx_svc *s, const char *sp,
                        const struct kpx_port *p, bool local_only)
{
    if (!spread_count(p, local_only))
        return;
    if (s->affinity_timeout > 0)
        spread_chains(b, sp, p, local_only);
    else if (!local_only && spread_shared(s, p))
        spread_map(b, sp, p);
    else
        spread_dnat(b, p, local_only);
}

static void port_objs(const struct kpx_svc *s, const struct kpx_port *p, struct kpx_objs *out)
{
    char *sp = port_id(s, p);
    bool external = p->node_port > 0 || s->next_ips > 0;
    struct buf b = {0};

    /* with affinity, the endpoints each their chain and affinity set */
    for (size_t i = 0; s->affinity_timeout > 0 && i < p->neps; i++) {
        const struct kpx_ep *e = &p->eps[i];
        char *ep = xasprintf("%s__%s/%d", sp, e->ip, e->port);
        obj_add(
            out, 's', xasprintf("affinity-%s", ep),
            xasprintf("type ipv4_addr; flags dynamic,timeout; timeout %ds;", s->affinity_timeout),
            NULL);
        buf_printf(&b, "update @affinity-%s { ip saddr }\n", ep);
        buf_printf(&b, "meta l4proto %s dnat to %s:%d\n", p->proto, e->ip, e->port);
        obj_add(out, 'c', xasprintf("endpoint-%s", ep), buf_take(&b), NULL);
        free(ep);
    }

    /* the service chain: affinity first, then a random pick */
    if (p->neps) {
        if (s->masq_all)
            buf_puts(&b, MARK_MASQ "\n");
        else if (s->cluster_cidr && *s->cluster_cidr)
            buf_printf(&b, "ip saddr != %s " MARK_MASQ "\n", s->cluster_cidr); /* off-cluster */
        for (size_t i = 0; s->affinity_timeout > 0 && i < p->neps; i++)
            buf_printf(&b, "ip saddr @affinity-%s__%s/%d goto endpoint-%s__%s/%d\n", sp,
                       p->eps[i].ip, p->eps[i].port, sp, p->eps[i].ip, p->eps[i].port);
        spread_rule(&b, s, sp, p, false);
        obj_add(out, 'c', xasprintf("service-%s", sp), buf_take(&b), NULL);
        if (spread_shared(s, p))
            shared_elements(s, sp, p, out);
    }

    /* NodePort and externalIPs: from outside the node */
    if (external && p->neps) {
        if (!s->ext_local) {
            buf_printf(&b, MARK_MASQ "\ngoto service-%s\n", sp);
        } else {
            /* the node itself may reach any endpoint (masqueraded, as kube-proxy does) */
            buf_printf(&b,
                       "fib saddr type local " MARK_MASQ "\n"
                       "fib saddr type local goto service-%s\n",
                       sp);
            size_t before = b.len;
            spread_rule(&b, s, sp, p, true);
            if (b.len == before)
                buf_puts(&b, "drop\n");
        }
        obj_add(out, 'c', xasprintf("external-%s", sp), buf_take(&b), NULL);
    }

    /* the map elements that lead here (or to the reject chain) */
    const char *svc_map = p->neps ? "service-ips" : "no-endpoint-services";
    const char *np_map = p->neps ? "service-nodeports" : "no-endpoint-nodeports";
    for (size_t i = 0; i < s->nvips; i++)
        obj_add(out, 'e', xstrdup(svc_map),
                xasprintf("%s . %s . %d", s->vips[i], p->proto, p->port),
                p->neps ? xasprintf("goto service-%s", sp) : xstrdup("goto reject-chain"));
    for (size_t i = 0; i < s->next_ips; i++)
        obj_add(out, 'e', xstrdup(svc_map),
                xasprintf("%s . %s . %d", s->ext_ips[i], p->proto, p->port),
                p->neps ? xasprintf("goto external-%s", sp) : xstrdup("goto reject-chain"));
    if (p->node_port > 0)
        obj_add(out, 'e', xstrdup(np_map), xasprintf("%s . %d", p->proto, p->node_port),
                p->neps ? xasprintf("goto external-%s", sp) : xstrdup("goto reject-chain"));
    free(sp);
}

void kpx_svc_objs(const struct kpx_svc *s, struct kpx_objs *out)
{
    if (!s->nvips)
        return; /* headless (or not allocated yet): no rules */
    for (size_t i = 0; i < s->nports; i++)
        port_objs(s, &s->ports[i], out);
}

static const struct kpx_obj *obj_find(const struct kpx_objs *o, const struct kpx_obj *x)
{
    for (size_t i = 0; i < o->n; i++) {
        const struct kpx_obj *y = &o->v[i];
        if (y->type == x->type && !strcmp(y->name, x->name) &&
            (x->type != 'e' || !strcmp(y->key, x->key)))
            return y;
    }
    return NULL;
}

static bool obj_same(const struct kpx_obj *a, const struct kpx_obj *b)
{
    return !strcmp(a->key, b->key) && (!a->val || (b->val && !strcmp(a->val, b->val)));
}

/* add rule lines of a chain's body */
static void chain_rules(struct buf *b, const char *table, const struct kpx_obj *c)
{
    for (const char *l = c->key; *l;) {
        const char *nl = strchr(l, '\n');
        size_t n = nl ? (size_t)(nl - l) : strlen(l);
        buf_printf(b, "add rule %s %s %.*s\n", table, c->name, (int)n, l);
        l += n + (nl != NULL);
    }
}

/* An element as "add element" lists it: a map's "key : value", a set's key. */
static void element_item(struct buf *b, const struct kpx_obj *n)
{
    buf_puts(b, n->key);
    if (n->val)
        buf_printf(b, " : %s", n->val);
}

void kpx_script_diff_in(struct buf *b, const char *table, const struct kpx_objs *old,
                        const struct kpx_objs *nw)
{
    for (size_t i = 0; i < old->n; i++) {
        const struct kpx_obj *o = &old->v[i], *n = NULL;
        if (o->type == 'e' && (!(n = obj_find(nw, o)) || !obj_same(o, n)))
            buf_printf(b, "delete element %s %s { %s }\n", table, o->name, o->key);
    }
    for (size_t i = 0; i < nw->n; i++) {
        const struct kpx_obj *n = &nw->v[i];
        if (n->type == 's' && !obj_find(old, n))
            buf_printf(b, "add set %s %s { %s }\n", table, n->name, n->key);
        if (n->type == 'c' && !obj_find(old, n))
            buf_printf(b, "add chain %s %s\n", table, n->name);
    }
    for (size_t i = 0; i < nw->n; i++) {
        const struct kpx_obj *n = &nw->v[i], *o = NULL;
        if (n->type != 'c')
            continue;
        o = obj_find(old, n);
        if (o && obj_same(o, n))
            continue;
        if (o)
            buf_printf(b, "flush chain %s %s\n", table, n->name);
        chain_rules(b, table, n);
    }
    const char *open = NULL; /* the map whose "add element" is being written */
    for (size_t i = 0; i < nw->n; i++) {
        const struct kpx_obj *n = &nw->v[i], *o = NULL;
        if (n->type != 'e' || ((o = obj_find(old, n)) && obj_same(o, n)))
            continue;
        /* a run of elements of one map in one command: libnftables evaluates each command
         * on its own, and a proxy's full sync adds tens of thousands of them (a set's
         * elements, which may be intervals, each in a command of their own as before) */
        if (open && n->val && !strcmp(open, n->name))
            buf_puts(b, ", ");
        else
            buf_printf(b, "%sadd element %s %s { ", open ? " }\n" : "", table, n->name);
        element_item(b, n);
        open = n->val ? n->name : NULL;
        if (!open)
            buf_puts(b, " }\n");
    }
    if (open)
        buf_puts(b, " }\n");
    /* chains that go: emptied first, as they may jump to one another */
    for (size_t i = 0; i < old->n; i++)
        if (old->v[i].type == 'c' && !obj_find(nw, &old->v[i]))
            buf_printf(b, "flush chain %s %s\n", table, old->v[i].name);
    for (size_t i = 0; i < old->n; i++)
        if (old->v[i].type == 'c' && !obj_find(nw, &old->v[i]))
            buf_printf(b, "delete chain %s %s\n", table, old->v[i].name);
    for (size_t i = 0; i < old->n; i++)
        if (old->v[i].type == 's' && !obj_find(nw, &old->v[i]))
            buf_printf(b, "delete set %s %s\n", table, old->v[i].name);
}

void kpx_script_diff(struct buf *b, const struct kpx_objs *old, const struct kpx_objs *nw)
{
    kpx_script_diff_in(b, KPX_TABLE, old, nw);
}

void kpx_script_base(struct buf *b)
{
    buf_puts(
        b, "add table " KPX_TABLE "\n"
           "delete table " KPX_TABLE "\n"
           "table " KPX_TABLE " {\n"
           "  comment \"rules for Services, by coracle-kubelet\"\n"
           "  map service-ips { type ipv4_addr . inet_proto . inet_service : verdict; }\n"
           "  map service-nodeports { type inet_proto . inet_service : verdict; }\n"
           "  map no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict; }\n"
           "  map no-endpoint-nodeports { type inet_proto . inet_service : verdict; }\n"
           "  chain reject-chain { reject; }\n"
           "  chain masquerading {\n"
           "    meta mark & 0x4000 == 0 return\n"
           "    meta mark set meta mark ^ 0x4000\n"
           "    masquerade fully-random\n"
           "  }\n"
           "  chain services {\n"
           "    ip daddr . meta l4proto . th dport vmap @service-ips\n"
           "    fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport "
           "vmap @service-nodeports\n"
           "  }\n"
           "  chain endpoints-check {\n"
           "    ip daddr . meta l4proto . th dport vmap @no-endpoint-services\n"
           "    fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport "
           "vmap @no-endpoint-nodeports\n"
           "  }\n"
           "  chain nat-prerouting { type nat hook prerouting priority dstnat; jump services; }\n"
           "  chain nat-output { type nat hook output priority -100; jump services; }\n"
           "  chain nat-postrouting { type nat hook postrouting priority srcnat; "
           "jump masquerading; }\n"
           "  chain filter-input { type filter hook input priority -110; "
           "ct state new jump endpoints-check; }\n"
           "  chain filter-forward {\n"
           "    type filter hook forward priority -110;\n"
           "    ct state new jump endpoints-check\n"
           /* hairpin: a DNATed connection routed back out of the interface it came in by
            * (a pod to a Service endpoint on its own bridge, itself included) is
            * masqueraded, else the endpoint's reply would go straight over the bridge and
            * skip the reverse NAT; the bridge needs no br_netfilter then */
           "    ct state new ct status dnat fib daddr . iif oif exists " MARK_MASQ "\n"
           "  }\n"
           "  chain filter-output { type filter hook output priority -110; "
           "ct state new jump endpoints-check; }\n"
           "}\n");
    static const char *const protos[] = {"tcp", "udp", "sctp"};
    for (size_t p = 0; p < 3; p++)
        for (unsigned i = 0; i < KPX_EP_MAPS; i++)
            buf_printf(b,
                       "add map " KPX_TABLE " service-endpoints-%s-%u { typeof ip daddr . %s dport "
                       ". numgen random mod 1 : ip daddr . %s dport; }\n",
                       protos[p], i, protos[p], protos[p]);
}
