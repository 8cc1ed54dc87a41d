/*
 * The certificate controllers, as Kubernetes' (pkg/controller/certificates):
 *
 * csrapproving approves the CertificateSigningRequests a kubelet sends
 * for its client certificate (signer kube-apiserver-client-kubelet,
 * O system:nodes, CN system:node:NAME): from a bootstrap token's user
 * (group system:bootstrappers) whose token is still valid, the join, and
 * from the node itself (the requester's name is the CN), the renewal.
 * Kubernetes asks a SubjectAccessReview for certificatesigningrequests/
 * nodeclient and /selfnodeclient; here those two rules are the policy.
 * Anything else waits for `certificate approve`; why it was not approved
 * is logged once per request.
 *
 * csrsigning signs approved requests of the kubelet client and
 * kube-apiserver-client signers with the cluster CA
 * (--cluster-signing-cert-file, --cluster-signing-key-file) for
 * --cluster-signing-duration or the request's expirationSeconds if
 * shorter; a request its signer's rules refuse gets the Failed
 * condition (SignerValidationFailure) saying which rule.
 */
#include "config.h"

#include "controllers.h"
#include "grpc.h"
#include "pb.h"
#include "pki.h"
#include "util.h"

/* no OpenSSL headers here: they include <sched.h>, which -I src/scheduler shadows */
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ctrl_certs_cfg ctrl_certs_cfg = {NULL, NULL, 365 * 24 * 3600};

static bool csr_decided(const Coracle__V1__CertificateSigningRequest *csr)
{
    return pki_csr_cond(csr, "Approved") || pki_csr_cond(csr, "Denied") ||
           pki_csr_cond(csr, "Failed");
}

/* Appends a True condition to csr (a copy the caller owns), now. */
static void csr_add_cond(Coracle__V1__CertificateSigningRequest *csr, const char *type,
                         const char *reason, const char *msg)
{
    pki_csr_add_cond(csr, type, reason, msg, (int64_t)time(NULL));
}

struct csr_write {
    ctrl_t *c;
    char *key;
    const char *what;
};

static void csr_written(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct csr_write *w = arg;
    bool ok = code == GRPC_OK || code == GRPC_NOT_FOUND;
    if (code == GRPC_OK)
        log_info("%s: %s %s", ctrl_name(w->c), w->what, w->key);
    ctrl_done(w->c, w->key, ok, message);
    free(w->key);
    free(w);
}

/* UpdateStatus of upd (a copy, freed here); the sync ends with the answer. */
static void csr_update(ctrl_t *c, const char *key, Coracle__V1__CertificateSigningRequest *upd,
                       const char *what)
{
    struct csr_write *w = xcalloc(1, sizeof(*w));
    w->c = c;
    w->key = xstrdup(key);
    w->what = what;
    cm_call(ctrl_cm(c), &kind_csr, "UpdateStatus", &upd->base, csr_written, w);
    protobuf_c_message_free_unpacked(&upd->base, NULL);
}

static const Coracle__V1__CertificateSigningRequest *csr_cached(ctrl_t *c, const char *key)
{
    return (const void *)cm_get(ctrl_cm(c), &kind_csr, NULL, key);
}

static void *csr_watch_setup(cm_t *cm, ctrl_t *c)
{
    struct inf_handlers h = {ctrl_enqueue_added, ctrl_enqueue_updated, NULL, NULL, c};
    cm_on(cm, &kind_csr, &h);
    return NULL;
}

/* ---------------------------------------------------------------- approving */

static bool in_group(const Coracle__V1__CertificateSigningRequestSpec *sp, const char *g)
{
    for (size_t i = 0; i < sp->n_groups; i++)
        if (sp->groups[i] && !strcmp(sp->groups[i], g))
            return true;
    return false;
}

/* Whether the bootstrap token behind user system:bootstrap:<id> is still valid (cached). */
static const char *token_refusal(cm_t *cm, const char *user)
{
    char name[64];
    snprintf(name, sizeof(name), "bootstrap-token-%s", user + strlen("system:bootstrap:"));
    const Coracle__V1__Secret *sc = (const void *)cm_get(cm, &kind_secret, "kube-system", name);
    if (!sc || (sc->metadata && sc->metadata->deletiontimestamp))
        return "its bootstrap token is gone";
    int64_t at;
    int has = pki_token_expiration(sc, &at);
    if (has < 0 || (has > 0 && at <= (int64_t)time(NULL)))
        return "its bootstrap token has expired";
    return NULL;
}

/*
 * Whether csr is to be approved: NULL and *msg (the condition's message),
 * or why not (static text).
 */
static const char *approval(cm_t *cm, const Coracle__V1__CertificateSigningRequest *csr,
                            const char **msg)
{
    const Coracle__V1__CertificateSigningRequestSpec *sp = csr->spec;
    if (!sp || !sp->signername || strcmp(sp->signername, PKI_SIGNER_KUBELET_CLIENT))
        return "not for signer " PKI_SIGNER_KUBELET_CLIENT;
    struct pki_csr pc;
    char *err = NULL;
    if (pki_csr_parse(sp->request.data, sp->request.len, &pc, &err) < 0) {
        free(err);
        return "its request does not parse";
    }
    const char *why = pki_signer_check(sp->signername, &pc, sp->usages, sp->n_usages);
    const char *user = sp->username ? sp->username : "";
    if (!why && in_group(sp, "system:bootstrappers") &&
        !strncmp(user, "system:bootstrap:", strlen("system:bootstrap:"))) {
        why = token_refusal(cm, user);
        *msg = "Auto approving kubelet client certificate after SubjectAccessReview.";
    } else if (!why && in_group(sp, "system:nodes") && !strcmp(user, pc.cn)) {
        *msg = "Auto approving self kubelet client certificate after SubjectAccessReview.";
    } else if (!why) {
        why = in_group(sp, "system:nodes") ? "a node may renew only its own certificate"
                                           : "the requester is neither a bootstrap token's user "
                                             "nor the node itself";
    }
    pki_csr_free(&pc);
    return why;
}

static void approving_sync(ctrl_t *c, const char *key, void *state)
{
    const Coracle__V1__CertificateSigningRequest *csr = csr_cached(c, key);
    if (!csr || csr_decided(csr) || (csr->status && csr->status->certificate.len)) {
        ctrl_done(c, key, true, NULL);
        return;
    }
    const char *msg = NULL, *why = approval(ctrl_cm(c), csr, &msg);
    if (why) {
        if (csr->spec && csr->spec->signername &&
            !strcmp(csr->spec->signername, PKI_SIGNER_KUBELET_CLIENT))
            log_info("%s: %s from %s left for an administrator: %s", ctrl_name(c), key,
                     csr->spec->username ? csr->spec->username : "?", why);
        ctrl_done(c, key, true, NULL);
        return;
    }
    Coracle__V1__CertificateSigningRequest *upd = (void *)pb_clone(&csr->base);
    csr_add_cond(upd, "Approved", "AutoApproved", msg);
    csr_update(c, key, upd, "approved");
}

static void *approving_setup(cm_t *cm, ctrl_t *c)
{
    /* the tokens' Secrets are read from the cache */
    struct inf_handlers none = {NULL, NULL, NULL, NULL, NULL};
    cm_on(cm, &kind_secret, &none);
    return csr_watch_setup(cm, c);
}

const struct ctrl_def ctrl_csrapproving = {
    .name = "csrapproving",
    .workers = 5,
    .setup = approving_setup,
    .sync = approving_sync,
};

/* ---------------------------------------------------------------- signing */

struct signer {
    struct x509_st *ca;
    struct evp_pkey_st *key;
};

static void *signing_setup(cm_t *cm, ctrl_t *c)
{
    const struct ctrl_certs_cfg *cfg = &ctrl_certs_cfg;
    if (!cfg->cert_file || !*cfg->cert_file || !cfg->key_file || !*cfg->key_file) {
        log_warn("%s: no --cluster-signing-cert-file and --cluster-signing-key-file: "
                 "certificate signing requests are not signed",
                 ctrl_name(c));
        return NULL;
    }
    char *err = NULL;
    struct signer *s = xcalloc(1, sizeof(*s));
    if (!(s->ca = pki_load_cert(cfg->cert_file, &err)) ||
        !(s->key = pki_load_key(cfg->key_file, &err)))
        fatal("%s: %s", ctrl_name(c), err);
    log_info("%s: signing with %s for %lld s", ctrl_name(c), cfg->cert_file,
             (long long)cfg->duration_s);
    csr_watch_setup(cm, c);
    return s;
}

static void signing_free(void *state)
{
    struct signer *s = state;
    if (!s)
        return;
    pki_cert_free(s->ca);
    pki_key_free(s->key);
    free(s);
}

static void signing_sync(ctrl_t *c, const char *key, void *state)
{
    struct signer *s = state;
    const Coracle__V1__CertificateSigningRequest *csr = csr_cached(c, key);
    const Coracle__V1__CertificateSigningRequestSpec *sp = csr ? csr->spec : NULL;
    if (!s || !sp || !pki_csr_cond(csr, "Approved") || pki_csr_cond(csr, "Denied") ||
        pki_csr_cond(csr, "Failed") || (csr->status && csr->status->certificate.len) ||
        !sp->signername ||
        (strcmp(sp->signername, PKI_SIGNER_KUBELET_CLIENT) &&
         strcmp(sp->signername, PKI_SIGNER_CLIENT))) {
        ctrl_done(c, key, true, NULL);
        return;
    }
    Coracle__V1__CertificateSigningRequest *upd = (void *)pb_clone(&csr->base);
    struct pki_csr pc;
    char *err = NULL;
    const char *why = NULL;
    if (pki_csr_parse(sp->request.data, sp->request.len, &pc, &err) == 0) {
        why = pki_signer_check(sp->signername, &pc, sp->usages, sp->n_usages);
        pki_csr_free(&pc);
    } else {
        why = err;
    }
    if (why) {
        csr_add_cond(upd, "Failed", "SignerValidationFailure", why);
        free(err);
        csr_update(c, key, upd, "refused");
        return;
    }
    int64_t life = ctrl_certs_cfg.duration_s;
    if (sp->has_expirationseconds && sp->expirationseconds > 0 && sp->expirationseconds < life)
        life = sp->expirationseconds;
    char *pem = NULL;
    if (pki_sign(s->ca, s->key, sp->request.data, sp->request.len, life, &pem, &err) < 0) {
        log_err("%s: %s: %s", ctrl_name(c), key, err);
        csr_add_cond(upd, "Failed", "SigningError", err);
        free(err);
        csr_update(c, key, upd, "failed to sign");
        return;
    }
    upd->status->has_certificate = 1;
    upd->status->certificate.data = (uint8_t *)pem;
    upd->status->certificate.len = strlen(pem);
    csr_update(c, key, upd, "signed");
}

const struct ctrl_def ctrl_csrsigning = {
    .name = "csrsigning",
    .workers = 5,
    .setup = signing_setup,
    .sync = signing_sync,
    .free = signing_free,
};
