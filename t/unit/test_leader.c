/*
 * Unit tests for src/lib/leader.c's decisions without a server: when a
 * record counts as fresh (our own clock since it last changed, never the
 * record's times), when a candidate may take the Lease, and the record it
 * writes (acquireTime and leaseTransitions kept or moved on); then the
 * whole election on the loop against a fake Leases service (one Lease,
 * resourceVersion compare-and-set) with short durations: one leader of two,
 * takeover after the lease duration, at once after a release, a leader that
 * cannot renew or finds another holder stops. The election against a real
 * apiserver is t/41-sched-leader.t. Includes the .c to reach its static
 * functions.
 */
#include "config.h"
#include "tap.h"

#include "../../src/lib/leader.c"
#include "h2s.h"

#define S 1000000000LL

static struct event_base *base;

static leader_t *mk(const char *id)
{
    struct leader_cfg cfg = {.ns = "kube-system",
                             .name = "coracle-scheduler",
                             .identity = id,
                             .lease_duration_ms = 15000,
                             .renew_deadline_ms = 10000,
                             .retry_period_ms = 2000};
    char *err = NULL;
    leader_t *l = leader_new(base, NULL, &cfg, &err);
    free(err);
    return l;
}

static void spec_of(Coracle__V1__LeaseSpec *sp, Coracle__V1__MicroTime *t, const char *holder,
                    int64_t renew_s, int transitions)
{
    coracle__v1__lease_spec__init(sp);
    coracle__v1__micro_time__init(t);
    t->has_seconds = 1;
    t->seconds = renew_s;
    sp->holderidentity = (char *)holder;
    sp->has_leasedurationseconds = 1;
    sp->leasedurationseconds = 15;
    sp->renewtime = t;
    sp->acquiretime = t;
    sp->has_leasetransitions = 1;
    sp->leasetransitions = transitions;
}

static void test_new(void)
{
    struct leader_cfg cfg = {.ns = "kube-system",
                             .name = "x",
                             .lease_duration_ms = 15000,
                             .renew_deadline_ms = 10000,
                             .retry_period_ms = 9000};
    char *err = NULL;
    ok(leader_new(base, NULL, &cfg, &err) == NULL && err, "renew deadline <= 1.2 x retry: refused");
    free(err);
    cfg.retry_period_ms = 2000;
    cfg.lease_duration_ms = 10000;
    ok(leader_new(base, NULL, &cfg, &err) == NULL && err, "lease duration <= deadline: refused");
    free(err);
    cfg.lease_duration_ms = 15000;
    cfg.name = "";
    ok(leader_new(base, NULL, &cfg, &err) == NULL && err, "no name: refused");
    free(err);
    cfg.name = "x";
    leader_t *l = leader_new(base, NULL, &cfg, &err);
    const char *id = l ? leader_identity(l) : "";
    const char *us = strrchr(id, '_');
    ok(l && !err && us && us > id && strlen(us + 1) == 36 && us[1 + 14] == '4',
       "identity is hostname_uuid (%s)", id);
    is_str(l ? l->component : "", "x", "events' component defaults to the name");
    ok(l && !leader_is_leader(l) && !strcmp(leader_holder(l), ""), "not leading, no holder seen");
    leader_free(l);
}

static void test_observe(void)
{
    leader_t *l = mk("b");
    Coracle__V1__LeaseSpec sp;
    Coracle__V1__MicroTime t;
    int64_t t0 = 1000 * S;
    /* renewTime far in the past by our clock: it does not matter */
    spec_of(&sp, &t, "a", 12, 0);
    ok(observe(l, &sp, t0), "a first record is a change");
    ok(!may_take(l, t0), "held by another, just seen: wait");
    ok(!observe(l, &sp, t0 + 5 * S), "the same record again: no change");
    ok(lease_valid(l, t0 + 15 * S - 1) && !may_take(l, t0 + 15 * S - 1),
       "fresh until leaseDurationSeconds after it was first seen");
    ok(!lease_valid(l, t0 + 15 * S) && may_take(l, t0 + 15 * S), "then it may be taken");
    t.seconds = 14; /* the holder renewed */
    ok(observe(l, &sp, t0 + 10 * S), "a renewal is a change");
    ok(!may_take(l, t0 + 20 * S) && may_take(l, t0 + 25 * S),
       "and counts from when it was seen (%s)", leader_holder(l));
    sp.holderidentity = "";
    ok(observe(l, &sp, t0 + 21 * S) && may_take(l, t0 + 21 * S), "a released lease: take at once");
    sp.holderidentity = "b";
    observe(l, &sp, t0 + 22 * S);
    ok(observed_is_me(l) && may_take(l, t0 + 22 * S), "our own record: ours to renew");
    ok(observe(l, NULL, t0 + 23 * S) && may_take(l, t0 + 23 * S), "a Lease without spec is free");
    leader_free(l);
}

static void test_next_spec(void)
{
    leader_t *l = mk("me");
    Coracle__V1__LeaseSpec old, out;
    Coracle__V1__MicroTime ot, nt;
    int64_t wall = 1700000000 * S + 123456789;

    next_spec(l, NULL, wall, &out, &nt);
    ok(!strcmp(out.holderidentity, "me") && out.leasedurationseconds == 15 &&
           out.leasetransitions == 0 && out.acquiretime == &nt && out.renewtime == &nt,
       "a new Lease: ours, no transitions, acquired now");
    ok(nt.seconds == 1700000000 && nt.nanos == 123456000, "MicroTime has microseconds");

    spec_of(&old, &ot, "other", 5, 3);
    next_spec(l, &old, wall, &out, &nt);
    ok(out.leasetransitions == 4 && out.acquiretime == &nt, "taken over: one transition more");
    spec_of(&old, &ot, "", 5, 4);
    next_spec(l, &old, wall, &out, &nt);
    ok(out.leasetransitions == 5, "taken after a release: a transition too");
    spec_of(&old, &ot, "me", 5, 5);
    next_spec(l, &old, wall, &out, &nt);
    ok(out.leasetransitions == 5 && out.acquiretime == &ot && out.renewtime == &nt,
       "renewed: transitions and acquireTime kept, renewTime now");
    leader_free(l);
}

/* ---------------------------------------------------------------- on the loop */

/* The fake Leases service: one Lease, its resourceVersion a counter. */
static Coracle__V1__Lease *stored;
static unsigned long long stored_rv;
static int unavailable, nevents;

static void store_put(Coracle__V1__Lease *l)
{
    if (stored)
        coracle__v1__lease__free_unpacked(stored, NULL);
    stored = l;
    free(stored->metadata->resourceversion);
    stored->metadata->resourceversion = xasprintf("%llu", ++stored_rv);
}

static void h_get(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    if (unavailable)
        h2s_call_finish(c, GRPC_UNAVAILABLE, "down");
    else if (!stored)
        h2s_call_finish(c, GRPC_NOT_FOUND, "leases \"x\" not found");
    else
        h2s_call_reply_pb(c, &stored->base);
}

static void h_create(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    Coracle__V1__Lease *l = coracle__v1__lease__unpack(NULL, len, msg);
    if (unavailable || stored || !l || !l->metadata) {
        h2s_call_finish(c, unavailable ? GRPC_UNAVAILABLE : GRPC_ALREADY_EXISTS, "no");
        if (l)
            coracle__v1__lease__free_unpacked(l, NULL);
        return;
    }
    store_put(l);
    h2s_call_reply_pb(c, &stored->base);
}

static void h_update(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    Coracle__V1__Lease *l = coracle__v1__lease__unpack(NULL, len, msg);
    if (unavailable || !stored || !l || !l->metadata || !l->metadata->resourceversion ||
        strcmp(l->metadata->resourceversion, stored->metadata->resourceversion)) {
        h2s_call_finish(c, unavailable ? GRPC_UNAVAILABLE : GRPC_ABORTED,
                        "the object has been modified");
        if (l)
            coracle__v1__lease__free_unpacked(l, NULL);
        return;
    }
    store_put(l);
    h2s_call_reply_pb(c, &stored->base);
}

static void h_event(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    nevents++;
    h2s_call_reply(c, msg, len);
}

struct cand {
    leader_t *l;
    gcl_t *g;
    int started, stopped;
};

static void cand_started(void *arg)
{
    ((struct cand *)arg)->started++;
}

static void cand_stopped(void *arg)
{
    ((struct cand *)arg)->stopped++;
}

static void cand_new(struct cand *c, const char *addr, const char *id)
{
    memset(c, 0, sizeof(*c));
    c->g = gcl_new(base, addr, NULL);
    struct leader_cfg cfg = {.ns = "kube-system",
                             .name = "x",
                             .identity = id,
                             .lease_duration_ms = 1000,
                             .renew_deadline_ms = 600,
                             .retry_period_ms = 200,
                             .on_started = cand_started,
                             .on_stopped = cand_stopped,
                             .arg = c};
    char *err = NULL;
    c->l = leader_new(base, c->g, &cfg, &err);
    free(err);
    leader_start(c->l);
}

static void cand_free(struct cand *c)
{
    leader_free(c->l);
    gcl_free(c->g);
    c->l = NULL;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
}

/* Runs the loop until *flag is set or ms passed; returns the ms it took, -1 on timeout. */
static int run_until(const int *flag, int ms)
{
    int64_t t0 = mono_ns(), end = t0 + (int64_t)ms * 1000000;
    struct event *t = event_new(base, -1, EV_PERSIST, tick, NULL);
    struct timeval tv = {0, 10000};
    event_add(t, &tv);
    while (!*flag && mono_ns() < end)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    return *flag ? (int)((mono_ns() - t0) / 1000000) : -1;
}

static const char *stored_holder(void)
{
    return stored && stored->spec && stored->spec->holderidentity ? stored->spec->holderidentity
                                                                  : "";
}

static int stored_transitions(void)
{
    return stored && stored->spec ? stored->spec->leasetransitions : -1;
}

static void test_loop(void)
{
    h2s_t *s = h2s_new(base, NULL);
    h2s_route(s, "/coracle.v1.Leases/Get", H2S_UNARY, h_get, NULL);
    h2s_route(s, "/coracle.v1.Leases/Create", H2S_UNARY, h_create, NULL);
    h2s_route(s, "/coracle.v1.Leases/Update", H2S_UNARY, h_update, NULL);
    h2s_route(s, "/coracle.v1.Events/Create", H2S_UNARY, h_event, NULL);
    ok(h2s_listen(s, "127.0.0.1:0") == 0, "fake Leases service listens");
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", h2s_port(s));

    struct cand a, b, c;
    cand_new(&a, addr, "a");
    cand_new(&b, addr, "b");
    int either = 0;
    for (int i = 0; i < 300 && !either; i++) {
        event_base_loop(base, EVLOOP_ONCE);
        either = a.started || b.started;
    }
    int idle = 0;
    run_until(&idle, 1500); /* several retry periods: the other must stay standby */
    ok(a.started + b.started == 1, "of two candidates one leads (%s)", stored_holder());
    struct cand *lead = a.started ? &a : &b, *standby = a.started ? &b : &a;
    ok(leader_is_leader(lead->l) && !leader_is_leader(standby->l), "leader_is_leader agrees");
    is_str(stored_holder(), leader_identity(lead->l), "the Lease names it");
    ok(stored_transitions() == 0 && stored->spec->leasedurationseconds == 1,
       "no transition yet, leaseDurationSeconds 1");
    ok(nevents >= 1, "the became-leader event was written (%d)", nevents);

    /* the leader vanishes without a word: the standby waits out the lease */
    cand_free(lead);
    int took = run_until(&standby->started, 5000);
    ok(took >= 700 && took <= 3000, "takeover after the lease duration (%d ms)", took);
    is_str(stored_holder(), leader_identity(standby->l), "the standby holds it");
    is_int(stored_transitions(), 1, "leaseTransitions 1");

    /* a release hands over at the next try */
    cand_new(&c, addr, "c");
    run_until(&idle, 500);
    ok(!c.started, "a third candidate waits");
    ok(leader_release(standby->l, 1000) == 0 && !leader_is_leader(standby->l) &&
           !strcmp(stored_holder(), "") && stored->spec->leasedurationseconds == 1,
       "leader_release: holder emptied, leaseDurationSeconds 1");
    took = run_until(&c.started, 3000);
    ok(took >= 0 && took < 700, "the third takes over at its next try (%d ms)", took);
    is_int(stored_transitions(), 2, "leaseTransitions 2");
    ok(!standby->stopped, "a release does not call on_stopped");
    cand_free(standby);

    /* the apiserver answers nothing good: the leader stops within the deadline */
    unavailable = 1;
    took = run_until(&c.stopped, 3000);
    ok(took >= 0 && !leader_is_leader(c.l), "renewals failing: on_stopped (%d ms)", took);
    unavailable = 0;
    run_until(&idle, 600);
    ok(!leader_is_leader(c.l) && c.started == 1, "and it tries no more");
    cand_free(&c);

    /* another holder shows up on the Lease: the leader stops */
    cand_new(&a, addr, "a2");
    run_until(&a.started, 3000);
    Coracle__V1__Lease *intr = (Coracle__V1__Lease *)pb_clone(&stored->base);
    free(intr->spec->holderidentity);
    intr->spec->holderidentity = xstrdup("intruder");
    store_put(intr);
    took = run_until(&a.stopped, 3000);
    ok(a.started && took >= 0, "a Conflict, then another holder read: on_stopped (%d ms)", took);
    cand_free(&a);

    h2s_free(s);
    coracle__v1__lease__free_unpacked(stored, NULL);
}

int main(void)
{
    base = event_base_new();
    test_new();
    test_observe();
    test_next_spec();
    test_loop();
    event_base_free(base);
    return done_testing();
}
