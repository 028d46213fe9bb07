/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Unattended installs: a JSON configuration that says what to install where, as OEM lines and the
 * test rig hand it over — a systemd credential (imprint.config), a file (--config), or the kernel
 * command line (imprint.config=PATH). /etc/imprint/imprint.conf on a live medium gives defaults,
 * such as the image the medium carries. Unknown keys are errors, not silently ignored. */

#include <stdbool.h>
#include <stdint.h>

#include "account.h"
#include "encrypt.h"
#include "plan.h"

typedef enum AfterAction {
        AFTER_NONE,
        AFTER_POWEROFF,
        AFTER_REBOOT,
        _AFTER_ACTION_MAX,
        _AFTER_ACTION_INVALID = -EINVAL,
} AfterAction;

DECLARE_STRING_TABLE_LOOKUP(after_action, AfterAction);

typedef struct InstallConfig {
        char *origin;             /* where it came from, for messages */
        char *source;             /* image path, or "self" */
        char *image_certificate;  /* imageCertificate: PEM file the usr image's signature must verify against */
        char *image_key;          /* imageKey: public key (PEM or OpenPGP) SHA256SUMS beside the image is signed with */
        char *target;             /* disk path, or "auto": the one usable disk */
        PlanOptions plan;         /* its strings point into the fields below */
        char *seed, *root_fs, *home_fs, *root_label;
        bool no_variables;
        EncryptRequest enc;       /* unattended: the TPM is required unless the config says otherwise */
        char *tpm2_tcti;
        char *escrow_dir;         /* recoveryKeyEscrow: where the recovery key is delivered */
        AccountRequest account;   /* "user": {…}; the password comes from the credential imprint.user-password */
        char *user_name, *real_name;
        bool allow_weak_password;
        bool allow_unbootable;   /* "allowUnbootable": install although Secure Boot would not start it */
        PlanSettings settings;    /* hostname, timezone, locale, keymap */
        unsigned wait_for_target_sec;  /* how long to wait for the target node to appear (udev) */
        AfterAction after_install, on_failure;

        /* "reset": {…} — the configuration asks for a factory reset instead of an install (reset.h).
         * Keys: "target" (disk path, or "auto": the one disk that carries an imprint install
         * record), "keepHome", "secureErase", "tpmClear" (booleans), "recoveryKeyEscrow" (as for an
         * install; required unless a person confirms the key), "user" (as for an install; absent:
         * the account is left to the first boot), "afterReset" (none/poweroff/reboot, default
         * reboot). The top-level "source" is only needed for classic images. */
        bool reset;
        char *reset_target;
        bool reset_keep_home, reset_secure_erase, reset_tpm_clear;
        AfterAction after_reset;

        /* ---- The OEM line. Each block below is parsed by the file it names. ---- */

        /* machine.c: "machines": [{"vendor", "product", "sku", "board"}] (globs; a machine must
         * match every field one entry gives); "target" as an object of matching rules;
         * "countdownSeconds". */
        struct MachineRule *machines;
        size_t n_machines;
        struct TargetRule *target_rule;   /* NULL: "target" was a path or "auto" */
        int countdown_sec;                /* -1: not given */

        /* report.c: "report": {…}, where the per-machine report goes. */
        struct ReportConfig *report;      /* NULL: no report asked for */

        /* escrow.c: "recoveryKeyEscrow": {"directory", "certificate" or "plaintext": true}. */
        char *escrow_certificate;         /* PEM X.509 certificate or public key */
        bool escrow_plaintext;            /* explicitly allowed: the key is written as it is */

        /* config-record.c: "credentials": […], the credentials the configuration relies on for
         * its secrets (written by --record). */
        char **credentials;
        size_t n_credentials;

        /* handoff.c: "oem": true — install and encrypt for a customer who sets up the account
         * and a new recovery key at the first boot. */
        bool oem;
} InstallConfig;

void install_config_init(InstallConfig *c);
void install_config_done(InstallConfig *c);

/* Merges the keys of one JSON object into c (later sources override earlier ones). */
int install_config_merge_json(InstallConfig *c, json_object *j, const char *origin);
int install_config_merge_file(InstallConfig *c, const char *path);

/* Loads the defaults (/etc/imprint/imprint.conf, if present), then the first of: explicit_path,
 * the credential imprint.config, imprint.config=PATH on the kernel command line. Returns 1 when
 * an install configuration (not only defaults) was found, 0 when there is none. */
int install_config_find(InstallConfig *c, const char *explicit_path);

/* Only the defaults file, for interactive front ends (which image this medium carries). */
int install_config_load_defaults(InstallConfig *c);

/* The OEM-line blocks above, each in its own file. They parse one key's value (v), set the
 * configuration's fields, and return -EINVAL with a sentence (origin: where it came from) when it
 * is wrong. _done() frees what they set. */
int config_set_machines(InstallConfig *c, json_object *v, const char *origin);          /* machine.c */
int config_set_countdown(InstallConfig *c, json_object *v, const char *origin);         /* machine.c */
int config_set_target(InstallConfig *c, json_object *v, const char *key, const char *origin); /* machine.c */
void config_machine_done(InstallConfig *c);
int config_set_report(InstallConfig *c, json_object *v, const char *origin);            /* report.c */
void config_report_done(InstallConfig *c);
int config_set_escrow(InstallConfig *c, json_object *v, const char *key, const char *origin); /* escrow.c */
void config_escrow_done(InstallConfig *c);
int config_set_credentials(InstallConfig *c, json_object *v, const char *origin);       /* config-record.c */
void config_credentials_done(InstallConfig *c);

/* Resolves target "auto": the one disk that can be a target. Zero or several are an error that
 * names them: an unattended install never guesses between disks. */
int install_config_resolve_target(InstallConfig *c);
