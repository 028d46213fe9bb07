/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Block copy on sparse files: data, holes, all-zero blocks and segments that share a 4 MiB chunk
 * all arrive bit-identical, old target content in skipped ranges is gone, and the read-back
 * digest catches a changed byte in data, a byte written where a hole should be, and a target
 * cut short: on an image file and (as root) on a loop device. */

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
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

/* Writes one byte at rel into the region of dst, checks that the read-back digest no longer
 * matches `good`, restores the byte and checks that it matches again. */
static void assert_detects(int dst, uint64_t dst_off, uint64_t len, uint64_t rel, const uint8_t good[COPY_DIGEST_SIZE]) {
        uint8_t old, d[COPY_DIGEST_SIZE];

        ASSERT_TRUE(rel < len);
        ASSERT_OK(pread_full(dst, &old, 1, dst_off + rel));
        ASSERT_OK(pwrite_full(dst, "X", 1, dst_off + rel));
        ASSERT_TRUE(fdatasync(dst) == 0);
        ASSERT_OK(copy_region_digest(dst, dst_off, len, NULL, NULL, d));
        if (memcmp(good, d, COPY_DIGEST_SIZE) == 0)
                FAIL("a byte changed at %ju of the region is not detected", (uintmax_t) rel);
        /* Back as it was (in a hole: an allocated block of zeros now, which reads the same). */
        ASSERT_OK(pwrite_full(dst, &old, 1, dst_off + rel));
        ASSERT_TRUE(fdatasync(dst) == 0);
        ASSERT_OK(copy_region_digest(dst, dst_off, len, NULL, NULL, d));
        ASSERT_TRUE(memcmp(good, d, COPY_DIGEST_SIZE) == 0);
}

/* A region with data at its start and a hole to its end; the target is then cut in the middle
 * of that hole, or in the data. */
static void assert_truncation_detected(const char *dir) {
        const uint64_t len = 16 * MiB;
        uint8_t d1[COPY_DIGEST_SIZE], d2[COPY_DIGEST_SIZE];
        int src = tmpfile_in(dir), dst = tmpfile_in(dir), r;

        ASSERT_TRUE(ftruncate(src, (off_t) len) == 0);
        fill(src, 0, 1 * MiB, 5);
        ASSERT_TRUE(ftruncate(dst, (off_t) len) == 0);
        ASSERT_OK(copy_region(&(CopyRegion) { .src_fd = src, .length = len, .dst_fd = dst }, NULL, NULL, d1, NULL));
        ASSERT_OK(copy_region_digest(dst, 0, len, NULL, NULL, d2));
        ASSERT_TRUE(memcmp(d1, d2, sizeof(d1)) == 0);

        ASSERT_TRUE(ftruncate(dst, (off_t) (len - 5 * MiB)) == 0);
        r = copy_region_digest(dst, 0, len, NULL, NULL, d2);
        ASSERT_TRUE(r < 0 || memcmp(d1, d2, sizeof(d1)) != 0);
        ASSERT_TRUE(ftruncate(dst, (off_t) (512 * 1024)) == 0);
        r = copy_region_digest(dst, 0, len, NULL, NULL, d2);
        ASSERT_TRUE(r < 0 || memcmp(d1, d2, sizeof(d1)) != 0);
        close(src);
        close(dst);
}

/* A loop device over a fresh file, detached by the kernel when its last descriptor closes. */
static int loop_attach(int backing_fd) {
        int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        ASSERT_TRUE(ctl >= 0);
        for (int attempt = 0; attempt < 64; attempt++) {
                char path[64];
                int nr = ioctl(ctl, LOOP_CTL_GET_FREE), fd;

                ASSERT_TRUE(nr >= 0);
                snprintf(path, sizeof(path), "/dev/loop%d", nr);
                fd = open(path, O_RDWR | O_CLOEXEC);
                if (fd < 0)
                        continue;
                if (ioctl(fd, LOOP_CONFIGURE, &(struct loop_config) { .fd = (uint32_t) backing_fd,
                                                                      .info.lo_flags = LO_FLAGS_AUTOCLEAR }) == 0) {
                        close(ctl);
                        return fd;
                }
                ASSERT_TRUE(errno == EBUSY); /* another program took it first */
                close(fd);
        }
        FAIL("no free loop device");
}

static void test_loop(int src, uint64_t src_off, uint64_t len, uint64_t dst_off, const uint8_t good[COPY_DIGEST_SIZE],
                      const char *dir) {
        uint8_t d[COPY_DIGEST_SIZE], *buf;
        int backing = tmpfile_in(dir), loop;

        ASSERT_TRUE(ftruncate(backing, (off_t) (dst_off + len + MiB)) == 0);
        fill(backing, 0, (size_t) (dst_off + len + MiB), 0xa5);
        ASSERT_TRUE(fdatasync(backing) == 0);
        loop = loop_attach(backing);

        ASSERT_OK(copy_region(&(CopyRegion) { .src_fd = src, .src_offset = src_off, .length = len, .dst_fd = loop,
                                              .dst_offset = dst_off, .dst_is_block = true },
                              NULL, NULL, d, NULL));
        ASSERT_TRUE(memcmp(good, d, sizeof(d)) == 0);
        ASSERT_TRUE(fsync(loop) == 0);
        assert_same(src, src_off, loop, dst_off, len);
        ASSERT_OK(copy_region_digest(loop, dst_off, len, NULL, NULL, d));
        ASSERT_TRUE(memcmp(good, d, sizeof(d)) == 0);

        /* A byte in data, in a hole of the source, and in its zeros: all found. */
        assert_detects(loop, dst_off, len, 5 * MiB + 200, good);
        assert_detects(loop, dst_off, len, 30 * MiB + 7, good);
        assert_detects(loop, dst_off, len, 21 * MiB, good);

        /* The medium changes under a page cache that holds the right bytes: the read-back must
         * see the medium. */
        buf = malloc(len);
        ASSERT_OK(pread_full(loop, buf, len, dst_off));
        ASSERT_OK(pwrite_full(backing, "Y", 1, dst_off + 33 * MiB));
        ASSERT_TRUE(fdatasync(backing) == 0);
        ASSERT_OK(copy_region_digest(loop, dst_off, len, NULL, NULL, d));
        ASSERT_FALSE(memcmp(good, d, sizeof(d)) == 0);
        free(buf);

        close(loop);
        close(backing);
}

int main(void) {
        const char *dir = getenv("TMPDIR") ?: "/var/tmp";
        const uint64_t len = 40 * MiB + 12345 * 512, src_off = 3 * MiB, dst_off = 7 * MiB;
        uint8_t d1[COPY_DIGEST_SIZE], d2[COPY_DIGEST_SIZE];
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

        /* The read-back digest equals the copy's; a changed byte inside data, a byte written into
         * a hole (the tail hole, and the chunk the source holds as explicit zeros), or a byte
         * in the last, partial chunk changes it; putting the byte back restores it. */
        ASSERT_OK(copy_region_digest(dst, dst_off, len, NULL, NULL, d2));
        ASSERT_TRUE(memcmp(d1, d2, sizeof(d1)) == 0);
        assert_detects(dst, dst_off, len, 5 * MiB + 200, d1);  /* data */
        assert_detects(dst, dst_off, len, 30 * MiB + 7, d1);   /* a hole of the source */
        assert_detects(dst, dst_off, len, 21 * MiB, d1);       /* zeros in the source, a hole here */
        assert_detects(dst, dst_off, len, len - 1000, d1);     /* the partial last chunk */

        /* A target cut short is refused, even where only a hole of the region is cut away. */
        assert_truncation_detected(dir);

        /* The same on a loop device, where holes are zeroed with BLKZEROOUT and the read-back
         * reads every byte, from the device and not from its page cache. */
        if (geteuid() == 0)
                test_loop(src, src_off, len, dst_off, d1, dir);
        else
                printf("test-blockcopy: not root, the loop device checks were not run\n");

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
