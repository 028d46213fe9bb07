/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The Secure Boot part of the plan (secureboot.h): the "secureBoot" object through the plan's
 * JSON and back (a saved plan installs what was decided), refused when it names a key directory
 * outside loader/keys/; and what secureboot_write_root() puts into a target tree after an
 * enrollment: the unit that re-seals the TPM2 key to PCR 7 with stock systemd-cryptenroll, for
 * each encrypted volume by its LUKS UUID, enabled, with the public key beside it; checked by
 * stock systemd-analyze verify. Nothing is written for the other decisions. (The decision itself,
 * per firmware state, is tests/integration/test-secureboot.sh.) */

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "error.h"
#include "log.h"
#include "plan.h"
#include "secureboot.h"
#include "tests.h"

static char tmpdir[] = "/tmp/test-secureboot.XXXXXX";

static const char pubkey[] = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtest\n-----END PUBLIC KEY-----\n";

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static char *slurp(const char *path) {
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t n = 0;

        if (!f)
                return NULL;
        if (getdelim(&buf, &n, '\0', f) < 0) {
                free(buf);
                buf = NULL;
        }
        fclose(f);
        return buf;
}

/* A plan with root and home encrypted, TPM2 on the signed policy, decided ENROLL with re-seal. */
static Plan *make_plan(bool reseal) {
        Plan *p = calloc(1, sizeof(Plan));

        ASSERT_TRUE(p);
        p->target = strdup("/dev/vda");
        p->n_partitions = 3;
        p->partitions = calloc(3, sizeof(PlanPartition));
        ASSERT_TRUE(p->partitions);
        p->partitions[0] = (PlanPartition) { .role = ROLE_ESP, .partno = 1, .copy_from = -1 };
        p->partitions[1] = (PlanPartition) { .role = ROLE_ROOT, .partno = 2, .copy_from = -1, .encrypt = true,
                                             .luks_uuid = SD_ID128_MAKE(11,11,11,11,22,22,33,33,44,44,55,55,55,55,55,55) };
        p->partitions[2] = (PlanPartition) { .role = ROLE_HOME, .partno = 3, .copy_from = -1, .encrypt = true,
                                             .luks_uuid = SD_ID128_MAKE(66,66,66,66,77,77,88,88,99,99,aa,aa,aa,aa,aa,aa) };
        p->encryption = (PlanEncryption) { .enabled = true, .tpm2 = true, .tpm2_pcrs = 0,
                                           .tpm2_pubkey_pcrs = UINT32_C(1) << 11, .tpm2_pubkey = strdup(pubkey),
                                           .recovery_key = true };
        p->secure_boot = (PlanSecureBoot) { .decided = true, .action = SECURE_BOOT_ENROLL, .keys = strdup("auto"),
                                            .firmware_mode = strdup("setup"), .tpm2_reseal = reseal,
                                            .note = strdup("The first boot enrolls the image's Secure Boot keys.") };
        return p;
}

static Disk *fake_disk(void) {
        Disk *d = calloc(1, sizeof(Disk));

        ASSERT_TRUE(d);
        d->kind = DISK_IMAGE_FILE;
        d->path = strdup("/tmp/fake.img");
        d->name = strdup("fake.img");
        d->size = 16ULL << 30;
        d->logical_sector_size = d->physical_sector_size = 512;
        d->transport = TRANSPORT_FILE;
        return d;
}

static void test_json_round_trip(void) {
        _cleanup_(disk_freep) Disk *d = fake_disk();
        _cleanup_(plan_freep) Plan *p = NULL, *back = NULL;
        _cleanup_(plan_secure_boot_done) PlanSecureBoot sb = {
                .decided = true, .action = SECURE_BOOT_ENROLL, .keys = strdup("auto"), .firmware_mode = strdup("setup"),
                .tpm2_reseal = true, .chain = strdup("systemd-boot and x.efi are signed by imprint test db."),
                .note = strdup("The first boot enrolls the image's Secure Boot keys."),
        };
        _cleanup_(freep) char *text = NULL;
        PlanOptions opts;
        json_object *j, *o;
        size_t n = 0;
        FILE *f;

        plan_options_init(&opts);
        opts.seed = "sb";
        opts.secure_boot = &sb;
        ASSERT_OK(plan_build(d, &opts, &p));
        ASSERT_TRUE(p->secure_boot.decided);
        j = plan_to_json(p);
        ASSERT_TRUE(j);
        ASSERT_TRUE(json_object_object_get_ex(j, "secureBoot", &o));
        ASSERT_STREQ(json_object_get_string(json_object_object_get(o, "action")), "enroll");
        ASSERT_OK(plan_from_json(j, &back));
        ASSERT_TRUE(back->secure_boot.decided);
        ASSERT_EQ(back->secure_boot.action, SECURE_BOOT_ENROLL);
        ASSERT_STREQ(back->secure_boot.keys, "auto");
        ASSERT_TRUE(back->secure_boot.tpm2_reseal);
        ASSERT_STREQ(back->secure_boot.note, sb.note);
        ASSERT_STREQ(back->secure_boot.chain, sb.chain);

        f = open_memstream(&text, &n);
        ASSERT_TRUE(f);
        plan_print_table(back, f);
        ASSERT_EQ(fclose(f), 0);
        ASSERT_CONTAINS(text, "Secure Boot: enroll — The first boot enrolls the image's Secure Boot keys.");
        ASSERT_CONTAINS(text, "loader/keys/auto/ is installed with \"secure-boot-enroll force\"");

        /* A plan file may not send the key copy elsewhere on the ESP, nor name an unknown action. */
        plan_free(back);
        back = NULL;
        json_object_object_add(o, "keys", json_object_new_string("../../EFI"));
        ASSERT_EQ(plan_from_json(j, &back), -EINVAL);
        error_clear();
        json_object_object_add(o, "keys", json_object_new_string("auto"));
        json_object_object_add(o, "action", json_object_new_string("weaken"));
        ASSERT_EQ(plan_from_json(j, &back), -EINVAL);
        error_clear();
        json_object_put(j);
        printf("ok: the plan's secureBoot object survives JSON and shows in the plan's text; a key directory outside "
               "loader/keys/ and an unknown action are refused\n");
}

static void test_write_root(void) {
        _cleanup_(plan_freep) Plan *p = make_plan(true), *q = make_plan(false);
        char root[PATH_MAX], path[PATH_MAX + 128], cmd[3 * PATH_MAX];
        _cleanup_(freep) char *unit = NULL, *key = NULL;
        char link[PATH_MAX];
        ssize_t n;

        snprintf(root, sizeof(root), "%s/root", tmpdir);
        ASSERT_TRUE(mkdir(root, 0755) == 0);
        ASSERT_OK(secureboot_write_root(p, root));

        snprintf(path, sizeof(path), "%s/etc/systemd/system/" SECURE_BOOT_RESEAL_UNIT, root);
        unit = slurp(path);
        ASSERT_TRUE(unit);
        ASSERT_CONTAINS(unit, "ConditionSecurity=uefi-secureboot\n");
        ASSERT_CONTAINS(unit, "--unlock-tpm2-device=auto --tpm2-device=auto --tpm2-pcrs=7 --tpm2-public-key=" SECURE_BOOT_RESEAL_PUBKEY
                              " --tpm2-public-key-pcrs=11 --wipe-slot=tpm2 /dev/disk/by-uuid/11111111-2222-3333-4444-555555555555\n");
        ASSERT_CONTAINS(unit, "/dev/disk/by-uuid/66666666-7777-8888-9999-aaaaaaaaaaaa\n");
        ASSERT_CONTAINS(unit, "ExecStartPost=rm -f ");
        snprintf(path, sizeof(path), "%s" SECURE_BOOT_RESEAL_PUBKEY, root);
        key = slurp(path);
        ASSERT_STREQ(key, pubkey);
        snprintf(path, sizeof(path), "%s/etc/systemd/system/multi-user.target.wants/" SECURE_BOOT_RESEAL_UNIT, root);
        n = readlink(path, link, sizeof(link) - 1);
        ASSERT_TRUE(n > 0);
        link[n] = 0;
        ASSERT_STREQ(link, "../" SECURE_BOOT_RESEAL_UNIT);

        /* Stock systemd reads it: no unknown key, no bad section. */
        snprintf(cmd, sizeof(cmd), "systemd-analyze verify --man=no %s/etc/systemd/system/" SECURE_BOOT_RESEAL_UNIT " 2>%s/verify.log; "
                 "! grep -E 'Unknown|Invalid|Failed to parse|bad-setting' %s/verify.log", root, tmpdir, tmpdir);
        ASSERT_EQ(system(cmd), 0);
        printf("ok: after an enrollment, the installed root gets %s (root and home by LUKS UUID, enabled, accepted by "
               "systemd-analyze verify) and the public key it seals with\n", SECURE_BOOT_RESEAL_UNIT);

        /* Without re-seal (systemd < 256, or no enrollment): nothing. */
        snprintf(root, sizeof(root), "%s/root2", tmpdir);
        ASSERT_TRUE(mkdir(root, 0755) == 0);
        ASSERT_OK(secureboot_write_root(q, root));
        snprintf(path, sizeof(path), "%s/etc", root);
        ASSERT_TRUE(access(path, F_OK) < 0 && errno == ENOENT);
        printf("ok: without a re-seal nothing is written into the root\n");
}

int main(void) {
        log_set_max_level(LOG_WARNING);
        ASSERT_TRUE(mkdtemp(tmpdir));
        test_json_round_trip();
        test_write_root();
        nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
        printf("ok: test-secureboot\n");
        return 0;
}
