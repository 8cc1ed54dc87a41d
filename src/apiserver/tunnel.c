/*
 * tunnel: relays Pods/Log and Pods/Exec calls to the kubelet of the pod's
 * node over the NodeTunnel.Connect stream that kubelet opened. See tunnel.h.
 *
 * A kubelet's call is a tun_node; each client call riding on it is a
 * tun_session with an id unique in this process. Frames from the kubelet
 * are matched to sessions by id; a client that goes away cancels its
 * session with an `end` frame; a kubelet that goes away fails its sessions
 * with UNAVAILABLE.
 */
#include "config.h"
#include "tunnel.h"

#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "coracle.pb-c.h"
#include "grpc.h"
#include "kinds.h"
#include "util.h"

/* A client whose unread output passes this is cut off (memory stays bounded). */
#define TUN_CLIENT_QUEUE_MAX (8u << 20)

enum tun_kind { TUN_LOG, TUN_EXEC };

struct tun_session {
    uint64_t id;
    enum tun_kind kind;
    struct tun_node *node;
    h2s_call_t *client;
    void *extra; /* freed with the session */
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

static void tun_session_unlink(struct tun_session *s)
{
    if (!s->node)
        return;
    for (struct tun_session **p = &s->node->sessions; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    s->node = NULL;
}

/* Ends the client's call and forgets the session. */
static void tun_session_end(struct tun_session *s, int code, const char *msg)
{
    tun_session_unlink(s);
    h2s_call_t *c = s->client;
    free(s->extra);
    free(s);
    h2s_call_finish(c, code, msg);
}

/* The client went away: tell the kubelet to stop the session. */
static void tun_client_closed(h2s_call_t *c, void *arg)
{
    struct tun_session *s = arg;
    if (s->node) {
        Coracle__V1__TunnelFrame f = CORACLE__V1__TUNNEL_FRAME__INIT;
        f.has_session = 1;
        f.session = s->id;
        f.has_end = 1;
        f.end = 1;
        tun_send_frame(s->node, &f);
    }
    tun_session_unlink(s);
    free(s->extra);
    free(s);
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
        tun_session_end(n->sessions, GRPC_UNAVAILABLE, why);
    if (n->name)
        log_info("tunnel: node %s disconnected", n->name);
    free(n->name);
    free(n);
}

static void tun_to_client(struct tun_session *s, const Coracle__V1__TunnelFrame *f)
{
    if (s->kind == TUN_LOG) {
        if (f->has_stdout && f->stdout.len) {
            Coracle__V1__LogChunk c = CORACLE__V1__LOG_CHUNK__INIT;
            c.has_data = 1;
            c.data = f->stdout;
            rbuf_t *b = grpc_frame_msg(&c.base);
            h2s_call_send_framed(s->client, b);
            rbuf_unref(b);
        }
    } else {
        Coracle__V1__ExecOutput o = CORACLE__V1__EXEC_OUTPUT__INIT;
        int any = 0;
        if (f->has_stdout && f->stdout.len) {
            o.has_stdout = 1;
            o.stdout = f->stdout;
            any = 1;
        }
        if (f->has_stderr && f->stderr.len) {
            o.has_stderr = 1;
            o.stderr = f->stderr;
            any = 1;
        }
        if (f->has_exitcode) {
            o.has_exitcode = 1;
            o.exitcode = f->exitcode;
            any = 1;
        }
        if (any) {
            rbuf_t *b = grpc_frame_msg(&o.base);
            h2s_call_send_framed(s->client, b);
            rbuf_unref(b);
        }
    }
    if (f->error) {
        int code = f->has_errorcode && f->errorcode > 0 ? f->errorcode : GRPC_UNKNOWN;
        tun_session_end(s, code, f->error);
    } else if (f->has_exitcode || (f->has_end && f->end)) {
        tun_session_end(s, GRPC_OK, NULL);
    } else if (h2s_call_queued(s->client) > TUN_CLIENT_QUEUE_MAX) {
        Coracle__V1__TunnelFrame cancel = CORACLE__V1__TUNNEL_FRAME__INIT;
        cancel.has_session = 1;
        cancel.session = s->id;
        cancel.has_end = 1;
        cancel.end = 1;
        tun_send_frame(s->node, &cancel);
        tun_session_end(s, GRPC_RESOURCE_EXHAUSTED, "output queue full: the client is too slow");
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
 * Finds the pod and the node tunnel for a log/exec request and checks the
 * container. Returns the node, or NULL after finishing the call with the
 * error Kubernetes would give. *container is set to the container to use.
 */
static struct tun_node *tun_route(struct tun_hub *h, h2s_call_t *c, const char *ns,
                                  const char *name, const char **container, char **cbuf)
{
    if (!name || !*name) {
        h2s_call_finish(c, GRPC_INVALID_ARGUMENT, "name is required");
        return NULL;
    }
    if (!ns || !*ns)
        ns = "default";
    char *key = kind_key(&kind_pod, ns, name);
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
    struct tun_node *n = NULL;
    if (!pod) {
        h2s_call_finishf(c, GRPC_NOT_FOUND, "pods \"%s\" not found", name);
        return NULL;
    }
    Coracle__V1__PodSpec *spec = pod->spec;
    size_t nc = spec ? spec->n_containers : 0;
    if (!*container || !**container) {
        if (nc == 1) {
            *cbuf = xstrdup(spec->containers[0]->name);
            *container = *cbuf;
        } else {
            char names[1024] = "";
            for (size_t i = 0; i < nc; i++)
                snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? " " : "",
                         spec->containers[i]->name);
            h2s_call_finishf(c, GRPC_INVALID_ARGUMENT,
                             "a container name must be specified for pod %s, choose one of: [%s]",
                             name, names);
            goto out;
        }
    } else {
        int found = 0;
        for (size_t i = 0; spec && i < nc; i++)
            found |= !strcmp(spec->containers[i]->name, *container);
        for (size_t i = 0; spec && i < spec->n_initcontainers; i++)
            found |= !strcmp(spec->initcontainers[i]->name, *container);
        if (!found) {
            h2s_call_finishf(c, GRPC_INVALID_ARGUMENT, "container %s is not valid for pod %s",
                             *container, name);
            goto out;
        }
    }
    if (!spec->nodename || !*spec->nodename) {
        h2s_call_finishf(c, GRPC_FAILED_PRECONDITION,
                         "container \"%s\" in pod \"%s\" is waiting to start: the pod is not "
                         "scheduled to a node yet",
                         *container, name);
        goto out;
    }
    n = tun_find_node(h, spec->nodename);
    if (!n)
        h2s_call_finishf(c, GRPC_UNAVAILABLE,
                         "no tunnel to node \"%s\": is its kubelet running and connected?",
                         spec->nodename);
out:
    coracle__v1__pod__free_unpacked(pod, NULL);
    return n;
}

static struct tun_session *tun_session_new(struct tun_hub *h, struct tun_node *n, h2s_call_t *c,
                                           enum tun_kind kind)
{
    struct tun_session *s = xcalloc(1, sizeof(*s));
    s->id = ++h->next_id;
    s->kind = kind;
    s->node = n;
    s->client = c;
    s->next = n->sessions;
    n->sessions = s;
    h2s_call_on_close(c, tun_client_closed, s);
    return s;
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
    const char *container = req->container;
    char *cbuf = NULL;
    struct tun_node *n = tun_route(h, c, req->namespace_, req->name, &container, &cbuf);
    if (n) {
        struct tun_session *s = tun_session_new(h, n, c, TUN_LOG);
        Coracle__V1__PodLogRequest fwd = *req;
        fwd.container = (char *)container;
        if (!fwd.namespace_ || !*fwd.namespace_)
            fwd.namespace_ = "default";
        Coracle__V1__TunnelFrame f = CORACLE__V1__TUNNEL_FRAME__INIT;
        f.has_session = 1;
        f.session = s->id;
        f.log = &fwd;
        tun_send_frame(n, &f);
    }
    free(cbuf);
    coracle__v1__pod_log_request__free_unpacked(req, NULL);
}

/* Exec: the first client message carries the request; later ones stdin/resize. */
struct tun_exec_pending {
    struct tun_hub *hub;
    struct tun_session *s; /* NULL until the request arrived */
};

static void tun_exec_closed_early(h2s_call_t *c, void *arg)
{
    free(arg);
}

static void tun_exec_msg(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    struct tun_exec_pending *p = arg;
    if (p->s) {
        /* Relay stdin, resize and end of input to the kubelet. */
        struct tun_session *s = p->s;
        if (!s->node)
            return;
        Coracle__V1__TunnelFrame f = CORACLE__V1__TUNNEL_FRAME__INIT;
        f.has_session = 1;
        f.session = s->id;
        Coracle__V1__ExecInput *in = NULL;
        if (!msg) {
            f.has_stdinclosed = 1;
            f.stdinclosed = 1;
        } else {
            in = coracle__v1__exec_input__unpack(NULL, len, msg);
            if (!in)
                return; /* ignore garbage on an open session */
            if (in->has_stdin) {
                f.has_stdin = 1;
                f.stdin = in->stdin;
            }
            f.resize = in->resize;
            if (in->has_stdinclosed && in->stdinclosed) {
                f.has_stdinclosed = 1;
                f.stdinclosed = 1;
            }
        }
        tun_send_frame(s->node, &f);
        if (in)
            coracle__v1__exec_input__free_unpacked(in, NULL);
        return;
    }
    /* The first message. */
    struct tun_hub *h = p->hub;
    if (!msg) {
        free(p);
        h2s_call_finish(c, GRPC_INVALID_ARGUMENT, "exec: no request sent");
        return;
    }
    Coracle__V1__ExecInput *in = coracle__v1__exec_input__unpack(NULL, len, msg);
    if (!in || !in->request) {
        if (in)
            coracle__v1__exec_input__free_unpacked(in, NULL);
        free(p);
        h2s_call_finish(c, GRPC_INVALID_ARGUMENT,
                        "failed to decode ExecInput: the first message must carry a request");
        return;
    }
    Coracle__V1__ExecRequest *req = in->request;
    if (req->n_command == 0) {
        coracle__v1__exec_input__free_unpacked(in, NULL);
        free(p);
        h2s_call_finish(c, GRPC_INVALID_ARGUMENT,
                        "you must specify at least one command for the container");
        return;
    }
    if (auth_call(h->auth, c, h->store, "create", &kind_pod, "exec",
                  req->namespace_ && *req->namespace_ ? req->namespace_ : "default", req->name,
                  NULL) < 0) {
        coracle__v1__exec_input__free_unpacked(in, NULL);
        free(p);
        return;
    }
    const char *container = req->container;
    char *cbuf = NULL;
    struct tun_node *n = tun_route(h, c, req->namespace_, req->name, &container, &cbuf);
    if (!n) {
        free(cbuf);
        coracle__v1__exec_input__free_unpacked(in, NULL);
        free(p);
        return;
    }
    p->s = tun_session_new(h, n, c, TUN_EXEC);
    p->s->extra = p;
    Coracle__V1__ExecRequest fwd = *req;
    fwd.container = (char *)container;
    if (!fwd.namespace_ || !*fwd.namespace_)
        fwd.namespace_ = "default";
    Coracle__V1__TunnelFrame f = CORACLE__V1__TUNNEL_FRAME__INIT;
    f.has_session = 1;
    f.session = p->s->id;
    f.exec = &fwd;
    if (in->has_stdin) {
        f.has_stdin = 1;
        f.stdin = in->stdin;
    }
    f.resize = in->resize;
    tun_send_frame(n, &f);
    free(cbuf);
    coracle__v1__exec_input__free_unpacked(in, NULL);
}

static void tun_exec(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    struct tun_exec_pending *p = xcalloc(1, sizeof(*p));
    p->hub = arg;
    h2s_call_on_msg(c, tun_exec_msg, p);
    h2s_call_on_close(c, tun_exec_closed_early, p);
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
