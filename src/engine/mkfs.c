/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
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

/* One entry per filesystem kind. build() fills argv for a device path; when at_offset, it writes
 * into an image file at t->offset instead (then path is the file). check names the stock checker
 * that must pass, read-only, on every filesystem imprint makes. */
typedef struct MkfsType {
        const char *name;
        const char *program;
        bool file_offset; /* the tool can write at an offset inside a file */
        int (*build)(Argv *a, const char *path, const MkfsTarget *t, bool at_offset, const char *label, sd_id128_t uuid);
        const char *checker;       /* program; NULL: nothing to check (swap) */
        const char *checker_args;  /* as shown in messages */
} MkfsType;

/* FAT type determination goes by the cluster count alone (Microsoft FAT specification,
 * "FAT Type Determination"): a "FAT32" volume with fewer than 65525 clusters is read as FAT16
 * by mtools and by firmware that follows the specification. */
#define FAT16_MIN_CLUSTERS UINT64_C(4087)     /* mkfs.fat refuses fewer (would be misread as FAT12) */
#define FAT16_MAX_CLUSTERS UINT64_C(65524)
#define FAT32_MIN_CLUSTERS UINT64_C(65525)
#define FAT32_MAX_CLUSTERS UINT64_C(268435445) /* 0x0FFFFFF5: the high 4 bits are reserved */
#define FAT_MAX_CLUSTER_BYTES 32768            /* larger clusters are not portable */
#define FAT_HEADS 255                          /* the LBA-assist geometry: mkfs.fat rounds the */
#define FAT_SECTORS_PER_TRACK 63               /* sector count down to whole tracks */
#define FAT_ROOT_ENTRIES 512                   /* mkfs.fat's FAT12/16 default */

static uint64_t align_to(uint64_t v, uint64_t a, bool align) {
        return align ? ROUND_UP(v, a) : v;
}

uint64_t fat_count_clusters(uint64_t size, uint32_t sector_size, unsigned bits, unsigned spc) {
        uint64_t n = size / sector_size, reserved, root, data, guess, fat_len, clusters, max;
        unsigned entry = bits / 8;
        bool align;

        if ((bits != 16 && bits != 32) || spc == 0 || n > UINT32_MAX)
                return 0;
        /* The layout mkfs.fat 4.x makes: whole tracks, two FATs, reserved sectors, the FAT16 root
         * directory and the FATs rounded up to whole clusters (alignment is off below 8192). */
        n = n / FAT_SECTORS_PER_TRACK * FAT_SECTORS_PER_TRACK;
        align = n > 8192;
        reserved = align_to(bits == 32 ? 32 : 1, spc, align);
        root = bits == 32 ? 0 : align_to(DIV_ROUND_UP(FAT_ROOT_ENTRIES * 32, sector_size), spc, align);
        if (n <= reserved + root)
                return 0;
        data = n - reserved - root;
        guess = (data * sector_size + 2 * 2 * entry) / ((uint64_t) spc * sector_size + 2 * entry);
        fat_len = align_to(DIV_ROUND_UP((guess + 2) * entry, sector_size), spc, align);
        if (data <= 2 * fat_len)
                return 0;
        clusters = (data - 2 * fat_len) / spc;
        max = MIN(fat_len * sector_size / entry, bits == 32 ? FAT32_MAX_CLUSTERS : FAT16_MAX_CLUSTERS);
        return clusters > max ? 0 : clusters;
}

int fat_choose_geometry(uint64_t size, uint32_t sector_size, FatGeometry *ret) {
        uint64_t cluster, clusters;

        if (sector_size < 512 || sector_size > 4096 || (sector_size & (sector_size - 1)))
                return -EINVAL;

        /* FAT32 when it fits, as the UEFI specification asks of an ESP on a fixed disk, with the
         * cluster size Microsoft's format uses for the volume size (fatgen103, "FAT32 cluster
         * sizes"), made smaller where that leaves too few clusters. The size is the partition's,
         * never the whole disk's. */
        cluster = size <= UINT64_C(260) << 20 ? 512
                : size <= UINT64_C(8) << 30   ? 4096
                : size <= UINT64_C(16) << 30  ? 8192
                : size <= UINT64_C(32) << 30  ? 16384
                                              : 32768;
        for (cluster = MAX(cluster, (uint64_t) sector_size); cluster >= sector_size; cluster /= 2) {
                clusters = fat_count_clusters(size, sector_size, 32, (unsigned) (cluster / sector_size));
                if (clusters >= FAT32_MIN_CLUSTERS) {
                        *ret = (FatGeometry) { 32, (unsigned) (cluster / sector_size), clusters };
                        return 0;
                }
        }
        /* Too small for FAT32 (only with 4096-byte sectors or a tiny partition): FAT16, with the
         * smallest clusters that keep the count within FAT16's range. */
        for (cluster = sector_size; cluster <= FAT_MAX_CLUSTER_BYTES; cluster *= 2) {
                clusters = fat_count_clusters(size, sector_size, 16, (unsigned) (cluster / sector_size));
                if (clusters >= FAT16_MIN_CLUSTERS) {
                        *ret = (FatGeometry) { 16, (unsigned) (cluster / sector_size), clusters };
                        return 0;
                }
        }
        return -ERANGE;
}

static int build_vfat(Argv *a, const char *path, const MkfsTarget *t, bool at_offset, const char *label, sd_id128_t uuid) {
        FatGeometry g;

        if (fat_choose_geometry(t->size, t->sector_size, &g) < 0)
                /* TRANSLATORS: the partition's size, then its sector size in bytes (512 or 4096). */
                return error_setf(-ERANGE, _("No FAT filesystem fits %s with %u-byte sectors."), FORMAT_BYTES(t->size),
                                  (unsigned) t->sector_size);
        log_info("vfat on %s: FAT%u, %u sectors of %" PRIu32 " bytes per cluster, %" PRIu64 " clusters", path, g.bits,
                 g.sectors_per_cluster, t->sector_size, g.clusters);

        /* Everything mkfs.fat would otherwise guess is given: it guesses from the size of the whole
         * file when writing at an offset, and the geometry of a file is not a partition's. */
        argv_add(a, "mkfs.vfat");
        argv_add(a, "-F");
        argv_addf(a, "%u", g.bits);
        argv_add(a, "-s");
        argv_addf(a, "%u", g.sectors_per_cluster);
        argv_add(a, "-S");
        argv_addf(a, "%" PRIu32, t->sector_size);
        argv_add(a, "-g");
        argv_addf(a, "%u/%u", FAT_HEADS, FAT_SECTORS_PER_TRACK);
        if (label) {
                argv_add(a, "-n");
                argv_add(a, label);
        }
        argv_add(a, "-i");
        argv_addf(a, "%02x%02x%02x%02x", uuid.bytes[0], uuid.bytes[1], uuid.bytes[2], uuid.bytes[3]);
        if (at_offset) {
                /* Both in sectors of -S: where the partition starts, as a disk's would say. */
                argv_add(a, "-h");
                argv_addf(a, "%" PRIu64, t->offset / t->sector_size);
                argv_addf(a, "--offset=%" PRIu64, t->offset / t->sector_size);
        }
        argv_add(a, path);
        argv_addf(a, "%" PRIu64, t->size / 1024); /* block count, in KiB: the partition's, not the file's */
        return 0;
}

static int build_ext4(Argv *a, const char *path, const MkfsTarget *t, bool at_offset, const char *label, sd_id128_t uuid) {
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
        return 0;
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

static int build_swap(Argv *a, const char *path, const MkfsTarget *t, bool at_offset, const char *label, sd_id128_t uuid) {
        build_simple(a, "mkswap", false, "-U", path, label, uuid);
        return 0;
}

static int build_xfs(Argv *a, const char *path, const MkfsTarget *t, bool at_offset, const char *label, sd_id128_t uuid) {
        build_simple(a, "mkfs.xfs", true, "-m", path, label, uuid);
        return 0;
}

static int build_btrfs(Argv *a, const char *path, const MkfsTarget *t, bool at_offset, const char *label, sd_id128_t uuid) {
        build_simple(a, "mkfs.btrfs", true, "-U", path, label, uuid);
        return 0;
}

static const MkfsType mkfs_types[] = {
        { "vfat", "mkfs.vfat", true, build_vfat, "fsck.fat", "-n" },
        { "ext4", "mkfs.ext4", true, build_ext4, "e2fsck", "-fn" },
        { "swap", "mkswap", false, build_swap, NULL, NULL },
        { "xfs", "mkfs.xfs", false, build_xfs, "xfs_repair", "-n" },
        { "btrfs", "mkfs.btrfs", false, build_btrfs, "btrfs", "check --readonly" },
};

static const MkfsType *mkfs_type(const char *fstype) {
        for (size_t i = 0; i < ELEMENTSOF(mkfs_types); i++)
                if (streq(mkfs_types[i].name, fstype))
                        return &mkfs_types[i];
        return NULL;
}

const char *mkfs_program(const char *fstype) {
        const MkfsType *m = mkfs_type(fstype);

        if (!m)
                return NULL;
        /* The checker is as necessary as the maker: a step is done only when it passed. */
        if (find_executable(m->program) && m->checker && !find_executable(m->checker))
                return m->checker;
        return m->program;
}

int copy_data_regions(int src, uint64_t src_offset, uint64_t len, int dst, uint64_t dst_offset) {
        _cleanup_(freep) uint8_t *buf = NULL;
        const size_t bufsize = 4 * 1024 * 1024;
        uint64_t pos = 0;

        buf = malloc(bufsize);
        if (!buf)
                return -ENOMEM;

        while (pos < len) {
                off_t data = lseek(src, (off_t) (src_offset + pos), SEEK_DATA), hole;

                if (data < 0) {
                        if (errno == ENXIO)
                                break; /* only a hole is left */
                        return -errno;
                }
                hole = lseek(src, data, SEEK_HOLE);
                if (hole < 0)
                        return -errno;
                if ((uint64_t) data >= src_offset + len)
                        break;
                if ((uint64_t) hole > src_offset + len)
                        hole = (off_t) (src_offset + len);

                for (uint64_t p = (uint64_t) data - src_offset; p < (uint64_t) hole - src_offset;) {
                        size_t n = (size_t) MIN((uint64_t) bufsize, (uint64_t) hole - src_offset - p);
                        int r = pread_full(src, buf, n, src_offset + p);
                        if (r < 0)
                                return r;
                        r = pwrite_full(dst, buf, n, dst_offset + p);
                        if (r < 0)
                                return r;
                        p += n;
                }
                pos = (uint64_t) hole - src_offset;
        }
        return 0;
}

/* An anonymous file of size bytes beside the image file (O_TMPFILE: nothing is left behind, even
 * after a crash), and its path for a child that inherits it. */
static int tmpfile_beside(const MkfsTarget *t, uint64_t size, char path[static 64]) {
        _cleanup_(closep) int tmp = -EBADF;
        _cleanup_(freep) char *dir = NULL;

        dir = strdup(t->file);
        if (!dir)
                return -ENOMEM;
        tmp = open(dirname(dir), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (tmp < 0)
                return error_setf(-errno, _("Cannot create a temporary file beside %s: %m"), t->file);
        if (ftruncate(tmp, (off_t) size) < 0)
                return error_setf(-errno, _("Cannot size a temporary file beside %s: %m"), t->file);
        snprintf(path, 64, "/proc/self/fd/%d", tmp);
        return TAKE_FD(tmp);
}

/* Makes the target range read as zeros: holes where the file system can punch them. */
static int clear_range(const MkfsTarget *t, bool must) {
        static const uint8_t zero[64 * 1024];
        int r;

        if (fallocate(t->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) t->offset, (off_t) t->size) >= 0 || !must)
                return 0;
        for (uint64_t p = 0; p < t->size; p += sizeof(zero)) {
                r = pwrite_full(t->fd, zero, (size_t) MIN((uint64_t) sizeof(zero), t->size - p), t->offset + p);
                if (r < 0)
                        return error_setf(r, _("Cannot clear %s at %s: %s"), t->file, FORMAT_BYTES(t->offset), strerror(-r));
        }
        return 0;
}

/* For tools that cannot write at an offset: build the filesystem in an anonymous file beside the
 * image, then copy its data regions in. */
static int mkfs_via_tmpfile(const MkfsType *m, const MkfsTarget *t, const char *label, sd_id128_t uuid) {
        _cleanup_(closep) int tmp = -EBADF;
        char path[64];
        Argv a = {};
        int r;

        tmp = tmpfile_beside(t, t->size, path);
        if (tmp < 0)
                return tmp;
        r = m->build(&a, path, t, false, label, uuid);
        if (r < 0)
                return r;
        r = run_command(a.v, &(RunOptions) { .keep_fd = tmp });
        if (r < 0)
                return r;

        /* The target range must read as zeros wherever the new filesystem has holes. */
        r = clear_range(t, true);
        if (r < 0)
                return r;
        r = copy_data_regions(tmp, 0, t->size, t->fd, t->offset);
        if (r < 0)
                return error_setf(r, _("Cannot copy the new %s filesystem into %s: %s"), m->name, t->file, strerror(-r));
        return 0;
}

/* The first lines of a checker's output, on one line, for the error sentence. */
static void first_lines(const char *out, char *buf, size_t size) {
        size_t n = 0;
        unsigned lines = 0;

        buf[0] = 0;
        for (const char *p = out; p && *p && lines < 4 && n + 1 < size;) {
                const char *e = strchrnul(p, '\n');
                size_t len = (size_t) (e - p);

                while (len > 0 && (*p == ' ' || *p == '\t'))
                        p++, len--;
                /* The version banner says nothing about the filesystem. */
                if (len > 0 && !(lines == 0 && strstr(p, " (") && (strncmp(p, "fsck.fat ", 9) == 0 || strncmp(p, "e2fsck ", 7) == 0))) {
                        n += (size_t) snprintf(buf + n, size - n, "%s%.*s", lines ? " / " : "", (int) len, p);
                        n = MIN(n, size - 1);
                        lines++;
                }
                p = *e ? e + 1 : e;
        }
}

/* Runs the filesystem's stock checker read-only on what mkfs_make() just made. On a device node
 * it reads the node. In an image file, e2fsck reads at the offset itself (its "?offset=" I/O
 * option); fsck.fat, xfs_repair and btrfs check cannot, so they read a sparse copy of the
 * partition's range in an anonymous file beside the image: that needs no privileges (imprint
 * writes image files as any user) and no loop device (none to leak, no udev probing a device
 * that is being checked), and a fresh filesystem is mostly holes, so the copy is small — a
 * 1 GiB ESP copies its two FATs. */
static int mkfs_check(const MkfsType *m, const MkfsTarget *t, const char *where) {
        _cleanup_(closep) int tmp = -EBADF;
        _cleanup_(freep) char *out = NULL;
        char path[PATH_MAX + 64], lines[512];
        const char *argv[8];
        int status = 0, keep = -1, r;
        size_t n = 0;

        if (!m->checker)
                return 0;

        if (t->node)
                snprintf(path, sizeof(path), "%s", t->node);
        else if (streq(m->name, "ext4")) {
                snprintf(path, sizeof(path), "/proc/self/fd/%d?offset=%" PRIu64, t->fd, t->offset);
                keep = t->fd;
        } else {
                char p[64];

                tmp = tmpfile_beside(t, t->size, p);
                if (tmp < 0)
                        return tmp;
                r = copy_data_regions(t->fd, t->offset, t->size, tmp, 0);
                if (r < 0)
                        /* TRANSLATORS: the filesystem type, the image file, then the reason. */
                        return error_setf(r, _("Cannot read the new %s filesystem in %s back: %s"), m->name, t->file, strerror(-r));
                snprintf(path, sizeof(path), "%s", p);
                keep = tmp;
        }

        argv[n++] = m->checker;
        if (streq(m->checker, "btrfs")) {
                argv[n++] = "check";
                argv[n++] = "--readonly";
        } else
                argv[n++] = m->checker_args;
        if (streq(m->checker, "xfs_repair") && !t->node)
                argv[n++] = "-f"; /* a regular file, not a device */
        argv[n++] = path;
        argv[n] = NULL;

        r = run_command((char *const *) argv, &(RunOptions) {
                .ret_stdout = &out, .ret_status = &status, .merge_stderr = true, .keep_fd = keep });
        if (r < 0)
                return r;
        /* fsck.fat exits 0 on a FAT32 volume with too few clusters and only warns; nothing a
         * fresh filesystem has any reason to be warned about is acceptable. */
        if (status == 0 && !(streq(m->name, "vfat") && strstr(out, "Warning")))
                return 0;

        first_lines(out, lines, sizeof(lines));
        /* TRANSLATORS: the filesystem type (vfat, ext4…); where it is (a partition, or an image file
         * at an offset); the checker and its options ("fsck.fat" "-n"); its exit status; the first
         * lines of what it printed (untranslated). */
        return error_setf(-EUCLEAN, _("The new %s filesystem on %s fails its check: %s %s (exit status %d) says: %s"), m->name,
                          where, m->checker, m->checker_args, status, lines[0] ? lines : _("no output"));
}

int mkfs_make(const char *fstype, const MkfsTarget *target, const char *label, sd_id128_t uuid) {
        const MkfsType *m = mkfs_type(fstype);
        MkfsTarget t = *target;
        char where[PATH_MAX + 64];
        Argv a = {};
        int r;

        if (!m)
                return error_setf(-EOPNOTSUPP, _("imprint cannot create %s filesystems."), fstype);
        if (!find_executable(m->program))
                return error_setf(-ENOPKG, _("%s is needed to create the %s filesystem, but it is not installed."), m->program, fstype);
        if (m->checker && !find_executable(m->checker))
                /* TRANSLATORS: the checker program (fsck.fat, e2fsck…), then the filesystem type. */
                return error_setf(-ENOPKG, _("%s is needed to check the new %s filesystem, but it is not installed."), m->checker, fstype);

        if (t.node) {
                _cleanup_(closep) int fd = open(t.node, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
                int ss = 0;

                /* The node's own sizes: an encrypted volume is smaller than its partition, and its
                 * sectors may be larger than the disk's. */
                if (fd < 0)
                        return error_setf(-errno, _("Cannot open %s: %m"), t.node);
                if (ioctl(fd, BLKGETSIZE64, &t.size) < 0 || ioctl(fd, BLKSSZGET, &ss) < 0 || ss <= 0)
                        /* TRANSLATORS: a device node (/dev/sda1). */
                        return error_setf(-errno, _("Cannot read the size of %s: %m"), t.node);
                t.sector_size = (uint32_t) ss;
                snprintf(where, sizeof(where), "%s", t.node);

                r = m->build(&a, t.node, &t, false, label, uuid);
                if (r >= 0)
                        r = run_command(a.v, NULL);
        } else {
                if (!t.sector_size)
                        t.sector_size = 512;
                /* TRANSLATORS: an image file, then the offset of the partition in it ("1 MiB"). */
                snprintf(where, sizeof(where), _("%s at %s"), t.file, FORMAT_BYTES(t.offset));
                if (m->file_offset) {
                        /* Stale data in the range would be copied by the check, and a seeded install
                         * should not depend on what the file held before. */
                        if (streq(m->name, "vfat"))
                                (void) clear_range(&t, false);
                        r = m->build(&a, t.file, &t, true, label, uuid);
                        if (r >= 0)
                                r = run_command(a.v, NULL);
                } else
                        r = mkfs_via_tmpfile(m, &t, label, uuid);
        }
        if (r < 0)
                return r;
        return mkfs_check(m, &t, where);
}
