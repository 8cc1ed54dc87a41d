/*
 * admit_netpol: NetworkPolicies (networking.k8s.io/v1), their defaults and
 * checks as kube-apiserver's SetDefaults_NetworkPolicy and
 * ValidateNetworkPolicySpec write them (messages and field paths).
 */
#include "config.h"
#include "admit_int.h"
#include "buf.h"
#include "cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void default_ports(Coracle__V1__NetworkPolicyPort **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!v[i]->protocol || !*v[i]->protocol) {
            free(v[i]->protocol);
            v[i]->protocol = xstrdup("TCP");
        }
}

void admit_netpol_defaults(Coracle__V1__NetworkPolicy *np)
{
    Coracle__V1__NetworkPolicySpec *sp = np->spec;
    if (!sp) {
        sp = np->spec = xmalloc(sizeof *sp);
        coracle__v1__network_policy_spec__init(sp);
    }
    for (size_t i = 0; i < sp->n_ingress; i++)
        default_ports(sp->ingress[i]->ports, sp->ingress[i]->n_ports);
    for (size_t i = 0; i < sp->n_egress; i++)
        default_ports(sp->egress[i]->ports, sp->egress[i]->n_ports);
    if (sp->n_policytypes)
        return;
    sp->policytypes = xcalloc(2, sizeof *sp->policytypes);
    sp->policytypes[sp->n_policytypes++] = xstrdup("Ingress");
    if (sp->n_egress)
        sp->policytypes[sp->n_policytypes++] = xstrdup("Egress");
}

/* ---- validation ---- */

static const char *const port_msg = "must be between 1 and 65535, inclusive";

/* ValidateNetworkPolicyPort at path ("spec.ingress[0].ports[1]"). */
static void check_port(struct errs *e, const char *path, const Coracle__V1__NetworkPolicyPort *p)
{
    const char *pr = p->protocol ? p->protocol : "";
    if (strcmp(pr, "TCP") && strcmp(pr, "UDP") && strcmp(pr, "SCTP"))
        admit_err(
            e,
            "%s.protocol: Unsupported value: \"%s\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
            path, pr);
    if (!p->port) {
        if (p->has_endport)
            admit_err(e,
                      "%s.endPort: Invalid value: %d: may not be specified when `port` is not "
                      "specified",
                      path, p->endport);
        return;
    }
    if (p->port->type == 0) {
        int port = p->port->intval;
        if (port < 1 || port > 65535)
            admit_err(e, "%s.port: Invalid value: %d: %s", path, port, port_msg);
        if (p->has_endport) {
            if (p->endport < port)
                admit_err(e,
                          "%s.endPort: Invalid value: %d: must be greater than or equal to `port`",
                          path, port);
            if (p->endport < 1 || p->endport > 65535)
                admit_err(e, "%s.endPort: Invalid value: %d: %s", path, p->endport, port_msg);
        }
        return;
    }
    if (p->has_endport)
        admit_err(e,
                  "%s.endPort: Invalid value: %d: may not be specified when `port` is non-numeric",
                  path, p->endport);
    const char *name = p->port->strval ? p->port->strval : "";
    const char *why = admit_port_name_err(name);
    if (why)
        admit_err(e, "%s.port: Invalid value: \"%s\": %s", path, name, why);
}

/* An IP range of either family: the address bytes and the prefix length. */
struct range {
    int family, bits;
    unsigned char a[16];
};

static bool range_parse(const char *s, struct range *r)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    if (!cidr_valid(s) || !slash || (size_t)(slash - s) >= sizeof buf)
        return false;
    memcpy(buf, s, (size_t)(slash - s));
    buf[slash - s] = '\0';
    r->family = strchr(buf, ':') ? AF_INET6 : AF_INET;
    r->bits = atoi(slash + 1);
    return inet_pton(r->family, buf, r->a) == 1;
}

/* Whether inner's address lies in outer (net.IPNet.Contains of the same family). */
static bool range_contains(const struct range *outer, const struct range *inner)
{
    if (outer->family != inner->family)
        return false;
    for (int i = 0; i < outer->bits; i++) {
        int m = 0x80 >> (i % 8);
        if ((outer->a[i / 8] & m) != (inner->a[i / 8] & m))
            return false;
    }
    return true;
}

static const char *const cidr_msg =
    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/* ValidateIPBlock at path. */
static void check_ipblock(struct errs *e, const char *path, const Coracle__V1__IPBlock *b)
{
    if (!b->cidr || !*b->cidr) {
        admit_err(e, "%s.cidr: Required value", path);
        return;
    }
    struct range c, x;
    if (!range_parse(b->cidr, &c)) {
        admit_err(e, "%s.cidr: Invalid value: \"%s\": %s", path, b->cidr, cidr_msg);
        return;
    }
    for (size_t i = 0; i < b->n_except; i++) {
        const char *s = b->except[i];
        if (!range_parse(s, &x))
            admit_err(e, "%s.except[%zu]: Invalid value: \"%s\": %s", path, i, s, cidr_msg);
        else if (!range_contains(&c, &x) || c.bits >= x.bits)
            admit_err(e, "%s.except[%zu]: Invalid value: \"%s\": must be a strict subset of `cidr`",
                      path, i, s);
    }
}

/* ValidateNetworkPolicyPeer at path. */
static void check_peer(struct errs *e, const char *path, const Coracle__V1__NetworkPolicyPeer *p)
{
    int n = 0;
    char *sub;
    if (p->podselector) {
        n++;
        admit_selector_errs(e, sub = xasprintf("%s.podSelector", path), p->podselector);
        free(sub);
    }
    if (p->namespaceselector) {
        n++;
        admit_selector_errs(e, sub = xasprintf("%s.namespaceSelector", path), p->namespaceselector);
        free(sub);
    }
    if (p->ipblock) {
        n++;
        check_ipblock(e, sub = xasprintf("%s.ipBlock", path), p->ipblock);
        free(sub);
    }
    if (!n)
        admit_err(e, "%s: Required value: must specify a peer", path);
    else if (n > 1 && p->ipblock)
        admit_err(e, "%s: Forbidden: may not specify both ipBlock and another peer", path);
}

/* One rule's ports and peers (what: "ingress" or "egress"; peers: "from" or "to"). */
static void check_rule(struct errs *e, const char *what, size_t i,
                       Coracle__V1__NetworkPolicyPort *const *ports, size_t nports,
                       const char *peers_name, Coracle__V1__NetworkPolicyPeer *const *peers,
                       size_t npeers)
{
    for (size_t j = 0; j < nports; j++) {
        char *p = xasprintf("spec.%s[%zu].ports[%zu]", what, i, j);
        check_port(e, p, ports[j]);
        free(p);
    }
    for (size_t j = 0; j < npeers; j++) {
        char *p = xasprintf("spec.%s[%zu].%s[%zu]", what, i, peers_name, j);
        check_peer(e, p, peers[j]);
        free(p);
    }
}

void admit_netpol_validate(struct errs *e, const Coracle__V1__NetworkPolicy *np)
{
    const Coracle__V1__NetworkPolicySpec *sp = np->spec;
    if (!sp)
        return;
    if (sp->podselector)
        admit_selector_errs(e, "spec.podSelector", sp->podselector);
    for (size_t i = 0; i < sp->n_ingress; i++) {
        const Coracle__V1__NetworkPolicyIngressRule *r = sp->ingress[i];
        check_rule(e, "ingress", i, r->ports, r->n_ports, "from", r->from, r->n_from);
    }
    for (size_t i = 0; i < sp->n_egress; i++) {
        const Coracle__V1__NetworkPolicyEgressRule *r = sp->egress[i];
        check_rule(e, "egress", i, r->ports, r->n_ports, "to", r->to, r->n_to);
    }
    if (sp->n_policytypes > 2) {
        struct buf b = {0};
        for (size_t i = 0; i < sp->n_policytypes; i++)
            buf_printf(&b, "%s\"%s\"", i ? ", " : "", sp->policytypes[i]);
        admit_err(e,
                  "spec.policyTypes: Invalid value: []string{%s}: may not specify more than two "
                  "policyTypes",
                  b.p);
        buf_free(&b);
        return;
    }
    for (size_t i = 0; i < sp->n_policytypes; i++) {
        const char *t = sp->policytypes[i];
        if (strcmp(t, "Ingress") && strcmp(t, "Egress"))
            admit_err(e,
                      "spec.policyTypes[%zu]: Unsupported value: \"%s\": supported values: "
                      "\"Ingress\", \"Egress\"",
                      i, t);
    }
}
