/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Authenticode (src/engine/authenticode.c) on arbitrary bytes: the EFI binaries of a source image
 * and their signatures are files imprint did not build. The db is the input's own shim vendor
 * certificate when it has one (so that signature verification runs), the dbx a hash and that
 * certificate. The seeds are the fake shim of tests/unit/make-signed-efi.sh: unsigned, signed by
 * its own vendor key, by another key with a CA in the signature, and with both signatures. */
#include "authenticode.h"
#include "fuzz.h"
#include "macro.h"

static void sigdb_free(FirmwareSigDb *db) {
        for (size_t i = 0; i < db->n_certs; i++) {
                free(db->certs[i].subject);
                free(db->certs[i].common_name);
                free(db->certs[i].der);
        }
        free(db->certs);
        *db = (FirmwareSigDb) {};
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static uint8_t forbidden[1][32] = { { 0x42 } };
        FirmwareSigDb vendor = {}, empty = { .present = true }, dbx = { .present = true, .sha256 = forbidden, .n_sha256 = 1 };
        PeSignature s = {};
        uint8_t h[32];
        char *reason = NULL;

        fuzz_quiet();

        (void) authenticode_sha256(data, size, "fuzz", h);
        if (authenticode_read(data, size, "fuzz", &s) >= 0)
                pe_signature_done(&s);

        if (authenticode_shim_vendor_db(data, size, "fuzz", &vendor) > 0) {
                dbx.certs = vendor.certs;
                dbx.n_certs = vendor.n_certs;
        }
        if (authenticode_trusted(data, size, "fuzz", vendor.present ? &vendor : &empty, &dbx, &reason) >= 0)
                free(reason);
        reason = NULL;
        if (authenticode_trusted(data, size, "fuzz", &vendor, NULL, &reason) >= 0)
                free(reason);
        sigdb_free(&vendor);
        return 0;
}
