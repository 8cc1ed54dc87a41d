/*
 * deployment_int.h: what deployment.c (the Deployment controller's
 * handlers and sync) shares with deployment_util.c, the arithmetic of
 * Kubernetes' pkg/controller/deployment/util: the pod-template-hash, the
 * surge and unavailability fenceposts, the ReplicaSets' annotations, the
 * orderings and proportions, the status conditions. Everything here is
 * pure (no I/O, no loop) so the unit test reaches it directly.
 */
#ifndef CORACLE_DEPLOYMENT_INT_H
#define CORACLE_DEPLOYMENT_INT_H

#include "coracle.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEP_HASH_LABEL "pod-template-hash"
#define DEP_REVISION "deployment.kubernetes.io/revision"
#define DEP_REVISION_HISTORY "deployment.kubernetes.io/revision-history"
#define DEP_DESIRED "deployment.kubernetes.io/desired-replicas"
#define DEP_MAX "deployment.kubernetes.io/max-replicas"
/* kube-controller-manager's --deployment-controller-... default: the revision-history length */
#define DEP_HISTORY_CHARS 2000

/* ------------------------------------------------------------- spec */

/* spec.replicas, 1 if unset (the API default). */
int32_t dep_replicas(const Coracle__V1__Deployment *d);
/* Whether the strategy is RollingUpdate (also when unset: the default). */
bool dep_rolling(const Coracle__V1__Deployment *d);
/* spec.progressDeadlineSeconds (600 if unset), or -1 for none (MaxInt32). */
int32_t dep_progress_deadline(const Coracle__V1__Deployment *d);
/* spec.revisionHistoryLimit, 10 if unset. */
int32_t dep_history_limit(const Coracle__V1__Deployment *d);
int32_t dep_min_ready(const Coracle__V1__Deployment *d);
/* A ReplicaSet's spec.replicas (1 if unset). */
int32_t dep_rs_replicas(const Coracle__V1__ReplicaSet *rs);

/*
 * Kubernetes' GetScaledValueFromIntOrPercent: an int as is, "N%" of total
 * rounded up (round_up) or down. *out 0 and -1 for a malformed value.
 */
int dep_scaled(const Coracle__V1__IntOrString *v, int32_t total, bool round_up, int32_t *out);
/* MaxSurge and MaxUnavailable of d (ResolveFenceposts: never both 0; 0 unless rolling). */
int32_t dep_max_surge(const Coracle__V1__Deployment *d);
int32_t dep_max_unavailable(const Coracle__V1__Deployment *d);

/* ------------------------------------------------------ template hash */

/*
 * The pod-template-hash of template t with collision count cc (NULL: none),
 * written to out (at most 11 characters and the NUL). See the comment in
 * deployment_util.c on why it is not Kubernetes' value.
 */
void dep_template_hash(const Coracle__V1__PodTemplateSpec *t, const int32_t *cc, char out[16]);
/* Kubernetes' SafeEncodeString: each byte of s mapped into a vowel-free alphabet, in place. */
void dep_safe_encode(char *s);
/* Whether a and b are the same template once their pod-template-hash labels are ignored
 * (maps compared as maps, whatever their order). */
bool dep_template_equal(const Coracle__V1__PodTemplateSpec *a,
                        const Coracle__V1__PodTemplateSpec *b);

/* ------------------------------------------------- maps in messages */

/*
 * Map fields (labels, annotations, matchLabels) are arrays of messages of
 * one layout (base, key, value). These read and write them in a message
 * made by pb_clone or built with malloc'd parts (freed by
 * protobuf_c_message_free_unpacked): set copies key and value.
 */
const char *dep_map_get(void *const *v, size_t n, const char *key);
/* Returns true if it changed something. d: the entry's descriptor. */
bool dep_map_set(void ***v, size_t *n, const ProtobufCMessageDescriptor *d, const char *key,
                 const char *value);
void dep_map_del(void ***v, size_t *n, const char *key);

const char *dep_ann(const Coracle__V1__ObjectMeta *m, const char *key);
bool dep_ann_set(Coracle__V1__ObjectMeta *m, const char *key, const char *value);
/* An annotation as an integer: true and *out if present and a number. */
bool dep_ann_int(const Coracle__V1__ObjectMeta *m, const char *key, int64_t *out);

/* ------------------------------------------ ReplicaSet annotations */

/* The revision annotation of rs as a number (0 if absent or malformed). */
int64_t dep_revision(const Coracle__V1__ReplicaSet *rs);
/* Sets desired-replicas and max-replicas; true if either changed (SetReplicasAnnotations). */
bool dep_set_replicas_ann(Coracle__V1__ReplicaSet *rs, int32_t desired, int32_t max);
/*
 * SetNewReplicaSetAnnotations: the deployment's own annotations (but the
 * ones the controller writes and kubectl's last-applied) copied, the
 * revision raised to new_revision keeping the former ones in
 * revision-history, and for a ReplicaSet about to be made (!exists) the
 * replicas annotations. True if something changed.
 */
bool dep_set_new_rs_ann(const Coracle__V1__Deployment *d, Coracle__V1__ReplicaSet *rs,
                        const char *new_revision, bool exists);
/* Whether key is one the controller never copies between Deployment and ReplicaSet. */
bool dep_ann_skipped(const char *key);

/* ------------------------------------------------------ ReplicaSets */

/* Orderings of Kubernetes' controller utilities, as qsort comparators over ReplicaSet pointers. */
int dep_by_creation(const void *a, const void *b);   /* oldest first, then by name */
int dep_by_size_older(const void *a, const void *b); /* largest first, then oldest */
int dep_by_size_newer(const void *a, const void *b); /* largest first, then newest */
int dep_by_revision(const void *a, const void *b);   /* lowest revision first, then oldest */

/*
 * GetProportion: how many of to_add (the whole change, added so far
 * already) rs takes when the deployment is scaled proportionally.
 */
int32_t dep_proportion(const Coracle__V1__ReplicaSet *rs, const Coracle__V1__Deployment *d,
                       int32_t to_add, int32_t added);

/* ------------------------------------------------------- conditions */

Coracle__V1__DeploymentCondition *dep_cond_get(const Coracle__V1__DeploymentStatus *st,
                                               const char *type);
/*
 * SetDeploymentCondition with a new condition (times now_s): nothing if
 * one of that type has the same status and reason; its transition time
 * kept if the status stays. st is malloc'd (free_unpacked).
 */
void dep_cond_set(Coracle__V1__DeploymentStatus *st, const char *type, const char *status,
                  const char *reason, const char *message, int64_t now_s);
/* As dep_cond_set, but a condition of the same type is replaced whatever its reason. */
void dep_cond_replace(Coracle__V1__DeploymentStatus *st, const char *type, const char *status,
                      const char *reason, const char *message, int64_t now_s);
void dep_cond_del(Coracle__V1__DeploymentStatus *st, const char *type);

/* DeploymentComplete: every replica updated and available, the generation observed. */
bool dep_complete(const Coracle__V1__Deployment *d, const Coracle__V1__DeploymentStatus *st);
/* DeploymentProgressing: st shows progress against d's current status. */
bool dep_progressing(const Coracle__V1__Deployment *d, const Coracle__V1__DeploymentStatus *st);
/* DeploymentTimedOut at now_s. */
bool dep_timed_out(const Coracle__V1__Deployment *d, const Coracle__V1__DeploymentStatus *st,
                   int64_t now_s);

#endif
