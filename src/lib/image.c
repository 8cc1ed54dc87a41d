/*
 * image: the local image store's reading side and housekeeping: open,
 * lookup by reference or id, list, remove, and parsing an image's config.
 * Imports are in image_import.c, references in image_ref.c; the layout on
 * disk is described in image.h.
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int img_is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

char *img_name_escape(const char *name)
{
    char *o = xmalloc(strlen(name) * 3 + 1), *p = o;
    for (const char *c = name; *c; c++) {
        if (*c == '/') {
            memcpy(p, "%2F", 3);
            p += 3;
        } else if (*c == '%') {
            memcpy(p, "%25", 3);
            p += 3;
        } else {
            *p++ = *c;
        }
    }
    *p = '\0';
    return o;
}

char *img_name_unescape(const char *esc)
{
    char *o = xmalloc(strlen(esc) + 1), *p = o;
    for (const char *c = esc; *c; c++) {
        if (c[0] == '%' && c[1] == '2' && (c[2] == 'F' || c[2] == 'f')) {
            *p++ = '/';
            c += 2;
        } else if (c[0] == '%' && c[1] == '2' && c[2] == '5') {
            *p++ = '%';
            c += 2;
        } else {
            *p++ = *c;
        }
    }
    *p = '\0';
    return o;
}

int img_lock(img_store_t *s, char **err)
{
    int fd = openat(s->dfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        if (err)
            *err = xasprintf("%s/lock: %s", s->dir, strerror(e));
        return -e;
    }
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            int e = errno;
            if (err)
                *err = xasprintf("%s/lock: flock: %s", s->dir, strerror(e));
            close(fd);
            return -e;
        }
    }
    return fd;
}

void img_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

int img_rm_rf_at(int dirfd, const char *name)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno; /* someone else removed it */
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    int rc = 0;
    /* A directory without write permission (0555) cannot lose entries, even for root
     * on some filesystems with immutable bits; make sure it is writable. */
    if ((st.st_mode & 0700) != 0700)
        fchmod(fd, (st.st_mode & 07777) | 0700);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        int r = img_rm_rf_at(fd, de->d_name);
        if (r < 0 && rc == 0)
            rc = r;
    }
    closedir(d);
    if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        rc = -errno;
    return rc;
}

int img_write_file_at(int dirfd, const char *name, const void *data, size_t len)
{
    char *tmp = xasprintf("%s.tmp", name);
    int rc = 0;
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = -errno;
            close(fd);
            unlinkat(dirfd, tmp, 0);
            goto out;
        }
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        rc = -errno;
        unlinkat(dirfd, tmp, 0);
        goto out;
    }
    if (renameat(dirfd, tmp, dirfd, name) < 0) {
        rc = -errno;
        unlinkat(dirfd, tmp, 0);
    }
out:
    free(tmp);
    return rc;
}

/* mkdir -p for an absolute path. */
static int mkdir_p(const char *path, mode_t mode)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *c = p + 1;; c++) {
        if (*c == '/' || *c == '\0') {
            char save = *c;
            *c = '\0';
            if (mkdir(p, mode) < 0 && errno != EEXIST) {
                rc = -errno;
                break;
            }
            *c = save;
            if (!save)
                break;
        }
    }
    free(p);
    return rc;
}

/* Removes tmp/ entries of importers that are gone ("<pid>.<rand>") and of
 * interrupted removals ("del-..."). */
static void clean_tmp(img_store_t *s)
{
    int fd = openat(s->dfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        /* pulls/: blobs of registry pulls, kept so that a pull resumes (oci.h) */
        if (de->d_name[0] == '.' || !strcmp(de->d_name, "pulls"))
            continue;
        int stale = 0;
        if (strncmp(de->d_name, "del-", 4) == 0) {
            stale = 1;
        } else {
            char *end;
            long pid = strtol(de->d_name, &end, 10);
            stale = *end != '.' || pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH);
        }
        if (stale) {
            log_info("image store: removing %s/tmp/%s left by an interrupted import", s->dir,
                     de->d_name);
            img_rm_rf_at(fd, de->d_name);
        }
    }
    closedir(d);
}

int img_store_open(const char *dir, int flags, img_store_t **out, char **err)
{
    static const char *subdirs[] = {"images", "names", "tmp", "import"};
    char abs[PATH_MAX];
    int rc;
    *out = NULL;
    if (!dir || !*dir)
        dir = IMG_DEFAULT_DIR;
    if (dir[0] != '/') {
        if (!getcwd(abs, sizeof(abs)) || strlen(abs) + strlen(dir) + 2 > sizeof(abs)) {
            if (err)
                *err = xasprintf("%s: cannot make the path absolute", dir);
            return -ENAMETOOLONG;
        }
        strcat(abs, "/");
        strcat(abs, dir);
    } else {
        snprintf(abs, sizeof(abs), "%s", dir);
    }
    size_t n = strlen(abs);
    while (n > 1 && abs[n - 1] == '/')
        abs[--n] = '\0';
    if (flags & IMG_STORE_CREATE) {
        if ((rc = mkdir_p(abs, 0755)) < 0) {
            if (err)
                *err = xasprintf("cannot create image store %s: %s", abs, strerror(-rc));
            return rc;
        }
    }
    int dfd = open(abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        rc = -errno;
        if (err)
            *err = xasprintf("image store %s: %s", abs, strerror(-rc));
        return rc;
    }
    for (size_t i = 0; i < ARRAY_SIZE(subdirs); i++) {
        if (flags & IMG_STORE_CREATE) {
            if (mkdirat(dfd, subdirs[i], i == 2 ? 0700 : 0755) < 0 && errno != EEXIST) {
                rc = -errno;
                if (err)
                    *err = xasprintf("cannot create %s/%s: %s", abs, subdirs[i], strerror(-rc));
                close(dfd);
                return rc;
            }
        } else if (i < 2) {
            struct stat st;
            if (fstatat(dfd, subdirs[i], &st, 0) < 0 || !S_ISDIR(st.st_mode)) {
                if (err)
                    *err = xasprintf("%s is not an image store (no %s/)", abs, subdirs[i]);
                close(dfd);
                return -ENOENT;
            }
        }
    }
    img_store_t *s = xcalloc(1, sizeof(*s));
    s->dir = xstrdup(abs);
    s->dfd = dfd;
    if (flags & IMG_STORE_CREATE)
        clean_tmp(s);
    *out = s;
    return 0;
}

void img_store_close(img_store_t *s)
{
    if (!s)
        return;
    close(s->dfd);
    free(s->dir);
    free(s);
}

const char *img_store_dir(const img_store_t *s)
{
    return s->dir;
}

/* ---- config parsing ---- */

/* A JSON array of strings (or one string, which Docker's strslice accepts). */
static int str_array(const json_t *v, char ***out, size_t *n, const char *what, char **err)
{
    *out = NULL;
    *n = 0;
    if (!v || v->type == JSON_NULL)
        return 0;
    if (v->type == JSON_STRING) {
        *out = xcalloc(1, sizeof(char *));
        (*out)[0] = xstrdup(v->str);
        *n = 1;
        return 0;
    }
    if (v->type != JSON_ARRAY) {
        if (err)
            *err = xasprintf("%s is not an array of strings", what);
        return -EBADMSG;
    }
    *out = xcalloc(v->n ? v->n : 1, sizeof(char *));
    for (size_t i = 0; i < v->n; i++) {
        if (v->kids[i]->type != JSON_STRING) {
            if (err)
                *err = xasprintf("%s[%zu] is not a string", what, i);
            for (size_t j = 0; j < i; j++)
                free((*out)[j]);
            free(*out);
            *out = NULL;
            return -EBADMSG;
        }
        (*out)[i] = xstrdup(v->kids[i]->str);
    }
    *n = v->n;
    return 0;
}

static char *opt_str(const json_t *v)
{
    const char *s = json_str(v);
    return s && *s ? xstrdup(s) : NULL;
}

static int64_t parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!s)
        return 0;
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return 0;
    if (*p == '.')
        while (*++p >= '0' && *p <= '9')
            ;
    int64_t t = (int64_t)timegm(&tm);
    if ((*p == '+' || *p == '-') && strlen(p) >= 6) {
        int off =
            ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
        t -= *p == '+' ? off : -off;
    }
    return t;
}

static int parse_config(const json_t *root, img_t *img, char **err)
{
    struct img_config *c = &img->cfg;
    const json_t *cfg = json_get(root, "config");
    int rc;
    if (!json_is(root, JSON_OBJECT)) {
        if (err)
            *err = xasprintf("the image config is not a JSON object");
        return -EBADMSG;
    }
    if (cfg && cfg->type != JSON_OBJECT && cfg->type != JSON_NULL) {
        if (err)
            *err = xasprintf("the image config's \"config\" is not an object");
        return -EBADMSG;
    }
    if ((rc = str_array(json_get(cfg, "Entrypoint"), &c->entrypoint, &c->n_entrypoint,
                        "config.Entrypoint", err)) < 0 ||
        (rc = str_array(json_get(cfg, "Cmd"), &c->cmd, &c->n_cmd, "config.Cmd", err)) < 0 ||
        (rc = str_array(json_get(cfg, "Env"), &c->env, &c->n_env, "config.Env", err)) < 0)
        return rc;
    c->workdir = opt_str(json_get(cfg, "WorkingDir"));
    c->user = opt_str(json_get(cfg, "User"));
    c->stop_signal = opt_str(json_get(cfg, "StopSignal"));
    c->os = opt_str(json_get(root, "os"));
    c->architecture = opt_str(json_get(root, "architecture"));
    const json_t *labels = json_get(cfg, "Labels");
    if (json_is(labels, JSON_OBJECT) && labels->n) {
        c->label_keys = xcalloc(labels->n, sizeof(char *));
        c->label_values = xcalloc(labels->n, sizeof(char *));
        for (size_t i = 0; i < labels->n; i++) {
            const char *v = json_str(labels->kids[i]);
            if (!v)
                continue;
            c->label_keys[c->n_labels] = xstrdup(labels->keys[i]);
            c->label_values[c->n_labels++] = xstrdup(v);
        }
    }
    const json_t *ports = json_get(cfg, "ExposedPorts");
    if (json_is(ports, JSON_OBJECT) && ports->n) {
        c->exposed_ports = xcalloc(ports->n, sizeof(char *));
        for (size_t i = 0; i < ports->n; i++)
            c->exposed_ports[c->n_exposed_ports++] = xstrdup(ports->keys[i]);
    }
    img->created = parse_time(json_str(json_get(root, "created")));
    return 0;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void img_free(img_t *img)
{
    if (!img)
        return;
    struct img_config *c = &img->cfg;
    free_strv(c->entrypoint, c->n_entrypoint);
    free_strv(c->cmd, c->n_cmd);
    free_strv(c->env, c->n_env);
    free(c->workdir);
    free(c->user);
    free(c->stop_signal);
    free_strv(c->label_keys, c->n_labels);
    free_strv(c->label_values, c->n_labels);
    free_strv(c->exposed_ports, c->n_exposed_ports);
    free(c->os);
    free(c->architecture);
    free_strv(img->names, img->n_names);
    free_strv(img->blobs, img->n_blobs);
    free(img->dir);
    free(img->rootfs);
    free(img);
}

void img_list_free(img_t **imgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        img_free(imgs[i]);
    free(imgs);
}

/* ---- names ---- */

struct name_ent {
    char *name; /* normalised */
    char hex[65];
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every names/ entry that is a valid link. */
static size_t read_names(img_store_t *s, struct name_ent **out)
{
    size_t n = 0, cap = 0;
    *out = NULL;
    int fd = openat(s->dfd, "names", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return 0;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        char buf[80];
        if (de->d_name[0] == '.')
            continue;
        ssize_t r = readlinkat(fd, de->d_name, buf, sizeof(buf) - 1);
        if (r != 64)
            continue;
        buf[64] = '\0';
        if (!img_is_hex(buf, 64))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xrealloc(*out, cap * sizeof(**out));
        }
        (*out)[n].name = img_name_unescape(de->d_name);
        memcpy((*out)[n].hex, buf, 65);
        n++;
    }
    closedir(d);
    return n;
}

static void free_names(struct name_ent *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

static void attach_names(img_t *img, const struct name_ent *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].hex, img->id + 7) != 0)
            continue;
        img->names = xrealloc(img->names, (img->n_names + 1) * sizeof(char *));
        img->names[img->n_names++] = xstrdup(v[i].name);
    }
    if (img->n_names > 1)
        qsort(img->names, img->n_names, sizeof(char *), cmp_str);
}

int64_t img_read_last_used(img_store_t *s, const char *hex)
{
    char *path = xasprintf("images/%s/last-used", hex), buf[32];
    int fd = openat(s->dfd, path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return 0;
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (r <= 0)
        return 0;
    buf[r] = '\0';
    long long v = strtoll(buf, NULL, 10);
    return v > 0 ? (int64_t)v : 0;
}

int img_mark_used(img_store_t *s, const char *id, int64_t when)
{
    const char *hex = strncmp(id, "sha256:", 7) == 0 ? id + 7 : id;
    if (strlen(hex) != 64 || !img_is_hex(hex, 64))
        return -EINVAL;
    char *dir = xasprintf("images/%s", hex), buf[32];
    int fd = openat(s->dfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -errno;
    int n = snprintf(buf, sizeof buf, "%lld\n", (long long)when);
    int rc = img_write_file_at(fd, "last-used", buf, (size_t)n);
    close(fd);
    return rc;
}

/* Loads an image without its names. */
static int load_bare(img_store_t *s, const char *hex, img_t **out, char **err)
{
    struct json_limits lim = {.max_bytes = IMG_JSON_MAX};
    json_t *cfg = NULL, *meta = NULL;
    char *e = NULL;
    int rc;
    *out = NULL;
    img_t *img = xcalloc(1, sizeof(*img));
    snprintf(img->id, sizeof(img->id), "sha256:%s", hex);
    img->dir = xasprintf("%s/images/%s", s->dir, hex);
    img->rootfs = xasprintf("%s/rootfs", img->dir);
    char *path = xasprintf("%s/config.json", img->dir);
    if (json_parse_file(path, &lim, &cfg, &e) < 0) {
        rc = access(img->dir, F_OK) < 0 && errno == ENOENT ? -ENOENT : -EBADMSG;
        if (err)
            *err = rc == -ENOENT ? xasprintf("no image %s", img->id) : e;
        else
            free(e);
        e = NULL;
        free(path);
        goto fail;
    }
    free(path);
    if ((rc = parse_config(cfg, img, &e)) < 0) {
        if (err)
            *err = xasprintf("%s/config.json: %s", img->dir, e);
        free(e);
        goto fail;
    }
    path = xasprintf("%s/meta.json", img->dir);
    if (json_parse_file(path, &lim, &meta, &e) == 0) {
        int64_t v;
        if (json_int64(json_get(meta, "size"), &v) == 0 && v >= 0)
            img->size = (uint64_t)v;
        if (json_int64(json_get(meta, "layers"), &v) == 0 && v >= 0 && v < 100000)
            img->layers = (int)v;
        img->imported = parse_time(json_str(json_get(meta, "imported"))) * 1000000000LL;
        const json_t *blobs = json_get(meta, "blobs");
        for (size_t i = 0; json_is(blobs, JSON_ARRAY) && i < blobs->n; i++) {
            const char *d = json_str(blobs->kids[i]);
            if (!d || strncmp(d, "sha256:", 7) || strlen(d) != 71 || !img_is_hex(d + 7, 64))
                continue;
            img->blobs = xrealloc(img->blobs, (img->n_blobs + 1) * sizeof(char *));
            img->blobs[img->n_blobs++] = xstrdup(d);
        }
    } else {
        log_warn("image %s: %s", img->id, e);
        free(e);
    }
    free(path);
    img->last_used = img_read_last_used(s, hex);
    json_free(cfg);
    json_free(meta);
    *out = img;
    return 0;
fail:
    json_free(cfg);
    img_free(img);
    return rc;
}

int img_load(img_store_t *s, const char *hex, img_t **out, char **err)
{
    int rc = load_bare(s, hex, out, err);
    if (rc < 0)
        return rc;
    struct name_ent *v;
    size_t n = read_names(s, &v);
    attach_names(*out, v, n);
    free_names(v, n);
    return 0;
}

/* The one image whose id starts with prefix (hex). */
static int find_by_prefix(img_store_t *s, const char *prefix, char hex[65], char **err)
{
    int fd = openat(s->dfd, "images", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -ENOMEM;
    }
    size_t pl = strlen(prefix), found = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strlen(de->d_name) != 64 || !img_is_hex(de->d_name, 64))
            continue;
        if (strncmp(de->d_name, prefix, pl) == 0) {
            if (found++ == 0)
                memcpy(hex, de->d_name, 65);
        }
    }
    closedir(d);
    if (found == 1)
        return 0;
    if (found > 1) {
        if (err)
            *err =
                xasprintf("image id prefix %s matches %zu images; give more digits", prefix, found);
        return -EINVAL;
    }
    return -ENOENT;
}

/*
 * Resolves ref to an image (hex) and, if it was a name, *name (normalised,
 * malloc'd). -ENOENT with *err when nothing matches.
 */
static int resolve(img_store_t *s, const char *ref, char hex[65], char **name, char **err)
{
    char *norm = NULL, *nerr = NULL;
    int rc;
    *name = NULL;
    const char *idref = strncmp(ref, "sha256:", 7) == 0 ? ref + 7 : NULL;
    if (!idref) {
        rc = img_ref_normalize(ref, &norm, &nerr);
        if (rc == 0) {
            char *esc = img_name_escape(norm);
            char buf[80];
            int fd = openat(s->dfd, "names", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            ssize_t r = fd < 0 ? -1 : readlinkat(fd, esc, buf, sizeof(buf) - 1);
            if (fd >= 0)
                close(fd);
            free(esc);
            if (r == 64) {
                buf[64] = '\0';
                if (img_is_hex(buf, 64)) {
                    memcpy(hex, buf, 65);
                    *name = norm;
                    return 0;
                }
            }
        }
        /* Not a name: maybe an id prefix, as docker tries. */
        size_t n = strlen(ref);
        if (n < 4 || n > 64 || !img_is_hex(ref, n)) {
            if (rc < 0) {
                if (err)
                    *err = nerr;
                else
                    free(nerr);
                return rc;
            }
            if (err)
                *err = xasprintf("image \"%s\" not found (no %s in %s)", ref, norm, s->dir);
            free(norm);
            return -ENOENT;
        }
        idref = ref;
        free(nerr);
    }
    size_t n = strlen(idref);
    if (n < 4 || n > 64 || !img_is_hex(idref, n)) {
        free(norm);
        if (err)
            *err = xasprintf("invalid image id \"%s\": sha256: and 4 to 64 hex digits", ref);
        return -EINVAL;
    }
    rc = find_by_prefix(s, idref, hex, err);
    if (rc == -ENOENT && err)
        *err = norm ? xasprintf("image \"%s\" not found (no %s in %s)", ref, norm, s->dir)
                    : xasprintf("image \"%s\" not found in %s", ref, s->dir);
    free(norm);
    return rc;
}

int img_lookup(img_store_t *s, const char *ref, img_t **out, char **err)
{
    char hex[65], *name;
    *out = NULL;
    int rc = resolve(s, ref, hex, &name, err);
    if (rc < 0)
        return rc;
    free(name);
    return img_load(s, hex, out, err);
}

static int cmp_img(const void *a, const void *b)
{
    const img_t *x = *(img_t *const *)a, *y = *(img_t *const *)b;
    if (x->n_names && y->n_names)
        return strcmp(x->names[0], y->names[0]);
    if (x->n_names || y->n_names)
        return x->n_names ? -1 : 1;
    return strcmp(x->id, y->id);
}

int img_list(img_store_t *s, img_t ***out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    int fd = openat(s->dfd, "images", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -ENOMEM;
    }
    struct name_ent *names;
    size_t nn = read_names(s, &names), n = 0, cap = 0;
    img_t **v = NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strlen(de->d_name) != 64 || !img_is_hex(de->d_name, 64))
            continue;
        img_t *img;
        char *e = NULL;
        if (load_bare(s, de->d_name, &img, &e) < 0) {
            log_warn("image store %s: skipping image %s: %s", s->dir, de->d_name, e ? e : "?");
            free(e);
            continue;
        }
        attach_names(img, names, nn);
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            v = xrealloc(v, cap * sizeof(*v));
        }
        v[n++] = img;
    }
    closedir(d);
    free_names(names, nn);
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_img);
    *out = v;
    *nout = n;
    return 0;
}

/* 1 if the image's rootfs is part of a mount (an overlay lowerdir, a bind). */
static int rootfs_in_use(img_store_t *s, const char *hex)
{
    char *needle = xasprintf("%s/images/%s/rootfs", s->dir, hex);
    size_t nl = strlen(needle);
    int busy = 0;
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (f) {
        char *line = NULL;
        size_t cap = 0;
        while (!busy && getline(&line, &cap, f) > 0) {
            for (char *p = strstr(line, needle); p; p = strstr(p + 1, needle)) {
                char after = p[nl];
                if (after == ' ' || after == ',' || after == ':' || after == '/' || after == '\n' ||
                    after == '\0') {
                    busy = 1;
                    break;
                }
            }
        }
        free(line);
        fclose(f);
    }
    free(needle);
    return busy;
}

static int unlink_name(img_store_t *s, const char *name)
{
    char *esc = img_name_escape(name);
    int fd = openat(s->dfd, "names", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd < 0 || unlinkat(fd, esc, 0) < 0 ? -errno : 0;
    if (fd >= 0)
        close(fd);
    free(esc);
    return rc == -ENOENT ? 0 : rc;
}

/* Moves images/<hex> out of sight (one rename), then deletes it. */
static int delete_image(img_store_t *s, const char *hex, char **err)
{
    char *from = xasprintf("images/%s", hex);
    char *to = xasprintf("tmp/del-%s-%ld", hex, (long)getpid());
    int rc = 0;
    if (renameat(s->dfd, from, s->dfd, to) < 0) {
        rc = -errno;
        if (err)
            *err = xasprintf("cannot remove %s/%s: %s", s->dir, from, strerror(-rc));
        goto out;
    }
    rc = img_rm_rf_at(s->dfd, to);
    if (rc < 0)
        log_warn("image store: could not delete %s/%s: %s (retried at next open)", s->dir, to,
                 strerror(-rc));
    rc = 0;
out:
    free(from);
    free(to);
    return rc;
}

int img_remove(img_store_t *s, const char *ref, int flags, char removed_id[72], char **err)
{
    char hex[65], *name = NULL;
    struct name_ent *names = NULL;
    size_t nn = 0;
    if (removed_id)
        removed_id[0] = '\0';
    int lk = img_lock(s, err);
    if (lk < 0)
        return lk;
    int rc = resolve(s, ref, hex, &name, err);
    if (rc < 0)
        goto out;
    nn = read_names(s, &names);
    size_t others = 0;
    for (size_t i = 0; i < nn; i++)
        if (strcmp(names[i].hex, hex) == 0 && (!name || strcmp(names[i].name, name) != 0))
            others++;
    if (name && others > 0) {
        /* Only untag. */
        rc = unlink_name(s, name);
        if (rc < 0 && err)
            *err = xasprintf("cannot remove name %s: %s", name, strerror(-rc));
        goto out;
    }
    if (!(flags & IMG_RM_FORCE) && rootfs_in_use(s, hex)) {
        if (err)
            *err = xasprintf("image sha256:%.12s is in use by a container (its rootfs is mounted)",
                             hex);
        rc = -EBUSY;
        goto out;
    }
    for (size_t i = 0; i < nn; i++)
        if (strcmp(names[i].hex, hex) == 0 && (rc = unlink_name(s, names[i].name)) < 0) {
            if (err)
                *err = xasprintf("cannot remove name %s: %s", names[i].name, strerror(-rc));
            goto out;
        }
    rc = delete_image(s, hex, err);
    if (rc == 0 && removed_id)
        snprintf(removed_id, 72, "sha256:%s", hex);
    if (rc == 0)
        img_blobs_sweep(s, NULL);
out:
    free_names(names, nn);
    free(name);
    img_unlock(lk);
    return rc;
}
