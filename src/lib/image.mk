# The node's local image store (image.h) and the JSON parser it uses
# (json.h), in libcoracle.a for coracle-kubelet and coraclectl; the
# `coraclectl image` verb; their unit test.
libcoracle_a_SOURCES += \
	src/lib/image.c src/lib/image.h src/lib/image_int.h \
	src/lib/image_ref.c src/lib/image_import.c \
	src/lib/json.c src/lib/json.h
# src/ctl/cmd_image.{c,h} belong in libctl_a_SOURCES (src/ctl/local.mk, which
# defines it after this file is included); t/img-tool runs the verb alone.
check_PROGRAMS += t/img-tool
t_img_tool_SOURCES = t/img_tool.c src/ctl/cmd_image.c src/ctl/cmd_image.h
t_img_tool_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/src/ctl
t_img_tool_LDADD = libctl.a libcoracle.a $(YAML_LIBS) $(COMMON_LIBS)
# contrib/images: scripts building the seed's images (busybox, debian, nginx).
EXTRA_DIST += contrib/images

check_PROGRAMS += t/unit/test_image
t_unit_test_image_SOURCES = t/unit/test_image.c t/unit/tap.h
t_unit_test_image_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/t/unit -I$(srcdir)/src/ctl
t_unit_test_image_LDADD = libcoracle.a $(COMMON_LIBS)
TESTS_PROGS += t/unit/test_image
