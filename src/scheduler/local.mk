# coracle-scheduler: main.c is thin; the rest goes in a lib<name>.a linked into the unit tests.
bin_PROGRAMS += coracle-scheduler
coracle_scheduler_SOURCES = src/scheduler/main.c
coracle_scheduler_LDADD = libcoracle.a $(COMMON_LIBS)
