/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Images read once, start to end: see stream.h. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dps.h"
#include "error.h"
#include "fileio.h"
#include "i18n.h"
#include "image.h"
#include "log.h"
#include "macro.h"
#include "size.h"
#include "stream.h"

/* The image's partitions before its big one are kept in memory (sparse: only what is not zero),
 * and so is what follows it. More than this is not an image a stream can install. */
#define STREAM_MEMORY_MAX (UINT64_C(2) * 1024 * 1024 * 1024)
/* The big partition's first bytes, read before the plan: every superblock blkid probes. */
#define STREAM_PROBE_SIZE (UINT64_C(1024) * 1024)
#define STREAM_BUF_SIZE (UINT64_C(4) * 1024 * 1024)

struct ImageStream {
        ImageSource *src;
        char *location;
        int shadow_fd;            /* the memory file that stands for the image */
        uint64_t image_size;      /* decompressed, as its GPT says (backup header's LBA + 1) */
        uint64_t pos;             /* decompressed bytes consumed */
        uint64_t big_start, big_size;
        uint8_t *big_head;        /* the big partition's first bytes, read before the plan */
        size_t big_head_size, big_head_served;
        uint64_t kept;            /* non-zero bytes kept in the memory file */
        bool written;             /* image_stream_run() finished */
        char *sha256, *sha256_origin;
};

void image_stream_free(ImageStream *s) {
        if (!s)
                return;
        source_free(s->src);
        free(s->location);
        if (s->shadow_fd >= 0)
                close(s->shadow_fd);
        free(s->big_head);
        free(s->sha256);
        free(s->sha256_origin);
        free(s);
}

int image_location_is_stream(const char *location) {
        SourceCompression c;
        struct stat st;
        int r;

        if (!location || streq(location, "self"))
                return 0;
        if (source_is_url(location))
                return 1;
        /* Only a regular file is looked into: image_open() says what is wrong with anything else
         * (a FIFO is never opened for reading here, where it would wait for a writer). */
        if (stat(location, &st) < 0 || !S_ISREG(st.st_mode))
                return 0;
        r = source_file_compression(location, &c);
        if (r < 0)
                return r == -EISDIR ? 0 : r;
        return c != SOURCE_RAW;
}

bool image_stream_pending(const Image *img) {
        return img && img->stream && !img->stream->written;
}

const DiskPartition *image_stream_partition(const Image *img) {
        return img && img->stream ? img->streamed : NULL;
}

const char *image_stream_compression(const Image *img) {
        return img && img->stream && img->stream->src ? source_compression_to_string(source_compression(img->stream->src)) : NULL;
}

const char *image_stream_location(const Image *img) {
        return img && img->stream ? img->stream->location : NULL;
}

unsigned image_stream_resumes(const Image *img) {
        return img && img->stream && img->stream->src ? source_resumes(img->stream->src) : 0;
}

uint64_t image_stream_raw_size(const Image *img) {
        return img && img->stream && img->stream->src ? source_raw_size(img->stream->src) : 0;
}

/* Reads exactly n bytes of the decompressed image (fewer: it ended). */
static ssize_t stream_read(ImageStream *s, void *buf, size_t n) {
        ssize_t k = source_read(s->src, buf, n);

        if (k > 0)
                s->pos += (uint64_t) k;
        return k;
}

/* Keeps [pos, pos+n) of the image in the memory file, its zero blocks left as holes. */
static int keep(ImageStream *s, uint64_t pos, const uint8_t *buf, size_t n) {
        const size_t block = 64 * 1024;

        for (size_t i = 0; i < n; i += block) {
                size_t m = MIN(block, n - i);
                bool zero = true;

                for (size_t k = 0; k < m && zero; k++)
                        zero = buf[i + k] == 0;
                if (zero)
                        continue;
                if (pos + i + m > s->image_size)
                        return error_setf(-EBADMSG, _("The image %s is longer than its partition table says (%s)."), s->location,
                                          FORMAT_BYTES(s->image_size));
                s->kept += m;
                if (s->kept > STREAM_MEMORY_MAX)
                        return error_setf(-EFBIG,
                                          _("The image %s holds more than %s outside its %s partition, more than imprint keeps in memory "
                                            "while it streams; decompress it to a file and install that."),
                                          s->location, FORMAT_BYTES(STREAM_MEMORY_MAX), "usr/root");
                int r = pwrite_full(s->shadow_fd, buf + i, m, pos + i);
                if (r < 0)
                        return error_setf(r, _("Cannot keep the image in memory: %s"), strerror(-r));
        }
        return 0;
}

/* Reads the stream into the memory file up to (not including) offset end. */
static int keep_until(ImageStream *s, uint64_t end) {
        _cleanup_(freep) uint8_t *buf = malloc(STREAM_BUF_SIZE);

        if (!buf)
                return -ENOMEM;
        while (s->pos < end) {
                uint64_t at = s->pos;
                size_t n = (size_t) MIN(STREAM_BUF_SIZE, end - s->pos);
                ssize_t k = stream_read(s, buf, n);
                int r;

                if (k < 0)
                        return (int) k;
                if ((size_t) k < n)
                        return error_setf(-EBADMSG, _("The image %s ends at %s, before its partition table says (%s)."), s->location,
                                          FORMAT_BYTES(s->pos), FORMAT_BYTES(s->image_size));
                r = keep(s, at, buf, (size_t) k);
                if (r < 0)
                        return r;
        }
        return 0;
}

static uint64_t le64(const uint8_t *p) {
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
                v = v << 8 | p[i];
        return v;
}

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* A GPT entry's mixed-endian GUID as an sd_id128_t. */
static sd_id128_t gpt_guid(const uint8_t *p) {
        sd_id128_t id;

        id.bytes[0] = p[3], id.bytes[1] = p[2], id.bytes[2] = p[1], id.bytes[3] = p[0];
        id.bytes[4] = p[5], id.bytes[5] = p[4];
        id.bytes[6] = p[7], id.bytes[7] = p[6];
        memcpy(id.bytes + 8, p + 8, 8);
        return id;
}

/* From the primary GPT: the image's size and its big partition, chosen as image_open() chooses
 * (a root of this architecture, else of the only one; else a usr partition), the first in table
 * order. The entries are read (and kept) here too. */
static int find_big_partition(ImageStream *s, const uint8_t *head, size_t head_size) {
        static const unsigned sector_sizes[] = { 512, 4096 };
        unsigned ss = 0;
        uint64_t entries_lba, alt_lba;
        uint32_t n_entries, entry_size;
        _cleanup_(freep) uint8_t *entries = NULL;
        size_t entries_size;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(sector_sizes); i++)
                if (head_size >= 2 * sector_sizes[i] && memcmp(head + sector_sizes[i], "EFI PART", 8) == 0)
                        ss = sector_sizes[i];
        if (ss == 0)
                return error_setf(-EBADMSG, _("%s is not a disk image: it has no GPT partition table."), s->location);
        entries_lba = le64(head + ss + 72);
        n_entries = le32(head + ss + 80);
        entry_size = le32(head + ss + 84);
        alt_lba = le64(head + ss + 32);
        if (entry_size < 128 || entry_size > 4096 || n_entries == 0 || n_entries > 1024 || entries_lba < 2 || entries_lba > 1024 ||
            alt_lba < 34 || alt_lba > UINT64_MAX / ss - 1 || (alt_lba + 1) * ss > UINT64_C(1) << 50)
                return error_setf(-EBADMSG, _("The partition table of the image %s is damaged."), s->location);
        s->image_size = (alt_lba + 1) * (uint64_t) ss;
        if (ftruncate(s->shadow_fd, (off_t) s->image_size) < 0)
                return error_setf(-errno, _("Cannot keep the image in memory: %m"));

        entries_size = (size_t) n_entries * entry_size;
        r = keep_until(s, entries_lba * ss + entries_size);
        if (r < 0)
                return r;
        entries = malloc(entries_size);
        if (!entries)
                return -ENOMEM;
        r = pread_full(s->shadow_fd, entries, entries_size, entries_lba * ss);
        if (r < 0)
                return r;

        for (int want = ROLE_ROOT; want >= 0; want = want == ROLE_ROOT ? ROLE_USR : -1) {
                Architecture only = _ARCH_INVALID;
                bool several = false;
                const uint8_t *pick = NULL;

                for (int pass = 0; pass < 2 && !pick; pass++)
                        for (uint32_t i = 0; i < n_entries && !pick; i++) {
                                const uint8_t *e = entries + (size_t) i * entry_size;
                                const DpsType *t = dps_type_from_uuid(gpt_guid(e));

                                if (!t || (int) t->role != want || (le64(e + 48) & DPS_FLAG_NO_AUTO))
                                        continue;
                                if (pass == 0) {
                                        if (t->arch == architecture_native())
                                                pick = e;
                                        else if (only == _ARCH_INVALID)
                                                only = t->arch;
                                        else if (only != t->arch)
                                                several = true;
                                } else if (!several && t->arch == only)
                                        pick = e;
                        }
                if (!pick)
                        continue;
                s->big_start = le64(pick + 32) * ss;
                s->big_size = (le64(pick + 40) - le64(pick + 32) + 1) * ss;
                if (le64(pick + 40) < le64(pick + 32) || s->big_start < s->pos || s->big_start + s->big_size > s->image_size)
                        return error_setf(-EBADMSG, _("The partition table of the image %s is damaged."), s->location);
                return 0;
        }
        return error_setf(-EBADMSG, _("The image %s has no root partition (no partition of a Discoverable Partitions root type)."),
                          s->location);
}

/* Errors about the memory file name the image as the person named it. */
static int rename_in_error(const ImageStream *s, const char *shadow_path, int r) {
        const char *m = error_message();
        _cleanup_(freep) char *out = NULL;
        size_t n = strlen(shadow_path);
        const char *hit;

        if (!m || !(hit = strstr(m, shadow_path)))
                return r;
        if (asprintf(&out, "%.*s%s%s", (int) (hit - m), m, s->location, hit + n) < 0)
                return r;
        return error_setf(r, "%s", out);
}

static int check_sums(ImageStream *s, const StreamOpenOptions *o) {
        /* s: only location is read; sha256 and sha256_origin are set. */
        _cleanup_(freep) char *sums_loc = NULL, *sig_loc = NULL, *name = NULL;
        _cleanup_(freep) void *sums = NULL, *sig = NULL;
        size_t sums_size = 0, sig_size = 0;
        bool url = source_is_url(s->location);
        SumsKeyKind kind = SUMS_KEY_PEM;
        char hex[65];
        const char *slash, *q;
        int r;

        if (url && !o->key_path)
                return error_setf(-EINVAL,
                                  _("The image %s comes from the network, so it must be checked against a signed SHA256SUMS: name the "
                                    "public key with \"imageKey\" in the configuration (or --image-key)."),
                                  s->location);
        if (o->key_path) {
                r = sums_key_kind(o->key_path, &kind);
                if (r < 0)
                        return r;
        }
        r = source_sibling(s->location, "SHA256SUMS", &sums_loc);
        if (r < 0)
                return r;
        r = source_fetch_small(sums_loc, &o->source, 4 * 1024 * 1024, &sums, &sums_size);
        if (r == -ENOENT && !o->key_path) {
                log_info("image %s: no SHA256SUMS beside it; the stream is checked against nothing but itself", s->location);
                return 0;
        }
        if (r == -ENOENT)
                return error_setf(r, _("There is no %s beside the image %s; with \"imageKey\" the image must be listed in a signed SHA256SUMS."),
                                  sums_loc, s->location);
        if (r < 0)
                return r;
        if (o->key_path) {
                r = source_sibling(s->location, sums_signature_name(kind), &sig_loc);
                if (r < 0)
                        return r;
                r = source_fetch_small(sig_loc, &o->source, 1024 * 1024, &sig, &sig_size);
                if (r == -ENOENT)
                        return error_setf(r, _("There is no signature %s beside %s, so the image %s cannot be checked with the key %s."),
                                          sig_loc, sums_loc, s->location, o->key_path);
                if (r < 0)
                        return r;
                r = sums_verify(sums, sums_size, sig, sig_size, o->key_path, kind);
                if (r < 0)
                        return r;
                log_info("image %s: %s is signed by the key %s", s->location, sums_loc, o->key_path);
        }

        /* The name SHA256SUMS lists: the last path component, without a query. */
        q = s->location + strcspn(s->location, "?#");
        name = strndup(s->location, (size_t) (q - s->location));
        if (!name)
                return -ENOMEM;
        slash = strrchr(name, '/');
        r = sums_lookup(sums, sums_size, slash ? slash + 1 : name, hex);
        if (r < 0)
                return r;
        if (r == 0)
                return error_setf(-ENOENT, _("%s does not list the image %s, so it cannot be checked."), sums_loc, slash ? slash + 1 : name);
        s->sha256 = strdup(hex);
        s->sha256_origin = TAKE_PTR(sums_loc);
        if (!s->sha256)
                return -ENOMEM;
        return 0;
}

int image_stream_open(const char *location, const StreamOpenOptions *o, Image **ret) {
        _cleanup_(image_freep) Image *img = NULL;
        ImageStream *s;
        uint8_t head[8192];
        char path[64];
        ssize_t k;
        int r;

        s = calloc(1, sizeof(ImageStream));
        if (!s)
                return -ENOMEM;
        s->shadow_fd = -EBADF;
        s->location = strdup(location);
        if (!s->location) {
                image_stream_free(s);
                return -ENOMEM;
        }

        r = check_sums(s, o);
        if (r >= 0)
                r = source_open(location, &o->source, &s->src);
        if (r >= 0) {
                s->shadow_fd = memfd_create("imprint-streamed-image", MFD_CLOEXEC);
                if (s->shadow_fd < 0)
                        r = error_setf(-errno, _("Cannot keep the image in memory: %m"));
        }
        if (r >= 0) {
                k = stream_read(s, head, sizeof(head));
                if (k < 0)
                        r = (int) k;
                else if (k < (ssize_t) sizeof(head))
                        r = error_setf(-EBADMSG, _("%s is not a disk image: it has no GPT partition table."), location);
        }
        if (r >= 0 && ftruncate(s->shadow_fd, sizeof(head)) < 0)
                r = -errno;
        if (r >= 0)
                r = pwrite_full(s->shadow_fd, head, sizeof(head), 0);
        if (r >= 0)
                r = find_big_partition(s, head, sizeof(head));
        if (r >= 0)
                r = keep_until(s, s->big_start);
        if (r >= 0) {
                /* The big partition's first MiB: in memory for blkid, and for the target later. */
                s->big_head_size = (size_t) MIN(STREAM_PROBE_SIZE, s->big_size);
                s->big_head = malloc(s->big_head_size);
                if (!s->big_head)
                        r = -ENOMEM;
        }
        if (r >= 0) {
                k = stream_read(s, s->big_head, s->big_head_size);
                if (k < 0)
                        r = (int) k;
                else if ((size_t) k < s->big_head_size)
                        r = error_setf(-EBADMSG, _("The image %s ends at %s, before its partition table says (%s)."), location,
                                       FORMAT_BYTES(s->pos), FORMAT_BYTES(s->image_size));
        }
        if (r >= 0)
                r = pwrite_full(s->shadow_fd, s->big_head, s->big_head_size, s->big_start);
        if (r < 0) {
                image_stream_free(s);
                return r;
        }

        /* The memory file is the image for every reader; through /proc, so tools can open it. */
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int) getpid(), s->shadow_fd);
        {
                _cleanup_(freep) char *loc = strdup(location);
                if (!loc)
                        return -ENOMEM;
                r = image_open_stream(path, s, &img);
                if (r < 0)
                        return rename_in_error(&(ImageStream) { .location = loc }, path, r); /* s is freed */
        }
        if (img->streamed->start != s->big_start)
                return error_setf(-EBADMSG, _("The image %s is laid out in a way imprint cannot stream (its partition %u is the one to write, not "
                                              "the one at %s); decompress it to a file and install that."),
                                  location, img->streamed->partno, FORMAT_BYTES(s->big_start));
        r = image_load_boot(img);
        if (r < 0)
                return rename_in_error(s, path, r);
        if (img->kind == IMAGE_KIND_USR && img->usr != img->streamed)
                return error_setf(-EBADMSG,
                                  _("The UKI of the image %s boots its usr partition %u, but the stream reaches partition %u first; "
                                    "decompress it to a file and install that."),
                                  location, img->usr->partno, img->streamed->partno);
        if (s->sha256) {
                img->sha256 = strdup(s->sha256);
                img->sha256_origin = strdup(s->sha256_origin);
                if (!img->sha256 || !img->sha256_origin)
                        return -ENOMEM;
        }
        log_info("image %s: %s, %s decompressed; %s kept in memory before its partition %u (%s), which goes straight to the target",
                 location, source_compression_to_string(source_compression(s->src)), FORMAT_BYTES(s->image_size), FORMAT_BYTES(s->kept),
                 img->streamed->partno, FORMAT_BYTES(s->big_size));
        *ret = TAKE_PTR(img);
        return 0;
}

typedef struct BigReader {
        ImageStream *s;
        copy_progress_t progress;
        void *userdata;
} BigReader;

static ssize_t read_big(void *userdata, void *buf, size_t n) {
        BigReader *b = userdata;
        ImageStream *s = b->s;
        size_t done = 0;

        if (s->big_head_served < s->big_head_size) {
                done = MIN(n, s->big_head_size - s->big_head_served);
                memcpy(buf, s->big_head + s->big_head_served, done);
                s->big_head_served += done;
        }
        if (done < n) {
                ssize_t k = stream_read(s, (uint8_t *) buf + done, n - done);
                if (k < 0)
                        return k;
                done += (size_t) k;
        }
        return (ssize_t) done;
}

static void big_progress(uint64_t done, uint64_t total, void *userdata) {
        BigReader *b = userdata;

        (void) done, (void) total;
        if (b->progress)
                b->progress(b->s->pos, b->s->image_size, b->userdata);
}

int image_stream_run(Image *img, const CopyRegion *c, copy_progress_t progress, void *userdata,
                     uint8_t ret_digest[COPY_DIGEST_SIZE], uint64_t *ret_written) {
        ImageStream *s = img->stream;
        BigReader b = { .s = s, .progress = progress, .userdata = userdata };
        CopyRegion region = *c;
        char hex[65];
        uint8_t probe;
        int r;

        if (!s || s->written || s->big_head_served > 0)
                return error_setf(-EINVAL, _("The image %s was streamed already; open it again."), s ? s->location : img->path);
        region.length = s->big_size;
        r = copy_stream(read_big, &b, &region, big_progress, &b, ret_digest, ret_written);
        if (r == -EPIPE)
                return error_setf(-EBADMSG, _("The image %s ends at %s, inside its partition %u."), s->location, FORMAT_BYTES(s->pos),
                                  img->streamed->partno);
        if (r < 0)
                return error_code() == r ? r : error_setf(r, _("Writing the image %s to the target failed: %s"), s->location, strerror(-r));

        /* The rest (verity, signature, the backup partition table) is small: kept in memory. */
        r = keep_until(s, s->image_size);
        if (r < 0)
                return r;
        {
                ssize_t k = source_read(s->src, &probe, 1);
                if (k < 0)
                        return (int) k;
                if (k > 0)
                        return error_setf(-EBADMSG, _("The image %s is longer than its partition table says (%s)."), s->location,
                                          FORMAT_BYTES(s->image_size));
        }
        r = source_finish(s->src, hex);
        if (r < 0)
                return r;
        if (s->sha256 && !streq(hex, s->sha256))
                return error_setf(-EBADMSG,
                                  _("The image %s does not match its checksum: its SHA256 is %s, but %s says %s. It is damaged or not "
                                    "the image that was published."),
                                  s->location, hex, s->sha256_origin, s->sha256);
        if (s->sha256)
                log_info("image %s matches SHA256 %s from %s", s->location, hex, s->sha256_origin);
        if (source_resumes(s->src) > 0)
                log_info("image %s: the transfer was resumed %u times", s->location, source_resumes(s->src));
        if (progress)
                progress(s->image_size, s->image_size, userdata);
        s->written = true;
        return 0;
}

int image_stream_complete(Image *img, const char *disk, uint64_t offset, const char *cert_pem) {
        int r;

        if (!img->stream || !img->stream->written)
                return error_setf(-EINVAL, _("The image %s has not been streamed yet."), img->path);
        r = image_relocate_streamed(img, disk, offset);
        if (r < 0)
                return r;
        /* What waited for the content: systemd-boot, usr's repart.d, sysupdate.d, verity and
         * signature. */
        r = image_finish_stream(img, cert_pem);
        return r < 0 ? rename_in_error(img->stream, img->path, r) : 0;
}

int image_check_signed_sums(const char *path, const char *key_path) {
        ImageStream s = { .location = (char *) path, .shadow_fd = -EBADF };
        int r;

        r = check_sums(&s, &(StreamOpenOptions) { .key_path = key_path });
        free(s.sha256);
        free(s.sha256_origin);
        return r;
}
