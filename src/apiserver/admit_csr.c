/*
 * admit_csr: CertificateSigningRequest (certificates.k8s.io/v1) admission:
 * the request parsed with OpenSSL and held to its signer's rules (pki.h),
 * the spec immutable, and on create the requester's identity written into
 * the spec, as Kubernetes' registry does; a node may ask only for its own
 * name.
 */
#include "config.h"
#include "admit_int.h"
#include "obj.h"
#include "pki.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSR_MIN_EXPIRATION 600

/* "example.com/signer-name": a DNS subdomain, a slash, a path. */
static int signer_name_ok(const char *s)
{
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || !slash[1] || strlen(s) > 571)
        return 0;
    char *dom = xstrndup(s, (size_t)(slash - s));
    int ok = !admit_dns1123_subdomain(dom) && strchr(dom, '.');
    free(dom);
    return ok;
}

void admit_csr_validate(struct errs *e, const Coracle__V1__CertificateSigningRequest *csr)
{
    const Coracle__V1__CertificateSigningRequestSpec *sp = csr->spec;
    if (!sp || !sp->request.len) {
        admit_err(e, "spec.request: Required value");
    } else {
        struct pki_csr c;
        char *why = NULL;
        if (pki_csr_parse(sp->request.data, sp->request.len, &c, &why) < 0) {
            admit_err(e, "spec.request: Invalid value: \"<CERTIFICATE REQUEST>\": %s", why);
            free(why);
        } else {
            const char *rule = pki_signer_check(sp->signername, &c, sp->usages, sp->n_usages);
            if (rule)
                admit_err(e, "spec.request: Forbidden: signer %s: %s", sp->signername, rule);
            pki_csr_free(&c);
        }
    }
    if (!sp || !sp->signername || !*sp->signername)
        admit_err(e, "spec.signerName: Required value");
    else if (!signer_name_ok(sp->signername))
        admit_err(
            e,
            "spec.signerName: Invalid value: \"%s\": must be a fully qualified domain and path "
            "of the form 'example.com/signer-name'",
            sp->signername);
    if (sp && sp->has_expirationseconds && sp->expirationseconds < CSR_MIN_EXPIRATION)
        admit_err(e,
                  "spec.expirationSeconds: Invalid value: %d: may not specify a duration less than "
                  "600 seconds (10 minutes)",
                  sp->expirationseconds);
    if (!sp || !sp->n_usages)
        admit_err(e, "spec.usages: Required value");
}

void admit_csr_update(struct errs *e, const Coracle__V1__CertificateSigningRequest *old,
                      const Coracle__V1__CertificateSigningRequest *upd)
{
    bool same = !old->spec || !upd->spec ? old->spec == upd->spec
                                         : obj_equal(&old->spec->base, &upd->spec->base);
    if (!same)
        admit_err(e, "spec: Forbidden: updates to certificate signing request spec are forbidden");
}

/* The CN the request asks for ("" if it does not parse: validation says why). */
static char *request_cn(const Coracle__V1__CertificateSigningRequestSpec *sp)
{
    struct pki_csr c;
    char *why = NULL;
    if (!sp || pki_csr_parse(sp->request.data, sp->request.len, &c, &why) < 0) {
        free(why);
        return xstrdup("");
    }
    char *cn = xstrdup(c.cn);
    pki_csr_free(&c);
    return cn;
}

static int in_group(const char *const *groups, const char *g)
{
    for (size_t i = 0; groups && groups[i]; i++)
        if (!strcmp(groups[i], g))
            return 1;
    return 0;
}

int admit_csr_create(ProtobufCMessage *obj, const char *user, const char *const *groups, char **msg)
{
    Coracle__V1__CertificateSigningRequest *csr = (void *)obj;
    *msg = NULL;
    if (!csr->spec) {
        csr->spec = xmalloc(sizeof(*csr->spec));
        coracle__v1__certificate_signing_request_spec__init(csr->spec);
    }
    Coracle__V1__CertificateSigningRequestSpec *sp = csr->spec;
    if (user && in_group(groups, "system:nodes") && !strncmp(user, "system:node:", 12) &&
        sp->signername && !strcmp(sp->signername, PKI_SIGNER_KUBELET_CLIENT)) {
        char *cn = request_cn(sp);
        if (*cn && strcmp(cn, user)) {
            *msg = xasprintf("certificatesigningrequests.certificates.k8s.io is forbidden: node "
                             "\"%s\" may only request a client certificate for its own name "
                             "(CN %s), not %s",
                             user + 12, user, cn);
            free(cn);
            return -1;
        }
        free(cn);
    }
    obj_set_str(&sp->username, user ? user : "");
    for (size_t i = 0; i < sp->n_groups; i++)
        free(sp->groups[i]);
    free(sp->groups);
    sp->groups = NULL;
    sp->n_groups = 0;
    for (size_t i = 0; groups && groups[i]; i++) {
        sp->groups = xrealloc(sp->groups, (sp->n_groups + 1) * sizeof(char *));
        sp->groups[sp->n_groups++] = xstrdup(groups[i]);
    }
    obj_set_str(&sp->uid, NULL);
    if (csr->status) {
        obj_free(&csr->status->base);
        csr->status = NULL;
    }
    return 0;
}

/* Whether the status has a condition of that type. */
static bool has_cond(const Coracle__V1__CertificateSigningRequestStatus *st, const char *type)
{
    for (size_t i = 0; st && i < st->n_conditions; i++)
        if (st->conditions[i]->type && !strcmp(st->conditions[i]->type, type))
            return true;
    return false;
}

int admit_csr_status(const ProtobufCMessage *cur, const ProtobufCMessage *upd, char **msg)
{
    const Coracle__V1__CertificateSigningRequestStatus *a =
        ((const Coracle__V1__CertificateSigningRequest *)cur)->status;
    const Coracle__V1__CertificateSigningRequestStatus *b =
        ((const Coracle__V1__CertificateSigningRequest *)upd)->status;
    const Coracle__V1__ObjectMeta *m = kind_meta(upd);
    struct errs e = {0};
    *msg = NULL;
    if (has_cond(b, "Approved") && has_cond(b, "Denied"))
        admit_err(&e,
                  "status.conditions: Invalid value: \"Denied\": Approved and Denied conditions "
                  "are mutually exclusive");
    static const char *const kept[] = {"Approved", "Denied", "Failed"};
    for (size_t i = 0; i < 3; i++)
        if (has_cond(a, kept[i]) && !has_cond(b, kept[i]))
            admit_err(&e,
                      "status.conditions: Forbidden: updates may not remove a condition of type "
                      "\"%s\"",
                      kept[i]);
    bool had = a && a->certificate.len;
    if (had && (!b || b->certificate.len != a->certificate.len ||
                memcmp(b->certificate.data, a->certificate.data, a->certificate.len)))
        admit_err(&e, "status.certificate: Forbidden: updates may not modify existing certificate "
                      "content");
    if (!had && b && b->certificate.len && !has_cond(b, "Approved"))
        admit_err(&e,
                  "status.certificate: Invalid value: \"<certificate data>\": certificate can only "
                  "be set if the Approved condition is present");
    return admit_errs_finish(&e, &kind_csr, m ? m->name : NULL, msg);
}
