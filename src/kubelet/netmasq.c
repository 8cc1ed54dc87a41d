/*
 * netmasq: the built-in pod network's masquerade, in an nftables table of
 * its own (ip coracle-net). Kubernetes' network model has no NAT between
 * pods, so the bridge plugin's ipMasq (which masquerades everything that
 * leaves the node's range, other nodes' pods included) is off, and this
 * table masquerades what the node's pods send out of the cluster's pod
 * range only (--cluster-cidr, as kube-proxy and flannel name it; unset:
 * the node's own range, which is what ipMasq did):
 *
 *   postrouting (nat, srcnat): from the node's range, to the cluster
 *   range or multicast: leave it; else masquerade.
 *
 * bridgenet.c writes the table once the node's range is known (again when
 * it changes) and removes it at shutdown; `--cleanup` removes it too. The
 * table is replaced in one transaction, so no packet sees it half-made.
 */
#include "config.h"

#include "buf.h"
#include "klet.h"
#include "proxy.h"
#include "util.h"

#include <nftables/libnftables.h>
#include <stdlib.h>

#define MASQ_TABLE "ip coracle-net"

void klet_masq_script(struct buf *b, const char *range, const char *cluster)
{
    buf_printf(b,
               "add table " MASQ_TABLE "\n"
               "delete table " MASQ_TABLE "\n"
               "table " MASQ_TABLE " {\n"
               "  comment \"pods' masquerade, by coracle-kubelet\"\n"
               "  chain postrouting {\n"
               "    type nat hook postrouting priority srcnat; policy accept;\n"
               "    ip saddr != %s return\n"
               "    ip daddr %s return\n"
               "    ip daddr 224.0.0.0/4 return\n"
               "    masquerade fully-random\n"
               "  }\n"
               "}\n",
               range, cluster && *cluster ? cluster : range);
}

int klet_masq_apply(const char *range, const char *cluster, char **err)
{
    struct buf b = {0};
    klet_masq_script(&b, range, cluster);
    char *script = buf_take(&b);
    int rc = kpx_nft_once(script, err);
    free(script);
    return rc;
}

int klet_masq_remove(char **err)
{
    return kpx_nft_once("add table " MASQ_TABLE "\ndelete table " MASQ_TABLE "\n", err);
}
