/*
 * fuzz: the libFuzzer targets' entry points. Each t/fuzz/fuzz_<x>.c defines
 * fuzz_<x>_one(); built with -DFUZZ_MAIN (make fuzz, clang) it also defines
 * LLVMFuzzerTestOneInput. t/unit/test_fuzz runs every input under
 * t/fuzz/corpus/<x>/ and t/fuzz/regressions/<x>/ through them in the normal
 * build, so a crash once found stays fixed.
 */
#ifndef CORACLE_FUZZ_H
#define CORACLE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int fuzz_sel_one(const uint8_t *data, size_t size);
int fuzz_qty_one(const uint8_t *data, size_t size);
int fuzz_yaml_one(const uint8_t *data, size_t size);
int fuzz_kobj_json_one(const uint8_t *data, size_t size);
int fuzz_kobj_pb_one(const uint8_t *data, size_t size);
int fuzz_pb_one(const uint8_t *data, size_t size);
int fuzz_http1_one(const uint8_t *data, size_t size);
int fuzz_accept_one(const uint8_t *data, size_t size);
int fuzz_rest_body_one(const uint8_t *data, size_t size);
int fuzz_jsonpatch_one(const uint8_t *data, size_t size);
int fuzz_mergepatch_one(const uint8_t *data, size_t size);
int fuzz_smpatch_one(const uint8_t *data, size_t size);
/* fuzz_patch.c: the three above, by patch type (enum kpatch_type). */
int fuzz_patch_run(int type, const uint8_t *data, size_t size);
int fuzz_ssa_one(const uint8_t *data, size_t size);
int fuzz_spdy_one(const uint8_t *data, size_t size);
int fuzz_ws_one(const uint8_t *data, size_t size);
int fuzz_enc_cfg_one(const uint8_t *data, size_t size);
int fuzz_psa_cfg_one(const uint8_t *data, size_t size);
int fuzz_cron_one(const uint8_t *data, size_t size);
int fuzz_jwt_one(const uint8_t *data, size_t size);
int fuzz_wal_one(const uint8_t *data, size_t size);
int fuzz_audit_policy_one(const uint8_t *data, size_t size);
int fuzz_csr_one(const uint8_t *data, size_t size);
int fuzz_dns_one(const uint8_t *data, size_t size);
int fuzz_oci_one(const uint8_t *data, size_t size);
int fuzz_tar_one(const uint8_t *data, size_t size);

#ifdef FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#define FUZZ_ENTRY(fn)                                                                             \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)                                   \
    {                                                                                              \
        return fn(data, size);                                                                     \
    }
#else
#define FUZZ_ENTRY(fn)
#endif

#endif
