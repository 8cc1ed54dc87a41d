/*
 * audit: the audit policy, the events and the rotating log. See audit.h.
 */
#include "config.h"
#include "audit.h"
#include "buf.h"
#include "coracle.pb-c.h"
#include "grpc.h"
#include "json.h"
#include "kinds.h"
#include "kjson.h"
#include "kobj.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* lumberjack's default size limit when none is given */
#define DEFAULT_MAX_MB 100
/* lumberjack's backup names: NAME-2006-01-02T15-04-05.000.EXT */
#define BACKUP_TIME_LEN 23

struct audit {
    struct event_base *base;
    struct audit_policy *pol;
    char *path; /* NULL: stdout */
    int fd;
    int64_t size; /* of the open file */
    int64_t max_size;
    int max_age_days, max_backups;
    struct buf out; /* lines not written yet */
    struct event *timer;
    uint64_t rnd[2]; /* auditID generator state */
};

static const char *str(const char *s)
{
    return s ? s : "";
}

static const char *const level_names[] = {"None", "Metadata", "Request", "RequestResponse"};

/* ---------------------------------------------------------------- the log */

static void backups_prune(audit_t *a);

/* Opens the log for appending (created 0600, as kube-apiserver does). */
static int log_open(audit_t *a, char **err)
{
    a->fd = open(a->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (a->fd < 0) {
        *err = xasprintf("--audit-log-path %s: %s", a->path, strerror(errno));
        return -1;
    }
    struct stat st;
    a->size = fstat(a->fd, &st) == 0 ? st.st_size : 0;
    return 0;
}

/* NAME-<time>.EXT beside the log (lumberjack's backupName, UTC). */
static char *backup_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t pl = (size_t)((dot ? dot : base + strlen(base)) - path);
    int64_t ns = now_ns();
    time_t sec = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char t[40];
    strftime(t, sizeof(t), "%Y-%m-%dT%H-%M-%S", &tm);
    return xasprintf("%.*s-%s.%03d%s", (int)pl, path, t, (int)(ns / 1000000 % 1000),
                     dot ? dot : "");
}

/* Renames the full log aside and opens a new one. */
static void log_rotate(audit_t *a)
{
    char *bn = backup_name(a->path), *err = NULL;
    close(a->fd);
    a->fd = -1;
    if (rename(a->path, bn) < 0)
        log_err("audit: rename %s to %s: %s", a->path, bn, strerror(errno));
    free(bn);
    if (log_open(a, &err) < 0) {
        log_err("audit: %s", err);
        free(err);
    }
    backups_prune(a);
}

struct backup {
    char *name;
    char stamp[BACKUP_TIME_LEN + 1];
};

static int by_stamp_desc(const void *x, const void *y)
{
    return strcmp(((const struct backup *)y)->stamp, ((const struct backup *)x)->stamp);
}

/* The backups of the log (NAME-<time>.EXT in its directory), newest first; *n of them. */
static struct backup *backups_list(const audit_t *a, char **dir_out, size_t *n)
{
    const char *slash = strrchr(a->path, '/');
    char *dir =
        slash ? xstrndup(a->path, (size_t)(slash - a->path) + (slash == a->path)) : xstrdup(".");
    const char *base = slash ? slash + 1 : a->path;
    const char *dot = strrchr(base, '.');
    size_t pl = (size_t)((dot ? dot : base + strlen(base)) - base);
    const char *ext = dot ? dot : "";
    struct backup *v = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t el = strlen(e->d_name);
        if (el != pl + 1 + BACKUP_TIME_LEN + strlen(ext) || strncmp(e->d_name, base, pl) ||
            e->d_name[pl] != '-' || strcmp(e->d_name + el - strlen(ext), ext))
            continue;
        v = xrealloc(v, (*n + 1) * sizeof(*v));
        v[*n].name = xstrdup(e->d_name);
        snprintf(v[*n].stamp, sizeof(v[*n].stamp), "%.*s", BACKUP_TIME_LEN, e->d_name + pl + 1);
        (*n)++;
    }
    if (d)
        closedir(d);
    qsort(v, *n, sizeof(*v), by_stamp_desc);
    *dir_out = dir;
    return v;
}

/* lumberjack's millRunOnce without compression: too many or too old backups go. */
static void backups_prune(audit_t *a)
{
    if (!a->max_backups && !a->max_age_days)
        return;
    char *dir;
    size_t n;
    struct backup *v = backups_list(a, &dir, &n);
    char cutoff[BACKUP_TIME_LEN + 1] = "";
    if (a->max_age_days) {
        time_t sec = (time_t)(now_ns() / 1000000000) - (time_t)a->max_age_days * 86400;
        struct tm tm;
        gmtime_r(&sec, &tm);
        strftime(cutoff, sizeof(cutoff), "%Y-%m-%dT%H-%M-%S.000", &tm);
    }
    for (size_t i = 0; i < n; i++) {
        bool old = *cutoff && strcmp(v[i].stamp, cutoff) < 0;
        if ((a->max_backups && i >= (size_t)a->max_backups) || old) {
            char *p = xconcat(dir, "/", v[i].name, NULL);
            if (unlink(p) < 0)
                log_err("audit: remove %s: %s", p, strerror(errno));
            free(p);
        }
        free(v[i].name);
    }
    free(v);
    free(dir);
}

/* Writes the buffered lines: one write(2) a batch, rotating first when the file would outgrow
 * its limit. */
static void flush(audit_t *a)
{
    if (!a->out.len)
        return;
    if (a->path && a->size > 0 && a->size + (int64_t)a->out.len > a->max_size)
        log_rotate(a);
    int fd = a->path ? a->fd : STDOUT_FILENO;
    size_t off = 0;
    while (fd >= 0 && off < a->out.len) {
        ssize_t w = write(fd, a->out.p + off, a->out.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            log_err("audit: write %s: %s", a->path ? a->path : "stdout", strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    a->size += (int64_t)off;
    buf_reset(&a->out);
}

static void flush_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush(arg);
}

/* The policy file whole (at most 1 MiB), malloc'd; NULL with errno. */
static char *policy_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    size_t cap = 1 << 20;
    char *b = xmalloc(cap + 1);
    *len = fread(b, 1, cap + 1, f);
    int bad = ferror(f) || *len > cap;
    fclose(f);
    if (bad) {
        free(b);
        errno = EFBIG;
        return NULL;
    }
    b[*len] = '\0';
    return b;
}

int audit_new(struct event_base *base, const struct audit_config *cfg, audit_t **out, char **err)
{
    *out = NULL;
    *err = NULL;
    if (!cfg->policy_file || !*cfg->policy_file || !cfg->log_path || !*cfg->log_path) {
        if ((cfg->log_path && *cfg->log_path) != (cfg->policy_file && *cfg->policy_file))
            log_warn("audit: off: it needs both --audit-policy-file and --audit-log-path");
        return 0;
    }
    size_t len;
    char *text = policy_read(cfg->policy_file, &len);
    if (!text) {
        *err = xasprintf("--audit-policy-file %s: %s", cfg->policy_file, strerror(errno));
        return -1;
    }
    struct audit_policy *p = audit_policy_parse(cfg->policy_file, text, len, err);
    free(text);
    if (!p)
        return -1;
    audit_t *a = xcalloc(1, sizeof(*a));
    a->base = base;
    a->pol = p;
    a->fd = -1;
    a->path = strcmp(cfg->log_path, "-") ? xstrdup(cfg->log_path) : NULL;
    a->max_size = (int64_t)(cfg->max_size_mb > 0 ? cfg->max_size_mb : DEFAULT_MAX_MB) << 20;
    a->max_age_days = cfg->max_age_days > 0 ? cfg->max_age_days : 0;
    a->max_backups = cfg->max_backups > 0 ? cfg->max_backups : 0;
    if (a->path && log_open(a, err) < 0) {
        audit_free(a);
        return -1;
    }
    if (getrandom(a->rnd, sizeof(a->rnd), 0) != (ssize_t)sizeof(a->rnd))
        a->rnd[0] = (uint64_t)now_ns(), a->rnd[1] = (uint64_t)getpid() | 1;
    a->timer = event_new(base, -1, EV_PERSIST, flush_timer, a);
    struct timeval tv = {0, AUDIT_FLUSH_MS * 1000};
    event_add(a->timer, &tv);
    log_info("audit: policy %s, events to %s", cfg->policy_file, a->path ? a->path : "stdout");
    *out = a;
    return 0;
}

void audit_free(audit_t *a)
{
    if (!a)
        return;
    flush(a);
    if (a->timer)
        event_free(a->timer);
    if (a->fd >= 0)
        close(a->fd);
    buf_free(&a->out);
    audit_policy_free(a->pol);
    free(a->path);
    free(a);
}

/* ---------------------------------------------------------------- events */

/* xorshift128+: auditIDs need to be unique, not secret */
static uint64_t rnd_next(audit_t *a)
{
    uint64_t x = a->rnd[0];
    const uint64_t y = a->rnd[1];
    a->rnd[0] = y;
    x ^= x << 23;
    a->rnd[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
    return a->rnd[1] + y;
}

static void json_kv(struct buf *b, const char *key, const char *val)
{
    buf_printf(b, ",\"%s\":", key);
    kobj_json_str(b, val, strlen(val));
}

static void timestamp(struct buf *b, const char *key, int64_t ns)
{
    char t[48];
    kobj_fmt_rfc3339(t, sizeof(t), ns / 1000000000, (int32_t)(ns % 1000000000), 1);
    buf_printf(b, ",\"%s\":\"%s\"", key, t);
}

/* The peer's address without its port ("1.2.3.4:5678", "[::1]:5678"). */
static void source_ip(struct buf *b, const char *peer)
{
    const char *colon = strrchr(peer, ':');
    size_t l = colon && strcmp(peer, "unix") ? (size_t)(colon - peer) : strlen(peer);
    if (l >= 2 && peer[0] == '[' && peer[l - 1] == ']')
        peer++, l -= 2;
    buf_puts(b, ",\"sourceIPs\":[");
    kobj_json_str(b, peer, l);
    buf_puts(b, "]");
}

struct event_in {
    enum audit_level level;
    const struct auth_user *u; /* NULL: unauthenticated */
    const struct audit_req *q;
    const char *uri, *query, *peer, *user_agent;
    int status;          /* HTTP */
    const char *reason;  /* failures: Kubernetes' reason */
    const char *message; /* failures: may be NULL */
    int64_t born_mono;
};

static void event_line(audit_t *a, const struct event_in *e)
{
    struct buf *b = &a->out;
    uint64_t r0 = rnd_next(a), r1 = rnd_next(a);
    buf_printf(b,
               "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"%s\","
               "\"auditID\":\"%08x-%04x-4%03x-%04x-%012llx\",\"stage\":\"ResponseComplete\"",
               level_names[e->level], (unsigned)(r0 >> 32), (unsigned)(r0 >> 16) & 0xffff,
               (unsigned)r0 & 0xfff, (unsigned)((r1 >> 48) & 0x3fff) | 0x8000,
               (unsigned long long)(r1 & 0xffffffffffffULL));
    char *uri = e->query && *e->query ? xconcat(e->uri, "?", e->query, NULL) : NULL;
    json_kv(b, "requestURI", uri ? uri : e->uri);
    free(uri);
    json_kv(b, "verb", e->q->verb);
    buf_puts(b, ",\"user\":{");
    if (e->u) {
        buf_puts(b, "\"username\":");
        kobj_json_str(b, e->u->name, strlen(e->u->name));
        if (e->u->uid && *e->u->uid)
            json_kv(b, "uid", e->u->uid);
        buf_puts(b, ",\"groups\":[");
        for (size_t i = 0; e->u->groups && e->u->groups[i]; i++) {
            if (i)
                buf_puts(b, ",");
            kobj_json_str(b, e->u->groups[i], strlen(e->u->groups[i]));
        }
        buf_puts(b, "]");
    }
    buf_puts(b, "}");
    source_ip(b, e->peer);
    if (e->user_agent)
        json_kv(b, "userAgent", e->user_agent);
    if (e->q->resource) {
        buf_printf(b, ",\"objectRef\":{\"resource\":");
        kobj_json_str(b, str(e->q->res), strlen(str(e->q->res)));
        if (e->q->ns && *e->q->ns)
            json_kv(b, "namespace", e->q->ns);
        if (e->q->name && *e->q->name)
            json_kv(b, "name", e->q->name);
        if (*str(e->q->api_group))
            json_kv(b, "apiGroup", e->q->api_group);
        json_kv(b, "apiVersion", str(e->q->api_version));
        if (e->q->subresource && *e->q->subresource)
            json_kv(b, "subresource", e->q->subresource);
        buf_puts(b, "}");
    }
    buf_puts(b, ",\"responseStatus\":{\"metadata\":{}");
    if (e->status >= 300) {
        buf_puts(b, ",\"status\":\"Failure\"");
        if (e->message)
            json_kv(b, "message", e->message);
        if (e->reason)
            json_kv(b, "reason", e->reason);
    }
    buf_printf(b, ",\"code\":%d}", e->status);
    int64_t now = now_ns();
    timestamp(b, "requestReceivedTimestamp", now - (mono_ns() - e->born_mono));
    timestamp(b, "stageTimestamp", now);
    buf_printf(b,
               ",\"annotations\":{\"authorization.k8s.io/decision\":\"%s\","
               "\"authorization.k8s.io/reason\":\"\"}}\n",
               e->status == 403 ? "forbid" : "allow");
    if (a->out.len >= AUDIT_FLUSH_BYTES)
        flush(a);
}

/* Kubernetes' reason for an HTTP status (the REST answers') */
static const char *reason_of(int status)
{
    switch (status) {
    case 400:
        return "BadRequest";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "NotFound";
    case 405:
        return "MethodNotAllowed";
    case 410:
        return "Expired";
    case 415:
        return "UnsupportedMediaType";
    case 422:
        return "Invalid";
    case 429:
        return "TooManyRequests";
    case 503:
        return "ServiceUnavailable";
    case 504:
        return "Timeout";
    default:
        return status >= 500 ? "InternalError" : NULL;
    }
}

/* The event for request q by u (NULL: unauthenticated), if the policy logs it. */
static void audit_one(audit_t *a, const struct auth_user *u, struct event_in *e)
{
    bool omit;
    e->level = audit_policy_level(a->pol, u, e->q, &omit);
    if (e->level == AUDIT_NONE || omit)
        return;
    e->u = u;
    /* failure messages may quote what was sent: none for Secrets */
    if (e->q->resource && !strcmp(str(e->q->res), "secrets"))
        e->message = NULL;
    event_line(a, e);
}

/*
 * A create names its object in the body, not the path: Kubernetes' event
 * names it all the same. The name from a JSON body (the body's own bytes
 * stay out of the event), malloc'd, or NULL.
 */
static char *created_name(h2s_req_t *r)
{
    size_t len;
    const uint8_t *body = h2s_req_body(r, &len);
    json_t *j = NULL;
    char *err = NULL;
    if (!len || body[0] != '{' || json_parse((const char *)body, len, NULL, &j, &err) < 0) {
        free(err);
        return NULL;
    }
    const char *n = json_str(json_get(json_get(j, "metadata"), "name"));
    char *out = n && *n ? xstrdup(n) : NULL;
    json_free(j);
    return out;
}

void audit_rest(audit_t *a, auth_t *au, h2s_req_t *r, int status)
{
    struct auth_user u;
    char *err = NULL, buf[512];
    bool authed = auth_authenticate_req(au, r, &u, &err) == 0;
    free(err);
    struct audit_req q;
    audit_request_info(h2s_req_method(r), h2s_req_path(r), h2s_req_query(r), &q, buf, sizeof(buf));
    char *name = q.resource && !q.name && !strcmp(q.verb, "create") ? created_name(r) : NULL;
    if (name)
        q.name = name;
    struct event_in e = {.q = &q,
                         .uri = h2s_req_path(r),
                         .query = h2s_req_query(r),
                         .peer = h2s_req_peer(r),
                         .user_agent = h2s_req_header(r, "user-agent"),
                         .status = status,
                         .reason = reason_of(status),
                         .born_mono = h2s_req_born(r)};
    audit_one(a, authed ? &u : NULL, &e);
    free(name);
}

void audit_grpc(audit_t *a, auth_t *au, h2s_call_t *c, const struct audit_req *q, int code,
                const char *msg)
{
    struct auth_user u;
    char *err = NULL;
    bool authed = auth_authenticate(au, c, &u, &err) == 0;
    free(err);
    const char *reason = NULL;
    int status = code == GRPC_OK ? 200 : kjson_http_status(code, &reason);
    struct event_in e = {.q = q,
                         .uri = q->path,
                         .peer = h2s_call_peer(c),
                         .user_agent = h2s_call_header(c, "user-agent"),
                         .status = status,
                         .reason = reason,
                         .message = code == GRPC_OK ? NULL : msg,
                         .born_mono = h2s_call_born(c)};
    audit_one(a, authed ? &u : NULL, &e);
}
