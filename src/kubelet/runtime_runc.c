/*
 * runtime_runc: the OCI side of a container. Builds config.json for runc
 * from what pods.c decided (process, rootfs, namespaces to join, mounts,
 * cgroup limits) and runs the short runc verbs (kill, delete, state).
 * Creating and starting goes through coracle-monitor (monitor.c), which
 * must be the container's parent.
 */
#include "config.h"
#include "klet.h"
#include "qty.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void json_strv(FILE *f, char *const *v, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        json_str(f, v[i]);
    }
    fputc(']', f);
}

static void json_opts(FILE *f, const char *opts)
{
    fputc('[', f);
    if (opts && *opts) {
        char *dup = xstrdup(opts), *save = NULL;
        int first = 1;
        for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (!first)
                fputc(',', f);
            json_str(f, t);
            first = 0;
        }
        free(dup);
    }
    fputc(']', f);
}

static const struct klet_mount base_mounts[] = {
    {"/proc", "proc", "proc", NULL},
    {"/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k"},
    {"/dev/pts", "devpts", "devpts", "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5"},
    {"/dev/shm", "shm", "tmpfs", "nosuid,noexec,nodev,mode=1777,size=65536k"},
    {"/sys", "sysfs", "sysfs", "nosuid,noexec,nodev,ro"},
    {"/sys/fs/cgroup", "cgroup", "cgroup", "nosuid,noexec,nodev,relatime,ro"},
};
/* A privileged container's /sys and cgroups are writable. */
static const struct klet_mount priv_mounts[] = {
    {"/sys", "sysfs", "sysfs", "nosuid,noexec,nodev,rw"},
    {"/sys/fs/cgroup", "cgroup", "cgroup", "nosuid,noexec,nodev,relatime,rw"},
};

static void json_mount(FILE *f, const struct klet_mount *m)
{
    fputs("{\"destination\":", f);
    json_str(f, m->dst);
    fputs(",\"type\":", f);
    json_str(f, m->type ? m->type : "bind");
    fputs(",\"source\":", f);
    json_str(f, m->src);
    fputs(",\"options\":", f);
    json_opts(f, m->opts);
    fputc('}', f);
}

/* process.user: the security context's user and groups, else o->uid/gid. */
static void json_user(FILE *f, const struct klet_oci *o)
{
    const struct klet_sec *sec = o->sec;
    fprintf(f, "\"user\":{\"uid\":%u,\"gid\":%u", sec ? sec->uid : o->uid, sec ? sec->gid : o->gid);
    if (sec && sec->ngids) {
        fputs(",\"additionalGids\":[", f);
        for (size_t i = 0; i < sec->ngids; i++)
            fprintf(f, "%s%u", i ? "," : "", sec->gids[i]);
        fputc(']', f);
    }
    fputc('}', f);
}

static void json_caps(FILE *f, const struct klet_sec *sec)
{
    size_t n;
    const char *const *def = klet_default_caps(&n);
    fputs(",\"capabilities\":{", f);
    static const char *const sets[] = {"bounding", "effective", "permitted"};
    for (size_t s = 0; s < ARRAY_SIZE(sets); s++) {
        fprintf(f, "%s\"%s\":", s ? "," : "", sets[s]);
        if (sec)
            json_strv(f, sec->caps, sec->ncaps);
        else
            json_strv(f, (char *const *)def, n);
    }
    fputc('}', f);
}

static void json_process(FILE *f, const struct klet_oci *o)
{
    fprintf(f, "\"process\":{\"terminal\":%s,", o->terminal ? "true" : "false");
    json_user(f, o);
    fputs(",\"args\":", f);
    json_strv(f, o->args, o->nargs);
    fputs(",\"env\":", f);
    json_strv(f, o->env, o->nenv);
    fputs(",\"cwd\":", f);
    json_str(f, o->cwd && *o->cwd ? o->cwd : "/");
    json_caps(f, o->sec);
    fprintf(f, ",\"noNewPrivileges\":%s}", o->sec && o->sec->no_new_privs ? "true" : "false");
}

static void json_mounts(FILE *f, const struct klet_oci *o)
{
    bool priv = o->sec && o->sec->privileged;
    fputs(",\"mounts\":[", f);
    for (size_t i = 0; i < ARRAY_SIZE(base_mounts); i++) {
        if (i)
            fputc(',', f);
        const struct klet_mount *m = &base_mounts[i];
        for (size_t j = 0; priv && j < ARRAY_SIZE(priv_mounts); j++)
            if (!strcmp(priv_mounts[j].dst, m->dst))
                m = &priv_mounts[j];
        json_mount(f, m);
    }
    /* runc's /dev/mqueue fails in a joined IPC namespace: only when we own it. */
    if (!o->ipcns)
        fputs(",{\"destination\":\"/dev/mqueue\",\"type\":\"mqueue\",\"source\":\"mqueue\","
              "\"options\":[\"nosuid\",\"noexec\",\"nodev\"]}",
              f);
    for (size_t i = 0; i < o->nmounts; i++) {
        fputc(',', f);
        json_mount(f, &o->mounts[i]);
    }
    fputc(']', f);
}

static void json_resources(FILE *f, const struct klet_oci *o)
{
    fprintf(f, "\"resources\":{\"devices\":[{\"allow\":%s,\"access\":\"rwm\"}]",
            o->sec && o->sec->privileged ? "true" : "false");
    if (o->mem_limit > 0)
        fprintf(f, ",\"memory\":{\"limit\":%lld}", (long long)o->mem_limit);
    if (o->cpu_quota > 0 || o->cpu_shares > 0) {
        fputs(",\"cpu\":{", f);
        const char *sep = "";
        if (o->cpu_shares > 0) {
            fprintf(f, "\"shares\":%llu", (unsigned long long)o->cpu_shares);
            sep = ",";
        }
        if (o->cpu_quota > 0)
            fprintf(f, "%s\"quota\":%lld,\"period\":%lld", sep, (long long)o->cpu_quota,
                    (long long)(o->cpu_period > 0 ? o->cpu_period : 100000));
        fputc('}', f);
    }
    fputc('}', f);
}

static void json_namespaces(FILE *f, const struct klet_oci *o)
{
    fputs(o->host_pid || o->pidns ? ",\"namespaces\":[{\"type\":\"mount\"}"
                                  : ",\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"mount\"}",
          f);
    struct {
        const char *type, *path;
    } ns[] = {{"pid", o->host_pid ? NULL : o->pidns},
              {"network", o->netns},
              {"ipc", o->ipcns},
              {"uts", o->utsns}};
    for (size_t i = 0; i < ARRAY_SIZE(ns); i++) {
        if (!ns[i].path)
            continue;
        fprintf(f, ",{\"type\":\"%s\",\"path\":", ns[i].type);
        json_str(f, ns[i].path);
        fputc('}', f);
    }
    if (o->hostname && !o->utsns)
        fputs(",{\"type\":\"uts\"}", f);
    fputc(']', f);
}

/* linux.sysctl, linux.seccomp and linux.devices from the security context. */
static void json_linux_sec(FILE *f, const struct klet_sec *sec)
{
    if (!sec)
        return;
    if (sec->nsysctls) {
        fputs(",\"sysctl\":{", f);
        for (size_t i = 0; i < sec->nsysctls; i++) {
            if (i)
                fputc(',', f);
            json_str(f, sec->sysctls[i].name);
            fputc(':', f);
            json_str(f, sec->sysctls[i].value);
        }
        fputc('}', f);
    }
    if (sec->seccomp)
        fprintf(f, ",\"seccomp\":%s", sec->seccomp);
    if (sec->ndevs) {
        fputs(",\"devices\":[", f);
        for (size_t i = 0; i < sec->ndevs; i++) {
            const struct klet_dev *d = &sec->devs[i];
            fputs(i ? ",{\"path\":" : "{\"path\":", f);
            json_str(f, d->path);
            fprintf(f,
                    ",\"type\":\"%c\",\"major\":%u,\"minor\":%u,\"fileMode\":%u,\"uid\":%u,"
                    "\"gid\":%u}",
                    d->type, d->major, d->minor, d->mode, d->uid, d->gid);
        }
        fputc(']', f);
    }
}

char *klet_oci_config(const struct klet_oci *o)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        fatal("open_memstream failed");
    fputs("{\"ociVersion\":\"1.0.2-dev\",", f);
    json_process(f, o);
    fputs(",\"root\":{\"path\":", f);
    json_str(f, o->rootfs);
    fprintf(f, ",\"readonly\":%s}", o->sec && o->sec->readonly_root ? "true" : "false");
    if (o->hostname) {
        fputs(",\"hostname\":", f);
        json_str(f, o->hostname);
    }
    json_mounts(f, o);
    fputs(",\"linux\":{", f);
    if (o->cgroups_path) {
        fputs("\"cgroupsPath\":", f);
        json_str(f, o->cgroups_path);
        fputc(',', f);
    }
    json_resources(f, o);
    json_namespaces(f, o);
    json_linux_sec(f, o->sec);
    if (o->sec && o->sec->unmasked)
        fputs(",\"maskedPaths\":[],\"readonlyPaths\":[]}}", f);
    else
        fputs(",\"maskedPaths\":[\"/proc/acpi\",\"/proc/asound\",\"/proc/kcore\",\"/proc/keys\","
              "\"/proc/latency_stats\",\"/proc/timer_list\",\"/proc/timer_stats\","
              "\"/proc/sched_debug\",\"/sys/firmware\",\"/proc/scsi\"],"
              "\"readonlyPaths\":[\"/proc/bus\",\"/proc/fs\",\"/proc/irq\",\"/proc/sys\","
              "\"/proc/sysrq-trigger\"]}}",
              f);
    fclose(f);
    return buf;
}

static char **strv_dup(char *const *v, size_t n)
{
    char **r = xcalloc(n + 1, sizeof *r);
    for (size_t i = 0; i < n; i++)
        r[i] = xstrdup(v[i]);
    return r;
}

void klet_strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

int klet_ctr_argv(const Coracle__V1__Container *c, const struct klet_img *img, char ***argv,
                  size_t *n, char **err)
{
    char *const *ep = c->n_command ? c->command : (img ? img->entrypoint : NULL);
    size_t nep = c->n_command ? c->n_command : (img ? img->n_entrypoint : 0);
    char *const *ar;
    size_t nar;
    if (c->n_args) {
        ar = c->args;
        nar = c->n_args;
    } else if (c->n_command) {
        ar = NULL;
        nar = 0;
    } else {
        ar = img ? img->cmd : NULL;
        nar = img ? img->n_cmd : 0;
    }
    if (nep + nar == 0) {
        *err = xasprintf("no command specified");
        return -1;
    }
    char **v = xcalloc(nep + nar + 1, sizeof *v);
    for (size_t i = 0; i < nep; i++)
        v[i] = xstrdup(ep[i]);
    for (size_t i = 0; i < nar; i++)
        v[nep + i] = xstrdup(ar[i]);
    *argv = v;
    *n = nep + nar;
    return 0;
}

void klet_env_set(char ***v, size_t *n, const char *name, const char *value)
{
    size_t kl = strlen(name);
    char *kv = xasprintf("%s=%s", name, value ? value : "");
    for (size_t i = 0; i < *n; i++) {
        if (!strncmp((*v)[i], name, kl) && (*v)[i][kl] == '=') {
            free((*v)[i]);
            (*v)[i] = kv;
            return;
        }
    }
    *v = xrealloc(*v, (*n + 2) * sizeof **v);
    (*v)[(*n)++] = kv;
    (*v)[*n] = NULL;
}

char **klet_ctr_env(const Coracle__V1__Container *c, const struct klet_img *img,
                    const char *hostname, size_t *n)
{
    char **v = img ? strv_dup(img->env, img->n_env) : xcalloc(1, sizeof *v);
    *n = img ? img->n_env : 0;
    int has_path = 0;
    for (size_t i = 0; i < *n; i++)
        if (!strncmp(v[i], "PATH=", 5))
            has_path = 1;
    if (!has_path)
        klet_env_set(&v, n, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    if (hostname)
        klet_env_set(&v, n, "HOSTNAME", hostname);
    for (size_t i = 0; i < c->n_env; i++)
        if (c->env[i]->name)
            klet_env_set(&v, n, c->env[i]->name, c->env[i]->value);
    return v;
}

/* Looks name up in a passwd/group style file: field 0 = name, 2 = id, 3 = (passwd) gid. */
static int db_lookup(const char *path, const char *name, long *id, long *gid)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[1024];
    int rc = -1;
    while (rc < 0 && fgets(line, sizeof line, f)) {
        char *save = NULL, *fields[4] = {0};
        int n = 0;
        for (char *t = strtok_r(line, ":\n", &save); t && n < 4; t = strtok_r(NULL, ":\n", &save))
            fields[n++] = t;
        if (n >= 3 && !strcmp(fields[0], name)) {
            *id = atol(fields[2]);
            if (gid)
                *gid = n >= 4 ? atol(fields[3]) : 0;
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

static int is_number(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

int klet_resolve_user(const char *rootfs, const char *user, uint32_t *uid, uint32_t *gid,
                      char **err)
{
    *uid = *gid = 0;
    if (!user || !*user)
        return 0;
    char *u = xstrdup(user), *g = strchr(u, ':');
    if (g)
        *g++ = 0;
    long id = 0, pgid = 0;
    int rc = 0;
    char *passwd = xasprintf("%s/etc/passwd", rootfs), *group = xasprintf("%s/etc/group", rootfs);
    if (is_number(u)) {
        id = atol(u);
        /* a numeric user keeps its passwd group if it has one */
        FILE *f = fopen(passwd, "r");
        char line[1024];
        while (f && fgets(line, sizeof line, f)) {
            char *save = NULL, *fl[4] = {0};
            int n = 0;
            for (char *t = strtok_r(line, ":\n", &save); t && n < 4;
                 t = strtok_r(NULL, ":\n", &save))
                fl[n++] = t;
            if (n >= 4 && atol(fl[2]) == id) {
                pgid = atol(fl[3]);
                break;
            }
        }
        if (f)
            fclose(f);
    } else if (db_lookup(passwd, u, &id, &pgid) < 0) {
        *err = xasprintf("unable to find user %s: no matching entries in passwd file", u);
        rc = -1;
    }
    if (rc == 0 && g && *g) {
        if (is_number(g)) {
            pgid = atol(g);
        } else if (db_lookup(group, g, &pgid, NULL) < 0) {
            *err = xasprintf("unable to find group %s: no matching entries in group file", g);
            rc = -1;
        }
    }
    if (rc == 0) {
        *uid = (uint32_t)id;
        *gid = (uint32_t)pgid;
    }
    free(passwd);
    free(group);
    free(u);
    return rc;
}

static const char *res_get(Coracle__V1__ResourceRequirements__LimitsEntry **e, size_t n,
                           const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (e[i]->key && !strcmp(e[i]->key, key) && e[i]->value)
            return e[i]->value->string;
    return NULL;
}

void klet_ctr_resources(const Coracle__V1__Container *c, struct klet_oci *o)
{
    if (!c->resources)
        return;
    const Coracle__V1__ResourceRequirements *r = c->resources;
    int64_t milli;
    const char *mem = res_get(r->limits, r->n_limits, "memory");
    if (mem && qty_parse(mem, &milli, NULL) == 0)
        o->mem_limit = qty_value(milli);
    const char *cpu = res_get(r->limits, r->n_limits, "cpu");
    if (cpu && qty_parse(cpu, &milli, NULL) == 0 && milli > 0) {
        o->cpu_period = 100000;
        o->cpu_quota = milli * 100000 / 1000;
        if (o->cpu_quota < 1000)
            o->cpu_quota = 1000;
    }
    /* Requests (or limits, which Kubernetes copies into requests) set the shares. */
    const char *req = res_get((Coracle__V1__ResourceRequirements__LimitsEntry **)r->requests,
                              r->n_requests, "cpu");
    if (!req)
        req = cpu;
    if (req && qty_parse(req, &milli, NULL) == 0) {
        uint64_t sh = (uint64_t)milli * 1024 / 1000;
        o->cpu_shares = sh < 2 ? 2 : sh;
    }
}

static int runc_verb(const struct klet *k, const char *verb, const char *arg1, const char *id)
{
    char *argv[8];
    int i = 0;
    argv[i++] = k->cfg.runtime;
    argv[i++] = "--root";
    argv[i++] = k->runc_root;
    argv[i++] = (char *)verb;
    if (!strcmp(verb, "delete") && arg1)
        argv[i++] = (char *)arg1;
    argv[i++] = (char *)id;
    if (!strcmp(verb, "kill"))
        argv[i++] = (char *)arg1;
    argv[i] = NULL;
    char *out = NULL;
    int st = klet_proc_run(argv, &out);
    if (st != 0)
        log_debug("runc %s %s: %s", verb, id, out ? out : "");
    free(out);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

bool klet_runc_has_seccomp(const struct klet *k)
{
    char *argv[] = {k->cfg.runtime, "--version", NULL};
    char *out = NULL;
    int st = klet_proc_run(argv, &out);
    /* runc built with libseccomp says which: "libseccomp: 2.5.4" */
    bool yes = st == 0 && out && strstr(out, "libseccomp:");
    free(out);
    return yes;
}

int klet_runc_kill(const struct klet *k, const char *id, const char *sig)
{
    return runc_verb(k, "kill", sig, id);
}

int klet_runc_delete(const struct klet *k, const char *id)
{
    return runc_verb(k, "delete", "--force", id);
}

int klet_runc_alive(const struct klet *k, const char *id)
{
    char *argv[] = {k->cfg.runtime, "--root", k->runc_root, "state", (char *)id, NULL};
    char *out = NULL;
    int st = klet_proc_run(argv, &out);
    int alive = st == 0 && out &&
                (strstr(out, "\"status\": \"running\"") || strstr(out, "\"status\": \"created\""));
    free(out);
    return alive;
}
