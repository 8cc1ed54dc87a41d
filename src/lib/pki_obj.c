/*
 * pki_obj: CertificateSigningRequest conditions and bootstrap token
 * expirations, shared by the apiserver, the controllers, the kubelet and
 * coraclectl. See pki.h.
 */
#include "config.h"
#include "kobj.h"
#include "pki.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

const Coracle__V1__CertificateSigningRequestCondition *
pki_csr_cond(const Coracle__V1__CertificateSigningRequest *csr, const char *type)
{
    for (size_t i = 0; csr->status && i < csr->status->n_conditions; i++)
        if (csr->status->conditions[i]->type && !strcmp(csr->status->conditions[i]->type, type))
            return csr->status->conditions[i];
    return NULL;
}

static Coracle__V1__Time *new_time(int64_t s)
{
    Coracle__V1__Time *t = xmalloc(sizeof(*t));
    coracle__v1__time__init(t);
    t->has_seconds = 1;
    t->seconds = s;
    return t;
}

void pki_csr_add_cond(Coracle__V1__CertificateSigningRequest *csr, const char *type,
                      const char *reason, const char *msg, int64_t now_s)
{
    if (!csr->status) {
        csr->status = xmalloc(sizeof(*csr->status));
        coracle__v1__certificate_signing_request_status__init(csr->status);
    }
    Coracle__V1__CertificateSigningRequestStatus *st = csr->status;
    Coracle__V1__CertificateSigningRequestCondition *c = xmalloc(sizeof(*c));
    coracle__v1__certificate_signing_request_condition__init(c);
    c->type = xstrdup(type);
    c->status = xstrdup("True");
    c->reason = xstrdup(reason);
    c->message = xstrdup(msg);
    c->lastupdatetime = new_time(now_s);
    c->lasttransitiontime = new_time(now_s);
    st->conditions = xrealloc(st->conditions, (st->n_conditions + 1) * sizeof(*st->conditions));
    st->conditions[st->n_conditions++] = c;
}

int pki_token_expiration(const Coracle__V1__Secret *sc, int64_t *at)
{
    for (size_t i = 0; i < sc->n_data; i++) {
        const Coracle__V1__Secret__DataEntry *e = sc->data[i];
        if (!e->key || strcmp(e->key, "expiration") || !e->value.len)
            continue;
        char buf[64];
        int32_t ns;
        snprintf(buf, sizeof(buf), "%.*s", (int)e->value.len, (const char *)e->value.data);
        return kobj_parse_rfc3339(buf, at, &ns) < 0 ? -1 : 1;
    }
    return 0;
}
