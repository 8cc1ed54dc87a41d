/*
 * openapi_paths: the paths of the OpenAPI documents and their operations,
 * as kube-apiserver lists them: each kind's collection, item, status and
 * all-namespaces list, the pods' binding, log, exec and attach, with
 * Kubernetes' operationIds, parameters, bodies, answers and
 * x-kubernetes-action / x-kubernetes-group-version-kind. See openapi.h.
 */
#include "config.h"
#include "openapi_int.h"

#include <stdio.h>
#include <string.h>

/* Query parameters, as bits of an operation's set. */
enum {
    Q_ALLOW_WATCH_BOOKMARKS,
    Q_COMMAND,
    Q_CONTAINER,
    Q_CONTINUE,
    Q_DRY_RUN,
    Q_FIELD_MANAGER,
    Q_FIELD_SELECTOR,
    Q_FIELD_VALIDATION,
    Q_FOLLOW,
    Q_FORCE,
    Q_GRACE_PERIOD_SECONDS,
    Q_LABEL_SELECTOR,
    Q_LIMIT,
    Q_LIMIT_BYTES,
    Q_PREVIOUS,
    Q_PROPAGATION_POLICY,
    Q_RESOURCE_VERSION,
    Q_RESOURCE_VERSION_MATCH,
    Q_SEND_INITIAL_EVENTS,
    Q_SINCE_SECONDS,
    Q_SINCE_TIME,
    Q_STDERR,
    Q_STDIN,
    Q_STDOUT,
    Q_TAIL_LINES,
    Q_TIMEOUT_SECONDS,
    Q_TIMESTAMPS,
    Q_TTY,
    Q_WATCH,
    Q_N
};

static const struct {
    const char *name, *type, *desc;
} qparams[Q_N] = {
    [Q_ALLOW_WATCH_BOOKMARKS] = {"allowWatchBookmarks", "boolean",
                                 "allowWatchBookmarks requests watch events with type "
                                 "\"BOOKMARK\". Servers may send them at their discretion."},
    [Q_COMMAND] = {"command", "string",
                   "Command is the remote command to execute. argv array. Not executed within a "
                   "shell."},
    [Q_CONTAINER] = {"container", "string",
                     "The container for which to stream logs or run the command. Defaults to "
                     "only container if there is one container in the pod."},
    [Q_CONTINUE] = {"continue", "string",
                    "The continue option should be set when retrieving more results from the "
                    "server, with the value of the previous list's metadata.continue."},
    [Q_DRY_RUN] = {"dryRun", "string",
                   "When present, indicates that modifications should not be persisted. The only "
                   "valid value is: All."},
    [Q_FIELD_MANAGER] = {"fieldManager", "string",
                         "fieldManager is a name associated with the actor or entity that is "
                         "making these changes."},
    [Q_FIELD_SELECTOR] = {"fieldSelector", "string",
                          "A selector to restrict the list of returned objects by their fields. "
                          "Defaults to everything."},
    [Q_FIELD_VALIDATION] = {"fieldValidation", "string",
                            "fieldValidation instructs the server on how to handle objects in the "
                            "request containing unknown or duplicate fields: Ignore, Warn or "
                            "Strict."},
    [Q_FOLLOW] = {"follow", "boolean", "Follow the log stream of the pod. Defaults to false."},
    [Q_FORCE] = {"force", "boolean",
                 "Force is going to \"force\" Apply requests: re-acquire conflicting fields "
                 "owned by other people."},
    [Q_GRACE_PERIOD_SECONDS] = {"gracePeriodSeconds", "integer",
                                "The duration in seconds before the object should be deleted. "
                                "Zero means delete immediately."},
    [Q_LABEL_SELECTOR] = {"labelSelector", "string",
                          "A selector to restrict the list of returned objects by their labels. "
                          "Defaults to everything."},
    [Q_LIMIT] = {"limit", "integer",
                 "limit is a maximum number of responses to return for a list call; more are "
                 "fetched with continue."},
    [Q_LIMIT_BYTES] = {"limitBytes", "integer",
                       "If set, the number of bytes to read from the server before terminating "
                       "the log output."},
    [Q_PREVIOUS] = {"previous", "boolean",
                    "Return previous terminated container logs. Defaults to false."},
    [Q_PROPAGATION_POLICY] = {"propagationPolicy", "string",
                              "Whether and how garbage collection will be performed: Orphan, "
                              "Background or Foreground."},
    [Q_RESOURCE_VERSION] = {"resourceVersion", "string",
                            "resourceVersion sets a constraint on what resource versions a "
                            "request may be served from."},
    [Q_RESOURCE_VERSION_MATCH] = {"resourceVersionMatch", "string",
                                  "resourceVersionMatch determines how resourceVersion is applied "
                                  "to list calls."},
    [Q_SEND_INITIAL_EVENTS] = {"sendInitialEvents", "boolean",
                               "`sendInitialEvents=true` may be set together with `watch=true`: "
                               "the watch stream begins with synthetic events for the current "
                               "state."},
    [Q_SINCE_SECONDS] = {"sinceSeconds", "integer",
                         "A relative time in seconds before the current time from which to show "
                         "logs."},
    [Q_SINCE_TIME] = {"sinceTime", "string", "An RFC3339 timestamp from which to show logs."},
    [Q_STDERR] = {"stderr", "boolean", "Redirect the standard error stream of the container."},
    [Q_STDIN] = {"stdin", "boolean", "Redirect the standard input stream of the container."},
    [Q_STDOUT] = {"stdout", "boolean", "Redirect the standard output stream of the container."},
    [Q_TAIL_LINES] = {"tailLines", "integer",
                      "If set, the number of lines from the end of the logs to show."},
    [Q_TIMEOUT_SECONDS] = {"timeoutSeconds", "integer",
                           "Timeout for the list/watch call, regardless of any activity."},
    [Q_TIMESTAMPS] = {"timestamps", "boolean",
                      "If true, add an RFC3339 timestamp at the beginning of every line of log "
                      "output."},
    [Q_TTY] = {"tty", "boolean", "Allocate a terminal for this call. Defaults to false."},
    [Q_WATCH] = {"watch", "boolean",
                 "Watch for changes to the described resources and return them as a stream of "
                 "add, update, and remove notifications."},
};

#define Q(x) (1u << (x))
#define QS_LIST                                                                                    \
    (Q(Q_ALLOW_WATCH_BOOKMARKS) | Q(Q_CONTINUE) | Q(Q_FIELD_SELECTOR) | Q(Q_LABEL_SELECTOR) |      \
     Q(Q_LIMIT) | Q(Q_RESOURCE_VERSION) | Q(Q_RESOURCE_VERSION_MATCH) | Q(Q_SEND_INITIAL_EVENTS) | \
     Q(Q_TIMEOUT_SECONDS) | Q(Q_WATCH))
#define QS_WRITE (Q(Q_DRY_RUN) | Q(Q_FIELD_MANAGER) | Q(Q_FIELD_VALIDATION))
#define QS_DELETE (Q(Q_DRY_RUN) | Q(Q_GRACE_PERIOD_SECONDS) | Q(Q_PROPAGATION_POLICY))
#define QS_LOG                                                                                     \
    (Q(Q_CONTAINER) | Q(Q_FOLLOW) | Q(Q_LIMIT_BYTES) | Q(Q_PREVIOUS) | Q(Q_SINCE_SECONDS) |        \
     Q(Q_SINCE_TIME) | Q(Q_TAIL_LINES) | Q(Q_TIMESTAMPS))
#define QS_ATTACH (Q(Q_CONTAINER) | Q(Q_STDERR) | Q(Q_STDIN) | Q(Q_STDOUT) | Q(Q_TTY))

/* What an operation takes or answers. */
enum body { B_NONE, B_KIND, B_LIST, B_DELETE, B_PATCH, B_STATUS, B_BINDING, B_SCALE, B_TEXT };

/* Media types. */
enum media { M_OBJECT, M_LIST, M_PATCH, M_ANY, M_TEXT };
static const char *const media[][8] = {
    [M_OBJECT] = {"application/json", "application/yaml", "application/vnd.kubernetes.protobuf",
                  NULL},
    [M_LIST] = {"application/json", "application/yaml", "application/vnd.kubernetes.protobuf",
                "application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch",
                NULL},
    [M_PATCH] = {"application/json-patch+json", "application/merge-patch+json",
                 "application/strategic-merge-patch+json", "application/apply-patch+yaml", NULL},
    [M_ANY] = {"*/*", NULL},
    [M_TEXT] = {"text/plain", "application/json", "application/yaml",
                "application/vnd.kubernetes.protobuf", NULL},
};

struct op {
    const char *method; /* "get", "post", ... */
    const char *verb;   /* operationId: verb + group-version + infix + [Namespaced] + kind + sub */
    const char *infix;
    const char *action; /* x-kubernetes-action */
    const char *what;   /* the description; %s the kind */
    unsigned query;     /* Q() bits */
    enum body in, out;
    enum media consumes, produces;
};

static const struct op ops_collection[] = {
    {"get", "list", "", "list", "list or watch objects of kind %s", QS_LIST, B_NONE, B_LIST, M_ANY,
     M_LIST},
    {"post", "create", "", "post", "create a %s", QS_WRITE, B_KIND, B_KIND, M_ANY, M_OBJECT},
    {"delete", "delete", "Collection", "deletecollection", "delete collection of %s",
     QS_LIST | QS_DELETE, B_DELETE, B_STATUS, M_ANY, M_OBJECT},
    {NULL},
};
/* A virtual kind's one operation. */
static const struct op ops_create[] = {
    {"post", "create", "", "post", "create a %s", QS_WRITE, B_KIND, B_KIND, M_ANY, M_OBJECT},
    {NULL},
};
static const struct op ops_all_namespaces[] = {
    {"get", "list", "", "list", "list or watch objects of kind %s", QS_LIST, B_NONE, B_LIST, M_ANY,
     M_LIST},
    {NULL},
};
static const struct op ops_item[] = {
    {"get", "read", "", "get", "read the specified %s", 0, B_NONE, B_KIND, M_ANY, M_OBJECT},
    {"put", "replace", "", "put", "replace the specified %s", QS_WRITE, B_KIND, B_KIND, M_ANY,
     M_OBJECT},
    {"patch", "patch", "", "patch", "partially update the specified %s", QS_WRITE | Q(Q_FORCE),
     B_PATCH, B_KIND, M_PATCH, M_OBJECT},
    {"delete", "delete", "", "delete", "delete a %s", QS_DELETE, B_DELETE, B_KIND, M_ANY, M_OBJECT},
    {NULL},
};
static const struct op ops_status[] = {
    {"get", "read", "", "get", "read status of the specified %s", 0, B_NONE, B_KIND, M_ANY,
     M_OBJECT},
    {"put", "replace", "", "put", "replace status of the specified %s", QS_WRITE, B_KIND, B_KIND,
     M_ANY, M_OBJECT},
    {"patch", "patch", "", "patch", "partially update status of the specified %s",
     QS_WRITE | Q(Q_FORCE), B_PATCH, B_KIND, M_PATCH, M_OBJECT},
    {NULL},
};
static const struct op ops_scale[] = {
    {"get", "read", "", "get", "read scale of the specified %s", 0, B_NONE, B_SCALE, M_ANY,
     M_OBJECT},
    {"put", "replace", "", "put", "replace scale of the specified %s", QS_WRITE, B_SCALE, B_SCALE,
     M_ANY, M_OBJECT},
    {"patch", "patch", "", "patch", "partially update scale of the specified %s",
     QS_WRITE | Q(Q_FORCE), B_PATCH, B_SCALE, M_PATCH, M_OBJECT},
    {NULL},
};
static const struct op ops_binding[] = {
    {"post", "create", "", "post", "create binding of a %s", QS_WRITE, B_BINDING, B_BINDING, M_ANY,
     M_OBJECT},
    {NULL},
};
static const struct op ops_log[] = {
    {"get", "read", "", "get", "read log of the specified %s", QS_LOG, B_NONE, B_TEXT, M_ANY,
     M_TEXT},
    {NULL},
};
static const struct op ops_exec[] = {
    {"get", "connect", "Get", "connect", "connect GET requests to exec of %s",
     QS_ATTACH | Q(Q_COMMAND), B_NONE, B_TEXT, M_ANY, M_ANY},
    {"post", "connect", "Post", "connect", "connect POST requests to exec of %s",
     QS_ATTACH | Q(Q_COMMAND), B_NONE, B_TEXT, M_ANY, M_ANY},
    {NULL},
};
static const struct op ops_attach[] = {
    {"get", "connect", "Get", "connect", "connect GET requests to attach of %s", QS_ATTACH, B_NONE,
     B_TEXT, M_ANY, M_ANY},
    {"post", "connect", "Post", "connect", "connect POST requests to attach of %s", QS_ATTACH,
     B_NONE, B_TEXT, M_ANY, M_ANY},
    {NULL},
};

/* What one path is: its kind, its operations, the subresource and the kind its GVK names. */
struct path {
    const struct kind *k;
    const struct op *ops;
    bool ns;         /* under /namespaces/{namespace} */
    bool all;        /* the all-namespaces list */
    bool name;       /* ends in /{name} */
    const char *sub; /* subresource or NULL */
    const char *gvk; /* the kind its operations are tagged with (Binding, PodExecOptions...) */
    const char *gvk_version; /* that kind's group-version if not the path's kind's */
};

/* "CoreV1", "CoordinationV1": operationIds' group-version. */
/*
 * The group's name as Kubernetes' operation ids and tags spell it: its
 * words before ".k8s.io" joined in camel case ("rbacAuthorization" for
 * rbac.authorization.k8s.io, "coordination", "core" for the core group).
 */
static void group_camel(const char *av, char *buf, size_t n)
{
    const char *slash = strchr(av, '/');
    const char *g = slash ? av : "core";
    size_t gl = slash ? (size_t)(slash - av) : 4;
    const char *k8s = memmem(g, gl, ".k8s.io", 7);
    if (k8s)
        gl = (size_t)(k8s - g);
    size_t o = 0;
    for (size_t i = 0; i < gl && o + 1 < n; i++) {
        if (g[i] == '.' && i + 1 < gl && g[i + 1] >= 'a' && g[i + 1] <= 'z') {
            buf[o++] = (char)(g[++i] - 'a' + 'A');
            continue;
        }
        buf[o++] = g[i];
    }
    buf[o] = '\0';
}

/* "CoreV1", "AppsV1", "RbacAuthorizationV1". */
static void gv_camel(const char *av, char *buf, size_t n)
{
    char g[64];
    group_camel(av, g, sizeof(g));
    const char *slash = strchr(av, '/');
    const char *v = slash ? slash + 1 : av;
    g[0] = (char)(g[0] - 'a' + 'A');
    size_t gl = strlen(g);
    if (gl + 1 < n) {
        memcpy(buf, g, gl);
        buf[gl] = (char)(v[0] - 'a' + 'A');
        snprintf(buf + gl + 1, n - gl - 1, "%s", v + 1);
    }
}

/* A parameter (query, or path when in is "path"). */
static void parameter(struct gen *g, const char *name, const char *in, const char *type,
                      const char *desc)
{
    w_open(g, NULL, '{');
    w_str(g, "name", name);
    w_str(g, "in", in);
    w_str(g, "description", desc);
    if (!strcmp(in, "path"))
        w_raw(g, "required", "true");
    if (g->v == V2) {
        w_str(g, "type", type);
        w_raw(g, "uniqueItems", "true");
    } else {
        w_open(g, "schema", '{');
        w_str(g, "type", type);
        w_raw(g, "uniqueItems", "true");
        w_close(g, '}');
    }
    w_close(g, '}');
}

/* The schema of an operation's body or answer. */
static void body_schema(struct gen *g, const char *key, const struct path *p, enum body b)
{
    switch (b) {
    case B_KIND:
        w_ref(g, key, p->k->desc);
        break;
    case B_LIST:
        w_ref(g, key, p->k->list_desc);
        break;
    case B_BINDING:
        w_ref(g, key, &coracle__v1__binding__descriptor);
        break;
    case B_SCALE:
        w_ref(g, key, &coracle__v1__scale__descriptor);
        break;
    case B_DELETE:
    case B_PATCH:
    case B_STATUS:
        w_open(g, key, '{');
        w_ref_member(g, b == B_DELETE  ? META ".DeleteOptions"
                        : b == B_PATCH ? META ".Patch"
                                       : META ".Status");
        w_close(g, '}');
        break;
    default:
        w_open(g, key, '{');
        w_str(g, "type", "string");
        w_close(g, '}');
        break;
    }
}

/* OpenAPI 3.0's content map: the schema once a media type. */
static void content(struct gen *g, const struct path *p, enum body b, enum media m)
{
    w_open(g, "content", '{');
    for (const char *const *t = media[m]; *t; t++) {
        w_open(g, *t, '{');
        body_schema(g, "schema", p, b);
        w_close(g, '}');
    }
    w_close(g, '}');
}

/* The HTTP statuses an operation answers with its object, as Kubernetes lists them. */
static const char *const *response_codes(const struct op *o)
{
    static const char *const ok[] = {"200", NULL}, *const made[] = {"200", "201", "202", NULL},
                             *const put[] = {"200", "201", NULL},
                             *const del[] = {"200", "202", NULL};
    if (o->out == B_TEXT)
        return ok;
    if (!strcmp(o->method, "post"))
        return made;
    if (!strcmp(o->method, "put") || !strcmp(o->method, "patch"))
        return put;
    return !strcmp(o->action, "delete") ? del : ok;
}

static void responses(struct gen *g, const struct path *p, const struct op *o)
{
    w_open(g, "responses", '{');
    for (const char *const *c = response_codes(o); *c; c++) {
        w_open(g, *c, '{');
        w_str(g, "description",
              !strcmp(*c, "200")   ? "OK"
              : !strcmp(*c, "201") ? "Created"
                                   : "Accepted");
        if (g->v == V2)
            body_schema(g, "schema", p, o->out);
        else
            content(g, p, o->out, o->produces);
        w_close(g, '}');
    }
    w_open(g, "401", '{');
    w_str(g, "description", "Unauthorized");
    w_close(g, '}');
    w_close(g, '}');
}

/*
 * An operation's operationId and tag as Kubernetes spells them:
 * "readCoreV1NamespacedPodStatus", "core_v1"; "coordination_v1".
 */
static void operation_names(const struct path *p, const struct op *o, char *id, size_t idn,
                            char *tag, size_t tagn)
{
    const struct kind *k = p->k;
    char gvc[64], sub[32] = "";
    gv_camel(k->api_version, gvc, sizeof(gvc));
    if (p->sub)
        snprintf(sub, sizeof(sub), "%c%s", p->sub[0] - 'a' + 'A', p->sub + 1);
    snprintf(id, idn, "%s%s%s%s%s%s%s", o->verb, gvc, o->infix, p->ns ? "Namespaced" : "", k->kind,
             sub, p->all ? "ForAllNamespaces" : "");
    const char *slash = strchr(k->api_version, '/');
    group_camel(k->api_version, tag, tagn);
    size_t tl = strlen(tag);
    snprintf(tag + tl, tagn - tl, "_%s", slash ? slash + 1 : k->api_version);
}

static void operation(struct gen *g, const struct path *p, const struct op *o)
{
    char desc[128], id[160], tag[64];
    const struct kind *k = p->k;
    snprintf(desc, sizeof(desc), o->what, k->kind);
    operation_names(p, o, id, sizeof(id), tag, sizeof(tag));
    w_open(g, o->method, '{');
    w_open(g, "tags", '[');
    w_str(g, NULL, tag);
    w_close(g, ']');
    w_str(g, "description", desc);
    w_str(g, "operationId", id);
    if (g->v == V2) {
        static const char *const https[] = {"https", NULL};
        w_strs(g, "consumes", media[o->consumes]);
        w_strs(g, "produces", media[o->produces]);
        w_strs(g, "schemes", https);
    }
    w_open(g, "parameters", '[');
    if (o->in != B_NONE && g->v == V2) {
        w_open(g, NULL, '{');
        w_str(g, "name", "body");
        w_str(g, "in", "body");
        w_raw(g, "required", o->in == B_DELETE ? "false" : "true");
        body_schema(g, "schema", p, o->in);
        w_close(g, '}');
    }
    for (int q = 0; q < Q_N; q++)
        if (o->query & Q(q))
            parameter(g, qparams[q].name, "query", qparams[q].type, qparams[q].desc);
    w_close(g, ']');
    if (o->in != B_NONE && g->v == V3) {
        w_open(g, "requestBody", '{');
        content(g, p, o->in, o->consumes);
        w_raw(g, "required", o->in == B_DELETE ? "false" : "true");
        w_close(g, '}');
    }
    responses(g, p, o);
    w_str(g, "x-kubernetes-action", o->action);
    w_gvk(g, "x-kubernetes-group-version-kind", p->gvk_version ? p->gvk_version : k->api_version,
          p->gvk ? p->gvk : k->kind);
    w_close(g, '}');
}

static void path_item(struct gen *g, const struct path *p)
{
    const struct kind *k = p->k;
    const char *slash = strchr(k->api_version, '/');
    char key[256];
    snprintf(key, sizeof(key), "/%s/%s%s/%s%s%s%s", slash ? "apis" : "api", k->api_version,
             p->ns ? "/namespaces/{namespace}" : "", k->resource, p->name ? "/{name}" : "",
             p->sub ? "/" : "", p->sub ? p->sub : "");
    w_open(g, key, '{');
    for (const struct op *o = p->ops; o->method; o++)
        operation(g, p, o);
    w_open(g, "parameters", '[');
    if (p->name)
        parameter(g, "name", "path", "string", "name of the object");
    if (p->ns)
        parameter(g, "namespace", "path", "string",
                  "object name and auth scope, such as for teams and projects");
    parameter(g, "pretty", "query", "string", "If 'true', then the output is pretty printed.");
    w_close(g, ']');
    w_close(g, '}');
}

void oapi_paths(struct gen *g, const char *gv)
{
    w_open(g, "paths", '{');
    for (size_t i = 0; kinds_all[i]; i++) {
        const struct kind *k = kinds_all[i];
        if (gv && strcmp(k->api_version, gv))
            continue;
        bool ns = k->namespaced;
        if (kind_virtual(k)) {
            path_item(g, &(struct path){k, ops_create, ns, false, false, NULL, NULL, NULL});
            continue;
        }
        path_item(g, &(struct path){k, ops_collection, ns, false, false, NULL, NULL, NULL});
        path_item(g, &(struct path){k, ops_item, ns, false, true, NULL, NULL, NULL});
        if (oapi_has_status(k))
            path_item(g, &(struct path){k, ops_status, ns, false, true, "status", NULL, NULL});
        for (const struct oapi_sub *s = oapi_subs; s->resource; s++) {
            if (strcmp(s->resource, k->resource))
                continue;
            const struct op *ops = !strcmp(s->name, "binding") ? ops_binding
                                   : !strcmp(s->name, "log")   ? ops_log
                                   : !strcmp(s->name, "exec")  ? ops_exec
                                   : !strcmp(s->name, "scale") ? ops_scale
                                                               : ops_attach;
            path_item(g, &(struct path){k, ops, ns, false, true, s->name, s->kind, s->api_version});
        }
        if (ns)
            path_item(g,
                      &(struct path){k, ops_all_namespaces, false, true, false, NULL, NULL, NULL});
    }
    w_close(g, '}');
}
