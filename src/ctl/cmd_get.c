/*
 * cmd_get: `coraclectl get TYPE [NAME...]`: tables as kubectl prints them,
 * -o wide|yaml|json|name|jsonpath=|custom-columns=, selectors, and -w: list,
 * then one row (or one object) per change,
 * resuming across reconnects from the last resourceVersion seen.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "ctl.h"
#include "grpc.h"
#include "output.h"
#include "tls.h"
#include "kobj.h"

static const char get_help[] =
    "Display one or many resources.\n"
    "\n"
    "Resource types: pods (po), nodes (no), events (ev), leases, namespaces (ns),\n"
    "configmaps (cm), secrets, serviceaccounts (sa), replicasets (rs), deployments\n"
    "(deploy), daemonsets (ds), jobs, cronjobs (cj); several as TYPE,TYPE (get deploy,rs).\n"
    "\n"
    "Examples:\n"
    "  # List all pods in ps output format\n"
    "  coraclectl get pods\n"
    "\n"
    "  # List a single pod in YAML\n"
    "  coraclectl get pod nginx -o yaml\n"
    "\n"
    "  # Watch pods in all namespaces\n"
    "  coraclectl get po -A -w\n"
    "\n"
    "  # Each pod's name and IP, one a line\n"
    "  coraclectl get pods -o jsonpath='{range .items[*]}{.metadata.name}{\"\\t\"}"
    "{.status.podIP}{\"\\n\"}{end}'\n"
    "\n"
    "  # Pods with the node each runs on\n"
    "  coraclectl get po -o custom-columns=NAME:.metadata.name,NODE:.spec.nodeName\n"
    "\n"
    "Options:\n"
    "  -A, --all-namespaces=false: List the requested object(s) across all namespaces.\n"
    "      --allow-missing-template-keys=true: Ignore missing keys in jsonpath templates.\n"
    "      --field-selector='': Selector (field query) to filter on, e.g. spec.nodeName=n1.\n"
    "  -l, --selector='': Selector (label query) to filter on, e.g. -l app=web,tier!=db.\n"
    "  -n, --namespace='': The namespace (default \"default\").\n"
    "      --no-headers=false: Don't print headers.\n"
    "      --show-labels=false: Print all labels as the last column.\n"
    "  -o, --output='': Output format: wide, yaml, json, name, jsonpath=TEMPLATE,\n"
    "      jsonpath-as-json=TEMPLATE, jsonpath-file=FILE, custom-columns=HEADER:EXPR,...\n"
    "  -w, --watch=false: After listing, watch for changes.\n"
    "      --watch-only=false: Watch for changes, without listing first.\n"
    "      --raw='': Raw URI to GET from the server, e.g. /metrics, /healthz, /readyz.\n"
    "\n"
    "Usage:\n"
    "  coraclectl get TYPE[/NAME] [NAME...] [options]\n"
    "  coraclectl get TYPE,TYPE... [options]\n"
    "  coraclectl get --raw /metrics\n";

struct get_state {
    const struct kind *k;
    const struct ctl_output *out;
    struct ctl_print_opts po;
    struct ctl_tw tw; /* remembers widths across watch rows */
    bool header_done, print_list, failed;
    const char *only_name;
    size_t nyaml;
};

/*
 * Watch output, one object at a time as kubectl prints it: rows of one
 * table (its own or custom-columns), or each object in yaml/json/jsonpath.
 * Returns 0, or -1 if a template failed (error printed).
 */
static int get_print_rows(struct get_state *s, ProtobufCMessage *const *objs, size_t n)
{
    enum ctl_out fmt = s->out->fmt;
    int rc = 0;
    if (fmt == CTL_OUT_TABLE || fmt == CTL_OUT_WIDE || fmt == CTL_OUT_COLUMNS) {
        struct buf out = {0};
        s->po.wide = fmt == CTL_OUT_WIDE;
        if (!s->header_done && n) {
            if (fmt != CTL_OUT_COLUMNS)
                ctl_print_header(&s->tw, s->k, &s->po);
            else if (!s->po.no_headers)
                ctl_print_columns_header(&s->tw, s->out);
            s->header_done = true;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (fmt == CTL_OUT_COLUMNS)
                rc = ctl_print_columns_row(&s->tw, s->k, objs[i], s->out);
            else
                ctl_print_row(&s->tw, s->k, objs[i], &s->po);
        }
        ctl_tw_flush(&s->tw, &out);
        if (out.len)
            fwrite(out.p, 1, out.len, stdout);
        buf_free(&out);
        fflush(stdout);
        return rc;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (fmt == CTL_OUT_YAML && s->nyaml++)
            fputs("---\n", stdout);
        rc = ctl_print_objs(s->k, &objs[i], 1, false, s->out, &s->po);
    }
    return rc;
}

static int get_on_list(struct ctl_watch *w, ProtobufCMessage *list, void *arg)
{
    struct get_state *s = arg;
    if (!s->print_list) {
        s->print_list = true; /* --watch-only: a re-list after OUT_OF_RANGE prints */
        return 0;
    }
    size_t n;
    ProtobufCMessage **items = ctl_list_items(list, &n);
    ProtobufCMessage **keep = xcalloc(n + 1, sizeof(*keep));
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const Coracle__V1__ObjectMeta *md = kind_meta(items[i]);
        if (!s->only_name || (md && md->name && !strcmp(md->name, s->only_name)))
            keep[m++] = items[i];
    }
    s->po.now_ns = now_ns();
    int rc = get_print_rows(s, keep, m);
    free(keep);
    if (rc < 0)
        s->failed = true;
    return rc < 0;
}

static int get_on_event(struct ctl_watch *w, const char *type, ProtobufCMessage *obj, void *arg)
{
    struct get_state *s = arg;
    const Coracle__V1__ObjectMeta *md = kind_meta(obj);
    if (s->only_name && (!md || !md->name || strcmp(md->name, s->only_name)))
        return 0;
    s->po.now_ns = now_ns();
    if (get_print_rows(s, &obj, 1) < 0) {
        s->failed = true;
        return 1;
    }
    return 0;
}

/* Connects to addr ("host:port", "[v6]:port" or "unix:/path"); fd or -1 with a message. */
static int raw_connect(const char *addr)
{
    if (!strncmp(addr, "unix:", 5)) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(addr + 5) >= sizeof(sa.sun_path)) {
            fprintf(stderr, "error: socket path too long: %s\n", addr + 5);
            return -1;
        }
        strcpy(sa.sun_path, addr + 5);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return fd;
        fprintf(stderr, "error: cannot connect to %s: %s\n", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int err;
    const char *why;
    int fd = ctl_tcp_connect(addr, &err, &why);
    if (fd < 0 && !err) {
        if (!why)
            fprintf(stderr, "error: bad server address \"%s\"\n", addr);
        else
            fprintf(stderr, "error: %s: %s\n", addr, why);
    } else if (fd < 0) {
        fprintf(stderr,
                "The connection to the server %s was refused - did you specify the right "
                "host or port? (%s)\n",
                addr, strerror(err));
    }
    return fd;
}

/* A plain or TLS connection for get --raw. */
struct raw_conn {
    int fd;
    SSL *ssl;
};

static ssize_t raw_write(struct raw_conn *rc, const void *p, size_t n)
{
    if (rc->ssl) {
        int w = SSL_write(rc->ssl, p, (int)n);
        return w > 0 ? w : -1;
    }
    return write(rc->fd, p, n);
}

static ssize_t raw_read(struct raw_conn *rc, void *p, size_t n)
{
    if (rc->ssl) {
        int r = SSL_read(rc->ssl, p, (int)n);
        if (r > 0)
            return r;
        int e = SSL_get_error(rc->ssl, r);
        return e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && !errno) ? 0 : -1;
    }
    return read(rc->fd, p, n);
}

/*
 * The TLS handshake for get --raw, with ALPN http/1.1 (h2s answers plain
 * GETs). Failures are printed as the gRPC calls' are. 0 or -1.
 */
static int raw_tls(struct ctl_client *c, const char *hostport, struct raw_conn *rc)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - hostport) : (int)strlen(hostport),
             hostport);
    rc->ssl = tls_client_ssl(c->tls, host);
    if (!rc->ssl) {
        fprintf(stderr, "error: cannot verify the server as \"%s\"\n", host);
        return -1;
    }
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_set_alpn_protos(rc->ssl, alpn, sizeof(alpn) - 1);
    /* the server ends the response by closing, without close_notify */
    SSL_set_options(rc->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_set_fd(rc->ssl, rc->fd);
    if (SSL_connect(rc->ssl) == 1)
        return 0;
    long vr = SSL_get_verify_result(rc->ssl);
    const char *why = tls_last_error();
    const char *r = strstr(why, "::");
    char *msg = vr != X509_V_OK ? xasprintf("connect to %s: TLS: %s: %s", hostport, r ? r + 2 : why,
                                            X509_verify_cert_error_string(vr))
                                : xasprintf("connect to %s: TLS: %s", hostport, r ? r + 2 : why);
    ctl_print_error(c, GRPC_UNAVAILABLE, msg);
    free(msg);
    return -1;
}

/*
 * `get --raw PATH`: an HTTP/1.1 GET on the API port (h2s answers plain GETs),
 * over TLS when the client is configured for it; prints the body.
 */
static int get_raw(const char *path)
{
    if (path[0] != '/') {
        fprintf(stderr, "error: --raw must be an absolute path starting with /, got \"%s\"\n",
                path);
        return 1;
    }
    struct ctl_client c;
    if (ctl_client_open(&c) < 0)
        return 1;
    const char *hostport = c.addr;
    if (!strncmp(hostport, "https://", 8))
        hostport += 8;
    else if (!strncmp(hostport, "http://", 7))
        hostport += 7;
    struct raw_conn conn = {raw_connect(hostport), NULL};
    int rc = 1;
    struct buf req = {0}, resp = {0};
    if (conn.fd < 0)
        goto out;
    if (c.tls && strncmp(hostport, "unix:", 5) && raw_tls(&c, hostport, &conn) < 0)
        goto done;
    buf_printf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", path, hostport);
    if (c.token)
        buf_printf(&req, "Authorization: Bearer %s\r\n", c.token);
    buf_puts(&req, "\r\n");
    for (size_t off = 0; off < req.len;) {
        ssize_t w = raw_write(&conn, req.p + off, req.len - off);
        if (w < 0 && errno == EINTR && !conn.ssl)
            continue;
        if (w < 0) {
            fprintf(stderr, "error: write to %s: %s\n", hostport,
                    conn.ssl ? tls_last_error() : strerror(errno));
            goto done;
        }
        off += (size_t)w;
    }
    for (;;) {
        char buf[16384];
        errno = 0;
        ssize_t n = raw_read(&conn, buf, sizeof(buf));
        if (n < 0 && errno == EINTR && !conn.ssl)
            continue;
        if (n < 0) {
            fprintf(stderr, "error: read from %s: %s\n", hostport,
                    conn.ssl ? tls_last_error() : strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        buf_add(&resp, buf, (size_t)n);
    }
    int status = 0;
    char *body = resp.p ? strstr(resp.p, "\r\n\r\n") : NULL;
    if (!body || sscanf(resp.p, "HTTP/1.%*d %d", &status) != 1) {
        fprintf(stderr, "error: %s answered no HTTP response\n", hostport);
        goto done;
    }
    body += 4;
    size_t blen = resp.len - (size_t)(body - resp.p);
    if (status / 100 == 2) {
        fwrite(body, 1, blen, stdout);
        if (blen && body[blen - 1] != '\n')
            putchar('\n');
        rc = 0;
    } else if (status == 404) {
        fprintf(stderr, "Error from server (NotFound): the server could not find the requested "
                        "resource\n");
    } else {
        fprintf(stderr, "Error from server (%d): %.*s\n", status, (int)blen, body);
    }
done:
    buf_free(&req);
    buf_free(&resp);
    if (conn.ssl)
        SSL_free(conn.ssl);
    close(conn.fd);
out:
    ctl_client_close(&c);
    return rc;
}

/*
 * get TYPE,TYPE...: each kind listed, as kubectl prints several: one table
 * a kind that has objects, names as "deployment.apps/web", a blank line
 * between tables; -o yaml|json: one List of them all; -o name: every name.
 */
static int get_kinds(const char *types, size_t npos, const char *output, const char *lsel,
                     const char *fsel, bool all_ns, bool watch, bool no_headers, bool labels)
{
    struct ctl_output out;
    if (npos > 1 || watch) {
        fprintf(stderr, "error: %s\n",
                watch ? "you may only specify a single resource type to watch"
                      : "names may not be given with several resource types");
        return 1;
    }
    if (ctl_parse_output(output, &out) < 0)
        return 1;
    if (out.fmt == CTL_OUT_JSONPATH || out.fmt == CTL_OUT_COLUMNS) {
        fprintf(stderr, "error: -o jsonpath and custom-columns take a single resource type\n");
        ctl_output_free(&out);
        return 1;
    }
    const struct kind *ks[KINDS_N * 2];
    size_t nk = 0;
    char *list = xstrdup(types);
    int rc = 0;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t && rc == 0;
         t = strtok_r(NULL, ",", &save)) {
        if (nk == ARRAY_SIZE(ks) || !(ks[nk++] = ctl_resolve(t, NULL)))
            rc = 1;
    }
    free(list);
    struct ctl_client c;
    if (rc || ctl_client_open(&c) < 0) {
        ctl_output_free(&out);
        return 1;
    }
    ProtobufCMessage *lists[ARRAY_SIZE(ks)] = {0};
    ProtobufCMessage **all = NULL;
    size_t nall = 0, cap = 0;
    const char *ns = ctl_namespace();
    for (size_t i = 0; i < nk && rc == 0; i++) {
        Coracle__V1__ListRequest req = CORACLE__V1__LIST_REQUEST__INIT;
        req.namespace_ = (char *)(all_ns || !ks[i]->namespaced ? "" : ns);
        req.labelselector = (char *)lsel;
        req.fieldselector = (char *)fsel;
        char *err;
        int code = ctl_list_all(&c, ks[i], &req, &lists[i], &err);
        if (code != GRPC_OK) {
            ctl_print_error(&c, code, err);
            free(err);
            rc = 1;
            break;
        }
        size_t n;
        ProtobufCMessage **items = ctl_list_items(lists[i], &n);
        for (size_t j = 0; j < n; j++)
            *XPUSH(all, nall, cap) = items[j];
    }
    if (rc == 0 && !nall && out.fmt != CTL_OUT_YAML && out.fmt != CTL_OUT_JSON) {
        ctl_print_none(&kind_pod, all_ns ? NULL : ns);
    } else if (rc == 0 && (out.fmt == CTL_OUT_YAML || out.fmt == CTL_OUT_JSON)) {
        char *y = kobj_emit_list(NULL, all, nall,
                                 out.fmt == CTL_OUT_YAML ? KOBJ_FMT_YAML : KOBJ_FMT_JSON);
        fputs(y, stdout);
        free(y);
    } else if (rc == 0) {
        bool first = true;
        for (size_t i = 0, at = 0; i < nk; i++) {
            size_t n;
            ctl_list_items(lists[i], &n);
            struct ctl_kind_label kn = ctl_kind_label(ks[i]);
            struct ctl_print_opts po = {.wide = out.fmt == CTL_OUT_WIDE,
                                        .all_ns = all_ns && ks[i]->namespaced,
                                        .no_headers = no_headers,
                                        .show_labels = labels,
                                        .kind_prefix = kn.s,
                                        .now_ns = now_ns()};
            if (n && out.fmt != CTL_OUT_NAME && !first)
                fputs("\n", stdout);
            if (n && ctl_print_objs(ks[i], all + at, n, true, &out, &po) < 0)
                rc = 1;
            first = first && !n;
            at += n;
        }
    }
    fflush(stdout);
    free(all);
    for (size_t i = 0; i < nk; i++)
        if (lists[i])
            protobuf_c_message_free_unpacked(lists[i], NULL);
    ctl_client_close(&c);
    ctl_output_free(&out);
    return rc;
}

int ctl_cmd_get(int argc, char **argv)
{
    const char *output = NULL, *lsel = NULL, *fsel = NULL, *raw = NULL;
    bool all_ns = false, watch = false, watch_only = false, no_headers = false, labels = false;
    bool allow_missing = true;
    const struct ctl_flag flags[] = {
        {"output", 'o', CTL_FLAG_STR, &output, NULL},
        {"selector", 'l', CTL_FLAG_STR, &lsel, NULL},
        {"field-selector", 0, CTL_FLAG_STR, &fsel, NULL},
        {"all-namespaces", 'A', CTL_FLAG_BOOL, &all_ns, NULL},
        {"watch", 'w', CTL_FLAG_BOOL, &watch, NULL},
        {"watch-only", 0, CTL_FLAG_BOOL, &watch_only, NULL},
        {"no-headers", 0, CTL_FLAG_BOOL, &no_headers, NULL},
        {"show-labels", 0, CTL_FLAG_BOOL, &labels, NULL},
        {"raw", 0, CTL_FLAG_STR, &raw, NULL},
        {"allow-missing-template-keys", 0, CTL_FLAG_BOOL, &allow_missing, NULL},
    };
    struct ctl_strv pos;
    struct ctl_client c;
    int rc = 1;

    if (ctl_parse_flags(argc, argv, flags, ARRAY_SIZE(flags), &pos, NULL) < 0)
        return 1;
    if (ctl_g.help) {
        fputs(get_help, stdout);
        free(pos.v);
        return 0;
    }
    if (raw) {
        if (pos.n) {
            fprintf(stderr, "error: arguments may not be passed when --raw is specified\n");
            free(pos.v);
            return 1;
        }
        free(pos.v);
        return get_raw(raw);
    }
    if (!pos.n) {
        fprintf(stderr, "You must specify the type of resource to get. Use \"coraclectl get "
                        "--help\" for usage.\n\nerror: Required resource not specified.\n");
        free(pos.v);
        return 1;
    }
    struct ctl_output out;
    const char *slash_name;
    if (strchr(pos.v[0], ',')) {
        rc = get_kinds(pos.v[0], pos.n, output, lsel, fsel, all_ns, watch || watch_only, no_headers,
                       labels);
        free(pos.v);
        return rc;
    }
    const struct kind *k = ctl_resolve(pos.v[0], &slash_name);
    if (!k || ctl_parse_output(output, &out) < 0) {
        free(pos.v);
        return 1;
    }
    out.allow_missing = allow_missing;
    enum ctl_out fmt = out.fmt;
    const char **names = pos.v + 1;
    size_t nnames = pos.n - 1;
    if (slash_name) {
        names = pos.v;
        names[0] = slash_name;
        nnames = pos.n;
    }
    if (ctl_client_open(&c) < 0) {
        ctl_output_free(&out);
        free(pos.v);
        return 1;
    }
    const char *ns = k->namespaced ? ctl_namespace() : NULL;
    struct ctl_print_opts po = {.wide = fmt == CTL_OUT_WIDE,
                                .all_ns = all_ns && k->namespaced,
                                .no_headers = no_headers,
                                .show_labels = labels,
                                .now_ns = now_ns()};

    if (watch || watch_only) {
        struct get_state s = {.k = k, .out = &out, .po = po, .print_list = !watch_only};
        if (nnames > 1) {
            fprintf(stderr, "error: you may only specify a single resource type and name to "
                            "watch\n");
            goto out;
        }
        s.only_name = nnames ? names[0] : NULL;
        ctl_tw_init(&s.tw, 6, 3, true);
        struct ctl_watch w = {.c = &c,
                              .k = k,
                              .namespace_ = all_ns ? NULL : ns,
                              .label_selector = lsel,
                              .field_selector = fsel,
                              .on_list = get_on_list,
                              .on_event = get_on_event,
                              .arg = &s};
        rc = ctl_watch_run(&w, NULL);
        if (s.failed)
            rc = 1;
        ctl_tw_free(&s.tw);
        goto out;
    }

    if (nnames) {
        ProtobufCMessage **objs = xcalloc(nnames, sizeof(*objs));
        size_t n = 0;
        rc = 0;
        for (size_t i = 0; i < nnames; i++) {
            Coracle__V1__GetRequest req = CORACLE__V1__GET_REQUEST__INIT;
            req.namespace_ = (char *)(ns ? ns : "");
            req.name = (char *)names[i];
            char *err;
            int code = ctl_call(&c, k, "Get", &req.base, k->desc, &objs[n], &err);
            if (code != GRPC_OK) {
                ctl_print_error(&c, code, err);
                free(err);
                rc = 1;
                if (code == GRPC_UNAVAILABLE)
                    break;
                continue;
            }
            n++;
        }
        if (n && ctl_print_objs(k, objs, n, n != 1, &out, &po) < 0)
            rc = 1;
        for (size_t i = 0; i < n; i++)
            protobuf_c_message_free_unpacked(objs[i], NULL);
        free(objs);
        goto out;
    }

    Coracle__V1__ListRequest req = CORACLE__V1__LIST_REQUEST__INIT;
    req.namespace_ = (char *)(all_ns || !ns ? "" : ns);
    req.labelselector = (char *)lsel;
    req.fieldselector = (char *)fsel;
    ProtobufCMessage *list;
    char *err;
    int code = ctl_list_all(&c, k, &req, &list, &err);
    if (code != GRPC_OK) {
        ctl_print_error(&c, code, err);
        free(err);
        goto out;
    }
    size_t n;
    ProtobufCMessage **items = ctl_list_items(list, &n);
    rc = 0;
    /* kubectl says so only for its tables and names; the others print an empty List */
    if (!n && (fmt == CTL_OUT_TABLE || fmt == CTL_OUT_WIDE || fmt == CTL_OUT_NAME))
        ctl_print_none(k, all_ns ? NULL : ns);
    else if (ctl_print_objs(k, items, n, true, &out, &po) < 0)
        rc = 1;
    protobuf_c_message_free_unpacked(list, NULL);
out:
    ctl_client_close(&c);
    ctl_output_free(&out);
    free(pos.v);
    return rc;
}
