/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The executor: the only code that writes to a disk. It walks a plan's ordered steps, reports
 * progress through one callback and asks for confirmation through another. */

#include <stdbool.h>
#include <stdint.h>

#include "plan.h"
#include "secret.h"

typedef enum ProgressEventType {
        PROGRESS_PLANNED, /* once per step, in order, right before the first one begins: the list */
        PROGRESS_BEGIN,   /* a step starts */
        PROGRESS_UPDATE,  /* bytes moved within a step */
        PROGRESS_END,     /* a step finished */
        PROGRESS_FAILED,  /* a step failed; message holds the reason */
        _PROGRESS_EVENT_TYPE_MAX,
        _PROGRESS_EVENT_TYPE_INVALID = -EINVAL,
} ProgressEventType;

DECLARE_STRING_TABLE_LOOKUP(progress_event_type, ProgressEventType);

typedef struct ProgressEvent {
        ProgressEventType type;
        unsigned step;            /* 1-based index */
        unsigned n_steps;
        const char *id;           /* stable, machine-readable: "partition", "format-esp", … */
        const char *description;  /* for people */
        uint64_t done, total;     /* bytes (or 0/1 for steps without a size) */
        uint64_t rate;            /* bytes per second, 0 when unknown */
        int64_t eta_usec;         /* -1 when unknown */
        uint64_t elapsed_usec;    /* since the step began */
        uint64_t cpu_usec;        /* CPU time (user + system) since the step began: this process's
                                   * threads and the tools it ran and waited for */
        const char *message;      /* PROGRESS_FAILED: the error message */
} ProgressEvent;

typedef struct ExecCallbacks {
        void (*progress)(const ProgressEvent *ev, void *userdata);
        /* Called after every pre-flight check passed and before the first write. Return > 0 to
         * go on, 0 to stop with nothing written (-ECANCELED), < 0 for an error. */
        int (*confirm)(const Plan *p, void *userdata);
        /* For an encrypted plan, after confirm and before the first write: hand the recovery key
         * to a person (show it, and check with recovery_key_check_groups() that part of it was
         * typed back) or deliver it (escrow). Return > 0 when it is in safe hands, 0 to stop with
         * nothing written, < 0 for an error. The key must not be kept, logged or printed to a
         * log. */
        int (*recovery_key)(const Plan *p, const Secret *key, void *userdata);
        /* A plan whose image is streamed (stream.h), right after the stream step: the image's big
         * partition landed on disk at offset (the target, or its dm-crypt volume at 0). Finish the
         * image there (image_stream_complete()) and bring the plan up to date in place
         * (plan_update_streamed()); < 0 stops the install, nothing is made bootable. Required for
         * such plans. */
        int (*image_streamed)(const char *disk, uint64_t offset, void *userdata);
        void *userdata;
} ExecCallbacks;

typedef struct Image Image;

typedef struct ExecOptions {
        bool no_variables;        /* never write EFI variables */
        const char *efivars_root; /* tests: a directory standing in for efivarfs */
        const Secret *passphrase; /* for a plan with a passphrase keyslot */
        const Secret *tpm2_pin;   /* for a plan whose TPM2 policy has a PIN */
        const Secret *user_password; /* for a plan that creates an account */
        const Secret *old_recovery_key; /* reset with home kept: unlocks home when its TPM2 token cannot */
} ExecOptions;

/* Checks the target (still the disk that was planned, not in use) and, for a plan with an image,
 * the image (unchanged, matching its checksum), asks for confirmation, then writes the partition
 * table, makes the kernel see it, creates the planned filesystems, copies and verifies the
 * image's partitions and makes the disk bootable — in that order, so that a failure at any step
 * leaves a disk that does not boot half an install. img must be the plan's image, opened with
 * image_open() and image_load_boot(), or NULL for a plan without one. */
int executor_run(const Plan *p, Image *img, const ExecOptions *o, const ExecCallbacks *cb);

/* A plan of mode PLAN_RESET runs through executor_run() too, with the same callbacks (confirm:
 * type the disk's name; recovery_key: hand over the NEW key). Its steps, in order:
 *   reset-begin      the audit record on the ESP (status "running"), the recovery entry made the
 *                    boot default until the end (recovery_redirect_boot()), and root/home named
 *                    DISK_INCOMPLETE_LABEL: from here an interrupted reset is never booted as an
 *                    intact system, and the recovery entry resumes it;
 *   erase-ROLE       erase_partition() for every partition with erase set;
 *   reenroll-home    keep home: new recovery key + TPM2, every old keyslot and token removed;
 *   encrypt-ROLE, format-ROLE, copy-ROLE/verify-ROLE (classic images), configure, close-encrypted
 *                    as for an install;
 *   sync, reset-end  audit record "complete" with each step's time, boot default restored,
 *                    firmware reset request cleared, TPM clear requested when asked;
 *   finish           the partitions' names back.
 * The partition table, the ESP's other files, usr slots and vendor partitions are not written. */
