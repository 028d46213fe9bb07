/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "blockcopy.h"
#include "boot.h"
#include "disklock.h"
#include "encrypt.h"
#include "error.h"
#include "executor.h"
#include "fileio.h"
#include "i18n.h"
#include "image.h"
#include "log.h"
#include "luks.h"
#include "mkfs.h"
#include "partition.h"
#include "recovery.h"
#include "run.h"
#include "size.h"
#include "uuid.h"

static const char *const progress_event_type_table[_PROGRESS_EVENT_TYPE_MAX] = {
        [PROGRESS_PLANNED] = "planned",
        [PROGRESS_BEGIN] = "begin",
        [PROGRESS_UPDATE] = "update",
        [PROGRESS_END] = "end",
        [PROGRESS_FAILED] = "failed",
};
DEFINE_STRING_TABLE_LOOKUP(progress_event_type, ProgressEventType);

#define PARTITION_NODE_TIMEOUT_USEC (UINT64_C(10) * 1000000)

typedef struct Exec Exec;

typedef struct Step {
        char id[32];
        char description[160];
        uint64_t total;
        const PlanPartition *partition;
        uint8_t digest[COPY_DIGEST_SIZE]; /* copy steps: what was written, for the verify step after */
        struct Step *copied_by;           /* verify steps: the copy step they check */
        int (*run)(Exec *e, struct Step *s);
} Step;

struct Exec {
        const Plan *plan;
        Image *img;
        const ExecOptions *opts;
        int src_fd;           /* the image, open read-only */
        uint64_t last_update_usec;
        bool partitioned;     /* the partition table was written: failures leave a non-booting disk */
        const ExecCallbacks *cb;
        Disk *disk;           /* the target as discovered right before writing */
        int fd;               /* the target, open read-write */
        Step steps[32];
        unsigned n_steps, current;
        uint64_t step_start_usec;

        /* Encryption: the TPM, the recovery key, and the opened dm-crypt volume of each planned
         * partition (by index in plan->partitions), through which its data is written. */
        Tpm2Context *tpm;
        Secret *recovery_key;
        char *dm_name[16], *dm_path[16];
};

static size_t partition_index(const Exec *e, const PlanPartition *pp) {
        return (size_t) (pp - e->plan->partitions);
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static void emit(Exec *e, ProgressEventType type, uint64_t done, const char *message) {
        const Step *s = &e->steps[e->current];
        uint64_t elapsed = now_usec() - e->step_start_usec, rate = 0;
        int64_t eta = -1;

        if (!e->cb || !e->cb->progress)
                return;
        if (elapsed > 0 && done > 0) {
                rate = (uint64_t) ((double) done * 1e6 / (double) elapsed);
                if (rate > 0 && s->total >= done)
                        eta = (int64_t) ((double) (s->total - done) * 1e6 / (double) rate);
        }
        e->cb->progress(&(ProgressEvent) {
                .type = type,
                .step = e->current + 1,
                .n_steps = e->n_steps,
                .id = s->id,
                .description = s->description,
                .done = done,
                .total = s->total,
                .rate = rate,
                .eta_usec = type == PROGRESS_END ? 0 : eta,
                .elapsed_usec = elapsed,
                .message = message,
        }, e->cb->userdata);
}

/* At most ten updates a second: enough for a smooth bar, cheap for a pipe to a log. */
static void on_copy_progress(uint64_t done, uint64_t total, void *userdata) {
        Exec *e = userdata;
        uint64_t now = now_usec();

        if (done < total && now - e->last_update_usec < 100 * 1000)
                return;
        e->last_update_usec = now;
        emit(e, PROGRESS_UPDATE, done, NULL);
}

static Step *add_step(Exec *e, const char *id, uint64_t total, int (*run)(Exec *, Step *), const char *fmt, ...)
        _printf_(5, 6);

static Step *add_step(Exec *e, const char *id, uint64_t total, int (*run)(Exec *, Step *), const char *fmt, ...) {
        Step *s;
        va_list ap;

        if (e->n_steps >= ELEMENTSOF(e->steps))
                return NULL;
        s = &e->steps[e->n_steps++];
        *s = (Step) { .total = total, .run = run };
        snprintf(s->id, sizeof(s->id), "%s", id);
        va_start(ap, fmt);
        vsnprintf(s->description, sizeof(s->description), fmt, ap);
        va_end(ap);
        return s;
}

static int step_partition(Exec *e, Step *s) {
        return partition_write_table(e->plan, e->fd);
}

static int step_kernel(Exec *e, Step *s) {
        return partition_sync_kernel(e->plan, e->fd, e->disk, PARTITION_NODE_TIMEOUT_USEC);
}

static int step_format(Exec *e, Step *s) {
        const PlanPartition *pp = s->partition;
        _cleanup_(freep) char *node = NULL;
        char purpose[64];
        sd_id128_t fsuuid;
        int r;

        /* Filesystem UUIDs follow the seed too, so a seeded install is reproducible bit by bit. */
        snprintf(purpose, sizeof(purpose), "filesystem:%s", partition_role_to_string(pp->role));
        r = e->plan->seed ? uuid_from_seed(e->plan->seed, purpose, &fsuuid) : uuid_random(&fsuuid);
        if (r < 0)
                return r;

        if (pp->encrypt) {
                node = strdup_safe(e->dm_path[partition_index(e, pp)]);
                if (!node)
                        return error_setf(-EINVAL, _("The encrypted volume of partition %u is not open."), pp->partno);
        } else if (e->plan->target_kind == DISK_BLOCK) {
                r = disk_partition_node(e->disk, pp->partno, &node);
                if (r < 0)
                        return r;
        }
        r = mkfs_make(pp->fstype, &(MkfsTarget) {
                .node = node,
                .file = e->plan->target,
                .fd = e->fd,
                .offset = pp->start,
                .size = pp->size,
                .sector_size = (uint32_t) e->plan->sector_size,
        }, pp->fslabel, fsuuid);
        if (r < 0)
                return error_prefixf(r, _("Cannot create the %s filesystem of the %s partition (%s)"), pp->fstype,
                                     partition_role_to_string(pp->role), node ?: e->plan->target);
        return 0;
}

static int step_verify_image(Exec *e, Step *s) {
        const PlanSource *src = e->plan->source;
        char hex[65];
        int r;

        r = sha256_file(e->src_fd, src->size, on_copy_progress, e, hex);
        if (r < 0)
                return error_setf(r, _("Cannot read the image %s: %s"), src->path, strerror(-r));
        if (!streq(hex, src->sha256))
                return error_setf(-EBADMSG,
                                  _("The image %s does not match its checksum: its SHA256 is %s, but %s says %s. "
                                    "It is damaged or not the image that was published. Nothing was written."),
                                  src->path, hex, src->sha256_origin ?: _("the plan"), src->sha256);
        log_info("image %s matches SHA256 %s from %s", src->path, hex, src->sha256_origin ?: "the plan");
        return 0;
}

/* For an encrypted partition: its opened dm-crypt volume, else -EBADF (write into the target). */
static int open_destination(Exec *e, const PlanPartition *pp, int *ret_fd) {
        const char *path;
        int fd;

        *ret_fd = -EBADF;
        if (!pp->encrypt)
                return 0;
        path = e->dm_path[partition_index(e, pp)];
        if (!path)
                return error_setf(-EINVAL, _("The encrypted volume of partition %u is not open."), pp->partno);
        fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return error_setf(-errno, _("Cannot open %s: %m"), path);
        *ret_fd = fd;
        return 0;
}

static int step_encrypt(Exec *e, Step *s) {
        const PlanPartition *pp = s->partition;
        size_t i = partition_index(e, pp);
        _cleanup_(freep) char *node = NULL;
        int r;

        r = disk_partition_node(e->disk, pp->partno, &node);
        if (r < 0)
                return r;
        r = encrypt_partition(e->plan, pp, node,
                              &(EncryptKeys) {
                                      .recovery_key = e->recovery_key,
                                      .passphrase = e->opts ? e->opts->passphrase : NULL,
                                      .tpm2_pin = e->opts ? e->opts->tpm2_pin : NULL,
                                      .tpm = e->tpm,
                              },
                              &e->dm_name[i], &e->dm_path[i]);
        if (r < 0)
                return error_prefixf(r, _("Cannot encrypt the %s partition (%s)"), partition_role_to_string(pp->role), node);
        return 0;
}

/* Closing the volumes is part of finishing them: the installed system opens them itself. */
static int close_volumes(Exec *e) {
        int ret = 0;

        for (size_t i = 0; i < ELEMENTSOF(e->dm_name); i++) {
                int r;

                if (!e->dm_name[i])
                        continue;
                r = luks_deactivate(e->dm_name[i]);
                if (r < 0 && ret == 0)
                        ret = r;
                if (r >= 0) {
                        e->dm_name[i] = mfree(e->dm_name[i]);
                        e->dm_path[i] = mfree(e->dm_path[i]);
                }
        }
        return ret;
}

static int step_close(Exec *e, Step *s) {
        return close_volumes(e);
}

/* The installed root, mounted for a moment to write what its first boot needs: the settings
 * (systemd-firstboot --root) and the account. For an image file a loop device maps the root. */
static int step_configure(Exec *e, Step *s) {
        const Plan *p = e->plan;
        const PlanPartition *root = plan_find_role(p, ROLE_ROOT);
        const char *fstype = p->source->partitions[root->copy_from].fstype;
        _cleanup_(freep) char *node = NULL, *loop = NULL;
        char dir[] = "/run/imprint-target.XXXXXX";
        int r, k;

        if (root->encrypt)
                node = strdup_safe(e->dm_path[partition_index(e, root)]);
        else if (p->target_kind == DISK_BLOCK) {
                r = disk_partition_node(e->disk, root->partno, &node);
                if (r < 0)
                        return r;
        } else {
                char off[32], len[32];
                char *argv[] = { (char *) "losetup", (char *) "--find", (char *) "--show", (char *) "--offset", off,
                                 (char *) "--sizelimit", len, p->target, NULL };

                snprintf(off, sizeof(off), "%" PRIu64, root->start);
                snprintf(len, sizeof(len), "%" PRIu64, root->size);
                r = run_command(argv, &(RunOptions) { .ret_stdout = &loop, .quiet_stderr = true });
                if (r < 0)
                        return r;
                node = strdup(strstrip(loop));
        }
        if (!node)
                return -ENOMEM;

        if (!mkdtemp(dir))
                r = error_setf(-errno, _("Cannot make a mount point: %m"));
        else if (mount(node, dir, fstype, MS_NOSUID | MS_NODEV, NULL) < 0) {
                r = error_setf(-errno, _("Cannot mount the installed root (%s, %s): %m"), node, fstype ?: "?");
                (void) rmdir(dir);
        } else {
                r = account_configure_root(p, dir, e->opts ? e->opts->user_password : NULL);
                k = umount2(dir, 0) < 0 ? -errno : 0;
                (void) rmdir(dir);
                if (r >= 0 && k < 0)
                        r = error_setf(k, _("Cannot unmount the installed root: %s"), strerror(-k));
        }
        if (loop) {
                char *argv[] = { (char *) "losetup", (char *) "--detach", node, NULL };
                (void) run_command(argv, NULL);
        }
        return r;
}

static int step_copy(Exec *e, Step *s) {
        const PlanPartition *pp = s->partition;
        const PlanSourcePartition *sp = &e->plan->source->partitions[pp->copy_from];
        uint8_t digest[COPY_DIGEST_SIZE];
        uint64_t written = 0;
        _cleanup_(closep) int dm_fd = -EBADF;
        int r;

        r = open_destination(e, pp, &dm_fd);
        if (r < 0)
                return r;
        r = copy_region(&(CopyRegion) {
                .src_fd = e->src_fd,
                .src_offset = sp->start,
                .length = sp->size,
                .dst_fd = dm_fd >= 0 ? dm_fd : e->fd,
                .dst_offset = dm_fd >= 0 ? 0 : pp->start,
                .dst_is_block = e->plan->target_kind == DISK_BLOCK,
        }, on_copy_progress, e, digest, &written);
        if (r < 0)
                return error_setf(r,
                                  dm_fd >= 0 ? _("Copying partition %u of the image to the encrypted volume on partition %u of %s failed: %s")
                                             : _("Copying partition %u of the image to partition %u of %s failed: %s"),
                                  sp->partno, pp->partno, e->plan->target, strerror(-r));
        if (fsync(dm_fd >= 0 ? dm_fd : e->fd) < 0)
                return error_setf(-errno, _("Cannot flush %s: %m"), dm_fd >= 0 ? e->dm_path[partition_index(e, pp)] : e->plan->target);
        memcpy(s->digest, digest, sizeof(digest));
        log_info("copied %s of data (%s in all) into partition %u", FORMAT_BYTES(written), FORMAT_BYTES(sp->size), pp->partno);
        return 0;
}

/* Read back what landed and compare: a bad cable, a fake-capacity USB stick or a failing disk
 * shows here, not at the first boot. */
static int step_verify(Exec *e, Step *s) {
        const PlanPartition *pp = s->partition;
        const PlanSourcePartition *sp = &e->plan->source->partitions[pp->copy_from];
        uint8_t back[COPY_DIGEST_SIZE];
        _cleanup_(closep) int dm_fd = -EBADF;
        int r;

        /* Through dm-crypt for an encrypted partition: what the installed system will read. */
        r = open_destination(e, pp, &dm_fd);
        if (r < 0)
                return r;
        r = copy_region_digest(e->src_fd, sp->start, dm_fd >= 0 ? dm_fd : e->fd, dm_fd >= 0 ? 0 : pp->start, sp->size,
                               on_copy_progress, e, back);
        if (r < 0)
                return error_setf(r, _("Cannot read back partition %u of %s: %s"), pp->partno, e->plan->target, strerror(-r));
        if (memcmp(s->copied_by->digest, back, sizeof(back)) != 0)
                return error_setf(-EIO, _("Partition %u of %s does not read back what was written to it: the disk is faulty or "
                                          "was changed during the install."), pp->partno, e->plan->target);
        log_info("partition %u reads back intact", pp->partno);
        return 0;
}

static int step_boot(Exec *e, Step *s) {
        _cleanup_(freep) char *esp_node = NULL, *boot_node = NULL;
        const PlanPartition *esp = plan_find_role(e->plan, ROLE_ESP), *xb = plan_find_role(e->plan, ROLE_XBOOTLDR);
        _cleanup_(boot_result_done) BootResult res = { .boot_entry = -1 };
        int r;

        if (e->plan->target_kind == DISK_BLOCK) {
                r = disk_partition_node(e->disk, esp->partno, &esp_node);
                if (r >= 0 && xb)
                        r = disk_partition_node(e->disk, xb->partno, &boot_node);
                if (r < 0)
                        return r;
        }
        r = boot_install(e->plan, e->img, esp_node, boot_node,
                         &(BootOptions) {
                                 .no_variables = e->opts && e->opts->no_variables,
                                 .efivars_root = e->opts ? e->opts->efivars_root : NULL,
                         },
                         &res);
        if (r < 0)
                return r;
        /* On a real disk a missing firmware entry deserves attention; for image files it is expected. */
        if (res.note)
                log_internal(e->plan->target_kind == DISK_BLOCK ? LOG_WARNING : LOG_INFO, 0, "%s", res.note);
        return 0;
}

static int step_sync(Exec *e, Step *s) {
        if (fsync(e->fd) < 0)
                return error_setf(-errno, _("Cannot flush %s: %m"), e->plan->target);
        return 0;
}

static void exec_done(Exec *e) {
        /* After a failure the volumes may still be open: close them, or the disk stays busy. */
        if (close_volumes(e) < 0)
                log_warning("%s", error_message() ?: "Cannot close the encrypted volumes.");
        for (size_t i = 0; i < ELEMENTSOF(e->dm_name); i++) {
                free(e->dm_name[i]);
                free(e->dm_path[i]);
        }
        tpm2_context_free(e->tpm);
        secret_free(e->recovery_key);
        if (e->fd >= 0)
                close(e->fd);
        if (e->src_fd >= 0)
                close(e->src_fd);
        disk_free(e->disk);
}

/* Everything that can be checked before the first write: the tools exist, the target is the
 * disk that was planned, it is not in use, and it can be opened exclusively. */
static int preflight(Exec *e) {
        const Plan *p = e->plan;
        int r;

        for (size_t i = 0; i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];
                const char *prog;

                if (pp->action != ACTION_CREATE || !pp->fstype)
                        continue;
                prog = mkfs_program(pp->fstype);
                if (!prog)
                        return error_setf(-EOPNOTSUPP, _("imprint cannot create %s filesystems (partition %u)."), pp->fstype, pp->partno);
                if (!find_executable(prog))
                        return error_setf(-ENOPKG, _("%s is needed to create the %s filesystem of partition %u, but it is not installed."),
                                          prog, pp->fstype, pp->partno);
        }

        if (p->source) {
                _cleanup_(plan_source_freep) PlanSource *now = NULL;
                static const char *const tools[] = { "mcopy", "mmd", "mdir" };

                if (!e->img)
                        return error_setf(-EINVAL, _("The plan installs %s, but the image was not opened."), p->source->path);
                for (size_t i = 0; i < ELEMENTSOF(tools); i++)
                        if (!find_executable(tools[i]))
                                return error_setf(-ENOPKG, _("%s (mtools) is needed to install the boot loader, but it is not installed."),
                                                  tools[i]);
                r = image_to_plan_source(e->img, &now);
                if (r < 0)
                        return r;
                if (!streq_ptr(now->path, p->source->path) || now->size != p->source->size ||
                    !streq_ptr(now->fingerprint, p->source->fingerprint))
                        return error_setf(-ESTALE, _("The image %s changed since the plan was made. Make a new plan."), p->source->path);
                e->src_fd = open(p->source->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (e->src_fd < 0)
                        return error_setf(-errno, _("Cannot open the image %s: %m"), p->source->path);
        }

        r = disk_discover(p->target, &(DiscoverOptions) {}, &e->disk);
        if (r < 0)
                return r;
        if (e->disk->kind != p->target_kind)
                /* TRANSLATORS: the target, then what it is now and what it was: "block" (device) or "file". */
                return error_setf(-ESTALE, _("%s is a %s now, but the plan was made for a %s."), p->target,
                                  disk_kind_to_string(e->disk->kind), disk_kind_to_string(p->target_kind));
        r = plan_check_disk_unchanged(p, e->disk);
        if (r < 0)
                return r;
        r = disk_check_not_in_use(e->disk);
        if (r < 0)
                return r;
        if (e->disk->refusals & REFUSE_READ_ONLY)
                return error_setf(-EROFS, _("Refusing to write to %s: it is read-only."), p->target);

        /* The BSD lock first, waiting for udev's probe to end (disklock.h); it keeps udev from
         * probing the disk while its table changes (as systemd-repart does). Then O_EXCL, which
         * fails while anything has the disk mounted or claimed: closing it makes udev want to
         * probe again, which now waits for the lock instead of racing it. */
        e->fd = open(p->target, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (e->fd < 0)
                return error_setf(-errno, _("Cannot open %s for writing: %m"), p->target);
        r = disk_lock_exclusive(e->fd, p->target, disk_lock_timeout_usec());
        if (r < 0)
                return r;
        if (p->target_kind == DISK_BLOCK) {
                int fd = open(p->target, O_RDWR | O_CLOEXEC | O_NOCTTY | O_EXCL);
                if (fd < 0)
                        return error_setf(-errno,
                                          errno == EBUSY ? _("Refusing to write to %s: it is in use (%m).") : _("Cannot open %s for writing: %m"),
                                          p->target);
                /* Not kept: mkfs must be able to claim the partitions exclusively later. */
                close(fd);
        }
        if (p->encryption.enabled) {
                if (p->n_partitions > ELEMENTSOF(e->dm_name))
                        return error_setf(-E2BIG, _("The plan has too many partitions."));
                if (p->target_kind != DISK_BLOCK)
                        return error_setf(-EOPNOTSUPP, _("Cannot encrypt partitions of the image file %s: dm-crypt needs a block device."),
                                          p->target);
                if (p->encryption.passphrase && !(e->opts && e->opts->passphrase))
                        return error_setf(-EINVAL, _("The plan adds a passphrase keyslot, but no passphrase was given."));
                if (p->encryption.tpm2_pin && !(e->opts && e->opts->tpm2_pin))
                        return error_setf(-EINVAL, _("The plan protects the TPM2 key with a PIN, but no PIN was given."));
                if (!e->cb || !e->cb->recovery_key)
                        return error_setf(-EINVAL, _("The plan encrypts %s, but there is no way to hand over its recovery key."), p->target);
                r = encryption_preflight(p, &e->tpm);
                if (r < 0)
                        return r;
                r = recovery_key_generate(&e->recovery_key);
                if (r < 0)
                        return error_setf(r, _("Cannot generate a recovery key: %s"), strerror(-r));
        }

        if (p->source && (p->account || p->settings.hostname || p->settings.timezone || p->settings.locale || p->settings.keymap)) {
                const PlanPartition *root = plan_find_role(p, ROLE_ROOT);
                static const char *const tools[] = { "systemd-firstboot", "useradd", "chpasswd", "systemd-creds", "losetup" };

                if (geteuid() != 0)
                        return error_setf(-EPERM, _("Setting up the account and system settings mounts the installed root, which needs root."));
                if (!root || root->copy_from < 0 || !p->source->partitions[root->copy_from].fstype)
                        return error_setf(-EINVAL, _("The image's root filesystem type is unknown: it cannot be set up."));
                if (p->account && !(e->opts && e->opts->user_password))
                        return error_setf(-EINVAL, _("The plan creates the account %s, but no password was given."), p->account->user_name);
                for (size_t i = 0; i < ELEMENTSOF(tools); i++) {
                        bool needed = i == 0 ? true
                                    : i <= 2 ? p->account && p->account->kind == ACCOUNT_CLASSIC
                                    : i == 3 ? p->account && p->account->kind == ACCOUNT_HOMED
                                    : p->target_kind != DISK_BLOCK;
                        if (i == 0 && !(p->settings.hostname || p->settings.timezone || p->settings.locale || p->settings.keymap))
                                needed = false;
                        if (needed && !find_executable(tools[i]))
                                return error_setf(-ENOPKG, _("%s is needed to set up the installed system, but it is not installed."), tools[i]);
                }
        }

        return 0;
}

int executor_run(const Plan *p, Image *img, const ExecOptions *o, const ExecCallbacks *cb) {
        Exec e = { .plan = p, .img = img, .opts = o, .cb = cb, .fd = -EBADF, .src_fd = -EBADF };
        struct stat st;
        int r;

        /* A checksum is verified before anything is written, when the image is a file that can
         * be read twice cheaply. */
        if (p->source && p->source->sha256 && stat(p->source->path, &st) == 0 && S_ISREG(st.st_mode)) {
                if (p->source->sha256_origin)
                        /* TRANSLATORS: a step of the install; %s is the file that holds the checksum (SHA256SUMS). */
                        add_step(&e, "verify-image", p->source->size, step_verify_image, _("Verifying the image against %s"),
                                 p->source->sha256_origin);
                else
                        add_step(&e, "verify-image", p->source->size, step_verify_image, "%s", _("Verifying the image against its checksum"));
        }
        add_step(&e, "partition", 1, step_partition, _("Writing the partition table to %s"), p->target);
        if (p->target_kind == DISK_BLOCK)
                add_step(&e, "partition-nodes", 1, step_kernel, "%s", _("Waiting for the kernel to show the new partitions"));
        for (size_t i = 0; i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];
                char id[32];
                Step *s;

                if (!pp->encrypt)
                        continue;
                snprintf(id, sizeof(id), "encrypt-%s", partition_role_to_string(pp->role));
                /* TRANSLATORS: the partition's number and role (root, home); ", TPM2" and ", passphrase" may follow. */
                s = add_step(&e, id, 1, step_encrypt, _("Encrypting partition %u (%s): LUKS2, recovery key%s%s"), pp->partno,
                             partition_role_to_string(pp->role), p->encryption.tpm2 ? ", TPM2" : "",
                             p->encryption.passphrase ? _(", passphrase") : "");
                if (!s)
                        return -E2BIG;
                s->partition = pp;
        }
        for (size_t i = 0; i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];
                char id[32];
                Step *s;

                if (pp->action != ACTION_CREATE || !pp->fstype)
                        continue;
                snprintf(id, sizeof(id), "format-%s", partition_role_to_string(pp->role));
                /* TRANSLATORS: the filesystem (ext4, vfat), the partition's number, its role (root, esp), its size. */
                s = add_step(&e, id, pp->size, step_format, _("Creating the %s filesystem on partition %u (%s, %s)"), pp->fstype,
                             pp->partno, partition_role_to_string(pp->role), FORMAT_BYTES(pp->size));
                if (!s)
                        return -E2BIG;
                s->partition = pp;
        }
        for (size_t i = 0; p->source && i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];
                char id[32];
                Step *s, *v;

                if (pp->copy_from < 0)
                        continue;
                snprintf(id, sizeof(id), "copy-%s", partition_role_to_string(pp->role));
                s = add_step(&e, id, p->source->partitions[pp->copy_from].size, step_copy,
                             /* TRANSLATORS: the role (root, usr), the size, the partition's number on the target. */
                             _("Copying the image's %s partition (%s) to partition %u"), partition_role_to_string(pp->role),
                             FORMAT_BYTES(p->source->partitions[pp->copy_from].size), pp->partno);
                if (!s)
                        return -E2BIG;
                s->partition = pp;
                snprintf(id, sizeof(id), "verify-%s", partition_role_to_string(pp->role));
                v = add_step(&e, id, s->total, step_verify, _("Reading back partition %u to verify it"), pp->partno);
                if (!v)
                        return -E2BIG;
                v->partition = pp;
                v->copied_by = s;
        }
        if (p->source && p->account)
                add_step(&e, "configure", 1, step_configure,
                         /* TRANSLATORS: %s is the user name. */
                         _("Setting up the account %s, hostname, timezone, locale and keymap in the installed system"),
                         p->account->user_name);
        else if (p->source && (p->settings.hostname || p->settings.timezone || p->settings.locale || p->settings.keymap))
                add_step(&e, "configure", 1, step_configure, "%s",
                         _("Setting up hostname, timezone, locale and keymap in the installed system"));
        if (p->encryption.enabled)
                add_step(&e, "close-encrypted", 1, step_close, "%s", _("Closing the encrypted volumes"));
        if (p->source) {
                size_t n = img ? img->n_ukis : 0;
                add_step(&e, "boot", 1, step_boot,
                         ngettext("Installing systemd-boot and %zu unified kernel image", "Installing systemd-boot and %zu unified kernel images", n),
                         n);
        }
        add_step(&e, "sync", 1, step_sync, _("Flushing %s"), p->target);

        r = preflight(&e);
        if (r < 0)
                goto finish;

        if (cb && cb->confirm) {
                r = cb->confirm(p, cb->userdata);
                if (r == 0)
                        r = error_setf(-ECANCELED, _("Nothing was written to %s: not confirmed."), p->target);
                if (r < 0)
                        goto finish;
        }

        /* The recovery key is handed over before anything is written: no disk is ever encrypted
         * with a key that nobody has. The front end shows it and has part of it typed back, or
         * delivers it (unattended); anything but success stops here. */
        if (e.recovery_key) {
                r = cb->recovery_key(p, e.recovery_key, cb->userdata);
                if (r == 0)
                        r = error_setf(-ECANCELED, _("Nothing was written to %s: the recovery key was not confirmed."), p->target);
                if (r < 0)
                        goto finish;
        }

        /* The whole list first, so that a front end can show every step (and a machine reading
         * the JSON stream knows them) before the first one runs. */
        e.step_start_usec = now_usec();
        for (e.current = 0; e.current < e.n_steps; e.current++)
                emit(&e, PROGRESS_PLANNED, 0, NULL);

        for (e.current = 0; e.current < e.n_steps; e.current++) {
                Step *s = &e.steps[e.current];

                e.step_start_usec = now_usec();
                log_info("step %u/%u: %s", e.current + 1, e.n_steps, s->description);
                emit(&e, PROGRESS_BEGIN, 0, NULL);
                error_clear();
                r = s->run(&e, s);
                if (r < 0) {
                        if (!error_message())
                                error_setf(r, _("%s failed: %s"), s->description, strerror(-r));
                        if (e.partitioned && p->source) {
                                char cause[2048];
                                size_t n;

                                /* One sentence after the other: the cause ends with its stop. */
                                snprintf(cause, sizeof(cause), "%s", error_message());
                                n = strlen(cause);
                                if (n > 0 && n + 1 < sizeof(cause) && !strchr(".!?", cause[n - 1]))
                                        strcpy(cause + n, ".");
                                error_setf(r, _("%s %s is partitioned but not bootable; nothing on it can be used. Fix the cause and install again."),
                                           cause, p->target);
                        }
                        emit(&e, PROGRESS_FAILED, 0, error_message());
                        goto finish;
                }
                emit(&e, PROGRESS_END, s->total, NULL);
                if (streq(s->id, "partition"))
                        e.partitioned = true;
        }
        r = 0;

finish:
        exec_done(&e);
        return r;
}
