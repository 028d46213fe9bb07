/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The kernel command line parser (cmdline_get_key() in src/basic/proc-cmdline.c). The input is
 * the command line; when it holds a NUL, the part before it is the key looked up, else the keys
 * imprint reads. */
#include <string.h>

#include "fuzz.h"
#include "proc-cmdline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const keys[] = { "imprint.config", "imprint.frontend", "imprint.frontend.ttyS0", "root", "a" };
        const uint8_t *nul = memchr(data, 0, size);
        char *value = NULL;

        fuzz_quiet();
        if (nul) {
                char *key = fuzz_string(data, (size_t) (nul - data));
                char *line = fuzz_string(nul + 1, size - (size_t) (nul - data) - 1);

                if (cmdline_get_key(line, key, &value) > 0)
                        free(value);
                free(key);
                free(line);
                return 0;
        }

        char *line = fuzz_string(data, size);
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                value = NULL;
                if (cmdline_get_key(line, keys[i], &value) > 0)
                        free(value);
        }
        free(line);
        return 0;
}
