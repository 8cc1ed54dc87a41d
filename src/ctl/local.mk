# coraclectl: main.c is thin; everything else is in libctl.a, linked into the
# unit tests.
noinst_LIBRARIES += libctl.a
libctl_a_SOURCES = \
	src/ctl/ctl.h src/ctl/flags.c \
	src/ctl/print.c src/ctl/print.h \
	src/ctl/describe.c src/ctl/describe.h \
	src/ctl/output.c src/ctl/output.h \
	src/ctl/jsonpath.c src/ctl/jsonpath.h \
	src/ctl/client.c src/ctl/client.h \
	src/ctl/cmd_apply.c src/ctl/cmd_create_rbac.c src/ctl/cmd_get.c src/ctl/cmd_describe.c src/ctl/cmd_delete.c \
	src/ctl/cmd_logs.c src/ctl/cmd_exec.c src/ctl/cmd_version.c src/ctl/cmd_rollout.c \
	src/ctl/cmd_expose.c \
	src/ctl/cmd_image.c src/ctl/cmd_image.h src/ctl/cmd_auth.c \
	src/ctl/cmd_token.c src/ctl/cmd_certificate.c

CTL_LIBS = libctl.a libcoracle.a $(YAML_LIBS) $(COMMON_LIBS)

bin_PROGRAMS += coraclectl
coraclectl_SOURCES = src/ctl/main.c
coraclectl_LDADD = $(CTL_LIBS)

check_PROGRAMS += t/unit/test_print
t_unit_test_print_SOURCES = t/unit/test_print.c t/unit/testobj.h
t_unit_test_print_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/ctl
t_unit_test_print_LDADD = $(CTL_LIBS)
check_PROGRAMS += t/unit/test_ctl_apply
t_unit_test_ctl_apply_SOURCES = t/unit/test_ctl_apply.c
t_unit_test_ctl_apply_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/ctl
t_unit_test_ctl_apply_LDADD = $(CTL_LIBS)
TESTS_PROGS += t/unit/test_print t/unit/test_ctl_apply
EXTRA_DIST += contrib/completion/coraclectl.bash
check_PROGRAMS += t/unit/test_jsonpath
t_unit_test_jsonpath_SOURCES = t/unit/test_jsonpath.c
t_unit_test_jsonpath_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/ctl
t_unit_test_jsonpath_LDADD = $(CTL_LIBS)
TESTS_PROGS += t/unit/test_jsonpath
