/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "fileio.h"
#include "handoff.h"
#include "i18n.h"
#include "json-strict.h"
#include "log.h"
#include "plan.h"
#include "recovery-entry.h"
#include "tpm2.h"
#include "size.h"
#include "uuid.h"
#include "validate.h"

static const char *const plan_mode_table[_PLAN_MODE_MAX] = {
        [PLAN_ERASE] = "erase",
        [PLAN_FREE] = "free",
        [PLAN_RESET] = "reset",
};
DEFINE_STRING_TABLE_LOOKUP(plan_mode, PlanMode);

static const char *const partition_action_table[_ACTION_MAX] = {
        [ACTION_CREATE] = "create",
        [ACTION_KEEP] = "keep",
        [ACTION_REENROLL] = "reenroll",
};
DEFINE_STRING_TABLE_LOOKUP(partition_action, PartitionAction);

static const char *const reset_entry_point_table[_RESET_ENTRY_POINT_MAX] = {
        [RESET_FROM_BOOT_MENU] = "boot-menu",
        [RESET_FROM_LIVE_MEDIUM] = "live-medium",
        [RESET_UNATTENDED] = "unattended",
};
DEFINE_STRING_TABLE_LOOKUP(reset_entry_point, ResetEntryPoint);

static const char *const handoff_account_table[_HANDOFF_ACCOUNT_MAX] = {
        [HANDOFF_ACCOUNT_HOMED] = "systemd-homed-firstboot",
        [HANDOFF_ACCOUNT_ROOT_PASSWORD] = "root-password",
};
DEFINE_STRING_TABLE_LOOKUP(handoff_account, HandoffAccount);

void plan_reset_free(PlanReset *r) {
        if (!r)
                return;
        free(r->installed_at);
        free(r->installed_by);
        free(r->image_version);
        free(r->account_note);
        free(r);
}

static const char *const plan_source_kind_table[_PLAN_SOURCE_KIND_MAX] = {
        [PLAN_SOURCE_ROOT] = "root",
        [PLAN_SOURCE_USR] = "usr",
};
DEFINE_STRING_TABLE_LOOKUP(plan_source_kind, PlanSourceKind);

/* The partitions of a usr image's slot, in the order they are laid out (A, then B). */
static const PartitionRole usr_slot_roles[] = { ROLE_USR, ROLE_USR_VERITY, ROLE_USR_VERITY_SIG };

static bool role_is_usr_slot(PartitionRole role) {
        return role == ROLE_USR || role == ROLE_USR_VERITY || role == ROLE_USR_VERITY_SIG;
}

/* The GPT name of an empty slot, which systemd-sysupdate looks for when it picks a partition to
 * write a new version into (systemd-sysupdate(8), sysupdate.d(5) "Partitions"). */
#define PLAN_EMPTY_SLOT_LABEL "_empty"

/* Filesystems imprint can create in a partition, and whether they can grow in place, which
 * decides the DPS growfs flag (bit 59; UAPI DPS "Partition Attribute Flags"). */
static const struct {
        const char *name;
        bool growable;
        bool for_data; /* offered for root/home */
} fs_table[] = {
        { "ext4", true, true },
        { "btrfs", true, true },
        { "xfs", true, true },
        { "vfat", false, false },
        { "swap", false, false },
};

static int fs_lookup(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(fs_table); i++)
                if (streq(fs_table[i].name, name))
                        return (int) i;
        return -EINVAL;
}

static bool fs_is_growable(const char *name) {
        int i = name ? fs_lookup(name) : -1;
        return i >= 0 && fs_table[i].growable;
}

int size_request_parse(const char *s, SizeRequest *ret) {
        uint64_t v;
        int r;

        if (isempty(s))
                return -EINVAL;
        if (streq(s, "none") || streq(s, "no") || streq(s, "0")) {
                *ret = (SizeRequest) { .kind = SIZE_NONE };
                return 0;
        }
        if (streq(s, "rest") || streq(s, "fill")) {
                *ret = (SizeRequest) { .kind = SIZE_REST };
                return 0;
        }
        r = parse_size(s, &v);
        if (r < 0)
                return r;
        *ret = (SizeRequest) { .kind = v > 0 ? SIZE_FIXED : SIZE_NONE, .bytes = v };
        return 0;
}

void plan_options_init(PlanOptions *o) {
        *o = (PlanOptions) {
                .mode = PLAN_ERASE,
                .arch = _ARCH_INVALID,
                .esp = { SIZE_FIXED, PLAN_ESP_SIZE_DEFAULT },
                .xbootldr = { SIZE_FIXED, PLAN_XBOOTLDR_SIZE_DEFAULT },
                .root = { SIZE_NONE, 0 }, /* the default: the rest, or a fixed size when home takes the rest */
                .home = { SIZE_NONE, 0 },
                .swap = { SIZE_NONE, 0 },
        };
}

static void plan_partition_done(PlanPartition *p) {
        free(p->label);
        free(p->fstype);
        free(p->fslabel);
}

static void plan_doomed_done(PlanDoomed *d) {
        free(d->type_name);
        free(d->label);
        free(d->fstype);
        free(d->os);
}

void plan_fingerprint_done(PlanFingerprint *f) {
        free(f->pttype);
        free(f->ptuuid);
        free(f->partitions);
        *f = (PlanFingerprint) {};
}

void plan_source_free(PlanSource *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->n_partitions; i++) {
                free(s->partitions[i].label);
                free(s->partitions[i].fstype);
                free(s->partitions[i].install_label);
        }
        free(s->partitions);
        for (size_t i = 0; i < s->n_entries; i++) {
                free(s->entries[i].file);
                free(s->entries[i].install_as);
                free(s->entries[i].title);
                free(s->entries[i].version);
                free(s->entries[i].uname);
        }
        free(s->entries);
        free(s->path);
        free(s->fingerprint);
        free(s->sha256);
        free(s->sha256_origin);
        free(s->os_name);
        free(s->image_id);
        free(s->image_version);
        free(s->root_fstype);
        free(s->home_fstype);
        free(s->note);
        free(s->compression);
        free(s->streamed_disk);
        free(s);
}

int plan_source_copy(const PlanSource *from, PlanSource **ret) {
        _cleanup_(plan_source_freep) PlanSource *s = calloc(1, sizeof(PlanSource));

        if (!s)
                return -ENOMEM;
        *s = (PlanSource) {
                .kind = from->kind,
                .path = strdup_safe(from->path),
                .size = from->size,
                .fingerprint = strdup_safe(from->fingerprint),
                .sha256 = strdup_safe(from->sha256),
                .sha256_origin = strdup_safe(from->sha256_origin),
                .os_name = strdup_safe(from->os_name),
                .image_id = strdup_safe(from->image_id),
                .image_version = strdup_safe(from->image_version),
                .partitions = calloc(from->n_partitions ?: 1, sizeof(PlanSourcePartition)),
                .n_partitions = from->n_partitions,
                .root_fstype = strdup_safe(from->root_fstype),
                .home_fstype = strdup_safe(from->home_fstype),
                .note = strdup_safe(from->note),
                .streaming = from->streaming,
                .streamed = from->streamed,
                .streamed_disk = strdup_safe(from->streamed_disk),
                .streamed_offset = from->streamed_offset,
                .stream_resumes = from->stream_resumes,
                .compression = strdup_safe(from->compression),
                .content_pending = from->content_pending,
        };
        if (!s->path || !s->partitions || (from->root_fstype && !s->root_fstype) || (from->home_fstype && !s->home_fstype) ||
            (from->note && !s->note) || (from->compression && !s->compression))
                return -ENOMEM;
        for (size_t i = 0; i < from->n_partitions; i++) {
                s->partitions[i] = from->partitions[i];
                s->partitions[i].label = strdup_safe(from->partitions[i].label);
                s->partitions[i].fstype = strdup_safe(from->partitions[i].fstype);
                s->partitions[i].install_label = strdup_safe(from->partitions[i].install_label);
                if (from->partitions[i].install_label && !s->partitions[i].install_label)
                        return -ENOMEM;
        }
        s->entries = calloc(from->n_entries ?: 1, sizeof(PlanBootEntry));
        if (!s->entries)
                return -ENOMEM;
        for (size_t i = 0; i < from->n_entries; i++) {
                s->entries[i] = (PlanBootEntry) {
                        .file = strdup_safe(from->entries[i].file),
                        .install_as = strdup_safe(from->entries[i].install_as),
                        .install_on = from->entries[i].install_on,
                        .title = strdup_safe(from->entries[i].title),
                        .version = strdup_safe(from->entries[i].version),
                        .uname = strdup_safe(from->entries[i].uname),
                };
                s->n_entries++;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

static const char *const account_storage_table[_ACCOUNT_STORAGE_MAX] = {
        [ACCOUNT_STORAGE_LUKS] = "luks",
        [ACCOUNT_STORAGE_DIRECTORY] = "directory",
        [ACCOUNT_STORAGE_SUBVOLUME] = "subvolume",
};
DEFINE_STRING_TABLE_LOOKUP(account_storage, AccountStorage);

static const char *const account_kind_table[_ACCOUNT_KIND_MAX] = {
        [ACCOUNT_HOMED] = "homed",
        [ACCOUNT_CLASSIC] = "classic",
};
DEFINE_STRING_TABLE_LOOKUP(account_kind, AccountKind);

void plan_account_free(PlanAccount *a) {
        if (!a)
                return;
        free(a->user_name);
        free(a->real_name);
        free(a->note);
        free(a);
}

int plan_account_copy(const PlanAccount *from, PlanAccount **ret) {
        _cleanup_(plan_account_freep) PlanAccount *a = calloc(1, sizeof(PlanAccount));

        if (!a)
                return -ENOMEM;
        *a = *from;
        a->user_name = strdup_safe(from->user_name);
        a->real_name = strdup_safe(from->real_name);
        a->note = strdup_safe(from->note);
        if (!a->user_name || (from->real_name && !a->real_name) || (from->note && !a->note)) {
                free(a->user_name), free(a->real_name), free(a->note);
                a->user_name = a->real_name = a->note = NULL;
                return -ENOMEM;
        }
        *ret = TAKE_PTR(a);
        return 0;
}

void plan_settings_done(PlanSettings *s) {
        free(s->hostname);
        free(s->timezone);
        free(s->locale);
        free(s->keymap);
        *s = (PlanSettings) {};
}

int plan_settings_copy(const PlanSettings *from, PlanSettings *to) {
        PlanSettings c = {
                .hostname = strdup_safe(from->hostname),
                .timezone = strdup_safe(from->timezone),
                .locale = strdup_safe(from->locale),
                .keymap = strdup_safe(from->keymap),
        };
        if ((from->hostname && !c.hostname) || (from->timezone && !c.timezone) || (from->locale && !c.locale) ||
            (from->keymap && !c.keymap)) {
                plan_settings_done(&c);
                return -ENOMEM;
        }
        *to = c;
        return 0;
}

void plan_encryption_done(PlanEncryption *e) {
        free(e->tpm2_tcti);
        free(e->tpm2_pubkey);
        free(e->note);
        *e = (PlanEncryption) {};
}

int plan_encryption_copy(const PlanEncryption *from, PlanEncryption *to) {
        PlanEncryption c = *from;

        c.tpm2_tcti = strdup_safe(from->tpm2_tcti);
        c.tpm2_pubkey = strdup_safe(from->tpm2_pubkey);
        c.note = strdup_safe(from->note);
        if ((from->tpm2_tcti && !c.tpm2_tcti) || (from->tpm2_pubkey && !c.tpm2_pubkey) || (from->note && !c.note)) {
                plan_encryption_done(&c);
                return -ENOMEM;
        }
        *to = c;
        return 0;
}

Plan *plan_free(Plan *p) {
        if (!p)
                return NULL;
        plan_encryption_done(&p->encryption);
        plan_account_free(p->account);
        plan_settings_done(&p->settings);
        for (size_t i = 0; i < p->n_partitions; i++)
                plan_partition_done(&p->partitions[i]);
        free(p->partitions);
        for (size_t i = 0; i < p->n_doomed; i++)
                plan_doomed_done(&p->doomed[i]);
        free(p->doomed);
        plan_fingerprint_done(&p->fingerprint);
        plan_source_free(p->source);
        plan_reset_free(p->reset);
        plan_oem_free(p->oem);
        plan_secure_boot_done(&p->secure_boot);
        free(p->recovery_uki);
        free(p->target);
        free(p->target_name);
        free(p->target_description);
        free(p->seed);
        free(p);
        return NULL;
}

const PlanPartition *plan_find_role(const Plan *p, PartitionRole role) {
        for (size_t i = 0; i < p->n_partitions; i++)
                if (p->partitions[i].role == role)
                        return &p->partitions[i];
        return NULL;
}


int plan_fingerprint_from_disk(const Disk *d, PlanFingerprint *ret) {
        PlanFingerprint f = {
                .size = d->size,
                .diskseq = d->diskseq,
                .sector_size = d->logical_sector_size,
        };
        char *parts = strdup("");

        for (size_t i = 0; parts && i < d->n_partitions; i++) {
                const DiskPartition *p = &d->partitions[i];
                char buf[256];

                snprintf(buf, sizeof(buf), "%s%u:%" PRIu64 ":%" PRIu64 ":%s:%s", i > 0 ? ";" : "", p->partno,
                         p->start, p->size, p->type_string ?: "", p->uuid_string ?: "");
                for (char *c = buf; *c; c++)
                        *c = (char) tolower((unsigned char) *c);
                parts = strjoin_free(parts, buf);
        }
        if (!parts)
                return -ENOMEM;

        f.partitions = parts;
        f.pttype = strdup_safe(d->pttype);
        f.ptuuid = strdup_safe(d->ptuuid);
        if ((d->pttype && !f.pttype) || (d->ptuuid && !f.ptuuid)) {
                plan_fingerprint_done(&f);
                return -ENOMEM;
        }
        if (f.ptuuid)
                for (char *c = f.ptuuid; *c; c++)
                        *c = (char) tolower((unsigned char) *c);
        *ret = f;
        return 0;
}

int plan_check_disk_unchanged(const Plan *p, const Disk *d) {
        _cleanup_(plan_fingerprint_done) PlanFingerprint now = {};
        const PlanFingerprint *then = &p->fingerprint;
        int r;

        r = plan_fingerprint_from_disk(d, &now);
        if (r < 0)
                return r;

        if (now.size != then->size)
                return error_setf(-ESTALE,
                                  _("%s changed since the plan was made: its size was %s (%" PRIu64 " bytes) and is now %s (%" PRIu64 " bytes). Make a new plan."),
                                  p->target, FORMAT_BYTES(then->size), then->size, FORMAT_BYTES(now.size), now.size);
        if (then->sector_size && now.sector_size != then->sector_size)
                return error_setf(-ESTALE, _("%s changed since the plan was made: its sector size was %" PRIu32 " and is now %" PRIu32 ". Make a new plan."),
                                  p->target, then->sector_size, now.sector_size);
        if (then->diskseq && now.diskseq && now.diskseq != then->diskseq)
                return error_setf(-ESTALE,
                                  _("%s is not the same disk as when the plan was made: its disk sequence number was %" PRIu64 " and is now %" PRIu64 " (the medium was replaced or re-attached). Make a new plan."),
                                  p->target, then->diskseq, now.diskseq);
        if (!streq_ptr(now.pttype, then->pttype) || !streq_ptr(now.ptuuid, then->ptuuid))
                return error_setf(-ESTALE,
                                  _("%s changed since the plan was made: its partition table was %s %s and is now %s %s. Make a new plan."),
                                  p->target, then->pttype ?: "(none)", then->ptuuid ?: "", now.pttype ?: "(none)", now.ptuuid ?: "");
        if (!streq_ptr(now.partitions, then->partitions))
                return error_setf(-ESTALE,
                                  _("%s changed since the plan was made: its partitions were added, removed, moved or retyped. Make a new plan."),
                                  p->target);
        return 0;
}

/* ---- building ---------------------------------------------------------------------------- */

typedef struct Region {
        uint64_t start, end; /* bytes, [start, end) */
} Region;

/* The bytes a GPT needs at the end of the disk: the backup entry array (128 × 128 bytes) and the
 * backup header, rounded to the alignment so that partitions end on a MiB boundary. */
static uint64_t usable_end(uint64_t disk_size, uint64_t sector_size) {
        uint64_t reserved = 128 * 128 + sector_size;

        if (disk_size < reserved)
                return 0;
        return ROUND_DOWN(disk_size - reserved, PLAN_ALIGNMENT);
}

static int plan_make_uuid(const Plan *p, const char *purpose, sd_id128_t *ret) {
        if (p->seed)
                return uuid_from_seed(p->seed, purpose, ret);
        return uuid_random(ret);
}

static int plan_add_copy(Plan *p, PartitionRole role, PartitionAction action, uint64_t start, uint64_t size, int copy_from) {
        PlanPartition *n = realloc(p->partitions, (p->n_partitions + 1) * sizeof(PlanPartition));

        if (!n)
                return -ENOMEM;
        p->partitions = n;
        n[p->n_partitions++] = (PlanPartition) {
                .role = role,
                .action = action,
                .start = start,
                .size = size,
                .copy_from = copy_from,
        };
        return 0;
}

static int plan_add(Plan *p, PartitionRole role, PartitionAction action, uint64_t start, uint64_t size) {
        return plan_add_copy(p, role, action, start, size, -1);
}

/* A B slot of a usr image: the type and flags of its A slot, named "_empty", left empty (no
 * filesystem, nothing copied) for systemd-sysupdate to fill with the next version. */
static int plan_add_empty_slot(Plan *p, const PlanSourcePartition *a, uint64_t start, uint64_t size) {
        PlanPartition *pp;
        int r;

        r = plan_add(p, a->role, ACTION_CREATE, start, size);
        if (r < 0)
                return r;
        pp = &p->partitions[p->n_partitions - 1];
        pp->type_uuid = a->type_uuid;
        pp->flags = a->flags & ~DPS_FLAG_NO_AUTO;
        pp->label = strdup(PLAN_EMPTY_SLOT_LABEL);
        return pp->label ? 0 : -ENOMEM;
}

/* A partition an interrupted install of imprint's left (see DISK_INCOMPLETE_LABEL): free mode
 * replaces it like free space, and names it among what is destroyed. */
static bool left_by_interrupted_install(const DiskPartition *dp) {
        return streq_ptr(dp->label, DISK_INCOMPLETE_LABEL);
}

static bool partno_taken(const Plan *p, const Disk *d, unsigned partno) {
        for (size_t i = 0; i < p->n_partitions; i++)
                if (p->partitions[i].partno == partno)
                        return true;
        if (p->mode == PLAN_FREE)
                for (size_t i = 0; i < d->n_partitions; i++)
                        if (d->partitions[i].partno == partno && !left_by_interrupted_install(&d->partitions[i]))
                                return true;
        return false;
}

static int plan_finish_partition(Plan *p, const Disk *d, PlanPartition *pp, const PlanOptions *o) {
        char purpose[64];
        int r;

        if (pp->action == ACTION_KEEP)
                return 0; /* identity and contents stay as they are on disk */

        /* Root and home hold the data worth protecting; DPS lets gpt-auto unlock both as "root"
         * and "home" (formats.md §1.4). ESP, XBOOTLDR, /usr and verity stay plain. */
        if (p->encryption.enabled && (pp->role == ROLE_ROOT || pp->role == ROLE_HOME)) {
                pp->encrypt = true;
                snprintf(purpose, sizeof(purpose), "luks:%s", partition_role_to_string(pp->role));
                r = plan_make_uuid(p, purpose, &pp->luks_uuid);
                if (r < 0)
                        return r;
        }

        if (role_is_usr_slot(pp->role) && pp->copy_from < 0) {
                /* A B slot: type, flags and label were set with it; a UUID of its own. */
                snprintf(purpose, sizeof(purpose), "partition:%s-b", partition_role_to_string(pp->role));
                r = plan_make_uuid(p, purpose, &pp->uuid);
                if (r < 0)
                        return error_setf(r, _("Cannot generate a partition UUID: %s"), strerror(-r));
                goto partno;
        }

        if (pp->copy_from >= 0) {
                const PlanSourcePartition *sp = &p->source->partitions[pp->copy_from];
                bool usr_image = p->source->kind == PLAN_SOURCE_USR;
                bool verity = false;

                for (size_t i = 0; i < p->source->n_partitions; i++)
                        verity = verity || p->source->partitions[i].role == ROLE_ROOT_VERITY ||
                                 p->source->partitions[i].role == ROLE_USR_VERITY;

                pp->type_uuid = sp->type_uuid;
                /* With dm-verity, data and hash partition UUIDs are halves of the root hash
                 * (UAPI DPS "Verity"): they must be kept. Otherwise each install is new. */
                if (verity)
                        pp->uuid = sp->uuid;
                else {
                        snprintf(purpose, sizeof(purpose), "partition:%s", partition_role_to_string(pp->role));
                        r = plan_make_uuid(p, purpose, &pp->uuid);
                        if (r < 0)
                                return r;
                }
                /* A usr image's A slot is named as its sysupdate.d transfer names new versions. */
                {
                        const char *label = pp->role == ROLE_ROOT && o->root_label ? o->root_label
                                          : usr_image && sp->install_label ? sp->install_label
                                                                            : sp->label;
                        pp->label = strdup_safe(label);
                        if (label && !pp->label)
                                return -ENOMEM;
                }
                /* no-auto stays off: the installed system must find its partitions. */
                pp->flags = sp->flags & ~DPS_FLAG_NO_AUTO;
                /* A slot that systemd-sysupdate overwrites with raw images never grows in place. */
                if (!usr_image && (pp->role == ROLE_ROOT || pp->role == ROLE_USR) && !(pp->flags & DPS_FLAG_READ_ONLY) &&
                    fs_is_growable(sp->fstype) && pp->size > sp->size + (pp->encrypt ? PLAN_LUKS_HEADER_SIZE : 0))
                        pp->flags |= DPS_FLAG_GROWFS;
                goto partno;
        }

        r = dps_type_uuid(pp->role, p->arch, &pp->type_uuid);
        if (r < 0)
                return error_setf(r, _("There is no %s partition type for %s."), partition_role_to_string(pp->role),
                                  architecture_to_string(p->arch));

        snprintf(purpose, sizeof(purpose), "partition:%s", partition_role_to_string(pp->role));
        r = plan_make_uuid(p, purpose, &pp->uuid);
        if (r < 0)
                return error_setf(r, _("Cannot generate a partition UUID: %s"), strerror(-r));

partno:
        for (unsigned n = 1; n <= 128; n++)
                if (!partno_taken(p, d, n)) {
                        pp->partno = n;
                        break;
                }
        if (pp->partno == 0)
                return error_setf(-ENOSPC, _("%s has no free GPT partition entry left (all 128 are used)."), p->target);
        if (pp->copy_from >= 0 || role_is_usr_slot(pp->role))
                return 0;

        switch (pp->role) {
        case ROLE_ESP:
                pp->label = strdup("ESP");
                pp->fstype = strdup("vfat");
                pp->fslabel = strdup("ESP");
                break;
        case ROLE_XBOOTLDR:
                pp->label = strdup("XBOOTLDR");
                pp->fstype = strdup("vfat");
                pp->fslabel = strdup("XBOOTLDR");
                break;
        case ROLE_SWAP:
                pp->label = strdup("swap");
                pp->fstype = strdup("swap");
                pp->fslabel = strdup("swap");
                break;
        case ROLE_ROOT: {
                char def[64];
                snprintf(def, sizeof(def), "root-%s", architecture_to_string(p->arch));
                pp->label = strdup(o->root_label ?: def);
                pp->fstype = strdup(o->root_fs ?: "ext4");
                pp->fslabel = strdup("root");
                break;
        }
        case ROLE_HOME:
                pp->label = strdup("home");
                pp->fstype = strdup(o->home_fs ?: "ext4");
                pp->fslabel = strdup("home");
                break;
        default:
                return -EINVAL;
        }
        if (!pp->label || !pp->fstype || !pp->fslabel)
                return -ENOMEM;

        if ((pp->role == ROLE_ROOT || pp->role == ROLE_HOME) && fs_is_growable(pp->fstype))
                pp->flags |= DPS_FLAG_GROWFS;
        return 0;
}

static int describe_disk(const Disk *d, char **ret) {
        char buf[512];
        const char *what = d->model ?: (d->kind == DISK_IMAGE_FILE ? _("Disk image file") : _("Disk"));

        /* The model (or "Disk"), the bus (nvme, usb, file), the size. */
        snprintf(buf, sizeof(buf), "%s (%s, %s)", what, transport_to_string(d->transport) ?: "unknown",
                 FORMAT_BYTES(d->size));
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

static int plan_add_doomed(Plan *p, const DiskPartition *dp) {
        PlanDoomed *n = realloc(p->doomed, (p->n_doomed + 1) * sizeof(PlanDoomed));
        const char *tn = dp->dps ? dp->dps->name : dp->type_string;

        if (!n)
                return -ENOMEM;
        p->doomed = n;
        n[p->n_doomed++] = (PlanDoomed) {
                .partno = dp->partno,
                .start = dp->start,
                .size = dp->size,
                .type_name = strdup_safe(tn),
                .label = strdup_safe(dp->label),
                .fstype = strdup_safe(dp->fstype),
                .os = strdup_safe(dp->os),
        };
        return 0;
}

static int check_fs_option(const char *what, const char *fs) {
        int i;

        if (!fs)
                return 0;
        i = fs_lookup(fs);
        if (i < 0 || !fs_table[i].for_data)
                return error_setf(-EINVAL, _("Unsupported filesystem for %s: \"%s\" (use ext4, btrfs or xfs)."), what, fs);
        return 0;
}

static int compare_region_size(const void *a, const void *b) {
        const Region *x = a, *y = b;
        uint64_t sx = x->end - x->start, sy = y->end - y->start;

        if (sx != sy)
                return sx > sy ? -1 : 1;
        return x->start < y->start ? -1 : x->start > y->start;
}

static int compare_partition_start(const void *a, const void *b) {
        const DiskPartition *x = *(const DiskPartition *const *) a, *y = *(const DiskPartition *const *) b;
        return x->start < y->start ? -1 : x->start > y->start;
}

/* The largest aligned free region between existing partitions (and the GPT areas). */
static int find_largest_free_region(const Disk *d, Region *ret) {
        _cleanup_(freep) const DiskPartition **sorted = NULL;
        _cleanup_(freep) Region *regions = NULL;
        size_t n_regions = 0, n = 0;
        uint64_t cursor = PLAN_GPT_RESERVED, end = usable_end(d->size, d->logical_sector_size);

        sorted = calloc(d->n_partitions + 1, sizeof(*sorted));
        regions = calloc(d->n_partitions + 1, sizeof(Region));
        if (!sorted || !regions)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_partitions; i++)
                if (!left_by_interrupted_install(&d->partitions[i]))
                        sorted[n++] = &d->partitions[i];
        qsort(sorted, n, sizeof(*sorted), compare_partition_start);

        for (size_t i = 0; i <= n; i++) {
                uint64_t next = i < n ? sorted[i]->start : end;
                uint64_t s = ROUND_UP(cursor, PLAN_ALIGNMENT), e = ROUND_DOWN(MIN(next, end), PLAN_ALIGNMENT);

                if (e > s)
                        regions[n_regions++] = (Region) { s, e };
                if (i < n)
                        cursor = MAX(cursor, sorted[i]->start + sorted[i]->size);
        }
        if (n_regions == 0) {
                *ret = (Region) {};
                return 0;
        }
        qsort(regions, n_regions, sizeof(Region), compare_region_size);
        *ret = regions[0];
        return 0;
}

static const DiskPartition *disk_find_role(const Disk *d, PartitionRole role, Architecture arch) {
        for (size_t i = 0; i < d->n_partitions; i++) {
                const DiskPartition *p = &d->partitions[i];
                if (left_by_interrupted_install(p))
                        continue;
                if (p->dps && p->dps->role == role && (p->dps->arch == _ARCH_INVALID || p->dps->arch == arch))
                        return p;
        }
        return NULL;
}

static int refuse_conflicts(const Plan *p, const Disk *d, const PlanOptions *o) {
        const DiskPartition *q;

        /* gpt-auto takes the first root of the native architecture on the boot disk, and the first
         * home on the root's disk (UAPI DPS; udev-builtin-blkid find_gpt_root()): a second system's
         * partition of either type would be picked instead of, or mounted into, ours. */
        q = disk_find_role(d, ROLE_ROOT, p->arch);
        if (q && !(q->flags & DPS_FLAG_NO_AUTO))
                return error_setf(-EEXIST,
                                  _("%s already has a %s root partition (partition %u%s%s%s): at boot, systemd would not know which root to use. "
                                    "Erase the disk, delete that partition, or set its no-auto flag (GPT attribute 63)."),
                                  p->target, architecture_to_string(p->arch), q->partno, q->os ? ", " : "", q->os ?: "",
                                  "");
        q = disk_find_role(d, ROLE_HOME, p->arch);
        if (q && !(q->flags & DPS_FLAG_NO_AUTO))
                return error_setf(-EEXIST,
                                  _("%s already has a home partition (partition %u): the new system would mount it as /home. "
                                    "Erase the disk, delete that partition, or set its no-auto flag (GPT attribute 63)."),
                                  p->target, q->partno);
        (void) o;
        return 0;
}

/* Appends one item to a list separated by ", ". */
static void detail_add(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);
static void detail_add(char *buf, size_t size, const char *fmt, ...) {
        size_t l = strlen(buf);
        va_list ap;

        if (l > 0 && l + 2 < size) {
                memcpy(buf + l, ", ", 3);
                l += 2;
        }
        va_start(ap, fmt);
        vsnprintf(buf + l, size - l, fmt, ap);
        va_end(ap);
}

static int too_small(const Plan *p, const Disk *d, const Region *region, uint64_t need, const char *detail) {
        if (p->mode == PLAN_ERASE)
                return error_setf(-ENOSPC,
                                  _("%s is too small for this layout: it has %s (%" PRIu64 " bytes) of which %s can hold partitions, "
                                    "and the layout needs at least %s (%s)."),
                                  p->target, FORMAT_BYTES(d->size), d->size, FORMAT_BYTES(region->end - region->start),
                                  FORMAT_BYTES(need), detail);
        return error_setf(-ENOSPC,
                          _("The largest free region on %s is %s (from %s to %s), and the layout needs at least %s (%s). "
                            "Free up space, or erase the disk."),
                          p->target, FORMAT_BYTES(region->end - region->start), FORMAT_BYTES(region->start),
                          FORMAT_BYTES(region->end), FORMAT_BYTES(need), detail);
}

bool plan_can_use_free_space(const Disk *d) {
        return d->n_partitions > 0 && streq_ptr(d->pttype, "gpt");
}

int plan_build(const Disk *d, const PlanOptions *o, Plan **ret) {
        _cleanup_(plan_freep) Plan *p = NULL;
        const DiskPartition *existing_esp = NULL, *existing_xbootldr = NULL;
        bool create_esp, create_xbootldr = false;
        SizeRequest root = o->root, home = o->home;
        uint64_t root_min = o->root_min ?: PLAN_ROOT_SIZE_MIN_DEFAULT;
        uint64_t esp_size = 0, xbootldr_size = 0, swap_size = 0, copies_size = 0, fixed, rest, cursor;
        int source_root = -1;
        /* usr images: the image's usr, usr-verity and usr-verity-sig (index in source, -1: none)
         * and the size of their A and B slots on the target. */
        int slot_src[ELEMENTSOF(usr_slot_roles)] = { -1, -1, -1 };
        uint64_t slot_size[ELEMENTSOF(usr_slot_roles)] = {}, slots_size = 0;
        bool usr_image = o->source && o->source->kind == PLAN_SOURCE_USR;
        PlanOptions usr_opts;
        char detail[512];
        Region region;
        bool encrypt = o->encryption && o->encryption->enabled;
        int r;

        /* A usr image brings no root: root and home are made here, with the filesystems its own
         * repart.d asks for (those it recreates on a factory reset). */
        if (usr_image) {
                usr_opts = *o;
                if (o->source->root_fstype && o->root_fs && !streq(o->root_fs, o->source->root_fstype))
                        return error_setf(-EINVAL, _("The image %s makes its root filesystem %s (its repart.d says so), not %s."),
                                          o->source->path, o->source->root_fstype, o->root_fs);
                if (o->source->home_fstype && o->home_fs && !streq(o->home_fs, o->source->home_fstype))
                        return error_setf(-EINVAL, _("The image %s makes its home filesystem %s (its repart.d says so), not %s."),
                                          o->source->path, o->source->home_fstype, o->home_fs);
                usr_opts.root_fs = o->source->root_fstype ?: o->root_fs;
                usr_opts.home_fs = o->source->home_fstype ?: o->home_fs;
                o = &usr_opts;
        }

        if (o->mode == PLAN_RESET)
                return error_setf(-EINVAL, "Internal error: reset plans are made by reset_plan().");
        if (d->refusals & ~(unsigned) REFUSE_TOO_SMALL)
                return error_setf(d->refusals & REFUSE_READ_ONLY ? -EROFS : -EBUSY, _("Cannot install to %s: %s"), d->path,
                                  d->refusal_text ?: _("it cannot be used"));

        r = check_fs_option("root", o->root_fs);
        if (r < 0)
                return r;
        r = check_fs_option("home", o->home_fs);
        if (r < 0)
                return r;
        if (root.kind == SIZE_REST && home.kind == SIZE_REST)
                return error_setf(-EINVAL, _("Only one of root and home can take the rest of the disk."));

        p = calloc(1, sizeof(Plan));
        if (!p)
                return -ENOMEM;
        if (o->encryption) {
                if (o->encryption->enabled && d->kind != DISK_BLOCK)
                        return error_setf(-EOPNOTSUPP,
                                          _("Cannot encrypt an install into the image file %s: the installer writes through dm-crypt, which "
                                            "needs a block device, and the TPM of this machine is not the one of the machine that will "
                                            "boot it. Install without encryption, or attach the file as a loop device (losetup) and "
                                            "install to that."),
                                          d->path);
                r = plan_encryption_copy(o->encryption, &p->encryption);
                if (r < 0)
                        return r;
        }
        if (o->account) {
                if (!o->source)
                        return error_setf(-EINVAL, _("An account can only be created by an install of an image (--source)."));
                r = plan_account_copy(o->account, &p->account);
                if (r < 0)
                        return r;
        }
        if (o->oem) {
                /* The customer makes the account at first boot; a line's account would be theirs. */
                if (o->account)
                        return error_setf(-EINVAL, _("\"oem\": true leaves the account to the customer's first boot, so the "
                                                     "configuration cannot also name a \"user\": remove one of them."));
                r = handoff_plan(o->source, o->encryption && o->encryption->enabled ? o->encryption : NULL, o->settings, &p->oem);
                if (r < 0)
                        return r;
        }
        if (o->secure_boot) {
                r = plan_secure_boot_copy(o->secure_boot, &p->secure_boot);
                if (r < 0)
                        return r;
        }
        if (o->settings) {
                if (!o->source && (o->settings->hostname || o->settings->timezone || o->settings->locale || o->settings->keymap))
                        return error_setf(-EINVAL, _("Hostname, timezone, locale and keymap can only be set by an install of an image (--source)."));
                r = plan_settings_copy(o->settings, &p->settings);
                if (r < 0)
                        return r;
        }
        p->mode = o->mode;
        p->arch = o->arch >= 0 ? o->arch : architecture_native();
        if (o->recovery_uki) {
                struct stat st;

                if (stat(o->recovery_uki, &st) < 0)
                        return error_setf(-errno, _("Cannot look at the recovery entry's UKI %s: %m"), o->recovery_uki);
                if (!S_ISREG(st.st_mode))
                        return error_setf(-EINVAL, _("The recovery entry's UKI %s is not a regular file."), o->recovery_uki);
                p->recovery_uki = strdup(o->recovery_uki);
                if (!p->recovery_uki)
                        return -ENOMEM;
                p->recovery_uki_size = (uint64_t) st.st_size;
        }
        if (o->source) {
                int os_part;

                r = plan_source_copy(o->source, &p->source);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < o->source->n_partitions; i++) {
                        if (o->source->partitions[i].role == ROLE_ROOT)
                                source_root = (int) i;
                        for (size_t k = 0; k < ELEMENTSOF(usr_slot_roles); k++)
                                if (usr_image && o->source->partitions[i].role == usr_slot_roles[k] && slot_src[k] < 0)
                                        slot_src[k] = (int) i;
                }
                if (usr_image && source_root >= 0)
                        return error_setf(-EINVAL, _("The image %s has a root partition, so it is not a usr image."), o->source->path);
                if (usr_image && slot_src[0] < 0)
                        return error_setf(-EINVAL, _("The image %s has no usr partition."), o->source->path);
                if (!usr_image && source_root < 0)
                        return error_setf(-EINVAL, _("The image %s has no root partition."), o->source->path);
                if (usr_image && o->account && o->account->kind == ACCOUNT_CLASSIC)
                        return error_setf(-EOPNOTSUPP,
                                          /* TRANSLATORS: the first %s is a sentence saying why the account would be classic; then the image. */
                                          _("%s But the image %s brings no root filesystem (only /usr), and its root starts empty, so a classic "
                                            "user cannot be created in it. Install without an account, or where a systemd-homed account can "
                                            "be made (a disk of this computer with a usable TPM2)."),
                                          o->account->note ?: "", o->source->path);
                os_part = usr_image ? slot_src[0] : source_root;
                {
                        const DpsType *t = dps_type_from_uuid(o->source->partitions[os_part].type_uuid);
                        if (o->arch >= 0 && t->arch != o->arch)
                                return error_setf(-EINVAL, _("The image %s is for %s, not %s."), o->source->path,
                                                  architecture_to_string(t->arch), architecture_to_string(o->arch));
                        p->arch = t->arch;
                }
        }
        p->target_kind = d->kind;
        p->sector_size = d->logical_sector_size ?: 512;
        /* A relative image path would mean something else when the plan file is used elsewhere. */
        p->target = d->kind == DISK_IMAGE_FILE ? realpath(d->path, NULL) : NULL;
        if (!p->target)
                p->target = strdup(d->path);
        p->target_name = strdup(d->name);
        p->seed = strdup_safe(o->seed);
        if (!p->target || !p->target_name || (o->seed && !p->seed))
                return -ENOMEM;
        r = describe_disk(d, &p->target_description);
        if (r < 0)
                return r;
        r = plan_fingerprint_from_disk(d, &p->fingerprint);
        if (r < 0)
                return r;

        if (p->sector_size != 512 && p->sector_size != 4096)
                return error_setf(-EOPNOTSUPP, _("%s has %" PRIu64 "-byte sectors; imprint supports 512 and 4096."), d->path,
                                  p->sector_size);

        if (p->mode == PLAN_ERASE) {
                region = (Region) { PLAN_GPT_RESERVED, usable_end(d->size, p->sector_size) };
                if (region.end < region.start)
                        region.end = region.start;
                for (size_t i = 0; i < d->n_partitions; i++) {
                        r = plan_add_doomed(p, &d->partitions[i]);
                        if (r < 0)
                                return r;
                }
                r = plan_make_uuid(p, "disk", &p->disk_uuid);
                if (r < 0)
                        return r;
        } else {
                if (d->pttype && streq(d->pttype, "dos"))
                        return error_setf(-EOPNOTSUPP,
                                          _("%s has an MBR %s partition table; keeping existing partitions needs GPT. "
                                            "Erase the disk instead (mode \"erase\")."),
                                          d->path, d->pttype);
                if (d->pttype && !streq(d->pttype, "gpt"))
                        return error_setf(-EOPNOTSUPP,
                                          /* TRANSLATORS: the disk, then the type of its partition table (sun, bsd, …). */
                                          _("%s has a %s partition table; keeping existing partitions needs GPT. "
                                            "Erase the disk instead (mode \"erase\")."),
                                          d->path, d->pttype);
                r = refuse_conflicts(p, d, o);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < d->n_partitions; i++)
                        if (left_by_interrupted_install(&d->partitions[i])) {
                                r = plan_add_doomed(p, &d->partitions[i]);
                                if (r < 0)
                                        return r;
                        }
                r = find_largest_free_region(d, &region);
                if (r < 0)
                        return r;
                if (d->ptuuid)
                        r = uuid_parse(d->ptuuid, &p->disk_uuid);
                else
                        r = plan_make_uuid(p, "disk", &p->disk_uuid);
                if (r < 0)
                        return error_setf(r, _("Cannot read the disk GUID of %s."), d->path);
                existing_esp = disk_find_role(d, ROLE_ESP, p->arch);
                existing_xbootldr = disk_find_role(d, ROLE_XBOOTLDR, p->arch);
        }
        p->free_start = region.start;
        p->free_size = region.end - region.start;

        /* Boot partitions. An existing ESP is shared, never reformatted (it holds the other
         * systems' loaders); when it is too small for UKIs, they go to an XBOOTLDR partition. */
        create_esp = !existing_esp;
        if (create_esp) {
                if (o->esp.kind != SIZE_FIXED)
                        return error_setf(-EINVAL, _("The ESP needs a fixed size."));
                esp_size = ROUND_UP(o->esp.bytes, PLAN_ALIGNMENT);
                if (esp_size < PLAN_ESP_SIZE_MIN)
                        return error_setf(-EINVAL, _("An ESP of %s is too small: FAT32 needs at least %s."), FORMAT_BYTES(esp_size),
                                          FORMAT_BYTES(PLAN_ESP_SIZE_MIN));
        } else if (!existing_xbootldr && existing_esp->size < PLAN_ESP_UKI_MIN + p->recovery_uki_size) {
                /* The recovery entry counts like another UKI: a kept ESP too small for it and
                 * the image's UKIs gets an XBOOTLDR partition beside it. */
                create_xbootldr = true;
                if (o->xbootldr.kind != SIZE_FIXED)
                        return error_setf(-EINVAL, _("The XBOOTLDR partition needs a fixed size."));
                xbootldr_size = ROUND_UP(o->xbootldr.bytes, PLAN_ALIGNMENT);
                if (xbootldr_size < PLAN_ESP_SIZE_MIN)
                        return error_setf(-EINVAL, _("An XBOOTLDR partition of %s is too small: FAT32 needs at least %s."),
                                          FORMAT_BYTES(xbootldr_size), FORMAT_BYTES(PLAN_ESP_SIZE_MIN));
        }
        if (p->recovery_uki_size > 0) {
                uint64_t boot_size = create_xbootldr ? xbootldr_size
                                   : existing_xbootldr ? existing_xbootldr->size
                                   : create_esp ? esp_size : existing_esp->size;

                /* The UKIs, the recovery entry and room for one more version of each. */
                if (p->recovery_uki_size + PLAN_ESP_UKI_MIN / 4 > boot_size)
                        return error_setf(-ENOSPC, _("The recovery entry's UKI (%s) does not fit on $BOOT (%s) beside the image's UKIs."),
                                          FORMAT_BYTES(p->recovery_uki_size), FORMAT_BYTES(boot_size));
        }
        if (o->swap.kind == SIZE_REST)
                return error_setf(-EINVAL, _("Swap needs a fixed size."));
        if (o->swap.kind == SIZE_FIXED) {
                swap_size = ROUND_UP(o->swap.bytes, PLAN_ALIGNMENT);
                if (swap_size < PLAN_SWAP_SIZE_MIN)
                        return error_setf(-EINVAL, _("Swap of %s is too small."), FORMAT_BYTES(swap_size));
        }
        if (home.kind == SIZE_FIXED) {
                home.bytes = ROUND_UP(home.bytes, PLAN_ALIGNMENT);
                if (home.bytes < PLAN_HOME_SIZE_MIN)
                        return error_setf(-EINVAL, _("A home partition of %s is too small; it needs at least %s."),
                                          FORMAT_BYTES(home.bytes), FORMAT_BYTES(PLAN_HOME_SIZE_MIN));
        }
        if (source_root >= 0) {
                const PlanSourcePartition *sr = &o->source->partitions[source_root];

                /* The image's root must fit; a filesystem that cannot grow gets exactly its size. */
                /* The default minimum is for plans without an image; with one, its root decides. */
                root_min = MAX(o->root_min, sr->size + (encrypt ? PLAN_LUKS_HEADER_SIZE : 0));
                if (!fs_is_growable(sr->fstype) || (sr->flags & DPS_FLAG_READ_ONLY)) {
                        if (root.kind == SIZE_FIXED && ROUND_UP(root.bytes, PLAN_ALIGNMENT) != ROUND_UP(sr->size, PLAN_ALIGNMENT))
                                return error_setf(-EINVAL, _("The image's root filesystem (%s) cannot grow; --root-size cannot change it."),
                                                  sr->fstype ?: "unknown");
                        root = (SizeRequest) { SIZE_FIXED, ROUND_UP(sr->size, PLAN_ALIGNMENT) };
                }
                for (size_t i = 0; i < o->source->n_partitions; i++)
                        if ((int) i != source_root)
                                copies_size += ROUND_UP(o->source->partitions[i].size, PLAN_ALIGNMENT);
        }
        if (usr_image) {
                /* Each usr-ish partition twice: the A slot (the image's, copied) and the B slot
                 * (empty), both as large as the image's repart.d wants its slots, so that every
                 * later version fits either. */
                for (size_t k = 0; k < ELEMENTSOF(usr_slot_roles); k++) {
                        const PlanSourcePartition *sp;

                        if (slot_src[k] < 0)
                                continue;
                        sp = &o->source->partitions[slot_src[k]];
                        slot_size[k] = ROUND_UP(MAX(sp->slot_size, sp->size), PLAN_ALIGNMENT);
                        slots_size += 2 * slot_size[k];
                }
                copies_size = slots_size;
                for (size_t i = 0; i < o->source->n_partitions; i++)
                        if (!role_is_usr_slot(o->source->partitions[i].role))
                                copies_size += ROUND_UP(o->source->partitions[i].size, PLAN_ALIGNMENT);
        }
        root_min = ROUND_UP(root_min, PLAN_ALIGNMENT);
        if (root.kind == SIZE_FIXED) {
                root.bytes = ROUND_UP(root.bytes, PLAN_ALIGNMENT);
                if (root.bytes < root_min)
                        return error_setf(-EINVAL, _("A root partition of %s is too small: it needs at least %s."),
                                          FORMAT_BYTES(root.bytes), FORMAT_BYTES(root_min));
        }

        fixed = esp_size + xbootldr_size + swap_size + copies_size;
        /* What the layout needs, item by item, for the message when it does not fit. */
        detail[0] = 0;
        if (create_esp)
                /* TRANSLATORS: an item of what a layout needs, %s is a size. */
                detail_add(detail, sizeof(detail), _("ESP %s"), FORMAT_BYTES(esp_size));
        if (create_xbootldr)
                detail_add(detail, sizeof(detail), _("XBOOTLDR %s"), FORMAT_BYTES(xbootldr_size));
        if (swap_size)
                detail_add(detail, sizeof(detail), _("swap %s"), FORMAT_BYTES(swap_size));
        if (slots_size)
                /* TRANSLATORS: an item of what a layout needs, %s is a size. */
                detail_add(detail, sizeof(detail), _("/usr slots A and B of the image %s"), FORMAT_BYTES(slots_size));
        if (copies_size > slots_size)
                detail_add(detail, sizeof(detail), _("/usr and verity partitions of the image %s"), FORMAT_BYTES(copies_size - slots_size));

        /* With home taking the rest, root gets a default size unless the user gave one: 32 GiB,
         * or half the space on small disks, never less than the image needs. */
        if (root.kind == SIZE_NONE && home.kind != SIZE_REST)
                root = (SizeRequest) { SIZE_REST, 0 };
        else if (root.kind == SIZE_NONE) {
                uint64_t avail = region.end - region.start > fixed ? region.end - region.start - fixed : 0;
                uint64_t def = PLAN_ROOT_SIZE_WITH_HOME_DEFAULT;

                if (avail < def + PLAN_HOME_SIZE_MIN)
                        def = ROUND_DOWN(avail / 2, PLAN_ALIGNMENT);
                root = (SizeRequest) { SIZE_FIXED, MAX(def, root_min) };
        }

        {
                uint64_t need = fixed + (root.kind == SIZE_FIXED ? root.bytes : root_min) +
                                (home.kind == SIZE_FIXED ? home.bytes : home.kind == SIZE_REST ? PLAN_HOME_SIZE_MIN : 0);
                char more[1024];

                snprintf(more, sizeof(more), "%s", detail);
                if (root.kind == SIZE_FIXED)
                        detail_add(more, sizeof(more), _("root %s"), FORMAT_BYTES(root.bytes));
                else
                        detail_add(more, sizeof(more), _("root at least %s"), FORMAT_BYTES(root_min));
                if (home.kind == SIZE_FIXED)
                        detail_add(more, sizeof(more), _("home %s"), FORMAT_BYTES(home.bytes));
                else if (home.kind == SIZE_REST)
                        detail_add(more, sizeof(more), _("home at least %s"), FORMAT_BYTES(PLAN_HOME_SIZE_MIN));
                if (region.end <= region.start || need > region.end - region.start)
                        return too_small(p, d, &region, need, more);

                rest = region.end - region.start - need;
        }

        /* Lay out in order: ESP, XBOOTLDR, swap, root, home. The partition that takes the rest
         * gets everything left over; without one, the rest stays free. */
        cursor = region.start;
        if (create_esp) {
                r = plan_add(p, ROLE_ESP, ACTION_CREATE, cursor, esp_size);
                if (r < 0)
                        return r;
                cursor += esp_size;
        } else {
                r = plan_add(p, ROLE_ESP, ACTION_KEEP, existing_esp->start, existing_esp->size);
                if (r < 0)
                        return r;
        }
        if (create_xbootldr) {
                r = plan_add(p, ROLE_XBOOTLDR, ACTION_CREATE, cursor, xbootldr_size);
                if (r < 0)
                        return r;
                cursor += xbootldr_size;
        } else if (existing_xbootldr) {
                r = plan_add(p, ROLE_XBOOTLDR, ACTION_KEEP, existing_xbootldr->start, existing_xbootldr->size);
                if (r < 0)
                        return r;
        }
        if (swap_size > 0) {
                r = plan_add(p, ROLE_SWAP, ACTION_CREATE, cursor, swap_size);
                if (r < 0)
                        return r;
                cursor += swap_size;
        }
        /* A usr image: the A slot (usr, usr-verity, usr-verity-sig, copied), then the B slot
         * (empty), in the order systemd-repart lays out the image's own repart.d. */
        for (size_t k = 0; usr_image && k < ELEMENTSOF(usr_slot_roles); k++) {
                if (slot_src[k] < 0)
                        continue;
                r = plan_add_copy(p, usr_slot_roles[k], ACTION_CREATE, cursor, slot_size[k], slot_src[k]);
                if (r < 0)
                        return r;
                cursor += slot_size[k];
        }
        for (size_t k = 0; usr_image && k < ELEMENTSOF(usr_slot_roles); k++) {
                if (slot_src[k] < 0)
                        continue;
                r = plan_add_empty_slot(p, &p->source->partitions[slot_src[k]], cursor, slot_size[k]);
                if (r < 0)
                        return r;
                cursor += slot_size[k];
        }
        /* The image's other OS partitions (usr, verity, signatures) keep their sizes and sit
         * before root, so that root (or home after it) can take the rest. */
        for (size_t i = 0; p->source && i < p->source->n_partitions; i++) {
                const PlanSourcePartition *sp = &p->source->partitions[i];
                uint64_t sz = ROUND_UP(sp->size, PLAN_ALIGNMENT);

                if ((int) i == source_root || (usr_image && role_is_usr_slot(sp->role)))
                        continue;
                r = plan_add_copy(p, sp->role, ACTION_CREATE, cursor, sz, (int) i);
                if (r < 0)
                        return r;
                cursor += sz;
        }
        {
                uint64_t s = root.kind == SIZE_FIXED ? root.bytes : root_min + rest;
                r = plan_add_copy(p, ROLE_ROOT, ACTION_CREATE, cursor, s, source_root);
                if (r < 0)
                        return r;
                cursor += s;
        }
        if (home.kind != SIZE_NONE) {
                uint64_t s = home.kind == SIZE_FIXED ? home.bytes : PLAN_HOME_SIZE_MIN + rest;
                r = plan_add(p, ROLE_HOME, ACTION_CREATE, cursor, s);
                if (r < 0)
                        return r;
                cursor += s;
        }
        if (cursor > region.end)
                return error_setf(-EINVAL, "Internal error: the layout overruns its region."); /* cannot happen */

        /* Keep: copy the identity of reused partitions from the disk. */
        for (size_t i = 0; i < p->n_partitions; i++) {
                PlanPartition *pp = &p->partitions[i];
                const DiskPartition *src = pp->role == ROLE_ESP ? existing_esp : pp->role == ROLE_XBOOTLDR ? existing_xbootldr : NULL;

                if (pp->action == ACTION_KEEP && src) {
                        pp->partno = src->partno;
                        pp->type_uuid = src->type_uuid;
                        pp->uuid = src->uuid;
                        pp->flags = src->flags;
                        pp->label = strdup_safe(src->label);
                        pp->fstype = strdup_safe(src->fstype);
                        pp->fslabel = strdup_safe(src->fslabel);
                }
        }
        for (size_t i = 0; i < p->n_partitions; i++) {
                r = plan_finish_partition(p, d, &p->partitions[i], o);
                if (r < 0)
                        return r;
        }

        log_debug("planned %zu partitions on %s", p->n_partitions, p->target);
        *ret = TAKE_PTR(p);
        return 0;
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static const struct {
        uint64_t bit;
        const char *name;
} flag_names[] = {
        { UINT64_C(1) << 0, "required" },
        { DPS_FLAG_NO_BLOCK_IO_PROTOCOL, "no-block-io-protocol" },
        { UINT64_C(1) << 2, "legacy-bios-bootable" },
        { DPS_FLAG_GROWFS, "growfs" },
        { DPS_FLAG_READ_ONLY, "read-only" },
        { DPS_FLAG_NO_AUTO, "no-auto" },
};

json_object *gpt_flags_to_json(uint64_t flags) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < ELEMENTSOF(flag_names); i++)
                if (flags & flag_names[i].bit)
                        json_object_array_add(a, json_object_new_string(flag_names[i].name));
        return a;
}

static void format_flags(uint64_t flags, char *buf, size_t len) {
        buf[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(flag_names); i++)
                if (flags & flag_names[i].bit) {
                        size_t l = strlen(buf);
                        snprintf(buf + l, len - l, "%s%s", l ? "," : "", flag_names[i].name);
                }
}

static json_object *json_string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static json_object *json_uuid(sd_id128_t id) {
        return json_object_new_string(SD_ID128_TO_UUID_STRING(id));
}

int plan_partition_table(const Plan *p, Table **ret) {
        static const struct {
                const char *header, *key;
                TableAlign align;
                size_t min, gap;
        } columns[_PLAN_COLUMN_MAX] = {
                /* The widths the table had before it was a Table, which scripts and the golden
                 * screens of the full-screen installer know. */
                [PLAN_COLUMN_PARTNO] = { "#", "partno", TABLE_LEFT, 3, 1 },
                [PLAN_COLUMN_ROLE] = { "ROLE", "role", TABLE_LEFT, 9, 1 },
                [PLAN_COLUMN_ACTION_KEY] = { NULL, "action", TABLE_LEFT, 0, 1 },
                [PLAN_COLUMN_ACTION] = { "ACTION", NULL, TABLE_LEFT, 7, 1 },
                [PLAN_COLUMN_START] = { "START", "start", TABLE_RIGHT, 10, 1 },
                [PLAN_COLUMN_SIZE] = { "SIZE", "size", TABLE_RIGHT, 10, 2 },
                [PLAN_COLUMN_TYPE_UUID] = { NULL, "typeUuid", TABLE_LEFT, 0, 1 },
                [PLAN_COLUMN_TYPE_NAME] = { NULL, "typeName", TABLE_LEFT, 0, 1 },
                [PLAN_COLUMN_TYPE] = { "TYPE", NULL, TABLE_LEFT, 13, 1 },
                [PLAN_COLUMN_UUID] = { NULL, "uuid", TABLE_LEFT, 0, 1 },
                [PLAN_COLUMN_LABEL] = { "LABEL", "label", TABLE_LEFT, 16, 1 },
                [PLAN_COLUMN_FLAGS_VALUE] = { NULL, "flags", TABLE_LEFT, 0, 1 },
                [PLAN_COLUMN_FLAG_NAMES] = { NULL, "flagNames", TABLE_LEFT, 0, 1 },
                [PLAN_COLUMN_FSTYPE] = { NULL, "fstype", TABLE_LEFT, 0, 1 },
                [PLAN_COLUMN_FS] = { "FS", NULL, TABLE_LEFT, 6, 1 },
                [PLAN_COLUMN_FLAGS] = { "FLAGS", NULL, TABLE_LEFT, 0, 1 },
                [PLAN_COLUMN_FS_LABEL] = { NULL, "fsLabel", TABLE_LEFT, 0, 1 },
                [PLAN_COLUMN_COPY_FROM] = { NULL, "copyFrom", TABLE_LEFT, 0, 1 },
                [PLAN_COLUMN_ENCRYPT] = { NULL, "encrypt", TABLE_LEFT, 0, 1 },
                [PLAN_COLUMN_LUKS_UUID] = { NULL, "luksUuid", TABLE_LEFT, 0, 1 },
        };
        _cleanup_(table_freep) Table *t = table_new();
        int r = 0;

        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < _PLAN_COLUMN_MAX; i++) {
                r = table_add_column(t, columns[i].header, columns[i].key, columns[i].align);
                if (r < 0)
                        return r;
                table_set_width(t, i, columns[i].min, 0);
                table_set_gap(t, i, columns[i].gap);
        }
        for (size_t i = 0; i < p->n_partitions && r >= 0; i++) {
                const PlanPartition *pp = &p->partitions[i];
                const char *copied = pp->copy_from >= 0 && p->source ? p->source->partitions[pp->copy_from].fstype ?: "?" : "?";
                char flags[128];

                format_flags(pp->flags, flags, sizeof(flags));
                if ((r = table_add_unsigned(t, pp->partno)) < 0 || (r = table_add_string(t, partition_role_to_string(pp->role))) < 0 ||
                    (r = table_add_string(t, partition_action_to_string(pp->action))) < 0 ||
                    (r = table_add_string(t, pp->copy_from >= 0 ? "copy" : partition_action_to_string(pp->action))) < 0 ||
                    (r = table_add_size(t, pp->start)) < 0 || (r = table_add_size(t, pp->size)) < 0 ||
                    (r = table_add_string(t, SD_ID128_TO_UUID_STRING(pp->type_uuid))) < 0 ||
                    (r = table_add_string(t, dps_type_name(pp->type_uuid))) < 0 ||
                    (r = table_add_string(t, dps_type_name(pp->type_uuid) ?: "?")) < 0 ||
                    (r = table_add_string(t, SD_ID128_TO_UUID_STRING(pp->uuid))) < 0 || (r = table_add_string(t, pp->label)) < 0 ||
                    /* The plan file has always held the flags as a signed 64-bit number. */
                    (r = table_add_json(t, json_object_new_int64((int64_t) pp->flags))) < 0 ||
                    (r = table_add_json(t, gpt_flags_to_json(pp->flags))) < 0 || (r = table_add_string(t, pp->fstype)) < 0 ||
                    (r = table_add_string(t, pp->copy_from >= 0 ? copied : (pp->fstype ?: "-"))) < 0 ||
                    (r = table_add_string(t, flags[0] ? flags : "-")) < 0 || (r = table_add_string(t, pp->fslabel)) < 0 ||
                    (r = pp->copy_from >= 0 ? table_add_unsigned(t, (uint64_t) pp->copy_from) : table_add_null(t)) < 0 ||
                    (r = table_add_boolean(t, pp->encrypt)) < 0 ||
                    (r = pp->encrypt ? table_add_string(t, SD_ID128_TO_UUID_STRING(pp->luks_uuid)) : table_add_null(t)) < 0)
                        return r;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

json_object *plan_to_json(const Plan *p) {
        _cleanup_(table_freep) Table *table = NULL;
        json_object *j = json_object_new_object(), *t = json_object_new_object(), *parts = NULL,
                    *doomed = json_object_new_array(), *fp = json_object_new_object();

        if (plan_partition_table(p, &table) >= 0)
                parts = table_to_json(table);
        if (!j || !t || !parts || !doomed || !fp) {
                json_object_put(j), json_object_put(t), json_object_put(parts), json_object_put(doomed), json_object_put(fp);
                return NULL;
        }

        json_object_object_add(j, "version", json_object_new_int(PLAN_FORMAT_VERSION));
        json_object_object_add(j, "mode", json_object_new_string(plan_mode_to_string(p->mode)));
        json_object_object_add(j, "architecture", json_object_new_string(architecture_to_string(p->arch)));

        json_object_object_add(t, "path", json_object_new_string(p->target));
        json_object_object_add(t, "name", json_object_new_string(p->target_name));
        json_object_object_add(t, "kind", json_object_new_string(disk_kind_to_string(p->target_kind)));
        json_object_object_add(t, "description", json_string_or_null(p->target_description));
        json_object_object_add(t, "sectorSize", json_object_new_int64((int64_t) p->sector_size));
        json_object_object_add(fp, "size", json_object_new_int64((int64_t) p->fingerprint.size));
        json_object_object_add(fp, "diskseq", p->fingerprint.diskseq ? json_object_new_int64((int64_t) p->fingerprint.diskseq) : NULL);
        json_object_object_add(fp, "sectorSize", json_object_new_int64(p->fingerprint.sector_size));
        json_object_object_add(fp, "partitionTable", json_string_or_null(p->fingerprint.pttype));
        json_object_object_add(fp, "partitionTableUuid", json_string_or_null(p->fingerprint.ptuuid));
        json_object_object_add(fp, "partitions", json_object_new_string(p->fingerprint.partitions ?: ""));
        json_object_object_add(t, "fingerprint", fp);
        json_object_object_add(j, "target", t);

        json_object_object_add(j, "diskUuid", json_uuid(p->disk_uuid));
        json_object_object_add(j, "seed", json_string_or_null(p->seed));
        json_object_object_add(j, "freeStart", json_object_new_int64((int64_t) p->free_start));
        json_object_object_add(j, "freeSize", json_object_new_int64((int64_t) p->free_size));

        /* Reset plans say per partition whether it is erased first; other plans' files stay as
         * they were. */
        for (size_t i = 0; p->mode == PLAN_RESET && i < p->n_partitions && i < json_object_array_length(parts); i++)
                json_object_object_add(json_object_array_get_idx(parts, i), "erase", json_object_new_boolean(p->partitions[i].erase));
        json_object_object_add(j, "partitions", parts);

        for (size_t i = 0; i < p->n_doomed; i++) {
                const PlanDoomed *dd = &p->doomed[i];
                json_object *e = json_object_new_object();

                json_object_object_add(e, "partno", json_object_new_int((int) dd->partno));
                json_object_object_add(e, "start", json_object_new_int64((int64_t) dd->start));
                json_object_object_add(e, "size", json_object_new_int64((int64_t) dd->size));
                json_object_object_add(e, "typeName", json_string_or_null(dd->type_name));
                json_object_object_add(e, "label", json_string_or_null(dd->label));
                json_object_object_add(e, "fstype", json_string_or_null(dd->fstype));
                json_object_object_add(e, "os", json_string_or_null(dd->os));
                json_object_array_add(doomed, e);
        }
        json_object_object_add(j, "destroyed", doomed);

        {
                const PlanEncryption *en = &p->encryption;
                json_object *e = json_object_new_object();

                json_object_object_add(e, "enabled", json_object_new_boolean(en->enabled));
                json_object_object_add(e, "tpm2", json_object_new_boolean(en->tpm2));
                json_object_object_add(e, "tpm2Tcti", json_string_or_null(en->tpm2_tcti));
                json_object_object_add(e, "tpm2Pcrs", json_object_new_int64(en->tpm2_pcrs));
                json_object_object_add(e, "tpm2PublicKeyPcrs", json_object_new_int64(en->tpm2_pubkey_pcrs));
                json_object_object_add(e, "tpm2PublicKey", json_string_or_null(en->tpm2_pubkey));
                json_object_object_add(e, "tpm2Pin", json_object_new_boolean(en->tpm2_pin));
                json_object_object_add(e, "passphrase", json_object_new_boolean(en->passphrase));
                json_object_object_add(e, "recoveryKey", json_object_new_boolean(en->recovery_key));
                json_object_object_add(e, "note", json_string_or_null(en->note));
                json_object_object_add(j, "encryption", e);
        }
        if (p->account) {
                const PlanAccount *a = p->account;
                json_object *e = json_object_new_object();

                json_object_object_add(e, "userName", json_object_new_string(a->user_name));
                json_object_object_add(e, "realName", json_string_or_null(a->real_name));
                json_object_object_add(e, "storage", json_object_new_string(account_storage_to_string(a->storage)));
                json_object_object_add(e, "admin", json_object_new_boolean(a->admin));
                json_object_object_add(e, "autoLogin", json_object_new_boolean(a->auto_login));
                json_object_object_add(e, "kind", json_object_new_string(account_kind_to_string(a->kind)));
                json_object_object_add(e, "note", json_string_or_null(a->note));
                json_object_object_add(j, "account", e);
        } else
                json_object_object_add(j, "account", NULL);
        {
                json_object *e = json_object_new_object();

                json_object_object_add(e, "hostname", json_string_or_null(p->settings.hostname));
                json_object_object_add(e, "timezone", json_string_or_null(p->settings.timezone));
                json_object_object_add(e, "locale", json_string_or_null(p->settings.locale));
                json_object_object_add(e, "keymap", json_string_or_null(p->settings.keymap));
                json_object_object_add(j, "settings", e);
        }

        if (p->reset) {
                const PlanReset *rs = p->reset;
                json_object *e = json_object_new_object();

                json_object_object_add(e, "entryPoint", json_object_new_string(reset_entry_point_to_string(rs->entry_point)));
                json_object_object_add(e, "keepHome", json_object_new_boolean(rs->keep_home));
                json_object_object_add(e, "secureErase", json_object_new_boolean(rs->secure_erase));
                json_object_object_add(e, "tpmClear", json_object_new_boolean(rs->tpm_clear));
                json_object_object_add(e, "installedAt", json_string_or_null(rs->installed_at));
                json_object_object_add(e, "installedBy", json_string_or_null(rs->installed_by));
                json_object_object_add(e, "imageVersion", json_string_or_null(rs->image_version));
                json_object_object_add(e, "accountNote", json_string_or_null(rs->account_note));
                json_object_object_add(j, "reset", e);
        }
        if (p->oem) {
                /* Only in OEM plans: what the customer's first boot will do (handoff.h). */
                const PlanOem *o = p->oem;
                json_object *e = json_object_new_object(), *asks = json_object_new_array();

                if (o->ask_locale)
                        json_object_array_add(asks, json_object_new_string("locale"));
                if (o->ask_keymap)
                        json_object_array_add(asks, json_object_new_string("keymap"));
                if (o->ask_timezone)
                        json_object_array_add(asks, json_object_new_string("timezone"));
                if (o->ask_hostname)
                        json_object_array_add(asks, json_object_new_string("hostname"));
                json_object_object_add(e, "firstbootAsks", asks);
                json_object_object_add(e, "account", json_object_new_string(handoff_account_to_string(o->account)));
                json_object_object_add(e, "newRecoveryKey", json_object_new_boolean(o->new_recovery_key));
                json_object_object_add(e, "unit", json_object_new_string(HANDOFF_UNIT));
                json_object_object_add(e, "marker", json_object_new_string(HANDOFF_MARKER));
                json_object_object_add(e, "note", json_string_or_null(o->note));
                json_object_object_add(j, "oem", e);
        }
        if (p->secure_boot.decided) {
                /* What Secure Boot means for this install (secureboot.h). */
                const PlanSecureBoot *sb = &p->secure_boot;
                json_object *e = json_object_new_object();

                json_object_object_add(e, "action", json_object_new_string(secure_boot_action_to_string(sb->action)));
                json_object_object_add(e, "firmwareMode", json_string_or_null(sb->firmware_mode));
                json_object_object_add(e, "firmware", json_string_or_null(sb->firmware));
                json_object_object_add(e, "chain", json_string_or_null(sb->chain));
                json_object_object_add(e, "reason", json_string_or_null(sb->reason));
                json_object_object_add(e, "keys", json_string_or_null(sb->keys));
                json_object_object_add(e, "shim", json_object_new_boolean(sb->shim));
                json_object_object_add(e, "allowedUnbootable", json_object_new_boolean(sb->allowed));
                json_object_object_add(e, "tpm2Reseal", json_object_new_boolean(sb->tpm2_reseal));
                json_object_object_add(e, "recoveryEntryRefused", json_object_new_boolean(sb->recovery_refused));
                json_object_object_add(e, "note", json_string_or_null(sb->note));
                json_object_object_add(j, "secureBoot", e);
        }
        if (p->recovery_uki) {
                json_object *e = json_object_new_object();

                json_object_object_add(e, "path", json_object_new_string(p->recovery_uki));
                /* The name it gets on $BOOT: the entry ID of systemctl reboot --boot-loader-entry=. */
                json_object_object_add(e, "entry", json_object_new_string(RECOVERY_ENTRY_FILE));
                json_object_object_add(e, "size", json_object_new_int64((int64_t) p->recovery_uki_size));
                json_object_object_add(j, "recoveryUki", e);
        } else if (p->source && p->mode != PLAN_RESET) {
                _cleanup_(freep) char *why = NULL;

                if (asprintf(&why, "no recovery entry: there is no recovery UKI at %s", recovery_entry_search_path()) >= 0)
                        json_object_object_add(j, "recoveryEntryNote", json_object_new_string(why));
        }

        if (p->source) {
                const PlanSource *src = p->source;
                json_object *so = json_object_new_object(), *sparts = json_object_new_array();

                /* Keys a classic image does not need are left out: its plan file stays as it was. */
                if (src->kind != PLAN_SOURCE_ROOT)
                        json_object_object_add(so, "kind", json_object_new_string(plan_source_kind_to_string(src->kind)));
                json_object_object_add(so, "path", json_object_new_string(src->path));
                json_object_object_add(so, "size", json_object_new_int64((int64_t) src->size));
                json_object_object_add(so, "fingerprint", json_string_or_null(src->fingerprint));
                json_object_object_add(so, "sha256", json_string_or_null(src->sha256));
                json_object_object_add(so, "sha256Origin", json_string_or_null(src->sha256_origin));
                json_object_object_add(so, "osName", json_string_or_null(src->os_name));
                json_object_object_add(so, "imageId", json_string_or_null(src->image_id));
                json_object_object_add(so, "imageVersion", json_string_or_null(src->image_version));
                if (src->root_fstype)
                        json_object_object_add(so, "rootFstype", json_object_new_string(src->root_fstype));
                if (src->home_fstype)
                        json_object_object_add(so, "homeFstype", json_object_new_string(src->home_fstype));
                if (src->note)
                        json_object_object_add(so, "note", json_object_new_string(src->note));
                if (src->streaming) {
                        json_object *st = json_object_new_object();

                        json_object_object_add(st, "compression", json_string_or_null(src->compression));
                        json_object_object_add(st, "partition", json_object_new_int64((int64_t) src->partitions[src->streamed].partno));
                        json_object_object_add(st, "contentPending", json_object_new_boolean(src->content_pending));
                        json_object_object_add(so, "stream", st);
                }
                for (size_t i = 0; i < src->n_partitions; i++) {
                        const PlanSourcePartition *sp = &src->partitions[i];
                        json_object *e = json_object_new_object();

                        json_object_object_add(e, "role", json_object_new_string(partition_role_to_string(sp->role)));
                        json_object_object_add(e, "partno", json_object_new_int((int) sp->partno));
                        json_object_object_add(e, "start", json_object_new_int64((int64_t) sp->start));
                        json_object_object_add(e, "size", json_object_new_int64((int64_t) sp->size));
                        json_object_object_add(e, "typeUuid", json_uuid(sp->type_uuid));
                        json_object_object_add(e, "uuid", json_uuid(sp->uuid));
                        json_object_object_add(e, "label", json_string_or_null(sp->label));
                        json_object_object_add(e, "flags", json_object_new_int64((int64_t) sp->flags));
                        json_object_object_add(e, "fstype", json_string_or_null(sp->fstype));
                        if (sp->install_label)
                                json_object_object_add(e, "installLabel", json_object_new_string(sp->install_label));
                        if (sp->slot_size)
                                json_object_object_add(e, "slotSize", json_object_new_int64((int64_t) sp->slot_size));
                        json_object_array_add(sparts, e);
                }
                json_object_object_add(so, "partitions", sparts);
                {
                        json_object *ents = json_object_new_array();
                        for (size_t i = 0; i < src->n_entries; i++) {
                                json_object *e = json_object_new_object();
                                json_object_object_add(e, "file", json_string_or_null(src->entries[i].file));
                                json_object_object_add(e, "title", json_string_or_null(src->entries[i].title));
                                json_object_object_add(e, "version", json_string_or_null(src->entries[i].version));
                                json_object_object_add(e, "uname", json_string_or_null(src->entries[i].uname));
                                if (src->entries[i].install_as)
                                        json_object_object_add(e, "installAs", json_object_new_string(src->entries[i].install_as));
                                if (src->entries[i].install_as &&
                                    (src->entries[i].install_on == ROLE_ESP || src->entries[i].install_on == ROLE_XBOOTLDR))
                                        json_object_object_add(e, "installOn",
                                                               json_object_new_string(partition_role_to_string(src->entries[i].install_on)));
                                json_object_array_add(ents, e);
                        }
                        json_object_object_add(so, "bootEntries", ents);
                }
                json_object_object_add(j, "source", so);
        } else
                json_object_object_add(j, "source", NULL);
        return j;
}

/* Small typed getters that fail with a message naming the field. */
static int get_field(json_object *o, const char *key, json_type type, bool nullable, json_object **ret) {
        json_object *v = NULL;

        if (!json_object_object_get_ex(o, key, &v) || !v) {
                if (nullable) {
                        *ret = NULL;
                        return 0;
                }
                return error_setf(-EINVAL, "Plan file: field \"%s\" is missing.", key);
        }
        if (!json_object_is_type(v, type))
                return error_setf(-EINVAL, "Plan file: field \"%s\" has the wrong type (expected %s).", key,
                                  json_type_to_name(type));
        *ret = v;
        return 0;
}

static int get_string(json_object *o, const char *key, bool nullable, char **ret) {
        json_object *v;
        int r = get_field(o, key, json_type_string, nullable, &v);

        if (r < 0)
                return r;
        *ret = v ? strdup(json_object_get_string(v)) : NULL;
        return v && !*ret ? -ENOMEM : 0;
}

static int get_u64(json_object *o, const char *key, bool nullable, uint64_t *ret) {
        json_object *v;
        int r = get_field(o, key, json_type_int, nullable, &v);

        if (r < 0)
                return r;
        if (!v) {
                *ret = 0;
                return 0;
        }
        if (json_object_get_int64(v) < 0)
                return error_setf(-EINVAL, "Plan file: field \"%s\" is negative.", key);
        *ret = (uint64_t) json_object_get_int64(v);
        return 0;
}

static int get_uuid(json_object *o, const char *key, sd_id128_t *ret) {
        _cleanup_(freep) char *s = NULL;
        int r = get_string(o, key, false, &s);

        if (r < 0)
                return r;
        if (uuid_parse(s, ret) < 0)
                return error_setf(-EINVAL, "Plan file: field \"%s\" is not a UUID: %s", key, s);
        return 0;
}

/* A loaded plan is input like any other: check that it describes a sane GPT layout before the
 * executor ever sees it. */
static int plan_validate(const Plan *p) {
        uint64_t end = usable_end(p->fingerprint.size, p->sector_size);

        if (p->n_partitions == 0)
                return error_setf(-EINVAL, "Plan file: no partitions.");
        if (!plan_find_role(p, ROLE_ROOT) || !plan_find_role(p, ROLE_ESP))
                return error_setf(-EINVAL, "Plan file: a plan needs an ESP and a root partition.");

        for (size_t i = 0; i < p->n_partitions; i++) {
                const PlanPartition *a = &p->partitions[i];
                const DpsType *t = dps_type_from_uuid(a->type_uuid);

                if (a->partno < 1 || a->partno > 128)
                        return error_setf(-EINVAL, "Plan file: partition number %u is out of range.", a->partno);
                if (a->size == 0 || a->start % p->sector_size || a->size % p->sector_size)
                        return error_setf(-EINVAL, "Plan file: partition %u is not sector-aligned.", a->partno);
                if (a->start < PLAN_GPT_RESERVED / 32 || a->start + a->size > end)
                        return error_setf(-EINVAL, "Plan file: partition %u lies outside the usable area of the disk.", a->partno);
                if (a->action == ACTION_CREATE && (!t || t->role != a->role))
                        return error_setf(-EINVAL, "Plan file: partition %u has type %s, which is not a %s partition type.", a->partno,
                                          SD_ID128_TO_UUID_STRING(a->type_uuid), partition_role_to_string(a->role));
                if (a->action == ACTION_CREATE && !a->fstype && a->copy_from < 0 && !role_is_usr_slot(a->role))
                        return error_setf(-EINVAL, "Plan file: partition %u is created, but neither formatted nor copied.", a->partno);
                if (a->action == ACTION_CREATE && a->fstype && fs_lookup(a->fstype) < 0)
                        return error_setf(-EINVAL, "Plan file: partition %u has an unsupported filesystem \"%s\".", a->partno, a->fstype);
                if (a->copy_from >= 0) {
                        const PlanSourcePartition *sp;

                        if (!p->source || (size_t) a->copy_from >= p->source->n_partitions)
                                return error_setf(-EINVAL, "Plan file: partition %u copies from a source partition that does not exist.", a->partno);
                        sp = &p->source->partitions[a->copy_from];
                        if (sp->size > a->size)
                                return error_setf(-EINVAL, "Plan file: partition %u (%s) is smaller than the image partition it copies (%s).",
                                                  a->partno, FORMAT_BYTES(a->size), FORMAT_BYTES(sp->size));
                        if (sp->start + sp->size > p->source->size)
                                return error_setf(-EINVAL, "Plan file: image partition %u lies beyond the end of the image.", sp->partno);
                }
                if (a->action == ACTION_REENROLL && (p->mode != PLAN_RESET || a->role != ROLE_HOME || !a->encrypt))
                        return error_setf(-EINVAL, "Plan file: partition %u is re-enrolled, which only a reset does to an encrypted home.", a->partno);
                if (a->erase && (p->mode != PLAN_RESET || a->action != ACTION_CREATE))
                        return error_setf(-EINVAL, "Plan file: partition %u is erased, which only a reset does to a partition it recreates.", a->partno);
                if (p->mode == PLAN_RESET && a->action == ACTION_CREATE && !a->erase)
                        return error_setf(-EINVAL, "Plan file: a reset recreates partition %u without erasing it first.", a->partno);
                if (a->encrypt && (!p->encryption.enabled || (a->role != ROLE_ROOT && a->role != ROLE_HOME) ||
                                   (a->action != ACTION_CREATE && a->action != ACTION_REENROLL) || p->target_kind != DISK_BLOCK))
                        return error_setf(-EINVAL, "Plan file: partition %u is marked encrypted, which this plan cannot do.", a->partno);
                if (a->encrypt && sd_id128_is_null(a->luks_uuid))
                        return error_setf(-EINVAL, "Plan file: encrypted partition %u has no LUKS UUID.", a->partno);
                if (a->encrypt && a->copy_from >= 0 && p->source->partitions[a->copy_from].size + PLAN_LUKS_HEADER_SIZE > a->size)
                        return error_setf(-EINVAL, "Plan file: encrypted partition %u (%s) has no room for the LUKS2 header beside the image partition.",
                                          a->partno, FORMAT_BYTES(a->size));
                if (!a->encrypt && p->encryption.enabled && a->action == ACTION_CREATE && (a->role == ROLE_ROOT || a->role == ROLE_HOME))
                        return error_setf(-EINVAL, "Plan file: encryption is on, but partition %u (%s) is not encrypted.", a->partno,
                                          partition_role_to_string(a->role));
                if (a->action == ACTION_KEEP && p->mode == PLAN_ERASE)
                        return error_setf(-EINVAL, "Plan file: partition %u is kept, but the plan erases the disk.", a->partno);
                for (size_t k = 0; k < i; k++) {
                        const PlanPartition *b = &p->partitions[k];
                        if (a->partno == b->partno)
                                return error_setf(-EINVAL, "Plan file: partition number %u is used twice.", a->partno);
                        if (a->encrypt && b->encrypt && sd_id128_equal(a->luks_uuid, b->luks_uuid))
                                return error_setf(-EINVAL, "Plan file: partitions %u and %u have the same LUKS UUID.", b->partno, a->partno);
                        if (a->start < b->start + b->size && b->start < a->start + a->size)
                                return error_setf(-EINVAL, "Plan file: partitions %u and %u overlap.", b->partno, a->partno);
                }
        }
        return 0;
}

static int plan_source_from_json(json_object *j, PlanSource **ret) {
        _cleanup_(plan_source_freep) PlanSource *s = NULL;
        json_object *so, *parts;
        int r;

        r = get_field(j, "source", json_type_object, true, &so);
        if (r < 0)
                return r;
        if (!so) {
                *ret = NULL;
                return 0;
        }
        s = calloc(1, sizeof(PlanSource));
        if (!s)
                return -ENOMEM;
        {
                _cleanup_(freep) char *kind = NULL;

                /* Plans of classic images have no "kind". */
                r = get_string(so, "kind", true, &kind);
                if (r < 0)
                        return r;
                s->kind = kind ? plan_source_kind_from_string(kind) : PLAN_SOURCE_ROOT;
                if (s->kind < 0)
                        return error_setf(-EINVAL, "Plan file: unknown source kind \"%s\".", kind);
        }
        if ((r = get_string(so, "rootFstype", true, &s->root_fstype)) < 0 || (r = get_string(so, "homeFstype", true, &s->home_fstype)) < 0 ||
            (r = get_string(so, "note", true, &s->note)) < 0)
                return r;
        if ((r = get_string(so, "path", false, &s->path)) < 0 || (r = get_u64(so, "size", false, &s->size)) < 0 ||
            (r = get_string(so, "fingerprint", true, &s->fingerprint)) < 0 || (r = get_string(so, "sha256", true, &s->sha256)) < 0 ||
            (r = get_string(so, "sha256Origin", true, &s->sha256_origin)) < 0 ||
            (r = get_string(so, "osName", true, &s->os_name)) < 0 || (r = get_string(so, "imageId", true, &s->image_id)) < 0 ||
            (r = get_string(so, "imageVersion", true, &s->image_version)) < 0 ||
            (r = get_field(so, "partitions", json_type_array, false, &parts)) < 0)
                return r;
        s->n_partitions = json_object_array_length(parts);
        s->partitions = calloc(s->n_partitions ?: 1, sizeof(PlanSourcePartition));
        if (!s->partitions)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_partitions; i++) {
                PlanSourcePartition *sp = &s->partitions[i];
                json_object *v = json_object_array_get_idx(parts, i);
                _cleanup_(freep) char *role = NULL;
                uint64_t partno;

                if (!json_object_is_type(v, json_type_object))
                        return error_setf(-EINVAL, "Plan file: source partition %zu is not an object.", i);
                if ((r = get_string(v, "role", false, &role)) < 0 || (r = get_u64(v, "partno", false, &partno)) < 0 ||
                    (r = get_u64(v, "start", false, &sp->start)) < 0 || (r = get_u64(v, "size", false, &sp->size)) < 0 ||
                    (r = get_uuid(v, "typeUuid", &sp->type_uuid)) < 0 || (r = get_uuid(v, "uuid", &sp->uuid)) < 0 ||
                    (r = get_string(v, "label", true, &sp->label)) < 0 || (r = get_u64(v, "flags", false, &sp->flags)) < 0 ||
                    (r = get_string(v, "fstype", true, &sp->fstype)) < 0 ||
                    (r = get_string(v, "installLabel", true, &sp->install_label)) < 0 ||
                    (r = get_u64(v, "slotSize", true, &sp->slot_size)) < 0)
                        return r;
                if (sp->install_label && (r = validate_partition_label(sp->install_label)) < 0)
                        return error_prefixf(r, "Plan file: source partition %zu", i);
                if (sp->slot_size && sp->slot_size < sp->size)
                        return error_setf(-EINVAL, "Plan file: source partition %zu has a slot smaller than itself.", i);
                sp->partno = (unsigned) MIN(partno, 1000);
                sp->role = partition_role_from_string(role);
                if (sp->role < 0)
                        return error_setf(-EINVAL, "Plan file: unknown source partition role \"%s\".", role);
        }
        {
                json_object *ents;
                r = get_field(so, "bootEntries", json_type_array, true, &ents);
                if (r < 0)
                        return r;
                s->n_entries = ents ? json_object_array_length(ents) : 0;
                s->entries = calloc(s->n_entries ?: 1, sizeof(PlanBootEntry));
                if (!s->entries)
                        return -ENOMEM;
                for (size_t i = 0; i < s->n_entries; i++) {
                        json_object *v = json_object_array_get_idx(ents, i);
                        PlanBootEntry *be = &s->entries[i];

                        if (!json_object_is_type(v, json_type_object))
                                return error_setf(-EINVAL, "Plan file: boot entry %zu is not an object.", i);
                        _cleanup_(freep) char *on = NULL;

                        be->install_on = _ROLE_INVALID;
                        if ((r = get_string(v, "file", false, &be->file)) < 0 || (r = get_string(v, "title", true, &be->title)) < 0 ||
                            (r = get_string(v, "version", true, &be->version)) < 0 || (r = get_string(v, "uname", true, &be->uname)) < 0 ||
                            (r = get_string(v, "installAs", true, &be->install_as)) < 0 || (r = get_string(v, "installOn", true, &on)) < 0)
                                return r;
                        /* File names on a FAT filesystem, written by the executor: no paths. */
                        if (strchr(be->file, '/') || (be->install_as && (strchr(be->install_as, '/') || isempty(be->install_as) ||
                                                                         streq(be->install_as, ".") || streq(be->install_as, ".."))))
                                return error_setf(-EINVAL, "Plan file: boot entry %zu has a file name with a path in it.", i);
                        if (on) {
                                be->install_on = partition_role_from_string(on);
                                if (be->install_on != ROLE_ESP && be->install_on != ROLE_XBOOTLDR)
                                        return error_setf(-EINVAL, "Plan file: boot entry %zu goes on \"%s\", which is not esp or xbootldr.", i, on);
                        }
                }
        }
        *ret = TAKE_PTR(s);
        return 0;
}

static int get_bool(json_object *o, const char *key, bool *ret) {
        json_object *v = NULL;
        int r = get_field(o, key, json_type_boolean, false, &v);
        if (r < 0)
                return r;
        *ret = json_object_get_boolean(v);
        return 0;
}

static int plan_encryption_from_json(json_object *j, PlanEncryption *ret) {
        json_object *e;
        uint64_t pcrs, pubkey_pcrs;
        int r;

        /* Plans written before encryption existed have no such object: nothing is encrypted. */
        if (!json_object_object_get_ex(j, "encryption", &e) || !e)
                return 0;
        if (!json_object_is_type(e, json_type_object))
                return error_setf(-EINVAL, "Plan file: field \"encryption\" must be an object.");
        if ((r = get_bool(e, "enabled", &ret->enabled)) < 0 || (r = get_bool(e, "tpm2", &ret->tpm2)) < 0 ||
            (r = get_string(e, "tpm2Tcti", true, &ret->tpm2_tcti)) < 0 || (r = get_u64(e, "tpm2Pcrs", false, &pcrs)) < 0 ||
            (r = get_u64(e, "tpm2PublicKeyPcrs", false, &pubkey_pcrs)) < 0 ||
            (r = get_string(e, "tpm2PublicKey", true, &ret->tpm2_pubkey)) < 0 || (r = get_bool(e, "tpm2Pin", &ret->tpm2_pin)) < 0 ||
            (r = get_bool(e, "passphrase", &ret->passphrase)) < 0 || (r = get_bool(e, "recoveryKey", &ret->recovery_key)) < 0 ||
            (r = get_string(e, "note", true, &ret->note)) < 0)
                return r;
        if (pcrs >= (UINT64_C(1) << 24) || pubkey_pcrs >= (UINT64_C(1) << 24))
                return error_setf(-EINVAL, "Plan file: a TPM2 PCR mask names PCRs beyond 23.");
        ret->tpm2_pcrs = (uint32_t) pcrs;
        ret->tpm2_pubkey_pcrs = (uint32_t) pubkey_pcrs;
        if (ret->tpm2_tcti && (r = validate_tpm2_tcti(ret->tpm2_tcti)) < 0)
                return error_prefixf(r, "Plan file: \"encryption\"");
        if (ret->tpm2 && ret->tpm2_pcrs == 0 && ret->tpm2_pubkey_pcrs == 0)
                return error_setf(-EINVAL, "Plan file: the TPM2 policy binds no PCR.");
        if ((ret->tpm2_pubkey_pcrs != 0) != (ret->tpm2_pubkey != NULL))
                return error_setf(-EINVAL, "Plan file: a signed TPM2 policy needs both its PCRs and its public key.");
        if (ret->enabled && !ret->recovery_key)
                return error_setf(-EINVAL, "Plan file: an encrypted install must enroll a recovery key.");
        return 0;
}

static int plan_account_from_json(json_object *j, PlanAccount **ret, PlanSettings *settings) {
        _cleanup_(plan_account_freep) PlanAccount *a = NULL;
        _cleanup_(freep) char *storage = NULL, *kind = NULL;
        json_object *e;
        int r;

        if (json_object_object_get_ex(j, "settings", &e) && e) {
                if (!json_object_is_type(e, json_type_object))
                        return error_setf(-EINVAL, "Plan file: field \"settings\" must be an object.");
                if ((r = get_string(e, "hostname", true, &settings->hostname)) < 0 ||
                    (r = get_string(e, "timezone", true, &settings->timezone)) < 0 ||
                    (r = get_string(e, "locale", true, &settings->locale)) < 0 ||
                    (r = get_string(e, "keymap", true, &settings->keymap)) < 0)
                        return r;
                /* The same checks as --hostname, --timezone, --locale and --keymap: these values
                 * are written into files of the installed system. */
                r = settings_validate(settings);
                if (r < 0)
                        return error_prefixf(r, "Plan file: \"settings\"");
        }
        if (!json_object_object_get_ex(j, "account", &e) || !e)
                return 0;
        if (!json_object_is_type(e, json_type_object))
                return error_setf(-EINVAL, "Plan file: field \"account\" must be an object.");
        a = calloc(1, sizeof(PlanAccount));
        if (!a)
                return -ENOMEM;
        if ((r = get_string(e, "userName", false, &a->user_name)) < 0 || (r = get_string(e, "realName", true, &a->real_name)) < 0 ||
            (r = get_string(e, "storage", false, &storage)) < 0 || (r = get_bool(e, "admin", &a->admin)) < 0 ||
            (r = get_bool(e, "autoLogin", &a->auto_login)) < 0 || (r = get_string(e, "kind", false, &kind)) < 0 ||
            (r = get_string(e, "note", true, &a->note)) < 0)
                return r;
        /* As --user and --real-name: the name becomes part of a credential's file name and of
         * unit text, the real name a field of /etc/passwd. */
        r = validate_user_name(a->user_name);
        if (r >= 0 && a->real_name)
                r = validate_real_name(a->real_name);
        if (r < 0)
                return error_prefixf(r, "Plan file: \"account\"");
        a->storage = account_storage_from_string(storage);
        if (a->storage < 0)
                return error_setf(-EINVAL, "Plan file: unknown account storage \"%s\".", storage);
        a->kind = account_kind_from_string(kind);
        if (a->kind < 0)
                return error_setf(-EINVAL, "Plan file: unknown account kind \"%s\".", kind);
        *ret = TAKE_PTR(a);
        return 0;
}

static int plan_reset_from_json(json_object *j, Plan *p) {
        _cleanup_(freep) char *entry = NULL;
        json_object *e = NULL;
        int r;

        if (json_object_object_get_ex(j, "oem", &e) && e) {
                _cleanup_(freep) char *account = NULL;
                json_object *asks;

                if (!json_object_is_type(e, json_type_object))
                        return error_setf(-EINVAL, "Plan file: field \"oem\" must be an object.");
                p->oem = calloc(1, sizeof(PlanOem));
                if (!p->oem)
                        return -ENOMEM;
                if ((r = get_string(e, "account", false, &account)) < 0 ||
                    (r = get_bool(e, "newRecoveryKey", &p->oem->new_recovery_key)) < 0 ||
                    (r = get_string(e, "note", true, &p->oem->note)) < 0 ||
                    (r = get_field(e, "firstbootAsks", json_type_array, false, &asks)) < 0)
                        return r;
                p->oem->account = handoff_account_from_string(account);
                if (p->oem->account < 0)
                        return error_setf(-EINVAL, "Plan file: unknown \"oem.account\" \"%s\".", account);
                for (size_t i = 0; i < json_object_array_length(asks); i++) {
                        const char *a = json_object_get_string(json_object_array_get_idx(asks, i));

                        if (streq(a ?: "", "locale"))
                                p->oem->ask_locale = true;
                        else if (streq(a ?: "", "keymap"))
                                p->oem->ask_keymap = true;
                        else if (streq(a ?: "", "timezone"))
                                p->oem->ask_timezone = true;
                        else if (streq(a ?: "", "hostname"))
                                p->oem->ask_hostname = true;
                        else
                                return error_setf(-EINVAL, "Plan file: unknown \"oem.firstbootAsks\" entry \"%s\".", a ?: "");
                }
        }
        if (json_object_object_get_ex(j, "secureBoot", &e) && e) {
                PlanSecureBoot *sb = &p->secure_boot;
                _cleanup_(freep) char *action = NULL;

                if (!json_object_is_type(e, json_type_object))
                        return error_setf(-EINVAL, "Plan file: field \"secureBoot\" must be an object.");
                if ((r = get_string(e, "action", false, &action)) < 0 || (r = get_string(e, "firmwareMode", true, &sb->firmware_mode)) < 0 ||
                    (r = get_string(e, "firmware", true, &sb->firmware)) < 0 || (r = get_string(e, "chain", true, &sb->chain)) < 0 ||
                    (r = get_string(e, "reason", true, &sb->reason)) < 0 || (r = get_string(e, "keys", true, &sb->keys)) < 0 ||
                    (r = get_bool(e, "shim", &sb->shim)) < 0 || (r = get_bool(e, "allowedUnbootable", &sb->allowed)) < 0 ||
                    (r = get_bool(e, "tpm2Reseal", &sb->tpm2_reseal)) < 0 || (r = get_string(e, "note", true, &sb->note)) < 0 ||
                    (r = get_bool(e, "recoveryEntryRefused", &sb->recovery_refused)) < 0)
                        return r;
                sb->action = secure_boot_action_from_string(action);
                if (sb->action < 0)
                        return error_setf(-EINVAL, "Plan file: unknown \"secureBoot.action\" \"%s\".", action);
                if (sb->action == SECURE_BOOT_ENROLL && (!sb->keys || strchr(sb->keys, '/') || strstr(sb->keys, "..")))
                        return error_setf(-EINVAL, "Plan file: \"secureBoot.keys\" must name a directory under loader/keys/.");
                sb->decided = true;
        }
        if (json_object_object_get_ex(j, "recoveryUki", &e) && e) {
                if (!json_object_is_type(e, json_type_object))
                        return error_setf(-EINVAL, "Plan file: field \"recoveryUki\" must be an object.");
                if ((r = get_string(e, "path", false, &p->recovery_uki)) < 0 || (r = get_u64(e, "size", false, &p->recovery_uki_size)) < 0)
                        return r;
        }
        if (!json_object_object_get_ex(j, "reset", &e) || !e) {
                if (p->mode == PLAN_RESET)
                        return error_setf(-EINVAL, "Plan file: a reset plan needs its \"reset\" object.");
                return 0;
        }
        if (p->mode != PLAN_RESET)
                return error_setf(-EINVAL, "Plan file: field \"reset\" belongs to reset plans only.");
        if (!json_object_is_type(e, json_type_object))
                return error_setf(-EINVAL, "Plan file: field \"reset\" must be an object.");
        p->reset = calloc(1, sizeof(PlanReset));
        if (!p->reset)
                return -ENOMEM;
        if ((r = get_string(e, "entryPoint", false, &entry)) < 0 || (r = get_bool(e, "keepHome", &p->reset->keep_home)) < 0 ||
            (r = get_bool(e, "secureErase", &p->reset->secure_erase)) < 0 || (r = get_bool(e, "tpmClear", &p->reset->tpm_clear)) < 0 ||
            (r = get_string(e, "installedAt", true, &p->reset->installed_at)) < 0 ||
            (r = get_string(e, "installedBy", true, &p->reset->installed_by)) < 0 ||
            (r = get_string(e, "imageVersion", true, &p->reset->image_version)) < 0 ||
            (r = get_string(e, "accountNote", true, &p->reset->account_note)) < 0)
                return r;
        p->reset->entry_point = reset_entry_point_from_string(entry);
        if (p->reset->entry_point < 0)
                return error_setf(-EINVAL, "Plan file: unknown reset entry point \"%s\".", entry);
        return 0;
}

int plan_from_json(json_object *j, Plan **ret) {
        _cleanup_(plan_freep) Plan *p = NULL;
        json_object *t, *fp, *parts, *doomed, *v;
        _cleanup_(freep) char *mode = NULL, *arch = NULL, *kind = NULL;
        uint64_t version;
        int r;

        if (!json_object_is_type(j, json_type_object))
                return error_setf(-EINVAL, "Plan file: not a JSON object.");
        r = get_u64(j, "version", false, &version);
        if (r < 0)
                return r;
        if (version != PLAN_FORMAT_VERSION)
                return error_setf(-EINVAL, "Plan file: format version %" PRIu64 " is not supported (this imprint reads version %d).",
                                  version, PLAN_FORMAT_VERSION);

        p = calloc(1, sizeof(Plan));
        if (!p)
                return -ENOMEM;

        if ((r = get_string(j, "mode", false, &mode)) < 0 || (r = get_string(j, "architecture", false, &arch)) < 0)
                return r;
        p->mode = plan_mode_from_string(mode);
        if (p->mode < 0)
                return error_setf(-EINVAL, "Plan file: unknown mode \"%s\".", mode);
        p->arch = architecture_from_string(arch);
        if (p->arch < 0)
                return error_setf(-EINVAL, "Plan file: unknown architecture \"%s\".", arch);

        if ((r = get_field(j, "target", json_type_object, false, &t)) < 0 ||
            (r = get_string(t, "path", false, &p->target)) < 0 || (r = get_string(t, "name", false, &p->target_name)) < 0 ||
            (r = get_string(t, "kind", false, &kind)) < 0 ||
            (r = get_string(t, "description", true, &p->target_description)) < 0 ||
            (r = get_u64(t, "sectorSize", false, &p->sector_size)) < 0 ||
            (r = get_field(t, "fingerprint", json_type_object, false, &fp)) < 0)
                return r;
        p->target_kind = disk_kind_from_string(kind);
        if (p->target_kind < 0)
                return error_setf(-EINVAL, "Plan file: unknown target kind \"%s\".", kind);
        if (p->sector_size != 512 && p->sector_size != 4096)
                return error_setf(-EINVAL, "Plan file: unsupported sector size %" PRIu64 ".", p->sector_size);
        {
                uint64_t ss;
                if ((r = get_u64(fp, "size", false, &p->fingerprint.size)) < 0 ||
                    (r = get_u64(fp, "diskseq", true, &p->fingerprint.diskseq)) < 0 ||
                    (r = get_u64(fp, "sectorSize", false, &ss)) < 0 ||
                    (r = get_string(fp, "partitionTable", true, &p->fingerprint.pttype)) < 0 ||
                    (r = get_string(fp, "partitionTableUuid", true, &p->fingerprint.ptuuid)) < 0 ||
                    (r = get_string(fp, "partitions", false, &p->fingerprint.partitions)) < 0)
                        return r;
                p->fingerprint.sector_size = (uint32_t) ss;
        }

        if ((r = get_uuid(j, "diskUuid", &p->disk_uuid)) < 0 || (r = get_string(j, "seed", true, &p->seed)) < 0 ||
            (r = get_u64(j, "freeStart", false, &p->free_start)) < 0 || (r = get_u64(j, "freeSize", false, &p->free_size)) < 0 ||
            (r = get_field(j, "partitions", json_type_array, false, &parts)) < 0 ||
            (r = get_field(j, "destroyed", json_type_array, false, &doomed)) < 0)
                return r;
        if (p->seed && (r = validate_seed(p->seed)) < 0)
                return error_prefixf(r, "Plan file: \"seed\"");

        p->n_partitions = json_object_array_length(parts);
        p->partitions = calloc(p->n_partitions ?: 1, sizeof(PlanPartition));
        if (!p->partitions)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_partitions; i++) {
                PlanPartition *pp = &p->partitions[i];
                _cleanup_(freep) char *role = NULL, *action = NULL;
                uint64_t partno;

                v = json_object_array_get_idx(parts, i);
                if (!json_object_is_type(v, json_type_object))
                        return error_setf(-EINVAL, "Plan file: partition entry %zu is not an object.", i);
                if ((r = get_u64(v, "partno", false, &partno)) < 0 || (r = get_string(v, "role", false, &role)) < 0 ||
                    (r = get_string(v, "action", false, &action)) < 0 || (r = get_u64(v, "start", false, &pp->start)) < 0 ||
                    (r = get_u64(v, "size", false, &pp->size)) < 0 || (r = get_uuid(v, "typeUuid", &pp->type_uuid)) < 0 ||
                    (r = get_uuid(v, "uuid", &pp->uuid)) < 0 || (r = get_string(v, "label", true, &pp->label)) < 0 ||
                    (r = get_u64(v, "flags", false, &pp->flags)) < 0 || (r = get_string(v, "fstype", true, &pp->fstype)) < 0 ||
                    (r = get_string(v, "fsLabel", true, &pp->fslabel)) < 0)
                        return r;
                {
                        json_object *cf = NULL;
                        pp->copy_from = -1;
                        if (json_object_object_get_ex(v, "copyFrom", &cf) && cf) {
                                if (!json_object_is_type(cf, json_type_int) || json_object_get_int(cf) < 0)
                                        return error_setf(-EINVAL, "Plan file: field \"copyFrom\" must be a non-negative integer.");
                                pp->copy_from = json_object_get_int(cf);
                        }
                }
                {
                        json_object *en = NULL;
                        if (json_object_object_get_ex(v, "encrypt", &en) && en) {
                                if (!json_object_is_type(en, json_type_boolean))
                                        return error_setf(-EINVAL, "Plan file: field \"encrypt\" must be true or false.");
                                pp->encrypt = json_object_get_boolean(en);
                        }
                        if (pp->encrypt && (r = get_uuid(v, "luksUuid", &pp->luks_uuid)) < 0)
                                return r;
                }
                {
                        json_object *er = NULL;
                        if (json_object_object_get_ex(v, "erase", &er) && er) {
                                if (!json_object_is_type(er, json_type_boolean))
                                        return error_setf(-EINVAL, "Plan file: field \"erase\" must be true or false.");
                                pp->erase = json_object_get_boolean(er);
                        }
                }
                pp->partno = (unsigned) MIN(partno, 1000);
                pp->role = partition_role_from_string(role);
                if (pp->role < 0)
                        return error_setf(-EINVAL, "Plan file: unknown partition role \"%s\".", role);
                pp->action = partition_action_from_string(action);
                if (pp->action < 0)
                        return error_setf(-EINVAL, "Plan file: unknown partition action \"%s\".", action);
                /* As --root-label: the GPT name libfdisk writes. */
                if (pp->action == ACTION_CREATE && pp->label && (r = validate_partition_label(pp->label)) < 0)
                        return error_prefixf(r, "Plan file: partition %u", pp->partno);
        }

        p->n_doomed = json_object_array_length(doomed);
        p->doomed = calloc(p->n_doomed ?: 1, sizeof(PlanDoomed));
        if (!p->doomed)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_doomed; i++) {
                PlanDoomed *dd = &p->doomed[i];
                uint64_t partno;

                v = json_object_array_get_idx(doomed, i);
                if (!json_object_is_type(v, json_type_object))
                        return error_setf(-EINVAL, "Plan file: destroyed entry %zu is not an object.", i);
                if ((r = get_u64(v, "partno", false, &partno)) < 0 || (r = get_u64(v, "start", false, &dd->start)) < 0 ||
                    (r = get_u64(v, "size", false, &dd->size)) < 0 || (r = get_string(v, "typeName", true, &dd->type_name)) < 0 ||
                    (r = get_string(v, "label", true, &dd->label)) < 0 || (r = get_string(v, "fstype", true, &dd->fstype)) < 0 ||
                    (r = get_string(v, "os", true, &dd->os)) < 0)
                        return r;
                dd->partno = (unsigned) MIN(partno, 1000);
        }

        r = plan_source_from_json(j, &p->source);
        if (r < 0)
                return r;
        r = plan_encryption_from_json(j, &p->encryption);
        if (r < 0)
                return r;
        r = plan_account_from_json(j, &p->account, &p->settings);
        if (r < 0)
                return r;
        r = plan_reset_from_json(j, p);
        if (r < 0)
                return r;
        r = plan_validate(p);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

int plan_save(const Plan *p, const char *path) {
        json_object *j = plan_to_json(p);
        int r = 0;

        if (!j)
                return -ENOMEM;
        if (json_object_to_file_ext(path, j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED) < 0)
                r = error_setf(-EIO, _("Cannot write the plan to %s: %s"), path, json_util_get_last_err() ?: _("unknown error"));
        json_object_put(j);
        return r;
}

int plan_load(const char *path, Plan **ret) {
        json_object *j = NULL;
        int r;

        r = json_read_file_strict(path, "the plan file", &j);
        if (r < 0)
                return r;
        r = plan_from_json(j, ret);
        json_object_put(j);
        if (r < 0)
                return error_prefixf(r, "%s", path);
        return 0;
}

/* ---- table ------------------------------------------------------------------------------- */

static void plan_print_encryption(const Plan *p, FILE *f) {
        const PlanEncryption *e = &p->encryption;
        _cleanup_(freep) char *pcrs = NULL;

        if (!e->enabled) {
                fprintf(f, "Encrypt: no — %s\n", e->note ?: "root and home are not encrypted");
                return;
        }
        fprintf(f, "Encrypt: root%s with LUKS2 (aes-xts-plain64); unlocked by ", plan_find_role(p, ROLE_HOME) ? " and home" : "");
        if (e->tpm2) {
                pcrs = tpm2_pcr_mask_to_string(e->tpm2_pcrs);
                fprintf(f, "the TPM2 (PCR %s%s%s)%s, or the recovery key shown before writing\n", pcrs ?: "?",
                        e->tpm2_pubkey_pcrs ? ", signed PCR 11 policy" : "", e->tpm2_pin ? " with a PIN" : "",
                        e->passphrase ? ", a passphrase" : "");
        } else if (e->passphrase)
                fprintf(f, "a passphrase, or the recovery key shown before writing\n");
        else
                fprintf(f, "the recovery key alone (shown before writing)\n");
        if (e->note)
                fprintf(f, "         %s\n", e->note);
}

void plan_print_table(const Plan *p, FILE *f) {
        _cleanup_(table_freep) Table *table = NULL;
        char **lines = NULL;
        size_t n_lines = 0;

        fprintf(f, "Target:  %s — %s\n", p->target, p->target_description ?: "");
        if (p->mode == PLAN_ERASE)
                fprintf(f, "Mode:    erase — a new GPT partition table; everything on the disk is destroyed\n");
        else if (p->mode == PLAN_RESET)
                fprintf(f, "Mode:    factory reset — root%s erased and recreated with new keys; the partition table and everything else kept\n",
                        plan_find_role(p, ROLE_HOME) && !(p->reset && p->reset->keep_home) ? " and home" : "");
        else
                fprintf(f, "Mode:    free space — existing partitions are kept; new ones go into %s at %s\n",
                        FORMAT_BYTES(p->free_size), FORMAT_BYTES(p->free_start));
        if (p->reset) {
                fprintf(f, "Reset:   installed %s by imprint %s%s%s; started from %s%s%s\n", p->reset->installed_at ?: "(unknown)",
                        p->reset->installed_by ?: "?", p->reset->image_version ? ", version " : "", p->reset->image_version ?: "",
                        reset_entry_point_to_string(p->reset->entry_point), p->reset->secure_erase ? "; secure erase where the device offers it" : "",
                        p->reset->tpm_clear ? "; the TPM is cleared at the next boot (firmware)" : "");
                if (p->reset->account_note)
                        fprintf(f, "Account: %s\n", p->reset->account_note);
        }
        if (p->recovery_uki)
                fprintf(f, "Recovery entry: imprint-recovery.efi (%s), from %s\n", FORMAT_BYTES(p->recovery_uki_size), p->recovery_uki);
        else if (p->source && p->mode != PLAN_RESET)
                fprintf(f, "Recovery entry: none, there is no recovery UKI at %s\n", recovery_entry_search_path());
        if (!p->source && p->mode == PLAN_RESET)
                fprintf(f, "Image:   the usr slots on the disk are kept; root%s starts empty and is filled from /usr at first boot\n",
                        plan_find_role(p, ROLE_HOME) && !(p->reset && p->reset->keep_home) ? " and home" : "");
        else if (p->source)
                fprintf(f, "Image:   %s — %s%s%s\n", p->source->path, p->source->os_name ?: "unknown OS",
                        p->source->sha256 ? ", checksum from " : ", no checksum to verify against",
                        p->source->sha256 ? p->source->sha256_origin : "");
        if (p->source && p->source->streaming)
                fprintf(f, "Stream:  read once (%s): partition %u of the image is written while it is read%s\n",
                        p->source->compression ?: "raw", p->source->partitions[p->source->streamed].partno,
                        p->source->content_pending ? "; what it holds (repart.d, homed-firstboot) is read from the disk afterwards and may "
                                                     "still change sizes after it" : "");
        for (size_t i = 0; p->source && p->mode != PLAN_RESET && i < p->source->n_entries; i++) {
                const PlanBootEntry *be = &p->source->entries[i];
                fprintf(f, "%s %s — %s%s%s%s%s", i == 0 ? "Boot:   " : "        ", be->file, be->title ?: "?",
                        be->version ? " " : "", be->version ?: "", be->uname ? ", kernel " : "", be->uname ?: "");
                if (be->install_as)
                        fprintf(f, "; installed as %s on the %s (boot counting)", be->install_as,
                                be->install_on == ROLE_XBOOTLDR || (be->install_on != ROLE_ESP && plan_find_role(p, ROLE_XBOOTLDR))
                                        ? "XBOOTLDR partition" : "ESP");
                fputc('\n', f);
        }
        if (p->source && p->source->kind == PLAN_SOURCE_USR && p->mode != PLAN_RESET) {
                const PlanPartition *a = NULL;

                for (size_t i = 0; i < p->n_partitions && !a; i++)
                        if (p->partitions[i].role == ROLE_USR && p->partitions[i].copy_from >= 0)
                                a = &p->partitions[i];
                fprintf(f, "Slots:   /usr A \"%s\" is copied from the image; B \"%s\" is left empty for systemd-sysupdate's next "
                        "version; root%s starts empty and is filled from the image at first boot\n",
                        a && a->label ? a->label : "?", PLAN_EMPTY_SLOT_LABEL, plan_find_role(p, ROLE_HOME) ? " and home" : "");
        }
        if (p->source && p->source->note)
                fprintf(f, "Note:    %s\n", p->source->note);
        plan_print_encryption(p, f);
        if (p->account)
                fprintf(f, "Account: %s%s%s%s — %s%s%s%s%s\n", p->account->user_name, p->account->real_name ? " (" : "",
                        p->account->real_name ?: "", p->account->real_name ? ")" : "",
                        p->account->kind == ACCOUNT_HOMED ? "systemd-homed, storage " : "classic /etc/passwd user",
                        p->account->kind == ACCOUNT_HOMED ? account_storage_to_string(p->account->storage) : "",
                        p->account->admin ? ", administrator" : "", p->account->auto_login ? ", logs in automatically" : "",
                        p->account->kind == ACCOUNT_HOMED ? ", created at first boot" : "");
        if (p->account && p->account->note)
                fprintf(f, "         %s\n", p->account->note);
        if (p->oem) {
                _cleanup_(freep) char *asks = handoff_asks_text(p->oem);

                fprintf(f, "Account: none — this is an OEM install: the customer's first boot %s%s%s%s%s\n",
                        asks ? "asks for the " : "", asks ?: "", asks ? " (systemd-firstboot), " : "",
                        p->oem->account == HANDOFF_ACCOUNT_HOMED ? "makes the account (systemd-homed-firstboot)"
                                                                 : "asks for root's password (systemd-firstboot)",
                        p->oem->new_recovery_key ? ", and replaces the line's recovery key by a new one, shown and typed back" : "");
                if (p->oem->note)
                        fprintf(f, "         %s\n", p->oem->note);
        }
        if (p->secure_boot.decided) {
                const PlanSecureBoot *sb = &p->secure_boot;

                fprintf(f, "Secure Boot: %s — %s\n", secure_boot_action_to_string(sb->action), sb->note ?: "");
                fprintf(f, "         firmware: %s\n", sb->firmware ?: "?");
                fprintf(f, "         image: %s\n", sb->chain ?: "?");
                if (sb->action == SECURE_BOOT_ENROLL)
                        fprintf(f, "         keys: loader/keys/%s/ is installed with \"secure-boot-enroll force\" in loader.conf; "
                                "systemd-boot enrolls them at the first boot (the firmware accepts them in setup mode only)\n",
                                sb->keys ?: "?");
        }
        if (p->settings.hostname || p->settings.timezone || p->settings.locale || p->settings.keymap)
                fprintf(f, "System:  hostname %s, timezone %s, locale %s, keymap %s\n", p->settings.hostname ?: "(asked at first boot)",
                        p->settings.timezone ?: "(unset)", p->settings.locale ?: "(unset)", p->settings.keymap ?: "(unset)");
        fprintf(f, "Disk ID: %s%s%s%s\n\n", SD_ID128_TO_UUID_STRING(p->disk_uuid), p->seed ? "  (UUIDs derived from seed \"" : "",
                p->seed ?: "", p->seed ? "\")" : "");

        if (plan_partition_table(p, &table) >= 0 && table_format_lines(table, &lines, &n_lines) >= 0)
                fprintf(f, "%s\n", lines[0]);
        for (size_t i = 0; i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];

                if (i + 1 < n_lines)
                        fprintf(f, "%s\n", lines[i + 1]);
                if (p->mode == PLAN_RESET) {
                        if (pp->erase)
                                fprintf(f, "    └ erased (%s), then recreated%s%s%s\n",
                                        pp->encrypt ? "crypto-erase: every keyslot and the LUKS2 headers destroyed" : "discarded, or overwritten where it cannot be",
                                        pp->encrypt ? " as a new LUKS2 volume " : "", pp->encrypt ? SD_ID128_TO_UUID_STRING(pp->luks_uuid) : "",
                                        pp->copy_from >= 0 ? ", the image's root copied into it" : pp->fstype ? ", empty" : "");
                        else if (pp->action == ACTION_REENROLL)
                                fprintf(f, "    └ kept with its data; LUKS2 %s re-enrolled: new recovery key and TPM2, every old keyslot removed\n",
                                        SD_ID128_TO_UUID_STRING(pp->luks_uuid));
                        else
                                fprintf(f, "    └ kept as it is\n");
                } else if (pp->encrypt)
                        fprintf(f, "    └ LUKS2 %s, opened as \"%s\" at boot\n", SD_ID128_TO_UUID_STRING(pp->luks_uuid),
                                partition_role_to_string(pp->role));
        }
        fprintf(f, "\nPARTUUIDs:\n");
        int width = 9; /* "xbootldr" and a space; usr images' "usr-verity-sig" need more */
        for (size_t i = 0; i < p->n_partitions; i++)
                width = MAX(width, (int) strlen(partition_role_to_string(p->partitions[i].role)));
        for (size_t i = 0; i < p->n_partitions; i++)
                fprintf(f, "  %-*s %s\n", width, partition_role_to_string(p->partitions[i].role),
                        SD_ID128_TO_UUID_STRING(p->partitions[i].uuid));

        if (p->n_doomed > 0) {
                fprintf(f, "\nDestroyed by this plan:\n");
                for (size_t i = 0; i < p->n_doomed; i++) {
                        const PlanDoomed *dd = &p->doomed[i];
                        fprintf(f, "  partition %u: %s, %s%s%s%s%s%s%s\n", dd->partno, FORMAT_BYTES(dd->size), dd->type_name ?: "unknown type",
                                dd->label ? ", \"" : "", dd->label ?: "", dd->label ? "\"" : "", dd->fstype ? ", " : "",
                                dd->fstype ?: "", "");
                        if (dd->os)
                                fprintf(f, "      holds: %s\n", dd->os);
                }
        } else if (p->mode == PLAN_ERASE && p->fingerprint.pttype)
                fprintf(f, "\nThe existing %s partition table (no partitions) is replaced.\n", p->fingerprint.pttype);
        table_free_lines(lines, n_lines);
}

/* ---- streamed images ------------------------------------------------------------------------ */

static void swap_str(char **a, char **b) {
        char *t = *a;
        *a = *b;
        *b = t;
}

int plan_update_streamed(Plan *p, Plan *next) {
        const PlanPartition *written = NULL;

        if (!p->source || !p->source->streaming || !next->source)
                return error_setf(-EINVAL, "Internal error: the plan does not stream its image.");
        for (size_t i = 0; i < p->n_partitions; i++)
                if (p->partitions[i].copy_from >= 0 && (size_t) p->partitions[i].copy_from == p->source->streamed)
                        written = &p->partitions[i];
        if (p->n_partitions != next->n_partitions)
                return error_setf(-ESTALE, _("What the image %s holds changes the layout (%zu partitions instead of %zu); it was not made bootable. "
                                             "Decompress it to a file and install that."),
                                  p->source->path, next->n_partitions, p->n_partitions);
        for (size_t i = 0; i < p->n_partitions; i++) {
                const PlanPartition *a = &p->partitions[i], *b = &next->partitions[i];

                if (a->role != b->role || a->action != b->action || a->partno != b->partno || a->copy_from != b->copy_from ||
                    a->encrypt != b->encrypt)
                        return error_setf(-ESTALE,
                                          _("What the image %s holds changes the layout (partition %u); it was not made bootable. "
                                            "Decompress it to a file and install that."),
                                          p->source->path, a->partno);
                if (a == written && (a->start != b->start || a->size > b->size))
                        return error_setf(-ESTALE,
                                          _("What the image %s holds would move its partition %u, which is written already; it was not "
                                            "made bootable. Decompress it to a file and install that."),
                                          p->source->path, a->partno);
        }
        for (size_t i = 0; i < p->n_partitions; i++) {
                PlanPartition *a = &p->partitions[i], *b = &next->partitions[i];

                a->start = b->start;
                a->size = b->size;
                a->type_uuid = b->type_uuid;
                a->flags = b->flags;
                swap_str(&a->label, &b->label);
                swap_str(&a->fstype, &b->fstype);
                swap_str(&a->fslabel, &b->fslabel);
        }
        /* The image's facts, the account (homed or classic) and the hand-off, as now known. */
        next->source->content_pending = false;
        p->source->content_pending = false;
        {
                PlanSource *t = p->source;
                p->source = next->source;
                next->source = t;
        }
        {
                PlanAccount *t = p->account;
                p->account = next->account;
                next->account = t;
        }
        {
                PlanOem *t = p->oem;
                p->oem = next->oem;
                next->oem = t;
        }
        {
                PlanSecureBoot t = p->secure_boot;
                p->secure_boot = next->secure_boot;
                next->secure_boot = t;
        }
        p->free_start = next->free_start;
        p->free_size = next->free_size;
        return 0;
}
