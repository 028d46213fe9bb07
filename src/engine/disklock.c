/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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

int disk_lock_exclusive(int fd, const char *path, uint64_t timeout_usec) {
        uint64_t start = now_usec(), sleep_usec = 2000;
        bool waited = false;

        /* flock() has no timeout: poll with LOCK_NB. The first retries come within milliseconds,
         * as a udev probe ends; later ones every 100 ms. */
        for (;;) {
                _cleanup_(freep) char *holders = NULL;
                uint64_t now;

                if (flock(fd, LOCK_EX | LOCK_NB) >= 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno != EWOULDBLOCK)
                        return error_setf(-errno, _("Cannot lock %s: %m"), path);

                now = now_usec();
                if (!waited || now - start >= timeout_usec)
                        (void) disk_lock_holders(fd, &holders);
                if (now - start >= timeout_usec) {
                        unsigned secs = (unsigned) ((now - start + 500000) / 1000000);

                        if (holders && *holders)
                                /* TRANSLATORS: the disk; the seconds waited; the holders, e.g. "PID 412 (systemd-udevd)". */
                                return error_setf(-EBUSY, _("Cannot lock %s: another program has held it for %u s and still does: %s. Nothing was written."),
                                                  path, secs, holders);
                        /* TRANSLATORS: the disk; the seconds waited. */
                        return error_setf(-EBUSY, _("Cannot lock %s: another program has held it for %u s and still does. Nothing was written."),
                                          path, secs);
                }
                if (!waited)
                        log_info("%s is locked by %s; waiting up to %.0f s for it to be released.", path,
                                 holders && *holders ? holders : "another program", (double) timeout_usec / 1e6);
                waited = true;

                if (sleep_usec > timeout_usec - (now - start))
                        sleep_usec = timeout_usec - (now - start);
                (void) usleep((useconds_t) sleep_usec);
                sleep_usec = sleep_usec * 2 > 100000 ? 100000 : sleep_usec * 2;
        }
        if (waited)
                log_info("locked %s after waiting %.3f s", path, (double) (now_usec() - start) / 1e6);
        return 0;
}
