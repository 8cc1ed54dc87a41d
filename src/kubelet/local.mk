# coracle-kubelet: main.c is thin; the rest is libkubelet.a, linked into the unit tests.
# coracle-monitor is the per-container parent process (its own small program).
noinst_LIBRARIES += libkubelet.a
libkubelet_a_SOURCES = \
	src/kubelet/klet.h \
	src/kubelet/certs.c src/kubelet/certs.h \
	src/kubelet/proc.c \
	src/kubelet/imgref.c \
	src/kubelet/imggc.c \
	src/kubelet/pullbackoff.c \
	src/kubelet/pull.c \
	src/kubelet/runtime_runc.c \
	src/kubelet/admit.c \
	src/kubelet/secctx.c \
	src/kubelet/seccomp.c \
	src/kubelet/sandbox.c \
	src/kubelet/volumes.c \
	src/kubelet/atomic_writer.c \
	src/kubelet/refs.c \
	src/kubelet/record.c \
	src/kubelet/cfgvol.c \
	src/kubelet/projvol.c \
	src/kubelet/envvars.c \
	src/kubelet/cni.c \
	src/kubelet/netlink.c \
	src/kubelet/podnet.c \
	src/kubelet/offload.c \
	src/kubelet/bridgenet.c \
	src/kubelet/netmasq.c \
	src/kubelet/monitor.c \
	src/kubelet/status.c \
	src/kubelet/events.c \
	src/kubelet/probes.c \
	src/kubelet/node.c \
	src/kubelet/watch.c \
	src/kubelet/tunnel.c src/kubelet/tunnel.h \
	src/kubelet/pods.c \
	src/kubelet/metrics.c \
	src/kubelet/proxy.c src/kubelet/proxy_rules.c src/kubelet/proxy.h \
	src/kubelet/services.c src/kubelet/dns.c src/kubelet/dns_msg.c src/kubelet/dns_conf.c src/kubelet/dns.h \
	src/kubelet/netpol.c src/kubelet/netpol_rules.c src/kubelet/netpol.h
KLET_LIBS = libkubelet.a libcoracle.a $(COMMON_LIBS) $(LIBMNL_LIBS) $(NFTABLES_LIBS) $(LDNS_LIBS)
bin_PROGRAMS += coracle-kubelet coracle-monitor
coracle_kubelet_SOURCES = src/kubelet/main.c
coracle_kubelet_LDADD = $(KLET_LIBS)
coracle_monitor_SOURCES = src/kubelet/monitor_main.c src/kubelet/monitor_io.c \
	src/kubelet/monitor_int.h src/kubelet/attach_wire.h
coracle_monitor_LDADD =

check_PROGRAMS += t/unit/test_klet_oci t/unit/test_klet_status t/unit/test_klet_logs \
	t/unit/test_klet_env t/unit/test_klet_secctx t/unit/test_klet_record t/unit/test_klet_podnet \
	t/unit/test_klet_proxy t/unit/test_klet_dns t/unit/test_klet_netpol
t_unit_test_klet_oci_SOURCES = t/unit/test_klet_oci.c
t_unit_test_klet_oci_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/kubelet
t_unit_test_klet_oci_LDADD = $(KLET_LIBS)
t_unit_test_klet_status_SOURCES = t/unit/test_klet_status.c
t_unit_test_klet_status_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/kubelet
t_unit_test_klet_status_LDADD = $(KLET_LIBS)
t_unit_test_klet_logs_SOURCES = t/unit/test_klet_logs.c
t_unit_test_klet_logs_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/kubelet
t_unit_test_klet_logs_LDADD = $(KLET_LIBS)
t_unit_test_klet_env_SOURCES = t/unit/test_klet_env.c
t_unit_test_klet_env_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/kubelet
t_unit_test_klet_env_LDADD = $(KLET_LIBS)
t_unit_test_klet_secctx_SOURCES = t/unit/test_klet_secctx.c
t_unit_test_klet_secctx_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/kubelet
t_unit_test_klet_secctx_LDADD = $(KLET_LIBS) $(YAML_LIBS)
t_unit_test_klet_record_SOURCES = t/unit/test_klet_record.c
t_unit_test_klet_record_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/kubelet
t_unit_test_klet_record_LDADD = $(KLET_LIBS) $(YAML_LIBS)
t_unit_test_klet_podnet_SOURCES = t/unit/test_klet_podnet.c
t_unit_test_klet_podnet_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/kubelet
t_unit_test_klet_podnet_LDADD = $(KLET_LIBS)
t_unit_test_klet_proxy_SOURCES = t/unit/test_klet_proxy.c
t_unit_test_klet_proxy_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/kubelet
t_unit_test_klet_proxy_LDADD = $(KLET_LIBS)
t_unit_test_klet_dns_SOURCES = t/unit/test_klet_dns.c
t_unit_test_klet_dns_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/kubelet
t_unit_test_klet_dns_LDADD = $(KLET_LIBS)
t_unit_test_klet_netpol_SOURCES = t/unit/test_klet_netpol.c
t_unit_test_klet_netpol_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/kubelet
t_unit_test_klet_netpol_LDADD = $(KLET_LIBS)
TESTS_PROGS += t/unit/test_klet_oci t/unit/test_klet_status t/unit/test_klet_logs \
	t/unit/test_klet_env t/unit/test_klet_secctx t/unit/test_klet_record t/unit/test_klet_podnet \
	t/unit/test_klet_proxy t/unit/test_klet_dns t/unit/test_klet_netpol
