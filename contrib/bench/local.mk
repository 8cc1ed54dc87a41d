# contrib/bench: the benchmark tools that are C. contrib/bench/run (Python) drives
# them; it compiles watch-bench and failover-client itself when the build dir has none.
noinst_PROGRAMS += contrib/bench/watch-bench
contrib_bench_watch_bench_SOURCES = contrib/bench/watch-bench.c
contrib_bench_watch_bench_LDADD = libcoracle.a $(COMMON_LIBS) -lm
# failover-client: a gcl client given several apiservers (run's failover measurement).
noinst_PROGRAMS += contrib/bench/failover-client
contrib_bench_failover_client_SOURCES = contrib/bench/failover-client.c
contrib_bench_failover_client_LDADD = libcoracle.a $(COMMON_LIBS)
# rbac-decide: the authorizer's decision in process, RBAC against AlwaysAllow (rbac-bench runs it).
noinst_PROGRAMS += contrib/bench/rbac-decide
contrib_bench_rbac_decide_SOURCES = contrib/bench/rbac-decide.c
contrib_bench_rbac_decide_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/src/apiserver
contrib_bench_rbac_decide_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(LZ4_LIBS) $(YAML_LIBS) $(COMMON_LIBS)
noinst_PROGRAMS += contrib/bench/pb-bench
contrib_bench_pb_bench_SOURCES = contrib/bench/pb-bench.c
contrib_bench_pb_bench_LDADD = libcoracle.a $(COMMON_LIBS)
# json-bench: JSON libraries for PATCH (json.c, jansson, json-c) and kpatch on a pod.
noinst_PROGRAMS += contrib/bench/json-bench
contrib_bench_json_bench_SOURCES = contrib/bench/json-bench.c contrib/bench/json-bench-jsonc.c
contrib_bench_json_bench_LDADD = libcoracle.a $(YAML_LIBS) $(COMMON_LIBS)
if HAVE_JANSSON
contrib_bench_json_bench_SOURCES += contrib/bench/json-bench-jansson.c
contrib_bench_json_bench_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
contrib_bench_json_bench_LDADD += $(JANSSON_LIBS)
endif
# json-read-bench: the readers of JSON request bodies side by side (doc/DESIGN.md, "JSON").
noinst_PROGRAMS += contrib/bench/json-read-bench
contrib_bench_json_read_bench_SOURCES = contrib/bench/json-read-bench.c \
	contrib/bench/json-read-bench-json-c.c
contrib_bench_json_read_bench_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
contrib_bench_json_read_bench_LDADD = libcoracle.a $(YAML_LIBS) $(JSONC_LIBS) $(COMMON_LIBS)
if HAVE_JANSSON
contrib_bench_json_read_bench_SOURCES += contrib/bench/json-read-bench-jansson.c
contrib_bench_json_read_bench_CFLAGS += $(JANSSON_CFLAGS)
contrib_bench_json_read_bench_LDADD += $(JANSSON_LIBS)
endif
# sched-bench (the script runs this): hollow nodes and a burst of pods.
noinst_PROGRAMS += contrib/bench/sched-bench-load
contrib_bench_sched_bench_load_SOURCES = contrib/bench/sched_bench.c
contrib_bench_sched_bench_load_LDADD = libcoracle.a $(COMMON_LIBS)
dist_noinst_SCRIPTS += contrib/bench/sched-bench contrib/bench/rbac-bench contrib/bench/net-bench \
	contrib/bench/proxy-bench
dist_noinst_SCRIPTS += contrib/bench/edge-footprint contrib/bench/fleet
EXTRA_DIST += contrib/bench/run contrib/bench/README.md \
	contrib/bench/RESULTS.md
# hollow-kubelet: many simulated kubelets in one process (the fleet benchmark, t/49).
noinst_PROGRAMS += contrib/bench/hollow-kubelet
contrib_bench_hollow_kubelet_SOURCES = contrib/bench/hollow-kubelet.c
contrib_bench_hollow_kubelet_LDADD = libcoracle.a $(COMMON_LIBS)
# fleet-load: one phase of the fleet benchmark (creates, churn, deletes; startup latency).
noinst_PROGRAMS += contrib/bench/fleet-load
contrib_bench_fleet_load_SOURCES = contrib/bench/fleet-load.c
contrib_bench_fleet_load_LDADD = libcoracle.a $(COMMON_LIBS)
