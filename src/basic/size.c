/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "size.h"

int parse_size(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t factor;
        } table[] = {
                { "TiB", TiB }, { "GiB", GiB }, { "MiB", MiB }, { "KiB", KiB },
                { "TB", TiB },  { "GB", GiB },  { "MB", MiB },  { "KB", KiB },
                { "T", TiB },   { "G", GiB },   { "M", MiB },   { "K", KiB },
                { "B", 1 },     { "", 1 },
        };
        unsigned long long whole;
        uint64_t frac_num = 0, frac_den = 1, factor = 0;
        char *end;

        if (isempty(s))
                return -EINVAL;
        while (isspace((unsigned char) *s))
                s++;
        if (!isdigit((unsigned char) *s))
                return -EINVAL;

        errno = 0;
        whole = strtoull(s, &end, 10);
        if (errno != 0)
                return -ERANGE;
        if (*end == '.') {
                end++;
                while (isdigit((unsigned char) *end)) {
                        if (frac_den < UINT64_C(1000000000)) {
                                frac_num = frac_num * 10 + (uint64_t) (*end - '0');
                                frac_den *= 10;
                        }
                        end++;
                }
        }
        while (isspace((unsigned char) *end))
                end++;

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (strcasecmp(end, table[i].suffix) == 0) {
                        factor = table[i].factor;
                        break;
                }
        if (factor == 0)
                return -EINVAL;
        if (whole > UINT64_MAX / factor)
                return -ERANGE;

        *ret = (uint64_t) whole * factor + frac_num * factor / frac_den;
        return 0;
}

const char *format_bytes(char *buf, size_t len, uint64_t bytes) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
        size_t u = 0;
        uint64_t scale = 1;

        while (u + 1 < ELEMENTSOF(units) && bytes / scale >= 1024) {
                scale *= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, len, "%" PRIu64 " B", bytes);
        else if (bytes % scale == 0)
                snprintf(buf, len, "%" PRIu64 " %s", bytes / scale, units[u]);
        else
                snprintf(buf, len, "%.1f %s", (double) bytes / (double) scale, units[u]);
        return buf;
}
