/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Factory reset of a disk imprint installed: discover → plan → execute, like an install.
 *
 * reset_probe() tells whether a disk can be reset: it must carry imprint's install record on its
 * ESP (record.h), and its partition table must still hold what the record says (ESP, root, home:
 * same partition numbers, places, sizes, types and PARTUUIDs; usr slots: same numbers, places,
 * sizes and types — systemd-sysupdate renames them and changes their UUIDs). Anything else is
 * refused with the reason, before anything is written.
 *
 * reset_plan() turns the record and a request into a Plan of mode PLAN_RESET (plan.h):
 *   - root: erase + ACTION_CREATE. usr images: a new empty root exactly as the image's repart.d
 *     says (read from the newest usr slot on the disk, the record's values when it cannot be
 *     read); classic images: the root is deployed again from img (the live medium's image; it
 *     must be the same OS as the record's, and fit the existing partition).
 *   - home: erase + ACTION_CREATE, or ACTION_REENROLL when req->keep_home.
 *   - ESP, XBOOTLDR, usr slots, vendor and foreign partitions: ACTION_KEEP, with the labels and
 *     UUIDs they have now.
 *   - encryption: as installed (the record's policy), with new volume keys, a new TPM2 enrollment
 *     and a new recovery key; new random LUKS UUIDs and filesystem UUIDs.
 *   - account: recreated from req->account, or left to the first boot (homed-firstboot when the
 *     image has it, else the image's own first-boot prompts); plan->reset->account_note says which.
 * executor_run() carries it out (executor.h). */

#include <stdbool.h>

#include "account.h"
#include "disk.h"
#include "image.h"
#include "plan.h"
#include "record.h"

typedef struct ResetRequest {
        const char *target;            /* the disk */
        ResetEntryPoint entry_point;
        bool keep_home;
        bool secure_erase;
        bool tpm_clear;
        const char *tpm2_tcti;         /* NULL: the kernel's resource manager */
        const AccountRequest *account; /* NULL or no user_name: the account is left to the first boot */
        const PlanSettings *settings;  /* NULL: none written */
} ResetRequest;

void reset_request_init(ResetRequest *r);

/* What a disk is to a reset. */
typedef struct ResetTarget {
        InstallRecord *record;         /* NULL when refused for want of one */
        char *refusal;                 /* NULL: it can be reset; else the sentence why not */
        PlanSourceKind kind;           /* usr or root (classic) */
        char *os_name;                 /* PRETTY_NAME of the installed image */
        char *image_version;           /* newest installed version (usr slot label), or the record's */
        bool encrypted;
        bool has_home;
        bool interrupted;              /* the newest audit record says "running": a reset was cut off */
        char *last_reset;              /* record_reset_summary() of the newest audit record, or NULL */
} ResetTarget;

ResetTarget *reset_target_free(ResetTarget *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(ResetTarget *, reset_target_free);

/* Reads d's install record and compares it with d. Returns 1 when d can be reset, 0 when it
 * cannot (ret->refusal says why: no ESP, no install record, a layout that changed), < 0 on errors.
 * d must have been discovered with its partitions. */
int reset_probe(const Disk *d, ResetTarget **ret);

/* Builds the reset plan (see above). img: classic images, the image to deploy root from (NULL:
 * refused for a classic image with a sentence saying to start the reset from the live medium);
 * ignored for usr images. Fails with a sentence (and nothing written) when the disk cannot be reset,
 * the request contradicts the record (keep_home without a home partition), or img does not fit. */
int reset_plan(const Disk *d, const ResetRequest *req, const Image *img, Plan **ret);

/* The disk this system was booted from (the ESP partition firmware reported in
 * LoaderDevicePartUUID), for the recovery entry: it resets the disk it was started from. -ENXIO
 * with a sentence when that is unknown. */
int reset_boot_disk(const DiskList *l, const Disk **ret);
