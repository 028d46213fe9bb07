/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The engine returns negative errno values. Beside the number it records one sentence for the
 * person at the screen: what failed, on which disk or file, and why. The front end prints it.
 * The message lives in thread-local storage, so the engine never prints by itself. */

#include "macro.h"

/* Record a message for error r (negative errno) and return r, for "return error_setf(...)". */
int error_setf(int r, const char *fmt, ...) _printf_(2, 3);

/* The message recorded for the last failure, or NULL. */
const char *error_message(void);

void error_clear(void);

/* Prefix the current message with more context ("Cannot plan /dev/sdb: <old message>"). */
int error_prefixf(int r, const char *fmt, ...) _printf_(2, 3);
