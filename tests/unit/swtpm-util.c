/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The private swtpm of the TPM unit tests; see swtpm-util.h. */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "run.h"
#include "swtpm-util.h"
#include "tests.h"

int swtpm_test_requirements(void) {
        if (geteuid() != 0) {
                printf("skip: needs root (swtpm, mount namespace)\n");
                return 77;
        }
        if (!find_executable("swtpm")) {
                printf("skip: swtpm is not installed\n");
                return 77;
        }
        return 0;
}

/* ---- process plumbing ------------------------------------------------------------------------- */

static void stop_child(pid_t *pid) {
        if (*pid > 0) {
                kill(*pid, SIGTERM);
                (void) waitpid(*pid, NULL, 0);
                *pid = -1;
        }
}

void swtpm_stop(Swtpm *s) {
        stop_child(&s->relay_pid);
        stop_child(&s->pid);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st, (void) flag, (void) ftw;
        (void) remove(path);
        return 0;
}

void remove_tree(const char *dir) {
        (void) nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

bool read_full(int fd, void *p, size_t n) {
        for (size_t done = 0; done < n;) {
                ssize_t k = read(fd, (uint8_t *) p + done, n - done);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return false;
                done += (size_t) k;
        }
        return true;
}

bool write_full(int fd, const void *p, size_t n) {
        for (size_t done = 0; done < n;) {
                ssize_t k = write(fd, (const uint8_t *) p + done, n - done);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return false;
                done += (size_t) k;
        }
        return true;
}

static size_t put32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24), p[1] = (uint8_t) (v >> 16), p[2] = (uint8_t) (v >> 8), p[3] = (uint8_t) v;
        return 4;
}

static uint32_t be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* ---- swtpm ------------------------------------------------------------------------------------ */

static bool port_free(int port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool ok;

        ASSERT_TRUE(fd >= 0);
        ok = bind(fd, (struct sockaddr *) &a, sizeof(a)) == 0;
        close(fd);
        return ok;
}

int swtpm_connect(const Swtpm *s) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) s->port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

void swtpm_start(Swtpm *s, const char *dir) {
        char state[300], server[96], ctrl[96], logfile[300];
        unsigned seed = (unsigned) time(NULL) ^ (unsigned) getpid();

        ASSERT_TRUE(strlen(dir) < sizeof(s->dir));
        snprintf(s->dir, sizeof(s->dir), "%s", dir);

        /* Two adjacent free ports: data and control. */
        for (int i = 0;; i++) {
                ASSERT_TRUE(i < 200);
                s->port = 20000 + (int) (rand_r(&seed) % 40000);
                if (port_free(s->port) && port_free(s->port + 1))
                        break;
        }
        snprintf(state, sizeof(state), "dir=%s/state", dir);
        snprintf(server, sizeof(server), "type=tcp,port=%d,bindaddr=127.0.0.1", s->port);
        snprintf(ctrl, sizeof(ctrl), "type=tcp,port=%d,bindaddr=127.0.0.1", s->port + 1);
        snprintf(logfile, sizeof(logfile), "%s/state", dir);
        ASSERT_TRUE(mkdir(logfile, 0700) == 0);
        snprintf(logfile, sizeof(logfile), "%s/swtpm.log", dir);
        snprintf(s->tcti, sizeof(s->tcti), "swtpm:port=%d", s->port);

        s->pid = fork();
        ASSERT_TRUE(s->pid >= 0);
        if (s->pid == 0) {
                char *argv[] = { "swtpm", "socket", "--tpm2", "--tpmstate", state, "--server", server,
                                 "--ctrl", ctrl, "--flags", "not-need-init,startup-clear", NULL };
                int fd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

                (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (fd >= 0) {
                        dup2(fd, STDOUT_FILENO);
                        dup2(fd, STDERR_FILENO);
                }
                execvp(argv[0], argv);
                _exit(127);
        }

        for (int i = 0;; i++) {
                int fd = swtpm_connect(s);
                if (fd >= 0) {
                        close(fd);
                        break;
                }
                ASSERT_TRUE(i < 100);
                ASSERT_TRUE(waitpid(s->pid, NULL, WNOHANG) == 0);
                usleep(100 * 1000);
        }
        printf("swtpm listening on 127.0.0.1:%d (TCTI %s)\n", s->port, s->tcti);
}

/* ---- the /dev/tpmrm0 relay -------------------------------------------------------------------- */

/* A pseudo-terminal in raw mode whose slave side behaves like /dev/tpmrm0 (one command written, one
 * response read), forwarding each command over a fresh connection to swtpm's data port. Fresh
 * connections matter: swtpm serves one client at a time, and the test's own contexts connect in
 * between. */
static _noreturn_ void relay_loop(const Swtpm *s, int master) {
        static uint8_t cmd[8192], rsp[8192];

        for (;;) {
                uint32_t size, rsize;
                int fd;

                if (!read_full(master, cmd, 10))
                        _exit(0);
                size = be32(cmd + 2);
                if (size < 10 || size > sizeof(cmd) || !read_full(master, cmd + 10, size - 10))
                        _exit(1);
                fd = swtpm_connect(s);
                if (fd < 0)
                        _exit(2);
                if (!write_full(fd, cmd, size) || !read_full(fd, rsp, 10))
                        _exit(3);
                rsize = be32(rsp + 2);
                if (rsize < 10 || rsize > sizeof(rsp) || !read_full(fd, rsp + 10, rsize - 10))
                        _exit(4);
                close(fd);
                if (!write_full(master, rsp, rsize))
                        _exit(5);
        }
}

void swtpm_start_relay(Swtpm *s) {
        struct termios t;
        int master, slave;

        master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        ASSERT_TRUE(master >= 0);
        ASSERT_TRUE(grantpt(master) == 0 && unlockpt(master) == 0);
        ASSERT_TRUE(ptsname_r(master, s->relay_pts, sizeof(s->relay_pts)) == 0);
        slave = open(s->relay_pts, O_RDWR | O_NOCTTY | O_CLOEXEC);
        ASSERT_TRUE(slave >= 0);
        ASSERT_TRUE(tcgetattr(slave, &t) == 0);
        cfmakeraw(&t);
        ASSERT_TRUE(tcsetattr(slave, TCSANOW, &t) == 0);

        s->relay_pid = fork();
        ASSERT_TRUE(s->relay_pid >= 0);
        if (s->relay_pid == 0) {
                /* The slave stays open here, so the master never reads EOF between clients. */
                (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
                relay_loop(s, master);
        }
        close(master);
        close(slave);
        printf("relay: %s -> swtpm\n", s->relay_pts);
}

/* ---- a separate ESYS connection --------------------------------------------------------------- */

TestEsys test_esys_open(const char *tcti) {
        TestEsys t = {};

        ASSERT_EQ(Tss2_TctiLdr_Initialize(tcti, &t.tcti), TSS2_RC_SUCCESS);
        ASSERT_EQ(Esys_Initialize(&t.esys, t.tcti, NULL), TSS2_RC_SUCCESS);
        return t;
}

void test_esys_close(TestEsys *t) {
        Esys_Finalize(&t->esys);
        Tss2_TctiLdr_Finalize(&t->tcti);
}

/* systemd 252's tpm2_unseal() never flushes its HMAC session; behind /dev/tpmrm0 the kernel's
 * resource manager drops it when the plugin closes the device, but swtpm has no resource manager
 * and only three session slots. Do what the kernel would: flush every session and transient
 * object left behind, with raw TPM2_FlushContext commands. */
unsigned swtpm_flush_leftovers(const Swtpm *s) {
        static const TPM2_HANDLE firsts[] = { TPM2_HMAC_SESSION_FIRST, TPM2_POLICY_SESSION_FIRST, TPM2_TRANSIENT_FIRST };
        TPM2_HANDLE handles[64];
        unsigned n = 0;
        TestEsys t = test_esys_open(s->tcti);

        for (size_t i = 0; i < ELEMENTSOF(firsts); i++) {
                TPMS_CAPABILITY_DATA *cap = NULL;
                TPMI_YES_NO more;

                ASSERT_EQ(Esys_GetCapability(t.esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
                                             firsts[i], TPM2_MAX_CAP_HANDLES, &more, &cap), TSS2_RC_SUCCESS);
                for (uint32_t j = 0; j < cap->data.handles.count && n < ELEMENTSOF(handles); j++)
                        if ((cap->data.handles.handle[j] >> 24) == (firsts[i] >> 24))
                                handles[n++] = cap->data.handles.handle[j];
                Esys_Free(cap);
        }
        test_esys_close(&t);

        for (unsigned i = 0; i < n; i++) {
                uint8_t cmd[14] = { 0x80, 0x01, 0, 0, 0, 14, 0, 0, 0x01, 0x65 }, rsp[10];
                int fd = swtpm_connect(s);

                ASSERT_TRUE(fd >= 0);
                put32(cmd + 10, handles[i]);
                ASSERT_TRUE(write_full(fd, cmd, sizeof(cmd)) && read_full(fd, rsp, sizeof(rsp)));
                ASSERT_EQ(be32(rsp + 6), TPM2_RC_SUCCESS);
                close(fd);
        }
        return n;
}

/* ---- stock systemd's token plugin ------------------------------------------------------------- */

/* As systemd-cryptsetup would call it, against swtpm: inside a private mount namespace
 * /sys/class/tpmrm/tpmrm0 exists and /dev/tpmrm0 is the relay's terminal (v252's plugin ignores
 * $SYSTEMD_TPM2_DEVICE and takes the one tpmrm device it finds, S252 acquire_luks2_key() →
 * tpm2_find_device_auto()). */
int swtpm_plugin_unlocks(const Swtpm *s, const char *image, const char *signature, const Secret *pin) {
        static const char script[] =
                "set -e\n"
                "mount -t tmpfs tmpfs /sys/class\n"
                "mkdir -p /sys/class/tpmrm/tpmrm0\n"
                "mkdir -p \"$3/olddev\"\n"
                "mount --rbind /dev \"$3/olddev\"\n"
                "mount -t tmpfs tmpfs /dev\n"
                "for n in null zero full random urandom tty; do\n"
                "        [ -e \"$3/olddev/$n\" ] || continue\n"
                "        touch \"/dev/$n\"\n"
                "        mount --bind \"$3/olddev/$n\" \"/dev/$n\"\n"
                "done\n"
                "touch /dev/tpmrm0\n"
                "mount --bind \"$3/olddev${1#/dev}\" /dev/tpmrm0\n"
                "mount -t tmpfs tmpfs /run\n"
                "if [ -n \"$4\" ]; then mkdir -p /run/systemd; cp \"$4\" /run/systemd/tpm2-pcr-signature.json; fi\n"
                "exec cryptsetup open --test-passphrase --token-only --token-type systemd-tpm2 \"$2\"\n";
        char *argv[] = { "unshare", "--mount", "--propagation", "private", "sh", "-c", (char *) script, "sh",
                         (char *) s->relay_pts, (char *) image, (char *) s->dir, (char *) (signature ?: ""), NULL };
        unsigned leftovers;
        int r;

        ASSERT_TRUE(s->relay_pid > 0);
        /* A PIN reaches cryptsetup's "Enter token PIN:" prompt through stdin. */
        r = run_command(argv, &(RunOptions) { .stdin_data = pin ? pin->data : NULL, .stdin_size = pin ? pin->size : 0 });
        leftovers = swtpm_flush_leftovers(s);
        if (leftovers > 0)
                printf("flushed %u TPM handles the plugin left behind\n", leftovers);
        return r;
}
