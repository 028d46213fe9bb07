/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The per-machine report (report.h): the "report" configuration block and its refusals; a
 * document built from an encrypted plan and the events of an install that failed half way,
 * checked field by field with json-c — the partition and LUKS UUIDs read back (libblkid) from a
 * disk image that stock sfdisk and cryptsetup wrote as planned; no secret in it; the directory and
 * console copies the same bytes. No root needed. */

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "fileio.h"
#include "log.h"
#include "plan.h"
#include "report.h"
#include "run.h"
#include "size.h"
#include "tests.h"

/* What must never appear in a report: the recovery key (it sits in the escrow file the report
 * names) and the disk's passphrase. */
#define RECOVERY_KEY "fjkd-hbcv-lrtu-nkgi-ecbt-dfrh-cjhv-ubrk"
#define PASSPHRASE "Kestrel-harbour 9 lantern"

static char tmpdir[] = "/var/tmp/test-report.XXXXXX";

static void remove_tmpdir(void) {
        char *argv[] = { (char *) "rm", (char *) "-rf", tmpdir, NULL };
        (void) run_command(argv, &(RunOptions) { .quiet_stderr = true });
}

static char *tmp_path(const char *name) {
        char *p;
        ASSERT_TRUE(asprintf(&p, "%s/%s", tmpdir, name) > 0);
        return p;
}

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");
        ASSERT_TRUE(f);
        fputs(text, f);
        ASSERT_TRUE(fclose(f) == 0);
}

static json_object *parse_report(const char *json, const char *origin) {
        json_object *j = json_tokener_parse(json);
        if (!j)
                FAIL("%s is not valid JSON: %s", origin, json);
        return j;
}

static int set_report(InstallConfig *c, const char *json) {
        json_object *j = json_tokener_parse(json);
        int r;

        ASSERT_TRUE(j);
        r = config_set_report(c, j, "test.json");
        json_object_put(j);
        return r;
}

static void test_config(void) {
        InstallConfig c;

        install_config_init(&c);
        ASSERT_OK(set_report(&c, "{\"directory\": \"/mnt/reports\", \"console\": true, \"url\": \"https://line.example/report\"}"));
        ASSERT_TRUE(c.report);
        ASSERT_STREQ(c.report->directory, "/mnt/reports");
        ASSERT_TRUE(c.report->console);
        ASSERT_STREQ(c.report->url, "https://line.example/report");
        /* One destination is enough; a second block replaces the first. */
        ASSERT_OK(set_report(&c, "{\"url\": \"http://10.0.0.1:8080/r\"}"));
        ASSERT_TRUE(!c.report->directory && !c.report->console);

        ASSERT_EQ(set_report(&c, "{\"url\": \"ftp://x/y\"}"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "test.json: \"report.url\" must start with http:// or https://");
        ASSERT_EQ(set_report(&c, "{\"url\": \"https://\"}"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "names no host");
        ASSERT_EQ(set_report(&c, "{\"url\": \"https://u:p@line.example/\"}"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "must not hold a user name or password");
        ASSERT_FALSE(strstr(error_message(), "u:p"));
        ASSERT_EQ(set_report(&c, "{\"url\": \"https://line.example/a b\"}"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "spaces");
        ASSERT_EQ(set_report(&c, "{\"directory\": \"reports\"}"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "\"report.directory\" must be an absolute path");
        ASSERT_EQ(set_report(&c, "{\"console\": 1}"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "\"report.console\" must be true or false");
        ASSERT_EQ(set_report(&c, "{\"console\": true, \"webhook\": \"x\"}"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "unknown key \"report.webhook\"");
        ASSERT_EQ(set_report(&c, "{\"console\": false}"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "names no destination");
        ASSERT_EQ(set_report(&c, "[\"/mnt\"]"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "\"report\" must be an object");
        /* A refused block leaves the one before it. */
        ASSERT_STREQ(c.report->url, "http://10.0.0.1:8080/r");
        install_config_done(&c);
        printf("ok: the \"report\" block and its refusals\n");
}

/* An encrypted plan with a TPM2 enrollment for an 8 GiB disk that exists in memory; its target is
 * then pointed at a file laid out as the plan says. */
static Plan *encrypted_plan(const char *target) {
        _cleanup_(disk_freep) Disk *d = calloc(1, sizeof(Disk));
        PlanEncryption enc = {
                .enabled = true, .tpm2 = true, .tpm2_pcrs = 1u << 7, .tpm2_pubkey_pcrs = 1u << 11, .recovery_key = true,
                .note = (char *) "The TPM 2.0 unlocks the disk at boot; the recovery key is kept by the line.",
        };
        PlanSource *s = calloc(1, sizeof(PlanSource));
        PlanOptions o;
        Plan *p = NULL;

        d->kind = DISK_BLOCK;
        d->path = strdup("/dev/fake");
        d->name = strdup("fake");
        d->size = 8 * GiB;
        d->logical_sector_size = d->physical_sector_size = 512;
        d->transport = TRANSPORT_NVME;

        plan_options_init(&o);
        o.seed = "report";
        o.encryption = &enc;
        o.home = (SizeRequest) { SIZE_FIXED, 2 * GiB };
        ASSERT_OK(plan_build(d, &o, &p));

        s->kind = PLAN_SOURCE_ROOT;
        s->path = strdup("/srv/images/fakeos_7.raw");
        s->size = 3 * GiB;
        s->sha256 = strdup("1873917957c726ecf4a13b9bb38961dc312262e9c9653f42b4e42a3f5222bf39");
        s->sha256_origin = strdup("/srv/images/SHA256SUMS");
        s->os_name = strdup("Fake OS 7");
        s->image_id = strdup("fakeos");
        s->image_version = strdup("7");
        p->source = s;
        free(p->target);
        p->target = strdup(target);
        return p;
}

/* The disk as the install would leave it: the planned GPT (sfdisk) and a LUKS2 header with the
 * planned UUID (cryptsetup) at the start of each encrypted partition. */
static void lay_out(const Plan *p, const char *image) {
        _cleanup_(freep) char *script = strdup("label: gpt\n"), *header = tmp_path("luks-header");
        char line[512];
        int fd;

        fd = open(image, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(ftruncate(fd, 8 * GiB));
        close(fd);
        snprintf(line, sizeof(line), "label-id: %s\n", SD_ID128_TO_UUID_STRING(p->disk_uuid));
        script = strjoin_free(script, line);
        for (size_t i = 0; i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];
                snprintf(line, sizeof(line), "start=%llu, size=%llu, type=%s, uuid=%s, name=\"%s\"\n",
                         (unsigned long long) (pp->start / 512), (unsigned long long) (pp->size / 512),
                         SD_ID128_TO_UUID_STRING(pp->type_uuid), SD_ID128_TO_UUID_STRING(pp->uuid), pp->label);
                script = strjoin_free(script, line);
        }
        {
                char *argv[] = { (char *) "sfdisk", (char *) "--quiet", (char *) "--no-reread", (char *) "--no-tell-kernel",
                                 (char *) image, NULL };
                ASSERT_OK(run_command(argv, &(RunOptions) { .stdin_data = script, .stdin_size = strlen(script), .keep_fd = -1,
                                                            .quiet_stderr = true }));
        }
        for (size_t i = 0; i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];
                _cleanup_(freep) char *buf = NULL;
                const size_t n = 16 * MiB;
                int in, out;

                if (!pp->encrypt)
                        continue;
                fd = open(header, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                ASSERT_TRUE(fd >= 0);
                ASSERT_OK(ftruncate(fd, 20 * MiB));
                close(fd);
                char *argv[] = { (char *) "cryptsetup", (char *) "luksFormat", (char *) "-q", (char *) "--type", (char *) "luks2",
                                 (char *) "--uuid", (char *) SD_ID128_TO_UUID_STRING(pp->luks_uuid), (char *) "--pbkdf", (char *) "pbkdf2",
                                 (char *) "--pbkdf-force-iterations", (char *) "1000", (char *) "--key-file", (char *) "-", header, NULL };
                ASSERT_OK(run_command(argv, &(RunOptions) { .stdin_data = PASSPHRASE, .stdin_size = strlen(PASSPHRASE), .keep_fd = -1,
                                                            .quiet_stderr = true }));
                buf = malloc(n);
                in = open(header, O_RDONLY | O_CLOEXEC);
                out = open(image, O_WRONLY | O_CLOEXEC);
                ASSERT_TRUE(buf && in >= 0 && out >= 0);
                ASSERT_OK(pread_full(in, buf, n, 0));
                ASSERT_OK(pwrite_full(out, buf, n, pp->start));
                close(in);
                close(out);
        }
}

static const char *get_string(json_object *j, const char *path) {
        json_object *v = j;
        char *copy = strdup(path), *save = NULL;

        for (char *k = strtok_r(copy, ".", &save); k; k = strtok_r(NULL, ".", &save))
                if (!json_object_object_get_ex(v, k, &v))
                        FAIL("no \"%s\" in the report", path);
        free(copy);
        return v ? json_object_get_string(v) : NULL;
}

static json_object *get(json_object *j, const char *key) {
        json_object *v;
        if (!json_object_object_get_ex(j, key, &v))
                FAIL("no \"%s\" in the report", key);
        return v;
}

static void event(Report *r, ProgressEventType type, unsigned step, const char *id, uint64_t done, uint64_t total, const char *message) {
        report_progress(r, &(ProgressEvent) { .type = type, .step = step, .n_steps = 3, .id = id, .description = id,
                                              .done = done, .total = total, .eta_usec = -1, .elapsed_usec = type >= PROGRESS_END ? 1500000 : 0,
                                              .message = message });
}

static void test_document(void) {
        _cleanup_(freep) char *image = tmp_path("disk.img"), *dmi = tmp_path("dmi"), *escrow = tmp_path("recovery-key.txt"),
                             *reports = tmp_path("reports"), *console = tmp_path("console.log"), *file = NULL, *console_text = NULL,
                             *found = NULL;
        _cleanup_(plan_freep) Plan *p = NULL;
        InstallConfig c;
        Report *r = NULL;
        json_object *doc = NULL, *a, *o;
        const char *text;
        const PlanPartition *root;
        DIR *dir;
        struct dirent *de;
        struct stat st;
        bool found_luks = false;

        ASSERT_TRUE(mkdir(dmi, 0755) == 0 && mkdir(reports, 0755) == 0);
        {
                _cleanup_(freep) char *f1 = tmp_path("dmi/sys_vendor"), *f2 = tmp_path("dmi/product_name"),
                                      *f3 = tmp_path("dmi/product_serial"), *f4 = tmp_path("dmi/board_name");
                write_file(f1, "Example Computers\n");
                write_file(f2, "Line Book 14\n");
                write_file(f3, "../SN 1\n");
                write_file(f4, "EB-1  \n");
        }
        setenv("IMPRINT_DMI_DIR", dmi, 1);
        setenv("IMPRINT_CONSOLE", console, 1);
        write_file(escrow, RECOVERY_KEY "\n");

        p = encrypted_plan(image);
        lay_out(p, image);

        install_config_init(&c);
        ASSERT_OK(set_report(&c, "{\"console\": true}"));
        c.report->directory = strdup(reports);
        c.target = strdup(image);
        ASSERT_OK(report_new(&c, &r));
        ASSERT_TRUE(r);

        /* 60 log lines: the tail keeps the last 50; debug lines are not kept. */
        for (int i = 0; i < 60; i++)
                log_info("line %d", i);
        log_debug("a debug line");

        event(r, PROGRESS_PLANNED, 1, "partition", 0, 1, NULL);
        event(r, PROGRESS_PLANNED, 2, "copy-root", 0, 100 * MiB, NULL);
        event(r, PROGRESS_PLANNED, 3, "boot", 0, 1, NULL);
        event(r, PROGRESS_BEGIN, 1, "partition", 0, 1, NULL);
        event(r, PROGRESS_END, 1, "partition", 1, 1, NULL);
        report_escrow(r, escrow, "plaintext");
        event(r, PROGRESS_BEGIN, 2, "copy-root", 0, 100 * MiB, NULL);
        event(r, PROGRESS_UPDATE, 2, "copy-root", 40 * MiB, 100 * MiB, NULL);
        event(r, PROGRESS_FAILED, 2, "copy-root", 40 * MiB, 100 * MiB, "Cannot read the image: Input/output error.");
        report_refusal(r, "machine", "This machine is not on the line's list.");

        ASSERT_OK(report_to_json(r, p, 5, "Cannot read the image: Input/output error.", &doc));
        text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN);

        ASSERT_FALSE(strstr(text, RECOVERY_KEY));
        ASSERT_FALSE(strstr(text, PASSPHRASE));
        ASSERT_EQ(json_object_get_int(get(doc, "formatVersion")), 1);
        ASSERT_STREQ(get_string(doc, "imprintVersion"), IMPRINT_VERSION);
        ASSERT_STREQ(get_string(doc, "mode"), "install");
        ASSERT_TRUE(strlen(get_string(doc, "started")) == 20 && get_string(doc, "started")[19] == 'Z');
        ASSERT_TRUE(strcmp(get_string(doc, "ended"), get_string(doc, "started")) >= 0);

        ASSERT_STREQ(get_string(doc, "machine.vendor"), "Example Computers");
        ASSERT_STREQ(get_string(doc, "machine.product"), "Line Book 14");
        ASSERT_STREQ(get_string(doc, "machine.serial"), "../SN 1");
        ASSERT_STREQ(get_string(doc, "machine.boardName"), "EB-1");
        ASSERT_TRUE(!get_string(doc, "machine.sku") && !get_string(doc, "machine.uuid"));

        ASSERT_STREQ(get_string(doc, "disk.path"), image);
        ASSERT_EQ(json_object_get_int64(get(get(doc, "disk"), "size")), 8 * GiB);
        ASSERT_STREQ(get_string(doc, "disk.diskUuid"), SD_ID128_TO_UUID_STRING(p->disk_uuid));

        /* The partitions as libblkid reads them back, in the plan's order, with the planned UUIDs. */
        a = get(doc, "partitions");
        ASSERT_EQ(json_object_array_length(a), p->n_partitions);
        for (size_t i = 0; i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];
                o = json_object_array_get_idx(a, i);
                ASSERT_EQ(json_object_get_int(get(o, "partno")), pp->partno);
                ASSERT_STREQ(get_string(o, "partUuid"), SD_ID128_TO_UUID_STRING(pp->uuid));
                ASSERT_STREQ(get_string(o, "label"), pp->label);
                if (pp->encrypt) {
                        ASSERT_STREQ(get_string(o, "fstype"), "crypto_LUKS");
                        ASSERT_STREQ(get_string(o, "luksUuid"), SD_ID128_TO_UUID_STRING(pp->luks_uuid));
                        ASSERT_TRUE(!get_string(o, "fsUuid"));
                        found_luks = true;
                } else
                        ASSERT_TRUE(!get_string(o, "luksUuid"));
        }
        ASSERT_TRUE(found_luks);
        root = plan_find_role(p, ROLE_ROOT);
        ASSERT_TRUE(root && root->encrypt);

        ASSERT_STREQ(get_string(doc, "image.name"), "Fake OS 7");
        ASSERT_STREQ(get_string(doc, "image.version"), "7");
        ASSERT_STREQ(get_string(doc, "image.sha256"), "1873917957c726ecf4a13b9bb38961dc312262e9c9653f42b4e42a3f5222bf39");
        ASSERT_STREQ(get_string(doc, "image.sha256Origin"), "/srv/images/SHA256SUMS");

        ASSERT_TRUE(json_object_get_boolean(get(get(doc, "encryption"), "enabled")));
        ASSERT_TRUE(json_object_get_boolean(get(get(doc, "encryption"), "recoveryKey")));
        o = get(get(doc, "encryption"), "tpm2");
        ASSERT_TRUE(json_object_get_boolean(get(o, "enrolled")));
        ASSERT_STREQ(get_string(o, "token"), "systemd-tpm2");
        ASSERT_STREQ(json_object_to_json_string_ext(get(o, "pcrs"), JSON_C_TO_STRING_PLAIN), "[7]");
        ASSERT_STREQ(json_object_to_json_string_ext(get(o, "publicKeyPcrs"), JSON_C_TO_STRING_PLAIN), "[11]");
        ASSERT_CONTAINS(get_string(doc, "encryption.note"), "TPM 2.0 unlocks");

        ASSERT_STREQ(get_string(doc, "escrow.path"), escrow);
        ASSERT_STREQ(get_string(doc, "escrow.method"), "plaintext");
        ASSERT_STREQ(get_string(doc, "plan.target.path"), image);

        /* Steps: done (no bytes for a step without a size), failed half way (its bytes so far and
         * the reason), not run. */
        a = get(doc, "steps");
        ASSERT_EQ(json_object_array_length(a), 3);
        o = json_object_array_get_idx(a, 0);
        ASSERT_STREQ(get_string(o, "id"), "partition");
        ASSERT_STREQ(get_string(o, "result"), "done");
        ASSERT_EQ(json_object_get_int64(get(o, "bytes")), 0);
        ASSERT_TRUE(json_object_get_double(get(o, "durationSeconds")) == 1.5);
        ASSERT_STREQ(json_object_to_json_string(get(o, "durationSeconds")), "1.500");
        o = json_object_array_get_idx(a, 1);
        ASSERT_STREQ(get_string(o, "id"), "copy-root");
        ASSERT_STREQ(get_string(o, "result"), "failed");
        ASSERT_EQ(json_object_get_int64(get(o, "bytes")), 40 * MiB);
        ASSERT_STREQ(get_string(o, "message"), "Cannot read the image: Input/output error.");
        ASSERT_TRUE(json_object_get_double(get(o, "startSeconds")) >= json_object_get_double(get(json_object_array_get_idx(a, 0), "startSeconds")));
        o = json_object_array_get_idx(a, 2);
        ASSERT_STREQ(get_string(o, "result"), "not-run");
        ASSERT_TRUE(!json_object_object_get_ex(o, "durationSeconds", &o) || !o);

        ASSERT_FALSE(json_object_get_boolean(get(get(doc, "result"), "success")));
        ASSERT_EQ(json_object_get_int(get(get(doc, "result"), "exitCode")), 5);
        ASSERT_STREQ(get_string(doc, "result.failedStep"), "copy-root");
        ASSERT_STREQ(get_string(doc, "result.message"), "Cannot read the image: Input/output error.");
        a = get(doc, "refusals");
        ASSERT_EQ(json_object_array_length(a), 1);
        ASSERT_STREQ(get_string(json_object_array_get_idx(a, 0), "what"), "machine");

        a = get(doc, "logTail");
        ASSERT_EQ(json_object_array_length(a), 50);
        ASSERT_STREQ(json_object_get_string(json_object_array_get_idx(a, 0)), "line 10");
        ASSERT_STREQ(json_object_get_string(json_object_array_get_idx(a, 49)), "line 59");
        json_object_put(doc);
        printf("ok: the document, field by field, UUIDs as on the disk, no secrets\n");

        /* The destinations: a file named after the serial (made safe for a share), 0644, and
         * the console's marked line; the same document. */
        ASSERT_OK(report_finish(r, p, 5, "Cannot read the image: Input/output error."));
        dir = opendir(reports);
        ASSERT_TRUE(dir);
        while ((de = readdir(dir)))
                if (de->d_name[0] != '.') {
                        ASSERT_TRUE(!found);
                        found = strdup(de->d_name);
                } else
                        ASSERT_TRUE(streq(de->d_name, ".") || streq(de->d_name, ".."));
        closedir(dir);
        ASSERT_TRUE(found && strncmp(found, "imprint-.._SN_1-", 16) != 0 && strncmp(found, "imprint-_._SN_1-", 16) == 0);
        ASSERT_TRUE(strlen(found) == strlen("imprint-_._SN_1-20261203T120000Z.json"));
        ASSERT_TRUE(asprintf(&file, "%s/%s", reports, found) > 0);
        ASSERT_TRUE(stat(file, &st) == 0 && (st.st_mode & 07777) == 0644);
        {
                _cleanup_(freep) char *content = NULL, *line = NULL;
                char *begin, *end;
                ASSERT_OK(read_full_file(file, &content, NULL));
                ASSERT_OK(read_full_file(console, &console_text, NULL));
                begin = strstr(console_text, REPORT_CONSOLE_BEGIN "\n");
                ASSERT_TRUE(begin);
                begin += strlen(REPORT_CONSOLE_BEGIN "\n");
                end = strstr(begin, "\n" REPORT_CONSOLE_END "\n");
                ASSERT_TRUE(end);
                line = strndup(begin, (size_t) (end - begin + 1));
                ASSERT_STREQ(content, line);
                doc = parse_report(content, file);
                ASSERT_STREQ(get_string(doc, "machine.serial"), "../SN 1");
                json_object_put(doc);
        }
        report_free(r);
        install_config_done(&c);
        printf("ok: the directory and the console get the same document\n");
}

/* A destination that fails is named, and does not keep the report from the others. */
static void test_failed_destination(void) {
        _cleanup_(freep) char *console = tmp_path("console2.log"), *content = NULL;
        InstallConfig c;
        Report *r = NULL;

        setenv("IMPRINT_CONSOLE", console, 1);
        install_config_init(&c);
        ASSERT_OK(set_report(&c, "{\"directory\": \"/nonexistent/reports\", \"console\": true}"));
        ASSERT_OK(report_new(&c, &r));
        ASSERT_TRUE(report_finish(r, NULL, 2, "test.json: unknown key.") < 0);
        ASSERT_CONTAINS(error_message(), "Cannot write the report to /nonexistent/reports");
        ASSERT_OK(read_full_file(console, &content, NULL));
        ASSERT_CONTAINS(content, "\"success\":false");
        ASSERT_CONTAINS(content, "\"plan\":null");
        report_free(r);
        install_config_done(&c);
        printf("ok: a directory that is not there: named, and the console still gets the report\n");
}

int main(void) {
        if (!find_executable("sfdisk") || !find_executable("cryptsetup")) {
                printf("test-report: sfdisk or cryptsetup missing, skipping\n");
                return 77;
        }
        if (!mkdtemp(tmpdir))
                FAIL("mkdtemp: %m");
        atexit(remove_tmpdir);
        log_set_max_level(LOG_ERR);
        test_config();
        test_document();
        test_failed_destination();
        return 0;
}
