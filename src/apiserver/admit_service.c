/*
 * admit_service: the admission of Services (v1) and EndpointSlices
 * (discovery.k8s.io/v1): SetDefaults_Service's defaults and the checks of
 * Kubernetes' ValidateService / ValidateServiceUpdate and
 * ValidateEndpointSlice, with their field paths and texts. The addresses a
 * Service is given (clusterIP, nodePorts) come later, from svcalloc.c.
 */
#include "admit_int.h"
#include "obj.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool str_is(const char *s, const char *v)
{
    return s && !strcmp(s, v);
}

static bool empty(const char *s)
{
    return !s || !*s;
}

/* ---- defaults ---- */

static void set_str(char **f, const char *v)
{
    if (empty(*f))
        obj_set_str(f, v);
}

static void default_ports(Coracle__V1__ServiceSpec *sp)
{
    for (size_t i = 0; i < sp->n_ports; i++) {
        Coracle__V1__ServicePort *p = sp->ports[i];
        set_str(&p->protocol, "TCP");
        Coracle__V1__IntOrString *t = p->targetport;
        bool unset = !t || (t->type == 1 ? empty(t->strval) : !t->has_intval || !t->intval);
        if (!unset)
            continue;
        if (!t) {
            t = p->targetport = xmalloc(sizeof(*t));
            coracle__v1__int_or_string__init(t);
        }
        obj_set_str(&t->strval, NULL);
        t->has_type = 0;
        t->type = 0;
        t->has_intval = 1;
        t->intval = p->port;
    }
}

/* A one-element string list, set when empty (clusterIPs, ipFamilies). */
static void set_list1(char ***v, size_t *n, const char *s)
{
    if (*n)
        return;
    *v = xmalloc(sizeof(**v));
    (*v)[0] = xstrdup(s);
    *n = 1;
}

void admit_service_defaults(Coracle__V1__Service *s)
{
    if (!s->spec) {
        s->spec = xmalloc(sizeof(*s->spec));
        coracle__v1__service_spec__init(s->spec);
    }
    Coracle__V1__ServiceSpec *sp = s->spec;
    set_str(&sp->type, "ClusterIP");
    set_str(&sp->sessionaffinity, "None");
    if (str_is(sp->sessionaffinity, "ClientIP")) {
        if (!sp->sessionaffinityconfig) {
            sp->sessionaffinityconfig = xmalloc(sizeof(*sp->sessionaffinityconfig));
            coracle__v1__session_affinity_config__init(sp->sessionaffinityconfig);
        }
        Coracle__V1__SessionAffinityConfig *c = sp->sessionaffinityconfig;
        if (!c->clientip) {
            c->clientip = xmalloc(sizeof(*c->clientip));
            coracle__v1__client_ipconfig__init(c->clientip);
        }
        if (!c->clientip->has_timeoutseconds) {
            c->clientip->has_timeoutseconds = 1;
            c->clientip->timeoutseconds = 10800;
        }
    }
    default_ports(sp);
    bool external_name = str_is(sp->type, "ExternalName");
    if ((str_is(sp->type, "NodePort") || str_is(sp->type, "LoadBalancer")))
        set_str(&sp->externaltrafficpolicy, "Cluster");
    if (str_is(sp->type, "LoadBalancer") && !sp->has_allocateloadbalancernodeports) {
        sp->has_allocateloadbalancernodeports = 1;
        sp->allocateloadbalancernodeports = 1;
    }
    if (external_name)
        return;
    set_str(&sp->internaltrafficpolicy, "Cluster");
    if (!empty(sp->clusterip))
        set_list1(&sp->clusterips, &sp->n_clusterips, sp->clusterip);
    else if (sp->n_clusterips && !empty(sp->clusterips[0]))
        obj_set_str(&sp->clusterip, sp->clusterips[0]);
    set_str(&sp->ipfamilypolicy, "SingleStack");
    set_list1(&sp->ipfamilies, &sp->n_ipfamilies, "IPv4");
}

void admit_endpointslice_defaults(Coracle__V1__EndpointSlice *s)
{
    for (size_t i = 0; i < s->n_ports; i++)
        set_str(&s->ports[i]->protocol, "TCP");
}

/* ---- validation ---- */

const char *admit_port_name_err(const char *s)
{
    size_t n = strlen(s);
    bool letter = false;
    if (n > 15)
        return "must be no more than 15 characters";
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)";
        letter |= s[i] >= 'a' && s[i] <= 'z';
    }
    if (!letter)
        return "must contain at least one letter (a-z)";
    if (strstr(s, "--"))
        return "must not contain consecutive hyphens";
    if (n && (s[0] == '-' || s[n - 1] == '-'))
        return "must not begin or end with a hyphen";
    return NULL;
}

static bool is_ipv4(const char *s)
{
    struct in_addr a;
    return s && inet_pton(AF_INET, s, &a) == 1;
}

static void check_target_port(struct errs *e, size_t i, const Coracle__V1__IntOrString *t)
{
    if (!t)
        return;
    if (t->type == 1) {
        const char *r = admit_port_name_err(t->strval ? t->strval : "");
        if (r)
            admit_err(e, "spec.ports[%zu].targetPort: Invalid value: \"%s\": %s", i,
                      t->strval ? t->strval : "", r);
    } else if (t->intval < 1 || t->intval > 65535) {
        admit_err(e,
                  "spec.ports[%zu].targetPort: Invalid value: %d: must be between 1 and 65535, "
                  "inclusive",
                  i, t->intval);
    }
}

static void check_service_port(struct errs *e, const Coracle__V1__ServiceSpec *sp, size_t i)
{
    const Coracle__V1__ServicePort *p = sp->ports[i];
    if (empty(p->name)) {
        if (sp->n_ports > 1)
            admit_err(e, "spec.ports[%zu].name: Required value", i);
    } else {
        const char *r = admit_dns1123_label(p->name);
        if (r)
            admit_err(e, "spec.ports[%zu].name: Invalid value: \"%s\": %s", i, p->name, r);
        for (size_t j = 0; j < i; j++)
            if (str_is(sp->ports[j]->name, p->name)) {
                admit_err(e, "spec.ports[%zu].name: Duplicate value: \"%s\"", i, p->name);
                break;
            }
    }
    if (p->port < 1 || p->port > 65535)
        admit_err(e,
                  "spec.ports[%zu].port: Invalid value: %d: must be between 1 and 65535, inclusive",
                  i, p->port);
    const char *pr = p->protocol ? p->protocol : "";
    if (!str_is(pr, "TCP") && !str_is(pr, "UDP") && !str_is(pr, "SCTP"))
        admit_err(
            e,
            "spec.ports[%zu].protocol: Unsupported value: \"%s\": supported values: \"SCTP\", "
            "\"TCP\", \"UDP\"",
            i, pr);
    check_target_port(e, i, p->targetport);
    if (p->has_nodeport && p->nodeport && (p->nodeport < 1 || p->nodeport > 65535))
        admit_err(e,
                  "spec.ports[%zu].nodePort: Invalid value: %d: must be between 1 and 65535, "
                  "inclusive",
                  i, p->nodeport);
    if (p->has_nodeport && p->nodeport && str_is(sp->type, "ClusterIP"))
        admit_err(e,
                  "spec.ports[%zu].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
                  i);
    for (size_t j = 0; j < i; j++)
        if (sp->ports[j]->port == p->port && str_is(sp->ports[j]->protocol, pr)) {
            admit_err(
                e,
                "spec.ports[%zu]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"%s\", "
                "AppProtocol:(*string)(nil), Port:%d, TargetPort:intstr.IntOrString{Type:0, "
                "IntVal:0, StrVal:\"\"}, NodePort:0}",
                i, pr, p->port);
            break;
        }
}

static void check_cluster_ips(struct errs *e, const Coracle__V1__ServiceSpec *sp)
{
    bool headless = str_is(sp->clusterip, "None");
    if (str_is(sp->type, "ExternalName")) {
        if (!empty(sp->clusterip) || sp->n_clusterips)
            admit_err(e, "spec.clusterIPs: Forbidden: may not be set for ExternalName services");
        return;
    }
    if (sp->n_clusterips && !str_is(sp->clusterips[0], sp->clusterip ? sp->clusterip : ""))
        admit_err(e,
                  "spec.clusterIPs[0]: Invalid value: \"%s\": must match `clusterIP` when provided",
                  sp->clusterips[0]);
    else if (!empty(sp->clusterip) && !headless && !is_ipv4(sp->clusterip))
        admit_err(e,
                  "spec.clusterIPs[0]: Invalid value: \"%s\": must be a valid IP address, (e.g. "
                  "10.9.8.7 or 2001:db8::ffff)",
                  sp->clusterip);
    if (headless && (str_is(sp->type, "NodePort") || str_is(sp->type, "LoadBalancer")))
        admit_err(e,
                  "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for %s "
                  "services",
                  sp->type);
    for (size_t i = 0; i < sp->n_ipfamilies; i++)
        if (!str_is(sp->ipfamilies[i], "IPv4"))
            admit_err(e,
                      "spec.ipFamilies[%zu]: Invalid value: \"%s\": not configured on this cluster",
                      i, sp->ipfamilies[i]);
}

static void check_policies(struct errs *e, const Coracle__V1__ServiceSpec *sp)
{
    const char *sa = sp->sessionaffinity ? sp->sessionaffinity : "";
    if (!str_is(sa, "None") && !str_is(sa, "ClientIP"))
        admit_err(
            e,
            "spec.sessionAffinity: Unsupported value: \"%s\": supported values: \"ClientIP\", "
            "\"None\"",
            sa);
    const Coracle__V1__SessionAffinityConfig *c = sp->sessionaffinityconfig;
    if (str_is(sa, "ClientIP") && c && c->clientip) {
        int32_t t = c->clientip->timeoutseconds;
        if (t <= 0 || t > 86400)
            admit_err(
                e,
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: %d: must be "
                "greater than 0 and less than 86400",
                t);
    }
    const char *etp = sp->externaltrafficpolicy;
    bool external = str_is(sp->type, "NodePort") || str_is(sp->type, "LoadBalancer");
    if (!empty(etp) && !external)
        admit_err(
            e,
            "spec.externalTrafficPolicy: Invalid value: \"%s\": may only be set when `type` is "
            "'NodePort' or 'LoadBalancer'",
            etp);
    else if (!empty(etp) && !str_is(etp, "Cluster") && !str_is(etp, "Local"))
        admit_err(e,
                  "spec.externalTrafficPolicy: Unsupported value: \"%s\": supported values: "
                  "\"Cluster\", \"Local\"",
                  etp);
    const char *itp = sp->internaltrafficpolicy;
    if (!empty(itp) && !str_is(itp, "Cluster") && !str_is(itp, "Local"))
        admit_err(e,
                  "spec.internalTrafficPolicy: Unsupported value: \"%s\": supported values: "
                  "\"Cluster\", \"Local\"",
                  itp);
}

static void check_external_name(struct errs *e, const Coracle__V1__ServiceSpec *sp)
{
    if (!str_is(sp->type, "ExternalName"))
        return;
    size_t n = sp->externalname ? strlen(sp->externalname) : 0;
    if (n && sp->externalname[n - 1] == '.')
        n--; /* a fully qualified name's trailing dot */
    if (!n) {
        admit_err(e, "spec.externalName: Required value");
        return;
    }
    char *cname = xstrndup(sp->externalname, n);
    const char *r = admit_dns1123_subdomain(cname);
    if (r)
        admit_err(e, "spec.externalName: Invalid value: \"%s\": %s", sp->externalname, r);
    free(cname);
}

void admit_service_validate(struct errs *e, const Coracle__V1__Service *s)
{
    const Coracle__V1__ServiceSpec *sp = s->spec;
    if (!sp)
        return;
    const char *type = sp->type ? sp->type : "";
    static const char *const types[] = {"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"};
    bool known = false;
    for (size_t i = 0; i < ARRAY_SIZE(types); i++)
        known |= !strcmp(type, types[i]);
    if (!known)
        admit_err(e,
                  "spec.type: Unsupported value: \"%s\": supported values: \"ClusterIP\", "
                  "\"ExternalName\", \"LoadBalancer\", \"NodePort\"",
                  type);
    if (!sp->n_ports && !str_is(sp->clusterip, "None") && !str_is(type, "ExternalName"))
        admit_err(e, "spec.ports: Required value");
    for (size_t i = 0; i < sp->n_ports; i++)
        check_service_port(e, sp, i);
    admit_label_errs(e, "spec.selector",
                     (Coracle__V1__ObjectMeta__LabelsEntry *const *)sp->selector, sp->n_selector);
    check_cluster_ips(e, sp);
    check_policies(e, sp);
    check_external_name(e, sp);
}

void admit_service_update(struct errs *e, const Coracle__V1__Service *old,
                          const Coracle__V1__Service *upd)
{
    const Coracle__V1__ServiceSpec *a = old->spec, *b = upd->spec;
    if (!a || !b || str_is(a->type, "ExternalName") || str_is(b->type, "ExternalName"))
        return;
    /* the address stays once given, only ExternalName <-> the others drops it */
    if (!empty(a->clusterip) && !str_is(a->clusterip, b->clusterip ? b->clusterip : ""))
        admit_err(e, "spec.clusterIPs[0]: Invalid value: \"%s\": field is immutable",
                  b->clusterip ? b->clusterip : "");
}

/* ---- EndpointSlice ---- */

void admit_endpointslice_validate(struct errs *e, const Coracle__V1__EndpointSlice *s)
{
    const char *at = s->addresstype ? s->addresstype : "";
    if (!*at)
        admit_err(e, "addressType: Required value");
    else if (!str_is(at, "IPv4") && !str_is(at, "IPv6") && !str_is(at, "FQDN"))
        admit_err(e,
                  "addressType: Unsupported value: \"%s\": supported values: \"FQDN\", \"IPv4\", "
                  "\"IPv6\"",
                  at);
    if (s->n_endpoints > 1000)
        admit_err(e, "endpoints: Too many: %zu: must have at most 1000 items", s->n_endpoints);
    for (size_t i = 0; i < s->n_endpoints; i++) {
        const Coracle__V1__Endpoint *ep = s->endpoints[i];
        if (!ep->n_addresses)
            admit_err(
                e, "endpoints[%zu].addresses: Required value: must contain at least 1 address", i);
        else if (ep->n_addresses > 100)
            admit_err(e, "endpoints[%zu].addresses: Too many: %zu: must have at most 100 items", i,
                      ep->n_addresses);
        for (size_t j = 0; j < ep->n_addresses && str_is(at, "IPv4"); j++)
            if (!is_ipv4(ep->addresses[j]))
                admit_err(e,
                          "endpoints[%zu].addresses[%zu]: Invalid value: \"%s\": must be a valid "
                          "IPv4 address",
                          i, j, ep->addresses[j]);
    }
    if (s->n_ports > 20000)
        admit_err(e, "ports: Too many: %zu: must have at most 20000 items", s->n_ports);
    for (size_t i = 0; i < s->n_ports; i++) {
        const Coracle__V1__EndpointPort *p = s->ports[i];
        if (p->has_port && (p->port < 1 || p->port > 65535))
            admit_err(e,
                      "ports[%zu].port: Invalid value: %d: must be between 1 and 65535, inclusive",
                      i, p->port);
    }
}

void admit_endpointslice_update(struct errs *e, const Coracle__V1__EndpointSlice *old,
                                const Coracle__V1__EndpointSlice *upd)
{
    if (!str_is(old->addresstype, upd->addresstype ? upd->addresstype : ""))
        admit_err(e, "addressType: Invalid value: \"%s\": field is immutable",
                  upd->addresstype ? upd->addresstype : "");
}
