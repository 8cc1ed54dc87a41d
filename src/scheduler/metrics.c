/*
 * metrics: the scheduler as its operator sees it, the Prometheus text of
 * /metrics and the STATUS= line of `systemctl status`, both read from
 * sched_get_stats.
 */
#include "config.h"
#include "sched.h"

#include <stdio.h>

void sched_describe(char *buf, size_t len, void *arg)
{
    const sched_t *s = arg;
    struct sched_stats st;
    sched_get_stats(s, &st);
    snprintf(buf, len, "%zu nodes, %llu pods bound, %llu unschedulable attempts", st.nodes,
             (unsigned long long)st.bound, (unsigned long long)st.unschedulable);
}

void sched_metrics_write(FILE *f, void *arg)
{
    const sched_t *s = arg;
    struct sched_stats st;
    sched_get_stats(s, &st);
    uint64_t errors = st.bind_errors;
    fprintf(f,
            "# HELP coracle_scheduler_schedule_attempts_total Scheduling attempts by result.\n"
            "# TYPE coracle_scheduler_schedule_attempts_total counter\n"
            "coracle_scheduler_schedule_attempts_total{result=\"scheduled\"} %llu\n"
            "coracle_scheduler_schedule_attempts_total{result=\"unschedulable\"} %llu\n"
            "coracle_scheduler_schedule_attempts_total{result=\"error\"} %llu\n"
            "# HELP coracle_scheduler_attempts_total Scheduling attempts, all results.\n"
            "# TYPE coracle_scheduler_attempts_total counter\n"
            "coracle_scheduler_attempts_total %llu\n"
            "# HELP coracle_scheduler_nodes Nodes the scheduler knows.\n"
            "# TYPE coracle_scheduler_nodes gauge\n"
            "coracle_scheduler_nodes %zu\n"
            "# HELP coracle_scheduler_pods_charged Bound or assumed pods charged to nodes.\n"
            "# TYPE coracle_scheduler_pods_charged gauge\n"
            "coracle_scheduler_pods_charged %zu\n",
            (unsigned long long)st.bound, (unsigned long long)st.unschedulable,
            (unsigned long long)errors, (unsigned long long)st.attempts, st.nodes, st.pods_charged);
    fprintf(f,
            "# HELP coracle_scheduler_pending_pods Pods waiting, by queue.\n"
            "# TYPE coracle_scheduler_pending_pods gauge\n"
            "coracle_scheduler_pending_pods{queue=\"active\"} %zu\n"
            "coracle_scheduler_pending_pods{queue=\"backoff\"} %zu\n"
            "coracle_scheduler_pending_pods{queue=\"unschedulable\"} %zu\n"
            "# HELP coracle_scheduler_binds_inflight Bind calls not yet answered.\n"
            "# TYPE coracle_scheduler_binds_inflight gauge\n"
            "coracle_scheduler_binds_inflight %zu\n",
            st.q_active, st.q_backoff, st.q_unschedulable, st.binds_inflight);
    fprintf(f, "# HELP coracle_scheduler_scheduling_algorithm_duration_seconds Filter and score "
               "time per attempt.\n"
               "# TYPE coracle_scheduler_scheduling_algorithm_duration_seconds histogram\n");
    obs_hist_write(f, "coracle_scheduler_scheduling_algorithm_duration_seconds", NULL,
                   st.algorithm_seconds);
    fprintf(f, "# HELP coracle_scheduler_e2e_scheduling_duration_seconds From the attempt to the "
               "Bind answered.\n"
               "# TYPE coracle_scheduler_e2e_scheduling_duration_seconds histogram\n");
    obs_hist_write(f, "coracle_scheduler_e2e_scheduling_duration_seconds", NULL, st.e2e_seconds);
}
