/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "macro.h"

int read_full_file(const char *path, char **ret, size_t *ret_size) {
        _cleanup_(closep) int fd = -EBADF;
        _cleanup_(freep) char *buf = NULL;
        size_t size = 0, allocated = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        for (;;) {
                ssize_t n;

                if (allocated - size < 4097) {
                        char *p;

                        if (allocated > 16 * 1024 * 1024)
                                return -EFBIG;
                        allocated = allocated ? allocated * 2 : 4096 * 2;
                        p = realloc(buf, allocated);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                }
                n = read(fd, buf + size, allocated - size - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
        }

        buf[size] = 0;
        if (ret_size)
                *ret_size = size;
        *ret = TAKE_PTR(buf);
        return 0;
}

const char *file_type_name(mode_t mode) {
        switch (mode & S_IFMT) {
        case S_IFREG:
                return "a regular file";
        case S_IFDIR:
                return "a directory";
        case S_IFBLK:
                return "a block device";
        case S_IFCHR:
                return "a character device";
        case S_IFIFO:
                return "a FIFO";
        case S_IFSOCK:
                return "a socket";
        case S_IFLNK:
                return "a symbolic link";
        default:
                return "not a regular file";
        }
}

int open_input_file(const char *path, bool allow_block, struct stat *ret_st) {
        _cleanup_(closep) int fd = -EBADF;
        struct stat st;
        int flags;

        /* O_NONBLOCK: opening a FIFO for reading would wait for a writer. It is dropped again
         * once the file is known to be one we read. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) && !(allow_block && S_ISBLK(st.st_mode)))
                return S_ISDIR(st.st_mode) ? -EISDIR : -EBADFD;
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
                return -errno;
        if (ret_st)
                *ret_st = st;
        return TAKE_FD(fd);
}

int read_regular_file(const char *path, const char *what, size_t max, char **ret, size_t *ret_size) {
        _cleanup_(closep) int fd = -EBADF;
        _cleanup_(freep) char *buf = NULL;
        size_t size = 0;
        struct stat st;

        fd = open_input_file(path, false, &st);
        if (fd == -ENOENT)
                return error_setf(fd, "Cannot read %s %s: it does not exist.", what, path);
        if (fd == -EISDIR || fd == -EBADFD) {
                /* Not our answer to fstat(): say what the path is. */
                if (stat(path, &st) < 0)
                        st.st_mode = 0;
                return error_setf(-EINVAL, "Cannot read %s %s: it is %s, not a regular file.", what, path, file_type_name(st.st_mode));
        }
        if (fd < 0)
                return error_setf(fd, "Cannot read %s %s: %s.", what, path, strerror(-fd));
        if ((uint64_t) st.st_size > max)
                return error_setf(-E2BIG, "Cannot read %s %s: it is larger than %zu KiB, the limit for such a file.", what, path,
                                  max / 1024);

        /* The size fstat() gave is a hint (procfs says 0, a file may grow): read at most max + 1. */
        buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + size, max + 1 - size);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return error_setf(-errno, "Cannot read %s %s: %m.", what, path);
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size > max)
                        return error_setf(-E2BIG, "Cannot read %s %s: it is larger than %zu KiB, the limit for such a file.", what,
                                          path, max / 1024);
        }
        buf[size] = 0;
        if (ret_size)
                *ret_size = size;
        *ret = TAKE_PTR(buf);
        return 0;
}

char *strstrip(char *s) {
        char *e;

        while (isspace((unsigned char) *s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char) e[-1]))
                *--e = 0;
        return s;
}

int read_one_line_file(const char *path, char **ret) {
        _cleanup_(freep) char *buf = NULL;
        char *nl, *s, *copy;
        int r;

        r = read_full_file(path, &buf, NULL);
        if (r < 0)
                return r;
        nl = strchr(buf, '\n');
        if (nl)
                *nl = 0;
        s = strstrip(buf);
        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

int read_sysfs_block_attr(const char *name, const char *attr, char **ret) {
        char path[512];

        snprintf(path, sizeof(path), "/sys/class/block/%s/%s", name, attr);
        return read_one_line_file(path, ret);
}

int read_sysfs_block_u64(const char *name, const char *attr, uint64_t *ret) {
        _cleanup_(freep) char *s = NULL;
        char *end;
        int r;

        r = read_sysfs_block_attr(name, attr, &s);
        if (r < 0)
                return r;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

char *env_file_get(const char *buf, const char *key) {
        size_t klen = strlen(key);
        const char *p = buf;

        while (p && *p) {
                const char *eol = strchrnul(p, '\n');

                while (p < eol && isspace((unsigned char) *p))
                        p++;
                if ((size_t) (eol - p) > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
                        const char *v = p + klen + 1, *e = eol;
                        char *out, *o;

                        while (e > v && isspace((unsigned char) e[-1]))
                                e--;
                        out = o = malloc((size_t) (e - v) + 1);
                        if (!out)
                                return NULL;
                        /* Shell-style quoting as os-release(5) allows: strip quotes, honour \ escapes. */
                        for (char quote = 0; v < e; v++) {
                                if (!quote && (*v == '"' || *v == '\'')) {
                                        quote = *v;
                                        continue;
                                }
                                if (quote && *v == quote) {
                                        quote = 0;
                                        continue;
                                }
                                if (*v == '\\' && v + 1 < e && quote != '\'') {
                                        *o++ = *++v;
                                        continue;
                                }
                                *o++ = *v;
                        }
                        *o = 0;
                        return out;
                }
                p = *eol ? eol + 1 : eol;
        }
        return NULL;
}

int pwrite_full(int fd, const void *buf, size_t len, uint64_t offset) {
        const uint8_t *p = buf;

        while (len > 0) {
                ssize_t n = pwrite(fd, p, len, (off_t) offset);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t) n;
                offset += (uint64_t) n;
        }
        return 0;
}

int pread_full(int fd, void *buf, size_t len, uint64_t offset) {
        uint8_t *p = buf;

        while (len > 0) {
                ssize_t n = pread(fd, p, len, (off_t) offset);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO; /* short file: the caller asked for bytes that are not there */
                p += n;
                len -= (size_t) n;
                offset += (uint64_t) n;
        }
        return 0;
}

char *strjoin_free(char *a, const char *b) {
        size_t la = a ? strlen(a) : 0, lb = strlen(b);
        char *r = realloc(a, la + lb + 1);

        if (!r) {
                free(a);
                return NULL;
        }
        memcpy(r + la, b, lb + 1);
        return r;
}

char *strdup_safe(const char *s) {
        return s ? strdup(s) : NULL;
}

int read_fd_all(int fd, uint64_t size, void **ret) {
        void *buf;
        int r;

        if (size > SIZE_MAX)
                return -EFBIG;
        buf = malloc(size ?: 1);
        if (!buf)
                return -ENOMEM;
        r = pread_full(fd, buf, (size_t) size, 0);
        if (r < 0) {
                free(buf);
                return r;
        }
        *ret = buf;
        return 0;
}
