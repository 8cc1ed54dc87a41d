# coracle-backup: online backup and offline restore of the apiserver's LMDB
# store, whose layout it reads from src/apiserver/store_meta.h, and its
# copy to and from etcd (the apiserver's store_etcd.h form).
bin_PROGRAMS += coracle-backup
coracle_backup_SOURCES = src/backup/main.c src/backup/backup.h src/backup/bk_etcd.c \
	src/backup/to_etcd.c src/backup/from_etcd.c
coracle_backup_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/src/apiserver
coracle_backup_LDADD = libapiserver.a libcoracle.a $(LMDB_LIBS) $(LZ4_LIBS) $(YAML_LIBS) $(COMMON_LIBS)
