/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The machine's identity as the firmware gives it (SMBIOS type 1 "System" and type 2 "Baseboard"),
 * read from the kernel's /sys/class/dmi/id. OEM lines check it against an allowlist (config.h,
 * "machines") and record it in the per-machine report (report.h). Tests point IMPRINT_DMI_DIR at
 * a directory of the same files. Fields are NULL when the firmware left them out or the file
 * cannot be read (product_serial needs root); trailing whitespace is removed. */

typedef struct DmiInfo {
        char *sys_vendor;      /* sys_vendor: SMBIOS type 1 Manufacturer */
        char *product_name;    /* product_name: type 1 Product Name */
        char *product_version; /* product_version */
        char *product_sku;     /* product_sku: type 1 SKU Number */
        char *product_family;  /* product_family */
        char *product_serial;  /* product_serial: type 1 Serial Number (root only) */
        char *product_uuid;    /* product_uuid: type 1 UUID (root only) */
        char *board_vendor;    /* board_vendor: type 2 Manufacturer */
        char *board_name;      /* board_name: type 2 Product */
        char *bios_version;    /* bios_version: type 0 */
} DmiInfo;

/* Reads the DMI identity ($IMPRINT_DMI_DIR, else /sys/class/dmi/id). A machine without DMI (no
 * directory) gives all-NULL fields and returns 0. */
int dmi_read(DmiInfo *ret);
void dmi_done(DmiInfo *d);
