/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The plan: one in-memory description of what will be written to one target. Planning writes
 * nothing. The executor (executor.h) is the only code that writes, and it writes exactly the
 * plan. A plan prints as a table and as JSON, and loads back from JSON (--plan-file). */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>
#include <systemd/sd-id128.h>

#include "disk.h"
#include "dps.h"
#include "table.h"

#define PLAN_FORMAT_VERSION 1
#define PLAN_ALIGNMENT (UINT64_C(1024) * 1024) /* 1 MiB, as sfdisk, libfdisk and repart use */
#define PLAN_GPT_RESERVED (UINT64_C(1024) * 1024)     /* before the first partition */
#define PLAN_GPT_BACKUP (UINT64_C(1024) * 1024)       /* backup GPT at the end, rounded to 1 MiB */

#define PLAN_ESP_SIZE_DEFAULT (UINT64_C(1024) * 1024 * 1024)      /* 1 GiB */
#define PLAN_ESP_SIZE_MIN (UINT64_C(512) * 1024 * 1024)           /* FAT32 needs ≥ 65525 clusters; see vm-rig.md */
#define PLAN_XBOOTLDR_SIZE_DEFAULT (UINT64_C(1024) * 1024 * 1024) /* 1 GiB */
/* An existing ESP smaller than this is kept, and UKIs go to a new XBOOTLDR partition. Windows
 * creates 100–260 MiB ESPs; two or three UKIs of 60–150 MiB each do not fit there. */
#define PLAN_ESP_UKI_MIN (UINT64_C(500) * 1024 * 1024)
#define PLAN_ROOT_SIZE_MIN_DEFAULT (UINT64_C(2) * 1024 * 1024 * 1024) /* when no image is known */
#define PLAN_ROOT_SIZE_WITH_HOME_DEFAULT (UINT64_C(32) * 1024 * 1024 * 1024)
#define PLAN_HOME_SIZE_MIN (UINT64_C(256) * 1024 * 1024)
#define PLAN_SWAP_SIZE_MIN (UINT64_C(40) * 1024)
/* What a LUKS2 header takes at the start of an encrypted partition (libcryptsetup's default
 * metadata and keyslot areas; luks_data_offset() reports the real value). */
#define PLAN_LUKS_HEADER_SIZE (UINT64_C(16) * 1024 * 1024)

typedef enum PlanMode {
        PLAN_ERASE,     /* a new partition table; everything on the disk is destroyed */
        PLAN_FREE,      /* keep existing partitions; use the largest free region; reuse the ESP */
        PLAN_RESET,     /* factory reset of a disk imprint installed: the partition table stays; root
                         * (and home) are erased and recreated in place, the rest is kept (reset.h) */
        _PLAN_MODE_MAX,
        _PLAN_MODE_INVALID = -EINVAL,
} PlanMode;

typedef enum PartitionAction {
        ACTION_CREATE,  /* a new partition, wiped, then formatted or filled */
        ACTION_KEEP,    /* an existing partition imprint uses as it is (the ESP in free mode) */
        ACTION_REENROLL,/* reset, keep home: the existing LUKS2 volume and its data stay; its keyslots and
                         * tokens are replaced by the reset's new recovery key and TPM2 enrollment */
        _ACTION_MAX,
        _ACTION_INVALID = -EINVAL,
} PartitionAction;

DECLARE_STRING_TABLE_LOOKUP(plan_mode, PlanMode);
DECLARE_STRING_TABLE_LOOKUP(partition_action, PartitionAction);

/* A size request: a fixed number of bytes, "the rest of the free space", or none. */
typedef enum SizeKind {
        SIZE_NONE,
        SIZE_FIXED,
        SIZE_REST,
} SizeKind;

typedef struct SizeRequest {
        SizeKind kind;
        uint64_t bytes;
} SizeRequest;

/* Parses "none"/"no"/"0", "rest"/"fill", or a size ("20G"). */
int size_request_parse(const char *s, SizeRequest *ret);

/* One partition of the OS image that the plan copies block by block (root, usr, verity, …). */
typedef struct PlanSourcePartition {
        PartitionRole role;
        char *install_label;      /* GPT name on the target (sysupdate's pattern for @v), NULL: label */
        uint64_t slot_size;       /* usr images: size of the A and B slots on the target, 0: size */
        unsigned partno;          /* in the image */
        uint64_t start, size;     /* bytes, in the image */
        sd_id128_t type_uuid;
        sd_id128_t uuid;
        char *label;
        uint64_t flags;
        char *fstype;
} PlanSourcePartition;

/* A boot entry the image brings: one UKI, as systemd-boot will list it. */
typedef struct PlanBootEntry {
        char *file;               /* "fakeos_7.efi" */
        char *install_as;         /* name on the target's $BOOT, with boot counting ("x_1+3-0.efi"); NULL: file */
        PartitionRole install_on; /* ROLE_ESP or ROLE_XBOOTLDR as sysupdate's PathRelativeTo= says; _ROLE_INVALID: as today */
        char *title, *version, *uname;
} PlanBootEntry;

/* The OS image a plan installs, as it was when planned; the executor checks it is unchanged. */
typedef enum PlanSourceKind {
        PLAN_SOURCE_ROOT,         /* "root": a root partition copied as it is (classic images) */
        PLAN_SOURCE_USR,          /* "usr": usr A slot copied, B slots made empty, root created */
        _PLAN_SOURCE_KIND_MAX,
        _PLAN_SOURCE_KIND_INVALID = -EINVAL,
} PlanSourceKind;

DECLARE_STRING_TABLE_LOOKUP(plan_source_kind, PlanSourceKind);

typedef struct PlanSource {
        PlanSourceKind kind;
        char *path;
        uint64_t size;
        char *fingerprint;        /* partition table of the image, as for targets */
        char *sha256;             /* expected SHA256 of the whole image, or NULL when none is known */
        char *sha256_origin;      /* the SHA256SUMS or .sha256 file it came from */
        char *os_name;            /* PRETTY_NAME of the image */
        char *image_id, *image_version;
        PlanSourcePartition *partitions;
        size_t n_partitions;
        PlanBootEntry *entries;
        size_t n_entries;
        char *root_fstype;        /* usr images: Format= of the image's repart.d root, NULL: default */
        char *home_fstype;        /* usr images: Format= of the image's repart.d home, NULL: default */
        char *note;               /* what imprint assumes about the image (Image.assumption) */
        /* An image read once (stream.h): path is where it comes from (a URL, a .raw.zst), the
         * partition partitions[streamed] is written while it is read, and until then
         * (content_pending) what its content says is not known: the plan is made again from it
         * (plan_update_streamed()). */
        bool streaming;
        size_t streamed;
        char *streamed_disk;      /* once written: where partitions[streamed] is read (not saved) */
        uint64_t streamed_offset;
        char *compression;        /* "zstd", "xz", "raw" */
        unsigned stream_resumes;  /* once streamed: transfers resumed after a drop */
        bool content_pending;
} PlanSource;

void plan_source_free(PlanSource *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(PlanSource *, plan_source_free);
int plan_source_copy(const PlanSource *from, PlanSource **ret);

typedef struct PlanPartition {
        PartitionRole role;
        PartitionAction action;
        unsigned partno;         /* the GPT slot (1-based) */
        uint64_t start, size;    /* bytes; multiples of the alignment */
        sd_id128_t type_uuid;
        sd_id128_t uuid;         /* PARTUUID */
        char *label;             /* GPT partition name */
        uint64_t flags;          /* GPT attribute bits */
        char *fstype;            /* filesystem to create; NULL when the partition is copied */
        char *fslabel;
        int copy_from;           /* index into source->partitions to copy, or -1 */
        bool encrypt;            /* a LUKS2 volume; the filesystem or copy goes inside it */
        sd_id128_t luks_uuid;    /* its LUKS2 UUID (seeded like the rest) */
        bool erase;              /* reset: erased (erase.h) before it is recreated; action is ACTION_CREATE */
} PlanPartition;

/* How root and home are encrypted (formats.md §1.4, §3). Decided before planning by
 * encryption_decide() (encrypt.h), which asks the TPM; the plan records the outcome and the
 * reasons, so that what the summary shows is what the executor does. */
typedef struct PlanEncryption {
        bool enabled;            /* root and home are LUKS2 volumes */
        bool tpm2;               /* a TPM2 keyslot with a systemd-tpm2 token is enrolled */
        char *tpm2_tcti;         /* NULL: the kernel's resource manager */
        uint32_t tpm2_pcrs;      /* literal PCR policy, default PCR 7 */
        uint32_t tpm2_pubkey_pcrs; /* signed policy PCRs (11), 0: none */
        char *tpm2_pubkey;       /* PEM public key of the signed policy (the UKI's .pcrpkey) */
        bool tpm2_pin;           /* the TPM asks for a PIN at boot */
        bool passphrase;         /* a passphrase keyslot (argon2id) */
        bool recovery_key;       /* a recovery keyslot with a systemd-recovery token: always, when enabled */
        char *note;              /* for people: why encryption or the TPM is not used, and what unlocks the disk */
} PlanEncryption;

void plan_encryption_done(PlanEncryption *e);

/* The account of the person who installs (formats.md §4). */
typedef enum AccountStorage {
        ACCOUNT_STORAGE_LUKS,       /* homed: an encrypted home image in /home (the default) */
        ACCOUNT_STORAGE_DIRECTORY,  /* homed: a plain directory */
        ACCOUNT_STORAGE_SUBVOLUME,  /* homed: a btrfs subvolume */
        _ACCOUNT_STORAGE_MAX,
        _ACCOUNT_STORAGE_INVALID = -EINVAL,
} AccountStorage;

typedef enum AccountKind {
        ACCOUNT_HOMED,    /* created at first boot by systemd-homed-firstboot from credentials imprint writes */
        ACCOUNT_CLASSIC,  /* /etc/passwd and /etc/shadow, written by useradd/chpasswd into the target */
        _ACCOUNT_KIND_MAX,
        _ACCOUNT_KIND_INVALID = -EINVAL,
} AccountKind;

DECLARE_STRING_TABLE_LOOKUP(account_storage, AccountStorage);
DECLARE_STRING_TABLE_LOOKUP(account_kind, AccountKind);

typedef struct PlanAccount {
        char *user_name;
        char *real_name;         /* NULL: none */
        AccountStorage storage;  /* homed only */
        bool admin;              /* member of the administrators' group (sudo, wheel) */
        bool auto_login;
        AccountKind kind;
        char *note;              /* why the account is classic, when it is */
} PlanAccount;

/* What the installed system would otherwise ask at first boot (systemd-firstboot). NULL: not set. */
typedef struct PlanSettings {
        char *hostname, *timezone, *locale, *keymap;
} PlanSettings;

void plan_account_free(PlanAccount *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(PlanAccount *, plan_account_free);
int plan_account_copy(const PlanAccount *from, PlanAccount **ret);
void plan_settings_done(PlanSettings *s);
int plan_settings_copy(const PlanSettings *from, PlanSettings *to);
int plan_encryption_copy(const PlanEncryption *from, PlanEncryption *to);

/* The customer's first boot after an OEM install ("oem": true; handoff.h). */
typedef enum HandoffAccount {
        HANDOFF_ACCOUNT_HOMED,         /* "systemd-homed-firstboot": the customer makes the account */
        HANDOFF_ACCOUNT_ROOT_PASSWORD, /* "root-password": no homed firstboot; systemd-firstboot asks for root's password */
        _HANDOFF_ACCOUNT_MAX,
        _HANDOFF_ACCOUNT_INVALID = -EINVAL,
} HandoffAccount;

DECLARE_STRING_TABLE_LOOKUP(handoff_account, HandoffAccount);

typedef struct PlanOem {
        HandoffAccount account;
        bool ask_locale, ask_keymap, ask_timezone, ask_hostname; /* systemd-firstboot asks (the line left them unset) */
        bool new_recovery_key;   /* the line's recovery key is replaced at first boot (encrypted installs) */
        char *note;              /* for people: why the fallback, when it is used */
} PlanOem;

void plan_oem_free(PlanOem *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(PlanOem *, plan_oem_free);

/* Where a factory reset was started (reset.h). */
typedef enum ResetEntryPoint {
        RESET_FROM_BOOT_MENU,    /* "boot-menu": the recovery entry imprint installed on $BOOT */
        RESET_FROM_LIVE_MEDIUM,  /* "live-medium": "Reset an installed system" on the live medium */
        RESET_UNATTENDED,        /* "unattended": a configuration with a "reset" object */
        _RESET_ENTRY_POINT_MAX,
        _RESET_ENTRY_POINT_INVALID = -EINVAL,
} ResetEntryPoint;

DECLARE_STRING_TABLE_LOOKUP(reset_entry_point, ResetEntryPoint);

/* What a reset plan adds to a plan (mode PLAN_RESET). The partitions say per partition what
 * happens: erase + ACTION_CREATE (root, home), ACTION_REENROLL (home kept), ACTION_KEEP (ESP,
 * XBOOTLDR, usr slots, vendor partitions, everything else). */
typedef struct PlanReset {
        ResetEntryPoint entry_point;
        bool keep_home;          /* home's volume and data stay; it is re-enrolled */
        bool secure_erase;       /* BLKSECDISCARD where the device offers it (optional, named as such) */
        bool tpm_clear;          /* ask the firmware to clear the TPM at the next boot (PPI) */
        char *installed_at;      /* from the install record: RFC 3339 UTC */
        char *installed_by;      /* imprint version that installed the disk */
        char *image_version;     /* of the installed system (newest usr slot, or the record's) */
        char *account_note;      /* what happens to the account: recreated now, or left to first boot (how) */
} PlanReset;

void plan_reset_free(PlanReset *r);

/* A partition that exists on the target and will be destroyed by the plan. */
typedef struct PlanDoomed {
        unsigned partno;
        uint64_t start, size;
        char *type_name;         /* DPS or foreign name, or the GUID */
        char *label;
        char *fstype;
        char *os;
} PlanDoomed;

/* What the disk looked like when the plan was made; the executor refuses if it changed. */
typedef struct PlanFingerprint {
        uint64_t size;
        uint64_t diskseq;
        uint32_t sector_size;
        char *pttype;
        char *ptuuid;
        char *partitions;        /* "N:start:size:type:uuid;…" */
} PlanFingerprint;

/* What Secure Boot means for this install (secureboot.h), decided before anything is written from
 * the firmware's state (firmware.h) and the image's boot chain (authenticode.h). */
typedef enum SecureBootAction {
        SECURE_BOOT_AS_IS,         /* off, no Secure Boot, not UEFI, or audit mode: installed as always */
        SECURE_BOOT_TRUSTED,       /* on, and db trusts every binary the firmware starts */
        SECURE_BOOT_ENROLL,        /* setup mode, the image carries keys: systemd-boot enrolls them at first boot */
        SECURE_BOOT_UNBOOTABLE,    /* on, and the chain would not start: refused unless allowed */
        SECURE_BOOT_OTHER_MACHINE, /* the target is an image file: the firmware it will boot on decides */
        _SECURE_BOOT_ACTION_MAX,
        _SECURE_BOOT_ACTION_INVALID = -EINVAL,
} SecureBootAction;

DECLARE_STRING_TABLE_LOOKUP(secure_boot_action, SecureBootAction);

typedef struct PlanSecureBoot {
        bool decided;            /* false: no image (a plan that only partitions) */
        SecureBootAction action;
        char *firmware_mode;     /* firmware_mode_to_string() of this machine */
        char *firmware;          /* firmware_state_describe(): one sentence */
        char *chain;             /* who signed what the firmware starts: one sentence */
        char *reason;            /* UNBOOTABLE: why not; NULL otherwise */
        char *keys;              /* ENROLL: the image's loader/keys/ directory ("auto"); else NULL */
        bool shim;               /* the firmware entry starts shim, which starts systemd-boot */
        bool allowed;            /* UNBOOTABLE, installed anyway (--allow-unbootable) */
        bool recovery_refused;   /* the recovery entry's UKI would not start: it is not installed */
        bool tpm2_reseal;        /* ENROLL with a TPM2 key on the signed PCR 11 policy only: the first
                                  * boot with Secure Boot on binds it to PCR 7 too (stock systemd-cryptenroll) */
        char *note;              /* one sentence for people: what happens at first boot */
} PlanSecureBoot;

void plan_secure_boot_done(PlanSecureBoot *sb);
int plan_secure_boot_copy(const PlanSecureBoot *from, PlanSecureBoot *to);

typedef struct Plan {
        PlanMode mode;
        Architecture arch;
        DiskKind target_kind;
        char *target;            /* path of the disk or image file */
        char *target_name;       /* short name: sda, loop0, disk.img */
        char *target_description;/* "QEMU HARDDISK (SATA, 20 GiB)" */
        PlanFingerprint fingerprint;
        uint64_t sector_size;
        sd_id128_t disk_uuid;    /* GPT disk GUID: new in erase mode, kept in free mode */
        char *seed;              /* --seed, when UUIDs were derived */

        PlanPartition *partitions;
        size_t n_partitions;
        PlanDoomed *doomed;
        size_t n_doomed;

        uint64_t free_start, free_size; /* the region the plan fills (free mode), or the whole disk */

        PlanSource *source;      /* the image to install, NULL for a plan that only partitions */
        PlanEncryption encryption;
        PlanAccount *account;    /* NULL: no account is created */
        PlanSettings settings;
        PlanReset *reset;        /* mode PLAN_RESET only, else NULL */
        PlanOem *oem;            /* "oem": the customer's first boot (handoff.h), else NULL */
        PlanSecureBoot secure_boot;
        char *recovery_uki;      /* install: the recovery entry's UKI put on $BOOT (recovery-entry.h); NULL: none */
        uint64_t recovery_uki_size; /* its size, counted in the ESP/XBOOTLDR space check */
} Plan;

typedef struct PlanOptions {
        PlanMode mode;
        Architecture arch;       /* _ARCH_INVALID: native */
        const char *seed;        /* derive UUIDs from this; NULL: random */
        SizeRequest esp;         /* default 1 GiB */
        SizeRequest xbootldr;    /* only used when an existing small ESP is kept */
        SizeRequest root;        /* SIZE_NONE: the default, the rest or 32 GiB when home takes the rest */
        SizeRequest home;        /* default none */
        SizeRequest swap;        /* default none */
        uint64_t root_min;       /* smallest acceptable root (the image's root size), 0: default */
        const char *root_label;  /* default: "root-<arch>"; the image's os-release when known */
        const char *root_fs;     /* default "ext4" */
        const char *home_fs;     /* default "ext4" */
        const PlanSource *source;/* install this image: its OS partitions are copied, not formatted */
        const PlanEncryption *encryption; /* NULL or !enabled: nothing is encrypted */
        const PlanAccount *account;       /* NULL: none (decided by account_decide(), account.h) */
        const PlanSettings *settings;     /* NULL: none */
        const char *recovery_uki;         /* the recovery entry's UKI to install (recovery_entry_find()), NULL: none */
        bool oem;                         /* handoff.c: the customer's first boot makes the account
                                           * and a new recovery key */
        const PlanSecureBoot *secure_boot;/* NULL: not decided (no image) */
} PlanOptions;

void plan_options_init(PlanOptions *o);

/* Whether PLAN_FREE can be offered for d: a GPT disk with partitions to keep (plan_build() says why
 * not, when asked anyway). */
bool plan_can_use_free_space(const Disk *d);

/* Builds a plan for disk. Fails with a message naming the disk and the numbers when the layout
 * does not fit, when the disk cannot be a target, or when the options contradict each other. */
int plan_build(const Disk *disk, const PlanOptions *opts, Plan **ret);

Plan *plan_free(Plan *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Plan *, plan_free);

/* After a streamed image's big partition was written and read: takes over, in place, what the
 * plan made again from the whole image (next) says — sizes and places after the streamed
 * partition, labels, filesystems, the image's facts, the account and hand-off — so that the
 * steps (which point into p) see it. Refused (-ESTALE, one sentence) when next would move or
 * resize what was already written, or lays out other partitions. */
int plan_update_streamed(Plan *p, Plan *next);

json_object *plan_to_json(const Plan *p);
int plan_from_json(json_object *j, Plan **ret);
int plan_save(const Plan *p, const char *path);
int plan_load(const char *path, Plan **ret);

/* Prints the plan as a table for people (the confirmation shows exactly this). */
void plan_print_table(const Plan *p, FILE *f);

/* The columns of plan_partition_table(), in the order of the plan file's keys. Columns without a
 * header are JSON only, columns without a key text only: the text shows what a person checks
 * ("copy" for a partition filled from the image, the copied filesystem, "?" for an unknown type),
 * the JSON what the plan file holds. */
typedef enum PlanColumn {
        PLAN_COLUMN_PARTNO,      /* "#", "partno" */
        PLAN_COLUMN_ROLE,        /* "ROLE", "role" */
        PLAN_COLUMN_ACTION_KEY,  /* "action": create or keep */
        PLAN_COLUMN_ACTION,      /* "ACTION": create, keep or copy */
        PLAN_COLUMN_START,       /* "START", "start" */
        PLAN_COLUMN_SIZE,        /* "SIZE", "size" */
        PLAN_COLUMN_TYPE_UUID,   /* "typeUuid" */
        PLAN_COLUMN_TYPE_NAME,   /* "typeName" */
        PLAN_COLUMN_TYPE,        /* "TYPE" */
        PLAN_COLUMN_UUID,        /* "uuid" */
        PLAN_COLUMN_LABEL,       /* "LABEL", "label" */
        PLAN_COLUMN_FLAGS_VALUE, /* "flags" */
        PLAN_COLUMN_FLAG_NAMES,  /* "flagNames" */
        PLAN_COLUMN_FSTYPE,      /* "fstype" */
        PLAN_COLUMN_FS,          /* "FS" */
        PLAN_COLUMN_FLAGS,       /* "FLAGS" */
        PLAN_COLUMN_FS_LABEL,    /* "fsLabel" */
        PLAN_COLUMN_COPY_FROM,   /* "copyFrom" */
        PLAN_COLUMN_ENCRYPT,     /* "encrypt" */
        PLAN_COLUMN_LUKS_UUID,   /* "luksUuid" */
        _PLAN_COLUMN_MAX,
} PlanColumn;

/* The plan's partitions, one row each in plan order: the table plan_print_table() prints, the
 * full-screen installer shows (with its own headers), and the plan file's "partitions" array. */
int plan_partition_table(const Plan *p, Table **ret);

/* Computes the fingerprint of a disk as discovered now. */
int plan_fingerprint_from_disk(const Disk *d, PlanFingerprint *ret);
void plan_fingerprint_done(PlanFingerprint *f);

/* -ESTALE with a message saying what changed, if the disk no longer matches the plan. */
int plan_check_disk_unchanged(const Plan *p, const Disk *d);

const PlanPartition *plan_find_role(const Plan *p, PartitionRole role);
json_object *gpt_flags_to_json(uint64_t flags);
