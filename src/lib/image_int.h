/*
 * image_int: what image.c (store, lookup, list, remove) and image_import.c
 * (import, unpack, drop-in) share. Not for other modules: use image.h.
 */
#ifndef CORACLE_IMAGE_INT_H
#define CORACLE_IMAGE_INT_H

#include "image.h"

#include <stdint.h>
#include <sys/types.h>

struct img_store {
    char *dir; /* absolute, no trailing '/' */
    int dfd;   /* O_PATH-like directory fd of dir */
};

/* Where kept registry blobs live (image_blobs.c). */
#define IMG_BLOBS_DIR "blobs/sha256"
/* Holds the kept blobs against img_blobs_sweep() (a shared flock on blobs/lock, creating
 * blobs/sha256/ if needed): the fd, released with img_unlock(), or a negative errno. */
int img_blobs_hold(img_store_t *s);

/* Limits for the small JSON files of an image. */
#define IMG_JSON_MAX (4u << 20)

/* names/ entry for a normalised name: '%' -> "%25", '/' -> "%2F". Malloc'd. */
char *img_name_escape(const char *name);
char *img_name_unescape(const char *esc);

/* Takes / releases the store's write lock (flock on <dir>/lock). */
int img_lock(img_store_t *s, char **err);
void img_unlock(int fd);

/* rm -rf of name under dirfd, never following symlinks. 0 or -errno (ENOENT is 0). */
int img_rm_rf_at(int dirfd, const char *name);

/* Loads images/<hex> (64 hex digits). */
int img_load(img_store_t *s, const char *hex, img_t **out, char **err);

/* images/<hex>/last-used (ns since the epoch), or 0 when never recorded. */
int64_t img_read_last_used(img_store_t *s, const char *hex);

/* 1 if s is n lower-case hex digits. */
int img_is_hex(const char *s, size_t n);

/* Writes data to dirfd/name atomically (name.tmp, fsync, rename). */
int img_write_file_at(int dirfd, const char *name, const void *data, size_t len);

/* One tar stream to unpack (image_unpack.c). */
struct img_unpack {
    const char *dest;   /* an empty directory, absolute and realpath'd */
    int skip_whiteouts; /* leave ".wh.*" members out (a bottom layer has nothing to hide) */
    /* The bytes come from read(read_arg, buf, len) when set (0 at the end, -1 with errno),
     * else from the fd given. */
    ssize_t (*read)(void *read_arg, void *buf, size_t len);
    void *read_arg;
    void (*progress)(uint64_t done, void *arg); /* bytes read so far; may be NULL */
    void *arg;
    /* Out, on success: */
    char blob_hex[65]; /* sha256 of the bytes as read */
    char diff_hex[65]; /* sha256 of the uncompressed tar */
    int compressed;    /* gzip, zstd, xz or bzip2 was undone */
};
/*
 * Unpacks the tar (plain or compressed, found from its magic) read from fd (or u->read) into
 * u->dest, refusing members and hard links that would land outside it. Reads its source to the
 * end, so the digests cover every byte. 0, or a negative errno with *err (malloc'd, what
 * libarchive or the check said, without the file's name). A failure leaves what was unpacked.
 */
int img_unpack(int fd, struct img_unpack *u, char **err);

#endif
