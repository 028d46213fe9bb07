/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "i18n.h"
#include "log.h"
#include "mkfs.h"
#include "run.h"
#include "size.h"

#define ARGV_MAX 24

typedef struct Argv {
        char *v[ARGV_MAX];
        size_t n;
        char buf[ARGV_MAX][80]; /* storage for formatted arguments */
} Argv;

static void argv_add(Argv *a, const char *s) {
        if (a->n + 1 < ARGV_MAX)
                a->v[a->n++] = (char *) s;
        a->v[a->n] = NULL;
}

_printf_(2, 3) static void argv_addf(Argv *a, const char *fmt, ...) {
        va_list ap;
        char *b = a->buf[a->n];

        va_start(ap, fmt);
        vsnprintf(b, sizeof(a->buf[0]), fmt, ap);
        va_end(ap);
        argv_add(a, b);
}

/* One entry per filesystem kind. build() fills argv for a device path; when offset_ok, it can
 * also write into an image file at t->offset (then path is the file and t is passed). */
typedef struct MkfsType {
        const char *name;
        const char *program;
        bool file_offset; /* the tool can write at an offset inside a file */
        void (*build)(Argv *a, const char *path, const MkfsTarget *t, bool at_offset, const char *label, sd_id128_t uuid);
} MkfsType;

static void build_vfat(Argv *a, const char *path, const MkfsTarget *t, bool at_offset, const char *label, sd_id128_t uuid) {
        argv_add(a, "mkfs.vfat");
        argv_add(a, "-F");
        argv_add(a, "32");
        if (label) {
                argv_add(a, "-n");
                argv_add(a, label);
        }
        argv_add(a, "-i");
        argv_addf(a, "%02x%02x%02x%02x", uuid.bytes[0], uuid.bytes[1], uuid.bytes[2], uuid.bytes[3]);
        if (at_offset)
                argv_addf(a, "--offset=%" PRIu64, t->offset / 512);
        argv_add(a, path);
        if (at_offset)
                argv_addf(a, "%" PRIu64, t->size / 1024); /* block count, in KiB */
}

static void build_ext4(Argv *a, const char *path, const MkfsTarget *t, bool at_offset, const char *label, sd_id128_t uuid) {
        argv_add(a, "mkfs.ext4");
        argv_add(a, "-q");
        argv_add(a, "-F");
        if (label) {
                argv_add(a, "-L");
                argv_add(a, label);
        }
        argv_add(a, "-U");
        argv_addf(a, "%s", SD_ID128_TO_UUID_STRING(uuid));
        if (at_offset) {
                argv_add(a, "-E");
                argv_addf(a, "offset=%" PRIu64, t->offset);
        }
        argv_add(a, path);
        if (at_offset)
                argv_addf(a, "%" PRIuMAX "k", (uintmax_t) (t->size / 1024));
}

/* The tools that take the same shape of command line: [quiet] [force] LABEL-OPTION label
 * UUID-OPTION uuid device. The UUID makes seeded installs reproducible. */
static void build_simple(Argv *a, const char *prog, bool quiet_force, const char *uuid_fmt, const char *path,
                         const char *label, sd_id128_t uuid) {
        argv_add(a, prog);
        if (quiet_force) {
                argv_add(a, "-q");
                argv_add(a, "-f");
        }
        if (label) {
                argv_add(a, "-L");
                argv_add(a, label);
        }
        if (streq(uuid_fmt, "-m")) {
                argv_add(a, "-m");
                argv_addf(a, "uuid=%s", SD_ID128_TO_UUID_STRING(uuid));
        } else {
                argv_add(a, "-U");
                argv_addf(a, "%s", SD_ID128_TO_UUID_STRING(uuid));
        }
        argv_add(a, path);
}

static void build_swap(Argv *a, const char *path, const MkfsTarget *t, bool at_offset, const char *label, sd_id128_t uuid) {
        build_simple(a, "mkswap", false, "-U", path, label, uuid);
}

static void build_xfs(Argv *a, const char *path, const MkfsTarget *t, bool at_offset, const char *label, sd_id128_t uuid) {
        build_simple(a, "mkfs.xfs", true, "-m", path, label, uuid);
}

static void build_btrfs(Argv *a, const char *path, const MkfsTarget *t, bool at_offset, const char *label, sd_id128_t uuid) {
        build_simple(a, "mkfs.btrfs", true, "-U", path, label, uuid);
}

static const MkfsType mkfs_types[] = {
        { "vfat", "mkfs.vfat", true, build_vfat },
        { "ext4", "mkfs.ext4", true, build_ext4 },
        { "swap", "mkswap", false, build_swap },
        { "xfs", "mkfs.xfs", false, build_xfs },
        { "btrfs", "mkfs.btrfs", false, build_btrfs },
};

static const MkfsType *mkfs_type(const char *fstype) {
        for (size_t i = 0; i < ELEMENTSOF(mkfs_types); i++)
                if (streq(mkfs_types[i].name, fstype))
                        return &mkfs_types[i];
        return NULL;
}

const char *mkfs_program(const char *fstype) {
        const MkfsType *m = mkfs_type(fstype);
        return m ? m->program : NULL;
}

int copy_data_regions(int src, uint64_t len, int dst, uint64_t dst_offset) {
        _cleanup_(freep) uint8_t *buf = NULL;
        const size_t bufsize = 4 * 1024 * 1024;
        uint64_t pos = 0;

        buf = malloc(bufsize);
        if (!buf)
                return -ENOMEM;

        while (pos < len) {
                off_t data = lseek(src, (off_t) pos, SEEK_DATA), hole;

                if (data < 0) {
                        if (errno == ENXIO)
                                break; /* only a hole is left */
                        return -errno;
                }
                hole = lseek(src, data, SEEK_HOLE);
                if (hole < 0)
                        return -errno;
                if ((uint64_t) hole > len)
                        hole = (off_t) len;

                for (uint64_t p = (uint64_t) data; p < (uint64_t) hole;) {
                        size_t n = (size_t) MIN((uint64_t) bufsize, (uint64_t) hole - p);
                        int r = pread_full(src, buf, n, p);
                        if (r < 0)
                                return r;
                        r = pwrite_full(dst, buf, n, dst_offset + p);
                        if (r < 0)
                                return r;
                        p += n;
                }
                pos = (uint64_t) hole;
        }
        return 0;
}

/* For tools that cannot write at an offset: build the filesystem in an anonymous file beside the
 * image (O_TMPFILE: nothing is left behind, even after a crash), then copy its data regions in. */
static int mkfs_via_tmpfile(const MkfsType *m, const MkfsTarget *t, const char *label, sd_id128_t uuid) {
        _cleanup_(closep) int tmp = -EBADF;
        _cleanup_(freep) char *dir = NULL;
        char path[64];
        Argv a = {};
        int r;

        dir = strdup(t->file);
        if (!dir)
                return -ENOMEM;
        tmp = open(dirname(dir), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (tmp < 0)
                return error_setf(-errno, _("Cannot create a temporary file beside %s: %m"), t->file);
        if (ftruncate(tmp, (off_t) t->size) < 0)
                return error_setf(-errno, _("Cannot size a temporary file beside %s: %m"), t->file);

        snprintf(path, sizeof(path), "/proc/self/fd/%d", tmp);
        m->build(&a, path, t, false, label, uuid);
        r = run_command(a.v, &(RunOptions) { .keep_fd = tmp });
        if (r < 0)
                return r;

        /* The target range must read as zeros wherever the new filesystem has holes. */
        if (fallocate(t->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) t->offset, (off_t) t->size) < 0) {
                static const uint8_t zero[64 * 1024];
                for (uint64_t p = 0; p < t->size; p += sizeof(zero)) {
                        r = pwrite_full(t->fd, zero, (size_t) MIN((uint64_t) sizeof(zero), t->size - p), t->offset + p);
                        if (r < 0)
                                return error_setf(r, _("Cannot clear %s at %s: %s"), t->file, FORMAT_BYTES(t->offset), strerror(-r));
                }
        }
        r = copy_data_regions(tmp, t->size, t->fd, t->offset);
        if (r < 0)
                return error_setf(r, _("Cannot copy the new %s filesystem into %s: %s"), m->name, t->file, strerror(-r));
        return 0;
}

int mkfs_make(const char *fstype, const MkfsTarget *t, const char *label, sd_id128_t uuid) {
        const MkfsType *m = mkfs_type(fstype);
        Argv a = {};

        if (!m)
                return error_setf(-EOPNOTSUPP, _("imprint cannot create %s filesystems."), fstype);
        if (!find_executable(m->program))
                return error_setf(-ENOPKG, _("%s is needed to create the %s filesystem, but it is not installed."), m->program, fstype);

        if (t->node) {
                m->build(&a, t->node, t, false, label, uuid);
                return run_command(a.v, NULL);
        }
        /* mkfs.vfat counts --offset in 512-byte units; other sector sizes go the tmpfile way. */
        if (m->file_offset && t->sector_size == 512) {
                m->build(&a, t->file, t, true, label, uuid);
                return run_command(a.v, NULL);
        }
        return mkfs_via_tmpfile(m, t, label, uuid);
}
