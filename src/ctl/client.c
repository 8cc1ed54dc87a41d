/*
 * client: the connection, the config file, kubectl-style errors and the
 * resuming watch loop. See client.h.
 */
#include "config.h"
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "ctl.h"
#include "grpc.h"
#include "util.h"

static char *cfg_server, *cfg_token;
static int cfg_loaded;

static void load_config(void)
{
    if (cfg_loaded)
        return;
    cfg_loaded = 1;
    char *path = NULL;
    const char *env = getenv("CORACLE_CONFIG");
    if (env && *env)
        path = xstrdup(env);
    else if (getenv("HOME"))
        path = xasprintf("%s/.config/coracle/config", getenv("HOME"));
    if (!path)
        return;
    if (access(path, R_OK) == 0) {
        const struct cfg_opt opts[] = {
            {"server", CFG_STR, &cfg_server, "ADDR", "the apiserver"},
            {"token", CFG_STR, &cfg_token, "TOKEN", "bearer token"},
        };
        char *err = NULL;
        if (cfg_load(path, opts, ARRAY_SIZE(opts), &err) < 0) {
            fprintf(stderr, "error: %s\n", err);
            free(err);
            exit(1);
        }
    }
    free(path);
}

char *ctl_server_addr(void)
{
    if (ctl_g.server && *ctl_g.server)
        return xstrdup(ctl_g.server);
    const char *env = getenv("CORACLE_SERVER");
    if (env && *env)
        return xstrdup(env);
    load_config();
    if (cfg_server && *cfg_server)
        return xstrdup(cfg_server);
    return xstrdup(CTL_DEFAULT_SERVER);
}

int ctl_client_open(struct ctl_client *c)
{
    memset(c, 0, sizeof(*c));
    c->addr = ctl_server_addr();
    if (ctl_g.token && *ctl_g.token)
        c->token = xstrdup(ctl_g.token);
    else if (getenv("CORACLE_TOKEN") && *getenv("CORACLE_TOKEN"))
        c->token = xstrdup(getenv("CORACLE_TOKEN"));
    else {
        load_config();
        if (cfg_token && *cfg_token)
            c->token = xstrdup(cfg_token);
    }
    c->base = event_base_new();
    if (!c->base)
        fatal("event_base_new failed");
    struct gcl_opts o = {.connect_timeout_ms = 5000, .bearer_token = c->token};
    c->g = gcl_new(c->base, c->addr, &o);
    if (!c->g) {
        fprintf(stderr,
                "error: cannot use server address \"%s\": expected host:port or "
                "unix:/path (from --server, CORACLE_SERVER or ~/.config/coracle/config)\n",
                c->addr);
        ctl_client_close(c);
        return -1;
    }
    return 0;
}

void ctl_client_close(struct ctl_client *c)
{
    if (c->g)
        gcl_free(c->g);
    if (c->base)
        event_base_free(c->base);
    free(c->addr);
    free(c->token);
    memset(c, 0, sizeof(*c));
}

int ctl_call(struct ctl_client *c, const struct kind *k, const char *method,
             const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
             ProtobufCMessage **resp, char **errmsg)
{
    char *path = xasprintf("/%s/%s", k->service, method);
    *resp = NULL;
    *errmsg = NULL;
    int code = gcl_unary_sync(c->g, path, req, resp_desc, resp, errmsg);
    free(path);
    if (code != GRPC_OK && !*errmsg)
        *errmsg = xstrdup("");
    return code;
}

#define CTL_LIST_CHUNK 500

int ctl_list_all(struct ctl_client *c, const struct kind *k, const Coracle__V1__ListRequest *req,
                 ProtobufCMessage **resp, char **errmsg)
{
    Coracle__V1__ListRequest r = *req;
    Coracle__V1__PodList *all = NULL;
    char *token = NULL;
    int code;
    r.has_limit = 1;
    r.limit = CTL_LIST_CHUNK;
    *resp = NULL;
    for (;;) {
        ProtobufCMessage *page;
        r.continue_ = token;
        code = ctl_call(c, k, "List", &r.base, k->list_desc, &page, errmsg);
        free(token);
        token = NULL;
        if (code != GRPC_OK)
            break;
        /* every list is { ListMeta metadata = 1; repeated items = 2 } */
        Coracle__V1__PodList *l = (Coracle__V1__PodList *)page;
        if (l->metadata && l->metadata->continue_ && *l->metadata->continue_)
            token = xstrdup(l->metadata->continue_);
        if (!all)
            all = l;
        else {
            all->items =
                xrealloc(all->items, (all->n_items + l->n_items + 1) * sizeof(*all->items));
            memcpy(all->items + all->n_items, l->items, l->n_items * sizeof(*l->items));
            all->n_items += l->n_items;
            free(l->items);
            l->items = NULL;
            l->n_items = 0;
            protobuf_c_message_free_unpacked(page, NULL);
        }
        if (!token)
            break;
    }
    if (code != GRPC_OK) {
        if (all)
            protobuf_c_message_free_unpacked(&all->base, NULL);
        return code;
    }
    if (all->metadata && all->metadata->continue_) {
        free(all->metadata->continue_);
        all->metadata->continue_ = NULL;
    }
    *resp = &all->base;
    return GRPC_OK;
}

const char *ctl_reason(int code)
{
    switch (code) {
    case GRPC_NOT_FOUND:
        return "NotFound";
    case GRPC_ALREADY_EXISTS:
        return "AlreadyExists";
    case GRPC_ABORTED:
        return "Conflict";
    case GRPC_INVALID_ARGUMENT:
        return "Invalid";
    case GRPC_FAILED_PRECONDITION:
        return "BadRequest";
    case GRPC_PERMISSION_DENIED:
        return "Forbidden";
    case GRPC_UNAUTHENTICATED:
        return "Unauthorized";
    case GRPC_RESOURCE_EXHAUSTED:
        return "TooManyRequests";
    case GRPC_OUT_OF_RANGE:
        return "Expired";
    case GRPC_DEADLINE_EXCEEDED:
        return "Timeout";
    case GRPC_UNIMPLEMENTED:
        return "NotImplemented";
    case GRPC_INTERNAL:
        return "InternalError";
    case GRPC_UNAVAILABLE:
        return "ServiceUnavailable";
    default:
        return "Unknown";
    }
}

void ctl_print_error(const struct ctl_client *c, int code, const char *msg)
{
    const char *addr = c && c->addr ? c->addr : CTL_DEFAULT_SERVER;
    if (!msg)
        msg = "";
    if (code == GRPC_UNAVAILABLE && strstr(msg, "connect to ")) {
        if (strstr(msg, "refused"))
            fprintf(stderr,
                    "The connection to the server %s was refused - did you specify the right "
                    "host or port?\n",
                    addr);
        else
            fprintf(stderr,
                    "Unable to connect to the server %s: %s (check --server, CORACLE_SERVER or "
                    "~/.config/coracle/config)\n",
                    addr, msg);
        return;
    }
    if (code == GRPC_UNAVAILABLE && !strncmp(msg, "connection", 10)) {
        fprintf(stderr, "Unable to connect to the server %s: %s\n", addr, msg);
        return;
    }
    if (code == GRPC_UNAUTHENTICATED) {
        fprintf(stderr, "error: You must be logged in to the server (Unauthorized)%s%s\n",
                *msg ? ": " : "", msg);
        return;
    }
    fprintf(stderr, "Error from server (%s): %s\n", ctl_reason(code),
            *msg ? msg : grpc_code_name(code));
}

/* ------------------------------------------------------------ watch */

static void watch_start(struct ctl_watch *w);
static void watch_retry(struct ctl_watch *w);

static void list_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)call;
    struct ctl_watch *w = arg;
    if (w->list)
        protobuf_c_message_free_unpacked(w->list, NULL);
    w->list = protobuf_c_message_unpack(w->k->list_desc, NULL, len, msg);
}

static void watch_list(struct ctl_watch *w, const char *token);

/*
 * The end of one page of the (re)list: pages are gathered (kubectl's
 * chunking, so no single message grows with the cluster); after the last
 * one the items are handed over and the watch starts from the list's
 * revision.
 */
static void list_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    (void)call;
    struct ctl_watch *w = arg;
    ProtobufCMessage *resp = w->list;
    w->list = NULL;
    w->call = NULL;
    if (w->stop)
        goto stop;
    if (code == GRPC_OK && !resp) {
        code = GRPC_INTERNAL;
        message = "cannot decode the list";
    }
    if (code == GRPC_OUT_OF_RANGE && w->acc) {
        /* the continue token expired: list again from the start */
        protobuf_c_message_free_unpacked(w->acc, NULL);
        w->acc = NULL;
        watch_list(w, NULL);
        goto out;
    }
    if (code != GRPC_OK) {
        if (w->acc)
            protobuf_c_message_free_unpacked(w->acc, NULL);
        w->acc = NULL;
        if (code == GRPC_UNAVAILABLE && w->listed) {
            watch_retry(w);
            goto out;
        }
        ctl_print_error(w->c, code, message);
        w->rc = 1;
        goto stop;
    }
    /* every list is { ListMeta metadata = 1; repeated items = 2 } */
    Coracle__V1__PodList *l = (Coracle__V1__PodList *)resp;
    char *token = l->metadata && l->metadata->continue_ && *l->metadata->continue_
                      ? xstrdup(l->metadata->continue_)
                      : NULL;
    if (!w->acc) {
        w->acc = resp;
    } else {
        Coracle__V1__PodList *a = (Coracle__V1__PodList *)w->acc;
        a->items = xrealloc(a->items, (a->n_items + l->n_items + 1) * sizeof(*a->items));
        memcpy(a->items + a->n_items, l->items, l->n_items * sizeof(*l->items));
        a->n_items += l->n_items;
        free(l->items);
        l->items = NULL;
        l->n_items = 0;
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    resp = NULL;
    if (token) {
        watch_list(w, token);
        free(token);
        goto out;
    }
    resp = w->acc;
    w->acc = NULL;
    l = (Coracle__V1__PodList *)resp;
    free(w->rv);
    w->rv =
        xstrdup(l->metadata && l->metadata->resourceversion ? l->metadata->resourceversion : "0");
    w->listed = 1;
    w->backoff_ms = 0;
    if (w->on_list && w->on_list(w, resp, w->arg))
        goto stop;
    watch_start(w);
    goto out;
stop:
    w->stop = 1;
    event_base_loopbreak(w->c->base);
out:
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
}

#define CTL_WATCH_LIST_CHUNK 500

static void watch_list(struct ctl_watch *w, const char *token)
{
    Coracle__V1__ListRequest req = CORACLE__V1__LIST_REQUEST__INIT;
    req.namespace_ = (char *)w->namespace_;
    req.labelselector = (char *)w->label_selector;
    req.fieldselector = (char *)w->field_selector;
    req.has_limit = 1;
    req.limit = CTL_WATCH_LIST_CHUNK;
    req.continue_ = (char *)token;
    char *path = xasprintf("/%s/List", w->k->service);
    w->call = gcl_call(w->c->g, path, &req.base, list_msg, list_done, w, 0);
    free(path);
}

static void watch_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ctl_watch *w = arg;
    watch_start(w);
}

static void watch_retry(struct ctl_watch *w)
{
    if (w->stop) {
        event_base_loopbreak(w->c->base);
        return;
    }
    if (!w->timer)
        w->timer = evtimer_new(w->c->base, watch_retry_cb, w);
    struct timeval tv = {w->backoff_ms / 1000, (w->backoff_ms % 1000) * 1000};
    evtimer_add(w->timer, &tv);
    w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : 250;
    if (w->backoff_ms > 8000)
        w->backoff_ms = 8000;
}

static void watch_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)call;
    struct ctl_watch *w = arg;
    if (w->stop)
        return;
    ProtobufCMessage *m = protobuf_c_message_unpack(w->k->event_desc, NULL, len, msg);
    if (!m)
        return;
    w->backoff_ms = 0;
    /* every watch event is { type = 1; object = 2 } */
    Coracle__V1__PodWatchEvent *ev = (Coracle__V1__PodWatchEvent *)m;
    ProtobufCMessage *obj = (ProtobufCMessage *)ev->object;
    const Coracle__V1__ObjectMeta *md = obj ? kind_meta(obj) : NULL;
    if (md && md->resourceversion && *md->resourceversion) {
        free(w->rv);
        w->rv = xstrdup(md->resourceversion);
    }
    const char *type = ev->type ? ev->type : "";
    if (strcmp(type, "BOOKMARK") && strcmp(type, "ERROR") && obj &&
        w->on_event(w, type, obj, w->arg)) {
        /* ctl_watch_run cancels the call once the loop is out of this callback */
        w->stop = 1;
        event_base_loopbreak(w->c->base);
    }
    protobuf_c_message_free_unpacked(m, NULL);
}

static void watch_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    (void)call;
    struct ctl_watch *w = arg;
    w->call = NULL;
    if (w->stop) {
        event_base_loopbreak(w->c->base);
        return;
    }
    if (code == GRPC_OUT_OF_RANGE) {
        log_debug("watch from %s: %s; listing again", w->rv ? w->rv : "?", message);
        free(w->rv);
        w->rv = NULL;
        watch_start(w);
        return;
    }
    if (code == GRPC_OK || code == GRPC_UNAVAILABLE || code == GRPC_DEADLINE_EXCEEDED ||
        code == GRPC_CANCELLED || code == GRPC_INTERNAL) {
        log_debug("watch ended (%s: %s), resuming from %s", grpc_code_name(code), message,
                  w->rv ? w->rv : "a new list");
        watch_retry(w);
        return;
    }
    ctl_print_error(w->c, code, message);
    w->rc = 1;
    w->stop = 1;
    event_base_loopbreak(w->c->base);
}

static void watch_start(struct ctl_watch *w)
{
    if (!w->rv) {
        watch_list(w, NULL);
        return;
    }
    Coracle__V1__ListRequest req = CORACLE__V1__LIST_REQUEST__INIT;
    req.namespace_ = (char *)w->namespace_;
    req.labelselector = (char *)w->label_selector;
    req.fieldselector = (char *)w->field_selector;
    req.resourceversion = w->rv;
    req.has_allowwatchbookmarks = 1;
    req.allowwatchbookmarks = 1;
    char *path = xasprintf("/%s/Watch", w->k->service);
    w->call = gcl_call(w->c->g, path, &req.base, watch_msg, watch_done, w, 0);
    free(path);
}

int ctl_watch_run(struct ctl_watch *w, const char *start_rv)
{
    w->rv = start_rv ? xstrdup(start_rv) : NULL;
    w->stop = 0;
    w->rc = 0;
    w->backoff_ms = 0;
    w->listed = 0;
    w->list = NULL;
    w->acc = NULL;
    watch_start(w);
    if (!w->stop)
        event_base_dispatch(w->c->base);
    if (w->call)
        gcl_call_cancel(w->call);
    if (w->timer)
        event_free(w->timer);
    w->timer = NULL;
    if (w->acc)
        protobuf_c_message_free_unpacked(w->acc, NULL);
    w->acc = NULL;
    free(w->rv);
    w->rv = NULL;
    return w->rc;
}
