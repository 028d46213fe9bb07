/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The expected digest of a source image (image_find_checksum() in src/engine/image.c): read from
 * "<image>.sha256" or SHA256SUMS beside the image, files that come with a download. The first
 * byte of the input picks which file the rest becomes. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "image.h"

static char dir[64], side[96], sums[96];

static void cleanup(void) {
        (void) unlink(side);
        (void) unlink(sums);
        (void) rmdir(dir);
}

static void put(const char *path, const uint8_t *data, size_t size) {
        FILE *f = fopen(path, "we");

        if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char path[96];
        Image img = {};

        fuzz_quiet();
        if (size < 1)
                return 0;
        if (!dir[0]) {
                snprintf(dir, sizeof(dir), "%s/imprint-fuzz.XXXXXX", getenv("TMPDIR") ?: "/tmp");
                if (!mkdtemp(dir))
                        abort();
                snprintf(side, sizeof(side), "%s/os.img.sha256", dir);
                snprintf(sums, sizeof(sums), "%s/SHA256SUMS", dir);
                atexit(cleanup);
        }
        (void) unlink(side);
        (void) unlink(sums);
        put((data[0] & 1) ? side : sums, data + 1, size - 1);

        snprintf(path, sizeof(path), "%s/os.img", dir);
        img.path = path;
        if (image_find_checksum(&img) > 0) {
                /* A digest found is 64 lowercase hex digits. */
                if (!img.sha256 || strlen(img.sha256) != 64 || strspn(img.sha256, "0123456789abcdef") != 64)
                        abort();
        }
        free(img.sha256);
        free(img.sha256_origin);
        return 0;
}
