/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Creating filesystems by running the standard tools (mkfs.vfat, mkfs.ext4, mkswap, …), on a
 * partition node or, for image files, at an offset inside the file without loop devices or
 * privileges. */

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
 * its first four bytes for FAT). */
int mkfs_make(const char *fstype, const MkfsTarget *t, const char *label, sd_id128_t uuid);

/* The programs mkfs_make() runs for fstype, for a pre-flight check. */
const char *mkfs_program(const char *fstype);

/* Copies the data regions (SEEK_DATA/SEEK_HOLE) of src [0, len) to dst at dst_offset; holes
 * stay holes only where dst already reads as zeros (callers punch them first). */
int copy_data_regions(int src, uint64_t len, int dst, uint64_t dst_offset);
