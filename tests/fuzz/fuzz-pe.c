/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The PE/UKI reader (src/engine/pe.c) on arbitrary bytes: the UKIs and systemd-boot of a source
 * image and of an existing ESP are files imprint did not build. */
#include "fuzz.h"
#include "macro.h"
#include "pe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        PeFile pe = {};
        UkiInfo uki = {};
        char *stamp = NULL;

        fuzz_quiet();

        if (pe_parse(data, size, "fuzz", &pe) >= 0) {
                for (size_t i = 0; i < pe.n_sections; i++) {
                        const uint8_t *view;
                        size_t n;
                        char *text = NULL;

                        (void) pe_section_view(data, size, &pe.sections[i], &view, &n);
                        if (pe_section_data(data, size, &pe.sections[i], &text, &n) >= 0)
                                free(text);
                        (void) pe_find_section(&pe, pe.sections[i].name);
                }
                (void) pe_machine_efi_arch(pe.machine);
                pe_file_done(&pe);
        }

        if (uki_read(data, size, "fuzz", &uki) >= 0)
                uki_info_done(&uki);

        if (efi_binary_loader_info(data, size, "fuzz", &stamp) >= 0)
                free(stamp);
        return 0;
}
