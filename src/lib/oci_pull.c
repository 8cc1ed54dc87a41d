/*
 * oci_pull: the registry client (see oci.h): libcurl's easy interface on the
 * pulling thread, one handle a pull so its connections are reused (HTTP/2
 * over TLS when the registry offers it, HTTP/1.1 otherwise).
 *
 * A pull walks its registry's endpoints (mirrors, then the upstream) until
 * one resolves the reference; the blobs come from that endpoint. 401
 * answers are met once per endpoint: Basic with the credentials for it, or
 * a Bearer token from the challenge's realm. Blobs stream to
 * tmp/pulls/sha256/<hex>.partial with their sha256 computed on the way;
 * an interrupted transfer goes on with "Range: bytes=<have>-" (a 200 answer
 * starts over).
 *
 * The layers stream: once the config is in, the image is laid out (its layer
 * files hard links to the blobs kept or to the partial files) and imported
 * on the pulling thread while a download thread fetches the layers in order
 * with the one curl handle. The import reads a layer as its bytes land and
 * waits at the end of what is there (struct stream); so layer N unpacks
 * while layer N+1 downloads, and a layer is read from disk once. The import
 * checks the digest and diff_id of what it read and the download checks the
 * blob's digest; the image appears only when both succeeded. A transfer
 * that starts over (a 200 answer to a Range request) voids what was read:
 * the import is run again on the complete blobs.
 */
#include "config.h"

#include "image_int.h"
#include "oci.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MANIFEST_MAX (4u << 20)
#define PULLS_DIR "tmp/pulls/sha256"
#define PROGRESS_STEP (1u << 20)

static const char accept_hdr[] = "Accept: application/vnd.oci.image.index.v1+json, "
                                 "application/vnd.docker.distribution.manifest.list.v2+json, "
                                 "application/vnd.oci.image.manifest.v1+json, "
                                 "application/vnd.docker.distribution.manifest.v2+json";

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}
void oci_global_init(void)
{
    pthread_once(&curl_once, curl_init_once);
}

struct stream;

struct pull {
    img_store_t *s;
    const struct oci_pull_opts *o;
    struct oci_result *r;
    CURL *c;
    char *ref;      /* normalised */
    char *registry; /* "docker.io" */
    char *repo;     /* "library/nginx" */
    char *tag;      /* tag or "sha256:..." */
    struct oci_hosts hosts;
    struct oci_host *h;  /* the endpoint in use */
    char *auth;          /* "Authorization: ..." for h, or NULL */
    int auth_tried;      /* a 401 was answered once on h */
    pthread_mutex_t pmu; /* one progress callback at a time (pulling and download thread) */
    struct stream *st;   /* layers being fetched while they are unpacked, or NULL */
};

/*
 * Layers fetched by the download thread while the import reads them. Guarded by mu; cv is
 * signalled on every change.
 */
struct stream {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const struct oci_manifest *m;
    uint64_t *have; /* per layer: bytes of its file written (and hashed) */
    int *state;     /* per layer: 0 being fetched, 1 complete and verified, -1 failed */
    int abort;      /* the import failed: fetch no further layer */
    int restarted;  /* a file was cut back: what the import read of it is void */
    int failed;     /* a download failed, its error set (a corrupt blob may have made the
                     * import fail first: the download's reason is the one to report) */
    int rc;         /* the download thread's: 0, or -1 (failed, or stopped by abort) */
};

static void stream_have(struct stream *st, int layer, uint64_t have)
{
    pthread_mutex_lock(&st->mu);
    if (have < st->have[layer])
        st->restarted = 1;
    st->have[layer] = have;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

static int stream_aborted(struct stream *st)
{
    pthread_mutex_lock(&st->mu);
    int a = st->abort;
    pthread_mutex_unlock(&st->mu);
    return a;
}

/* A response being read: into memory (mem) or a blob file (fd). */
struct sink {
    struct pull *p;
    char *mem;
    size_t len, cap, max;
    int fd;
    EVP_MD_CTX *md;
    uint64_t have, total;
    int layer, layers;
    const char *digest;
    uint64_t shown;
    long status;
    int fail; /* 1: too big, 2: write error */
    char *ctype, *www;
};

static int set_err(struct pull *p, enum oci_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_err(struct pull *p, enum oci_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0)
        abort();
    va_end(ap);
    free(p->r->msg);
    p->r->msg = m;
    p->r->code = code;
    return -1;
}

static void progress(struct pull *p, enum oci_layer_state st, int layer, int layers,
                     const char *digest, uint64_t done, uint64_t total)
{
    if (!p->o->progress)
        return;
    struct oci_progress pr = {st, layer, layers, digest, done, total};
    pthread_mutex_lock(&p->pmu);
    p->o->progress(&pr, p->o->arg);
    pthread_mutex_unlock(&p->pmu);
}

static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
    struct sink *k = arg;
    size_t len = size * n;
    if (len > 5 && !strncmp(buf, "HTTP/", 5)) { /* a new response (redirect, 401): reset */
        free(k->ctype);
        free(k->www);
        k->ctype = k->www = NULL;
        return len;
    }
    const char *colon = memchr(buf, ':', len);
    if (!colon)
        return len;
    size_t kl = (size_t)(colon - buf);
    const char *v = colon + 1;
    while (v < buf + len && (*v == ' ' || *v == '\t'))
        v++;
    size_t vl = (size_t)(buf + len - v);
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
        vl--;
    if (kl == 12 && !strncasecmp(buf, "content-type", 12)) {
        free(k->ctype);
        k->ctype = xstrndup(v, strcspn(v, ";\r\n") < vl ? strcspn(v, ";\r\n") : vl);
    } else if (kl == 16 && !strncasecmp(buf, "www-authenticate", 16) && !k->www) {
        k->www = xstrndup(v, vl);
    }
    return len;
}

static size_t on_data(char *buf, size_t size, size_t n, void *arg)
{
    struct sink *k = arg;
    size_t len = size * n;
    if (!k->status)
        curl_easy_getinfo(k->p->c, CURLINFO_RESPONSE_CODE, &k->status);
    k->p->r->fetched += len;
    if (k->fd < 0) {
        if (k->len + len > k->max) {
            k->fail = 1;
            return 0;
        }
        if (k->len + len + 1 > k->cap) {
            k->cap = (k->len + len + 1) * 2;
            k->mem = xrealloc(k->mem, k->cap);
        }
        memcpy(k->mem + k->len, buf, len);
        k->len += len;
        k->mem[k->len] = 0;
        return len;
    }
    if (k->status != 200 && k->status != 206)
        return len;                                       /* an error body: dropped */
    if (k->len == 0 && k->status == 200 && k->have > 0) { /* the range was ignored: start over */
        if (ftruncate(k->fd, 0) < 0 || lseek(k->fd, 0, SEEK_SET) < 0) {
            k->fail = 2;
            return 0;
        }
        EVP_DigestInit_ex(k->md, EVP_sha256(), NULL);
        k->have = 0;
        if (k->layer >= 0 && k->p->st)
            stream_have(k->p->st, k->layer, 0);
    }
    if (k->have + len > k->total) {
        k->fail = 1;
        return 0;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(k->fd, buf + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            k->fail = 2;
            return 0;
        }
        off += (size_t)w;
    }
    EVP_DigestUpdate(k->md, buf, len);
    k->have += len;
    k->len += len; /* of this response */
    if (k->layer >= 0 && k->p->st)
        stream_have(k->p->st, k->layer, k->have);
    if (k->have - k->shown >= PROGRESS_STEP || k->have == k->total) {
        k->shown = k->have;
        progress(k->p, OCI_L_FETCHING, k->layer, k->layers, k->digest, k->have, k->total);
    }
    return len;
}

static void sink_reset(struct sink *k)
{
    free(k->ctype);
    free(k->www);
    k->ctype = k->www = NULL;
    k->status = 0;
    k->len = 0;
    k->fail = 0;
}

/* base64 of user:pass as an Authorization header. */
static char *basic_header(const char *user, const char *pass)
{
    char *up = xasprintf("%s:%s", user, pass);
    size_t n = strlen(up);
    char *b = xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b, (const unsigned char *)up, (int)n);
    char *h = xasprintf("Authorization: Basic %s", b);
    OPENSSL_cleanse(up, n);
    OPENSSL_cleanse(b, strlen(b));
    free(up);
    free(b);
    return h;
}

/* The credentials for the endpoint's host, else for the image's registry. */
static int find_creds(struct pull *p, char **user, char **pass)
{
    const char *hosts[2] = {strstr(p->h->url, "://") + 3, p->registry};
    for (int i = 0; i < 2; i++)
        for (size_t j = 0; j < p->o->n_auths; j++)
            if (oci_creds_find(p->o->auths[j], p->o->auth_lens[j], hosts[i], user, pass) == 0)
                return 0;
    return -1;
}

/* Sets the options every request shares; url is complete. */
static void setup(struct pull *p, const char *url, struct sink *k, struct curl_slist *hdrs)
{
    CURL *c = p->c;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, k);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, k);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, p->o->timeout_s > 0 ? p->o->timeout_s : 60L);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "coracle/" PACKAGE_VERSION);
    if (getenv("CORACLE_OCI_DEBUG")) /* curl's trace on stderr: headers, never bodies */
        curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
    if (p->h->ca)
        curl_easy_setopt(c, CURLOPT_CAINFO, p->h->ca);
    if (p->h->skip_verify) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

/* The URL without its query (for messages: a token request's query holds no secret, but a
 * realm could be given one). Malloc'd. */
static char *url_shown(const char *url)
{
    return xstrndup(url, strcspn(url, "?"));
}

/* Fetches a Bearer token for the challenge. 0, or -1 with the error set. */
static int get_token(struct pull *p, const struct oci_challenge *ch)
{
    if (!ch->realm || strncmp(ch->realm, "http", 4))
        return set_err(p, OCI_UNAUTHORIZED, "failed to authorize: no realm in the challenge");
    char *user = NULL, *pass = NULL;
    int have = find_creds(p, &user, &pass) == 0;
    if (have && !strncmp(ch->realm, "http://", 7) && strncmp(p->h->url, "http://", 7)) {
        /* never send credentials in clear text to a realm an HTTPS registry named */
        have = 0;
    }
    char *esvc = ch->service ? curl_easy_escape(p->c, ch->service, 0) : NULL;
    char *scope = xasprintf("repository:%s:pull", p->repo);
    char *escope = curl_easy_escape(p->c, scope, 0);
    char *url = xasprintf("%s%sscope=%s%s%s", ch->realm, strchr(ch->realm, '?') ? "&" : "?", escope,
                          esvc ? "&service=" : "", esvc ? esvc : "");
    curl_free(esvc);
    curl_free(escope);
    free(scope);
    struct sink k = {.p = p, .fd = -1, .max = 1u << 20};
    struct curl_slist *hdrs = NULL;
    char *bh = have ? basic_header(user, pass) : NULL;
    if (bh)
        hdrs = curl_slist_append(hdrs, bh);
    setup(p, url, &k, hdrs);
    CURLcode cc = curl_easy_perform(p->c);
    curl_easy_getinfo(p->c, CURLINFO_RESPONSE_CODE, &k.status);
    int rc = -1;
    char *shown = url_shown(url);
    if (cc != CURLE_OK) {
        set_err(p, OCI_NETWORK, "failed to authorize: GET %s: %s", shown, curl_easy_strerror(cc));
    } else if (k.status != 200) {
        set_err(p, OCI_UNAUTHORIZED,
                "failed to authorize: failed to fetch %s token: unexpected status from GET "
                "request to %s: %ld %s",
                have ? "oauth" : "anonymous", shown, k.status,
                k.status == 401   ? "Unauthorized"
                : k.status == 403 ? "Forbidden"
                                  : "");
    } else {
        json_t *j = NULL;
        const char *tok = NULL;
        if (json_parse(k.mem ? k.mem : "", k.len, NULL, &j, NULL) == 0) {
            tok = json_str(json_get(j, "token"));
            if (!tok)
                tok = json_str(json_get(j, "access_token"));
        }
        if (tok && *tok) {
            free(p->auth);
            p->auth = xasprintf("Authorization: Bearer %s", tok);
            rc = 0;
        } else {
            set_err(p, OCI_UNAUTHORIZED, "failed to authorize: the token answer has no token");
        }
        json_free(j);
    }
    free(shown);
    free(url);
    curl_slist_free_all(hdrs);
    if (bh)
        OPENSSL_cleanse(bh, strlen(bh));
    free(bh);
    if (user)
        OPENSSL_cleanse(pass, strlen(pass));
    free(user);
    free(pass);
    free(k.mem);
    sink_reset(&k);
    return rc;
}

/* Answers a 401 with the challenge k->www. 0: retry; -1: the error is set. */
static int authorize(struct pull *p, struct sink *k, const char *url)
{
    struct oci_challenge ch;
    char *shown = url_shown(url);
    int rc = -1;
    if (p->auth_tried || !k->www || oci_challenge_parse(k->www, &ch) < 0) {
        set_err(p, OCI_UNAUTHORIZED, "unexpected status from GET request to %s: %ld Unauthorized",
                shown, k->status);
        free(shown);
        return -1;
    }
    p->auth_tried = 1;
    if (!strcmp(ch.scheme, "bearer")) {
        rc = get_token(p, &ch);
    } else if (!strcmp(ch.scheme, "basic")) {
        char *user = NULL, *pass = NULL;
        if (find_creds(p, &user, &pass) == 0) {
            free(p->auth);
            p->auth = basic_header(user, pass);
            OPENSSL_cleanse(pass, strlen(pass));
            rc = 0;
        } else {
            set_err(p, OCI_UNAUTHORIZED,
                    "unexpected status from GET request to %s: 401 Unauthorized (no credentials "
                    "for %s)",
                    shown, p->registry);
        }
        free(user);
        free(pass);
    } else {
        set_err(p, OCI_UNAUTHORIZED, "unsupported authentication scheme \"%s\"", ch.scheme);
    }
    oci_challenge_free(&ch);
    free(shown);
    return rc;
}

/*
 * GET <endpoint><path><rest> into k, answering one 401. range: bytes already held (0: none).
 * Returns the curl code; k->status has the final HTTP status. On an auth failure returns
 * CURLE_LOGIN_DENIED with the error set.
 */
static CURLcode get(struct pull *p, const char *rest, int manifest, uint64_t range, struct sink *k)
{
    for (;;) {
        char *url = xasprintf("%s%s/%s", p->h->url, p->h->path, rest);
        struct curl_slist *hdrs = NULL;
        if (manifest)
            hdrs = curl_slist_append(hdrs, accept_hdr);
        if (p->auth)
            hdrs = curl_slist_append(hdrs, p->auth);
        char rbuf[64];
        if (range) {
            snprintf(rbuf, sizeof rbuf, "Range: bytes=%llu-", (unsigned long long)range);
            hdrs = curl_slist_append(hdrs, rbuf);
        }
        sink_reset(k);
        setup(p, url, k, hdrs);
        CURLcode cc = curl_easy_perform(p->c);
        curl_slist_free_all(hdrs);
        if (!k->status)
            curl_easy_getinfo(p->c, CURLINFO_RESPONSE_CODE, &k->status);
        /* A loopback registry given without a scheme speaks plain HTTP when TLS fails. */
        if ((cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_RECV_ERROR || cc == CURLE_GOT_NOTHING) &&
            p->h->loopback && !strncmp(p->h->url, "https://", 8)) {
            char *u = xasprintf("http://%s", p->h->url + 8);
            free(p->h->url);
            p->h->url = u;
            free(url);
            continue;
        }
        if (cc == CURLE_OK && k->status == 401) {
            int rc = authorize(p, k, url);
            free(url);
            if (rc < 0)
                return CURLE_LOGIN_DENIED;
            continue;
        }
        free(url);
        return cc;
    }
}

static void sha256_hex(const void *buf, size_t len, char out[72])
{
    unsigned char d[32];
    unsigned int dl = 0;
    EVP_Digest(buf, len, d, &dl, EVP_sha256(), NULL);
    strcpy(out, "sha256:");
    for (int i = 0; i < 32; i++)
        sprintf(out + 7 + 2 * i, "%02x", d[i]);
}

/*
 * Fetches manifest ref (a tag or a digest) from the endpoint in use: *body (malloc'd, *len)
 * and its digest. The digest of a manifest asked by digest is checked.
 */
static int get_manifest(struct pull *p, const char *ref, char **body, size_t *len, char digest[72],
                        char **ctype)
{
    struct sink k = {.p = p, .fd = -1, .max = MANIFEST_MAX};
    char *rest = xasprintf("%s/manifests/%s", p->repo, ref);
    CURLcode cc = get(p, rest, 1, 0, &k);
    free(rest);
    int rc = -1;
    if (cc == CURLE_LOGIN_DENIED) {
        /* the error is set */
    } else if (cc != CURLE_OK) {
        set_err(p, OCI_NETWORK, "failed to resolve reference \"%s\": %s: %s", p->ref, p->h->url,
                k.fail == 1 ? "manifest larger than 4 MiB" : curl_easy_strerror(cc));
    } else if (k.status == 404) {
        set_err(p, OCI_NOT_FOUND, "failed to resolve reference \"%s\": %s: not found", p->ref,
                p->ref);
    } else if (k.status == 401 || k.status == 403) {
        set_err(p, OCI_UNAUTHORIZED,
                "failed to resolve reference \"%s\": pull access denied, repository does not "
                "exist or may require authorization: %ld",
                p->ref, k.status);
    } else if (k.status != 200) {
        set_err(p, OCI_NETWORK, "failed to resolve reference \"%s\": %s: unexpected status %ld",
                p->ref, p->h->url, k.status);
    } else {
        sha256_hex(k.mem ? k.mem : "", k.len, digest);
        if (!strncmp(ref, "sha256:", 7) && strcmp(ref, digest)) {
            set_err(p, OCI_DIGEST,
                    "failed to pull and unpack image \"%s\": manifest %s: unexpected commit "
                    "digest %s, expected %s: failed precondition",
                    p->ref, ref, digest, ref);
        } else {
            *body = k.mem ? k.mem : xstrdup("");
            *len = k.len;
            *ctype = k.ctype;
            k.mem = NULL;
            k.ctype = NULL;
            rc = 0;
        }
    }
    free(k.mem);
    sink_reset(&k);
    return rc;
}

static int pulls_dir(struct pull *p)
{
    static const char *const parts[] = {"tmp", "tmp/pulls", PULLS_DIR, "blobs", IMG_BLOBS_DIR};
    for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
        if (mkdirat(p->s->dfd, parts[i], 0700) < 0 && errno != EEXIST)
            return set_err(p, OCI_STORE, "%s/%s: %s", p->s->dir, parts[i], strerror(errno));
    return 0;
}

/* Hashes what a partial file holds (resuming: the digest state is not saved). */
static int hash_existing(int fd, EVP_MD_CTX *md, uint64_t *have)
{
    char buf[1 << 16];
    *have = 0;
    if (lseek(fd, 0, SEEK_SET) < 0)
        return -1;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        EVP_DigestUpdate(md, buf, (size_t)n);
        *have += (uint64_t)n;
    }
}

static int blob_present(struct pull *p, const char *rel, int64_t size)
{
    struct stat st;
    return fstatat(p->s->dfd, rel, &st, 0) == 0 && st.st_size == size;
}

/*
 * Fetches blob d into blobs/sha256/<hex> (kept: see image.h) unless it is there, through
 * tmp/pulls/sha256/<hex>.partial, resuming a partial file, its digest and size checked.
 * what: "layer" or "config" (containerd's ref names in messages).
 */
static int fetch_blob(struct pull *p, const struct oci_desc *d, const char *what, int layer,
                      int layers)
{
    const char *hex = d->digest + 7;
    char *rel = xasprintf(IMG_BLOBS_DIR "/%s", hex),
         *prel = xasprintf(PULLS_DIR "/%s.partial", hex);
    int rc = -1, fd = -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (blob_present(p, rel, d->size)) {
        progress(p, OCI_L_EXISTS, layer, layers, d->digest, (uint64_t)d->size, (uint64_t)d->size);
        if (layer >= 0)
            p->r->layers_present++;
        rc = 0;
        goto out;
    }
    fd = openat(p->s->dfd, prel, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) < 0) {
        set_err(p, OCI_STORE, "%s/%s: %s", p->s->dir, prel, strerror(errno));
        goto out;
    }
    if (blob_present(p, rel, d->size)) { /* another pull finished it while we waited */
        progress(p, OCI_L_EXISTS, layer, layers, d->digest, (uint64_t)d->size, (uint64_t)d->size);
        rc = 0;
        goto out;
    }
    struct sink k = {.p = p,
                     .fd = fd,
                     .md = md,
                     .total = (uint64_t)d->size,
                     .layer = layer,
                     .layers = layers,
                     .digest = d->digest};
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    if (hash_existing(fd, md, &k.have) < 0) {
        set_err(p, OCI_STORE, "%s/%s: %s", p->s->dir, prel, strerror(errno));
        goto out;
    }
    if (k.have > k.total) {
        if (ftruncate(fd, 0) < 0) {
            set_err(p, OCI_STORE, "%s/%s: %s", p->s->dir, prel, strerror(errno));
            goto out;
        }
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        k.have = 0;
    }
    if (layer >= 0 && p->st)
        stream_have(p->st, layer, k.have);
    int max = p->o->max_resumes > 0 ? p->o->max_resumes : 8;
    char *rest = xasprintf("%s/blobs/%s", p->repo, d->digest);
    for (int attempt = 0; k.have < k.total; attempt++) {
        if (k.have > 0) {
            p->r->resumed++;
            progress(p, OCI_L_RESUMING, layer, layers, d->digest, k.have, k.total);
        }
        uint64_t before = k.have;
        CURLcode cc = get(p, rest, 0, k.have, &k);
        if (getenv("CORACLE_OCI_DEBUG"))
            fprintf(stderr, "oci: blob %s: curl %d, status %ld, %llu of %llu bytes\n", d->digest,
                    cc, k.status, (unsigned long long)k.have, (unsigned long long)k.total);
        if (cc == CURLE_LOGIN_DENIED)
            break;
        if (k.fail == 1) {
            set_err(p, OCI_DIGEST,
                    "failed to pull and unpack image \"%s\": failed commit on ref "
                    "\"%s-%s\": commit failed: unexpected commit size, more than %lld bytes: "
                    "failed precondition",
                    p->ref, what, d->digest, (long long)d->size);
            break;
        }
        if (k.fail == 2) {
            set_err(p, OCI_STORE, "%s/%s: %s", p->s->dir, prel, strerror(errno));
            break;
        }
        if (cc == CURLE_OK && k.status == 404) {
            set_err(p, OCI_NOT_FOUND,
                    "failed to pull and unpack image \"%s\": failed to copy: %s %s: not found",
                    p->ref, what, d->digest);
            break;
        }
        if (cc == CURLE_OK && k.status == 416 && k.have == k.total)
            break;
        if (cc == CURLE_OK && k.status != 200 && k.status != 206) {
            set_err(p, k.status == 403 ? OCI_UNAUTHORIZED : OCI_NETWORK,
                    "failed to pull and unpack image \"%s\": failed to copy: %s %s: unexpected "
                    "status %ld",
                    p->ref, what, d->digest, k.status);
            break;
        }
        if (cc == CURLE_OK && k.have < k.total) { /* a short body that ended cleanly */
            if (attempt >= max) {
                set_err(p, OCI_DIGEST,
                        "failed to pull and unpack image \"%s\": failed commit on ref \"%s-%s\": "
                        "commit failed: unexpected commit size %llu, expected %lld: failed "
                        "precondition",
                        p->ref, what, d->digest, (unsigned long long)k.have, (long long)d->size);
                break;
            }
            continue;
        }
        if (cc != CURLE_OK && (attempt >= max && k.have == before)) {
            set_err(p, OCI_NETWORK,
                    "failed to pull and unpack image \"%s\": failed to copy: %s %s: %s", p->ref,
                    what, d->digest, curl_easy_strerror(cc));
            break;
        }
        if (cc != CURLE_OK && k.have > before)
            attempt = 0; /* progress was made: the budget is for stalls */
    }
    free(rest);
    sink_reset(&k); /* the last response's headers */
    if (p->r->msg)
        goto out;
    unsigned char dg[32];
    unsigned int dl = 0;
    char got[72];
    EVP_DigestFinal_ex(md, dg, &dl);
    strcpy(got, "sha256:");
    for (int i = 0; i < 32; i++)
        sprintf(got + 7 + 2 * i, "%02x", dg[i]);
    if (strcmp(got, d->digest)) {
        /* what is on disk is wrong: it must not be resumed from */
        unlinkat(p->s->dfd, prel, 0);
        set_err(p, OCI_DIGEST,
                "failed to pull and unpack image \"%s\": failed commit on ref \"%s-%s\": "
                "unexpected commit digest %s, expected %s: failed precondition",
                p->ref, what, d->digest, got, d->digest);
        goto out;
    }
    /* No fdatasync: a blob a crash left short or zeroed fails the import's own digest check
     * (image_import.c hashes every layer it unpacks), and then it is fetched again. Its
     * writeback starts now, so that the import's syncfs does not wait for it at the end. */
    sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    if (renameat(p->s->dfd, prel, p->s->dfd, rel) < 0) {
        set_err(p, OCI_STORE, "%s/%s: %s", p->s->dir, rel, strerror(errno));
        goto out;
    }
    if (layer >= 0)
        p->r->layers_fetched++;
    progress(p, OCI_L_DONE, layer, layers, d->digest, k.total, k.total);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    EVP_MD_CTX_free(md);
    free(rel);
    free(prel);
    return rc;
}

static int write_at(struct pull *p, int dfd, const char *name, const char *data, size_t len)
{
    if (img_write_file_at(dfd, name, data, len) < 0)
        return set_err(p, OCI_STORE, "%s: %s", name, strerror(errno));
    return 0;
}

static void import_progress(const struct img_progress *ip, void *arg)
{
    struct pull *p = arg;
    if (ip->phase != IMG_PH_LAYER)
        return;
    if (p->st) { /* a layer still downloading shows that, not its unpacking */
        pthread_mutex_lock(&p->st->mu);
        int fetched = ip->layer < 1 || p->st->state[ip->layer - 1] != 0;
        pthread_mutex_unlock(&p->st->mu);
        if (!fetched)
            return;
    }
    progress(p, OCI_L_UNPACKING, ip->layer - 1, ip->layers, NULL, ip->done, ip->total);
}

/* The import refused the layers (one may have rotted on disk since it was verified): they are
 * fetched again next time, also those another image shares. */
static void drop_layers(struct pull *p, const struct oci_manifest *m)
{
    for (size_t i = 0; i < m->n_layers; i++) {
        char *rel = xasprintf(IMG_BLOBS_DIR "/%s", m->layers[i].digest + 7);
        unlinkat(p->s->dfd, rel, 0);
        free(rel);
    }
}

/* Links blob d into the layout's blobs/sha256 (srel): the kept blob, else its partial file
 * (created empty if need be), which the download fills in place. */
static int link_blob(struct pull *p, const struct oci_desc *d, const char *srel)
{
    char *kept = xasprintf(IMG_BLOBS_DIR "/%s", d->digest + 7);
    char *part = xasprintf(PULLS_DIR "/%s.partial", d->digest + 7);
    char *to = xasprintf("%s/%s", srel, d->digest + 7);
    int rc = linkat(p->s->dfd, kept, p->s->dfd, to, 0);
    for (int tries = 0; rc < 0 && errno == ENOENT && tries < 2; tries++) {
        int fd = openat(p->s->dfd, part, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
        rc = linkat(p->s->dfd, part, p->s->dfd, to, 0);
        if (rc < 0 && errno == ENOENT) /* completed (renamed) meanwhile */
            rc = linkat(p->s->dfd, kept, p->s->dfd, to, 0);
    }
    if (rc < 0 && errno != EEXIST)
        set_err(p, OCI_STORE, "%s/%s: %s", p->s->dir, to, strerror(errno));
    else
        rc = 0;
    free(kept);
    free(part);
    free(to);
    return rc;
}

/* Lays the image out as an OCI layout in a new tmp/<pid>.<rand>p/ (*rel, malloc'd; removed
 * with img_rm_rf_at by the caller also on failure): the manifest written, the config and the
 * layers linked (link_blob). */
static int make_layout(struct pull *p, const struct oci_manifest *m, const char *mbody, size_t mlen,
                       const char *mdigest, const char *mtype, char **rel)
{
    unsigned char rnd[4] = {0};
    FILE *ur = fopen("/dev/urandom", "re");
    if (ur) {
        if (fread(rnd, 1, 4, ur) != 4)
            memset(rnd, 0, 4);
        fclose(ur);
    }
    *rel = xasprintf("tmp/%ld.%02x%02x%02x%02xp", (long)getpid(), rnd[0], rnd[1], rnd[2], rnd[3]);
    char *brel = xasprintf("%s/blobs", *rel), *srel = xasprintf("%s/blobs/sha256", *rel);
    int rc = -1, dfd = -1;
    if (mkdirat(p->s->dfd, *rel, 0700) < 0 || mkdirat(p->s->dfd, brel, 0700) < 0 ||
        mkdirat(p->s->dfd, srel, 0700) < 0 ||
        (dfd = openat(p->s->dfd, *rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        set_err(p, OCI_STORE, "%s/%s: %s", p->s->dir, *rel, strerror(errno));
        goto out;
    }
    char *idx = xasprintf("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\","
                          "\"digest\":\"%s\",\"size\":%zu,\"annotations\":{"
                          "\"io.containerd.image.name\":\"%s\"}}]}",
                          mtype, mdigest, mlen, p->ref);
    const char *layout = "{\"imageLayoutVersion\":\"1.0.0\"}";
    char *mname = xasprintf("blobs/sha256/%s", mdigest + 7);
    rc = write_at(p, dfd, "oci-layout", layout, strlen(layout));
    if (rc == 0)
        rc = write_at(p, dfd, "index.json", idx, strlen(idx));
    if (rc == 0)
        rc = write_at(p, dfd, mname, mbody, mlen);
    free(idx);
    free(mname);
    for (size_t i = 0; rc == 0 && i <= m->n_layers; i++)
        rc = link_blob(p, i < m->n_layers ? &m->layers[i] : &m->config, srel);
out:
    if (dfd >= 0)
        close(dfd);
    free(brel);
    free(srel);
    return rc;
}

/* The first layer of the stream's manifest with that blob, or -1. */
static int stream_layer(const struct stream *st, const char *hex)
{
    for (size_t i = 0; i < st->m->n_layers; i++)
        if (!strcmp(st->m->layers[i].digest + 7, hex))
            return (int)i;
    return -1;
}

/* img_import's layer_read: read(2) of a layer file that waits for the download's bytes. */
static ssize_t stream_read(void *arg, const char *hex, int fd, void *buf, size_t len)
{
    struct stream *st = arg;
    int i = stream_layer(st, hex);
    off_t off = i < 0 ? 0 : lseek(fd, 0, SEEK_CUR);
    if (i < 0 || off < 0)
        return i < 0 ? read(fd, buf, len) : -1;
    pthread_mutex_lock(&st->mu);
    while (!st->restarted && st->state[i] == 0 && st->have[i] <= (uint64_t)off)
        pthread_cond_wait(&st->cv, &st->mu);
    int state = st->state[i], restarted = st->restarted;
    uint64_t have = st->have[i];
    pthread_mutex_unlock(&st->mu);
    if (restarted || state < 0) {
        errno = restarted ? ESTALE : EIO;
        return -1;
    }
    if (state == 0 && have - (uint64_t)off < len)
        len = (size_t)(have - (uint64_t)off);
    return read(fd, buf, len);
}

/* The download thread: every layer in order; a failure, or the import's, marks the rest failed.
 * A layer under way when the import fails is finished, so that its digest is checked. */
static void *download_main(void *arg)
{
    struct pull *p = arg;
    struct stream *st = p->st;
    int rc = 0, n = (int)st->m->n_layers;
    for (int i = 0; i < n; i++) {
        int r = rc < 0 || stream_aborted(st) ? -2 : fetch_blob(p, &st->m->layers[i], "layer", i, n);
        pthread_mutex_lock(&st->mu);
        st->state[i] = r == 0 ? 1 : -1;
        st->failed |= r == -1;
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
        rc = r < 0 ? -1 : rc;
    }
    pthread_mutex_lock(&st->mu);
    st->rc = rc;
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* img_import of the layout at rel, its layers read through the stream when st is set. 0, or
 * -1 with *err (malloc'd) and *code. */
static int run_import(struct pull *p, const char *rel, struct stream *st, char **err,
                      enum oci_code *code)
{
    char *path = xasprintf("%s/%s", p->s->dir, rel), *e = NULL;
    struct img_import_opts io = {.progress = import_progress,
                                 .arg = p,
                                 .layer_read = st ? stream_read : NULL,
                                 .layer_arg = st};
    img_t **imgs = NULL;
    size_t n = 0;
    int rc = img_import(p->s, path, &io, &imgs, &n, &e);
    if (rc < 0) {
        *code =
            strstr(e ? e : "", "corrupt") || strstr(e ? e : "", "diff_id") ? OCI_DIGEST : OCI_STORE;
        *err = e ? e : xstrdup("import failed");
        e = NULL;
        rc = -1;
    }
    img_list_free(imgs, n);
    free(e);
    free(path);
    return rc;
}

/* Fetches the layers (download thread) while importing the layout at rel (this thread). */
static int stream_import(struct pull *p, const struct oci_manifest *m, const char *rel)
{
    struct stream st = {.m = m,
                        .have = xcalloc(m->n_layers + 1, sizeof(uint64_t)),
                        .state = xcalloc(m->n_layers + 1, sizeof(int))};
    pthread_mutex_init(&st.mu, NULL);
    pthread_cond_init(&st.cv, NULL);
    pthread_t th;
    char *ie = NULL;
    enum oci_code ic = OCI_STORE;
    int irc;
    p->st = &st;
    if (pthread_create(&th, NULL, download_main, p) != 0) { /* one after the other */
        download_main(p);
        p->st = NULL;
        irc = st.rc < 0 ? -1 : run_import(p, rel, NULL, &ie, &ic);
    } else {
        irc = run_import(p, rel, &st, &ie, &ic);
        if (irc < 0) {
            pthread_mutex_lock(&st.mu);
            st.abort = 1;
            pthread_mutex_unlock(&st.mu);
        }
        pthread_join(th, NULL);
        p->st = NULL;
        if (irc < 0 && st.restarted && st.rc == 0) { /* what was read is void: again */
            free(ie);
            ie = NULL;
            irc = run_import(p, rel, NULL, &ie, &ic);
        }
    }
    int rc = 0;
    if (st.failed) /* its error is set: the cause, also when the import stumbled on it first */
        rc = -1;
    else if (irc < 0) /* on verified blobs: one may have rotted since, or the image is bad */
        rc = set_err(p, ic, "failed to pull and unpack image \"%s\": %s", p->ref, ie);
    if (irc < 0 && !st.failed)
        drop_layers(p, m);
    free(ie);
    free(st.have);
    free(st.state);
    pthread_mutex_destroy(&st.mu);
    pthread_cond_destroy(&st.cv);
    return rc;
}

/* Resolves the reference on the endpoint in use, down to the image manifest. */
static int resolve(struct pull *p, char **body, size_t *len, char digest[72], char **ctype,
                   struct oci_manifest *m)
{
    char *e = NULL;
    if (get_manifest(p, p->tag, body, len, digest, ctype) < 0)
        return -1;
    if (oci_manifest_parse(*body, *len, *ctype, m, &e) < 0) {
        set_err(p, OCI_INVALID, "failed to pull and unpack image \"%s\": %s", p->ref, e);
        free(e);
        return -1;
    }
    strcpy(p->r->digest, digest);
    if (m->kind == 'm')
        return 0;
    const char *os = p->o->os ? p->o->os : "linux";
    const char *arch = p->o->arch ? p->o->arch : oci_host_arch();
    struct oci_desc d;
    if (oci_index_pick(m, os, arch, &d) < 0) {
        oci_manifest_free(m);
        return set_err(p, OCI_PLATFORM,
                       "failed to pull and unpack image \"%s\": no match for platform in "
                       "manifest: not found (%s/%s)",
                       p->ref, os, arch);
    }
    char *dg = xstrdup(d.digest);
    oci_manifest_free(m);
    free(*body);
    free(*ctype);
    *body = NULL;
    *ctype = NULL;
    int rc = get_manifest(p, dg, body, len, digest, ctype);
    free(dg);
    if (rc < 0)
        return -1;
    if (oci_manifest_parse(*body, *len, *ctype, m, &e) < 0 || m->kind != 'm') {
        set_err(p, OCI_INVALID, "failed to pull and unpack image \"%s\": %s", p->ref,
                e ? e : "an index inside an index");
        free(e);
        oci_manifest_free(m);
        return -1;
    }
    return 0;
}

/* fetch_image with the kept blobs held. */
static int fetch_layers(struct pull *p, struct oci_manifest *m, const char *body, size_t len,
                        const char *digest, const char *ctype)
{
    struct oci_result *r = p->r;
    if (fetch_blob(p, &m->config, "config", -1, (int)m->n_layers) < 0)
        return -1;
    snprintf(r->id, sizeof r->id, "%s", m->config.digest);
    /* Present already (its id is the config's digest): only the name is new. */
    char *e = NULL;
    if (img_tag(p->s, m->config.digest + 7, p->ref, &e) == 0) {
        progress(p, OCI_L_COMPLETE, 0, (int)m->n_layers, NULL, 0, 0);
        return 0;
    }
    free(e);
    for (size_t i = 0; i < m->n_layers; i++)
        progress(p, OCI_L_WAITING, (int)i, (int)m->n_layers, m->layers[i].digest, 0,
                 (uint64_t)m->layers[i].size);
    const char *mt = json_str(json_get(m->root, "mediaType"));
    if (!mt)
        mt = ctype && strstr(ctype, "json") ? ctype : "application/vnd.oci.image.manifest.v1+json";
    char *rel = NULL;
    int rc = make_layout(p, m, body, len, digest, mt, &rel);
    if (rc == 0)
        rc = stream_import(p, m, rel);
    if (rel)
        img_rm_rf_at(p->s->dfd, rel);
    free(rel);
    if (rc < 0)
        return -1;
    progress(p, OCI_L_COMPLETE, 0, (int)m->n_layers, NULL, 0, 0);
    return 0;
}

/* Fetches and imports the image the manifest names. */
static int fetch_image(struct pull *p, struct oci_manifest *m, const char *body, size_t len,
                       const char *digest, const char *ctype)
{
    struct oci_result *r = p->r;
    r->size = (uint64_t)m->config.size;
    for (size_t i = 0; i < m->n_layers; i++)
        r->size += (uint64_t)m->layers[i].size;
    if (pulls_dir(p) < 0)
        return -1;
    /* Kept blobs stay until the image is committed (a sweep waits for the next round). */
    int hold = img_blobs_hold(p->s);
    if (hold < 0)
        return set_err(p, OCI_STORE, "%s/blobs: %s", p->s->dir, strerror(-hold));
    int rc = fetch_layers(p, m, body, len, digest, ctype);
    img_unlock(hold);
    return rc;
}

/* A failure worth reporting over another: a registry's answer beats "unreachable". */
static int rank(enum oci_code c)
{
    return c == OCI_NETWORK ? 0 : 1;
}

int oci_pull(img_store_t *s, const char *ref, const struct oci_pull_opts *opts,
             struct oci_result *r)
{
    static const struct oci_pull_opts none = {0};
    struct pull p = {.s = s, .o = opts ? opts : &none, .r = r, .pmu = PTHREAD_MUTEX_INITIALIZER};
    char *e = NULL;
    memset(r, 0, sizeof *r);
    oci_global_init();
    if (img_ref_normalize(ref, &p.ref, &e) < 0) {
        set_err(&p, OCI_INVALID, "%s", e);
        free(e);
        return -1;
    }
    char *at = strchr(p.ref, '@');
    if (at) {
        p.tag = xstrdup(at + 1);
        *at = 0;
        char *full = xstrdup(p.ref);
        *at = '@';
        p.repo = full;
    } else {
        img_ref_split(p.ref, &p.repo, &p.tag);
    }
    char *slash = strchr(p.repo, '/');
    p.registry = xstrndup(p.repo, (size_t)(slash - p.repo));
    memmove(p.repo, slash + 1, strlen(slash + 1) + 1);
    if (oci_hosts_load(p.o->hosts_dir, p.registry, &p.hosts, &e) < 0) {
        set_err(&p, OCI_INVALID, "registry hosts: %s", e);
        free(e);
        goto out;
    }
    p.c = curl_easy_init();
    struct oci_result best = {0};
    int rc = -1;
    for (size_t i = 0; i < p.hosts.n && rc < 0; i++) {
        p.h = &p.hosts.v[i];
        free(p.auth);
        p.auth = NULL;
        p.auth_tried = 0;
        free(r->msg);
        r->msg = NULL;
        r->code = OCI_OK;
        if (!p.h->resolve && !at)
            continue;
        char *body = NULL, *ctype = NULL, digest[72];
        size_t len = 0;
        struct oci_manifest m = {0};
        if (resolve(&p, &body, &len, digest, &ctype, &m) == 0) {
            rc = fetch_image(&p, &m, body, len, digest, ctype);
            oci_manifest_free(&m);
            free(body);
            free(ctype);
            if (rc < 0)
                break; /* the endpoint answered: its blobs were bad or the store refused */
            continue;
        }
        free(body);
        free(ctype);
        if (!best.msg || rank(r->code) > rank(best.code)) {
            free(best.msg);
            best.code = r->code;
            best.msg = r->msg;
            r->msg = NULL;
        }
    }
    if (rc < 0 && !r->msg && best.msg) {
        r->code = best.code;
        r->msg = best.msg;
        best.msg = NULL;
    } else if (rc < 0 && !r->msg) {
        set_err(&p, OCI_NETWORK, "no endpoint for %s", p.registry);
    }
    free(best.msg);
    if (rc == 0)
        r->code = OCI_OK;
    curl_easy_cleanup(p.c);
out:
    oci_hosts_free(&p.hosts);
    free(p.auth);
    free(p.ref);
    free(p.registry);
    free(p.repo);
    free(p.tag);
    return r->code == OCI_OK ? 0 : -1;
}

void oci_result_free(struct oci_result *r)
{
    free(r->msg);
    r->msg = NULL;
}
