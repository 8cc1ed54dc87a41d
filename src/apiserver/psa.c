/*
 * psa: Pod Security admission's decisions (see psa.h). The loop resolves
 * who and where (exemptions, the namespace's policy, from a cache of
 * namespace name -> policy filled from read snapshots and dropped on each
 * change of that namespace); the commit thread, where a create's bytes are
 * decoded, evaluates the object (psa_admit). A Namespace's own writes are
 * judged on the loop (psa_namespace: its labels' validity); the existing
 * pods a tighter enforce level would refuse are listed from a read
 * snapshot by the read worker (psa_check_pods: at most NS_PODS_MAX of
 * them, as Kubernetes).
 */
#include "config.h"
#include "psa.h"
#include "buf.h"
#include "obj.h"
#include "smap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Kubernetes' namespaceMaxPodsToCheck */
#define NS_PODS_MAX 3000

struct psa {
    store_t *st;
    struct psa_config cfg;
    smap_t *ns; /* namespace name -> struct nspol (malloc'd) */
};

/* A namespace's resolved policy. */
struct nspol {
    struct psa_policy pol;
    char *err; /* its labels' errors, or NULL */
};

static void nspol_free(void *v)
{
    struct nspol *n = v;
    if (n)
        free(n->err);
    free(n);
}

psa_t *psa_new(store_t *st, const struct psa_config *cfg)
{
    psa_t *p = xcalloc(1, sizeof(*p));
    p->st = st;
    p->cfg = *cfg;
    p->ns = smap_new();
    return p;
}

void psa_free(psa_t *p)
{
    if (!p)
        return;
    smap_free(p->ns, nspol_free);
    free(p);
}

#define NS_PREFIX "namespaces//"

void psa_on_change(psa_t *p, const struct store_change *ch)
{
    if (ch->type == STORE_RESYNC) {
        smap_clear(p->ns, nspol_free);
        return;
    }
    size_t pl = strlen(NS_PREFIX);
    if (ch->key_len <= pl || memcmp(ch->key, NS_PREFIX, pl))
        return;
    char *name = xstrndup(ch->key + pl, ch->key_len - pl);
    nspol_free(smap_del(p->ns, name));
    free(name);
}

bool psa_kind(const struct kind *k)
{
    return k == &kind_pod || k == &kind_replicaset || k == &kind_deployment ||
           k == &kind_daemonset || k == &kind_job || k == &kind_cronjob;
}

static bool listed(const char *const *l, const char *s)
{
    for (; s && *s && l && *l; l++)
        if (!strcmp(*l, s))
            return true;
    return false;
}

/* The policy of namespace ns: cached, or read (a missing namespace has the defaults). */
static const struct nspol *ns_policy(psa_t *p, const char *ns)
{
    struct nspol *n = smap_get(p->ns, ns);
    if (n)
        return n;
    n = xcalloc(1, sizeof(*n));
    n->pol = p->cfg.defaults;
    store_rtxn_t *t;
    if (store_read_begin(p->st, &t) == 0) {
        char *key = kind_key(&kind_namespace, NULL, ns);
        const void *val;
        size_t len;
        ProtobufCMessage *m = NULL;
        if (store_get(t, key, strlen(key), &val, &len) == 0)
            m = obj_decode(kind_namespace.desc, val, len);
        if (m) {
            const Coracle__V1__ObjectMeta *meta = kind_meta(m);
            psa_policy_of(meta->labels, meta->n_labels, &p->cfg.defaults, &n->pol, &n->err);
            obj_free(m);
        }
        free(key);
        store_read_end(t);
    }
    smap_put(p->ns, ns, n);
    return n;
}

static bool fully_privileged(const struct psa_policy *pol)
{
    return pol->enforce.level == PSA_PRIVILEGED && pol->audit.level == PSA_PRIVILEGED &&
           pol->warn.level == PSA_PRIVILEGED;
}

struct psa_req *psa_request(psa_t *p, const struct kind *k, const char *ns, const char *user)
{
    if (!p || !psa_kind(k) || !ns || listed(p->cfg.exempt_namespaces, ns) ||
        listed(p->cfg.exempt_users, user))
        return NULL;
    const struct nspol *n = ns_policy(p, ns);
    if (!n->err && fully_privileged(&n->pol))
        return NULL;
    if (!n->err && k != &kind_pod && n->pol.warn.level == PSA_PRIVILEGED &&
        n->pol.audit.level == PSA_PRIVILEGED)
        return NULL; /* templates are only warned and audited about */
    struct psa_req *r = xcalloc(1, sizeof(*r));
    r->pol = n->pol;
    r->exempt_runtime_classes = p->cfg.exempt_runtime_classes;
    r->pol_err = n->err ? xstrdup(n->err) : NULL;
    return r;
}

void psa_req_free(struct psa_req *r)
{
    if (!r)
        return;
    free(r->pol_err);
    free(r);
}

/* ---- evaluation (any thread) ---- */

static ProtobufCMessage *sub(const ProtobufCMessage *m, const char *field)
{
    if (!m)
        return NULL;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, field);
    if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)
        return NULL;
    return *(ProtobufCMessage *const *)((const char *)m + f->offset);
}

/* The pod (template) of obj: its metadata and spec; false if it has none. */
static bool pod_of(const struct kind *k, const ProtobufCMessage *obj,
                   const Coracle__V1__ObjectMeta **meta, const Coracle__V1__PodSpec **spec)
{
    if (k == &kind_pod) {
        *meta = kind_meta(obj);
        *spec = (const Coracle__V1__PodSpec *)sub(obj, "spec");
        return *spec != NULL;
    }
    const ProtobufCMessage *s = sub(obj, "spec");
    if (k == &kind_cronjob)
        s = sub(sub(s, "jobTemplate"), "spec");
    const ProtobufCMessage *t = sub(s, "template");
    *meta = (const Coracle__V1__ObjectMeta *)sub(t, "metadata");
    *spec = (const Coracle__V1__PodSpec *)sub(t, "spec");
    return *spec != NULL;
}

static const char *image(const Coracle__V1__Container *c)
{
    return c->image ? c->image : "";
}

/* isSignificantPodUpdate: images and the number of containers are what may change. */
static bool significant_update(const Coracle__V1__PodSpec *o, const Coracle__V1__PodSpec *n)
{
    if (o->n_containers != n->n_containers || o->n_initcontainers != n->n_initcontainers)
        return true;
    for (size_t i = 0; i < n->n_containers; i++)
        if (strcmp(image(o->containers[i]), image(n->containers[i])))
            return true;
    for (size_t i = 0; i < n->n_initcontainers; i++)
        if (strcmp(image(o->initcontainers[i]), image(n->initcontainers[i])))
            return true;
    return false;
}

static void add_warning(char ***warn, size_t *n, char *w)
{
    *warn = xrealloc(*warn, (*n + 1) * sizeof(**warn));
    (*warn)[(*n)++] = w;
}

static bool same_lv(const struct psa_lv *a, const struct psa_lv *b)
{
    return a->level == b->level && a->minor == b->minor;
}

int psa_admit(const struct psa_req *r, const struct kind *k, const ProtobufCMessage *old,
              const ProtobufCMessage *obj, char **msg, char ***warn, size_t *n_warn, char **audit)
{
    const Coracle__V1__ObjectMeta *meta, *ometa;
    const Coracle__V1__PodSpec *spec, *ospec;
    *audit = NULL;
    if (!r || !pod_of(k, obj, &meta, &spec))
        return 0;
    bool pod = k == &kind_pod;
    if (pod && old && pod_of(k, old, &ometa, &ospec) && !significant_update(ospec, spec))
        return 0;
    if (listed(r->exempt_runtime_classes, spec->runtimeclassname))
        return 0;
    char lvs[PSA_LV_LEN];
    char *enforce = NULL, *aud = NULL;
    if (pod) {
        enforce = psa_evaluate(&r->pol.enforce, meta, spec, NULL);
        if (enforce) {
            const Coracle__V1__ObjectMeta *m = kind_meta(obj);
            *msg = xasprintf("pods \"%s\" is forbidden: violates PodSecurity \"%s\": %s",
                             m && m->name ? m->name : "", psa_lv_string(&r->pol.enforce, lvs),
                             enforce);
        }
    }
    if (pod && same_lv(&r->pol.audit, &r->pol.enforce))
        aud = enforce ? xstrdup(enforce) : NULL;
    else
        aud = psa_evaluate(&r->pol.audit, meta, spec, NULL);
    if (aud)
        *audit = xasprintf("would violate PodSecurity \"%s\": %s",
                           psa_lv_string(&r->pol.audit, lvs), aud);
    /* a mode at the level and version another has evaluated needs no evaluation of its own */
    if (!enforce && !(pod && same_lv(&r->pol.warn, &r->pol.enforce))) {
        char *w = same_lv(&r->pol.warn, &r->pol.audit)
                      ? (aud ? xstrdup(aud) : NULL)
                      : psa_evaluate(&r->pol.warn, meta, spec, NULL);
        if (w)
            add_warning(warn, n_warn,
                        xasprintf("would violate PodSecurity \"%s\": %s",
                                  psa_lv_string(&r->pol.warn, lvs), w));
        free(w);
    }
    free(aud);
    int ret = enforce ? -1 : 0;
    free(enforce);
    return ret;
}

/* ---- namespaces (loop) ---- */

/* One distinct violation among a namespace's pods: the first pod's name (lexically) and how many.
 */
struct podwarn {
    char *reasons, *first;
    size_t count;
};

struct nscheck {
    const struct psa_lv *lv;
    const struct psa_config *cfg;
    struct podwarn *w;
    size_t n, cap;
    size_t seen, total;
};

static void tally(struct nscheck *c, const char *reasons, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->w[i].reasons, reasons)) {
            if (strcmp(name, c->w[i].first) < 0) {
                free(c->w[i].first);
                c->w[i].first = xstrdup(name);
            }
            c->w[i].count++;
            return;
        }
    c->w = xgrow(c->w, &c->cap, c->n + 1, sizeof(*c->w));
    c->w[c->n++] = (struct podwarn){xstrdup(reasons), xstrdup(name), 1};
}

/* One stored pod of the namespace (store_scan's callback). */
static int check_pod(const char *key, size_t key_len, const void *val, size_t len, void *arg)
{
    struct nscheck *c = arg;
    (void)key;
    (void)key_len;
    c->total++;
    if (c->seen >= NS_PODS_MAX)
        return 0;
    Coracle__V1__Pod *pod = (Coracle__V1__Pod *)obj_decode(kind_pod.desc, val, len);
    if (!pod)
        return 0;
    if (pod->spec && !listed(c->cfg->exempt_runtime_classes, pod->spec->runtimeclassname)) {
        c->seen++;
        char *reasons = NULL;
        char *d = psa_evaluate(c->lv, pod->metadata, pod->spec, &reasons);
        if (d)
            tally(c, reasons, pod->metadata && pod->metadata->name ? pod->metadata->name : "");
        free(d);
        free(reasons);
    }
    obj_free(&pod->base);
    return 0;
}

static int cmp_warning(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void psa_check_pods(const psa_t *p, store_rtxn_t *t, const char *ns, const struct psa_lv *lv,
                    char ***warn, size_t *n_warn)
{
    struct nscheck c = {.lv = lv, .cfg = &p->cfg};
    char *prefix = kind_key(&kind_pod, ns, "");
    int r = store_scan(t, prefix, strlen(prefix), NULL, 0, check_pod, &c);
    free(prefix);
    char lvs[PSA_LV_LEN];
    if (r < 0)
        add_warning(warn, n_warn,
                    xstrdup("failed to list pods while checking new PodSecurity enforce level"));
    if (c.seen < c.total && c.total > NS_PODS_MAX)
        add_warning(warn, n_warn,
                    xasprintf("new PodSecurity enforce level only checked against the first %zu "
                              "of %zu existing pods",
                              c.seen, c.total));
    if (c.n)
        add_warning(warn, n_warn,
                    xasprintf("existing pods in namespace \"%s\" violate the new PodSecurity "
                              "enforce level \"%s\"",
                              ns, psa_lv_string(lv, lvs)));
    char **pw = xcalloc(c.n + 1, sizeof(*pw));
    for (size_t i = 0; i < c.n; i++) {
        struct podwarn *w = &c.w[i];
        if (w->count == 1)
            pw[i] = xasprintf("%s: %s", w->first, w->reasons);
        else if (w->count == 2)
            pw[i] = xasprintf("%s (and 1 other pod): %s", w->first, w->reasons);
        else
            pw[i] = xasprintf("%s (and %zu other pods): %s", w->first, w->count - 1, w->reasons);
        free(w->reasons);
        free(w->first);
    }
    qsort(pw, c.n, sizeof(*pw), cmp_warning);
    for (size_t i = 0; i < c.n; i++)
        add_warning(warn, n_warn, pw[i]);
    free(pw);
    free(c.w);
}

static bool has_label(const Coracle__V1__ObjectMeta *m, const char *mode)
{
    char k[48], v[56];
    snprintf(k, sizeof(k), "pod-security.kubernetes.io/%s", mode);
    snprintf(v, sizeof(v), "pod-security.kubernetes.io/%s-version", mode);
    for (size_t i = 0; i < m->n_labels; i++)
        if (m->labels[i]->key && (!strcmp(m->labels[i]->key, k) || !strcmp(m->labels[i]->key, v)))
            return true;
    return false;
}

static bool equivalent(const struct psa_lv *a, const struct psa_lv *b)
{
    return (a->level == PSA_PRIVILEGED && b->level == PSA_PRIVILEGED) || same_lv(a, b);
}

/* exemptNamespaceWarning, or NULL */
static char *exempt_warning(psa_t *p, const Coracle__V1__ObjectMeta *m,
                            const struct psa_policy *pol)
{
    const struct psa_policy *d = &p->cfg.defaults;
    if (fully_privileged(pol) ||
        (equivalent(&pol->enforce, &d->enforce) && equivalent(&pol->audit, &d->audit) &&
         equivalent(&pol->warn, &d->warn)))
        return NULL;
    struct buf b = {0};
    char lvs[PSA_LV_LEN];
    static const char *const modes[] = {"enforce", "audit", "warn"};
    const struct psa_lv *lvs_of[] = {&pol->enforce, &pol->audit, &pol->warn};
    for (int i = 0; i < 3; i++)
        if (lvs_of[i]->level != PSA_PRIVILEGED && has_label(m, modes[i]))
            buf_printf(&b, "%s%s=%s", b.len ? ", " : "", modes[i], psa_lv_string(lvs_of[i], lvs));
    char *w = xasprintf("namespace \"%s\" is exempt from Pod Security, and the policy (%s) will "
                        "be ignored",
                        m->name ? m->name : "", b.len ? b.p : "");
    buf_free(&b);
    return w;
}

int psa_namespace(psa_t *p, const ProtobufCMessage *obj, bool create, char **msg, char ***warn,
                  size_t *n_warn, struct psa_lv *check)
{
    if (!p)
        return 0;
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    const char *name = m->name ? m->name : "";
    struct psa_policy pol;
    char *errs = NULL;
    int bad = psa_policy_of(m->labels, m->n_labels, &p->cfg.defaults, &pol, &errs);
    /* the stored namespace's policy (its cache entry is current until this write's change) */
    const struct nspol *old = create ? NULL : ns_policy(p, name);
    if (bad && (create || !old->err || strcmp(old->err, errs))) {
        *msg = xasprintf(bad == 1 ? "Namespace \"%s\" is invalid: %s"
                                  : "Namespace \"%s\" is invalid: [%s]",
                         name, errs);
        free(errs);
        return -1;
    }
    free(errs);
    bool exempt = listed(p->cfg.exempt_namespaces, name);
    if (create || !old) {
        char *w = exempt ? exempt_warning(p, m, &pol) : NULL;
        if (w)
            add_warning(warn, n_warn, w);
        return 0;
    }
    const struct psa_lv *ne = &pol.enforce, *oe = &old->pol.enforce;
    if (same_lv(ne, oe) || ne->level == PSA_PRIVILEGED ||
        (ne->minor == oe->minor && ne->level <= oe->level))
        return 0;
    if (exempt) {
        char *w = exempt_warning(p, m, &pol);
        if (w)
            add_warning(warn, n_warn, w);
        return 0;
    }
    *check = *ne;
    return 1;
}
