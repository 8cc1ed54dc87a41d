/*
 * Unit tests for src/lib/informer.c without a server: list pages decoded into
 * the pending table, watch events applied to the cache, and the diff a
 * re-list reports (adds, updates, deletes). The informer's list/watch calls
 * against a real apiserver are covered end to end (t/40-sched-*.t).
 * Includes the .c to reach its static functions.
 */
#include "config.h"
#include "tap.h"

#include "../../src/lib/informer.c"

#include <event2/event.h>

static char log_buf[4096];

static void logf_(const char *what, const ProtobufCMessage *o)
{
    const Coracle__V1__ObjectMeta *m = kind_meta(o);
    char one[128];
    snprintf(one, sizeof one, "%s %s@%s;", what, m->name, m->resourceversion);
    strncat(log_buf, one, sizeof log_buf - strlen(log_buf) - 1);
}

static void on_add(inf_t *inf, const ProtobufCMessage *o, void *arg)
{
    logf_("add", o);
}

static void on_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *o, void *arg)
{
    logf_("upd-old", old);
    logf_("upd-new", o);
}

static void on_delete(inf_t *inf, const ProtobufCMessage *o, void *arg)
{
    logf_("del", o);
}

static int synced;
static void on_synced(inf_t *inf, void *arg)
{
    synced++;
}

/* A pod with name and resourceVersion (static storage, packed at once). */
static void mkpod(Coracle__V1__Pod *p, Coracle__V1__ObjectMeta *m, const char *name, const char *rv)
{
    coracle__v1__pod__init(p);
    coracle__v1__object_meta__init(m);
    m->name = (char *)name;
    m->namespace_ = "default";
    m->resourceversion = (char *)rv;
    p->metadata = m;
}

/* Feeds a list page: names[i]@rvs[i]. */
static void feed_page(inf_t *inf, int n, const char **names, const char **rvs, const char *listrv,
                      const char *cont)
{
    Coracle__V1__PodList l = CORACLE__V1__POD_LIST__INIT;
    Coracle__V1__ListMeta lm = CORACLE__V1__LIST_META__INIT;
    Coracle__V1__Pod pods[8];
    Coracle__V1__ObjectMeta metas[8];
    Coracle__V1__Pod *items[8];
    for (int i = 0; i < n; i++) {
        mkpod(&pods[i], &metas[i], names[i], rvs[i]);
        items[i] = &pods[i];
    }
    lm.resourceversion = (char *)listrv;
    lm.continue_ = (char *)cont;
    l.metadata = &lm;
    l.n_items = (size_t)n;
    l.items = items;
    size_t len = protobuf_c_message_get_packed_size(&l.base);
    uint8_t *buf = malloc(len + 1);
    protobuf_c_message_pack(&l.base, buf);
    list_msg(NULL, buf, len, inf);
    free(buf);
}

static void feed_event(inf_t *inf, const char *type, const char *name, const char *rv)
{
    Coracle__V1__PodWatchEvent ev = CORACLE__V1__POD_WATCH_EVENT__INIT;
    Coracle__V1__Pod p;
    Coracle__V1__ObjectMeta m;
    mkpod(&p, &m, name, rv);
    if (!strcmp(type, "BOOKMARK"))
        m.name = NULL, m.namespace_ = NULL;
    ev.type = (char *)type;
    ev.object = &p;
    size_t len = protobuf_c_message_get_packed_size(&ev.base);
    uint8_t *buf = malloc(len + 1);
    protobuf_c_message_pack(&ev.base, buf);
    watch_msg(NULL, buf, len, inf);
    free(buf);
}

static int count_cb(const ProtobufCMessage *o, void *arg)
{
    (*(int *)arg)++;
    return 0;
}

int main(void)
{
    log_set_level(LOG_LVL_ERR); /* the failures below are on purpose */
    struct event_base *base = event_base_new();
    struct inf_handlers h = {on_add, on_update, on_delete, on_synced, NULL};
    inf_t *inf = inf_new(base, NULL, &kind_pod, NULL, &h);

    /* initial list, two pages */
    inf->state = ST_LIST;
    const char *n1[] = {"a", "b"}, *r1[] = {"3", "4"};
    feed_page(inf, 2, n1, r1, "9", "tok1");
    is_str(inf->cont, "tok1", "continue token kept for the next page");
    const char *n2[] = {"c"}, *r2[] = {"5"};
    feed_page(inf, 1, n2, r2, "9", NULL);
    ok(inf->cont == NULL, "last page has no continue token");
    is_int(smap_count(inf->pending), 3, "three objects pending");
    is_int(inf_count(inf), 0, "cache untouched until the list completes");
    list_done(NULL, GRPC_OK, "", inf);
    is_int(inf_count(inf), 3, "cache holds the list");
    is_int(inf_revision(inf), 9, "revision from the list");
    is_int(synced, 1, "on_synced once");
    ok(strstr(log_buf, "add a@3;") && strstr(log_buf, "add b@4;") && strstr(log_buf, "add c@5;"),
       "initial list delivered as adds: %s", log_buf);
    ok(inf->state == ST_WAIT && !inf->need_list, "next step is the watch");
    ok(inf_get(inf, "default", "b") != NULL, "get by ns/name");
    ok(inf_get_key(inf, "default/c") != NULL, "get by key");
    ok(inf_get(inf, "other", "b") == NULL, "other namespace misses");

    /* watch events */
    inf->state = ST_WATCH;
    log_buf[0] = 0;
    feed_event(inf, "ADDED", "d", "10");
    feed_event(inf, "MODIFIED", "a", "11");
    feed_event(inf, "DELETED", "b", "12");
    is_str(log_buf, "add d@10;upd-old a@3;upd-new a@11;del b@12;", "events reported");
    is_int(inf_count(inf), 3, "a c d");
    is_int(inf_revision(inf), 12, "revision follows events");
    feed_event(inf, "BOOKMARK", "", "20");
    is_int(inf_revision(inf), 20, "bookmark moves the revision");
    is_int(inf_count(inf), 3, "bookmark changes no object");
    feed_event(inf, "DELETED", "zz", "21");
    is_int(inf_count(inf), 3, "delete of an unknown object is harmless");
    const Coracle__V1__Pod *a = (const Coracle__V1__Pod *)inf_get(inf, "default", "a");
    is_str(a ? a->metadata->resourceversion : NULL, "11", "cache holds the new a");

    /* OUT_OF_RANGE: the watch ends and the informer re-lists */
    watch_done(NULL, GRPC_OUT_OF_RANGE, "too old resource version: 12 (50)", inf);
    ok(inf->state == ST_WAIT && inf->need_list, "OUT_OF_RANGE leads to a re-list");
    struct inf_stats st;
    inf_get_stats(inf, &st);
    is_int(st.relists, 1, "relist counted");

    /* the re-list: a unchanged, c changed, d gone, e new */
    inf->state = ST_LIST;
    log_buf[0] = 0;
    const char *n3[] = {"a", "c", "e"}, *r3[] = {"11", "40", "45"};
    feed_page(inf, 3, n3, r3, "50", NULL);
    list_done(NULL, GRPC_OK, "", inf);
    ok(strstr(log_buf, "upd-old c@5;upd-new c@40;") != NULL, "changed object is an update");
    ok(strstr(log_buf, "add e@45;") != NULL, "new object is an add");
    ok(strstr(log_buf, "del d@10;") != NULL, "vanished object is a delete");
    ok(strstr(log_buf, " a@") == NULL, "unchanged object is not reported: %s", log_buf);
    is_int(inf_count(inf), 3, "a c e");
    is_int(inf_revision(inf), 50, "revision of the re-list");
    is_int(synced, 1, "on_synced not repeated");
    int n = 0;
    inf_foreach(inf, count_cb, &n);
    is_int(n, 3, "foreach visits all");

    /* an ERROR event also re-lists */
    inf->state = ST_WATCH;
    feed_event(inf, "ERROR", "x", "0");
    ok(inf->state == ST_WAIT && inf->need_list, "ERROR event leads to a re-list");

    /* a failed list backs off: 200 ms doubling up to the cap */
    inf->state = ST_LIST;
    int b0 = inf->backoff_ms;
    list_done(NULL, GRPC_UNAVAILABLE, "connect: refused", inf);
    is_int(b0, 200, "initial backoff 200 ms");
    is_int(inf->backoff_ms, 400, "doubles");
    for (int i = 0; i < 10; i++) {
        inf->state = ST_LIST;
        list_done(NULL, GRPC_UNAVAILABLE, "refused", inf);
    }
    is_int(inf->backoff_ms, 10000, "capped at 10 s");
    is_int(inf_count(inf), 3, "cache kept across failures");
    /* a stream that ends after delivering resumes the watch at once */
    inf->state = ST_WATCH;
    inf->got_msg = false; /* as start_watch does */
    feed_event(inf, "BOOKMARK", "", "60");
    is_int(inf->backoff_ms, 200, "backoff reset after a success");
    watch_done(NULL, GRPC_OK, "", inf);
    ok(inf->state == ST_WAIT && !inf->need_list, "stream end resumes the watch");
    is_int(inf_revision(inf), 60, "from the bookmark's revision");

    /* keys and copies */
    Coracle__V1__Pod p;
    Coracle__V1__ObjectMeta m;
    mkpod(&p, &m, "x", "77");
    char *k = inf_key_of(&p.base);
    is_str(k, "default/x", "key of a namespaced object");
    free(k);
    m.namespace_ = NULL;
    k = inf_key_of(&p.base);
    is_str(k, "x", "key of a cluster-scoped object");
    free(k);
    is_int(inf_obj_revision(&p.base), 77, "object revision");
    ProtobufCMessage *c = inf_copy(&p.base);
    is_str(((Coracle__V1__Pod *)c)->metadata->name, "x", "deep copy");
    protobuf_c_message_free_unpacked(c, NULL);

    inf_free(inf);
    event_base_free(base);
    return done_testing();
}
