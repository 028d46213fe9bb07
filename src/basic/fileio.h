/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Reads a small file (sysfs attribute, os-release) whole; NUL-terminated. */
int read_full_file(const char *path, char **ret, size_t *ret_size);

/* Reads the first line of a file, without its newline and trailing whitespace. */
int read_one_line_file(const char *path, char **ret);

/* Reads a sysfs attribute of a block device: /sys/class/block/<name>/<attr>. */
int read_sysfs_block_attr(const char *name, const char *attr, char **ret);
int read_sysfs_block_u64(const char *name, const char *attr, uint64_t *ret);

/* Value of KEY= in an os-release style buffer, unquoted; NULL when absent. */
char *env_file_get(const char *buf, const char *key);

/* Writes all of buf at offset, retrying short writes. */
int pwrite_full(int fd, const void *buf, size_t len, uint64_t offset);
int pread_full(int fd, void *buf, size_t len, uint64_t offset);

char *strjoin_free(char *a, const char *b);
char *strstrip(char *s);

/* strdup() that passes NULL through. */
char *strdup_safe(const char *s);
