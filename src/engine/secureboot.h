/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Secure Boot, decided before anything is written (issue 17; formats.md §2.10):
 *
 *   firmware (firmware.h)        image's boot chain                what imprint does
 *   ---------------------------  --------------------------------  -----------------------------------
 *   on (user or deployed mode)   db trusts systemd-boot and every   TRUSTED: installs it as always
 *                                UKI (or shim, and shim's vendor    (shim as the firmware entry when
 *                                certificate or db trusts the rest) the image boots through shim)
 *   on                           anything else                      UNBOOTABLE: refused, naming the
 *                                                                   binary and why; --allow-unbootable
 *                                                                   installs it anyway, with a warning
 *   setup mode                   loader/keys/auto/{PK,KEK,db}.auth  ENROLL: the keys go to the ESP and
 *                                and db.auth trusts the chain       loader.conf gets secure-boot-enroll
 *                                                                   force; the first boot enrolls them
 *                                                                   and restarts with Secure Boot on
 *   setup mode                   keys that do not sign the chain    UNBOOTABLE (as above); allowed: the
 *                                                                   keys are not installed
 *   setup mode, no keys; off;    —                                  AS_IS, with a note that the machine
 *   audit mode; no UEFI                                             is not protected by Secure Boot
 *   target is an image file      —                                  OTHER_MACHINE: this machine's
 *                                                                   firmware does not decide
 *
 * imprint never writes PK, KEK, db or dbx itself and never installs keys outside setup mode:
 * systemd-boot enrolls them, and only a firmware in setup mode accepts that.
 *
 * The TPM2 key and enrollment: enrolling keys changes PCR 7. So with ENROLL, the TPM2 key is
 * sealed to the UKI's signed PCR 11 policy only (its .pcrpkey; no PCR 7), and a unit written
 * into the installed root runs at the first boot with Secure Boot on: stock systemd-cryptenroll
 * unlocks with that key and seals a new one to PCR 7 + the signed PCR 11 policy (systemd's own
 * default), wiping the old. Without a .pcrpkey the TPM2 is not enrolled at install (the plan
 * says how to enroll it after the first boot). */

#include <stdbool.h>

#include "disk.h"
#include "encrypt.h"
#include "firmware.h"
#include "fsread.h"
#include "image.h"
#include "plan.h"

typedef struct SecureBootRequest {
        bool allow_unbootable;   /* install even when the firmware would not start the chain */
        const char *efivarfs;    /* NULL: firmware_read()'s default ($IMPRINT_EFIVARFS, efivarfs) */
        const char *recovery_uki;/* the recovery entry's UKI the plan installs, or NULL: with Secure Boot
                                  * on (or keys enrolled) it is left out, with a note, unless the same
                                  * keys trust it */
} SecureBootRequest;

/* The installed unit that binds the TPM2 key to PCR 7 once Secure Boot is on, and the public key
 * it seals with (the UKI's .pcrpkey). Both remove themselves when done. */
#define SECURE_BOOT_RESEAL_UNIT "imprint-tpm2-pcr7.service"
#define SECURE_BOOT_RESEAL_PUBKEY "/var/lib/imprint/tpm2-pcr-public-key.pem"

/* Decides for an install of img onto a target of kind target_kind (see the table above). The
 * firmware is read here. UNBOOTABLE without allow_unbootable is -EPERM with one sentence that
 * names the binary, why the firmware would refuse it, and what the person can do; nothing has
 * been written then. */
int secureboot_decide(const SecureBootRequest *req, DiskKind target_kind, const Image *img, PlanSecureBoot *ret);

/* The same from a firmware state already read (tests; `imprint firmware` shows the state). */
int secureboot_decide_with(const FirmwareState *fw, const SecureBootRequest *req, DiskKind target_kind, const Image *img,
                           PlanSecureBoot *ret);

/* ENROLL and the TPM2 (above): turns the literal PCR 7 policy of e into the signed PCR 11 policy
 * of img's UKI and sets sb->tpm2_reseal; without a .pcrpkey, drops the TPM2 (or refuses, -ENOKEY,
 * when req says the TPM2 is required). Nothing to do for other actions or without a TPM2. */
int secureboot_adjust_encryption(PlanSecureBoot *sb, const Image *img, const EncryptRequest *req, PlanEncryption *e);

/* The boot step's part: with ENROLL, copies the image's loader/keys/<dir>/ *.auth to the
 * target ESP's loader/keys/<dir>/. Returns the loader.conf line to add ("secure-boot-enroll
 * force\n") in *ret_loader_conf (static; NULL when none). */
int secureboot_install_keys(const Plan *p, const Image *img, const FsLocation *esp, const char **ret_loader_conf);

/* The configure step's part: with tpm2_reseal, writes SECURE_BOOT_RESEAL_UNIT (enabled) and
 * SECURE_BOOT_RESEAL_PUBKEY into the installed root mounted at root. */
int secureboot_write_root(const Plan *p, const char *root);
