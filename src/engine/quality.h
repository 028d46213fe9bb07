/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Password and passphrase quality through libpwquality, with its settings from
 * /etc/security/pwquality.conf (and .d), as passwd and homectl use it.
 *
 * libpwquality's dictionary check asks cracklib, which refuses every password ("error loading
 * dictionary", the same PWQ_ERROR_CRACKLIB_CHECK as for a dictionary word) when its dictionary
 * cannot be loaded, as on a system without cracklib-runtime. imprint tells the two apart by asking
 * cracklib once about a password no dictionary can hold: when cracklib refuses that too, the
 * dictionary is unusable, and passwords are checked by every other rule without it. One warning
 * is logged, and password_quality_note() gives the front end a sentence to show. A password too
 * short or too simple is still refused.
 *
 * Not thread-safe: the verdict about the dictionary is kept per process. */

#include <stdbool.h>

/* Checks password (for user, NULL when none). Returns libpwquality's score, 0–100, when it passes;
 * -EPERM with libpwquality's reason in error_message() when it does not. */
int password_quality_check(const char *password, const char *user);

/* The same, with libpwquality settings ("name=value" as in pwquality.conf, e.g. "dictpath=/x")
 * applied after the configuration files; settings is NULL or NULL-terminated. -EINVAL for a
 * setting libpwquality does not take. */
int password_quality_check_with(const char *password, const char *user, const char *const *settings);

/* A sentence for the person at the screen when the last check ran without the dictionary, because
 * it is missing; NULL when the dictionary was used (or is turned off by the configuration). */
const char *password_quality_note(void);
