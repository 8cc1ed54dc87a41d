# contrib/bench: the benchmark tools that are C. contrib/bench/run (Python) drives
# them; it compiles watch-bench itself when the build dir has none.
noinst_PROGRAMS += contrib/bench/watch-bench
contrib_bench_watch_bench_SOURCES = contrib/bench/watch-bench.c
contrib_bench_watch_bench_LDADD = libcoracle.a $(COMMON_LIBS) -lm
EXTRA_DIST += contrib/bench/run contrib/bench/etcd.proto contrib/bench/README.md \
	contrib/bench/RESULTS.md
