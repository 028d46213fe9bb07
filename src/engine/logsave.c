/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <blkid/blkid.h>

#include "disk.h"
#include "error.h"
#include "fileio.h"
#include "i18n.h"
#include "log.h"
#include "logsave.h"
#include "mountns.h"

/* Disk refusals that mean "the system uses this disk": nothing of ours goes there, not even a
 * file. Being mounted is judged per partition (log_save_to_partition); being too small for an
 * install does not matter for a log. */
#define LOG_REFUSALS_SYSTEM (REFUSE_ROOT_DISK | REFUSE_LIVE_MEDIUM | REFUSE_BOOT_DISK | REFUSE_SWAP | REFUSE_HOLDERS)

DEFINE_TRIVIAL_CLEANUP_FUNC(blkid_probe, blkid_free_probe);

bool log_fstype_can_take_file(const char *fstype) {
        static const char *const ok[] = { "vfat", "exfat", "ext2", "ext3", "ext4", "btrfs", "xfs" };

        for (size_t i = 0; fstype && i < ELEMENTSOF(ok); i++)
                if (streq(fstype, ok[i]))
                        return true;
        return false;
}

/* The whole disk a block device number belongs to (itself when it is no partition), as its
 * device node. */
static int devt_disk_node(dev_t devt, char **ret) {
        char path[64];
        _cleanup_(freep) char *resolved = NULL;
        const char *base;
        char *s;

        snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/partition", major(devt), minor(devt));
        if (access(path, F_OK) == 0)
                snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/..", major(devt), minor(devt));
        else
                snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", major(devt), minor(devt));
        resolved = realpath(path, NULL);
        if (!resolved)
                return -errno;
        base = strrchr(resolved, '/');
        if (asprintf(&s, "/dev/%s", base ? base + 1 : resolved) < 0)
                return -ENOMEM;
        /* Kernel names use "!" where the node lives in a subdirectory of /dev (cciss!c0d0). */
        for (char *p = s; *p; p++)
                if (*p == '!')
                        *p = '/';
        *ret = s;
        return 0;
}

/* Whether disk d is exclude (a disk, a partition of one, or an image file behind a loop device). */
static bool disk_is_excluded(const Disk *d, const char *exclude) {
        _cleanup_(freep) char *exclude_disk = NULL;
        struct stat st, dst, bst;

        if (isempty(exclude) || stat(exclude, &st) < 0)
                return false;
        if (S_ISREG(st.st_mode))
                return d->backing_file && stat(d->backing_file, &bst) == 0 && bst.st_dev == st.st_dev &&
                       bst.st_ino == st.st_ino;
        if (!S_ISBLK(st.st_mode) || devt_disk_node(st.st_rdev, &exclude_disk) < 0)
                return false;
        return stat(exclude_disk, &st) == 0 && stat(d->devnode ?: d->path, &dst) == 0 && S_ISBLK(dst.st_mode) &&
               st.st_rdev == dst.st_rdev;
}

/* A partition can be read-only on its own (blockdev --setro), or through its disk (an SD card's
 * lock switch); the kernel answers for both. */
static bool node_is_read_only(const char *node) {
        _cleanup_(closep) int fd = open(node, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        int ro = 0;

        return fd >= 0 && ioctl(fd, BLKROGET, &ro) == 0 && ro;
}

/* The filesystem type on node as libblkid names it, or NULL when it finds none. */
static int probe_fstype(const char *node, char **ret) {
        _cleanup_(blkid_free_probep) blkid_probe pr = NULL;
        const char *type = NULL;
        int r;

        pr = blkid_new_probe_from_filename(node);
        if (!pr) {
                r = errno > 0 ? -errno : -EIO;
                return error_setf(r, _("Cannot look at %s: %s."), node, strerror(-r));
        }
        blkid_probe_enable_superblocks(pr, 1);
        blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
        blkid_probe_enable_partitions(pr, 1);
        r = blkid_do_safeprobe(pr);
        if (r == -2)
                /* TRANSLATORS: %s is the partition (/dev/sdb1). */
                return error_setf(-EMEDIUMTYPE, _("%s holds more than one filesystem signature; the log is not saved there."),
                                  node);
        if (r == 0 && blkid_probe_lookup_value(pr, "TYPE", &type, NULL) == 0 && type) {
                char *s = strdup(type);
                if (!s)
                        return -ENOMEM;
                *ret = s;
                return 0;
        }
        *ret = NULL;
        return 0;
}

/* ext2 and ext3 are served by the ext4 driver when the kernel has no driver of their own. */
static int mount_log_filesystem(const char *node, const char *fstype, const char *dir) {
        unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME;
        int r;

        if (mount(node, dir, fstype, flags, NULL) == 0)
                return 0;
        r = -errno;
        if (r == -ENODEV && (streq(fstype, "ext2") || streq(fstype, "ext3")) && mount(node, dir, "ext4", flags, NULL) == 0)
                return 0;
        /* TRANSLATORS: the partition (/dev/sdb1), its filesystem type (vfat), the system's reason. */
        return error_setf(r, _("Cannot mount %s (%s): %s."), node, fstype, strerror(-r));
}

static int copy_fd(int from, int to) {
        char buf[64 * 1024];

        for (;;) {
                ssize_t n = read(from, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return 0;
                for (ssize_t done = 0; done < n;) {
                        ssize_t k = write(to, buf + done, (size_t) (n - done));
                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                return -errno;
                        }
                        done += k;
                }
        }
}

/* Creates imprint-YYYYMMDD-HHMMSS.log (or …-2.log, … when that exists) in the mount's root,
 * never through a symlink, and copies the log into it. */
static int write_log_file(int log_fd, int dir_fd, const char *node, char **ret_name) {
        _cleanup_(closep) int fd = -EBADF;
        char stamp[32], name[64];
        time_t now = time(NULL);
        struct tm tm;
        int r;

        if (!localtime_r(&now, &tm))
                return -EINVAL;
        strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
        for (unsigned i = 1; i <= 100 && fd < 0; i++) {
                if (i == 1)
                        snprintf(name, sizeof(name), "imprint-%s.log", stamp);
                else
                        snprintf(name, sizeof(name), "imprint-%s-%u.log", stamp, i);
                fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (fd < 0 && errno != EEXIST) {
                        r = -errno;
                        /* TRANSLATORS: the file name, the partition (/dev/sdb1), the system's reason. */
                        return error_setf(r, _("Cannot create %s on %s: %s."), name, node, strerror(-r));
                }
        }
        if (fd < 0)
                return error_setf(-EEXIST, _("Cannot create %s on %s: %s."), name, node, strerror(EEXIST));

        r = copy_fd(log_fd, fd);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && fsync(dir_fd) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dir_fd, name, 0);
                /* TRANSLATORS: the partition (/dev/sdb1), the system's reason (No space left on device). */
                return error_setf(r, _("Cannot write the log to %s: %s."), node, strerror(-r));
        }
        *ret_name = strdup(name);
        return *ret_name ? 0 : -ENOMEM;
}

/* Mounts node on a fresh directory in a private namespace, writes the file, unmounts, removes the
 * directory: on every path out. */
static int save_to_mounted_filesystem(int log_fd, const char *node, const char *fstype, char **ret_name) {
        PrivateMounts pm = PRIVATE_MOUNTS_INIT;
        char dir[] = "/run/imprint-log.XXXXXX";
        _cleanup_(freep) char *name = NULL;
        bool mounted = false;
        int r;

        if (!mkdtemp(dir))
                return error_setf(-errno, _("Cannot make a mount point: %m"));

        r = private_mounts_enter(&pm);
        if (r >= 0)
                r = mount_log_filesystem(node, fstype, dir);
        if (r >= 0) {
                _cleanup_(closep) int dir_fd = -EBADF;

                mounted = true;
                log_info("Mounted %s (%s) on %s, nosuid,nodev,noexec, in a private mount namespace.", node, fstype, dir);
                dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (dir_fd < 0)
                        r = error_setf(-errno, _("Cannot write the log to %s: %s."), node, strerror(errno));
                else
                        r = write_log_file(log_fd, dir_fd, node, &name);
        }
        if (mounted && umount2(dir, 0) < 0) {
                int k = -errno;

                /* Detached at least, so that the directory can go; the namespace goes with us. */
                (void) umount2(dir, MNT_DETACH);
                if (r >= 0)
                        /* TRANSLATORS: the partition (/dev/sdb1), the system's reason. */
                        r = error_setf(k, _("Cannot unmount %s: %s."), node, strerror(-k));
        }
        private_mounts_leave(&pm);
        if (rmdir(dir) < 0)
                log_warning("Cannot remove %s: %m", dir);
        if (r < 0)
                return r;
        *ret_name = TAKE_PTR(name);
        return 0;
}

int log_save_to_partition(const char *log_path, const char *node, const char *exclude_disk, char **ret_where) {
        _cleanup_(disk_freep) Disk *d = NULL;
        _cleanup_(freep) char *disk_node = NULL, *mount_point = NULL, *fstype = NULL, *name = NULL, *where = NULL;
        _cleanup_(closep) int log_fd = -EBADF;
        struct stat st;
        int r;

        if (isempty(log_path) || isempty(node) || !ret_where)
                return -EINVAL;
        error_clear();

        if (stat(node, &st) < 0) {
                r = -errno;
                return error_setf(r, _("Cannot look at %s: %s."), node, strerror(-r));
        }
        if (!S_ISBLK(st.st_mode))
                /* TRANSLATORS: %s is what was named as the place for the log. */
                return error_setf(-ENOTBLK, _("%s is not a disk or partition; the log is saved only to a USB stick or SD card."),
                                  node);

        r = devt_disk_node(st.st_rdev, &disk_node);
        if (r < 0)
                return error_setf(r, _("Cannot look at %s: %s."), node, strerror(-r));
        r = disk_discover(disk_node, &(DiscoverOptions) { .probe_os = false }, &d);
        if (r < 0)
                return r;

        /* Never the disk being installed, whatever else is true of it. */
        if (disk_is_excluded(d, exclude_disk))
                /* TRANSLATORS: the partition (/dev/sdb1), then the install's target (/dev/sdb). */
                return error_setf(-EPERM, _("Refusing to save the log to %s: it is on %s, the disk being installed."), node,
                                  exclude_disk);
        if (d->refusals & LOG_REFUSALS_SYSTEM) {
                /* The engine's own in-use check, asked again now, names the reason. */
                r = disk_check_not_in_use(d);
                if (r < 0)
                        return r;
        }
        if (d->read_only || node_is_read_only(node))
                /* TRANSLATORS: %s is the partition (/dev/sdb1). */
                return error_setf(-EROFS, _("Refusing to save the log to %s: the disk is read-only."), node);

        r = disk_mount_point_of(st.st_rdev, &mount_point);
        if (r < 0)
                return r;
        if (mount_point)
                /* TRANSLATORS: the partition (/dev/sdb1), where it is mounted, the log's path, that mount point
                 * again. */
                return error_setf(-EALREADY,
                                  _("%s is already mounted on %s: copy the log there yourself (cp %s %s/), or unmount it and "
                                    "try again."),
                                  node, mount_point, log_path, mount_point);

        r = probe_fstype(node, &fstype);
        if (r < 0)
                return r;
        if (!fstype)
                /* TRANSLATORS: %s is the partition (/dev/sdb1). */
                return error_setf(-EMEDIUMTYPE, _("%s holds no filesystem, so the log cannot be saved there."), node);
        if (!log_fstype_can_take_file(fstype))
                /* TRANSLATORS: the partition (/dev/sdb1), then its filesystem type (swap, ntfs, crypto_LUKS). */
                return error_setf(-EMEDIUMTYPE,
                                  _("%s holds %s, not a filesystem the log can be saved to (FAT, exFAT, ext4, btrfs or XFS)."),
                                  node, fstype);

        log_fd = open(log_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (log_fd < 0) {
                r = -errno;
                /* TRANSLATORS: the log's path, the system's reason. */
                return error_setf(r, _("Cannot read the log %s: %s."), log_path, strerror(-r));
        }

        r = save_to_mounted_filesystem(log_fd, node, fstype, &name);
        if (r < 0)
                return r;
        /* TRANSLATORS: first %s is the file name, second the partition (/dev/sdb1). */
        if (asprintf(&where, _("The log was saved as %s on %s."), name, node) < 0)
                return -ENOMEM;
        log_info("Saved the log %s as %s.", log_path, where);
        *ret_where = TAKE_PTR(where);
        return 0;
}

/* USB sticks and card readers say they are removable, or sit on USB; an SD card in a laptop's own
 * slot is an mmcblk device whose card says "SD" (an eMMC soldered to the board says "MMC"). */
static bool disk_is_removable(const Disk *d) {
        _cleanup_(freep) char *type = NULL;

        if (d->kind != DISK_BLOCK)
                return false;
        if (d->removable || d->transport == TRANSPORT_USB)
                return true;
        return d->transport == TRANSPORT_MMC && read_sysfs_block_attr(d->name, "device/type", &type) >= 0 && type &&
               streq(strstrip(type), "SD");
}

int log_save_to_removable(const char *log_path, const char *exclude_disk, char **ret_where) {
        _cleanup_(disk_list_done) DiskList l = {};
        _cleanup_(freep) char *first_message = NULL;
        int r, first_error = 0;

        if (isempty(log_path) || !ret_where)
                return -EINVAL;
        error_clear();

        r = disk_list_discover(&(DiscoverOptions) { .probe_os = false }, &l);
        if (r < 0)
                return r;

        for (size_t i = 0; i < l.n_disks; i++) {
                const Disk *d = l.disks[i];

                if (!disk_is_removable(d) || disk_is_excluded(d, exclude_disk))
                        continue;
                /* A stick formatted without a partition table holds its filesystem on the disk. */
                for (size_t j = 0; j < MAX(d->n_partitions, (size_t) 1); j++) {
                        const char *node = d->n_partitions > 0 ? d->partitions[j].node : (d->pttype ? NULL : d->devnode);
                        const char *fstype = d->n_partitions > 0 ? d->partitions[j].fstype : NULL;

                        if (!node || (d->n_partitions > 0 && !log_fstype_can_take_file(fstype)))
                                continue;
                        r = log_save_to_partition(log_path, node, exclude_disk, ret_where);
                        if (r >= 0)
                                return 0;
                        if (r == -ENOMEM)
                                return r;
                        if (r == -EMEDIUMTYPE)
                                continue;
                        log_warning_errno(r, "Not saving the log to %s: %s", node, error_message() ?: strerror(-r));
                        if (first_error == 0) {
                                first_error = r;
                                first_message = strdup(error_message() ?: strerror(-r));
                                if (!first_message)
                                        return -ENOMEM;
                        }
                }
        }
        /* A stick was there and refused or failed: that says more than "none was found". */
        if (first_error < 0)
                return error_setf(first_error, "%s", first_message);
        return error_setf(-ENODEV, "%s",
                          _("No USB stick with a FAT, exFAT or ext4 filesystem was found. Plug one in and try again."));
}
