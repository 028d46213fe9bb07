/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The credential reader (secret_read_file() and secret_read_credential() in src/basic/secret.c):
 * the password, PIN and passphrase credentials of an unattended install, and what they are then
 * used as. */
#include <stdio.h>
#include <string.h>

#include "encrypt.h"
#include "fuzz.h"
#include "recovery.h"
#include "secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char dir[64];
        Secret *s = NULL;
        const char *path;

        fuzz_quiet();
        path = fuzz_file(data, size);
        if (secret_read_file(path, 512, &s) >= 0) {
                Secret *key = NULL;
                uint32_t mask;

                if (strlen((const char *) s->data) != s->size)
                        abort();
                if (recovery_key_normalize((const char *) s->data, &key) >= 0)
                        secret_free(key);
                (void) pcr_mask_parse((const char *) s->data, &mask);
                secret_free(s);
        }

        /* Through $CREDENTIALS_DIRECTORY, as systemd hands them over. */
        if (!dir[0]) {
                char *slash;

                snprintf(dir, sizeof(dir), "%s", path);
                slash = strrchr(dir, '/');
                *slash = 0;
                setenv("CREDENTIALS_DIRECTORY", dir, 1);
        }
        if (secret_read_credential(strrchr(path, '/') + 1, 64, &s) >= 0)
                secret_free(s);
        return 0;
}
