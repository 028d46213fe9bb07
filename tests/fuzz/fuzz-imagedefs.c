/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a usr image brings as text or bytes (src/engine/imagedefs.c, verity.c): its repart.d and
 * sysupdate.d files, the MatchPatterns in them, the verity superblock and the usr-verity-sig
 * JSON. Only the in-process part: the initrd's decompressors are programs, not fuzzed here. */
#include <string.h>

#include "fuzz.h"
#include "imagedefs.h"
#include "verity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ImageRepartDef d;
        ImageTransfer t;
        VeritySuperblock sb;
        char *text, *s = NULL, *rh = NULL;
        uint8_t *sig = NULL;
        size_t sig_size = 0;

        fuzz_quiet();
        text = fuzz_string(data, size);
        if (image_repart_def_parse("fuzz.conf", text, "1.2", &d) >= 0) {
                (void) image_defs_slot_size(&d, 1, d.role);
                image_repart_def_done(&d);
        }
        if (image_transfer_parse("fuzz.transfer", text, &t) >= 0) {
                for (char **p = t.match_patterns; p && *p; p++) {
                        if (image_pattern_instantiate(*p, "1.2", t.tries_left, t.tries_done, &s) >= 0)
                                free(s);
                }
                image_transfer_done(&t);
        }
        (void) image_defs_parse_type(text);
        if (verity_sig_parse(text, strlen(text), &rh, &sig, &sig_size) >= 0) {
                (void) verity_sig_check(rh, sig, sig_size, NULL);
                free(rh);
                free(sig);
        }
        free(text);
        if (verity_superblock_parse(data, size, &sb) >= 0 && size / 2 >= sb.hash_block_size) {
                /* The top block of the tree follows the superblock's block. */
                if (verity_root_hash(&sb, data + sb.hash_block_size, &s) >= 0)
                        free(s);
        }
        return 0;
}
