/*
 * rest_connect: pods/log, pods/exec and pods/attach over the REST API.
 * See rest_int.h.
 *
 * All three ride the kubelets' tunnels (tunnel.c) as the gRPC Pods/Log
 * and Pods/Exec do: this file is one more client of a tunnel session.
 *
 * log: GET, text/plain; the answer starts once the kubelet accepted the
 * session (so a container waiting to start is a 400, not an empty 200),
 * and, following, streams until the container ends or the client goes.
 * limitBytes is counted here; the kubelet picks the lines (tailLines,
 * sinceSeconds, sinceTime, previous) and prefixes their times.
 *
 * exec, attach: the request is authorized and the pod and container
 * checked first (errors as plain Status answers), then upgraded to
 * WebSocket (rest_ws.c) or SPDY/3.1 (rest_spdy.c); a struct rxs relays
 * the channels to the session. attach is an exec session with the
 * request's attach flag: the kubelet joins the container's monitor, which
 * sends the output from now on and takes stdin (when the container keeps
 * one: stdin: true) and window sizes; it ends with the container.
 */
#include "config.h"
#include "rest_int.h"
#include "buf.h"
#include "grpc.h"
#include "json.h"
#include "kjson.h"
#include "util.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* How long a terminal's exec waits for the client's first window size... */
#define RXS_SIZE_WAIT_MS 500
/* ...and how much stdin it keeps meanwhile (more is dropped: a client that does not wait). */
#define RXS_EARLY_IN_MAX (64u << 10)

/* The end of an exec on the error stream, as the kubelet writes it (v4 and later). */
#define STATUS_SUCCESS "{\"metadata\":{},\"status\":\"Success\"}"
#define STATUS_EXIT                                                                                \
    "{\"metadata\":{},\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\",\"details\":{"         \
    "\"causes\":[{\"reason\":\"ExitCode\",\"message\":\"%d\"}]}}"

bool rest_connect_sub(const char *sub)
{
    static const char *const subs[] = {"log", "exec", "attach"};
    for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
        if (!strcmp(sub, subs[i]))
            return true;
    return false;
}

/* A failure from tun_check / tun_log_open, as Kubernetes answers it. */
static void answer_route(rest_t *rs, h2s_req_t *r, int code, const char *msg, const char *name)
{
    if (code == GRPC_NOT_FOUND)
        rest_answer_status(rs, r, 404, "NotFound", msg, &kind_pod, name);
    else if (code == GRPC_FAILED_PRECONDITION || code == GRPC_INVALID_ARGUMENT)
        rest_answer_status(rs, r, 400, "BadRequest", msg, NULL, NULL);
    else
        rest_answer_grpc(rs, r, code, msg, NULL, NULL);
}

/* Claims a long-running slot for u (as watches do): 0, or -1 after answering 429. */
static int claim(rest_t *rs, h2s_req_t *r, const struct auth_user *u)
{
    unsigned max = auth_max_watches(rs->cfg.auth);
    if (h2s_req_claim(r, u->id, max) == 0)
        return 0;
    char *m =
        xasprintf("too many long-running requests for user \"%s\" (at most %u)", u->name, max);
    rest_answer_status(rs, r, 429, "TooManyRequests", m, NULL, NULL);
    free(m);
    return -1;
}

/* ---- pods/log ---- */

struct rlog {
    rest_t *rs;
    h2s_req_t *r;
    tun_session_t *s;
    char *name;
    bool started;
    int64_t left; /* limitBytes still to send, or -1 */
};

static void rlog_free(struct rlog *l)
{
    free(l->name);
    free(l);
}

static void rlog_start(struct rlog *l)
{
    if (l->started)
        return;
    l->started = true;
    rest_count(l->rs, l->r, 200);
    h2s_req_start(l->r, 200, "text/plain");
}

static int rlog_output(void *arg, int fd, const uint8_t *data, size_t len)
{
    struct rlog *l = arg;
    rlog_start(l);
    if (l->left >= 0 && (int64_t)len > l->left)
        len = (size_t)l->left;
    if (len)
        h2s_req_send(l->r, data, len);
    if (l->left < 0 || (l->left -= (int64_t)len) > 0)
        return 0;
    h2s_req_on_close(l->r, NULL, NULL); /* limitBytes reached: done */
    h2s_req_end(l->r);
    rlog_free(l);
    return 1;
}

static void rlog_end(void *arg, int code, const char *msg, int exit_code)
{
    struct rlog *l = arg;
    h2s_req_on_close(l->r, NULL, NULL);
    if (l->started && code == GRPC_OK) {
        h2s_req_end(l->r);
    } else if (l->started) {
        h2s_req_abort(l->r); /* cut: a client too slow, a kubelet gone (the stream is broken) */
    } else if (code == GRPC_OK) {
        rest_count(l->rs, l->r, 200);
        h2s_req_respond(l->r, 200, "text/plain", "", 0);
    } else if (code == GRPC_NOT_FOUND || code == GRPC_INVALID_ARGUMENT ||
               code == GRPC_FAILED_PRECONDITION) {
        /* the kubelet's refusal (no previous instance, waiting to start): Kubernetes' 400 */
        rest_answer_status(l->rs, l->r, 400, "BadRequest", msg, NULL, NULL);
    } else {
        rest_answer_grpc(l->rs, l->r, code, msg, NULL, NULL);
    }
    rlog_free(l);
}

static size_t rlog_queued(void *arg)
{
    const struct rlog *l = arg;
    return h2s_req_queued(l->r);
}

static const struct tun_client_ops rlog_ops = {rlog_output, rlog_end, rlog_queued};

static void rlog_gone(h2s_req_t *r, void *arg)
{
    struct rlog *l = arg;
    tun_session_cancel(l->s);
    rlog_free(l);
}

/* RFC 3339 ("2026-12-07T06:35:01Z", a fraction, an offset) in ns since the epoch, or -1. */
static int64_t rfc3339_ns(const char *v)
{
    struct tm tm = {0};
    const char *p = strptime(v, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    int64_t frac = 0, scale = 1000000000;
    if (*p == '.') {
        if (p[1] < '0' || p[1] > '9')
            return -1;
        for (p++; *p >= '0' && *p <= '9'; p++)
            if (scale > 1)
                frac += (*p - '0') * (scale /= 10);
    }
    int64_t off = 0;
    if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int h = atoi(p + 1), m = atoi(p + 4);
        off = (int64_t)(h * 3600 + m * 60) * (*p == '+' ? 1 : -1);
    } else if (strcasecmp(p, "Z")) {
        return -1;
    }
    return ((int64_t)timegm(&tm) - off) * 1000000000 + frac;
}

/* An int64 parameter >= min: 0 (absent: untouched), or -1 after answering 400/422. */
static int log_int(rest_t *rs, h2s_req_t *r, const struct rquery *q, const char *name, int64_t min,
                   int64_t *out, protobuf_c_boolean *has)
{
    const char *v = rest_query_get(q, name);
    if (!v)
        return 0;
    char *m = NULL;
    if (rest_query_int(v, out) < 0 || !*v) {
        m = xasprintf("%s: invalid value \"%s\": must be an integer", name, v);
        rest_answer_status(rs, r, 400, "BadRequest", m, NULL, NULL);
    } else if (*out < min) {
        m = xasprintf("PodLogOptions \"\" is invalid: %s: Invalid value: %lld: must be greater "
                      "than %s0",
                      name, (long long)*out, min ? "" : "or equal to ");
        rest_answer_status(rs, r, 422, "Invalid", m, NULL, NULL);
    }
    free(m);
    *has = 1;
    return m ? -1 : 0;
}

/* The query into req (strings borrowed from q): 0, or -1 after answering. */
static int log_request(rest_t *rs, h2s_req_t *r, const struct rquery *q,
                       Coracle__V1__PodLogRequest *req, int64_t *limit)
{
    req->container = (char *)rest_query_get(q, "container");
    req->has_follow = req->has_previous = req->has_timestamps = 1;
    req->follow = rest_query_true(rest_query_get(q, "follow"));
    req->previous = rest_query_true(rest_query_get(q, "previous"));
    req->timestamps = rest_query_true(rest_query_get(q, "timestamps"));
    protobuf_c_boolean has_limit = 0;
    if (log_int(rs, r, q, "tailLines", 0, &req->taillines, &req->has_taillines) < 0 ||
        log_int(rs, r, q, "sinceSeconds", 1, &req->sinceseconds, &req->has_sinceseconds) < 0 ||
        log_int(rs, r, q, "limitBytes", 1, limit, &has_limit) < 0)
        return -1;
    if (!has_limit)
        *limit = -1;
    const char *st = rest_query_get(q, "sinceTime");
    if (st && req->has_sinceseconds) {
        rest_answer_status(rs, r, 422, "Invalid",
                           "PodLogOptions \"\" is invalid: sinceSeconds: Forbidden: at most one of "
                           "`sinceTime` or `sinceSeconds` may be specified",
                           NULL, NULL);
        return -1;
    }
    if (st) {
        int64_t ns = rfc3339_ns(st);
        if (ns < 0) {
            char *m = xasprintf("sinceTime: parsing time \"%s\": not an RFC 3339 time", st);
            rest_answer_status(rs, r, 400, "BadRequest", m, NULL, NULL);
            free(m);
            return -1;
        }
        req->has_sinceunixnano = 1;
        req->sinceunixnano = ns;
    }
    return 0;
}

static void do_log(rest_t *rs, h2s_req_t *r, const struct auth_user *u, const struct rreq *rq,
                   const struct rquery *q)
{
    Coracle__V1__PodLogRequest req = CORACLE__V1__POD_LOG_REQUEST__INIT;
    int64_t limit = -1;
    if (log_request(rs, r, q, &req, &limit) < 0)
        return;
    if (req.follow && claim(rs, r, u) < 0)
        return;
    req.namespace_ = (char *)rq->ns;
    req.name = (char *)rq->name;
    struct rlog *l = xcalloc(1, sizeof(*l));
    l->rs = rs;
    l->r = r;
    l->name = xstrdup(rq->name);
    l->left = limit;
    char *err = NULL;
    int code = tun_log_open(rs->streams.tun, &req, &rlog_ops, l, &l->s, &err);
    if (code) {
        answer_route(rs, r, code, err, rq->name);
        rlog_free(l);
        free(err);
        return;
    }
    h2s_req_on_close(r, rlog_gone, l);
}

/* ---- pods/exec, pods/attach ---- */

struct rxs {
    rest_t *rs;
    bool attach;
    struct rx_want want;
    Coracle__V1__ExecRequest req; /* its strings and command are the rxs's */
    const struct rx_transport *tx;
    void *t;
    tun_session_t *s; /* open from rxs_ready on */
    /*
     * rxs_ready's timer: a terminal's session waits for the first size
     * (RXS_SIZE_WAIT_MS), and a session that could not open ends on the
     * next loop turn (fail_code, fail_msg), never inside a transport's
     * call into this file.
     */
    struct event *timer;
    bool ready, size_wait;
    int fail_code;
    char *fail_msg;
    bool has_size;
    Coracle__V1__TerminalSize size; /* the last window size, until the session opens */
    struct buf early_in;            /* stdin that came before the session opened (bounded) */
    bool early_close;               /* ...and its end */
};

static void rxs_free(struct rxs *x)
{
    if (x->timer)
        event_free(x->timer);
    free(x->fail_msg);
    buf_free(&x->early_in);
    free(x->req.namespace_);
    free(x->req.name);
    free(x->req.container);
    for (size_t i = 0; i < x->req.n_command; i++)
        free(x->req.command[i]);
    free(x->req.command);
    free(x);
}

/* The end: status on the error stream, the transport closes, x is freed. */
static void rxs_finish(struct rxs *x, const char *status)
{
    x->tx->finish(x->t, status);
    rxs_free(x);
}

static int rxs_output(void *arg, int fd, const uint8_t *data, size_t len)
{
    struct rxs *x = arg;
    if (len)
        x->tx->out(x->t, fd == 2 ? RCH_STDERR : RCH_STDOUT, data, len);
    return 0;
}

static void rxs_end(void *arg, int code, const char *msg, int exit_code)
{
    struct rxs *x = arg;
    x->s = NULL;
    if (code == GRPC_OK && exit_code <= 0) {
        rxs_finish(x, STATUS_SUCCESS);
    } else if (code == GRPC_OK) {
        char *st = xasprintf(STATUS_EXIT, exit_code);
        rxs_finish(x, st);
        free(st);
    } else {
        const char *reason;
        int http = kjson_http_status(code, &reason);
        char *st = kjson_status(http, reason, msg, NULL, NULL);
        rxs_finish(x, st);
        free(st);
    }
}

static size_t rxs_queued(void *arg)
{
    const struct rxs *x = arg;
    return x->tx->queued(x->t);
}

static const struct tun_client_ops rxs_ops = {rxs_output, rxs_end, rxs_queued};

/* Opens the session (the streams are there, and a terminal's first size or the wait is over). */
static void rxs_open(struct rxs *x)
{
    char *err = NULL;
    int code = tun_exec_open(x->rs->streams.tun, &x->req, x->has_size ? &x->size : NULL, NULL,
                             &rxs_ops, x, &x->s, &err);
    if (code) {
        x->fail_code = code;
        x->fail_msg = err;
        static const struct timeval now = {0, 0};
        evtimer_add(x->timer, &now);
        return;
    }
    if (x->early_in.len || x->early_close)
        tun_session_input(x->s, x->early_in.len ? x->early_in.p : NULL, x->early_in.len, NULL,
                          x->early_close);
    buf_free(&x->early_in);
    free(err);
}

static void rxs_timer(evutil_socket_t fd, short what, void *arg)
{
    struct rxs *x = arg;
    if (x->fail_code) {
        rxs_end(x, x->fail_code, x->fail_msg, -1);
        return;
    }
    log_info("rest: exec %s/%s: no terminal size from the client within %d ms; starting",
             x->req.namespace_, x->req.name, RXS_SIZE_WAIT_MS);
    x->size_wait = false;
    rxs_open(x);
}

void rxs_ready(struct rxs *x)
{
    if (x->ready)
        return;
    x->ready = true;
    x->timer = evtimer_new(x->rs->streams.base, rxs_timer, x);
    if (!x->want.tty || x->has_size || x->attach) {
        rxs_open(x);
        return;
    }
    /*
     * kubectl sends the terminal's size just after the streams open: the
     * process starts with it (not 0x0 and a resize racing its first
     * output), or after RXS_SIZE_WAIT_MS without one.
     */
    x->size_wait = true;
    struct timeval tv = {0, RXS_SIZE_WAIT_MS * 1000};
    evtimer_add(x->timer, &tv);
}

void rxs_stdin(struct rxs *x, const uint8_t *data, size_t len)
{
    if (!x->want.stdin || !len)
        return;
    if (x->s)
        tun_session_input(x->s, data, len, NULL, false);
    else if (x->early_in.len + len <= RXS_EARLY_IN_MAX)
        buf_add(&x->early_in, data, len); /* (typed while the session waits for a size) */
}

void rxs_stdin_close(struct rxs *x)
{
    if (!x->want.stdin)
        return;
    if (x->s)
        tun_session_input(x->s, NULL, 0, NULL, true);
    else
        x->early_close = true;
}

void rxs_resize(struct rxs *x, const uint8_t *js, size_t len)
{
    json_t *j = NULL;
    struct json_limits lim = {.max_bytes = 256, .max_depth = 2, .max_nodes = 8};
    if (json_parse((const char *)js, len, &lim, &j, NULL) < 0)
        return;
    const json_t *w = json_get(j, "Width"), *h = json_get(j, "Height");
    if (w && h && w->type == JSON_NUMBER && h->type == JSON_NUMBER && w->num >= 0 &&
        w->num < 65536 && h->num >= 0 && h->num < 65536) {
        coracle__v1__terminal_size__init(&x->size);
        x->size.has_width = x->size.has_height = 1;
        x->size.width = (uint32_t)w->num;
        x->size.height = (uint32_t)h->num;
        x->has_size = true;
        if (x->s) {
            tun_session_input(x->s, NULL, 0, &x->size, false);
        } else if (x->size_wait) {
            x->size_wait = false;
            evtimer_del(x->timer);
            rxs_open(x);
        }
    }
    json_free(j);
}

void rxs_gone(struct rxs *x, const char *why)
{
    log_debug("rest: %s %s/%s: %s", x->attach ? "attach" : "exec", x->req.namespace_, x->req.name,
              why);
    if (x->s)
        tun_session_cancel(x->s);
    rxs_free(x);
}

/* The query's exec options into x (strings copied): 0, or -1 after answering 400. */
static int exec_options(rest_t *rs, h2s_req_t *r, const struct rquery *q, struct rxs *x)
{
    x->want.stdin = rest_query_true(rest_query_get(q, "stdin"));
    x->want.stdout = rest_query_true(rest_query_get(q, "stdout"));
    x->want.stderr = rest_query_true(rest_query_get(q, "stderr"));
    x->want.tty = rest_query_true(rest_query_get(q, "tty"));
    if (x->want.tty)
        x->want.stderr = false; /* a terminal has one output */
    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->keys[i], "command"))
            continue;
        x->req.command = xrealloc(x->req.command, (x->req.n_command + 1) * sizeof(char *));
        x->req.command[x->req.n_command++] = xstrdup(q->vals[i]);
    }
    const char *msg = NULL;
    if (!x->attach && !x->req.n_command)
        msg = "you must specify at least one command for the container";
    else if (!x->want.stdin && !x->want.stdout && !x->want.stderr)
        msg = "you must specify at least 1 of stdin, stdout, stderr";
    if (msg) {
        rest_answer_status(rs, r, 400, "BadRequest", msg, NULL, NULL);
        return -1;
    }
    x->req.has_stdin = 1;
    x->req.stdin = x->want.stdin;
    x->req.has_tty = 1;
    x->req.tty = x->want.tty;
    x->req.has_attach = x->attach;
    x->req.attach = x->attach;
    const char *c = rest_query_get(q, "container");
    x->req.container = c && *c ? xstrdup(c) : NULL;
    return 0;
}

bool rest_header_token(h2s_req_t *r, const char *name, const char *token)
{
    const char *h;
    bool found = false;
    for (size_t i = 0; !found && (h = h2s_req_header_nth(r, name, i)); i++) {
        char *list = xstrdup(h), *save = NULL;
        for (char *t = strtok_r(list, ", \t", &save); t && !found;
             t = strtok_r(NULL, ", \t", &save))
            found = !strcmp(t, token);
        free(list);
    }
    return found;
}

/* The upgrade kubectl asked for: its transport started (x handed over), or -1 after answering. */
static int exec_upgrade(rest_t *rs, h2s_req_t *r, struct rxs *x)
{
    const char *up = h2s_req_header(r, "upgrade");
    const char *proto;
    if (!up || h2s_req_http_version(r) != 1) {
        rest_answer_status(rs, r, 400, "BadRequest", "Upgrade request required", NULL, NULL);
        return -1;
    }
    if (!strcasecmp(up, "websocket")) {
        proto = rest_ws_protocol(r);
        x->tx = &rest_ws_transport;
    } else if (!strcasecmp(up, "SPDY/3.1")) {
        proto = rest_spdy_protocol(r);
        x->tx = &rest_spdy_transport;
    } else {
        char *m =
            xasprintf("unable to upgrade: %s is not a protocol this server speaks (websocket, "
                      "SPDY/3.1)",
                      up);
        rest_answer_status(rs, r, 400, "BadRequest", m, NULL, NULL);
        free(m);
        return -1;
    }
    if (!proto) {
        rest_answer_status(rs, r, 400, "BadRequest",
                           "unable to upgrade: unable to negotiate protocol: the server supports "
                           "v5.channel.k8s.io and v4.channel.k8s.io (WebSocket), v4.channel.k8s.io "
                           "(SPDY/3.1)",
                           NULL, NULL);
        return -1;
    }
    bool ws = x->tx == &rest_ws_transport;
    x->t = ws ? rest_ws_start(rs, r, proto, x) : rest_spdy_start(rs, r, proto, &x->want, x);
    if (!x->t)
        return -1;
    rest_count(rs, r, 101); /* (r lives on with the upgraded stream) */
    if (ws)
        rxs_ready(x); /* SPDY: once the client opened its streams */
    return 0;
}

static void do_exec(rest_t *rs, h2s_req_t *r, const struct auth_user *u, const struct rreq *rq,
                    const struct rquery *q, bool attach)
{
    struct rxs *x = xcalloc(1, sizeof(*x));
    x->rs = rs;
    x->attach = attach;
    coracle__v1__exec_request__init(&x->req);
    x->req.namespace_ = xstrdup(rq->ns);
    x->req.name = xstrdup(rq->name);
    if (exec_options(rs, r, q, x) < 0)
        goto fail;
    char *err = NULL;
    int code = tun_check(rs->streams.tun, rq->ns, rq->name, x->req.container, &err);
    if (code) {
        if (code == GRPC_FAILED_PRECONDITION) {
            free(err);
            err = xasprintf("pod %s does not have a host assigned", rq->name);
        }
        answer_route(rs, r, code, err, rq->name);
        free(err);
        goto fail;
    }
    if (claim(rs, r, u) < 0 || exec_upgrade(rs, r, x) < 0)
        goto fail;
    return;
fail:
    rxs_free(x);
}

void rest_connect(rest_t *rs, h2s_req_t *r, const struct auth_user *u, struct rreq *rq,
                  const struct rquery *q)
{
    rest_set_what(r, RV_CONNECT, rq);
    const char *m = h2s_req_method(r);
    bool log = !strcmp(rq->sub, "log");
    bool get = !strcmp(m, "GET");
    if (rq->k != &kind_pod || !rq->name) {
        rest_not_found_path(rs, r);
        return;
    }
    if (log ? !get : !get && strcmp(m, "POST")) {
        char *msg = xasprintf("%s is not allowed on pods/%s", m, rq->sub);
        rest_answer_status(rs, r, 405, "MethodNotAllowed", msg, NULL, NULL);
        free(msg);
        return;
    }
    char *err = NULL;
    if (auth_check(rs->cfg.auth, u, rs->cfg.st, log ? "get" : "create", rq->k, rq->sub, rq->ns,
                   rq->name, NULL, &err) < 0) {
        rest_answer_status(rs, r, 403, "Forbidden", err ? err : "forbidden", rq->k, rq->name);
        free(err);
        return;
    }
    if (!rs->streams.tun) {
        rest_answer_status(rs, r, 503, "ServiceUnavailable", "no kubelet tunnel on this server",
                           NULL, NULL);
        return;
    }
    if (log)
        do_log(rs, r, u, rq, q);
    else
        do_exec(rs, r, u, rq, q, !strcmp(rq->sub, "attach"));
}
