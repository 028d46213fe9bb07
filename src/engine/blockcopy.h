/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Copying a partition of the image onto the target, block by block: sparse-aware, with large
 * aligned I/O, a digest of everything written, and a read-back check of that digest. */

#include <stdbool.h>
#include <stdint.h>

typedef void (*copy_progress_t)(uint64_t done, uint64_t total, void *userdata);

typedef struct CopyRegion {
        int src_fd;
        uint64_t src_offset, length;  /* what to copy */
        int dst_fd;
        uint64_t dst_offset;
        bool dst_is_block;            /* zero holes with BLKZEROOUT; files get holes punched */
} CopyRegion;

#define COPY_DIGEST_SIZE 32

/* Copies the region. Ranges the source holds as holes or all-zero blocks are not written but
 * zeroed on the target, so the target reads back bit-identical to the source over `length`.
 * ret_digest: SHA256 over (offset, data) of every non-zero 4 MiB-aligned chunk, the same digest
 * copy_region_digest() computes on either side. */
int copy_region(const CopyRegion *c, copy_progress_t progress, void *userdata, uint8_t ret_digest[COPY_DIGEST_SIZE],
                uint64_t *ret_written);

/* The digest of fd over [offset, offset+length) as copy_region() computes it, reading only where
 * the map of src_fd (the image) holds data: holes were zeroed on the target by a kernel call that
 * cannot silently fail, so reading them back would only re-read zeros. */
int copy_region_digest(int map_fd, uint64_t map_offset, int fd, uint64_t offset, uint64_t length, copy_progress_t progress,
                       void *userdata, uint8_t ret_digest[COPY_DIGEST_SIZE]);

/* SHA256 of a whole file, hex, for comparison with SHA256SUMS. */
int sha256_file(int fd, uint64_t size, copy_progress_t progress, void *userdata, char ret_hex[65]);
