/*
 * audit: Kubernetes' audit log. Every request, gRPC or REST, answered by
 * the apiserver is matched against the audit policy (audit.k8s.io/v1
 * Policy, --audit-policy-file: the first rule whose users, userGroups,
 * verbs, resources or nonResourceURLs and namespaces match gives the
 * level; none: level None) and, unless None, written as one JSON line, an
 * audit.k8s.io/v1 Event at stage ResponseComplete (level, auditID,
 * requestURI, verb, user, sourceIPs, userAgent, objectRef, responseStatus,
 * the two timestamps, the authorization decision), to --audit-log-path
 * ("-": stdout). Events carry metadata only, whatever the level: request
 * and response bodies, a Secret's data among them, are never logged.
 *
 * The loop formats the lines into a buffer and hands it, every
 * AUDIT_FLUSH_MS or once it holds AUDIT_FLUSH_BYTES, to a writer thread
 * that owns the file: one write(2) per batch, none on the loop. The file rotates as
 * kube-apiserver's (lumberjack) does: past --audit-log-maxsize megabytes (0: 100) it is renamed
 * NAME-<UTC time>.EXT and a new one opened; backups beyond
 * --audit-log-maxbackup (0: all kept) or older than --audit-log-maxage
 * days (0: no limit) are removed. Loop thread only.
 */
#ifndef CORACLE_AUDIT_H
#define CORACLE_AUDIT_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "h2s.h"

#define AUDIT_FLUSH_MS 200
#define AUDIT_FLUSH_BYTES (256u << 10)

typedef struct audit audit_t;
struct audit_policy;

struct audit_config {
    const char *policy_file; /* --audit-policy-file */
    const char *log_path;    /* --audit-log-path, "-" for stdout */
    int max_age_days;        /* --audit-log-maxage; 0: no limit */
    int max_backups;         /* --audit-log-maxbackup; 0: keep all */
    int max_size_mb;         /* --audit-log-maxsize; 0: 100 */
};

/*
 * Reads the policy and opens the log (appending). *out is NULL (auditing
 * off) unless both the policy file and the log path are given. Returns 0,
 * or -1 with *err (malloc'd). The audit_t is the caller's (audit_free).
 */
int audit_new(struct event_base *base, const struct audit_config *cfg, audit_t **out, char **err);
/* Writes what is buffered, closes the log. NULL: no-op. */
void audit_free(audit_t *a);

/*
 * Parses an audit policy (YAML or JSON; name for messages). Returns the
 * policy (audit_policy_free) or NULL with *err (malloc'd, Kubernetes'
 * validation text or the parser's line:col).
 */
struct audit_policy *audit_policy_parse(const char *name, const char *buf, size_t len, char **err);
void audit_policy_free(struct audit_policy *p);

/* What a request was, in Kubernetes' terms (its RequestInfo). */
struct audit_req {
    const char *verb;        /* "get", "list", "create"...; non-resource: "get", "post"... */
    bool resource;           /* a resource request (else path is a non-resource URL) */
    const char *path;        /* the URL's path */
    const char *api_group;   /* resource requests: "" for core */
    const char *api_version; /* "v1" */
    const char *res, *subresource, *ns, *name; /* NULL or "" when none */
};

enum audit_level { AUDIT_NONE, AUDIT_METADATA, AUDIT_REQUEST, AUDIT_REQUEST_RESPONSE };
/*
 * The level p gives a request by user u (NULL: unauthenticated), and
 * whether the ResponseComplete stage is omitted (*omit).
 */
enum audit_level audit_policy_level(const struct audit_policy *p, const struct auth_user *u,
                                    const struct audit_req *q, bool *omit);

/*
 * Kubernetes' RequestInfo of a REST request: method, path and query into
 * q (its strings point into buf, bn bytes, or into path).
 */
void audit_request_info(const char *method, const char *path, const char *query,
                        struct audit_req *q, char *buf, size_t bn);

/*
 * Logs a REST request answered with HTTP status: its identity is
 * authenticated again from the request (au), its attributes read from its
 * method and path.
 */
void audit_rest(audit_t *a, auth_t *au, h2s_req_t *r, int status);
/*
 * Logs a gRPC call answered with code (message msg, may be NULL): q says
 * what it was (the handler's kind, verb, namespace and name).
 */
void audit_grpc(audit_t *a, auth_t *au, h2s_call_t *c, const struct audit_req *q, int code,
                const char *msg);

#endif
