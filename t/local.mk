# t/: the end-to-end scripts (t/NN-*.t) and the programs they run. Unit
# tests (t/unit/test_X) are registered in the local.mk of the module they
# test; the fuzz targets and their test in t/fuzz/local.mk.
EXTRA_DIST += t

# h2echo: a gRPC echo server on h2s for t/25-h2-grpcio.t (stock grpcio client) and h2load.
check_PROGRAMS += t/h2echo
t_h2echo_SOURCES = t/h2echo.c
t_h2echo_LDADD = libcoracle.a $(COMMON_LIBS)

# gclcall: one gcl call from the command line, for t/27-h2-gcl-grpcio.t (gcl against grpcio's server).
check_PROGRAMS += t/gclcall
t_gclcall_SOURCES = t/gclcall.c
t_gclcall_LDADD = libcoracle.a $(COMMON_LIBS)

# etcdcall: the etcd client driven line by line, for t/39-etcd-client.t (real etcd members).
check_PROGRAMS += t/etcdcall
t_etcdcall_SOURCES = t/etcdcall.c
t_etcdcall_LDADD = libcoracle.a $(COMMON_LIBS)

# getprobe: Pods.Get one at a time, latency percentiles, for t/28-api-loop-bound.t.
check_PROGRAMS += t/getprobe
t_getprobe_SOURCES = t/getprobe.c
t_getprobe_LDADD = libcoracle.a $(COMMON_LIBS)

# img-tool: the `coraclectl image` verb alone (src/ctl/cmd_image.c, in
# libctl.a), for t/45-image-*.t.
check_PROGRAMS += t/img-tool
t_img_tool_SOURCES = t/img_tool.c
t_img_tool_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/src/ctl
t_img_tool_LDADD = libctl.a libcoracle.a $(YAML_LIBS) $(COMMON_LIBS)
