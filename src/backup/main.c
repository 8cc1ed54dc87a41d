/*
 * coracle-backup: online backup and offline restore of the apiserver's
 * LMDB store. LMDB lets several processes share one environment, so this
 * separate program opens the data directory read-only while the apiserver
 * keeps writing and copies one consistent snapshot (a read transaction),
 * compacted (MDB_CP_COMPACT: free pages dropped), to a file. --restore
 * puts such a file back as DIR/data.mdb, refusing while any process (the
 * apiserver) has the environment open. --inspect prints what a backup or a
 * data directory holds (revision, objects).
 *
 * It reads the store's layout (named databases "objects", "log", "meta";
 * meta "rev"/"compacted"/"schema" as 8-byte big-endian) only to report and
 * check; the copy itself is LMDB's own.
 *
 * --to-etcd and --from-etcd move a store between LMDB and etcd (to_etcd.c,
 * from_etcd.c), so a single-node install becomes an HA one, and back.
 */
#include "config.h"

#include "backup.h"
#include "cfg.h"
#include "enc.h"
#include "store_meta.h"
#include "util.h"
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct bk_info {
    uint64_t schema, rev, compacted;
    size_t objects, log;
};

/* Reads the store's meta and counts from env. Returns 0 or an LMDB error, *what naming the step. */
static int bk_read_info(MDB_env *env, struct bk_info *bi, const char **what)
{
    MDB_txn *txn = NULL;
    MDB_dbi meta, objs, log;
    MDB_stat st;
    int rc;
    memset(bi, 0, sizeof(*bi));
    *what = "mdb_txn_begin";
    rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc == MDB_MAP_RESIZED) { /* the apiserver grew the map since we opened */
        mdb_env_set_mapsize(env, 0);
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    }
    if (rc)
        return rc;
    *what = "open the store's databases (not a coracle store?)";
    if ((rc = mdb_dbi_open(txn, "meta", 0, &meta)) ||
        (rc = mdb_dbi_open(txn, "objects", 0, &objs)) || (rc = mdb_dbi_open(txn, "log", 0, &log)))
        goto out;
    *what = "read meta";
    if ((rc = store_meta_get(txn, meta, "schema", &bi->schema)) ||
        (rc = store_meta_get(txn, meta, "rev", &bi->rev)) ||
        (rc = store_meta_get(txn, meta, "compacted", &bi->compacted)))
        goto out;
    *what = "mdb_stat";
    if ((rc = mdb_stat(txn, objs, &st)))
        goto out;
    bi->objects = st.ms_entries;
    if ((rc = mdb_stat(txn, log, &st)))
        goto out;
    bi->log = st.ms_entries;
out:
    mdb_txn_abort(txn);
    return rc;
}

static int bk_check_unused(const char *dir, char **err);

/*
 * The map of a store whose apiserver stopped without closing it may be
 * torn (its commits were made durable by DIR/wal, not by syncing the
 * map): refused until an apiserver has rebuilt it. 0 or -1 with *err.
 */
static int bk_check_closed(const char *dir, char **err)
{
    int in_use;
    char *running = NULL;
    if (wal_peek(dir, &in_use, err) < 0)
        return -1;
    if (in_use && bk_check_unused(dir, &running) == 0) {
        *err = xasprintf("%s was not closed cleanly (%s/wal says so) and no apiserver runs on it: "
                         "its data.mdb may be torn; start coracle-apiserver on it once (it "
                         "rebuilds the store from snap.mdb and the log), then back it up",
                         dir, dir);
        return -1;
    }
    free(running);
    return 0;
}

int bk_open(const char *path, int is_file, MDB_env **envp, char **err)
{
    if (!is_file && bk_check_closed(path, err) < 0)
        return -1;
    MDB_env *env = NULL;
    int rc = mdb_env_create(&env);
    if (!rc)
        rc = mdb_env_set_maxdbs(env, 4);
    if (rc) {
        *err = xasprintf("mdb_env_create: %s", mdb_strerror(rc));
        mdb_env_close(env);
        return -1;
    }
    if (!is_file) {
        char *data = xasprintf("%s/data.mdb", path);
        int ok = access(data, R_OK) == 0;
        int e = errno;
        free(data);
        if (!ok) {
            *err = xasprintf("%s/data.mdb: %s (is %s the apiserver's --data-dir?)", path,
                             strerror(e), path);
            mdb_env_close(env);
            return -1;
        }
    }
    /* A backup file is private to us: no lock file (MDB_NOLOCK) beside it. */
    unsigned flags = MDB_RDONLY | MDB_NOTLS | (is_file ? MDB_NOSUBDIR | MDB_NOLOCK : 0);
    rc = mdb_env_open(env, path, flags, 0600);
    if (rc) {
        *err = xasprintf("%s: mdb_env_open: %s", path, mdb_strerror(rc));
        mdb_env_close(env);
        return -1;
    }
    *envp = env;
    return 0;
}

static int bk_inspect(const char *path, int is_file, struct bk_info *bi, char **err)
{
    MDB_env *env;
    if (bk_open(path, is_file, &env, err) < 0)
        return -1;
    const char *what;
    int rc = bk_read_info(env, bi, &what);
    mdb_env_close(env);
    if (rc) {
        *err = xasprintf("%s: %s: %s", path, what, mdb_strerror(rc));
        return -1;
    }
    if (bi->schema < 1 || bi->schema > BK_SCHEMA) {
        *err = xasprintf("%s: store schema %llu, this program knows %d", path,
                         (unsigned long long)bi->schema, BK_SCHEMA);
        return -1;
    }
    return 0;
}

static int bk_fsync_dir(const char *file)
{
    char *dup = xstrdup(file);
    int fd = open(dirname(dup), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dup);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* Copies the environment at dir to out (via out.tmp, fsync'd, renamed). */
static int bk_backup(const char *dir, const char *out, char **err)
{
    MDB_env *env;
    if (bk_open(dir, 0, &env, err) < 0)
        return -1;
    char *tmp = xasprintf("%s.tmp", out);
    int rc = -1, mrc;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        *err = xasprintf("%s: %s", tmp, strerror(errno));
        goto out;
    }
    mrc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT);
    if (mrc == MDB_MAP_RESIZED) {
        /* the apiserver grew the map: adopt its size and copy again from the start */
        mdb_env_set_mapsize(env, 0);
        if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
            *err = xasprintf("%s: %s", tmp, strerror(errno));
            goto out;
        }
        mrc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT);
    }
    if (mrc) {
        *err = xasprintf("copy %s to %s: %s", dir, tmp, mdb_strerror(mrc));
        goto out;
    }
    if (fsync(fd) < 0) {
        *err = xasprintf("fsync %s: %s", tmp, strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, out) < 0) {
        *err = xasprintf("rename %s to %s: %s", tmp, out, strerror(errno));
        goto out;
    }
    bk_fsync_dir(out);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        unlink(tmp);
    free(tmp);
    mdb_env_close(env);
    return rc;
}

/*
 * 0 if no process has dir's environment open; else -1 with *err naming the
 * pid. Every process with an LMDB environment open holds a shared fcntl
 * lock on byte 0 of lock.mdb (LMDB's liveness check), which F_GETLK sees.
 */
static int bk_check_unused(const char *dir, char **err)
{
    char *lock = xasprintf("%s/lock.mdb", dir);
    int fd = open(lock, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        free(lock);
        if (e == ENOENT)
            return 0;
        *err = xasprintf("%s/lock.mdb: %s", dir, strerror(e));
        return -1;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    int rc = 0;
    if (fcntl(fd, F_GETLK, &fl) < 0) {
        *err = xasprintf("%s: F_GETLK: %s", lock, strerror(errno));
        rc = -1;
    } else if (fl.l_type != F_UNLCK) {
        *err = xasprintf("%s is in use by process %ld (stop the apiserver first)", dir,
                         (long)fl.l_pid);
        rc = -1;
    }
    close(fd);
    free(lock);
    return rc;
}

static int bk_copy_file(const char *from, const char *to, char **err)
{
    int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
    if (in < 0) {
        *err = xasprintf("%s: %s", from, strerror(errno));
        return -1;
    }
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        *err = xasprintf("%s: %s", to, strerror(errno));
        goto done;
    }
    char buf[1 << 16];
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *err = xasprintf("read %s: %s", from, strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                *err = xasprintf("write %s: %s", to, strerror(errno));
                goto done;
            }
            off += w;
        }
    }
    if (fsync(out) < 0) {
        *err = xasprintf("fsync %s: %s", to, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* Puts the backup file into dir as data.mdb (dir created if missing). */
static int bk_restore(const char *file, const char *dir, int force, char **err)
{
    struct bk_info bi;
    if (bk_inspect(file, 1, &bi, err) < 0)
        return -1;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        *err = xasprintf("mkdir %s: %s", dir, strerror(errno));
        return -1;
    }
    if (bk_check_unused(dir, err) < 0)
        return -1;
    char *data = xasprintf("%s/data.mdb", dir), *tmp = xasprintf("%s/data.mdb.restore", dir);
    char *lock = xasprintf("%s/lock.mdb", dir);
    int rc = -1;
    if (!force && access(data, F_OK) == 0) {
        *err = xasprintf("%s exists; add --force to replace it", data);
        goto out;
    }
    if (bk_copy_file(file, tmp, err) < 0) {
        unlink(tmp);
        goto out;
    }
    /* The log and its checkpoint describe the old store: without them the next start
     * takes data.mdb as the state. They go first, so a crash here cannot bring them back. */
    static const char *const old[] = {"wal", "snap.mdb"};
    for (size_t i = 0; i < ARRAY_SIZE(old); i++) {
        char *f = xasprintf("%s/%s", dir, old[i]);
        int e = unlink(f) < 0 && errno != ENOENT ? errno : 0;
        if (e)
            *err = xasprintf("unlink %s: %s", f, strerror(e));
        free(f);
        if (e) {
            unlink(tmp);
            goto out;
        }
    }
    bk_fsync_dir(data);
    if (rename(tmp, data) < 0) {
        *err = xasprintf("rename %s to %s: %s", tmp, data, strerror(errno));
        unlink(tmp);
        goto out;
    }
    /* The lock file describes the old environment's readers: start afresh. */
    if (unlink(lock) < 0 && errno != ENOENT) {
        *err = xasprintf("unlink %s: %s", lock, strerror(errno));
        goto out;
    }
    bk_fsync_dir(data);
    printf("restored %s into %s: revision %llu, %zu objects\n", file, dir,
           (unsigned long long)bi.rev, bi.objects);
    rc = 0;
out:
    free(data);
    free(tmp);
    free(lock);
    return rc;
}

/* --to-etcd / --from-etcd on path (the argument, or --data-dir); returns the exit status. */
static int bk_etcd_mode(int to, const char *path, const struct bk_etcd_opts *o, int overwrite,
                        char **err)
{
    if (!to)
        return bk_from_etcd(o, path, err) < 0 ? 1 : 0;
    struct stat st;
    if (stat(path, &st) < 0) {
        *err = xasprintf("%s: %s", path, strerror(errno));
        return 1;
    }
    int rc = bk_to_etcd(path, !S_ISDIR(st.st_mode), o, overwrite, err);
    return rc < 0 ? 1 : rc;
}

int main(int argc, char **argv)
{
    static char *data_dir = LOCALSTATEDIR "/lib/coracle/apiserver", *out = "", *restore = "",
                *inspect = "";
    static char *etcd_servers = "", *etcd_cafile = "", *etcd_certfile = "", *etcd_keyfile = "",
                *etcd_prefix = "/registry", *etcd_timeout = "10s", *enc_config = "";
    static int force = 0, to_etcd = 0, from_etcd = 0, overwrite = 0;
    const struct cfg_opt opts[] = {
        {"data-dir", CFG_STR, &data_dir, "DIR",
         "the apiserver's --data-dir (default " LOCALSTATEDIR "/lib/coracle/apiserver)"},
        {"out", CFG_STR, &out, "FILE", "write an online, compacted backup of the store to FILE"},
        {"restore", CFG_STR, &restore, "FILE",
         "put backup FILE back as DIR/data.mdb (the apiserver must be stopped)"},
        {"force", CFG_BOOL, &force, "", "with --restore: replace an existing data.mdb"},
        {"inspect", CFG_STR, &inspect, "FILE",
         "print the revision and object count of backup FILE (or of --data-dir if FILE is -)"},
        {"to-etcd", CFG_BOOL, &to_etcd, "",
         "copy every object of DIR|FILE (default --data-dir) to etcd (--etcd-servers)"},
        {"from-etcd", CFG_BOOL, &from_etcd, "",
         "copy every object in etcd into a new store in DIR (default --data-dir)"},
        {"overwrite", CFG_BOOL, &overwrite, "",
         "with --to-etcd: replace objects already in etcd (default: report and leave them)"},
        {"etcd-servers", CFG_STR, &etcd_servers, "URL,URL,...",
         "etcd members, http:// or https:// (default none)"},
        {"etcd-cafile", CFG_STR, &etcd_cafile, "FILE",
         "CA that signed the etcd members' certificates"},
        {"etcd-certfile", CFG_STR, &etcd_certfile, "FILE", "client certificate for etcd"},
        {"etcd-keyfile", CFG_STR, &etcd_keyfile, "FILE", "key of --etcd-certfile"},
        {"etcd-prefix", CFG_STR, &etcd_prefix, "PREFIX",
         "key prefix of every object in etcd (default /registry)"},
        {"etcd-request-timeout", CFG_STR, &etcd_timeout, "DURATION",
         "give up a request to etcd, retries on every member included, after this (default 10s)"},
        {"encryption-provider-config", CFG_STR, &enc_config, "FILE",
         "with --to-etcd and --from-etcd: the apiserver's, for the resources it encrypts at rest"},
    };
    const struct cfg_prog prog = {
        "coracle-backup",
        "Online backup and restore of coracle-apiserver's LMDB store, and its copy to and from "
        "etcd.",
        NULL,
    };
    int i = cfg_main(argc, argv, opts, ARRAY_SIZE(opts), &prog);
    int etcd_mode = to_etcd || from_etcd;
    if (i < argc && (!etcd_mode || i + 1 < argc)) {
        fprintf(stderr, "coracle-backup: unexpected argument \"%s\" (see --help)\n",
                argv[etcd_mode ? i + 1 : i]);
        return 2;
    }
    int modes = !!*out + !!*restore + !!*inspect + to_etcd + from_etcd;
    if (modes != 1) {
        fprintf(stderr, "coracle-backup: give exactly one of --out FILE, --restore FILE, "
                        "--inspect FILE, --to-etcd, --from-etcd (see --help)\n");
        return 2;
    }
    char *err = NULL;
    struct bk_info bi;
    if (etcd_mode) {
        int64_t timeout;
        if (parse_duration(etcd_timeout, &timeout) < 0 || timeout < 1000000 ||
            timeout > 86400 * (int64_t)1000000000) {
            fprintf(stderr,
                    "coracle-backup: --etcd-request-timeout: \"%s\" is not a duration "
                    "(10s, 1m)\n",
                    etcd_timeout);
            return 2;
        }
        enc_t *enc = NULL;
        if (*enc_config && enc_load(enc_config, &enc, &err) < 0)
            goto fail;
        struct bk_etcd_opts eo = {
            .servers = etcd_servers,
            .cafile = *etcd_cafile ? etcd_cafile : NULL,
            .certfile = *etcd_certfile ? etcd_certfile : NULL,
            .keyfile = *etcd_keyfile ? etcd_keyfile : NULL,
            .prefix = *etcd_prefix ? etcd_prefix : "/registry",
            .timeout_ms = (int)(timeout / 1000000),
            .enc = enc,
        };
        int rc = bk_etcd_mode(to_etcd, i < argc ? argv[i] : data_dir, &eo, overwrite, &err);
        enc_free(enc);
        if (err)
            goto fail;
        return rc;
    }
    if (*inspect) {
        int is_file = strcmp(inspect, "-") != 0;
        if (bk_inspect(is_file ? inspect : data_dir, is_file, &bi, &err) < 0)
            goto fail;
        printf("revision %llu\ncompacted %llu\nobjects %zu\nlog %zu\n", (unsigned long long)bi.rev,
               (unsigned long long)bi.compacted, bi.objects, bi.log);
        return 0;
    }
    if (*restore) {
        if (bk_restore(restore, data_dir, force, &err) < 0)
            goto fail;
        return 0;
    }
    int64_t t0 = mono_ns();
    if (bk_backup(data_dir, out, &err) < 0)
        goto fail;
    if (bk_inspect(out, 1, &bi, &err) < 0) /* also checks that the copy opens */
        goto fail;
    struct stat st;
    stat(out, &st);
    printf("backed up %s to %s: revision %llu, %zu objects, %lld bytes, %.3f s\n", data_dir, out,
           (unsigned long long)bi.rev, bi.objects, (long long)st.st_size,
           (double)(mono_ns() - t0) / 1e9);
    return 0;
fail:
    fprintf(stderr, "coracle-backup: %s\n", err);
    free(err);
    return 1;
}
