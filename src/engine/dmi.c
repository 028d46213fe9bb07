/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmi.h"
#include "fileio.h"
#include "macro.h"

static int read_field(const char *dir, const char *name, char **ret) {
        _cleanup_(freep) char *path = NULL, *s = NULL;
        size_t n;

        *ret = NULL;
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        if (read_one_line_file(path, &s) < 0)
                return 0;  /* left out by the firmware, or root only: unknown, not an error */
        n = strlen(s);
        while (n > 0 && strchr(" \t\r\n", s[n - 1]))
                s[--n] = '\0';
        if (n == 0)
                return 0;
        *ret = TAKE_PTR(s);
        return 0;
}

int dmi_read(DmiInfo *ret) {
        const char *dir = getenv("IMPRINT_DMI_DIR") ?: "/sys/class/dmi/id";
        DmiInfo d = {};
        struct {
                const char *name;
                char **field;
        } fields[] = {
                { "sys_vendor", &d.sys_vendor },         { "product_name", &d.product_name },
                { "product_version", &d.product_version }, { "product_sku", &d.product_sku },
                { "product_family", &d.product_family }, { "product_serial", &d.product_serial },
                { "product_uuid", &d.product_uuid },     { "board_vendor", &d.board_vendor },
                { "board_name", &d.board_name },         { "bios_version", &d.bios_version },
        };

        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (read_field(dir, fields[i].name, fields[i].field) < 0) {
                        dmi_done(&d);
                        return -ENOMEM;
                }
        *ret = d;
        return 0;
}

void dmi_done(DmiInfo *d) {
        free(d->sys_vendor);
        free(d->product_name);
        free(d->product_version);
        free(d->product_sku);
        free(d->product_family);
        free(d->product_serial);
        free(d->product_uuid);
        free(d->board_vendor);
        free(d->board_name);
        free(d->bios_version);
        *d = (DmiInfo) {};
}
