/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "fsread.h"
#include "stream.h"
#include "i18n.h"
#include "image.h"
#include "imagedefs.h"
#include "log.h"
#include "plan.h"
#include "run.h"
#include "size.h"
#include "uuid.h"
#include "verity.h"

Image *image_free(Image *img) {
        if (!img)
                return NULL;
        for (size_t i = 0; i < img->n_ukis; i++) {
                free(img->ukis[i].name);
                if (img->ukis[i].fd >= 0)
                        close(img->ukis[i].fd);
                uki_info_done(&img->ukis[i].info);
        }
        free(img->ukis);
        for (size_t i = 0; i < img->n_repart; i++)
                image_repart_def_done(&img->repart[i]);
        free(img->repart);
        for (size_t i = 0; i < img->n_transfers; i++)
                image_transfer_done(&img->transfers[i]);
        free(img->transfers);
        free(img->usrhash);
        free(img->assumption);
        if (img->sdboot_fd >= 0)
                close(img->sdboot_fd);
        if (img->shim_fd >= 0)
                close(img->shim_fd);
        if (img->mok_fd >= 0)
                close(img->mok_fd);
        free(img->sdboot_version);
        free(img->sdboot_origin);
        free(img->os_release);
        free(img->pretty_name);
        free(img->os_id);
        free(img->image_id);
        free(img->image_version);
        free(img->sha256);
        free(img->sha256_origin);
        image_stream_free(img->stream);
        free(img->streamed_disk);
        disk_free(img->disk);
        free(img->path);
        free(img);
        return NULL;
}

static uint64_t le64(const uint8_t *p) {
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
                v = (v << 8) | p[i];
        return v;
}

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* CRC-32 (IEEE 802.3, reflected, as the GPT uses: UEFI spec 5.3.2). */
static uint32_t gpt_crc32(const uint8_t *p, size_t n) {
        uint32_t c = 0xFFFFFFFFu;

        for (size_t i = 0; i < n; i++) {
                c ^= p[i];
                for (int k = 0; k < 8; k++)
                        c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
        }
        return ~c;
}

/* libblkid leaves out a partition entry that lies outside the usable area, so the image would
 * then be refused for what is missing ("no root partition"). Name the entry instead. Only a
 * header and entry array whose CRCs match are judged; a damaged table is libblkid's to refuse. */
static int check_gpt_entries(const char *path, int fd, uint64_t size, uint32_t ss, const uint8_t *hdr) {
        _cleanup_(freep) uint8_t *entries = NULL;
        uint8_t h[92];
        uint64_t first = le64(hdr + 40), last = le64(hdr + 48), lba = le64(hdr + 72);
        uint32_t n = le32(hdr + 80), esize = le32(hdr + 84), hsize = le32(hdr + 12);

        memcpy(h, hdr, sizeof(h));
        memset(h + 16, 0, 4);
        if (hsize != sizeof(h) || gpt_crc32(h, sizeof(h)) != le32(hdr + 16))
                return 0;
        if (esize < 128 || esize > 4096 || esize % 8 || n == 0 || n > 4096 || lba > size / ss ||
            (uint64_t) n * esize > size - lba * ss)
                return 0;
        entries = malloc((size_t) n * esize);
        if (!entries)
                return -ENOMEM;
        if (pread_full(fd, entries, (size_t) n * esize, lba * ss) < 0 || gpt_crc32(entries, (size_t) n * esize) != le32(hdr + 88))
                return 0;
        for (uint32_t i = 0; i < n; i++) {
                const uint8_t *e = entries + (size_t) i * esize;
                uint64_t start = le64(e + 32), end = le64(e + 40);
                static const uint8_t unused[16] = {};

                if (memcmp(e, unused, sizeof(unused)) == 0)
                        continue;
                if (end >= size / ss)
                        return error_setf(-EBADMSG,
                                          _("The image %s is damaged: its partition %u (sectors %" PRIu64 " to %" PRIu64 ") runs past the end of "
                                            "the image (%" PRIu64 " sectors)."),
                                          path, i + 1, start, end, size / ss);
                if (start < first || end > last || end < start)
                        return error_setf(-EBADMSG,
                                          _("The image %s is damaged: its partition %u (sectors %" PRIu64 " to %" PRIu64 ") lies outside the "
                                            "usable sectors %" PRIu64 " to %" PRIu64 " of its partition table."),
                                          path, i + 1, start, end, first, last);
        }
        return 0;
}

/* A truncated download still has an intact primary GPT, and libblkid may even list its
 * partitions; the backup header's position (AlternateLBA, UEFI spec 5.3.2) tells the size the
 * image was made with. */
static int check_not_truncated(const char *path, int fd, uint64_t size) {
        static const uint32_t sector_sizes[] = { 512, 4096 };
        uint8_t hdr[92];

        for (size_t i = 0; i < ELEMENTSOF(sector_sizes); i++) {
                uint32_t ss = sector_sizes[i];
                uint64_t alt;

                if (size < 2 * (uint64_t) ss || pread_full(fd, hdr, sizeof(hdr), ss) < 0)
                        continue;
                if (memcmp(hdr, "EFI PART", 8) != 0)
                        continue;
                alt = le64(hdr + 32);
                if (alt > UINT64_MAX / ss - 1 || (alt + 1) * ss > size)
                        return error_setf(-EBADMSG,
                                          _("The image %s is truncated: its partition table says it is %s (%" PRIu64 " bytes), but the file has only %s (%" PRIu64 " bytes)."),
                                          path, FORMAT_BYTES(alt > UINT64_MAX / ss - 1 ? UINT64_MAX : (alt + 1) * ss),
                                          alt > UINT64_MAX / ss - 1 ? UINT64_MAX : (alt + 1) * ss, FORMAT_BYTES(size), size);
                return check_gpt_entries(path, fd, size, ss, hdr);
        }
        return error_setf(-EBADMSG, _("%s is not a disk image: it has no GPT partition table."), path);
}

static bool role_is_os(PartitionRole r) {
        return r == ROLE_ROOT || r == ROLE_USR || r == ROLE_ROOT_VERITY || r == ROLE_USR_VERITY ||
               r == ROLE_ROOT_VERITY_SIG || r == ROLE_USR_VERITY_SIG;
}

static bool role_is_usr(PartitionRole r) {
        return r == ROLE_USR || r == ROLE_USR_VERITY || r == ROLE_USR_VERITY_SIG;
}

int image_resolve_self(char **ret_path) {
        static const DiskRefusal order[] = { REFUSE_BOOT_DISK, REFUSE_LIVE_MEDIUM, REFUSE_ROOT_DISK };
        DiskList l = {};
        int r;

        r = disk_list_discover(&(DiscoverOptions) {}, &l);
        if (r < 0)
                return r;
        for (size_t k = 0; k < ELEMENTSOF(order); k++)
                for (size_t i = 0; i < l.n_disks; i++)
                        if (l.disks[i]->refusals & order[k]) {
                                char *p = strdup(l.disks[i]->devnode ?: l.disks[i]->path);
                                disk_list_done(&l);
                                if (!p)
                                        return -ENOMEM;
                                log_info("--source=self: %s", p);
                                *ret_path = p;
                                return 0;
                        }
        disk_list_done(&l);
        return error_setf(-ENOENT, _("--source=self: cannot tell which disk this system runs from."));
}

/* Copying a filesystem that is mounted read-write gives a torn copy. */
static int check_not_mounted_rw(const char *image, const DiskPartition *p) {
        _cleanup_(freep) char *buf = NULL, *dev = NULL;
        char name[64];
        int r;

        if (!p->node)
                return 0;
        snprintf(name, sizeof(name), "%s", p->node + strlen("/dev/"));
        if (read_sysfs_block_attr(name, "dev", &dev) < 0)
                return 0;
        r = read_full_file("/proc/self/mountinfo", &buf, NULL);
        if (r < 0)
                return 0;
        for (char *line = buf; line && *line;) {
                char *eol = strchrnul(line, '\n'), mnt[512], opts[256], majmin[32];

                /* "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue" */
                if (sscanf(line, "%*s %*s %31s %*s %511s %255s", majmin, mnt, opts) == 3 && streq(majmin, dev) &&
                    (strncmp(opts, "rw", 2) == 0 && (opts[2] == ',' || opts[2] == 0)))
                        return error_setf(-EBUSY,
                                          _("The %s partition %s of %s is mounted read-write on %s; a copy of it would be torn. "
                                            "Install from an image file, or from a medium whose root is read-only."),
                                          partition_role_to_string(p->dps->role), p->node, image, mnt);
                line = *eol ? eol + 1 : eol;
        }
        return 0;
}

int image_open(const char *path, Image **ret) {
        _cleanup_(image_freep) Image *img = NULL;
        _cleanup_(closep) int fd = -EBADF;
        Architecture found[_ARCH_MAX] = {};
        size_t n_found = 0;
        struct stat st;
        int r;

        /* Without waiting on a FIFO: only a file or a block device is read. */
        fd = open_input_file(path, true, &st);
        if (fd == -EISDIR || fd == -EBADFD)
                return error_setf(-EINVAL, _("The image %s is neither a file nor a block device."), path);
        if (fd < 0) {
                errno = -fd;
                return error_setf(fd, _("Cannot open the image %s: %m"), path);
        }
        if (S_ISREG(st.st_mode)) {
                r = check_not_truncated(path, fd, (uint64_t) st.st_size);
                if (r < 0)
                        return r;
        }

        img = calloc(1, sizeof(Image));
        if (!img)
                return -ENOMEM;
        img->sdboot_fd = -EBADF;
        img->shim_fd = img->mok_fd = -EBADF;
        img->arch = _ARCH_INVALID;
        img->path = strdup(path);
        if (!img->path)
                return -ENOMEM;

        r = disk_discover(path, &(DiscoverOptions) {}, &img->disk);
        if (r < 0)
                return error_prefixf(r, _("Cannot read the image %s"), path);
        if (!streq_ptr(img->disk->pttype, "gpt"))
                return error_setf(-EBADMSG, _("%s is not a disk image: it has no GPT partition table."), path);

        /* Which architectures have a root here? Prefer ours; an image for exactly one other
         * architecture is that architecture's image (the planner then says so). */
        for (size_t i = 0; i < img->disk->n_partitions; i++) {
                const DiskPartition *p = &img->disk->partitions[i];

                if (p->start + p->size > img->disk->size)
                        return error_setf(-EBADMSG, _("The image %s is truncated: partition %u ends at %s, beyond its end at %s."), path,
                                          p->partno, FORMAT_BYTES(p->start + p->size), FORMAT_BYTES(img->disk->size));
                if (p->dps && p->dps->role == ROLE_ROOT && !(p->flags & DPS_FLAG_NO_AUTO)) {
                        bool seen = false;
                        for (size_t k = 0; k < n_found; k++)
                                seen = seen || found[k] == p->dps->arch;
                        if (!seen && n_found < ELEMENTSOF(found))
                                found[n_found++] = p->dps->arch;
                }
        }
        img->kind = IMAGE_KIND_ROOT;
        if (n_found == 0) {
                /* No root: a usr image (usr, usr-verity, usr-verity-sig), whose root is made on
                 * the machine; chosen the same way, by its usr partitions. */
                for (size_t i = 0; i < img->disk->n_partitions; i++) {
                        const DiskPartition *p = &img->disk->partitions[i];

                        if (p->dps && p->dps->role == ROLE_USR && !(p->flags & DPS_FLAG_NO_AUTO)) {
                                bool seen = false;
                                for (size_t k = 0; k < n_found; k++)
                                        seen = seen || found[k] == p->dps->arch;
                                if (!seen && n_found < ELEMENTSOF(found))
                                        found[n_found++] = p->dps->arch;
                        }
                }
                if (n_found > 0)
                        img->kind = IMAGE_KIND_USR;
        }
        for (size_t k = 0; k < n_found; k++)
                if (found[k] == architecture_native())
                        img->arch = found[k];
        if (img->arch < 0 && n_found == 1)
                img->arch = found[0];
        if (img->arch < 0 && n_found == 0)
                return error_setf(-EBADMSG, _("The image %s has no root partition (no partition of a Discoverable Partitions root type)."),
                                  path);
        if (img->arch < 0 && img->kind == IMAGE_KIND_USR)
                return error_setf(-EBADMSG, _("The image %s has usr partitions for several architectures and no root partition, none of them %s."),
                                  path, architecture_to_string(architecture_native()));
        if (img->arch < 0)
                return error_setf(-EBADMSG, _("The image %s has root partitions for several architectures, none of them %s."), path,
                                  architecture_to_string(architecture_native()));

        for (size_t i = 0; i < img->disk->n_partitions; i++) {
                const DiskPartition *p = &img->disk->partitions[i];
                bool taken = false;

                if (!p->dps || (p->flags & DPS_FLAG_NO_AUTO))
                        continue;
                if (p->dps->role == ROLE_ESP && !img->esp)
                        img->esp = p;
                else if (p->dps->role == ROLE_XBOOTLDR && !img->xbootldr)
                        img->xbootldr = p;
                else if (role_is_os(p->dps->role) && p->dps->arch == img->arch &&
                         (img->kind == IMAGE_KIND_ROOT || role_is_usr(p->dps->role))) {
                        /* One of each: the first, as systemd-gpt-auto-generator picks. */
                        for (size_t k = 0; k < img->n_os_parts; k++)
                                taken = taken || img->os_parts[k]->dps->role == p->dps->role;
                        if (taken || img->n_os_parts >= ELEMENTSOF(img->os_parts))
                                continue;
                        img->os_parts[img->n_os_parts++] = p;
                        if (p->dps->role == ROLE_ROOT)
                                img->root = p;
                        else if (p->dps->role == ROLE_USR)
                                img->usr = p;
                        else if (p->dps->role == ROLE_USR_VERITY)
                                img->usr_verity = p;
                        else if (p->dps->role == ROLE_USR_VERITY_SIG)
                                img->usr_verity_sig = p;
                }
        }
        if (img->kind == IMAGE_KIND_USR ? !img->usr : !img->root)
                return error_setf(-EBADMSG, _("The image %s has no usable root partition."), path);
        for (size_t k = 0; k < img->n_os_parts; k++) {
                r = check_not_mounted_rw(path, img->os_parts[k]);
                if (r < 0)
                        return r;
        }

        if (img->kind == IMAGE_KIND_USR)
                log_info("image %s: %s usr image, usr in partition %u (%s, %s), no root partition", path,
                         architecture_to_string(img->arch), img->usr->partno, img->usr->fstype ?: "unknown filesystem",
                         FORMAT_BYTES(img->usr->size));
        else
                log_info("image %s: %s root in partition %u (%s, %s)", path, architecture_to_string(img->arch), img->root->partno,
                         img->root->fstype ?: "unknown filesystem", FORMAT_BYTES(img->root->size));
        *ret = TAKE_PTR(img);
        return 0;
}

static FsLocation image_fs(const Image *img, const DiskPartition *p) {
        if (p && p == img->streamed && img->streamed_disk)
                return (FsLocation) { .disk = img->streamed_disk, .offset = img->streamed_offset, .fstype = p->fstype };
        return (FsLocation) { .disk = img->path, .node = p->node, .offset = p->start, .fstype = p->fstype };
}

FsLocation image_fs_location(const Image *img, const DiskPartition *p) {
        return image_fs(img, p);
}

int image_open_stream(const char *path, ImageStream *s, Image **ret) {
        Image *img = NULL;
        int r;

        r = image_open(path, &img);
        if (r < 0) {
                image_stream_free(s);
                return r;
        }
        img->stream = s;
        img->streamed = img->kind == IMAGE_KIND_USR ? img->usr : img->root;
        *ret = img;
        return 0;
}

static int load_sdboot(Image *img);
static int load_shim(Image *img);

int image_finish_stream(Image *img, const char *cert_pem) {
        int r;

        /* systemd-boot: usr's (signed first) is preferred to the ESP's, as for any image. */
        if (img->sdboot_fd >= 0) {
                close(img->sdboot_fd);
                img->sdboot_fd = -EBADF;
        }
        img->sdboot_version = mfree(img->sdboot_version);
        img->sdboot_origin = mfree(img->sdboot_origin);
        r = load_sdboot(img);
        if (r < 0)
                return r;
        r = load_shim(img);
        if (r < 0)
                return r;
        return image_check_usr(img, cert_pem);
}

int image_relocate_streamed(Image *img, const char *disk, uint64_t offset) {
        char *d = strdup(disk);

        if (!d)
                return -ENOMEM;
        free(img->streamed_disk);
        img->streamed_disk = d;
        img->streamed_offset = offset;
        return 0;
}

/* Copies a file out of a filesystem into an anonymous memory file (no heap, nothing in /tmp). */
static int fs_copy_to_memfd(const FsLocation *l, const char *path, int *ret_fd, uint64_t *ret_size) {
        _cleanup_(closep) int fd = -EBADF;
        struct stat st;
        int r;

        fd = memfd_create("imprint-image-file", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = fs_copy_file_to_fd(l, path, fd);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        *ret_size = (uint64_t) st.st_size;
        return 0;
}

typedef struct Mapping {
        void *p;
        size_t size;
} Mapping;

static void mapping_done(Mapping *m) {
        if (m->p && m->p != MAP_FAILED)
                munmap(m->p, m->size);
}

static int map_fd(int fd, uint64_t size, Mapping *ret) {
        void *p = mmap(NULL, (size_t) size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        *ret = (Mapping) { p, (size_t) size };
        return 0;
}

static int compare_uki(const void *a, const void *b) {
        const ImageUki *x = a, *y = b;
        /* Newest first, as sd-boot sorts: by version, then by name. */
        int c = strverscmp(y->info.version ?: "", x->info.version ?: "");
        return c ? c : strverscmp(y->name, x->name);
}

static int load_ukis_from(Image *img, const DiskPartition *part) {
        FsLocation l = image_fs(img, part);
        char **names = NULL;
        int r;

        r = fs_list_dir(&l, "/EFI/Linux", &names);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return error_setf(r, _("Cannot list /EFI/Linux in partition %u of the image %s: %s"), part->partno, img->path, strerror(-r));

        for (char **n = names; *n; n++) {
                _cleanup_(mapping_done) Mapping m = {};
                _cleanup_(closep) int fd = -EBADF;
                char path[512], what[768];
                ImageUki *u;
                uint64_t size;
                size_t len = strlen(*n);

                /* What sd-boot loads: *.efi, except auto-* and dot files (formats.md §2.3). */
                if (len < 5 || strcasecmp(*n + len - 4, ".efi") != 0 || strncasecmp(*n, "auto-", 5) == 0 || (*n)[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "/EFI/Linux/%s", *n);
                /* TRANSLATORS: a file of the image: its path, then the role of its partition (esp, xbootldr, root). */
                snprintf(what, sizeof(what), _("%s in the image's %s"), path, partition_role_to_string(part->dps->role));
                r = fs_copy_to_memfd(&l, path, &fd, &size);
                if (r < 0) {
                        strv_free(names);
                        return error_setf(r, _("Cannot read %s: %s"), what, strerror(-r));
                }
                r = map_fd(fd, size, &m);
                if (r < 0) {
                        strv_free(names);
                        return r;
                }
                u = realloc(img->ukis, (img->n_ukis + 1) * sizeof(ImageUki));
                if (!u) {
                        strv_free(names);
                        return -ENOMEM;
                }
                img->ukis = u;
                u = &img->ukis[img->n_ukis];
                *u = (ImageUki) { .on = part->dps->role, .fd = -EBADF, .size = size };
                r = uki_read(m.p, m.size, what, &u->info);
                if (r < 0) {
                        strv_free(names);
                        return r;
                }
                u->name = strdup(*n);
                if (!u->name) {
                        uki_info_done(&u->info);
                        strv_free(names);
                        return -ENOMEM;
                }
                u->fd = TAKE_FD(fd);
                img->n_ukis++;
                log_info("image UKI %s: %s %s, kernel %s", path, u->info.os_pretty_name ?: "?", u->info.version ?: "",
                         u->info.uname ?: "?");
        }
        strv_free(names);
        return 0;
}

static int load_sdboot(Image *img) {
        const char *arch = img->arch == ARCH_X86_64 ? "x64" : img->arch == ARCH_ARM64 ? "aa64" : img->arch == ARCH_X86 ? "ia32" : "riscv64";
        /* The usr partition's filesystem is /usr itself. */
        const DiskPartition *os = img->kind == IMAGE_KIND_USR ? img->usr : img->root;
        const char *usr = img->kind == IMAGE_KIND_USR ? "" : "/usr";
        char esp_path[128], usr_signed[160], usr_plain[160];
        struct {
                const DiskPartition *part;
                const char *path;
        } candidates[] = {
                /* A signed binary is preferred, as bootctl does (formats.md §2.6). */
                { os, usr_signed },
                { os, usr_plain },
                { img->esp, esp_path },
        };
        int r;

        snprintf(esp_path, sizeof(esp_path), "/EFI/systemd/systemd-boot%s.efi", arch);
        snprintf(usr_signed, sizeof(usr_signed), "%s/lib/systemd/boot/efi/systemd-boot%s.efi.signed", usr, arch);
        snprintf(usr_plain, sizeof(usr_plain), "%s/lib/systemd/boot/efi/systemd-boot%s.efi", usr, arch);

        for (size_t i = 0; i < ELEMENTSOF(candidates); i++) {
                _cleanup_(mapping_done) Mapping m = {};
                _cleanup_(closep) int fd = -EBADF;
                FsLocation l;
                uint64_t size;
                char what[256];

                if (!candidates[i].part)
                        continue;
                /* A streamed image's usr or root is read once it is written (image_finish_stream()). */
                if (candidates[i].part == os && image_stream_pending(img))
                        continue;
                l = image_fs(img, candidates[i].part);
                r = fs_copy_to_memfd(&l, candidates[i].path, &fd, &size);
                if (r == -ENOENT || r == -EOPNOTSUPP)
                        continue;
                if (r < 0)
                        return r;
                r = map_fd(fd, size, &m);
                if (r < 0)
                        return r;
                snprintf(what, sizeof(what), _("%s in the image's %s"), candidates[i].path,
                         partition_role_to_string(candidates[i].part->dps->role));
                r = efi_binary_loader_info(m.p, m.size, what, &img->sdboot_version);
                if (r < 0)
                        return error_setf(-EBADMSG, _("%s is not a systemd-boot binary (it has no LoaderInfo stamp)."), what);
                img->sdboot_origin = strdup(what);
                if (!img->sdboot_origin)
                        return -ENOMEM;
                img->sdboot_fd = TAKE_FD(fd);
                img->sdboot_size = size;
                return 0;
        }
        if (image_stream_pending(img))
                return 0; /* perhaps in its usr or root: looked for once they are written */
        if (img->kind == IMAGE_KIND_USR)
                return error_setf(-EBADMSG,
                                  _("The image %s carries no systemd-boot: neither lib/systemd/boot/efi/systemd-boot%s.efi in its usr "
                                    "partition (%s) nor EFI/systemd/systemd-boot%s.efi on its ESP could be read."),
                                  img->path, arch, img->usr->fstype ?: _("unknown filesystem"), arch);
        return error_setf(-EBADMSG,
                          _("The image %s carries no systemd-boot: neither usr/lib/systemd/boot/efi/systemd-boot%s.efi in its root "
                            "(%s) nor EFI/systemd/systemd-boot%s.efi on its ESP could be read."),
                          img->path, arch, img->root->fstype ?: _("unknown filesystem"), arch);
}

/* shim, for firmware that trusts Microsoft's UEFI CA and not the image's own key: where Debian's
 * shim-signed package puts it, with its MOK manager. Optional: most images have none. */
static int load_shim(Image *img) {
        const char *arch = img->arch == ARCH_X86_64 ? "x64" : img->arch == ARCH_ARM64 ? "aa64" : img->arch == ARCH_X86 ? "ia32" : "riscv64";
        const DiskPartition *os = img->kind == IMAGE_KIND_USR ? img->usr : img->root;
        const char *usr = img->kind == IMAGE_KIND_USR ? "" : "/usr";
        struct {
                const char *name;
                int *fd;
                uint64_t *size;
        } files[] = {
                { "shim", &img->shim_fd, &img->shim_size },
                { "mm", &img->mok_fd, &img->mok_size },
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_(closep) int fd = -EBADF;
                char path[160];
                FsLocation l;
                uint64_t size;

                if (*files[i].fd >= 0) {
                        close(*files[i].fd);
                        *files[i].fd = -EBADF;
                }
                if (!os || image_stream_pending(img))
                        continue;
                snprintf(path, sizeof(path), "%s/lib/shim/%s%s.efi.signed", usr, files[i].name, arch);
                l = image_fs(img, os);
                r = fs_copy_to_memfd(&l, path, &fd, &size);
                if (r == -ENOENT || r == -EOPNOTSUPP)
                        continue;
                if (r < 0)
                        return r;
                log_info("image %s: %s (%" PRIu64 " bytes)", img->path, path, size);
                *files[i].fd = TAKE_FD(fd);
                *files[i].size = size;
        }
        return 0;
}

static int load_os_release(Image *img) {
        static const char *const root_files[] = { "/usr/lib/os-release", "/etc/os-release", NULL },
                                 *const usr_files[] = { "/lib/os-release", NULL, NULL };
        const char *const *files = img->kind == IMAGE_KIND_USR ? usr_files : root_files;
        FsLocation l = image_fs(img, img->kind == IMAGE_KIND_USR ? img->usr : img->root);
        _cleanup_(freep) void *buf = NULL;
        size_t size = 0;
        int r = -ENOENT;

        /* A streamed image's root or usr is not here yet: its UKI says the same. */
        for (size_t i = 0; files[i] && r < 0 && !image_stream_pending(img); i++) {
                r = fs_read_file(&l, files[i], &buf, &size);
                if (r == -ENOMEM)
                        return r;
        }
        if (r >= 0)
                img->os_release = strndup(buf, size);
        else if (img->n_ukis > 0) {
                /* A root the tools cannot read (erofs, btrfs, …): the UKI embeds the same file. */
                const ImageUki *u = image_default_uki(img);
                img->pretty_name = strdup_safe(u->info.os_pretty_name);
                img->os_id = strdup_safe(u->info.os_id);
                img->image_id = strdup_safe(u->info.image_id);
                img->image_version = strdup_safe(u->info.version);
                return 0;
        } else
                return 0;
        if (!img->os_release)
                return -ENOMEM;

        img->pretty_name = env_file_get(img->os_release, "PRETTY_NAME");
        img->os_id = env_file_get(img->os_release, "ID");
        img->image_id = env_file_get(img->os_release, "IMAGE_ID");
        img->image_version = env_file_get(img->os_release, "IMAGE_VERSION");
        if (!img->image_version)
                img->image_version = env_file_get(img->os_release, "VERSION_ID");
        return 0;
}

const ImageUki *image_default_uki(const Image *img) {
        return img->n_ukis > 0 ? &img->ukis[0] : NULL;
}

static int check_usr_readable(const Image *img);
static int select_usr(Image *img, char **ret_usrhash);

int image_load_boot(Image *img) {
        int r;

        if (!img->esp && !img->xbootldr)
                return error_setf(-EBADMSG, _("The image %s has no ESP or XBOOTLDR partition, so it carries no UKI to boot."), img->path);
        if (img->esp) {
                r = load_ukis_from(img, img->esp);
                if (r < 0)
                        return r;
        }
        if (img->xbootldr) {
                r = load_ukis_from(img, img->xbootldr);
                if (r < 0)
                        return r;
        }
        if (img->n_ukis == 0)
                return error_setf(-EBADMSG, _("The image %s has no unified kernel image in /EFI/Linux on its ESP or XBOOTLDR partition."),
                                  img->path);
        qsort(img->ukis, img->n_ukis, sizeof(ImageUki), compare_uki);

        if (img->kind == IMAGE_KIND_USR) {
                r = check_usr_readable(img);
                if (r < 0)
                        return r;
        }
        r = load_sdboot(img);
        if (r < 0)
                return r;
        r = load_shim(img);
        if (r < 0)
                return r;
        r = load_os_release(img);
        if (r < 0)
                return r;
        if (img->kind != IMAGE_KIND_USR)
                return 0;
        /* A streamed image: which usr the UKI boots is known now; the rest once it is written. */
        if (image_stream_pending(img))
                return select_usr(img, NULL);
        /* Without a certificate here; the session checks again with the one it is given. */
        return image_check_usr(img, NULL);
}

/* ---- usr images ------------------------------------------------------------------------------ */

static int check_usr_readable(const Image *img) {
        if (streq_ptr(img->usr->fstype, "squashfs"))
                return 0;
        if (streq_ptr(img->usr->fstype, "erofs")) {
                if (fs_erofs_readable())
                        return 0;
                return error_setf(-EOPNOTSUPP,
                                  _("The usr partition %u of the image %s is erofs, which imprint reads with the --cat option of "
                                    "dump.erofs (erofs-utils 1.8.6 of Debian 13 has it); this system's dump.erofs has no --cat, or "
                                    "there is none. Install a newer erofs-utils."),
                                  img->usr->partno, img->path);
        }
        return error_setf(-EOPNOTSUPP,
                          _("The usr partition %u of the image %s has a %s filesystem; imprint reads usr partitions made with "
                            "squashfs or erofs."),
                          img->usr->partno, img->path, img->usr->fstype ?: _("unknown"));
}

static int compare_repart(const void *a, const void *b) {
        return strcmp(((const ImageRepartDef *) a)->file, ((const ImageRepartDef *) b)->file);
}

static int compare_transfer(const void *a, const void *b) {
        return strcmp(((const ImageTransfer *) a)->file, ((const ImageTransfer *) b)->file);
}

static bool name_has_suffix(const char *name, const char *suffix) {
        size_t n = strlen(name), k = strlen(suffix);
        return n > k && streq(name + n - k, suffix) && name[0] != '.';
}

/* /usr/lib/repart.d/ (*.conf) and /usr/lib/sysupdate.d/ (*.transfer) of a usr image. */
static int load_usr_defs(Image *img) {
        FsLocation l = image_fs(img, img->usr);
        static const struct {
                const char *dir, *suffix;
        } dirs[] = { { "/lib/repart.d", ".conf" }, { "/lib/sysupdate.d", ".transfer" } };
        int r;

        for (size_t d = 0; d < ELEMENTSOF(dirs); d++) {
                char **names = NULL;
                bool repart = d == 0;

                if (repart ? img->repart != NULL : img->transfers != NULL)
                        continue; /* read already */
                r = fs_list_dir(&l, dirs[d].dir, &names);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return error_setf(r, _("Cannot list /usr%s in the usr partition of the image %s: %s"), dirs[d].dir, img->path,
                                          strerror(-r));
                for (char **n = names; *n; n++) {
                        _cleanup_(freep) void *buf = NULL;
                        _cleanup_(freep) char *text = NULL, *path = NULL, *what = NULL;
                        size_t size = 0;

                        if (!name_has_suffix(*n, dirs[d].suffix))
                                continue;
                        if (asprintf(&path, "%s/%s", dirs[d].dir, *n) < 0 || asprintf(&what, "/usr%s", path) < 0) {
                                strv_free(names);
                                return -ENOMEM;
                        }
                        r = fs_read_file(&l, path, &buf, &size);
                        if (r == -ENOENT)
                                buf = NULL, size = 0; /* an empty file: nothing in it */
                        else if (r < 0) {
                                strv_free(names);
                                return error_setf(r, _("Cannot read %s: %s"), what, strerror(-r));
                        }
                        text = strndup(buf ?: "", size);
                        if (!text) {
                                strv_free(names);
                                return -ENOMEM;
                        }
                        if (repart) {
                                ImageRepartDef *a = realloc(img->repart, (img->n_repart + 1) * sizeof(ImageRepartDef));
                                if (!a) {
                                        strv_free(names);
                                        return -ENOMEM;
                                }
                                img->repart = a;
                                r = image_repart_def_parse(what, text, img->image_version, &a[img->n_repart]);
                                if (r >= 0)
                                        img->n_repart++;
                        } else {
                                ImageTransfer *a = realloc(img->transfers, (img->n_transfers + 1) * sizeof(ImageTransfer));
                                if (!a) {
                                        strv_free(names);
                                        return -ENOMEM;
                                }
                                img->transfers = a;
                                r = image_transfer_parse(what, text, &a[img->n_transfers]);
                                if (r >= 0)
                                        img->n_transfers++;
                        }
                        if (r < 0) {
                                strv_free(names);
                                return r;
                        }
                }
                strv_free(names);
        }
        /* The file names only (without the directory), as systemd sorts them. */
        if (img->n_repart > 1)
                qsort(img->repart, img->n_repart, sizeof(ImageRepartDef), compare_repart);
        if (img->n_transfers > 1)
                qsort(img->transfers, img->n_transfers, sizeof(ImageTransfer), compare_transfer);
        log_info("image %s: %zu repart.d definitions, %zu sysupdate.d transfers", img->path, img->n_repart, img->n_transfers);
        return 0;
}

/* usrhash= of a kernel command line, lowercased, or NULL. */
static int cmdline_usrhash(const char *cmdline, char **ret) {
        *ret = NULL;
        for (const char *p = cmdline; p && *p;) {
                size_t n;

                p += strspn(p, " \t\n");
                n = strcspn(p, " \t\n");
                if (n > 8 && strncmp(p, "usrhash=", 8) == 0) {
                        free(*ret);
                        *ret = strndup(p + 8, n - 8);
                        if (!*ret)
                                return -ENOMEM;
                        for (char *c = *ret; *c; c++)
                                *c = (char) tolower((unsigned char) *c);
                }
                p += n;
        }
        return 0;
}

static bool cmdline_has_root(const char *cmdline) {
        for (const char *p = cmdline; p && *p;) {
                size_t n;

                p += strspn(p, " \t\n");
                n = strcspn(p, " \t\n");
                if (n > 5 && strncmp(p, "root=", 5) == 0)
                        return true;
                p += n;
        }
        return false;
}

/* The UUID a part of the root hash names: bytes [from, from + 16) of the hash, in UUID text form. */
static int hash_uuid(const char *hex, bool last, sd_id128_t *ret) {
        size_t n = strlen(hex);
        char part[33];

        if (n < 64 || n % 2)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!isxdigit((unsigned char) hex[i]))
                        return -EINVAL;
        memcpy(part, last ? hex + n - 32 : hex, 32);
        part[32] = 0;
        return uuid_parse(part, ret);
}

static const char *uuid_text(sd_id128_t id, char buf[static 37]) {
        snprintf(buf, 37, SD_ID128_UUID_FORMAT_STR, SD_ID128_FORMAT_VAL(id));
        return buf;
}

static int add_assumption(Image *img, const char *text) {
        char *s;

        if (asprintf(&s, "%s%s%s", img->assumption ?: "", img->assumption ? " " : "", text) < 0)
                return -ENOMEM;
        free(img->assumption);
        img->assumption = s;
        return 0;
}

static int read_partition(const Image *img, const DiskPartition *p, uint64_t offset, size_t size, uint8_t **ret) {
        _cleanup_(closep) int fd = -EBADF;
        _cleanup_(freep) uint8_t *buf = NULL;
        int r;

        if (offset > p->size || size > p->size - offset)
                return -EBADMSG;
        fd = open(img->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        buf = malloc(size ?: 1);
        if (!buf)
                return -ENOMEM;
        r = pread_full(fd, buf, size, p->start + offset);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* The bytes the usr filesystem uses: squashfs's bytes_used (superblock offset 40, little endian,
 * squashfs 4.0 format), erofs's blocks × block size; 0 when not known. */
static uint64_t usr_fs_size(const Image *img) {
        _cleanup_(freep) uint8_t *b = NULL;

        if (read_partition(img, img->usr, 0, MIN((uint64_t) 2048, img->usr->size), &b) < 0 || img->usr->size < 2048)
                return 0;
        if (memcmp(b, "hsqs", 4) == 0) {
                uint64_t v = 0;
                for (int i = 7; i >= 0; i--)
                        v = (v << 8) | b[40 + i];
                return v;
        }
        if (le32(b + 1024) == UINT32_C(0xE0F5E1E2)) {
                uint8_t blkszbits = b[1024 + 12];
                uint32_t blocks = le32(b + 1024 + 36);
                if (blkszbits >= 9 && blkszbits <= 16)
                        return (uint64_t) blocks << blkszbits;
        }
        return 0;
}

static int check_verity(Image *img, const char *usrhash, char **ret_root_hash) {
        const DiskPartition *v = img->usr_verity;
        _cleanup_(freep) uint8_t *sbuf = NULL, *top = NULL;
        _cleanup_(freep) char *root_hash = NULL;
        VeritySuperblock sb;
        uint64_t data, fs;
        int r;

        if (usrhash) {
                sd_id128_t want;
                if (hash_uuid(usrhash, true, &want) >= 0 && !sd_id128_equal(want, v->uuid))
                        return error_setf(-EBADMSG,
                                          _("The usr-verity partition %u of the image %s does not belong to its usr partition: its partition "
                                            "UUID is %s, but usrhash= names %s."),
                                          v->partno, img->path, v->uuid_string ?: "?", uuid_text(want, (char[37]) {}));
        }
        r = read_partition(img, v, 0, VERITY_SUPERBLOCK_SIZE, &sbuf);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || verity_superblock_parse(sbuf, VERITY_SUPERBLOCK_SIZE, &sb) < 0)
                return error_setf(-EBADMSG, _("The usr-verity partition %u of the image %s has no dm-verity superblock."), v->partno,
                                  img->path);
        data = sb.data_blocks * sb.data_block_size;
        fs = usr_fs_size(img);
        if (sb.data_blocks > UINT64_MAX / sb.data_block_size || data > img->usr->size || data < fs)
                return error_setf(-EBADMSG,
                                  _("The usr-verity partition %u of the image %s does not describe its usr partition: it covers %s of "
                                    "data, but the usr partition %u is %s with a filesystem of %s."),
                                  v->partno, img->path, FORMAT_BYTES(data), img->usr->partno, FORMAT_BYTES(img->usr->size),
                                  FORMAT_BYTES(fs));
        r = read_partition(img, v, sb.hash_block_size, sb.hash_block_size, &top);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return error_setf(-EBADMSG, _("The usr-verity partition %u of the image %s is too small for its hash tree."), v->partno,
                                  img->path);
        r = verity_root_hash(&sb, top, &root_hash);
        if (r == -EOPNOTSUPP)
                return error_setf(r, _("The usr-verity partition %u of the image %s uses the hash algorithm %s, which imprint cannot check."),
                                  v->partno, img->path, sb.algorithm);
        if (r < 0)
                return r;
        if (usrhash && !streq(root_hash, usrhash))
                return error_setf(-EBADMSG,
                                  _("The usr-verity partition %u of the image %s does not belong to usrhash=%s of its UKI: its hash tree "
                                    "has the root hash %s."),
                                  v->partno, img->path, usrhash, root_hash);
        *ret_root_hash = TAKE_PTR(root_hash);
        return 0;
}

static int check_signature(Image *img, const char *usrhash, const char *cert_pem) {
        const DiskPartition *p = img->usr_verity_sig;
        _cleanup_(freep) uint8_t *buf = NULL, *sig = NULL;
        _cleanup_(freep) char *root_hash = NULL;
        size_t sig_size = 0, size = (size_t) MIN(p->size, (uint64_t) 1024 * 1024);
        int r;

        r = read_partition(img, p, 0, size, &buf);
        if (r < 0)
                return error_setf(r, _("Cannot read the usr-verity-sig partition %u of the image %s: %s"), p->partno, img->path,
                                  strerror(-r));
        r = verity_sig_parse((const char *) buf, strnlen((const char *) buf, size), &root_hash, &sig, &sig_size);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return error_setf(-EBADMSG,
                                  _("The usr-verity-sig partition %u of the image %s is not a verity signature: no JSON object with "
                                    "rootHash and a base64 signature."),
                                  p->partno, img->path);
        if (usrhash && !streq(root_hash, usrhash))
                return error_setf(-EBADMSG,
                                  _("The usr-verity-sig partition %u of the image %s signs the root hash %s, not usrhash=%s of its UKI."),
                                  p->partno, img->path, root_hash, usrhash);
        r = verity_sig_check(root_hash, sig, sig_size, cert_pem);
        if (r == -EBADMSG)
                return error_setf(r, _("The signature in the usr-verity-sig partition %u of the image %s is not a PKCS#7 signature."),
                                  p->partno, img->path);
        if (r == -EINVAL)
                return error_setf(r, _("The image certificate given is not a PEM X.509 certificate."));
        if (r == -EKEYREJECTED)
                return error_setf(-EBADMSG,
                                  _("The signature in the usr-verity-sig partition %u of the image %s does not verify against the image "
                                    "certificate given: the usr partition is not signed by its key."),
                                  p->partno, img->path);
        if (r < 0)
                return r;
        if (!cert_pem)
                return add_assumption(img, _("imprint did not check the usr partition's signature against a key, since no image "
                                             "certificate was given; it checked only that the signature is well-formed and signs usrhash=."));
        return 0;
}

static int check_initrd(Image *img, const ImageUki *u, bool need_veritysetup) {
        _cleanup_(mapping_done) Mapping m = {};
        PeFile pe = {};
        const PeSection *s;
        const uint8_t *data;
        size_t size;
        InitrdFacts f;
        bool has_root = cmdline_has_root(u->info.cmdline);
        char text[512];
        int r;

        r = map_fd(u->fd, u->size, &m);
        if (r < 0)
                return r;
        r = pe_parse(m.p, m.size, u->name, &pe);
        if (r < 0)
                return r;
        s = pe_find_section(&pe, ".initrd");
        if (!s) {
                pe_file_done(&pe);
                if (need_veritysetup)
                        snprintf(text, sizeof(text),
                                 _("imprint assumes that the initrd that boots %s (it has none inside) finds root by "
                                   "systemd-gpt-auto-generator and opens /usr with systemd-veritysetup."),
                                 u->name);
                else
                        snprintf(text, sizeof(text),
                                 _("imprint assumes that the initrd that boots %s (it has none inside) finds root by "
                                   "systemd-gpt-auto-generator."),
                                 u->name);
                return add_assumption(img, text);
        }
        r = pe_section_view(m.p, m.size, s, &data, &size);
        pe_file_done(&pe);
        if (r < 0)
                return r;
        r = initrd_scan(data, size, &f);
        if (r < 0)
                return r;
        log_info("image UKI %s: initrd of %zu bytes, %zu files listed%s%s, gpt-auto %s, veritysetup %s", u->name, size, f.n_files,
                 f.complete ? "" : ", then ", f.complete ? "" : f.unknown_what, f.gpt_auto ? "yes" : "no", f.veritysetup ? "yes" : "no");
        if (!has_root && !f.gpt_auto) {
                if (!f.complete) {
                        snprintf(text, sizeof(text),
                                 _("imprint assumes that the initrd of %s finds root by systemd-gpt-auto-generator: it could not read "
                                   "all of it (%s)."),
                                 u->name, f.unknown_what);
                        r = add_assumption(img, text);
                        if (r < 0)
                                return r;
                } else
                        return error_setf(-EBADMSG,
                                  _("The image %s cannot boot: the initrd in its UKI %s has no systemd-gpt-auto-generator and its "
                                    "command line has no root=, so nothing would find the root partition imprint creates."),
                                  img->path, u->name);
        }
        if (need_veritysetup && !f.veritysetup) {
                if (!f.complete) {
                        snprintf(text, sizeof(text),
                                 _("imprint assumes that the initrd of %s opens /usr with systemd-veritysetup: it could not read all "
                                   "of it (%s)."),
                                 u->name, f.unknown_what);
                        return add_assumption(img, text);
                }
                return error_setf(-EBADMSG,
                                  _("The image %s cannot boot: the initrd in its UKI %s has no systemd-veritysetup, so /usr could not "
                                    "be opened with usrhash=."),
                                  img->path, u->name);
        }
        return 0;
}

int image_check_usr(Image *img, const char *cert_pem) {
        const ImageUki *u;
        _cleanup_(freep) char *usrhash = NULL, *verity_hash = NULL;
        int r;

        if (img->kind != IMAGE_KIND_USR)
                return 0;
        img->assumption = mfree(img->assumption);
        img->usrhash = mfree(img->usrhash);

        r = load_usr_defs(img);
        if (r < 0)
                return r;
        r = select_usr(img, &usrhash);
        if (r < 0)
                return r;
        u = image_default_uki(img);
        if (img->usr_verity) {
                r = check_verity(img, usrhash, &verity_hash);
                if (r < 0)
                        return r;
        }
        if (img->usr_verity_sig) {
                /* Without usrhash=, the signature must at least sign the verity partition's hash. */
                r = check_signature(img, usrhash ?: verity_hash, cert_pem);
                if (r < 0)
                        return r;
        }
        if (u) {
                r = check_initrd(img, u, usrhash != NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The usr partition the newest UKI's usrhash= names (its partition UUID is the hash's first
 * half) becomes img->usr; without usrhash= the first one stays. */
static int select_usr(Image *img, char **ret_usrhash) {
        _cleanup_(freep) char *usrhash = NULL;
        const ImageUki *u;
        int r;

        img->usrhash = mfree(img->usrhash);
        u = image_default_uki(img);
        if (u) {
                r = cmdline_usrhash(u->info.cmdline, &usrhash);
                if (r < 0)
                        return r;
        }
        if (usrhash) {
                sd_id128_t want;
                bool found = false;

                if (hash_uuid(usrhash, false, &want) < 0)
                        return error_setf(-EBADMSG, _("The UKI %s of the image %s has usrhash=%s, which is not a hash in hex."), u->name,
                                          img->path, usrhash);
                for (size_t i = 0; i < img->disk->n_partitions; i++) {
                        const DiskPartition *p = &img->disk->partitions[i];
                        if (p->dps && p->dps->role == ROLE_USR && sd_id128_equal(p->uuid, want)) {
                                found = true;
                                /* The one usrhash= names is the one systemd opens. */
                                for (size_t k = 0; k < img->n_os_parts; k++)
                                        if (img->os_parts[k] == img->usr)
                                                img->os_parts[k] = p;
                                img->usr = p;
                        }
                }
                if (!found)
                        return error_setf(-EBADMSG,
                                          _("The image %s cannot boot: its UKI %s asks for usrhash=%s, but no usr partition of the image has "
                                            "the partition UUID %s that this hash names."),
                                          img->path, u->name, usrhash, uuid_text(want, (char[37]) {}));
                img->usrhash = strdup(usrhash);
                if (!img->usrhash)
                        return -ENOMEM;
        }
        if (ret_usrhash)
                *ret_usrhash = TAKE_PTR(usrhash);
        return 0;
}

/* A line of a SHA256SUMS file: "<64 hex> <space or *><name>"; also a bare "<64 hex>". */
static int parse_sum_line(const char *line, const char *want_name, char **ret) {
        const char *p = line, *name;
        size_t n = 0;

        while (isxdigit((unsigned char) p[n]))
                n++;
        if (n != 64)
                return 0;
        name = p + 64;
        if (*name == 0 || *name == '\n') {
                if (want_name)
                        return 0;
        } else {
                if (*name != ' ' && *name != '\t')
                        return 0;
                while (*name == ' ' || *name == '\t')
                        name++;
                if (*name == '*')
                        name++;
                if (want_name) {
                        size_t l = strcspn(name, "\r\n");
                        if (l != strlen(want_name) || strncmp(name, want_name, l) != 0)
                                return 0;
                }
        }
        *ret = strndup(p, 64);
        if (!*ret)
                return -ENOMEM;
        for (char *c = *ret; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        return 1;
}

static int find_sum_in(const char *sums_path, const char *want_name, char **ret) {
        _cleanup_(freep) char *buf = NULL;
        int r;

        r = read_full_file(sums_path, &buf, NULL);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        for (char *line = buf; line && *line;) {
                char *eol = strchrnul(line, '\n');
                char saved = *eol;

                *eol = 0;
                r = parse_sum_line(line, want_name, ret);
                *eol = saved;
                if (r != 0)
                        return r;
                line = *eol ? eol + 1 : eol;
        }
        return 0;
}

int image_find_checksum(Image *img) {
        _cleanup_(freep) char *dir = NULL, *base = NULL, *side = NULL, *sums = NULL;
        int r;

        dir = strdup(img->path);
        base = strdup(img->path);
        if (!dir || !base)
                return -ENOMEM;
        if (asprintf(&side, "%s.sha256", img->path) < 0 || asprintf(&sums, "%s/SHA256SUMS", dirname(dir)) < 0)
                return -ENOMEM;

        r = find_sum_in(side, NULL, &img->sha256);
        if (r < 0)
                return error_setf(r, _("Cannot read %s: %s"), side, strerror(-r));
        if (r > 0) {
                img->sha256_origin = TAKE_PTR(side);
                return 1;
        }
        r = find_sum_in(sums, basename(base), &img->sha256);
        if (r < 0)
                return error_setf(r, _("Cannot read %s: %s"), sums, strerror(-r));
        if (r > 0) {
                img->sha256_origin = TAKE_PTR(sums);
                return 1;
        }
        return 0;
}

/* The GPT name the copied partition gets: what the image's sysupdate.d partition transfer will
 * look for (its first MatchPattern with @v = IMAGE_VERSION), else the image's own label. */
static char *install_label(const Image *img, const DiskPartition *p) {
        const ImageTransfer *t = image_find_transfer(img, p->dps->role);
        char *label = NULL;

        if (t && img->image_version && image_pattern_instantiate(t->match_patterns[0], img->image_version, t->tries_left,
                                                                 t->tries_done, &label) >= 0)
                return label;
        if (t)
                log_info("image %s: %s's first MatchPattern=%s cannot be named before installing; the label stays %s", img->path, t->file,
                         t->match_patterns[0], p->label ?: "empty");
        return strdup_safe(p->label);
}

static uint64_t slot_size(const Image *img, const DiskPartition *p) {
        uint64_t size = image_defs_slot_size(img->repart, img->n_repart, p->dps->role);

        /* Never smaller than what is copied into it; whole 4 KiB blocks, as repart's grain. */
        return ROUND_UP(MAX(size, p->size), (uint64_t) 4096);
}

int image_to_plan_source(const Image *img, PlanSource **ret) {
        _cleanup_(plan_source_freep) PlanSource *s = calloc(1, sizeof(PlanSource));
        PlanFingerprint fp = {};
        const ImageTransfer *uki_transfer = NULL;
        bool usr = img->kind == IMAGE_KIND_USR;
        int r;

        if (!s)
                return -ENOMEM;
        r = plan_fingerprint_from_disk(img->disk, &fp);
        if (r < 0)
                return r;
        s->fingerprint = TAKE_PTR(fp.partitions);
        plan_fingerprint_done(&fp);

        s->kind = usr ? PLAN_SOURCE_USR : PLAN_SOURCE_ROOT;
        if (img->stream) {
                /* Where it comes from, not the memory file that stands for it. */
                s->path = strdup(image_stream_location(img));
                s->compression = strdup(image_stream_compression(img));
                if (!s->path || !s->compression)
                        return -ENOMEM;
                s->streaming = true;
                s->content_pending = image_stream_pending(img);
                s->streamed_disk = strdup_safe(img->streamed_disk);
                s->streamed_offset = img->streamed_offset;
                s->stream_resumes = image_stream_resumes(img);
        } else {
                s->path = realpath(img->path, NULL);
                if (!s->path)
                        return -errno;
        }
        s->size = img->disk->size;
        s->sha256 = strdup_safe(img->sha256);
        s->sha256_origin = strdup_safe(img->sha256_origin);
        s->os_name = strdup_safe(img->pretty_name);
        s->image_id = strdup_safe(img->image_id);
        s->image_version = strdup_safe(img->image_version);
        if (usr) {
                const ImageRepartDef *root = image_defs_find(img->repart, img->n_repart, ROLE_ROOT),
                                     *home = image_defs_find(img->repart, img->n_repart, ROLE_HOME);
                s->root_fstype = strdup_safe(root ? root->format : NULL);
                s->home_fstype = strdup_safe(home ? home->format : NULL);
                s->note = strdup_safe(img->assumption);
                if ((root && root->format && !s->root_fstype) || (home && home->format && !s->home_fstype) ||
                    (img->assumption && !s->note))
                        return -ENOMEM;
        }
        s->partitions = calloc(img->n_os_parts ?: 1, sizeof(PlanSourcePartition));
        if (!s->partitions)
                return -ENOMEM;
        for (size_t i = 0; i < img->n_os_parts; i++) {
                const DiskPartition *p = img->os_parts[i];
                s->partitions[i] = (PlanSourcePartition) {
                        .role = p->dps->role,
                        .partno = p->partno,
                        .start = p->start,
                        .size = p->size,
                        .type_uuid = p->type_uuid,
                        .uuid = p->uuid,
                        .label = strdup_safe(p->label),
                        .flags = p->flags,
                        .fstype = strdup_safe(p->fstype),
                };
                if (usr) {
                        s->partitions[i].install_label = install_label(img, p);
                        s->partitions[i].slot_size = slot_size(img, p);
                }
                if (p == img->streamed)
                        s->streamed = i;
                s->n_partitions++;
        }
        if (usr)
                uki_transfer = image_find_transfer(img, _ROLE_INVALID);
        s->entries = calloc(img->n_ukis ?: 1, sizeof(PlanBootEntry));
        if (!s->entries)
                return -ENOMEM;
        for (size_t i = 0; i < img->n_ukis; i++) {
                const ImageUki *u = &img->ukis[i];
                s->entries[i] = (PlanBootEntry) {
                        .file = strdup_safe(u->name),
                        .install_on = _ROLE_INVALID,
                        .title = strdup_safe(u->info.os_pretty_name),
                        .version = strdup_safe(u->info.version),
                        .uname = strdup_safe(u->info.uname),
                };
                s->n_entries++;
                if (uki_transfer) {
                        const char *version = u->info.version ?: img->image_version, *rel = uki_transfer->path_relative_to;
                        char *name = NULL;
                        bool dup = false;

                        if (version && image_pattern_instantiate(uki_transfer->match_patterns[0], version, uki_transfer->tries_left,
                                                                 uki_transfer->tries_done, &name) >= 0) {
                                for (size_t k = 0; k < i; k++)
                                        dup = dup || streq_ptr(s->entries[k].install_as, name);
                                if (dup)
                                        name = mfree(name);
                        } else
                                log_info("image %s: %s's first MatchPattern=%s cannot name the UKI %s; it keeps its name", img->path,
                                         uki_transfer->file, uki_transfer->match_patterns[0], u->name);
                        s->entries[i].install_as = name;
                        s->entries[i].install_on = streq_ptr(rel, "esp") ? ROLE_ESP : streq_ptr(rel, "xbootldr") ? ROLE_XBOOTLDR : _ROLE_INVALID;
                }
        }
        *ret = TAKE_PTR(s);
        return 0;
}
