/*
 * fuzz_accept: the Accept header's clauses (rest_accept_next in
 * src/apiserver/rest_query.c), which discovery and the OpenAPI endpoints
 * choose their answer by, and rest_accept's negotiation on top of it, which
 * resource reads answer by. Every clause must fit its buffers,
 * NUL-terminated, without blanks, and the reader must reach the end.
 */
#include "config.h"
#include "fuzz.h"
#include "rest_int.h"

#include <stdlib.h>
#include <string.h>

int fuzz_accept_one(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    const char *cur = s;
    char type[16], params[8];
    size_t clauses = 0;
    while (rest_accept_next(&cur, type, sizeof(type), params, sizeof(params))) {
        if (strlen(type) >= sizeof(type) || strlen(params) >= sizeof(params) || !*type ||
            strpbrk(type, " \t,;") || strpbrk(params, " \t,"))
            abort(); /* a clause outside its bounds, or not split */
        if (++clauses > size)
            abort(); /* no progress */
    }
    if (cur && *cur)
        abort(); /* stopped before the end */
    bool pb_only;
    enum rest_fmt f = rest_accept(s, &pb_only);
    if ((f != RF_JSON && f != RF_TABLE && f != RF_PB) || (pb_only && f != RF_PB))
        abort(); /* a format not served, or protobuf-only errors without protobuf */
    free(s);
    return 0;
}

FUZZ_ENTRY(fuzz_accept_one)
