/*
 * offload: what makes pod-to-pod traffic over the VXLAN overlay cheap
 * (measured with contrib/bench/net-bench; doc/DESIGN.md, networking).
 *
 * On this kernel the overlay already moves 64 KiB GSO packets on every
 * hop (the VXLAN device and veths offload UDP tunnel segmentation in
 * software); what it costs beyond the same hops without an overlay is
 * per packet work. Two settings take a share of it back:
 *
 *   GRO on both ends of each pod's veth pair. On a veth it switches the
 *   receiving end to NAPI: packets cross in batches through a ring and
 *   go up the stack as lists instead of one softirq backlog entry each.
 *   Set after CNI ADD (the plugin made the pair), through SIOCETHTOOL,
 *   inside the pod's namespace for its end; the setting goes with the
 *   pair when CNI DEL deletes it.
 *
 *   The tunnel's own packets (UDP to the VXLAN port) outside conntrack:
 *   a table of its own, ip coracle-vxlan, with a notrack rule at raw
 *   priority on prerouting and output. Without it, once any NAT rule
 *   (the Service proxy's) loads conntrack in the node's namespace, each
 *   encapsulated packet is looked up and NAT-hooked twice more per node,
 *   on top of its inner packet. A host firewall must then accept the
 *   port by number, not as an established flow (the peers' VTEPs send to
 *   it in both directions anyway). Made with the VXLAN device, removed
 *   with it (shutdown, --cleanup).
 *
 * Errors here never fail a pod or the node: they are logged as warnings
 * by the callers and the pod network works without the speed-up.
 */
#include "config.h"

#include "buf.h"
#include "klet.h"
#include "proxy.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define NOTRACK_TABLE "ip coracle-vxlan"

/* GRO on the interface named ifname in the caller's network namespace. */
static int gro_on(const char *ifname, char **err)
{
    struct ethtool_value ev = {.cmd = ETHTOOL_SGRO, .data = 1};
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    ifr.ifr_data = (char *)&ev;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int rc = fd < 0 ? -1 : ioctl(fd, SIOCETHTOOL, &ifr);
    if (rc < 0)
        *err = xasprintf("GRO on %s: %s", ifname, strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc;
}

/*
 * In the pod's namespace: GRO on ifname when it is a veth, its index and its
 * peer's (0 when not a veth: nothing to do). The calling thread enters the
 * namespace and comes back before anything else runs on it; not coming back
 * would leave the kubelet in a pod's network, so that aborts.
 */
static int pod_end(const char *netns, const char *ifname, int *self_ix, int *peer, char **err)
{
    int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    int pod = open(netns, O_RDONLY | O_CLOEXEC);
    int rc = -1;
    if (self < 0 || pod < 0 || setns(pod, CLONE_NEWNET) < 0) {
        *err = xasprintf("entering %s: %s", netns, strerror(errno));
        goto out;
    }
    *self_ix = (int)if_nametoindex(ifname);
    rc = klet_nl_veth_peer(ifname, 0, peer, err);
    if (rc == 0 && *peer > 0)
        rc = gro_on(ifname, err);
    if (setns(self, CLONE_NEWNET) < 0)
        fatal("pod network: leaving %s: %s", netns, strerror(errno));
out:
    if (pod >= 0)
        close(pod);
    if (self >= 0)
        close(self);
    return rc;
}

int klet_offload_pod(const char *netns, const char *ifname, char **err)
{
    int ix = 0, peer = 0, back = 0;
    if (pod_end(netns, ifname, &ix, &peer, err) < 0)
        return -1;
    if (peer <= 0)
        return 0; /* not a veth (another CNI plugin's device): left as it is */
    /* The peer's index is one in our namespace only if that end is here and points back. */
    char name[IF_NAMESIZE];
    if (klet_nl_veth_peer(NULL, peer, &back, err) < 0 || back != ix ||
        !if_indextoname((unsigned)peer, name)) {
        free(*err);
        *err = xasprintf("%s in %s: its veth peer is not in the node's namespace", ifname, netns);
        return -1;
    }
    return gro_on(name, err);
}

void klet_offload_notrack_script(struct buf *b, int port)
{
    buf_printf(b,
               "add table " NOTRACK_TABLE "\n"
               "delete table " NOTRACK_TABLE "\n"
               "table " NOTRACK_TABLE " {\n"
               "  comment \"the pod network's VXLAN packets outside conntrack, by "
               "coracle-kubelet\"\n"
               "  chain prerouting {\n"
               "    type filter hook prerouting priority raw; policy accept;\n"
               "    udp dport %d notrack\n"
               "  }\n"
               "  chain output {\n"
               "    type filter hook output priority raw; policy accept;\n"
               "    udp dport %d notrack\n"
               "  }\n"
               "}\n",
               port, port);
}

int klet_offload_notrack(int port, char **err)
{
    struct buf b = {0};
    klet_offload_notrack_script(&b, port);
    char *script = buf_take(&b);
    int rc = kpx_nft_once(script, err);
    free(script);
    return rc;
}

int klet_offload_notrack_remove(char **err)
{
    return kpx_nft_once("add table " NOTRACK_TABLE "\ndelete table " NOTRACK_TABLE "\n", err);
}
