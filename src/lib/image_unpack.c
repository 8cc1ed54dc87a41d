/*
 * image_unpack: unpacks one tar stream (plain, gzip, zstd, xz or bzip2)
 * into a directory in-process with libarchive, hashing on the way both
 * the bytes as stored (a blob's digest) and the uncompressed tar (an
 * image layer's diff_id), so a layer is read once.
 *
 * Two libarchive readers are chained: the outer one only decompresses
 * (format "raw"), the inner one reads the tar from the outer's output.
 * The bytes between them are the diff_id's; the bytes the outer reads
 * from the source are the blob's.
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
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (256u << 10)
#define PROGRESS_EVERY (4u << 20)

struct unpack {
    struct img_unpack *u;
    int fd;
    unsigned char *buf;  /* CHUNK: what the outer reader reads */
    unsigned char *tbuf; /* CHUNK: what the inner reader reads */
    EVP_MD_CTX *blob, *diff;
    uint64_t done, shown;
    int rerr;              /* errno of a failed read */
    struct archive *outer; /* decompression */
    int outer_eof;
    smap_t *links; /* relative paths of the symlinks this stream made */
};

static la_ssize_t outer_read(struct archive *a, void *arg, const void **out)
{
    struct unpack *k = arg;
    (void)a;
    for (;;) {
        ssize_t n =
            k->u->read ? k->u->read(k->u->read_arg, k->buf, CHUNK) : read(k->fd, k->buf, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            k->rerr = errno ? errno : EIO;
            if (a)
                archive_set_error(a, k->rerr, "read: %s", strerror(k->rerr));
            return -1;
        }
        EVP_DigestUpdate(k->blob, k->buf, (size_t)n);
        k->done += (uint64_t)n;
        if (k->u->progress && (k->done - k->shown >= PROGRESS_EVERY || n == 0)) {
            k->shown = k->done;
            k->u->progress(k->done, k->u->arg);
        }
        *out = k->buf;
        return n;
    }
}

/* The uncompressed tar, for the inner reader: hashed for the diff_id. */
static la_ssize_t inner_read(struct archive *a, void *arg, const void **out)
{
    struct unpack *k = arg;
    (void)a;
    if (k->outer_eof)
        return 0;
    la_ssize_t n = archive_read_data(k->outer, k->tbuf, CHUNK);
    if (n < 0) {
        if (a)
            archive_set_error(a, archive_errno(k->outer), "%s", archive_error_string(k->outer));
        return -1;
    }
    if (n == 0)
        k->outer_eof = 1;
    EVP_DigestUpdate(k->diff, k->tbuf, (size_t)n);
    *out = k->tbuf;
    return n;
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
        return fail(err, -EBADMSG, "%s", archive_error_string(k->outer));
    while ((n = outer_read(NULL, k, &b)) > 0) /* after the compressed stream's end */
        ;
    return n < 0 ? fail(err, -k->rerr, "read: %s", strerror(k->rerr)) : 0;
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
        return fail(err, k->rerr ? -k->rerr : -EBADMSG, "%s", archive_error_string(in));
    return 0;
}

int img_unpack(int fd, struct img_unpack *u, char **err)
{
    struct unpack k = {.u = u, .fd = fd};
    struct archive *in = NULL, *out = NULL;
    struct archive_entry *raw;
    int rc = 0;
    k.buf = xmalloc(CHUNK);
    k.tbuf = xmalloc(CHUNK);
    k.blob = EVP_MD_CTX_new();
    k.diff = EVP_MD_CTX_new();
    EVP_DigestInit_ex(k.blob, EVP_sha256(), NULL);
    EVP_DigestInit_ex(k.diff, EVP_sha256(), NULL);
    k.links = smap_new();
    k.outer = archive_read_new();
    archive_read_support_filter_gzip(k.outer);
    archive_read_support_filter_zstd(k.outer);
    archive_read_support_filter_xz(k.outer);
    archive_read_support_filter_bzip2(k.outer);
    archive_read_support_format_raw(k.outer);
    if (archive_read_open(k.outer, &k, NULL, outer_read, NULL) != ARCHIVE_OK) {
        rc = fail(err, k.rerr ? -k.rerr : -EBADMSG, "%s", archive_error_string(k.outer));
        goto out;
    }
    int r = archive_read_next_header(k.outer, &raw);
    if (r == ARCHIVE_EOF) {
        k.outer_eof = 1; /* nothing at all: an empty layer */
    } else if (r != ARCHIVE_OK) {
        rc = fail(err, k.rerr ? -k.rerr : -EBADMSG, "%s", archive_error_string(k.outer));
        goto out;
    }
    u->compressed = archive_filter_code(k.outer, 0) != ARCHIVE_FILTER_NONE;
    in = archive_read_new();
    archive_read_support_format_tar(in);
    out = disk_writer();
    if (archive_read_open(in, &k, NULL, inner_read, NULL) != ARCHIVE_OK) {
        rc = fail(err, -EBADMSG, "%s", archive_error_string(in));
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
    finish_hex(k.blob, u->blob_hex);
    finish_hex(k.diff, u->diff_hex);
out:
    if (in)
        archive_read_free(in);
    if (out)
        archive_write_free(out);
    archive_read_free(k.outer);
    smap_free(k.links, NULL);
    EVP_MD_CTX_free(k.blob);
    EVP_MD_CTX_free(k.diff);
    free(k.buf);
    free(k.tbuf);
    return rc;
}
