/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encrypt.h"
#include "escrow.h"
#include "error.h"
#include "fileio.h"
#include "i18n.h"
#include "image.h"
#include "log.h"
#include "luks.h"
#include "recovery.h"

static const char *const tpm2_use_table[_TPM2_USE_MAX] = {
        [TPM2_USE_AUTO] = "auto",
        [TPM2_USE_REQUIRED] = "required",
        [TPM2_USE_OFF] = "off",
};
DEFINE_STRING_TABLE_LOOKUP(tpm2_use, Tpm2Use);

void encrypt_request_init(EncryptRequest *r) {
        *r = (EncryptRequest) { .encrypt = -1, .tpm2 = TPM2_USE_AUTO };
}

bool encryption_possible(DiskKind target_kind) {
        return target_kind == DISK_BLOCK;
}

int encryption_decide(const EncryptRequest *req, DiskKind target_kind, const Image *img, PlanEncryption *ret) {
        _cleanup_(plan_encryption_done) PlanEncryption e = {};
        _cleanup_(tpm2_status_done) Tpm2Status st = {};
        char note[1024];
        int r;

        if (req->encrypt == 0)
                goto done;
        if (req->encrypt < 0 && !encryption_possible(target_kind)) {
                /* Said, not silent: the plan shows this note. */
                e.note = strdup(_("An image file is not encrypted: dm-crypt needs a block device, and this machine's TPM is not "
                                  "the one that will boot it. Install to a disk to encrypt."));
                if (!e.note)
                        return -ENOMEM;
                goto done;
        }
        e.enabled = true;
        e.recovery_key = true;
        e.passphrase = req->passphrase;

        if (req->tpm2 == TPM2_USE_OFF) {
                e.note = strdup(e.passphrase
                                        ? _("The TPM2 is not used (turned off): the disk asks for the passphrase or the recovery key at every boot.")
                                        : _("The TPM2 is not used (turned off): the disk asks for the recovery key at every boot."));
                if (!e.note)
                        return -ENOMEM;
                goto done;
        }
        if (!encryption_possible(target_kind)) {
                /* plan_build() refuses encrypted image files with the reason; nothing to ask. */
                goto done;
        }

        r = tpm2_check(req->tpm2_tcti, &st);
        if (r < 0)
                return r;
        if (r == 0) {
                if (req->tpm2 == TPM2_USE_REQUIRED)
                        return error_setf(-ENODEV, _("A TPM2 is required, but it cannot be used: %s"), st.problem);
                snprintf(note, sizeof(note),
                         /* TRANSLATORS: %s is the sentence that says why the TPM cannot be used. */
                         e.passphrase ? _("%s So the TPM2 is not used: the disk asks for the passphrase or the recovery key at every boot.")
                                      : _("%s So the TPM2 is not used: the disk asks for the recovery key at every boot."),
                         st.problem);
                e.note = strdup(note);
                if (!e.note)
                        return -ENOMEM;
                goto done;
        }

        e.tpm2 = true;
        e.tpm2_pin = req->tpm2_pin;
        e.tpm2_pcrs = req->tpm2_pcrs ?: TPM2_PCR_MASK_DEFAULT;
        if (req->tpm2_tcti) {
                e.tpm2_tcti = strdup(req->tpm2_tcti);
                if (!e.tpm2_tcti)
                        return -ENOMEM;
        }
        if (req->tpm2_signed_pcr11) {
                const ImageUki *u = img ? image_default_uki(img) : NULL;

                if (!u || !u->info.pcrpkey)
                        return error_setf(-ENOKEY,
                                          _("A signed PCR 11 policy needs the OS vendor's public key from the UKI's .pcrpkey section, "
                                            "but %s has none. Install without the signed policy."),
                                          u ? u->name : _("the image's UKI"));
                e.tpm2_pubkey = strdup(u->info.pcrpkey);
                if (!e.tpm2_pubkey)
                        return -ENOMEM;
                e.tpm2_pubkey_pcrs = TPM2_PUBKEY_PCR_MASK_DEFAULT;
        }

done:
        *ret = e;
        e = (PlanEncryption) {};
        return 0;
}

int encryption_preflight(const Plan *p, Tpm2Context **ret_tpm) {
        _cleanup_(tpm2_context_freep) Tpm2Context *c = NULL;
        int r;

        *ret_tpm = NULL;
        if (!p->encryption.enabled)
                return 0;
        r = luks_dm_available();
        if (r < 0)
                return r;
        if (p->encryption.tpm2) {
                r = tpm2_context_new(p->encryption.tpm2_tcti, &c);
                if (r < 0)
                        return error_prefixf(r, _("The plan enrolls the TPM2, but it cannot be reached now"));
        }
        *ret_tpm = TAKE_PTR(c);
        return 0;
}

static void json_putp(json_object **j) {
        if (*j)
                json_object_put(*j);
}

/* Seals a new secret, proves the TPM gives it back, and enrolls it with its token. */
static int enroll_tpm2(const Plan *p, LuksVolume *v, const EncryptKeys *k) {
        const PlanEncryption *e = &p->encryption;
        _cleanup_(secret_freep) Secret *secret = NULL, *again = NULL, *pass = NULL;
        _cleanup_(tpm2_sealed_done) Tpm2Sealed sealed = {};
        _cleanup_(json_putp) json_object *token = NULL;
        int slot, r;

        if (e->tpm2_pin && !k->tpm2_pin)
                return error_setf(-EINVAL, _("The plan asks for a TPM2 PIN, but none was given."));
        if (e->tpm2_pin)
                r = tpm2_seal_with_pin(k->tpm, e->tpm2_pcrs, e->tpm2_pubkey, e->tpm2_pubkey_pcrs, k->tpm2_pin, &secret, &sealed);
        else
                r = tpm2_seal(k->tpm, e->tpm2_pcrs, e->tpm2_pubkey, e->tpm2_pubkey_pcrs, &secret, &sealed);
        if (r < 0)
                return r;

        /* A signed policy can only be satisfied with a signature made for the PCR 11 of the
         * installed UKI, which only its boot provides; literal PCR policies are checked now. */
        if (!e->tpm2_pubkey) {
                r = tpm2_unseal_full(k->tpm, &sealed, e->tpm2_pin ? k->tpm2_pin : NULL, NULL, &again);
                if (r < 0)
                        return error_prefixf(r, _("The TPM2 does not give back the key it just sealed"));
                if (again->size != secret->size || memcmp(again->data, secret->data, secret->size) != 0)
                        return error_setf(-EIO, _("The TPM2 gave back a different key than it sealed."));
        }

        r = tpm2_secret_to_passphrase(secret, &pass);
        if (r < 0)
                return r;
        slot = luks_add_key_high_entropy(v, pass);
        if (slot < 0)
                return slot;
        token = tpm2_token_json(&sealed, slot);
        if (!token)
                return -ENOMEM;
        r = luks_add_token(v, token);
        if (r < 0)
                return r;
        log_info("Enrolled the TPM2 in keyslot %d of %s (token %d).", slot, luks_device(v), r);
        return 0;
}

int encrypt_format_volume(const Plan *p, const PlanPartition *pp, const char *node, const EncryptKeys *k, LuksVolume **ret) {
        const PlanEncryption *e = &p->encryption;
        _cleanup_(luks_freep) LuksVolume *v = NULL;
        const char *role = partition_role_to_string(pp->role);
        int slot, r;

        if (!pp->encrypt || !e->enabled)
                return error_setf(-EINVAL, _("Partition %u is not planned to be encrypted."), pp->partno);
        if (!k->recovery_key)
                return error_setf(-EINVAL, _("No recovery key: an encrypted volume is never made without one."));
        if (e->tpm2 && !k->tpm)
                return error_setf(-EINVAL, _("The plan enrolls the TPM2, but it was not opened."));
        if (e->passphrase && !k->passphrase)
                return error_setf(-EINVAL, _("The plan adds a passphrase, but none was given."));
        if (e->tpm2 && e->tpm2_pin && !k->tpm2_pin)
                return error_setf(-EINVAL, _("The plan asks for a TPM2 PIN, but none was given."));

        r = luks_format(node, pp->luks_uuid,
                        &(LuksFormatOptions) {
                                .label = role,
                                /* 4096-byte encryption sectors on 4Kn disks; 512 elsewhere, as systemd-repart. */
                                .sector_size = p->sector_size == 4096 ? 4096 : 512,
                        },
                        &v);
        if (r < 0)
                return r;

        /* The recovery key first: from here on the volume can always be opened by its owner. */
        slot = luks_add_key_high_entropy(v, k->recovery_key);
        if (slot < 0)
                return slot;
        r = luks_add_recovery_token(v, slot);
        if (r < 0)
                return r;
        if (e->tpm2) {
                r = enroll_tpm2(p, v, k);
                if (r < 0)
                        return r;
        }
        if (e->passphrase) {
                slot = luks_add_key_passphrase(v, k->passphrase);
                if (slot < 0)
                        return slot;
        }
        *ret = TAKE_PTR(v);
        return 0;
}

int encrypt_reenroll_unlock(const char *node, Tpm2Context *tpm, const Secret *old_recovery_key, LuksVolume **ret) {
        _cleanup_(luks_freep) LuksVolume *v = NULL;
        _cleanup_(json_putp) json_object *token = NULL;
        char why[512] = "";
        int r;

        r = luks_open_header(node, &v);
        if (r < 0)
                return r;

        /* The TPM first: the reset needs nothing from a person where the machine unlocks itself. */
        if (tpm && luks_token_find(v, "systemd-tpm2", &token) >= 0) {
                _cleanup_(tpm2_sealed_done) Tpm2Sealed sealed = {};
                _cleanup_(secret_freep) Secret *secret = NULL, *pass = NULL;

                r = tpm2_token_parse(token, &sealed);
                if (r >= 0)
                        r = tpm2_unseal(tpm, &sealed, &secret);
                if (r >= 0)
                        r = tpm2_secret_to_passphrase(secret, &pass);
                if (r >= 0)
                        r = luks_unlock(v, pass);
                if (r >= 0) {
                        log_info("Unlocked %s with its TPM2 token for the re-enrollment.", node);
                        *ret = TAKE_PTR(v);
                        return 0;
                }
                snprintf(why, sizeof(why), "%s", error_message() ?: strerror(-r));
                log_info("The TPM2 does not unlock %s: %s", node, why);
        } else
                snprintf(why, sizeof(why), "%s", tpm ? _("it has no TPM2 token") : _("the TPM2 is not used"));

        if (!old_recovery_key)
                return error_setf(-EPERM,
                                  _("The home volume on %s cannot be kept: the TPM2 does not unlock it (%s), and its current recovery key "
                                    "was not given. Nothing was written."),
                                  node, why);
        r = luks_unlock(v, old_recovery_key);
        if (r < 0)
                return error_setf(-EPERM, _("The home volume on %s cannot be kept: the recovery key given does not open it. Nothing was written."),
                                  node);
        log_info("Unlocked %s with its recovery key for the re-enrollment.", node);
        *ret = TAKE_PTR(v);
        return 0;
}

int encrypt_reenroll(const Plan *p, const PlanPartition *pp, LuksVolume *v, const EncryptKeys *k, unsigned *ret_removed) {
        const PlanEncryption *e = &p->encryption;
        uint64_t old = luks_keyslots_in_use(v);
        int slot, r;

        if (!k->recovery_key)
                return error_setf(-EINVAL, _("No recovery key: an encrypted volume is never made without one."));
        if (e->tpm2 && !k->tpm)
                return error_setf(-EINVAL, _("The plan enrolls the TPM2, but it was not opened."));
        if (e->passphrase && !k->passphrase)
                return error_setf(-EINVAL, _("The plan adds a passphrase, but none was given."));

        /* The new keys first, so that the volume can always be opened by a key someone holds. */
        slot = luks_add_key_high_entropy(v, k->recovery_key);
        if (slot < 0)
                return slot;
        r = luks_add_recovery_token(v, slot);
        if (r < 0)
                return r;
        if (e->tpm2) {
                r = enroll_tpm2(p, v, k);
                if (r < 0)
                        return r;
        }
        if (e->passphrase) {
                slot = luks_add_key_passphrase(v, k->passphrase);
                if (slot < 0)
                        return slot;
        }
        r = luks_remove_keyslots(v, old, ret_removed);
        if (r < 0)
                return r;
        log_info("Re-enrolled %s (%s): new recovery key%s%s, every old keyslot and token removed.", luks_device(v),
                 partition_role_to_string(pp->role), e->tpm2 ? ", TPM2" : "", e->passphrase ? ", passphrase" : "");
        return 0;
}

int encrypt_partition(const Plan *p, const PlanPartition *pp, const char *node, const EncryptKeys *k, char **ret_dm_name,
                      char **ret_dm_path) {
        _cleanup_(luks_freep) LuksVolume *v = NULL;
        _cleanup_(freep) char *name = NULL, *path = NULL;
        const char *role = partition_role_to_string(pp->role);
        int r;

        r = encrypt_format_volume(p, pp, node, k, &v);
        if (r < 0)
                return r;

        /* A name of our own while installing: the installed system opens it as "root"/"home", and
         * the live system may have volumes of those names itself. */
        if (asprintf(&name, "imprint-%s-%.8s", role, SD_ID128_TO_STRING(pp->luks_uuid)) < 0)
                return -ENOMEM;
        r = luks_activate(v, name, &path);
        if (r < 0)
                return r;

        *ret_dm_name = TAKE_PTR(name);
        *ret_dm_path = TAKE_PTR(path);
        return 0;
}

static char *dmi(const char *field) {
        char path[128];
        char *v = NULL;

        snprintf(path, sizeof(path), "/sys/class/dmi/id/%s", field);
        if (read_one_line_file(path, &v) < 0 || isempty(v))
                return mfree(v);
        return v;
}

/* An escrow file is a few lines of text, and a CMS message of a few kilobytes at most (a 16384-bit
 * RSA key's encrypted key is 2 KiB). */
#define ESCROW_FILE_MAX 16384

/* The identity lines of an escrow file ("# Machine: …" and "# Disk: …"): the text up to the line
 * that names the volumes. */
static size_t escrow_identity_length(const char *text, size_t size) {
        const char *v = memmem(text, size, "\n# Volumes: ", 12);

        return v ? (size_t) (v - text) : 0;
}

/* name exists in dfd. If it names the same machine and disk as new_text, renames it to
 * recovery-key-<uuid>.previous-N.txt (never replacing anything) and returns 0; else -EEXIST. */
static int escrow_keep_previous(int dfd, const char *name, const char *new_text) {
        _cleanup_(secret_freep) Secret *old = NULL;
        _cleanup_(closep) int fd = -EBADF;
        size_t n_old, n_new;
        ssize_t k;
        struct stat st;

        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_size > ESCROW_FILE_MAX)
                return -EEXIST;
        old = secret_new(ESCROW_FILE_MAX + 1);
        if (!old)
                return negative_errno();
        k = read(fd, old->data, ESCROW_FILE_MAX);
        if (k < 0)
                return -errno;
        n_old = escrow_identity_length((const char *) old->data, (size_t) k);
        n_new = escrow_identity_length(new_text, strlen(new_text));
        if (n_old == 0 || n_old != n_new || memcmp(old->data, new_text, n_new) != 0)
                return -EEXIST;

        for (unsigned i = 1; i < 1000; i++) {
                char prev[NAME_MAX + 1];
                const char *dot = strrchr(name, '.');

                snprintf(prev, sizeof(prev), "%.*s.previous-%u%s", (int) (dot - name), name, i, dot);
                if (renameat2(dfd, name, dfd, prev, RENAME_NOREPLACE) >= 0) {
                        log_info("The recovery key of an earlier install on this machine and disk is kept as %s.", prev);
                        return fsync(dfd) < 0 ? -errno : 0;
                }
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

int encryption_escrow_recovery_key(const Plan *p, const Secret *key, const char *dir, const char *certificate, char **ret_path) {
        _cleanup_(freep) char *vendor = dmi("sys_vendor"), *product = dmi("product_name"), *serial = dmi("product_serial"),
                              *uuid = dmi("product_uuid"), *name = NULL, *path = NULL, *cms = NULL;
        _cleanup_(closep) int dfd = -EBADF, fd = -EBADF;
        _cleanup_(secret_freep) Secret *text = NULL;
        struct statfs sfs;
        const PlanPartition *root = plan_find_role(p, ROLE_ROOT), *home = plan_find_role(p, ROLE_HOME);
        size_t n = 0, cap = ESCROW_FILE_MAX;
        int r;

        if (!root || !root->encrypt)
                return error_setf(-EINVAL, _("The plan encrypts no root partition: there is no recovery key to deliver."));
        if (asprintf(&name, "recovery-key-%s.%s", SD_ID128_TO_UUID_STRING(root->luks_uuid), certificate ? "p7m" : "txt") < 0)
                return -ENOMEM;
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;

        /* Not through a symbolic link or a directory someone else controls (recovery.h). */
        dfd = recovery_key_escrow_dir_open(dir);
        if (dfd < 0) {
                char why[1024];

                snprintf(why, sizeof(why), "%s", error_message() ?: strerror(-dfd));
                /* TRANSLATORS: the first %s is a sentence saying why the key cannot be delivered. */
                return error_setf(dfd, _("%s Nothing was written to %s."), why, p->target);
        }
        /* A share or stick that failed to mount leaves its empty mount point on the live system's
         * tmpfs: a key written there is gone at power-off. */
        if (fstatfs(dfd, &sfs) < 0)
                return error_setf(-errno, _("Cannot deliver the recovery key to %s: %m."), dir);
        if (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC)
                return error_setf(-EROFS,
                                  _("Refusing to deliver the recovery key to %s: it is in memory (tmpfs), so the key would be lost at "
                                    "power-off. Is the escrow medium mounted? Nothing was written to %s."),
                                  dir, p->target);

        /* To the OEM's key: a CMS message whose content is the key and a newline, so that
         * "openssl cms -decrypt … | cryptsetup open" works as it is (escrow.h). Encrypted before
         * anything is written: a key that cannot be encrypted leaves no file behind. */
        if (certificate) {
                _cleanup_(secret_freep) Secret *line = secret_new(key->size + 1);

                if (!line)
                        return negative_errno();
                memcpy(line->data, key->data, key->size);
                line->data[key->size] = '\n';
                r = escrow_encrypt(certificate, line, &cms);
                if (r < 0) {
                        char why[1024];

                        snprintf(why, sizeof(why), "%s", error_message() ?: strerror(-r));
                        return error_setf(r, "%s Nothing was written to %s.", why, p->target);
                }
        }

        /* Built in locked memory and written with one write(): no stdio buffer keeps a copy. */
        text = secret_new(cap);
        if (!text)
                return negative_errno();
#define APPEND(...) (n += (size_t) snprintf((char *) text->data + n, n < cap ? cap - n : 0, __VA_ARGS__))
        if (cms)
                /* Lines before the PEM block are explanatory text (RFC 7468 section 5.2), which
                 * openssl skips. They are not secret: the machine, the disk, the command. */
                APPEND("# imprint recovery key, encrypted to the OEM's key (CMS). Decrypt it with:\n"
                       "#   openssl cms -decrypt -in %s -inform PEM -inkey OEM-PRIVATE-KEY.pem\n",
                       name);
        else
                APPEND("# imprint recovery key. Keep this file secret; it opens the encrypted disk of this machine.\n");
        APPEND("# Machine: %s %s, serial %s, UUID %s\n", vendor ?: "unknown vendor", product ?: "unknown model", serial ?: "unknown",
               uuid ?: "unknown");
        APPEND("# Disk: %s — %s\n", p->target, p->target_description ?: "");
        APPEND("# Volumes: root (LUKS2 %s)", SD_ID128_TO_UUID_STRING(root->luks_uuid));
        if (home && home->encrypt)
                APPEND(", home (LUKS2 %s)", SD_ID128_TO_UUID_STRING(home->luks_uuid));
        if (cms)
                APPEND("\n# The decrypted text is the key to type when the machine asks for the passphrase of \"root\" or \"home\".\n%s",
                       cms);
        else
                APPEND("\n# Type this key when the machine asks for the passphrase of \"root\" or \"home\":\n%s\n", (const char *) key->data);
#undef APPEND
        if (n >= cap)
                return error_setf(-E2BIG, _("The recovery key file would be too long."));
        text->size = n;

        fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST) {
                /* A seeded install gives the volume the same LUKS UUID every time, so running it
                 * again on the same machine and disk (after an interruption, or to reinstall)
                 * finds the file of the earlier run. That key opens whatever the earlier run left
                 * until this run formats the volume, which may never happen if it stops first:
                 * so the earlier file is kept under another name, never overwritten. A file that
                 * names another machine or disk means the seed was used twice: refused. */
                r = escrow_keep_previous(dfd, name, (const char *) text->data);
                if (r < 0)
                        return r == -EEXIST ? error_setf(r, _("Cannot deliver the recovery key: %s exists already and names another "
                                                              "machine or disk (the same seed was used twice?)."),
                                                         path)
                                            : error_setf(r, _("Cannot deliver the recovery key to %s: %s."), path, strerror(-r));
                fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        }
        if (fd < 0)
                return error_setf(-errno, _("Cannot deliver the recovery key to %s: %m."), path);
        ssize_t w = write(fd, text->data, text->size);
        if (w != (ssize_t) text->size || fsync(fd) < 0 || fsync(dfd) < 0) {
                r = w >= 0 && w != (ssize_t) text->size ? -ENOSPC : -errno;
                (void) unlinkat(dfd, name, 0);
                return error_setf(r, _("Cannot write the recovery key to %s: %s. Nothing was written to %s."), path, strerror(-r), p->target);
        }
        log_info("Recovery key delivered to %s%s.", path, cms ? ", encrypted to the OEM's key" : "");
        if (ret_path)
                *ret_path = TAKE_PTR(path);
        return 0;
}

int pcr_mask_parse(const char *s, uint32_t *ret) {
        uint32_t mask = 0;
        const char *p = s;

        if (isempty(s))
                return -EINVAL;
        for (;;) {
                char *end;
                unsigned long v;

                if (*p < '0' || *p > '9')
                        return -EINVAL;
                errno = 0;
                v = strtoul(p, &end, 10);
                if (errno != 0 || v >= TPM2_PCRS_MAX)
                        return -EINVAL;
                mask |= UINT32_C(1) << v;
                if (*end == 0)
                        break;
                if (*end != '+' && *end != ',')
                        return -EINVAL;
                p = end + 1;
        }
        *ret = mask;
        return 0;
}
