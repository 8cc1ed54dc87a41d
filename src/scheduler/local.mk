# coracle-scheduler: main.c is thin; the rest is in libscheduler.a, linked into the unit tests.
# The shared informer (src/lib/informer.c) is added to libcoracle.a from here (it is ours).
libcoracle_a_SOURCES += src/lib/informer.c src/lib/informer.h

bin_PROGRAMS += coracle-scheduler
coracle_scheduler_SOURCES = src/scheduler/main.c
coracle_scheduler_LDADD = libcoracle.a $(COMMON_LIBS)

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
