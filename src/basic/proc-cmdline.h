/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The value of KEY=VALUE in a kernel command line: words are separated by white space, a
 * double-quoted part may hold white space (key="a b", "key=a b"), and as with systemd the last
 * occurrence of KEY wins. Returns 1 and a newly allocated value, 0 when KEY is absent (or given
 * without "="), or a negative errno. */
int cmdline_get_key(const char *line, const char *key, char **ret_value);

/* The same for the running kernel's /proc/cmdline. */
int proc_cmdline_get_key(const char *key, char **ret_value);
