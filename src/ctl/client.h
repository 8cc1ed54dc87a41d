/*
 * client: coraclectl's side of the connection. Picks the server (--server,
 * CORACLE_SERVER, `server =` in the config file, else 127.0.0.1:6443) and
 * the credentials (--certificate-authority, --client-certificate,
 * --client-key, --token, else the same keys in the config file; the token
 * also from CORACLE_TOKEN), as kubectl does with its kubeconfig. The config
 * file is --kubeconfig, else $CORACLE_CONFIG, else ~/.config/coracle/config;
 * relative paths in it are relative to its directory. A CA, or an
 * https:// server, means TLS (gcl_opts_setup). Makes unary calls per kind,
 * runs watches that resume across reconnects, and prints gRPC and TLS
 * errors the way kubectl prints API and connection errors.
 */
#ifndef CORACLE_CTL_CLIENT_H
#define CORACLE_CTL_CLIENT_H

#include <event2/event.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "gcl.h"
#include "kinds.h"

#define CTL_DEFAULT_SERVER "127.0.0.1:6443"

struct ctl_client {
    struct event_base *base;
    gcl_t *g;
    char *addr;
    char *token;
    struct ssl_ctx_st *tls; /* NULL: cleartext (owned; for get --raw) */
    char *ca_file;          /* the CA bundle used (flag or config), or NULL */
};

/* Opens (lazily: nothing is sent yet). Prints an error and returns -1 on failure. */
int ctl_client_open(struct ctl_client *c);
void ctl_client_close(struct ctl_client *c);
/* The address that would be used, malloc'd (for `version`). */
char *ctl_server_addr(void);

/*
 * Unary /<kind service>/<method>. On GRPC_OK *resp is the response (free
 * with protobuf_c_message_free_unpacked(resp, NULL)); else *errmsg (malloc'd).
 */
int ctl_call(struct ctl_client *c, const struct kind *k, const char *method,
             const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
             ProtobufCMessage **resp, char **errmsg);

/*
 * List through pages of `limit` items (kubectl's chunking, 500) following
 * the continue token; *resp holds every item (ListMeta of the first page).
 * req is not modified. Same returns as ctl_call.
 */
int ctl_list_all(struct ctl_client *c, const struct kind *k, const Coracle__V1__ListRequest *req,
                 ProtobufCMessage **resp, char **errmsg);

/*
 * The names of every object of kind k in the current namespace matching the
 * label selector lsel (may be NULL), as `delete --all` and `describe TYPE`
 * take them. Returns 0 with *list (free with protobuf_c_message_free_unpacked)
 * and *names (malloc'd, pointing into *list; free it first) holding *n names,
 * printing kubectl's "No resources found" when there are none; or -1 after
 * printing the error.
 */
int ctl_list_names(struct ctl_client *c, const struct kind *k, const char *lsel,
                   ProtobufCMessage **list, const char ***names, size_t *n);

/*
 * Prints code/message as kubectl does, to stderr: `Error from server
 * (NotFound): pods "x" not found`, `error: You must be logged in to the
 * server (Unauthorized)`, or the connection errors (`The connection to the
 * server ADDR was refused - did you specify the right host or port?`,
 * `Unable to connect to the server: x509: certificate signed by unknown
 * authority`).
 */
void ctl_print_error(const struct ctl_client *c, int code, const char *msg);

/*
 * A blocking TCP connection to addr ("https://h:p", "h:p", "[v6]:p"), each
 * of its addresses in turn, with 3 s send/receive timeouts: fd, or -1 with
 * *err = the last connect's errno, or *err = 0 when addr names no address
 * (then *why, if why is not NULL, is the name lookup's error, or NULL when
 * addr is not of the host:port shape).
 */
int ctl_tcp_connect(const char *addr, int *err, const char **why);
/* "NotFound" etc. for a grpc code. */
const char *ctl_reason(int code);

/*
 * A watch of one kind: lists (unless resource_version is given), then
 * watches from the list's revision, reconnecting with backoff and resuming
 * from the last resourceVersion seen; on OUT_OF_RANGE lists again. Runs the
 * event loop until on_event returns nonzero (stop, status 0) or a fatal
 * error (printed, returns 1).
 */
struct ctl_watch {
    struct ctl_client *c;
    const struct kind *k;
    const char *namespace_; /* NULL: all */
    const char *label_selector, *field_selector;
    /* on_list: the items of a (re)list; may be NULL. Return nonzero to stop. */
    int (*on_list)(struct ctl_watch *w, ProtobufCMessage *list, void *arg);
    /* on_event: one watch event (type "ADDED" etc.). Return nonzero to stop. */
    int (*on_event)(struct ctl_watch *w, const char *type, ProtobufCMessage *obj, void *arg);
    void *arg;
    /* internal */
    char *rv;
    int stop, rc, backoff_ms, listed;
    ProtobufCMessage *list; /* the page being received */
    ProtobufCMessage *acc;  /* the pages so far */
    gcl_call_t *call;
    struct event *timer;
};
/*
 * For logs and exec: arg is "POD" or "pod/POD"; gets the pod and picks the
 * container (want, else the first one, telling stderr when there are
 * several). *pod and *container are malloc'd. Prints errors; returns -1.
 */
int ctl_pod_container(struct ctl_client *c, const char *arg, const char *want, char **pod,
                      char **container);

/* start_rv: NULL to list first; else watch from that revision. Returns the exit code. */
int ctl_watch_run(struct ctl_watch *w, const char *start_rv);

#endif
