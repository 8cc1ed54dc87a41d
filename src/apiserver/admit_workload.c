/*
 * admit_workload: defaults and validation of the workload kinds
 * (ReplicaSet, Deployment, DaemonSet of apps/v1; Job, CronJob of
 * batch/v1), as Kubernetes' apps/v1 and batch/v1 defaults.go, its
 * apps and batch validation and the Job strategy's generated selector
 * do it, with their texts. Their pod templates get the pods' defaults and
 * checks (admit.c). Values Kubernetes prints with Go's %#v (a selector, a
 * label map, an IntOrString) are written the same way here, so the
 * messages read as a kube-apiserver's. See admit_int.h.
 */
#include "config.h"
#include "admit_int.h"
#include "buf.h"
#include "cron.h"
#include "obj.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Map entries of map<string, string>: every such map has this layout. */
typedef Coracle__V1__ObjectMeta__LabelsEntry entry_t;

/* ---- defaults ---- */

static void default_i32(protobuf_c_boolean *has, int32_t *v, int32_t def)
{
    if (!*has) {
        *has = 1;
        *v = def;
    }
}

static void default_bool(protobuf_c_boolean *has, protobuf_c_boolean *v, bool def)
{
    if (!*has) {
        *has = 1;
        *v = def;
    }
}

static void default_str(char **f, const char *v)
{
    if (!*f || !**f)
        obj_set_str(f, v);
}

static Coracle__V1__IntOrString *ios_new(bool str, int32_t n, const char *s)
{
    Coracle__V1__IntOrString *v = xmalloc(sizeof(*v));
    coracle__v1__int_or_string__init(v);
    v->has_type = 1;
    v->type = str;
    if (str) {
        v->strval = xstrdup(s);
    } else {
        v->has_intval = 1;
        v->intval = n;
    }
    return v;
}

/* The template, made if missing, its pod spec defaulted. */
static Coracle__V1__PodTemplateSpec *template_defaults(Coracle__V1__PodTemplateSpec **t)
{
    if (!*t) {
        *t = xmalloc(sizeof(**t));
        coracle__v1__pod_template_spec__init(*t);
    }
    if (!(*t)->spec) {
        (*t)->spec = xmalloc(sizeof(*(*t)->spec));
        coracle__v1__pod_spec__init((*t)->spec);
    }
    admit_pod_spec_defaults((*t)->spec);
    return *t;
}

static void deployment_defaults(Coracle__V1__DeploymentSpec *sp)
{
    default_i32(&sp->has_replicas, &sp->replicas, 1);
    if (!sp->strategy) {
        sp->strategy = xmalloc(sizeof(*sp->strategy));
        coracle__v1__deployment_strategy__init(sp->strategy);
    }
    Coracle__V1__DeploymentStrategy *st = sp->strategy;
    default_str(&st->type, "RollingUpdate");
    if (!strcmp(st->type, "RollingUpdate")) {
        if (!st->rollingupdate) {
            st->rollingupdate = xmalloc(sizeof(*st->rollingupdate));
            coracle__v1__rolling_update_deployment__init(st->rollingupdate);
        }
        if (!st->rollingupdate->maxunavailable)
            st->rollingupdate->maxunavailable = ios_new(true, 0, "25%");
        if (!st->rollingupdate->maxsurge)
            st->rollingupdate->maxsurge = ios_new(true, 0, "25%");
    }
    default_i32(&sp->has_revisionhistorylimit, &sp->revisionhistorylimit, 10);
    default_i32(&sp->has_progressdeadlineseconds, &sp->progressdeadlineseconds, 600);
    template_defaults(&sp->template_);
}

static void daemonset_defaults(Coracle__V1__DaemonSetSpec *sp)
{
    if (!sp->updatestrategy) {
        sp->updatestrategy = xmalloc(sizeof(*sp->updatestrategy));
        coracle__v1__daemon_set_update_strategy__init(sp->updatestrategy);
    }
    Coracle__V1__DaemonSetUpdateStrategy *st = sp->updatestrategy;
    default_str(&st->type, "RollingUpdate");
    if (!strcmp(st->type, "RollingUpdate")) {
        if (!st->rollingupdate) {
            st->rollingupdate = xmalloc(sizeof(*st->rollingupdate));
            coracle__v1__rolling_update_daemon_set__init(st->rollingupdate);
        }
        if (!st->rollingupdate->maxunavailable)
            st->rollingupdate->maxunavailable = ios_new(false, 1, NULL);
        if (!st->rollingupdate->maxsurge)
            st->rollingupdate->maxsurge = ios_new(false, 0, NULL);
    }
    default_i32(&sp->has_revisionhistorylimit, &sp->revisionhistorylimit, 10);
    template_defaults(&sp->template_);
}

static void copy_labels(Coracle__V1__ObjectMeta *dst, const Coracle__V1__ObjectMeta *src)
{
    for (size_t i = 0; i < src->n_labels; i++) {
        entry_t *en = xmalloc(sizeof(*en));
        coracle__v1__object_meta__labels_entry__init(en);
        en->key = xstrdup(src->labels[i]->key ? src->labels[i]->key : "");
        en->value = xstrdup(src->labels[i]->value ? src->labels[i]->value : "");
        dst->labels = xrealloc(dst->labels, (dst->n_labels + 1) * sizeof(*dst->labels));
        dst->labels[dst->n_labels++] = en;
    }
}

static void job_defaults(Coracle__V1__Job *job)
{
    if (!job->spec) {
        job->spec = xmalloc(sizeof(*job->spec));
        coracle__v1__job_spec__init(job->spec);
    }
    Coracle__V1__JobSpec *sp = job->spec;
    if (!sp->has_completions && !sp->has_parallelism)
        default_i32(&sp->has_completions, &sp->completions, 1);
    default_i32(&sp->has_parallelism, &sp->parallelism, 1);
    default_i32(&sp->has_backofflimit, &sp->backofflimit, 6);
    default_str(&sp->completionmode, "NonIndexed");
    default_bool(&sp->has_suspend, &sp->suspend, false);
    default_str(&sp->podreplacementpolicy, "TerminatingOrFailed");
    Coracle__V1__PodTemplateSpec *t = template_defaults(&sp->template_);
    /* a Job without labels has its template's */
    if (t->metadata && t->metadata->n_labels && job->metadata && !job->metadata->n_labels)
        copy_labels(job->metadata, t->metadata);
}

static void cronjob_defaults(Coracle__V1__CronJob *cj)
{
    if (!cj->spec) {
        cj->spec = xmalloc(sizeof(*cj->spec));
        coracle__v1__cron_job_spec__init(cj->spec);
    }
    Coracle__V1__CronJobSpec *sp = cj->spec;
    default_str(&sp->concurrencypolicy, "Allow");
    default_bool(&sp->has_suspend, &sp->suspend, false);
    default_i32(&sp->has_successfuljobshistorylimit, &sp->successfuljobshistorylimit, 3);
    default_i32(&sp->has_failedjobshistorylimit, &sp->failedjobshistorylimit, 1);
    if (!sp->jobtemplate) {
        sp->jobtemplate = xmalloc(sizeof(*sp->jobtemplate));
        coracle__v1__job_template_spec__init(sp->jobtemplate);
    }
    if (!sp->jobtemplate->spec) {
        sp->jobtemplate->spec = xmalloc(sizeof(*sp->jobtemplate->spec));
        coracle__v1__job_spec__init(sp->jobtemplate->spec);
    }
    template_defaults(&sp->jobtemplate->spec->template_);
}

void admit_workload_defaults(const struct kind *k, ProtobufCMessage *obj)
{
    if (k == &kind_deployment) {
        Coracle__V1__Deployment *d = (void *)obj;
        if (!d->spec) {
            d->spec = xmalloc(sizeof(*d->spec));
            coracle__v1__deployment_spec__init(d->spec);
        }
        deployment_defaults(d->spec);
    } else if (k == &kind_replicaset) {
        Coracle__V1__ReplicaSet *rs = (void *)obj;
        if (!rs->spec) {
            rs->spec = xmalloc(sizeof(*rs->spec));
            coracle__v1__replica_set_spec__init(rs->spec);
        }
        default_i32(&rs->spec->has_replicas, &rs->spec->replicas, 1);
        template_defaults(&rs->spec->template_);
    } else if (k == &kind_daemonset) {
        Coracle__V1__DaemonSet *ds = (void *)obj;
        if (!ds->spec) {
            ds->spec = xmalloc(sizeof(*ds->spec));
            coracle__v1__daemon_set_spec__init(ds->spec);
        }
        daemonset_defaults(ds->spec);
    } else if (k == &kind_job) {
        job_defaults((void *)obj);
    } else if (k == &kind_cronjob) {
        cronjob_defaults((void *)obj);
    }
}

/* ---- the Job's generated selector ---- */

#define JOB_UID_LABEL "batch.kubernetes.io/controller-uid"
#define JOB_NAME_LABEL "batch.kubernetes.io/job-name"

/* Sets key to value in a map<string,string> unless the key is there. */
static void put_label(entry_t ***v, size_t *n, const char *key, const char *value)
{
    for (size_t i = 0; i < *n; i++)
        if ((*v)[i]->key && !strcmp((*v)[i]->key, key))
            return;
    entry_t *en = xmalloc(sizeof(*en));
    coracle__v1__object_meta__labels_entry__init(en);
    en->key = xstrdup(key);
    en->value = xstrdup(value);
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = en;
}

static void job_selector(Coracle__V1__Job *job)
{
    Coracle__V1__JobSpec *sp = job->spec;
    Coracle__V1__ObjectMeta *m = job->metadata;
    if (!sp || !m || (sp->has_manualselector && sp->manualselector))
        return;
    const char *uid = m->uid ? m->uid : "", *name = m->name ? m->name : "";
    Coracle__V1__PodTemplateSpec *t = template_defaults(&sp->template_);
    if (!t->metadata) {
        t->metadata = xmalloc(sizeof(*t->metadata));
        coracle__v1__object_meta__init(t->metadata);
    }
    put_label(&t->metadata->labels, &t->metadata->n_labels, "controller-uid", uid);
    put_label(&t->metadata->labels, &t->metadata->n_labels, JOB_UID_LABEL, uid);
    put_label(&t->metadata->labels, &t->metadata->n_labels, "job-name", name);
    put_label(&t->metadata->labels, &t->metadata->n_labels, JOB_NAME_LABEL, name);
    if (!sp->selector) {
        sp->selector = xmalloc(sizeof(*sp->selector));
        coracle__v1__label_selector__init(sp->selector);
    }
    put_label((entry_t ***)&sp->selector->matchlabels, &sp->selector->n_matchlabels, JOB_UID_LABEL,
              uid);
    /* as stored objects are read back in Kubernetes: the Job has its template's labels */
    if (!m->n_labels)
        copy_labels(m, t->metadata);
    obj_normalize(&job->base);
}

/* The object's status field (a message), reset to an empty one. */
static void reset_status(ProtobufCMessage *obj)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(obj->descriptor, "status");
    if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)
        return;
    ProtobufCMessage **st = (ProtobufCMessage **)((char *)obj + f->offset);
    const ProtobufCMessageDescriptor *d = f->descriptor;
    if (*st)
        obj_free(*st);
    *st = xmalloc(d->sizeof_message);
    d->message_init(*st);
}

void admit_workload_prepare_create(const struct kind *k, ProtobufCMessage *obj)
{
    if (k != &kind_deployment && k != &kind_replicaset && k != &kind_daemonset && k != &kind_job &&
        k != &kind_cronjob)
        return;
    reset_status(obj);
    if (k == &kind_job)
        job_selector((void *)obj);
}

/* ---- Go's %#v of the values Kubernetes' messages print ---- */

static void go_quote(struct buf *b, const char *s)
{
    buf_puts(b, "\"");
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_puts(b, "\\");
        buf_add(b, s, 1);
    }
    buf_puts(b, "\"");
}

/* map[string]string{"a":"b", "c":"d"}, keys sorted (maps are normalized), nil when empty */
static void go_map(struct buf *b, entry_t *const *v, size_t n)
{
    if (!n) {
        buf_puts(b, "map[string]string(nil)");
        return;
    }
    buf_puts(b, "map[string]string{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_puts(b, ", ");
        go_quote(b, v[i]->key);
        buf_puts(b, ":");
        go_quote(b, v[i]->value);
    }
    buf_puts(b, "}");
}

static void go_selector(struct buf *b, const Coracle__V1__LabelSelector *s)
{
    buf_puts(b, "v1.LabelSelector{MatchLabels:");
    go_map(b, (entry_t *const *)s->matchlabels, s->n_matchlabels);
    buf_puts(b, ", MatchExpressions:");
    if (!s->n_matchexpressions) {
        buf_puts(b, "[]v1.LabelSelectorRequirement(nil)}");
        return;
    }
    buf_puts(b, "[]v1.LabelSelectorRequirement{");
    for (size_t i = 0; i < s->n_matchexpressions; i++) {
        const Coracle__V1__LabelSelectorRequirement *r = s->matchexpressions[i];
        buf_puts(b, i ? ", v1.LabelSelectorRequirement{Key:" : "v1.LabelSelectorRequirement{Key:");
        go_quote(b, r->key);
        buf_puts(b, ", Operator:");
        go_quote(b, r->operator_);
        buf_puts(b, ", Values:");
        if (!r->n_values) {
            buf_puts(b, "[]string(nil)}");
            continue;
        }
        buf_puts(b, "[]string{");
        for (size_t j = 0; j < r->n_values; j++) {
            if (j)
                buf_puts(b, ", ");
            go_quote(b, r->values[j]);
        }
        buf_puts(b, "}}");
    }
    buf_puts(b, "}}");
}

static void go_ios(struct buf *b, const Coracle__V1__IntOrString *v)
{
    char n[64];
    snprintf(n, sizeof(n),
             "intstr.IntOrString{Type:%" PRId64 ", IntVal:%d, StrVal:", v ? v->type : 0,
             v ? v->intval : 0);
    buf_puts(b, n);
    go_quote(b, v ? v->strval : NULL);
    buf_puts(b, "}");
}

/* ---- selectors ---- */

static const char *map_get(entry_t *const *v, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (v[i]->key && !strcmp(v[i]->key, key))
            return v[i]->value ? v[i]->value : "";
    return NULL;
}

static bool str_in(const char *s, char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] && !strcmp(v[i], s))
            return true;
    return false;
}

/* LabelSelectorAsSelector(s).Matches(labels); a NULL selector matches nothing. */
static bool selector_matches(const Coracle__V1__LabelSelector *s, entry_t *const *l, size_t n)
{
    if (!s)
        return false;
    for (size_t i = 0; i < s->n_matchlabels; i++) {
        const char *v = map_get(l, n, s->matchlabels[i]->key ? s->matchlabels[i]->key : "");
        if (!v || strcmp(v, s->matchlabels[i]->value ? s->matchlabels[i]->value : ""))
            return false;
    }
    for (size_t i = 0; i < s->n_matchexpressions; i++) {
        const Coracle__V1__LabelSelectorRequirement *r = s->matchexpressions[i];
        const char *op = r->operator_ ? r->operator_ : "";
        const char *v = map_get(l, n, r->key ? r->key : "");
        bool ok = !strcmp(op, "In")             ? v && str_in(v, r->values, r->n_values)
                  : !strcmp(op, "NotIn")        ? !v || !str_in(v, r->values, r->n_values)
                  : !strcmp(op, "Exists")       ? v != NULL
                  : !strcmp(op, "DoesNotExist") ? v == NULL
                                                : false;
        if (!ok)
            return false;
    }
    return true;
}

void admit_selector_errs(struct errs *e, const char *path, const Coracle__V1__LabelSelector *s)
{
    for (size_t i = 0; i < s->n_matchexpressions; i++) {
        const Coracle__V1__LabelSelectorRequirement *r = s->matchexpressions[i];
        const char *op = r->operator_ ? r->operator_ : "";
        if (!strcmp(op, "In") || !strcmp(op, "NotIn")) {
            if (!r->n_values)
                admit_err(e,
                          "%s.matchExpressions[%zu].values: Required value: must be specified when "
                          "`operator` is 'In' or 'NotIn'",
                          path, i);
        } else if (!strcmp(op, "Exists") || !strcmp(op, "DoesNotExist")) {
            if (r->n_values)
                admit_err(e,
                          "%s.matchExpressions[%zu].values: Forbidden: may not be specified when "
                          "`operator` is 'Exists' or 'DoesNotExist'",
                          path, i);
        } else {
            admit_err(
                e,
                "%s.matchExpressions[%zu].operator: Invalid value: \"%s\": not a valid selector "
                "operator",
                path, i, op);
        }
        const char *why = admit_label_key_err(r->key ? r->key : "");
        if (why)
            admit_err(e, "%s.matchExpressions[%zu].key: Invalid value: \"%s\": %s", path, i,
                      r->key ? r->key : "", why);
    }
    char *p = xconcat(path, ".matchLabels", NULL);
    admit_label_errs(e, p, (entry_t *const *)s->matchlabels, s->n_matchlabels);
    free(p);
}

/* The selector and the template's labels (ValidatePodTemplateSpecFor*): `what` names the kind
 * in the empty-selector error; NULL when Kubernetes has none. */
static void check_selected_template(struct errs *e, const char *prefix,
                                    const Coracle__V1__LabelSelector *s,
                                    const Coracle__V1__PodTemplateSpec *t, const char *what)
{
    if (s && what && !s->n_matchlabels && !s->n_matchexpressions) {
        struct buf b = {0};
        go_selector(&b, s);
        admit_err(e, "%sselector: Invalid value: %s: empty selector is invalid for %s", prefix, b.p,
                  what);
        buf_free(&b);
    }
    const Coracle__V1__ObjectMeta *tm = t ? t->metadata : NULL;
    entry_t *const *l = tm ? tm->labels : NULL;
    size_t n = tm ? tm->n_labels : 0;
    bool empty = s && !s->n_matchlabels && !s->n_matchexpressions;
    if (!empty && !selector_matches(s, l, n)) {
        struct buf b = {0};
        go_map(&b, l, n);
        admit_err(
            e,
            "%stemplate.metadata.labels: Invalid value: %s: `selector` does not match template "
            "`labels`",
            prefix, b.p);
        buf_free(&b);
    }
}

/* ValidatePodTemplateSpec: labels at <prefix>template.labels, the pod spec. */
static void check_template(struct errs *e, const char *prefix,
                           const Coracle__V1__PodTemplateSpec *t)
{
    if (!t)
        return;
    if (t->metadata) {
        char *p = xconcat(prefix, "template.labels", NULL);
        admit_label_errs(e, p, t->metadata->labels, t->metadata->n_labels);
        free(p);
    }
    char *p = xconcat(prefix, "template.", NULL);
    admit_pod_template_errs(e, p, t->spec);
    free(p);
}

/* A template whose pods always restart (ReplicaSet, Deployment, DaemonSet). */
static void check_restart_always(struct errs *e, const char *prefix,
                                 const Coracle__V1__PodTemplateSpec *t, const char *kind)
{
    const Coracle__V1__PodSpec *sp = t ? t->spec : NULL;
    const char *rp = sp && sp->restartpolicy ? sp->restartpolicy : "";
    if (strcmp(rp, "Always"))
        admit_err(e,
                  "%stemplate.spec.restartPolicy: Unsupported value: \"%s\": supported values: "
                  "\"Always\"",
                  prefix, rp);
    if (sp && sp->has_activedeadlineseconds)
        admit_err(e,
                  "%stemplate.spec.activeDeadlineSeconds: Invalid value: %" PRId64
                  ": activeDeadlineSeconds in %s is not Supported",
                  prefix, sp->activedeadlineseconds, kind);
}

static void nonneg(struct errs *e, const char *prefix, const char *field, bool has, int64_t v)
{
    if (has && v < 0)
        admit_err(e, "%s%s: Invalid value: %" PRId64 ": must be greater than or equal to 0", prefix,
                  field, v);
}

/* ---- IntOrString: numbers or percentages ---- */

#define PERCENT_MSG                                                                                \
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or "   \
    "'93%', regex used for validation is '[0-9]+%')"

/* The percentage of "NN%", or -1. */
static long percent(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 2 || n > 10 || s[n - 1] != '%')
        return -1;
    long v = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* getIntOrPercentValue: the number or the percentage's number (0 when unset or invalid). */
static long ios_value(const Coracle__V1__IntOrString *v)
{
    if (!v)
        return 0;
    if (v->type == 1) {
        long p = percent(v->strval);
        return p < 0 ? 0 : p;
    }
    return v->intval;
}

/* ValidatePositiveIntOrPercent and IsNotMoreThan100Percent at <path>. */
static void check_ios(struct errs *e, const char *path, const Coracle__V1__IntOrString *v)
{
    if (!v)
        return;
    struct buf b = {0};
    go_ios(&b, v);
    if (v->type == 1) {
        long p = percent(v->strval);
        if (p < 0)
            admit_err(e, "%s: Invalid value: %s: %s", path, b.p, PERCENT_MSG);
        else if (p > 100)
            admit_err(e, "%s: Invalid value: %s: must not be greater than 100%%", path, b.p);
    } else if (v->intval < 0) {
        admit_err(e, "%s: Invalid value: %d: must be greater than or equal to 0", path, v->intval);
    }
    buf_free(&b);
}

/* ---- the kinds ---- */

static void check_deployment(struct errs *e, const Coracle__V1__DeploymentSpec *sp)
{
    nonneg(e, "spec.", "replicas", sp->has_replicas, sp->replicas);
    if (!sp->selector) {
        admit_err(e, "spec.selector: Required value");
        return;
    }
    admit_selector_errs(e, "spec.selector", sp->selector);
    check_selected_template(e, "spec.", sp->selector, sp->template_, "deployment");
    check_template(e, "spec.", sp->template_);
    check_restart_always(e, "spec.", sp->template_, "ReplicaSet");
    const Coracle__V1__DeploymentStrategy *st = sp->strategy;
    const char *type = st && st->type ? st->type : "";
    if (!strcmp(type, "Recreate")) {
        if (st->rollingupdate)
            admit_err(e,
                      "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy "
                      "`type` is 'Recreate'");
    } else if (!strcmp(type, "RollingUpdate")) {
        const Coracle__V1__RollingUpdateDeployment *ru = st->rollingupdate;
        if (!ru) {
            admit_err(e,
                      "spec.strategy.rollingUpdate: Required value: this should be defaulted and "
                      "never be nil");
        } else {
            check_ios(e, "spec.strategy.rollingUpdate.maxUnavailable", ru->maxunavailable);
            check_ios(e, "spec.strategy.rollingUpdate.maxSurge", ru->maxsurge);
            if (ios_value(ru->maxunavailable) == 0 && ios_value(ru->maxsurge) == 0) {
                struct buf b = {0};
                go_ios(&b, ru->maxunavailable);
                admit_err(
                    e,
                    "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: %s: may not be "
                    "0 when `maxSurge` is 0",
                    b.p);
                buf_free(&b);
            }
        }
    } else {
        admit_err(e,
                  "spec.strategy.type: Unsupported value: \"%s\": supported values: \"Recreate\", "
                  "\"RollingUpdate\"",
                  type);
    }
    nonneg(e, "spec.", "minReadySeconds", true, sp->minreadyseconds);
    nonneg(e, "spec.", "revisionHistoryLimit", sp->has_revisionhistorylimit,
           sp->revisionhistorylimit);
    if (sp->has_progressdeadlineseconds) {
        nonneg(e, "spec.", "progressDeadlineSeconds", true, sp->progressdeadlineseconds);
        if (sp->progressdeadlineseconds <= sp->minreadyseconds)
            admit_err(e,
                      "spec.progressDeadlineSeconds: Invalid value: %d: must be greater than "
                      "minReadySeconds",
                      sp->progressdeadlineseconds);
    }
}

static void check_replicaset(struct errs *e, const Coracle__V1__ReplicaSetSpec *sp)
{
    nonneg(e, "spec.", "replicas", sp->has_replicas, sp->replicas);
    nonneg(e, "spec.", "minReadySeconds", true, sp->minreadyseconds);
    if (!sp->selector) {
        admit_err(e, "spec.selector: Required value");
        return;
    }
    admit_selector_errs(e, "spec.selector", sp->selector);
    check_selected_template(e, "spec.", sp->selector, sp->template_, "deployment");
    check_template(e, "spec.", sp->template_);
    check_restart_always(e, "spec.", sp->template_, "ReplicaSet");
}

static void check_daemonset(struct errs *e, const Coracle__V1__DaemonSetSpec *sp)
{
    if (sp->selector)
        admit_selector_errs(e, "spec.selector", sp->selector);
    check_selected_template(e, "spec.", sp->selector, sp->template_, "daemonset");
    check_template(e, "spec.", sp->template_);
    check_restart_always(e, "spec.", sp->template_, "DaemonSet");
    nonneg(e, "spec.", "minReadySeconds", true, sp->minreadyseconds);
    const Coracle__V1__DaemonSetUpdateStrategy *st = sp->updatestrategy;
    const char *type = st && st->type ? st->type : "";
    if (!strcmp(type, "RollingUpdate")) {
        const Coracle__V1__RollingUpdateDaemonSet *ru = st->rollingupdate;
        if (!ru) {
            admit_err(e,
                      "spec.updateStrategy.rollingUpdate: Required value: this should be defaulted "
                      "and never be nil");
        } else {
            check_ios(e, "spec.updateStrategy.rollingUpdate.maxUnavailable", ru->maxunavailable);
            check_ios(e, "spec.updateStrategy.rollingUpdate.maxSurge", ru->maxsurge);
            bool unavail = ios_value(ru->maxunavailable) != 0, surge = ios_value(ru->maxsurge) != 0;
            if (unavail && surge) {
                struct buf b = {0};
                go_ios(&b, ru->maxsurge);
                admit_err(
                    e,
                    "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: %s: may not be "
                    "set when maxUnavailable is non-zero",
                    b.p);
                buf_free(&b);
            } else if (!unavail && !surge) {
                admit_err(
                    e, "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot "
                       "be 0 when maxSurge is 0");
            }
        }
    } else if (strcmp(type, "OnDelete")) {
        admit_err(e,
                  "spec.updateStrategy.type: Unsupported value: \"%s\": supported values: "
                  "\"OnDelete\", \"RollingUpdate\"",
                  type);
    }
    nonneg(e, "spec.", "revisionHistoryLimit", sp->has_revisionhistorylimit,
           sp->revisionhistorylimit);
}

/* validateJobSpec at prefix ("spec." or "spec.jobTemplate.spec."); selected: the selector
 * must be there and match (a Job's own once generated, or a manual one). */
static void check_job_spec(struct errs *e, const char *prefix, const Coracle__V1__JobSpec *sp,
                           bool selected)
{
    nonneg(e, prefix, "parallelism", sp->has_parallelism, sp->parallelism);
    nonneg(e, prefix, "completions", sp->has_completions, sp->completions);
    nonneg(e, prefix, "activeDeadlineSeconds", sp->has_activedeadlineseconds,
           sp->activedeadlineseconds);
    nonneg(e, prefix, "backoffLimit", sp->has_backofflimit, sp->backofflimit);
    nonneg(e, prefix, "ttlSecondsAfterFinished", sp->has_ttlsecondsafterfinished,
           sp->ttlsecondsafterfinished);
    const char *cm = sp->completionmode ? sp->completionmode : "";
    if (*cm && strcmp(cm, "NonIndexed") && strcmp(cm, "Indexed"))
        admit_err(e,
                  "%scompletionMode: Unsupported value: \"%s\": supported values: \"NonIndexed\", "
                  "\"Indexed\"",
                  prefix, cm);
    if (!strcmp(cm, "Indexed") && !sp->has_completions)
        admit_err(e, "%scompletions: Required value: when completion mode is Indexed", prefix);
    const char *prp = sp->podreplacementpolicy ? sp->podreplacementpolicy : "";
    if (*prp && strcmp(prp, "TerminatingOrFailed") && strcmp(prp, "Failed"))
        admit_err(e,
                  "%spodReplacementPolicy: Unsupported value: \"%s\": supported values: "
                  "\"Failed\", \"TerminatingOrFailed\"",
                  prefix, prp);
    check_template(e, prefix, sp->template_);
    const Coracle__V1__PodSpec *ps = sp->template_ ? sp->template_->spec : NULL;
    const char *rp = ps && ps->restartpolicy ? ps->restartpolicy : "";
    if (!*rp || !strcmp(rp, "Always"))
        admit_err(e,
                  "%stemplate.spec.restartPolicy: Required value: valid values: \"OnFailure\", "
                  "\"Never\"",
                  prefix);
    else if (strcmp(rp, "OnFailure") && strcmp(rp, "Never"))
        admit_err(e,
                  "%stemplate.spec.restartPolicy: Unsupported value: \"%s\": supported values: "
                  "\"OnFailure\", \"Never\"",
                  prefix, rp);
    if (!selected)
        return;
    if (!sp->selector) {
        admit_err(e, "%sselector: Required value", prefix);
        return;
    }
    char *p = xconcat(prefix, "selector", NULL);
    admit_selector_errs(e, p, sp->selector);
    free(p);
    check_selected_template(e, prefix, sp->selector, sp->template_, NULL);
}

/* The IANA zone files the controller manager reads a timeZone from. */
#define ZONEINFO "/usr/share/zoneinfo/"

/* validateTimeZone: "UTC" or a zone name the system's zone database has. */
static void check_time_zone(struct errs *e, const Coracle__V1__CronJobSpec *sp)
{
    const char *tz = sp->timezone;
    if (!tz)
        return;
    if (!*tz) {
        admit_err(e,
                  "spec.timeZone: Invalid value: \"\": timeZone must be nil or non-empty string");
        return;
    }
    if (!strcasecmp(tz, "Local")) {
        admit_err(e,
                  "spec.timeZone: Invalid value: \"%s\": timeZone must be an explicit time zone as "
                  "defined in https://www.iana.org/time-zones",
                  tz);
        return;
    }
    bool ok = !strcmp(tz, "UTC");
    if (!ok && tz[0] != '/' && !strstr(tz, "..") && strlen(tz) < 200) {
        char *path = xconcat(ZONEINFO, tz, NULL);
        ok = access(path, R_OK) == 0;
        free(path);
    }
    if (!ok)
        admit_err(e, "spec.timeZone: Invalid value: \"%s\": unknown time zone %s", tz, tz);
}

static void check_cronjob(struct errs *e, const Coracle__V1__CronJob *cj)
{
    const Coracle__V1__ObjectMeta *m = cj->metadata;
    if (m && m->name && strlen(m->name) > 52)
        admit_err(e, "metadata.name: Invalid value: \"%s\": must be no more than 52 characters",
                  m->name);
    const Coracle__V1__CronJobSpec *sp = cj->spec;
    if (!sp)
        return;
    const char *sched = sp->schedule ? sp->schedule : "";
    if (!*sched) {
        admit_err(e, "spec.schedule: Required value");
    } else {
        struct cron_sched cs;
        char *why = NULL;
        if (cron_parse(sched, &cs, &why) < 0)
            admit_err(e, "spec.schedule: Invalid value: \"%s\": %s", sched, why);
        free(why);
        if (strstr(sched, "TZ"))
            admit_err(
                e,
                "spec.schedule: Invalid value: \"%s\": cannot use TZ or CRON_TZ in schedule, use "
                "timeZone field instead",
                sched);
    }
    nonneg(e, "spec.", "startingDeadlineSeconds", sp->has_startingdeadlineseconds,
           sp->startingdeadlineseconds);
    const char *cp = sp->concurrencypolicy ? sp->concurrencypolicy : "";
    if (!*cp)
        admit_err(e, "spec.concurrencyPolicy: Required value");
    else if (strcmp(cp, "Allow") && strcmp(cp, "Forbid") && strcmp(cp, "Replace"))
        admit_err(e,
                  "spec.concurrencyPolicy: Unsupported value: \"%s\": supported values: \"Allow\", "
                  "\"Forbid\", \"Replace\"",
                  cp);
    if (sp->jobtemplate && sp->jobtemplate->spec)
        check_job_spec(e, "spec.jobTemplate.spec.", sp->jobtemplate->spec, false);
    nonneg(e, "spec.", "successfulJobsHistoryLimit", sp->has_successfuljobshistorylimit,
           sp->successfuljobshistorylimit);
    nonneg(e, "spec.", "failedJobsHistoryLimit", sp->has_failedjobshistorylimit,
           sp->failedjobshistorylimit);
    check_time_zone(e, sp);
}

void admit_workload_validate(struct errs *e, const struct kind *k, const ProtobufCMessage *obj)
{
    if (k == &kind_deployment && ((const Coracle__V1__Deployment *)obj)->spec) {
        check_deployment(e, ((const Coracle__V1__Deployment *)obj)->spec);
    } else if (k == &kind_replicaset && ((const Coracle__V1__ReplicaSet *)obj)->spec) {
        check_replicaset(e, ((const Coracle__V1__ReplicaSet *)obj)->spec);
    } else if (k == &kind_daemonset && ((const Coracle__V1__DaemonSet *)obj)->spec) {
        check_daemonset(e, ((const Coracle__V1__DaemonSet *)obj)->spec);
    } else if (k == &kind_job && ((const Coracle__V1__Job *)obj)->spec) {
        const Coracle__V1__JobSpec *sp = ((const Coracle__V1__Job *)obj)->spec;
        /* a generated selector is made at create, once the uid is known */
        check_job_spec(e, "spec.", sp, sp->has_manualselector && sp->manualselector);
    } else if (k == &kind_cronjob) {
        check_cronjob(e, (const void *)obj);
    }
}

/* ---- updates ---- */

/* The selector of a kind that has one at spec.selector, or NULL; *has: the kind has one. */
static const Coracle__V1__LabelSelector *spec_selector(const struct kind *k,
                                                       const ProtobufCMessage *obj, bool *has)
{
    *has = true;
    if (k == &kind_deployment)
        return ((const Coracle__V1__Deployment *)obj)->spec
                   ? ((const Coracle__V1__Deployment *)obj)->spec->selector
                   : NULL;
    if (k == &kind_replicaset)
        return ((const Coracle__V1__ReplicaSet *)obj)->spec
                   ? ((const Coracle__V1__ReplicaSet *)obj)->spec->selector
                   : NULL;
    if (k == &kind_daemonset)
        return ((const Coracle__V1__DaemonSet *)obj)->spec
                   ? ((const Coracle__V1__DaemonSet *)obj)->spec->selector
                   : NULL;
    if (k == &kind_job)
        return ((const Coracle__V1__Job *)obj)->spec
                   ? ((const Coracle__V1__Job *)obj)->spec->selector
                   : NULL;
    *has = false;
    return NULL;
}

void admit_workload_update(struct errs *e, const struct kind *k, const ProtobufCMessage *old,
                           const ProtobufCMessage *upd)
{
    bool has;
    const Coracle__V1__LabelSelector *a = spec_selector(k, old, &has),
                                     *b = spec_selector(k, upd, &has);
    if (!has)
        return;
    bool same = (!a && !b) || (a && b && obj_equal(&a->base, &b->base));
    if (!same) {
        struct buf v = {0};
        if (b)
            go_selector(&v, b);
        else
            buf_puts(&v, "\"null\"");
        admit_err(e, "spec.selector: Invalid value: %s: field is immutable", v.p);
        buf_free(&v);
    }
    if (k == &kind_job) {
        const Coracle__V1__JobSpec *x = ((const Coracle__V1__Job *)old)->spec,
                                   *y = ((const Coracle__V1__Job *)upd)->spec;
        if (x && y &&
            (x->has_completions != y->has_completions || x->completions != y->completions))
            admit_err(e, "spec.completions: Invalid value: %d: field is immutable", y->completions);
        if (y)
            check_selected_template(e, "spec.", y->selector, y->template_, NULL);
    }
}
