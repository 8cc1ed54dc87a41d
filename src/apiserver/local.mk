# coracle-apiserver: main.c is thin; everything else is in libapiserver.a so
# the unit tests link it.
noinst_LIBRARIES += libapiserver.a
libapiserver_a_SOURCES = \
	src/apiserver/store.c src/apiserver/store.h src/apiserver/store_meta.h \
	src/apiserver/wal.c src/apiserver/wal.h \
	src/apiserver/store_etcd.c src/apiserver/store_etcd.h \
	src/apiserver/enc.c src/apiserver/enc_cfg.c src/apiserver/enc.h src/apiserver/enc_int.h \
	src/apiserver/ycfg.c src/apiserver/ycfg.h \
	src/apiserver/obj.c src/apiserver/obj.h \
	src/apiserver/admit.c src/apiserver/admit.h src/apiserver/admit_int.h \
	src/apiserver/admit_workload.c src/apiserver/admit_rbac.c src/apiserver/admit_csr.c \
	src/apiserver/psa.c src/apiserver/psa_check.c src/apiserver/psa_cfg.c src/apiserver/psa.h \
	src/apiserver/admit_service.c src/apiserver/admit_netpol.c \
	src/apiserver/svcalloc.c src/apiserver/svcalloc.h \
	src/apiserver/svckube.c src/apiserver/svckube.h \
	src/apiserver/wire.c src/apiserver/wire.h \
	src/apiserver/apply.c src/apiserver/apply.h \
	src/apiserver/gcpolicy.c src/apiserver/gcpolicy.h \
	src/apiserver/watch.c src/apiserver/watch.h \
	src/apiserver/kjson.c src/apiserver/kjson.h \
	src/apiserver/kpb.c src/apiserver/kpb.h \
	src/apiserver/rest.c src/apiserver/rest.h src/apiserver/rest_int.h \
	src/apiserver/rest_query.c src/apiserver/rest_disc.c \
	src/apiserver/rest_body.c \
	src/apiserver/rest_write.c \
	src/apiserver/rest_connect.c src/apiserver/rest_ws.c src/apiserver/rest_spdy.c \
	src/apiserver/rest_openapi.c \
	src/apiserver/rest_scale.c \
	src/apiserver/rest_token.c \
	src/apiserver/openapi.c src/apiserver/openapi_paths.c src/apiserver/openapi_pb.c \
	src/apiserver/openapi.h src/apiserver/openapi_int.h \
	src/apiserver/api.c src/apiserver/api.h \
	src/apiserver/read.c \
	src/apiserver/rpool.c src/apiserver/rpool.h \
	src/apiserver/auth.c src/apiserver/auth.h \
	src/apiserver/satoken.c src/apiserver/satoken.h \
	src/apiserver/review.c src/apiserver/review.h \
	src/apiserver/audit.c src/apiserver/audit_policy.c src/apiserver/audit.h \
	src/apiserver/certexp.c src/apiserver/certexp.h \
	src/apiserver/events.c src/apiserver/events.h \
	src/apiserver/nodelife.c src/apiserver/nodelife.h \
	src/apiserver/nslife.c src/apiserver/nslife.h \
	src/apiserver/rbac.c src/apiserver/rbac.h \
	src/apiserver/rbac_boot.c src/apiserver/rbac_escalate.c \
	src/apiserver/tunnel.c src/apiserver/tunnel.h
# The comments of proto/coracle.proto, for the OpenAPI documents' descriptions.
nodist_libapiserver_a_SOURCES = proto/coracle_doc.c
BUILT_SOURCES += proto/coracle_doc.c
CLEANFILES += proto/coracle_doc.c
EXTRA_DIST += src/apiserver/protodoc.awk
proto/coracle_doc.c: $(srcdir)/proto/coracle.proto $(srcdir)/src/apiserver/protodoc.awk
	@$(MKDIR_P) proto
	$(AM_V_GEN)$(AWK) -f $(srcdir)/src/apiserver/protodoc.awk $(srcdir)/proto/coracle.proto > $@.tmp && mv $@.tmp $@

bin_PROGRAMS += coracle-apiserver
coracle_apiserver_SOURCES = src/apiserver/main.c
coracle_apiserver_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(LZ4_LIBS) $(YAML_LIBS) $(COMMON_LIBS) $(MALLOC_LIBS)

# ---- unit tests ----
check_PROGRAMS += t/unit/test_admit
t_unit_test_admit_SOURCES = t/unit/test_admit.c
t_unit_test_admit_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/apiserver
t_unit_test_admit_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(LZ4_LIBS) $(YAML_LIBS) $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_admit
check_PROGRAMS += t/unit/test_podsecurity
t_unit_test_podsecurity_SOURCES = t/unit/test_podsecurity.c t/unit/tap.h
t_unit_test_podsecurity_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/apiserver
t_unit_test_podsecurity_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(LZ4_LIBS) $(YAML_LIBS) $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_podsecurity

check_PROGRAMS += t/unit/test_store
t_unit_test_store_SOURCES = t/unit/test_store.c t/unit/tap.h
t_unit_test_store_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/apiserver
t_unit_test_store_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(LZ4_LIBS) $(YAML_LIBS) $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_store
check_PROGRAMS += t/unit/test_enc
t_unit_test_enc_SOURCES = t/unit/test_enc.c t/unit/tap.h
t_unit_test_enc_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/apiserver
t_unit_test_enc_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(LZ4_LIBS) $(YAML_LIBS) $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_enc
check_PROGRAMS += t/unit/test_codec
t_unit_test_codec_SOURCES = t/unit/test_codec.c
t_unit_test_codec_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/apiserver
t_unit_test_codec_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(LZ4_LIBS) $(YAML_LIBS) $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_codec
check_PROGRAMS += t/unit/test_kpb
t_unit_test_kpb_SOURCES = t/unit/test_kpb.c t/unit/tap.h
t_unit_test_kpb_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/apiserver
t_unit_test_kpb_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(LZ4_LIBS) $(YAML_LIBS) $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_kpb

check_PROGRAMS += t/unit/test_auth
t_unit_test_auth_SOURCES = t/unit/test_auth.c t/unit/tap.h
t_unit_test_auth_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/apiserver \
	-DSRCDIR='"$(abs_top_srcdir)"'
t_unit_test_auth_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(LZ4_LIBS) $(YAML_LIBS) $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_auth

check_PROGRAMS += t/unit/test_rbac
t_unit_test_rbac_SOURCES = t/unit/test_rbac.c t/unit/tap.h
t_unit_test_rbac_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/apiserver
t_unit_test_rbac_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(LZ4_LIBS) $(YAML_LIBS) $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_rbac

check_PROGRAMS += t/unit/test_openapi
t_unit_test_openapi_SOURCES = t/unit/test_openapi.c t/unit/tap.h
t_unit_test_openapi_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/apiserver
t_unit_test_openapi_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(LZ4_LIBS) $(YAML_LIBS) $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_openapi

check_PROGRAMS += t/unit/test_rest_body
t_unit_test_rest_body_SOURCES = t/unit/test_rest_body.c t/unit/tap.h
t_unit_test_rest_body_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/apiserver
t_unit_test_rest_body_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(LZ4_LIBS) $(YAML_LIBS) $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_rest_body

check_PROGRAMS += t/unit/test_wal
t_unit_test_wal_SOURCES = t/unit/test_wal.c t/unit/tap.h
t_unit_test_wal_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/apiserver
t_unit_test_wal_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(LZ4_LIBS) $(YAML_LIBS) $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_wal

check_PROGRAMS += t/unit/test_audit
t_unit_test_audit_SOURCES = t/unit/test_audit.c t/unit/tap.h
t_unit_test_audit_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/apiserver
t_unit_test_audit_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(LZ4_LIBS) $(YAML_LIBS) $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_audit
