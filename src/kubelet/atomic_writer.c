/*
 * atomic_writer: the files of a configMap or secret volume, written as
 * Kubernetes' AtomicWriter writes them, so that a reader never sees half
 * an update: the payload goes into a fresh directory ..<timestamp>.XXXXXX,
 * the symlink ..data is pointed at it by a rename (atomic), and the names
 * the user sees are symlinks through ..data (key -> ..data/key). Names
 * that are gone from the payload lose their symlink, then the old
 * directory goes. A payload equal to what is there (bytes and modes) is
 * not written again.
 *
 *   <dir>/..2026_12_07_12_00_00.ab12Cd/<path>   the files
 *   <dir>/..data -> ..2026_12_07_12_00_00.ab12Cd
 *   <dir>/<top> -> ..data/<top>                 one per top-level name
 */
#include "config.h"
#include "klet.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Kubernetes' validatePath: relative, no ".." element, not starting with "..". */
static bool path_ok(const char *p)
{
    if (!*p || *p == '/' || !strncmp(p, "..", 2))
        return false;
    for (const char *s = p; s; s = strchr(s, '/') ? strchr(s, '/') + 1 : NULL)
        if (!strncmp(s, "..", 2) && (s[2] == '/' || !s[2]))
            return false;
    return true;
}

/* The first path element of p (malloc'd). */
static char *top_of(const char *p)
{
    return xstrndup(p, strcspn(p, "/"));
}

/* Regular files below dir. */
static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = xasprintf("%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0)
            n += S_ISDIR(sb.st_mode) ? count_files(p) : S_ISREG(sb.st_mode);
        free(p);
    }
    closedir(d);
    return n;
}

/* Does the file at path hold exactly f's bytes, with f's mode? */
static bool same_file(const char *path, const struct klet_file *f)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    struct stat sb;
    bool same = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (size_t)sb.st_size == f->len &&
                (int)(sb.st_mode & 07777) == f->mode;
    char buf[8192];
    for (size_t off = 0; same && off < f->len;) {
        ssize_t r = read(fd, buf, sizeof buf);
        same = r > 0 && off + (size_t)r <= f->len && !memcmp(buf, f->data + off, (size_t)r);
        off += r > 0 ? (size_t)r : 0;
    }
    close(fd);
    return same;
}

static bool payload_same(const char *old, const struct klet_file *files, size_t n)
{
    if (count_files(old) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char *p = xasprintf("%s/%s", old, files[i].path);
        bool same = same_file(p, &files[i]);
        free(p);
        if (!same)
            return false;
    }
    return true;
}

static int mkdirs_for(const char *path)
{
    char *d = xstrdup(path);
    int rc = 0;
    for (char *s = strchr(d + 1, '/'); s && rc == 0; s = strchr(s + 1, '/')) {
        *s = 0;
        if (mkdir(d, 0755) < 0 && errno != EEXIST)
            rc = -1;
        *s = '/';
    }
    free(d);
    return rc;
}

static int write_file(const char *path, const struct klet_file *f)
{
    if (mkdirs_for(path) < 0)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = 0;
    for (size_t off = 0; off < f->len && rc == 0;) {
        ssize_t w = write(fd, f->data + off, f->len - off);
        if (w < 0 && errno != EINTR)
            rc = -1;
        off += w > 0 ? (size_t)w : 0;
    }
    /* the mode as given, whatever the umask */
    if (rc == 0 && fchmod(fd, (mode_t)f->mode) < 0)
        rc = -1;
    if (close(fd) < 0)
        rc = -1;
    return rc;
}

/* A new ..<timestamp>.XXXXXX under dir with the payload in it; its name in *ts (malloc'd). */
static int write_ts_dir(const char *dir, const struct klet_file *files, size_t n, char **ts,
                        char **err)
{
    char stamp[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "..%Y_%m_%d_%H_%M_%S.XXXXXX", &tm);
    char *path = xasprintf("%s/%s", dir, stamp);
    if (!mkdtemp(path) || chmod(path, 0755) < 0) {
        *err = xasprintf("mkdir %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char *fp = xasprintf("%s/%s", path, files[i].path);
        int rc = write_file(fp, &files[i]);
        if (rc < 0)
            *err = xasprintf("write %s: %s", fp, strerror(errno));
        free(fp);
        if (rc < 0) {
            klet_rmtree(path);
            free(path);
            return -1;
        }
    }
    *ts = xstrdup(strrchr(path, '/') + 1);
    free(path);
    return 0;
}

/* Points ..data at ts: a new symlink ..data_tmp renamed over it. */
static int swap_data(const char *dir, const char *ts, char **err)
{
    char *tmp = xasprintf("%s/..data_tmp", dir), *data = xasprintf("%s/..data", dir);
    unlink(tmp);
    int rc = symlink(ts, tmp) < 0 || rename(tmp, data) < 0 ? -1 : 0;
    if (rc < 0)
        *err = xasprintf("swap %s: %s", data, strerror(errno));
    free(tmp);
    free(data);
    return rc;
}

static bool top_in(const char *name, const struct klet_file *files, size_t n)
{
    size_t l = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (!strncmp(files[i].path, name, l) && (!files[i].path[l] || files[i].path[l] == '/'))
            return true;
    return false;
}

/* The user-visible symlinks: one for each new top-level name, none for names gone. */
static void user_links(const char *dir, const char *old, const struct klet_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *top = top_of(files[i].path);
        char *link = xasprintf("%s/%s", dir, top), *target = xasprintf("..data/%s", top);
        struct stat sb;
        if (lstat(link, &sb) < 0 && symlink(target, link) < 0)
            log_warn("symlink %s: %s", link, strerror(errno));
        free(link);
        free(target);
        free(top);
    }
    DIR *d = old ? opendir(old) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || top_in(e->d_name, files, n))
            continue;
        char *link = xasprintf("%s/%s", dir, e->d_name);
        unlink(link);
        free(link);
    }
    if (d)
        closedir(d);
}

int klet_atomic_write(const char *dir, const struct klet_file *files, size_t n, char **err)
{
    for (size_t i = 0; i < n; i++) {
        if (!path_ok(files[i].path)) {
            *err = xasprintf("invalid path \"%s\"", files[i].path);
            return -1;
        }
    }
    char *data = xasprintf("%s/..data", dir);
    char target[256];
    ssize_t tl = readlink(data, target, sizeof target - 1);
    free(data);
    char *old = NULL;
    if (tl > 0) {
        target[tl] = 0;
        old = xasprintf("%s/%s", dir, target);
        if (payload_same(old, files, n)) {
            free(old);
            return 0;
        }
    }
    char *ts = NULL;
    int rc = write_ts_dir(dir, files, n, &ts, err);
    if (rc == 0)
        rc = swap_data(dir, ts, err);
    if (rc == 0) {
        user_links(dir, old, files, n);
        if (old)
            klet_rmtree(old);
    } else if (ts) {
        char *p = xasprintf("%s/%s", dir, ts);
        klet_rmtree(p);
        free(p);
    }
    free(ts);
    free(old);
    return rc;
}
