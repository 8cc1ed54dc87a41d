/*
 * cmd_delete: `coraclectl delete TYPE NAME...` / `delete -f FILE`, with
 * --grace-period, --force (grace 0) and --wait (default: wait until the
 * object is gone, through a watch from its current resourceVersion).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "ctl.h"
#include "grpc.h"
#include "output.h"
#include "kobj.h"

static const char delete_help[] =
    "Delete resources by file names, stdin, or by type and names.\n"
    "\n"
    "Examples:\n"
    "  coraclectl delete pod nginx\n"
    "  coraclectl delete -f pod.yaml\n"
    "  coraclectl delete pod nginx --grace-period=0 --force\n"
    "\n"
    "Options:\n"
    "  -f, --filename=[]: Files (or - for stdin) naming the objects to delete.\n"
    "      --all=false: Delete all the objects of the type in the namespace.\n"
    "      --cascade='background': What becomes of the objects it owns: \"background\" (deleted\n"
    "          after it), \"foreground\" (deleted before it) or \"orphan\" (left, unowned).\n"
    "      --force=false: Delete at once (grace period 0), without waiting for the kubelet.\n"
    "      --grace-period=-1: Seconds given to the pod to stop; -1 uses the pod's own.\n"
    "      --ignore-not-found=false: Treat \"not found\" as a successful delete.\n"
    "  -l, --selector='': Delete the objects matching this label selector.\n"
    "  -n, --namespace='': The namespace (default \"default\").\n"
    "      --wait=true: Wait until the objects are gone before returning.\n"
    "\n"
    "Usage:\n"
    "  coraclectl delete ([-f FILENAME] | TYPE [(NAME... | -l label | --all)]) [options]\n";

static int gone_on_event(struct ctl_watch *w, const char *type, ProtobufCMessage *obj, void *arg)
{
    const char *name = arg;
    const Coracle__V1__ObjectMeta *md = kind_meta(obj);
    return !strcmp(type, "DELETED") && md && md->name && !strcmp(md->name, name);
}

/* Waits until ns/name is gone. 0 when gone. */
static int wait_gone(struct ctl_client *c, const struct kind *k, const char *ns, const char *name)
{
    Coracle__V1__GetRequest req = CORACLE__V1__GET_REQUEST__INIT;
    req.namespace_ = (char *)ns;
    req.name = (char *)name;
    ProtobufCMessage *obj;
    char *err;
    int code = ctl_call(c, k, "Get", &req.base, k->desc, &obj, &err);
    if (code == GRPC_NOT_FOUND) {
        free(err);
        return 0;
    }
    if (code != GRPC_OK) {
        ctl_print_error(c, code, err);
        free(err);
        return 1;
    }
    const Coracle__V1__ObjectMeta *md = kind_meta(obj);
    char *rv = xstrdup(md && md->resourceversion ? md->resourceversion : "0");
    protobuf_c_message_free_unpacked(obj, NULL);
    char *fsel = xasprintf("metadata.name=%s", name);
    struct ctl_watch w = {.c = c,
                          .k = k,
                          .namespace_ = k->namespaced ? ns : NULL,
                          .field_selector = fsel,
                          .on_event = gone_on_event,
                          .arg = (void *)name};
    int rc = ctl_watch_run(&w, rv);
    free(fsel);
    free(rv);
    return rc;
}

/* How a delete treats what the object owns (--cascade, as kubectl sends it). */
struct delete_opts {
    long long grace;
    bool force, wait, ignore_not_found;
    const char *policy; /* propagationPolicy: Background, Orphan, Foreground */
};

static int delete_one(struct ctl_client *c, const struct kind *k, const char *ns, const char *name,
                      const struct delete_opts *o)
{
    long long grace = o->grace;
    bool force = o->force, wait = o->wait, ignore_not_found = o->ignore_not_found;
    Coracle__V1__DeleteRequest req = CORACLE__V1__DELETE_REQUEST__INIT;
    req.namespace_ = (char *)(k->namespaced ? ns : "");
    req.name = (char *)name;
    req.propagationpolicy = (char *)o->policy;
    if (grace >= 0) {
        req.has_graceperiodseconds = 1;
        req.graceperiodseconds = grace;
    }
    ProtobufCMessage *resp;
    char *err;
    int code = ctl_call(c, k, "Delete", &req.base, k->desc, &resp, &err);
    if (code == GRPC_NOT_FOUND && ignore_not_found) {
        free(err);
        return 0;
    }
    if (code != GRPC_OK) {
        ctl_print_error(c, code, err);
        free(err);
        return 1;
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    printf("%s \"%s\" %sdeleted\n", ctl_kind_label(k).s, name, force ? "force " : "");
    fflush(stdout);
    if (wait && grace != 0)
        return wait_gone(c, k, k->namespaced ? ns : "", name);
    return 0;
}

int ctl_cmd_delete(int argc, char **argv)
{
    struct ctl_strv files = {0}, pos;
    long long grace = -1;
    bool force = false, wait = true, ignore = false, all = false;
    const char *lsel = NULL, *cascade = "background";
    const struct ctl_flag flags[] = {
        {"cascade", 0, CTL_FLAG_STR, &cascade, NULL},
        {"filename", 'f', CTL_FLAG_LIST, &files, NULL},
        {"grace-period", 0, CTL_FLAG_INT, &grace, NULL},
        {"force", 0, CTL_FLAG_BOOL, &force, NULL},
        {"wait", 0, CTL_FLAG_BOOL, &wait, NULL},
        {"ignore-not-found", 0, CTL_FLAG_BOOL, &ignore, NULL},
        {"all", 0, CTL_FLAG_BOOL, &all, NULL},
        {"selector", 'l', CTL_FLAG_STR, &lsel, NULL},
    };
    ProtobufCMessage *list = NULL;
    const struct kind *k = NULL;
    const char **names = NULL;
    size_t nnames = 0;
    struct kobjs objs = {0};
    struct ctl_client c;
    int rc = 1;

    if (ctl_parse_flags(argc, argv, flags, ARRAY_SIZE(flags), &pos, NULL) < 0)
        goto out_free;
    if (ctl_g.help) {
        fputs(delete_help, stdout);
        rc = 0;
        goto out_free;
    }
    /* kubectl's values (and its deprecated true/false); it always sends a policy */
    static const char *const cascades[][2] = {{"background", "Background"},
                                              {"true", "Background"},
                                              {"orphan", "Orphan"},
                                              {"false", "Orphan"},
                                              {"foreground", "Foreground"}};
    const char *policy = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(cascades); i++)
        if (!strcmp(cascade, cascades[i][0]))
            policy = cascades[i][1];
    if (!policy) {
        fprintf(stderr,
                "error: invalid cascade value (%s). Must be \"background\", "
                "\"foreground\", or \"orphan\"\n",
                cascade);
        goto out_free;
    }
    if (force) {
        if (grace < 0)
            grace = 0;
        fprintf(stderr, "Warning: Immediate deletion does not wait for confirmation that the "
                        "running resource has been terminated. The resource may continue to run "
                        "on the cluster indefinitely.\n");
    }
    struct delete_opts dopts = {grace, force, wait, ignore, policy};
    if (files.n) {
        if (pos.n) {
            fprintf(stderr, "error: there is no need to specify a resource type as a separate "
                            "argument when passing arguments in resource/name form or with -f\n");
            goto out_free;
        }
        for (size_t i = 0; i < files.n; i++) {
            size_t len;
            char *buf = ctl_read_file(files.v[i], &len), *err;
            if (!buf) {
                fprintf(stderr, "error: the path \"%s\" cannot be read: %s\n", files.v[i],
                        strerror(errno));
                goto out_free;
            }
            int prc = kobj_parse(files.v[i], buf, len, &objs, &err);
            free(buf);
            if (prc < 0) {
                fprintf(stderr, "error: %s\n", err);
                free(err);
                goto out_free;
            }
        }
    } else {
        if (!pos.n) {
            fprintf(stderr, "error: You must provide one or more resources by argument or "
                            "filename.\n");
            goto out_free;
        }
        const char *slash_name;
        k = ctl_resolve(pos.v[0], &slash_name);
        if (!k)
            goto out_free;
        names = pos.v + 1;
        nnames = pos.n - 1;
        if (slash_name) {
            names = pos.v;
            names[0] = slash_name;
            nnames = pos.n;
        }
        if (nnames && (all || lsel)) {
            fprintf(stderr, "error: name cannot be provided when a selector or --all is "
                            "specified\n");
            goto out_free;
        }
        if (!nnames && !all && !lsel) {
            fprintf(stderr, "error: resource(s) were provided, but no name was specified\n");
            goto out_free;
        }
    }
    if (ctl_client_open(&c) < 0)
        goto out_free;
    if (k && !nnames) {
        /* --all / -l: delete what a list finds */
        if (ctl_list_names(&c, k, lsel, &list, &names, &nnames) < 0) {
            ctl_client_close(&c);
            goto out_free;
        }
    }
    rc = 0;
    for (size_t i = 0; i < nnames; i++)
        if (delete_one(&c, k, ctl_namespace(), names[i], &dopts))
            rc = 1;
    for (size_t i = 0; i < objs.n; i++) {
        const Coracle__V1__ObjectMeta *md = kind_meta(objs.v[i].msg);
        const char *ns = md && md->namespace_ && *md->namespace_ ? md->namespace_ : ctl_namespace();
        if (!md || !md->name) {
            fprintf(stderr, "error: %s: resource name may not be empty\n", objs.v[i].where);
            rc = 1;
            continue;
        }
        if (delete_one(&c, objs.v[i].kind, ns, md->name, &dopts))
            rc = 1;
    }
    ctl_client_close(&c);
out_free:
    if (list) {
        free(names);
        protobuf_c_message_free_unpacked(list, NULL);
    }
    kobjs_free(&objs);
    free(files.v);
    free(pos.v);
    return rc;
}
