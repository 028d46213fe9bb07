/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How imprint --console picks its front end and sizes a serial terminal: the kernel command line
 * parser (quotes, last one wins, a key that is only a prefix of another), the terminal kind of a
 * pseudo terminal, and the size query against a terminal at the other end of a pty pair that
 * answers the cursor-position report as a real one does (and one that does not answer). */

#include <errno.h>
#include <pty.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc-cmdline.h"
#include "terminal.h"
#include "tests.h"

static void expect_key(const char *line, const char *key, const char *want) {
        char *v = NULL;
        int r = cmdline_get_key(line, key, &v);

        if (!want) {
                ASSERT_EQ(r, 0);
                ASSERT_TRUE(!v);
                return;
        }
        ASSERT_EQ(r, 1);
        ASSERT_STREQ(v, want);
        free(v);
}

static void test_cmdline(void) {
        const char *l = "BOOT_IMAGE=/vmlinuz console=tty1 console=ttyS0 imprint.frontend=plain "
                        "imprint.frontend.ttyS0=tui quiet imprint.frontendx=no\n";

        expect_key(l, "imprint.frontend", "plain");
        expect_key(l, "imprint.frontend.ttyS0", "tui");
        expect_key(l, "imprint.frontend.tty1", NULL);
        /* The last one wins, as for systemd. */
        expect_key(l, "console", "ttyS0");
        /* A key without "=" is not a value; a prefix is not the key. */
        expect_key("quiet imprint.frontend", "imprint.frontend", NULL);
        expect_key("imprint.frontendx=no", "imprint.frontend", NULL);
        /* Quotes hold white space and are removed. */
        expect_key("a=1 imprint.config=\"/run/my config.json\" b", "imprint.config", "/run/my config.json");
        expect_key("\"imprint.config=/x y\"", "imprint.config", "/x y");
        expect_key("", "imprint.frontend", NULL);
        expect_key("  \t ", "imprint.frontend", NULL);
        expect_key("imprint.frontend=", "imprint.frontend", "");
}

/* The far end of the pty: waits for CSI 6n, then answers ANSWER (NULL: never). */
static pid_t fake_terminal(int master, const char *answer) {
        pid_t pid = fork();

        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                char buf[256];
                size_t n = 0;

                while (n < sizeof(buf) - 1) {
                        ssize_t k = read(master, buf + n, sizeof(buf) - 1 - n);
                        if (k <= 0)
                                _exit(1);
                        n += (size_t) k;
                        buf[n] = 0;
                        if (strstr(buf, "\033[6n"))
                                break;
                }
                if (answer) {
                        /* A key pressed before the answer must not confuse the parser. */
                        (void) !write(master, "x", 1);
                        (void) !write(master, answer, strlen(answer));
                }
                sleep(2);
                _exit(0);
        }
        return pid;
}

static void test_size(const char *answer, int want_r, unsigned short rows, unsigned short cols) {
        struct winsize ws = {};
        int master, slave, r;
        pid_t pid;

        ASSERT_OK(openpty(&master, &slave, NULL, NULL, NULL) == 0 ? 0 : -errno);
        ASSERT_EQ(terminal_kind(slave), TERMINAL_PSEUDO);
        ASSERT_OK(ioctl(slave, TIOCGWINSZ, &ws) == 0 ? 0 : -errno);
        ASSERT_EQ(ws.ws_row, 0);
        pid = fake_terminal(master, answer);
        r = terminal_fix_size(slave, 500);
        ASSERT_EQ(r, want_r);
        ASSERT_OK(ioctl(slave, TIOCGWINSZ, &ws) == 0 ? 0 : -errno);
        ASSERT_EQ(ws.ws_row, rows);
        ASSERT_EQ(ws.ws_col, cols);
        /* A size that is known is left alone, and nothing is asked. */
        ASSERT_EQ(terminal_fix_size(slave, 500), 0);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(slave);
        close(master);
}

int main(void) {
        test_cmdline();
        printf("ok: kernel command line keys\n");
        test_size("\033[43;132R", 1, 43, 132);
        printf("ok: a terminal that answers the cursor-position report sets the size (43x132)\n");
        test_size(NULL, 0, 24, 80);
        printf("ok: a line that does not answer gets 80x24\n");
        return 0;
}
