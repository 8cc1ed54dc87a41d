/*
 * Unit tests for src/apiserver/wal.c, the store's write-ahead log: the
 * record format (round trip, truncation, checksums, epochs, malformed
 * entries), the file (append, scan, a torn tail ignored, a corrupt middle
 * refused with the file and offset, revoke, restart, grow), and the store
 * on top of it: a crash (the process ends without store_close) followed by
 * a torn map, a cut log, a corrupt log, a checkpoint cut short.
 */
#include "config.h"
#include "tap.h"

#include "store.h"
#include "util.h"
#include "wal.h"

#include <event2/event.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test_wal.XXXXXX";
static struct event_base *base;

static char *subdir(const char *name)
{
    char *d = xasprintf("%s/%s", tmpdir, name);
    mkdir(d, 0700);
    return d;
}

/* ---- records ---- */

static void rec_build(struct buf *b, uint64_t epoch, uint64_t rev, const char *key, const char *val)
{
    wal_rec_start(b);
    struct wal_entry e = {1, rev + 1, key, val, NULL, strlen(key), strlen(val), 0};
    wal_rec_add(b, &e);
    struct wal_entry o = {WAL_OBJ, 0, "other", "sealed", NULL, 5, 6, 0};
    wal_rec_add(b, &o);
    wal_rec_finish(b, epoch, rev, rev + 1, 0);
}

static void test_records(void)
{
    struct buf b = {0}, raw = {0};
    struct wal_rec r;
    struct wal_entry e;
    size_t claimed, pos = 0;
    rec_build(&b, 7, 41, "pods/ns/a", "value");
    ok(b.len == WAL_REC_HDR + 2 * WAL_ENT_HDR + 9 + 5 + 5 + 6, "record length %zu", b.len);
    ok(wal_rec_parse((uint8_t *)b.p, b.len, 7, &r, &claimed, &raw) == WAL_REC_OK &&
           r.len == b.len && r.rev_before == 41 && r.rev_after == 42 && r.n == 2,
       "round trip: header fields");
    ok(wal_rec_next(&r, &pos, &e) == 1 && e.kind == 1 && e.rev == 42 && e.key_len == 9 &&
           !memcmp(e.key, "pods/ns/a", 9) && e.val_len == 5 && !memcmp(e.val, "value", 5) &&
           e.prev_len == 0,
       "round trip: first entry");
    ok(wal_rec_next(&r, &pos, &e) == 1 && e.kind == WAL_OBJ && e.val_len == 6 &&
           wal_rec_next(&r, &pos, &e) == 0,
       "round trip: second entry, then the end");
    ok(wal_rec_parse((uint8_t *)b.p, b.len, 8, &r, &claimed, &raw) == WAL_REC_END,
       "another epoch's record ends the log");
    ok(wal_rec_parse((uint8_t *)b.p, b.len - 1, 7, &r, &claimed, &raw) == WAL_REC_BAD &&
           claimed == b.len,
       "a truncated record is bad, with its claimed length");
    for (size_t i = 0; i < b.len; i += 7) {
        if (i >= 4 && i < 8)
            continue;
        b.p[i] ^= 0x20;
        int pr = wal_rec_parse((uint8_t *)b.p, b.len, 7, &r, &claimed, &raw);
        b.p[i] ^= 0x20;
        if (pr != WAL_REC_BAD) {
            ok(0, "flipped byte %zu detected", i);
            buf_free(&b);
            return;
        }
    }
    ok(1, "every flipped byte is detected by the checksum");
    static const uint8_t zeros[64];
    ok(wal_rec_parse(zeros, sizeof(zeros), 7, &r, &claimed, &raw) == WAL_REC_END,
       "zeros end the log");
    /* an entry whose lengths overrun the record, with a valid checksum */
    wal_rec_start(&b);
    struct wal_entry big = {2, 5, "k", "v", NULL, 1, 1, 0};
    wal_rec_add(&b, &big);
    b.p[WAL_REC_HDR + 13] = 100; /* val_len */
    wal_rec_finish(&b, 7, 4, 5, 0);
    ok(wal_rec_parse((uint8_t *)b.p, b.len, 7, &r, &claimed, &raw) == WAL_REC_BAD,
       "entries that do not fill the record exactly are refused");
    ok(wal_crc32c(0, "123456789", 9) == 0xe3069283, "CRC-32C check value");
    ok(wal_crc32c_table(0, "123456789", 9) == 0xe3069283, "CRC-32C check value, by table");
    /* the CPU's instruction against the table: every length and alignment up to 64, chained */
    uint8_t rnd[200];
    for (size_t i = 0; i < sizeof(rnd); i++)
        rnd[i] = (uint8_t)(i * 131 + 7);
    int same = 1;
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n <= 64; n++) {
            uint32_t c = wal_crc32c(0x1234, rnd + off, n);
            same &= c == wal_crc32c_table(0x1234, rnd + off, n);
            same &= wal_crc32c(c, rnd + off + n, 100) == wal_crc32c_table(c, rnd + off + n, 100);
        }
    ok(same, "CRC-32C: the same sums whichever way (lengths 0-64, 8 alignments)");
    buf_free(&b);
    buf_free(&raw);
}

/* n entries of a batch of creates: values alike but for a name and a uid */
static void batch_build(struct buf *b, int n)
{
    wal_rec_start(b);
    for (int i = 0; i < n; i++) {
        char key[64], val[512];
        snprintf(key, sizeof(key), "pods/default/web-%05d", i);
        int len = snprintf(val, sizeof(val),
                           "{name: web-%05d, uid: %08x-0000, image: nginx:1.25, port: 80, "
                           "requests: {cpu: 100m, memory: 64Mi}, restartPolicy: Always, "
                           "terminationGracePeriodSeconds: 30, dnsPolicy: ClusterFirst}",
                           i, (unsigned)(i * 2654435761u));
        struct wal_entry e = {1, (uint64_t)i + 10, key, val, NULL, strlen(key), (size_t)len, 0};
        wal_rec_add(b, &e);
    }
}

static void test_packed(void)
{
    struct buf b = {0}, plain = {0}, tmp = {0}, raw = {0};
    struct wal_rec r, pr;
    size_t claimed, pos = 0, ppos = 0;
    struct wal_entry e, pe;
    batch_build(&plain, 100);
    wal_rec_finish(&plain, 7, 9, 109, 0);
    batch_build(&b, 100);
    ok(wal_rec_pack(&b, &tmp) == 1, "a batch of 100 alike entries is packed");
    wal_rec_finish(&b, 7, 9, 109, 0);
    ok(b.len * 4 < plain.len, "packed: %zu bytes, plain %zu", b.len, plain.len);
    ok(wal_rec_parse((uint8_t *)b.p, b.len, 7, &r, &claimed, &raw) == WAL_REC_OK &&
           r.len == b.len && r.n == 100 && r.rev_before == 9 && r.rev_after == 109,
       "a packed record parses: length as written, 100 entries");
    struct buf raw2 = {0};
    ok(wal_rec_parse((uint8_t *)plain.p, plain.len, 7, &pr, &claimed, &raw2) == WAL_REC_OK,
       "the same batch plain parses");
    int same = r.ents_len == pr.ents_len && !memcmp(r.ents, pr.ents, r.ents_len), k = 0;
    while (same && wal_rec_next(&r, &pos, &e) && wal_rec_next(&pr, &ppos, &pe)) {
        same &= e.kind == pe.kind && e.rev == pe.rev && e.key_len == pe.key_len &&
                e.val_len == pe.val_len && !memcmp(e.val, pe.val, e.val_len);
        k++;
    }
    ok(same && k == 100, "its entries are the plain record's, byte for byte");
    /* one write alone, or a record that does not pack smaller: as it is */
    batch_build(&plain, 1);
    size_t len1 = plain.len;
    ok(wal_rec_pack(&plain, &tmp) == 0 && plain.len == len1, "a small record is not packed");
    wal_rec_start(&plain);
    uint8_t noise[4096];
    uint64_t x = 88172645463325252ull; /* xorshift64: bytes LZ4 cannot shrink */
    for (size_t i = 0; i < sizeof(noise); i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise[i] = (uint8_t)x;
    }
    struct wal_entry ne = {1, 5, "k", noise, NULL, 1, sizeof(noise), 0};
    wal_rec_add(&plain, &ne);
    len1 = plain.len;
    ok(wal_rec_pack(&plain, &tmp) == 0 && plain.len == len1,
       "a record that would not shrink is not packed");
    /* packed bytes that do not unpack, with a valid checksum */
    batch_build(&b, 100);
    wal_rec_pack(&b, &tmp);
    size_t packed = b.len;
    b.p[WAL_REC_HDR + 4 + (packed - WAL_REC_HDR - 4) / 2] ^= 0x55;
    wal_rec_finish(&b, 7, 9, 109, 0);
    ok(wal_rec_parse((uint8_t *)b.p, b.len, 7, &r, &claimed, &raw) == WAL_REC_BAD,
       "a packed block that does not unpack to its size is refused");
    batch_build(&b, 100);
    wal_rec_pack(&b, &tmp);
    uint8_t *sz = (uint8_t *)b.p + WAL_REC_HDR;
    sz[0] ^= 1; /* the unpacked size off by one */
    wal_rec_finish(&b, 7, 9, 109, 0);
    ok(wal_rec_parse((uint8_t *)b.p, b.len, 7, &r, &claimed, &raw) == WAL_REC_BAD,
       "a packed record whose size is wrong is refused");
    batch_build(&b, 100);
    wal_rec_pack(&b, &tmp);
    sz = (uint8_t *)b.p + WAL_REC_HDR;
    sz[3] = 0x7f; /* over WAL_RAW_MAX */
    wal_rec_finish(&b, 7, 9, 109, 0);
    ok(wal_rec_parse((uint8_t *)b.p, b.len, 7, &r, &claimed, &raw) == WAL_REC_BAD,
       "a packed record claiming more than WAL_RAW_MAX is refused");
    buf_free(&b);
    buf_free(&plain);
    buf_free(&tmp);
    buf_free(&raw);
    buf_free(&raw2);
}

/* ---- the file ---- */

static int count_fn(const struct wal_rec *r, void *arg, char **err)
{
    (void)err;
    uint64_t *last = arg;
    *last = r->rev_after;
    return 0;
}

static void corrupt_at(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t c;
    if (pread(fd, &c, 1, off) == 1) {
        c ^= 0xff;
        if (pwrite(fd, &c, 1, off) != 1)
            diag("pwrite: %s", strerror(errno));
    }
    close(fd);
}

static void test_file(void)
{
    char *dir = subdir("file"), *err = NULL;
    wal_t *w;
    int created;
    struct buf b = {0};
    ok(wal_open(&w, dir, 1 << 20, &created, &err) == 0 && created && wal_epoch(w) == 0,
       "a new log: epoch 0");
    ok(wal_size(w) == 1 << 20, "preallocated to %zu bytes", wal_size(w));
    ok(wal_restart(w, 40) == 0 && wal_epoch(w) != 0 && wal_base(w) == 40, "restart at 40");
    size_t offs[10];
    for (int i = 0; i < 10; i++) {
        rec_build(&b, wal_epoch(w), 40 + (uint64_t)i, "pods/x", "v");
        offs[i] = WAL_HDR_SIZE + wal_used(w);
        if (wal_append(w, b.p, b.len))
            break;
    }
    uint64_t last = 0, epoch = wal_epoch(w);
    int rc;
    ok(wal_used(w) == 10 * b.len, "10 records appended");
    ok(wal_revoke(w) == 0 && wal_used(w) == 9 * b.len, "revoke takes the last one back");
    wal_close(w);

    ok(wal_open(&w, dir, 1 << 20, &created, &err) == 0 && !created && wal_epoch(w) == epoch,
       "reopened, same epoch");
    ok(wal_scan(w, count_fn, &last, &err) == 0 && last == 49 && wal_used(w) == 9 * b.len,
       "scan: 9 records, up to revision 49");
    wal_close(w);

    /* a torn tail: the last record cut */
    char *path = xasprintf("%s/wal", dir);
    corrupt_at(path, (off_t)offs[8] + 30);
    wal_open(&w, dir, 1 << 20, &created, &err);
    last = 0;
    rc = wal_scan(w, count_fn, &last, &err);
    ok(rc == 0 && last == 48 && wal_used(w) == 8 * b.len,
       "a torn last record is ignored (up to %llu)", (unsigned long long)last);
    /* appending goes on where the valid records end */
    rec_build(&b, wal_epoch(w), 48, "pods/y", "w");
    ok(wal_append(w, b.p, b.len) == 0, "append after the torn tail");
    wal_close(w);
    wal_open(&w, dir, 1 << 20, &created, &err);
    ok(wal_scan(w, count_fn, &last, &err) == 0 && last == 49, "and it reads back");
    wal_close(w);

    /* a corrupt middle */
    corrupt_at(path, (off_t)offs[3] + WAL_REC_HDR + 2);
    wal_open(&w, dir, 1 << 20, &created, &err);
    rc = wal_scan(w, count_fn, &last, &err);
    char *want = xasprintf("offset %zu", offs[3]);
    ok(rc == -1 && err && strstr(err, path) && strstr(err, want),
       "a corrupt record followed by valid ones is refused: %s", err ? err : "(none)");
    free(want);
    free(err);
    err = NULL;

    /* restart: the old records are stale */
    ok(wal_restart(w, 60) == 0 && wal_scan(w, count_fn, &last, &err) == 0 && wal_used(w) == 0,
       "after a restart the old epoch's records are gone");
    ok(wal_mark(w, 1, 60) == 0, "marked clean");
    wal_close(w);
    uint64_t crev = 0;
    wal_open(&w, dir, 1 << 20, &created, &err);
    ok(wal_clean(w, &crev) == 1 && crev == 60 && wal_base(w) == 60, "clean at 60 after reopen");

    /* a record bigger than the file */
    struct buf huge = {0};
    wal_rec_start(&huge);
    char *v = xcalloc(1, 2 << 20);
    struct wal_entry e = {1, 61, "k", v, NULL, 1, 2 << 20, 0};
    wal_rec_add(&huge, &e);
    wal_rec_finish(&huge, wal_epoch(w), 60, 61, 0);
    ok(wal_append(w, huge.p, huge.len) == WAL_EFULL, "a record bigger than the file: WAL_EFULL");
    rc = wal_grow(w, huge.len);
    ok(rc == 0 && wal_append(w, huge.p, huge.len) == 0, "grown, it fits (%zu bytes)", wal_size(w));
    free(v);
    buf_free(&huge);
    wal_close(w);
    free(path);
    buf_free(&b);
    free(dir);
}

/* ---- the store over the log: crashes ---- */

struct put {
    struct store_op op;
    char key[32], val[512];
    int err, done;
};

/* bytes of 'x' after each value (from 0): with 300, a batch of ten is packed in the log */
static int pad;

static int put_val(char *v, size_t cap, int i)
{
    return snprintf(v, cap, "v%06d%.*s", i, pad,
                    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
}

static int put_apply(struct store_op *op, const void *cur, size_t cur_len, uint64_t rev, void **out,
                     size_t *out_len, int *del)
{
    struct put *p = (struct put *)op;
    (void)cur;
    (void)cur_len;
    (void)rev;
    (void)del;
    *out = xstrdup(p->val);
    *out_len = strlen(p->val);
    return 0;
}

static void put_done(struct store_op *op, int err, const struct store_change *ch)
{
    struct put *p = (struct put *)op;
    (void)ch;
    p->err = err;
    p->done = 1;
}

/* n puts key<i> = v<i>, in batches of 10; 0 if all succeeded. */
static int put_many(store_t *s, int from, int n)
{
    int bad = 0;
    for (int i = from; i < from + n; i += 10) {
        struct put p[10] = {0};
        int k = from + n - i < 10 ? from + n - i : 10;
        for (int j = 0; j < k; j++) {
            snprintf(p[j].key, sizeof(p[j].key), "pods/ns/k%06d", i + j);
            put_val(p[j].val, sizeof(p[j].val), i + j);
            p[j].op = (struct store_op){
                .key = p[j].key, .key_len = strlen(p[j].key), .apply = put_apply, .done = put_done};
            store_submit(s, &p[j].op);
        }
        for (int j = 0; j < k; j++) {
            while (!p[j].done)
                event_base_loop(base, EVLOOP_ONCE);
            bad += p[j].err != 0;
        }
    }
    return bad;
}

static const char *map_dir; /* store_opts.map_dir of the stores open_at opens */

static store_t *open_at(const char *dir, size_t wal_size, char **err)
{
    struct store_opts o = {
        .dir = dir, .wal_size = wal_size, .compact_keep = 50, .map_dir = map_dir};
    store_t *s = NULL;
    *err = NULL;
    if (store_open(&s, &o, base, err))
        return NULL;
    return s;
}

/* Number of keys k0..k(n-1) present with their values. */
static int count_keys(store_t *s, int n)
{
    store_rtxn_t *t;
    int found = 0;
    if (store_read_begin(s, &t))
        return -1;
    for (int i = 0; i < n; i++) {
        char k[32], v[512];
        const void *got;
        size_t gl;
        snprintf(k, sizeof(k), "pods/ns/k%06d", i);
        put_val(v, sizeof(v), i);
        if (store_get(t, k, strlen(k), &got, &gl) == 0 && gl == strlen(v) && !memcmp(got, v, gl))
            found++;
    }
    store_read_end(t);
    return found;
}

/* Records in DIR/wal whose entries are packed. */
static int count_packed(const char *dir)
{
    char *p = xasprintf("%s/wal", dir);
    int fd = open(p, O_RDONLY), n = 0;
    free(p);
    uint8_t h[WAL_REC_HDR];
    off_t off = WAL_HDR_SIZE;
    while (fd >= 0 && pread(fd, h, sizeof(h), off) == (ssize_t)sizeof(h)) {
        uint32_t len =
            (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
        if (len < WAL_REC_HDR)
            break;
        n += (h[43] & 0x80) != 0;
        off += len;
    }
    if (fd >= 0)
        close(fd);
    return n;
}

/* A child writes keys from..from+n and ends without closing the store: a crash. */
static void crash_after(const char *dir, size_t wal_size, int from, int n)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        log_set_level(LOG_LVL_ERR);
        event_base_free(base);
        base = event_base_new();
        char *err;
        store_t *s = open_at(dir, wal_size, &err);
        _exit(!s || put_many(s, from, n) ? 1 : 0);
    }
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        diag("crash child failed");
}

/* What a machine crash may leave of a map that was never synced: garbage. */
static void tear_map(const char *dir)
{
    char *p = xasprintf("%s/data.mdb", dir);
    int fd = open(p, O_RDWR);
    struct stat st;
    fstat(fd, &st);
    char junk[4096];
    memset(junk, 0xa5, sizeof(junk));
    for (off_t off = 0; off < st.st_size; off += 3 * 4096)
        if (pwrite(fd, junk, sizeof(junk), off) != (ssize_t)sizeof(junk))
            break;
    close(fd);
    free(p);
}

static void test_store_crash(void)
{
    char *dir = subdir("store"), *err;
    store_t *s = open_at(dir, 0, &err);
    ok(s && put_many(s, 0, 100) == 0, "100 puts");
    store_close(s);
    crash_after(dir, 0, 100, 100);
    tear_map(dir);
    s = open_at(dir, 0, &err);
    ok(s && count_keys(s, 200) == 200, "a crash, then a torn map: all 200 puts there");
    ok(s && store_rev(s) == 200, "at revision 200 (%llu)",
       s ? (unsigned long long)store_rev(s) : 0);
    store_close(s);

    /* checkpoints during the writes: a small log */
    crash_after(dir, 64 << 10, 200, 1000);
    tear_map(dir);
    s = open_at(dir, 64 << 10, &err);
    ok(s && count_keys(s, 1200) == 1200, "with checkpoints between: all 1200 there");
    store_close(s);

    /* a checkpoint cut short: a copy left half written, the log intact */
    crash_after(dir, 0, 1200, 50);
    char *tmp = xasprintf("%s/snap.mdb.tmp", dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (write(fd, "half", 4) != 4)
        diag("write: %s", strerror(errno));
    close(fd);
    tear_map(dir);
    s = open_at(dir, 0, &err);
    ok(s && count_keys(s, 1250) == 1250, "a checkpoint's copy cut short: nothing lost");
    store_close(s);
    free(tmp);

    /* a checkpoint cut after its copy, before the log's new epoch: records the copy has */
    crash_after(dir, 0, 1250, 20);
    char *cmd = xasprintf("cp %s/data.mdb %s/snap.mdb", dir, dir);
    if (system(cmd) != 0)
        diag("%s failed", cmd);
    free(cmd);
    tear_map(dir);
    s = open_at(dir, 0, &err);
    ok(s && count_keys(s, 1270) == 1270 && store_rev(s) == 1270,
       "a checkpoint cut before the new epoch: the copy's records are skipped");
    ok(s && put_many(s, 1270, 10) == 0, "and writes go on");
    store_close(s);

    /* a torn log tail: the last record cut */
    crash_after(dir, 0, 1280, 1);
    char *walp = xasprintf("%s/wal", dir);
    wal_t *w;
    int created;
    uint64_t last = 0;
    wal_open(&w, dir, 0, &created, &err);
    wal_scan(w, count_fn, &last, &err);
    size_t end = WAL_HDR_SIZE + wal_used(w);
    wal_close(w);
    ok(last == 1281, "the log ends at revision 1281 (%llu)", (unsigned long long)last);
    corrupt_at(walp, (off_t)end - 3);
    tear_map(dir);
    s = open_at(dir, 0, &err);
    ok(s && count_keys(s, 1280) == 1280 && store_rev(s) == 1280,
       "a torn last record: the rest is there, at 1280");
    ok(s && put_many(s, 1280, 10) == 0 && count_keys(s, 1290) == 1290, "and writes go on");
    store_close(s);

    /* a corrupt middle: refused, naming the file and offset */
    crash_after(dir, 0, 1290, 30);
    corrupt_at(walp, WAL_HDR_SIZE + 50);
    s = open_at(dir, 0, &err);
    ok(!s && err && strstr(err, walp) && strstr(err, "offset 4096"),
       "a corrupt record in the middle: refused (%s)", err ? err : "(none)");
    free(err);
    free(walp);
    free(dir);

    /* batches packed in the log: a crash, a torn map, with and without checkpoints */
    char *pdir = subdir("packed");
    pad = 300;
    crash_after(pdir, 0, 0, 300);
    int packed = count_packed(pdir);
    tear_map(pdir);
    s = open_at(pdir, 0, &err);
    ok(packed > 0 && s && count_keys(s, 300) == 300,
       "%d packed records replayed after a crash: all 300 puts there", packed);
    store_close(s);
    crash_after(pdir, 64 << 10, 300, 1000);
    tear_map(pdir);
    s = open_at(pdir, 64 << 10, &err);
    ok(s && count_keys(s, 1300) == 1300 && store_rev(s) == 1300,
       "packed, with checkpoints between: all 1300 there");
    store_close(s);
    pad = 0;
    free(pdir);
}

/* The map in a directory of its own (a tmpfs in use): rebuilt at every start. */
static void test_map_dir(void)
{
    char *dir = subdir("mapped"), *err;
    char *mdir = xasprintf("%s/map", tmpdir), *cmd = xasprintf("rm -rf %s", mdir);
    map_dir = mdir;
    store_t *s = open_at(dir, 0, &err);
    ok(s && put_many(s, 0, 100) == 0, "100 puts with the map in %s", mdir);
    char *data = xasprintf("%s/data.mdb", dir), *mdata = xasprintf("%s/data.mdb", mdir);
    ok(access(data, F_OK) < 0 && access(mdata, F_OK) == 0, "data.mdb is in the map directory");
    store_close(s);
    if (system(cmd) != 0)
        diag("%s failed", cmd);
    s = open_at(dir, 0, &err);
    ok(s && count_keys(s, 100) == 100, "after a clean stop and the map gone (a reboot): all there");
    store_close(s);
    crash_after(dir, 0, 100, 100);
    if (system(cmd) != 0)
        diag("%s failed", cmd);
    s = open_at(dir, 0, &err);
    ok(s && count_keys(s, 200) == 200 && store_rev(s) == 200,
       "after a crash and the map gone: all 200 there, at 200");
    store_close(s);
    crash_after(dir, 64 << 10, 200, 500);
    tear_map(mdir);
    s = open_at(dir, 64 << 10, &err);
    ok(s && count_keys(s, 700) == 700, "checkpoints between, a crash, the map torn: all 700 there");
    store_close(s);
    /* a store that had its map in the data directory moves it */
    map_dir = NULL;
    char *dir2 = subdir("moving");
    s = open_at(dir2, 0, &err);
    ok(s && put_many(s, 0, 50) == 0, "50 puts, the map in the data directory");
    store_close(s);
    char *mdir2 = xasprintf("%s/map2", tmpdir);
    map_dir = mdir2;
    s = open_at(dir2, 0, &err);
    ok(s && count_keys(s, 50) == 50, "moved to a map directory: all 50 there");
    store_close(s);
    map_dir = NULL;
    free(mdir2);
    free(dir2);
    free(data);
    free(mdata);
    free(cmd);
    free(mdir);
    free(dir);
}

/* the header's format field set to v, its checksum made good again */
static void set_version(const char *path, uint32_t v)
{
    uint8_t h[64];
    int fd = open(path, O_RDWR);
    if (fd < 0 || pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
        diag("read %s failed", path);
        if (fd >= 0)
            close(fd);
        return;
    }
    for (int i = 0; i < 4; i++)
        h[12 + i] = (uint8_t)(v >> (8 * i));
    uint32_t c = wal_crc32c(0, h + 12, sizeof(h) - 12);
    for (int i = 0; i < 4; i++)
        h[8 + i] = (uint8_t)(c >> (8 * i));
    if (pwrite(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h))
        diag("write %s failed", path);
    close(fd);
}

static uint32_t get_version(const char *path)
{
    uint8_t h[64] = {0};
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        if (pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h))
            diag("read %s failed", path);
        close(fd);
    }
    return (uint32_t)h[12] | (uint32_t)h[13] << 8 | (uint32_t)h[14] << 16 | (uint32_t)h[15] << 24;
}

static int raw_fn(const struct wal_rec *r, void *arg, char **err)
{
    (void)err;
    size_t *n = arg;
    *n += r->n;
    return 0;
}

/* packed records fill the log's budget as if unpacked: a replay reads no more than before */
static void test_budget(void)
{
    char *dir = subdir("budget"), *err = NULL;
    wal_t *w = NULL;
    int created = 0, rc = 0, appended = 0;
    struct buf b = {0}, tmp = {0};
    wal_open(&w, dir, 1 << 20, &created, &err);
    wal_restart(w, 9);
    size_t raw = 0;
    while (!rc) {
        batch_build(&b, 100);
        wal_rec_pack(&b, &tmp);
        wal_rec_finish(&b, wal_epoch(w), 9 + (uint64_t)appended * 100,
                       9 + (uint64_t)(appended + 1) * 100, 0);
        rc = wal_append(w, b.p, b.len);
        if (!rc) {
            appended++;
            raw += wal_rec_raw_len(b.p, b.len);
        }
    }
    ok(rc == WAL_EFULL && wal_used(w) == raw && raw <= (1 << 20) && raw + 23000 > (1 << 20),
       "the log is full when its records, unpacked, fill it: %d records, %zu bytes unpacked",
       appended, raw);
    ok(wal_grow(w, wal_rec_raw_len(b.p, b.len)) == 0 && wal_append(w, b.p, b.len) == 0,
       "grown by one record's unpacked size, the log takes it");
    raw += wal_rec_raw_len(b.p, b.len);
    wal_close(w);
    w = NULL;
    size_t n = 0;
    ok(wal_open(&w, dir, 1 << 20, &created, &err) == 0 && wal_scan(w, raw_fn, &n, &err) == 0 &&
           n == (size_t)(appended + 1) * 100 && wal_used(w) == raw,
       "after a reopen the scan reads every entry and counts the same unpacked bytes");
    wal_close(w);
    buf_free(&b);
    buf_free(&tmp);
    free(err);
    free(dir);
}

/* a log from before packing is read and marked as one that may hold packed records */
static void test_version(void)
{
    char *dir = subdir("version"), *path = xasprintf("%s/wal", dir), *err = NULL;
    wal_t *w = NULL;
    int created = 0;
    wal_open(&w, dir, 1 << 20, &created, &err);
    wal_close(w);
    ok(get_version(path) == 2, "a new log is format 2");
    set_version(path, 1);
    w = NULL;
    ok(wal_open(&w, dir, 1 << 20, &created, &err) == 0 && !created, "a format-1 log opens");
    wal_close(w);
    ok(get_version(path) == 2, "and is format 2 from then on: an older program refuses it");
    set_version(path, 3);
    w = NULL;
    int rc = wal_open(&w, dir, 1 << 20, &created, &err);
    ok(rc == -1 && err && strstr(err, "log format 3"), "a later format is refused: %s",
       err ? err : "(none)");
    free(err);
    free(path);
    free(dir);
}

int main(void)
{
    if (!mkdtemp(tmpdir))
        return 1;
    base = event_base_new();
    log_set_level(LOG_LVL_ERR);
    test_records();
    test_packed();
    test_version();
    test_budget();
    test_file();
    test_store_crash();
    test_map_dir();
    event_base_free(base);
    char *cmd = xasprintf("rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        diag("cleanup failed");
    free(cmd);
    return done_testing();
}
