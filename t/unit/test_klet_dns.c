/* Unit tests for the kubelet's cluster DNS: resolv.conf as dns_conf.c reads the node's and
 * writes a pod's for each dnsPolicy, and the answers dns_msg.c gives from a fixed set of
 * Services and EndpointSlices. */
#include "config.h"
#include "tap.h"

#include "dns.h"

#include <ldns/ldns.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ resolv.conf */
static char warned[512];

static void warn(void *arg, const char *reason, const char *msg)
{
    snprintf(warned, sizeof warned, "%s: %s", reason, msg);
}

static char *pod_conf(const char *policy, bool hostnet, const char *cluster_dns,
                      const struct kdns_resolv *host, const Coracle__V1__PodDNSConfig *cfg)
{
    warned[0] = '\0';
    struct kdns_pod_in in = {"team",          policy, hostnet, cfg, cluster_dns,
                             "cluster.local", host,   warn,    NULL};
    return kdns_pod_resolv(&in);
}

static void test_resolv(void)
{
    struct kdns_resolv h;
    kdns_resolv_parse("# comment\nnameserver 10.0.0.2\n; other\nsearch old.example\n"
                      "search corp.example. lab.example\noptions timeout:2 ndots:1\n"
                      "options ndots:3\nnameserver 10.0.0.3\n",
                      &h);
    is_int(h.nservers, 2, "two nameservers");
    ok(h.nsearches == 2 && !strcmp(h.searches[0], "corp.example") &&
           !strcmp(h.searches[1], "lab.example"),
       "the last search line wins, trailing dots dropped");
    ok(h.noptions == 2 && !strcmp(h.options[0], "timeout:2") && !strcmp(h.options[1], "ndots:3"),
       "options add up, a later one replacing by name");

    char *s = pod_conf(NULL, false, "169.254.20.10", &h, NULL);
    is_str(s,
           "search team.svc.cluster.local svc.cluster.local cluster.local corp.example "
           "lab.example\nnameserver 169.254.20.10\noptions ndots:5\n",
           "ClusterFirst: the cluster DNS, its search path and the node's, ndots:5");
    free(s);
    s = pod_conf("ClusterFirst", true, "169.254.20.10", &h, NULL);
    is_str(s,
           "search corp.example lab.example\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n"
           "options timeout:2 ndots:3\n",
           "ClusterFirst on the host's network: the node's");
    free(s);
    s = pod_conf("ClusterFirstWithHostNet", true, "169.254.20.10", &h, NULL);
    ok(strstr(s, "nameserver 169.254.20.10\n") != NULL, "ClusterFirstWithHostNet: the cluster DNS");
    free(s);
    s = pod_conf("Default", false, "169.254.20.10", &h, NULL);
    ok(strstr(s, "nameserver 10.0.0.2\n") && !strstr(s, "cluster.local"), "Default: the node's");
    free(s);
    s = pod_conf("ClusterFirst", false, "", &h, NULL);
    ok(strstr(s, "nameserver 10.0.0.2\n") && !strncmp(warned, "MissingClusterDNS: ", 19),
       "ClusterFirst without --cluster-dns: Default, with MissingClusterDNS (%s)", warned);
    free(s);
    s = pod_conf("Default", false, "", NULL, NULL);
    is_str(s, "search .\nnameserver 127.0.0.1\n", "--resolv-conf \"\": the node itself");
    free(s);

    Coracle__V1__PodDNSConfigOption o1 = CORACLE__V1__POD_DNSCONFIG_OPTION__INIT,
                                    o2 = CORACLE__V1__POD_DNSCONFIG_OPTION__INIT;
    o1.name = "ndots";
    o1.value = "2";
    o2.name = "edns0";
    Coracle__V1__PodDNSConfigOption *opts[] = {&o1, &o2};
    char *ns[] = {"192.0.2.1", "169.254.20.10"}, *se[] = {"my.search", "svc.cluster.local"};
    Coracle__V1__PodDNSConfig cfg = CORACLE__V1__POD_DNSCONFIG__INIT;
    cfg.n_nameservers = 2;
    cfg.nameservers = ns;
    cfg.n_searches = 2;
    cfg.searches = se;
    cfg.n_options = 2;
    cfg.options = opts;
    s = pod_conf("None", false, "169.254.20.10", &h, &cfg);
    is_str(s,
           "search my.search svc.cluster.local\nnameserver 192.0.2.1\nnameserver "
           "169.254.20.10\noptions ndots:2 edns0\n",
           "None: dnsConfig alone");
    free(s);
    s = pod_conf("ClusterFirst", false, "169.254.20.10", &h, &cfg);
    is_str(s,
           "search team.svc.cluster.local svc.cluster.local cluster.local corp.example "
           "lab.example my.search\nnameserver 169.254.20.10\nnameserver 192.0.2.1\n"
           "options ndots:2 edns0\n",
           "dnsConfig merged: duplicates dropped, options replaced by name");
    free(s);

    char *many[] = {"192.0.2.1", "192.0.2.2", "192.0.2.3"};
    cfg.nameservers = many;
    cfg.n_nameservers = 3;
    cfg.n_searches = 0;
    cfg.n_options = 0;
    s = pod_conf("ClusterFirst", false, "169.254.20.10", &h, &cfg);
    ok(!strstr(s, "192.0.2.3") &&
           !strcmp(warned, "DNSConfigForming: Nameserver limits were exceeded, some nameservers "
                           "have been omitted, the applied nameserver line is: 169.254.20.10 "
                           "192.0.2.1 192.0.2.2"),
       "at most 3 nameservers, with DNSConfigForming (%s)", warned);
    free(s);
    char *longs[40];
    for (int i = 0; i < 40; i++)
        longs[i] = NULL;
    for (int i = 0; i < 40; i++) {
        longs[i] = malloc(64);
        snprintf(longs[i], 64, "d%02d.example", i);
    }
    cfg.n_nameservers = 0;
    cfg.searches = longs;
    cfg.n_searches = 40;
    s = pod_conf("ClusterFirst", false, "169.254.20.10", &h, &cfg);
    ok(strstr(s, "d26.example\n") && !strstr(s, "d27.example") &&
           !strncmp(warned, "DNSConfigForming: Search Line limits were exceeded", 50),
       "at most 32 search domains (%s)", warned);
    free(s);
    for (int i = 0; i < 40; i++)
        free(longs[i]);
    kdns_resolv_free(&h);
}

/* ------------------------------------------------------------ answers */
static Coracle__V1__ObjectMeta m_web = CORACLE__V1__OBJECT_META__INIT,
                               m_hl = CORACLE__V1__OBJECT_META__INIT,
                               m_ext = CORACLE__V1__OBJECT_META__INIT;
static Coracle__V1__ServicePort p_http = CORACLE__V1__SERVICE_PORT__INIT;
static Coracle__V1__ServicePort *ports[] = {&p_http};
static Coracle__V1__ServiceSpec sp_web = CORACLE__V1__SERVICE_SPEC__INIT,
                                sp_hl = CORACLE__V1__SERVICE_SPEC__INIT,
                                sp_ext = CORACLE__V1__SERVICE_SPEC__INIT;
static Coracle__V1__Service web = CORACLE__V1__SERVICE__INIT, hl = CORACLE__V1__SERVICE__INIT,
                            ext = CORACLE__V1__SERVICE__INIT;
static Coracle__V1__EndpointConditions ready = CORACLE__V1__ENDPOINT_CONDITIONS__INIT,
                                       unready = CORACLE__V1__ENDPOINT_CONDITIONS__INIT;
static char *a1[] = {"10.1.0.5"}, *a2[] = {"10.1.0.6"}, *a3[] = {"10.1.0.7"};
static Coracle__V1__Endpoint e1 = CORACLE__V1__ENDPOINT__INIT, e2 = CORACLE__V1__ENDPOINT__INIT,
                             e3 = CORACLE__V1__ENDPOINT__INIT;
static Coracle__V1__Endpoint *eps[] = {&e1, &e2, &e3};
static Coracle__V1__EndpointPort ep_http = CORACLE__V1__ENDPOINT_PORT__INIT;
static Coracle__V1__EndpointPort *eports[] = {&ep_http};
static Coracle__V1__EndpointSlice slice = CORACLE__V1__ENDPOINT_SLICE__INIT;
static Coracle__V1__ObjectMeta m_slice = CORACLE__V1__OBJECT_META__INIT;
static Coracle__V1__ObjectMeta__LabelsEntry svc_label = {
    PROTOBUF_C_MESSAGE_INIT(&coracle__v1__object_meta__labels_entry__descriptor),
    "kubernetes.io/service-name", "hl"};
static Coracle__V1__ObjectMeta__LabelsEntry *slice_labels[] = {&svc_label};

static void fixtures(void)
{
    m_web.name = "web";
    m_web.namespace_ = "team";
    m_hl.name = "hl";
    m_hl.namespace_ = "team";
    m_ext.name = "ext";
    m_ext.namespace_ = "team";
    p_http.name = "http";
    p_http.protocol = "TCP";
    p_http.has_port = true;
    p_http.port = 80;
    sp_web.clusterip = "10.96.0.10";
    sp_web.n_ports = 1;
    sp_web.ports = ports;
    sp_hl.clusterip = "None";
    sp_hl.n_ports = 1;
    sp_hl.ports = ports;
    sp_ext.type = "ExternalName";
    sp_ext.externalname = "db.example.org";
    web.metadata = &m_web;
    web.spec = &sp_web;
    hl.metadata = &m_hl;
    hl.spec = &sp_hl;
    ext.metadata = &m_ext;
    ext.spec = &sp_ext;
    ready.has_ready = ready.ready = true;
    unready.has_ready = true;
    e1.n_addresses = e2.n_addresses = e3.n_addresses = 1;
    e1.addresses = a1;
    e2.addresses = a2;
    e3.addresses = a3;
    e1.conditions = &ready;
    e1.hostname = "db-0";
    e2.conditions = &ready;
    e3.conditions = &unready;
    ep_http.name = "http";
    ep_http.has_port = true;
    ep_http.port = 8080;
    slice.addresstype = "IPv4";
    slice.metadata = &m_slice;
    m_slice.namespace_ = "team";
    m_slice.n_labels = 1;
    m_slice.labels = slice_labels;
    slice.n_endpoints = 3;
    slice.endpoints = eps;
    slice.n_ports = 1;
    slice.ports = eports;
}

static const Coracle__V1__Service *f_service(void *arg, const char *ns, const char *name)
{
    if (strcmp(ns, "team"))
        return NULL;
    return !strcmp(name, "web")   ? &web
           : !strcmp(name, "hl")  ? &hl
           : !strcmp(name, "ext") ? &ext
                                  : NULL;
}

static void f_slices(void *arg, const char *ns, const char *name,
                     void (*fn)(const Coracle__V1__EndpointSlice *s, void *fnarg), void *fnarg)
{
    if (!strcmp(ns, "team") && !strcmp(name, "hl"))
        fn(&slice, fnarg);
}

static bool f_ns(void *arg, const char *ns)
{
    return !strcmp(ns, "team");
}

static void f_each_service(void *arg, void (*fn)(const Coracle__V1__Service *s, void *fnarg),
                           void *fnarg)
{
    fn(&web, fnarg);
    fn(&hl, fnarg);
    fn(&ext, fnarg);
}

static void f_each_slice(void *arg, void (*fn)(const Coracle__V1__EndpointSlice *s, void *fnarg),
                         void *fnarg)
{
    fn(&slice, fnarg);
    fn(&slice, fnarg); /* the same endpoints twice (slices overlap while they change) */
}

static const struct kdns_src src = {
    "cluster.local", 42, true, f_service, f_slices, f_ns, NULL, f_each_service, f_each_slice};

/* The answer to name/type: "RCODE|answer records|authority types" as text. */
static char *ask(const char *name, ldns_rr_type t, size_t max)
{
    ldns_pkt *q = NULL;
    ldns_pkt_query_new_frm_str(&q, name, t, LDNS_RR_CLASS_IN, LDNS_RD);
    uint8_t *w, *a;
    size_t wl, al;
    ldns_pkt2wire(&w, q, &wl);
    ldns_pkt_free(q);
    enum kdns_verdict v = kdns_answer(&src, w, wl, max, &a, &al);
    free(w);
    if (v == KDNS_FORWARD)
        return strdup("FORWARD");
    if (v != KDNS_ANSWER)
        return strdup("DROP");
    ldns_pkt *p = NULL;
    if (ldns_wire2pkt(&p, a, al) != LDNS_STATUS_OK) {
        free(a);
        return strdup("BAD");
    }
    free(a);
    char buf[2048];
    size_t n = (size_t)snprintf(buf, sizeof buf, "%s%s|", ldns_pkt_tc(p) ? "TC " : "",
                                ldns_lookup_by_id(ldns_rcodes, ldns_pkt_get_rcode(p))->name);
    for (size_t i = 0; i < ldns_pkt_ancount(p); i++) {
        char *r = ldns_rr2str(ldns_rr_list_rr(ldns_pkt_answer(p), i));
        r[strlen(r) - 1] = ';';
        for (char *c = r; *c; c++)
            *c = *c == '\t' ? ' ' : *c;
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", r);
        free(r);
    }
    n += (size_t)snprintf(buf + n, sizeof buf - n, "|");
    for (size_t i = 0; i < ldns_pkt_nscount(p); i++)
        n += (size_t)snprintf(
            buf + n, sizeof buf - n, "%s",
            ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_authority(p), i)) == LDNS_RR_TYPE_SOA ? "SOA"
                                                                                            : "?");
    ldns_pkt_free(p);
    return strdup(buf);
}

#define ASK(name, type, want, what)                                                                \
    do {                                                                                           \
        char *got_ = ask(name, type, 512);                                                         \
        is_str(got_, want, what);                                                                  \
        free(got_);                                                                                \
    } while (0)

static void test_answers(void)
{
    fixtures();
    ASK("web.team.svc.cluster.local.", LDNS_RR_TYPE_A,
        "NOERROR|web.team.svc.cluster.local. 5 IN A 10.96.0.10;|", "A of a ClusterIP Service");
    ASK("WEB.Team.svc.cluster.local.", LDNS_RR_TYPE_A,
        "NOERROR|WEB.Team.svc.cluster.local. 5 IN A 10.96.0.10;|", "names match in any case");
    ASK("web.team.svc.cluster.local.", LDNS_RR_TYPE_AAAA, "NOERROR||SOA", "NODATA for AAAA");
    ASK("nope.team.svc.cluster.local.", LDNS_RR_TYPE_A, "NXDOMAIN||SOA", "NXDOMAIN");
    ASK("team.svc.cluster.local.", LDNS_RR_TYPE_A, "NOERROR||SOA", "a namespace in use: NODATA");
    ASK("other.svc.cluster.local.", LDNS_RR_TYPE_A, "NXDOMAIN||SOA", "an unused one: NXDOMAIN");
    ASK("hl.team.svc.cluster.local.", LDNS_RR_TYPE_A,
        "NOERROR|hl.team.svc.cluster.local. 5 IN A 10.1.0.5;hl.team.svc.cluster.local. 5 IN A "
        "10.1.0.6;|",
        "headless: the ready endpoints");
    ASK("db-0.hl.team.svc.cluster.local.", LDNS_RR_TYPE_A,
        "NOERROR|db-0.hl.team.svc.cluster.local. 5 IN A 10.1.0.5;|", "an endpoint's hostname");
    ASK("10-1-0-6.hl.team.svc.cluster.local.", LDNS_RR_TYPE_A,
        "NOERROR|10-1-0-6.hl.team.svc.cluster.local. 5 IN A 10.1.0.6;|",
        "an endpoint's dashed address");
    ASK("10-1-0-7.hl.team.svc.cluster.local.", LDNS_RR_TYPE_A, "NXDOMAIN||SOA",
        "not a not-ready one");
    ASK("_http._tcp.web.team.svc.cluster.local.", LDNS_RR_TYPE_SRV,
        "NOERROR|_http._tcp.web.team.svc.cluster.local. 5 IN SRV 0 100 80 "
        "web.team.svc.cluster.local.;|",
        "SRV of a ClusterIP Service's named port");
    ASK("_http._tcp.hl.team.svc.cluster.local.", LDNS_RR_TYPE_SRV,
        "NOERROR|_http._tcp.hl.team.svc.cluster.local. 5 IN SRV 0 50 8080 "
        "db-0.hl.team.svc.cluster.local.;_http._tcp.hl.team.svc.cluster.local. 5 IN SRV 0 50 "
        "8080 10-1-0-6.hl.team.svc.cluster.local.;|",
        "SRV of a headless Service: one per ready endpoint");
    ASK("_http._udp.web.team.svc.cluster.local.", LDNS_RR_TYPE_SRV, "NXDOMAIN||SOA",
        "no SRV over another protocol");
    ASK("ext.team.svc.cluster.local.", LDNS_RR_TYPE_A,
        "NOERROR|ext.team.svc.cluster.local. 5 IN CNAME db.example.org.;|",
        "ExternalName: a CNAME");
    ASK("10-2-3-4.team.pod.cluster.local.", LDNS_RR_TYPE_A,
        "NOERROR|10-2-3-4.team.pod.cluster.local. 5 IN A 10.2.3.4;|", "a pod's A record");
    ASK("10-2-3-400.team.pod.cluster.local.", LDNS_RR_TYPE_A, "NXDOMAIN||SOA",
        "not a dashed address: NXDOMAIN");
    ASK("dns-version.cluster.local.", LDNS_RR_TYPE_TXT,
        "NOERROR|dns-version.cluster.local. 5 IN TXT \"1.1.0\";|", "dns-version");
    ASK("cluster.local.", LDNS_RR_TYPE_SOA,
        "NOERROR|cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 "
        "1800 86400 5;|",
        "the zone's SOA");
    ASK("example.org.", LDNS_RR_TYPE_A, "FORWARD", "other names are forwarded");
    ASK("a.b.c.d.e.f.svc.cluster.local.", LDNS_RR_TYPE_A, "NXDOMAIN||SOA", "too many labels");
    ASK("10.0.96.10.in-addr.arpa.", LDNS_RR_TYPE_PTR,
        "NOERROR|10.0.96.10.in-addr.arpa. 5 IN PTR web.team.svc.cluster.local.;|",
        "PTR of a ClusterIP: the Service's name");
    ASK("10.0.96.10.IN-ADDR.arpa.", LDNS_RR_TYPE_PTR,
        "NOERROR|10.0.96.10.IN-ADDR.arpa. 5 IN PTR web.team.svc.cluster.local.;|",
        "reverse names match in any case");
    ASK("5.0.1.10.in-addr.arpa.", LDNS_RR_TYPE_PTR,
        "NOERROR|5.0.1.10.in-addr.arpa. 5 IN PTR db-0.hl.team.svc.cluster.local.;|",
        "PTR of a ready endpoint with a hostname: <host>.<svc>.<ns>.svc, once");
    ASK("10.0.96.10.in-addr.arpa.", LDNS_RR_TYPE_A, "NOERROR||SOA",
        "another type at a ClusterIP's reverse name: NODATA");
    ASK("6.0.1.10.in-addr.arpa.", LDNS_RR_TYPE_PTR, "FORWARD",
        "an endpoint without a hostname: forwarded");
    ASK("7.0.1.10.in-addr.arpa.", LDNS_RR_TYPE_PTR, "FORWARD", "a not-ready endpoint: forwarded");
    ASK("9.9.9.10.in-addr.arpa.", LDNS_RR_TYPE_PTR, "FORWARD", "an unknown address: forwarded");
    ASK("010.0.96.10.in-addr.arpa.", LDNS_RR_TYPE_PTR, "FORWARD",
        "a leading zero is not the address");
    ASK("0.96.10.in-addr.arpa.", LDNS_RR_TYPE_PTR, "FORWARD", "three labels: forwarded");
    ASK("1.10.0.96.10.in-addr.arpa.", LDNS_RR_TYPE_PTR, "FORWARD", "five labels: forwarded");
    ASK("256.0.96.10.in-addr.arpa.", LDNS_RR_TYPE_PTR, "FORWARD", "256: forwarded");

    uint8_t junk[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff};
    uint8_t *a;
    size_t al;
    ok(kdns_answer(&src, junk, sizeof junk, 512, &a, &al) == KDNS_ANSWER && al == 12 &&
           a[0] == 0x12 && a[1] == 0x34 && (a[2] & 0x80) && (a[3] & 0x0f) == LDNS_RCODE_FORMERR,
       "a broken query: FORMERR with its ID");
    free(a);
    junk[2] |= 0x80;
    ok(kdns_answer(&src, junk, sizeof junk, 512, &a, &al) == KDNS_DROP, "an answer: dropped");
    ok(kdns_answer(&src, junk, 5, 512, &a, &al) == KDNS_DROP, "five bytes: dropped");
    /* an ExternalName's target is asked upstream, and the answers joined */
    ldns_pkt *q = NULL;
    ldns_pkt_query_new_frm_str(&q, "ext.team.svc.cluster.local.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
                               LDNS_RD);
    uint8_t *w, *cn, *tq, *m;
    size_t wl, cnl, tql, ml;
    ldns_pkt2wire(&w, q, &wl);
    kdns_answer(&src, w, wl, 512, &cn, &cnl);
    char *target = kdns_chase(&src, cn, cnl);
    is_str(target, "db.example.org", "kdns_chase: the ExternalName's target");
    ok(kdns_query(w, wl, target, &tq, &tql) == 0, "kdns_query: a query for it");
    ldns_pkt *up = NULL;
    ldns_wire2pkt(&up, tq, tql);
    ldns_pkt_set_qr(up, true);
    ldns_rr *rr = NULL;
    ldns_rr_new_frm_str(&rr, "db.example.org. 30 IN A 192.0.2.9", 0, NULL, NULL);
    ldns_pkt_push_rr(up, LDNS_SECTION_ANSWER, rr);
    uint8_t *uw;
    size_t ul;
    ldns_pkt2wire(&uw, up, &ul);
    ldns_pkt *mp = NULL;
    ok(kdns_merge(cn, cnl, uw, ul, 512, &m, &ml) == 0 &&
           ldns_wire2pkt(&mp, m, ml) == LDNS_STATUS_OK && ldns_pkt_ancount(mp) == 2 &&
           ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_answer(mp), 1)) == LDNS_RR_TYPE_A,
       "kdns_merge: the CNAME, then the target's A");
    ldns_pkt_free(mp);
    ldns_pkt_free(up);
    ldns_pkt_free(q);
    free(w);
    free(cn);
    free(tq);
    free(uw);
    free(m);
    free(target);

    char *t = ask("hl.team.svc.cluster.local.", LDNS_RR_TYPE_A, 60);
    is_str(t, "TC NOERROR||", "too big for the client: the question alone, TC set");
    free(t);
}

int main(void)
{
    test_resolv();
    test_answers();
    return done_testing();
}
