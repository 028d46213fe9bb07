/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The systemd recovery key (docs/formats.md §3.6; systemd src/shared/recovery-key.[ch]): 32 random
 * bytes, each written as two modhex letters (high nibble first) from "cbdefghijklnrtuv", a '-'
 * after every 8 letters: 8 groups of 8, 71 characters. That exact lowercase dashed string is the
 * LUKS passphrase; systemd-cryptsetup does not normalize what is typed at boot, so everything that
 * hands a key on (to LUKS, to the screen, to a QR code) uses the canonical form.
 *
 * Every key, and everything derived from it (typed text, QR renderings), lives in a Secret. None
 * of these functions prints or logs. */

#include <stdbool.h>
#include <stddef.h>

#include "secret.h"

#define RECOVERY_KEY_BYTES 32
#define RECOVERY_KEY_GROUPS 8
#define RECOVERY_KEY_GROUP_LENGTH 8
#define RECOVERY_KEY_LENGTH 71 /* 8 groups of 8 modhex chars, 7 dashes */

/* 32 bytes from getrandom(), formatted as above. ret->data is the NUL-terminated 71-character
 * string, ret->size is 71. */
int recovery_key_generate(Secret **ret);

/* What a person typed, in canonical form: upper or lower case, dashes anywhere or nowhere, spaces
 * (and tabs, newlines) anywhere are accepted. -EINVAL with a message naming the problem: the
 * number of letters when it is not 64, or the first character outside the modhex alphabet with
 * its group and place (never the rest of the key). */
int recovery_key_normalize(const char *typed, Secret **ret);

/* Picks n distinct groups (1-based, 1..8) uniformly at random, sorted ascending, for the user to
 * type back from what they wrote down. 0 on success; -EINVAL if n is 0, above 8 or above max. */
int recovery_key_challenge(unsigned n, unsigned ret_groups[], size_t max);

/* The check a front end must pass before the user may continue: typed holds the letters of the
 * groups in groups[] (1-based, in that order), case-insensitive, spaces and dashes ignored. The
 * letters are compared in constant time (every group is compared in full; no early exit).
 * Returns 0 when all groups match. -EKEYREJECTED when they do not, with a message naming the
 * groups that differ (or the number of letters expected); -EINVAL for a malformed key or group
 * list. A mismatch is negative on purpose: "if (r < 0) show error_message()" cannot let it by. */
int recovery_key_check_groups(const Secret *key, const unsigned groups[], size_t n, const char *typed);

/* The key (its canonical string, 8-bit mode, level M, via libqrencode) as a QR code drawn in text
 * with a 4-module quiet zone, one line per text row, each line ending in '\n'.
 *   unicode: two module rows per line, with "\u2580" (upper half), "\u2584" (lower half),
 *            "\u2588" (full block) and ' ';
 *   ASCII:   one module row per line, two characters per module: "##" or "  ".
 * As systemd's qrcode-util does, the glyphs are the LIGHT modules (quiet zone included) and blanks
 * are the dark ones: on a console's light-on-dark text it reads as dark-on-light, as scanners
 * expect. A front end drawing on another background must use an explicit light-on-dark pair. In
 * the unicode form the lower half of the last line lies outside the symbol and is left blank.
 * Returned in a Secret (it encodes the key): ret->size is the text's length in bytes. */
int recovery_key_qr_text(const Secret *key, bool unicode, Secret **ret);

/* One sentence for the screen (English; the front end translates it) on why the key uses only
 * these letters. */
const char *recovery_key_explanation(void);

/* Opens dir, where an unattended install delivers the recovery key (encryption_escrow_recovery_key()),
 * as a directory fd (O_RDONLY). The path is resolved one component at a time, without the kernel
 * following symbolic links, and refused (-EPERM, with a sentence naming the component) when
 * someone other than root or the user running imprint could redirect or read into it:
 *   - a directory on the way that is owned by another user, or that group or others may write
 *     unless it is sticky (as /tmp and /var/tmp are: there, others cannot move what is not theirs);
 *   - a symbolic link on the way that is owned by another user;
 *   - the directory itself when owned by another user, or writable by group or others (even
 *     with the sticky bit).
 * A relative path is resolved from the working directory's absolute path, checked the same way.
 * -ENOENT, -ENOTDIR, -ELOOP (more than 32 links) as the kernel would say. */
int recovery_key_escrow_dir_open(const char *dir);
