/* json-bench with jansson: parse + serialize (see json-bench.c). */
#include "config.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

size_t json_bench_jansson(const char *doc, size_t len);

size_t json_bench_jansson(const char *doc, size_t len)
{
    json_error_t e;
    json_t *v = json_loadb(doc, len, 0, &e);
    if (!v)
        fatal("jansson: %s", e.text);
    char *s = json_dumps(v, JSON_COMPACT);
    size_t n = strlen(s);
    free(s);
    json_decref(v);
    return n;
}
