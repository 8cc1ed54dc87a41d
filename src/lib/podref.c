/*
 * podref: the ConfigMaps and Secrets a pod refers to. See podref.h.
 */
#include "config.h"
#include "podref.h"

#include <string.h>

static const char *lor_name(const Coracle__V1__LocalObjectReference *r)
{
    return r && r->name && *r->name ? r->name : NULL;
}

typedef int (*podref_fn)(enum podref_kind kind, const char *name, void *arg);

static int visit(podref_fn fn, void *arg, enum podref_kind kind, const char *name)
{
    return name && *name ? fn(kind, name, arg) : 0;
}

static int container_refs(const Coracle__V1__Container *c, podref_fn fn, void *arg)
{
    int rc = 0;
    for (size_t i = 0; i < c->n_envfrom && !rc; i++) {
        const Coracle__V1__EnvFromSource *ef = c->envfrom[i];
        if (ef->configmapref)
            rc = visit(fn, arg, PODREF_CONFIGMAP, lor_name(ef->configmapref->localobjectreference));
        if (!rc && ef->secretref)
            rc = visit(fn, arg, PODREF_SECRET, lor_name(ef->secretref->localobjectreference));
    }
    for (size_t i = 0; i < c->n_env && !rc; i++) {
        const Coracle__V1__EnvVarSource *vf = c->env[i]->valuefrom;
        if (vf && vf->configmapkeyref)
            rc = visit(fn, arg, PODREF_CONFIGMAP,
                       lor_name(vf->configmapkeyref->localobjectreference));
        if (!rc && vf && vf->secretkeyref)
            rc = visit(fn, arg, PODREF_SECRET, lor_name(vf->secretkeyref->localobjectreference));
    }
    return rc;
}

int podref_each(const Coracle__V1__PodSpec *spec, podref_fn fn, void *arg)
{
    int rc = 0;
    for (size_t i = 0; spec && i < spec->n_volumes && !rc; i++) {
        const Coracle__V1__VolumeSource *src = spec->volumes[i]->volumesource;
        if (src && src->configmap)
            rc = visit(fn, arg, PODREF_CONFIGMAP, lor_name(src->configmap->localobjectreference));
        if (!rc && src && src->secret)
            rc = visit(fn, arg, PODREF_SECRET, src->secret->secretname);
        for (size_t j = 0; !rc && src && src->projected && j < src->projected->n_sources; j++) {
            const Coracle__V1__VolumeProjection *vp = src->projected->sources[j];
            if (vp->configmap)
                rc =
                    visit(fn, arg, PODREF_CONFIGMAP, lor_name(vp->configmap->localobjectreference));
            if (!rc && vp->secret)
                rc = visit(fn, arg, PODREF_SECRET, lor_name(vp->secret->localobjectreference));
        }
    }
    /* the kubelet reads these to pull (and the node authorizer lets it) */
    for (size_t i = 0; spec && i < spec->n_imagepullsecrets && !rc; i++)
        rc = visit(fn, arg, PODREF_SECRET, lor_name(spec->imagepullsecrets[i]));
    for (size_t i = 0; spec && i < spec->n_initcontainers && !rc; i++)
        rc = container_refs(spec->initcontainers[i], fn, arg);
    for (size_t i = 0; spec && i < spec->n_containers && !rc; i++)
        rc = container_refs(spec->containers[i], fn, arg);
    return rc;
}

struct uses {
    enum podref_kind kind;
    const char *name;
};

static int is_it(enum podref_kind kind, const char *name, void *arg)
{
    const struct uses *u = arg;
    return kind == u->kind && !strcmp(name, u->name);
}

bool podref_uses(const Coracle__V1__PodSpec *spec, enum podref_kind kind, const char *name)
{
    struct uses u = {kind, name};
    return podref_each(spec, is_it, &u) != 0;
}
