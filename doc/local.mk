# Man pages, written by hand in roff (doc/man/*.[18]).
dist_man1_MANS = doc/man/coraclectl.1
dist_man8_MANS = doc/man/coracle-apiserver.8 doc/man/coracle-scheduler.8 doc/man/coracle-controller-manager.8 \
	doc/man/coracle-kubelet.8 doc/man/coracle-backup.8
EXTRA_DIST += doc/DESIGN.md
EXTRA_DIST += doc/operations.md
EXTRA_DIST += doc/security.md
