/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Copying a partition of the image onto the target, block by block: sparse-aware, with large
 * aligned I/O, a digest of everything written, and a read-back check of that digest. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

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
 * ret_digest: SHA256 over (offset, data) of every non-zero 4 MiB chunk (chunks aligned to the
 * region's start), the same digest copy_region_digest() computes of the target. */
int copy_region(const CopyRegion *c, copy_progress_t progress, void *userdata, uint8_t ret_digest[COPY_DIGEST_SIZE],
                uint64_t *ret_written);

/* The next n bytes of a stream, in order: n, fewer only at its end, 0 at its end, <0 an error. */
typedef ssize_t (*copy_reader_t)(void *userdata, void *buf, size_t n);

/* As copy_region(), with the source a stream of exactly c->length bytes instead of src_fd (which
 * is ignored): an image decompressed or fetched while it is written. Every chunk is read; the
 * all-zero ones are not written but zeroed on the target, and the digest is copy_region()'s. A
 * stream that ends early is -EPIPE, a reader's error is returned as it is. */
int copy_stream(copy_reader_t read, void *read_userdata, const CopyRegion *c, copy_progress_t progress, void *userdata,
                uint8_t ret_digest[COPY_DIGEST_SIZE], uint64_t *ret_written);

/* Reads the target fd back over [offset, offset+length) and returns its digest as copy_region()
 * defines it. When that equals the copy's digest, the target holds exactly the source's bytes
 * over the whole region, zeros included:
 *  - every non-zero chunk of the target has the offset and the content (SHA256) of a non-zero
 *    chunk of the source, and the two sets are the same;
 *  - every chunk not read is zero: on a regular file, the target's own hole map (SEEK_DATA/
 *    SEEK_HOLE, queried on the target, not on the source) is read, and a hole reads as zeros by
 *    the filesystem's definition, so a byte that landed where a hole should be makes its chunk
 *    data and gets read; a block device (or a dm-crypt volume) is read over its whole length,
 *    because nothing there distinguishes a zeroed range from a stale one, nor a faked capacity
 *    that wraps around;
 *  - a target shorter than offset+length is an error (-EIO), as its missing tail cannot hold
 *    the region's zeros.
 * What is read comes from the medium, not from the page cache: the target is flushed, its cached
 * pages over the region dropped (POSIX_FADV_DONTNEED), and the reads go through O_DIRECT where
 * the file system or device allows (any odd, unaligned tail is read buffered, after the drop).
 * It proves what the device returns; a drive's own volatile cache is beyond what the host can
 * bypass. */
int copy_region_digest(int fd, uint64_t offset, uint64_t length, copy_progress_t progress, void *userdata,
                       uint8_t ret_digest[COPY_DIGEST_SIZE]);

/* SHA256 of a whole file, hex, for comparison with SHA256SUMS. */
int sha256_file(int fd, uint64_t size, copy_progress_t progress, void *userdata, char ret_hex[65]);
