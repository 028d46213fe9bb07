/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "error.h"
#include "i18n.h"
#include "log.h"
#include "mountns.h"

int private_mounts_enter(PrivateMounts *pm) {
        PrivateMounts n = PRIVATE_MOUNTS_INIT;
        int r;

        n.saved_mntns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
        if (n.saved_mntns < 0)
                return error_setf(-errno, _("Cannot open the mount namespace: %m"));
        n.saved_cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (n.saved_cwd < 0 || unshare(CLONE_NEWNS) < 0) {
                r = -errno;
                if (n.saved_cwd >= 0)
                        close(n.saved_cwd);
                close(n.saved_mntns);
                return error_setf(r, _("Cannot make a private mount namespace: %s"), strerror(-r));
        }
        /* The kernel ignores source and type for a change of propagation; they are named anyway,
         * so that checkers that read them (valgrind) find strings there. */
        if (mount("none", "/", "none", MS_REC | MS_SLAVE, NULL) < 0) {
                r = -errno;
                private_mounts_leave(&n);
                return error_setf(r, _("Cannot make a private mount namespace: %s"), strerror(-r));
        }
        *pm = n;
        return 0;
}

void private_mounts_leave(PrivateMounts *pm) {
        if (pm->saved_mntns < 0)
                return;
        if (setns(pm->saved_mntns, CLONE_NEWNS) < 0)
                log_warning("Cannot return to the original mount namespace: %m");
        /* setns() moved us to its root: the caller's relative paths (an image) must still work. */
        else if (fchdir(pm->saved_cwd) < 0)
                log_warning("Cannot return to the working directory: %m");
        close(pm->saved_mntns);
        close(pm->saved_cwd);
        *pm = (PrivateMounts) PRIVATE_MOUNTS_INIT;
}
