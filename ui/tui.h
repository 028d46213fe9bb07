/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The full-screen installer (ui/): imprint with no arguments on a terminal, or imprint --tui. A
 * front end of the install session (src/session/session.h). */

#include <stdbool.h>
#include <stddef.h>

typedef struct TuiOptions {
        const char *source;            /* the OS image; NULL: the medium's default (imprint.conf) */
        char **targets;                /* offer only these disks or image files (tests, demos) */
        size_t n_targets;
        const char *seed;              /* reproducible UUIDs (tests) */
        const char *log_path;          /* NULL: /var/log/imprint.log, else /tmp */
        const char *language;          /* "en", "de", "fr": preselected */
        bool allow_weak_password;
        bool mono;                     /* no colours */
        bool reset;                    /* straight to "Reset an installed system" (the recovery entry) */
        const char *record_path;       /* --record FILE: after an install, the configuration that repeats it
                                        * (config-record.h), offered on the last screen */
        bool shell_after;              /* "Exit to a shell" starts root's login shell in imprint's place
                                        * (imprint --console: the terminal has no shell behind it) */
} TuiOptions;

/* Returns imprint's exit status. */
int tui_run(const TuiOptions *o);
