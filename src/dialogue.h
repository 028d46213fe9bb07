/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "session.h"
#include "plan.h"
#include "secret.h"

/* Shows the recovery key of plan p (text, QR code, why it uses these letters) on out and has two
 * of its groups, picked at random, typed back on in (recovery_key_check_groups()). A mismatch
 * names the wrong groups and asks again; the key is shown again every third attempt. Returns 1
 * when they match (the screen is then cleared, if out is a terminal), 0 when the person typed "q"
 * or input ended, < 0 on errors. The key reaches out with write(2), never through stdio buffers. */
int recovery_key_dialogue(const Plan *p, const Secret *key, FILE *in, FILE *out);

/* Asks for a new secret twice (echo off on a terminal; a line from stdin otherwise) and, when
 * check_quality is set, checks it with libpwquality, printing its score or why it is refused.
 * Five attempts. -ECANCELED at end of input. */
int ask_secret(const char *prompt, bool check_quality, Secret **ret);

/* A progress event as a line on stdout: "[3/9] Copying root … 1.2G of 4.0G (30%), 80M/s, 0:37 left",
 * redrawn in place on a terminal, one line per step otherwise (a log or a pipe). */
void progress_print_text(const ProgressEvent *ev);

/* The password of the session's planned account, asked on the terminal (twice, echo off) until the
 * session takes it (libpwquality, unless allow_weak). -ECANCELED at end of input. */
int ask_user_password(Session *s, bool allow_weak);

/* ---- factory reset: what a reset plan does, for every front end --------------------------- */

/* What the reset plan p does to its partition i, for people: "kept as it is", "ERASED by
 * crypto-erase (…), then a new empty ext4 file system, encrypted with new keys", "kept with its
 * data, re-enrolled: …". The erase method is what erase_probe() expects from the device now (the
 * result says what was actually done). */
int reset_partition_fate(const Plan *p, size_t i, char *buf, size_t size);
/* The whole reset plan: the disk, what was installed, one line per partition (reset_partition_fate()),
 * the account, the new keys; each line prefixed with indent. */
void reset_plan_print(const Plan *p, FILE *out);
/* The same for machines: {"target", "entryPoint", "keepHome", "secureErase", "tpmClear",
 * "partitions": [{"partno", "role", "label", "size", "action": "erase"|"keep"|"reenroll",
 * "method", "recreate": "empty"|"image"|null, "encrypted"}], "account", "plan": plan_to_json()}. */
json_object *reset_plan_to_json(const Plan *p);
/* For a reset that keeps an encrypted home: the disk's current recovery key, typed once (echo off
 * on a terminal), to unlock home when the TPM cannot. Enter skips it (0); 1 when it was set;
 * -ECANCELED at end of input. */
int ask_old_recovery_key(Session *s);
/* Where a reset started here starts from: the recovery entry (imprint.recovery=1 on the kernel
 * command line) or the live medium. */
ResetEntryPoint reset_entry_point_here(void);
/* A firmware reset request (systemd's FactoryResetRequest) that this reset honours, described for
 * people in *ret; 0 and NULL when there is none (or no EFI). */
int reset_request_here(char **ret);
/* One line for a disk in a list of reset targets: its OS and version, or why it cannot be reset,
 * and its last reset. */
void reset_target_describe(const ResetTarget *t, char *buf, size_t size);
