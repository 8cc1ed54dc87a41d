/*
 * cni: the pod network through CNI plugins (Debian's
 * containernetworking-plugins in /usr/lib/cni: bridge + host-local +
 * loopback, or whatever the config names). With cni-conf-dir set, the first
 * *.conflist / *.conf there (in name order) is the network; ADD runs each
 * plugin in order inside the pod's network namespace (CNI_NETNS = the
 * bind-mounted ns file), passing prevResult along; the last result is saved
 * as <pod dir>/cni-result.json (the pod IP, also after a kubelet restart)
 * and DEL runs the plugins in reverse at teardown. Without a config the
 * network is bridgenet.c's built-in one (its config written under the root
 * dir), or loopback only (sandbox.c brings lo up). A plugin that declares
 * the capability portMappings (portmap) gets the pod's hostPorts as
 * runtimeConfig, as CRI runtimes pass them.
 */
#include "config.h"
#include "buf.h"
#include "json.h"
#include "klet.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CNI_PATH "/usr/lib/cni"

/* Serialises a parsed tree back to JSON (numbers keep their text). */
static void json_out(FILE *f, const json_t *v)
{
    switch (v->type) {
    case JSON_NULL:
        fputs("null", f);
        break;
    case JSON_FALSE:
        fputs("false", f);
        break;
    case JSON_TRUE:
        fputs("true", f);
        break;
    case JSON_NUMBER:
        fputs(v->str, f);
        break;
    case JSON_STRING:
        json_write_str(f, v->str);
        break;
    case JSON_ARRAY:
        fputc('[', f);
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                fputc(',', f);
            json_out(f, v->kids[i]);
        }
        fputc(']', f);
        break;
    case JSON_OBJECT:
        fputc('{', f);
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                fputc(',', f);
            json_write_str(f, v->keys[i]);
            fputc(':', f);
            json_out(f, v->kids[i]);
        }
        fputc('}', f);
        break;
    }
}

/* The config file: first *.conflist or *.conf in name order; malloc'd path or NULL. */
static char *cni_conf_file(const char *dir)
{
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, alphasort);
    char *found = NULL;
    for (int i = 0; i < n; i++) {
        const char *nm = ents[i]->d_name;
        size_t l = strlen(nm);
        if (!found &&
            ((l > 9 && !strcmp(nm + l - 9, ".conflist")) ||
             (l > 5 && !strcmp(nm + l - 5, ".conf")) || (l > 5 && !strcmp(nm + l - 5, ".json"))))
            found = xasprintf("%s/%s", dir, nm);
        free(ents[i]);
    }
    free(ents);
    return found;
}

/* Runs one plugin: stdin = conf, stdout -> *out. Returns 0 on exit status 0. */
static int cni_exec(const char *type, const char *cmd, const char *conf, const char *uid,
                    const char *netns, const char *args, char **out)
{
    int in[2], op[2];
    if (pipe2(in, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(op, O_CLOEXEC) < 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    char *path = xasprintf("%s/%s", CNI_PATH, type);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(op[1], 1);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        char e1[64], e2[256], e3[4096], e4[64], e5[64], e6[1024];
        snprintf(e1, sizeof e1, "CNI_COMMAND=%s", cmd);
        snprintf(e2, sizeof e2, "CNI_CONTAINERID=%s", uid);
        snprintf(e3, sizeof e3, "CNI_NETNS=%s", netns);
        snprintf(e4, sizeof e4, "CNI_IFNAME=eth0");
        snprintf(e5, sizeof e5, "CNI_PATH=%s", CNI_PATH);
        snprintf(e6, sizeof e6, "CNI_ARGS=%s", args);
        char *env[] = {e1, e2, e3, e4, e5, e6, "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
        char *argv[] = {path, NULL};
        execve(path, argv, env);
        _exit(127);
    }
    close(in[0]);
    close(op[1]);
    free(path);
    if (pid < 0) {
        close(in[1]);
        close(op[0]);
        return -1;
    }
    size_t len = strlen(conf);
    ssize_t w = write(in[1], conf, len);
    (void)w;
    close(in[1]);
    struct buf b = {0};
    for (;;) {
        ssize_t r = read(op[0], buf_reserve(&b, 4096), 4096);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        buf_commit(&b, (size_t)r);
    }
    close(op[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    *out = buf_take(&b);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Whether the plugin's "capabilities" has cap: true. */
static bool plugin_can(const json_t *plugin, const char *cap)
{
    const json_t *v = json_get(json_get(plugin, "capabilities"), cap);
    return v && v->type == JSON_TRUE;
}

/* The plugin's stdin: its own object plus name, cniVersion, prevResult and (for a plugin
 * with the portMappings capability) runtimeConfig with the pod's hostPorts (ports: a JSON
 * array, NULL for none). */
static char *plugin_conf(const json_t *plugin, const char *name, const char *version,
                         const char *prev, const char *ports)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fputc('{', f);
    int first = 1;
    for (size_t i = 0; i < plugin->n; i++) {
        if (!strcmp(plugin->keys[i], "name") || !strcmp(plugin->keys[i], "cniVersion") ||
            !strcmp(plugin->keys[i], "prevResult") || !strcmp(plugin->keys[i], "runtimeConfig"))
            continue;
        if (!first)
            fputc(',', f);
        json_write_str(f, plugin->keys[i]);
        fputc(':', f);
        json_out(f, plugin->kids[i]);
        first = 0;
    }
    fprintf(f, "%s\"name\":", first ? "" : ",");
    json_write_str(f, name);
    fputs(",\"cniVersion\":", f);
    json_write_str(f, version);
    if (prev && *prev)
        fprintf(f, ",\"prevResult\":%s", prev);
    if (ports && plugin_can(plugin, "portMappings"))
        fprintf(f, ",\"runtimeConfig\":{\"portMappings\":%s}", ports);
    fputc('}', f);
    fclose(f);
    return buf;
}

struct cni_net {
    json_t *root;
    const char *name, *version;
    const json_t **plugins;
    size_t n;
};

static int cni_load(const char *dir, struct cni_net *net, char **err)
{
    memset(net, 0, sizeof *net);
    char *file = cni_conf_file(dir);
    if (!file) {
        *err = xasprintf("no CNI network config (*.conflist, *.conf) in %s", dir);
        return -1;
    }
    char *perr = NULL;
    if (json_parse_file(file, NULL, &net->root, &perr) < 0) {
        *err = xasprintf("%s", perr ? perr : file);
        free(perr);
        free(file);
        return -1;
    }
    net->name = json_str(json_get(net->root, "name"));
    net->version = json_str(json_get(net->root, "cniVersion"));
    const json_t *pl = json_get(net->root, "plugins");
    if (json_is(pl, JSON_ARRAY)) {
        net->n = pl->n;
        net->plugins = xcalloc(pl->n ? pl->n : 1, sizeof *net->plugins);
        for (size_t i = 0; i < pl->n; i++)
            net->plugins[i] = pl->kids[i];
    } else {
        net->n = 1;
        net->plugins = xcalloc(1, sizeof *net->plugins);
        net->plugins[0] = net->root;
    }
    for (size_t i = 0; i < net->n; i++) {
        if (!json_str(json_get(net->plugins[i], "type"))) {
            *err = xasprintf("%s: plugin %zu has no \"type\"", file, i);
            free(file);
            json_free(net->root);
            free(net->plugins);
            return -1;
        }
    }
    if (!net->name)
        net->name = "coracle";
    if (!net->version)
        net->version = "1.0.0";
    free(file);
    return 0;
}

static char *result_ip(const char *result)
{
    json_t *j = NULL;
    if (json_parse(result, strlen(result), NULL, &j, NULL) < 0)
        return NULL;
    const char *a = json_str(json_get(json_at(json_get(j, "ips"), 0), "address"));
    if (!a) /* CNI 0.2.0 results */
        a = json_str(json_get(json_get(j, "ip4"), "ip"));
    char *ip = a ? xstrndup(a, strcspn(a, "/")) : NULL;
    json_free(j);
    return ip;
}

/* The text of <pod_dir>/<name> (malloc'd), or NULL. */
static char *read_pod_file(const char *pod_dir, const char *name)
{
    char *p = xasprintf("%s/%s", pod_dir, name);
    FILE *f = fopen(p, "r");
    free(p);
    if (!f)
        return NULL;
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return xstrdup(buf);
}

static void write_pod_file(const char *pod_dir, const char *name, const char *text)
{
    char *p = xasprintf("%s/%s", pod_dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    free(p);
}

char *klet_cni_ip(const char *pod_dir)
{
    char *res = read_pod_file(pod_dir, "cni-result.json");
    char *ip = res ? result_ip(res) : NULL;
    free(res);
    return ip;
}

/* The hostPorts of the pod's containers as CNI's portMappings (a JSON array), or NULL. */
static char *port_mappings(const Coracle__V1__Pod *pod)
{
    char *buf = NULL;
    size_t len = 0, n = 0;
    FILE *f = open_memstream(&buf, &len);
    fputc('[', f);
    for (size_t i = 0; pod->spec && i < pod->spec->n_containers; i++) {
        const Coracle__V1__Container *c = pod->spec->containers[i];
        for (size_t j = 0; j < c->n_ports; j++) {
            const Coracle__V1__ContainerPort *cp = c->ports[j];
            if (!cp->has_hostport || cp->hostport <= 0)
                continue;
            char proto[8] = "tcp";
            for (size_t l = 0; cp->protocol && cp->protocol[l] && l < sizeof(proto) - 1; l++)
                proto[l] = (char)(cp->protocol[l] | 0x20), proto[l + 1] = 0;
            fprintf(f, "%s{\"hostPort\":%d,\"containerPort\":%d,\"protocol\":", n++ ? "," : "",
                    cp->hostport, cp->containerport);
            json_write_str(f, proto);
            if (cp->hostip && *cp->hostip) {
                fputs(",\"hostIP\":", f);
                json_write_str(f, cp->hostip);
            }
            fputc('}', f);
        }
    }
    fputc(']', f);
    fclose(f);
    if (!n) {
        free(buf);
        return NULL;
    }
    return buf;
}

int klet_cni_add(struct klet *k, const char *pod_dir, const Coracle__V1__Pod *pod, char **ip,
                 char **err)
{
    struct cni_net net;
    const char *uid = pod->metadata->uid, *ns = pod->metadata->namespace_,
               *name = pod->metadata->name;
    if (cni_load(klet_cni_dir(k), &net, err) < 0)
        return -1;
    klet_bridgenet_before_add(k);
    char *ports = port_mappings(pod);
    char *netns = xasprintf("%s/ns/net", pod_dir);
    char *args = xasprintf("IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;"
                           "K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s",
                           ns, name, uid, uid);
    char *prev = NULL;
    int rc = 0;
    for (size_t i = 0; i < net.n && rc == 0; i++) {
        const char *type = json_str(json_get(net.plugins[i], "type"));
        char *conf = plugin_conf(net.plugins[i], net.name, net.version, prev, ports);
        char *out = NULL;
        if (cni_exec(type, "ADD", conf, uid, netns, args, &out) < 0) {
            json_t *e = NULL;
            const char *msg = NULL;
            if (out && json_parse(out, strlen(out), NULL, &e, NULL) == 0)
                msg = json_str(json_get(e, "msg"));
            *err = xasprintf("plugin type=\"%s\" failed (add): %s", type,
                             msg ? msg : (out && *out ? out : "no output"));
            json_free(e);
            free(out);
            rc = -1;
        } else {
            free(prev);
            prev = out;
        }
        free(conf);
    }
    if (rc == 0) {
        /* DEL needs the same portMappings to find the rules ADD made */
        if (ports)
            write_pod_file(pod_dir, "cni-ports.json", ports);
        write_pod_file(pod_dir, "cni-result.json", prev ? prev : "{}");
        *ip = prev ? result_ip(prev) : NULL;
    }
    free(prev);
    free(ports);
    free(netns);
    free(args);
    json_free(net.root);
    free(net.plugins);
    return rc;
}

void klet_cni_del(const struct klet *k, const char *pod_dir, const char *uid)
{
    char *rp = xasprintf("%s/cni-result.json", pod_dir);
    if (!klet_cni_dir(k) || access(rp, F_OK) < 0) {
        free(rp);
        return;
    }
    struct cni_net net;
    char *err = NULL;
    if (cni_load(klet_cni_dir(k), &net, &err) < 0) {
        log_warn("cni del %s: %s", uid, err);
        free(err);
        free(rp);
        return;
    }
    char *prev = read_pod_file(pod_dir, "cni-result.json");
    char *ports = read_pod_file(pod_dir, "cni-ports.json");
    char *netns = xasprintf("%s/ns/net", pod_dir);
    char *args = xasprintf("IgnoreUnknown=1;K8S_POD_INFRA_CONTAINER_ID=%s", uid);
    for (size_t i = net.n; i-- > 0;) {
        const char *type = json_str(json_get(net.plugins[i], "type"));
        char *conf = plugin_conf(net.plugins[i], net.name, net.version, prev, ports);
        char *out = NULL;
        if (cni_exec(type, "DEL", conf, uid, netns, args, &out) < 0)
            log_warn("cni del %s: plugin %s: %s", uid, type, out ? out : "");
        free(out);
        free(conf);
    }
    unlink(rp);
    free(rp);
    char *pp = xasprintf("%s/cni-ports.json", pod_dir);
    unlink(pp);
    free(pp);
    free(prev);
    free(ports);
    free(netns);
    free(args);
    json_free(net.root);
    free(net.plugins);
}
