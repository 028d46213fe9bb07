/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Secure Boot signature list reader (src/engine/firmware.c) on arbitrary bytes: PK, KEK, db and
 * dbx come from firmware, and the .auth files systemd-boot enrolls from an image imprint did not
 * build. The input is read as a signature database and as an authenticated variable; what parses
 * goes through the sentence and the JSON the plan shows. */
#include "firmware.h"
#include "fuzz.h"
#include "macro.h"

static void use(const FirmwareSigDb *db) {
        FirmwareState s = { .mode = FIRMWARE_USER_ON, .db = *db, .dbx = *db };
        json_object *j;
        char *d;

        d = firmware_state_describe(&s);
        free(d);
        j = firmware_state_to_json(&s);
        json_object_put(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        FirmwareSigDb db = {};
        size_t off;

        fuzz_quiet();

        if (firmware_sigdb_parse(data, size, "fuzz", &db) >= 0) {
                use(&db);
                firmware_sigdb_done(&db);
        }

        if (firmware_auth_payload(data, size, "fuzz", &off) >= 0 &&
            firmware_sigdb_parse(data + off, size - off, "fuzz", &db) >= 0) {
                use(&db);
                firmware_sigdb_done(&db);
        }
        return 0;
}
