# Living on a node (issue 9): default configs (installed under
# $(sysconfdir)/coracle/), systemd units made from conf/*.service.in with the
# install paths, a tmpfiles.d entry, the observability helpers shared by the
# daemons (src/lib/obs.c: /healthz, /readyz, /metrics, SIGHUP log-level
# reload) and coracle-backup (online backup / restore of the LMDB store).
# Man pages are in doc/local.mk.
coraconfdir = $(sysconfdir)/coracle
dist_coraconf_DATA = conf/coracle-apiserver.conf conf/coracle-scheduler.conf conf/coracle-kubelet.conf

systemdunitdir = $(prefix)/lib/systemd/system
systemdunit_DATA = coracle-apiserver.service coracle-scheduler.service coracle-kubelet.service
tmpfilesdir = $(prefix)/lib/tmpfiles.d
tmpfiles_DATA = conf/tmpfiles.d/coracle.conf
EXTRA_DIST += conf/coracle-apiserver.service.in conf/coracle-scheduler.service.in \
	conf/coracle-kubelet.service.in conf/tmpfiles.d/coracle.conf
CLEANFILES += $(systemdunit_DATA)

%.service: $(srcdir)/conf/%.service.in Makefile
	$(AM_V_GEN)sed -e 's|@bindir[@]|$(bindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	  -e 's|@localstatedir[@]|$(localstatedir)|g' $< >$@

# src/lib/obs.c belongs to libcoracle.a (src/lib/local.mk) but is ours.
libcoracle_a_SOURCES += src/lib/obs.c src/lib/obs.h

bin_PROGRAMS += coracle-backup
coracle_backup_SOURCES = src/backup/main.c
coracle_backup_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/src/apiserver
coracle_backup_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(COMMON_LIBS)

check_PROGRAMS += t/unit/test_obs
t_unit_test_obs_SOURCES = t/unit/test_obs.c t/unit/tap.h
t_unit_test_obs_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit
t_unit_test_obs_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_obs
