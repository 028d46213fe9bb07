/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The account of the person who installs, and the settings the installed system would otherwise
 * ask for at first boot (formats.md §4).
 *
 * A systemd-homed account when the image's systemd has systemd-homed-firstboot.service (v256+)
 * and this computer's TPM2 can seal the password for the installed system's first boot:
 *   - /etc/credstore/home.create.<user> (0600): the JSON user record, with the password only as a
 *     yescrypt hash (privileged.hashedPassword);
 *   - /etc/credstore.encrypted/home.password: the password as a systemd credential encrypted by
 *     the stock systemd-creds with a TPM2 key bound to PCR 7 (never plaintext on disk);
 *   - imprint-firstboot-cleanup.service removes both once homectl knows the user.
 * systemd-homed-firstboot.service (ImportCredential=home.*) creates the user at first boot, so the
 * first login screen accepts the password. Otherwise (an older systemd, no homed, no usable TPM, an
 * image file) a classic user is made with the stock useradd and chpasswd, and the plan says why.
 * Hostname, timezone, locale and keymap are written with the stock systemd-firstboot --root. */

#include <stdbool.h>

#include "disk.h"
#include "plan.h"
#include "secret.h"
#include "validate.h" /* user_name_is_valid(), settings_validate() */

typedef struct Image Image;

typedef struct AccountRequest {
        const char *user_name;
        const char *real_name;
        AccountStorage storage;
        bool admin, auto_login;
        bool classic;            /* a classic user even where homed could be used */
        const char *tpm2_tcti;   /* the TPM that seals the password (NULL: /dev/tpmrm0) */
} AccountRequest;

/* Decides homed or classic for installing img to a target of kind target_kind. */
int account_decide(const AccountRequest *req, const Image *img, DiskKind target_kind, PlanAccount **ret);

/* Writes the plan's settings and account into the installed root filesystem mounted at root. */
int account_configure_root(const Plan *p, const char *root, const Secret *password);

/* Checks a password for the account with libpwquality (error_message() says why on -EPERM). */
int account_password_check(const PlanAccount *a, const Secret *password);
