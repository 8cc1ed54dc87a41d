/*
 * tap.h: a tiny TAP producer for the C unit tests (prove reads it).
 *   plan(n) or done_testing(); ok(cond, fmt, ...); is_int(a, b, name);
 *   is_str(a, b, name); diag(fmt, ...).
 * Header-only so each test is one .c that #includes what it tests.
 */
#ifndef CORACLE_TAP_H
#define CORACLE_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static inline void plan(int n)
{
    printf("1..%d\n", n);
}

static inline void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("# ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static inline int ok_(int cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int ok_(int cond, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tap_n++;
    printf("%sok %d - ", cond ? "" : "not ", tap_n);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (!cond) {
        tap_failed++;
        printf("#   Failed at %s line %d\n", file, line);
    }
    fflush(stdout);
    return cond;
}
#define ok(cond, ...) ok_(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(a, b, name)                                                                         \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (!ok(a_ == b_, "%s", name))                                                             \
            diag("     got: %lld\n#   expected: %lld", a_, b_);                                    \
    } while (0)

#define is_str(a, b, name)                                                                         \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        int eq_ = (a_ && b_) ? strcmp(a_, b_) == 0 : a_ == b_;                                     \
        if (!ok(eq_, "%s", name))                                                                  \
            diag("     got: '%s'\n#   expected: '%s'", a_ ? a_ : "(null)", b_ ? b_ : "(null)");    \
    } while (0)

static inline int done_testing(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
