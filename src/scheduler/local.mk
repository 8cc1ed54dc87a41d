# coracle-scheduler: main.c is thin; the rest is in libscheduler.a, linked into the unit tests.
noinst_LIBRARIES += libscheduler.a
libscheduler_a_SOURCES = \
	src/scheduler/fit.c src/scheduler/fit.h \
	src/scheduler/metrics.c \
	src/scheduler/queue.c src/scheduler/queue.h \
	src/scheduler/sched.c src/scheduler/sched.h

bin_PROGRAMS += coracle-scheduler
coracle_scheduler_SOURCES = src/scheduler/main.c
coracle_scheduler_LDADD = libscheduler.a libcoracle.a $(COMMON_LIBS) -lm $(MALLOC_LIBS)

# ---- unit tests ----
check_PROGRAMS += t/unit/test_sched
t_unit_test_sched_SOURCES = t/unit/test_sched.c
t_unit_test_sched_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/scheduler
t_unit_test_sched_LDADD = libscheduler.a libcoracle.a $(COMMON_LIBS) -lm
TESTS_PROGS += t/unit/test_sched
