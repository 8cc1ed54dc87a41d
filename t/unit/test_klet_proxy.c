/* Unit tests for the Service proxy's rule generation (src/kubelet/proxy_rules.c): the
 * nftables script text of a Service, and the transaction between two versions of it. */
#include "config.h"
#include "tap.h"

#include "buf.h"
#include "proxy.h"

#include <stdlib.h>
#include <string.h>

static const char *vip[] = {"10.96.0.10"};
static const struct kpx_ep eps2[] = {{"10.1.0.2", 8080, true}, {"10.1.0.3", 8080, false}};

static char *script(const struct kpx_svc *old, const struct kpx_svc *nw)
{
    struct kpx_objs a = {0}, b = {0};
    if (old)
        kpx_svc_objs(old, &a);
    if (nw)
        kpx_svc_objs(nw, &b);
    struct buf s = {0};
    kpx_script_diff(&s, &a, &b);
    kpx_objs_free(&a);
    kpx_objs_free(&b);
    buf_puts(&s, "");
    return buf_take(&s);
}

static void test_clusterip(void)
{
    /* a NodePort keeps the endpoints in the service chain (a shared map's key is a ClusterIP) */
    struct kpx_port p = {"http", "tcp", 80, 30080, eps2, 2};
    struct kpx_svc s = {
        .ns = "default", .name = "web", .vips = vip, .nvips = 1, .ports = &p, .nports = 1};
    char *got = script(NULL, &s);
    is_str(got,
           "add chain ip coracle-proxy service-default/web/tcp/http\n"
           "add chain ip coracle-proxy external-default/web/tcp/http\n"
           "add rule ip coracle-proxy service-default/web/tcp/http meta l4proto tcp dnat ip addr "
           ". port to numgen random mod 2 map { 0 : 10.1.0.2 . 8080, 1 : 10.1.0.3 . 8080 }\n"
           "add rule ip coracle-proxy external-default/web/tcp/http meta mark set meta mark | "
           "0x4000\n"
           "add rule ip coracle-proxy external-default/web/tcp/http goto "
           "service-default/web/tcp/http\n"
           "add element ip coracle-proxy service-ips { 10.96.0.10 . tcp . 80 : goto "
           "service-default/web/tcp/http }\n"
           "add element ip coracle-proxy service-nodeports { tcp . 30080 : goto "
           "external-default/web/tcp/http }\n",
           "a NodePort Service: a numgen DNAT map, no hairpin rule, map elements");
    free(got);

    s.masq_all = true;
    got = script(NULL, &s);
    ok(strstr(got, "service-default/web/tcp/http meta mark set meta mark | 0x4000\n") &&
           !strstr(got, "ip saddr") && !strstr(got, "jump") && !strstr(got, "endpoint-"),
       "--masquerade-all: one mark for all, no hairpin rules, no jump, no endpoint chain");
    free(got);
    s.masq_all = false;

    s.cluster_cidr = "10.244.0.0/16";
    got = script(NULL, &s);
    ok(strstr(got, "service-default/web/tcp/http ip saddr != 10.244.0.0/16 meta mark set meta "
                   "mark | 0x4000\n") != NULL,
       "--cluster-cidr: traffic from outside it is masqueraded");
    free(got);
    s.cluster_cidr = NULL;

    /* one endpoint goes: the service chain alone is refilled (a plain DNAT for one endpoint),
     * the map elements untouched */
    struct kpx_port p1 = {"http", "tcp", 80, 30080, eps2, 1};
    struct kpx_svc s1 = s;
    s1.ports = &p1;
    got = script(&s, &s1);
    is_str(got,
           "flush chain ip coracle-proxy service-default/web/tcp/http\n"
           "add rule ip coracle-proxy service-default/web/tcp/http meta l4proto tcp dnat to "
           "10.1.0.2:8080\n",
           "an endpoint removed: only the service chain changes");
    free(got);

    got = script(&s, &s);
    is_str(got, "", "nothing changed: an empty script");
    free(got);

    /* no endpoints: reject */
    struct kpx_port p0 = {"http", "tcp", 80, 0, NULL, 0};
    struct kpx_svc s0 = s;
    s0.ports = &p0;
    got = script(&s1, &s0);
    ok(strstr(got, "delete element ip coracle-proxy service-ips { 10.96.0.10 . tcp . 80 }\n") &&
           strstr(got, "add element ip coracle-proxy no-endpoint-services { 10.96.0.10 . tcp . "
                       "80 : goto reject-chain }\n") &&
           strstr(got, "delete chain ip coracle-proxy service-default/web/tcp/http\n"),
       "no ready endpoint: the ClusterIP rejects");
    free(got);

    /* the Service goes */
    got = script(&s1, NULL);
    ok(strstr(got, "delete element ip coracle-proxy service-ips { 10.96.0.10 . tcp . 80 }\n") &&
           !strstr(got, "add "),
       "a deleted Service: its element and chains go");
    free(got);
}

static void test_headless(void)
{
    struct kpx_port p = {"", "tcp", 80, 0, eps2, 2};
    struct kpx_svc s = {.ns = "default", .name = "h", .ports = &p, .nports = 1};
    char *got = script(NULL, &s);
    is_str(got, "", "headless: no rules");
    free(got);
}

static void test_affinity_nodeport(void)
{
    struct kpx_port p = {"", "udp", 53, 30053, eps2, 2};
    struct kpx_svc s = {.ns = "kube-system",
                        .name = "dns",
                        .vips = vip,
                        .nvips = 1,
                        .affinity_timeout = 60,
                        .ports = &p,
                        .nports = 1};
    char *got = script(NULL, &s);
    ok(strstr(got, "add set ip coracle-proxy affinity-kube-system/dns/udp/53__10.1.0.2/8080 { "
                   "type ipv4_addr; flags dynamic,timeout; timeout 60s; }\n") != NULL,
       "ClientIP affinity: a dynamic set with the timeout");
    ok(strstr(got, "service-kube-system/dns/udp/53 ip saddr "
                   "@affinity-kube-system/dns/udp/53__10.1.0.3/8080 goto "
                   "endpoint-kube-system/dns/udp/53__10.1.0.3/8080\n") != NULL,
       "ClientIP affinity: the service chain looks the client up first");
    ok(strstr(got, "update @affinity-kube-system/dns/udp/53__10.1.0.2/8080 { ip saddr }\n") != NULL,
       "ClientIP affinity: the endpoint chain records the client");
    ok(strstr(got, "add element ip coracle-proxy service-nodeports { udp . 30053 : goto "
                   "external-kube-system/dns/udp/53 }\n") != NULL,
       "NodePort: an element of service-nodeports");
    ok(strstr(got, "add rule ip coracle-proxy endpoint-kube-system/dns/udp/53__10.1.0.2/8080 "
                   "meta l4proto udp dnat to 10.1.0.2:8080\n") != NULL,
       "ClientIP affinity: an endpoint chain DNATs");
    ok(strstr(got, "external-kube-system/dns/udp/53 meta mark set meta mark | 0x4000\n") &&
           strstr(got, "external-kube-system/dns/udp/53 goto service-kube-system/dns/udp/53\n"),
       "NodePort, policy Cluster: masquerade, then the service chain");
    free(got);

    s.ext_local = true;
    got = script(NULL, &s);
    ok(strstr(got, "external-kube-system/dns/udp/53 numgen random mod 1 vmap { 0 : goto "
                   "endpoint-kube-system/dns/udp/53__10.1.0.2/8080 }\n") &&
           !strstr(got, "external-kube-system/dns/udp/53 meta mark set"),
       "policy Local: only the local endpoint, no masquerade");
    free(got);

    struct kpx_port pr = {"", "udp", 53, 30053, eps2 + 1, 1};
    s.ports = &pr;
    got = script(NULL, &s);
    ok(strstr(got, "external-kube-system/dns/udp/53 drop\n") != NULL,
       "policy Local without a local endpoint: drop");
    free(got);

    /* without affinity, policy Local DNATs to the local endpoint in the external chain */
    s.affinity_timeout = 0;
    s.ports = &p;
    got = script(NULL, &s);
    ok(strstr(got, "external-kube-system/dns/udp/53 meta l4proto udp dnat to 10.1.0.2:8080\n") &&
           !strstr(got, "endpoint-"),
       "policy Local without affinity: a DNAT to the local endpoint, no endpoint chain");
    free(got);
}

/* A Service only ClusterIPs lead to keeps its endpoints in a shared map: an endpoint replaced
 * is one element deleted and one added, no chain touched. */
static void test_shared_map(void)
{
    struct kpx_port p = {"http", "tcp", 80, 0, eps2, 2};
    struct kpx_svc s = {
        .ns = "default", .name = "web", .vips = vip, .nvips = 1, .ports = &p, .nports = 1};
    char *got = script(NULL, &s);
    const char *m = strstr(got, "numgen random mod 2 map @service-endpoints-tcp-");
    ok(m && strstr(got,
                   "service-default/web/tcp/http meta l4proto tcp dnat ip addr . port to ip "
                   "daddr . tcp dport . numgen random mod 2 map @service-endpoints-tcp-") != NULL,
       "a ClusterIP Service: the DNAT looks its endpoint up in a shared map");
    unsigned n =
        m ? (unsigned)atoi(m + strlen("numgen random mod 2 map @service-endpoints-tcp-")) : 0;
    char want[256];
    snprintf(want, sizeof want,
             "add element ip coracle-proxy service-endpoints-tcp-%u { 10.96.0.10 . 80 . 0 : "
             "10.1.0.2 . 8080, 10.96.0.10 . 80 . 1 : 10.1.0.3 . 8080 }\n",
             n);
    ok(n < KPX_EP_MAPS && strstr(got, want) != NULL,
       "the endpoints: elements of one map, in one command");
    free(got);

    static const struct kpx_ep eps2b[] = {{"10.1.0.2", 8080, true}, {"10.1.0.9", 8080, true}};
    struct kpx_port pb = {"http", "tcp", 80, 0, eps2b, 2};
    struct kpx_svc sb = s;
    sb.ports = &pb;
    got = script(&s, &sb);
    snprintf(want, sizeof want,
             "delete element ip coracle-proxy service-endpoints-tcp-%u { 10.96.0.10 . 80 . 1 }\n"
             "add element ip coracle-proxy service-endpoints-tcp-%u { 10.96.0.10 . 80 . 1 : "
             "10.1.0.9 . 8080 }\n",
             n, n);
    is_str(got, want, "an endpoint replaced: one element, no chain");
    free(got);

    struct kpx_port p1 = {"http", "tcp", 80, 0, eps2, 1};
    struct kpx_svc s1 = s;
    s1.ports = &p1;
    got = script(&s, &s1);
    ok(strstr(got, "flush chain ip coracle-proxy service-default/web/tcp/http\n") &&
           strstr(got, "numgen random mod 1 map @service-endpoints-tcp-") &&
           strstr(got, "delete element ip coracle-proxy service-endpoints-tcp-") &&
           strstr(got, "{ 10.96.0.10 . 80 . 1 }\n") && !strstr(got, "add element"),
       "an endpoint removed: the spread shrinks, its element goes");
    free(got);

    struct kpx_port pn = {"http", "tcp", 80, 30080, eps2, 2};
    s.ports = &pn;
    got = script(NULL, &s);
    ok(strstr(got, "numgen random mod 2 map { 0 : 10.1.0.2 . 8080, 1 : 10.1.0.3 . 8080 }\n") &&
           !strstr(got, "service-endpoints-"),
       "a NodePort Service: its own DNAT map (the shared map's key is a ClusterIP)");
    free(got);
}

static void test_base(void)
{
    struct buf b = {0};
    kpx_script_base(&b);
    ok(!strncmp(b.p, "add table ip coracle-proxy\ndelete table ip coracle-proxy\n", 55),
       "the base script replaces any leftover table");
    ok(strstr(b.p, "fib daddr type local") != NULL, "NodePorts on the node's local addresses");
    ok(strstr(b.p, "add map ip coracle-proxy service-endpoints-udp-15 { typeof ip daddr . udp "
                   "dport . numgen random mod 1 : ip daddr . udp dport; }\n") != NULL,
       "the shared endpoint maps");
    ok(strstr(b.p, "    ct state new ct status dnat fib daddr . iif oif exists meta mark set meta "
                   "mark | 0x4000\n") != NULL,
       "hairpin: a DNATed connection sent back out of its interface is masqueraded");
    buf_free(&b);
}

int main(void)
{
    test_clusterip();
    test_headless();
    test_affinity_nodeport();
    test_shared_map();
    test_base();
    return done_testing();
}
