/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "authenticode.h"
#include "error.h"
#include "fileio.h"
#include "i18n.h"
#include "log.h"
#include "macro.h"
#include "rootfile.h"
#include "secureboot.h"
#include "string-table.h"
#include "tpm2.h"

static const char *const secure_boot_action_table[_SECURE_BOOT_ACTION_MAX] = {
        [SECURE_BOOT_AS_IS] = "as-is",
        [SECURE_BOOT_TRUSTED] = "trusted",
        [SECURE_BOOT_ENROLL] = "enroll",
        [SECURE_BOOT_UNBOOTABLE] = "unbootable",
        [SECURE_BOOT_OTHER_MACHINE] = "other-machine",
};

DEFINE_STRING_TABLE_LOOKUP(secure_boot_action, SecureBootAction);

/* The key directory systemd-boot enrolls from without asking (secure-boot-enroll force picks
 * "auto"; others are menu entries), and the files it needs there (db, KEK, PK; dbx optional). */
#define KEYS_DIR_AUTO "auto"
/* In this order: the required ones first, db.auth last of them (image_keys() parses it). */
static const char *const key_files[] = { "PK.auth", "KEK.auth", "db.auth", "dbx.auth" };
#define KEY_FILES_REQUIRED 3

/* The line loader.conf gets with ENROLL (sd-boot since v252; "force": without asking, after its
 * countdown; the firmware accepts it only in setup mode). */
static const char loader_conf_enroll[] = "secure-boot-enroll force\n";

/* ---- the image's boot chain ---------------------------------------------------------------- */

#define CHAIN_MAX 64

typedef struct ChainBinary {
        const char *name;        /* for sentences */
        void *data;
        size_t size;
} ChainBinary;

/* What the firmware starts, in order: systemd-boot, then every UKI (systemd-boot asks the firmware
 * to verify each one it starts), read once per decision. sd-boot may be missing while a streamed
 * usr is on its way. */
typedef struct Chain {
        ChainBinary b[CHAIN_MAX];
        size_t n;
} Chain;

static void chain_done(Chain *c) {
        for (size_t i = 0; i < c->n; i++)
                free(c->b[i].data);
        c->n = 0;
}

static int chain_add(Chain *c, const char *name, int fd, uint64_t size) {
        int r;

        if (c->n >= CHAIN_MAX)
                return 0;
        r = read_fd_all(fd, size, &c->b[c->n].data);
        if (r < 0)
                return r;
        c->b[c->n].name = name;
        c->b[c->n++].size = (size_t) size;
        return 0;
}

static int chain_load(const Image *img, Chain *ret) {
        int r = 0;

        *ret = (Chain) {};
        if (img->sdboot_fd >= 0)
                r = chain_add(ret, "systemd-boot", img->sdboot_fd, img->sdboot_size);
        for (size_t i = 0; r >= 0 && i < img->n_ukis; i++)
                r = chain_add(ret, img->ukis[i].name, img->ukis[i].fd, img->ukis[i].size);
        if (r < 0)
                chain_done(ret);
        return r;
}

/* One sentence naming who signed each binary: "systemd-boot and imprint-test_1.efi are signed by
 * imprint test db." or "systemd-boot is not signed; debian.efi is signed by X." */
static int chain_describe(const Chain *c, const Image *img, char **ret) {
        const ChainBinary *b = c->b;
        size_t n = c->n;
        char *who[CHAIN_MAX] = {};
        _cleanup_(freep) char *out = NULL, *names = NULL;
        bool same = true;
        int r = 0;

        if (n == 0)
                return (*ret = strdup(_("The image has no boot loader or UKI to check yet."))) ? 0 : -ENOMEM;
        for (size_t i = 0; i < n && r >= 0; i++) {
                _cleanup_(pe_signature_done) PeSignature sig = {};

                r = authenticode_read(b[i].data, b[i].size, b[i].name, &sig);
                if (r >= 0 && sig.present) {
                        who[i] = strdup(sig.signer_common_name ?: sig.signer_subject ?: _("an unknown signer"));
                        if (!who[i])
                                r = -ENOMEM;
                }
                if (r >= 0 && i > 0 && !streq_ptr(who[i], who[0]))
                        same = false;
        }
        for (size_t i = 0; i < n && r >= 0; i++) {
                _cleanup_(freep) char *part = NULL;
                char *t;

                if (same) {
                        if (asprintf(&t, "%s%s%s", names ?: "", i == 0 ? "" : i + 1 == n ? _(" and ") : ", ", b[i].name) < 0)
                                r = -ENOMEM;
                        else {
                                free(names);
                                names = t;
                        }
                        continue;
                }
                if ((who[i] ? asprintf(&part, _("%s is signed by %s"), b[i].name, who[i])
                            : asprintf(&part, _("%s is not signed"), b[i].name)) < 0 ||
                    asprintf(&t, "%s%s%s", out ?: "", i == 0 ? "" : "; ", part) < 0) {
                        r = -ENOMEM;
                        break;
                }
                free(out);
                out = t;
        }
        if (r >= 0) {
                char *t = NULL;

                if (same && who[0])
                        r = asprintf(&t, n == 1 ? _("%s is signed by %s.") : _("%s are signed by %s."), names, who[0]);
                else if (same)
                        r = asprintf(&t, n == 1 ? _("%s is not signed.") : _("%s are not signed."), names);
                else
                        r = asprintf(&t, "%s.", out);
                free(out);
                out = t;
                r = r < 0 ? -ENOMEM : 0;
        }
        if (r >= 0 && img->sdboot_fd < 0) {
                char *t;

                if (asprintf(&t, "%s %s", out, _("systemd-boot is checked once the image's partition that carries it is written.")) < 0)
                        r = -ENOMEM;
                else {
                        free(out);
                        out = t;
                }
        }
        for (size_t i = 0; i < n; i++)
                free(who[i]);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(out);
        return 0;
}

/* 1 when db (and dbx) let the firmware start every binary of the chain; 0 with *ret_reason the
 * first refusal. */
static int chain_trusted(const Chain *c, const FirmwareSigDb *db, const FirmwareSigDb *dbx, char **ret_reason) {
        const ChainBinary *b = c->b;
        int r;

        *ret_reason = NULL;
        for (size_t i = 0; i < c->n; i++) {
                _cleanup_(freep) char *reason = NULL;

                r = authenticode_trusted(b[i].data, b[i].size, b[i].name, db, dbx, &reason);
                if (r < 0)
                        return r;
                if (r == 0) {
                        *ret_reason = reason ? TAKE_PTR(reason) : strdup(b[i].name);
                        return *ret_reason ? 0 : -ENOMEM;
                }
        }
        return 1;
}

/* Through shim: shim itself must be trusted by db (Microsoft's UEFI CA signs it); what it starts,
 * systemd-boot and (through shim's protocol, which systemd-boot uses) every UKI, must be trusted by
 * shim's built-in vendor certificate or by db, and not be in dbx. (MOK, the machine owner's keys
 * that shim also trusts, live in variables only shim sees at boot: not considered.) */
static int chain_trusted_shim(const Chain *c, const Image *img, const FirmwareState *fw, char **ret_reason) {
        _cleanup_(firmware_sigdb_done) FirmwareSigDb vendor = {};
        _cleanup_(freep) void *shim = NULL;
        const ChainBinary *b = c->b;
        int r;

        *ret_reason = NULL;
        r = read_fd_all(img->shim_fd, img->shim_size, &shim);
        if (r < 0)
                return r;
        r = authenticode_trusted(shim, img->shim_size, "shim", &fw->db, &fw->dbx, ret_reason);
        if (r <= 0)
                return r;
        r = authenticode_shim_vendor_db(shim, img->shim_size, "shim", &vendor);
        if (r < 0)
                return r;
        for (size_t i = 0; i < c->n; i++) {
                _cleanup_(freep) char *why_vendor = NULL, *why_db = NULL;

                r = vendor.n_certs > 0 ? authenticode_trusted(b[i].data, b[i].size, b[i].name, &vendor, &fw->dbx, &why_vendor) : 0;
                if (r == 0)
                        r = authenticode_trusted(b[i].data, b[i].size, b[i].name, &fw->db, &fw->dbx, &why_db);
                if (r < 0)
                        return r;
                if (r == 0) {
                        *ret_reason = why_vendor ? TAKE_PTR(why_vendor) : why_db ? TAKE_PTR(why_db) : strdup(b[i].name);
                        return *ret_reason ? 0 : -ENOMEM;
                }
        }
        return 1;
}

/* The keys the image carries for systemd-boot to enroll: loader/keys/auto/ on its ESP with PK, KEK
 * and db. Returns 1 and the parsed db when there are, 0 when there are none, -EBADMSG for a db.auth
 * that is not a signed signature list. */
static int image_keys(const Image *img, FirmwareSigDb *ret_db) {
        _cleanup_(freep) void *data = NULL;
        FsLocation l;
        size_t size = 0, off;
        char path[128], what[192];
        int r;

        if (!img->esp)
                return 0;
        l = image_fs_location(img, img->esp);
        /* All three must be there; db.auth (the last) is kept, to be parsed. */
        for (size_t i = 0; i < KEY_FILES_REQUIRED; i++) {
                snprintf(path, sizeof(path), "/loader/keys/" KEYS_DIR_AUTO "/%s", key_files[i]);
                data = mfree(data);
                r = fs_read_file(&l, path, &data, &size);
                if (r == -ENOENT || r == -EOPNOTSUPP)
                        return 0;
                if (r < 0)
                        return r;
        }
        snprintf(what, sizeof(what), _("%s in the image's ESP"), "loader/keys/" KEYS_DIR_AUTO "/db.auth");
        r = firmware_auth_payload(data, size, what, &off);
        if (r < 0)
                return r;
        r = firmware_sigdb_parse((const uint8_t *) data + off, size - off, what, ret_db);
        if (r < 0)
                return r;
        return 1;
}

/* ---- the decision -------------------------------------------------------------------------- */

void plan_secure_boot_done(PlanSecureBoot *sb) {
        if (!sb)
                return;
        free(sb->firmware_mode);
        free(sb->firmware);
        free(sb->chain);
        free(sb->reason);
        free(sb->keys);
        free(sb->note);
        *sb = (PlanSecureBoot) {};
}

int plan_secure_boot_copy(const PlanSecureBoot *from, PlanSecureBoot *to) {
        PlanSecureBoot c = *from;

        c.firmware_mode = strdup_safe(from->firmware_mode);
        c.firmware = strdup_safe(from->firmware);
        c.chain = strdup_safe(from->chain);
        c.reason = strdup_safe(from->reason);
        c.keys = strdup_safe(from->keys);
        c.note = strdup_safe(from->note);
        if ((from->firmware_mode && !c.firmware_mode) || (from->firmware && !c.firmware) || (from->chain && !c.chain) ||
            (from->reason && !c.reason) || (from->keys && !c.keys) || (from->note && !c.note)) {
                plan_secure_boot_done(&c);
                return -ENOMEM;
        }
        *to = c;
        return 0;
}

static int set_note(PlanSecureBoot *sb, const char *note) {
        free(sb->note);
        sb->note = strdup(note);
        return sb->note ? 0 : -ENOMEM;
}

/* The recovery entry (recovery-entry.h) is another binary systemd-boot asks the firmware to start:
 * with Secure Boot on, or about to be, a menu entry that only says "Access denied" helps nobody at
 * a factory reset. It is left out unless the keys that will decide trust it. */
static int check_recovery_uki(PlanSecureBoot *sb, const FirmwareState *fw, const FirmwareSigDb *keys_db, const Image *img,
                              const char *path) {
        _cleanup_(firmware_sigdb_done) FirmwareSigDb vendor = {};
        _cleanup_(freep) void *data = NULL;
        _cleanup_(freep) char *why = NULL, *note = NULL;
        _cleanup_(closep) int fd = -EBADF;
        struct stat st;
        size_t size;
        int r;

        if (!path || !(sb->action == SECURE_BOOT_TRUSTED || sb->action == SECURE_BOOT_ENROLL))
                return 0;
        /* A UKI is tens of MiB: read whole, not through read_full_file()'s text-file limit. */
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return error_setf(-errno, _("Cannot read the recovery entry's UKI %s: %s"), path, strerror(errno));
        size = (size_t) st.st_size;
        r = read_fd_all(fd, size, &data);
        if (r < 0)
                return error_setf(r, _("Cannot read the recovery entry's UKI %s: %s"), path, strerror(-r));
        if (sb->action == SECURE_BOOT_ENROLL)
                r = authenticode_trusted(data, size, "imprint-recovery.efi", keys_db, NULL, &why);
        else {
                r = authenticode_trusted(data, size, "imprint-recovery.efi", &fw->db, &fw->dbx, &why);
                if (r == 0 && sb->shim && img->shim_fd >= 0) {
                        _cleanup_(freep) void *shim = NULL;

                        r = read_fd_all(img->shim_fd, img->shim_size, &shim);
                        if (r >= 0)
                                r = authenticode_shim_vendor_db(shim, img->shim_size, "shim", &vendor);
                        if (r > 0 && vendor.n_certs > 0) {
                                why = mfree(why);
                                r = authenticode_trusted(data, size, "imprint-recovery.efi", &vendor, &fw->dbx, &why);
                        } else if (r >= 0)
                                r = 0;
                }
        }
        if (r < 0)
                return r;
        if (r > 0)
                return 0;
        sb->recovery_refused = true;
        /* TRANSLATORS: %s says why the firmware would refuse the recovery entry's UKI. */
        if (asprintf(&note, _("%s The recovery entry is not installed: %s A factory reset then starts from the live medium."),
                     sb->note ?: "", why ?: "imprint-recovery.efi") < 0)
                return -ENOMEM;
        free(sb->note);
        sb->note = TAKE_PTR(note);
        return 0;
}

int secureboot_decide_with(const FirmwareState *fw, const SecureBootRequest *req, DiskKind target_kind, const Image *img,
                           PlanSecureBoot *ret) {
        _cleanup_(plan_secure_boot_done) PlanSecureBoot sb = { .decided = true };
        _cleanup_(firmware_sigdb_done) FirmwareSigDb keys_db = {};
        _cleanup_(chain_done) Chain chain = {};
        _cleanup_(freep) char *reason = NULL;
        bool allow = req && req->allow_unbootable;
        char buf[2048];
        int r, has_keys;

        sb.firmware_mode = strdup(firmware_mode_to_string(fw->mode));
        sb.firmware = firmware_state_describe(fw);
        if (!sb.firmware_mode || !sb.firmware)
                return -ENOMEM;
        r = chain_load(img, &chain);
        if (r < 0)
                return r;
        r = chain_describe(&chain, img, &sb.chain);
        if (r < 0)
                return r;
        has_keys = image_keys(img, &keys_db);
        if (has_keys < 0)
                return has_keys;

        if (target_kind == DISK_IMAGE_FILE) {
                sb.action = SECURE_BOOT_OTHER_MACHINE;
                r = set_note(&sb, has_keys > 0
                                          ? _("The target is an image file: the firmware of the machine that boots it decides. The image's "
                                              "Secure Boot keys are not installed for enrollment.")
                                          : _("The target is an image file: the firmware of the machine that boots it decides."));
                goto done;
        }

        switch (fw->mode) {
        case FIRMWARE_USER_ON:
        case FIRMWARE_DEPLOYED:
                r = chain_trusted(&chain, &fw->db, &fw->dbx, &reason);
                if (r < 0)
                        return r;
                if (r > 0) {
                        sb.action = SECURE_BOOT_TRUSTED;
                        r = set_note(&sb, _("Secure Boot is on, and the firmware's keys trust the image's boot loader and kernels."));
                        goto done;
                }
                if (img->shim_fd >= 0) {
                        _cleanup_(freep) char *why = NULL;

                        r = chain_trusted_shim(&chain, img, fw, &why);
                        if (r < 0)
                                return r;
                        if (r > 0) {
                                sb.action = SECURE_BOOT_TRUSTED;
                                sb.shim = true;
                                r = set_note(&sb, _("Secure Boot is on: the firmware's keys trust the image's shim, and shim's key "
                                                    "trusts its boot loader and kernels. The firmware boot entry starts shim."));
                                goto done;
                        }
                        /* The direct reason says what db lacks; shim's, why shim did not help. */
                        if (why) {
                                char *t;

                                if (asprintf(&t, "%s %s", reason, why) < 0)
                                        return -ENOMEM;
                                free(reason);
                                reason = t;
                        }
                }
                sb.action = SECURE_BOOT_UNBOOTABLE;
                sb.reason = TAKE_PTR(reason);
                if (!allow)
                        /* TRANSLATORS: the %s is the sentence that names the binary and why the firmware refuses it. */
                        return error_setf(-EPERM,
                                          _("Secure Boot is on, and the installed system would not start: %s Turn Secure Boot off in "
                                            "the firmware setup, or put the firmware in setup mode and install an image that carries "
                                            "its own keys (loader/keys/auto), or use --allow-unbootable to install anyway. Nothing was "
                                            "written."),
                                          sb.reason);
                sb.allowed = true;
                snprintf(buf, sizeof(buf),
                         _("Installed although Secure Boot is on and the firmware will refuse to start it (--allow-unbootable): %s"),
                         sb.reason);
                r = set_note(&sb, buf);
                goto done;

        case FIRMWARE_SETUP:
                if (has_keys == 0) {
                        sb.action = SECURE_BOOT_AS_IS;
                        r = set_note(&sb, _("The firmware is in setup mode, and the image carries no keys to enroll: Secure Boot stays "
                                            "off, and the machine is not protected by Secure Boot."));
                        goto done;
                }
                r = chain_trusted(&chain, &keys_db, NULL, &reason);
                if (r < 0)
                        return r;
                if (r == 0) {
                        sb.action = SECURE_BOOT_UNBOOTABLE;
                        sb.reason = TAKE_PTR(reason);
                        if (!allow)
                                return error_setf(-EPERM,
                                                  _("The image carries Secure Boot keys for the firmware's setup mode, but they do not "
                                                    "trust its own boot chain: %s Once enrolled, the machine would start nothing. Use "
                                                    "--allow-unbootable to install without enrolling the keys. Nothing was written."),
                                                  sb.reason);
                        sb.allowed = true;
                        r = set_note(&sb, _("The image's Secure Boot keys do not trust its boot chain, so they are not installed "
                                            "(--allow-unbootable): Secure Boot stays off."));
                        goto done;
                }
                sb.action = SECURE_BOOT_ENROLL;
                sb.keys = strdup(KEYS_DIR_AUTO);
                if (!sb.keys)
                        return -ENOMEM;
                r = set_note(&sb, _("The first boot enrolls the image's Secure Boot keys (PK, KEK, db) into the firmware and "
                                    "restarts; from then on Secure Boot is on."));
                goto done;

        case FIRMWARE_USER_OFF:
                sb.action = SECURE_BOOT_AS_IS;
                r = set_note(&sb, has_keys > 0
                                          ? _("Secure Boot is off: the machine is not protected by Secure Boot. The image's keys are not "
                                              "enrolled: the firmware is not in setup mode.")
                                          : _("Secure Boot is off: the machine is not protected by Secure Boot."));
                goto done;

        case FIRMWARE_AUDIT:
                sb.action = SECURE_BOOT_AS_IS;
                r = set_note(&sb, _("The firmware is in audit mode: signatures are checked and logged, not enforced. Nothing is "
                                    "enrolled."));
                goto done;

        case FIRMWARE_NO_SECURE_BOOT:
        case FIRMWARE_NOT_UEFI:
        default:
                sb.action = SECURE_BOOT_AS_IS;
                r = set_note(&sb, _("This machine has no Secure Boot: it is not protected by Secure Boot."));
                goto done;
        }

done:
        if (r < 0)
                return r;
        r = check_recovery_uki(&sb, fw, &keys_db, img, req ? req->recovery_uki : NULL);
        if (r < 0)
                return r;
        *ret = sb;
        sb = (PlanSecureBoot) {};
        return 0;
}

int secureboot_decide(const SecureBootRequest *req, DiskKind target_kind, const Image *img, PlanSecureBoot *ret) {
        _cleanup_(firmware_state_done) FirmwareState fw = {};
        int r;

        r = firmware_read(req ? req->efivarfs : NULL, &fw);
        if (r < 0)
                return r;
        r = secureboot_decide_with(&fw, req, target_kind, img, ret);
        if (r < 0)
                return r;
        log_info("Secure Boot: firmware %s, decision %s. %s %s", ret->firmware_mode, secure_boot_action_to_string(ret->action),
                 ret->chain ?: "", ret->note ?: "");
        /* Said whatever the front end shows: the person overrode a refusal. */
        if (ret->allowed)
                log_warning("%s", ret->note);
        return 0;
}

/* systemd-cryptenroll learned --unlock-tpm2-device= in v256; the version of the image's
 * systemd-boot ("systemd-boot 257.9-1~deb13u1") is the image's systemd's. 0 when unknown. */
static unsigned image_systemd_version(const Image *img) {
        const char *v = img->sdboot_version ? strchr(img->sdboot_version, ' ') : NULL;

        return v ? (unsigned) strtoul(v + 1, NULL, 10) : 0;
}

int secureboot_adjust_encryption(PlanSecureBoot *sb, const Image *img, const EncryptRequest *req, PlanEncryption *e) {
        const ImageUki *u;
        char note[1024];
        unsigned v;

        if (!sb->decided || sb->action != SECURE_BOOT_ENROLL || !e->enabled || !e->tpm2)
                return 0;
        u = img ? image_default_uki(img) : NULL;
        /* Both halves: the key the policy is sealed to (.pcrpkey) and the signatures that satisfy it
         * at boot (.pcrsig); with the key alone the TPM2 would never unlock. */
        if (!u || !u->info.pcrpkey || !u->info.has_pcrsig) {
                if (req->tpm2 == TPM2_USE_REQUIRED)
                        return error_setf(-ENOKEY,
                                          _("A TPM2 is required, but the first boot enrolls Secure Boot keys, which changes PCR 7, and "
                                            "%s carries no signed PCR 11 policy (.pcrpkey and .pcrsig) that would unlock the disk meanwhile."),
                                          u ? u->name : _("the image's UKI"));
                e->tpm2 = false;
                e->tpm2_pcrs = 0;
                e->tpm2_pubkey_pcrs = 0;
                e->tpm2_pubkey = mfree(e->tpm2_pubkey);
                snprintf(note, sizeof(note), "%s",
                         e->passphrase
                                 ? _("The TPM2 is not enrolled now: the first boot enrolls Secure Boot keys, which changes PCR 7, and the "
                                     "image's UKI carries no signed PCR 11 policy (.pcrpkey and .pcrsig). The disk asks for the passphrase or the "
                                     "recovery key; after the first boot, \"systemd-cryptenroll --tpm2-device=auto\" binds it to the TPM2.")
                                 : _("The TPM2 is not enrolled now: the first boot enrolls Secure Boot keys, which changes PCR 7, and the "
                                     "image's UKI carries no signed PCR 11 policy (.pcrpkey and .pcrsig). The disk asks for the recovery key; after "
                                     "the first boot, \"systemd-cryptenroll --tpm2-device=auto\" binds it to the TPM2."));
                free(e->note);
                e->note = strdup(note);
                return e->note ? 0 : -ENOMEM;
        }

        /* Sealed to the vendor's signed PCR 11 policy alone: valid across the enrollment. */
        e->tpm2_pcrs = 0;
        if (!e->tpm2_pubkey) {
                e->tpm2_pubkey = strdup(u->info.pcrpkey);
                if (!e->tpm2_pubkey)
                        return -ENOMEM;
        }
        e->tpm2_pubkey_pcrs = TPM2_PUBKEY_PCR_MASK_DEFAULT;
        v = image_systemd_version(img);
        sb->tpm2_reseal = v == 0 || v >= 256;
        free(e->note);
        e->note = strdup(sb->tpm2_reseal
                                 ? _("The TPM2 key is bound to the UKI's signed PCR 11 policy until Secure Boot is on; the first boot "
                                     "with Secure Boot on binds it to PCR 7 as well (systemd-cryptenroll).")
                                 : _("The TPM2 key is bound to the UKI's signed PCR 11 policy only: the first boot enrolls Secure Boot "
                                     "keys, which changes PCR 7, and the image's systemd is older than 256, so it is not bound to "
                                     "PCR 7 afterwards."));
        return e->note ? 0 : -ENOMEM;
}

/* ---- the boot step and the configure step --------------------------------------------------- */

int secureboot_install_keys(const Plan *p, const Image *img, const FsLocation *esp, const char **ret_loader_conf) {
        const PlanSecureBoot *sb = &p->secure_boot;
        char dir[96];
        const char *dirs[] = { "/loader", "/loader/keys", dir, NULL };
        FsLocation src;
        int r;

        *ret_loader_conf = NULL;
        if (!sb->decided || sb->action != SECURE_BOOT_ENROLL || !sb->keys)
                return 0;
        if (!img->esp)
                return error_setf(-EINVAL, _("The plan enrolls the image's Secure Boot keys, but the image has no ESP."));
        snprintf(dir, sizeof(dir), "/loader/keys/%s", sb->keys);
        r = fat_mkdirs(esp, dirs);
        if (r < 0)
                return error_prefixf(r, _("Cannot create %s on the ESP"), dir);
        src = image_fs_location(img, img->esp);
        for (size_t i = 0; i < ELEMENTSOF(key_files); i++) {
                _cleanup_(freep) void *buf = NULL;
                size_t size = 0;
                char path[160];

                snprintf(path, sizeof(path), "%s/%s", dir, key_files[i]);
                r = fs_read_file(&src, path, &buf, &size);
                if (r == -ENOENT && i >= KEY_FILES_REQUIRED)
                        continue; /* dbx is optional */
                if (r < 0)
                        return error_prefixf(r, _("Cannot read %s from the image's ESP"), path);
                r = fat_write_file(esp, path, buf, size);
                if (r < 0)
                        return error_prefixf(r, _("Cannot write %s to the ESP"), path);
                log_info("installed %s (%zu bytes) for systemd-boot to enroll at first boot", path, size);
        }
        *ret_loader_conf = loader_conf_enroll;
        return 0;
}

/* The unit: at the first boot with Secure Boot on (so after the enrollment), stock
 * systemd-cryptenroll unlocks each volume with its TPM2 keyslot (the signed PCR 11 policy: the
 * phases systemd-measure signs by default reach "ready", so it also unlocks after the initrd)
 * and enrolls a new one bound to PCR 7 and the signed PCR 11 policy, then wipes the old one
 * (--wipe-slot=tpm2 spares the new). No secret passes through anything but the TPM. Until
 * Secure Boot is on (enrollment declined at the menu), ConditionSecurity keeps it waiting. */
int secureboot_write_root(const Plan *p, const char *root) {
        const PlanSecureBoot *sb = &p->secure_boot;
        _cleanup_(freep) char *unit = NULL, *exec = NULL;
        int r;

        if (!sb->decided || !sb->tpm2_reseal || !p->encryption.enabled || !p->encryption.tpm2 || !p->encryption.tpm2_pubkey)
                return 0;

        for (size_t i = 0; i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];
                char *t;

                if (!pp->encrypt)
                        continue;
                if (asprintf(&t,
                             "%sExecStart=systemd-cryptenroll --unlock-tpm2-device=auto --tpm2-device=auto --tpm2-pcrs=7 "
                             "--tpm2-public-key=" SECURE_BOOT_RESEAL_PUBKEY " --tpm2-public-key-pcrs=11 --wipe-slot=tpm2 "
                             "/dev/disk/by-uuid/" SD_ID128_UUID_FORMAT_STR "\n",
                             exec ?: "", SD_ID128_FORMAT_VAL(pp->luks_uuid)) < 0)
                        return -ENOMEM;
                free(exec);
                exec = t;
        }
        if (!exec)
                return 0;
        if (asprintf(&unit,
                     "# Written by imprint (imprint(1), \"Secure Boot\"). The first boot enrolled Secure Boot keys, which\n"
                     "# changes PCR 7, so the disk's TPM2 key was sealed to the UKI's signed PCR 11 policy alone. Now\n"
                     "# that Secure Boot is on, it is sealed again to PCR 7 and that policy, and this unit removes itself.\n"
                     "[Unit]\n"
                     "Description=Bind the disk's TPM2 key to the Secure Boot state (PCR 7)\n"
                     "Documentation=man:imprint(1)\n"
                     "ConditionSecurity=uefi-secureboot\n"
                     "After=cryptsetup.target local-fs.target\n"
                     "\n"
                     "[Service]\n"
                     "Type=oneshot\n"
                     "Environment=PATH=/usr/bin:/usr/sbin:/bin:/sbin\n"
                     "%s"
                     "ExecStartPost=rm -f /etc/systemd/system/multi-user.target.wants/" SECURE_BOOT_RESEAL_UNIT
                     " /etc/systemd/system/" SECURE_BOOT_RESEAL_UNIT " " SECURE_BOOT_RESEAL_PUBKEY "\n"
                     "\n"
                     "[Install]\n"
                     "WantedBy=multi-user.target\n",
                     exec) < 0)
                return -ENOMEM;

        r = root_mkdir(root, "/etc");
        if (r >= 0)
                r = root_mkdir(root, "/etc/systemd");
        if (r >= 0)
                r = root_mkdir(root, "/etc/systemd/system");
        if (r >= 0)
                r = root_mkdir(root, "/etc/systemd/system/multi-user.target.wants");
        if (r >= 0)
                r = root_mkdir(root, "/var");
        if (r >= 0)
                r = root_mkdir(root, "/var/lib");
        if (r >= 0)
                r = root_mkdir(root, "/var/lib/imprint");
        if (r >= 0)
                r = root_write_file(root, SECURE_BOOT_RESEAL_PUBKEY, p->encryption.tpm2_pubkey, 0644);
        if (r >= 0)
                r = root_write_file(root, "/etc/systemd/system/" SECURE_BOOT_RESEAL_UNIT, unit, 0644);
        if (r >= 0)
                r = root_symlink(root, "/etc/systemd/system/multi-user.target.wants/" SECURE_BOOT_RESEAL_UNIT,
                                 "../" SECURE_BOOT_RESEAL_UNIT);
        if (r < 0)
                return error_prefixf(r, _("Cannot set up binding the TPM2 key to PCR 7 after the Secure Boot enrollment"));
        log_info("the first boot with Secure Boot on binds the TPM2 key to PCR 7 too (" SECURE_BOOT_RESEAL_UNIT ")");
        return 0;
}
