/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* LUKS2 volumes for root and /home, laid out the way systemd expects to find and unlock them
 * (formats.md §1.4, §3.2, §3.6, §6.2, §7.3): aes-xts-plain64 with a 512-bit volume key, keyslots
 * for the TPM's secret and the recovery key under systemd's minimal PBKDF, human passphrases under
 * argon2id, and systemd-recovery / systemd-tpm2 tokens beside them.
 *
 * The volume key never leaves libcryptsetup: luks_format() lets it generate the key and every
 * keyslot added in the same context wraps that key; a header opened later gets new keyslots only
 * through an existing passphrase (luks_unlock()). Passphrases arrive in Secrets, and nothing
 * secret is logged. Works on partition nodes and on regular image files alike; nothing here needs
 * device-mapper. */

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>
#include <systemd/sd-id128.h>

#include "macro.h"
#include "secret.h"

typedef struct LuksVolume LuksVolume; /* wraps struct crypt_device */

typedef struct LuksFormatOptions {
        const char *label;       /* LUKS2 label, e.g. "root"; NULL for none */
        uint32_t sector_size;    /* encryption sector: 0 means 512 (as systemd-repart); 4096 for 4Kn disks */
        bool fast_kdf_for_tests; /* human passphrases get PBKDF2/1000 instead of argon2id (vm-rig.md:
                                  * argon2id calibrated on the host is very slow under TCG). Tests only. */
} LuksFormatOptions;

/* The volume key: 512 bits, split into two AES-256 keys by XTS (systemd v257's VOLUME_KEY_SIZE). */
#define LUKS_VOLUME_KEY_SIZE 64

/* Writes a LUKS2 header (aes-xts-plain64, a new random 512-bit volume key, the given UUID; a null
 * UUID lets libcryptsetup pick one) onto a partition node or an image file. It has no keyslot yet:
 * add one with luks_add_key_*() before luks_free(), or the volume key is lost with the context.
 * o may be NULL. */
int luks_format(const char *device, sd_id128_t uuid, const LuksFormatOptions *o, LuksVolume **ret);

/* Loads the existing LUKS2 header of device. */
int luks_open_header(const char *device, LuksVolume **ret);

LuksVolume *luks_free(LuksVolume *v);
DEFINE_TRIVIAL_CLEANUP_FUNC(LuksVolume *, luks_free);

/* Checks that passphrase opens a keyslot (no device-mapper involved) and keeps a copy, so that
 * keys can be added to a header loaded with luks_open_header(). Returns the keyslot it opened;
 * -EPERM when no keyslot takes it. Not needed right after luks_format(). */
int luks_unlock(LuksVolume *v, const Secret *passphrase);

/* Add a keyslot and return its number.
 * - high entropy (the TPM's base64 secret, the recovery key): systemd's minimal PBKDF, PBKDF2-SHA512
 *   with 1000 iterations and no benchmark (formats.md §3.2, cryptsetup_set_minimal_pbkdf());
 * - human passphrase: argon2id with libcryptsetup's benchmarked defaults, or PBKDF2/1000 when the
 *   volume was formatted with fast_kdf_for_tests.
 * The passphrase is used byte for byte (no trailing NUL or newline). */
int luks_add_key_high_entropy(LuksVolume *v, const Secret *passphrase);
int luks_add_key_passphrase(LuksVolume *v, const Secret *passphrase);

/* Stores a token (a JSON object with a string "type" and a "keyslots" array of decimal strings
 * naming active keyslots; tokens of systemd's types must name exactly one, formats.md §3.1) and
 * assigns it to those keyslots. Returns the token id. token is not consumed. */
int luks_add_token(LuksVolume *v, json_object *token);

/* The systemd-recovery token for a recovery-key keyslot: {"type":"systemd-recovery",
 * "keyslots":["N"]} (formats.md §3.6). systemd-cryptenroll lists that slot as "recovery". */
int luks_add_recovery_token(LuksVolume *v, int keyslot);

/* Crypto-erase, for the factory reset: destroys every keyslot (libcryptsetup overwrites its key
 * material on disk) and removes the tokens, which would name keyslots that no longer exist.
 * Afterwards no key opens the volume and its data is unreadable. The context is reloaded from
 * the header, so the volume key that luks_format() generated is gone from memory too. */
int luks_erase(LuksVolume *v);

/* Factory reset, home kept: the keyslots in use (bit N: keyslot N); the first token of a type
 * ("systemd-tpm2"), returned as JSON with its id (-ENOENT: none); and destroying the keyslots of
 * mask together with every token that names one of them. */
uint64_t luks_keyslots_in_use(LuksVolume *v);
int luks_token_find(LuksVolume *v, const char *type, json_object **ret);
int luks_remove_keyslots(LuksVolume *v, uint64_t mask, unsigned *ret_destroyed);

/* Where the encrypted payload starts, in bytes from the start of the device (16 MiB with the
 * default LUKS2 metadata): the room left for a filesystem is the device size minus this. */
uint64_t luks_data_offset(LuksVolume *v);

/* The device path the volume was opened with. */
const char *luks_device(const LuksVolume *v);

/* Opens the volume with device-mapper as /dev/mapper/<name> (returned in ret_path, may be NULL):
 * with the volume key generated by luks_format() in this context, else with the key given to
 * luks_unlock(). Needs dm-crypt in the kernel (not available on every build host). */
int luks_activate(LuksVolume *v, const char *name, char **ret_path);

/* Closes /dev/mapper/<name>; 0 when it is not open. */
int luks_deactivate(const char *name);

/* 0 when device-mapper is usable here, else a negative errno with a sentence saying that
 * encryption cannot be done on this system and what to do. */
int luks_dm_available(void);
