/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The recovery key's escrow to an OEM's key (escrow.h), refereed by stock tools only:
 *   - escrow_encrypt() to a self-signed RSA certificate, an EC (P-256) certificate, a bare RSA
 *     public key and a bare EC public key: `openssl cms -decrypt -inform PEM -inkey KEY` (with
 *     and without -recip) gives back exactly the plaintext; another key does not;
 *   - escrow_check_certificate(): a missing file, a private key, a file that is no PEM and an
 *     Ed25519 certificate are refused with a sentence naming the file;
 *   - config_set_escrow(): the string form is refused with a sentence that shows the object form;
 *     an object without a certificate and without "plaintext": true, with both, with a relative
 *     directory, with an unknown key or an unreadable certificate is refused;
 *   - the key opens the disk: a LUKS2 volume formatted by encrypt_format_volume() with a recovery
 *     key, the key escrowed by encryption_escrow_recovery_key() to a certificate; the .p7m file
 *     (0600, the machine and disk in plain comment lines, no key in clear) decrypted by openssl
 *     and piped into `cryptsetup open --test-passphrase` opens it; another recovery key does not;
 *     a second escrow of the same plan keeps the first file as .previous-1.p7m. */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config.h"
#include "encrypt.h"
#include "error.h"
#include "escrow.h"
#include "fileio.h"
#include "luks.h"
#include "plan.h"
#include "recovery.h"
#include "run.h"
#include "secret.h"
#include "tests.h"

#define MiB (UINT64_C(1024) * 1024)

/* Not tmpfs: the escrow refuses a directory in memory (encrypt.h). */
static char workdir[] = "/var/tmp/test-escrow.XXXXXX";
static bool have_workdir;

static const sd_id128_t root_luks_uuid = SD_ID128_MAKE(5e, 5c, 20, 01, 77, 42, 4d, 8e, 9a, 61, 0f, 2c, 4b, 1d, 6e, 01);

static void cleanup(void) {
        if (have_workdir) {
                char *argv[] = { (char *) "rm", (char *) "-rf", workdir, NULL };
                (void) run_command(argv, NULL);
                have_workdir = false;
        }
}

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

/* sh -c script in the work directory; its exit status. Secrets only ever pass through files the
 * script reads or pipes between its commands, never through argv. */
static int sh(const char *fmt, ...) _printf_(1, 2);
static int sh(const char *fmt, ...) {
        char script[4096];
        char *argv[] = { (char *) "sh", (char *) "-c", script, NULL };
        int status = -1;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(script, sizeof(script), fmt, ap);
        va_end(ap);
        ASSERT_OK(run_command(argv, &(RunOptions) { .ret_status = &status, .quiet_stderr = !getenv("TEST_VERBOSE") }));
        return status;
}

static void write_text(const char *path, const char *text) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(write(fd, text, strlen(text)) == (ssize_t) strlen(text));
        close(fd);
}

/* The OEM's keys, made by stock openssl as an OEM would. */
static void make_keys(void) {
        ASSERT_EQ(sh("cd %s && "
                     "openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.pem -subj /CN=oem-rsa -days 2 && "
                     "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ec.key -out ec.pem "
                     "-subj /CN=oem-ec -days 2 && "
                     "openssl pkey -in rsa.key -pubout -out rsa.pub && "
                     "openssl pkey -in ec.key -pubout -out ec.pub && "
                     "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other.key && "
                     "openssl req -x509 -newkey ed25519 -nodes -keyout ed.key -out ed.pem -subj /CN=oem-ed -days 2",
                     workdir),
                  0);
}

/* ---- encrypt, decrypt with openssl ------------------------------------------------------------ */

static void check_roundtrip(const char *recipient, const char *key, bool recip) {
        _cleanup_(secret_freep) Secret *plain = secret_new_from("fkrh-test-secret\n", 17);
        _cleanup_(freep) char *pem = NULL, *cert = work_path("%s", recipient), *out = work_path("%s.p7m", recipient),
                              *dec = work_path("%s.dec", recipient), *got = NULL;
        size_t size;

        ASSERT_TRUE(plain);
        if (escrow_encrypt(cert, plain, &pem) < 0)
                FAIL("escrow_encrypt(%s): %s", cert, error_message());
        ASSERT_TRUE(strncmp(pem, "-----BEGIN CMS-----\n", 20) == 0);
        ASSERT_FALSE(strstr(pem, "fkrh-test-secret"));
        write_text(out, pem);

        ASSERT_EQ(sh("cd %s && openssl cms -decrypt -in %s.p7m -inform PEM -inkey %s -out %s.dec", workdir, recipient, key, recipient), 0);
        ASSERT_OK(read_full_file(dec, &got, &size));
        ASSERT_EQ(size, plain->size);
        ASSERT_TRUE(memcmp(got, plain->data, size) == 0);
        if (recip)
                ASSERT_EQ(sh("cd %s && openssl cms -decrypt -in %s.p7m -inform PEM -recip %s -inkey %s | cmp -s - %s.dec", workdir,
                             recipient, recipient, key, recipient),
                          0);
        /* What it is, as openssl sees it: EnvelopedData with AES-256-CBC. */
        ASSERT_EQ(sh("cd %s && openssl cms -cmsout -print -in %s.p7m -inform PEM | grep -q 'aes-256-cbc'", workdir, recipient), 0);
        /* Another key does not open it. */
        ASSERT_TRUE(sh("cd %s && openssl cms -decrypt -in %s.p7m -inform PEM -inkey other.key -out %s.wrong", workdir, recipient,
                       recipient) != 0);
        printf("escrow to %s: openssl cms -decrypt recovers it; another key does not\n", recipient);
}

static void test_roundtrips(void) {
        check_roundtrip("rsa.pem", "rsa.key", true);
        check_roundtrip("ec.pem", "ec.key", true);
        check_roundtrip("rsa.pub", "rsa.key", false);
        check_roundtrip("ec.pub", "ec.key", false);
        /* A bare key is named by its subject key identifier (SHA-1 of the key). */
        ASSERT_EQ(sh("cd %s && openssl cms -cmsout -print -in rsa.pub.p7m -inform PEM | grep -q subjectKeyIdentifier", workdir), 0);
}

/* ---- refusals --------------------------------------------------------------------------------- */

static void check_refused(const char *file, const char *why) {
        _cleanup_(freep) char *path = work_path("%s", file);

        error_clear();
        ASSERT_TRUE(escrow_check_certificate(path, "test") < 0);
        ASSERT_CONTAINS(error_message(), path);
        ASSERT_CONTAINS(error_message(), why);
        printf("refused: %s\n", error_message());
}

static void test_check_certificate(void) {
        _cleanup_(freep) char *garbage = work_path("garbage.pem"), *good = work_path("rsa.pem");

        write_text(garbage, "this is not PEM\n");
        ASSERT_EQ(escrow_check_certificate(garbage, "test"), -EINVAL);
        check_refused("garbage.pem", "neither a PEM certificate");
        check_refused("rsa.key", "is a private key");
        check_refused("no-such.pem", "it does not exist");
        check_refused("../../../dev/zero", "not a regular file");
        check_refused("ed.pem", "RSA or EC");
        ASSERT_OK(escrow_check_certificate(good, "test"));
}

static int config_try(InstallConfig *c, const char *json) {
        json_object *j = json_tokener_parse(json);
        int r;

        ASSERT_TRUE(j);
        error_clear();
        r = install_config_merge_json(c, j, "test.json");
        json_object_put(j);
        return r;
}

static void test_config(void) {
        InstallConfig c;
        char json[1024];

        install_config_init(&c);
        ASSERT_EQ(config_try(&c, "{\"recoveryKeyEscrow\": \"/mnt/escrow\"}"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "{\"directory\": \"/mnt/escrow\", \"certificate\": ");
        ASSERT_CONTAINS(error_message(), "{\"directory\": \"/mnt/escrow\", \"plaintext\": true}");
        printf("string form: %s\n", error_message());
        ASSERT_EQ(config_try(&c, "{\"recoveryKeyEscrow\": {\"directory\": \"/mnt/escrow\"}}"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "\"plaintext\": true");
        ASSERT_EQ(config_try(&c, "{\"recoveryKeyEscrow\": {\"directory\": \"/mnt/escrow\", \"plaintext\": false}}"), -EINVAL);
        ASSERT_EQ(config_try(&c, "{\"recoveryKeyEscrow\": {\"directory\": \"escrow\", \"plaintext\": true}}"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "absolute");
        ASSERT_EQ(config_try(&c, "{\"recoveryKeyEscrow\": {\"plaintext\": true}}"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "\"directory\"");
        ASSERT_EQ(config_try(&c, "{\"recoveryKeyEscrow\": {\"directory\": \"/mnt/escrow\", \"plaintext\": true, \"mode\": 1}}"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "unknown key \"recoveryKeyEscrow.mode\"");
        snprintf(json, sizeof(json), "{\"recoveryKeyEscrow\": {\"directory\": \"/mnt/escrow\", \"certificate\": \"%s/rsa.pem\", \"plaintext\": true}}",
                 workdir);
        ASSERT_EQ(config_try(&c, json), -EINVAL);
        snprintf(json, sizeof(json), "{\"recoveryKeyEscrow\": {\"directory\": \"/mnt/escrow\", \"certificate\": \"%s/rsa.key\"}}", workdir);
        ASSERT_EQ(config_try(&c, json), -EINVAL);
        ASSERT_CONTAINS(error_message(), "recoveryKeyEscrow.certificate");
        ASSERT_CONTAINS(error_message(), "rsa.key");
        /* Nothing was taken from the refused ones. */
        ASSERT_TRUE(!c.escrow_dir && !c.escrow_certificate && !c.escrow_plaintext);

        snprintf(json, sizeof(json), "{\"recoveryKeyEscrow\": {\"directory\": \"/mnt/escrow\", \"certificate\": \"%s/ec.pem\"}}", workdir);
        ASSERT_OK(config_try(&c, json));
        ASSERT_STREQ(c.escrow_dir, "/mnt/escrow");
        ASSERT_CONTAINS(c.escrow_certificate, "/ec.pem");
        ASSERT_FALSE(c.escrow_plaintext);
        /* A later source replaces the whole escrow, certificate included. */
        ASSERT_OK(config_try(&c, "{\"reset\": {\"recoveryKeyEscrow\": {\"directory\": \"/run/escrow\", \"plaintext\": true}}}"));
        ASSERT_STREQ(c.escrow_dir, "/run/escrow");
        ASSERT_TRUE(!c.escrow_certificate && c.escrow_plaintext);
        ASSERT_EQ(config_try(&c, "{\"reset\": {\"recoveryKeyEscrow\": \"/run/escrow\"}}"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "\"reset.recoveryKeyEscrow\"");
        install_config_done(&c);
        printf("configuration: ok\n");
}

/* ---- the key opens the disk ------------------------------------------------------------------- */

static Plan *make_plan(const char *target) {
        Plan *p = calloc(1, sizeof(Plan));

        ASSERT_TRUE(p);
        p->mode = PLAN_ERASE;
        p->target_kind = DISK_BLOCK;
        p->target = strdup(target);
        p->target_name = strdup("test-disk");
        p->target_description = strdup("a file standing in for a disk");
        ASSERT_TRUE(p->target && p->target_name && p->target_description);
        p->sector_size = 512;
        p->encryption.enabled = true;
        p->encryption.recovery_key = true;
        p->partitions = calloc(1, sizeof(PlanPartition));
        ASSERT_TRUE(p->partitions);
        p->partitions[0] = (PlanPartition) {
                .role = ROLE_ROOT,
                .action = ACTION_CREATE,
                .partno = 2,
                .start = 1025 * MiB,
                .size = 32 * MiB,
                .copy_from = -1,
                .encrypt = true,
                .luks_uuid = root_luks_uuid,
        };
        p->n_partitions = 1;
        return p;
}

static void test_opens_disk(void) {
        _cleanup_(plan_freep) Plan *p = NULL;
        _cleanup_(luks_freep) LuksVolume *v = NULL;
        _cleanup_(secret_freep) Secret *key = NULL, *other = NULL;
        _cleanup_(freep) char *vol = work_path("root.img"), *dir = work_path("escrow"), *cert = work_path("rsa.pem"), *path = NULL,
                              *again = NULL, *text = NULL, *prev = NULL, *wrongkey = work_path("wrong-recovery-key");
        char uuid[SD_ID128_UUID_STRING_MAX];
        struct stat st;
        int fd;

        fd = open(vol, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(ftruncate(fd, 32 * MiB) == 0);
        close(fd);
        ASSERT_TRUE(mkdir(dir, 0700) == 0);

        p = make_plan(vol);
        ASSERT_OK(recovery_key_generate(&key));
        ASSERT_OK(encrypt_format_volume(p, &p->partitions[0], vol, &(EncryptKeys) { .recovery_key = key }, &v));
        v = luks_free(v);

        ASSERT_OK(encryption_escrow_recovery_key(p, key, dir, cert, &path));
        sd_id128_to_uuid_string(root_luks_uuid, uuid);
        ASSERT_CONTAINS(path, "/recovery-key-");
        ASSERT_CONTAINS(path, uuid);
        ASSERT_TRUE(strlen(path) > 4 && streq(path + strlen(path) - 4, ".p7m"));
        ASSERT_TRUE(stat(path, &st) == 0);
        ASSERT_EQ(st.st_mode & 07777, 0600);
        ASSERT_OK(read_full_file(path, &text, NULL));
        ASSERT_FALSE(memmem(text, strlen(text), key->data, key->size));
        ASSERT_CONTAINS(text, "# Disk: ");
        ASSERT_CONTAINS(text, "# Volumes: root (LUKS2 ");
        ASSERT_CONTAINS(text, "openssl cms -decrypt -in recovery-key-");
        ASSERT_CONTAINS(text, "\n-----BEGIN CMS-----\n");

        /* The OEM's stock command, piped straight into cryptsetup (which reads the passphrase
         * from stdin up to the newline). */
        ASSERT_EQ(sh("openssl cms -decrypt -in '%s' -inform PEM -inkey %s/rsa.key | cryptsetup open --test-passphrase '%s'", path,
                     workdir, vol),
                  0);
        /* What openssl gives is the key and a newline, nothing else. */
        ASSERT_EQ(sh("test \"$(openssl cms -decrypt -in '%s' -inform PEM -inkey %s/rsa.key | wc -c)\" = %zu", path, workdir,
                     key->size + 1),
                  0);
        /* Another OEM key recovers nothing; another recovery key does not open the disk. */
        ASSERT_TRUE(sh("openssl cms -decrypt -in '%s' -inform PEM -inkey %s/other.key | cryptsetup open --test-passphrase '%s'", path,
                       workdir, vol) != 0);
        ASSERT_OK(recovery_key_generate(&other));
        fd = open(wrongkey, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(write(fd, other->data, other->size) == (ssize_t) other->size);
        close(fd);
        ASSERT_TRUE(sh("cryptsetup open --test-passphrase '%s' < '%s'", vol, wrongkey) != 0);
        printf("escrowed to a certificate: openssl cms -decrypt | cryptsetup open --test-passphrase opens the volume\n");

        /* Again on the same machine and disk: the first file is kept, never overwritten. */
        ASSERT_OK(encryption_escrow_recovery_key(p, key, dir, cert, &again));
        ASSERT_STREQ(again, path);
        prev = work_path("escrow/recovery-key-%s.previous-1.p7m", uuid);
        ASSERT_TRUE(stat(prev, &st) == 0);
        ASSERT_EQ(sh("openssl cms -decrypt -in '%s' -inform PEM -inkey %s/rsa.key | cryptsetup open --test-passphrase '%s'", prev,
                     workdir, vol),
                  0);

        /* A certificate that went away after the configuration was read: nothing is written. */
        again = mfree(again);
        error_clear();
        ASSERT_TRUE(encryption_escrow_recovery_key(p, key, dir, "/nonexistent/oem.pem", &again) < 0);
        ASSERT_CONTAINS(error_message(), "/nonexistent/oem.pem");
        ASSERT_CONTAINS(error_message(), "Nothing was written");
        ASSERT_EQ(sh("ls %s | wc -l | grep -qx 2", dir), 0);
        printf("escrow file kept on a second run; a missing certificate writes nothing\n");
}

int main(void) {
        ASSERT_TRUE(mkdtemp(workdir));
        have_workdir = true;
        atexit(cleanup);

        make_keys();
        test_roundtrips();
        test_check_certificate();
        test_config();
        test_opens_disk();
        printf("ok\n");
        return 0;
}
