/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Sealing the LUKS2 unlock secret to the TPM 2.0 in exactly the form stock systemd-cryptsetup
 * unlocks: the "systemd-tpm2" token of systemd-cryptenroll (formats.md §3), restricted to what
 * systemd v252 *and* v255–v258 accept (§3.5):
 *
 *   - 32 random bytes from the kernel are the secret; the keyslot passphrase is their base64 (§3.2);
 *   - they are sealed as a KEYEDHASH object (fixedTPM|fixedParent, no userWithAuth, so only the
 *     policy opens it) under the *legacy* primary key: a transient ECC P-256 key (RSA-2048 if the
 *     TPM lacks ECC) re-derived from the owner seed at every unlock (§3.3). No SRK, so no
 *     tpm2_srk field: v252 ignores it and would fail to load a blob whose parent is the SRK;
 *   - the policy is PolicyPCR over literal sha256 PCR values (default PCR 7), optionally preceded
 *     by PolicyAuthorize with an RSA key for signed PCR 11 policies, optionally followed by
 *     PolicyAuthValue for a PIN hashed as v252 does, unsalted (§3.4);
 *   - the token holds single strings, never shards; no pcrlock, no salt (§3.1, §3.5).
 *
 * The engine never prints: failures return a negative errno with one sentence in error_message().
 * Secrets live in Secrets (locked, wiped); TPM structures that held them are wiped after use. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "macro.h"
#include "secret.h"

/* The TCTI systemd uses when nothing else is configured (S252 tpm2_context_init()): the kernel's
 * resource manager, never tpm2-abrmd. */
#define TPM2_TCTI_DEFAULT "device:/dev/tpmrm0"

/* PCR 7 (Secure Boot state) is systemd-cryptenroll's --tpm2-pcrs default; PCR 11 (the UKI) is its
 * --tpm2-public-key-pcrs default (formats.md §3.4). */
#define TPM2_PCR_MASK_DEFAULT (UINT32_C(1) << 7)
#define TPM2_PUBKEY_PCR_MASK_DEFAULT (UINT32_C(1) << 11)
/* PC Client TPMs have 24 PCRs; systemd refuses masks beyond (TPM2_PCR_MASK_VALID()). */
#define TPM2_PCRS_MAX 24U

#define TPM2_SECRET_SIZE 32U
#define TPM2_POLICY_HASH_SIZE 32U
/* base64 of 32 bytes with padding: 4 * ceil(32 / 3) */
#define TPM2_PASSPHRASE_SIZE 44U

typedef struct Tpm2Context Tpm2Context;

/* Connects to a TPM. tcti: NULL means TPM2_TCTI_DEFAULT; tests pass "swtpm:port=N". Any TCTI
 * configuration string of Tss2_TctiLdr_Initialize() works ("device:/dev/tpmrm1", "mssim:…").
 * Issues TPM2_Startup(CLEAR), which an already started TPM answers with TPM2_RC_INITIALIZE. */
int tpm2_context_new(const char *tcti, Tpm2Context **ret);

/* Only TCTIs that talk to a TPM are accepted from configuration: "device:", "swtpm:" and
 * "mssim:" (tpm2-tss also has "cmd:", which would run a command as root). */
bool tpm2_tcti_is_safe(const char *tcti);
Tpm2Context *tpm2_context_free(Tpm2Context *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Tpm2Context *, tpm2_context_free);

/* Pre-flight facts about a TPM, each checked for itself (as far as the earlier ones allow). */
typedef struct Tpm2Status {
        bool present;        /* a TPM 2.0 answered (for the device TCTI: its node exists) */
        bool sha256_bank;    /* the sha256 PCR bank is allocated with PCR 7 in it */
        bool lockout;        /* in dictionary-attack lockout: unsealing would fail now */
        bool transient_room; /* TPM2_PT_HR_TRANSIENT_AVAIL > 0: a transient object can be loaded */
        uint32_t lockout_interval; /* seconds until the lockout counter drops by one */
        char *problem;       /* a sentence for the first fact that rules the TPM out; NULL if usable */
} Tpm2Status;

/* Gathers the facts for the TPM at tcti (NULL: TPM2_TCTI_DEFAULT). Returns 1 when the TPM is
 * usable, 0 when it is not (ret->problem says why, for the person at the screen), and a negative
 * errno only when the facts could not be gathered at all (out of memory). Never degrades silently:
 * a caller that gets 0 must not offer TPM enrollment. */
int tpm2_check(const char *tcti, Tpm2Status *ret);
void tpm2_status_done(Tpm2Status *s);

/* What the token stores besides type and keyslots. */
typedef struct Tpm2Sealed {
        void *blob;                  /* marshalled TPM2B_PRIVATE then TPM2B_PUBLIC */
        size_t blob_size;
        uint8_t policy_hash[TPM2_POLICY_HASH_SIZE];
        uint32_t pcr_mask;           /* literal-value PCRs ("tpm2-pcrs") */
        uint32_t pubkey_pcr_mask;    /* PCRs of the signed policy ("tpm2_pubkey_pcrs"); 0: none */
        char *pubkey_pem;            /* the PEM public key of the signed policy; NULL: none */
        const char *pcr_bank;        /* static: "sha256" */
        const char *primary_alg;     /* static: "ecc" or "rsa" */
        bool pin;                    /* the policy includes PolicyAuthValue */
} Tpm2Sealed;

/* Generates 32 random bytes (getrandom) and seals them: legacy primary (ECC, else RSA), policy of
 * PolicyPCR over pcr_mask in the sha256 bank with the PCRs' current values, preceded by
 * PolicyAuthorize with the RSA public key pubkey_pem when that is non-NULL (pubkey_pcr_mask 0 then
 * means TPM2_PUBKEY_PCR_MASK_DEFAULT). The Create command travels through a salted, encrypting
 * HMAC session. Returns the secret and the token fields; *ret is filled only on success. */
int tpm2_seal(Tpm2Context *c, uint32_t pcr_mask, const char *pubkey_pem, uint32_t pubkey_pcr_mask,
              Secret **ret_secret, Tpm2Sealed *ret);
/* The same with a PIN (pin non-NULL): PolicyAuthValue is added and the object's authValue is
 * SHA256(PIN), unsalted, which v252 requires and v253+ still accepts when the token has no
 * tpm2_salt (§3.3, §3.5). */
int tpm2_seal_with_pin(Tpm2Context *c, uint32_t pcr_mask, const char *pubkey_pem, uint32_t pubkey_pcr_mask,
                       const Secret *pin, Secret **ret_secret, Tpm2Sealed *ret);
void tpm2_sealed_done(Tpm2Sealed *s);

/* Unseals: re-creates the legacy primary, loads the blob, replays the policy in a policy session
 * and compares its digest with s->policy_hash before asking the TPM, as systemd does. Fails with
 * -EPERM and a sentence naming the PCRs when they changed since sealing; with -ENOLCK in
 * dictionary-attack lockout; with -EACCES for a wrong PIN. */
int tpm2_unseal(Tpm2Context *c, const Tpm2Sealed *s, Secret **ret_secret);
/* The same with a PIN (NULL when the token has none) and, for signed policies, the content of a
 * tpm2-pcr-signature.json ({"sha256":[{"pcrs":[11],"pkfp":…,"pol":…,"sig":…}]}, the format
 * systemd-measure writes and systemd-stub passes to the initrd). */
int tpm2_unseal_full(Tpm2Context *c, const Tpm2Sealed *s, const Secret *pin, const char *signature_json,
                     Secret **ret_secret);

/* The systemd-tpm2 token for keyslot: type, keyslots ["N"], tpm2-blob (base64, one string),
 * tpm2-pcrs, tpm2-pcr-bank, tpm2-primary-alg, tpm2-policy-hash (hex), tpm2-pin, and
 * tpm2_pubkey_pcrs and tpm2_pubkey (base64 of the PEM bytes) only for signed policies; the keys in
 * the order v252's tpm2_make_luks2_json() writes them. No tpm2_srk, tpm2_salt or pcrlock fields.
 * NULL on allocation failure or a negative keyslot. */
json_object *tpm2_token_json(const Tpm2Sealed *s, int keyslot);

/* Reads a systemd-tpm2 token back (for the factory reset: unseal with what the header holds).
 * Accepts what v252 writes and what this file writes; refuses what v252 could not unlock
 * (sharded blobs, tpm2_srk, a bank other than sha256). Returns the keyslot. */
int tpm2_token_parse(json_object *token, Tpm2Sealed *ret);

/* The LUKS passphrase that goes with the secret: standard base64 with padding and no line breaks,
 * 44 characters for 32 bytes, in a Secret (NUL-terminated; size excludes the NUL) (§3.2). */
int tpm2_secret_to_passphrase(const Secret *secret, Secret **ret);

/* "7", "7+11": a PCR mask as systemd's command line writes it. Returns a malloc'ed string. */
char *tpm2_pcr_mask_to_string(uint32_t mask);
