/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* reset_probe() and reset_plan() on image files that carry what an install leaves: a GPT written
 * by the planner's own partition code, a FAT ESP made by mkfs.vfat and the install record written
 * by record.c (mtools). No root, no loop devices. */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "mkfs.h"
#include "partition.h"
#include "plan.h"
#include "record.h"
#include "reset.h"
#include "run.h"
#include "size.h"
#include "tests.h"
#include "uuid.h"

#define ROOT_X86_64 "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"
#define ROOT_VERITY_X86_64 "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5"
#define USR_X86_64 "8484680c-9521-48c6-9c11-b0720656f69e"
#define USR_VERITY_X86_64 "77ff5f63-e7b6-4633-acf4-1565b864c0e6"

static char tmpdir[] = "/var/tmp/test-reset-plan.XXXXXX";

static void remove_tmpdir(void) {
        char *argv[] = { (char *) "rm", (char *) "-rf", tmpdir, NULL };
        (void) run_command(argv, &(RunOptions) { .quiet_stderr = true });
}

static void source_add(PlanSource *s, PartitionRole role, unsigned partno, uint64_t start, uint64_t size, const char *type,
                       const char *uuid, const char *label, uint64_t flags, const char *fstype) {
        PlanSourcePartition *sp;

        s->partitions = realloc(s->partitions, (s->n_partitions + 1) * sizeof(PlanSourcePartition));
        sp = &s->partitions[s->n_partitions++];
        *sp = (PlanSourcePartition) { .role = role, .partno = partno, .start = start, .size = size, .flags = flags };
        ASSERT_OK(sd_id128_from_string(type, &sp->type_uuid));
        ASSERT_OK(sd_id128_from_string(uuid, &sp->uuid));
        sp->label = label ? strdup(label) : NULL;
        sp->fstype = fstype ? strdup(fstype) : NULL;
}

static PlanSource *classic_source(void) {
        PlanSource *s = calloc(1, sizeof(PlanSource));

        s->kind = PLAN_SOURCE_ROOT;
        s->path = strdup("/var/tmp/fakeos.raw");
        s->size = 3 * GiB;
        s->fingerprint = strdup("x");
        s->os_name = strdup("Fake OS 7");
        s->image_id = strdup("fakeos");
        s->image_version = strdup("7");
        source_add(s, ROLE_ROOT, 2, 101 * MiB, 1536 * MiB, ROOT_X86_64, "11111111-2222-4333-8444-555555555555", "root-x86-64", 0,
                   "ext4");
        source_add(s, ROLE_ROOT_VERITY, 3, 1637 * MiB, 64 * MiB, ROOT_VERITY_X86_64, "66666666-7777-4888-8999-aaaaaaaaaaaa",
                   "root-verity", 0, NULL);
        return s;
}

static PlanSource *usr_source(void) {
        PlanSource *s = calloc(1, sizeof(PlanSource));

        s->kind = PLAN_SOURCE_USR;
        s->path = strdup("/var/tmp/imprint-usr_1.raw");
        s->size = 2 * GiB;
        s->fingerprint = strdup("x");
        s->os_name = strdup("Imprint usr 1");
        s->image_id = strdup("imprint-usr");
        s->image_version = strdup("1");
        s->root_fstype = strdup("btrfs");
        source_add(s, ROLE_USR, 2, 101 * MiB, 300 * MiB, USR_X86_64, "11111111-2222-4333-8444-555555555555", "imprint-usr_1",
                   DPS_FLAG_READ_ONLY, "squashfs");
        s->partitions[0].slot_size = 512 * MiB;
        s->partitions[0].install_label = strdup("imprint-usr_1");
        source_add(s, ROLE_USR_VERITY, 3, 402 * MiB, 20 * MiB, USR_VERITY_X86_64, "66666666-7777-4888-8999-aaaaaaaaaaaa",
                   "imprint-usr_1", DPS_FLAG_READ_ONLY, NULL);
        s->partitions[1].slot_size = 32 * MiB;
        s->partitions[1].install_label = strdup("imprint-usr_1");
        return s;
}

static Disk *discover(const char *path) {
        Disk *d = NULL;
        int r = disk_discover(path, &(DiscoverOptions) {}, &d);

        if (r < 0)
                FAIL("disk_discover(%s): %s", path, error_message() ?: strerror(-r));
        return d;
}

/* What an install leaves behind, without the image: its table (with the planned names), a FAT
 * ESP, and (record) its install record. Returns the plan as installed. */
static Plan *fake_install(const char *path, const PlanSource *src, bool home, bool record) {
        _cleanup_(disk_freep) Disk *d = NULL;
        Plan *p = NULL;
        const PlanPartition *esp;
        PlanOptions o;
        int fd, r;

        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(ftruncate(fd, 8 * GiB));
        d = discover(path);
        plan_options_init(&o);
        o.source = src;
        o.esp = (SizeRequest) { SIZE_FIXED, 512 * MiB };
        if (home)
                o.home = (SizeRequest) { SIZE_FIXED, 1 * GiB };
        r = plan_build(d, &o, &p);
        if (r < 0)
                FAIL("plan_build: %s", error_message() ?: strerror(-r));
        ASSERT_OK(partition_write_table(p, fd));
        ASSERT_OK(partition_write_labels(p, fd));
        esp = plan_find_role(p, ROLE_ESP);
        r = mkfs_make("vfat", &(MkfsTarget) { .file = path, .fd = fd, .offset = esp->start, .size = esp->size, .sector_size = 512 },
                      "ESP", esp->uuid);
        if (r < 0)
                FAIL("mkfs_make: %s", error_message() ?: strerror(-r));
        close(fd);
        if (record) {
                FsLocation l = { .disk = path, .offset = esp->start, .fstype = "vfat" };
                ASSERT_OK(record_install_write(p, &l));
        }
        return p;
}

static const PlanPartition *find_partno(const Plan *p, unsigned partno) {
        for (size_t i = 0; i < p->n_partitions; i++)
                if (p->partitions[i].partno == partno)
                        return &p->partitions[i];
        return NULL;
}

static void test_record_round_trip(void) {
        _cleanup_(plan_source_freep) PlanSource *src = usr_source();
        _cleanup_(plan_freep) Plan *p = NULL;
        _cleanup_(install_record_freep) InstallRecord *rec = NULL;
        _cleanup_(freep) char *path = NULL, *name = NULL, *last = NULL, *summary = NULL;
        json_object *a, *b, *audit, *parts, *part, *back = NULL;
        FsLocation l;

        ASSERT_TRUE(asprintf(&path, "%s/record.img", tmpdir) > 0);
        p = fake_install(path, src, true, true);
        l = (FsLocation) { .disk = path, .offset = plan_find_role(p, ROLE_ESP)->start, .fstype = "vfat" };

        ASSERT_OK(record_install_read(&l, &rec));
        ASSERT_EQ(rec->format_version, RECORD_FORMAT_VERSION);
        ASSERT_STREQ(rec->imprint_version, IMPRINT_VERSION);
        ASSERT_TRUE(rec->installed_at && strlen(rec->installed_at) == 20 && rec->installed_at[19] == 'Z');
        a = plan_to_json(p);
        b = plan_to_json(rec->plan);
        ASSERT_STREQ(json_object_to_json_string(a), json_object_to_json_string(b));
        json_object_put(a);
        json_object_put(b);

        /* No audit record yet. */
        ASSERT_EQ(record_reset_last(&l, &back, &last), -ENOENT);

        ASSERT_OK(record_reset_name(&name));
        ASSERT_TRUE(strncmp(name, "reset-", 6) == 0 && strlen(name) == strlen("reset-20261203T101500Z.json"));
        audit = json_object_new_object();
        json_object_object_add(audit, "formatVersion", json_object_new_int(1));
        json_object_object_add(audit, "status", json_object_new_string("complete"));
        json_object_object_add(audit, "startedAt", json_object_new_string("2026-12-03T10:15:00Z"));
        json_object_object_add(audit, "entryPoint", json_object_new_string("boot-menu"));
        parts = json_object_new_array();
        part = json_object_new_object();
        json_object_object_add(part, "role", json_object_new_string("root"));
        json_object_object_add(part, "action", json_object_new_string("erased"));
        json_object_object_add(part, "method", json_object_new_string("crypto-erase"));
        json_object_array_add(parts, part);
        part = json_object_new_object();
        json_object_object_add(part, "role", json_object_new_string("home"));
        json_object_object_add(part, "action", json_object_new_string("reenrolled"));
        json_object_array_add(parts, part);
        json_object_object_add(audit, "partitions", parts);
        ASSERT_OK(record_reset_write(&l, name, audit));
        /* An older one does not hide the newest. */
        ASSERT_OK(record_reset_write(&l, "reset-20200101T000000Z.json", audit));
        ASSERT_EQ(record_reset_write(&l, "../install.json", audit), -EINVAL);

        ASSERT_OK(record_reset_last(&l, &back, &last));
        ASSERT_STREQ(last, name);
        ASSERT_STREQ(json_object_to_json_string(back), json_object_to_json_string(audit));
        ASSERT_OK(record_reset_summary(back, &summary));
        ASSERT_CONTAINS(summary, "2026-12-03 10:15 UTC");
        ASSERT_CONTAINS(summary, "boot menu");
        ASSERT_CONTAINS(summary, "root (crypto-erase)");
        ASSERT_CONTAINS(summary, "home");
        ASSERT_CONTAINS(summary, "complete");
        json_object_put(back);
        summary = mfree(summary);

        json_object_object_add(audit, "status", json_object_new_string("running"));
        ASSERT_OK(record_reset_summary(audit, &summary));
        ASSERT_CONTAINS(summary, "interrupted");
        json_object_put(audit);

        /* The install record is not mistaken for anything else: garbage is refused with a sentence. */
        ASSERT_OK(fat_write_file(&l, RECORD_INSTALL_PATH, "{\"formatVersion\": 99}", strlen("{\"formatVersion\": 99}")));
        install_record_free(rec);
        rec = NULL;
        ASSERT_EQ(record_install_read(&l, &rec), -EBADMSG);
        ASSERT_CONTAINS(error_message(), "99");
}

static void test_usr_reset(void) {
        _cleanup_(plan_source_freep) PlanSource *src = usr_source();
        _cleanup_(plan_freep) Plan *installed = NULL, *p = NULL, *keep = NULL, *back = NULL;
        _cleanup_(disk_freep) Disk *d = NULL;
        _cleanup_(reset_target_freep) ResetTarget *t = NULL;
        _cleanup_(freep) char *path = NULL, *table = NULL;
        size_t table_size = 0;
        ResetRequest req;
        json_object *j;
        FILE *f;

        ASSERT_TRUE(asprintf(&path, "%s/usr.img", tmpdir) > 0);
        installed = fake_install(path, src, true, true);
        d = discover(path);

        ASSERT_EQ(reset_probe(d, &t), 1);
        ASSERT_TRUE(!t->refusal);
        ASSERT_EQ(t->kind, PLAN_SOURCE_USR);
        ASSERT_TRUE(t->has_home);
        ASSERT_FALSE(t->encrypted);
        ASSERT_FALSE(t->interrupted);
        ASSERT_STREQ(t->os_name, "Imprint usr 1");
        /* The newest usr slot's name says the version. */
        ASSERT_STREQ(t->image_version, "1");

        reset_request_init(&req);
        req.entry_point = RESET_FROM_BOOT_MENU;
        ASSERT_OK(reset_plan(d, &req, NULL, &p));
        ASSERT_EQ(p->mode, PLAN_RESET);
        ASSERT_TRUE(p->reset);
        ASSERT_EQ(p->reset->entry_point, RESET_FROM_BOOT_MENU);
        ASSERT_TRUE(p->reset->account_note);
        ASSERT_CONTAINS(p->reset->account_note, "first boot");
        ASSERT_EQ(p->n_partitions, installed->n_partitions);
        for (size_t i = 0; i < installed->n_partitions; i++) {
                const PlanPartition *was = &installed->partitions[i], *now = find_partno(p, was->partno);

                ASSERT_TRUE(now);
                ASSERT_EQ(now->start, was->start);
                ASSERT_EQ(now->size, was->size);
                ASSERT_TRUE(sd_id128_equal(now->uuid, was->uuid));
                ASSERT_STREQ(now->label, was->label);
                if (was->role == ROLE_ROOT || was->role == ROLE_HOME) {
                        ASSERT_EQ(now->action, ACTION_CREATE);
                        ASSERT_TRUE(now->erase);
                        ASSERT_EQ(now->copy_from, -1);
                        /* The usr slot is no real filesystem here: the record's filesystems. */
                        ASSERT_STREQ(now->fstype, was->fstype);
                } else {
                        ASSERT_EQ(now->action, ACTION_KEEP);
                        ASSERT_FALSE(now->erase);
                }
        }
        ASSERT_STREQ(plan_find_role(p, ROLE_ROOT)->fstype, "btrfs");

        /* JSON round trip and the table people see. */
        j = plan_to_json(p);
        ASSERT_TRUE(j);
        ASSERT_OK(plan_from_json(j, &back));
        ASSERT_EQ(back->mode, PLAN_RESET);
        ASSERT_TRUE(back->reset && back->reset->entry_point == RESET_FROM_BOOT_MENU);
        ASSERT_TRUE(plan_find_role(back, ROLE_ROOT)->erase);
        json_object_put(j);
        f = open_memstream(&table, &table_size);
        plan_print_table(p, f);
        fclose(f);
        ASSERT_CONTAINS(table, "factory reset");
        ASSERT_CONTAINS(table, "erased");
        ASSERT_CONTAINS(table, "kept as it is");
        ASSERT_CONTAINS(table, "first boot");

        /* Keep home: it stays (unencrypted: nothing to re-enroll). */
        req.keep_home = true;
        ASSERT_OK(reset_plan(d, &req, NULL, &keep));
        ASSERT_EQ(plan_find_role(keep, ROLE_HOME)->action, ACTION_KEEP);
        ASSERT_FALSE(plan_find_role(keep, ROLE_HOME)->erase);
        ASSERT_TRUE(plan_find_role(keep, ROLE_ROOT)->erase);
}

static void test_classic_and_refusals(void) {
        _cleanup_(plan_source_freep) PlanSource *src = classic_source(), *usr = usr_source();
        _cleanup_(plan_freep) Plan *installed = NULL, *p = NULL, *other = NULL;
        _cleanup_(disk_freep) Disk *d = NULL, *bare = NULL, *moved = NULL;
        _cleanup_(reset_target_freep) ResetTarget *t = NULL, *t2 = NULL, *t3 = NULL;
        _cleanup_(freep) char *path = NULL, *bare_path = NULL, *moved_path = NULL;
        ResetRequest req;
        int r;

        ASSERT_TRUE(asprintf(&path, "%s/classic.img", tmpdir) > 0);
        installed = fake_install(path, src, false, true);
        d = discover(path);
        ASSERT_EQ(reset_probe(d, &t), 1);
        ASSERT_EQ(t->kind, PLAN_SOURCE_ROOT);
        ASSERT_FALSE(t->has_home);
        ASSERT_STREQ(t->image_version, "7");

        /* A classic root comes from its image: none given, refused with a sentence. */
        reset_request_init(&req);
        r = reset_plan(d, &req, NULL, &p);
        ASSERT_EQ(r, -EINVAL);
        ASSERT_CONTAINS(error_message(), "live medium");
        /* No home to keep. */
        req.keep_home = true;
        r = reset_plan(d, &req, NULL, &p);
        ASSERT_EQ(r, -EINVAL);
        ASSERT_CONTAINS(error_message(), "no home partition");

        /* A disk imprint did not install: no record. */
        ASSERT_TRUE(asprintf(&bare_path, "%s/bare.img", tmpdir) > 0);
        other = fake_install(bare_path, usr, true, false);
        bare = discover(bare_path);
        ASSERT_EQ(reset_probe(bare, &t2), 0);
        ASSERT_CONTAINS(t2->refusal, "install record");
        reset_request_init(&req);
        r = reset_plan(bare, &req, NULL, &p);
        ASSERT_EQ(r, -EPERM);
        ASSERT_CONTAINS(error_message(), "did not install");

        /* A layout that changed since the install: the record of another layout on this ESP. */
        ASSERT_TRUE(asprintf(&moved_path, "%s/moved.img", tmpdir) > 0);
        {
                _cleanup_(plan_freep) Plan *q = fake_install(moved_path, usr, true, true);
                PlanPartition *root = (PlanPartition *) plan_find_role(q, ROLE_ROOT);
                FsLocation l = { .disk = moved_path, .offset = plan_find_role(q, ROLE_ESP)->start, .fstype = "vfat" };

                root->size -= MiB;
                ASSERT_OK(record_install_write(q, &l));
        }
        moved = discover(moved_path);
        ASSERT_EQ(reset_probe(moved, &t3), 0);
        ASSERT_CONTAINS(t3->refusal, "resized");
        r = reset_plan(moved, &req, NULL, &p);
        ASSERT_EQ(r, -EPERM);
        ASSERT_TRUE(!p);
}

int main(void) {
        if (!mkdtemp(tmpdir))
                FAIL("mkdtemp: %m");
        atexit(remove_tmpdir);
        if (!find_executable("mkfs.vfat") || !find_executable("mcopy")) {
                printf("test-reset-plan: mkfs.vfat or mtools missing, skipping\n");
                return 77;
        }
        test_record_round_trip();
        test_usr_reset();
        test_classic_and_refusals();
        printf("test-reset-plan: all checks passed.\n");
        return 0;
}
