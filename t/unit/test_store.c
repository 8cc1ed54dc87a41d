/*
 * Unit tests for src/apiserver/store.c against real LMDB in a temp dir:
 * put/get/delete through ops, per-op failure with contiguous revisions,
 * listener-before-done ordering, group commit, snapshot isolation, log
 * scans, compaction, reopen, durability across SIGKILL, map growth, disk
 * full (tmpfs in a private mount namespace, root only), backup, values
 * sealed for encryption at rest.
 *
 * `test_store --bench [seconds] [dir]` instead measures group commit with
 * 500 submitters in flight (each done resubmits) and prints ops/s.
 */
#include "config.h"
#include "tap.h"

#include "enc.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct event_base *base;
static char tmpdir[] = "/tmp/test_store.XXXXXX";

/* ---- a test op: put a value, delete, or fail, and record the outcome ---- */

/* TOP_PUTREV: a put of the value with "@<revision>" after it (test_value_rev reads it) */
enum top_kind { TOP_PUT, TOP_DEL, TOP_FAIL, TOP_NOOP, TOP_CREATE, TOP_GATED, TOP_PUTREV };

/* TOP_GATED: a put whose apply waits for gate_open, holding the commit thread meanwhile. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open;

static void gate_wait(void)
{
    pthread_mutex_lock(&gate_mu);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
}

static void gate_release(void)
{
    pthread_mutex_lock(&gate_mu);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

struct top {
    struct store_op op;
    enum top_kind kind;
    char keybuf[64];
    char valbuf[64];
    size_t val_len; /* 0: use strlen(valbuf) */
    int applies;
    int finished, err;
    uint64_t rev;
    int type;
    int seq; /* order in which done ran */
    char *saw_prev;
    uint64_t listener_seen; /* listener had run for this rev when done ran */
};

static int pending, done_seq;
static int events[8192], n_events; /* +rev: listener, -rev: done */
static uint64_t listener_last;
static int listener_order_bad;

static int top_apply(struct store_op *op, const void *cur, size_t cur_len, uint64_t rev, void **out,
                     size_t *out_len, int *del)
{
    struct top *t = (struct top *)op;
    t->applies++;
    switch (t->kind) {
    case TOP_FAIL:
        return STORE_EAPP - 7;
    case TOP_NOOP:
        return 0;
    case TOP_DEL:
        *del = 1;
        return 0;
    case TOP_CREATE:
        if (cur)
            return STORE_EAPP - 1;
        break;
    case TOP_GATED:
        gate_wait();
        break;
    case TOP_PUT:
        break;
    case TOP_PUTREV: {
        char *v = xasprintf("%s@%llu", t->valbuf, (unsigned long long)rev);
        *out = v;
        *out_len = strlen(v);
        return 0;
    }
    }
    size_t n = t->val_len ? t->val_len : strlen(t->valbuf);
    char *v = xmalloc(n);
    if (t->val_len) {
        memset(v, 'x', n);
        memcpy(v, t->valbuf, strlen(t->valbuf));
    } else {
        memcpy(v, t->valbuf, n);
    }
    *out = v;
    *out_len = n;
    return 0;
}

static void top_done(struct store_op *op, int err, const struct store_change *ch)
{
    struct top *t = (struct top *)op;
    t->finished = 1;
    t->err = err;
    t->seq = done_seq++;
    if (ch) {
        t->rev = ch->rev;
        t->type = ch->type;
        free(t->saw_prev);
        t->saw_prev = ch->prev ? xstrndup(ch->prev, ch->prev_len) : NULL;
        if (n_events < (int)ARRAY_SIZE(events))
            events[n_events++] = -(int)ch->rev;
    }
    pending--;
}

static int resyncs;

static void listener(const struct store_change *ch, void *arg)
{
    if (ch->type == STORE_RESYNC) {
        resyncs++;
        listener_last = ch->rev;
        return;
    }
    if (ch->rev != listener_last + 1)
        listener_order_bad++;
    listener_last = ch->rev;
    if (n_events < (int)ARRAY_SIZE(events))
        events[n_events++] = (int)ch->rev;
}

static void top_init(struct top *t, enum top_kind kind, const char *key, const char *val)
{
    memset(t, 0, sizeof(*t));
    t->kind = kind;
    snprintf(t->keybuf, sizeof(t->keybuf), "%s", key);
    snprintf(t->valbuf, sizeof(t->valbuf), "%s", val ? val : "");
    t->op.key = t->keybuf;
    t->op.key_len = strlen(t->keybuf);
    t->op.apply = top_apply;
    t->op.done = top_done;
}

static void tops_free(struct top *t, int n)
{
    for (int i = 0; i < n; i++)
        free(t[i].saw_prev);
}

static int submit(store_t *s, struct top *t)
{
    int rc = store_submit(s, &t->op);
    if (rc == 0)
        pending++;
    return rc;
}

static void wait_all(void)
{
    while (pending > 0)
        event_base_loop(base, EVLOOP_ONCE);
}

/* Runs one op to completion. */
static int run1(store_t *s, enum top_kind kind, const char *key, const char *val, uint64_t *rev)
{
    struct top t;
    top_init(&t, kind, key, val);
    if (submit(s, &t))
        return STORE_ECLOSED;
    wait_all();
    if (rev)
        *rev = t.rev;
    free(t.saw_prev);
    return t.err;
}

static char *get_str(store_t *s, const char *key)
{
    store_rtxn_t *r;
    const void *v;
    size_t n;
    char *res = NULL;
    if (store_read_begin(s, &r))
        return NULL;
    if (store_get(r, key, strlen(key), &v, &n) == 0)
        res = xstrndup(v, n);
    store_read_end(r);
    return res;
}

static store_t *open_store_opts(const struct store_opts *o)
{
    store_t *s = NULL;
    char *err = NULL;
    int rc = store_open(&s, o, base, &err);
    if (rc) {
        diag("store_open %s: %s", o->dir, err ? err : "?");
        free(err);
        return NULL;
    }
    store_set_listener(s, listener, NULL);
    listener_last = store_rev(s);
    return s;
}

static store_t *open_store(const char *dir, size_t map, uint64_t keep)
{
    struct store_opts o = {.dir = dir, .map_size = map, .compact_keep = keep};
    return open_store_opts(&o);
}

static char *subdir(const char *name)
{
    return xasprintf("%s/%s", tmpdir, name);
}

/* ---- tests ---- */

struct scan_acc {
    char *buf;
    int stop_after;
};

static int scan_collect(const char *k, size_t kl, const void *vv, size_t vl, void *arg)
{
    struct scan_acc *sa = arg;
    size_t n = strlen(sa->buf);
    snprintf(sa->buf + n, 256 - n, "%.*s=%.*s ", (int)kl, k, (int)vl, (const char *)vv);
    return sa->stop_after;
}

static void test_basic(void)
{
    char *dir = subdir("basic");
    store_t *s = open_store(dir, 0, 0);
    ok(s != NULL, "open a new store");
    if (!s)
        goto out;
    is_int(store_rev(s), 0, "new store at revision 0");

    uint64_t rev = 0;
    is_int(run1(s, TOP_PUT, "pods/default/a", "A1", &rev), 0, "put a");
    is_int(rev, 1, "first revision is 1");
    char *v = get_str(s, "pods/default/a");
    is_str(v, "A1", "get a");
    free(v);

    struct top t;
    top_init(&t, TOP_PUT, "pods/default/a", "A2");
    submit(s, &t);
    wait_all();
    ok(t.err == 0 && t.rev == 2 && t.type == STORE_PUT_MOD, "update a: MOD at 2");
    is_str(t.saw_prev, "A1", "done sees the previous value");
    free(t.saw_prev);

    is_int(run1(s, TOP_CREATE, "pods/default/a", "dup", NULL), STORE_EAPP - 1,
           "apply error comes back to done");
    is_int(run1(s, TOP_DEL, "pods/default/zz", NULL, NULL), STORE_ENOTFOUND,
           "delete of a missing key: ENOTFOUND");

    top_init(&t, TOP_DEL, "pods/default/a", NULL);
    submit(s, &t);
    wait_all();
    ok(t.err == 0 && t.rev == 3 && t.type == STORE_DELETE, "delete a: DELETE at 3");
    is_str(t.saw_prev, "A2", "delete carries the previous value");
    free(t.saw_prev);
    v = get_str(s, "pods/default/a");
    ok(v == NULL, "a is gone");
    free(v);
    is_int(store_rev(s), 3, "store_rev follows");

    /* A batch of mixed ops: failures and no-ops consume no revision. */
    struct top b[6];
    top_init(&b[0], TOP_PUT, "pods/ns1/x", "X");
    top_init(&b[1], TOP_FAIL, "pods/ns1/y", "Y");
    top_init(&b[2], TOP_PUT, "pods/ns1/y", "Y");
    top_init(&b[3], TOP_NOOP, "pods/ns1/x", NULL);
    top_init(&b[4], TOP_CREATE, "pods/ns1/x", "again");
    top_init(&b[5], TOP_PUT, "pods/ns1/z", "Z");
    n_events = 0;
    for (int i = 0; i < 6; i++)
        submit(s, &b[i]);
    wait_all();
    ok(b[0].err == 0 && b[0].rev == 4, "batch op 0 at rev 4");
    ok(b[1].err == STORE_EAPP - 7 && b[1].rev == 0, "failing apply fails alone");
    ok(b[2].err == 0 && b[2].rev == 5, "next op takes the next revision (5)");
    ok(b[3].err == 0 && b[3].rev == 0 && b[3].finished, "no-op succeeds without a revision");
    ok(b[4].err == STORE_EAPP - 1, "create of an existing key sees the batch's own write");
    ok(b[5].err == 0 && b[5].rev == 6, "revisions stay contiguous (6)");
    int applies_ok = 1;
    for (int i = 0; i < 6; i++)
        applies_ok &= b[i].applies == 1;
    ok(applies_ok, "apply ran once per op");
    int seq_ok = 1;
    for (int i = 1; i < 6; i++)
        seq_ok &= b[i].seq > b[i - 1].seq;
    ok(seq_ok, "done callbacks in submission order");
    ok(listener_order_bad == 0 && listener_last == 6, "listener saw 4..6 in order");
    /* every listener event of a revision precedes its done */
    int before = 1;
    for (int i = 0; i < n_events; i++) {
        if (events[i] < 0) {
            int seen = 0;
            for (int j = 0; j < i; j++)
                seen |= events[j] == -events[i];
            before &= seen;
        }
    }
    ok(before && n_events == 6, "listener runs before done for each change (%d events)", n_events);
    is_int(store_rev(s), 6, "store_rev is 6");

    /* scan with prefix and start_after */
    struct top c[3];
    top_init(&c[0], TOP_PUT, "pods/ns0/q", "Q");
    top_init(&c[1], TOP_PUT, "pods/ns10/q", "Q");
    top_init(&c[2], TOP_PUT, "pods/ns1", "short");
    for (int i = 0; i < 3; i++)
        submit(s, &c[i]);
    wait_all();
    store_rtxn_t *r;
    ok(store_read_begin(s, &r) == 0, "read_begin");
    is_int(store_rtxn_rev(r), 9, "snapshot revision");
    char seen[256] = "";
    struct scan_acc sa = {seen, 0};
    ok(store_scan(r, "pods/ns1/", 9, NULL, 0, scan_collect, &sa) == 0, "scan ns1");
    is_str(seen, "pods/ns1/x=X pods/ns1/y=Y pods/ns1/z=Z ", "scan sees exactly the prefix");
    seen[0] = 0;
    store_scan(r, "pods/ns1/", 9, "pods/ns1/x", 10, scan_collect, &sa);
    is_str(seen, "pods/ns1/y=Y pods/ns1/z=Z ", "scan after start_after");
    seen[0] = 0;
    sa.stop_after = 1;
    store_scan(r, "pods/", 5, NULL, 0, scan_collect, &sa);
    is_str(seen, "pods/ns0/q=Q ", "scan stops when fn says so");
    store_read_end(r);
    tops_free(b, 6);
    tops_free(c, 3);
    store_close(s);
out:
    free(dir);
}

struct logacc {
    char buf[512];
    uint64_t first, last;
    int n;
};

static int log_collect(const struct store_change *ch, void *arg)
{
    struct logacc *a = arg;
    size_t n = strlen(a->buf);
    if (!a->n)
        a->first = ch->rev;
    a->last = ch->rev;
    a->n++;
    if (n < 400)
        snprintf(a->buf + n, sizeof(a->buf) - n, "%llu:%d:%.*s:%.*s:%.*s ",
                 (unsigned long long)ch->rev, ch->type, (int)ch->key_len, ch->key,
                 ch->val ? (int)ch->val_len : 1, ch->val ? (const char *)ch->val : "-",
                 ch->prev ? (int)ch->prev_len : 1, ch->prev ? (const char *)ch->prev : "-");
    return 0;
}

static void test_group_snapshot_log(void)
{
    char *dir = subdir("group");
    store_t *s = open_store(dir, 0, 0);
    if (!s) {
        ok(0, "open");
        free(dir);
        return;
    }
    run1(s, TOP_PUT, "k/a", "1", NULL);
    run1(s, TOP_PUT, "k/a", "2", NULL);
    run1(s, TOP_DEL, "k/a", NULL, NULL);

    struct logacc la = {0};
    store_rtxn_t *r;
    store_read_begin(s, &r);
    ok(store_log_scan(r, 1, log_collect, &la) == 0, "log scan after 1");
    is_str(la.buf, "2:2:k/a:2:1 3:3:k/a:-:2 ", "log records carry type, key, value, previous");
    store_read_end(r);

    /* snapshot isolation */
    store_rtxn_t *old;
    store_read_begin(s, &old);
    run1(s, TOP_PUT, "k/b", "B", NULL);
    const void *v;
    size_t n;
    ok(store_get(old, "k/b", 3, &v, &n) == STORE_ENOTFOUND,
       "a snapshot opened before a commit does not see it");
    is_int(store_rtxn_rev(old), 3, "old snapshot keeps its revision");
    store_rtxn_t *nw;
    store_read_begin(s, &nw);
    ok(store_get(nw, "k/b", 3, &v, &n) == 0 && n == 1 && !memcmp(v, "B", 1),
       "a new snapshot sees it");
    store_read_end(nw);
    store_read_end(old);

    /* group commit: 2000 ops queued while the commit thread is held by the
     * first, so the batching does not depend on how threads are scheduled */
    struct store_stats st0, st1;
    store_get_stats(s, &st0);
    int N = 2000;
    struct top *ts = xcalloc((size_t)N, sizeof(*ts));
    for (int i = 0; i < N; i++) {
        char k[32];
        snprintf(k, sizeof(k), "g/%05d", i);
        top_init(&ts[i], i ? TOP_PUT : TOP_GATED, k, "v");
        submit(s, &ts[i]);
    }
    gate_release();
    int64_t t0 = mono_ns();
    wait_all();
    int64_t dt = mono_ns() - t0;
    store_get_stats(s, &st1);
    int allok = 1;
    for (int i = 0; i < N; i++)
        allok &= ts[i].err == 0 && ts[i].rev == 5 + (uint64_t)i;
    ok(allok, "2000 ops committed with contiguous revisions 5..2004");
    uint64_t commits = st1.commits - st0.commits;
    ok(commits >= 1 && commits <= 20, "group commit batches: %llu commits for %d ops",
       (unsigned long long)commits, N);
    diag("2000 ops in %.1f ms, batch_max %llu", dt / 1e6, (unsigned long long)st1.batch_max);
    ok(st1.ops - st0.ops == (uint64_t)N && st1.rev == 2004, "stats count ops and revision");
    free(ts);

    store_read_begin(s, &r);
    memset(&la, 0, sizeof(la));
    ok(store_log_scan(r, 1000, log_collect, &la) == 0 && la.n == 1004 && la.first == 1001 &&
           la.last == 2004,
       "log scan from 1000 gives 1001..2004");
    store_read_end(r);
    store_close(s);
    free(dir);
}

static void test_compaction_reopen(void)
{
    char *dir = subdir("compact");
    store_t *s = open_store(dir, 0, 50);
    if (!s) {
        ok(0, "open");
        free(dir);
        return;
    }
    struct top *ts = xcalloc(300, sizeof(*ts));
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 100; i++) {
            char k[32], val[32];
            snprintf(k, sizeof(k), "c/%03d", i);
            snprintf(val, sizeof(val), "r%d", round);
            top_init(&ts[round * 100 + i], TOP_PUT, k, val);
            submit(s, &ts[round * 100 + i]);
        }
        wait_all();
    }
    is_int(store_rev(s), 300, "300 revisions");
    uint64_t comp = store_compacted(s);
    ok(comp >= 300 - 50 - 6 - 100 && comp <= 250, "compacted advanced to %llu (keep 50)",
       (unsigned long long)comp);
    /* one more batch to let compaction catch up */
    run1(s, TOP_PUT, "c/x", "x", NULL);
    comp = store_compacted(s);
    ok(comp >= 240 && comp <= 251, "compaction keeps about 50 revisions: compacted %llu",
       (unsigned long long)comp);
    store_rtxn_t *r;
    store_read_begin(s, &r);
    struct logacc la = {0};
    is_int(store_log_scan(r, comp - 1, log_collect, &la), STORE_ECOMPACTED,
           "log scan before compacted: ECOMPACTED");
    memset(&la, 0, sizeof(la));
    ok(store_log_scan(r, comp, log_collect, &la) == 0 && la.first == comp + 1 && la.last == 301,
       "log scan from compacted works");
    store_read_end(r);
    tops_free(ts, 300);
    free(ts);
    store_close(s);

    s = open_store(dir, 0, 50);
    ok(s != NULL, "reopen");
    if (s) {
        is_int(store_rev(s), 301, "reopen restores revision");
        is_int(store_compacted(s), comp, "reopen restores compacted");
        char *v = get_str(s, "c/042");
        is_str(v, "r2", "reopen keeps data");
        free(v);
        uint64_t rev;
        run1(s, TOP_PUT, "c/y", "y", &rev);
        is_int(rev, 302, "revisions continue after reopen");
        store_close(s);
    }
    free(dir);
}

/* Entries of the "prevs" database, read with LMDB itself (the store closed); -1 if unreadable. */
static long raw_prevs(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat st;
    long n = -1;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 5);
    if (!mdb_env_open(env, dir, MDB_RDONLY, 0600) && !mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) {
        if (!mdb_dbi_open(txn, "prevs", 0, &dbi) && !mdb_stat(txn, dbi, &st))
            n = (long)st.ms_entries;
        mdb_txn_abort(txn);
    }
    mdb_env_close(env);
    return n;
}

static char *log_after(store_t *s, uint64_t after, int *rc)
{
    struct logacc la = {0};
    store_rtxn_t *r;
    store_read_begin(s, &r);
    *rc = store_log_scan(r, after, log_collect, &la);
    store_read_end(r);
    return xstrdup(la.buf);
}

static void fillers(store_t *s, int from, int to)
{
    for (int i = from; i < to; i++) {
        char k[32];
        snprintf(k, sizeof(k), "f/%03d", i);
        run1(s, TOP_PUT, k, "f", NULL);
    }
}

/* The revision after the last '@' of a test value, as metadata.resourceVersion is for objects. */
static uint64_t test_value_rev(const void *val, size_t len)
{
    const char *v = val, *at = memrchr(v, '@', len);
    uint64_t r = 0;
    for (const char *p = at ? at + 1 : v + len; p < v + len && *p >= '0' && *p <= '9'; p++)
        r = r * 10 + (uint64_t)(*p - '0');
    return r;
}

/*
 * The log holds each value once: a change refers to its key's previous
 * change, whose value stays readable (in "prevs") after that change is
 * compacted, across a reopen, and goes once nothing refers to it. A value
 * that does not match the revision it claims is copied instead.
 */
static void test_history_prevs(void)
{
    char *dir = subdir("prevs");
    struct store_opts o = {.dir = dir, .compact_keep = 10, .value_rev = test_value_rev};
    store_t *s = NULL;
    char *err = NULL;
    int rc;
    if (store_open(&s, &o, base, &err)) {
        ok(0, "open: %s", err);
        free(err);
        free(dir);
        return;
    }
    store_set_listener(s, listener, NULL);
    listener_last = store_rev(s);
    fillers(s, 0, 1);
    run1(s, TOP_PUTREV, "h/a", "a", NULL); /* 2: a@2 */
    run1(s, TOP_PUTREV, "h/a", "a", NULL); /* 3: a@3, refers to 2 */
    fillers(s, 1, 11);                     /* 4..13: compaction up to 2 */
    is_int(store_compacted(s), 2, "compacted past the first value of h/a");
    char *l = log_after(s, 2, &rc);
    ok(rc == 0 && !strncmp(l, "3:2:h/a:a@3:a@2 ", 16),
       "a change whose previous change is compacted still has its previous value: %s", l);
    free(l);
    store_close(s);
    is_int(raw_prevs(dir), 1, "that value is kept once, in prevs");

    listener_last = 0;
    if (store_open(&s, &o, base, &err)) {
        ok(0, "reopen: %s", err);
        free(err);
        free(dir);
        return;
    }
    store_set_listener(s, listener, NULL);
    listener_last = store_rev(s);
    l = log_after(s, 2, &rc);
    ok(rc == 0 && !strncmp(l, "3:2:h/a:a@3:a@2 ", 16), "and after a reopen: %s", l);
    free(l);
    uint64_t r1, r2, r3;
    run1(s, TOP_PUTREV, "h/a", "b", &r1);
    run1(s, TOP_PUT, "h/a", "c@1", &r2); /* claims a revision it was not written at */
    run1(s, TOP_DEL, "h/a", NULL, &r3);
    l = log_after(s, r1 - 1, &rc);
    char want[128];
    snprintf(want, sizeof(want), "%llu:2:h/a:b@%llu:a@3 %llu:2:h/a:c@1:b@%llu %llu:3:h/a:-:c@1 ",
             (unsigned long long)r1, (unsigned long long)r1, (unsigned long long)r2,
             (unsigned long long)r1, (unsigned long long)r3);
    ok(rc == 0 && !strcmp(l, want), "updates and a delete after a reopen: %s", l);
    free(l);
    fillers(s, 11, 40);
    ok(store_compacted(s) > r3, "compacted past the delete");
    run1(s, TOP_PUTREV, "h/a", "d", &r1);
    l = log_after(s, r1 - 1, &rc);
    snprintf(want, sizeof(want), "%llu:1:h/a:d@%llu:- ", (unsigned long long)r1,
             (unsigned long long)r1);
    ok(rc == 0 && !strcmp(l, want), "created again: no previous value: %s", l);
    free(l);
    store_close(s);
    is_int(raw_prevs(dir), 0, "nothing left in prevs once nothing refers to it");
    free(dir);
}

/* ---- bad input: a file that is not LMDB, an oversized key ---- */

static void test_bad_input(void)
{
    char *dir = subdir("garbage");
    char *file = xasprintf("%s/data.mdb", dir);
    mkdir(dir, 0700);
    int fd = open(file, O_WRONLY | O_CREAT, 0600);
    char junk[8192];
    memset(junk, 0x5a, sizeof(junk));
    if (fd < 0 || write(fd, junk, sizeof(junk)) != (ssize_t)sizeof(junk))
        diag("could not write %s", file);
    close(fd);
    struct store_opts o = {.dir = dir};
    store_t *s = NULL;
    char *err = NULL;
    int rc = store_open(&s, &o, base, &err);
    ok(rc == STORE_EIO && s == NULL && err && strstr(err, dir) && strstr(err, "mdb_env_open"),
       "a file that is not LMDB is refused: %s", err ? err : "(no message)");
    free(err);
    free(file);
    free(dir);

    dir = subdir("bigkey");
    s = open_store(dir, 0, 0);
    if (s) {
        struct top t;
        top_init(&t, TOP_PUT, "x", "v");
        char *key = xmalloc(600);
        memset(key, 'k', 600);
        t.op.key = key;
        t.op.key_len = 600;
        submit(s, &t);
        wait_all();
        is_int(t.err, STORE_EIO, "a key over 511 bytes fails its op");
        store_rtxn_t *r;
        const void *v;
        size_t vl;
        store_read_begin(s, &r);
        is_int(store_get(r, key, 600, &v, &vl), STORE_ENOTFOUND, "get of an oversized key");
        store_read_end(r);
        free(key);
        store_close(s);
    }
    free(dir);
}

/* ---- close drains the queue ---- */

static store_t *drain_store;
static int drain_resubmit_rc = 1;
static struct top drain_extra;

static void drain_done(struct store_op *op, int err, const struct store_change *ch)
{
    top_done(op, err, ch);
    if (drain_resubmit_rc == 1) {
        top_init(&drain_extra, TOP_PUT, "late/x", "x");
        drain_resubmit_rc = store_submit(drain_store, &drain_extra.op);
    }
}

static void test_one_writer(void)
{
    char *dir = subdir("onewriter");
    store_t *a = open_store(dir, 0, 0), *b = NULL;
    struct store_opts o = {.dir = dir};
    char *err = NULL;
    int rc = store_open(&b, &o, base, &err);
    ok(a && rc < 0 && err && strstr(err, "is in use by another coracle-apiserver"),
       "a second store on the same directory is refused: %s", err ? err : "(none)");
    free(err);
    if (a)
        store_close(a);
    err = NULL;
    rc = store_open(&b, &o, base, &err);
    ok(rc == 0, "and opens once the first is closed");
    if (rc == 0)
        store_close(b);
    free(err);
    free(dir);
}

/* store_opts.loop_commits: a write alone commits inside store_submit, done still comes later */
static void test_loop_commits(void)
{
    char *dir = subdir("loopcommits");
    struct store_opts o = {.dir = dir, .loop_commits = 1};
    store_t *s = NULL;
    char *err = NULL;
    ok(store_open(&s, &o, base, &err) == 0, "opened with loop_commits");
    free(err);
    if (!s) {
        free(dir);
        return;
    }
    store_set_listener(s, listener, NULL);
    listener_last = store_rev(s);
    /* the commit thread must be asleep first: it may still be on its way there */
    struct top t;
    int inline_seen = 0, done_inside = 0, tries;
    for (tries = 0; tries < 200 && !inline_seen; tries++) {
        top_init(&t, TOP_PUT, "k/loop", "v1");
        if (submit(s, &t))
            break;
        inline_seen = t.applies == 1;
        done_inside = t.finished;
        wait_all();
        free(t.saw_prev);
        if (!inline_seen)
            usleep(5000);
    }
    ok(inline_seen && !done_inside,
       "a write alone is applied inside store_submit, done not called there (try %d)", tries);
    struct store_stats st0, st;
    store_get_stats(s, &st0);
    ok(t.err == 0 && t.rev == store_rev(s) && st0.loop_commits >= 1,
       "then answered from the loop, committed there (%llu loop commits)",
       (unsigned long long)st0.loop_commits);
    char *v = get_str(s, "k/loop");
    ok(v && !strcmp(v, "v1"), "and readable");
    free(v);
    struct top two[2];
    top_init(&two[0], TOP_PUT, "k/a", "a");
    top_init(&two[1], TOP_PUT, "k/b", "b");
    submit(s, &two[0]);
    submit(s, &two[1]);
    wait_all();
    store_get_stats(s, &st);
    ok(two[0].err == 0 && two[1].err == 0 && two[1].rev == two[0].rev + 1 &&
           st.loop_commits - st0.loop_commits <= 1,
       "a write behind an unanswered one goes to the commit thread");
    tops_free(two, 2);
    store_close(s);
    free(dir);
}

static void test_close_drains(void)
{
    char *dir = subdir("drain");
    drain_store = open_store(dir, 0, 0);
    if (!drain_store) {
        ok(0, "open");
        free(dir);
        return;
    }
    struct top ts[300];
    for (int i = 0; i < 300; i++) {
        char k[32];
        snprintf(k, sizeof(k), "dr/%03d", i);
        top_init(&ts[i], TOP_PUT, k, "v");
        ts[i].op.done = drain_done;
        submit(drain_store, &ts[i]);
    }
    store_close(drain_store); /* without running the loop */
    int all = 1;
    for (int i = 0; i < 300; i++)
        all &= ts[i].finished && ts[i].err == 0 && ts[i].rev == (uint64_t)i + 1;
    ok(all && pending == 0, "store_close commits queued ops and runs their done callbacks");
    is_int(drain_resubmit_rc, STORE_ECLOSED, "submit while closing: STORE_ECLOSED");
    store_t *s = open_store(dir, 0, 0);
    ok(s && store_rev(s) == 300, "the drained ops are durable");
    if (s)
        store_close(s);
    free(dir);
}

/* ---- durability across SIGKILL ---- */

static int ack_fd;
static int child_next;
static store_t *child_store;

static void child_done(struct store_op *op, int err, const struct store_change *ch);

static void child_submit(struct top *t)
{
    char k[32];
    snprintf(k, sizeof(k), "d/%07d", child_next++);
    top_init(t, TOP_PUT, k, "durable");
    t->op.done = child_done;
    if (store_submit(child_store, &t->op))
        _exit(3);
}

static void child_done(struct store_op *op, int err, const struct store_change *ch)
{
    struct top *t = (struct top *)op;
    if (err || !ch)
        _exit(4);
    uint32_t rec[2] = {(uint32_t)atoi(t->keybuf + 2), (uint32_t)ch->rev};
    if (write(ack_fd, rec, sizeof(rec)) != sizeof(rec))
        _exit(5);
    child_submit(t);
}

/* rev -> key number, from the log */
struct revmap {
    uint32_t *key_of;
    uint64_t cap;
};

static int log_revmap(const struct store_change *ch, void *arg)
{
    struct revmap *m = arg;
    if (ch->rev < m->cap && ch->key_len == 9 && !memcmp(ch->key, "d/", 2))
        m->key_of[ch->rev] = (uint32_t)atoi(ch->key + 2) + 1;
    return 0;
}

static void test_sigkill(void)
{
    char *dir = subdir("kill");
    int p[2];
    if (pipe(p) < 0) {
        ok(0, "pipe");
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        ack_fd = p[1];
        struct event_base *cb = event_base_new();
        struct store_opts o = {.dir = dir};
        char *err;
        if (store_open(&child_store, &o, cb, &err))
            _exit(2);
        static struct top ts[200];
        for (int i = 0; i < 200; i++)
            child_submit(&ts[i]);
        event_base_dispatch(cb);
        _exit(6);
    }
    close(p[1]);
    /* read acks until enough, then kill -9 mid-stream */
    size_t cap = 1 << 20, n = 0;
    uint32_t *acks = xmalloc(cap * 2 * sizeof(uint32_t));
    int killed = 0;
    for (;;) {
        ssize_t m = read(p[0], acks + n * 2, (cap - n) * 2 * sizeof(uint32_t));
        if (m <= 0)
            break;
        n += (size_t)m / (2 * sizeof(uint32_t));
        if (!killed && n >= 3000) {
            kill(pid, SIGKILL);
            killed = 1;
        }
        if (n >= cap)
            break;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    close(p[0]);
    ok(killed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
       "child killed with SIGKILL after %zu acknowledged ops", n);

    store_t *s = open_store(dir, 0, 0);
    ok(s != NULL, "reopen after SIGKILL");
    if (s) {
        store_rtxn_t *r;
        store_read_begin(s, &r);
        size_t missing = 0, badrev = 0;
        uint64_t maxrev = 0;
        for (size_t i = 0; i < n; i++) {
            char k[32];
            snprintf(k, sizeof(k), "d/%07u", acks[2 * i]);
            const void *v;
            size_t vl;
            if (store_get(r, k, strlen(k), &v, &vl) != 0)
                missing++;
            if (acks[2 * i + 1] > maxrev)
                maxrev = acks[2 * i + 1];
        }
        /* every revision up to the current one is in the log, and each acknowledged
         * revision holds the acknowledged key */
        struct logacc la = {0};
        int lrc = store_log_scan(r, 0, log_collect, &la);
        if (lrc || (uint64_t)la.n != store_rtxn_rev(r))
            badrev++;
        struct revmap m = {xcalloc(store_rtxn_rev(r) + 1, sizeof(uint32_t)), store_rtxn_rev(r) + 1};
        store_log_scan(r, 0, log_revmap, &m);
        for (size_t i = 0; i < n; i++)
            if (acks[2 * i + 1] >= m.cap || m.key_of[acks[2 * i + 1]] != acks[2 * i] + 1)
                badrev++;
        free(m.key_of);
        ok(missing == 0, "every acknowledged op survived (%zu missing of %zu)", missing, n);
        ok(store_rev(s) >= maxrev, "revision %llu >= highest acknowledged %llu",
           (unsigned long long)store_rev(s), (unsigned long long)maxrev);
        ok(badrev == 0, "log is contiguous 1..%llu, acknowledged revisions match their keys",
           (unsigned long long)store_rtxn_rev(r));
        store_read_end(r);
        uint64_t rev;
        ok(run1(s, TOP_PUT, "d/after", "x", &rev) == 0 && rev == store_rev(s),
           "writes go on after recovery");
        store_close(s);
    }
    free(acks);
    free(dir);
}

/* ---- map growth ---- */

/*
 * n puts into ts (n of them): keys prefix/00000..., values of val_len bytes
 * starting with val, waited for every `every`. The number that failed.
 */
static int put_many(store_t *s, struct top *ts, int n, const char *prefix, const char *val,
                    size_t val_len, int every)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        char k[32];
        snprintf(k, sizeof(k), "%s/%05d", prefix, i);
        top_init(&ts[i], TOP_PUT, k, val);
        ts[i].val_len = val_len;
        submit(s, &ts[i]);
        if (i % every == every - 1)
            wait_all();
    }
    wait_all();
    for (int i = 0; i < n; i++)
        bad += ts[i].err != 0;
    return bad;
}

static void test_growth(void)
{
    char *dir = subdir("grow");
    store_t *s = open_store(dir, 128 * 1024, 0);
    if (!s) {
        ok(0, "open");
        free(dir);
        return;
    }
    struct store_stats st0, st1;
    store_get_stats(s, &st0);
    /* many small batches: the proactive (75%) growth */
    int N = 3000;
    struct top *ts = xcalloc((size_t)N, sizeof(*ts));
    int bad = put_many(s, ts, N, "m", "payload", 1000, 50);
    store_get_stats(s, &st1);
    ok(bad == 0, "3000 x 1 KB writes into a 128 KiB map all succeed (%d failed)", bad);
    ok(st1.map_size > st0.map_size, "map grew from %llu to %llu", (unsigned long long)st0.map_size,
       (unsigned long long)st1.map_size);
    ok(st1.map_used <= st1.map_size, "used %llu of %llu", (unsigned long long)st1.map_used,
       (unsigned long long)st1.map_size);

    /* one batch much bigger than the map's room: MDB_MAP_FULL, grow, replay */
    uint64_t big_before = st1.map_size;
    int M = 2000;
    struct top *bs = xcalloc((size_t)M, sizeof(*bs));
    /* keep a reader open for part of it: an urgent grow waits for it */
    store_rtxn_t *r;
    store_read_begin(s, &r);
    for (int i = 0; i < M; i++) {
        char k[32];
        snprintf(k, sizeof(k), "big/%05d", i);
        top_init(&bs[i], TOP_PUT, k, "big");
        bs[i].val_len = 3000;
        submit(s, &bs[i]);
    }
    for (int i = 0; i < 5; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    usleep(100000);
    store_read_end(r);
    wait_all();
    bad = 0;
    int applies_once = 1;
    for (int i = 0; i < M; i++) {
        bad += bs[i].err != 0;
        applies_once &= bs[i].applies == 1;
    }
    store_get_stats(s, &st1);
    ok(bad == 0, "2000 x 3 KB submitted at once all succeed (%d failed)", bad);
    ok(applies_once, "apply ran once per op across the retried batch");
    ok(st1.map_size >= big_before * 2, "map grew again to %llu", (unsigned long long)st1.map_size);
    ok(bs[M - 1].rev == (uint64_t)(N + M), "revisions contiguous through the grow (%llu)",
       (unsigned long long)bs[M - 1].rev);
    char *v = get_str(s, "big/01999");
    ok(v && strncmp(v, "big", 3) == 0 && strlen(v) == 3000, "data written after growth reads");
    free(v);
    free(bs);
    free(ts);
    store_close(s);
    free(dir);
}

/*
 * The log grows with the map: behind a 64 KiB log, 3,000 writes of 1 KB
 * make checkpoints of a map many times the log's size, after which the log
 * is at least a quarter of the last copy; the grown log keeps its size and
 * every write across a reopen.
 */
static void test_wal_follows_map(void)
{
    char *dir = subdir("walfollow");
    struct store_opts o = {.dir = dir, .map_size = 1 << 20, .wal_size = 64 << 10};
    store_t *s = open_store_opts(&o);
    if (!s) {
        ok(0, "open");
        free(dir);
        return;
    }
    int N = 3000;
    struct top *ts = xcalloc((size_t)N, sizeof(*ts));
    int bad = put_many(s, ts, N, "w", "logged", 1000, 20);
    struct store_stats st;
    store_get_stats(s, &st);
    struct stat sb;
    char *snap = xasprintf("%s/snap.mdb", dir);
    uint64_t last_copy = stat(snap, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    ok(bad == 0, "3000 x 1 KB writes behind a 64 KiB log succeed (%d failed)", bad);
    ok(st.checkpoints >= 2, "%llu checkpoints", (unsigned long long)st.checkpoints);
    ok(st.wal_size > (64 << 10) && st.wal_size >= last_copy / 4 - (64 << 10),
       "the log grew to %llu bytes (last copy %llu bytes)", (unsigned long long)st.wal_size,
       (unsigned long long)last_copy);
    store_close(s);
    if (!(s = open_store_opts(&o))) {
        ok(0, "reopen");
    } else {
        char *v = get_str(s, "w/02999");
        ok(v && strlen(v) == 1000, "the last write reads after a reopen");
        free(v);
        char *wal = xasprintf("%s/wal", dir);
        long long size = stat(wal, &sb) == 0 ? (long long)sb.st_size : -1;
        ok(size >= (long long)st.wal_size, "the log keeps its size across a reopen (%lld bytes)",
           size);
        free(wal);
        store_close(s);
    }
    free(snap);
    free(ts);
    free(dir);
}

/* ---- disk full: tmpfs in a private mount namespace (root only) ---- */

static int dfull_child(const char *dir)
{
    /* result bits: 1 got EFULL, 2 reads worked while full, 4 writes resumed, 8 old data kept */
    int res = 0;
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return 100;
    mkdir(dir, 0700);
    if (mount("tmpfs", dir, "tmpfs", 0, "size=1m") < 0)
        return 101;
    char *filler = xasprintf("%s/filler", dir);
    int fd = open(filler, O_WRONLY | O_CREAT, 0600);
    char buf[4096] = {0};
    for (int i = 0; i < 64; i++) /* 256 KiB we can give back later */
        if (write(fd, buf, sizeof(buf)) != sizeof(buf))
            return 102;
    close(fd);
    char *sdir = xasprintf("%s/db", dir);
    store_t *s = open_store(sdir, 8 << 20, 0);
    if (!s)
        return 103;
    if (run1(s, TOP_PUT, "f/first", "kept", NULL) != 0)
        return 104;
    int err = 0;
    for (int i = 0; i < 2000 && !err; i++) {
        struct top t[10];
        for (int j = 0; j < 10; j++) {
            char k[32];
            snprintf(k, sizeof(k), "f/%05d", i * 10 + j);
            top_init(&t[j], TOP_PUT, k, "fill");
            t[j].val_len = 2000;
            submit(s, &t[j]);
        }
        wait_all();
        for (int j = 0; j < 10; j++)
            if (t[j].err)
                err = t[j].err;
    }
    if (err == STORE_EFULL)
        res |= 1;
    char *v = get_str(s, "f/first");
    if (v && !strcmp(v, "kept"))
        res |= 2 | 8;
    free(v);
    unlink(filler);
    if (run1(s, TOP_PUT, "f/after", "ok", NULL) == 0)
        res |= 4;
    store_close(s);
    umount2(dir, MNT_DETACH);
    return res;
}

static void test_disk_full(void)
{
    if (geteuid() != 0) {
        ok(1, "# SKIP disk full test needs root (tmpfs mount)");
        return;
    }
    char *dir = subdir("full");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        log_set_level(LOG_LVL_ERR);
        _exit(dfull_child(dir));
    }
    int status = 0;
    waitpid(pid, &status, 0);
    int res = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (res >= 100 || res < 0)
        diag("disk full child failed early: %d", res);
    ok(res >= 0 && res < 100 && (res & 1), "full disk fails writes with STORE_EFULL");
    ok(res >= 0 && res < 100 && (res & 2), "reads keep working on a full disk");
    ok(res >= 0 && res < 100 && (res & 4), "writes succeed again once space exists");
    rmdir(dir);
    free(dir);
}

/* ---- backup ---- */

static void test_backup(void)
{
    char *dir = subdir("bk");
    char *bdir = subdir("bk-restored");
    char *bfile = xasprintf("%s/data.mdb", bdir);
    store_t *s = open_store(dir, 0, 0);
    if (!s) {
        ok(0, "open");
        return;
    }
    for (int i = 0; i < 100; i++) {
        char k[32];
        snprintf(k, sizeof(k), "b/%03d", i);
        run1(s, i % 10 == 9 ? TOP_DEL : TOP_PUT, i % 10 == 9 ? "b/000" : k, "val", NULL);
    }
    /* values that take LMDB overflow pages, and a log that spans many pages */
    struct top big[200];
    for (int i = 0; i < 200; i++) {
        char k[32];
        snprintf(k, sizeof(k), "big/%03d", i);
        top_init(&big[i], TOP_PUT, k, "big");
        big[i].val_len = 5000 + (size_t)i;
        submit(s, &big[i]);
    }
    wait_all();
    uint64_t rev = store_rev(s);
    mkdir(bdir, 0700);
    char *err = NULL;
    int rc = store_backup(s, bfile, &err);
    ok(rc == 0, "backup: %s", err ? err : "ok");
    free(err);
    /* writes after the backup are not in it */
    run1(s, TOP_PUT, "b/late", "late", NULL);
    store_close(s);

    struct stat sb = {0};
    int src = stat(bfile, &sb);
    ok(src == 0 && sb.st_size > 0, "backup file exists (%lld bytes)", (long long)sb.st_size);
    /* plain LMDB opens it */
    MDB_env *env;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 5);
    int mrc = mdb_env_open(env, bfile, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0600);
    ok(mrc == 0, "backup opens with mdb_env_open: %s", mrc ? mdb_strerror(mrc) : "ok");
    mdb_env_close(env);

    s = open_store(bdir, 0, 0);
    ok(s != NULL, "backup opens as a store");
    if (s) {
        is_int(store_rev(s), rev, "backup has the same revision");
        char *v = get_str(s, "b/050");
        is_str(v, "val", "backup has the data");
        free(v);
        v = get_str(s, "b/late");
        ok(v == NULL, "backup has nothing written after it");
        free(v);
        v = get_str(s, "big/123");
        ok(v && strlen(v) == 5123 && !strncmp(v, "bigxx", 5), "backup has large values");
        free(v);
        store_rtxn_t *r;
        struct logacc la = {0};
        store_read_begin(s, &r);
        int lrc = store_log_scan(r, 0, log_collect, &la);
        ok(lrc == 0 && (uint64_t)la.n == rev, "backup has the whole log (%d records)", la.n);
        store_read_end(r);
        store_close(s);
    }
    free(bfile);
    free(bdir);
    free(dir);
}

/* ---- benchmark (not a test) ---- */

static int bench_inflight;
static int64_t bench_end;
static uint64_t bench_n;
static store_t *bench_store;
static int bench_seq;          /* BENCH_SEQ=1: keys in insertion order */
static size_t bench_val = 400; /* BENCH_VAL=n: value bytes */

static void bench_done(struct store_op *op, int err, const struct store_change *ch);

static void bench_submit(struct top *t)
{
    char k[32];
    /* scattered keys, as generateName makes: a bijection of the counter */
    uint64_t n = bench_n++;
    snprintf(k, sizeof(k), "pods/default/bench-%08x",
             bench_seq ? (uint32_t)n : (uint32_t)(n * 2654435761u));
    top_init(t, TOP_PUT, k, "bench");
    t->val_len = bench_val;
    t->op.done = bench_done;
    store_submit(bench_store, &t->op);
}

static void bench_done(struct store_op *op, int err, const struct store_change *ch)
{
    if (err)
        fatal("bench: op failed: %s", store_strerror(err));
    if (mono_ns() < bench_end)
        bench_submit((struct top *)op);
    else if (--bench_inflight == 0)
        event_base_loopbreak(base);
}

static int bench(int secs, const char *dir)
{
    struct store_opts o = {.dir = dir};
    char *err;
    bench_seq = getenv("BENCH_SEQ") != NULL;
    if (getenv("BENCH_VAL") && atoi(getenv("BENCH_VAL")) > 5)
        bench_val = (size_t)atoi(getenv("BENCH_VAL"));
    if (store_open(&bench_store, &o, base, &err))
        fatal("%s", err);
    int N = 500;
    struct top *ts = xcalloc((size_t)N, sizeof(*ts));
    struct store_stats st0, st1;
    store_get_stats(bench_store, &st0);
    int64_t t0 = mono_ns();
    bench_end = t0 + (int64_t)secs * 1000000000;
    bench_inflight = N;
    for (int i = 0; i < N; i++)
        bench_submit(&ts[i]);
    event_base_dispatch(base);
    double dt = (double)(mono_ns() - t0) / 1e9;
    store_get_stats(bench_store, &st1);
    uint64_t ops = st1.ops - st0.ops, commits = st1.commits - st0.commits;
    printf("store bench: %d in flight, %zu-byte values, %s keys, %s\n", N, bench_val,
           bench_seq ? "sequential" : "scattered", dir);
    printf("  %llu ops in %.2f s = %.0f ops/s\n", (unsigned long long)ops, dt, ops / dt);
    printf("  %llu commits, %.1f ops/commit, batch max %llu, commit+fsync %.3f ms avg\n",
           (unsigned long long)commits, commits ? (double)ops / commits : 0.0,
           (unsigned long long)st1.batch_max,
           commits ? (double)(st1.fsync_ns_total - st0.fsync_ns_total) / commits / 1e6 : 0.0);
    printf("  map %llu bytes, used %llu\n", (unsigned long long)st1.map_size,
           (unsigned long long)st1.map_used);
    store_close(bench_store);
    free(ts);
    return 0;
}

static void rm_rf(const char *path)
{
    char *cmd = xasprintf("rm -rf '%s'", path);
    if (system(cmd) != 0)
        diag("could not remove %s", path);
    free(cmd);
}

/* A replica: ops carry the revisions another store gave them; the log skips the rest. */
static void test_replica(void)
{
    char *dir = subdir("replica");
    struct store_opts o = {.dir = dir, .replica = 1};
    store_t *s = NULL;
    char *err = NULL;
    ok(store_open(&s, &o, base, &err) == 0, "replica: opened");
    free(err);
    if (!s) {
        free(dir);
        return;
    }
    store_set_listener(s, listener, NULL);
    listener_last = 0;
    /* a snapshot at revision 40: reset, then objects without log records */
    struct top t[6];
    int ev0 = n_events;
    top_init(&t[0], TOP_PUT, "pods/a", "a40");
    t[0].op.rev = 40;
    t[0].op.flags = STORE_OP_RESET | STORE_OP_NOLOG;
    top_init(&t[1], TOP_PUT, "pods/b", "b40");
    t[1].op.rev = 40;
    t[1].op.flags = STORE_OP_NOLOG | STORE_OP_SNAP_END;
    submit(s, &t[0]);
    submit(s, &t[1]);
    wait_all();
    ok(t[0].err == 0 && t[1].err == 0 && store_rev(s) == 40 && store_compacted(s) == 40,
       "replica: snapshot loaded at revision %llu, compacted %llu",
       (unsigned long long)store_rev(s), (unsigned long long)store_compacted(s));
    int heard = 0;
    for (int i = ev0; i < n_events; i++)
        heard += events[i] > 0;
    ok(heard == 0 && resyncs == 1, "replica: the listener heard only the reset of the snapshot");
    /* live changes at 43, 47 (the others went elsewhere), a progress mark at 50 */
    top_init(&t[2], TOP_PUT, "pods/a", "a43");
    t[2].op.rev = 43;
    top_init(&t[3], TOP_DEL, "pods/b", NULL);
    t[3].op.rev = 47;
    top_init(&t[4], TOP_NOOP, "pods/a", NULL);
    t[4].op.rev = 50;
    top_init(&t[5], TOP_PUT, "pods/c", "c45");
    t[5].op.rev = 45; /* behind 47: refused */
    for (int i = 2; i < 5; i++)
        submit(s, &t[i]);
    wait_all();
    submit(s, &t[5]);
    wait_all();
    ok(t[2].rev == 43 && t[3].rev == 47 && t[3].type == STORE_DELETE,
       "replica: changes take the given revisions (%llu, %llu)", (unsigned long long)t[2].rev,
       (unsigned long long)t[3].rev);
    ok(store_rev(s) == 50, "replica: a progress mark moves the revision to 50 (%llu)",
       (unsigned long long)store_rev(s));
    ok(t[5].err == STORE_EIO, "replica: a revision going backwards is refused");
    char *a = get_str(s, "pods/a"), *b = get_str(s, "pods/b");
    ok(a && !strcmp(a, "a43") && !b, "replica: state after the changes");
    free(a);
    free(b);
    store_rtxn_t *r;
    struct logacc acc = {0};
    if (store_read_begin(s, &r) == 0) {
        int rc = store_log_scan(r, 40, log_collect, &acc);
        ok(rc == 0 && acc.n == 2 && acc.first == 43 && acc.last == 47,
           "replica: the log holds 43 and 47 (%d records: %s)", acc.n, acc.buf);
        acc = (struct logacc){0};
        ok(store_log_scan(r, 44, log_collect, &acc) == 0 && acc.n == 1 && acc.first == 47,
           "replica: a scan from inside a gap starts at the next record");
        ok(store_log_scan(r, 39, log_collect, &acc) == STORE_ECOMPACTED,
           "replica: before the snapshot is compacted");
        store_read_end(r);
    }
    /* a snapshot is taken whole: nothing of it shows until its last op is queued */
    struct top u[2];
    top_init(&u[0], TOP_PUT, "pods/x", "x60");
    u[0].op.rev = 60;
    u[0].op.flags = STORE_OP_RESET | STORE_OP_NOLOG;
    top_init(&u[1], TOP_PUT, "pods/y", "y60");
    u[1].op.rev = 60;
    u[1].op.flags = STORE_OP_NOLOG | STORE_OP_SNAP_END;
    submit(s, &u[0]);
    for (int i = 0; i < 20; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(5000);
    }
    a = get_str(s, "pods/a");
    char *x = get_str(s, "pods/x");
    ok(a && !x && store_rev(s) == 50 && !u[0].finished,
       "replica: a snapshot's first ops wait for its last one (the old state still reads)");
    free(a);
    free(x);
    submit(s, &u[1]);
    wait_all();
    a = get_str(s, "pods/a");
    x = get_str(s, "pods/x");
    char *y = get_str(s, "pods/y");
    ok(!a && x && y && store_rev(s) == 60, "replica: then the whole snapshot at once, at 60");
    free(a);
    free(x);
    free(y);
    tops_free(u, 2);
    tops_free(t, 6);
    store_close(s);
    free(dir);
}

/* ---- encryption at rest ---- */

static char *enc_seen; /* the listener's last value */

static void enc_listener(const struct store_change *ch, void *arg)
{
    (void)arg;
    free(enc_seen);
    enc_seen = ch->val ? xstrndup(ch->val, ch->val_len) : NULL;
}

static enc_t *enc_config(const char *keys)
{
    char *text = xasprintf("apiVersion: apiserver.config.k8s.io/v1\n"
                           "kind: EncryptionConfiguration\n"
                           "resources:\n"
                           "  - resources: [secrets]\n"
                           "    providers:\n"
                           "      - aesgcm: {keys: [%s]}\n"
                           "      - identity: {}\n",
                           keys);
    enc_t *e = NULL;
    char *err = NULL;
    if (enc_parse("test", text, strlen(text), &e, &err)) {
        diag("enc_parse: %s", err);
        free(err);
    }
    free(text);
    return e;
}

static store_t *open_enc(const char *dir, const enc_t *e)
{
    struct store_opts o = {.dir = dir, .enc = e};
    store_t *s = NULL;
    char *err = NULL;
    if (store_open(&s, &o, base, &err)) {
        diag("store_open %s: %s", dir, err ? err : "?");
        free(err);
        return NULL;
    }
    store_set_listener(s, enc_listener, NULL);
    return s;
}

/* How often needle is in the file at path. */
static int file_count(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 1 << 20, n = 0;
    char *b = xmalloc(cap);
    size_t r;
    while ((r = fread(b + n, 1, cap - n, f)) > 0)
        if ((n += r) == cap)
            b = xrealloc(b, cap *= 2);
    fclose(f);
    int count = 0;
    for (char *p = b; (p = memmem(p, n - (size_t)(p - b), needle, strlen(needle))); p++)
        count++;
    free(b);
    return count;
}

/* The stored bytes of key, read with LMDB itself (the store closed). */
static char *raw_get(const char *dir, const char *key)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {strlen(key), (void *)key}, v;
    char *res = NULL;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 5);
    if (!mdb_env_open(env, dir, MDB_RDONLY, 0600) && !mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) {
        if (!mdb_dbi_open(txn, "objects", 0, &dbi) && !mdb_get(txn, dbi, &k, &v))
            res = xstrndup(v.mv_data, v.mv_size);
        mdb_txn_abort(txn);
    }
    mdb_env_close(env);
    return res;
}

static int log_first(const struct store_change *ch, void *arg)
{
    char **out = arg;
    if (!*out && ch->val)
        *out = xstrndup(ch->val, ch->val_len);
    return 0;
}

static void test_encrypted(void)
{
    char *dir = subdir("enc"), *file = xasprintf("%s/data.mdb", dir);
    enc_t *e1 = enc_config("{name: k, secret: AAECAwQFBgcICQoLDA0ODw==}");
    enc_t *e2 = enc_config("{name: k2, secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=}, "
                           "{name: k, secret: AAECAwQFBgcICQoLDA0ODw==}");
    store_t *s = open_enc(dir, e1);
    ok(s && e1 && e2, "a store with secrets encrypted");
    if (!s || !e1 || !e2)
        goto out;
    struct top t;
    is_int(run1(s, TOP_PUT, "secrets/default/a", "sealed-value-one", NULL), 0, "put a secret");
    is_str(enc_seen, "sealed-value-one", "the listener sees it plain");
    top_init(&t, TOP_PUT, "secrets/default/a", "sealed-value-two");
    submit(s, &t);
    wait_all();
    is_str(t.saw_prev, "sealed-value-one", "done sees the previous value plain");
    free(t.saw_prev);
    is_int(run1(s, TOP_PUT, "pods/default/p", "plain-pod-value", NULL), 0, "and a pod");
    char *v = get_str(s, "secrets/default/a");
    is_str(v, "sealed-value-two", "store_get opens it");
    free(v);
    store_rtxn_t *r;
    char buf[256] = "", *first = NULL;
    struct scan_acc sa = {buf, 0};
    store_read_begin(s, &r);
    store_scan(r, "", 0, NULL, 0, scan_collect, &sa);
    store_log_scan(r, 0, log_first, &first);
    store_read_end(r);
    is_str(buf, "pods/default/p=plain-pod-value secrets/default/a=sealed-value-two ",
           "store_scan opens it");
    is_str(first, "sealed-value-one", "store_log_scan opens it");
    free(first);
    ok(file_count(file, "sealed-value") == 0 && file_count(file, "plain-pod-value") > 0,
       "in the data file: no secret's value, the pod's");
    uint64_t rev = store_rev(s);
    store_close(s);
    v = raw_get(dir, "secrets/default/a");
    ok(v && !strncmp(v, "k8s:enc:aesgcm:v1:k:", 20), "stored under key k");
    free(v);

    /* a new key first: the old value reads; an unchanged write seals it under the new key */
    s = open_enc(dir, e2);
    v = get_str(s, "secrets/default/a");
    is_str(v, "sealed-value-two", "with k2 first, a value under k reads");
    free(v);
    is_int(run1(s, TOP_NOOP, "secrets/default/a", NULL, NULL), 0, "an op that changes nothing");
    ok(store_rev(s) == rev, "takes no revision");
    store_close(s);
    v = raw_get(dir, "secrets/default/a");
    ok(v && !strncmp(v, "k8s:enc:aesgcm:v1:k2:", 21), "but the value is now under k2");
    free(v);

    /* without the key: that value fails its reads and writes, others go on */
    s = open_enc(dir, e1);
    store_read_begin(s, &r);
    const void *val;
    size_t vl;
    is_int(store_get(r, "secrets/default/a", 17, &val, &vl), STORE_ETRANSFORM,
           "without k2: STORE_ETRANSFORM");
    store_read_end(r);
    is_int(run1(s, TOP_PUT, "secrets/default/a", "x", NULL), STORE_ETRANSFORM, "and a write of it");
    is_int(run1(s, TOP_PUT, "secrets/default/b", "sealed-value-b", NULL), 0, "another goes on");
    store_close(s);
out:
    free(enc_seen);
    enc_seen = NULL;
    enc_free(e1);
    enc_free(e2);
    free(file);
    free(dir);
}

int main(int argc, char **argv)
{
    log_init("test_store");
    base = event_base_new();
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    if (argc > 1 && !strcmp(argv[1], "--bench")) {
        int secs = argc > 2 ? atoi(argv[2]) : 5;
        char *dir = argc > 3 ? xstrdup(argv[3]) : subdir("bench");
        int rc = bench(secs > 0 ? secs : 5, dir);
        if (argc <= 3)
            rm_rf(tmpdir);
        else
            rmdir(tmpdir);
        free(dir);
        return rc;
    }
    log_set_level(LOG_LVL_WARN);
    test_basic();
    test_group_snapshot_log();
    test_compaction_reopen();
    test_history_prevs();
    test_bad_input();
    test_close_drains();
    test_one_writer();
    test_loop_commits();
    test_sigkill();
    test_growth();
    test_wal_follows_map();
    test_disk_full();
    test_backup();
    test_replica();
    test_encrypted();
    if (getenv("TEST_STORE_KEEP"))
        diag("kept %s", tmpdir);
    else
        rm_rf(tmpdir);
    event_base_free(base);
    return done_testing();
}
