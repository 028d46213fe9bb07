/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Secrets (passphrases, recovery keys, TPM-sealed keys, volume keys, passwords) live in memory
 * that is locked (never swapped out) and wiped when freed. Never log them, never pass them in
 * argv or a child's environment, never write them to a file other than their destination. */

#include <stddef.h>

#include "macro.h"

typedef struct Secret {
        size_t size;     /* bytes in use */
        size_t allocated;
        unsigned char data[]; /* page-aligned allocation, mlock()ed; NUL after size */
} Secret;

/* A zeroed secret of size bytes (plus a terminating NUL). NULL on failure (errno set). */
Secret *secret_new(size_t size);
/* A copy of buf in locked memory. */
Secret *secret_new_from(const void *buf, size_t size);
/* Wipes (explicit_bzero), unlocks and frees. NULL-safe. */
Secret *secret_free(Secret *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Secret *, secret_free);

/* Wipes a stack or heap buffer that held secret bytes. */
void secret_wipe(void *p, size_t n);

/* Reads a secret file (a systemd credential) into a Secret: at most max bytes, one trailing
 * newline dropped. -ENOENT when it does not exist; -E2BIG when it is longer; -EINVAL when empty,
 * when it holds a NUL byte, or when it is not a regular file (a FIFO, a device). No stdio: nothing is buffered outside locked memory. */
int secret_read_file(const char *path, size_t max, Secret **ret);

/* Reads the credential name from $CREDENTIALS_DIRECTORY; -ENOENT when there is none. */
int secret_read_credential(const char *name, size_t max, Secret **ret);

/* Shows prompt on fd_out and reads one line from the terminal fd_in with echo off (restored
 * afterwards, also on errors). -ENOTTY when fd_in is not a terminal; -ECANCELED at end of input. */
int secret_read_tty(int fd_in, int fd_out, const char *prompt, size_t max, Secret **ret);
