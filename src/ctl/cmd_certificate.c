/*
 * cmd_certificate: `coraclectl certificate approve|deny NAME...`, kubectl's:
 * reads each CertificateSigningRequest, adds the Approved (or Denied)
 * condition and writes the status back; the csrsigning controller then
 * signs an approved one.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "ctl.h"
#include "grpc.h"
#include "pki.h"

static const char certificate_help[] =
    "Modify certificate resources.\n"
    "\n"
    "Commands:\n"
    "  approve  Approve a certificate signing request\n"
    "  deny     Deny a certificate signing request\n"
    "\n"
    "Options:\n"
    "      --force=false: Update the CSR even if it is already approved or denied.\n"
    "\n"
    "Usage:\n"
    "  coraclectl certificate approve|deny (-f FILENAME | NAME) [options]\n";

/* One CSR: 0 done, 1 failed (said on stderr). */
static int decide(struct ctl_client *c, const char *name, bool approve, bool force)
{
    const char *type = approve ? "Approved" : "Denied", *other = approve ? "Denied" : "Approved";
    Coracle__V1__GetRequest req = CORACLE__V1__GET_REQUEST__INIT;
    req.name = (char *)name;
    ProtobufCMessage *resp = NULL;
    char *err = NULL;
    int code = ctl_call(c, &kind_csr, "Get", &req.base, kind_csr.desc, &resp, &err);
    if (code != GRPC_OK) {
        ctl_print_error(c, code, err);
        free(err);
        return 1;
    }
    Coracle__V1__CertificateSigningRequest *csr = (void *)resp;
    int rc = 0;
    if (pki_csr_cond(csr, other) && !force) {
        fprintf(stderr, "error: certificatesigningrequest %s is already %s\n", name, other);
        rc = 1;
    } else if (!pki_csr_cond(csr, type) || force) {
        pki_csr_add_cond(csr, type, approve ? "KubectlApprove" : "KubectlDeny",
                         approve ? "This CSR was approved by kubectl certificate approve."
                                 : "This CSR was denied by kubectl certificate deny.",
                         (int64_t)time(NULL));
        ProtobufCMessage *out = NULL;
        code = ctl_call(c, &kind_csr, "UpdateStatus", &csr->base, kind_csr.desc, &out, &err);
        if (code != GRPC_OK) {
            ctl_print_error(c, code, err);
            free(err);
            rc = 1;
        } else {
            protobuf_c_message_free_unpacked(out, NULL);
        }
    }
    if (!rc)
        printf("certificatesigningrequest.certificates.k8s.io/%s %s\n", name,
               approve ? "approved" : "denied");
    protobuf_c_message_free_unpacked(resp, NULL);
    return rc;
}

int ctl_cmd_certificate(int argc, char **argv)
{
    bool force = false;
    const struct ctl_flag flags[] = {
        {"force", 0, CTL_FLAG_BOOL, &force, NULL},
    };
    struct ctl_strv pos;
    if (ctl_parse_flags(argc, argv, flags, ARRAY_SIZE(flags), &pos, NULL) < 0)
        return 1;
    if (ctl_g.help || pos.n < 2 || (strcmp(pos.v[0], "approve") && strcmp(pos.v[0], "deny"))) {
        fputs(certificate_help, ctl_g.help ? stdout : stderr);
        free(pos.v);
        return ctl_g.help ? 0 : 1;
    }
    bool approve = !strcmp(pos.v[0], "approve");
    struct ctl_client c;
    if (ctl_client_open(&c) < 0) {
        free(pos.v);
        return 1;
    }
    int rc = 0;
    for (size_t i = 1; i < pos.n; i++)
        rc |= decide(&c, pos.v[i], approve, force);
    ctl_client_close(&c);
    free(pos.v);
    return rc;
}
