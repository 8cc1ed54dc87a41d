/*
 * fuzz_csr: a CertificateSigningRequest's spec.request (src/lib/pki.h):
 * parsed with OpenSSL and held to the kubelet client signer's rules; a
 * refusal always says why.
 */
#include "config.h"
#include "fuzz.h"
#include "pki.h"

#include <stdlib.h>

int fuzz_csr_one(const uint8_t *data, size_t size)
{
    struct pki_csr c;
    char *err = NULL;
    if (pki_csr_parse(data, size, &c, &err) == 0) {
        char *usages[] = {"client auth"};
        (void)pki_signer_check(PKI_SIGNER_KUBELET_CLIENT, &c, usages, 1);
        if (!c.cn || !c.orgs)
            abort(); /* parsed: both are there, maybe empty */
        pki_csr_free(&c);
    } else if (!err) {
        abort();
    }
    free(err);
    return 0;
}

FUZZ_ENTRY(fuzz_csr_one)
