# Unit tests of src/lib. Each program's local.mk adds its own unit tests the
# same way: check_PROGRAMS += t/unit/test_X and TESTS_PROGS += t/unit/test_X.
check_PROGRAMS += t/unit/test_util
t_unit_test_util_SOURCES = t/unit/test_util.c t/unit/tap.h
t_unit_test_util_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_util_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_util
EXTRA_DIST += t
