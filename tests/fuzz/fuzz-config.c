/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The unattended configuration (install_config_merge_file() in src/engine/config.c): a file, a
 * systemd credential or imprint.config=PATH, often handed over by an OEM line's tooling. Merged
 * twice, as defaults and then an install configuration are. */
#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        InstallConfig c;
        const char *path;

        fuzz_quiet();
        path = fuzz_file(data, size);
        install_config_init(&c);
        if (install_config_merge_file(&c, path) >= 0)
                (void) install_config_merge_file(&c, path);
        install_config_done(&c);
        return 0;
}
