/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The planner, without disks or privileges: fake Disk structs in, plans out. */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "plan.h"
#include "size.h"
#include "tests.h"
#include "uuid.h"

#define ESP_GUID "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
#define ROOT_X86_64 "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"
#define HOME_GUID "933ac7e1-2eb4-4f13-b844-0e14e2aef915"
#define MSR_GUID "e3c9e316-0b5c-4db8-817d-f92df00215ae"
#define MSDATA_GUID "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7"

static Disk *fake_disk(uint64_t size, const char *pttype) {
        Disk *d = calloc(1, sizeof(Disk));

        d->kind = DISK_IMAGE_FILE;
        d->path = strdup("/tmp/fake.img");
        d->name = strdup("fake.img");
        d->size = size;
        d->logical_sector_size = d->physical_sector_size = 512;
        d->transport = TRANSPORT_FILE;
        if (pttype) {
                d->pttype = strdup(pttype);
                d->ptuuid = strdup("8d5b9f2c-5b0e-4bd4-9d43-5f4f3b7b1a11");
        }
        return d;
}

static void fake_add(Disk *d, unsigned partno, uint64_t start, uint64_t size, const char *type, const char *fstype, uint64_t flags) {
        DiskPartition *p;
        char uuid[64];

        d->partitions = realloc(d->partitions, (d->n_partitions + 1) * sizeof(DiskPartition));
        p = &d->partitions[d->n_partitions++];
        *p = (DiskPartition) { .partno = partno, .start = start, .size = size, .flags = flags };
        p->type_string = strdup(type);
        ASSERT_OK(sd_id128_from_string(type, &p->type_uuid));
        p->dps = dps_type_from_uuid(p->type_uuid);
        snprintf(uuid, sizeof(uuid), "00000000-0000-4000-8000-%012u", partno);
        p->uuid_string = strdup(uuid);
        ASSERT_OK(sd_id128_from_string(uuid, &p->uuid));
        p->fstype = fstype ? strdup(fstype) : NULL;
}

static Plan *plan_ok(const Disk *d, const PlanOptions *o) {
        Plan *p = NULL;
        int r = plan_build(d, o, &p);
        if (r < 0)
                fprintf(stderr, "plan_build: %s\n", error_message() ?: strerror(-r));
        ASSERT_OK(r);
        return p;
}

static void check_aligned(const Plan *p) {
        for (size_t i = 0; i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];
                if (pp->action != ACTION_CREATE)
                        continue;
                ASSERT_EQ(pp->start % MiB, 0);
                ASSERT_EQ(pp->size % MiB, 0);
                ASSERT_TRUE(pp->start >= MiB);
                /* The backup GPT (33 sectors) must fit behind the last partition. */
                ASSERT_TRUE(pp->start + pp->size <= p->fingerprint.size - 33 * 512);
                for (size_t k = 0; k < i; k++) {
                        const PlanPartition *q = &p->partitions[k];
                        ASSERT_TRUE(pp->start >= q->start + q->size || q->start >= pp->start + pp->size);
                }
        }
}

static void test_erase_defaults(void) {
        _cleanup_(disk_freep) Disk *d = fake_disk(8 * GiB, "gpt");
        _cleanup_(plan_freep) Plan *p = NULL;
        PlanOptions o;

        fake_add(d, 1, MiB, 100 * MiB, MSDATA_GUID, "ntfs", 0);
        plan_options_init(&o);
        p = plan_ok(d, &o);

        ASSERT_EQ(p->n_partitions, 2);
        ASSERT_EQ(p->partitions[0].role, ROLE_ESP);
        ASSERT_EQ(p->partitions[0].partno, 1);
        ASSERT_EQ(p->partitions[0].start, MiB);
        ASSERT_EQ(p->partitions[0].size, GiB);
        ASSERT_STREQ(SD_ID128_TO_UUID_STRING(p->partitions[0].type_uuid), ESP_GUID);
        ASSERT_STREQ(p->partitions[0].fstype, "vfat");
        ASSERT_EQ(p->partitions[0].flags, 0);

        ASSERT_EQ(p->partitions[1].role, ROLE_ROOT);
        ASSERT_EQ(p->partitions[1].partno, 2);
        ASSERT_EQ(p->partitions[1].start, GiB + MiB);
        /* The rest of the disk: all but the first MiB, the ESP and the MiB holding the backup GPT. */
        ASSERT_EQ(p->partitions[1].size, 8 * GiB - 2 * MiB - GiB);
        ASSERT_STREQ(SD_ID128_TO_UUID_STRING(p->partitions[1].type_uuid), ROOT_X86_64);
        ASSERT_STREQ(p->partitions[1].label, "root-x86-64");
        ASSERT_EQ(p->partitions[1].flags, DPS_FLAG_GROWFS);
        ASSERT_STREQ(p->partitions[1].fstype, "ext4");

        /* Erase mode names what it destroys. */
        ASSERT_EQ(p->n_doomed, 1);
        ASSERT_EQ(p->doomed[0].partno, 1);
        ASSERT_STREQ(p->doomed[0].type_name, "microsoft-basic-data");
        check_aligned(p);
}

static void test_seeded_uuids(void) {
        _cleanup_(disk_freep) Disk *d = fake_disk(16 * GiB, NULL);
        _cleanup_(plan_freep) Plan *a = NULL, *b = NULL, *c = NULL, *r1 = NULL, *r2 = NULL;
        sd_id128_t want;
        PlanOptions o;

        plan_options_init(&o);
        o.seed = "line-7";
        o.home = (SizeRequest) { SIZE_FIXED, 4 * GiB };
        a = plan_ok(d, &o);
        b = plan_ok(d, &o);
        for (size_t i = 0; i < a->n_partitions; i++)
                ASSERT_TRUE(sd_id128_equal(a->partitions[i].uuid, b->partitions[i].uuid));
        ASSERT_TRUE(sd_id128_equal(a->disk_uuid, b->disk_uuid));

        /* The derivation is documented: HMAC-SHA256(seed, "partition:<role>") as a v4 UUID. */
        ASSERT_OK(uuid_from_seed("line-7", "partition:root", &want));
        ASSERT_TRUE(sd_id128_equal(plan_find_role(a, ROLE_ROOT)->uuid, want));
        ASSERT_EQ(want.bytes[6] >> 4, 4);
        ASSERT_EQ(want.bytes[8] & 0xC0, 0x80);

        o.seed = "line-8";
        c = plan_ok(d, &o);
        ASSERT_FALSE(sd_id128_equal(a->partitions[0].uuid, c->partitions[0].uuid));

        o.seed = NULL;
        r1 = plan_ok(d, &o);
        r2 = plan_ok(d, &o);
        ASSERT_FALSE(sd_id128_equal(r1->partitions[1].uuid, r2->partitions[1].uuid));

        /* All partition UUIDs within a plan differ. */
        for (size_t i = 0; i < a->n_partitions; i++)
                for (size_t k = 0; k < i; k++)
                        ASSERT_FALSE(sd_id128_equal(a->partitions[i].uuid, a->partitions[k].uuid));
}

static void test_home_and_swap(void) {
        _cleanup_(disk_freep) Disk *big = fake_disk(100 * GiB, NULL), *small = fake_disk(20 * GiB, NULL);
        _cleanup_(plan_freep) Plan *p = NULL, *q = NULL, *s = NULL;
        PlanOptions o;

        plan_options_init(&o);
        o.home = (SizeRequest) { SIZE_REST, 0 };
        o.swap = (SizeRequest) { SIZE_FIXED, 2 * GiB };
        p = plan_ok(big, &o);
        ASSERT_EQ(p->n_partitions, 4);
        ASSERT_EQ(p->partitions[1].role, ROLE_SWAP);
        ASSERT_EQ(p->partitions[1].size, 2 * GiB);
        ASSERT_EQ(p->partitions[1].flags, 0);
        ASSERT_STREQ(dps_type_name(p->partitions[1].type_uuid), "swap");
        ASSERT_EQ(plan_find_role(p, ROLE_ROOT)->size, PLAN_ROOT_SIZE_WITH_HOME_DEFAULT);
        ASSERT_EQ(plan_find_role(p, ROLE_HOME)->flags, DPS_FLAG_GROWFS);
        ASSERT_STREQ(SD_ID128_TO_UUID_STRING(plan_find_role(p, ROLE_HOME)->type_uuid), HOME_GUID);
        /* home took everything that was left */
        ASSERT_EQ(plan_find_role(p, ROLE_HOME)->start + plan_find_role(p, ROLE_HOME)->size, 100 * GiB - MiB);
        check_aligned(p);

        /* On a small disk the root default shrinks to half of what is left. */
        plan_options_init(&o);
        o.home = (SizeRequest) { SIZE_REST, 0 };
        q = plan_ok(small, &o);
        ASSERT_EQ(plan_find_role(q, ROLE_ROOT)->size, ROUND_DOWN((20 * GiB - 2 * MiB - GiB) / 2, MiB));
        check_aligned(q);

        /* Explicit sizes are rounded up to the 1 MiB alignment. */
        plan_options_init(&o);
        o.root = (SizeRequest) { SIZE_FIXED, 5 * GiB + 1 };
        o.home = (SizeRequest) { SIZE_REST, 0 };
        o.home_fs = "xfs";
        s = plan_ok(small, &o);
        ASSERT_EQ(plan_find_role(s, ROLE_ROOT)->size, 5 * GiB + MiB);
        ASSERT_STREQ(plan_find_role(s, ROLE_HOME)->fstype, "xfs");
        ASSERT_EQ(plan_find_role(s, ROLE_HOME)->flags, DPS_FLAG_GROWFS);
        check_aligned(s);
}

static void test_errors(void) {
        _cleanup_(disk_freep) Disk *tiny = fake_disk(2 * GiB, NULL), *d = fake_disk(20 * GiB, NULL);
        Plan *p = NULL;
        PlanOptions o;

        plan_options_init(&o);
        ASSERT_EQ(plan_build(tiny, &o, &p), -ENOSPC);
        /* The message names the disk, its size and what the layout needs. */
        ASSERT_CONTAINS(error_message(), "/tmp/fake.img");
        ASSERT_CONTAINS(error_message(), "2 GiB");
        ASSERT_CONTAINS(error_message(), "3 GiB");
        ASSERT_CONTAINS(error_message(), "ESP 1 GiB");

        /* A bigger image root raises the minimum. */
        plan_options_init(&o);
        o.root_min = 19 * GiB;
        ASSERT_EQ(plan_build(d, &o, &p), -ENOSPC);
        ASSERT_CONTAINS(error_message(), "root at least 19 GiB");

        plan_options_init(&o);
        o.root = (SizeRequest) { SIZE_REST, 0 };
        o.home = (SizeRequest) { SIZE_REST, 0 };
        ASSERT_EQ(plan_build(d, &o, &p), -EINVAL);

        plan_options_init(&o);
        o.esp = (SizeRequest) { SIZE_FIXED, 256 * MiB };
        ASSERT_EQ(plan_build(d, &o, &p), -EINVAL);
        ASSERT_CONTAINS(error_message(), "FAT32");

        plan_options_init(&o);
        o.root_fs = "erofs";
        ASSERT_EQ(plan_build(d, &o, &p), -EINVAL);

        plan_options_init(&o);
        o.root = (SizeRequest) { SIZE_FIXED, GiB };
        ASSERT_EQ(plan_build(d, &o, &p), -EINVAL);
        ASSERT_CONTAINS(error_message(), "too small");

        /* A disk the discovery refused is never planned on. */
        plan_options_init(&o);
        d->refusals = REFUSE_MOUNTED;
        d->refusal_text = strdup("/dev/fake1 is mounted on /mnt.");
        ASSERT_EQ(plan_build(d, &o, &p), -EBUSY);
        ASSERT_CONTAINS(error_message(), "is mounted on /mnt");
        ASSERT_TRUE(p == NULL);
}

/* A Windows disk: 100 MiB ESP, MSR, NTFS, and 60 GiB free at the end. */
static Disk *windows_disk(uint64_t esp_size) {
        Disk *d = fake_disk(100 * GiB, "gpt");

        fake_add(d, 1, MiB, esp_size, ESP_GUID, "vfat", 0);
        fake_add(d, 2, MiB + esp_size, 16 * MiB, MSR_GUID, NULL, 0);
        fake_add(d, 3, MiB + esp_size + 16 * MiB, 40 * GiB, MSDATA_GUID, "ntfs", 0);
        return d;
}

static void test_free_mode(void) {
        _cleanup_(disk_freep) Disk *w = windows_disk(100 * MiB), *w2 = windows_disk(GiB);
        _cleanup_(plan_freep) Plan *p = NULL, *q = NULL;
        const PlanPartition *esp, *xb, *root;
        uint64_t free_start = ROUND_UP(MiB + 100 * MiB + 16 * MiB + 40 * GiB, MiB);
        PlanOptions o;

        plan_options_init(&o);
        o.mode = PLAN_FREE;
        p = plan_ok(w, &o);
        ASSERT_EQ(p->n_doomed, 0);
        ASSERT_STREQ(SD_ID128_TO_UUID_STRING(p->disk_uuid), "8d5b9f2c-5b0e-4bd4-9d43-5f4f3b7b1a11");

        esp = plan_find_role(p, ROLE_ESP);
        ASSERT_EQ(esp->action, ACTION_KEEP);
        ASSERT_EQ(esp->partno, 1);
        ASSERT_EQ(esp->size, 100 * MiB);

        /* The kept ESP is too small for UKIs: an XBOOTLDR partition joins it. */
        xb = plan_find_role(p, ROLE_XBOOTLDR);
        ASSERT_TRUE(xb != NULL);
        ASSERT_EQ(xb->action, ACTION_CREATE);
        ASSERT_EQ(xb->partno, 4);
        ASSERT_EQ(xb->start, free_start);
        ASSERT_EQ(xb->size, GiB);
        ASSERT_STREQ(dps_type_name(xb->type_uuid), "xbootldr");

        root = plan_find_role(p, ROLE_ROOT);
        ASSERT_EQ(root->partno, 5);
        ASSERT_EQ(root->start, free_start + GiB);
        ASSERT_EQ(root->start + root->size, 100 * GiB - MiB);
        check_aligned(p);

        /* A kept ESP that is big enough needs no XBOOTLDR. */
        q = plan_ok(w2, &o);
        ASSERT_TRUE(plan_find_role(q, ROLE_XBOOTLDR) == NULL);
        ASSERT_EQ(plan_find_role(q, ROLE_ROOT)->partno, 4);
}

static void test_free_mode_refusals(void) {
        _cleanup_(disk_freep) Disk *other_linux = windows_disk(GiB), *mbr = fake_disk(50 * GiB, "dos"), *full = windows_disk(GiB),
                                  *homed = windows_disk(GiB), *noauto = windows_disk(GiB);
        _cleanup_(plan_freep) Plan *ok = NULL;
        Plan *p = NULL;
        PlanOptions o;

        plan_options_init(&o);
        o.mode = PLAN_FREE;

        fake_add(other_linux, 4, 50 * GiB, 10 * GiB, ROOT_X86_64, "ext4", 0);
        ASSERT_EQ(plan_build(other_linux, &o, &p), -EEXIST);
        ASSERT_CONTAINS(error_message(), "root partition (partition 4");

        fake_add(homed, 4, 50 * GiB, 10 * GiB, HOME_GUID, "ext4", 0);
        ASSERT_EQ(plan_build(homed, &o, &p), -EEXIST);
        ASSERT_CONTAINS(error_message(), "/home");

        /* A root marked no-auto is not discovered, so it does not conflict. */
        fake_add(noauto, 4, 50 * GiB, 10 * GiB, ROOT_X86_64, "ext4", DPS_FLAG_NO_AUTO);
        ok = plan_ok(noauto, &o);
        ASSERT_EQ(plan_find_role(ok, ROLE_ROOT)->partno, 5);

        ASSERT_EQ(plan_build(mbr, &o, &p), -EOPNOTSUPP);
        ASSERT_CONTAINS(error_message(), "MBR");

        /* Fill the free space: only 1 GiB is left at the end. */
        fake_add(full, 4, ROUND_UP(MiB + GiB + 16 * MiB + 40 * GiB, MiB), 58 * GiB, MSDATA_GUID, "ntfs", 0);
        ASSERT_EQ(plan_build(full, &o, &p), -ENOSPC);
        ASSERT_CONTAINS(error_message(), "largest free region");
}

static void test_json_roundtrip(void) {
        _cleanup_(disk_freep) Disk *w = windows_disk(100 * MiB);
        _cleanup_(plan_freep) Plan *p = NULL, *back = NULL;
        _cleanup_(freep) char *s1 = NULL;
        json_object *j, *j2, *parts, *e;
        PlanOptions o;

        plan_options_init(&o);
        o.mode = PLAN_FREE;
        o.seed = "roundtrip";
        o.swap = (SizeRequest) { SIZE_FIXED, GiB };
        p = plan_ok(w, &o);

        j = plan_to_json(p);
        s1 = strdup(json_object_to_json_string(j));
        ASSERT_OK(plan_from_json(j, &back));
        j2 = plan_to_json(back);
        ASSERT_STREQ(s1, json_object_to_json_string(j2));
        json_object_put(j2);

        /* Damaged plan files are refused with a reason. */
        ASSERT_TRUE(json_object_object_get_ex(j, "partitions", &parts));
        e = json_object_array_get_idx(parts, 2);
        json_object_object_add(e, "start", json_object_new_int64((int64_t) plan_find_role(p, ROLE_ROOT)->start));
        plan_free(back), back = NULL;
        ASSERT_EQ(plan_from_json(j, &back), -EINVAL);
        ASSERT_CONTAINS(error_message(), "overlap");

        json_object_object_add(e, "start", json_object_new_int64((int64_t) p->partitions[2].start));
        json_object_object_add(e, "typeUuid", json_object_new_string(HOME_GUID));
        ASSERT_EQ(plan_from_json(j, &back), -EINVAL);
        ASSERT_CONTAINS(error_message(), "not a");

        json_object_object_add(j, "version", json_object_new_int(99));
        ASSERT_EQ(plan_from_json(j, &back), -EINVAL);
        ASSERT_CONTAINS(error_message(), "version");
        json_object_put(j);
}

#define USR_X86_64 "8484680c-9521-48c6-9c11-b0720656f69e"
#define USR_VERITY_X86_64 "77ff5f63-e7b6-4633-acf4-1565b864c0e6"
#define USR_VERITY_SIG_X86_64 "e7bb33fb-06cf-4e81-8273-e543b413e2e2"
#define ROOT_VERITY_X86_64 "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5"

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

static void source_add_entry(PlanSource *s, const char *file, const char *version) {
        s->entries = realloc(s->entries, (s->n_entries + 1) * sizeof(PlanBootEntry));
        s->entries[s->n_entries++] = (PlanBootEntry) {
                .file = strdup(file),
                .install_on = _ROLE_INVALID,
                .title = strdup("Fake OS"),
                .version = strdup(version),
                .uname = strdup("6.12.0-fake"),
        };
}

/* A classic image as image_to_plan_source() describes it: root with dm-verity. */
static PlanSource *classic_source(void) {
        PlanSource *s = calloc(1, sizeof(PlanSource));

        s->kind = PLAN_SOURCE_ROOT;
        s->path = strdup("/var/tmp/fakeos.raw");
        s->size = 3 * GiB;
        s->fingerprint = strdup("1:1048576:104857600:c12a7328-f81f-11d2-ba4b-00a0c93ec93b:x");
        s->os_name = strdup("Fake OS 7");
        s->image_id = strdup("fakeos");
        s->image_version = strdup("7");
        source_add(s, ROLE_ROOT, 2, 101 * MiB, 1536 * MiB, ROOT_X86_64, "11111111-2222-4333-8444-555555555555", "root-x86-64", 0,
                   "ext4");
        source_add(s, ROLE_ROOT_VERITY, 3, 1637 * MiB, 64 * MiB, ROOT_VERITY_X86_64, "66666666-7777-4888-8999-aaaaaaaaaaaa",
                   "root-verity", 0, NULL);
        source_add_entry(s, "fakeos_7.efi", "7");
        return s;
}

/* Classic plans are what they were before usr images existed, byte for byte: the JSON of a
 * seeded classic install is compared with the file this code wrote before the change. */
static void test_classic_json_unchanged(void) {
        _cleanup_(disk_freep) Disk *d = fake_disk(16 * GiB, NULL);
        _cleanup_(plan_source_freep) PlanSource *src = classic_source();
        _cleanup_(plan_freep) Plan *p = NULL, *back = NULL;
        _cleanup_(freep) char *golden = NULL, *path = NULL;
        const char *dir = getenv("SOURCE_ROOT");
        json_object *j;
        const char *now;
        PlanOptions o;
        FILE *f;
        long n;

        plan_options_init(&o);
        o.seed = "classic-golden";
        o.home = (SizeRequest) { SIZE_FIXED, 4 * GiB };
        o.source = src;
        p = plan_ok(d, &o);
        j = plan_to_json(p);
        now = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
        if (getenv("IMPRINT_WRITE_GOLDEN")) {
                printf("%s\n", now);
                json_object_put(j);
                exit(0);
        }
        ASSERT_TRUE(dir);
        ASSERT_TRUE(asprintf(&path, "%s/tests/unit/data/plan-classic.json", dir) > 0);
        f = fopen(path, "re");
        ASSERT_TRUE(f);
        ASSERT_OK(fseek(f, 0, SEEK_END));
        n = ftell(f);
        rewind(f);
        golden = calloc(1, (size_t) n + 1);
        ASSERT_EQ(fread(golden, 1, (size_t) n, f), (size_t) n);
        fclose(f);
        if (n > 0 && golden[n - 1] == '\n')
                golden[n - 1] = 0;
        ASSERT_STREQ(now, golden);
        ASSERT_OK(plan_from_json(j, &back));
        json_object_put(j);
        j = plan_to_json(back);
        ASSERT_STREQ(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED), golden);
        json_object_put(j);
}

/* A usr image as image_to_plan_source() describes it: usr (squashfs), usr-verity and
 * usr-verity-sig, slot sizes from its repart.d, names from its sysupdate.d. */
static PlanSource *usr_source(void) {
        PlanSource *s = calloc(1, sizeof(PlanSource));

        s->kind = PLAN_SOURCE_USR;
        s->path = strdup("/var/tmp/imprint-usr_1.raw");
        s->size = 2 * GiB;
        s->fingerprint = strdup("x");
        s->os_name = strdup("Imprint usr 1");
        s->image_id = strdup("imprint-usr");
        s->image_version = strdup("1");
        s->root_fstype = strdup("ext4");
        s->note = strdup("imprint assumes that the initrd finds root by systemd-gpt-auto-generator.");
        source_add(s, ROLE_USR, 2, 101 * MiB, 300 * MiB + 4096, USR_X86_64, "11111111-2222-4333-8444-555555555555", "imprint-usr_1",
                   DPS_FLAG_READ_ONLY, "squashfs");
        s->partitions[0].slot_size = 512 * MiB;
        s->partitions[0].install_label = strdup("imprint-usr_1");
        source_add(s, ROLE_USR_VERITY, 3, 402 * MiB, 20 * MiB, USR_VERITY_X86_64, "66666666-7777-4888-8999-aaaaaaaaaaaa",
                   "imprint-usr_1", DPS_FLAG_READ_ONLY, NULL);
        s->partitions[1].slot_size = 32 * MiB;
        s->partitions[1].install_label = strdup("imprint-usr_1");
        source_add(s, ROLE_USR_VERITY_SIG, 4, 422 * MiB, 16 * 1024, USR_VERITY_SIG_X86_64, "bbbbbbbb-cccc-4ddd-8eee-ffffffffffff",
                   "imprint-usr_1", DPS_FLAG_READ_ONLY, NULL);
        s->partitions[2].install_label = strdup("imprint-usr_1");
        source_add_entry(s, "imprint-usr_1.efi", "1");
        s->entries[0].install_as = strdup("imprint-usr_1+3-0.efi");
        s->entries[0].install_on = ROLE_ESP;
        return s;
}

static void test_usr_plan(void) {
        static const PartitionRole order[] = { ROLE_ESP, ROLE_USR, ROLE_USR_VERITY, ROLE_USR_VERITY_SIG, ROLE_USR, ROLE_USR_VERITY,
                                               ROLE_USR_VERITY_SIG, ROLE_ROOT, ROLE_HOME };
        static const uint64_t slot[] = { 512 * MiB, 32 * MiB, MiB };
        _cleanup_(disk_freep) Disk *d = fake_disk(16 * GiB, NULL), *small = fake_disk(2 * GiB, NULL);
        _cleanup_(plan_source_freep) PlanSource *src = usr_source();
        _cleanup_(plan_freep) Plan *p = NULL, *back = NULL, *q = NULL;
        _cleanup_(freep) char *s1 = NULL, *table = NULL;
        PlanAccount classic = { .user_name = (char *) "alice", .kind = ACCOUNT_CLASSIC, .note = (char *) "A classic user, as asked." };
        size_t table_size = 0;
        json_object *j, *j2;
        sd_id128_t want;
        FILE *f;
        PlanOptions o;

        plan_options_init(&o);
        o.seed = "usr-line";
        o.source = src;
        o.home = (SizeRequest) { SIZE_FIXED, 2 * GiB };
        p = plan_ok(d, &o);
        check_aligned(p);

        ASSERT_EQ(p->n_partitions, ELEMENTSOF(order));
        for (size_t i = 0; i < ELEMENTSOF(order); i++)
                ASSERT_EQ(p->partitions[i].role, order[i]);
        ASSERT_EQ(p->arch, ARCH_X86_64);
        for (size_t k = 0; k < 3; k++) {
                const PlanPartition *a = &p->partitions[1 + k], *b = &p->partitions[4 + k];
                const PlanSourcePartition *sp = &src->partitions[k];

                /* A: copied, the image's type, UUID (halves of the usrhash) and flags, sysupdate's name. */
                ASSERT_EQ(a->copy_from, (int) k);
                ASSERT_EQ(a->size, slot[k]);
                ASSERT_TRUE(sd_id128_equal(a->uuid, sp->uuid));
                ASSERT_TRUE(sd_id128_equal(a->type_uuid, sp->type_uuid));
                ASSERT_STREQ(a->label, "imprint-usr_1");
                ASSERT_EQ(a->flags, DPS_FLAG_READ_ONLY);
                ASSERT_TRUE(a->fstype == NULL);
                /* B: same type and size, empty, "_empty", a UUID of its own (seeded). */
                ASSERT_EQ(b->copy_from, -1);
                ASSERT_EQ(b->action, ACTION_CREATE);
                ASSERT_EQ(b->size, slot[k]);
                ASSERT_TRUE(sd_id128_equal(b->type_uuid, sp->type_uuid));
                ASSERT_FALSE(sd_id128_equal(b->uuid, sp->uuid));
                ASSERT_STREQ(b->label, "_empty");
                ASSERT_TRUE(b->fstype == NULL);
                /* after all A slots */
                ASSERT_TRUE(b->start >= p->partitions[3].start + p->partitions[3].size);
        }
        ASSERT_OK(uuid_from_seed("usr-line", "partition:usr-b", &want));
        ASSERT_TRUE(sd_id128_equal(p->partitions[4].uuid, want));
        /* Root is created (the image brings none), with the image's Format=, after the slots. */
        ASSERT_EQ(plan_find_role(p, ROLE_ROOT)->copy_from, -1);
        ASSERT_STREQ(plan_find_role(p, ROLE_ROOT)->fstype, "ext4");
        ASSERT_STREQ(plan_find_role(p, ROLE_ROOT)->label, "root-x86-64");
        ASSERT_TRUE(plan_find_role(p, ROLE_ROOT)->flags & DPS_FLAG_GROWFS);
        ASSERT_STREQ(plan_find_role(p, ROLE_HOME)->fstype, "ext4");
        ASSERT_EQ(plan_find_role(p, ROLE_HOME)->size, 2 * GiB);
        for (size_t i = 0; i < p->n_partitions; i++)
                for (size_t k = 0; k < i; k++)
                        ASSERT_FALSE(sd_id128_equal(p->partitions[i].uuid, p->partitions[k].uuid));

        /* The plan file holds the usr-only keys and loads back identical. */
        j = plan_to_json(p);
        s1 = strdup(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
        ASSERT_CONTAINS(s1, "\"kind\":\"usr\"");
        ASSERT_CONTAINS(s1, "\"installAs\":\"imprint-usr_1+3-0.efi\"");
        ASSERT_CONTAINS(s1, "\"installOn\":\"esp\"");
        ASSERT_CONTAINS(s1, "\"slotSize\":536870912");
        ASSERT_CONTAINS(s1, "\"installLabel\":\"imprint-usr_1\"");
        ASSERT_CONTAINS(s1, "\"rootFstype\":\"ext4\"");
        ASSERT_CONTAINS(s1, "\"label\":\"_empty\"");
        ASSERT_OK(plan_from_json(j, &back));
        j2 = plan_to_json(back);
        ASSERT_STREQ(s1, json_object_to_json_string_ext(j2, JSON_C_TO_STRING_PLAIN));
        json_object_put(j2);
        ASSERT_EQ(back->source->kind, PLAN_SOURCE_USR);
        ASSERT_EQ(back->source->entries[0].install_on, ROLE_ESP);
        ASSERT_EQ(back->source->partitions[0].slot_size, 512 * MiB);
        plan_free(back), back = NULL;
        /* A file name with a path in it is not a boot entry name. */
        {
                json_object *so, *ents;
                ASSERT_TRUE(json_object_object_get_ex(j, "source", &so));
                ASSERT_TRUE(json_object_object_get_ex(so, "bootEntries", &ents));
                json_object_object_add(json_object_array_get_idx(ents, 0), "installAs", json_object_new_string("../../x.efi"));
                ASSERT_EQ(plan_from_json(j, &back), -EINVAL);
                ASSERT_CONTAINS(error_message(), "path");
        }
        json_object_put(j);

        /* The table shows the B slots and says what A and B are, and what imprint assumed. */
        f = open_memstream(&table, &table_size);
        plan_print_table(p, f);
        fclose(f);
        ASSERT_CONTAINS(table, "_empty");
        ASSERT_CONTAINS(table, "Slots:   /usr A \"imprint-usr_1\" is copied from the image; B \"_empty\"");
        ASSERT_CONTAINS(table, "installed as imprint-usr_1+3-0.efi on the ESP");
        ASSERT_CONTAINS(table, "Note:    imprint assumes that the initrd");

        /* Too small: the sentence names the slots and the numbers. */
        o.home = (SizeRequest) { SIZE_NONE, 0 };
        ASSERT_EQ(plan_build(small, &o, &q), -ENOSPC);
        ASSERT_CONTAINS(error_message(), "/usr slots A and B of the image 1.1 GiB");
        ASSERT_CONTAINS(error_message(), "2 GiB");

        /* A classic account cannot be made in a root that starts empty. */
        o.account = &classic;
        ASSERT_EQ(plan_build(d, &o, &q), -EOPNOTSUPP);
        ASSERT_CONTAINS(error_message(), "A classic user, as asked. But the image /var/tmp/imprint-usr_1.raw brings no root filesystem");
        o.account = NULL;

        /* The image's repart.d decides root's filesystem; a contradicting option is refused. */
        o.root_fs = "xfs";
        ASSERT_EQ(plan_build(d, &o, &q), -EINVAL);
        ASSERT_CONTAINS(error_message(), "makes its root filesystem ext4");
        o.root_fs = "ext4";
        q = plan_ok(d, &o);
        plan_free(q), q = NULL;
        /* Without a Format= in the image, the option (or ext4) decides; without slot sizes, A's size. */
        o.root_fs = "btrfs";
        free(src->root_fstype), src->root_fstype = NULL;
        src->partitions[0].slot_size = 0;
        q = plan_ok(d, &o);
        ASSERT_STREQ(plan_find_role(q, ROLE_ROOT)->fstype, "btrfs");
        ASSERT_EQ(q->partitions[1].size, 301 * MiB);
        ASSERT_EQ(q->partitions[4].size, 301 * MiB);
        plan_free(q), q = NULL;

        /* Free mode beside Windows with a small ESP: the ESP is kept, an XBOOTLDR partition is made,
         * the slots and root follow it in the free region; the UKI still goes where its transfer
         * says (the ESP here), and the table says so. */
        {
                _cleanup_(disk_freep) Disk *w = windows_disk(100 * MiB);
                _cleanup_(freep) char *t2 = NULL;
                static const PartitionRole free_order[] = { ROLE_ESP, ROLE_XBOOTLDR, ROLE_USR, ROLE_USR_VERITY, ROLE_USR_VERITY_SIG,
                                                            ROLE_USR, ROLE_USR_VERITY, ROLE_USR_VERITY_SIG, ROLE_ROOT };
                size_t t2_size = 0;

                o.mode = PLAN_FREE;
                q = plan_ok(w, &o);
                check_aligned(q);
                ASSERT_EQ(q->n_partitions, ELEMENTSOF(free_order));
                for (size_t i = 0; i < ELEMENTSOF(free_order); i++)
                        ASSERT_EQ(q->partitions[i].role, free_order[i]);
                ASSERT_EQ(q->partitions[0].action, ACTION_KEEP);
                ASSERT_EQ(q->partitions[2].partno, 5); /* after Windows' 1-3 and XBOOTLDR's 4 */
                ASSERT_STREQ(q->partitions[5].label, "_empty");
                f = open_memstream(&t2, &t2_size);
                plan_print_table(q, f);
                fclose(f);
                ASSERT_CONTAINS(t2, "installed as imprint-usr_1+3-0.efi on the ESP");
                src->entries[0].install_on = _ROLE_INVALID; /* PathRelativeTo=boot: $BOOT, the XBOOTLDR partition */
                plan_free(q), q = NULL;
                q = plan_ok(w, &o);
                free(t2), t2 = NULL;
                f = open_memstream(&t2, &t2_size);
                plan_print_table(q, f);
                fclose(f);
                ASSERT_CONTAINS(t2, "installed as imprint-usr_1+3-0.efi on the XBOOTLDR partition");
                src->entries[0].install_on = ROLE_ESP;
                plan_free(q), q = NULL;
                o.mode = PLAN_ERASE;
        }

        /* An image with only usr (no verity): just usr A and B. */
        src->n_partitions = 1;
        o.root_fs = NULL;
        q = plan_ok(d, &o);
        ASSERT_EQ(q->n_partitions, 4);
        ASSERT_EQ(q->partitions[2].role, ROLE_USR);
        ASSERT_STREQ(q->partitions[2].label, "_empty");
        src->n_partitions = 3;
}

static void test_fingerprint(void) {
        _cleanup_(disk_freep) Disk *w = windows_disk(GiB);
        _cleanup_(plan_freep) Plan *p = NULL;
        PlanOptions o;

        plan_options_init(&o);
        p = plan_ok(w, &o);
        ASSERT_OK(plan_check_disk_unchanged(p, w));

        w->partitions[2].size -= MiB;
        ASSERT_EQ(plan_check_disk_unchanged(p, w), -ESTALE);
        ASSERT_CONTAINS(error_message(), "partitions");
        w->partitions[2].size += MiB;
        ASSERT_OK(plan_check_disk_unchanged(p, w));

        w->size += GiB;
        ASSERT_EQ(plan_check_disk_unchanged(p, w), -ESTALE);
        ASSERT_CONTAINS(error_message(), "size was 100 GiB");
        w->size -= GiB;

        p->fingerprint.diskseq = 7;
        w->diskseq = 9;
        ASSERT_EQ(plan_check_disk_unchanged(p, w), -ESTALE);
        ASSERT_CONTAINS(error_message(), "sequence number");
}

static void test_sizes(void) {
        uint64_t v;
        SizeRequest s;

        ASSERT_OK(parse_size("512M", &v));
        ASSERT_EQ(v, 512 * MiB);
        ASSERT_OK(parse_size("1G", &v));
        ASSERT_EQ(v, GiB);
        ASSERT_OK(parse_size("1GiB", &v));
        ASSERT_EQ(v, GiB);
        ASSERT_OK(parse_size("1.5G", &v));
        ASSERT_EQ(v, GiB + 512 * MiB);
        ASSERT_OK(parse_size("4096", &v));
        ASSERT_EQ(v, 4096);
        ASSERT_EQ(parse_size("12Q", &v), -EINVAL);
        ASSERT_EQ(parse_size("-1G", &v), -EINVAL);
        ASSERT_EQ(parse_size("99999999999T", &v), -ERANGE);

        ASSERT_OK(size_request_parse("rest", &s));
        ASSERT_EQ(s.kind, SIZE_REST);
        ASSERT_OK(size_request_parse("none", &s));
        ASSERT_EQ(s.kind, SIZE_NONE);
        ASSERT_OK(size_request_parse("20G", &s));
        ASSERT_EQ(s.kind, SIZE_FIXED);
        ASSERT_EQ(s.bytes, 20 * GiB);

        ASSERT_STREQ(FORMAT_BYTES(GiB), "1 GiB");
        ASSERT_STREQ(FORMAT_BYTES(GiB + 512 * MiB), "1.5 GiB");
        ASSERT_STREQ(FORMAT_BYTES(100), "100 B");
}

static void test_dps_table(void) {
        sd_id128_t u;

        ASSERT_OK(dps_type_uuid(ROLE_ROOT, ARCH_ARM64, &u));
        ASSERT_STREQ(SD_ID128_TO_UUID_STRING(u), "b921b045-1df0-41c3-af44-4c6f280d3fae");
        ASSERT_OK(dps_type_uuid(ROLE_ESP, ARCH_ARM64, &u));
        ASSERT_STREQ(SD_ID128_TO_UUID_STRING(u), ESP_GUID);
        ASSERT_OK(dps_type_uuid(ROLE_USR_VERITY, ARCH_X86_64, &u));
        ASSERT_STREQ(SD_ID128_TO_UUID_STRING(u), "77ff5f63-e7b6-4633-acf4-1565b864c0e6");
        ASSERT_STREQ(partition_role_to_string(ROLE_XBOOTLDR), "xbootldr");
        ASSERT_EQ(partition_role_from_string("home"), ROLE_HOME);
        ASSERT_EQ((int) partition_role_from_string("bogus"), -EINVAL);
        ASSERT_EQ((int) architecture_from_string("sparc"), -EINVAL);
}

int main(void) {
        test_sizes();
        test_dps_table();
        test_erase_defaults();
        test_seeded_uuids();
        test_home_and_swap();
        test_errors();
        test_free_mode();
        test_free_mode_refusals();
        test_json_roundtrip();
        test_classic_json_unchanged();
        test_usr_plan();
        test_fingerprint();
        printf("test-plan: all checks passed\n");
        return 0;
}
