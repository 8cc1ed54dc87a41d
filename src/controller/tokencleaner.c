/*
 * The token cleaner, as Kubernetes' (pkg/controller/bootstrap/
 * tokencleaner.go): a bootstrap token's Secret (type
 * bootstrap.kubernetes.io/token in kube-system) is deleted once its
 * expiration has passed. One not yet due is synced again when it is
 * (ctrl_enqueue_after); nothing polls. The apiserver refuses an expired
 * token by itself; this only keeps the Secrets from piling up.
 */
#include "config.h"

#include "controllers.h"
#include "grpc.h"
#include "pki.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOKEN_NS "kube-system"
#define TOKEN_TYPE "bootstrap.kubernetes.io/token"

/* Seconds until the token expires (<= 0: expired), or false if it does not. */
static bool token_left(const Coracle__V1__Secret *sc, int64_t now_s, int64_t *left_s)
{
    if (!sc->type || strcmp(sc->type, TOKEN_TYPE) || !sc->metadata ||
        sc->metadata->deletiontimestamp)
        return false;
    int64_t at;
    if (pki_token_expiration(sc, &at) <= 0)
        return false;
    *left_s = at - now_s;
    return true;
}

static void token_added(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    if (m && m->namespace_ && !strcmp(m->namespace_, TOKEN_NS))
        ctrl_enqueue_added(inf, obj, arg);
}

static void token_updated(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                          void *arg)
{
    token_added(inf, obj, arg);
}

static void *cleaner_setup(cm_t *cm, ctrl_t *c)
{
    struct inf_handlers h = {token_added, token_updated, NULL, NULL, c};
    cm_on(cm, &kind_secret, &h);
    return NULL;
}

struct token_del {
    ctrl_t *c;
    char *key;
};

static void token_deleted(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct token_del *d = arg;
    bool ok = code == GRPC_OK || code == GRPC_NOT_FOUND;
    if (code == GRPC_OK)
        log_info("%s: deleted the expired bootstrap token %s", ctrl_name(d->c), d->key);
    ctrl_done(d->c, d->key, ok, message);
    free(d->key);
    free(d);
}

static void cleaner_sync(ctrl_t *c, const char *key, void *state)
{
    char *ns = xstrdup(key), *name = strchr(ns, '/');
    if (!name) {
        free(ns);
        ctrl_done(c, key, true, NULL);
        return;
    }
    *name++ = '\0';
    const Coracle__V1__Secret *sc = (const void *)cm_get(ctrl_cm(c), &kind_secret, ns, name);
    int64_t left;
    if (!sc || !token_left(sc, (int64_t)time(NULL), &left)) {
        ctrl_done(c, key, true, NULL);
    } else if (left > 0) {
        ctrl_enqueue_after(c, key, left * 1000);
        ctrl_done(c, key, true, NULL);
    } else {
        struct token_del *d = xcalloc(1, sizeof(*d));
        d->c = c;
        d->key = xstrdup(key);
        cm_delete(ctrl_cm(c), &kind_secret, ns, name, cm_uid(&sc->base), NULL, token_deleted, d);
    }
    free(ns);
}

const struct ctrl_def ctrl_tokencleaner = {
    .name = "tokencleaner",
    .workers = 1,
    .setup = cleaner_setup,
    .sync = cleaner_sync,
};
