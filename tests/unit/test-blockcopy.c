/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Block copy on sparse files: data, holes, all-zero blocks and segments that share a 4 MiB chunk
 * all arrive bit-identical, old target content in skipped ranges is gone, and the read-back
 * digest catches a changed byte. */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockcopy.h"
#include "fileio.h"
#include "macro.h"
#include "size.h"
#include "tests.h"

static int tmpfile_in(const char *dir) {
        int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        return fd;
}

static void fill(int fd, uint64_t off, size_t n, uint8_t seed) {
        uint8_t *b = malloc(n);
        for (size_t i = 0; i < n; i++)
                b[i] = (uint8_t) (seed + i * 7 + (i >> 9));
        ASSERT_OK(pwrite_full(fd, b, n, off));
        free(b);
}

static void assert_same(int a, uint64_t aoff, int b, uint64_t boff, uint64_t len) {
        uint8_t *x = malloc(1 << 20), *y = malloc(1 << 20);
        for (uint64_t p = 0; p < len;) {
                size_t n = (size_t) MIN((uint64_t) (1 << 20), len - p);
                ASSERT_OK(pread_full(a, x, n, aoff + p));
                ASSERT_OK(pread_full(b, y, n, boff + p));
                if (memcmp(x, y, n) != 0)
                        FAIL("copies differ in the MiB at %ju", (uintmax_t) p);
                p += n;
        }
        free(x);
        free(y);
}

int main(void) {
        const char *dir = getenv("TMPDIR") ?: "/var/tmp";
        const uint64_t len = 40 * MiB + 12345 * 512, src_off = 3 * MiB, dst_off = 7 * MiB;
        uint8_t d1[COPY_DIGEST_SIZE], d2[COPY_DIGEST_SIZE], d3[COPY_DIGEST_SIZE];
        uint64_t written = 0;
        int src, dst;

        src = tmpfile_in(dir);
        dst = tmpfile_in(dir);
        ASSERT_TRUE(ftruncate(src, (off_t) (src_off + len + MiB)) == 0);

        /* Data at odd places: two small extents inside one 4 MiB chunk, a big extent crossing
         * chunk borders, an extent of explicit zeros, and data in the very last sector. */
        fill(src, src_off + 4096, 8192, 1);
        fill(src, src_off + 2 * MiB + 512, 4096, 2);
        fill(src, src_off + 5 * MiB + 100, 9 * MiB, 3);
        {
                uint8_t *z = calloc(1, 2 * MiB);
                ASSERT_OK(pwrite_full(src, z, 2 * MiB, src_off + 20 * MiB));
                free(z);
        }
        fill(src, src_off + len - 512, 512, 4);
        /* Data outside the region must not be copied. */
        fill(src, src_off - 4096, 4096, 9);
        fill(src, src_off + len, 4096, 9);

        /* The target holds old data everywhere; none of it may survive inside the region. */
        ASSERT_TRUE(ftruncate(dst, (off_t) (dst_off + len + MiB)) == 0);
        fill(dst, 0, (size_t) (dst_off + len + MiB), 0xa5);

        ASSERT_OK(copy_region(&(CopyRegion) { .src_fd = src, .src_offset = src_off, .length = len, .dst_fd = dst,
                                              .dst_offset = dst_off },
                              NULL, NULL, d1, &written));
        assert_same(src, src_off, dst, dst_off, len);
        /* Only non-zero chunks were written: 4 MiB chunks touched by data, not the zeros. */
        ASSERT_TRUE(written > 9 * MiB && written <= 20 * MiB);
        /* Bytes just outside the region are untouched. */
        {
                uint8_t a[16], b[16];
                ASSERT_OK(pread_full(dst, a, 16, dst_off - 16));
                ASSERT_OK(pread_full(dst, b, 16, dst_off + len));
                for (int i = 0; i < 16; i++) {
                        ASSERT_TRUE(a[i] != 0);
                        ASSERT_TRUE(b[i] != 0);
                }
        }

        /* The read-back digest equals the copy's, and a single changed byte changes it. */
        ASSERT_OK(copy_region_digest(src, src_off, dst, dst_off, len, NULL, NULL, d2));
        ASSERT_TRUE(memcmp(d1, d2, sizeof(d1)) == 0);
        ASSERT_OK(pwrite_full(dst, "X", 1, dst_off + 5 * MiB + 200));
        ASSERT_OK(copy_region_digest(src, src_off, dst, dst_off, len, NULL, NULL, d3));
        ASSERT_FALSE(memcmp(d1, d3, sizeof(d1)) == 0);

        /* sha256_file agrees with OpenSSL's reference value for a known input. */
        {
                int f = tmpfile_in(dir);
                char hex[65];
                ASSERT_OK(pwrite_full(f, "abc", 3, 0));
                ASSERT_OK(sha256_file(f, 3, NULL, NULL, hex));
                ASSERT_STREQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
                close(f);
        }

        close(src);
        close(dst);
        printf("test-blockcopy: all checks passed\n");
        return 0;
}
