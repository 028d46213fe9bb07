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

/* Refuses (-EPERM with a sentence naming the machine and the allowlist) a machine that no entry of
 * c->machines matches; 0 when c has no allowlist or the machine matches. The warning is also shown
 * on the console. */
int machine_check_allowed(const InstallConfig *c, const DmiInfo *d);

/* Counts down c->countdown_sec seconds on the console, naming what is about to be written
 * (target), before anything is written. Returns 0 to go on, -ECANCELED (with a sentence) when a
 * key was pressed. 0 seconds, or no console: returns at once. */
int machine_countdown(const InstallConfig *c, const char *target);
