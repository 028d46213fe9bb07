/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The OS image to install: a Discoverable Disk Image (GPT with a root partition, optionally usr
 * and verity partitions, and UKIs in /EFI/Linux on its ESP or XBOOTLDR). Read with libblkid,
 * debugfs and mtools, never mounted. */

#include <stdbool.h>
#include <stdint.h>

#include "disk.h"
#include "fsread.h"
#include "pe.h"
#include "plan.h"

typedef struct ImageUki {
        char *name;            /* file name, e.g. "debian_13.efi" */
        PartitionRole on;      /* ROLE_ESP or ROLE_XBOOTLDR of the image */
        int fd;                /* its bytes, in an anonymous memory file */
        uint64_t size;
        UkiInfo info;
} ImageUki;

/* What the image's own /usr/lib/repart.d says about one partition (repart.d(5)), as far as
 * imprint uses it. Files are read in the order systemd-repart reads them (by file name). */
typedef struct ImageRepartDef {
        char *file;              /* "21-usr-B.conf" */
        PartitionRole role;      /* from Type= ("usr", "usr-x86-64", "root", "home", "esp", …) */
        char *label;             /* Label=, NULL when not set ("_empty" for a B slot) */
        uint64_t size_min;       /* SizeMinBytes=, 0 when not set */
        uint64_t size_max;       /* SizeMaxBytes=, 0 when not set */
        char *format;            /* Format=, NULL when not set */
        bool factory_reset;      /* FactoryReset=yes */
} ImageRepartDef;

/* One /usr/lib/sysupdate.d/NAME.transfer of the image (sysupdate.d(5)), the [Target] side. */
typedef struct ImageTransfer {
        char *file;              /* "50-uki.transfer" */
        char *target_type;       /* Type= of [Target]: "partition", "regular-file", … */
        PartitionRole partition_role; /* MatchPartitionType= for partition targets, else _ROLE_INVALID */
        char **match_patterns;   /* [Target] MatchPattern=, in order; the first names new instances */
        char *path;              /* [Target] Path= ("auto", "/EFI/Linux") */
        char *path_relative_to;  /* [Target] PathRelativeTo= ("boot", "esp", "xbootldr", "root"), NULL: root */
        int tries_left, tries_done; /* [Target] TriesLeft=/TriesDone=, -1 when not set */
        int read_only;           /* [Target] ReadOnly=, -1 when not set */
        int no_auto, growfs;     /* [Target] NoAuto=, GrowFileSystem=, -1 when not set */
} ImageTransfer;

typedef enum ImageKind {
        IMAGE_KIND_ROOT,         /* a root partition (with or without usr/verity): copied as it is */
        IMAGE_KIND_USR,          /* usr (+ usr-verity, usr-verity-sig) and no root: root is made here */
        _IMAGE_KIND_MAX,
        _IMAGE_KIND_INVALID = -EINVAL,
} ImageKind;

typedef struct Image {
        char *path;
        Disk *disk;            /* the image's partition table, as discovery reads it */
        Architecture arch;
        ImageKind kind;
        const DiskPartition *root, *esp, *xbootldr;
        /* usr images (and classic ones that also carry them): the partitions of the A slot. */
        const DiskPartition *usr, *usr_verity, *usr_verity_sig;
        char *usrhash;         /* from the newest UKI's command line (usrhash=), lowercase hex, or NULL */
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
        int shim_fd;           /* shim as Debian's shim-signed ships it (usr/lib/shim/shim<arch>.efi.signed), or -EBADF */
        uint64_t shim_size;
        int mok_fd;            /* its MOK manager (mm<arch>.efi.signed), or -EBADF */
        uint64_t mok_size;

        ImageRepartDef *repart;  /* the image's /usr/lib/repart.d, in file name order */
        size_t n_repart;
        ImageTransfer *transfers;/* the image's /usr/lib/sysupdate.d/ transfers, in file name order */
        size_t n_transfers;
        char *assumption;        /* what imprint could not check and assumes (e.g. how the initrd
                                  * finds root), for the plan's note; NULL when all was checked */

        char *sha256;          /* expected digest of the whole image file, lowercase hex */
        char *sha256_origin;   /* the SHA256SUMS or .sha256 file it came from */

        /* An image read once, start to end (stream.h): path is the memory file that stands for
         * it, and the streamed partition's content is read, once written, from where it landed. */
        struct ImageStream *stream;
        const DiskPartition *streamed;
        char *streamed_disk;
        uint64_t streamed_offset;
} Image;

/* Opens an image file or block device read-only and checks its partition table: GPT, not
 * truncated, with a root partition for one architecture (the native one when there are several),
 * or — a usr image — a usr partition and no root partition. */
int image_open(const char *path, Image **ret);

/* image_open() of the memory file that stands for a streamed image (stream.h), which the Image
 * then owns (and frees on failure too). */
int image_open_stream(const char *path, struct ImageStream *s, Image **ret);

/* Where a partition of the image is read: in the image, or for the streamed one once written,
 * on disk at offset. */
FsLocation image_fs_location(const Image *img, const DiskPartition *p);
int image_relocate_streamed(Image *img, const char *disk, uint64_t offset);
/* Once the streamed partition is written and relocated: what waited for it (systemd-boot, the usr
 * checks with cert_pem). */
int image_finish_stream(Image *img, const char *cert_pem);

/* The disk the running system was booted from (the firmware's boot disk, else the live medium,
 * else the disk holding /), for --source=self: a live medium that installs itself. */
int image_resolve_self(char **ret_path);

/* Reads what booting needs: every UKI in /EFI/Linux of the image's ESP and XBOOTLDR (each must be
 * a real UKI), the image's systemd-boot, and its os-release (from the root, else from a UKI). */
int image_load_boot(Image *img);

/* usr images: reads the image's repart.d and sysupdate.d, and checks that usrhash=, the verity
 * partition and the signature (against cert_pem when given, else only its shape and root hash)
 * belong together, and that the initrd can find root. Called by image_load_boot(); separate
 * for tests. */
int image_check_usr(Image *img, const char *cert_pem);

/* The sysupdate transfer whose [Target] is of this partition role (partition targets), or the
 * UKI transfer (role _ROLE_INVALID: a regular-file target with Path=/EFI/Linux). NULL: none. */
const ImageTransfer *image_find_transfer(const Image *img, PartitionRole role);

/* Instantiates a sysupdate MatchPattern: @v → version, @l → tries_left, @d → tries_done (a
 * pattern with @l/@d gets them; defaults 3 and 0 when the transfer sets none). Other
 * specifiers (@u, @a, …) are refused with -EINVAL. */
int image_pattern_instantiate(const char *pattern, const char *version, int tries_left, int tries_done, char **ret);

/* Looks for the expected digest: "<image>.sha256", then SHA256SUMS beside the image. */
int image_find_checksum(Image *img);

Image *image_free(Image *img);
DEFINE_TRIVIAL_CLEANUP_FUNC(Image *, image_free);

/* What a plan needs to know about the image. */
int image_to_plan_source(const Image *img, PlanSource **ret);

/* The entry title and version systemd-boot will show for the image's newest UKI. */
const ImageUki *image_default_uki(const Image *img);
