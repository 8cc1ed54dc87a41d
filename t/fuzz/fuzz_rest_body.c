/*
 * fuzz_rest_body: the REST API's write bodies (src/apiserver/rest_body.c).
 * The input's first line is the Content-Type, the rest the body: decoded as
 * an object of every kind (JSON, YAML or the protobuf envelope; the
 * fieldValidation mode from the body's length) and as DeleteOptions. What
 * decodes is encoded back.
 */
#include "config.h"
#include "fuzz.h"
#include "obj.h"
#include "rest_int.h"

#include <stdlib.h>
#include <string.h>

int fuzz_rest_body_one(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hl = nl ? (size_t)(nl - data) : 0;
    char *ct = strndup((const char *)data, hl);
    char *media = rest_media_type(ct);
    const uint8_t *body = nl ? nl + 1 : data;
    size_t len = size - (size_t)(body - data);
    enum kobj_fields f = (enum kobj_fields)(len % 3);
    for (size_t i = 0; kinds_all[i]; i++) {
        const struct kind *k = kinds_all[i];
        struct kobj_opts ko = {0};
        struct rest_err e;
        ProtobufCMessage *m =
            rest_body_decode(media, body, len, k->desc, k->kind, k->api_version, f, &ko, &e);
        if (m) {
            size_t n;
            free(obj_encode(m, &n));
            obj_free(m);
        } else {
            free(e.msg);
        }
        kobj_opts_free(&ko);
    }
    struct rquery q = {0};
    struct rest_delete_opts d;
    struct rest_err e;
    if (rest_delete_opts_parse(media, body, len, &q, &d, &e) == 0)
        rest_delete_opts_free(&d);
    else
        free(e.msg);
    free(media);
    free(ct);
    return 0;
}

FUZZ_ENTRY(fuzz_rest_body_one)
