/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Guesses what is installed on a partition, so that the disk list can warn "Windows Boot Manager
 * on the ESP" before the user erases it. Nothing is mounted: ext2/3/4 are read with debugfs and
 * FAT with mtools, both of which read a partition inside an image file by offset, so this works
 * for image files without root. The answer is a guess: a missing tool or an unreadable
 * filesystem yields "nothing recognized", never an error. */

#include "disk.h"

/* On success *ret_os is a short human description ("Debian GNU/Linux 12 (bookworm)",
 * "Windows Boot Manager, systemd-boot", "LUKS-encrypted"), or NULL when nothing was recognized.
 * Returns a negative errno only for -ENOMEM and invalid arguments. The error message recorded
 * by error_setf() before the call is left as it was. */
int osprobe_partition(const Disk *disk, const DiskPartition *part, char **ret_os);
