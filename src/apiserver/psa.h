/*
 * psa: Pod Security admission, Kubernetes' Pod Security Standards
 * (k8s.io/pod-security-admission) checked on pods and on the pod templates
 * of the workload kinds.
 *
 * A namespace's labels pod-security.kubernetes.io/enforce|audit|warn (and
 * their -version) choose a level (privileged, baseline, restricted) and
 * the version of the standard ("latest" or "v1.N": checks added after v1.N
 * do not apply) for each mode, over the cluster's defaults; exemptions by
 * user name, namespace and runtime class skip the checks. Enforce refuses a
 * pod (403 Forbidden, `pods "x" is forbidden: violates PodSecurity
 * "baseline:latest": hostPath volumes (volume "root")`); warn returns
 * warnings to the client (`would violate PodSecurity ...`), for pods and
 * workload templates; audit records the violations (the audit log's
 * pod-security.kubernetes.io/audit-violations annotation; logged here).
 *
 * Two halves: the pure checks and policy parsing (psa_evaluate,
 * psa_policy_of: any thread), and psa_t, the loop's view of the namespaces'
 * policies (a cache filled from read snapshots, dropped on every change of
 * a namespace), which turns a request into a struct psa_req that the
 * store's commit thread evaluates (psa_admit) once the object is decoded.
 */
#ifndef CORACLE_PSA_H
#define CORACLE_PSA_H

#include <limits.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "kinds.h"
#include "store.h"

enum psa_level { PSA_PRIVILEGED, PSA_BASELINE, PSA_RESTRICTED };

/* The version "latest": newer than any v1.N. */
#define PSA_LATEST INT_MAX
/* The newest minor version whose checks differ from the one before it. */
#define PSA_NEWEST 37

/* A level at a version of the standard: v1.<minor>, or PSA_LATEST. */
struct psa_lv {
    enum psa_level level;
    int minor;
};

/* What each mode checks. */
struct psa_policy {
    struct psa_lv enforce, audit, warn;
};

/* The cluster's configuration (the PodSecurityConfiguration of Kubernetes' admission plugin). */
struct psa_config {
    struct psa_policy defaults; /* for namespaces without labels */
    /* exemptions: NULL-terminated lists, or NULL for none (borrowed: outlive the psa_t) */
    const char *const *exempt_users, *const *exempt_namespaces, *const *exempt_runtime_classes;
};

/*
 * --admission-control-config-file: Kubernetes' AdmissionConfiguration, its
 * PodSecurity plugin's PodSecurityConfiguration (inline or by path).
 */
struct psa_file {
    struct psa_policy defaults; /* privileged:latest where the file says nothing */
    /* NULL-terminated, malloc'd (psa_file_free), or NULL */
    char **exempt_users, **exempt_namespaces, **exempt_runtime_classes;
    bool found; /* the file configures the PodSecurity plugin */
};
/*
 * Parses the file at path (psa_file_load) or the text buf of len bytes
 * named name (psa_file_parse, for tests: a PodSecurity plugin's path is
 * refused, no file is opened). Returns 0, or -1 with *err (malloc'd):
 * "FILE:LINE: plugins[0].configuration.defaults.enforce: Invalid value: ...".
 */
int psa_file_load(const char *path, struct psa_file *out, char **err);
int psa_file_parse(const char *name, const char *buf, size_t len, struct psa_file *out, char **err);
void psa_file_free(struct psa_file *f);

/* ---- the standard (pure) ---- */

/* "privileged", "baseline" or "restricted". Returns 0, or -1 (*out untouched). */
int psa_parse_level(const char *s, enum psa_level *out);
/* "latest" or "v1.N". Returns 0, or -1. */
int psa_parse_version(const char *s, int *minor);
/* Kubernetes' "level:version" ("baseline:latest", "restricted:v1.30") into buf. */
#define PSA_LV_LEN 40
const char *psa_lv_string(const struct psa_lv *lv, char buf[PSA_LV_LEN]);

/*
 * The defaults of --pod-security-default: "LEVEL[:VERSION]" (enforce, audit
 * and warn alike), or modes one by one, "enforce=baseline,warn=restricted:v1.30"
 * (the others stay privileged:latest). Returns 0, or -1 with *err (malloc'd).
 */
int psa_parse_defaults(const char *s, struct psa_policy *p, char **err);

/*
 * Kubernetes' PolicyToEvaluate: the namespace's labels over def. An invalid
 * level enforces restricted and fails audit and warn open (privileged); an
 * invalid version means latest. warn follows an explicit enforce level that
 * is stricter when it has no label of its own. Returns how many labels were
 * invalid; with errs, their field errors (malloc'd, joined with ", "):
 * `metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value:
 * "x": must be one of privileged, baseline, restricted`.
 */
int psa_policy_of(Coracle__V1__ObjectMeta__LabelsEntry *const *labels, size_t n,
                  const struct psa_policy *def, struct psa_policy *out, char **errs);

/*
 * Checks a pod (its metadata and spec, or a template's) against lv:
 * NULL if it passes, else (malloc'd) Kubernetes' forbidden detail, each
 * failed check as `reason (detail)` joined with ", " in Kubernetes' order.
 * reasons (optional) gets the reasons alone, joined the same way (malloc'd).
 */
char *psa_evaluate(const struct psa_lv *lv, const Coracle__V1__ObjectMeta *meta,
                   const Coracle__V1__PodSpec *spec, char **reasons);

/* ---- admission ---- */

/* What the commit thread checks an object against: made by psa_request. */
struct psa_req {
    struct psa_policy pol;
    const char *const *exempt_runtime_classes; /* borrowed from the config */
    char *pol_err;                             /* the namespace's labels did not parse (malloc'd) */
};
void psa_req_free(struct psa_req *r);

/*
 * The decision on obj (a Pod or a workload; old: the stored object of an
 * update, else NULL), on any thread. Returns 0 to admit, or -1 with *msg
 * (malloc'd): `pods "x" is forbidden: violates PodSecurity ...` (gRPC
 * PERMISSION_DENIED). Warnings for the client are appended to *warn
 * (*n_warn entries, each malloc'd); *audit (malloc'd, or NULL) is the
 * audit-violations text.
 */
int psa_admit(const struct psa_req *r, const struct kind *k, const ProtobufCMessage *old,
              const ProtobufCMessage *obj, char **msg, char ***warn, size_t *n_warn, char **audit);

/* Kinds whose objects Pod Security looks at: Pod and the workload kinds with pod templates. */
bool psa_kind(const struct kind *k);

typedef struct psa psa_t;

/* cfg is copied (its lists borrowed); reads go to st. Loop thread only from here on. */
psa_t *psa_new(store_t *st, const struct psa_config *cfg);
void psa_free(psa_t *p);
/* Every committed change: a namespace's drops its cached policy. */
void psa_on_change(psa_t *p, const struct store_change *ch);

/*
 * The check a create or update of kind k in ns by user needs: NULL when
 * there is nothing to check (a kind Pod Security ignores, an exempt user
 * or namespace, a fully privileged namespace), else a request (the
 * caller's to free, or to hand to psa_admit).
 */
struct psa_req *psa_request(psa_t *p, const struct kind *k, const char *ns, const char *user);

/*
 * A Namespace create or update (obj: the namespace as it will be stored):
 * invalid labels refuse it (-1, *msg malloc'd: Kubernetes' Invalid text,
 * gRPC INVALID_ARGUMENT); labels on an exempt namespace warn that they are
 * ignored (appended to *warn). Returns 1 when its enforce level tightens:
 * the existing pods are to be checked against *check (psa_check_pods, off
 * the loop); 0 otherwise.
 */
int psa_namespace(psa_t *p, const ProtobufCMessage *obj, bool create, char **msg, char ***warn,
                  size_t *n_warn, struct psa_lv *check);

/*
 * Kubernetes' EvaluatePodsInNamespace: the pods of namespace ns in the
 * snapshot t (at most 3000) against lv, as warnings appended to *warn:
 * `existing pods in namespace "x" violate the new PodSecurity enforce
 * level "baseline:latest"`, then one per distinct violation, `pod (and 2
 * other pods): hostPath volumes`. Touches only its arguments (the read
 * worker runs it); the config's lists are read-only.
 */
void psa_check_pods(const psa_t *p, store_rtxn_t *t, const char *ns, const struct psa_lv *lv,
                    char ***warn, size_t *n_warn);

#endif
