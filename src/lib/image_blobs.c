/*
 * image_blobs: the store's kept registry blobs, blobs/sha256/<hex> (see
 * image.h). Registry pulls (oci_pull.c) put every blob there once it is
 * verified and take them from there instead of fetching them again, so a
 * second image on the same base layers fetches only its own. An image's
 * meta.json lists the layer blobs it was made from; a blob no image lists
 * (and that is no image's config) goes with img_blobs_sweep(), which
 * img_remove() runs after deleting an image.
 *
 * A pull holds blobs/lock shared from its first look at a kept blob until
 * its image is committed; a sweep takes it exclusively and without
 * waiting, and leaves the blobs for the next sweep if a pull is running.
 */
#include "config.h"

#include "image.h"
#include "image_int.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int open_lock(img_store_t *s)
{
    if (mkdirat(s->dfd, "blobs", 0700) < 0 && errno != EEXIST)
        return -errno;
    if (mkdirat(s->dfd, IMG_BLOBS_DIR, 0700) < 0 && errno != EEXIST)
        return -errno;
    int fd = openat(s->dfd, "blobs/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    return fd < 0 ? -errno : fd;
}

int img_blobs_hold(img_store_t *s)
{
    int fd = open_lock(s);
    if (fd < 0)
        return fd;
    while (flock(fd, LOCK_SH) < 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            return -e;
        }
    }
    return fd;
}

/* 1 if hex (64 digits) is an image's id or one of its layer blobs. */
static int used(img_t **imgs, size_t n, const char *hex)
{
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(imgs[i]->id + 7, hex))
            return 1;
        for (size_t j = 0; j < imgs[i]->n_blobs; j++)
            if (!strcmp(imgs[i]->blobs[j] + 7, hex))
                return 1;
    }
    return 0;
}

int img_blobs_sweep(img_store_t *s, uint64_t *freed)
{
    struct stat st;
    img_t **imgs = NULL;
    size_t n = 0;
    if (freed)
        *freed = 0;
    if (fstatat(s->dfd, IMG_BLOBS_DIR, &st, 0) < 0)
        return errno == ENOENT ? 0 : -errno;
    int lk = open_lock(s);
    if (lk < 0)
        return lk;
    if (flock(lk, LOCK_EX | LOCK_NB) < 0) { /* a pull is using them: the next sweep */
        close(lk);
        return 0;
    }
    int rc = img_list(s, &imgs, &n);
    int dfd = rc < 0 ? -1 : openat(s->dfd, IMG_BLOBS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
    if (!d) {
        rc = rc < 0 ? rc : -errno;
        if (dfd >= 0)
            close(dfd);
        goto out;
    }
    struct dirent *de;
    int count = 0;
    while ((de = readdir(d))) {
        if (strlen(de->d_name) != 64 || !img_is_hex(de->d_name, 64) || used(imgs, n, de->d_name))
            continue;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            unlinkat(dfd, de->d_name, 0) == 0) {
            count++;
            if (freed)
                *freed += (uint64_t)st.st_size;
        }
    }
    closedir(d);
    rc = count;
out:
    img_list_free(imgs, n);
    close(lk);
    return rc;
}

uint64_t img_blob_size(img_store_t *s, const char *digest)
{
    struct stat st;
    if (strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 71)
        return 0;
    char *rel = xasprintf(IMG_BLOBS_DIR "/%s", digest + 7);
    int ok = fstatat(s->dfd, rel, &st, 0) == 0 && S_ISREG(st.st_mode);
    free(rel);
    return ok ? (uint64_t)st.st_size : 0;
}
