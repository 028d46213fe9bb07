/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* The line-by-line dialogue (imprint --plain): for screen readers, serial consoles and terminals
 * too small or too simple for the full-screen installer. A front end of the install session
 * (session.h). source: the OS image, NULL for the medium's default; language: "de", "fr", … to
 * preselect, NULL for the environment's; reset: go straight to "Reset an installed system" (the
 * recovery entry, imprint --plain --reset) instead of asking install or reset first. Returns
 * imprint's exit status. */
int plain_run(const char *source, const char *language, bool reset);
/* The same, and after a successful install the configuration for `imprint unattended` that
 * repeats it is written to record_path (--record FILE, config-record.h; NULL: nothing recorded),
 * with a sentence saying where and what a replay needs. */
int plain_run_record(const char *source, const char *language, bool reset, const char *record_path);
