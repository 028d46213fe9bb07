/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-id128.h>

/* A random version-4 UUID from the kernel RNG. */
int uuid_random(sd_id128_t *ret);

/* A version-4 UUID derived from a seed: the first 16 bytes of HMAC-SHA256(key=seed,
 * message=purpose), with the version and variant bits set as systemd's id128_make_v4_uuid()
 * does. Reproducible layouts for tests and for OEM lines that want stable identities. */
int uuid_from_seed(const char *seed, const char *purpose, sd_id128_t *ret);

/* Accepts the dashed UUID form (any case) and the 32-hex-digit form. */
int uuid_parse(const char *s, sd_id128_t *ret);
