/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Which machine, which disk: an OEM line's allowlist of machine models (DMI, dmi.h) and its rules
 * for the target disk (config.h: "machines", "target" as an object, "countdownSeconds"). */

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "dmi.h"

typedef struct MachineRule {
        char *vendor, *product, *sku, *board;  /* fnmatch(3) globs; NULL: any */
} MachineRule;

typedef struct TargetRule {
        char *by_id, *by_path;       /* globs on the names in /dev/disk/by-id, /dev/disk/by-path */
        uint64_t min_size, max_size; /* bytes; 0: no bound */
        char **transports;           /* "nvme", "sata", "usb", "virtio", …; NULL: any */
        int rotational;              /* -1 any, 0 solid state, 1 rotational */
} TargetRule;
