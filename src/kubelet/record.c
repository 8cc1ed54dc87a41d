/*
 * record: the kubelet's durable record of the pods bound to its node and
 * of the ConfigMaps and Secrets they use, under <root-dir>/record:
 *
 *   pods/<uid>.pb                     the Pod (metadata and spec)
 *   configmaps/<namespace>_<name>.pb  the ConfigMap as listed
 *   secrets/<namespace>_<name>.pb     the Secret as listed
 *   complete                          the first pod list was recorded whole
 *
 * It is what lets the node start its pods again after a reboot while the
 * apiserver is out of reach (watch.c decides when, pods.c does it). Files
 * are protobuf, mode 0600 in 0700 directories (Secrets hold credentials;
 * their contents are never logged), each replaced atomically (a temp
 * file, fsync, rename, fsync of the directory) so a crash leaves the old
 * record or the new one. Little I/O: a Pod is recorded without what
 * changes on every status write (resourceVersion, managedFields, the
 * status but its startTime), and nothing is written when the file already
 * holds the same bytes, so an idle node writes nothing here.
 */
#include "config.h"
#include "klet.h"
#include "pb.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RECORD_MAX (16u << 20) /* a Secret or ConfigMap is at most 1 MiB; a pod far less */

static const char *ref_dir(enum podref_kind kind)
{
    return kind == PODREF_SECRET ? "secrets" : "configmaps";
}

static char *rec_path(const struct klet *k, const char *sub, const char *name)
{
    return xasprintf("%s/record/%s%s%s", k->cfg.root_dir, sub, name ? "/" : "", name ? name : "");
}

/* Names in the record: a uid, or namespace and name (DNS labels: no '/' and no '_'). */
static bool name_ok(const char *s)
{
    return s && *s && *s != '.' && !strchr(s, '/') && !strchr(s, '_');
}

static char *ref_file(const struct klet *k, enum podref_kind kind, const char *ns, const char *name)
{
    if (!name_ok(ns) || !name_ok(name))
        return NULL;
    char *base = xasprintf("%s_%s.pb", ns, name);
    char *p = rec_path(k, ref_dir(kind), base);
    free(base);
    return p;
}

static char *pod_file(const struct klet *k, const char *uid)
{
    if (!name_ok(uid))
        return NULL;
    char *base = xasprintf("%s.pb", uid);
    char *p = rec_path(k, "pods", base);
    free(base);
    return p;
}

/* The whole file (malloc'd) or NULL; *len its size. */
static uint8_t *file_read(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    uint8_t *b = NULL;
    if (fstat(fd, &st) == 0 && st.st_size >= 0 && (size_t)st.st_size <= RECORD_MAX) {
        b = xmalloc((size_t)st.st_size + 1);
        size_t got = 0;
        while (got < (size_t)st.st_size) {
            ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        *len = got;
    }
    close(fd);
    return b;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static void mkdirs(const struct klet *k, const char *sub)
{
    char *d = rec_path(k, "", NULL);
    mkdir(d, 0700);
    free(d);
    d = rec_path(k, sub, NULL);
    mkdir(d, 0700);
    free(d);
}

/*
 * path gets exactly data (0600), atomically; nothing is written when it
 * holds those bytes already. Failures are logged (the record is a help,
 * not a reason to stop a pod) and leave the old file.
 */
static void file_put(const struct klet *k, const char *sub, const char *path, const uint8_t *data,
                     size_t len)
{
    size_t olen = 0;
    uint8_t *old = file_read(path, &olen);
    bool same = old && olen == len && !memcmp(old, data, len);
    free(old);
    if (same)
        return;
    mkdirs(k, sub);
    char *tmp = xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        log_warn("record %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        free(tmp);
        return;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        log_warn("record %s: rename: %s", path, strerror(errno));
        unlink(tmp);
    } else {
        char *d = rec_path(k, sub, NULL);
        int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd); /* the rename itself is durable */
            close(dfd);
        }
        free(d);
    }
    free(tmp);
}

static void file_drop(const char *path)
{
    if (path && unlink(path) < 0 && errno != ENOENT)
        log_warn("record %s: %s", path, strerror(errno));
}

void klet_record_pod(struct klet *k, const Coracle__V1__Pod *pod)
{
    if (!pod->metadata || !pod->spec)
        return;
    char *path = pod_file(k, pod->metadata->uid);
    if (!path)
        return;
    /* Shallow copies that leave out what every status write changes. */
    Coracle__V1__ObjectMeta meta = *pod->metadata;
    meta.resourceversion = NULL;
    meta.n_managedfields = 0;
    meta.managedfields = NULL;
    Coracle__V1__PodStatus st = CORACLE__V1__POD_STATUS__INIT;
    if (pod->status)
        st.starttime = pod->status->starttime;
    Coracle__V1__Pod rec = *pod;
    rec.metadata = &meta;
    rec.status = &st;
    size_t len;
    uint8_t *buf = pb_encode(&rec.base, &len);
    file_put(k, "pods", path, buf, len);
    free(buf);
    free(path);
}

void klet_record_pod_forget(struct klet *k, const char *uid)
{
    char *path = pod_file(k, uid);
    file_drop(path);
    free(path);
}

size_t klet_record_pods(struct klet *k, Coracle__V1__Pod ***out)
{
    *out = NULL;
    char *dir = rec_path(k, "pods", NULL);
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < 4 || strcmp(e->d_name + l - 3, ".pb"))
            continue;
        char *path = xasprintf("%s/%s", dir, e->d_name);
        size_t len = 0;
        uint8_t *b = file_read(path, &len);
        Coracle__V1__Pod *pod = b ? coracle__v1__pod__unpack(NULL, len, b) : NULL;
        free(b);
        if (pod && pod->metadata && pod->metadata->uid && pod->spec) {
            *out = xrealloc(*out, (n + 1) * sizeof **out);
            (*out)[n++] = pod;
        } else {
            log_warn("record %s: unreadable; ignored", path);
            if (pod)
                coracle__v1__pod__free_unpacked(pod, NULL);
        }
        free(path);
    }
    if (d)
        closedir(d);
    free(dir);
    return n;
}

void klet_record_ref(struct klet *k, enum podref_kind kind, const ProtobufCMessage *obj)
{
    const Coracle__V1__ObjectMeta *m = kind == PODREF_SECRET
                                           ? ((const Coracle__V1__Secret *)obj)->metadata
                                           : ((const Coracle__V1__ConfigMap *)obj)->metadata;
    char *path = m ? ref_file(k, kind, m->namespace_, m->name) : NULL;
    if (!path)
        return;
    size_t len;
    uint8_t *buf = pb_encode(obj, &len);
    file_put(k, ref_dir(kind), path, buf, len);
    free(buf);
    free(path);
}

void klet_record_ref_forget(struct klet *k, enum podref_kind kind, const char *ns, const char *name)
{
    char *path = ref_file(k, kind, ns, name);
    file_drop(path);
    free(path);
}

ProtobufCMessage *klet_record_ref_load(struct klet *k, enum podref_kind kind, const char *ns,
                                       const char *name)
{
    char *path = ref_file(k, kind, ns, name);
    size_t len = 0;
    uint8_t *b = path ? file_read(path, &len) : NULL;
    ProtobufCMessage *obj = NULL;
    if (b)
        obj =
            protobuf_c_message_unpack(kind == PODREF_SECRET ? &coracle__v1__secret__descriptor
                                                            : &coracle__v1__config_map__descriptor,
                                      NULL, len, b);
    free(b);
    free(path);
    return obj;
}

bool klet_record_complete(const struct klet *k)
{
    char *path = rec_path(k, "complete", NULL);
    bool r = access(path, F_OK) == 0;
    free(path);
    return r;
}

void klet_record_set_complete(struct klet *k)
{
    if (klet_record_complete(k))
        return;
    mkdirs(k, "pods");
    char *path = rec_path(k, "complete", NULL);
    file_put(k, "", path, (const uint8_t *)"1\n", 2);
    free(path);
}

static bool pod_held(const struct klet *k, const char *file)
{
    for (size_t i = 0; i < k->npods; i++) {
        size_t l = strlen(k->pods[i]->uid);
        if (!strncmp(file, k->pods[i]->uid, l) && !strcmp(file + l, ".pb"))
            return true;
    }
    return false;
}

static bool ref_held(const struct klet *k, enum podref_kind kind, const char *file)
{
    for (size_t i = 0; i < k->nrefs; i++) {
        enum podref_kind rk;
        const char *ns, *name;
        klet_ref_key(k->refs[i], &rk, &ns, &name);
        size_t l = strlen(ns), m = strlen(name);
        if (rk == kind && !strncmp(file, ns, l) && file[l] == '_' &&
            !strncmp(file + l + 1, name, m) && !strcmp(file + l + 1 + m, ".pb"))
            return true;
    }
    return false;
}

/* Removes from <record>/sub what no pod (or no reference) holds, and temp files a crash left. */
static void prune_dir(const struct klet *k, const char *sub, int what)
{
    char *dir = rec_path(k, sub, NULL);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        bool held = what < 0 ? pod_held(k, e->d_name) : ref_held(k, what, e->d_name);
        if (held)
            continue;
        char *path = xasprintf("%s/%s", dir, e->d_name);
        file_drop(path);
        free(path);
    }
    if (d)
        closedir(d);
    free(dir);
}

void klet_record_prune(struct klet *k)
{
    prune_dir(k, "pods", -1);
    prune_dir(k, ref_dir(PODREF_CONFIGMAP), PODREF_CONFIGMAP);
    prune_dir(k, ref_dir(PODREF_SECRET), PODREF_SECRET);
}
