/*
 * Unit tests for the kubelet's reading of CRI log lines (tunnel.c,
 * ktun_cri_decode_opts): the content of full and partial lines, lines
 * older than since left out, timestamps as Kubernetes prints them
 * (RFC3339Nano: trailing zeros of the fraction dropped), a cut line
 * left for later, non-CRI lines passed through.
 */
#include "config.h"
#include "tap.h"
#include "tunnel.h"

#include <stdlib.h>
#include <string.h>

static char *decode(const char *in, const struct ktun_cri_opts *o, size_t *used)
{
    char *out;
    size_t n;
    *used = ktun_cri_decode_opts(in, strlen(in), o, &out, &n);
    out[n] = '\0';
    return out;
}

int main(void)
{
    const char *log = "2026-12-07T06:00:00.100000000Z stdout F first\n"
                      "2026-12-07T06:00:01.000000000Z stderr P part-\n"
                      "2026-12-07T06:00:01.500000000Z stderr F ial\n"
                      "2026-12-07T06:00:02.123456789Z stdout F last\n"
                      "2026-12-07T06:00:03.000000000Z stdout F cut";
    size_t used;
    char *o = decode(log, NULL, &used);
    is_str(o, "first\npart-ial\nlast\n", "contents: a partial line joined to the next");
    ok(used == strlen(log) - strlen("2026-12-07T06:00:03.000000000Z stdout F cut"),
       "a line cut at the end is left for later");
    free(o);
    struct ktun_cri_opts ts = {.timestamps = 1};
    o = decode(log, &ts, &used);
    is_str(o,
           "2026-12-07T06:00:00.1Z first\n2026-12-07T06:00:01Z part-"
           "2026-12-07T06:00:01.5Z ial\n2026-12-07T06:00:02.123456789Z last\n",
           "timestamps: RFC3339Nano, trailing zeros dropped");
    free(o);
    struct ktun_cri_opts since = {.since_ns = 1796623201000000000LL}; /* 06:00:01Z */
    o = decode(log, &since, &used);
    is_str(o, "part-ial\nlast\n", "since: older lines left out");
    free(o);
    o = decode("not a CRI line\n", &ts, &used);
    is_str(o, "not a CRI line\n", "a line that is not CRI passes through");
    free(o);
    return done_testing();
}
