/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Encrypting a planned partition (encrypt.h), on plain files and against swtpm: what
 * encrypt_format_volume() leaves on the disk is checked with stock tools, never with the code that
 * wrote it alone.
 *
 * Needs root (the token plugin runs in a mount namespace) and swtpm; exits 77 without them. Starts
 * its own swtpm on free ports (swtpm-util.[ch], shared with test-tpm2) and kills it on exit. What it
 * checks:
 *   - pcr_mask_parse() and the tpm2_use strings;
 *   - encryption_decide(): image files, --no-encrypt, the TPM turned off, required but missing,
 *     auto with a missing TPM, swtpm, and a signed PCR 11 policy without an image;
 *   - secret_read_file()/secret_read_credential() and password_quality_check();
 *   - encrypt_format_volume() for a hand-made plan with a TPM2 (PCR 7) and the recovery key on a
 *     64 MiB file: stock cryptsetup luksDump (JSON and text) shows LUKS2, aes-xts-plain64 with a
 *     512-bit key, the planned UUID and label, a systemd-recovery and a systemd-tpm2 token each on
 *     its own keyslot under systemd's minimal PBKDF, PCR 7, bank sha256, no tpm2_srk; stock
 *     systemd-cryptenroll lists "recovery" and "tpm2"; stock cryptsetup takes the recovery key and
 *     refuses another; the token read back unseals (tpm2_token_parse(), tpm2_unseal()) to the key
 *     of its keyslot; stock systemd's token plugin unlocks the volume through swtpm;
 *   - the same with a TPM2 PIN and a passphrase: a third keyslot (argon2id) that opens with it;
 *   - a home volume on a 4Kn disk without TPM: 4096-byte encryption sectors, label "home";
 *   - refusals before anything is written: no TPM context, no passphrase, no recovery key, a
 *     partition not planned encrypted (the file stays all zeros);
 *   - encryption_escrow_recovery_key(): recovery-key-<uuid>.txt, 0600, the key on its last line,
 *     never overwritten;
 *   - no key or passphrase ever reaches the log.
 * Secrets reach child processes through pipes only, never argv. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "encrypt.h"
#include "error.h"
#include "fileio.h"
#include "log.h"
#include "luks.h"
#include "plan.h"
#include "quality.h"
#include "recovery.h"
#include "run.h"
#include "secret.h"
#include "swtpm-util.h"
#include "json-util.h"
#include "luks-cli.h"
#include "tests.h"
#include "tpm2.h"

#define MiB (UINT64_C(1024) * 1024)
#define VOLUME_SIZE (64 * MiB)

static char workdir[] = "/var/tmp/test-encrypt.XXXXXX";
static bool have_workdir;
static Swtpm tpm = SWTPM_INIT;

static const sd_id128_t root_luks_uuid = SD_ID128_MAKE(3b, 0c, 5e, 1a, 77, 42, 4d, 8e, 9a, 61, 0f, 2c, 4b, 1d, 6e, 01);
static const sd_id128_t root2_luks_uuid = SD_ID128_MAKE(3b, 0c, 5e, 1a, 77, 42, 4d, 8e, 9a, 61, 0f, 2c, 4b, 1d, 6e, 02);
static const sd_id128_t home_luks_uuid = SD_ID128_MAKE(3b, 0c, 5e, 1a, 77, 42, 4d, 8e, 9a, 61, 0f, 2c, 4b, 1d, 6e, 03);

static void cleanup(void) {
        swtpm_stop(&tpm);
        if (have_workdir) {
                remove_tree(workdir);
                have_workdir = false;
        }
}

static void on_abort(int sig) {
        (void) sig;
        cleanup();
}

/* ---- the log: everything the engine said, to prove no secret was in it ------------------------ */

static char *logged;

static void capture_log(int level, const char *line, void *userdata) {
        (void) userdata;
        logged = strjoin_free(logged, line);
        logged = strjoin_free(logged, "\n");
        ASSERT_TRUE(logged);
        if (getenv("TEST_VERBOSE") || level <= LOG_WARNING)
                fprintf(stderr, "log<%d>: %s\n", level, line);
}

static void assert_not_logged(const Secret *s) {
        if (s && logged && memmem(logged, strlen(logged), s->data, s->size))
                FAIL("a secret appeared in the log");
}

/* ---- files ------------------------------------------------------------------------------------ */

static char *work_path(const char *fmt, ...) _printf_(1, 2);
static char *work_path(const char *fmt, ...) {
        char name[256], *path;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(name, sizeof(name), fmt, ap);
        va_end(ap);
        ASSERT_TRUE(asprintf(&path, "%s/%s", workdir, name) > 0);
        return path;
}

/* A new zero-filled file of size bytes (sparse). */
static char *make_file(const char *name, uint64_t size) {
        char *path = work_path("%s", name);
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(ftruncate(fd, (off_t) size) == 0);
        close(fd);
        return path;
}

static void write_file(const char *path, const void *data, size_t size) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(write_full(fd, data, size));
        close(fd);
}

static char *read_file(const char *path, size_t *ret_size) {
        struct stat st;
        char *buf;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(fstat(fd, &st) == 0);
        buf = malloc((size_t) st.st_size + 1);
        ASSERT_TRUE(buf);
        ASSERT_TRUE(read_full(fd, buf, (size_t) st.st_size));
        buf[st.st_size] = 0;
        close(fd);
        if (ret_size)
                *ret_size = (size_t) st.st_size;
        return buf;
}

/* Every byte of the file is zero: nothing was written to it. */
static bool file_all_zero(const char *path, uint64_t expected_size) {
        static uint8_t buf[1 << 20];
        struct stat st;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        bool zero = true;

        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(fstat(fd, &st) == 0);
        ASSERT_EQ(st.st_size, expected_size);
        for (uint64_t off = 0; off < (uint64_t) st.st_size && zero; off += sizeof(buf)) {
                size_t n = (size_t) MIN((uint64_t) sizeof(buf), (uint64_t) st.st_size - off);
                ASSERT_TRUE(read_full(fd, buf, n));
                for (size_t i = 0; i < n; i++)
                        if (buf[i]) {
                                zero = false;
                                break;
                        }
        }
        close(fd);
        return zero;
}

static Secret *text_secret(const char *s) {
        Secret *k = secret_new_from(s, strlen(s));
        ASSERT_TRUE(k);
        return k;
}

/* ---- a plan made by hand ---------------------------------------------------------------------- */

typedef struct PlanSpec {
        bool tpm2, tpm2_pin, passphrase;
        uint64_t sector_size;        /* 0: 512 */
        PartitionRole role;          /* of the one encrypted partition */
        sd_id128_t luks_uuid;
        bool with_home;              /* a second, encrypted home partition (for the escrow file) */
} PlanSpec;

static Plan *make_plan(const char *target, const PlanSpec *s) {
        Plan *p = calloc(1, sizeof(Plan));
        size_t n = 0;

        ASSERT_TRUE(p);
        p->mode = PLAN_ERASE;
        p->target_kind = DISK_BLOCK;
        p->target = strdup(target);
        p->target_name = strdup("test-disk");
        p->target_description = strdup("a file standing in for a disk");
        ASSERT_TRUE(p->target && p->target_name && p->target_description);
        p->sector_size = s->sector_size ?: 512;

        p->encryption.enabled = true;
        p->encryption.recovery_key = true;
        p->encryption.passphrase = s->passphrase;
        if (s->tpm2) {
                p->encryption.tpm2 = true;
                p->encryption.tpm2_tcti = strdup(tpm.tcti);
                ASSERT_TRUE(p->encryption.tpm2_tcti);
                p->encryption.tpm2_pcrs = UINT32_C(1) << 7;
                p->encryption.tpm2_pin = s->tpm2_pin;
        }

        p->partitions = calloc(2, sizeof(PlanPartition));
        ASSERT_TRUE(p->partitions);
        p->partitions[n++] = (PlanPartition) {
                .role = s->role,
                .action = ACTION_CREATE,
                .partno = 2,
                .start = 1025 * MiB,
                .size = VOLUME_SIZE,
                .copy_from = -1,
                .encrypt = true,
                .luks_uuid = s->luks_uuid,
        };
        if (s->with_home)
                p->partitions[n++] = (PlanPartition) {
                        .role = ROLE_HOME,
                        .action = ACTION_CREATE,
                        .partno = 3,
                        .start = 1025 * MiB + VOLUME_SIZE,
                        .size = VOLUME_SIZE,
                        .copy_from = -1,
                        .encrypt = true,
                        .luks_uuid = home_luks_uuid,
                };
        p->n_partitions = n;
        return p;
}

/* ---- stock tools ------------------------------------------------------------------------------ */


/* "Label:          \troot" in luksDump's text: the value after the key, up to the end of the line. */
static void assert_dump_value(const char *text, const char *key, const char *value) {
        const char *p = strstr(text, key);

        if (!p)
                FAIL("luksDump has no \"%s\" line:\n%s", key, text);
        p += strlen(key);
        p += strspn(p, " \t");
        if (strncmp(p, value, strlen(value)) != 0 || (p[strlen(value)] != '\n' && p[strlen(value)] != 0))
                FAIL("luksDump: %s is not \"%s\":\n%s", key, value, text);
}


/* The one keyslot a systemd token names ("keyslots": ["N"]). */
static int token_slot(json_object *token) {
        json_object *slots = jget(token, "keyslots", NULL), *e;
        char *end;
        long n;

        ASSERT_TRUE(json_object_is_type(slots, json_type_array));
        ASSERT_EQ(json_object_array_length(slots), 1);
        e = json_object_array_get_idx(slots, 0);
        ASSERT_TRUE(json_object_is_type(e, json_type_string));
        n = strtol(json_object_get_string(e), &end, 10);
        ASSERT_TRUE(*end == 0 && n >= 0 && n < 32);
        return (int) n;
}

typedef struct VolumeLayout {
        int recovery_slot, tpm2_slot, passphrase_slot;   /* -1: none */
        json_object *tpm2_token;                         /* owned by the dump */
        json_object *dump;
} VolumeLayout;

/* The LUKS2 header as stock cryptsetup reads it. */
static VolumeLayout check_header(const char *path, const PlanSpec *s) {
        VolumeLayout l = { .recovery_slot = -1, .tpm2_slot = -1, .passphrase_slot = -1 };
        json_object *keyslots, *tokens, *seg;
        char uuid[SD_ID128_UUID_STRING_MAX], *text;
        unsigned n_keyslots = 0, n_tokens = 0;

        l.dump = cli_dump_json(path);

        /* One crypt segment: aes-xts-plain64, the planned encryption sector size. */
        seg = jget(l.dump, "segments", "0", NULL);
        ASSERT_STREQ(json_object_get_string(jget(seg, "type", NULL)), "crypt");
        ASSERT_STREQ(json_object_get_string(jget(seg, "encryption", NULL)), "aes-xts-plain64");
        ASSERT_EQ(json_object_get_int(jget(seg, "sector_size", NULL)), s->sector_size == 4096 ? 4096 : 512);
        ASSERT_STREQ(json_object_get_string(jget(seg, "offset", NULL)), "16777216");

        /* Tokens: a systemd-recovery token, a systemd-tpm2 token when planned, nothing else. */
        tokens = jget(l.dump, "tokens", NULL);
        json_object_object_foreach(tokens, id, token) {
                const char *type = json_object_get_string(jget(token, "type", NULL));

                (void) id;
                n_tokens++;
                if (streq(type, "systemd-recovery")) {
                        ASSERT_EQ(l.recovery_slot, -1);
                        l.recovery_slot = token_slot(token);
                } else if (streq(type, "systemd-tpm2")) {
                        ASSERT_EQ(l.tpm2_slot, -1);
                        l.tpm2_slot = token_slot(token);
                        l.tpm2_token = token;
                } else
                        FAIL("unexpected token type %s", type);
        }
        ASSERT_TRUE(l.recovery_slot >= 0);
        ASSERT_EQ(n_tokens, s->tpm2 ? 2 : 1);
        ASSERT_EQ(l.tpm2_slot >= 0, s->tpm2);
        ASSERT_TRUE(l.recovery_slot != l.tpm2_slot);

        /* Keyslots: each wraps the whole 512-bit volume key; the ones with high-entropy keys use
         * systemd's minimal PBKDF (PBKDF2-SHA512, 1000 iterations), the passphrase argon2id. */
        keyslots = jget(l.dump, "keyslots", NULL);
        json_object_object_foreach(keyslots, slot, ks) {
                int n = atoi(slot);
                const char *kdf = json_object_get_string(jget(ks, "kdf", "type", NULL));

                n_keyslots++;
                ASSERT_STREQ(json_object_get_string(jget(ks, "type", NULL)), "luks2");
                ASSERT_EQ(json_object_get_int(jget(ks, "key_size", NULL)), 64);
                if (n == l.recovery_slot || n == l.tpm2_slot) {
                        ASSERT_STREQ(kdf, "pbkdf2");
                        ASSERT_STREQ(json_object_get_string(jget(ks, "kdf", "hash", NULL)), "sha512");
                        ASSERT_EQ(json_object_get_int(jget(ks, "kdf", "iterations", NULL)), 1000);
                } else {
                        ASSERT_TRUE(s->passphrase);
                        ASSERT_EQ(l.passphrase_slot, -1);
                        l.passphrase_slot = n;
                        ASSERT_STREQ(kdf, "argon2id");
                        printf("passphrase keyslot %d: argon2id, time %d, memory %d KiB, %d threads\n", n,
                               json_object_get_int(jget(ks, "kdf", "time", NULL)), json_object_get_int(jget(ks, "kdf", "memory", NULL)),
                               json_object_get_int(jget(ks, "kdf", "cpus", NULL)));
                }
        }
        ASSERT_EQ(n_keyslots, 1 + s->tpm2 + s->passphrase);
        ASSERT_EQ(l.passphrase_slot >= 0, s->passphrase);

        /* The systemd-tpm2 token as systemd v252 and later unlock it (formats.md §3.1, §3.5). */
        if (s->tpm2) {
                json_object *pcrs = jget(l.tpm2_token, "tpm2-pcrs", NULL);

                ASSERT_TRUE(json_object_is_type(pcrs, json_type_array));
                ASSERT_EQ(json_object_array_length(pcrs), 1);
                ASSERT_EQ(json_object_get_int(json_object_array_get_idx(pcrs, 0)), 7);
                ASSERT_STREQ(json_object_get_string(jget(l.tpm2_token, "tpm2-pcr-bank", NULL)), "sha256");
                ASSERT_STREQ(json_object_get_string(jget(l.tpm2_token, "tpm2-primary-alg", NULL)), "ecc");
                ASSERT_EQ(json_object_get_boolean(jget(l.tpm2_token, "tpm2-pin", NULL)), s->tpm2_pin);
                ASSERT_TRUE(json_object_is_type(jget(l.tpm2_token, "tpm2-blob", NULL), json_type_string));
                ASSERT_EQ(strlen(json_object_get_string(jget(l.tpm2_token, "tpm2-policy-hash", NULL))), 64);
                ASSERT_FALSE(json_object_object_get_ex(l.tpm2_token, "tpm2_srk", NULL));
                ASSERT_FALSE(json_object_object_get_ex(l.tpm2_token, "tpm2_salt", NULL));
                ASSERT_FALSE(json_object_object_get_ex(l.tpm2_token, "tpm2_pcrlock", NULL));
                ASSERT_FALSE(json_object_object_get_ex(l.tpm2_token, "tpm2_pubkey", NULL));
        }

        /* UUID and label live in the binary header: luksDump's text shows them. The token lines
         * come from systemd's own plugin (cryptsetup_token_dump()), so it parsed the token. */
        text = cli_dump_text(path);
        assert_dump_value(text, "Version:", "2");
        assert_dump_value(text, "UUID:", sd_id128_to_uuid_string(s->luks_uuid, uuid));
        assert_dump_value(text, "Label:", partition_role_to_string(s->role));
        assert_dump_value(text, "cipher:", "aes-xts-plain64");
        ASSERT_CONTAINS(text, "Cipher key: 512 bits");
        ASSERT_CONTAINS(text, "systemd-recovery");
        if (s->tpm2) {
                ASSERT_CONTAINS(text, "tpm2-hash-pcrs:   7\n");
                ASSERT_CONTAINS(text, "tpm2-pcr-bank:    sha256\n");
                ASSERT_CONTAINS(text, s->tpm2_pin ? "tpm2-pin:         true\n" : "tpm2-pin:         false\n");
        }
        free(text);

        printf("%s: LUKS2 aes-xts-plain64/512, UUID %s, label %s; recovery in keyslot %d, TPM2 in %d, passphrase in %d\n",
               path, uuid, partition_role_to_string(s->role), l.recovery_slot, l.tpm2_slot, l.passphrase_slot);
        return l;
}

/* Stock systemd-cryptenroll lists each keyslot with the type systemd gives it. */
static void check_cryptenroll(const char *path, const VolumeLayout *l) {
        char *out = cli_cryptenroll_list(path), *save = NULL;
        unsigned found = 0, lines = 0;

        printf("--- systemd-cryptenroll %s\n%s---\n", path, out);
        for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char type[32];
                int n;

                if (sscanf(line, " %d %31s", &n, type) != 2)
                        continue;
                lines++;
                if (n == l->recovery_slot) {
                        ASSERT_STREQ(type, "recovery");
                        found++;
                } else if (n == l->tpm2_slot) {
                        ASSERT_STREQ(type, "tpm2");
                        found++;
                } else if (n == l->passphrase_slot) {
                        ASSERT_STREQ(type, "password");
                        found++;
                } else
                        FAIL("systemd-cryptenroll lists keyslot %d, which is not planned", n);
        }
        ASSERT_EQ(found, (l->recovery_slot >= 0) + (l->tpm2_slot >= 0) + (l->passphrase_slot >= 0));
        ASSERT_EQ(lines, found);
        free(out);
}

/* The token read back from the header unseals, and the secret's base64 opens the TPM2 keyslot. */
static void check_tpm2_unseal(const char *path, const VolumeLayout *l, const Secret *pin) {
        _cleanup_(luks_freep) LuksVolume *v = NULL;
        _cleanup_(tpm2_context_freep) Tpm2Context *c = NULL;
        _cleanup_(secret_freep) Secret *secret = NULL, *pass = NULL, *none = NULL;
        Tpm2Sealed sealed = {};

        ASSERT_EQ(tpm2_token_parse(l->tpm2_token, &sealed), l->tpm2_slot);
        ASSERT_EQ(sealed.pcr_mask, UINT32_C(1) << 7);
        ASSERT_EQ(sealed.pin, pin != NULL);
        ASSERT_OK(tpm2_context_new(tpm.tcti, &c));
        if (pin) {
                ASSERT_EQ(tpm2_unseal(c, &sealed, &none), -ENOANO);
                ASSERT_OK(tpm2_unseal_full(c, &sealed, pin, NULL, &secret));
        } else
                ASSERT_OK(tpm2_unseal(c, &sealed, &secret));
        /* The connection to swtpm is closed before anyone else (the plugin's relay) needs it. */
        c = tpm2_context_free(c);
        ASSERT_EQ(secret->size, TPM2_SECRET_SIZE);
        ASSERT_OK(tpm2_secret_to_passphrase(secret, &pass));
        ASSERT_EQ(pass->size, TPM2_PASSPHRASE_SIZE);

        ASSERT_OK(luks_open_header(path, &v));
        ASSERT_EQ(luks_unlock(v, pass), l->tpm2_slot);
        /* And stock cryptsetup agrees. */
        ASSERT_OK(cli_test_passphrase(path, pass, l->tpm2_slot));
        assert_not_logged(pass);
        tpm2_sealed_done(&sealed);
        printf("%s: the systemd-tpm2 token unseals to the key of keyslot %d\n", path, l->tpm2_slot);
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void test_pcr_mask_parse(void) {
        static const struct {
                const char *s;
                uint32_t mask;
        } good[] = {
                { "7", UINT32_C(1) << 7 },
                { "0+7", UINT32_C(1) << 0 | UINT32_C(1) << 7 },
                { "7,11", UINT32_C(1) << 7 | UINT32_C(1) << 11 },
                { "7+11", UINT32_C(1) << 7 | UINT32_C(1) << 11 },
                { "0", UINT32_C(1) },
                { "23", UINT32_C(1) << 23 },
                { "1,4+7", UINT32_C(1) << 1 | UINT32_C(1) << 4 | UINT32_C(1) << 7 },
                { "7+7", UINT32_C(1) << 7 },
        };
        static const char *const bad[] = {
                "", "24", "7+", "x", "+7", ",7", "7++11", "7 ", " 7", "-1", "7;11", "7+x", "99999999999999999999", "0x7",
        };
        uint32_t mask;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                mask = 0xdeadbeef;
                ASSERT_OK(pcr_mask_parse(good[i].s, &mask));
                if (mask != good[i].mask)
                        FAIL("pcr_mask_parse(\"%s\") = 0x%x, expected 0x%x", good[i].s, mask, good[i].mask);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                mask = 0xdeadbeef;
                if (pcr_mask_parse(bad[i], &mask) != -EINVAL)
                        FAIL("pcr_mask_parse(\"%s\") was accepted", bad[i]);
                ASSERT_EQ(mask, 0xdeadbeef);
        }
        ASSERT_EQ(pcr_mask_parse(NULL, &mask), -EINVAL);
        printf("pcr_mask_parse: ok\n");
}

static void test_tpm2_use_strings(void) {
        ASSERT_STREQ(tpm2_use_to_string(TPM2_USE_AUTO), "auto");
        ASSERT_STREQ(tpm2_use_to_string(TPM2_USE_REQUIRED), "required");
        ASSERT_STREQ(tpm2_use_to_string(TPM2_USE_OFF), "off");
        ASSERT_TRUE(tpm2_use_to_string(_TPM2_USE_MAX) == NULL);
        ASSERT_EQ(tpm2_use_from_string("auto"), TPM2_USE_AUTO);
        ASSERT_EQ(tpm2_use_from_string("required"), TPM2_USE_REQUIRED);
        ASSERT_EQ(tpm2_use_from_string("off"), TPM2_USE_OFF);
        ASSERT_EQ(tpm2_use_from_string("maybe"), -EINVAL);
        ASSERT_EQ(tpm2_use_from_string("Auto"), -EINVAL);
        ASSERT_EQ(tpm2_use_from_string(""), -EINVAL);
        ASSERT_EQ(tpm2_use_from_string(NULL), -EINVAL);
        printf("tpm2_use strings: ok\n");
}

static void test_decide(void) {
        static const char *const missing = "device:/dev/imprint-no-such-tpm";
        EncryptRequest req;
        PlanEncryption e = {};

        encrypt_request_init(&req);
        ASSERT_EQ(req.encrypt, -1);
        ASSERT_EQ(req.tpm2, TPM2_USE_AUTO);

        /* An image file, by default: not encrypted, and the plan says why. */
        ASSERT_OK(encryption_decide(&req, DISK_IMAGE_FILE, NULL, &e));
        ASSERT_FALSE(e.enabled);
        ASSERT_FALSE(e.tpm2);
        ASSERT_CONTAINS(e.note, "image file");
        plan_encryption_done(&e);

        /* --encrypt on an image file: enabled, without asking any TPM; plan_build() refuses it. */
        req.encrypt = 1;
        req.tpm2_tcti = missing;
        req.tpm2 = TPM2_USE_REQUIRED;
        ASSERT_OK(encryption_decide(&req, DISK_IMAGE_FILE, NULL, &e));
        ASSERT_TRUE(e.enabled);
        ASSERT_TRUE(e.recovery_key);
        ASSERT_FALSE(e.tpm2);
        plan_encryption_done(&e);

        /* --no-encrypt: nothing, not even the TPM is asked (a required TPM that is missing). */
        req.encrypt = 0;
        ASSERT_OK(encryption_decide(&req, DISK_BLOCK, NULL, &e));
        ASSERT_FALSE(e.enabled);
        ASSERT_FALSE(e.recovery_key);
        ASSERT_TRUE(e.note == NULL);
        plan_encryption_done(&e);

        /* A disk with the TPM turned off: the recovery key (and the passphrase) unlock it. */
        req.encrypt = -1;
        req.tpm2 = TPM2_USE_OFF;
        ASSERT_OK(encryption_decide(&req, DISK_BLOCK, NULL, &e));
        ASSERT_TRUE(e.enabled);
        ASSERT_TRUE(e.recovery_key);
        ASSERT_FALSE(e.tpm2);
        ASSERT_FALSE(e.passphrase);
        ASSERT_CONTAINS(e.note, "turned off");
        ASSERT_CONTAINS(e.note, "the recovery key");
        plan_encryption_done(&e);
        req.passphrase = true;
        ASSERT_OK(encryption_decide(&req, DISK_BLOCK, NULL, &e));
        ASSERT_TRUE(e.passphrase);
        ASSERT_CONTAINS(e.note, "the passphrase or the recovery key");
        plan_encryption_done(&e);
        req.passphrase = false;

        /* Required, but there is none: refused with the TPM's problem. */
        req.tpm2 = TPM2_USE_REQUIRED;
        error_clear();
        ASSERT_EQ(encryption_decide(&req, DISK_BLOCK, NULL, &e), -ENODEV);
        ASSERT_CONTAINS(error_message(), "A TPM2 is required");
        ASSERT_CONTAINS(error_message(), "/dev/imprint-no-such-tpm");
        ASSERT_FALSE(e.enabled);
        printf("required TPM missing: %s\n", error_message());

        /* Auto, and there is none: encrypted anyway, and the note says why the TPM is not used. */
        req.tpm2 = TPM2_USE_AUTO;
        ASSERT_OK(encryption_decide(&req, DISK_BLOCK, NULL, &e));
        ASSERT_TRUE(e.enabled);
        ASSERT_FALSE(e.tpm2);
        ASSERT_CONTAINS(e.note, "/dev/imprint-no-such-tpm");
        ASSERT_CONTAINS(e.note, "the TPM2 is not used");
        printf("auto, TPM missing: %s\n", e.note);
        plan_encryption_done(&e);

        /* swtpm: enrolled, PCR 7 by default, or the PCRs asked for; the TCTI goes into the plan. */
        req.tpm2_tcti = tpm.tcti;
        req.tpm2 = TPM2_USE_REQUIRED;
        ASSERT_OK(encryption_decide(&req, DISK_BLOCK, NULL, &e));
        ASSERT_TRUE(e.enabled);
        ASSERT_TRUE(e.tpm2);
        ASSERT_TRUE(e.recovery_key);
        ASSERT_EQ(e.tpm2_pcrs, UINT32_C(1) << 7);
        ASSERT_EQ(e.tpm2_pubkey_pcrs, 0);
        ASSERT_TRUE(e.tpm2_pubkey == NULL);
        ASSERT_FALSE(e.tpm2_pin);
        ASSERT_STREQ(e.tpm2_tcti, tpm.tcti);
        ASSERT_TRUE(e.note == NULL);
        plan_encryption_done(&e);
        req.tpm2_pcrs = UINT32_C(1) << 0 | UINT32_C(1) << 7;
        req.tpm2_pin = true;
        ASSERT_OK(encryption_decide(&req, DISK_BLOCK, NULL, &e));
        ASSERT_EQ(e.tpm2_pcrs, UINT32_C(1) << 0 | UINT32_C(1) << 7);
        ASSERT_TRUE(e.tpm2_pin);
        plan_encryption_done(&e);

        /* A signed PCR 11 policy needs the UKI's .pcrpkey; without an image there is none. */
        req.tpm2_signed_pcr11 = true;
        error_clear();
        ASSERT_EQ(encryption_decide(&req, DISK_BLOCK, NULL, &e), -ENOKEY);
        ASSERT_CONTAINS(error_message(), ".pcrpkey");
        ASSERT_FALSE(e.enabled);
        printf("signed PCR 11 without a key: %s\n", error_message());
        printf("encryption_decide: ok\n");
}

static void test_secret_files(void) {
        _cleanup_(freep) char *f = work_path("secret"), *creds = work_path("creds"), *cred = work_path("creds/imprint.passphrase");
        Secret *s = NULL;

        ASSERT_EQ(secret_read_file(f, 64, &s), -ENOENT);
        write_file(f, "hunter2-but-longer\n", 19);
        ASSERT_OK(secret_read_file(f, 64, &s));
        ASSERT_EQ(s->size, 18);
        ASSERT_TRUE(memcmp(s->data, "hunter2-but-longer", 19) == 0); /* NUL-terminated */
        s = secret_free(s);
        /* Only one newline is dropped; a line break inside stays. */
        write_file(f, "two\nlines\n\n", 11);
        ASSERT_OK(secret_read_file(f, 64, &s));
        ASSERT_EQ(s->size, 10);
        ASSERT_TRUE(memcmp(s->data, "two\nlines\n", 10) == 0);
        s = secret_free(s);
        /* At most max bytes. */
        write_file(f, "12345678", 8);
        ASSERT_OK(secret_read_file(f, 8, &s));
        ASSERT_EQ(s->size, 8);
        s = secret_free(s);
        ASSERT_EQ(secret_read_file(f, 7, &s), -E2BIG);
        ASSERT_TRUE(s == NULL);
        /* Empty, a lone newline, a NUL byte. */
        write_file(f, "", 0);
        ASSERT_EQ(secret_read_file(f, 64, &s), -EINVAL);
        write_file(f, "\n", 1);
        ASSERT_EQ(secret_read_file(f, 64, &s), -EINVAL);
        write_file(f, "ab\0cd", 5);
        ASSERT_EQ(secret_read_file(f, 64, &s), -EINVAL);
        ASSERT_TRUE(s == NULL);

        /* Credentials: $CREDENTIALS_DIRECTORY/<name>, never a path. */
        unsetenv("CREDENTIALS_DIRECTORY");
        ASSERT_EQ(secret_read_credential("imprint.passphrase", 64, &s), -ENOENT);
        ASSERT_TRUE(mkdir(creds, 0700) == 0);
        setenv("CREDENTIALS_DIRECTORY", creds, 1);
        ASSERT_EQ(secret_read_credential("imprint.passphrase", 64, &s), -ENOENT);
        write_file(cred, "from a credential\n", 18);
        ASSERT_OK(secret_read_credential("imprint.passphrase", 64, &s));
        ASSERT_EQ(s->size, 17);
        ASSERT_TRUE(memcmp(s->data, "from a credential", 17) == 0);
        s = secret_free(s);
        ASSERT_EQ(secret_read_credential("../creds/imprint.passphrase", 64, &s), -ENOENT);
        setenv("CREDENTIALS_DIRECTORY", "", 1);
        ASSERT_EQ(secret_read_credential("imprint.passphrase", 64, &s), -ENOENT);
        unsetenv("CREDENTIALS_DIRECTORY");
        printf("secret_read_file/secret_read_credential: ok\n");
}

static void test_quality(void) {
        int r;

        error_clear();
        ASSERT_EQ(password_quality_check("password", NULL), -EPERM);
        ASSERT_TRUE(error_message() && strlen(error_message()) > 1);
        printf("\"password\": %s\n", error_message());
        error_clear();
        ASSERT_EQ(password_quality_check("abc", NULL), -EPERM);
        printf("\"abc\": %s\n", error_message());
        r = password_quality_check("Vq7#mT2!xLp9@wRz-Kestrel", NULL);
        ASSERT_OK(r);
        ASSERT_TRUE(r <= 100);
        printf("password_quality_check: ok (a strong one scores %d)\n", r);
}

/* Refusals before anything is written: the file stays all zeros. */
static void test_refusals(void) {
        _cleanup_(secret_freep) Secret *key = NULL;
        _cleanup_(plan_freep) Plan *p = NULL, *p2 = NULL;
        _cleanup_(freep) char *path = make_file("refused.img", VOLUME_SIZE);
        LuksVolume *v = NULL;
        Tpm2Context *c = NULL;

        ASSERT_OK(recovery_key_generate(&key));
        p = make_plan(path, &(PlanSpec) { .tpm2 = true, .role = ROLE_ROOT, .luks_uuid = root_luks_uuid });

        /* The plan enrolls the TPM2, but no context was opened. */
        error_clear();
        ASSERT_EQ(encrypt_format_volume(p, &p->partitions[0], path, &(EncryptKeys) { .recovery_key = key }, &v), -EINVAL);
        ASSERT_CONTAINS(error_message(), "TPM2");
        ASSERT_TRUE(v == NULL);
        ASSERT_TRUE(file_all_zero(path, VOLUME_SIZE));
        printf("no TPM context: %s\n", error_message());

        /* No recovery key: never. */
        ASSERT_OK(tpm2_context_new(tpm.tcti, &c));
        error_clear();
        ASSERT_EQ(encrypt_format_volume(p, &p->partitions[0], path, &(EncryptKeys) { .tpm = c }, &v), -EINVAL);
        ASSERT_CONTAINS(error_message(), "recovery key");
        ASSERT_TRUE(file_all_zero(path, VOLUME_SIZE));

        /* A passphrase keyslot is planned, but no passphrase given. */
        p->encryption.passphrase = true;
        error_clear();
        ASSERT_EQ(encrypt_format_volume(p, &p->partitions[0], path, &(EncryptKeys) { .recovery_key = key, .tpm = c }, &v), -EINVAL);
        ASSERT_CONTAINS(error_message(), "passphrase");
        ASSERT_TRUE(file_all_zero(path, VOLUME_SIZE));
        p->encryption.passphrase = false;

        /* The partition is not planned encrypted; or the plan encrypts nothing. */
        p->partitions[0].encrypt = false;
        error_clear();
        ASSERT_EQ(encrypt_format_volume(p, &p->partitions[0], path, &(EncryptKeys) { .recovery_key = key, .tpm = c }, &v), -EINVAL);
        ASSERT_CONTAINS(error_message(), "not planned to be encrypted");
        p->partitions[0].encrypt = true;
        p->encryption.enabled = false;
        ASSERT_EQ(encrypt_format_volume(p, &p->partitions[0], path, &(EncryptKeys) { .recovery_key = key, .tpm = c }, &v), -EINVAL);
        p->encryption.enabled = true;
        ASSERT_TRUE(file_all_zero(path, VOLUME_SIZE));
        ASSERT_TRUE(v == NULL);

        /* A PIN is planned but not given: refused too. (It is checked only after the header is
         * written, unlike the other keys: see the report; the executor's pre-flight check catches
         * it before anything is written, so only the return value is checked here.) */
        p2 = make_plan(path, &(PlanSpec) { .tpm2 = true, .tpm2_pin = true, .role = ROLE_ROOT, .luks_uuid = root_luks_uuid });
        error_clear();
        ASSERT_EQ(encrypt_format_volume(p2, &p2->partitions[0], path, &(EncryptKeys) { .recovery_key = key, .tpm = c }, &v), -EINVAL);
        ASSERT_CONTAINS(error_message(), "PIN");
        ASSERT_TRUE(v == NULL);
        if (!file_all_zero(path, VOLUME_SIZE))
                printf("note: a planned TPM2 PIN that was not given is refused only after the LUKS2 header was written\n");

        tpm2_context_free(c);
        assert_not_logged(key);
        printf("refusals: ok\n");
}

/* Root: recovery key and TPM2 (PCR 7). */
static void test_root_tpm2(const Secret *key, Plan **ret_plan) {
        _cleanup_(plan_freep) Plan *p = NULL;
        _cleanup_(freep) char *path = make_file("root.img", VOLUME_SIZE);
        _cleanup_(luks_freep) LuksVolume *v = NULL;
        _cleanup_(secret_freep) Secret *wrong = NULL;
        const PlanSpec spec = { .tpm2 = true, .role = ROLE_ROOT, .luks_uuid = root_luks_uuid };
        Tpm2Context *c = NULL;
        VolumeLayout l;
        struct timespec t0, t1;

        p = make_plan(path, &spec);
        ASSERT_OK(tpm2_context_new(tpm.tcti, &c));
        clock_gettime(CLOCK_MONOTONIC, &t0);
        ASSERT_OK(encrypt_format_volume(p, &p->partitions[0], path, &(EncryptKeys) { .recovery_key = key, .tpm = c }, &v));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("encrypt_format_volume (recovery key, TPM2): %.2f s\n",
               (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9);
        tpm2_context_free(c);
        ASSERT_TRUE(v);
        ASSERT_STREQ(luks_device(v), path);
        ASSERT_EQ(luks_data_offset(v), 16 * MiB);
        v = luks_free(v);

        l = check_header(path, &spec);
        /* The recovery key was enrolled first. */
        ASSERT_EQ(l.recovery_slot, 0);
        check_cryptenroll(path, &l);

        /* Stock cryptsetup: the recovery key opens (any keyslot, and its own); another does not. */
        ASSERT_OK(cli_test_passphrase(path, key, -1));
        ASSERT_OK(cli_test_passphrase(path, key, l.recovery_slot));
        ASSERT_OK(recovery_key_generate(&wrong));
        ASSERT_TRUE(cli_test_passphrase(path, wrong, -1) < 0);
        ASSERT_TRUE(cli_test_passphrase(path, key, l.tpm2_slot) < 0);
        printf("%s: stock cryptsetup takes the recovery key, refuses another\n", path);

        /* libcryptsetup through our wrapper agrees. */
        ASSERT_OK(luks_open_header(path, &v));
        ASSERT_EQ(luks_unlock(v, key), l.recovery_slot);
        ASSERT_EQ(luks_unlock(v, wrong), -EPERM);
        v = luks_free(v);

        check_tpm2_unseal(path, &l, NULL);

        /* Stock systemd's token plugin unlocks it through swtpm, as systemd-cryptsetup would. */
        ASSERT_OK(swtpm_plugin_unlocks(&tpm, path, NULL, NULL));
        printf("%s: systemd's token plugin unlocked it through swtpm\n", path);

        json_object_put(l.dump);
        assert_not_logged(key);
        *ret_plan = TAKE_PTR(p);
}

/* Root with a TPM2 PIN and a passphrase: three keyslots. */
static void test_root_passphrase(const Secret *key) {
        _cleanup_(plan_freep) Plan *p = NULL;
        _cleanup_(freep) char *path = make_file("root-passphrase.img", VOLUME_SIZE), *pass_file = work_path("passphrase");
        _cleanup_(luks_freep) LuksVolume *v = NULL;
        _cleanup_(secret_freep) Secret *passphrase = NULL, *pin = text_secret("4711-0815"), *wrong_pin = text_secret("4711-0816");
        const PlanSpec spec = { .tpm2 = true, .tpm2_pin = true, .passphrase = true, .role = ROLE_ROOT, .luks_uuid = root2_luks_uuid };
        Tpm2Context *c = NULL;
        VolumeLayout l;
        struct timespec t0, t1;

        /* The passphrase arrives as a credential file would. */
        write_file(pass_file, "Correct Horse 7 Battery Staple!\n", 32);
        ASSERT_OK(secret_read_file(pass_file, 512, &passphrase));
        ASSERT_EQ(passphrase->size, 31);

        p = make_plan(path, &spec);
        ASSERT_OK(tpm2_context_new(tpm.tcti, &c));
        clock_gettime(CLOCK_MONOTONIC, &t0);
        ASSERT_OK(encrypt_format_volume(p, &p->partitions[0], path,
                                        &(EncryptKeys) { .recovery_key = key, .passphrase = passphrase, .tpm2_pin = pin, .tpm = c }, &v));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("encrypt_format_volume (recovery key, TPM2 with PIN, passphrase with argon2id): %.2f s\n",
               (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9);
        tpm2_context_free(c);
        v = luks_free(v);

        l = check_header(path, &spec);
        ASSERT_EQ(l.recovery_slot, 0);
        ASSERT_EQ(l.tpm2_slot, 1);
        ASSERT_EQ(l.passphrase_slot, 2);
        check_cryptenroll(path, &l);

        /* The passphrase opens the third keyslot: stock cryptsetup and libcryptsetup. */
        ASSERT_OK(cli_test_passphrase(path, passphrase, l.passphrase_slot));
        ASSERT_OK(luks_open_header(path, &v));
        clock_gettime(CLOCK_MONOTONIC, &t0);
        ASSERT_EQ(luks_unlock(v, passphrase), l.passphrase_slot);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("%s: the passphrase opens keyslot %d (argon2id unlock took %.2f s)\n", path, l.passphrase_slot,
               (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9);
        v = luks_free(v);
        ASSERT_OK(cli_test_passphrase(path, key, l.recovery_slot));
        ASSERT_TRUE(cli_test_passphrase(path, pin, -1) < 0);

        check_tpm2_unseal(path, &l, pin);
        ASSERT_TRUE(swtpm_plugin_unlocks(&tpm, path, NULL, wrong_pin) < 0);
        ASSERT_OK(swtpm_plugin_unlocks(&tpm, path, NULL, pin));
        printf("%s: systemd's token plugin unlocked it with the PIN\n", path);

        json_object_put(l.dump);
        assert_not_logged(key);
        assert_not_logged(passphrase);
        assert_not_logged(pin);
}

/* Home on a 4Kn disk, TPM turned off: the recovery key alone, 4096-byte encryption sectors. */
static void test_home_4k(const Secret *key) {
        _cleanup_(plan_freep) Plan *p = NULL;
        _cleanup_(freep) char *path = make_file("home.img", VOLUME_SIZE);
        _cleanup_(luks_freep) LuksVolume *v = NULL;
        const PlanSpec spec = { .role = ROLE_HOME, .luks_uuid = home_luks_uuid, .sector_size = 4096 };
        VolumeLayout l;

        p = make_plan(path, &spec);
        /* No TPM is planned: none is needed. */
        ASSERT_OK(encrypt_format_volume(p, &p->partitions[0], path, &(EncryptKeys) { .recovery_key = key }, &v));
        v = luks_free(v);
        l = check_header(path, &spec);
        check_cryptenroll(path, &l);
        ASSERT_OK(cli_test_passphrase(path, key, -1));
        json_object_put(l.dump);
}

static void test_escrow(const Plan *root_plan, const Secret *key) {
        _cleanup_(plan_freep) Plan *both = NULL, *plain = NULL;
        _cleanup_(freep) char *dir = work_path("escrow"), *dir2 = work_path("escrow2"), *missing = work_path("no-such-dir"),
                              *path = NULL, *again = NULL, *want = NULL, *first = NULL, *second = NULL;
        char uuid[SD_ID128_UUID_STRING_MAX], *last;
        size_t size, size2;
        struct stat st;

        ASSERT_TRUE(mkdir(dir, 0700) == 0);
        ASSERT_OK(encryption_escrow_recovery_key(root_plan, key, dir, NULL, &path));
        ASSERT_TRUE(asprintf(&want, "%s/recovery-key-%s.txt", dir, sd_id128_to_uuid_string(root_luks_uuid, uuid)) > 0);
        ASSERT_STREQ(path, want);
        ASSERT_TRUE(lstat(path, &st) == 0);
        ASSERT_TRUE(S_ISREG(st.st_mode));
        ASSERT_EQ(st.st_mode & 07777, 0600);

        /* Comment lines naming the disk and the volume, then the key alone on the last line. */
        first = read_file(path, &size);
        ASSERT_CONTAINS(first, root_plan->target);
        ASSERT_CONTAINS(first, uuid);
        ASSERT_TRUE(size > RECOVERY_KEY_LENGTH + 1);
        ASSERT_TRUE(first[size - 1] == '\n');
        {
                _cleanup_(freep) char *copy = strndup(first, size - 1);
                char *line, *next;

                ASSERT_TRUE(copy);
                last = strrchr(copy, '\n');
                ASSERT_TRUE(last);
                ASSERT_STREQ(last + 1, (const char *) key->data);
                *last = 0;
                for (line = copy; line; line = next) {
                        next = strchr(line, '\n');
                        if (next)
                                *next++ = 0;
                        if (line[0] != '#')
                                FAIL("escrow file: a line before the key is not a comment: %s", line);
                }
        }

        /* The same seeded install again on the same machine and disk (a re-run after an
         * interruption): the new key is delivered and the earlier file is kept, byte for byte,
         * under another name — never overwritten, since it may still be the only key of what is
         * on the disk. */
        {
                _cleanup_(secret_freep) Secret *key2 = NULL;
                _cleanup_(freep) char *prev = NULL, *prev_text = NULL, *now = NULL;
                size_t size3;

                ASSERT_OK(recovery_key_generate(&key2));
                ASSERT_OK(encryption_escrow_recovery_key(root_plan, key2, dir, NULL, &again));
                ASSERT_STREQ(again, want);
                now = read_file(again, NULL);
                ASSERT_CONTAINS(now, (const char *) key2->data);
                ASSERT_TRUE(asprintf(&prev, "%s/recovery-key-%s.previous-1.txt", dir, uuid) > 0);
                prev_text = read_file(prev, &size3);
                ASSERT_EQ(size3, size);
                ASSERT_TRUE(memcmp(first, prev_text, size) == 0);
                ASSERT_TRUE(lstat(prev, &st) == 0);
                ASSERT_EQ(st.st_mode & 07777, 0600);
                assert_not_logged(key2);
                again = mfree(again);
        }

        /* The same LUKS UUID for another disk: the seed was used twice; refused, file untouched. */
        {
                _cleanup_(plan_freep) Plan *other = make_plan("/dev/imprint-other-disk",
                                                              &(PlanSpec) { .role = ROLE_ROOT, .luks_uuid = root_luks_uuid });
                _cleanup_(freep) char *before = read_file(path, &size);

                error_clear();
                ASSERT_EQ(encryption_escrow_recovery_key(other, key, dir, NULL, &again), -EEXIST);
                ASSERT_TRUE(again == NULL);
                ASSERT_CONTAINS(error_message(), "another machine or disk");
                printf("escrow, seed used twice: %s\n", error_message());
                second = read_file(path, &size2);
                ASSERT_EQ(size2, size);
                ASSERT_TRUE(memcmp(before, second, size) == 0);
        }

        /* Root and home: one file, naming both volumes. */
        ASSERT_TRUE(mkdir(dir2, 0700) == 0);
        both = make_plan(root_plan->target, &(PlanSpec) { .role = ROLE_ROOT, .luks_uuid = root_luks_uuid, .with_home = true });
        ASSERT_OK(encryption_escrow_recovery_key(both, key, dir2, NULL, NULL));
        free(second);
        second = work_path("escrow2/recovery-key-%s.txt", uuid);
        free(first);
        first = read_file(second, NULL);
        ASSERT_CONTAINS(first, sd_id128_to_uuid_string(home_luks_uuid, uuid));
        ASSERT_CONTAINS(first, "home (LUKS2 ");

        /* A directory that is not there; a plan without an encrypted root. */
        error_clear();
        ASSERT_EQ(encryption_escrow_recovery_key(root_plan, key, missing, NULL, NULL), -ENOENT);
        ASSERT_CONTAINS(error_message(), "Nothing was written");
        plain = make_plan(root_plan->target, &(PlanSpec) { .role = ROLE_ROOT, .luks_uuid = root_luks_uuid });
        plain->partitions[0].encrypt = false;
        ASSERT_EQ(encryption_escrow_recovery_key(plain, key, dir2, NULL, NULL), -EINVAL);

        assert_not_logged(key);
        printf("escrow: ok\n");
}

/* Factory reset, home kept: the TPM unlocks the old header (or the old recovery key does), a new
 * recovery key and TPM2 enrollment are added and every old keyslot and token is destroyed; the
 * volume key (its digest in the header) stays, so the data does. Stock cryptsetup referees. */
static const sd_id128_t home2_luks_uuid = SD_ID128_MAKE(3b, 0c, 5e, 1a, 77, 42, 4d, 8e, 9a, 61, 0f, 2c, 4b, 1d, 6e, 04);

static char *volume_key_digest(const char *path) {
        json_object *dump = cli_dump_json(path), *d = jget(dump, "digests", "0", "digest", NULL);
        char *s;

        ASSERT_TRUE(d);
        s = strdup(json_object_get_string(d));
        json_object_put(dump);
        return s;
}

static void test_reenroll(const Secret *old_key) {
        _cleanup_(plan_freep) Plan *p = NULL;
        _cleanup_(freep) char *path = make_file("home-kept.img", VOLUME_SIZE), *digest = NULL, *after = NULL;
        _cleanup_(luks_freep) LuksVolume *v = NULL;
        _cleanup_(secret_freep) Secret *new_key = NULL, *wrong = NULL;
        const PlanSpec spec = { .tpm2 = true, .role = ROLE_HOME, .luks_uuid = home2_luks_uuid };
        Tpm2Context *c = NULL;
        VolumeLayout l;
        unsigned removed = 0;

        p = make_plan(path, &spec);
        ASSERT_OK(tpm2_context_new(tpm.tcti, &c));
        ASSERT_OK(encrypt_format_volume(p, &p->partitions[0], path, &(EncryptKeys) { .recovery_key = old_key, .tpm = c }, &v));
        v = luks_free(v);
        digest = volume_key_digest(path);

        /* Without the TPM and without the old key nothing opens it; a wrong key neither. */
        ASSERT_OK(recovery_key_generate(&wrong));
        ASSERT_EQ(encrypt_reenroll_unlock(path, NULL, NULL, &v), -EPERM);
        ASSERT_EQ(encrypt_reenroll_unlock(path, NULL, wrong, &v), -EPERM);
        /* The old recovery key does, without the TPM. */
        ASSERT_OK(encrypt_reenroll_unlock(path, NULL, old_key, &v));
        v = luks_free(v);

        /* The TPM does, with nothing from a person. */
        ASSERT_OK(encrypt_reenroll_unlock(path, c, NULL, &v));
        ASSERT_OK(recovery_key_generate(&new_key));
        ASSERT_OK(encrypt_reenroll(p, &p->partitions[0], v, &(EncryptKeys) { .recovery_key = new_key, .tpm = c }, &removed));
        ASSERT_EQ(removed, 2);
        v = luks_free(v);
        tpm2_context_free(c);

        /* One recovery and one TPM2 keyslot with their tokens, as after a fresh install. */
        l = check_header(path, &spec);
        ASSERT_TRUE(cli_test_passphrase(path, old_key, -1) < 0);
        ASSERT_OK(cli_test_passphrase(path, new_key, l.recovery_slot));
        after = volume_key_digest(path);
        ASSERT_STREQ(after, digest);
        ASSERT_OK(swtpm_plugin_unlocks(&tpm, path, NULL, NULL));
        json_object_put(l.dump);
        assert_not_logged(new_key);
        assert_not_logged(old_key);
        printf("%s: re-enrolled: the old recovery key no longer opens it, the new one and the TPM do, same volume key\n", path);
}

int main(void) {
        _cleanup_(secret_freep) Secret *key = NULL;
        _cleanup_(plan_freep) Plan *root_plan = NULL;

        if (swtpm_test_requirements() != 0)
                return 77;
        if (!find_executable("cryptsetup") || !find_executable("systemd-cryptenroll")) {
                printf("skip: cryptsetup or systemd-cryptenroll is not installed\n");
                return 77;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        log_set_sink(capture_log, NULL);
        log_set_max_level(LOG_DEBUG);
        /* The tss2 libraries log TCTI trouble to stderr; errors reach us as return codes anyway. */
        setenv("TSS2_LOG", "all+NONE", 1);

        ASSERT_TRUE(mkdtemp(workdir));
        have_workdir = true;
        atexit(cleanup);
        signal(SIGABRT, on_abort);
        swtpm_start(&tpm, workdir);
        swtpm_start_relay(&tpm);

        test_pcr_mask_parse();
        test_tpm2_use_strings();
        test_decide();
        test_secret_files();
        test_quality();

        ASSERT_OK(recovery_key_generate(&key));
        ASSERT_EQ(key->size, RECOVERY_KEY_LENGTH);
        test_refusals();
        test_root_tpm2(key, &root_plan);
        test_root_passphrase(key);
        test_home_4k(key);
        test_escrow(root_plan, key);
        test_reenroll(key);

        assert_not_logged(key);
        free(logged);
        printf("ok\n");
        return 0;
}
