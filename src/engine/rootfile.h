/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Files that imprint writes into the installed system's root (a mounted tree at root): the factory
 * reset hook (recovery-entry.c) and the OEM hand-off (handoff.c). Paths are absolute below root
 * ("/etc/…"); errors say which one, "in the installed system". */

#include <sys/types.h>

/* Writes path (created or replaced; never through a symbolic link) with mode. */
int root_write_file(const char *root, const char *path, const char *content, mode_t mode);
/* Creates the directory path (0755) unless it exists; its parent must exist. */
int root_mkdir(const char *root, const char *path);
/* Makes path a symbolic link to dest (replacing what is there). */
int root_symlink(const char *root, const char *path, const char *dest);
