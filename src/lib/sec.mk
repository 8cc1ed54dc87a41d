# Security (issue 8): TLS contexts for h2s/gcl (tls.c, in libcoracle.a), the
# apiserver's authentication/authorization (src/apiserver/auth.c, listed in
# src/apiserver/local.mk), their unit tests, the libFuzzer targets (make fuzz)
# and contrib/certs.
libcoracle_a_SOURCES += src/lib/tls.c src/lib/tls.h
dist_noinst_SCRIPTS += contrib/certs
# the default authorization policy, installed as $(sysconfdir)/coracle/policy
secconfdir = $(sysconfdir)/coracle
dist_secconf_DATA = conf/policy

check_PROGRAMS += t/unit/test_auth
t_unit_test_auth_SOURCES = t/unit/test_auth.c t/unit/tap.h
t_unit_test_auth_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/apiserver \
	-DSRCDIR='"$(abs_top_srcdir)"'
t_unit_test_auth_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_auth
