/*
 * dns: the cluster DNS each kubelet answers for its own pods (the
 * Kubernetes DNS specification, github.com/kubernetes/dns,
 * docs/specification.md, as CoreDNS' kubernetes plugin serves it).
 *
 *   dns_msg.c  a query's bytes -> the answer's bytes, or "forward it":
 *              names under --cluster-domain from the Services and
 *              EndpointSlices a struct kdns_src gives; pure, fuzzed.
 *   dns_conf.c resolv.conf: the node's parsed, a pod's written as the
 *              kubelet writes it for each dnsPolicy; pure, unit-tested.
 *   dns.c      the responder: UDP and TCP sockets on each --cluster-dns
 *              address (port 53), put on a dummy device coracle-dns (lo
 *              without a dummy driver) when the node does not have it
 *              yet; forwarding of other names to
 *              the node's resolvers; the data from the kubelet's one watch
 *              of Services and EndpointSlices (services.c).
 *
 * Records (TTL 5 s): <svc>.<ns>.svc.<domain> A (the ClusterIP, or a
 * headless Service's ready endpoints), <host>.<svc>.<ns>.svc.<domain> A
 * (an endpoint's hostname, or its dashed address), SRV
 * _<port>._<proto>.<svc>.<ns>.svc.<domain> for named ports, ExternalName
 * as CNAME, <a-b-c-d>.<ns>.pod.<domain> A (CoreDNS' "pods insecure"),
 * dns-version.<domain> TXT; NXDOMAIN and NODATA carry the zone's SOA.
 * PTR <d>.<c>.<b>.<a>.in-addr.arpa: a ClusterIP's <svc>.<ns>.svc.<domain>,
 * else a ready endpoint's with a hostname, <host>.<svc>.<ns>.svc.<domain>;
 * other reverse names are forwarded (CoreDNS' "fallthrough in-addr.arpa").
 */
#ifndef CORACLE_KLET_DNS_H
#define CORACLE_KLET_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coracle.pb-c.h"

#define KDNS_TTL 5
#define KDNS_DEVICE "coracle-dns"

/* ------------------------------------------------------------ dns_msg.c */
/* Where answers come from (borrowed; objects valid during one kdns_answer). */
struct kdns_src {
    const char *domain; /* the cluster domain, lower case, no trailing dot ("cluster.local") */
    uint32_t serial;    /* the SOA's serial */
    bool ready;         /* the data is complete (listed): else names in the zone get SERVFAIL */
    /* The Service ns/name or NULL. */
    const Coracle__V1__Service *(*service)(void *arg, const char *ns, const char *name);
    /* Calls fn for each EndpointSlice of the Service ns/name. */
    void (*slices)(void *arg, const char *ns, const char *name,
                   void (*fn)(const Coracle__V1__EndpointSlice *s, void *fnarg), void *fnarg);
    /* Whether any Service lives in ns (the name <ns>.svc.<domain> exists). */
    bool (*namespace_used)(void *arg, const char *ns);
    void *arg;
    /* Call fn for every Service, and for every EndpointSlice (reverse lookups: PTR). NULL:
     * no PTR records, reverse names are forwarded. */
    void (*each_service)(void *arg, void (*fn)(const Coracle__V1__Service *s, void *fnarg),
                         void *fnarg);
    void (*each_slice)(void *arg, void (*fn)(const Coracle__V1__EndpointSlice *s, void *fnarg),
                       void *fnarg);
};

enum kdns_verdict {
    KDNS_DROP,    /* no answer (not a query, or too short to answer) */
    KDNS_ANSWER,  /* *out holds the answer */
    KDNS_FORWARD, /* not ours: send the query to the node's resolvers */
};

/*
 * Answers the DNS message q (qlen bytes, any bytes). max: the largest
 * answer the client takes (512, its EDNS size, or 65535 over TCP); a
 * bigger one is cut to its question with TC set. OUT *out (malloc'd, the
 * caller frees) and *outlen with KDNS_ANSWER; KDNS_FORWARD when the name
 * is not under src->domain.
 */
enum kdns_verdict kdns_answer(const struct kdns_src *src, const uint8_t *q, size_t qlen, size_t max,
                              uint8_t **out, size_t *outlen);
/* The largest UDP answer the query q takes (512, or its EDNS payload size, capped at 4096). */
size_t kdns_udp_max(const uint8_t *q, size_t qlen);
/*
 * An upstream's answer a (alen bytes) made fit for a UDP client that
 * takes max bytes: as it is when it fits, else cut to its question with
 * TC set. OUT *out (malloc'd). -1 when a is not a DNS message.
 */
int kdns_fit(const uint8_t *a, size_t alen, size_t max, uint8_t **out, size_t *outlen);
/*
 * An ExternalName's answer to an A or AAAA query is its CNAME alone; the
 * target is then asked of the node's nameservers and the two answers put
 * together, as CoreDNS does (a stub resolver does not follow a CNAME).
 * kdns_chase: the target of answer a (malloc'd, no trailing dot) when it
 * is such an answer and the target lies outside the zone; else NULL.
 * kdns_query: OUT a query like q (its ID, type, class) for name.
 * kdns_merge: OUT the CNAME answer first with the records and rcode of
 * the target's answer up (cut to max as kdns_fit does); -1 when either
 * does not parse.
 */
char *kdns_chase(const struct kdns_src *src, const uint8_t *a, size_t alen);
int kdns_query(const uint8_t *q, size_t qlen, const char *name, uint8_t **out, size_t *outlen);
int kdns_merge(const uint8_t *first, size_t flen, const uint8_t *up, size_t ulen, size_t max,
               uint8_t **out, size_t *outlen);
/* A SERVFAIL answer to q (forwarding failed). -1 when q has no header. */
int kdns_servfail(const uint8_t *q, size_t qlen, uint8_t **out, size_t *outlen);

/* ------------------------------------------------------------ dns_conf.c */
/* A resolv.conf's nameservers, search domains (no trailing dots) and options. */
struct kdns_resolv {
    char **servers;
    size_t nservers;
    char **searches;
    size_t nsearches;
    char **options; /* "ndots:5", "rotate" */
    size_t noptions;
};
/* Parses resolv.conf text as the kubelet does (the last search line wins, options add up). */
void kdns_resolv_parse(const char *text, struct kdns_resolv *out);
void kdns_resolv_free(struct kdns_resolv *r);

/* What a pod's resolv.conf is made from (borrowed). */
struct kdns_pod_in {
    const char *ns;
    const char *policy; /* spec.dnsPolicy; NULL or "": ClusterFirst */
    bool hostnet;
    const Coracle__V1__PodDNSConfig *cfg; /* spec.dnsConfig or NULL */
    const char *cluster_dns;              /* --cluster-dns: comma list, "" when off */
    const char *domain;                   /* --cluster-domain */
    const struct kdns_resolv *host;       /* the node's (--resolv-conf); NULL: that flag is "" */
    /* A Warning event to record: MissingClusterDNS, DNSConfigForming. */
    void (*warn)(void *arg, const char *reason, const char *msg);
    void *warn_arg;
};
/*
 * The pod's resolv.conf text (malloc'd): ClusterFirst (the cluster DNS,
 * search <ns>.svc.<domain> svc.<domain> <domain> + the node's, options
 * ndots:5), ClusterFirstWithHostNet (the same), Default and hostNetwork
 * ClusterFirst (the node's), None (only dnsConfig); dnsConfig merged in,
 * at most 3 nameservers and 32 search domains (2048 characters).
 */
char *kdns_pod_resolv(const struct kdns_pod_in *in);

/* ------------------------------------------------------------ dns.c */
struct klet;
struct klet_pod;
/*
 * Starts answering on each --cluster-dns address (port 53, UDP and TCP),
 * adding the address to the dummy device coracle-dns (lo without a dummy
 * driver) when no interface has it. Needs the Service watch (klet_services_start). 0, or -1 with
 * *err (malloc'd).
 */
int klet_dns_start(struct klet *k, char **err);
/* Closes the sockets, drops queries in flight, removes the device or addresses it added. */
void klet_dns_stop(struct klet *k);
/* Removes the coracle-dns device and the addresses of cluster_dns (a comma list, or NULL)
 * from lo (--cleanup). */
void klet_dns_cleanup(const char *cluster_dns);
/* (Re)writes <pod dir>/resolv.conf for the pod's dnsPolicy; records the Warning event. */
void klet_dns_pod_files(struct klet *k, struct klet_pod *p, const char *dir);

#endif
