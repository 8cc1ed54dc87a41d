/*
 * psa_check: the Pod Security Standards themselves (psa.h's pure half):
 * one function per check of k8s.io/pod-security-admission's policy
 * package, with its texts, and the table that says at which level and from
 * which version each applies.
 *
 * Kubernetes orders the checks by their IDs, the baseline ones first, then
 * the restricted ones; the restricted level runs the baseline checks too,
 * except those a restricted check replaces from its version on (e.g.
 * restrictedVolumes replaces hostPathVolumes). The table below is in that
 * order. Sets of names come out sorted, as Go's sets.List does.
 */
#include "config.h"
#include "psa.h"
#include "buf.h"
#include "util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- strings ---- */

/* A list of strings (owned), optionally kept sorted and unique like a Go set. */
struct strs {
    char **v;
    size_t n, cap;
};

static void strs_add(struct strs *s, const char *v)
{
    s->v = xgrow(s->v, &s->cap, s->n + 1, sizeof(*s->v));
    s->v[s->n++] = xstrdup(v);
}

static bool strs_has(const struct strs *s, const char *v)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], v))
            return true;
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds v unless present; the set is sorted when read (strs_sorted). */
static void set_add(struct strs *s, const char *v)
{
    if (!strs_has(s, v))
        strs_add(s, v);
}

static void strs_sort(struct strs *s)
{
    if (s->n > 1)
        qsort(s->v, s->n, sizeof(*s->v), cmp_str);
}

static void strs_free(struct strs *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    *s = (struct strs){0};
}

/* Go's %q of a plain string: quotes, with " and \ escaped. */
static void put_quoted(struct buf *b, const char *s)
{
    buf_puts(b, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_add(b, "\\", 1);
        buf_add(b, s, 1);
    }
    buf_puts(b, "\"");
}

/* joinQuote: "a", "b" (Kubernetes' helper quotes without escaping) */
static void put_join_quote(struct buf *b, const struct strs *s)
{
    for (size_t i = 0; i < s->n; i++)
        buf_printf(b, "%s\"%s\"", i ? ", " : "", s->v[i]);
}

static void put_join(struct buf *b, const struct strs *s, const char *sep)
{
    for (size_t i = 0; i < s->n; i++) {
        if (i)
            buf_puts(b, sep);
        buf_puts(b, s->v[i]);
    }
}

static const char *plural(const char *one, const char *many, size_t n)
{
    return n == 1 ? one : many;
}

/* `container "a"` / `containers "a", "b"` appended to b */
static void put_containers(struct buf *b, const struct strs *s)
{
    buf_printf(b, "%s ", plural("container", "containers", s->n));
    put_join_quote(b, s);
}

/* ---- one evaluation ---- */

struct eval {
    int minor; /* the version evaluated */
    const Coracle__V1__ObjectMeta *meta;
    const Coracle__V1__PodSpec *spec;
    /* a failed check fills these */
    const char *reason;
    struct buf detail;
};

/* Init containers, then containers, as Kubernetes' visitContainers (no ephemeral containers here).
 */
#define EACH_CONTAINER(e, c)                                                                       \
    for (size_t i_ = 0, n_ = (e)->spec->n_initcontainers + (e)->spec->n_containers; i_ < n_; i_++) \
        for (const Coracle__V1__Container *c =                                                     \
                 i_ < (e)->spec->n_initcontainers                                                  \
                     ? (e)->spec->initcontainers[i_]                                               \
                     : (e)->spec->containers[i_ - (e)->spec->n_initcontainers];                    \
             c; c = NULL)

static const char *cname(const Coracle__V1__Container *c)
{
    return c->name ? c->name : "";
}

static const char *annotation(const Coracle__V1__ObjectMeta *m, const char *key)
{
    if (!m)
        return NULL;
    for (size_t i = 0; i < m->n_annotations; i++)
        if (m->annotations[i]->key && !strcmp(m->annotations[i]->key, key))
            return m->annotations[i]->value ? m->annotations[i]->value : "";
    return NULL;
}

static bool starts(const char *s, const char *prefix)
{
    return s && !strncmp(s, prefix, strlen(prefix));
}

static bool eq(const char *a, const char *b)
{
    return !strcmp(a ? a : "", b);
}

/* relaxPolicyForUserNamespacePod: hostUsers: false */
static bool user_namespace(const struct eval *e)
{
    return e->spec->has_hostusers && !e->spec->hostusers;
}

static const Coracle__V1__SecurityContext *csc(const Coracle__V1__Container *c)
{
    return c->securitycontext;
}

static const Coracle__V1__PodSecurityContext *psc(const struct eval *e)
{
    return e->spec->securitycontext;
}

static void fail(struct eval *e, const char *reason)
{
    e->reason = reason;
}

/* "pod and containers "a"" setters: the pod (if bad_pod), then the containers */
static void put_setters(struct buf *b, bool bad_pod, const struct strs *containers)
{
    if (bad_pod)
        buf_puts(b, "pod");
    if (containers->n) {
        if (bad_pod)
            buf_puts(b, " and ");
        put_containers(b, containers);
    }
}

/* ---- baseline ---- */

static bool apparmor_type_ok(const char *t)
{
    return eq(t, "RuntimeDefault") || eq(t, "Localhost");
}

static void apparmor_profile(struct eval *e)
{
    struct strs setters = {0}, values = {0}, bad = {0}, annots = {0};
    const Coracle__V1__PodSecurityContext *p = psc(e);
    bool bad_pod = p && p->apparmorprofile && !apparmor_type_ok(p->apparmorprofile->type);
    if (bad_pod)
        set_add(&values, p->apparmorprofile->type ? p->apparmorprofile->type : "");
    EACH_CONTAINER(e, c)
    {
        if (csc(c) && csc(c)->apparmorprofile && !apparmor_type_ok(csc(c)->apparmorprofile->type)) {
            strs_add(&bad, cname(c));
            set_add(&values, csc(c)->apparmorprofile->type ? csc(c)->apparmorprofile->type : "");
        }
    }
    for (size_t i = 0; e->meta && i < e->meta->n_annotations; i++) {
        const char *k = e->meta->annotations[i]->key, *v = e->meta->annotations[i]->value;
        if (!starts(k, "container.apparmor.security.beta.kubernetes.io/") || !v || !*v ||
            !strcmp(v, "runtime/default") || starts(v, "localhost/"))
            continue;
        struct buf a = {0};
        buf_printf(&a, "%s=", k);
        put_quoted(&a, v);
        strs_add(&annots, a.p);
        buf_free(&a);
    }
    strs_sort(&values);
    strs_sort(&annots);
    for (size_t i = 0; i < annots.n; i++)
        strs_add(&values, annots.v[i]);
    if (bad_pod)
        strs_add(&setters, "pod");
    if (bad.n) {
        struct buf b = {0};
        put_containers(&b, &bad);
        strs_add(&setters, b.p);
        buf_free(&b);
    }
    if (annots.n)
        strs_add(&setters, plural("annotation", "annotations", annots.n));
    if (setters.n) {
        fail(e, values.n == 1 ? "forbidden AppArmor profile" : "forbidden AppArmor profiles");
        put_join(&e->detail, &setters, " and ");
        buf_puts(&e->detail, " must not set AppArmor profile type to ");
        put_join_quote(&e->detail, &values);
    }
    strs_free(&setters);
    strs_free(&values);
    strs_free(&bad);
    strs_free(&annots);
}

static const char *const caps_default[] = {
    "AUDIT_WRITE",      "CHOWN",   "DAC_OVERRIDE", "FOWNER",  "FSETID", "KILL",       "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID",       "SETPCAP", "SETUID", "SYS_CHROOT", NULL};

static bool in_list(const char *const *l, const char *s)
{
    for (; *l; l++)
        if (eq(s, *l))
            return true;
    return false;
}

static void capabilities_baseline(struct eval *e)
{
    struct strs bad = {0}, caps = {0};
    EACH_CONTAINER(e, c)
    {
        if (!csc(c) || !csc(c)->capabilities)
            continue;
        bool ok = true;
        for (size_t j = 0; j < csc(c)->capabilities->n_add; j++)
            if (!in_list(caps_default, csc(c)->capabilities->add[j])) {
                ok = false;
                set_add(&caps, csc(c)->capabilities->add[j]);
            }
        if (!ok)
            strs_add(&bad, cname(c));
    }
    if (bad.n) {
        strs_sort(&caps);
        fail(e, "non-default capabilities");
        put_containers(&e->detail, &bad);
        buf_puts(&e->detail, " must not include ");
        put_join_quote(&e->detail, &caps);
        buf_puts(&e->detail, " in securityContext.capabilities.add");
    }
    strs_free(&bad);
    strs_free(&caps);
}

static void host_namespaces(struct eval *e)
{
    struct strs ns = {0};
    if (e->spec->hostnetwork)
        strs_add(&ns, "hostNetwork=true");
    if (e->spec->hostpid)
        strs_add(&ns, "hostPID=true");
    if (e->spec->hostipc)
        strs_add(&ns, "hostIPC=true");
    if (ns.n) {
        fail(e, "host namespaces");
        put_join(&e->detail, &ns, ", ");
    }
    strs_free(&ns);
}

static const Coracle__V1__VolumeSource *vsrc(const Coracle__V1__Volume *v)
{
    return v->volumesource;
}

static void host_path_volumes(struct eval *e)
{
    struct strs bad = {0};
    for (size_t i = 0; i < e->spec->n_volumes; i++)
        if (vsrc(e->spec->volumes[i]) && vsrc(e->spec->volumes[i])->hostpath)
            strs_add(&bad, e->spec->volumes[i]->name ? e->spec->volumes[i]->name : "");
    if (bad.n) {
        fail(e, "hostPath volumes");
        buf_printf(&e->detail, "%s ", plural("volume", "volumes", bad.n));
        put_join_quote(&e->detail, &bad);
    }
    strs_free(&bad);
}

/* Go's sets.NewString of decimal numbers sorts them as strings. */
static void host_ports(struct eval *e)
{
    struct strs bad = {0}, ports = {0};
    EACH_CONTAINER(e, c)
    {
        bool ok = true;
        for (size_t j = 0; j < c->n_ports; j++)
            if (c->ports[j]->hostport) {
                char n[16];
                snprintf(n, sizeof(n), "%d", (int)c->ports[j]->hostport);
                set_add(&ports, n);
                ok = false;
            }
        if (!ok)
            strs_add(&bad, cname(c));
    }
    if (bad.n) {
        strs_sort(&ports);
        fail(e, "hostPort");
        put_containers(&e->detail, &bad);
        buf_printf(&e->detail, " %s %s ", plural("uses", "use", bad.n),
                   plural("hostPort", "hostPorts", ports.n));
        put_join(&e->detail, &ports, ", ");
    }
    strs_free(&bad);
    strs_free(&ports);
}

static bool probe_hosts(const Coracle__V1__Probe *p, struct strs *hosts)
{
    bool bad = false;
    if (!p || !p->handler)
        return false;
    if (p->handler->httpget && p->handler->httpget->host && *p->handler->httpget->host) {
        set_add(hosts, p->handler->httpget->host);
        bad = true;
    }
    if (p->handler->tcpsocket && p->handler->tcpsocket->host && *p->handler->tcpsocket->host) {
        set_add(hosts, p->handler->tcpsocket->host);
        bad = true;
    }
    return bad;
}

/* (Containers have no lifecycle handlers here: the probes are what can name a host.) */
static void host_probes(struct eval *e)
{
    struct strs bad = {0}, hosts = {0};
    EACH_CONTAINER(e, c)
    {
        bool b = probe_hosts(c->livenessprobe, &hosts);
        b |= probe_hosts(c->readinessprobe, &hosts);
        b |= probe_hosts(c->startupprobe, &hosts);
        if (b)
            set_add(&bad, cname(c));
    }
    if (bad.n) {
        strs_sort(&bad);
        strs_sort(&hosts);
        fail(e, "probe or lifecycle host");
        put_containers(&e->detail, &bad);
        buf_printf(&e->detail, " %s %s ", plural("uses", "use", bad.n),
                   plural("probe or lifecycle host", "probe or lifecycle hosts", hosts.n));
        put_join_quote(&e->detail, &hosts);
    }
    strs_free(&bad);
    strs_free(&hosts);
}

static void privileged(struct eval *e)
{
    struct strs bad = {0};
    EACH_CONTAINER(e, c)
    {
        if (csc(c) && csc(c)->has_privileged && csc(c)->privileged)
            strs_add(&bad, cname(c));
    }
    if (bad.n) {
        fail(e, "privileged");
        put_containers(&e->detail, &bad);
        buf_puts(&e->detail, " must not set securityContext.privileged=true");
    }
    strs_free(&bad);
}

static void proc_mount_any(struct eval *e)
{
    struct strs bad = {0}, types = {0};
    EACH_CONTAINER(e, c)
    {
        if (csc(c) && csc(c)->procmount && !eq(csc(c)->procmount, "Default")) {
            strs_add(&bad, cname(c));
            set_add(&types, csc(c)->procmount);
        }
    }
    if (bad.n) {
        strs_sort(&types);
        fail(e, "procMount");
        put_containers(&e->detail, &bad);
        buf_puts(&e->detail, " must not set securityContext.procMount to ");
        put_join_quote(&e->detail, &types);
    }
    strs_free(&bad);
    strs_free(&types);
}

static void proc_mount(struct eval *e)
{
    if (e->minor >= 35 && user_namespace(e))
        return;
    proc_mount_any(e);
}

static void selinux_options(struct eval *e)
{
    static const char *const types_1_0[] = {"", "container_t", "container_init_t",
                                            "container_kvm_t", NULL};
    static const char *const types_1_31[] = {
        "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t", NULL};
    const char *const *allowed = e->minor >= 31 ? types_1_31 : types_1_0;
    struct strs bad_types = {0}, bad = {0};
    bool set_user = false, set_role = false;
    const Coracle__V1__SELinuxOptions *opts[2] = {psc(e) ? psc(e)->selinuxoptions : NULL, NULL};
    bool bad_pod = false;
    for (size_t i = 0, n = 1 + e->spec->n_initcontainers + e->spec->n_containers; i < n; i++) {
        const Coracle__V1__SELinuxOptions *o = opts[0];
        const Coracle__V1__Container *c = NULL;
        if (i) {
            c = i - 1 < e->spec->n_initcontainers
                    ? e->spec->initcontainers[i - 1]
                    : e->spec->containers[i - 1 - e->spec->n_initcontainers];
            o = csc(c) ? csc(c)->selinuxoptions : NULL;
        }
        if (!o)
            continue;
        bool ok = true;
        if (!in_list(allowed, o->type)) {
            ok = false;
            set_add(&bad_types, o->type ? o->type : "");
        }
        if (o->user && *o->user)
            ok = false, set_user = true;
        if (o->role && *o->role)
            ok = false, set_role = true;
        if (ok)
            continue;
        if (c)
            strs_add(&bad, cname(c));
        else
            bad_pod = true;
    }
    if (bad_pod || bad.n) {
        fail(e, "seLinuxOptions");
        put_setters(&e->detail, bad_pod, &bad);
        buf_puts(&e->detail, " set forbidden securityContext.seLinuxOptions: ");
        struct strs data = {0};
        if (bad_types.n) {
            strs_sort(&bad_types);
            struct buf t = {0};
            buf_printf(&t, "%s ", plural("type", "types", bad_types.n));
            put_join_quote(&t, &bad_types);
            strs_add(&data, t.p);
            buf_free(&t);
        }
        if (set_user)
            strs_add(&data, "user may not be set");
        if (set_role)
            strs_add(&data, "role may not be set");
        put_join(&e->detail, &data, "; ");
        strs_free(&data);
    }
    strs_free(&bad_types);
    strs_free(&bad);
}

static bool seccomp_annotation_ok(const char *v)
{
    return !strcmp(v, "runtime/default") || !strcmp(v, "docker/default") || starts(v, "localhost/");
}

#define SECCOMP_POD_ANNOTATION "seccomp.security.alpha.kubernetes.io/pod"
#define SECCOMP_CONTAINER_ANNOTATION "container.seccomp.security.alpha.kubernetes.io/"

/* Before v1.19: the alpha annotations. */
static void seccomp_annotations(struct eval *e)
{
    struct strs bad = {0};
    const char *v = annotation(e->meta, SECCOMP_POD_ANNOTATION);
    struct buf a = {0};
    if (v && !seccomp_annotation_ok(v)) {
        buf_puts(&a, SECCOMP_POD_ANNOTATION "=");
        put_quoted(&a, v);
        set_add(&bad, a.p);
    }
    EACH_CONTAINER(e, c)
    {
        char *key = xconcat(SECCOMP_CONTAINER_ANNOTATION, cname(c), NULL);
        v = annotation(e->meta, key);
        if (v && !seccomp_annotation_ok(v)) {
            buf_reset(&a);
            buf_printf(&a, "%s=", key);
            put_quoted(&a, v);
            set_add(&bad, a.p);
        }
        free(key);
    }
    buf_free(&a);
    if (bad.n) {
        strs_sort(&bad);
        fail(e, "seccompProfile");
        buf_printf(&e->detail, "forbidden %s ", plural("annotation", "annotations", bad.n));
        put_join(&e->detail, &bad, ", ");
    }
    strs_free(&bad);
}

static bool seccomp_type_ok(const Coracle__V1__SeccompProfile *p)
{
    return eq(p->type, "Localhost") || eq(p->type, "RuntimeDefault");
}

/*
 * v1.19 on: the seccompProfile fields; restricted: a valid profile must be
 * set on the pod or on every container.
 */
static void seccomp_fields(struct eval *e, bool required)
{
    struct strs values = {0}, bad = {0}, implicit = {0};
    const Coracle__V1__PodSecurityContext *p = psc(e);
    bool bad_pod = false, pod_set = false;
    if (p && p->seccompprofile) {
        if (!seccomp_type_ok(p->seccompprofile)) {
            bad_pod = true;
            set_add(&values, p->seccompprofile->type ? p->seccompprofile->type : "");
        } else {
            pod_set = true;
        }
    }
    EACH_CONTAINER(e, c)
    {
        if (csc(c) && csc(c)->seccompprofile) {
            if (!seccomp_type_ok(csc(c)->seccompprofile)) {
                strs_add(&bad, cname(c));
                set_add(&values, csc(c)->seccompprofile->type ? csc(c)->seccompprofile->type : "");
            }
        } else if (!pod_set) {
            strs_add(&implicit, cname(c));
        }
    }
    if (bad_pod || bad.n) {
        strs_sort(&values);
        fail(e, "seccompProfile");
        put_setters(&e->detail, bad_pod, &bad);
        buf_puts(&e->detail, " must not set securityContext.seccompProfile.type to ");
        put_join_quote(&e->detail, &values);
    } else if (required && implicit.n) {
        fail(e, "seccompProfile");
        buf_puts(&e->detail, "pod or ");
        put_containers(&e->detail, &implicit);
        buf_puts(&e->detail,
                 " must set securityContext.seccompProfile.type to \"RuntimeDefault\" or "
                 "\"Localhost\"");
    }
    strs_free(&values);
    strs_free(&bad);
    strs_free(&implicit);
}

static void seccomp_baseline(struct eval *e)
{
    if (e->minor < 19)
        seccomp_annotations(e);
    else
        seccomp_fields(e, false);
}

static void sysctls(struct eval *e)
{
    /* each version's additions, with the version that allowed them */
    static const struct {
        int since;
        const char *name;
    } allowed[] = {
        {0, "kernel.shm_rmid_forced"},
        {0, "net.ipv4.ip_local_port_range"},
        {0, "net.ipv4.tcp_syncookies"},
        {0, "net.ipv4.ping_group_range"},
        {0, "net.ipv4.ip_unprivileged_port_start"},
        {27, "net.ipv4.ip_local_reserved_ports"},
        {29, "net.ipv4.tcp_keepalive_time"},
        {29, "net.ipv4.tcp_fin_timeout"},
        {29, "net.ipv4.tcp_keepalive_intvl"},
        {29, "net.ipv4.tcp_keepalive_probes"},
        {32, "net.ipv4.tcp_rmem"},
        {32, "net.ipv4.tcp_wmem"},
        {37, "net.ipv4.tcp_slow_start_after_idle"},
        {37, "net.ipv4.tcp_notsent_lowat"},
    };
    struct strs bad = {0};
    for (size_t i = 0; psc(e) && i < psc(e)->n_sysctls; i++) {
        const char *name = psc(e)->sysctls[i]->name ? psc(e)->sysctls[i]->name : "";
        bool ok = false;
        for (size_t j = 0; j < sizeof(allowed) / sizeof(allowed[0]) && !ok; j++)
            ok = e->minor >= allowed[j].since && !strcmp(allowed[j].name, name);
        if (!ok)
            strs_add(&bad, name);
    }
    if (bad.n) {
        fail(e, "forbidden sysctls");
        put_join(&e->detail, &bad, ", ");
    }
    strs_free(&bad);
}

static bool host_process(const Coracle__V1__WindowsSecurityContextOptions *w)
{
    return w && w->has_hostprocess && w->hostprocess;
}

static void windows_host_process(struct eval *e)
{
    struct strs bad = {0};
    EACH_CONTAINER(e, c)
    {
        if (csc(c) && host_process(csc(c)->windowsoptions))
            strs_add(&bad, cname(c));
    }
    bool bad_pod = psc(e) && host_process(psc(e)->windowsoptions);
    if (bad_pod || bad.n) {
        fail(e, "hostProcess");
        put_setters(&e->detail, bad_pod, &bad);
        buf_puts(&e->detail, " must not set securityContext.windowsOptions.hostProcess=true");
    }
    strs_free(&bad);
}

/* ---- restricted ---- */

static void allow_privilege_escalation(struct eval *e)
{
    struct strs bad = {0};
    EACH_CONTAINER(e, c)
    {
        if (!csc(c) || !csc(c)->has_allowprivilegeescalation || csc(c)->allowprivilegeescalation)
            strs_add(&bad, cname(c));
    }
    if (bad.n) {
        fail(e, "allowPrivilegeEscalation != false");
        put_containers(&e->detail, &bad);
        buf_puts(&e->detail, " must set securityContext.allowPrivilegeEscalation=false");
    }
    strs_free(&bad);
}

static void capabilities_restricted(struct eval *e)
{
    struct strs no_drop = {0}, adding = {0}, caps = {0};
    EACH_CONTAINER(e, c)
    {
        const Coracle__V1__Capabilities *k = csc(c) ? csc(c)->capabilities : NULL;
        if (!k) {
            strs_add(&no_drop, cname(c));
            continue;
        }
        bool all = false, forbidden = false;
        for (size_t j = 0; j < k->n_drop && !all; j++)
            all = eq(k->drop[j], "ALL");
        if (!all)
            strs_add(&no_drop, cname(c));
        for (size_t j = 0; j < k->n_add; j++)
            if (!eq(k->add[j], "NET_BIND_SERVICE")) {
                forbidden = true;
                set_add(&caps, k->add[j]);
            }
        if (forbidden)
            strs_add(&adding, cname(c));
    }
    if (no_drop.n || adding.n) {
        fail(e, "unrestricted capabilities");
        if (no_drop.n) {
            put_containers(&e->detail, &no_drop);
            buf_puts(&e->detail, " must set securityContext.capabilities.drop=[\"ALL\"]");
        }
        if (adding.n) {
            strs_sort(&caps);
            if (no_drop.n)
                buf_puts(&e->detail, "; ");
            put_containers(&e->detail, &adding);
            buf_puts(&e->detail, " must not include ");
            put_join_quote(&e->detail, &caps);
            buf_puts(&e->detail, " in securityContext.capabilities.add");
        }
    }
    strs_free(&no_drop);
    strs_free(&adding);
    strs_free(&caps);
}

/*
 * The inline volume sources restricted allows. Read by name from the
 * descriptor, so that sources the proto gains later are judged too.
 */
static const char *const volumes_allowed[] = {
    "configMap", "csi",    "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim",
    "projected", "secret", NULL};
static const char *const volumes_named[] = {"hostPath",
                                            "gcePersistentDisk",
                                            "awsElasticBlockStore",
                                            "gitRepo",
                                            "nfs",
                                            "iscsi",
                                            "glusterfs",
                                            "rbd",
                                            "flexVolume",
                                            "cinder",
                                            "cephfs",
                                            "flocker",
                                            "fc",
                                            "azureFile",
                                            "vsphereVolume",
                                            "quobyte",
                                            "azureDisk",
                                            "photonPersistentDisk",
                                            "portworxVolume",
                                            "scaleIO",
                                            "storageos",
                                            NULL};

/* The names of the message fields set in src, as json names. */
static bool source_set(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)
        return false;
    return *(const ProtobufCMessage *const *)((const char *)m + f->offset) != NULL;
}

/* restrictedVolumes' type of a volume, or NULL if its source is allowed. */
static const char *volume_bad_type(const Coracle__V1__Volume *v)
{
    const ProtobufCMessage *m = (const ProtobufCMessage *)vsrc(v);
    if (!m)
        return "unknown";
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++)
        if (source_set(m, &d->fields[i]) && in_list(volumes_allowed, d->fields[i].name))
            return NULL;
    for (size_t t = 0; volumes_named[t]; t++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(d, volumes_named[t]);
        if (f && source_set(m, f))
            return volumes_named[t];
    }
    return "unknown";
}

static void restricted_volumes(struct eval *e)
{
    struct strs bad = {0}, types = {0};
    for (size_t i = 0; i < e->spec->n_volumes; i++) {
        const char *t = volume_bad_type(e->spec->volumes[i]);
        if (!t)
            continue;
        strs_add(&bad, e->spec->volumes[i]->name ? e->spec->volumes[i]->name : "");
        set_add(&types, t);
    }
    if (bad.n) {
        strs_sort(&types);
        fail(e, "restricted volume types");
        buf_printf(&e->detail, "%s ", plural("volume", "volumes", bad.n));
        put_join_quote(&e->detail, &bad);
        buf_printf(&e->detail, " %s %s ", plural("uses", "use", bad.n),
                   plural("restricted volume type", "restricted volume types", types.n));
        put_join_quote(&e->detail, &types);
    }
    strs_free(&bad);
    strs_free(&types);
}

static void run_as_non_root(struct eval *e)
{
    if (e->minor >= 35 && user_namespace(e))
        return;
    struct strs bad = {0}, implicit = {0};
    const Coracle__V1__PodSecurityContext *p = psc(e);
    bool bad_pod = p && p->has_runasnonroot && !p->runasnonroot;
    bool pod_ok = p && p->has_runasnonroot && p->runasnonroot;
    EACH_CONTAINER(e, c)
    {
        if (csc(c) && csc(c)->has_runasnonroot) {
            if (!csc(c)->runasnonroot)
                strs_add(&bad, cname(c));
        } else if (!pod_ok) {
            strs_add(&implicit, cname(c));
        }
    }
    if (bad_pod || bad.n) {
        fail(e, "runAsNonRoot != true");
        put_setters(&e->detail, bad_pod, &bad);
        buf_puts(&e->detail, " must not set securityContext.runAsNonRoot=false");
    } else if (implicit.n) {
        fail(e, "runAsNonRoot != true");
        buf_puts(&e->detail, "pod or ");
        put_containers(&e->detail, &implicit);
        buf_puts(&e->detail, " must set securityContext.runAsNonRoot=true");
    }
    strs_free(&bad);
    strs_free(&implicit);
}

static void run_as_user(struct eval *e)
{
    if (e->minor >= 35 && user_namespace(e))
        return;
    struct strs bad = {0};
    bool bad_pod = psc(e) && psc(e)->has_runasuser && psc(e)->runasuser == 0;
    EACH_CONTAINER(e, c)
    {
        if (csc(c) && csc(c)->has_runasuser && csc(c)->runasuser == 0)
            strs_add(&bad, cname(c));
    }
    if (bad_pod || bad.n) {
        fail(e, "runAsUser=0");
        put_setters(&e->detail, bad_pod, &bad);
        buf_puts(&e->detail, " must not set runAsUser=0");
    }
    strs_free(&bad);
}

static void seccomp_restricted(struct eval *e)
{
    seccomp_fields(e, true);
}

/* ---- the table ---- */

/*
 * Each check: its level, the first version it applies at, and for baseline
 * checks the version from which a restricted check replaces it at the
 * restricted level (NEVER: none does). Kubernetes' order: baseline IDs
 * sorted, then restricted IDs sorted.
 */
#define NEVER PSA_LATEST
static const struct check {
    const char *id;
    enum psa_level level;
    int since;
    int replaced;
    void (*fn)(struct eval *e);
} checks[] = {
    {"appArmorProfile", PSA_BASELINE, 0, NEVER, apparmor_profile},
    {"capabilities_baseline", PSA_BASELINE, 0, 22, capabilities_baseline},
    {"hostNamespaces", PSA_BASELINE, 0, NEVER, host_namespaces},
    {"hostPathVolumes", PSA_BASELINE, 0, 0, host_path_volumes},
    {"hostPorts", PSA_BASELINE, 0, NEVER, host_ports},
    {"hostProbesAndHostLifecycle", PSA_BASELINE, 34, NEVER, host_probes},
    {"privileged", PSA_BASELINE, 0, NEVER, privileged},
    {"procMount", PSA_BASELINE, 0, 35, proc_mount},
    {"seLinuxOptions", PSA_BASELINE, 0, NEVER, selinux_options},
    {"seccompProfile_baseline", PSA_BASELINE, 0, 19, seccomp_baseline},
    {"sysctls", PSA_BASELINE, 0, NEVER, sysctls},
    {"windowsHostProcess", PSA_BASELINE, 0, NEVER, windows_host_process},
    {"allowPrivilegeEscalation", PSA_RESTRICTED, 8, NEVER, allow_privilege_escalation},
    {"capabilities_restricted", PSA_RESTRICTED, 22, NEVER, capabilities_restricted},
    {"procMount_restricted", PSA_RESTRICTED, 35, NEVER, proc_mount_any},
    {"restrictedVolumes", PSA_RESTRICTED, 0, NEVER, restricted_volumes},
    {"runAsNonRoot", PSA_RESTRICTED, 0, NEVER, run_as_non_root},
    {"runAsUser", PSA_RESTRICTED, 23, NEVER, run_as_user},
    {"seccompProfile_restricted", PSA_RESTRICTED, 19, NEVER, seccomp_restricted},
};

char *psa_evaluate(const struct psa_lv *lv, const Coracle__V1__ObjectMeta *meta,
                   const Coracle__V1__PodSpec *spec, char **reasons)
{
    struct buf all = {0}, rs = {0};
    int minor = lv->minor > PSA_NEWEST ? PSA_NEWEST : lv->minor;
    for (size_t i = 0; spec && lv->level != PSA_PRIVILEGED && i < ARRAY_SIZE(checks); i++) {
        const struct check *ck = &checks[i];
        if (ck->level > lv->level || minor < ck->since ||
            (lv->level == PSA_RESTRICTED && minor >= ck->replaced))
            continue;
        struct eval e = {.minor = minor, .meta = meta, .spec = spec};
        ck->fn(&e);
        if (e.reason) {
            buf_printf(&all, "%s%s", all.len ? ", " : "", e.reason);
            buf_printf(&rs, "%s%s", rs.len ? ", " : "", e.reason);
            if (e.detail.len)
                buf_printf(&all, " (%s)", e.detail.p);
        }
        buf_free(&e.detail);
    }
    if (reasons)
        *reasons = all.len ? buf_take(&rs) : NULL;
    buf_free(&rs);
    return all.len ? buf_take(&all) : NULL;
}

/* ---- levels, versions, policies ---- */

static const char *const level_names[] = {"privileged", "baseline", "restricted"};

int psa_parse_level(const char *s, enum psa_level *out)
{
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, level_names[i])) {
            *out = (enum psa_level)i;
            return 0;
        }
    return -1;
}

/* ^v1\.([0-9]|[1-9][0-9]*)$ or "latest" */
int psa_parse_version(const char *s, int *minor)
{
    if (!s)
        return -1;
    if (!strcmp(s, "latest")) {
        *minor = PSA_LATEST;
        return 0;
    }
    if (strncmp(s, "v1.", 3) || !s[3] || (s[3] == '0' && s[4]))
        return -1;
    long v = 0;
    for (const char *p = s + 3; *p; p++) {
        if (*p < '0' || *p > '9' || v > 100000)
            return -1;
        v = v * 10 + (*p - '0');
    }
    *minor = (int)v;
    return 0;
}

const char *psa_lv_string(const struct psa_lv *lv, char buf[PSA_LV_LEN])
{
    if (lv->minor == PSA_LATEST)
        snprintf(buf, PSA_LV_LEN, "%s:latest", level_names[lv->level]);
    else
        snprintf(buf, PSA_LV_LEN, "%s:v1.%d", level_names[lv->level], lv->minor);
    return buf;
}

/* LEVEL[:VERSION] of len bytes at s. */
static int parse_lv(const char *s, size_t len, struct psa_lv *lv)
{
    char *t = xstrndup(s, len), *colon = strchr(t, ':');
    if (colon)
        *colon = 0;
    int r = psa_parse_level(t, &lv->level);
    lv->minor = PSA_LATEST;
    if (r == 0 && colon)
        r = psa_parse_version(colon + 1, &lv->minor);
    free(t);
    return r;
}

int psa_parse_defaults(const char *s, struct psa_policy *p, char **err)
{
    struct psa_lv priv = {PSA_PRIVILEGED, PSA_LATEST};
    *p = (struct psa_policy){priv, priv, priv};
    if (!strchr(s, '=')) {
        if (parse_lv(s, strlen(s), &p->enforce) < 0)
            goto bad;
        p->audit = p->warn = p->enforce;
        return 0;
    }
    for (const char *q = s; *q;) {
        size_t n = strcspn(q, ",");
        const char *eqs = memchr(q, '=', n);
        struct psa_lv *m = NULL;
        if (eqs && eqs - q == 7 && !strncmp(q, "enforce", 7))
            m = &p->enforce;
        else if (eqs && eqs - q == 5 && !strncmp(q, "audit", 5))
            m = &p->audit;
        else if (eqs && eqs - q == 4 && !strncmp(q, "warn", 4))
            m = &p->warn;
        if (!m || parse_lv(eqs + 1, n - (size_t)(eqs + 1 - q), m) < 0)
            goto bad;
        q += n;
        if (*q == ',')
            q++;
    }
    return 0;
bad:
    *err = xasprintf("pod security default \"%s\": want LEVEL[:VERSION] or "
                     "enforce|audit|warn=LEVEL[:VERSION],...; LEVEL is privileged, baseline or "
                     "restricted, VERSION latest or v1.N",
                     s);
    return -1;
}

#define LABEL_PREFIX "pod-security.kubernetes.io/"

static const char *label(Coracle__V1__ObjectMeta__LabelsEntry *const *l, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (l[i]->key && !strcmp(l[i]->key, key))
            return l[i]->value ? l[i]->value : "";
    return NULL;
}

static void label_err(struct buf *errs, const char *key, const char *value, const char *why)
{
    if (errs->len)
        buf_puts(errs, ", ");
    buf_printf(errs, "metadata.labels[" LABEL_PREFIX "%s]: Invalid value: ", key);
    put_quoted(errs, value);
    buf_printf(errs, ": %s", why);
}

/*
 * One mode's labels over its default. fail_level: the level an invalid
 * one means. Returns the errors added; *has_level: the level label was
 * there and valid.
 */
static int mode_labels(Coracle__V1__ObjectMeta__LabelsEntry *const *l, size_t n, const char *mode,
                       enum psa_level fail_level, struct psa_lv *lv, bool *has_level,
                       bool *has_version, struct buf *errs)
{
    int bad = 0;
    char key[40], vkey[48];
    snprintf(key, sizeof(key), LABEL_PREFIX "%s", mode);
    snprintf(vkey, sizeof(vkey), LABEL_PREFIX "%s-version", mode);
    const char *v = label(l, n, key);
    *has_level = false;
    if (v && psa_parse_level(v, &lv->level) == 0) {
        *has_level = true;
    } else if (v) {
        lv->level = fail_level;
        label_err(errs, mode, v, "must be one of privileged, baseline, restricted");
        bad++;
    }
    v = label(l, n, vkey);
    *has_version = v != NULL;
    if (v && psa_parse_version(v, &lv->minor) < 0) {
        lv->minor = PSA_LATEST;
        char *k = xconcat(mode, "-version", NULL);
        label_err(errs, k, v, "must be \"latest\" or \"v1.x\"");
        free(k);
        bad++;
    }
    return bad;
}

int psa_policy_of(Coracle__V1__ObjectMeta__LabelsEntry *const *labels, size_t n,
                  const struct psa_policy *def, struct psa_policy *out, char **errs)
{
    struct buf eb = {0};
    bool enforce_level, warn_level, warn_version, unused;
    *out = *def;
    int bad = mode_labels(labels, n, "enforce", PSA_RESTRICTED, &out->enforce, &enforce_level,
                          &unused, &eb);
    bad += mode_labels(labels, n, "audit", PSA_PRIVILEGED, &out->audit, &unused, &unused, &eb);
    bad +=
        mode_labels(labels, n, "warn", PSA_PRIVILEGED, &out->warn, &warn_level, &warn_version, &eb);
    /* an invalid warn label still counts as set: it fails open, not to enforce's level */
    if (label(labels, n, LABEL_PREFIX "warn"))
        warn_level = true;
    if (!warn_level && enforce_level && out->enforce.level > out->warn.level) {
        out->warn.level = out->enforce.level;
        if (!warn_version)
            out->warn.minor = out->enforce.minor;
    }
    if (errs)
        *errs = eb.len ? buf_take(&eb) : NULL;
    buf_free(&eb);
    return bad;
}
