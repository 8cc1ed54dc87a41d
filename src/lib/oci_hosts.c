/*
 * oci_hosts: a registry's endpoints from hosts files in the spirit of
 * containerd's hosts.toml (<dir>/<registry>/hosts.toml, one per registry,
 * <dir>/_default/hosts.toml for the others):
 *
 *   server = "https://registry-1.docker.io"     # the upstream (default: https://<registry>)
 *   ca = "/etc/coracle/certs.d/docker.io/ca.crt" # for the upstream
 *   [host."https://mirror.example:5000"]         # mirrors, tried in this order
 *     capabilities = ["pull", "resolve"]
 *     ca = "/path/ca.pem"                          # a string or an array (first used)
 *     skip_verify = false
 *     override_path = false
 *
 * Only this subset of TOML: key = string | bool | array of strings, [host."..."] tables,
 * comments. Plain http:// is accepted only for loopback hosts (127.0.0.0/8, ::1, localhost).
 */
#include "config.h"

#include "oci.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOSTS_MAX (64u << 10)

static int host_is_loopback(const char *hostport)
{
    const char *h = hostport;
    if (!strncmp(h, "localhost", 9) && (h[9] == 0 || h[9] == ':'))
        return 1;
    if (!strncmp(h, "127.", 4))
        return 1;
    return !strncmp(h, "[::1]", 5);
}

/* "https://h:p/x" -> scheme and "h:p". 0, or -1 when the URL is not http(s). */
static int url_split(const char *url, char **scheme, char **hostport)
{
    const char *p = strstr(url, "://");
    if (!p) {
        *scheme = NULL;
        p = url;
    } else {
        *scheme = xstrndup(url, (size_t)(p - url));
        p += 3;
        if (strcmp(*scheme, "http") && strcmp(*scheme, "https")) {
            free(*scheme);
            *scheme = NULL;
            return -1;
        }
    }
    size_t n = strcspn(p, "/");
    if (n == 0) {
        free(*scheme);
        *scheme = NULL;
        return -1;
    }
    *hostport = xstrndup(p, n);
    return 0;
}

static struct oci_host *add_host(struct oci_hosts *h, const char *url, char **err)
{
    char *scheme = NULL, *hp = NULL;
    if (url_split(url, &scheme, &hp) < 0) {
        *err = xasprintf("\"%s\" is not an http(s) URL", url);
        return NULL;
    }
    int loop = host_is_loopback(hp);
    if (scheme && !strcmp(scheme, "http") && !loop) {
        *err = xasprintf("\"%s\": plain HTTP is only for loopback registries", url);
        free(scheme);
        free(hp);
        return NULL;
    }
    h->v = xrealloc(h->v, (h->n + 1) * sizeof *h->v);
    struct oci_host *e = &h->v[h->n++];
    memset(e, 0, sizeof *e);
    e->url = xasprintf("%s://%s", scheme ? scheme : "https", hp);
    e->path = xstrdup("/v2");
    e->loopback = loop && !(scheme && !strcmp(scheme, "https"));
    e->https_only = scheme && !strcmp(scheme, "https");
    e->resolve = 1;
    free(scheme);
    free(hp);
    return e;
}

void oci_hosts_free(struct oci_hosts *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->v[i].url);
        free(h->v[i].path);
        free(h->v[i].ca);
    }
    free(h->v);
    memset(h, 0, sizeof *h);
}

/* The default upstream of a registry. */
static const char *upstream_url(const char *host, char *buf, size_t n)
{
    if (!strcmp(host, "docker.io"))
        return "https://registry-1.docker.io";
    snprintf(buf, n, "%s%s", host_is_loopback(host) ? "" : "https://", host);
    return buf;
}

/* A TOML basic string at *pp ('"' already seen there). Malloc'd, or NULL. */
static char *toml_string(const char **pp)
{
    const char *p = *pp + 1;
    size_t cap = 64, n = 0;
    char *out = xmalloc(cap);
    for (; *p && *p != '"' && *p != '\n'; p++) {
        char c = *p;
        if (c == '\\') {
            p++;
            c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
            if (!c)
                break;
        }
        if (n + 2 > cap)
            out = xrealloc(out, cap *= 2);
        out[n++] = c;
    }
    if (*p != '"') {
        free(out);
        return NULL;
    }
    out[n] = 0;
    *pp = p + 1;
    return out;
}

static const char *ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r')
        p++;
    return p;
}

/* The value of a key: a string, the first string of an array (*all gets each one joined by
 * ','), or a bool ("true"/"false"). Malloc'd, or NULL if unreadable. */
static char *toml_value(const char **pp)
{
    const char *p = ws(*pp);
    char *v = NULL;
    if (*p == '"') {
        v = toml_string(&p);
    } else if (*p == '[') {
        p++;
        size_t cap = 1;
        v = xstrdup("");
        for (;;) {
            p = ws(p);
            while (*p == '\n' || *p == ',' || *p == ' ' || *p == '\t' || *p == '\r')
                p++;
            if (*p == ']') {
                p++;
                break;
            }
            if (*p != '"') {
                free(v);
                return NULL;
            }
            char *s = toml_string(&p);
            if (!s) {
                free(v);
                return NULL;
            }
            cap += strlen(s) + 1;
            v = xrealloc(v, cap);
            if (*v)
                strcat(v, ",");
            strcat(v, s);
            free(s);
        }
    } else if (!strncmp(p, "true", 4) || !strncmp(p, "false", 5)) {
        v = xstrdup(*p == 't' ? "true" : "false");
        p += *p == 't' ? 4 : 5;
    } else {
        return NULL;
    }
    *pp = p;
    return v;
}

static void set_key(struct oci_host *e, const char *key, const char *val)
{
    if (!strcmp(key, "ca")) {
        free(e->ca);
        e->ca = xstrndup(val, strcspn(val, ","));
    } else if (!strcmp(key, "skip_verify")) {
        e->skip_verify = !strcmp(val, "true");
    } else if (!strcmp(key, "capabilities")) {
        e->resolve = strstr(val, "resolve") != NULL;
    } else if (!strcmp(key, "override_path") && !strcmp(val, "true")) {
        free(e->path);
        e->path = xstrdup("");
    }
}

int oci_hosts_parse(const char *text, size_t len, const char *host, struct oci_hosts *out,
                    char **err)
{
    memset(out, 0, sizeof *out);
    char *buf = xstrndup(text, len), *server = NULL;
    struct {
        char *key, *val;
    } top[8];
    size_t ntop = 0;
    const char *p = buf;
    struct oci_host *cur = NULL; /* NULL: the top-level table (the upstream's keys) */
    int line = 1, rc = -1;
    char *e = NULL;
    while (*p) {
        p = ws(p);
        if (*p == '\n' || *p == '#') {
            p += strcspn(p, "\n");
            if (*p)
                p++, line++;
            continue;
        }
        if (*p == '[') {
            p = ws(p + 1);
            if (strncmp(p, "host.", 5) || p[5] != '"') {
                e = xstrdup("expected [host.\"URL\"]");
                goto fail;
            }
            p += 5;
            char *url = toml_string(&p);
            p = ws(p);
            if (!url || *p != ']') {
                free(url);
                e = xstrdup("bad table header");
                goto fail;
            }
            p++;
            cur = add_host(out, url, &e);
            free(url);
            if (!cur)
                goto fail;
        } else {
            const char *k = p;
            while (*p && *p != '=' && *p != ' ' && *p != '\t' && *p != '\n')
                p++;
            char *key = xstrndup(k, (size_t)(p - k));
            p = ws(p);
            if (*p != '=' || !*key) {
                free(key);
                e = xstrdup("expected key = value");
                goto fail;
            }
            p++;
            char *val = toml_value(&p);
            if (!val) {
                free(key);
                e = xasprintf("%s: bad value", k[0] ? "key" : "value");
                goto fail;
            }
            if (cur) {
                set_key(cur, key, val);
                free(key);
                free(val);
            } else if (!strcmp(key, "server")) {
                free(server);
                server = val;
                free(key);
            } else if (ntop < sizeof top / sizeof top[0]) {
                top[ntop].key = key;
                top[ntop++].val = val;
            } else {
                free(key);
                free(val);
            }
        }
        p = ws(p);
        if (*p == '#')
            p += strcspn(p, "\n");
        if (*p && *p != '\n') {
            e = xstrdup("trailing characters");
            goto fail;
        }
        if (*p)
            p++, line++;
    }
    char ubuf[300];
    struct oci_host *up =
        add_host(out, server ? server : upstream_url(host, ubuf, sizeof ubuf), &e);
    if (!up)
        goto fail;
    for (size_t i = 0; i < ntop; i++)
        set_key(up, top[i].key, top[i].val);
    rc = 0;
    goto out;
fail:
    *err = xasprintf("line %d: %s", line, e ? e : "syntax error");
    free(e);
    oci_hosts_free(out);
out:
    for (size_t i = 0; i < ntop; i++) {
        free(top[i].key);
        free(top[i].val);
    }
    free(server);
    free(buf);
    return rc;
}

int oci_hosts_load(const char *dir, const char *host, struct oci_hosts *out, char **err)
{
    memset(out, 0, sizeof *out);
    const char *names[] = {host, "_default"};
    for (size_t i = 0; dir && *dir && i < 2; i++) {
        char *path = xasprintf("%s/%s/hosts.toml", dir, names[i]);
        FILE *f = fopen(path, "re");
        if (!f) {
            int e = errno;
            if (e != ENOENT) {
                *err = xasprintf("%s: %s", path, strerror(e));
                free(path);
                return -1;
            }
            free(path);
            continue;
        }
        char *buf = xmalloc(HOSTS_MAX);
        size_t n = fread(buf, 1, HOSTS_MAX, f);
        fclose(f);
        char *e = NULL;
        int rc = oci_hosts_parse(buf, n, host, out, &e);
        free(buf);
        if (rc < 0) {
            *err = xasprintf("%s: %s", path, e);
            free(e);
        }
        free(path);
        return rc;
    }
    char ubuf[300];
    return add_host(out, upstream_url(host, ubuf, sizeof ubuf), err) ? 0 : -1;
}
