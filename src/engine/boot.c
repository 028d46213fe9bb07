/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "boot.h"
#include "secureboot.h"
#include "efivars.h"
#include "error.h"
#include "fileio.h"
#include "fsread.h"
#include "i18n.h"
#include "log.h"
#include "pe.h"
#include "recovery-entry.h"
#include "run.h"
#include "size.h"

/* 32 bytes: RANDOM_EFI_SEED_SIZE of systemd v253+ (formats.md §6.3); v252 accepts any size ≥ 32. */
#define RANDOM_SEED_SIZE 32

void boot_result_done(BootResult *r) {
        free(r->default_entry);
        free(r->note);
        *r = (BootResult) { .boot_entry = -1 };
}

static const char *efi_arch(Architecture a) {
        switch (a) {
        case ARCH_X86_64:
                return "x64";
        case ARCH_ARM64:
                return "aa64";
        case ARCH_X86:
                return "ia32";
        case ARCH_RISCV64:
                return "riscv64";
        default:
                return NULL;
        }
}

/* Whether an existing fallback loader should be left alone: another system's (Windows puts its
 * boot manager at EFI/BOOT/BOOTX64.EFI too). Ours is then reached through the Boot#### entry. */
static bool foreign_fallback(const FsLocation *esp, const char *path) {
        _cleanup_(freep) void *buf = NULL;
        size_t size = 0;

        if (fs_read_file(esp, path, &buf, &size) < 0)
                return false;
        return !memmem(buf, size, "#### LoaderInfo: systemd-boot ", strlen("#### LoaderInfo: systemd-boot "));
}

/* Another system on a shared ESP may have installed a newer systemd-boot than the image's; a
 * downgrade could break its boot (bootctl update refuses to downgrade for the same reason). */
static bool newer_sdboot_present(const FsLocation *esp, const char *path, const char *ours) {
        _cleanup_(freep) void *buf = NULL;
        _cleanup_(freep) char *theirs = NULL;
        size_t size = 0;
        const char *a, *b;

        if (fs_read_file(esp, path, &buf, &size) < 0 || efi_binary_loader_info(buf, size, path, &theirs) < 0 || !ours)
                return false;
        /* "systemd-boot 257.9-1" → compare what follows the first space. */
        a = strchr(theirs, ' ');
        b = strchr(ours, ' ');
        return a && b && strverscmp(a + 1, b + 1) > 0;
}

/* The plan's entry for one of the image's UKIs (NULL: none, e.g. a plan file without entries). */
static const PlanBootEntry *plan_entry_for(const Plan *p, const char *file) {
        for (size_t i = 0; p->source && i < p->source->n_entries; i++)
                if (streq_ptr(p->source->entries[i].file, file))
                        return &p->source->entries[i];
        return NULL;
}

/* Deletes /EFI/Linux/imprint-recovery.efi from a FAT filesystem when it is there. */
static int remove_stale_recovery_entry(const FsLocation *l) {
        _cleanup_(freep) char *tool_path = NULL, *spec = NULL;
        char **names = NULL;
        bool found = false;
        int r;

        r = fs_list_dir(l, "/EFI/Linux", &names);
        if (r < 0) {
                error_clear();
                return 0;
        }
        for (char **n = names; n && *n; n++)
                if (strcasecmp(*n, RECOVERY_ENTRY_FILE) == 0)
                        found = true;
        strv_free(names);
        if (!found)
                return 0;

        r = fs_tool_path(l, "@@", &tool_path);
        if (r < 0)
                return r;
        if (asprintf(&spec, "::/EFI/Linux/%s", RECOVERY_ENTRY_FILE) < 0)
                return -ENOMEM;
        char *argv[] = { (char *) "mdel", (char *) "-i", tool_path ?: (char *) l->disk, spec, NULL };
        r = run_command(argv, NULL);
        if (r < 0)
                return error_prefixf(r, _("Cannot remove the old recovery entry from the ESP"));
        log_info("removed the recovery entry an earlier install left on the ESP; it is on the XBOOTLDR partition now");
        return 0;
}

static int write_loader_conf(const FsLocation *esp, const char *default_entry, unsigned timeout, const char *extra) {
        char buf[512];
        int n;

        /* Keys every sd-boot since v252 parses (formats.md §2.5); extra: secure-boot-enroll. */
        n = snprintf(buf, sizeof(buf),
                     "# Written by imprint.\n"
                     "timeout %u\n"
                     "default %s\n"
                     "%s",
                     timeout, default_entry, extra ?: "");
        return fat_write_file(esp, "/loader/loader.conf", buf, (size_t) n);
}

/* shim, when Secure Boot trusts the image only through it (secureboot.h): shim at
 * EFI/systemd/shim<arch>.efi, where the firmware entry points, and as the fallback loader; shim
 * starts grub<arch>.efi from its own directory (its DEFAULT_LOADER), which is systemd-boot; its MOK
 * manager beside it. */
static int install_shim(const FsLocation *esp, const Image *img, const char *arch, const char *upper, const void *sdboot,
                        bool foreign, char *entry_path, size_t entry_size) {
        _cleanup_(freep) void *shim = NULL, *mok = NULL;
        const char *const dirs[] = { "/EFI/systemd", "/EFI/BOOT" };
        int r;

        r = read_fd_all(img->shim_fd, img->shim_size, &shim);
        if (r >= 0 && img->mok_fd >= 0)
                r = read_fd_all(img->mok_fd, img->mok_size, &mok);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                char path[192];

                if (i == 1 && foreign)
                        break; /* another system's fallback loader stays */
                if (i == 0)
                        snprintf(path, sizeof(path), "%s/shim%s.efi", dirs[i], arch);
                else
                        snprintf(path, sizeof(path), "%s/BOOT%s.EFI", dirs[i], upper);
                r = fat_write_file(esp, path, shim, img->shim_size);
                if (r < 0)
                        return r;
                if (i == 0)
                        snprintf(entry_path, entry_size, "%s", path);
                snprintf(path, sizeof(path), "%s/grub%s.efi", dirs[i], arch);
                r = fat_write_file(esp, path, sdboot, img->sdboot_size);
                if (r < 0)
                        return r;
                if (mok) {
                        snprintf(path, sizeof(path), "%s/mm%s.efi", dirs[i], arch);
                        r = fat_write_file(esp, path, mok, img->mok_size);
                        if (r < 0)
                                return r;
                }
        }
        log_info("installed shim as %s (the firmware entry) and EFI/BOOT/BOOT%s.EFI; systemd-boot beside it as grub%s.efi",
                 entry_path, upper, arch);
        return 0;
}

int boot_install(const Plan *p, const Image *img, const char *esp_node, const char *boot_node, const BootOptions *o,
                 BootResult *ret) {
        const PlanPartition *esp_p = plan_find_role(p, ROLE_ESP), *xb_p = plan_find_role(p, ROLE_XBOOTLDR);
        const char *arch = efi_arch(p->arch);
        _cleanup_(boot_result_done) BootResult res = { .boot_entry = -1 };
        _cleanup_(freep) void *sdboot = NULL;
        char sd_path[96], fallback[96], upper[16], entry_path[192] = "";
        bool foreign;
        uint8_t seed[RANDOM_SEED_SIZE];
        const char *loader_conf_extra = NULL;
        FsLocation esp, boot;
        int r;

        if (!esp_p || !arch)
                return error_setf(-EINVAL, _("The plan has no ESP for %s."), architecture_to_string(p->arch));

        esp = (FsLocation) { .disk = p->target, .node = esp_node, .offset = esp_p->start, .fstype = "vfat" };
        /* $BOOT is XBOOTLDR when there is one, else the ESP (UAPI Boot Loader Specification). */
        boot = xb_p ? (FsLocation) { .disk = p->target, .node = boot_node, .offset = xb_p->start, .fstype = "vfat" } : esp;

        {
                /* The directories bootctl creates (formats.md §2.6). */
                const char *esp_dirs[] = { "/EFI", "/EFI/systemd", "/EFI/BOOT", "/EFI/Linux", "/loader", "/loader/keys",
                                           "/loader/entries", NULL };
                const char *boot_dirs[] = { "/EFI", "/EFI/Linux", "/loader", "/loader/entries", NULL };

                r = fat_mkdirs(&esp, esp_dirs);
                if (r >= 0 && xb_p)
                        r = fat_mkdirs(&boot, boot_dirs);
                if (r < 0)
                        return error_prefixf(r, _("Cannot create the boot directories on %s"), p->target);
        }

        /* systemd-boot: the image's own binary, at its canonical place and as the removable-media
         * fallback that firmware boots when no Boot#### entry points elsewhere. */
        r = read_fd_all(img->sdboot_fd, img->sdboot_size, &sdboot);
        if (r < 0)
                return r;
        snprintf(sd_path, sizeof(sd_path), "/EFI/systemd/systemd-boot%s.efi", arch);
        snprintf(upper, sizeof(upper), "%s", arch);
        for (char *c = upper; *c; c++)
                *c = (char) toupper((unsigned char) *c);
        snprintf(fallback, sizeof(fallback), "/EFI/BOOT/BOOT%s.EFI", upper);
        if (esp_p->action == ACTION_KEEP && newer_sdboot_present(&esp, sd_path, img->sdboot_version))
                log_notice("A newer systemd-boot is already on the kept ESP; keeping it (bootctl does not downgrade either).");
        else {
                r = fat_write_file(&esp, sd_path, sdboot, img->sdboot_size);
                if (r < 0)
                        return error_prefixf(r, _("Cannot install systemd-boot on %s"), p->target);
        }
        foreign = esp_p->action == ACTION_KEEP && foreign_fallback(&esp, fallback);
        if (foreign)
                log_notice("%s on the kept ESP belongs to another system; leaving it, the firmware boot entry points at %s.",
                           fallback, sd_path);
        else {
                r = fat_write_file(&esp, fallback, sdboot, img->sdboot_size);
                if (r < 0)
                        return error_prefixf(r, _("Cannot install the fallback boot loader on %s"), p->target);
        }
        log_info("installed %s from %s as %s and %s", img->sdboot_version, img->sdboot_origin, sd_path, fallback);
        if (p->secure_boot.decided && p->secure_boot.shim) {
                r = install_shim(&esp, img, arch, upper, sdboot, foreign, entry_path, sizeof(entry_path));
                if (r < 0)
                        return error_prefixf(r, _("Cannot install shim on %s"), p->target);
        }

        /* The UKIs, as Type #2 entries in $BOOT/EFI/Linux. A usr image's UKI gets the name its
         * sysupdate.d transfer gives new versions, with the boot counter in it ("x_1+3-0.efi";
         * the forms sd-boot parses: "+LEFT" and "+LEFT-DONE" before ".efi"), on the partition
         * its PathRelativeTo= names (boot: $BOOT). */
        for (size_t i = 0; i < img->n_ukis; i++) {
                const PlanBootEntry *be = plan_entry_for(p, img->ukis[i].name);
                const FsLocation *where = &boot;
                char path[512];

                if (be && be->install_as && be->install_on == ROLE_ESP)
                        where = &esp;
                snprintf(path, sizeof(path), "/EFI/Linux/%s", be && be->install_as ? be->install_as : img->ukis[i].name);
                r = fat_copy_fd(where, path, img->ukis[i].fd);
                if (r < 0)
                        return error_prefixf(r, _("Cannot copy %s to %s"), path, p->target);
                if (be && be->install_as)
                        log_info("installed %s as %s on the %s", img->ukis[i].name, path,
                                 where == &esp || !xb_p ? "ESP" : "XBOOTLDR partition");
        }
        /* The recovery entry (recovery-entry.h): a reinstall from a newer medium replaces it. With
         * XBOOTLDR it lives there, like the UKIs; a copy an earlier install left on the ESP would
         * be a second menu entry of the same name, and goes. */
        if (p->recovery_uki) {
                r = recovery_entry_install(&boot, p->recovery_uki);
                if (r < 0)
                        return error_prefixf(r, _("Cannot install the recovery entry on %s"), p->target);
                if (xb_p && esp_p->action == ACTION_KEEP) {
                        r = remove_stale_recovery_entry(&esp);
                        if (r < 0)
                                return r;
                }
        }

        r = fat_write_file(&boot, "/loader/entries.srel", "type1\n", 6);
        if (r < 0)
                return r;

        /* Default to the image's newest entry; a glob on IMAGE_ID keeps the default right when
         * systemd-sysupdate later adds <IMAGE_ID>_<version>.efi files (entry IDs are file names). */
        {
                const ImageUki *u = image_default_uki(img);
                const PlanBootEntry *be = plan_entry_for(p, u->name);
                size_t idl = img->image_id ? strlen(img->image_id) : 0;

                if (idl > 0 && strncasecmp(u->name, img->image_id, idl) == 0 && u->name[idl] == '_') {
                        if (asprintf(&res.default_entry, "%s_*", img->image_id) < 0)
                                res.default_entry = NULL;
                } else if (be && be->install_as && strchr(be->install_as, '+')) {
                        /* Entry IDs are file names, and sd-boot renames the file as it counts:
                         * the part before the counter, and anything after. */
                        if (asprintf(&res.default_entry, "%.*s*", (int) (strrchr(be->install_as, '+') - be->install_as),
                                     be->install_as) < 0)
                                res.default_entry = NULL;
                } else
                        res.default_entry = strdup(be && be->install_as ? be->install_as : u->name);
                if (!res.default_entry)
                        return -ENOMEM;
        }
        /* The image's Secure Boot keys, when the plan enrolls them (secureboot.h). */
        r = secureboot_install_keys(p, img, &esp, &loader_conf_extra);
        if (r < 0)
                return r;
        r = write_loader_conf(&esp, res.default_entry, o && o->timeout_sec ? o->timeout_sec : 3, loader_conf_extra);
        if (r < 0)
                return r;

        /* The random seed sd-boot passes on to the kernel (formats.md §6.3). It goes through a
         * memory file into the FAT filesystem and is wiped here. */
        if (getrandom(seed, sizeof(seed), 0) != (ssize_t) sizeof(seed))
                return error_setf(-EIO, _("Cannot get random bytes for the boot loader's random seed."));
        r = fat_write_file(&esp, "/loader/random-seed", seed, sizeof(seed));
        explicit_bzero(seed, sizeof(seed));
        if (r < 0)
                return r;

        /* The firmware entry: only for a real disk of this machine, booted with EFI. */
        if (o && o->no_variables)
                res.note = strdup("EFI variables not written (--no-variables); the firmware boots the fallback loader.");
        else if (p->target_kind != DISK_BLOCK)
                res.note = strdup("No firmware boot entry for an image file; the firmware boots its fallback loader, EFI/BOOT/BOOT*.EFI.");
        else if (!efi_booted() && !(o && o->efivars_root))
                res.note = strdup("This system was not booted with EFI, so no firmware boot entry was added; the firmware boots the fallback loader.");
        else {
                uint16_t id;

                r = efi_add_boot_entry(&(EfiVars) { .root = o ? o->efivars_root : NULL }, EFI_BOOT_ENTRY_DESCRIPTION_DEFAULT,
                                       esp_p->partno, esp_p->start / p->sector_size, esp_p->size / p->sector_size, esp_p->uuid,
                                       entry_path[0] ? entry_path : sd_path, &id);
                if (r < 0)
                        return error_prefixf(r, _("Cannot add the firmware boot entry"));
                res.boot_entry = id;
                log_info("firmware boot entry Boot%04X points at %s on partition %u, first in BootOrder", id,
                         entry_path[0] ? entry_path : sd_path,
                         esp_p->partno);
        }

        *ret = res;
        res = (BootResult) { .boot_entry = -1 };
        return 0;
}
