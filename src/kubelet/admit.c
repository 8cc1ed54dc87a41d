/*
 * admit: whether this node runs a pod at all, decided once when the pod
 * arrives, as the admit handlers of Kubernetes' kubelet: an AppArmor
 * profile on a host without AppArmor, a privileged container without
 * --allow-privileged, a sysctl neither safe nor allowed by
 * --allowed-unsafe-sysctls (or in a namespace the pod shares with the
 * host). A refused pod fails at once (pods.c: phase Failed, the reason,
 * "Pod was rejected: ..." and a Warning event) and nothing of it is set up.
 */
#include "config.h"
#include "klet.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Kubernetes' safe sysctls (pkg/kubelet/sysctl): namespaced, and harmless to the node. */
static const char *const safe_sysctls[] = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
};

char *klet_sysctl_name(const char *name)
{
    char *n = xstrdup(name);
    for (char *p = n; *p; p++)
        if (*p == '/')
            *p = '.';
    return n;
}

/* The namespace a sysctl lives in (Kubernetes' NamespacedBy): "ipc", "net" or NULL (not
 * known to be namespaced: never allowed). */
static const char *sysctl_ns(const char *name)
{
    static const char *const ipc[] = {"kernel.shm", "kernel.msg", "fs.mqueue."};
    if (!strcmp(name, "kernel.sem"))
        return "ipc";
    for (size_t i = 0; i < ARRAY_SIZE(ipc); i++)
        if (!strncmp(name, ipc[i], strlen(ipc[i])))
            return "ipc";
    if (!strncmp(name, "net.", 4))
        return "net";
    return NULL;
}

/* An entry of --allowed-unsafe-sysctls matches name: equal, or "prefix*". */
static bool sysctl_match(const char *pat, const char *name)
{
    size_t n = strlen(pat);
    if (n && pat[n - 1] == '*')
        return !strncmp(name, pat, n - 1);
    return !strcmp(name, pat);
}

int klet_admit_unsafe_check(const char *unsafe, char **err)
{
    char *list = xstrdup(unsafe ? unsafe : ""), *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(list, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save)) {
        size_t n = strlen(t);
        char *prefix = xstrndup(t, n && t[n - 1] == '*' ? n - 1 : n);
        if (!sysctl_ns(prefix)) {
            *err =
                xasprintf(n && t[n - 1] == '*' ? "the sysctls \"%s\" are not known to be namespaced"
                                               : "the sysctl \"%s\" are not known to be namespaced",
                          t);
            rc = -1;
        }
        free(prefix);
    }
    free(list);
    return rc;
}

/* Kubernetes' patternAllowlist: the safe sysctls and --allowed-unsafe-sysctls, each only
 * where its namespace is the pod's own. */
static int sysctl_check(const char *name, const char *unsafe, bool hostnet, bool hostipc,
                        char **msg)
{
    bool listed = false;
    for (size_t i = 0; i < ARRAY_SIZE(safe_sysctls) && !listed; i++)
        listed = !strcmp(name, safe_sysctls[i]);
    char *list = xstrdup(unsafe ? unsafe : ""), *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t && !listed; t = strtok_r(NULL, ",", &save))
        listed = sysctl_match(t, name);
    free(list);
    if (!listed) {
        *msg = xasprintf("\"%s\" not allowlisted", name);
        return -1;
    }
    const char *ns = sysctl_ns(name);
    if (ns && ((!strcmp(ns, "ipc") && hostipc) || (!strcmp(ns, "net") && hostnet))) {
        *msg = xasprintf("\"%s\" not allowed with host %s enabled", name, ns);
        return -1;
    }
    return 0;
}

static bool any_privileged(Coracle__V1__Container **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i]->securitycontext && v[i]->securitycontext->has_privileged &&
            v[i]->securitycontext->privileged)
            return true;
    return false;
}

static bool apparmor_set(const Coracle__V1__AppArmorProfile *a)
{
    return a && a->type && strcmp(a->type, "Unconfined");
}

/* Kubernetes' apparmor isRequired: a profile other than Unconfined anywhere in the pod (its
 * fields or the beta annotations). */
static bool apparmor_required(const Coracle__V1__Pod *pod)
{
    const Coracle__V1__PodSpec *sp = pod->spec;
    if (sp->securitycontext && apparmor_set(sp->securitycontext->apparmorprofile))
        return true;
    for (size_t i = 0; i < sp->n_containers + sp->n_initcontainers; i++) {
        const Coracle__V1__Container *c =
            i < sp->n_containers ? sp->containers[i] : sp->initcontainers[i - sp->n_containers];
        if (c->securitycontext && apparmor_set(c->securitycontext->apparmorprofile))
            return true;
    }
    static const char prefix[] = "container.apparmor.security.beta.kubernetes.io/";
    const Coracle__V1__ObjectMeta *m = pod->metadata;
    for (size_t i = 0; m && i < m->n_annotations; i++)
        if (m->annotations[i]->key && !strncmp(m->annotations[i]->key, prefix, strlen(prefix)) &&
            m->annotations[i]->value && strcmp(m->annotations[i]->value, "unconfined"))
            return true;
    return false;
}

bool klet_apparmor_enabled(void)
{
    FILE *f = fopen("/sys/module/apparmor/parameters/enabled", "r");
    int c = f ? fgetc(f) : 0;
    if (f)
        fclose(f);
    return c == 'Y';
}

int klet_admit_pod(const Coracle__V1__Pod *pod, bool allow_privileged, const char *unsafe,
                   bool apparmor, const char **reason, char **msg)
{
    const Coracle__V1__PodSpec *sp = pod->spec;
    if (!apparmor && apparmor_required(pod)) {
        *reason = "AppArmor";
        *msg = xasprintf("Cannot enforce AppArmor: AppArmor is not enabled on the host");
        return -1;
    }
    bool ctr = any_privileged(sp->containers, sp->n_containers);
    if (!allow_privileged && (ctr || any_privileged(sp->initcontainers, sp->n_initcontainers))) {
        *reason = "Forbidden";
        *msg = xasprintf("pod with UID \"%s\" specified privileged %scontainer, but is disallowed",
                         pod->metadata && pod->metadata->uid ? pod->metadata->uid : "",
                         ctr ? "" : "init ");
        return -1;
    }
    const Coracle__V1__PodSecurityContext *ps = sp->securitycontext;
    bool hostnet = sp->has_hostnetwork && sp->hostnetwork;
    bool hostipc = sp->has_hostipc && sp->hostipc;
    for (size_t i = 0; ps && i < ps->n_sysctls; i++) {
        char *n = klet_sysctl_name(ps->sysctls[i]->name ? ps->sysctls[i]->name : "");
        char *why = NULL;
        int rc = sysctl_check(n, unsafe, hostnet, hostipc, &why);
        free(n);
        if (rc < 0) {
            *reason = "SysctlForbidden";
            *msg = xasprintf("forbidden sysctl: %s", why);
            free(why);
            return -1;
        }
    }
    return 0;
}
