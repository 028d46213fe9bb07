/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Stopping an install at a safe point. interrupt_install() makes SIGINT, SIGTERM and SIGHUP set a
 * flag instead of killing the process; the executor checks it between steps and the copy loops
 * between chunks, then close what they opened and say what state the target is in. A second
 * signal of the same kind restores the default action: pressing Ctrl-C twice still kills. */

#include <stdbool.h>

/* Installs the handlers (SA_RESTART is not set: a blocking read, a confirmation prompt say, returns
 * EINTR so that the front end notices at once). Idempotent. */
int interrupt_install(void);

/* Puts back the handlers that were there before (the full-screen UI's, say) and forgets any
 * request. */
void interrupt_uninstall(void);

/* The signal that asked to stop (SIGINT, SIGTERM, SIGHUP), or 0. Async-signal-safe. */
int interrupt_pending(void);

/* The exit status for a stop request: 128 + the signal number (130 for SIGINT, 143 for SIGTERM,
 * 129 for SIGHUP), as a shell reports a process killed by it. */
int interrupt_exit_status(int sig);
