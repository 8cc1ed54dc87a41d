/*
 * test_podsecurity: the Pod Security Standards' checks (src/apiserver/
 * psa_check.c) and admission decisions (psa.c) as golden strings: a table
 * of pods (YAML) and the level:version they are checked at, with the
 * forbidden detail Kubernetes' pod-security-admission writes for them.
 */
#include "config.h"
#include "psa.h"
#include "kobj.h"
#include "obj.h"
#include "tap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* A pod whose containers are c1 (and c2 where named) and spec's extra fields. */
static Coracle__V1__Pod *parse_pod(const char *yaml)
{
    char *err = NULL;
    ProtobufCMessage *m =
        kobj_parse_msg("t.yaml", yaml, strlen(yaml), &coracle__v1__pod__descriptor, &err);
    if (!m) {
        diag("parse: %s", err ? err : "?");
        free(err);
    }
    return (Coracle__V1__Pod *)m;
}

static struct psa_lv lv_of(const char *s)
{
    struct psa_policy p;
    char *err = NULL;
    if (psa_parse_defaults(s, &p, &err) < 0) {
        diag("%s", err);
        free(err);
    }
    return p.enforce;
}

static const struct {
    const char *lv;
    const char *pod;
    const char *want; /* NULL: allowed */
} cases[] = {
    /* baseline */
    {"baseline", "{spec: {containers: [{name: c, image: i}]}}", NULL},
    {"baseline",
     "{spec: {containers: [{name: c, image: i}], volumes: [{name: root, hostPath: {path: /}}]}}",
     "hostPath volumes (volume \"root\")"},
    {"baseline",
     "{spec: {containers: [{name: c, image: i}], volumes: [{name: a, hostPath: {path: /}}, "
     "{name: e, emptyDir: {}}, {name: b, hostPath: {path: /etc}}]}}",
     "hostPath volumes (volumes \"a\", \"b\")"},
    {"baseline", "{spec: {hostNetwork: true, hostPID: true, containers: [{name: c, image: i}]}}",
     "host namespaces (hostNetwork=true, hostPID=true)"},
    {"baseline", "{spec: {hostIPC: true, containers: [{name: c, image: i}]}}",
     "host namespaces (hostIPC=true)"},
    {"baseline",
     "{spec: {containers: [{name: c, image: i, securityContext: {privileged: true}}, "
     "{name: d, image: i, securityContext: {privileged: false}}]}}",
     "privileged (container \"c\" must not set securityContext.privileged=true)"},
    {"baseline",
     "{spec: {initContainers: [{name: a, image: i, securityContext: {capabilities: {add: "
     "[SYS_ADMIN, CHOWN]}}}], containers: [{name: b, image: i, securityContext: {capabilities: "
     "{add: [NET_RAW, SYS_ADMIN]}}}]}}",
     "non-default capabilities (containers \"a\", \"b\" must not include \"NET_RAW\", "
     "\"SYS_ADMIN\" in securityContext.capabilities.add)"},
    {"baseline",
     "{spec: {containers: [{name: c, image: i, ports: [{containerPort: 80, hostPort: 8080}, "
     "{containerPort: 81, hostPort: 80}]}]}}",
     "hostPort (container \"c\" uses hostPorts 80, 8080)"},
    {"baseline",
     "{spec: {containers: [{name: c, image: i, securityContext: {procMount: Unmasked}}]}}",
     "procMount (container \"c\" must not set securityContext.procMount to \"Unmasked\")"},
    {"baseline",
     "{spec: {hostUsers: false, containers: [{name: c, image: i, securityContext: {procMount: "
     "Unmasked}}]}}",
     NULL},
    {"baseline:v1.34",
     "{spec: {hostUsers: false, containers: [{name: c, image: i, securityContext: {procMount: "
     "Unmasked}}]}}",
     "procMount (container \"c\" must not set securityContext.procMount to \"Unmasked\")"},
    {"baseline",
     "{spec: {securityContext: {seLinuxOptions: {type: spc_t, user: u}}, containers: [{name: c, "
     "image: i, securityContext: {seLinuxOptions: {role: r}}}]}}",
     "seLinuxOptions (pod and container \"c\" set forbidden securityContext.seLinuxOptions: "
     "type \"spc_t\"; user may not be set; role may not be set)"},
    {"baseline",
     "{spec: {securityContext: {seLinuxOptions: {type: container_engine_t}}, containers: "
     "[{name: c, image: i}]}}",
     NULL},
    {"baseline:v1.30",
     "{spec: {securityContext: {seLinuxOptions: {type: container_engine_t}}, containers: "
     "[{name: c, image: i}]}}",
     "seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type "
     "\"container_engine_t\")"},
    {"baseline",
     "{spec: {securityContext: {seccompProfile: {type: Unconfined}}, containers: [{name: c, "
     "image: i, securityContext: {seccompProfile: {type: Unconfined}}}]}}",
     "seccompProfile (pod and container \"c\" must not set securityContext.seccompProfile.type "
     "to \"Unconfined\")"},
    {"baseline:v1.18",
     "{metadata: {annotations: {seccomp.security.alpha.kubernetes.io/pod: unconfined}}, spec: "
     "{containers: [{name: c, image: i}]}}",
     "seccompProfile (forbidden annotation "
     "seccomp.security.alpha.kubernetes.io/pod=\"unconfined\")"},
    {"baseline",
     "{metadata: {annotations: {seccomp.security.alpha.kubernetes.io/pod: unconfined}}, spec: "
     "{containers: [{name: c, image: i}]}}",
     NULL},
    {"baseline",
     "{spec: {securityContext: {sysctls: [{name: kernel.msgmax, value: '1'}, {name: "
     "net.ipv4.ip_local_reserved_ports, value: '1'}]}, containers: [{name: c, image: i}]}}",
     "forbidden sysctls (kernel.msgmax)"},
    {"baseline:v1.26",
     "{spec: {securityContext: {sysctls: [{name: kernel.msgmax, value: '1'}, {name: "
     "net.ipv4.ip_local_reserved_ports, value: '1'}]}, containers: [{name: c, image: i}]}}",
     "forbidden sysctls (kernel.msgmax, net.ipv4.ip_local_reserved_ports)"},
    {"baseline",
     "{spec: {securityContext: {windowsOptions: {hostProcess: true}}, containers: [{name: c, "
     "image: i}]}}",
     "hostProcess (pod must not set securityContext.windowsOptions.hostProcess=true)"},
    {"baseline",
     "{spec: {securityContext: {appArmorProfile: {type: Unconfined}}, containers: [{name: c, "
     "image: i, securityContext: {appArmorProfile: {type: Localhost}}}]}}",
     "forbidden AppArmor profile (pod must not set AppArmor profile type to \"Unconfined\")"},
    {"baseline",
     "{spec: {containers: [{name: c, image: i, livenessProbe: {httpGet: {host: example.com, "
     "port: 80}}, readinessProbe: {tcpSocket: {host: 10.0.0.1, port: 80}}}]}}",
     "probe or lifecycle host (container \"c\" uses probe or lifecycle hosts \"10.0.0.1\", "
     "\"example.com\")"},
    {"baseline:v1.33",
     "{spec: {containers: [{name: c, image: i, livenessProbe: {httpGet: {host: example.com, "
     "port: 80}}}]}}",
     NULL},
    /* several at once, in Kubernetes' order */
    {"baseline",
     "{spec: {hostNetwork: true, containers: [{name: c, image: i, securityContext: "
     "{privileged: true}}], volumes: [{name: root, hostPath: {path: /}}]}}",
     "host namespaces (hostNetwork=true), hostPath volumes (volume \"root\"), privileged "
     "(container \"c\" must not set securityContext.privileged=true)"},
    {"privileged",
     "{spec: {hostNetwork: true, containers: [{name: c, image: i, securityContext: "
     "{privileged: true}}], volumes: [{name: root, hostPath: {path: /}}]}}",
     NULL},
    /* restricted */
    {"restricted", "{spec: {containers: [{name: c, image: i}]}}",
     "allowPrivilegeEscalation != false (container \"c\" must set "
     "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "
     "\"c\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or "
     "container \"c\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or "
     "container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or "
     "\"Localhost\")"},
    {"restricted",
     "{spec: {securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}, "
     "containers: [{name: c, image: i, securityContext: {allowPrivilegeEscalation: false, "
     "capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}}}], volumes: [{name: e, emptyDir: "
     "{}}, {name: s, secret: {secretName: x}}, {name: m, configMap: {name: x}}, {name: d, "
     "downwardAPI: {items: [{path: l, fieldRef: {fieldPath: metadata.labels}}]}}]}}",
     NULL},
    {"restricted",
     "{spec: {securityContext: {runAsNonRoot: true, runAsUser: 0, seccompProfile: {type: "
     "RuntimeDefault}}, containers: [{name: c, image: i, securityContext: "
     "{allowPrivilegeEscalation: false, runAsNonRoot: false, capabilities: {drop: [ALL], add: "
     "[SYS_TIME]}}}], volumes: [{name: root, hostPath: {path: /}}]}}",
     "unrestricted capabilities (container \"c\" must not include \"SYS_TIME\" in "
     "securityContext.capabilities.add), restricted volume types (volume \"root\" uses "
     "restricted volume type \"hostPath\"), runAsNonRoot != true (container \"c\" must not set "
     "securityContext.runAsNonRoot=false), runAsUser=0 (pod must not set runAsUser=0)"},
    {"restricted",
     "{spec: {hostUsers: false, securityContext: {seccompProfile: {type: RuntimeDefault}}, "
     "containers: [{name: c, image: i, securityContext: {allowPrivilegeEscalation: false, "
     "runAsUser: 0, capabilities: {drop: [ALL]}}}]}}",
     NULL},
    {"restricted:v1.21", "{spec: {containers: [{name: c, image: i}]}}",
     "allowPrivilegeEscalation != false (container \"c\" must set "
     "securityContext.allowPrivilegeEscalation=false), runAsNonRoot != true (pod or container "
     "\"c\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"c\" "
     "must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"},
    {"restricted:v1.7",
     "{spec: {securityContext: {runAsNonRoot: true}, containers: [{name: c, image: i, "
     "securityContext: {capabilities: {add: [SYS_ADMIN]}}}]}}",
     "non-default capabilities (container \"c\" must not include \"SYS_ADMIN\" in "
     "securityContext.capabilities.add)"},
};

/*
 * Kubernetes' own fixtures (policy/check_*_test.go): the pod, and the
 * reason (detail) it must contain at lv among the other checks' results.
 */
static const struct {
    const char *lv, *pod, *want;
} fixtures[] = {
    {"baseline",
     "{spec: {securityContext: {seLinuxOptions: {type: foo, user: bar, role: baz}}, containers: "
     "[{name: a, securityContext: {seLinuxOptions: {type: container_t}}}, {name: b, "
     "securityContext: {seLinuxOptions: {type: container_init_t}}}, {name: c, securityContext: "
     "{seLinuxOptions: {type: container_kvm_t}}}, {name: d, securityContext: {seLinuxOptions: "
     "{type: container_engine_t}}}, {name: e, securityContext: {seLinuxOptions: {type: bar}}}, "
     "{name: f, securityContext: {seLinuxOptions: {user: bar}}}, {name: g, securityContext: "
     "{seLinuxOptions: {role: baz}}}]}}",
     "seLinuxOptions (pod and containers \"e\", \"f\", \"g\" set forbidden "
     "securityContext.seLinuxOptions: types \"bar\", \"foo\"; user may not be set; role may not "
     "be set)"},
    {"baseline",
     "{spec: {containers: [{name: a, ports: [{hostPort: 0}]}, {name: b, ports: [{hostPort: 0}, "
     "{hostPort: 10}, {hostPort: 20}]}, {name: c, ports: [{hostPort: 0}, {hostPort: 10}, "
     "{hostPort: 30}]}]}}",
     "hostPort (containers \"b\", \"c\" use hostPorts 10, 20, 30)"},
    {"restricted",
     "{spec: {containers: [{name: a, securityContext: {capabilities: {add: [FOO, BAR]}}}, {name: "
     "b, securityContext: {capabilities: {add: [BAR, BAZ]}}}, {name: c, securityContext: "
     "{capabilities: {add: [NET_BIND_SERVICE, CHOWN], drop: [ALL, FOO]}}}]}}",
     "unrestricted capabilities (containers \"a\", \"b\" must set "
     "securityContext.capabilities.drop=[\"ALL\"]; containers \"a\", \"b\", \"c\" must not "
     "include \"BAR\", \"BAZ\", \"CHOWN\", \"FOO\" in securityContext.capabilities.add)"},
    {"baseline",
     "{metadata: {annotations: {container.apparmor.security.beta.kubernetes.io/: bogus, "
     "container.apparmor.security.beta.kubernetes.io/a: '', "
     "container.apparmor.security.beta.kubernetes.io/b: runtime/default, "
     "container.apparmor.security.beta.kubernetes.io/c: localhost/, "
     "container.apparmor.security.beta.kubernetes.io/d: localhost/foo, "
     "container.apparmor.security.beta.kubernetes.io/e: unconfined, "
     "container.apparmor.security.beta.kubernetes.io/f: unknown}}, spec: {containers: [{name: "
     "a}]}}",
     "forbidden AppArmor profiles (annotations must not set AppArmor profile type to "
     "\"container.apparmor.security.beta.kubernetes.io/=\"bogus\"\", "
     "\"container.apparmor.security.beta.kubernetes.io/e=\"unconfined\"\", "
     "\"container.apparmor.security.beta.kubernetes.io/f=\"unknown\"\")"},
};

static void test_fixtures(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(fixtures); i++) {
        Coracle__V1__Pod *p = parse_pod(fixtures[i].pod);
        struct psa_lv lv = lv_of(fixtures[i].lv);
        char *got = p ? psa_evaluate(&lv, p->metadata, p->spec, NULL) : NULL;
        ok(got && strstr(got, fixtures[i].want), "fixture %zu: %s", i, fixtures[i].want);
        if (!got || !strstr(got, fixtures[i].want))
            diag("got: %s", got ? got : "(allowed)");
        free(got);
        if (p)
            obj_free(&p->base);
    }
}

static void test_checks(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        Coracle__V1__Pod *p = parse_pod(cases[i].pod);
        if (!p) {
            ok(0, "case %zu parses", i);
            continue;
        }
        struct psa_lv lv = lv_of(cases[i].lv);
        char *got = psa_evaluate(&lv, p->metadata, p->spec, NULL);
        if (cases[i].want)
            is_str(got, cases[i].want, cases[i].lv);
        else
            ok(!got, "%s: allowed%s%s", cases[i].lv, got ? ": " : "", got ? got : "");
        free(got);
        obj_free(&p->base);
    }
}

static void test_reasons(void)
{
    Coracle__V1__Pod *p = parse_pod("{spec: {hostPID: true, containers: [{name: c, image: i}], "
                                    "volumes: [{name: root, hostPath: {path: /}}]}}");
    struct psa_lv lv = lv_of("baseline");
    char *reasons = NULL, *d = psa_evaluate(&lv, p->metadata, p->spec, &reasons);
    is_str(reasons, "host namespaces, hostPath volumes", "reasons alone");
    free(reasons);
    free(d);
    obj_free(&p->base);
}

static void test_versions(void)
{
    int m = -1;
    ok(psa_parse_version("latest", &m) == 0 && m == PSA_LATEST, "latest");
    ok(psa_parse_version("v1.30", &m) == 0 && m == 30, "v1.30");
    ok(psa_parse_version("v1.0", &m) == 0 && m == 0, "v1.0");
    ok(psa_parse_version("v1.05", &m) < 0, "v1.05 refused");
    ok(psa_parse_version("v2.1", &m) < 0, "v2.1 refused");
    ok(psa_parse_version("1.30", &m) < 0, "1.30 refused");
    char b[PSA_LV_LEN];
    struct psa_lv lv = {PSA_RESTRICTED, 25};
    is_str(psa_lv_string(&lv, b), "restricted:v1.25", "lv string");
    struct psa_policy p;
    char *err = NULL;
    ok(psa_parse_defaults("enforce=baseline,warn=restricted:v1.30", &p, &err) == 0 &&
           p.enforce.level == PSA_BASELINE && p.warn.level == PSA_RESTRICTED &&
           p.warn.minor == 30 && p.audit.level == PSA_PRIVILEGED,
       "defaults by mode");
    ok(psa_parse_defaults("strict", &p, &err) < 0 && err, "bad default refused");
    free(err);
}

/* A namespace's labels as a Namespace message's metadata. */
static ProtobufCMessage *ns(const char *yaml)
{
    char *err = NULL;
    ProtobufCMessage *m =
        kobj_parse_msg("ns.yaml", yaml, strlen(yaml), &coracle__v1__namespace__descriptor, &err);
    free(err);
    return m;
}

static void test_labels(void)
{
    struct psa_lv priv = {PSA_PRIVILEGED, PSA_LATEST};
    struct psa_policy def = {priv, priv, priv}, p;
    char *errs = NULL;
    ProtobufCMessage *m = ns("{metadata: {name: a, labels: {pod-security.kubernetes.io/enforce: "
                             "baseline, pod-security.kubernetes.io/enforce-version: v1.29}}}");
    const Coracle__V1__ObjectMeta *meta = kind_meta(m);
    ok(psa_policy_of(meta->labels, meta->n_labels, &def, &p, &errs) == 0 && !errs, "valid labels");
    ok(p.enforce.level == PSA_BASELINE && p.enforce.minor == 29 && p.warn.level == PSA_BASELINE &&
           p.warn.minor == 29 && p.audit.level == PSA_PRIVILEGED,
       "warn follows a stricter enforce");
    obj_free(m);
    m = ns("{metadata: {name: a, labels: {pod-security.kubernetes.io/enforce: strict, "
           "pod-security.kubernetes.io/warn-version: v9}}}");
    meta = kind_meta(m);
    ok(psa_policy_of(meta->labels, meta->n_labels, &def, &p, &errs) == 2, "two bad labels");
    is_str(errs,
           "metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": must "
           "be one of privileged, baseline, restricted, "
           "metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: \"v9\": "
           "must be \"latest\" or \"v1.x\"",
           "their errors");
    ok(p.enforce.level == PSA_RESTRICTED, "an invalid enforce level is restricted");
    free(errs);
    obj_free(m);
}

/* A Namespace's create: its labels judged, an exempt one warned about (no store needed). */
static void test_namespace_create(void)
{
    static const char *const exempt[] = {"kube-system", NULL};
    struct psa_lv base = {PSA_BASELINE, PSA_LATEST};
    struct psa_config cfg = {.defaults = {base, base, base}, .exempt_namespaces = exempt};
    psa_t *p = psa_new(NULL, &cfg);
    char *msg = NULL, **warn = NULL;
    size_t nw = 0;
    struct psa_lv check;
    ProtobufCMessage *m =
        ns("{metadata: {name: kube-system, labels: {pod-security.kubernetes.io/enforce: "
           "restricted, pod-security.kubernetes.io/audit-version: v1.30}}}");
    ok(psa_namespace(p, m, true, &msg, &warn, &nw, &check) == 0 && nw == 1, "exempt: admitted");
    if (nw)
        is_str(warn[0],
               "namespace \"kube-system\" is exempt from Pod Security, and the policy "
               "(enforce=restricted:latest, audit=baseline:v1.30) will be ignored",
               "exempt namespace warning");
    for (size_t i = 0; i < nw; i++)
        free(warn[i]);
    free(warn);
    obj_free(m);
    m = ns("{metadata: {name: a, labels: {pod-security.kubernetes.io/enforce: strict, "
           "pod-security.kubernetes.io/audit: loose}}}");
    ok(psa_namespace(p, m, true, &msg, &warn, &nw, &check) < 0, "invalid labels refused");
    is_str(msg,
           "Namespace \"a\" is invalid: [metadata.labels[pod-security.kubernetes.io/enforce]: "
           "Invalid value: \"strict\": must be one of privileged, baseline, restricted, "
           "metadata.labels[pod-security.kubernetes.io/audit]: Invalid value: \"loose\": must be "
           "one of privileged, baseline, restricted]",
           "Kubernetes' Invalid text, several errors");
    free(msg);
    obj_free(m);
    psa_free(p);
}

static void test_admit(void)
{
    struct psa_req r = {.pol = {{PSA_BASELINE, PSA_LATEST},
                                {PSA_RESTRICTED, PSA_LATEST},
                                {PSA_RESTRICTED, PSA_LATEST}}};
    Coracle__V1__Pod *p = parse_pod("{metadata: {name: x}, spec: {containers: [{name: c, image: "
                                    "i}], volumes: [{name: root, hostPath: {path: /}}]}}");
    char *msg = NULL, **warn = NULL, *audit = NULL;
    size_t nw = 0;
    ok(psa_admit(&r, &kind_pod, NULL, &p->base, &msg, &warn, &nw, &audit) < 0, "enforced");
    is_str(msg,
           "pods \"x\" is forbidden: violates PodSecurity \"baseline:latest\": hostPath volumes "
           "(volume \"root\")",
           "forbidden message");
    is_int(nw, 0, "no warning with a refusal");
    ok(audit && !strncmp(audit, "would violate PodSecurity \"restricted:latest\": ", 47),
       "audit violations");
    free(msg);
    free(audit);
    /* an update that changes no image is not checked */
    Coracle__V1__Pod *old = parse_pod("{metadata: {name: x}, spec: {containers: [{name: c, image: "
                                      "i}], volumes: [{name: root, hostPath: {path: /}}]}}");
    msg = NULL;
    ok(psa_admit(&r, &kind_pod, &old->base, &p->base, &msg, &warn, &nw, &audit) == 0 && !msg,
       "insignificant update admitted");
    free(audit);
    obj_free(&old->base);
    obj_free(&p->base);
    /* warn only */
    r.pol.enforce.level = PSA_PRIVILEGED;
    r.pol.audit.level = PSA_PRIVILEGED;
    p = parse_pod(
        "{metadata: {name: x}, spec: {hostPID: true, containers: [{name: c, image: i}]}}");
    ok(psa_admit(&r, &kind_pod, NULL, &p->base, &msg, &warn, &nw, &audit) == 0, "warn admits");
    is_int(nw, 1, "one warning");
    if (nw)
        is_str(warn[0],
               "would violate PodSecurity \"restricted:latest\": host namespaces (hostPID=true), "
               "allowPrivilegeEscalation != false (container \"c\" must set "
               "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities "
               "(container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), "
               "runAsNonRoot != true (pod or container \"c\" must set "
               "securityContext.runAsNonRoot=true), seccompProfile (pod or container \"c\" must "
               "set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")",
               "warning text");
    for (size_t i = 0; i < nw; i++)
        free(warn[i]);
    free(warn);
    obj_free(&p->base);
    /* a runtime class exemption */
    static const char *const rc[] = {"kata", NULL};
    r.pol.enforce.level = PSA_BASELINE;
    r.exempt_runtime_classes = rc;
    p = parse_pod("{metadata: {name: x}, spec: {runtimeClassName: kata, hostPID: true, "
                  "containers: [{name: c, image: i}]}}");
    warn = NULL;
    nw = 0;
    ok(psa_admit(&r, &kind_pod, NULL, &p->base, &msg, &warn, &nw, &audit) == 0 && !nw,
       "exempt runtime class");
    obj_free(&p->base);
}

/* --admission-control-config-file: Kubernetes' AdmissionConfiguration. */
static void test_file(void)
{
    static const char good[] = "apiVersion: apiserver.config.k8s.io/v1\n"
                               "kind: AdmissionConfiguration\n"
                               "plugins:\n"
                               "- name: EventRateLimit\n"
                               "  path: eventconfig.yaml\n"
                               "- name: PodSecurity\n"
                               "  configuration:\n"
                               "    apiVersion: pod-security.admission.config.k8s.io/v1\n"
                               "    kind: PodSecurityConfiguration\n"
                               "    defaults:\n"
                               "      enforce: baseline\n"
                               "      enforce-version: latest\n"
                               "      audit: restricted\n"
                               "      warn: restricted\n"
                               "      warn-version: v1.30\n"
                               "    exemptions:\n"
                               "      usernames: [ci]\n"
                               "      runtimeClasses: []\n"
                               "      namespaces: [kube-system, ops]\n";
    struct psa_file f;
    char *err = NULL;
    ok(psa_file_parse("a.yaml", good, strlen(good), &f, &err) == 0 && f.found,
       "AdmissionConfiguration read (%s)", err ? err : "ok");
    ok(f.defaults.enforce.level == PSA_BASELINE && f.defaults.audit.level == PSA_RESTRICTED &&
           f.defaults.warn.level == PSA_RESTRICTED && f.defaults.warn.minor == 30 &&
           f.defaults.enforce.minor == PSA_LATEST,
       "its defaults");
    ok(f.exempt_users && !strcmp(f.exempt_users[0], "ci") && !f.exempt_users[1] &&
           f.exempt_namespaces && !strcmp(f.exempt_namespaces[1], "ops") &&
           f.exempt_runtime_classes && !f.exempt_runtime_classes[0],
       "its exemptions");
    psa_file_free(&f);
    static const struct {
        const char *text, *err;
    } bad[] = {
        {"apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- "
         "name: PodSecurity\n  configuration:\n    defaults: {enforce: strict}\n",
         "a.yaml:6: plugins[0].configuration.defaults.enforce: Invalid value: \"strict\": must be "
         "one of privileged, baseline, restricted"},
        {"kind: AdmissionConfiguration\nplugins:\n- name: PodSecurity\n  configuration:\n    "
         "exemptions: {users: [x]}\n",
         "a.yaml:5: plugins[0].configuration.exemptions.users: unknown field"},
        {"kind: PodSecurityConfiguration\n",
         "a.yaml:1: kind: want AdmissionConfiguration, not \"PodSecurityConfiguration\""},
        {"plugins:\n- name: PodSecurity\n  configuration:\n    defaults: "
         "{warn-version: '1.30'}\n",
         "a.yaml:4: plugins[0].configuration.defaults.warn-version: Invalid value: \"1.30\": must "
         "be \"latest\" or \"v1.x\""},
        {"plugins: [{name: PodSecurity, configuration: {}}, {name: PodSecurity, path: x}]\n",
         "a.yaml:1: plugins[1]: PodSecurity configured twice"},
        {"a: &x 1\nb: *x\n", "a.yaml:1: a: unknown field"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        err = NULL;
        ok(psa_file_parse("a.yaml", bad[i].text, strlen(bad[i].text), &f, &err) < 0,
           "bad file %zu refused", i);
        is_str(err, bad[i].err, "its message");
        free(err);
    }
}

int main(void)
{
    test_checks();
    test_fixtures();
    test_reasons();
    test_versions();
    test_labels();
    test_admit();
    test_namespace_create();
    test_file();
    return done_testing();
}
