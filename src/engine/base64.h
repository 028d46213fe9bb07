/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Standard base64 with padding and no line breaks (RFC 4648 §4), as systemd's LUKS2 tokens and
 * the usr-verity-sig JSON carry it; libcrypto's EVP_EncodeBlock/EVP_DecodeBlock underneath. */

#include <stddef.h>

/* NULL on allocation failure. */
char *base64_encode(const void *p, size_t n);

/* -EBADMSG for anything but whole padded quanta of the base64 alphabet. */
int base64_decode(const char *s, void **ret, size_t *ret_size);
