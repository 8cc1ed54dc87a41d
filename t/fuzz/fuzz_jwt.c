/*
 * fuzz_jwt: the bearer-token parser (src/lib/jwt.h): base64url decoding,
 * which must be canonical (what decodes encodes back to the same text),
 * and the compact JWS split with its JSON header and claims.
 */
#include "config.h"
#include "fuzz.h"
#include "jwt.h"

#include <stdlib.h>
#include <string.h>

int fuzz_jwt_one(const uint8_t *data, size_t size)
{
    uint8_t *d;
    size_t dl;
    if (jwt_b64url_decode((const char *)data, size, &d, &dl) == 0) {
        char *e = jwt_b64url_encode(d, dl);
        if (strlen(e) != size || memcmp(e, data, size))
            abort(); /* two texts for one byte string */
        free(e);
        free(d);
    }
    struct jwt t;
    char *err = NULL;
    if (jwt_parse((const char *)data, size, &t, &err) == 0) {
        if (!t.alg || !json_is(t.header, JSON_OBJECT) || !json_is(t.claims, JSON_OBJECT) ||
            t.signed_len >= size || memchr(t.signed_part, '.', t.signed_len) == NULL)
            abort();
        jwt_clear(&t);
    } else {
        free(err);
    }
    return 0;
}

FUZZ_ENTRY(fuzz_jwt_one)
