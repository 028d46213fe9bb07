/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "i18n.h"
#include "macro.h"
#include "rootfile.h"

int root_write_file(const char *root, const char *path, const char *content, mode_t mode) {
        _cleanup_(freep) char *full = NULL;
        _cleanup_(closep) int fd = -EBADF;
        size_t n = strlen(content), done = 0;

        if (asprintf(&full, "%s%s", root, path) < 0)
                return error_setf(-ENOMEM, _("Out of memory."));
        (void) unlink(full);
        fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return error_setf(-errno, _("Cannot create %s in the installed system: %m"), path);
        while (done < n) {
                ssize_t k = write(fd, content + done, n - done);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return error_setf(-errno, _("Cannot write %s in the installed system: %m"), path);
                done += (size_t) k;
        }
        /* The umask may have taken bits off at open(). */
        if (fchmod(fd, mode) < 0)
                return error_setf(-errno, _("Cannot write %s in the installed system: %m"), path);
        return 0;
}

int root_mkdir(const char *root, const char *path) {
        _cleanup_(freep) char *full = NULL;

        if (asprintf(&full, "%s%s", root, path) < 0)
                return error_setf(-ENOMEM, _("Out of memory."));
        if (mkdir(full, 0755) < 0 && errno != EEXIST)
                return error_setf(-errno, _("Cannot create %s in the installed system: %m"), path);
        return 0;
}

int root_symlink(const char *root, const char *path, const char *dest) {
        _cleanup_(freep) char *full = NULL;

        if (asprintf(&full, "%s%s", root, path) < 0)
                return error_setf(-ENOMEM, _("Out of memory."));
        (void) unlink(full);
        if (symlink(dest, full) < 0)
                return error_setf(-errno, _("Cannot create the link %s in the installed system: %m"), path);
        return 0;
}
