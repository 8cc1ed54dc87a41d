/*
 * image_int: what image.c (store, lookup, list, remove) and image_import.c
 * (import, unpack, drop-in) share. Not for other modules: use image.h.
 */
#ifndef CORACLE_IMAGE_INT_H
#define CORACLE_IMAGE_INT_H

#include "image.h"

struct img_store {
    char *dir; /* absolute, no trailing '/' */
    int dfd;   /* O_PATH-like directory fd of dir */
};

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

#endif
