/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Firmware boot entries: what `bootctl install` does to EFI variables after copying systemd-boot
 * onto an ESP. A Boot#### variable holding an EFI_LOAD_OPTION that points at the loader on that
 * partition is created (or an identical one reused) and put first in BootOrder.
 *
 * Variables are read and written through efivarfs, where each variable is a file named
 * <Name>-<vendor-guid> whose content is a 32-bit little-endian attributes word followed by the
 * data. The root directory is a parameter so that tests can run against an ordinary directory. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-id128.h>

#define EFIVARS_ROOT_DEFAULT "/sys/firmware/efi/efivars"

/* The vendor GUID of the variables the UEFI specification defines (Boot####, BootOrder). */
#define EFI_GLOBAL_VARIABLE_GUID_STR "8be4df61-93ca-11d2-aa0d-00e098032b8c"

/* UEFI 2.10 §3.1.3 "Load Options" */
#define EFI_LOAD_OPTION_ACTIVE UINT32_C(0x00000001)

/* UEFI 2.10 §8.2 "Variable Services": attributes of Boot#### and BootOrder. */
#define EFI_VARIABLE_NON_VOLATILE UINT32_C(0x00000001)
#define EFI_VARIABLE_BOOTSERVICE_ACCESS UINT32_C(0x00000002)
#define EFI_VARIABLE_RUNTIME_ACCESS UINT32_C(0x00000004)

/* The description bootctl gives its entry (bootctl --efi-boot-option-description= default). */
#define EFI_BOOT_ENTRY_DESCRIPTION_DEFAULT "Linux Boot Manager"

typedef struct EfiVars {
        const char *root; /* efivarfs mount point; NULL means EFIVARS_ROOT_DEFAULT */
} EfiVars;

/* Whether this system was booted through UEFI (/sys/firmware/efi exists). */
bool efi_booted(void);

/* Builds an EFI_LOAD_OPTION (UEFI 2.10 §3.1.3) with attribute LOAD_OPTION_ACTIVE, the UTF-16LE
 * description, and the device path: a Hard Drive media node for GPT partition partno (1-based)
 * at start_lba with size_lba sectors, signed by part_uuid; a File Path node holding path with
 * '/' turned into '\'; and an End Entire Device Path node. Returns a malloc'ed buffer. */
int efi_make_load_option(
                const char *description,
                uint32_t partno,
                uint64_t start_lba,
                uint64_t size_lba,
                sd_id128_t part_uuid,
                const char *path,
                void **ret,
                size_t *ret_size);

/* Parses an EFI_LOAD_OPTION. The partition GUID is that of the first GPT Hard Drive node
 * (SD_ID128_NULL when there is none); the path is the File Path nodes of the first device path
 * instance joined, with '\' turned into '/' (NULL when there is none). Every output is optional.
 * A truncated buffer, an unterminated description, a node shorter than its header or longer than
 * the list, a Hard Drive node of the wrong length, or a list without an End Entire Device Path
 * node yields -EBADMSG. */
int efi_parse_load_option(
                const void *buf,
                size_t size,
                char **ret_description,
                sd_id128_t *ret_part_uuid,
                char **ret_path);

/* Makes the firmware boot the loader at path on the given partition first. An existing Boot####
 * whose partition GUID and path match (ignoring ASCII case, as firmware may upper-case stored
 * paths, and treating '/' and '\' alike) is reused and rewritten when its content differs;
 * otherwise the lowest free number is taken, as bootctl's find_slot() does. Unparsable Boot####
 * variables keep their number but are otherwise ignored. The entry is then put first in
 * BootOrder (created when missing) and any other occurrence of it is dropped; other entries keep
 * their order. Returns the entry number in ret_id. v may be NULL for the default efivarfs root. */
int efi_add_boot_entry(
                const EfiVars *v,
                const char *description,
                uint32_t partno,
                uint64_t start_lba,
                uint64_t size_lba,
                sd_id128_t part_uuid,
                const char *path,
                uint16_t *ret_id);

/* Deletes Boot#### and removes every occurrence of id from BootOrder. Returns 0 when the entry
 * existed, -ENOENT (with a message) when it did not. */
int efi_remove_boot_entry(const EfiVars *v, uint16_t id);

/* Reads BootOrder: a malloc'ed array of ret_n entry numbers (NULL when empty). -ENOENT when the
 * variable does not exist, -EBADMSG when its size is not a multiple of two. */
int efi_get_boot_order(const EfiVars *v, uint16_t **ret, size_t *ret_n);

/* Any variable, named "<Name>-<vendor-guid>" as efivarfs names it (anything else, or a '/', is
 * -EINVAL). Get: the data without the attributes word, -ENOENT when it does not exist. Set:
 * non-volatile, boot service and runtime access (what sd-boot's Loader* variables and systemd's
 * FactoryReset* use); empty data is -EINVAL (an empty write deletes on efivarfs); an unchanged
 * value is not rewritten. Delete: 0 when it did not exist either. */
int efi_get_variable(const EfiVars *v, const char *name, void **ret, size_t *ret_size);
int efi_set_variable(const EfiVars *v, const char *name, const void *data, size_t size);
int efi_delete_variable(const EfiVars *v, const char *name);
/* The Boot Loader Interface's strings are UTF-16LE with a terminating NUL: these convert. Get
 * reads up to the first NUL (a missing one is tolerated; an odd size is -EBADMSG); set writes the
 * NUL, as systemd's efi_set_variable_string() does. */
int efi_get_variable_string(const EfiVars *v, const char *name, char **ret);
int efi_set_variable_string(const EfiVars *v, const char *name, const char *value);
