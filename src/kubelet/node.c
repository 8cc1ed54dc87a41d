/*
 * node: the kubelet's Node and its heartbeat. Registers the Node (capacity
 * and allocatable from the machine, pods 110, the well-known labels,
 * addresses, nodeInfo, daemonEndpoints, the images of the local store,
 * conditions with Ready=True KubeletReady), computes
 * its status every node-status-update-period and posts it when it differs
 * from the apiserver's (heartbeat times aside: someone else, the node
 * lifecycle, may have changed it) or node-status-report-frequency has
 * passed, as Kubernetes' kubelet does since the Lease carries the
 * heartbeat; and renews the Lease kube-node-lease/<node> every 10 s
 * (leaseDurationSeconds 40), which is what the apiserver's node lifecycle
 * watches. All on timers. An unchanged status is not written: each write
 * is a durable commit, the idle cluster's largest writer after the Lease.
 *
 * A flaky uplink: as Kubernetes' kubelet, periods carry up to 4 % of
 * jitter (nodes that came up together do not renew in step), and a failed
 * registration, renewal or status update is retried after a back-off
 * (100 ms doubling to 7 s, jittered) instead of a whole period later.
 * The first renewal that succeeds after failures also checks the Node's
 * status at once: the node lifecycle has likely marked it Unknown while
 * the link was down, and Ready should not wait for the next period.
 */
#include "config.h"
#include "klet.h"
#include "util.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#define LEASE_NS "kube-node-lease"
#define LEASE_RENEW_S 10
#define LEASE_DURATION_S 40
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 7000

int64_t klet_backoff_ms(int fails, int64_t min_ms, int64_t max_ms)
{
    int64_t d = min_ms;
    for (int i = 1; i < fails && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    return d - random() % (d / 5 + 1); /* 80-100 %: never above the cap */
}

static void timer_in_ms(struct event *ev, int64_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* period plus up to 4 % (Kubernetes' wait.JitterUntil with factor 0.04) */
static int64_t jittered_ms(int64_t period_s)
{
    return period_s * 1000 + random() % (period_s * 40 + 1);
}

int64_t klet_node_mem_bytes(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char key[64];
    long long kb = 0, v;
    while (fscanf(f, "%63s %lld kB\n", key, &v) == 2) {
        if (!strcmp(key, "MemTotal:")) {
            kb = v;
            break;
        }
    }
    fclose(f);
    return kb * 1024;
}

int klet_node_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int64_t klet_node_disk_bytes(const char *path)
{
    struct statvfs sv;
    if (statvfs(path, &sv) < 0)
        return 0;
    return (int64_t)sv.f_blocks * sv.f_frsize;
}

static char *read_line(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return xstrdup("");
    char buf[512] = "";
    if (!fgets(buf, sizeof buf, f))
        buf[0] = 0;
    fclose(f);
    buf[strcspn(buf, "\n")] = 0;
    return xstrdup(buf);
}

static char *os_image(void)
{
    FILE *f = fopen("/etc/os-release", "r");
    char line[512];
    char *r = NULL;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "PRETTY_NAME=", 12))
            continue;
        char *v = line + 12;
        v[strcspn(v, "\n")] = 0;
        if (*v == '"') {
            v++;
            char *q = strrchr(v, '"');
            if (q)
                *q = 0;
        }
        r = xstrdup(v);
        break;
    }
    if (f)
        fclose(f);
    return r ? r : xstrdup("Linux");
}

static char *runtime_version(const struct klet *k)
{
    char *argv[] = {k->cfg.runtime, "--version", NULL};
    char *out = NULL;
    klet_proc_run(argv, &out);
    char ver[64] = "unknown";
    if (out)
        sscanf(out, "runc version %63s", ver);
    free(out);
    ver[strcspn(ver, "+~-")] = 0; /* Debian's "1.1.5+ds1" is runc 1.1.5 */
    return xasprintf("runc://%s", ver);
}

static const char *go_arch(void)
{
    struct utsname u;
    uname(&u);
    if (!strcmp(u.machine, "x86_64"))
        return "amd64";
    if (!strcmp(u.machine, "aarch64"))
        return "arm64";
    if (!strncmp(u.machine, "arm", 3))
        return "arm";
    return "unknown";
}

/* ------------------------------------------------------------------ the Node object */

typedef struct {
    char *key, *value;
} kv_t;

static Coracle__V1__Node *node_build(struct klet *k)
{
    /* One big allocation set freed by node_free(); strings are malloc'd. */
    Coracle__V1__Node *n = xcalloc(1, sizeof *n);
    coracle__v1__node__init(n);
    n->metadata = xcalloc(1, sizeof *n->metadata);
    coracle__v1__object_meta__init(n->metadata);
    n->metadata->name = xstrdup(k->cfg.node_name);
    const char *arch = go_arch();
    kv_t labels[] = {
        {"beta.kubernetes.io/arch", (char *)arch},
        {"beta.kubernetes.io/os", "linux"},
        {"kubernetes.io/arch", (char *)arch},
        {"kubernetes.io/hostname", k->cfg.node_name},
        {"kubernetes.io/os", "linux"},
    };
    n->metadata->n_labels = ARRAY_SIZE(labels);
    n->metadata->labels = xcalloc(ARRAY_SIZE(labels), sizeof *n->metadata->labels);
    for (size_t i = 0; i < ARRAY_SIZE(labels); i++) {
        Coracle__V1__ObjectMeta__LabelsEntry *e = xcalloc(1, sizeof *e);
        coracle__v1__object_meta__labels_entry__init(e);
        e->key = xstrdup(labels[i].key);
        e->value = xstrdup(labels[i].value);
        n->metadata->labels[i] = e;
    }
    n->spec = xcalloc(1, sizeof *n->spec);
    coracle__v1__node_spec__init(n->spec);
    Coracle__V1__NodeStatus *st = n->status = xcalloc(1, sizeof *st);
    coracle__v1__node_status__init(st);

    char cpu[32], mem[32], disk[32];
    snprintf(cpu, sizeof cpu, "%d", klet_node_cpus());
    snprintf(mem, sizeof mem, "%lldKi", (long long)(klet_node_mem_bytes() / 1024));
    snprintf(disk, sizeof disk, "%lldKi",
             (long long)(klet_node_disk_bytes(k->cfg.root_dir) / 1024));
    kv_t res[] = {{"cpu", cpu}, {"ephemeral-storage", disk}, {"memory", mem}, {"pods", "110"}};
    st->n_capacity = st->n_allocatable = ARRAY_SIZE(res);
    st->capacity = xcalloc(ARRAY_SIZE(res), sizeof *st->capacity);
    st->allocatable = xcalloc(ARRAY_SIZE(res), sizeof *st->allocatable);
    for (size_t i = 0; i < ARRAY_SIZE(res); i++) {
        for (int a = 0; a < 2; a++) {
            Coracle__V1__NodeStatus__CapacityEntry *e = xcalloc(1, sizeof *e);
            coracle__v1__node_status__capacity_entry__init(e);
            e->key = xstrdup(res[i].key);
            e->value = xcalloc(1, sizeof *e->value);
            coracle__v1__quantity__init(e->value);
            e->value->string = xstrdup(res[i].value);
            if (a == 0) {
                st->capacity[i] = e;
            } else {
                /* Its own key and value (moved from e), freed by node_free. */
                Coracle__V1__NodeStatus__AllocatableEntry *ae = xcalloc(1, sizeof *ae);
                coracle__v1__node_status__allocatable_entry__init(ae);
                ae->key = e->key;
                ae->value = e->value;
                free(e);
                st->allocatable[i] = ae;
            }
        }
    }
    int64_t now = now_ns();
    struct {
        const char *type, *status, *reason, *msg;
    } conds[] = {
        {"MemoryPressure", "False", "KubeletHasSufficientMemory",
         "kubelet has sufficient memory available"},
        {"DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"},
        {"PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"},
        {"Ready", "True", "KubeletReady", "kubelet is posting ready status"},
    };
    st->n_conditions = ARRAY_SIZE(conds);
    st->conditions = xcalloc(ARRAY_SIZE(conds), sizeof *st->conditions);
    for (size_t i = 0; i < ARRAY_SIZE(conds); i++) {
        Coracle__V1__NodeCondition *c = xcalloc(1, sizeof *c);
        coracle__v1__node_condition__init(c);
        c->type = xstrdup(conds[i].type);
        c->status = xstrdup(conds[i].status);
        c->reason = xstrdup(conds[i].reason);
        c->message = xstrdup(conds[i].msg);
        c->lastheartbeattime = xcalloc(1, sizeof *c->lastheartbeattime);
        coracle__v1__time__init(c->lastheartbeattime);
        c->lastheartbeattime->has_seconds = 1;
        c->lastheartbeattime->seconds = now / 1000000000LL;
        c->lasttransitiontime = xcalloc(1, sizeof *c->lasttransitiontime);
        coracle__v1__time__init(c->lasttransitiontime);
        c->lasttransitiontime->has_seconds = 1;
        c->lasttransitiontime->seconds = k->node.ready_since / 1000000000LL;
        st->conditions[i] = c;
    }
    char hostname[256] = "";
    gethostname(hostname, sizeof hostname - 1);
    kv_t addrs[] = {{"InternalIP", k->host_ip}, {"Hostname", hostname}};
    st->n_addresses = ARRAY_SIZE(addrs);
    st->addresses = xcalloc(ARRAY_SIZE(addrs), sizeof *st->addresses);
    for (size_t i = 0; i < ARRAY_SIZE(addrs); i++) {
        Coracle__V1__NodeAddress *a = xcalloc(1, sizeof *a);
        coracle__v1__node_address__init(a);
        a->type = xstrdup(addrs[i].key);
        a->address = xstrdup(addrs[i].value);
        st->addresses[i] = a;
    }
    /* Go's DaemonEndpoints is a value: Kubernetes always shows it, a Port of 0 too */
    Coracle__V1__NodeDaemonEndpoints *de = st->daemonendpoints = xcalloc(1, sizeof *de);
    coracle__v1__node_daemon_endpoints__init(de);
    de->kubeletendpoint = xcalloc(1, sizeof *de->kubeletendpoint);
    coracle__v1__daemon_endpoint__init(de->kubeletendpoint);
    de->kubeletendpoint->has_port = 1;
    de->kubeletendpoint->port = k->cfg.endpoint_port;
    st->images = klet_img_status(k, &st->n_images);
    Coracle__V1__NodeSystemInfo *ni = st->nodeinfo = xcalloc(1, sizeof *ni);
    coracle__v1__node_system_info__init(ni);
    struct utsname u;
    uname(&u);
    ni->machineid = read_line("/etc/machine-id");
    ni->systemuuid = read_line("/sys/class/dmi/id/product_uuid");
    ni->bootid = read_line("/proc/sys/kernel/random/boot_id");
    ni->kernelversion = xstrdup(u.release);
    ni->osimage = os_image();
    ni->containerruntimeversion = runtime_version(k);
    ni->kubeletversion = xstrdup("v" PACKAGE_VERSION);
    ni->kubeproxyversion = xstrdup("");
    ni->operatingsystem = xstrdup("linux");
    ni->architecture = xstrdup(arch);
    return n;
}

/* Frees what node_build made (the same walk protobuf-c's free_unpacked does). */
static void node_free(Coracle__V1__Node *n)
{
    Coracle__V1__ObjectMeta *m = n->metadata;
    for (size_t i = 0; i < m->n_labels; i++) {
        free(m->labels[i]->key);
        free(m->labels[i]->value);
        free(m->labels[i]);
    }
    free(m->labels);
    free(m->name);
    free(m);
    free(n->spec);
    Coracle__V1__NodeStatus *st = n->status;
    for (size_t i = 0; i < st->n_capacity; i++) {
        free(st->capacity[i]->key);
        free(st->capacity[i]->value->string);
        free(st->capacity[i]->value);
        free(st->capacity[i]);
        free(st->allocatable[i]->key);
        free(st->allocatable[i]->value->string);
        free(st->allocatable[i]->value);
        free(st->allocatable[i]);
    }
    free(st->capacity);
    free(st->allocatable);
    for (size_t i = 0; i < st->n_conditions; i++) {
        Coracle__V1__NodeCondition *c = st->conditions[i];
        free(c->type);
        free(c->status);
        free(c->reason);
        free(c->message);
        free(c->lastheartbeattime);
        free(c->lasttransitiontime);
        free(c);
    }
    free(st->conditions);
    for (size_t i = 0; i < st->n_addresses; i++) {
        free(st->addresses[i]->type);
        free(st->addresses[i]->address);
        free(st->addresses[i]);
    }
    free(st->addresses);
    free(st->daemonendpoints->kubeletendpoint);
    free(st->daemonendpoints);
    klet_img_status_free(st->images, st->n_images);
    Coracle__V1__NodeSystemInfo *ni = st->nodeinfo;
    free(ni->machineid);
    free(ni->systemuuid);
    free(ni->bootid);
    free(ni->kernelversion);
    free(ni->osimage);
    free(ni->containerruntimeversion);
    free(ni->kubeletversion);
    free(ni->kubeproxyversion);
    free(ni->operatingsystem);
    free(ni->architecture);
    free(ni);
    free(st);
    free(n);
}

static void status_timer(evutil_socket_t fd, short what, void *arg);

static void node_status_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct klet *k = arg;
    k->node.status_busy = false;
    if (code == 0) {
        k->node.status_fails = 0;
        return;
    }
    log_warn("node %s: UpdateStatus: %s", k->cfg.node_name, message);
    k->node.status_posted = 0; /* post again, after a back-off rather than a period */
    timer_in_ms(k->node.status_ev,
                klet_backoff_ms(++k->node.status_fails, RETRY_MIN_MS, RETRY_MAX_MS));
}

/* The status as compared for a change: packed, heartbeat times left out. Caller frees. */
static uint8_t *status_key(Coracle__V1__NodeStatus *st, size_t *len)
{
    int64_t saved[16];
    size_t n = st->n_conditions < 16 ? st->n_conditions : 16;
    for (size_t i = 0; i < n; i++)
        if (st->conditions[i]->lastheartbeattime) {
            saved[i] = st->conditions[i]->lastheartbeattime->seconds;
            st->conditions[i]->lastheartbeattime->seconds = 0;
        }
    *len = protobuf_c_message_get_packed_size(&st->base);
    uint8_t *b = xmalloc(*len ? *len : 1);
    protobuf_c_message_pack(&st->base, b);
    for (size_t i = 0; i < n; i++)
        if (st->conditions[i]->lastheartbeattime)
            st->conditions[i]->lastheartbeattime->seconds = saved[i];
    return b;
}

/* Whether the apiserver's Node status is n's, heartbeat times aside. */
static bool status_same(const struct klet *k, Coracle__V1__Node *n)
{
    Coracle__V1__Node *s = k->node.server;
    if (!s || !s->status || !n->status)
        return false;
    size_t la, lb;
    uint8_t *a = status_key(s->status, &la), *b = status_key(n->status, &lb);
    bool same = la == lb && memcmp(a, b, la) == 0;
    free(a);
    free(b);
    return same;
}

static void node_got(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct klet *k = arg;
    if (k->node.server)
        coracle__v1__node__free_unpacked(k->node.server, NULL);
    k->node.server = coracle__v1__node__unpack(NULL, len, msg);
}

/* After the Get: UpdateStatus if the status changed or the report is due. */
static void node_get_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct klet *k = arg;
    Coracle__V1__Node *n = node_build(k);
    int64_t now = now_ns();
    if (code == 0 && k->node.status_posted &&
        now - k->node.status_posted < k->cfg.node_status_report * 1000000000LL &&
        status_same(k, n)) {
        k->node.status_busy = false;
    } else {
        k->node.status_posted = now;
        gcl_call(k->api, "/coracle.v1.Nodes/UpdateStatus", &n->base, NULL, node_status_done, k,
                 10000);
    }
    node_free(n);
}

static void node_create_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct klet *k = arg;
    if (code == 0) {
        log_info("node %s registered", k->cfg.node_name);
        k->node.registered = true;
        k->node.status_posted = now_ns();
        k->node.status_fails = 0;
    } else if (code == 6 /* ALREADY_EXISTS */) {
        log_info("node %s already registered; updating its status", k->cfg.node_name);
        k->node.registered = true;
        Coracle__V1__Node *n = node_build(k);
        k->node.status_busy = true;
        k->node.status_posted = now_ns();
        gcl_call(k->api, "/coracle.v1.Nodes/UpdateStatus", &n->base, NULL, node_status_done, k,
                 10000);
        node_free(n);
    } else {
        int64_t ms = klet_backoff_ms(++k->node.status_fails, RETRY_MIN_MS, RETRY_MAX_MS);
        log_warn("node %s: register: %s (retrying in %lld ms)", k->cfg.node_name, message,
                 (long long)ms);
        timer_in_ms(k->node.status_ev, ms);
    }
}

static void status_timer(evutil_socket_t fd, short what, void *arg)
{
    struct klet *k = arg;
    Coracle__V1__Node *n = node_build(k);
    if (!k->node.registered) {
        gcl_call(k->api, "/coracle.v1.Nodes/Create", &n->base, NULL, node_create_done, k, 10000);
    } else {
        if (!k->node.status_busy) {
            Coracle__V1__GetRequest req = CORACLE__V1__GET_REQUEST__INIT;
            req.name = k->cfg.node_name;
            k->node.status_busy = true;
            gcl_call(k->api, "/coracle.v1.Nodes/Get", &req.base, node_got, node_get_done, k, 10000);
        }
        timer_in_ms(k->node.status_ev, jittered_ms(k->cfg.node_status_period));
    }
    node_free(n);
    if (!k->node.registered) /* the create callback schedules the next try or the period */
        timer_in_ms(k->node.status_ev, jittered_ms(k->cfg.node_status_period));
}

/* ------------------------------------------------------------------ the Lease */

static void lease_set(struct klet_node *n, Coracle__V1__Lease *l)
{
    if (n->lease)
        coracle__v1__lease__free_unpacked(n->lease, NULL);
    n->lease = l;
}

static void lease_got(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct klet *k = arg;
    lease_set(&k->node, coracle__v1__lease__unpack(NULL, len, msg));
}

enum { LEASE_GET, LEASE_UPDATE, LEASE_CREATE }; /* struct klet_node's lease_step */
static void lease_call(struct klet *k, int step);

/* The next renewal: a period away after a success, a back-off away after a failure. */
static void lease_next(struct klet *k, bool ok)
{
    struct klet_node *n = &k->node;
    if (ok && n->lease_fails > 0 && n->registered) {
        log_info("lease %s/%s renewed after %d failures; checking the node status", LEASE_NS,
                 k->cfg.node_name, n->lease_fails);
        timer_in_ms(n->status_ev, 0);
    }
    n->lease_fails = ok ? 0 : n->lease_fails + 1;
    timer_in_ms(n->lease_ev, ok ? jittered_ms(LEASE_RENEW_S)
                                : klet_backoff_ms(n->lease_fails, RETRY_MIN_MS, RETRY_MAX_MS));
}

static void lease_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct klet *k = arg;
    struct klet_node *n = &k->node;
    int step = n->lease_step;
    n->lease_busy = false;
    if (code == 0) {
        if (step == LEASE_GET)
            lease_call(k, LEASE_UPDATE);
        else
            lease_next(k, true);
        return;
    }
    if (step == LEASE_GET && code == 5 /* NOT_FOUND */) {
        lease_set(n, NULL);
        lease_call(k, LEASE_CREATE);
        return;
    }
    if (n->lease_fails == 0) /* once per outage, not at each retry */
        log_warn("lease %s/%s: %s (retrying with back-off)", LEASE_NS, k->cfg.node_name, message);
    lease_set(n, NULL); /* Get again next time (conflict, or the apiserver was away) */
    lease_next(k, false);
}

static void lease_call(struct klet *k, int step)
{
    struct klet_node *n = &k->node;
    if (n->lease_busy)
        return;
    int64_t now = now_ns();
    Coracle__V1__MicroTime rt = CORACLE__V1__MICRO_TIME__INIT;
    rt.has_seconds = rt.has_nanos = 1;
    rt.seconds = now / 1000000000LL;
    rt.nanos = (now % 1000000000LL) / 1000 * 1000;
    n->lease_busy = true;
    n->lease_step = step;
    if (step == LEASE_UPDATE && n->lease && n->lease->spec) {
        Coracle__V1__Lease *l = n->lease;
        Coracle__V1__MicroTime *old = l->spec->renewtime;
        char *oldh = l->spec->holderidentity;
        l->spec->renewtime = &rt;
        l->spec->holderidentity = k->cfg.node_name;
        l->spec->has_leasedurationseconds = 1;
        l->spec->leasedurationseconds = LEASE_DURATION_S;
        gcl_call(k->api, "/coracle.v1.Leases/Update", &l->base, lease_got, lease_done, k, 10000);
        l->spec->renewtime = old;
        l->spec->holderidentity = oldh;
    } else if (step == LEASE_CREATE) {
        Coracle__V1__ObjectMeta meta = CORACLE__V1__OBJECT_META__INIT;
        meta.name = k->cfg.node_name;
        meta.namespace_ = LEASE_NS;
        Coracle__V1__LeaseSpec spec = CORACLE__V1__LEASE_SPEC__INIT;
        spec.holderidentity = k->cfg.node_name;
        spec.has_leasedurationseconds = 1;
        spec.leasedurationseconds = LEASE_DURATION_S;
        spec.renewtime = &rt;
        spec.acquiretime = &rt;
        Coracle__V1__Lease l = CORACLE__V1__LEASE__INIT;
        l.metadata = &meta;
        l.spec = &spec;
        gcl_call(k->api, "/coracle.v1.Leases/Create", &l.base, lease_got, lease_done, k, 10000);
    } else {
        Coracle__V1__GetRequest req = CORACLE__V1__GET_REQUEST__INIT;
        req.namespace_ = LEASE_NS;
        req.name = k->cfg.node_name;
        gcl_call(k->api, "/coracle.v1.Leases/Get", &req.base, lease_got, lease_done, k, 10000);
    }
}

static void lease_renew(struct klet *k)
{
    lease_call(k, k->node.lease ? LEASE_UPDATE : LEASE_GET);
}

static void lease_timer(evutil_socket_t fd, short what, void *arg)
{
    lease_renew(arg);
}

void klet_node_start(struct klet *k)
{
    struct klet_node *n = &k->node;
    n->ready_since = now_ns();
    n->status_ev = evtimer_new(k->base, status_timer, k);
    struct timeval zero = {0, 0};
    event_add(n->status_ev, &zero);
    n->lease_ev = evtimer_new(k->base, lease_timer, k); /* lease_next arms it */
    lease_renew(k);
}
