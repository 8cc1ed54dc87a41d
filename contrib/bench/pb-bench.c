/*
 * pb-bench: coracle's protobuf codec (src/lib/pb.c) next to protobuf-c's,
 * on the objects the apiserver handles most: a pod as a client creates it
 * (the body of the create benchmark) and as it is stored (after admission's
 * defaults and the server's fields, with a status). For each: encode, and
 * decode + free (the free is protobuf-c's for both), in ns per call (best of
 * 7 rounds of -n calls each) and the ratio protobuf-c / pb.
 *
 *   pb-bench [-n CALLS]
 *
 * Prints one line per measurement, "codec <object> <op>: protobuf-c X ns,
 * pb Y ns, Zx", and checks first that both give the same bytes.
 */
#include "config.h"
#include "coracle.pb-c.h"
#include "pb.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile size_t sink;

static Coracle__V1__Quantity *qty(const char *s)
{
    Coracle__V1__Quantity *q = xmalloc(sizeof(*q));
    coracle__v1__quantity__init(q);
    q->string = xstrdup(s);
    return q;
}

static Coracle__V1__ResourceRequirements__RequestsEntry *req(const char *k, const char *v)
{
    Coracle__V1__ResourceRequirements__RequestsEntry *e = xmalloc(sizeof(*e));
    coracle__v1__resource_requirements__requests_entry__init(e);
    e->key = xstrdup(k);
    e->value = qty(v);
    return e;
}

/* The create benchmark's pod: name prefix, a label, one container, a port, requests. */
static Coracle__V1__Pod *client_pod(void)
{
    Coracle__V1__Pod *p = xmalloc(sizeof(*p));
    coracle__v1__pod__init(p);
    p->metadata = xmalloc(sizeof(*p->metadata));
    coracle__v1__object_meta__init(p->metadata);
    p->metadata->generatename = xstrdup("bench-");
    p->metadata->namespace_ = xstrdup("default");
    p->metadata->n_labels = 1;
    p->metadata->labels = xmalloc(sizeof(*p->metadata->labels));
    p->metadata->labels[0] = xmalloc(sizeof(**p->metadata->labels));
    coracle__v1__object_meta__labels_entry__init(p->metadata->labels[0]);
    p->metadata->labels[0]->key = xstrdup("app");
    p->metadata->labels[0]->value = xstrdup("bench");
    p->spec = xmalloc(sizeof(*p->spec));
    coracle__v1__pod_spec__init(p->spec);
    p->spec->n_containers = 1;
    p->spec->containers = xmalloc(sizeof(*p->spec->containers));
    Coracle__V1__Container *c = p->spec->containers[0] = xmalloc(sizeof(*c));
    coracle__v1__container__init(c);
    c->name = xstrdup("web");
    c->image = xstrdup("nginx:1.25");
    c->n_ports = 1;
    c->ports = xmalloc(sizeof(*c->ports));
    c->ports[0] = xmalloc(sizeof(**c->ports));
    coracle__v1__container_port__init(c->ports[0]);
    c->ports[0]->has_containerport = 1;
    c->ports[0]->containerport = 80;
    c->resources = xmalloc(sizeof(*c->resources));
    coracle__v1__resource_requirements__init(c->resources);
    c->resources->n_requests = 2;
    c->resources->requests = xmalloc(2 * sizeof(*c->resources->requests));
    c->resources->requests[0] = req("cpu", "100m");
    c->resources->requests[1] = req("memory", "64Mi");
    return p;
}

/* The same pod as the store holds it: admission's defaults, the server's fields, a status. */
static Coracle__V1__Pod *stored_pod(void)
{
    Coracle__V1__Pod *p = client_pod();
    Coracle__V1__ObjectMeta *m = p->metadata;
    m->name = xstrdup("bench-x7k2q");
    m->uid = xstrdup("0b6f2e1c-8a7d-4c55-9a3e-5f1d2c3b4a59");
    m->resourceversion = xstrdup("1234567");
    m->has_generation = 1;
    m->generation = 1;
    m->creationtimestamp = xmalloc(sizeof(*m->creationtimestamp));
    coracle__v1__time__init(m->creationtimestamp);
    m->creationtimestamp->has_seconds = 1;
    m->creationtimestamp->seconds = 1795000000;
    Coracle__V1__PodSpec *s = p->spec;
    s->restartpolicy = xstrdup("Always");
    s->dnspolicy = xstrdup("ClusterFirst");
    s->schedulername = xstrdup("default-scheduler");
    s->has_terminationgraceperiodseconds = 1;
    s->terminationgraceperiodseconds = 30;
    s->has_priority = 1;
    Coracle__V1__Container *c = s->containers[0];
    c->imagepullpolicy = xstrdup("IfNotPresent");
    c->terminationmessagepath = xstrdup("/dev/termination-log");
    c->terminationmessagepolicy = xstrdup("File");
    c->ports[0]->protocol = xstrdup("TCP");
    p->status = xmalloc(sizeof(*p->status));
    coracle__v1__pod_status__init(p->status);
    p->status->phase = xstrdup("Pending");
    p->status->qosclass = xstrdup("Burstable");
    return p;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum op { ENCODE, DECODE_FREE };

/* ns per call of op on m (encoded: b, len), with protobuf-c (pbc = 1) or pb; best of 7. */
static double run(enum op op, int pbc, const ProtobufCMessage *m, const uint8_t *b, size_t len,
                  long n)
{
    double best = 1e30;
    uint8_t *out = xmalloc(len + 64);
    for (int round = 0; round < 7; round++) {
        double t0 = now_s();
        for (long i = 0; i < n; i++) {
            if (op == ENCODE) {
                if (pbc) {
                    size_t l = protobuf_c_message_get_packed_size(m);
                    sink += protobuf_c_message_pack(m, out) + l;
                } else {
                    size_t l;
                    sink += pb_encode_scratch(m, &l)[0] + l;
                }
            } else {
                ProtobufCMessage *d = pbc ? protobuf_c_message_unpack(m->descriptor, NULL, len, b)
                                          : pb_decode(m->descriptor, b, len);
                sink += (size_t)d->n_unknown_fields;
                protobuf_c_message_free_unpacked(d, NULL);
            }
        }
        double dt = (now_s() - t0) / (double)n * 1e9;
        if (dt < best)
            best = dt;
    }
    free(out);
    return best;
}

int main(int argc, char **argv)
{
    long n = 200000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            n = atol(argv[++i]);
        } else {
            fprintf(stderr, "usage: pb-bench [-n CALLS]\n");
            return 1;
        }
    }
    struct {
        const char *name;
        Coracle__V1__Pod *pod;
    } objs[] = {{"client pod", client_pod()}, {"stored pod", stored_pod()}};
    static const char *const ops[] = {"encode", "decode+free"};
    int bad = 0;
    for (size_t o = 0; o < sizeof(objs) / sizeof(objs[0]); o++) {
        const ProtobufCMessage *m = &objs[o].pod->base;
        size_t len = protobuf_c_message_get_packed_size(m), pl;
        uint8_t *b = xmalloc(len);
        protobuf_c_message_pack(m, b);
        const uint8_t *p = pb_encode_scratch(m, &pl);
        ProtobufCMessage *d = pb_decode(m->descriptor, b, len);
        size_t dl = d ? protobuf_c_message_get_packed_size(d) : 0;
        uint8_t *db = xmalloc(dl + 1);
        if (d)
            protobuf_c_message_pack(d, db);
        if (pl != len || memcmp(p, b, len) || dl != len || memcmp(db, b, len)) {
            printf("codec %s: pb and protobuf-c disagree\n", objs[o].name);
            bad = 1;
        }
        free(db);
        if (d)
            protobuf_c_message_free_unpacked(d, NULL);
        for (int k = 0; k < 2; k++) {
            enum op op = k == 0 ? ENCODE : DECODE_FREE;
            double a = run(op, 1, m, b, len, n), c = run(op, 0, m, b, len, n);
            printf("codec %s (%zu bytes) %s: protobuf-c %.0f ns, pb %.0f ns, %.2fx\n", objs[o].name,
                   len, ops[k], a, c, a / c);
        }
        free(b);
        protobuf_c_message_free_unpacked(&objs[o].pod->base, NULL);
    }
    return bad;
}
