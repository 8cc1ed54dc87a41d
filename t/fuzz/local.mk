# Fuzzing: the libFuzzer targets (t/fuzz/fuzz_*.c: selectors, quantities,
# YAML, kobj's JSON reader against its YAML one, protobuf decoding and
# admission (Pod Security's checks too), JSON written from protobuf bytes against the decoded message, HTTP/1.1 requests, Accept headers,
# the REST API's write bodies, the three PATCH formats, server-side apply,
# SPDY/3.1 frames, WebSocket channel frames, the apiserver's
# EncryptionConfiguration, CronJob schedules, bearer JWTs, the store's
# write-ahead log records, the AdmissionConfiguration of Pod Security, the
# audit policy, CSR requests, the kubelet's DNS queries, registry manifests,
# WWW-Authenticate headers, hosts.toml files and docker credentials, image
# layer tars) and
# t/unit/test_fuzz, which runs the seed
# corpora and saved crash reproducers through them in the normal build.
FUZZ_TARGET_SRC = t/fuzz/fuzz.h t/fuzz/fuzz_sel.c t/fuzz/fuzz_qty.c t/fuzz/fuzz_yaml.c \
	t/fuzz/fuzz_pb.c t/fuzz/fuzz_http1.c t/fuzz/fuzz_accept.c t/fuzz/fuzz_rest_body.c \
	t/fuzz/fuzz_patch.c t/fuzz/fuzz_jsonpatch.c t/fuzz/fuzz_mergepatch.c t/fuzz/fuzz_smpatch.c \
	t/fuzz/fuzz_ssa.c t/fuzz/fuzz_kobj_json.c t/fuzz/fuzz_kobj_pb.c t/fuzz/fuzz_spdy.c \
	t/fuzz/fuzz_ws.c t/fuzz/fuzz_enc_cfg.c t/fuzz/fuzz_cron.c t/fuzz/fuzz_jwt.c \
	t/fuzz/fuzz_wal.c t/fuzz/fuzz_psa_cfg.c t/fuzz/fuzz_audit_policy.c t/fuzz/fuzz_csr.c \
	t/fuzz/fuzz_dns.c t/fuzz/fuzz_oci.c t/fuzz/fuzz_tar.c
check_PROGRAMS += t/unit/test_fuzz
t_unit_test_fuzz_SOURCES = t/unit/test_fuzz.c t/unit/tap.h $(FUZZ_TARGET_SRC)
t_unit_test_fuzz_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/t/fuzz \
	-I$(srcdir)/src/ctl -I$(srcdir)/src/apiserver -I$(srcdir)/src/kubelet \
	-DSRCDIR='"$(abs_top_srcdir)"'
t_unit_test_fuzz_LDADD = libapiserver.a libctl.a libkubelet.a libcoracle.a $(LMDB_LIBS) $(LZ4_LIBS) \
	$(YAML_LIBS) $(COMMON_LIBS) $(LDNS_LIBS)
TESTS_PROGS += t/unit/test_fuzz

# `make fuzz`: libFuzzer builds with clang (CC is not used, so configure
# never needs clang) and a bounded run of each target, FUZZ_TIME seconds
# (default 60), over a working corpus fuzz/corpus-<x> seeded from
# t/fuzz/corpus/<x>. Crashes land in fuzz/ as crash-*; copy a reproducer to
# t/fuzz/regressions/<x>/ so t/unit/test_fuzz keeps running it.
FUZZ_CC = clang
FUZZ_TIME = 60
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-DFUZZ_MAIN
FUZZ_INC = -I$(top_builddir)/proto -I$(top_builddir) -I$(srcdir)/src/lib -I$(srcdir)/src/ctl \
	-I$(srcdir)/src/apiserver -I$(srcdir)/src/kubelet -I$(srcdir)/t/fuzz $(PROTOBUF_C_CFLAGS) $(YAML_CFLAGS) $(JSONC_CFLAGS)
FUZZ_BASE = $(srcdir)/src/lib/util.c $(srcdir)/src/lib/kinds.c $(srcdir)/src/lib/qty.c \
	$(srcdir)/src/lib/grpc.c $(srcdir)/src/lib/pb.c $(top_builddir)/proto/coracle.pb-c.c
FUZZ_SRC_sel = $(srcdir)/src/lib/sel.c
FUZZ_SRC_qty =
FUZZ_SRC_yaml = $(srcdir)/src/lib/kobj.c $(srcdir)/src/lib/kobj_parse.c \
	$(srcdir)/src/lib/kobj_direct.c $(srcdir)/src/lib/kobj_json.c $(srcdir)/src/lib/kobj_emit.c $(srcdir)/src/lib/buf.c \
	$(srcdir)/src/lib/json.c $(srcdir)/src/lib/arena.c
FUZZ_SRC_kobj_json = $(FUZZ_SRC_yaml)
FUZZ_SRC_kobj_pb = $(FUZZ_SRC_yaml)
FUZZ_SRC_pb = $(srcdir)/src/apiserver/admit.c $(srcdir)/src/apiserver/admit_workload.c \
	$(srcdir)/src/apiserver/psa_check.c $(srcdir)/src/apiserver/admit_service.c \
	$(srcdir)/src/apiserver/admit_netpol.c $(srcdir)/src/apiserver/admit_rbac.c \
	$(srcdir)/src/apiserver/admit_csr.c $(srcdir)/src/lib/pki.c $(srcdir)/src/lib/cidr.c \
	$(srcdir)/src/apiserver/obj.c $(srcdir)/src/lib/sel.c $(srcdir)/src/lib/json.c \
	$(srcdir)/src/lib/buf.c $(srcdir)/src/lib/cron.c proto/coracle_doc.c
FUZZ_LIBS_pb = $(OPENSSL_LIBS)
FUZZ_SRC_http1 = $(srcdir)/src/lib/h2s.c $(srcdir)/src/lib/h2s_call.c \
	$(srcdir)/src/lib/h2s_conn.c $(srcdir)/src/lib/h2s_http1.c $(srcdir)/src/lib/h2s_limit.c \
	$(srcdir)/src/lib/h2s_raw.c $(srcdir)/src/lib/h2s_req.c $(srcdir)/src/lib/addr.c \
	$(srcdir)/src/lib/buf.c $(srcdir)/src/lib/smap.c
FUZZ_SRC_ssa = $(FUZZ_SRC_yaml) $(srcdir)/src/lib/kmeta.c $(srcdir)/src/lib/kssa.c \
	$(srcdir)/src/lib/kssa_set.c $(srcdir)/src/lib/kssa_walk.c
FUZZ_LIBS_http1 = $(LIBEVENT_LIBS) $(NGHTTP2_LIBS) $(HTTP_PARSER_LIBS) $(OPENSSL_LIBS)
FUZZ_SRC_accept = $(srcdir)/src/apiserver/rest_query.c
FUZZ_SRC_rest_body = $(srcdir)/src/apiserver/rest_body.c $(srcdir)/src/apiserver/rest_query.c \
	$(srcdir)/src/apiserver/gcpolicy.c \
	$(srcdir)/src/apiserver/obj.c $(srcdir)/src/apiserver/wire.c $(srcdir)/src/lib/sel.c \
	$(FUZZ_SRC_yaml) proto/coracle_doc.c
FUZZ_SRC_patch = $(srcdir)/t/fuzz/fuzz_patch.c $(srcdir)/src/lib/kpatch.c \
	$(srcdir)/src/lib/kpatch_dup.c $(srcdir)/src/lib/kpatch_json.c \
	$(srcdir)/src/lib/kpatch_strategic.c $(srcdir)/src/lib/kmeta.c \
	$(FUZZ_SRC_yaml) $(srcdir)/src/lib/smap.c
FUZZ_SRC_jsonpatch = $(FUZZ_SRC_patch)
FUZZ_SRC_mergepatch = $(FUZZ_SRC_patch)
FUZZ_SRC_smpatch = $(FUZZ_SRC_patch)
FUZZ_LIBS_jsonpatch = $(JSONC_LIBS)
FUZZ_LIBS_mergepatch = $(JSONC_LIBS)
FUZZ_LIBS_smpatch = $(JSONC_LIBS)
FUZZ_SRC_spdy = $(srcdir)/src/lib/spdy.c $(srcdir)/src/lib/buf.c
FUZZ_LIBS_spdy = $(ZLIB_LIBS)
FUZZ_SRC_ws = $(srcdir)/src/lib/json.c
FUZZ_LIBS_ws = $(WSLAY_LIBS)
FUZZ_SRC_enc_cfg = $(srcdir)/src/apiserver/enc.c $(srcdir)/src/apiserver/enc_cfg.c \
	$(srcdir)/src/apiserver/ycfg.c \
	$(srcdir)/src/lib/buf.c
FUZZ_LIBS_enc_cfg = $(OPENSSL_LIBS)
FUZZ_SRC_cron = $(srcdir)/src/lib/cron.c
FUZZ_SRC_jwt = $(srcdir)/src/lib/jwt.c $(srcdir)/src/lib/json.c
FUZZ_LIBS_jwt = $(OPENSSL_LIBS)
FUZZ_SRC_wal = $(srcdir)/src/apiserver/wal.c $(srcdir)/src/lib/buf.c
FUZZ_LIBS_wal = $(LZ4_LIBS)
FUZZ_SRC_psa_cfg = $(srcdir)/src/apiserver/psa_cfg.c $(srcdir)/src/apiserver/psa_check.c \
	$(srcdir)/src/apiserver/ycfg.c \
	$(srcdir)/src/lib/buf.c
FUZZ_SRC_audit_policy = $(srcdir)/src/apiserver/audit_policy.c $(FUZZ_SRC_yaml)
FUZZ_SRC_csr = $(srcdir)/src/lib/pki.c
FUZZ_LIBS_csr = $(OPENSSL_LIBS)
FUZZ_SRC_dns = $(srcdir)/src/kubelet/dns_msg.c
FUZZ_LIBS_dns = $(LDNS_LIBS)
FUZZ_SRC_oci = $(srcdir)/src/lib/oci_parse.c $(srcdir)/src/lib/oci_hosts.c $(srcdir)/src/lib/json.c
FUZZ_LIBS_oci = $(OPENSSL_LIBS)
FUZZ_SRC_tar = $(srcdir)/src/lib/image_unpack.c $(srcdir)/src/lib/smap.c
FUZZ_LIBS_tar = $(OPENSSL_LIBS) $(LIBARCHIVE_LIBS) $(ISAL_LIBS)
FUZZ_NAMES = sel qty yaml kobj_json kobj_pb pb http1 accept rest_body jsonpatch mergepatch \
	smpatch ssa spdy ws enc_cfg cron jwt wal psa_cfg audit_policy csr dns oci tar
fuzz/fuzz_%: $(srcdir)/t/fuzz/fuzz_%.c $(srcdir)/t/fuzz/fuzz.h $(srcdir)/t/fuzz/local.mk \
	  $(FUZZ_BASE) $(FUZZ_SRC_sel) $(FUZZ_SRC_yaml) $(FUZZ_SRC_pb) $(FUZZ_SRC_http1) \
	  $(FUZZ_SRC_accept) $(FUZZ_SRC_rest_body) $(FUZZ_SRC_patch) $(FUZZ_SRC_ssa) \
	  $(FUZZ_SRC_spdy) $(FUZZ_SRC_ws) $(FUZZ_SRC_enc_cfg) $(FUZZ_SRC_cron) $(FUZZ_SRC_jwt) \
	  $(FUZZ_SRC_wal) $(FUZZ_SRC_psa_cfg) $(FUZZ_SRC_audit_policy) $(FUZZ_SRC_csr) \
	  $(FUZZ_SRC_dns) $(FUZZ_SRC_oci) $(FUZZ_SRC_tar) $(PROTO_GEN) proto/coracle_doc.c
	@$(MKDIR_P) fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_EXTRA_$*) $(FUZZ_INC) -o $@ $< $(FUZZ_BASE) $(FUZZ_SRC_$*) \
	  $(FUZZ_LIBS_$*) $(YAML_LIBS) $(PROTOBUF_C_LIBS) -lm
fuzz-build: $(FUZZ_NAMES:%=fuzz/fuzz_%)
fuzz: fuzz-build
	@set -e; for t in $(FUZZ_NAMES); do \
	  $(MKDIR_P) fuzz/corpus-$$t; \
	  echo "fuzz: $$t for $(FUZZ_TIME)s"; \
	  (cd fuzz && ./fuzz_$$t -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 \
	    -max_len=65536 -print_final_stats=1 corpus-$$t $(abs_top_srcdir)/t/fuzz/corpus/$$t \
	    >fuzz-$$t.log 2>&1 || true); \
	  grep -E '^(stat::number_of_executed_units|stat::new_units_added|SUMMARY)|ERROR:' \
	    fuzz/fuzz-$$t.log | sed "s/^/fuzz: $$t: /" || true; \
	done; \
	found=$$(find fuzz -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'leak-*' \
	  -o -maxdepth 1 -name 'timeout-*' -o -maxdepth 1 -name 'oom-*'); \
	if [ -n "$$found" ]; then echo "fuzz: found:" $$found; exit 1; fi; echo "fuzz: no crashes"
.PHONY: fuzz fuzz-build
