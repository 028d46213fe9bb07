/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Authenticode signatures of EFI binaries (PE/COFF), read and checked as UEFI firmware checks
 * them (UEFI 2.10 §32.5 "Code Definitions"/§32.2.1 "Image Verification", Microsoft "Windows
 * Authenticode Portable Executable Signature Format"): the PE image hash (SHA-256 over the headers
 * without CheckSum and the certificate table entry, the sections in file order, the data after
 * them without the certificate table), the PKCS#7 SignedData in the certificate table
 * (WIN_CERTIFICATE, wCertificateType 2), its SpcIndirectDataContent digest and signer.
 *
 * A binary is trusted by a firmware's databases when (UEFI 2.10 §32.5.3.3):
 *   - no dbx entry forbids it: neither its image hash (EFI_CERT_SHA256) nor a certificate of its
 *     signer's chain (EFI_CERT_X509) is in dbx;
 *   - and its image hash is in db, or one of its signatures verifies and chains to a certificate in
 *     db (the db certificate may be the signer itself or any issuer above it; no time check, no
 *     key usage check: firmware does neither).
 * The input is never trusted: every offset is checked, malformed input is -EBADMSG with a sentence
 * naming the file. Uses libcrypto (OpenSSL 3). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "firmware.h"
#include "macro.h"

typedef struct PeSignature {
        bool present;            /* the certificate table holds at least one Authenticode signature */
        size_t n_signatures;     /* WIN_CERTIFICATE entries of type PKCS_SIGNED_DATA */
        char *signer_subject;    /* RFC 2253 subject of the first signature's signer, NULL if unsigned */
        char *signer_common_name;/* its CN (else O), for short displays */
        char *signer_issuer;     /* RFC 2253 issuer of that signer */
        uint8_t image_sha256[32];/* the Authenticode SHA-256 computed from the file */
        bool digest_matches;     /* the first signature's SpcIndirectDataContent digest is image_sha256 (a
                                  * signed binary changed after signing has false here) */
} PeSignature;

/* The Authenticode SHA-256 of the PE image in buf (the hash sbsign/pesign sign and dbx lists). */
int authenticode_sha256(const void *buf, size_t size, const char *what, uint8_t ret[32]);

/* Reads the signature(s): present, signer, digest check. An unsigned binary is not an error
 * (present false). */
int authenticode_read(const void *buf, size_t size, const char *what, PeSignature *ret);
void pe_signature_done(PeSignature *s);

/* Whether firmware whose db and dbx are given would start the binary (rules above). Returns 1 when
 * trusted, 0 when not, with *ret_reason (malloc'ed, translated, may be NULL on OOM) a sentence such
 * as "debian.efi is not signed.", "systemd-bootx64.efi is signed by CN=X, which db does not trust.",
 * "shimx64.efi is forbidden by dbx (its hash).", "… was changed after it was signed."; a negative
 * errno on malformed input or OOM. dbx may be NULL (nothing forbidden). */
int authenticode_trusted(const void *buf, size_t size, const char *what, const FirmwareSigDb *db,
                         const FirmwareSigDb *dbx, char **ret_reason);

/* shim: the certificate shim was built to trust (its .vendor_cert section: struct cert_table
 * { u32 vendor_authorized_size, vendor_deauthorized_size, vendor_authorized_offset,
 * vendor_deauthorized_offset } with offsets relative to the section start), as a one-entry
 * FirmwareSigDb usable as "db" for what shim starts. Returns 1 and fills *ret when buf is a shim
 * with a vendor certificate, 0 when it has no .vendor_cert section (not a shim), -EBADMSG if
 * malformed. */
int authenticode_shim_vendor_db(const void *buf, size_t size, const char *what, FirmwareSigDb *ret);
