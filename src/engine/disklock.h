/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* The target disk is locked as systemd's block device locking convention asks of partitioners
 * and mkfs tools (https://systemd.io/BLOCK_DEVICE_LOCKING/): a BSD lock (flock LOCK_EX) on the
 * whole disk's node, right after opening it, held until the last write is done.
 *
 * systemd-udevd takes LOCK_SH|LOCK_NB on the whole disk while it processes an event of the disk
 * or of any of its partitions, and postpones the event while someone else holds LOCK_EX. Closing
 * a node that was open for writing makes udev probe it again (inotify IN_CLOSE_WRITE), so a probe
 * is often running right when an installer wants the lock: it lasts milliseconds (seconds on a
 * slow USB disk). Hence the lock is waited for, with a bound, and a wait that runs out names the
 * holders.
 *
 * While imprint holds the lock, udev leaves the disk and its partitions alone. So the later
 * exclusive opens of the install need no waiting of their own: mkfs and libcryptsetup open
 * partitions with O_EXCL, which conflicts only with mounts, holders and other O_EXCL openers,
 * never with udev's read-only probe and shared BSD lock. */

/* 30 s: udev's probe of a disk is over in milliseconds, in seconds on a slow USB stick or under
 * emulation, so a healthy machine never comes near it; a person at the screen still gets an
 * answer soon. (udevadm lock waits forever unless given --timeout; udev itself gives up an event
 * after 3 minutes of a lock held by another program.) */
#define DISK_LOCK_TIMEOUT_USEC (UINT64_C(30) * 1000000)

/* The bound to use: IMPRINT_LOCK_TIMEOUT (whole seconds; 0 = do not wait) if set and valid,
 * else DISK_LOCK_TIMEOUT_USEC. */
uint64_t disk_lock_timeout_usec(void);

/* Takes LOCK_EX on fd (path names it in messages), waiting up to timeout_usec for the programs
 * that hold a lock on it. On timeout: -EBUSY, with a message naming each holder by PID and
 * command name (from /proc/locks), nothing else done. */
int disk_lock_exclusive(int fd, const char *path, uint64_t timeout_usec);

/* "PID 412 (systemd-udevd), PID 977 (flock)": the processes holding a BSD lock (flock) on the
 * file fd refers to, at most four; an empty string when none is known (the holder has gone, or
 * /proc/locks is not readable). */
int disk_lock_holders(int fd, char **ret);
