# coracle-scheduler: main.c is thin; the rest is in libscheduler.a, linked into the unit tests.
# The shared informer (src/lib/informer.c) is added to libcoracle.a from here (it is ours).
libcoracle_a_SOURCES += src/lib/informer.c src/lib/informer.h

noinst_LIBRARIES += libscheduler.a
libscheduler_a_SOURCES = \
	src/scheduler/fit.c src/scheduler/fit.h \
	src/scheduler/map.c src/scheduler/map.h \
	src/scheduler/queue.c src/scheduler/queue.h \
	src/scheduler/sched.c src/scheduler/sched.h

bin_PROGRAMS += coracle-scheduler
coracle_scheduler_SOURCES = src/scheduler/main.c
coracle_scheduler_LDADD = libscheduler.a libcoracle.a $(COMMON_LIBS) -lm $(MALLOC_LIBS)

# ---- unit tests ----
check_PROGRAMS += t/unit/test_qty
t_unit_test_qty_SOURCES = t/unit/test_qty.c
t_unit_test_qty_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_qty_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_qty

check_PROGRAMS += t/unit/test_informer
t_unit_test_informer_SOURCES = t/unit/test_informer.c
t_unit_test_informer_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_informer_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_informer

check_PROGRAMS += t/unit/test_sched
t_unit_test_sched_SOURCES = t/unit/test_sched.c
t_unit_test_sched_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/scheduler
t_unit_test_sched_LDADD = libscheduler.a libcoracle.a $(COMMON_LIBS) -lm
TESTS_PROGS += t/unit/test_sched

# ---- contrib/bench/sched-bench: hollow nodes + a burst of pods (the script runs this) ----
noinst_PROGRAMS += contrib/bench/sched-bench-load
contrib_bench_sched_bench_load_SOURCES = contrib/bench/sched_bench.c
contrib_bench_sched_bench_load_LDADD = libcoracle.a $(COMMON_LIBS)
dist_noinst_SCRIPTS += contrib/bench/sched-bench
