# coraclectl: main.c is thin; everything else is in libctl.a, linked into the
# unit tests. libctlpending.a holds stand-ins for library functions still
# being written (gcl, qty): it comes after libcoracle.a, so the linker only
# uses it for symbols libcoracle.a does not define.
noinst_LIBRARIES += libctl.a libctlpending.a
libctl_a_SOURCES = \
	src/ctl/ctl.h src/ctl/buf.c src/ctl/flags.c \
	src/ctl/yaml_pb.c src/ctl/yaml_pb.h \
	src/ctl/print.c src/ctl/print.h \
	src/ctl/describe.c src/ctl/describe.h \
	src/ctl/output.c src/ctl/output.h \
	src/ctl/client.c src/ctl/client.h \
	src/ctl/cmd_apply.c src/ctl/cmd_get.c src/ctl/cmd_describe.c src/ctl/cmd_delete.c \
	src/ctl/cmd_logs.c src/ctl/cmd_exec.c src/ctl/cmd_version.c \
	src/ctl/cmd_image.c src/ctl/cmd_image.h
libctlpending_a_SOURCES = src/ctl/pending_qty.c src/ctl/pending_gcl.c

CTL_LIBS = libctl.a libcoracle.a libctlpending.a $(YAML_LIBS) $(COMMON_LIBS)

bin_PROGRAMS += coraclectl
coraclectl_SOURCES = src/ctl/main.c
coraclectl_LDADD = $(CTL_LIBS)

check_PROGRAMS += t/unit/test_yaml t/unit/test_print
t_unit_test_yaml_SOURCES = t/unit/test_yaml.c
t_unit_test_yaml_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/ctl \
	-DSEED_DIR='"/work/shared/seed/manifests"' -DTEST_DATA='"$(abs_top_srcdir)/t/data/ctl"'
t_unit_test_yaml_LDADD = $(CTL_LIBS)
t_unit_test_print_SOURCES = t/unit/test_print.c
t_unit_test_print_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/ctl
t_unit_test_print_LDADD = $(CTL_LIBS)
TESTS_PROGS += t/unit/test_yaml t/unit/test_print
