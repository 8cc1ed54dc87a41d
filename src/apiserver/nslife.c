/*
 * nslife: the namespace lifecycle. See nslife.h.
 *
 * The cache maps a namespace's name to its phase as last seen; an absent
 * name is looked up in a read snapshot (so a namespace is known from the
 * moment its create is durable, before its change reaches the listener,
 * and whatever a replica loaded without telling the listener is found).
 * One timer does the background work: the system namespaces when missing,
 * and a step of each Terminating namespace's deletion. A step deletes at
 * most STEP_DELETES objects and runs again soon while there is work, every
 * second otherwise.
 */
#include "config.h"
#include "nslife.h"
#include "grpc.h"
#include "obj.h"
#include "smap.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NS_PREFIX "namespaces//"
#define STEP_DELETES 1000
#define IDLE_MS 1000
#define BUSY_MS 100

/* NS_ABSENT: looked up and missing, cached in implicit mode only, where
 * creates into namespaces that are not objects are the common case */
enum { NS_MISSING = 0, NS_ACTIVE = 1, NS_TERMINATING = 2, NS_ABSENT = 3 };

static const char *const system_ns[] = {"default", "kube-system", "kube-public", "kube-node-lease",
                                        NULL};

struct nslife {
    struct event_base *base;
    store_t *st;
    bool implicit;
    struct nslife_ops ops;
    smap_t *known; /* name -> phase (an enum value, not a pointer) */
    struct event *timer;
};

bool nslife_undeletable(const char *name)
{
    return !strcmp(name, "default") || !strcmp(name, "kube-system") || !strcmp(name, "kube-public");
}

static bool is_system(const char *name)
{
    for (size_t i = 0; system_ns[i]; i++)
        if (!strcmp(system_ns[i], name))
            return true;
    return false;
}

/* The phase of a stored namespace's bytes. */
static int phase_of(const void *val, size_t len)
{
    ProtobufCMessage *m = obj_decode(kind_namespace.desc, val, len);
    if (!m)
        return NS_ACTIVE;
    const Coracle__V1__ObjectMeta *meta = kind_meta(m);
    int p = meta && meta->deletiontimestamp ? NS_TERMINATING : NS_ACTIVE;
    obj_free(m);
    return p;
}

static void remember(nslife_t *n, const char *name, int phase)
{
    smap_put(n->known, name, (void *)(intptr_t)phase);
}

/* The namespace's phase: the cache's, else the store's (then cached). */
static int phase(nslife_t *n, const char *name)
{
    int p = (int)(intptr_t)smap_get(n->known, name);
    if (p == NS_ABSENT)
        return NS_MISSING;
    if (p != NS_MISSING)
        return p;
    store_rtxn_t *t;
    if (store_read_begin(n->st, &t) < 0)
        return NS_MISSING;
    char *key = kind_key(&kind_namespace, NULL, name);
    const void *val;
    size_t len;
    if (store_get(t, key, strlen(key), &val, &len) == 0) {
        p = phase_of(val, len);
        remember(n, name, p);
    } else if (n->implicit) {
        remember(n, name, NS_ABSENT); /* until its change says otherwise */
    }
    free(key);
    store_read_end(t);
    return p;
}

int nslife_admit(nslife_t *n, const struct kind *k, const char *ns, const char *name, int *code,
                 char **msg)
{
    if (!k->namespaced || !ns)
        return 0;
    int p = phase(n, ns);
    if (p == NS_ACTIVE || (p == NS_MISSING && (n->implicit || is_system(ns))))
        return 0;
    if (p == NS_MISSING) {
        *code = GRPC_NOT_FOUND;
        *msg = xasprintf("namespaces \"%s\" not found", ns);
    } else {
        *code = GRPC_PERMISSION_DENIED;
        *msg = xasprintf("%s \"%s\" is forbidden: unable to create new content in namespace %s "
                         "because it is being terminated",
                         k->group_resource, name ? name : "", ns);
    }
    return -1;
}

/* A new object of kind k named name in ns, with only its names set. */
static ProtobufCMessage *new_object(const struct kind *k, const char *ns, const char *name)
{
    ProtobufCMessage *m = xmalloc(k->desc->sizeof_message);
    protobuf_c_message_init(k->desc, m);
    Coracle__V1__ObjectMeta *meta = obj_meta(m);
    obj_set_str(&meta->name, name);
    if (ns)
        obj_set_str(&meta->namespace_, ns);
    return m;
}

void nslife_on_change(nslife_t *n, const struct store_change *ch)
{
    if (ch->type == STORE_RESYNC) {
        smap_clear(n->known, NULL);
        return;
    }
    size_t pl = strlen(NS_PREFIX);
    if (ch->key_len <= pl || memcmp(ch->key, NS_PREFIX, pl))
        return;
    char *name = xstrndup(ch->key + pl, ch->key_len - pl);
    if (ch->type == STORE_DELETE) {
        smap_del(n->known, name);
    } else {
        int p = phase_of(ch->val, ch->val_len);
        int was = (int)(intptr_t)smap_get(n->known, name);
        remember(n, name, p);
        if (ch->type == STORE_PUT_NEW && !n->implicit)
            n->ops.create(n->ops.arg, &kind_serviceaccount,
                          new_object(&kind_serviceaccount, name, "default"));
        if (p == NS_TERMINATING && was != NS_TERMINATING)
            event_active(n->timer, EV_TIMEOUT, 0); /* start deleting its content now */
    }
    free(name);
}

/* ---- the timer: system namespaces, Terminating namespaces ---- */

struct victim {
    const struct kind *k;
    char *name;
};

/* One Terminating namespace's step: what is in it, and what to delete. */
struct step {
    size_t found; /* objects still in the namespace */
    struct victim *v;
    size_t nv, cap;
    const struct kind *k;
};

static int content_cb(const char *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    struct step *s = arg;
    (void)key;
    (void)klen;
    s->found++;
    if (s->nv >= STEP_DELETES)
        return 0;
    ProtobufCMessage *m = obj_decode(s->k->desc, val, vlen);
    const Coracle__V1__ObjectMeta *meta = m ? kind_meta(m) : NULL;
    /* one being deleted gracefully (a pod its kubelet stops) goes by itself */
    if (meta && meta->name && !meta->deletiontimestamp) {
        struct victim *v = XPUSH(s->v, s->nv, s->cap);
        v->k = s->k;
        v->name = xstrdup(meta->name);
    }
    obj_free(m);
    return 0;
}

/* Deletes what is in namespace ns, or ns itself once it is empty. Returns true if busy. */
static bool step_namespace(nslife_t *n, store_rtxn_t *t, const char *ns, const char *uid)
{
    struct step s = {0};
    for (size_t i = 0; kinds_all[i]; i++) {
        if (!kinds_all[i]->namespaced || kind_virtual(kinds_all[i]))
            continue;
        s.k = kinds_all[i];
        char *prefix = kind_key(s.k, ns, "");
        store_scan(t, prefix, strlen(prefix), NULL, 0, content_cb, &s);
        free(prefix);
    }
    for (size_t i = 0; i < s.nv; i++) {
        n->ops.remove(n->ops.arg, s.v[i].k, ns, s.v[i].name);
        free(s.v[i].name);
    }
    free(s.v);
    if (!s.found) {
        log_info("namespace %s: empty, removing it", ns);
        n->ops.finish(n->ops.arg, ns, uid);
    }
    return s.found > 0;
}

struct term {
    char **names, **uids;
    size_t n, cap, cap2;
};

static int ns_cb(const char *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    struct term *tm = arg;
    (void)key;
    (void)klen;
    ProtobufCMessage *m = obj_decode(kind_namespace.desc, val, vlen);
    const Coracle__V1__ObjectMeta *meta = m ? kind_meta(m) : NULL;
    if (meta && meta->name && meta->deletiontimestamp) {
        size_t n = tm->n;
        *XPUSH(tm->names, tm->n, tm->cap) = xstrdup(meta->name);
        *XPUSH(tm->uids, n, tm->cap2) = xstrdup(meta->uid ? meta->uid : "");
    }
    obj_free(m);
    return 0;
}

static void arm(nslife_t *n, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(n->timer, &tv);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    nslife_t *n = arg;
    (void)fd;
    (void)what;
    for (size_t i = 0; system_ns[i] && !n->implicit; i++)
        if (phase(n, system_ns[i]) == NS_MISSING)
            n->ops.create(n->ops.arg, &kind_namespace,
                          new_object(&kind_namespace, NULL, system_ns[i]));
    store_rtxn_t *t;
    bool busy = false;
    if (store_read_begin(n->st, &t) == 0) {
        struct term tm = {0};
        store_scan(t, NS_PREFIX, strlen(NS_PREFIX), NULL, 0, ns_cb, &tm);
        for (size_t i = 0; i < tm.n; i++) {
            busy |= step_namespace(n, t, tm.names[i], tm.uids[i]);
            free(tm.names[i]);
            free(tm.uids[i]);
        }
        free(tm.names);
        free(tm.uids);
        store_read_end(t);
    }
    arm(n, busy ? BUSY_MS : IDLE_MS);
}

nslife_t *nslife_new(struct event_base *base, store_t *st, bool implicit,
                     const struct nslife_ops *ops)
{
    nslife_t *n = xcalloc(1, sizeof(*n));
    n->base = base;
    n->st = st;
    n->implicit = implicit;
    n->ops = *ops;
    n->known = smap_new();
    n->timer = event_new(base, -1, 0, tick, n);
    tick(-1, 0, n); /* the system namespaces at once */
    return n;
}

void nslife_free(nslife_t *n)
{
    if (!n)
        return;
    event_free(n->timer);
    smap_free(n->known, NULL);
    free(n);
}
