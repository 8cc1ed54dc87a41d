/*
 * certexp: the expiry of the control plane's certificates, watched. Each
 * certificate of the files given (the serving chain, the client CA, the
 * etcd client's) is exported on /metrics as a gauge in cert-manager's
 * family, coracle_certificate_expiration_timestamp_seconds{file,subject}
 * (notAfter, unix seconds), and logged as a warning once a day from 30
 * days before it expires. The files are read again at each check (24 h)
 * and on certexp_reload, so a renewal (contrib/certs renew) shows.
 */
#ifndef CORACLE_CERTEXP_H
#define CORACLE_CERTEXP_H

#include <event2/event.h>
#include <stdio.h>

typedef struct certexp certexp_t;

/* files: paths (NULL or "" entries skipped), copied. Checks now and every day on base. */
certexp_t *certexp_new(struct event_base *base, const char *const *files, size_t n);
/* Reads the files again (SIGHUP). */
void certexp_reload(certexp_t *ce);
/* The gauge lines (an api_config.metrics_extra hook; arg: the certexp_t). */
void certexp_metrics(FILE *f, void *arg);
void certexp_free(certexp_t *ce);

#endif
