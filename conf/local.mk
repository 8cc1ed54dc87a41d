# Default configs (installed under $(sysconfdir)/coracle/), systemd units and
# a tmpfiles.d entry. Units are made from *.service.in with the install paths.
coraconfdir = $(sysconfdir)/coracle
dist_coraconf_DATA = conf/coracle-apiserver.conf conf/coracle-scheduler.conf conf/coracle-kubelet.conf

systemdunitdir = $(prefix)/lib/systemd/system
systemdunit_DATA = coracle-apiserver.service coracle-scheduler.service coracle-kubelet.service
tmpfilesdir = $(prefix)/lib/tmpfiles.d
tmpfiles_DATA = conf/coracle.tmpfiles.conf
EXTRA_DIST += conf/coracle-apiserver.service.in conf/coracle-scheduler.service.in \
	conf/coracle-kubelet.service.in conf/coracle.tmpfiles.conf
CLEANFILES += $(systemdunit_DATA)

%.service: $(srcdir)/conf/%.service.in Makefile
	$(AM_V_GEN)sed -e 's|@bindir[@]|$(bindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' $< >$@
