/*
 * image_gc: garbage collection of the node's image store (image.h), as
 * Kubernetes' kubelet image manager does it (pkg/kubelet/images/
 * image_gc_manager.go), and `coraclectl image prune`.
 *
 * The decision is one pure function, img_gc_plan: the images (size, when
 * last used and first seen, in use or not), the policy and the image
 * filesystem's capacity and free bytes in; which images to delete, in
 * order, out. Policy, as the kubelet's:
 *   - images in use are never chosen;
 *   - with max_age set, once the collector has run longer than max_age,
 *     every image not used for more than max_age goes (an image never used
 *     counts from when it was first seen);
 *   - when usage (100 - available*100/capacity, after the age deletions)
 *     is at or above high percent, images go in least recently used order
 *     (never used first, ties by first seen) until capacity*(100-low)/100
 *     - available bytes are freed; images first seen less than min_age ago
 *     or used at or after now are skipped.
 * Bytes an image frees: its own size plus the layers it shares with other
 * images (img_gc_item.layers) that no image left holds: a shared layer is
 * freed with the last image that uses it.
 *
 * img_gc_run applies it to a store: lists the images, marks the in-use ones
 * used now (their last-used time is what orders evictions), measures the
 * filesystem (statvfs), plans and deletes. It blocks for as long as the
 * deletions take: the kubelet runs it in a child process.
 *
 * Errors: 0 or a negative errno; *err (malloc'd, the caller frees) says why.
 */
#ifndef CORACLE_IMAGE_GC_H
#define CORACLE_IMAGE_GC_H

#include "image.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One image as the collector weighs it; pointers borrowed. */
struct img_gc_item {
    const char *id;            /* "sha256:<hex>" */
    uint64_t size;             /* bytes its removal frees, besides shared layers */
    const char *const *layers; /* digests of layers it may share with other images */
    const uint64_t *layer_sizes;
    size_t nlayers;
    int64_t last_used;  /* ns since the epoch; 0: never used */
    int64_t first_seen; /* ns since the epoch it arrived */
    bool in_use;        /* a container (running, created or about to be) uses it */
};

struct img_gc_policy {
    int high, low;   /* percent of the image filesystem (85, 80) */
    int64_t min_age; /* ns: younger images are kept (2m) */
    int64_t max_age; /* ns: images unused longer go; 0: off */
};

/* Why an image was chosen. */
enum img_gc_why { IMG_GC_AGE = 1, IMG_GC_SPACE = 2 };

struct img_gc_plan {
    size_t *del; /* indices into the items, in the order to delete them */
    enum img_gc_why *why;
    uint64_t *bytes; /* what each deletion frees (shared layers with the last user) */
    size_t ndel;
    int usage;       /* percent in use, after the age deletions */
    bool over;       /* usage >= high: space had to be freed */
    int64_t to_free; /* over: the bytes wanted */
    int64_t freed;   /* over: the bytes the IMG_GC_SPACE deletions free */
};

/*
 * The plan for items at now (ns since the epoch); began: when the
 * collector started (max_age waits that long). capacity and available in
 * bytes. Fills *out (release with img_gc_plan_free). -EINVAL with *err for
 * a capacity of 0 ("invalid capacity 0 on image filesystem", Kubernetes'
 * InvalidDiskCapacity) or thresholds out of order.
 */
int img_gc_plan(const struct img_gc_policy *pol, const struct img_gc_item *items, size_t n,
                uint64_t capacity, uint64_t available, int64_t now, int64_t began,
                struct img_gc_plan *out, char **err);
void img_gc_plan_free(struct img_gc_plan *p);

/* What img_gc_run did. */
struct img_gc_removed {
    char id[72];
    char *name; /* its first name (familiar form), or NULL; malloc'd */
    uint64_t size;
    enum img_gc_why why;
};
struct img_gc_result {
    struct img_gc_removed *removed;
    size_t nremoved;
    int usage;
    bool over;
    int64_t to_free, freed; /* as in the plan; freed counts only what went */
    char *errors;           /* deletions that failed, "; " separated, or NULL */
};

/*
 * Collects garbage in s as pol says. in_use: image references (names or
 * ids) containers use; those that name no image are ignored. now and
 * began as for img_gc_plan. An image that became used after the plan
 * (last-used at or after now) is skipped. 0 with *res filled (release with
 * img_gc_result_free; deletions that failed are in res->errors), or a
 * negative errno with *err when the store or filesystem cannot be read.
 */
int img_gc_run(img_store_t *s, const struct img_gc_policy *pol, char *const *in_use, size_t nin,
               int64_t now, int64_t began, struct img_gc_result *res, char **err);
void img_gc_result_free(struct img_gc_result *r);

/*
 * The ids of the images the kubelet's containers under root_dir use (its
 * <root>/containers/<id>/meta records, whatever their state), as *out
 * (malloc'd strings in a malloc'd array; free each, then the array).
 * Returns the count (0 when the directory is missing).
 */
size_t img_gc_kubelet_images(const char *root_dir, char ***out);

#endif
