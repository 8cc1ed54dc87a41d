/*
 * image_ref: image references normalised as Docker's reference package
 * (ParseNormalizedNamed) does, so that "nginx", "nginx:latest" and
 * "docker.io/library/nginx:latest" are one name in the store, plus the
 * short ("familiar") form Docker shows and small display helpers.
 *
 * Grammar (distribution/reference):
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [domain "/"] path-component ["/" path-component]*
 *   domain     := host-component ("." host-component)* [":" port]
 *   path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | "__" | "-"+
 *   tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest     := "sha256:" 64 lower-case hex digits (other algorithms refused)
 * The first component is a domain if it holds '.' or ':', is "localhost",
 * or has upper case; otherwise the domain is docker.io, and a one-component
 * docker.io path gets "library/".
 */
#include "config.h"

#include "image.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_DOMAIN "docker.io"
#define NAME_MAX_LEN 255

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* A path component: [a-z0-9]+ ((_|.|__|-+)[a-z0-9]+)* */
static int valid_path_component(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
        return 0;
    while (i < n) {
        if (is_lower_alnum(s[i])) {
            i++;
            continue;
        }
        /* A separator, then alnum. */
        size_t j = i;
        if (s[i] == '.') {
            j++;
        } else if (s[i] == '_') {
            j++;
            if (j < n && s[j] == '_')
                j++;
        } else if (s[i] == '-') {
            while (j < n && s[j] == '-')
                j++;
        } else {
            return 0;
        }
        if (j >= n || !is_lower_alnum(s[j]))
            return 0;
        i = j;
    }
    return 1;
}

/* A domain: host components [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])? joined by '.', then :port. */
static int valid_domain(const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    size_t hn = colon ? (size_t)(colon - s) : n;
    if (colon) {
        size_t pn = n - hn - 1;
        if (pn == 0)
            return 0;
        for (size_t i = 0; i < pn; i++)
            if (!isdigit((unsigned char)colon[1 + i]))
                return 0;
    }
    size_t i = 0;
    while (i < hn) {
        size_t j = i;
        while (j < hn && s[j] != '.')
            j++;
        if (j == i || !isalnum((unsigned char)s[i]) || !isalnum((unsigned char)s[j - 1]))
            return 0;
        for (size_t k = i; k < j; k++)
            if (!isalnum((unsigned char)s[k]) && s[k] != '-')
                return 0;
        i = j + 1;
        if (j < hn && i == hn)
            return 0; /* trailing '.' */
    }
    return hn > 0;
}

static int valid_tag(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return 0;
    if (!(isalnum((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return 0;
    return 1;
}

static int ref_err(char **err, const char *ref, const char *why)
{
    if (err)
        *err = xasprintf("invalid reference format \"%s\": %s", ref, why);
    return -EINVAL;
}

int img_ref_normalize(const char *ref, char **out, char **err)
{
    *out = NULL;
    if (!ref || !*ref)
        return ref_err(err, ref ? ref : "", "empty");
    if (strlen(ref) == 64 && is_hex(ref, 64))
        return ref_err(err, ref, "cannot specify 64-byte hexadecimal strings");
    char *s = xstrdup(ref);
    char *digest = strchr(s, '@');
    char *tag = NULL;
    int rc = -EINVAL;
    if (digest) {
        *digest++ = '\0';
        if (strncmp(digest, "sha256:", 7) != 0) {
            rc = ref_err(err, ref, "only sha256 digests are supported");
            goto out;
        }
        if (strlen(digest + 7) != 64 || !is_hex(digest + 7, 64)) {
            rc = ref_err(err, ref, "a sha256 digest is 64 lower-case hex digits");
            goto out;
        }
    }
    char *slash = strrchr(s, '/');
    char *colon = strrchr(slash ? slash : s, ':');
    if (colon) {
        *colon = '\0';
        tag = colon + 1;
        if (!valid_tag(tag)) {
            rc = ref_err(err, ref, "bad tag (letters, digits, '_', '.', '-'; at most 128)");
            goto out;
        }
    }
    /* Domain. */
    const char *domain = DEFAULT_DOMAIN, *rest = s;
    char *dom_buf = NULL;
    char *first = strchr(s, '/');
    if (first) {
        size_t dn = (size_t)(first - s);
        int has_upper = 0;
        for (size_t i = 0; i < dn; i++)
            if (isupper((unsigned char)s[i]))
                has_upper = 1;
        if (memchr(s, '.', dn) || memchr(s, ':', dn) || (dn == 9 && !memcmp(s, "localhost", 9)) ||
            has_upper) {
            if (!valid_domain(s, dn)) {
                rc = ref_err(err, ref, "bad registry host name");
                goto out;
            }
            dom_buf = xstrndup(s, dn);
            domain = dom_buf;
            rest = first + 1;
        }
    }
    if (strcmp(domain, "index.docker.io") == 0)
        domain = DEFAULT_DOMAIN;
    /* Path components. */
    if (!*rest) {
        rc = ref_err(err, ref, "empty repository name");
        goto out_dom;
    }
    for (const char *c = rest; *c; c++)
        if (isupper((unsigned char)*c)) {
            rc = ref_err(err, ref, "repository name must be lowercase");
            goto out_dom;
        }
    for (const char *p = rest;;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (!valid_path_component(p, n)) {
            rc = ref_err(err, ref,
                         n ? "bad repository name component (lower-case letters and digits, "
                             "separated by '.', '_', '__' or '-')"
                           : "empty repository name component");
            goto out_dom;
        }
        if (!e)
            break;
        p = e + 1;
    }
    int library = strcmp(domain, DEFAULT_DOMAIN) == 0 && !strchr(rest, '/');
    char *name = xasprintf("%s/%s%s", domain, library ? "library/" : "", rest);
    if (strlen(name) > NAME_MAX_LEN) {
        free(name);
        rc = ref_err(err, ref, "repository name longer than 255 characters");
        goto out_dom;
    }
    if (digest)
        *out = tag ? xasprintf("%s:%s@%s", name, tag, digest) : xasprintf("%s@%s", name, digest);
    else
        *out = xasprintf("%s:%s", name, tag ? tag : "latest");
    free(name);
    rc = 0;
out_dom:
    free(dom_buf);
out:
    free(s);
    return rc;
}

char *img_ref_familiar(const char *n)
{
    const char *p = n;
    if (strncmp(p, DEFAULT_DOMAIN "/", sizeof(DEFAULT_DOMAIN)) == 0) {
        p += sizeof(DEFAULT_DOMAIN);
        if (strncmp(p, "library/", 8) == 0) {
            /* Only when "library/x" is the whole path. */
            const char *r = p + 8;
            size_t len = strcspn(r, ":@");
            if (!memchr(r, '/', len))
                p = r;
        }
    }
    return xstrdup(p);
}

void img_ref_split(const char *n, char **repo, char **tag)
{
    const char *at = strchr(n, '@');
    const char *slash = strrchr(n, '/');
    const char *end = at ? at : n + strlen(n);
    const char *colon = NULL;
    for (const char *c = slash ? slash : n; c < end; c++)
        if (*c == ':')
            colon = c;
    if (colon) {
        *repo = xstrndup(n, (size_t)(colon - n));
        *tag = xstrndup(colon + 1, (size_t)(end - colon - 1));
    } else if (at) {
        *repo = xstrndup(n, (size_t)(at - n));
        *tag = xstrdup(at + 1);
    } else {
        *repo = xstrdup(n);
        *tag = xstrdup("<none>");
    }
}

const char *img_short_id(const char *id, char buf[13])
{
    const char *h = strncmp(id, "sha256:", 7) == 0 ? id + 7 : id;
    snprintf(buf, 13, "%s", h);
    return buf;
}

const char *img_human_size(uint64_t b, char buf[16])
{
    static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(buf, 16, "%llu B", (unsigned long long)b);
    else
        snprintf(buf, 16, "%.1f %s", v, u[i]);
    return buf;
}
