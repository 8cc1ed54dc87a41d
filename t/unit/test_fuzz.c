/*
 * test_fuzz: runs every seed (t/fuzz/corpus/<target>/) and every saved
 * crash reproducer (t/fuzz/regressions/<target>/) through the fuzz
 * targets in the normal (gcc, sanitizer-optional) build: an input that
 * once crashed a parser stays a test.
 */
#include "config.h"
#include "fuzz.h"
#include "tap.h"
#include "util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int (*fn)(const uint8_t *, size_t);
} targets[] = {
    {"sel", fuzz_sel_one},
    {"qty", fuzz_qty_one},
    {"yaml", fuzz_yaml_one},
    {"kobj_json", fuzz_kobj_json_one},
    {"kobj_pb", fuzz_kobj_pb_one},
    {"pb", fuzz_pb_one},
    {"http1", fuzz_http1_one},
    {"accept", fuzz_accept_one},
    {"rest_body", fuzz_rest_body_one},
    {"jsonpatch", fuzz_jsonpatch_one},
    {"mergepatch", fuzz_mergepatch_one},
    {"smpatch", fuzz_smpatch_one},
    {"ssa", fuzz_ssa_one},
    {"spdy", fuzz_spdy_one},
    {"ws", fuzz_ws_one},
    {"enc_cfg", fuzz_enc_cfg_one},
    {"psa_cfg", fuzz_psa_cfg_one},
    {"audit_policy", fuzz_audit_policy_one},
    {"cron", fuzz_cron_one},
    {"jwt", fuzz_jwt_one},
    {"wal", fuzz_wal_one},
    {"csr", fuzz_csr_one},
    {"dns", fuzz_dns_one},
    {"oci", fuzz_oci_one},
    {"tar", fuzz_tar_one},
};

static int run_dir(const char *dir, int (*fn)(const uint8_t *, size_t), size_t *count)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0; /* an empty regressions folder may be absent */
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *p = xasprintf("%s/%s", dir, e->d_name);
        FILE *f = fopen(p, "rb");
        if (f) {
            uint8_t *buf = xmalloc(1 << 20);
            size_t n = fread(buf, 1, 1 << 20, f);
            fclose(f);
            fn(buf, n);
            free(buf);
            (*count)++;
        }
        free(p);
    }
    closedir(d);
    return 0;
}

int main(void)
{
    const char *src = getenv("CORACLE_SRC") ? getenv("CORACLE_SRC") : SRCDIR;
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        size_t seeds = 0, regs = 0;
        char *c = xasprintf("%s/t/fuzz/corpus/%s", src, targets[i].name);
        char *r = xasprintf("%s/t/fuzz/regressions/%s", src, targets[i].name);
        run_dir(c, targets[i].fn, &seeds);
        run_dir(r, targets[i].fn, &regs);
        ok(seeds > 0, "%s: %zu seeds and %zu regression inputs ran without a crash",
           targets[i].name, seeds, regs);
        free(c);
        free(r);
    }
    return done_testing();
}
