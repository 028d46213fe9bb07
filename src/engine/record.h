/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What imprint leaves on the ESP of a disk it installed, in the directory /imprint (FAT, written
 * with mtools like everything else there; never a secret in any of it):
 *
 *   /imprint/install.json          the install record, written by the install's boot step:
 *                                  {"formatVersion":1, "imprintVersion":…, "installedAt":"…Z",
 *                                   "plan": <plan_to_json() of the plan that was installed>}
 *                                  A reset finds what it resets from it (reset.h); a disk without
 *                                  it was not installed by imprint and is never reset.
 *   /imprint/reset-YYYYMMDDTHHMMSSZ.json
 *                                  one audit record per reset (UTC start time in the name),
 *                                  written at its start with "status":"running" and rewritten at
 *                                  its end ("complete" or "failed"): when, which entry point, the
 *                                  image version, per partition what was erased, kept or
 *                                  re-enrolled and by which method, the new LUKS UUIDs, how long
 *                                  each step took. The newest one is what `imprint disks` shows.
 *
 * A reset rewrites install.json (the new LUKS UUIDs) at its end, so the record always describes
 * the disk as it is. */

#include <json-c/json.h>

#include "fsread.h"
#include "plan.h"

#define RECORD_DIR "/imprint"
#define RECORD_INSTALL_PATH "/imprint/install.json"
#define RECORD_FORMAT_VERSION 1

typedef struct InstallRecord {
        unsigned format_version;
        char *imprint_version;
        char *installed_at;       /* RFC 3339, UTC */
        Plan *plan;               /* the plan as installed (target and fingerprint as they were then) */
} InstallRecord;

InstallRecord *install_record_free(InstallRecord *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(InstallRecord *, install_record_free);

/* Writes /imprint/install.json for plan p onto the ESP at esp (creates /imprint). */
int record_install_write(const Plan *p, const FsLocation *esp);
/* Rewrites /imprint/install.json from r as it is (its installedAt and imprintVersion too): the end
 * of a reset, with the new LUKS UUIDs in r->plan. */
int record_install_update(const InstallRecord *r, const FsLocation *esp);
/* Reads it back. -ENOENT (no sentence) when there is none; -EBADMSG with a sentence when it is not
 * a record this imprint understands. */
int record_install_read(const FsLocation *esp, InstallRecord **ret);

/* The file name of a new audit record for a reset that starts now: "reset-20261203T101500Z.json". */
int record_reset_name(char **ret);
/* Writes (or replaces) /imprint/<name> with audit. */
int record_reset_write(const FsLocation *esp, const char *name, json_object *audit);
/* The newest audit record on the ESP (by name), -ENOENT when there is none. */
int record_reset_last(const FsLocation *esp, json_object **ret, char **ret_name);
/* One line for people about an audit record: "reset on 2026-12-03 10:15 UTC from the boot menu:
 * root and home crypto-erased (complete)" / "… interrupted: resume it from the recovery entry". */
int record_reset_summary(json_object *audit, char **ret);
