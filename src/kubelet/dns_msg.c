/*
 * dns_msg: one DNS query in, its answer out (dns.h). ldns parses the
 * query and writes the answer; the names follow the Kubernetes DNS
 * specification as CoreDNS' kubernetes plugin answers it: TTL 5, the
 * answer flagged authoritative without recursion available, NXDOMAIN and
 * NODATA with the zone's SOA in the authority section, SRV weights
 * 100/n at priority 0 and the targets' A records in the additional
 * section. Pure: everything it knows comes from a struct kdns_src.
 */
#include "config.h"
#include "dns.h"
#include "util.h"

#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 5
#define EDNS_SIZE 1232 /* what we say we take over UDP (the DNS flag day's size) */

/* One answer being built. */
struct ans {
    const struct kdns_src *src;
    ldns_pkt *p;
    const ldns_rdf *qowner; /* the question's name as the client wrote it */
    ldns_rr_type qtype;
    bool exists;      /* the name exists: NODATA rather than NXDOMAIN when nothing matched */
    const char *zone; /* the SOA's: src->domain, or in-addr.arpa for reverse names */
};

static ldns_rr *rr_new(const ldns_rdf *owner, ldns_rr_type t)
{
    ldns_rr *rr = ldns_rr_new();
    ldns_rr_set_owner(rr, ldns_rdf_clone(owner));
    ldns_rr_set_type(rr, t);
    ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(rr, KDNS_TTL);
    return rr;
}

/* Adds rr to section, or frees it when one of its rdfs failed (rdf NULL). */
static void rr_add(struct ans *a, ldns_pkt_section sec, ldns_rr *rr, bool ok)
{
    if (ok)
        ldns_pkt_push_rr(a->p, sec, rr);
    else
        ldns_rr_free(rr);
}

static bool push(ldns_rr *rr, ldns_rdf *f)
{
    return f && ldns_rr_push_rdf(rr, f);
}

static void add_a(struct ans *a, ldns_pkt_section sec, const ldns_rdf *owner, const char *ip)
{
    ldns_rr *rr = rr_new(owner, LDNS_RR_TYPE_A);
    rr_add(a, sec, rr, push(rr, ldns_rdf_new_frm_str(LDNS_RDF_TYPE_A, ip)));
}

static ldns_rdf *dname(const char *fmt, const char *a, const char *b, const char *c, const char *d)
{
    char *s = xasprintf(fmt, a, b, c, d);
    ldns_rdf *r = ldns_dname_new_frm_str(s);
    free(s);
    return r;
}

static void add_soa(struct ans *a, ldns_pkt_section sec)
{
    const char *dom = a->zone;
    ldns_rdf *zone = ldns_dname_new_frm_str(dom);
    if (!zone)
        return;
    ldns_rr *rr = rr_new(zone, LDNS_RR_TYPE_SOA);
    ldns_rdf_deep_free(zone);
    bool ok = push(rr, dname("ns.dns.%s.%s%s%s", dom, "", "", ""));
    ok = ok && push(rr, dname("hostmaster.%s.%s%s%s", dom, "", "", ""));
    static const uint32_t times[] = {7200, 1800, 86400, KDNS_TTL};
    ok = ok && push(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_INT32, a->src->serial));
    for (size_t i = 0; i < ARRAY_SIZE(times); i++)
        ok = ok && push(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, times[i]));
    rr_add(a, sec, rr, ok);
}

/* ------------------------------------------------------------ endpoints */
struct ep {
    char ip[16];
    char host[64]; /* its hostname, or its dashed address */
    int port;      /* the port asked for; 0 when the slice lacks it */
};
struct eps {
    const char *port_name, *proto; /* NULL: any (no port wanted) */
    struct ep *v;
    size_t n;
};

static bool ep_ready(const Coracle__V1__Endpoint *e)
{
    const Coracle__V1__EndpointConditions *c = e->conditions;
    return !c || !c->has_ready || c->ready;
}

static bool proto_eq(const char *want, const char *proto)
{
    return !strcasecmp(want, proto && *proto ? proto : "TCP");
}

static void gather(const Coracle__V1__EndpointSlice *s, void *arg)
{
    struct eps *g = arg;
    if (s->addresstype && strcmp(s->addresstype, "IPv4"))
        return;
    int port = 0;
    for (size_t i = 0; g->port_name && i < s->n_ports; i++) {
        const Coracle__V1__EndpointPort *p = s->ports[i];
        if (p->name && !strcmp(p->name, g->port_name) && proto_eq(g->proto, p->protocol))
            port = p->has_port ? p->port : 0;
    }
    if (g->port_name && !port)
        return;
    for (size_t i = 0; i < s->n_endpoints; i++) {
        const Coracle__V1__Endpoint *e = s->endpoints[i];
        struct in_addr in;
        if (!e->n_addresses || !ep_ready(e) || inet_pton(AF_INET, e->addresses[0], &in) != 1)
            continue;
        struct ep x = {.port = port};
        snprintf(x.ip, sizeof x.ip, "%s", e->addresses[0]);
        if (e->hostname && *e->hostname && strlen(e->hostname) < sizeof x.host) {
            strcpy(x.host, e->hostname);
        } else {
            strcpy(x.host, x.ip);
            for (char *c = x.host; *c; c++)
                *c = *c == '.' ? '-' : *c;
        }
        g->v = xrealloc(g->v, (g->n + 1) * sizeof *g->v);
        g->v[g->n++] = x;
    }
}

static void eps_get(struct ans *a, const char *ns, const char *svc, struct eps *g)
{
    a->src->slices(a->src->arg, ns, svc, gather, g);
}

static bool headless(const Coracle__V1__ServiceSpec *sp)
{
    return sp->clusterip && !strcmp(sp->clusterip, "None");
}

static bool is_v4(const char *ip)
{
    struct in_addr in;
    return ip && inet_pton(AF_INET, ip, &in) == 1;
}

/* The Service's A records at owner: its IPv4 ClusterIPs, or a headless one's endpoints. */
static void svc_a(struct ans *a, ldns_pkt_section sec, const ldns_rdf *owner, const char *ns,
                  const char *name, const Coracle__V1__ServiceSpec *sp)
{
    if (!headless(sp)) {
        size_t n = 0;
        for (size_t i = 0; i < sp->n_clusterips; i++)
            if (is_v4(sp->clusterips[i])) {
                add_a(a, sec, owner, sp->clusterips[i]);
                n++;
            }
        if (!n && is_v4(sp->clusterip))
            add_a(a, sec, owner, sp->clusterip);
        return;
    }
    struct eps g = {0};
    eps_get(a, ns, name, &g);
    for (size_t i = 0; i < g.n; i++)
        add_a(a, sec, owner, g.v[i].ip);
    free(g.v);
}

static void add_srv(struct ans *a, const ldns_rdf *owner, int weight, int port, ldns_rdf *target,
                    const char *ip, const char *ns, const char *name,
                    const Coracle__V1__ServiceSpec *sp)
{
    ldns_rr *rr = rr_new(owner, LDNS_RR_TYPE_SRV);
    bool ok = push(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, 0));
    ok = ok && push(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, (uint16_t)weight));
    ok = ok && push(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, (uint16_t)port));
    ok = ok && push(rr, ldns_rdf_clone(target));
    rr_add(a, LDNS_SECTION_ANSWER, rr, ok);
    if (!ok)
        return;
    if (ip)
        add_a(a, LDNS_SECTION_ADDITIONAL, target, ip);
    else
        svc_a(a, LDNS_SECTION_ADDITIONAL, target, ns, name, sp);
}

/* SRV records of the Service's named ports (port_name NULL: all of them) over proto. */
static void svc_srv(struct ans *a, const char *ns, const char *name,
                    const Coracle__V1__ServiceSpec *sp, const char *port_name, const char *proto)
{
    const char *dom = a->src->domain;
    for (size_t i = 0; i < sp->n_ports; i++) {
        const Coracle__V1__ServicePort *p = sp->ports[i];
        if (!p->name || !*p->name || (port_name && strcmp(p->name, port_name)) ||
            (proto && !proto_eq(proto, p->protocol)))
            continue;
        const char *pr = p->protocol && *p->protocol ? p->protocol : "TCP";
        if (!headless(sp)) {
            ldns_rdf *t = dname("%s.%s.svc.%s.", name, ns, dom, "");
            if (t)
                add_srv(a, a->qowner, 100, p->port, t, NULL, ns, name, sp);
            ldns_rdf_deep_free(t);
            continue;
        }
        struct eps g = {.port_name = p->name, .proto = pr};
        eps_get(a, ns, name, &g);
        for (size_t j = 0; j < g.n; j++) {
            ldns_rdf *t = dname("%s.%s.%s.svc.%s.", g.v[j].host, name, ns, dom);
            if (t)
                add_srv(a, a->qowner, (int)(100 / g.n), g.v[j].port, t, g.v[j].ip, ns, name, sp);
            ldns_rdf_deep_free(t);
        }
        free(g.v);
    }
}

/* ------------------------------------------------------------ names */
/* <svc>.<ns>.svc.<domain> */
static void name_service(struct ans *a, const char *ns, const char *name)
{
    const Coracle__V1__Service *svc = a->src->service(a->src->arg, ns, name);
    if (!svc || !svc->spec)
        return;
    a->exists = true;
    const Coracle__V1__ServiceSpec *sp = svc->spec;
    if (sp->type && !strcmp(sp->type, "ExternalName")) {
        if (!sp->externalname || !*sp->externalname)
            return;
        ldns_rr *rr = rr_new(a->qowner, LDNS_RR_TYPE_CNAME);
        char *t = xasprintf("%s.", sp->externalname);
        rr_add(a, LDNS_SECTION_ANSWER, rr, push(rr, ldns_dname_new_frm_str(t)));
        free(t);
        return;
    }
    if (a->qtype == LDNS_RR_TYPE_A || a->qtype == LDNS_RR_TYPE_ANY)
        svc_a(a, LDNS_SECTION_ANSWER, a->qowner, ns, name, sp);
    else if (a->qtype == LDNS_RR_TYPE_SRV)
        svc_srv(a, ns, name, sp, NULL, NULL);
}

/* <host>.<svc>.<ns>.svc.<domain>: an endpoint by its hostname or dashed address */
static void name_endpoint(struct ans *a, const char *host, const char *ns, const char *name)
{
    const Coracle__V1__Service *svc = a->src->service(a->src->arg, ns, name);
    if (!svc || !svc->spec)
        return;
    struct eps g = {0};
    eps_get(a, ns, name, &g);
    for (size_t i = 0; i < g.n; i++) {
        if (strcmp(g.v[i].host, host))
            continue;
        a->exists = true;
        if (a->qtype == LDNS_RR_TYPE_A || a->qtype == LDNS_RR_TYPE_ANY)
            add_a(a, LDNS_SECTION_ANSWER, a->qowner, g.v[i].ip);
    }
    free(g.v);
}

/* _<port>._<proto>.<svc>.<ns>.svc.<domain> */
static void name_srv(struct ans *a, const char *port, const char *proto, const char *ns,
                     const char *name)
{
    const Coracle__V1__Service *svc = a->src->service(a->src->arg, ns, name);
    if (!svc || !svc->spec || (svc->spec->type && !strcmp(svc->spec->type, "ExternalName")))
        return;
    const Coracle__V1__ServiceSpec *sp = svc->spec;
    for (size_t i = 0; i < sp->n_ports; i++)
        a->exists |= sp->ports[i]->name && !strcmp(sp->ports[i]->name, port) &&
                     proto_eq(proto, sp->ports[i]->protocol);
    if (a->exists && (a->qtype == LDNS_RR_TYPE_SRV || a->qtype == LDNS_RR_TYPE_ANY))
        svc_srv(a, ns, name, sp, port, proto);
}

/* <a-b-c-d>.<ns>.pod.<domain> */
static void name_pod(struct ans *a, const char *dashed)
{
    char ip[16];
    if (strlen(dashed) >= sizeof ip)
        return;
    strcpy(ip, dashed);
    for (char *c = ip; *c; c++)
        *c = *c == '-' ? '.' : *c;
    if (!is_v4(ip) || strchr(dashed, '.'))
        return;
    a->exists = true;
    if (a->qtype == LDNS_RR_TYPE_A || a->qtype == LDNS_RR_TYPE_ANY)
        add_a(a, LDNS_SECTION_ANSWER, a->qowner, ip);
}

static void name_apex(struct ans *a, size_t n, char **l)
{
    if (n == 0) {
        a->exists = true;
        if (a->qtype == LDNS_RR_TYPE_NS) {
            ldns_rr *rr = rr_new(a->qowner, LDNS_RR_TYPE_NS);
            rr_add(a, LDNS_SECTION_ANSWER, rr,
                   push(rr, dname("ns.dns.%s.%s%s%s", a->src->domain, "", "", "")));
        }
        return; /* SOA: add_soa puts it in the answer */
    }
    if (strcmp(l[0], "dns-version"))
        return;
    a->exists = true;
    if (a->qtype == LDNS_RR_TYPE_TXT) {
        ldns_rr *rr = rr_new(a->qowner, LDNS_RR_TYPE_TXT);
        rr_add(a, LDNS_SECTION_ANSWER, rr,
               push(rr, ldns_rdf_new_frm_str(LDNS_RDF_TYPE_STR, "1.1.0")));
    }
}

/* Fills a from the labels l[0..n) left of the domain (lower case). */
static void lookup(struct ans *a, size_t n, char **l)
{
    if (n == 0 || (n == 1 && strcmp(l[0], "svc") && strcmp(l[0], "pod"))) {
        name_apex(a, n, l);
        return;
    }
    const char *top = l[n - 1];
    if (n == 1) {
        a->exists = true; /* svc.<domain>, pod.<domain> */
    } else if (n == 2) {
        a->exists = a->src->namespace_used(a->src->arg, l[0]);
    } else if (!strcmp(top, "pod")) {
        if (n == 3)
            name_pod(a, l[0]);
    } else if (!strcmp(top, "svc")) {
        if (n == 3)
            name_service(a, l[1], l[0]);
        else if (n == 4)
            name_endpoint(a, l[0], l[2], l[1]);
        else if (n == 5 && l[0][0] == '_' && l[1][0] == '_')
            name_srv(a, l[0] + 1, l[1] + 1, l[3], l[2]);
    }
}

/* The question's name, lower case, without the trailing dot (malloc'd). */
static char *qname_str(const ldns_rdf *owner)
{
    ldns_rdf *c = ldns_rdf_clone(owner);
    ldns_dname2canonical(c);
    char *s = ldns_rdf2str(c);
    ldns_rdf_deep_free(c);
    if (!s)
        return NULL;
    size_t len = strlen(s);
    if (len && s[len - 1] == '.')
        s[len - 1] = '\0';
    return s;
}

/* The labels of name left of domain: OUT n; -1 when name is not under domain. */
static int split(char *name, const char *domain, char **l, size_t *n)
{
    size_t nl = strlen(name), dl = strlen(domain);
    *n = 0;
    if (nl == dl && !strcmp(name, domain))
        return 0;
    if (nl <= dl + 1 || strcmp(name + nl - dl, domain) || name[nl - dl - 1] != '.')
        return -1;
    name[nl - dl - 1] = '\0';
    for (char *save = NULL, *t = strtok_r(name, ".", &save); t; t = strtok_r(NULL, ".", &save)) {
        if (*n == MAX_LABELS) {
            *n = MAX_LABELS + 1;
            break;
        }
        l[(*n)++] = t;
    }
    return 0;
}

/* ------------------------------------------------------------ reverse names */
/* The IPv4 address (OUT ip, 16 bytes) a name <d>.<c>.<b>.<a>.in-addr.arpa (lower case, no
 * trailing dot) stands for, in decimal without leading zeros; -1 when it is none. */
static int reverse_ip(const char *name, char *ip)
{
    static const char suffix[] = ".in-addr.arpa";
    size_t len = strlen(name), sl = sizeof suffix - 1;
    unsigned o[4];
    int end = 0;
    if (len <= sl || len - sl > 15 || strcmp(name + len - sl, suffix) ||
        sscanf(name, "%3u.%3u.%3u.%3u%n", &o[3], &o[2], &o[1], &o[0], &end) != 4 ||
        (size_t)end != len - sl || o[0] > 255 || o[1] > 255 || o[2] > 255 || o[3] > 255)
        return -1;
    char back[16]; /* written again: no sign, space or leading zero got through sscanf */
    snprintf(back, sizeof back, "%u.%u.%u.%u", o[3], o[2], o[1], o[0]);
    if (strncmp(back, name, len - sl) || back[len - sl])
        return -1;
    snprintf(ip, 16, "%u.%u.%u.%u", o[0], o[1], o[2], o[3]);
    return 0;
}

/* A reverse lookup of one address: the names found so far. */
struct rev {
    struct ans *a;
    const char *ip;
    char **names;
    size_t n;
};

/* Adds the PTR record to name (unless an earlier one named it). */
static void rev_add(struct rev *r, char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->names[i], name)) {
            free(name);
            return;
        }
    r->names = xrealloc(r->names, (r->n + 1) * sizeof *r->names);
    r->names[r->n++] = name;
    r->a->exists = true;
    if (r->a->qtype != LDNS_RR_TYPE_PTR && r->a->qtype != LDNS_RR_TYPE_ANY)
        return;
    ldns_rr *rr = rr_new(r->a->qowner, LDNS_RR_TYPE_PTR);
    rr_add(r->a, LDNS_SECTION_ANSWER, rr, push(rr, ldns_dname_new_frm_str(name)));
}

/* A Service whose ClusterIP is the address: its name (the first such Service only, as
 * CoreDNS answers). */
static void rev_service(const Coracle__V1__Service *s, void *arg)
{
    struct rev *r = arg;
    const Coracle__V1__ServiceSpec *sp = s->spec;
    if (r->n || !sp || !s->metadata || !s->metadata->name || !s->metadata->namespace_)
        return;
    bool hit = sp->clusterip && !strcmp(sp->clusterip, r->ip);
    for (size_t i = 0; i < sp->n_clusterips; i++)
        hit |= !strcmp(sp->clusterips[i], r->ip);
    if (hit)
        rev_add(r, xasprintf("%s.%s.svc.%s.", s->metadata->name, s->metadata->namespace_,
                             r->a->src->domain));
}

/* A slice's ready endpoints with a hostname and the address: <host>.<svc>.<ns>.svc. */
static void rev_slice(const Coracle__V1__EndpointSlice *s, void *arg)
{
    struct rev *r = arg;
    const char *svc = NULL;
    for (size_t i = 0; s->metadata && i < s->metadata->n_labels; i++)
        if (!strcmp(s->metadata->labels[i]->key, "kubernetes.io/service-name"))
            svc = s->metadata->labels[i]->value;
    if (!svc || !*svc || !s->metadata->namespace_ ||
        (s->addresstype && strcmp(s->addresstype, "IPv4")))
        return;
    for (size_t i = 0; i < s->n_endpoints; i++) {
        const Coracle__V1__Endpoint *e = s->endpoints[i];
        if (e->n_addresses && !strcmp(e->addresses[0], r->ip) && ep_ready(e) && e->hostname &&
            *e->hostname)
            rev_add(r, xasprintf("%s.%s.%s.svc.%s.", e->hostname, svc, s->metadata->namespace_,
                                 r->a->src->domain));
    }
}

/* Answers a name outside the zone when it is the reverse name of a ClusterIP or of a ready
 * endpoint with a hostname; forwards it otherwise. */
static enum kdns_verdict answer_reverse(const struct kdns_src *src, const ldns_rr *qr,
                                        const char *name, ldns_pkt *p)
{
    char ip[16];
    ldns_rr_class cl = ldns_rr_get_class(qr);
    if (!src->ready || !src->each_service || !src->each_slice ||
        (cl != LDNS_RR_CLASS_IN && cl != LDNS_RR_CLASS_ANY) || reverse_ip(name, ip) < 0)
        return KDNS_FORWARD;
    struct ans a = {src, p, ldns_rr_owner(qr), ldns_rr_get_type(qr), false, "in-addr.arpa"};
    struct rev r = {&a, ip, NULL, 0};
    src->each_service(src->arg, rev_service, &r);
    if (!r.n)
        src->each_slice(src->arg, rev_slice, &r);
    for (size_t i = 0; i < r.n; i++)
        free(r.names[i]);
    free(r.names);
    if (!a.exists)
        return KDNS_FORWARD;
    ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, ldns_rr_clone(qr));
    ldns_pkt_set_aa(p, true);
    if (!ldns_pkt_ancount(p))
        add_soa(&a, LDNS_SECTION_AUTHORITY); /* NODATA: another type than PTR */
    return KDNS_ANSWER;
}

/* ------------------------------------------------------------ messages */
/* Sets the answer's header from the query's. */
static void header(ldns_pkt *p, const ldns_pkt *q)
{
    ldns_pkt_set_id(p, ldns_pkt_id(q));
    ldns_pkt_set_qr(p, true);
    ldns_pkt_set_opcode(p, ldns_pkt_get_opcode(q));
    ldns_pkt_set_rd(p, ldns_pkt_rd(q));
    ldns_pkt_set_cd(p, ldns_pkt_cd(q));
    if (ldns_pkt_edns(q))
        ldns_pkt_set_edns_udp_size(p, EDNS_SIZE);
}

/* A header-only answer to q with rcode (FORMERR for what ldns cannot read). */
static int header_only(const uint8_t *q, size_t qlen, int rcode, uint8_t **out, size_t *outlen)
{
    if (qlen < LDNS_HEADER_SIZE || (q[2] & 0x80))
        return -1; /* too short, or itself an answer: never answer those */
    uint8_t *a = xcalloc(1, LDNS_HEADER_SIZE);
    a[0] = q[0];
    a[1] = q[1];
    a[2] = (uint8_t)(0x80 | (q[2] & 0x79)); /* QR, the opcode and RD */
    a[3] = (uint8_t)(rcode & 0x0f);
    *out = a;
    *outlen = LDNS_HEADER_SIZE;
    return 0;
}

int kdns_servfail(const uint8_t *q, size_t qlen, uint8_t **out, size_t *outlen)
{
    ldns_pkt *qp = NULL;
    if (ldns_wire2pkt(&qp, q, qlen) != LDNS_STATUS_OK) {
        ldns_pkt_free(qp);
        return header_only(q, qlen, LDNS_RCODE_SERVFAIL, out, outlen);
    }
    ldns_pkt *p = ldns_pkt_new();
    header(p, qp);
    ldns_pkt_set_ra(p, true);
    ldns_pkt_set_rcode(p, LDNS_RCODE_SERVFAIL);
    for (size_t i = 0; i < ldns_rr_list_rr_count(ldns_pkt_question(qp)); i++)
        ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION,
                         ldns_rr_clone(ldns_rr_list_rr(ldns_pkt_question(qp), i)));
    int rc = ldns_pkt2wire(out, p, outlen) == LDNS_STATUS_OK ? 0 : -1;
    ldns_pkt_free(p);
    ldns_pkt_free(qp);
    return rc;
}

size_t kdns_udp_max(const uint8_t *q, size_t qlen)
{
    ldns_pkt *p = NULL;
    size_t max = LDNS_MIN_BUFLEN;
    if (ldns_wire2pkt(&p, q, qlen) == LDNS_STATUS_OK && ldns_pkt_edns(p) &&
        ldns_pkt_edns_udp_size(p) > max)
        max = ldns_pkt_edns_udp_size(p) > 4096 ? 4096 : ldns_pkt_edns_udp_size(p);
    ldns_pkt_free(p);
    return max;
}

/* Cuts *out (an answer of *outlen > max bytes) to its header and question, TC set. */
static void truncate_answer(uint8_t **out, size_t *outlen, size_t max)
{
    if (*outlen <= max || *outlen < LDNS_HEADER_SIZE)
        return;
    size_t end = LDNS_HEADER_SIZE;
    if (LDNS_QDCOUNT(*out) == 1) { /* the question: a name, then type and class */
        while (end < *outlen && (*out)[end] && ((*out)[end] & 0xc0) == 0)
            end += (size_t)(*out)[end] + 1;
        end += end < *outlen && (*out)[end] ? 2 : 1;
        end += 4;
    }
    if (end > *outlen || end > max)
        end = LDNS_HEADER_SIZE;
    (*out)[2] |= 0x02;      /* TC */
    memset(*out + 6, 0, 6); /* no answer, authority or additional records */
    if (end == LDNS_HEADER_SIZE)
        memset(*out + 4, 0, 2);
    *outlen = end;
}

int kdns_fit(const uint8_t *a, size_t alen, size_t max, uint8_t **out, size_t *outlen)
{
    if (alen < LDNS_HEADER_SIZE)
        return -1;
    *out = xmalloc(alen);
    memcpy(*out, a, alen);
    *outlen = alen;
    truncate_answer(out, outlen, max);
    return 0;
}

/* Answers the parsed query q in the zone, or says it is not ours. */
static enum kdns_verdict answer(const struct kdns_src *src, const ldns_pkt *q, ldns_pkt *p)
{
    header(p, q);
    if (ldns_pkt_get_opcode(q) != LDNS_PACKET_QUERY) {
        ldns_pkt_set_rcode(p, LDNS_RCODE_NOTIMPL);
        return KDNS_ANSWER;
    }
    if (ldns_pkt_qdcount(q) != 1 || ldns_rr_list_rr_count(ldns_pkt_question(q)) != 1) {
        ldns_pkt_set_rcode(p, LDNS_RCODE_FORMERR);
        return KDNS_ANSWER;
    }
    const ldns_rr *qr = ldns_rr_list_rr(ldns_pkt_question(q), 0);
    char *name = qname_str(ldns_rr_owner(qr));
    char *l[MAX_LABELS + 1];
    size_t n;
    if (!name || split(name, src->domain, l, &n) < 0) {
        enum kdns_verdict v = name ? answer_reverse(src, qr, name, p) : KDNS_FORWARD;
        free(name);
        return v;
    }
    ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, ldns_rr_clone(qr));
    ldns_pkt_set_aa(p, true);
    struct ans a = {src, p, ldns_rr_owner(qr), ldns_rr_get_type(qr), false, src->domain};
    if (ldns_rr_get_class(qr) != LDNS_RR_CLASS_IN && ldns_rr_get_class(qr) != LDNS_RR_CLASS_ANY) {
        ldns_pkt_set_aa(p, false);
        ldns_pkt_set_rcode(p, LDNS_RCODE_REFUSED);
    } else if (!src->ready) {
        ldns_pkt_set_aa(p, false);
        ldns_pkt_set_rcode(p, LDNS_RCODE_SERVFAIL);
    } else {
        if (n <= MAX_LABELS)
            lookup(&a, n, l);
        if (!a.exists)
            ldns_pkt_set_rcode(p, LDNS_RCODE_NXDOMAIN);
        if (n == 0 && a.qtype == LDNS_RR_TYPE_SOA)
            add_soa(&a, LDNS_SECTION_ANSWER);
        else if (!ldns_pkt_ancount(p))
            add_soa(&a, LDNS_SECTION_AUTHORITY);
    }
    free(name);
    return KDNS_ANSWER;
}

enum kdns_verdict kdns_answer(const struct kdns_src *src, const uint8_t *q, size_t qlen, size_t max,
                              uint8_t **out, size_t *outlen)
{
    ldns_pkt *qp = NULL;
    *out = NULL;
    if (ldns_wire2pkt(&qp, q, qlen) != LDNS_STATUS_OK) {
        ldns_pkt_free(qp);
        return header_only(q, qlen, LDNS_RCODE_FORMERR, out, outlen) == 0 ? KDNS_ANSWER : KDNS_DROP;
    }
    if (ldns_pkt_qr(qp)) {
        ldns_pkt_free(qp);
        return KDNS_DROP;
    }
    ldns_pkt *p = ldns_pkt_new();
    enum kdns_verdict v = answer(src, qp, p);
    if (v == KDNS_ANSWER && ldns_pkt2wire(out, p, outlen) != LDNS_STATUS_OK)
        v = KDNS_DROP;
    if (v == KDNS_ANSWER)
        truncate_answer(out, outlen, max);
    ldns_pkt_free(p);
    ldns_pkt_free(qp);
    return v;
}

/* ------------------------------------------------------------ ExternalName targets */
char *kdns_chase(const struct kdns_src *src, const uint8_t *a, size_t alen)
{
    ldns_pkt *p = NULL;
    char *target = NULL;
    if (ldns_wire2pkt(&p, a, alen) != LDNS_STATUS_OK || ldns_pkt_ancount(p) != 1 ||
        ldns_pkt_qdcount(p) != 1)
        goto out;
    ldns_rr_type qt = ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_question(p), 0));
    const ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(p), 0);
    if ((qt != LDNS_RR_TYPE_A && qt != LDNS_RR_TYPE_AAAA) ||
        ldns_rr_get_type(rr) != LDNS_RR_TYPE_CNAME || ldns_rr_rd_count(rr) != 1)
        goto out;
    target = qname_str(ldns_rr_rdf(rr, 0));
    char *l[MAX_LABELS + 1];
    size_t n;
    char *copy = target ? xstrdup(target) : NULL;
    if (copy && split(copy, src->domain, l, &n) == 0) { /* ours: no upstream knows it */
        free(target);
        target = NULL;
    }
    free(copy);
out:
    ldns_pkt_free(p);
    return target;
}

int kdns_query(const uint8_t *q, size_t qlen, const char *name, uint8_t **out, size_t *outlen)
{
    ldns_pkt *qp = NULL, *p = NULL;
    int rc = -1;
    if (ldns_wire2pkt(&qp, q, qlen) != LDNS_STATUS_OK || ldns_pkt_qdcount(qp) != 1)
        goto out;
    const ldns_rr *qr = ldns_rr_list_rr(ldns_pkt_question(qp), 0);
    if (ldns_pkt_query_new_frm_str(&p, name, ldns_rr_get_type(qr), ldns_rr_get_class(qr),
                                   LDNS_RD) != LDNS_STATUS_OK)
        goto out;
    ldns_pkt_set_id(p, ldns_pkt_id(qp));
    rc = ldns_pkt2wire(out, p, outlen) == LDNS_STATUS_OK ? 0 : -1;
out:
    ldns_pkt_free(p);
    ldns_pkt_free(qp);
    return rc;
}

int kdns_merge(const uint8_t *first, size_t flen, const uint8_t *up, size_t ulen, size_t max,
               uint8_t **out, size_t *outlen)
{
    ldns_pkt *f = NULL, *u = NULL;
    int rc = -1;
    if (ldns_wire2pkt(&f, first, flen) != LDNS_STATUS_OK ||
        ldns_wire2pkt(&u, up, ulen) != LDNS_STATUS_OK)
        goto out;
    for (size_t i = 0; i < ldns_pkt_ancount(u); i++)
        ldns_pkt_push_rr(f, LDNS_SECTION_ANSWER,
                         ldns_rr_clone(ldns_rr_list_rr(ldns_pkt_answer(u), i)));
    ldns_pkt_set_rcode(f, ldns_pkt_get_rcode(u));
    ldns_pkt_set_ra(f, true);
    if (ldns_pkt2wire(out, f, outlen) == LDNS_STATUS_OK) {
        truncate_answer(out, outlen, max);
        rc = 0;
    }
out:
    ldns_pkt_free(f);
    ldns_pkt_free(u);
    return rc;
}
