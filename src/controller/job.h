/*
 * What the Job, CronJob and TTL-after-finished controllers share about a
 * Job: its conditions and whether it has finished, as Kubernetes' job
 * utilities (pkg/controller/job/util) read them.
 */
#ifndef CORACLE_CONTROLLER_JOB_H
#define CORACLE_CONTROLLER_JOB_H

#include "coracle.pb-c.h"

#include <stdbool.h>
#include <stdint.h>

/* The condition of this type ("Complete", "Failed", ...), or NULL; borrowed from job. */
const Coracle__V1__JobCondition *job_condition(const Coracle__V1__Job *job, const char *type);

/*
 * Whether job has finished: its Complete or Failed condition is True.
 * OUT (each may be NULL): *type that condition's type (borrowed, "Complete"
 * or "Failed"), *at_s when it became True (seconds since the epoch, 0 if
 * it does not say).
 */
bool job_finished(const Coracle__V1__Job *job, const char **type, int64_t *at_s);

#endif
