/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "account.h"
#include "error.h"
#include "fileio.h"
#include "fsread.h"
#include "i18n.h"
#include "imagedefs.h"
#include "log.h"
#include "reset.h"
#include "size.h"
#include "uuid.h"

void reset_request_init(ResetRequest *r) {
        *r = (ResetRequest) { .entry_point = RESET_FROM_LIVE_MEDIUM };
}

ResetTarget *reset_target_free(ResetTarget *t) {
        if (!t)
                return NULL;
        install_record_free(t->record);
        free(t->refusal);
        free(t->os_name);
        free(t->image_version);
        free(t->last_reset);
        free(t);
        return NULL;
}

static bool role_is_usr_slot(PartitionRole role) {
        return role == ROLE_USR || role == ROLE_USR_VERITY || role == ROLE_USR_VERITY_SIG;
}

static const DiskPartition *disk_find_partno(const Disk *d, unsigned partno) {
        for (size_t i = 0; i < d->n_partitions; i++)
                if (d->partitions[i].partno == partno)
                        return &d->partitions[i];
        return NULL;
}

static const DiskPartition *disk_find_esp(const Disk *d) {
        for (size_t i = 0; i < d->n_partitions; i++)
                if (d->partitions[i].dps && d->partitions[i].dps->role == ROLE_ESP)
                        return &d->partitions[i];
        return NULL;
}

static FsLocation partition_fs(const Disk *d, const DiskPartition *dp, const char *fstype) {
        return (FsLocation) {
                .disk = d->path,
                .node = d->kind == DISK_BLOCK ? dp->node : NULL,
                .offset = dp->start,
                .fstype = fstype ?: dp->fstype,
        };
}

/* The newest /usr slot on d (by the version in its GPT name, as systemd-sysupdate names them),
 * or NULL when every slot is empty. */
static const DiskPartition *newest_usr_slot(const Disk *d) {
        const DiskPartition *best = NULL;

        for (size_t i = 0; i < d->n_partitions; i++) {
                const DiskPartition *dp = &d->partitions[i];

                if (!dp->dps || dp->dps->role != ROLE_USR || !dp->label || streq(dp->label, "_empty") ||
                    streq(dp->label, DISK_INCOMPLETE_LABEL))
                        continue;
                if (!best || strverscmp(dp->label, best->label) > 0)
                        best = dp;
        }
        return best;
}

/* The version in a slot's name: "fakeos_7" of image id "fakeos" → "7". */
static char *slot_version(const char *label, const char *image_id) {
        size_t n = image_id ? strlen(image_id) : 0;

        if (n > 0 && strncasecmp(label, image_id, n) == 0 && label[n] == '_' && label[n + 1])
                return strdup(label + n + 1);
        return strdup(label);
}

/* Whether the partition on disk is the one the record describes. Root, home, ESP, XBOOTLDR and
 * swap keep their identity for life; systemd-sysupdate renames the usr slots and gives them new
 * UUIDs, so for those the place, size and type are what counts. */
static int compare_with_record(const Disk *d, const Plan *rec, char **ret_refusal) {
        for (size_t i = 0; i < rec->n_partitions; i++) {
                const PlanPartition *pp = &rec->partitions[i];
                const DiskPartition *dp = disk_find_partno(d, pp->partno);
                const char *role = partition_role_to_string(pp->role);
                int k = 0;

                if (!dp)
                        k = asprintf(ret_refusal, _("Partition %u (%s), which imprint installed, is gone from %s: its layout changed since the install, "
                                                     "so it is not reset."), pp->partno, role, d->path);
                else if (dp->start != pp->start || dp->size != pp->size)
                        k = asprintf(ret_refusal, _("Partition %u (%s) of %s was moved or resized since the install (it was %s at %s, it is %s at %s): "
                                                     "its layout changed, so it is not reset."), pp->partno, role, d->path,
                                     FORMAT_BYTES(pp->size), FORMAT_BYTES(pp->start), FORMAT_BYTES(dp->size), FORMAT_BYTES(dp->start));
                else if (!sd_id128_equal(dp->type_uuid, pp->type_uuid))
                        k = asprintf(ret_refusal, _("Partition %u (%s) of %s has another type than imprint gave it: its layout changed since the install, "
                                                     "so it is not reset."), pp->partno, role, d->path);
                else if (!role_is_usr_slot(pp->role) && !sd_id128_equal(dp->uuid, pp->uuid))
                        k = asprintf(ret_refusal, _("Partition %u (%s) of %s has another PARTUUID than imprint gave it: it was recreated since the "
                                                     "install, so it is not reset."), pp->partno, role, d->path);
                else
                        continue;
                return k < 0 ? -ENOMEM : 0;
        }
        return 0;
}

static int refuse(ResetTarget *t, const char *fmt, ...) _printf_(2, 3);
static int refuse(ResetTarget *t, const char *fmt, ...) {
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&t->refusal, fmt, ap);
        va_end(ap);
        if (k < 0) {
                t->refusal = NULL;
                return -ENOMEM;
        }
        return 0;
}

int reset_probe(const Disk *d, ResetTarget **ret) {
        _cleanup_(reset_target_freep) ResetTarget *t = NULL;
        _cleanup_(freep) char *audit_name = NULL;
        json_object *audit = NULL;
        const DiskPartition *esp;
        const Plan *rec;
        FsLocation l;
        int r;

        t = calloc(1, sizeof(ResetTarget));
        if (!t)
                return -ENOMEM;
        t->kind = _PLAN_SOURCE_KIND_INVALID;

        if (!streq_ptr(d->pttype, "gpt")) {
                r = refuse(t, _("%s has no GPT partition table, so imprint did not install it: it is not reset."), d->path);
                goto done;
        }
        esp = disk_find_esp(d);
        if (!esp) {
                r = refuse(t, _("%s has no ESP, so imprint did not install it: it is not reset."), d->path);
                goto done;
        }
        l = partition_fs(d, esp, "vfat");
        r = record_install_read(&l, &t->record);
        if (r == -ENOENT) {
                r = refuse(t, _("%s holds no imprint install record (%s on its ESP): imprint did not install it, so it is not reset."),
                           d->path, RECORD_INSTALL_PATH);
                goto done;
        }
        if (r == -EBADMSG) {
                r = refuse(t, "%s", error_message() ?: _("The install record cannot be read."));
                goto done;
        }
        if (r < 0)
                return r;
        rec = t->record->plan;

        if (rec->mode == PLAN_RESET || !rec->source) {
                r = refuse(t, _("The install record on %s names no installed image: it is not reset."), d->path);
                goto done;
        }
        t->kind = rec->source->kind;
        t->encrypted = rec->encryption.enabled;
        t->has_home = plan_find_role(rec, ROLE_HOME) != NULL;
        t->os_name = strdup_safe(rec->source->os_name);
        if (rec->source->os_name && !t->os_name)
                return -ENOMEM;
        if (t->kind == PLAN_SOURCE_USR) {
                const DiskPartition *slot = newest_usr_slot(d);
                if (slot)
                        t->image_version = slot_version(slot->label, rec->source->image_id);
        }
        if (!t->image_version && rec->source->image_version)
                t->image_version = strdup(rec->source->image_version);

        r = record_reset_last(&l, &audit, &audit_name);
        if (r >= 0) {
                json_object *st = NULL;

                t->interrupted = json_object_object_get_ex(audit, "status", &st) && json_object_is_type(st, json_type_string) &&
                                 streq(json_object_get_string(st), "running");
                (void) record_reset_summary(audit, &t->last_reset);
                json_object_put(audit);
        } else if (r == -ENOMEM)
                return r;

        if (!plan_find_role(rec, ROLE_ROOT)) {
                r = refuse(t, _("The install record on %s has no root partition: it is not reset."), d->path);
                goto done;
        }
        r = compare_with_record(d, rec, &t->refusal);

done:
        if (r < 0)
                return r;
        if (t->refusal)
                log_info("%s cannot be reset: %s", d->path, t->refusal);
        *ret = TAKE_PTR(t);
        return (*ret)->refusal ? 0 : 1;
}

/* usr images: the filesystems the image's repart.d gives root and home, read from the newest usr
 * slot on the disk (the version that will boot). 0 and nothing set when it cannot be read. */
static int usr_slot_repart(const Disk *d, char **ret_root_fs, char **ret_home_fs) {
        const DiskPartition *slot = newest_usr_slot(d);
        ImageRepartDef *defs = NULL;
        size_t n = 0;
        char **names = NULL;
        FsLocation l;
        int r;

        if (!slot)
                return 0;
        l = partition_fs(d, slot, NULL);
        r = fs_list_dir(&l, "/lib/repart.d", &names);
        if (r < 0)
                return r == -ENOMEM ? r : 0;
        for (char **nm = names; *nm; nm++) {
                _cleanup_(freep) char *path = NULL, *text = NULL;
                _cleanup_(freep) void *buf = NULL;
                size_t size = 0, len = strlen(*nm);
                ImageRepartDef *a;

                if (len <= 5 || !streq(*nm + len - 5, ".conf") || (*nm)[0] == '.')
                        continue;
                if (asprintf(&path, "/lib/repart.d/%s", *nm) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (fs_read_file(&l, path, &buf, &size) < 0)
                        continue;
                text = strndup(buf ?: "", size);
                a = realloc(defs, (n + 1) * sizeof(ImageRepartDef));
                if (!text || !a) {
                        free(a ?: defs);
                        defs = NULL, n = 0;
                        r = -ENOMEM;
                        break;
                }
                defs = a;
                if (image_repart_def_parse(*nm, text, NULL, &defs[n]) >= 0)
                        n++;
        }
        strv_free(names);
        if (r == -ENOMEM) {
                for (size_t i = 0; i < n; i++)
                        image_repart_def_done(&defs[i]);
                free(defs);
                return r;
        }
        r = 0;
        {
                const ImageRepartDef *root = image_defs_find(defs, n, ROLE_ROOT), *home = image_defs_find(defs, n, ROLE_HOME);

                if (root && root->format) {
                        *ret_root_fs = strdup(root->format);
                        r = *ret_root_fs ? 1 : -ENOMEM;
                }
                if (r >= 0 && home && home->format) {
                        *ret_home_fs = strdup(home->format);
                        r = *ret_home_fs ? 1 : -ENOMEM;
                }
                if (r > 0)
                        log_info("reset: root%s filesystem as the repart.d of the usr slot \"%s\" (partition %u) says: %s%s%s",
                                 home && home->format ? " and home" : "", slot->label, slot->partno, *ret_root_fs ?: "-",
                                 *ret_home_fs ? ", " : "", *ret_home_fs ?: "");
        }
        for (size_t i = 0; i < n; i++)
                image_repart_def_done(&defs[i]);
        free(defs);
        return r;
}

static int partition_from_disk(PlanPartition *pp, const DiskPartition *dp) {
        *pp = (PlanPartition) {
                .role = dp->dps ? dp->dps->role : ROLE_OTHER,
                .action = ACTION_KEEP,
                .partno = dp->partno,
                .start = dp->start,
                .size = dp->size,
                .type_uuid = dp->type_uuid,
                .uuid = dp->uuid,
                .flags = dp->flags,
                .copy_from = -1,
        };
        pp->label = strdup_safe(dp->label);
        pp->fstype = strdup_safe(dp->fstype);
        pp->fslabel = strdup_safe(dp->fslabel);
        if ((dp->label && !pp->label) || (dp->fstype && !pp->fstype) || (dp->fslabel && !pp->fslabel))
                return -ENOMEM;
        return 0;
}

static int account_for_reset(const ResetRequest *req, const InstallRecord *rec, const Image *img, const Disk *d, Plan *p) {
        const PlanAccount *was = rec->plan->account;
        bool homed_image;
        int r;

        /* Whether the image creates homed users at first boot: the install proved it when it
         * planned a homed account. */
        homed_image = was && was->kind == ACCOUNT_HOMED;

        if (req->account && req->account->user_name) {
                if (img)
                        return account_decide(req->account, img, d->kind, &p->account);
                /* usr images: no image is at hand; the root starts empty, so only a homed account can be
                 * made, and only where the install could make one. */
                if (!homed_image || d->kind != DISK_BLOCK)
                        return error_setf(-EOPNOTSUPP,
                                          _("The account %s cannot be created by this reset: the installed image's root starts empty, and only "
                                            "a systemd-homed account could be made there, which the install found impossible. Leave the "
                                            "account to the first boot."),
                                          req->account->user_name);
                r = validate_user_name(req->account->user_name);
                if (r < 0)
                        return r;
                p->account = calloc(1, sizeof(PlanAccount));
                if (!p->account)
                        return -ENOMEM;
                *p->account = (PlanAccount) {
                        .user_name = strdup(req->account->user_name),
                        .real_name = strdup_safe(req->account->real_name),
                        .storage = req->account->storage,
                        .admin = req->account->admin,
                        .auto_login = req->account->auto_login,
                        .kind = ACCOUNT_HOMED,
                };
                if (!p->account->user_name || (req->account->real_name && !p->account->real_name))
                        return -ENOMEM;
                if (asprintf(&p->reset->account_note, _("The account %s is created again (systemd-homed, at the first boot)."),
                             req->account->user_name) < 0)
                        return -ENOMEM;
                return 0;
        }
        if (homed_image)
                r = asprintf(&p->reset->account_note, "%s",
                             _("No account is created now: the first boot asks for one (systemd-homed-firstboot)."));
        else
                r = asprintf(&p->reset->account_note, "%s",
                             _("No account is created now: the first boot asks for what the image asks for (its own first-boot prompts)."));
        return r < 0 ? -ENOMEM : 0;
}

int reset_plan(const Disk *d, const ResetRequest *req, const Image *img, Plan **ret) {
        _cleanup_(reset_target_freep) ResetTarget *t = NULL;
        _cleanup_(plan_freep) Plan *p = NULL;
        _cleanup_(freep) char *root_fs = NULL, *home_fs = NULL;
        const Plan *rec;
        int source_root = -1, r;

        r = reset_probe(d, &t);
        if (r < 0)
                return r;
        if (r == 0)
                return error_setf(-EPERM, _("Cannot reset %s: %s"), d->path, t->refusal);
        rec = t->record->plan;

        /* The disk the firmware booted from is what the recovery entry resets; every other reason a
         * disk is in use stands. */
        if (d->refusals & ~(unsigned) (REFUSE_BOOT_DISK | REFUSE_TOO_SMALL))
                return error_setf(d->refusals & REFUSE_READ_ONLY ? -EROFS : -EBUSY, _("Cannot reset %s: %s"), d->path,
                                  d->refusal_text ?: _("it cannot be used"));
        if (req->keep_home && !t->has_home)
                return error_setf(-EINVAL, _("%s has no home partition to keep: the install made none."), d->path);
        if (rec->encryption.enabled && d->kind != DISK_BLOCK)
                return error_setf(-EOPNOTSUPP, _("%s is encrypted; a reset writes through dm-crypt, which needs a block device. "
                                                 "Attach the file as a loop device (losetup) and reset that."), d->path);

        p = calloc(1, sizeof(Plan));
        if (!p)
                return -ENOMEM;
        p->mode = PLAN_RESET;
        p->arch = rec->arch;
        p->target_kind = d->kind;
        p->sector_size = d->logical_sector_size ?: 512;
        p->target = d->kind == DISK_IMAGE_FILE ? realpath(d->path, NULL) : NULL;
        if (!p->target)
                p->target = strdup(d->path);
        p->target_name = strdup(d->name);
        if (!p->target || !p->target_name)
                return -ENOMEM;
        {
                char buf[512];
                snprintf(buf, sizeof(buf), "%s (%s, %s)", d->model ?: (d->kind == DISK_IMAGE_FILE ? _("Disk image file") : _("Disk")),
                         transport_to_string(d->transport) ?: "unknown", FORMAT_BYTES(d->size));
                p->target_description = strdup(buf);
                if (!p->target_description)
                        return -ENOMEM;
        }
        r = plan_fingerprint_from_disk(d, &p->fingerprint);
        if (r < 0)
                return r;
        if (!d->ptuuid || uuid_parse(d->ptuuid, &p->disk_uuid) < 0)
                return error_setf(-EINVAL, _("Cannot read the disk GUID of %s."), d->path);
        p->free_start = 0;
        p->free_size = 0;

        p->reset = calloc(1, sizeof(PlanReset));
        if (!p->reset)
                return -ENOMEM;
        *p->reset = (PlanReset) {
                .entry_point = req->entry_point,
                .keep_home = req->keep_home,
                .secure_erase = req->secure_erase,
                .tpm_clear = req->tpm_clear,
        };
        p->reset->installed_at = strdup_safe(t->record->installed_at);
        p->reset->installed_by = strdup_safe(t->record->imprint_version);
        p->reset->image_version = strdup_safe(t->image_version);

        /* What root is recreated from. */
        if (t->kind == PLAN_SOURCE_ROOT) {
                if (!img)
                        return error_setf(-EINVAL,
                                          _("%s holds %s, whose root is deployed again from its image: start the reset from the live medium "
                                            "that carries it (or name the image with --source)."),
                                          d->path, t->os_name ?: _("a classic image"));
                r = image_to_plan_source(img, &p->source);
                if (r < 0)
                        return r;
                if (p->source->kind != PLAN_SOURCE_ROOT)
                        return error_setf(-EINVAL, _("The image %s is a usr image, but %s holds a classic one (%s): it cannot be deployed there."),
                                          p->source->path, d->path, t->os_name ?: "?");
                if ((rec->source->image_id || p->source->image_id) &&
                    !streq_ptr(rec->source->image_id, p->source->image_id))
                        return error_setf(-EINVAL,
                                          _("The image %s is %s (image id %s), but %s holds %s (image id %s): a reset deploys the same OS again. "
                                            "Install instead to change the OS."),
                                          p->source->path, p->source->os_name ?: "?", p->source->image_id ?: "none", d->path,
                                          t->os_name ?: "?", rec->source->image_id ?: "none");
                if (!rec->source->image_id && !streq_ptr(rec->source->os_name, p->source->os_name))
                        return error_setf(-EINVAL,
                                          _("The image %s is %s, but %s holds %s: a reset deploys the same OS again. Install instead to change the OS."),
                                          p->source->path, p->source->os_name ?: "?", d->path, t->os_name ?: "?");
                for (size_t i = 0; i < p->source->n_partitions; i++)
                        if (p->source->partitions[i].role == ROLE_ROOT)
                                source_root = (int) i;
                if (source_root < 0)
                        return error_setf(-EINVAL, _("The image %s has no root partition."), p->source->path);
        } else {
                /* No image: the usr slots on the disk stay as they are, and the new root is
                 * made empty, as the image's repart.d says. */
                r = usr_slot_repart(d, &root_fs, &home_fs);
                if (r < 0)
                        return r;
                if (r == 0)
                        log_info("reset: the usr slot's repart.d cannot be read; root and home get the filesystems of the install record");
        }

        r = plan_encryption_copy(&rec->encryption, &p->encryption);
        if (r < 0)
                return r;
        if (req->tpm2_tcti) {
                free(p->encryption.tpm2_tcti);
                p->encryption.tpm2_tcti = strdup(req->tpm2_tcti);
                if (!p->encryption.tpm2_tcti)
                        return -ENOMEM;
        }
        if (req->settings) {
                r = plan_settings_copy(req->settings, &p->settings);
                if (r < 0)
                        return r;
        }

        /* Every partition on the disk, in the order of the disk: the record's root and home are
         * recreated (or home re-enrolled), everything else is kept as it is now. */
        p->partitions = calloc(MAX(d->n_partitions, (size_t) 1), sizeof(PlanPartition));
        if (!p->partitions)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_partitions; i++) {
                const DiskPartition *dp = &d->partitions[i];
                PlanPartition *pp = &p->partitions[p->n_partitions];
                const PlanPartition *was = NULL;

                for (size_t k = 0; k < rec->n_partitions; k++)
                        if (rec->partitions[k].partno == dp->partno)
                                was = &rec->partitions[k];
                r = partition_from_disk(pp, dp);
                p->n_partitions++;
                if (r < 0)
                        return r;
                if (!was || (was->role != ROLE_ROOT && was->role != ROLE_HOME))
                        continue;
                pp->role = was->role;

                if (was->role == ROLE_HOME && req->keep_home) {
                        pp->encrypt = was->encrypt;
                        pp->action = was->encrypt ? ACTION_REENROLL : ACTION_KEEP;
                        if (was->encrypt && (!dp->fsuuid || uuid_parse(dp->fsuuid, &pp->luks_uuid) < 0))
                                return error_setf(-EINVAL, _("Home (partition %u of %s) is not the LUKS2 volume the install made: it cannot be kept."),
                                                  dp->partno, d->path);
                        continue;
                }

                /* Recreated under the name the install gave it (an interrupted reset left
                 * DISK_INCOMPLETE_LABEL), with new volume and filesystem UUIDs. */
                pp->action = ACTION_CREATE;
                pp->erase = true;
                pp->encrypt = was->encrypt;
                pp->flags = was->flags;
                free(pp->label);
                free(pp->fstype);
                free(pp->fslabel);
                pp->label = strdup_safe(was->label);
                pp->fslabel = strdup_safe(was->fslabel);
                pp->fstype = NULL;
                if ((was->label && !pp->label) || (was->fslabel && !pp->fslabel))
                        return -ENOMEM;
                if (pp->encrypt) {
                        r = uuid_random(&pp->luks_uuid);
                        if (r < 0)
                                return r;
                }
                if (was->role == ROLE_ROOT && source_root >= 0) {
                        const PlanSourcePartition *sr = &p->source->partitions[source_root];
                        uint64_t need = sr->size + (pp->encrypt ? PLAN_LUKS_HEADER_SIZE : 0);

                        if (need > pp->size)
                                return error_setf(-ENOSPC,
                                                  _("The root of the image %s (%s) does not fit into the root partition %u of %s (%s): it cannot be "
                                                    "deployed again there. Install instead."),
                                                  p->source->path, FORMAT_BYTES(need), pp->partno, d->path, FORMAT_BYTES(pp->size));
                        pp->copy_from = source_root;
                        continue;
                }
                {
                        const char *fs = was->role == ROLE_ROOT ? (root_fs ?: was->fstype) : (home_fs ?: was->fstype);

                        /* A classic root without its image never gets here; home and a usr image's
                         * root get a filesystem, as the install made. */
                        if (!fs && was->copy_from < 0)
                                fs = "ext4";
                        if (!fs)
                                return error_setf(-EINVAL, _("The install record does not say which filesystem the %s partition of %s had."),
                                                  partition_role_to_string(was->role), d->path);
                        pp->fstype = strdup(fs);
                        if (!pp->fstype)
                                return -ENOMEM;
                }
        }
        if (!plan_find_role(p, ROLE_ROOT) || !plan_find_role(p, ROLE_ESP))
                return error_setf(-EPERM, _("Cannot reset %s: its root or ESP is missing."), d->path);

        r = account_for_reset(req, t->record, img, d, p);
        if (r < 0)
                return r;
        if (p->account && !p->reset->account_note &&
            asprintf(&p->reset->account_note, _("The account %s is created again (%s)."), p->account->user_name,
                     p->account->kind == ACCOUNT_HOMED ? "systemd-homed" : _("a classic user")) < 0)
                return -ENOMEM;

        log_info("planned the reset of %s: %s, installed %s by imprint %s", p->target, t->os_name ?: "?",
                 t->record->installed_at ?: "?", t->record->imprint_version ?: "?");
        *ret = TAKE_PTR(p);
        return 0;
}

int reset_boot_disk(const DiskList *l, const Disk **ret) {
        _cleanup_(freep) char *uuid = NULL;
        int r;

        r = disk_loader_device_part_uuid(&uuid);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return error_setf(-ENXIO, _("The firmware did not say which disk this system was started from (no LoaderDevicePartUUID): "
                                            "name the disk to reset."));
        for (size_t i = 0; i < l->n_disks; i++) {
                const Disk *d = l->disks[i];

                for (size_t k = 0; k < d->n_partitions; k++)
                        if (d->partitions[k].uuid_string && strcasecmp(d->partitions[k].uuid_string, uuid) == 0) {
                                *ret = d;
                                return 0;
                        }
        }
        return error_setf(-ENXIO, _("The disk this system was started from (ESP %s) is not among the disks found: name the disk to reset."),
                          uuid);
}
