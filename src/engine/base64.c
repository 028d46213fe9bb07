/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "base64.h"
#include "macro.h"

char *base64_encode(const void *p, size_t n) {
        char *s;

        if (n > INT32_MAX / 2)
                return NULL;
        s = malloc(4 * DIV_ROUND_UP(n, 3) + 1);
        if (s)
                EVP_EncodeBlock((unsigned char *) s, p, (int) n);
        return s;
}

int base64_decode(const char *s, void **ret, size_t *ret_size) {
        size_t len = strlen(s), pad = 0;
        unsigned char *buf;
        int n;

        /* EVP_DecodeBlock() wants whole quanta and counts padding as zero bytes. */
        if (len == 0 || len % 4 != 0 || len > INT32_MAX)
                return -EBADMSG;
        for (size_t i = 0; i < len; i++)
                if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", s[i]))
                        return -EBADMSG;
        if (s[len - 1] == '=')
                pad++;
        if (s[len - 2] == '=')
                pad++;
        buf = malloc(len / 4 * 3 + 1);
        if (!buf)
                return -ENOMEM;
        n = EVP_DecodeBlock(buf, (const unsigned char *) s, (int) len);
        if (n < 0 || (size_t) n < pad) {
                free(buf);
                return -EBADMSG;
        }
        *ret = buf;
        *ret_size = (size_t) n - pad;
        return 0;
}
