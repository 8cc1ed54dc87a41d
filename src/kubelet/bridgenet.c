/*
 * bridgenet: the kubelet's built-in pod network, for a node without a
 * hand-written CNI config (doc/man/coracle-kubelet.8, NETWORK). It is
 * what k3s' bundled flannel does on one node, and what a kubeadm user
 * writes into /etc/cni/net.d by hand: a CNI conflist of Debian's plugins,
 *
 *   bridge (cni0, the gateway, hairpin mode; the VXLAN device's MTU with
 *   --pod-network vxlan) + host-local (the range, state under
 *   <root-dir>/cni) + portmap (hostPort) + loopback,
 *
 * written to <root-dir>/net.d once the range is known: the Node's
 * spec.podCIDR (watched: the controller manager's node IPAM sets it),
 * else --pod-cidr. Until then pods with a network of their own wait
 * (event NetworkNotReady); hostNetwork pods run. cni.c runs the conflist
 * as it runs a hand-written one.
 *
 * The kubelet deletes the bridge at shutdown when it created it and no
 * pod is plugged into it any more; veths and addresses go with each pod
 * (CNI DEL).
 *
 * No NAT between pods: the bridge plugin's ipMasq is off (it would
 * masquerade traffic to other nodes' pods too); netmasq.c's table
 * masquerades only what leaves --cluster-cidr, made with the range and
 * removed at shutdown.
 */
#include "config.h"

#include "cidr.h"
#include "informer.h"
#include "json.h"
#include "kinds.h"
#include "klet.h"
#include "util.h"

#include <errno.h>
#include <linux/if_bridge.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define NET_NAME "coracle"
#define BR_PORTS 1024 /* the kernel's BR_MAX_PORTS */
#define CONF_FILE "10-coracle.conflist"

const char *klet_cni_dir(const struct klet *k)
{
    if (k->cfg.cni_conf_dir && *k->cfg.cni_conf_dir)
        return k->cfg.cni_conf_dir;
    return k->net.dir;
}

bool klet_bridgenet_waiting(const struct klet *k)
{
    return k->net.dir && !k->net.cidr;
}

/* Writes the conflist for range cidr (atomically: a pod being set up reads one or the other). */
static int write_conf(const struct klet *k, const char *cidr)
{
    char *tmp = xasprintf("%s/.%s.tmp", k->net.dir, CONF_FILE);
    char *path = xasprintf("%s/%s", k->net.dir, CONF_FILE);
    FILE *f = fopen(tmp, "w");
    int rc = -1;
    if (f) {
        fputs("{\"cniVersion\":\"1.0.0\",\"name\":\"" NET_NAME "\",\"plugins\":[\n"
              "{\"type\":\"bridge\",\"bridge\":",
              f);
        json_write_str(f, k->cfg.bridge);
        if (k->podnet.pod_mtu > 0)
            fprintf(f, ",\"mtu\":%d", k->podnet.pod_mtu);
        fputs(",\"isGateway\":true,\"isDefaultGateway\":true,\"ipMasq\":false,"
              "\"hairpinMode\":true,\"ipam\":{\"type\":\"host-local\",\"ranges\":[[{\"subnet\":",
              f);
        json_write_str(f, cidr);
        fputs("}]],\"dataDir\":", f);
        json_write_str(f, k->net.ipam_dir);
        fputs("}},\n{\"type\":\"portmap\",\"capabilities\":{\"portMappings\":true},"
              "\"snat\":true},\n{\"type\":\"loopback\"}]}\n",
              f);
        rc = fclose(f) == 0 ? rename(tmp, path) : -1;
    }
    if (rc < 0)
        log_warn("pod network: writing %s: %s", path, strerror(errno));
    free(tmp);
    free(path);
    return rc;
}

/* Takes cidr as the node's pod range: writes the config and lets waiting pods go on. */
static void set_range(struct klet *k, const char *cidr, const char *from)
{
    struct cidr4 c;
    if (k->net.cidr && !strcmp(k->net.cidr, cidr))
        return;
    if (cidr_parse4(cidr, &c) < 0) {
        log_warn("pod network: %s %s is not an IPv4 range; ignored", from, cidr);
        return;
    }
    if (write_conf(k, cidr) < 0)
        return;
    char *err = NULL;
    if (klet_masq_apply(cidr, k->cfg.cluster_cidr, &err) < 0) {
        log_warn("pod network: masquerade (table ip coracle-net): %s", err);
        free(err);
    }
    log_info("pod network: range %s (%s), bridge %s, masquerading what leaves %s", cidr, from,
             k->cfg.bridge,
             k->cfg.cluster_cidr && *k->cfg.cluster_cidr ? k->cfg.cluster_cidr : cidr);
    free(k->net.cidr);
    k->net.cidr = xstrdup(cidr);
    for (size_t i = 0; i < k->npods; i++)
        klet_pod_kick(k->pods[i]);
}

static void node_seen(struct klet *k, const Coracle__V1__Node *n)
{
    if (n->spec && n->spec->podcidr && *n->spec->podcidr)
        set_range(k, n->spec->podcidr, "Node spec.podCIDR");
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

static void on_synced(inf_t *inf, void *arg)
{
    struct klet *k = arg;
    if (!k->net.cidr && k->cfg.pod_cidr && *k->cfg.pod_cidr)
        set_range(k, k->cfg.pod_cidr, "--pod-cidr");
    if (!k->net.cidr)
        log_info("pod network: waiting for the Node's spec.podCIDR (or --pod-cidr); pods "
                 "with a network of their own wait");
}

int klet_bridgenet_start(struct klet *k, char **err)
{
    if (k->cfg.cni_conf_dir && *k->cfg.cni_conf_dir)
        return 0; /* the operator's own network */
    if (!k->net.builtin)
        return 0;
    struct cidr4 c;
    if (k->cfg.pod_cidr && *k->cfg.pod_cidr && cidr_parse4(k->cfg.pod_cidr, &c) < 0) {
        *err = xasprintf("--pod-cidr \"%s\": not an IPv4 CIDR", k->cfg.pod_cidr);
        return -1;
    }
    if (k->cfg.cluster_cidr && *k->cfg.cluster_cidr && cidr_parse4(k->cfg.cluster_cidr, &c) < 0) {
        *err = xasprintf("--cluster-cidr \"%s\": not an IPv4 CIDR", k->cfg.cluster_cidr);
        return -1;
    }
    if (strlen(k->cfg.bridge) >= IFNAMSIZ) {
        *err = xasprintf("--bridge \"%s\": longer than %d characters", k->cfg.bridge, IFNAMSIZ - 1);
        return -1;
    }
    k->net.dir = xasprintf("%s/net.d", k->cfg.root_dir);
    k->net.ipam_dir = xasprintf("%s/cni/networks", k->cfg.root_dir);
    char *cni = xasprintf("%s/cni", k->cfg.root_dir);
    mkdir(k->net.dir, 0700);
    mkdir(cni, 0700);
    mkdir(k->net.ipam_dir, 0700);
    free(cni);
    char *sel = xasprintf("metadata.name=%s", k->cfg.node_name);
    struct inf_opts o = {.field_selector = sel};
    struct inf_handlers h = {
        .on_add = on_add,
        .on_update = on_update,
        .on_synced = on_synced,
        .arg = k,
    };
    k->net.node_inf = inf_new(k->base, k->api, &kind_node, &o, &h);
    free(sel);
    inf_start(k->net.node_inf);
    return 0;
}

/* <root-dir>/cni/bridge-created: this kubelet made the bridge (so it may remove it). */
static char *created_mark(const struct klet *k)
{
    return xasprintf("%s/cni/bridge-created", k->cfg.root_dir);
}

void klet_bridgenet_before_add(struct klet *k)
{
    if (!k->net.dir || (k->cfg.cni_conf_dir && *k->cfg.cni_conf_dir) ||
        if_nametoindex(k->cfg.bridge))
        return;
    char *mark = created_mark(k);
    FILE *f = fopen(mark, "w");
    if (f)
        fclose(f);
    free(mark);
}

/*
 * Whether any interface is plugged into the bridge, asked of the kernel in
 * this network namespace (the bridge ioctl's port list; /sys may show
 * another namespace's devices). Unknown counts as busy.
 */
static bool bridge_busy(int fd, const char *br)
{
    int ports[BR_PORTS] = {0};
    unsigned long args[4] = {BRCTL_GET_PORT_LIST, (unsigned long)ports, BR_PORTS, 0};
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", br);
    ifr.ifr_data = (char *)args;
    if (ioctl(fd, SIOCDEVPRIVATE, &ifr) < 0)
        return true;
    for (size_t i = 0; i < BR_PORTS; i++)
        if (ports[i])
            return true;
    return false;
}

/* Down, then delete the bridge if no port is left (the bridge ioctls: no netlink needed for
 * this one). 0, 1 when busy, -1 with errno. */
static int bridge_delete(const char *br)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (bridge_busy(fd, br)) {
        close(fd);
        return 1;
    }
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", br);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags &= ~IFF_UP;
        ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    int rc = ioctl(fd, SIOCBRDELBR, br);
    close(fd);
    return rc;
}

void klet_bridgenet_stop(struct klet *k)
{
    if (!k->net.dir)
        return;
    if (k->net.node_inf)
        inf_free(k->net.node_inf);
    k->net.node_inf = NULL;
    char *err = NULL;
    if (k->net.cidr && klet_masq_remove(&err) < 0) {
        log_warn("pod network: removing table ip coracle-net: %s", err);
        free(err);
    }
    char *mark = created_mark(k);
    int rc = 0;
    if (access(mark, F_OK) == 0 && if_nametoindex(k->cfg.bridge))
        rc = bridge_delete(k->cfg.bridge);
    if (rc < 0)
        log_warn("pod network: deleting bridge %s: %s", k->cfg.bridge, strerror(errno));
    else if (rc == 1)
        log_info("pod network: bridge %s stays: pods use it", k->cfg.bridge);
    else if (access(mark, F_OK) == 0)
        log_info("pod network: bridge %s removed (no pod uses it)", k->cfg.bridge);
    if (rc == 0)
        unlink(mark);
    free(mark);
}
