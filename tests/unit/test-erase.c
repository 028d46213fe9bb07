/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Erasing a partition for the factory reset (src/engine/erase.c).
 *
 * Without arguments: the unit checks (no root needed): the method names and sentences, bad
 * ranges refused before anything is written, and erases of byte ranges of image files in
 * $TMPDIR: a LUKS2 volume at an offset (crypto-erase: header copies and keyslot area overwritten,
 * data punched out, neighbours untouched, no key opens it), a LUKS2 volume filling a file, and
 * unencrypted data (discard).
 *
 * With arguments it is the engine's entry points as a command, for tests/integration/
 * test-erase.sh and tests/bench/reset.sh, which run it against loop devices as root:
 *   test-erase erase FILE OFFSET SIZE [--node NODE] [--secure]   erase_partition()
 *   test-erase probe FILE OFFSET SIZE [--node NODE] [--secure]   erase_probe()
 * FILE is a disk (block device) or an image file. On success it prints key=value lines (method,
 * luks, luksVersion, luksUuid, keyslots, headerBytes, dataDiscarded, secure, bytesWritten,
 * seconds, describe; probe: method, estimateUsec) and the engine's log on stderr; on failure
 * "ERRNONAME: sentence" on stderr, exit 1. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "erase.h"
#include "error.h"
#include "fileio.h"
#include "log.h"
#include "luks.h"
#include "macro.h"
#include "secret.h"
#include "tests.h"

#define MiB (UINT64_C(1024) * 1024)

static char *make_file(uint64_t size) {
        const char *dir = getenv("TMPDIR") ?: "/var/tmp";
        char *path;
        int fd;

        ASSERT_TRUE(asprintf(&path, "%s/test-erase-XXXXXX", dir) > 0);
        fd = mkstemp(path);
        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(ftruncate(fd, (off_t) size) == 0);
        close(fd);
        return path;
}

static void fill(const char *path, uint64_t off, uint64_t len, uint8_t byte) {
        _cleanup_(freep) uint8_t *buf = malloc(MiB);
        int fd = open(path, O_WRONLY | O_CLOEXEC);

        ASSERT_TRUE(fd >= 0 && buf);
        memset(buf, byte, MiB);
        for (uint64_t p = 0; p < len; p += MiB)
                ASSERT_OK(pwrite_full(fd, buf, (size_t) MIN(MiB, len - p), off + p));
        close(fd);
}

/* Whether every byte of [off, off+len) is byte. */
static bool all_bytes(const char *path, uint64_t off, uint64_t len, uint8_t byte) {
        _cleanup_(freep) uint8_t *buf = malloc(MiB);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        bool ok = true;

        ASSERT_TRUE(fd >= 0 && buf);
        for (uint64_t p = 0; ok && p < len; p += MiB) {
                size_t n = (size_t) MIN(MiB, len - p);
                ASSERT_OK(pread_full(fd, buf, n, off + p));
                for (size_t i = 0; i < n; i++)
                        if (buf[i] != byte) {
                                ok = false;
                                break;
                        }
        }
        close(fd);
        return ok;
}

static uint8_t *read_range(const char *path, uint64_t off, uint64_t len) {
        uint8_t *buf = malloc(len);
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        ASSERT_TRUE(buf);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(pread_full(fd, buf, len, off));
        close(fd);
        return buf;
}

/* Whether either LUKS2 header magic (primary "LUKS\xba\xbe", secondary "SKUL\xba\xbe") is left
 * anywhere in buf. A loop rather than memmem(): gcc 12's -Wnonnull under UBSan sees a NULL
 * haystack on the instrumented path. */
static bool has_luks_magic(const uint8_t *buf, uint64_t len) {
        for (uint64_t i = 0; i + 6 <= len; i++)
                if ((memcmp(buf + i, "LUKS\xba\xbe", 6) == 0) || (memcmp(buf + i, "SKUL\xba\xbe", 6) == 0))
                        return true;
        return false;
}

/* Copies src (a whole file) into dst at off. */
static void copy_into(const char *src, const char *dst, uint64_t off) {
        struct stat st;
        uint8_t *buf;
        int fd;

        ASSERT_TRUE(stat(src, &st) == 0);
        buf = read_range(src, 0, (uint64_t) st.st_size);
        fd = open(dst, O_WRONLY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(pwrite_full(fd, buf, (size_t) st.st_size, off));
        close(fd);
        free(buf);
}

typedef struct Progress {
        uint64_t last, total;
        unsigned calls;
} Progress;

static void on_progress(uint64_t done, uint64_t total, void *userdata) {
        Progress *p = userdata;

        /* Never backwards within one erase, never beyond the end. */
        ASSERT_TRUE(done <= total);
        ASSERT_TRUE(p->total == 0 || total == p->total);
        p->total = total;
        p->last = done;
        p->calls++;
}

static void test_names(void) {
        ASSERT_STREQ(erase_method_to_string(ERASE_CRYPTO), "crypto-erase");
        ASSERT_STREQ(erase_method_to_string(ERASE_DISCARD), "discard");
        ASSERT_STREQ(erase_method_to_string(ERASE_OVERWRITE), "overwrite");
        ASSERT_STREQ(erase_method_to_string(ERASE_SECURE_DISCARD), "secure-discard");
        ASSERT_EQ(erase_method_from_string("secure-discard"), ERASE_SECURE_DISCARD);
        ASSERT_EQ(erase_method_from_string("shred"), -EINVAL);
}

static void test_describe(void) {
        EraseResult r = { .method = ERASE_CRYPTO, .luks = true, .luks_version = 2, .keyslots_destroyed = 3, .data_discarded = true };
        char *s = NULL;

        ASSERT_OK(erase_result_describe(&r, &s));
        ASSERT_STREQ(s, "crypto-erase (LUKS2 header and 3 keyslots destroyed, data discarded)");
        free(s);

        r = (EraseResult) { .method = ERASE_CRYPTO, .luks = true, .luks_version = 1, .keyslots_destroyed = 1 };
        ASSERT_OK(erase_result_describe(&r, &s));
        ASSERT_CONTAINS(s, "LUKS1 header and 1 keyslot destroyed");
        ASSERT_CONTAINS(s, "not discarded");
        free(s);

        r = (EraseResult) { .method = ERASE_CRYPTO, .luks = true, .luks_version = 2, .keyslots_destroyed = 2,
                            .data_discarded = true, .secure = true };
        ASSERT_OK(erase_result_describe(&r, &s));
        ASSERT_CONTAINS(s, "securely discarded");
        free(s);

        r = (EraseResult) { .method = ERASE_DISCARD, .data_discarded = true, .bytes_written = 2 * MiB };
        ASSERT_OK(erase_result_describe(&r, &s));
        ASSERT_STREQ(s, "discard (not encrypted: the whole partition discarded, its first and last MiB zeroed)");
        free(s);
        r = (EraseResult) { .method = ERASE_DISCARD, .data_discarded = true };
        ASSERT_OK(erase_result_describe(&r, &s));
        ASSERT_STREQ(s, "discard (not encrypted: the whole partition discarded)");
        free(s);

        r = (EraseResult) { .method = ERASE_SECURE_DISCARD, .data_discarded = true, .secure = true };
        ASSERT_OK(erase_result_describe(&r, &s));
        ASSERT_CONTAINS(s, "secure");
        free(s);

        r = (EraseResult) { .method = ERASE_OVERWRITE, .bytes_written = 512 * MiB };
        ASSERT_OK(erase_result_describe(&r, &s));
        ASSERT_CONTAINS(s, "512 MiB written with zeroes");
        free(s);

        r = (EraseResult) { .method = _ERASE_METHOD_INVALID };
        ASSERT_EQ(erase_result_describe(&r, &s), -EINVAL);
}

static void test_refusals(void) {
        char *f = make_file(8 * MiB);
        EraseResult res = {};
        EraseMethod m;

        fill(f, 0, 8 * MiB, 0x5a);
        ASSERT_EQ(erase_partition(&(EraseTarget) { .fd = -EBADF }, NULL, NULL, &res), -EINVAL);
        ASSERT_EQ(erase_partition(&(EraseTarget) { .file = f, .fd = -EBADF, .offset = 4 * MiB, .size = 8 * MiB }, NULL, NULL, &res),
                  -EINVAL);
        ASSERT_CONTAINS(error_message(), f);
        ASSERT_CONTAINS(error_message(), "beyond the end");
        ASSERT_EQ(erase_partition(&(EraseTarget) { .file = f, .fd = -EBADF, .offset = 0, .size = 0 }, NULL, NULL, &res), -EINVAL);
        ASSERT_EQ(erase_partition(&(EraseTarget) { .file = f, .fd = -EBADF, .offset = UINT64_MAX - 1, .size = 8 }, NULL, NULL, &res),
                  -EINVAL);
        /* Planned as a block device, but it is a file. */
        ASSERT_EQ(erase_partition(&(EraseTarget) { .file = f, .fd = -EBADF, .size = 8 * MiB, .is_block = true }, NULL, NULL, &res),
                  -ENOTBLK);
        ASSERT_CONTAINS(error_message(), "is not a block device");
        ASSERT_EQ(erase_probe(&(EraseTarget) { .file = "/nonexistent/disk.img", .fd = -EBADF, .size = MiB }, &m, NULL), -ENOENT);
        ASSERT_CONTAINS(error_message(), "/nonexistent/disk.img");
        /* Nothing was written by any of them. */
        ASSERT_TRUE(all_bytes(f, 0, 8 * MiB, 0x5a));
        unlink(f);
        free(f);
}

static LuksVolume *format_with_keys(const char *path, Secret **ret_key) {
        LuksVolume *v = NULL;
        Secret *key = secret_new(32), *second = secret_new(32);

        ASSERT_TRUE(key && second);
        ASSERT_EQ(getrandom(key->data, key->size, 0), 32);
        ASSERT_EQ(getrandom(second->data, second->size, 0), 32);
        ASSERT_OK(luks_format(path, SD_ID128_NULL, &(LuksFormatOptions) { .label = "root" }, &v));
        ASSERT_OK(luks_add_key_high_entropy(v, key));
        ASSERT_OK(luks_add_key_high_entropy(v, second));
        secret_free(second);
        *ret_key = key;
        return v;
}

/* A LUKS2 volume at 8 MiB of a 72 MiB image file: the erase finds it by reading the file, destroys
 * both header copies and the keyslot area, punches out the data, and leaves the rest alone. */
static void test_luks2_at_offset(void) {
        const uint64_t off = 8 * MiB, size = 48 * MiB;
        char *vol = make_file(size), *img = make_file(72 * MiB), *copy;
        _cleanup_(freep) uint8_t *before = NULL, *after = NULL;
        LuksVolume *v;
        Secret *key;
        Progress p = {};
        EraseResult res = {};
        EraseMethod m;
        uint64_t est = 1, data_off;
        _cleanup_(freep) char *uuid = NULL, *text = NULL;
        unsigned changed = 0;

        v = format_with_keys(vol, &key);
        data_off = luks_data_offset(v);
        ASSERT_EQ(data_off, 16 * MiB);
        luks_free(v);
        ASSERT_OK(luks_open_header(vol, &v));
        ASSERT_OK(luks_unlock(v, key));
        luks_free(v);

        fill(img, 0, 72 * MiB, 0x11);
        copy_into(vol, img, off);
        fill(img, off + data_off, size - data_off, 0xd7); /* "the owner's data" */
        before = read_range(img, off, data_off);

        ASSERT_OK(erase_probe(&(EraseTarget) { .file = img, .fd = -EBADF, .offset = off, .size = size }, &m, &est));
        ASSERT_EQ(m, ERASE_CRYPTO);
        ASSERT_EQ(est, 0);

        ASSERT_OK(erase_partition(&(EraseTarget) { .file = img, .fd = -EBADF, .offset = off, .size = size }, on_progress, &p, &res));
        ASSERT_EQ(res.method, ERASE_CRYPTO);
        ASSERT_TRUE(res.luks);
        ASSERT_EQ(res.luks_version, 2);
        ASSERT_EQ(res.keyslots_destroyed, 2);
        ASSERT_EQ(res.header_bytes, data_off);
        ASSERT_EQ(res.bytes_written, data_off);
        ASSERT_FALSE(res.secure);
        ASSERT_TRUE(res.luks_uuid && strlen(res.luks_uuid) == 36);
        ASSERT_TRUE(p.calls > 1);
        ASSERT_EQ(p.last, size);
        ASSERT_EQ(p.total, size);

        /* Every 512-byte sector of the metadata changed: both header copies (0 and 16 KiB) and
         * the keyslot area. */
        after = read_range(img, off, data_off);
        for (uint64_t s = 0; s < data_off; s += 512)
                if (memcmp(before + s, after + s, 512) != 0)
                        changed++;
        ASSERT_EQ(changed, data_off / 512);
        ASSERT_FALSE(has_luks_magic(after, data_off));
        /* The data reads as zeroes only if the filesystem of $TMPDIR punched it out. */
        if (res.data_discarded)
                ASSERT_TRUE(all_bytes(img, off + data_off, size - data_off, 0));
        else
                ASSERT_TRUE(all_bytes(img, off + data_off, size - data_off, 0xd7));
        /* The neighbours are untouched. */
        ASSERT_TRUE(all_bytes(img, 0, off, 0x11));
        ASSERT_TRUE(all_bytes(img, off + size, 72 * MiB - off - size, 0x11));

        ASSERT_OK(erase_result_describe(&res, &text));
        ASSERT_CONTAINS(text, "crypto-erase (LUKS2 header and 2 keyslots destroyed");

        /* The partition, copied out, is no LUKS volume any more. */
        copy = make_file(size);
        {
                uint8_t *b = read_range(img, off, 17 * MiB);
                int fd = open(copy, O_WRONLY | O_CLOEXEC);
                ASSERT_TRUE(fd >= 0);
                ASSERT_OK(pwrite_full(fd, b, 17 * MiB, 0));
                close(fd);
                free(b);
        }
        ASSERT_TRUE(luks_open_header(copy, &v) < 0);

        /* Erasing again: nothing encrypted is left, so it is an unencrypted partition now. */
        erase_result_done(&res);
        ASSERT_OK(erase_probe(&(EraseTarget) { .file = img, .fd = -EBADF, .offset = off, .size = size }, &m, NULL));
        ASSERT_TRUE(m == ERASE_DISCARD || m == ERASE_OVERWRITE);

        secret_free(key);
        unlink(copy);
        unlink(vol);
        unlink(img);
        free(copy);
        free(vol);
        free(img);
}

/* A LUKS2 volume that is the whole file: libcryptsetup destroys the keyslots on the file itself. */
static void test_luks2_whole_file(void) {
        char *vol = make_file(24 * MiB);
        int fd = open(vol, O_RDWR | O_CLOEXEC);
        LuksVolume *v;
        Secret *key;
        EraseResult res = {};

        v = format_with_keys(vol, &key);
        luks_free(v);
        ASSERT_TRUE(fd >= 0);
        /* Through the caller's descriptor, as the executor passes its own. */
        ASSERT_OK(erase_partition(&(EraseTarget) { .file = vol, .fd = fd, .size = 24 * MiB }, NULL, NULL, &res));
        ASSERT_EQ(res.method, ERASE_CRYPTO);
        ASSERT_EQ(res.keyslots_destroyed, 2);
        ASSERT_TRUE(luks_open_header(vol, &v) < 0);
        ASSERT_TRUE(fcntl(fd, F_GETFD) >= 0); /* the caller's descriptor stays open */
        close(fd);
        erase_result_done(&res);
        secret_free(key);
        unlink(vol);
        free(vol);
}

/* An interrupted erase (or damage) can leave the primary header gone and the secondary whole, which
 * libcryptsetup still loads: the erase finds it there and destroys it too. */
static void test_luks2_secondary_only(void) {
        char *vol = make_file(24 * MiB);
        LuksVolume *v;
        Secret *key;
        EraseResult res = {};

        v = format_with_keys(vol, &key);
        luks_free(v);
        fill(vol, 0, 4096, 0); /* the primary binary header */
        ASSERT_OK(luks_open_header(vol, &v));
        ASSERT_OK(luks_unlock(v, key));
        luks_free(v);

        ASSERT_OK(erase_partition(&(EraseTarget) { .file = vol, .fd = -EBADF, .size = 24 * MiB }, NULL, NULL, &res));
        ASSERT_EQ(res.method, ERASE_CRYPTO);
        ASSERT_EQ(res.luks_version, 2);
        ASSERT_EQ(res.keyslots_destroyed, 2);
        ASSERT_EQ(res.header_bytes, 16 * MiB);
        ASSERT_TRUE(luks_open_header(vol, &v) < 0);
        erase_result_done(&res);
        secret_free(key);
        unlink(vol);
        free(vol);
}

/* Unencrypted data at an offset: discarded (punched) where $TMPDIR can, else overwritten. */
static void test_unencrypted(void) {
        const uint64_t off = 4 * MiB, size = 20 * MiB;
        char *img = make_file(32 * MiB);
        EraseResult res = {};
        EraseMethod m;
        uint64_t est;
        Progress p = {};

        fill(img, 0, 32 * MiB, 0x3c);
        ASSERT_OK(erase_probe(&(EraseTarget) { .file = img, .fd = -EBADF, .offset = off, .size = size }, &m, &est));
        ASSERT_TRUE(m == ERASE_DISCARD || m == ERASE_OVERWRITE);
        ASSERT_EQ(est, m == ERASE_OVERWRITE ? size * 1000000 / (100 * 1000 * 1000) : 0);
        /* Asked for secure erase: an image file has none, and the result does not claim it. */
        ASSERT_OK(erase_partition(&(EraseTarget) { .file = img, .fd = -EBADF, .offset = off, .size = size, .secure = true },
                                  on_progress, &p, &res));
        ASSERT_FALSE(res.luks);
        ASSERT_FALSE(res.secure);
        ASSERT_TRUE(res.method == ERASE_DISCARD || res.method == ERASE_OVERWRITE);
        ASSERT_EQ(res.data_discarded, res.method == ERASE_DISCARD);
        ASSERT_EQ(res.bytes_written, res.method == ERASE_OVERWRITE ? size : 0);
        ASSERT_EQ(res.keyslots_destroyed, 0);
        ASSERT_TRUE(res.luks_uuid == NULL);
        ASSERT_EQ(p.last, size);
        ASSERT_TRUE(all_bytes(img, off, size, 0));
        ASSERT_TRUE(all_bytes(img, 0, off, 0x3c));
        ASSERT_TRUE(all_bytes(img, off + size, 32 * MiB - off - size, 0x3c));
        unlink(img);
        free(img);
}

static int parse_u64(const char *s, uint64_t *ret) {
        char *end;

        errno = 0;
        *ret = strtoull(s, &end, 0);
        return errno || end == s || *end ? -EINVAL : 0;
}

static int command(int argc, char *argv[]) {
        EraseTarget t = { .fd = -EBADF };
        struct stat st;
        int r;

        if (argc < 5 || parse_u64(argv[3], &t.offset) < 0 || parse_u64(argv[4], &t.size) < 0) {
                fprintf(stderr, "usage: %s erase|probe FILE OFFSET SIZE [--node NODE] [--secure]\n", argv[0]);
                return 2;
        }
        t.file = argv[2];
        for (int i = 5; i < argc; i++) {
                if (streq(argv[i], "--secure"))
                        t.secure = true;
                else if (streq(argv[i], "--node") && i + 1 < argc)
                        t.node = argv[++i];
                else {
                        fprintf(stderr, "unknown argument %s\n", argv[i]);
                        return 2;
                }
        }
        /* What the engine did, on stderr: the test checks that libcryptsetup destroyed the keyslots. */
        log_set_max_level(LOG_INFO);
        if (stat(t.file, &st) < 0) {
                fprintf(stderr, "%s: %m\n", t.file);
                return 1;
        }
        t.is_block = S_ISBLK(st.st_mode);

        if (streq(argv[1], "probe")) {
                EraseMethod m;
                uint64_t est;

                r = erase_probe(&t, &m, &est);
                if (r < 0)
                        goto fail;
                printf("method=%s\nestimateUsec=%" PRIu64 "\n", erase_method_to_string(m), est);
                return 0;
        }
        if (streq(argv[1], "erase")) {
                EraseResult res = {};
                _cleanup_(freep) char *text = NULL;

                r = erase_partition(&t, NULL, NULL, &res);
                if (r < 0)
                        goto fail;
                r = erase_result_describe(&res, &text);
                if (r < 0)
                        goto fail;
                printf("method=%s\nluks=%s\nluksVersion=%u\nluksUuid=%s\nkeyslots=%u\nheaderBytes=%" PRIu64 "\n"
                       "dataDiscarded=%s\nsecure=%s\nbytesWritten=%" PRIu64 "\nseconds=%.6f\ndescribe=%s\n",
                       erase_method_to_string(res.method), res.luks ? "yes" : "no", res.luks_version, res.luks_uuid ?: "",
                       res.keyslots_destroyed, res.header_bytes, res.data_discarded ? "yes" : "no", res.secure ? "yes" : "no",
                       res.bytes_written, (double) res.usec / 1e6, text);
                erase_result_done(&res);
                return 0;
        }
        fprintf(stderr, "unknown command %s\n", argv[1]);
        return 2;

fail:
        fprintf(stderr, "%s: %s\n", strerrorname_np(-r) ?: "?", error_message_for(r) ?: strerror(-r));
        return 1;
}

int main(int argc, char *argv[]) {
        if (argc > 1)
                return command(argc, argv);

        test_names();
        test_describe();
        test_refusals();
        test_luks2_at_offset();
        test_luks2_whole_file();
        test_luks2_secondary_only();
        test_unencrypted();
        return 0;
}
