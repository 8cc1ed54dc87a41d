# libcoracle.a: code shared by every program and linked into the unit tests;
# then the unit tests of its modules. One file a line, in name order.
noinst_LIBRARIES += libcoracle.a
libcoracle_a_SOURCES = \
	src/lib/addr.c \
	src/lib/addr.h \
	src/lib/arena.c \
	src/lib/arena.h \
	src/lib/backoff.c \
	src/lib/backoff.h \
	src/lib/buf.c \
	src/lib/buf.h \
	src/lib/cfg.c \
	src/lib/cfg.h \
	src/lib/cidr.c \
	src/lib/cidr.h \
	src/lib/columns.c \
	src/lib/columns.h \
	src/lib/cron.c \
	src/lib/cron.h \
	src/lib/daemon.c \
	src/lib/daemon.h \
	src/lib/etcd.c \
	src/lib/etcd.h \
	src/lib/etcd_int.h \
	src/lib/etcd_watch.c \
	src/lib/gcl.c \
	src/lib/gcl.h \
	src/lib/grpc.c \
	src/lib/grpc.h \
	src/lib/h2s.c \
	src/lib/h2s.h \
	src/lib/h2s_call.c \
	src/lib/h2s_conn.c \
	src/lib/h2s_http1.c \
	src/lib/h2s_int.h \
	src/lib/h2s_limit.c \
	src/lib/h2s_raw.c \
	src/lib/h2s_req.c \
	src/lib/image.c \
	src/lib/image.h \
	src/lib/image_blobs.c \
	src/lib/image_gc.c \
	src/lib/image_gc.h \
	src/lib/image_import.c \
	src/lib/image_int.h \
	src/lib/image_ref.c \
	src/lib/image_unpack.c \
	src/lib/informer.c \
	src/lib/informer.h \
	src/lib/json.c \
	src/lib/json.h \
	src/lib/jwt.c \
	src/lib/jwt.h \
	src/lib/kinds.c \
	src/lib/kinds.h \
	src/lib/kmeta.c \
	src/lib/kmeta.h \
	src/lib/kobj.c \
	src/lib/kobj.h \
	src/lib/kobj_direct.c \
	src/lib/kobj_emit.c \
	src/lib/kobj_int.h \
	src/lib/kobj_json.c \
	src/lib/kobj_parse.c \
	src/lib/kpatch.c \
	src/lib/kpatch.h \
	src/lib/kpatch_dup.c \
	src/lib/kpatch_int.h \
	src/lib/kpatch_json.c \
	src/lib/kpatch_strategic.c \
	src/lib/kssa.c \
	src/lib/kssa.h \
	src/lib/kssa_int.h \
	src/lib/kssa_set.c \
	src/lib/kssa_walk.c \
	src/lib/leader.c \
	src/lib/leader.h \
	src/lib/obs.c \
	src/lib/obs.h \
	src/lib/oci.h \
	src/lib/oci_hosts.c \
	src/lib/oci_parse.c \
	src/lib/oci_pull.c \
	src/lib/pb.c \
	src/lib/pb.h \
	src/lib/podfield.c \
	src/lib/podfield.h \
	src/lib/podref.c \
	src/lib/podref.h \
	src/lib/pki.c \
	src/lib/pki.h \
	src/lib/pki_obj.c \
	src/lib/qty.c \
	src/lib/qty.h \
	src/lib/sdnotify.c \
	src/lib/sdnotify.h \
	src/lib/sel.c \
	src/lib/sel.h \
	src/lib/smap.c \
	src/lib/smap.h \
	src/lib/spdy.c \
	src/lib/spdy.h \
	src/lib/tls.c \
	src/lib/tls.h \
	src/lib/util.c \
	src/lib/util.h
nodist_libcoracle_a_SOURCES = $(PROTO_GEN)

# ---- unit tests ----
# util, cfg, grpc framing, kinds.
check_PROGRAMS += t/unit/test_util
t_unit_test_util_SOURCES = t/unit/test_util.c t/unit/tap.h
t_unit_test_util_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_util_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_util

# buf: growth, printf, reserve/commit/consume, varints and fields.
check_PROGRAMS += t/unit/test_jwt
t_unit_test_jwt_SOURCES = t/unit/test_jwt.c t/unit/tap.h
t_unit_test_jwt_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_jwt_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_jwt

check_PROGRAMS += t/unit/test_buf
t_unit_test_buf_SOURCES = t/unit/test_buf.c t/unit/tap.h
t_unit_test_buf_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_buf_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_buf

# etcd client: prefix ends, refused options, its decoding arena (real members: t/39).
check_PROGRAMS += t/unit/test_etcd
t_unit_test_etcd_SOURCES = t/unit/test_etcd.c t/unit/tap.h
t_unit_test_etcd_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_etcd_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_etcd

# h2s (gRPC server) and gcl (gRPC client) against each other and stock tools.
check_PROGRAMS += t/unit/test_h2
t_unit_test_h2_SOURCES = t/unit/test_h2.c t/unit/tap.h t/unit/loopchild.h
t_unit_test_h2_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_h2_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_h2

# h2s's HTTP/1.1 side: requests byte by byte, pipelined, chunked, oversized, garbage.
check_PROGRAMS += t/unit/test_http1
t_unit_test_http1_SOURCES = t/unit/test_http1.c t/unit/tap.h t/unit/loopchild.h
t_unit_test_http1_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_http1_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_http1

# The image store and the JSON parser it uses.
check_PROGRAMS += t/unit/test_image
t_unit_test_image_SOURCES = t/unit/test_image.c t/unit/tap.h
t_unit_test_image_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_image_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_image

# The in-process tar unpacker: digests and path safety.
check_PROGRAMS += t/unit/test_image_unpack
t_unit_test_image_unpack_SOURCES = t/unit/test_image_unpack.c t/unit/tap.h
t_unit_test_image_unpack_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_image_unpack_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_image_unpack

check_PROGRAMS += t/unit/test_informer
t_unit_test_informer_SOURCES = t/unit/test_informer.c
t_unit_test_informer_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_informer_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_informer

# leader: the election's decisions (observed time, takeover, the record written).
check_PROGRAMS += t/unit/test_leader
t_unit_test_leader_SOURCES = t/unit/test_leader.c t/unit/tap.h
t_unit_test_leader_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_leader_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_leader

# columns.c: Tables of every kind, their cells against coraclectl's rows
# (so it links coraclectl's library too, and builds objects from YAML).
check_PROGRAMS += t/unit/test_table
t_unit_test_table_SOURCES = t/unit/test_table.c t/unit/tap.h t/unit/testobj.h
t_unit_test_table_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/ctl
t_unit_test_table_LDADD = $(CTL_LIBS)
TESTS_PROGS += t/unit/test_table

# daemon.c: token files; SIGHUP and SIGTERM against hooks and a notify socket.
check_PROGRAMS += t/unit/test_daemon
t_unit_test_daemon_SOURCES = t/unit/test_daemon.c t/unit/tap.h
t_unit_test_daemon_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_daemon_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_daemon

check_PROGRAMS += t/unit/test_obs
t_unit_test_obs_SOURCES = t/unit/test_obs.c t/unit/tap.h
t_unit_test_obs_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_obs_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_obs

# pb_encode against protobuf-c's pack, on random messages of every type.
check_PROGRAMS += t/unit/test_pb
t_unit_test_pb_SOURCES = t/unit/test_pb.c t/unit/tap.h t/unit/rndmsg.h
t_unit_test_pb_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_pb_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_pb

# kobj: YAML/JSON <-> protobuf (manifests, the REST API's JSON) and its test data.
check_PROGRAMS += t/unit/test_yaml
t_unit_test_yaml_SOURCES = t/unit/test_yaml.c t/unit/rndmsg.h
t_unit_test_yaml_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit \
	-DTEST_DATA='"$(abs_top_srcdir)/t/data/ctl"'
t_unit_test_yaml_LDADD = libcoracle.a $(YAML_LIBS) $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_yaml

# kpatch: JSON patch, merge patch and strategic merge patch, their errors and limits.
check_PROGRAMS += t/unit/test_kpatch
t_unit_test_kpatch_SOURCES = t/unit/test_kpatch.c t/unit/tap.h
t_unit_test_kpatch_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_kpatch_LDADD = libcoracle.a $(YAML_LIBS) $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_kpatch

check_PROGRAMS += t/unit/test_cidr
t_unit_test_cidr_SOURCES = t/unit/test_cidr.c t/unit/tap.h
t_unit_test_cidr_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_cidr_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_cidr

check_PROGRAMS += t/unit/test_cron
t_unit_test_cron_SOURCES = t/unit/test_cron.c t/unit/tap.h
t_unit_test_cron_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_cron_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_cron

check_PROGRAMS += t/unit/test_qty
t_unit_test_qty_SOURCES = t/unit/test_qty.c
t_unit_test_qty_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_qty_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_qty

check_PROGRAMS += t/unit/test_sel
t_unit_test_sel_SOURCES = t/unit/test_sel.c
t_unit_test_sel_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_sel_LDADD = libcoracle.a $(COMMON_LIBS)
# counts the bytes xrealloc asks for, to check that parsing grows arrays linearly
t_unit_test_sel_LDFLAGS = $(AM_LDFLAGS) -Wl,--wrap=realloc
TESTS_PROGS += t/unit/test_sel

# smap: hash values, collisions, growth through many doublings.
check_PROGRAMS += t/unit/test_smap
t_unit_test_smap_SOURCES = t/unit/test_smap.c t/unit/tap.h
t_unit_test_smap_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_smap_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_smap

check_PROGRAMS += t/unit/test_spdy
t_unit_test_spdy_SOURCES = t/unit/test_spdy.c t/unit/tap.h
t_unit_test_spdy_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_spdy_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_spdy

check_PROGRAMS += t/unit/test_tls
t_unit_test_tls_SOURCES = t/unit/test_tls.c t/unit/tap.h
t_unit_test_tls_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -DSRCDIR='"$(abs_top_srcdir)"'
t_unit_test_tls_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_tls

# pki: the CA pin, CSR parsing and the signer's rules, signing, token syntax.
check_PROGRAMS += t/unit/test_pki
t_unit_test_pki_SOURCES = t/unit/test_pki.c t/unit/tap.h
t_unit_test_pki_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_pki_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_pki

# kssa: server-side apply and managedFields against structured-merge-diff's semantics.
check_PROGRAMS += t/unit/test_kssa
t_unit_test_kssa_SOURCES = t/unit/test_kssa.c t/unit/tap.h
t_unit_test_kssa_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_kssa_LDADD = libcoracle.a $(YAML_LIBS) $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_kssa

# image_gc and backoff: image garbage collection's choice, the pull back-off.
check_PROGRAMS += t/unit/test_image_gc
t_unit_test_image_gc_SOURCES = t/unit/test_image_gc.c t/unit/tap.h
t_unit_test_image_gc_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_image_gc_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_image_gc
