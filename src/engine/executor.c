/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "executor.h"
#include "log.h"
#include "mkfs.h"
#include "partition.h"
#include "run.h"
#include "size.h"
#include "uuid.h"

static const char *const progress_event_type_table[_PROGRESS_EVENT_TYPE_MAX] = {
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
        int (*run)(Exec *e, struct Step *s);
} Step;

struct Exec {
        const Plan *plan;
        const ExecCallbacks *cb;
        Disk *disk;           /* the target as discovered right before writing */
        int fd;               /* the target, open read-write */
        Step steps[32];
        unsigned n_steps, current;
        uint64_t step_start_usec;
};

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

        if (e->plan->target_kind == DISK_BLOCK) {
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
                return error_prefixf(r, "Cannot create the %s filesystem of the %s partition (%s)", pp->fstype,
                                     partition_role_to_string(pp->role), node ?: e->plan->target);
        return 0;
}

static int step_sync(Exec *e, Step *s) {
        if (fsync(e->fd) < 0)
                return error_setf(-errno, "Cannot flush %s: %m", e->plan->target);
        return 0;
}

static void exec_done(Exec *e) {
        if (e->fd >= 0)
                close(e->fd);
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
                        return error_setf(-EOPNOTSUPP, "imprint cannot create %s filesystems (partition %u).", pp->fstype, pp->partno);
                if (!find_executable(prog))
                        return error_setf(-ENOPKG, "%s is needed to create the %s filesystem of partition %u, but it is not installed.",
                                          prog, pp->fstype, pp->partno);
        }

        r = disk_discover(p->target, &(DiscoverOptions) {}, &e->disk);
        if (r < 0)
                return r;
        if (e->disk->kind != p->target_kind)
                return error_setf(-ESTALE, "%s is a %s now, but the plan was made for a %s.", p->target,
                                  disk_kind_to_string(e->disk->kind), disk_kind_to_string(p->target_kind));
        r = plan_check_disk_unchanged(p, e->disk);
        if (r < 0)
                return r;
        r = disk_check_not_in_use(e->disk);
        if (r < 0)
                return r;
        if (e->disk->refusals & REFUSE_READ_ONLY)
                return error_setf(-EROFS, "Refusing to write to %s: it is read-only.", p->target);

        /* O_EXCL on a block device fails while anything has it mounted or claimed; the BSD lock
         * keeps udev from probing the disk while its table changes (as systemd-repart does). */
        if (p->target_kind == DISK_BLOCK) {
                int fd = open(p->target, O_RDWR | O_CLOEXEC | O_NOCTTY | O_EXCL);
                if (fd < 0)
                        return error_setf(-errno, errno == EBUSY ? "Refusing to write to %s: it is in use (%m)." : "Cannot open %s for writing: %m",
                                          p->target);
                /* Not kept: mkfs must be able to claim the partitions exclusively later. */
                close(fd);
        }
        e->fd = open(p->target, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (e->fd < 0)
                return error_setf(-errno, "Cannot open %s for writing: %m", p->target);
        if (flock(e->fd, LOCK_EX | LOCK_NB) < 0)
                return error_setf(-errno, "Cannot lock %s: another program holds it (%m).", p->target);
        return 0;
}

int executor_apply(const Plan *p, const ExecCallbacks *cb) {
        Exec e = { .plan = p, .cb = cb, .fd = -EBADF };
        int r;

        add_step(&e, "partition", 1, step_partition, "Writing the partition table to %s", p->target);
        if (p->target_kind == DISK_BLOCK)
                add_step(&e, "partition-nodes", 1, step_kernel, "Waiting for the kernel to show the new partitions");
        for (size_t i = 0; i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];
                char id[32];
                Step *s;

                if (pp->action != ACTION_CREATE || !pp->fstype)
                        continue;
                snprintf(id, sizeof(id), "format-%s", partition_role_to_string(pp->role));
                s = add_step(&e, id, pp->size, step_format, "Creating the %s filesystem on partition %u (%s, %s)", pp->fstype,
                             pp->partno, partition_role_to_string(pp->role), FORMAT_BYTES(pp->size));
                if (!s)
                        return -E2BIG;
                s->partition = pp;
        }
        add_step(&e, "sync", 1, step_sync, "Flushing %s", p->target);

        r = preflight(&e);
        if (r < 0)
                goto finish;

        if (cb && cb->confirm) {
                r = cb->confirm(p, cb->userdata);
                if (r == 0)
                        r = error_setf(-ECANCELED, "Nothing was written to %s: not confirmed.", p->target);
                if (r < 0)
                        goto finish;
        }

        for (e.current = 0; e.current < e.n_steps; e.current++) {
                Step *s = &e.steps[e.current];

                e.step_start_usec = now_usec();
                log_info("step %u/%u: %s", e.current + 1, e.n_steps, s->description);
                emit(&e, PROGRESS_BEGIN, 0, NULL);
                error_clear();
                r = s->run(&e, s);
                if (r < 0) {
                        if (!error_message())
                                error_setf(r, "%s failed: %s", s->description, strerror(-r));
                        emit(&e, PROGRESS_FAILED, 0, error_message());
                        goto finish;
                }
                emit(&e, PROGRESS_END, s->total, NULL);
        }
        r = 0;

finish:
        exec_done(&e);
        return r;
}
