/*
 * enc_int: what enc.c (the transformer) and enc_cfg.c (the config reader)
 * share. Not for other modules: use enc.h.
 */
#ifndef CORACLE_ENC_INT_H
#define CORACLE_ENC_INT_H

#include "enc.h"

#include <stddef.h>

#define ENC_MAX_KEY 32

enum enc_type { ENC_IDENTITY, ENC_AESGCM, ENC_AESCBC };

struct enc_key {
    char *name;
    char *prefix; /* "k8s:enc:aesgcm:v1:<name>:" */
    size_t prefix_len;
    unsigned char secret[ENC_MAX_KEY];
    size_t len; /* 16, 24 or 32 */
};

struct enc_provider {
    enum enc_type type;
    struct enc_key *keys; /* the first one encrypts */
    size_t n_keys;
};

struct enc_rule {
    struct enc_provider *prov; /* the first one encrypts */
    size_t n_prov;
    int has_identity; /* plain values are read */
};

/* A resource of the kinds table and the first rule that names it. */
struct enc_res {
    const char *resource; /* "secrets": the store key's first segment */
    size_t len;
    const struct enc_rule *rule;
};

struct enc {
    struct enc_rule *rules; /* resources[] in order */
    size_t n_rules;
    struct enc_res *res;
    size_t n_res;
};

/* "aesgcm", "aescbc", "identity". */
const char *enc_type_name(enum enc_type t);

#endif
