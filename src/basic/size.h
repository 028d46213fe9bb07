/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#define KiB (UINT64_C(1024))
#define MiB (UINT64_C(1024) * KiB)
#define GiB (UINT64_C(1024) * MiB)
#define TiB (UINT64_C(1024) * GiB)

/* Parses "512M", "1G", "1GiB", "20 GB", "4096". Suffixes are binary (K, M, G, T), as in
 * systemd-repart and sfdisk; a bare number is bytes. Returns -EINVAL or -ERANGE. */
int parse_size(const char *s, uint64_t *ret);

/* "1.0 GiB", "512 MiB", "4.0 KiB", "100 B". buf must hold at least FORMAT_BYTES_MAX. */
#define FORMAT_BYTES_MAX 16
const char *format_bytes(char *buf, size_t len, uint64_t bytes);
#define FORMAT_BYTES(b) format_bytes((char[FORMAT_BYTES_MAX]){}, FORMAT_BYTES_MAX, (b))
