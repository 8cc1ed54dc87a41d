/* Unit tests for what a pod's securityContext makes of a container
 * (src/kubelet/secctx.c, seccomp.c) and how config.json carries it
 * (runtime_runc.c): capabilities, users and groups, runAsNonRoot,
 * no_new_privs, privileged, seccomp profiles, sysctls and the node's
 * admission, the shared PID namespace, fsGroup ownership. Pods are written as YAML, as a user
 * would. */
#include "config.h"
#include "tap.h"
#include "testobj.h"

#include "json.h"
#include "klet.h"
#include "util.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[] = "/tmp/test_klet_secctx.XXXXXX";
static char rootfs[256], seccomp_root[256];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void fixture(void)
{
    if (!mkdtemp(tmp))
        exit(1);
    snprintf(rootfs, sizeof rootfs, "%s/rootfs", tmp);
    snprintf(seccomp_root, sizeof seccomp_root, "%s/seccomp", tmp);
    char p[512];
    mkdir(rootfs, 0755);
    mkdir(seccomp_root, 0755);
    snprintf(p, sizeof p, "%s/etc", rootfs);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/etc/passwd", rootfs);
    write_file(p, "root:x:0:0:root:/root:/bin/sh\n"
                  "app:x:1000:1000:app:/home/app:/bin/sh\n"
                  "www:x:33:33:www:/var/www:/bin/sh\n");
    snprintf(p, sizeof p, "%s/etc/group", rootfs);
    write_file(p, "root:x:0:\napp:x:1000:\nwww:x:33:\naudio:x:29:app,www\nvideo:x:44:app\n");
}

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

static Coracle__V1__Pod *pod(const char *yaml)
{
    return (Coracle__V1__Pod *)obj(yaml);
}

#define POD(spec)                                                                                  \
    "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: ns1, uid: u-1}\nspec:\n" spec

/* Builds container 0 of p with the image user; returns klet_sec_build's result. */
static int build(const Coracle__V1__Pod *p, const char *user, bool sdef, struct klet_sec *s,
                 char **err)
{
    struct klet_sec_in in = {
        .pod = p,
        .ctr = p->spec->containers[0],
        .rootfs = rootfs,
        .image_user = user,
        .seccomp_root = seccomp_root,
        .seccomp_default = sdef,
    };
    *err = NULL;
    return klet_sec_build(&in, s, err);
}

static bool has_cap(const struct klet_sec *s, const char *c)
{
    for (size_t i = 0; i < s->ncaps; i++)
        if (!strcmp(s->caps[i], c))
            return true;
    return false;
}

/* What "ALL" is: the capabilities this process holds. */
static size_t known_caps(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long v = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "CapEff: %llx", &v) == 1)
            break;
    if (f)
        fclose(f);
    return (size_t)__builtin_popcountll(v & ((1ULL << 41) - 1));
}

static void test_caps(void)
{
    struct klet_sec s;
    char *err;
    Coracle__V1__Pod *p = pod(POD("  containers: [{name: a, image: x}]\n"));
    ok(build(p, NULL, false, &s, &err) == 0, "no securityContext builds");
    ok(s.ncaps == 14 && has_cap(&s, "CAP_CHOWN") && has_cap(&s, "CAP_NET_BIND_SERVICE"),
       "the default set (%zu)", s.ncaps);
    ok(!s.no_new_privs && !s.readonly_root && !s.privileged && !s.unmasked && !s.seccomp,
       "defaults: no no_new_privs, writable root, masked /proc, unconfined");
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  containers:\n  - name: a\n    image: x\n    securityContext:\n"
                "      capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}\n"));
    build(p, NULL, false, &s, &err);
    ok(s.ncaps == 1 && has_cap(&s, "CAP_NET_BIND_SERVICE"), "drop ALL, add NET_BIND_SERVICE");
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  containers:\n  - name: a\n    image: x\n    securityContext:\n"
                "      capabilities: {add: [ALL], drop: [chown, CAP_KILL]}\n"));
    build(p, NULL, false, &s, &err);
    ok(s.ncaps == known_caps() - 2 && !has_cap(&s, "CAP_CHOWN") && !has_cap(&s, "CAP_KILL") &&
           has_cap(&s, "CAP_SYS_ADMIN"),
       "add ALL, drop two (lower case and CAP_ names): %zu", s.ncaps);
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  containers:\n  - name: a\n    image: x\n    securityContext:\n"
                "      capabilities: {add: [CAP_SYS_TIME, net_admin], drop: [MKNOD]}\n"));
    build(p, NULL, false, &s, &err);
    ok(s.ncaps == 15 && has_cap(&s, "CAP_SYS_TIME") && has_cap(&s, "CAP_NET_ADMIN") &&
           !has_cap(&s, "CAP_MKNOD"),
       "add to and drop from the default set");
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);
}

static bool has_gid(const struct klet_sec *s, uint32_t g)
{
    for (size_t i = 0; i < s->ngids; i++)
        if (s->gids[i] == g)
            return true;
    return false;
}

static void test_users(void)
{
    struct klet_sec s;
    char *err;
    int rc;
    Coracle__V1__Pod *p = pod(POD("  containers: [{name: a, image: x}]\n"));
    build(p, "app", false, &s, &err);
    ok(s.uid == 1000 && s.gid == 1000, "image user by name: %u:%u", s.uid, s.gid);
    ok(s.ngids == 3 && s.gids[0] == 1000 && has_gid(&s, 29) && has_gid(&s, 44),
       "primary group first, then /etc/group memberships (%zu)", s.ngids);
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  securityContext: {runAsUser: 33, runAsGroup: 7, supplementalGroups: [5000, "
                "5001], fsGroup: 2000}\n"
                "  containers:\n  - name: a\n    image: x\n"
                "    securityContext: {runAsUser: 1000}\n"));
    build(p, "www", false, &s, &err);
    ok(s.uid == 1000 && s.gid == 7, "container runAsUser over the pod's, pod runAsGroup: %u:%u",
       s.uid, s.gid);
    ok(s.gids[0] == 7 && has_gid(&s, 29) && has_gid(&s, 44) && has_gid(&s, 5000) &&
           has_gid(&s, 5001) && has_gid(&s, 2000) && !has_gid(&s, 1000),
       "groups: primary, memberships of uid 1000's name, supplementalGroups, fsGroup");
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  securityContext: {supplementalGroupsPolicy: Strict, supplementalGroups: [5]}\n"
                "  containers: [{name: a, image: x}]\n"));
    build(p, "app", false, &s, &err);
    ok(s.ngids == 2 && s.gids[0] == 1000 && s.gids[1] == 5,
       "supplementalGroupsPolicy Strict: no /etc/group memberships (%zu)", s.ngids);
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  containers:\n  - name: a\n    image: x\n"
                "    securityContext: {runAsUser: 4242}\n"));
    build(p, "app", false, &s, &err);
    ok(s.uid == 4242 && s.gid == 0 && s.ngids == 1, "a uid not in passwd: gid 0 (%u:%u)", s.uid,
       s.gid);
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  containers:\n  - name: a\n    image: x\n"
                "    securityContext: {runAsGroup: 44}\n"));
    build(p, "app", false, &s, &err);
    ok(s.uid == 1000 && s.gid == 44, "runAsGroup alone changes the image user's group");
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  containers: [{name: a, image: x}]\n"));
    rc = build(p, "nobody", false, &s, &err);
    ok(rc == KSEC_CREATE && err && strstr(err, "unable to find user nobody"),
       "an unknown image user: CreateContainerError: %s", err ? err : "");
    free(err);
    protobuf_c_message_free_unpacked(&p->base, NULL);
}

static void test_nonroot(void)
{
    struct klet_sec s;
    char *err;
    int rc;
    Coracle__V1__Pod *p = pod(
        POD("  securityContext: {runAsNonRoot: true}\n  containers: [{name: app, image: x}]\n"));
    ok(build(p, NULL, false, &s, &err) == KSEC_CONFIG, "runAsNonRoot, image runs as root: refused");
    is_str(err,
           "container has runAsNonRoot and image will run as root (pod: \"web_ns1(u-1)\", "
           "container: app)",
           "Kubernetes' message");
    free(err);
    ok(build(p, "0:0", false, &s, &err) == KSEC_CONFIG, "image user 0:0 refused");
    free(err);
    rc = build(p, "app", false, &s, &err);
    ok(rc == KSEC_CONFIG && err &&
           !strcmp(err, "container has runAsNonRoot and image has non-numeric user (app), cannot "
                        "verify user is non-root (pod: \"web_ns1(u-1)\", container: app)"),
       "a non-numeric image user refused: %s", err ? err : "");
    free(err);
    ok(build(p, "1000:1000", false, &s, &err) == 0 && s.uid == 1000, "numeric image user 1000");
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  securityContext: {runAsNonRoot: true, runAsUser: 0}\n"
                "  containers: [{name: app, image: x}]\n"));
    rc = build(p, "1000", false, &s, &err);
    ok(rc == KSEC_CONFIG && err &&
           !strcmp(err, "container's runAsUser breaks non-root policy (pod: \"web_ns1(u-1)\", "
                        "container: app)"),
       "runAsUser 0 breaks it: %s", err ? err : "");
    free(err);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  securityContext: {runAsNonRoot: true}\n  containers:\n  - name: app\n"
                "    image: x\n    securityContext: {runAsUser: 1000}\n"));
    ok(build(p, NULL, false, &s, &err) == 0 && s.uid == 1000, "runAsUser 1000 on a root image");
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  securityContext: {runAsNonRoot: true}\n  containers:\n  - name: app\n"
                "    image: x\n    securityContext: {runAsNonRoot: false}\n"));
    ok(build(p, NULL, false, &s, &err) == 0, "the container's runAsNonRoot: false wins");
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);
}

static void test_flags(void)
{
    struct klet_sec s;
    char *err;
    static const char *const ape[] = {"false", "true"};
    for (int i = 0; i < 2; i++) {
        char y[512];
        snprintf(y, sizeof y,
                 POD("  containers:\n  - name: a\n    image: x\n    securityContext:\n"
                     "      allowPrivilegeEscalation: %s\n      readOnlyRootFilesystem: true\n"
                     "      procMount: Unmasked\n"),
                 ape[i]);
        Coracle__V1__Pod *p = pod(y);
        build(p, NULL, false, &s, &err);
        ok(s.no_new_privs == (i == 0), "allowPrivilegeEscalation %s: no_new_privs %d", ape[i],
           s.no_new_privs);
        ok(s.readonly_root && s.unmasked, "readOnlyRootFilesystem, procMount Unmasked");
        klet_sec_free(&s);
        protobuf_c_message_free_unpacked(&p->base, NULL);
    }
}

static void test_privileged(void)
{
    struct klet_sec s;
    char *err;
    Coracle__V1__Pod *p = pod(POD("  securityContext:\n    seccompProfile: {type: RuntimeDefault}\n"
                                  "  containers:\n  - name: a\n    image: x\n"
                                  "    securityContext: {privileged: true}\n"));
    ok(build(p, NULL, true, &s, &err) == 0, "privileged builds");
    ok(s.privileged && s.ncaps == known_caps(), "every capability (%zu)", s.ncaps);
    ok(s.unmasked && !s.seccomp, "no masked paths, unconfined despite RuntimeDefault");
    bool null = false;
    for (size_t i = 0; i < s.ndevs; i++)
        null = null || (!strcmp(s.devs[i].path, "/dev/null") && s.devs[i].type == 'c' &&
                        s.devs[i].major == 1 && s.devs[i].minor == 3);
    ok(null, "the host's devices (%zu, /dev/null 1:3)", s.ndevs);

    char *args[] = {"/bin/true"};
    struct klet_oci o = {.args = args, .nargs = 1, .rootfs = "/r", .sec = &s};
    char *js = klet_oci_config(&o);
    json_t *j = parse(js);
    const json_t *lin = json_get(j, "linux");
    ok(json_get(lin, "maskedPaths") && json_get(lin, "maskedPaths")->n == 0 &&
           json_get(lin, "readonlyPaths")->n == 0,
       "config.json: no masked or read-only paths");
    ok(json_is(json_get(json_at(json_get(json_get(lin, "resources"), "devices"), 0), "allow"),
               JSON_TRUE),
       "config.json: every device allowed");
    ok(json_get(lin, "devices") && json_get(lin, "devices")->n == s.ndevs,
       "config.json: linux.devices");
    ok(!json_get(lin, "seccomp"), "config.json: no seccomp");
    const json_t *ms = json_get(j, "mounts");
    bool sys_rw = false;
    for (size_t i = 0; ms && i < ms->n; i++) {
        const json_t *m = ms->kids[i];
        if (!strcmp(json_str(json_get(m, "destination")), "/sys")) {
            const json_t *op = json_get(m, "options");
            for (size_t k = 0; op && k < op->n; k++)
                sys_rw = sys_rw || !strcmp(json_str(op->kids[k]), "rw");
        }
    }
    ok(sys_rw, "config.json: /sys writable");
    json_free(j);
    free(js);
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);
}

static bool rule_allows(const json_t *prof, const char *name)
{
    const json_t *sc = json_get(prof, "syscalls");
    for (size_t i = 0; sc && i < sc->n; i++) {
        const json_t *r = sc->kids[i];
        if (strcmp(json_str(json_get(r, "action")), "SCMP_ACT_ALLOW") || json_get(r, "args"))
            continue;
        const json_t *nm = json_get(r, "names");
        for (size_t k = 0; nm && k < nm->n; k++)
            if (!strcmp(json_str(nm->kids[k]), name))
                return true;
    }
    return false;
}

static void test_seccomp(void)
{
    struct klet_sec s;
    char *err;
    int rc;
    Coracle__V1__Pod *p = pod(POD("  securityContext:\n    seccompProfile: {type: RuntimeDefault}\n"
                                  "  containers: [{name: a, image: x}]\n"));
    build(p, NULL, false, &s, &err);
    json_t *prof = s.seccomp ? parse(s.seccomp) : NULL;
    ok(prof != NULL, "the pod's RuntimeDefault applies to the container");
    is_str(json_str(json_get(prof, "defaultAction")), "SCMP_ACT_ERRNO", "deny by default");
    int64_t v = 0;
    ok(json_int64(json_get(prof, "defaultErrnoRet"), &v) == 0 && v == 1, "with EPERM");
    ok(rule_allows(prof, "read") && rule_allows(prof, "execve") && rule_allows(prof, "futex"),
       "the usual syscalls allowed");
    ok(!rule_allows(prof, "unshare") && !rule_allows(prof, "mount") &&
           !rule_allows(prof, "ptrace") && !rule_allows(prof, "reboot") &&
           !rule_allows(prof, "clone"),
       "unshare, mount, ptrace, reboot, unconditional clone denied");
    json_free(prof);
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  securityContext:\n    seccompProfile: {type: RuntimeDefault}\n"
                "  containers:\n  - name: a\n    image: x\n    securityContext:\n"
                "      capabilities: {add: [SYS_ADMIN, SYS_PTRACE]}\n"));
    build(p, NULL, false, &s, &err);
    prof = s.seccomp ? parse(s.seccomp) : NULL;
    ok(rule_allows(prof, "mount") && rule_allows(prof, "unshare") && rule_allows(prof, "clone") &&
           rule_allows(prof, "ptrace") && !rule_allows(prof, "reboot"),
       "SYS_ADMIN and SYS_PTRACE open their syscalls");
    json_free(prof);
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  securityContext:\n    seccompProfile: {type: RuntimeDefault}\n"
                "  containers:\n  - name: a\n    image: x\n    securityContext:\n"
                "      seccompProfile: {type: Unconfined}\n"));
    build(p, NULL, false, &s, &err);
    ok(!s.seccomp, "the container's Unconfined over the pod's RuntimeDefault");
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  containers: [{name: a, image: x}]\n"));
    build(p, NULL, true, &s, &err);
    ok(s.seccomp != NULL, "--seccomp-default: RuntimeDefault when nothing is named");
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    char path[512];
    snprintf(path, sizeof path, "%s/profiles", seccomp_root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/profiles/audit.json", seccomp_root);
    write_file(path,
               "{\"defaultAction\":\"SCMP_ACT_LOG\",\"archMap\":[{\"architecture\":"
               "\"SCMP_ARCH_X86_64\",\"subArchitectures\":[\"SCMP_ARCH_X86\"]},{\"architecture\":"
               "\"SCMP_ARCH_AARCH64\",\"subArchitectures\":[\"SCMP_ARCH_ARM\"]}],\"syscalls\":["
               "{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":13},"
               "{\"name\":\"mkdir\",\"action\":\"SCMP_ACT_ERRNO\"},"
               "{\"names\":[\"mount\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"caps\":"
               "[\"CAP_SYS_ADMIN\"]}},"
               "{\"names\":[\"personality\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,"
               "\"value\":8,\"op\":\"SCMP_CMP_EQ\"}]}]}");
    p = pod(
        POD("  containers:\n  - name: a\n    image: x\n    securityContext:\n"
            "      seccompProfile: {type: Localhost, localhostProfile: profiles/audit.json}\n"));
    rc = build(p, NULL, false, &s, &err);
    ok(rc == 0, "Localhost profile loads: %s", err ? err : "");
    prof = s.seccomp ? parse(s.seccomp) : NULL;
    is_str(json_str(json_get(prof, "defaultAction")), "SCMP_ACT_LOG", "its defaultAction");
    const json_t *sc = json_get(prof, "syscalls");
    ok(sc && sc->n == 3, "the rule for a capability not held is left out (%zu)", sc ? sc->n : 0);
    ok(json_int64(json_get(json_at(sc, 0), "errnoRet"), &v) == 0 && v == 13, "errnoRet kept");
    is_str(json_str(json_at(json_get(json_at(sc, 1), "names"), 0)), "mkdir", "name as names");
    ok(json_get(json_at(sc, 2), "args") && json_get(json_at(sc, 2), "args")->n == 1, "args kept");
    const json_t *ar = json_get(prof, "architectures");
    ok(ar && ar->n == 2, "this machine's archMap entry (%zu)", ar ? ar->n : 0);
    json_free(prof);
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  containers:\n  - name: a\n    image: x\n    securityContext:\n"
                "      seccompProfile: {type: RuntimeDefault}\n"));
    struct klet_sec_in nin = {.pod = p,
                              .ctr = p->spec->containers[0],
                              .rootfs = rootfs,
                              .seccomp_root = seccomp_root,
                              .no_seccomp = true};
    rc = klet_sec_build(&nin, &s, &err);
    ok(rc == KSEC_CREATE && err && strstr(err, "no seccomp support"),
       "a runtime without seccomp: the container fails clearly: %s", err ? err : "");
    free(err);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  containers:\n  - name: a\n    image: x\n    securityContext:\n"
                "      seccompProfile: {type: Localhost, localhostProfile: nope.json}\n"));
    rc = build(p, NULL, false, &s, &err);
    ok(rc == KSEC_CREATE && err && strstr(err, "cannot load seccomp profile") &&
           strstr(err, "seccomp/nope.json"),
       "a missing profile: CreateContainerError: %s", err ? err : "");
    free(err);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  containers:\n  - name: a\n    image: x\n    securityContext:\n"
                "      seccompProfile: {type: Localhost, localhostProfile: ../../etc/passwd}\n"));
    ok(build(p, NULL, false, &s, &err) == KSEC_CREATE, "a profile outside the root: refused");
    free(err);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    write_file(path, "{\"syscalls\":[]}");
    p = pod(
        POD("  containers:\n  - name: a\n    image: x\n    securityContext:\n"
            "      seccompProfile: {type: Localhost, localhostProfile: profiles/audit.json}\n"));
    rc = build(p, NULL, false, &s, &err);
    ok(rc == KSEC_CREATE && err && strstr(err, "defaultAction"),
       "a profile without defaultAction: %s", err ? err : "");
    free(err);
    protobuf_c_message_free_unpacked(&p->base, NULL);
}

static void test_admit(void)
{
    const char *reason = NULL;
    char *msg = NULL;
    Coracle__V1__Pod *p =
        pod(POD("  securityContext:\n    sysctls:\n"
                "    - {name: kernel.shm_rmid_forced, value: '1'}\n"
                "    - {name: net/ipv4/ip_local_port_range, value: '1024 65000'}\n"
                "  containers: [{name: a, image: x}]\n"));
    ok(klet_admit_pod(p, true, "", true, &reason, &msg) == 0, "safe sysctls admitted");
    struct klet_sec s;
    char *err;
    build(p, NULL, false, &s, &err);
    ok(s.nsysctls == 2 && !strcmp(s.sysctls[1].name, "net.ipv4.ip_local_port_range") &&
           !strcmp(s.sysctls[1].value, "1024 65000"),
       "sysctls for config.json, '/' as '.'");
    char *args[] = {"/bin/true"};
    struct klet_oci o = {.args = args, .nargs = 1, .rootfs = "/r", .sec = &s};
    char *js = klet_oci_config(&o);
    json_t *j = parse(js);
    is_str(json_str(json_get(json_get(json_get(j, "linux"), "sysctl"), "kernel.shm_rmid_forced")),
           "1", "config.json: linux.sysctl");
    json_free(j);
    free(js);
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  securityContext:\n    sysctls: [{name: kernel.msgmax, value: '65536'}]\n"
                "  containers: [{name: a, image: x}]\n"));
    ok(klet_admit_pod(p, true, "", true, &reason, &msg) < 0 && !strcmp(reason, "SysctlForbidden"),
       "an unsafe sysctl: SysctlForbidden");
    is_str(msg, "forbidden sysctl: \"kernel.msgmax\" not allowlisted", "Kubernetes' message");
    free(msg);
    ok(klet_admit_pod(p, true, "net.core.somaxconn,kernel.msg*", true, &reason, &msg) == 0,
       "allowed by --allowed-unsafe-sysctls kernel.msg*");
    protobuf_c_message_free_unpacked(&p->base, NULL);

    ok(klet_admit_unsafe_check("kernel.msg*,net.core.somaxconn,kernel.sem", &err) == 0,
       "--allowed-unsafe-sysctls of namespaced ones accepted");
    ok(klet_admit_unsafe_check("kernel.msg*,kernel.*", &err) < 0,
       "a pattern not namespaced refused");
    is_str(err, "the sysctls \"kernel.*\" are not known to be namespaced", "Kubernetes' message");
    free(err);
    p = pod(POD("  securityContext:\n    sysctls: [{name: kernel.panic, value: '1'}]\n"
                "  containers: [{name: a, image: x}]\n"));
    ok(klet_admit_pod(p, true, "kernel.msg*", true, &reason, &msg) < 0,
       "a node-wide sysctl never is");
    free(msg);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  hostNetwork: true\n  securityContext:\n"
                "    sysctls: [{name: net.ipv4.tcp_syncookies, value: '1'}]\n"
                "  containers: [{name: a, image: x}]\n"));
    ok(klet_admit_pod(p, true, "", true, &reason, &msg) < 0,
       "a net sysctl with hostNetwork refused");
    is_str(msg, "forbidden sysctl: \"net.ipv4.tcp_syncookies\" not allowed with host net enabled",
           "its message");
    free(msg);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    p = pod(POD("  containers: [{name: a, image: x}]\n  initContainers:\n  - name: i\n"
                "    image: x\n    securityContext: {privileged: true}\n"));
    ok(klet_admit_pod(p, true, "", true, &reason, &msg) == 0, "privileged allowed by default");
    ok(klet_admit_pod(p, false, "", true, &reason, &msg) < 0 && !strcmp(reason, "Forbidden"),
       "--allow-privileged=false refuses a privileged init container");
    is_str(msg, "pod with UID \"u-1\" specified privileged init container, but is disallowed",
           "Kubernetes' message");
    free(msg);
    protobuf_c_message_free_unpacked(&p->base, NULL);
}

static void test_apparmor(void)
{
    const char *reason = NULL;
    char *msg = NULL;
    Coracle__V1__Pod *p = pod(POD("  containers:\n  - name: a\n    image: x\n    securityContext:\n"
                                  "      appArmorProfile: {type: RuntimeDefault}\n"));
    ok(klet_admit_pod(p, true, "", false, &reason, &msg) < 0 && !strcmp(reason, "AppArmor"),
       "an AppArmor profile on a host without AppArmor: refused");
    is_str(msg, "Cannot enforce AppArmor: AppArmor is not enabled on the host",
           "Kubernetes' message");
    free(msg);
    ok(klet_admit_pod(p, true, "", true, &reason, &msg) == 0, "admitted where AppArmor is on");
    protobuf_c_message_free_unpacked(&p->base, NULL);
    p = pod(POD("  securityContext:\n    appArmorProfile: {type: Unconfined}\n"
                "  containers: [{name: a, image: x}]\n"));
    ok(klet_admit_pod(p, true, "", false, &reason, &msg) == 0, "Unconfined needs nothing");
    protobuf_c_message_free_unpacked(&p->base, NULL);
    p = pod("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations:\n"
            "    container.apparmor.security.beta.kubernetes.io/a: localhost/k8s-x\n"
            "spec:\n  containers: [{name: a, image: x}]\n");
    ok(klet_admit_pod(p, true, "", false, &reason, &msg) < 0, "the beta annotation counts too");
    free(msg);
    protobuf_c_message_free_unpacked(&p->base, NULL);
}

static void test_oci(void)
{
    struct klet_sec s;
    char *err;
    Coracle__V1__Pod *p = pod(POD("  securityContext: {runAsUser: 1000, runAsGroup: 3000, "
                                  "supplementalGroups: [4000]}\n"
                                  "  containers:\n  - name: a\n    image: x\n"
                                  "    securityContext:\n"
                                  "      allowPrivilegeEscalation: false\n"
                                  "      readOnlyRootFilesystem: true\n"
                                  "      capabilities: {drop: [ALL]}\n"
                                  "      seccompProfile: {type: RuntimeDefault}\n"));
    build(p, NULL, false, &s, &err);
    char *args[] = {"/bin/true"};
    struct klet_oci o = {.args = args, .nargs = 1, .rootfs = "/r", .uid = 7, .sec = &s};
    char *js = klet_oci_config(&o);
    json_t *j = parse(js);
    const json_t *proc = json_get(j, "process"), *user = json_get(proc, "user");
    int64_t uid = -1, gid = -1;
    json_int64(json_get(user, "uid"), &uid);
    json_int64(json_get(user, "gid"), &gid);
    ok(uid == 1000 && gid == 3000, "process.user from the security context");
    const json_t *ag = json_get(user, "additionalGids");
    ok(ag && ag->n == 4, "additionalGids: 3000, audio, video, 4000 (%zu)", ag ? ag->n : 0);
    ok(json_is(json_get(proc, "noNewPrivileges"), JSON_TRUE), "noNewPrivileges");
    ok(json_get(json_get(proc, "capabilities"), "effective")->n == 0, "no capabilities");
    ok(json_is(json_get(json_get(j, "root"), "readonly"), JSON_TRUE), "root.readonly");
    ok(json_get(json_get(j, "linux"), "seccomp") != NULL, "linux.seccomp");
    ok(json_get(json_get(j, "linux"), "maskedPaths")->n > 0, "masked paths kept");
    json_free(j);
    free(js);
    klet_sec_free(&s);
    protobuf_c_message_free_unpacked(&p->base, NULL);
}

static void test_pidns(void)
{
    char *args[] = {"/bin/true"};
    struct klet_oci o = {.args = args, .nargs = 1, .rootfs = "/r", .pidns = "/pods/u/ns/pid"};
    char *js = klet_oci_config(&o);
    json_t *j = parse(js);
    const json_t *nss = json_get(json_get(j, "linux"), "namespaces");
    int pid = 0;
    const char *path = NULL;
    for (size_t i = 0; nss && i < nss->n; i++)
        if (!strcmp(json_str(json_get(nss->kids[i], "type")), "pid")) {
            pid++;
            path = json_str(json_get(nss->kids[i], "path"));
        }
    ok(pid == 1 && path && !strcmp(path, "/pods/u/ns/pid"),
       "shareProcessNamespace: the pod's pid namespace joined");
    json_free(j);
    free(js);
    o.host_pid = true;
    js = klet_oci_config(&o);
    ok(!strstr(js, "\"pid\""), "hostPID wins: no pid namespace");
    free(js);
}

static void test_fsgroup(void)
{
    char d[300], f[400], sub[350];
    snprintf(d, sizeof d, "%s/vol", tmp);
    snprintf(sub, sizeof sub, "%s/sub", d);
    snprintf(f, sizeof f, "%s/file", sub);
    mkdir(d, 0755);
    mkdir(sub, 0700);
    write_file(f, "x");
    chmod(f, 0600);
    ok(klet_fsgroup_apply(d, 2000, false) == 0, "fsGroup applied");
    struct stat a, b;
    stat(sub, &a);
    stat(f, &b);
    ok(a.st_gid == 2000 && b.st_gid == 2000, "group owned by fsGroup");
    ok((a.st_mode & 07777) == 02770, "directory g+rwx and setgid: %o", a.st_mode & 07777);
    ok((b.st_mode & 07777) == 0660, "file g+rw: %o", b.st_mode & 07777);
    chmod(f, 0600);
    klet_fsgroup_apply(d, 2000, true);
    stat(f, &b);
    ok((b.st_mode & 07777) == 0640, "read-only volume: g+r: %o", b.st_mode & 07777);

    Coracle__V1__PodSecurityContext ps = CORACLE__V1__POD_SECURITY_CONTEXT__INIT;
    ps.has_fsgroup = 1;
    ps.fsgroup = 2000;
    ps.fsgroupchangepolicy = "OnRootMismatch";
    chmod(f, 0600);
    klet_fsgroup_volume(d, &ps, false);
    stat(f, &b);
    ok((b.st_mode & 07777) == 0600, "OnRootMismatch: a matching root is left alone");
    chmod(d, 0755);
    klet_fsgroup_volume(d, &ps, false);
    stat(f, &b);
    ok((b.st_mode & 07777) == 0660, "OnRootMismatch: a root without the bits is walked");
    ps.fsgroupchangepolicy = NULL;
    chmod(f, 0600);
    klet_fsgroup_volume(d, &ps, false);
    stat(f, &b);
    ok((b.st_mode & 07777) == 0660, "Always (the default): walked every time");
}

int main(void)
{
    fixture();
    test_caps();
    test_users();
    test_nonroot();
    test_flags();
    test_privileged();
    test_seccomp();
    test_admit();
    test_apparmor();
    test_oci();
    test_pidns();
    test_fsgroup();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0)
        diag("cannot remove %s", tmp);
    return done_testing();
}
