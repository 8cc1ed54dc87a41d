/*
 * leader: leader election through a Lease. See leader.h.
 *
 * One try is client-go's tryAcquireOrRenew: Get the Lease (Create it if
 * missing), note when its record last changed, and Update it (holder = us,
 * renewTime = now) unless another holder's record is still fresh by our
 * clock. A leader whose last write is fresh skips the Get and updates the
 * Lease it wrote (the resourceVersion decides if that still stands). One
 * call is open at a time; a one-shot timer starts the next try, and while
 * leading a second timer is the renew deadline: armed when a renewal falls
 * due, disarmed when one succeeds (so a process that was stopped for a
 * while gets its chance to renew on waking, as client-go's would).
 *
 * The decision parts (observe, lease_valid, next_spec) touch no loop or
 * connection, so t/unit/test_leader.c drives them with made-up clocks.
 */
#include "config.h"

#include "leader.h"
#include "grpc.h"
#include "pb.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coracle.pb-c.h"

/* client-go's JitterFactor for the acquire loop: 1 to 2.2 retry periods */
#define LEADER_JITTER 1.2

enum leader_step { STEP_NONE, STEP_GET, STEP_CREATE, STEP_UPDATE };

struct leader {
    struct event_base *base;
    gcl_t *g;
    char *ns, *name, *identity, *component;
    char *desc; /* "ns/name" for the logs */
    int lease_duration_ms, renew_deadline_ms, retry_period_ms;
    void (*on_started)(void *arg);
    void (*on_stopped)(void *arg);
    void *arg;

    struct leader_io io;       /* io.call NULL: over g */
    Coracle__V1__Lease *lease; /* the last read or written, or NULL: Get first */
    /* the record last observed and when it changed, by our monotonic clock */
    uint8_t *obs_raw;
    size_t obs_len;
    char *obs_holder;
    int obs_duration_s;
    int64_t obs_mono;

    bool started, leading, done; /* done: stopped or released, tries no more */
    void *call;                  /* a gcl_call_t, or io.call's handle */
    enum leader_step step;       /* of the open call; STEP_NONE: none, or cancelled */
    bool call_ended;             /* its done callback ran (gcl may end a call at once) */
    struct event *try_ev;
    struct event *deadline_ev;
};

/* ------------------------------------------------------------ the decision */

/*
 * Notes the record read or written at mono time now: the observed time
 * moves only when the record differs from the one seen before (client-go
 * compares the raw record). Returns true if it changed.
 */
static bool observe(leader_t *l, const Coracle__V1__LeaseSpec *spec, int64_t now)
{
    Coracle__V1__LeaseSpec empty = CORACLE__V1__LEASE_SPEC__INIT;
    if (!spec)
        spec = &empty;
    size_t len;
    uint8_t *raw = pb_encode(&spec->base, &len);
    if (l->obs_raw && len == l->obs_len && !memcmp(raw, l->obs_raw, len)) {
        free(raw);
        return false;
    }
    free(l->obs_raw);
    l->obs_raw = raw;
    l->obs_len = len;
    const char *h = spec->holderidentity ? spec->holderidentity : "";
    if (!l->obs_holder || strcmp(l->obs_holder, h)) {
        if (*h && strcmp(h, l->identity))
            log_info("lease %s is held by %s", l->desc, h);
        free(l->obs_holder);
        l->obs_holder = xstrdup(h);
    }
    l->obs_duration_s = spec->has_leasedurationseconds ? spec->leasedurationseconds : 0;
    l->obs_mono = now;
    return true;
}

/* The observed record still binds others: seen less than its duration ago. */
static bool lease_valid(const leader_t *l, int64_t now)
{
    return l->obs_raw && l->obs_mono + (int64_t)l->obs_duration_s * 1000000000 > now;
}

static bool observed_is_me(const leader_t *l)
{
    return l->obs_holder && !strcmp(l->obs_holder, l->identity);
}

/* May this candidate write itself in now? No while another holder's record is fresh. */
static bool may_take(const leader_t *l, int64_t now)
{
    return !(l->obs_holder && *l->obs_holder && lease_valid(l, now) && !observed_is_me(l));
}

static void micro_time(Coracle__V1__MicroTime *t, int64_t wall_ns)
{
    coracle__v1__micro_time__init(t);
    t->has_seconds = t->has_nanos = 1;
    t->seconds = wall_ns / 1000000000;
    t->nanos = (int32_t)(wall_ns % 1000000000 / 1000 * 1000); /* microseconds, as MicroTime */
}

/*
 * The record this candidate writes over old (NULL: none yet) at wall time
 * wall_ns: itself as holder, renewed now; acquireTime and leaseTransitions
 * kept if it held the Lease already, else acquired now and one transition
 * more. *now_t is the storage for the times.
 */
static void next_spec(const leader_t *l, const Coracle__V1__LeaseSpec *old, int64_t wall_ns,
                      Coracle__V1__LeaseSpec *out, Coracle__V1__MicroTime *now_t)
{
    coracle__v1__lease_spec__init(out);
    micro_time(now_t, wall_ns);
    out->holderidentity = l->identity;
    out->has_leasedurationseconds = 1;
    out->leasedurationseconds = l->lease_duration_ms / 1000;
    out->renewtime = now_t;
    out->acquiretime = now_t;
    out->has_leasetransitions = 1;
    if (!old)
        return;
    int32_t tr = old->has_leasetransitions ? old->leasetransitions : 0;
    bool mine = old->holderidentity && !strcmp(old->holderidentity, l->identity);
    if (mine && old->acquiretime)
        out->acquiretime = old->acquiretime;
    out->leasetransitions = mine ? tr : tr + 1;
}

/* ------------------------------------------------------------ the loop */

static void schedule_try(leader_t *l, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(l->try_ev, &tv);
}

/* The next try: a retry period while leading, 1 to 2.2 of them while not. */
static void schedule_next(leader_t *l)
{
    int ms = l->retry_period_ms;
    if (!l->leading)
        ms += (int)((double)ms * LEADER_JITTER * ((double)random() / RAND_MAX));
    schedule_try(l, ms);
}

static void lease_set(leader_t *l, Coracle__V1__Lease *lease)
{
    if (l->lease)
        coracle__v1__lease__free_unpacked(l->lease, NULL);
    l->lease = lease;
}

/* The "<identity> <what>" event on the Lease, fire and forget. */
static void record_event(leader_t *l, const char *what)
{
    int64_t now = now_ns();
    char *ename = xasprintf("%s.%016llx", l->name, (unsigned long long)now);
    char *msg = xasprintf("%s %s", l->identity, what);
    Coracle__V1__ObjectMeta meta = CORACLE__V1__OBJECT_META__INIT;
    meta.name = ename;
    meta.namespace_ = l->ns;
    Coracle__V1__ObjectReference ref = CORACLE__V1__OBJECT_REFERENCE__INIT;
    ref.kind = "Lease";
    ref.apiversion = "coordination.k8s.io/v1";
    ref.namespace_ = l->ns;
    ref.name = l->name;
    if (l->lease && l->lease->metadata) {
        ref.uid = l->lease->metadata->uid;
        ref.resourceversion = l->lease->metadata->resourceversion;
    }
    Coracle__V1__EventSource src = CORACLE__V1__EVENT_SOURCE__INIT;
    src.component = l->component;
    Coracle__V1__Time t = CORACLE__V1__TIME__INIT;
    t.has_seconds = t.has_nanos = 1;
    t.seconds = now / 1000000000;
    t.nanos = (int32_t)(now % 1000000000);
    Coracle__V1__Event ev = CORACLE__V1__EVENT__INIT;
    ev.metadata = &meta;
    ev.involvedobject = &ref;
    ev.reason = "LeaderElection";
    ev.message = msg;
    ev.source = &src;
    ev.firsttimestamp = &t;
    ev.lasttimestamp = &t;
    ev.has_count = 1;
    ev.count = 1;
    ev.type = "Normal";
    ev.reportingcomponent = l->component;
    ev.reportinginstance = l->identity;
    if (l->io.call)
        l->io.event(l->io.io_arg, &ev.base);
    else
        gcl_call(l->g, "/coracle.v1.Events/Create", &ev.base, NULL, NULL, NULL, 10000);
    free(msg);
    free(ename);
}

static void cancel_call(leader_t *l)
{
    void *c = l->call;
    l->call = NULL;
    l->step = STEP_NONE;
    if (c && l->io.call)
        l->io.cancel(l->io.io_arg, c);
    else if (c)
        gcl_call_cancel(c);
}

/* Leadership ends (deadline missed or taken over): no more tries. */
static void stop_leading(leader_t *l, const char *why)
{
    log_warn("failed to renew lease %s: %s", l->desc, why);
    l->leading = false;
    l->done = true;
    evtimer_del(l->try_ev);
    evtimer_del(l->deadline_ev);
    cancel_call(l);
    record_event(l, "stopped leading");
    if (l->on_stopped)
        l->on_stopped(l->arg);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    stop_leading(arg, "timed out waiting for the condition");
}

/* A write of ours stood: the renewal due is done. */
static void tried_ok(leader_t *l)
{
    evtimer_del(l->deadline_ev);
    if (!l->leading) {
        l->leading = true;
        log_info("successfully acquired lease %s", l->desc);
        record_event(l, "became leader");
        schedule_next(l);
        if (l->on_started)
            l->on_started(l->arg); /* last: it may free nothing of ours, but may log */
        return;
    }
    log_debug("successfully renewed lease %s", l->desc);
    schedule_next(l);
}

static void tried_not(leader_t *l)
{
    schedule_next(l);
}

static void lease_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    leader_t *l = arg;
    Coracle__V1__Lease *lease = coracle__v1__lease__unpack(NULL, len, msg);
    if (lease)
        lease_set(l, lease);
}

static void try_update(leader_t *l);
static void try_create(leader_t *l);

static void lease_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    leader_t *l = arg;
    if (l->step == STEP_NONE)
        return; /* cancelled */
    l->call = NULL;
    l->call_ended = true;
    enum leader_step step = l->step;
    l->step = STEP_NONE;
    int64_t now = mono_ns();
    if (step == STEP_GET && code == GRPC_NOT_FOUND) {
        lease_set(l, NULL);
        try_create(l);
        return;
    }
    if (code != GRPC_OK || !l->lease) {
        if (step == STEP_GET)
            log_warn("error retrieving resource lock %s: %s", l->desc, message);
        else if (step == STEP_CREATE)
            log_warn("error initially creating leader election record: %s", message);
        else
            log_warn("Failed to update lock: %s", message);
        lease_set(l, NULL); /* a Conflict or a lost answer: read it again */
        tried_not(l);
        return;
    }
    observe(l, l->lease->spec, now);
    if (step != STEP_GET) {
        tried_ok(l);
        return;
    }
    if (l->leading && !observed_is_me(l)) {
        char *why = xasprintf("the lease is held by %s", l->obs_holder);
        stop_leading(l, why);
        free(why);
        return;
    }
    if (!may_take(l, now)) {
        log_debug("lock is held by %s and has not yet expired", l->obs_holder);
        tried_not(l);
        return;
    }
    try_update(l);
}

/* An io call's outcome, as gcl's two callbacks. */
static void io_done(void *arg, int code, const char *msg, const void *lease, size_t len)
{
    if (code == GRPC_OK && lease)
        lease_msg(NULL, (const uint8_t *)lease, len, arg);
    lease_done(NULL, code, msg ? msg : "", arg);
}

static void start_call(leader_t *l, enum leader_step step, const char *method,
                       const ProtobufCMessage *req)
{
    char path[64];
    snprintf(path, sizeof path, "/coracle.v1.Leases/%s", method);
    l->step = step;
    l->call_ended = false;
    void *c = l->io.call
                  ? l->io.call(l->io.io_arg, method, req, io_done, l)
                  : gcl_call(l->g, path, req, lease_msg, lease_done, l, l->renew_deadline_ms);
    l->call = l->call_ended ? NULL : c;
}

static void try_update(leader_t *l)
{
    Coracle__V1__LeaseSpec spec;
    Coracle__V1__MicroTime t;
    next_spec(l, l->lease->spec, now_ns(), &spec, &t);
    Coracle__V1__Lease upd = *l->lease; /* packed at once: a shallow copy will do */
    upd.spec = &spec;
    start_call(l, STEP_UPDATE, "Update", &upd.base);
}

static void try_create(leader_t *l)
{
    Coracle__V1__LeaseSpec spec;
    Coracle__V1__MicroTime t;
    next_spec(l, NULL, now_ns(), &spec, &t);
    Coracle__V1__ObjectMeta meta = CORACLE__V1__OBJECT_META__INIT;
    meta.namespace_ = l->ns;
    meta.name = l->name;
    Coracle__V1__Lease lease = CORACLE__V1__LEASE__INIT;
    lease.metadata = &meta;
    lease.spec = &spec;
    start_call(l, STEP_CREATE, "Create", &lease.base);
}

static void try_cb(evutil_socket_t fd, short what, void *arg)
{
    leader_t *l = arg;
    if (l->call || l->done)
        return;
    if (l->leading && !evtimer_pending(l->deadline_ev, NULL)) {
        /* a renewal is due: it must succeed within the deadline (client-go's renew loop) */
        struct timeval tv = {l->renew_deadline_ms / 1000, (l->renew_deadline_ms % 1000) * 1000};
        evtimer_add(l->deadline_ev, &tv);
    }
    if (l->leading && l->lease && lease_valid(l, mono_ns())) {
        try_update(l); /* renewing what we wrote: no need to read it first */
        return;
    }
    Coracle__V1__GetRequest req = CORACLE__V1__GET_REQUEST__INIT;
    req.namespace_ = l->ns;
    req.name = l->name;
    start_call(l, STEP_GET, "Get", &req.base);
}

/* ------------------------------------------------------------ public */

leader_t *leader_new(struct event_base *base, gcl_t *g, const struct leader_cfg *cfg, char **err)
{
    *err = NULL;
    if (!cfg->ns || !*cfg->ns || !cfg->name || !*cfg->name) {
        *err = xstrdup("leader election needs the Lease's namespace and name");
        return NULL;
    }
    if (cfg->lease_duration_ms < 1000 || cfg->lease_duration_ms <= cfg->renew_deadline_ms ||
        cfg->renew_deadline_ms <= (int)(LEADER_JITTER * cfg->retry_period_ms) ||
        cfg->retry_period_ms <= 0) {
        *err = xasprintf("leader election: need lease duration (%d ms, at least 1 s) > renew "
                         "deadline (%d ms) > 1.2 x retry period (%d ms)",
                         cfg->lease_duration_ms, cfg->renew_deadline_ms, cfg->retry_period_ms);
        return NULL;
    }
    leader_t *l = xcalloc(1, sizeof(*l));
    l->base = base;
    l->g = g;
    l->ns = xstrdup(cfg->ns);
    l->name = xstrdup(cfg->name);
    l->desc = xasprintf("%s/%s", l->ns, l->name);
    l->component = xstrdup(cfg->component && *cfg->component ? cfg->component : cfg->name);
    if (cfg->identity && *cfg->identity) {
        l->identity = xstrdup(cfg->identity);
    } else {
        char host[256] = "localhost", uuid[37];
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = 0;
        uuid_v4(uuid);
        l->identity = xasprintf("%s_%s", host, uuid);
    }
    l->lease_duration_ms = cfg->lease_duration_ms;
    l->renew_deadline_ms = cfg->renew_deadline_ms;
    l->retry_period_ms = cfg->retry_period_ms;
    l->on_started = cfg->on_started;
    l->on_stopped = cfg->on_stopped;
    l->arg = cfg->arg;
    l->try_ev = evtimer_new(base, try_cb, l);
    l->deadline_ev = evtimer_new(base, deadline_cb, l);
    return l;
}

leader_t *leader_new_io(struct event_base *base, const struct leader_io *io,
                        const struct leader_cfg *cfg, char **err)
{
    leader_t *l = leader_new(base, NULL, cfg, err);
    if (l)
        l->io = *io;
    return l;
}

void leader_start(leader_t *l)
{
    if (l->started)
        return;
    l->started = true;
    log_info("attempting to acquire leader lease %s...", l->desc);
    schedule_try(l, 0);
}

/* An io elector's release answered: logged (the elector may be gone: arg is its "ns/name"). */
static void released(void *arg, int code, const char *msg, const void *lease, size_t len)
{
    char *desc = arg;
    (void)lease, (void)len;
    if (code == GRPC_OK)
        log_info("released lease %s", desc);
    else
        log_warn("failed to release lease %s: %s", desc, msg ? msg : grpc_code_name(code));
    free(desc);
}

int leader_release(leader_t *l, int timeout_ms)
{
    if (!l || !l->leading)
        return 0;
    l->leading = false;
    l->done = true;
    evtimer_del(l->try_ev);
    evtimer_del(l->deadline_ev);
    cancel_call(l);
    if (!l->lease) {
        log_warn("cannot release lease %s: not read since the last failure", l->desc);
        return -1;
    }
    /* client-go's release: no holder, a one-second duration, the transitions kept */
    Coracle__V1__MicroTime t;
    micro_time(&t, now_ns());
    Coracle__V1__LeaseSpec spec = CORACLE__V1__LEASE_SPEC__INIT;
    spec.holderidentity = "";
    spec.has_leasedurationseconds = 1;
    spec.leasedurationseconds = 1;
    spec.renewtime = &t;
    spec.acquiretime = &t;
    spec.has_leasetransitions = 1;
    spec.leasetransitions = l->lease->spec && l->lease->spec->has_leasetransitions
                                ? l->lease->spec->leasetransitions
                                : 0;
    Coracle__V1__Lease upd = *l->lease;
    upd.spec = &spec;
    if (l->io.call) {
        l->io.call(l->io.io_arg, "Update", &upd.base, released, xstrdup(l->desc));
        return 0;
    }
    ProtobufCMessage *resp = NULL;
    char *msg = NULL;
    int code = gcl_unary_sync_timeout(l->g, "/coracle.v1.Leases/Update", &upd.base,
                                      &coracle__v1__lease__descriptor, &resp, &msg, timeout_ms);
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    if (code != GRPC_OK) {
        log_warn("failed to release lease %s: %s", l->desc, msg ? msg : grpc_code_name(code));
        free(msg);
        return -1;
    }
    log_info("released lease %s", l->desc);
    return 0;
}

void leader_free(leader_t *l)
{
    if (!l)
        return;
    cancel_call(l);
    event_free(l->try_ev);
    event_free(l->deadline_ev);
    lease_set(l, NULL);
    free(l->obs_raw);
    free(l->obs_holder);
    free(l->ns);
    free(l->name);
    free(l->desc);
    free(l->identity);
    free(l->component);
    free(l);
}

bool leader_is_leader(const leader_t *l)
{
    return l->leading;
}

const char *leader_identity(const leader_t *l)
{
    return l->identity;
}

const char *leader_holder(const leader_t *l)
{
    return l->obs_holder ? l->obs_holder : "";
}

void leader_metrics_write(FILE *f, const leader_t *l)
{
    fprintf(f,
            "# HELP leader_election_master_status Gauge of if the reporting system is master of "
            "the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string "
            "used to identify the lease.\n"
            "# TYPE leader_election_master_status gauge\n"
            "leader_election_master_status{name=\"%s\"} %d\n",
            l->name, l->leading ? 1 : 0);
}

/* A --leader-elect-* duration in ms, or exit 2 naming the flag. */
static int flag_ms(const char *prog, const char *flag, const char *v)
{
    int64_t ns;
    if (parse_duration(v, &ns) < 0 || ns <= 0 || ns / 1000000 > INT32_MAX) {
        fprintf(stderr, "%s: --%s: expected a duration like 15s, not \"%s\"\n", prog, flag, v);
        exit(2);
    }
    return (int)(ns / 1000000);
}

leader_t *leader_from_flags(struct event_base *base, const char *prog, const char *server,
                            struct gcl_opts o, const char *ua, const struct leader_flags *f,
                            const char *component, void (*on_started)(void *),
                            void (*on_stopped)(void *), void *arg, gcl_t **eg)
{
    *eg = NULL;
    int led = flag_ms(prog, "leader-elect-lease-duration", f->duration);
    int ler = flag_ms(prog, "leader-elect-renew-deadline", f->renew);
    int lep = flag_ms(prog, "leader-elect-retry-period", f->retry);
    if (!f->elect)
        return NULL;
    char *agent = xconcat(ua, " leader-election", NULL);
    o.connect_timeout_ms = 3000;
    o.user_agent = agent;
    *eg = gcl_new(base, server, &o);
    free(agent);
    struct leader_cfg lc = {
        .ns = f->ns,
        .name = f->name,
        .component = component,
        .lease_duration_ms = led,
        .renew_deadline_ms = ler,
        .retry_period_ms = lep,
        .on_started = on_started,
        .on_stopped = on_stopped,
        .arg = arg,
    };
    char *err = NULL;
    leader_t *l = *eg ? leader_new(base, *eg, &lc, &err) : NULL;
    if (!l) {
        fprintf(stderr, "%s: %s\n", prog, err ? err : "cannot set up leader election");
        exit(2);
    }
    return l;
}
