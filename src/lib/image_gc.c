/*
 * image_gc: which images to delete when the image filesystem fills up or
 * images go unused too long (img_gc_plan, pure), and doing it to a store
 * (img_gc_run). See image_gc.h for the policy; it follows Kubernetes'
 * image_gc_manager.go.
 */
#include "config.h"

#include "image_gc.h"
#include "image_int.h"
#include "smap.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* ---- the plan ---- */

struct lru {
    const struct img_gc_item *items;
    size_t i;
};

/* Least recently used first (never used: 0, first), ties by first seen, then id. */
static int cmp_lru(const void *a, const void *b)
{
    const struct lru *x = a, *y = b;
    const struct img_gc_item *p = &x->items[x->i], *q = &y->items[y->i];
    if (p->last_used != q->last_used)
        return p->last_used < q->last_used ? -1 : 1;
    if (p->first_seen != q->first_seen)
        return p->first_seen < q->first_seen ? -1 : 1;
    return strcmp(p->id, q->id);
}

static int check_policy(const struct img_gc_policy *pol, char **err)
{
    if (pol->high < 0 || pol->high > 100) {
        *err = xasprintf("invalid HighThresholdPercent %d, must be in range [0-100]", pol->high);
        return -EINVAL;
    }
    if (pol->low < 0 || pol->low > 100) {
        *err = xasprintf("invalid LowThresholdPercent %d, must be in range [0-100]", pol->low);
        return -EINVAL;
    }
    if (pol->low > pol->high) {
        *err = xasprintf("LowThresholdPercent %d can not be higher than HighThresholdPercent %d",
                         pol->low, pol->high);
        return -EINVAL;
    }
    return 0;
}

/* The bytes removing it frees: its own, and its layers no other image left holds. */
static uint64_t release(smap_t *refs, const struct img_gc_item *it)
{
    uint64_t bytes = it->size;
    for (size_t l = 0; l < it->nlayers; l++) {
        uintptr_t c = (uintptr_t)smap_get(refs, it->layers[l]);
        if (c == 0)
            continue;
        smap_put(refs, it->layers[l], (void *)(c - 1));
        if (c == 1)
            bytes += it->layer_sizes ? it->layer_sizes[l] : 0;
    }
    return bytes;
}

static void plan_add(struct img_gc_plan *p, size_t i, enum img_gc_why why, uint64_t bytes)
{
    p->del[p->ndel] = i;
    p->why[p->ndel] = why;
    p->bytes[p->ndel++] = bytes;
}

int img_gc_plan(const struct img_gc_policy *pol, const struct img_gc_item *items, size_t n,
                uint64_t capacity, uint64_t available, int64_t now, int64_t began,
                struct img_gc_plan *out, char **err)
{
    memset(out, 0, sizeof(*out));
    int rc = check_policy(pol, err);
    if (rc < 0)
        return rc;
    if (capacity == 0) {
        *err = xstrdup("invalid capacity 0 on image filesystem");
        return -EINVAL;
    }
    out->del = xcalloc(n ? n : 1, sizeof(*out->del));
    out->why = xcalloc(n ? n : 1, sizeof(*out->why));
    out->bytes = xcalloc(n ? n : 1, sizeof(*out->bytes));
    smap_t *refs = smap_new();
    for (size_t i = 0; i < n; i++)
        for (size_t l = 0; l < items[i].nlayers; l++)
            smap_put(refs, items[i].layers[l],
                     (void *)((uintptr_t)smap_get(refs, items[i].layers[l]) + 1));
    /* The candidates, in eviction order. */
    struct lru *ord = xcalloc(n ? n : 1, sizeof(*ord));
    size_t nord = 0;
    for (size_t i = 0; i < n; i++)
        if (!items[i].in_use)
            ord[nord++] = (struct lru){items, i};
    qsort(ord, nord, sizeof(*ord), cmp_lru);
    bool *gone = xcalloc(n ? n : 1, sizeof(*gone));
    uint64_t avail = available;
    if (pol->max_age > 0 && now - began > pol->max_age) {
        for (size_t k = 0; k < nord; k++) {
            const struct img_gc_item *it = &items[ord[k].i];
            int64_t used = it->last_used ? it->last_used : it->first_seen;
            if (now - used <= pol->max_age)
                continue;
            uint64_t b = release(refs, it);
            avail += b;
            gone[ord[k].i] = true;
            plan_add(out, ord[k].i, IMG_GC_AGE, b);
        }
    }
    if (avail > capacity)
        avail = capacity;
    out->usage = 100 - (int)(avail * 100 / capacity);
    if (out->usage >= pol->high) {
        out->over = true;
        out->to_free = (int64_t)(capacity * (uint64_t)(100 - pol->low) / 100) - (int64_t)avail;
        for (size_t k = 0; k < nord; k++) {
            const struct img_gc_item *it = &items[ord[k].i];
            if (gone[ord[k].i] || it->last_used >= now)
                continue;
            if (pol->min_age > 0 && now - it->first_seen < pol->min_age)
                continue;
            uint64_t b = release(refs, it);
            out->freed += (int64_t)b;
            plan_add(out, ord[k].i, IMG_GC_SPACE, b);
            if (out->freed >= out->to_free)
                break;
        }
    }
    free(gone);
    free(ord);
    smap_free(refs, NULL);
    return 0;
}

void img_gc_plan_free(struct img_gc_plan *p)
{
    free(p->del);
    free(p->why);
    free(p->bytes);
    memset(p, 0, sizeof(*p));
}

/* ---- applying it ---- */

/* When the image arrived: meta.json's time, else its directory's. */
static int64_t first_seen(const img_t *img)
{
    struct stat st;
    if (img->imported > 0)
        return img->imported;
    if (stat(img->dir, &st) == 0)
        return (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    return 0;
}

/* Marks imgs[i] used for every reference in in_use that names it. */
static void find_in_use(img_store_t *s, img_t **imgs, size_t n, char *const *in_use, size_t nin,
                        bool *used)
{
    for (size_t r = 0; r < nin; r++) {
        img_t *x = NULL;
        if (!in_use[r] || !*in_use[r] || img_lookup(s, in_use[r], &x, NULL) < 0)
            continue;
        for (size_t i = 0; i < n; i++)
            if (!strcmp(imgs[i]->id, x->id))
                used[i] = true;
        img_free(x);
    }
}

static void add_error(struct img_gc_result *res, const char *msg)
{
    char *e = res->errors ? xasprintf("%s; %s", res->errors, msg) : xstrdup(msg);
    free(res->errors);
    res->errors = e;
}

/* Deletes what the plan says; an image used since (last-used at or after now) stays. */
static void apply(img_store_t *s, img_t **imgs, const struct img_gc_plan *p, int64_t now,
                  struct img_gc_result *res)
{
    res->removed = xcalloc(p->ndel ? p->ndel : 1, sizeof(*res->removed));
    for (size_t k = 0; k < p->ndel; k++) {
        const img_t *img = imgs[p->del[k]];
        char removed[72], *e = NULL;
        if (img_read_last_used(s, img->id + 7) >= now)
            continue;
        int rc = img_remove(s, img->id, 0, removed, &e);
        if (rc < 0) {
            char *msg = xasprintf("%s: %s", img->id, e ? e : strerror(-rc));
            add_error(res, msg);
            free(msg);
            free(e);
            continue;
        }
        struct img_gc_removed *r = &res->removed[res->nremoved++];
        snprintf(r->id, sizeof(r->id), "%s", img->id);
        r->name = img->n_names ? img_ref_familiar(img->names[0]) : NULL;
        r->size = p->bytes[k];
        r->why = p->why[k];
        if (r->why == IMG_GC_SPACE)
            res->freed += (int64_t)r->size;
    }
}

int img_gc_run(img_store_t *s, const struct img_gc_policy *pol, char *const *in_use, size_t nin,
               int64_t now, int64_t began, struct img_gc_result *res, char **err)
{
    memset(res, 0, sizeof(*res));
    img_t **imgs = NULL;
    size_t n = 0;
    int rc = img_list(s, &imgs, &n);
    if (rc < 0) {
        *err = xasprintf("image store %s: %s", img_store_dir(s), strerror(-rc));
        return rc;
    }
    bool *used = xcalloc(n ? n : 1, sizeof(*used));
    find_in_use(s, imgs, n, in_use, nin, used);
    struct img_gc_item *items = xcalloc(n ? n : 1, sizeof(*items));
    uint64_t **sizes = xcalloc(n ? n : 1, sizeof(*sizes));
    for (size_t i = 0; i < n; i++) {
        /* Its kept layer blobs go with the last image that lists them. */
        sizes[i] = xcalloc(imgs[i]->n_blobs ? imgs[i]->n_blobs : 1, sizeof(uint64_t));
        for (size_t j = 0; j < imgs[i]->n_blobs; j++)
            sizes[i][j] = img_blob_size(s, imgs[i]->blobs[j]);
        /* As the kubelet's detectImages: an image in use was last used now. */
        if (used[i] && img_mark_used(s, imgs[i]->id, now) == 0)
            imgs[i]->last_used = now;
        items[i] = (struct img_gc_item){.id = imgs[i]->id,
                                        .size = imgs[i]->size,
                                        .last_used = imgs[i]->last_used,
                                        .first_seen = first_seen(imgs[i]),
                                        .in_use = used[i],
                                        .layers = (const char *const *)imgs[i]->blobs,
                                        .layer_sizes = sizes[i],
                                        .nlayers = imgs[i]->n_blobs};
    }
    struct statvfs fs;
    struct img_gc_plan plan = {0};
    if (statvfs(img_store_dir(s), &fs) < 0) {
        rc = -errno;
        *err = xasprintf("statvfs %s: %s", img_store_dir(s), strerror(errno));
        goto out;
    }
    rc = img_gc_plan(pol, items, n, (uint64_t)fs.f_blocks * fs.f_frsize,
                     (uint64_t)fs.f_bavail * fs.f_frsize, now, began, &plan, err);
    if (rc < 0)
        goto out;
    res->usage = plan.usage;
    res->over = plan.over;
    res->to_free = plan.to_free;
    apply(s, imgs, &plan, now, res);
    img_gc_plan_free(&plan);
out:
    for (size_t i = 0; i < n; i++)
        free(sizes[i]);
    free(sizes);
    free(items);
    free(used);
    img_list_free(imgs, n);
    return rc;
}

void img_gc_result_free(struct img_gc_result *r)
{
    for (size_t i = 0; i < r->nremoved; i++)
        free(r->removed[i].name);
    free(r->removed);
    free(r->errors);
    memset(r, 0, sizeof(*r));
}

/* ---- what the kubelet's containers use ---- */

/* Line 6 of a container's meta file (pods.c build_dirs writes uid, name, init, restart,
 * image, image id, stop signal, one a line). */
static char *meta_image_id(int dfd, const char *name)
{
    char *path = xasprintf("%s/meta", name), buf[4096];
    int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return NULL;
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (r <= 0)
        return NULL;
    buf[r] = '\0';
    char *line = buf;
    for (int i = 0; i < 5 && line; i++) {
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    if (!line || strncmp(line, "sha256:", 7) != 0)
        return NULL;
    line[strcspn(line, "\n")] = '\0';
    return xstrdup(line);
}

size_t img_gc_kubelet_images(const char *root_dir, char ***out)
{
    *out = NULL;
    char *dir = xasprintf("%s/containers", root_dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (dfd < 0)
        return 0;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return 0;
    }
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *id = meta_image_id(dfd, de->d_name);
        if (!id)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = xrealloc(*out, cap * sizeof(**out));
        }
        (*out)[n++] = id;
    }
    closedir(d);
    return n;
}
