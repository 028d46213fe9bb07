/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct stat;

/* Reads a small file (sysfs attribute, os-release) whole; NUL-terminated. */
int read_full_file(const char *path, char **ret, size_t *ret_size);

/* Input a person names (a plan file, a configuration, an image): opened read-only without
 * waiting on a FIFO. Returns the fd when path is a regular file (or, with allow_block, a block
 * device), and its stat in ret_st (may be NULL); -EISDIR for a directory, -EBADFD for any other
 * type (a FIFO, a character device such as /dev/zero, a socket), or open()'s -errno. */
int open_input_file(const char *path, bool allow_block, struct stat *ret_st);

/* "a FIFO", "a character device", … for messages. */
const char *file_type_name(mode_t mode);

/* Reads a regular file of at most max bytes whole (NUL-terminated; it may hold NULs, ret_size
 * says how much was read). Anything else is refused before a byte is read: a FIFO, a device, a
 * directory (-EINVAL), a larger file (-E2BIG), so that neither a pipe nor /dev/zero can hang or
 * exhaust the reader. what names the file in the sentence recorded with the error ("the plan
 * file"): "Cannot read the plan file P: it does not exist." */
int read_regular_file(const char *path, const char *what, size_t max, char **ret, size_t *ret_size);

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
/* The first size bytes of fd (from offset 0) in a new buffer (at least 1 byte allocated). */
int read_fd_all(int fd, uint64_t size, void **ret);

char *strjoin_free(char *a, const char *b);
char *strstrip(char *s);

/* strdup() that passes NULL through. */
char *strdup_safe(const char *s);
