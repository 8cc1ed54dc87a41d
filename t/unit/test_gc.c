/*
 * Unit tests for the garbage collector's graph without a server: owner
 * references as the table names them, virtual owners made for
 * references and dropped with their last dependent, a virtual owner
 * turning real, references changed and removed, a deleted owner kept as
 * gone while a dependent names it. Informer events are handed to the
 * handlers directly; no sync runs (the caches never sync).
 */
#include "config.h"
#include "tap.h"

#include "garbagecollector.c"

#include <event2/event.h>

static void test_refs(void)
{
    ok(ref_kind("apps/v1", "ReplicaSet") == &kind_replicaset, "apps/v1 ReplicaSet");
    ok(ref_kind("apps/v1beta2", "ReplicaSet") == &kind_replicaset, "another version, same group");
    ok(!ref_kind("extensions/v1beta1", "ReplicaSet"), "another group: unknown");
    ok(!ref_kind("v1", "pods") && !ref_kind("v1", "pod"), "a resource name is no kind");
    ok(ref_kind("v1", "Node") == &kind_node, "a cluster-scoped kind");
    ok(!ref_kind(NULL, NULL), "nothing named");

    Coracle__V1__OwnerReference r = CORACLE__V1__OWNER_REFERENCE__INIT;
    r.uid = "u1";
    r.kind = "ReplicaSet";
    r.apiversion = "apps/v1";
    r.name = "web";
    char *c = coords(&r, "ns");
    is_str(c, "u1|apps|ReplicaSet|ns|web", "coordinates: uid, group, kind, namespace, name");
    free(c);
    r.kind = "Node";
    r.apiversion = "v1";
    c = coords(&r, "ns");
    is_str(c, "u1||Node||web", "a cluster-scoped owner has no namespace");
    free(c);
}

static ProtobufCMessage *pod(const char *name, const char *uid, const char *owner_uid,
                             const char *owner_kind)
{
    Coracle__V1__Pod *p = xcalloc(1, sizeof(*p));
    coracle__v1__pod__init(p);
    p->metadata = xcalloc(1, sizeof(*p->metadata));
    coracle__v1__object_meta__init(p->metadata);
    p->metadata->name = xstrdup(name);
    p->metadata->namespace_ = xstrdup("ns");
    p->metadata->uid = xstrdup(uid);
    if (owner_uid) {
        Coracle__V1__OwnerReference *r = xcalloc(1, sizeof(*r));
        coracle__v1__owner_reference__init(r);
        r->uid = xstrdup(owner_uid);
        r->kind = xstrdup(owner_kind);
        r->apiversion = xstrdup(!strcmp(owner_kind, "ReplicaSet") ? "apps/v1" : "v1");
        r->name = xstrdup("owner");
        p->metadata->ownerreferences = xcalloc(1, sizeof(*p->metadata->ownerreferences));
        p->metadata->ownerreferences[0] = r;
        p->metadata->n_ownerreferences = 1;
    }
    return &p->base;
}

static ProtobufCMessage *replicaset(const char *name, const char *uid)
{
    Coracle__V1__ReplicaSet *rs = xcalloc(1, sizeof(*rs));
    coracle__v1__replica_set__init(rs);
    rs->metadata = xcalloc(1, sizeof(*rs->metadata));
    coracle__v1__object_meta__init(rs->metadata);
    rs->metadata->name = xstrdup(name);
    rs->metadata->namespace_ = xstrdup("ns");
    rs->metadata->uid = xstrdup(uid);
    return &rs->base;
}

static size_t deps(struct gc *gc, const char *uid)
{
    struct gnode *n = smap_get(gc->nodes, uid);
    size_t count = 0;
    for (const struct gedge *e = n ? n->deps : NULL; e; e = e->next)
        count++;
    return count;
}

static void test_graph(struct event_base *base)
{
    struct cm_cfg cfg = {.server = "127.0.0.1:1"};
    cm_t *cm = cm_new(base, &cfg);
    ctrl_t *c = cm_add(cm, &ctrl_garbagecollector);
    cm_start(cm);
    struct gc *gc = ctrl_state(c);
    inf_t *pods = cm_informer(cm, &kind_pod), *sets = cm_informer(cm, &kind_replicaset);
    ok(pods && sets && cm_informer(cm, &kind_node) && !cm_informer(cm, &kind_event) &&
           !cm_informer(cm, &kind_lease),
       "every kind watched but Events and Leases");

    ProtobufCMessage *a = pod("a", "pa", "rs1", "ReplicaSet");
    ProtobufCMessage *b = pod("b", "pb", "rs1", "ReplicaSet");
    on_add(pods, a, gc);
    on_add(pods, b, gc);
    struct gnode *o = smap_get(gc->nodes, "rs1");
    ok(o && !o->observed, "an owner referenced before it is seen: a virtual node");
    is_int(deps(gc, "rs1"), 2, "with both dependents");
    ok(o && !strcmp(o->ns, "ns") && !strcmp(node_kind(o), "ReplicaSet"),
       "named as the reference does");

    ProtobufCMessage *rs = replicaset("owner", "rs1");
    on_add(sets, rs, gc);
    o = smap_get(gc->nodes, "rs1");
    ok(o && o->observed && deps(gc, "rs1") == 2, "seen: real, its dependents kept");

    /* b lets go of its owner */
    ProtobufCMessage *b2 = pod("b", "pb", NULL, NULL);
    on_update(pods, b, b2, gc);
    is_int(deps(gc, "rs1"), 1, "a reference removed: one dependent less");
    struct gnode *nb = smap_get(gc->nodes, "pb");
    ok(nb && !nb->owners, "and the dependent links to no owner");

    /* the owner deleted: a tombstone while its dependent names it */
    on_delete(sets, rs, gc);
    o = smap_get(gc->nodes, "rs1");
    ok(o && o->gone && !o->observed && deps(gc, "rs1") == 1,
       "a deleted owner named by a dependent: kept as gone");
    ok(smap_get(gc->nodes, "pa") != NULL, "its dependent stays until collected");
    ProtobufCMessage *a2 = pod("a", "pa", NULL, NULL);
    on_update(pods, a, a2, gc);
    ok(!smap_get(gc->nodes, "rs1"), "named no more: the tombstone goes");

    /* a reference to an owner never seen: virtual, gone with its last dependent */
    ProtobufCMessage *x = pod("x", "px", "cm9", "ConfigMap");
    on_add(pods, x, gc);
    ok(smap_get(gc->nodes, "cm9") != NULL, "a virtual ConfigMap owner");
    on_delete(pods, x, gc);
    ok(!smap_get(gc->nodes, "cm9") && !smap_get(gc->nodes, "px"),
       "its only dependent deleted: the virtual owner goes too");
    is_int(smap_count(gc->nodes), 2, "a and b left");

    ProtobufCMessage *all[] = {a, a2, b, b2, rs, x};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        protobuf_c_message_free_unpacked(all[i], NULL);
    cm_free(cm);
}

int main(void)
{
    log_set_level(LOG_LVL_ERR);
    struct event_base *base = event_base_new();
    test_refs();
    test_graph(base);
    event_base_free(base);
    return done_testing();
}
