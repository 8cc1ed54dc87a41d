/*
 * rest_openapi: the OpenAPI documents (/openapi/v2, /openapi/v3). See
 * rest_int.h.
 */
#include "config.h"
#include "rest_int.h"

void rest_openapi(rest_t *rs, h2s_req_t *r, char **seg, size_t n)
{
    rest_not_found_path(rs, r);
}
