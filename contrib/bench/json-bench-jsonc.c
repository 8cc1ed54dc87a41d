/* json-bench with json-c: parse + serialize (see json-bench.c). */
#include "config.h"
#include "util.h"

#include <json-c/json.h>
#include <string.h>

size_t json_bench_json_c(const char *doc, size_t len);

size_t json_bench_json_c(const char *doc, size_t len)
{
    json_tokener *tok = json_tokener_new_ex(64);
    json_object *v = json_tokener_parse_ex(tok, doc, (int)len);
    if (!v)
        fatal("json-c refused the document");
    size_t n = strlen(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    json_object_put(v);
    json_tokener_free(tok);
    return n;
}
