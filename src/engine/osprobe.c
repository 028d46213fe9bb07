/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "error.h"
#include "fileio.h"
#include "fsread.h"
#include "i18n.h"
#include "log.h"
#include "osprobe.h"
#include "run.h"

static int partition_tool_path(const Disk *disk, const DiskPartition *part, const char *separator, char **ret) {
        /* Without udev a freshly created partition may not have a node yet; the whole disk with an
         * offset reads the same bytes. */
        return fs_tool_path(&(FsLocation) { .disk = disk->path, .node = part->node, .offset = part->start }, separator, ret);
}

/* PRETTY_NAME, else "NAME VERSION", else NAME (os-release(5) says PRETTY_NAME may be absent). */
static char *os_release_describe(const char *buf) {
        _cleanup_(freep) char *pretty = NULL, *name = NULL, *version = NULL;
        char *s;

        pretty = env_file_get(buf, "PRETTY_NAME");
        if (!isempty(pretty))
                return TAKE_PTR(pretty);

        name = env_file_get(buf, "NAME");
        if (isempty(name))
                return NULL;
        version = env_file_get(buf, "VERSION");
        if (isempty(version))
                return TAKE_PTR(name);
        if (asprintf(&s, "%s %s", name, version) < 0)
                return NULL;
        return s;
}

static int probe_ext(const Disk *disk, const DiskPartition *part, char **ret) {
        /* /etc/os-release is usually a relative symlink, which debugfs's "cat" does not follow (it
         * prints nothing), hence the real file next. A separate /usr partition holds it at
         * /lib/os-release. */
        static const char *const files[] = { "/etc/os-release", "/usr/lib/os-release", "/lib/os-release" };
        _cleanup_(freep) char *path = NULL;
        int r;

        if (!find_executable("debugfs")) {
                log_debug("debugfs not found, not looking inside %s partition %u.", disk->name, part->partno);
                *ret = NULL;
                return 0;
        }

        r = partition_tool_path(disk, part, "?offset=", &path);
        if (r < 0)
                return r;
        if (!path) {
                *ret = NULL;
                return 0;
        }

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_(freep) char *cmd = NULL, *out = NULL;
                char *description;

                if (asprintf(&cmd, "cat %s", files[i]) < 0) {
                        cmd = NULL;
                        return -ENOMEM;
                }

                /* -c: catastrophic mode skips reading the bitmaps, which we do not need and which
                 * take long on big filesystems. debugfs never writes without -w. */
                char *argv[] = { (char *) "debugfs", (char *) "-c", (char *) "-R", cmd, path, NULL };
                r = run_command(argv, &(RunOptions) { .keep_fd = -1, .ret_stdout = &out, .quiet_stderr = true });
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        /* The filesystem cannot be opened: other files will not fare better. */
                        log_debug_errno(r, "debugfs cannot read %s: %s", path, error_message() ?: "failed");
                        break;
                }

                description = os_release_describe(out);
                if (description) {
                        *ret = description;
                        return 0;
                }
        }

        *ret = NULL;
        return 0;
}

/* Whether the listing holds a GRUB or shim binary below EFI/<dir>/: distribution directories
 * carry grubx64.efi or shimx64.efi, while firmware vendors' directories (Dell, HP, …) hold update
 * capsules that are no boot loader. */
static bool listing_has_grub(const char *listing, const char *dir, size_t dir_len) {
        for (const char *l = listing; l && *l;) {
                const char *eol = strchrnul(l, '\n');
                const char *p = l;

                if ((size_t) (eol - p) > 7 + dir_len + 1 && strncasecmp(p, "::/EFI/", 7) == 0 &&
                    strncasecmp(p + 7, dir, dir_len) == 0 && p[7 + dir_len] == '/' && eol[-1] != '/') {
                        const char *base = eol;
                        while (base > p && base[-1] != '/')
                                base--;
                        if (strncasecmp(base, "grub", 4) == 0 || strncasecmp(base, "shim", 4) == 0)
                                return true;
                }
                l = *eol ? eol + 1 : eol;
        }
        return false;
}

/* The boot loaders found in EFI/<dir> of an ESP, in the order the listing shows them. */
typedef struct Loaders {
        char **v;
        size_t n;
} Loaders;

static void loaders_done(Loaders *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        free(l->v);
        *l = (Loaders) {};
}

static int loaders_add(Loaders *l, const char *what) {
        char **v;

        for (size_t i = 0; i < l->n; i++)
                if (streq(l->v[i], what))
                        return 0;

        v = realloc(l->v, (l->n + 1) * sizeof(char *));
        if (!v)
                return -ENOMEM;
        l->v = v;
        v[l->n] = strdup(what);
        if (!v[l->n])
                return -ENOMEM;
        l->n++;
        return 0;
}

static int loader_from_dir(const char *listing, const char *dir, size_t len, Loaders *l) {
        _cleanup_(freep) char *name = strndup(dir, len), *grub = NULL;

        if (!name)
                return -ENOMEM;
        if (strcasecmp(name, "Microsoft") == 0)
                return loaders_add(l, "Windows Boot Manager");
        if (strcasecmp(name, "systemd") == 0)
                return loaders_add(l, "systemd-boot");
        if (strcasecmp(name, "refind") == 0)
                return loaders_add(l, "rEFInd");
        /* The removable-media fallback and the UKI directory belong to whichever loader is listed
         * beside them. */
        if (strcasecmp(name, "BOOT") == 0 || strcasecmp(name, "Linux") == 0)
                return 0;
        if (!listing_has_grub(listing, dir, len))
                return 0;
        if (asprintf(&grub, "GRUB (%s)", name) < 0) {
                grub = NULL;
                return -ENOMEM;
        }
        return loaders_add(l, grub);
}

static int probe_esp(const Disk *disk, const DiskPartition *part, char **ret) {
        _cleanup_(loaders_done) Loaders loaders = {};
        _cleanup_(freep) char *path = NULL, *out = NULL;
        char *joined = NULL;
        int r;

        if (!find_executable("mdir")) {
                log_debug("mdir (mtools) not found, not looking inside %s partition %u.", disk->name, part->partno);
                *ret = NULL;
                return 0;
        }

        /* mtools refuses FAT filesystems whose geometry fields look odd unless told not to check;
         * ESPs written by firmware tools often do. Children inherit our environment. */
        if (setenv("MTOOLS_SKIP_CHECK", "1", 1) < 0)
                return -errno;

        r = partition_tool_path(disk, part, "@@", &path);
        if (r < 0)
                return r;
        if (!path) {
                *ret = NULL;
                return 0;
        }

        /* -/: recursive, -b: bare "::/EFI/debian/shimx64.efi" lines, directories end in "/". */
        char *argv[] = { (char *) "mdir", (char *) "-/", (char *) "-b", (char *) "-i", path, (char *) "::/EFI", NULL };
        r = run_command(argv, &(RunOptions) { .keep_fd = -1, .ret_stdout = &out, .quiet_stderr = true });
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                log_debug_errno(r, "No EFI directory readable on %s: %s", path, error_message() ?: "failed");
                *ret = NULL;
                return 0;
        }

        for (const char *l = out; *l;) {
                const char *eol = strchrnul(l, '\n');
                const char *dir = l + 7;

                /* Only the top-level directories, "::/EFI/<dir>/", name a loader. */
                if (eol - l > 8 && strncasecmp(l, "::/EFI/", 7) == 0 && eol[-1] == '/' &&
                    memchr(dir, '/', (size_t) (eol - dir)) == eol - 1) {
                        r = loader_from_dir(out, dir, (size_t) (eol - 1 - dir), &loaders);
                        if (r < 0)
                                return r;
                }
                l = *eol ? eol + 1 : eol;
        }

        for (size_t i = 0; i < loaders.n; i++) {
                if (i > 0 && !(joined = strjoin_free(joined, ", ")))
                        return -ENOMEM;
                if (!(joined = strjoin_free(joined, loaders.v[i])))
                        return -ENOMEM;
        }
        *ret = joined;
        return 0;
}

int osprobe_partition(const Disk *disk, const DiskPartition *part, char **ret_os) {
        char saved[2048] = "";
        int saved_code;
        const char *fstype, *fixed = NULL, *m;
        char *os = NULL;
        int r;

        if (!disk || !part || !ret_os)
                return -EINVAL;

        fstype = part->fstype;

        /* Encrypted and NTFS volumes say enough by their type alone: looking for Windows inside
         * NTFS would need ntfs-3g, and BitLocker and LUKS cannot be read without a key. btrfs, xfs,
         * erofs, squashfs and the rest are not looked into: reading their os-release needs a mount
         * or a filesystem-specific tool, which a guess is not worth. */
        if (streq_ptr(fstype, "crypto_LUKS"))
                fixed = _("LUKS-encrypted");
        else if (streq_ptr(fstype, "BitLocker"))
                fixed = _("BitLocker-encrypted");
        else if (streq_ptr(fstype, "ntfs"))
                fixed = _("Windows data (NTFS)");
        else if (!streq_ptr(fstype, "ext2") && !streq_ptr(fstype, "ext3") && !streq_ptr(fstype, "ext4") &&
                 !streq_ptr(fstype, "vfat")) {
                *ret_os = NULL;
                return 0;
        }

        if (fixed) {
                os = strdup(fixed);
                if (!os)
                        return -ENOMEM;
                *ret_os = os;
                return 0;
        }

        /* A failing tool records its message; the caller's message must survive a guess. */
        m = error_message();
        if (m)
                snprintf(saved, sizeof(saved), "%s", m);
        saved_code = error_code();

        r = streq(fstype, "vfat") ? probe_esp(disk, part, &os) : probe_ext(disk, part, &os);

        if (*saved)
                error_setf(saved_code, "%s", saved);
        else
                error_clear();
        if (r < 0)
                return r;

        *ret_os = os;
        return 0;
}
