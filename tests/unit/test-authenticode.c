/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Authenticode (src/engine/authenticode.c): Debian's systemd-boot signed at test time with sbsign
 * by keys openssl makes (tests/unit/make-signed-efi.sh), checked against hand-built db/dbx. The
 * referees: the digest inside the signature (sbattach --detach, openssl asn1parse) for the image
 * hash, and `sbverify --cert` for trust wherever its rules are firmware's (sbverify does not
 * accept the signer's own certificate as the trusted one; firmware does, through OpenSSL's
 * X509_V_FLAG_PARTIAL_CHAIN as edk2's Pkcs7Verify() sets it, so that case is asserted against
 * firmware's rule alone). */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authenticode.h"
#include "error.h"
#include "fileio.h"
#include "tests.h"

static char dir[] = "/tmp/test-authenticode.XXXXXX";

static char *path_of(const char *name) {
        char *p;

        ASSERT_TRUE(asprintf(&p, "%s/%s", dir, name) >= 0);
        return p;
}

typedef struct File {
        char *data;
        size_t size;
        char *name;
} File;

static File load(const char *name) {
        _cleanup_(freep) char *p = path_of(name);
        File f = { .name = strdup(name) };

        ASSERT_OK(read_full_file(p, &f.data, &f.size));
        return f;
}

static void file_done(File *f) {
        free(f->data);
        free(f->name);
        *f = (File) {};
}

/* The test's own FirmwareSigDb, filled the way firmware_sigdb_parse() fills one. */
static void db_add_cert(FirmwareSigDb *db, const char *name) {
        _cleanup_(freep) char *der_name = NULL;
        File f;

        ASSERT_TRUE(asprintf(&der_name, "%s.der", name) >= 0);
        f = load(der_name);
        db->certs = realloc(db->certs, (db->n_certs + 1) * sizeof(FirmwareCert));
        ASSERT_TRUE(db->certs);
        db->certs[db->n_certs++] = (FirmwareCert) {
                .owner = "00000000-0000-0000-0000-000000000000",
                .der = f.data,
                .der_size = f.size,
        };
        db->present = true;
        free(f.name);
}

static void db_add_hash(FirmwareSigDb *db, const uint8_t h[32]) {
        db->sha256 = realloc(db->sha256, (db->n_sha256 + 1) * sizeof(*db->sha256));
        ASSERT_TRUE(db->sha256);
        memcpy(db->sha256[db->n_sha256++], h, 32);
        db->present = true;
}

static void db_free(FirmwareSigDb *db) {
        for (size_t i = 0; i < db->n_certs; i++) {
                free(db->certs[i].subject);
                free(db->certs[i].common_name);
                free(db->certs[i].der);
        }
        free(db->certs);
        free(db->sha256);
        *db = (FirmwareSigDb) {};
}

static bool run(const char *fmt, ...) _printf_(1, 2);
static bool run(const char *fmt, ...) {
        _cleanup_(freep) char *cmd = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&cmd, fmt, ap);
        va_end(ap);
        ASSERT_TRUE(r >= 0);
        r = system(cmd);
        ASSERT_TRUE(r != -1);
        return r == 0;
}

/* sbverify's verdict: does the signature of efi verify with cert as the trusted certificate? */
static bool sbverify(const char *cert, const char *efi) {
        return run("cd '%s' && sbverify --cert %s.crt %s >/dev/null 2>&1", dir, cert, efi);
}

static void hex(const uint8_t h[32], char out[65]) {
        for (size_t i = 0; i < 32; i++)
                sprintf(out + 2 * i, "%02X", h[i]);
}

/* The digest of SpcIndirectDataContent as openssl reads it from the detached signature: the first
 * OCTET STRING after the SPC_INDIRECT_DATA_OBJID. */
static void embedded_digest(const char *p7, char out[65]) {
        _cleanup_(freep) char *cmd = NULL;
        char line[512];
        bool after_spc = false, found = false;
        FILE *f;

        ASSERT_TRUE(asprintf(&cmd, "openssl asn1parse -inform DER -in '%s/%s'", dir, p7) >= 0);
        f = popen(cmd, "r");
        ASSERT_TRUE(f);
        while (fgets(line, sizeof(line), f)) {
                char *d;

                if (strstr(line, ":1.3.6.1.4.1.311.2.1.4"))
                        after_spc = true;
                if (after_spc && !found && strstr(line, "OCTET STRING") && (d = strstr(line, "[HEX DUMP]:"))) {
                        d += strlen("[HEX DUMP]:");
                        ASSERT_TRUE(strspn(d, "0123456789ABCDEF") == 64);
                        memcpy(out, d, 64);
                        out[64] = 0;
                        found = true;
                }
        }
        ASSERT_EQ(pclose(f), 0);
        ASSERT_TRUE(found);
}

/* authenticode_trusted() on a fixture, with the verdict and a piece of the reason expected. */
static void check(const char *efi, const FirmwareSigDb *db, const FirmwareSigDb *dbx, int expect, const char *reason_part) {
        _cleanup_(file_done) File f = load(efi);
        _cleanup_(freep) char *reason = NULL;
        int r;

        r = authenticode_trusted(f.data, f.size, efi, db, dbx, &reason);
        if (r < 0)
                FAIL("authenticode_trusted(%s) failed: %s", efi, error_message() ?: strerror(-r));
        printf("  %s: %s\n", efi, reason ?: "(no reason)");
        if (r != expect)
                FAIL("%s: expected %s, got %s: %s", efi, expect ? "trusted" : "not trusted", r ? "trusted" : "not trusted",
                     reason ?: "(null)");
        ASSERT_CONTAINS(reason, efi);
        if (reason_part)
                ASSERT_CONTAINS(reason, reason_part);
}

static void test_hash(void) {
        _cleanup_(file_done) File unsigned_efi = load("unsigned.efi"), leaf = load("leaf.efi"), changed = load("changed.efi");
        _cleanup_(pe_signature_done) PeSignature s = {}, u = {}, c = {};
        uint8_t h[32], hs[32];
        char want[65], got[65];

        /* The hash of the unsigned image is the digest sbsign put into the signature. */
        ASSERT_OK(authenticode_sha256(unsigned_efi.data, unsigned_efi.size, "unsigned.efi", h));
        embedded_digest("leaf.efi.p7", want);
        hex(h, got);
        printf("  unsigned.efi %s, signature says %s\n", got, want);
        ASSERT_STREQ(got, want);

        /* Signing does not change the hash: CheckSum, the directory entry and the table are left out. */
        ASSERT_OK(authenticode_sha256(leaf.data, leaf.size, "leaf.efi", hs));
        ASSERT_TRUE(memcmp(h, hs, 32) == 0);

        ASSERT_OK(authenticode_read(unsigned_efi.data, unsigned_efi.size, "unsigned.efi", &u));
        ASSERT_FALSE(u.present);
        ASSERT_EQ(u.n_signatures, 0);
        ASSERT_TRUE(!u.signer_subject && !u.signer_common_name);
        ASSERT_TRUE(memcmp(u.image_sha256, h, 32) == 0);

        ASSERT_OK(authenticode_read(leaf.data, leaf.size, "leaf.efi", &s));
        ASSERT_TRUE(s.present);
        ASSERT_EQ(s.n_signatures, 1);
        ASSERT_TRUE(s.digest_matches);
        ASSERT_STREQ(s.signer_common_name, "Imprint Test Signer");
        ASSERT_STREQ(s.signer_subject, "O=imprint tests,CN=Imprint Test Signer");
        ASSERT_STREQ(s.signer_issuer, "O=imprint tests,CN=Imprint Test CA");
        ASSERT_TRUE(memcmp(s.image_sha256, h, 32) == 0);

        /* One byte of .text changed after signing: the hash moves, the signature's digest does not. */
        ASSERT_OK(authenticode_read(changed.data, changed.size, "changed.efi", &c));
        ASSERT_TRUE(c.present);
        ASSERT_FALSE(c.digest_matches);
        ASSERT_TRUE(memcmp(c.image_sha256, h, 32) != 0);
        ASSERT_STREQ(c.signer_common_name, "Imprint Test Signer");
}

static void test_trust(void) {
        _cleanup_(db_free) FirmwareSigDb db_leaf = {}, db_ca = {}, db_other = {}, db_empty = { .present = true },
                                         db_self = {}, db_hash = {}, dbx_hash = {}, dbx_leaf = {}, dbx_ca = {};
        _cleanup_(file_done) File unsigned_efi = load("unsigned.efi");
        uint8_t h[32];

        ASSERT_OK(authenticode_sha256(unsigned_efi.data, unsigned_efi.size, "unsigned.efi", h));
        db_add_cert(&db_leaf, "leaf");
        db_add_cert(&db_ca, "ca");
        db_add_cert(&db_other, "other");
        db_add_cert(&db_self, "self");
        db_add_hash(&db_hash, h);
        db_add_hash(&dbx_hash, h);
        db_add_cert(&dbx_leaf, "leaf");
        db_add_cert(&dbx_ca, "ca");

        printf(" unsigned\n");
        check("unsigned.efi", &db_ca, NULL, 0, "is not signed");
        ASSERT_FALSE(sbverify("ca", "unsigned.efi"));

        printf(" signed by the leaf, the CA in the signature\n");
        /* db holds the signer itself: firmware trusts it (partial chain); sbverify does not. */
        check("leaf.efi", &db_leaf, NULL, 1, "signed by Imprint Test Signer, which db trusts.");
        ASSERT_FALSE(sbverify("leaf", "leaf.efi"));
        check("leaf.efi", &db_ca, NULL, 1, "signed by Imprint Test Signer, which db trusts through Imprint Test CA.");
        ASSERT_TRUE(sbverify("ca", "leaf.efi"));
        check("leaf.efi", &db_other, NULL, 0, "signed by Imprint Test Signer, which db does not trust");
        ASSERT_FALSE(sbverify("other", "leaf.efi"));
        check("leaf.efi", &db_empty, NULL, 0, "which db does not trust");
        check("leaf.efi", NULL, NULL, 0, "which db does not trust");
        check("leaf.efi", &db_self, NULL, 0, "which db does not trust");
        ASSERT_FALSE(sbverify("self", "leaf.efi"));

        printf(" self-signed\n");
        check("self.efi", &db_self, NULL, 1, "Imprint Self Signed");
        ASSERT_TRUE(sbverify("self", "self.efi"));
        check("self.efi", &db_ca, NULL, 0, "signed by Imprint Self Signed, which db does not trust");
        ASSERT_FALSE(sbverify("ca", "self.efi"));

        printf(" image hashes\n");
        check("unsigned.efi", &db_hash, NULL, 1, "its hash");
        check("leaf.efi", &db_hash, NULL, 1, "its hash");
        check("leaf.efi", &db_ca, &dbx_hash, 0, "forbidden by dbx (its hash)");
        check("unsigned.efi", &db_hash, &dbx_hash, 0, "forbidden by dbx (its hash)");

        printf(" dbx certificates\n");
        check("leaf.efi", &db_ca, &dbx_leaf, 0, "forbidden by dbx (the certificate Imprint Test Signer");
        check("leaf.efi", &db_leaf, &dbx_ca, 0, "forbidden by dbx (the certificate Imprint Test CA");
        check("leaf.efi", &db_hash, &dbx_ca, 0, "forbidden by dbx");
        check("leaf.efi", &db_ca, &db_other, 1, NULL); /* an unrelated dbx certificate forbids nothing */
        check("self.efi", &db_self, &dbx_leaf, 1, NULL);

        printf(" changed after signing\n");
        check("changed.efi", &db_ca, NULL, 0, "was changed after it was signed");
        ASSERT_FALSE(sbverify("ca", "changed.efi"));

        printf(" expired signer (firmware has no clock to trust)\n");
        check("expired.efi", &db_ca, NULL, 1, "Imprint Expired Signer");
        ASSERT_TRUE(sbverify("ca", "expired.efi"));

        printf(" two signatures\n");
        {
                _cleanup_(file_done) File two = load("two.efi");
                _cleanup_(pe_signature_done) PeSignature s = {};

                ASSERT_OK(authenticode_read(two.data, two.size, "two.efi", &s));
                ASSERT_EQ(s.n_signatures, 2);
                ASSERT_TRUE(s.digest_matches);
                ASSERT_STREQ(s.signer_common_name, "Imprint Test Signer");
        }
        check("two.efi", &db_ca, NULL, 1, "Imprint Test Signer");
        ASSERT_TRUE(sbverify("ca", "two.efi"));
        check("two.efi", &db_self, NULL, 1, "Imprint Self Signed"); /* the second signature */
        ASSERT_TRUE(sbverify("self", "two.efi"));
        check("two.efi", &db_other, NULL, 0, "signed by Imprint Test Signer, which db does not trust");
        ASSERT_FALSE(sbverify("other", "two.efi"));
        check("two.efi", &db_self, &dbx_leaf, 0, "forbidden by dbx"); /* any forbidden signature wins */
}

static void put_le32(uint8_t *p, uint32_t v) {
        for (unsigned i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p) {
        return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

static void expect_bad(const File *f, const char *what, const char *reason_part) {
        _cleanup_(pe_signature_done) PeSignature s = {};
        _cleanup_(freep) char *reason = NULL;
        FirmwareSigDb db = {};
        uint8_t h[32];
        int r;

        r = authenticode_read(f->data, f->size, what, &s);
        if (r != -EBADMSG)
                FAIL("%s: expected -EBADMSG from authenticode_read, got %d", what, r);
        ASSERT_CONTAINS(error_message(), what);
        if (reason_part)
                ASSERT_CONTAINS(error_message(), reason_part);
        printf("  rejected: %s\n", error_message());
        error_clear();
        ASSERT_EQ(authenticode_trusted(f->data, f->size, what, &db, NULL, &reason), -EBADMSG);
        ASSERT_TRUE(!reason);
        error_clear();
        (void) authenticode_sha256(f->data, f->size, what, h);
        error_clear();
}

static void test_malformed(void) {
        _cleanup_(file_done) File leaf = load("leaf.efi");
        uint32_t e_lfanew = get_le32((const uint8_t *) leaf.data + 0x3C);
        size_t entry = e_lfanew + 24 + 112 + 4 * 8; /* PE32+: the certificate table's directory entry */
        uint32_t cert_offset = get_le32((const uint8_t *) leaf.data + entry);
        uint32_t cert_size = get_le32((const uint8_t *) leaf.data + entry + 4);
        File m = { .size = leaf.size };

        ASSERT_EQ(cert_offset + cert_size, leaf.size); /* sbsign appends the table */
        m.data = malloc(leaf.size);
        ASSERT_TRUE(m.data);

        /* The table reaches beyond the file. */
        memcpy(m.data, leaf.data, leaf.size);
        put_le32((uint8_t *) m.data + entry + 4, cert_size + 8);
        expect_bad(&m, "beyond.efi", "certificate table");
        memcpy(m.data, leaf.data, leaf.size);
        put_le32((uint8_t *) m.data + entry, 0xFFFFFFF0u);
        expect_bad(&m, "far.efi", "certificate table");

        /* dwLength claims more than the table holds, or less than its own header. */
        memcpy(m.data, leaf.data, leaf.size);
        put_le32((uint8_t *) m.data + cert_offset, cert_size + 1);
        expect_bad(&m, "long.efi", "claims");
        put_le32((uint8_t *) m.data + cert_offset, 4);
        expect_bad(&m, "short.efi", "claims");

        /* Garbage where the PKCS#7 should be, and a PKCS#7 cut short. */
        memcpy(m.data, leaf.data, leaf.size);
        memset(m.data + cert_offset + 8, 0x5A, cert_size - 8);
        expect_bad(&m, "garbage.efi", "PKCS#7");
        memcpy(m.data, leaf.data, leaf.size);
        put_le32((uint8_t *) m.data + cert_offset, 200);
        expect_bad(&m, "cut.efi", "PKCS#7");

        /* Every truncation of the signed file: an error or an answer, never a crash (ASan). */
        for (size_t n = 0; n < leaf.size; n += n < 4096 ? 61 : 4093) {
                _cleanup_(pe_signature_done) PeSignature s = {};
                _cleanup_(freep) char *reason = NULL;
                _cleanup_(freep) char *copy = malloc(MAX(n, (size_t) 1));
                FirmwareSigDb db = {};

                ASSERT_TRUE(copy);
                memcpy(copy, leaf.data, n);
                (void) authenticode_read(copy, n, "truncated.efi", &s);
                (void) authenticode_trusted(copy, n, "truncated.efi", &db, &db, &reason);
                error_clear();
        }
        free(m.data);
}

static void test_shim(void) {
        _cleanup_(file_done) File shim = load("shim.efi"), objcopied = load("shim-objcopy.efi"), plain = load("unsigned.efi");
        _cleanup_(db_free) FirmwareSigDb vendor = {}, vendor2 = {}, none = {}, db_ca = {};
        _cleanup_(file_done) File self_der = load("self.der");
        _cleanup_(freep) char *reason = NULL;

        ASSERT_EQ(authenticode_shim_vendor_db(shim.data, shim.size, "shim.efi", &vendor), 1);
        ASSERT_TRUE(vendor.present);
        ASSERT_EQ(vendor.n_certs, 1);
        ASSERT_EQ(vendor.n_sha256, 0);
        ASSERT_EQ(vendor.certs[0].der_size, self_der.size);
        ASSERT_TRUE(memcmp(vendor.certs[0].der, self_der.data, self_der.size) == 0);
        ASSERT_STREQ(vendor.certs[0].common_name, "Imprint Self Signed");
        ASSERT_STREQ(vendor.certs[0].subject, "CN=Imprint Self Signed");
        ASSERT_STREQ(vendor.certs[0].owner, "605dab50-e046-4300-abb6-3dd810dd8b23");

        /* What shim would start: the binaries its vendor certificate signed. */
        check("self.efi", &vendor, NULL, 1, "Imprint Self Signed");
        check("leaf.efi", &vendor, NULL, 0, "which db does not trust");
        /* And the shim itself is started by firmware that trusts its signer's CA. */
        db_add_cert(&db_ca, "ca");
        check("shim.efi", &db_ca, NULL, 1, "Imprint Test Signer");
        ASSERT_TRUE(sbverify("ca", "shim.efi"));

        ASSERT_EQ(authenticode_shim_vendor_db(objcopied.data, objcopied.size, "shim-objcopy.efi", &vendor2), 1);
        ASSERT_EQ(vendor2.n_certs, 1);
        ASSERT_TRUE(memcmp(vendor2.certs[0].der, self_der.data, self_der.size) == 0);

        ASSERT_EQ(authenticode_shim_vendor_db(plain.data, plain.size, "unsigned.efi", &none), 0);
        ASSERT_FALSE(none.present);
        ASSERT_EQ(none.n_certs, 0);

        /* A vendor certificate that lies outside its section. */
        {
                File m = load("shim-unsigned.efi");
                FirmwareSigDb bad = {};
                uint8_t *section = memmem(m.data, m.size, self_der.data, self_der.size);

                ASSERT_TRUE(section);
                put_le32(section - 16, 0x10000); /* vendor_authorized_size */
                ASSERT_EQ(authenticode_shim_vendor_db(m.data, m.size, "bad-shim.efi", &bad), -EBADMSG);
                ASSERT_CONTAINS(error_message(), "bad-shim.efi");
                printf("  rejected: %s\n", error_message());
                error_clear();
                put_le32(section - 16, (uint32_t) self_der.size);
                section[0] = 0x04; /* not a SEQUENCE: not a certificate */
                ASSERT_EQ(authenticode_shim_vendor_db(m.data, m.size, "bad-shim.efi", &bad), -EBADMSG);
                printf("  rejected: %s\n", error_message());
                error_clear();
                file_done(&m);
        }
        (void) reason;
}

int main(void) {
        _cleanup_(freep) char *script = NULL;
        const char *root = getenv("SOURCE_ROOT") ?: ".";

        /* The tools are in scripts/deps; a missing one is a failure, not a skip. */
        if (!run("command -v sbsign >/dev/null && command -v sbverify >/dev/null && command -v sbattach >/dev/null"))
                FAIL("sbsign, sbverify and sbattach (sbsigntool, scripts/deps) are needed");
        if (access("/usr/lib/systemd/boot/efi/systemd-bootx64.efi", R_OK) < 0)
                FAIL("/usr/lib/systemd/boot/efi/systemd-bootx64.efi (systemd-boot-efi, scripts/deps) is needed");

        ASSERT_TRUE(mkdtemp(dir));
        ASSERT_TRUE(asprintf(&script, "%s/tests/unit/make-signed-efi.sh", root) >= 0);
        if (!run("bash '%s' '%s' >/dev/null", script, dir))
                FAIL("%s failed", script);

        printf("image hash\n");
        test_hash();
        printf("trust\n");
        test_trust();
        printf("malformed input\n");
        test_malformed();
        printf("shim's vendor certificate\n");
        test_shim();

        ASSERT_TRUE(run("rm -rf '%s'", dir));
        printf("OK\n");
        return 0;
}
