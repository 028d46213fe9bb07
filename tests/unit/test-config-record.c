/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Record and replay (config-record.h): the configuration recorded after an attended install is
 * read back by the same parser `imprint unattended` uses (install_config_merge_json(), and from
 * the written file install_config_merge_file()) into the same choices; it holds no secret but
 * names the credentials that carry them; the file is 0600; "credentials" is checked like every
 * other key, and install_config_check_credentials() refuses a missing one. No root needed. */

#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-record.h"
#include "config.h"
#include "error.h"
#include "fileio.h"
#include "run.h"
#include "size.h"
#include "tests.h"

static char tmpdir[] = "/var/tmp/test-config-record.XXXXXX";

static void remove_tmpdir(void) {
        char *argv[] = { (char *) "rm", (char *) "-rf", tmpdir, NULL };
        (void) run_command(argv, &(RunOptions) { .quiet_stderr = true });
}

/* What an attended, encrypted install to an NVMe disk planned: TPM2 (PCR 0+7) with a PIN, a
 * passphrase, a homed account, every setting. Only the fields a record reads are filled in. */
static Plan *encrypted_plan(void) {
        Plan *p = calloc(1, sizeof(Plan));

        ASSERT_TRUE(p);
        p->mode = PLAN_ERASE;
        p->target_kind = DISK_BLOCK;
        p->target = strdup("/dev/nvme0n1");
        p->source = calloc(1, sizeof(PlanSource));
        p->source->path = strdup("/run/imprint/os.raw");
        p->encryption = (PlanEncryption) { .enabled = true, .tpm2 = true, .tpm2_pcrs = (1u << 0) | (1u << 7), .tpm2_pin = true,
                                           .passphrase = true, .recovery_key = true };
        p->account = calloc(1, sizeof(PlanAccount));
        *p->account = (PlanAccount) { .user_name = strdup("alice"), .real_name = strdup("Alice Liddell"),
                                      .storage = ACCOUNT_STORAGE_DIRECTORY, .admin = true, .kind = ACCOUNT_HOMED };
        p->settings = (PlanSettings) { .hostname = strdup("line-7"), .timezone = strdup("Europe/Berlin"),
                                       .locale = strdup("de_DE.UTF-8"), .keymap = strdup("de") };
        return p;
}

static Disk *nvme_disk(void) {
        Disk *d = calloc(1, sizeof(Disk));

        ASSERT_TRUE(d);
        d->kind = DISK_BLOCK;
        d->path = strdup("/dev/nvme0n1");
        d->by_id = calloc(4, sizeof(char *));
        /* Sorted, as disk discovery keeps them: the numeric names first. */
        d->by_id[0] = strdup("/dev/disk/by-id/nvme-eui.0025388b71b2c3d4");
        d->by_id[1] = strdup("/dev/disk/by-id/nvme-Samsung_SSD_980_1TB_S64ANS0T123456");
        d->by_id[2] = strdup("/dev/disk/by-id/wwn-0x5002538e000000");
        return d;
}

static void test_roundtrip(void) {
        _cleanup_(plan_freep) Plan *p = encrypted_plan();
        _cleanup_(disk_freep) Disk *d = nvme_disk();
        _cleanup_(install_config_done) InstallConfig c = {};
        json_object *j = NULL, *creds = NULL;
        PlanOptions layout;
        const char *text;

        plan_options_init(&layout);
        layout.root = (SizeRequest) { SIZE_FIXED, 40 * GiB };
        layout.home = (SizeRequest) { SIZE_REST, 0 };
        layout.swap = (SizeRequest) { SIZE_FIXED, 512 * MiB + 4 * KiB };
        layout.root_fs = "btrfs";
        layout.seed = "line-seed";
        ASSERT_OK(config_record_build(p, d, &layout, NULL, &j));
        text = json_object_to_json_string(j);

        /* The by-id name people recognise, not the numeric ones; sizes as they were asked; the
         * ESP's default is left to the replay's default. */
        ASSERT_TRUE(json_object_object_get_ex(j, "target", NULL));
        ASSERT_STREQ(json_object_get_string(json_object_object_get(j, "target")),
                     "/dev/disk/by-id/nvme-Samsung_SSD_980_1TB_S64ANS0T123456");
        ASSERT_STREQ(json_object_get_string(json_object_object_get(j, "homeSize")), "rest");
        ASSERT_STREQ(json_object_get_string(json_object_object_get(j, "rootSize")), "40G");
        ASSERT_STREQ(json_object_get_string(json_object_object_get(j, "swapSize")), "524292K");
        ASSERT_FALSE(json_object_object_get_ex(j, "espSize", NULL));
        /* Secrets are marked, never written; the escrow is the line's to add. */
        ASSERT_TRUE(json_object_object_get_ex(j, "credentials", &creds));
        ASSERT_EQ(json_object_array_length(creds), 3);
        ASSERT_STREQ(json_object_get_string(json_object_array_get_idx(creds, 0)), "imprint.user-password");
        ASSERT_STREQ(json_object_get_string(json_object_array_get_idx(creds, 1)), "imprint.passphrase");
        ASSERT_STREQ(json_object_get_string(json_object_array_get_idx(creds, 2)), "imprint.tpm2-pin");
        ASSERT_FALSE(json_object_object_get_ex(j, "recoveryKeyEscrow", NULL));
        ASSERT_FALSE(strstr(text, "password\":"));

        /* The unattended parser takes it as it is: no unknown key, every value valid. */
        install_config_init(&c);
        ASSERT_OK(install_config_merge_json(&c, j, "recorded"));
        ASSERT_STREQ(c.source, "/run/imprint/os.raw");
        ASSERT_STREQ(c.target, "/dev/disk/by-id/nvme-Samsung_SSD_980_1TB_S64ANS0T123456");
        ASSERT_EQ(c.plan.mode, PLAN_ERASE);
        ASSERT_EQ(c.plan.root.kind, SIZE_FIXED);
        ASSERT_EQ(c.plan.root.bytes, 40 * GiB);
        ASSERT_EQ(c.plan.home.kind, SIZE_REST);
        ASSERT_EQ(c.plan.swap.bytes, 512 * MiB + 4 * KiB);
        ASSERT_EQ(c.plan.esp.bytes, PLAN_ESP_SIZE_DEFAULT);
        ASSERT_STREQ(c.plan.root_fs, "btrfs");
        ASSERT_STREQ(c.plan.seed, "line-seed");
        ASSERT_EQ(c.enc.encrypt, 1);
        ASSERT_EQ(c.enc.tpm2, TPM2_USE_REQUIRED);
        ASSERT_EQ(c.enc.tpm2_pcrs, (1u << 0) | (1u << 7));
        ASSERT_TRUE(c.enc.tpm2_pin);
        ASSERT_TRUE(c.enc.passphrase);
        ASSERT_FALSE(c.enc.tpm2_signed_pcr11);
        ASSERT_STREQ(c.account.user_name, "alice");
        ASSERT_STREQ(c.account.real_name, "Alice Liddell");
        ASSERT_EQ(c.account.storage, ACCOUNT_STORAGE_DIRECTORY);
        ASSERT_TRUE(c.account.admin);
        ASSERT_FALSE(c.account.auto_login);
        ASSERT_FALSE(c.account.classic);
        ASSERT_STREQ(c.settings.hostname, "line-7");
        ASSERT_STREQ(c.settings.timezone, "Europe/Berlin");
        ASSERT_STREQ(c.settings.locale, "de_DE.UTF-8");
        ASSERT_STREQ(c.settings.keymap, "de");
        ASSERT_FALSE(c.no_variables);
        ASSERT_EQ(c.n_credentials, 3);
        ASSERT_STREQ(c.credentials[2], "imprint.tpm2-pin");
        json_object_put(j);
}

/* An image file, not encrypted, a classic account: the TPM is not asked for on the replay, the
 * path is absolute, "self" stays "self". */
static void test_image_file(void) {
        _cleanup_(plan_freep) Plan *p = encrypted_plan();
        _cleanup_(install_config_done) InstallConfig c = {};
        _cleanup_(freep) char *cwd = getcwd(NULL, 0), *img = NULL, *want = NULL;
        Disk d = { .kind = DISK_IMAGE_FILE };
        json_object *j = NULL;
        int fd;

        ASSERT_TRUE(asprintf(&img, "%s/disk.img", tmpdir) > 0);
        fd = open(img, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        close(fd);
        ASSERT_OK(chdir(tmpdir));
        d.path = (char *) "disk.img";
        p->encryption = (PlanEncryption) {};
        p->account->kind = ACCOUNT_CLASSIC;
        p->mode = PLAN_FREE;
        ASSERT_OK(config_record_build(p, &d, NULL, "self", &j));
        ASSERT_OK(chdir(cwd));
        want = realpath(img, NULL);
        ASSERT_STREQ(json_object_get_string(json_object_object_get(j, "target")), want);
        ASSERT_STREQ(json_object_get_string(json_object_object_get(j, "source")), "self");
        ASSERT_STREQ(json_object_get_string(json_object_object_get(j, "mode")), "free");
        ASSERT_FALSE(json_object_object_get_ex(j, "passphrase", NULL));
        ASSERT_FALSE(json_object_object_get_ex(j, "tpm2Pcrs", NULL));
        install_config_init(&c);
        ASSERT_OK(install_config_merge_json(&c, j, "recorded"));
        ASSERT_EQ(c.enc.encrypt, 0);
        ASSERT_EQ(c.enc.tpm2, TPM2_USE_OFF);
        ASSERT_EQ(c.plan.mode, PLAN_FREE);
        ASSERT_TRUE(c.account.classic);
        ASSERT_EQ(c.n_credentials, 1);
        ASSERT_STREQ(c.credentials[0], "imprint.user-password");
        json_object_put(j);

        /* A reset is not an install to repeat. */
        p->mode = PLAN_RESET;
        ASSERT_EQ(config_record_build(p, &d, NULL, NULL, &j), -EINVAL);
        ASSERT_CONTAINS(error_message(), "Only an install can be recorded");
}

/* The file: 0600, whole (no temporary left beside it), and read back by the configuration reader. */
static void test_write(void) {
        _cleanup_(plan_freep) Plan *p = encrypted_plan();
        _cleanup_(install_config_done) InstallConfig c = {};
        _cleanup_(freep) char *path = NULL, *text = NULL, *bad = NULL;
        struct stat st;
        _cleanup_(freep) char *pattern = NULL;
        glob_t g = {};

        ASSERT_TRUE(asprintf(&path, "%s/recorded.json", tmpdir) > 0);
        ASSERT_OK(config_record_write(p, NULL, NULL, NULL, path));
        ASSERT_OK(stat(path, &st));
        ASSERT_EQ(st.st_mode & 07777, 0600);
        ASSERT_OK(read_full_file(path, &text, NULL));
        ASSERT_TRUE(text[strlen(text) - 1] == '\n');
        ASSERT_CONTAINS(text, "\"target\": \"/dev/nvme0n1\"");
        install_config_init(&c);
        ASSERT_OK(install_config_merge_file(&c, path));
        ASSERT_STREQ(c.target, "/dev/nvme0n1");
        ASSERT_TRUE(asprintf(&pattern, "%s.*", path) > 0);
        ASSERT_EQ(glob(pattern, 0, NULL, &g), GLOB_NOMATCH);
        globfree(&g);

        /* Rewritten over an existing file: still 0600, even when the old one was not. */
        ASSERT_OK(chmod(path, 0644));
        ASSERT_OK(config_record_write(p, NULL, NULL, NULL, path));
        ASSERT_OK(stat(path, &st));
        ASSERT_EQ(st.st_mode & 07777, 0600);

        /* A directory that does not exist: a sentence naming the file. */
        ASSERT_TRUE(asprintf(&bad, "%s/no/such/dir/r.json", tmpdir) > 0);
        ASSERT_EQ(config_record_write(p, NULL, NULL, NULL, bad), -ENOENT);
        ASSERT_CONTAINS(error_message(), "Cannot write the recorded configuration");
        ASSERT_CONTAINS(error_message(), bad);
}

/* What the front ends show after writing: where, and what a replay needs that the file cannot hold. */
static void test_note_and_path(void) {
        _cleanup_(plan_freep) Plan *p = encrypted_plan();
        _cleanup_(freep) char *note = NULL, *plain = NULL, *missing = NULL;

        note = config_record_note(p, "/root/line.json");
        ASSERT_STREQ(note, "The configuration that repeats this install is in /root/line.json. Before imprint unattended replays it, "
                           "add \"recoveryKeyEscrow\": where the recovery key of each machine goes. The replay needs the credentials "
                           "it lists: imprint.user-password, imprint.passphrase, imprint.tpm2-pin.");
        p->encryption = (PlanEncryption) {};
        plan_account_free(p->account);
        p->account = NULL;
        plain = config_record_note(p, "r.json");
        ASSERT_STREQ(plain, "The configuration that repeats this install is in r.json.");

        /* --record is checked before the dialogue. */
        ASSERT_OK(config_record_check_path("r.json"));
        ASSERT_EQ(config_record_check_path(tmpdir), -EINVAL);
        ASSERT_CONTAINS(error_message(), "it is a directory, not a file");
        ASSERT_TRUE(asprintf(&missing, "%s/none/r.json", tmpdir) > 0);
        ASSERT_EQ(config_record_check_path(missing), -ENOENT);
        ASSERT_CONTAINS(error_message(), "/none does not exist");
        ASSERT_EQ(config_record_check_path("/dev/null"), -EINVAL);
        ASSERT_EQ(config_record_check_path(""), -EINVAL);
}

static int merge_text(InstallConfig *c, const char *text) {
        json_object *j = json_tokener_parse(text);
        int r;

        ASSERT_TRUE(j);
        r = install_config_merge_json(c, j, "test.json");
        json_object_put(j);
        return r;
}

static void test_credentials_key(void) {
        _cleanup_(install_config_done) InstallConfig c = {};
        _cleanup_(freep) char *cred = NULL;
        int fd;

        install_config_init(&c);
        ASSERT_EQ(merge_text(&c, "{\"credentials\": \"imprint.user-password\"}"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "\"credentials\" must be a list");
        ASSERT_EQ(merge_text(&c, "{\"credentials\": [\"imprint.root-password\"]}"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "lists \"imprint.root-password\", which is not a credential imprint reads");
        ASSERT_EQ(merge_text(&c, "{\"credentials\": [7]}"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "not a credential imprint reads");
        ASSERT_EQ(merge_text(&c, "{\"credentials\": [\"imprint.passphrase\", \"imprint.passphrase\"]}"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "lists \"imprint.passphrase\" twice");
        ASSERT_EQ(c.n_credentials, 0);

        ASSERT_OK(merge_text(&c, "{\"credentials\": []}"));
        ASSERT_OK(install_config_check_credentials(&c));
        ASSERT_OK(merge_text(&c, "{\"credentials\": [\"imprint.user-password\"]}"));
        ASSERT_EQ(c.n_credentials, 1);

        /* Not given: no credentials directory at all, then one without it. */
        unsetenv("CREDENTIALS_DIRECTORY");
        ASSERT_EQ(install_config_check_credentials(&c), -EINVAL);
        ASSERT_CONTAINS(error_message(), "test.json: the configuration needs the credential imprint.user-password, which is not given");
        setenv("CREDENTIALS_DIRECTORY", tmpdir, 1);
        ASSERT_EQ(install_config_check_credentials(&c), -EINVAL);
        ASSERT_TRUE(asprintf(&cred, "%s/imprint.user-password", tmpdir) > 0);
        fd = open(cred, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        close(fd);
        ASSERT_OK(install_config_check_credentials(&c));
        unsetenv("CREDENTIALS_DIRECTORY");
}

int main(void) {
        ASSERT_TRUE(mkdtemp(tmpdir));
        atexit(remove_tmpdir);
        test_roundtrip();
        test_image_file();
        test_write();
        test_credentials_key();
        test_note_and_path();
        printf("ok\n");
        return 0;
}
