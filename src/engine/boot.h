/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Making the target bootable: systemd-boot and the image's UKIs on the ESP (or XBOOTLDR), the
 * loader configuration, a random seed, and the firmware boot entry — what `bootctl install` and
 * kernel-install would do, written with mtools so it works on image files without mounting. */

#include <stdbool.h>

#include "image.h"
#include "plan.h"

typedef struct BootOptions {
        bool no_variables;        /* do not touch EFI variables even when it would be possible */
        unsigned timeout_sec;     /* loader.conf timeout */
        const char *efivars_root; /* for tests; NULL: the real efivarfs */
} BootOptions;

typedef struct BootResult {
        char *default_entry;      /* the loader.conf "default" pattern */
        int boot_entry;           /* Boot#### written, or -1 */
        char *note;               /* why no EFI variable was written, for the user */
} BootResult;

void boot_result_done(BootResult *r);

/* esp_node/boot_node: partition nodes on block devices, NULL for image files. */
int boot_install(const Plan *p, const Image *img, const char *esp_node, const char *boot_node, const BootOptions *o,
                 BootResult *ret);
