/*
 * fuzz_dns: the kubelet's cluster DNS (src/kubelet/dns_msg.c): any bytes
 * as a query, answered from a ClusterIP Service, a headless one with an
 * EndpointSlice and an ExternalName one (reverse names of the ClusterIP
 * and the endpoint too); the answer must parse again and
 * fit the size given. The helpers the responder runs on forwarded
 * traffic (kdns_fit on an upstream's answer, kdns_servfail,
 * kdns_udp_max, the ExternalName chase) get the same bytes.
 */
#include "config.h"
#include "dns.h"
#include "fuzz.h"

#include <ldns/ldns.h>
#include <stdlib.h>
#include <string.h>

static const Coracle__V1__Service *svc(void *arg, const char *ns, const char *name)
{
    static Coracle__V1__ObjectMeta m = CORACLE__V1__OBJECT_META__INIT;
    static Coracle__V1__ServicePort p = CORACLE__V1__SERVICE_PORT__INIT;
    static Coracle__V1__ServicePort *ps[] = {&p};
    static Coracle__V1__ServiceSpec sp = CORACLE__V1__SERVICE_SPEC__INIT;
    static Coracle__V1__Service s = CORACLE__V1__SERVICE__INIT;
    if (strcmp(ns, "ns"))
        return NULL;
    m.name = (char *)name;
    m.namespace_ = "ns";
    p.name = "http";
    p.has_port = true;
    p.port = 80;
    sp.n_ports = 1;
    sp.ports = ps;
    sp.type = !strcmp(name, "ext") ? "ExternalName" : "ClusterIP";
    sp.externalname = "ext.example.";
    sp.clusterip = !strcmp(name, "hl") ? "None" : "10.96.0.10";
    s.metadata = &m;
    s.spec = &sp;
    return !strcmp(name, "web") || !strcmp(name, "hl") || !strcmp(name, "ext") ? &s : NULL;
}

static void slices(void *arg, const char *ns, const char *name,
                   void (*fn)(const Coracle__V1__EndpointSlice *s, void *fnarg), void *fnarg)
{
    static char *addrs[] = {"10.1.0.5"};
    static Coracle__V1__Endpoint e = CORACLE__V1__ENDPOINT__INIT;
    static Coracle__V1__Endpoint *es[] = {&e, &e};
    static Coracle__V1__EndpointPort p = CORACLE__V1__ENDPOINT_PORT__INIT;
    static Coracle__V1__EndpointPort *ps[] = {&p};
    static Coracle__V1__EndpointSlice s = CORACLE__V1__ENDPOINT_SLICE__INIT;
    static Coracle__V1__ObjectMeta__LabelsEntry l = {
        PROTOBUF_C_MESSAGE_INIT(&coracle__v1__object_meta__labels_entry__descriptor),
        "kubernetes.io/service-name", "hl"};
    static Coracle__V1__ObjectMeta__LabelsEntry *ls[] = {&l};
    static Coracle__V1__ObjectMeta m = CORACLE__V1__OBJECT_META__INIT;
    m.namespace_ = "ns";
    m.n_labels = 1;
    m.labels = ls;
    s.metadata = &m;
    e.n_addresses = 1;
    e.addresses = addrs;
    e.hostname = "db-0";
    p.name = "http";
    p.has_port = true;
    p.port = 8080;
    s.n_endpoints = 2;
    s.endpoints = es;
    s.n_ports = 1;
    s.ports = ps;
    fn(&s, fnarg);
}

static bool ns_used(void *arg, const char *ns)
{
    return !strcmp(ns, "ns");
}

static void each_service(void *arg, void (*fn)(const Coracle__V1__Service *s, void *fnarg),
                         void *fnarg)
{
    fn(svc(arg, "ns", "web"), fnarg);
    fn(svc(arg, "ns", "hl"), fnarg);
}

static void each_slice(void *arg, void (*fn)(const Coracle__V1__EndpointSlice *s, void *fnarg),
                       void *fnarg)
{
    slices(arg, "ns", "hl", fn, fnarg);
}

int fuzz_dns_one(const uint8_t *data, size_t size)
{
    static const struct kdns_src src = {"cluster.local", 1,    true,         svc,       slices,
                                        ns_used,         NULL, each_service, each_slice};
    size_t max = kdns_udp_max(data, size);
    if (max < 512 || max > 4096)
        abort();
    uint8_t *a = NULL;
    size_t alen = 0;
    if (kdns_answer(&src, data, size, max, &a, &alen) == KDNS_ANSWER) {
        ldns_pkt *p = NULL;
        if (alen > max || alen < 12 || !(a[2] & 0x80))
            abort(); /* too big, or not an answer */
        if (alen > 12 && ldns_wire2pkt(&p, a, alen) != LDNS_STATUS_OK)
            abort(); /* what we wrote does not parse */
        ldns_pkt_free(p);
    }
    free(a);
    if (kdns_fit(data, size, 512, &a, &alen) == 0) {
        if (alen > 512 && alen != size)
            abort();
        free(a);
    }
    if (kdns_servfail(data, size, &a, &alen) == 0)
        free(a);
    free(kdns_chase(&src, data, size));
    if (kdns_query(data, size, "ext.example", &a, &alen) == 0)
        free(a);
    if (kdns_merge(data, size, data, size, 512, &a, &alen) == 0) {
        if (alen > 512)
            abort();
        free(a);
    }
    return 0;
}

FUZZ_ENTRY(fuzz_dns_one)
