/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One check for each value a person gives imprint, whichever way it arrives: a command-line
 * option, a plan file, an install configuration (file, credential, kernel command line), the
 * full-screen installer or the dialogue. Every loader calls the same function for the same
 * field, so a value refused as --locale is refused as "locale" in a plan file too. Each returns 0,
 * or -EINVAL with one sentence (error_message()) that quotes the value. These values end up in
 * files of the installed system (/etc/locale.conf, /etc/vconsole.conf, /etc/passwd, credential
 * file names, unit text) and in command lines, so no check lets a control character through. */

#include <stdbool.h>

#include "plan.h"

/* [a-z_][a-z0-9_-]*, at most 31 characters, not a system account's name: what useradd and
 * systemd-homed both accept. */
int validate_user_name(const char *name);
bool user_name_is_valid(const char *name);

/* The GECOS field: no ':' (the /etc/passwd separator) and no control characters, at most 256 bytes. */
int validate_real_name(const char *name);

/* RFC 1123 labels: letters, digits, inner dashes, dot-separated, at most 64 characters. */
int validate_hostname(const char *hostname);

/* Names such as Europe/Berlin, de_DE.UTF-8, de-latin1: letters, digits and a few punctuation
 * characters each, no "..", no leading '/' or '-', at most 128 characters. */
int validate_timezone(const char *timezone);
int validate_locale(const char *locale);
int validate_keymap(const char *keymap);

/* The fields of s that are set, in the order above. */
int settings_validate(const PlanSettings *s);

/* A GPT partition name: at most 36 UTF-16 code units, no control characters. */
int validate_partition_label(const char *label);

/* --seed / "seed": not empty, no control characters. */
int validate_seed(const char *seed);

/* A TPM2 TCTI imprint may load: device:, swtpm: or mssim: (tpm2_tcti_is_safe()). */
int validate_tpm2_tcti(const char *tcti);
