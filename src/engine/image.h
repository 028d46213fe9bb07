/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The OS image to install: a Discoverable Disk Image (GPT with a root partition, optionally usr
 * and verity partitions, and UKIs in /EFI/Linux on its ESP or XBOOTLDR). Read with libblkid,
 * debugfs and mtools, never mounted. */

#include <stdbool.h>
#include <stdint.h>

#include "disk.h"
#include "pe.h"
#include "plan.h"

typedef struct ImageUki {
        char *name;            /* file name, e.g. "debian_13.efi" */
        PartitionRole on;      /* ROLE_ESP or ROLE_XBOOTLDR of the image */
        int fd;                /* its bytes, in an anonymous memory file */
        uint64_t size;
        UkiInfo info;
} ImageUki;

typedef struct Image {
        char *path;
        Disk *disk;            /* the image's partition table, as discovery reads it */
        Architecture arch;
        const DiskPartition *root, *esp, *xbootldr;
        /* The partitions the installer copies block by block, root among them. */
        const DiskPartition *os_parts[8];
        size_t n_os_parts;

        char *os_release;      /* text of the image's os-release */
        char *pretty_name, *os_id, *image_id, *image_version;

        ImageUki *ukis;
        size_t n_ukis;
        int sdboot_fd;         /* the image's own systemd-boot binary */
        uint64_t sdboot_size;
        char *sdboot_version;  /* "systemd-boot 257.9-1~deb13u1" */
        char *sdboot_origin;   /* where it was found, for messages */

        char *sha256;          /* expected digest of the whole image file, lowercase hex */
        char *sha256_origin;   /* the SHA256SUMS or .sha256 file it came from */
} Image;

/* Opens an image file or block device read-only and checks its partition table: GPT, not
 * truncated, with a root partition for one architecture (the native one when there are several). */
int image_open(const char *path, Image **ret);

/* The disk the running system was booted from (the firmware's boot disk, else the live medium,
 * else the disk holding /), for --source=self: a live medium that installs itself. */
int image_resolve_self(char **ret_path);

/* Reads what booting needs: every UKI in /EFI/Linux of the image's ESP and XBOOTLDR (each must be
 * a real UKI), the image's systemd-boot, and its os-release (from the root, else from a UKI). */
int image_load_boot(Image *img);

/* Looks for the expected digest: "<image>.sha256", then SHA256SUMS beside the image. */
int image_find_checksum(Image *img);

Image *image_free(Image *img);
DEFINE_TRIVIAL_CLEANUP_FUNC(Image *, image_free);

/* What a plan needs to know about the image. */
int image_to_plan_source(const Image *img, PlanSource **ret);

/* The entry title and version systemd-boot will show for the image's newest UKI. */
const ImageUki *image_default_uki(const Image *img);
