/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "log.h"
#include "run.h"

static const char *const sbin_dirs[] = { "/usr/local/sbin", "/usr/sbin", "/sbin" };

char *argv_to_string(char *const argv[]) {
        char *s = NULL;

        for (size_t i = 0; argv[i]; i++) {
                bool quote = argv[i][0] == 0 || strpbrk(argv[i], " \t\n'\"\\$`*?;&|<>()") != NULL;

                if (i > 0 && !(s = strjoin_free(s, " ")))
                        return NULL;
                if (quote) {
                        if (!(s = strjoin_free(s, "'")))
                                return NULL;
                        for (const char *p = argv[i]; *p; p++) {
                                char c[2] = { *p, 0 };
                                if (!(s = strjoin_free(s, *p == '\'' ? "'\\''" : c)))
                                        return NULL;
                        }
                        if (!(s = strjoin_free(s, "'")))
                                return NULL;
                } else if (!(s = strjoin_free(s, argv[i])))
                        return NULL;
        }
        return s ? s : strdup("");
}

static char *resolve(const char *name) {
        const char *path = getenv("PATH");
        char buf[4096];

        if (strchr(name, '/'))
                return access(name, X_OK) == 0 ? strdup(name) : NULL;

        for (const char *p = path ?: "/usr/bin:/bin"; p && *p;) {
                const char *e = strchrnul(p, ':');
                snprintf(buf, sizeof(buf), "%.*s/%s", (int) (e - p), p, name);
                if (access(buf, X_OK) == 0)
                        return strdup(buf);
                p = *e ? e + 1 : e;
        }
        /* mkfs.* and friends live in sbin, which a non-root PATH often lacks. */
        for (size_t i = 0; i < ELEMENTSOF(sbin_dirs); i++) {
                snprintf(buf, sizeof(buf), "%s/%s", sbin_dirs[i], name);
                if (access(buf, X_OK) == 0)
                        return strdup(buf);
        }
        return NULL;
}

bool find_executable(const char *name) {
        _cleanup_(freep) char *p = resolve(name);
        return p != NULL;
}

typedef struct Buffer {
        char *data;
        size_t size, allocated;
} Buffer;

static int append(Buffer *b, const char *data, size_t n) {
        if (b->size + n + 1 > b->allocated) {
                size_t a = MAX(b->allocated * 2, b->size + n + 1);
                char *p = realloc(b->data, a);
                if (!p)
                        return -ENOMEM;
                b->data = p;
                b->allocated = a;
        }
        memcpy(b->data + b->size, data, n);
        b->size += n;
        b->data[b->size] = 0;
        return 0;
}

int run_command(char *const argv[], const RunOptions *opts) {
        static const RunOptions defaults = {};
        _cleanup_(freep) char *cmdline = NULL, *exe = NULL;
        Buffer outb = {}, errb = {};
        int in_pipe[2] = { -1, -1 }, out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
        size_t in_done = 0;
        int status, r = 0;
        pid_t pid;

        if (!opts)
                opts = &defaults;

        cmdline = argv_to_string(argv);
        if (!cmdline)
                return -ENOMEM;
        log_info("running: %s", cmdline);

        exe = resolve(argv[0]);
        if (!exe)
                return error_setf(-ENOPKG, "Cannot run %s: program not found (install the package that provides it).", argv[0]);

        if (pipe2(in_pipe, O_CLOEXEC) < 0 || pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) {
                r = -errno;
                goto finish;
        }

        pid = fork();
        if (pid < 0) {
                r = -errno;
                goto finish;
        }
        if (pid == 0) {
                /* Child: stdin from the pipe (or /dev/null when there is nothing to send). */
                if (dup2(in_pipe[0], STDIN_FILENO) < 0 || dup2(out_pipe[1], STDOUT_FILENO) < 0 ||
                    dup2(opts->merge_stderr ? out_pipe[1] : err_pipe[1], STDERR_FILENO) < 0)
                        _exit(127);
                if (opts->keep_fd > 0) {
                        int fl = fcntl(opts->keep_fd, F_GETFD);
                        if (fl >= 0)
                                fcntl(opts->keep_fd, F_SETFD, fl & ~FD_CLOEXEC);
                }
                signal(SIGPIPE, SIG_DFL);
                execv(exe, argv);
                _exit(127);
        }

        close(in_pipe[0]), in_pipe[0] = -1;
        close(out_pipe[1]), out_pipe[1] = -1;
        close(err_pipe[1]), err_pipe[1] = -1;
        if (!opts->stdin_data || opts->stdin_size == 0)
                close(in_pipe[1]), in_pipe[1] = -1;
        else
                fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);

        while (out_pipe[0] >= 0 || err_pipe[0] >= 0 || in_pipe[1] >= 0) {
                struct pollfd p[3] = {
                        { .fd = out_pipe[0], .events = POLLIN },
                        { .fd = err_pipe[0], .events = POLLIN },
                        { .fd = in_pipe[1], .events = POLLOUT },
                };
                char buf[8192];

                if (poll(p, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                for (int i = 0; i < 2; i++) {
                        int *fd = i == 0 ? &out_pipe[0] : &err_pipe[0];
                        if (*fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        ssize_t n = read(*fd, buf, sizeof(buf));
                        if (n <= 0) {
                                if (n < 0 && errno == EINTR)
                                        continue;
                                close(*fd), *fd = -1;
                                continue;
                        }
                        if (i == 0 ? (opts->ret_stdout ? append(&outb, buf, (size_t) n) : 0)
                                   : (errb.size < 64 * 1024 ? append(&errb, buf, (size_t) n) : 0)) {
                                r = -ENOMEM;
                        }
                }
                if (in_pipe[1] >= 0 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
                        ssize_t n = write(in_pipe[1], (const char *) opts->stdin_data + in_done,
                                          opts->stdin_size - in_done);
                        if (n > 0)
                                in_done += (size_t) n;
                        if (n < 0 && errno != EAGAIN && errno != EINTR)
                                in_done = opts->stdin_size; /* child closed stdin: stop feeding */
                        if (in_done >= opts->stdin_size)
                                close(in_pipe[1]), in_pipe[1] = -1;
                }
        }

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        r = -errno;
                        goto finish;
                }

        if (errb.data && errb.size > 0 && !opts->quiet_stderr) {
                _cleanup_(freep) char *copy = strdup(errb.data);
                char *save = NULL;
                for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save))
                        log_info("%s: %s", argv[0], line);
        }

        if (r < 0)
                goto finish;
        if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 || opts->ret_status)) {
                if (opts->ret_status)
                        *opts->ret_status = WEXITSTATUS(status);
                if (opts->ret_stdout) {
                        if (opts->ret_stdout_size)
                                *opts->ret_stdout_size = outb.size;
                        *opts->ret_stdout = outb.data ? TAKE_PTR(outb.data) : strdup("");
                        if (!*opts->ret_stdout)
                                r = -ENOMEM;
                }
                goto finish;
        }

        {
                /* Name the last stderr line: it is usually the reason. */
                const char *last = NULL;
                if (errb.data) {
                        char *s = strstrip(errb.data);
                        last = strrchr(s, '\n');
                        last = last ? last + 1 : s;
                }
                if (WIFEXITED(status))
                        r = error_setf(-EPROTO, "Command failed with exit status %d: %s%s%s", WEXITSTATUS(status),
                                       cmdline, isempty(last) ? "" : ": ", isempty(last) ? "" : last);
                else
                        r = error_setf(-EPROTO, "Command killed by signal %d: %s", WTERMSIG(status), cmdline);
        }

finish:
        free(outb.data);
        free(errb.data);
        for (int i = 0; i < 2; i++) {
                if (in_pipe[i] >= 0)
                        close(in_pipe[i]);
                if (out_pipe[i] >= 0)
                        close(out_pipe[i]);
                if (err_pipe[i] >= 0)
                        close(err_pipe[i]);
        }
        return r;
}
