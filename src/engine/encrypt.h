/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Encrypting root and home: deciding before the plan (is there a usable TPM, what unlocks the disk
 * at boot, said in one sentence when something is not used), and, for the executor, turning a
 * planned partition into an opened LUKS2 volume with its keyslots and tokens:
 *
 *   - a recovery keyslot (systemd's minimal PBKDF) with a systemd-recovery token — always, so
 *     that a machine whose TPM refuses can still be opened by its owner;
 *   - a TPM2 keyslot with a systemd-tpm2 token sealed to PCR 7 (and optionally a signed PCR 11
 *     policy, and a PIN), unsealed once right away to prove the TPM gives the key back;
 *   - optionally a passphrase keyslot (argon2id);
 *
 * then opened with device-mapper so that the image is copied, or home formatted, through
 * dm-crypt. The same recovery key serves root and home. Secrets stay in Secrets. */

#include <stdbool.h>
#include <stdint.h>

#include "disk.h"
#include "plan.h"
#include "secret.h"
#include "string-table.h"
#include "tpm2.h"

typedef struct Image Image;

typedef enum Tpm2Use {
        TPM2_USE_AUTO,      /* use the TPM when the pre-flight check passes; otherwise say why and go on without */
        TPM2_USE_REQUIRED,  /* refuse to plan without a usable TPM (the unattended default) */
        TPM2_USE_OFF,
        _TPM2_USE_MAX,
        _TPM2_USE_INVALID = -EINVAL,
} Tpm2Use;

DECLARE_STRING_TABLE_LOOKUP(tpm2_use, Tpm2Use);

typedef struct EncryptRequest {
        int encrypt;            /* -1: the default (block devices yes; image files no, with a note); 0 no; 1 yes */
        Tpm2Use tpm2;
        const char *tpm2_tcti;  /* NULL: the kernel's resource manager */
        uint32_t tpm2_pcrs;     /* 0: PCR 7 */
        bool tpm2_signed_pcr11; /* also bind to PCR 11 through the UKI's .pcrpkey (systemd-measure signatures) */
        bool tpm2_pin;
        bool passphrase;
} EncryptRequest;

void encrypt_request_init(EncryptRequest *r);

/* Whether a target of this kind can be encrypted: dm-crypt needs a block device (an image file is
 * installed unencrypted, and the plan's note says why). */
bool encryption_possible(DiskKind target_kind);

/* Decides what the plan encrypts and how it unlocks, for a target of kind target_kind installing
 * img (may be NULL). Asks the TPM (tpm2_check()) unless it is turned off or not needed. Fails with
 * a sentence when a required TPM is unusable (-ENODEV) or a signed policy is asked for an image
 * whose UKI carries no public key (-ENOKEY). ret->note says what is not used and why. */
int encryption_decide(const EncryptRequest *req, DiskKind target_kind, const Image *img, PlanEncryption *ret);

/* What the executor hands to encrypt_partition(). */
typedef struct EncryptKeys {
        const Secret *recovery_key;  /* required */
        const Secret *passphrase;    /* required when the plan has a passphrase keyslot */
        const Secret *tpm2_pin;      /* required when the plan's TPM policy has a PIN */
        Tpm2Context *tpm;            /* required when the plan enrolls the TPM */
} EncryptKeys;

typedef struct LuksVolume LuksVolume;

/* Formats node (the partition pp of plan p, or an image file standing in for it) as LUKS2 with the
 * plan's keyslots and tokens: recovery key + systemd-recovery token, TPM2 + systemd-tpm2 token
 * (unsealed once to prove it), passphrase. The returned context still holds the volume key. */
int encrypt_format_volume(const Plan *p, const PlanPartition *pp, const char *node, const EncryptKeys *k, LuksVolume **ret);

/* encrypt_format_volume(), then opens it as /dev/mapper/<ret_dm_name> (returned, with its path). */
int encrypt_partition(const Plan *p, const PlanPartition *pp, const char *node, const EncryptKeys *k, char **ret_dm_name,
                      char **ret_dm_path);


/* Factory reset, home kept (ACTION_REENROLL): loads the LUKS2 header of the kept volume at node and
 * unlocks it, with its systemd-tpm2 token through tpm where the TPM gives the key back, else with
 * old_recovery_key. Nothing is written. Fails with a sentence (-EPERM) when neither opens it. */
int encrypt_reenroll_unlock(const char *node, Tpm2Context *tpm, const Secret *old_recovery_key, LuksVolume **ret);

/* Then: a new recovery keyslot with a systemd-recovery token, a new TPM2 keyslot with a
 * systemd-tpm2 token (the plan's policy) and a passphrase keyslot as the plan says; afterwards
 * every keyslot and token that was there before is destroyed. The volume key and the data stay.
 * ret_removed: how many old keyslots were destroyed. */
int encrypt_reenroll(const Plan *p, const PlanPartition *pp, LuksVolume *v, const EncryptKeys *k, unsigned *ret_removed);

/* Checks that everything encryption needs at run time is here, before anything is written:
 * device-mapper, and the TPM when the plan enrolls it (opened into *ret_tpm). */
int encryption_preflight(const Plan *p, Tpm2Context **ret_tpm);

/* Unattended delivery of the recovery key (an OEM's escrow: a mounted network share or USB
 * stick). Without certificate: writes <dir>/recovery-key-<LUKS UUID of root>.txt, mode 0600,
 * never overwriting, with comment lines naming the machine (DMI), the disk and the volumes, then
 * the key on a line of its own. With certificate (a PEM certificate or public key, escrow.h):
 * <dir>/recovery-key-<LUKS UUID of root>.p7m, the same comment lines and then the key (and a
 * newline) encrypted to it as a PEM CMS message. Flushed to the medium before returning. This
 * file is the only place a key is written to, and only because the configuration asks for it.
 * Returns the path in ret_path (may be NULL). */
int encryption_escrow_recovery_key(const Plan *p, const Secret *key, const char *dir, const char *certificate, char **ret_path);

/* "7", "7+11", "0,7": PCR indexes 0–23 joined by '+' or ','. -EINVAL otherwise. */
int pcr_mask_parse(const char *s, uint32_t *ret);
