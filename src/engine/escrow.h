/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Escrow of the recovery key to an OEM's public key (config.h: "recoveryKeyEscrow", parsed by
 * config_set_escrow() in escrow.c).
 *
 * The key is encrypted with CMS (RFC 5652 EnvelopedData, AES-256-CBC content encryption), so the
 * OEM decrypts it with stock openssl and nothing from imprint:
 *
 *     openssl cms -decrypt -in recovery-key-<uuid>.p7m -inform PEM -inkey oem.key
 *
 * The recipient is an X.509 certificate (RSA: KeyTransRecipientInfo naming the certificate's
 * issuer and serial; EC: KeyAgreeRecipientInfo, ECDH) or a bare public key (RSA or EC), which
 * CMS names by its subject key identifier (the SHA-1 of the key, RFC 5280 4.2.1.2 method 1).
 * openssl finds the recipient from -inkey alone; -recip CERT works for certificates too. */

#include <stdbool.h>

#include "secret.h"

/* Checks that path is a readable PEM certificate or public key that CMS can encrypt to (by
 * encrypting a test message to it). -EINVAL (or the errno of open) with a sentence naming the
 * file otherwise. what names the setting in the sentence ("recoveryKeyEscrow.certificate"). */
int escrow_check_certificate(const char *path, const char *what);

/* Encrypts plaintext to the certificate or public key in the PEM file certificate; returns the
 * CMS EnvelopedData as PEM text ("-----BEGIN CMS-----"), NUL-terminated. */
int escrow_encrypt(const char *certificate, const Secret *plaintext, char **ret_pem);
