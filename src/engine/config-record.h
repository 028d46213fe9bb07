/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Record and replay (issue 16, part 6). After an attended install (the full-screen installer or
 * --plain, with --record FILE), the configuration for `imprint unattended` that repeats it:
 *
 *   - what was asked: the source, the target, the mode and the sizes as they were typed ("rest"
 *     stays "rest", a size left to the default is left out), the root label and seed when given;
 *   - what was decided: encryption and the TPM as the plan has them ("tpm2": "required" when the
 *     TPM was enrolled, else "off"; the PCRs, the signed PCR 11 policy, PIN and passphrase), the
 *     account as the plan made it ("classic": true when it was a classic one), the settings;
 *   - never a secret. The secrets the replay needs are named in "credentials" instead
 *     (imprint.user-password, imprint.passphrase, imprint.tpm2-pin): a replay refuses before
 *     writing when one of them is not given (install_config_check_credentials()).
 *   - no "recoveryKeyEscrow": the attended install showed its recovery key to a person; where a
 *     line's keys go is the line's decision (a directory, a certificate), so an encrypting record
 *     is refused by `imprint unattended` until one is added, with the sentence that says so.
 *
 * The target is the disk's /dev/disk/by-id name when it has one (stable across boots, and naming
 * this very disk: a line edits it into a rule or "auto"), else its path (an image file: absolute). */

#include <json-c/json.h>

#include "config.h"
#include "disk.h"
#include "plan.h"

/* The configuration that repeats plan p, installed to target (the disk it was planned for, may be
 * NULL: the plan's path), as layout asked for it, from source as the person named it (NULL: the
 * plan's image path; "self" stays "self"). */
int config_record_build(const Plan *p, const Disk *target, const PlanOptions *layout, const char *source, json_object **ret);

/* config_record_build(), written to path: pretty JSON, mode 0600, atomically (a temporary file
 * in the same directory, flushed, renamed over path). -errno with a sentence naming path. */
int config_record_write(const Plan *p, const Disk *target, const PlanOptions *layout, const char *source, const char *path);

/* Whether path can take a record (its directory exists and is writable, it is not a directory or
 * a device): checked when --record is given, so that a long install does not end unrecorded for a
 * typo. -errno with a sentence. */
int config_record_check_path(const char *path);

/* The sentence a front end shows after writing the record to path: where it is, and what a replay
 * of p needs that the record cannot hold (the escrow, the credentials). Translated; NULL: -ENOMEM. */
char *config_record_note(const Plan *p, const char *path);

/* The name a record gives target: its preferred /dev/disk/by-id link, else its path. */
const char *config_record_target_name(const Disk *target);

/* Whether name is a credential a configuration may list in "credentials". */
bool config_credential_is_known(const char *name);

/* Every credential c lists in "credentials" must be given ($CREDENTIALS_DIRECTORY/<name>, as
 * systemd passes credentials: LoadCredential=, ImportCredential=, systemd-creds). -EINVAL with
 * a sentence naming the first one missing; call it before anything is written. */
int install_config_check_credentials(const InstallConfig *c);
