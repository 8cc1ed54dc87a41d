/*
 * test_admit: defaults and validation messages of the apiserver's
 * admission stage (src/apiserver/admit.c), as golden strings in
 * Kubernetes' format.
 */
#include "config.h"
#include "admit.h"
#include "kobj.h"
#include "obj.h"
#include "tap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static Coracle__V1__Container *ctr(const char *name, const char *image)
{
    Coracle__V1__Container *c = xmalloc(sizeof(*c));
    coracle__v1__container__init(c);
    c->name = name ? xstrdup(name) : NULL;
    c->image = image ? xstrdup(image) : NULL;
    return c;
}

static Coracle__V1__Pod *pod(const char *name, size_t n, Coracle__V1__Container **cs)
{
    Coracle__V1__Pod *p = xmalloc(sizeof(*p));
    coracle__v1__pod__init(p);
    Coracle__V1__ObjectMeta *m = obj_meta(&p->base);
    m->name = name ? xstrdup(name) : NULL;
    p->spec = xmalloc(sizeof(*p->spec));
    coracle__v1__pod_spec__init(p->spec);
    p->spec->n_containers = n;
    p->spec->containers = xmalloc((n ? n : 1) * sizeof(*cs));
    memcpy(p->spec->containers, cs, n * sizeof(*cs));
    return p;
}

static void check(Coracle__V1__Pod *p, const char *want, const char *what)
{
    char *msg = NULL;
    admit_defaults(&kind_pod, &p->base);
    int r = admit_validate(&kind_pod, &p->base, &msg);
    if (!want)
        ok(r == 0 && !msg, "%s: valid%s%s", what, msg ? ": " : "", msg ? msg : "");
    else
        is_str(msg, want, what);
    free(msg);
    obj_free(&p->base);
}

static void add_port(Coracle__V1__Container *c, int port, const char *proto)
{
    Coracle__V1__ContainerPort *p = xmalloc(sizeof(*p));
    coracle__v1__container_port__init(p);
    p->has_containerport = 1;
    p->containerport = port;
    p->protocol = proto ? xstrdup(proto) : NULL;
    c->ports = xrealloc(c->ports, (c->n_ports + 1) * sizeof(*c->ports));
    c->ports[c->n_ports++] = p;
}

/* One object of a YAML manifest, defaulted. */
static ProtobufCMessage *manifest(const char *yaml, const struct kind **k)
{
    struct kobjs objs = {0};
    char *err = NULL;
    if (kobj_parse("t.yaml", yaml, strlen(yaml), &objs, &err) < 0 || objs.n != 1)
        fatal("test manifest: %s", err ? err : "not one object");
    ProtobufCMessage *m = objs.v[0].msg;
    *k = objs.v[0].kind;
    objs.v[0].msg = NULL;
    kobjs_free(&objs);
    admit_defaults(*k, m);
    return m;
}

/* The admission message of a manifest (NULL: valid). */
static void wl_check(const char *yaml, const char *want, const char *what)
{
    const struct kind *k;
    ProtobufCMessage *m = manifest(yaml, &k);
    char *msg = NULL;
    int r = admit_validate(k, m, &msg);
    if (!want)
        ok(r == 0 && !msg, "%s: valid%s%s", what, msg ? ": " : "", msg ? msg : "");
    else
        is_str(msg, want, what);
    free(msg);
    obj_free(m);
}

#define JOB_TEMPLATE(restart)                                                                      \
    "  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: " restart \
    "\n          containers: [{name: c, image: busybox}]\n"
#define TEMPLATE(labels, restart)                                                                  \
    "  template:\n    metadata: {labels: " labels "}\n    spec:\n      restartPolicy: " restart    \
    "\n      containers: [{name: c, image: nginx}]\n"

static void workloads(void)
{
    const struct kind *k;
    Coracle__V1__Deployment *d =
        (void *)manifest("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n"
                         "  selector: {matchLabels: {app: d}}\n" TEMPLATE("{app: d}", "Always"),
                         &k);
    ok(d->spec->has_replicas && d->spec->replicas == 1, "Deployment: replicas 1");
    is_str(d->spec->strategy->type, "RollingUpdate", "Deployment: RollingUpdate");
    is_str(d->spec->strategy->rollingupdate->maxsurge->strval, "25%", "Deployment: maxSurge 25%");
    is_str(d->spec->strategy->rollingupdate->maxunavailable->strval, "25%",
           "Deployment: maxUnavailable 25%");
    is_int(d->spec->revisionhistorylimit, 10, "Deployment: revisionHistoryLimit 10");
    is_int(d->spec->progressdeadlineseconds, 600, "Deployment: progressDeadlineSeconds 600");
    is_str(d->spec->template_->spec->dnspolicy, "ClusterFirst", "Deployment: the pod defaults");
    is_str(d->spec->template_->spec->containers[0]->imagepullpolicy, "Always",
           "Deployment: the containers' defaults");
    obj_free(&d->base);

    Coracle__V1__DaemonSet *ds =
        (void *)manifest("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: ds}\nspec:\n"
                         "  selector: {matchLabels: {app: d}}\n" TEMPLATE("{app: d}", "Always"),
                         &k);
    const Coracle__V1__RollingUpdateDaemonSet *ru = ds->spec->updatestrategy->rollingupdate;
    ok(ru->maxunavailable->type == 0 && ru->maxunavailable->intval == 1 &&
           ru->maxsurge->has_intval && ru->maxsurge->intval == 0,
       "DaemonSet: maxUnavailable 1, maxSurge 0");
    obj_free(&ds->base);

    Coracle__V1__Job *j =
        (void *)manifest("apiVersion: batch/v1\nkind: Job\nmetadata: {name: j, namespace: ns}\n"
                         "spec:\n" TEMPLATE("{a: b}", "Never"),
                         &k);
    ok(j->spec->completions == 1 && j->spec->parallelism == 1 && j->spec->backofflimit == 6,
       "Job: completions 1, parallelism 1, backoffLimit 6");
    ok(j->metadata->n_labels == 1, "Job: its template's labels");
    obj_set_str(&j->metadata->uid, "u-1");
    admit_prepare_create(&kind_job, &j->base);
    ok(j->spec->selector && j->spec->selector->n_matchlabels == 1, "Job: a generated selector");
    is_str(j->spec->selector->matchlabels[0]->value, "u-1", "Job: the selector names its uid");
    is_int((int)j->spec->template_->metadata->n_labels, 5,
           "Job: four labels added to the template");
    ok(j->status != NULL, "Job: an empty status");
    char *msg = NULL;
    ok(admit_update(&kind_job, &j->base, &j->base, &msg) == 0, "Job: an unchanged update is valid");
    free(msg);
    obj_free(&j->base);

    Coracle__V1__CronJob *cj =
        (void *)manifest("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  "
                         "schedule: '@daily'\n" JOB_TEMPLATE("OnFailure"),
                         &k);
    ok(!strcmp(cj->spec->concurrencypolicy, "Allow") && cj->spec->has_suspend &&
           !cj->spec->suspend && cj->spec->successfuljobshistorylimit == 3 &&
           cj->spec->failedjobshistorylimit == 1,
       "CronJob: Allow, not suspended, history 3 and 1");
    obj_free(&cj->base);

    wl_check("apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r}\nspec:\n"
             "  selector: {matchLabels: {app: x}}\n" TEMPLATE("{app: y}", "Always"),
             "ReplicaSet.apps \"r\" is invalid: spec.template.metadata.labels: Invalid value: "
             "map[string]string{\"app\":\"y\"}: `selector` does not match template `labels`",
             "ReplicaSet: selector and labels");
    wl_check(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r}\nspec:\n"
        "  selector: {matchExpressions: [{key: app, operator: NotIn, values: [x]}]}\n" TEMPLATE(
            "{app: y}", "Always"),
        NULL, "ReplicaSet: a NotIn selector");
    wl_check("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: '* "
             "*'\n" JOB_TEMPLATE("Always"),
             "CronJob.batch \"c\" is invalid: [spec.schedule: Invalid value: \"* *\": expected "
             "exactly 5 "
             "fields, found 2: [* *], spec.jobTemplate.spec.template.spec.restartPolicy: Required "
             "value: valid values: \"OnFailure\", \"Never\"]",
             "CronJob: the schedule and the template's restart policy");

    const struct kind *k2;
    ProtobufCMessage *a = manifest("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
                                   "spec:\n  selector: {matchLabels: {app: d}}\n" TEMPLATE(
                                       "{app: d, b: c}", "Always"),
                                   &k),
                     *b = manifest("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
                                   "spec:\n  selector: {matchLabels: {app: d, b: c}}\n" TEMPLATE(
                                       "{app: d, b: c}", "Always"),
                                   &k2);
    msg = NULL;
    ok(admit_update(k, a, b, &msg) < 0, "Deployment: a new selector is refused");
    is_str(msg,
           "Deployment.apps \"d\" is invalid: spec.selector: Invalid value: "
           "v1.LabelSelector{MatchLabels:"
           "map[string]string{\"app\":\"d\", \"b\":\"c\"}, MatchExpressions:[]v1."
           "LabelSelectorRequirement(nil)}: field is immutable",
           "  its message");
    free(msg);
    obj_free(a);
    obj_free(b);
}

static void set_finalizers(Coracle__V1__ObjectMeta *m, size_t n, const char *const *f)
{
    m->finalizers = xcalloc(n + 1, sizeof(*m->finalizers));
    for (size_t i = 0; i < n; i++)
        m->finalizers[i] = xstrdup(f[i]);
    m->n_finalizers = n;
}

/* Once deletionTimestamp is set finalizers may go but not come: the new ones sorted, once. */
static void test_finalizers_update(void)
{
    static const char *const was[] = {"a/x"}, *const now[] = {"a/x", "b/z", "a/y", "b/z"};
    Coracle__V1__ConfigMap *old = xmalloc(sizeof(*old)), *upd = xmalloc(sizeof(*upd));
    coracle__v1__config_map__init(old);
    coracle__v1__config_map__init(upd);
    obj_set_str(&obj_meta(&old->base)->name, "c");
    obj_set_str(&obj_meta(&upd->base)->name, "c");
    set_finalizers(old->metadata, 1, was);
    set_finalizers(upd->metadata, 4, now);
    char *msg = NULL;
    ok(admit_update(&kind_configmap, &old->base, &upd->base, &msg) == 0 && !msg,
       "finalizers may be added while the object is not being deleted");
    old->metadata->deletiontimestamp = obj_time(1);
    admit_update(&kind_configmap, &old->base, &upd->base, &msg);
    is_str(msg,
           "ConfigMap \"c\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be "
           "added if the object is being deleted, found new finalizers []string{\"a/y\", \"b/z\"}",
           "no new finalizers once it is being deleted");
    free(msg);
    msg = NULL;
    upd->metadata->deletiontimestamp = obj_time(1);
    ok(admit_update(&kind_configmap, &upd->base, &old->base, &msg) == 0 && !msg,
       "removing them is fine");
    obj_free(&old->base);
    obj_free(&upd->base);
}

int main(void)
{
    workloads();
    Coracle__V1__Container *c[4];

    c[0] = ctr("web", "nginx");
    c[1] = ctr("1st", "busybox:1.36");
    Coracle__V1__Pod *p = pod("mc1", 2, c);
    admit_defaults(&kind_pod, &p->base);
    is_str(p->metadata->namespace_, "default", "namespace defaults to default");
    is_str(p->spec->restartpolicy, "Always", "restartPolicy default");
    is_int(p->spec->terminationgraceperiodseconds, 30, "grace default");
    is_str(p->spec->schedulername, "default-scheduler", "schedulerName default");
    is_str(p->spec->containers[0]->imagepullpolicy, "Always", "untagged image pulls Always");
    is_str(p->spec->containers[1]->imagepullpolicy, "IfNotPresent", "tagged image IfNotPresent");
    is_str(admit_pod_qos(p->spec), "BestEffort", "qos BestEffort");
    check(p, NULL, "two containers, '1st' is a valid DNS-1123 label");

    c[0] = ctr("web", NULL);
    check(pod("x", 1, c), "Pod \"x\" is invalid: spec.containers[0].image: Required value",
          "image required");

    c[0] = ctr("a", "i");
    c[1] = ctr(NULL, "i");
    c[2] = ctr("a", "i");
    c[3] = ctr("Bad_Name", "i");
    check(pod("x", 4, c),
          "Pod \"x\" is invalid: [spec.containers[1].name: Required value, "
          "spec.containers[2].name: Duplicate value: \"a\", spec.containers[3].name: Invalid "
          "value: \"Bad_Name\": a lowercase RFC 1123 label must consist of lower case "
          "alphanumeric characters or '-', and must start and end with an alphanumeric character "
          "(e.g. 'my-name',  or '123-abc', regex used for validation is "
          "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')]",
          "several container errors, listed in order");

    check(pod("x", 0, c), "Pod \"x\" is invalid: spec.containers: Required value",
          "containers required");

    c[0] = ctr("a", "i");
    check(pod("Bad.Name", 1, c),
          "Pod \"Bad.Name\" is invalid: metadata.name: Invalid value: \"Bad.Name\": a lowercase "
          "RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
          "and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
          "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
          "pod name must be a DNS-1123 subdomain");
    c[0] = ctr("a", "i");
    check(pod("a.b-c.d", 1, c), NULL, "dotted pod name is valid");
    c[0] = ctr("a", "i");
    check(pod(NULL, 1, c),
          "Pod \"\" is invalid: metadata.name: Required value: name or generateName is required",
          "name required");
    char longname[300];
    memset(longname, 'a', 254);
    longname[254] = 0;
    c[0] = ctr("a", "i");
    p = pod(longname, 1, c);
    char *msg = NULL;
    admit_validate(&kind_pod, &p->base, &msg);
    ok(msg && strstr(msg, ": must be no more than 253 characters"), "name too long");
    free(msg);
    obj_free(&p->base);

    /* managedFields a client sends */
    c[0] = ctr("a", "i");
    p = pod("x", 1, c);
    Coracle__V1__ObjectMeta *pm = p->metadata;
    pm->n_managedfields = 2;
    pm->managedfields = xcalloc(2, sizeof(*pm->managedfields));
    for (size_t i = 0; i < 2; i++) {
        pm->managedfields[i] = xmalloc(sizeof(*pm->managedfields[i]));
        coracle__v1__managed_fields_entry__init(pm->managedfields[i]);
    }
    pm->managedfields[0]->manager = xstrdup("kubectl");
    pm->managedfields[0]->operation = xstrdup("Apply");
    pm->managedfields[0]->fieldstype = xstrdup("FieldsV1");
    pm->managedfields[1]->manager = xstrdup("a\tb");
    pm->managedfields[1]->operation = xstrdup("Patch");
    pm->managedfields[1]->fieldstype = xstrdup("FieldsV2");
    check(p,
          "Pod \"x\" is invalid: [metadata.managedFields[1].operation: Invalid value: \"Patch\": "
          "must be `Apply` or `Update`, metadata.managedFields[1].fieldsType: Invalid value: "
          "\"FieldsV2\": must be `FieldsV1`, metadata.managedFields[1].manager: Invalid value: "
          "\"a\tb\": invalid character U+0009 (at position 1)]",
          "managedFields entries");
    /* fieldsV1: a JSON object, since answers carry its bytes as they are */
    static const char *const raws[] = {"{\"f:metadata\":{}}", "[1]", "{\"f:a\":"};
    c[0] = ctr("a", "i");
    p = pod("x", 1, c);
    pm = p->metadata;
    pm->n_managedfields = 3;
    pm->managedfields = xcalloc(3, sizeof(*pm->managedfields));
    for (size_t i = 0; i < 3; i++) {
        Coracle__V1__ManagedFieldsEntry *f = pm->managedfields[i] = xmalloc(sizeof(*f));
        coracle__v1__managed_fields_entry__init(f);
        f->manager = xstrdup("m");
        f->operation = xstrdup("Update");
        f->fieldsv1 = xmalloc(sizeof(*f->fieldsv1));
        coracle__v1__fields_v1__init(f->fieldsv1);
        f->fieldsv1->has_raw = 1;
        f->fieldsv1->raw.len = strlen(raws[i]);
        f->fieldsv1->raw.data = (uint8_t *)xstrdup(raws[i]);
    }
    check(p,
          "Pod \"x\" is invalid: [metadata.managedFields[1].fieldsV1: Invalid value: must be a "
          "JSON object, metadata.managedFields[2].fieldsV1: Invalid value: must be a JSON object]",
          "managedFields' fieldsV1: JSON objects only");
    char lm[200];
    memset(lm, 'm', 129);
    lm[129] = 0;
    msg = admit_field_manager(lm);
    is_str(msg, "Too long: may not be more than 128 bytes", "field manager too long");
    free(msg);
    ok(!admit_field_manager("kubectl-client-side-apply"), "a field manager");

    c[0] = ctr("a", "i");
    add_port(c[0], 70000, NULL);
    add_port(c[0], 0, NULL);
    add_port(c[0], 80, "HTTP");
    check(pod("x", 1, c),
          "Pod \"x\" is invalid: [spec.containers[0].ports[0].containerPort: Invalid value: "
          "70000: must be between 1 and 65535, inclusive, "
          "spec.containers[0].ports[1].containerPort: Required value, "
          "spec.containers[0].ports[2].protocol: Unsupported value: \"HTTP\": supported values: "
          "\"SCTP\", \"TCP\", \"UDP\"]",
          "ports");

    c[0] = ctr("a", "i");
    p = pod("x", 1, c);
    p->spec->restartpolicy = xstrdup("Sometimes");
    check(p,
          "Pod \"x\" is invalid: spec.restartPolicy: Unsupported value: \"Sometimes\": "
          "supported values: \"Always\", \"OnFailure\", \"Never\"",
          "restartPolicy enum");

    /* volumes and mounts */
    c[0] = ctr("a", "i");
    c[0]->n_volumemounts = 1;
    c[0]->volumemounts = xmalloc(sizeof(*c[0]->volumemounts));
    c[0]->volumemounts[0] = xmalloc(sizeof(Coracle__V1__VolumeMount));
    coracle__v1__volume_mount__init(c[0]->volumemounts[0]);
    c[0]->volumemounts[0]->name = xstrdup("data");
    c[0]->volumemounts[0]->mountpath = xstrdup("/data");
    p = pod("x", 1, c);
    p->spec->n_volumes = 1;
    p->spec->volumes = xmalloc(sizeof(*p->spec->volumes));
    p->spec->volumes[0] = xmalloc(sizeof(Coracle__V1__Volume));
    coracle__v1__volume__init(p->spec->volumes[0]);
    p->spec->volumes[0]->name = xstrdup("cache");
    check(p,
          "Pod \"x\" is invalid: [spec.volumes[0]: Required value: must specify a volume type, "
          "spec.containers[0].volumeMounts[0].name: Not found: \"data\"]",
          "volume type and mount reference");

    /* quantities */
    c[0] = ctr("a", "i");
    c[0]->resources = xmalloc(sizeof(Coracle__V1__ResourceRequirements));
    coracle__v1__resource_requirements__init(c[0]->resources);
    c[0]->resources->n_limits = 1;
    c[0]->resources->limits = xmalloc(sizeof(void *));
    Coracle__V1__ResourceRequirements__LimitsEntry *le = xmalloc(sizeof(*le));
    coracle__v1__resource_requirements__limits_entry__init(le);
    le->key = xstrdup("cpu");
    le->value = xmalloc(sizeof(Coracle__V1__Quantity));
    coracle__v1__quantity__init(le->value);
    le->value->string = xstrdup("abc");
    c[0]->resources->limits[0] = le;
    p = pod("x", 1, c);
    msg = NULL;
    admit_validate(&kind_pod, &p->base, &msg);
    ok(msg && strstr(msg, "spec.containers[0].resources.limits[cpu]: Invalid value: \"abc\": "),
       "bad quantity named with its path: %s", msg ? msg : "(none)");
    free(msg);
    free(le->value->string);
    le->value->string = xstrdup("500m");
    admit_defaults(&kind_pod, &p->base);
    is_str(p->spec->containers[0]->resources->requests[0]->value->string, "500m",
           "requests default to limits");
    is_str(admit_pod_qos(p->spec), "Burstable", "qos Burstable (no memory limit)");
    msg = NULL;
    ok(admit_validate(&kind_pod, &p->base, &msg) == 0, "valid quantity");
    free(msg);

    /* update immutability */
    Coracle__V1__Pod *upd = (void *)obj_clone(&p->base);
    obj_set_str(&upd->spec->containers[0]->image, "i:2");
    msg = NULL;
    ok(admit_pod_update(p, upd, &msg) == 0, "image may change");
    free(msg);
    obj_set_str(&upd->spec->restartpolicy, "Never");
    msg = NULL;
    admit_pod_update(p, upd, &msg);
    ok(msg && !strncmp(msg,
                       "Pod \"x\" is invalid: spec: Forbidden: pod updates may not change fields "
                       "other than `spec.containers[*].image`,",
                       109),
       "restartPolicy may not change");
    free(msg);
    obj_free(&upd->base);
    obj_free(&p->base);

    /* labels */
    c[0] = ctr("a", "i");
    p = pod("x", 1, c);
    p->metadata->n_labels = 1;
    p->metadata->labels = xmalloc(sizeof(void *));
    p->metadata->labels[0] = xmalloc(sizeof(Coracle__V1__ObjectMeta__LabelsEntry));
    coracle__v1__object_meta__labels_entry__init(p->metadata->labels[0]);
    p->metadata->labels[0]->key = xstrdup("app");
    p->metadata->labels[0]->value = xstrdup("-web");
    check(p,
          "Pod \"x\" is invalid: metadata.labels: Invalid value: \"-web\": a valid label must be "
          "an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
          "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
          "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
          "label value");

    /* namespace */
    c[0] = ctr("a", "i");
    p = pod("x", 1, c);
    p->metadata->namespace_ = xstrdup("a.b");
    check(p,
          "Pod \"x\" is invalid: metadata.namespace: Invalid value: \"a.b\": a lowercase RFC "
          "1123 label must consist of lower case alphanumeric characters or '-', and must start "
          "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
          "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
          "namespace is a DNS-1123 label");

    test_finalizers_update();

    ok(admit_dns1123_label("1st") == NULL, "1st is a label");
    ok(admit_dns1123_label("-a") != NULL, "-a is not");
    ok(admit_dns1123_subdomain("a..b") != NULL, "a..b is not a subdomain");
    return done_testing();
}
