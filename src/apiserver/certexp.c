/*
 * certexp: certificate expiry as a metric and a warning. See certexp.h.
 */
#include "config.h"
#include "certexp.h"
#include "util.h"

#include <inttypes.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WARN_DAYS 30
#define CHECK_S (24 * 3600)

struct cert_seen {
    char *file, *subject;
    int64_t not_after;
};

struct certexp {
    char **files;
    size_t nfiles;
    struct cert_seen *certs;
    size_t ncerts;
    struct event *timer;
};

static int64_t asn1_unix(const ASN1_TIME *t)
{
    struct tm tm;
    return t && ASN1_TIME_to_tm(t, &tm) == 1 ? (int64_t)timegm(&tm) : 0;
}

static void certs_clear(certexp_t *ce)
{
    for (size_t i = 0; i < ce->ncerts; i++) {
        free(ce->certs[i].file);
        free(ce->certs[i].subject);
    }
    free(ce->certs);
    ce->certs = NULL;
    ce->ncerts = 0;
}

/* Every certificate in path. */
static void read_file(certexp_t *ce, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        log_warn("certificate expiry: cannot read %s", path);
        return;
    }
    X509 *c;
    while ((c = PEM_read_X509(f, NULL, NULL, NULL))) {
        char *subj = X509_NAME_oneline(X509_get_subject_name(c), NULL, 0);
        ce->certs = xrealloc(ce->certs, (ce->ncerts + 1) * sizeof(*ce->certs));
        ce->certs[ce->ncerts++] = (struct cert_seen){xstrdup(path), xstrdup(subj ? subj : ""),
                                                     asn1_unix(X509_get0_notAfter(c))};
        OPENSSL_free(subj);
        X509_free(c);
    }
    ERR_clear_error();
    fclose(f);
}

static void check(certexp_t *ce)
{
    certs_clear(ce);
    for (size_t i = 0; i < ce->nfiles; i++)
        read_file(ce, ce->files[i]);
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < ce->ncerts; i++) {
        const struct cert_seen *s = &ce->certs[i];
        int64_t left = s->not_after - now;
        if (left <= 0)
            log_warn("certificate %s in %s has expired: renew it (contrib/certs renew)", s->subject,
                     s->file);
        else if (left < WARN_DAYS * 86400LL)
            log_warn("certificate %s in %s expires in %" PRId64 " days: renew it (contrib/certs "
                     "renew)",
                     s->subject, s->file, left / 86400);
    }
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    certexp_t *ce = arg;
    check(ce);
    struct timeval tv = {CHECK_S, 0};
    evtimer_add(ce->timer, &tv);
}

certexp_t *certexp_new(struct event_base *base, const char *const *files, size_t n)
{
    certexp_t *ce = xcalloc(1, sizeof(*ce));
    ce->files = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        if (files[i] && *files[i])
            ce->files[ce->nfiles++] = xstrdup(files[i]);
    ce->timer = evtimer_new(base, tick, ce);
    tick(-1, 0, ce);
    return ce;
}

void certexp_reload(certexp_t *ce)
{
    if (ce)
        check(ce);
}

/* A label value: backslash, quote and newline escaped, as the text format wants. */
static void label(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f);
        if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

void certexp_metrics(FILE *f, void *arg)
{
    certexp_t *ce = arg;
    if (!ce || !ce->ncerts)
        return;
    fprintf(f, "# HELP coracle_certificate_expiration_timestamp_seconds The date after which "
               "the certificate expires (notAfter), unix seconds.\n"
               "# TYPE coracle_certificate_expiration_timestamp_seconds gauge\n");
    for (size_t i = 0; i < ce->ncerts; i++) {
        fputs("coracle_certificate_expiration_timestamp_seconds{file=\"", f);
        label(f, ce->certs[i].file);
        fputs("\",subject=\"", f);
        label(f, ce->certs[i].subject);
        fprintf(f, "\"} %" PRId64 "\n", ce->certs[i].not_after);
    }
}

void certexp_free(certexp_t *ce)
{
    if (!ce)
        return;
    certs_clear(ce);
    for (size_t i = 0; i < ce->nfiles; i++)
        free(ce->files[i]);
    free(ce->files);
    event_free(ce->timer);
    free(ce);
}
