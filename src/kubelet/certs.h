/*
 * certs: the kubelet's client certificate, as Kubernetes' TLS bootstrap and
 * certificate manager do it.
 *
 * Join: with no certificate of its own under <root-dir>/pki, the kubelet
 * takes the cluster CA from the apiserver's TLS chain and trusts it only
 * if the SHA-256 of its SubjectPublicKeyInfo is --ca-cert-hash (kubeadm's
 * discovery pin); then, over a connection verified against that CA, it
 * sends a CertificateSigningRequest for system:node:NAME (O system:nodes,
 * a new EC P-256 key) authenticated by --token, watches it until it is
 * signed, and keeps key and certificate in <root-dir>/pki/
 * kubelet-client-current.pem (0600) with the CA in pki/ca.crt. The token
 * is not needed again.
 *
 * Rotation: at 70-90% (jittered) of the certificate's lifetime a new key
 * and CSR go out over the current connection (the node renewing itself);
 * once signed, the files are replaced and the clients switch to it for
 * their new connections (gcl_set_tls), the calls in flight finishing on
 * the old one: pods are not touched. A failed attempt is retried with
 * backoff while the old certificate keeps working.
 */
#ifndef CORACLE_KLET_CERTS_H
#define CORACLE_KLET_CERTS_H

#include <event2/event.h>
#include <stddef.h>
#include <stdio.h>

#include "gcl.h"

struct klet_join {
    const char *server;    /* --server: host:port or https://host:port */
    const char *token;     /* --token, or NULL */
    const char *ca_hash;   /* --ca-cert-hash "sha256:HEX", or NULL */
    const char *root_dir;  /* keys go to <root_dir>/pki */
    const char *node_name; /* CN system:node:<node_name> */
};

/*
 * Makes sure <root_dir>/pki holds the CA and a client certificate that has
 * not expired: the ones of an earlier join, or a new join with the token
 * (blocks on a loop of its own until the CSR is signed or refused).
 * *ca and *cert (malloc'd paths; the key is in *cert's file). 0, or -1 with
 * *err (malloc'd) saying which step refused: the CA hash, the token, the
 * request.
 */
int klet_certs_join(const struct klet_join *j, char **ca, char **cert, char **err);

/* Whether <root_dir>/pki has a client certificate (a join happened). */
int klet_certs_joined(const char *root_dir);

typedef struct klet_rot klet_rot_t;
/*
 * Starts renewing the certificate in cert (as klet_certs_join made) on
 * base: requests go through api, the new credentials go to every client
 * in gcls (copied array; the clients must outlive the rotation).
 */
klet_rot_t *klet_certs_rotate(struct event_base *base, gcl_t *api, gcl_t *const *gcls, size_t n,
                              const char *ca, const char *cert, const char *node_name);
void klet_certs_rotate_free(klet_rot_t *r);
/*
 * For /metrics, as Kubernetes' certificate manager reports it: seconds
 * until the current certificate expires, and failed renewals.
 */
void klet_certs_metrics(FILE *f, const klet_rot_t *r);

#endif
