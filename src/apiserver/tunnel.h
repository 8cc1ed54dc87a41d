/*
 * tunnel: logs and exec through the kubelet's own stream. Each kubelet
 * keeps one NodeTunnel.Connect call open to the apiserver (so a node
 * behind NAT needs no inbound port). A client's Pods/Log or Pods/Exec call
 * becomes a session on the tunnel of the pod's node: the apiserver relays
 * frames both ways and never interprets the bytes.
 */
#ifndef CORACLE_APISERVER_TUNNEL_H
#define CORACLE_APISERVER_TUNNEL_H

#include "auth.h"
#include "h2s.h"
#include "store.h"

typedef struct tun_hub tun_hub_t;

/*
 * Registers /coracle.v1.NodeTunnel/Connect, /coracle.v1.Pods/Log and
 * /coracle.v1.Pods/Exec on s. Pods are read from st, callers checked by
 * au (both borrowed). Free with tun_hub_free (before h2s_free).
 */
tun_hub_t *tun_hub_new(h2s_t *s, store_t *st, auth_t *au);
void tun_hub_free(tun_hub_t *h);

/* Number of kubelets connected (for /metrics). */
size_t tun_hub_nodes(const tun_hub_t *h);

#endif
