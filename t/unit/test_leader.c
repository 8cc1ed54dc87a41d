/*
 * Unit tests for src/lib/leader.c's decisions without a server: when a
 * record counts as fresh (our own clock since it last changed, never the
 * record's times), when a candidate may take the Lease, and the record it
 * writes (acquireTime and leaseTransitions kept or moved on). The election
 * against a real apiserver is t/41-sched-leader.t. Includes the .c to
 * reach its static functions.
 */
#include "config.h"
#include "tap.h"

#include "../../src/lib/leader.c"

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

int main(void)
{
    base = event_base_new();
    test_new();
    test_observe();
    test_next_spec();
    event_base_free(base);
    return done_testing();
}
