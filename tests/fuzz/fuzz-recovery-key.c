/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The recovery key reader (recovery_key_normalize() and recovery_key_check_groups() in
 * src/engine/recovery.c): what a person types back, or an escrowed key file read by tooling. */
#include "fuzz.h"
#include "recovery.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const unsigned groups[] = { 2, 7 };
        Secret *key = NULL;
        char *typed;

        fuzz_quiet();
        typed = fuzz_string(data, size);
        if (recovery_key_normalize(typed, &key) >= 0) {
                Secret *again = NULL;

                /* The canonical form is a fixed point, and its groups check against it. */
                if (recovery_key_normalize((const char *) key->data, &again) < 0 ||
                    again->size != key->size || memcmp(again->data, key->data, key->size) != 0)
                        abort();
                secret_free(again);
                (void) recovery_key_check_groups(key, groups, 2, typed);
                secret_free(key);
        }
        free(typed);
        return 0;
}
