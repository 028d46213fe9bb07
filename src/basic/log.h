/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A tiny log facade. The engine logs what it does (the exact commands it runs, each step) so
 * that a failed install can be read back and replayed. Where the lines go is decided by the
 * front end: stderr for the command line, a log file and the live-log pane for the TUI. */

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

typedef void (*log_sink_t)(int level, const char *line, void *userdata);

void log_set_sink(log_sink_t sink, void *userdata);
void log_set_max_level(int level);
int log_get_max_level(void);

/* Returns r unchanged, so that "return log_errno(LOG_ERR, r, ...)" reads naturally. */
int log_internal(int level, int r, const char *fmt, ...) _printf_(3, 4);

#define log_debug(...) log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(r, ...) log_internal(LOG_DEBUG, r, __VA_ARGS__)
#define log_warning_errno(r, ...) log_internal(LOG_WARNING, r, __VA_ARGS__)

/* The default sink: "imprint: message" on stderr for levels up to the max level. */
void log_sink_stderr(int level, const char *line, void *userdata);
