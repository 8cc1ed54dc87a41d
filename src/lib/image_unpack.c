/*
 * image_unpack: unpacks one tar stream (plain, gzip, zstd, xz or bzip2)
 * into a directory in-process with libarchive, hashing on the way both
 * the bytes as stored (a blob's digest) and the uncompressed tar (an
 * image layer's diff_id), so a layer is read once.
 *
 * Two stages run on two threads: the producer reads the source (hashing
 * the blob's digest), decompresses it and hashes the uncompressed tar (the
 * diff_id) into chunks; the writer (the calling thread) parses the tar with
 * libarchive and writes the files. A gzip layer, nearly every registry's,
 * is inflated with ISA-L's igzip where it was built in (2x zlib's speed
 * here); other compressions and a plain tar go through libarchive's
 * filters (an outer reader of format "raw"). On a pull the writer is the
 * slower stage (a file system's work per file and per byte), so the
 * producer's work costs no wall time on a second core. The producer reads
 * the source to its end, so the digests cover every byte; the progress
 * callback is called on the writer's thread.
 *
 * Paths are made safe before libarchive sees them, as GNU tar does: a
 * leading '/' is dropped, a member or hard link target with a ".."
 * component fails the unpacking; then they are prefixed with the
 * (realpath'd) destination. Nothing is written through a symlink: the
 * destination starts empty, so the only symlinks in it are those the
 * stream made, which are remembered; a member below one (or a directory
 * in its place) first removes it, so a real directory replaces it, as a
 * layer's directory replaces a lower symlink; a hard link whose target is
 * below one is refused. This costs no system call, where libarchive's
 * ARCHIVE_EXTRACT_SECURE_SYMLINKS opens every component of every path.
 * Owners are numeric and restored only as root; device nodes are made
 * only as root, as tar does.
 */
#include "config.h"

#include "image_int.h"
#include "smap.h"
#include "util.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#ifdef HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (256u << 10)
#define NBUF 4 /* chunks of tar between the decompressing thread and the writer */
#define PROGRESS_EVERY (4u << 20)

/* A chunk of the uncompressed tar handed from the decompressing thread to the writer. */
struct chunk {
    unsigned char *data;
    size_t len;
    uint64_t done; /* source bytes read when it was made, for progress */
};

struct unpack {
    struct img_unpack *u;
    int fd;
    /* The producer's (the writer's until the producer starts): */
    unsigned char *buf; /* CHUNK: what is read from the source */
    size_t have;        /* bytes of buf not yet decompressed (gzip: from buf + used) */
    size_t used;
    int src_eof;
    EVP_MD_CTX *blob, *diff;
    uint64_t done;         /* source bytes read */
    uint64_t shown;        /* the writer's: done as last shown to u->progress */
    int rerr;              /* errno of a failed read */
    struct archive *outer; /* decompression of all but gzip (and of gzip without ISA-L) */
#ifdef HAVE_ISAL
    struct inflate_state *gz; /* gzip with ISA-L's igzip; NULL when outer decompresses */
#endif
    int dec_eof;   /* the tar is out: what follows is only hashed */
    char *dec_err; /* the decompression's failure (malloc'd), or NULL */

    /* The pipeline: the producer (a thread, or inner_read itself when none could start)
     * reads, hashes and decompresses into chunks; the writer parses the tar and writes files.
     * Guarded by mu when threaded. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int threaded;
    pthread_t th;
    struct chunk q[NBUF];
    int wr, rd;    /* next chunk to fill, to hand out */
    int used_n;    /* chunks filled and not yet given back */
    int ready;     /* chunks filled and not yet handed out */
    int held;      /* the writer holds q[(rd - 1) % NBUF] (libarchive reads from it) */
    int prod_done; /* the producer is finished: prod_rc says how */
    int prod_rc;   /* 0 (the source was read to its end) or -errno */
    int stop;      /* the writer failed: the producer stops */
    int tar_eof;   /* inner_read has returned 0 */

    smap_t *links; /* relative paths of the symlinks this stream made */
};

/* Reads from the source into buf after what is there: bytes read (hashed as the blob's), 0 at
 * the end, -1 with rerr. */
static ssize_t src_read(struct unpack *k)
{
    if (k->used && k->have)
        memmove(k->buf, k->buf + k->used, k->have);
    k->used = 0;
    if (k->have == CHUNK)
        return (ssize_t)CHUNK; /* full: nothing read (callers only ask when it is not) */
    for (;;) {
        size_t room = CHUNK - k->have;
        unsigned char *at = k->buf + k->have;
        ssize_t n = k->u->read ? k->u->read(k->u->read_arg, at, room) : read(k->fd, at, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            k->rerr = errno ? errno : EIO;
            return -1;
        }
        EVP_DigestUpdate(k->blob, at, (size_t)n);
        k->done += (uint64_t)n;
        k->have += (size_t)n;
        if (n == 0)
            k->src_eof = 1;
        return n;
    }
}

/* libarchive's outer reader: hands it what buf holds (the first bytes, read before the format
 * was known), then reads on. */
static la_ssize_t outer_read(struct archive *a, void *arg, const void **out)
{
    struct unpack *k = arg;
    if (!k->have && src_read(k) < 0) {
        archive_set_error(a, k->rerr, "read: %s", strerror(k->rerr));
        return -1;
    }
    la_ssize_t n = (la_ssize_t)k->have;
    *out = k->buf + k->used;
    k->have = 0;
    k->used = 0;
    return n;
}

static int dec_fail(struct unpack *k, int rc, const char *fmt, ...) PRINTF(3, 4);
static int dec_fail(struct unpack *k, int rc, const char *fmt, ...)
{
    if (!k->dec_err) {
        va_list ap;
        va_start(ap, fmt);
        k->dec_err = xvasprintf(fmt, ap);
        va_end(ap);
    }
    return rc;
}

#ifdef HAVE_ISAL
static const char *isal_why(int r)
{
    switch (r) {
    case ISAL_INVALID_WRAPPER:
    case ISAL_UNSUPPORTED_METHOD:
        return "invalid gzip header";
    case ISAL_INCORRECT_CHECKSUM:
        return "gzip CRC mismatch";
    default:
        return "corrupt deflate data";
    }
}

/* Fills out with up to cap bytes of the gzip stream (members one after the other; bytes after
 * the last member are only hashed, as libarchive does): bytes made, 0 at its end, or -errno. */
static ssize_t gz_read(struct unpack *k, unsigned char *out, size_t cap)
{
    struct inflate_state *g = k->gz;
    for (;;) {
        if (g->block_state == ISAL_BLOCK_FINISH) { /* a member ended: another one? */
            while (k->have < 2 && !k->src_eof)
                if (src_read(k) < 0)
                    return dec_fail(k, -k->rerr, "read: %s", strerror(k->rerr));
            const unsigned char *b = k->buf + k->used;
            if (k->have < 2 || b[0] != 0x1f || b[1] != 0x8b)
                return 0;
            isal_inflate_reset(g);
            g->crc_flag = ISAL_GZIP;
        }
        if (!k->have && !k->src_eof && src_read(k) < 0)
            return dec_fail(k, -k->rerr, "read: %s", strerror(k->rerr));
        size_t before = k->have;
        g->next_in = k->buf + k->used;
        g->avail_in = (uint32_t)k->have;
        g->next_out = out;
        g->avail_out = (uint32_t)cap;
        int r = isal_inflate(g);
        k->used += k->have - g->avail_in;
        k->have = g->avail_in;
        if (r < 0)
            return dec_fail(k, -EBADMSG, "%s", isal_why(r));
        size_t n = cap - g->avail_out;
        if (n)
            return (ssize_t)n;
        if (g->block_state == ISAL_BLOCK_FINISH || (k->have && k->have < before))
            continue;
        /* nothing made and nothing taken: it wants more input than there is */
        if (k->src_eof || k->have == CHUNK)
            return dec_fail(k, -EBADMSG, "truncated gzip input");
        if (k->have && src_read(k) < 0)
            return dec_fail(k, -k->rerr, "read: %s", strerror(k->rerr));
    }
}
#endif

/* Fills out with up to cap bytes of the uncompressed tar: bytes made, 0 at its end, -errno. */
static ssize_t dec_read(struct unpack *k, unsigned char *out, size_t cap)
{
#ifdef HAVE_ISAL
    if (k->gz)
        return gz_read(k, out, cap);
#endif
    la_ssize_t n = archive_read_data(k->outer, out, cap);
    if (n < 0)
        return dec_fail(k, k->rerr ? -k->rerr : -EBADMSG, "%s", archive_error_string(k->outer));
    return n;
}

/* Makes the next chunk: the tar's next bytes (hashed for the diff_id); at the tar's end the
 * source is read to its end (trailing bytes count for the blob's digest) and 0 returned. */
static ssize_t produce(struct unpack *k, struct chunk *c)
{
    ssize_t n = 0;
    if (!k->dec_eof) {
        n = dec_read(k, c->data, CHUNK);
        if (n < 0)
            return n;
        if (n == 0)
            k->dec_eof = 1;
    }
    if (n > 0)
        EVP_DigestUpdate(k->diff, c->data, (size_t)n);
    while (n == 0 && !k->src_eof) { /* already hashed when read: dropped */
        k->have = k->used = 0;
        if (src_read(k) < 0)
            return dec_fail(k, -k->rerr, "read: %s", strerror(k->rerr));
    }
    c->len = (size_t)n;
    c->done = k->done;
    return n;
}
/* The producer thread: chunks until the source's end, a failure, or the writer's stop. */
static void *producer_main(void *arg)
{
    struct unpack *k = arg;
    pthread_mutex_lock(&k->mu);
    for (;;) {
        while (k->used_n == NBUF && !k->stop)
            pthread_cond_wait(&k->cv, &k->mu);
        if (k->stop)
            break;
        struct chunk *c = &k->q[k->wr];
        pthread_mutex_unlock(&k->mu);
        ssize_t n = produce(k, c);
        pthread_mutex_lock(&k->mu);
        if (n < 0) {
            k->prod_rc = (int)n;
            break;
        }
        k->wr = (k->wr + 1) % NBUF;
        k->used_n++;
        k->ready++;
        pthread_cond_broadcast(&k->cv);
        if (n == 0)
            break;
    }
    k->prod_done = 1;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

/* The next chunk for the writer (valid until the next call): 1, 0 when there is none left, or
 * -errno (the producer's failure). Without a thread, the chunk is made here. */
static int next_chunk(struct unpack *k, struct chunk **out)
{
    if (!k->threaded) {
        if (k->prod_done)
            return k->prod_rc < 0 ? k->prod_rc : 0;
        ssize_t n = produce(k, &k->q[0]);
        k->prod_done = n <= 0;
        k->prod_rc = n < 0 ? (int)n : 0;
        *out = &k->q[0];
        return n < 0 ? (int)n : 1;
    }
    pthread_mutex_lock(&k->mu);
    if (k->held) { /* libarchive is done with the one handed out last */
        k->held = 0;
        k->used_n--;
        pthread_cond_broadcast(&k->cv);
    }
    while (!k->ready && !k->prod_done)
        pthread_cond_wait(&k->cv, &k->mu);
    int rc = k->prod_rc;
    if (k->ready) {
        *out = &k->q[k->rd];
        k->rd = (k->rd + 1) % NBUF;
        k->ready--;
        k->held = 1;
        rc = 1;
    }
    pthread_mutex_unlock(&k->mu);
    return rc;
}

/* The uncompressed tar, for the inner reader. The last chunk of a stream is empty. */
static la_ssize_t inner_read(struct archive *a, void *arg, const void **out)
{
    struct unpack *k = arg;
    struct chunk *c = NULL;
    if (k->tar_eof)
        return 0;
    int r = next_chunk(k, &c);
    if (r < 0) {
        if (a)
            archive_set_error(a, -r, "%s", k->dec_err ? k->dec_err : strerror(-r));
        return -1;
    }
    if (r == 0 || c->len == 0) {
        k->tar_eof = 1;
        *out = NULL;
        return 0;
    }
    if (k->u->progress && c->done - k->shown >= PROGRESS_EVERY) {
        k->shown = c->done;
        k->u->progress(c->done, k->u->arg);
    }
    *out = c->data;
    return (la_ssize_t)c->len;
}

/* After the tar reader failed: the producer's failure (a read's errno) if it is the cause. */
static int read_rc(struct unpack *k)
{
    pthread_mutex_lock(&k->mu);
    int rc = k->prod_done && k->prod_rc < 0 ? k->prod_rc : -EBADMSG;
    pthread_mutex_unlock(&k->mu);
    return rc;
}

/* Stops the producer (it ends at its next chunk, or when its read returns) and waits for it. */
static void pipeline_stop(struct unpack *k)
{
    if (!k->threaded)
        return;
    pthread_mutex_lock(&k->mu);
    k->stop = 1;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->th, NULL);
    k->threaded = 0;
}

/* The member's path without a leading '/', empty and "." components: malloc'd, or NULL if a
 * component is ".." (GNU tar refuses those too). "" for the top directory. */
static char *clean_rel(const char *p)
{
    char *o = xmalloc(strlen(p) + 1);
    size_t n = 0;
    for (const char *c = p; *c;) {
        while (*c == '/')
            c++;
        size_t len = strcspn(c, "/");
        if (len == 2 && c[0] == '.' && c[1] == '.') {
            free(o);
            return NULL;
        }
        if (len && !(len == 1 && c[0] == '.')) {
            if (n)
                o[n++] = '/';
            memcpy(o + n, c, len);
            n += len;
        }
        c += len;
    }
    o[n] = 0;
    return o;
}

/* 1 if a component of rel starts with ".wh." (a whiteout, or inside one). */
static int is_whiteout(const char *rel)
{
    for (const char *c = rel; *c;) {
        if (!strncmp(c, ".wh.", 4))
            return 1;
        c += strcspn(c, "/");
        while (*c == '/')
            c++;
    }
    return 0;
}

static int fail(char **err, int rc, const char *fmt, ...) PRINTF(3, 4);
static int fail(char **err, int rc, const char *fmt, ...)
{
    if (err && !*err) {
        va_list ap;
        va_start(ap, fmt);
        *err = xvasprintf(fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int copy_data(struct archive *in, struct archive *out, char **err)
{
    for (;;) {
        const void *b;
        size_t len;
        la_int64_t off;
        int r = archive_read_data_block(in, &b, &len, &off);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN)
            return fail(err, -EBADMSG, "%s", archive_error_string(in));
        if (archive_write_data_block(out, b, len, off) < ARCHIVE_WARN)
            return fail(err, -EIO, "%s", archive_error_string(out));
    }
}

/* The longest proper prefix of rel (a directory on its path) that is a symlink this stream
 * made: its length, or 0. */
static size_t below_link(struct unpack *k, const char *rel)
{
    char *p = xstrdup(rel);
    size_t found = 0;
    for (char *slash = strchr(p, '/'); slash && !found; slash = strchr(slash + 1, '/')) {
        *slash = 0;
        if (smap_get(k->links, p))
            found = (size_t)(slash - p);
        *slash = '/';
    }
    free(p);
    return found;
}

/* Removes the symlink rel[0..n) (made by this stream) so that a directory can take its place. */
static int drop_link(struct unpack *k, const char *rel, size_t n, char **err)
{
    char *sub = xstrndup(rel, n), *path = xasprintf("%s/%s", k->u->dest, sub);
    int rc = 0;
    if (unlink(path) < 0 && errno != ENOENT)
        rc = fail(err, -errno, "%s: %s", sub, strerror(errno));
    smap_del(k->links, sub);
    free(sub);
    free(path);
    return rc;
}

/* Writes one member under dest; the member's path is already checked. */
static int extract_one(struct unpack *k, struct archive *in, struct archive *out,
                       struct archive_entry *e, const char *rel, char **err)
{
    const char *hl = archive_entry_hardlink(e);
    char *path = xasprintf("%s/%s", k->u->dest, *rel ? rel : ".");
    char *target = NULL;
    int rc = 0;
    if (hl) {
        char *hrel = clean_rel(hl);
        if (hrel && *hrel && !below_link(k, hrel))
            target = xasprintf("%s/%s", k->u->dest, hrel);
        free(hrel);
        if (!target) {
            rc = fail(err, -EBADMSG, "%s: hard link to \"%s\" outside the tree", rel, hl);
            goto out;
        }
        archive_entry_set_hardlink(e, target);
    }
    archive_entry_set_pathname(e, path);
    int r = archive_write_header(out, e);
    if (r < ARCHIVE_WARN) {
        rc = fail(err, -EBADMSG, "%s: %s", rel, archive_error_string(out));
        goto out;
    }
    if (archive_entry_size(e) > 0 && (rc = copy_data(in, out, err)) < 0)
        goto out;
    if (archive_write_finish_entry(out) < ARCHIVE_WARN)
        rc = fail(err, -EBADMSG, "%s: %s", rel, archive_error_string(out));
    else if (archive_entry_filetype(e) == AE_IFLNK && !hl)
        smap_put(k->links, rel, k);
out:
    free(path);
    free(target);
    return rc;
}

/* Clears the symlinks this stream made on rel's way and at rel (libarchive would follow one
 * to a directory), then writes the member. */
static int place(struct unpack *k, struct archive *in, struct archive *out, struct archive_entry *e,
                 const char *rel, char **err)
{
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = below_link(k, rel)) > 0)
        rc = drop_link(k, rel, n, err);
    if (rc == 0 && *rel && smap_get(k->links, rel))
        rc = drop_link(k, rel, strlen(rel), err);
    return rc < 0 ? rc : extract_one(k, in, out, e, rel, err);
}

static struct archive *disk_writer(void)
{
    struct archive *w = archive_write_disk_new();
    /* No ARCHIVE_EXTRACT_UNLINK: in an empty tree nothing is in the way but an earlier member
     * of the same path, which libarchive replaces anyway, so one unlink() a file is saved. */
    int flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_NODOTDOT;
    if (geteuid() == 0)
        flags |= ARCHIVE_EXTRACT_OWNER;
    archive_write_disk_set_options(w, flags);
    return w; /* no user/group lookup: owners stay numeric */
}

static void finish_hex(EVP_MD_CTX *md, char hex[65])
{
    unsigned char d[32];
    unsigned int dl = 0;
    EVP_DigestFinal_ex(md, d, &dl);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* Reads what the tar did not: trailing bytes count for both digests. */
static int drain(struct unpack *k, char **err)
{
    const void *b;
    la_ssize_t n;
    while ((n = inner_read(NULL, k, &b)) > 0)
        ;
    if (n < 0)
        return fail(err, k->prod_rc < 0 ? k->prod_rc : -EBADMSG, "%s",
                    k->dec_err ? k->dec_err : "read failed");
    if (k->u->progress && k->done != k->shown)
        k->u->progress(k->done, k->u->arg);
    return 0;
}

static int unpack_entries(struct unpack *k, struct archive *in, struct archive *out, char **err)
{
    struct archive_entry *e;
    int r;
    while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        const char *name = archive_entry_pathname(e);
        char *rel = name ? clean_rel(name) : NULL;
        int rc = 0;
        if (!rel)
            rc = fail(err, -EBADMSG, "%s: member name contains '..'", name ? name : "(none)");
        else if (!*rel && archive_entry_filetype(e) != AE_IFDIR)
            rc = fail(err, -EBADMSG, "a member with an empty name");
        else if (!(k->u->skip_whiteouts && is_whiteout(rel)))
            rc = place(k, in, out, e, rel, err);
        free(rel);
        if (rc < 0)
            return rc;
    }
    if (r != ARCHIVE_EOF)
        return fail(err, read_rc(k), "%s", archive_error_string(in));
    return 0;
}

/* The source's first bytes say its compression: gzip goes to ISA-L where there is one, the rest
 * (and a plain tar) to libarchive's filters. 0, or -errno with *err. */
static int open_source(struct unpack *k, char **err)
{
    while (k->have < 2 && !k->src_eof)
        if (src_read(k) < 0)
            return fail(err, -k->rerr, "read: %s", strerror(k->rerr));
#ifdef HAVE_ISAL
    if (k->have >= 2 && k->buf[0] == 0x1f && k->buf[1] == 0x8b) {
        k->gz = xmalloc(sizeof(*k->gz));
        isal_inflate_init(k->gz);
        k->gz->crc_flag = ISAL_GZIP;
        k->u->compressed = 1;
        return 0;
    }
#endif
    struct archive_entry *raw;
    k->outer = archive_read_new();
    archive_read_support_filter_gzip(k->outer);
    archive_read_support_filter_zstd(k->outer);
    archive_read_support_filter_xz(k->outer);
    archive_read_support_filter_bzip2(k->outer);
    archive_read_support_format_raw(k->outer);
    if (archive_read_open(k->outer, k, NULL, outer_read, NULL) != ARCHIVE_OK)
        return fail(err, k->rerr ? -k->rerr : -EBADMSG, "%s", archive_error_string(k->outer));
    int r = archive_read_next_header(k->outer, &raw);
    if (r == ARCHIVE_EOF)
        k->dec_eof = 1; /* nothing at all: an empty layer */
    else if (r != ARCHIVE_OK)
        return fail(err, k->rerr ? -k->rerr : -EBADMSG, "%s", archive_error_string(k->outer));
    k->u->compressed = archive_filter_code(k->outer, 0) != ARCHIVE_FILTER_NONE;
    return 0;
}

int img_unpack(int fd, struct img_unpack *u, char **err)
{
    struct unpack k = {.u = u, .fd = fd};
    struct archive *in = NULL, *out = NULL;
    int rc = 0;
    k.buf = xmalloc(CHUNK);
    for (int i = 0; i < NBUF; i++)
        k.q[i].data = xmalloc(CHUNK);
    k.blob = EVP_MD_CTX_new();
    k.diff = EVP_MD_CTX_new();
    EVP_DigestInit_ex(k.blob, EVP_sha256(), NULL);
    EVP_DigestInit_ex(k.diff, EVP_sha256(), NULL);
    k.links = smap_new();
    pthread_mutex_init(&k.mu, NULL);
    pthread_cond_init(&k.cv, NULL);
    u->compressed = 0;
    if ((rc = open_source(&k, err)) < 0)
        goto out;
    /* Decompressing and hashing on one core, writing files on the other. */
    k.threaded = pthread_create(&k.th, NULL, producer_main, &k) == 0;
    in = archive_read_new();
    archive_read_support_format_tar(in);
    out = disk_writer();
    if (archive_read_open(in, &k, NULL, inner_read, NULL) != ARCHIVE_OK) {
        rc = fail(err, read_rc(&k), "%s", archive_error_string(in));
        goto out;
    }
    if ((rc = unpack_entries(&k, in, out, err)) < 0)
        goto out;
    if (archive_write_close(out) != ARCHIVE_OK) { /* directory times and modes are set here */
        rc = fail(err, -EIO, "%s", archive_error_string(out));
        goto out;
    }
    if ((rc = drain(&k, err)) < 0)
        goto out;
    pipeline_stop(&k);
    finish_hex(k.blob, u->blob_hex);
    finish_hex(k.diff, u->diff_hex);
out:
    pipeline_stop(&k);
    if (in)
        archive_read_free(in);
    if (out)
        archive_write_free(out);
    if (k.outer)
        archive_read_free(k.outer);
#ifdef HAVE_ISAL
    free(k.gz);
#endif
    smap_free(k.links, NULL);
    EVP_MD_CTX_free(k.blob);
    EVP_MD_CTX_free(k.diff);
    pthread_mutex_destroy(&k.mu);
    pthread_cond_destroy(&k.cv);
    free(k.dec_err);
    free(k.buf);
    for (int i = 0; i < NBUF; i++)
        free(k.q[i].data);
    return rc;
}
