/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The systemd-tpm2 token JSON (tpm2_token_parse() in src/engine/tpm2.c): read back from a LUKS2
 * header on a disk for the factory reset, so written by whoever had that disk. What parses must
 * survive the round trip through tpm2_token_json(). */
#include <json-c/json.h>

#include "fuzz.h"
#include "tpm2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_tokener *tok;
        json_object *j;
        Tpm2Sealed s = {};
        int slot;

        fuzz_quiet();
        tok = json_tokener_new();
        if (!tok)
                abort();
        j = json_tokener_parse_ex(tok, (const char *) data, (int) (size > 1 << 20 ? 1 << 20 : size));
        json_tokener_free(tok);
        if (!j)
                return 0;

        slot = tpm2_token_parse(j, &s);
        json_object_put(j);
        if (slot < 0)
                return 0;

        j = tpm2_token_json(&s, slot);
        if (j) {
                Tpm2Sealed again = {};

                /* What was read can be written again, and that reads back. */
                if (tpm2_token_parse(j, &again) != slot)
                        abort();
                tpm2_sealed_done(&again);
                json_object_put(j);
        }
        free(tpm2_pcr_mask_to_string(s.pcr_mask));
        tpm2_sealed_done(&s);
        return 0;
}
