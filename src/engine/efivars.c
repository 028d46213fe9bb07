/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "efivars.h"
#include "error.h"
#include "i18n.h"
#include "log.h"
#include "macro.h"
#include "utf8.h"

/* UEFI 2.10 ch. 10 "Device Path Protocol": every node starts with Type (1 byte), SubType (1 byte)
 * and Length (2 bytes, little-endian, including this header). */
#define DP_HEADER_SIZE 4
#define DP_TYPE_MEDIA 0x04
#define DP_SUBTYPE_MEDIA_HARD_DRIVE 0x01
#define DP_SUBTYPE_MEDIA_FILE_PATH 0x04
#define DP_TYPE_END 0x7f
#define DP_SUBTYPE_END_INSTANCE 0x01
#define DP_SUBTYPE_END_ENTIRE 0xff

/* "Hard Drive Media Device Path": header, PartitionNumber u32, PartitionStart u64, PartitionSize
 * u64, PartitionSignature[16], PartitionFormat u8 (0x02: GUID Partition Table), SignatureType u8
 * (0x02: GUID signature). 4 + 4 + 8 + 8 + 16 + 1 + 1 = 42 bytes. */
#define DP_HARD_DRIVE_SIZE 42
#define DP_HD_FORMAT_GPT 0x02
#define DP_HD_SIGNATURE_GUID 0x02

/* EFI_LOAD_OPTION (UEFI 2.10 §3.1.3): Attributes u32, FilePathListLength u16, Description. */
#define LOAD_OPTION_HEADER_SIZE 6

#define EFI_BOOT_VARIABLE_ATTRIBUTES \
        (EFI_VARIABLE_NON_VOLATILE | EFI_VARIABLE_BOOTSERVICE_ACCESS | EFI_VARIABLE_RUNTIME_ACCESS)

/* "Boot" + 4 hex digits + "-" + GUID */
#define BOOT_VARIABLE_NAME_LEN (4 + 4 + 1 + 36)

static const char *efivars_root(const EfiVars *v) {
        return v && v->root ? v->root : EFIVARS_ROOT_DEFAULT;
}

bool efi_booted(void) {
        return access("/sys/firmware/efi", F_OK) >= 0;
}

static void put_le16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v) {
        for (size_t i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v) {
        for (size_t i = 0; i < 8; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static uint16_t get_le16(const uint8_t *p) {
        return (uint16_t) (p[0] | (p[1] << 8));
}

static uint32_t get_le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* An EFI_GUID is stored as Data1 u32, Data2 u16, Data3 u16 in little-endian, then Data4[8] as is
 * (UEFI 2.10 appendix A "GUID and Time Formats"); sd_id128_t holds the bytes in string order. */
static void id128_to_efi_guid(sd_id128_t id, uint8_t guid[static 16]) {
        static const uint8_t order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };

        for (size_t i = 0; i < 16; i++)
                guid[i] = id.bytes[order[i]];
}

static sd_id128_t efi_guid_to_id128(const uint8_t guid[static 16]) {
        sd_id128_t id;

        /* The byte swap is its own inverse. */
        memcpy(id.bytes, guid, 16);
        id128_to_efi_guid(id, id.bytes);
        return id;
}

/* Decodes one UTF-8 sequence at *p; advances *p. Returns the code point, or -1 on invalid input. */
static int32_t utf8_next(const char **p) {
        const unsigned char *s = (const unsigned char *) *p;
        uint32_t c;
        size_t n;

        if (s[0] < 0x80) {
                *p += 1;
                return s[0];
        }
        if ((s[0] & 0xe0) == 0xc0) {
                c = s[0] & 0x1f;
                n = 1;
        } else if ((s[0] & 0xf0) == 0xe0) {
                c = s[0] & 0x0f;
                n = 2;
        } else if ((s[0] & 0xf8) == 0xf0) {
                c = s[0] & 0x07;
                n = 3;
        } else
                return -1;

        for (size_t i = 1; i <= n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return -1;
                c = (c << 6) | (s[i] & 0x3f);
        }

        /* Reject overlong forms, surrogates and values beyond Unicode. */
        if ((n == 1 && c < 0x80) || (n == 2 && c < 0x800) || (n == 3 && c < 0x10000) ||
            (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
                return -1;

        *p += n + 1;
        return (int32_t) c;
}

/* Number of UTF-16 code units s needs, without the terminator; -EINVAL for invalid UTF-8. */
static ssize_t utf16_units(const char *s) {
        size_t n = 0;

        while (*s) {
                int32_t c = utf8_next(&s);
                if (c < 0)
                        return -EINVAL;
                n += c >= 0x10000 ? 2 : 1;
        }
        return (ssize_t) n;
}

/* Writes s as NUL-terminated UTF-16LE at out (room for utf16_units(s) + 1 units was checked);
 * with tilt, '/' becomes '\' as UEFI file paths use backslashes. Returns the bytes written. */
static size_t utf16le_encode(const char *s, bool tilt, uint8_t *out) {
        uint8_t *o = out;

        while (*s) {
                int32_t c = utf8_next(&s);

                if (tilt && c == '/')
                        c = '\\';
                if (c >= 0x10000) {
                        c -= 0x10000;
                        put_le16(o, (uint16_t) (0xd800 | (c >> 10)));
                        put_le16(o + 2, (uint16_t) (0xdc00 | (c & 0x3ff)));
                        o += 4;
                } else {
                        put_le16(o, (uint16_t) c);
                        o += 2;
                }
        }
        put_le16(o, 0);
        return (size_t) (o - out) + 2;
}

/* Appends n_units UTF-16LE code units at p (stopping at a NUL) to the UTF-8 string *s, which may
 * be NULL. Unpaired surrogates, which firmware does write, become U+FFFD rather than an error;
 * with untilt, '\' becomes '/'. */
static int utf16le_append_utf8(char **s, const uint8_t *p, size_t n_units, bool untilt) {
        size_t old = *s ? strlen(*s) : 0;
        char *buf, *o;

        /* A code unit expands to at most 3 UTF-8 bytes; a surrogate pair (2 units) to 4. */
        buf = realloc(*s, old + n_units * 3 + 1);
        if (!buf)
                return -ENOMEM;
        *s = buf;
        o = buf + old;

        for (size_t i = 0; i < n_units; i++) {
                uint32_t c = get_le16(p + 2 * i);

                if (c == 0)
                        break;
                if (c >= 0xd800 && c <= 0xdbff && i + 1 < n_units) {
                        uint32_t lo = get_le16(p + 2 * (i + 1));
                        if (lo >= 0xdc00 && lo <= 0xdfff) {
                                c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                                i++;
                        } else
                                c = 0xfffd;
                } else if (c >= 0xd800 && c <= 0xdfff)
                        c = 0xfffd;
                if (untilt && c == '\\')
                        c = '/';
                o += utf8_encode_unichar(c, o);
        }
        *o = 0;
        return 0;
}

int efi_make_load_option(
                const char *description,
                uint32_t partno,
                uint64_t start_lba,
                uint64_t size_lba,
                sd_id128_t part_uuid,
                const char *path,
                void **ret,
                size_t *ret_size) {

        _cleanup_(freep) uint8_t *buf = NULL;
        size_t desc_size, file_node_size, list_size, size, off;
        ssize_t desc_units, path_units;

        if (!description || !path || !ret || !ret_size)
                return error_setf(-EINVAL, "Cannot build an EFI load option: missing description or path.");
        if (partno == 0)
                /* Partition number 0 names the whole device, not a GPT entry (UEFI "Hard Drive"
                 * media device path). */
                return error_setf(-EINVAL, "Cannot build an EFI load option: partition numbers start at 1.");
        if (size_lba == 0)
                return error_setf(-EINVAL, "Cannot build an EFI load option for an empty partition.");
        if (sd_id128_is_null(part_uuid))
                return error_setf(-EINVAL, "Cannot build an EFI load option: the partition has no GUID.");
        if (path[0] != '/' && path[0] != '\\')
                return error_setf(-EINVAL, "Cannot build an EFI load option: loader path \"%s\" is not absolute.", path);

        desc_units = utf16_units(description);
        if (desc_units < 0)
                return error_setf(-EINVAL, _("EFI boot entry description \"%s\" is not valid UTF-8."), description);
        path_units = utf16_units(path);
        if (path_units < 0)
                return error_setf(-EINVAL, _("Loader path \"%s\" is not valid UTF-8."), path);

        desc_size = ((size_t) desc_units + 1) * 2;
        file_node_size = DP_HEADER_SIZE + ((size_t) path_units + 1) * 2;
        list_size = DP_HARD_DRIVE_SIZE + file_node_size + DP_HEADER_SIZE;
        /* Node lengths and FilePathListLength are 16-bit fields. */
        if (list_size > UINT16_MAX)
                return error_setf(-E2BIG, _("Loader path \"%s\" is too long for an EFI device path."), path);

        size = LOAD_OPTION_HEADER_SIZE + desc_size + list_size;
        buf = calloc(1, size);
        if (!buf)
                return error_setf(-ENOMEM, _("Out of memory building an EFI load option."));

        /* EFI_LOAD_OPTION header */
        put_le32(buf, EFI_LOAD_OPTION_ACTIVE);
        put_le16(buf + 4, (uint16_t) list_size);
        off = LOAD_OPTION_HEADER_SIZE;
        off += utf16le_encode(description, false, buf + off);

        /* Hard Drive media device path */
        buf[off] = DP_TYPE_MEDIA;
        buf[off + 1] = DP_SUBTYPE_MEDIA_HARD_DRIVE;
        put_le16(buf + off + 2, DP_HARD_DRIVE_SIZE);
        put_le32(buf + off + 4, partno);
        put_le64(buf + off + 8, start_lba);
        put_le64(buf + off + 16, size_lba);
        id128_to_efi_guid(part_uuid, buf + off + 24);
        buf[off + 40] = DP_HD_FORMAT_GPT;
        buf[off + 41] = DP_HD_SIGNATURE_GUID;
        off += DP_HARD_DRIVE_SIZE;

        /* File Path media device path */
        buf[off] = DP_TYPE_MEDIA;
        buf[off + 1] = DP_SUBTYPE_MEDIA_FILE_PATH;
        put_le16(buf + off + 2, (uint16_t) file_node_size);
        off += DP_HEADER_SIZE;
        off += utf16le_encode(path, true, buf + off);

        /* End Entire Device Path */
        buf[off] = DP_TYPE_END;
        buf[off + 1] = DP_SUBTYPE_END_ENTIRE;
        put_le16(buf + off + 2, DP_HEADER_SIZE);
        off += DP_HEADER_SIZE;

        if (off != size)
                return error_setf(-EIO, "Internal error: EFI load option size mismatch (%zu != %zu).", off, size);

        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

int efi_parse_load_option(
                const void *buf,
                size_t size,
                char **ret_description,
                sd_id128_t *ret_part_uuid,
                char **ret_path) {

        _cleanup_(freep) char *description = NULL, *path = NULL;
        const uint8_t *p = buf;
        sd_id128_t uuid = SD_ID128_NULL;
        bool have_uuid = false, first_instance = true, path_done = false, ended = false;
        size_t desc_end, list_size, off, end;
        int r;

        if (!buf || size < LOAD_OPTION_HEADER_SIZE)
                return error_setf(-EBADMSG, "EFI load option is truncated (%zu bytes).", size);

        list_size = get_le16(p + 4);

        /* Description: NUL-terminated UTF-16LE right after the header. */
        for (desc_end = LOAD_OPTION_HEADER_SIZE; desc_end + 2 <= size; desc_end += 2)
                if (get_le16(p + desc_end) == 0)
                        break;
        if (desc_end + 2 > size)
                return error_setf(-EBADMSG, "EFI load option description is not terminated.");

        if (ret_description) {
                r = utf16le_append_utf8(&description, p + LOAD_OPTION_HEADER_SIZE,
                                        (desc_end - LOAD_OPTION_HEADER_SIZE) / 2, false);
                if (r < 0)
                        return error_setf(r, "Out of memory parsing an EFI load option.");
        }

        off = desc_end + 2;
        if (list_size > size - off)
                return error_setf(-EBADMSG, "EFI load option device path (%zu bytes) exceeds the option (%zu bytes).",
                                  list_size, size);
        end = off + list_size; /* OptionalData may follow; it is not ours to interpret. */

        while (off < end) {
                uint8_t type, subtype;
                size_t len;

                if (end - off < DP_HEADER_SIZE)
                        return error_setf(-EBADMSG, "EFI device path node at offset %zu is truncated.", off);
                type = p[off];
                subtype = p[off + 1];
                len = get_le16(p + off + 2);
                if (len < DP_HEADER_SIZE || len > end - off)
                        return error_setf(-EBADMSG, "EFI device path node at offset %zu has invalid length %zu.",
                                          off, len);

                if (type == DP_TYPE_END && subtype == DP_SUBTYPE_END_ENTIRE) {
                        ended = true;
                        break;
                }
                if (type == DP_TYPE_END && subtype == DP_SUBTYPE_END_INSTANCE)
                        /* Later instances describe alternative devices; the first one is what
                         * firmware tries first and what bootctl compares. */
                        first_instance = false;
                else if (type == DP_TYPE_MEDIA && subtype == DP_SUBTYPE_MEDIA_HARD_DRIVE) {
                        if (len != DP_HARD_DRIVE_SIZE)
                                return error_setf(-EBADMSG, "EFI hard drive device path node has length %zu, expected %d.",
                                                  len, DP_HARD_DRIVE_SIZE);
                        if (first_instance && !have_uuid &&
                            p[off + 40] == DP_HD_FORMAT_GPT && p[off + 41] == DP_HD_SIGNATURE_GUID) {
                                uuid = efi_guid_to_id128(p + off + 24);
                                have_uuid = true;
                        }
                } else if (type == DP_TYPE_MEDIA && subtype == DP_SUBTYPE_MEDIA_FILE_PATH) {
                        if ((len - DP_HEADER_SIZE) % 2 != 0)
                                return error_setf(-EBADMSG, "EFI file path device path node has odd length %zu.", len);
                        /* A path may be split over consecutive File Path nodes. */
                        if (first_instance && !path_done && ret_path) {
                                r = utf16le_append_utf8(&path, p + off + DP_HEADER_SIZE,
                                                        (len - DP_HEADER_SIZE) / 2, true);
                                if (r < 0)
                                        return error_setf(r, "Out of memory parsing an EFI load option.");
                        }
                } else if (path)
                        path_done = true;

                off += len;
        }

        if (!ended)
                return error_setf(-EBADMSG, "EFI load option device path has no end node.");

        if (ret_description)
                *ret_description = TAKE_PTR(description);
        if (ret_part_uuid)
                *ret_part_uuid = uuid;
        if (ret_path)
                *ret_path = TAKE_PTR(path);
        return 0;
}

/* efivarfs marks most variables immutable (FS_IMMUTABLE_FL) against accidental removal or
 * modification. Before changing a variable the flag is dropped, and restored afterwards on every
 * path, as systemd's efi_set_variable() does. */
typedef struct ImmutableGuard {
        int fd;         /* the variable, open read-only; -EBADF when there is nothing to restore */
        unsigned flags; /* the flags found; FS_IOC_[GS]ETFLAGS take an int whatever their number says */
        const char *name;
} ImmutableGuard;

#define IMMUTABLE_GUARD_NULL ((ImmutableGuard) { .fd = -EBADF })

static void immutable_guard_restore(ImmutableGuard *g) {
        if (g->fd < 0)
                return;
        if (ioctl(g->fd, FS_IOC_SETFLAGS, &g->flags) < 0)
                log_debug_errno(-errno, "Cannot restore the immutable flag of EFI variable %s, ignoring: %m", g->name);
        closep(&g->fd);
        g->fd = -EBADF;
}

/* A missing variable and a filesystem without inode flags (ordinary directories in tests) leave
 * the guard empty. */
static int variable_drop_immutable(int dir_fd, const char *name, ImmutableGuard *g) {
        _cleanup_(closep) int fd = -EBADF;
        unsigned flags, f;

        fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0;
                return error_setf(-errno, _("Cannot open EFI variable %s: %m"), name);
        }

        if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) {
                if (errno == ENOTTY || errno == EOPNOTSUPP || errno == EINVAL)
                        return 0;
                return error_setf(-errno, _("Cannot read the flags of EFI variable %s: %m"), name);
        }
        if (!(flags & FS_IMMUTABLE_FL))
                return 0;

        f = flags & ~(unsigned) FS_IMMUTABLE_FL;
        if (ioctl(fd, FS_IOC_SETFLAGS, &f) < 0)
                return error_setf(-errno, _("Cannot make EFI variable %s writable: %m"), name);

        *g = (ImmutableGuard) { .fd = TAKE_FD(fd), .flags = flags, .name = name };
        return 1;
}

static int open_root(const EfiVars *v) {
        const char *root = efivars_root(v);
        int fd;

        fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return error_setf(-errno, _("Cannot open the EFI variable directory %s (is efivarfs mounted?): %m"), root);
        return fd;
}

/* Reads a variable: its attributes word and its data (malloc'ed, may be empty). */
static int variable_read(int dir_fd, const char *name, uint32_t *ret_attr, uint8_t **ret, size_t *ret_size) {
        _cleanup_(closep) int fd = -EBADF;
        _cleanup_(freep) uint8_t *buf = NULL;
        size_t size = 0, allocated = 0;

        fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0)
                return error_setf(-errno, _("Cannot open EFI variable %s: %m"), name);

        for (;;) {
                ssize_t n;

                if (allocated - size < 1024) {
                        uint8_t *q;

                        /* Variables live in a few hundred KiB of NVRAM. */
                        if (allocated >= 1024 * 1024)
                                return error_setf(-EFBIG, _("EFI variable %s is implausibly large."), name);
                        allocated = allocated ? allocated * 2 : 4096;
                        q = realloc(buf, allocated);
                        if (!q)
                                return error_setf(-ENOMEM, _("Out of memory reading EFI variable %s."), name);
                        buf = q;
                }

                n = read(fd, buf + size, allocated - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return error_setf(-errno, _("Cannot read EFI variable %s: %m"), name);
                }
                if (n == 0)
                        break;
                size += (size_t) n;
        }

        if (size < 4)
                return error_setf(-EBADMSG, _("EFI variable %s has no attributes word (%zu bytes)."), name, size);

        *ret_attr = get_le32(buf);
        memmove(buf, buf + 4, size - 4);
        *ret_size = size - 4;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* Writes a non-volatile variable. efivarfs takes the attributes word and the data in a single
 * write() and replaces the variable with it. */
static int variable_write(int dir_fd, const char *name, const void *data, size_t size) {
        _cleanup_(immutable_guard_restore) ImmutableGuard guard = IMMUTABLE_GUARD_NULL;
        _cleanup_(freep) uint8_t *buf = NULL, *old = NULL;
        _cleanup_(closep) int fd = -EBADF;
        struct statfs sfs;
        size_t old_size;
        uint32_t old_attr;
        ssize_t n;
        int r;

        /* NVRAM wears and some firmware misbehaves on writes: skip writes that change nothing. */
        r = variable_read(dir_fd, name, &old_attr, &old, &old_size);
        if (r >= 0 && old_attr == EFI_BOOT_VARIABLE_ATTRIBUTES && old_size == size &&
            memcmp(old, data, size) == 0) {
                log_debug("EFI variable %s already has the wanted content.", name);
                return 0;
        }
        if (r < 0)
                error_clear(); /* missing or unreadable: it is about to be replaced */

        buf = malloc(4 + size);
        if (!buf)
                return error_setf(-ENOMEM, _("Out of memory writing EFI variable %s."), name);
        put_le32(buf, EFI_BOOT_VARIABLE_ATTRIBUTES);
        memcpy(buf + 4, data, size);

        r = variable_drop_immutable(dir_fd, name, &guard);
        if (r < 0)
                return r;

        fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0644);
        if (fd < 0)
                return error_setf(-errno, _("Cannot open EFI variable %s for writing: %m"), name);

        /* Truncating is meaningless on efivarfs (each write replaces the variable); elsewhere a
         * shorter value must not leave the old tail behind. */
        if (fstatfs(fd, &sfs) < 0)
                return error_setf(-errno, _("Cannot stat the filesystem of EFI variable %s: %m"), name);
        if (sfs.f_type != EFIVARFS_MAGIC && ftruncate(fd, 0) < 0)
                return error_setf(-errno, _("Cannot truncate EFI variable %s: %m"), name);

        do
                n = write(fd, buf, 4 + size);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return error_setf(-errno, _("Cannot write EFI variable %s (%zu bytes): %m"), name, size);
        if ((size_t) n != 4 + size)
                return error_setf(-EIO, _("Short write to EFI variable %s (%zd of %zu bytes)."), name, n, 4 + size);

        log_debug("Wrote EFI variable %s (%zu bytes).", name, size);
        return 0;
}

static int variable_delete(int dir_fd, const char *name) {
        _cleanup_(immutable_guard_restore) ImmutableGuard guard = IMMUTABLE_GUARD_NULL;
        int r;

        r = variable_drop_immutable(dir_fd, name, &guard);
        if (r < 0)
                return r;

        if (unlinkat(dir_fd, name, 0) < 0)
                return error_setf(-errno, _("Cannot delete EFI variable %s: %m"), name);

        /* Gone: nothing left to protect. */
        closep(&guard.fd);
        guard.fd = -EBADF;

        log_debug("Deleted EFI variable %s.", name);
        return 0;
}

static void boot_variable_name(char name[static BOOT_VARIABLE_NAME_LEN + 1], uint16_t id) {
        /* UEFI 2.10 §3.1.1: the #### of Boot#### are four upper-case hex digits. */
        snprintf(name, BOOT_VARIABLE_NAME_LEN + 1, "Boot%04X-" EFI_GLOBAL_VARIABLE_GUID_STR, id);
}

#define BOOT_ORDER_NAME ("BootOrder-" EFI_GLOBAL_VARIABLE_GUID_STR)

static int parse_boot_id(const char *name, uint16_t *ret) {
        unsigned id = 0;

        if (strlen(name) != BOOT_VARIABLE_NAME_LEN || strncmp(name, "Boot", 4) != 0 ||
            !streq(name + 8, "-" EFI_GLOBAL_VARIABLE_GUID_STR))
                return -EINVAL;

        for (size_t i = 4; i < 8; i++) {
                char c = name[i];

                if (c >= '0' && c <= '9')
                        id = id << 4 | (unsigned) (c - '0');
                else if (c >= 'A' && c <= 'F')
                        id = id << 4 | (unsigned) (c - 'A' + 10);
                else
                        return -EINVAL;
        }

        *ret = (uint16_t) id;
        return 0;
}

/* Marks the numbers of the existing Boot#### variables in used (a 65536-bit bitmap). */
static int list_boot_entries(int dir_fd, const char *root, uint8_t used[static 65536 / 8]) {
        _cleanup_(closep) int fd = -EBADF;
        DIR *d;

        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return error_setf(-errno, _("Cannot open the EFI variable directory %s: %m"), root);
        d = fdopendir(fd);
        if (!d)
                return error_setf(-errno, _("Cannot list the EFI variable directory %s: %m"), root);
        TAKE_FD(fd);

        memset(used, 0, 65536 / 8);
        for (;;) {
                struct dirent *de;
                uint16_t id;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        int e = errno;

                        closedir(d);
                        if (e != 0)
                                return error_setf(-e, _("Cannot list the EFI variable directory %s: %s"), root, strerror(e));
                        return 0;
                }
                if (parse_boot_id(de->d_name, &id) >= 0)
                        used[id / 8] |= (uint8_t) (1u << (id % 8));
        }
}

static bool bitmap_test(const uint8_t *used, unsigned id) {
        return used[id / 8] & (1u << (id % 8));
}

/* Compares loader paths as firmware sees them: '/' and '\' are the same separator, and ASCII case
 * is ignored because some firmware upper-cases stored paths (bootctl's same_entry() does too). */
static bool efi_path_equal(const char *a, const char *b) {
        for (;; a++, b++) {
                char x = *a == '\\' ? '/' : *a, y = *b == '\\' ? '/' : *b;

                if (x >= 'a' && x <= 'z')
                        x = (char) (x - 'a' + 'A');
                if (y >= 'a' && y <= 'z')
                        y = (char) (y - 'a' + 'A');
                if (x != y)
                        return false;
                if (x == 0)
                        return true;
        }
}

static bool boot_entry_matches(int dir_fd, uint16_t id, sd_id128_t part_uuid, const char *path) {
        char name[BOOT_VARIABLE_NAME_LEN + 1];
        _cleanup_(freep) uint8_t *data = NULL;
        _cleanup_(freep) char *opath = NULL;
        sd_id128_t ouuid;
        uint32_t attr;
        size_t size;

        boot_variable_name(name, id);
        if (variable_read(dir_fd, name, &attr, &data, &size) < 0 ||
            efi_parse_load_option(data, size, NULL, &ouuid, &opath) < 0) {
                log_debug("Ignoring unreadable EFI boot entry %s: %s", name, error_message() ?: "unknown error");
                error_clear();
                return false;
        }

        return sd_id128_equal(ouuid, part_uuid) && opath && efi_path_equal(opath, path);
}

static int read_boot_order(int dir_fd, const char *root, uint16_t **ret, size_t *ret_n) {
        _cleanup_(freep) uint8_t *data = NULL;
        _cleanup_(freep) uint16_t *order = NULL;
        uint32_t attr;
        size_t size;
        int r;

        r = variable_read(dir_fd, BOOT_ORDER_NAME, &attr, &data, &size);
        if (r == -ENOENT)
                return error_setf(r, _("EFI variable BootOrder does not exist in %s."), root);
        if (r < 0)
                return r;
        if (size % 2 != 0)
                return error_setf(-EBADMSG, _("EFI variable BootOrder has odd size %zu."), size);

        if (size > 0) {
                order = malloc(size);
                if (!order)
                        return error_setf(-ENOMEM, _("Out of memory reading BootOrder."));
                for (size_t i = 0; i < size / 2; i++)
                        order[i] = get_le16(data + 2 * i);
        }

        *ret = TAKE_PTR(order);
        *ret_n = size / 2;
        return 0;
}

static int write_boot_order(int dir_fd, const uint16_t *order, size_t n) {
        _cleanup_(freep) uint8_t *data = NULL;

        data = malloc(MAX(n, (size_t) 1) * 2);
        if (!data)
                return error_setf(-ENOMEM, _("Out of memory writing BootOrder."));
        for (size_t i = 0; i < n; i++)
                put_le16(data + 2 * i, order[i]);

        return variable_write(dir_fd, BOOT_ORDER_NAME, data, n * 2);
}

int efi_get_boot_order(const EfiVars *v, uint16_t **ret, size_t *ret_n) {
        _cleanup_(closep) int dir_fd = -EBADF;

        if (!ret || !ret_n)
                return error_setf(-EINVAL, "efi_get_boot_order() needs output arguments.");

        dir_fd = open_root(v);
        if (dir_fd < 0)
                return dir_fd;

        return read_boot_order(dir_fd, efivars_root(v), ret, ret_n);
}

/* Puts id first in BootOrder (creating it when missing) and drops its other occurrences; other
 * entries keep their relative order, duplicates included, since they are not ours. */
static int boot_order_put_first(int dir_fd, const char *root, uint16_t id) {
        _cleanup_(freep) uint16_t *order = NULL, *new_order = NULL;
        size_t n = 0, m = 0;
        int r;

        r = read_boot_order(dir_fd, root, &order, &n);
        if (r == -ENOENT)
                error_clear();
        else if (r < 0)
                return r;

        new_order = malloc((n + 1) * sizeof(uint16_t));
        if (!new_order)
                return error_setf(-ENOMEM, _("Out of memory updating BootOrder."));

        new_order[m++] = id;
        for (size_t i = 0; i < n; i++)
                if (order[i] != id)
                        new_order[m++] = order[i];

        if (r >= 0 && m == n && memcmp(order, new_order, n * sizeof(uint16_t)) == 0)
                return 0;

        return write_boot_order(dir_fd, new_order, m);
}

int efi_add_boot_entry(
                const EfiVars *v,
                const char *description,
                uint32_t partno,
                uint64_t start_lba,
                uint64_t size_lba,
                sd_id128_t part_uuid,
                const char *path,
                uint16_t *ret_id) {

        _cleanup_(freep) void *option = NULL;
        _cleanup_(freep) uint8_t *used = NULL;
        _cleanup_(closep) int dir_fd = -EBADF;
        const char *root = efivars_root(v);
        char name[BOOT_VARIABLE_NAME_LEN + 1];
        bool found = false, have_free = false;
        uint16_t id = 0;
        size_t option_size;
        int r;

        if (!ret_id)
                return error_setf(-EINVAL, "efi_add_boot_entry() needs an output argument.");

        r = efi_make_load_option(description, partno, start_lba, size_lba, part_uuid, path, &option, &option_size);
        if (r < 0)
                return r;

        dir_fd = open_root(v);
        if (dir_fd < 0)
                return dir_fd;

        used = malloc(65536 / 8);
        if (!used)
                return error_setf(-ENOMEM, _("Out of memory listing EFI boot entries."));
        r = list_boot_entries(dir_fd, root, used);
        if (r < 0)
                return r;

        /* An existing entry for this loader on this partition, else the lowest free number, as
         * bootctl's find_slot() picks. */
        for (unsigned i = 0; i <= UINT16_MAX; i++)
                if (bitmap_test(used, i) && boot_entry_matches(dir_fd, (uint16_t) i, part_uuid, path)) {
                        id = (uint16_t) i;
                        found = true;
                        break;
                }
        if (!found)
                for (unsigned i = 0; i <= UINT16_MAX; i++)
                        if (!bitmap_test(used, i)) {
                                id = (uint16_t) i;
                                have_free = true;
                                break;
                        }
        if (!found && !have_free)
                return error_setf(-ENOSPC, _("All 65536 EFI boot entry numbers are in use in %s."), root);

        boot_variable_name(name, id);
        r = variable_write(dir_fd, name, option, option_size);
        if (r < 0)
                return error_prefixf(r, found ? _("Cannot update EFI boot entry Boot%04X") : _("Cannot create EFI boot entry Boot%04X"), id);

        r = boot_order_put_first(dir_fd, root, id);
        if (r < 0)
                return error_prefixf(r, _("Cannot put EFI boot entry Boot%04X first in BootOrder"), id);

        log_info("%s EFI boot entry Boot%04X \"%s\" for %s, first in BootOrder.",
                 found ? "Reused" : "Created", id, description, path);

        *ret_id = id;
        return 0;
}

int efi_remove_boot_entry(const EfiVars *v, uint16_t id) {
        _cleanup_(freep) uint16_t *order = NULL;
        _cleanup_(closep) int dir_fd = -EBADF;
        const char *root = efivars_root(v);
        char name[BOOT_VARIABLE_NAME_LEN + 1];
        size_t n = 0, m = 0;
        int r;

        dir_fd = open_root(v);
        if (dir_fd < 0)
                return dir_fd;

        boot_variable_name(name, id);
        if (faccessat(dir_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return error_setf(-ENOENT, _("EFI boot entry Boot%04X does not exist."), id);
                return error_setf(-errno, _("Cannot access EFI variable %s: %m"), name);
        }

        /* BootOrder first: an order naming a missing entry is harmless, firmware skips it. */
        r = read_boot_order(dir_fd, root, &order, &n);
        if (r == -ENOENT)
                error_clear();
        else if (r < 0)
                return r;
        else {
                for (size_t i = 0; i < n; i++)
                        if (order[i] != id)
                                order[m++] = order[i];
                if (m != n) {
                        r = write_boot_order(dir_fd, order, m);
                        if (r < 0)
                                return error_prefixf(r, _("Cannot remove Boot%04X from BootOrder"), id);
                }
        }

        r = variable_delete(dir_fd, name);
        if (r < 0)
                return r;

        log_info("Removed EFI boot entry Boot%04X.", id);
        return 0;
}

static const char *strna(const char *s) {
        return s ?: "n/a";
}

/* A variable's efivarfs name: "<Name>-<vendor-guid>", one path component. */
static int check_variable_name(const char *name) {
        const char *dash;
        sd_id128_t guid;

        if (!name || !*name || strchr(name, '/') || strlen(name) > 1024)
                return error_setf(-EINVAL, "Invalid EFI variable name \"%s\".", strna(name));
        /* The vendor GUID is the last 36 characters, after a '-'. */
        dash = strlen(name) > 37 ? name + strlen(name) - 37 : NULL;
        if (!dash || *dash != '-' || dash == name || sd_id128_from_string(dash + 1, &guid) < 0)
                return error_setf(-EINVAL, "EFI variable name \"%s\" does not end in -<vendor GUID>.", name);
        return 0;
}

int efi_get_variable(const EfiVars *v, const char *name, void **ret, size_t *ret_size) {
        _cleanup_(closep) int dir_fd = -EBADF;
        _cleanup_(freep) uint8_t *data = NULL;
        uint32_t attr;
        size_t size;
        int r;

        if (!ret || !ret_size)
                return error_setf(-EINVAL, "efi_get_variable() needs output arguments.");
        r = check_variable_name(name);
        if (r < 0)
                return r;

        dir_fd = open_root(v);
        if (dir_fd < 0)
                return dir_fd;

        r = variable_read(dir_fd, name, &attr, &data, &size);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(data);
        *ret_size = size;
        return 0;
}

int efi_set_variable(const EfiVars *v, const char *name, const void *data, size_t size) {
        _cleanup_(closep) int dir_fd = -EBADF;
        int r;

        if (!data && size > 0)
                return error_setf(-EINVAL, "efi_set_variable() got no data.");
        /* efivarfs takes a write of the attributes word alone as "delete": an empty variable can
         * not exist. */
        if (size == 0)
                return error_setf(-EINVAL, "EFI variable %s can not be empty.", strna(name));
        r = check_variable_name(name);
        if (r < 0)
                return r;

        dir_fd = open_root(v);
        if (dir_fd < 0)
                return dir_fd;

        return variable_write(dir_fd, name, data, size);
}

int efi_delete_variable(const EfiVars *v, const char *name) {
        _cleanup_(closep) int dir_fd = -EBADF;
        int r;

        r = check_variable_name(name);
        if (r < 0)
                return r;

        dir_fd = open_root(v);
        if (dir_fd < 0)
                return dir_fd;

        if (faccessat(dir_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return 0;
                return error_setf(-errno, _("Cannot access EFI variable %s: %m"), name);
        }

        return variable_delete(dir_fd, name);
}

int efi_get_variable_string(const EfiVars *v, const char *name, char **ret) {
        _cleanup_(freep) uint8_t *data = NULL;
        _cleanup_(freep) char *s = NULL;
        size_t size;
        int r;

        if (!ret)
                return error_setf(-EINVAL, "efi_get_variable_string() needs an output argument.");

        r = efi_get_variable(v, name, (void **) &data, &size);
        if (r < 0)
                return r;
        if (size % 2 != 0)
                return error_setf(-EBADMSG, _("EFI variable %s is not a UTF-16 string (odd size %zu)."), name, size);

        /* Up to the first NUL; sd-boot and systemd write one, but a missing one is tolerated. */
        r = utf16le_append_utf8(&s, data, size / 2, false);
        if (r < 0)
                return error_setf(r, _("Out of memory reading EFI variable %s."), name);
        if (!s) {
                s = strdup("");
                if (!s)
                        return error_setf(-ENOMEM, _("Out of memory reading EFI variable %s."), name);
        }

        *ret = TAKE_PTR(s);
        return 0;
}

int efi_set_variable_string(const EfiVars *v, const char *name, const char *value) {
        _cleanup_(freep) uint8_t *data = NULL;
        ssize_t units;
        size_t size;

        if (!value)
                return error_setf(-EINVAL, "efi_set_variable_string() got no value.");
        units = utf16_units(value);
        if (units < 0)
                return error_setf(-EINVAL, _("The value for EFI variable %s is not valid UTF-8."), strna(name));

        /* NUL-terminated, as systemd's efi_set_variable_string() writes the Boot Loader
         * Interface's strings. */
        size = ((size_t) units + 1) * 2;
        data = malloc(size);
        if (!data)
                return error_setf(-ENOMEM, _("Out of memory writing EFI variable %s."), strna(name));
        if (utf16le_encode(value, false, data) != size)
                return error_setf(-EIO, "Internal error: UTF-16 size mismatch for EFI variable %s.", strna(name));

        return efi_set_variable(v, name, data, size);
}
