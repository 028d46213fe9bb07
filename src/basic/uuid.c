/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "uuid.h"

static sd_id128_t make_v4(sd_id128_t id) {
        id.bytes[6] = (id.bytes[6] & 0x0F) | 0x40;
        id.bytes[8] = (id.bytes[8] & 0x3F) | 0x80;
        return id;
}

int uuid_random(sd_id128_t *ret) {
        return sd_id128_randomize(ret); /* already version 4 */
}

int uuid_from_seed(const char *seed, const char *purpose, sd_id128_t *ret) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;
        sd_id128_t id;

        if (!seed || !purpose)
                return -EINVAL;
        if (!HMAC(EVP_sha256(), seed, (int) strlen(seed), (const unsigned char *) purpose,
                  strlen(purpose), md, &md_len) || md_len < sizeof(id.bytes))
                return -EIO;

        memcpy(id.bytes, md, sizeof(id.bytes));
        *ret = make_v4(id);
        return 0;
}

int uuid_parse(const char *s, sd_id128_t *ret) {
        return sd_id128_from_string(s, ret);
}
