/*
 * volumes: the pod's volumes on the host. emptyDir is a directory under
 * <pod dir>/volumes/<name> (medium Memory: a tmpfs, size = sizeLimit); it
 * lives as long as the pod, across container restarts. hostPath is the
 * host's path (type DirectoryOrCreate/FileOrCreate create it). configMap
 * and secret volumes live there too, written by cfgvol.c. fsGroup makes
 * the pod's group own emptyDir, configMap and secret volumes. Also the
 * unmount-everything-below and rm -rf helpers the teardown uses.
 */
#include "config.h"
#include "klet.h"
#include "qty.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

bool klet_mounted_at(const char *path)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return false;
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char mp[4096];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && !strcmp(mp, path))
            found = true;
    }
    fclose(f);
    return found;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = 0;
            mkdir(p, mode);
            *s = '/';
        }
    }
    int rc = mkdir(p, mode);
    free(p);
    return rc == 0 || errno == EEXIST ? 0 : -1;
}

int klet_volumes_setup(const char *dir, const Coracle__V1__PodSpec *spec, char **err)
{
    char *vdir = xasprintf("%s/volumes", dir);
    mkdir(vdir, 0755);
    int rc = 0;
    for (size_t i = 0; i < spec->n_volumes && rc == 0; i++) {
        const Coracle__V1__Volume *v = spec->volumes[i];
        const Coracle__V1__VolumeSource *src = v->volumesource;
        if (!v->name || !src)
            continue;
        if (src->emptydir) {
            char *p = xasprintf("%s/%s", vdir, v->name);
            if (mkdir(p, 0777) < 0 && errno != EEXIST) {
                *err = xasprintf("emptyDir %s: mkdir %s: %s", v->name, p, strerror(errno));
                rc = -1;
            } else {
                chmod(p, 0777);
                if (src->emptydir->medium && !strcmp(src->emptydir->medium, "Memory") &&
                    !klet_mounted_at(p)) {
                    char opts[64] = "mode=1777";
                    int64_t milli;
                    if (src->emptydir->sizelimit && src->emptydir->sizelimit->string &&
                        qty_parse(src->emptydir->sizelimit->string, &milli, NULL) == 0)
                        snprintf(opts, sizeof opts, "mode=1777,size=%lld",
                                 (long long)qty_value(milli));
                    if (mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0) {
                        *err = xasprintf("emptyDir %s: mount tmpfs: %s", v->name, strerror(errno));
                        rc = -1;
                    }
                }
                /* fsGroup: the pod's group owns the volume (setgid: new files too) */
                if (rc == 0)
                    klet_fsgroup_volume(p, spec->securitycontext, false);
            }
            free(p);
        } else if (src->hostpath && src->hostpath->path) {
            const char *t = src->hostpath->type ? src->hostpath->type : "";
            const char *hp = src->hostpath->path;
            struct stat sb;
            if (!strcmp(t, "DirectoryOrCreate")) {
                if (mkdir_p(hp, 0755) < 0) {
                    *err = xasprintf("hostPath %s: mkdir %s: %s", v->name, hp, strerror(errno));
                    rc = -1;
                }
            } else if (!strcmp(t, "FileOrCreate")) {
                int fd = open(hp, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
                if (fd < 0) {
                    *err = xasprintf("hostPath %s: create %s: %s", v->name, hp, strerror(errno));
                    rc = -1;
                } else {
                    close(fd);
                }
            } else if (*t && stat(hp, &sb) < 0) {
                *err = xasprintf("hostPath type check failed: %s is not a %s", hp, t);
                rc = -1;
            }
        }
    }
    free(vdir);
    return rc;
}

char *klet_volume_path(const char *dir, const Coracle__V1__PodSpec *spec, const char *name)
{
    for (size_t i = 0; i < spec->n_volumes; i++) {
        const Coracle__V1__Volume *v = spec->volumes[i];
        if (!v->name || strcmp(v->name, name) || !v->volumesource)
            continue;
        if (v->volumesource->emptydir || v->volumesource->configmap || v->volumesource->secret ||
            v->volumesource->projected || v->volumesource->downwardapi)
            return xasprintf("%s/volumes/%s", dir, v->name);
        if (v->volumesource->hostpath && v->volumesource->hostpath->path)
            return xstrdup(v->volumesource->hostpath->path);
    }
    return NULL;
}

bool klet_volume_projected(const Coracle__V1__PodSpec *spec, const char *name)
{
    for (size_t i = 0; i < spec->n_volumes; i++) {
        const Coracle__V1__Volume *v = spec->volumes[i];
        if (v->name && !strcmp(v->name, name) && v->volumesource)
            return v->volumesource->configmap || v->volumesource->secret ||
                   v->volumesource->projected || v->volumesource->downwardapi;
    }
    return false;
}

/* Mount points at or below path, deepest first. */
void klet_umount_tree(const char *path)
{
    size_t plen = strlen(path);
    for (int round = 0; round < 8; round++) {
        FILE *f = fopen("/proc/self/mountinfo", "r");
        if (!f)
            return;
        char line[8192];
        char **mps = NULL;
        size_t n = 0;
        while (fgets(line, sizeof line, f)) {
            char mp[4096];
            if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
                continue;
            if (!strncmp(mp, path, plen) && (mp[plen] == 0 || mp[plen] == '/')) {
                mps = xrealloc(mps, (n + 1) * sizeof *mps);
                mps[n++] = xstrdup(mp);
            }
        }
        fclose(f);
        if (!n)
            return;
        /* mountinfo lists parents before children: unmount in reverse. */
        for (size_t i = n; i-- > 0;) {
            if (umount2(mps[i], MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
                log_warn("umount %s: %s", mps[i], strerror(errno));
            free(mps[i]);
        }
        free(mps);
    }
}

int klet_rmtree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(sb.st_mode))
        return unlink(path);
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char *p = xasprintf("%s/%s", path, e->d_name);
            struct stat cs;
            if (lstat(p, &cs) == 0 && S_ISDIR(cs.st_mode) && cs.st_dev != sb.st_dev)
                log_warn("rmtree: %s is a mount point, left alone", p);
            else
                klet_rmtree(p);
            free(p);
        }
        closedir(d);
    }
    return rmdir(path);
}

void klet_volumes_teardown(const char *dir)
{
    char *vdir = xasprintf("%s/volumes", dir);
    klet_umount_tree(vdir);
    klet_rmtree(vdir);
    free(vdir);
}

/* Kubernetes' SetVolumeOwnership for one file: group fsGroup, g+rw (g+r when read-only),
 * directories also g+x and setgid; symlinks keep their mode. */
static void own_one(const char *path, const struct stat *st, uint32_t gid, bool readonly)
{
    if (lchown(path, (uid_t)-1, gid) < 0)
        log_debug("fsGroup: chown %s: %s", path, strerror(errno));
    if (S_ISLNK(st->st_mode))
        return;
    mode_t mask = readonly ? 0440 : 0660;
    if (S_ISDIR(st->st_mode))
        mask |= S_ISGID | 0110;
    chmod(path, (st->st_mode & 07777) | mask);
}

int klet_fsgroup_apply(const char *path, uint32_t gid, bool readonly)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return -1;
    own_one(path, &st, gid, readonly);
    if (!S_ISDIR(st.st_mode))
        return 0;
    DIR *d = opendir(path);
    if (!d)
        return -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char *p = xasprintf("%s/%s", path, de->d_name);
        klet_fsgroup_apply(p, gid, readonly);
        free(p);
    }
    closedir(d);
    return 0;
}

/* Kubernetes' requiresPermissionChange: the root is not a directory, not of group gid, lacks
 * the group bits or the setgid bit. */
static bool root_mismatch(const char *path, uint32_t gid, bool readonly)
{
    struct stat st;
    if (stat(path, &st) < 0 || st.st_gid != gid || !S_ISDIR(st.st_mode))
        return true;
    mode_t want = (readonly ? 0440 : 0660) | 0110;
    return (st.st_mode & want) != want || !(st.st_mode & S_ISGID);
}

void klet_fsgroup_volume(const char *path, const Coracle__V1__PodSecurityContext *ps, bool readonly)
{
    if (!ps || !ps->has_fsgroup)
        return;
    uint32_t gid = (uint32_t)ps->fsgroup;
    if (ps->fsgroupchangepolicy && !strcmp(ps->fsgroupchangepolicy, "OnRootMismatch") &&
        !root_mismatch(path, gid, readonly))
        return;
    klet_fsgroup_apply(path, gid, readonly);
}
