/*
 * pki: the X.509 pieces of joining a node and renewing certificates, on
 * OpenSSL: the CA pin kubeadm calls --discovery-token-ca-cert-hash, a
 * CertificateSigningRequest's PEM parsed and checked against its signer's
 * rules, a new key and CSR (the kubelet), a certificate signed by the
 * cluster CA (the csrsigning controller), bootstrap token syntax.
 *
 * Pure functions over their arguments; any thread.
 */
#ifndef CORACLE_PKI_H
#define CORACLE_PKI_H

#include <stddef.h>
#include <stdint.h>

#include "coracle.pb-c.h"

struct x509_st;
struct evp_pkey_st;

/* Kubernetes' signer names */
#define PKI_SIGNER_KUBELET_CLIENT "kubernetes.io/kube-apiserver-client-kubelet"
#define PKI_SIGNER_CLIENT "kubernetes.io/kube-apiserver-client"
#define PKI_SIGNER_KUBELET_SERVING "kubernetes.io/kubelet-serving"

/* "sha256:" + 64 hex digits + NUL */
#define PKI_HASH_LEN 72

/*
 * The pin of a CA certificate: "sha256:" and the hex SHA-256 of its DER
 * SubjectPublicKeyInfo, as kubeadm computes --discovery-token-ca-cert-hash.
 * Writes out (PKI_HASH_LEN bytes); 0, or -1 if the key will not encode.
 */
int pki_spki_hash(struct x509_st *cert, char out[PKI_HASH_LEN]);
/* The same for the first certificate of a PEM file. 0, or -1 with *err (malloc'd). */
int pki_ca_hash_file(const char *path, char out[PKI_HASH_LEN], char **err);

/* What a CSR asks for. Strings malloc'd; pki_csr_free. */
struct pki_csr {
    char *cn;                        /* subject commonName, "" if none */
    char **orgs;                     /* subject organization values, NULL-terminated */
    int n_dns, n_ip, n_email, n_uri; /* subjectAltName entries by type */
};

/*
 * Parses a "CERTIFICATE REQUEST" PEM block and checks its self-signature.
 * 0 and *out, or -1 with *err (malloc'd, Kubernetes' words: "PEM block type
 * must be CERTIFICATE REQUEST", "x509: ...").
 */
int pki_csr_parse(const void *pem, size_t len, struct pki_csr *out, char **err);
void pki_csr_free(struct pki_csr *c);

/*
 * The signer's rules for what a CSR asks (Kubernetes' ValidateKubeletClientCSR
 * for kube-apiserver-client-kubelet: O exactly system:nodes, CN
 * system:node:NAME, no subjectAltNames, usages among digital signature, key
 * encipherment and client auth, client auth present). usages may be NULL
 * (not checked). NULL if they hold, else the first rule broken (static text).
 */
const char *pki_signer_check(const char *signer, const struct pki_csr *c, char *const *usages,
                             size_t n_usages);

/*
 * A new EC P-256 key and a CSR for it with subject CN=cn, O=org (org may be
 * NULL): *key_pem and *csr_pem (malloc'd PEM text). 0, or -1 with *err.
 */
int pki_new_key_csr(const char *cn, const char *org, char **key_pem, char **csr_pem, char **err);

/*
 * Signs the CSR csr_pem with the CA (ca_cert, ca_key) as a client
 * certificate (extKeyUsage clientAuth, digitalSignature, not a CA) valid
 * from 5 minutes ago (clock skew, as Kubernetes' signer backdates; a tenth
 * of the lifetime when that is under 50 minutes) for lifetime_s seconds, capped at the CA's own
 * expiry. *cert_pem malloc'd. 0, or -1 with *err.
 */
int pki_sign(struct x509_st *ca_cert, struct evp_pkey_st *ca_key, const void *csr_pem, size_t len,
             int64_t lifetime_s, char **cert_pem, char **err);

/* Loads a PEM certificate / private key file. NULL with *err (malloc'd). */
struct x509_st *pki_load_cert(const char *path, char **err);
struct evp_pkey_st *pki_load_key(const char *path, char **err);

/* Frees what pki_load_cert / pki_load_key returned (NULL: no-op). */
void pki_cert_free(struct x509_st *c);
void pki_key_free(struct evp_pkey_st *k);

/* notBefore and notAfter of a PEM certificate (first of the text), unix seconds. 0 or -1. */
int pki_cert_times(const void *pem, size_t len, int64_t *not_before, int64_t *not_after);

/*
 * A bootstrap token "<id>.<secret>" (6 and 16 of [a-z0-9]): 0 and the parts
 * (id 7 bytes, secret 17, NUL-terminated), or -1 if it is not one.
 */
int pki_token_split(const char *tok, char id[7], char secret[17]);
/* A new random token into out (24 bytes with NUL). 0, or -1 if there is no randomness. */
int pki_token_new(char out[24]);

/* ---- pki_obj.c: the API objects of the same business ---- */

/* The CSR's condition of that type ("Approved", "Denied", "Failed"), or NULL. */
const Coracle__V1__CertificateSigningRequestCondition *
pki_csr_cond(const Coracle__V1__CertificateSigningRequest *csr, const char *type);
/* Appends a True condition (strings copied; times now_s), making the status if absent. */
void pki_csr_add_cond(Coracle__V1__CertificateSigningRequest *csr, const char *type,
                      const char *reason, const char *msg, int64_t now_s);
/*
 * A bootstrap token Secret's data[expiration] (RFC 3339): 1 and *at (unix
 * seconds), 0 if it has none (never expires), -1 if it does not parse.
 */
int pki_token_expiration(const Coracle__V1__Secret *sc, int64_t *at);

#endif
