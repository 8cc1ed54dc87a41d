/*
 * fuzz_oci: what a registry client reads from the network or a node's
 * files (src/lib/oci.h): the first byte picks the parser, the rest is its
 * input. 0: a manifest or index (then the platform choice), 1: a
 * WWW-Authenticate header, 2: a hosts.toml, 3: a docker config.json's
 * credentials. Invariants: what parses is whole (digests checked, every
 * descriptor read), and what fails leaves nothing allocated.
 */
#include "config.h"
#include "fuzz.h"
#include "oci.h"

#include <stdlib.h>
#include <string.h>

static void one_manifest(const char *s, size_t n)
{
    struct oci_manifest m;
    char *err = NULL;
    if (oci_manifest_parse(s, n, "application/vnd.oci.image.manifest.v1+json", &m, &err) < 0) {
        if (!err)
            abort();
        free(err);
        return;
    }
    if (m.kind == 'm') {
        if (!m.config.digest || strlen(m.config.digest) != 71)
            abort();
        for (size_t i = 0; i < m.n_layers; i++)
            if (!m.layers[i].digest || m.layers[i].size < 0)
                abort();
    } else {
        struct oci_desc d;
        if (oci_index_pick(&m, "linux", "amd64", &d) == 0 && strlen(d.digest) != 71)
            abort();
    }
    oci_manifest_free(&m);
}

int fuzz_oci_one(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *s = malloc(size);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = 0;
    size_t n = size - 1;
    switch (data[0] % 4) {
    case 0:
        one_manifest(s, n);
        break;
    case 1: {
        struct oci_challenge ch;
        if (oci_challenge_parse(s, &ch) == 0) {
            if (!ch.scheme || !*ch.scheme)
                abort();
            oci_challenge_free(&ch);
        }
        break;
    }
    case 2: {
        struct oci_hosts h;
        char *err = NULL;
        if (oci_hosts_parse(s, n, "docker.io", &h, &err) == 0) {
            if (h.n < 1)
                abort(); /* the upstream is always last */
            for (size_t i = 0; i < h.n; i++)
                if (strncmp(h.v[i].url, "http", 4) ||
                    (!strncmp(h.v[i].url, "http://", 7) && !h.v[i].loopback))
                    abort(); /* plain HTTP only to loopback */
            oci_hosts_free(&h);
        } else {
            free(err);
        }
        break;
    }
    default: {
        char *u = NULL, *p = NULL;
        if (oci_creds_find(s, n, "docker.io", &u, &p) == 0) {
            if (!u || !p)
                abort();
        } else if (u || p) {
            abort();
        }
        free(u);
        free(p);
    }
    }
    free(s);
    return 0;
}

FUZZ_ENTRY(fuzz_oci_one)
