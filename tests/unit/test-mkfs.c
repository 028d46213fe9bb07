/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The FAT imprint makes: the type and cluster size follow the partition (never the file around
 * it), the cluster count is within the type's range for 512- and 4096-byte sectors, and the
 * count imprint predicts is the one mkfs.vfat lays out, read back from the boot sector. Around
 * the FAT32/FAT16 boundary too, where a wrong guess makes a FAT32 that mtools reads as FAT16. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "mkfs.h"
#include "run.h"
#include "size.h"
#include "tests.h"


static void test_choice(uint64_t size, uint32_t ss, unsigned bits, unsigned spc) {
        FatGeometry g;

        ASSERT_OK(fat_choose_geometry(size, ss, &g));
        if (g.bits != bits || g.sectors_per_cluster != spc)
                FAIL("%ju bytes, %u-byte sectors: FAT%u with %u sectors per cluster, expected FAT%u with %u", (uintmax_t) size,
                     ss, g.bits, g.sectors_per_cluster, bits, spc);
        if (bits == 32)
                ASSERT_TRUE(g.clusters >= 65525 && g.clusters <= 0x0FFFFFF5);
        else
                ASSERT_TRUE(g.clusters >= 4085 && g.clusters <= 65524);
}

static uint32_t le(const uint8_t *p, size_t n) {
        uint32_t v = 0;
        for (size_t i = n; i > 0; i--)
                v = v << 8 | p[i - 1];
        return v;
}

/* Makes a vfat at 1 MiB in a sparse file 64 GiB larger than the partition (as an ESP in a big
 * image file), checked by mkfs_make() with fsck.fat, and compares the boot sector's layout. */
static void test_mkfs_vfat(const char *dir, uint64_t size, uint32_t ss) {
        char path[256];
        uint8_t bs[512];
        FatGeometry g;
        int fd;

        snprintf(path, sizeof(path), "%s/imprint-test-mkfs.XXXXXX", dir);
        fd = mkstemp(path);
        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(ftruncate(fd, (off_t) (MiB + size + 64 * GiB)) == 0);

        ASSERT_OK(fat_choose_geometry(size, ss, &g));
        ASSERT_OK(mkfs_make("vfat",
                            &(MkfsTarget) { .file = path, .fd = fd, .offset = MiB, .size = size, .sector_size = ss },
                            "ESP", (sd_id128_t) { .bytes = { 1, 2, 3, 4 } }));

        ASSERT_OK(pread_full(fd, bs, sizeof(bs), MiB));
        {
                uint32_t bps = le(bs + 11, 2), spc = bs[13], reserved = le(bs + 14, 2), fats = bs[16],
                         root = le(bs + 17, 2), total = le(bs + 19, 2) ?: le(bs + 32, 4),
                         fat_len = le(bs + 22, 2) ?: le(bs + 36, 4);
                uint64_t data = total - reserved - fats * fat_len - DIV_ROUND_UP(root * 32, bps);

                ASSERT_EQ(bps, ss);
                ASSERT_EQ(spc, g.sectors_per_cluster);
                ASSERT_EQ(le(bs + 22, 2) == 0 ? 32 : 16, g.bits);
                ASSERT_EQ(le(bs + 28, 4), MiB / ss); /* hidden sectors: where the partition starts */
                ASSERT_TRUE((uint64_t) total * ss <= size);
                if (data / spc != g.clusters)
                        FAIL("%ju bytes, %u-byte sectors: mkfs.vfat made %ju clusters, imprint predicted %ju", (uintmax_t) size, ss,
                             (uintmax_t) (data / spc), (uintmax_t) g.clusters);
        }
        ASSERT_TRUE(unlink(path) == 0);
        close(fd);
}

int main(void) {
        const char *dir = getenv("TMPDIR") ?: "/var/tmp";
        FatGeometry g;

        /* Microsoft's FAT32 cluster sizes, by the partition's size. */
        test_choice(100 * MiB, 512, 32, 1);
        test_choice(512 * MiB, 512, 32, 8);
        test_choice(1 * GiB, 512, 32, 8);
        test_choice(12 * GiB, 512, 32, 16);
        test_choice(20 * GiB, 512, 32, 32);
        test_choice(100 * GiB, 512, 32, 64);
        /* With 4096-byte sectors a cluster is at least 4 KiB: FAT32 needs about 257 MiB. */
        test_choice(1 * GiB, 4096, 32, 1);
        test_choice(512 * MiB, 4096, 32, 1);
        test_choice(300 * MiB, 4096, 32, 1);
        test_choice(256 * MiB, 4096, 16, 1);
        test_choice(100 * MiB, 4096, 16, 1);
        /* Nothing below FAT16's minimum: imprint never makes FAT12. */
        ASSERT_EQ(fat_choose_geometry(1 * MiB, 512, &g), -ERANGE);
        ASSERT_EQ(fat_choose_geometry(1 * GiB, 1000, &g), -EINVAL);
        printf("ok: FAT type and cluster size follow the partition's size and sector size\n");

        if (!find_executable("mkfs.vfat") || !find_executable("fsck.fat")) {
                fprintf(stderr, "mkfs.vfat and fsck.fat are needed (dosfstools)\n");
                return EXIT_FAILURE;
        }
        /* Across the FAT16/FAT32 boundary for both sector sizes, and the sizes ESPs have. */
        for (uint64_t m = 250; m <= 275; m++)
                test_mkfs_vfat(dir, m * MiB, 4096);
        for (uint64_t m = 30; m <= 40; m++)
                test_mkfs_vfat(dir, m * MiB, 512);
        for (uint64_t m = 512; m <= 4096; m *= 2) {
                test_mkfs_vfat(dir, m * MiB, 512);
                test_mkfs_vfat(dir, m * MiB, 4096);
        }
        test_mkfs_vfat(dir, 20 * GiB, 512);
        printf("ok: mkfs.vfat lays out the clusters imprint predicts, and fsck.fat finds them clean\n");
        return EXIT_SUCCESS;
}
