/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Reading and writing files inside a filesystem that sits in a partition, without mounting it
 * and without privileges: debugfs for ext2/3/4, mtools for FAT, unsquashfs for squashfs (reading
 * only), dump.erofs for erofs (reading only, a dump.erofs with --cat). All of them name a
 * partition inside an image file by byte offset, so this works on image files as well as on
 * partition nodes. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct FsLocation {
        const char *disk;   /* the image file or whole-disk node */
        const char *node;   /* the partition's own node, or NULL to use disk + offset */
        uint64_t offset;    /* bytes from the start of disk */
        const char *fstype; /* as blkid names it: "ext4", "vfat", … */
} FsLocation;

/* How a tool names the partition: the node, or disk + separator + offset ("img?offset=N" for
 * e2fsprogs, "img@@N" for mtools). NULL (and 0) when the path already contains the separator. */
int fs_tool_path(const FsLocation *l, const char *separator, char **ret);

/* Reads a whole regular file. -ENOENT when it does not exist (or, for ext*, is a symlink, which
 * debugfs does not follow), -EOPNOTSUPP for filesystems without a tool here. */
int fs_read_file(const FsLocation *l, const char *path, void **ret, size_t *ret_size);

/* Copies a file into fd (an empty regular file, e.g. a memory file). -ENOENT when it does not
 * exist. For large files: nothing passes through this process's memory. */
int fs_copy_file_to_fd(const FsLocation *l, const char *path, int fd);

/* Names (not paths) of the entries of a directory (FAT, squashfs, erofs); directories end in "/".
 * squashfs and erofs list regular files and directories only. */
int fs_list_dir(const FsLocation *l, const char *dir, char ***ret);

/* FAT only: creates directories (parents first, existing ones are fine) and writes files. */
int fat_mkdirs(const FsLocation *l, const char *const *dirs);
int fat_write_file(const FsLocation *l, const char *path, const void *data, size_t size);

void strv_free(char **l);

/* Whether this system's dump.erofs can print a file (--cat and --offset: later
 * erofs-utils 1.8 releases; 1.8.2 has no --cat, 1.8.6 of Debian 13 has).
 * Without it, erofs reads are -EOPNOTSUPP. */
bool fs_erofs_readable(void);

/* FAT only: writes the whole content of fd (e.g. a memory file) to path. */
int fat_copy_fd(const FsLocation *l, const char *path, int fd);
