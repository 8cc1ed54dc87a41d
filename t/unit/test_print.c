/*
 * test_print: kubectl's human output in coraclectl, against objects built in
 * memory (through the YAML mapper, which is the shortest way to write one)
 * and a fixed "now": STATUS/READY/RESTARTS over a matrix of pod states,
 * HumanDuration, the tabwriter's column blocks, get tables, describe.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "describe.h"
#include "print.h"
#include "tap.h"
#include "testobj.h"
#include "kobj.h"

/* 2026-11-28T12:00:00Z */
#define NOW_S 1795867200LL
#define NOW (NOW_S * 1000000000LL)

static Coracle__V1__Pod *pod(const char *rest)
{
    char *y = xasprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n"
                        "  creationTimestamp: \"2026-11-28T11:57:00Z\"\n%s",
                        rest);
    ProtobufCMessage *m = obj(y);
    free(y);
    return (Coracle__V1__Pod *)m;
}

struct status_case {
    const char *name, *yaml, *ready, *status, *restarts;
};

#define ONE "spec:\n  containers:\n  - name: a\n"
#define TWO "spec:\n  containers:\n  - name: a\n  - name: b\n"
#define DEL "  deletionTimestamp: \"2026-11-28T11:59:00Z\"\n"
#define INIT2 "spec:\n  initContainers:\n  - name: i1\n  - name: i2\n  containers:\n  - name: a\n"

static const struct status_case cases[] = {
    {"pending", ONE "status:\n  phase: Pending\n", "0/1", "Pending", "0"},
    {"no status", ONE, "0/1", "", "0"},
    {"creating",
     ONE "status:\n  phase: Pending\n  containerStatuses:\n  - name: a\n    state:\n"
         "      waiting:\n        reason: ContainerCreating\n",
     "0/1", "ContainerCreating", "0"},
    {"running",
     ONE "status:\n  phase: Running\n  containerStatuses:\n  - name: a\n    ready: "
         "true\n    state:\n      running:\n        startedAt: "
         "\"2026-11-28T11:58:00Z\"\n",
     "1/1", "Running", "0"},
    {"running not ready",
     ONE "status:\n  phase: Running\n  containerStatuses:\n  - name: a\n"
         "    ready: false\n    state:\n      running: {}\n",
     "0/1", "Running", "0"},
    {"crashloop",
     ONE "status:\n  phase: Running\n  containerStatuses:\n  - name: a\n"
         "    restartCount: 4\n    state:\n      waiting:\n        reason: "
         "CrashLoopBackOff\n    lastState:\n      terminated:\n        exitCode: 1\n"
         "        finishedAt: \"2026-11-28T11:58:00Z\"\n",
     "0/1", "CrashLoopBackOff", "4 (2m ago)"},
    {"err image pull",
     ONE "status:\n  phase: Pending\n  containerStatuses:\n  - name: a\n"
         "    state:\n      waiting:\n        reason: ErrImagePull\n",
     "0/1", "ErrImagePull", "0"},
    {"completed",
     ONE "status:\n  phase: Succeeded\n  containerStatuses:\n  - name: a\n"
         "    state:\n      terminated:\n        exitCode: 0\n        reason: "
         "Completed\n",
     "0/1", "Completed", "0"},
    {"error",
     ONE "status:\n  phase: Failed\n  containerStatuses:\n  - name: a\n    state:\n"
         "      terminated:\n        exitCode: 1\n        reason: Error\n",
     "0/1", "Error", "0"},
    {"oomkilled",
     ONE "status:\n  phase: Running\n  containerStatuses:\n  - name: a\n"
         "    restartCount: 1\n    state:\n      terminated:\n        exitCode: 137\n"
         "        reason: OOMKilled\n",
     "0/1", "OOMKilled", "1"},
    {"exit code",
     ONE "status:\n  phase: Failed\n  containerStatuses:\n  - name: a\n    state:\n"
         "      terminated:\n        exitCode: 2\n",
     "0/1", "ExitCode:2", "0"},
    {"signal",
     ONE "status:\n  phase: Failed\n  containerStatuses:\n  - name: a\n    state:\n"
         "      terminated:\n        exitCode: 137\n        signal: 9\n",
     "0/1", "Signal:9", "0"},
    {"init 0/2",
     INIT2 "status:\n  phase: Pending\n  initContainerStatuses:\n  - name: i1\n"
           "    state:\n      waiting:\n        reason: PodInitializing\n",
     "0/1", "Init:0/2", "0"},
    {"init 1/2",
     INIT2 "status:\n  phase: Pending\n  initContainerStatuses:\n  - name: i1\n"
           "    state:\n      terminated:\n        exitCode: 0\n  - name: i2\n"
           "    state:\n      running: {}\n",
     "0/1", "Init:1/2", "0"},
    {"init error",
     INIT2 "status:\n  phase: Pending\n  initContainerStatuses:\n  - name: i1\n"
           "    restartCount: 3\n    state:\n      terminated:\n        exitCode: 1\n"
           "        reason: Error\n    lastState:\n      terminated:\n"
           "        finishedAt: \"2026-11-28T11:00:00Z\"\n",
     "0/1", "Init:Error", "3 (60m ago)"},
    {"init exit code",
     INIT2 "status:\n  phase: Pending\n  initContainerStatuses:\n  - name: i1\n"
           "    state:\n      terminated:\n        exitCode: 3\n",
     "0/1", "Init:ExitCode:3", "0"},
    {"init signal",
     INIT2 "status:\n  phase: Pending\n  initContainerStatuses:\n  - name: i1\n"
           "    state:\n      terminated:\n        exitCode: 1\n        signal: 15\n",
     "0/1", "Init:Signal:15", "0"},
    {"init crashloop",
     INIT2 "status:\n  phase: Pending\n  initContainerStatuses:\n  - name: i1\n"
           "    state:\n      waiting:\n        reason: CrashLoopBackOff\n",
     "0/1", "Init:CrashLoopBackOff", "0"},
    {"initialized condition",
     INIT2 "status:\n  phase: Running\n  conditions:\n  - type: Initialized\n    status: \"True\"\n"
           "  initContainerStatuses:\n  - name: i1\n    state:\n      running: {}\n"
           "  containerStatuses:\n  - name: a\n    ready: true\n    state:\n      running: {}\n",
     "1/1", "Init:0/2", "0"},
    {"terminating", DEL ONE "status:\n  phase: Running\n", "0/1", "Terminating", "0"},
    {"terminating succeeded", DEL ONE "status:\n  phase: Succeeded\n", "0/1", "Succeeded", "0"},
    {"node lost", DEL ONE "status:\n  phase: Running\n  reason: NodeLost\n", "0/1", "Unknown", "0"},
    {"evicted", ONE "status:\n  phase: Failed\n  reason: Evicted\n", "0/1", "Evicted", "0"},
    {"completed + running, ready",
     TWO "status:\n  phase: Running\n  conditions:\n  - type: Ready\n    status: \"True\"\n"
         "  containerStatuses:\n  - name: a\n    state:\n      terminated:\n        exitCode: 0\n"
         "        reason: Completed\n  - name: b\n    ready: true\n    state:\n      running: {}\n",
     "1/2", "Running", "0"},
    {"completed + running, not ready",
     TWO "status:\n  phase: Running\n  conditions:\n  - type: Ready\n    status: \"False\"\n"
         "  containerStatuses:\n  - name: a\n    state:\n      terminated:\n        exitCode: 0\n"
         "        reason: Completed\n  - name: b\n    ready: true\n    state:\n      running: {}\n",
     "1/2", "NotReady", "0"},
    {"first container's reason wins",
     TWO
     "status:\n  phase: Pending\n  containerStatuses:\n  - name: a\n    state:\n      waiting:\n"
     "        reason: ErrImagePull\n  - name: b\n    state:\n      waiting:\n"
     "        reason: ContainerCreating\n",
     "0/2", "ErrImagePull", "0"},
    {"restarts summed, latest",
     TWO "status:\n  phase: Running\n  containerStatuses:\n  - name: a\n    restartCount: 2\n"
         "    ready: true\n    state:\n      running: {}\n    lastState:\n      terminated:\n"
         "        finishedAt: \"2026-11-28T09:00:00Z\"\n  - name: b\n    restartCount: 1\n"
         "    ready: true\n    state:\n      running: {}\n    lastState:\n      terminated:\n"
         "        finishedAt: \"2026-11-28T11:59:15Z\"\n",
     "2/2", "Running", "3 (45s ago)"},
    {"scheduling gated",
     ONE "status:\n  phase: Pending\n  conditions:\n  - type: PodScheduled\n"
         "    status: \"False\"\n    reason: SchedulingGated\n",
     "0/1", "SchedulingGated", "0"},
};

static void test_status(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        const struct status_case *c = &cases[i];
        Coracle__V1__Pod *p = pod(c->yaml);
        struct ctl_pod_summary s;
        char ready[16], restarts[64];
        ctl_pod_summary(p, &s);
        snprintf(ready, sizeof(ready), "%d/%d", s.ready, s.total);
        ctl_pod_restarts(restarts, sizeof(restarts), &s, NOW);
        char name[128];
        snprintf(name, sizeof(name), "%s: STATUS", c->name);
        is_str(s.status, c->status, name);
        snprintf(name, sizeof(name), "%s: READY", c->name);
        is_str(ready, c->ready, name);
        snprintf(name, sizeof(name), "%s: RESTARTS", c->name);
        is_str(restarts, c->restarts, name);
        protobuf_c_message_free_unpacked(&p->base, NULL);
    }
}

static void test_durations(void)
{
    static const struct {
        long long s;
        const char *want;
    } d[] = {
        {0, "0s"},
        {-1, "0s"},
        {-3, "<invalid>"},
        {45, "45s"},
        {119, "119s"},
        {120, "2m"},
        {192, "3m12s"},
        {599, "9m59s"},
        {600, "10m"},
        {179 * 60, "179m"},
        {3 * 3600, "3h"},
        {3 * 3600 + 300, "3h5m"},
        {8 * 3600, "8h"},
        {47 * 3600, "47h"},
        {48 * 3600, "2d"},
        {76 * 3600, "3d4h"},
        {8 * 86400, "8d"},
        {729 * 86400, "729d"},
        {730 * 86400, "2y"},
        {800 * 86400, "2y70d"},
        {3000 * 86400LL, "8y"},
    };
    for (size_t i = 0; i < sizeof(d) / sizeof(*d); i++) {
        char buf[32], name[64];
        ctl_human_duration(buf, sizeof(buf), d[i].s * 1000000000LL);
        snprintf(name, sizeof(name), "HumanDuration(%llds)", d[i].s);
        is_str(buf, d[i].want, name);
    }
    char buf[32];
    ctl_age(buf, sizeof(buf), NULL, NOW);
    is_str(buf, "<unknown>", "unset time");
}

static void test_tabwriter(void)
{
    struct ctl_tw tw;
    struct buf out = {0};
    ctl_tw_init(&tw, 6, 3, false);
    ctl_tw_printf(&tw, "NAME\tREADY\tAGE\n");
    ctl_tw_printf(&tw, "a\t1/1\t5s\n");
    ctl_tw_printf(&tw, "longer-name\t0/1\t<unknown>\n");
    ctl_tw_flush(&tw, &out);
    is_str(out.p,
           "NAME          READY   AGE\n"
           "a             1/1     5s\n"
           "longer-name   0/1     <unknown>\n",
           "get table: padding 3, minimum width 6, last column free");
    buf_free(&out);
    ctl_tw_free(&tw);

    /* column blocks end at a line without that column (describe's layout) */
    ctl_tw_init(&tw, 0, 2, false);
    ctl_tw_printf(&tw, "Name:\tx\nService Account:\ty\nIPs:\n  IP:\t1.2.3.4\n"
                       "Containers:\n  c:\n    Image:\ti\n    Restart Count:\t0\nQoS:\tB\n");
    ctl_tw_flush(&tw, &out);
    is_str(out.p,
           "Name:             x\n"
           "Service Account:  y\n"
           "IPs:\n"
           "  IP:  1.2.3.4\n"
           "Containers:\n"
           "  c:\n"
           "    Image:          i\n"
           "    Restart Count:  0\n"
           "QoS:                B\n",
           "describe: column blocks as Go's tabwriter");
    buf_free(&out);
    ctl_tw_free(&tw);

    /* remembered widths (get -w): later rows keep earlier widths, wider ones grow */
    ctl_tw_init(&tw, 6, 3, true);
    ctl_tw_printf(&tw, "NAME\tSTATUS\tAGE\nlong-pod-name\tPending\t1s\n");
    ctl_tw_flush(&tw, &out);
    ctl_tw_printf(&tw, "a\tRunning\t2s\n");
    ctl_tw_flush(&tw, &out);
    ctl_tw_printf(&tw, "a\tContainerCreating\t3s\n");
    ctl_tw_flush(&tw, &out);
    is_str(out.p,
           "NAME            STATUS    AGE\n"
           "long-pod-name   Pending   1s\n"
           "a               Running   2s\n"
           "a               ContainerCreating   3s\n",
           "watch rows remember widths");
    buf_free(&out);
    ctl_tw_free(&tw);
}

static char *table(const struct kind *k, ProtobufCMessage **objs, size_t n, bool wide, bool all_ns)
{
    struct ctl_tw tw;
    struct buf out = {0};
    struct ctl_print_opts o = {.wide = wide, .all_ns = all_ns, .now_ns = NOW};
    ctl_tw_init(&tw, 6, 3, false);
    ctl_print_header(&tw, k, &o);
    for (size_t i = 0; i < n; i++)
        ctl_print_row(&tw, k, objs[i], &o);
    ctl_tw_flush(&tw, &out);
    ctl_tw_free(&tw);
    return buf_take(&out);
}

static void test_tables(void)
{
    ProtobufCMessage *pods[2];
    pods[0] = &pod("  namespace: default\n" ONE "  nodeName: n1\nstatus:\n  phase: Running\n"
                   "  podIP: 10.88.0.5\n  podIPs:\n  - ip: 10.88.0.5\n  containerStatuses:\n"
                   "  - name: a\n    ready: true\n    state:\n      running: {}\n")
                   ->base;
    pods[1] = obj("apiVersion: v1\nkind: Pod\nmetadata:\n  name: nginx-with-long-name\n"
                  "  namespace: kube-system\n"
                  "  creationTimestamp: \"2026-11-25T08:00:00Z\"\nspec:\n  containers:\n"
                  "  - name: a\n  - name: b\nstatus:\n  phase: Pending\n"
                  "  nominatedNodeName: n2\n");
    char *t = table(&kind_pod, pods, 2, false, false);
    is_str(t,
           "NAME                   READY   STATUS    RESTARTS   AGE\n"
           "p                      1/1     Running   0          3m\n"
           "nginx-with-long-name   0/2     Pending   0          3d4h\n",
           "get pods");
    free(t);
    t = table(&kind_pod, pods, 2, true, true);
    is_str(t,
           "NAMESPACE     NAME                   READY   STATUS    RESTARTS   AGE    IP          "
           "NODE     NOMINATED NODE   READINESS GATES\n"
           "default       p                      1/1     Running   0          3m     10.88.0.5   "
           "n1       <none>           <none>\n"
           "kube-system   nginx-with-long-name   0/2     Pending   0          3d4h   <none>      "
           "<none>   n2               <none>\n",
           "get pods -o wide -A");
    free(t);
    protobuf_c_message_free_unpacked(pods[0], NULL);
    protobuf_c_message_free_unpacked(pods[1], NULL);

    ProtobufCMessage *nodes[3];
    nodes[0] = obj("apiVersion: v1\nkind: Node\nmetadata:\n  name: edge-1\n"
                   "  creationTimestamp: \"2026-11-28T10:00:00Z\"\n  labels:\n"
                   "    node-role.kubernetes.io/worker: \"\"\n"
                   "    node-role.kubernetes.io/edge: \"\"\nstatus:\n  conditions:\n"
                   "  - type: Ready\n    status: \"True\"\n  nodeInfo:\n"
                   "    kubeletVersion: v0.1.0\n");
    nodes[1] = obj("apiVersion: v1\nkind: Node\nmetadata:\n  name: edge-2\n"
                   "  creationTimestamp: \"2026-11-28T11:59:30Z\"\nspec:\n  unschedulable: true\n"
                   "status:\n  conditions:\n  - type: Ready\n    status: Unknown\n");
    nodes[2] = obj("apiVersion: v1\nkind: Node\nmetadata:\n  name: edge-3\n");
    t = table(&kind_node, nodes, 3, false, false);
    is_str(t,
           "NAME     STATUS                        ROLES         AGE         VERSION\n"
           "edge-1   Ready                         edge,worker   120m        v0.1.0\n"
           "edge-2   NotReady,SchedulingDisabled   <none>        30s         \n"
           "edge-3   Unknown                       <none>        <unknown>   \n",
           "get nodes");
    free(t);
    for (int i = 0; i < 3; i++)
        protobuf_c_message_free_unpacked(nodes[i], NULL);

    ProtobufCMessage *ev = obj("apiVersion: v1\nkind: Event\nmetadata:\n  name: nginx.1\n"
                               "  namespace: default\ninvolvedObject:\n  kind: Pod\n"
                               "  name: nginx\nreason: Scheduled\nmessage: \"Successfully "
                               "assigned default/nginx to n1 \"\nsource:\n"
                               "  component: default-scheduler\n"
                               "firstTimestamp: \"2026-11-28T11:50:00Z\"\n"
                               "lastTimestamp: \"2026-11-28T11:59:00Z\"\ncount: 3\n"
                               "type: Normal\n");
    t = table(&kind_event, &ev, 1, false, false);
    is_str(t,
           "LAST SEEN   TYPE     REASON      OBJECT      MESSAGE\n"
           "60s         Normal   Scheduled   pod/nginx   Successfully assigned default/nginx "
           "to n1\n",
           "get events");
    free(t);
    protobuf_c_message_free_unpacked(ev, NULL);

    ProtobufCMessage *lease = obj("apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n"
                                  "  name: n1\n  namespace: kube-node-lease\n"
                                  "  creationTimestamp: \"2026-11-28T11:00:00Z\"\nspec:\n"
                                  "  holderIdentity: n1\n");
    t = table(&kind_lease, &lease, 1, false, true);
    is_str(t,
           "NAMESPACE         NAME   HOLDER   AGE\n"
           "kube-node-lease   n1     n1       60m\n",
           "get leases -A");
    free(t);
    protobuf_c_message_free_unpacked(lease, NULL);
}

static void test_describe(void)
{
    Coracle__V1__Pod *p = (Coracle__V1__Pod *)obj(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: mc1\n  namespace: default\n"
        "  labels:\n    app: web\n    tier: front\n  annotations:\n"
        "    kubectl.kubernetes.io/last-applied-configuration: '{}'\n"
        "  creationTimestamp: \"2026-11-28T11:50:00Z\"\n"
        "spec:\n  nodeName: nbt\n  serviceAccountName: default\n  priority: 0\n"
        "  volumes:\n  - name: html\n    emptyDir: {}\n"
        "  containers:\n  - name: 1st\n    image: nginx\n    ports:\n    - containerPort: 80\n"
        "      protocol: TCP\n    volumeMounts:\n    - name: html\n"
        "      mountPath: /usr/share/nginx/html\n"
        "    livenessProbe:\n      httpGet:\n        path: /healthz\n        port: 80\n"
        "      periodSeconds: 10\n      timeoutSeconds: 1\n      successThreshold: 1\n"
        "      failureThreshold: 3\n"
        "    resources:\n      limits:\n        memory: 128Mi\n        cpu: 500m\n"
        "  - name: 2nd\n    image: debian\n    command: [/bin/sh, -c]\n"
        "    env:\n    - name: MODE\n      value: demo\n"
        "  tolerations:\n  - key: node.kubernetes.io/not-ready\n    operator: Exists\n"
        "    effect: NoExecute\n    tolerationSeconds: 300\n"
        "status:\n  phase: Running\n  hostIP: 10.0.0.5\n  podIP: 10.88.0.7\n"
        "  podIPs:\n  - ip: 10.88.0.7\n  startTime: \"2026-11-28T11:50:01Z\"\n"
        "  qosClass: Burstable\n"
        "  conditions:\n  - type: Ready\n    status: \"True\"\n  - type: PodScheduled\n"
        "    status: \"True\"\n"
        "  containerStatuses:\n  - name: 1st\n    ready: true\n    restartCount: 0\n"
        "    image: nginx\n    imageID: sha256:abc\n    containerID: runc://1\n"
        "    state:\n      running:\n        startedAt: \"2026-11-28T11:50:05Z\"\n"
        "  - name: 2nd\n    ready: false\n    restartCount: 2\n    containerID: runc://2\n"
        "    state:\n      waiting:\n        reason: CrashLoopBackOff\n"
        "    lastState:\n      terminated:\n        exitCode: 1\n        reason: Error\n"
        "        startedAt: \"2026-11-28T11:55:00Z\"\n"
        "        finishedAt: \"2026-11-28T11:55:01Z\"\n");
    Coracle__V1__Event *ev[2];
    ev[0] = (Coracle__V1__Event *)obj(
        "apiVersion: v1\nkind: Event\nmetadata:\n  name: e2\ninvolvedObject:\n  kind: Pod\n"
        "  name: mc1\nreason: BackOff\nmessage: Back-off restarting failed container 2nd\n"
        "source:\n  component: kubelet\ntype: Warning\ncount: 4\n"
        "firstTimestamp: \"2026-11-28T11:50:00Z\"\nlastTimestamp: \"2026-11-28T11:57:00Z\"\n");
    ev[1] = (Coracle__V1__Event *)obj(
        "apiVersion: v1\nkind: Event\nmetadata:\n  name: e1\ninvolvedObject:\n  kind: Pod\n"
        "  name: mc1\nreason: Scheduled\nmessage: Successfully assigned default/mc1 to nbt\n"
        "source:\n  component: default-scheduler\ntype: Normal\n"
        "firstTimestamp: \"2026-11-28T11:50:00Z\"\nlastTimestamp: \"2026-11-28T11:50:00Z\"\n");
    struct buf out = {0};
    ctl_describe_pod(&out, p, ev, 2, NOW);
    is_str(out.p,
           "Name:             mc1\n"
           "Namespace:        default\n"
           "Priority:         0\n"
           "Service Account:  default\n"
           "Node:             nbt/10.0.0.5\n"
           "Start Time:       Sat, 28 Nov 2026 11:50:01 +0000\n"
           "Labels:           app=web\n"
           "                  tier=front\n"
           "Annotations:      <none>\n"
           "Status:           Running\n"
           "IP:               10.88.0.7\n"
           "IPs:\n"
           "  IP:  10.88.0.7\n"
           "Containers:\n"
           "  1st:\n"
           "    Container ID:   runc://1\n"
           "    Image:          nginx\n"
           "    Image ID:       sha256:abc\n"
           "    Port:           80/TCP\n"
           "    Host Port:      0/TCP\n"
           "    State:          Running\n"
           "      Started:      Sat, 28 Nov 2026 11:50:05 +0000\n"
           "    Ready:          True\n"
           "    Restart Count:  0\n"
           "    Limits:\n"
           "      cpu:        500m\n"
           "      memory:     128Mi\n"
           "    Liveness:     http-get http://:80/healthz delay=0s timeout=1s period=10s "
           "#success=1 #failure=3\n"
           "    Environment:  <none>\n"
           "    Mounts:\n"
           "      /usr/share/nginx/html from html (rw)\n"
           "  2nd:\n"
           "    Container ID:  runc://2\n"
           "    Image:         debian\n"
           "    Image ID:      \n"
           "    Port:          <none>\n"
           "    Host Port:     <none>\n"
           "    Command:\n"
           "      /bin/sh\n"
           "      -c\n"
           "    State:          Waiting\n"
           "      Reason:       CrashLoopBackOff\n"
           "    Last State:     Terminated\n"
           "      Reason:       Error\n"
           "      Exit Code:    1\n"
           "      Started:      Sat, 28 Nov 2026 11:55:00 +0000\n"
           "      Finished:     Sat, 28 Nov 2026 11:55:01 +0000\n"
           "    Ready:          False\n"
           "    Restart Count:  2\n"
           "    Environment:\n"
           "      MODE:  demo\n"
           "    Mounts:  <none>\n"
           "Conditions:\n"
           "  Type           Status\n"
           "  Ready          True \n"
           "  PodScheduled   True \n"
           "Volumes:\n"
           "  html:\n"
           "    Type:        EmptyDir (a temporary directory that shares a pod's lifetime)\n"
           "    Medium:      \n"
           "    SizeLimit:   <unset>\n"
           "QoS Class:       Burstable\n"
           "Node-Selectors:  <none>\n"
           "Tolerations:     node.kubernetes.io/not-ready:NoExecute op=Exists for 300s\n"
           "Events:\n"
           "  Type     Reason     Age               From               Message\n"
           "  ----     ------     ----              ----               -------\n"
           "  Normal   Scheduled  10m               default-scheduler  Successfully assigned "
           "default/mc1 to nbt\n"
           "  Warning  BackOff    3m (x4 over 10m)  kubelet            Back-off restarting "
           "failed container 2nd\n",
           "describe pod");
    buf_free(&out);
    ctl_describe_pod(&out, p, NULL, 0, NOW);
    ok(strstr(out.p, "\nEvents:          <none>\n") != NULL, "no events: <none>");
    buf_free(&out);
    protobuf_c_message_free_unpacked(&p->base, NULL);
    protobuf_c_message_free_unpacked(&ev[0]->base, NULL);
    protobuf_c_message_free_unpacked(&ev[1]->base, NULL);

    Coracle__V1__Node *n = (Coracle__V1__Node *)obj(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n"
        "  creationTimestamp: \"2026-11-28T10:00:00Z\"\nstatus:\n  capacity:\n    cpu: \"2\"\n"
        "    memory: 4Gi\n  conditions:\n  - type: Ready\n    status: \"True\"\n"
        "    reason: KubeletReady\n    message: kubelet is posting ready status\n"
        "  addresses:\n  - type: InternalIP\n    address: 10.0.0.5\n");
    Coracle__V1__Pod *np = (Coracle__V1__Pod *)obj(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: default\n"
        "  creationTimestamp: \"2026-11-28T11:00:00Z\"\nspec:\n  nodeName: n1\n  containers:\n"
        "  - name: a\n    resources:\n      requests:\n        cpu: 250m\n        memory: 64Mi\n"
        "      limits:\n        memory: 128Mi\n  - name: b\n    resources:\n      requests:\n"
        "        cpu: 100m\n");
    ctl_describe_node(&out, n, NULL, &np, 1, NULL, 0, NOW);
    ok(strstr(out.p, "Capacity:\n  cpu:                2\n  memory:             4Gi\n"
                     "Non-terminated Pods:  (1 in total)\n"
                     "  Namespace           Name    CPU Requests  CPU Limits  Memory Requests  "
                     "Memory Limits  Age\n"
                     "  ---------           ----    ------------  ----------  ---------------  "
                     "-------------  ---\n"
                     "  default             web     350m (17%)    0 (0%)      64Mi (1%)        "
                     "128Mi (3%)     60m\n"
                     "Allocated resources:\n"
                     "  (Total limits may be over 100 percent, i.e., overcommitted.)\n"
                     "  Resource           Requests    Limits\n"
                     "  --------           --------    ------\n"
                     "  cpu                350m (17%)  0 (0%)\n"
                     "  memory             64Mi (1%)   128Mi (3%)\n"
                     "  ephemeral-storage  0 (0%)      0 (0%)\n"
                     "Events:              <none>\n") != NULL,
       "describe node: pods and allocated resources");
    buf_free(&out);
    protobuf_c_message_free_unpacked(&np->base, NULL);
    ctl_describe_node(&out, n, NULL, NULL, 0, NULL, 0, NOW);
    ok(strstr(out.p, "Name:               n1\nRoles:              <none>\n") &&
           strstr(out.p, "Addresses:\n  InternalIP:  10.0.0.5\n") &&
           strstr(out.p, "  Ready   True    Thu, 01 Jan 1970 00:00:00 +0000   ") &&
           strstr(out.p, "Non-terminated Pods:  (0 in total)\n"),
       "describe node");
    buf_free(&out);
    protobuf_c_message_free_unpacked(&n->base, NULL);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    test_status();
    test_durations();
    test_tabwriter();
    test_tables();
    test_describe();
    return done_testing();
}
