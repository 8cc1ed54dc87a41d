# libcoracle.a: code shared by every program and linked into the unit tests.
noinst_LIBRARIES += libcoracle.a
libcoracle_a_SOURCES = \
	src/lib/util.c src/lib/util.h \
	src/lib/cfg.c src/lib/cfg.h \
	src/lib/grpc.c src/lib/grpc.h \
	src/lib/pb.c src/lib/pb.h \
	src/lib/kinds.c src/lib/kinds.h \
	src/lib/qty.c src/lib/qty.h \
	src/lib/sel.c src/lib/sel.h \
	src/lib/h2s.c src/lib/h2s.h src/lib/h2s_int.h \
	src/lib/h2s_conn.c src/lib/h2s_call.c src/lib/h2s_http1.c src/lib/h2s_limit.c \
	src/lib/gcl.c src/lib/gcl.h \
	src/lib/addr.c src/lib/addr.h \
	src/lib/sdnotify.c src/lib/sdnotify.h
nodist_libcoracle_a_SOURCES = $(PROTO_GEN)
