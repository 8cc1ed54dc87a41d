/*
 * wal: the store's write-ahead log file and its record format (see wal.h).
 */
#include "config.h"
#include "wal.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <lz4.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define WAL_MAGIC "CRLWAL01"
/* 2: records may be packed (WAL_REC_LZ4); a version-1 log is read, and rewritten as 2 */
#define WAL_VERSION 2
#define WAL_MIN_SIZE ((size_t)64 << 10)
#define WAL_PAGE 4096

struct wal {
    char *path;
    int fd;
    int dfd;     /* the same file with O_DSYNC: an append is one pwrite, synced when it returns */
    int direct;  /* dfd has O_DIRECT too (appends bypass the page cache) */
    size_t size; /* bytes of the file */
    size_t off;  /* append position */
    size_t last; /* where the last appended record starts (wal_revoke) */
    /* off and last counting packed records unpacked: what a replay reads, which the
     * file's size bounds as well (a packed log does not replay longer than a plain one) */
    size_t roff, rlast;
    uint64_t epoch, clean_rev, base_rev;
    int clean;
    /* the bytes of the page holding off, before off: appends write whole pages */
    uint8_t page[WAL_PAGE];
    uint8_t *out; /* the pages an append writes (page-aligned, for O_DIRECT) */
    size_t out_cap;
    uint64_t written; /* bytes of pages appends wrote */
    uint32_t version; /* the header's format */
    struct buf raw;   /* a packed record's entries, unpacked (wal_scan) */
};

/* ---- little-endian fields ---- */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- CRC-32C ----
 *
 * Every record is summed as it is written and again at every replay. A
 * table, byte by byte, costs about 7 instructions a byte: 7,000 for the
 * record of one REST create, on the commit thread, before its sync. x86's
 * SSE 4.2 and ARMv8's CRC extension compute this very polynomial 8 bytes
 * an instruction; the CPU is asked once, the table is the fallback.
 */

static uint32_t crc_table[256];
static uint32_t (*crc_fn)(uint32_t crc, const uint8_t *b, size_t n);
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/* crc is the running value, already inverted (as are those below) */
static uint32_t crc_bytes(uint32_t crc, const uint8_t *b, size_t n)
{
    while (n--)
        crc = crc_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC_HW 1
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *b, size_t n)
{
    uint64_t c = crc;
    for (; n >= 8; n -= 8, b += 8) {
        uint64_t v;
        memcpy(&v, b, 8);
        c = __builtin_ia32_crc32di(c, v);
    }
    for (; n; n--)
        c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
    return (uint32_t)c;
}
static bool crc_hw_ok(void)
{
    return __builtin_cpu_supports("sse4.2");
}
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#define CRC_HW 1
#include <arm_acle.h>
static uint32_t crc_hw(uint32_t crc, const uint8_t *b, size_t n)
{
    for (; n >= 8; n -= 8, b += 8) {
        uint64_t v;
        memcpy(&v, b, 8);
        crc = __crc32cd(crc, v);
    }
    for (; n; n--)
        crc = __crc32cb(crc, *b++);
    return crc;
}
static bool crc_hw_ok(void)
{
    return true; /* compiled for a CPU that has it */
}
#endif

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[i] = c;
    }
    crc_fn = crc_bytes;
#ifdef CRC_HW
    if (crc_hw_ok())
        crc_fn = crc_hw;
#endif
}

uint32_t wal_crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    return ~crc_fn(~crc, p, n);
}

uint32_t wal_crc32c_table(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    return ~crc_bytes(~crc, p, n);
}

/* A record's checksum: every byte but the crc field itself. */
static uint32_t rec_crc(const uint8_t *p, size_t len)
{
    return wal_crc32c(wal_crc32c(0, p, 4), p + 8, len - 8);
}

/* ---- records ---- */

void wal_rec_start(struct buf *b)
{
    buf_reset(b);
    buf_reserve(b, WAL_REC_HDR);
    memset(b->p, 0, WAL_REC_HDR);
    buf_commit(b, WAL_REC_HDR);
}

void wal_rec_add(struct buf *b, const struct wal_entry *e)
{
    uint8_t h[WAL_ENT_HDR];
    h[0] = (uint8_t)e->kind;
    put64(h + 1, e->rev);
    put32(h + 9, (uint32_t)e->key_len);
    put32(h + 13, (uint32_t)e->val_len);
    put32(h + 17, (uint32_t)e->prev_len);
    buf_add(b, h, sizeof(h));
    buf_add(b, e->key, e->key_len);
    buf_add(b, e->val, e->val_len);
    buf_add(b, e->prev, e->prev_len);
    uint8_t *n = (uint8_t *)b->p + 40;
    put32(n, get32(n) + 1);
}

void wal_rec_finish(struct buf *b, uint64_t epoch, uint64_t rev_before, uint64_t rev_after,
                    uint64_t compacted)
{
    uint8_t *p = (uint8_t *)b->p;
    put32(p, (uint32_t)b->len);
    put32(p + 4, 0);
    put64(p + 8, epoch);
    put64(p + 16, rev_before);
    put64(p + 24, rev_after);
    put64(p + 32, compacted);
    put32(p + 4, rec_crc(p, b->len));
}

/*
 * Packing. A batch's entries repeat themselves (replicas of one template
 * differ in a name, a uid and a few times): 175 REST creates, a 168 KB
 * record, pack into 12 KB with LZ4 at several GB/s, and the sync sends the
 * device a tenth of the bytes (137 us against 201 at the median). The
 * log's budget counts records unpacked (wal_append), so checkpoints come
 * as often as before. Small records (one write alone) stay as they are:
 * they fill one page either way.
 */
int wal_rec_pack(struct buf *b, struct buf *tmp)
{
    size_t raw = b->len - WAL_REC_HDR;
    if (raw < WAL_PACK_MIN || raw > WAL_RAW_MAX)
        return 0;
    int bound = LZ4_compressBound((int)raw);
    buf_reset(tmp);
    char *out = buf_reserve(tmp, (size_t)bound);
    int n = LZ4_compress_default(b->p + WAL_REC_HDR, out, (int)raw, bound);
    if (n <= 0 || (size_t)n + 4 >= raw)
        return 0;
    uint8_t *p = (uint8_t *)b->p;
    put32(p + 40, get32(p + 40) | WAL_REC_LZ4);
    put32(p + WAL_REC_HDR, (uint32_t)raw);
    memcpy(p + WAL_REC_HDR + 4, out, (size_t)n);
    b->len = WAL_REC_HDR + 4 + (size_t)n;
    return 1;
}

size_t wal_rec_raw_len(const void *rec, size_t len)
{
    const uint8_t *p = rec;
    if (len < WAL_REC_HDR + 4 || !(get32(p + 40) & WAL_REC_LZ4))
        return len;
    return WAL_REC_HDR + (size_t)get32(p + WAL_REC_HDR);
}

/* Checks that the entries fill the record exactly; 0 or -1. */
static int ents_check(const uint8_t *p, size_t len, uint32_t n)
{
    size_t pos = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (len - pos < WAL_ENT_HDR)
            return -1;
        const uint8_t *h = p + pos;
        uint64_t body = (uint64_t)get32(h + 9) + get32(h + 13) + get32(h + 17);
        if ((h[0] < 1 || h[0] > 3) && h[0] != WAL_OBJ)
            return -1;
        if (body > len - pos - WAL_ENT_HDR)
            return -1;
        pos += WAL_ENT_HDR + (size_t)body;
    }
    return pos == len ? 0 : -1;
}

int wal_rec_parse(const uint8_t *p, size_t avail, uint64_t epoch, struct wal_rec *out,
                  size_t *claimed, struct buf *raw)
{
    *claimed = 0;
    if (avail < 8)
        return WAL_REC_END;
    uint32_t len = get32(p), crc = get32(p + 4);
    if (len == 0 && crc == 0)
        return WAL_REC_END;
    *claimed = len;
    if (len < WAL_REC_HDR || len > avail || rec_crc(p, len) != crc)
        return WAL_REC_BAD;
    out->len = len;
    out->epoch = get64(p + 8);
    if (out->epoch != epoch)
        return WAL_REC_END;
    out->rev_before = get64(p + 16);
    out->rev_after = get64(p + 24);
    out->compacted = get64(p + 32);
    out->n = get32(p + 40);
    out->ents = p + WAL_REC_HDR;
    out->ents_len = len - WAL_REC_HDR;
    if (out->n & WAL_REC_LZ4) {
        /* packed: u32le bytes of the entries, then their LZ4 block */
        out->n &= ~WAL_REC_LZ4;
        if (out->ents_len < 5)
            return WAL_REC_BAD;
        uint32_t want = get32(out->ents);
        if (want < WAL_PACK_MIN || want > WAL_RAW_MAX || out->ents_len - 4 > INT_MAX)
            return WAL_REC_BAD;
        buf_reset(raw);
        char *d = buf_reserve(raw, want);
        if (LZ4_decompress_safe((const char *)out->ents + 4, d, (int)(out->ents_len - 4),
                                (int)want) != (int)want)
            return WAL_REC_BAD;
        out->ents = (const uint8_t *)d;
        out->ents_len = want;
    }
    if (out->rev_after < out->rev_before || ents_check(out->ents, out->ents_len, out->n))
        return WAL_REC_BAD;
    return WAL_REC_OK;
}

int wal_rec_next(const struct wal_rec *r, size_t *pos, struct wal_entry *e)
{
    if (*pos >= r->ents_len)
        return 0;
    const uint8_t *h = r->ents + *pos;
    e->kind = h[0];
    e->rev = get64(h + 1);
    e->key_len = get32(h + 9);
    e->val_len = get32(h + 13);
    e->prev_len = get32(h + 17);
    e->key = h + WAL_ENT_HDR;
    e->val = (const uint8_t *)e->key + e->key_len;
    e->prev = (const uint8_t *)e->val + e->val_len;
    *pos += WAL_ENT_HDR + e->key_len + e->val_len + e->prev_len;
    return 1;
}

/* ---- the file ---- */

static int pwrite_all(int fd, const void *p, size_t n, off_t off)
{
    const char *c = p;
    while (n) {
        ssize_t w = pwrite(fd, c, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        c += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

static int write_header(wal_t *w)
{
    uint8_t h[64] = {0};
    memcpy(h, WAL_MAGIC, 8);
    put32(h + 12, WAL_VERSION);
    put64(h + 16, w->epoch);
    put32(h + 24, (uint32_t)w->clean);
    put64(h + 32, w->clean_rev);
    put64(h + 40, w->base_rev);
    put32(h + 8, wal_crc32c(0, h + 12, sizeof(h) - 12));
    int rc = pwrite_all(w->fd, h, sizeof(h), 0);
    if (!rc && fdatasync(w->fd) < 0)
        rc = -errno;
    return rc;
}

static int read_header(wal_t *w, char **err)
{
    uint8_t h[64];
    ssize_t n = pread(w->fd, h, sizeof(h), 0);
    if (n != (ssize_t)sizeof(h) || memcmp(h, WAL_MAGIC, 8) ||
        get32(h + 8) != wal_crc32c(0, h + 12, sizeof(h) - 12)) {
        *err = xasprintf("store: %s: not a coracle write-ahead log, or its header (offset 0) "
                         "is corrupt",
                         w->path);
        return -1;
    }
    w->version = get32(h + 12);
    if (w->version != 1 && w->version != WAL_VERSION) {
        *err = xasprintf("store: %s: log format %u, this program knows %d", w->path, w->version,
                         WAL_VERSION);
        return -1;
    }
    w->epoch = get64(h + 16);
    w->clean = (int)get32(h + 24);
    w->clean_rev = get64(h + 32);
    w->base_rev = get64(h + 40);
    return 0;
}

/*
 * Drops the file's cached pages (all clean after a sync). The zeros were
 * written in large chunks and would stay cached as large folios: a small
 * append into one dirties all of it, and Linux counts all of it as
 * written (write_bytes), though only the changed blocks go to the disk.
 * Appends then bring pages back one by one.
 */
static void drop_cache(int fd)
{
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

/* w->page from the file: the bytes of the page holding w->off before it. */
static int load_page(wal_t *w)
{
    size_t start = w->off & ~(size_t)(WAL_PAGE - 1), n = w->off - start;
    memset(w->page, 0, sizeof(w->page));
    if (n && pread(w->fd, w->page, n, (off_t)start) != (ssize_t)n)
        return -EIO;
    return 0;
}

/* Writes zeros from the file's end up to size bytes, then syncs data and size. */
static int fill_zeros(int fd, size_t from, size_t size)
{
    static const char zeros[65536];
    int rc = 0;
    for (size_t off = from; off < size && !rc; off += sizeof(zeros)) {
        size_t n = size - off < sizeof(zeros) ? size - off : sizeof(zeros);
        rc = pwrite_all(fd, zeros, n, (off_t)off);
    }
    if (!rc && fsync(fd) < 0)
        rc = -errno;
    return rc;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* A new log at w->path (written as .tmp, then renamed): zeros, then the header. */
static int create_file(wal_t *w, const char *dir, size_t size, char **err)
{
    char *tmp = xasprintf("%s.tmp", w->path);
    struct statvfs sv;
    int rc = 0;
    /* a quarter of the free space at most: the map and its checkpoint copy need the rest */
    if (statvfs(dir, &sv) == 0 && size > (size_t)sv.f_bavail * sv.f_frsize / 4) {
        size_t fit = (size_t)sv.f_bavail * sv.f_frsize / 4 / WAL_MIN_SIZE * WAL_MIN_SIZE;
        log_info("store: %s: %zu bytes of log instead of %zu (the disk is short of space)", w->path,
                 fit < WAL_MIN_SIZE ? WAL_MIN_SIZE : fit, size);
        size = fit < WAL_MIN_SIZE ? WAL_MIN_SIZE : fit;
    }
    w->fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (w->fd < 0)
        rc = -errno;
    if (!rc && !(rc = fill_zeros(w->fd, 0, size)))
        w->size = size;
    if (!rc)
        drop_cache(w->fd);
    if (!rc && !(rc = write_header(w)) && rename(tmp, w->path) < 0)
        rc = -errno;
    if (!rc)
        rc = sync_dir(dir);
    if (rc) {
        *err = xasprintf("store: create %s: %s", w->path, strerror(-rc));
        unlink(tmp);
    }
    free(tmp);
    return rc ? -1 : 0;
}

/*
 * The descriptor appends go through: O_DSYNC, and O_DIRECT where the file
 * system takes it. A buffered O_DSYNC write copies the pages into the page
 * cache, then writes them back and flushes the device's cache; with
 * O_DIRECT the block layer gets the caller's pages at once (measured on
 * ext4 over virtio: 15-25 us less per append at the median, out of
 * 130-170). Both are synced when the write returns. 0 or -1 (errno).
 */
static int open_dsync(wal_t *w)
{
    if (w->dfd >= 0)
        close(w->dfd);
    w->direct = 1;
    w->dfd = open(w->path, O_WRONLY | O_DSYNC | O_DIRECT | O_CLOEXEC);
    if (w->dfd < 0 && errno == EINVAL) {
        w->direct = 0;
        w->dfd = open(w->path, O_WRONLY | O_DSYNC | O_CLOEXEC);
    }
    return w->dfd < 0 ? -1 : 0;
}

int wal_open(wal_t **out, const char *dir, size_t size, int *created, char **err)
{
    wal_t *w = xcalloc(1, sizeof(*w));
    w->dfd = -1;
    w->path = xasprintf("%s/wal", dir);
    w->fd = open(w->path, O_RDWR | O_CLOEXEC);
    w->off = w->last = w->roff = w->rlast = WAL_HDR_SIZE;
    *created = 0;
    *out = NULL;
    if (w->fd < 0 && errno == ENOENT) {
        *created = 1;
        if (create_file(w, dir, size < WAL_MIN_SIZE ? WAL_MIN_SIZE : size, err))
            goto fail;
    } else if (w->fd < 0) {
        *err = xasprintf("store: open %s: %s", w->path, strerror(errno));
        goto fail;
    } else {
        struct stat st;
        if (fstat(w->fd, &st) < 0 || (size_t)st.st_size < WAL_HDR_SIZE) {
            *err = xasprintf("store: %s: too short for a write-ahead log", w->path);
            goto fail;
        }
        w->size = (size_t)st.st_size;
        if (read_header(w, err))
            goto fail;
        /* an older program must not read records this one packs */
        int hrc = w->version != WAL_VERSION ? write_header(w) : 0;
        if (hrc) {
            *err = xasprintf("store: rewrite the header of %s: %s", w->path, strerror(-hrc));
            goto fail;
        }
    }
    if (open_dsync(w) < 0) {
        *err = xasprintf("store: open %s: %s", w->path, strerror(errno));
        goto fail;
    }
    *out = w;
    return 0;
fail:
    wal_close(w);
    return -1;
}

int wal_peek(const char *dir, int *in_use, char **err)
{
    wal_t w = {.path = xasprintf("%s/wal", dir), .fd = -1};
    int rc = 0;
    *in_use = 0;
    w.fd = open(w.path, O_RDONLY | O_CLOEXEC);
    if (w.fd < 0 && errno != ENOENT) {
        *err = xasprintf("store: open %s: %s", w.path, strerror(errno));
        rc = -1;
    } else if (w.fd >= 0 && !(rc = read_header(&w, err))) {
        *in_use = w.epoch != 0 && !w.clean;
    }
    if (w.fd >= 0)
        close(w.fd);
    free(w.path);
    return rc;
}

void wal_close(wal_t *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->dfd >= 0)
        close(w->dfd);
    free(w->out);
    free(w->path);
    buf_free(&w->raw);
    free(w);
}

const char *wal_path(const wal_t *w)
{
    return w->path;
}

uint64_t wal_epoch(const wal_t *w)
{
    return w->epoch;
}

uint64_t wal_base(const wal_t *w)
{
    return w->base_rev;
}

int wal_clean(const wal_t *w, uint64_t *rev)
{
    *rev = w->clean_rev;
    return w->clean;
}

size_t wal_used(const wal_t *w)
{
    return w->roff - WAL_HDR_SIZE;
}

uint64_t wal_written(const wal_t *w)
{
    return w->written;
}

size_t wal_size(const wal_t *w)
{
    return w->size;
}

/*
 * After a record at off failed: corruption in the middle if a valid record
 * of this epoch starts where the failed one says it ends.
 */
static int valid_after(const uint8_t *p, size_t size, size_t off, size_t claimed, uint64_t epoch,
                       struct buf *raw)
{
    struct wal_rec r;
    size_t c;
    if (claimed < WAL_REC_HDR || claimed > size - off)
        return 0;
    off += claimed;
    return wal_rec_parse(p + off, size - off, epoch, &r, &c, raw) == WAL_REC_OK;
}

int wal_scan(wal_t *w, wal_scan_fn fn, void *arg, char **err)
{
    uint8_t *p = mmap(NULL, w->size, PROT_READ, MAP_SHARED, w->fd, 0);
    if (p == MAP_FAILED) {
        *err = xasprintf("store: mmap %s: %s", w->path, strerror(errno));
        return -1;
    }
    size_t off = WAL_HDR_SIZE, roff = WAL_HDR_SIZE, claimed, torn = 0;
    int rc = 0;
    for (;;) {
        struct wal_rec r;
        int pr = wal_rec_parse(p + off, w->size - off, w->epoch, &r, &claimed, &w->raw);
        if (pr == WAL_REC_END)
            break;
        if (pr == WAL_REC_BAD) {
            if (valid_after(p, w->size, off, claimed, w->epoch, &w->raw)) {
                *err = xasprintf("store: %s: the record at offset %zu is corrupt (checksum or "
                                 "format) and valid records follow it: refusing to start "
                                 "without them; restore the data directory from a backup",
                                 w->path, off);
                rc = -1;
            } else {
                log_info("store: %s: torn record at offset %zu ignored (a write cut short, "
                         "never acknowledged)",
                         w->path, off);
                /* what it claims, or a page if its length is torn too; 16 MiB at most */
                torn = claimed >= WAL_REC_HDR && claimed <= w->size - off ? claimed : 4096;
                torn = torn > w->size - off ? w->size - off : torn > 16 << 20 ? 16 << 20 : torn;
            }
            break;
        }
        if ((rc = fn(&r, arg, err)))
            break;
        off += r.len;
        roff += WAL_REC_HDR + r.ents_len;
    }
    munmap(p, w->size);
    w->off = w->last = off;
    w->roff = w->rlast = roff;
    drop_cache(w->fd);
    /* the epoch goes on from here: no bytes of the torn record may be read as a later one */
    if (!rc && load_page(w)) {
        *err = xasprintf("store: read %s: %s", w->path, strerror(EIO));
        rc = -1;
    }
    if (!rc && torn) {
        uint8_t *z = xcalloc(1, torn);
        int zrc = pwrite_all(w->fd, z, torn, (off_t)off);
        free(z);
        if (!zrc && fdatasync(w->fd) < 0)
            zrc = -errno;
        if (zrc) {
            *err = xasprintf("store: %s: clear the torn record at offset %zu: %s", w->path, off,
                             strerror(-zrc));
            rc = -1;
        }
    }
    return rc;
}

/* w->out with room for n bytes, page-aligned (O_DIRECT wants aligned memory). */
static uint8_t *out_pages(wal_t *w, size_t n)
{
    if (n > w->out_cap) {
        size_t cap = w->out_cap ? w->out_cap : WAL_PAGE;
        while (cap < n)
            cap *= 2;
        free(w->out);
        if (posix_memalign((void **)&w->out, WAL_PAGE, cap))
            abort();
        w->out_cap = cap;
    }
    return w->out;
}

/*
 * Whole pages from the one holding w->off: the record after the page's
 * earlier bytes, zeros after it. A whole page needs no read of the old
 * one first, and the zeros clear stale bytes past the tail.
 */
int wal_append(wal_t *w, const void *rec, size_t len)
{
    size_t raw = wal_rec_raw_len(rec, len);
    if (len > w->size - w->off || w->roff > w->size || raw > w->size - w->roff)
        return WAL_EFULL;
    size_t start = w->off & ~(size_t)(WAL_PAGE - 1), head = w->off - start;
    size_t n = (head + len + WAL_PAGE - 1) & ~(size_t)(WAL_PAGE - 1);
    if (n > w->size - start)
        n = w->size - start;
    uint8_t *p = out_pages(w, n);
    memcpy(p, w->page, head);
    memcpy(p + head, rec, len);
    memset(p + head + len, 0, n - head - len);
    int rc = pwrite_all(w->dfd, p, n, (off_t)start);
    if (rc == -EINVAL && w->direct) {
        /* a file system or a length O_DIRECT does not take: buffered from now on */
        log_info("store: %s: O_DIRECT refused, appends go through the page cache", w->path);
        close(w->dfd);
        w->direct = 0;
        w->dfd = open(w->path, O_WRONLY | O_DSYNC | O_CLOEXEC);
        rc = w->dfd < 0 ? -errno : pwrite_all(w->dfd, p, n, (off_t)start);
    }
    if (rc)
        return rc;
    w->written += n;
    w->last = w->off;
    w->off += len;
    w->rlast = w->roff;
    w->roff += raw;
    size_t nstart = w->off & ~(size_t)(WAL_PAGE - 1);
    memset(w->page, 0, sizeof(w->page));
    memcpy(w->page, p + (nstart - start), w->off - nstart);
    return 0;
}

int wal_revoke(wal_t *w)
{
    size_t n = w->off - w->last;
    uint8_t *zeros = xcalloc(1, n ? n : 1);
    int rc = pwrite_all(w->fd, zeros, n, (off_t)w->last);
    free(zeros);
    if (!rc && fdatasync(w->fd) < 0)
        rc = -errno;
    if (!rc) {
        w->off = w->last;
        w->roff = w->rlast;
        rc = load_page(w);
    }
    return rc;
}

int wal_grow(wal_t *w, size_t need)
{
    if (w->roff <= w->size && need <= w->size - w->roff)
        return 0;
    size_t size = w->roff + need + WAL_MIN_SIZE;
    size -= size % WAL_MIN_SIZE;
    int rc = fill_zeros(w->fd, w->size, size);
    if (!rc)
        w->size = size;
    drop_cache(w->fd);
    return rc;
}

/* An empty log of epoch e from base_rev on: the header rewritten and synced. */
static int new_epoch(wal_t *w, uint64_t e, uint64_t base_rev)
{
    w->epoch = e;
    w->base_rev = base_rev;
    w->clean = 0;
    w->clean_rev = 0;
    int rc = write_header(w);
    if (!rc) {
        w->off = w->last = w->roff = w->rlast = WAL_HDR_SIZE;
        memset(w->page, 0, sizeof(w->page));
    }
    return rc;
}

int wal_restart(wal_t *w, uint64_t base_rev)
{
    uint64_t e = 0;
    while (!e || e == w->epoch)
        if (getrandom(&e, sizeof(e), 0) != (ssize_t)sizeof(e))
            e = (uint64_t)mono_ns() ^ ((uint64_t)getpid() << 32);
    return new_epoch(w, e, base_rev);
}

int wal_abandon(wal_t *w)
{
    return new_epoch(w, 0, 0);
}

int wal_mark(wal_t *w, int clean, uint64_t rev)
{
    w->clean = clean;
    w->clean_rev = clean ? rev : 0;
    return write_header(w);
}
