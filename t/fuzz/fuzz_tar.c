/*
 * fuzz_tar: image layers as the unpacker reads them (src/lib/image_unpack.c,
 * libarchive's decompressors and tar reader under our path checks). Each
 * input is unpacked into an empty directory d/ of a private temp dir.
 * Invariants: nothing appears beside d/ (no member, hard link or write
 * through a symlink lands outside it), a success has both digests, and
 * what fails says why.
 */
#include "config.h"
#include "fuzz.h"
#include "image_int.h"
#include "util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct mem {
    const uint8_t *p;
    size_t n, off;
};

static ssize_t mem_read(void *arg, void *buf, size_t len)
{
    struct mem *m = arg;
    size_t k = m->n - m->off < len ? m->n - m->off : len;
    memcpy(buf, m->p + m->off, k);
    m->off += k;
    return (ssize_t)k;
}

static void clean(const char *dir)
{
    char *cmd = xasprintf("rm -rf '%s/d'", dir);
    if (system(cmd) != 0)
        abort();
    free(cmd);
}

static char dir[64];

static void remove_dir(void)
{
    rmdir(dir);
}

int fuzz_tar_one(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/fuzz_tar.XXXXXX");
        if (!mkdtemp(dir))
            abort();
        atexit(remove_dir);
    }
    char *d = xasprintf("%s/d", dir);
    if (mkdir(d, 0700) < 0)
        abort();
    struct mem m = {data, size, 0};
    struct img_unpack u = {.dest = d, .read = mem_read, .read_arg = &m};
    char *err = NULL;
    int rc = img_unpack(-1, &u, &err);
    if (rc < 0 && !err)
        abort();
    if (rc == 0 && (strlen(u.blob_hex) != 64 || strlen(u.diff_hex) != 64))
        abort();
    free(err);
    DIR *dd = opendir(dir);
    struct dirent *e;
    while (dd && (e = readdir(dd)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "d"))
            abort(); /* something escaped */
    if (dd)
        closedir(dd);
    clean(dir);
    free(d);
    return 0;
}

FUZZ_ENTRY(fuzz_tar_one)
