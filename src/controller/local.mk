# coracle-controller-manager: main.c is thin; the rest is in libcontroller.a, linked into the unit tests.
noinst_LIBRARIES += libcontroller.a
# fit.h: the DaemonSet controller places pods by the scheduler's filters
libcontroller_a_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/src/scheduler
libcontroller_a_SOURCES = \
	src/controller/cm.c src/controller/cm.h \
	src/controller/controllers.c src/controller/controllers.h \
	src/controller/daemonset.c src/controller/daemonset_int.h \
	src/controller/daemonset_update.c \
	src/controller/replicaset.c \
	src/controller/deployment.c src/controller/deployment_int.h src/controller/deployment_util.c \
	src/controller/garbagecollector.c \
	src/controller/job.c src/controller/job.h \
	src/controller/ttlafterfinished.c \
	src/controller/cronjob.c \
	src/controller/rootcacert.c \
	src/controller/clusterroleaggregation.c \
	src/controller/nodeipam.c \
	src/controller/certificates.c src/controller/tokencleaner.c \
	src/controller/endpointslice.c

bin_PROGRAMS += coracle-controller-manager
coracle_controller_manager_SOURCES = src/controller/main.c
coracle_controller_manager_LDADD = libcontroller.a libscheduler.a libcoracle.a $(COMMON_LIBS) -lm $(MALLOC_LIBS)

# ---- unit tests ----
check_PROGRAMS += t/unit/test_cm
t_unit_test_cm_SOURCES = t/unit/test_cm.c
t_unit_test_cm_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/controller
t_unit_test_cm_LDADD = libcontroller.a libscheduler.a libcoracle.a $(COMMON_LIBS) -lm
TESTS_PROGS += t/unit/test_cm

check_PROGRAMS += t/unit/test_daemonset
t_unit_test_daemonset_SOURCES = t/unit/test_daemonset.c
t_unit_test_daemonset_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/controller \
	-I$(srcdir)/src/scheduler
t_unit_test_daemonset_LDADD = libcontroller.a libscheduler.a libcoracle.a $(YAML_LIBS) $(COMMON_LIBS) -lm
TESTS_PROGS += t/unit/test_daemonset

check_PROGRAMS += t/unit/test_deployment
t_unit_test_deployment_SOURCES = t/unit/test_deployment.c
t_unit_test_deployment_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/controller
t_unit_test_deployment_LDADD = libcontroller.a libscheduler.a libcoracle.a $(COMMON_LIBS) -lm
TESTS_PROGS += t/unit/test_deployment

check_PROGRAMS += t/unit/test_gc
t_unit_test_gc_SOURCES = t/unit/test_gc.c
t_unit_test_gc_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/controller
t_unit_test_gc_LDADD = libcontroller.a libscheduler.a libcoracle.a $(COMMON_LIBS) -lm
TESTS_PROGS += t/unit/test_gc
check_PROGRAMS += t/unit/test_cronjob
t_unit_test_cronjob_SOURCES = t/unit/test_cronjob.c
t_unit_test_cronjob_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/controller
t_unit_test_cronjob_LDADD = libcontroller.a libscheduler.a libcoracle.a $(COMMON_LIBS) -lm
TESTS_PROGS += t/unit/test_cronjob

check_PROGRAMS += t/unit/test_job
t_unit_test_job_SOURCES = t/unit/test_job.c
t_unit_test_job_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/controller
t_unit_test_job_LDADD = libcontroller.a libscheduler.a libcoracle.a $(COMMON_LIBS) -lm
TESTS_PROGS += t/unit/test_job
