# Unit tests of src/lib. Each program's local.mk adds its own unit tests the
# same way: check_PROGRAMS += t/unit/test_X and TESTS_PROGS += t/unit/test_X.
check_PROGRAMS += t/unit/test_util
t_unit_test_util_SOURCES = t/unit/test_util.c t/unit/tap.h
t_unit_test_util_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_util_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_util
EXTRA_DIST += t

# pb_encode against protobuf-c's pack, on random messages of every type.
check_PROGRAMS += t/unit/test_pb
t_unit_test_pb_SOURCES = t/unit/test_pb.c t/unit/tap.h
t_unit_test_pb_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_pb_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_pb

# h2s (gRPC server) and gcl (gRPC client) against each other and stock tools.
check_PROGRAMS += t/unit/test_h2
t_unit_test_h2_SOURCES = t/unit/test_h2.c t/unit/tap.h
t_unit_test_h2_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_h2_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_h2

# h2echo: a gRPC echo server on h2s for t/25-h2-grpcio.t (stock grpcio client) and h2load.
check_PROGRAMS += t/h2echo
t_h2echo_SOURCES = t/h2echo.c
t_h2echo_LDADD = libcoracle.a $(COMMON_LIBS)

# gclcall: one gcl call from the command line, for t/27-h2-gcl-grpcio.t (gcl against grpcio's server).
check_PROGRAMS += t/gclcall
t_gclcall_SOURCES = t/gclcall.c
t_gclcall_LDADD = libcoracle.a $(COMMON_LIBS)

# getprobe: Pods.Get one at a time, latency percentiles, for t/70-sec-loop-bound.t.
check_PROGRAMS += t/getprobe
t_getprobe_SOURCES = t/getprobe.c
t_getprobe_LDADD = libcoracle.a $(COMMON_LIBS)
