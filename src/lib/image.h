/*
 * image: the node's local image store, shared by coracle-kubelet (lookups
 * on every container start, drop-in imports at start) and `coraclectl
 * image` (import, ls, rm). No registry: images arrive as files, either
 * docker-archive tarballs (`docker save`: manifest.json with Config,
 * RepoTags, Layers) or OCI image layouts (oci-layout, index.json,
 * blobs/sha256/...), each as a directory, a .tar or a compressed tar.
 *
 * An image is its id ("sha256:" + the sha256 of its config JSON), its
 * names (normalised references, "docker.io/library/nginx:1.14.2"), its
 * config (entrypoint, cmd, env, ...) and ONE shared read-only rootfs with
 * the layers applied in order (whiteouts ".wh.NAME" and opaque directories
 * ".wh..wh..opq" handled). Containers must not write into it: the kubelet
 * mounts it as an overlayfs lowerdir.
 *
 * On disk, under the store's directory:
 *   images/<hex>/config.json   the config blob exactly as imported
 *   images/<hex>/meta.json     {"size":N,"layers":N,"imported":"...","source":"..."}
 *   images/<hex>/last-used     when a container last used it: ns since the epoch,
 *                              decimal (img_mark_used; absent: never used)
 *   images/<hex>/rootfs/       the unpacked root filesystem
 *   images/<hex>/meta.json     also "blobs": the digests of the layer blobs it was
 *                              made from, when known (registry pulls, OCI layouts)
 *   names/<escaped name>       symlink -> <hex> ('/' as "%2F", '%' as "%25")
 *   blobs/sha256/<hex>         registry blobs (configs and compressed layers) kept
 *                              verified, so another image on the same layers does
 *                              not fetch them again; each costs its compressed size
 *                              on disk besides the unpacked rootfs; removed when no
 *                              image lists it (img_blobs_sweep)
 *   import/                    drop-in folder, see img_import_dropin()
 *   tmp/                       imports in progress (renamed into images/)
 *   lock                       flock()ed while an import commits or rm runs
 * An image directory appears by one rename() when complete and names are
 * (re)pointed by rename() of a fresh symlink, so readers, which take no
 * lock, never see half an image. A lookup is a readlink() plus reading the
 * small config.json.
 *
 * Layers are unpacked in-process by libarchive (image_unpack.c, no network).
 * All functions are synchronous and may block (import: for as long as the
 * unpacking takes); none is thread-safe on one store handle.
 *
 * Errors: functions return 0 (or a count) on success and a negative errno
 * value on failure: -ENOENT (no such image/name/file), -EINVAL (bad
 * reference or unknown archive format), -EBADMSG (corrupt archive or
 * metadata, digest mismatch), -EBUSY (image in use), -EIO/-ENOSPC/...
 * (system errors). Where a function takes `char **err`, a failure also
 * sets *err to a malloc'd message naming what and where (the caller frees
 * it); err may be NULL.
 */
#ifndef CORACLE_IMAGE_H
#define CORACLE_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The kubelet's default; coraclectl uses $CORACLE_IMAGE_DIR, then this. */
#define IMG_DEFAULT_DIR "/var/lib/coracle/kubelet/images"

typedef struct img_store img_store_t;

/* The parts of an image config (config.json's "config") a runtime needs.
 * Every pointer is owned by the img_t holding it. Absent arrays have n 0
 * (and NULL pointers); absent strings are NULL. */
struct img_config {
    char **entrypoint;
    size_t n_entrypoint;
    char **cmd;
    size_t n_cmd;
    char **env; /* "KEY=value" */
    size_t n_env;
    char *workdir;
    char *user;        /* "uid", "uid:gid", "name", "name:group" as the image says */
    char *stop_signal; /* "SIGQUIT" */
    char **label_keys; /* n_labels parallel arrays */
    char **label_values;
    size_t n_labels;
    char **exposed_ports; /* "80/tcp" */
    size_t n_exposed_ports;
    char *os, *architecture;
};

typedef struct img {
    char id[72];  /* "sha256:<64 hex>" */
    char *dir;    /* <store>/images/<hex> */
    char *rootfs; /* <store>/images/<hex>/rootfs: read-only, shared */
    char **names; /* normalised names pointing at this image, sorted */
    size_t n_names;
    uint64_t size;     /* bytes of the unpacked rootfs (regular files) */
    int layers;        /* how many layers were applied */
    int64_t created;   /* the config's "created", seconds since the epoch; 0 if absent */
    int64_t imported;  /* ns since the epoch it arrived in the store (meta.json); 0 unknown */
    int64_t last_used; /* ns since the epoch a container last used it; 0: never */
    char **blobs;      /* "sha256:<hex>" of its layer blobs (meta.json), or none */
    size_t n_blobs;
    struct img_config cfg;
} img_t;

/* Flags of img_store_open(). */
#define IMG_STORE_CREATE 1 /* create the directory tree if missing */

/*
 * Opens the store at dir (NULL: IMG_DEFAULT_DIR). Without IMG_STORE_CREATE
 * a missing store is -ENOENT. With it, also removes what crashed imports
 * left in tmp/. *out is freed with img_store_close(). The handle keeps no
 * file descriptors open besides one on the directory.
 */
int img_store_open(const char *dir, int flags, img_store_t **out, char **err);
void img_store_close(img_store_t *s);
/* The store's directory; owned by the store. */
const char *img_store_dir(const img_store_t *s);

/*
 * Finds the image a reference names and loads it. ref is a name in any
 * form Docker accepts ("nginx", "nginx:1.14.2", "docker.io/library/nginx",
 * "progrium/busybox", "localhost:5000/x:y"), or an image id ("sha256:<hex>"),
 * or a unique prefix of at least 4 hex digits of one. Returns 0 with *out
 * (free with img_free()), -ENOENT if no image has that name, -EINVAL with
 * *err for a malformed reference, -EBADMSG if the image's files are damaged.
 */
int img_lookup(img_store_t *s, const char *ref, img_t **out, char **err);
void img_free(img_t *img);

/*
 * Every image, sorted by their first name (unnamed last). *out is an array
 * of *n images; free it with img_list_free(). Damaged images are skipped
 * with a warning.
 */
int img_list(img_store_t *s, img_t ***out, size_t *n);
void img_list_free(img_t **imgs, size_t n);

/* Flags of img_remove(). */
#define IMG_RM_FORCE 1 /* remove even if a mount uses the rootfs */

/*
 * Removes a reference, as `docker rmi`: a name is untagged, and the image
 * itself goes when no name is left; an id (or id prefix) removes the image
 * and all its names. An image whose rootfs appears in /proc/self/mountinfo
 * (the kubelet's overlay mounts) is refused with -EBUSY unless
 * IMG_RM_FORCE; its names are then left as they were. *removed_id, if not
 * NULL, gets the id of the image deleted ("" if only a name went). When an
 * image went, the kept blobs no image lists any more go too (img_blobs_sweep).
 */
int img_remove(img_store_t *s, const char *ref, int flags, char removed_id[72], char **err);

/*
 * Deletes the kept blobs (blobs/sha256/) that no image lists and that are no
 * image's config; *freed (may be NULL) gets their bytes. While a pull holds
 * the blobs it does nothing (the next sweep frees them). The count of blobs
 * deleted, or a negative errno.
 */
int img_blobs_sweep(img_store_t *s, uint64_t *freed);
/* Bytes of the kept blob "sha256:<hex>" on disk; 0 if it is not kept. */
uint64_t img_blob_size(img_store_t *s, const char *digest);

/*
 * Records that a container uses the image id ("sha256:<hex>") at when (ns
 * since the epoch): images/<hex>/last-used, written atomically and synced,
 * so image garbage collection (image_gc.h) evicts the least recently used
 * first across restarts. 0, -ENOENT if the image is gone, or -errno.
 */
int img_mark_used(img_store_t *s, const char *id, int64_t when);

/* Progress of an import, for display. Strings are borrowed for the call. */
enum img_phase {
    IMG_PH_READ,   /* reading the archive: done/total bytes of the file */
    IMG_PH_LAYER,  /* unpacking layer `layer` of `layers`: done/total bytes of its blob */
    IMG_PH_COMMIT, /* the image `name` (may be NULL) is complete, being renamed in */
    IMG_PH_EXISTS, /* the image was already in the store; only names were updated */
};
struct img_progress {
    enum img_phase phase;
    const char *name;  /* COMMIT/EXISTS: first name, short ("nginx:1.14.2"); or NULL */
    int layer, layers; /* 1-based */
    uint64_t done, total;
};
typedef void (*img_progress_fn)(const struct img_progress *p, void *arg);

struct img_import_opts {
    const char *tag;          /* also name the image(s) this (normalised); may be NULL */
    img_progress_fn progress; /* may be NULL */
    void *arg;
    /* Layers still arriving (a registry pull streams them): when set, the unpacker reads a
     * layer blob with the digest blob_hex through this, as read(2) on fd would (which the
     * hook may wait for), and the blob's size on disk is not compared with the manifest's
     * before (its digest and size are checked after). May be NULL. */
    ssize_t (*layer_read)(void *layer_arg, const char *blob_hex, int fd, void *buf, size_t len);
    void *layer_arg;
};

/*
 * Imports every image of the archive at path (a file: tar, tar.gz, tar.zst,
 * tar.xz, tar.bz2; or a directory) into the store. opts may be NULL.
 * Verifies what it can: the config's sha256 (the id), OCI blob digests,
 * every layer's diff_id (its uncompressed sha256), the layer count against
 * rootfs.diff_ids. A name already pointing at another image is moved to
 * the new one (the old image stays, unnamed, until removed). On success
 * returns 0 and, if out is not NULL, *out and *n are the imported images
 * (free with img_list_free()). On failure the store is as it was.
 */
int img_import(img_store_t *s, const char *path, const struct img_import_opts *opts, img_t ***out,
               size_t *n, char **err);

/*
 * Points name (any form img_ref_normalize() accepts) at the image whose id is
 * "sha256:<hex>", already in the store (a pull that found the image present).
 * -ENOENT if it is not there.
 */
int img_tag(img_store_t *s, const char *hex, const char *name, char **err);

/*
 * The kubelet calls this at start: imports every file in <store>/import/
 * (not starting with '.') it has not imported before in its present size
 * and mtime (remembered in import/.imported), logging progress and errors
 * with log_info/log_err. The files are left where they are. Returns the
 * number of files imported, or a negative errno if the folder cannot be
 * read (a missing folder is created and counts as empty).
 */
int img_import_dropin(img_store_t *s);

/*
 * Normalises a reference as Docker does: "nginx" -> "docker.io/library/
 * nginx:latest", "progrium/busybox" -> "docker.io/progrium/busybox:latest",
 * "index.docker.io/x" -> "docker.io/library/x:latest", "h:5000/a/b" ->
 * "h:5000/a/b:latest", "x@sha256:<hex>" kept with its digest and no
 * default tag. Refuses upper-case repositories, empty parts, bad tags and
 * digests, with *err saying why. *out is malloc'd.
 */
int img_ref_normalize(const char *ref, char **out, char **err);
/* The short form Docker shows: "docker.io/library/nginx:1.14.2" ->
 * "nginx:1.14.2", "docker.io/progrium/busybox:latest" -> "progrium/busybox:latest".
 * Malloc'd. */
char *img_ref_familiar(const char *normalized);
/* Splits a normalised name into repository and tag (or digest), both malloc'd:
 * "docker.io/library/nginx:1.14.2" -> "docker.io/library/nginx", "1.14.2". */
void img_ref_split(const char *normalized, char **repo, char **tag);

/* "sha256:abcd..." -> "abcd..." (12 hex digits), into buf[13]. */
const char *img_short_id(const char *id, char buf[13]);
/* "12.3 MiB" style, into buf[16]. */
const char *img_human_size(uint64_t bytes, char buf[16]);

#endif
