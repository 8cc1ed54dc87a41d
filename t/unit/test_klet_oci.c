/* Unit tests for the kubelet's config.json generation and the Kubernetes
 * command/args/env rules (src/kubelet/runtime_runc.c). The JSON is parsed
 * back with src/lib/json.c, so a malformed document fails here. */
#include "config.h"
#include "tap.h"

#include "json.h"
#include "klet.h"
#include "util.h"

#include <sys/stat.h>
#include <unistd.h>

static json_t *parse(const char *s)
{
    json_t *j = NULL;
    char *err = NULL;
    if (json_parse(s, strlen(s), NULL, &j, &err) < 0) {
        diag("parse error: %s", err);
        free(err);
    }
    return j;
}

static int has_str(const json_t *arr, const char *s)
{
    for (size_t i = 0; arr && i < arr->n; i++)
        if (json_str(arr->kids[i]) && !strcmp(json_str(arr->kids[i]), s))
            return 1;
    return 0;
}

static const json_t *find_ns(const json_t *nss, const char *type)
{
    for (size_t i = 0; nss && i < nss->n; i++)
        if (!strcmp(json_str(json_get(nss->kids[i], "type")), type))
            return nss->kids[i];
    return NULL;
}

static const json_t *find_mount(const json_t *ms, const char *dst)
{
    for (size_t i = 0; ms && i < ms->n; i++)
        if (!strcmp(json_str(json_get(ms->kids[i], "destination")), dst))
            return ms->kids[i];
    return NULL;
}

static void test_config_joiner(void)
{
    char *args[] = {"/bin/sh", "-c", "echo \"hi\"\n\tthere"};
    char *env[] = {"PATH=/bin", "A=b"};
    struct klet_mount mounts[] = {
        {"/etc/hosts", "/pods/u/hosts", "bind", "rbind,rprivate"},
        {"/data", "/pods/u/volumes/d", "bind", "rbind,rprivate,ro"},
    };
    struct klet_oci o = {
        .args = args,
        .nargs = 3,
        .env = env,
        .nenv = 2,
        .cwd = "/work",
        .rootfs = "/c/x/bundle/rootfs",
        .netns = "/pods/u/ns/net",
        .ipcns = "/pods/u/ns/ipc",
        .utsns = "/pods/u/ns/uts",
        .cgroups_path = "/coracle/x",
        .mem_limit = 64 << 20,
        .cpu_quota = 50000,
        .cpu_period = 100000,
        .cpu_shares = 512,
        .mounts = mounts,
        .nmounts = 2,
    };
    char *s = klet_oci_config(&o);
    json_t *j = parse(s);
    ok(j != NULL, "config.json parses");
    const json_t *proc = json_get(j, "process");
    is_str(json_str(json_at(json_get(proc, "args"), 2)), "echo \"hi\"\n\tthere",
           "args escaped and round-trip");
    is_str(json_str(json_get(proc, "cwd")), "/work", "cwd");
    ok(has_str(json_get(proc, "env"), "A=b"), "env");
    const json_t *caps = json_get(json_get(proc, "capabilities"), "bounding");
    ok(has_str(caps, "CAP_CHOWN") && has_str(caps, "CAP_NET_BIND_SERVICE") &&
           has_str(caps, "CAP_SETUID") && has_str(caps, "CAP_SYS_CHROOT") && caps->n == 14,
       "Docker's default capability set (%zu)", caps ? caps->n : 0);
    ok(!json_get(j, "hostname"), "no hostname when joining the pod's UTS namespace");
    const json_t *lin = json_get(j, "linux");
    const json_t *nss = json_get(lin, "namespaces");
    is_str(json_str(json_get(find_ns(nss, "network"), "path")), "/pods/u/ns/net", "joins netns");
    is_str(json_str(json_get(find_ns(nss, "ipc"), "path")), "/pods/u/ns/ipc", "joins ipc");
    is_str(json_str(json_get(find_ns(nss, "uts"), "path")), "/pods/u/ns/uts", "joins uts");
    ok(find_ns(nss, "pid") && find_ns(nss, "mount"), "own pid and mount namespaces");
    const json_t *ms = json_get(j, "mounts");
    ok(!find_mount(ms, "/dev/mqueue"), "no /dev/mqueue when joining IPC");
    ok(find_mount(ms, "/proc") && find_mount(ms, "/dev/pts") && find_mount(ms, "/sys"),
       "base mounts");
    ok(has_str(json_get(find_mount(ms, "/data"), "options"), "ro"), "read-only volume mount");
    is_str(json_str(json_get(find_mount(ms, "/etc/hosts"), "source")), "/pods/u/hosts",
           "/etc/hosts bind");
    int64_t v = 0;
    json_int64(json_get(json_get(json_get(lin, "resources"), "memory"), "limit"), &v);
    ok(v == 64 << 20, "memory limit %lld", (long long)v);
    json_int64(json_get(json_get(json_get(lin, "resources"), "cpu"), "quota"), &v);
    ok(v == 50000, "cpu quota");
    json_int64(json_get(json_get(json_get(lin, "resources"), "cpu"), "shares"), &v);
    ok(v == 512, "cpu shares");
    is_str(json_str(json_get(lin, "cgroupsPath")), "/coracle/x", "cgroupsPath");
    is_str(json_str(json_get(json_get(j, "root"), "path")), "/c/x/bundle/rootfs", "root path");
    json_free(j);
    free(s);
}

static void test_config_hostnet(void)
{
    char *args[] = {"/bin/true"};
    struct klet_oci o = {.args = args, .nargs = 1, .rootfs = "/r", .hostname = "web"};
    char *s = klet_oci_config(&o);
    json_t *j = parse(s);
    const json_t *nss = json_get(json_get(j, "linux"), "namespaces");
    ok(!find_ns(nss, "network"), "hostNetwork: no network namespace listed (the host's)");
    ok(find_ns(nss, "uts") && !json_get(find_ns(nss, "uts"), "path"), "own UTS for hostname");
    is_str(json_str(json_get(j, "hostname")), "web", "hostname set when owning UTS");
    ok(find_mount(json_get(j, "mounts"), "/dev/mqueue") != NULL, "own IPC keeps /dev/mqueue");
    is_str(json_str(json_get(json_get(j, "process"), "cwd")), "/", "cwd defaults to /");
    ok(!json_get(json_get(json_get(j, "linux"), "resources"), "memory"), "no memory limit");
    json_free(j);
    free(s);

    o.host_pid = true;
    s = klet_oci_config(&o);
    j = parse(s);
    nss = json_get(json_get(j, "linux"), "namespaces");
    ok(!find_ns(nss, "pid") && find_ns(nss, "mount"), "hostPID: no pid namespace");
    ok(!find_ns(nss, "ipc"), "no ipc path: the host's IPC (hostIPC)");
    json_free(j);
    free(s);
}

static void test_config_terminal(void)
{
    char *args[] = {"/bin/sh"};
    for (int tty = 0; tty < 2; tty++) {
        struct klet_oci o = {.args = args, .nargs = 1, .rootfs = "/r", .terminal = tty};
        char *s = klet_oci_config(&o);
        json_t *j = parse(s);
        const json_t *term = json_get(json_get(j, "process"), "terminal");
        ok(term && term->type == (tty ? JSON_TRUE : JSON_FALSE), "process.terminal is the tty (%d)",
           tty);
        json_free(j);
        free(s);
    }
}

static void test_argv(void)
{
    char *ep[] = {"/docker-entrypoint.sh"};
    char *cmd[] = {"nginx", "-g", "daemon off;"};
    char *ienv[] = {"PATH=/usr/bin:/bin", "NGINX_VERSION=1.14.2"};
    struct klet_img img = {
        .entrypoint = ep, .n_entrypoint = 1, .cmd = cmd, .n_cmd = 3, .env = ienv, .n_env = 2};
    Coracle__V1__Container c = CORACLE__V1__CONTAINER__INIT;
    char **v = NULL, *err = NULL;
    size_t n = 0;
    ok(klet_ctr_argv(&c, &img, &v, &n, &err) == 0 && n == 4, "image entrypoint + cmd");
    ok(n == 4 && !strcmp(v[0], "/docker-entrypoint.sh") && !strcmp(v[3], "daemon off;"), "order");
    klet_strv_free(v);

    char *args[] = {"nginx", "-T"};
    c.args = args;
    c.n_args = 2;
    klet_ctr_argv(&c, &img, &v, &n, &err);
    ok(n == 3 && !strcmp(v[0], "/docker-entrypoint.sh") && !strcmp(v[2], "-T"),
       "args replace Cmd, Entrypoint kept");
    klet_strv_free(v);

    char *command[] = {"sh", "-c", "sleep 1"};
    c.command = command;
    c.n_command = 3;
    c.args = NULL;
    c.n_args = 0;
    klet_ctr_argv(&c, &img, &v, &n, &err);
    ok(n == 3 && !strcmp(v[0], "sh"), "command replaces Entrypoint and drops the image's Cmd");
    klet_strv_free(v);

    c.args = args;
    c.n_args = 2;
    klet_ctr_argv(&c, &img, &v, &n, &err);
    ok(n == 5 && !strcmp(v[3], "nginx"), "command + args");
    klet_strv_free(v);

    Coracle__V1__Container e = CORACLE__V1__CONTAINER__INIT;
    struct klet_img none = {0};
    ok(klet_ctr_argv(&e, &none, &v, &n, &err) < 0 && err, "nothing to run is an error: %s",
       err ? err : "");
    free(err);

    Coracle__V1__EnvVar e1 = CORACLE__V1__ENV_VAR__INIT, e2 = CORACLE__V1__ENV_VAR__INIT;
    e1.name = "NGINX_VERSION";
    e1.value = "override";
    e2.name = "NEW";
    e2.value = "1";
    Coracle__V1__EnvVar *envs[] = {&e1, &e2};
    c.env = envs;
    c.n_env = 2;
    char **env = klet_ctr_env(&c, &img, "mypod", &n);
    int ov = 0, nw = 0, hn = 0, path = 0;
    for (size_t i = 0; i < n; i++) {
        ov += !strcmp(env[i], "NGINX_VERSION=override");
        nw += !strcmp(env[i], "NEW=1");
        hn += !strcmp(env[i], "HOSTNAME=mypod");
        path += !strncmp(env[i], "PATH=", 5);
    }
    ok(ov == 1 && nw == 1 && hn == 1 && path == 1 && n == 4,
       "env: image, HOSTNAME, pod overrides (n=%zu)", n);
    klet_strv_free(env);
}

static void test_resources(void)
{
    Coracle__V1__Quantity qm = CORACLE__V1__QUANTITY__INIT, qc = CORACLE__V1__QUANTITY__INIT;
    qm.string = "128Mi";
    qc.string = "500m";
    Coracle__V1__ResourceRequirements__LimitsEntry lm =
        CORACLE__V1__RESOURCE_REQUIREMENTS__LIMITS_ENTRY__INIT;
    Coracle__V1__ResourceRequirements__LimitsEntry lc =
        CORACLE__V1__RESOURCE_REQUIREMENTS__LIMITS_ENTRY__INIT;
    lm.key = "memory";
    lm.value = &qm;
    lc.key = "cpu";
    lc.value = &qc;
    Coracle__V1__ResourceRequirements__LimitsEntry *lims[] = {&lm, &lc};
    Coracle__V1__ResourceRequirements r = CORACLE__V1__RESOURCE_REQUIREMENTS__INIT;
    r.limits = lims;
    r.n_limits = 2;
    Coracle__V1__Container c = CORACLE__V1__CONTAINER__INIT;
    c.resources = &r;
    struct klet_oci o = {0};
    klet_ctr_resources(&c, &o);
    ok(o.mem_limit == 128 << 20, "memory 128Mi -> %lld", (long long)o.mem_limit);
    ok(o.cpu_quota == 50000 && o.cpu_period == 100000, "cpu 500m -> quota 50000/100000");
    ok(o.cpu_shares == 512, "shares from the limit when no request: %llu",
       (unsigned long long)o.cpu_shares);
}

static void test_user(void)
{
    char dir[] = "/tmp/klet-user-XXXXXX";
    if (!mkdtemp(dir)) {
        ok(0, "mkdtemp");
        return;
    }
    char *etc = xasprintf("%s/etc", dir), *pw = xasprintf("%s/etc/passwd", dir),
         *gr = xasprintf("%s/etc/group", dir);
    mkdir(etc, 0755);
    FILE *f = fopen(pw, "w");
    fputs("root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\n"
          "nginx:x:101:102::/nonexistent:/bin/false\n",
          f);
    fclose(f);
    f = fopen(gr, "w");
    fputs("root:x:0:\nwww-data:x:33:\nstaff:x:50:\n", f);
    fclose(f);
    uint32_t uid = 9, gid = 9;
    char *err = NULL;
    ok(klet_resolve_user(dir, NULL, &uid, &gid, &err) == 0 && uid == 0 && gid == 0,
       "no User: root");
    ok(klet_resolve_user(dir, "nginx", &uid, &gid, &err) == 0 && uid == 101 && gid == 102,
       "name: uid and primary gid from passwd");
    ok(klet_resolve_user(dir, "www-data:staff", &uid, &gid, &err) == 0 && uid == 33 && gid == 50,
       "name:group");
    ok(klet_resolve_user(dir, "1000:1000", &uid, &gid, &err) == 0 && uid == 1000 && gid == 1000,
       "numeric uid:gid");
    ok(klet_resolve_user(dir, "33", &uid, &gid, &err) == 0 && uid == 33 && gid == 33,
       "numeric uid takes its passwd group");
    ok(klet_resolve_user(dir, "nobody", &uid, &gid, &err) < 0 && err && strstr(err, "nobody"),
       "unknown user is an error: %s", err ? err : "");
    free(err);
    char *args[] = {"/bin/true"};
    struct klet_oci o = {.args = args, .nargs = 1, .rootfs = "/r", .uid = 101, .gid = 102};
    char *s = klet_oci_config(&o);
    json_t *j = parse(s);
    int64_t u = -1, g = -1;
    json_int64(json_get(json_get(json_get(j, "process"), "user"), "uid"), &u);
    json_int64(json_get(json_get(json_get(j, "process"), "user"), "gid"), &g);
    ok(u == 101 && g == 102, "process.user in config.json");
    json_free(j);
    free(s);
    unlink(pw);
    unlink(gr);
    rmdir(etc);
    rmdir(dir);
    free(etc);
    free(pw);
    free(gr);
}

int main(void)
{
    test_config_joiner();
    test_config_hostnet();
    test_config_terminal();
    test_argv();
    test_resources();
    test_user();
    done_testing();
}
