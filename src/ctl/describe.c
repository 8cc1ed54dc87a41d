/*
 * describe: `coraclectl describe` of pods, nodes and the workload kinds in
 * kubectl's layout (see describe.h). Follows kubectl's describePod /
 * describeNode / describeDeployment ... / DescribeEvents for the fields
 * coracle's API carries.
 */
#include "config.h"
#include "describe.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "columns.h"
#include "podfield.h"
#include "print.h"
#include "qty.h"
#include "util.h"

#define L1 "  "
#define L2 "    "
#define L3 "      "

static const char *s_or(const char *s, const char *d)
{
    return s && *s ? s : d;
}

static void fmt_time(char *buf, size_t n, const Coracle__V1__Time *t)
{
    ctl_fmt_rfc1123z(buf, n, t ? t->seconds : 0);
}

typedef Coracle__V1__ObjectMeta__LabelsEntry kv_t;

static int cmp_kv(const void *a, const void *b)
{
    const kv_t *x = *(kv_t *const *)a, *y = *(kv_t *const *)b;
    return strcmp(s_or(x->key, ""), s_or(y->key, ""));
}

/* printLabelsMultiline / printAnnotationsMultiline: sorted, the first on the title line. */
static void print_map(struct ctl_tw *tw, const char *title, kv_t *const *v, size_t n,
                      const char *sep, const char *skip)
{
    kv_t **s = xcalloc(n + 1, sizeof(*s));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!skip || !v[i]->key || strcmp(v[i]->key, skip))
            s[k++] = v[i];
    qsort(s, k, sizeof(*s), cmp_kv);
    ctl_tw_printf(tw, "%s:\t", title);
    if (!k)
        ctl_tw_printf(tw, "<none>\n");
    for (size_t i = 0; i < k; i++)
        ctl_tw_printf(tw, "%s%s%s%s\n", i ? "\t" : "", s_or(s[i]->key, ""), sep,
                      s_or(s[i]->value, ""));
    free(s);
}

static void describe_state(struct ctl_tw *tw, const char *name,
                           const Coracle__V1__ContainerState *s)
{
    char t[64];
    if (s && s->running) {
        fmt_time(t, sizeof(t), s->running->startedat);
        ctl_tw_printf(tw, L2 "%s:\tRunning\n" L3 "Started:\t%s\n", name, t);
    } else if (s && s->waiting) {
        ctl_tw_printf(tw, L2 "%s:\tWaiting\n", name);
        if (s->waiting->reason && *s->waiting->reason)
            ctl_tw_printf(tw, L3 "Reason:\t%s\n", s->waiting->reason);
    } else if (s && s->terminated) {
        const Coracle__V1__ContainerStateTerminated *x = s->terminated;
        ctl_tw_printf(tw, L2 "%s:\tTerminated\n", name);
        if (x->reason && *x->reason)
            ctl_tw_printf(tw, L3 "Reason:\t%s\n", x->reason);
        if (x->message && *x->message)
            ctl_tw_printf(tw, L3 "Message:\t%s\n", x->message);
        ctl_tw_printf(tw, L3 "Exit Code:\t%d\n", x->exitcode);
        if (x->signal > 0)
            ctl_tw_printf(tw, L3 "Signal:\t%d\n", x->signal);
        fmt_time(t, sizeof(t), x->startedat);
        ctl_tw_printf(tw, L3 "Started:\t%s\n", t);
        fmt_time(t, sizeof(t), x->finishedat);
        ctl_tw_printf(tw, L3 "Finished:\t%s\n", t);
    } else {
        ctl_tw_printf(tw, L2 "%s:\tWaiting\n", name);
    }
}

static void port_str(char *buf, size_t n, const Coracle__V1__IntOrString *p)
{
    if (!p)
        snprintf(buf, n, "0");
    else if (p->type == 1)
        snprintf(buf, n, "%s", s_or(p->strval, ""));
    else
        snprintf(buf, n, "%d", p->intval);
}

static void describe_probe(struct ctl_tw *tw, const char *title, const Coracle__V1__Probe *p)
{
    if (!p)
        return;
    char attrs[256], port[64];
    snprintf(attrs, sizeof(attrs), "delay=%ds timeout=%ds period=%ds #success=%d #failure=%d",
             p->initialdelayseconds, p->timeoutseconds, p->periodseconds, p->successthreshold,
             p->failurethreshold);
    const Coracle__V1__ProbeHandler *h = p->handler;
    if (h && h->exec) {
        struct buf b = {0};
        for (size_t i = 0; i < h->exec->n_command; i++)
            buf_printf(&b, "%s%s", i ? " " : "", h->exec->command[i]);
        char *cmd = buf_take(&b);
        ctl_tw_printf(tw, L2 "%s:\texec [%s] %s\n", title, cmd, attrs);
        free(cmd);
    } else if (h && h->httpget) {
        char scheme[16];
        const char *sc = s_or(h->httpget->scheme, "http");
        size_t i = 0;
        for (; sc[i] && i + 1 < sizeof(scheme); i++)
            scheme[i] = (char)((sc[i] >= 'A' && sc[i] <= 'Z') ? sc[i] + 32 : sc[i]);
        scheme[i] = '\0';
        port_str(port, sizeof(port), h->httpget->port);
        const char *path = s_or(h->httpget->path, "");
        ctl_tw_printf(tw, L2 "%s:\thttp-get %s://%s:%s%s%s %s\n", title, scheme,
                      s_or(h->httpget->host, ""), port, *path && *path != '/' ? "/" : "", path,
                      attrs);
    } else if (h && h->tcpsocket) {
        port_str(port, sizeof(port), h->tcpsocket->port);
        ctl_tw_printf(tw, L2 "%s:\ttcp-socket %s:%s %s\n", title, s_or(h->tcpsocket->host, ""),
                      port, attrs);
    } else {
        ctl_tw_printf(tw, L2 "%s:\tunknown %s\n", title, attrs);
    }
}

typedef Coracle__V1__ResourceRequirements__LimitsEntry qkv_t;

static int cmp_qkv(const void *a, const void *b)
{
    const qkv_t *x = *(qkv_t *const *)a, *y = *(qkv_t *const *)b;
    return strcmp(s_or(x->key, ""), s_or(y->key, ""));
}

static void describe_qmap(struct ctl_tw *tw, const char *indent, const char *title, qkv_t *const *v,
                          size_t n, int always)
{
    if (!n && !always)
        return;
    qkv_t **s = xcalloc(n + 1, sizeof(*s));
    if (n)
        memcpy(s, v, n * sizeof(*s));
    qsort(s, n, sizeof(*s), cmp_qkv);
    ctl_tw_printf(tw, "%s%s:\n", indent, title);
    for (size_t i = 0; i < n; i++)
        ctl_tw_printf(tw, "%s  %s:\t%s\n", indent, s_or(s[i]->key, ""),
                      s[i]->value ? s_or(s[i]->value->string, "0") : "0");
    free(s);
}

static const char *lor_name(const Coracle__V1__LocalObjectReference *r)
{
    return r ? s_or(r->name, "") : "";
}

/* describeContainerEnvFrom */
static void describe_env_from(struct ctl_tw *tw, const Coracle__V1__Container *c)
{
    ctl_tw_printf(tw, L2 "Environment Variables from:\n");
    for (size_t j = 0; j < c->n_envfrom; j++) {
        const Coracle__V1__EnvFromSource *e = c->envfrom[j];
        const char *from = e->configmapref ? "ConfigMap" : e->secretref ? "Secret" : "";
        const char *name = e->configmapref ? lor_name(e->configmapref->localobjectreference)
                           : e->secretref  ? lor_name(e->secretref->localobjectreference)
                                           : "";
        int optional = e->configmapref ? e->configmapref->optional
                       : e->secretref  ? e->secretref->optional
                                       : 0;
        if (e->prefix && *e->prefix)
            ctl_tw_printf(tw, L3 "%s\t%s with prefix '%s'\tOptional: %s\n", name, from, e->prefix,
                          optional ? "true" : "false");
        else
            ctl_tw_printf(tw, L3 "%s\t%s\tOptional: %s\n", name, from, optional ? "true" : "false");
    }
}

/* describeContainerEnvVars for an env var with valueFrom: kubectl shows the metadata fields'
 * values and the container's resources (the node's allocatable, unknown here, as "node
 * allocatable"), and where the others come from. */
static void describe_value_from(struct ctl_tw *tw, const Coracle__V1__Pod *pod,
                                const Coracle__V1__Container *c, const Coracle__V1__EnvVar *e)
{
    const Coracle__V1__EnvVarSource *vf = e->valuefrom;
    const char *name = s_or(e->name, "");
    char *val = NULL, *err = NULL;
    if (vf->fieldref) {
        const char *path = s_or(vf->fieldref->fieldpath, "");
        if (!pod || strncmp(path, "metadata.", 9) ||
            podfield_get(pod, path, NULL, NULL, &val, &err) < 0)
            free(err);
        ctl_tw_printf(tw, L3 "%s:\t%s (%s:%s)\n", name, val ? val : "",
                      s_or(vf->fieldref->apiversion, ""), path);
    } else if (vf->resourcefieldref) {
        const Coracle__V1__ResourceFieldSelector *r = vf->resourcefieldref;
        const char *res = s_or(r->resource, "");
        if (podfield_resource(c, res, r->divisor ? r->divisor->string : NULL, 0, 0, &val, &err) < 0)
            free(err);
        bool lim = !strcmp(res, "limits.cpu") || !strcmp(res, "limits.memory");
        ctl_tw_printf(tw, L3 "%s:\t%s (%s)\n", name,
                      val && !strcmp(val, "0") && lim ? "node allocatable"
                      : val                           ? val
                                                      : "",
                      res);
    } else if (vf->secretkeyref) {
        ctl_tw_printf(tw, L3 "%s:\t<set to the key '%s' in secret '%s'>\tOptional: %s\n", name,
                      s_or(vf->secretkeyref->key, ""),
                      lor_name(vf->secretkeyref->localobjectreference),
                      vf->secretkeyref->optional ? "true" : "false");
    } else if (vf->configmapkeyref) {
        ctl_tw_printf(tw, L3 "%s:\t<set to the key '%s' of config map '%s'>\tOptional: %s\n", name,
                      s_or(vf->configmapkeyref->key, ""),
                      lor_name(vf->configmapkeyref->localobjectreference),
                      vf->configmapkeyref->optional ? "true" : "false");
    }
    free(val);
}

static int cmp_mount(const void *a, const void *b)
{
    const Coracle__V1__VolumeMount *x = *(Coracle__V1__VolumeMount *const *)a;
    const Coracle__V1__VolumeMount *y = *(Coracle__V1__VolumeMount *const *)b;
    return strcmp(s_or(x->mountpath, ""), s_or(y->mountpath, ""));
}

/*
 * describeContainers. pod: for the env's fieldRef values (NULL: none shown);
 * space: "" in a pod, "  " in a pod template (its names one more in).
 */
static void describe_containers(struct ctl_tw *tw, const Coracle__V1__Pod *pod, const char *space,
                                const char *label, Coracle__V1__Container *const *cs, size_t n,
                                Coracle__V1__ContainerStatus *const *sts, size_t nst)
{
    ctl_tw_printf(tw, "%s%s:%s\n", space, label, n ? "" : " <none>");
    for (size_t i = 0; i < n; i++) {
        const Coracle__V1__Container *c = cs[i];
        const Coracle__V1__ContainerStatus *st = NULL;
        for (size_t j = 0; j < nst; j++)
            if (sts[j]->name && c->name && !strcmp(sts[j]->name, c->name))
                st = sts[j];
        ctl_tw_printf(tw, L1 "%s%s:\n", *space ? " " : "", s_or(c->name, ""));
        if (st)
            ctl_tw_printf(tw, L2 "Container ID:\t%s\n", s_or(st->containerid, ""));
        ctl_tw_printf(tw, L2 "Image:\t%s\n", s_or(c->image, ""));
        if (st)
            ctl_tw_printf(tw, L2 "Image ID:\t%s\n", s_or(st->imageid, ""));
        struct buf ports = {0}, hports = {0};
        for (size_t j = 0; j < c->n_ports; j++) {
            buf_printf(&ports, "%s%d/%s", j ? ", " : "", c->ports[j]->containerport,
                       s_or(c->ports[j]->protocol, "TCP"));
            buf_printf(&hports, "%s%d/%s", j ? ", " : "", c->ports[j]->hostport,
                       s_or(c->ports[j]->protocol, "TCP"));
        }
        char *p = buf_take(&ports), *hp = buf_take(&hports);
        ctl_tw_printf(tw, L2 "%s:\t%s\n", strchr(p, ',') ? "Ports" : "Port", s_or(p, "<none>"));
        ctl_tw_printf(tw, L2 "%s:\t%s\n", strchr(hp, ',') ? "Host Ports" : "Host Port",
                      s_or(hp, "<none>"));
        free(p);
        free(hp);
        if (c->n_command) {
            ctl_tw_printf(tw, L2 "Command:\n");
            for (size_t j = 0; j < c->n_command; j++) {
                char *dup = xstrdup(c->command[j]), *save = NULL;
                for (char *l = strtok_r(dup, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                    ctl_tw_printf(tw, L3 "%s\n", l);
                free(dup);
            }
        }
        if (c->n_args) {
            ctl_tw_printf(tw, L2 "Args:\n");
            for (size_t j = 0; j < c->n_args; j++) {
                char *dup = xstrdup(c->args[j]), *save = NULL;
                for (char *l = strtok_r(dup, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                    ctl_tw_printf(tw, L3 "%s\n", l);
                free(dup);
            }
        }
        if (st) {
            describe_state(tw, "State", st->state);
            if (st->laststate && st->laststate->terminated)
                describe_state(tw, "Last State", st->laststate);
            ctl_tw_printf(tw, L2 "Ready:\t%s\n", st->ready ? "True" : "False");
            ctl_tw_printf(tw, L2 "Restart Count:\t%d\n", st->restartcount);
        }
        if (c->resources) {
            describe_qmap(tw, L2, "Limits", (qkv_t *const *)c->resources->limits,
                          c->resources->n_limits, 0);
            describe_qmap(tw, L2, "Requests", (qkv_t *const *)c->resources->requests,
                          c->resources->n_requests, 0);
        }
        describe_probe(tw, "Liveness", c->livenessprobe);
        describe_probe(tw, "Readiness", c->readinessprobe);
        describe_probe(tw, "Startup", c->startupprobe);
        if (c->n_envfrom)
            describe_env_from(tw, c);
        ctl_tw_printf(tw, L2 "Environment:%s\n", c->n_env ? "" : "\t<none>");
        for (size_t j = 0; j < c->n_env; j++) {
            if (c->env[j]->valuefrom) {
                describe_value_from(tw, pod, c, c->env[j]);
                continue;
            }
            char *dup = xstrdup(s_or(c->env[j]->value, "")), *nl = NULL;
            char *line = dup;
            int first = 1;
            do {
                nl = strchr(line, '\n');
                if (nl)
                    *nl = '\0';
                if (first)
                    ctl_tw_printf(tw, L3 "%s:\t%s\n", s_or(c->env[j]->name, ""), line);
                else
                    ctl_tw_printf(tw, L3 "\t%s\n", line);
                first = 0;
                line = nl ? nl + 1 : NULL;
            } while (line);
            free(dup);
        }
        ctl_tw_printf(tw, L2 "Mounts:%s\n", c->n_volumemounts ? "" : "\t<none>");
        Coracle__V1__VolumeMount **vm = xcalloc(c->n_volumemounts + 1, sizeof(*vm));
        if (c->n_volumemounts)
            memcpy(vm, c->volumemounts, c->n_volumemounts * sizeof(*vm));
        qsort(vm, c->n_volumemounts, sizeof(*vm), cmp_mount);
        for (size_t j = 0; j < c->n_volumemounts; j++) {
            ctl_tw_printf(tw, L3 "%s from %s (%s", s_or(vm[j]->mountpath, ""),
                          s_or(vm[j]->name, ""), vm[j]->readonly ? "ro" : "rw");
            if (vm[j]->subpath && *vm[j]->subpath)
                ctl_tw_printf(tw, ",path=\"%s\"", vm[j]->subpath);
            ctl_tw_printf(tw, ")\n");
        }
        free(vm);
    }
}

static const char *pod_qos(const Coracle__V1__Pod *pod)
{
    if (pod->status && pod->status->qosclass && *pod->status->qosclass)
        return pod->status->qosclass;
    int any = 0, guaranteed = 1;
    const Coracle__V1__PodSpec *sp = pod->spec;
    for (size_t i = 0; sp && i < sp->n_containers; i++) {
        const Coracle__V1__ResourceRequirements *r = sp->containers[i]->resources;
        if (!r || (!r->n_limits && !r->n_requests)) {
            guaranteed = 0;
            continue;
        }
        any = 1;
        const char *need[] = {"cpu", "memory"};
        for (size_t k = 0; k < 2; k++) {
            const char *lim = NULL, *req = NULL;
            for (size_t j = 0; j < r->n_limits; j++)
                if (!strcmp(s_or(r->limits[j]->key, ""), need[k]) && r->limits[j]->value)
                    lim = r->limits[j]->value->string;
            for (size_t j = 0; j < r->n_requests; j++)
                if (!strcmp(s_or(r->requests[j]->key, ""), need[k]) && r->requests[j]->value)
                    req = r->requests[j]->value->string;
            if (!lim || (req && strcmp(req, lim)))
                guaranteed = 0;
        }
    }
    if (!any)
        return "BestEffort";
    return guaranteed ? "Guaranteed" : "Burstable";
}

/* Decimal resourceVersions compare by length, then digits. */
static int cmp_rv(const char *a, const char *b)
{
    size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
    if (la != lb)
        return la < lb ? -1 : 1;
    return la ? strcmp(a, b) : 0;
}

/* event.SortableEvents: by last timestamp; ties in the order they were written. */
static int cmp_event(const void *a, const void *b)
{
    const Coracle__V1__Event *x = *(Coracle__V1__Event *const *)a;
    const Coracle__V1__Event *y = *(Coracle__V1__Event *const *)b;
    int64_t tx = x->lasttimestamp ? x->lasttimestamp->seconds : 0;
    int64_t ty = y->lasttimestamp ? y->lasttimestamp->seconds : 0;
    if (tx != ty)
        return tx < ty ? -1 : 1;
    /* Finer than Kubernetes' seconds: our sources set nanoseconds, which keeps
     * the scheduler's decision before the kubelet's first events. */
    int32_t nx = x->lasttimestamp ? x->lasttimestamp->nanos : 0;
    int32_t ny = y->lasttimestamp ? y->lasttimestamp->nanos : 0;
    if (nx != ny)
        return nx < ny ? -1 : 1;
    return cmp_rv(x->metadata ? x->metadata->resourceversion : NULL,
                  y->metadata ? y->metadata->resourceversion : NULL);
}

static void describe_events(struct ctl_tw *tw, struct buf *out, Coracle__V1__Event *const *events,
                            size_t n, int64_t now_ns)
{
    if (!n) {
        ctl_tw_printf(tw, "Events:\t<none>\n");
        return;
    }
    ctl_tw_flush(tw, out);
    Coracle__V1__Event **s = xmemdup(events, n * sizeof(*s));
    qsort(s, n, sizeof(*s), cmp_event);
    ctl_tw_printf(tw, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n");
    ctl_tw_printf(tw, L1 "----\t------\t----\t----\t-------\n");
    for (size_t i = 0; i < n; i++) {
        const Coracle__V1__Event *e = s[i];
        char first[32], last[32], interval[96];
        if (e->eventtime && e->eventtime->seconds)
            ctl_age(first, sizeof(first), (const Coracle__V1__Time *)e->eventtime, now_ns);
        else
            ctl_age(first, sizeof(first), e->firsttimestamp, now_ns);
        if (e->count > 1) {
            ctl_age(last, sizeof(last), e->lasttimestamp, now_ns);
            snprintf(interval, sizeof(interval), "%s (x%d over %s)", last, e->count, first);
        } else
            snprintf(interval, sizeof(interval), "%s", first);
        const char *src = e->source && e->source->component && *e->source->component
                              ? e->source->component
                              : s_or(e->reportingcomponent, "");
        /* strings.TrimSpace(message) */
        const char *m = s_or(e->message, "");
        while (*m == ' ' || *m == '\n' || *m == '\t')
            m++;
        size_t ml = strlen(m);
        while (ml && (m[ml - 1] == ' ' || m[ml - 1] == '\n' || m[ml - 1] == '\t'))
            ml--;
        ctl_tw_printf(tw, L1 "%s\t%s\t%s\t%s\t%.*s\n", s_or(e->type, ""), s_or(e->reason, ""),
                      interval, src, (int)ml, m);
    }
    free(s);
}

/* describeVolumes; space as describe_containers'. */
static void describe_volumes(struct ctl_tw *tw, const char *space, const Coracle__V1__PodSpec *sp)
{
    if (!sp || !sp->n_volumes)
        ctl_tw_printf(tw, "%sVolumes:\t<none>\n", space);
    else {
        ctl_tw_printf(tw, "%sVolumes:\n", space);
        for (size_t i = 0; i < sp->n_volumes; i++) {
            const Coracle__V1__Volume *v = sp->volumes[i];
            const Coracle__V1__VolumeSource *vs = v->volumesource;
            ctl_tw_printf(tw, L1 "%s%s:\n", *space ? " " : "", s_or(v->name, ""));
            if (vs && vs->hostpath)
                ctl_tw_printf(tw,
                              L2 "Type:\tHostPath (bare host directory volume)\n" L2
                                 "Path:\t%s\n" L2 "HostPathType:\t%s\n",
                              s_or(vs->hostpath->path, ""), s_or(vs->hostpath->type, "<none>"));
            else if (vs && vs->emptydir) {
                const char *lim = vs->emptydir->sizelimit && vs->emptydir->sizelimit->string &&
                                          strcmp(vs->emptydir->sizelimit->string, "0")
                                      ? vs->emptydir->sizelimit->string
                                      : "<unset>";
                ctl_tw_printf(tw,
                              L2 "Type:\tEmptyDir (a temporary directory that shares a pod's "
                                 "lifetime)\n" L2 "Medium:\t%s\n" L2 "SizeLimit:\t%s\n",
                              s_or(vs->emptydir->medium, ""), lim);
            } else if (vs && vs->configmap) {
                ctl_tw_printf(tw,
                              L2 "Type:\tConfigMap (a volume populated by a ConfigMap)\n" L2
                                 "Name:\t%s\n" L2 "Optional:\t%s\n",
                              lor_name(vs->configmap->localobjectreference),
                              vs->configmap->optional ? "true" : "false");
            } else if (vs && vs->secret) {
                ctl_tw_printf(tw,
                              L2 "Type:\tSecret (a volume populated by a Secret)\n" L2
                                 "SecretName:\t%s\n" L2 "Optional:\t%s\n",
                              s_or(vs->secret->secretname, ""),
                              vs->secret->optional ? "true" : "false");
            } else
                ctl_tw_printf(tw, L1 "<unknown>\n");
        }
    }
}

/* printPodTolerationsMultiline */
static void describe_tolerations(struct ctl_tw *tw, const char *title,
                                 const Coracle__V1__PodSpec *sp)
{
    ctl_tw_printf(tw, "%s:\t", title);
    if (!sp || !sp->n_tolerations)
        ctl_tw_printf(tw, "<none>\n");
    for (size_t i = 0; sp && i < sp->n_tolerations; i++) {
        const Coracle__V1__Toleration *to = sp->tolerations[i];
        if (i)
            ctl_tw_printf(tw, "\t");
        ctl_tw_printf(tw, "%s", s_or(to->key, ""));
        if (to->value && *to->value)
            ctl_tw_printf(tw, "=%s", to->value);
        if (to->effect && *to->effect)
            ctl_tw_printf(tw, ":%s", to->effect);
        if (to->operator_ && !strcmp(to->operator_, "Exists") && !(to->value && *to->value))
            ctl_tw_printf(tw, "%sop=Exists",
                          (to->key && *to->key) || (to->effect && *to->effect) ? " " : "");
        if (to->has_tolerationseconds)
            ctl_tw_printf(tw, " for %" PRId64 "s", to->tolerationseconds);
        ctl_tw_printf(tw, "\n");
    }
}

void ctl_describe_pod(struct buf *out, const Coracle__V1__Pod *pod,
                      Coracle__V1__Event *const *events, size_t nev, int64_t now_ns)
{
    struct ctl_tw tw;
    const Coracle__V1__ObjectMeta *md = pod->metadata;
    const Coracle__V1__PodSpec *sp = pod->spec;
    const Coracle__V1__PodStatus *st = pod->status;
    char t[64];

    ctl_tw_init(&tw, 0, 2, false);
    ctl_tw_printf(&tw, "Name:\t%s\n", md ? s_or(md->name, "") : "");
    ctl_tw_printf(&tw, "Namespace:\t%s\n", md ? s_or(md->namespace_, "") : "");
    if (sp && sp->has_priority)
        ctl_tw_printf(&tw, "Priority:\t%d\n", sp->priority);
    if (sp && sp->priorityclassname && *sp->priorityclassname)
        ctl_tw_printf(&tw, "Priority Class Name:\t%s\n", sp->priorityclassname);
    if (sp && sp->serviceaccountname && *sp->serviceaccountname)
        ctl_tw_printf(&tw, "Service Account:\t%s\n", sp->serviceaccountname);
    if (!sp || !sp->nodename || !*sp->nodename)
        ctl_tw_printf(&tw, "Node:\t<none>\n");
    else
        ctl_tw_printf(&tw, "Node:\t%s/%s\n", sp->nodename, st ? s_or(st->hostip, "") : "");
    if (st && st->starttime) {
        fmt_time(t, sizeof(t), st->starttime);
        ctl_tw_printf(&tw, "Start Time:\t%s\n", t);
    }
    print_map(&tw, "Labels", md ? md->labels : NULL, md ? md->n_labels : 0, "=", NULL);
    print_map(&tw, "Annotations", md ? (kv_t *const *)md->annotations : NULL,
              md ? md->n_annotations : 0, ": ", "kubectl.kubernetes.io/last-applied-configuration");
    const char *phase = st ? s_or(st->phase, "") : "";
    if (md && md->deletiontimestamp && strcmp(phase, "Failed") && strcmp(phase, "Succeeded")) {
        char age[32];
        ctl_age(age, sizeof(age), md->deletiontimestamp, now_ns);
        ctl_tw_printf(&tw, "Status:\tTerminating (lasts %s)\n", age);
        ctl_tw_printf(&tw, "Termination Grace Period:\t%" PRId64 "s\n",
                      md->deletiongraceperiodseconds);
    } else
        ctl_tw_printf(&tw, "Status:\t%s\n", phase);
    if (st && st->reason && *st->reason)
        ctl_tw_printf(&tw, "Reason:\t%s\n", st->reason);
    if (st && st->message && *st->message)
        ctl_tw_printf(&tw, "Message:\t%s\n", st->message);
    ctl_tw_printf(&tw, "IP:\t%s\n", st ? s_or(st->podip, "") : "");
    if (!st || !st->n_podips)
        ctl_tw_printf(&tw, "IPs:\t<none>\n");
    else {
        ctl_tw_printf(&tw, "IPs:\n");
        for (size_t i = 0; i < st->n_podips; i++)
            ctl_tw_printf(&tw, L1 "IP:\t%s\n", s_or(st->podips[i]->ip, ""));
    }
    if (md)
        for (size_t i = 0; i < md->n_ownerreferences; i++)
            if (md->ownerreferences[i]->controller)
                ctl_tw_printf(&tw, "Controlled By:\t%s/%s\n",
                              s_or(md->ownerreferences[i]->kind, ""),
                              s_or(md->ownerreferences[i]->name, ""));
    if (st && st->nominatednodename && *st->nominatednodename)
        ctl_tw_printf(&tw, "NominatedNodeName:\t%s\n", st->nominatednodename);
    if (sp && sp->n_initcontainers)
        describe_containers(&tw, pod, "", "Init Containers", sp->initcontainers,
                            sp->n_initcontainers, st ? st->initcontainerstatuses : NULL,
                            st ? st->n_initcontainerstatuses : 0);
    describe_containers(&tw, pod, "", "Containers", sp ? sp->containers : NULL,
                        sp ? sp->n_containers : 0, st ? st->containerstatuses : NULL,
                        st ? st->n_containerstatuses : 0);
    if (st && st->n_conditions) {
        ctl_tw_printf(&tw, "Conditions:\n  Type\tStatus\n");
        for (size_t i = 0; i < st->n_conditions; i++)
            ctl_tw_printf(&tw, L1 "%s \t%s \n", s_or(st->conditions[i]->type, ""),
                          s_or(st->conditions[i]->status, ""));
    }
    describe_volumes(&tw, "", sp);
    ctl_tw_printf(&tw, "QoS Class:\t%s\n", pod_qos(pod));
    print_map(&tw, "Node-Selectors", sp ? (kv_t *const *)sp->nodeselector : NULL,
              sp ? sp->n_nodeselector : 0, "=", NULL);
    describe_tolerations(&tw, "Tolerations", sp);
    describe_events(&tw, out, events, nev, now_ns);
    ctl_tw_flush(&tw, out);
    ctl_tw_free(&tw);
}

/* A quantity of a resource map in milli-units; 0 when absent or bad. */
static int64_t qmap_get(qkv_t *const *v, size_t n, const char *key)
{
    int64_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i]->key && !strcmp(v[i]->key, key) && v[i]->value && v[i]->value->string &&
            qty_parse(v[i]->value->string, &m, NULL) == 0)
            return m;
    return 0;
}

/*
 * resourcehelper.PodRequestsAndLimits for cpu and memory: the sum over the
 * containers, at least the largest init container. r: cpu req, cpu lim,
 * mem req, mem lim, ephemeral-storage req, lim (milli-units).
 */
static void pod_requests(const Coracle__V1__Pod *p, int64_t r[6])
{
    static const char *const res[3] = {"cpu", "memory", "ephemeral-storage"};
    memset(r, 0, 6 * sizeof(*r));
    const Coracle__V1__PodSpec *sp = p->spec;
    for (size_t i = 0; sp && i < sp->n_containers; i++) {
        const Coracle__V1__ResourceRequirements *rr = sp->containers[i]->resources;
        for (int k = 0; rr && k < 3; k++) {
            r[2 * k] += qmap_get((qkv_t *const *)rr->requests, rr->n_requests, res[k]);
            r[2 * k + 1] += qmap_get(rr->limits, rr->n_limits, res[k]);
        }
    }
    for (size_t i = 0; sp && i < sp->n_initcontainers; i++) {
        const Coracle__V1__ResourceRequirements *rr = sp->initcontainers[i]->resources;
        for (int k = 0; rr && k < 3; k++) {
            int64_t q = qmap_get((qkv_t *const *)rr->requests, rr->n_requests, res[k]);
            int64_t l = qmap_get(rr->limits, rr->n_limits, res[k]);
            if (q > r[2 * k])
                r[2 * k] = q;
            if (l > r[2 * k + 1])
                r[2 * k + 1] = l;
        }
    }
}

/* "350m (17%)": the quantity and its share of total (truncated, as int64(float)). */
static char *qfrac(char *buf, size_t n, int64_t milli, int64_t total, int binary)
{
    char q[48];
    if (milli)
        qty_format(q, sizeof(q), milli, binary);
    else
        snprintf(q, sizeof(q), "0");
    long long pct = total > 0 ? (long long)((double)milli / (double)total * 100) : 0;
    snprintf(buf, n, "%s (%lld%%)", q, pct);
    return buf;
}

void ctl_describe_node(struct buf *out, const Coracle__V1__Node *node,
                       const Coracle__V1__Lease *lease, Coracle__V1__Pod *const *pods, size_t npods,
                       Coracle__V1__Event *const *events, size_t nev, int64_t now_ns)
{
    struct ctl_tw tw;
    const Coracle__V1__ObjectMeta *md = node->metadata;
    const Coracle__V1__NodeSpec *sp = node->spec;
    const Coracle__V1__NodeStatus *st = node->status;
    char t[64], t2[64];

    ctl_tw_init(&tw, 0, 2, false);
    ctl_tw_printf(&tw, "Name:\t%s\n", md ? s_or(md->name, "") : "");
    char *roles = ctl_node_roles(node);
    ctl_tw_printf(&tw, "Roles:\t%s\n", roles);
    free(roles);
    print_map(&tw, "Labels", md ? md->labels : NULL, md ? md->n_labels : 0, "=", NULL);
    print_map(&tw, "Annotations", md ? (kv_t *const *)md->annotations : NULL,
              md ? md->n_annotations : 0, ": ", "kubectl.kubernetes.io/last-applied-configuration");
    fmt_time(t, sizeof(t), md ? md->creationtimestamp : NULL);
    ctl_tw_printf(&tw, "CreationTimestamp:\t%s\n", t);
    ctl_tw_printf(&tw, "Taints:\t");
    if (!sp || !sp->n_taints)
        ctl_tw_printf(&tw, "<none>\n");
    for (size_t i = 0; sp && i < sp->n_taints; i++) {
        const Coracle__V1__Taint *ta = sp->taints[i];
        ctl_tw_printf(&tw, "%s%s%s%s:%s\n", i ? "\t" : "", s_or(ta->key, ""),
                      ta->value && *ta->value ? "=" : "", s_or(ta->value, ""),
                      s_or(ta->effect, ""));
    }
    ctl_tw_printf(&tw, "Unschedulable:\t%s\n", sp && sp->unschedulable ? "true" : "false");
    if (lease) {
        const Coracle__V1__LeaseSpec *ls = lease->spec;
        ctl_tw_printf(&tw, "Lease:\n");
        ctl_tw_printf(&tw, L1 "HolderIdentity:\t%s\n",
                      ls ? s_or(ls->holderidentity, "<unset>") : "<unset>");
        if (ls && ls->acquiretime)
            ctl_fmt_rfc1123z(t, sizeof(t), ls->acquiretime->seconds);
        else
            snprintf(t, sizeof(t), "<unset>");
        ctl_tw_printf(&tw, L1 "AcquireTime:\t%s\n", t);
        if (ls && ls->renewtime)
            ctl_fmt_rfc1123z(t, sizeof(t), ls->renewtime->seconds);
        else
            snprintf(t, sizeof(t), "<unset>");
        ctl_tw_printf(&tw, L1 "RenewTime:\t%s\n", t);
    }
    if (st && st->n_conditions) {
        ctl_tw_printf(&tw, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\t"
                           "Reason\tMessage\n");
        ctl_tw_printf(&tw, L1 "----\t------\t-----------------\t------------------\t------\t"
                              "-------\n");
        for (size_t i = 0; i < st->n_conditions; i++) {
            const Coracle__V1__NodeCondition *c = st->conditions[i];
            fmt_time(t, sizeof(t), c->lastheartbeattime);
            fmt_time(t2, sizeof(t2), c->lasttransitiontime);
            ctl_tw_printf(&tw, L1 "%s \t%s \t%s \t%s \t%s \t%s\n", s_or(c->type, ""),
                          s_or(c->status, ""), t, t2, s_or(c->reason, ""), s_or(c->message, ""));
        }
    }
    ctl_tw_printf(&tw, "Addresses:\n");
    for (size_t i = 0; st && i < st->n_addresses; i++)
        ctl_tw_printf(&tw, L1 "%s:\t%s\n", s_or(st->addresses[i]->type, ""),
                      s_or(st->addresses[i]->address, ""));
    if (st && st->n_capacity)
        describe_qmap(&tw, "", "Capacity", (qkv_t *const *)st->capacity, st->n_capacity, 1);
    if (st && st->n_allocatable)
        describe_qmap(&tw, "", "Allocatable", (qkv_t *const *)st->allocatable, st->n_allocatable,
                      1);
    const Coracle__V1__NodeSystemInfo *ni = st ? st->nodeinfo : NULL;
    if (ni) {
        ctl_tw_printf(&tw, "System Info:\n");
        ctl_tw_printf(&tw, L1 "Machine ID:\t%s\n", s_or(ni->machineid, ""));
        ctl_tw_printf(&tw, L1 "System UUID:\t%s\n", s_or(ni->systemuuid, ""));
        ctl_tw_printf(&tw, L1 "Boot ID:\t%s\n", s_or(ni->bootid, ""));
        ctl_tw_printf(&tw, L1 "Kernel Version:\t%s\n", s_or(ni->kernelversion, ""));
        ctl_tw_printf(&tw, L1 "OS Image:\t%s\n", s_or(ni->osimage, ""));
        ctl_tw_printf(&tw, L1 "Operating System:\t%s\n", s_or(ni->operatingsystem, ""));
        ctl_tw_printf(&tw, L1 "Architecture:\t%s\n", s_or(ni->architecture, ""));
        ctl_tw_printf(&tw, L1 "Container Runtime Version:\t%s\n",
                      s_or(ni->containerruntimeversion, ""));
        ctl_tw_printf(&tw, L1 "Kubelet Version:\t%s\n", s_or(ni->kubeletversion, ""));
        ctl_tw_printf(&tw, L1 "Kube-Proxy Version:\t%s\n", s_or(ni->kubeproxyversion, ""));
    }
    if (sp && sp->podcidr && *sp->podcidr)
        ctl_tw_printf(&tw, "PodCIDR:\t%s\n", sp->podcidr);
    if (sp && sp->n_podcidrs) {
        ctl_tw_printf(&tw, "PodCIDRs:\t");
        for (size_t i = 0; i < sp->n_podcidrs; i++)
            ctl_tw_printf(&tw, "%s%s", i ? "," : "", sp->podcidrs[i]);
        ctl_tw_printf(&tw, "\n");
    }
    if (sp && sp->providerid && *sp->providerid)
        ctl_tw_printf(&tw, "ProviderID:\t%s\n", sp->providerid);
    size_t live = 0;
    for (size_t i = 0; i < npods; i++) {
        const char *ph = pods[i]->status ? s_or(pods[i]->status->phase, "") : "";
        live += strcmp(ph, "Succeeded") && strcmp(ph, "Failed");
    }
    /* describeNodeResource: requests and limits against allocatable */
    qkv_t *const *alloc = st && st->n_allocatable ? (qkv_t *const *)st->allocatable
                                                  : (st ? (qkv_t *const *)st->capacity : NULL);
    size_t nalloc = st && st->n_allocatable ? st->n_allocatable : (st ? st->n_capacity : 0);
    int64_t acpu = qmap_get(alloc, nalloc, "cpu"), amem = qmap_get(alloc, nalloc, "memory");
    int64_t aeph = qmap_get(alloc, nalloc, "ephemeral-storage");
    int64_t tot[6] = {0, 0, 0, 0, 0, 0};
    ctl_tw_printf(&tw, "Non-terminated Pods:\t(%zu in total)\n", live);
    ctl_tw_printf(&tw, L1 "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\t"
                          "Memory Limits\tAge\n");
    ctl_tw_printf(&tw, L1 "---------\t----\t\t------------\t----------\t---------------\t"
                          "-------------\t---\n");
    for (size_t i = 0; i < npods; i++) {
        const Coracle__V1__Pod *p = pods[i];
        const char *ph = p->status ? s_or(p->status->phase, "") : "";
        if (!strcmp(ph, "Succeeded") || !strcmp(ph, "Failed"))
            continue;
        int64_t r[6];
        pod_requests(p, r);
        char age[32], c0[64], c1[64], c2[64], c3[64];
        ctl_age(age, sizeof(age), p->metadata ? p->metadata->creationtimestamp : NULL, now_ns);
        ctl_tw_printf(&tw, L1 "%s\t%s\t\t%s\t%s\t%s\t%s\t%s\n",
                      p->metadata ? s_or(p->metadata->namespace_, "") : "",
                      p->metadata ? s_or(p->metadata->name, "") : "",
                      qfrac(c0, sizeof(c0), r[0], acpu, 0), qfrac(c1, sizeof(c1), r[1], acpu, 0),
                      qfrac(c2, sizeof(c2), r[2], amem, 1), qfrac(c3, sizeof(c3), r[3], amem, 1),
                      age);
        for (int k = 0; k < 6; k++)
            tot[k] += r[k];
    }
    char c0[64], c1[64];
    ctl_tw_printf(&tw, "Allocated resources:\n  (Total limits may be over 100 percent, i.e., "
                       "overcommitted.)\n");
    ctl_tw_printf(&tw, L1 "Resource\tRequests\tLimits\n");
    ctl_tw_printf(&tw, L1 "--------\t--------\t------\n");
    ctl_tw_printf(&tw, L1 "cpu\t%s\t%s\n", qfrac(c0, sizeof(c0), tot[0], acpu, 0),
                  qfrac(c1, sizeof(c1), tot[1], acpu, 0));
    ctl_tw_printf(&tw, L1 "memory\t%s\t%s\n", qfrac(c0, sizeof(c0), tot[2], amem, 1),
                  qfrac(c1, sizeof(c1), tot[3], amem, 1));
    ctl_tw_printf(&tw, L1 "ephemeral-storage\t%s\t%s\n", qfrac(c0, sizeof(c0), tot[4], aeph, 1),
                  qfrac(c1, sizeof(c1), tot[5], aeph, 1));
    describe_events(&tw, out, events, nev, now_ns);
    ctl_tw_flush(&tw, out);
    ctl_tw_free(&tw);
}

/* ---- workloads: describeReplicaSet, describeDeployment, describeDaemonSet, describeJob,
 * describeCronJob ---- */

/* DescribePodTemplate. */
static void describe_template(struct ctl_tw *tw, const Coracle__V1__PodTemplateSpec *t)
{
    ctl_tw_printf(tw, "Pod Template:\n");
    if (!t) {
        ctl_tw_printf(tw, L1 "<unset>");
        return;
    }
    const Coracle__V1__ObjectMeta *md = t->metadata;
    const Coracle__V1__PodSpec *sp = t->spec;
    print_map(tw, "  Labels", md ? md->labels : NULL, md ? md->n_labels : 0, "=", NULL);
    if (md && md->n_annotations)
        print_map(tw, "  Annotations", (kv_t *const *)md->annotations, md->n_annotations, ": ",
                  NULL);
    if (sp && sp->serviceaccountname && *sp->serviceaccountname)
        ctl_tw_printf(tw, L1 "Service Account:\t%s\n", sp->serviceaccountname);
    if (sp && sp->n_initcontainers)
        describe_containers(tw, NULL, "  ", "Init Containers", sp->initcontainers,
                            sp->n_initcontainers, NULL, 0);
    describe_containers(tw, NULL, "  ", "Containers", sp ? sp->containers : NULL,
                        sp ? sp->n_containers : 0, NULL, 0);
    describe_volumes(tw, "  ", sp);
    if (sp && sp->priorityclassname && *sp->priorityclassname)
        ctl_tw_printf(tw, L1 "Priority Class Name:\t%s\n", sp->priorityclassname);
    print_map(tw, "  Node-Selectors", sp ? (kv_t *const *)sp->nodeselector : NULL,
              sp ? sp->n_nodeselector : 0, "=", NULL);
    describe_tolerations(tw, "  Tolerations", sp);
}

/* The common head: Name, Namespace (unless NULL), Selector, Labels, Annotations. */
static void describe_head(struct ctl_tw *tw, const Coracle__V1__ObjectMeta *md,
                          const Coracle__V1__LabelSelector *sel, bool ns)
{
    ctl_tw_printf(tw, "Name:\t%s\n", md ? s_or(md->name, "") : "");
    if (ns)
        ctl_tw_printf(tw, "Namespace:\t%s\n", md ? s_or(md->namespace_, "") : "");
    char *s = cols_label_selector(sel);
    ctl_tw_printf(tw, "Selector:\t%s\n", s_or(s, "<none>"));
    free(s);
}

static void describe_labels(struct ctl_tw *tw, const Coracle__V1__ObjectMeta *md)
{
    print_map(tw, "Labels", md ? md->labels : NULL, md ? md->n_labels : 0, "=", NULL);
    print_map(tw, "Annotations", md ? (kv_t *const *)md->annotations : NULL,
              md ? md->n_annotations : 0, ": ", "kubectl.kubernetes.io/last-applied-configuration");
}

static void describe_controller(struct ctl_tw *tw, const Coracle__V1__ObjectMeta *md)
{
    for (size_t i = 0; md && i < md->n_ownerreferences; i++)
        if (md->ownerreferences[i]->controller)
            ctl_tw_printf(tw, "Controlled By:\t%s/%s\n", s_or(md->ownerreferences[i]->kind, ""),
                          s_or(md->ownerreferences[i]->name, ""));
}

static void pods_status(struct ctl_tw *tw, Coracle__V1__Pod *const *pods, size_t n)
{
    int running = 0, waiting = 0, succeeded = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        const char *ph = pods[i]->status ? s_or(pods[i]->status->phase, "") : "";
        running += !strcmp(ph, "Running");
        waiting += !strcmp(ph, "Pending");
        succeeded += !strcmp(ph, "Succeeded");
        failed += !strcmp(ph, "Failed");
    }
    ctl_tw_printf(tw, "Pods Status:\t%d Running / %d Waiting / %d Succeeded / %d Failed\n", running,
                  waiting, succeeded, failed);
}

/* Conditions of a Deployment or ReplicaSet: type, status, reason of each. */
static void describe_conditions(struct ctl_tw *tw, const char *const *type,
                                const char *const *status, const char *const *reason, size_t n)
{
    if (!n)
        return;
    ctl_tw_printf(tw, "Conditions:\n  Type\tStatus\tReason\n");
    ctl_tw_printf(tw, L1 "----\t------\t------\n");
    for (size_t i = 0; i < n; i++)
        ctl_tw_printf(tw, L1 "%s \t%s\t%s\n", s_or(type[i], ""), s_or(status[i], ""),
                      s_or(reason[i], ""));
}

static void ios_str(char *buf, size_t n, const Coracle__V1__IntOrString *v)
{
    if (v && v->type == 1)
        snprintf(buf, n, "%s", s_or(v->strval, ""));
    else
        snprintf(buf, n, "%d", v ? v->intval : 0);
}

static bool controlled_by(const Coracle__V1__ObjectMeta *md, const char *uid)
{
    for (size_t i = 0; md && uid && i < md->n_ownerreferences; i++)
        if (md->ownerreferences[i]->controller && md->ownerreferences[i]->uid &&
            !strcmp(md->ownerreferences[i]->uid, uid))
            return true;
    return false;
}

/* Whether an RS's template is the Deployment's (its pod-template-hash label aside). */
static bool same_template(const Coracle__V1__PodTemplateSpec *d,
                          const Coracle__V1__PodTemplateSpec *r)
{
    if (!d || !r)
        return d == r;
    size_t la = 0, lb = 0;
    uint8_t *a = NULL, *b = NULL;
    if (d->spec) {
        a = xmalloc(protobuf_c_message_get_packed_size(&d->spec->base) + 1);
        la = protobuf_c_message_pack(&d->spec->base, a);
    }
    if (r->spec) {
        b = xmalloc(protobuf_c_message_get_packed_size(&r->spec->base) + 1);
        lb = protobuf_c_message_pack(&r->spec->base, b);
    }
    bool same = la == lb && (!la || !memcmp(a, b, la));
    free(a);
    free(b);
    size_t nd = d->metadata ? d->metadata->n_labels : 0, nr = 0;
    for (size_t i = 0; same && r->metadata && i < r->metadata->n_labels; i++) {
        const kv_t *l = r->metadata->labels[i];
        if (l->key && !strcmp(l->key, "pod-template-hash"))
            continue;
        nr++;
        bool found = false;
        for (size_t j = 0; j < nd && !found; j++)
            found = !strcmp(s_or(d->metadata->labels[j]->key, ""), s_or(l->key, "")) &&
                    !strcmp(s_or(d->metadata->labels[j]->value, ""), s_or(l->value, ""));
        same = found;
    }
    return same && nr == nd;
}

/* printReplicaSetsByLabels: "name (x/y replicas created), ...", or <none>. */
static void replica_sets(struct ctl_tw *tw, const char *title, Coracle__V1__ReplicaSet *const *rss,
                         size_t n)
{
    ctl_tw_printf(tw, "%s:\t", title);
    for (size_t i = 0; i < n; i++)
        ctl_tw_printf(tw, "%s%s (%d/%d replicas created)", i ? ", " : "",
                      s_or(rss[i]->metadata ? rss[i]->metadata->name : NULL, ""),
                      rss[i]->status ? rss[i]->status->replicas : 0,
                      rss[i]->spec ? rss[i]->spec->replicas : 0);
    ctl_tw_printf(tw, "%s\n", n ? "" : "<none>");
}

static void describe_deployment(struct ctl_tw *tw, const Coracle__V1__Deployment *d,
                                Coracle__V1__ReplicaSet *const *rss, size_t nrs)
{
    const Coracle__V1__DeploymentSpec *sp = d->spec;
    const Coracle__V1__DeploymentStatus *st = d->status;
    char t[64];
    ctl_tw_printf(tw, "Name:\t%s\n", d->metadata ? s_or(d->metadata->name, "") : "");
    ctl_tw_printf(tw, "Namespace:\t%s\n", d->metadata ? s_or(d->metadata->namespace_, "") : "");
    fmt_time(t, sizeof(t), d->metadata ? d->metadata->creationtimestamp : NULL);
    ctl_tw_printf(tw, "CreationTimestamp:\t%s\n", t);
    describe_labels(tw, d->metadata);
    char *sel = cols_label_selector(sp ? sp->selector : NULL);
    ctl_tw_printf(tw, "Selector:\t%s\n", sel);
    free(sel);
    ctl_tw_printf(tw,
                  "Replicas:\t%d desired | %d updated | %d total | %d available | %d "
                  "unavailable\n",
                  sp ? sp->replicas : 0, st ? st->updatedreplicas : 0, st ? st->replicas : 0,
                  st ? st->availablereplicas : 0, st ? st->unavailablereplicas : 0);
    const Coracle__V1__DeploymentStrategy *sg = sp ? sp->strategy : NULL;
    ctl_tw_printf(tw, "StrategyType:\t%s\n", sg ? s_or(sg->type, "") : "");
    ctl_tw_printf(tw, "MinReadySeconds:\t%d\n", sp ? sp->minreadyseconds : 0);
    if (sg && sg->rollingupdate) {
        char mu[32], ms[32];
        ios_str(mu, sizeof(mu), sg->rollingupdate->maxunavailable);
        ios_str(ms, sizeof(ms), sg->rollingupdate->maxsurge);
        ctl_tw_printf(tw, "RollingUpdateStrategy:\t%s max unavailable, %s max surge\n", mu, ms);
    }
    describe_template(tw, sp ? sp->template_ : NULL);
    size_t nc = st ? st->n_conditions : 0;
    const char **ty = xcalloc(nc + 1, sizeof(*ty)), **ss = xcalloc(nc + 1, sizeof(*ss)),
               **re = xcalloc(nc + 1, sizeof(*re));
    for (size_t i = 0; i < nc; i++) {
        ty[i] = st->conditions[i]->type;
        ss[i] = st->conditions[i]->status;
        re[i] = st->conditions[i]->reason;
    }
    describe_conditions(tw, ty, ss, re, nc);
    free(ty);
    free(ss);
    free(re);
    /* deploymentutil.GetAllReplicaSets: the ones it controls; the new one has its template */
    Coracle__V1__ReplicaSet **old = xcalloc(nrs + 1, sizeof(*old)), *nw = NULL;
    size_t nold = 0;
    const char *uid = d->metadata ? d->metadata->uid : NULL;
    for (size_t i = 0; i < nrs; i++) {
        if (!controlled_by(rss[i]->metadata, uid))
            continue;
        if (!nw && sp && rss[i]->spec && same_template(sp->template_, rss[i]->spec->template_))
            nw = rss[i];
        else
            old[nold++] = rss[i];
    }
    if (nold || nw) { /* kubectl writes neither line for a Deployment without any */
        replica_sets(tw, "OldReplicaSets", old, nold);
        replica_sets(tw, "NewReplicaSet", &nw, nw ? 1 : 0);
    }
    free(old);
}

static void describe_replicaset(struct ctl_tw *tw, const Coracle__V1__ReplicaSet *rs,
                                Coracle__V1__Pod *const *pods, size_t npods)
{
    const Coracle__V1__ReplicaSetSpec *sp = rs->spec;
    const Coracle__V1__ReplicaSetStatus *st = rs->status;
    describe_head(tw, rs->metadata, sp ? sp->selector : NULL, true);
    describe_labels(tw, rs->metadata);
    describe_controller(tw, rs->metadata);
    ctl_tw_printf(tw, "Replicas:\t%d current / %d desired\n", st ? st->replicas : 0,
                  sp ? sp->replicas : 0);
    pods_status(tw, pods, npods);
    describe_template(tw, sp ? sp->template_ : NULL);
    size_t nc = st ? st->n_conditions : 0;
    const char **ty = xcalloc(nc + 1, sizeof(*ty)), **ss = xcalloc(nc + 1, sizeof(*ss)),
               **re = xcalloc(nc + 1, sizeof(*re));
    for (size_t i = 0; i < nc; i++) {
        ty[i] = st->conditions[i]->type;
        ss[i] = st->conditions[i]->status;
        re[i] = st->conditions[i]->reason;
    }
    describe_conditions(tw, ty, ss, re, nc);
    free(ty);
    free(ss);
    free(re);
}

static void describe_daemonset(struct ctl_tw *tw, const Coracle__V1__DaemonSet *ds,
                               Coracle__V1__Pod *const *pods, size_t npods)
{
    const Coracle__V1__DaemonSetSpec *sp = ds->spec;
    const Coracle__V1__DaemonSetStatus *st = ds->status;
    const Coracle__V1__PodSpec *ps = sp && sp->template_ ? sp->template_->spec : NULL;
    describe_head(tw, ds->metadata, sp ? sp->selector : NULL, false);
    struct buf ns = {0};
    kv_t **v = xcalloc((ps ? ps->n_nodeselector : 0) + 1, sizeof(*v));
    for (size_t i = 0; ps && i < ps->n_nodeselector; i++)
        v[i] = (kv_t *)ps->nodeselector[i];
    qsort(v, ps ? ps->n_nodeselector : 0, sizeof(*v), cmp_kv);
    for (size_t i = 0; ps && i < ps->n_nodeselector; i++)
        buf_printf(&ns, "%s%s=%s", i ? "," : "", s_or(v[i]->key, ""), s_or(v[i]->value, ""));
    free(v);
    if (!ns.len)
        buf_puts(&ns, "<none>");
    ctl_tw_printf(tw, "Node-Selector:\t%s\n", ns.p);
    buf_free(&ns);
    describe_labels(tw, ds->metadata);
    ctl_tw_printf(tw, "Desired Number of Nodes Scheduled: %d\n",
                  st ? st->desirednumberscheduled : 0);
    ctl_tw_printf(tw, "Current Number of Nodes Scheduled: %d\n",
                  st ? st->currentnumberscheduled : 0);
    ctl_tw_printf(tw, "Number of Nodes Scheduled with Up-to-date Pods: %d\n",
                  st ? st->updatednumberscheduled : 0);
    ctl_tw_printf(tw, "Number of Nodes Scheduled with Available Pods: %d\n",
                  st ? st->numberavailable : 0);
    ctl_tw_printf(tw, "Number of Nodes Misscheduled: %d\n", st ? st->numbermisscheduled : 0);
    pods_status(tw, pods, npods);
    describe_template(tw, sp ? sp->template_ : NULL);
}

static void describe_job(struct ctl_tw *tw, const Coracle__V1__Job *j, int64_t now_ns)
{
    const Coracle__V1__JobSpec *sp = j->spec;
    const Coracle__V1__JobStatus *st = j->status;
    char t[64];
    (void)now_ns;
    describe_head(tw, j->metadata, sp ? sp->selector : NULL, true);
    describe_labels(tw, j->metadata);
    describe_controller(tw, j->metadata);
    if (sp && sp->has_parallelism)
        ctl_tw_printf(tw, "Parallelism:\t%d\n", sp->parallelism);
    if (sp && sp->has_completions)
        ctl_tw_printf(tw, "Completions:\t%d\n", sp->completions);
    else
        ctl_tw_printf(tw, "Completions:\t<unset>\n");
    if (sp && sp->completionmode)
        ctl_tw_printf(tw, "Completion Mode:\t%s\n", sp->completionmode);
    if (sp && sp->has_suspend)
        ctl_tw_printf(tw, "Suspend:\t%s\n", sp->suspend ? "true" : "false");
    if (sp && sp->has_backofflimit)
        ctl_tw_printf(tw, "Backoff Limit:\t%d\n", sp->backofflimit);
    if (sp && sp->has_ttlsecondsafterfinished)
        ctl_tw_printf(tw, "TTL Seconds After Finished:\t%d\n", sp->ttlsecondsafterfinished);
    if (st && st->starttime) {
        fmt_time(t, sizeof(t), st->starttime);
        ctl_tw_printf(tw, "Start Time:\t%s\n", t);
    }
    if (st && st->completiontime) {
        fmt_time(t, sizeof(t), st->completiontime);
        ctl_tw_printf(tw, "Completed At:\t%s\n", t);
    }
    if (st && st->starttime && st->completiontime) {
        ctl_human_duration(t, sizeof(t),
                           (st->completiontime->seconds - st->starttime->seconds) * 1000000000LL);
        ctl_tw_printf(tw, "Duration:\t%s\n", t);
    }
    if (sp && sp->has_activedeadlineseconds)
        ctl_tw_printf(tw, "Active Deadline Seconds:\t%" PRId64 "s\n", sp->activedeadlineseconds);
    if (st && st->has_ready)
        ctl_tw_printf(tw, "Pods Statuses:\t%d Active (%d Ready) / %d Succeeded / %d Failed\n",
                      st->active, st->ready, st->succeeded, st->failed);
    else
        ctl_tw_printf(tw, "Pods Statuses:\t%d Active / %d Succeeded / %d Failed\n",
                      st ? st->active : 0, st ? st->succeeded : 0, st ? st->failed : 0);
    describe_template(tw, sp ? sp->template_ : NULL);
}

static void describe_cronjob(struct ctl_tw *tw, const Coracle__V1__CronJob *cj)
{
    const Coracle__V1__CronJobSpec *sp = cj->spec;
    const Coracle__V1__CronJobStatus *st = cj->status;
    const Coracle__V1__JobSpec *js = sp && sp->jobtemplate ? sp->jobtemplate->spec : NULL;
    char t[64];
    ctl_tw_printf(tw, "Name:\t%s\n", cj->metadata ? s_or(cj->metadata->name, "") : "");
    ctl_tw_printf(tw, "Namespace:\t%s\n", cj->metadata ? s_or(cj->metadata->namespace_, "") : "");
    describe_labels(tw, cj->metadata);
    ctl_tw_printf(tw, "Schedule:\t%s\n", sp ? s_or(sp->schedule, "") : "");
    ctl_tw_printf(tw, "Concurrency Policy:\t%s\n", sp ? s_or(sp->concurrencypolicy, "") : "");
    ctl_tw_printf(tw, "Suspend:\t%s\n",
                  !sp || !sp->has_suspend ? "<unset>"
                  : sp->suspend           ? "True"
                                          : "False");
    if (sp && sp->has_successfuljobshistorylimit)
        ctl_tw_printf(tw, "Successful Job History Limit:\t%d\n", sp->successfuljobshistorylimit);
    else
        ctl_tw_printf(tw, "Successful Job History Limit:\t<unset>\n");
    if (sp && sp->has_failedjobshistorylimit)
        ctl_tw_printf(tw, "Failed Job History Limit:\t%d\n", sp->failedjobshistorylimit);
    else
        ctl_tw_printf(tw, "Failed Job History Limit:\t<unset>\n");
    if (sp && sp->has_startingdeadlineseconds)
        ctl_tw_printf(tw, "Starting Deadline Seconds:\t%" PRId64 "s\n",
                      sp->startingdeadlineseconds);
    else
        ctl_tw_printf(tw, "Starting Deadline Seconds:\t<unset>\n");
    /* describeJobTemplate */
    char *sel = js && js->selector ? cols_label_selector(js->selector) : NULL;
    ctl_tw_printf(tw, "Selector:\t%s\n", sel ? sel : "<unset>");
    free(sel);
    if (js && js->has_parallelism)
        ctl_tw_printf(tw, "Parallelism:\t%d\n", js->parallelism);
    else
        ctl_tw_printf(tw, "Parallelism:\t<unset>\n");
    if (js && js->has_completions)
        ctl_tw_printf(tw, "Completions:\t%d\n", js->completions);
    else
        ctl_tw_printf(tw, "Completions:\t<unset>\n");
    if (js && js->has_activedeadlineseconds)
        ctl_tw_printf(tw, "Active Deadline Seconds:\t%" PRId64 "s\n", js->activedeadlineseconds);
    describe_template(tw, js ? js->template_ : NULL);
    if (st && st->lastscheduletime) {
        fmt_time(t, sizeof(t), st->lastscheduletime);
        ctl_tw_printf(tw, "Last Schedule Time:\t%s\n", t);
    } else {
        ctl_tw_printf(tw, "Last Schedule Time:\t<unset>\n");
    }
    ctl_tw_printf(tw, "Active Jobs:\t");
    for (size_t i = 0; st && i < st->n_active; i++)
        ctl_tw_printf(tw, "%s%s", i ? ", " : "", s_or(st->active[i]->name, ""));
    ctl_tw_printf(tw, "%s\n", st && st->n_active ? "" : "<none>");
}

void ctl_describe_workload(struct buf *out, const struct kind *k, const ProtobufCMessage *obj,
                           Coracle__V1__Pod *const *pods, size_t npods,
                           Coracle__V1__ReplicaSet *const *rss, size_t nrs,
                           Coracle__V1__Event *const *events, size_t nev, int64_t now_ns)
{
    struct ctl_tw tw;
    ctl_tw_init(&tw, 0, 2, false);
    if (k == &kind_deployment)
        describe_deployment(&tw, (const void *)obj, rss, nrs);
    else if (k == &kind_replicaset)
        describe_replicaset(&tw, (const void *)obj, pods, npods);
    else if (k == &kind_daemonset)
        describe_daemonset(&tw, (const void *)obj, pods, npods);
    else if (k == &kind_job)
        describe_job(&tw, (const void *)obj, now_ns);
    else if (k == &kind_cronjob)
        describe_cronjob(&tw, (const void *)obj);
    describe_events(&tw, out, events, nev, now_ns);
    ctl_tw_flush(&tw, out);
    ctl_tw_free(&tw);
}

/* ---- rbac.authorization.k8s.io ---- */

/* Go's %v of a []string: [a b]. */
static void go_list(char *buf, size_t n, char *const *v, size_t nv)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (size_t i = 0; i < nv && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? " " : "", v[i]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
}

/* kubectl's PolicyRule table: a row per resource and group ("deployments.apps"), or per URL rule.
 */
static void describe_rules(struct ctl_tw *tw, Coracle__V1__PolicyRule *const *rules, size_t n)
{
    ctl_tw_printf(tw, "PolicyRule:\n");
    ctl_tw_printf(tw, "  Resources\tNon-Resource URLs\tResource Names\tVerbs\n");
    ctl_tw_printf(tw, "  ---------\t-----------------\t--------------\t-----\n");
    for (size_t i = 0; i < n; i++) {
        const Coracle__V1__PolicyRule *r = rules[i];
        char names[512], verbs[512], urls[512];
        go_list(names, sizeof(names), r->resourcenames, r->n_resourcenames);
        go_list(verbs, sizeof(verbs), r->verbs, r->n_verbs);
        if (r->n_nonresourceurls) {
            go_list(urls, sizeof(urls), r->nonresourceurls, r->n_nonresourceurls);
            ctl_tw_printf(tw, "  \t%s\t%s\t%s\n", urls, names, verbs);
        }
        for (size_t j = 0; j < r->n_resources; j++)
            for (size_t g = 0; g < r->n_apigroups; g++)
                ctl_tw_printf(tw, "  %s%s%s\t[]\t%s\t%s\n", r->resources[j],
                              *r->apigroups[g] ? "." : "", r->apigroups[g], names, verbs);
    }
}

void ctl_describe_rbac(struct buf *out, const struct kind *k, const ProtobufCMessage *obj)
{
    struct ctl_tw tw;
    ctl_tw_init(&tw, 0, 2, false);
    const Coracle__V1__ObjectMeta *md = kind_meta(obj);
    ctl_tw_printf(&tw, "Name:\t%s\n", md ? s_or(md->name, "") : "");
    describe_labels(&tw, md);
    if (k == &kind_role || k == &kind_clusterrole) {
        const Coracle__V1__ClusterRole *r = (const void *)obj; /* a Role has the same head */
        describe_rules(&tw, r->rules, r->n_rules);
    } else {
        const Coracle__V1__RoleBinding *b = (const void *)obj; /* a ClusterRoleBinding's too */
        ctl_tw_printf(&tw, "Role:\n");
        ctl_tw_printf(&tw, "  Kind:\t%s\n", b->roleref ? s_or(b->roleref->kind, "") : "");
        ctl_tw_printf(&tw, "  Name:\t%s\n", b->roleref ? s_or(b->roleref->name, "") : "");
        ctl_tw_printf(&tw, "Subjects:\n");
        ctl_tw_printf(&tw, "  Kind\tName\tNamespace\n");
        ctl_tw_printf(&tw, "  ----\t----\t---------\n");
        for (size_t i = 0; i < b->n_subjects; i++)
            ctl_tw_printf(&tw, "  %s\t%s\t%s\n", s_or(b->subjects[i]->kind, ""),
                          s_or(b->subjects[i]->name, ""), s_or(b->subjects[i]->namespace_, ""));
    }
    ctl_tw_flush(&tw, out);
    ctl_tw_free(&tw);
}
