/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The recovery entry's UKI: recovery_entry_find() (IMPRINT_RECOVERY_UKI, missing, not a UKI) and
 * recovery_entry_install() into a FAT filesystem inside an image file, read back with mtools
 * (mtype), not with the code under test. The UKIs are made with objcopy from this host's
 * systemd-stub, as systemd-stub(7) describes (tests/integration/make-fake-ddi.sh does the same). */

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
#include "log.h"
#include "recovery-entry.h"
#include "tests.h"

#define STUB "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

static char tmpdir[] = "/tmp/test-recovery-entry.XXXXXX";

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void run(const char *cmd) {
        int r = system(cmd);

        if (r != 0)
                FAIL("\"%s\" failed (%d)", cmd, r);
}

/* A UKI sd-boot lists: systemd-stub with .osrel, .cmdline and a fake .linux whose bytes depend on
 * version, so two versions differ. */
static void make_uki(const char *out, int version) {
        char cmd[4 * PATH_MAX];
        FILE *f;

        snprintf(cmd, sizeof(cmd), "%s/os-release", tmpdir);
        f = fopen(cmd, "we");
        ASSERT_TRUE(f);
        fprintf(f, "NAME=\"imprint recovery\"\nID=imprint-recovery\nIMAGE_ID=imprint-recovery\nIMAGE_VERSION=%d\n", version);
        ASSERT_EQ(fclose(f), 0);
        snprintf(cmd, sizeof(cmd), "%s/linux", tmpdir);
        f = fopen(cmd, "we");
        ASSERT_TRUE(f);
        for (int i = 0; i < 65536; i++)
                fputc((i * 7 + version) & 0xff, f);
        ASSERT_EQ(fclose(f), 0);
        snprintf(cmd, sizeof(cmd), "printf 'imprint.recovery=1' >%s/cmdline", tmpdir);
        run(cmd);
        snprintf(cmd, sizeof(cmd),
                 "objcopy --add-section .osrel=%1$s/os-release --change-section-vma .osrel=0x20000 "
                 "--add-section .cmdline=%1$s/cmdline --change-section-vma .cmdline=0x30000 "
                 "--add-section .linux=%1$s/linux --change-section-vma .linux=0x2000000 " STUB " %2$s",
                 tmpdir, out);
        run(cmd);
}

static uint64_t file_size(const char *path) {
        struct stat st;

        ASSERT_TRUE(stat(path, &st) >= 0);
        return (uint64_t) st.st_size;
}

static void test_find(void) {
        char uki[PATH_MAX], bogus[PATH_MAX], missing[PATH_MAX];
        char *path;
        uint64_t size;
        FILE *f;

        snprintf(uki, sizeof(uki), "%s/recovery.efi", tmpdir);
        snprintf(bogus, sizeof(bogus), "%s/bogus.efi", tmpdir);
        snprintf(missing, sizeof(missing), "%s/missing.efi", tmpdir);
        make_uki(uki, 1);

        /* The override, found: its path and size. */
        ASSERT_OK(setenv(RECOVERY_UKI_ENV, uki, 1));
        ASSERT_STREQ(recovery_entry_search_path(), uki);
        ASSERT_EQ(recovery_entry_find(&path, &size), 1);
        ASSERT_STREQ(path, uki);
        ASSERT_EQ(size, file_size(uki));
        free(path);

        /* Missing: none, no error (the plan says why, with recovery_entry_search_path()). */
        ASSERT_OK(setenv(RECOVERY_UKI_ENV, missing, 1));
        ASSERT_EQ(recovery_entry_find(&path, &size), 0);
        ASSERT_TRUE(!path);
        ASSERT_EQ(size, 0);
        ASSERT_STREQ(recovery_entry_search_path(), missing);

        /* Not a UKI, a PE without .linux, a directory, an empty file: refused by name. */
        f = fopen(bogus, "we");
        ASSERT_TRUE(f);
        fputs("not a PE file\n", f);
        ASSERT_EQ(fclose(f), 0);
        ASSERT_OK(setenv(RECOVERY_UKI_ENV, bogus, 1));
        ASSERT_EQ(recovery_entry_find(&path, &size), -EBADMSG);
        ASSERT_CONTAINS(error_message(), "bogus.efi");
        error_clear();

        ASSERT_OK(setenv(RECOVERY_UKI_ENV, STUB, 1));
        ASSERT_EQ(recovery_entry_find(&path, &size), -EBADMSG);
        ASSERT_CONTAINS(error_message(), "not a unified kernel image");
        error_clear();

        ASSERT_OK(setenv(RECOVERY_UKI_ENV, tmpdir, 1));
        ASSERT_EQ(recovery_entry_find(&path, &size), -EINVAL);
        ASSERT_CONTAINS(error_message(), "not a regular file");
        error_clear();

        f = fopen(bogus, "we");
        ASSERT_TRUE(f);
        ASSERT_EQ(fclose(f), 0);
        ASSERT_OK(setenv(RECOVERY_UKI_ENV, bogus, 1));
        ASSERT_EQ(recovery_entry_find(&path, &size), -EBADMSG);
        error_clear();

        /* Unset (or empty): the live medium's path. */
        ASSERT_OK(setenv(RECOVERY_UKI_ENV, "", 1));
        ASSERT_STREQ(recovery_entry_search_path(), RECOVERY_UKI_PATH);
        ASSERT_OK(unsetenv(RECOVERY_UKI_ENV));
        ASSERT_STREQ(recovery_entry_search_path(), RECOVERY_UKI_PATH);
}

/* mtype's copy of /EFI/Linux/imprint-recovery.efi equals want (cmp). */
static void check_on_fat(const char *fat, const char *want) {
        char cmd[4 * PATH_MAX];

        snprintf(cmd, sizeof(cmd), "MTOOLS_SKIP_CHECK=1 mtype -i %s ::/EFI/Linux/imprint-recovery.efi | cmp -s - %s", fat, want);
        run(cmd);
}

static void test_install(void) {
        char fat[PATH_MAX], uki1[PATH_MAX], uki2[PATH_MAX], cmd[4 * PATH_MAX];
        FsLocation boot;

        snprintf(fat, sizeof(fat), "%s/esp.img", tmpdir);
        snprintf(uki1, sizeof(uki1), "%s/recovery-1.efi", tmpdir);
        snprintf(uki2, sizeof(uki2), "%s/recovery-2.efi", tmpdir);
        make_uki(uki1, 1);
        make_uki(uki2, 2);
        snprintf(cmd, sizeof(cmd), "cmp -s %s %s", uki1, uki2);
        ASSERT_TRUE(system(cmd) != 0);

        /* An empty FAT filesystem, as a fresh ESP: /EFI/Linux is created. */
        snprintf(cmd, sizeof(cmd), "truncate -s 64M %1$s && mkfs.vfat -F 32 %1$s >/dev/null 2>&1 || mkfs.vfat %1$s >/dev/null", fat);
        run(cmd);
        boot = (FsLocation) { .disk = fat, .offset = 0, .fstype = "vfat" };
        ASSERT_OK(recovery_entry_install(&boot, uki1));
        check_on_fat(fat, uki1);

        /* A reinstall from a newer medium replaces it. */
        ASSERT_OK(recovery_entry_install(&boot, uki2));
        check_on_fat(fat, uki2);
        snprintf(cmd, sizeof(cmd), "[ \"$(MTOOLS_SKIP_CHECK=1 mdir -/ -b -i %s ::/ | grep -ci imprint-recovery)\" = 1 ]", fat);
        run(cmd);

        /* A UKI that went away: a sentence naming it, nothing written. */
        snprintf(cmd, sizeof(cmd), "%s/gone.efi", tmpdir);
        ASSERT_EQ(recovery_entry_install(&boot, cmd), -ENOENT);
        ASSERT_CONTAINS(error_message(), "gone.efi");
        error_clear();
        check_on_fat(fat, uki2);

        /* Not FAT: refused. */
        boot.fstype = "ext4";
        ASSERT_TRUE(recovery_entry_install(&boot, uki1) < 0);
        error_clear();
}

int main(void) {
        log_set_max_level(LOG_WARNING);
        /* mkfs.vfat lives in sbin. */
        {
                char path[4096];

                snprintf(path, sizeof(path), "%s:/usr/sbin:/sbin", getenv("PATH") ?: "/usr/bin:/bin");
                ASSERT_OK(setenv("PATH", path, 1));
        }

        if (access(STUB, R_OK) < 0 || system("command -v objcopy >/dev/null && command -v mtype >/dev/null && command -v mkfs.vfat >/dev/null") != 0)
                FAIL("needs " STUB " (systemd-boot-efi), objcopy (binutils), mtools and mkfs.vfat (dosfstools)");
        ASSERT_TRUE(mkdtemp(tmpdir));

        test_find();
        test_install();

        ASSERT_OK(nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS));
        printf("test-recovery-entry: all tests passed\n");
        return 0;
}
