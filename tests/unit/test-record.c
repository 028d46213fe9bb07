/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The records imprint leaves on an ESP (record.h), on a FAT filesystem made by the stock
 * mkfs.vfat in a file: the install record round trip (the plan comes back as it went in), the
 * audit records (written, the newest found by name, summarized for people), and refusals of
 * records that are not imprint's. Read back with the stock mtype too. No root needed. */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "plan.h"
#include "record.h"
#include "run.h"
#include "size.h"
#include "tests.h"

#define ROOT_X86_64 "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"

static char tmpdir[] = "/var/tmp/test-record.XXXXXX";

static void remove_tmpdir(void) {
        char *argv[] = { (char *) "rm", (char *) "-rf", tmpdir, NULL };
        (void) run_command(argv, &(RunOptions) { .quiet_stderr = true });
}

/* A plan as an install of a classic image makes it, for a disk that exists only in memory. */
static Plan *classic_plan(void) {
        _cleanup_(disk_freep) Disk *d = calloc(1, sizeof(Disk));
        PlanSource *s = calloc(1, sizeof(PlanSource));
        PlanSourcePartition *sp;
        PlanOptions o;
        Plan *p = NULL;

        d->kind = DISK_IMAGE_FILE;
        d->path = strdup("/tmp/fake.img");
        d->name = strdup("fake.img");
        d->size = 16 * GiB;
        d->logical_sector_size = d->physical_sector_size = 512;
        d->transport = TRANSPORT_FILE;

        s->kind = PLAN_SOURCE_ROOT;
        s->path = strdup("/var/tmp/fakeos.raw");
        s->size = 3 * GiB;
        s->fingerprint = strdup("x");
        s->os_name = strdup("Fake OS 7");
        s->image_id = strdup("fakeos");
        s->image_version = strdup("7");
        s->partitions = calloc(1, sizeof(PlanSourcePartition));
        s->n_partitions = 1;
        sp = &s->partitions[0];
        *sp = (PlanSourcePartition) { .role = ROLE_ROOT, .partno = 2, .start = 101 * MiB, .size = 1536 * MiB };
        ASSERT_OK(sd_id128_from_string(ROOT_X86_64, &sp->type_uuid));
        ASSERT_OK(sd_id128_from_string("11111111-2222-4333-8444-555555555555", &sp->uuid));
        sp->fstype = strdup("ext4");

        plan_options_init(&o);
        o.seed = "record";
        o.source = s;
        o.home = (SizeRequest) { SIZE_FIXED, 4 * GiB };
        ASSERT_OK(plan_build(d, &o, &p));
        plan_source_free(s);
        return p;
}

static json_object *audit_new(const char *status, const char *started) {
        json_object *a = json_object_new_object(), *parts = json_object_new_array(), *part;

        json_object_object_add(a, "formatVersion", json_object_new_int(1));
        json_object_object_add(a, "status", json_object_new_string(status));
        json_object_object_add(a, "startedAt", json_object_new_string(started));
        json_object_object_add(a, "entryPoint", json_object_new_string("boot-menu"));
        part = json_object_new_object();
        json_object_object_add(part, "role", json_object_new_string("root"));
        json_object_object_add(part, "action", json_object_new_string("erased"));
        json_object_object_add(part, "method", json_object_new_string("crypto-erase"));
        json_object_array_add(parts, part);
        part = json_object_new_object();
        json_object_object_add(part, "role", json_object_new_string("home"));
        json_object_object_add(part, "action", json_object_new_string("reenrolled"));
        json_object_array_add(parts, part);
        part = json_object_new_object();
        json_object_object_add(part, "role", json_object_new_string("esp"));
        json_object_object_add(part, "action", json_object_new_string("kept"));
        json_object_array_add(parts, part);
        json_object_object_add(a, "partitions", parts);
        json_object_object_add(a, "error", NULL);
        return a;
}

int main(void) {
        _cleanup_(plan_freep) Plan *p = classic_plan();
        _cleanup_(install_record_freep) InstallRecord *rec = NULL;
        _cleanup_(freep) char *esp_path = NULL, *name = NULL, *last = NULL, *summary = NULL, *out = NULL;
        json_object *a, *b, *audit, *back = NULL;
        FsLocation l;
        int fd;

        if (!find_executable("mkfs.vfat") || !find_executable("mcopy")) {
                printf("test-record: mkfs.vfat or mtools missing, skipping\n");
                return 77;
        }
        setenv("MTOOLS_SKIP_CHECK", "1", 1);
        if (!mkdtemp(tmpdir))
                FAIL("mkdtemp: %m");
        atexit(remove_tmpdir);
        ASSERT_TRUE(asprintf(&esp_path, "%s/esp.img", tmpdir) > 0);
        fd = open(esp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(ftruncate(fd, 64 * MiB));
        close(fd);
        {
                char *argv[] = { (char *) "mkfs.vfat", (char *) "-F", (char *) "32", esp_path, NULL };
                ASSERT_OK(run_command(argv, &(RunOptions) { .quiet_stderr = true }));
        }
        l = (FsLocation) { .disk = esp_path, .offset = 0, .fstype = "vfat" };

        /* Nothing there yet: -ENOENT, no sentence needed. */
        ASSERT_EQ(record_install_read(&l, &rec), -ENOENT);
        ASSERT_EQ(record_reset_last(&l, &back, &last), -ENOENT);

        /* The install record: the plan as installed comes back exactly. */
        ASSERT_OK(record_install_write(p, &l));
        ASSERT_OK(record_install_read(&l, &rec));
        ASSERT_EQ(rec->format_version, RECORD_FORMAT_VERSION);
        ASSERT_STREQ(rec->imprint_version, IMPRINT_VERSION);
        ASSERT_TRUE(rec->installed_at && strlen(rec->installed_at) == 20 && rec->installed_at[10] == 'T' && rec->installed_at[19] == 'Z');
        a = plan_to_json(p);
        b = plan_to_json(rec->plan);
        ASSERT_STREQ(json_object_to_json_string(a), json_object_to_json_string(b));
        json_object_put(a);
        json_object_put(b);
        /* The stock mtype reads the same JSON. */
        {
                char *argv[] = { (char *) "mtype", (char *) "-i", esp_path, (char *) "::/imprint/install.json", NULL };
                ASSERT_OK(run_command(argv, &(RunOptions) { .ret_stdout = &out }));
                ASSERT_CONTAINS(out, "\"formatVersion\": 1");
                ASSERT_CONTAINS(out, "\"installedAt\"");
        }

        /* record_install_update() keeps when and by which imprint the disk was installed. */
        free(rec->installed_at);
        rec->installed_at = strdup("2020-01-01T00:00:00Z");
        ASSERT_OK(record_install_update(rec, &l));
        install_record_free(rec);
        rec = NULL;
        ASSERT_OK(record_install_read(&l, &rec));
        ASSERT_STREQ(rec->installed_at, "2020-01-01T00:00:00Z");

        /* Audit records: the newest by name is the one found; names are checked. */
        ASSERT_OK(record_reset_name(&name));
        ASSERT_TRUE(strncmp(name, "reset-", 6) == 0 && strlen(name) == strlen("reset-20261203T101500Z.json"));
        audit = audit_new("complete", "2026-12-03T10:15:00Z");
        ASSERT_OK(record_reset_write(&l, "reset-20200101T000000Z.json", audit));
        ASSERT_OK(record_reset_write(&l, name, audit));
        ASSERT_EQ(record_reset_write(&l, "../install.json", audit), -EINVAL);
        ASSERT_EQ(record_reset_write(&l, "install.json", audit), -EINVAL);
        ASSERT_OK(record_reset_last(&l, &back, &last));
        ASSERT_STREQ(last, name);
        ASSERT_STREQ(json_object_to_json_string(back), json_object_to_json_string(audit));
        json_object_put(back);
        back = NULL;

        ASSERT_OK(record_reset_summary(audit, &summary));
        ASSERT_CONTAINS(summary, "2026-12-03 10:15 UTC");
        ASSERT_CONTAINS(summary, "from the boot menu");
        ASSERT_CONTAINS(summary, "root (crypto-erase)");
        ASSERT_CONTAINS(summary, "home kept");
        ASSERT_CONTAINS(summary, "(complete)");
        ASSERT_TRUE(!strstr(summary, "esp"));
        summary = mfree(summary);
        json_object_put(audit);

        audit = audit_new("running", "2026-12-03T11:00:00Z");
        ASSERT_OK(record_reset_summary(audit, &summary));
        ASSERT_CONTAINS(summary, "interrupted");
        summary = mfree(summary);
        json_object_object_add(audit, "status", json_object_new_string("failed"));
        json_object_object_add(audit, "error", json_object_new_string("The disk went away."));
        ASSERT_OK(record_reset_summary(audit, &summary));
        ASSERT_CONTAINS(summary, "failed: The disk went away.");
        json_object_put(audit);
        audit = json_object_new_object();
        ASSERT_EQ(record_reset_summary(audit, &summary), -EBADMSG);
        json_object_put(audit);

        /* What is not imprint's record is refused with a sentence. */
        ASSERT_OK(fat_write_file(&l, RECORD_INSTALL_PATH, "{\"formatVersion\": 99}", strlen("{\"formatVersion\": 99}")));
        install_record_free(rec);
        rec = NULL;
        ASSERT_EQ(record_install_read(&l, &rec), -EBADMSG);
        ASSERT_CONTAINS(error_message(), "99");
        ASSERT_OK(fat_write_file(&l, RECORD_INSTALL_PATH, "{\"formatVersion\": 1, \"plan\": {\"version\": 1}}",
                                 strlen("{\"formatVersion\": 1, \"plan\": {\"version\": 1}}")));
        ASSERT_EQ(record_install_read(&l, &rec), -EBADMSG);
        ASSERT_CONTAINS(error_message(), "cannot be read");
        ASSERT_OK(fat_write_file(&l, RECORD_INSTALL_PATH, "not json", 8));
        ASSERT_EQ(record_install_read(&l, &rec), -EBADMSG);
        ASSERT_TRUE(error_message());

        printf("test-record: all checks passed.\n");
        return 0;
}
