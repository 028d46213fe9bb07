/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* LUKS2 volumes on plain files (no root, no device-mapper): the header carries what systemd expects
 * (aes-xts-plain64, 512-bit key, label, UUID, minimal PBKDF for high-entropy keys, argon2id for
 * typed passphrases, the systemd-recovery token), keys open it through libcryptsetup and through
 * stock cryptsetup and systemd-cryptenroll, and the crypto-erase leaves nothing that opens it.
 * Keys reach child processes only through a pipe.
 *
 * Exits 77 after the library checks when cryptsetup or systemd-cryptenroll is not installed. */

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <libcryptsetup.h>
#include <openssl/evp.h>

#include "error.h"
#include "fileio.h"
#include "log.h"
#include "luks.h"
#include "macro.h"
#include "run.h"
#include "secret.h"
#include "json-util.h"
#include "luks-cli.h"
#include "tests.h"

#define MiB (UINT64_C(1024) * 1024)

static bool have_cryptsetup, have_cryptenroll;

/* Everything the engine logged, to prove no key ever reached the log. */
static char *logged;

static void capture_log(int level, const char *line, void *userdata) {
        logged = strjoin_free(logged, line);
        logged = strjoin_free(logged, "\n");
        ASSERT_TRUE(logged);
        if (getenv("TEST_VERBOSE"))
                fprintf(stderr, "log<%d>: %s\n", level, line);
}

static void assert_not_logged(const Secret *s) {
        if (logged && memmem(logged, strlen(logged), s->data, s->size))
                FAIL("a key appeared in the log");
}

static char *make_file(uint64_t size) {
        const char *dir = getenv("TMPDIR") ?: "/var/tmp";
        char *path;
        int fd;

        ASSERT_TRUE(asprintf(&path, "%s/test-luks-XXXXXX", dir) > 0);
        fd = mkstemp(path);
        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(ftruncate(fd, (off_t) size) == 0);
        close(fd);
        return path;
}

static void remove_file(char *path) {
        ASSERT_TRUE(unlink(path) == 0);
        free(path);
}

/* Like the TPM's secret: base64 of 32 random bytes, 44 characters (formats.md §3.2). */
static Secret *random_base64_key(void) {
        unsigned char raw[32];
        Secret *s = secret_new(44);

        ASSERT_TRUE(s);
        ASSERT_EQ(getrandom(raw, sizeof(raw), 0), sizeof(raw));
        ASSERT_EQ(EVP_EncodeBlock(s->data, raw, sizeof(raw)), 44);
        secret_wipe(raw, sizeof(raw));
        return s;
}

/* Like systemd's recovery key: 32 random bytes as modhex, a dash after every 8 characters, 71
 * characters (formats.md §3.6). */
static Secret *random_recovery_key(void) {
        static const char modhex[16] = "cbdefghijklnrtuv";
        unsigned char raw[32];
        Secret *s = secret_new(71);
        size_t k = 0;

        ASSERT_TRUE(s);
        ASSERT_EQ(getrandom(raw, sizeof(raw), 0), sizeof(raw));
        for (size_t i = 0; i < sizeof(raw); i++) {
                if (i > 0 && i % 4 == 0)
                        s->data[k++] = '-';
                s->data[k++] = (unsigned char) modhex[raw[i] >> 4];
                s->data[k++] = (unsigned char) modhex[raw[i] & 15];
        }
        ASSERT_EQ(k, 71);
        secret_wipe(raw, sizeof(raw));
        return s;
}

static Secret *text_key(const char *s) {
        Secret *k = secret_new_from(s, strlen(s));
        ASSERT_TRUE(k);
        return k;
}

/* libcryptsetup's own check: which keyslot the key opens (NULL name: nothing is activated). */
static int lib_open(const char *path, const Secret *key) {
        struct crypt_device *cd = NULL;
        int r;

        ASSERT_OK(crypt_init(&cd, path));
        ASSERT_OK(crypt_load(cd, CRYPT_LUKS2, NULL));
        r = crypt_activate_by_passphrase(cd, NULL, CRYPT_ANY_SLOT, (const char *) key->data, key->size, 0);
        crypt_free(cd);
        return r;
}



static const char *slot_name(int slot) {
        static char buf[4][16];
        static unsigned n;
        char *b = buf[n++ % 4];
        snprintf(b, sizeof(buf[0]), "%d", slot);
        return b;
}

static void assert_kdf(json_object *dump, int slot, const char *type, const char *hash, int iterations) {
        json_object *ks = jget(dump, "keyslots", slot_name(slot), NULL);

        ASSERT_STREQ(json_object_get_string(jget(ks, "kdf", "type", NULL)), type);
        if (hash)
                ASSERT_STREQ(json_object_get_string(jget(ks, "kdf", "hash", NULL)), hash);
        if (iterations > 0)
                ASSERT_EQ(json_object_get_int(jget(ks, "kdf", "iterations", NULL)), iterations);
        /* The keyslot wraps the whole 512-bit volume key. */
        ASSERT_EQ(json_object_get_int(jget(ks, "key_size", NULL)), 64);
}

/* The bytes of a keyslot's area on disk: its encrypted copy of the volume key. */
static unsigned char *read_keyslot_area(const char *path, json_object *dump, int slot, uint64_t *ret_offset, size_t *ret_size) {
        json_object *area = jget(dump, "keyslots", slot_name(slot), "area", NULL);
        uint64_t offset = strtoull(json_object_get_string(jget(area, "offset", NULL)), NULL, 10);
        size_t size = (size_t) strtoull(json_object_get_string(jget(area, "size", NULL)), NULL, 10);
        unsigned char *buf = malloc(size);
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        ASSERT_TRUE(buf && fd >= 0 && size > 0);
        ASSERT_OK(pread_full(fd, buf, size, offset));
        close(fd);
        *ret_offset = offset;
        *ret_size = size;
        return buf;
}

static bool has_line(const char *text, const char *fmt, ...) _printf_(2, 3);
static bool has_line(const char *text, const char *fmt, ...) {
        char want[256], *copy = strdup(text), *save = NULL;
        bool found = false;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(want, sizeof(want), fmt, ap);
        va_end(ap);

        ASSERT_TRUE(copy);
        for (char *l = strtok_r(copy, "\n", &save); l && !found; l = strtok_r(NULL, "\n", &save))
                found = streq(strstrip(l), want);
        free(copy);
        return found;
}

/* A collapsed view of "Label:   \troot" lines: key and value separated by one space. */
static bool dump_has(const char *text, const char *key, const char *value) {
        const char *p = strstr(text, key);
        if (!p)
                return false;
        p += strlen(key);
        p += strspn(p, " \t");
        return strncmp(p, value, strlen(value)) == 0 && (p[strlen(value)] == '\n' || p[strlen(value)] == 0);
}

static const sd_id128_t root_uuid =
        SD_ID128_MAKE(8f, 1f, 4b, d0, 6b, d4, 4a, 2a, 9c, 2f, 3a, 1d, 2e, 5f, 7c, 01);

static void test_errors(void) {
        _cleanup_(luks_freep) LuksVolume *v = NULL;
        char *small = make_file(1 * MiB), *blank = make_file(32 * MiB);

        /* Too small for the 16 MiB of LUKS2 metadata: libcryptsetup's reason reaches the message. */
        error_clear();
        ASSERT_TRUE(luks_format(small, root_uuid, NULL, &v) < 0);
        ASSERT_TRUE(!v);
        ASSERT_CONTAINS(error_message(), small);
        fprintf(stderr, "too small: %s\n", error_message());

        error_clear();
        ASSERT_TRUE(luks_open_header(blank, &v) < 0);
        ASSERT_CONTAINS(error_message(), blank);
        fprintf(stderr, "no header: %s\n", error_message());

        error_clear();
        ASSERT_TRUE(luks_open_header("/nonexistent/imprint-luks", &v) < 0);
        ASSERT_CONTAINS(error_message(), "/nonexistent/imprint-luks");
        fprintf(stderr, "no device: %s\n", error_message());

        ASSERT_EQ(luks_format(blank, root_uuid, &(LuksFormatOptions) { .sector_size = 1000 }, &v), -EINVAL);
        ASSERT_EQ(luks_format(blank, root_uuid,
                              &(LuksFormatOptions) { .label = "a label that is far too long for the LUKS2 binary header" }, &v),
                  -EINVAL);
        ASSERT_TRUE(!v);

        remove_file(small);
        remove_file(blank);
}

static void test_root_volume(void) {
        _cleanup_(luks_freep) LuksVolume *v = NULL;
        Secret *tpm = random_base64_key(), *recovery = random_recovery_key(), *typed = text_key("correct horse battery staple"),
               *wrong = text_key("not the passphrase"), *later = random_base64_key();
        char *path = make_file(32 * MiB);
        int s_tpm, s_rec, s_typed, s_later, tok;
        unsigned char *area_before = NULL;
        uint64_t area_offset = 0;
        size_t area_size = 0;

        ASSERT_OK(luks_format(path, root_uuid, &(LuksFormatOptions) { .label = "root", .fast_kdf_for_tests = true }, &v));
        ASSERT_STREQ(luks_device(v), path);
        ASSERT_EQ(luks_data_offset(v), 16 * MiB);

        ASSERT_EQ(luks_add_key_high_entropy(v, NULL), -EINVAL);
        s_tpm = luks_add_key_high_entropy(v, tpm);
        s_rec = luks_add_key_high_entropy(v, recovery);
        s_typed = luks_add_key_passphrase(v, typed);
        ASSERT_EQ(s_tpm, 0);
        ASSERT_EQ(s_rec, 1);
        ASSERT_EQ(s_typed, 2);

        tok = luks_add_recovery_token(v, s_rec);
        ASSERT_EQ(tok, 0);
        /* Refused: a keyslot not in use; a systemd token naming two keyslots; no type. */
        ASSERT_EQ(luks_add_recovery_token(v, 7), -ENOENT);
        {
                json_object *t = json_tokener_parse("{\"type\":\"systemd-tpm2\",\"keyslots\":[\"0\",\"1\"]}");
                ASSERT_EQ(luks_add_token(v, t), -EINVAL);
                ASSERT_CONTAINS(error_message(), "exactly one keyslot");
                json_object_put(t);
                t = json_tokener_parse("{\"keyslots\":[\"0\"]}");
                ASSERT_EQ(luks_add_token(v, t), -EINVAL);
                json_object_put(t);
                t = json_tokener_parse("{\"type\":\"imprint-test\",\"keyslots\":[\"0x1\"]}");
                ASSERT_EQ(luks_add_token(v, t), -EINVAL);
                json_object_put(t);
                t = json_tokener_parse("{\"type\":\"imprint-test\",\"keyslots\":[\"01\"]}");
                ASSERT_EQ(luks_add_token(v, t), -EINVAL);
                json_object_put(t);
                t = json_tokener_parse("{\"type\":\"imprint-test\",\"keyslots\":[1]}");
                ASSERT_EQ(luks_add_token(v, t), -EINVAL);
                json_object_put(t);
        }
        v = luks_free(v);

        /* libcryptsetup, from a fresh context: each key opens its own keyslot and only that. */
        ASSERT_EQ(lib_open(path, tpm), s_tpm);
        ASSERT_EQ(lib_open(path, recovery), s_rec);
        ASSERT_EQ(lib_open(path, typed), s_typed);
        ASSERT_EQ(lib_open(path, wrong), -EPERM);

        if (have_cryptsetup) {
                json_object *dump, *tokens;
                char *text;

                ASSERT_OK(cli_test_passphrase(path, tpm, s_tpm));
                ASSERT_OK(cli_test_passphrase(path, recovery, s_rec));
                ASSERT_OK(cli_test_passphrase(path, typed, s_typed));
                ASSERT_OK(cli_test_passphrase(path, tpm, -1));
                ASSERT_TRUE(cli_test_passphrase(path, wrong, -1) < 0);
                ASSERT_CONTAINS(error_message(), "exit status 2"); /* EPERM: no keyslot takes it */
                ASSERT_TRUE(cli_test_passphrase(path, tpm, s_rec) < 0);

                dump = cli_dump_json(path);
                ASSERT_EQ(json_object_object_length(jget(dump, "keyslots", NULL)), 3);
                assert_kdf(dump, s_tpm, "pbkdf2", "sha512", 1000);
                assert_kdf(dump, s_rec, "pbkdf2", "sha512", 1000);
                assert_kdf(dump, s_typed, "pbkdf2", NULL, 1000); /* fast_kdf_for_tests */
                ASSERT_STREQ(json_object_get_string(jget(dump, "segments", "0", "encryption", NULL)), "aes-xts-plain64");
                ASSERT_EQ(json_object_get_int(jget(dump, "segments", "0", "sector_size", NULL)), 512);
                ASSERT_STREQ(json_object_get_string(jget(dump, "segments", "0", "offset", NULL)), "16777216");
                tokens = jget(dump, "tokens", NULL);
                ASSERT_EQ(json_object_object_length(tokens), 1);
                ASSERT_STREQ(json_object_get_string(jget(tokens, "0", "type", NULL)), "systemd-recovery");
                ASSERT_EQ(json_object_array_length(jget(tokens, "0", "keyslots", NULL)), 1);
                ASSERT_STREQ(json_object_get_string(json_object_array_get_idx(jget(tokens, "0", "keyslots", NULL), 0)),
                             slot_name(s_rec));
                area_before = read_keyslot_area(path, dump, s_tpm, &area_offset, &area_size);
                json_object_put(dump);

                text = cli_dump_text(path);
                ASSERT_TRUE(dump_has(text, "Label:", "root"));
                ASSERT_TRUE(dump_has(text, "UUID:", SD_ID128_TO_UUID_STRING(root_uuid)));
                ASSERT_TRUE(dump_has(text, "cipher:", "aes-xts-plain64"));
                ASSERT_TRUE(dump_has(text, "Key:", "512 bits"));
                free(text);
        }

        if (have_cryptenroll) {
                char *list = cli_cryptenroll_list(path);

                fprintf(stderr, "systemd-cryptenroll %s:\n%s", path, list);
                ASSERT_TRUE(has_line(list, "SLOT TYPE"));
                ASSERT_TRUE(has_line(list, "%d password", s_tpm));
                ASSERT_TRUE(has_line(list, "%d recovery", s_rec));
                ASSERT_TRUE(has_line(list, "%d password", s_typed));
                free(list);
        }

        /* A header loaded later: keys are added only after an existing one is proven. */
        ASSERT_OK(luks_open_header(path, &v));
        ASSERT_EQ(luks_data_offset(v), 16 * MiB);
        ASSERT_EQ(luks_add_key_high_entropy(v, later), -ENOKEY);
        ASSERT_EQ(luks_unlock(v, wrong), -EPERM);
        ASSERT_EQ(luks_unlock(v, recovery), s_rec);
        s_later = luks_add_key_high_entropy(v, later);
        ASSERT_EQ(s_later, 3);
        ASSERT_EQ(lib_open(path, later), s_later);
        if (have_cryptsetup) {
                json_object *dump = cli_dump_json(path);
                assert_kdf(dump, s_later, "pbkdf2", "sha512", 1000);
                json_object_put(dump);
        }

        /* The crypto-erase. */
        ASSERT_OK(luks_erase(v));
        ASSERT_EQ(luks_add_key_high_entropy(v, later), -ENOKEY);
        ASSERT_EQ(luks_data_offset(v), 16 * MiB);
        v = luks_free(v);

        ASSERT_TRUE(lib_open(path, tpm) < 0);
        ASSERT_TRUE(lib_open(path, recovery) < 0);
        ASSERT_TRUE(lib_open(path, typed) < 0);
        ASSERT_TRUE(lib_open(path, later) < 0);
        if (have_cryptsetup) {
                json_object *dump;
                unsigned char *area_after;
                size_t n;
                int fd;

                ASSERT_TRUE(cli_test_passphrase(path, tpm, -1) < 0);
                ASSERT_TRUE(cli_test_passphrase(path, recovery, -1) < 0);
                ASSERT_TRUE(cli_test_passphrase(path, typed, -1) < 0);
                ASSERT_TRUE(cli_test_passphrase(path, later, -1) < 0);

                dump = cli_dump_json(path);
                ASSERT_EQ(json_object_object_length(jget(dump, "keyslots", NULL)), 0);
                ASSERT_EQ(json_object_object_length(jget(dump, "tokens", NULL)), 0);
                json_object_put(dump);

                /* The wrapped key is gone from the disk, not only from the JSON. */
                area_after = malloc(area_size);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                ASSERT_TRUE(area_after && fd >= 0);
                ASSERT_OK(pread_full(fd, area_after, area_size, area_offset));
                close(fd);
                n = 0;
                for (size_t i = 0; i + 64 <= area_size; i += 64)
                        n += memcmp(area_before + i, area_after + i, 64) == 0;
                ASSERT_EQ(n, 0);
                free(area_before);
                free(area_after);
        }
        if (have_cryptenroll) {
                char *list = cli_cryptenroll_list(path);
                fprintf(stderr, "systemd-cryptenroll %s after luks_erase():\n%s", path, list);
                ASSERT_FALSE(strstr(list, "recovery"));
                ASSERT_FALSE(strstr(list, "password"));
                free(list);
        }

        assert_not_logged(tpm);
        assert_not_logged(recovery);
        assert_not_logged(typed);
        assert_not_logged(later);
        secret_free(tpm);
        secret_free(recovery);
        secret_free(typed);
        secret_free(wrong);
        secret_free(later);
        remove_file(path);
}

static void test_home_volume(void) {
        _cleanup_(luks_freep) LuksVolume *v = NULL;
        Secret *typed = text_key("Tr0ub4dor&3"), *tpm = random_base64_key();
        char *path = make_file(32 * MiB);
        struct timespec t0, t1;
        int s_typed, s_tpm, tok;

        /* No fast KDF, no UUID (libcryptsetup picks one), 4Kn sectors. */
        ASSERT_OK(luks_format(path, SD_ID128_NULL, &(LuksFormatOptions) { .label = "home", .sector_size = 4096 }, &v));

        clock_gettime(CLOCK_MONOTONIC, &t0);
        s_typed = luks_add_key_passphrase(v, typed);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ASSERT_EQ(s_typed, 0);
        fprintf(stderr, "argon2id keyslot (benchmarked) took %.1f s\n",
                (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9);
        s_tpm = luks_add_key_high_entropy(v, tpm);
        ASSERT_EQ(s_tpm, 1);

        /* Any token type, tied to two keyslots. */
        {
                json_object *t = json_tokener_parse("{\"type\":\"imprint-test\",\"keyslots\":[\"0\",\"1\"],\"note\":\"x\"}");
                ASSERT_TRUE(t);
                tok = luks_add_token(v, t);
                ASSERT_EQ(tok, 0);
                json_object_put(t);
        }

        if (have_cryptsetup) {
                json_object *dump = cli_dump_json(path), *slots;
                char *text;

                assert_kdf(dump, s_typed, "argon2id", NULL, 0);
                assert_kdf(dump, s_tpm, "pbkdf2", "sha512", 1000);
                ASSERT_EQ(json_object_get_int(jget(dump, "segments", "0", "sector_size", NULL)), 4096);
                ASSERT_STREQ(json_object_get_string(jget(dump, "tokens", "0", "type", NULL)), "imprint-test");
                slots = jget(dump, "tokens", "0", "keyslots", NULL);
                ASSERT_EQ(json_object_array_length(slots), 2);
                ASSERT_STREQ(json_object_get_string(json_object_array_get_idx(slots, 0)), "0");
                ASSERT_STREQ(json_object_get_string(json_object_array_get_idx(slots, 1)), "1");
                json_object_put(dump);

                text = cli_dump_text(path);
                ASSERT_TRUE(dump_has(text, "Label:", "home"));
                ASSERT_FALSE(dump_has(text, "UUID:", SD_ID128_TO_UUID_STRING(SD_ID128_NULL)));
                free(text);

                ASSERT_OK(cli_test_passphrase(path, tpm, s_tpm));
        }

        /* Erasing in the context that formatted the volume drops the volume key as well: no new
         * keyslot can be made from it afterwards. */
        ASSERT_OK(luks_erase(v));
        ASSERT_EQ(luks_add_key_passphrase(v, typed), -ENOKEY);
        ASSERT_TRUE(lib_open(path, tpm) < 0);
        if (have_cryptsetup) {
                json_object *dump = cli_dump_json(path);
                ASSERT_EQ(json_object_object_length(jget(dump, "keyslots", NULL)), 0);
                ASSERT_EQ(json_object_object_length(jget(dump, "tokens", NULL)), 0);
                json_object_put(dump);
        }

        assert_not_logged(typed);
        assert_not_logged(tpm);
        secret_free(typed);
        secret_free(tpm);
        remove_file(path);
}

int main(void) {
        log_set_sink(capture_log, NULL);
        log_set_max_level(LOG_DEBUG);

        have_cryptsetup = find_executable("cryptsetup");
        have_cryptenroll = find_executable("systemd-cryptenroll");

        test_errors();
        test_root_volume();
        test_home_volume();

        free(logged);

        if (!have_cryptsetup || !have_cryptenroll) {
                fprintf(stderr, "SKIP: %s%s not installed: the checks with stock tools did not run.\n",
                        have_cryptsetup ? "" : "cryptsetup ", have_cryptenroll ? "" : "systemd-cryptenroll");
                return 77;
        }
        printf("test-luks: all checks passed\n");
        return 0;
}
