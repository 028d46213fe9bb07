/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "error.h"
#include "i18n.h"
#include "log.h"
#include "macro.h"
#include "pe.h"
#include "recovery-entry.h"
#include "rootfile.h"

/* The variables, as efivarfs names them (formats.md §5, §6.3; systemd's src/basic/efivars.h:
 * EFI_VENDOR_SYSTEMD for FactoryReset*, EFI_VENDOR_LOADER for the Boot Loader Interface). */
#define VAR_FACTORY_RESET_REQUEST "FactoryResetRequest-" EFI_SYSTEMD_FACTORY_RESET_GUID_STR
#define VAR_FACTORY_RESET "FactoryReset-" EFI_SYSTEMD_FACTORY_RESET_GUID_STR
#define VAR_LOADER_ENTRY_DEFAULT "LoaderEntryDefault-" EFI_SYSTEMD_VENDOR_GUID_STR

/* Where the kernel offers the TPM Physical Presence Interface (drivers/char/tpm/tpm_ppi.c). */
#define TPM_PPI_REQUEST "/sys/class/tpm/tpm0/ppi/request"
/* TCG PC Client Physical Presence Interface: operation 5 is "TPM2_Clear" (as "Clear" plus enable
 * and activate on TPM 1.2); systemd-tpm2-clear writes the same. */
#define TPM_PPI_OP_CLEAR "5"

/* A UKI is tens of MiB; anything far beyond that is not one. */
#define RECOVERY_UKI_MAX (UINT64_C(512) * 1024 * 1024)

const char *recovery_entry_search_path(void) {
        const char *e = getenv(RECOVERY_UKI_ENV);

        return e && *e ? e : RECOVERY_UKI_PATH;
}

int recovery_entry_find(char **ret_path, uint64_t *ret_size) {
        const char *path = recovery_entry_search_path();
        _cleanup_(closep) int fd = -EBADF;
        _cleanup_(uki_info_done) UkiInfo info = {};
        _cleanup_(freep) char *copy = NULL;
        struct stat st;
        void *map;
        int r;

        if (!ret_path || !ret_size)
                return error_setf(-EINVAL, "recovery_entry_find() needs output arguments.");
        *ret_path = NULL;
        *ret_size = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (errno == ENOENT) {
                        log_debug("No recovery UKI at %s: the install gets no recovery entry.", path);
                        return 0;
                }
                return error_setf(-errno, _("Cannot open the recovery entry's UKI %s: %m"), path);
        }
        if (fstat(fd, &st) < 0)
                return error_setf(-errno, _("Cannot stat the recovery entry's UKI %s: %m"), path);
        if (!S_ISREG(st.st_mode))
                return error_setf(-EINVAL, _("The recovery entry's UKI %s is not a regular file."), path);
        if (st.st_size <= 0 || (uint64_t) st.st_size > RECOVERY_UKI_MAX)
                return error_setf(-EBADMSG, _("The recovery entry's UKI %s has an implausible size (%jd bytes)."), path,
                                  (intmax_t) st.st_size);

        /* sd-boot lists only what it takes for a UKI (.linux, .osrel, EFI application): check
         * before it is counted and copied. */
        map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED)
                return error_setf(-errno, _("Cannot read the recovery entry's UKI %s: %m"), path);
        r = uki_read(map, (size_t) st.st_size, path, &info);
        (void) munmap(map, (size_t) st.st_size);
        if (r < 0)
                return error_prefixf(r, _("The recovery entry's UKI is unusable"));

        copy = strdup(path);
        if (!copy)
                return error_setf(-ENOMEM, _("Out of memory."));

        log_debug("Recovery UKI: %s (%jd bytes, \"%s\").", path, (intmax_t) st.st_size, info.os_pretty_name ?: "");
        *ret_path = TAKE_PTR(copy);
        *ret_size = (uint64_t) st.st_size;
        return 1;
}

int recovery_entry_install(const FsLocation *boot, const char *uki_path) {
        static const char *const dirs[] = { "/EFI", "/EFI/Linux", NULL };
        _cleanup_(closep) int fd = -EBADF;
        int r;

        if (!boot || !uki_path)
                return error_setf(-EINVAL, "recovery_entry_install() needs a $BOOT and a UKI.");

        fd = open(uki_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return error_setf(-errno, _("Cannot open the recovery entry's UKI %s: %m"), uki_path);

        r = fat_mkdirs(boot, dirs);
        if (r < 0)
                return error_prefixf(r, _("Cannot create /EFI/Linux for the recovery entry"));
        /* mcopy -o: an entry from an older medium is replaced. */
        r = fat_copy_fd(boot, "/EFI/Linux/" RECOVERY_ENTRY_FILE, fd);
        if (r < 0)
                return error_prefixf(r, _("Cannot copy the recovery entry to /EFI/Linux/%s"), RECOVERY_ENTRY_FILE);

        log_info("installed the recovery entry /EFI/Linux/%s from %s", RECOVERY_ENTRY_FILE, uki_path);
        return 0;
}

static int enable_in_root(const char *root, const char *target, const char *unit) {
        _cleanup_(freep) char *dir = NULL, *link = NULL, *dest = NULL;
        int r;

        if (asprintf(&dir, "/etc/systemd/system/%s.wants", target) < 0 ||
            asprintf(&link, "%s/%s", dir, unit) < 0 || asprintf(&dest, "../%s", unit) < 0)
                return error_setf(-ENOMEM, _("Out of memory."));
        r = root_mkdir(root, dir);
        if (r < 0)
                return r;
        return root_symlink(root, link, dest);
}

/* factory-reset.target is systemd's hook for "reset this machine" (systemd.special(7)): empty up to
 * v257; from v258 it sets FactoryResetRequest, may ask for a TPM clear, and reboots
 * (systemd-factory-reset-reboot.service). Two units make it boot imprint's recovery entry on
 * either:
 *   - imprint-factory-reset.service asks sd-boot for the recovery entry on the next boot only,
 *     with stock bootctl (LoaderEntryOneShot, a verb since long before v252);
 *   - imprint-factory-reset-reboot.service reboots, but only where systemd has no reboot of its
 *     own behind the target: it is skipped when systemd-factory-reset-reboot.service exists.
 *     The decision is made at the reset request, not at install: a usr image's /usr is not
 *     visible when the root is written, and a sysupdate may bring v258 later. Its reboot goes
 *     through systemctl reboot --boot-loader-entry=, which sets the one-shot entry itself too,
 *     so the entry is booted even where the image lacks bootctl. */
static const char hook_service[] =
        "# Written by imprint: starting factory-reset.target (systemctl start factory-reset.target)\n"
        "# boots imprint's recovery entry once, which erases and recreates this system (imprint(1)).\n"
        "[Unit]\n"
        "Description=Boot imprint's recovery entry for a factory reset\n"
        "Documentation=man:imprint(1)\n"
        "DefaultDependencies=no\n"
        "Conflicts=shutdown.target\n"
        "Before=factory-reset.target shutdown.target\n"
        "ConditionFirmware=uefi\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        "ExecStart=bootctl set-oneshot " RECOVERY_ENTRY_FILE "\n"
        "\n"
        "[Install]\n"
        "WantedBy=factory-reset.target\n";

static const char hook_reboot_service[] =
        "# Written by imprint: the reboot behind factory-reset.target where systemd (< 258) has none.\n"
        "[Unit]\n"
        "Description=Reboot into imprint's recovery entry for a factory reset\n"
        "Documentation=man:imprint(1)\n"
        "DefaultDependencies=no\n"
        "Conflicts=shutdown.target\n"
        "Wants=imprint-factory-reset.service\n"
        "After=imprint-factory-reset.service factory-reset.target\n"
        "Before=shutdown.target\n"
        "ConditionFirmware=uefi\n"
        "ConditionPathExists=!/usr/lib/systemd/system/systemd-factory-reset-reboot.service\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "ExecStart=systemctl --no-block reboot --boot-loader-entry=" RECOVERY_ENTRY_FILE "\n"
        "\n"
        "[Install]\n"
        "WantedBy=factory-reset.target\n";

int recovery_entry_write_request_hook(const char *root) {
        static const char *const dirs[] = { "/etc", "/etc/systemd", "/etc/systemd/system" };
        int r;

        if (!root)
                return error_setf(-EINVAL, "recovery_entry_write_request_hook() needs a root.");

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                r = root_mkdir(root, dirs[i]);
                if (r < 0)
                        return r;
        }
        r = root_write_file(root, "/etc/systemd/system/imprint-factory-reset.service", hook_service, 0644);
        if (r >= 0)
                r = root_write_file(root, "/etc/systemd/system/imprint-factory-reset-reboot.service", hook_reboot_service, 0644);
        if (r >= 0)
                r = enable_in_root(root, "factory-reset.target", "imprint-factory-reset.service");
        if (r >= 0)
                r = enable_in_root(root, "factory-reset.target", "imprint-factory-reset-reboot.service");
        if (r < 0)
                return error_prefixf(r, _("Cannot install the factory reset hook"));

        log_info("factory-reset.target of the installed system boots the recovery entry %s", RECOVERY_ENTRY_FILE);
        return 0;
}

/* "FactoryResetRequest from Debian GNU/Linux 13 (debian-image 2), boot 0f3c…", from the JSON
 * systemd-factory-reset writes (osReleaseId, osReleaseVersionId, osReleaseImageId,
 * osReleaseImageVersion, bootId); whatever is missing is left out. */
static char *describe_request(const char *text) {
        json_object *o, *v;
        const char *id = NULL, *version = NULL, *image = NULL, *image_version = NULL, *boot = NULL;
        char *s = NULL;

        o = json_tokener_parse(text);
        if (o && json_object_is_type(o, json_type_object)) {
                if (json_object_object_get_ex(o, "osReleaseId", &v) && json_object_is_type(v, json_type_string))
                        id = json_object_get_string(v);
                if (json_object_object_get_ex(o, "osReleaseVersionId", &v) && json_object_is_type(v, json_type_string))
                        version = json_object_get_string(v);
                if (json_object_object_get_ex(o, "osReleaseImageId", &v) && json_object_is_type(v, json_type_string))
                        image = json_object_get_string(v);
                if (json_object_object_get_ex(o, "osReleaseImageVersion", &v) && json_object_is_type(v, json_type_string))
                        image_version = json_object_get_string(v);
                if (json_object_object_get_ex(o, "bootId", &v) && json_object_is_type(v, json_type_string))
                        boot = json_object_get_string(v);
        }

        if (!id)
                /* Not what systemd writes, but a request all the same: set by hand, or by a newer
                 * format. */
                s = strdup("FactoryResetRequest");
        else if (asprintf(&s, "FactoryResetRequest from %s%s%s%s%s%s%s%s%s%.8s", id,
                          version ? " " : "", version ?: "",
                          image ? " (" : "", image ?: "", image && image_version ? " " : "", image ? image_version ?: "" : "",
                          image ? ")" : "",
                          boot ? ", boot " : "", boot ?: "") < 0)
                s = NULL;
        json_object_put(o);
        return s;
}

static bool parse_boolean_string(const char *s, bool *ret) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return true;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return true;
                }
        return false;
}

int recovery_request_pending(const EfiVars *v, char **ret_description) {
        _cleanup_(freep) char *text = NULL, *desc = NULL;
        bool b;
        int r;

        if (ret_description)
                *ret_description = NULL;

        /* systemd ≥ 258: a JSON request. The recovery entry honours any: the OS that asked is the
         * one imprint installed on this disk, and the request names it only for the record. */
        r = efi_get_variable_string(v, VAR_FACTORY_RESET_REQUEST, &text);
        if (r >= 0) {
                desc = describe_request(text);
                if (!desc)
                        return error_setf(-ENOMEM, _("Out of memory."));
                log_info("factory reset requested: %s", desc);
                if (ret_description)
                        *ret_description = TAKE_PTR(desc);
                return 1;
        }
        if (r != -ENOENT && r != -EBADMSG)
                return r;
        if (r == -EBADMSG)
                log_notice("Ignoring malformed EFI variable FactoryResetRequest: %s", error_message() ?: "");
        error_clear();

        /* systemd-repart's older boolean (v252–v257), honoured only in the initrd — where the
         * recovery entry runs. */
        text = mfree(text);
        r = efi_get_variable_string(v, VAR_FACTORY_RESET, &text);
        if (r == -ENOENT || r == -EBADMSG) {
                error_clear();
                return 0;
        }
        if (r < 0)
                return r;
        if (!parse_boolean_string(text, &b)) {
                log_notice("Ignoring EFI variable FactoryReset with value \"%s\": not a boolean.", text);
                return 0;
        }
        if (!b)
                return 0;

        log_info("factory reset requested: FactoryReset=%s", text);
        if (ret_description) {
                *ret_description = strdup("FactoryReset EFI variable");
                if (!*ret_description)
                        return error_setf(-ENOMEM, _("Out of memory."));
        }
        return 1;
}

int recovery_request_clear(const EfiVars *v) {
        int r;

        r = efi_delete_variable(v, VAR_FACTORY_RESET_REQUEST);
        if (r < 0)
                return error_prefixf(r, _("Cannot clear the factory reset request"));
        r = efi_delete_variable(v, VAR_FACTORY_RESET);
        if (r < 0)
                return error_prefixf(r, _("Cannot clear the factory reset request"));
        return 0;
}

int recovery_redirect_boot(const EfiVars *v, char **ret_previous) {
        _cleanup_(freep) char *previous = NULL;
        int r;

        if (!ret_previous)
                return error_setf(-EINVAL, "recovery_redirect_boot() needs an output argument.");
        *ret_previous = NULL;

        r = efi_get_variable_string(v, VAR_LOADER_ENTRY_DEFAULT, &previous);
        if (r == -ENOENT || r == -EBADMSG) {
                /* Nothing (or nothing usable): loader.conf's default applies afterwards. */
                error_clear();
                previous = mfree(previous);
        } else if (r < 0)
                return error_prefixf(r, _("Cannot read the boot loader's default entry"));

        /* Already ours: a reset that was cut off and is resumed. What was there before it is not
         * known any more; none is the right answer for a system imprint installed, whose default
         * is loader.conf's (imprint sets no LoaderEntryDefault). */
        if (previous && strcasecmp(previous, RECOVERY_ENTRY_FILE) == 0)
                previous = mfree(previous);

        r = efi_set_variable_string(v, VAR_LOADER_ENTRY_DEFAULT, RECOVERY_ENTRY_FILE);
        if (r < 0)
                return error_prefixf(r, _("Cannot make the recovery entry the boot default"));

        log_info("the recovery entry is the boot default until the reset ends (was: %s)", previous ?: "loader.conf's default");
        *ret_previous = TAKE_PTR(previous);
        return 0;
}

int recovery_redirect_restore(const EfiVars *v, const char *previous) {
        _cleanup_(freep) char *current = NULL;
        int r;

        if (previous && *previous && strcasecmp(previous, RECOVERY_ENTRY_FILE) != 0) {
                r = efi_set_variable_string(v, VAR_LOADER_ENTRY_DEFAULT, previous);
                if (r < 0)
                        return error_prefixf(r, _("Cannot restore the boot loader's default entry"));
                log_info("boot default restored: %s", previous);
                return 0;
        }

        /* No previous value: remove ours, and only ours (someone may have chosen another default
         * meanwhile, with bootctl set-default). */
        r = efi_get_variable_string(v, VAR_LOADER_ENTRY_DEFAULT, &current);
        if (r == -ENOENT || r == -EBADMSG) {
                error_clear();
                return 0;
        }
        if (r < 0)
                return error_prefixf(r, _("Cannot read the boot loader's default entry"));
        if (strcasecmp(current, RECOVERY_ENTRY_FILE) != 0)
                return 0;

        r = efi_delete_variable(v, VAR_LOADER_ENTRY_DEFAULT);
        if (r < 0)
                return error_prefixf(r, _("Cannot restore the boot loader's default entry"));
        log_info("boot default restored: loader.conf's default");
        return 0;
}

int recovery_request_tpm_clear(void) {
        _cleanup_(closep) int fd = -EBADF;
        ssize_t n;

        fd = open(TPM_PPI_REQUEST, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (errno == ENOENT)
                        return error_setf(-EOPNOTSUPP,
                                          _("The firmware offers no way to clear the TPM (no TPM Physical Presence Interface, %s)."),
                                          TPM_PPI_REQUEST);
                return error_setf(-errno, _("Cannot ask the firmware to clear the TPM (%s): %m"), TPM_PPI_REQUEST);
        }
        do
                n = write(fd, TPM_PPI_OP_CLEAR, strlen(TPM_PPI_OP_CLEAR));
        while (n < 0 && errno == EINTR);
        if (n < 0)
                /* The kernel passes the firmware's refusal on as EPERM (operation blocked by the
                 * firmware's settings) or EINVAL/ENOTSUP. */
                return error_setf(-errno, _("The firmware refused to clear the TPM at the next boot (%s): %m"), TPM_PPI_REQUEST);

        log_notice("Requested a TPM clear through the firmware (PPI); the firmware asks for confirmation at the next boot.");
        return 0;
}
