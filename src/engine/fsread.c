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

int fs_list_dir(const FsLocation *l, const char *dir, char ***ret) {
        _cleanup_(freep) char *tool_path = NULL, *out = NULL, *spec = NULL;
        char **names = NULL;
        size_t n = 0;
        int r;

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
