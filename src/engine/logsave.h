/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Saving the install log to a removable disk (USB stick, SD card) so that a failed install can be
 * reported from another machine. The only engine operation that writes to a disk other than the
 * target, so it refuses more than it accepts:
 *
 *   -EPERM        the node is the install's target (exclude_disk) or a partition of it
 *   -EBUSY        its disk is in use by the system: it holds / or /usr, it is the live medium,
 *                 the firmware booted from it, swap is active on it, or dm/md sit on it
 *   -EALREADY     the partition itself is already mounted (see below)
 *   -EROFS        the disk is read-only
 *   -EMEDIUMTYPE  no filesystem that can take a file (swap, LUKS, NTFS, nothing at all)
 *   -ENOTBLK      the node is not a block device
 *   -ENODEV       log_save_to_removable() found no removable disk with such a filesystem
 *
 * A partition that is already mounted is refused rather than written through its mount point or
 * mounted a second time: somebody mounted it for a purpose we cannot see (read-only on purpose,
 * a backup in progress, a desktop about to unmount it), and that person can copy the log there
 * themselves — the sentence names the mount point. imprint's live medium mounts nothing by
 * itself, so a mounted stick is one a person mounted by hand. The other, unmounted partitions of
 * the same stick are separate filesystems and are still used.
 *
 * The filesystem is mounted nosuid,nodev,noexec on a fresh directory under /run, inside a mount
 * namespace of the calling thread's own (so no desktop or other program sees it, and a killed
 * process leaves nothing mounted); the file is created with O_EXCL|O_NOFOLLOW relative to the
 * mount's root (never through a symlink on the stick, never over an existing file), fsync'ed,
 * then the filesystem is unmounted and the directory removed, on failure too. A partly written
 * file is removed. */

#include <stdbool.h>

/* Whether a filesystem type, as libblkid names it, can take a plain file with a long name:
 * vfat, exfat, ext2/3/4, btrfs, xfs. */
bool log_fstype_can_take_file(const char *fstype);

/* Saves the file at log_path to the filesystem on node: a partition, or a whole disk that holds a
 * filesystem with no partition table (a "superfloppy" stick). exclude_disk (the install's target:
 * a disk, a partition of it, or an image file; may be NULL) and anything on it is refused, as is
 * every disk in use by the system (see above). The file is named imprint-YYYYMMDD-HHMMSS.log
 * (local time; "-2", "-3", … appended when that name exists). *ret_where: "The log was saved as imprint-….log on
 * /dev/sdb1". */
int log_save_to_partition(const char *log_path, const char *node, const char *exclude_disk, char **ret_where);

/* Saves the file at log_path to a removable disk (USB stick, SD card) that is not exclude_disk
 * (the install's target, may be NULL): the first partition with a filesystem that can take a
 * file (vfat, exfat, ext2/3/4, btrfs, xfs), mounted privately, the file written as
 * imprint-YYYYMMDD-HHMMSS.log, fsync'ed, unmounted. *ret_where: the sentence for the screen, "The log was saved as imprint-….log on /dev/sdb1."
 * -ENODEV when there is no removable disk with such a filesystem; when there is one but each of
 * its filesystems was refused or failed, the first of those errors. */
int log_save_to_removable(const char *log_path, const char *exclude_disk, char **ret_where);
