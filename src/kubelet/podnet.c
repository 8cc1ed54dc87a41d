/*
 * podnet: pods on other nodes, reachable by IP. From a watch of every Node
 * (spec.podCIDR, the InternalIP in status.addresses) the kubelet routes each
 * other node's pod range, in one of two modes named after flannel's
 * backends (the names operators already know for the same mechanisms; as
 * k3s' --flannel-backend, one flag, --pod-network, says both whether the
 * kubelet gives pods its built-in bridge network and how other nodes'
 * pods are reached: none, bridge (this node only), host-gw, vxlan):
 *
 *   host-gw  a route "podCIDR via InternalIP" per peer; only when the peer
 *            is on a directly connected subnet (the kernel's route to it has
 *            no gateway), else the peer is refused with a warning naming it.
 *   vxlan    one kernel VXLAN device "coracle.<VNI>" (VNI 1, UDP port 8472
 *            by default, as flannel's), MTU 50 below the node's link; per
 *            peer a FDB entry (its VTEP MAC -> its InternalIP), a permanent
 *            neighbour (the first address of its range -> its VTEP MAC) and
 *            a route "podCIDR via <first address> dev coracle.<VNI> onlink".
 *
 * A VTEP's MAC is derived from its node's InternalIP (0e:c0:<the 4 bytes>),
 * so no node needs to publish it and peers' entries for a node stay right
 * when its kubelet restarts. Routes carry protocol KLET_RTPROT: after the
 * first Node list the kubelet deletes those of ours that no Node explains,
 * and the VXLAN device is made afresh at start (a reconcile that makes a
 * restart, also after SIGKILL, idempotent); `--cleanup` and shutdown delete
 * all of them and the device. Everything goes through rtnetlink (netlink.c).
 * In vxlan mode offload.c keeps the tunnel's packets out of conntrack (with
 * the device).
 */
#include "config.h"
#include "informer.h"
#include "kinds.h"
#include "klet.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* "10.1.2.0/24" -> network (network byte order) and prefix length; -1 when not IPv4 CIDR. */
int klet_podnet_parse_cidr(const char *s, uint32_t *net, int *plen)
{
    char ip[INET_ADDRSTRLEN];
    const char *slash = s ? strchr(s, '/') : NULL;
    if (!slash || (size_t)(slash - s) >= sizeof ip)
        return -1;
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = 0;
    char *end;
    long l = strtol(slash + 1, &end, 10);
    struct in_addr a;
    if (*end || end == slash + 1 || l < 0 || l > 32 || inet_pton(AF_INET, ip, &a) != 1)
        return -1;
    uint32_t mask = l ? htonl(~0u << (32 - l)) : 0;
    *net = a.s_addr & mask;
    *plen = (int)l;
    return 0;
}

void klet_podnet_mac(uint32_t ip, uint8_t mac[6])
{
    mac[0] = 0x0e;
    mac[1] = 0xc0;
    memcpy(mac + 2, &ip, 4);
}

int klet_podnet_mode_parse(const char *s, int *mode)
{
    static const char *const names[] = {"none", "host-gw", "vxlan"};
    for (int i = 0; i < (int)ARRAY_SIZE(names); i++)
        if (s && !strcmp(s, names[i])) {
            *mode = i;
            return 0;
        }
    return -1;
}

static char *vxlan_name(const struct klet *k)
{
    return xasprintf("coracle.%lld", k->cfg.vxlan_vni);
}

static uint32_t first_addr(uint32_t net)
{
    return net; /* the range's network address names its node's VTEP, as flannel's .0 */
}

/* The node's IPv4 pod range and InternalIP; -1 when it has not both yet. */
static int node_facts(const Coracle__V1__Node *n, uint32_t *net, int *plen, uint32_t *ip)
{
    const char *cidr = n->spec && n->spec->n_podcidrs ? n->spec->podcidrs[0]
                       : n->spec                      ? n->spec->podcidr
                                                      : NULL;
    if (klet_podnet_parse_cidr(cidr, net, plen) < 0 || !n->status)
        return -1;
    for (size_t i = 0; i < n->status->n_addresses; i++) {
        const Coracle__V1__NodeAddress *a = n->status->addresses[i];
        struct in_addr in;
        if (a->type && !strcmp(a->type, "InternalIP") && a->address &&
            inet_pton(AF_INET, a->address, &in) == 1) {
            *ip = in.s_addr;
            return 0;
        }
    }
    return -1;
}

static void peer_uninstall(struct klet *k, struct klet_peer *p)
{
    char *err = NULL;
    if (!p->installed)
        return;
    if (klet_nl_route(false, p->net, p->plen, 0, 0, false, &err) < 0)
        goto fail;
    if (k->podnet.mode == KLET_PODNET_VXLAN) {
        uint8_t mac[6];
        klet_podnet_mac(p->ip, mac);
        if (klet_nl_neigh(false, k->podnet.ifindex, first_addr(p->net), mac, &err) < 0 ||
            klet_nl_fdb(false, k->podnet.ifindex, mac, p->ip, &err) < 0)
            goto fail;
    }
    p->installed = false;
    log_info("pod network: node %s's range no longer routed", p->name);
    return;
fail:
    log_warn("pod network: node %s: %s", p->name, err);
    free(err);
}

static int install_host_gw(struct klet_peer *p, char **err)
{
    uint32_t gw;
    int oif;
    bool local;
    char *why = NULL;
    int rc = klet_nl_route_lookup(p->ip, &gw, &oif, &local, &why);
    free(why); /* unreachable: no route at all, not directly connected either */
    if (rc < 0 || gw || local) {
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &p->ip, a, sizeof a);
        *err = xasprintf("host-gw: InternalIP %s is not on a directly connected subnet; its pods "
                         "are not routed (nodes on different subnets need "
                         "--pod-network=vxlan)",
                         a);
        return -1;
    }
    return klet_nl_route(true, p->net, p->plen, p->ip, oif, false, err);
}

static int install_vxlan(struct klet *k, struct klet_peer *p, char **err)
{
    uint8_t mac[6];
    klet_podnet_mac(p->ip, mac);
    int ifx = k->podnet.ifindex;
    if (klet_nl_fdb(true, ifx, mac, p->ip, err) < 0 ||
        klet_nl_neigh(true, ifx, first_addr(p->net), mac, err) < 0)
        return -1;
    return klet_nl_route(true, p->net, p->plen, first_addr(p->net), ifx, true, err);
}

static void peer_install(struct klet *k, struct klet_peer *p)
{
    char *err = NULL;
    int rc =
        k->podnet.mode == KLET_PODNET_VXLAN ? install_vxlan(k, p, &err) : install_host_gw(p, &err);
    if (rc < 0) {
        log_warn("pod network: node %s: %s", p->name, err);
        klet_event_node(k, "Warning", "PodNetworkPeerUnreachable", "node %s: %s", p->name, err);
        free(err);
        return;
    }
    p->installed = true;
    char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &p->net, a, sizeof a);
    inet_ntop(AF_INET, &p->ip, b, sizeof b);
    log_info("pod network: node %s: %s/%d via %s", p->name, a, p->plen, b);
}

static struct klet_peer *peer_find(struct klet *k, const char *name)
{
    for (size_t i = 0; i < k->podnet.npeers; i++)
        if (!strcmp(k->podnet.peers[i].name, name))
            return &k->podnet.peers[i];
    return NULL;
}

static void peer_remove(struct klet *k, struct klet_peer *p)
{
    peer_uninstall(k, p);
    free(p->name);
    *p = k->podnet.peers[--k->podnet.npeers];
}

/* Our own range: the VXLAN device's address (peers' replies come back to it). */
static void own_range(struct klet *k, uint32_t net, int plen)
{
    if (k->podnet.own_net == net && k->podnet.own_plen == plen)
        return;
    k->podnet.own_net = net;
    k->podnet.own_plen = plen;
    char *err = NULL;
    if (k->podnet.mode == KLET_PODNET_VXLAN &&
        klet_nl_addr(k->podnet.ifindex, first_addr(net), 32, &err) < 0) {
        log_warn("pod network: %s", err);
        free(err);
    }
}

static void node_seen(struct klet *k, const Coracle__V1__Node *n)
{
    const char *name = n->metadata ? n->metadata->name : NULL;
    uint32_t net = 0, ip = 0;
    int plen = 0;
    if (!name)
        return;
    int have = node_facts(n, &net, &plen, &ip);
    if (!strcmp(name, k->cfg.node_name)) {
        if (have == 0)
            own_range(k, net, plen);
        return;
    }
    struct klet_peer *p = peer_find(k, name);
    if (p && (have < 0 || p->net != net || p->plen != plen || p->ip != ip)) {
        peer_remove(k, p);
        p = NULL;
    }
    if (have < 0 || p)
        return;
    struct klet_podnet *pn = &k->podnet;
    pn->peers = xrealloc(pn->peers, (pn->npeers + 1) * sizeof *pn->peers);
    p = &pn->peers[pn->npeers++];
    *p = (struct klet_peer){.name = xstrdup(name), .net = net, .plen = plen, .ip = ip};
    peer_install(k, p);
}

static void on_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    node_seen(arg, (const Coracle__V1__Node *)obj);
}

static void on_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                      void *arg)
{
    node_seen(arg, (const Coracle__V1__Node *)obj);
}

static void on_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    const Coracle__V1__Node *n = (const Coracle__V1__Node *)obj;
    struct klet_peer *p = n->metadata ? peer_find(arg, n->metadata->name) : NULL;
    if (p)
        peer_remove(arg, p);
}

static bool route_wanted(const struct klet *k, uint32_t dst, int plen)
{
    for (size_t i = 0; i < k->podnet.npeers; i++) {
        const struct klet_peer *p = &k->podnet.peers[i];
        if (p->installed && p->net == dst && p->plen == plen)
            return true;
    }
    return false;
}

/* Deletes our routes that no installed peer explains (keep_wanted) or all of them. */
static void routes_prune(struct klet *k, bool keep_wanted)
{
    uint32_t(*dst)[2] = NULL;
    size_t n = 0;
    char *err = NULL;
    if (klet_nl_routes_ours(&dst, &n, &err) < 0) {
        log_warn("pod network: %s", err);
        free(err);
    }
    for (size_t i = 0; i < n; i++) {
        if (keep_wanted && route_wanted(k, dst[i][0], (int)dst[i][1]))
            continue;
        if (klet_nl_route(false, dst[i][0], (int)dst[i][1], 0, 0, false, &err) < 0) {
            log_warn("pod network: %s", err);
            free(err);
            err = NULL;
        }
    }
    free(dst);
}

static void on_synced(inf_t *inf, void *arg)
{
    struct klet *k = arg;
    routes_prune(k, true);
    log_info("pod network: %zu peer node(s)", k->podnet.npeers);
}

/* The link that carries host_ip: the VXLAN device's lower link and MTU. */
static int lower_link(uint32_t host_ip, int *mtu)
{
    struct ifreq ifr = {0};
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct if_nameindex *ifs = if_nameindex();
    int found = 0;
    for (struct if_nameindex *i = ifs; fd >= 0 && i && i->if_index; i++) {
        snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", i->if_name);
        if (ioctl(fd, SIOCGIFADDR, &ifr) == 0 &&
            ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr == host_ip) {
            found = (int)i->if_index;
            if (ioctl(fd, SIOCGIFMTU, &ifr) == 0)
                *mtu = ifr.ifr_mtu;
            break;
        }
    }
    if (ifs)
        if_freenameindex(ifs);
    if (fd >= 0)
        close(fd);
    return found;
}

static int sysctl_set(const char *path, const char *v, char **err)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, v, strlen(v)) < 0) {
        *err = xasprintf("%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static int vxlan_setup(struct klet *k, char **err)
{
    struct in_addr local;
    if (inet_pton(AF_INET, k->host_ip, &local) != 1) {
        *err = xasprintf("vxlan: node IP %s is not IPv4", k->host_ip);
        return -1;
    }
    int mtu = 0;
    int link = lower_link(local.s_addr, &mtu);
    uint8_t mac[6];
    klet_podnet_mac(local.s_addr, mac);
    char *name = vxlan_name(k);
    /* Made afresh: a device an earlier run left may carry another VNI, port
     * or address, and stale entries; shutdown removed its routes anyway. */
    int rc = klet_nl_link_del(name, err);
    if (rc == 0)
        rc = klet_nl_vxlan(name, (uint32_t)k->cfg.vxlan_vni, (uint16_t)k->cfg.vxlan_port,
                           local.s_addr, link, mac, mtu > 50 ? mtu - 50 : 0, &k->podnet.ifindex,
                           err);
    if (rc == 0)
        rc = klet_nl_link_up(k->podnet.ifindex, err);
    if (rc == 0)
        k->podnet.pod_mtu = mtu > 50 ? mtu - 50 : 0;
    if (rc == 0)
        log_info("pod network: vxlan device %s (VNI %lld, port %lld, MTU %d)", name,
                 k->cfg.vxlan_vni, k->cfg.vxlan_port, mtu > 50 ? mtu - 50 : 0);
    char *why = NULL;
    if (rc == 0 && klet_offload_notrack((int)k->cfg.vxlan_port, &why) < 0) {
        log_warn("pod network: table ip coracle-vxlan (the tunnel outside conntrack): %s", why);
        free(why);
    }
    free(name);
    return rc;
}

int klet_podnet_config(struct klet *k, char **err)
{
    const char *net = k->cfg.pod_network, *legacy = k->cfg.pod_network_mode;
    int mode = KLET_PODNET_NONE, lmode = KLET_PODNET_NONE;
    if (legacy && *legacy) {
        if (klet_podnet_mode_parse(legacy, &lmode) < 0) {
            *err = xasprintf("--pod-network-mode: \"%s\": want none, host-gw or vxlan", legacy);
            return -1;
        }
        log_notice("--pod-network-mode is deprecated: say --pod-network %s",
                   lmode == KLET_PODNET_NONE ? "bridge (or none)" : legacy);
    }
    if (!net || !*net) {
        k->net.builtin = k->cfg.pod_cidr && *k->cfg.pod_cidr;
    } else if (!strcmp(net, "bridge") || !strcmp(net, "none")) {
        k->net.builtin = !strcmp(net, "bridge");
    } else if (klet_podnet_mode_parse(net, &mode) == 0) {
        k->net.builtin = true;
    } else {
        *err = xasprintf("--pod-network \"%s\": want none, bridge, host-gw or vxlan", net);
        return -1;
    }
    if (mode != KLET_PODNET_NONE && lmode != KLET_PODNET_NONE && mode != lmode) {
        *err = xasprintf("--pod-network %s and --pod-network-mode %s disagree", net, legacy);
        return -1;
    }
    k->podnet.mode = mode != KLET_PODNET_NONE ? mode : lmode;
    return 0;
}

int klet_podnet_start(struct klet *k, char **err)
{
    if (k->podnet.mode == KLET_PODNET_NONE)
        return 0;
    if (k->cfg.vxlan_vni < 1 || k->cfg.vxlan_vni > 16777215 || k->cfg.vxlan_port < 1 ||
        k->cfg.vxlan_port > 65535) {
        *err = xasprintf("--vxlan-vni must be 1..16777215 and --vxlan-port 1..65535");
        return -1;
    }
    /* Pods' packets to other nodes pass through this node. */
    if (sysctl_set("/proc/sys/net/ipv4/ip_forward", "1", err) < 0)
        return -1;
    if (k->podnet.mode == KLET_PODNET_VXLAN && vxlan_setup(k, err) < 0)
        return -1;
    struct inf_handlers h = {
        .on_add = on_add,
        .on_update = on_update,
        .on_delete = on_delete,
        .on_synced = on_synced,
        .arg = k,
    };
    k->podnet.inf = inf_new(k->base, k->api, &kind_node, &(struct inf_opts){0}, &h);
    inf_start(k->podnet.inf);
    return 0;
}

void klet_podnet_cleanup(struct klet *k)
{
    routes_prune(k, false);
    char *name = vxlan_name(k), *err = NULL;
    if (klet_nl_link_del(name, &err) < 0) {
        log_warn("pod network: %s", err);
        free(err);
    }
    free(name);
    if (klet_offload_notrack_remove(&err) < 0) {
        log_warn("pod network: removing table ip coracle-vxlan: %s", err);
        free(err);
    }
}

void klet_podnet_stop(struct klet *k)
{
    if (k->podnet.inf)
        inf_free(k->podnet.inf);
    k->podnet.inf = NULL;
    if (k->podnet.mode != KLET_PODNET_NONE)
        klet_podnet_cleanup(k);
    for (size_t i = 0; i < k->podnet.npeers; i++)
        free(k->podnet.peers[i].name);
    free(k->podnet.peers);
    k->podnet.peers = NULL;
    k->podnet.npeers = 0;
}
