/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by the fuzz targets: each defines LLVMFuzzerTestOneInput(). Built with -fsanitize=fuzzer
 * under clang (meson -Dfuzz=true), or linked with driver.c, which feeds every file of a seed
 * corpus to it once, so the corpora run as regression tests in the normal build. */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The engine logs to stderr by default; a fuzzer that prints per input is slow and noisy. */
static inline void fuzz_quiet(void) {
        static int done;

        if (!done) {
                log_set_max_level(-1);
                done = 1;
        }
}

/* The input as a NUL-terminated string (it may hold NULs of its own). Caller frees. */
static inline char *fuzz_string(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);

        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = 0;
        return s;
}

/* The input as a file the parser can open by path: one anonymous memory file per process,
 * rewritten for every input, reached as /proc/self/fd/N (a regular file to stat()). Nothing is
 * left behind when a fuzzer is killed. Returns the path (static) or aborts. */
static inline const char *fuzz_file(const uint8_t *data, size_t size) {
        static int fd = -1;
        static char path[64];

        if (fd < 0) {
                fd = memfd_create("imprint-fuzz", MFD_CLOEXEC);
                if (fd < 0)
                        abort();
                snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        }
        if (ftruncate(fd, 0) < 0)
                abort();
        for (size_t done = 0; done < size;) {
                ssize_t k = pwrite(fd, data + done, size - done, (off_t) done);
                if (k <= 0)
                        abort();
                done += (size_t) k;
        }
        return path;
}
