/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <linux/kd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "terminal.h"

TerminalKind terminal_kind(int fd) {
        struct stat st;

        if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode))
                return TERMINAL_LINE;
        /* devices.txt: major 4 minor 1–63 are the virtual consoles (tty1…), majors 136–143 the
         * Unix98 pseudo-terminal slaves. */
        if (major(st.st_rdev) == 4 && minor(st.st_rdev) >= 1 && minor(st.st_rdev) < 64)
                return TERMINAL_VIRTUAL_CONSOLE;
        if (major(st.st_rdev) >= 136 && major(st.st_rdev) <= 143)
                return TERMINAL_PSEUDO;
        return TERMINAL_LINE;
}

int terminal_vt_set_utf8(int fd) {
        static const char utf8_on[] = "\033%G";
        int mode;

        if (terminal_kind(fd) != TERMINAL_VIRTUAL_CONSOLE)
                return 0;
        if (write(fd, utf8_on, sizeof(utf8_on) - 1) < 0)
                return -errno;
        /* The keyboard only from the translated byte mode (not raw: a display server's). */
        if (ioctl(fd, KDGKBMODE, &mode) == 0 && mode == K_XLATE && ioctl(fd, KDSKBMODE, K_UNICODE) < 0)
                return -errno;
        return 1;
}

static long long now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the answer to CSI 6n, "ESC [ ROW ; COL R", skipping whatever came before it (a key the
 * user pressed meanwhile is lost; this runs before the first screen). */
static int read_cursor_report(int fd, int timeout_ms, unsigned *ret_row, unsigned *ret_col) {
        char buf[64];
        size_t n = 0;
        long long end = now_ms() + timeout_ms;

        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                long long left = end - now_ms();
                ssize_t k;
                char *esc;

                if (left <= 0)
                        return -ETIMEDOUT;
                if (poll(&p, 1, (int) left) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (!(p.revents & POLLIN))
                        continue;
                if (n >= sizeof(buf) - 1)
                        n = 0;
                k = read(fd, buf + n, sizeof(buf) - 1 - n);
                if (k < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                n += (size_t) k;
                buf[n] = 0;
                esc = strrchr(buf, '\033');
                if (esc && strchr(esc, 'R')) {
                        unsigned row, col;
                        char r;

                        if (sscanf(esc, "\033[%u;%u%c", &row, &col, &r) == 3 && r == 'R' && row > 0 && col > 0) {
                                *ret_row = row;
                                *ret_col = col;
                                return 0;
                        }
                }
        }
}

int terminal_fix_size(int fd, int timeout_ms) {
        struct winsize ws = {};
        struct termios old, raw;
        unsigned row = 0, col = 0;
        int r;

        if (ioctl(fd, TIOCGWINSZ, &ws) < 0)
                return -errno;
        if (ws.ws_row > 0 && ws.ws_col > 0)
                return 0;
        if (tcgetattr(fd, &old) < 0)
                return -errno;
        raw = old;
        raw.c_lflag &= ~(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        if (tcsetattr(fd, TCSANOW, &raw) < 0)
                return -errno;
        /* Save the cursor, go as far as the terminal lets us, ask where that is, restore. */
        static const char ask[] = "\0337\033[32766;32766H\033[6n\0338";
        if (write(fd, ask, sizeof(ask) - 1) != (ssize_t) (sizeof(ask) - 1))
                r = -EIO;
        else
                r = read_cursor_report(fd, timeout_ms, &row, &col);
        (void) tcsetattr(fd, TCSANOW, &old);

        if (r < 0 || row < 2 || col < 2 || row > 1000 || col > 1000) {
                ws.ws_row = 24;
                ws.ws_col = 80;
                r = 0;
        } else {
                ws.ws_row = (unsigned short) row;
                ws.ws_col = (unsigned short) col;
                r = 1;
        }
        if (ioctl(fd, TIOCSWINSZ, &ws) < 0)
                return -errno;
        return r;
}
