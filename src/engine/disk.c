/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <blkid/blkid.h>

#include "disk.h"
#include "error.h"
#include "fileio.h"
#include "i18n.h"
#include "log.h"
#include "osprobe.h"
#include "record.h"
#include "size.h"
#include "string-table.h"

static const char *const transport_table[_TRANSPORT_MAX] = {
        [TRANSPORT_UNKNOWN] = "unknown",
        [TRANSPORT_NVME] = "nvme",
        [TRANSPORT_SATA] = "sata",
        [TRANSPORT_SCSI] = "scsi",
        [TRANSPORT_USB] = "usb",
        [TRANSPORT_VIRTIO] = "virtio",
        [TRANSPORT_MMC] = "mmc",
        [TRANSPORT_LOOP] = "loop",
        [TRANSPORT_FILE] = "file",
};
DEFINE_STRING_TABLE_LOOKUP(transport, Transport);

static const char *const disk_kind_table[_DISK_KIND_MAX] = {
        [DISK_BLOCK] = "block",
        [DISK_IMAGE_FILE] = "file",
};
DEFINE_STRING_TABLE_LOOKUP(disk_kind, DiskKind);

/* The short names disk_to_json() uses, one per DiskRefusal bit, in bit order. */
static const char *const refusal_names[] = {
        "mounted", "holders", "swap", "boot-disk", "root-disk",
        "live-medium", "read-only", "too-small", "not-whole-disk", "no-medium",
};

/* Where live systems mount the medium they booted from: Debian live-boot, dracut (Fedora), archiso,
 * casper (Ubuntu) and the base of dracut's overlay root. */
static const char *const live_medium_paths[] = {
        "/run/live/medium", "/run/initramfs/live", "/run/archiso/bootmnt", "/cdrom", "/run/rootfsbase",
};

/* systemd-boot's record of the ESP it was started from (Boot Loader Interface). */
#define LOADER_DEVICE_PART_UUID_EFIVAR \
        "/sys/firmware/efi/efivars/LoaderDevicePartUUID-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"

DEFINE_TRIVIAL_CLEANUP_FUNC(blkid_probe, blkid_free_probe);
DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

/* ---- small helpers ---------------------------------------------------------------------------- */

static char **disk_strv_free(char **l) {
        for (char **p = l; p && *p; p++)
                free(*p);
        free(l);
        return NULL;
}

static size_t strv_length(char *const *l) {
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

/* Appends s (taking ownership, also on failure) to a NULL-terminated list. */
static int strv_consume(char ***l, char *s) {
        size_t n = strv_length(*l);
        char **nl;

        if (!s)
                return -ENOMEM;
        nl = realloc(*l, (n + 2) * sizeof(char *));
        if (!nl) {
                free(s);
                return -ENOMEM;
        }
        nl[n] = s;
        nl[n + 1] = NULL;
        *l = nl;
        return 0;
}

/* An empty list rather than NULL, so that readers can iterate without checking. */
static int strv_ensure(char ***l) {
        if (*l)
                return 0;
        *l = calloc(1, sizeof(char *));
        return *l ? 0 : -ENOMEM;
}

static int cmp_string(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Adds one sentence to a refusal text, separated by a space. */
static int text_appendf(char **text, const char *fmt, ...) _printf_(2, 3);
static int text_appendf(char **text, const char *fmt, ...) {
        _cleanup_(freep) char *s = NULL;
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (k < 0) {
                s = NULL; /* undefined after a failure */
                return -ENOMEM;
        }
        if (*text && !(*text = strjoin_free(*text, " ")))
                return -ENOMEM;
        *text = strjoin_free(*text, s);
        return *text ? 0 : -ENOMEM;
}

/* mountinfo and /proc/swaps escape space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s) {
        char *w = s;

        for (char *r = s; *r;) {
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
                    r[3] <= '7') {
                        *w++ = (char) (((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
                        r += 4;
                } else
                        *w++ = *r++;
        }
        *w = 0;
}

static int parse_devt(const char *s, dev_t *ret) {
        unsigned ma, mi;

        if (sscanf(s, "%u:%u", &ma, &mi) != 2)
                return -EINVAL;
        *ret = makedev(ma, mi);
        return 0;
}

/* A sysfs attribute with surrounding whitespace removed; 0 with NULL when absent or empty.
 * SCSI pads vendor and model with blanks to their fixed field width. */
static int sysfs_string(const char *name, const char *attr, char **ret) {
        _cleanup_(freep) char *s = NULL;
        char *t;
        int r;

        r = read_sysfs_block_attr(name, attr, &s);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret = NULL;
                return 0;
        }
        t = strstrip(s);
        if (!*t) {
                *ret = NULL;
                return 0;
        }
        t = strdup(t);
        if (!t)
                return -ENOMEM;
        *ret = t;
        return 0;
}

static int sysfs_block_devt(const char *name, dev_t *ret) {
        _cleanup_(freep) char *s = NULL;
        int r;

        r = read_sysfs_block_attr(name, "dev", &s);
        if (r < 0)
                return r;
        return parse_devt(s, ret);
}

static bool sysfs_block_has(const char *name, const char *attr) {
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "/sys/class/block/%s/%s", name, attr);
        return access(path, F_OK) == 0;
}

/* The kernel name of a block device number (sda, sda1, dm-0, loop3p1). */
static int devt_to_name(dev_t devt, char **ret) {
        char link[64], target[PATH_MAX];
        const char *base;
        ssize_t n;
        char *s;

        snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(devt), minor(devt));
        n = readlink(link, target, sizeof(target) - 1);
        if (n < 0)
                return -errno;
        target[n] = 0;
        base = strrchr(target, '/');
        s = strdup(base ? base + 1 : target);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* The whole disk a partition belongs to: its parent directory in /sys/devices. */
static int partition_parent_name(const char *name, char **ret) {
        char path[PATH_MAX];
        _cleanup_(freep) char *resolved = NULL;
        const char *base;
        char *s;

        snprintf(path, sizeof(path), "/sys/class/block/%s/..", name);
        resolved = realpath(path, NULL);
        if (!resolved)
                return -errno;
        base = strrchr(resolved, '/');
        s = strdup(base ? base + 1 : resolved);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Kernel names use "!" where the node lives in a subdirectory of /dev (cciss!c0d0). */
static int name_to_devnode(const char *name, char **ret) {
        char *s;

        if (asprintf(&s, "/dev/%s", name) < 0)
                return -ENOMEM;
        for (char *p = s; *p; p++)
                if (*p == '!')
                        *p = '/';
        *ret = s;
        return 0;
}

static void lowercase(char *s) {
        for (; s && *s; s++)
                *s = (char) tolower((unsigned char) *s);
}

/* ---- /proc/self/mountinfo --------------------------------------------------------------------- */

typedef struct MountEntry {
        dev_t devt;        /* as mountinfo says; major 0 for btrfs, overlay, tmpfs, … */
        dev_t block;       /* the block device behind it, or 0 when there is none we can name */
        char *mount_point;
        char *source;
} MountEntry;

typedef struct MountTable {
        MountEntry *entries;
        size_t n;
} MountTable;

static void mount_table_done(MountTable *t) {
        for (size_t i = 0; i < t->n; i++) {
                free(t->entries[i].mount_point);
                free(t->entries[i].source);
        }
        free(t->entries);
        *t = (MountTable) {};
}

static int mount_table_read(MountTable *ret) {
        _cleanup_(mount_table_done) MountTable t = {};
        _cleanup_(freep) char *buf = NULL;
        char *save = NULL;
        int r;

        r = read_full_file("/proc/self/mountinfo", &buf, NULL);
        if (r < 0)
                return error_setf(r, _("Cannot read /proc/self/mountinfo to see what is mounted: %s."), strerror(-r));

        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                _cleanup_(freep) char *mp = NULL, *source = NULL;
                char devs[32], *sep;
                MountEntry *e;
                dev_t devt;

                /* "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw" (proc(5)) */
                if (sscanf(line, "%*s %*s %31s %*s %ms", devs, &mp) != 2 || parse_devt(devs, &devt) < 0)
                        continue;
                sep = strstr(line, " - ");
                if (!sep || sscanf(sep + 3, "%*s %ms", &source) != 1)
                        continue;
                unescape_octal(mp);
                unescape_octal(source);

                e = realloc(t.entries, (t.n + 1) * sizeof(MountEntry));
                if (!e)
                        return -ENOMEM;
                t.entries = e;
                e = &t.entries[t.n++];
                *e = (MountEntry) {
                        .devt = devt,
                        .block = major(devt) != 0 ? devt : 0,
                        .mount_point = TAKE_PTR(mp),
                        .source = TAKE_PTR(source),
                };

                /* btrfs and some others report an anonymous device number; the source names the
                 * real one. */
                if (major(devt) == 0 && strncmp(e->source, "/dev/", 5) == 0) {
                        struct stat st;
                        if (stat(e->source, &st) == 0 && S_ISBLK(st.st_mode))
                                e->block = st.st_rdev;
                }
        }

        *ret = t;
        t = (MountTable) {};
        return 0;
}

/* The last entry wins: a later mount on the same point hides the earlier one. */
static const MountEntry *mount_table_find(const MountTable *t, const char *mount_point) {
        for (size_t i = t->n; i > 0; i--)
                if (streq(t->entries[i - 1].mount_point, mount_point))
                        return &t->entries[i - 1];
        return NULL;
}

int disk_mount_point_of(dev_t devt, char **ret) {
        _cleanup_(mount_table_done) MountTable t = {};
        int r;

        r = mount_table_read(&t);
        if (r < 0)
                return r;
        for (size_t i = 0; i < t.n; i++)
                if (t.entries[i].block == devt) {
                        char *mp = strdup(t.entries[i].mount_point);
                        if (!mp)
                                return -ENOMEM;
                        *ret = mp;
                        return 0;
                }
        *ret = NULL;
        return 0;
}

/* ---- what backs the running system ------------------------------------------------------------ */

typedef struct FileId {
        dev_t dev;
        ino_t ino;
} FileId;

/* Every block device and file a mount point rests on, through partitions, dm/md slaves and loop
 * backing files. */
typedef struct Backing {
        dev_t *devs;
        size_t n_devs;
        FileId *files;
        size_t n_files;
} Backing;

static void backing_done(Backing *b) {
        free(b->devs);
        free(b->files);
        *b = (Backing) {};
}

static bool backing_has_dev(const Backing *b, dev_t devt) {
        for (size_t i = 0; i < b->n_devs; i++)
                if (b->devs[i] == devt)
                        return true;
        return false;
}

static bool backing_has_file(const Backing *b, dev_t dev, ino_t ino) {
        for (size_t i = 0; i < b->n_files; i++)
                if (b->files[i].dev == dev && b->files[i].ino == ino)
                        return true;
        return false;
}

static int backing_add_devt(Backing *b, const MountTable *mt, dev_t devt, unsigned depth) {
        _cleanup_(freep) char *name = NULL, *parent = NULL, *backing_file = NULL;
        char path[PATH_MAX];
        dev_t *nd;
        int r;

        /* dm on md on loop on a file on dm … ends long before this; the limit guards against
         * loops in what sysfs reports. */
        if (depth > 16 || devt == 0 || backing_has_dev(b, devt))
                return 0;

        nd = realloc(b->devs, (b->n_devs + 1) * sizeof(dev_t));
        if (!nd)
                return -ENOMEM;
        b->devs = nd;
        b->devs[b->n_devs++] = devt;

        if (major(devt) == 0) {
                /* An anonymous device (btrfs, overlay): follow the mounts that name a real one. */
                for (size_t i = 0; i < mt->n; i++)
                        if (mt->entries[i].devt == devt && mt->entries[i].block != 0) {
                                r = backing_add_devt(b, mt, mt->entries[i].block, depth + 1);
                                if (r < 0)
                                        return r;
                        }
                return 0;
        }

        r = devt_to_name(devt, &name);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return 0; /* not a block device sysfs knows */

        if (sysfs_block_has(name, "partition")) {
                dev_t pd;

                r = partition_parent_name(name, &parent);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0 && sysfs_block_devt(parent, &pd) >= 0) {
                        r = backing_add_devt(b, mt, pd, depth + 1);
                        if (r < 0)
                                return r;
                }
        }

        snprintf(path, sizeof(path), "/sys/class/block/%s/slaves", name);
        {
                _cleanup_(closedirp) DIR *dir = opendir(path);
                struct dirent *de;

                while (dir && (de = readdir(dir))) {
                        dev_t sd;

                        if (de->d_name[0] == '.')
                                continue;
                        if (sysfs_block_devt(de->d_name, &sd) < 0)
                                continue;
                        r = backing_add_devt(b, mt, sd, depth + 1);
                        if (r < 0)
                                return r;
                }
        }

        r = sysfs_string(name, "loop/backing_file", &backing_file);
        if (r < 0)
                return r;
        if (backing_file) {
                struct stat st;
                FileId *nf;

                if (stat(backing_file, &st) < 0)
                        return 0;
                nf = realloc(b->files, (b->n_files + 1) * sizeof(FileId));
                if (!nf)
                        return -ENOMEM;
                b->files = nf;
                b->files[b->n_files++] = (FileId) { st.st_dev, st.st_ino };

                /* The disk holding the file holds the system too (a live medium's squashfs). */
                r = backing_add_devt(b, mt, st.st_dev, depth + 1);
                if (r < 0)
                        return r;
        }

        return 0;
}

/* What the filesystem mounted exactly at mount_point rests on; empty when nothing is mounted
 * there (a plain /cdrom directory on the root filesystem is no live medium). */
static int backing_of_mount_point(const MountTable *mt, const char *mount_point, Backing *ret) {
        _cleanup_(backing_done) Backing b = {};
        const MountEntry *e;
        int r;

        e = mount_table_find(mt, mount_point);
        if (e) {
                r = backing_add_devt(&b, mt, e->block ?: e->devt, 0);
                if (r < 0)
                        return r;
        }
        *ret = b;
        b = (Backing) {};
        return 0;
}

/* ---- the devices that make up a disk, for the in-use checks ------------------------------------ */

typedef struct Target {
        dev_t devt;
        char *name;        /* kernel name: sda, sda1, loop3p1 */
} Target;

typedef struct Targets {
        Target *t;
        size_t n;
        bool via_loop;     /* image file: these are loop devices attached to it */
        bool have_file;
        FileId file;
} Targets;

static void targets_done(Targets *t) {
        for (size_t i = 0; i < t->n; i++)
                free(t->t[i].name);
        free(t->t);
        *t = (Targets) {};
}

static int targets_add(Targets *t, const char *name) {
        Target *nt;
        dev_t devt;
        char *s;

        if (sysfs_block_devt(name, &devt) < 0)
                return 0; /* vanished while we looked */
        s = strdup(name);
        if (!s)
                return -ENOMEM;
        nt = realloc(t->t, (t->n + 1) * sizeof(Target));
        if (!nt) {
                free(s);
                return -ENOMEM;
        }
        t->t = nt;
        t->t[t->n++] = (Target) { devt, s };
        return 0;
}

/* A whole disk and the partitions the kernel knows on it (which may differ from the table on disk
 * if it was rewritten and not yet re-read). */
static int targets_add_disk(Targets *t, const char *name) {
        _cleanup_(closedirp) DIR *dir = NULL;
        char path[PATH_MAX];
        struct dirent *de;
        int r;

        r = targets_add(t, name);
        if (r < 0)
                return r;

        snprintf(path, sizeof(path), "/sys/class/block/%s", name);
        dir = opendir(path);
        while (dir && (de = readdir(dir))) {
                char attr[NAME_MAX + 16];

                if (de->d_name[0] == '.' || strncmp(de->d_name, name, strlen(name)) != 0)
                        continue;
                snprintf(attr, sizeof(attr), "%s/partition", de->d_name);
                if (!sysfs_block_has(name, attr))
                        continue;
                r = targets_add(t, de->d_name);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int targets_collect(const Disk *d, Targets *ret) {
        _cleanup_(targets_done) Targets t = {};
        int r;

        if (d->kind == DISK_BLOCK) {
                if (!sysfs_block_has(d->name, "dev"))
                        return error_setf(-ENODEV, _("%s has disappeared (no longer in /sys/class/block)."), d->path);
                r = targets_add_disk(&t, d->name);
                if (r < 0)
                        return r;
        } else {
                _cleanup_(closedirp) DIR *dir = NULL;
                struct dirent *de;
                struct stat st;

                if (stat(d->path, &st) < 0) {
                        r = -errno;
                        return error_setf(r, _("Cannot look at %s: %s."), d->path, strerror(-r));
                }
                t.have_file = true;
                t.file = (FileId) { st.st_dev, st.st_ino };
                t.via_loop = true;

                /* A loop device attached to the image exposes it to the kernel: what is mounted from
                 * it is mounted from the file. */
                dir = opendir("/sys/class/block");
                while (dir && (de = readdir(dir))) {
                        _cleanup_(freep) char *backing = NULL;
                        struct stat bst;

                        if (strncmp(de->d_name, "loop", 4) != 0 || sysfs_block_has(de->d_name, "partition"))
                                continue;
                        r = sysfs_string(de->d_name, "loop/backing_file", &backing);
                        if (r < 0)
                                return r;
                        if (!backing || stat(backing, &bst) < 0)
                                continue;
                        if (bst.st_dev != st.st_dev || bst.st_ino != st.st_ino)
                                continue;
                        r = targets_add_disk(&t, de->d_name);
                        if (r < 0)
                                return r;
                }
        }

        *ret = t;
        t = (Targets) {};
        return 0;
}

static const Target *targets_find(const Targets *t, dev_t devt) {
        for (size_t i = 0; i < t->n; i++)
                if (t->t[i].devt == devt)
                        return &t->t[i];
        return NULL;
}

/* Loop devices attached to an image file are named as "a loop device on this image", so that the
 * user knows what to detach. The sentences spell it out: a translation needs the whole sentence. */

/* ---- the in-use checks ------------------------------------------------------------------------ */

/* Whether what is mounted on path rests (through partitions, dm/md slaves or loop backing files)
 * on one of the targets. Only block devices count: an image file living on the root filesystem
 * is just a file, unless the system runs from it through a loop device. */
static int mount_point_backed_by_targets(const Targets *t, const MountTable *mt, const char *path, bool *ret) {
        _cleanup_(backing_done) Backing b = {};
        bool hit = false;
        int r;

        r = backing_of_mount_point(mt, path, &b);
        if (r < 0)
                return r;
        if (t->have_file && backing_has_file(&b, t->file.dev, t->file.ino))
                hit = true;
        for (size_t j = 0; j < t->n && !hit; j++)
                hit = backing_has_dev(&b, t->t[j].devt);
        *ret = hit;
        return 0;
}

static int check_system_backing(const Targets *t, const MountTable *mt, unsigned *bits, char **text) {
        static const char *const system_paths[] = { "/", "/usr" };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(system_paths) && !(*bits & REFUSE_ROOT_DISK); i++) {
                bool hit;

                r = mount_point_backed_by_targets(t, mt, system_paths[i], &hit);
                if (r < 0)
                        return r;
                if (!hit)
                        continue;

                *bits |= REFUSE_ROOT_DISK;
                r = text_appendf(text, "%s", streq(system_paths[i], "/")
                                                       ? _("It holds the running system's root filesystem (/).")
                                                       : _("It holds the running system's /usr filesystem."));
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < ELEMENTSOF(live_medium_paths) && !(*bits & REFUSE_LIVE_MEDIUM); i++) {
                bool hit;

                r = mount_point_backed_by_targets(t, mt, live_medium_paths[i], &hit);
                if (r < 0)
                        return r;
                if (!hit)
                        continue;

                *bits |= REFUSE_LIVE_MEDIUM;
                r = text_appendf(text, _("It is the live medium this system runs from (mounted on %s)."), live_medium_paths[i]);
                if (r < 0)
                        return r;
        }

        return 0;
}

/* The efivar holds 4 bytes of attributes, then a UTF-16LE string without terminator. */
static int read_loader_device_part_uuid(char **ret) {
        _cleanup_(freep) char *buf = NULL;
        size_t size, n = 0;
        char *s;
        int r;

        r = read_full_file(LOADER_DEVICE_PART_UUID_EFIVAR, &buf, &size);
        if (r < 0)
                return r;
        if (size < 4)
                return -ENODATA;
        s = malloc((size - 4) / 2 + 1);
        if (!s)
                return -ENOMEM;
        for (size_t i = 4; i + 1 < size; i += 2) {
                if (buf[i] == 0 && buf[i + 1] == 0)
                        break;
                /* A UUID is ASCII; anything else means this is not what we expect. */
                if (buf[i + 1] != 0 || !isprint((unsigned char) buf[i])) {
                        free(s);
                        return -EBADMSG;
                }
                s[n++] = buf[i];
        }
        s[n] = 0;
        *ret = s;
        return 0;
}

int disk_loader_device_part_uuid(char **ret) {
        _cleanup_(freep) char *s = NULL;
        int r;

        r = read_loader_device_part_uuid(&s);
        if (r < 0)
                return r;
        for (char *c = s; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        *ret = TAKE_PTR(s);
        return 0;
}

static int check_boot_disk(const Disk *d, unsigned *bits, char **text) {
        _cleanup_(freep) char *uuid = NULL;
        int r;

        if (d->kind != DISK_BLOCK)
                return 0;

        r = read_loader_device_part_uuid(&uuid);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return 0; /* not EFI, or not booted by a loader that says */

        for (size_t i = 0; i < d->n_partitions; i++) {
                if (!d->partitions[i].uuid_string || strcasecmp(d->partitions[i].uuid_string, uuid) != 0)
                        continue;
                *bits |= REFUSE_BOOT_DISK;
                return text_appendf(text, _("The firmware booted from it (LoaderDevicePartUUID is partition %u)."),
                                    d->partitions[i].partno);
        }
        return 0;
}

static int check_mounted(const Targets *t, const MountTable *mt, unsigned *bits, char **text) {
        int r;

        for (size_t i = 0; i < t->n; i++) {
                const char *first = NULL;
                size_t count = 0;

                for (size_t j = 0; j < mt->n; j++)
                        if (mt->entries[j].block == t->t[i].devt) {
                                if (!first)
                                        first = mt->entries[j].mount_point;
                                count++;
                        }
                if (count == 0)
                        continue;

                _cleanup_(freep) char *node = NULL, *more = NULL;
                r = name_to_devnode(t->t[i].name, &node);
                if (r < 0)
                        return r;
                if (count == 2)
                        more = strdup(_(" and one more place"));
                else if (count > 2 && asprintf(&more, ngettext(" and %zu more place", " and %zu more places", count - 1),
                                               count - 1) < 0)
                        more = NULL;
                if (count > 1 && !more)
                        return -ENOMEM;

                *bits |= REFUSE_MOUNTED;
                if (t->via_loop)
                        /* TRANSLATORS: the loop device, where it is mounted, then " and one more place" (or nothing). */
                        r = text_appendf(text, _("%s (a loop device on this image) is mounted on %s%s."), node, first, more ?: "");
                else
                        /* TRANSLATORS: the disk or partition, where it is mounted, then " and one more place" (or nothing). */
                        r = text_appendf(text, _("%s is mounted on %s%s."), node, first, more ?: "");
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_holders(const Targets *t, unsigned *bits, char **text) {
        int r;

        for (size_t i = 0; i < t->n; i++) {
                _cleanup_(closedirp) DIR *dir = NULL;
                char path[PATH_MAX];
                struct dirent *de;

                snprintf(path, sizeof(path), "/sys/class/block/%s/holders", t->t[i].name);
                dir = opendir(path);
                while (dir && (de = readdir(dir))) {
                        _cleanup_(freep) char *node = NULL, *dm_name = NULL, *holder = NULL;
                        const char *kind;

                        if (de->d_name[0] == '.')
                                continue;

                        if (strncmp(de->d_name, "dm-", 3) == 0) {
                                kind = "device-mapper";
                                r = sysfs_string(de->d_name, "dm/name", &dm_name);
                                if (r < 0)
                                        return r;
                        } else if (strncmp(de->d_name, "md", 2) == 0)
                                kind = "RAID";
                        else if (strncmp(de->d_name, "bcache", 6) == 0)
                                kind = "bcache";
                        else
                                kind = _("kernel");

                        r = name_to_devnode(t->t[i].name, &node);
                        if (r < 0)
                                return r;
                        if (dm_name ? asprintf(&holder, "%s (%s)", de->d_name, dm_name) < 0 : !(holder = strdup(de->d_name))) {
                                holder = NULL;
                                return -ENOMEM;
                        }

                        *bits |= REFUSE_HOLDERS;
                        if (t->via_loop)
                                /* TRANSLATORS: the holder (dm-0), the loop device, the kind (device-mapper, RAID, kernel). */
                                r = text_appendf(text, _("%s is using %s, a loop device on this image (%s holder)."), holder, node,
                                                 kind);
                        else
                                /* TRANSLATORS: the holder (dm-0), the disk or partition, the kind (device-mapper, RAID, kernel). */
                                r = text_appendf(text, _("%s is using %s (%s holder)."), holder, node, kind);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int check_swap(const Disk *d, const Targets *t, unsigned *bits, char **text) {
        _cleanup_(freep) char *buf = NULL;
        char *save = NULL, *line;
        int r;

        r = read_full_file("/proc/swaps", &buf, NULL);
        if (r == -ENOENT)
                return 0; /* kernel without swap support */
        if (r < 0)
                return error_setf(r, _("Cannot read /proc/swaps to see where swap is active: %s."), strerror(-r));

        /* The first line is the column header. */
        line = strtok_r(buf, "\n", &save);
        while ((line = strtok_r(NULL, "\n", &save))) {
                char *end = line + strcspn(line, " \t");
                const Target *x;
                struct stat st;

                *end = 0;
                unescape_octal(line);
                if (stat(line, &st) < 0)
                        continue;

                if (S_ISBLK(st.st_mode) && (x = targets_find(t, st.st_rdev))) {
                        _cleanup_(freep) char *node = NULL;

                        r = name_to_devnode(x->name, &node);
                        if (r < 0)
                                return r;
                        *bits |= REFUSE_SWAP;
                        r = text_appendf(text, t->via_loop ? _("swap is active on %s, a loop device on this image.")
                                                           : _("swap is active on %s."),
                                         node);
                } else if (S_ISREG(st.st_mode) && t->have_file && st.st_dev == t->file.dev && st.st_ino == t->file.ino) {
                        *bits |= REFUSE_SWAP;
                        r = text_appendf(text, _("swap is active on %s."), d->path);
                } else
                        continue;
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The checks whose answer changes while we run: anything may be mounted or activated after
 * discovery, so the executor asks again right before writing. */
static int disk_compute_in_use_full(const Disk *d, bool boot_disk_allowed, unsigned *ret_bits, char **ret_text) {
        _cleanup_(mount_table_done) MountTable mt = {};
        _cleanup_(targets_done) Targets t = {};
        _cleanup_(freep) char *text = NULL;
        unsigned bits = 0;
        int r;

        r = mount_table_read(&mt);
        if (r < 0)
                return r;
        r = targets_collect(d, &t);
        if (r < 0)
                return r;

        r = check_system_backing(&t, &mt, &bits, &text);
        if (r < 0)
                return r;
        if (!boot_disk_allowed) {
                r = check_boot_disk(d, &bits, &text);
                if (r < 0)
                        return r;
        }
        r = check_mounted(&t, &mt, &bits, &text);
        if (r < 0)
                return r;
        r = check_holders(&t, &bits, &text);
        if (r < 0)
                return r;
        r = check_swap(d, &t, &bits, &text);
        if (r < 0)
                return r;

        *ret_bits = bits;
        *ret_text = TAKE_PTR(text);
        return 0;
}

static int disk_compute_in_use(const Disk *d, unsigned *ret_bits, char **ret_text) {
        return disk_compute_in_use_full(d, false, ret_bits, ret_text);
}

static int disk_compute_refusals(Disk *d) {
        _cleanup_(freep) char *text = NULL;
        unsigned bits = 0;
        int r;

        r = disk_compute_in_use(d, &bits, &text);
        if (r < 0)
                return r;
        r = 0;

        if (d->read_only) {
                bits |= REFUSE_READ_ONLY;
                r = text_appendf(&text, _("It is read-only."));
                if (r < 0)
                        return r;
        }

        if (d->kind == DISK_BLOCK && d->size == 0) {
                bits |= REFUSE_NO_MEDIUM;
                r = text_appendf(&text, _("There is no medium in it (its size is 0)."));
        } else if (d->size == 0) {
                /* The planner lays out partitions for the size it sees; growing the file later
                 * would leave the backup GPT in the middle. */
                bits |= REFUSE_TOO_SMALL;
                r = text_appendf(&text, _("It is an empty file; create it with its final size first (truncate -s 20G %s), "
                                 "imprint needs at least %s."), d->path, FORMAT_BYTES(DISK_MIN_SIZE));
        } else if (d->size < DISK_MIN_SIZE) {
                bits |= REFUSE_TOO_SMALL;
                r = text_appendf(&text, _("It is too small: %s, imprint needs at least %s."), FORMAT_BYTES(d->size),
                                 FORMAT_BYTES(DISK_MIN_SIZE));
        }
        if (r < 0)
                return r;

        d->refusals = bits;
        free(d->refusal_text);
        d->refusal_text = TAKE_PTR(text);
        return 0;
}

bool disk_is_usable(const Disk *d) {
        return d && d->refusals == 0;
}

int disk_check_not_in_use_for_reset(const Disk *d) {
        _cleanup_(freep) char *text = NULL;
        unsigned bits = 0;
        int r;

        if (!d)
                return -EINVAL;
        r = disk_compute_in_use_full(d, true, &bits, &text);
        if (r < 0)
                return r;
        if (bits != 0)
                return error_setf(-EBUSY, _("Refusing to write to %s: %s"), d->path, text ?: _("it is in use."));
        return 0;
}

int disk_check_not_in_use(const Disk *d) {
        _cleanup_(freep) char *text = NULL;
        unsigned bits = 0;
        int r;

        if (!d)
                return -EINVAL;

        r = disk_compute_in_use(d, &bits, &text);
        if (r < 0)
                return r;
        if (bits != 0)
                return error_setf(-EBUSY, _("Refusing to write to %s: %s"), d->path, text ?: _("it is in use."));
        return 0;
}

/* ---- facts about a block device --------------------------------------------------------------- */

/* udev's database holds what udev rules learned from the device (ATA IDENTIFY, USB descriptors),
 * often better than what sysfs exposes. Lines are "E:KEY=VALUE". */
static int udev_db_get(const char *db, const char *key, char **ret) {
        size_t klen = strlen(key);

        for (const char *l = db; l && *l;) {
                const char *eol = strchrnul(l, '\n');

                if ((size_t) (eol - l) > klen + 3 && strncmp(l, "E:", 2) == 0 && strncmp(l + 2, key, klen) == 0 &&
                    l[2 + klen] == '=') {
                        char *s = strndup(l + 3 + klen, (size_t) (eol - l - 3 - (ptrdiff_t) klen));
                        if (!s)
                                return -ENOMEM;
                        *ret = s;
                        return 0;
                }
                l = *eol ? eol + 1 : eol;
        }
        *ret = NULL;
        return 0;
}

/* ID_MODEL_ENC and ID_VENDOR_ENC keep the blanks the plain keys turn into "_", escaped as \x20. */
static char *udev_decode(char *s) {
        char *w = s;

        for (char *r = s; *r;) {
                unsigned v;

                if (r[0] == '\\' && r[1] == 'x' && isxdigit((unsigned char) r[2]) && isxdigit((unsigned char) r[3]) &&
                    sscanf(r + 2, "%2x", &v) == 1) {
                        *w++ = (char) v;
                        r += 4;
                } else
                        *w++ = *r++;
        }
        *w = 0;
        return s;
}

static int set_stripped(char **field, char *value) {
        char *t;

        if (!value)
                return 0;
        t = strstrip(value);
        if (!*t) {
                free(value);
                return 0;
        }
        t = strdup(t);
        free(value);
        if (!t)
                return -ENOMEM;
        free(*field);
        *field = t;
        return 0;
}

static int disk_read_udev(Disk *d, dev_t devt) {
        _cleanup_(freep) char *db = NULL, *bus = NULL;
        char path[64];
        char *v;
        int r;

        snprintf(path, sizeof(path), "/run/udev/data/b%u:%u", major(devt), minor(devt));
        r = read_full_file(path, &db, NULL);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return 0; /* no udev here */

        r = udev_db_get(db, "ID_SERIAL_SHORT", &v);
        if (r < 0)
                return r;
        r = set_stripped(&d->serial, v);
        if (r < 0)
                return r;

        r = udev_db_get(db, "ID_MODEL_ENC", &v);
        if (r < 0)
                return r;
        if (!v) {
                r = udev_db_get(db, "ID_MODEL", &v);
                if (r < 0)
                        return r;
                for (char *p = v; p && *p; p++)
                        if (*p == '_')
                                *p = ' ';
        }
        r = set_stripped(&d->model, v ? udev_decode(v) : NULL);
        if (r < 0)
                return r;

        r = udev_db_get(db, "ID_VENDOR_ENC", &v);
        if (r < 0)
                return r;
        r = set_stripped(&d->vendor, v ? udev_decode(v) : NULL);
        if (r < 0)
                return r;

        r = udev_db_get(db, "ID_BUS", &bus);
        if (r < 0)
                return r;
        if (streq_ptr(bus, "ata"))
                d->transport = TRANSPORT_SATA;
        else if (streq_ptr(bus, "usb"))
                d->transport = TRANSPORT_USB;
        else if (streq_ptr(bus, "nvme"))
                d->transport = TRANSPORT_NVME;
        else if (streq_ptr(bus, "scsi"))
                d->transport = TRANSPORT_SCSI;
        return 0;
}

static Transport transport_from_sysfs(const char *name) {
        _cleanup_(freep) char *resolved = NULL;
        char path[PATH_MAX];

        if (strncmp(name, "loop", 4) == 0)
                return TRANSPORT_LOOP;

        snprintf(path, sizeof(path), "/sys/class/block/%s/device", name);
        resolved = realpath(path, NULL);
        if (!resolved)
                return TRANSPORT_UNKNOWN;

        /* USB first: a USB bridge shows up as a SCSI host below the USB device. */
        if (strstr(resolved, "/usb"))
                return TRANSPORT_USB;
        if (strstr(resolved, "/nvme"))
                return TRANSPORT_NVME;
        if (strstr(resolved, "/mmc"))
                return TRANSPORT_MMC;
        if (strstr(resolved, "/virtio"))
                return TRANSPORT_VIRTIO;
        if (strstr(resolved, "/ata"))
                return TRANSPORT_SATA;
        return TRANSPORT_SCSI;
}

/* SCSI INQUIRY page 0x80 (Unit Serial Number, SPC-4 7.8.15): 4 header bytes, byte 3 the length. */
static int serial_from_vpd_pg80(const char *name, char **ret) {
        _cleanup_(freep) char *buf = NULL;
        char path[PATH_MAX];
        size_t size, len;
        char *s, *t;

        snprintf(path, sizeof(path), "/sys/class/block/%s/device/vpd_pg80", name);
        if (read_full_file(path, &buf, &size) < 0 || size <= 4) {
                *ret = NULL;
                return 0;
        }
        len = MIN((size_t) (unsigned char) buf[3], size - 4);
        s = strndup(buf + 4, len);
        if (!s)
                return -ENOMEM;
        for (char *p = s; *p; p++)
                if (!isprint((unsigned char) *p))
                        *p = ' ';
        t = strstrip(s);
        if (!*t) {
                free(s);
                *ret = NULL;
                return 0;
        }
        memmove(s, t, strlen(t) + 1);
        *ret = s;
        return 0;
}

/* PCI and virtio report "0x1af4" as vendor: a number says nothing to the person choosing a disk. */
static bool vendor_is_numeric(const char *s) {
        return s && strncmp(s, "0x", 2) == 0;
}

static int disk_read_by_id(Disk *d, dev_t devt) {
        _cleanup_(closedirp) DIR *dir = NULL;
        struct dirent *de;
        int r;

        dir = opendir("/dev/disk/by-id");
        if (!dir)
                return 0; /* no udev */

        while ((de = readdir(dir))) {
                struct stat st;
                char *s;

                if (de->d_name[0] == '.')
                        continue;
                if (fstatat(dirfd(dir), de->d_name, &st, 0) < 0 || !S_ISBLK(st.st_mode) || st.st_rdev != devt)
                        continue;
                if (asprintf(&s, "/dev/disk/by-id/%s", de->d_name) < 0)
                        return -ENOMEM;
                r = strv_consume(&d->by_id, s);
                if (r < 0)
                        return r;
        }

        if (d->by_id)
                qsort(d->by_id, strv_length(d->by_id), sizeof(char *), cmp_string);
        return 0;
}

static int disk_read_block_facts(Disk *d, dev_t devt) {
        uint64_t v;
        int r;

        r = name_to_devnode(d->name, &d->devnode);
        if (r < 0)
                return r;

        if (read_sysfs_block_u64(d->name, "size", &v) >= 0)
                d->size = v * 512; /* always 512-byte units, whatever the sector size */
        d->logical_sector_size = read_sysfs_block_u64(d->name, "queue/logical_block_size", &v) >= 0 ? (uint32_t) v : 512;
        d->physical_sector_size =
                read_sysfs_block_u64(d->name, "queue/physical_block_size", &v) >= 0 ? (uint32_t) v : d->logical_sector_size;
        if (read_sysfs_block_u64(d->name, "queue/optimal_io_size", &v) >= 0)
                d->optimal_io_size = v;
        if (read_sysfs_block_u64(d->name, "queue/rotational", &v) >= 0)
                d->rotational = v != 0;
        if (read_sysfs_block_u64(d->name, "removable", &v) >= 0)
                d->removable = v != 0;
        if (read_sysfs_block_u64(d->name, "ro", &v) >= 0)
                d->read_only = v != 0;
        if (read_sysfs_block_u64(d->name, "diskseq", &v) >= 0)
                d->diskseq = v;

        d->transport = transport_from_sysfs(d->name);

        r = sysfs_string(d->name, "device/vendor", &d->vendor);
        if (r < 0)
                return r;
        if (vendor_is_numeric(d->vendor)) {
                free(d->vendor);
                d->vendor = NULL;
        }
        r = sysfs_string(d->name, "device/model", &d->model);
        if (r < 0)
                return r;
        if (!d->model && d->transport == TRANSPORT_MMC) {
                r = sysfs_string(d->name, "device/name", &d->model);
                if (r < 0)
                        return r;
        }

        /* NVMe and MMC put the serial on the controller or card, virtio on the disk itself, SCSI
         * and SATA only in the VPD page. */
        r = sysfs_string(d->name, "device/serial", &d->serial);
        if (r < 0)
                return r;
        if (!d->serial) {
                r = sysfs_string(d->name, "serial", &d->serial);
                if (r < 0)
                        return r;
        }
        if (!d->serial) {
                r = serial_from_vpd_pg80(d->name, &d->serial);
                if (r < 0)
                        return r;
        }

        r = sysfs_string(d->name, "loop/backing_file", &d->backing_file);
        if (r < 0)
                return r;

        r = disk_read_udev(d, devt);
        if (r < 0)
                return r;

        return disk_read_by_id(d, devt);
}

/* ---- partitions ------------------------------------------------------------------------------- */

static void partition_done(DiskPartition *p) {
        free(p->node);
        free(p->type_string);
        free(p->uuid_string);
        free(p->label);
        free(p->fstype);
        free(p->fslabel);
        free(p->fsuuid);
        free(p->os);
        *p = (DiskPartition) {};
}

static void disk_clear_partitions(Disk *d) {
        for (size_t i = 0; i < d->n_partitions; i++)
                partition_done(&d->partitions[i]);
        free(d->partitions);
        d->partitions = NULL;
        d->n_partitions = 0;
        free(d->pttype);
        free(d->ptuuid);
        d->pttype = d->ptuuid = NULL;
        d->installed = disk_strv_free(d->installed);
        d->imprint_installed = d->reset_interrupted = false;
        d->last_reset = mfree(d->last_reset);
        if (d->last_reset_record)
                json_object_put(d->last_reset_record);
        d->last_reset_record = NULL;
}

static int dup_or_null(const char *s, char **ret) {
        char *c = NULL;

        if (!isempty(s) && !(c = strdup(s)))
                return -ENOMEM;
        *ret = c;
        return 0;
}

/* Filesystem signature inside [offset, offset+size) of the open disk, read with a probe of its
 * own so that the partition table probe's results stay untouched. */
static int probe_filesystem(int fd, uint64_t offset, uint64_t size, char **ret_type, char **ret_label, char **ret_uuid) {
        _cleanup_(blkid_free_probep) blkid_probe pr = NULL;
        _cleanup_(freep) char *type = NULL, *label = NULL, *uuid = NULL;
        const char *v;
        int r;

        pr = blkid_new_probe();
        if (!pr)
                return -ENOMEM;
        if (blkid_probe_set_device(pr, fd, (blkid_loff_t) offset, (blkid_loff_t) size) < 0)
                return negative_errno();
        blkid_probe_enable_partitions(pr, 0);
        blkid_probe_enable_superblocks(pr, 1);
        blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID | BLKID_SUBLKS_TYPE);

        errno = 0;
        r = blkid_do_safeprobe(pr);
        if (r == -2) {
                /* Two signatures (a stale one left by an earlier mkfs): we cannot tell which is real. */
                r = dup_or_null("ambivalent", &type);
                if (r < 0)
                        return r;
        } else if (r < 0)
                return negative_errno();
        else if (r == 0) {
                if (blkid_probe_lookup_value(pr, "TYPE", &v, NULL) == 0 && (r = dup_or_null(v, &type)) < 0)
                        return r;
                if (blkid_probe_lookup_value(pr, "LABEL", &v, NULL) == 0 && (r = dup_or_null(v, &label)) < 0)
                        return r;
                if (blkid_probe_lookup_value(pr, "UUID", &v, NULL) == 0 && (r = dup_or_null(v, &uuid)) < 0)
                        return r;
        }

        *ret_type = TAKE_PTR(type);
        *ret_label = TAKE_PTR(label);
        *ret_uuid = TAKE_PTR(uuid);
        return 0;
}

static int partition_fill(Disk *d, int fd, blkid_partition bp, bool gpt, DiskPartition *p) {
        const char *s;
        int r;

        p->partno = (unsigned) blkid_partition_get_partno(bp);
        /* libblkid counts in 512-byte units regardless of the sector size. */
        p->start = (uint64_t) blkid_partition_get_start(bp) * 512;
        p->size = (uint64_t) blkid_partition_get_size(bp) * 512;
        p->flags = blkid_partition_get_flags(bp);

        s = blkid_partition_get_type_string(bp);
        if (s) {
                p->type_string = strdup(s);
                if (!p->type_string)
                        return -ENOMEM;
        } else if (asprintf(&p->type_string, "0x%x", (unsigned) blkid_partition_get_type(bp)) < 0) {
                p->type_string = NULL;
                return -ENOMEM;
        }
        if (gpt && sd_id128_from_string(p->type_string, &p->type_uuid) >= 0)
                p->dps = dps_type_from_uuid(p->type_uuid);

        r = dup_or_null(blkid_partition_get_uuid(bp), &p->uuid_string);
        if (r < 0)
                return r;
        if (gpt && p->uuid_string)
                (void) sd_id128_from_string(p->uuid_string, &p->uuid);

        r = dup_or_null(blkid_partition_get_name(bp), &p->label);
        if (r < 0)
                return r;

        if (d->kind == DISK_BLOCK) {
                r = disk_partition_node(d, p->partno, &p->node);
                if (r < 0)
                        return r;
        }

        /* An extended partition holds the chain of logical partitions, not a filesystem. */
        if (blkid_partition_is_extended(bp) || p->size == 0)
                return 0;

        r = probe_filesystem(fd, p->start, p->size, &p->fstype, &p->fslabel, &p->fsuuid);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                log_debug_errno(r, "Cannot probe partition %u of %s for a filesystem.", p->partno, d->path);
        return 0;
}

int disk_read_partitions(Disk *d) {
        _cleanup_(blkid_free_probep) blkid_probe pr = NULL;
        _cleanup_(closep) int fd = -EBADF;
        const char *path, *s;
        blkid_partlist pl;
        blkid_parttable table;
        DiskPartition *parts;
        bool gpt;
        int n, r;

        if (!d)
                return -EINVAL;

        disk_clear_partitions(d);
        r = strv_ensure(&d->installed);
        if (r < 0)
                return r;

        path = d->kind == DISK_BLOCK ? d->devnode : d->path;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                if ((r == -EACCES || r == -EPERM) && geteuid() != 0)
                        return error_setf(r, _("Cannot open %s to read its partition table: %s (imprint needs root for disks)."),
                                          path, strerror(-r));
                return error_setf(r, _("Cannot open %s to read its partition table: %s."), path, strerror(-r));
        }

        pr = blkid_new_probe();
        if (!pr)
                return -ENOMEM;
        errno = 0;
        if (blkid_probe_set_device(pr, fd, 0, 0) < 0) {
                r = negative_errno();
                return error_setf(r, _("Cannot read %s: %s."), path, strerror(-r));
        }
        blkid_probe_enable_superblocks(pr, 0);
        blkid_probe_enable_partitions(pr, 1);
        blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS);

        errno = 0;
        r = blkid_do_fullprobe(pr);
        if (r < 0) {
                r = negative_errno();
                return error_setf(r, _("Cannot read the partition table of %s: %s."), path, strerror(-r));
        }

        pl = blkid_probe_get_partitions(pr);
        table = pl ? blkid_partlist_get_table(pl) : NULL;
        if (!table) {
                _cleanup_(freep) char *type = NULL, *label = NULL, *uuid = NULL;
                char *line;

                /* No partition table. A filesystem on the whole disk is still something the user
                 * would lose. */
                r = probe_filesystem(fd, 0, 0, &type, &label, &uuid);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0 && type) {
                        if (label)
                                /* TRANSLATORS: what a disk without partition table holds: the filesystem type and label. */
                                r = asprintf(&line, _("whole-disk %s filesystem \"%s\""), type, label);
                        else
                                r = asprintf(&line, _("whole-disk %s filesystem"), type);
                        if (r < 0)
                                return -ENOMEM;
                        r = strv_consume(&d->installed, line);
                        if (r < 0)
                                return r;
                }
                return 0;
        }

        s = blkid_parttable_get_type(table);
        r = dup_or_null(s, &d->pttype);
        if (r < 0)
                return r;
        r = dup_or_null(blkid_parttable_get_id(table), &d->ptuuid);
        if (r < 0)
                return r;
        gpt = streq_ptr(d->pttype, "gpt");

        n = blkid_partlist_numof_partitions(pl);
        if (n <= 0)
                return 0;
        parts = calloc((size_t) n, sizeof(DiskPartition));
        if (!parts)
                return -ENOMEM;
        d->partitions = parts;

        for (int i = 0; i < n; i++) {
                blkid_partition bp = blkid_partlist_get_partition(pl, i);

                if (!bp)
                        continue;
                /* Counted before filling, so that disk_clear_partitions() frees a half-filled one. */
                r = partition_fill(d, fd, bp, gpt, &d->partitions[d->n_partitions++]);
                if (r < 0)
                        return r;
        }

        return 0;
}

int disk_partition_node(const Disk *d, unsigned partno, char **ret) {
        _cleanup_(freep) char *node = NULL;
        size_t len;
        char *s;
        int r;

        if (!d || !d->name || partno == 0)
                return -EINVAL;
        if (d->kind != DISK_BLOCK)
                return error_setf(-EOPNOTSUPP, _("%s is an image file; its partitions have no device nodes."), d->path);

        r = name_to_devnode(d->name, &node);
        if (r < 0)
                return r;
        /* The kernel's rule (block/partitions/core.c): a "p" separates the number when the disk's
         * name ends in a digit. */
        len = strlen(node);
        if (asprintf(&s, "%s%s%u", node, len > 0 && isdigit((unsigned char) node[len - 1]) ? "p" : "", partno) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* ---- what is installed ------------------------------------------------------------------------ */

static bool partition_is_esp(const Disk *d, const DiskPartition *p) {
        if (p->dps)
                return p->dps->role == ROLE_ESP;
        return streq_ptr(d->pttype, "dos") && streq_ptr(p->type_string, "0xef");
}

static int partition_installed_line(const Disk *d, const DiskPartition *p, char **ret) {
        int k;

        /* What a disk holds, shown under it ("holds: …"). %s is what osprobe_partition() found:
         * an OS name, boot loaders, or what the data is. */
        if (streq_ptr(p->fstype, "crypto_LUKS"))
                k = asprintf(ret, _("LUKS-encrypted partition %u"), p->partno);
        else if (streq_ptr(p->fstype, "BitLocker"))
                k = asprintf(ret, _("BitLocker-encrypted partition %u"), p->partno);
        else if (partition_is_esp(d, p))
                k = asprintf(ret, _("%s on the ESP (partition %u)"), p->os, p->partno);
        else if (p->dps && p->dps->role == ROLE_XBOOTLDR)
                k = asprintf(ret, _("%s on the XBOOTLDR partition (partition %u)"), p->os, p->partno);
        else if (p->fstype && !strcasestr(p->os, p->fstype))
                /* TRANSLATORS: what the partition holds, its number, its filesystem type. */
                k = asprintf(ret, _("%s on partition %u (%s)"), p->os, p->partno, p->fstype);
        else
                k = asprintf(ret, _("%s on partition %u"), p->os, p->partno);
        return k < 0 ? -ENOMEM : 0;
}

/* The records imprint keeps on the ESP of a disk it installed: whether there is an install record,
 * and the newest reset's audit record. */
static int disk_probe_records(Disk *d) {
        char saved[2048] = "";
        int saved_code = error_code();

        /* Reading the records is looking, not failing: whatever error a caller holds stays. */
        if (error_message())
                snprintf(saved, sizeof(saved), "%s", error_message());
        for (size_t i = 0; i < d->n_partitions; i++) {
                const DiskPartition *p = &d->partitions[i];
                _cleanup_(install_record_freep) InstallRecord *rec = NULL;
                json_object *audit = NULL, *st = NULL;
                FsLocation esp;
                int r;

                if (!p->dps || p->dps->role != ROLE_ESP || !streq_ptr(p->fstype, "vfat"))
                        continue;
                esp = (FsLocation) { .disk = d->path, .node = d->kind == DISK_BLOCK ? p->node : NULL, .offset = p->start, .fstype = "vfat" };
                r = record_install_read(&esp, &rec);
                if (r == -ENOMEM)
                        return r;
                d->imprint_installed = r >= 0;
                r = record_reset_last(&esp, &audit, NULL);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0) {
                        d->reset_interrupted = json_object_object_get_ex(audit, "status", &st) &&
                                               streq_ptr(json_object_get_string(st), "running");
                        (void) record_reset_summary(audit, &d->last_reset);
                        d->last_reset_record = audit;
                }
                break;
        }
        error_clear();
        if (saved[0])
                (void) error_setf(saved_code, "%s", saved);
        return 0;
}

static int disk_probe_installed(Disk *d) {
        int r;

        r = disk_probe_records(d);
        if (r < 0)
                return r;
        if (d->incomplete_install) {
                char *line = strdup(d->reset_interrupted
                                    ? _("interrupted reset: root is erased and the system does not start; run the reset again")
                                    : _("incomplete install: imprint was interrupted before it finished; install again"));

                if (!line)
                        return -ENOMEM;
                r = strv_consume(&d->installed, line);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < d->n_partitions; i++) {
                DiskPartition *p = &d->partitions[i];
                char *line;

                free(p->os);
                p->os = NULL;
                /* What an interrupted install left is no installed system, whatever it holds. */
                if (streq_ptr(p->label, DISK_INCOMPLETE_LABEL))
                        continue;
                r = osprobe_partition(d, p, &p->os);
                if (r < 0)
                        return r;
                if (!p->os)
                        continue;

                r = partition_installed_line(d, p, &line);
                if (r < 0)
                        return r;
                r = strv_consume(&d->installed, line);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- discovery -------------------------------------------------------------------------------- */

static int disk_discover_file(Disk *d, const struct stat *st) {
        const char *base;

        base = strrchr(d->path, '/');
        d->name = strdup(base && base[1] ? base + 1 : d->path);
        if (!d->name)
                return -ENOMEM;
        d->kind = DISK_IMAGE_FILE;
        d->transport = TRANSPORT_FILE;
        d->size = (uint64_t) st->st_size;
        d->logical_sector_size = 512;
        d->physical_sector_size = 512;
        /* Root may write to a file whose mode forbids it; only a read-only filesystem (or for
         * others the permissions) stops us, and access() answers both. */
        d->read_only = access(d->path, W_OK) < 0;
        return 0;
}

static int disk_discover_block(Disk *d, dev_t devt) {
        _cleanup_(freep) char *name = NULL;
        int r;

        r = devt_to_name(devt, &name);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return error_setf(r, _("%s is a block device the kernel does not list in /sys/dev/block."), d->path);

        if (sysfs_block_has(name, "partition")) {
                _cleanup_(freep) char *parent = NULL, *parent_node = NULL;

                if (partition_parent_name(name, &parent) >= 0 && name_to_devnode(parent, &parent_node) >= 0)
                        return error_setf(-EINVAL, _("%s is a partition of %s; name the whole disk."), d->path, parent_node);
                return error_setf(-EINVAL, _("%s is a partition; name the whole disk."), d->path);
        }

        d->kind = DISK_BLOCK;
        d->name = TAKE_PTR(name);
        return disk_read_block_facts(d, devt);
}

int disk_discover(const char *path, const DiscoverOptions *opts, Disk **ret) {
        _cleanup_(disk_freep) Disk *d = NULL;
        char read_message[1024] = "";
        int read_error = 0;
        struct stat st;
        int r;

        if (isempty(path) || !ret)
                return -EINVAL;

        if (stat(path, &st) < 0) {
                r = -errno;
                if (r == -ENOENT)
                        return error_setf(r, _("%s does not exist."), path);
                return error_setf(r, _("Cannot look at %s: %s."), path, strerror(-r));
        }
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
                return error_setf(-ENOTBLK, _("%s is neither a block device nor a disk image file."), path);

        d = calloc(1, sizeof(Disk));
        if (!d)
                return -ENOMEM;
        d->path = strdup(path);
        if (!d->path)
                return -ENOMEM;

        r = S_ISREG(st.st_mode) ? disk_discover_file(d, &st) : disk_discover_block(d, st.st_rdev);
        if (r < 0)
                return r;

        r = strv_ensure(&d->by_id);
        if (r < 0)
                return r;

        r = strv_ensure(&d->installed);
        if (r < 0)
                return r;

        /* Nothing to read without a medium; an empty image file has no table either. */
        if (d->size > 0) {
                r = disk_read_partitions(d);
                if (r == -ENOMEM)
                        return r;
                for (size_t i = 0; r >= 0 && i < d->n_partitions; i++)
                        if (streq_ptr(d->partitions[i].label, DISK_INCOMPLETE_LABEL))
                                d->incomplete_install = true;
                if (r < 0) {
                        read_error = r;
                        snprintf(read_message, sizeof(read_message), "%s", error_message() ?: strerror(-r));
                } else if (opts && opts->probe_os) {
                        r = disk_probe_installed(d);
                        if (r < 0)
                                return r;
                }
        }

        r = disk_compute_refusals(d);
        if (r < 0)
                return r;

        if (read_error < 0) {
                /* A disk we cannot read must not look empty to the planner. When it is refused
                 * anyway (the sandboxed root disk, say) it is still worth listing. */
                if (d->refusals == 0)
                        return error_setf(read_error, "%s", read_message);
                r = text_appendf(&d->refusal_text, "%s", read_message);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(d);
        return 0;
}

/* Whether a /sys/class/block entry is a disk worth offering: no partitions, no RAM or compressed
 * swap, no stacked devices (their members are listed), no idle loop or network block devices. */
static bool block_name_is_candidate(const char *name) {
        static const char *const skip_prefixes[] = { "ram", "zram", "dm-", "md", "fd" };
        _cleanup_(freep) char *backing = NULL;
        uint64_t size = 0, hidden = 0;
        const char *p;

        if (name[0] == '.')
                return false;
        for (size_t i = 0; i < ELEMENTSOF(skip_prefixes); i++)
                if (strncmp(name, skip_prefixes[i], strlen(skip_prefixes[i])) == 0)
                        return false;
        if (sysfs_block_has(name, "partition"))
                return false;
        /* NVMe multipath hides the per-path namespaces behind one visible device. */
        if (read_sysfs_block_u64(name, "hidden", &hidden) >= 0 && hidden)
                return false;
        /* eMMC boot areas and the replay-protected block are no place for an OS. */
        if (strncmp(name, "mmcblk", 6) == 0 && (p = strpbrk(name + 6, "br")) &&
            (strncmp(p, "boot", 4) == 0 || strncmp(p, "rpmb", 4) == 0))
                return false;

        (void) read_sysfs_block_u64(name, "size", &size);
        if (strncmp(name, "loop", 4) == 0)
                return size > 0 && sysfs_string(name, "loop/backing_file", &backing) >= 0 && backing;
        if (size == 0) {
                /* Empty optical drives and unconnected virtual devices (nbd) are noise; an empty card
                 * reader is listed so the user can see why it cannot be chosen. */
                if (strncmp(name, "sr", 2) == 0 || !sysfs_block_has(name, "device"))
                        return false;
        }
        return true;
}

int disk_list_discover(const DiscoverOptions *opts, DiskList *ret) {
        _cleanup_(disk_list_done) DiskList l = {};
        struct dirent **names = NULL;
        int n, r = 0;

        if (!ret)
                return -EINVAL;

        n = scandir("/sys/class/block", &names, NULL, versionsort);
        if (n < 0) {
                r = -errno;
                return error_setf(r, _("Cannot list block devices in /sys/class/block: %s."), strerror(-r));
        }

        for (int i = 0; i < n; i++) {
                _cleanup_(freep) char *node = NULL;
                Disk *disk = NULL, **nd;

                if (!block_name_is_candidate(names[i]->d_name))
                        continue;
                r = name_to_devnode(names[i]->d_name, &node);
                if (r < 0)
                        break;
                if (access(node, F_OK) < 0) {
                        log_debug("%s has no device node, skipping.", node);
                        continue;
                }

                r = disk_discover(node, opts, &disk);
                if (r == -ENOMEM)
                        break;
                if (r < 0) {
                        /* One unreadable disk must not hide the others. */
                        log_warning_errno(r, "Skipping %s: %s", node, error_message() ?: strerror(-r));
                        r = 0;
                        continue;
                }
                nd = realloc(l.disks, (l.n_disks + 1) * sizeof(Disk *));
                if (!nd) {
                        disk_free(disk);
                        r = -ENOMEM;
                        break;
                }
                l.disks = nd;
                l.disks[l.n_disks++] = disk;
        }

        for (int i = 0; i < n; i++)
                free(names[i]);
        free(names);
        if (r < 0)
                return r;

        *ret = l;
        l = (DiskList) {};
        return 0;
}

Disk *disk_free(Disk *d) {
        if (!d)
                return NULL;
        disk_clear_partitions(d);
        free(d->path);
        free(d->name);
        free(d->devnode);
        disk_strv_free(d->by_id);
        free(d->vendor);
        free(d->model);
        free(d->serial);
        free(d->backing_file);
        free(d->refusal_text);
        free(d);
        return NULL;
}

void disk_list_done(DiskList *l) {
        if (!l)
                return;
        for (size_t i = 0; i < l->n_disks; i++)
                disk_free(l->disks[i]);
        free(l->disks);
        l->disks = NULL;
        l->n_disks = 0;
}

/* ---- JSON ------------------------------------------------------------------------------------- */

static json_object *json_string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

/* UUIDs in lower case, as systemd and udev print them; other identifiers (a FAT volume id
 * "ABCD-1234", an MBR id) as they are. */
static json_object *json_uuid_or_null(const char *s) {
        _cleanup_(freep) char *c = NULL;
        sd_id128_t id;

        if (!s)
                return NULL;
        if (strlen(s) != 36 || sd_id128_from_string(s, &id) < 0)
                return json_object_new_string(s);
        c = strdup(s);
        if (!c)
                return NULL;
        lowercase(c);
        return json_object_new_string(c);
}

static json_object *json_flag_names(const Disk *d, uint64_t flags) {
        static const struct {
                unsigned bit;
                const char *name;
        } gpt_flags[] = {
                /* UEFI 2.10 table 5.8 for bits 0–2, UAPI DPS for 59, 60, 63. */
                { 0, "required" },  { 1, "no-block-io-protocol" }, { 2, "legacy-bios-bootable" },
                { 59, "growfs" },   { 60, "read-only" },           { 63, "no-auto" },
        };
        json_object *a = json_object_new_array();

        if (!a)
                return NULL;
        if (streq_ptr(d->pttype, "gpt")) {
                for (size_t i = 0; i < ELEMENTSOF(gpt_flags); i++)
                        if (flags & (UINT64_C(1) << gpt_flags[i].bit))
                                json_object_array_add(a, json_object_new_string(gpt_flags[i].name));
        } else if (streq_ptr(d->pttype, "dos") && (flags & 0x80))
                json_object_array_add(a, json_object_new_string("boot")); /* MBR boot indicator */
        return a;
}

static json_object *partition_to_json(const Disk *d, const DiskPartition *p) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "partno", json_object_new_int((int32_t) p->partno));
        json_object_object_add(o, "node", json_string_or_null(p->node));
        json_object_object_add(o, "start", json_object_new_uint64(p->start));
        json_object_object_add(o, "size", json_object_new_uint64(p->size));
        json_object_object_add(o, "typeUuid", json_uuid_or_null(p->type_string));
        json_object_object_add(o, "typeName", json_string_or_null(p->dps ? p->dps->name : NULL));
        json_object_object_add(o, "uuid", json_uuid_or_null(p->uuid_string));
        json_object_object_add(o, "label", json_string_or_null(p->label));
        json_object_object_add(o, "flags", json_object_new_uint64(p->flags));
        json_object_object_add(o, "flagNames", json_flag_names(d, p->flags));
        json_object_object_add(o, "fstype", json_string_or_null(p->fstype));
        json_object_object_add(o, "fsLabel", json_string_or_null(p->fslabel));
        json_object_object_add(o, "fsUuid", json_uuid_or_null(p->fsuuid));
        json_object_object_add(o, "os", json_string_or_null(p->os));
        return o;
}

static json_object *strv_to_json(char *const *l) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; a && l && l[i]; i++)
                json_object_array_add(a, json_object_new_string(l[i]));
        return a;
}

enum {
        DISK_COLUMN_PATH,
        DISK_COLUMN_NAME,
        DISK_COLUMN_KIND,
        DISK_COLUMN_DEVNODE,
        DISK_COLUMN_BY_ID,
        DISK_COLUMN_DISKSEQ,
        DISK_COLUMN_VENDOR,
        DISK_COLUMN_MODEL_KEY,
        DISK_COLUMN_MODEL,
        DISK_COLUMN_SERIAL,
        DISK_COLUMN_BACKING_FILE,
        DISK_COLUMN_SIZE,
        DISK_COLUMN_LOGICAL_SECTOR_SIZE,
        DISK_COLUMN_PHYSICAL_SECTOR_SIZE,
        DISK_COLUMN_ROTATIONAL,
        DISK_COLUMN_REMOVABLE,
        DISK_COLUMN_READ_ONLY,
        DISK_COLUMN_TRANSPORT,
        DISK_COLUMN_PARTITION_TABLE,
        DISK_COLUMN_TABLE,
        DISK_COLUMN_PARTITIONS,
        DISK_COLUMN_INSTALLED,
        DISK_COLUMN_INCOMPLETE_INSTALL,
        DISK_COLUMN_USABLE,
        DISK_COLUMN_REFUSALS,
        DISK_COLUMN_REFUSAL_REASON,
        DISK_COLUMN_LAST_RESET,
        _DISK_COLUMN_MAX,
};

static int disk_table_new(Table **ret) {
        /* In the order of the JSON keys; the text shows DISK SIZE BUS MODEL SERIAL TABLE USABLE,
         * in the widths it always had. */
        static const struct {
                const char *header, *key;
                TableAlign align;
                size_t min, max, gap;
        } columns[_DISK_COLUMN_MAX] = {
                [DISK_COLUMN_PATH] = { "DISK", "path", TABLE_LEFT, 14, 0, 1 },
                [DISK_COLUMN_NAME] = { NULL, "name", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_KIND] = { NULL, "kind", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_DEVNODE] = { NULL, "devnode", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_BY_ID] = { NULL, "byId", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_DISKSEQ] = { NULL, "diskseq", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_VENDOR] = { NULL, "vendor", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_MODEL_KEY] = { NULL, "model", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_MODEL] = { "MODEL", NULL, TABLE_LEFT, 28, 28, 1 },
                [DISK_COLUMN_SERIAL] = { "SERIAL", "serial", TABLE_LEFT, 20, 20, 1 },
                [DISK_COLUMN_BACKING_FILE] = { NULL, "backingFile", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_SIZE] = { "SIZE", "size", TABLE_RIGHT, 10, 0, 2 },
                [DISK_COLUMN_LOGICAL_SECTOR_SIZE] = { NULL, "logicalSectorSize", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_PHYSICAL_SECTOR_SIZE] = { NULL, "physicalSectorSize", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_ROTATIONAL] = { NULL, "rotational", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_REMOVABLE] = { NULL, "removable", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_READ_ONLY] = { NULL, "readOnly", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_TRANSPORT] = { "BUS", "transport", TABLE_LEFT, 7, 0, 1 },
                [DISK_COLUMN_PARTITION_TABLE] = { NULL, "partitionTable", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_TABLE] = { "TABLE", NULL, TABLE_LEFT, 5, 0, 1 },
                [DISK_COLUMN_PARTITIONS] = { NULL, "partitions", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_INSTALLED] = { NULL, "installed", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_INCOMPLETE_INSTALL] = { NULL, "incompleteInstall", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_USABLE] = { "USABLE", "usable", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_REFUSALS] = { NULL, "refusals", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_REFUSAL_REASON] = { NULL, "refusalReason", TABLE_LEFT, 0, 0, 1 },
                [DISK_COLUMN_LAST_RESET] = { NULL, "lastReset", TABLE_LEFT, 0, 0, 1 },
        };
        static const size_t shown[] = { DISK_COLUMN_PATH,   DISK_COLUMN_SIZE,  DISK_COLUMN_TRANSPORT, DISK_COLUMN_MODEL,
                                        DISK_COLUMN_SERIAL, DISK_COLUMN_TABLE, DISK_COLUMN_USABLE };
        _cleanup_(table_freep) Table *t = table_new();
        int r;

        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < _DISK_COLUMN_MAX; i++) {
                r = table_add_column(t, columns[i].header, columns[i].key, columns[i].align);
                if (r < 0)
                        return r;
                table_set_width(t, i, columns[i].min, columns[i].max);
                table_set_gap(t, i, columns[i].gap);
        }
        r = table_set_display(t, shown, ELEMENTSOF(shown));
        if (r < 0)
                return r;
        *ret = TAKE_PTR(t);
        return 0;
}

static json_object *partition_table_to_json(const Disk *d) {
        json_object *t;

        if (!d->pttype)
                return NULL;
        t = json_object_new_object();
        if (t) {
                json_object_object_add(t, "type", json_object_new_string(d->pttype));
                json_object_object_add(t, "uuid", json_uuid_or_null(d->ptuuid));
        }
        return t;
}

static json_object *partitions_to_json(const Disk *d) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < d->n_partitions; i++)
                json_object_array_add(a, partition_to_json(d, &d->partitions[i]));
        return a;
}

static json_object *refusals_to_json(const Disk *d) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < ELEMENTSOF(refusal_names); i++)
                if (d->refusals & (1u << i))
                        json_object_array_add(a, json_object_new_string(refusal_names[i]));
        return a;
}

static int disk_table_add(Table *t, const Disk *d) {
        int r;

        if ((r = table_add_string(t, d->path)) < 0 || (r = table_add_string(t, d->name)) < 0 ||
            (r = table_add_string(t, disk_kind_to_string(d->kind))) < 0 || (r = table_add_string(t, d->devnode)) < 0 ||
            (r = table_add_json(t, strv_to_json(d->by_id))) < 0 ||
            (r = d->diskseq > 0 ? table_add_unsigned(t, d->diskseq) : table_add_null(t)) < 0 ||
            (r = table_add_string(t, d->vendor)) < 0 || (r = table_add_string(t, d->model)) < 0 ||
            (r = table_add_string(t, d->model ?: d->backing_file)) < 0 || (r = table_add_string(t, d->serial)) < 0 ||
            (r = table_add_string(t, d->backing_file)) < 0 || (r = table_add_size(t, d->size)) < 0 ||
            (r = table_add_unsigned(t, d->logical_sector_size)) < 0 || (r = table_add_unsigned(t, d->physical_sector_size)) < 0 ||
            (r = table_add_boolean(t, d->rotational)) < 0 || (r = table_add_boolean(t, d->removable)) < 0 ||
            (r = table_add_boolean(t, d->read_only)) < 0 || (r = table_add_string(t, transport_to_string(d->transport))) < 0 ||
            (r = table_add_json(t, partition_table_to_json(d))) < 0 || (r = table_add_string(t, d->pttype)) < 0 ||
            (r = table_add_json(t, partitions_to_json(d))) < 0 || (r = table_add_json(t, strv_to_json(d->installed))) < 0 ||
            (r = table_add_boolean(t, d->incomplete_install)) < 0 || (r = table_add_boolean(t, disk_is_usable(d))) < 0 ||
            (r = table_add_json(t, refusals_to_json(d))) < 0 || (r = table_add_string(t, d->refusal_text)) < 0 ||
            (r = d->last_reset_record ? table_add_json(t, json_object_get(d->last_reset_record)) : table_add_null(t)) < 0)
                return r;
        return 0;
}

int disk_list_table(const DiskList *l, Table **ret) {
        _cleanup_(table_freep) Table *t = NULL;
        int r;

        r = disk_table_new(&t);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l->n_disks; i++) {
                r = disk_table_add(t, l->disks[i]);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

json_object *disk_to_json(const Disk *d) {
        _cleanup_(table_freep) Table *t = NULL;
        json_object *a, *o;

        if (!d || disk_table_new(&t) < 0 || disk_table_add(t, d) < 0)
                return NULL;
        a = table_to_json(t);
        o = json_object_get(json_object_array_get_idx(a, 0));
        json_object_put(a);
        return o;
}
