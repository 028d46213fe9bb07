/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "fsread.h"
#include "i18n.h"
#include "log.h"
#include "run.h"

void strv_free(char **l) {
        for (char **p = l; p && *p; p++)
                free(*p);
        free(l);
}

int fs_tool_path(const FsLocation *l, const char *separator, char **ret) {
        struct stat st;
        char *s;

        if (l->node && stat(l->node, &st) == 0 && S_ISBLK(st.st_mode)) {
                s = strdup(l->node);
                if (!s)
                        return -ENOMEM;
                *ret = s;
                return 0;
        }
        if (strstr(l->disk, separator[0] == '?' ? "?" : separator)) {
                *ret = NULL;
                return 0;
        }
        if (asprintf(&s, "%s%s%" PRIu64, l->disk, separator, l->offset) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static bool is_ext(const char *fstype) {
        return fstype && (streq(fstype, "ext2") || streq(fstype, "ext3") || streq(fstype, "ext4"));
}

static bool is_fat(const char *fstype) {
        return fstype && streq(fstype, "vfat");
}

static bool is_squashfs(const char *fstype) {
        return fstype && streq(fstype, "squashfs");
}

static bool is_erofs(const char *fstype) {
        return fstype && streq(fstype, "erofs");
}

bool fs_erofs_readable(void) {
        static int cached = -1;
        _cleanup_(freep) char *out = NULL;
        int status = 0;

        if (cached >= 0)
                return cached;
        /* dump.erofs learnt --cat during erofs-utils 1.8 (1.8.2 has none, 1.8.6 of Debian 13 has it): ask it.
         * Older ones have only --ls and inode dumps. */
        char *argv[] = { (char *) "dump.erofs", (char *) "--help", NULL };
        if (run_command(argv, &(RunOptions) { .ret_stdout = &out, .ret_status = &status, .merge_stderr = true }) < 0)
                cached = 0;
        else
                cached = out && strstr(out, "--cat") && strstr(out, "--offset");
        return cached;
}

/* unsquashfs and dump.erofs read an image file at a byte offset; a partition's own node is read
 * from its start (unsquashfs wants the node itself, not the whole disk with an offset). */
static int offset_args(const FsLocation *l, char **ret_image, char **ret_offset) {
        struct stat st;
        uint64_t off = l->offset;
        char *image;

        if (l->node && stat(l->node, &st) == 0 && S_ISBLK(st.st_mode)) {
                image = strdup(l->node);
                off = 0;
        } else
                image = strdup(l->disk);
        if (!image)
                return -ENOMEM;
        if (asprintf(ret_offset, "%" PRIu64, off) < 0) {
                free(image);
                return -ENOMEM;
        }
        *ret_image = image;
        return 0;
}

/* squashfs (unsquashfs -cat, squashfs-tools ≥ 4.5) and erofs (dump.erofs --cat, erofs-utils ≥
 * 1.8.x with --cat): the file's bytes on stdout. */
static int offset_tool_cat(const FsLocation *l, const char *path, char **ret, size_t *ret_size) {
        _cleanup_(freep) char *image = NULL, *off = NULL, *offopt = NULL, *pathopt = NULL;
        int r;

        r = offset_args(l, &image, &off);
        if (r < 0)
                return r;
        if (is_squashfs(l->fstype)) {
                char *argv[] = { (char *) "unsquashfs", (char *) "-o", off, (char *) "-cat", image, (char *) path, NULL };
                r = run_command(argv, &(RunOptions) { .ret_stdout = ret, .ret_stdout_size = ret_size, .quiet_stderr = true });
        } else {
                if (!fs_erofs_readable())
                        return -EOPNOTSUPP;
                if (asprintf(&offopt, "--offset=%s", off) < 0 || asprintf(&pathopt, "--path=%s", path) < 0)
                        return -ENOMEM;
                char *argv[] = { (char *) "dump.erofs", offopt, (char *) "--cat", pathopt, image, NULL };
                r = run_command(argv, &(RunOptions) { .ret_stdout = ret, .ret_stdout_size = ret_size, .quiet_stderr = true });
        }
        return r;
}

/* How the tool for this filesystem names the partition (ret_image) and a path inside it
 * (ret_spec: "::/path" for mtools; the plain path for debugfs). -EOPNOTSUPP when no tool
 * here reads this filesystem, or the image path cannot be written in the tool's syntax. */
static int tool_args(const FsLocation *l, const char *path, char **ret_image, char **ret_spec) {
        _cleanup_(freep) char *image = NULL;
        char *spec;
        int r;

        if (is_fat(l->fstype)) {
                /* mtools refuses FAT filesystems whose geometry fields look odd unless told not
                 * to check; ESPs written by firmware tools often do. Children inherit this. */
                if (setenv("MTOOLS_SKIP_CHECK", "1", 1) < 0)
                        return -errno;
                r = fs_tool_path(l, "@@", &image);
                if (r >= 0 && image && asprintf(&spec, "::%s", path) < 0)
                        return -ENOMEM;
        } else if (is_ext(l->fstype)) {
                r = fs_tool_path(l, "?offset=", &image);
                if (r >= 0 && image && !(spec = strdup(path)))
                        return -ENOMEM;
        } else
                return -EOPNOTSUPP;
        if (r < 0)
                return r;
        if (!image)
                return -EOPNOTSUPP;
        *ret_image = TAKE_PTR(image);
        *ret_spec = spec;
        return 0;
}

/* Tool failures mean "not there" for the callers, except for a missing tool or memory. */
static int tool_result(int r, size_t size) {
        if (r == -ENOMEM || r == -ENOPKG)
                return r;
        return r < 0 || size == 0 ? -ENOENT : 0;
}

int fs_read_file(const FsLocation *l, const char *path, void **ret, size_t *ret_size) {
        _cleanup_(freep) char *image = NULL, *spec = NULL, *out = NULL, *cmd = NULL;
        size_t size = 0;
        int r;

        if (is_squashfs(l->fstype) || is_erofs(l->fstype)) {
                r = offset_tool_cat(l, path, &out, &size);
                if (r == -EOPNOTSUPP)
                        return r;
                r = tool_result(r, size);
                if (r < 0)
                        return r;
                *ret = TAKE_PTR(out);
                *ret_size = size;
                return 0;
        }
        r = tool_args(l, path, &image, &spec);
        if (r < 0)
                return r;
        if (is_ext(l->fstype)) {
                if (asprintf(&cmd, "cat %s", spec) < 0)
                        return -ENOMEM;
                /* -c: do not read the bitmaps (slow, and unneeded); debugfs never writes without -w.
                 * It prints nothing and exits 0 for a missing file, so an empty result is ENOENT. */
                char *argv[] = { (char *) "debugfs", (char *) "-c", (char *) "-R", cmd, image, NULL };
                r = run_command(argv, &(RunOptions) { .ret_stdout = &out, .ret_stdout_size = &size, .quiet_stderr = true });
        } else {
                /* mtype without -t copies the bytes unchanged. */
                char *argv[] = { (char *) "mtype", (char *) "-i", image, spec, NULL };
                r = run_command(argv, &(RunOptions) { .ret_stdout = &out, .ret_stdout_size = &size, .quiet_stderr = true });
        }
        r = tool_result(r, size);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(out);
        *ret_size = size;
        return 0;
}

int fs_copy_file_to_fd(const FsLocation *l, const char *path, int fd) {
        _cleanup_(freep) char *image = NULL, *spec = NULL, *cmd = NULL;
        char dst[64];
        struct stat st;
        int r;

        if (is_squashfs(l->fstype) || is_erofs(l->fstype)) {
                _cleanup_(freep) char *out = NULL;
                size_t size = 0;

                /* Small files only (systemd-boot, configuration): they pass through memory. */
                r = offset_tool_cat(l, path, &out, &size);
                if (r == -EOPNOTSUPP)
                        return r;
                r = tool_result(r, size);
                if (r < 0)
                        return r;
                return pwrite_full(fd, out, size, 0);
        }
        r = tool_args(l, path, &image, &spec);
        if (r < 0)
                return r;
        snprintf(dst, sizeof(dst), "/proc/self/fd/%d", fd);
        if (is_ext(l->fstype)) {
                if (asprintf(&cmd, "dump %s %s", spec, dst) < 0)
                        return -ENOMEM;
                char *argv[] = { (char *) "debugfs", (char *) "-c", (char *) "-R", cmd, image, NULL };
                r = run_command(argv, &(RunOptions) { .keep_fd = fd, .quiet_stderr = true });
        } else {
                char *argv[] = { (char *) "mcopy", (char *) "-o", (char *) "-n", (char *) "-i", image, spec, dst, NULL };
                r = run_command(argv, &(RunOptions) { .keep_fd = fd, .quiet_stderr = true });
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        /* debugfs reports a missing file on stderr and exits 0: an empty result means absent. */
        return tool_result(r, (size_t) st.st_size);
}

static int strv_push(char ***list, size_t *n, const char *s, size_t len, bool dir) {
        char **nn = realloc(*list, (*n + 2) * sizeof(char *));

        if (!nn)
                return -ENOMEM;
        *list = nn;
        nn[*n] = malloc(len + 2);
        if (!nn[*n])
                return -ENOMEM;
        memcpy(nn[*n], s, len);
        if (dir)
                nn[*n][len++] = '/';
        nn[*n][len] = 0;
        nn[++*n] = NULL;
        return 0;
}

/* squashfs: "unsquashfs -d '' -lls" prints "drwxr-xr-x root/root 49 2026-12-02 13:27 /lib/x" for
 * the directory and everything below it. erofs: "dump.erofs --ls --path=DIR" prints a header,
 * then "NID TYPE NAME" lines (type 1: regular file, 2: directory, as in the erofs on-disk
 * format). Only regular files and directories are listed. */
static int offset_tool_list(const FsLocation *l, const char *dir, char ***ret) {
        _cleanup_(freep) char *image = NULL, *off = NULL, *out = NULL, *offopt = NULL, *pathopt = NULL, *prefix = NULL;
        char **names = NULL;
        size_t n = 0;
        int r;

        r = offset_args(l, &image, &off);
        if (r < 0)
                return r;
        if (asprintf(&prefix, "/%s/", dir + strspn(dir, "/")) < 0)
                return -ENOMEM;
        if (is_squashfs(l->fstype)) {
                char *argv[] = { (char *) "unsquashfs", (char *) "-o", off, (char *) "-d", (char *) "", (char *) "-lls", image, (char *) dir, NULL };
                r = run_command(argv, &(RunOptions) { .ret_stdout = &out, .quiet_stderr = true });
        } else {
                if (!fs_erofs_readable())
                        return -EOPNOTSUPP;
                if (asprintf(&offopt, "--offset=%s", off) < 0 || asprintf(&pathopt, "--path=%s", dir) < 0)
                        return -ENOMEM;
                char *argv[] = { (char *) "dump.erofs", offopt, (char *) "--ls", pathopt, image, NULL };
                r = run_command(argv, &(RunOptions) { .ret_stdout = &out, .quiet_stderr = true });
        }
        if (r == -ENOMEM || r == -ENOPKG)
                return r;
        if (r < 0)
                return -ENOENT;
        names = calloc(1, sizeof(char *));
        if (!names)
                return -ENOMEM;
        for (char *line = out; line && *line;) {
                char *eol = strchrnul(line, '\n'), *p = line;
                const char *name = NULL;
                bool is_dir = false, keep = false;

                line = *eol ? eol + 1 : eol;
                *eol = 0;
                if (is_squashfs(l->fstype)) {
                        /* five fields, then the path */
                        char type = *p;
                        for (int f = 0; f < 5 && *p; f++) {
                                p += strcspn(p, " \t");
                                p += strspn(p, " \t");
                        }
                        if (strncmp(p, prefix, strlen(prefix)) != 0)
                                continue;
                        name = p + strlen(prefix);
                        keep = (type == '-' || type == 'd') && *name && !strchr(name, '/');
                        is_dir = type == 'd';
                } else {
                        unsigned long nid, type;
                        int used = 0;
                        if (sscanf(p, " %lu %lu %n", &nid, &type, &used) < 2 || used == 0)
                                continue;
                        name = p + used;
                        keep = (type == 1 || type == 2) && *name && !streq(name, ".") && !streq(name, "..");
                        is_dir = type == 2;
                }
                if (!keep)
                        continue;
                r = strv_push(&names, &n, name, strlen(name), is_dir);
                if (r < 0) {
                        strv_free(names);
                        return r;
                }
        }
        *ret = names;
        return 0;
}

int fs_list_dir(const FsLocation *l, const char *dir, char ***ret) {
        _cleanup_(freep) char *tool_path = NULL, *out = NULL, *spec = NULL;
        char **names = NULL;
        size_t n = 0;
        int r;

        if (is_squashfs(l->fstype) || is_erofs(l->fstype))
                return offset_tool_list(l, dir, ret);
        if (!is_fat(l->fstype))
                return -EOPNOTSUPP;
        r = tool_args(l, dir, &tool_path, &spec);
        if (r < 0)
                return r;

        /* -b: bare listing, one "::/dir/name" per line, directories with a trailing "/". */
        char *argv[] = { (char *) "mdir", (char *) "-b", (char *) "-i", tool_path, spec, NULL };
        r = run_command(argv, &(RunOptions) { .ret_stdout = &out, .quiet_stderr = true });
        if (r == -ENOMEM || r == -ENOPKG)
                return r;
        if (r < 0)
                return -ENOENT;

        names = calloc(1, sizeof(char *));
        if (!names)
                return -ENOMEM;
        for (char *line = out; line && *line;) {
                char *eol = strchrnul(line, '\n'), *base, *end = eol, **nn;

                while (end > line && (end[-1] == '\r' || end[-1] == ' '))
                        end--;
                base = end;
                if (base > line && base[-1] == '/')
                        base--;
                while (base > line && base[-1] != '/')
                        base--;
                if (end > base) {
                        nn = realloc(names, (n + 2) * sizeof(char *));
                        if (!nn || !(nn[n] = strndup(base, (size_t) (end - base)))) {
                                strv_free(nn ?: names);
                                return -ENOMEM;
                        }
                        names = nn;
                        names[++n] = NULL;
                }
                line = *eol ? eol + 1 : eol;
        }
        *ret = names;
        return 0;
}

int fat_mkdirs(const FsLocation *l, const char *const *dirs) {
        for (size_t i = 0; dirs[i]; i++) {
                _cleanup_(freep) char *tool_path = NULL, *spec = NULL, *out = NULL;
                int r;

                r = tool_args(l, dirs[i], &tool_path, &spec);
                if (r < 0)
                        return error_setf(r, _("Cannot name %s in mtools syntax."), l->disk);
                /* Existing directories are fine: check first, since mmd fails on them. */
                char *check[] = { (char *) "mdir", (char *) "-b", (char *) "-i", tool_path, spec, NULL };
                if (run_command(check, &(RunOptions) { .ret_stdout = &out, .quiet_stderr = true }) >= 0)
                        continue;
                char *argv[] = { (char *) "mmd", (char *) "-i", tool_path, spec, NULL };
                r = run_command(argv, NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

int fat_copy_fd(const FsLocation *l, const char *path, int fd) {
        _cleanup_(freep) char *tool_path = NULL, *spec = NULL;
        char src[64];
        int r;

        if (!is_fat(l->fstype))
                return -EOPNOTSUPP;
        r = tool_args(l, path, &tool_path, &spec);
        if (r < 0)
                return error_setf(r, _("Cannot name %s in mtools syntax."), l->disk);
        snprintf(src, sizeof(src), "/proc/self/fd/%d", fd);

        /* -o: overwrite an existing file without asking; -n: no confirmation either. */
        char *argv[] = { (char *) "mcopy", (char *) "-o", (char *) "-n", (char *) "-i", tool_path, src, spec, NULL };
        return run_command(argv, &(RunOptions) { .keep_fd = fd });
}

int fat_write_file(const FsLocation *l, const char *path, const void *data, size_t size) {
        _cleanup_(closep) int fd = -EBADF;
        int r;

        /* The content goes through an anonymous memory file: nothing lands in /tmp, and secrets
         * such as the random seed never touch a disk other than the target. */
        fd = memfd_create("imprint-fat-file", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = pwrite_full(fd, data, size, 0);
        if (r < 0)
                return r;
        return fat_copy_fd(l, path, fd);
}
