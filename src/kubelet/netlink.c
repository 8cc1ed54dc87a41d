/*
 * netlink: the few rtnetlink requests the pod network (podnet.c) needs,
 * through libmnl: IPv4 routes (add/replace, delete, look up, list by
 * protocol), a VXLAN device, an address on it, and its neighbour (IP ->
 * MAC) and FDB (MAC -> remote VTEP) entries. Each call opens a socket in
 * the caller's network namespace, sends one request and waits for its
 * acknowledgement: the pod network changes when Nodes do, rarely, so
 * simplicity beats a long-lived socket. Errors: -1 and *err (malloc'd)
 * naming the request and the kernel's answer.
 */
#include "config.h"
#include "klet.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* libmnl's MNL_SOCKET_BUFFER_SIZE is computed at run time; answers here fit in a page. */
#define NL_BUF 8192

/* Sends nlh and reads answers until the ACK (or DONE for dumps); cb sees each data message. */
static int nl_talk(struct nlmsghdr *nlh, mnl_cb_t cb, void *data, const char *what, char **err)
{
    struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
    if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        *err = xasprintf("%s: netlink socket: %s", what, strerror(errno));
        if (nl)
            mnl_socket_close(nl);
        return -1;
    }
    unsigned seq = (unsigned)time(NULL), port = mnl_socket_get_portid(nl);
    nlh->nlmsg_seq = seq;
    nlh->nlmsg_flags |= NLM_F_ACK;
    int rc = -1;
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
        *err = xasprintf("%s: netlink send: %s", what, strerror(errno));
        goto out;
    }
    char buf[NL_BUF];
    ssize_t n;
    while ((n = mnl_socket_recvfrom(nl, buf, sizeof buf)) > 0) {
        rc = mnl_cb_run(buf, (size_t)n, seq, port, cb, data);
        if (rc <= MNL_CB_STOP)
            break;
    }
    if (n < 0 || rc < 0) {
        *err = xasprintf("%s: %s", what, strerror(errno));
        rc = -1;
        goto out;
    }
    rc = 0;
out:
    mnl_socket_close(nl);
    return rc;
}

static struct nlmsghdr *nl_start(char *buf, uint16_t type, uint16_t flags)
{
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | flags;
    return nlh;
}

int klet_nl_route(bool add, uint32_t dst, int plen, uint32_t gw, int oif, bool onlink, char **err)
{
    char buf[NL_BUF];
    struct nlmsghdr *nlh =
        nl_start(buf, add ? RTM_NEWROUTE : RTM_DELROUTE, add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
    rtm->rtm_family = AF_INET;
    rtm->rtm_dst_len = (unsigned char)plen;
    rtm->rtm_table = RT_TABLE_MAIN;
    rtm->rtm_protocol = KLET_RTPROT;
    rtm->rtm_scope = RT_SCOPE_UNIVERSE;
    rtm->rtm_type = RTN_UNICAST;
    if (onlink)
        rtm->rtm_flags |= RTNH_F_ONLINK;
    mnl_attr_put_u32(nlh, RTA_DST, dst);
    if (gw)
        mnl_attr_put_u32(nlh, RTA_GATEWAY, gw);
    if (oif > 0)
        mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)oif);
    char d[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &dst, d, sizeof d);
    char *what = xasprintf("%s route %s/%d", add ? "add" : "delete", d, plen);
    int rc = nl_talk(nlh, NULL, NULL, what, err);
    free(what);
    if (rc < 0 && !add && errno == ESRCH) { /* already gone */
        free(*err);
        *err = NULL;
        rc = 0;
    }
    return rc;
}

struct route_get {
    uint32_t gw;
    int oif;
    unsigned char type;
};

static int route_get_attr(const struct nlattr *a, void *data)
{
    struct route_get *r = data;
    if (mnl_attr_get_type(a) == RTA_GATEWAY && mnl_attr_get_payload_len(a) == 4)
        r->gw = mnl_attr_get_u32(a);
    else if (mnl_attr_get_type(a) == RTA_OIF && mnl_attr_get_payload_len(a) == 4)
        r->oif = (int)mnl_attr_get_u32(a);
    return MNL_CB_OK;
}

static int route_get_cb(const struct nlmsghdr *nlh, void *data)
{
    struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
    ((struct route_get *)data)->type = rtm->rtm_type;
    mnl_attr_parse(nlh, sizeof *rtm, route_get_attr, data);
    return MNL_CB_OK;
}

int klet_nl_route_lookup(uint32_t dst, uint32_t *gw, int *oif, bool *local, char **err)
{
    char buf[NL_BUF];
    struct nlmsghdr *nlh = nl_start(buf, RTM_GETROUTE, 0);
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
    rtm->rtm_family = AF_INET;
    rtm->rtm_dst_len = 32;
    mnl_attr_put_u32(nlh, RTA_DST, dst);
    struct route_get r = {0};
    char d[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &dst, d, sizeof d);
    char *what = xasprintf("route to %s", d);
    int rc = nl_talk(nlh, route_get_cb, &r, what, err);
    free(what);
    *gw = r.gw;
    *oif = r.oif;
    *local = r.type == RTN_LOCAL;
    return rc;
}

/* Routes of our protocol in the main table: (dst, plen) pairs, for reconciling. */
struct route_list {
    uint32_t (*dst)[2];
    size_t n;
};

static int route_list_cb(const struct nlmsghdr *nlh, void *data)
{
    struct route_list *l = data;
    struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
    if (rtm->rtm_family != AF_INET || rtm->rtm_protocol != KLET_RTPROT ||
        rtm->rtm_table != RT_TABLE_MAIN)
        return MNL_CB_OK;
    uint32_t dst = 0;
    struct nlattr *a;
    mnl_attr_for_each(a, nlh, sizeof *rtm)
    {
        if (mnl_attr_get_type(a) == RTA_DST && mnl_attr_get_payload_len(a) == 4)
            dst = mnl_attr_get_u32(a);
    }
    l->dst = xrealloc(l->dst, (l->n + 1) * sizeof *l->dst);
    l->dst[l->n][0] = dst;
    l->dst[l->n][1] = rtm->rtm_dst_len;
    l->n++;
    return MNL_CB_OK;
}

int klet_nl_routes_ours(uint32_t (**dst)[2], size_t *n, char **err)
{
    char buf[NL_BUF];
    struct nlmsghdr *nlh = nl_start(buf, RTM_GETROUTE, NLM_F_DUMP);
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
    rtm->rtm_family = AF_INET;
    struct route_list l = {0};
    int rc = nl_talk(nlh, route_list_cb, &l, "list routes", err);
    *dst = l.dst;
    *n = l.n;
    return rc;
}

int klet_nl_vxlan(const char *name, uint32_t vni, uint16_t port, uint32_t local, int link,
                  const uint8_t mac[6], int mtu, int *ifindex, char **err)
{
    char buf[NL_BUF];
    struct nlmsghdr *nlh = nl_start(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
    ifm->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
    if (mtu > 0)
        mnl_attr_put_u32(nlh, IFLA_MTU, (uint32_t)mtu);
    struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "vxlan");
    struct nlattr *d = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
    mnl_attr_put_u32(nlh, IFLA_VXLAN_ID, vni);
    mnl_attr_put_u32(nlh, IFLA_VXLAN_LOCAL, local);
    if (link > 0)
        mnl_attr_put_u32(nlh, IFLA_VXLAN_LINK, (uint32_t)link);
    mnl_attr_put_u16(nlh, IFLA_VXLAN_PORT, htons(port));
    mnl_attr_put_u8(nlh, IFLA_VXLAN_LEARNING, 0); /* entries come from the Nodes, as flannel's */
    mnl_attr_nest_end(nlh, d);
    mnl_attr_nest_end(nlh, li);
    char *what = xasprintf("create vxlan device %s (VNI %u, port %u)", name, vni, port);
    int rc = nl_talk(nlh, NULL, NULL, what, err);
    free(what);
    if (rc < 0 && errno == EEXIST) { /* a restart: keep it (reconciled by the caller) */
        free(*err);
        *err = NULL;
        rc = 0;
    }
    if (rc == 0 && !(*ifindex = (int)if_nametoindex(name))) {
        *err = xasprintf("vxlan device %s: %s", name, strerror(errno));
        return -1;
    }
    return rc;
}

int klet_nl_dummy(const char *name, int *ifindex, char **err)
{
    char buf[NL_BUF];
    struct nlmsghdr *nlh = nl_start(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
    ifm->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "dummy");
    mnl_attr_nest_end(nlh, li);
    char *what = xasprintf("create dummy device %s", name);
    int rc = nl_talk(nlh, NULL, NULL, what, err);
    free(what);
    if (rc < 0 && errno == EEXIST) {
        free(*err);
        *err = NULL;
        rc = 0;
    }
    if (rc == 0 && !(*ifindex = (int)if_nametoindex(name))) {
        *err = xasprintf("dummy device %s: %s", name, strerror(errno));
        return -1;
    }
    return rc;
}

int klet_nl_link_up(int ifindex, char **err)
{
    char buf[NL_BUF];
    struct nlmsghdr *nlh = nl_start(buf, RTM_NEWLINK, 0);
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
    ifm->ifi_family = AF_UNSPEC;
    ifm->ifi_index = ifindex;
    ifm->ifi_flags = IFF_UP;
    ifm->ifi_change = IFF_UP;
    return nl_talk(nlh, NULL, NULL, "set link up", err);
}

int klet_nl_link_del(const char *name, char **err)
{
    int ifindex = (int)if_nametoindex(name);
    if (!ifindex)
        return 0;
    char buf[NL_BUF];
    struct nlmsghdr *nlh = nl_start(buf, RTM_DELLINK, 0);
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
    ifm->ifi_family = AF_UNSPEC;
    ifm->ifi_index = ifindex;
    char *what = xasprintf("delete link %s", name);
    int rc = nl_talk(nlh, NULL, NULL, what, err);
    free(what);
    return rc;
}

int klet_nl_addr(int ifindex, uint32_t ip, int plen, char **err)
{
    return klet_nl_addr_set(true, ifindex, ip, plen, err);
}

int klet_nl_addr_set(bool add, int ifindex, uint32_t ip, int plen, char **err)
{
    char buf[NL_BUF];
    struct nlmsghdr *nlh =
        nl_start(buf, add ? RTM_NEWADDR : RTM_DELADDR, add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = (unsigned char)plen;
    ifa->ifa_index = (unsigned)ifindex;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    mnl_attr_put_u32(nlh, IFA_LOCAL, ip);
    mnl_attr_put_u32(nlh, IFA_ADDRESS, ip);
    int rc = nl_talk(nlh, NULL, NULL, add ? "add address" : "delete address", err);
    if (rc < 0 && !add && errno == EADDRNOTAVAIL) {
        free(*err);
        *err = NULL;
        rc = 0;
    }
    return rc;
}

/* One neighbour (family AF_INET: ip -> mac) or FDB (AF_BRIDGE: mac -> remote dst) entry. */
static int nl_neigh(bool add, int family, int ifindex, uint32_t ip, const uint8_t mac[6],
                    char **err)
{
    char buf[NL_BUF];
    struct nlmsghdr *nlh =
        nl_start(buf, add ? RTM_NEWNEIGH : RTM_DELNEIGH, add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
    struct ndmsg *nd = mnl_nlmsg_put_extra_header(nlh, sizeof *nd);
    nd->ndm_family = (unsigned char)family;
    nd->ndm_ifindex = ifindex;
    nd->ndm_state = NUD_PERMANENT;
    nd->ndm_flags = family == AF_BRIDGE ? NTF_SELF : 0;
    mnl_attr_put_u32(nlh, NDA_DST, ip);
    mnl_attr_put(nlh, NDA_LLADDR, 6, mac);
    const char *what = family == AF_BRIDGE ? (add ? "add fdb entry" : "delete fdb entry")
                                           : (add ? "add neighbour" : "delete neighbour");
    int rc = nl_talk(nlh, NULL, NULL, what, err);
    if (rc < 0 && !add && errno == ENOENT) {
        free(*err);
        *err = NULL;
        rc = 0;
    }
    return rc;
}

int klet_nl_neigh(bool add, int ifindex, uint32_t ip, const uint8_t mac[6], char **err)
{
    return nl_neigh(add, AF_INET, ifindex, ip, mac, err);
}

int klet_nl_fdb(bool add, int ifindex, const uint8_t mac[6], uint32_t remote, char **err)
{
    return nl_neigh(add, AF_BRIDGE, ifindex, remote, mac, err);
}

struct veth_info {
    int link;
    bool veth;
};

static int veth_info_attr(const struct nlattr *a, void *data)
{
    struct veth_info *v = data;
    if (mnl_attr_get_type(a) == IFLA_LINK && mnl_attr_get_payload_len(a) == 4) {
        v->link = (int)mnl_attr_get_u32(a);
    } else if (mnl_attr_get_type(a) == IFLA_LINKINFO) {
        struct nlattr *in;
        mnl_attr_for_each_nested(in, a)
        {
            if (mnl_attr_get_type(in) == IFLA_INFO_KIND &&
                mnl_attr_validate(in, MNL_TYPE_NUL_STRING) == 0 &&
                !strcmp(mnl_attr_get_str(in), "veth"))
                v->veth = true;
        }
    }
    return MNL_CB_OK;
}

static int veth_info_cb(const struct nlmsghdr *nlh, void *data)
{
    return mnl_attr_parse(nlh, sizeof(struct ifinfomsg), veth_info_attr, data);
}

int klet_nl_veth_peer(const char *name, int ifindex, int *peer, char **err)
{
    char buf[NL_BUF];
    struct nlmsghdr *nlh = nl_start(buf, RTM_GETLINK, 0);
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
    ifm->ifi_family = AF_UNSPEC;
    ifm->ifi_index = name ? 0 : ifindex;
    if (name)
        mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    struct veth_info v = {0};
    char *what = name ? xasprintf("link %s", name) : xasprintf("link %d", ifindex);
    int rc = nl_talk(nlh, veth_info_cb, &v, what, err);
    free(what);
    *peer = v.veth ? v.link : 0;
    return rc;
}
