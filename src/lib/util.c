/*
 * util: allocation, logging, clocks, UUIDs, reference-counted buffers.
 * See util.h.
 */
#include "config.h"
#include "util.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *log_progname = "coracle";
static int log_level = LOG_LVL_INFO;
static int log_journal = -1; /* -1: not yet decided */

static void oom(size_t n)
{
    fprintf(stderr, "%s: out of memory allocating %zu bytes\n", log_progname, n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t nmemb, size_t n)
{
    void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);
    if (!p)
        oom(nmemb * n);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

void *xgrow(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return p;
    *cap = *cap ? 2 * *cap : 4;
    if (*cap <= n)
        *cap = n + 1;
    if (*cap > SIZE_MAX / size)
        oom(SIZE_MAX);
    return xrealloc(p, *cap * size);
}

char *xstrdup(const char *s)
{
    return xmemdup(s, strlen(s) + 1);
}

char *xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void *xmemdup(const void *p, size_t n)
{
    void *q = xmalloc(n);
    if (n)
        memcpy(q, p, n);
    return q;
}

char *xvasprintf(const char *fmt, va_list ap)
{
    char *s;
    if (vasprintf(&s, fmt, ap) < 0)
        oom(strlen(fmt));
    return s;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvasprintf(fmt, ap);
    va_end(ap);
    return s;
}

void mem_release(void)
{
    /* jemalloc's mallctl if the program was linked with it (looked up, so
     * that nothing else has to link jemalloc); glibc's malloc_trim if not */
    static int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
    static int looked;
    if (!looked) {
        *(void **)&mallctl_fn = dlsym(RTLD_DEFAULT, "mallctl");
        looked = 1;
    }
    if (mallctl_fn)
        mallctl_fn("arena.4096.purge", NULL, NULL, NULL, 0); /* 4096: MALLCTL_ARENAS_ALL */
    else
        malloc_trim(0);
}

char *u64str(char *buf, uint64_t v)
{
    char *p = buf + U64STR_MAX;
    *--p = 0;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

char *xu64str(uint64_t v)
{
    char b[U64STR_MAX];
    return xstrdup(u64str(b, v));
}

char *xconcat(const char *s, ...)
{
    va_list ap;
    size_t n = 0;
    va_start(ap, s);
    for (const char *p = s; p; p = va_arg(ap, const char *))
        n += strlen(p);
    va_end(ap);
    char *r = xmalloc(n + 1), *w = r;
    va_start(ap, s);
    for (const char *p = s; p; p = va_arg(ap, const char *)) {
        size_t l = strlen(p);
        memcpy(w, p, l);
        w += l;
    }
    va_end(ap);
    *w = 0;
    return r;
}

void log_init(const char *progname)
{
    const char *slash = strrchr(progname, '/');
    log_progname = slash ? slash + 1 : progname;
}

void log_set_level(enum log_level lvl)
{
    log_level = lvl;
}

int log_level_parse(const char *s)
{
    static const struct {
        const char *name;
        int lvl;
    } names[] = {{"error", LOG_LVL_ERR},    {"err", LOG_LVL_ERR},       {"warn", LOG_LVL_WARN},
                 {"warning", LOG_LVL_WARN}, {"notice", LOG_LVL_NOTICE}, {"info", LOG_LVL_INFO},
                 {"debug", LOG_LVL_DEBUG}};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        if (strcasecmp(s, names[i].name) == 0)
            return names[i].lvl;
    if (s[0] >= '3' && s[0] <= '7' && s[1] == '\0')
        return s[0] - '0';
    return -1;
}

int log_enabled(enum log_level lvl)
{
    return (int)lvl <= log_level;
}

/*
 * True if stderr is the journal stream systemd gave us: $JOURNAL_STREAM is
 * "DEV:INODE" of that stream (systemd.exec(5)); a child whose stderr was
 * redirected elsewhere inherits the variable but must log plain lines.
 */
static int log_stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
    static const char *names[] = {"", "", "", "error", "warn", "notice", "info", "debug"};
    if (log_journal < 0)
        log_journal = log_stderr_is_journal();
    char line[4096];
    int off;
    if (log_journal) {
        off = snprintf(line, sizeof(line), "<%d>", (int)lvl);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        off = snprintf(line, sizeof(line),
                       "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                       ts.tv_nsec / 1000000, log_progname, names[lvl]);
    }
    int n = vsnprintf(line + off, sizeof(line) - off - 1, fmt, ap);
    if (n < 0)
        n = 0;
    size_t len = off + (size_t)n;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    if (!log_enabled(lvl))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(lvl, fmt, ap);
    va_end(ap);
}

void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_LVL_ERR, fmt, ap);
    va_end(ap);
    exit(1);
}

void sigpipe_ignore(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
}

int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int parse_duration(const char *s, int64_t *ns)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1},  {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"ms", 1e6},
                 {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    if (!s || !*s)
        return -1;
    if (!strcmp(s, "0")) {
        *ns = 0;
        return 0;
    }
    double total = 0;
    while (*s) {
        char *end;
        if (!(*s >= '0' && *s <= '9') && *s != '.')
            return -1;
        double v = strtod(s, &end);
        if (end == s)
            return -1;
        size_t best = 0, bl = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t l = strlen(units[i].unit);
            if (l > bl && !strncmp(end, units[i].unit, l)) {
                best = i;
                bl = l;
            }
        }
        if (!bl)
            return -1;
        total += v * units[best].ns;
        s = end + bl;
    }
    if (total > 9.2e18)
        return -1;
    *ns = (int64_t)total;
    return 0;
}

/*
 * Random bytes come from getrandom() 256 UUIDs' worth at a time (one
 * syscall per 256 creates instead of one each: a commit of 170 creates made
 * 11 of them when the pool held 16), per thread; a forked child drops its
 * copy of the pool so parent and child never hand out the same bytes.
 */
#define UUID_POOL 4096
static __thread uint8_t uuid_pool[UUID_POOL];
static __thread size_t uuid_left;
static pthread_once_t uuid_once = PTHREAD_ONCE_INIT;

static void uuid_child(void)
{
    uuid_left = 0;
}

static void uuid_init(void)
{
    pthread_atfork(NULL, NULL, uuid_child);
}

void uuid_v4(char buf[37])
{
    static const char hex[] = "0123456789abcdef";
    pthread_once(&uuid_once, uuid_init);
    if (uuid_left < 16) {
        size_t got = 0;
        while (got < UUID_POOL) {
            ssize_t n = getrandom(uuid_pool + got, UUID_POOL - got, 0);
            if (n < 0 && errno != EINTR)
                abort();
            if (n > 0)
                got += (size_t)n;
        }
        uuid_left = UUID_POOL;
    }
    uint8_t *b = uuid_pool + UUID_POOL - uuid_left;
    uuid_left -= 16;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    char *o = buf;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = 0;
    memset(b, 0, 16); /* used bytes do not linger */
}

rbuf_t *rbuf_alloc(size_t len)
{
    rbuf_t *b = xmalloc(sizeof(*b) + len);
    b->refs = 1;
    b->len = len;
    return b;
}

rbuf_t *rbuf_new(const void *data, size_t len)
{
    rbuf_t *b = rbuf_alloc(len);
    if (len)
        memcpy(b->data, data, len);
    return b;
}

void rbuf_unref(rbuf_t *b)
{
    if (b && --b->refs == 0)
        free(b);
}

size_t rbufq_push(struct rbufq *q, rbuf_t *b)
{
    size_t grew = 0;
    if (q->n == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 4;
        rbuf_t **nv = xmalloc(ncap * sizeof(*nv));
        for (size_t i = 0; i < q->n; i++)
            nv[i] = rbufq_at(q, i);
        grew = (ncap - q->cap) * sizeof(*nv);
        free(q->v);
        q->v = nv;
        q->cap = ncap;
        q->head = 0;
    }
    q->v[(q->head + q->n) & (q->cap - 1)] = b;
    q->n++;
    return grew;
}

void rbufq_advance(struct rbufq *q, size_t k)
{
    rbuf_t *b = q->v[q->head];
    q->off += k;
    if (q->off == b->len) {
        rbuf_unref(b);
        q->head = (q->head + 1) & (q->cap - 1);
        q->n--;
        q->off = 0;
    }
}

void rbufq_empty(struct rbufq *q)
{
    while (q->n) {
        rbuf_unref(q->v[q->head]);
        q->head = (q->head + 1) & (q->cap - 1);
        q->n--;
    }
    q->head = q->off = 0;
}

size_t rbufq_free(struct rbufq *q)
{
    rbufq_empty(q);
    size_t had = q->cap * sizeof(*q->v);
    free(q->v);
    *q = (struct rbufq){0};
    return had;
}
