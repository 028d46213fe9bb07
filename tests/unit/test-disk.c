/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Discovery of disk image files: a GPT image with an ESP and a root partition carrying an
 * os-release is built with sfdisk, mkfs.vfat and mkfs.ext4 (no root, no loop devices), then read
 * back through disk_discover(). Exits 77 when the tools are missing. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk.h"
#include "error.h"
#include "fileio.h"
#include "log.h"
#include "run.h"
#include "size.h"

#define EXIT_SKIP 77

#define ESP_START (1 * MiB)
#define ESP_SIZE (512 * MiB)
#define ROOT_START (ESP_START + ESP_SIZE)
#define ROOT_SIZE (3 * GiB)
#define IMAGE_SIZE (4 * GiB)
#define PRETTY "Imprint Test OS 42 (unit)"

static int failures;

#define CHECK(expr)                                                                        \
        do {                                                                               \
                if (!(expr)) {                                                             \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
                        failures++;                                                        \
                }                                                                          \
        } while (0)

#define CHECK_STREQ(a, b)                                                                  \
        do {                                                                               \
                const char *_a = (a), *_b = (b);                                           \
                if (!streq_ptr(_a, _b)) {                                                  \
                        fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, \
                                _a ?: "(null)", _b ?: "(null)");                           \
                        failures++;                                                        \
                }                                                                          \
        } while (0)

static char tmpdir[] = "/var/tmp/test-disk.XXXXXX";

static void remove_tmpdir(void) {
        static const char *const files[] = { "big.img", "small.img", "empty.img", "root/etc/os-release",
                                             "root/etc", "root" };

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                char path[PATH_MAX];

                snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
                if (unlink(path) < 0 && errno == EISDIR)
                        (void) rmdir(path);
        }
        (void) rmdir(tmpdir);
}

static int run(char *const argv[]) {
        int r = run_command(argv, &(RunOptions) { .keep_fd = -1, .quiet_stderr = true });
        if (r < 0)
                fprintf(stderr, "%s\n", error_message() ?: strerror(-r));
        return r;
}

static int make_sparse_file(const char *path, uint64_t size) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        if (fd < 0)
                return -errno;
        if (ftruncate(fd, (off_t) size) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        close(fd);
        return 0;
}

static int build_image(const char *image, const char *rootdir) {
        char esp_type[SD_ID128_UUID_STRING_MAX], root_type[SD_ID128_UUID_STRING_MAX];
        char script[512], offset[64], blocks[64];
        sd_id128_t id;
        int r;

        r = make_sparse_file(image, IMAGE_SIZE);
        if (r < 0)
                return r;

        if (dps_type_uuid(ROLE_ESP, architecture_native(), &id) < 0)
                return -EINVAL;
        sd_id128_to_uuid_string(id, esp_type);
        if (dps_type_uuid(ROLE_ROOT, architecture_native(), &id) < 0)
                return -EINVAL;
        sd_id128_to_uuid_string(id, root_type);

        snprintf(script, sizeof(script),
                 "label: gpt\n"
                 "start=%" PRIu64 ", size=%" PRIu64 ", type=%s, name=\"test-esp\"\n"
                 "start=%" PRIu64 ", size=%" PRIu64 ", type=%s, name=\"test-root\"\n",
                 ESP_START / 512, ESP_SIZE / 512, esp_type, ROOT_START / 512, ROOT_SIZE / 512, root_type);
        r = run_command((char *[]) { (char *) "sfdisk", (char *) "--quiet", (char *) "--no-reread",
                                     (char *) "--no-tell-kernel", (char *) image, NULL },
                        &(RunOptions) { .keep_fd = -1, .stdin_data = script, .stdin_size = strlen(script),
                                        .quiet_stderr = true });
        if (r < 0) {
                fprintf(stderr, "%s\n", error_message() ?: strerror(-r));
                return r;
        }

        /* mkfs.vfat: --offset in sectors, the size in KiB blocks. */
        snprintf(offset, sizeof(offset), "%" PRIu64, ESP_START / 512);
        snprintf(blocks, sizeof(blocks), "%" PRIu64, ESP_SIZE / 1024);
        r = run((char *[]) { (char *) "mkfs.vfat", (char *) "-F", (char *) "32", (char *) "-n", (char *) "TESTESP",
                             (char *) "--offset", offset, (char *) image, blocks, NULL });
        if (r < 0)
                return r;

        /* mkfs.ext4: offset in bytes, the size with a unit so that no block size is assumed. */
        snprintf(offset, sizeof(offset), "offset=%" PRIu64, ROOT_START);
        snprintf(blocks, sizeof(blocks), "%" PRIu64 "k", ROOT_SIZE / 1024);
        r = run((char *[]) { (char *) "mkfs.ext4", (char *) "-q", (char *) "-F", (char *) "-L", (char *) "testroot",
                             (char *) "-E", offset, (char *) "-d", (char *) rootdir, (char *) image, blocks, NULL });
        if (r < 0)
                return r;

        /* A systemd-boot directory on the ESP, when mtools is around to write it. */
        if (find_executable("mmd")) {
                char target[PATH_MAX + 32];

                setenv("MTOOLS_SKIP_CHECK", "1", 1);
                snprintf(target, sizeof(target), "%s@@%" PRIu64, image, ESP_START);
                r = run((char *[]) { (char *) "mmd", (char *) "-i", target, (char *) "::/EFI", (char *) "::/EFI/BOOT",
                                     (char *) "::/EFI/systemd", NULL });
                if (r < 0)
                        return r;
        }
        return 0;
}

static void test_partition_node(void) {
        Disk d = { .kind = DISK_BLOCK, .path = (char *) "/dev/x" };
        char *node = NULL;

        d.name = (char *) "sda";
        CHECK(disk_partition_node(&d, 1, &node) == 0);
        CHECK_STREQ(node, "/dev/sda1");
        free(node);

        d.name = (char *) "nvme0n1";
        CHECK(disk_partition_node(&d, 12, &node) == 0);
        CHECK_STREQ(node, "/dev/nvme0n1p12");
        free(node);

        d.name = (char *) "loop0";
        CHECK(disk_partition_node(&d, 2, &node) == 0);
        CHECK_STREQ(node, "/dev/loop0p2");
        free(node);

        d.kind = DISK_IMAGE_FILE;
        node = NULL;
        CHECK(disk_partition_node(&d, 1, &node) < 0);
        CHECK(!node);
}

static void test_string_tables(void) {
        CHECK_STREQ(transport_to_string(TRANSPORT_NVME), "nvme");
        CHECK_STREQ(transport_to_string(TRANSPORT_FILE), "file");
        CHECK(transport_from_string("virtio") == TRANSPORT_VIRTIO);
        CHECK(transport_from_string("floppy") == _TRANSPORT_INVALID);
        CHECK_STREQ(disk_kind_to_string(DISK_IMAGE_FILE), "file");
        CHECK(disk_kind_from_string("block") == DISK_BLOCK);
}

static void test_big_image(const char *image) {
        DiscoverOptions opts = { .probe_os = true };
        _cleanup_(disk_freep) Disk *d = NULL;
        sd_id128_t esp, root;
        json_object *j, *v;
        bool found = false;
        int r;

        r = disk_discover(image, &opts, &d);
        if (r < 0) {
                fprintf(stderr, "disk_discover(%s): %s\n", image, error_message() ?: strerror(-r));
                failures++;
                return;
        }

        CHECK(d->kind == DISK_IMAGE_FILE);
        CHECK(d->transport == TRANSPORT_FILE);
        CHECK_STREQ(d->name, "big.img");
        CHECK(d->size == IMAGE_SIZE);
        CHECK(d->logical_sector_size == 512);
        CHECK(!d->devnode);
        CHECK_STREQ(d->pttype, "gpt");
        CHECK(d->ptuuid != NULL);
        CHECK(d->n_partitions == 2);
        CHECK(disk_is_usable(d));
        CHECK(d->refusals == 0);
        CHECK(!d->refusal_text);
        if (d->n_partitions != 2)
                return;

        CHECK(dps_type_uuid(ROLE_ESP, architecture_native(), &esp) == 0);
        CHECK(dps_type_uuid(ROLE_ROOT, architecture_native(), &root) == 0);

        const DiskPartition *p = &d->partitions[0];
        CHECK(p->partno == 1);
        CHECK(!p->node);
        CHECK(p->start == ESP_START);
        CHECK(p->size == ESP_SIZE);
        CHECK(sd_id128_equal(p->type_uuid, esp));
        CHECK(p->dps && streq(p->dps->name, "esp"));
        CHECK_STREQ(p->label, "test-esp");
        CHECK_STREQ(p->fstype, "vfat");
        CHECK_STREQ(p->fslabel, "TESTESP");
        CHECK(p->uuid_string && !sd_id128_is_null(p->uuid));
        if (find_executable("mmd") && find_executable("mdir"))
                CHECK_STREQ(p->os, "systemd-boot");

        p = &d->partitions[1];
        CHECK(p->partno == 2);
        CHECK(p->start == ROOT_START);
        CHECK(p->size == ROOT_SIZE);
        CHECK(sd_id128_equal(p->type_uuid, root));
        CHECK(p->dps && p->dps->role == ROLE_ROOT && p->dps->arch == architecture_native());
        CHECK_STREQ(p->label, "test-root");
        CHECK_STREQ(p->fstype, "ext4");
        CHECK_STREQ(p->fslabel, "testroot");
        if (find_executable("debugfs")) {
                CHECK(p->os && strstr(p->os, PRETTY));
                for (char **l = d->installed; l && *l; l++)
                        if (strstr(*l, PRETTY) && strstr(*l, "partition 2"))
                                found = true;
                CHECK(found);
        }

        j = disk_to_json(d);
        CHECK(j);
        CHECK(json_object_object_get_ex(j, "usable", &v) && json_object_get_boolean(v));
        CHECK(json_object_object_get_ex(j, "kind", &v) && streq(json_object_get_string(v), "file"));
        CHECK(json_object_object_get_ex(j, "partitions", &v) && json_object_array_length(v) == 2);
        CHECK(json_object_object_get_ex(j, "refusalReason", &v) && v == NULL);
        json_object_put(j);

        /* Reading again replaces what was read, it does not append. */
        CHECK(disk_read_partitions(d) == 0);
        CHECK(d->n_partitions == 2);

        CHECK(disk_check_not_in_use(d) == 0);
}

static void test_small_image(const char *image) {
        _cleanup_(disk_freep) Disk *d = NULL;
        int r;

        r = make_sparse_file(image, 1 * GiB);
        CHECK(r == 0);
        r = disk_discover(image, &(DiscoverOptions) {}, &d);
        CHECK(r == 0);
        if (r < 0)
                return;
        CHECK(!disk_is_usable(d));
        CHECK(d->refusals & REFUSE_TOO_SMALL);
        CHECK(d->refusal_text && strstr(d->refusal_text, FORMAT_BYTES(1 * GiB)));
        CHECK(d->refusal_text && strstr(d->refusal_text, FORMAT_BYTES(DISK_MIN_SIZE)));
        CHECK(!d->pttype && d->n_partitions == 0);
}

static void test_refused_paths(const char *empty_image) {
        Disk *d = NULL;
        int r;

        r = disk_discover(tmpdir, &(DiscoverOptions) {}, &d);
        CHECK(r == -ENOTBLK);
        CHECK(error_message() && strstr(error_message(), tmpdir));

        r = disk_discover("/nonexistent/disk.img", &(DiscoverOptions) {}, &d);
        CHECK(r == -ENOENT);
        CHECK(error_message() && strstr(error_message(), "/nonexistent/disk.img"));

        /* An empty file has not been given its size yet: refused, not grown behind the user's back. */
        CHECK(make_sparse_file(empty_image, 0) == 0);
        r = disk_discover(empty_image, &(DiscoverOptions) {}, &d);
        CHECK(r == 0);
        if (r == 0) {
                CHECK(d->refusals & REFUSE_TOO_SMALL);
                disk_free(d);
        }
}

int main(void) {
        static const char *const tools[] = { "sfdisk", "mkfs.vfat", "mkfs.ext4" };
        char image[PATH_MAX], small[PATH_MAX], empty[PATH_MAX], rootdir[PATH_MAX], osrel[PATH_MAX];
        FILE *f;

        log_set_max_level(getenv("TEST_DEBUG") ? LOG_DEBUG : LOG_WARNING);

        for (size_t i = 0; i < ELEMENTSOF(tools); i++)
                if (!find_executable(tools[i])) {
                        fprintf(stderr, "%s not found, skipping.\n", tools[i]);
                        return EXIT_SKIP;
                }

        test_partition_node();
        test_string_tables();

        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return EXIT_FAILURE;
        }
        atexit(remove_tmpdir);

        snprintf(image, sizeof(image), "%s/big.img", tmpdir);
        snprintf(small, sizeof(small), "%s/small.img", tmpdir);
        snprintf(empty, sizeof(empty), "%s/empty.img", tmpdir);
        snprintf(rootdir, sizeof(rootdir), "%s/root", tmpdir);
        snprintf(osrel, sizeof(osrel), "%s/root/etc", tmpdir);
        if (mkdir(rootdir, 0755) < 0 || mkdir(osrel, 0755) < 0) {
                perror("mkdir");
                return EXIT_FAILURE;
        }
        snprintf(osrel, sizeof(osrel), "%s/root/etc/os-release", tmpdir);
        f = fopen(osrel, "we");
        if (!f) {
                perror(osrel);
                return EXIT_FAILURE;
        }
        fputs("NAME=\"Imprint Test OS\"\nVERSION=\"42 (unit)\"\nPRETTY_NAME=\"" PRETTY "\"\nID=imprint-test\n", f);
        fclose(f);

        if (build_image(image, rootdir) < 0) {
                fprintf(stderr, "Cannot build the test image.\n");
                return EXIT_FAILURE;
        }

        test_big_image(image);
        test_small_image(small);
        test_refused_paths(empty);

        if (failures > 0) {
                fprintf(stderr, "%d check(s) failed.\n", failures);
                return EXIT_FAILURE;
        }
        printf("test-disk: all checks passed.\n");
        return EXIT_SUCCESS;
}
