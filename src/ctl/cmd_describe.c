/*
 * cmd_describe: `coraclectl describe KIND NAME...` for pods, nodes and the
 * workload kinds. Gets the object, the events about it (listed in its
 * namespace and filtered here on involvedObject), for nodes their lease
 * and pods, for workloads the pods they select (a Deployment: its
 * ReplicaSets), then prints kubectl's layout (describe.c).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "columns.h"
#include "ctl.h"
#include "describe.h"
#include "grpc.h"
#include "output.h"

static const char describe_help[] =
    "Show details of a specific resource, including the events about it.\n"
    "\n"
    "Examples:\n"
    "  coraclectl describe pod nginx\n"
    "  coraclectl describe po/nginx\n"
    "  coraclectl describe node n1\n"
    "  coraclectl describe deploy web\n"
    "\n"
    "Options:\n"
    "  -l, --selector='': Describe the objects matching this label selector (without NAME).\n"
    "  -n, --namespace='': The namespace (default \"default\").\n"
    "\n"
    "Usage:\n"
    "  coraclectl describe (pod|node|rs|deploy|ds|job|cj) [NAME...] [options]\n";

static ProtobufCMessage *list_sel(struct ctl_client *c, const struct kind *k, const char *ns,
                                  const char *lsel, const char *fsel);

/* Events whose involvedObject is kind/name (in ns; NULL = any). Returned array owns nothing. */
static Coracle__V1__Event **events_about(ProtobufCMessage *list, const char *kind, const char *ns,
                                         const char *name, const char *uid, size_t *n)
{
    size_t ni;
    ProtobufCMessage **items = ctl_list_items(list, &ni);
    Coracle__V1__Event **r = xcalloc(ni + 1, sizeof(*r));
    *n = 0;
    for (size_t i = 0; i < ni; i++) {
        Coracle__V1__Event *e = (Coracle__V1__Event *)items[i];
        const Coracle__V1__ObjectReference *io = e->involvedobject;
        if (!io || !io->name || strcmp(io->name, name) || !io->kind || strcmp(io->kind, kind))
            continue;
        if (ns && io->namespace_ && *io->namespace_ && strcmp(io->namespace_, ns))
            continue;
        if (uid && io->uid && *io->uid && strcmp(io->uid, uid))
            continue;
        r[(*n)++] = e;
    }
    return r;
}

static ProtobufCMessage *list_of(struct ctl_client *c, const struct kind *k, const char *ns,
                                 const char *fsel)
{
    return list_sel(c, k, ns, NULL, fsel);
}

static ProtobufCMessage *list_sel(struct ctl_client *c, const struct kind *k, const char *ns,
                                  const char *lsel, const char *fsel)
{
    Coracle__V1__ListRequest req = CORACLE__V1__LIST_REQUEST__INIT;
    req.namespace_ = (char *)(ns ? ns : "");
    req.labelselector = (char *)lsel;
    req.fieldselector = (char *)fsel;
    ProtobufCMessage *resp;
    char *err;
    if (ctl_list_all(c, k, &req, &resp, &err) != GRPC_OK) {
        free(err);
        return NULL;
    }
    return resp;
}

/* The pods a workload's selector selects, and a Deployment's ReplicaSets; then describe.c. */
static void describe_workload(struct ctl_client *c, struct buf *out, const struct kind *k,
                              ProtobufCMessage *obj, const char *ns, Coracle__V1__Event **evs,
                              size_t nev)
{
    const Coracle__V1__LabelSelector *sel =
        k == &kind_replicaset  ? ((Coracle__V1__ReplicaSet *)obj)->spec->selector
        : k == &kind_daemonset ? ((Coracle__V1__DaemonSet *)obj)->spec->selector
                               : NULL;
    ProtobufCMessage *pods = NULL, *rss = NULL;
    if (sel) {
        char *s = cols_label_selector(sel);
        if (*s) /* an empty one selects nothing here: no pods to count */
            pods = list_sel(c, &kind_pod, ns, s, NULL);
        free(s);
    }
    if (k == &kind_deployment)
        rss = list_of(c, &kind_replicaset, ns, NULL);
    size_t np = 0, nr = 0;
    ProtobufCMessage **pi = pods ? ctl_list_items(pods, &np) : NULL;
    ProtobufCMessage **ri = rss ? ctl_list_items(rss, &nr) : NULL;
    ctl_describe_workload(out, k, obj, (Coracle__V1__Pod *const *)pi, np,
                          (Coracle__V1__ReplicaSet *const *)ri, nr, evs, nev, now_ns());
    if (pods)
        protobuf_c_message_free_unpacked(pods, NULL);
    if (rss)
        protobuf_c_message_free_unpacked(rss, NULL);
}

/* What several describes in one run share: listed once, on first use. */
struct describe_cache {
    ProtobufCMessage *events, *pods;
    bool have_events, have_pods;
};

static int describe_one(struct ctl_client *c, const struct kind *k, const char *name,
                        struct describe_cache *dc)
{
    const char *ns = k->namespaced ? ctl_namespace() : "";
    Coracle__V1__GetRequest req = CORACLE__V1__GET_REQUEST__INIT;
    req.namespace_ = (char *)ns;
    req.name = (char *)name;
    ProtobufCMessage *obj;
    char *err;
    int code = ctl_call(c, k, "Get", &req.base, k->desc, &obj, &err);
    if (code != GRPC_OK) {
        ctl_print_error(c, code, err);
        free(err);
        return 1;
    }
    const Coracle__V1__ObjectMeta *md = kind_meta(obj);
    const char *uid = md ? md->uid : NULL;
    struct buf out = {0};
    if (k == &kind_role || k == &kind_clusterrole || k == &kind_rolebinding ||
        k == &kind_clusterrolebinding) {
        ctl_describe_rbac(&out, k, obj); /* no events, as kubectl's */
        fwrite(out.p, 1, out.len, stdout);
        buf_free(&out);
        protobuf_c_message_free_unpacked(obj, NULL);
        return 0;
    }
    size_t nev = 0;
    Coracle__V1__Event **evs = NULL;
    /* Node events live in "default", as kubectl records them: list them all. */
    if (!dc->have_events) {
        dc->events = list_of(c, &kind_event, k->namespaced ? ns : NULL, NULL);
        dc->have_events = true;
    }
    ProtobufCMessage *events = dc->events;
    if (events)
        evs = events_about(events, k->kind, k->namespaced ? ns : NULL, name, uid, &nev);
    if (k == &kind_pod) {
        ctl_describe_pod(&out, (Coracle__V1__Pod *)obj, evs, nev, now_ns());
    } else if (k != &kind_node) {
        describe_workload(c, &out, k, obj, ns, evs, nev);
    } else {
        if (!dc->have_pods) {
            dc->pods = list_of(c, &kind_pod, NULL, NULL);
            dc->have_pods = true;
        }
        ProtobufCMessage *lease = NULL, *pods = dc->pods;
        Coracle__V1__GetRequest lr = CORACLE__V1__GET_REQUEST__INIT;
        lr.namespace_ = (char *)"kube-node-lease";
        lr.name = (char *)name;
        char *lerr = NULL;
        if (ctl_call(c, &kind_lease, "Get", &lr.base, kind_lease.desc, &lease, &lerr) != GRPC_OK)
            lease = NULL;
        free(lerr);
        size_t np = 0, npods = 0;
        ProtobufCMessage **items = pods ? ctl_list_items(pods, &np) : NULL;
        Coracle__V1__Pod **mine = xcalloc(np + 1, sizeof(*mine));
        for (size_t i = 0; i < np; i++) {
            Coracle__V1__Pod *p = (Coracle__V1__Pod *)items[i];
            if (p->spec && p->spec->nodename && !strcmp(p->spec->nodename, name))
                mine[npods++] = p;
        }
        ctl_describe_node(&out, (Coracle__V1__Node *)obj, (Coracle__V1__Lease *)lease, mine, npods,
                          evs, nev, now_ns());
        free(mine);
        if (lease)
            protobuf_c_message_free_unpacked(lease, NULL);
    }
    fwrite(out.p, 1, out.len, stdout);
    buf_free(&out);
    free(evs);
    protobuf_c_message_free_unpacked(obj, NULL);
    return 0;
}

int ctl_cmd_describe(int argc, char **argv)
{
    const char *lsel = NULL;
    const struct ctl_flag flags[] = {
        {"selector", 'l', CTL_FLAG_STR, &lsel, NULL},
    };
    struct ctl_strv pos;
    struct ctl_client c;
    ProtobufCMessage *list = NULL;
    const char **names = NULL;
    size_t n = 0;
    int rc = 1;

    if (ctl_parse_flags(argc, argv, flags, ARRAY_SIZE(flags), &pos, NULL) < 0)
        return 1;
    if (ctl_g.help) {
        fputs(describe_help, stdout);
        free(pos.v);
        return 0;
    }
    if (!pos.n) {
        fprintf(stderr, "You must specify the type of resource to describe. Use \"coraclectl "
                        "describe --help\" for usage.\n");
        free(pos.v);
        return 1;
    }
    const char *slash_name;
    const struct kind *k = ctl_resolve(pos.v[0], &slash_name);
    if (!k)
        goto out_free;
    if (k != &kind_pod && k != &kind_node && k != &kind_replicaset && k != &kind_deployment &&
        k != &kind_daemonset && k != &kind_job && k != &kind_cronjob && k != &kind_role &&
        k != &kind_clusterrole && k != &kind_rolebinding && k != &kind_clusterrolebinding) {
        fprintf(stderr, "error: describe supports pods, nodes, replicasets, deployments, "
                        "daemonsets, jobs, cronjobs and the RBAC kinds\n");
        goto out_free;
    }
    names = pos.v + 1;
    n = pos.n - 1;
    if (slash_name) {
        names = pos.v;
        names[0] = slash_name;
        n = pos.n;
    }
    if (ctl_client_open(&c) < 0)
        goto out_free;
    if (!n) {
        /* no name: every object of the type (matching -l), as kubectl does */
        if (ctl_list_names(&c, k, lsel, &list, &names, &n) < 0) {
            ctl_client_close(&c);
            goto out_free;
        }
    }
    rc = 0;
    struct describe_cache dc = {0};
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputs("\n\n", stdout);
        if (describe_one(&c, k, names[i], &dc))
            rc = 1;
    }
    if (dc.events)
        protobuf_c_message_free_unpacked(dc.events, NULL);
    if (dc.pods)
        protobuf_c_message_free_unpacked(dc.pods, NULL);
    ctl_client_close(&c);
out_free:
    if (list) {
        free(names);
        protobuf_c_message_free_unpacked(list, NULL);
    }
    free(pos.v);
    return rc;
}
