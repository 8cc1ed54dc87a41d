# Fault-injection tests (t/80-fault-*.t, helpers in t/lib/faultutil.py) run
# in the default suite; the long run is contrib/soak (not part of check).
EXTRA_DIST += contrib/soak
soak: $(bin_PROGRAMS)
	CORACLE_BUILD=$(abs_top_builddir) $(srcdir)/contrib/soak -b $(abs_top_builddir)
.PHONY: soak
