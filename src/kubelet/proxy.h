/*
 * proxy: the kubelet's Service proxy, in nftables (the spirit of
 * kube-proxy's nftables mode). proxy_rules.c turns one Service and its
 * endpoints into named nftables objects (chains, affinity sets, map
 * elements) and two object lists into the script of one transaction that
 * changes only what differs; it is pure, so unit tests read its text.
 * proxy.c keeps Services and EndpointSlices through informers (all
 * namespaces), builds the model of each changed Service and runs the
 * scripts through libnftables, in a table of its own: ip coracle-proxy.
 *
 * Layout of the table (every name below is fixed; <sp> is
 * "<ns>/<name>/<proto>/<port name or number>"):
 *   map service-ips        ip . proto . port -> goto service-<sp> (ClusterIPs)
 *                                            -> goto external-<sp> (externalIPs)
 *   map service-nodeports  proto . port -> goto external-<sp>
 *   map no-endpoint-services, no-endpoint-nodeports -> goto reject-chain
 *   maps service-endpoints-<proto>-<0..KPX_EP_MAPS-1>  ip . port . slot ->
 *                          endpoint ip . port (the endpoints of Services only
 *                          ClusterIPs lead to; a Service's map by a hash of
 *                          <sp>)
 *   chain filter-forward   hairpin: a new DNATed connection routed back out
 *                          of the interface it came in by gets the
 *                          masquerade mark (no rule per endpoint)
 *   chain service-<sp>     masquerade mark (--masquerade-all; or from outside
 *                          --cluster-cidr), then DNAT to an
 *                          endpoint: "dnat ip addr . port to numgen random
 *                          mod N map { 0 : <ip> . <port>, ... }" (one rule,
 *                          no chain per endpoint, nothing that jumps: an
 *                          endpoint change rewrites this chain alone and
 *                          the kernel need not revalidate the table);
 *                          where service-endpoints-* hold the endpoints:
 *                          "dnat ip addr . port to ip daddr . <proto> dport .
 *                          numgen random mod N map
 *                          @service-endpoints-<proto>-<n>" (an endpoint replaced
 *                          changes one element, no chain)
 *   chain external-<sp>    masquerade (policy Cluster) then the service
 *                          chain; policy Local: only the node's endpoints,
 *                          drop when there are none
 * With ClientIP sessionAffinity a Service keeps a chain per endpoint:
 *   chain service-<sp>     affinity lookups, then numgen random mod N vmap
 *                          over the endpoint chains
 *   chain endpoint-<sp>__<ip>/<port>  affinity update, dnat
 *   set affinity-<sp>__<ip>/<port>    the clients (timeout)
 */
#ifndef CORACLE_KLET_PROXY_H
#define CORACLE_KLET_PROXY_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#include <protobuf-c/protobuf-c.h>

#define KPX_TABLE "ip coracle-proxy"
#define KPX_EP_MAPS 16 /* service-endpoints-<proto>-<n> maps a protocol */

/* One endpoint of a Service port (borrowed strings). */
struct kpx_ep {
    const char *ip;
    int port;
    bool local; /* on this node (externalTrafficPolicy Local) */
};

/* One port of a Service and its ready endpoints (borrowed). */
struct kpx_port {
    const char *name;  /* "" when the Service has a single unnamed port */
    const char *proto; /* "tcp", "udp", "sctp" */
    int port;
    int node_port; /* 0: none */
    const struct kpx_ep *eps;
    size_t neps;
};

/* A Service as the proxy programs it (borrowed). */
struct kpx_svc {
    const char *ns, *name;
    const char *const *vips; /* IPv4 ClusterIPs */
    size_t nvips;
    const char *const *ext_ips; /* spec.externalIPs */
    size_t next_ips;
    bool ext_local;           /* externalTrafficPolicy: Local */
    int affinity_timeout;     /* sessionAffinity ClientIP: seconds; 0: none */
    bool masq_all;            /* masquerade all ClusterIP traffic (see proxy.c) */
    const char *cluster_cidr; /* else masquerade ClusterIP traffic from outside it (NULL, "":
                                 none) */
    const struct kpx_port *ports;
    size_t nports;
};

/* A named nftables object the proxy made for one Service. */
struct kpx_obj {
    char type;  /* 'c' chain, 's' set, 'e' map element */
    char *name; /* chain or set name; the map's name for an element */
    char *key;  /* chain: its rules, one a line; set: its declaration; element: the key */
    char *val;  /* element of a map: its verdict; NULL otherwise (a set's element too) */
};
struct kpx_objs {
    struct kpx_obj *v;
    size_t n;
};

/* The objects of s, appended to out (free with kpx_objs_free). A Service without ports or
 * ClusterIPs (headless) has none. */
void kpx_svc_objs(const struct kpx_svc *s, struct kpx_objs *out);
void kpx_objs_free(struct kpx_objs *o);
/* Appends to b the commands that turn old into new (either may be empty): elements that
 * went are deleted, new sets and chains added, changed chains flushed and refilled, new
 * elements added, chains and sets that went deleted. Nothing when they are equal. */
void kpx_script_diff(struct buf *b, const struct kpx_objs *old, const struct kpx_objs *new_objs);
/* The same in another table ("inet coracle-netpol"); an element without val is a set's. */
void kpx_script_diff_in(struct buf *b, const char *table, const struct kpx_objs *old,
                        const struct kpx_objs *new_objs);
/* Appends the table, its maps and base chains, after deleting any table of that name (the
 * start's reconcile of leftovers, in the same transaction as the rest). */
void kpx_script_base(struct buf *b);

struct klet;
struct inf;
/* Starts the proxy (--proxy-mode nftables), on the kubelet's Service watch
 * (klet_services_start, started first): installs the base table and, once Services and
 * EndpointSlices are listed, every Service in one transaction; then each change in one
 * transaction of its own. 0, or -1 when libnftables does not work here (logged). */
int klet_proxy_start(struct klet *k);
/* From the kubelet's Service watch (services.c): a Service or EndpointSlice was added,
 * changed (old: its previous version) or deleted (old NULL); both informers have listed. */
void klet_proxy_changed(struct klet *k, struct inf *inf, const ProtobufCMessage *old,
                        const ProtobufCMessage *obj);
void klet_proxy_synced(struct klet *k);
/* Removes the table (shutdown, --cleanup) and frees the proxy. */
void klet_proxy_stop(struct klet *k);
/*
 * The `kubernetes` Service's ClusterIP and https port while the proxy
 * programs Services and the Service exists: true with ip and *port.
 */
bool klet_proxy_kubernetes(const struct klet *k, char *ip, size_t ip_len, int *port);
/* Deletes the table if present (--cleanup). 0, or -1 with *err (malloc'd). */
int kpx_cleanup(char **err);

/*
 * libnftables for the kubelet's tables (proxy, masquerade, NetworkPolicy):
 * a context that keeps its output and errors (NULL if libnftables fails);
 * a script run in one (0, or -1 and *err with nftables' message); and a
 * script run in a context of its own, for one-off changes (a table made
 * or removed).
 */
struct nft_ctx;
struct nft_ctx *kpx_nft_new(void);
int kpx_nft_run(struct nft_ctx *nft, const char *script, char **err);
int kpx_nft_once(const char *script, char **err);

#endif
