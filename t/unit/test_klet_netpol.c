/* Unit tests for NetworkPolicy rule generation (src/kubelet/netpol_rules.c): peer sets,
 * ipBlocks with except, a local pod's chain, and the transaction between two versions. */
#include "config.h"
#include "tap.h"

#include "buf.h"
#include "netpol.h"

#include <stdlib.h>
#include <string.h>

static char *diff(const struct kpx_objs *a, const struct kpx_objs *b)
{
    struct buf s = {0};
    kpx_script_diff_in(&s, KNP_TABLE, a, b);
    buf_puts(&s, "");
    return buf_take(&s);
}

static void test_peer_set(void)
{
    const char *ips2[] = {"10.1.0.3", "10.1.0.2", "10.1.0.3"};
    const char *ips3[] = {"10.1.0.2", "10.1.0.3", "10.1.0.9"};
    struct kpx_objs a = {0}, b = {0}, none = {0};
    knp_pods_set_objs("default/p/ingress/0/pods", ips2, 3, &a);
    knp_pods_set_objs("default/p/ingress/0/pods", ips3, 3, &b);
    char *got = diff(&none, &a);
    is_str(got,
           "add set inet coracle-netpol default/p/ingress/0/pods { type ipv4_addr; }\n"
           "add element inet coracle-netpol default/p/ingress/0/pods { 10.1.0.2 }\n"
           "add element inet coracle-netpol default/p/ingress/0/pods { 10.1.0.3 }\n",
           "a peer set: sorted, each IP once");
    free(got);
    got = diff(&a, &b);
    is_str(got, "add element inet coracle-netpol default/p/ingress/0/pods { 10.1.0.9 }\n",
           "a new peer pod is one element, nothing else rewritten");
    free(got);
    got = diff(&b, &a);
    is_str(got, "delete element inet coracle-netpol default/p/ingress/0/pods { 10.1.0.9 }\n",
           "a peer that goes is one element deleted");
    free(got);
    kpx_objs_free(&a);
    kpx_objs_free(&b);
}

static void test_cidrs(void)
{
    const char *ex[] = {"10.2.1.0/24", "10.2.3.4/32"};
    struct knp_block blk[] = {
        {"10.2.0.0/16", ex, 2},
        {"10.4.0.0/24", NULL, 0},
        {"10.4.0.128/25", NULL, 0}, /* inside the one before: merged */
        {"fd00::/64", NULL, 0},     /* IPv6: left out */
    };
    struct kpx_objs a = {0}, none = {0};
    knp_cidrs_set_objs("default/p/ingress/1/cidrs", blk, 4, &a);
    char *got = diff(&none, &a);
    is_str(got,
           "add set inet coracle-netpol default/p/ingress/1/cidrs { type ipv4_addr; flags "
           "interval; }\n"
           "add element inet coracle-netpol default/p/ingress/1/cidrs { 10.2.0.0-10.2.0.255 }\n"
           "add element inet coracle-netpol default/p/ingress/1/cidrs { 10.2.2.0-10.2.3.3 }\n"
           "add element inet coracle-netpol default/p/ingress/1/cidrs { 10.2.3.5-10.2.255.255 "
           "}\n"
           "add element inet coracle-netpol default/p/ingress/1/cidrs { 10.4.0.0-10.4.0.255 }\n",
           "ipBlocks: except cut out, overlaps merged, IPv6 left out");
    free(got);
    kpx_objs_free(&a);
    struct knp_block all = {"0.0.0.0/0", NULL, 0};
    knp_cidrs_set_objs("x", &all, 1, &a);
    ok(a.n == 2 && !strcmp(a.v[1].key, "0.0.0.0-255.255.255.255"), "0.0.0.0/0 is every address");
    kpx_objs_free(&a);
}

static void test_pod_chain(void)
{
    struct knp_port ports[] = {{"tcp", 80, 0, NULL}, {"udp", 5000, 5010, NULL}};
    struct knp_port named[] = {{"tcp", 0, 0, "default/p/egress/0/port0"}};
    struct knp_rule in[] = {
        {.all_peers = true, .all_ports = true},
        {.pods_set = "default/p/ingress/1/pods",
         .cidrs_set = "default/p/ingress/1/cidrs",
         .ports = ports,
         .nports = 2},
        {.pods_set = "default/p/ingress/2/pods", .all_ports = false, .nports = 0},
    };
    struct kpx_objs a = {0}, b = {0}, none = {0};
    knp_pod_objs("ingress", "default", "web", "10.1.0.5", in, 3, &a);
    char *got = diff(&none, &a);
    is_str(got,
           "add chain inet coracle-netpol ingress-default/web\n"
           "add rule inet coracle-netpol ingress-default/web return\n"
           "add rule inet coracle-netpol ingress-default/web ip saddr @default/p/ingress/1/pods "
           "meta l4proto tcp th dport 80 return\n"
           "add rule inet coracle-netpol ingress-default/web ip saddr @default/p/ingress/1/pods "
           "meta l4proto udp th dport 5000-5010 return\n"
           "add rule inet coracle-netpol ingress-default/web ip saddr @default/p/ingress/1/cidrs "
           "meta l4proto tcp th dport 80 return\n"
           "add rule inet coracle-netpol ingress-default/web ip saddr @default/p/ingress/1/cidrs "
           "meta l4proto udp th dport 5000-5010 return\n"
           "add rule inet coracle-netpol ingress-default/web drop\n"
           "add element inet coracle-netpol ingress-pods { 10.1.0.5 : jump "
           "ingress-default/web }\n",
           "an isolated pod: a chain of allow rules ending in drop, its map element");
    free(got);

    knp_pod_objs("ingress", "default", "web", "10.1.0.5", in, 1, &b);
    got = diff(&a, &b);
    is_str(got,
           "flush chain inet coracle-netpol ingress-default/web\n"
           "add rule inet coracle-netpol ingress-default/web return\n"
           "add rule inet coracle-netpol ingress-default/web drop\n",
           "a changed rule list: the chain refilled, the element kept");
    free(got);
    got = diff(&b, &none);
    is_str(got,
           "delete element inet coracle-netpol ingress-pods { 10.1.0.5 }\n"
           "flush chain inet coracle-netpol ingress-default/web\n"
           "delete chain inet coracle-netpol ingress-default/web\n",
           "a pod no longer isolated: element, then chain, go");
    free(got);
    kpx_objs_free(&a);
    kpx_objs_free(&b);

    struct knp_rule eg[] = {{.pods_set = "default/p/egress/0/pods", .ports = named, .nports = 1}};
    knp_pod_objs("egress", "default", "cli", "10.1.0.6", eg, 1, &a);
    got = diff(&none, &a);
    ok(strstr(got, "egress-default/cli ip daddr . meta l4proto . th dport "
                   "@default/p/egress/0/port0 return\n") != NULL &&
           strstr(got, "egress-pods { 10.1.0.6 : jump egress-default/cli }") != NULL,
       "egress: a named port matches its set of the peers' ip . proto . port");
    free(got);
    kpx_objs_free(&a);
    struct knp_dest d[] = {{"10.1.0.7", "tcp", 8080}};
    knp_dests_set_objs("s", d, 1, &a);
    ok(a.n == 2 && !strcmp(a.v[1].key, "10.1.0.7 . tcp . 8080"), "a named port's element");
    kpx_objs_free(&a);
}

static void test_long_names(void)
{
    char name[254];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    char *a = knp_id("default", name), *b = knp_id("default", "web");
    name[sizeof name - 2] = 'y'; /* past the cut: only the hash differs */
    char *c = knp_id("default", name);
    ok(strlen(a) == KNP_ID_MAX && strcmp(a, c) && !strcmp(b, "default/web"),
       "a long ns/name is cut with a hash, a short one kept");
    free(a);
    free(b);
    free(c);
}

static void test_base(void)
{
    struct buf b = {0};
    knp_script_base(&b);
    ok(!strncmp(b.p, "add table inet coracle-netpol\ndelete table inet coracle-netpol\n", 61),
       "the base script replaces any leftover table");
    ok(strstr(b.p, "hook forward priority filter") && strstr(b.p, "ct state established,related"),
       "forward hook; replies pass");
    buf_free(&b);
}

int main(void)
{
    test_peer_set();
    test_cidrs();
    test_pod_chain();
    test_long_names();
    test_base();
    return done_testing();
}
