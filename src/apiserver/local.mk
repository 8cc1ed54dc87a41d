# coracle-apiserver: main.c is thin; everything else is in libapiserver.a so
# the unit tests link it.
noinst_LIBRARIES += libapiserver.a
libapiserver_a_SOURCES = \
	src/apiserver/store.c src/apiserver/store.h
bin_PROGRAMS += coracle-apiserver
coracle_apiserver_SOURCES = src/apiserver/main.c
coracle_apiserver_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(COMMON_LIBS)
