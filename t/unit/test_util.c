/* Unit tests for src/lib: util, cfg, grpc framing, kinds. */
#include "config.h"
#include "tap.h"

#include "cfg.h"
#include "grpc.h"
#include "kinds.h"
#include "kmeta.h"
#include "util.h"

#include <fcntl.h>
#include <unistd.h>

static void test_uuid(void)
{
    char a[37], b[37];
    uuid_v4(a);
    uuid_v4(b);
    ok(strlen(a) == 36 && a[14] == '4', "uuid v4 shape: %s", a);
    ok(strchr("89ab", a[19]) != NULL, "uuid variant bits");
    ok(strcmp(a, b) != 0, "two uuids differ");
}

static void test_grpc(void)
{
    uint8_t hdr[5];
    uint32_t len = 0;
    grpc_frame_hdr(hdr, 0x01020304);
    ok(grpc_frame_peek(hdr, 4, &len) == 0, "short header waits");
    ok(grpc_frame_peek(hdr, 5, &len) == 1 && len == 0x01020304, "frame length big-endian");
    hdr[0] = 1;
    ok(grpc_frame_peek(hdr, 5, &len) == -1, "compressed flag refused");
    is_str(grpc_code_name(GRPC_NOT_FOUND), "NOT_FOUND", "code name");
    is_str(grpc_code_name(99), "UNKNOWN", "out-of-range code name");
    char *e = grpc_message_encode("pods \"x\" 100%\n");
    is_str(e, "pods \"x\" 100%25%0A", "grpc-message percent-encoding");
    char *d = grpc_message_decode(e, strlen(e));
    is_str(d, "pods \"x\" 100%\n", "grpc-message decoding");
    free(e);
    free(d);
}

static void test_kinds(void)
{
    ok(kind_lookup("po") == &kind_pod, "short name po");
    ok(kind_lookup("Pod") == &kind_pod, "kind name");
    ok(kind_lookup("nodes") == &kind_node, "resource name");
    ok(kind_lookup("widgets") == NULL, "unknown kind");
    char *k = kind_key(&kind_pod, "default", "nginx");
    is_str(k, "pods/default/nginx", "pod key");
    ok(kind_by_key(k, strlen(k)) == &kind_pod, "kind from key");
    free(k);
    k = kind_key(&kind_node, "ignored", "n1");
    is_str(k, "nodes//n1", "cluster-scoped key");
    free(k);
    k = xu64str(0);
    is_str(k, "0", "xu64str(0)");
    free(k);
    k = xu64str(UINT64_MAX);
    is_str(k, "18446744073709551615", "xu64str(UINT64_MAX)");
    free(k);
    k = xconcat("", NULL);
    is_str(k, "", "xconcat of one empty string");
    free(k);
    k = xconcat("ab", "", "c", "def", NULL);
    is_str(k, "abcdef", "xconcat joins in order");
    free(k);
}

static void test_cfg(void)
{
    char *s = "x";
    long long n = 5;
    int b = 0;
    struct cfg_list l = {0};
    struct cfg_opt opts[] = {
        {"data-dir", CFG_STR, &s, "DIR", ""},
        {"max", CFG_INT, &n, "N", ""},
        {"flag", CFG_BOOL, &b, NULL, ""},
        {"listen", CFG_LIST, &l, "ADDR", ""},
    };
    char path[] = "/tmp/coracle-cfg-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "# comment\ndata-dir = /var/x  # trailing\nmax=12\nflag = yes\n"
                       "listen = a\nlisten = \"b\"\n";
    ok(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "wrote config");
    close(fd);
    char *err = NULL;
    ok(cfg_load(path, opts, ARRAY_SIZE(opts), &err) == 0, "config loads");
    is_str(s, "/var/x", "string key");
    ok(cfg_set(opts, ARRAY_SIZE(opts), "data-dir", "/var/y", &err) == 0 && !strcmp(s, "/var/y"),
       "a flag replaces the file's value (the old copy freed: LeakSanitizer)");
    is_int(n, 12, "int key");
    is_int(b, 1, "bool key");
    ok(l.n == 2 && !strcmp(l.v[1], "b"), "list key, quotes stripped");
    ok(cfg_set(opts, ARRAY_SIZE(opts), "max", "12x", &err) < 0, "bad int refused");
    is_str(err, "max: expected an integer, got \"12x\"", "bad int message");
    free(err);
    fd = open(path, O_WRONLY | O_TRUNC);
    ok(write(fd, "bogus = 1\n", 10) == 10, "rewrote config");
    close(fd);
    ok(cfg_load(path, opts, ARRAY_SIZE(opts), &err) < 0, "unknown key refused");
    ok(err && strstr(err, ":1: unknown key \"bogus\""), "error names file:line and key: %s", err);
    free(err);
    unlink(path);
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i]);
    free(l.v);
}

static void test_rbufq(void)
{
    struct rbufq q = {0};
    size_t grew = 0;
    char name[2] = "a";
    for (int i = 0; i < 5; i++, name[0]++)
        grew += rbufq_push(&q, rbuf_new(name, 1));
    ok(q.n == 5 && q.cap == 8 && grew == 8 * sizeof(*q.v),
       "rbufq: five pushed, the ring grew to 8");
    rbufq_advance(&q, 1);
    rbufq_advance(&q, 1);
    ok(q.n == 3 && rbufq_at(&q, 0)->data[0] == 'c' && rbufq_at(&q, 2)->data[0] == 'e',
       "rbufq: two sent, c..e left in order");
    rbuf_t *big = rbuf_new("0123456789", 10);
    rbufq_push(&q, big);
    rbufq_empty(&q);
    ok(q.n == 0 && q.cap == 8 && q.v != NULL, "rbufq: emptied, the ring kept");
    rbufq_push(&q, rbuf_new("xyz", 3));
    rbufq_advance(&q, 2);
    ok(q.n == 1 && q.off == 2, "rbufq: part of the head sent");
    rbufq_advance(&q, 1);
    ok(q.n == 0 && q.off == 0, "rbufq: the rest of it");
    ok(rbufq_free(&q) == 8 * sizeof(rbuf_t *) && q.v == NULL && q.cap == 0,
       "rbufq: freed, its size returned");
}

/* Every kmeta entry names a message and field proto/ has, with a shape that fits. */
static void test_kmeta(void)
{
    size_t n = 0, bad = 0;
    for (const struct kmeta *m = kmeta_all; m->msg; m++, n++) {
        const ProtobufCMessageDescriptor *d = NULL;
        for (size_t i = 0; kinds_all[i] && !d; i++) {
            /* walk from the kinds' messages down, breadth-first */
            const ProtobufCMessageDescriptor *q[256];
            size_t h = 0, t = 0;
            q[t++] = kinds_all[i]->desc;
            while (h < t && !d) {
                const ProtobufCMessageDescriptor *x = q[h++];
                if (!strcmp(x->name, m->msg))
                    d = x;
                for (unsigned f = 0; f < x->n_fields && t < 256; f++)
                    if (x->fields[f].type == PROTOBUF_C_TYPE_MESSAGE)
                        q[t++] = x->fields[f].descriptor;
            }
        }
        const ProtobufCFieldDescriptor *fd = NULL;
        for (unsigned f = 0; d && f < d->n_fields; f++)
            if (!strcmp(d->fields[f].name, m->field))
                fd = &d->fields[f];
        bool list = fd && fd->label == PROTOBUF_C_LABEL_REPEATED;
        if (!fd || (m->list_type && !list) || (kmeta_lookup(d, m->field) != m)) {
            diag("kmeta: %s.%s: no such field, or not a list", m->msg, m->field);
            bad++;
        }
    }
    ok(n > 20 && bad == 0, "kmeta: %zu entries, each a field of proto/ (%zu bad)", n, bad);
    ok(kmeta_lookup(kind_pod.desc, "metadata") == NULL, "kmeta: unmarked fields have none");
}

static void test_duration(void)
{
    static const struct {
        const char *s;
        int64_t ns;
    } good[] = {{"0", 0},
                {"5m", 300000000000LL},
                {"5m0s", 300000000000LL},
                {"1h30m", 5400000000000LL},
                {"2.5s", 2500000000LL},
                {"300ms", 300000000LL},
                {"15s", 15000000000LL}};
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        int64_t ns = -1;
        ok(parse_duration(good[i].s, &ns) == 0 && ns == good[i].ns, "duration %s", good[i].s);
    }
    static const char *const bad[] = {"", "5", "m", "-1s", "5x", "1s2", "99999999999h"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int64_t ns;
        ok(parse_duration(bad[i], &ns) == -1, "not a duration: \"%s\"", bad[i]);
    }
}

int main(void)
{
    test_duration();
    test_uuid();
    test_grpc();
    test_kinds();
    test_kmeta();
    test_cfg();
    test_rbufq();
    return done_testing();
}
