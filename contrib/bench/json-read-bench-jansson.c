/* json-read-bench's jansson reader (see json-read-bench.c): parse, refuse duplicates, free. */
#include "config.h"

#include <jansson.h>
#include <stddef.h>

int jb_jansson(const char *buf, size_t len);

int jb_jansson(const char *buf, size_t len)
{
    json_error_t e;
    json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
    if (!v)
        return -1;
    json_decref(v);
    return 0;
}
