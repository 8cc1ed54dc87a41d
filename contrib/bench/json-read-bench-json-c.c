/* json-read-bench's json-c reader (see json-read-bench.c): parse with a tokener, free. */
#include "config.h"

#include <json-c/json.h>
#include <stddef.h>

int jb_json_c(const char *buf, size_t len);

int jb_json_c(const char *buf, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *v = json_tokener_parse_ex(tok, buf, (int)len);
    int rc = v ? 0 : -1;
    json_object_put(v);
    json_tokener_free(tok);
    return rc;
}
