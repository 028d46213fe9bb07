/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "disklock.h"
#include "error.h"
#include "fileio.h"
#include "i18n.h"
#include "log.h"

#define HOLDERS_MAX 4

DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose);

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

uint64_t disk_lock_timeout_usec(void) {
        const char *s = getenv("IMPRINT_LOCK_TIMEOUT");
        unsigned long v;
        char *end;

        if (!s || !*s)
                return DISK_LOCK_TIMEOUT_USEC;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end || *s == '-' || v > 24 * 3600) {
                log_warning("IMPRINT_LOCK_TIMEOUT=%s is not a number of seconds (0 to 86400); waiting %u s for locks.", s,
                            (unsigned) (DISK_LOCK_TIMEOUT_USEC / 1000000));
                return DISK_LOCK_TIMEOUT_USEC;
        }
        return (uint64_t) v * 1000000;
}

int disk_lock_holders(int fd, char **ret) {
        _cleanup_(fclosep) FILE *f = NULL;
        char line[256], out[512] = "";
        pid_t pids[HOLDERS_MAX];
        size_t n = 0, len = 0;
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        /* One line per lock: "1: FLOCK  ADVISORY  READ  412 00:05:355 0 EOF", the PID that took it
         * and the device (of the filesystem holding the node, in hex) and inode locked. Lines
         * with "->" are programs waiting for a lock, not holding one. */
        f = fopen("/proc/locks", "re");
        while (f && n < HOLDERS_MAX && fgets(line, sizeof(line), f)) {
                char type[16], kind[16], mode[16];
                unsigned maj, min;
                unsigned long ino;
                bool seen = false;
                int pid;

                if (strstr(line, "->") ||
                    sscanf(line, "%*d: %15s %15s %15s %d %x:%x:%lu", type, kind, mode, &pid, &maj, &min, &ino) != 7)
                        continue;
                /* POSIX and OFD locks (QEMU's on its images) do not conflict with flock(). */
                if (!streq(type, "FLOCK") || makedev(maj, min) != st.st_dev || ino != (unsigned long) st.st_ino || pid <= 0 || pid == getpid())
                        continue;
                for (size_t i = 0; i < n; i++)
                        seen = seen || pids[i] == pid;
                if (seen)
                        continue;
                pids[n++] = pid;
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_(freep) char *comm = NULL;
                char path[64];

                snprintf(path, sizeof(path), "/proc/%d/comm", (int) pids[i]);
                (void) read_one_line_file(path, &comm);
                len += (size_t) snprintf(out + len, len < sizeof(out) ? sizeof(out) - len : 0, "%sPID %d%s%s%s", i > 0 ? ", " : "",
                                         (int) pids[i], comm ? " (" : "", comm ?: "", comm ? ")" : "");
        }
        *ret = strdup(out);
        return *ret ? 0 : -ENOMEM;
}

/* flock() has no timeout. As udevadm lock does, a child process waits in flock(LOCK_EX) on fd:
 * a BSD lock belongs to the open file description, which the child shares, so once the child has
 * the lock and exits, the caller holds it. A blocked waiter gets the lock the moment the last
 * holder lets go; polling with LOCK_NB could keep missing the short gaps between the probes of a
 * busy udev. At the deadline the child is killed, and its wait ends with it. Returns 1 when the
 * child got the lock, 0 at the deadline. */
static int lock_in_child(int fd, uint64_t timeout_usec) {
        _cleanup_(closep) int rfd = -EBADF, wfd = -EBADF;
        uint64_t deadline = now_usec() + timeout_usec;
        int pipefd[2], status, r;
        bool timed_out = false;
        pid_t pid, parent = getpid();

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        rfd = pipefd[0];
        wfd = pipefd[1];
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                /* Only async-signal-safe calls here: the caller may have threads. */
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(2);
                while (flock(fd, LOCK_EX) < 0)
                        if (errno != EINTR)
                                _exit(1);
                _exit(0);
        }
        close(wfd);
        wfd = -EBADF;

        /* The child's end of the pipe closes when it exits. */
        for (;;) {
                struct pollfd p = { .fd = rfd, .events = POLLIN };
                uint64_t now = now_usec();

                if (now >= deadline) {
                        timed_out = true;
                        (void) kill(pid, SIGKILL);
                        break;
                }
                r = poll(&p, 1, (int) ((deadline - now + 999) / 1000));
                if (r < 0 && errno != EINTR) {
                        r = -errno;
                        (void) kill(pid, SIGKILL);
                        (void) waitpid(pid, NULL, 0);
                        return r;
                }
                if (r > 0)
                        break;
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (!timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 1;
        if (!timed_out)
                return -EPROTO;
        return 0;
}

int disk_lock_exclusive(int fd, const char *path, uint64_t timeout_usec) {
        _cleanup_(freep) char *holders = NULL;
        uint64_t start = now_usec();
        unsigned secs;
        int r;

        for (;;) {
                if (flock(fd, LOCK_EX | LOCK_NB) >= 0)
                        return 0;
                if (errno != EINTR)
                        break;
        }
        if (errno != EWOULDBLOCK)
                return error_setf(-errno, _("Cannot lock %s: %m"), path);

        (void) disk_lock_holders(fd, &holders);
        log_info("%s is locked by %s; waiting up to %.0f s for it to be released.", path,
                 holders && *holders ? holders : "another program", (double) timeout_usec / 1e6);
        r = timeout_usec > 0 ? lock_in_child(fd, timeout_usec) : 0;
        if (r < 0)
                return error_setf(r, _("Cannot lock %s: %s"), path, strerror(-r));
        /* At the deadline, the child may have got the lock just before it was killed. */
        if (r > 0 || flock(fd, LOCK_EX | LOCK_NB) >= 0) {
                log_info("locked %s after waiting %.3f s", path, (double) (now_usec() - start) / 1e6);
                return 0;
        }

        holders = mfree(holders);
        (void) disk_lock_holders(fd, &holders);
        secs = (unsigned) ((now_usec() - start + 500000) / 1000000);
        if (holders && *holders)
                /* TRANSLATORS: the disk; the seconds waited; the holders, e.g. "PID 412 (systemd-udevd)". */
                return error_setf(-EBUSY, _("Cannot lock %s: another program has held it for %u s and still does: %s. Nothing was written."),
                                  path, secs, holders);
        /* TRANSLATORS: the disk; the seconds waited. */
        return error_setf(-EBUSY, _("Cannot lock %s: another program has held it for %u s and still does. Nothing was written."),
                          path, secs);
}
