/*
 * test_pki: the CA pin (kubeadm's hash of the DER SubjectPublicKeyInfo,
 * checked against a hash computed here by hand), CSR parsing and the
 * kube-apiserver-client-kubelet signer's rules, signing with a CA of its
 * own (lifetime, capped at the CA's), bootstrap token syntax.
 */
#include "config.h"
#include "pki.h"
#include "tap.h"
#include "util.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A self-signed CA valid for days, its key in *key. */
static X509 *make_ca(EVP_PKEY **key, long days)
{
    *key = EVP_EC_gen("P-256");
    X509 *c = X509_new();
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
    X509_NAME *n = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"test-ca", -1, -1, 0);
    X509_set_issuer_name(c, n);
    X509_gmtime_adj(X509_getm_notBefore(c), 0);
    X509_gmtime_adj(X509_getm_notAfter(c), days * 86400);
    X509_set_pubkey(c, *key);
    X509_sign(c, *key, EVP_sha256());
    return c;
}

/* The hash by hand: SHA-256 over i2d_PUBKEY of the certificate's key. */
static void hash_by_hand(X509 *c, char out[PKI_HASH_LEN])
{
    unsigned char *der = NULL, md[32];
    int n = i2d_PUBKEY(X509_get0_pubkey(c), &der);
    unsigned int ml;
    EVP_Digest(der, (size_t)n, md, &ml, EVP_sha256(), NULL);
    OPENSSL_free(der);
    char *p = out + sprintf(out, "sha256:");
    for (int i = 0; i < 32; i++)
        p += sprintf(p, "%02x", md[i]);
}

/* A CSR with subject "/O=o/CN=cn" (o may be NULL), and a DNS SAN if san. */
static char *make_csr(const char *cn, const char *o, const char *san)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509_REQ *r = X509_REQ_new();
    X509_NAME *n = X509_NAME_new();
    if (o)
        X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)o, -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_REQ_set_subject_name(r, n);
    X509_REQ_set_pubkey(r, k);
    if (san) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san));
        X509_REQ_add_extensions(r, exts);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    X509_REQ_sign(r, k, EVP_sha256());
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509_REQ(b, r);
    char *p;
    long l = BIO_get_mem_data(b, &p);
    char *out = xstrndup(p, (size_t)l);
    BIO_free(b);
    X509_NAME_free(n);
    X509_REQ_free(r);
    EVP_PKEY_free(k);
    return out;
}

static const char *rule(const char *cn, const char *o, const char *san, char **usages, size_t nu)
{
    char *pem = make_csr(cn, o, san), *err = NULL;
    struct pki_csr c;
    const char *why = "does not parse";
    if (pki_csr_parse(pem, strlen(pem), &c, &err) == 0) {
        why = pki_signer_check(PKI_SIGNER_KUBELET_CLIENT, &c, usages, nu);
        pki_csr_free(&c);
    }
    free(err);
    free(pem);
    return why;
}

static void test_hash(void)
{
    EVP_PKEY *k;
    X509 *ca = make_ca(&k, 10);
    char a[PKI_HASH_LEN], b[PKI_HASH_LEN];
    ok(pki_spki_hash(ca, a) == 0, "hash computed");
    hash_by_hand(ca, b);
    is_str(a, b, "sha256 of the DER SubjectPublicKeyInfo");
    is_int((int)strlen(a), PKI_HASH_LEN - 1, "sha256: and 64 hex digits");
    X509_free(ca);
    EVP_PKEY_free(k);
}

static void test_csr_rules(void)
{
    char *good[] = {"digital signature", "client auth"};
    char *bad[] = {"digital signature", "server auth"};
    char *noclient[] = {"digital signature"};
    ok(rule("system:node:n1", "system:nodes", NULL, good, 2) == NULL, "a kubelet's CSR passes");
    is_str(rule("system:node:n1", "other", NULL, good, 2),
           "subject organization is not system:nodes", "O must be system:nodes");
    is_str(rule("system:node:n1", NULL, NULL, good, 2), "subject organization is not system:nodes",
           "O is required");
    is_str(rule("admin", "system:nodes", NULL, good, 2),
           "subject common name does not begin with system:node:", "CN system:node:NAME");
    is_str(rule("system:node:", "system:nodes", NULL, good, 2),
           "subject common name does not begin with system:node:", "a name after the prefix");
    is_str(rule("system:node:n1", "system:nodes", "DNS:n1.example", good, 2),
           "DNS subjectAltNames are not allowed", "no SANs");
    ok(rule("system:node:n1", "system:nodes", NULL, bad, 2) != NULL, "server auth refused");
    is_str(rule("system:node:n1", "system:nodes", NULL, noclient, 1),
           "usages must include \"client auth\"", "client auth required");

    struct pki_csr c;
    char *err = NULL;
    int r = pki_csr_parse("garbage", 7, &c, &err);
    ok(r < 0 && err && !strcmp(err, "PEM block type must be CERTIFICATE REQUEST"), "not PEM: %s",
       err ? err : "");
    free(err);
    err = NULL;
    const char *broken = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE "
                         "REQUEST-----\n";
    r = pki_csr_parse(broken, strlen(broken), &c, &err);
    ok(r < 0 && err, "broken DER refused: %s", err ? err : "");
    free(err);
    /* a signature that does not verify: flip a byte near the end of the base64 */
    char *pem = make_csr("system:node:n1", "system:nodes", NULL);
    char *end = strstr(pem, "-----END");
    end[-5] = end[-5] == 'A' ? 'B' : 'A';
    err = NULL;
    r = pki_csr_parse(pem, strlen(pem), &c, &err);
    ok(r < 0, "a tampered request is refused: %s", err ? err : "");
    free(err);
    free(pem);
    ok(pki_signer_check("example.com/other", &(struct pki_csr){0}, NULL, 0) == NULL,
       "other signers: no rules here");
}

static void test_sign(void)
{
    EVP_PKEY *k;
    X509 *ca = make_ca(&k, 1);
    char *pem = make_csr("system:node:n1", "system:nodes", NULL), *cert = NULL, *err = NULL;
    int r = pki_sign(ca, k, pem, strlen(pem), 600, &cert, &err);
    ok(r == 0, "signed: %s", err ? err : "");
    int64_t nb = 0, na = 0;
    ok(cert && pki_cert_times(cert, strlen(cert), &nb, &na) == 0, "times read");
    int64_t now = (int64_t)time(NULL);
    ok(na >= now + 590 && na <= now + 610, "valid for the lifetime asked (600 s): %lld",
       (long long)(na - now));
    ok(nb <= now - 55 && nb >= now - 70, "backdated a tenth of a short lifetime: %lld",
       (long long)(now - nb));
    free(cert);
    cert = NULL;
    ok(pki_sign(ca, k, pem, strlen(pem), 10 * 86400, &cert, &err) == 0, "signed long");
    ok(cert && pki_cert_times(cert, strlen(cert), &nb, &na) == 0 && na <= now + 86400 + 5,
       "capped at the CA's expiry");
    free(cert);
    free(pem);
    X509_free(ca);
    EVP_PKEY_free(k);

    char *key_pem, *csr_pem;
    ok(pki_new_key_csr("system:node:n2", "system:nodes", &key_pem, &csr_pem, &err) == 0,
       "new key and CSR");
    ok(strstr(key_pem, "PRIVATE KEY") != NULL, "a PEM key");
    is_str(rule("system:node:n2", "system:nodes", NULL, NULL, 0), NULL, "its CSR parses");
    struct pki_csr c;
    ok(pki_csr_parse(csr_pem, strlen(csr_pem), &c, &err) == 0 && !strcmp(c.cn, "system:node:n2") &&
           c.orgs[0] && !strcmp(c.orgs[0], "system:nodes") && !c.orgs[1],
       "CN and O as asked");
    pki_csr_free(&c);
    free(key_pem);
    free(csr_pem);
}

static void test_tokens(void)
{
    char id[7], secret[17], tok[24];
    ok(pki_token_split("abcdef.0123456789abcdef", id, secret) == 0 && !strcmp(id, "abcdef") &&
           !strcmp(secret, "0123456789abcdef"),
       "token split");
    ok(pki_token_split("ABCDEF.0123456789abcdef", id, secret) < 0, "upper case refused");
    ok(pki_token_split("abcdef.0123456789abcde", id, secret) < 0, "short secret refused");
    ok(pki_token_split("abcdef-0123456789abcdef", id, secret) < 0, "no dot refused");
    ok(pki_token_split(NULL, id, secret) < 0, "NULL refused");
    ok(pki_token_new(tok) == 0 && pki_token_split(tok, id, secret) == 0, "a new token: %s", tok);
    char tok2[24];
    pki_token_new(tok2);
    ok(strcmp(tok, tok2) != 0, "two tokens differ");
}

int main(void)
{
    test_hash();
    test_csr_rules();
    test_sign();
    test_tokens();
    return done_testing();
}
