/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A private swtpm for the unit tests that seal to a TPM (test-tpm2, test-encrypt): started on two
 * adjacent free ports of 127.0.0.1 (TCTI "swtpm:port=N"), with its state in the test's own
 * directory, and killed when the test ends (also when the test process dies: PR_SET_PDEATHSIG).
 *
 * For stock systemd's token plugin, which only uses the TPM it finds in /sys/class/tpmrm, a relay
 * makes a pseudo-terminal behave like /dev/tpmrm0, and swtpm_plugin_unlocks() runs
 * cryptsetup --token-only in a private mount namespace where that terminal is /dev/tpmrm0.
 *
 * Every helper aborts the test (tests.h) when the machinery itself fails. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include "secret.h"

typedef struct Swtpm {
        char dir[256];          /* the test's directory: swtpm's state and log go there */
        pid_t pid, relay_pid;
        int port;               /* data port; the control port is port + 1 */
        char tcti[64];          /* "swtpm:port=N" */
        char relay_pts[64];     /* the relay's terminal, /dev/pts/N */
} Swtpm;

#define SWTPM_INIT { .pid = -1, .relay_pid = -1 }

/* 77 (after saying why) when the test cannot run here: not root, or swtpm missing; else 0. */
int swtpm_test_requirements(void);

/* Starts swtpm with its state in <dir>/state and its log in <dir>/swtpm.log, and waits until it
 * accepts connections. */
void swtpm_start(Swtpm *s, const char *dir);
/* Starts the /dev/tpmrm0 relay (after swtpm_start()). */
void swtpm_start_relay(Swtpm *s);
/* Stops the relay and swtpm; safe to call twice, from atexit() and from a SIGABRT handler. */
void swtpm_stop(Swtpm *s);

/* A new TCP connection to swtpm's data port, or a negative errno. */
int swtpm_connect(const Swtpm *s);

/* A separate ESYS connection, for PCR reads and extends behind the back of the code under test. */
typedef struct TestEsys {
        TSS2_TCTI_CONTEXT *tcti;
        ESYS_CONTEXT *esys;
} TestEsys;

TestEsys test_esys_open(const char *tcti);
void test_esys_close(TestEsys *t);

/* Flushes every session and transient object left in swtpm (what the kernel's resource manager
 * does when a client closes /dev/tpmrm0). Returns how many there were. */
unsigned swtpm_flush_leftovers(const Swtpm *s);

/* Stock systemd's token plugin unlocks image through the relay: cryptsetup open --test-passphrase
 * --token-only --token-type systemd-tpm2. signature: a tpm2-pcr-signature.json file put in
 * /run/systemd, NULL for none; pin: typed at cryptsetup's PIN prompt, NULL for none. Needs
 * swtpm_start_relay(). 0 when it unlocked. */
int swtpm_plugin_unlocks(const Swtpm *s, const char *image, const char *signature, const Secret *pin);

/* Removes a directory tree (nftw, depth first, not following symlinks). */
void remove_tree(const char *dir);

bool read_full(int fd, void *p, size_t n);
bool write_full(int fd, const void *p, size_t n);
