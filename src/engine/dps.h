/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Discoverable Partitions Specification: partition type GUIDs, their names, and the GPT
 * attribute flags systemd honours (UAPI discoverable_partitions_specification.md; the same
 * values are in systemd's sd-gpt.h). */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-id128.h>

#include "string-table.h"

/* GPT attribute bits (UAPI DPS "Partition Attribute Flags"). */
#define DPS_FLAG_NO_BLOCK_IO_PROTOCOL (UINT64_C(1) << 1) /* ESP: "do not mount" for the generator */
#define DPS_FLAG_GROWFS (UINT64_C(1) << 59)
#define DPS_FLAG_READ_ONLY (UINT64_C(1) << 60)
#define DPS_FLAG_NO_AUTO (UINT64_C(1) << 63)

typedef enum Architecture {
        ARCH_X86_64,
        ARCH_ARM64,
        ARCH_X86,
        ARCH_RISCV64,
        _ARCH_MAX,
        _ARCH_INVALID = -EINVAL,
} Architecture;

DECLARE_STRING_TABLE_LOOKUP(architecture, Architecture);
Architecture architecture_native(void);

/* What a partition is for. Ordered as imprint lays partitions out on a disk. */
typedef enum PartitionRole {
        ROLE_ESP,
        ROLE_XBOOTLDR,
        ROLE_SWAP,
        ROLE_ROOT,
        ROLE_USR,
        ROLE_ROOT_VERITY,
        ROLE_USR_VERITY,
        ROLE_ROOT_VERITY_SIG,
        ROLE_USR_VERITY_SIG,
        ROLE_HOME,
        ROLE_SRV,
        ROLE_VAR,
        ROLE_TMP,
        ROLE_USER_HOME,
        ROLE_LINUX_GENERIC,
        ROLE_OTHER, /* anything else (Windows, another architecture's root, …) */
        _ROLE_MAX,
        _ROLE_INVALID = -EINVAL,
} PartitionRole;

/* "esp", "xbootldr", "root", … — the names systemd-repart's Type= uses. */
DECLARE_STRING_TABLE_LOOKUP(partition_role, PartitionRole);

typedef struct DpsType {
        const char *uuid_str;
        sd_id128_t uuid;
        PartitionRole role;
        Architecture arch; /* _ARCH_INVALID when the type is not architecture-specific */
        const char *name;  /* "root-x86-64", "esp", "home", "microsoft-basic-data", … */
} DpsType;

/* Finds a type by GUID; NULL for types imprint does not know. */
const DpsType *dps_type_from_uuid(sd_id128_t uuid);

/* Type GUID for a role, for architecture-specific roles on arch. Returns -EOPNOTSUPP when the
 * combination does not exist. */
int dps_type_uuid(PartitionRole role, Architecture arch, sd_id128_t *ret);

/* A human name for a type GUID string: the DPS name, or NULL. */
const char *dps_type_name(sd_id128_t uuid);

/* Whether systemd-gpt-auto-generator reacts to this role (auto-mounts, -activates it). */
bool partition_role_is_auto_discovered(PartitionRole role);
