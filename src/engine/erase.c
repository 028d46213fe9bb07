/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libcryptsetup.h>
#include <linux/fs.h>
#include <linux/loop.h>

#include "erase.h"
#include "error.h"
#include "fileio.h"
#include "i18n.h"
#include "interrupt.h"
#include "log.h"
#include "luks.h"
#include "size.h"

static const char *const erase_method_table[_ERASE_METHOD_MAX] = {
        [ERASE_CRYPTO] = "crypto-erase",
        [ERASE_DISCARD] = "discard",
        [ERASE_OVERWRITE] = "overwrite",
        [ERASE_SECURE_DISCARD] = "secure-discard",
};
DEFINE_STRING_TABLE_LOOKUP(erase_method, EraseMethod);

/* Writes go out in 1 MiB pieces (random bytes for the LUKS metadata, zeroes for an overwrite):
 * big enough for full speed, small enough for a progress bar that moves. */
#define WRITE_CHUNK (UINT64_C(1) << 20)
/* Discards in 1 GiB pieces: each is one request to the device, so a 2 TB disk is ~2000 ioctls. */
#define DISCARD_CHUNK (UINT64_C(1) << 30)
/* What a discard of unencrypted data is followed by at both ends: zeroes, so that no filesystem
 * signature or superblock survives on devices that return old data after a discard. */
#define EDGE_SIZE (UINT64_C(1) << 20)
/* The write rate assumed for an estimate when nothing better is known: 100 MB/s is what a USB 3
 * stick or an old hard disk sustains; SSDs are faster, so the estimate errs on the long side. */
#define ASSUMED_WRITE_RATE (UINT64_C(100) * 1000 * 1000)

/* LUKS on-disk magic (cryptsetup's docs/on-disk-format-luks2.pdf and LUKS1's). */
static const char luks_magic[6] = { 'L', 'U', 'K', 'S', (char) 0xba, (char) 0xbe };
static const char luks2_magic_secondary[6] = { 'S', 'K', 'U', 'L', (char) 0xba, (char) 0xbe };
#define LUKS2_HDR_SIZE_MIN (UINT64_C(16) * 1024)
#define LUKS2_HDR_SIZE_MAX (UINT64_C(4) * 1024 * 1024)
#define LUKS2_BIN_SIZE 4096
#define LUKS1_KEYSLOTS 8
#define LUKS1_KEY_ENABLED 0x00AC71F3u
/* A LUKS2 header whose JSON cannot be read says nothing about where its keyslots end: cryptsetup's
 * default metadata (two 16 KiB headers and the keyslot area) ends at 16 MiB. */
#define LUKS2_DEFAULT_DATA_OFFSET (UINT64_C(16) << 20)

void erase_result_done(EraseResult *r) {
        free(r->luks_uuid);
        *r = (EraseResult) {};
}

typedef enum HeaderKind {
        HEADER_NONE,
        HEADER_LUKS1,
        HEADER_LUKS2,
} HeaderKind;

/* What the start of the partition says, read by erase.c itself: the partition may be a byte range
 * of an image file, which libcryptsetup cannot open at an offset. */
typedef struct Header {
        HeaderKind kind;
        uint64_t data_offset;  /* where the payload starts: everything before is metadata */
        unsigned keyslots;     /* keyslots the header lists as in use */
        bool damaged;          /* magic found, but the metadata could not be read in full */
        char uuid[41];
} Header;

typedef struct Eraser {
        const EraseTarget *t;
        const char *name;      /* for sentences: the partition node, or "FILE (partition at N)" */
        char name_buf[512];
        int fd;                /* the disk or image file */
        int own_fd;            /* fd when opened here */
        uint64_t file_size;
        EraseProgress progress;
        void *userdata;
        uint64_t done;
} Eraser;

static void eraser_close(Eraser *e) {
        if (e->own_fd >= 0)
                close(e->own_fd);
        e->own_fd = -EBADF;
}

static void report(Eraser *e, uint64_t add) {
        e->done = MIN(e->done + add, e->t->size);
        if (e->progress)
                e->progress(e->done, e->t->size, e->userdata);
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static int eraser_open(const EraseTarget *t, bool writable, Eraser *e) {
        struct stat st;

        *e = (Eraser) { .t = t, .fd = -EBADF, .own_fd = -EBADF };

        if (!t || isempty(t->file))
                return error_setf(-EINVAL, "Cannot erase a partition: no disk or image file given.");
        if (t->node) {
                e->name = t->node;
        } else {
                snprintf(e->name_buf, sizeof(e->name_buf), _("%s (the partition at %" PRIu64 " bytes)"), t->file, t->offset);
                e->name = e->name_buf;
        }
        if (t->size == 0 || t->offset > UINT64_MAX - t->size || t->offset + t->size > (uint64_t) INT64_MAX)
                return error_setf(-EINVAL, _("Cannot erase %s: the partition's range (%" PRIu64 " bytes at %" PRIu64 ") is not valid."),
                                  e->name, t->size, t->offset);

        if (t->fd >= 0)
                e->fd = t->fd;
        else {
                e->own_fd = open(t->file, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY);
                if (e->own_fd < 0)
                        return error_setf(-errno, _("Cannot open %s to erase %s: %m"), t->file, e->name);
                e->fd = e->own_fd;
        }
        if (fstat(e->fd, &st) < 0)
                return error_setf(-errno, _("Cannot read %s: %m"), t->file);
        if (t->is_block && !S_ISBLK(st.st_mode))
                return error_setf(-ENOTBLK, _("Cannot erase %s: %s is not a block device any more."), e->name, t->file);
        if (!t->is_block && !S_ISREG(st.st_mode))
                return error_setf(-EINVAL, _("Cannot erase %s: %s is not an image file."), e->name, t->file);
        if (S_ISBLK(st.st_mode)) {
                if (ioctl(e->fd, BLKGETSIZE64, &e->file_size) < 0)
                        return error_setf(-errno, _("Cannot read the size of %s: %m"), t->file);
        } else
                e->file_size = (uint64_t) st.st_size;
        if (t->offset + t->size > e->file_size)
                return error_setf(-EINVAL, _("Cannot erase %s: it ends at %" PRIu64 " bytes, beyond the end of %s (%" PRIu64 " bytes)."),
                                  e->name, t->offset + t->size, t->file, e->file_size);
        return 0;
}

/* Reads len bytes at off from the start of the partition; a range beyond its end reads as zeroes. */
static int read_at(Eraser *e, void *buf, size_t len, uint64_t off) {
        memset(buf, 0, len);
        if (off >= e->t->size)
                return 0;
        len = (size_t) MIN((uint64_t) len, e->t->size - off);
        return pread_full(e->fd, buf, len, e->t->offset + off);
}

static uint64_t json_u64(json_object *o, const char *key, uint64_t def) {
        json_object *v;
        const char *s;
        char *end;
        uint64_t u;

        /* LUKS2 writes 64-bit numbers as decimal strings (JSON numbers lose precision). */
        if (!json_object_object_get_ex(o, key, &v))
                return def;
        if (json_object_is_type(v, json_type_int))
                return (uint64_t) json_object_get_int64(v);
        s = json_object_get_string(v);
        if (isempty(s) || s[0] < '0' || s[0] > '9')
                return def;
        errno = 0;
        u = strtoull(s, &end, 10);
        return errno == 0 && !*end ? u : def;
}

/* Where the LUKS2 metadata ends and the payload starts, from the JSON area of one header copy:
 * the end of the two headers and the keyslot area, of every keyslot's area, and the first
 * segment's offset, whichever is furthest, so that no key material is left behind. */
static int luks2_parse_json(Eraser *e, uint64_t copy_offset, uint64_t hdr_size, Header *h) {
        _cleanup_(freep) char *text = NULL;
        json_object *j = NULL, *config, *keyslots, *segments;
        uint64_t end = 2 * hdr_size, seg = UINT64_MAX;
        size_t len = (size_t) (hdr_size - LUKS2_BIN_SIZE);
        int r;

        text = malloc(len + 1);
        if (!text)
                return -ENOMEM;
        r = read_at(e, text, len, copy_offset + LUKS2_BIN_SIZE);
        if (r < 0)
                return r;
        text[len] = 0;
        j = json_tokener_parse(text);
        if (!j || !json_object_is_type(j, json_type_object)) {
                if (j)
                        json_object_put(j);
                return -EBADMSG;
        }

        if (json_object_object_get_ex(j, "config", &config))
                end = MAX(end, 2 * hdr_size + json_u64(config, "keyslots_size", 0));
        if (json_object_object_get_ex(j, "keyslots", &keyslots) && json_object_is_type(keyslots, json_type_object)) {
                json_object_object_foreach(keyslots, k, slot) {
                        json_object *area;

                        (void) k;
                        h->keyslots++;
                        if (json_object_object_get_ex(slot, "area", &area))
                                end = MAX(end, json_u64(area, "offset", 0) + json_u64(area, "size", 0));
                }
        }
        if (json_object_object_get_ex(j, "segments", &segments) && json_object_is_type(segments, json_type_object)) {
                json_object_object_foreach(segments, k, s) {
                        (void) k;
                        seg = MIN(seg, json_u64(s, "offset", UINT64_MAX));
                }
        }
        json_object_put(j);

        h->data_offset = seg == UINT64_MAX ? end : MAX(seg, end);
        return 0;
}

static bool luks2_hdr_size_valid(uint64_t s) {
        return s >= LUKS2_HDR_SIZE_MIN && s <= LUKS2_HDR_SIZE_MAX && (s & (s - 1)) == 0;
}

/* Finds a LUKS1 or LUKS2 header at the start of the partition, or a LUKS2 secondary header
 * alone (the primary damaged or half-erased: the volume key can still be rebuilt from it). */
static int header_read(Eraser *e, Header *ret) {
        _cleanup_(freep) uint8_t *bin = NULL;
        Header h = {};
        bool primary_damaged = false;
        uint16_t version;
        int r;

        bin = malloc(LUKS2_BIN_SIZE);
        if (!bin)
                return -ENOMEM;
        r = read_at(e, bin, LUKS2_BIN_SIZE, 0);
        if (r < 0)
                return error_setf(r, _("Cannot read the start of %s: %s"), e->name, strerror(-r));

        memcpy(&version, bin + 6, sizeof(version));
        version = be16toh(version);

        if (memcmp(bin, luks_magic, sizeof(luks_magic)) == 0 && version == 1) {
                uint32_t payload, key_bytes;
                uint64_t end = 592; /* the LUKS1 header itself */

                h.kind = HEADER_LUKS1;
                memcpy(&payload, bin + 104, 4);
                memcpy(&key_bytes, bin + 108, 4);
                payload = be32toh(payload);
                key_bytes = be32toh(key_bytes);
                memcpy(h.uuid, bin + 168, 40);
                for (unsigned i = 0; i < LUKS1_KEYSLOTS; i++) {
                        const uint8_t *ks = bin + 208 + i * 48;
                        uint32_t active, material, stripes;

                        memcpy(&active, ks, 4);
                        memcpy(&material, ks + 40, 4);
                        memcpy(&stripes, ks + 44, 4);
                        if (be32toh(active) == LUKS1_KEY_ENABLED)
                                h.keyslots++;
                        /* Disabled keyslots' areas too: an old copy of key material may be there. */
                        end = MAX(end, (uint64_t) be32toh(material) * 512 +
                                               ROUND_UP((uint64_t) key_bytes * be32toh(stripes), 4096));
                }
                h.data_offset = MAX((uint64_t) payload * 512, end);
        } else if (memcmp(bin, luks_magic, sizeof(luks_magic)) == 0 && version == 2) {
                uint64_t hdr_size;

                memcpy(&hdr_size, bin + 8, 8);
                hdr_size = be64toh(hdr_size);
                memcpy(h.uuid, bin + 168, 40);
                if (luks2_hdr_size_valid(hdr_size) && luks2_parse_json(e, 0, hdr_size, &h) >= 0)
                        h.kind = HEADER_LUKS2;
                else {
                        /* The primary copy is damaged: the secondary may still be whole. */
                        h.keyslots = 0;
                        primary_damaged = true;
                }
        }

        if (h.kind == HEADER_NONE) {
                /* No (readable) primary header: look for a secondary one at each offset a header
                 * size allows. libcryptsetup loads a volume from it alone, so it is as dangerous
                 * as a whole header — an interrupted erase may leave one. */
                for (uint64_t s = LUKS2_HDR_SIZE_MIN; s <= LUKS2_HDR_SIZE_MAX && s < e->t->size; s *= 2) {
                        uint64_t hdr_size;

                        r = read_at(e, bin, LUKS2_BIN_SIZE, s);
                        if (r < 0)
                                return error_setf(r, _("Cannot read %s: %s"), e->name, strerror(-r));
                        memcpy(&version, bin + 6, sizeof(version));
                        memcpy(&hdr_size, bin + 8, 8);
                        if (memcmp(bin, luks2_magic_secondary, sizeof(luks2_magic_secondary)) != 0 || be16toh(version) != 2 ||
                            be64toh(hdr_size) != s)
                                continue;
                        h.kind = HEADER_LUKS2;
                        memcpy(h.uuid, bin + 168, 40);
                        h.damaged = luks2_parse_json(e, s, s, &h) < 0;
                        log_info("%s has %s primary LUKS2 header, but a secondary one at %" PRIu64 " bytes: erasing it as LUKS2.",
                                 e->name, primary_damaged ? "a damaged" : "no", s);
                        break;
                }
        }
        if (h.kind == HEADER_NONE && primary_damaged) {
                h.kind = HEADER_LUKS2;
                h.damaged = true;
        }

        if (h.kind != HEADER_NONE && (h.damaged || h.data_offset == 0))
                /* The metadata's extent is unknown: cryptsetup's default. */
                h.data_offset = MAX(h.data_offset, LUKS2_DEFAULT_DATA_OFFSET);
        h.data_offset = MIN(h.data_offset, e->t->size);
        h.uuid[sizeof(h.uuid) - 1] = 0;
        for (char *c = h.uuid; *c; c++)
                if ((unsigned char) *c < 0x20 || (unsigned char) *c > 0x7e)
                        *c = '?';

        *ret = h;
        return 0;
}

/* The queue attribute of the disk holding the block device fd: partitions have no queue of their
 * own, it is their parent's. */
static int blk_queue_u64(int fd, const char *attr, uint64_t *ret) {
        _cleanup_(freep) char *s = NULL;
        struct stat st;
        char path[128];
        int r;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISBLK(st.st_mode))
                return -ENOTBLK;
        snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/queue/%s", major(st.st_rdev), minor(st.st_rdev), attr);
        r = read_one_line_file(path, &s);
        if (r == -ENOENT) {
                snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../queue/%s", major(st.st_rdev), minor(st.st_rdev), attr);
                r = read_one_line_file(path, &s);
        }
        if (r < 0)
                return r;
        errno = 0;
        *ret = strtoull(s, NULL, 10);
        return errno ? -errno : 0;
}

/* Whether discarding (punching) can be expected to work, without trying: erase_probe() writes
 * nothing. Image files: the filesystems known to punch holes; others are tried by the erase. */
static bool discard_expected(Eraser *e) {
        uint64_t max = 0;
        struct statfs sf;

        if (e->t->is_block)
                return blk_queue_u64(e->fd, "discard_max_bytes", &max) >= 0 && max > 0;
        if (fstatfs(e->fd, &sf) < 0)
                return false;
        switch ((unsigned long) sf.f_type) {
        case 0xEF53:     /* ext4 */
        case 0x58465342: /* xfs */
        case 0x9123683E: /* btrfs */
        case 0x01021994: /* tmpfs */
        case 0xF2F52010: /* f2fs */
        case 0xCA451A4E: /* bcachefs */
        case 0x2FC12FC1: /* zfs */
                return true;
        default:
                return false;
        }
}

/* Asks the device to drop [off, off+len) of the partition, in pieces; req is BLKDISCARD or
 * BLKSECDISCARD, or 0 for punching a hole in an image file. Returns 0 when done; when the device
 * refuses the first piece (nothing dropped yet) 0 too, with *ret_refused set to its errno, so that
 * the caller picks another way; a failure halfway is an error with a sentence. */
static int discard_range(Eraser *e, unsigned long req, uint64_t off, uint64_t len, int *ret_refused) {
        *ret_refused = 0;
        for (uint64_t p = 0; p < len;) {
                uint64_t n = MIN(DISCARD_CHUNK, len - p), start = e->t->offset + off + p;
                int r;

                if (e->t->is_block) {
                        uint64_t range[2] = { start, n };
                        r = ioctl(e->fd, req, range) < 0 ? -errno : 0;
                } else
                        r = fallocate(e->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) start, (off_t) n) < 0 ? -errno : 0;
                if (r < 0) {
                        if (p == 0) {
                                *ret_refused = -r;
                                return 0;
                        }
                        return error_setf(r, _("Cannot discard %s at %s: %s"), e->name, FORMAT_BYTES(off + p), strerror(-r));
                }
                p += n;
                report(e, n);
        }
        return 0;
}

/* Writes random bytes (random == true) or zeroes over [off, off+len) of the partition. */
static int write_range(Eraser *e, bool random, uint64_t off, uint64_t len, bool interruptible) {
        _cleanup_(freep) uint8_t *buf = NULL;

        /* Aligned, in case the caller's descriptor was opened with O_DIRECT. */
        if (posix_memalign((void **) &buf, 4096, WRITE_CHUNK) != 0)
                return -ENOMEM;
        memset(buf, 0, WRITE_CHUNK);

        for (uint64_t p = 0; p < len;) {
                size_t n = (size_t) MIN(WRITE_CHUNK, len - p);
                int r;

                if (interruptible && interrupt_pending())
                        return error_setf(-EINTR, _("The erase of %s was stopped after %s of %s: it is incomplete."),
                                          e->name, FORMAT_BYTES(p), FORMAT_BYTES(len));
                if (random)
                        for (size_t got = 0; got < n;) {
                                ssize_t k = getrandom(buf + got, n - got, 0);
                                if (k < 0) {
                                        if (errno == EINTR)
                                                continue;
                                        return error_setf(-errno, _("Cannot get random bytes to erase %s: %m"), e->name);
                                }
                                got += (size_t) k;
                        }
                r = pwrite_full(e->fd, buf, n, e->t->offset + off + p);
                if (r < 0)
                        return error_setf(r, _("Cannot write to %s at %s: %s"), e->name, FORMAT_BYTES(off + p), strerror(-r));
                p += n;
                report(e, n);
        }
        return 0;
}

/* Zeroes [off, off+len): BLKZEROOUT on block devices (the device may do it without the data
 * crossing the bus), else written. */
static int zero_range(Eraser *e, uint64_t off, uint64_t len, bool interruptible) {
        if (e->t->is_block) {
                uint64_t p = 0;

                for (; p < len;) {
                        uint64_t n = MIN(64 * WRITE_CHUNK, len - p), range[2] = { e->t->offset + off + p, n };

                        if (interruptible && interrupt_pending())
                                return error_setf(-EINTR, _("The erase of %s was stopped after %s of %s: it is incomplete."),
                                                  e->name, FORMAT_BYTES(p), FORMAT_BYTES(len));
                        if (ioctl(e->fd, BLKZEROOUT, range) < 0) {
                                if (p == 0 && (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOTTY))
                                        break; /* written below */
                                return error_setf(-errno, _("Cannot write zeroes to %s at %s: %m"), e->name, FORMAT_BYTES(off + p));
                        }
                        p += n;
                        report(e, n);
                }
                if (p >= len)
                        return 0;
        }
        return write_range(e, false, off, len, interruptible);
}

/* Flushes what was written to the device, and drops the page caches of the disk and of the
 * partition node, so that every reader (blkid, cryptsetup, the next step) sees the device. */
static int flush(Eraser *e) {
        if (fsync(e->fd) < 0)
                return error_setf(-errno, _("Cannot flush %s: %m"), e->t->file);
        if (!e->t->is_block)
                return 0;
        (void) ioctl(e->fd, BLKFLSBUF, 0);
        if (e->t->node) {
                _cleanup_(closep) int fd = open(e->t->node, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd >= 0)
                        (void) ioctl(fd, BLKFLSBUF, 0);
        }
        return 0;
}

/* A loop device over the partition's range of the image file (or of a disk without a partition
 * node), so that libcryptsetup, which reads a header only at the start of a device, can load it.
 * It detaches itself once its last user is gone (LO_FLAGS_AUTOCLEAR). */
static int loop_attach(Eraser *e, int *ret_fd, char **ret_node) {
        _cleanup_(closep) int ctl = -EBADF;

        ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (ctl < 0)
                return -errno;
        for (unsigned attempt = 0; attempt < 64; attempt++) {
                struct loop_config c = {
                        .fd = (uint32_t) e->fd,
                        .info = { .lo_offset = e->t->offset, .lo_sizelimit = e->t->size, .lo_flags = LO_FLAGS_AUTOCLEAR },
                };
                char *node = NULL;
                int n, fd;

                n = ioctl(ctl, LOOP_CTL_GET_FREE);
                if (n < 0)
                        return -errno;
                if (asprintf(&node, "/dev/loop%d", n) < 0)
                        return -ENOMEM;
                fd = open(node, O_RDWR | O_CLOEXEC | O_NOCTTY);
                if (fd < 0) {
                        free(node);
                        return -errno;
                }
                if (ioctl(fd, LOOP_CONFIGURE, &c) >= 0) {
                        *ret_fd = fd;
                        *ret_node = node;
                        return 0;
                }
                close(fd);
                free(node);
                if (errno != EBUSY)
                        return -errno;
        }
        return -EBUSY;
}

static void crypt_quiet(int level, const char *msg, void *userdata) {
        if (level == CRYPT_LOG_ERROR && msg)
                log_debug("libcryptsetup: %s", msg);
}

/* LUKS1 has no helper in luks.h (imprint never makes LUKS1 volumes): destroy its keyslots here. */
static int luks1_destroy_keyslots(const char *device) {
        struct crypt_device *cd = NULL;
        int destroyed = 0, r;

        crypt_set_log_callback(NULL, crypt_quiet, NULL);
        r = crypt_init(&cd, device);
        if (r < 0)
                return r;
        crypt_set_log_callback(cd, crypt_quiet, NULL);
        r = crypt_load(cd, CRYPT_LUKS1, NULL);
        for (int slot = 0; r >= 0 && slot < crypt_keyslot_max(CRYPT_LUKS1); slot++) {
                crypt_keyslot_info st = crypt_keyslot_status(cd, slot);

                if (st != CRYPT_SLOT_ACTIVE && st != CRYPT_SLOT_ACTIVE_LAST)
                        continue;
                r = crypt_keyslot_destroy(cd, slot);
                if (r >= 0)
                        destroyed++;
        }
        crypt_free(cd);
        return r < 0 ? r : destroyed;
}

/* Destroys the keyslots through libcryptsetup, as cryptsetup luksErase does. The random bytes
 * written over the whole metadata area afterwards are what guarantees the erase (they also cover
 * a header libcryptsetup refuses to load); this step makes the library's own wipe of each
 * keyslot part of it, on every device it can open. */
static void destroy_keyslots(Eraser *e, Header *h) {
        _cleanup_(closep) int loop_fd = -EBADF;
        _cleanup_(freep) char *loop_node = NULL;
        const char *device;
        int r;

        if (e->t->node)
                device = e->t->node;
        else if (!e->t->is_block && e->t->offset == 0 && e->t->size == e->file_size)
                device = e->t->file;
        else {
                r = loop_attach(e, &loop_fd, &loop_node);
                if (r < 0) {
                        log_info("%s: no loop device for libcryptsetup (%s); the keyslots go with the overwrite of the metadata.",
                                 e->name, strerror(-r));
                        return;
                }
                device = loop_node;
        }

        if (h->kind == HEADER_LUKS1) {
                r = luks1_destroy_keyslots(device);
                if (r < 0)
                        log_info("%s: libcryptsetup did not destroy the LUKS1 keyslots (%s); the overwrite of the metadata does.",
                                 e->name, strerror(-r));
                else
                        log_info("%s: destroyed %d LUKS1 keyslot(s) with libcryptsetup.", e->name, r);
        } else {
                _cleanup_(luks_freep) LuksVolume *v = NULL;

                r = luks_open_header(device, &v);
                if (r >= 0) {
                        /* Where libcryptsetup says the payload starts, if it says further. */
                        h->data_offset = MIN(MAX(h->data_offset, luks_data_offset(v)), e->t->size);
                        r = luks_erase(v);
                }
                if (r < 0)
                        log_info("%s: libcryptsetup did not erase the LUKS2 keyslots (%s); the overwrite of the metadata does.",
                                 e->name, error_message_for(r) ?: strerror(-r));
                error_clear();
        }

        if (loop_fd >= 0) {
                /* What libcryptsetup wrote through the loop device reaches the file before the
                 * overwrite below goes through the file directly. */
                (void) fsync(loop_fd);
                (void) ioctl(loop_fd, BLKFLSBUF, 0);
        }
}

/* Refuses a partition that is mounted, opened by dm-crypt or held otherwise: the exclusive open
 * that mkfs and libcryptsetup use fails then. */
static int check_not_in_use(Eraser *e) {
        int fd;

        if (!e->t->is_block || !e->t->node)
                return 0;
        fd = open(e->t->node, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_EXCL);
        if (fd < 0)
                return error_setf(-errno,
                                  errno == EBUSY ? _("Refusing to erase %s: it is in use (mounted, or open as an encrypted volume).")
                                                 : _("Cannot open %s: %m"),
                                  e->t->node);
        /* Not kept: libcryptsetup opens the partition exclusively itself. */
        close(fd);
        return 0;
}

int erase_partition(const EraseTarget *t, EraseProgress progress, void *userdata, EraseResult *ret) {
        _cleanup_(eraser_close) Eraser e = { .fd = -EBADF, .own_fd = -EBADF };
        _cleanup_(erase_result_done) EraseResult res = {};
        uint64_t start = now_usec(), data_off = 0;
        Header h;
        int r;

        if (!ret)
                return -EINVAL;
        r = eraser_open(t, true, &e);
        if (r < 0)
                return r;
        e.progress = progress;
        e.userdata = userdata;
        r = check_not_in_use(&e);
        if (r < 0)
                return r;
        r = header_read(&e, &h);
        if (r < 0)
                return r;
        report(&e, 0);

        if (h.kind != HEADER_NONE) {
                /* Crypto-erase: the keyslots, then every byte before the payload. */
                log_info("%s holds a LUKS%d header (UUID %s, %u keyslot(s)%s, payload at %" PRIu64 " bytes): crypto-erasing it.",
                         e.name, h.kind == HEADER_LUKS1 ? 1 : 2, h.uuid[0] ? h.uuid : "?", h.keyslots,
                         h.damaged ? ", metadata damaged" : "", h.data_offset);
                destroy_keyslots(&e, &h);
                r = write_range(&e, true, 0, h.data_offset, false);
                if (r < 0)
                        return r;
                r = flush(&e);
                if (r < 0)
                        return r;

                res.method = ERASE_CRYPTO;
                res.luks = true;
                res.luks_version = h.kind == HEADER_LUKS1 ? 1 : 2;
                res.keyslots_destroyed = h.keyslots;
                res.header_bytes = h.data_offset;
                res.bytes_written = h.data_offset;
                if (h.uuid[0]) {
                        res.luks_uuid = strdup(h.uuid);
                        if (!res.luks_uuid)
                                return -ENOMEM;
                }
                data_off = h.data_offset;
        }

        if (data_off < t->size) {
                uint64_t len = t->size - data_off;
                int refused = EOPNOTSUPP;

                if (t->secure && t->is_block) {
                        r = discard_range(&e, BLKSECDISCARD, data_off, len, &refused);
                        if (r < 0)
                                return r;
                        if (refused)
                                log_info("%s: the device refused a secure discard (%s); using the normal method.", e.name, strerror(refused));
                        else
                                res.secure = true;
                } else if (t->secure)
                        log_info("%s: an image file has no secure discard; using the normal method.", e.name);
                if (refused) {
                        r = discard_range(&e, t->is_block ? BLKDISCARD : 0, data_off, len, &refused);
                        if (r < 0)
                                return r;
                        if (refused)
                                log_info("%s: %s does not support discarding (%s).", e.name, t->file, strerror(refused));
                }
                res.data_discarded = !refused;

                if (!res.luks) {
                        if (res.data_discarded) {
                                res.method = res.secure ? ERASE_SECURE_DISCARD : ERASE_DISCARD;
                                /* An image file's hole reads as zeroes; a device may return old
                                 * data after a discard, so no signature is left at either end. */
                                if (t->is_block) {
                                        uint64_t edge = MIN(EDGE_SIZE, t->size);

                                        r = zero_range(&e, 0, edge, false);
                                        if (r >= 0 && t->size > edge)
                                                r = zero_range(&e, t->size - MIN(EDGE_SIZE, t->size - edge), MIN(EDGE_SIZE, t->size - edge), false);
                                        if (r < 0)
                                                return r;
                                        res.bytes_written = edge + MIN(EDGE_SIZE, t->size - edge);
                                }
                        } else {
                                res.method = ERASE_OVERWRITE;
                                r = zero_range(&e, 0, t->size, true);
                                if (r < 0)
                                        return r;
                                res.bytes_written = t->size;
                        }
                } else if (!res.data_discarded)
                        report(&e, len); /* nothing to do: without its key the data is noise */
                r = flush(&e);
                if (r < 0)
                        return r;
        }

        res.usec = now_usec() - start;
        e.done = 0;
        report(&e, t->size);

        log_info("Erased %s: %s%s%s, %s written, %s.", e.name, erase_method_to_string(res.method),
                 res.luks ? ", keyslots destroyed" : "", res.secure ? ", secure discard" : "",
                 FORMAT_BYTES(res.bytes_written), res.data_discarded ? "data discarded" : "data not discarded");
        *ret = res;
        res = (EraseResult) {}; /* now the caller's */
        return 0;
}

int erase_probe(const EraseTarget *t, EraseMethod *ret_method, uint64_t *ret_estimate_usec) {
        _cleanup_(eraser_close) Eraser e = { .fd = -EBADF, .own_fd = -EBADF };
        EraseMethod m;
        uint64_t usec = 0;
        Header h;
        int r;

        r = eraser_open(t, false, &e);
        if (r < 0)
                return r;
        r = header_read(&e, &h);
        if (r < 0)
                return r;

        if (h.kind != HEADER_NONE)
                m = ERASE_CRYPTO;
        /* A secure discard is not predicted: no attribute says whether a device takes it, and
         * the method named before the erase must not promise more than the device gives. */
        else if (discard_expected(&e))
                m = ERASE_DISCARD;
        else {
                m = ERASE_OVERWRITE;
                /* 1e6 * size / rate without overflowing: sizes reach 2^50 and more. */
                usec = t->size / ASSUMED_WRITE_RATE * 1000000 + (t->size % ASSUMED_WRITE_RATE) * 1000000 / ASSUMED_WRITE_RATE;
        }

        if (ret_method)
                *ret_method = m;
        if (ret_estimate_usec)
                *ret_estimate_usec = usec;
        return 0;
}

int erase_result_describe(const EraseResult *r, char **ret) {
        char *s = NULL;
        int k;

        if (!r || !ret)
                return -EINVAL;

        switch (r->method) {
        case ERASE_CRYPTO:
                if (!r->data_discarded)
                        k = asprintf(&s, ngettext("crypto-erase (LUKS%u header and %u keyslot destroyed; the data, unreadable without them, was not discarded: the device does not support it)",
                                                  "crypto-erase (LUKS%u header and %u keyslots destroyed; the data, unreadable without them, was not discarded: the device does not support it)",
                                                  r->keyslots_destroyed),
                                     r->luks_version ?: 2, r->keyslots_destroyed);
                else if (r->secure)
                        k = asprintf(&s, ngettext("crypto-erase (LUKS%u header and %u keyslot destroyed, data securely discarded)",
                                                  "crypto-erase (LUKS%u header and %u keyslots destroyed, data securely discarded)",
                                                  r->keyslots_destroyed),
                                     r->luks_version ?: 2, r->keyslots_destroyed);
                else
                        k = asprintf(&s, ngettext("crypto-erase (LUKS%u header and %u keyslot destroyed, data discarded)",
                                                  "crypto-erase (LUKS%u header and %u keyslots destroyed, data discarded)",
                                                  r->keyslots_destroyed),
                                     r->luks_version ?: 2, r->keyslots_destroyed);
                break;
        case ERASE_DISCARD:
                /* A device may return old data after a discard: its ends were zeroed. An image
                 * file's punched range reads as zeroes: nothing was written. */
                if (r->bytes_written > 0)
                        k = asprintf(&s, "%s", _("discard (not encrypted: the whole partition discarded, its first and last MiB zeroed)"));
                else
                        k = asprintf(&s, "%s", _("discard (not encrypted: the whole partition discarded)"));
                break;
        case ERASE_SECURE_DISCARD:
                k = asprintf(&s, "%s", _("secure erase (not encrypted: the whole partition discarded with the device's secure discard)"));
                break;
        case ERASE_OVERWRITE:
                k = asprintf(&s, _("overwrite (not encrypted, and the device cannot discard: %s written with zeroes)"),
                             FORMAT_BYTES(r->bytes_written));
                break;
        default:
                return -EINVAL;
        }
        if (k < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}
