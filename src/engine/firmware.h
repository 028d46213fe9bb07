/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Secure Boot state of the firmware this machine booted with, read from efivarfs: the mode
 * (SecureBoot, SetupMode, AuditMode, DeployedMode) and the signature databases PK, KEK, db and
 * dbx (UEFI 2.10 §32.4 "Firmware/OS Key Exchange", §32.4.1 EFI_SIGNATURE_LIST). Read only: imprint
 * never writes these variables (the image's keys are enrolled by systemd-boot at first boot, and
 * only in setup mode; formats.md, issue 17).
 *
 * Every byte read here comes from firmware or from an image imprint did not build, so every length
 * is checked; a malformed list is -EBADMSG with one sentence naming the variable or file. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "macro.h"

/* Vendor GUIDs (UEFI 2.10 §3.3, §32.6.1). SecureBoot, SetupMode, AuditMode, DeployedMode, PK, KEK
 * live under the global variable GUID; db and dbx under the image security database GUID. */
#define EFI_IMAGE_SECURITY_DATABASE_GUID_STR "d719b2cb-3d3a-4596-a3bc-dad00e67656f"

/* The efivarfs root the reader uses when called with NULL: $IMPRINT_EFIVARFS when set (tests
 * and support staff point it at a recorded copy), else /sys/firmware/efi/efivars. */
#define FIRMWARE_EFIVARFS_ENV "IMPRINT_EFIVARFS"

typedef enum FirmwareMode {
        FIRMWARE_NOT_UEFI,        /* no efivarfs: booted by BIOS (or efivarfs not mounted) */
        FIRMWARE_NO_SECURE_BOOT,  /* UEFI, but no SecureBoot variable: the firmware lacks Secure Boot */
        FIRMWARE_SETUP,           /* SetupMode 1: no PK; nothing is verified; keys may be enrolled */
        FIRMWARE_AUDIT,           /* AuditMode 1: signatures checked and logged, not enforced */
        FIRMWARE_USER_OFF,        /* PK enrolled, SecureBoot 0: Secure Boot switched off */
        FIRMWARE_USER_ON,         /* SecureBoot 1 (user mode): only trusted binaries start */
        FIRMWARE_DEPLOYED,        /* SecureBoot 1 and DeployedMode 1 */
        _FIRMWARE_MODE_MAX,
        _FIRMWARE_MODE_INVALID = -EINVAL,
} FirmwareMode;

/* One EFI_CERT_X509_GUID entry of a signature list. */
typedef struct FirmwareCert {
        char owner[37];         /* SignatureOwner, lowercase GUID string */
        char *subject;          /* RFC 2253 one-line subject ("CN=…,O=…"), or NULL if the DER does not parse */
        char *common_name;      /* the subject's CN (or O when it has no CN), for short displays; may be NULL */
        void *der;              /* the certificate as stored */
        size_t der_size;
} FirmwareCert;

/* A signature database: the content of PK, KEK, db or dbx (a sequence of EFI_SIGNATURE_LISTs). */
typedef struct FirmwareSigDb {
        bool present;           /* the variable (or file) exists */
        size_t size;            /* its data size in bytes (without efivarfs' attribute word) */
        FirmwareCert *certs;    /* EFI_CERT_X509_GUID entries, in order */
        size_t n_certs;
        uint8_t (*sha256)[32];  /* EFI_CERT_SHA256_GUID entries (image hashes), in order */
        size_t n_sha256;
        size_t n_other;         /* entries of any other signature type (X509_SHA256, RSA2048, …) */
} FirmwareSigDb;

typedef struct FirmwareState {
        FirmwareMode mode;
        bool secure_boot, setup_mode, audit_mode, deployed_mode; /* the variables' values (absent: false) */
        FirmwareSigDb pk, kek, db, dbx;
        char *root;             /* the efivarfs directory read */
} FirmwareState;

/* Reads the state from efivarfs at root (NULL: $IMPRINT_EFIVARFS, else
 * /sys/firmware/efi/efivars). A missing directory is not an error: mode FIRMWARE_NOT_UEFI.
 * A variable that cannot be parsed is -EBADMSG with a sentence naming it. */
int firmware_read(const char *root, FirmwareState *ret);
void firmware_state_done(FirmwareState *s);

/* Parses a sequence of EFI_SIGNATURE_LISTs (data of PK/KEK/db/dbx; what is the name for
 * messages). Empty data is an empty, present database. */
int firmware_sigdb_parse(const void *data, size_t size, const char *what, FirmwareSigDb *ret);
void firmware_sigdb_done(FirmwareSigDb *db);

/* The signature lists inside a time-based authenticated variable file as systemd-boot enrolls
 * from loader/keys/NAME/{PK,KEK,db,dbx}.auth (efitools' sign-efi-sig-list output): an
 * EFI_VARIABLE_AUTHENTICATION_2 (EFI_TIME, then WIN_CERTIFICATE_UEFI_GUID of dwLength bytes)
 * followed by the lists. Sets *ret_offset to where the lists start. -EBADMSG if malformed. */
int firmware_auth_payload(const void *data, size_t size, const char *what, size_t *ret_offset);

/* "not-uefi", "no-secure-boot", "setup", "audit", "user-off", "user", "deployed". */
const char *firmware_mode_to_string(FirmwareMode m) _pure_;
FirmwareMode firmware_mode_from_string(const char *s) _pure_;

/* Whether the firmware refuses binaries no db key signed: FIRMWARE_USER_ON or FIRMWARE_DEPLOYED. */
bool firmware_enforcing(const FirmwareState *s) _pure_;

/* One translated sentence for the plan and the full-screen installer, e.g.
 * "Secure Boot is on (user mode); db trusts Microsoft Windows Production PCA 2011, Microsoft
 * Corporation UEFI CA 2011; dbx has 371 entries." Returns a malloc'ed string, NULL on OOM. */
char *firmware_state_describe(const FirmwareState *s);

/* {"mode":"user","secureBoot":true,"setupMode":false,"auditMode":false,"deployedMode":false,
 *  "pk":{"present":true,"size":…,"certificates":[{"owner":…,"subject":…,"sha256":…}],"hashes":N,"other":N},
 *  "kek":…, "db":…, "dbx":{…}} — the form `imprint firmware --json`, the plan and the report use. */
json_object *firmware_state_to_json(const FirmwareState *s);
