/*
 * offload: what keeps pod-to-pod traffic over the VXLAN overlay cheap
 * (measured with contrib/bench/net-bench; doc/DESIGN.md, networking).
 *
 * The tunnel's own packets (UDP to the VXLAN port) outside conntrack: a
 * table of its own, ip coracle-vxlan, with a notrack rule at raw priority
 * on prerouting and output. Without it, once any NAT rule (the Service
 * proxy's) loads conntrack in the node's namespace, each encapsulated
 * packet is looked up and NAT-hooked twice more per node, on top of its
 * inner packet. A host firewall must then accept the port by number, not
 * as an established flow (the peers' VTEPs send to it in both directions
 * anyway). Made with the VXLAN device, removed with it (shutdown,
 * --cleanup).
 *
 * Errors here never fail the node: they are logged as warnings by the
 * callers and the pod network works without the speed-up.
 */
#include "config.h"

#include "buf.h"
#include "klet.h"
#include "proxy.h"

#include <stdlib.h>

#define NOTRACK_TABLE "ip coracle-vxlan"

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
