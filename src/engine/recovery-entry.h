/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The recovery entry: a UKI that boots into imprint's reset screen with no USB stick. The live
 * medium carries it (iso/build-live.sh builds it: the medium's kernel and an initrd that holds
 * imprint and the tools a reset needs, so the installed OS image need not contain imprint); an
 * install copies it to $BOOT/EFI/Linux/imprint-recovery.efi, where systemd-boot lists it as a
 * Type #2 entry and where
 *     systemctl reboot --boot-loader-entry=imprint-recovery.efi
 * selects it for one boot (LoaderEntryOneShot). The installed system also gets a unit that does
 * the same when factory-reset.target is started (systemd ≤ 257 has the target but nothing behind
 * it), and the entry honours systemd ≥ 258's FactoryResetRequest EFI variable.
 *
 * While a reset runs, the recovery entry is sd-boot's default (LoaderEntryDefault), so that a
 * machine that loses power mid-reset boots the recovery entry again, which resumes the reset;
 * the reset's end restores what was there before. */

#include <stdbool.h>
#include <stdint.h>

#include "efivars.h"
#include "fsread.h"

#define RECOVERY_ENTRY_FILE "imprint-recovery.efi"               /* in $BOOT/EFI/Linux; also its entry ID */
#define RECOVERY_UKI_PATH "/usr/lib/imprint/imprint-recovery.efi" /* on the live medium */
#define RECOVERY_UKI_ENV "IMPRINT_RECOVERY_UKI"                   /* overrides the path (tests, custom media) */

/* The vendor GUIDs (systemd's src/basic/efivars.h): the Boot Loader Interface's (EFI_VENDOR_LOADER:
 * LoaderEntryDefault, LoaderEntryOneShot, the other Loader* variables) and systemd's own
 * (EFI_VENDOR_SYSTEMD: FactoryReset, FactoryResetRequest). Both strings are UTF-16LE. */
#define EFI_SYSTEMD_VENDOR_GUID_STR "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
#define EFI_SYSTEMD_FACTORY_RESET_GUID_STR "8cf2644b-4b0b-428f-9387-6d876050dc67"

/* The recovery UKI this imprint would install: $IMPRINT_RECOVERY_UKI, else RECOVERY_UKI_PATH.
 * Returns 1 with its path and size, 0 when there is none (an install then has no recovery entry,
 * and the plan says so), < 0 when the file named is unreadable or not a UKI. */
int recovery_entry_find(char **ret_path, uint64_t *ret_size);
/* The path recovery_entry_find() looks at, for saying why there is no recovery entry. */
const char *recovery_entry_search_path(void);

/* Copies the UKI at uki_path to /EFI/Linux/imprint-recovery.efi on boot ($BOOT: XBOOTLDR or the
 * ESP), replacing an older one (a reinstall from a newer medium updates the entry). */
int recovery_entry_install(const FsLocation *boot, const char *uki_path);

/* Writes into the installed root mounted at root the units that make factory-reset.target boot
 * the recovery entry (/etc/systemd/system/imprint-factory-reset.service: bootctl set-oneshot, and
 * imprint-factory-reset-reboot.service: the reboot where systemd < 258 has none; both in
 * factory-reset.target.wants). */
int recovery_entry_write_request_hook(const char *root);

/* Whether the firmware carries a reset request: systemd ≥ 258's FactoryResetRequest (JSON, see
 * formats.md §5) or the older boolean FactoryReset. Returns 1 (ret_description: "FactoryResetRequest
 * from Debian GNU/Linux 13, boot 0f3c…") or 0. */
int recovery_request_pending(const EfiVars *v, char **ret_description);
/* Removes both variables (the reset has honoured them); 0 when there were none either. */
int recovery_request_clear(const EfiVars *v);

/* Makes the recovery entry sd-boot's default (LoaderEntryDefault), returning what was there
 * before (NULL: nothing, or the recovery entry itself when a cut-off reset is resumed) for
 * recovery_redirect_restore(), which sets that again, or with NULL deletes the variable if it
 * still names the recovery entry (loader.conf's default applies again). */
int recovery_redirect_boot(const EfiVars *v, char **ret_previous);
int recovery_redirect_restore(const EfiVars *v, const char *previous);

/* Asks the firmware to clear the TPM at the next boot through the PPI, as systemd-tpm2-clear does
 * (/sys/class/tpm/tpm0/ppi/request ← "5"). -EOPNOTSUPP with a sentence when there is no PPI. */
int recovery_request_tpm_clear(void);
