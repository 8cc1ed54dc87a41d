# contrib/bench: the benchmark tools that are C. contrib/bench/run (Python) drives
# them; it compiles watch-bench itself when the build dir has none.
noinst_PROGRAMS += contrib/bench/watch-bench
contrib_bench_watch_bench_SOURCES = contrib/bench/watch-bench.c
contrib_bench_watch_bench_LDADD = libcoracle.a $(COMMON_LIBS) -lm
noinst_PROGRAMS += contrib/bench/pb-bench
contrib_bench_pb_bench_SOURCES = contrib/bench/pb-bench.c
contrib_bench_pb_bench_LDADD = libcoracle.a $(COMMON_LIBS)
# sched-bench (the script runs this): hollow nodes and a burst of pods.
noinst_PROGRAMS += contrib/bench/sched-bench-load
contrib_bench_sched_bench_load_SOURCES = contrib/bench/sched_bench.c
contrib_bench_sched_bench_load_LDADD = libcoracle.a $(COMMON_LIBS)
dist_noinst_SCRIPTS += contrib/bench/sched-bench
EXTRA_DIST += contrib/bench/run contrib/bench/etcd.proto contrib/bench/README.md \
	contrib/bench/RESULTS.md
