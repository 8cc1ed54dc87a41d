/*
 * rest: the Kubernetes REST API, beside the gRPC one on the same port and
 * over the same store, List, watch hub, authentication and policy. It is
 * h2s's request handler (h2s_set_req_handler): the plain endpoints first
 * (/healthz, /readyz, /metrics: the apiserver's plain callback), then
 * discovery (/api, /api/v1, /apis, /apis/GROUP[/VERSION], /version, all
 * made from the kinds table) and the resources, for every kind alike:
 *   /api/v1/[namespaces/NS/]RESOURCE[/NAME[/SUBRESOURCE]]
 *   /apis/GROUP/VERSION/[namespaces/NS/]RESOURCE[/NAME[/SUBRESOURCE]]
 * Verbs served: get, list (labelSelector, fieldSelector, limit, continue)
 * and watch (watch=true; resourceVersion, allowWatchBookmarks,
 * timeoutSeconds, and WatchList's sendInitialEvents with
 * resourceVersionMatch=NotOlderThan), in JSON, in Kubernetes' protobuf
 * (kpb.h), or as meta.k8s.io/v1 Tables (columns.h), as the Accept header
 * negotiates (rest_query.c); and the writes (create, update, patch,
 * delete, deletecollection; pods/status, pods/binding, nodes/status)
 * through the gRPC API's pipeline (rest_write.c); pods/log, and pods/exec
 * and pods/attach over WebSocket or SPDY/3.1 (rest_connect.c), relayed
 * to the kubelets.
 * Errors are Kubernetes Status objects with reason and code. Loop thread
 * only.
 */
#ifndef CORACLE_REST_H
#define CORACLE_REST_H

#include <stdbool.h>
#include <stdio.h>

#include "auth.h"
#include "h2s.h"
#include "rpool.h"
#include "store.h"
#include "watch.h"

typedef struct rest rest_t;

struct rest_config {
    store_t *st;    /* borrowed, as the rest: they outlive the rest_t */
    rpool_t *reads; /* Lists too big for the loop */
    watch_hub_t *hub;
    auth_t *auth;
    /* answers r and returns true if its path is a plain endpoint (/healthz...) */
    bool (*plain)(h2s_req_t *r, void *arg);
    void *plain_arg;
    /* the write pipeline the gRPC API uses (api.h: api_authorize, api_admit,
     * api_submit); borrowed */
    struct api *api;
    /* serviceaccounts/NAME/token and the OpenID discovery documents (satoken.h; NULL: none) */
    struct satoken *sat;
    struct audit *audit; /* the audit log (audit.h), or NULL; borrowed */
};

rest_t *rest_new(const struct rest_config *cfg);
/* pods/log, pods/exec, pods/attach go through the kubelets' tunnels (without: 503). */
struct tun_hub;
struct rest_streams {
    struct tun_hub *tun;     /* borrowed: outlives the rest_t */
    struct event_base *base; /* the loop (timers) */
    int setup_timeout_s;     /* SPDY: the client's streams open within (0: 30) */
    int idle_timeout_s;      /* an exec/attach stream with no input this long closes (0: 4 h) */
};
void rest_set_streams(rest_t *rs, const struct rest_streams *st);
void rest_free(rest_t *rs);
/* Its counters in the Prometheus text format (for /metrics). */
void rest_metrics(const rest_t *rs, FILE *f);
/* The h2s request handler; arg is the rest_t. */
void rest_handle(h2s_req_t *r, void *arg);
/* 1 if r is long-running as Kubernetes counts it (a watch, logs, exec, attach, proxy): for
 * h2s_set_req_long_running, which keeps it out of the in-flight limits. */
int rest_long_running(const h2s_req_t *r);

#endif
