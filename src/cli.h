/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the command-line verbs and the line-by-line front end (plain.c) share: exit codes,
 * printing, and driving the engine from a target, an image and layout options. */

#include <stdbool.h>
#include <stdio.h>

#include "account.h"
#include "dialogue.h"
#include "disk.h"
#include "encrypt.h"
#include "executor.h"
#include "image.h"
#include "plan.h"

extern bool arg_json;  /* machine-readable output */
extern bool arg_yes;   /* confirmed in advance */

int exit_code_from_errno(int r);
/* Prints the engine's message for r on stderr and returns the exit code for it. */
int fail(int r);
int usage_error(const char *fmt, ...) _printf_(1, 2);

void print_disk(const Disk *d);

/* Opens an image and reads its checksum, UKIs and systemd-boot. */
int open_image(const char *path, Image **ret);
/* Discovers target, opens source (a path or "self", or NULL) and plans. */
int build_plan(const char *target, const char *source, const PlanOptions *opts, const EncryptRequest *enc,
               const AccountRequest *account, const PlanSettings *settings, Image **img, Plan **ret);

/* What an install needs besides the plan. */
typedef struct InstallExtras {
        bool no_variables;
        const char *escrow_dir;       /* deliver the recovery key there (unattended) */
        const Secret *passphrase;     /* the plan's passphrase keyslot */
        const Secret *tpm2_pin;
        const Secret *user_password;  /* the account's */
} InstallExtras;

/* Runs the executor with the command line's progress output and confirmation; returns an exit
 * code (a JSON result line is printed with --json). */
int execute_plan(const Plan *p, Image *img, const InstallExtras *x);

/* The passphrase and TPM PIN a plan needs, from credentials or the terminal. */
int collect_secrets(const Plan *p, bool unattended, Secret **ret_passphrase, Secret **ret_pin);
int collect_user_password(const Plan *p, bool unattended, bool allow_weak, Secret **ret);



void on_progress(const ProgressEvent *ev, void *userdata);
int on_confirm(const Plan *p, void *userdata);

/* The line-by-line dialogue (imprint --plain): for screen readers and serial consoles. language
 * ("en", "de", "fr", or NULL) is preselected in its first question. */
int plain_run(const char *source, const char *language);

/* The full-screen installer (ui/): imprint with no arguments on a terminal, or imprint --tui. */
typedef struct TuiOptions {
        const char *source;            /* the OS image; NULL: the medium's default (imprint.conf) */
        char **targets;                /* offer only these disks or image files (tests, demos) */
        size_t n_targets;
        const char *seed;              /* reproducible UUIDs (tests) */
        const char *log_path;          /* NULL: /var/log/imprint.log, else /tmp */
        const char *language;          /* "en", "de", "fr": preselected */
        bool allow_weak_password;
        bool mono;                     /* no colours */
        bool shell_after;              /* "Exit to a shell" starts root's login shell in imprint's place
                                        * (imprint --console: the terminal has no shell behind it) */
} TuiOptions;
int tui_run(const TuiOptions *o);
