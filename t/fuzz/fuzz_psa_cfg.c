/*
 * fuzz_psa_cfg: the AdmissionConfiguration reader for Pod Security
 * (src/apiserver/psa_cfg.c) on any text: a refusal names the file; what
 * it takes has valid levels and versions and NULL-terminated lists.
 */
#include "config.h"
#include "fuzz.h"
#include "psa.h"

#include <stdlib.h>
#include <string.h>

static void check_list(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        if (!*v[i])
            abort(); /* empty names are refused */
}

int fuzz_psa_cfg_one(const uint8_t *data, size_t size)
{
    struct psa_file f;
    char *err = NULL;
    if (psa_file_parse("fuzz.yaml", (const char *)data, size, &f, &err)) {
        if (!err || strncmp(err, "fuzz.yaml", 9))
            abort(); /* every message names the file */
        free(err);
        return 0;
    }
    const struct psa_lv *lvs[] = {&f.defaults.enforce, &f.defaults.audit, &f.defaults.warn};
    for (int i = 0; i < 3; i++)
        if (lvs[i]->level > PSA_RESTRICTED || lvs[i]->minor < 0)
            abort();
    check_list(f.exempt_users);
    check_list(f.exempt_namespaces);
    check_list(f.exempt_runtime_classes);
    psa_file_free(&f);
    return 0;
}

FUZZ_ENTRY(fuzz_psa_cfg_one)
