/*
 * pki: CA pins, CSRs, signing and bootstrap tokens on OpenSSL. See pki.h.
 */
#include "config.h"
#include "pki.h"
#include "util.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* OpenSSL's last error as text (static buffer: the calling thread's use only). */
static char *ossl_err(const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return xasprintf("%s: %s", what, buf);
}

int pki_spki_hash(X509 *cert, char out[PKI_HASH_LEN])
{
    unsigned char *der = NULL;
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    if (n <= 0)
        return -1;
    unsigned char md[32];
    unsigned int mdl = 0;
    int ok = EVP_Digest(der, (size_t)n, md, &mdl, EVP_sha256(), NULL) == 1 && mdl == 32;
    OPENSSL_free(der);
    if (!ok)
        return -1;
    char *p = out + sprintf(out, "sha256:");
    for (int i = 0; i < 32; i++)
        p += sprintf(p, "%02x", md[i]);
    return 0;
}

X509 *pki_load_cert(const char *path, char **err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        *err = xasprintf("%s: %s", path, strerror(errno));
        return NULL;
    }
    X509 *c = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!c)
        *err = ossl_err(path);
    return c;
}

EVP_PKEY *pki_load_key(const char *path, char **err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        *err = xasprintf("%s: %s", path, strerror(errno));
        return NULL;
    }
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!k)
        *err = ossl_err(path);
    return k;
}

void pki_cert_free(X509 *c)
{
    X509_free(c);
}

void pki_key_free(EVP_PKEY *k)
{
    EVP_PKEY_free(k);
}

int pki_ca_hash_file(const char *path, char out[PKI_HASH_LEN], char **err)
{
    X509 *c = pki_load_cert(path, err);
    if (!c)
        return -1;
    int r = pki_spki_hash(c, out);
    X509_free(c);
    if (r < 0)
        *err = xasprintf("%s: cannot encode the public key", path);
    return r;
}

/* ---------------------------------------------------------------- CSRs */

static void push_str(char ***v, size_t *n, const unsigned char *s, int len)
{
    *v = xrealloc(*v, (*n + 2) * sizeof(**v));
    (*v)[(*n)++] = xstrndup((const char *)s, (size_t)len);
    (*v)[*n] = NULL;
}

/* The subject's CN and O values into c. */
static void csr_subject(X509_REQ *req, struct pki_csr *c)
{
    X509_NAME *nm = X509_REQ_get_subject_name(req);
    size_t no = 0;
    for (int i = 0; nm && i < X509_NAME_entry_count(nm); i++) {
        X509_NAME_ENTRY *e = X509_NAME_get_entry(nm, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        ASN1_STRING *d = X509_NAME_ENTRY_get_data(e);
        unsigned char *u = NULL;
        int ul = ASN1_STRING_to_UTF8(&u, d);
        if (ul < 0)
            continue;
        if (nid == NID_commonName) {
            free(c->cn);
            c->cn = xstrndup((const char *)u, (size_t)ul);
        } else if (nid == NID_organizationName) {
            push_str(&c->orgs, &no, u, ul);
        }
        OPENSSL_free(u);
    }
    if (!c->cn)
        c->cn = xstrdup("");
    if (!c->orgs)
        c->orgs = xcalloc(1, sizeof(char *));
}

/* The requested subjectAltName entries, counted by type. */
static void csr_sans(X509_REQ *req, struct pki_csr *c)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    if (!exts)
        return;
    GENERAL_NAMES *gn = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gn && i < sk_GENERAL_NAME_num(gn); i++) {
        int t = sk_GENERAL_NAME_value(gn, i)->type;
        c->n_dns += t == GEN_DNS;
        c->n_ip += t == GEN_IPADD;
        c->n_email += t == GEN_EMAIL;
        c->n_uri += t == GEN_URI;
    }
    GENERAL_NAMES_free(gn);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

/* The PEM text's CERTIFICATE REQUEST, or NULL with *err. */
static X509_REQ *csr_read(const void *pem, size_t len, char **err)
{
    static const char begin[] = "-----BEGIN CERTIFICATE REQUEST-----";
    if (!len || !memmem(pem, len, begin, sizeof(begin) - 1)) {
        *err = xstrdup("PEM block type must be CERTIFICATE REQUEST");
        return NULL;
    }
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509_REQ *req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!req)
        *err = ossl_err("x509");
    return req;
}

int pki_csr_parse(const void *pem, size_t len, struct pki_csr *out, char **err)
{
    memset(out, 0, sizeof(*out));
    *err = NULL;
    if (len > 64 * 1024) {
        *err = xstrdup("a certificate request of more than 64 KiB");
        return -1;
    }
    X509_REQ *req = csr_read(pem, len, err);
    if (!req)
        return -1;
    EVP_PKEY *pk = X509_REQ_get0_pubkey(req);
    if (!pk || X509_REQ_verify(req, pk) != 1) {
        *err = ossl_err("x509: the request's signature does not verify");
        X509_REQ_free(req);
        return -1;
    }
    csr_subject(req, out);
    csr_sans(req, out);
    X509_REQ_free(req);
    return 0;
}

void pki_csr_free(struct pki_csr *c)
{
    free(c->cn);
    for (size_t i = 0; c->orgs && c->orgs[i]; i++)
        free(c->orgs[i]);
    free(c->orgs);
    memset(c, 0, sizeof(*c));
}

static int has_usage(char *const *u, size_t n, const char *want)
{
    for (size_t i = 0; i < n; i++)
        if (u[i] && !strcmp(u[i], want))
            return 1;
    return 0;
}

const char *pki_signer_check(const char *signer, const struct pki_csr *c, char *const *usages,
                             size_t n_usages)
{
    if (!signer || strcmp(signer, PKI_SIGNER_KUBELET_CLIENT) != 0)
        return NULL;
    if (!c->orgs[0] || c->orgs[1] || strcmp(c->orgs[0], "system:nodes") != 0)
        return "subject organization is not system:nodes";
    if (strncmp(c->cn, "system:node:", 12) != 0 || !c->cn[12])
        return "subject common name does not begin with system:node:";
    if (c->n_dns)
        return "DNS subjectAltNames are not allowed";
    if (c->n_email)
        return "Email subjectAltNames are not allowed";
    if (c->n_ip)
        return "IP subjectAltNames are not allowed";
    if (c->n_uri)
        return "URI subjectAltNames are not allowed";
    if (!usages)
        return NULL;
    for (size_t i = 0; i < n_usages; i++)
        if (!usages[i] ||
            (strcmp(usages[i], "digital signature") && strcmp(usages[i], "key encipherment") &&
             strcmp(usages[i], "client auth")))
            return "usages may only be \"digital signature\", \"key encipherment\" and \"client "
                   "auth\"";
    if (!has_usage(usages, n_usages, "client auth"))
        return "usages must include \"client auth\"";
    return NULL;
}

/* ---------------------------------------------------------------- keys */

static char *bio_text(BIO *b)
{
    char *p;
    long n = BIO_get_mem_data(b, &p);
    return xstrndup(p, (size_t)(n > 0 ? n : 0));
}

int pki_new_key_csr(const char *cn, const char *org, char **key_pem, char **csr_pem, char **err)
{
    *key_pem = *csr_pem = NULL;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    X509_NAME *nm = X509_NAME_new();
    BIO *kb = BIO_new(BIO_s_mem()), *rb = BIO_new(BIO_s_mem());
    int r = -1;
    if (!k || !req || !nm || !kb || !rb) {
        *err = ossl_err("cannot make a key");
        goto out;
    }
    if ((org && !X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_UTF8, (const unsigned char *)org, -1,
                                            -1, 0)) ||
        !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_REQ_set_subject_name(req, nm) || !X509_REQ_set_pubkey(req, k) ||
        !X509_REQ_sign(req, k, EVP_sha256()) ||
        !PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL) ||
        !PEM_write_bio_X509_REQ(rb, req)) {
        *err = ossl_err("cannot make a certificate request");
        goto out;
    }
    *key_pem = bio_text(kb);
    *csr_pem = bio_text(rb);
    r = 0;
out:
    BIO_free(kb);
    BIO_free(rb);
    X509_NAME_free(nm);
    X509_REQ_free(req);
    EVP_PKEY_free(k);
    return r;
}

/* ---------------------------------------------------------------- signing */

static int add_ext(X509 *cert, X509 *ca, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, ca, cert, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!e)
        return 0;
    int ok = X509_add_ext(cert, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

/* A random positive 128-bit serial number. */
static int set_serial(X509 *cert)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1)
        return 0;
    b[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
    int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
    BN_free(bn);
    return ok;
}

static int64_t asn1_unix(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

/* Clock skew allowance: 5 minutes, a tenth of the lifetime for short ones. */
static long backdate(int64_t lifetime_s)
{
    return lifetime_s >= 3000 ? 300 : (long)(lifetime_s / 10);
}

int pki_sign(X509 *ca_cert, EVP_PKEY *ca_key, const void *csr_pem, size_t len, int64_t lifetime_s,
             char **cert_pem, char **err)
{
    *cert_pem = NULL;
    X509_REQ *req = csr_read(csr_pem, len, err);
    if (!req)
        return -1;
    X509 *cert = X509_new();
    BIO *b = BIO_new(BIO_s_mem());
    int r = -1;
    time_t now = time(NULL);
    int64_t end = (int64_t)now + lifetime_s, ca_end = asn1_unix(X509_get0_notAfter(ca_cert));
    if (ca_end && end > ca_end)
        end = ca_end; /* never outlive the CA */
    if (!cert || !b || !X509_set_version(cert, 2) || !set_serial(cert) ||
        !X509_set_subject_name(cert, X509_REQ_get_subject_name(req)) ||
        !X509_set_issuer_name(cert, X509_get_subject_name(ca_cert)) ||
        !X509_set_pubkey(cert, X509_REQ_get0_pubkey(req)) ||
        !X509_time_adj_ex(X509_getm_notBefore(cert), 0, -backdate(lifetime_s), &now) ||
        !X509_time_adj_ex(X509_getm_notAfter(cert), 0, (long)(end - now), &now) ||
        !add_ext(cert, ca_cert, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(cert, ca_cert, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
        !add_ext(cert, ca_cert, NID_ext_key_usage, "clientAuth") ||
        (X509_get0_subject_key_id(ca_cert) &&
         !add_ext(cert, ca_cert, NID_authority_key_identifier, "keyid:always")) ||
        !X509_sign(cert, ca_key, EVP_sha256()) || !PEM_write_bio_X509(b, cert)) {
        *err = ossl_err("cannot sign the certificate");
        goto out;
    }
    *cert_pem = bio_text(b);
    r = 0;
out:
    BIO_free(b);
    X509_free(cert);
    X509_REQ_free(req);
    return r;
}

int pki_cert_times(const void *pem, size_t len, int64_t *not_before, int64_t *not_after)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *c = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!c) {
        ERR_clear_error();
        return -1;
    }
    *not_before = asn1_unix(X509_get0_notBefore(c));
    *not_after = asn1_unix(X509_get0_notAfter(c));
    X509_free(c);
    return 0;
}

/* ---------------------------------------------------------------- tokens */

static int token_chars(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

int pki_token_split(const char *tok, char id[7], char secret[17])
{
    if (!tok || strlen(tok) != 23 || tok[6] != '.' || !token_chars(tok, 6) ||
        !token_chars(tok + 7, 16))
        return -1;
    memcpy(id, tok, 6);
    id[6] = 0;
    memcpy(secret, tok + 7, 16);
    secret[16] = 0;
    return 0;
}

int pki_token_new(char out[24])
{
    static const char set[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[22];
    size_t got = 0;
    while (got < sizeof(r)) {
        unsigned char b;
        if (RAND_bytes(&b, 1) != 1)
            return -1;
        if (b < 252) /* 252 = 7 * 36: no bias */
            r[got++] = (unsigned char)set[b % 36];
    }
    memcpy(out, r, 6);
    out[6] = '.';
    memcpy(out + 7, r + 6, 16);
    out[23] = 0;
    return 0;
}
