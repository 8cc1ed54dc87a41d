/*
 * projvol: the pod's projected and downwardAPI volumes,
 * <pod dir>/volumes/<name>, written through atomic_writer.c as Kubernetes'
 * projected and downwardAPI plugins do. A projected volume joins its
 * sources' files: secret and configMap keys (the objects refs.c watches),
 * downwardAPI items (the pod's name, namespace, uid, labels, annotations,
 * a container's resources), and serviceAccountToken: a token from
 * TokenRequest bound to the pod, fetched by the kubelet as the node
 * (the apiserver allows it only for pods bound here) and refreshed once
 * 80% of its lifetime or 24 hours have passed, as the kubelet's token
 * manager does; it lives only in the pod's volume (a tmpfs, mode 0600)
 * and is never logged. Every sync recomputes the payload; the atomic
 * writer leaves the files alone when nothing changed, so a source's change
 * reaches the files within a moment of the watch event.
 */
#include "config.h"
#include "buf.h"
#include "json.h"
#include "klet.h"
#include "kinds.h"
#include "podfield.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define NS 1000000000LL
#define TOKEN_MAX_WAIT_S (24 * 3600) /* the kubelet refreshes at least daily */

/* One token a pod's volumes use: its audience and requested lifetime. */
struct klet_tok {
    struct klet_pod *p; /* NULL once the pod is gone while a request is in flight */
    char *aud;
    int64_t exp_s;
    char *token; /* the current token, or NULL before the first */
    int64_t got_ns, expires_ns;
    bool inflight;
    int64_t retry_ns; /* after a failure: not asked again before */
    char *err;        /* the last failure, for FailedMount */
};

/* What a file's bytes are (owned by the payload being built). */
struct pfile {
    char *path;
    char *data;
    size_t len;
    int mode;
};

struct payload {
    struct pfile *f;
    size_t n;
};

static void add_file(struct payload *pl, const char *path, const void *data, size_t len, int mode)
{
    pl->f = xrealloc(pl->f, (pl->n + 1) * sizeof(*pl->f));
    pl->f[pl->n++] = (struct pfile){xstrdup(path), xmemdup(data, len + 1), len, mode};
    pl->f[pl->n - 1].data[len] = '\0';
}

static void payload_free(struct payload *pl)
{
    for (size_t i = 0; i < pl->n; i++) {
        free(pl->f[i].path);
        free(pl->f[i].data);
    }
    free(pl->f);
}

/* ------------------------------------------------------------ tokens */

static void tok_free(struct klet_tok *t)
{
    free(t->aud);
    free(t->token);
    free(t->err);
    free(t);
}

static struct klet_tok *tok_find(struct klet_pod *p, const char *aud, int64_t exp_s)
{
    for (size_t i = 0; i < p->ntoks; i++)
        if (!strcmp(p->toks[i]->aud, aud) && p->toks[i]->exp_s == exp_s)
            return p->toks[i];
    struct klet_tok *t = xcalloc(1, sizeof(*t));
    t->p = p;
    t->aud = xstrdup(aud);
    t->exp_s = exp_s;
    p->toks = xrealloc(p->toks, (p->ntoks + 1) * sizeof(*p->toks));
    p->toks[p->ntoks++] = t;
    return t;
}

/* When t should be refreshed: 80% of its lifetime, at most 24 h after it was issued. */
static int64_t tok_refresh_at(const struct klet_tok *t)
{
    int64_t ttl = t->expires_ns - t->got_ns;
    int64_t wait = ttl / 10 * 8;
    if (wait > TOKEN_MAX_WAIT_S * NS)
        wait = TOKEN_MAX_WAIT_S * NS;
    return t->got_ns + wait;
}

/* Kicks the pod when the earliest of its tokens is due. */
static void tok_arm(struct klet_pod *p)
{
    int64_t due = 0;
    for (size_t i = 0; i < p->ntoks; i++)
        if (p->toks[i]->token && (!due || tok_refresh_at(p->toks[i]) < due))
            due = tok_refresh_at(p->toks[i]);
    if (!due || !p->tok_ev)
        return;
    int64_t left = due - now_ns();
    if (left < 0)
        left = 0;
    struct timeval tv = {(time_t)(left / NS), (suseconds_t)(left % NS / 1000) + 1000};
    event_add(p->tok_ev, &tv);
}

static void tok_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    klet_pod_kick(arg);
}

static void tok_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)call;
    struct klet_tok *t = arg;
    Coracle__V1__TokenRequest *tr = coracle__v1__token_request__unpack(NULL, len, msg);
    if (tr && tr->status && tr->status->token && *tr->status->token) {
        free(t->token);
        t->token = xstrdup(tr->status->token);
        t->got_ns = now_ns();
        t->expires_ns = tr->status->expirationtimestamp
                            ? tr->status->expirationtimestamp->seconds * NS
                            : t->got_ns + t->exp_s * NS;
    }
    if (tr)
        coracle__v1__token_request__free_unpacked(tr, NULL);
}

static void tok_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    (void)call;
    struct klet_tok *t = arg;
    t->inflight = false;
    if (!t->p) {
        tok_free(t);
        return;
    }
    free(t->err);
    t->err = code ? xasprintf("failed to fetch token: %s", message ? message : "error") : NULL;
    if (code) {
        log_warn("pod %s/%s: TokenRequest: %s", t->p->ns, t->p->name, message ? message : "");
        t->retry_ns = now_ns() + 5 * NS; /* the apiserver may be away: try again */
        struct timeval tv = {5, 0};
        if (t->p->tok_ev)
            event_add(t->p->tok_ev, &tv);
    }
    klet_pod_kick(t->p);
}

/* Asks for a token bound to the pod (audience "" : the apiserver's). */
static void tok_request(struct klet_tok *t)
{
    struct klet_pod *p = t->p;
    Coracle__V1__ObjectMeta meta = CORACLE__V1__OBJECT_META__INIT;
    meta.name = p->pod->spec->serviceaccountname;
    meta.namespace_ = p->ns;
    Coracle__V1__BoundObjectReference ref = CORACLE__V1__BOUND_OBJECT_REFERENCE__INIT;
    ref.kind = "Pod";
    ref.apiversion = "v1";
    ref.name = p->name;
    ref.uid = p->uid;
    Coracle__V1__TokenRequestSpec spec = CORACLE__V1__TOKEN_REQUEST_SPEC__INIT;
    char *aud = t->aud;
    if (*aud) {
        spec.audiences = &aud;
        spec.n_audiences = 1;
    }
    spec.boundobjectref = &ref;
    spec.has_expirationseconds = 1;
    spec.expirationseconds = t->exp_s;
    Coracle__V1__TokenRequest tr = CORACLE__V1__TOKEN_REQUEST__INIT;
    tr.metadata = &meta;
    tr.spec = &spec;
    t->inflight = true;
    gcl_call(p->k->api, "/coracle.v1.ServiceAccounts/CreateToken", &tr.base, tok_msg, tok_done, t,
             10000);
}

/* The token of a serviceAccountToken source: 0 with *tok, 1 while it is fetched, -1 with *err. */
static int token_of(struct klet_pod *p, const Coracle__V1__ServiceAccountTokenProjection *sp,
                    const char **tok, char **err)
{
    const char *sa = p->pod->spec->serviceaccountname;
    if (!sa || !*sa) {
        *err = xstrdup("the pod has no serviceAccountName");
        return -1;
    }
    struct klet_tok *t = tok_find(p, sp->audience ? sp->audience : "",
                                  sp->has_expirationseconds ? sp->expirationseconds : 3600);
    int64_t now = now_ns();
    bool stale = !t->token || now >= tok_refresh_at(t);
    if (stale && !t->inflight && now >= t->retry_ns)
        tok_request(t);
    if (!t->token || now >= t->expires_ns) { /* an expired token is no token */
        if (t->err) {
            *err = xstrdup(t->err);
            return -1;
        }
        return 1;
    }
    *tok = t->token;
    return 0;
}

/* ------------------------------------------------------------ sources */

/* Secret and configMap sources, as the configMap volume plugin's payload. 1: wait; -1. */
static int keys_source(struct klet_pod *p, enum podref_kind kind,
                       const Coracle__V1__LocalObjectReference *ref,
                       Coracle__V1__KeyToPath *const *items, size_t nitems, bool optional, int mode,
                       struct payload *pl, char **err)
{
    const char *name = ref && ref->name ? ref->name : "";
    const ProtobufCMessage *obj;
    enum klet_ref_state st = klet_ref_get(p, kind, name, &obj);
    if (st == KREF_PENDING)
        return 1;
    if (st == KREF_MISSING) {
        if (optional)
            return 0;
        *err = klet_ref_missing(kind, name);
        return -1;
    }
    struct klet_kv *kv;
    size_t nkv = klet_ref_data(obj, kind, true, &kv);
    for (size_t i = 0; !nitems && i < nkv; i++)
        add_file(pl, kv[i].key, kv[i].data, kv[i].len, mode);
    for (size_t i = 0; i < nitems; i++) {
        const struct klet_kv *e = klet_kv_find(kv, nkv, items[i]->key ? items[i]->key : "");
        if (!e && optional)
            continue;
        if (!e) {
            *err =
                kind == PODREF_SECRET
                    ? xasprintf("secret references non-existent secret key: %s", items[i]->key)
                    : xasprintf("configmap references non-existent config key: %s", items[i]->key);
            free(kv);
            return -1;
        }
        add_file(pl, items[i]->path ? items[i]->path : "", e->data, e->len,
                 items[i]->has_mode ? items[i]->mode : mode);
    }
    free(kv);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Labels or annotations as the downward API writes them: sorted key="value" lines. */
static char *map_text(Coracle__V1__ObjectMeta__LabelsEntry *const *l, size_t nl,
                      Coracle__V1__ObjectMeta__AnnotationsEntry *const *a, size_t na)
{
    size_t n = l ? nl : na;
    char **lines = xcalloc(n + 1, sizeof(*lines));
    for (size_t i = 0; i < n; i++) {
        const char *k = l ? l[i]->key : a[i]->key, *v = l ? l[i]->value : a[i]->value;
        char *q = json_quote(v ? v : "");
        lines[i] = xasprintf("%s=%s", k ? k : "", q);
        free(q);
    }
    qsort(lines, n, sizeof(*lines), cmp_str);
    struct buf b = {0};
    for (size_t i = 0; i < n; i++) {
        buf_printf(&b, "%s%s", i ? "\n" : "", lines[i]);
        free(lines[i]);
    }
    free(lines);
    return b.p ? buf_take(&b) : xstrdup("");
}

/* One downwardAPI item into pl: 0, or -1 with *err. */
static int field_file(struct klet_pod *p, const Coracle__V1__DownwardAPIVolumeFile *it, int mode,
                      struct payload *pl, char **err)
{
    const char *path = it->path ? it->path : "";
    int m = it->has_mode ? it->mode : mode;
    char *val = NULL;
    const Coracle__V1__ObjectMeta *md = p->pod->metadata;
    if (it->fieldref) {
        const char *fp = it->fieldref->fieldpath ? it->fieldref->fieldpath : "";
        if (!strcmp(fp, "metadata.labels"))
            val = map_text(md->labels, md->n_labels, NULL, 0);
        else if (!strcmp(fp, "metadata.annotations"))
            val = map_text(NULL, 0, md->annotations, md->n_annotations);
        else if (podfield_get(p->pod, fp, p->pod_ip, p->k->host_ip, &val, err) < 0)
            return -1;
    } else if (it->resourcefieldref) {
        const Coracle__V1__ResourceFieldSelector *rf = it->resourcefieldref;
        const Coracle__V1__PodSpec *sp = p->pod->spec;
        const Coracle__V1__Container *c = NULL;
        for (size_t i = 0; i < sp->n_containers + sp->n_initcontainers && !c; i++) {
            const Coracle__V1__Container *x =
                i < sp->n_containers ? sp->containers[i] : sp->initcontainers[i - sp->n_containers];
            if (x->name && rf->containername && !strcmp(x->name, rf->containername))
                c = x;
        }
        if (!c) {
            *err = xasprintf("container %s not found", rf->containername ? rf->containername : "");
            return -1;
        }
        if (podfield_resource(c, rf->resource ? rf->resource : "",
                              rf->divisor ? rf->divisor->string : NULL,
                              (int64_t)klet_node_cpus() * 1000, klet_node_mem_bytes() / 1024 * 1024,
                              &val, err) < 0)
            return -1;
    } else {
        return 0;
    }
    add_file(pl, path, val, strlen(val), m);
    free(val);
    return 0;
}

/* Volume v's files into pl: 0, 1 while a source waits, -1 with *err. *tmpfs: keep it in RAM. */
static int volume_payload(struct klet_pod *p, const Coracle__V1__VolumeSource *src,
                          struct payload *pl, bool *tmpfs, char **err)
{
    int rc = 0;
    *tmpfs = false;
    if (src->downwardapi) {
        const Coracle__V1__DownwardAPIVolumeSource *d = src->downwardapi;
        int mode = d->has_defaultmode ? d->defaultmode : 0644;
        for (size_t i = 0; i < d->n_items && rc == 0; i++)
            rc = field_file(p, d->items[i], mode, pl, err);
        return rc;
    }
    const Coracle__V1__ProjectedVolumeSource *pv = src->projected;
    int mode = pv->has_defaultmode ? pv->defaultmode : 0644;
    *tmpfs = true; /* as Kubernetes' projected plugin: an emptyDir in memory */
    for (size_t i = 0; i < pv->n_sources && rc >= 0; i++) {
        const Coracle__V1__VolumeProjection *s = pv->sources[i];
        int r = 0;
        if (s->secret)
            r = keys_source(p, PODREF_SECRET, s->secret->localobjectreference, s->secret->items,
                            s->secret->n_items, s->secret->optional, mode, pl, err);
        else if (s->configmap)
            r = keys_source(p, PODREF_CONFIGMAP, s->configmap->localobjectreference,
                            s->configmap->items, s->configmap->n_items, s->configmap->optional,
                            mode, pl, err);
        else if (s->downwardapi)
            for (size_t j = 0; j < s->downwardapi->n_items && r == 0; j++)
                r = field_file(p, s->downwardapi->items[j], mode, pl, err);
        else if (s->serviceaccounttoken) {
            const char *tok = NULL;
            r = token_of(p, s->serviceaccounttoken, &tok, err);
            if (r == 0) /* the token is the pod's secret: readable by its owner only */
                add_file(pl, s->serviceaccounttoken->path ? s->serviceaccounttoken->path : "token",
                         tok, strlen(tok), 0600);
        }
        if (r != 0)
            rc = r;
    }
    return rc;
}

/* The volume's directory (0777, as Kubernetes' emptyDir wrapper makes it), a tmpfs if asked. */
static int vol_dir(const char *path, bool tmpfs, char **err)
{
    if (mkdir(path, 0777) < 0 && errno != EEXIST) {
        *err = xasprintf("mkdir %s: %s", path, strerror(errno));
        return -1;
    }
    if (tmpfs && !klet_mounted_at(path) &&
        mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0) {
        *err = xasprintf("mount tmpfs at %s: %s", path, strerror(errno));
        return -1;
    }
    chmod(path, 0777);
    return 0;
}

/* Volume i: 0 written (or unchanged), 1 waiting for a source, -1 with *err. */
static int vol_sync(struct klet_pod *p, const Coracle__V1__Volume *v, char **err)
{
    struct payload pl = {0};
    bool tmpfs;
    int rc = volume_payload(p, v->volumesource, &pl, &tmpfs, err);
    if (rc == 0) {
        struct klet_file *files = xcalloc(pl.n + 1, sizeof(*files));
        for (size_t i = 0; i < pl.n; i++)
            files[i] = (struct klet_file){pl.f[i].path, (const uint8_t *)pl.f[i].data, pl.f[i].len,
                                          pl.f[i].mode};
        char *dir = xasprintf("%s/volumes/%s", p->dir, v->name);
        rc = vol_dir(dir, tmpfs, err);
        if (rc == 0)
            rc = klet_atomic_write(dir, files, pl.n, err);
        /* fsGroup: readable by the pod's group, as Kubernetes' read-only volumes */
        if (rc == 0)
            klet_fsgroup_volume(dir, p->pod->spec->securitycontext, true);
        free(dir);
        free(files);
    }
    payload_free(&pl);
    return rc;
}

static bool is_projvol(const Coracle__V1__Volume *v)
{
    return v->name && v->volumesource &&
           (v->volumesource->projected || v->volumesource->downwardapi);
}

int klet_projvols_sync(struct klet_pod *p)
{
    const Coracle__V1__PodSpec *sp = p->pod->spec;
    if (!p->proj_done && sp->n_volumes)
        p->proj_done = xcalloc(sp->n_volumes, sizeof(*p->proj_done));
    if (!p->tok_ev)
        p->tok_ev = event_new(p->k->base, -1, 0, tok_due, p);
    int result = 0;
    for (size_t i = 0; i < sp->n_volumes; i++) {
        if (!is_projvol(sp->volumes[i]))
            continue;
        char *err = NULL;
        int rc = vol_sync(p, sp->volumes[i], &err);
        if (rc < 0) {
            char *msg = xasprintf("MountVolume.SetUp failed for volume \"%s\" : %s",
                                  sp->volumes[i]->name, err);
            if (!p->vol_err || strcmp(p->vol_err, msg))
                klet_event(p->k, p, NULL, "Warning", "FailedMount", "%s", msg);
            free(p->vol_err);
            p->vol_err = msg;
            free(err);
        }
        if (rc == 0)
            p->proj_done[i] = true;
        /* as configMap volumes: an error holds the containers only until the first write */
        if (rc != 0 && !p->proj_done[i] && result >= 0)
            result = rc;
    }
    tok_arm(p);
    return result;
}

void klet_projvols_free(struct klet_pod *p)
{
    for (size_t i = 0; i < p->ntoks; i++) {
        if (p->toks[i]->inflight)
            p->toks[i]->p = NULL; /* its answer frees it */
        else
            tok_free(p->toks[i]);
    }
    free(p->toks);
    p->toks = NULL;
    p->ntoks = 0;
    free(p->proj_done);
    p->proj_done = NULL;
    if (p->tok_ev)
        event_free(p->tok_ev);
    p->tok_ev = NULL;
}
