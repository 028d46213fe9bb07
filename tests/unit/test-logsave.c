/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Saving the log to a removable disk (src/engine/logsave.c).
 *
 * Without arguments: the unit checks (no root): which filesystems can take the log, and the
 * refusals that need no disk.
 *
 * With arguments it is the engine's entry points as a command, for tests/integration/
 * test-log-save.sh, which runs it against loop devices as root:
 *   test-logsave save LOG NODE [EXCLUDE]   log_save_to_partition()
 *   test-logsave removable LOG [EXCLUDE]   log_save_to_removable()
 * On success it prints where the log went; on failure "ERRNONAME: sentence" on stderr, exit 1. */

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "logsave.h"
#include "tests.h"

static void test_fstype_choice(void) {
        static const char *const yes[] = { "vfat", "exfat", "ext2", "ext3", "ext4", "btrfs", "xfs" };
        static const char *const no[] = { "swap", "crypto_LUKS", "ntfs", "iso9660", "squashfs", "erofs", "LVM2_member",
                                          "linux_raid_member", "zfs_member", "", "EXT4", "vfat ", "ext" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (!log_fstype_can_take_file(yes[i]))
                        FAIL("%s should take the log", yes[i]);
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (log_fstype_can_take_file(no[i]))
                        FAIL("\"%s\" should not take the log", no[i]);
        ASSERT_FALSE(log_fstype_can_take_file(NULL));
}

static void test_refusals_without_disks(void) {
        char file[] = "/tmp/test-logsave.XXXXXX";
        char *where = NULL;
        int fd;

        fd = mkstemp(file);
        ASSERT_TRUE(fd >= 0);
        close(fd);

        /* A regular file is no place for the log (nor is a directory). */
        ASSERT_EQ(log_save_to_partition(file, file, NULL, &where), -ENOTBLK);
        ASSERT_CONTAINS(error_message(), "is not a disk or partition");
        ASSERT_EQ(log_save_to_partition(file, "/tmp", NULL, &where), -ENOTBLK);
        ASSERT_EQ(log_save_to_partition(file, "/nonexistent/sdz9", NULL, &where), -ENOENT);
        ASSERT_CONTAINS(error_message(), "/nonexistent/sdz9");
        ASSERT_EQ(log_save_to_partition(NULL, "/dev/null", NULL, &where), -EINVAL);
        ASSERT_EQ(log_save_to_partition(file, "/dev/null", NULL, NULL), -EINVAL);
        ASSERT_TRUE(where == NULL);
        unlink(file);
}

static int report(int r, char **where) {
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", strerrorname_np(-r) ?: "?", error_message() ?: strerror(-r));
                return 1;
        }
        printf("%s\n", *where);
        free(*where);
        return 0;
}

int main(int argc, char *argv[]) {
        char *where = NULL;
        int r;

        if (argc >= 4 && streq(argv[1], "save")) {
                r = log_save_to_partition(argv[2], argv[3], argc > 4 ? argv[4] : NULL, &where);
                return report(r, &where);
        }
        if (argc >= 3 && streq(argv[1], "removable")) {
                r = log_save_to_removable(argv[2], argc > 3 ? argv[3] : NULL, &where);
                return report(r, &where);
        }
        if (argc > 1) {
                fprintf(stderr, "usage: %s [save LOG NODE [EXCLUDE] | removable LOG [EXCLUDE]]\n", argv[0]);
                return 2;
        }

        test_fstype_choice();
        test_refusals_without_disks();
        printf("test-logsave: ok\n");
        return 0;
}
