/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Password and passphrase quality through libpwquality, with its settings from
 * /etc/security/pwquality.conf (and .d), as passwd and homectl use it. */

#include <stdbool.h>

/* Checks password (for user, NULL when none). Returns libpwquality's score, 0–100, when it passes;
 * -EPERM with libpwquality's reason in error_message() when it does not. */
int password_quality_check(const char *password, const char *user);
