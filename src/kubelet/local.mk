# coracle-kubelet: main.c is thin; the rest goes in a lib<name>.a linked into the unit tests.
bin_PROGRAMS += coracle-kubelet
coracle_kubelet_SOURCES = src/kubelet/main.c
coracle_kubelet_LDADD = libcoracle.a $(COMMON_LIBS)
