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
#include <pthread.h>
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

/* Handed lines beyond this wait for the writer no longer: they are dropped (and counted). */
#define PENDING_MAX (64u << 20)

/*
 * The loop formats lines into out and hands them, a batch at a time, to
 * the writer thread (pending, under mu), which alone owns the file: its
 * write(2)s and rotations stay off the loop.
 */
struct audit {
    struct event_base *base;
    struct audit_policy *pol;
    struct buf out; /* loop: lines not handed over yet */
    struct event *timer;
    uint64_t rnd[2];  /* loop: auditID generator state */
    uint64_t dropped; /* loop: lines the writer could not take */
    int64_t ts_sec;   /* loop: the second ts shows */
    char ts[40];      /* loop: its RFC 3339 date and time, no zone */
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct buf pending; /* mu: lines for the writer */
    bool stop;          /* mu: write what is pending, then end */
    /* the writer's (before it starts: audit_new's) */
    char *path; /* NULL: stdout */
    int fd;
    int64_t size; /* of the open file */
    int64_t max_size;
    int max_age_days, max_backups;
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

/* Writer thread: one batch, one write(2), rotating first when the file would outgrow its
 * limit. */
static void write_batch(audit_t *a, const struct buf *b)
{
    if (a->path && a->size > 0 && a->size + (int64_t)b->len > a->max_size)
        log_rotate(a);
    int fd = a->path ? a->fd : STDOUT_FILENO;
    size_t off = 0;
    while (fd >= 0 && off < b->len) {
        ssize_t w = write(fd, b->p + off, b->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            log_err("audit: write %s: %s", a->path ? a->path : "stdout", strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    a->size += (int64_t)off;
}

static void *writer(void *arg)
{
    audit_t *a = arg;
    struct buf b = {0};
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->pending.len && !a->stop)
            pthread_cond_wait(&a->cv, &a->mu);
        if (!a->pending.len)
            break; /* stopping, and all written */
        struct buf t = b;
        b = a->pending;
        a->pending = t;
        pthread_mutex_unlock(&a->mu);
        write_batch(a, &b);
        buf_reset(&b);
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    buf_free(&b);
    return NULL;
}

/* Loop: hands the formatted lines to the writer (a swap when it has taken the last batch). */
static void flush(audit_t *a)
{
    if (!a->out.len)
        return;
    pthread_mutex_lock(&a->mu);
    if (!a->pending.len) {
        struct buf t = a->pending;
        a->pending = a->out;
        a->out = t;
    } else if (a->pending.len < PENDING_MAX) {
        buf_add(&a->pending, a->out.p, a->out.len);
    } else {
        for (size_t i = 0; i < a->out.len; i++)
            a->dropped += a->out.p[i] == '\n';
    }
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    buf_reset(&a->out);
}

static void flush_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    audit_t *a = arg;
    flush(a);
    if (a->dropped) {
        log_err("audit: the log does not keep up: %llu events dropped",
                (unsigned long long)a->dropped);
        a->dropped = 0;
    }
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
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    if (pthread_create(&a->thread, NULL, writer, a) != 0)
        fatal("audit: cannot start the writer thread");
    a->started = true;
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
    if (a->started) {
        flush(a);
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
        pthread_mutex_destroy(&a->mu);
        pthread_cond_destroy(&a->cv);
    }
    if (a->timer)
        event_free(a->timer);
    if (a->fd >= 0)
        close(a->fd);
    buf_free(&a->out);
    buf_free(&a->pending);
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

/* The event is made on the loop for every request the policy logs: no printf in it. */

static void json_kv(struct buf *b, const char *key, const char *val)
{
    buf_puts(b, ",\"");
    buf_puts(b, key);
    buf_puts(b, "\":");
    kobj_json_str(b, val, strlen(val));
}

/* v's n lowest hex digits. */
static void hex(struct buf *b, uint64_t v, int n)
{
    char *p = buf_reserve(b, (size_t)n);
    for (int i = n - 1; i >= 0; i--, v >>= 4)
        p[i] = "0123456789abcdef"[v & 0xf];
    buf_commit(b, (size_t)n);
}

/* v in decimal, zero-padded to n digits (0: as long as it is). */
static void dec(struct buf *b, uint64_t v, int n)
{
    char t[24];
    int i = 24;
    do
        t[--i] = (char)('0' + v % 10), v /= 10;
    while (v || 24 - i < n);
    buf_add(b, t + i, (size_t)(24 - i));
}

/* A MicroTime (2006-01-02T15:04:05.000000Z); the date and time of day are formatted once a
 * second. */
static void timestamp(audit_t *a, struct buf *b, const char *key, int64_t ns)
{
    int64_t sec = ns / 1000000000;
    if (sec != a->ts_sec) {
        kobj_fmt_rfc3339(a->ts, sizeof(a->ts), sec, 0, 0); /* ...05Z */
        a->ts[strlen(a->ts) - 1] = '\0';
        a->ts_sec = sec;
    }
    buf_puts(b, ",\"");
    buf_puts(b, key);
    buf_puts(b, "\":\"");
    buf_puts(b, a->ts);
    buf_puts(b, ".");
    dec(b, (uint64_t)(ns % 1000000000) / 1000, 6);
    buf_puts(b, "Z\"");
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
    buf_puts(b, "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"");
    buf_puts(b, level_names[e->level]);
    buf_puts(b, "\",\"auditID\":\""); /* a version 4 UUID */
    hex(b, r0 >> 32, 8);
    buf_puts(b, "-");
    hex(b, r0 >> 16, 4);
    buf_puts(b, "-4");
    hex(b, r0, 3);
    buf_puts(b, "-");
    hex(b, ((r1 >> 48) & 0x3fff) | 0x8000, 4);
    buf_puts(b, "-");
    hex(b, r1, 12);
    buf_puts(b, "\",\"stage\":\"ResponseComplete\"");
    size_t ul = strlen(e->uri), ql = e->query ? strlen(e->query) : 0;
    char small[512], *uri = ul + ql + 2 <= sizeof(small) ? small : xmalloc(ul + ql + 2);
    memcpy(uri, e->uri, ul);
    uri[ul] = '?';
    memcpy(uri + ul + 1, e->query ? e->query : "", ql);
    buf_puts(b, ",\"requestURI\":");
    kobj_json_str(b, uri, ul + (ql ? ql + 1 : 0));
    if (uri != small)
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
        buf_puts(b, ",\"objectRef\":{\"resource\":");
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
    buf_puts(b, ",\"code\":");
    dec(b, (uint64_t)(e->status > 0 ? e->status : 0), 0);
    buf_puts(b, "}");
    int64_t now = now_ns();
    timestamp(a, b, "requestReceivedTimestamp", now - (mono_ns() - e->born_mono));
    timestamp(a, b, "stageTimestamp", now);
    buf_puts(b, ",\"annotations\":{\"authorization.k8s.io/decision\":\"");
    buf_puts(b, e->status == 403 ? "forbid" : "allow");
    buf_puts(b, "\",\"authorization.k8s.io/reason\":\"\"}}\n");
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
