/*
 * The table of controllers. See controllers.h.
 */
#include "config.h"

#include "controllers.h"

#include <stddef.h>

/* one line a controller, so that adding one touches one line */
/* clang-format off */
const struct ctrl_def *const ctrl_all[] = {
    &ctrl_replicaset,
    &ctrl_daemonset,
    &ctrl_deployment,
    &ctrl_garbagecollector,
    &ctrl_job,
    &ctrl_ttlafterfinished,
    &ctrl_cronjob,
    &ctrl_rootcacertpublisher,
    &ctrl_clusterroleaggregation,
    &ctrl_nodeipam,
    &ctrl_csrapproving,
    &ctrl_csrsigning,
    &ctrl_tokencleaner,
    &ctrl_endpointslice,
    NULL,
};
/* clang-format on */
