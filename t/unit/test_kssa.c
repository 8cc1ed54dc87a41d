/*
 * test_kssa: server-side apply and managedFields. Field sets against
 * structured-merge-diff's golden serializations; apply (create, update,
 * fields no longer applied, conflicts and their message, force), updates
 * moving ownership, list items by their keys, sets, kubectl's
 * last-applied annotation; managedFields through kobj in YAML and JSON.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "kobj.h"
#include "kssa_int.h"
#include "pb.h"
#include "rndmsg.h"
#include "tap.h"
#include "util.h"

#define NOW 1796000000 /* 2026-11-30T... */

static ProtobufCMessage *pod(const char *yaml)
{
    char *err = NULL;
    ProtobufCMessage *m =
        kobj_parse_msg("t", yaml, strlen(yaml), &coracle__v1__pod__descriptor, &err);
    if (!m)
        diag("parse: %s", err);
    free(err);
    return m;
}

/* "manager/Operation[/sub]: {fieldsV1}" a line per entry, in stored order. */
static char *mf(const ProtobufCMessage *obj)
{
    const Coracle__V1__ObjectMeta *m = ((const Coracle__V1__Pod *)obj)->metadata;
    struct buf b = {0};
    buf_puts(&b, "");
    for (size_t i = 0; m && i < m->n_managedfields; i++) {
        const Coracle__V1__ManagedFieldsEntry *e = m->managedfields[i];
        buf_printf(&b, "%s%s/%s%s%s: %.*s", i ? "\n" : "", e->manager, e->operation,
                   e->subresource ? "/" : "", e->subresource ? e->subresource : "",
                   e->fieldsv1 ? (int)e->fieldsv1->raw.len : 0,
                   e->fieldsv1 ? (const char *)e->fieldsv1->raw.data : "");
    }
    return buf_take(&b);
}

static void is_mf(const ProtobufCMessage *obj, const char *want, const char *name)
{
    char *got = mf(obj);
    is_str(got, want, name);
    free(got);
}

static char *yaml_of(const ProtobufCMessage *m)
{
    return kobj_emit(&kind_pod, m, KOBJ_FMT_JSON_COMPACT);
}

static const struct kssa_opts OPTS = {"v1", NULL, NULL};

/* Applies config by manager onto live; returns the result (or NULL and *e). */
static ProtobufCMessage *apply(const ProtobufCMessage *live, const char *config, const char *mgr,
                               int force, struct kssa_err *e)
{
    ProtobufCMessage *c = pod(config), *out = NULL;
    if (kssa_apply(live, c, mgr, force, &OPTS, NOW, &out, e) < 0)
        out = NULL;
    protobuf_c_message_free_unpacked(c, NULL);
    return out;
}

static void free_msg(ProtobufCMessage *m)
{
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
}

/* ------------------------------------------------------------- sets */

static void roundtrip(const char *in, const char *want, const char *name)
{
    struct arena a = {0};
    char *err = NULL;
    struct set *s = set_from_v1(&a, in, strlen(in), &err);
    if (!s) {
        ok(0, "%s: %s", name, err);
    } else {
        struct buf b = {0};
        set_to_json(&b, s);
        buf_puts(&b, "");
        is_str(b.p, want, name);
        buf_free(&b);
    }
    free(err);
    arena_free(&a);
}

static const char GOLD1[] =
    "{\"f:aaa\":{},\"f:aab\":{},\"f:aac\":{},\"f:aad\":{},\"f:aae\":{},\"f:aaf\":{},"
    "\"k:{\\\"name\\\":\\\"first\\\"}\":{},\"k:{\\\"name\\\":\\\"second\\\"}\":{},"
    "\"k:{\\\"port\\\":443,\\\"protocol\\\":\\\"tcp\\\"}\":{},"
    "\"k:{\\\"port\\\":443,\\\"protocol\\\":\\\"udp\\\"}\":{},\"v:1\":{},\"v:2\":{},\"v:3\":{},"
    "\"v:\\\"aa\\\"\":{},\"v:\\\"ab\\\"\":{},\"v:true\":{},\"i:1\":{},\"i:2\":{},\"i:3\":{},"
    "\"i:4\":{}}";

static const char GOLD3[] =
    "{\"f:spec\":{\".\":{},\"f:apps\":{\".\":{},\"k:{\\\"name\\\":\\\" app-💻\\\"}\":{\".\":{},"
    "\"f:container\":{\".\":{},\"f:image\":{},\"f:name\":{},\"f:ports\":{\".\":{},"
    "\"k:{\\\"name\\\":\\\"port 🔑\\\"}\":{\".\":{},\"f:containerPort\":{},\"f:name\":{}}}},"
    "\"f:name\":{}},\"k:{\\\"name\\\":\\\" app-🚀\\\"}\":{\".\":{},\"f:container\":{\".\":{},"
    "\"f:image\":{},\"f:name\":{},\"f:ports\":{\".\":{},\"k:{\\\"name\\\":\\\"port-✅ \\\"}\":{"
    "\".\":{},\"f:containerPort\":{},\"f:name\":{}}}},\"f:name\":{}}}}}";

static void test_sets(void)
{
    roundtrip(GOLD1, GOLD1, "golden: every element type, in order");
    roundtrip(GOLD3, GOLD3, "golden: members with children, unicode keys");
    roundtrip("{\"v:true\":{},\"i:4\":{},\"f:aad\":{},\"k:{ \\\"protocol\\\":\\\"udp\\\","
              "\\\"port\\\":443}\":{},\"v: 3\":{},\"v:\\\"aa\\\"\":{},\"f:aaa\":{},\"i:1\":{}}",
              "{\"f:aaa\":{},\"f:aad\":{},\"k:{\\\"port\\\":443,\\\"protocol\\\":\\\"udp\\\"}\":{},"
              "\"v:3\":{},\"v:\\\"aa\\\"\":{},\"v:true\":{},\"i:1\":{},\"i:4\":{}}",
              "out of order: normalized");
    roundtrip("{\"f:a\":{\"x:new\":{}},\"f:b\":{\".\":{},\"f:c\":{}}}",
              "{\"f:a\":{},\"f:b\":{\".\":{},\"f:c\":{}}}", "unknown element types are dropped");
    roundtrip("{\"v:9\":{},\"v:10\":{},\"v:1.5\":{}}", "{\"v:1.5\":{},\"v:9\":{},\"v:10\":{}}",
              "numbers in numeric order");

    struct arena a = {0};
    char *err = NULL;
    const char *bad[] = {
        "{\"f:a\":1}", "{\"k:[1]\":{}}", "{\"i:x\":{}}",   "{\"v:{\\\"a\\\":1}\":{}}", "{\"q\":{}}",
        "{\"f:a\":{}", "{\"f:a\":{}} x", "{\"v:1 2\":{}}", "{\"f:\\ud800\":{}}x"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct set *s = set_from_v1(&a, bad[i], strlen(bad[i]), &err);
        ok(!s && err, "not a field set: %s (%s)", bad[i], err ? err : "accepted");
        free(err);
        err = NULL;
    }
    roundtrip("{\"f:\\u00e9\\n\":{},\"x:later\":[1,{\"a\":[true]}],\".\":{}}", "{\"f:é\\n\":{}}",
              "escapes decoded, unknown elements skipped whatever they hold");

    /* algebra, as fieldpath's set_test */
    struct pe p[3] = {pe_field(&a, "a"), pe_field(&a, "b"), pe_field(&a, "c")};
    struct set *x = set_new(&a), *y = set_new(&a);
    set_insert(&a, x, p, 2);     /* a.b */
    set_insert(&a, x, p + 2, 1); /* c */
    set_insert(&a, y, p, 1);     /* a */
    struct buf b = {0};
    set_to_json(&b, set_union(&a, x, y));
    is_str(b.p, "{\"f:a\":{\".\":{},\"f:b\":{}},\"f:c\":{}}", "union");
    buf_reset(&b);
    set_to_json(&b, set_diff(&a, x, y));
    is_str(b.p, "{\"f:a\":{\"f:b\":{}},\"f:c\":{}}", "difference: parent - child = parent");
    buf_reset(&b);
    set_to_json(&b, set_rdiff(&a, x, y));
    is_str(b.p, "{\"f:c\":{}}", "recursive difference takes the subtree");
    buf_reset(&b);
    set_to_json(&b, set_intersect(&a, x, set_union(&a, x, y)));
    is_str(b.p, "{\"f:a\":{\"f:b\":{}},\"f:c\":{}}", "intersection");
    buf_free(&b);
    arena_free(&a);
}

/* typed's merge_test "set": the order a merged set takes (lhs, rhs, out). */
static void test_merge_order(void)
{
    static const char *const cases[][3] = {
        {"a,b,c", "a,b", "a,b,c"},
        {"a,b", "a,b,c", "a,b,c"},
        {"a,b", "b,a", "b,a"},
        {"a,b,c", "d,e,f", "a,b,c,d,e,f"},
        {"a,b,c", "c,d,e,f", "a,b,c,d,e,f"},
        {"a,b,c,g,f", "c,d,e,f", "a,b,c,g,d,e,f"},
        {"a,b,c", "d,e,f,x,y,z", "a,b,c,d,e,f,x,y,z"},
        {"c,d,e,f", "a,c,e", "a,c,d,e,f"},
        {"a,b,c,x,y,z", "d,e,f", "a,b,c,x,y,z,d,e,f"},
        {"a,b,c,x,y,z", "d,e,f,x,y,z", "a,b,c,d,e,f,x,y,z"},
        {"c,a,g,f", "c,f,a,g", "c,f,a,g"},
        {"a,b,c,d", "d,e,f,a", "b,c,d,e,f,a"},
        {"c,d,e,f,g,h,i,j", "2,h,3,e,4,k,l", "c,d,f,g,2,h,i,j,3,e,4,k,l"},
        {"a,b,c,d,e,f,g,h,i,j", "1,b,2,h,3,e,4,k,l", "a,1,b,c,d,f,g,2,h,i,j,3,e,4,k,l"},
        {"a,b,b", "c", "a,b,b,c"},
        {"a,b,b", "b", "a,b"},
        {"a,b,b", "a", "a,b,b"},
        {"a,b,c,d,e,c", "1,b,2,e,d", "a,1,b,c,2,e,c,d"},
        {"a,b,c,d,e,c", "1,b,2,c,e,d", "a,1,b,2,c,e,d"},
        {"a,a,b,b", "b,c,d", "a,a,b,c,d"},
        {"c,a,g,f,c,a", "c,f,a,g", "c,f,a,g"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *y[2];
        for (int k = 0; k < 2; k++) {
            struct buf b = {0};
            buf_puts(&b, "{\"metadata\":{\"name\":\"x\",\"finalizers\":[");
            char *list = xstrdup(cases[i][k]), *save = NULL;
            int first = 1;
            for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                buf_printf(&b, "%s\"%s\"", first ? "" : ",", t);
                first = 0;
            }
            free(list);
            buf_puts(&b, "]}}");
            y[k] = buf_take(&b);
        }
        ProtobufCMessage *l = pod(y[0]), *r = pod(y[1]);
        struct arena a = {0};
        struct walk w = {.a = &a, .strict = 1};
        int rc = walk_merge(&w, l, r);
        const Coracle__V1__ObjectMeta *m = ((Coracle__V1__Pod *)l)->metadata;
        struct buf got = {0};
        for (size_t j = 0; j < m->n_finalizers; j++)
            buf_printf(&got, "%s%s", j ? "," : "", m->finalizers[j]);
        buf_puts(&got, "");
        ok(rc == 0 && !strcmp(got.p, cases[i][2]), "merge [%s] with [%s]: [%s] (got [%s])",
           cases[i][0], cases[i][1], cases[i][2], got.p);
        buf_free(&got);
        free(w.err);
        arena_free(&a);
        free_msg(l);
        free_msg(r);
        free(y[0]);
        free(y[1]);
    }
}

/* --------------------------------------------------------------- apply */

#define POD(meta, spec)                                                                            \
    "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\"" meta "},\"spec\":{" spec "}}"
#define MAIN(image) "{\"name\":\"main\",\"image\":\"" image "\"}"

static void test_apply_create(void)
{
    struct kssa_err e;
    ProtobufCMessage *o =
        apply(NULL, POD(",\"labels\":{\"app\":\"web\"}", "\"containers\":[" MAIN("busybox:1") "]"),
              "kubectl", 0, &e);
    ok(o != NULL, "apply creates");
    if (!o)
        return;
    is_mf(o,
          "kubectl/Apply: {\"f:metadata\":{\"f:labels\":{\"f:app\":{}}},\"f:spec\":{"
          "\"f:containers\":{\"k:{\\\"name\\\":\\\"main\\\"}\":{\".\":{},\"f:image\":{},"
          "\"f:name\":{}}}}}",
          "the applied fields, name and namespace stripped");
    const Coracle__V1__ManagedFieldsEntry *en = ((Coracle__V1__Pod *)o)->metadata->managedfields[0];
    ok(en->time && en->time->seconds == NOW && !strcmp(en->apiversion, "v1") &&
           !strcmp(en->fieldstype, "FieldsV1"),
       "entry: time, apiVersion, fieldsType");
    Coracle__V1__Pod *p = (void *)o;
    ok(p->spec->n_containers == 1 && !strcmp(p->spec->containers[0]->image, "busybox:1"),
       "the object is the config");

    /* the same config again: nothing changes, the time stays */
    ProtobufCMessage *o2 =
        apply(o, POD(",\"labels\":{\"app\":\"web\"}", "\"containers\":[" MAIN("busybox:1") "]"),
              "kubectl", 0, &e);
    ok(o2 && walk_equal(o, o2), "re-apply: unchanged");
    free_msg(o2);
    free_msg(o);
}

static void test_update_and_conflicts(void)
{
    struct kssa_err e;
    ProtobufCMessage *nw =
        pod(POD(",\"labels\":{\"app\":\"web\"}", "\"containers\":[" MAIN("busybox:1") "]"));
    kssa_update(NULL, nw, "kubectl-client-side-apply", &OPTS, NOW);
    is_mf(nw,
          "kubectl-client-side-apply/Update: {\"f:metadata\":{\"f:labels\":{\".\":{},"
          "\"f:app\":{}}},\"f:spec\":{\"f:containers\":{\".\":{},\"k:{\\\"name\\\":\\\"main\\\"}"
          "\":{\".\":{},\"f:image\":{},\"f:name\":{}}}}}",
          "create: every field to the creator, added maps and items as members too");

    ProtobufCMessage *o =
        apply(nw, POD("", "\"containers\":[" MAIN("busybox:2") "]"), "other", 0, &e);
    ok(!o && e.code == 409, "changing another manager's field: 409");
    is_str(e.message,
           "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: "
           ".spec.containers[name=\"main\"].image",
           "Kubernetes' message");
    ok(e.ncauses == 1 && !strcmp(e.causes[0].field, ".spec.containers[name=\"main\"].image") &&
           !strcmp(e.causes[0].message, "conflict with \"kubectl-client-side-apply\" using v1"),
       "the cause names field and manager");
    kssa_err_free(&e);

    o = apply(nw, POD("", "\"containers\":[" MAIN("busybox:1") "]"), "other", 0, &e);
    ok(o != NULL, "the same values: no conflict, shared ownership");
    free_msg(o);

    o = apply(nw, POD("", "\"containers\":[" MAIN("busybox:2") "]"), "other", 1, &e);
    ok(o && !strcmp(((Coracle__V1__Pod *)o)->spec->containers[0]->image, "busybox:2"),
       "force applies");
    is_mf(o,
          "other/Apply: {\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":\\\"main\\\"}\":{\".\":{},"
          "\"f:image\":{},\"f:name\":{}}}}}\n"
          "kubectl-client-side-apply/Update: {\"f:metadata\":{\"f:labels\":{\".\":{},"
          "\"f:app\":{}}},\"f:spec\":{\"f:containers\":{\".\":{},\"k:{\\\"name\\\":\\\"main\\\"}"
          "\":{\".\":{},\"f:name\":{}}}}}",
          "force takes the field from the other manager");

    /* an update moves ownership to the writer */
    ProtobufCMessage *up = pb_clone(o);
    Coracle__V1__Pod *pp = (void *)up;
    free(pp->spec->containers[0]->image);
    pp->spec->containers[0]->image = xstrdup("busybox:3");
    kssa_update(o, up, "kubectl-edit", &OPTS, NOW + 5);
    is_mf(up,
          "other/Apply: {\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":\\\"main\\\"}\":{\".\":{},"
          "\"f:name\":{}}}}}\n"
          "kubectl-client-side-apply/Update: {\"f:metadata\":{\"f:labels\":{\".\":{},"
          "\"f:app\":{}}},\"f:spec\":{\"f:containers\":{\".\":{},\"k:{\\\"name\\\":\\\"main\\\"}"
          "\":{\".\":{},\"f:name\":{}}}}}\n"
          "kubectl-edit/Update: {\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":\\\"main\\\"}\":{"
          "\"f:image\":{}}}}}",
          "update: the changed field moves to the writer");

    /* two managers, two fields: grouped by manager */
    ProtobufCMessage *up2 = pb_clone(up);
    pp = (void *)up2;
    pp->spec->has_activedeadlineseconds = 1;
    pp->spec->activedeadlineseconds = 30;
    kssa_update(up, up2, "ctl", &OPTS, NOW + 6);
    ProtobufCMessage *bad =
        apply(up2, POD("", "\"activeDeadlineSeconds\":10,\"containers\":[" MAIN("busybox:4") "]"),
              "x", 0, &e);
    ok(!bad && e.ncauses == 2, "two conflicts");
    is_str(e.message,
           "Apply failed with 2 conflicts: conflicts with \"ctl\" using v1:\n"
           "- .spec.activeDeadlineSeconds\n"
           "conflicts with \"kubectl-edit\" using v1:\n"
           "- .spec.containers[name=\"main\"].image",
           "several conflicts: one group per manager, in order");
    kssa_err_free(&e);
    free_msg(up2);
    free_msg(up);
    free_msg(o);
    free_msg(nw);
}

static void test_remove_unapplied(void)
{
    struct kssa_err e;
    ProtobufCMessage *a = apply(NULL,
                                POD(",\"labels\":{\"app\":\"web\",\"tier\":\"x\"}",
                                    "\"containers\":[" MAIN("i") ",{\"name\":\"side\",\"image\":"
                                                                 "\"s\"}]"),
                                "a", 0, &e);
    ProtobufCMessage *b = apply(
        a, POD(",\"labels\":{\"app\":\"web\"}", "\"containers\":[" MAIN("i") "]"), "a", 0, &e);
    char *j = yaml_of(b);
    ok(b && !strstr(j, "tier") && !strstr(j, "side"),
       "what the manager applied before and no longer applies goes");
    free(j);
    is_mf(b,
          "a/Apply: {\"f:metadata\":{\"f:labels\":{\"f:app\":{}}},\"f:spec\":{\"f:containers\":{"
          "\"k:{\\\"name\\\":\\\"main\\\"}\":{\".\":{},\"f:image\":{},\"f:name\":{}}}}}",
          "and its set shrinks");

    /* another applier shares "tier": it stays */
    ProtobufCMessage *c = apply(a, POD(",\"labels\":{\"tier\":\"x\"}", ""), "b", 0, &e);
    ProtobufCMessage *d = apply(
        c, POD(",\"labels\":{\"app\":\"web\"}", "\"containers\":[" MAIN("i") "]"), "a", 0, &e);
    j = yaml_of(d);
    ok(d && strstr(j, "\"tier\":\"x\"") && !strstr(j, "side"),
       "a field another manager owns stays");
    free(j);
    free_msg(a);
    free_msg(b);
    free_msg(c);
    free_msg(d);
}

static void test_keys_and_sets(void)
{
    struct kssa_err e;
    ProtobufCMessage *o = apply(
        NULL,
        "{\"metadata\":{\"name\":\"w\",\"finalizers\":[\"a/b\",\"c\"]},\"spec\":{\"containers\":[{"
        "\"name\":\"m\",\"image\":\"i\",\"ports\":[{\"containerPort\":80},{\"containerPort\":53,"
        "\"protocol\":\"UDP\"}],\"env\":[{\"name\":\"X\",\"value\":\"1\"}]}]}}",
        "k", 0, &e);
    is_mf(o,
          "k/Apply: {\"f:metadata\":{\"f:finalizers\":{\"v:\\\"a/b\\\"\":{},\"v:\\\"c\\\"\":{}}},"
          "\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":\\\"m\\\"}\":{\".\":{},\"f:env\":{"
          "\"k:{\\\"name\\\":\\\"X\\\"}\":{\".\":{},\"f:name\":{},\"f:value\":{}}},\"f:image\":{},"
          "\"f:name\":{},\"f:ports\":{\"k:{\\\"containerPort\\\":53,\\\"protocol\\\":\\\"UDP\\\"}\""
          ":{\".\":{},\"f:containerPort\":{},\"f:protocol\":{}},\"k:{\\\"containerPort\\\":80,"
          "\\\"protocol\\\":\\\"TCP\\\"}\":{\".\":{},\"f:containerPort\":{}}}}}}}",
          "sets by value, list maps by their keys (protocol defaults to TCP), numbers in order");

    /* a second applier adds an item: merged by key, the live order kept */
    ProtobufCMessage *o2 =
        apply(o,
              "{\"metadata\":{\"name\":\"w\"},\"spec\":{\"containers\":[{\"name\":\"m\",\"env\":[{"
              "\"name\":\"Y\",\"value\":\"2\"}]},{\"name\":\"n\",\"image\":\"j\"}]}}",
              "k2", 0, &e);
    const Coracle__V1__Pod *p = (const void *)o2;
    ok(o2 && p->spec->n_containers == 2 && !strcmp(p->spec->containers[0]->name, "m") &&
           p->spec->containers[0]->n_env == 2 && !strcmp(p->spec->containers[0]->image, "i"),
       "items merged by key");

    ProtobufCMessage *dup =
        apply(o,
              "{\"metadata\":{\"name\":\"w\"},\"spec\":{\"containers\":[{\"name\":\"m\"},{\"name\":"
              "\"m\"}]}}",
              "k3", 0, &e);
    ok(!dup && e.code == 400, "duplicate keys in a config: 400");
    is_str(e.message,
           "failed to create typed patch object (/w; /v1, Kind=Pod): .spec.containers: duplicate "
           "entries for key [name=\"m\"]",
           "Kubernetes' message");
    kssa_err_free(&e);
    dup = apply(o, "{\"metadata\":{\"name\":\"w\"},\"spec\":{\"containers\":[{\"image\":\"x\"}]}}",
                "k3", 0, &e);
    ok(!dup && e.code == 400 && strstr(e.message, "omits key field \"name\""),
       "an item without its key: 400 (%s)", e.message);
    kssa_err_free(&e);

    ProtobufCMessage *c = pod("{\"metadata\":{\"name\":\"w\",\"managedFields\":[{\"manager\":"
                              "\"x\",\"operation\":\"Apply\",\"apiVersion\":\"v1\",\"fieldsType\":"
                              "\"FieldsV1\",\"fieldsV1\":{}}]}}");
    ProtobufCMessage *out;
    ok(kssa_apply(o, c, "k", 0, &OPTS, NOW, &out, &e) < 0 && e.code == 400 &&
           !strcmp(e.message, "metadata.managedFields must be nil"),
       "managedFields in a config: 400");
    kssa_err_free(&e);
    free_msg(c);
    free_msg(o2);
    free_msg(o);
}

static void test_update_rules(void)
{
    struct kssa_err e;
    ProtobufCMessage *o = apply(NULL, POD("", "\"containers\":[" MAIN("i") "]"), "a", 0, &e);
    /* a client sends managedFields: valid ones are kept */
    ProtobufCMessage *nw = pb_clone(o);
    Coracle__V1__ManagedFieldsEntry *en = ((Coracle__V1__Pod *)nw)->metadata->managedfields[0];
    free(en->manager);
    en->manager = xstrdup("renamed");
    kssa_update(o, nw, "w", &OPTS, NOW);
    char *got = mf(nw);
    ok(strstr(got, "renamed/Apply") && !strstr(got, "\na/"), "valid sent managedFields are kept");
    free(got);
    free_msg(nw);

    /* invalid ones: the stored ones stay */
    nw = pb_clone(o);
    en = ((Coracle__V1__Pod *)nw)->metadata->managedfields[0];
    free(en->operation);
    en->operation = xstrdup("Bogus");
    kssa_update(o, nw, "w", &OPTS, NOW);
    got = mf(nw);
    ok(!strncmp(got, "a/Apply", 7), "invalid sent managedFields: the stored ones");
    free(got);
    free_msg(nw);

    /* one empty entry resets */
    nw = pb_clone(o);
    Coracle__V1__ObjectMeta *m = ((Coracle__V1__Pod *)nw)->metadata;
    for (size_t i = 0; i < m->n_managedfields; i++)
        protobuf_c_message_free_unpacked(&m->managedfields[i]->base, NULL);
    m->n_managedfields = 1;
    m->managedfields[0] = xmalloc(sizeof(*m->managedfields[0]));
    coracle__v1__managed_fields_entry__init(m->managedfields[0]);
    kssa_update(o, nw, "w", &OPTS, NOW);
    is_mf(nw, "", "one empty entry clears them (nothing changed: no entry)");
    free_msg(nw);

    /* an object stored without managedFields stays without */
    ProtobufCMessage *old = pod(POD(",\"uid\":\"u1\"", "\"containers\":[" MAIN("i") "]"));
    nw = pb_clone(old);
    ((Coracle__V1__Pod *)nw)->spec->containers[0]->image[0] = 'j';
    kssa_update(old, nw, "w", &OPTS, NOW);
    is_mf(nw, "", "no managedFields before: none after an update");
    free_msg(nw);
    /* but an apply gives what is there to "before-first-apply" */
    ProtobufCMessage *x = apply(old, POD("", "\"containers\":[" MAIN("k") "]"), "a", 0, &e);
    ok(!x && e.code == 409 && strstr(e.message, "conflict with \"before-first-apply\" using v1"),
       "apply onto an untracked object conflicts with before-first-apply");
    kssa_err_free(&e);

    /* a status update: its own entry, the subresource named */
    struct kssa_opts st = {"v1", "status", (const char *const[]){"spec", NULL}};
    ProtobufCMessage *s1 = pb_clone(o);
    Coracle__V1__Pod *sp = (void *)s1;
    if (!sp->status) {
        sp->status = xmalloc(sizeof(*sp->status));
        coracle__v1__pod_status__init(sp->status);
    }
    sp->status->phase = xstrdup("Running");
    kssa_update(o, s1, "kubelet", &st, NOW);
    got = mf(s1);
    ok(strstr(got, "kubelet/Update/status: {\"f:status\":{\".\":{},\"f:phase\":{}}}") != NULL,
       "subresource entry (%s)", got);
    free(got);

    /* at most 10 Update entries */
    ProtobufCMessage *cur = pb_clone(o);
    for (int i = 0; i < 12; i++) {
        ProtobufCMessage *n2 = pb_clone(cur);
        char lbl[16], who[16];
        snprintf(lbl, sizeof(lbl), "l%d", i);
        snprintf(who, sizeof(who), "w%02d", i);
        Coracle__V1__ObjectMeta *mm = ((Coracle__V1__Pod *)n2)->metadata;
        mm->labels = xrealloc(mm->labels, (mm->n_labels + 1) * sizeof(*mm->labels));
        mm->labels[mm->n_labels] = xmalloc(sizeof(**mm->labels));
        coracle__v1__object_meta__labels_entry__init(mm->labels[mm->n_labels]);
        mm->labels[mm->n_labels]->key = xstrdup(lbl);
        mm->labels[mm->n_labels++]->value = xstrdup("v");
        kssa_update(cur, n2, who, &OPTS, NOW + i);
        free_msg(cur);
        cur = n2;
    }
    got = mf(cur);
    ok(strstr(got, "ancient-changes/Update: {\"f:metadata\":{\"f:labels\":{\".\":{},\"f:l0\":{},"
                   "\"f:l1\":{},\"f:l2\":{}}}}") &&
           !strstr(got, "w00") && !strstr(got, "w02") && strstr(got, "w03") &&
           ((Coracle__V1__Pod *)cur)->metadata->n_managedfields == 11,
       "the oldest Update entries merge into ancient-changes");
    free(got);
    free_msg(cur);
    free_msg(s1);
    free_msg(old);
    free_msg(o);
}

static void test_last_applied(void)
{
    struct kssa_err e;
    /* kubectl apply (client side) created it */
    const char *la = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\","
                     "\"namespace\":\"default\"},\"spec\":{\"containers\":[{\"name\":\"main\","
                     "\"image\":\"busybox:1\"}]}}";
    char *q = json_quote(la);
    char *y = xasprintf("{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\","
                        "\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":"
                        "%s}},\"spec\":{\"containers\":[" MAIN("busybox:1") "]}}",
                        q);
    free(q);
    ProtobufCMessage *live = pod(y);
    free(y);
    kssa_update(NULL, live, "kubectl-client-side-apply", &OPTS, NOW);
    ProtobufCMessage *o =
        apply(live, POD("", "\"containers\":[" MAIN("busybox:2") "]"), "kubectl", 0, &e);
    ok(o != NULL, "kubectl takes over what its last-applied annotation says without conflict");
    char *j = o ? yaml_of(o) : NULL;
    ok(j && strstr(j, "busybox:2\\\"}]}}") && !strstr(j, "busybox:1"),
       "and the annotation follows the applied config");
    free(j);
    free_msg(o);
    o = apply(live, POD("", "\"containers\":[" MAIN("busybox:2") "]"), "someone", 0, &e);
    ok(!o && e.code == 409, "another manager still conflicts");
    kssa_err_free(&e);
    free_msg(live);
}

/* Another group: the entries carry the kind's apiVersion. */
static void test_lease(void)
{
    const char *y = "{\"metadata\":{\"name\":\"n1\",\"namespace\":\"kube-node-lease\"},"
                    "\"spec\":{\"holderIdentity\":\"n1\",\"leaseDurationSeconds\":40}}";
    char *err = NULL;
    ProtobufCMessage *l = kobj_parse_msg("t", y, strlen(y), &coracle__v1__lease__descriptor, &err);
    kssa_update(NULL, l, "kubelet", NULL, NOW);
    const Coracle__V1__ObjectMeta *m = ((Coracle__V1__Lease *)l)->metadata;
    ok(m->n_managedfields == 1 &&
           !strcmp(m->managedfields[0]->apiversion, "coordination.k8s.io/v1"),
       "apiVersion from the kind");
    ProtobufCMessage *c = pb_clone(l), *out = NULL;
    Coracle__V1__Lease *cl = (void *)c;
    for (size_t i = 0; i < cl->metadata->n_managedfields; i++)
        protobuf_c_message_free_unpacked(&cl->metadata->managedfields[i]->base, NULL);
    cl->metadata->n_managedfields = 0;
    cl->spec->leasedurationseconds = 10;
    struct kssa_err e;
    ok(kssa_apply(l, c, "x", 0, NULL, NOW, &out, &e) < 0 &&
           !strcmp(e.message, "Apply failed with 1 conflict: conflict with \"kubelet\" using "
                              "coordination.k8s.io/v1: .spec.leaseDurationSeconds"),
       "conflict names the group version (%s)", e.message);
    kssa_err_free(&e);
    free_msg(c);
    free_msg(l);
    free(err);
}

/* --------------------------------------------------------------- kobj */

static void test_kobj(void)
{
    const char *yaml = "apiVersion: v1\n"
                       "kind: Pod\n"
                       "metadata:\n"
                       "  name: web\n"
                       "  managedFields:\n"
                       "  - apiVersion: v1\n"
                       "    fieldsType: FieldsV1\n"
                       "    fieldsV1:\n"
                       "      f:metadata:\n"
                       "        f:labels:\n"
                       "          .: {}\n"
                       "          f:app: {}\n"
                       "      f:spec:\n"
                       "        f:containers:\n"
                       "          k:{\"name\":\"main\"}:\n"
                       "            .: {}\n"
                       "            f:image: {}\n"
                       "    manager: kubectl\n"
                       "    operation: Apply\n"
                       "    time: \"2026-12-07T06:33:38Z\"\n";
    struct kobjs objs = {0};
    char *err = NULL;
    ok(kobj_parse("t.yaml", yaml, strlen(yaml), &objs, &err) == 0 && objs.n == 1,
       "managedFields parse (%s)", err ? err : "ok");
    if (objs.n != 1)
        return;
    const Coracle__V1__ObjectMeta *m = ((Coracle__V1__Pod *)objs.v[0].msg)->metadata;
    const char *raw = "{\"f:metadata\":{\"f:labels\":{\".\":{},\"f:app\":{}}},\"f:spec\":{"
                      "\"f:containers\":{\"k:{\\\"name\\\":\\\"main\\\"}\":{\".\":{},"
                      "\"f:image\":{}}}}}";
    ok(m->n_managedfields == 1 && m->managedfields[0]->fieldsv1 &&
           m->managedfields[0]->fieldsv1->raw.len == strlen(raw) &&
           !memcmp(m->managedfields[0]->fieldsv1->raw.data, raw, strlen(raw)),
       "fieldsV1 holds the object as compact JSON");
    char *js = kobj_emit(&kind_pod, objs.v[0].msg, KOBJ_FMT_JSON_COMPACT);
    ok(strstr(js, "\"fieldsV1\":{\"f:metadata\":{\"f:labels\":{\".\":{},\"f:app\":{}}}") != NULL,
       "JSON: fieldsV1 is the embedded object");
    char *ys = kobj_emit(&kind_pod, objs.v[0].msg, KOBJ_FMT_YAML);
    ok(strstr(ys, "    fieldsV1:\n      f:metadata:\n        f:labels:\n          .: {}\n") != NULL,
       "YAML: fieldsV1 as mappings");
    /* both read back to the same bytes */
    const char *outs[] = {js, ys};
    for (size_t i = 0; i < 2; i++) {
        struct kobjs again = {0};
        ok(kobj_parse("o", outs[i], strlen(outs[i]), &again, &err) == 0 && again.n == 1 &&
               pb_equal(again.v[0].msg, objs.v[0].msg),
           "%s round trip", i ? "YAML" : "JSON");
        kobjs_free(&again);
    }
    free(js);
    free(ys);
    kobjs_free(&objs);
    const char *badv1 = "{\"metadata\":{\"managedFields\":[{\"fieldsV1\":\"x\"}]}}";
    ProtobufCMessage *bad =
        kobj_parse_msg("t", badv1, strlen(badv1), &coracle__v1__pod__descriptor, &err);
    ok(!bad && err && strstr(err, "fieldsV1"), "fieldsV1 must be a mapping (%s)", err);
    free(err);
}

/*
 * Creates of one shape share their entry (a cache by shape); another shape
 * (a label more, another item key) does not. The truth: each object alone,
 * with a reset list of its own (the cache tells lists apart by address).
 */
static void test_create_shapes(void)
{
    static const char *const objs[] = {
        POD(",\"labels\":{\"tier\":\"a\"}", "\"containers\":[" MAIN("busybox:1") "]"),
        POD(",\"labels\":{\"tier\":\"b\"}", "\"containers\":[" MAIN("other:2") "]"),
        POD(",\"labels\":{\"tier\":\"a\",\"x\":\"y\"}", "\"containers\":[" MAIN("busybox:1") "]"),
        POD(",\"labels\":{\"tier\":\"a\"}",
            "\"containers\":[{\"name\":\"side\",\"image\":\"busybox\"}]"),
    };
    static const char *const shared[] = {"status", NULL};
    static const char *const own[4][2] = {
        {"status", NULL}, {"status", NULL}, {"status", NULL}, {"status", NULL}};
    char *got[4];
    for (size_t i = 0; i < 4; i++) {
        ProtobufCMessage *m = pod(objs[i]);
        struct kssa_opts o = {"v1", NULL, shared};
        kssa_update(NULL, m, "c", &o, NOW);
        got[i] = mf(m);
        free_msg(m);
    }
    for (size_t i = 0; i < 4; i++) {
        ProtobufCMessage *m = pod(objs[i]);
        struct kssa_opts o = {"v1", NULL, own[i]};
        kssa_update(NULL, m, "c", &o, NOW);
        is_mf(m, got[i], "a create's entry by shape is the one the walk makes");
        free_msg(m);
    }
    is_str(got[0], got[1], "two values, one shape: one field set");
    ok(strcmp(got[0], got[2]) && strcmp(got[0], got[3]),
       "a label more or another item key: another field set");
    for (size_t i = 0; i < 4; i++)
        free(got[i]);
}

/* ------------------------------------------------- the cache by shape */

static const char *pick(const char *const *v, size_t n)
{
    return v[rnd() % n];
}
#define PICK(...)                                                                                  \
    pick((const char *const[]){__VA_ARGS__}, ARRAY_SIZE(((const char *[]){__VA_ARGS__})))

/* A pod of a few parts, each there or not, its values and keys from small pools. */
static char *shaped_pod(void)
{
    struct buf b = {0};
    buf_puts(&b, "{\"metadata\":{\"generateName\":\"p-\",\"namespace\":\"default\",\"labels\":{");
    const char *sep = "";
    for (size_t i = 0; i < 3; i++) {
        if (rnd() % 2)
            continue;
        buf_printf(&b, "%s\"%s\":\"%s\"", sep, (const char *[]){"app", "tier", "x"}[i],
                   PICK("a", "b"));
        sep = ",";
    }
    buf_puts(&b, "}");
    if (rnd() % 4 == 0)
        buf_printf(&b, ",\"annotations\":{\"note\":\"%s\"}", PICK("1", "2"));
    buf_puts(&b, "},\"spec\":{\"containers\":[");
    for (size_t c = 0, nc = 1 + rnd() % 2; c < nc; c++) {
        buf_printf(&b, "%s{\"name\":\"%s\",\"image\":\"%s\",\"ports\":[", c ? "," : "",
                   PICK("web", "side"), PICK("nginx", "busybox:1"));
        for (size_t p = 0, np = rnd() % 3; p < np; p++)
            buf_printf(&b, "%s{\"containerPort\":%s%s}", p ? "," : "", PICK("80", "443"),
                       PICK("", ",\"protocol\":\"TCP\"", ",\"protocol\":\"UDP\""));
        buf_puts(&b, "]");
        if (rnd() % 3 == 0)
            buf_printf(&b, ",\"env\":[{\"name\":\"%s\",\"value\":\"%s\"}]", PICK("A", "B"),
                       PICK("1", "2"));
        buf_printf(&b, ",\"resources\":{\"requests\":{%s}}",
                   PICK("", "\"cpu\":\"100m\"", "\"cpu\":\"1\",\"memory\":\"64Mi\""));
        if (rnd() % 4 == 0)
            buf_puts(&b, PICK(",\"livenessProbe\":{\"httpGet\":{\"path\":\"/\",\"port\":80}}",
                              ",\"livenessProbe\":{\"exec\":{\"command\":[\"true\"]}}"));
        buf_puts(&b, "}");
    }
    buf_puts(&b, "]");
    if (rnd() % 3 == 0)
        buf_printf(&b, ",\"nodeSelector\":{\"%s\":\"y\"}", PICK("zone", "disk"));
    if (rnd() % 3 == 0)
        buf_printf(&b, ",\"volumes\":[{\"name\":\"%s\",%s}]", PICK("v", "w"),
                   PICK("\"emptyDir\":{}", "\"configMap\":{\"name\":\"c\"}",
                        "\"configMap\":{\"name\":\"d\"}"));
    if (rnd() % 3 == 0)
        buf_printf(&b, ",\"restartPolicy\":\"%s\"", PICK("Always", "Never"));
    buf_puts(&b, "}");
    if (rnd() % 3 == 0)
        buf_printf(&b, ",\"status\":{\"phase\":\"%s\"}", PICK("Pending", "Running"));
    buf_puts(&b, "}");
    return buf_take(&b);
}

/* Another pod near m: its bytes mutated (NULL if they no longer decode). */
static ProtobufCMessage *near_pod(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m), cap = n + 64;
    uint8_t *b = xmalloc(cap);
    protobuf_c_message_pack(m, b);
    for (size_t k = 1 + rnd() % 3; k > 0; k--)
        n = mutate(b, n, cap);
    ProtobufCMessage *o = protobuf_c_message_unpack(&coracle__v1__pod__descriptor, NULL, n, b);
    free(b);
    return o;
}

/* The entry kssa_update makes for a create of m (with or without the cache), malloc'd. */
static char *create_entry(const ProtobufCMessage *m, int cached, const struct kssa_opts *o)
{
    ProtobufCMessage *c = pb_clone(m);
    if (cached)
        kssa_update(NULL, c, "t", o, NOW);
    else
        kssa_update_general(NULL, c, "t", o, NOW);
    char *s = mf(c);
    free_msg(c);
    return s;
}

/*
 * The cache of creates' entries by shape answers what the general path
 * answers, on pods whose shapes repeat with other values and keys
 * (shaped_pod), on random pods and on both's bytes mutated; and two
 * objects of one digest have one entry.
 */
static void test_shape_cache(void)
{
    enum { N = 900 };
    static const char *const reset[] = {"status", NULL};
    struct kssa_opts o = {"v1", NULL, reset};
    ProtobufCMessage **objs = xcalloc(N, sizeof(*objs));
    char **want = xcalloc(N, sizeof(*want));
    uint64_t(*dg)[2] = xcalloc(N, sizeof(*dg));
    size_t n = 0, wrong = 0, same = 0, clash = 0;
    while (n < N) {
        ProtobufCMessage *m;
        if (n % 3 == 0) {
            char *js = shaped_pod();
            m = pod(js);
            free(js);
        } else if (n % 3 == 1 && n % 9 != 1) {
            m = near_pod(objs[rnd() % n]);
        } else {
            m = rnd_msg(&coracle__v1__pod__descriptor, 3);
        }
        Coracle__V1__ObjectMeta *meta = m ? kind_meta(m) : NULL;
        if (meta && meta->n_managedfields) { /* a create without them: the cached path */
            for (size_t i = 0; i < meta->n_managedfields; i++)
                free_msg(&meta->managedfields[i]->base);
            meta->n_managedfields = 0;
        }
        if (!m)
            continue;
        objs[n] = m;
        want[n] = create_entry(m, 0, &o);
        for (int twice = 0; twice < 2; twice++) { /* the second is a hit */
            char *got = create_entry(m, 1, &o);
            if (strcmp(got, want[n]) && !wrong++)
                diag("object %zu: cached %s\nwant %s", n, got, want[n]);
            free(got);
        }
        walk_shape(m, dg[n]);
        n++;
    }
    ok(!wrong, "the cache's entry is the general path's (%d objects, %zu differ)", N, wrong);
    for (size_t i = 0; i < N; i++)
        for (size_t j = i + 1; j < N; j++) {
            if (dg[i][0] != dg[j][0] || dg[i][1] != dg[j][1])
                continue;
            same++;
            if (strcmp(want[i], want[j]) && !clash++)
                diag("objects %zu and %zu: one digest, entries %s\nand %s", i, j, want[i], want[j]);
        }
    ok(!clash, "one digest, one entry (%zu pairs of one digest)", same);
    ok(same > 1000, "shapes repeat with other values: %zu pairs", same);
    for (size_t i = 0; i < N; i++) {
        free_msg(objs[i]);
        free(want[i]);
    }
    free(objs);
    free(want);
    free(dg);
}

int main(void)
{
    test_sets();
    test_merge_order();
    test_apply_create();
    test_update_and_conflicts();
    test_remove_unapplied();
    test_keys_and_sets();
    test_update_rules();
    test_last_applied();
    test_lease();
    test_kobj();
    test_create_shapes();
    test_shape_cache();
    done_testing();
    return 0;
}
