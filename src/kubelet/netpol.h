/*
 * netpol: NetworkPolicy (networking.k8s.io/v1) enforcement for the pods of
 * this node, in nftables (table inet coracle-netpol, the kubelet's own).
 * netpol_rules.c turns a resolved model (which sets hold which peers, which
 * local pod is isolated in which direction and what each allow rule says)
 * into named nftables objects, the same kpx_objs the Service proxy diffs,
 * so that a change is one transaction touching only what differs: a peer
 * pod that comes or goes is one set element. It is pure, so unit tests read
 * its text. netpol.c keeps NetworkPolicies, Pods and Namespaces (all
 * namespaces: policies select peers cluster-wide) through informers and
 * builds the model.
 *
 * Layout of the table (<pol> is "<ns>/<policy>", <dir> ingress or egress):
 *   chain forward          hook forward, priority filter: established and
 *                          related traffic passes; then the source's egress
 *                          chain (ip saddr vmap @egress-pods), then the
 *                          destination's ingress chain (ip daddr vmap
 *                          @ingress-pods)
 *   chain input            hook input: egress of local pods to the node
 *   map ingress-pods, egress-pods   isolated local pod IP -> jump <dir>-<ns>/<pod>
 *   chain <dir>-<ns>/<pod> the allow rules of every policy selecting the pod
 *                          for that direction (each "return"), then drop
 *   set <pol>/<dir>/<i>/pods        IPs of the pods rule i's peers select
 *   set <pol>/<dir>/<i>/cidrs       rule i's ipBlocks, except removed (intervals)
 *   set <pol>/egress/<i>/port<j>    ip . proto . port of the peers' named port j
 * Traffic from the node itself to its pods never crosses the forward hook
 * (it leaves through output), so it stays allowed, as most CNI plugins do
 * for probes. Services' traffic is matched after the proxy's DNAT
 * (prerouting), on pod IPs.
 */
#ifndef CORACLE_KLET_NETPOL_H
#define CORACLE_KLET_NETPOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "proxy.h"

#define KNP_TABLE "inet coracle-netpol"

/* One port entry of an allow rule (borrowed). */
struct knp_port {
    const char *proto;     /* "tcp", "udp", "sctp" */
    int port, end_port;    /* 0: every port of proto; end_port 0: port alone */
    const char *named_set; /* egress named port: the ip . proto . port set; else NULL */
};

/* One allow rule (ingress: from/ports; egress: to/ports) as it applies to one pod. */
struct knp_rule {
    bool all_peers;        /* no from/to: any peer */
    const char *pods_set;  /* the set of peer pods' IPs, or NULL */
    const char *cidrs_set; /* the set of ipBlocks, or NULL */
    bool all_ports;        /* no ports: any port */
    const struct knp_port *ports;
    size_t nports;
};

/* An ipBlock (borrowed): cidr and the ranges taken out of it. */
struct knp_block {
    const char *cidr;
    const char *const *except;
    size_t nexcept;
};

/* A named port's destination (egress): one element of a port set (borrowed). */
struct knp_dest {
    const char *ip, *proto;
    int port;
};

/* "<ns>/<name>" as object names hold it: nftables takes names of up to 255 bytes, so a
 * longer one is cut to KNP_ID_MAX with a hash of the whole at its end. malloc'd. */
#define KNP_ID_MAX 200
char *knp_id(const char *ns, const char *name);
/* The objects of a set of pod IPs named name (each IP once), appended to out. */
void knp_pods_set_objs(const char *name, const char *const *ips, size_t n, struct kpx_objs *out);
/* The objects of an interval set of the IPv4 ipBlocks (except removed, overlaps merged;
 * IPv6 blocks are left out). */
void knp_cidrs_set_objs(const char *name, const struct knp_block *b, size_t n,
                        struct kpx_objs *out);
/* The objects of a set of ip . proto . port destinations. */
void knp_dests_set_objs(const char *name, const struct knp_dest *d, size_t n, struct kpx_objs *out);
/* The chain "<dir>-<ns>/<pod>" of a local pod isolated for dir ("ingress" or "egress") with
 * the allow rules, and its element in the <dir>-pods map. */
void knp_pod_objs(const char *dir, const char *ns, const char *pod, const char *ip,
                  const struct knp_rule *r, size_t n, struct kpx_objs *out);
/* Appends the table and its base chains and maps, after deleting any table of that name. */
void knp_script_base(struct buf *b);

struct klet;
/* Starts enforcement (--network-policy): installs the table and, once policies, pods and
 * namespaces are listed, every rule in one transaction; then each change in one transaction
 * of its own. 0, or -1 when libnftables does not work here (logged). */
int klet_netpol_start(struct klet *k);
/* Removes the table (shutdown) and frees the state. */
void klet_netpol_stop(struct klet *k);
/* Deletes the table if present (--cleanup). 0, or -1 with *err (malloc'd). */
int knp_cleanup(char **err);

#endif
