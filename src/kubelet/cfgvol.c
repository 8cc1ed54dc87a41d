/*
 * cfgvol: the pod's configMap and secret volumes, <pod dir>/volumes/<name>,
 * filled from the objects refs.c watches and written through
 * atomic_writer.c: the data's keys (or the items' paths) as files with
 * defaultMode (0644) or the item's mode. A secret volume is a tmpfs, so
 * its bytes never reach the disk, as Kubernetes does. Each sync writes the
 * volumes whose object changed since the last write (its resourceVersion);
 * that is how an update reaches the mounted files within a moment of the
 * watch event. A missing object that is optional gives an empty volume;
 * one that is not holds the pod's containers (FailedMount) until it
 * appears, and later disappearances leave the last contents in place, as
 * in Kubernetes.
 */
#include "config.h"
#include "kinds.h"
#include "klet.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

/* What a configMap or secret volume says, whichever it is. */
struct proj {
    enum podref_kind kind;
    const char *name;
    Coracle__V1__KeyToPath **items;
    size_t nitems;
    int mode;
    bool optional;
};

static bool proj_of(const Coracle__V1__Volume *v, struct proj *pj)
{
    const Coracle__V1__VolumeSource *src = v->volumesource;
    if (src && src->configmap) {
        const Coracle__V1__ConfigMapVolumeSource *c = src->configmap;
        *pj = (struct proj){PODREF_CONFIGMAP,
                            c->localobjectreference ? c->localobjectreference->name : NULL,
                            c->items,
                            c->n_items,
                            c->has_defaultmode ? c->defaultmode : 0644,
                            c->optional};
    } else if (src && src->secret) {
        const Coracle__V1__SecretVolumeSource *s = src->secret;
        *pj = (struct proj){PODREF_SECRET,
                            s->secretname,
                            s->items,
                            s->n_items,
                            s->has_defaultmode ? s->defaultmode : 0644,
                            s->optional};
    } else {
        return false;
    }
    if (!pj->name)
        pj->name = "";
    return true;
}

/* The files of the volume (Kubernetes' MakePayload): every key, or the items. */
static int payload(const struct proj *pj, const ProtobufCMessage *obj, struct klet_file **out,
                   size_t *n, char **err)
{
    struct klet_kv *kv = NULL;
    size_t nkv = obj ? klet_ref_data(obj, pj->kind, true, &kv) : 0;
    struct klet_file *f = xcalloc(nkv + pj->nitems + 1, sizeof *f);
    size_t nf = 0;
    if (!pj->nitems) {
        for (size_t i = 0; i < nkv; i++)
            f[nf++] = (struct klet_file){kv[i].key, kv[i].data, kv[i].len, pj->mode};
    }
    for (size_t i = 0; i < pj->nitems; i++) {
        const Coracle__V1__KeyToPath *it = pj->items[i];
        const struct klet_kv *e = klet_kv_find(kv, nkv, it->key ? it->key : "");
        if (!e) {
            if (pj->optional)
                continue;
            *err = pj->kind == PODREF_SECRET
                       ? xasprintf("secret references non-existent secret key: %s", it->key)
                       : xasprintf("configmap references non-existent config key: %s", it->key);
            free(f);
            free(kv);
            return -1;
        }
        f[nf++] = (struct klet_file){it->path ? it->path : "", e->data, e->len,
                                     it->has_mode ? it->mode : pj->mode};
    }
    free(kv);
    *out = f;
    *n = nf;
    return 0;
}

/* The volume's directory: 0777 as Kubernetes' emptyDir wrapper makes it; a tmpfs for a
 * secret. */
static int vol_dir(const char *path, enum podref_kind kind, char **err)
{
    if (mkdir(path, 0777) < 0 && errno != EEXIST) {
        *err = xasprintf("mkdir %s: %s", path, strerror(errno));
        return -1;
    }
    if (kind == PODREF_SECRET && !klet_mounted_at(path) &&
        mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0) {
        *err = xasprintf("mount tmpfs at %s: %s", path, strerror(errno));
        return -1;
    }
    if (kind != PODREF_SECRET)
        chmod(path, 0777);
    return 0;
}

/* Volume i: written (0) or left alone, 1 when waiting for its object, -1 with *err. */
static int vol_sync(struct klet_pod *p, size_t i, const struct proj *pj, char **err)
{
    const Coracle__V1__Volume *v = p->pod->spec->volumes[i];
    const ProtobufCMessage *obj;
    enum klet_ref_state st = klet_ref_get(p, pj->kind, pj->name, &obj);
    if (st == KREF_PENDING)
        return p->vol_rv[i] ? 0 : 1;
    if (st == KREF_MISSING && !pj->optional) {
        if (p->vol_rv[i])
            return 0; /* gone after it was written: the files stay */
        *err = klet_ref_missing(pj->kind, pj->name);
        return -1;
    }
    const Coracle__V1__ObjectMeta *m = obj ? kind_meta(obj) : NULL;
    const char *rv = m && m->resourceversion ? m->resourceversion : "-";
    if (p->vol_rv[i] && !strcmp(p->vol_rv[i], rv))
        return 0;
    struct klet_file *files;
    size_t n;
    if (payload(pj, obj, &files, &n, err) < 0)
        return -1;
    char *dir = xasprintf("%s/volumes/%s", p->dir, v->name);
    int rc = vol_dir(dir, pj->kind, err);
    if (rc == 0)
        rc = klet_atomic_write(dir, files, n, err);
    /* fsGroup: readable by the pod's group, as Kubernetes' read-only volumes */
    if (rc == 0)
        klet_fsgroup_volume(dir, p->pod->spec->securitycontext, true);
    free(dir);
    free(files);
    if (rc == 0) {
        free(p->vol_rv[i]);
        p->vol_rv[i] = xstrdup(rv);
    }
    return rc;
}

int klet_cfgvols_sync(struct klet_pod *p)
{
    const Coracle__V1__PodSpec *sp = p->pod->spec;
    if (!p->vol_rv && sp->n_volumes)
        p->vol_rv = xcalloc(sp->n_volumes, sizeof *p->vol_rv);
    int result = 0;
    for (size_t i = 0; i < sp->n_volumes; i++) {
        struct proj pj;
        if (!sp->volumes[i]->name || !proj_of(sp->volumes[i], &pj))
            continue;
        char *err = NULL;
        int rc = vol_sync(p, i, &pj, &err);
        if (rc < 0) {
            char *msg = xasprintf("MountVolume.SetUp failed for volume \"%s\" : %s",
                                  sp->volumes[i]->name, err);
            if (!p->vol_err || strcmp(p->vol_err, msg))
                klet_event(p->k, p, NULL, "Warning", "FailedMount", "%s", msg);
            free(p->vol_err);
            p->vol_err = msg;
            free(err);
        }
        /* an error counts only while the volume has never been written */
        if (rc != 0 && !p->vol_rv[i] && result >= 0)
            result = rc;
    }
    if (result == 0) {
        free(p->vol_err);
        p->vol_err = NULL;
    }
    return result;
}

void klet_cfgvols_free(struct klet_pod *p)
{
    for (size_t i = 0; p->vol_rv && i < p->pod->spec->n_volumes; i++)
        free(p->vol_rv[i]);
    free(p->vol_rv);
    p->vol_rv = NULL;
    free(p->vol_err);
    p->vol_err = NULL;
}
