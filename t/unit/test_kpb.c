/*
 * test_kpb: Kubernetes' protobuf envelope and watch frames
 * (src/apiserver/kpb.c), byte for byte, and the REST API's Accept
 * negotiation (rest_accept in src/apiserver/rest_query.c).
 */
#include "config.h"
#include "kpb.h"
#include "obj.h"
#include "pb.h"
#include "rest_int.h"
#include "tap.h"
#include "util.h"
#include "wire.h"

#include <stdlib.h>
#include <string.h>

/* The length-delimited field f of buf as a string (malloc'd), or NULL. */
static char *field_str(const void *buf, size_t len, uint32_t f)
{
    const uint8_t *v;
    size_t vl;
    return wire_find(buf, len, f, &v, &vl) == 1 ? xstrndup((const char *)v, vl) : NULL;
}

static void test_envelope(void)
{
    static const uint8_t pod[] = {0x0a, 0x05, 0x0a, 0x03, 'w', 'e', 'b'}; /* metadata{name: web} */
    static const uint8_t want[] = {'k',  '8',  's', 0,   0x0a, 0x09, 0x0a, 0x02, 'v',  '1',
                                   0x12, 0x03, 'P', 'o', 'd',  0x12, 0x07, 0x0a, 0x05, 0x0a,
                                   0x03, 'w',  'e', 'b', 0x1a, 0x00, 0x22, 0x00};
    size_t n;
    char *e = kpb_object(&kind_pod, pod, sizeof(pod), &n);
    ok(n == sizeof(want) && !memcmp(e, want, n),
       "a pod's envelope: magic, typeMeta {v1, Pod}, raw as stored, empty encoding and type");
    is_int(kpb_envelope_len("v1", "Pod", sizeof(pod)), n, "kpb_envelope_len says its size");
    free(e);

    /* a list: the ListResponse's bytes are the raw of a PodList */
    static const uint8_t list[] = {0x12, 0x07, 0x0a, 0x05, 0x0a, 0x03, 'w', 'e',
                                   'b',  0x0a, 0x04, 0x12, 0x02, '4',  '2'};
    e = kpb_list(&kind_pod, list, sizeof(list), &n);
    const uint8_t *raw, *tm;
    size_t rawl, tml;
    ok(wire_find(e + 4, n - 4, 2, &raw, &rawl) == 1 && rawl == sizeof(list) &&
           !memcmp(raw, list, rawl),
       "a list's raw is the ListResponse as it is");
    wire_find(e + 4, n - 4, 1, &tm, &tml);
    char *kind = field_str(tm, tml, 2), *av = field_str(tm, tml, 1);
    is_str(kind, "PodList", "its kind");
    is_str(av, "v1", "its apiVersion");
    free(kind);
    free(av);
    free(e);

    /* a lease: its group's apiVersion */
    e = kpb_object(&kind_lease, "", 0, &n);
    wire_find(e + 4, n - 4, 1, &tm, &tml);
    av = field_str(tm, tml, 1);
    is_str(av, "coordination.k8s.io/v1", "a lease's apiVersion");
    ok(wire_find(e + 4, n - 4, 2, &raw, &rawl) == 1 && rawl == 0, "an empty raw is still there");
    free(av);
    free(e);
}

/* A watch frame's event type and enveloped object (into f). */
static int frame_parts(const rbuf_t *f, char **type, const uint8_t **env, size_t *envl)
{
    if (f->len < 4)
        return -1;
    size_t n =
        (size_t)f->data[0] << 24 | (size_t)f->data[1] << 16 | (size_t)f->data[2] << 8 | f->data[3];
    if (n != f->len - 4)
        return -1;
    const uint8_t *re;
    size_t rel;
    *type = field_str(f->data + 4, n, 1);
    if (wire_find(f->data + 4, n, 2, &re, &rel) != 1 || wire_find(re, rel, 1, env, envl) != 1)
        return -1;
    return 0;
}

static void test_frames(void)
{
    Coracle__V1__Pod p = CORACLE__V1__POD__INIT;
    Coracle__V1__ObjectMeta m = CORACLE__V1__OBJECT_META__INIT;
    m.name = "web";
    m.namespace_ = "default";
    m.resourceversion = "7";
    p.metadata = &m;
    size_t len, n;
    void *b = pb_encode(&p.base, &len);
    rbuf_t *f = kpb_watch_frame(&kind_pod, "MODIFIED", b, len);
    char *type = NULL;
    const uint8_t *env;
    size_t envl;
    char *want = kpb_object(&kind_pod, b, len, &n);
    ok(frame_parts(f, &type, &env, &envl) == 0 && envl == n && !memcmp(env, want, n),
       "a watch frame: the big-endian length, then WatchEvent {type, {raw: the envelope}}");
    is_str(type, "MODIFIED", "its type");
    free(type);
    free(want);
    rbuf_unref(f);
    free(b);

    f = kpb_bookmark_frame(&kind_pod, 42, true);
    ok(frame_parts(f, &type, &env, &envl) == 0, "a bookmark frame parses");
    is_str(type, "BOOKMARK", "its type");
    const uint8_t *raw;
    size_t rawl;
    wire_find(env + 4, envl - 4, 2, &raw, &rawl);
    Coracle__V1__Pod *bp = (void *)obj_decode(&coracle__v1__pod__descriptor, raw, rawl);
    ok(bp && bp->metadata && !strcmp(bp->metadata->resourceversion, "42") &&
           bp->metadata->n_annotations == 1 &&
           !strcmp(bp->metadata->annotations[0]->key, "k8s.io/initial-events-end") &&
           !strcmp(bp->metadata->annotations[0]->value, "true") && !bp->spec,
       "the initial-events-end bookmark: a Pod with the revision and the annotation only");
    obj_free(&bp->base);
    free(type);
    rbuf_unref(f);

    f = kpb_error_frame(410, "Expired", "too old resource version: 1 (5)");
    ok(frame_parts(f, &type, &env, &envl) == 0, "an ERROR frame parses");
    is_str(type, "ERROR", "its type");
    const uint8_t *tm;
    size_t tml;
    wire_find(env + 4, envl - 4, 1, &tm, &tml);
    char *kind = field_str(tm, tml, 2);
    is_str(kind, "Status", "its object is a Status");
    wire_find(env + 4, envl - 4, 2, &raw, &rawl);
    char *reason = field_str(raw, rawl, 4), *msg = field_str(raw, rawl, 3);
    is_str(reason, "Expired", "reason");
    is_str(msg, "too old resource version: 1 (5)", "message");
    ok(rawl >= 3 && raw[rawl - 3] == 6 << 3 && raw[rawl - 2] == ((410 & 0x7f) | 0x80) &&
           raw[rawl - 1] == 410 >> 7,
       "code 410 last, a varint");
    free(kind);
    free(reason);
    free(msg);
    free(type);
    rbuf_unref(f);

    char *s = kpb_status(404, "NotFound", "pods \"x\" not found", "pods", "x", &n);
    wire_find(s + 4, n - 4, 2, &raw, &rawl);
    const uint8_t *d;
    size_t dl;
    ok(wire_find(raw, rawl, 5, &d, &dl) == 1, "a Status with details");
    char *dn = field_str(d, dl, 1), *dk = field_str(d, dl, 3);
    is_str(dn, "x", "details.name");
    is_str(dk, "pods", "details.kind");
    free(dn);
    free(dk);
    free(s);
}

static void test_accept(void)
{
    static const struct {
        const char *accept;
        enum rest_fmt fmt;
        bool pb_only;
    } cases[] = {
        {NULL, RF_JSON, false},
        {"", RF_JSON, false},
        {"*/*", RF_JSON, false},
        {"application/json", RF_JSON, false},
        {"application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta."
         "k8s.io,application/json",
         RF_TABLE, false},
        {"application/vnd.kubernetes.protobuf,application/json", RF_PB, false},
        {"application/vnd.kubernetes.protobuf", RF_PB, true},
        {" application/vnd.kubernetes.protobuf ; q=0.9 , */*;q=0.1", RF_PB, false},
        {"application/json;q=0.5, application/vnd.kubernetes.protobuf", RF_PB, false},
        {"*/*, application/vnd.kubernetes.protobuf", RF_PB, false},
        {"application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io, application/json",
         RF_JSON, false},
        {"application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io, "
         "application/vnd.kubernetes.protobuf",
         RF_PB, true},
        {"application/json;as=Table;v=v1;g=meta.k8s.io;q=0, application/json", RF_JSON, false},
        {"application/json;as=Table;v=v2;g=meta.k8s.io", RF_JSON, false},
        {"text/html", RF_JSON, false},
        {";;,,;=,q=,", RF_JSON, false},
        {"application/vnd.kubernetes.protobuf;q=abc", RF_JSON, false}, /* q 0: refused */
        {"application/vnd.kubernetes.protobuf;q=0.5,application/json;q=0.5", RF_PB, false},
        {"*/*;q=0.8,application/vnd.kubernetes.protobuf;q=0.8", RF_PB, false},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        bool pb_only = !cases[i].pb_only;
        enum rest_fmt f = rest_accept(cases[i].accept, &pb_only);
        ok(f == cases[i].fmt && pb_only == cases[i].pb_only, "Accept: %s -> %d%s",
           cases[i].accept ? cases[i].accept : "(none)", cases[i].fmt,
           cases[i].pb_only ? " (protobuf only)" : "");
    }
}

int main(void)
{
    test_envelope();
    test_frames();
    test_accept();
    done_testing();
    return tap_failed ? 1 : 0;
}
