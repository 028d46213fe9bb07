/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "blockcopy.h"
#include "fileio.h"
#include "macro.h"

/* 4 MiB: large enough that syscall overhead vanishes, a multiple of every sector and page
 * size, and small enough for the 32 MiB memory budget. */
#define CHUNK (UINT64_C(4) * 1024 * 1024)

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free);

static void free_aligned(uint8_t **p) {
        free(*p);
}

static bool all_zero(const uint8_t *p, size_t n) {
        /* Word-wise first; the tail byte-wise. memcmp against itself shifted by one word is the
         * classic trick: zero iff the first word is zero and every word equals the next. */
        if (n < 16)
                goto bytes;
        for (size_t i = 0; i < 16; i++)
                if (p[i])
                        return false;
        return memcmp(p, p + 16, n - 16) == 0;
bytes:
        for (size_t i = 0; i < n; i++)
                if (p[i])
                        return false;
        return true;
}

static int digest_chunk(EVP_MD_CTX *ctx, uint64_t rel, const uint8_t *buf, size_t n) {
        uint8_t off[8];

        for (int i = 0; i < 8; i++)
                off[i] = (uint8_t) (rel >> (8 * i));
        if (EVP_DigestUpdate(ctx, off, sizeof(off)) != 1 || EVP_DigestUpdate(ctx, buf, n) != 1)
                return -EIO;
        return 0;
}

/* Zeroes [offset, offset+len) of the target: a hole in a file, WRITE ZEROES (or the kernel's
 * fallback) on a block device. */
static int zero_range(int fd, bool is_block, uint64_t offset, uint64_t len) {
        if (len == 0)
                return 0;
        if (is_block) {
                uint64_t range[2] = { offset, len };
                if (ioctl(fd, BLKZEROOUT, range) < 0)
                        return -errno;
                return 0;
        }
        if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) offset, (off_t) len) < 0)
                return -errno;
        return 0;
}

/* Next data segment at or after pos within [0, end): SEEK_DATA/SEEK_HOLE where the source
 * supports them (files), else everything is data (block devices, pipes). */
static void next_segment(int fd, uint64_t base, uint64_t pos, uint64_t end, uint64_t *ret_start, uint64_t *ret_end) {
        off_t d, h;

        d = lseek(fd, (off_t) (base + pos), SEEK_DATA);
        if (d < 0) {
                if (errno == ENXIO) { /* only a hole is left */
                        *ret_start = *ret_end = end;
                        return;
                }
                *ret_start = pos, *ret_end = end; /* no hole support: treat as data */
                return;
        }
        h = lseek(fd, d, SEEK_HOLE);
        if (h < 0)
                h = (off_t) (base + end);
        *ret_start = MIN(end, (uint64_t) d - base);
        *ret_end = MIN(end, (uint64_t) h - base);
}

int copy_region(const CopyRegion *c, copy_progress_t progress, void *userdata, uint8_t ret_digest[COPY_DIGEST_SIZE],
                uint64_t *ret_written) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        _cleanup_(free_aligned) uint8_t *buf = NULL;
        uint64_t pos = 0, written = 0, zero_from = 0;
        unsigned len;
        int r;

        if (posix_memalign((void **) &buf, 4096, CHUNK) != 0)
                return -ENOMEM;
        ctx = EVP_MD_CTX_new();
        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
                return -ENOMEM;
        (void) posix_fadvise(c->src_fd, (off_t) c->src_offset, (off_t) c->length, POSIX_FADV_SEQUENTIAL);

        /* Files: punch the whole range first, then only data lands. Block devices: zero each run
         * of skipped chunks as it ends (zero_from marks where the current run began). */
        if (!c->dst_is_block) {
                r = zero_range(c->dst_fd, false, c->dst_offset, c->length);
                if (r < 0)
                        return r;
        }

        while (pos < c->length) {
                uint64_t seg_start, seg_end;

                next_segment(c->src_fd, c->src_offset, pos, c->length, &seg_start, &seg_end);
                /* Chunks are aligned to CHUNK relative to the region, so the digest does not
                 * depend on how the source happens to map its holes. */
                seg_start = ROUND_DOWN(seg_start, CHUNK);
                if (seg_start < pos)
                        seg_start = pos;

                /* Whole chunks: the last one may reach past seg_end, so the loop's end (not
                 * seg_end) is where the next segment must start. */
                uint64_t p = seg_start;
                while (p < seg_end) {
                        size_t n = (size_t) MIN(CHUNK - p % CHUNK, c->length - p);

                        r = pread_full(c->src_fd, buf, n, c->src_offset + p);
                        if (r < 0)
                                return r;
                        if (!all_zero(buf, n)) {
                                if (c->dst_is_block) {
                                        r = zero_range(c->dst_fd, true, c->dst_offset + zero_from, p - zero_from);
                                        if (r < 0)
                                                return r;
                                }
                                r = digest_chunk(ctx, p, buf, n);
                                if (r < 0)
                                        return r;
                                r = pwrite_full(c->dst_fd, buf, n, c->dst_offset + p);
                                if (r < 0)
                                        return r;
                                written += n;
                                zero_from = p + n;
                        }
                        p += n;
                        if (progress)
                                progress(p, c->length, userdata);
                }
                pos = MAX(MAX(seg_end, p), pos + 1);
                if (seg_end >= c->length)
                        break;
        }
        if (c->dst_is_block) {
                r = zero_range(c->dst_fd, true, c->dst_offset + zero_from, c->length - zero_from);
                if (r < 0)
                        return r;
        }
        if (progress)
                progress(c->length, c->length, userdata);

        if (EVP_DigestFinal_ex(ctx, ret_digest, &len) != 1)
                return -EIO;
        if (ret_written)
                *ret_written = written;
        return 0;
}

int copy_region_digest(int map_fd, uint64_t map_offset, int fd, uint64_t offset, uint64_t length, copy_progress_t progress,
                       void *userdata, uint8_t ret_digest[COPY_DIGEST_SIZE]) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        _cleanup_(free_aligned) uint8_t *buf = NULL;
        uint64_t pos = 0;
        unsigned len;
        int r;

        if (posix_memalign((void **) &buf, 4096, CHUNK) != 0)
                return -ENOMEM;
        ctx = EVP_MD_CTX_new();
        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
                return -ENOMEM;
        /* Read what is on the medium, not what the page cache remembers writing. */
        (void) posix_fadvise(fd, (off_t) offset, (off_t) length, POSIX_FADV_DONTNEED);

        while (pos < length) {
                uint64_t seg_start, seg_end;

                next_segment(map_fd, map_offset, pos, length, &seg_start, &seg_end);
                seg_start = ROUND_DOWN(seg_start, CHUNK);
                if (seg_start < pos)
                        seg_start = pos;
                uint64_t p = seg_start;
                while (p < seg_end) {
                        size_t n = (size_t) MIN(CHUNK - p % CHUNK, length - p);

                        r = pread_full(fd, buf, n, offset + p);
                        if (r < 0)
                                return r;
                        if (!all_zero(buf, n)) {
                                r = digest_chunk(ctx, p, buf, n);
                                if (r < 0)
                                        return r;
                        }
                        p += n;
                        if (progress)
                                progress(p, length, userdata);
                }
                pos = MAX(MAX(seg_end, p), pos + 1);
                if (seg_end >= length)
                        break;
        }
        if (EVP_DigestFinal_ex(ctx, ret_digest, &len) != 1)
                return -EIO;
        return 0;
}

int sha256_file(int fd, uint64_t size, copy_progress_t progress, void *userdata, char ret_hex[65]) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        _cleanup_(free_aligned) uint8_t *buf = NULL;
        uint8_t md[32];
        unsigned len;
        int r;

        if (posix_memalign((void **) &buf, 4096, CHUNK) != 0)
                return -ENOMEM;
        ctx = EVP_MD_CTX_new();
        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
                return -ENOMEM;
        (void) posix_fadvise(fd, 0, (off_t) size, POSIX_FADV_SEQUENTIAL);

        for (uint64_t p = 0; p < size;) {
                size_t n = (size_t) MIN(CHUNK, size - p);

                r = pread_full(fd, buf, n, p);
                if (r < 0)
                        return r;
                if (EVP_DigestUpdate(ctx, buf, n) != 1)
                        return -EIO;
                p += n;
                if (progress)
                        progress(p, size, userdata);
        }
        if (EVP_DigestFinal_ex(ctx, md, &len) != 1)
                return -EIO;
        for (size_t i = 0; i < 32; i++)
                snprintf(ret_hex + 2 * i, 3, "%02x", md[i]);
        return 0;
}
