/*
 * imgref: the kubelet's view of the local image store (src/lib/image.h):
 * a reference in, the read-only rootfs and the config (Entrypoint, Cmd,
 * Env, WorkingDir) out. No registry: a missing image is an error that
 * names it and says how to import it.
 */
#include "config.h"
#include "image.h"
#include "klet.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The store under cfg.image_dir, opened at the first lookup and kept open. */
static img_store_t *store_get(struct klet *k, char **err)
{
    if (k->images)
        return k->images;
    char *e = NULL;
    if (img_store_open(k->cfg.image_dir, IMG_STORE_CREATE, &k->images, &e) < 0) {
        *err = xasprintf("image store %s: %s", k->cfg.image_dir, e ? e : "cannot open");
        free(e);
        k->images = NULL;
        return NULL;
    }
    return k->images;
}

static char **strv_copy(char *const *v, size_t n)
{
    char **r = xcalloc(n + 1, sizeof *r);
    for (size_t i = 0; i < n; i++)
        r[i] = xstrdup(v[i]);
    return r;
}

char *klet_img_normalise(const char *ref)
{
    char *norm = NULL, *err = NULL;
    if (img_ref_normalize(ref, &norm, &err) < 0) {
        free(err);
        return xstrdup(ref);
    }
    char *fam = img_ref_familiar(norm);
    free(norm);
    return fam;
}

int klet_img_lookup(struct klet *k, const char *ref, struct klet_img *out, char **err)
{
    memset(out, 0, sizeof *out);
    img_store_t *s = store_get(k, err);
    if (!s)
        return -1;
    img_t *img = NULL;
    char *e = NULL;
    int rc = img_lookup(s, ref, &img, &e);
    if (rc == -ENOENT) {
        free(e);
        *err = xasprintf("image \"%s\" not found in the local image store %s (no registry "
                         "pulls): import it with `coraclectl image import FILE`",
                         ref, k->cfg.image_dir);
        return -1;
    }
    if (rc < 0) {
        *err = xasprintf("%s", e ? e : strerror(-rc));
        free(e);
        return -1;
    }
    out->ref = klet_img_normalise(ref);
    out->id = xstrdup(img->id);
    out->rootfs = xstrdup(img->rootfs);
    out->entrypoint = strv_copy(img->cfg.entrypoint, img->cfg.n_entrypoint);
    out->n_entrypoint = img->cfg.n_entrypoint;
    out->cmd = strv_copy(img->cfg.cmd, img->cfg.n_cmd);
    out->n_cmd = img->cfg.n_cmd;
    out->env = strv_copy(img->cfg.env, img->cfg.n_env);
    out->n_env = img->cfg.n_env;
    out->workdir = img->cfg.workdir ? xstrdup(img->cfg.workdir) : NULL;
    out->user = img->cfg.user && *img->cfg.user ? xstrdup(img->cfg.user) : NULL;
    out->stop_signal =
        img->cfg.stop_signal && *img->cfg.stop_signal ? xstrdup(img->cfg.stop_signal) : NULL;
    img_free(img);
    return 0;
}

void klet_img_mark_used(struct klet *k, const char *id)
{
    char *err = NULL;
    img_store_t *s = store_get(k, &err);
    int rc = s ? img_mark_used(s, id, now_ns()) : -1;
    if (rc < 0)
        log_warn("image %s: cannot record its use: %s", id, err ? err : strerror(-rc));
    free(err);
}

/* Largest first; equal sizes by id, so that an unchanged store makes an unchanged status. */
static int size_desc(const void *a, const void *b)
{
    const img_t *x = *(img_t *const *)a, *y = *(img_t *const *)b;
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return strcmp(x->id, y->id);
}

/* img's names for the status: "name@sha256:..." digests, then tags. */
static Coracle__V1__ContainerImage *status_image(const img_t *img)
{
    Coracle__V1__ContainerImage *ci = xcalloc(1, sizeof *ci);
    coracle__v1__container_image__init(ci);
    ci->names = xcalloc(KLET_STATUS_MAX_NAMES + 1, sizeof *ci->names); /* NULL-ended */
    for (int digests = 1; digests >= 0; digests--)
        for (size_t i = 0; i < img->n_names && ci->n_names < KLET_STATUS_MAX_NAMES; i++)
            if ((strchr(img->names[i], '@') != NULL) == digests)
                ci->names[ci->n_names++] = xstrdup(img->names[i]);
    ci->has_sizebytes = img->size > 0;
    ci->sizebytes = (int64_t)img->size;
    return ci;
}

Coracle__V1__ContainerImage **klet_img_status(struct klet *k, size_t *n)
{
    *n = 0;
    char *err = NULL;
    img_store_t *s = store_get(k, &err);
    img_t **imgs = NULL;
    size_t ni = 0;
    if (!s || img_list(s, &imgs, &ni) < 0) {
        free(err);
        return NULL;
    }
    if (ni > 1) /* qsort's array may not be NULL, even empty */
        qsort(imgs, ni, sizeof *imgs, size_desc);
    size_t keep = ni < KLET_STATUS_MAX_IMAGES ? ni : KLET_STATUS_MAX_IMAGES;
    Coracle__V1__ContainerImage **v = xcalloc(keep + 1, sizeof *v);
    for (size_t i = 0; i < keep; i++)
        v[i] = status_image(imgs[i]);
    img_list_free(imgs, ni);
    *n = keep;
    return v;
}

void klet_img_status_free(Coracle__V1__ContainerImage **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        klet_strv_free(v[i]->names);
        free(v[i]);
    }
    free(v);
}

void klet_img_free(struct klet_img *img)
{
    free(img->ref);
    free(img->id);
    free(img->rootfs);
    klet_strv_free(img->entrypoint);
    klet_strv_free(img->cmd);
    klet_strv_free(img->env);
    free(img->workdir);
    free(img->user);
    free(img->stop_signal);
    memset(img, 0, sizeof *img);
}
