/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The engine returns negative errno values. Beside the number it records one sentence for the
 * person at the screen: what failed, on which disk or file, and why. The front end prints it.
 * The message lives in thread-local storage, so the engine never prints by itself; it is kept
 * together with the errno it explains (error_message_for()). */

#include "macro.h"

/* Record a message for error r (negative errno) and return r, for "return error_setf(...)". */
int error_setf(int r, const char *fmt, ...) _printf_(2, 3);

/* The message recorded for the last failure, or NULL. */
const char *error_message(void);

/* The message recorded for the failure r, or NULL when the last message was recorded for another
 * error (a sentence left over from an earlier, unrelated failure is never returned for r). */
const char *error_message_for(int r);

/* The error the last message was recorded for (0: none). */
int error_code(void);

void error_clear(void);

/* Prefix the current message with more context ("Cannot plan /dev/sdb: <old message>"). */
int error_prefixf(int r, const char *fmt, ...) _printf_(2, 3);
