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
