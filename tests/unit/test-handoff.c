/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The OEM hand-off (handoff.h): what the plan says the customer's first boot does, decided from
 * the image's own root filesystem (an ext4 image made with stock mkfs.ext4 -d, with and without
 * systemd-homed-firstboot.service); "oem" with an account refused; the plan's "oem" object through
 * JSON and back; and what handoff_write_root() puts into a target tree, read back as files and
 * links, with the script checked by sh -n. */

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "handoff.h"
#include "log.h"
#include "plan.h"
#include "tests.h"

#define ROOT_X86_64 "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"

static char tmpdir[] = "/tmp/test-handoff.XXXXXX";

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void run(const char *cmd) {
        int r = system(cmd);

        if (r != 0)
                FAIL("\"%s\" failed (%d)", cmd, r);
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

/* An ext4 root filesystem image; with_homed: it has systemd-homed-firstboot.service. */
static char *make_root_fs(const char *name, bool with_homed) {
        char cmd[4 * PATH_MAX], *img = NULL;

        ASSERT_TRUE(asprintf(&img, "%s/%s.ext4", tmpdir, name) >= 0);
        snprintf(cmd, sizeof(cmd), "mkdir -p %1$s/%2$s/usr/lib/systemd/system %1$s/%2$s/etc", tmpdir, name);
        run(cmd);
        if (with_homed) {
                snprintf(cmd, sizeof(cmd),
                         "printf '[Service]\\nExecStart=homectl firstboot --prompt-new-user\\nImportCredential=home.*\\n' "
                         ">%s/%s/usr/lib/systemd/system/systemd-homed-firstboot.service", tmpdir, name);
                run(cmd);
        }
        snprintf(cmd, sizeof(cmd), "mkfs.ext4 -q -F -d %1$s/%2$s %3$s 16M >/dev/null 2>&1", tmpdir, name, img);
        run(cmd);
        return img;
}

static PlanSource *source_for(const char *img) {
        PlanSource *s = calloc(1, sizeof(PlanSource));
        PlanSourcePartition *sp;

        ASSERT_TRUE(s);
        s->kind = PLAN_SOURCE_ROOT;
        s->path = strdup(img);
        s->size = 3ULL << 30;
        s->fingerprint = strdup("1:1048576:104857600:c12a7328-f81f-11d2-ba4b-00a0c93ec93b:x");
        s->image_id = strdup("fakeos");
        s->image_version = strdup("7");
        s->partitions = calloc(1, sizeof(PlanSourcePartition));
        s->n_partitions = 1;
        sp = &s->partitions[0];
        /* At offset 0 of the file: the filesystem image is the partition. */
        *sp = (PlanSourcePartition) { .role = ROLE_ROOT, .partno = 2, .start = 0, .size = 1536ULL << 20 };
        ASSERT_OK(sd_id128_from_string(ROOT_X86_64, &sp->type_uuid));
        ASSERT_OK(sd_id128_from_string("11111111-2222-4333-8444-555555555555", &sp->uuid));
        sp->label = strdup("root-x86-64");
        sp->fstype = strdup("ext4");
        s->entries = calloc(1, sizeof(PlanBootEntry));
        s->n_entries = 1;
        s->entries[0] = (PlanBootEntry) { .file = strdup("fakeos_7.efi"), .install_on = _ROLE_INVALID, .title = strdup("Fake OS"),
                                          .version = strdup("7"), .uname = strdup("6.12.0-fake") };
        return s;
}

static Disk *fake_disk(void) {
        Disk *d = calloc(1, sizeof(Disk));

        d->kind = DISK_IMAGE_FILE;
        d->path = strdup("/tmp/fake.img");
        d->name = strdup("fake.img");
        d->size = 16ULL << 30;
        d->logical_sector_size = d->physical_sector_size = 512;
        d->transport = TRANSPORT_FILE;
        return d;
}

static void test_decide(void) {
        _cleanup_(freep) char *with = make_root_fs("with-homed", true), *without = make_root_fs("without-homed", false);
        _cleanup_(plan_source_freep) PlanSource *s1 = source_for(with), *s2 = source_for(without), *s3 = source_for(with);
        _cleanup_(plan_oem_freep) PlanOem *o1 = NULL, *o2 = NULL, *o3 = NULL;
        PlanEncryption enc = { .enabled = true, .tpm2 = true, .recovery_key = true };
        PlanSettings set = { .timezone = (char *) "Europe/Berlin", .keymap = (char *) "de" };
        _cleanup_(freep) char *asks = NULL;

        /* The image has homed-firstboot: it makes the account; all four settings are asked. */
        ASSERT_OK(handoff_plan(s1, &enc, NULL, &o1));
        ASSERT_EQ(o1->account, HANDOFF_ACCOUNT_HOMED);
        ASSERT_TRUE(o1->ask_locale && o1->ask_keymap && o1->ask_timezone && o1->ask_hostname);
        ASSERT_TRUE(o1->new_recovery_key);
        ASSERT_TRUE(!o1->note);
        asks = handoff_asks_text(o1);
        ASSERT_STREQ(asks, "locale, keymap, time zone and host name");

        /* Without it: the classic fallback, said in the note; what the line set is not asked; no
         * encryption, no key to replace. */
        ASSERT_OK(handoff_plan(s2, NULL, &set, &o2));
        ASSERT_EQ(o2->account, HANDOFF_ACCOUNT_ROOT_PASSWORD);
        ASSERT_CONTAINS(o2->note, "no systemd-homed-firstboot.service");
        ASSERT_TRUE(o2->ask_locale && !o2->ask_keymap && !o2->ask_timezone && o2->ask_hostname);
        ASSERT_FALSE(o2->new_recovery_key);
        free(asks);
        asks = handoff_asks_text(o2);
        ASSERT_STREQ(asks, "locale and host name");

        /* A filesystem imprint cannot read: root's password as well, and the note says why. */
        free(s3->partitions[0].fstype);
        s3->partitions[0].fstype = strdup("btrfs");
        ASSERT_OK(handoff_plan(s3, &enc, NULL, &o3));
        ASSERT_EQ(o3->account, HANDOFF_ACCOUNT_ROOT_PASSWORD);
        ASSERT_CONTAINS(o3->note, "cannot look into the image");

        /* No image: nothing to hand over. */
        PlanOem *none = NULL;
        ASSERT_EQ(handoff_plan(NULL, NULL, NULL, &none), -EINVAL);
        ASSERT_CONTAINS(error_message(), "needs an image to install");
        error_clear();
}

static void test_plan(void) {
        _cleanup_(freep) char *img = make_root_fs("plan-root", true);
        _cleanup_(plan_source_freep) PlanSource *src = source_for(img);
        _cleanup_(disk_freep) Disk *d = fake_disk();
        _cleanup_(plan_freep) Plan *p = NULL, *back = NULL, *refused = NULL;
        _cleanup_(freep) char *text = NULL;
        PlanAccount acct = { .user_name = (char *) "alice", .kind = ACCOUNT_HOMED };
        PlanSettings set = { .hostname = (char *) "line-pc" };
        json_object *j, *o, *v;
        PlanOptions opts;
        size_t n = 0;
        FILE *f;

        plan_options_init(&opts);
        opts.source = src;
        opts.seed = "oem";
        opts.oem = true;
        opts.settings = &set;
        ASSERT_OK(plan_build(d, &opts, &p));
        ASSERT_TRUE(p->oem && !p->account);

        j = plan_to_json(p);
        ASSERT_TRUE(json_object_object_get_ex(j, "oem", &o));
        ASSERT_TRUE(json_object_object_get_ex(o, "account", &v));
        ASSERT_STREQ(json_object_get_string(v), "systemd-homed-firstboot");
        ASSERT_TRUE(json_object_object_get_ex(o, "firstbootAsks", &v));
        ASSERT_STREQ(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN), "[\"locale\",\"keymap\",\"timezone\"]");
        ASSERT_TRUE(json_object_object_get_ex(o, "marker", &v));
        ASSERT_STREQ(json_object_get_string(v), "/var/lib/imprint/handoff-done");
        ASSERT_TRUE(json_object_object_get_ex(o, "newRecoveryKey", &v));
        ASSERT_FALSE(json_object_get_boolean(v));
        ASSERT_OK(plan_from_json(j, &back));
        ASSERT_TRUE(back->oem);
        ASSERT_EQ(back->oem->account, HANDOFF_ACCOUNT_HOMED);
        ASSERT_TRUE(back->oem->ask_locale && back->oem->ask_keymap && back->oem->ask_timezone && !back->oem->ask_hostname);
        json_object_put(j);

        /* A plan without "oem" has no such key: the golden plans stay as they were. */
        {
                _cleanup_(plan_freep) Plan *plain = NULL;
                opts.oem = false;
                ASSERT_OK(plan_build(d, &opts, &plain));
                j = plan_to_json(plain);
                ASSERT_FALSE(json_object_object_get_ex(j, "oem", NULL));
                json_object_put(j);
                opts.oem = true;
        }

        f = open_memstream(&text, &n);
        ASSERT_TRUE(f);
        plan_print_table(p, f);
        ASSERT_EQ(fclose(f), 0);
        ASSERT_CONTAINS(text, "this is an OEM install: the customer's first boot asks for the locale, keymap and time zone");
        ASSERT_CONTAINS(text, "makes the account (systemd-homed-firstboot)");

        /* "oem" with an account: one sentence, no plan. */
        opts.account = &acct;
        ASSERT_EQ(plan_build(d, &opts, &refused), -EINVAL);
        ASSERT_TRUE(!refused);
        ASSERT_CONTAINS(error_message(), "cannot also name a \"user\"");
        error_clear();
}

static void check_link(const char *root, const char *path, const char *want) {
        char full[2 * PATH_MAX], buf[PATH_MAX];
        ssize_t k;

        snprintf(full, sizeof(full), "%s%s", root, path);
        k = readlink(full, buf, sizeof(buf) - 1);
        if (k < 0)
                FAIL("%s is not a link: %m", path);
        buf[k] = 0;
        ASSERT_STREQ(buf, want);
}

static void test_write_root(void) {
        _cleanup_(freep) char *img = make_root_fs("write-root", true), *unit = NULL, *dropin = NULL, *script = NULL;
        _cleanup_(plan_source_freep) PlanSource *src = source_for(img);
        _cleanup_(disk_freep) Disk *d = fake_disk();
        _cleanup_(plan_freep) Plan *p = NULL;
        char root[512], path[PATH_MAX], cmd[2 * PATH_MAX];
        struct stat st;
        PlanOptions opts;

        plan_options_init(&opts);
        opts.source = src;
        opts.oem = true;
        ASSERT_OK(plan_build(d, &opts, &p));
        /* The installed system's encryption, as an encrypted install's plan says. */
        p->oem->new_recovery_key = true;

        snprintf(root, sizeof(root), "%s/target", tmpdir);
        ASSERT_EQ(mkdir(root, 0755), 0);
        ASSERT_OK(handoff_write_root(p, root));
        /* Twice: a configure step that runs again replaces, never fails on what is there. */
        ASSERT_OK(handoff_write_root(p, root));

        snprintf(path, sizeof(path), "%s/etc/systemd/system/" HANDOFF_UNIT, root);
        unit = slurp(path);
        ASSERT_CONTAINS(unit, "\nConditionPathExists=!/var/lib/imprint/handoff-done\n");
        ASSERT_CONTAINS(unit, "\nAfter=systemd-firstboot.service systemd-homed-firstboot.service");
        ASSERT_CONTAINS(unit, "\nBefore=systemd-user-sessions.service getty-pre.target first-boot-complete.target\n");
        ASSERT_CONTAINS(unit, "\nExecStart=/bin/sh /etc/imprint/handoff.sh\n");
        ASSERT_CONTAINS(unit, "\nStandardInput=tty\nStandardOutput=tty\nStandardError=tty\nTTYPath=/dev/console\n");
        ASSERT_CONTAINS(unit, "\nWantedBy=multi-user.target\n");
        ASSERT_TRUE(!strstr(unit, "journal"));
        check_link(root, "/etc/systemd/system/multi-user.target.wants/" HANDOFF_UNIT, "../" HANDOFF_UNIT);
        check_link(root, "/etc/systemd/system/systemd-homed.service.wants/systemd-homed-firstboot.service",
                   "/usr/lib/systemd/system/systemd-homed-firstboot.service");

        snprintf(path, sizeof(path), "%s" HANDOFF_FIRSTBOOT_DROPIN, root);
        dropin = slurp(path);
        ASSERT_CONTAINS(dropin, "\n[Service]\nExecStart=\nExecStart=systemd-firstboot --force --prompt-locale --prompt-keymap "
                                "--prompt-timezone --prompt-hostname\n");

        snprintf(path, sizeof(path), "%s" HANDOFF_SCRIPT, root);
        ASSERT_EQ(stat(path, &st), 0);
        ASSERT_EQ(st.st_mode & 07777, 0755);
        script = slurp(path);
        ASSERT_CONTAINS(script, "systemd-cryptenroll --unlock-tpm2-device=auto --recovery-key --wipe-slot=recovery,password");
        ASSERT_CONTAINS(script, "CREDENTIALS_DIRECTORY=$creds systemd-cryptenroll --unlock-tpm2-device=auto --password");
        /* The marker is the last thing written. */
        ASSERT_TRUE(strstr(script, "mv \"$MARKER.tmp\" \"$MARKER\"") > strstr(script, "[ \"$answer\" = \"$want\" ] && break"));
        snprintf(cmd, sizeof(cmd), "sh -n %s", path);
        run(cmd);

        /* The classic fallback: root's password is asked too. */
        p->oem->account = HANDOFF_ACCOUNT_ROOT_PASSWORD;
        p->oem->ask_hostname = false;
        ASSERT_OK(handoff_write_root(p, root));
        free(dropin);
        snprintf(path, sizeof(path), "%s" HANDOFF_FIRSTBOOT_DROPIN, root);
        dropin = slurp(path);
        ASSERT_CONTAINS(dropin, "\nExecStart=systemd-firstboot --force --prompt-locale --prompt-keymap --prompt-timezone "
                                "--prompt-root-password\n");
}

int main(void) {
        log_set_max_level(LOG_WARNING);
        ASSERT_TRUE(mkdtemp(tmpdir));
        test_decide();
        test_plan();
        test_write_root();
        nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
        printf("ok: test-handoff\n");
        return 0;
}
