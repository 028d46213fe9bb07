/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* EFI load options, Boot####/BootOrder handling, generic variables, and the recovery entry's
 * variables (reset requests, the boot redirect) and factory-reset hook, run against temporary
 * directories standing in for efivarfs: no root, no firmware. The expected load option bytes are derived by hand from the
 * UEFI specification (EFI_LOAD_OPTION, "Hard Drive" and "File Path" media device path nodes, End
 * Entire Device Path node), not from the code under test. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "efivars.h"
#include "error.h"
#include "fileio.h"
#include "log.h"
#include "recovery-entry.h"
#include "tests.h"

#define GUID_SUFFIX "-8be4df61-93ca-11d2-aa0d-00e098032b8c"
#define LOADER "/EFI/systemd/systemd-bootx64.efi"

/* UTF-16LE of one ASCII character */
#define U(c) (c), 0x00

/* Input: "Linux Boot Manager", partition 1 starting at LBA 2048 with 1048576 sectors (512 MiB),
 * partition GUID 01234567-89ab-cdef-0123-456789abcdef, loader /EFI/systemd/systemd-bootx64.efi. */
static const uint8_t expected_option[] = {
        /* EFI_LOAD_OPTION.Attributes: UINT32 LOAD_OPTION_ACTIVE (0x00000001), little-endian */
        0x01, 0x00, 0x00, 0x00,
        /* EFI_LOAD_OPTION.FilePathListLength: UINT16, the bytes of the device path below:
         * 42 (hard drive) + 70 (file path) + 4 (end) = 116 = 0x0074 */
        0x74, 0x00,
        /* EFI_LOAD_OPTION.Description: "Linux Boot Manager", 18 UCS-2 characters + NUL = 38 bytes */
        U('L'), U('i'), U('n'), U('u'), U('x'), U(' '),
        U('B'), U('o'), U('o'), U('t'), U(' '),
        U('M'), U('a'), U('n'), U('a'), U('g'), U('e'), U('r'),
        0x00, 0x00,

        /* Hard Drive media device path: Type 0x04 (Media), SubType 0x01 (Hard Drive),
         * Length 42 = 0x002a */
        0x04, 0x01, 0x2a, 0x00,
        /* PartitionNumber: UINT32 1 */
        0x01, 0x00, 0x00, 0x00,
        /* PartitionStart: UINT64 2048 = 0x800 */
        0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        /* PartitionSize: UINT64 1048576 = 0x100000 */
        0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00,
        /* PartitionSignature: EFI_GUID 01234567-89ab-cdef-0123-456789abcdef —
         * Data1 0x01234567 (LE), Data2 0x89ab (LE), Data3 0xcdef (LE), Data4 as written */
        0x67, 0x45, 0x23, 0x01,
        0xab, 0x89,
        0xef, 0xcd,
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
        /* PartitionFormat: 0x02, GUID Partition Table */
        0x02,
        /* SignatureType: 0x02, GUID signature */
        0x02,

        /* File Path media device path: Type 0x04 (Media), SubType 0x04 (File Path),
         * Length 4 + 66 = 70 = 0x0046 */
        0x04, 0x04, 0x46, 0x00,
        /* PathName: "\EFI\systemd\systemd-bootx64.efi", 32 characters + NUL = 66 bytes */
        U('\\'), U('E'), U('F'), U('I'),
        U('\\'), U('s'), U('y'), U('s'), U('t'), U('e'), U('m'), U('d'),
        U('\\'), U('s'), U('y'), U('s'), U('t'), U('e'), U('m'), U('d'), U('-'),
        U('b'), U('o'), U('o'), U('t'), U('x'), U('6'), U('4'), U('.'), U('e'), U('f'), U('i'),
        0x00, 0x00,

        /* End of Hardware Device Path: Type 0x7f, SubType 0xff (End Entire Device Path),
         * Length 4 */
        0x7f, 0xff, 0x04, 0x00,
};

/* Offsets into expected_option */
#define OFF_LIST_LEN 4
#define OFF_HD (6 + 38)
#define OFF_FILE (OFF_HD + 42)
#define OFF_END (OFF_FILE + 70)

static char tmpdir[] = "/tmp/test-efivars.XXXXXX";

static sd_id128_t esp_uuid(void) {
        sd_id128_t id;

        ASSERT_OK(sd_id128_from_string("01234567-89ab-cdef-0123-456789abcdef", &id));
        return id;
}

static sd_id128_t other_uuid(void) {
        sd_id128_t id;

        ASSERT_OK(sd_id128_from_string("c0ffee00-1111-4222-8333-444455556666", &id));
        return id;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

/* A fresh directory standing in for /sys/firmware/efi/efivars. */
static void make_root(const char *name, char out[static PATH_MAX]) {
        snprintf(out, PATH_MAX, "%s/%s", tmpdir, name);
        ASSERT_TRUE(mkdir(out, 0755) >= 0);
}

static void path_of(const char *root, const char *var, char out[static PATH_MAX]) {
        snprintf(out, PATH_MAX, "%s/%s" GUID_SUFFIX, root, var);
}

/* Writes a variable as firmware would have: the attributes word, then the data. */
static void put_variable(const char *root, const char *var, const void *data, size_t size) {
        char p[PATH_MAX];
        uint8_t *buf;
        FILE *f;

        path_of(root, var, p);
        buf = malloc(4 + size);
        ASSERT_TRUE(buf);
        memcpy(buf, (const uint8_t[]) { 0x07, 0x00, 0x00, 0x00 }, 4);
        if (size > 0)
                memcpy(buf + 4, data, size);
        f = fopen(p, "we");
        ASSERT_TRUE(f);
        ASSERT_EQ(fwrite(buf, 1, 4 + size, f), 4 + size);
        ASSERT_EQ(fclose(f), 0);
        free(buf);
}

static void put_option(const char *root, const char *var, const char *description, sd_id128_t uuid, const char *path) {
        void *opt;
        size_t size;

        ASSERT_OK(efi_make_load_option(description, 1, 2048, 1048576, uuid, path, &opt, &size));
        put_variable(root, var, opt, size);
        free(opt);
}

static void put_boot_order(const char *root, const uint16_t *order, size_t n) {
        uint8_t buf[64];

        ASSERT_TRUE(n * 2 <= sizeof(buf));
        for (size_t i = 0; i < n; i++) {
                buf[2 * i] = (uint8_t) order[i];
                buf[2 * i + 1] = (uint8_t) (order[i] >> 8);
        }
        put_variable(root, "BootOrder", buf, n * 2);
}

/* Reads a variable file raw, attributes word included. */
static uint8_t *get_file(const char *root, const char *var, size_t *ret_size) {
        char p[PATH_MAX], *buf;

        path_of(root, var, p);
        ASSERT_OK(read_full_file(p, &buf, ret_size));
        return (uint8_t *) buf;
}

static bool variable_exists(const char *root, const char *var) {
        char p[PATH_MAX];

        path_of(root, var, p);
        return access(p, F_OK) >= 0;
}

static size_t count_files(const char *root) {
        struct dirent *de;
        size_t n = 0;
        DIR *d;

        d = opendir(root);
        ASSERT_TRUE(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        ASSERT_EQ(closedir(d), 0);
        return n;
}

/* Sets or clears FS_IMMUTABLE_FL as efivarfs does; false when this filesystem or these
 * privileges do not allow it (the immutable checks are then skipped). */
static bool set_immutable(const char *root, const char *var, bool on) {
        char p[PATH_MAX];
        int fd, flags;
        bool ok;

        path_of(root, var, p);
        fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        ASSERT_TRUE(fd >= 0);
        ok = ioctl(fd, FS_IOC_GETFLAGS, &flags) >= 0;
        if (ok) {
                flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
                ok = ioctl(fd, FS_IOC_SETFLAGS, &flags) >= 0;
        }
        close(fd);
        return ok;
}

static bool is_immutable(const char *root, const char *var) {
        char p[PATH_MAX];
        int fd, flags;

        path_of(root, var, p);
        fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(ioctl(fd, FS_IOC_GETFLAGS, &flags) >= 0);
        close(fd);
        return flags & FS_IMMUTABLE_FL;
}

static void check_boot_order(const char *root, const uint16_t *want, size_t want_n) {
        EfiVars v = { .root = root };
        uint16_t *order;
        size_t n;
        uint8_t *raw;
        size_t raw_size;

        ASSERT_OK(efi_get_boot_order(&v, &order, &n));
        ASSERT_EQ(n, want_n);
        for (size_t i = 0; i < n; i++)
                if (order[i] != want[i])
                        FAIL("BootOrder[%zu] is %04X, expected %04X", i, order[i], want[i]);
        free(order);

        /* The file itself: the attributes word NON_VOLATILE|BOOTSERVICE_ACCESS|RUNTIME_ACCESS, then
         * UINT16 little-endian entries. */
        raw = get_file(root, "BootOrder", &raw_size);
        ASSERT_EQ(raw_size, 4 + 2 * want_n);
        ASSERT_TRUE(memcmp(raw, (const uint8_t[]) { 0x07, 0x00, 0x00, 0x00 }, 4) == 0);
        for (size_t i = 0; i < want_n; i++) {
                ASSERT_EQ(raw[4 + 2 * i], want[i] & 0xff);
                ASSERT_EQ(raw[5 + 2 * i], want[i] >> 8);
        }
        free(raw);
}

/* Boot#### holds our load option, byte for byte, behind the attribute word 07 00 00 00. */
static void check_our_entry(const char *root, const char *var) {
        uint8_t *raw;
        size_t size;

        raw = get_file(root, var, &size);
        ASSERT_EQ(size, 4 + sizeof(expected_option));
        ASSERT_TRUE(memcmp(raw, (const uint8_t[]) { 0x07, 0x00, 0x00, 0x00 }, 4) == 0);
        ASSERT_TRUE(memcmp(raw + 4, expected_option, sizeof(expected_option)) == 0);
        free(raw);
}

static int add_ours(const char *root, uint16_t *ret_id) {
        EfiVars v = { .root = root };

        return efi_add_boot_entry(&v, "Linux Boot Manager", 1, 2048, 1048576, esp_uuid(), LOADER, ret_id);
}

static void test_make_exact_bytes(void) {
        void *opt;
        size_t size;

        ASSERT_OK(efi_make_load_option("Linux Boot Manager", 1, 2048, 1048576, esp_uuid(), LOADER, &opt, &size));
        ASSERT_EQ(size, sizeof(expected_option));
        ASSERT_EQ(size, 160);
        for (size_t i = 0; i < size; i++)
                if (((uint8_t *) opt)[i] != expected_option[i])
                        FAIL("load option byte %zu is 0x%02x, expected 0x%02x", i, ((uint8_t *) opt)[i],
                             expected_option[i]);
        free(opt);

        /* Backslashes given by the caller are kept as they are. */
        ASSERT_OK(efi_make_load_option("Linux Boot Manager", 1, 2048, 1048576, esp_uuid(),
                                       "\\EFI\\systemd/systemd-bootx64.efi", &opt, &size));
        ASSERT_EQ(size, sizeof(expected_option));
        ASSERT_TRUE(memcmp(opt, expected_option, size) == 0);
        free(opt);
}

static void test_make_rejects(void) {
        void *opt = NULL;
        size_t size = 0;
        char *long_path;

        error_clear();
        ASSERT_EQ(efi_make_load_option("x", 0, 2048, 1, esp_uuid(), LOADER, &opt, &size), -EINVAL);
        ASSERT_TRUE(error_message());
        ASSERT_EQ(efi_make_load_option("x", 1, 2048, 0, esp_uuid(), LOADER, &opt, &size), -EINVAL);
        ASSERT_EQ(efi_make_load_option("x", 1, 2048, 1, SD_ID128_NULL, LOADER, &opt, &size), -EINVAL);
        ASSERT_EQ(efi_make_load_option("x", 1, 2048, 1, esp_uuid(), "EFI/x.efi", &opt, &size), -EINVAL);
        ASSERT_EQ(efi_make_load_option("bad \xff utf8", 1, 2048, 1, esp_uuid(), LOADER, &opt, &size), -EINVAL);
        ASSERT_CONTAINS(error_message(), "UTF-8");
        ASSERT_EQ(efi_make_load_option("x", 1, 2048, 1, esp_uuid(), "/\xc0\xaf", &opt, &size), -EINVAL); /* overlong '/' */

        long_path = malloc(40000);
        ASSERT_TRUE(long_path);
        long_path[0] = '/';
        memset(long_path + 1, 'a', 39998);
        long_path[39999] = 0;
        ASSERT_EQ(efi_make_load_option("x", 1, 2048, 1, esp_uuid(), long_path, &opt, &size), -E2BIG);
        free(long_path);

        /* Outputs untouched on failure */
        ASSERT_TRUE(opt == NULL);
        ASSERT_EQ(size, 0);
}

static void test_parse_round_trip(void) {
        char *description, *path;
        sd_id128_t uuid;
        void *opt;
        size_t size;

        ASSERT_OK(efi_parse_load_option(expected_option, sizeof(expected_option), &description, &uuid, &path));
        ASSERT_STREQ(description, "Linux Boot Manager");
        ASSERT_TRUE(sd_id128_equal(uuid, esp_uuid()));
        ASSERT_STREQ(path, LOADER);
        free(description);
        free(path);

        /* Outputs are optional */
        ASSERT_OK(efi_parse_load_option(expected_option, sizeof(expected_option), NULL, NULL, NULL));

        /* Non-ASCII: U+00F6 (one UTF-16 unit) and U+1F427 (a surrogate pair) */
        ASSERT_OK(efi_make_load_option("Linux B\xc3\xb6\xc3\xb6t \xf0\x9f\x90\xa7", 7, 1, 2, other_uuid(),
                                       "/EFI/Linux/\xc3\xa9.efi", &opt, &size));
        /* header 6 + description 2 * (11 + 2 + 1) + hard drive 42 + file path (4 + 2 * 17) + end 4 */
        ASSERT_EQ(size, 118);
        ASSERT_OK(efi_parse_load_option(opt, size, &description, &uuid, &path));
        ASSERT_STREQ(description, "Linux B\xc3\xb6\xc3\xb6t \xf0\x9f\x90\xa7");
        ASSERT_TRUE(sd_id128_equal(uuid, other_uuid()));
        ASSERT_STREQ(path, "/EFI/Linux/\xc3\xa9.efi");
        free(description);
        free(path);
        free(opt);
}

static void test_parse_split_path_and_optional_data(void) {
        /* A path spread over two File Path nodes, followed by OptionalData after the list. */
        static const uint8_t opt[] = {
                0x01, 0x00, 0x00, 0x00, /* Attributes: LOAD_OPTION_ACTIVE */
                0x1e, 0x00,             /* FilePathListLength: 14 + 12 + 4 = 30 */
                U('A'), 0x00, 0x00,     /* Description "A" */
                0x04, 0x04, 0x0e, 0x00, /* File Path node, length 4 + 10 = 14 */
                U('\\'), U('E'), U('F'), U('I'), 0x00, 0x00,
                0x04, 0x04, 0x0c, 0x00, /* File Path node, length 4 + 8 = 12 */
                U('\\'), U('x'), U('y'), 0x00, 0x00,
                0x7f, 0xff, 0x04, 0x00, /* End Entire Device Path */
                0xde, 0xad, 0xbe, 0xef, /* OptionalData */
        };
        char *description, *path;
        sd_id128_t uuid;

        ASSERT_OK(efi_parse_load_option(opt, sizeof(opt), &description, &uuid, &path));
        ASSERT_STREQ(description, "A");
        ASSERT_TRUE(sd_id128_is_null(uuid)); /* no Hard Drive node */
        ASSERT_STREQ(path, "/EFI/xy");
        free(description);
        free(path);
}

static void expect_bad(const uint8_t *buf, size_t size, const char *what) {
        char *description = (char *) 0x1, *path = (char *) 0x1;
        int r;

        error_clear();
        r = efi_parse_load_option(buf, size, &description, NULL, &path);
        if (r != -EBADMSG)
                FAIL("%s: parse returned %d, expected -EBADMSG", what, r);
        if (!error_message())
                FAIL("%s: no error message recorded", what);
        /* ret_* untouched on failure */
        ASSERT_TRUE(description == (char *) 0x1 && path == (char *) 0x1);
}

static void test_parse_malformed(void) {
        uint8_t b[sizeof(expected_option)];

        /* Every truncation of a valid option */
        for (size_t n = 0; n < sizeof(expected_option); n++) {
                char what[64];

                snprintf(what, sizeof(what), "truncated to %zu bytes", n);
                expect_bad(expected_option, n, what);
        }

        /* Hard Drive node with Length 0 */
        memcpy(b, expected_option, sizeof(b));
        b[OFF_HD + 2] = 0x00;
        b[OFF_HD + 3] = 0x00;
        expect_bad(b, sizeof(b), "node length 0");

        /* Length 3: shorter than the node header */
        b[OFF_HD + 2] = 0x03;
        expect_bad(b, sizeof(b), "node length 3");

        /* Hard Drive node of the wrong size (40 instead of 42) */
        b[OFF_HD + 2] = 40;
        expect_bad(b, sizeof(b), "hard drive node length 40");

        /* File Path node claiming more bytes than the list holds */
        memcpy(b, expected_option, sizeof(b));
        b[OFF_FILE + 2] = 0xff;
        expect_bad(b, sizeof(b), "node beyond the list");

        /* File Path node with an odd length */
        memcpy(b, expected_option, sizeof(b));
        b[OFF_FILE + 2] = 69;
        expect_bad(b, sizeof(b), "odd file path node");

        /* The End node replaced by another 4-byte node: no end node */
        memcpy(b, expected_option, sizeof(b));
        b[OFF_END] = 0x01;
        b[OFF_END + 1] = 0x01;
        expect_bad(b, sizeof(b), "end node replaced");

        /* FilePathListLength stopping before the End node: no end node inside the list */
        memcpy(b, expected_option, sizeof(b));
        b[OFF_LIST_LEN] = 116 - 4;
        expect_bad(b, sizeof(b), "end node outside the list");

        /* End Instance only, no End Entire */
        memcpy(b, expected_option, sizeof(b));
        b[OFF_END + 1] = 0x01;
        expect_bad(b, sizeof(b), "only end instance");

        /* Empty device path */
        memcpy(b, expected_option, sizeof(b));
        b[OFF_LIST_LEN] = 0;
        expect_bad(b, sizeof(b), "empty device path");

        /* FilePathListLength larger than what follows the description */
        memcpy(b, expected_option, sizeof(b));
        b[OFF_LIST_LEN] = 117;
        expect_bad(b, sizeof(b), "list beyond the option");

        /* Description without its NUL */
        expect_bad((const uint8_t[]) { 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, U('L'), U('i') }, 10,
                   "unterminated description");
}

static void test_add_empty(void) {
        char root[PATH_MAX];
        uint16_t id = 0xffff;

        make_root("empty", root);
        ASSERT_OK(add_ours(root, &id));
        ASSERT_EQ(id, 0);
        check_our_entry(root, "Boot0000");
        check_boot_order(root, (const uint16_t[]) { 0 }, 1);
        ASSERT_EQ(count_files(root), 2);

        /* Again: nothing changes */
        ASSERT_OK(add_ours(root, &id));
        ASSERT_EQ(id, 0);
        check_our_entry(root, "Boot0000");
        check_boot_order(root, (const uint16_t[]) { 0 }, 1);
        ASSERT_EQ(count_files(root), 2);
}

static void test_add_existing(void) {
        char root[PATH_MAX];
        EfiVars v;
        uint16_t id = 0xffff;

        make_root("existing", root);
        v = (EfiVars) { .root = root };
        /* Another OS on another disk, and the removable-media path on our very ESP: the same
         * partition but a different path is a different entry. */
        put_option(root, "Boot0000", "Windows Boot Manager", other_uuid(), "/EFI/Microsoft/Boot/bootmgfw.efi");
        put_option(root, "Boot0001", "UEFI OS", esp_uuid(), "/EFI/BOOT/BOOTX64.EFI");
        put_boot_order(root, (const uint16_t[]) { 1, 0 }, 2);

        ASSERT_OK(add_ours(root, &id));
        ASSERT_EQ(id, 2);
        check_our_entry(root, "Boot0002");
        check_boot_order(root, (const uint16_t[]) { 2, 1, 0 }, 3);

        /* Again: 0002 is reused, BootOrder gains no duplicate */
        id = 0xffff;
        ASSERT_OK(add_ours(root, &id));
        ASSERT_EQ(id, 2);
        check_our_entry(root, "Boot0002");
        check_boot_order(root, (const uint16_t[]) { 2, 1, 0 }, 3);
        ASSERT_EQ(count_files(root), 4);

        /* The same loader spelled with backslashes is the same entry. */
        ASSERT_OK(efi_add_boot_entry(&v, "Linux Boot Manager", 1, 2048, 1048576, esp_uuid(),
                                     "\\EFI\\systemd\\systemd-bootx64.efi", &id));
        ASSERT_EQ(id, 2);
        check_our_entry(root, "Boot0002");
        ASSERT_EQ(count_files(root), 4);

        /* Firmware moved us down and listed us twice: back to the front, once. */
        put_boot_order(root, (const uint16_t[]) { 1, 2, 0, 2 }, 4);
        ASSERT_OK(add_ours(root, &id));
        ASSERT_EQ(id, 2);
        check_boot_order(root, (const uint16_t[]) { 2, 1, 0 }, 3);

        /* Removal drops the variable and its BootOrder slot. */
        ASSERT_OK(efi_remove_boot_entry(&v, 2));
        ASSERT_FALSE(variable_exists(root, "Boot0002"));
        check_boot_order(root, (const uint16_t[]) { 1, 0 }, 2);
        error_clear();
        ASSERT_EQ(efi_remove_boot_entry(&v, 2), -ENOENT);
        ASSERT_CONTAINS(error_message(), "Boot0002");
        ASSERT_TRUE(variable_exists(root, "Boot0000"));
        ASSERT_TRUE(variable_exists(root, "Boot0001"));
}

static void test_add_reuses_identical(void) {
        char root[PATH_MAX];
        uint16_t id = 0xffff;
        bool immutable;
        EfiVars v;

        make_root("identical", root);
        put_option(root, "Boot0000", "Windows Boot Manager", other_uuid(), "/EFI/Microsoft/Boot/bootmgfw.efi");
        /* Our entry, written earlier under another name, its path upper-cased by firmware */
        put_option(root, "Boot0001", "Old Name", esp_uuid(), "/EFI/SYSTEMD/SYSTEMD-BOOTX64.EFI");
        put_option(root, "Boot0003", "UEFI Shell", other_uuid(), "/EFI/tools/shell.efi");
        put_boot_order(root, (const uint16_t[]) { 0, 3, 1, 1 }, 4);
        /* As efivarfs protects variables: both must be rewritten anyway, and stay protected. */
        immutable = set_immutable(root, "Boot0001", true) && set_immutable(root, "BootOrder", true);
        if (!immutable)
                fprintf(stderr, "test-efivars: cannot set FS_IMMUTABLE_FL here, skipping those checks\n");

        ASSERT_OK(add_ours(root, &id));
        ASSERT_EQ(id, 1);
        /* Rewritten with the current description and path */
        check_our_entry(root, "Boot0001");
        check_boot_order(root, (const uint16_t[]) { 1, 0, 3 }, 3);
        ASSERT_FALSE(variable_exists(root, "Boot0002"));
        ASSERT_EQ(count_files(root), 4);

        if (immutable) {
                ASSERT_TRUE(is_immutable(root, "Boot0001"));
                ASSERT_TRUE(is_immutable(root, "BootOrder"));

                /* Removal of an immutable entry */
                v = (EfiVars) { .root = root };
                ASSERT_OK(efi_remove_boot_entry(&v, 1));
                ASSERT_FALSE(variable_exists(root, "Boot0001"));
                check_boot_order(root, (const uint16_t[]) { 0, 3 }, 2);
                ASSERT_TRUE(is_immutable(root, "BootOrder"));
                ASSERT_TRUE(set_immutable(root, "BootOrder", false));
        }
}

static void test_add_fills_gap(void) {
        char root[PATH_MAX];
        uint16_t id = 0xffff;
        const char junk[] = "not a load option";

        make_root("gap", root);
        put_option(root, "Boot0000", "Windows Boot Manager", other_uuid(), "/EFI/Microsoft/Boot/bootmgfw.efi");
        /* Unparsable entries occupy their number but are otherwise ignored. */
        put_variable(root, "Boot0002", junk, sizeof(junk));
        /* Lower-case hex digits do not make a Boot#### name (UEFI §3.1.1): this copy of our entry is
         * neither reused nor counted. */
        put_option(root, "Boot000a", "Lower", esp_uuid(), LOADER);

        ASSERT_OK(add_ours(root, &id));
        ASSERT_EQ(id, 1);
        check_our_entry(root, "Boot0001");
        check_boot_order(root, (const uint16_t[]) { 1 }, 1);
}

static void test_errors(void) {
        char root[PATH_MAX], missing[PATH_MAX];
        EfiVars v;
        uint16_t *order = NULL, id = 0xffff;
        size_t n = 0;

        make_root("errors", root);
        v = (EfiVars) { .root = root };

        error_clear();
        ASSERT_EQ(efi_get_boot_order(&v, &order, &n), -ENOENT);
        ASSERT_CONTAINS(error_message(), "BootOrder");

        put_variable(root, "BootOrder", (const uint8_t[]) { 0x01, 0x00, 0x02 }, 3);
        error_clear();
        ASSERT_EQ(efi_get_boot_order(&v, &order, &n), -EBADMSG);
        ASSERT_TRUE(error_message());
        ASSERT_TRUE(order == NULL);

        /* An empty BootOrder is valid */
        put_variable(root, "BootOrder", NULL, 0);
        ASSERT_OK(efi_get_boot_order(&v, &order, &n));
        ASSERT_EQ(n, 0);
        free(order);

        snprintf(missing, sizeof(missing), "%s/nonexistent", tmpdir);
        v = (EfiVars) { .root = missing };
        error_clear();
        ASSERT_EQ(efi_add_boot_entry(&v, "Linux Boot Manager", 1, 2048, 1048576, esp_uuid(), LOADER, &id), -ENOENT);
        ASSERT_CONTAINS(error_message(), "efivarfs");
        ASSERT_EQ(id, 0xffff);

        /* Invalid input fails before anything is touched */
        v = (EfiVars) { .root = root };
        ASSERT_EQ(efi_add_boot_entry(&v, "Linux Boot Manager", 0, 2048, 1048576, esp_uuid(), LOADER, &id), -EINVAL);
        ASSERT_EQ(count_files(root), 1);
}

/* Generic variables and the recovery entry's variables (recovery-entry.h). Names carry their own
 * vendor GUID; the expected bytes are UTF-16LE written out by hand. */
#define LOADER_GUID "-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
#define SYSTEMD_GUID "-8cf2644b-4b0b-428f-9387-6d876050dc67"

static void put_raw(const char *root, const char *name, const void *data, size_t size) {
        char p[2 * PATH_MAX];
        uint8_t *buf;
        FILE *f;

        snprintf(p, sizeof(p), "%s/%s", root, name);
        buf = malloc(4 + size);
        ASSERT_TRUE(buf);
        memcpy(buf, (const uint8_t[]) { 0x07, 0x00, 0x00, 0x00 }, 4);
        if (size > 0)
                memcpy(buf + 4, data, size);
        f = fopen(p, "we");
        ASSERT_TRUE(f);
        ASSERT_EQ(fwrite(buf, 1, 4 + size, f), 4 + size);
        ASSERT_EQ(fclose(f), 0);
        free(buf);
}

/* An ASCII string as sd-boot and systemd's efi_set_variable_string() store it: UTF-16LE + NUL. */
static void put_string(const char *root, const char *name, const char *ascii) {
        size_t n = strlen(ascii);
        uint8_t *buf = calloc(n + 1, 2);

        ASSERT_TRUE(buf);
        for (size_t i = 0; i < n; i++)
                buf[2 * i] = (uint8_t) ascii[i];
        put_raw(root, name, buf, (n + 1) * 2);
        free(buf);
}

static uint8_t *get_raw(const char *root, const char *name, size_t *ret_size) {
        char p[2 * PATH_MAX], *buf;

        snprintf(p, sizeof(p), "%s/%s", root, name);
        ASSERT_OK(read_full_file(p, &buf, ret_size));
        return (uint8_t *) buf;
}

static bool exists_raw(const char *root, const char *name) {
        char p[2 * PATH_MAX];

        snprintf(p, sizeof(p), "%s/%s", root, name);
        return access(p, F_OK) >= 0;
}

/* Sets FS_IMMUTABLE_FL as efivarfs does on most variables; false where the filesystem or the
 * privileges do not allow it. */
static bool make_immutable(const char *root, const char *name) {
        char p[2 * PATH_MAX];
        int fd, flags;
        bool ok = false;

        snprintf(p, sizeof(p), "%s/%s", root, name);
        fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        ASSERT_TRUE(fd >= 0);
        if (ioctl(fd, FS_IOC_GETFLAGS, &flags) >= 0) {
                flags |= FS_IMMUTABLE_FL;
                ok = ioctl(fd, FS_IOC_SETFLAGS, &flags) >= 0;
        }
        close(fd);
        return ok;
}

static void test_generic_variables(void) {
        char root[PATH_MAX];
        EfiVars v;
        uint8_t *raw;
        void *data;
        char *s;
        size_t size;

        make_root("generic", root);
        v = (EfiVars) { .root = root };

        /* Missing: -ENOENT for get, nothing to do for delete. */
        ASSERT_EQ(efi_get_variable(&v, "Foo" SYSTEMD_GUID, &data, &size), -ENOENT);
        ASSERT_EQ(efi_get_variable_string(&v, "Foo" SYSTEMD_GUID, &s), -ENOENT);
        error_clear();
        ASSERT_OK(efi_delete_variable(&v, "Foo" SYSTEMD_GUID));

        /* Set: attributes 07 00 00 00 (non-volatile, boot service, runtime), then the data. */
        ASSERT_OK(efi_set_variable(&v, "Foo" SYSTEMD_GUID, "\x01\x02\x03", 3));
        raw = get_raw(root, "Foo" SYSTEMD_GUID, &size);
        ASSERT_EQ(size, 7);
        ASSERT_TRUE(memcmp(raw, "\x07\x00\x00\x00\x01\x02\x03", 7) == 0);
        free(raw);
        ASSERT_OK(efi_get_variable(&v, "Foo" SYSTEMD_GUID, &data, &size));
        ASSERT_EQ(size, 3);
        ASSERT_TRUE(memcmp(data, "\x01\x02\x03", 3) == 0);
        free(data);

        /* A shorter value leaves no tail of the old one (ordinary files are not efivarfs). */
        ASSERT_OK(efi_set_variable(&v, "Foo" SYSTEMD_GUID, "\x09", 1));
        raw = get_raw(root, "Foo" SYSTEMD_GUID, &size);
        ASSERT_EQ(size, 5);
        ASSERT_EQ(raw[4], 0x09);
        free(raw);

        /* Strings: "ab\u00e9" is 61 00 62 00 e9 00 00 00; one outside the BMP is a surrogate pair. */
        ASSERT_OK(efi_set_variable_string(&v, "Str" LOADER_GUID, "ab\xc3\xa9"));
        raw = get_raw(root, "Str" LOADER_GUID, &size);
        ASSERT_EQ(size, 12);
        ASSERT_TRUE(memcmp(raw, "\x07\x00\x00\x00" "a\0b\0\xe9\0\0\0", 12) == 0);
        free(raw);
        ASSERT_OK(efi_get_variable_string(&v, "Str" LOADER_GUID, &s));
        ASSERT_STREQ(s, "ab\xc3\xa9");
        free(s);
        ASSERT_OK(efi_set_variable_string(&v, "Str" LOADER_GUID, "\xf0\x9f\x90\xa7"));
        raw = get_raw(root, "Str" LOADER_GUID, &size);
        ASSERT_EQ(size, 10);
        ASSERT_TRUE(memcmp(raw + 4, "\x3d\xd8\x27\xdc\0\0", 6) == 0);
        free(raw);
        ASSERT_OK(efi_get_variable_string(&v, "Str" LOADER_GUID, &s));
        ASSERT_STREQ(s, "\xf0\x9f\x90\xa7");
        free(s);

        /* Written without the NUL: still read. An odd size is not UTF-16. The empty string is
         * just the NUL. */
        put_raw(root, "NoNul" LOADER_GUID, "x\0y\0", 4);
        ASSERT_OK(efi_get_variable_string(&v, "NoNul" LOADER_GUID, &s));
        ASSERT_STREQ(s, "xy");
        free(s);
        put_raw(root, "Odd" LOADER_GUID, "x\0y", 3);
        ASSERT_EQ(efi_get_variable_string(&v, "Odd" LOADER_GUID, &s), -EBADMSG);
        ASSERT_CONTAINS(error_message(), "odd size");
        error_clear();
        ASSERT_OK(efi_set_variable_string(&v, "Empty" LOADER_GUID, ""));
        raw = get_raw(root, "Empty" LOADER_GUID, &size);
        ASSERT_EQ(size, 6);
        free(raw);
        ASSERT_OK(efi_get_variable_string(&v, "Empty" LOADER_GUID, &s));
        ASSERT_STREQ(s, "");
        free(s);

        /* Delete, also an immutable variable (efivarfs marks most of them so). */
        if (!make_immutable(root, "Foo" SYSTEMD_GUID))
                printf("test-efivars: no immutable flag here, deleting a plain file\n");
        ASSERT_OK(efi_delete_variable(&v, "Foo" SYSTEMD_GUID));
        ASSERT_FALSE(exists_raw(root, "Foo" SYSTEMD_GUID));

        /* Bad names and values fail before anything is written. */
        ASSERT_EQ(efi_set_variable(&v, "Foo", "x", 1), -EINVAL);
        ASSERT_EQ(efi_set_variable(&v, "../Foo" SYSTEMD_GUID, "x", 1), -EINVAL);
        ASSERT_EQ(efi_set_variable(&v, "Foo-not-a-guid-at-all-0123456789abcdef", "x", 1), -EINVAL);
        ASSERT_EQ(efi_set_variable(&v, "Foo" SYSTEMD_GUID, "", 0), -EINVAL);
        ASSERT_EQ(efi_set_variable_string(&v, "Foo" SYSTEMD_GUID, "bad \xff"), -EINVAL);
        ASSERT_EQ(efi_delete_variable(&v, "a/b" SYSTEMD_GUID), -EINVAL);
        error_clear();
        ASSERT_FALSE(exists_raw(root, "Foo" SYSTEMD_GUID));
        ASSERT_EQ(count_files(root), 4);
}

static void test_recovery_request(void) {
        char root[PATH_MAX];
        EfiVars v;
        char *d;

        make_root("request", root);
        v = (EfiVars) { .root = root };

        /* None. */
        ASSERT_EQ(recovery_request_pending(&v, &d), 0);
        ASSERT_TRUE(!d);
        ASSERT_OK(recovery_request_clear(&v));

        /* systemd ≥ 258: what "systemd-factory-reset request" writes (factory-reset-tool.c). */
        put_string(root, "FactoryResetRequest" SYSTEMD_GUID,
                   "{\"osReleaseId\":\"debian\",\"osReleaseVersionId\":\"13\",\"osReleaseImageId\":\"fakeos\","
                   "\"osReleaseImageVersion\":\"7\",\"bootId\":\"0f3c5e6a9d6b4c1e8b2a7c9d0e1f2a3b\"}");
        ASSERT_EQ(recovery_request_pending(&v, &d), 1);
        ASSERT_STREQ(d, "FactoryResetRequest from debian 13 (fakeos 7), boot 0f3c5e6a");
        free(d);
        ASSERT_EQ(recovery_request_pending(&v, NULL), 1);

        /* Unparsable JSON is still a request. */
        put_string(root, "FactoryResetRequest" SYSTEMD_GUID, "not json");
        ASSERT_EQ(recovery_request_pending(&v, &d), 1);
        ASSERT_STREQ(d, "FactoryResetRequest");
        free(d);

        /* Clearing removes both. */
        put_string(root, "FactoryReset" SYSTEMD_GUID, "yes");
        ASSERT_OK(recovery_request_clear(&v));
        ASSERT_FALSE(exists_raw(root, "FactoryResetRequest" SYSTEMD_GUID));
        ASSERT_FALSE(exists_raw(root, "FactoryReset" SYSTEMD_GUID));
        ASSERT_EQ(recovery_request_pending(&v, &d), 0);

        /* The older boolean of systemd-repart (v252–v257). */
        put_string(root, "FactoryReset" SYSTEMD_GUID, "1");
        ASSERT_EQ(recovery_request_pending(&v, &d), 1);
        ASSERT_STREQ(d, "FactoryReset EFI variable");
        free(d);
        put_string(root, "FactoryReset" SYSTEMD_GUID, "false");
        ASSERT_EQ(recovery_request_pending(&v, &d), 0);
        put_string(root, "FactoryReset" SYSTEMD_GUID, "maybe");
        ASSERT_EQ(recovery_request_pending(&v, &d), 0);
        /* Not UTF-16 at all: no request. */
        put_raw(root, "FactoryReset" SYSTEMD_GUID, "1", 1);
        ASSERT_EQ(recovery_request_pending(&v, &d), 0);
        ASSERT_OK(recovery_request_clear(&v));
        ASSERT_EQ(count_files(root), 0);

        /* Other variables are not touched by clearing. */
        put_string(root, "LoaderEntryDefault" LOADER_GUID, "fakeos_7.efi");
        ASSERT_OK(recovery_request_clear(&v));
        ASSERT_EQ(count_files(root), 1);
}

static void check_loader_default(const char *root, const char *want) {
        EfiVars v = { .root = root };
        uint8_t *raw;
        size_t size, n = strlen(want);
        char *s;

        ASSERT_OK(efi_get_variable_string(&v, "LoaderEntryDefault" LOADER_GUID, &s));
        ASSERT_STREQ(s, want);
        free(s);
        raw = get_raw(root, "LoaderEntryDefault" LOADER_GUID, &size);
        ASSERT_EQ(size, 4 + 2 * (n + 1));
        ASSERT_TRUE(memcmp(raw, (const uint8_t[]) { 0x07, 0x00, 0x00, 0x00 }, 4) == 0);
        for (size_t i = 0; i < n; i++) {
                ASSERT_EQ(raw[4 + 2 * i], (uint8_t) want[i]);
                ASSERT_EQ(raw[5 + 2 * i], 0);
        }
        ASSERT_EQ(raw[4 + 2 * n], 0);
        ASSERT_EQ(raw[5 + 2 * n], 0);
        free(raw);
}

static void test_recovery_redirect(void) {
        char root[PATH_MAX];
        EfiVars v;
        char *prev, *again;

        /* No default set (imprint's installs use loader.conf): redirect, then remove again. */
        make_root("redirect", root);
        v = (EfiVars) { .root = root };
        ASSERT_OK(recovery_redirect_boot(&v, &prev));
        ASSERT_TRUE(!prev);
        check_loader_default(root, "imprint-recovery.efi");
        ASSERT_OK(recovery_redirect_restore(&v, prev));
        ASSERT_FALSE(exists_raw(root, "LoaderEntryDefault" LOADER_GUID));

        /* bootctl set-default fakeos_7.efi before: it comes back. */
        put_string(root, "LoaderEntryDefault" LOADER_GUID, "fakeos_7.efi");
        ASSERT_OK(recovery_redirect_boot(&v, &prev));
        ASSERT_STREQ(prev, "fakeos_7.efi");
        check_loader_default(root, "imprint-recovery.efi");

        /* A reset cut off and resumed: the second redirect sees its own value and reports none. */
        ASSERT_OK(recovery_redirect_boot(&v, &again));
        ASSERT_TRUE(!again);
        check_loader_default(root, "imprint-recovery.efi");

        ASSERT_OK(recovery_redirect_restore(&v, prev));
        check_loader_default(root, "fakeos_7.efi");
        free(prev);

        /* Restoring "none" leaves someone else's default alone. */
        put_string(root, "LoaderEntryDefault" LOADER_GUID, "other.conf");
        ASSERT_OK(recovery_redirect_restore(&v, NULL));
        check_loader_default(root, "other.conf");

        /* No efivarfs: a sentence, not a crash. */
        v = (EfiVars) { .root = "/nonexistent/efivars" };
        ASSERT_EQ(recovery_redirect_boot(&v, &prev), -ENOENT);
        ASSERT_CONTAINS(error_message(), "efivarfs");
        error_clear();
}

static void check_link(const char *root, const char *path, const char *want) {
        char p[2 * PATH_MAX], link[PATH_MAX];
        ssize_t n;

        snprintf(p, sizeof(p), "%s%s", root, path);
        n = readlink(p, link, sizeof(link) - 1);
        ASSERT_TRUE(n > 0);
        link[n] = 0;
        ASSERT_STREQ(link, want);
}

static void test_recovery_hook(void) {
        char root[PATH_MAX], p[2 * PATH_MAX];
        char *text;
        size_t size;

        /* A usr image's root: empty. A second run (a reinstall) replaces the files. */
        make_root("hook-root", root);
        for (int round = 0; round < 2; round++) {
                ASSERT_OK(recovery_entry_write_request_hook(root));

                snprintf(p, sizeof(p), "%s/etc/systemd/system/imprint-factory-reset.service", root);
                ASSERT_OK(read_full_file(p, &text, &size));
                ASSERT_CONTAINS(text, "\nExecStart=bootctl set-oneshot imprint-recovery.efi\n");
                ASSERT_CONTAINS(text, "\nWantedBy=factory-reset.target\n");
                ASSERT_CONTAINS(text, "\nBefore=factory-reset.target shutdown.target\n");
                free(text);
                snprintf(p, sizeof(p), "%s/etc/systemd/system/imprint-factory-reset-reboot.service", root);
                ASSERT_OK(read_full_file(p, &text, &size));
                ASSERT_CONTAINS(text, "\nConditionPathExists=!/usr/lib/systemd/system/systemd-factory-reset-reboot.service\n");
                ASSERT_CONTAINS(text, "\nExecStart=systemctl --no-block reboot --boot-loader-entry=imprint-recovery.efi\n");
                ASSERT_CONTAINS(text, "\nAfter=imprint-factory-reset.service factory-reset.target\n");
                free(text);

                check_link(root, "/etc/systemd/system/factory-reset.target.wants/imprint-factory-reset.service",
                           "../imprint-factory-reset.service");
                check_link(root, "/etc/systemd/system/factory-reset.target.wants/imprint-factory-reset-reboot.service",
                           "../imprint-factory-reset-reboot.service");
        }

        /* No root: a sentence. */
        ASSERT_TRUE(recovery_entry_write_request_hook("/nonexistent/root") < 0);
        ASSERT_CONTAINS(error_message(), "/etc");
        error_clear();
}

static void test_tpm_clear(void) {
        /* Only where there is no PPI: a machine with one would really be asked to clear its TPM. */
        if (access("/sys/class/tpm/tpm0/ppi/request", F_OK) >= 0) {
                printf("test-efivars: this machine has a TPM PPI; not asking it to clear the TPM\n");
                return;
        }
        ASSERT_EQ(recovery_request_tpm_clear(), -EOPNOTSUPP);
        ASSERT_CONTAINS(error_message(), "/sys/class/tpm/tpm0/ppi/request");
        error_clear();
}

int main(void) {
        log_set_max_level(LOG_WARNING);

        ASSERT_TRUE(mkdtemp(tmpdir));

        test_make_exact_bytes();
        test_make_rejects();
        test_parse_round_trip();
        test_parse_split_path_and_optional_data();
        test_parse_malformed();
        test_add_empty();
        test_add_existing();
        test_add_reuses_identical();
        test_add_fills_gap();
        test_errors();
        test_generic_variables();
        test_recovery_request();
        test_recovery_redirect();
        test_recovery_hook();
        test_tpm_clear();

        /* Only checks that the call works; the answer depends on the machine. */
        (void) efi_booted();

        ASSERT_OK(nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS));
        printf("test-efivars: all tests passed\n");
        return 0;
}
