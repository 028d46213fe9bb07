/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/blkpg.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <libfdisk/libfdisk.h>

#include "error.h"
#include "fileio.h"
#include "i18n.h"
#include "log.h"
#include "partition.h"
#include "size.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct fdisk_context *, fdisk_unref_context);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct fdisk_partition *, fdisk_unref_partition);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct fdisk_parttype *, fdisk_unref_parttype);

/* libfdisk asks questions and reports through this callback. Nothing here is interactive: the
 * plan already holds every answer, so information goes to the log and questions are refused. */
static int fdisk_ask_cb(struct fdisk_context *cxt, struct fdisk_ask *ask, void *data) {
        switch (fdisk_ask_get_type(ask)) {
        case FDISK_ASKTYPE_INFO:
        case FDISK_ASKTYPE_WARNX:
        case FDISK_ASKTYPE_WARN:
                log_info("libfdisk: %s", fdisk_ask_print_get_mesg(ask) ?: "");
                return 0;
        default:
                log_warning("libfdisk asked an unexpected question: %s", fdisk_ask_get_query(ask) ?: "");
                return -EINVAL;
        }
}

static int add_partition(struct fdisk_context *cxt, const Plan *p, const PlanPartition *pp) {
        _cleanup_(fdisk_unref_partitionp) struct fdisk_partition *pa = NULL;
        _cleanup_(fdisk_unref_parttypep) struct fdisk_parttype *t = NULL;
        int r;

        pa = fdisk_new_partition();
        t = fdisk_new_parttype();
        if (!pa || !t)
                return -ENOMEM;

        r = fdisk_parttype_set_typestr(t, SD_ID128_TO_UUID_STRING(pp->type_uuid));
        if (r < 0)
                return r;
        if ((r = fdisk_partition_set_type(pa, t)) < 0 ||
            (r = fdisk_partition_set_start(pa, pp->start / p->sector_size)) < 0 ||
            (r = fdisk_partition_set_size(pa, pp->size / p->sector_size)) < 0 ||
            (r = fdisk_partition_set_partno(pa, pp->partno - 1)) < 0 ||
            (r = fdisk_partition_set_uuid(pa, SD_ID128_TO_UUID_STRING(pp->uuid))) < 0 ||
            (pp->label && (r = fdisk_partition_set_name(pa, pp->label)) < 0))
                return r;

        r = fdisk_add_partition(cxt, pa, NULL);
        if (r < 0)
                return error_setf(r, _("Cannot add partition %u (%s, %s at %s) to %s: %s"), pp->partno,
                                  partition_role_to_string(pp->role), FORMAT_BYTES(pp->size), FORMAT_BYTES(pp->start),
                                  p->target, strerror(-r));

        r = fdisk_gpt_set_partition_attrs(cxt, pp->partno - 1, pp->flags);
        if (r < 0)
                return error_setf(r, _("Cannot set the attribute flags of partition %u on %s: %s"), pp->partno, p->target,
                                  strerror(-r));

        /* Old filesystem, RAID or LUKS signatures inside the new partition would confuse blkid,
         * udev and systemd-gpt-auto-generator; libfdisk wipes them when it writes the table. */
        /* Not the one a streamed image wrote already (stream.h). */
        if (p->source && p->source->streaming && pp->copy_from >= 0 && (size_t) pp->copy_from == p->source->streamed &&
            !p->source->content_pending)
                return 0;
        r = fdisk_wipe_partition(cxt, pp->partno - 1, 1);
        if (r < 0)
                return r;
        return 0;
}

static int delete_incomplete_partitions(struct fdisk_context *cxt, const Plan *p) {
        size_t n = fdisk_get_npartitions(cxt);
        int r;

        for (size_t i = 0; i < n; i++) {
                _cleanup_(fdisk_unref_partitionp) struct fdisk_partition *pa = NULL;

                if (!fdisk_is_partition_used(cxt, i))
                        continue;
                r = fdisk_get_partition(cxt, i, &pa);
                if (r < 0)
                        return r;
                if (!streq_ptr(fdisk_partition_get_name(pa), DISK_INCOMPLETE_LABEL))
                        continue;
                r = fdisk_delete_partition(cxt, i);
                if (r < 0)
                        return error_setf(r, _("Cannot remove partition %zu of %s, left by an interrupted install: %s"), i + 1,
                                          p->target, strerror(-r));
                log_info("removed partition %zu of %s, left by an interrupted install", i + 1, p->target);
        }
        return 0;
}

/* A libfdisk context on the plan's target (open as fd) that refuses every question: the plan
 * holds every answer. */
static int fdisk_context_for_plan(const Plan *p, int fd, struct fdisk_context **ret) {
        _cleanup_(fdisk_unref_contextp) struct fdisk_context *cxt = NULL;
        int r;

        cxt = fdisk_new_context();
        if (!cxt)
                return -ENOMEM;
        r = fdisk_set_ask(cxt, fdisk_ask_cb, NULL);
        if (r < 0)
                return r;

        /* Image files have no sector size of their own: use the one the plan was made with. */
        if (p->target_kind == DISK_IMAGE_FILE) {
                r = fdisk_save_user_sector_size(cxt, (unsigned) p->sector_size, (unsigned) p->sector_size);
                if (r < 0)
                        return r;
        }
        r = fdisk_save_user_grain(cxt, PLAN_ALIGNMENT);
        if (r < 0)
                return r;

        r = fdisk_assign_device_by_fd(cxt, fd, p->target, 0);
        if (r < 0)
                return error_setf(r, _("libfdisk cannot open %s: %s"), p->target, strerror(-r));
        *ret = TAKE_PTR(cxt);
        return 0;
}

int partition_write_table(const Plan *p, int fd) {
        _cleanup_(fdisk_unref_contextp) struct fdisk_context *cxt = NULL;
        int r;

        r = fdisk_context_for_plan(p, fd, &cxt);
        if (r < 0)
                return r;
        if (fdisk_get_sector_size(cxt) != p->sector_size)
                return error_setf(-ESTALE, _("%s has %lu-byte sectors, but the plan was made for %" PRIu64 "."), p->target,
                                  fdisk_get_sector_size(cxt), p->sector_size);

        if (p->mode == PLAN_ERASE || !fdisk_has_label(cxt)) {
                /* Wipe old whole-disk signatures (an old MBR, a filesystem on the bare disk, the
                 * backup GPT at the end) together with the new label. */
                r = fdisk_enable_wipe(cxt, 1);
                if (r < 0)
                        return r;
                r = fdisk_create_disklabel(cxt, "gpt");
                if (r < 0)
                        return error_setf(r, _("Cannot create a GPT on %s: %s"), p->target, strerror(-r));
                r = fdisk_set_disklabel_id_from_string(cxt, SD_ID128_TO_UUID_STRING(p->disk_uuid));
                if (r < 0)
                        return error_setf(r, _("Cannot set the disk GUID of %s: %s"), p->target, strerror(-r));
        } else if (!fdisk_is_labeltype(cxt, FDISK_DISKLABEL_GPT))
                return error_setf(-EOPNOTSUPP, _("%s does not have a GPT; cannot keep its partitions."), p->target);
        else {
                /* Free mode replaces what an interrupted install left (the plan lists it as destroyed). */
                r = delete_incomplete_partitions(cxt, p);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < p->n_partitions; i++) {
                if (p->partitions[i].action != ACTION_CREATE)
                        continue;
                r = add_partition(cxt, p, &p->partitions[i]);
                if (r < 0)
                        return r;
        }

        r = fdisk_write_disklabel(cxt);
        if (r < 0)
                return error_setf(r, _("Cannot write the partition table to %s: %s"), p->target, strerror(-r));
        log_info("wrote a GPT with %zu partitions to %s", p->n_partitions, p->target);

        r = fdisk_deassign_device(cxt, 1 /* nosync: we fsync ourselves */);
        if (r < 0)
                return r;
        if (fsync(fd) < 0)
                return error_setf(-errno, _("Cannot flush the partition table to %s: %m"), p->target);
        return 0;
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* A loop device attached without partition scanning ignores BLKRRPART; turn scanning on, as
 * losetup --partscan would have. */
static int loop_enable_partscan(int fd) {
        struct loop_info64 info;

        if (ioctl(fd, LOOP_GET_STATUS64, &info) < 0)
                return -errno;
        if (info.lo_flags & LO_FLAGS_PARTSCAN)
                return 0;
        info.lo_flags |= LO_FLAGS_PARTSCAN;
        if (ioctl(fd, LOOP_SET_STATUS64, &info) < 0)
                return -errno;
        return 1;
}

static int reread(int fd, const Disk *d) {
        for (int attempt = 0; attempt < 20; attempt++) {
                if (ioctl(fd, BLKRRPART, 0) >= 0)
                        return 0;
                if (errno == EINVAL && d->transport == TRANSPORT_LOOP && loop_enable_partscan(fd) > 0)
                        continue;
                if (errno != EBUSY)
                        return -errno;
                usleep(100 * 1000); /* udev may still be probing the disk we just wrote */
        }
        return -EBUSY;
}

/* Adds one partition to the kernel's view directly; used when a full re-read is refused. */
static int blkpg_add(int fd, const Plan *p, const PlanPartition *pp) {
        struct blkpg_partition bp = {
                .start = (long long) pp->start,
                .length = (long long) pp->size,
                .pno = (int) pp->partno,
        };
        struct blkpg_ioctl_arg arg = {
                .op = BLKPG_ADD_PARTITION,
                .datalen = sizeof(bp),
                .data = &bp,
        };

        if (ioctl(fd, BLKPG, &arg) < 0 && errno != EBUSY)
                return -errno;
        return 0;
}

static bool partition_known_to_kernel(const char *name) {
        char path[128];

        snprintf(path, sizeof(path), "/sys/class/block/%s/dev", name);
        return access(path, F_OK) == 0;
}

int partition_sync_kernel(const Plan *p, int fd, const Disk *d, uint64_t timeout_usec) {
        uint64_t deadline, grace;
        int r;

        if (p->target_kind != DISK_BLOCK)
                return 0;

        r = reread(fd, d);
        if (r < 0)
                log_info("re-reading the partition table of %s failed (%s), adding partitions one by one", p->target,
                         strerror(-r));

        /* After a successful re-read the kernel's own GPT parser should show every partition. If
         * it did not (the re-read failed, or the kernel lacks a GPT parser), add the missing ones
         * with BLKPG, as partx --add and systemd do. */
        grace = now_usec() + (r < 0 ? 0 : UINT64_C(1000000));
        for (size_t i = 0; i < p->n_partitions; i++) {
                _cleanup_(freep) char *node = NULL;

                r = disk_partition_node(d, p->partitions[i].partno, &node);
                if (r < 0)
                        return r;
                while (!partition_known_to_kernel(node + strlen("/dev/")) && now_usec() < grace)
                        usleep(20 * 1000);
                if (partition_known_to_kernel(node + strlen("/dev/")))
                        continue;
                r = blkpg_add(fd, p, &p->partitions[i]);
                if (r < 0)
                        return error_setf(r, _("The kernel did not accept partition %u of %s: %s"), p->partitions[i].partno,
                                          p->target, strerror(-r));
        }

        deadline = now_usec() + timeout_usec;
        for (size_t i = 0; i < p->n_partitions; i++) {
                _cleanup_(freep) char *node = NULL;

                r = disk_partition_node(d, p->partitions[i].partno, &node);
                if (r < 0)
                        return r;
                for (;;) {
                        _cleanup_(freep) char *dev = NULL;
                        struct stat st;
                        unsigned maj, min;

                        /* The node must exist and be the device sysfs names: a stale node from an
                         * old table must not be mistaken for the new partition. */
                        if (stat(node, &st) == 0 && S_ISBLK(st.st_mode) &&
                            read_sysfs_block_attr(node + strlen("/dev/"), "dev", &dev) >= 0 &&
                            sscanf(dev, "%u:%u", &maj, &min) == 2 && st.st_rdev == makedev(maj, min))
                                break;
                        if (now_usec() > deadline)
                                return error_setf(-ETIMEDOUT, _("The partition %s did not appear within %" PRIu64 " seconds after writing %s."),
                                                  node, timeout_usec / 1000000, p->target);
                        usleep(50 * 1000);
                }
        }
        return 0;
}

int partition_write_labels(const Plan *p, int fd) {
        _cleanup_(fdisk_unref_contextp) struct fdisk_context *cxt = NULL;
        int r;

        r = fdisk_context_for_plan(p, fd, &cxt);
        if (r < 0)
                return r;
        if (!fdisk_is_labeltype(cxt, FDISK_DISKLABEL_GPT))
                return error_setf(-ESTALE, _("%s no longer has a GPT."), p->target);

        for (size_t i = 0; i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];
                _cleanup_(fdisk_unref_partitionp) struct fdisk_partition *pa = NULL;

                if (pp->action != ACTION_CREATE)
                        continue;
                pa = fdisk_new_partition();
                if (!pa)
                        return -ENOMEM;
                r = fdisk_partition_set_name(pa, pp->label ?: "");
                if (r >= 0)
                        r = fdisk_set_partition(cxt, pp->partno - 1, pa);
                if (r < 0)
                        return error_setf(r, _("Cannot name partition %u of %s: %s"), pp->partno, p->target, strerror(-r));
        }

        /* A crash while this is written leaves at most one of the two GPT copies with the new
         * names: both still say where the partitions are, and either is a valid table. */
        r = fdisk_write_disklabel(cxt);
        if (r < 0)
                return error_setf(r, _("Cannot write the partition table to %s: %s"), p->target, strerror(-r));
        r = fdisk_deassign_device(cxt, 1);
        if (r < 0)
                return r;
        if (fsync(fd) < 0)
                return error_setf(-errno, _("Cannot flush the partition table to %s: %m"), p->target);
        return 0;
}
