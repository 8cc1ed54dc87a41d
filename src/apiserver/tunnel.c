/*
 * tunnel: relays log and exec sessions to the kubelet of the pod's node
 * over the NodeTunnel.Connect stream that kubelet opened. See tunnel.h.
 *
 * A kubelet's call is a tun_node; each session riding on it is a
 * tun_session with an id unique in this process, and a client behind it
 * (struct tun_client_ops): a gRPC call (Pods/Log, Pods/Exec, here) or a
 * REST stream (rest_connect.c). Frames from the kubelet are matched to
 * sessions by id; a client that goes away cancels its session with an
 * `end` frame; a kubelet that goes away fails its sessions with
 * UNAVAILABLE.
 */
#include "config.h"
#include "tunnel.h"

#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "buf.h"
#include "coracle.pb-c.h"
#include "grpc.h"
#include "kinds.h"
#include "util.h"

/* A client whose unread output passes this is cut off (memory stays bounded). */
#define TUN_CLIENT_QUEUE_MAX (8u << 20)

struct tun_session {
    uint64_t id;
    struct tun_node *node;
    const struct tun_client_ops *ops;
    void *arg;
    struct tun_session *next;
};

struct tun_node {
    char *name;            /* NULL until the kubelet's hello */
    struct auth_user user; /* who opened the tunnel */
    h2s_call_t *call;
    struct tun_hub *hub;
    struct tun_session *sessions;
    struct tun_node *next;
};

struct tun_hub {
    h2s_t *h2s;
    store_t *store;
    auth_t *auth;
    struct tun_node *nodes;
    uint64_t next_id;
};

static void tun_send_frame(struct tun_node *n, const Coracle__V1__TunnelFrame *f)
{
    rbuf_t *b = grpc_frame_msg(&f->base);
    h2s_call_send_framed(n->call, b);
    rbuf_unref(b);
}

static struct tun_node *tun_find_node(struct tun_hub *h, const char *name)
{
    for (struct tun_node *n = h->nodes; n; n = n->next)
        if (n->name && !strcmp(n->name, name))
            return n;
    return NULL;
}

/* Forgets s (its client is told by the caller, or was the one to go). */
static void tun_session_free(struct tun_session *s)
{
    if (s->node) {
        for (struct tun_session **p = &s->node->sessions; *p; p = &(*p)->next) {
            if (*p == s) {
                *p = s->next;
                break;
            }
        }
    }
    free(s);
}

/* Ends the session for its client (code, msg; exit_code of an exec or -1) and forgets it. */
static void tun_session_end(struct tun_session *s, int code, const char *msg, int exit_code)
{
    const struct tun_client_ops *ops = s->ops;
    void *arg = s->arg;
    tun_session_free(s);
    ops->end(arg, code, msg, exit_code);
}

/* Tells the kubelet to stop the session. */
static void tun_send_cancel(struct tun_session *s)
{
    if (!s->node)
        return;
    Coracle__V1__TunnelFrame f = CORACLE__V1__TUNNEL_FRAME__INIT;
    f.has_session = 1;
    f.session = s->id;
    f.has_end = 1;
    f.end = 1;
    tun_send_frame(s->node, &f);
}

void tun_session_cancel(tun_session_t *s)
{
    tun_send_cancel(s);
    tun_session_free(s);
}

void tun_session_input(tun_session_t *s, const void *data, size_t len,
                       const Coracle__V1__TerminalSize *resize, bool stdin_closed)
{
    if (!s->node)
        return;
    Coracle__V1__TunnelFrame f = CORACLE__V1__TUNNEL_FRAME__INIT;
    f.has_session = 1;
    f.session = s->id;
    if (data) {
        f.has_stdin = 1;
        f.stdin.data = (uint8_t *)data;
        f.stdin.len = len;
    }
    f.resize = (Coracle__V1__TerminalSize *)resize;
    if (stdin_closed) {
        f.has_stdinclosed = 1;
        f.stdinclosed = 1;
    }
    tun_send_frame(s->node, &f);
}

static void tun_node_free(struct tun_node *n, const char *why)
{
    struct tun_hub *h = n->hub;
    for (struct tun_node **p = &h->nodes; *p; p = &(*p)->next) {
        if (*p == n) {
            *p = n->next;
            break;
        }
    }
    while (n->sessions)
        tun_session_end(n->sessions, GRPC_UNAVAILABLE, why, -1);
    if (n->name)
        log_info("tunnel: node %s disconnected", n->name);
    free(n->name);
    free(n);
}

/* A frame from the kubelet for session s: its output to the client, or its end. */
static void tun_to_client(struct tun_session *s, const Coracle__V1__TunnelFrame *f)
{
    int stop = 0;
    if (f->has_stdout)
        stop = s->ops->output(s->arg, 1, f->stdout.data, f->stdout.len);
    if (!stop && f->has_stderr && f->stderr.len)
        stop = s->ops->output(s->arg, 2, f->stderr.data, f->stderr.len);
    if (stop) {
        tun_session_cancel(s); /* the client has what it wanted */
    } else if (f->error) {
        int code = f->has_errorcode && f->errorcode > 0 ? f->errorcode : GRPC_UNKNOWN;
        tun_session_end(s, code, f->error, -1);
    } else if (f->has_exitcode) {
        tun_session_end(s, GRPC_OK, NULL, f->exitcode < 0 ? 255 : f->exitcode);
    } else if (f->has_end && f->end) {
        tun_session_end(s, GRPC_OK, NULL, -1);
    } else if (s->ops->queued(s->arg) > TUN_CLIENT_QUEUE_MAX) {
        tun_send_cancel(s);
        tun_session_end(s, GRPC_RESOURCE_EXHAUSTED, "output queue full: the client is too slow",
                        -1);
    }
}

static void tun_node_msg(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    struct tun_node *n = arg;
    if (!msg) {
        tun_node_free(n, "the node's tunnel closed");
        h2s_call_finish(c, GRPC_OK, NULL);
        return;
    }
    Coracle__V1__TunnelFrame *f = coracle__v1__tunnel_frame__unpack(NULL, len, msg);
    if (!f) {
        tun_node_free(n, "the node's tunnel sent a bad frame");
        h2s_call_finish(c, GRPC_INVALID_ARGUMENT, "failed to decode TunnelFrame");
        return;
    }
    if (!n->name) {
        if (!f->node || !*f->node) {
            coracle__v1__tunnel_frame__free_unpacked(f, NULL);
            tun_node_free(n, "bad tunnel");
            h2s_call_finish(c, GRPC_INVALID_ARGUMENT, "the first tunnel frame must name the node");
            return;
        }
        char *err = NULL;
        if (auth_node_tunnel(n->hub->auth, &n->user, f->node, &err) < 0) {
            coracle__v1__tunnel_frame__free_unpacked(f, NULL);
            tun_node_free(n, "tunnel refused");
            h2s_call_finish(c, GRPC_PERMISSION_DENIED, err);
            free(err);
            return;
        }
        struct tun_node *old = tun_find_node(n->hub, f->node);
        if (old) {
            h2s_call_t *oc = old->call;
            tun_node_free(old, "the node opened a new tunnel");
            h2s_call_finish(oc, GRPC_ABORTED, "replaced by a newer tunnel from the same node");
        }
        n->name = xstrdup(f->node);
        log_info("tunnel: node %s connected from %s", n->name, h2s_call_peer(c));
    } else if (f->has_session) {
        for (struct tun_session *s = n->sessions; s; s = s->next) {
            if (s->id == f->session) {
                tun_to_client(s, f);
                break;
            }
        }
    }
    coracle__v1__tunnel_frame__free_unpacked(f, NULL);
}

static void tun_node_closed(h2s_call_t *c, void *arg)
{
    tun_node_free(arg, "the node's tunnel closed");
}

static void tun_connect(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    struct tun_hub *h = arg;
    struct auth_user u;
    char *err = NULL;
    if (auth_authenticate(h->auth, c, &u, &err) < 0) {
        h2s_call_finish(c, GRPC_UNAUTHENTICATED, err);
        free(err);
        return;
    }
    struct tun_node *n = xcalloc(1, sizeof(*n));
    n->user = u;
    n->call = c;
    n->hub = h;
    n->next = h->nodes;
    h->nodes = n;
    h2s_call_on_msg(c, tun_node_msg, n);
    h2s_call_on_close(c, tun_node_closed, n);
}

/*
 * Finds the pod and its node's tunnel and checks the container (none
 * named: the pod's only one). Returns 0 with *np and *cname (malloc'd),
 * or a gRPC code and *err (malloc'd) in Kubernetes' words.
 */
static int tun_route(struct tun_hub *h, const char *ns, const char *name, const char *container,
                     struct tun_node **np, char **cname, char **err)
{
    if (!name || !*name) {
        *err = xstrdup("name is required");
        return GRPC_INVALID_ARGUMENT;
    }
    char *key = kind_key(&kind_pod, ns && *ns ? ns : "default", name);
    store_rtxn_t *t;
    const void *val;
    size_t vlen;
    Coracle__V1__Pod *pod = NULL;
    if (store_read_begin(h->store, &t) == 0) {
        if (store_get(t, key, strlen(key), &val, &vlen) == 0)
            pod = coracle__v1__pod__unpack(NULL, vlen, val);
        store_read_end(t);
    }
    free(key);
    if (!pod) {
        *err = xasprintf("pods \"%s\" not found", name);
        return GRPC_NOT_FOUND;
    }
    int code = 0;
    Coracle__V1__PodSpec *spec = pod->spec;
    size_t nc = spec ? spec->n_containers : 0;
    if (!container || !*container) {
        if (nc != 1) {
            struct buf names = {0};
            for (size_t i = 0; i < nc; i++)
                buf_printf(&names, "%s%s", i ? " " : "", spec->containers[i]->name);
            *err = xasprintf("a container name must be specified for pod %s, choose one of: [%s]",
                             name, names.len ? names.p : "");
            buf_free(&names);
            code = GRPC_INVALID_ARGUMENT;
            goto out;
        }
        container = spec->containers[0]->name;
    } else {
        int found = 0;
        for (size_t i = 0; i < nc; i++)
            found |= !strcmp(spec->containers[i]->name, container);
        for (size_t i = 0; spec && i < spec->n_initcontainers; i++)
            found |= !strcmp(spec->initcontainers[i]->name, container);
        if (!found) {
            *err = xasprintf("container %s is not valid for pod %s", container, name);
            code = GRPC_INVALID_ARGUMENT;
            goto out;
        }
    }
    if (!spec->nodename || !*spec->nodename) {
        *err = xasprintf("container \"%s\" in pod \"%s\" is waiting to start: the pod is not "
                         "scheduled to a node yet",
                         container, name);
        code = GRPC_FAILED_PRECONDITION;
        goto out;
    }
    *np = tun_find_node(h, spec->nodename);
    if (!*np) {
        *err = xasprintf("no tunnel to node \"%s\": is its kubelet running and connected?",
                         spec->nodename);
        code = GRPC_UNAVAILABLE;
        goto out;
    }
    *cname = xstrdup(container);
out:
    coracle__v1__pod__free_unpacked(pod, NULL);
    return code;
}

int tun_check(tun_hub_t *h, const char *ns, const char *name, const char *container, char **err)
{
    struct tun_node *n = NULL;
    char *cname = NULL;
    int code = tun_route(h, ns, name, container, &n, &cname, err);
    free(cname);
    return code;
}

/*
 * Routes the request (ns, name, container: *ns_fwd, *container_fwd, the
 * forwarded copy's fields, get the defaults), opens a session for ops/arg
 * and sends f, the first frame, carrying that copy (f->log or f->exec).
 */
static int tun_open(struct tun_hub *h, Coracle__V1__TunnelFrame *f, char **ns_fwd,
                    char **container_fwd, const char *name, const struct tun_client_ops *ops,
                    void *arg, tun_session_t **out, char **err)
{
    struct tun_node *n = NULL;
    char *cname = NULL;
    int code = tun_route(h, *ns_fwd, name, *container_fwd, &n, &cname, err);
    if (code)
        return code;
    struct tun_session *s = xcalloc(1, sizeof(*s));
    s->id = ++h->next_id;
    s->node = n;
    s->ops = ops;
    s->arg = arg;
    s->next = n->sessions;
    n->sessions = s;
    *out = s;
    *container_fwd = cname;
    if (!*ns_fwd || !**ns_fwd)
        *ns_fwd = "default";
    f->has_session = 1;
    f->session = s->id;
    tun_send_frame(n, f);
    free(cname);
    return 0;
}

int tun_log_open(tun_hub_t *h, const Coracle__V1__PodLogRequest *req,
                 const struct tun_client_ops *ops, void *arg, tun_session_t **out, char **err)
{
    Coracle__V1__PodLogRequest fwd = *req;
    Coracle__V1__TunnelFrame f = CORACLE__V1__TUNNEL_FRAME__INIT;
    f.log = &fwd;
    return tun_open(h, &f, &fwd.namespace_, &fwd.container, req->name, ops, arg, out, err);
}

int tun_exec_open(tun_hub_t *h, const Coracle__V1__ExecRequest *req,
                  const Coracle__V1__TerminalSize *size, const ProtobufCBinaryData *stdin_data,
                  const struct tun_client_ops *ops, void *arg, tun_session_t **out, char **err)
{
    Coracle__V1__ExecRequest fwd = *req;
    Coracle__V1__TunnelFrame f = CORACLE__V1__TUNNEL_FRAME__INIT;
    f.exec = &fwd;
    if (stdin_data) {
        f.has_stdin = 1;
        f.stdin = *stdin_data;
    }
    f.resize = (Coracle__V1__TerminalSize *)size;
    return tun_open(h, &f, &fwd.namespace_, &fwd.container, req->name, ops, arg, out, err);
}

/* ---- the gRPC clients: Pods/Log and Pods/Exec */

struct tun_grpc {
    struct tun_hub *hub;
    h2s_call_t *call;
    tun_session_t *s; /* NULL until the session is open (Exec: its first message) */
    bool exec;
};

static int grpc_output(void *arg, int fd, const uint8_t *data, size_t len)
{
    struct tun_grpc *g = arg;
    if (!len)
        return 0;
    ProtobufCBinaryData d = {len, (uint8_t *)data};
    Coracle__V1__LogChunk c = CORACLE__V1__LOG_CHUNK__INIT;
    Coracle__V1__ExecOutput o = CORACLE__V1__EXEC_OUTPUT__INIT;
    if (!g->exec) {
        c.has_data = 1;
        c.data = d;
    } else if (fd == 2) {
        o.has_stderr = 1;
        o.stderr = d;
    } else {
        o.has_stdout = 1;
        o.stdout = d;
    }
    rbuf_t *b = grpc_frame_msg(g->exec ? &o.base : &c.base);
    h2s_call_send_framed(g->call, b);
    rbuf_unref(b);
    return 0;
}

static void grpc_end(void *arg, int code, const char *msg, int exit_code)
{
    struct tun_grpc *g = arg;
    if (exit_code >= 0) {
        Coracle__V1__ExecOutput o = CORACLE__V1__EXEC_OUTPUT__INIT;
        o.has_exitcode = 1;
        o.exitcode = exit_code;
        rbuf_t *b = grpc_frame_msg(&o.base);
        h2s_call_send_framed(g->call, b);
        rbuf_unref(b);
    }
    h2s_call_t *c = g->call;
    free(g);
    h2s_call_finish(c, code, msg);
}

static size_t grpc_queued(void *arg)
{
    const struct tun_grpc *g = arg;
    return h2s_call_queued(g->call);
}

static const struct tun_client_ops grpc_ops = {grpc_output, grpc_end, grpc_queued};

/* The client went away: the kubelet stops the session. */
static void grpc_closed(h2s_call_t *c, void *arg)
{
    struct tun_grpc *g = arg;
    if (g->s)
        tun_session_cancel(g->s);
    free(g);
}

static struct tun_grpc *grpc_client(struct tun_hub *h, h2s_call_t *c, bool exec)
{
    struct tun_grpc *g = xcalloc(1, sizeof(*g));
    g->hub = h;
    g->call = c;
    g->exec = exec;
    h2s_call_on_close(c, grpc_closed, g);
    return g;
}

/* A session could not open: the call ends with why. */
static void grpc_refused(struct tun_grpc *g, int code, char *err)
{
    h2s_call_t *c = g->call;
    free(g);
    h2s_call_finish(c, code, err);
    free(err);
}

static void tun_log(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    struct tun_hub *h = arg;
    Coracle__V1__PodLogRequest *req = coracle__v1__pod_log_request__unpack(NULL, len, msg);
    if (!req) {
        h2s_call_finish(c, GRPC_INVALID_ARGUMENT, "failed to decode PodLogRequest");
        return;
    }
    if (auth_call(h->auth, c, h->store, "get", &kind_pod, "log",
                  req->namespace_ && *req->namespace_ ? req->namespace_ : "default", req->name,
                  NULL) < 0) {
        coracle__v1__pod_log_request__free_unpacked(req, NULL);
        return;
    }
    struct tun_grpc *g = grpc_client(h, c, false);
    char *err = NULL;
    int code = tun_log_open(h, req, &grpc_ops, g, &g->s, &err);
    if (code)
        grpc_refused(g, code, err);
    coracle__v1__pod_log_request__free_unpacked(req, NULL);
}

/* The first message of an Exec: the request (and maybe stdin, a size). */
static void tun_exec_first(struct tun_grpc *g, const uint8_t *msg, size_t len)
{
    struct tun_hub *h = g->hub;
    Coracle__V1__ExecInput *in = msg ? coracle__v1__exec_input__unpack(NULL, len, msg) : NULL;
    Coracle__V1__ExecRequest *req = in ? in->request : NULL;
    int code = 0;
    char *err = NULL;
    if (!msg) {
        code = GRPC_INVALID_ARGUMENT;
        err = xstrdup("exec: no request sent");
    } else if (!req) {
        code = GRPC_INVALID_ARGUMENT;
        err = xstrdup("failed to decode ExecInput: the first message must carry a request");
    } else if (req->n_command == 0 && !(req->has_attach && req->attach)) {
        code = GRPC_INVALID_ARGUMENT;
        err = xstrdup("you must specify at least one command for the container");
    } else if (auth_call(h->auth, g->call, h->store, "create", &kind_pod,
                         req->has_attach && req->attach ? "attach" : "exec",
                         req->namespace_ && *req->namespace_ ? req->namespace_ : "default",
                         req->name, NULL) < 0) {
        free(g); /* auth_call finished the call */
        goto out;
    } else {
        code = tun_exec_open(h, req, in->resize, in->has_stdin ? &in->stdin : NULL, &grpc_ops, g,
                             &g->s, &err);
    }
    if (code)
        grpc_refused(g, code, err);
out:
    if (in)
        coracle__v1__exec_input__free_unpacked(in, NULL);
}

/* Exec: the first client message carries the request; later ones stdin/resize. */
static void tun_exec_msg(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    struct tun_grpc *g = arg;
    if (!g->s) {
        tun_exec_first(g, msg, len);
        return;
    }
    if (!msg) {
        tun_session_input(g->s, NULL, 0, NULL, true);
        return;
    }
    Coracle__V1__ExecInput *in = coracle__v1__exec_input__unpack(NULL, len, msg);
    if (!in)
        return; /* ignore garbage on an open session */
    tun_session_input(g->s, in->has_stdin ? in->stdin.data : NULL, in->stdin.len, in->resize,
                      in->has_stdinclosed && in->stdinclosed);
    coracle__v1__exec_input__free_unpacked(in, NULL);
}

static void tun_exec(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    struct tun_grpc *g = grpc_client(arg, c, true);
    h2s_call_on_msg(c, tun_exec_msg, g);
}

tun_hub_t *tun_hub_new(h2s_t *s, store_t *st, auth_t *au)
{
    struct tun_hub *h = xcalloc(1, sizeof(*h));
    h->h2s = s;
    h->store = st;
    h->auth = au;
    h2s_route(s, "/coracle.v1.NodeTunnel/Connect", H2S_BIDI, tun_connect, h);
    h2s_route(s, "/coracle.v1.Pods/Log", H2S_SERVER_STREAM, tun_log, h);
    h2s_route(s, "/coracle.v1.Pods/Exec", H2S_BIDI, tun_exec, h);
    return h;
}

void tun_hub_free(tun_hub_t *h)
{
    while (h->nodes) {
        struct tun_node *n = h->nodes;
        h2s_call_t *c = n->call;
        tun_node_free(n, "server shutting down");
        h2s_call_finish(c, GRPC_UNAVAILABLE, "server shutting down");
    }
    free(h);
}

size_t tun_hub_nodes(const tun_hub_t *h)
{
    size_t n = 0;
    for (struct tun_node *x = h->nodes; x; x = x->next)
        n += x->name != NULL;
    return n;
}
