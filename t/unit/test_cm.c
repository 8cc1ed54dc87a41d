/*
 * Unit tests for the controller manager's frame without a server: the
 * work queue (a key once, never two syncs of one key at a time, a key
 * enqueued during its sync runs again after, the workers bound, backoff
 * after a failure, delayed enqueues), expectations, label selectors from
 * LabelSelector messages and the pod helpers, on a real event loop.
 */
#include "config.h"
#include "tap.h"

#include "cm.h"
#include "sel.h"
#include "util.h"

#include <event2/event.h>

/* A controller whose syncs the test ends by hand. */
struct rec {
    char *keys[64];
    size_t n; /* syncs started */
    ctrl_t *c;
    bool auto_done; /* end each sync at once, ok */
    int fail_first; /* auto: fail the first N syncs */
};
static struct rec R;

static void *rec_setup(cm_t *cm, ctrl_t *c)
{
    R.c = c;
    return &R;
}

static void rec_sync(ctrl_t *c, const char *key, void *state)
{
    struct rec *r = state;
    if (r->n < 64)
        r->keys[r->n] = xstrdup(key);
    r->n++;
    if (r->auto_done) {
        bool ok = r->fail_first <= 0;
        r->fail_first--;
        ctrl_done(c, key, ok, ok ? NULL : "test failure");
    }
}

static const struct ctrl_def rec_def = {
    .name = "rec",
    .workers = 2,
    .setup = rec_setup,
    .sync = rec_sync,
};

static struct event_base *base;

static void spin(int ms)
{
    int64_t end = mono_ns() + (int64_t)ms * 1000000;
    while (mono_ns() < end)
        event_base_loop(base, EVLOOP_NONBLOCK);
}

static void reset(void)
{
    for (size_t i = 0; i < R.n && i < 64; i++)
        free(R.keys[i]);
    ctrl_t *c = R.c;
    memset(&R, 0, sizeof(R));
    R.c = c;
}

static void test_queue(void)
{
    struct cm_cfg cfg = {.server = "127.0.0.1:1"};
    cm_t *cm = cm_new(base, &cfg);
    cm_add(cm, &rec_def);
    cm_start(cm);
    ctrl_t *c = R.c;

    ctrl_enqueue(c, "ns/a");
    ctrl_enqueue(c, "ns/a");
    spin(5);
    is_int(R.n, 1, "a key enqueued twice is synced once");
    ctrl_enqueue(c, "ns/a");
    spin(5);
    is_int(R.n, 1, "a key enqueued during its sync is not synced beside it");
    ctrl_done(c, "ns/a", true, NULL);
    spin(5);
    is_int(R.n, 2, "it is synced again once its sync ended");
    ctrl_done(c, "ns/a", true, NULL);
    spin(5);
    is_int(R.n, 2, "and not a third time");
    reset();

    ctrl_enqueue(c, "ns/1");
    ctrl_enqueue(c, "ns/2");
    ctrl_enqueue(c, "ns/3");
    ctrl_enqueue(c, "ns/4");
    spin(5);
    is_int(R.n, 2, "two workers: two syncs at a time");
    is_str(R.keys[0], "ns/1", "in the order queued (1)");
    is_str(R.keys[1], "ns/2", "in the order queued (2)");
    ctrl_done(c, "ns/2", true, NULL);
    spin(5);
    is_int(R.n, 3, "one ends, the next starts");
    is_str(R.keys[2], "ns/3", "the third");
    ctrl_done(c, "ns/1", true, NULL);
    ctrl_done(c, "ns/3", true, NULL);
    spin(5);
    is_int(R.n, 4, "all four synced");
    ctrl_done(c, "ns/4", true, NULL);
    reset();

    /* failures back off: 5 ms, then 10 ms, 20 ms */
    R.auto_done = true;
    R.fail_first = 3;
    int64_t t0 = mono_ns();
    ctrl_enqueue(c, "ns/f");
    spin(5);
    /* a machine that paused this process for 15 ms may have seen two retries */
    int64_t spun_ms = (mono_ns() - t0) / 1000000;
    ok(R.n >= 1 && (R.n <= 2 || spun_ms >= 15),
       "a failed sync is not retried at once (%zu in %lld ms)", R.n, (long long)spun_ms);
    for (int i = 0; i < 200 && R.n < 4; i++)
        spin(5);
    int64_t took_ms = (mono_ns() - t0) / 1000000;
    is_int(R.n, 4, "three failures then a success: four syncs");
    ok(took_ms >= 35, "after backoffs of 5, 10 and 20 ms (%lld ms)", (long long)took_ms);
    spin(50);
    is_int(R.n, 4, "a success is not retried");
    reset();

    /* delayed enqueues: the earliest wins */
    R.auto_done = true;
    ctrl_enqueue_after(c, "ns/d", 60000);
    ctrl_enqueue_after(c, "ns/d", 300); /* far beyond a busy machine's pauses */
    spin(5);
    is_int(R.n, 0, "a delayed key waits");
    for (int i = 0; i < 600 && !R.n; i++)
        spin(5);
    is_int(R.n, 1, "and comes at the earliest time asked");
    reset();

    /* expectations */
    ok(cm_satisfied(c, "ns/e"), "no expectation: satisfied");
    cm_expect(c, "ns/e", 2, 1);
    ok(!cm_satisfied(c, "ns/e"), "2 creates and 1 delete expected: not satisfied");
    cm_observed(c, "ns/e", 1, 0);
    cm_observed(c, "ns/e", 0, 1);
    ok(!cm_satisfied(c, "ns/e"), "one create still to see");
    cm_observed(c, "ns/e", 1, 0);
    ok(cm_satisfied(c, "ns/e"), "all seen: satisfied");
    cm_expect(c, "ns/e", 1, 0);
    cm_expect_forget(c, "ns/e");
    ok(cm_satisfied(c, "ns/e"), "forgotten: satisfied");

    cm_free(cm);
    reset();
}

static Coracle__V1__ObjectMeta__LabelsEntry *label(const char *k, const char *v)
{
    Coracle__V1__ObjectMeta__LabelsEntry *e = xmalloc(sizeof(*e));
    coracle__v1__object_meta__labels_entry__init(e);
    e->key = (char *)k;
    e->value = (char *)v;
    return e;
}

static void test_selector(void)
{
    Coracle__V1__LabelSelector ls = CORACLE__V1__LABEL_SELECTOR__INIT;
    Coracle__V1__LabelSelector__MatchLabelsEntry ml =
        CORACLE__V1__LABEL_SELECTOR__MATCH_LABELS_ENTRY__INIT;
    Coracle__V1__LabelSelector__MatchLabelsEntry *mls[] = {&ml};
    Coracle__V1__LabelSelectorRequirement in = CORACLE__V1__LABEL_SELECTOR_REQUIREMENT__INIT;
    Coracle__V1__LabelSelectorRequirement nx = CORACLE__V1__LABEL_SELECTOR_REQUIREMENT__INIT;
    Coracle__V1__LabelSelectorRequirement *reqs[] = {&in, &nx};
    char *vals[] = {"a", "b"};
    ml.key = "app";
    ml.value = "web";
    in.key = "tier";
    in.operator_ = "In";
    in.values = vals;
    in.n_values = 2;
    nx.key = "legacy";
    nx.operator_ = "DoesNotExist";
    ls.matchlabels = mls;
    ls.n_matchlabels = 1;
    ls.matchexpressions = reqs;
    ls.n_matchexpressions = 2;

    struct sel *s;
    ok(cm_selector(&ls, &s), "matchLabels and matchExpressions make a selector");
    Coracle__V1__ObjectMeta m = CORACLE__V1__OBJECT_META__INIT;
    Coracle__V1__ObjectMeta__LabelsEntry *l[3] = {label("app", "web"), label("tier", "b"),
                                                  label("legacy", "")};
    m.labels = l;
    m.n_labels = 2;
    ok(cm_labels_match(s, &m), "app=web,tier=b matches");
    m.n_labels = 3;
    ok(!cm_labels_match(s, &m), "with legacy it does not (DoesNotExist)");
    l[1]->value = "c";
    m.n_labels = 2;
    ok(!cm_labels_match(s, &m), "tier=c is not in (a,b)");
    sel_free(s);
    for (int i = 0; i < 3; i++)
        free(l[i]);

    nx.operator_ = "Sometimes";
    ok(!cm_selector(&ls, &s) && !s, "an unknown operator makes no selector");
    ok(!cm_selector(NULL, &s), "a null selector selects nothing");
    Coracle__V1__LabelSelector empty = CORACLE__V1__LABEL_SELECTOR__INIT;
    ok(cm_selector(&empty, &s) && sel_empty(s), "an empty selector selects everything");
    sel_free(s);
}

static void test_pods(void)
{
    Coracle__V1__Pod p = CORACLE__V1__POD__INIT;
    Coracle__V1__PodStatus st = CORACLE__V1__POD_STATUS__INIT;
    Coracle__V1__PodCondition rc = CORACLE__V1__POD_CONDITION__INIT;
    Coracle__V1__PodCondition *conds[] = {&rc};
    Coracle__V1__Time t = CORACLE__V1__TIME__INIT;
    Coracle__V1__ObjectMeta m = CORACLE__V1__OBJECT_META__INIT;
    p.metadata = &m;
    ok(cm_pod_active(&p) && !cm_pod_ready(&p), "a new pod: active, not ready");
    p.status = &st;
    st.phase = "Running";
    st.conditions = conds;
    st.n_conditions = 1;
    rc.type = "Ready";
    rc.status = "True";
    t.has_seconds = 1;
    t.seconds = 1000;
    rc.lasttransitiontime = &t;
    ok(cm_pod_ready(&p), "Ready=True: ready");
    ok(cm_pod_available(&p, 0, 1000), "available at once with minReadySeconds 0");
    ok(!cm_pod_available(&p, 10, 1005), "not yet after 5 of 10 s");
    ok(cm_pod_available(&p, 10, 1010), "available after 10 s");
    st.phase = "Succeeded";
    ok(!cm_pod_active(&p), "a finished pod is not active");
    st.phase = "Running";
    m.deletiontimestamp = &t;
    ok(!cm_pod_active(&p), "a pod being deleted is not active");
}

int main(void)
{
    log_init("test_cm");
    log_set_level(LOG_LVL_ERR);
    base = event_base_new();
    test_queue();
    test_selector();
    test_pods();
    event_base_free(base);
    return done_testing();
}
