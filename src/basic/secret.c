/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <termios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fileio.h"
#include "secret.h"

Secret *secret_new(size_t size) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE), total;
        Secret *s;

        if (size > SIZE_MAX / 2)
                return errno = ENOMEM, NULL;
        total = ROUND_UP(sizeof(Secret) + size + 1, page);
        /* mmap, not malloc: the pages are ours alone, so mlock and madvise affect nothing else. */
        s = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (s == MAP_FAILED)
                return NULL;
        /* Not in core dumps, not inherited by children; locked where the limit allows (an
         * unprivileged process may only lock 8 MiB; failing that, the other protections stay). */
        (void) madvise(s, total, MADV_DONTDUMP);
        (void) madvise(s, total, MADV_WIPEONFORK);
        (void) mlock(s, total);
        s->size = size;
        s->allocated = total;
        return s;
}

Secret *secret_new_from(const void *buf, size_t size) {
        Secret *s = secret_new(size);

        if (s && size > 0)
                memcpy(s->data, buf, size);
        return s;
}

void secret_wipe(void *p, size_t n) {
        if (p && n > 0)
                explicit_bzero(p, n);
}

Secret *secret_free(Secret *s) {
        size_t total;

        if (!s)
                return NULL;
        total = s->allocated;
        explicit_bzero(s, total);
        (void) munlock(s, total);
        (void) munmap(s, total);
        return NULL;
}

int secret_read_file(const char *path, size_t max, Secret **ret) {
        Secret *s;
        size_t n = 0;
        int fd;

        /* A FIFO or a device is refused, not waited on or read without end. */
        fd = open_input_file(path, false, NULL);
        if (fd == -EISDIR || fd == -EBADFD)
                return -EINVAL;
        if (fd < 0)
                return fd;
        s = secret_new(max + 1);
        if (!s) {
                close(fd);
                return -ENOMEM;
        }
        for (;;) {
                ssize_t k = read(fd, s->data + n, max + 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = -errno;
                        close(fd);
                        secret_free(s);
                        return r;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > max) {
                        close(fd);
                        secret_free(s);
                        return -E2BIG;
                }
        }
        close(fd);
        if (n > 0 && s->data[n - 1] == '\n')
                s->data[--n] = 0;
        if (n == 0 || memchr(s->data, 0, n)) {
                secret_free(s);
                return -EINVAL;
        }
        s->size = n;
        *ret = s;
        return 0;
}

int secret_read_credential(const char *name, size_t max, Secret **ret) {
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        char path[PATH_MAX];

        if (!dir || !*dir || strchr(name, '/'))
                return -ENOENT;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        return secret_read_file(path, max, ret);
}

int secret_read_tty(int fd_in, int fd_out, const char *prompt, size_t max, Secret **ret) {
        struct termios old, quiet;
        Secret *s;
        size_t n = 0;
        int r = 0;

        if (tcgetattr(fd_in, &old) < 0)
                return -ENOTTY;
        s = secret_new(max + 1);
        if (!s)
                return -ENOMEM;
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t) ECHO;
        quiet.c_lflag |= ECHONL;
        if (prompt)
                (void) !write(fd_out, prompt, strlen(prompt));
        if (tcsetattr(fd_in, TCSAFLUSH, &quiet) < 0) {
                secret_free(s);
                return -errno;
        }
        for (;;) {
                char c;
                ssize_t k = read(fd_in, &c, 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        break;
                }
                if (k == 0) {
                        r = n == 0 ? -ECANCELED : 0;
                        break;
                }
                if (c == '\n' || c == '\r')
                        break;
                if (n >= max) {
                        r = -E2BIG;
                        continue; /* read to the end of the line, keep nothing more */
                }
                s->data[n++] = (unsigned char) c;
                secret_wipe(&c, sizeof(c));
        }
        (void) tcsetattr(fd_in, TCSAFLUSH, &old);
        if (r < 0) {
                secret_free(s);
                return r;
        }
        s->data[n] = 0;
        s->size = n;
        *ret = s;
        return 0;
}
