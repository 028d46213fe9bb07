/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Writing the plan's GPT with libfdisk. Only the executor calls this. */

#include "plan.h"

/* Writes the partition table of plan p to fd (the target, opened read-write). In erase mode a
 * new GPT replaces whatever was there and old whole-disk signatures are wiped; in free mode the
 * existing GPT gets the new partitions. Signatures inside every new partition are wiped. */
int partition_write_table(const Plan *p, int fd);

/* Makes the kernel see the new table of a block device and waits (up to timeout_usec) until
 * every planned partition node exists in /dev. */
int partition_sync_kernel(const Plan *p, int fd, const Disk *d, uint64_t timeout_usec);

/* Gives every partition the plan created its planned GPT name. Until then each carries
 * DISK_INCOMPLETE_LABEL, which partition_write_table() writes when asked to: the executor's last
 * step, so that a target is recognised as an incomplete install until the install has finished. */
int partition_write_labels(const Plan *p, int fd);
