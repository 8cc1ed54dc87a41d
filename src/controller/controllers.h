/*
 * The controllers of coracle-controller-manager, each a struct ctrl_def
 * run by cm (cm.h). --controllers names them as kube-controller-manager
 * does ("replicaset", "deployment", ...).
 */
#ifndef CORACLE_CONTROLLERS_H
#define CORACLE_CONTROLLERS_H

#include "cm.h"

extern const struct ctrl_def ctrl_replicaset;
extern const struct ctrl_def ctrl_daemonset;
extern const struct ctrl_def ctrl_deployment;
extern const struct ctrl_def ctrl_garbagecollector;
extern const struct ctrl_def ctrl_job;
extern const struct ctrl_def ctrl_ttlafterfinished;
extern const struct ctrl_def ctrl_cronjob;
extern const struct ctrl_def ctrl_rootcacertpublisher;
extern const struct ctrl_def ctrl_clusterroleaggregation;
extern const struct ctrl_def ctrl_nodeipam;
extern const struct ctrl_def ctrl_endpointslice;
extern const struct ctrl_def ctrl_csrapproving;
extern const struct ctrl_def ctrl_csrsigning;
extern const struct ctrl_def ctrl_tokencleaner;

/* The signing controller's read-only configuration, set by main before cm_start. */
struct ctrl_certs_cfg {
    const char *cert_file; /* --cluster-signing-cert-file (NULL: nothing is signed) */
    const char *key_file;  /* --cluster-signing-key-file */
    int64_t duration_s;    /* --cluster-signing-duration (default 8760h) */
};
extern struct ctrl_certs_cfg ctrl_certs_cfg;

/* Every controller, NULL-terminated, in the order they start. */
extern const struct ctrl_def *const ctrl_all[];

#endif
