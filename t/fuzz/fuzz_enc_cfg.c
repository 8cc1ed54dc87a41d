/*
 * fuzz_enc_cfg: the EncryptionConfiguration reader (src/apiserver/enc_cfg.c)
 * on any text; a config it takes must seal and open a value for each
 * resource it names, and opening the input itself as a stored value (any
 * prefix, any length) must fail cleanly or give bytes back.
 */
#include "config.h"
#include "enc_int.h"
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void round_trip(const enc_t *e)
{
    static const char plain[] = "fuzz: the plain bytes";
    for (size_t i = 0; i < e->n_res; i++) {
        char key[64];
        int kl = snprintf(key, sizeof(key), "%s/ns/name", e->res[i].resource);
        const enc_rule_t *r = enc_rule_for_key(e, key, (size_t)kl);
        if (r != e->res[i].rule)
            abort(); /* the lookup must find the rule the config gave the resource */
        void *sealed, *out;
        size_t sl, ol;
        char *err = NULL;
        if (enc_seal(r, key, (size_t)kl, plain, sizeof(plain), &sealed, &sl, &err))
            abort();
        const void *v = sealed ? sealed : plain;
        size_t vl = sealed ? sl : sizeof(plain);
        int stale;
        if (enc_open(r, key, (size_t)kl, v, vl, &out, &ol, &stale, &err) || stale)
            abort();
        if (out && (ol != sizeof(plain) || memcmp(out, plain, ol)))
            abort();
        free(out);
        free(sealed);
    }
}

int fuzz_enc_cfg_one(const uint8_t *data, size_t size)
{
    enc_t *e = NULL;
    char *err = NULL;
    if (enc_parse("fuzz.yaml", (const char *)data, size, &e, &err)) {
        if (!err || strncmp(err, "fuzz.yaml", 9))
            abort(); /* every message names the file */
        free(err);
        return 0;
    }
    round_trip(e);
    for (size_t i = 0; i < e->n_rules; i++) {
        void *out = NULL;
        size_t ol;
        if (enc_open(&e->rules[i], "k", 1, data, size, &out, &ol, NULL, &err))
            free(err);
        free(out);
    }
    enc_free(e);
    return 0;
}

FUZZ_ENTRY(fuzz_enc_cfg_one)
