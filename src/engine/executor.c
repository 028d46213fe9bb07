/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <linux/loop.h>
#include <dirent.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "blockcopy.h"
#include "boot.h"
#include "disklock.h"
#include "encrypt.h"
#include "erase.h"
#include "error.h"
#include "executor.h"
#include "secureboot.h"
#include "handoff.h"
#include "fileio.h"
#include "i18n.h"
#include "image.h"
#include "interrupt.h"
#include "log.h"
#include "mountns.h"
#include "luks.h"
#include "mkfs.h"
#include "partition.h"
#include "record.h"
#include "recovery-entry.h"
#include "recovery.h"
#include "run.h"
#include "stream.h"
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

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

#define PARTITION_NODE_TIMEOUT_USEC (UINT64_C(10) * 1000000)

typedef struct Exec Exec;

typedef struct Step {
        char id[32];
        char description[160];
        uint64_t total;
        const PlanPartition *partition;
        uint8_t digest[COPY_DIGEST_SIZE]; /* copy steps: what was written, for the verify step after */
        struct Step *copied_by;           /* verify steps: the copy step they check (steps never move) */
        int (*run)(Exec *e, struct Step *s);
} Step;

struct Exec {
        const Plan *plan;
        Image *img;
        const ExecOptions *opts;
        int src_fd;           /* the image, open read-only */
        uint64_t last_update_usec;
        bool partitioned;     /* the partition table was written: failures leave a non-booting disk */
        bool table_cleared;   /* a streamed image's first step cleared the old table; none written yet */
        bool wrote_free_space; /* free mode: a streamed image's first step wrote into the free space */
        const ExecCallbacks *cb;
        Disk *disk;           /* the target as discovered right before writing */
        int fd;               /* the target, open read-write */
        Step **steps;         /* as many as the plan needs; each allocated on its own, so pointers stay */
        unsigned n_steps, current;
        bool paused_middle;   /* IMPRINT_TEST_PAUSE_AT: the step's "middle" was reached */
        PrivateMounts mounts; /* the run's own mount namespace (as root) */
        uint64_t step_start_usec;
        uint64_t step_start_cpu_usec;

        /* Encryption: the TPM, the recovery key, and the opened dm-crypt volume of each planned
         * partition (by index in plan->partitions), through which its data is written. */
        Tpm2Context *tpm;
        Secret *recovery_key;
        char *dm_name[16], *dm_path[16];

        /* A reset (PLAN_RESET): its audit record on the ESP (record.h), the boot default it
         * replaced, and the home volume it re-enrolls, unlocked before anything is written. */
        char *audit_name;
        json_object *audit;
        json_object *resumed_audit; /* the cut-off reset's record this one redoes, or NULL */
        char *previous_default;
        bool redirected;
        LuksVolume *reenroll[16];
        bool reset_begun;     /* reset-begin ran: the disk is no longer the system it was */
};

static size_t partition_index(const Exec *e, const PlanPartition *pp) {
        return (size_t) (pp - e->plan->partitions);
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static uint64_t cpu_usec(void) {
        struct rusage self = {}, children = {};

        (void) getrusage(RUSAGE_SELF, &self);
        (void) getrusage(RUSAGE_CHILDREN, &children);
        return (uint64_t) (self.ru_utime.tv_sec + self.ru_stime.tv_sec + children.ru_utime.tv_sec + children.ru_stime.tv_sec) * 1000000 +
               (uint64_t) (self.ru_utime.tv_usec + self.ru_stime.tv_usec + children.ru_utime.tv_usec + children.ru_stime.tv_usec);
}

static void emit(Exec *e, ProgressEventType type, uint64_t done, const char *message) {
        const Step *s = e->steps[e->current];
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
                .cpu_usec = type == PROGRESS_PLANNED ? 0 : cpu_usec() - e->step_start_cpu_usec,
                .message = message,
        }, e->cb->userdata);
}

/* Test-only: IMPRINT_TEST_PAUSE_AT=STEP-ID:PHASE (PHASE is begin, middle or end) stops the process
 * with SIGSTOP there, so that tests/integration/test-interrupt.sh can send a signal at a known
 * point of a step and then let it go on with SIGCONT. "begin" is after the step's begin event,
 * "middle" inside its work (halfway through a copy, read-back or checksum; while the installed
 * root is mounted; right after the work for steps without an inner point), "end" after its end
 * event. Unset, this does nothing; set, it only stops the process, which anyone who can signal it
 * could do anyway. */
static void test_pause(Exec *e, const char *phase) {
        const char *want = getenv("IMPRINT_TEST_PAUSE_AT");
        const char *id = e->steps[e->current]->id;
        size_t n = strlen(id);

        if (!want || strncmp(want, id, n) != 0 || want[n] != ':' || !streq(want + n + 1, phase))
                return;
        if (streq(phase, "middle")) {
                if (e->paused_middle)
                        return;
                e->paused_middle = true;
        }
        log_info("IMPRINT_TEST_PAUSE_AT: stopping at %s:%s", id, phase);
        (void) raise(SIGSTOP);
}

/* At most ten updates a second: enough for a smooth bar, cheap for a pipe to a log. */
static void on_copy_progress(uint64_t done, uint64_t total, void *userdata) {
        Exec *e = userdata;
        uint64_t now = now_usec();

        if (total > 0 && done * 2 >= total)
                test_pause(e, "middle");

        if (done < total && now - e->last_update_usec < 100 * 1000)
                return;
        e->last_update_usec = now;
        emit(e, PROGRESS_UPDATE, done, NULL);
}

/* Appends a step; NULL only when out of memory (the plan loader bounds the number of partitions,
 * and with them the number of steps). */
_printf_(5, 6) __attribute__((warn_unused_result))
static Step *add_step(Exec *e, const char *id, uint64_t total, int (*run)(Exec *, Step *), const char *fmt, ...) {
        Step **a, *s;
        va_list ap;

        a = reallocarray(e->steps, e->n_steps + 1, sizeof(Step *));
        if (!a)
                return NULL;
        e->steps = a;
        s = calloc(1, sizeof(Step));
        if (!s)
                return NULL;
        e->steps[e->n_steps++] = s;
        *s = (Step) { .total = total, .run = run };
        snprintf(s->id, sizeof(s->id), "%s", id);
        va_start(ap, fmt);
        vsnprintf(s->description, sizeof(s->description), fmt, ap);
        va_end(ap);
        return s;
}

/* An install is not complete until its last step has finished. Until then every partition it
 * creates is named DISK_INCOMPLETE_LABEL in the GPT, so that a target whose install was
 * interrupted (Ctrl-C, a crash, power lost, kill -9) is listed by `imprint disks` as an incomplete
 * install, and not as the system whose files it may already hold; step_finish() gives the
 * partitions their planned names as the very last write. */
/* A shallow copy of the plan in *ret whose partitions to be created (or, for a reset, recreated)
 * are named DISK_INCOMPLETE_LABEL; *ret_marked is its partition array, for the caller to free. */
static int plan_marked_incomplete(const Plan *p, Plan *ret, PlanPartition **ret_marked) {
        PlanPartition *marked = reallocarray(NULL, MAX(p->n_partitions, (size_t) 1), sizeof(PlanPartition));

        if (!marked)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_partitions; i++) {
                marked[i] = p->partitions[i];
                if (marked[i].action == ACTION_CREATE)
                        marked[i].label = (char *) DISK_INCOMPLETE_LABEL;
        }
        *ret = *p;
        ret->partitions = marked;
        *ret_marked = marked;
        return 0;
}

static int step_partition(Exec *e, Step *s) {
        _cleanup_(freep) PlanPartition *marked = NULL;
        Plan q;
        int r;

        r = plan_marked_incomplete(e->plan, &q, &marked);
        if (r < 0)
                return r;
        return partition_write_table(&q, e->fd);
}

static int step_finish(Exec *e, Step *s) {
        return partition_write_labels(e->plan, e->fd);
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

/* A loop device over [offset, offset+size) of file that detaches itself when its last user goes
 * (LO_FLAGS_AUTOCLEAR): once the caller has mounted it and closed *ret_fd, unmounting it, or the
 * end of the run's private mount namespace (kill -9 included), leaves no device behind. */
static int loop_attach_autoclear(const char *file, uint64_t offset, uint64_t size, int *ret_fd, char **ret_node) {
        _cleanup_(closep) int ctl = -EBADF, file_fd = -EBADF;

        ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (ctl < 0)
                return error_setf(-errno, _("Cannot open /dev/loop-control: %m"));
        file_fd = open(file, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (file_fd < 0)
                return error_setf(-errno, _("Cannot open %s: %m"), file);

        for (unsigned attempt = 0; attempt < 64; attempt++) {
                struct loop_config c = {
                        .fd = (uint32_t) file_fd,
                        .info = { .lo_offset = offset, .lo_sizelimit = size, .lo_flags = LO_FLAGS_AUTOCLEAR },
                };
                _cleanup_(freep) char *node = NULL;
                int n, fd;

                n = ioctl(ctl, LOOP_CTL_GET_FREE);
                if (n < 0)
                        return error_setf(-errno, _("Cannot find a free loop device: %m"));
                if (asprintf(&node, "/dev/loop%d", n) < 0)
                        return -ENOMEM;
                fd = open(node, O_RDWR | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return error_setf(-errno, _("Cannot open %s: %m"), node);
                if (ioctl(fd, LOOP_CONFIGURE, &c) >= 0) {
                        *ret_fd = fd;
                        *ret_node = TAKE_PTR(node);
                        return 0;
                }
                close(fd);
                if (errno != EBUSY) /* EBUSY: another program took it first */
                        return error_setf(-errno, _("Cannot set up a loop device for %s: %m"), file);
        }
        return error_setf(-EBUSY, _("Cannot set up a loop device for %s: every free one was taken first."), file);
}

/* Mounts a partition of the target on dir: its opened dm-crypt volume, its partition node, or,
 * for an image file, a loop device over its byte range that detaches itself with the unmount. */
static int mount_target_partition(Exec *e, const PlanPartition *pp, const char *fstype, const char *dir) {
        const Plan *p = e->plan;
        _cleanup_(freep) char *node = NULL;
        _cleanup_(closep) int loop_fd = -EBADF;
        int r;

        if (pp->encrypt)
                node = strdup_safe(e->dm_path[partition_index(e, pp)]);
        else if (p->target_kind == DISK_BLOCK) {
                r = disk_partition_node(e->disk, pp->partno, &node);
                if (r < 0)
                        return r;
        } else {
                r = loop_attach_autoclear(p->target, pp->start, pp->size, &loop_fd, &node);
                if (r < 0)
                        return r;
        }
        if (!node)
                return -ENOMEM;
        if (mount(node, dir, fstype, MS_NOSUID | MS_NODEV, NULL) < 0)
                return error_setf(-errno, _("Cannot mount the %s partition (%s, %s): %m"), partition_role_to_string(pp->role), node,
                                  fstype ?: "?");
        return 0;
}

static int unmount_target_partition(const char *dir, const char *what, int r) {
        if (umount2(dir, 0) < 0 && r >= 0)
                /* TRANSLATORS: %s is "root" or "home". */
                r = error_setf(-errno, _("Cannot unmount the installed %s partition: %m"), what);
        return r;
}

/* The installed root, mounted for a moment to write what its first boot needs: the settings
 * (systemd-firstboot --root) and the account. A classic account's home directory belongs on the
 * home partition, when there is one: stock systemd-gpt-auto-generator mounts that partition on
 * /home only while /home on root is empty ("already populated, ignoring."). So the home
 * partition (or its dm-crypt volume) is mounted on <root>/home while useradd --root runs, which
 * chroots and so creates the directory, owner, mode and /etc/skel copies inside it. */
/* The root filesystem of the install: the image's (copied), or the one created here (usr images). */
static const char *root_fstype(const Plan *p, const PlanPartition *root) {
        if (!root)
                return NULL;
        return root->copy_from >= 0 ? p->source->partitions[root->copy_from].fstype : root->fstype;
}

/* A usr image's root starts empty; at boot the image fills /etc from /usr/share/factory/etc
 * without replacing what is there. Only the directories that what imprint writes needs. */
static int make_empty_root_dirs(const char *root) {
        static const char *const dirs[] = { "/etc", "/etc/systemd", "/etc/systemd/system" };

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_(freep) char *d = NULL;

                if (asprintf(&d, "%s%s", root, dirs[i]) < 0)
                        return -ENOMEM;
                if (mkdir(d, 0755) < 0 && errno != EEXIST)
                        return error_setf(-errno, _("Cannot create %s in the installed system: %m"), dirs[i]);
        }
        return 0;
}

/* Whether the plan makes an installed system: an install of an image, or a reset (whose usr
 * image is on the disk already, so its plan names no image). */
static bool plan_installs_os(const Plan *p) {
        return p->source || p->mode == PLAN_RESET;
}

static bool plan_configures_root(const Plan *p) {
        return p->account || p->oem || p->settings.hostname || p->settings.timezone || p->settings.locale || p->settings.keymap ||
               p->secure_boot.tpm2_reseal;
}

static bool plan_has_source_role(const Plan *p, PartitionRole role) {
        for (size_t i = 0; p->source && i < p->source->n_partitions; i++)
                if (p->source->partitions[i].role == role)
                        return true;
        return false;
}

/* Whether the configure step can write the factory-reset hook into the installed root: it must be
 * mounted (root only) and writable (not a squashfs or erofs root, not marked read-only). */
static bool plan_can_write_hook(const Plan *p, char **ret_why) {
        const PlanPartition *root = plan_find_role(p, ROLE_ROOT);
        const char *fs = root_fstype(p, root);

        *ret_why = NULL;
        if (!root || !fs)
                *ret_why = strdup("the root filesystem type is unknown");
        else if (streq(fs, "squashfs") || streq(fs, "erofs") ||
                 (root->copy_from >= 0 && (p->source->partitions[root->copy_from].flags & DPS_FLAG_READ_ONLY)))
                *ret_why = strdup("the image's root is read-only");
        else if (root->copy_from >= 0 && plan_has_source_role(p, ROLE_ROOT_VERITY))
                *ret_why = strdup("the image's root is protected by dm-verity, so nothing may be written into it");
        else if (geteuid() != 0)
                *ret_why = strdup("mounting the installed root needs root");
        else
                return true;
        return false;
}

static int step_configure(Exec *e, Step *s) {
        const Plan *p = e->plan;
        const PlanPartition *root = plan_find_role(p, ROLE_ROOT), *home = plan_find_role(p, ROLE_HOME);
        const char *fstype = root_fstype(p, root);
        _cleanup_(freep) char *home_dir = NULL;
        char dir[] = "/run/imprint-target.XXXXXX";
        int r;

        if (!mkdtemp(dir))
                return error_setf(-errno, _("Cannot make a mount point: %m"));
        r = mount_target_partition(e, root, fstype, dir);
        if (r < 0) {
                (void) rmdir(dir);
                /* The factory-reset hook alone is not worth a failed install: the recovery entry
                 * works without it, only factory-reset.target does not reach it. */
                if (!plan_configures_root(p) && r != -ENOMEM) {
                        log_warning("The factory-reset hook is not written into the installed root: %s",
                                    error_message() ?: strerror(-r));
                        error_clear();
                        return 0;
                }
                return r;
        }
        if (p->account && p->account->kind == ACCOUNT_CLASSIC && home && home->fstype && home->action == ACTION_CREATE) {
                if (asprintf(&home_dir, "%s/home", dir) < 0)
                        r = -ENOMEM;
                else if (mkdir(home_dir, 0755) < 0 && errno != EEXIST)
                        r = error_setf(-errno, _("Cannot create /home in the installed root: %m"));
                else
                        r = mount_target_partition(e, home, home->fstype, home_dir);
                if (r < 0)
                        home_dir = mfree(home_dir);
        }
        if (r >= 0 && root->copy_from < 0)
                r = make_empty_root_dirs(dir);
        if (r >= 0) {
                test_pause(e, "middle");
                if (p->account || p->settings.hostname || p->settings.timezone || p->settings.locale || p->settings.keymap)
                        r = account_configure_root(p, dir, e->opts ? e->opts->user_password : NULL);
        }
        if (r >= 0 && p->oem)
                /* The customer's first boot: systemd-firstboot, homed-firstboot, the new recovery key. */
                r = handoff_write_root(p, dir);
        if (r >= 0)
                /* After a Secure Boot enrollment: the TPM2 key bound to PCR 7 at the first boot with it on. */
                r = secureboot_write_root(p, dir);
        if (r >= 0) {
                /* factory-reset.target in the installed system boots the recovery entry. */
                r = recovery_entry_write_request_hook(dir);
                if (r == -EOPNOTSUPP) {
                        log_info("The factory-reset hook is not written: this imprint cannot write it.");
                        r = 0;
                }
        }
        if (home_dir)
                r = unmount_target_partition(home_dir, "home", r);
        r = unmount_target_partition(dir, "root", r);
        (void) rmdir(dir);
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

/* The partition a streamed image's big partition is written to. */
static const PlanPartition *streamed_partition(const Plan *p) {
        if (!p->source || !p->source->streaming)
                return NULL;
        for (size_t i = 0; i < p->n_partitions; i++)
                if (p->partitions[i].copy_from >= 0 && (size_t) p->partitions[i].copy_from == p->source->streamed)
                        return &p->partitions[i];
        return NULL;
}

/* Zeroes [offset, offset+len) of the target (len clipped to its end). */
static int zero_target(Exec *e, uint64_t offset, uint64_t len) {
        _cleanup_(freep) uint8_t *zeros = calloc(1, 64 * 1024);
        uint64_t end = MIN(offset + len, e->disk->size);

        if (!zeros)
                return -ENOMEM;
        for (uint64_t at = offset; at < end; at += 64 * 1024) {
                int r = pwrite_full(e->fd, zeros, (size_t) MIN(64 * 1024, end - at), at);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A streamed image (stream.h): its big partition is fetched, decompressed and written in one
 * pass, the rest kept; then the image is finished where it landed and the plan updated. */
static int step_stream(Exec *e, Step *s) {
        const PlanPartition *pp = s->partition;
        _cleanup_(closep) int dm_fd = -EBADF;
        uint64_t written = 0;
        int r;

        r = open_destination(e, pp, &dm_fd);
        if (r < 0)
                return r;
        /* Erase mode: from here the disk no longer holds what it held, so its old partition table
         * goes first (the first and last MiB, outside every planned partition), and a stream that
         * fails leaves a disk that claims nothing. Free mode keeps the disk's partitions: the
         * stream lands in the free space, and the table stays as it is until the partition step. */
        if (!e->partitioned && e->plan->mode != PLAN_ERASE)
                e->wrote_free_space = true;
        else if (!e->partitioned) {
                e->partitioned = e->table_cleared = true;
                r = zero_target(e, 0, MIN(e->plan->partitions[0].start, (uint64_t) PLAN_ALIGNMENT));
                if (r >= 0 && e->disk->size > PLAN_ALIGNMENT)
                        r = zero_target(e, e->disk->size - PLAN_ALIGNMENT, PLAN_ALIGNMENT);
                if (r < 0)
                        return error_setf(r, _("Cannot clear the old partition table of %s: %s"), e->plan->target, strerror(-r));
        }
        r = image_stream_run(e->img, &(CopyRegion) {
                .dst_fd = dm_fd >= 0 ? dm_fd : e->fd,
                .dst_offset = dm_fd >= 0 ? 0 : pp->start,
                .dst_is_block = e->plan->target_kind == DISK_BLOCK,
        }, on_copy_progress, e, s->digest, &written);
        if (r < 0)
                return r;
        if (fsync(dm_fd >= 0 ? dm_fd : e->fd) < 0)
                return error_setf(-errno, _("Cannot flush %s: %m"), e->plan->target);
        log_info("streamed %s of data into partition %u", FORMAT_BYTES(written), pp->partno);

        r = e->cb->image_streamed(dm_fd >= 0 ? e->dm_path[partition_index(e, pp)] : e->plan->target, dm_fd >= 0 ? 0 : pp->start,
                                  e->cb->userdata);
        if (r < 0)
                return r;
        /* The plan's sizes after the streamed partition may have changed: so may the steps'. */
        for (unsigned i = 0; i < e->n_steps; i++)
                if (e->steps[i]->partition && (strncmp(e->steps[i]->id, "format-", 7) == 0 || strncmp(e->steps[i]->id, "erase-", 6) == 0))
                        e->steps[i]->total = e->steps[i]->partition->size;
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
        r = copy_region_digest(dm_fd >= 0 ? dm_fd : e->fd, dm_fd >= 0 ? 0 : pp->start, sp->size, on_copy_progress, e, back);
        if (r < 0)
                return error_setf(r, _("Cannot read back partition %u of %s: %s"), pp->partno, e->plan->target, strerror(-r));
        if (memcmp(s->copied_by->digest, back, sizeof(back)) != 0)
                return error_setf(-EIO, _("Partition %u of %s does not read back what was written to it: the disk is faulty or "
                                          "was changed during the install."), pp->partno, e->plan->target);
        log_info("partition %u reads back intact", pp->partno);
        return 0;
}

/* An empty slot of a usr image: its first and last MiB zeroed, so that no signature of what the
 * disk held before (a filesystem, verity or LUKS superblock, a GPT) shows through to blkid or to
 * systemd-sysupdate, which takes the slot by its name "_empty" and its type alone. */
static int step_clear_slot(Exec *e, Step *s) {
        const PlanPartition *pp = s->partition;
        uint64_t n = MIN(pp->size, (uint64_t) PLAN_ALIGNMENT), done = 0;
        _cleanup_(freep) void *zeros = calloc(1, (size_t) PLAN_ALIGNMENT);

        if (!zeros)
                return -ENOMEM;
        for (int k = 0; k < 2; k++) {
                uint64_t off = k == 0 ? pp->start : pp->start + pp->size - n;
                int r = pwrite_full(e->fd, zeros, (size_t) n, off);

                if (r < 0)
                        return error_setf(r, _("Cannot clear partition %u of %s: %s"), pp->partno, e->plan->target, strerror(-r));
                done += n;
                emit(e, PROGRESS_UPDATE, done, NULL);
        }
        if (fsync(e->fd) < 0)
                return error_setf(-errno, _("Cannot flush %s: %m"), e->plan->target);
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
        /* What a factory reset finds the install by (record.h); it holds no secret. */
        return record_install_write(e->plan, &(FsLocation) { .disk = e->plan->target, .node = esp_node, .offset = esp->start,
                                                              .fstype = "vfat" });
}

/* ---- factory reset (PLAN_RESET) ------------------------------------------------------------- */

static bool reset_touches_variables(const Exec *e) {
        return e->plan->target_kind == DISK_BLOCK && !(e->opts && e->opts->no_variables);
}

static const EfiVars *exec_efivars(const Exec *e, EfiVars *storage) {
        *storage = (EfiVars) { .root = e->opts ? e->opts->efivars_root : NULL };
        return storage;
}

/* The ESP of the target, for the records (record.h). node_storage keeps the node's name. */
static int exec_esp(Exec *e, FsLocation *ret, char **node_storage) {
        const PlanPartition *esp = plan_find_role(e->plan, ROLE_ESP);
        int r;

        if (!esp)
                return error_setf(-EINVAL, _("The plan has no ESP."));
        *node_storage = NULL;
        if (e->plan->target_kind == DISK_BLOCK) {
                r = disk_partition_node(e->disk, esp->partno, node_storage);
                if (r < 0)
                        return r;
        }
        *ret = (FsLocation) { .disk = e->plan->target, .node = *node_storage, .offset = esp->start, .fstype = "vfat" };
        return 0;
}

static void utc_now(char buf[static 32]) {
        struct tm tm;
        time_t t = time(NULL);

        if (!gmtime_r(&t, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, 32, "?");
}

static json_object *json_str(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

/* An audit record's entry of a partition, by its number. */
static json_object *audit_record_partition(json_object *audit, unsigned partno) {
        json_object *parts = NULL;

        if (!audit || !json_object_object_get_ex(audit, "partitions", &parts))
                return NULL;
        for (size_t i = 0; i < json_object_array_length(parts); i++) {
                json_object *o = json_object_array_get_idx(parts, i), *n = NULL;

                if (json_object_object_get_ex(o, "partno", &n) && json_object_get_int(n) == (int) partno)
                        return o;
        }
        return NULL;
}

static json_object *audit_partition(Exec *e, unsigned partno) {
        return audit_record_partition(e->audit, partno);
}

static int audit_save(Exec *e) {
        _cleanup_(freep) char *node = NULL;
        FsLocation esp;
        int r;

        r = exec_esp(e, &esp, &node);
        if (r < 0)
                return r;
        return record_reset_write(&esp, e->audit_name, e->audit);
}

/* A reset that was cut off (power lost, killed) left its audit record at "running"; this one
 * redoes it. The older record is closed as "interrupted" and names this one, and this one names
 * it: together they say what happened (the first run may already have crypto-erased a volume
 * that this run then finds without a header). */
static int audit_close_interrupted(Exec *e, const char *name, json_object *old) {
        _cleanup_(freep) char *node = NULL;
        json_object *status;
        FsLocation esp;
        int r;

        if (!old || !json_object_object_get_ex(old, "status", &status) || !streq_ptr(json_object_get_string(status), "running"))
                return 0;
        r = exec_esp(e, &esp, &node);
        if (r < 0)
                return r;
        json_object_object_add(old, "status", json_object_new_string("interrupted"));
        json_object_object_add(old, "resumedBy", json_object_new_string(e->audit_name));
        r = record_reset_write(&esp, name, old);
        if (r < 0)
                return r;
        json_object_object_add(e->audit, "resumes", json_object_new_string(name));
        e->resumed_audit = json_object_get(old);
        log_info("reset: %s/%s was cut off while running; closed as interrupted, this reset redoes it", RECORD_DIR, name);
        return 0;
}

/* The name of this reset's audit record: its start time to the second, never the name of the
 * newest record already there (a reset redone within the second of the one it redoes). */
static int audit_pick_name(Exec *e, char **ret_last_name, json_object **ret_last) {
        _cleanup_(freep) char *node = NULL;
        FsLocation esp;
        int r;

        *ret_last_name = NULL;
        *ret_last = NULL;
        r = exec_esp(e, &esp, &node);
        if (r < 0)
                return r;
        r = record_reset_last(&esp, ret_last, ret_last_name);
        if (r < 0 && r != -ENOENT)
                log_warning("Cannot read the last reset's audit record: %s", error_message() ?: strerror(-r));
        for (int attempt = 0;; attempt++) {
                e->audit_name = mfree(e->audit_name);
                r = record_reset_name(&e->audit_name);
                if (r < 0)
                        return r;
                if (!*ret_last_name || strcmp(e->audit_name, *ret_last_name) > 0 || attempt >= 3)
                        return 0;
                (void) usleep(500 * 1000);
        }
}

/* What the audit record says at the start: everything but the outcome. No secrets. */
static int audit_new(Exec *e) {
        const Plan *p = e->plan;
        const PlanReset *rs = p->reset;
        json_object *a = json_object_new_object(), *img = json_object_new_object(), *disk = json_object_new_object(),
                    *parts = json_object_new_array();
        char now[32];

        if (!a || !img || !disk || !parts) {
                json_object_put(a), json_object_put(img), json_object_put(disk), json_object_put(parts);
                return -ENOMEM;
        }
        utc_now(now);
        json_object_object_add(a, "formatVersion", json_object_new_int(RECORD_FORMAT_VERSION));
        json_object_object_add(a, "status", json_object_new_string("running"));
        json_object_object_add(a, "startedAt", json_object_new_string(now));
        json_object_object_add(a, "finishedAt", NULL);
        json_object_object_add(a, "entryPoint", json_object_new_string(reset_entry_point_to_string(rs->entry_point)));
        json_object_object_add(a, "imprintVersion", json_object_new_string(IMPRINT_VERSION));
        {
                _cleanup_(install_record_freep) InstallRecord *rec = NULL;
                _cleanup_(freep) char *node = NULL;
                const PlanSource *src = p->source;
                FsLocation esp;

                /* A usr image's reset names no image: the install record says what is installed. */
                if (!src && exec_esp(e, &esp, &node) >= 0 && record_install_read(&esp, &rec) >= 0)
                        src = rec->plan->source;
                error_clear();
                json_object_object_add(img, "name", json_str(src ? src->os_name : NULL));
                json_object_object_add(img, "id", json_str(src ? src->image_id : NULL));
                json_object_object_add(img, "version", json_str(rs->image_version ?: (src ? src->image_version : NULL)));
                json_object_object_add(img, "kind", json_str(src ? plan_source_kind_to_string(src->kind) : NULL));
        }
        json_object_object_add(a, "image", img);
        json_object_object_add(disk, "path", json_object_new_string(p->target));
        json_object_object_add(disk, "model", json_str(e->disk ? e->disk->model : NULL));
        json_object_object_add(disk, "serial", json_str(e->disk ? e->disk->serial : NULL));
        json_object_object_add(disk, "size", json_object_new_int64((int64_t) p->fingerprint.size));
        json_object_object_add(a, "disk", disk);
        json_object_object_add(a, "keepHome", json_object_new_boolean(rs->keep_home));
        json_object_object_add(a, "secureErase", json_object_new_boolean(rs->secure_erase));
        json_object_object_add(a, "tpmClear", json_object_new_string(rs->tpm_clear ? "requested" : "not-asked"));
        for (size_t i = 0; i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];
                const DiskPartition *dp = NULL;
                json_object *o = json_object_new_object();

                if (!o)
                        return -ENOMEM;
                for (size_t k = 0; e->disk && k < e->disk->n_partitions; k++)
                        if (e->disk->partitions[k].partno == pp->partno)
                                dp = &e->disk->partitions[k];
                json_object_object_add(o, "partno", json_object_new_int((int) pp->partno));
                json_object_object_add(o, "role", json_object_new_string(partition_role_to_string(pp->role)));
                json_object_object_add(o, "action", json_object_new_string(pp->erase ? "erased" : pp->action == ACTION_REENROLL ? "reenrolled" : "kept"));
                json_object_object_add(o, "method", NULL);
                json_object_object_add(o, "dataDiscarded", json_object_new_boolean(false));
                json_object_object_add(o, "keyslotsDestroyed", json_object_new_int(0));
                json_object_object_add(o, "oldLuksUuid",
                                       dp && streq_ptr(dp->fstype, "crypto_LUKS") && dp->fsuuid ? json_object_new_string(dp->fsuuid) : NULL);
                json_object_object_add(o, "newLuksUuid",
                                       pp->encrypt && pp->action != ACTION_KEEP ? json_object_new_string(SD_ID128_TO_UUID_STRING(pp->luks_uuid)) : NULL);
                json_object_array_add(parts, o);
        }
        json_object_object_add(a, "partitions", parts);
        json_object_object_add(a, "account", json_str(rs->account_note));
        json_object_object_add(a, "steps", json_object_new_array());
        json_object_object_add(a, "error", NULL);
        e->audit = a;
        return 0;
}

/* From here on the disk is no longer the system it was: the audit record says a reset is
 * running, the firmware boots the recovery entry until the end, and the partitions that are
 * recreated carry DISK_INCOMPLETE_LABEL, so that nothing takes them for an intact system. */
static int step_reset_begin(Exec *e, Step *s) {
        const Plan *p = e->plan;
        _cleanup_(freep) PlanPartition *marked = NULL;
        _cleanup_(freep) char *last_name = NULL;
        json_object *last = NULL;
        Plan q;
        EfiVars v;
        int r;

        r = audit_pick_name(e, &last_name, &last);
        if (r >= 0)
                r = audit_new(e);
        if (r < 0) {
                json_object_put(last);
                return r;
        }
        r = audit_close_interrupted(e, last_name, last);
        json_object_put(last);
        if (r < 0)
                return r;
        r = audit_save(e);
        if (r < 0)
                return r;
        e->reset_begun = true;
        log_info("reset: audit record %s/%s written (status running)", RECORD_DIR, e->audit_name);

        if (reset_touches_variables(e)) {
                r = recovery_redirect_boot(exec_efivars(e, &v), &e->previous_default);
                if (r < 0)
                        log_warning("The recovery entry could not be made the boot default while the reset runs: %s",
                                    error_message() ?: strerror(-r));
                else
                        e->redirected = true;
        } else
                log_info("reset: EFI variables left alone (%s)", p->target_kind == DISK_BLOCK ? "--no-variables" : "an image file");

        r = plan_marked_incomplete(p, &q, &marked);
        if (r < 0)
                return r;
        return partition_write_labels(&q, e->fd);
}

static int step_erase(Exec *e, Step *s) {
        const PlanPartition *pp = s->partition;
        _cleanup_(erase_result_done) EraseResult res = {};
        _cleanup_(freep) char *node = NULL, *what = NULL;
        json_object *o;
        int r;

        if (e->plan->target_kind == DISK_BLOCK) {
                r = disk_partition_node(e->disk, pp->partno, &node);
                if (r < 0)
                        return r;
        }
        /* What is about to be destroyed goes into the record first: power lost in the middle
         * leaves a record that says which volume's keyslots were being destroyed. */
        o = audit_partition(e, pp->partno);
        if (o && node) {
                _cleanup_(luks_freep) LuksVolume *v = NULL;

                if (luks_open_header(node, &v) >= 0) {
                        json_object_object_add(o, "method", json_object_new_string(erase_method_to_string(ERASE_CRYPTO)));
                        json_object_object_add(o, "state", json_object_new_string("begun"));
                        json_object_object_add(o, "keyslotsFound",
                                               json_object_new_int(__builtin_popcountll(luks_keyslots_in_use(v))));
                        if (audit_save(e) < 0)
                                log_warning("Cannot update the audit record: %s", error_message() ?: "?");
                }
                error_clear();
        }
        r = erase_partition(&(EraseTarget) {
                                    .node = node,
                                    .file = e->plan->target,
                                    .fd = e->fd,
                                    .offset = pp->start,
                                    .size = pp->size,
                                    .is_block = e->plan->target_kind == DISK_BLOCK,
                                    .secure = e->plan->reset && e->plan->reset->secure_erase,
                            },
                            on_copy_progress, e, &res);
        if (r < 0)
                return error_prefixf(r, _("Cannot erase partition %u (%s) of %s"), pp->partno, partition_role_to_string(pp->role),
                                     e->plan->target);
        o = audit_partition(e, pp->partno);
        if (o) {
                json_object *cut = audit_record_partition(e->resumed_audit, pp->partno), *x = NULL;

                json_object_object_del(o, "state");
                json_object_object_del(o, "keyslotsFound");
                json_object_object_add(o, "method", json_object_new_string(erase_method_to_string(res.method)));
                json_object_object_add(o, "dataDiscarded", json_object_new_boolean(res.data_discarded));
                json_object_object_add(o, "keyslotsDestroyed", json_object_new_int((int) res.keyslots_destroyed));
                if (res.luks_uuid)
                        json_object_object_add(o, "oldLuksUuid", json_object_new_string(res.luks_uuid));
                else if (cut && json_object_object_get_ex(cut, "method", &x) &&
                         streq_ptr(json_object_get_string(x), erase_method_to_string(ERASE_CRYPTO))) {
                        /* The cut-off reset had begun the crypto-erase of this volume and no header
                         * of it is left: erase_partition() destroys the keyslots before it
                         * overwrites a header, so they went first. Say so, from that record. */
                        json_object *uuid = NULL, *n = NULL;

                        json_object_object_add(o, "method", json_object_new_string(erase_method_to_string(ERASE_CRYPTO)));
                        if (json_object_object_get_ex(cut, "oldLuksUuid", &uuid))
                                json_object_object_add(o, "oldLuksUuid", json_object_get(uuid));
                        if (json_object_object_get_ex(cut, "keyslotsDestroyed", &n) ||
                            json_object_object_get_ex(cut, "keyslotsFound", &n))
                                json_object_object_add(o, "keyslotsDestroyed", json_object_get(n));
                        if (json_object_object_get_ex(e->audit, "resumes", &x))
                                json_object_object_add(o, "headerDestroyedBy", json_object_get(x));
                }
                if (res.secure)
                        json_object_object_add(o, "secure", json_object_new_boolean(true));
        }
        if (erase_result_describe(&res, &what) >= 0)
                log_info("partition %u (%s): %s", pp->partno, partition_role_to_string(pp->role), what);
        /* The record says what was done as soon as it is done. */
        r = audit_save(e);
        if (r < 0)
                log_warning("Cannot update the audit record: %s", error_message() ?: strerror(-r));
        return 0;
}

static int step_reenroll(Exec *e, Step *s) {
        const PlanPartition *pp = s->partition;
        LuksVolume *v = e->reenroll[partition_index(e, pp)];
        unsigned removed = 0;
        json_object *o;
        int r;

        if (!v)
                return error_setf(-EINVAL, _("The home volume on partition %u was not unlocked."), pp->partno);
        r = encrypt_reenroll(e->plan, pp, v,
                             &(EncryptKeys) {
                                     .recovery_key = e->recovery_key,
                                     .passphrase = e->opts ? e->opts->passphrase : NULL,
                                     .tpm2_pin = e->opts ? e->opts->tpm2_pin : NULL,
                                     .tpm = e->tpm,
                             },
                             &removed);
        if (r < 0)
                return error_prefixf(r, _("Cannot re-enroll the %s partition (%u)"), partition_role_to_string(pp->role), pp->partno);
        o = audit_partition(e, pp->partno);
        if (o)
                json_object_object_add(o, "keyslotsDestroyed", json_object_new_int((int) removed));
        return 0;
}

static int add_step_time(Exec *e, const Step *s, uint64_t usec) {
        json_object *steps = NULL, *o;

        if (!e->audit || !json_object_object_get_ex(e->audit, "steps", &steps))
                return 0;
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "id", json_object_new_string(s->id));
        {
                char text[32];

                /* Milliseconds are what a person reads; json-c would print 17 digits. */
                snprintf(text, sizeof(text), "%.3f", (double) usec / 1e6);
                json_object_object_add(o, "seconds", json_object_new_double_s((double) usec / 1e6, text));
        }
        return json_object_array_add(steps, o) < 0 ? -ENOMEM : 0;
}

/* install.json describes the disk as it is: the new LUKS UUIDs of root and home. */
static int rewrite_install_record(Exec *e) {
        _cleanup_(install_record_freep) InstallRecord *rec = NULL;
        _cleanup_(freep) char *node = NULL;
        FsLocation esp;
        int r;

        r = exec_esp(e, &esp, &node);
        if (r < 0)
                return r;
        r = record_install_read(&esp, &rec);
        if (r < 0)
                return r;
        for (size_t i = 0; i < rec->plan->n_partitions; i++) {
                PlanPartition *was = &rec->plan->partitions[i];

                for (size_t k = 0; k < e->plan->n_partitions; k++) {
                        const PlanPartition *now = &e->plan->partitions[k];

                        if (now->partno != was->partno || !now->erase)
                                continue;
                        if (now->encrypt)
                                was->luks_uuid = now->luks_uuid;
                        if (now->fstype) {
                                char *fs = strdup(now->fstype);
                                if (!fs)
                                        return -ENOMEM;
                                free(was->fstype);
                                was->fstype = fs;
                        }
                }
        }
        return record_install_update(rec, &esp);
}

static int step_reset_end(Exec *e, Step *s) {
        const PlanReset *rs = e->plan->reset;
        char now[32];
        EfiVars v;
        int r;

        r = rewrite_install_record(e);
        if (r < 0)
                return r;
        if (e->redirected) {
                r = recovery_redirect_restore(exec_efivars(e, &v), e->previous_default);
                if (r < 0)
                        log_warning("Cannot restore the boot default: %s", error_message() ?: strerror(-r));
                else
                        e->redirected = false;
        }
        if (reset_touches_variables(e)) {
                r = recovery_request_clear(exec_efivars(e, &v));
                if (r < 0)
                        log_warning("Cannot clear the firmware's reset request: %s", error_message() ?: strerror(-r));
        }
        if (rs->tpm_clear) {
                r = recovery_request_tpm_clear();
                json_object_object_add(e->audit, "tpmClear", json_object_new_string(r < 0 ? "unavailable" : "requested"));
                if (r < 0)
                        log_warning("The TPM cannot be cleared: %s", error_message() ?: strerror(-r));
        }
        utc_now(now);
        json_object_object_add(e->audit, "status", json_object_new_string("complete"));
        json_object_object_add(e->audit, "finishedAt", json_object_new_string(now));
        return audit_save(e);
}

static int step_sync(Exec *e, Step *s) {
        if (fsync(e->fd) < 0)
                return error_setf(-errno, _("Cannot flush %s: %m"), e->plan->target);
        return 0;
}

/* dm-crypt volumes this program opened on the target's partitions ("imprint-ROLE-XXXXXXXX", see
 * encrypt_partition()) and that a killed run left open: close them, so that the same command
 * run again can proceed. Volumes of any other name, or in use, are left alone, and the in-use
 * check after this refuses the disk naming them. */
static void close_own_leftover_volumes(const Disk *d) {
        for (size_t i = 0; d->kind == DISK_BLOCK && i < d->n_partitions; i++) {
                _cleanup_(closedirp) DIR *dir = NULL;
                const char *node = d->partitions[i].node;
                char path[PATH_MAX];
                struct dirent *de;

                if (!node || strncmp(node, "/dev/", 5) != 0)
                        continue;
                snprintf(path, sizeof(path), "/sys/class/block/%s/holders", node + 5);
                dir = opendir(path);
                if (!dir)
                        continue;
                while ((de = readdir(dir))) {
                        _cleanup_(freep) char *name = NULL, *uuid = NULL;
                        char attr[PATH_MAX];

                        if (strncmp(de->d_name, "dm-", 3) != 0)
                                continue;
                        snprintf(attr, sizeof(attr), "/sys/class/block/%s/dm/name", de->d_name);
                        if (read_one_line_file(attr, &name) < 0)
                                continue;
                        snprintf(attr, sizeof(attr), "/sys/class/block/%s/dm/uuid", de->d_name);
                        if (read_one_line_file(attr, &uuid) < 0)
                                continue;
                        /* Ours: our name pattern, and a LUKS2 volume (cryptsetup's "CRYPT-LUKS2-…" dm UUID). */
                        if (strncmp(name, "imprint-", 8) != 0 || strncmp(uuid, "CRYPT-LUKS2-", 12) != 0)
                                continue;
                        if (luks_deactivate(name) < 0)
                                log_warning("Cannot close %s, left open on %s by an interrupted install: %s", name, node,
                                            error_message() ?: "busy");
                        else
                                log_info("closed %s, left open on %s by an interrupted install", name, node);
                }
        }
}

/* Whether d is what an interrupted run of this very plan left: the table the plan writes, with
 * every partition it creates still named DISK_INCOMPLETE_LABEL. The plan's fingerprint describes
 * the disk before that run and no longer matches; running the plan again is what finishes the
 * install, so such a disk counts as unchanged. */
static bool disk_holds_interrupted_run(const Plan *p, const Disk *d) {
        if (!d->incomplete_install || !streq_ptr(d->pttype, "gpt") || d->size != p->fingerprint.size)
                return false;
        if (d->diskseq != 0 && p->fingerprint.diskseq != 0 && d->diskseq != p->fingerprint.diskseq)
                return false;
        if (p->mode == PLAN_ERASE && (!d->ptuuid || strcasecmp(d->ptuuid, SD_ID128_TO_UUID_STRING(p->disk_uuid)) != 0))
                return false;
        for (size_t i = 0; i < d->n_partitions; i++) {
                const DiskPartition *dp = &d->partitions[i];
                const PlanPartition *pp = NULL;

                for (size_t j = 0; j < p->n_partitions; j++)
                        if (p->partitions[j].partno == dp->partno)
                                pp = &p->partitions[j];
                if (!pp || pp->start != dp->start || pp->size != dp->size)
                        return false;
                if (pp->action == ACTION_CREATE && (!sd_id128_equal(pp->uuid, dp->uuid) || !streq_ptr(dp->label, DISK_INCOMPLETE_LABEL)))
                        return false;
        }
        for (size_t j = 0; j < p->n_partitions; j++) {
                bool found = false;

                for (size_t i = 0; i < d->n_partitions; i++)
                        found = found || d->partitions[i].partno == p->partitions[j].partno;
                if (!found)
                        return false;
        }
        return true;
}

/* Whether the run copies partitions of the image: every install of one; a reset only when it
 * deploys a classic root again (a usr image's slots stay as they are). */
static bool plan_copies_image(const Plan *p) {
        if (!p->source)
                return false;
        if (p->mode != PLAN_RESET)
                return true;
        for (size_t i = 0; i < p->n_partitions; i++)
                if (p->partitions[i].copy_from >= 0)
                        return true;
        return false;
}

static void exec_done(Exec *e) {
        /* After a failure the volumes may still be open: close them, or the disk stays busy. */
        if (close_volumes(e) < 0)
                log_warning("%s", error_message() ?: "Cannot close the encrypted volumes.");
        for (size_t i = 0; i < ELEMENTSOF(e->dm_name); i++) {
                free(e->dm_name[i]);
                free(e->dm_path[i]);
        }
        for (size_t i = 0; i < ELEMENTSOF(e->reenroll); i++)
                luks_free(e->reenroll[i]);
        json_object_put(e->audit);
        json_object_put(e->resumed_audit);
        free(e->audit_name);
        free(e->previous_default);
        tpm2_context_free(e->tpm);
        secret_free(e->recovery_key);
        if (e->fd >= 0)
                close(e->fd);
        if (e->src_fd >= 0)
                close(e->src_fd);
        disk_free(e->disk);
        for (size_t i = 0; i < e->n_steps; i++)
                free(e->steps[i]);
        free(e->steps);
        private_mounts_leave(&e->mounts);
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

        if (p->mode == PLAN_RESET) {
                static const char *const tools[] = { "mcopy", "mmd", "mdir" };

                if (!p->reset)
                        return error_setf(-EINVAL, _("The reset plan has no reset settings."));
                for (size_t i = 0; i < ELEMENTSOF(tools); i++)
                        if (!find_executable(tools[i]))
                                return error_setf(-ENOPKG, _("%s (mtools) is needed to write the reset's audit record, but it is not installed."),
                                                  tools[i]);
        }
        if (plan_copies_image(p)) {
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
                if (p->source->streaming && !(e->cb && e->cb->image_streamed))
                        return error_setf(-EINVAL, "Internal error: a streamed image needs the image_streamed callback.");
                /* A streamed image: the memory file that stands for it. */
                e->src_fd = open(p->source->streaming ? e->img->path : p->source->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
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
        if (p->mode == PLAN_RESET) {
                /* The labels are not in the fingerprint: a disk this plan's reset was interrupted
                 * on (root and home named DISK_INCOMPLETE_LABEL) is unchanged too. */
                r = plan_check_disk_unchanged(p, e->disk);
                if (r < 0)
                        return r;
                if (e->disk->incomplete_install)
                        log_info("%s holds an interrupted reset; resetting again", p->target);
        } else if (disk_holds_interrupted_run(p, e->disk))
                log_info("%s holds an interrupted install of this plan; installing again", p->target);
        else {
                r = plan_check_disk_unchanged(p, e->disk);
                if (r < 0)
                        return r;
        }
        if (e->disk->incomplete_install) {
                close_own_leftover_volumes(e->disk);
                disk_free(e->disk);
                e->disk = NULL;
                r = disk_discover(p->target, &(DiscoverOptions) {}, &e->disk);
                if (r < 0)
                        return r;
        }
        /* The recovery entry resets the disk it was started from; nothing else is relaxed. */
        r = p->mode == PLAN_RESET ? disk_check_not_in_use_for_reset(e->disk) : disk_check_not_in_use(e->disk);
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

        /* A kept home is unlocked now, before anything is written: a reset that could not
         * re-enroll it must not have erased root first. */
        for (size_t i = 0; p->mode == PLAN_RESET && i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];
                _cleanup_(freep) char *node = NULL;

                if (pp->action != ACTION_REENROLL)
                        continue;
                if (i >= ELEMENTSOF(e->reenroll))
                        return error_setf(-E2BIG, _("The plan has too many partitions."));
                r = disk_partition_node(e->disk, pp->partno, &node);
                if (r < 0)
                        return r;
                r = encrypt_reenroll_unlock(node, e->tpm, e->opts ? e->opts->old_recovery_key : NULL, &e->reenroll[i]);
                if (r < 0)
                        return r;
        }

        if (plan_installs_os(p) && plan_configures_root(p)) {
                const PlanPartition *root = plan_find_role(p, ROLE_ROOT);
                static const char *const tools[] = { "systemd-firstboot", "useradd", "chpasswd", "systemd-creds" };

                if (geteuid() != 0)
                        return error_setf(-EPERM, _("Setting up the account and system settings mounts the installed root, which needs root."));
                if (!root_fstype(p, root))
                        return error_setf(-EINVAL, _("The image's root filesystem type is unknown: it cannot be set up."));
                if (root && root->copy_from < 0 && p->account && p->account->kind == ACCOUNT_CLASSIC)
                        return error_setf(-EOPNOTSUPP, _("The plan creates the classic user %s in the empty root of a usr image, where "
                                                         "useradd has no /etc/passwd to add it to. Make a new plan."),
                                          p->account->user_name);
                if (p->account && !(e->opts && e->opts->user_password))
                        return error_setf(-EINVAL, _("The plan creates the account %s, but no password was given."), p->account->user_name);
                for (size_t i = 0; i < ELEMENTSOF(tools); i++) {
                        bool needed = i == 0 ? true
                                    : i <= 2 ? p->account && p->account->kind == ACCOUNT_CLASSIC
                                    : p->account && p->account->kind == ACCOUNT_HOMED;
                        if (i == 0 && !(p->settings.hostname || p->settings.timezone || p->settings.locale || p->settings.keymap))
                                needed = false;
                        if (needed && !find_executable(tools[i]))
                                return error_setf(-ENOPKG, _("%s is needed to set up the installed system, but it is not installed."), tools[i]);
                }
        }

        return 0;
}

/* The plan's steps, in order. Every add_step() result is checked: a step list that silently lost
 * its tail once ended an install "successfully" without a boot loader. */
static int plan_steps(Exec *e) {
        const Plan *p = e->plan;
        const PlanPartition *stream_pp = streamed_partition(p);
        Step *stream_step = NULL;
        struct stat st;
        Step *s;

#define ADD_STEP(...)                                   \
        do {                                            \
                s = add_step(e, __VA_ARGS__);           \
                if (!s)                                 \
                        return -ENOMEM;                 \
        } while (false)

        /* A checksum is verified before anything is written, when the image is a file that can
         * be read twice cheaply. */
        if (p->source && p->source->sha256 && !p->source->streaming && stat(p->source->path, &st) == 0 && S_ISREG(st.st_mode)) {
                if (p->source->sha256_origin)
                        /* TRANSLATORS: a step of the install; %s is the file that holds the checksum (SHA256SUMS). */
                        ADD_STEP("verify-image", p->source->size, step_verify_image, _("Verifying the image against %s"),
                                 p->source->sha256_origin);
                else
                        ADD_STEP("verify-image", p->source->size, step_verify_image, "%s", _("Verifying the image against its checksum"));
        }
        if (p->mode == PLAN_RESET) {
                /* TRANSLATORS: the first step of a factory reset; %s is the disk. */
                ADD_STEP("reset-begin", 1, step_reset_begin, _("Starting the reset of %s: audit record, boot entry, partitions marked"),
                         p->target);
                for (size_t i = 0; i < p->n_partitions; i++) {
                        const PlanPartition *pp = &p->partitions[i];
                        char id[32];

                        if (!pp->erase)
                                continue;
                        snprintf(id, sizeof(id), "erase-%s", partition_role_to_string(pp->role));
                        /* TRANSLATORS: the partition's number, its role (root, home), its size. */
                        ADD_STEP(id, pp->size, step_erase, _("Erasing partition %u (%s, %s)"), pp->partno,
                                 partition_role_to_string(pp->role), FORMAT_BYTES(pp->size));
                        s->partition = pp;
                }
                for (size_t i = 0; i < p->n_partitions; i++) {
                        const PlanPartition *pp = &p->partitions[i];
                        char id[32];

                        if (pp->action != ACTION_REENROLL)
                                continue;
                        snprintf(id, sizeof(id), "reenroll-%s", partition_role_to_string(pp->role));
                        /* TRANSLATORS: the partition's number and role (home). */
                        ADD_STEP(id, 1, step_reenroll, _("Re-enrolling partition %u (%s): new recovery key%s, old keys removed"), pp->partno,
                                 partition_role_to_string(pp->role), p->encryption.tpm2 ? ", TPM2" : "");
                        s->partition = pp;
                }
        } else {
                /* A usr image: the table waits for what its usr partition says (repart.d). */
                if (stream_pp && p->source->kind == PLAN_SOURCE_USR) {
                        ADD_STEP("stream", p->source->size, step_stream, _("Fetching the image and writing its %s partition (%s) to partition %u"),
                                 partition_role_to_string(stream_pp->role), FORMAT_BYTES(stream_pp->size), stream_pp->partno);
                        s->partition = stream_pp;
                        stream_step = s;
                }
                ADD_STEP("partition", 1, step_partition, _("Writing the partition table to %s"), p->target);
                if (p->target_kind == DISK_BLOCK)
                        ADD_STEP("partition-nodes", 1, step_kernel, "%s", _("Waiting for the kernel to show the new partitions"));
        }
        for (size_t i = 0; i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];
                char id[32];

                if (!pp->encrypt || pp->action != ACTION_CREATE)
                        continue;
                snprintf(id, sizeof(id), "encrypt-%s", partition_role_to_string(pp->role));
                /* TRANSLATORS: the partition's number and role (root, home); ", TPM2" and ", passphrase" may follow. */
                ADD_STEP(id, 1, step_encrypt, _("Encrypting partition %u (%s): LUKS2, recovery key%s%s"), pp->partno,
                         partition_role_to_string(pp->role), p->encryption.tpm2 ? ", TPM2" : "",
                         p->encryption.passphrase ? _(", passphrase") : "");
                s->partition = pp;
        }
        for (size_t i = 0; i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];
                char id[32];

                if (pp->action != ACTION_CREATE || !pp->fstype)
                        continue;
                snprintf(id, sizeof(id), "format-%s", partition_role_to_string(pp->role));
                /* TRANSLATORS: the filesystem (ext4, vfat), the partition's number, its role (root, esp), its size. */
                ADD_STEP(id, pp->size, step_format, _("Creating the %s filesystem on partition %u (%s, %s)"), pp->fstype,
                         pp->partno, partition_role_to_string(pp->role), FORMAT_BYTES(pp->size));
                s->partition = pp;
        }
        /* A root image: its root goes into the partition (or volume) made for it. */
        if (stream_pp && !stream_step) {
                ADD_STEP("stream", p->source->size, step_stream, _("Fetching the image and writing its %s partition (%s) to partition %u"),
                         partition_role_to_string(stream_pp->role), FORMAT_BYTES(stream_pp->size), stream_pp->partno);
                s->partition = stream_pp;
                stream_step = s;
        }
        for (size_t i = 0; p->source && i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];
                char id[32];
                Step *copy;

                if (pp == stream_pp) {
                        snprintf(id, sizeof(id), "verify-%s", partition_role_to_string(pp->role));
                        ADD_STEP(id, p->source->partitions[pp->copy_from].size, step_verify, _("Reading back partition %u to verify it"),
                                 pp->partno);
                        s->partition = pp;
                        s->copied_by = stream_step;
                        continue;
                }
                if (pp->copy_from < 0)
                        continue;
                snprintf(id, sizeof(id), "copy-%s", partition_role_to_string(pp->role));
                ADD_STEP(id, p->source->partitions[pp->copy_from].size, step_copy,
                         /* TRANSLATORS: the role (root, usr), the size, the partition's number on the target. */
                         _("Copying the image's %s partition (%s) to partition %u"), partition_role_to_string(pp->role),
                         FORMAT_BYTES(p->source->partitions[pp->copy_from].size), pp->partno);
                s->partition = pp;
                copy = s;
                snprintf(id, sizeof(id), "verify-%s", partition_role_to_string(pp->role));
                ADD_STEP(id, copy->total, step_verify, _("Reading back partition %u to verify it"), pp->partno);
                s->partition = pp;
                s->copied_by = copy;
        }
        for (size_t i = 0; p->source && i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];
                char id[32];

                if (pp->action != ACTION_CREATE || pp->copy_from >= 0 || pp->fstype || pp->encrypt)
                        continue;
                snprintf(id, sizeof(id), "clear-%s", partition_role_to_string(pp->role));
                /* TRANSLATORS: the partition's number, its role (usr, usr-verity), its GPT name ("_empty"). */
                ADD_STEP(id, 2 * MIN(pp->size, (uint64_t) PLAN_ALIGNMENT), step_clear_slot, _("Clearing partition %u (%s, \"%s\") for a later version"),
                         pp->partno, partition_role_to_string(pp->role), pp->label ?: "");
                s->partition = pp;
        }
        if (plan_installs_os(p) && p->account)
                ADD_STEP("configure", 1, step_configure,
                         /* TRANSLATORS: %s is the user name. */
                         _("Setting up the account %s, hostname, timezone, locale and keymap in the installed system"),
                         p->account->user_name);
        else if (plan_installs_os(p) && p->oem) {
                _cleanup_(freep) char *asks = handoff_asks_text(p->oem);

                ADD_STEP("configure", 1, step_configure,
                         /* TRANSLATORS: %s is what systemd-firstboot asks ("locale, keymap, time zone and host name") or "nothing". */
                         _("Setting up the customer's first boot: systemd-firstboot asks for %s, %s, %s"), asks ?: _("nothing"),
                         p->oem->account == HANDOFF_ACCOUNT_HOMED ? _("systemd-homed-firstboot makes the account")
                                                                  : _("root's password is asked"),
                         p->oem->new_recovery_key ? _("a new recovery key replaces this one") : _("no recovery key to replace"));
        } else if (plan_installs_os(p) && (p->settings.hostname || p->settings.timezone || p->settings.locale || p->settings.keymap))
                ADD_STEP("configure", 1, step_configure, "%s", _("Setting up hostname, timezone, locale and keymap in the installed system"));
        else if (plan_installs_os(p)) {
                _cleanup_(freep) char *why = NULL;

                /* Every install and reset of an image gets the factory-reset hook where its root can take it. */
                if (plan_can_write_hook(p, &why))
                        ADD_STEP("configure", 1, step_configure, "%s", _("Setting up the factory-reset hook in the installed system"));
                else
                        log_info("The factory-reset hook is not written into the installed root: %s.", why ?: "?");
        }
        if (p->encryption.enabled)
                ADD_STEP("close-encrypted", 1, step_close, "%s", _("Closing the encrypted volumes"));
        if (p->source && p->mode != PLAN_RESET) {
                size_t n = e->img ? e->img->n_ukis : 0;
                ADD_STEP("boot", 1, step_boot,
                         ngettext("Installing systemd-boot and %zu unified kernel image", "Installing systemd-boot and %zu unified kernel images", n),
                         n);
        }
        ADD_STEP("sync", 1, step_sync, _("Flushing %s"), p->target);
        if (p->mode == PLAN_RESET)
                /* TRANSLATORS: a step of a factory reset. */
                ADD_STEP("reset-end", 1, step_reset_end, "%s", _("Completing the audit record and restoring the boot default"));
        /* TRANSLATORS: the last step of an install; %s is the target. */
        ADD_STEP("finish", 1, step_finish, _("Marking the install on %s as complete"), p->target);
#undef ADD_STEP
        return 0;
}

/* The one sentence an interrupted run ends with: what state the target is in. */
static int interrupted(Exec *e) {
        const Plan *p = e->plan;

        if (p->mode == PLAN_RESET && e->reset_begun)
                return error_setf(-EINTR, _("Interrupted: the reset of %s is not finished and the disk does not boot as it was; run the reset "
                                            "again (or start the recovery entry) to finish it."),
                                  p->target);
        if (!e->partitioned && e->wrote_free_space)
                return error_setf(-EINTR, _("Interrupted while the image was written into the free space of %s; its partitions are as they "
                                            "were. Run the same command again to install it."),
                                  p->target);
        if (!e->partitioned)
                return error_setf(-EINTR, _("Interrupted before anything was written: %s is unchanged."), p->target);
        if (e->table_cleared)
                return error_setf(-EINTR, _("Interrupted while the image was written: %s has no partition table any more and does not "
                                            "boot; run the same command again to install it."),
                                  p->target);
        if (p->source)
                return error_setf(-EINTR, _("Interrupted: %s is partitioned but not completely installed and does not boot; run the same command again to install it."),
                                  p->target);
        return error_setf(-EINTR, _("Interrupted: %s is partitioned but not completely set up; run the same command again to finish it."),
                          p->target);
}

int executor_run(const Plan *p, Image *img, const ExecOptions *o, const ExecCallbacks *cb) {
        Exec e = { .plan = p, .img = img, .opts = o, .cb = cb, .fd = -EBADF, .src_fd = -EBADF, .mounts = PRIVATE_MOUNTS_INIT };
        int r;

        error_clear();
        r = plan_steps(&e);
        if (r < 0)
                goto finish;

        r = preflight(&e);
        if (r < 0)
                goto finish;

        if (cb && cb->confirm) {
                r = cb->confirm(p, cb->userdata);
                if (r <= 0 && interrupt_pending())
                        r = interrupted(&e);
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
                if (r <= 0 && interrupt_pending())
                        r = interrupted(&e);
                if (r == 0)
                        r = error_setf(-ECANCELED, _("Nothing was written to %s: the recovery key was not confirmed."), p->target);
                if (r < 0)
                        goto finish;
        }

        /* Only the configure step mounts anything; as root every run gets its own mounts, in a
         * namespace of its own (mountns.h): a process killed in the middle of the configure step
         * leaves nothing mounted for the next run to trip over. */
        if (geteuid() == 0) {
                r = private_mounts_enter(&e.mounts);
                if (r < 0)
                        goto finish;
        }

        /* The whole list first, so that a front end can show every step (and a machine reading
         * the JSON stream knows them) before the first one runs. */
        e.step_start_usec = now_usec();
        for (e.current = 0; e.current < e.n_steps; e.current++)
                emit(&e, PROGRESS_PLANNED, 0, NULL);

        /* A stop request (interrupt.h) is honoured between steps, and inside the copy, read-back
         * and checksum steps between chunks: the target is then in a state the next run can start
         * from, and the message says which. */
        for (e.current = 0; e.current < e.n_steps; e.current++) {
                Step *s = e.steps[e.current];
                bool ran;

                if (interrupt_pending()) {
                        r = interrupted(&e);
                        goto finish;
                }
                e.step_start_usec = now_usec();
                e.step_start_cpu_usec = cpu_usec();
                e.paused_middle = false;
                log_info("step %u/%u: %s", e.current + 1, e.n_steps, s->description);
                emit(&e, PROGRESS_BEGIN, 0, NULL);
                test_pause(&e, "begin");
                error_clear();
                ran = !interrupt_pending(); /* asked to stop while at "begin": not even started */
                r = ran ? s->run(&e, s) : -EINTR;
                if (r < 0 && interrupt_pending()) {
                        /* The step stopped early (a copy between chunks), or a tool it ran got the
                         * same signal from the terminal: either way, not a failure of its own. */
                        if (ran && streq(s->id, "partition"))
                                e.partitioned = true; /* it may have written part of the table */
                        r = interrupted(&e);
                        emit(&e, PROGRESS_FAILED, 0, error_message());
                        goto finish;
                }
                if (r < 0) {
                        if (!error_message())
                                error_setf(r, _("%s failed: %s"), s->description, strerror(-r));
                        if (p->mode == PLAN_RESET && e.reset_begun) {
                                char cause[2048], now[32];

                                /* The audit record says it failed, and why; the disk stays marked. */
                                snprintf(cause, sizeof(cause), "%s", error_message());
                                utc_now(now);
                                (void) add_step_time(&e, s, now_usec() - e.step_start_usec);
                                json_object_object_add(e.audit, "status", json_object_new_string("failed"));
                                json_object_object_add(e.audit, "finishedAt", json_object_new_string(now));
                                json_object_object_add(e.audit, "error", json_object_new_string(cause));
                                if (audit_save(&e) < 0)
                                        log_warning("Cannot write the audit record of the failed reset.");
                                error_setf(r, _("%s The reset of %s did not finish: root is erased and the disk does not boot; fix the cause "
                                                "and run the reset again."),
                                           cause, p->target);
                        } else if (e.partitioned && p->source) {
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
                test_pause(&e, "middle");
                (void) add_step_time(&e, s, now_usec() - e.step_start_usec);
                emit(&e, PROGRESS_END, s->total, NULL);
                if (streq(s->id, "partition"))
                        e.partitioned = true, e.table_cleared = false;
                test_pause(&e, "end");
        }
        r = 0;

finish:
        exec_done(&e);
        return r;
}
