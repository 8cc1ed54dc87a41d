/*
 * Unit tests for the Deployment controller's arithmetic
 * (deployment_util.c): surge and unavailability fenceposts with
 * Kubernetes' rounding, the pod-template-hash's alphabet and its
 * stability, template equality ignoring the hash label, map order and
 * empty parts, the replicas and revision annotations, proportions, the
 * orderings and the conditions.
 */
#include "config.h"
#include "tap.h"

#include "deployment_int.h"
#include "pb.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static Coracle__V1__IntOrString *ios(const char *s, int32_t n)
{
    Coracle__V1__IntOrString *v = xmalloc(sizeof(*v));
    coracle__v1__int_or_string__init(v);
    v->has_type = 1;
    v->type = s ? 1 : 0;
    v->has_intval = !s;
    v->intval = n;
    v->strval = s ? xstrdup(s) : NULL;
    return v;
}

/* A Deployment of n replicas, RollingUpdate with surge/unavailable (NULL: unset). */
static Coracle__V1__Deployment *dep(int32_t n, Coracle__V1__IntOrString *surge,
                                    Coracle__V1__IntOrString *unavail)
{
    Coracle__V1__Deployment *d = xmalloc(sizeof(*d));
    coracle__v1__deployment__init(d);
    d->metadata = xmalloc(sizeof(*d->metadata));
    coracle__v1__object_meta__init(d->metadata);
    d->spec = xmalloc(sizeof(*d->spec));
    coracle__v1__deployment_spec__init(d->spec);
    d->spec->has_replicas = 1;
    d->spec->replicas = n;
    if (surge || unavail) {
        d->spec->strategy = xmalloc(sizeof(*d->spec->strategy));
        coracle__v1__deployment_strategy__init(d->spec->strategy);
        d->spec->strategy->type = xstrdup("RollingUpdate");
        d->spec->strategy->rollingupdate = xmalloc(sizeof(*d->spec->strategy->rollingupdate));
        coracle__v1__rolling_update_deployment__init(d->spec->strategy->rollingupdate);
        d->spec->strategy->rollingupdate->maxsurge = surge;
        d->spec->strategy->rollingupdate->maxunavailable = unavail;
    }
    return d;
}

static void fenceposts(void)
{
    Coracle__V1__Deployment *d = dep(10, NULL, NULL);
    is_int(dep_max_surge(d), 3, "default 25% of 10: surge 3 (rounded up)");
    is_int(dep_max_unavailable(d), 2, "default 25% of 10: unavailable 2 (rounded down)");
    protobuf_c_message_free_unpacked(&d->base, NULL);
    d = dep(3, ios(NULL, 1), ios(NULL, 0));
    is_int(dep_max_surge(d), 1, "surge 1");
    is_int(dep_max_unavailable(d), 0, "unavailable 0");
    protobuf_c_message_free_unpacked(&d->base, NULL);
    d = dep(3, ios("0%", 0), ios("10%", 0));
    is_int(dep_max_unavailable(d), 1, "both 0 after rounding: unavailable 1");
    protobuf_c_message_free_unpacked(&d->base, NULL);
    d = dep(2, ios(NULL, 0), ios(NULL, 5));
    is_int(dep_max_unavailable(d), 2, "unavailable capped at replicas");
    d->spec->strategy->type = xrealloc(d->spec->strategy->type, 9);
    strcpy(d->spec->strategy->type, "Recreate");
    is_int(dep_max_surge(d) + dep_max_unavailable(d), 0, "Recreate: neither");
    protobuf_c_message_free_unpacked(&d->base, NULL);
    int32_t v;
    Coracle__V1__IntOrString *bad = ios("ten", 0);
    ok(dep_scaled(bad, 10, true, &v) < 0, "a string without %% is refused");
    protobuf_c_message_free_unpacked(&bad->base, NULL);
}

static Coracle__V1__PodTemplateSpec *tmpl(const char *image, const char *l1, const char *l2)
{
    Coracle__V1__PodTemplateSpec *t = xmalloc(sizeof(*t));
    coracle__v1__pod_template_spec__init(t);
    t->metadata = xmalloc(sizeof(*t->metadata));
    coracle__v1__object_meta__init(t->metadata);
    const char *labels[] = {l1, l2};
    for (int i = 0; i < 2; i++)
        if (labels[i])
            dep_map_set((void ***)&t->metadata->labels, &t->metadata->n_labels,
                        &coracle__v1__object_meta__labels_entry__descriptor, labels[i], "x");
    t->spec = xmalloc(sizeof(*t->spec));
    coracle__v1__pod_spec__init(t->spec);
    t->spec->containers = xmalloc(sizeof(*t->spec->containers));
    t->spec->containers[0] = xmalloc(sizeof(**t->spec->containers));
    coracle__v1__container__init(t->spec->containers[0]);
    t->spec->containers[0]->name = xstrdup("c");
    t->spec->containers[0]->image = xstrdup(image);
    t->spec->n_containers = 1;
    return t;
}

static void hash(void)
{
    char a[16], b[16], c[16], d[16];
    Coracle__V1__PodTemplateSpec *t1 = tmpl("nginx", "app", "tier");
    Coracle__V1__PodTemplateSpec *t2 = tmpl("nginx", "tier", "app");
    Coracle__V1__PodTemplateSpec *t3 = tmpl("nginx:2", "app", "tier");
    int32_t one = 1;
    dep_template_hash(t1, NULL, a);
    dep_template_hash(t2, NULL, b);
    dep_template_hash(t3, NULL, c);
    dep_template_hash(t1, &one, d);
    ok(strspn(a, "bcdfghjklmnpqrstvwxz2456789") == strlen(a) && strlen(a) >= 6,
       "hash in SafeEncodeString's alphabet: %s", a);
    is_str(a, b, "labels in another order: the same hash");
    ok(strcmp(a, c) != 0, "another image: another hash");
    ok(strcmp(a, d) != 0, "a collision count: another hash");
    char digits[] = "0123456789";
    dep_safe_encode(digits);
    is_str(digits, "456789bcdf", "SafeEncodeString maps '0'..'9' as Kubernetes does");

    ok(dep_template_equal(t1, t2), "equal whatever the label order");
    ok(!dep_template_equal(t1, t3), "a different image differs");
    dep_map_set((void ***)&t3->metadata->labels, &t3->metadata->n_labels,
                &coracle__v1__object_meta__labels_entry__descriptor, DEP_HASH_LABEL, "abc");
    free(t3->spec->containers[0]->image);
    t3->spec->containers[0]->image = xstrdup("nginx");
    ok(dep_template_equal(t1, t3), "the hash label is ignored");
    t3->spec->containers[0]->resources = xmalloc(sizeof(*t3->spec->containers[0]->resources));
    coracle__v1__resource_requirements__init(t3->spec->containers[0]->resources);
    ok(dep_template_equal(t1, t3), "an empty part equals an absent one (resources: {})");
    dep_template_hash(t3, NULL, c);
    is_str(c, a, "and hashes the same");
    Coracle__V1__Container *ct = t3->spec->containers[0];
    ct->workingdir = xstrdup("");
    ct->has_tty = 1;
    t3->metadata->creationtimestamp = xmalloc(sizeof(Coracle__V1__Time));
    coracle__v1__time__init(t3->metadata->creationtimestamp);
    ok(dep_template_equal(t1, t3), "zero values written out (protobuf) equal absent ones (JSON)");
    t3->spec->base.unknown_fields = xmalloc(sizeof(ProtobufCMessageUnknownField));
    /* protobuf's bytes after the tag: an empty string, its length 0 */
    t3->spec->base.unknown_fields[0] =
        (ProtobufCMessageUnknownField){9, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, 1, xcalloc(1, 1)};
    t3->spec->base.n_unknown_fields = 1;
    ok(dep_template_equal(t1, t3), "fields proto/ does not know are left out");
    ct->tty = 1;
    ok(!dep_template_equal(t1, t3), "but tty: true differs");
    protobuf_c_message_free_unpacked(&t1->base, NULL);
    protobuf_c_message_free_unpacked(&t2->base, NULL);
    protobuf_c_message_free_unpacked(&t3->base, NULL);
}

static Coracle__V1__ReplicaSet *rs(const char *name, int32_t replicas, int64_t created,
                                   const char *rev)
{
    Coracle__V1__ReplicaSet *r = xmalloc(sizeof(*r));
    coracle__v1__replica_set__init(r);
    r->metadata = xmalloc(sizeof(*r->metadata));
    coracle__v1__object_meta__init(r->metadata);
    r->metadata->name = xstrdup(name);
    r->metadata->creationtimestamp = xmalloc(sizeof(Coracle__V1__Time));
    coracle__v1__time__init(r->metadata->creationtimestamp);
    r->metadata->creationtimestamp->has_seconds = 1;
    r->metadata->creationtimestamp->seconds = created;
    if (rev)
        dep_ann_set(r->metadata, DEP_REVISION, rev);
    r->spec = xmalloc(sizeof(*r->spec));
    coracle__v1__replica_set_spec__init(r->spec);
    r->spec->has_replicas = 1;
    r->spec->replicas = replicas;
    return r;
}

static void annotations(void)
{
    Coracle__V1__Deployment *d = dep(3, ios(NULL, 1), ios(NULL, 0));
    dep_ann_set(d->metadata, "kubernetes.io/change-cause", "set image");
    dep_ann_set(d->metadata, DEP_REVISION, "7");
    dep_ann_set(d->metadata, "kubectl.kubernetes.io/last-applied-configuration", "{}");
    Coracle__V1__ReplicaSet *r = rs("a", 0, 1, NULL);
    ok(dep_set_new_rs_ann(d, r, "1", false), "a new ReplicaSet's annotations set");
    is_str(dep_ann(r->metadata, DEP_REVISION), "1", "revision 1");
    is_str(dep_ann(r->metadata, DEP_DESIRED), "3", "desired-replicas 3");
    is_str(dep_ann(r->metadata, DEP_MAX), "4", "max-replicas 4 (3 + surge 1)");
    is_str(dep_ann(r->metadata, "kubernetes.io/change-cause"), "set image",
           "the Deployment's own annotations copied");
    ok(!dep_ann(r->metadata, "kubectl.kubernetes.io/last-applied-configuration"),
       "but not last-applied-configuration");
    ok(!dep_set_new_rs_ann(d, r, "1", true), "nothing to change the second time");
    ok(dep_set_new_rs_ann(d, r, "3", true), "rolled back to: revision 3");
    is_str(dep_ann(r->metadata, DEP_REVISION_HISTORY), "1", "revision-history 1");
    dep_set_new_rs_ann(d, r, "5", true);
    is_str(dep_ann(r->metadata, DEP_REVISION_HISTORY), "1,3", "revision-history 1,3");
    ok(!dep_set_new_rs_ann(d, r, "4", true), "a revision never goes down");
    is_int(dep_revision(r), 5, "dep_revision");
    protobuf_c_message_free_unpacked(&r->base, NULL);
    protobuf_c_message_free_unpacked(&d->base, NULL);
}

static void proportions(void)
{
    /* 5 old, 1 new, max-replicas 6 (5 + surge 1); scaled to 10: allowed 11 */
    Coracle__V1__Deployment *d = dep(10, ios(NULL, 1), ios(NULL, 0));
    Coracle__V1__ReplicaSet *old = rs("old", 5, 1, "1"), *nw = rs("new", 1, 2, "2");
    dep_set_replicas_ann(old, 5, 6);
    dep_set_replicas_ann(nw, 5, 6);
    int32_t p_old = dep_proportion(old, d, 5, 0);
    int32_t p_new = dep_proportion(nw, d, 5, p_old);
    is_int(p_old, 4, "old: 5*11/6 = 9.17 -> +4");
    is_int(p_new, 1, "new: 1*11/6 = 1.83 -> +1");
    d->spec->replicas = 0;
    is_int(dep_proportion(old, d, -6, 0), -5, "to 0: the whole size goes");
    Coracle__V1__ReplicaSet *v[] = {nw, old};
    qsort(v, 2, sizeof(*v), dep_by_creation);
    is_str(v[0]->metadata->name, "old", "by creation: oldest first");
    nw->spec->replicas = 5;
    qsort(v, 2, sizeof(*v), dep_by_size_newer);
    is_str(v[0]->metadata->name, "new", "equal size, scaling up: newer first");
    qsort(v, 2, sizeof(*v), dep_by_size_older);
    is_str(v[0]->metadata->name, "old", "equal size, scaling down: older first");
    protobuf_c_message_free_unpacked(&old->base, NULL);
    protobuf_c_message_free_unpacked(&nw->base, NULL);
    protobuf_c_message_free_unpacked(&d->base, NULL);
}

static void conditions(void)
{
    Coracle__V1__DeploymentStatus *st = xmalloc(sizeof(*st));
    coracle__v1__deployment_status__init(st);
    dep_cond_set(st, "Progressing", "True", "NewReplicaSetCreated", "m1", 100);
    dep_cond_set(st, "Progressing", "True", "ReplicaSetUpdated", "m2", 200);
    Coracle__V1__DeploymentCondition *c = dep_cond_get(st, "Progressing");
    ok(c && !strcmp(c->reason, "ReplicaSetUpdated") && c->lasttransitiontime->seconds == 100 &&
           c->lastupdatetime->seconds == 200,
       "same status: transition time kept, update time new");
    dep_cond_set(st, "Progressing", "True", "ReplicaSetUpdated", "m3", 300);
    is_str(dep_cond_get(st, "Progressing")->message, "m2", "same status and reason: unchanged");
    dep_cond_replace(st, "Progressing", "True", "ReplicaSetUpdated", "m3", 300);
    c = dep_cond_get(st, "Progressing");
    ok(c->lastupdatetime->seconds == 300 && c->lasttransitiontime->seconds == 100,
       "replaced: update time moves (progress), transition stays");
    dep_cond_set(st, "Progressing", "False", "ProgressDeadlineExceeded", "m4", 400);
    is_int(dep_cond_get(st, "Progressing")->lasttransitiontime->seconds, 400,
           "status changes: a new transition time");
    is_int(st->n_conditions, 1, "one condition per type");

    Coracle__V1__Deployment *d = dep(3, NULL, NULL);
    d->spec->has_progressdeadlineseconds = 1;
    d->spec->progressdeadlineseconds = 10;
    dep_cond_replace(st, "Progressing", "True", "ReplicaSetUpdated", "m", 100);
    ok(!dep_timed_out(d, st, 110), "not timed out at the deadline");
    ok(dep_timed_out(d, st, 111), "timed out past it");
    dep_cond_replace(st, "Progressing", "True", "NewReplicaSetAvailable", "m", 100);
    ok(!dep_timed_out(d, st, 1000), "a complete rollout never times out");
    protobuf_c_message_free_unpacked(&d->base, NULL);
    protobuf_c_message_free_unpacked(&st->base, NULL);
}

int main(void)
{
    fenceposts();
    hash();
    annotations();
    proportions();
    conditions();
    done_testing();
    return 0;
}
