/*
 * test_codec: the List continue-token codec (src/apiserver/read.c) and the
 * byte-level protobuf helpers of the watch path (src/apiserver/wire.c).
 */
#include "config.h"
#include "api.h"
#include "grpc.h"
#include "obj.h"
#include "tap.h"
#include "util.h"
#include "wire.h"

#include <stdlib.h>
#include <string.h>

int main(void)
{
    uint64_t rev;
    char *key;

    /* continue tokens round-trip, are opaque, and reject garbage */
    char *tok = read_token_encode(812, "pods/default/web-1", 18);
    ok(tok && !strstr(tok, "pods"), "token is opaque: %s", tok);
    ok(read_token_decode(tok, &rev, &key) == 0, "decodes");
    is_int(rev, 812, "revision");
    is_str(key, "pods/default/web-1", "key");
    free(key);
    free(tok);
    for (size_t n = 0; n < 5; n++) {
        char k[8] = "abcde";
        k[n] = 0;
        tok = read_token_encode(1, k, n);
        ok(read_token_decode(tok, &rev, &key) == 0 && !strcmp(key, k), "round trip, key length %zu",
           n);
        free(key);
        free(tok);
    }
    const char *bad[] = {"",
                         "garbage!",
                         "YWJj",
                         "YzE6eDpr" /* c1:x:k */,
                         "YzE6MDpr" /* c1:0:k */,
                         "YzE6MTI" /* c1:12 */,
                         "Y",
                         NULL};
    for (int i = 0; bad[i]; i++)
        ok(read_token_decode(bad[i], &rev, &key) == -1, "rejects '%s'", bad[i]);

    /* wire_set_rv keeps everything else and sets metadata.resourceVersion */
    Coracle__V1__Pod p = CORACLE__V1__POD__INIT;
    Coracle__V1__ObjectMeta m = CORACLE__V1__OBJECT_META__INIT;
    Coracle__V1__PodSpec sp = CORACLE__V1__POD_SPEC__INIT;
    m.name = "web";
    m.namespace_ = "default";
    m.resourceversion = "7";
    sp.nodename = "n1";
    p.metadata = &m;
    p.spec = &sp;
    size_t len, nl;
    void *b = obj_encode(&p.base, &len);
    void *nb = wire_set_rv(b, len, 12345, &nl);
    Coracle__V1__Pod *q = (void *)obj_decode(&coracle__v1__pod__descriptor, nb, nl);
    ok(q != NULL, "patched bytes decode");
    is_str(q->metadata->resourceversion, "12345", "resourceVersion patched");
    is_str(q->metadata->name, "web", "name kept");
    is_str(q->spec->nodename, "n1", "spec kept");
    is_int(wire_get_rv(nb, nl), 12345, "wire_get_rv reads it");
    is_int(wire_get_rv(b, len), 7, "and the original's");
    obj_free(&q->base);
    free(nb);
    nb = wire_set_rv(b, len, 0, &nl);
    is_int(wire_get_rv(nb, nl), 0, "none: 0");
    free(nb);
    m.resourceversion = "12a";
    nb = obj_encode(&p.base, &nl);
    is_int(wire_get_rv(nb, nl), 0, "not a number: 0");
    free(nb);
    m.resourceversion = "7";
    free(b);
    /* byte-equal to packing with the revision set, wherever field 6 falls */
    Coracle__V1__Time ts = CORACLE__V1__TIME__INIT;
    ts.has_seconds = 1;
    ts.seconds = 1700000000;
    Coracle__V1__ObjectMeta__LabelsEntry le = CORACLE__V1__OBJECT_META__LABELS_ENTRY__INIT;
    Coracle__V1__ObjectMeta__LabelsEntry *les[] = {&le};
    le.key = "app", le.value = "web";
    Coracle__V1__PodStatus pst = CORACLE__V1__POD_STATUS__INIT;
    pst.phase = "Pending";
    int canon = 0, uncanon = 0;
    size_t cl;
    for (int v = 0; v < 32; v++) {
        Coracle__V1__ObjectMeta mm = CORACLE__V1__OBJECT_META__INIT;
        Coracle__V1__Pod pp = CORACLE__V1__POD__INIT;
        mm.name = v & 1 ? "web" : NULL;
        mm.uid = v & 2 ? "0b6f2e1c-8a7d-4c55-9a3e-5f1d2c3b4a59" : NULL;
        mm.has_generation = !!(v & 4), mm.generation = 1;
        mm.creationtimestamp = v & 8 ? &ts : NULL;
        mm.n_labels = v & 16 ? 1 : 0, mm.labels = les;
        pp.metadata = &mm;
        pp.spec = v & 1 ? &sp : NULL;
        pp.status = v & 2 ? &pst : NULL;
        mm.resourceversion = v & 4 ? "3" : NULL; /* an old one is replaced */
        void *plain = obj_encode(&pp.base, &len);
        void *patched = wire_set_rv(plain, len, 1234567, &nl);
        void *cleared = wire_set_rv(plain, len, 0, &cl);
        mm.resourceversion = "1234567";
        size_t wl, ul;
        void *want = obj_encode(&pp.base, &wl);
        mm.resourceversion = NULL;
        void *unset = obj_encode(&pp.base, &ul);
        canon += patched && nl == wl && !memcmp(patched, want, wl);
        uncanon += cleared && cl == ul && !memcmp(cleared, unset, ul);
        free(plain);
        free(patched);
        free(want);
        free(cleared);
        free(unset);
    }
    is_int(canon, 32, "patched bytes equal packing with resourceVersion set (32 shapes)");
    is_int(uncanon, 32, "revision 0 leaves resourceVersion out, as packing without it");
    ok(wire_set_rv("\x0a\x05\x0a", 3, 1, &nl) == NULL, "malformed input refused");
    /* no metadata at all */
    nb = wire_set_rv("", 0, 9, &nl);
    q = (void *)obj_decode(&coracle__v1__pod__descriptor, nb, nl);
    is_str(q && q->metadata ? q->metadata->resourceversion : NULL, "9", "metadata added");
    obj_free(q ? &q->base : NULL);
    free(nb);

    /* watch frames: gRPC framed {type, object} */
    rbuf_t *f = wire_watch_frame("ADDED", "\x0a\x00", 2);
    uint32_t ml;
    ok(grpc_frame_peek(f->data, f->len, &ml) == 1 && ml + GRPC_FRAME_HDR == f->len, "framed");
    Coracle__V1__PodWatchEvent *ev =
        (void *)obj_decode(&coracle__v1__pod_watch_event__descriptor, f->data + GRPC_FRAME_HDR, ml);
    ok(ev && !strcmp(ev->type, "ADDED") && ev->object && ev->object->metadata, "event decodes");
    obj_free(ev ? &ev->base : NULL);
    rbuf_unref(f);
    f = wire_bookmark_frame(42);
    grpc_frame_peek(f->data, f->len, &ml);
    ev =
        (void *)obj_decode(&coracle__v1__pod_watch_event__descriptor, f->data + GRPC_FRAME_HDR, ml);
    ok(ev && !strcmp(ev->type, "BOOKMARK") && !strcmp(ev->object->metadata->resourceversion, "42"),
       "bookmark carries the revision");
    obj_free(ev ? &ev->base : NULL);
    rbuf_unref(f);
    /* obj_normalize: map order does not change the encoding */
    Coracle__V1__ObjectMeta__LabelsEntry l1 = CORACLE__V1__OBJECT_META__LABELS_ENTRY__INIT,
                                         l2 = CORACLE__V1__OBJECT_META__LABELS_ENTRY__INIT;
    l1.key = "b", l1.value = "2";
    l2.key = "a", l2.value = "1";
    Coracle__V1__ObjectMeta__LabelsEntry *ls1[] = {&l1, &l2}, *ls2[] = {&l2, &l1};
    Coracle__V1__ObjectMeta m1 = CORACLE__V1__OBJECT_META__INIT, m2 = m1;
    m1.n_labels = m2.n_labels = 2;
    m1.labels = ls1;
    m2.labels = ls2;
    ok(!obj_equal(&m1.base, &m2.base), "different map order encodes differently");
    obj_normalize(&m1.base);
    obj_normalize(&m2.base);
    ok(obj_equal(&m1.base, &m2.base), "normalized: equal");
    is_str(m1.labels[0]->key, "a", "sorted by key");
    return done_testing();
}
