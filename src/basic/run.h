/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Every external command the engine runs (mkfs.*, mtools, debugfs) goes through here. The exact
 * argv is logged first so that a failed install can be replayed by hand. Secrets never go into
 * argv: pass them through stdin_data (written to a pipe) instead. */

#include <stdbool.h>
#include <stddef.h>

typedef struct RunOptions {
        const void *stdin_data;  /* written to the child's stdin through a pipe, then closed */
        size_t stdin_size;
        char **ret_stdout;       /* if set, the child's stdout is captured (NUL-terminated) */
        size_t *ret_stdout_size; /* its size, for binary output */
        int keep_fd;             /* an fd (> 0) the child must inherit, e.g. an O_TMPFILE target */
        bool quiet_stderr;       /* capture stderr and include it only in the error message */
        int *ret_status;         /* if set, any exit status is returned here, not as an error, and
                                  * ret_stdout receives the output whatever the status */
        bool merge_stderr;       /* stderr goes where stdout goes (checkers warn on either) */
} RunOptions;

/* Runs argv[0] (looked up in PATH) and waits. Returns 0 if it exited with 0; otherwise a negative
 * errno with the error message naming the command and its exit status and last stderr line. */
int run_command(char *const argv[], const RunOptions *opts);

/* Joins argv for the log, quoting words that need it. */
char *argv_to_string(char *const argv[]);

/* true if a program is found in PATH (or sbin directories). */
bool find_executable(const char *name);
