/*
 * fuzz_audit_policy: the audit policy reader (src/apiserver/audit_policy.c)
 * on any text; a policy it takes is matched against requests made from
 * the input itself (as a REST path, for a user named by it), and every
 * level it gives must be one of the four.
 */
#include "config.h"
#include "audit.h"
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

int fuzz_audit_policy_one(const uint8_t *data, size_t size)
{
    char *err = NULL;
    struct audit_policy *p = audit_policy_parse("fuzz.yaml", (const char *)data, size, &err);
    if (!p) {
        if (!err || strncmp(err, "fuzz.yaml", 9))
            abort(); /* every message names the file */
        free(err);
        return 0;
    }
    char *text = strndup((const char *)data, size < 300 ? size : 300);
    const char *groups[] = {text, "system:authenticated", NULL};
    struct auth_user u = {text, groups, NULL, ""};
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
    static const char *const paths[] = {"/api/v1/namespaces/default/pods/x/log",
                                        "/apis/apps/v1/deployments", "/version", "/healthz"};
    char buf[512];
    for (size_t m = 0; m < sizeof(methods) / sizeof(*methods); m++) {
        for (size_t i = 0; i <= sizeof(paths) / sizeof(*paths); i++) {
            struct audit_req q;
            bool omit;
            const char *path = i < sizeof(paths) / sizeof(*paths) ? paths[i] : text;
            audit_request_info(methods[m], path, "watch=true", &q, buf, sizeof(buf));
            enum audit_level l = audit_policy_level(p, i % 2 ? &u : NULL, &q, &omit);
            if (l > AUDIT_REQUEST_RESPONSE)
                abort();
        }
    }
    free(text);
    audit_policy_free(p);
    return 0;
}

FUZZ_ENTRY(fuzz_audit_policy_one)
