/*
 * util: the small things every coracle program needs. Allocation that
 * aborts instead of returning NULL (so callers never check), logging to
 * stderr with levels (journald priority prefixes under systemd), clocks,
 * and a reference-counted byte buffer used to encode a message once and
 * hand the same bytes to many streams.
 */
#ifndef CORACLE_UTIL_H
#define CORACLE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Allocation: abort with a message on failure; never return NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
/*
 * Arrays that grow one element at a time: xgrow returns p with room for
 * element n (of size bytes each), doubling *cap when full, so n pushes cost
 * O(n) in all. (Growing by one element per realloc is quadratic wherever
 * realloc cannot extend the block in place: under ASan always.)
 * XPUSH(arr, n, cap) grows arr and returns a pointer to its new last element,
 * counted in n.
 */
void *xgrow(void *p, size_t *cap, size_t n, size_t size);
#define XPUSH(arr, n, cap) ((arr) = xgrow((arr), &(cap), (n), sizeof(*(arr))), &(arr)[(n)++])
char *xasprintf(const char *fmt, ...) PRINTF(1, 2);
char *xvasprintf(const char *fmt, va_list ap);
/*
 * Gives the memory free()d so far back to the system now, rather than when
 * the allocator would (jemalloc keeps freed pages for seconds): after a
 * burst was dropped, so resident memory follows what is really held.
 */
void mem_release(void);
/* v in decimal (malloc'd), without printf's format parsing. */
char *xu64str(uint64_t v);
/* v in decimal written at the end of buf (U64STR_MAX bytes); returns where it starts in buf. */
#define U64STR_MAX 21
char *u64str(char *buf, uint64_t v);
/* The strings up to a NULL, one after the other (malloc'd): no format to parse. */
char *xconcat(const char *s, ...) __attribute__((sentinel));

/* Logging. Levels follow syslog; the default is LOG_LVL_INFO. */
enum log_level {
    LOG_LVL_ERR = 3,
    LOG_LVL_WARN = 4,
    LOG_LVL_NOTICE = 5,
    LOG_LVL_INFO = 6,
    LOG_LVL_DEBUG = 7,
};
/* Program name shown in plain (non-journald) log lines. */
void log_init(const char *progname);
void log_set_level(enum log_level lvl);
/* "error", "warn", "info", "debug" (or 3..7); -1 if unknown. */
int log_level_parse(const char *s);
int log_enabled(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...) PRINTF(2, 3);
#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_LVL_DEBUG))                                                            \
            log_msg(LOG_LVL_DEBUG, __VA_ARGS__);                                                   \
    } while (0)
/* Log at LOG_LVL_ERR and exit(1). */
void fatal(const char *fmt, ...) PRINTF(1, 2) __attribute__((noreturn));

/*
 * Ignores SIGPIPE unless the program chose a handler already. libevent
 * writes to sockets with writev(), which raises SIGPIPE on a connection the
 * peer closed: ignored, the write fails with EPIPE instead of killing the
 * process. SIG_IGN survives exec: a child that runs another program
 * restores SIG_DFL first.
 */
void sigpipe_ignore(void);

/* Clocks. */
int64_t now_ns(void);  /* CLOCK_REALTIME in ns */
int64_t mono_ns(void); /* CLOCK_MONOTONIC in ns */
/*
 * A Go duration ("5m", "1h30m", "2.5s", "300ms", "0"), as Kubernetes' flags
 * take them, into *ns. 0, or -1 if s is not one (or negative, or overflows).
 */
int parse_duration(const char *s, int64_t *ns);

/* A UUID v4 in canonical text form into buf[37]. */
void uuid_v4(char buf[37]);

/*
 * rbuf: an immutable, reference-counted byte buffer. rbuf_new copies the
 * bytes; the creator holds one reference. Whoever keeps the buffer takes a
 * reference with rbuf_ref and drops it with rbuf_unref; the last unref
 * frees it. Not thread-safe: use from one thread (the event loop).
 */
typedef struct rbuf {
    uint32_t refs;
    size_t len;
    uint8_t data[];
} rbuf_t;
rbuf_t *rbuf_new(const void *data, size_t len);
rbuf_t *rbuf_alloc(size_t len); /* uninitialised data, refs = 1 */
static inline rbuf_t *rbuf_ref(rbuf_t *b)
{
    b->refs++;
    return b;
}
void rbuf_unref(rbuf_t *b);

/*
 * rbufq: a FIFO ring of rbufs being sent, off bytes of the head already
 * gone (the gRPC server's and client's outgoing messages). Zero-initialised
 * is empty. Its capacity is a power of two, so indexes wrap with a mask: a
 * division per message queued and sent was a visible part of a watch
 * delivery's time.
 */
struct rbufq {
    rbuf_t **v;
    size_t head, n, cap, off;
};
/* Appends b (the queue takes the reference). Returns the bytes the ring grew by. */
size_t rbufq_push(struct rbufq *q, rbuf_t *b);
static inline rbuf_t *rbufq_at(const struct rbufq *q, size_t i)
{
    return q->v[(q->head + i) & (q->cap - 1)]; /* cap: a power of two */
}
/* k more bytes of the head buffer were sent; an rbuf all sent is dropped. */
void rbufq_advance(struct rbufq *q, size_t k);
/* Drops every rbuf; keeps the ring for reuse. */
void rbufq_empty(struct rbufq *q);
/* Drops every rbuf and the ring. Returns the bytes the ring had. */
size_t rbufq_free(struct rbufq *q);

#endif
