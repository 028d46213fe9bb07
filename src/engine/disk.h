/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Discovery: what is on this machine's disks (or in a disk image file), read with libblkid and
 * sysfs, never by parsing another tool's output, and whether each disk may be an install target. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>
#include <systemd/sd-id128.h>

#include "dps.h"
#include "table.h"

typedef enum DiskKind {
        DISK_BLOCK,      /* a whole-disk block device */
        DISK_IMAGE_FILE, /* a regular file holding a disk image */
        _DISK_KIND_MAX,
        _DISK_KIND_INVALID = -EINVAL,
} DiskKind;

typedef enum Transport {
        TRANSPORT_UNKNOWN,
        TRANSPORT_NVME,
        TRANSPORT_SATA,
        TRANSPORT_SCSI,
        TRANSPORT_USB,
        TRANSPORT_VIRTIO,
        TRANSPORT_MMC,
        TRANSPORT_LOOP,
        TRANSPORT_FILE,
        _TRANSPORT_MAX,
        _TRANSPORT_INVALID = -EINVAL,
} Transport;

DECLARE_STRING_TABLE_LOOKUP(transport, Transport);
DECLARE_STRING_TABLE_LOOKUP(disk_kind, DiskKind);

/* Why a disk cannot be an install target. A disk may have several reasons. */
typedef enum DiskRefusal {
        REFUSE_MOUNTED = 1 << 0,     /* it or one of its partitions is mounted */
        REFUSE_HOLDERS = 1 << 1,     /* dm, md, … sit on top of it */
        REFUSE_SWAP = 1 << 2,        /* swap is active on it */
        REFUSE_BOOT_DISK = 1 << 3,   /* firmware booted from it (LoaderDevicePartUUID) */
        REFUSE_ROOT_DISK = 1 << 4,   /* it backs the running system's / or /usr */
        REFUSE_LIVE_MEDIUM = 1 << 5, /* it is the live medium imprint runs from */
        REFUSE_READ_ONLY = 1 << 6,
        REFUSE_TOO_SMALL = 1 << 7,
        REFUSE_NOT_WHOLE_DISK = 1 << 8, /* a partition was named, not its disk */
        REFUSE_NO_MEDIUM = 1 << 9,      /* size 0: card reader without a card, empty loop */
} DiskRefusal;

/* The GPT name imprint gives every partition it creates while an install or apply is under way; the
 * planned names replace it as the very last step. A disk with a partition of this name is an
 * incomplete install: `imprint disks` says so, and nothing on it is taken for an installed system. */
#define DISK_INCOMPLETE_LABEL "imprint-incomplete"

typedef struct DiskPartition {
        unsigned partno;          /* 1-based, as the kernel names it */
        char *node;               /* /dev/sda1, or NULL for image files */
        uint64_t start;           /* bytes from the start of the disk */
        uint64_t size;            /* bytes */
        char *type_string;        /* GPT type GUID or MBR type ("0x83"), as libblkid reports it */
        sd_id128_t type_uuid;     /* GPT only, else SD_ID128_NULL */
        const DpsType *dps;       /* DPS or known foreign type, or NULL */
        sd_id128_t uuid;          /* PARTUUID (GPT); SD_ID128_NULL for MBR */
        char *uuid_string;        /* PARTUUID as libblkid reports it (also MBR "xxxxxxxx-01") */
        char *label;              /* GPT partition name */
        uint64_t flags;           /* GPT attribute bits */
        char *fstype;             /* "ext4", "vfat", "crypto_LUKS", "swap", … or NULL */
        char *fslabel;
        char *fsuuid;
        char *os;                 /* what is installed here (a guess), e.g. "Debian GNU/Linux 13 (trixie)" */
} DiskPartition;

typedef struct Disk {
        DiskKind kind;
        char *path;               /* what the user named: /dev/sda or /path/disk.img */
        char *name;               /* kernel name (sda, nvme0n1, loop0) or file basename */
        char *devnode;            /* /dev/sda for block devices */
        char **by_id;             /* /dev/disk/by-id links (NULL-terminated), may be empty */
        uint64_t diskseq;         /* 0 when the kernel has none */
        char *vendor;
        char *model;
        char *serial;
        char *backing_file;       /* loop devices */
        uint64_t size;            /* bytes */
        uint32_t logical_sector_size;
        uint32_t physical_sector_size;
        uint64_t optimal_io_size;
        bool rotational;
        bool removable;
        bool read_only;
        Transport transport;

        char *pttype;             /* "gpt", "dos", or NULL for none */
        char *ptuuid;             /* disk GUID (GPT) or MBR identifier */
        DiskPartition *partitions;
        size_t n_partitions;

        char **installed;         /* human lines: "Windows Boot Manager (ESP, partition 1)", … */
        bool incomplete_install;  /* a partition carries DISK_INCOMPLETE_LABEL: an install was interrupted */

        /* Factory reset (record.h), read with probe_os from the ESP: */
        bool imprint_installed;   /* the ESP holds imprint's install record */
        bool reset_interrupted;   /* the newest audit record says "running": a reset was cut off */
        char *last_reset;         /* record_reset_summary() of the newest audit record, or NULL */
        json_object *last_reset_record; /* that audit record, or NULL ("lastReset" in the JSON) */

        unsigned refusals;        /* DiskRefusal bits */
        char *refusal_text;       /* one sentence per reason, naming the evidence */
} Disk;

typedef struct DiskList {
        Disk **disks;
        size_t n_disks;
} DiskList;

/* The smallest disk offered as a target when no layout is known yet: a 1 GiB ESP and a 2 GiB
 * root (DISK_MIN_SIZE). The planner checks the real layout. */
#define DISK_MIN_SIZE (UINT64_C(3) * 1024 * 1024 * 1024 + UINT64_C(2) * 1024 * 1024)

typedef struct DiscoverOptions {
        bool probe_os;            /* look inside partitions for installed systems (slower) */
} DiscoverOptions;

/* All whole disks on this machine (virtual ones like zram, dm and empty loop devices excluded). */
int disk_list_discover(const DiscoverOptions *opts, DiskList *ret);

/* One disk by path: a whole-disk block device, or an image file. A partition node or other
 * file types are refused with a message. */
int disk_discover(const char *path, const DiscoverOptions *opts, Disk **ret);

Disk *disk_free(Disk *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(Disk *, disk_free);
void disk_list_done(DiskList *l);

bool disk_is_usable(const Disk *d);

/* Reads the partition table and partitions of an open disk or image (used by discovery and to
 * check that a disk still looks as it did when a plan was made). */
int disk_read_partitions(Disk *d);

/* Rechecks whether the disk is in use (mounted, holders, swap, system disk) right before a
 * write; returns -EBUSY with a message naming the reason. */
int disk_check_not_in_use(const Disk *d);

/* Where the filesystem on the block device devt is mounted (the first place /proc/self/mountinfo
 * names; btrfs's anonymous device numbers are resolved through the mount's source), or NULL in
 * *ret when it is not mounted. */
int disk_mount_point_of(dev_t devt, char **ret);

/* The PARTUUID of the ESP the firmware booted from (LoaderDevicePartUUID, as systemd-boot sets
 * it), lowercase. -ENOENT when not booted that way. */
int disk_loader_device_part_uuid(char **ret);

/* As disk_check_not_in_use(), for a factory reset: the disk the firmware booted from may be reset
 * (the recovery entry resets its own disk); every other reason stands. */
int disk_check_not_in_use_for_reset(const Disk *d);

json_object *disk_to_json(const Disk *d);
/* The disks, one row each: DISK SIZE BUS MODEL SERIAL TABLE USABLE as `imprint disks` prints
 * them, and as JSON the objects disk_to_json() returns. */
int disk_list_table(const DiskList *l, Table **ret);

/* The partition node name for partno on this disk: sda1, nvme0n1p1, loop0p1. */
int disk_partition_node(const Disk *d, unsigned partno, char **ret);
