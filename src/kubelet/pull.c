/*
 * pull: the kubelet's registry pulls (src/lib/oci.h), off the event loop.
 * Each image being pulled has one worker thread with a store handle of its
 * own; containers that want the same image (normalised name) wait on that
 * one pull. The thread touches nothing of the kubelet's: it reads what it
 * was handed (credentials copied from the pod's imagePullSecrets and the
 * node's credentials file) and, when done, writes a byte to a pipe the loop
 * watches; the loop then hands the outcome to every container waiting for
 * it (klet_pod_ctr_pulled) and joins the thread.
 *
 * Credentials: the docker config.json documents of the pod's
 * kubernetes.io/dockerconfigjson (or dockercfg) Secrets, then the file
 * --image-credentials-file names (Kubernetes' kubelet read a config.json
 * the same way before credential provider plugins; a plain file needs no
 * plugin binary on an edge node). They are never logged.
 */
#include "config.h"

#include "image.h"
#include "klet.h"
#include "oci.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct klet_pull {
    struct klet *k;
    char *key;   /* normalised reference */
    char *image; /* as the first container wrote it */
    char **auths;
    size_t *lens;
    size_t nauths;
    pthread_t th;
    int fds[2];
    struct event *ev;
    int64_t t0, t1;
    struct oci_result res;
    struct klet_pull *next;
};

static void pull_free(struct klet_pull *pl)
{
    for (size_t i = 0; i < pl->nauths; i++) {
        explicit_bzero(pl->auths[i], pl->lens[i]);
        free(pl->auths[i]);
    }
    free(pl->auths);
    free(pl->lens);
    free(pl->key);
    free(pl->image);
    oci_result_free(&pl->res);
    if (pl->ev)
        event_free(pl->ev);
    if (pl->fds[0] >= 0)
        close(pl->fds[0]);
    if (pl->fds[1] >= 0)
        close(pl->fds[1]);
    free(pl);
}

static void *pull_thread(void *arg)
{
    struct klet_pull *pl = arg;
    img_store_t *s = NULL;
    char *e = NULL;
    if (img_store_open(pl->k->cfg.image_dir, IMG_STORE_CREATE, &s, &e) < 0) {
        pl->res.code = OCI_STORE;
        pl->res.msg = xasprintf("image store %s: %s", pl->k->cfg.image_dir, e ? e : "cannot open");
        free(e);
    } else {
        struct oci_pull_opts o = {
            .hosts_dir = pl->k->cfg.registry_config_dir,
            .auths = (const char *const *)pl->auths,
            .auth_lens = pl->lens,
            .n_auths = pl->nauths,
        };
        oci_pull(s, pl->image, &o, &pl->res);
        img_store_close(s);
    }
    pl->t1 = mono_ns();
    char b = 1;
    while (write(pl->fds[1], &b, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

static void add_auth(struct klet_pull *pl, const void *data, size_t len)
{
    pl->auths = xrealloc(pl->auths, (pl->nauths + 1) * sizeof *pl->auths);
    pl->lens = xrealloc(pl->lens, (pl->nauths + 1) * sizeof *pl->lens);
    pl->auths[pl->nauths] = xmalloc(len + 1);
    memcpy(pl->auths[pl->nauths], data, len);
    pl->auths[pl->nauths][len] = 0;
    pl->lens[pl->nauths++] = len;
}

/* The pod's imagePullSecrets, then the node's file. */
static void collect_auths(struct klet_pull *pl, const struct klet_pod *p)
{
    const Coracle__V1__PodSpec *spec = p->pod ? p->pod->spec : NULL;
    for (size_t i = 0; spec && i < spec->n_imagepullsecrets; i++) {
        const char *name = spec->imagepullsecrets[i]->name;
        const ProtobufCMessage *obj = NULL;
        if (!name || klet_ref_get(p, PODREF_SECRET, name, &obj) != KREF_FOUND)
            continue;
        struct klet_kv *kv = NULL;
        size_t n = klet_ref_data(obj, PODREF_SECRET, false, &kv);
        const struct klet_kv *d = klet_kv_find(kv, n, ".dockerconfigjson");
        if (!d)
            d = klet_kv_find(kv, n, ".dockercfg");
        if (d)
            add_auth(pl, d->data, d->len);
        free(kv);
    }
    const char *f = pl->k->cfg.image_credentials_file;
    if (f && *f) {
        FILE *fp = fopen(f, "re");
        if (!fp) {
            log_warn("--image-credentials-file %s: %s", f, strerror(errno));
            return;
        }
        char *buf = xmalloc(1u << 20);
        size_t n = fread(buf, 1, (1u << 20) - 1, fp);
        fclose(fp);
        add_auth(pl, buf, n);
        explicit_bzero(buf, n);
        free(buf);
    }
}

static void outcome_to(struct klet_ctr *c, const struct klet_pull *pl)
{
    struct klet_pull_outcome *o = xcalloc(1, sizeof *o);
    o->rc = pl->res.code == OCI_OK ? 0 : -1;
    o->code = oci_code_str(pl->res.code);
    o->msg = pl->res.msg ? xstrdup(pl->res.msg) : NULL;
    o->pull_ns = pl->t1 - pl->t0;
    o->wait_ns = pl->t1 - c->pull_asked_ns;
    o->size = pl->res.size;
    o->started_ns = pl->t0;
    klet_pull_outcome_free(c->pulled);
    c->pulled = o;
    free(c->pull_key);
    c->pull_key = NULL;
}

/* The loop's end of a pull: every container waiting on it gets the outcome. */
static void pull_done(evutil_socket_t fd, short what, void *arg)
{
    struct klet_pull *pl = arg;
    struct klet *k = pl->k;
    pthread_join(pl->th, NULL);
    for (struct klet_pull **pp = &k->pulls; *pp; pp = &(*pp)->next)
        if (*pp == pl) {
            *pp = pl->next;
            break;
        }
    if (pl->res.code == OCI_OK)
        log_info("pulled %s (%s) in %.3fs: %d layers fetched, %d present, %d ranges resumed",
                 pl->key, pl->res.id, (double)(pl->t1 - pl->t0) / 1e9, pl->res.layers_fetched,
                 pl->res.layers_present, pl->res.resumed);
    else
        log_warn("pull of %s failed (%s): %s", pl->key, oci_code_str(pl->res.code),
                 pl->res.msg ? pl->res.msg : "");
    for (size_t i = 0; i < k->npods; i++) {
        struct klet_pod *p = k->pods[i];
        struct klet_ctr *sets[2] = {p->inits, p->ctrs};
        size_t ns[2] = {p->ninit, p->nctr};
        for (int s = 0; s < 2; s++)
            for (size_t j = 0; j < ns[s]; j++) {
                struct klet_ctr *c = &sets[s][j];
                if (c->pull_key && !strcmp(c->pull_key, pl->key)) {
                    outcome_to(c, pl);
                    klet_pod_ctr_pulled(c);
                }
            }
    }
    pull_free(pl);
}

bool klet_pull_secrets_pending(const struct klet_pod *p)
{
    const Coracle__V1__PodSpec *spec = p->pod ? p->pod->spec : NULL;
    for (size_t i = 0; spec && i < spec->n_imagepullsecrets; i++) {
        const ProtobufCMessage *obj = NULL;
        const char *name = spec->imagepullsecrets[i]->name;
        if (name && *name && klet_ref_get(p, PODREF_SECRET, name, &obj) == KREF_PENDING)
            return true;
    }
    return false;
}

int klet_pull_image(struct klet_ctr *c, const char *image)
{
    struct klet *k = c->pod->k;
    char *key = NULL;
    if (img_ref_normalize(image, &key, NULL) < 0)
        key = xstrdup(image);
    c->pull_asked_ns = mono_ns();
    free(c->pull_key);
    c->pull_key = key;
    for (struct klet_pull *pl = k->pulls; pl; pl = pl->next)
        if (!strcmp(pl->key, key))
            return 1; /* one pull an image */
    struct klet_pull *pl = xcalloc(1, sizeof *pl);
    pl->k = k;
    pl->key = xstrdup(key);
    pl->image = xstrdup(image);
    pl->fds[0] = pl->fds[1] = -1;
    collect_auths(pl, c->pod);
    if (pipe2(pl->fds, O_CLOEXEC) < 0) {
        pl->res.msg = xasprintf("pipe: %s", strerror(errno));
        goto fail;
    }
    pl->ev = event_new(k->base, pl->fds[0], EV_READ, pull_done, pl);
    event_add(pl->ev, NULL);
    pl->t0 = mono_ns();
    oci_global_init();
    int rc = pthread_create(&pl->th, NULL, pull_thread, pl);
    if (rc != 0) {
        pl->res.msg = xasprintf("pthread_create: %s", strerror(rc));
        goto fail;
    }
    pl->next = k->pulls;
    k->pulls = pl;
    return 1;
fail:
    pl->res.code = OCI_STORE;
    pl->t0 = pl->t1 = mono_ns();
    outcome_to(c, pl);
    pull_free(pl);
    return 0;
}

void klet_pull_outcome_free(struct klet_pull_outcome *o)
{
    if (!o)
        return;
    free(o->msg);
    free(o);
}
