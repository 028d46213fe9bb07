/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Which machine, which disk: an OEM line's allowlist of machine models (DMI, dmi.h) and its rules
 * for the target disk (config.h: "machines", "target" as an object, "countdownSeconds"). */

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "disk.h"
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

TargetRule *target_rule_free(TargetRule *r);

/* Whether the machine d matches every field entry m gives (fnmatch(3), case-sensitive; a field the
 * firmware left out matches only a glob that matches the empty string, such as "*"). */
bool machine_rule_matches(const MachineRule *m, const DmiInfo *d);

/* Refuses (-EPERM with a sentence naming the machine and the allowlist) a machine that no entry of
 * c->machines matches; 0 when c has no allowlist or the machine matches. The warning is also shown
 * on the console. */
int machine_check_allowed(const InstallConfig *c, const DmiInfo *d);

/* Why disk d fails rule, as text such as "transport sata (not nvme), 8.0 GiB (below minSize
 * 100 GiB)"; NULL in *ret_reason when it meets every rule. by_path: the disk's /dev/disk/by-path
 * links (NULL-terminated), or NULL for none. Whether the disk can be a target at all is not
 * looked at here (target_rule_resolve() does). */
int target_rule_check_disk(const TargetRule *rule, const Disk *d, char *const *by_path, char **ret_reason);

/* The one disk of l that meets rule and can be a target: its device node in *ret. Several: -EBUSY
 * naming each (path, model, size, transport). None: -ENOENT naming each disk and why it failed.
 * Loop devices never count, but in tests (target_allow_loop()).
 * origin names the configuration in the sentences. */
int target_rule_resolve(const TargetRule *rule, const DiskList *l, const char *origin, char **ret);

/* "target" as rules: sets c->target to the one disk on this machine that meets c->target_rule
 * (target_rule_resolve()). While none matches, looks again each second for
 * c->wait_for_target_sec ("waitForTargetSeconds"): disks appear a moment after boot. */
int machine_resolve_target(InstallConfig *c);

/* The rule in words, for the log: "transport nvme, 100 GiB to 2.0 TiB, solid state". */
char *target_rule_describe(const TargetRule *rule);

/* Whether the loop device d may be a target ("auto" and rules): never on a line, only in tests,
 * with IMPRINT_TARGET_ALLOW_LOOP=1 (any loop device) or IMPRINT_TARGET_ALLOW_LOOP=/dev/loop3:/dev/loop4
 * (only these: tests running side by side never pick each other's). False for other disks. */
bool target_allow_loop(const Disk *d);

/* The countdown's length: c->countdown_sec, or when the configuration gives none, 10 seconds when
 * someone may be watching (stdin and stderr are terminals) and 0 otherwise (a service on a line). */
int machine_countdown_seconds(const InstallConfig *c);

/* Counts down c->countdown_sec seconds on the console, naming what is about to be written
 * (target), before anything is written. Returns 0 to go on, -ECANCELED (with a sentence) when a
 * key was pressed. 0 seconds, or no console: returns at once. */
int machine_countdown(const InstallConfig *c, const char *target);
