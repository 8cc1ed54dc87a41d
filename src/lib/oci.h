/*
 * oci: pulls images from registries that speak the OCI distribution API
 * (Docker Hub, distribution's registry, mirrors) into the local image
 * store (image.h). Used by coracle-kubelet (on a worker thread) and by
 * `coraclectl image pull`.
 *
 * A pull resolves the reference to a manifest (an OCI index or Docker
 * manifest list picks the node's platform, linux/<GOARCH>), fetches the
 * config, lays the image out as an OCI image layout under the store's
 * tmp/ and has img_import() unpack it while a download thread fetches the
 * layers into it (every blob's sha256 and size checked as it streams, the
 * import checking what it read again): the image appears by one rename()
 * or not at all. An image whose config (its id) is already in the store
 * only gets the name.
 *
 * Blobs in flight live in <store>/tmp/pulls/sha256/<hex>.partial; a
 * transfer cut part way continues with a Range request from the bytes on
 * disk (their hash recomputed), also after a restart. A blob complete and
 * verified is renamed to the store's blobs/sha256/<hex> and kept there
 * while an image lists it (image.h): another image on the same layers
 * fetches only the rest. Two pulls of one blob (threads or processes)
 * serialise on an flock of the partial file.
 *
 * Endpoints: hosts files in the spirit of containerd's hosts.toml, one
 * directory per registry (oci_hosts_load()); mirrors tried in order, then
 * the upstream. HTTPS with the system's CAs or the CA a hosts file names;
 * plain HTTP only for loopback registries. Authentication: anonymous,
 * Bearer tokens through the WWW-Authenticate realm, Basic; credentials
 * from docker config.json documents (a dockerconfigjson Secret, a node
 * file). Credentials never appear in messages or logs.
 *
 * Errors: oci_pull() returns 0 or -1 with r->code (why, as a registry
 * says it) and r->msg (containerd's words, no secrets).
 */
#ifndef CORACLE_OCI_H
#define CORACLE_OCI_H

#include "image.h"
#include "json.h"

#include <stddef.h>
#include <stdint.h>

/* Why a pull failed. */
enum oci_code {
    OCI_OK = 0,
    OCI_NOT_FOUND,    /* the repository, tag or digest is not there */
    OCI_UNAUTHORIZED, /* 401/403: no or wrong credentials */
    OCI_DIGEST,       /* a blob or manifest does not match its digest or size */
    OCI_PLATFORM,     /* the index has no manifest for this node's platform */
    OCI_NETWORK,      /* no endpoint could be reached */
    OCI_INVALID,      /* a bad reference, manifest or hosts file */
    OCI_STORE,        /* the image store refused it (disk full, a corrupt layer) */
};
/* "not found", "unauthorized", ... */
const char *oci_code_str(enum oci_code c);

/* ------------------------------------------------------------ parsers (oci_parse.c, pure) */

/* One challenge of a WWW-Authenticate header. Strings malloc'd; oci_challenge_free. */
struct oci_challenge {
    char *scheme; /* "bearer" or "basic", lower case */
    char *realm, *service, *scope, *error;
};
/* Parses a WWW-Authenticate header value (RFC 7235: scheme, then auth-params, quoted strings
 * with backslash escapes); the first challenge. 0, or -1 if it cannot be read. */
int oci_challenge_parse(const char *hdr, struct oci_challenge *out);
void oci_challenge_free(struct oci_challenge *c);

/* A content descriptor (borrowed from the JSON tree it was read from). */
struct oci_desc {
    const char *media_type;
    const char *digest; /* "sha256:<64 hex>" checked */
    int64_t size;
};
/* A manifest or index as read: kind 'i' (index / manifest list) or 'm' (image manifest). */
struct oci_manifest {
    int kind;
    json_t *root;
    struct oci_desc config; /* 'm' */
    struct oci_desc *layers;
    size_t n_layers;
};
/* Parses a manifest body. media_type: the response's Content-Type (may be NULL or generic:
 * the body's mediaType, else its shape decides). Schema 1 manifests are refused. 0, or -1 with
 * *err (malloc'd). Release with oci_manifest_free. */
int oci_manifest_parse(const char *body, size_t len, const char *media_type,
                       struct oci_manifest *out, char **err);
void oci_manifest_free(struct oci_manifest *m);
/* The index entry for os/arch (variant ignored but for arm: "v7" default). NULL if none;
 * *d borrowed from idx. */
int oci_index_pick(const struct oci_manifest *idx, const char *os, const char *arch,
                   struct oci_desc *d);
/* This node's architecture as Go names it (amd64, arm64, arm, 386, ...). Static. */
const char *oci_host_arch(void);

/* Credentials for host from a docker config.json document ("auths": {"<server>": {"auth":
 * base64(user:pass)} or {"username","password"}}; keys may be URLs; docker.io matches
 * index.docker.io and registry-1.docker.io). 0 with *user and *pass malloc'd, 1 if the document
 * has none for host, -1 if it cannot be read. */
int oci_creds_find(const char *config_json, size_t len, const char *host, char **user, char **pass);

/* ------------------------------------------------------------ hosts (oci_hosts.c) */
/* An endpoint of a registry: a mirror or the upstream. */
struct oci_host {
    char *url;  /* "https://h:p" (scheme, host, port; no path) */
    char *path; /* "/v2" unless override_path */
    char *ca;   /* a CA file, or NULL: the system's */
    int skip_verify;
    int resolve;    /* may resolve tags (capabilities has "resolve") */
    int loopback;   /* plain HTTP allowed; HTTPS tried first when no scheme was given */
    int https_only; /* the scheme was given as https */
};
/* Where the hosts files are unless configured otherwise. */
#define OCI_HOSTS_DIR SYSCONFDIR "/coracle/certs.d"

struct oci_hosts {
    struct oci_host *v; /* mirrors in order, then the upstream */
    size_t n;
};
/* The endpoints for registry host (as in a normalised name: "docker.io", "h:5000"): the file
 * <dir>/<host>/hosts.toml, else <dir>/_default/hosts.toml, else only the upstream. dir may be
 * NULL. Understands containerd's keys: server, ca, skip_verify, capabilities, override_path,
 * [host."URL"] tables. 0, or -1 with *err (malloc'd) for a file that cannot be read. */
int oci_hosts_load(const char *dir, const char *host, struct oci_hosts *out, char **err);
/* Parses one hosts.toml text (exposed for the fuzzer and tests). */
int oci_hosts_parse(const char *text, size_t len, const char *host, struct oci_hosts *out,
                    char **err);
void oci_hosts_free(struct oci_hosts *h);

/* ------------------------------------------------------------ pull (oci_pull.c) */
enum oci_layer_state {
    OCI_L_WAITING,
    OCI_L_FETCHING, /* done/total bytes */
    OCI_L_RESUMING, /* a Range request from done */
    OCI_L_DONE,     /* verified */
    OCI_L_EXISTS,   /* already on disk */
    OCI_L_UNPACKING,
    OCI_L_COMPLETE, /* the image is in the store */
};
struct oci_progress {
    enum oci_layer_state state;
    int layer, layers; /* 0-based; layers 0 until the manifest is read */
    const char *digest;
    uint64_t done, total;
};
typedef void (*oci_progress_fn)(const struct oci_progress *p, void *arg);

struct oci_pull_opts {
    const char *hosts_dir;    /* hosts files (NULL: none, upstream only) */
    const char *const *auths; /* docker config.json documents, tried in order (borrowed) */
    const size_t *auth_lens;  /* their lengths */
    size_t n_auths;
    const char *os, *arch;    /* NULL: linux, oci_host_arch() */
    oci_progress_fn progress; /* may be NULL; called on the pulling thread or the pull's
                               * download thread, never two at once */
    void *arg;
    long timeout_s;  /* a transfer stalled this long fails (0: 60) */
    int max_resumes; /* Range retries per blob (0: 8) */
};

struct oci_result {
    enum oci_code code;
    char *msg;        /* malloc'd on failure */
    char id[72];      /* the image id */
    char digest[72];  /* the manifest's digest (repo digest) */
    uint64_t size;    /* config + layers as the manifest says */
    uint64_t fetched; /* bytes received from registries (blobs and manifests) */
    int resumed;      /* Range requests made */
    int layers_fetched, layers_present;
};
/* Pulls ref (any form img_ref_normalize accepts) into store s. opts may be NULL. Blocking;
 * one store handle per thread. 0, or -1 with r->code and r->msg; release r with
 * oci_result_free. */
int oci_pull(img_store_t *s, const char *ref, const struct oci_pull_opts *opts,
             struct oci_result *r);
void oci_result_free(struct oci_result *r);
/* libcurl's global init; call once before threads start (oci_pull calls it too). */
void oci_global_init(void);

#endif
