/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* os-release parsing (env_file_get() in src/basic/fileio.c): the text comes from the image's root,
 * a UKI's .osrel section, or an installed system on a disk being listed. */
#include "fileio.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const keys[] = {
                "PRETTY_NAME", "NAME", "ID", "VERSION", "VERSION_ID", "IMAGE_ID", "IMAGE_VERSION", "BUILD_ID", "",
        };
        char *text;

        fuzz_quiet();
        text = fuzz_string(data, size);
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                free(env_file_get(text, keys[i]));
        free(text);
        return 0;
}
