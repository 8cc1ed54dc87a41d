# coracle-backup: online backup and offline restore of the apiserver's LMDB
# store, whose layout it reads from src/apiserver/store_meta.h.
bin_PROGRAMS += coracle-backup
coracle_backup_SOURCES = src/backup/main.c
coracle_backup_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/src/apiserver
coracle_backup_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(YAML_LIBS) $(COMMON_LIBS)
