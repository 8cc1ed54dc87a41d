/*
 * coraclectl expose: kubectl expose's common case. A Service named after
 * the resource (or --name) selecting what it selects (a Deployment's or
 * ReplicaSet's matchLabels, a pod's labels, a Service's selector), on
 * --port, to --target-port (default: the port), --protocol and --type.
 */
#include "config.h"

#include "client.h"
#include "ctl.h"
#include "grpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char expose_help[] =
    "Take a deployment, replica set, pod or service and expose it as a new Service.\n"
    "\n"
    "Examples:\n"
    "  coraclectl expose deployment web --port=80 --target-port=8080\n"
    "  coraclectl expose rs web --port=80 --type=NodePort --name=web-np\n"
    "\n"
    "Options:\n"
    "      --name='': The name of the Service (default: the resource's).\n"
    "      --port='': The port the Service serves on. Required.\n"
    "      --protocol='TCP': TCP, UDP or SCTP.\n"
    "      --target-port='': The port (number or name) on the pods (default: --port).\n"
    "      --type='': ClusterIP (default), NodePort, LoadBalancer.\n"
    "\n"
    "Usage:\n"
    "  coraclectl expose (TYPE NAME | TYPE/NAME) --port=PORT [options]\n";

/* The selector the exposed object has, as a map's entries (borrowed from obj), or NULL. */
static Coracle__V1__ObjectMeta__LabelsEntry **selector_of(const struct kind *k,
                                                          const ProtobufCMessage *obj, size_t *n)
{
    const Coracle__V1__LabelSelector *ls = NULL;
    if (k == &kind_pod) {
        *n = kind_meta(obj)->n_labels;
        return kind_meta(obj)->labels;
    }
    if (k == &kind_service) {
        const Coracle__V1__ServiceSpec *sp = ((const Coracle__V1__Service *)obj)->spec;
        *n = sp ? sp->n_selector : 0;
        return sp ? (Coracle__V1__ObjectMeta__LabelsEntry **)sp->selector : NULL;
    }
    if (k == &kind_deployment && ((const Coracle__V1__Deployment *)obj)->spec)
        ls = ((const Coracle__V1__Deployment *)obj)->spec->selector;
    else if (k == &kind_replicaset && ((const Coracle__V1__ReplicaSet *)obj)->spec)
        ls = ((const Coracle__V1__ReplicaSet *)obj)->spec->selector;
    *n = ls ? ls->n_matchlabels : 0;
    return ls ? (Coracle__V1__ObjectMeta__LabelsEntry **)ls->matchlabels : NULL;
}

static int expose(struct ctl_client *c, const struct kind *k, const ProtobufCMessage *obj,
                  const char *name, long long port, const char *target, const char *proto,
                  const char *type)
{
    size_t nsel;
    Coracle__V1__ObjectMeta__LabelsEntry **sel = selector_of(k, obj, &nsel);
    if (!nsel) {
        fprintf(stderr,
                "error: couldn't retrieve selectors via --selector flag or introspection\n");
        return -1;
    }
    Coracle__V1__Service svc = CORACLE__V1__SERVICE__INIT;
    Coracle__V1__ObjectMeta m = CORACLE__V1__OBJECT_META__INIT;
    Coracle__V1__ServiceSpec sp = CORACLE__V1__SERVICE_SPEC__INIT;
    Coracle__V1__ServicePort p = CORACLE__V1__SERVICE_PORT__INIT, *pp[1] = {&p};
    Coracle__V1__IntOrString tp = CORACLE__V1__INT_OR_STRING__INIT;
    const Coracle__V1__ObjectMeta *om = kind_meta(obj);
    m.name = (char *)name;
    m.namespace_ = (char *)ctl_namespace();
    m.labels = om->labels;
    m.n_labels = om->n_labels;
    sp.selector = (Coracle__V1__ServiceSpec__SelectorEntry **)sel;
    sp.n_selector = nsel;
    sp.type = type && *type ? (char *)type : NULL;
    p.has_port = 1;
    p.port = (int32_t)port;
    p.protocol = (char *)proto;
    char *end = NULL;
    long t = target && *target ? strtol(target, &end, 10) : port;
    if (target && *target && *end) {
        tp.has_type = 1;
        tp.type = 1;
        tp.strval = (char *)target;
    } else {
        tp.has_intval = 1;
        tp.intval = (int32_t)t;
    }
    p.targetport = &tp;
    sp.ports = pp;
    sp.n_ports = 1;
    svc.metadata = &m;
    svc.spec = &sp;
    ProtobufCMessage *resp;
    char *err;
    int code = ctl_call(c, &kind_service, "Create", &svc.base, kind_service.desc, &resp, &err);
    if (code != GRPC_OK) {
        ctl_print_error(c, code, err);
        free(err);
        return -1;
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    printf("service/%s exposed\n", name);
    return 0;
}

int ctl_cmd_expose(int argc, char **argv)
{
    long long port = 0;
    bool port_set = false, help = false;
    const char *name = NULL, *target = NULL, *proto = "TCP", *type = NULL;
    struct ctl_flag flags[] = {
        {"port", 0, CTL_FLAG_INT, &port, &port_set},
        {"target-port", 0, CTL_FLAG_STR, &target, NULL},
        {"protocol", 0, CTL_FLAG_STR, &proto, NULL},
        {"type", 0, CTL_FLAG_STR, &type, NULL},
        {"name", 0, CTL_FLAG_STR, &name, NULL},
        {"help", 'h', CTL_FLAG_BOOL, &help, NULL},
    };
    struct ctl_strv pos = {0};
    int dd;
    if (ctl_parse_flags(argc, argv, flags, ARRAY_SIZE(flags), &pos, &dd) < 0)
        return 1;
    static const struct kind *const exposable[] = {&kind_deployment, &kind_replicaset, &kind_pod,
                                                   &kind_service, NULL};
    const struct kind *k;
    const char *obj_name;
    int rc = 1;
    if (help) {
        fputs(expose_help, stdout);
        rc = 0;
    } else if (ctl_target(&pos, "expose", exposable, &k, &obj_name) == 0) {
        struct ctl_client c;
        if (!port_set) {
            fprintf(stderr, "error: couldn't find port via --port flag or introspection\n");
        } else if (ctl_client_open(&c) == 0) {
            ProtobufCMessage *obj = ctl_get_obj(&c, k, obj_name);
            if (obj &&
                expose(&c, k, obj, name && *name ? name : obj_name, port, target, proto, type) == 0)
                rc = 0;
            if (obj)
                protobuf_c_message_free_unpacked(obj, NULL);
            ctl_client_close(&c);
        }
    }
    free(pos.v);
    return rc;
}
