/*
 * image_import: imports docker-archive and OCI-layout images into the
 * local store (see image.h), and the kubelet's drop-in folder.
 *
 * An import works in a private directory tmp/<pid>.<random>/ of the store:
 *   1. a file is unpacked into src/ (image_unpack.c: libarchive in-process,
 *      compression found from magic bytes);
 *   2. manifest.json (docker) or index.json (OCI) says, per image, which
 *      config blob and which layer blobs, in order;
 *   3. per image not yet in the store: each layer is unpacked into layer/
 *      (the bottom one straight into rootfs/), hashed on the way (blob
 *      digest and diff_id), then merged into rootfs/ applying whiteouts
 *      (".wh.NAME" deletes NAME below, ".wh..wh..opq" empties the directory
 *      below) with renames, so no file data is copied;
 *   4. under the store lock: images/<hex> appears by rename(), and each name
 *      link is replaced by rename() of a fresh symlink.
 * Everything before 4 can fail without touching the store; the private
 * directory is removed in every case (and by img_store_open() after a crash).
 */
#include "config.h"

#include "image.h"
#include "image_int.h"
#include "json.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

struct layer {
    char *path;     /* absolute, checked to be inside the source */
    char *label;    /* the path as the manifest names it, for messages */
    char *blob_hex; /* expected sha256 of the blob's bytes, or NULL */
    char *diff_hex; /* expected sha256 of the uncompressed tar (diff_id), or NULL */
    int64_t size;   /* expected blob size, or -1 */
};

struct plan {
    char *config_path, *config_label;
    char *config_hex; /* expected, or NULL */
    struct layer *layers;
    size_t n_layers;
    char **names; /* normalised */
    size_t n_names;
    /* Filled while preparing. */
    char hex[65];
    char *config_buf;
    size_t config_len;
    int exists;
    char *display; /* familiar first name or NULL */
};

struct import {
    img_store_t *s;
    const struct img_import_opts *opts;
    char *work_rel; /* "tmp/<pid>.<rand>" */
    char *work;     /* absolute */
    int workfd;
    char *src;    /* absolute, realpath'd: the archive's unpacked (or given) tree */
    char *source; /* the path imported, for meta.json */
    struct plan *plans;
    size_t n_plans;
    char **err;
    struct flusher *flush; /* started by the first layer big enough, or NULL */
};

static int fail(struct import *im, int rc, const char *fmt, ...) PRINTF(3, 4);
static int fail(struct import *im, int rc, const char *fmt, ...)
{
    if (im->err && !*im->err) {
        va_list ap;
        va_start(ap, fmt);
        *im->err = xvasprintf(fmt, ap);
        va_end(ap);
    }
    return rc;
}

static void progress(struct import *im, enum img_phase ph, const char *name, int layer, int layers,
                     uint64_t done, uint64_t total)
{
    if (!im->opts || !im->opts->progress)
        return;
    struct img_progress p = {
        .phase = ph,
        .name = name,
        .layer = layer,
        .layers = layers,
        .done = done,
        .total = total,
    };
    im->opts->progress(&p, im->opts->arg);
}

static void hexify(const unsigned char *d, char hex[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static void sha256_hex(const void *buf, size_t len, char hex[65])
{
    unsigned char d[32];
    unsigned int dl = 0;
    EVP_Digest(buf, len, d, &dl, EVP_sha256(), NULL);
    hexify(d, hex);
}

/* "sha256:<hex>" -> hex (malloc'd), or NULL if it is not that. */
static char *digest_hex(const char *digest)
{
    if (!digest || strncmp(digest, "sha256:", 7) != 0 || strlen(digest + 7) != 64 ||
        !img_is_hex(digest + 7, 64))
        return NULL;
    return xstrdup(digest + 7);
}

/* src/rel, refusing absolute paths and anything that resolves outside src. */
static int inside_path(struct import *im, const char *rel, char **out)
{
    char real[PATH_MAX];
    *out = NULL;
    if (!rel || !*rel || rel[0] == '/')
        return fail(im, -EBADMSG, "bad path \"%s\" in the archive's manifest", rel ? rel : "");
    char *full = xasprintf("%s/%s", im->src, rel);
    if (!realpath(full, real)) {
        int e = errno;
        free(full);
        return fail(im, e == ENOENT ? -EBADMSG : -e, "the archive has no %s (%s)", rel,
                    strerror(e));
    }
    free(full);
    size_t n = strlen(im->src);
    struct stat st;
    if (strncmp(real, im->src, n) != 0 || real[n] != '/')
        return fail(im, -EBADMSG, "%s in the archive points outside it", rel);
    if (stat(real, &st) < 0 || !S_ISREG(st.st_mode))
        return fail(im, -EBADMSG, "%s in the archive is not a regular file", rel);
    *out = xstrdup(real);
    return 0;
}

static int read_file(const char *path, size_t max, char **buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    *buf = NULL;
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_size > max) {
        close(fd);
        return -EFBIG;
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *b = xmalloc(n + 1);
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(b);
            close(fd);
            return -e;
        }
        got += (size_t)r;
    }
    close(fd);
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

/* ---- writing back while unpacking ---- */

/*
 * The commit's syncfs() waits for every file the import wrote (an image: some hundred MiB in
 * thousands of files, 0.15-0.3 s here). A thread of its own calls syncfs() every FLUSH_EVERY
 * bytes of layer read, so the disk writes what is already unpacked while the rest unpacks and
 * the last syncfs finds little left. It only starts for a layer that big.
 */
#define FLUSH_EVERY (16u << 20)

struct flusher {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd;    /* the work directory */
    int kicks; /* syncfs() calls asked for since the last one began */
    int done;
};

static void *flusher_main(void *arg)
{
    struct flusher *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->kicks && !f->done)
            pthread_cond_wait(&f->cv, &f->mu);
        if (f->done)
            break;
        f->kicks = 0;
        pthread_mutex_unlock(&f->mu);
        syncfs(f->fd);
        pthread_mutex_lock(&f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static void flusher_kick(struct import *im)
{
    struct flusher *f = im->flush;
    if (!f) {
        f = xcalloc(1, sizeof(*f));
        f->fd = im->workfd;
        pthread_mutex_init(&f->mu, NULL);
        pthread_cond_init(&f->cv, NULL);
        if (pthread_create(&f->th, NULL, flusher_main, f) != 0) {
            pthread_mutex_destroy(&f->mu);
            pthread_cond_destroy(&f->cv);
            free(f);
            return; /* the commit's syncfs does it all */
        }
        im->flush = f;
    }
    pthread_mutex_lock(&f->mu);
    f->kicks++;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* Waits for a syncfs() under way (the commit's would wait for it anyway) and ends the thread. */
static void flusher_stop(struct import *im)
{
    struct flusher *f = im->flush;
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    f->done = 1;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->th, NULL);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f);
    im->flush = NULL;
}

/* ---- unpacking ---- */

struct unpack_progress {
    struct import *im;
    enum img_phase ph;
    int layer, layers;
    uint64_t total;
    const char *blob_hex; /* a layer's, for opts->layer_read */
    int fd;
    uint64_t kicked; /* bytes read when the flusher was last asked to write back */
};

static ssize_t layer_read(void *arg, void *buf, size_t len)
{
    struct unpack_progress *up = arg;
    return up->im->opts->layer_read(up->im->opts->layer_arg, up->blob_hex, up->fd, buf, len);
}

static void unpack_progress(uint64_t done, void *arg)
{
    struct unpack_progress *up = arg;
    if (up->ph == IMG_PH_LAYER && done - up->kicked >= FLUSH_EVERY) {
        up->kicked = done;
        flusher_kick(up->im);
    }
    progress(up->im, up->ph, NULL, up->layer, up->layers, done, up->total);
}

/*
 * Unpacks the tar at `file` (plain or compressed) into `dest` (realpath'd), its sha256 and the
 * uncompressed tar's into u. `what` names the file in errors; skip_whiteouts leaves ".wh.*"
 * members out. A layer (l not NULL) is read through opts->layer_read when there is one.
 */
static int unpack_file(struct import *im, const char *file, const char *what, const char *dest,
                       int skip_whiteouts, enum img_phase ph, int layer, int layers,
                       const struct layer *l, struct img_unpack *u)
{
    struct stat st;
    char *e = NULL;
    int rc, fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        rc = fail(im, -errno, "%s: %s", what, strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    struct unpack_progress up = {im, ph, layer, layers, (uint64_t)st.st_size, NULL, fd, 0};
    memset(u, 0, sizeof(*u));
    u->dest = dest;
    u->skip_whiteouts = skip_whiteouts;
    u->progress = unpack_progress;
    u->arg = &up;
    if (l && l->blob_hex && im->opts && im->opts->layer_read) {
        up.blob_hex = l->blob_hex;
        up.total = l->size >= 0 ? (uint64_t)l->size : up.total;
        u->read = layer_read;
        u->read_arg = &up;
    }
    progress(im, ph, NULL, layer, layers, 0, up.total);
    rc = img_unpack(fd, u, &e);
    close(fd);
    if (rc < 0)
        fail(im, rc, "%s: cannot unpack: %s", what, e ? e : "failed");
    free(e);
    return rc;
}

/* ---- applying a layer ---- */

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **list_dir(int fd, size_t *n)
{
    int dfd = dup(fd);
    DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
    char **v = NULL;
    size_t cap = 0;
    *n = 0;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return NULL;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 32;
            v = xrealloc(v, cap * sizeof(*v));
        }
        v[(*n)++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (*n > 1)
        qsort(v, *n, sizeof(*v), cmp_cstr);
    return v;
}

static void set_meta(int dfd, const char *name, const struct stat *st)
{
    /* chown first: it clears set-id bits that chmod then restores. */
    if (fchownat(dfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM)
        log_debug("image: chown %s: %s", name, strerror(errno));
    fchmodat(dfd, name, st->st_mode & 07777, 0);
    struct timespec ts[2] = {st->st_atim, st->st_mtim};
    utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW);
}

/*
 * Moves the layer's tree at sfd into the rootfs tree at dfd, applying
 * whiteouts. `rel` is the path inside the image, for messages.
 */
static int merge_dir(struct import *im, int sfd, int dfd, const char *rel, int depth)
{
    size_t n;
    int rc = 0;
    if (depth > 256)
        return fail(im, -ELOOP, "layer nests directories deeper than 256 at /%s", rel);
    char **names = list_dir(sfd, &n);
    /* Opaque marker first, then whiteouts: both concern the layers below only. */
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], ".wh..wh..opq") != 0)
            continue;
        size_t dn;
        char **dnames = list_dir(dfd, &dn);
        for (size_t j = 0; j < dn; j++) {
            if (rc == 0 && (rc = img_rm_rf_at(dfd, dnames[j])) < 0)
                fail(im, rc, "applying opaque whiteout of /%s: %s", rel, strerror(-rc));
            free(dnames[j]);
        }
        free(dnames);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *nm = names[i];
        if (strncmp(nm, ".wh.", 4) != 0)
            continue;
        if (strncmp(nm, ".wh..wh.", 8) != 0 && nm[4] && strcmp(nm + 4, ".") &&
            strcmp(nm + 4, "..")) {
            if ((rc = img_rm_rf_at(dfd, nm + 4)) < 0)
                fail(im, rc, "applying whiteout /%s%s%s: %s", rel, *rel ? "/" : "", nm,
                     strerror(-rc));
        }
        unlinkat(sfd, nm, 0);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *nm = names[i];
        struct stat ss, ds;
        if (strncmp(nm, ".wh.", 4) == 0)
            continue;
        char *sub = *rel ? xasprintf("%s/%s", rel, nm) : xstrdup(nm);
        if (fstatat(sfd, nm, &ss, AT_SYMLINK_NOFOLLOW) < 0) {
            rc = fail(im, -errno, "layer /%s: %s", sub, strerror(errno));
            free(sub);
            break;
        }
        int have = fstatat(dfd, nm, &ds, AT_SYMLINK_NOFOLLOW) == 0;
        if (S_ISDIR(ss.st_mode)) {
            if (have && !S_ISDIR(ds.st_mode)) {
                if ((rc = img_rm_rf_at(dfd, nm)) < 0) {
                    fail(im, rc, "replacing /%s: %s", sub, strerror(-rc));
                    free(sub);
                    break;
                }
                have = 0;
            }
            if (!have && mkdirat(dfd, nm, 0700) < 0) {
                rc = fail(im, -errno, "mkdir /%s: %s", sub, strerror(errno));
                free(sub);
                break;
            }
            int s2 = openat(sfd, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int d2 = openat(dfd, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (s2 < 0 || d2 < 0)
                rc = fail(im, -errno, "open /%s: %s", sub, strerror(errno));
            else
                rc = merge_dir(im, s2, d2, sub, depth + 1);
            if (s2 >= 0)
                close(s2);
            if (d2 >= 0)
                close(d2);
            if (rc == 0)
                set_meta(dfd, nm, &ss);
        } else {
            if (have && S_ISDIR(ds.st_mode) && (rc = img_rm_rf_at(dfd, nm)) < 0)
                fail(im, rc, "replacing /%s: %s", sub, strerror(-rc));
            else if (renameat(sfd, nm, dfd, nm) < 0)
                rc = fail(im, -errno, "moving /%s into the rootfs: %s", sub, strerror(errno));
        }
        free(sub);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* Bytes of regular files under fd; hard links counted once. */
static uint64_t tree_size(int fd, int depth)
{
    size_t n;
    uint64_t sum = 0;
    char **names = list_dir(fd, &n);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (fstatat(fd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISREG(st.st_mode)) {
                sum += (uint64_t)st.st_size / (st.st_nlink ? st.st_nlink : 1);
            } else if (S_ISDIR(st.st_mode) && depth < 256) {
                int c = openat(fd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (c >= 0) {
                    sum += tree_size(c, depth + 1);
                    close(c);
                }
            }
        }
        free(names[i]);
    }
    free(names);
    return sum;
}

/* ---- reading manifests ---- */

static const char *host_arch(void)
{
    static const struct {
        const char *uname, *oci;
    } map[] = {
        {"x86_64", "amd64"},    {"aarch64", "arm64"}, {"armv7l", "arm"},
        {"armv6l", "arm"},      {"i686", "386"},      {"i386", "386"},
        {"ppc64le", "ppc64le"}, {"s390x", "s390x"},   {"riscv64", "riscv64"},
    };
    static struct utsname u;
    if (uname(&u) < 0)
        return "amd64";
    for (size_t i = 0; i < ARRAY_SIZE(map); i++)
        if (!strcmp(u.machine, map[i].uname))
            return map[i].oci;
    return u.machine;
}

static void plan_add_name(struct plan *p, const char *norm)
{
    for (size_t i = 0; i < p->n_names; i++)
        if (!strcmp(p->names[i], norm))
            return;
    p->names = xrealloc(p->names, (p->n_names + 1) * sizeof(char *));
    p->names[p->n_names++] = xstrdup(norm);
}

static int plan_name(struct import *im, struct plan *p, const char *ref, const char *where)
{
    char *norm, *e = NULL;
    int rc = img_ref_normalize(ref, &norm, &e);
    if (rc < 0) {
        fail(im, rc, "%s: %s", where, e);
        free(e);
        return rc;
    }
    plan_add_name(p, norm);
    free(norm);
    return 0;
}

static struct plan *new_plan(struct import *im)
{
    im->plans = xrealloc(im->plans, (im->n_plans + 1) * sizeof(*im->plans));
    struct plan *p = &im->plans[im->n_plans++];
    memset(p, 0, sizeof(*p));
    return p;
}

static struct layer *new_layer(struct plan *p)
{
    p->layers = xrealloc(p->layers, (p->n_layers + 1) * sizeof(*p->layers));
    struct layer *l = &p->layers[p->n_layers++];
    memset(l, 0, sizeof(*l));
    l->size = -1;
    return l;
}

static int docker_plans(struct import *im, const char *mpath)
{
    struct json_limits lim = {.max_bytes = IMG_JSON_MAX};
    json_t *m;
    char *e = NULL;
    int rc = 0;
    if (json_parse_file(mpath, &lim, &m, &e) < 0) {
        rc = fail(im, -EBADMSG, "%s", e);
        free(e);
        return rc;
    }
    if (!json_is(m, JSON_ARRAY) || m->n == 0) {
        rc = fail(im, -EBADMSG, "manifest.json: expected a non-empty array of images");
        goto out;
    }
    for (size_t i = 0; i < m->n; i++) {
        const json_t *ent = m->kids[i];
        const char *cfg = json_str(json_get(ent, "Config"));
        const json_t *tags = json_get(ent, "RepoTags");
        const json_t *layers = json_get(ent, "Layers");
        if (!cfg || !json_is(layers, JSON_ARRAY)) {
            rc = fail(im, -EBADMSG,
                      "manifest.json[%zu]: needs \"Config\" (string) and \"Layers\" (array)", i);
            goto out;
        }
        struct plan *p = new_plan(im);
        p->config_label = xstrdup(cfg);
        if ((rc = inside_path(im, cfg, &p->config_path)) < 0)
            goto out;
        /* "<hex>.json" (docker <= 24) or "blobs/sha256/<hex>" (docker 25+). */
        const char *base = strrchr(cfg, '/') ? strrchr(cfg, '/') + 1 : cfg;
        if (strlen(base) >= 64 && img_is_hex(base, 64) &&
            (base[64] == '\0' || !strcmp(base + 64, ".json")))
            p->config_hex = xstrndup(base, 64);
        for (size_t j = 0; json_is(tags, JSON_ARRAY) && j < tags->n; j++) {
            const char *t = json_str(tags->kids[j]);
            char where[96];
            snprintf(where, sizeof(where), "manifest.json[%zu].RepoTags[%zu]", i, j);
            if (!t) {
                rc = fail(im, -EBADMSG, "%s: not a string", where);
                goto out;
            }
            if ((rc = plan_name(im, p, t, where)) < 0)
                goto out;
        }
        for (size_t j = 0; j < layers->n; j++) {
            const char *lp = json_str(layers->kids[j]);
            if (!lp) {
                rc = fail(im, -EBADMSG, "manifest.json[%zu].Layers[%zu]: not a string", i, j);
                goto out;
            }
            struct layer *l = new_layer(p);
            l->label = xstrdup(lp);
            if ((rc = inside_path(im, lp, &l->path)) < 0)
                goto out;
            const char *lb = strrchr(lp, '/') ? strrchr(lp, '/') + 1 : lp;
            if (!strncmp(lp, "blobs/sha256/", 13) && strlen(lb) == 64 && img_is_hex(lb, 64))
                l->blob_hex = xstrdup(lb);
        }
    }
out:
    json_free(m);
    return rc;
}

static int is_index_type(const char *mt)
{
    return mt && (!strcmp(mt, "application/vnd.oci.image.index.v1+json") ||
                  !strcmp(mt, "application/vnd.docker.distribution.manifest.list.v2+json"));
}

/* Loads the blob a descriptor names, checking digest and size. */
static int load_blob(struct import *im, const json_t *desc, const char *where, json_t **out,
                     char **hex_out)
{
    struct json_limits lim = {.max_bytes = IMG_JSON_MAX};
    const char *dg = json_str(json_get(desc, "digest"));
    char *hex = digest_hex(dg), *path = NULL, *buf = NULL, *e = NULL, got[65];
    size_t len;
    int rc;
    *out = NULL;
    if (!hex)
        return fail(im, -EBADMSG, "%s: digest \"%s\" is not sha256:<64 hex>", where,
                    dg ? dg : "(none)");
    char *rel = xasprintf("blobs/sha256/%s", hex);
    if ((rc = inside_path(im, rel, &path)) < 0)
        goto out;
    if ((rc = read_file(path, IMG_JSON_MAX, &buf, &len)) < 0) {
        rc = fail(im, rc == -EFBIG ? -EBADMSG : rc, "%s: %s: %s", where, rel, strerror(-rc));
        goto out;
    }
    sha256_hex(buf, len, got);
    if (strcmp(got, hex) != 0) {
        rc = fail(im, -EBADMSG, "%s: %s is corrupt (its sha256 is %s)", where, rel, got);
        goto out;
    }
    if (json_parse(buf, len, &lim, out, &e) < 0) {
        rc = fail(im, -EBADMSG, "%s: %s: %s", where, rel, e);
        free(e);
        goto out;
    }
    if (hex_out) {
        *hex_out = hex;
        hex = NULL;
    }
out:
    free(rel);
    free(path);
    free(buf);
    free(hex);
    return rc;
}

static int oci_manifest(struct import *im, const json_t *desc, const json_t *names_from,
                        const char *where, int depth)
{
    const char *mt = json_str(json_get(desc, "mediaType"));
    json_t *m = NULL;
    int rc;
    char w[160];
    if (depth > 4)
        return fail(im, -EBADMSG, "%s: indexes nested too deep", where);
    if ((rc = load_blob(im, desc, where, &m, NULL)) < 0)
        return rc;
    if (!mt)
        mt = json_str(json_get(m, "mediaType"));
    if (is_index_type(mt) || (!mt && json_get(m, "manifests"))) {
        const json_t *ms = json_get(m, "manifests");
        const char *arch = host_arch();
        const json_t *pick = NULL;
        for (size_t i = 0; json_is(ms, JSON_ARRAY) && i < ms->n && !pick; i++) {
            const json_t *pl = json_get(ms->kids[i], "platform");
            const char *os = json_str(json_get(pl, "os")),
                       *a = json_str(json_get(pl, "architecture"));
            if ((!os || !strcmp(os, "linux")) && (!a || !strcmp(a, arch)))
                pick = ms->kids[i];
        }
        if (!pick) {
            rc = fail(im, -EINVAL, "%s: no linux/%s image in this index", where, arch);
            goto out;
        }
        snprintf(w, sizeof(w), "%s -> index", where);
        rc = oci_manifest(im, pick, names_from, w, depth + 1);
        goto out;
    }
    const json_t *cfg = json_get(m, "config"), *layers = json_get(m, "layers");
    if (!cfg || !json_is(layers, JSON_ARRAY)) {
        rc = fail(im, -EBADMSG, "%s: not an image manifest (no config and layers)", where);
        goto out;
    }
    struct plan *p = new_plan(im);
    p->config_hex = digest_hex(json_str(json_get(cfg, "digest")));
    if (!p->config_hex) {
        rc = fail(im, -EBADMSG, "%s: config digest is not sha256:<64 hex>", where);
        goto out;
    }
    p->config_label = xasprintf("blobs/sha256/%s", p->config_hex);
    if ((rc = inside_path(im, p->config_label, &p->config_path)) < 0)
        goto out;
    for (size_t i = 0; i < layers->n; i++) {
        const json_t *ld = layers->kids[i];
        struct layer *l = new_layer(p);
        l->blob_hex = digest_hex(json_str(json_get(ld, "digest")));
        if (!l->blob_hex) {
            rc = fail(im, -EBADMSG, "%s: layers[%zu] digest is not sha256:<64 hex>", where, i);
            goto out;
        }
        int64_t sz;
        if (json_int64(json_get(ld, "size"), &sz) == 0)
            l->size = sz;
        l->label = xasprintf("blobs/sha256/%s", l->blob_hex);
        if ((rc = inside_path(im, l->label, &l->path)) < 0)
            goto out;
    }
    /* Names: containerd's full name, else ref.name when it is a whole reference (a bare
     * tag like "1.14.2" names no repository). */
    const json_t *ann = json_get(names_from, "annotations");
    const char *full = json_str(json_get(ann, "io.containerd.image.name"));
    const char *refname = json_str(json_get(ann, "org.opencontainers.image.ref.name"));
    if (!full && refname && strpbrk(refname, ":/@"))
        full = refname;
    if (full && (rc = plan_name(im, p, full, where)) < 0)
        goto out;
out:
    json_free(m);
    return rc;
}

static int oci_plans(struct import *im, const char *ipath)
{
    struct json_limits lim = {.max_bytes = IMG_JSON_MAX};
    json_t *idx;
    char *e = NULL;
    int rc = 0;
    if (json_parse_file(ipath, &lim, &idx, &e) < 0) {
        rc = fail(im, -EBADMSG, "%s", e);
        free(e);
        return rc;
    }
    const json_t *ms = json_get(idx, "manifests");
    if (!json_is(ms, JSON_ARRAY) || ms->n == 0) {
        rc = fail(im, -EBADMSG, "index.json: no \"manifests\"");
        goto out;
    }
    for (size_t i = 0; i < ms->n && rc == 0; i++) {
        char where[96];
        snprintf(where, sizeof(where), "index.json manifests[%zu]", i);
        rc = oci_manifest(im, ms->kids[i], ms->kids[i], where, 0);
    }
out:
    json_free(idx);
    return rc;
}

/*
 * Marks the store's tmp/ as ext4 marks the top of a tree (FS_TOPDIR_FL, chattr +T): a
 * directory made in it, an import's work directory named at random, goes to a block group ext4
 * picks for it (few directories, free inodes) instead of beside the store's, and the image's
 * files follow it. Without a journal, as on these machines, ext4 skips every inode freed in the
 * last seconds (5 minutes while its inode table block is still dirty) and checks each again for
 * every file it creates: where an image was just removed (the GC, a test run) the next import's
 * 7,150 files cost seconds of system CPU. Other file systems ignore or refuse the flag: either
 * is fine.
 */
static void spread_tmp(img_store_t *s)
{
    int fd = openat(s->dfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC), flags = 0;
    if (fd < 0)
        return;
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && !(flags & FS_TOPDIR_FL)) {
        flags |= FS_TOPDIR_FL;
        ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
    close(fd);
}

/* ---- preparing and committing ---- */

static int prepare(struct import *im, struct plan *p, size_t idx)
{
    struct json_limits lim = {.max_bytes = IMG_JSON_MAX};
    json_t *cfg = NULL;
    char *e = NULL, *dir = NULL, *layer_dir = NULL, *rootfs = NULL;
    int rc, rfd = -1;
    rc = read_file(p->config_path, IMG_JSON_MAX, &p->config_buf, &p->config_len);
    if (rc < 0)
        return fail(im, rc == -EFBIG ? -EBADMSG : rc, "%s: %s", p->config_label,
                    rc == -EFBIG ? "config larger than 4 MiB" : strerror(-rc));
    sha256_hex(p->config_buf, p->config_len, p->hex);
    if (p->config_hex && strcmp(p->config_hex, p->hex) != 0)
        return fail(im, -EBADMSG, "%s is corrupt: its sha256 is %s", p->config_label, p->hex);
    if (json_parse(p->config_buf, p->config_len, &lim, &cfg, &e) < 0) {
        rc = fail(im, -EBADMSG, "%s: %s", p->config_label, e);
        free(e);
        return rc;
    }
    const json_t *diffs = json_get(json_get(cfg, "rootfs"), "diff_ids");
    if (!json_is(cfg, JSON_OBJECT) || !json_is(diffs, JSON_ARRAY)) {
        rc = fail(im, -EBADMSG, "%s: not an image config (no rootfs.diff_ids)", p->config_label);
        goto out;
    }
    if (diffs->n != p->n_layers) {
        rc = fail(im, -EBADMSG, "%s lists %zu layers (rootfs.diff_ids) but the manifest %zu",
                  p->config_label, diffs->n, p->n_layers);
        goto out;
    }
    for (size_t i = 0; i < p->n_layers; i++) {
        p->layers[i].diff_hex = digest_hex(json_str(diffs->kids[i]));
        if (!p->layers[i].diff_hex) {
            rc = fail(im, -EBADMSG, "%s: rootfs.diff_ids[%zu] is not sha256:<64 hex>",
                      p->config_label, i);
            goto out;
        }
    }
    const char *arch = json_str(json_get(cfg, "architecture"));
    if (arch && strcmp(arch, host_arch()) != 0)
        log_warn("image %s is for %s, this node is %s", p->display ? p->display : p->hex, arch,
                 host_arch());
    if (im->opts && im->opts->tag && (rc = plan_name(im, p, im->opts->tag, "--tag")) < 0)
        goto out;
    if (p->n_names)
        p->display = img_ref_familiar(p->names[0]);
    char *ip = xasprintf("images/%s", p->hex);
    p->exists = faccessat(im->s->dfd, ip, F_OK, 0) == 0;
    free(ip);
    if (p->exists)
        goto out;

    dir = xasprintf("img-%zu", idx);
    if (mkdirat(im->workfd, dir, 0755) < 0) {
        rc = fail(im, -errno, "%s/%s: %s", im->work, dir, strerror(errno));
        goto out;
    }
    char *rootfs_rel = xasprintf("%s/rootfs", dir);
    if (mkdirat(im->workfd, rootfs_rel, 0755) < 0 ||
        (rfd = openat(im->workfd, rootfs_rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = fail(im, -errno, "%s/%s: %s", im->work, rootfs_rel, strerror(errno));
        free(rootfs_rel);
        goto out;
    }
    free(rootfs_rel);
    layer_dir = xasprintf("%s/%s/layer", im->work, dir);
    rootfs = xasprintf("%s/%s/rootfs", im->work, dir);
    for (size_t i = 0; i < p->n_layers; i++) {
        struct layer *l = &p->layers[i];
        struct img_unpack u;
        struct stat st;
        char *what = xasprintf("layer %zu (%s)", i + 1, l->label);
        int streamed = im->opts && im->opts->layer_read; /* still arriving */
        if (!streamed && l->size >= 0 && stat(l->path, &st) == 0 && st.st_size != l->size) {
            rc = fail(im, -EBADMSG, "%s: %lld bytes, the manifest says %lld", what,
                      (long long)st.st_size, (long long)l->size);
            free(what);
            goto out;
        }
        /* The bottom layer has nothing below it: it goes straight into the
         * rootfs, its whiteouts (which could only hide nothing) left out. */
        int direct = i == 0;
        if (!direct && mkdir(layer_dir, 0755) < 0) {
            rc = fail(im, -errno, "%s: %s", layer_dir, strerror(errno));
            free(what);
            goto out;
        }
        rc = unpack_file(im, l->path, what, direct ? rootfs : layer_dir, direct, IMG_PH_LAYER,
                         (int)i + 1, (int)p->n_layers, l, &u);
        if (rc == 0 && l->blob_hex && strcmp(u.blob_hex, l->blob_hex) != 0)
            rc = fail(im, -EBADMSG, "%s is corrupt: its sha256 is %s", what, u.blob_hex);
        if (rc == 0 && strcmp(u.diff_hex, l->diff_hex) != 0)
            rc = fail(im, -EBADMSG, "%s does not match the config's diff_id sha256:%s", what,
                      l->diff_hex);
        free(what);
        if (rc == 0 && !direct) {
            int lfd = open(layer_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            rc = lfd < 0 ? fail(im, -errno, "%s: %s", layer_dir, strerror(errno))
                         : merge_dir(im, lfd, rfd, "", 0);
            if (lfd >= 0)
                close(lfd);
        }
        int r2 = direct ? 0 : img_rm_rf_at(AT_FDCWD, layer_dir);
        if (rc == 0 && r2 < 0)
            rc = fail(im, r2, "%s: %s", layer_dir, strerror(-r2));
        if (rc < 0)
            goto out;
    }
    /* Its own metadata. The last files' writeback goes on meanwhile. */
    if (im->flush)
        flusher_kick(im);
    int ifd = openat(im->workfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ifd < 0) {
        rc = fail(im, -errno, "%s/%s: %s", im->work, dir, strerror(errno));
        goto out;
    }
    uint64_t size = tree_size(rfd, 0);
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    char *src = json_quote(im->source), *blobs = xstrdup("");
    for (size_t i = 0; i < p->n_layers; i++) {
        if (!p->layers[i].blob_hex)
            continue;
        char *b = xasprintf("%s%s\"sha256:%s\"", blobs, *blobs ? "," : "", p->layers[i].blob_hex);
        free(blobs);
        blobs = b;
    }
    char *meta = xasprintf("{\"size\":%llu,\"layers\":%zu,\"imported\":\"%s\",\"source\":%s,"
                           "\"blobs\":[%s]}\n",
                           (unsigned long long)size, p->n_layers, ts, src, blobs);
    free(blobs);
    free(src);
    if ((rc = img_write_file_at(ifd, "config.json", p->config_buf, p->config_len)) < 0 ||
        (rc = img_write_file_at(ifd, "meta.json", meta, strlen(meta))) < 0)
        fail(im, rc, "%s/%s: writing metadata: %s", im->work, dir, strerror(-rc));
    free(meta);
    close(ifd);
out:
    if (rfd >= 0)
        close(rfd);
    free(rootfs);
    free(layer_dir);
    free(dir);
    json_free(cfg);
    return rc;
}

static int set_name(img_store_t *s, const char *name, const char *hex, char **err)
{
    char *esc = img_name_escape(name);
    char *tmp = xasprintf(".new-%ld", (long)getpid());
    int rc = 0;
    int fd = openat(s->dfd, "names", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    unlinkat(fd, tmp, 0);
    if (symlinkat(hex, fd, tmp) < 0 || renameat(fd, tmp, fd, esc) < 0) {
        rc = -errno;
        unlinkat(fd, tmp, 0);
    }
    close(fd);
out:
    if (rc < 0 && err)
        *err = xasprintf("%s/names: cannot name %s: %s", s->dir, name, strerror(-rc));
    free(esc);
    free(tmp);
    return rc;
}

int img_tag(img_store_t *s, const char *hex, const char *name, char **err)
{
    char *norm = NULL, *e = NULL, *dir = xasprintf("images/%s", hex);
    int rc = img_ref_normalize(name, &norm, &e);
    if (rc < 0) {
        if (err)
            *err = xasprintf("%s: %s", name, e);
        free(e);
        free(dir);
        return rc;
    }
    int lk = img_lock(s, err);
    if (lk < 0) {
        rc = lk;
    } else {
        if (faccessat(s->dfd, dir, F_OK, 0) < 0) {
            rc = -ENOENT;
            if (err)
                *err = xasprintf("%s/%s: no such image", s->dir, dir);
        } else {
            rc = set_name(s, norm, hex, err);
        }
        img_unlock(lk);
    }
    free(norm);
    free(dir);
    return rc;
}

static int commit(struct import *im)
{
    int rc = 0, fresh = 0;
    for (size_t i = 0; i < im->n_plans; i++)
        fresh |= !im->plans[i].exists;
    /* The rootfs files on disk before any name can point at them. */
    if (fresh && syncfs(im->workfd) < 0)
        return fail(im, -errno, "syncfs %s: %s", im->work, strerror(errno));
    int lk = img_lock(im->s, im->err);
    if (lk < 0)
        return lk;
    for (size_t i = 0; i < im->n_plans && rc == 0; i++) {
        struct plan *p = &im->plans[i];
        if (!p->exists) {
            char *from = xasprintf("%s/img-%zu", im->work_rel, i);
            char *to = xasprintf("images/%s", p->hex);
            if (renameat(im->s->dfd, from, im->s->dfd, to) < 0) {
                if (errno == EEXIST || errno == ENOTEMPTY)
                    p->exists = 1; /* another import got there first */
                else
                    rc = fail(im, -errno, "renaming %s/%s to %s/%s: %s", im->s->dir, from,
                              im->s->dir, to, strerror(errno));
            }
            free(from);
            free(to);
        }
        for (size_t j = 0; j < p->n_names && rc == 0; j++)
            rc = set_name(im->s, p->names[j], p->hex, im->err);
        if (rc == 0)
            progress(im, p->exists ? IMG_PH_EXISTS : IMG_PH_COMMIT, p->display, 0, (int)p->n_layers,
                     0, 0);
    }
    img_unlock(lk);
    return rc;
}

static void free_plans(struct import *im)
{
    for (size_t i = 0; i < im->n_plans; i++) {
        struct plan *p = &im->plans[i];
        free(p->config_path);
        free(p->config_label);
        free(p->config_hex);
        for (size_t j = 0; j < p->n_layers; j++) {
            free(p->layers[j].path);
            free(p->layers[j].label);
            free(p->layers[j].blob_hex);
            free(p->layers[j].diff_hex);
        }
        free(p->layers);
        for (size_t j = 0; j < p->n_names; j++)
            free(p->names[j]);
        free(p->names);
        free(p->config_buf);
        free(p->display);
    }
    free(im->plans);
}

int img_import(img_store_t *s, const char *path, const struct img_import_opts *opts, img_t ***out,
               size_t *nout, char **err)
{
    struct import im = {.s = s, .opts = opts, .workfd = -1, .err = err};
    struct stat st;
    char real[PATH_MAX];
    int rc;
    if (err)
        *err = NULL;
    if (out)
        *out = NULL;
    if (nout)
        *nout = 0;
    if (stat(path, &st) < 0)
        return fail(&im, -errno, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
        return fail(&im, -EINVAL, "%s: not a file or directory", path);
    if (opts && opts->tag) {
        char *norm, *e = NULL;
        if ((rc = img_ref_normalize(opts->tag, &norm, &e)) < 0) {
            fail(&im, rc, "--tag: %s", e);
            free(e);
            return rc;
        }
        free(norm);
    }

    unsigned char rnd[4];
    FILE *ur = fopen("/dev/urandom", "re");
    if (!ur || fread(rnd, 1, 4, ur) != 4)
        memset(rnd, 0, 4);
    if (ur)
        fclose(ur);
    im.work_rel =
        xasprintf("tmp/%ld.%02x%02x%02x%02x", (long)getpid(), rnd[0], rnd[1], rnd[2], rnd[3]);
    im.work = xasprintf("%s/%s", s->dir, im.work_rel);
    spread_tmp(s);
    if (mkdirat(s->dfd, im.work_rel, 0700) < 0 ||
        (im.workfd = openat(s->dfd, im.work_rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = fail(&im, -errno, "%s: %s", im.work, strerror(errno));
        goto out;
    }
    if (realpath(im.work, real)) { /* the unpacker wants a path without symlinks */
        free(im.work);
        im.work = xstrdup(real);
    }
    im.source = realpath(path, real) ? xstrdup(real) : xstrdup(path);
    if (S_ISDIR(st.st_mode)) {
        if (!realpath(path, real)) {
            rc = fail(&im, -errno, "%s: %s", path, strerror(errno));
            goto out;
        }
        im.src = xstrdup(real);
    } else {
        char *srcdir = xasprintf("%s/src", im.work);
        if (mkdir(srcdir, 0700) < 0) {
            rc = fail(&im, -errno, "%s: %s", srcdir, strerror(errno));
            free(srcdir);
            goto out;
        }
        struct img_unpack u;
        rc = unpack_file(&im, path, path, srcdir, 0, IMG_PH_READ, 0, 0, NULL, &u);
        if (rc < 0) {
            free(srcdir);
            goto out;
        }
        im.src = realpath(srcdir, real) ? xstrdup(real) : xstrdup(srcdir);
        free(srcdir);
    }
    char *mpath = xasprintf("%s/manifest.json", im.src);
    char *ipath = xasprintf("%s/index.json", im.src);
    if (access(mpath, F_OK) == 0)
        rc = docker_plans(&im, mpath);
    else if (access(ipath, F_OK) == 0)
        rc = oci_plans(&im, ipath);
    else
        rc = fail(&im, -EINVAL,
                  "%s: neither a docker-archive (no manifest.json) nor an OCI layout (no "
                  "index.json)",
                  path);
    free(mpath);
    free(ipath);
    if (rc < 0)
        goto out;
    /* The same image twice (two entries, or an index listing it twice): merge. */
    for (size_t i = 0; i < im.n_plans && rc == 0; i++)
        rc = prepare(&im, &im.plans[i], i);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < im.n_plans; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(im.plans[i].hex, im.plans[j].hex) && !im.plans[j].exists) {
                im.plans[i].exists = 1; /* j commits the rootfs; i only its names */
                break;
            }
    flusher_stop(&im);
    if ((rc = commit(&im)) < 0)
        goto out;
    if (out) {
        img_t **v = xcalloc(im.n_plans ? im.n_plans : 1, sizeof(*v));
        size_t n = 0;
        for (size_t i = 0; i < im.n_plans; i++) {
            int dup = 0;
            for (size_t j = 0; j < n; j++)
                dup |= !strcmp(v[j]->id + 7, im.plans[i].hex);
            if (!dup && img_load(s, im.plans[i].hex, &v[n], NULL) == 0)
                n++;
        }
        *out = v;
        if (nout)
            *nout = n;
    }
out:
    flusher_stop(&im);
    if (im.workfd >= 0)
        close(im.workfd);
    if (im.work_rel)
        img_rm_rf_at(s->dfd, im.work_rel);
    free(im.work_rel);
    free(im.work);
    free(im.src);
    free(im.source);
    free_plans(&im);
    return rc;
}

/* ---- drop-in folder ---- */

struct seen {
    char *name;
    long long size, mtime;
};

static size_t read_seen(img_store_t *s, struct seen **out)
{
    char *buf;
    size_t len, n = 0;
    *out = NULL;
    char *path = xasprintf("%s/import/.imported", s->dir);
    int rc = read_file(path, 1 << 20, &buf, &len);
    free(path);
    if (rc < 0)
        return 0;
    for (char *save, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        long long sz, mt;
        int off = 0;
        if (sscanf(line, "%lld %lld %n", &sz, &mt, &off) != 2 || !off || !line[off])
            continue;
        *out = xrealloc(*out, (n + 1) * sizeof(**out));
        (*out)[n].name = xstrdup(line + off);
        (*out)[n].size = sz;
        (*out)[n].mtime = mt;
        n++;
    }
    free(buf);
    return n;
}

static void dropin_progress(const struct img_progress *p, void *arg)
{
    const char *file = arg;
    if (p->phase == IMG_PH_LAYER && p->done == 0)
        log_info("image import %s: layer %d/%d (%llu bytes)", file, p->layer, p->layers,
                 (unsigned long long)p->total);
}

int img_import_dropin(img_store_t *s)
{
    int dfd = openat(s->dfd, "import", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 && errno == ENOENT) {
        mkdirat(s->dfd, "import", 0755);
        return 0;
    }
    if (dfd < 0) {
        int e = errno;
        log_err("image store %s/import: %s", s->dir, strerror(e));
        return -e;
    }
    struct seen *seen;
    size_t nseen = read_seen(s, &seen), n;
    char **names = list_dir(dfd, &n);
    int count = 0;
    FILE *state = NULL;
    int sfd = openat(dfd, ".imported.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (sfd >= 0)
        state = fdopen(sfd, "w");
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (names[i][0] == '.' || fstatat(dfd, names[i], &st, 0) < 0 ||
            !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
            goto next;
        int done = 0;
        for (size_t j = 0; j < nseen && !done; j++)
            done = !strcmp(seen[j].name, names[i]) && seen[j].size == (long long)st.st_size &&
                   seen[j].mtime == (long long)st.st_mtime;
        if (!done) {
            char *path = xasprintf("%s/import/%s", s->dir, names[i]);
            struct img_import_opts o = {.progress = dropin_progress, .arg = names[i]};
            img_t **imgs;
            size_t ni;
            char *e = NULL;
            int64_t t0 = mono_ns();
            log_info("image import %s: starting", path);
            if (img_import(s, path, &o, &imgs, &ni, &e) == 0) {
                for (size_t k = 0; k < ni; k++) {
                    char *fam = imgs[k]->n_names ? img_ref_familiar(imgs[k]->names[0]) : NULL;
                    log_info("image import %s: %s (%s) in %.1f s", names[i], fam ? fam : "<none>",
                             imgs[k]->id, (double)(mono_ns() - t0) / 1e9);
                    free(fam);
                }
                img_list_free(imgs, ni);
                done = 1;
                count++;
            } else {
                log_err("image import %s: %s", path, e ? e : "failed");
            }
            free(e);
            free(path);
        }
        if (done && state)
            fprintf(state, "%lld %lld %s\n", (long long)st.st_size, (long long)st.st_mtime,
                    names[i]);
    next:
        free(names[i]);
    }
    free(names);
    if (state) {
        if (fclose(state) == 0)
            renameat(dfd, ".imported.tmp", dfd, ".imported");
    } else if (sfd >= 0) {
        close(sfd);
    }
    for (size_t j = 0; j < nseen; j++)
        free(seen[j].name);
    free(seen);
    close(dfd);
    return count;
}
