/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Creating filesystems by running the standard tools (mkfs.vfat, mkfs.ext4, mkswap, …), on a
 * partition node or, for image files, at an offset inside the file without loop devices or
 * privileges. */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-id128.h>

typedef struct MkfsTarget {
        const char *node;      /* partition block device; NULL for an image file */
        const char *file;      /* the image file; with fd, offset and size */
        int fd;                /* the image file, open read-write */
        uint64_t offset, size; /* bytes */
        uint32_t sector_size;
} MkfsTarget;

/* Creates a filesystem of type fstype with label and a UUID derived from uuid (the volume ID is
 * its first four bytes for FAT), then runs the filesystem's stock checker read-only on it
 * (fsck.fat -n, e2fsck -fn, xfs_repair -n, btrfs check --readonly): a filesystem that fails its
 * check is an error (-EUCLEAN) whose sentence quotes the checker. On a device node the node's own
 * size and logical sector size are used; in an image file, t's. */
int mkfs_make(const char *fstype, const MkfsTarget *t, const char *label, sd_id128_t uuid);

/* For a pre-flight check, the program mkfs_make() needs for fstype: the mkfs tool, or, when that
 * is installed and the checker is not, the checker. NULL for an unknown fstype. */
const char *mkfs_program(const char *fstype);

/* The FAT variant and cluster size for a partition of size bytes with sectors of sector_size
 * bytes: FAT32 when at least 65525 clusters fit, else FAT16. -ERANGE when neither fits. */
typedef struct FatGeometry {
        unsigned bits;                /* 16 or 32 */
        unsigned sectors_per_cluster;
        uint64_t clusters;            /* as mkfs.fat will lay them out */
} FatGeometry;
int fat_choose_geometry(uint64_t size, uint32_t sector_size, FatGeometry *ret);

/* The data clusters mkfs.fat makes for that size, FAT type and cluster size; 0 if they are out
 * of the type's range. */
uint64_t fat_count_clusters(uint64_t size, uint32_t sector_size, unsigned bits, unsigned sectors_per_cluster);

/* Copies the data regions (SEEK_DATA/SEEK_HOLE) of src [src_offset, src_offset + len) to dst at
 * dst_offset; holes stay holes only where dst already reads as zeros (callers punch them first). */
int copy_data_regions(int src, uint64_t src_offset, uint64_t len, int dst, uint64_t dst_offset);
