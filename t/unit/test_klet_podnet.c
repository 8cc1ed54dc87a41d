/* Unit tests for the pure parts of the pod network across nodes
 * (src/kubelet/podnet.c): pod ranges as Nodes carry them, the VTEP MAC a
 * node's InternalIP gives, --pod-network's names (and the deprecated
 * --pod-network-mode's), and the masquerade table (netmasq.c). */
#include "config.h"
#include "tap.h"

#include "klet.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void cidr(const char *s, const char *net, int plen)
{
    uint32_t n = 0;
    int p = -1;
    int rc = klet_podnet_parse_cidr(s, &n, &p);
    if (!net) {
        is_int(rc, -1, s);
        return;
    }
    char got[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &n, got, sizeof got);
    ok(rc == 0 && !strcmp(got, net) && p == plen, "%s -> %s/%d (got %s/%d)", s, net, plen, got, p);
}

static void test_cidr(void)
{
    cidr("10.244.1.0/24", "10.244.1.0", 24);
    cidr("10.244.1.7/24", "10.244.1.0", 24); /* host bits dropped, as the kernel wants */
    cidr("10.0.0.0/8", "10.0.0.0", 8);
    cidr("192.0.2.1/32", "192.0.2.1", 32);
    cidr("0.0.0.0/0", "0.0.0.0", 0);
    cidr("10.244.1.0", NULL, 0);
    cidr("10.244.1.0/33", NULL, 0);
    cidr("10.244.1.0/", NULL, 0);
    cidr("10.244.1.0/2x", NULL, 0);
    cidr("fd00::/64", NULL, 0); /* IPv6 ranges are not routed (yet) */
    cidr("", NULL, 0);
    cidr(NULL, NULL, 0);
}

static void test_mac(void)
{
    struct in_addr a;
    inet_pton(AF_INET, "172.30.1.12", &a);
    uint8_t mac[6];
    klet_podnet_mac(a.s_addr, mac);
    const uint8_t want[6] = {0x0e, 0xc0, 172, 30, 1, 12};
    ok(!memcmp(mac, want, 6), "VTEP MAC 0e:c0 + the InternalIP's bytes (locally administered)");
    ok((mac[0] & 3) == 2, "unicast, locally administered");
}

static void test_mode(void)
{
    int m = -1;
    ok(klet_podnet_mode_parse("none", &m) == 0 && m == KLET_PODNET_NONE, "none");
    ok(klet_podnet_mode_parse("host-gw", &m) == 0 && m == KLET_PODNET_HOST_GW, "host-gw");
    ok(klet_podnet_mode_parse("vxlan", &m) == 0 && m == KLET_PODNET_VXLAN, "vxlan");
    ok(klet_podnet_mode_parse("VXLAN", &m) < 0, "names are case-sensitive, as flannel's");
    ok(klet_podnet_mode_parse("wireguard", &m) < 0, "wireguard is not a mode (yet)");
    ok(klet_podnet_mode_parse(NULL, &m) < 0, "NULL");
}

/* --pod-network net and --pod-network-mode legacy: rc, and on success the built-in bridge and
 * the routing mode */
static void config(const char *net, const char *legacy, const char *pod_cidr, int rc, bool builtin,
                   int mode)
{
    static struct klet k;
    memset(&k, 0, sizeof k);
    k.cfg.pod_network = (char *)net;
    k.cfg.pod_network_mode = (char *)legacy;
    k.cfg.pod_cidr = (char *)pod_cidr;
    char *err = NULL;
    char name[128];
    snprintf(name, sizeof name, "--pod-network %s --pod-network-mode %s --pod-cidr %s", net, legacy,
             pod_cidr);
    int got = klet_podnet_config(&k, &err);
    is_int(got, rc, name);
    if (got == 0)
        ok(k.net.builtin == builtin && k.podnet.mode == mode, "%s: bridge %d, mode %d", name,
           k.net.builtin, k.podnet.mode);
    else
        ok(err && *err, "%s: %s", name, err ? err : "(no message)");
    free(err);
}

static void test_config(void)
{
    config("none", "", "", 0, false, KLET_PODNET_NONE);
    config("bridge", "", "", 0, true, KLET_PODNET_NONE);
    config("host-gw", "", "", 0, true, KLET_PODNET_HOST_GW);
    config("vxlan", "", "", 0, true, KLET_PODNET_VXLAN);
    config("", "", "10.1.0.0/24", 0, true, KLET_PODNET_NONE);
    config("", "", "", 0, false, KLET_PODNET_NONE);
    config("", "vxlan", "", 0, false, KLET_PODNET_VXLAN);          /* a CNI config of one's own */
    config("bridge", "host-gw", "", 0, true, KLET_PODNET_HOST_GW); /* the old spelling */
    config("vxlan", "vxlan", "", 0, true, KLET_PODNET_VXLAN);
    config("vxlan", "host-gw", "", -1, false, 0);
    config("flannel", "", "", -1, false, 0);
    config("", "bridge", "", -1, false, 0);
}

static void test_masq(void)
{
    struct buf b = {0};
    klet_masq_script(&b, "10.244.3.0/24", "10.244.0.0/16");
    ok(strstr(b.p, "ip saddr != 10.244.3.0/24 return\n") &&
           strstr(b.p, "ip daddr 10.244.0.0/16 return\n") &&
           strstr(b.p, "masquerade fully-random\n"),
       "masquerade from the node's range, not into the cluster's");
    ok(!strncmp(b.p, "add table ip coracle-net\ndelete table ip coracle-net\n", 49),
       "the table is replaced in the same transaction");
    buf_reset(&b);
    klet_masq_script(&b, "10.244.3.0/24", "");
    ok(strstr(b.p, "ip daddr 10.244.3.0/24 return\n") != NULL,
       "no cluster CIDR: what leaves the node's range");
    buf_free(&b);
}

static void test_notrack(void)
{
    struct buf b = {0};
    klet_offload_notrack_script(&b, 4789);
    ok(!strncmp(b.p, "add table ip coracle-vxlan\ndelete table ip coracle-vxlan\n", 55),
       "the tunnel's table is replaced in the same transaction");
    ok(strstr(b.p, "type filter hook prerouting priority raw;") &&
           strstr(b.p, "type filter hook output priority raw;"),
       "raw priority on prerouting and output: before conntrack sees the packet");
    const char *r = strstr(b.p, "udp dport 4789 notrack\n");
    ok(r && strstr(r + 1, "udp dport 4789 notrack\n"), "both untrack UDP to the VXLAN port");
    buf_free(&b);
}

int main(void)
{
    test_cidr();
    test_mac();
    test_mode();
    test_config();
    test_masq();
    test_notrack();
    done_testing();
}
