/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "interrupt.h"

static const int signals[] = { SIGINT, SIGTERM, SIGHUP };
static struct sigaction saved[3];
static bool installed = false;
static volatile sig_atomic_t pending_signal = 0;

static void on_signal(int sig) {
        struct sigaction sa = { .sa_handler = SIG_DFL };

        if (pending_signal == sig) {
                /* Asked twice: whoever sends it again wants the process gone now. */
                (void) sigaction(sig, &sa, NULL);
                (void) raise(sig);
                return;
        }
        pending_signal = sig;
}

int interrupt_install(void) {
        struct sigaction sa = { .sa_handler = on_signal };

        if (installed)
                return 0;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
                if (sigaction(signals[i], &sa, &saved[i]) < 0)
                        return -errno;
        installed = true;
        return 0;
}

void interrupt_uninstall(void) {
        if (!installed)
                return;
        for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
                (void) sigaction(signals[i], &saved[i], NULL);
        installed = false;
        pending_signal = 0;
}

int interrupt_pending(void) {
        return pending_signal;
}

int interrupt_exit_status(int sig) {
        return sig > 0 ? 128 + sig : 1;
}
