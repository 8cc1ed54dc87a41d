/*
 * review: the virtual kinds' answers. See review.h.
 */
#include "config.h"
#include "review.h"
#include "grpc.h"
#include "obj.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* ---- lists of strings into a repeated field ---- */

static void strs_add(char ***v, size_t *n, const char *s)
{
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = xstrdup(s);
}

static void strs_set(char ***v, size_t *n, const char *const *src)
{
    for (; src && *src; src++)
        strs_add(v, n, *src);
}

/* ---- may this subject do that? ---- */

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

/*
 * The kind a resource attribute names (group and resource), or, for one
 * coracle does not serve, a stand-in carrying its names into the
 * authorizer (whose rules may still name it: "*"). tmp holds the
 * stand-in and its strings (free with free_kind).
 */
static const struct kind *attr_kind(const Coracle__V1__ResourceAttributes *ra, struct kind *tmp)
{
    const char *group = ra->group ? ra->group : "", *res = ra->resource ? ra->resource : "";
    for (size_t i = 0; kinds_all[i]; i++) {
        const struct kind *k = kinds_all[i];
        const char *slash = strchr(k->api_version, '/');
        size_t gl = slash ? (size_t)(slash - k->api_version) : 0;
        if (!strcmp(k->resource, res) && strlen(group) == gl && !strncmp(k->api_version, group, gl))
            return k;
    }
    memset(tmp, 0, sizeof(*tmp));
    tmp->kind = "";
    tmp->resource = xstrdup(res);
    tmp->api_version =
        *group ? xasprintf("%s/%s", group, ra->version && *ra->version ? ra->version : "v1")
               : xstrdup("v1");
    tmp->group_resource = *group ? xasprintf("%s.%s", res, group) : xstrdup(res);
    tmp->namespaced = nonempty(ra->namespace_) != NULL;
    return tmp;
}

static void free_kind(const struct kind *k, struct kind *tmp)
{
    if (k != tmp)
        return;
    free((char *)tmp->resource);
    free((char *)tmp->api_version);
    free((char *)tmp->group_resource);
}

/* The decision for subject s on the attributes (exactly one of ra, nra), into st. */
static void decide(const auth_t *au, store_t *store, const struct auth_user *s,
                   const Coracle__V1__ResourceAttributes *ra,
                   const Coracle__V1__NonResourceAttributes *nra,
                   Coracle__V1__SubjectAccessReviewStatus *st)
{
    char *err = NULL;
    int rc;
    if (nra) {
        rc = auth_authorize_path(au, s, nra->verb ? nra->verb : "", nra->path ? nra->path : "",
                                 &err);
    } else {
        struct kind tmp;
        const struct kind *k = attr_kind(ra, &tmp);
        const char *ns = k->namespaced ? nonempty(ra->namespace_) : NULL;
        rc = auth_check(au, s, store, ra->verb ? ra->verb : "", k, nonempty(ra->subresource), ns,
                        nonempty(ra->name), NULL, &err);
        free_kind(k, &tmp);
    }
    free(err);
    st->has_allowed = 1;
    st->allowed = rc == 0;
}

static Coracle__V1__SubjectAccessReviewStatus *new_status(void)
{
    Coracle__V1__SubjectAccessReviewStatus *st = xmalloc(sizeof(*st));
    coracle__v1__subject_access_review_status__init(st);
    return st;
}

/* Kubernetes' ValidateSubjectAccessReviewSpec's checks of the attributes: NULL or the error. */
static char *attrs_problem(const char *kind, const void *ra, const void *nra)
{
    if (ra && nra)
        return xasprintf("%s.authorization.k8s.io \"\" is invalid: spec.nonResourceAttributes: "
                         "Invalid value: \"\": cannot be specified in combination with "
                         "resourceAttributes",
                         kind);
    if (!ra && !nra)
        return xasprintf("%s.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: "
                         "Invalid value: \"null\": exactly one of nonResourceAttributes or "
                         "resourceAttributes must be specified",
                         kind);
    return NULL;
}

static int self_access(const auth_t *au, store_t *store, const struct auth_user *u,
                       Coracle__V1__SelfSubjectAccessReview *r, char **msg)
{
    Coracle__V1__SelfSubjectAccessReviewSpec *sp = r->spec;
    const void *ra = sp ? sp->resourceattributes : NULL,
               *nra = sp ? sp->nonresourceattributes : NULL;
    if ((*msg = attrs_problem("SelfSubjectAccessReview", ra, nra)))
        return GRPC_INVALID_ARGUMENT;
    if (r->status)
        coracle__v1__subject_access_review_status__free_unpacked(r->status, NULL);
    r->status = new_status();
    decide(au, store, u, sp->resourceattributes, sp->nonresourceattributes, r->status);
    return 0;
}

/*
 * SubjectAccessReview and LocalSubjectAccessReview (same layout): the
 * subject is the spec's user, groups and uid, as given (no
 * system:authenticated added, as Kubernetes does not). ns: the local
 * review's namespace, NULL for the cluster-wide one.
 */
static int subject_access(const auth_t *au, store_t *store, const char *kind, const char *ns,
                          Coracle__V1__SubjectAccessReviewSpec *sp,
                          Coracle__V1__SubjectAccessReviewStatus **status, char **msg)
{
    const void *ra = sp ? sp->resourceattributes : NULL,
               *nra = sp ? sp->nonresourceattributes : NULL;
    if (ns && nra) {
        *msg = xasprintf("%s.authorization.k8s.io \"\" is invalid: spec.nonResourceAttributes: "
                         "Invalid value: \"\": disallowed on this kind of request",
                         kind);
        return GRPC_INVALID_ARGUMENT;
    }
    if ((*msg = attrs_problem(kind, ra, nra)))
        return GRPC_INVALID_ARGUMENT;
    if (!nonempty(sp->user) && !sp->n_groups) {
        *msg = xasprintf("%s.authorization.k8s.io \"\" is invalid: spec.user: Invalid value: "
                         "\"\": at least one of user or group must be specified",
                         kind);
        return GRPC_INVALID_ARGUMENT;
    }
    if (ns &&
        strcmp(sp->resourceattributes->namespace_ ? sp->resourceattributes->namespace_ : "", ns)) {
        *msg = xasprintf("spec.resourceAttributes.namespace must match namespace: %s", ns);
        return GRPC_INVALID_ARGUMENT;
    }
    const char **groups = xcalloc(sp->n_groups + 1, sizeof(*groups));
    for (size_t i = 0; i < sp->n_groups; i++)
        groups[i] = sp->groups[i];
    struct auth_user s = {sp->user ? sp->user : "", groups, NULL, sp->uid ? sp->uid : ""};
    if (*status)
        coracle__v1__subject_access_review_status__free_unpacked(*status, NULL);
    *status = new_status();
    decide(au, store, &s, sp->resourceattributes, sp->nonresourceattributes, *status);
    free(groups);
    return 0;
}

/* ---- what may I do? ---- */

static void rule_cb(const struct auth_rule *r, void *arg)
{
    Coracle__V1__SubjectRulesReviewStatus *st = arg;
    if (r->urls[0]) {
        Coracle__V1__NonResourceRule *n = xmalloc(sizeof(*n));
        coracle__v1__non_resource_rule__init(n);
        strs_set(&n->verbs, &n->n_verbs, r->verbs);
        strs_set(&n->nonresourceurls, &n->n_nonresourceurls, r->urls);
        st->nonresourcerules =
            xrealloc(st->nonresourcerules, (st->n_nonresourcerules + 1) * sizeof(n));
        st->nonresourcerules[st->n_nonresourcerules++] = n;
        return;
    }
    Coracle__V1__ResourceRule *x = xmalloc(sizeof(*x));
    coracle__v1__resource_rule__init(x);
    strs_set(&x->verbs, &x->n_verbs, r->verbs);
    strs_set(&x->apigroups, &x->n_apigroups, r->api_groups);
    strs_set(&x->resources, &x->n_resources, r->resources);
    strs_set(&x->resourcenames, &x->n_resourcenames, r->resource_names);
    st->resourcerules = xrealloc(st->resourcerules, (st->n_resourcerules + 1) * sizeof(x));
    st->resourcerules[st->n_resourcerules++] = x;
}

static int self_rules(const auth_t *au, const struct auth_user *u,
                      Coracle__V1__SelfSubjectRulesReview *r, char **msg)
{
    const char *ns = r->spec ? nonempty(r->spec->namespace_) : NULL;
    (void)msg;
    if (r->status)
        coracle__v1__subject_rules_review_status__free_unpacked(r->status, NULL);
    Coracle__V1__SubjectRulesReviewStatus *st = xmalloc(sizeof(*st));
    coracle__v1__subject_rules_review_status__init(st);
    r->status = st;
    const char *why = NULL;
    st->has_incomplete = 1;
    st->incomplete = auth_rules_for(au, u, ns, rule_cb, st, &why) != 0;
    if (why)
        st->evaluationerror = xstrdup(why);
    return 0;
}

/* ---- who am I? ---- */

static void self_subject(const struct auth_user *u, Coracle__V1__SelfSubjectReview *r)
{
    if (r->status)
        coracle__v1__self_subject_review_status__free_unpacked(r->status, NULL);
    r->status = xmalloc(sizeof(*r->status));
    coracle__v1__self_subject_review_status__init(r->status);
    Coracle__V1__UserInfo *ui = xmalloc(sizeof(*ui));
    coracle__v1__user_info__init(ui);
    ui->username = xstrdup(u->name);
    if (u->uid && *u->uid)
        ui->uid = xstrdup(u->uid);
    strs_set(&ui->groups, &ui->n_groups, u->groups);
    r->status->userinfo = ui;
}

int review_answer(const auth_t *au, store_t *st, const struct auth_user *u, const struct kind *k,
                  const char *ns, ProtobufCMessage *obj, char **msg)
{
    *msg = NULL;
    if (k == &kind_selfsubjectreview) {
        self_subject(u, (Coracle__V1__SelfSubjectReview *)obj);
        return 0;
    }
    if (k == &kind_selfsubjectaccessreview)
        return self_access(au, st, u, (Coracle__V1__SelfSubjectAccessReview *)obj, msg);
    if (k == &kind_selfsubjectrulesreview)
        return self_rules(au, u, (Coracle__V1__SelfSubjectRulesReview *)obj, msg);
    if (k == &kind_subjectaccessreview) {
        Coracle__V1__SubjectAccessReview *r = (Coracle__V1__SubjectAccessReview *)obj;
        return subject_access(au, st, k->kind, NULL, r->spec, &r->status, msg);
    }
    if (k == &kind_localsubjectaccessreview) {
        Coracle__V1__LocalSubjectAccessReview *r = (Coracle__V1__LocalSubjectAccessReview *)obj;
        return subject_access(au, st, k->kind, ns ? ns : "default", r->spec, &r->status, msg);
    }
    *msg = xasprintf("%s: not a virtual kind", k->kind);
    return GRPC_UNIMPLEMENTED;
}
