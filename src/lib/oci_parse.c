/*
 * oci_parse: what a registry client reads that does not need the network:
 * WWW-Authenticate challenges, manifests and indexes (with the platform
 * choice), docker config.json credentials. Pure functions over bytes, so
 * the fuzzer (t/fuzz/fuzz_oci.c) reaches all of them.
 */
#include "config.h"

#include "oci.h"
#include "util.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#define MANIFEST_MAX (4u << 20)

const char *oci_code_str(enum oci_code c)
{
    switch (c) {
    case OCI_OK:
        return "ok";
    case OCI_NOT_FOUND:
        return "not found";
    case OCI_UNAUTHORIZED:
        return "unauthorized";
    case OCI_DIGEST:
        return "digest mismatch";
    case OCI_PLATFORM:
        return "no matching platform";
    case OCI_NETWORK:
        return "registry unreachable";
    case OCI_INVALID:
        return "invalid";
    case OCI_STORE:
        return "image store";
    }
    return "unknown";
}

/* ------------------------------------------------------------ WWW-Authenticate */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static int is_token_char(char c)
{
    return c && !strchr(" \t\",;=()<>@:\\/[]?{}", c) && (unsigned char)c > 32 && c != 127;
}

/* A token or a quoted-string at *pp: malloc'd, *pp moved past it; NULL if neither. */
static char *read_value(const char **pp)
{
    const char *p = *pp;
    if (*p == '"') {
        size_t cap = strlen(p) + 1, n = 0;
        char *out = xmalloc(cap);
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            out[n++] = *p;
        }
        if (*p != '"') {
            free(out);
            return NULL;
        }
        out[n] = 0;
        *pp = p + 1;
        return out;
    }
    const char *s = p;
    while (is_token_char(*p) || *p == '/' || *p == ':')
        p++;
    if (p == s)
        return NULL;
    *pp = p;
    return xstrndup(s, (size_t)(p - s));
}

int oci_challenge_parse(const char *hdr, struct oci_challenge *out)
{
    memset(out, 0, sizeof *out);
    const char *p = skip_ws(hdr), *s = p;
    while (is_token_char(*p))
        p++;
    if (p == s)
        return -1;
    out->scheme = xstrndup(s, (size_t)(p - s));
    for (char *c = out->scheme; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    for (;;) {
        p = skip_ws(p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (!*p)
            return 0;
        s = p;
        while (is_token_char(*p))
            p++;
        size_t klen = (size_t)(p - s);
        p = skip_ws(p);
        if (klen == 0 || *p != '=')
            return 0; /* another challenge, or a token68: the first one is complete */
        p = skip_ws(p + 1);
        char *v = read_value(&p);
        if (!v) {
            oci_challenge_free(out);
            return -1;
        }
        char **dst = NULL;
        if (klen == 5 && !strncasecmp(s, "realm", 5))
            dst = &out->realm;
        else if (klen == 7 && !strncasecmp(s, "service", 7))
            dst = &out->service;
        else if (klen == 5 && !strncasecmp(s, "scope", 5))
            dst = &out->scope;
        else if (klen == 5 && !strncasecmp(s, "error", 5))
            dst = &out->error;
        if (dst) {
            free(*dst);
            *dst = v;
        } else {
            free(v);
        }
    }
}

void oci_challenge_free(struct oci_challenge *c)
{
    free(c->scheme);
    free(c->realm);
    free(c->service);
    free(c->scope);
    free(c->error);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------ manifests */

static const char *const index_types[] = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
};
static const char *const manifest_types[] = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
};

static int in_list(const char *mt, const char *const *l, size_t n)
{
    for (size_t i = 0; mt && i < n; i++)
        if (!strcmp(mt, l[i]))
            return 1;
    return 0;
}

static int digest_ok(const char *d)
{
    if (!d || strncmp(d, "sha256:", 7) || strlen(d) != 71)
        return 0;
    for (const char *p = d + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

static int read_desc(const json_t *j, struct oci_desc *d, const char *where, char **err)
{
    memset(d, 0, sizeof *d);
    d->media_type = json_str(json_get(j, "mediaType"));
    d->digest = json_str(json_get(j, "digest"));
    if (!digest_ok(d->digest)) {
        *err = xasprintf("%s: digest is not sha256:<64 hex>", where);
        return -1;
    }
    if (json_int64(json_get(j, "size"), &d->size) < 0 || d->size < 0) {
        *err = xasprintf("%s: no size", where);
        return -1;
    }
    return 0;
}

int oci_manifest_parse(const char *body, size_t len, const char *media_type,
                       struct oci_manifest *out, char **err)
{
    struct json_limits lim = {.max_bytes = MANIFEST_MAX, .max_depth = 16, .max_nodes = 1u << 16};
    memset(out, 0, sizeof *out);
    char *e = NULL;
    if (json_parse(body, len, &lim, &out->root, &e) < 0) {
        *err = xasprintf("manifest: %s", e ? e : "not JSON");
        free(e);
        return -1;
    }
    const char *mt = json_str(json_get(out->root, "mediaType"));
    if (!mt)
        mt = media_type;
    int64_t sv = 0;
    json_int64(json_get(out->root, "schemaVersion"), &sv);
    if (sv == 1 || (mt && strstr(mt, "distribution.manifest.v1"))) {
        *err = xstrdup("manifest: Docker schema 1 manifests are not supported");
        goto fail;
    }
    const json_t *ms = json_get(out->root, "manifests");
    if (in_list(mt, index_types, 2) || (!in_list(mt, manifest_types, 2) && ms)) {
        if (!json_is(ms, JSON_ARRAY)) {
            *err = xstrdup("index: no \"manifests\" array");
            goto fail;
        }
        out->kind = 'i';
        return 0;
    }
    const json_t *cfg = json_get(out->root, "config"), *ls = json_get(out->root, "layers");
    if (!cfg || !json_is(ls, JSON_ARRAY)) {
        *err = xstrdup("manifest: not an image manifest (no config and layers)");
        goto fail;
    }
    out->kind = 'm';
    if (read_desc(cfg, &out->config, "manifest config", err) < 0)
        goto fail;
    out->layers = xcalloc(ls->n ? ls->n : 1, sizeof *out->layers);
    for (size_t i = 0; i < ls->n; i++) {
        char where[48];
        snprintf(where, sizeof where, "manifest layers[%zu]", i);
        if (read_desc(ls->kids[i], &out->layers[i], where, err) < 0)
            goto fail;
        out->n_layers++;
    }
    return 0;
fail:
    oci_manifest_free(out);
    return -1;
}

void oci_manifest_free(struct oci_manifest *m)
{
    json_free(m->root);
    free(m->layers);
    memset(m, 0, sizeof *m);
}

int oci_index_pick(const struct oci_manifest *idx, const char *os, const char *arch,
                   struct oci_desc *d)
{
    const json_t *ms = json_get(idx->root, "manifests");
    for (size_t i = 0; json_is(ms, JSON_ARRAY) && i < ms->n; i++) {
        const json_t *pl = json_get(ms->kids[i], "platform");
        const char *o = json_str(json_get(pl, "os")), *a = json_str(json_get(pl, "architecture"));
        const char *v = json_str(json_get(pl, "variant"));
        if (!o || !a || strcmp(o, os) || strcmp(a, arch))
            continue;
        if (!strcmp(arch, "arm") && v && strcmp(v, "v7"))
            continue;
        char *e = NULL;
        if (read_desc(ms->kids[i], d, "index entry", &e) < 0) {
            free(e);
            continue;
        }
        return 0;
    }
    return -1;
}

const char *oci_host_arch(void)
{
    static const struct {
        const char *uname, *go;
    } map[] = {{"x86_64", "amd64"},    {"aarch64", "arm64"}, {"armv7l", "arm"},
               {"armv6l", "arm"},      {"i686", "386"},      {"i386", "386"},
               {"ppc64le", "ppc64le"}, {"s390x", "s390x"},   {"riscv64", "riscv64"}};
    struct utsname u;
    if (uname(&u) == 0)
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
            if (!strcmp(u.machine, map[i].uname))
                return map[i].go;
    return "amd64";
}

/* ------------------------------------------------------------ credentials */

/* "https://index.docker.io/v1/" -> "index.docker.io"; "h:5000/x" -> "h:5000". Malloc'd. */
static char *server_host(const char *key)
{
    const char *p = strstr(key, "://");
    p = p ? p + 3 : key;
    size_t n = strcspn(p, "/");
    return xstrndup(p, n);
}

static int is_docker_hub(const char *h)
{
    return !strcmp(h, "docker.io") || !strcmp(h, "index.docker.io") ||
           !strcmp(h, "registry-1.docker.io");
}

static int split_auth(const char *b64, char **user, char **pass)
{
    size_t n = strlen(b64);
    unsigned char *dec = xmalloc(n + 4);
    int dl = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)n);
    if (dl < 0) {
        free(dec);
        return -1;
    }
    while (n > 0 && b64[n - 1] == '=' && dl > 0) { /* DecodeBlock counts the padding */
        dl--;
        n--;
    }
    dec[dl] = 0;
    char *colon = memchr(dec, ':', (size_t)dl);
    if (!colon) {
        OPENSSL_cleanse(dec, (size_t)dl);
        free(dec);
        return -1;
    }
    *user = xstrndup((char *)dec, (size_t)(colon - (char *)dec));
    *pass = xstrdup(colon + 1);
    OPENSSL_cleanse(dec, (size_t)dl);
    free(dec);
    return 0;
}

int oci_creds_find(const char *config_json, size_t len, const char *host, char **user, char **pass)
{
    json_t *root = NULL;
    struct json_limits lim = {.max_bytes = 1u << 20};
    *user = *pass = NULL;
    if (json_parse(config_json, len, &lim, &root, NULL) < 0)
        return -1;
    const json_t *auths = json_get(root, "auths");
    if (!auths)
        auths = root; /* the old .dockercfg shape: the servers at the top */
    int rc = 1;
    for (size_t i = 0; json_is(auths, JSON_OBJECT) && i < auths->n && rc == 1; i++) {
        char *h = server_host(auths->keys[i]);
        int match = !strcmp(h, host) || (is_docker_hub(h) && is_docker_hub(host));
        free(h);
        if (!match)
            continue;
        const json_t *e = auths->kids[i];
        const char *a = json_str(json_get(e, "auth"));
        const char *u = json_str(json_get(e, "username")), *p = json_str(json_get(e, "password"));
        if (a && *a && split_auth(a, user, pass) == 0) {
            rc = 0;
        } else if (u && p) {
            *user = xstrdup(u);
            *pass = xstrdup(p);
            rc = 0;
        }
    }
    json_free(root);
    return rc;
}
