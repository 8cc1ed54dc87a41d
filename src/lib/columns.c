/*
 * columns: Kubernetes' columns and cells for each kind, and the Table that
 * carries them. See columns.h. The derivations follow Kubernetes'
 * printers.go (printPod, printNode, printEvent, printLease, printNamespace,
 * printConfigMap, printSecret, printServiceAccount, printDeployment,
 * printReplicaSet, printDaemonSet, printJob, printCronJob, printNetworkPolicy) and
 * apimachinery's duration.HumanDuration.
 */
#include "config.h"
#include "columns.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "json.h"
#include "util.h"

/* ------------------------------------------------------------- time */

void cols_human_duration(char *buf, size_t n, int64_t d_ns)
{
    int64_t seconds = d_ns / 1000000000LL;
    if (seconds < -1) {
        snprintf(buf, n, "<invalid>");
        return;
    }
    if (seconds < 0) {
        snprintf(buf, n, "0s");
        return;
    }
    if (seconds < 60 * 2) {
        snprintf(buf, n, "%" PRId64 "s", seconds);
        return;
    }
    int64_t minutes = seconds / 60;
    if (minutes < 10) {
        int64_t s = seconds % 60;
        if (s == 0)
            snprintf(buf, n, "%" PRId64 "m", minutes);
        else
            snprintf(buf, n, "%" PRId64 "m%" PRId64 "s", minutes, s);
        return;
    }
    if (minutes < 60 * 3) {
        snprintf(buf, n, "%" PRId64 "m", minutes);
        return;
    }
    int64_t hours = seconds / 3600;
    if (hours < 8) {
        int64_t m = minutes % 60;
        if (m == 0)
            snprintf(buf, n, "%" PRId64 "h", hours);
        else
            snprintf(buf, n, "%" PRId64 "h%" PRId64 "m", hours, m);
    } else if (hours < 48) {
        snprintf(buf, n, "%" PRId64 "h", hours);
    } else if (hours < 24 * 8) {
        int64_t h = hours % 24;
        if (h == 0)
            snprintf(buf, n, "%" PRId64 "d", hours / 24);
        else
            snprintf(buf, n, "%" PRId64 "d%" PRId64 "h", hours / 24, h);
    } else if (hours < 24 * 365 * 2) {
        snprintf(buf, n, "%" PRId64 "d", hours / 24);
    } else if (hours < 24 * 365 * 8) {
        int64_t dy = (hours / 24) % 365;
        if (dy == 0)
            snprintf(buf, n, "%" PRId64 "y", hours / 24 / 365);
        else
            snprintf(buf, n, "%" PRId64 "y%" PRId64 "d", hours / 24 / 365, dy);
    } else {
        snprintf(buf, n, "%" PRId64 "y", hours / 24 / 365);
    }
}

void cols_age(char *buf, size_t n, const Coracle__V1__Time *t, int64_t now_ns)
{
    if (!t || (!t->seconds && !t->nanos)) {
        snprintf(buf, n, "<unknown>");
        return;
    }
    cols_human_duration(buf, n, now_ns - (t->seconds * 1000000000LL + t->nanos));
}

/* ------------------------------------------------------------ pods */

static int64_t time_sec(const Coracle__V1__Time *t)
{
    return t ? t->seconds : 0;
}

static int has_condition(const Coracle__V1__PodStatus *st, const char *type, const char *status)
{
    for (size_t i = 0; st && i < st->n_conditions; i++)
        if (st->conditions[i]->type && !strcmp(st->conditions[i]->type, type))
            return st->conditions[i]->status && !strcmp(st->conditions[i]->status, status);
    return 0;
}

void cols_pod_summary(const Coracle__V1__Pod *pod, struct cols_pod_summary *s)
{
    const Coracle__V1__PodSpec *spec = pod->spec;
    const Coracle__V1__PodStatus *st = pod->status;
    const Coracle__V1__ObjectMeta *md = pod->metadata;
    memset(s, 0, sizeof(*s));
    s->total = spec ? (int)spec->n_containers : 0;
    const char *phase = st && st->phase ? st->phase : "";
    snprintf(s->status, sizeof(s->status), "%s", phase);
    if (st && st->reason && *st->reason)
        snprintf(s->status, sizeof(s->status), "%s", st->reason);
    for (size_t i = 0; st && i < st->n_conditions; i++) {
        const Coracle__V1__PodCondition *c = st->conditions[i];
        if (c->type && !strcmp(c->type, "PodScheduled") && c->reason &&
            !strcmp(c->reason, "SchedulingGated"))
            snprintf(s->status, sizeof(s->status), "SchedulingGated");
    }

    int initializing = 0;
    for (size_t i = 0; st && i < st->n_initcontainerstatuses; i++) {
        const Coracle__V1__ContainerStatus *cs = st->initcontainerstatuses[i];
        const Coracle__V1__ContainerState *state = cs->state;
        s->restarts += cs->restartcount;
        if (cs->laststate && cs->laststate->terminated &&
            time_sec(cs->laststate->terminated->finishedat) > s->last_restart_sec)
            s->last_restart_sec = time_sec(cs->laststate->terminated->finishedat);
        const Coracle__V1__ContainerStateTerminated *t = state ? state->terminated : NULL;
        const Coracle__V1__ContainerStateWaiting *w = state ? state->waiting : NULL;
        if (t && t->exitcode == 0)
            continue;
        if (t) {
            if (!t->reason || !*t->reason) {
                if (t->signal != 0)
                    snprintf(s->status, sizeof(s->status), "Init:Signal:%d", t->signal);
                else
                    snprintf(s->status, sizeof(s->status), "Init:ExitCode:%d", t->exitcode);
            } else
                snprintf(s->status, sizeof(s->status), "Init:%s", t->reason);
        } else if (w && w->reason && *w->reason && strcmp(w->reason, "PodInitializing")) {
            snprintf(s->status, sizeof(s->status), "Init:%s", w->reason);
        } else {
            snprintf(s->status, sizeof(s->status), "Init:%zu/%zu", i,
                     spec ? spec->n_initcontainers : 0);
        }
        initializing = 1;
        break;
    }
    if (!initializing || has_condition(st, "Initialized", "True")) {
        s->restarts = 0;
        s->last_restart_sec = 0;
        int has_running = 0;
        for (size_t k = st ? st->n_containerstatuses : 0; k-- > 0;) {
            const Coracle__V1__ContainerStatus *cs = st->containerstatuses[k];
            const Coracle__V1__ContainerState *state = cs->state;
            s->restarts += cs->restartcount;
            if (cs->laststate && cs->laststate->terminated &&
                time_sec(cs->laststate->terminated->finishedat) > s->last_restart_sec)
                s->last_restart_sec = time_sec(cs->laststate->terminated->finishedat);
            const Coracle__V1__ContainerStateTerminated *t = state ? state->terminated : NULL;
            const Coracle__V1__ContainerStateWaiting *w = state ? state->waiting : NULL;
            if (w && w->reason && *w->reason)
                snprintf(s->status, sizeof(s->status), "%s", w->reason);
            else if (t && t->reason && *t->reason)
                snprintf(s->status, sizeof(s->status), "%s", t->reason);
            else if (t) {
                if (t->signal != 0)
                    snprintf(s->status, sizeof(s->status), "Signal:%d", t->signal);
                else
                    snprintf(s->status, sizeof(s->status), "ExitCode:%d", t->exitcode);
            } else if (cs->ready && state && state->running) {
                has_running = 1;
                s->ready++;
            }
        }
        if (!strcmp(s->status, "Completed") && has_running)
            snprintf(s->status, sizeof(s->status), "%s",
                     has_condition(st, "Ready", "True") ? "Running" : "NotReady");
    }
    if (md && md->deletiontimestamp && st && st->reason && !strcmp(st->reason, "NodeLost"))
        snprintf(s->status, sizeof(s->status), "Unknown");
    else if (md && md->deletiontimestamp && strcmp(phase, "Succeeded") && strcmp(phase, "Failed"))
        snprintf(s->status, sizeof(s->status), "Terminating");
}

void cols_pod_restarts(char *buf, size_t n, const struct cols_pod_summary *s, int64_t now_ns)
{
    if (s->restarts != 0 && s->last_restart_sec) {
        char age[32];
        cols_human_duration(age, sizeof(age), now_ns - s->last_restart_sec * 1000000000LL);
        snprintf(buf, n, "%d (%s ago)", s->restarts, age);
    } else
        snprintf(buf, n, "%d", s->restarts);
}

/* ----------------------------------------------------------- nodes */

void cols_node_status(char *buf, size_t n, const Coracle__V1__Node *node)
{
    const char *st = NULL;
    const Coracle__V1__NodeStatus *ns = node->status;
    for (size_t i = 0; ns && i < ns->n_conditions; i++)
        if (ns->conditions[i]->type && !strcmp(ns->conditions[i]->type, "Ready"))
            st = ns->conditions[i]->status && !strcmp(ns->conditions[i]->status, "True")
                     ? "Ready"
                     : "NotReady";
    snprintf(buf, n, "%s%s", st ? st : "Unknown",
             node->spec && node->spec->unschedulable ? ",SchedulingDisabled" : "");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *cols_node_roles(const Coracle__V1__Node *node)
{
    const Coracle__V1__ObjectMeta *md = node->metadata;
    size_t n = md ? md->n_labels : 0, nr = 0;
    const char **roles = xcalloc(n + 1, sizeof(*roles));
    static const char pfx[] = "node-role.kubernetes.io/";
    for (size_t i = 0; i < n; i++) {
        const char *k = md->labels[i]->key, *v = md->labels[i]->value;
        const char *r = NULL;
        if (k && !strncmp(k, pfx, sizeof(pfx) - 1) && k[sizeof(pfx) - 1])
            r = k + sizeof(pfx) - 1;
        else if (k && !strcmp(k, "kubernetes.io/role") && v && *v)
            r = v;
        if (!r)
            continue;
        int dup = 0;
        for (size_t j = 0; j < nr; j++)
            dup |= !strcmp(roles[j], r);
        if (!dup)
            roles[nr++] = r;
    }
    qsort(roles, nr, sizeof(*roles), cmp_str);
    struct buf b = {0};
    for (size_t i = 0; i < nr; i++)
        buf_printf(&b, "%s%s", i ? "," : "", roles[i]);
    free(roles);
    if (!nr)
        buf_puts(&b, "<none>");
    return buf_take(&b);
}

static const char *node_address(const Coracle__V1__Node *node, const char *type)
{
    for (size_t i = 0; node->status && i < node->status->n_addresses; i++)
        if (node->status->addresses[i]->type && !strcmp(node->status->addresses[i]->type, type))
            return node->status->addresses[i]->address ? node->status->addresses[i]->address
                                                       : "<none>";
    return "<none>";
}

static const char *or_str(const char *s, const char *dflt)
{
    return s && *s ? s : dflt;
}

/* ---------------------------------------------------------- definitions */

#define NAME_COL                                                                                   \
    {                                                                                              \
        "Name", "string", "name", "The object's name, unique within its namespace.", 0             \
    }
#define AGE_COL                                                                                    \
    {                                                                                              \
        "Age", "string", "", "How long ago the object was created (metadata.creationTimestamp).",  \
            0                                                                                      \
    }

static const struct cols_def pod_defs[] = {
    NAME_COL,
    {"Ready", "string", "", "The aggregate readiness state of this pod for accepting traffic.", 0},
    {"Status", "string", "", "The aggregate status of the containers in this pod.", 0},
    {"Restarts", "string", "",
     "How many times the containers of this pod restarted, and how long ago the last one did.", 0},
    AGE_COL,
    {"IP", "string", "", "The pod's first IP address (status.podIPs).", 1},
    {"Node", "string", "", "The node the pod is bound to (spec.nodeName).", 1},
    {"Nominated Node", "string", "",
     "The node a preempting pod is expected to run on (status.nominatedNodeName).", 1},
    {"Readiness Gates", "string", "",
     "Readiness gates whose condition is True, over all readiness gates.", 1},
};

static const struct cols_def node_defs[] = {
    NAME_COL,
    {"Status", "string", "", "The status of the node", 0},
    {"Roles", "string", "", "The roles of the node", 0},
    AGE_COL,
    {"Version", "string", "", "The kubelet's version (status.nodeInfo.kubeletVersion).", 0},
    {"Internal-IP", "string", "", "The node's InternalIP address (status.addresses).", 1},
    {"External-IP", "string", "", "The node's ExternalIP address (status.addresses).", 1},
    {"OS-Image", "string", "", "The node's operating system (status.nodeInfo.osImage).", 1},
    {"Kernel-Version", "string", "", "The node's kernel (status.nodeInfo.kernelVersion).", 1},
    {"Container-Runtime", "string", "",
     "The container runtime and its version (status.nodeInfo.containerRuntimeVersion).", 1},
};

static const struct cols_def event_defs[] = {
    {"Last Seen", "string", "", "How long ago the event was last seen (lastTimestamp).", 0},
    {"Type", "string", "", "The type of event: Normal or Warning.", 0},
    {"Reason", "string", "", "Why the event happened, in CamelCase.", 0},
    {"Object", "string", "", "The object the event is about (involvedObject).", 0},
    {"Subobject", "string", "", "The part of the object, if any (involvedObject.fieldPath).", 1},
    {"Source", "string", "", "The component (and host) that reported the event.", 1},
    {"Message", "string", "", "What happened, for a human.", 0},
    {"First Seen", "string", "", "How long ago the event was first seen (firstTimestamp).", 1},
    {"Count", "string", "", "How many times the event happened.", 1},
    {"Name", "string", "name", "The object's name, unique within its namespace.", 1},
};

static const struct cols_def lease_defs[] = {
    NAME_COL,
    {"Holder", "string", "", "Who holds the lease (spec.holderIdentity).", 0},
    AGE_COL,
};

static const struct cols_def namespace_defs[] = {
    NAME_COL,
    {"Status", "string", "", "The status of the namespace", 0},
    AGE_COL,
};

static const struct cols_def configmap_defs[] = {
    NAME_COL,
    {"Data", "integer", "", "How many keys the ConfigMap holds (data and binaryData).", 0},
    AGE_COL,
};

static const struct cols_def secret_defs[] = {
    NAME_COL,
    {"Type", "string", "", "Used to facilitate programmatic handling of secret data.", 0},
    {"Data", "integer", "", "How many keys the Secret holds.", 0},
    AGE_COL,
};

static const struct cols_def serviceaccount_defs[] = {
    NAME_COL,
    {"Secrets", "integer", "", "How many secrets the ServiceAccount lists.", 0},
    AGE_COL,
};

/* rbac.authorization.k8s.io: printers.go's roleColumnDefinitions and
 * roleBindingsColumnDefinitions (the same for the cluster-wide kinds) */
static const struct cols_def role_defs[] = {
    NAME_COL,
    {"Created At", "date", "", "When the role was created (metadata.creationTimestamp).", 0},
};

static const struct cols_def rolebinding_defs[] = {
    NAME_COL,
    {"Role", "string", "", "The role bound: roleRef's kind/name.", 0},
    AGE_COL,
    {"Users", "string", "", "The users bound.", 1},
    {"Groups", "string", "", "The groups bound.", 1},
    {"ServiceAccounts", "string", "", "The service accounts bound (namespace/name).", 1},
};

#define CONTAINERS_COL                                                                             \
    {                                                                                              \
        "Containers", "string", "", "Names of each container in the template.", 1                  \
    }
#define IMAGES_COL                                                                                 \
    {                                                                                              \
        "Images", "string", "", "Images referenced by each container in the template.", 1          \
    }
#define SELECTOR_COL                                                                               \
    {                                                                                              \
        "Selector", "string", "", "A label query over the pods the object manages.", 1             \
    }

static const struct cols_def deployment_defs[] = {
    NAME_COL,
    {"Ready", "string", "", "Number of the pod with ready state", 0},
    {"Up-to-date", "string", "",
     "Total number of non-terminating pods targeted by this deployment that have the desired "
     "template spec.",
     0},
    {"Available", "string", "",
     "Total number of available non-terminating pods (ready for at least minReadySeconds) "
     "targeted by this deployment.",
     0},
    AGE_COL,
    CONTAINERS_COL,
    IMAGES_COL,
    SELECTOR_COL,
};

static const struct cols_def replicaset_defs[] = {
    NAME_COL,
    {"Desired", "integer", "", "Replicas is the number of desired pods.", 0},
    {"Current", "integer", "",
     "Replicas is the most recently observed number of non-terminating pods.", 0},
    {"Ready", "integer", "",
     "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.", 0},
    AGE_COL,
    CONTAINERS_COL,
    IMAGES_COL,
    SELECTOR_COL,
};

static const struct cols_def daemonset_defs[] = {
    NAME_COL,
    {"Desired", "integer", "", "The total number of nodes that should be running the daemon pod.",
     0},
    {"Current", "integer", "",
     "The number of nodes that are running at least 1 daemon pod and are supposed to run the "
     "daemon pod.",
     0},
    {"Ready", "integer", "",
     "The number of nodes that should be running the daemon pod and have one or more of the "
     "daemon pod running with a Ready Condition.",
     0},
    {"Up-to-date", "integer", "", "The total number of nodes that are running updated daemon pod",
     0},
    {"Available", "integer", "",
     "The number of nodes that should be running the daemon pod and have one or more of the "
     "daemon pod running and available (ready for at least spec.minReadySeconds)",
     0},
    {"Node Selector", "string", "",
     "A selector which must be true for the pod to fit on a node (the template's nodeSelector).",
     0},
    AGE_COL,
    CONTAINERS_COL,
    IMAGES_COL,
    SELECTOR_COL,
};

static const struct cols_def job_defs[] = {
    NAME_COL,
    {"Status", "string", "", "Status of the job.", 0},
    {"Completions", "string", "", "The number of pods which reached phase Succeeded.", 0},
    {"Duration", "string", "", "Time required to complete the job.", 0},
    AGE_COL,
    CONTAINERS_COL,
    IMAGES_COL,
    SELECTOR_COL,
};

static const struct cols_def cronjob_defs[] = {
    NAME_COL,
    {"Schedule", "string", "", "The schedule in Cron format.", 0},
    {"Timezone", "string", "", "The time zone name for the given schedule.", 0},
    {"Suspend", "boolean", "", "This flag tells the controller to suspend subsequent executions.",
     0},
    {"Active", "integer", "", "A list of pointers to currently running jobs.", 0},
    {"Last Schedule", "string", "",
     "Information when was the last time the job was successfully scheduled.", 0},
    AGE_COL,
    CONTAINERS_COL,
    IMAGES_COL,
    SELECTOR_COL,
};

static const struct cols_def service_defs[] = {
    NAME_COL,
    {"Type", "string", "",
     "type determines how the Service is exposed: ClusterIP, NodePort, LoadBalancer or "
     "ExternalName.",
     0},
    {"Cluster-IP", "string", "", "clusterIP is the IP address of the service.", 0},
    {"External-IP", "string", "",
     "externalIPs, the load balancer's ingress addresses, or the ExternalName.", 0},
    {"Port(s)", "string", "", "The list of ports that are exposed by this service.", 0},
    AGE_COL,
    {"Selector", "string", "",
     "Route service traffic to pods with label keys and values matching this selector.", 1},
};

static const struct cols_def endpointslice_defs[] = {
    NAME_COL,
    {"AddressType", "string", "",
     "addressType specifies the type of address carried by this EndpointSlice.", 0},
    {"Ports", "string", "",
     "ports specifies the list of network ports exposed by each endpoint in this slice.", 0},
    {"Endpoints", "string", "", "endpoints is a list of unique endpoints in this slice.", 0},
    AGE_COL,
};

static const struct cols_def networkpolicy_defs[] = {
    NAME_COL,
    {"Pod-Selector", "string", "",
     "podSelector selects the pods to which this NetworkPolicy object applies.", 0},
    AGE_COL,
};

static const struct cols_def other_defs[] = {NAME_COL, AGE_COL};

/* ---------------------------------------------------------------- cells */

static void cell_str(struct cols_row *row, const char *s)
{
    row->cell[row->n++].str = xstrdup(s ? s : "");
}

static void cell_num(struct cols_row *row, int64_t v)
{
    row->cell[row->n].str = NULL;
    row->cell[row->n++].num = v;
}

static void pod_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                      int64_t now_ns)
{
    const Coracle__V1__Pod *pod = (const Coracle__V1__Pod *)obj;
    struct cols_pod_summary s;
    char buf[64];
    cols_pod_summary(pod, &s);
    cell_str(row, pod->metadata ? pod->metadata->name : NULL);
    snprintf(buf, sizeof(buf), "%d/%d", s.ready, s.total);
    cell_str(row, buf);
    cell_str(row, s.status);
    cols_pod_restarts(buf, sizeof(buf), &s, now_ns);
    cell_str(row, buf);
    cell_str(row, age);
    const char *ip = NULL;
    if (pod->status && pod->status->n_podips)
        ip = pod->status->podips[0]->ip;
    if ((!ip || !*ip) && pod->status)
        ip = pod->status->podip;
    cell_str(row, or_str(ip, "<none>"));
    cell_str(row, or_str(pod->spec ? pod->spec->nodename : NULL, "<none>"));
    cell_str(row, or_str(pod->status ? pod->status->nominatednodename : NULL, "<none>"));
    cell_str(row, "<none>"); /* PodSpec has no readinessGates */
}

static void node_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                       int64_t now_ns)
{
    const Coracle__V1__Node *node = (const Coracle__V1__Node *)obj;
    const Coracle__V1__NodeSystemInfo *ni = node->status ? node->status->nodeinfo : NULL;
    char st[64];
    (void)now_ns;
    cols_node_status(st, sizeof(st), node);
    cell_str(row, node->metadata ? node->metadata->name : NULL);
    cell_str(row, st);
    row->cell[row->n++].str = cols_node_roles(node);
    cell_str(row, age);
    cell_str(row, ni ? ni->kubeletversion : NULL);
    cell_str(row, node_address(node, "InternalIP"));
    cell_str(row, node_address(node, "ExternalIP"));
    cell_str(row, or_str(ni ? ni->osimage : NULL, "<unknown>"));
    cell_str(row, or_str(ni ? ni->kernelversion : NULL, "<unknown>"));
    cell_str(row, or_str(ni ? ni->containerruntimeversion : NULL, "<unknown>"));
}

/* strings.TrimSpace (of the ASCII spaces). malloc'd. */
static char *trim_space(const char *m)
{
    if (!m)
        return xstrdup("");
    while (*m == ' ' || *m == '\n' || *m == '\t' || *m == '\r')
        m++;
    size_t n = strlen(m);
    while (n && (m[n - 1] == ' ' || m[n - 1] == '\n' || m[n - 1] == '\t' || m[n - 1] == '\r'))
        n--;
    return xstrndup(m, n);
}

static void event_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                        int64_t now_ns)
{
    const Coracle__V1__Event *e = (const Coracle__V1__Event *)obj;
    char first[32], last[32];
    (void)age;
    if (e->firsttimestamp && e->firsttimestamp->seconds)
        cols_age(first, sizeof(first), e->firsttimestamp, now_ns);
    else
        cols_age(first, sizeof(first), (const Coracle__V1__Time *)e->eventtime, now_ns);
    if (e->lasttimestamp && e->lasttimestamp->seconds)
        cols_age(last, sizeof(last), e->lasttimestamp, now_ns);
    else
        snprintf(last, sizeof(last), "%s", first);
    const Coracle__V1__ObjectReference *io = e->involvedobject;
    char *target = xstrdup(io && io->kind ? io->kind : "");
    for (char *p = target; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (io && io->name && *io->name) {
        char *t = xconcat(target, "/", io->name, NULL);
        free(target);
        target = t;
    }
    const char *comp = e->source && e->source->component && *e->source->component
                           ? e->source->component
                           : or_str(e->reportingcomponent, "");
    cell_str(row, last);
    cell_str(row, e->type);
    cell_str(row, e->reason);
    row->cell[row->n++].str = target;
    cell_str(row, io ? io->fieldpath : NULL);
    if (e->source && e->source->host && *e->source->host)
        row->cell[row->n++].str = xconcat(comp, ", ", e->source->host, NULL);
    else
        cell_str(row, comp);
    row->cell[row->n++].str = trim_space(e->message);
    cell_str(row, first);
    cell_num(row, e->count ? e->count : 1);
    cell_str(row, e->metadata ? e->metadata->name : NULL);
}

static void lease_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                        int64_t now_ns)
{
    const Coracle__V1__Lease *l = (const Coracle__V1__Lease *)obj;
    (void)now_ns;
    cell_str(row, l->metadata ? l->metadata->name : NULL);
    cell_str(row, l->spec ? l->spec->holderidentity : NULL);
    cell_str(row, age);
}

static void namespace_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                            int64_t now_ns)
{
    const Coracle__V1__Namespace *n = (const Coracle__V1__Namespace *)obj;
    (void)now_ns;
    cell_str(row, n->metadata ? n->metadata->name : NULL);
    cell_str(row, n->status ? n->status->phase : NULL);
    cell_str(row, age);
}

static void configmap_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                            int64_t now_ns)
{
    const Coracle__V1__ConfigMap *c = (const Coracle__V1__ConfigMap *)obj;
    (void)now_ns;
    cell_str(row, c->metadata ? c->metadata->name : NULL);
    cell_num(row, (int64_t)(c->n_data + c->n_binarydata));
    cell_str(row, age);
}

static void secret_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                         int64_t now_ns)
{
    const Coracle__V1__Secret *sc = (const Coracle__V1__Secret *)obj;
    (void)now_ns;
    cell_str(row, sc->metadata ? sc->metadata->name : NULL);
    cell_str(row, sc->type);
    cell_num(row, (int64_t)sc->n_data);
    cell_str(row, age);
}

static void serviceaccount_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                                 int64_t now_ns)
{
    const Coracle__V1__ServiceAccount *sa = (const Coracle__V1__ServiceAccount *)obj;
    (void)now_ns;
    cell_str(row, sa->metadata ? sa->metadata->name : NULL);
    cell_num(row, (int64_t)sa->n_secrets);
    cell_str(row, age);
}

/* ------------------------------------------------------- rbac */

/* Role and ClusterRole: name and creation time in RFC 3339, as kubectl prints them. */
static void role_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                       int64_t now_ns)
{
    const Coracle__V1__ObjectMeta *md = kind_meta(obj);
    char at[32] = "";
    (void)age, (void)now_ns;
    if (md && md->creationtimestamp) {
        time_t sec = (time_t)md->creationtimestamp->seconds;
        struct tm tm;
        gmtime_r(&sec, &tm);
        strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    cell_str(row, md ? md->name : NULL);
    cell_str(row, at);
}

/* The subjects of kind kind, ", "-separated (ServiceAccounts as namespace/name). */
static void cell_subjects(struct cols_row *row, Coracle__V1__Subject *const *sv, size_t n,
                          const char *kind)
{
    char *out = xstrdup("");
    for (size_t i = 0; i < n; i++) {
        const Coracle__V1__Subject *su = sv[i];
        if (!su->kind || strcmp(su->kind, kind) != 0)
            continue;
        bool sa = !strcmp(kind, "ServiceAccount");
        char *o = xasprintf("%s%s%s%s%s", out, *out ? ", " : "",
                            sa && su->namespace_ ? su->namespace_ : "", sa ? "/" : "",
                            su->name ? su->name : "");
        free(out);
        out = o;
    }
    cell_str(row, out);
    free(out);
}

_Static_assert(offsetof(Coracle__V1__RoleBinding, roleref) ==
                       offsetof(Coracle__V1__ClusterRoleBinding, roleref) &&
                   offsetof(Coracle__V1__RoleBinding, subjects) ==
                       offsetof(Coracle__V1__ClusterRoleBinding, subjects),
               "binding layout");

/* RoleBinding and ClusterRoleBinding (the same layout: metadata, subjects, roleRef). */
static void rolebinding_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                              int64_t now_ns)
{
    const Coracle__V1__RoleBinding *rb = (const Coracle__V1__RoleBinding *)obj;
    (void)now_ns;
    cell_str(row, rb->metadata ? rb->metadata->name : NULL);
    char *ref = xasprintf("%s/%s", rb->roleref && rb->roleref->kind ? rb->roleref->kind : "",
                          rb->roleref && rb->roleref->name ? rb->roleref->name : "");
    cell_str(row, ref);
    free(ref);
    cell_str(row, age);
    cell_subjects(row, rb->subjects, rb->n_subjects, "User");
    cell_subjects(row, rb->subjects, rb->n_subjects, "Group");
    cell_subjects(row, rb->subjects, rb->n_subjects, "ServiceAccount");
}

/* ------------------------------------------------------- certificates */

static const struct cols_def csr_defs[] = {
    NAME_COL,
    AGE_COL,
    {"SignerName", "string", "", "Requested signer for the request.", 0},
    {"Requestor", "string", "", "Name of the user that created the request.", 0},
    {"RequestedDuration", "string", "", "Requested duration of validity of the issued certificate.",
     0},
    {"Condition", "string", "", "Approved, Denied or Failed, and Issued; else Pending.", 0},
};

/* kubectl's CONDITION: the condition types, "Issued" once signed, else "Pending". */
static void csr_condition(char *buf, size_t n, const Coracle__V1__CertificateSigningRequest *csr)
{
    const Coracle__V1__CertificateSigningRequestStatus *st = csr->status;
    size_t l = 0;
    buf[0] = 0;
    for (size_t i = 0; st && i < st->n_conditions && l + 1 < n; i++)
        l += (size_t)snprintf(buf + l, n - l, "%s%s", l ? "," : "",
                              st->conditions[i]->type ? st->conditions[i]->type : "");
    if (st && st->certificate.len && l + 1 < n)
        l += (size_t)snprintf(buf + l, n - l, "%sIssued", l ? "," : "");
    if (!l)
        snprintf(buf, n, "Pending");
}

static void csr_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                      int64_t now_ns)
{
    const Coracle__V1__CertificateSigningRequest *csr = (const void *)obj;
    const Coracle__V1__CertificateSigningRequestSpec *sp = csr->spec;
    (void)now_ns;
    char dur[32] = "<none>", cond[128];
    if (sp && sp->has_expirationseconds)
        cols_human_duration(dur, sizeof(dur), (int64_t)sp->expirationseconds * 1000000000LL);
    csr_condition(cond, sizeof(cond), csr);
    cell_str(row, csr->metadata ? csr->metadata->name : NULL);
    cell_str(row, age);
    cell_str(row, sp ? sp->signername : NULL);
    cell_str(row, sp ? sp->username : NULL);
    cell_str(row, dur);
    cell_str(row, cond);
}

/* ------------------------------------------------------- workloads */

static int cmp_label(const void *a, const void *b)
{
    const Coracle__V1__ObjectMeta__LabelsEntry *x =
        *(Coracle__V1__ObjectMeta__LabelsEntry *const *)a;
    const Coracle__V1__ObjectMeta__LabelsEntry *y =
        *(Coracle__V1__ObjectMeta__LabelsEntry *const *)b;
    return strcmp(x->key ? x->key : "", y->key ? y->key : "");
}

/* One requirement of a selector's string, and its key to sort by. */
struct req {
    const char *key;
    char *text;
};

static int cmp_req(const void *a, const void *b)
{
    return strcmp(((const struct req *)a)->key, ((const struct req *)b)->key);
}

char *cols_label_selector(const Coracle__V1__LabelSelector *s)
{
    size_t n = s ? s->n_matchlabels + s->n_matchexpressions : 0;
    struct req *r = xcalloc(n + 1, sizeof(*r));
    for (size_t i = 0; s && i < s->n_matchlabels; i++) {
        r[i].key = s->matchlabels[i]->key ? s->matchlabels[i]->key : "";
        r[i].text = xconcat(r[i].key, "=", or_str(s->matchlabels[i]->value, ""), NULL);
    }
    for (size_t i = 0; s && i < s->n_matchexpressions; i++) {
        const Coracle__V1__LabelSelectorRequirement *e = s->matchexpressions[i];
        struct req *q = &r[s->n_matchlabels + i];
        const char *op = or_str(e->operator_, "");
        q->key = or_str(e->key, "");
        if (!strcmp(op, "Exists")) {
            q->text = xstrdup(q->key);
        } else if (!strcmp(op, "DoesNotExist")) {
            q->text = xconcat("!", q->key, NULL);
        } else {
            char **v = xcalloc(e->n_values + 1, sizeof(*v));
            if (e->n_values)
                memcpy(v, e->values, e->n_values * sizeof(*v));
            qsort(v, e->n_values, sizeof(*v), cmp_str);
            struct buf b = {0};
            buf_printf(&b, "%s %s (", q->key, !strcmp(op, "NotIn") ? "notin" : "in");
            for (size_t j = 0; j < e->n_values; j++)
                buf_printf(&b, "%s%s", j ? "," : "", v[j] ? v[j] : "");
            buf_puts(&b, ")");
            free(v);
            q->text = buf_take(&b);
        }
    }
    qsort(r, n, sizeof(*r), cmp_req);
    struct buf b = {0};
    buf_puts(&b, "");
    for (size_t i = 0; i < n; i++) {
        buf_printf(&b, "%s%s", i ? "," : "", r[i].text);
        free(r[i].text);
    }
    free(r);
    return buf_take(&b);
}

/* metav1.FormatLabelSelector: the selector's string, "<none>" if empty. */
static void cell_selector(struct cols_row *row, const Coracle__V1__LabelSelector *s)
{
    char *t = cols_label_selector(s);
    if (!*t) {
        free(t);
        t = xstrdup("<none>");
    }
    row->cell[row->n++].str = t;
}

/* labels.FormatLabels: "a=b,c=d" sorted by key, "<none>" if empty. */
static void cell_labels(struct cols_row *row, Coracle__V1__ObjectMeta__LabelsEntry *const *l,
                        size_t n)
{
    Coracle__V1__ObjectMeta__LabelsEntry **s = xcalloc(n + 1, sizeof(*s));
    if (n)
        memcpy(s, l, n * sizeof(*s));
    qsort(s, n, sizeof(*s), cmp_label);
    struct buf b = {0};
    for (size_t i = 0; i < n; i++)
        buf_printf(&b, "%s%s=%s", i ? "," : "", or_str(s[i]->key, ""), or_str(s[i]->value, ""));
    free(s);
    if (!n)
        buf_puts(&b, "<none>");
    row->cell[row->n++].str = buf_take(&b);
}

/* layoutContainerCells: the template's container names and images, comma-separated. */
static void cell_containers(struct cols_row *row, const Coracle__V1__PodTemplateSpec *t)
{
    const Coracle__V1__PodSpec *sp = t ? t->spec : NULL;
    struct buf names = {0}, images = {0};
    buf_puts(&names, "");
    buf_puts(&images, "");
    for (size_t i = 0; sp && i < sp->n_containers; i++) {
        buf_printf(&names, "%s%s", i ? "," : "", or_str(sp->containers[i]->name, ""));
        buf_printf(&images, "%s%s", i ? "," : "", or_str(sp->containers[i]->image, ""));
    }
    row->cell[row->n++].str = buf_take(&names);
    row->cell[row->n++].str = buf_take(&images);
}

static void deployment_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                             int64_t now_ns)
{
    const Coracle__V1__Deployment *d = (const Coracle__V1__Deployment *)obj;
    const Coracle__V1__DeploymentSpec *sp = d->spec;
    const Coracle__V1__DeploymentStatus *st = d->status;
    char ready[32];
    (void)now_ns;
    snprintf(ready, sizeof(ready), "%d/%d", st ? st->readyreplicas : 0, sp ? sp->replicas : 0);
    cell_str(row, d->metadata ? d->metadata->name : NULL);
    cell_str(row, ready);
    cell_num(row, st ? st->updatedreplicas : 0);
    cell_num(row, st ? st->availablereplicas : 0);
    cell_str(row, age);
    cell_containers(row, sp ? sp->template_ : NULL);
    cell_selector(row, sp ? sp->selector : NULL);
}

static void replicaset_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                             int64_t now_ns)
{
    const Coracle__V1__ReplicaSet *rs = (const Coracle__V1__ReplicaSet *)obj;
    const Coracle__V1__ReplicaSetSpec *sp = rs->spec;
    const Coracle__V1__ReplicaSetStatus *st = rs->status;
    (void)now_ns;
    cell_str(row, rs->metadata ? rs->metadata->name : NULL);
    cell_num(row, sp ? sp->replicas : 0);
    cell_num(row, st ? st->replicas : 0);
    cell_num(row, st ? st->readyreplicas : 0);
    cell_str(row, age);
    cell_containers(row, sp ? sp->template_ : NULL);
    cell_selector(row, sp ? sp->selector : NULL);
}

static void daemonset_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                            int64_t now_ns)
{
    const Coracle__V1__DaemonSet *ds = (const Coracle__V1__DaemonSet *)obj;
    const Coracle__V1__DaemonSetSpec *sp = ds->spec;
    const Coracle__V1__DaemonSetStatus *st = ds->status;
    const Coracle__V1__PodSpec *ps = sp && sp->template_ ? sp->template_->spec : NULL;
    (void)now_ns;
    cell_str(row, ds->metadata ? ds->metadata->name : NULL);
    cell_num(row, st ? st->desirednumberscheduled : 0);
    cell_num(row, st ? st->currentnumberscheduled : 0);
    cell_num(row, st ? st->numberready : 0);
    cell_num(row, st ? st->updatednumberscheduled : 0);
    cell_num(row, st ? st->numberavailable : 0);
    cell_labels(row, ps ? (Coracle__V1__ObjectMeta__LabelsEntry *const *)ps->nodeselector : NULL,
                ps ? ps->n_nodeselector : 0);
    cell_str(row, age);
    cell_containers(row, sp ? sp->template_ : NULL);
    cell_selector(row, sp ? sp->selector : NULL);
}

static bool job_condition(const Coracle__V1__JobStatus *st, const char *type)
{
    for (size_t i = 0; st && i < st->n_conditions; i++)
        if (st->conditions[i]->type && !strcmp(st->conditions[i]->type, type))
            return st->conditions[i]->status && !strcmp(st->conditions[i]->status, "True");
    return false;
}

static void job_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                      int64_t now_ns)
{
    const Coracle__V1__Job *j = (const Coracle__V1__Job *)obj;
    const Coracle__V1__JobSpec *sp = j->spec;
    const Coracle__V1__JobStatus *st = j->status;
    int succeeded = st ? st->succeeded : 0;
    char comp[64], dur[32] = "";
    if (sp && sp->has_completions)
        snprintf(comp, sizeof(comp), "%d/%d", succeeded, sp->completions);
    else if (sp && sp->has_parallelism && sp->parallelism > 1)
        snprintf(comp, sizeof(comp), "%d/1 of %d", succeeded, sp->parallelism);
    else
        snprintf(comp, sizeof(comp), "%d/1", succeeded);
    const Coracle__V1__Time *start = st ? st->starttime : NULL,
                            *end = st ? st->completiontime : NULL;
    if (start)
        cols_human_duration(dur, sizeof(dur),
                            (end ? end->seconds * 1000000000LL + end->nanos : now_ns) -
                                (start->seconds * 1000000000LL + start->nanos));
    const char *status = job_condition(st, "Complete")                   ? "Complete"
                         : job_condition(st, "Failed")                   ? "Failed"
                         : j->metadata && j->metadata->deletiontimestamp ? "Terminating"
                         : job_condition(st, "Suspended")                ? "Suspended"
                         : job_condition(st, "FailureTarget")            ? "FailureTarget"
                                                                         : "Running";
    cell_str(row, j->metadata ? j->metadata->name : NULL);
    cell_str(row, status);
    cell_str(row, comp);
    cell_str(row, dur);
    cell_str(row, age);
    cell_containers(row, sp ? sp->template_ : NULL);
    cell_selector(row, sp ? sp->selector : NULL);
}

static void cronjob_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                          int64_t now_ns)
{
    const Coracle__V1__CronJob *cj = (const Coracle__V1__CronJob *)obj;
    const Coracle__V1__CronJobSpec *sp = cj->spec;
    const Coracle__V1__CronJobStatus *st = cj->status;
    const Coracle__V1__JobSpec *js = sp && sp->jobtemplate ? sp->jobtemplate->spec : NULL;
    char last[32] = "<none>";
    if (st && st->lastscheduletime)
        cols_age(last, sizeof(last), st->lastscheduletime, now_ns);
    cell_str(row, cj->metadata ? cj->metadata->name : NULL);
    cell_str(row, sp ? sp->schedule : NULL);
    cell_str(row, sp && sp->timezone ? sp->timezone : "<none>");
    cell_str(row, !sp || !sp->has_suspend ? "<unset>" : sp->suspend ? "True" : "False");
    cell_num(row, st ? (int64_t)st->n_active : 0);
    cell_str(row, last);
    cell_str(row, age);
    cell_containers(row, js ? js->template_ : NULL);
    cell_selector(row, js ? js->selector : NULL);
}

/* listWithMoreString: at most max items, then " + N more...", "<unset>" if none. */
static void cell_list_more(struct cols_row *row, struct buf *b, size_t count, size_t max)
{
    if (count > max)
        buf_printf(b, " + %zu more...", count - max);
    else if (!count)
        buf_puts(b, "<unset>");
    row->cell[row->n++].str = buf_take(b);
}

/* getServiceExternalIP */
static void cell_external_ip(struct cols_row *row, const Coracle__V1__Service *svc)
{
    const Coracle__V1__ServiceSpec *sp = svc->spec;
    const char *type = sp && sp->type ? sp->type : "";
    if (!strcmp(type, "ExternalName")) {
        cell_str(row, sp->externalname);
        return;
    }
    struct buf b = {0};
    buf_puts(&b, "");
    const Coracle__V1__LoadBalancerStatus *lb = svc->status ? svc->status->loadbalancer : NULL;
    for (size_t i = 0; !strcmp(type, "LoadBalancer") && lb && i < lb->n_ingress; i++) {
        const char *a = lb->ingress[i]->ip && *lb->ingress[i]->ip ? lb->ingress[i]->ip
                                                                  : lb->ingress[i]->hostname;
        if (a && *a)
            buf_printf(&b, "%s%s", b.len ? "," : "", a);
    }
    for (size_t i = 0; sp && i < sp->n_externalips; i++)
        buf_printf(&b, "%s%s", b.len ? "," : "", sp->externalips[i]);
    if (!b.len)
        buf_puts(&b, !strcmp(type, "LoadBalancer") ? "<pending>" : "<none>");
    row->cell[row->n++].str = buf_take(&b);
}

static void service_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                          int64_t now_ns)
{
    const Coracle__V1__Service *svc = (const Coracle__V1__Service *)obj;
    const Coracle__V1__ServiceSpec *sp = svc->spec;
    (void)now_ns;
    cell_str(row, svc->metadata ? svc->metadata->name : NULL);
    cell_str(row, sp ? sp->type : NULL);
    cell_str(row, sp && sp->n_clusterips                  ? sp->clusterips[0]
                  : sp && sp->clusterip && *sp->clusterip ? sp->clusterip
                                                          : "<none>");
    cell_external_ip(row, svc);
    struct buf b = {0};
    buf_puts(&b, "");
    for (size_t i = 0; sp && i < sp->n_ports; i++) {
        const Coracle__V1__ServicePort *p = sp->ports[i];
        buf_printf(&b, "%s%d", i ? "," : "", p->port);
        if (p->nodeport)
            buf_printf(&b, ":%d", p->nodeport);
        buf_printf(&b, "/%s", or_str(p->protocol, ""));
    }
    if (!b.len)
        buf_puts(&b, "<none>");
    row->cell[row->n++].str = buf_take(&b);
    cell_str(row, age);
    cell_labels(row, sp ? (Coracle__V1__ObjectMeta__LabelsEntry *const *)sp->selector : NULL,
                sp ? sp->n_selector : 0);
}

static void endpointslice_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                                int64_t now_ns)
{
    const Coracle__V1__EndpointSlice *es = (const Coracle__V1__EndpointSlice *)obj;
    (void)now_ns;
    cell_str(row, es->metadata ? es->metadata->name : NULL);
    cell_str(row, es->addresstype);
    struct buf b = {0};
    buf_puts(&b, "");
    for (size_t i = 0; i < es->n_ports && i < 3; i++) {
        const Coracle__V1__EndpointPort *p = es->ports[i];
        if (p->has_port)
            buf_printf(&b, "%s%d", i ? "," : "", p->port);
        else
            buf_printf(&b, "%s%s", i ? "," : "", p->name ? p->name : "*");
    }
    cell_list_more(row, &b, es->n_ports, 3);
    b = (struct buf){0};
    buf_puts(&b, "");
    size_t count = 0;
    for (size_t i = 0; i < es->n_endpoints; i++)
        for (size_t j = 0; j < es->endpoints[i]->n_addresses; j++, count++)
            if (count < 3)
                buf_printf(&b, "%s%s", count ? "," : "", es->endpoints[i]->addresses[j]);
    cell_list_more(row, &b, count, 3);
    cell_str(row, age);
}

static void networkpolicy_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                                int64_t now_ns)
{
    const Coracle__V1__NetworkPolicy *np = (const Coracle__V1__NetworkPolicy *)obj;
    (void)now_ns;
    cell_str(row, np->metadata ? np->metadata->name : NULL);
    cell_selector(row, np->spec ? np->spec->podselector : NULL);
    cell_str(row, age);
}

static void other_cells(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                        int64_t now_ns)
{
    const Coracle__V1__ObjectMeta *md = kind_meta(obj);
    (void)now_ns;
    cell_str(row, md ? md->name : NULL);
    cell_str(row, age);
}

/* Each kind's columns and the function that fills its cells (age: the object's). */
static const struct {
    const struct kind *k;
    const struct cols_def *defs;
    size_t n;
    void (*cells)(struct cols_row *row, const ProtobufCMessage *obj, const char *age,
                  int64_t now_ns);
} kind_cols[] = {
    {&kind_pod, pod_defs, ARRAY_SIZE(pod_defs), pod_cells},
    {&kind_node, node_defs, ARRAY_SIZE(node_defs), node_cells},
    {&kind_event, event_defs, ARRAY_SIZE(event_defs), event_cells},
    {&kind_lease, lease_defs, ARRAY_SIZE(lease_defs), lease_cells},
    {&kind_namespace, namespace_defs, ARRAY_SIZE(namespace_defs), namespace_cells},
    {&kind_configmap, configmap_defs, ARRAY_SIZE(configmap_defs), configmap_cells},
    {&kind_secret, secret_defs, ARRAY_SIZE(secret_defs), secret_cells},
    {&kind_serviceaccount, serviceaccount_defs, ARRAY_SIZE(serviceaccount_defs),
     serviceaccount_cells},
    {&kind_deployment, deployment_defs, ARRAY_SIZE(deployment_defs), deployment_cells},
    {&kind_replicaset, replicaset_defs, ARRAY_SIZE(replicaset_defs), replicaset_cells},
    {&kind_daemonset, daemonset_defs, ARRAY_SIZE(daemonset_defs), daemonset_cells},
    {&kind_job, job_defs, ARRAY_SIZE(job_defs), job_cells},
    {&kind_cronjob, cronjob_defs, ARRAY_SIZE(cronjob_defs), cronjob_cells},
    {&kind_clusterrolebinding, rolebinding_defs, ARRAY_SIZE(rolebinding_defs), rolebinding_cells},
    {&kind_clusterrole, role_defs, ARRAY_SIZE(role_defs), role_cells},
    {&kind_rolebinding, rolebinding_defs, ARRAY_SIZE(rolebinding_defs), rolebinding_cells},
    {&kind_role, role_defs, ARRAY_SIZE(role_defs), role_cells},
    {&kind_csr, csr_defs, ARRAY_SIZE(csr_defs), csr_cells},
    {&kind_service, service_defs, ARRAY_SIZE(service_defs), service_cells},
    {&kind_endpointslice, endpointslice_defs, ARRAY_SIZE(endpointslice_defs), endpointslice_cells},
    {&kind_networkpolicy, networkpolicy_defs, ARRAY_SIZE(networkpolicy_defs), networkpolicy_cells},
    {NULL, other_defs, ARRAY_SIZE(other_defs), other_cells},
};

static size_t kind_cols_index(const struct kind *k)
{
    size_t i = 0;
    while (kind_cols[i].k && kind_cols[i].k != k)
        i++;
    return i;
}

const struct cols_def *cols_defs(const struct kind *k, size_t *n)
{
    size_t i = kind_cols_index(k);
    *n = kind_cols[i].n;
    return kind_cols[i].defs;
}

void cols_row(const struct kind *k, const ProtobufCMessage *obj, int64_t now_ns,
              struct cols_row *row)
{
    const Coracle__V1__ObjectMeta *md = kind_meta(obj);
    char age[32];
    size_t i = kind_cols_index(k);
    memset(row, 0, sizeof(*row));
    cols_age(age, sizeof(age), md ? md->creationtimestamp : NULL, now_ns);
    kind_cols[i].cells(row, obj, age, now_ns);
    if (row->n != kind_cols[i].n)
        fatal("columns: %zu cells for %zu columns of %s", row->n, kind_cols[i].n,
              k ? k->kind : "?"); /* a bug */
}

void cols_row_free(struct cols_row *row)
{
    for (size_t i = 0; i < row->n; i++)
        free(row->cell[i].str);
    row->n = 0;
}

/* ------------------------------------------------------------ the Table */

/* metav1.Time as JSON: RFC 3339 in UTC, whole seconds; null when unset. */
static void write_time(FILE *f, const Coracle__V1__Time *t)
{
    if (!t) {
        fputs("null", f);
        return;
    }
    char buf[64];
    time_t sec = (time_t)t->seconds;
    struct tm tm;
    gmtime_r(&sec, &tm);
    strftime(buf, sizeof(buf), "\"%Y-%m-%dT%H:%M:%SZ\"", &tm);
    fputs(buf, f);
}

/* ,"key": before a member; the first member of an object has no comma. */
static void write_key(FILE *f, const char *key, int *n)
{
    fputs((*n)++ ? ",\"" : "\"", f);
    fputs(key, f);
    fputs("\":", f);
}

/* A string member, left out when empty (omitempty). */
static void write_str_member(FILE *f, const char *key, const char *v, int *n)
{
    if (!v || !*v)
        return;
    write_key(f, key, n);
    json_write_str(f, v);
}

static int cmp_entry(const void *a, const void *b)
{
    const Coracle__V1__ObjectMeta__LabelsEntry *x =
        *(Coracle__V1__ObjectMeta__LabelsEntry *const *)a;
    const Coracle__V1__ObjectMeta__LabelsEntry *y =
        *(Coracle__V1__ObjectMeta__LabelsEntry *const *)b;
    return strcmp(x->key ? x->key : "", y->key ? y->key : "");
}

/* A map<string,string> member with sorted keys (as Go writes maps); left out if empty.
 * Labels and annotations entries have the same layout. */
static void write_map_member(FILE *f, const char *key, Coracle__V1__ObjectMeta__LabelsEntry **v,
                             size_t nv, int *n)
{
    if (!nv)
        return;
    Coracle__V1__ObjectMeta__LabelsEntry **s = xmemdup(v, nv * sizeof(*v));
    qsort(s, nv, sizeof(*s), cmp_entry);
    write_key(f, key, n);
    for (size_t i = 0; i < nv; i++) {
        fputs(i ? "," : "{", f);
        json_write_str(f, s[i]->key ? s[i]->key : "");
        fputc(':', f);
        json_write_str(f, s[i]->value ? s[i]->value : "");
    }
    fputc('}', f);
    free(s);
}

static void write_owner(FILE *f, const Coracle__V1__OwnerReference *o)
{
    fputs("{\"apiVersion\":", f);
    json_write_str(f, o->apiversion ? o->apiversion : "");
    fputs(",\"kind\":", f);
    json_write_str(f, o->kind ? o->kind : "");
    fputs(",\"name\":", f);
    json_write_str(f, o->name ? o->name : "");
    fputs(",\"uid\":", f);
    json_write_str(f, o->uid ? o->uid : "");
    if (o->has_controller)
        fprintf(f, ",\"controller\":%s", o->controller ? "true" : "false");
    if (o->has_blockownerdeletion)
        fprintf(f, ",\"blockOwnerDeletion\":%s", o->blockownerdeletion ? "true" : "false");
    fputc('}', f);
}

/* ObjectMeta as JSON, members in Kubernetes' order, empty ones left out. */
static void write_meta(FILE *f, const Coracle__V1__ObjectMeta *md)
{
    int n = 0;
    fputc('{', f);
    if (!md) {
        fputs("\"creationTimestamp\":null}", f);
        return;
    }
    write_str_member(f, "name", md->name, &n);
    write_str_member(f, "generateName", md->generatename, &n);
    write_str_member(f, "namespace", md->namespace_, &n);
    write_str_member(f, "selfLink", md->selflink, &n);
    write_str_member(f, "uid", md->uid, &n);
    write_str_member(f, "resourceVersion", md->resourceversion, &n);
    if (md->has_generation && md->generation) {
        write_key(f, "generation", &n);
        fprintf(f, "%" PRId64, md->generation);
    }
    write_key(f, "creationTimestamp", &n);
    write_time(f, md->creationtimestamp);
    if (md->deletiontimestamp) {
        write_key(f, "deletionTimestamp", &n);
        write_time(f, md->deletiontimestamp);
    }
    if (md->has_deletiongraceperiodseconds) {
        write_key(f, "deletionGracePeriodSeconds", &n);
        fprintf(f, "%" PRId64, md->deletiongraceperiodseconds);
    }
    write_map_member(f, "labels", md->labels, md->n_labels, &n);
    write_map_member(f, "annotations", (Coracle__V1__ObjectMeta__LabelsEntry **)md->annotations,
                     md->n_annotations, &n);
    if (md->n_ownerreferences) {
        write_key(f, "ownerReferences", &n);
        for (size_t i = 0; i < md->n_ownerreferences; i++) {
            fputs(i ? "," : "[", f);
            write_owner(f, md->ownerreferences[i]);
        }
        fputc(']', f);
    }
    if (md->n_finalizers) {
        write_key(f, "finalizers", &n);
        for (size_t i = 0; i < md->n_finalizers; i++) {
            fputs(i ? "," : "[", f);
            json_write_str(f, md->finalizers[i] ? md->finalizers[i] : "");
        }
        fputc(']', f);
    }
    fputc('}', f);
}

static void write_defs(FILE *f, const struct kind *k)
{
    size_t n;
    const struct cols_def *d = cols_defs(k, &n);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ",{\"name\":" : "[{\"name\":", f);
        json_write_str(f, d[i].name);
        fputs(",\"type\":", f);
        json_write_str(f, d[i].type);
        fputs(",\"format\":", f);
        json_write_str(f, d[i].format);
        fputs(",\"description\":", f);
        json_write_str(f, d[i].description);
        fprintf(f, ",\"priority\":%d}", d[i].priority);
    }
    fputc(']', f);
}

/* printPod marks a pod that ran to its end: clients may hide such rows. */
static void write_conditions(FILE *f, const struct kind *k, const ProtobufCMessage *obj)
{
    if (k != &kind_pod)
        return;
    const Coracle__V1__PodStatus *st = ((const Coracle__V1__Pod *)obj)->status;
    const char *phase = st && st->phase ? st->phase : "";
    const char *msg = !strcmp(phase, "Succeeded") ? "The pod has completed successfully."
                      : !strcmp(phase, "Failed")  ? "The pod failed."
                                                  : NULL;
    if (!msg)
        return;
    fprintf(f,
            ",\"conditions\":[{\"type\":\"Completed\",\"status\":\"True\",\"reason\":\"%s\","
            "\"message\":\"%s\"}]",
            phase, msg);
}

static void write_row(FILE *f, const struct kind *k, const ProtobufCMessage *obj,
                      const struct cols_table_opts *o)
{
    struct cols_row row;
    cols_row(k, obj, o->now_ns, &row);
    fputs("{\"cells\":[", f);
    for (size_t i = 0; i < row.n; i++) {
        if (i)
            fputc(',', f);
        if (row.cell[i].str)
            json_write_str(f, row.cell[i].str);
        else
            fprintf(f, "%" PRId64, row.cell[i].num);
    }
    fputc(']', f);
    cols_row_free(&row);
    write_conditions(f, k, obj);
    fputs(",\"object\":", f);
    switch (o->include) {
    case COLS_INCLUDE_METADATA:
        fputs("{\"kind\":\"PartialObjectMetadata\",\"apiVersion\":\"meta.k8s.io/v1\","
              "\"metadata\":",
              f);
        write_meta(f, kind_meta(obj));
        fputc('}', f);
        break;
    case COLS_INCLUDE_NONE:
        fputs("null", f);
        break;
    case COLS_INCLUDE_OBJECT:
        o->object_fn(f, k, obj, o->object_arg);
        break;
    }
    fputc('}', f);
}

static void write_table(FILE *f, const struct kind *k, ProtobufCMessage *const *objs, size_t n,
                        const struct cols_table_opts *o)
{
    int nm = 0;
    fputs("{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/v1\",\"metadata\":{", f);
    write_str_member(f, "resourceVersion", o->resource_version, &nm);
    write_str_member(f, "continue", o->continue_token, &nm);
    if (o->remaining_item_count > 0) {
        write_key(f, "remainingItemCount", &nm);
        fprintf(f, "%" PRId64, o->remaining_item_count);
    }
    fputs("},\"columnDefinitions\":", f);
    if (o->no_headers)
        fputs("null", f);
    else
        write_defs(f, k);
    fputs(",\"rows\":[", f);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        write_row(f, k, objs[i], o);
    }
    fputs("]}", f);
}

char *cols_table(const struct kind *k, ProtobufCMessage *const *objs, size_t n,
                 const struct cols_table_opts *o, size_t *len)
{
    char *buf = NULL;
    size_t sz = 0;
    FILE *f = open_memstream(&buf, &sz);
    if (!f)
        fatal("open_memstream failed");
    write_table(f, k, objs, n, o);
    if (fclose(f) != 0)
        fatal("writing a Table failed");
    if (len)
        *len = sz;
    return buf;
}

char *cols_table_one(const struct kind *k, const ProtobufCMessage *obj,
                     const struct cols_table_opts *o, size_t *len)
{
    struct cols_table_opts one = *o;
    const Coracle__V1__ObjectMeta *md = kind_meta(obj);
    ProtobufCMessage *objs[1] = {(ProtobufCMessage *)obj};
    one.resource_version = md ? md->resourceversion : NULL;
    one.continue_token = NULL;
    one.remaining_item_count = 0;
    return cols_table(k, objs, 1, &one, len);
}
