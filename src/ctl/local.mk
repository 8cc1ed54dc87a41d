# coraclectl: main.c is thin; the rest goes in a lib<name>.a linked into the unit tests.
bin_PROGRAMS += coraclectl
coraclectl_SOURCES = src/ctl/main.c
coraclectl_LDADD = libcoracle.a $(COMMON_LIBS)
