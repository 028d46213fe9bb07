/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The firmware's Secure Boot state (firmware.h), read from efivarfs directories recorded from
 * Debian's OVMF variable stores (tests/unit/data/efivars, record.sh): the mode each one is in, the
 * certificates enrolled in PK, KEK and db (subjects as `openssl x509 -nameopt RFC2253` prints them,
 * SHA-256 of the DER as efitools' sig-list-to-certs + sha256sum give them), dbx's hashes, the
 * sentence the plan shows and the JSON. Then what no firmware should hand over but a broken one
 * might: signature lists whose sizes do not add up, each refused with -EBADMSG and a sentence,
 * never a crash (the CI runs this under ASan). Last, the lists inside an authenticated variable
 * (.auth) that efitools' sign-efi-sig-list makes, as systemd-boot enrolls them. */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "firmware.h"
#include "efivars.h"
#include "tests.h"

#define GLOBAL "-" EFI_GLOBAL_VARIABLE_GUID_STR
#define SECDB "-" EFI_IMAGE_SECURITY_DATABASE_GUID_STR

#define MS_OWNER "77fa9abd-0359-4d32-bd60-28f4e78f784b"  /* Microsoft's SignatureOwner */
#define PCA_2011 "Microsoft Windows Production PCA 2011"
#define UEFI_CA_2011 "Microsoft Corporation UEFI CA 2011"
#define DEBIAN_PK "Debian UEFI Secure Boot (PK/KEK key)"

static char data_dir[4096];

static const char *recorded(const char *name) {
        static char path[4096 + 64];

        snprintf(path, sizeof path, "%s/%s", data_dir, name);
        return path;
}

static void read_recorded(const char *name, FirmwareState *ret) {
        int r = firmware_read(recorded(name), ret);
        if (r < 0)
                FAIL("firmware_read(%s): %s", name, error_message() ?: strerror(-r));
        ASSERT_STREQ(ret->root, recorded(name));
}

static char *describe(const FirmwareState *s) {
        char *d = firmware_state_describe(s);
        ASSERT_TRUE(d);
        return d;
}

static const char *json_str(json_object *j, const char *path) {
        /* path: "db.certificates.0.commonName" */
        char buf[256], *save = NULL;
        json_object *o = j;

        snprintf(buf, sizeof buf, "%s", path);
        for (char *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
                if (json_object_is_type(o, json_type_array))
                        o = json_object_array_get_idx(o, (size_t) atoi(k));
                else if (!json_object_object_get_ex(o, k, &o))
                        FAIL("no %s in %s", k, json_object_to_json_string(j));
                if (!o)
                        return NULL;
        }
        return json_object_get_string(o);
}

static void test_ms_secureboot(void) {
        FirmwareState s = {};
        json_object *j;
        char *d;

        read_recorded("ms-secureboot", &s);
        ASSERT_EQ(s.mode, FIRMWARE_USER_ON);
        ASSERT_TRUE(s.secure_boot);
        ASSERT_FALSE(s.setup_mode);
        ASSERT_FALSE(s.audit_mode);
        ASSERT_FALSE(s.deployed_mode);
        ASSERT_TRUE(firmware_enforcing(&s));

        /* PK: Debian's PK/KEK certificate, owned by the global variable GUID (as OVMF enrolls it). */
        ASSERT_TRUE(s.pk.present);
        ASSERT_EQ(s.pk.size, 1005);
        ASSERT_EQ(s.pk.n_certs, 1);
        ASSERT_STREQ(s.pk.certs[0].common_name, DEBIAN_PK);
        ASSERT_STREQ(s.pk.certs[0].owner, EFI_GLOBAL_VARIABLE_GUID_STR);
        ASSERT_STREQ(s.pk.certs[0].subject, "emailAddress=debian-devel@lists.debian.org,CN=" DEBIAN_PK ",O=Debian");
        ASSERT_EQ(s.pk.certs[0].der_size, 961);

        /* KEK: Debian's and Microsoft's KEK CA 2011. */
        ASSERT_EQ(s.kek.n_certs, 2);
        ASSERT_STREQ(s.kek.certs[0].common_name, DEBIAN_PK);
        ASSERT_STREQ(s.kek.certs[1].common_name, "Microsoft Corporation KEK CA 2011");
        ASSERT_STREQ(s.kek.certs[1].owner, MS_OWNER);

        /* db: the two Microsoft CAs every PC ships with. */
        ASSERT_EQ(s.db.size, 3143);
        ASSERT_EQ(s.db.n_certs, 2);
        ASSERT_EQ(s.db.n_sha256, 0);
        ASSERT_EQ(s.db.n_other, 0);
        ASSERT_STREQ(s.db.certs[0].common_name, PCA_2011);
        ASSERT_STREQ(s.db.certs[0].subject, "CN=" PCA_2011 ",O=Microsoft Corporation,L=Redmond,ST=Washington,C=US");
        ASSERT_STREQ(s.db.certs[0].owner, MS_OWNER);
        ASSERT_STREQ(s.db.certs[1].common_name, UEFI_CA_2011);
        ASSERT_STREQ(s.db.certs[1].owner, MS_OWNER);

        /* dbx: Debian's OVMF ships one placeholder entry, the SHA-256 of nothing. */
        ASSERT_EQ(s.dbx.size, 76);
        ASSERT_EQ(s.dbx.n_certs, 0);
        ASSERT_EQ(s.dbx.n_sha256, 1);
        ASSERT_EQ(memcmp(s.dbx.sha256[0],
                         "\xe3\xb0\xc4\x42\x98\xfc\x1c\x14\x9a\xfb\xf4\xc8\x99\x6f\xb9\x24"
                         "\x27\xae\x41\xe4\x64\x9b\x93\x4c\xa4\x95\x99\x1b\x78\x52\xb8\x55", 32), 0);

        d = describe(&s);
        ASSERT_STREQ(d, "Secure Boot is on (user mode); db trusts " PCA_2011 ", " UEFI_CA_2011 "; dbx has 1 entry.");
        free(d);

        j = firmware_state_to_json(&s);
        ASSERT_TRUE(j);
        ASSERT_STREQ(json_str(j, "mode"), "user");
        ASSERT_STREQ(json_str(j, "secureBoot"), "true");
        ASSERT_STREQ(json_str(j, "setupMode"), "false");
        ASSERT_STREQ(json_str(j, "deployedMode"), "false");
        ASSERT_STREQ(json_str(j, "pk.size"), "1005");
        ASSERT_STREQ(json_str(j, "db.present"), "true");
        ASSERT_STREQ(json_str(j, "db.certificates.0.commonName"), PCA_2011);
        ASSERT_STREQ(json_str(j, "db.certificates.0.owner"), MS_OWNER);
        /* sha256sum of what `sig-list-to-certs` writes for each certificate */
        ASSERT_STREQ(json_str(j, "db.certificates.0.sha256"), "e8e95f0733a55e8bad7be0a1413ee23c51fcea64b3c8fa6a786935fddcc71961");
        ASSERT_STREQ(json_str(j, "db.certificates.1.sha256"), "48e99b991f57fc52f76149599bff0a58c47154229b9f8d603ac40d3500248507");
        ASSERT_STREQ(json_str(j, "kek.certificates.1.sha256"), "a1117f516a32cefcba3f2d1ace10a87972fd6bbe8fe0d0b996e09e65d802a503");
        ASSERT_STREQ(json_str(j, "pk.certificates.0.sha256"), "5fb05ed84c5170d542ed6a7b7487dd57b8faedb02f7e107b0409e1d22cac4169");
        ASSERT_STREQ(json_str(j, "dbx.hashes"), "1");
        ASSERT_STREQ(json_str(j, "dbx.other"), "0");
        ASSERT_EQ(json_object_array_length(json_object_object_get(json_object_object_get(j, "dbx"), "certificates")), 0);
        json_object_put(j);

        firmware_state_done(&s);
        ASSERT_EQ(s.db.n_certs, 0);
        ASSERT_TRUE(s.root == NULL);
        printf("ok: ms-secureboot is user mode with Microsoft's db\n");
}

static void test_snakeoil(void) {
        FirmwareState s = {};
        char *d;

        read_recorded("snakeoil", &s);
        ASSERT_EQ(s.mode, FIRMWARE_USER_ON);
        ASSERT_EQ(s.pk.n_certs, 1);
        ASSERT_EQ(s.kek.n_certs, 1);
        ASSERT_EQ(s.db.n_certs, 1);
        ASSERT_STREQ(s.pk.certs[0].common_name, "SnakeOil");
        ASSERT_STREQ(s.db.certs[0].common_name, "SnakeOil");
        /* no CN in its subject: the short name is O */
        ASSERT_STREQ(s.db.certs[0].subject, "O=SnakeOil,L=Fort Collins,ST=Colorado,C=US");
        ASSERT_EQ(s.db.certs[0].der_size, s.pk.certs[0].der_size);
        ASSERT_EQ(memcmp(s.db.certs[0].der, s.pk.certs[0].der, s.db.certs[0].der_size), 0);
        d = describe(&s);
        ASSERT_STREQ(d, "Secure Boot is on (user mode); db trusts SnakeOil; dbx has 1 entry.");
        free(d);
        firmware_state_done(&s);
        printf("ok: snakeoil is user mode, its db the snakeoil certificate\n");
}

static void test_setup_mode(void) {
        FirmwareState s = {};
        json_object *j;
        char *d;

        read_recorded("setup-mode", &s);
        ASSERT_EQ(s.mode, FIRMWARE_SETUP);
        ASSERT_FALSE(s.secure_boot);
        ASSERT_TRUE(s.setup_mode);
        ASSERT_FALSE(firmware_enforcing(&s));
        ASSERT_FALSE(s.pk.present);
        ASSERT_FALSE(s.kek.present);
        ASSERT_FALSE(s.db.present);
        ASSERT_FALSE(s.dbx.present);
        d = describe(&s);
        ASSERT_STREQ(d, "The firmware is in setup mode: Secure Boot is off and keys can be enrolled.");
        free(d);
        j = firmware_state_to_json(&s);
        ASSERT_STREQ(json_str(j, "mode"), "setup");
        ASSERT_STREQ(json_str(j, "pk.present"), "false");
        ASSERT_STREQ(json_str(j, "pk.size"), "0");
        json_object_put(j);
        firmware_state_done(&s);
        printf("ok: setup-mode has no keys and says they can be enrolled\n");
}

static void test_user_off(void) {
        FirmwareState s = {};
        char *d;

        read_recorded("user-off", &s);
        ASSERT_EQ(s.mode, FIRMWARE_USER_OFF);
        ASSERT_FALSE(s.secure_boot);
        ASSERT_FALSE(s.setup_mode);
        ASSERT_FALSE(firmware_enforcing(&s));
        ASSERT_EQ(s.db.n_certs, 2);
        d = describe(&s);
        ASSERT_STREQ(d, "Secure Boot is off; the machine is not protected by Secure Boot.");
        free(d);
        firmware_state_done(&s);
        printf("ok: user-off is keys enrolled, Secure Boot off\n");
}

static void test_no_secure_boot(void) {
        FirmwareState s = {};
        char *d;

        read_recorded("no-secure-boot", &s);
        ASSERT_EQ(s.mode, FIRMWARE_NO_SECURE_BOOT);
        ASSERT_FALSE(s.secure_boot);
        ASSERT_FALSE(s.db.present);
        d = describe(&s);
        ASSERT_STREQ(d, "The firmware has no Secure Boot; the machine is not protected by Secure Boot.");
        free(d);
        firmware_state_done(&s);
        printf("ok: no-secure-boot (only BootOrder) is UEFI without Secure Boot\n");
}

static void test_not_uefi(void) {
        FirmwareState s = {};
        json_object *j;
        char *d;

        ASSERT_OK(firmware_read("/nonexistent/efivars", &s));
        ASSERT_EQ(s.mode, FIRMWARE_NOT_UEFI);
        ASSERT_FALSE(s.pk.present);
        d = describe(&s);
        ASSERT_STREQ(d, "This machine did not boot through UEFI.");
        free(d);
        j = firmware_state_to_json(&s);
        ASSERT_STREQ(json_str(j, "mode"), "not-uefi");
        json_object_put(j);
        firmware_state_done(&s);

        /* NULL: $IMPRINT_EFIVARFS */
        ASSERT_OK(setenv(FIRMWARE_EFIVARFS_ENV, recorded("setup-mode"), 1));
        ASSERT_OK(firmware_read(NULL, &s));
        ASSERT_EQ(s.mode, FIRMWARE_SETUP);
        ASSERT_STREQ(s.root, recorded("setup-mode"));
        firmware_state_done(&s);
        ASSERT_OK(unsetenv(FIRMWARE_EFIVARFS_ENV));

        /* A file where the directory should be is not "no UEFI" but an error naming it. */
        ASSERT_EQ(firmware_read(recorded("README"), &s), -ENOTDIR);
        ASSERT_CONTAINS(error_message(), "README");
        printf("ok: a missing efivarfs is not UEFI; $IMPRINT_EFIVARFS is the default root\n");
}

static int rm_cb(const char *p, const struct stat *st, int type, struct FTW *f) {
        (void) st, (void) type, (void) f;
        return remove(p);
}

static void copy_dir(const char *from, const char *to) {
        char cmd[8192 + 64];

        snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", from, to);
        ASSERT_EQ(system(cmd), 0);
}

static void write_var(const char *dir, const char *name, const void *data, size_t size) {
        char path[4096];
        FILE *f;

        snprintf(path, sizeof path, "%s/%s", dir, name);
        f = fopen(path, "we");
        ASSERT_TRUE(f);
        ASSERT_EQ(fwrite("\x06\x00\x00\x00", 1, 4, f), 4);
        ASSERT_EQ(fwrite(data, 1, size, f), size);
        ASSERT_EQ(fclose(f), 0);
}

/* Modes the recorded stores do not cover, and variables a broken firmware could hold. */
static void test_modes_and_bad_variables(void) {
        char tmp[] = "/tmp/test-firmware.XXXXXX", dir[64];
        FirmwareState s = {};
        char *d;
        int r;

        ASSERT_TRUE(mkdtemp(tmp));
        snprintf(dir, sizeof dir, "%s/vars", tmp);
        copy_dir(recorded("ms-secureboot"), dir);

        write_var(dir, "DeployedMode" GLOBAL, "\x01", 1);
        ASSERT_OK(firmware_read(dir, &s));
        ASSERT_EQ(s.mode, FIRMWARE_DEPLOYED);
        ASSERT_TRUE(firmware_enforcing(&s));
        d = describe(&s);
        ASSERT_STREQ(d, "Secure Boot is on (deployed mode); db trusts " PCA_2011 ", " UEFI_CA_2011 "; dbx has 1 entry.");
        free(d);
        firmware_state_done(&s);
        write_var(dir, "DeployedMode" GLOBAL, "\x00", 1);

        /* Audit mode as the spec defines it: AuditMode 1 and SetupMode 1 (UEFI 2.10 §32.3). */
        write_var(dir, "AuditMode" GLOBAL, "\x01", 1);
        write_var(dir, "SetupMode" GLOBAL, "\x01", 1);
        write_var(dir, "SecureBoot" GLOBAL, "\x00", 1);
        ASSERT_OK(firmware_read(dir, &s));
        ASSERT_EQ(s.mode, FIRMWARE_AUDIT);
        ASSERT_FALSE(firmware_enforcing(&s));
        d = describe(&s);
        ASSERT_STREQ(d, "The firmware is in audit mode: signatures are checked and logged, but not enforced.");
        free(d);
        firmware_state_done(&s);
        write_var(dir, "AuditMode" GLOBAL, "\x00", 1);
        write_var(dir, "SetupMode" GLOBAL, "\x00", 1);

        /* SetupMode wins over SecureBoot (a firmware in setup mode verifies nothing). */
        write_var(dir, "SetupMode" GLOBAL, "\x01", 1);
        write_var(dir, "SecureBoot" GLOBAL, "\x01", 1);
        ASSERT_OK(firmware_read(dir, &s));
        ASSERT_EQ(s.mode, FIRMWARE_SETUP);
        firmware_state_done(&s);
        write_var(dir, "SetupMode" GLOBAL, "\x00", 1);

        /* A flag of two bytes, or of value 2, is malformed, naming the variable. */
        write_var(dir, "SecureBoot" GLOBAL, "\x01\x00", 2);
        r = firmware_read(dir, &s);
        ASSERT_EQ(r, -EBADMSG);
        ASSERT_CONTAINS(error_message_for(r), "SecureBoot-" EFI_GLOBAL_VARIABLE_GUID_STR);
        write_var(dir, "SecureBoot" GLOBAL, "\x02", 1);
        ASSERT_EQ(firmware_read(dir, &s), -EBADMSG);
        write_var(dir, "SecureBoot" GLOBAL, "\x01", 1);

        /* A db whose list claims more than the variable holds. */
        write_var(dir, "db" SECDB, "\xa1\x59\xc0\xa5\xe4\x94\xa7\x4a\x87\xb5\xab\x15\x5c\x2b\xf0\x72"
                                   "\xff\x00\x00\x00\x00\x00\x00\x00\x20\x00\x00\x00", 28);
        r = firmware_read(dir, &s);
        ASSERT_EQ(r, -EBADMSG);
        ASSERT_CONTAINS(error_message_for(r), "db-" EFI_IMAGE_SECURITY_DATABASE_GUID_STR);
        ASSERT_CONTAINS(error_message_for(r), dir);
        ASSERT_TRUE(s.root == NULL); /* nothing handed back */

        /* An empty db (attributes word only) is present and empty, and trusts nothing. */
        write_var(dir, "db" SECDB, "", 0);
        ASSERT_OK(firmware_read(dir, &s));
        ASSERT_TRUE(s.db.present);
        ASSERT_EQ(s.db.n_certs, 0);
        d = describe(&s);
        ASSERT_STREQ(d, "Secure Boot is on (user mode); db trusts no certificate; dbx has 1 entry.");
        free(d);
        firmware_state_done(&s);

        ASSERT_EQ(nftw(tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS), 0);
        printf("ok: deployed, audit and setup modes; malformed flags and lists name the variable\n");
}

/* ---- hand-made signature lists --------------------------------------------------------------- */

static const uint8_t sha256_guid[16] = { 0x26, 0x16, 0xc4, 0xc1, 0x4c, 0x50, 0x92, 0x40,
                                         0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28 };
static const uint8_t x509_guid[16] = { 0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a,
                                       0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72 };
/* EFI_CERT_RSA2048_GUID 3c5766e8-269c-4e34-aa14-ed776e85b3b6 */
static const uint8_t rsa2048_guid[16] = { 0xe8, 0x66, 0x57, 0x3c, 0x9c, 0x26, 0x34, 0x4e,
                                          0xaa, 0x14, 0xed, 0x77, 0x6e, 0x85, 0xb3, 0xb6 };

static void put32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) v, p[1] = (uint8_t) (v >> 8), p[2] = (uint8_t) (v >> 16), p[3] = (uint8_t) (v >> 24);
}

/* Appends a list of n entries of entry_size bytes (owner 0x11…, data filled with fill) at buf+off. */
static size_t put_list(uint8_t *buf, size_t off, const uint8_t type[16], uint32_t header_size, uint32_t entry_size,
                       size_t n, uint8_t fill) {
        uint8_t *h = buf + off;

        memcpy(h, type, 16);
        put32(h + 16, (uint32_t) (28 + header_size + n * entry_size));
        put32(h + 20, header_size);
        put32(h + 24, entry_size);
        memset(h + 28, 0, header_size);
        for (size_t i = 0; i < n; i++) {
                uint8_t *e = h + 28 + header_size + i * entry_size;
                memset(e, 0x11, 16);
                memset(e + 16, fill + (uint8_t) i, entry_size - 16);
        }
        return off + 28 + header_size + n * entry_size;
}

static void expect_bad(const void *buf, size_t size, const char *why) {
        FirmwareSigDb db = { .n_certs = 42 };
        int r = firmware_sigdb_parse(buf, size, "test list", &db);

        if (r != -EBADMSG)
                FAIL("%s: expected -EBADMSG, got %d", why, r);
        ASSERT_CONTAINS(error_message_for(r), "test list");
        ASSERT_EQ(db.n_certs, 42); /* untouched on failure */
}

static void test_sigdb_parse(void) {
        uint8_t buf[4096], bad[4096];
        FirmwareSigDb db = {};
        size_t n;

        /* Two hash lists, an RSA2048 list and an X509 list holding bytes that are no certificate. */
        n = put_list(buf, 0, sha256_guid, 0, 48, 3, 0xa0);
        n = put_list(buf, n, sha256_guid, 0, 48, 1, 0xb0);
        n = put_list(buf, n, rsa2048_guid, 0, 16 + 256, 2, 0);
        n = put_list(buf, n, x509_guid, 0, 16 + 40, 1, 0x30);
        ASSERT_OK(firmware_sigdb_parse(buf, n, "test list", &db));
        ASSERT_TRUE(db.present);
        ASSERT_EQ(db.size, n);
        ASSERT_EQ(db.n_sha256, 4);
        ASSERT_EQ(db.sha256[0][0], 0xa0);
        ASSERT_EQ(db.sha256[2][31], 0xa2);
        ASSERT_EQ(db.sha256[3][0], 0xb0);
        ASSERT_EQ(db.n_other, 2);
        ASSERT_EQ(db.n_certs, 1);
        ASSERT_TRUE(db.certs[0].subject == NULL);     /* kept, though it does not parse */
        ASSERT_TRUE(db.certs[0].common_name == NULL);
        ASSERT_EQ(db.certs[0].der_size, 40);
        ASSERT_STREQ(db.certs[0].owner, "11111111-1111-1111-1111-111111111111");
        firmware_sigdb_done(&db);

        /* Empty data: present and empty. */
        ASSERT_OK(firmware_sigdb_parse("", 0, "test list", &db));
        ASSERT_TRUE(db.present);
        ASSERT_EQ(db.n_certs + db.n_sha256 + db.n_other, 0);
        firmware_sigdb_done(&db);

        /* Every truncation of a valid sequence is refused. */
        for (size_t k = 1; k < n; k++) {
                bool boundary = k == 28 + 3 * 48 || k == 2 * 28 + 4 * 48 || k == 3 * 28 + 4 * 48 + 2 * 272;
                FirmwareSigDb t = {};
                int r = firmware_sigdb_parse(buf, k, "test list", &t);

                if (boundary) {
                        ASSERT_OK(r); /* a shorter sequence of whole lists */
                        firmware_sigdb_done(&t);
                } else if (r != -EBADMSG)
                        FAIL("truncated at %zu: %d", k, r);
        }

        n = put_list(buf, 0, sha256_guid, 0, 48, 2, 0xa0);

        memcpy(bad, buf, n);
        put32(bad + 16, 27);
        expect_bad(bad, n, "SignatureListSize below its header");
        put32(bad + 16, 28 + 48);
        expect_bad(bad, n, "SignatureListSize one entry short (the rest is a truncated list)");
        put32(bad + 16, 28 + 48 + 1);
        expect_bad(bad, n, "SignatureListSize not whole entries");
        put32(bad + 16, (uint32_t) n + 1);
        expect_bad(bad, n, "SignatureListSize beyond the data");
        put32(bad + 16, UINT32_MAX);
        expect_bad(bad, n, "SignatureListSize 4 GiB");

        memcpy(bad, buf, n);
        put32(bad + 24, 0);
        expect_bad(bad, n, "SignatureSize 0");
        put32(bad + 24, 16);
        expect_bad(bad, n, "SignatureSize only the owner");
        put32(bad + 24, 32);
        expect_bad(bad, n, "SignatureSize 32 for SHA-256 entries (2 × 48 = 3 × 32)");
        put32(bad + 24, UINT32_MAX);
        expect_bad(bad, n, "SignatureSize 4 GiB");

        memcpy(bad, buf, n);
        put32(bad + 20, 100);
        expect_bad(bad, n, "SignatureHeaderSize beyond the list");
        put32(bad + 20, UINT32_MAX);
        expect_bad(bad, n, "SignatureHeaderSize 4 GiB (28 + it overflows 32 bits)");
        put32(bad + 20, 48);
        expect_bad(bad, n, "SignatureHeaderSize that a SHA-256 list does not have");
        put32(bad + 20, UINT32_MAX - 27);
        expect_bad(bad, n, "SignatureHeaderSize that wraps to 0 with the header");

        /* An unknown type may have a header: it is skipped, its entries counted. */
        n = put_list(buf, 0, rsa2048_guid, 12, 20, 3, 0);
        ASSERT_OK(firmware_sigdb_parse(buf, n, "test list", &db));
        ASSERT_EQ(db.n_other, 3);
        firmware_sigdb_done(&db);
        printf("ok: hand-made lists parse; truncated and lying sizes are -EBADMSG\n");
}

/* Every field of the real Microsoft db set to hostile values, and every truncation of it: refused
 * or parsed, never a crash or a leak (ASan). */
static void test_sigdb_hostile(void) {
        _cleanup_(freep) uint8_t *db_var = NULL;
        static const uint32_t values[] = { 0, 1, 15, 16, 17, 27, 28, 29, 48, 1000, 1543, 1544, 3143,
                                           0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff };
        static const size_t fields[] = { 16, 20, 24, 1543 + 16, 1543 + 20, 1543 + 24 };
        uint8_t *data;
        size_t size;

        ASSERT_OK(efi_get_variable(&(EfiVars) { .root = recorded("ms-secureboot") }, "db" SECDB, (void **) &db_var, &size));
        ASSERT_EQ(size, 3143);
        data = malloc(size);
        ASSERT_TRUE(data);

        for (size_t f = 0; f < ELEMENTSOF(fields); f++)
                for (size_t v = 0; v < ELEMENTSOF(values); v++) {
                        FirmwareSigDb db = {};
                        int r;

                        bool unchanged;

                        memcpy(data, db_var, size);
                        put32(data + fields[f], values[v]);
                        unchanged = memcmp(data, db_var, size) == 0;
                        r = firmware_sigdb_parse(data, size, "db", &db);
                        ASSERT_TRUE(r == 0 || r == -EBADMSG);
                        if (unchanged) {
                                /* the value it had (1543, or header size 0): the same two certificates */
                                ASSERT_OK(r);
                                ASSERT_EQ(db.n_certs, 2);
                                ASSERT_STREQ(db.certs[1].common_name, UEFI_CA_2011);
                        }
                        firmware_sigdb_done(&db);
                }

        for (size_t k = 0; k < size; k++) {
                FirmwareSigDb db = {};
                int r = firmware_sigdb_parse(db_var, k, "db", &db);
                ASSERT_TRUE(r == 0 ? k == 0 || k == 1543 : r == -EBADMSG);
                firmware_sigdb_done(&db);
        }
        free(data);
        printf("ok: hostile fields and every truncation of Microsoft's db: parsed or -EBADMSG\n");
}

static void test_describe_many(void) {
        FirmwareState s = { .mode = FIRMWARE_USER_ON };
        FirmwareCert certs[5] = {
                { .common_name = (char *) "A" }, { .subject = (char *) "O=B only" }, { .common_name = (char *) "C" },
                { .common_name = (char *) "D" }, { .common_name = (char *) "E" },
        };
        char *d;

        s.db = (FirmwareSigDb) { .present = true, .certs = certs, .n_certs = 5 };
        s.dbx = (FirmwareSigDb) { .present = true, .n_sha256 = 369, .n_certs = 1, .n_other = 1 };
        d = describe(&s);
        ASSERT_STREQ(d, "Secure Boot is on (user mode); db trusts A, O=B only, C and 2 more; dbx has 371 entries.");
        free(d);

        ASSERT_STREQ(firmware_mode_to_string(FIRMWARE_USER_ON), "user");
        ASSERT_STREQ(firmware_mode_to_string(FIRMWARE_USER_OFF), "user-off");
        ASSERT_EQ(firmware_mode_from_string("deployed"), FIRMWARE_DEPLOYED);
        ASSERT_EQ(firmware_mode_from_string("not-uefi"), FIRMWARE_NOT_UEFI);
        ASSERT_EQ(firmware_mode_from_string("on"), -EINVAL);
        for (int m = 0; m < _FIRMWARE_MODE_MAX; m++)
                ASSERT_EQ(firmware_mode_from_string(firmware_mode_to_string(m)), m);
        printf("ok: describe() names three certificates and counts the rest\n");
}

/* ---- .auth files from efitools ---------------------------------------------------------------- */

static void run(const char *cmd) {
        int r = system(cmd);
        if (r != 0)
                FAIL("%s: exit status %d", cmd, r);
}

static void test_auth_payload(void) {
        char tmp[] = "/tmp/test-firmware-auth.XXXXXX", cmd[1024], path[256];
        _cleanup_(freep) char *auth = NULL, *esl = NULL;
        size_t auth_size, esl_size, off;
        FirmwareSigDb db = {};
        uint8_t *bad;

        if (access("/usr/bin/sign-efi-sig-list", X_OK) < 0 || access("/usr/bin/cert-to-efi-sig-list", X_OK) < 0)
                FAIL("efitools (cert-to-efi-sig-list, sign-efi-sig-list) is missing: scripts/deps installs it");
        ASSERT_TRUE(mkdtemp(tmp));
        snprintf(cmd, sizeof cmd,
                 "cd %s && openssl req -new -x509 -newkey rsa:2048 -nodes -days 30 -subj '/CN=Imprint Test db/O=imprint' "
                 "-keyout db.key -out db.crt 2>/dev/null && "
                 "cert-to-efi-sig-list -g 1b2c3d4e-0000-4000-8000-0123456789ab db.crt db.esl >/dev/null && "
                 "sign-efi-sig-list -k db.key -c db.crt db db.esl db.auth >/dev/null", tmp);
        run(cmd);
        snprintf(path, sizeof path, "%s/db.auth", tmp);
        ASSERT_OK(read_full_file(path, &auth, &auth_size));
        snprintf(path, sizeof path, "%s/db.esl", tmp);
        ASSERT_OK(read_full_file(path, &esl, &esl_size));

        ASSERT_OK(firmware_auth_payload(auth, auth_size, "db.auth", &off));
        ASSERT_EQ(auth_size - off, esl_size);
        ASSERT_EQ(memcmp(auth + off, esl, esl_size), 0); /* the payload is cert-to-efi-sig-list's list */
        ASSERT_OK(firmware_sigdb_parse(auth + off, auth_size - off, "db.auth", &db));
        ASSERT_EQ(db.n_certs, 1);
        ASSERT_STREQ(db.certs[0].common_name, "Imprint Test db");
        ASSERT_STREQ(db.certs[0].subject, "O=imprint,CN=Imprint Test db");
        ASSERT_STREQ(db.certs[0].owner, "1b2c3d4e-0000-4000-8000-0123456789ab");
        firmware_sigdb_done(&db);

        /* Malformed: too short, wrong certificate type, wrong CertType GUID, dwLength beyond the file
         * or below its own header. */
        bad = malloc(auth_size);
        ASSERT_TRUE(bad);
        for (size_t k = 0; k < 40; k++)
                ASSERT_EQ(firmware_auth_payload(auth, k, "db.auth", &off), -EBADMSG);
        ASSERT_EQ(firmware_auth_payload(auth, off - 1, "db.auth", &off), -EBADMSG);
        memcpy(bad, auth, auth_size);
        bad[22] = 0x02;  /* wCertificateType WIN_CERT_TYPE_PKCS_SIGNED_DATA */
        ASSERT_EQ(firmware_auth_payload(bad, auth_size, "db.auth", &off), -EBADMSG);
        ASSERT_CONTAINS(error_message(), "db.auth");
        memcpy(bad, auth, auth_size);
        bad[24] ^= 0xff; /* CertType */
        ASSERT_EQ(firmware_auth_payload(bad, auth_size, "db.auth", &off), -EBADMSG);
        memcpy(bad, auth, auth_size);
        put32(bad + 16, (uint32_t) auth_size);
        ASSERT_EQ(firmware_auth_payload(bad, auth_size, "db.auth", &off), -EBADMSG);
        put32(bad + 16, UINT32_MAX);
        ASSERT_EQ(firmware_auth_payload(bad, auth_size, "db.auth", &off), -EBADMSG);
        put32(bad + 16, 23);
        ASSERT_EQ(firmware_auth_payload(bad, auth_size, "db.auth", &off), -EBADMSG);
        free(bad);

        ASSERT_EQ(nftw(tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS), 0);
        printf("ok: an efitools db.auth holds cert-to-efi-sig-list's list after its header\n");
}

int main(void) {
        const char *src = getenv("SOURCE_ROOT");

        snprintf(data_dir, sizeof data_dir, "%s/tests/unit/data/efivars", src ?: ".");
        test_ms_secureboot();
        test_snakeoil();
        test_setup_mode();
        test_user_off();
        test_no_secure_boot();
        test_not_uefi();
        test_modes_and_bad_variables();
        test_sigdb_parse();
        test_sigdb_hostile();
        test_describe_many();
        test_auth_payload();
        return 0;
}
