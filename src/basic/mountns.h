/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A mount namespace of the calling thread's own, whose mounts do not propagate to the rest of the
 * system: nobody else sees them, and when the process ends, however it ends, the kernel unmounts
 * them (and loop devices with AUTOCLEAR under them detach themselves). The executor's configure
 * step and the saving of the log mount in one. */

#include <errno.h>

typedef struct PrivateMounts {
        int saved_mntns;   /* the namespace to return to */
        int saved_cwd;     /* and the working directory, which setns() resets to / */
} PrivateMounts;

#define PRIVATE_MOUNTS_INIT { .saved_mntns = -EBADF, .saved_cwd = -EBADF }

/* Enters a private mount namespace (mounts propagate into it, none out of it). On failure nothing
 * changed, and the sentence says why. */
int private_mounts_enter(PrivateMounts *pm);
/* Returns to the namespace and working directory of before; nothing when pm was not entered. */
void private_mounts_leave(PrivateMounts *pm);
