# What a node gets installed besides the programs: default configs and the
# default authorization policy (under $(sysconfdir)/coracle/), systemd units
# made from conf/*.service.in with the install paths, a tmpfiles.d entry.
# Man pages are in doc/local.mk.
coraconfdir = $(sysconfdir)/coracle
dist_coraconf_DATA = conf/coracle-apiserver.conf conf/coracle-scheduler.conf conf/coracle-controller-manager.conf conf/coracle-kubelet.conf \
	conf/policy

systemdunitdir = $(prefix)/lib/systemd/system
systemdunit_DATA = coracle-apiserver.service coracle-scheduler.service \
	coracle-controller-manager.service coracle-kubelet.service
# contrib/certs as coracle-certs: each unit runs `coracle-certs renew` before
# it starts (what expires within 90 days is issued again by the same CA).
bin_SCRIPTS = coracle-certs
CLEANFILES += coracle-certs
coracle-certs: $(srcdir)/contrib/certs
	$(AM_V_GEN)cp $(srcdir)/contrib/certs $@ && chmod +x $@

tmpfilesdir = $(prefix)/lib/tmpfiles.d
tmpfiles_DATA = conf/tmpfiles.d/coracle.conf
EXTRA_DIST += conf/coracle-apiserver.service.in conf/coracle-scheduler.service.in \
	conf/coracle-controller-manager.service.in \
	conf/coracle-kubelet.service.in conf/tmpfiles.d/coracle.conf
CLEANFILES += $(systemdunit_DATA)

%.service: $(srcdir)/conf/%.service.in Makefile
	$(AM_V_GEN)sed -e 's|@bindir[@]|$(bindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	  -e 's|@localstatedir[@]|$(localstatedir)|g' $< >$@

