/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The image's repart.d and sysupdate.d as imprint reads them (imagedefs.c), sysupdate's
 * MatchPattern instantiation, and the in-process parts of the usr image checks (verity.c). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "error.h"
#include "fileio.h"
#include "image.h"
#include "imagedefs.h"
#include "size.h"
#include "tests.h"
#include "verity.h"

static void test_patterns(void) {
        char *s = NULL;

        ASSERT_OK(image_pattern_instantiate("imprint-usr_@v", "1", -1, -1, &s));
        ASSERT_STREQ(s, "imprint-usr_1");
        free(s);
        /* Boot counting: the transfer's TriesLeft=/TriesDone=, else 3 and 0. */
        ASSERT_OK(image_pattern_instantiate("imprint-usr_@v+@l-@d.efi", "2.5", -1, -1, &s));
        ASSERT_STREQ(s, "imprint-usr_2.5+3-0.efi");
        free(s);
        ASSERT_OK(image_pattern_instantiate("imprint-usr_@v+@l-@d.efi", "4", 5, 1, &s));
        ASSERT_STREQ(s, "imprint-usr_4+5-1.efi");
        free(s);
        ASSERT_OK(image_pattern_instantiate("x_@v+@l.efi", "7", 2, -1, &s));
        ASSERT_STREQ(s, "x_7+2.efi");
        free(s);
        /* What cannot be known before installing is refused. */
        s = NULL;
        ASSERT_EQ(image_pattern_instantiate("usr-@v-@u", "1", -1, -1, &s), -EINVAL);
        ASSERT_TRUE(s == NULL);
        ASSERT_EQ(image_pattern_instantiate("usr-@v@a", "1", -1, -1, &s), -EINVAL);
        ASSERT_EQ(image_pattern_instantiate("usr-@h", "1", -1, -1, &s), -EINVAL);
        ASSERT_EQ(image_pattern_instantiate("usr-@", "1", -1, -1, &s), -EINVAL);
        ASSERT_EQ(image_pattern_instantiate("usr-@v", NULL, -1, -1, &s), -EINVAL);
}

static void test_types(void) {
        ASSERT_EQ(image_defs_parse_type("usr"), ROLE_USR);
        ASSERT_EQ(image_defs_parse_type("usr-verity"), ROLE_USR_VERITY);
        ASSERT_EQ(image_defs_parse_type("usr-verity-sig"), ROLE_USR_VERITY_SIG);
        ASSERT_EQ(image_defs_parse_type("usr-x86-64"), ROLE_USR);
        ASSERT_EQ(image_defs_parse_type("usr-x86-64-verity"), ROLE_USR_VERITY);
        ASSERT_EQ(image_defs_parse_type("usr-arm64-verity-sig"), ROLE_USR_VERITY_SIG);
        ASSERT_EQ(image_defs_parse_type("root-native"), ROLE_ROOT);
        ASSERT_EQ(image_defs_parse_type("root"), ROLE_ROOT);
        ASSERT_EQ(image_defs_parse_type("home"), ROLE_HOME);
        ASSERT_EQ(image_defs_parse_type("esp"), ROLE_ESP);
        ASSERT_EQ(image_defs_parse_type("8484680c-9521-48c6-9c11-b0720656f69e"), ROLE_USR);
        ASSERT_TRUE(image_defs_parse_type("usr-sparc") < 0);
        ASSERT_TRUE(image_defs_parse_type("") < 0);
}

static const char repart_a[] = "# usr, A slot\n"
                               "[Partition]\n"
                               "Type=usr-x86-64\n"
                               "Label=imprint-usr_%A\n"
                               "; a comment of the other kind\n"
                               "\n"
                               "SizeMinBytes=512M\n"
                               "SizeMaxBytes=1G\n";
static const char repart_b[] = "[Partition]\n"
                               "Type=usr\n"
                               "Label=_empty\n"
                               "SizeMinBytes=768M\n"
                               "SizeMaxBytes=768M\n"
                               "ReadOnly=yes\n";
static const char repart_root[] = "[Partition]\n"
                                  "Type=root\n"
                                  "Format=ext4\n"
                                  "FactoryReset=yes\n"
                                  "Encrypt=tpm2\n"
                                  "[Other]\n"
                                  "Format=ignored\n";
static const char repart_verity_b[] = "[Partition]\n"
                                      "Type=usr-verity\n"
                                      "Label=_empty\n"
                                      "SizeMinBytes=64M\n"
                                      "SizeMaxBytes=48M\n";
static const char repart_sig_a[] = "[Partition]\nType=usr-verity-sig\nLabel=%M_%A%%\n";

static void test_repart(void) {
        ImageRepartDef d[5] = {};

        ASSERT_OK(image_repart_def_parse("10-usr-A.conf", repart_a, "3", &d[0]));
        ASSERT_EQ(d[0].role, ROLE_USR);
        ASSERT_STREQ(d[0].label, "imprint-usr_3");
        ASSERT_EQ(d[0].size_min, 512 * MiB);
        ASSERT_EQ(d[0].size_max, GiB);
        ASSERT_TRUE(d[0].format == NULL);
        ASSERT_FALSE(d[0].factory_reset);

        ASSERT_OK(image_repart_def_parse("20-usr-B.conf", repart_b, "3", &d[1]));
        ASSERT_EQ(d[1].role, ROLE_USR);
        ASSERT_STREQ(d[1].label, "_empty");
        ASSERT_EQ(d[1].size_min, 768 * MiB);

        ASSERT_OK(image_repart_def_parse("50-root.conf", repart_root, "3", &d[2]));
        ASSERT_EQ(d[2].role, ROLE_ROOT);
        ASSERT_STREQ(d[2].format, "ext4");
        ASSERT_TRUE(d[2].factory_reset);

        /* SizeMinBytes= above SizeMaxBytes= is what repart refuses too. */
        ASSERT_EQ(image_repart_def_parse("21-verity-B.conf", repart_verity_b, "3", &d[3]), -EBADMSG);
        ASSERT_CONTAINS(error_message(), "21-verity-B.conf");

        /* Specifiers other than %A stay as they are; %% is a percent sign. */
        ASSERT_OK(image_repart_def_parse("12-sig.conf", repart_sig_a, "3", &d[3]));
        ASSERT_STREQ(d[3].label, "%M_3%");

        /* The B slot's size decides; without one, the A slot's (capped by its SizeMaxBytes). */
        ASSERT_EQ(image_defs_slot_size(d, 4, ROLE_USR), 768 * MiB);
        ASSERT_EQ(image_defs_slot_size(d, 1, ROLE_USR), 512 * MiB);
        ASSERT_EQ(image_defs_slot_size(d, 4, ROLE_USR_VERITY_SIG), 0);
        ASSERT_EQ(image_defs_slot_size(d, 4, ROLE_USR_VERITY), 0);
        ASSERT_TRUE(image_defs_find(d, 4, ROLE_USR) == &d[0]);
        ASSERT_TRUE(image_defs_find(d, 4, ROLE_ROOT) == &d[2]);
        ASSERT_TRUE(image_defs_find(d, 4, ROLE_HOME) == NULL);

        ASSERT_EQ(image_repart_def_parse("x.conf", "[Partition]\nType=usr\nSizeMinBytes=lots\n", NULL, &d[4]), -EBADMSG);
        ASSERT_CONTAINS(error_message(), "SizeMinBytes=lots");
        ASSERT_EQ(image_repart_def_parse("x.conf", "[Partition]\nLabel=x\n", NULL, &d[4]), -EBADMSG);
        ASSERT_EQ(image_repart_def_parse("x.conf", "[Partition\nType=usr\n", NULL, &d[4]), -EBADMSG);
        ASSERT_EQ(image_repart_def_parse("x.conf", "[Partition]\nType usr\n", NULL, &d[4]), -EBADMSG);

        for (size_t i = 0; i < 4; i++)
                image_repart_def_done(&d[i]);
}

static const char transfer_usr[] = "[Transfer]\n"
                                   "ProtectVersion=%A\n"
                                   "\n"
                                   "[Source]\n"
                                   "Type=regular-file\n"
                                   "Path=/run/imprint-updates\n"
                                   "MatchPattern=imprint-usr_@v.usr.raw\n"
                                   "\n"
                                   "[Target]\n"
                                   "# the partition\n"
                                   "Type=partition\n"
                                   "Path=auto\n"
                                   "MatchPattern=imprint-usr_@v\n"
                                   "MatchPartitionType=usr\n"
                                   "ReadOnly=yes\n";
static const char transfer_uki[] = "[Source]\n"
                                   "Type=regular-file\n"
                                   "Path=/run/imprint-updates\n"
                                   "MatchPattern=imprint-usr_@v.efi\n"
                                   "[Target]\n"
                                   "Type=regular-file\n"
                                   "Path=/EFI/Linux/\n"
                                   "PathRelativeTo=boot\n"
                                   "MatchPattern=imprint-usr_@v+@l-@d.efi \\\n"
                                   "MatchPattern=imprint-usr_@v+@l-@d.efi imprint-usr_@v+@l.efi\n"
                                   "MatchPattern=imprint-usr_@v.efi\n"
                                   "Mode=0444\n"
                                   "TriesLeft=3\n"
                                   "TriesDone=0\n"
                                   "InstancesMax=2\n";

static void test_transfers(void) {
        ImageTransfer t[3] = {};
        Image img = {};

        ASSERT_OK(image_transfer_parse("10-usr.transfer", transfer_usr, &t[0]));
        ASSERT_STREQ(t[0].target_type, "partition");
        ASSERT_EQ(t[0].partition_role, ROLE_USR);
        ASSERT_STREQ(t[0].match_patterns[0], "imprint-usr_@v");
        ASSERT_TRUE(t[0].match_patterns[1] == NULL);
        ASSERT_STREQ(t[0].path, "auto");
        ASSERT_TRUE(t[0].path_relative_to == NULL);
        ASSERT_EQ(t[0].read_only, 1);
        ASSERT_EQ(t[0].tries_left, -1);
        ASSERT_EQ(t[0].no_auto, -1);

        /* An empty MatchPattern= empties the list; later lines add to it, several per line. */
        ASSERT_OK(image_transfer_parse("50-uki.transfer",
                                       "[Target]\nType=regular-file\nPath=/EFI/Linux\nMatchPattern=old_@v.efi\nMatchPattern=\n"
                                       "MatchPattern=imprint-usr_@v+@l-@d.efi imprint-usr_@v+@l.efi\n"
                                       "MatchPattern=\"imprint-usr_@v.efi\"\nPathRelativeTo=boot\nTriesLeft=3\nTriesDone=0\n",
                                       &t[1]));
        ASSERT_STREQ(t[1].match_patterns[0], "imprint-usr_@v+@l-@d.efi");
        ASSERT_STREQ(t[1].match_patterns[1], "imprint-usr_@v+@l.efi");
        ASSERT_STREQ(t[1].match_patterns[2], "imprint-usr_@v.efi");
        ASSERT_TRUE(t[1].match_patterns[3] == NULL);
        ASSERT_STREQ(t[1].path_relative_to, "boot");
        ASSERT_EQ(t[1].tries_left, 3);
        ASSERT_EQ(t[1].tries_done, 0);

        /* A line continuation is not supported: the file is refused, not misread. */
        ASSERT_EQ(image_transfer_parse("x.transfer", transfer_uki, &t[2]), -EBADMSG);
        ASSERT_EQ(image_transfer_parse("x.transfer", "[Target]\nType=partition\n", &t[2]), -EBADMSG);
        ASSERT_CONTAINS(error_message(), "MatchPattern");
        ASSERT_EQ(image_transfer_parse("x.transfer", "[Target]\nType=partition\nMatchPattern=a\nTriesLeft=-1\n", &t[2]), -EBADMSG);
        ASSERT_EQ(image_transfer_parse("x.transfer", "[Source]\nType=partition\nMatchPattern=a\n", &t[2]), -EBADMSG);

        img.transfers = t;
        img.n_transfers = 2;
        ASSERT_TRUE(image_find_transfer(&img, ROLE_USR) == &t[0]);
        ASSERT_TRUE(image_find_transfer(&img, _ROLE_INVALID) == &t[1]);
        ASSERT_TRUE(image_find_transfer(&img, ROLE_USR_VERITY) == NULL);
        img.n_transfers = 1;
        ASSERT_TRUE(image_find_transfer(&img, _ROLE_INVALID) == NULL);

        image_transfer_done(&t[0]);
        image_transfer_done(&t[1]);
}

/* A hash tree of one data block: the top block holds that block's digest. */
static void test_verity(void) {
        uint8_t sb_buf[512] = {}, top[4096] = {}, data[4096], salt[32];
        unsigned char digest[32];
        VeritySuperblock sb;
        char *hex = NULL, want[65];
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned len;

        memset(data, 0x5a, sizeof(data));
        for (size_t i = 0; i < sizeof(salt); i++)
                salt[i] = (uint8_t) i;
        memcpy(sb_buf, "verity\0\0", 8);
        sb_buf[8] = 1;  /* version */
        sb_buf[12] = 1; /* hash type */
        memcpy(sb_buf + 32, "sha256", 6);
        sb_buf[65] = 0x10; /* 4096 */
        sb_buf[69] = 0x10;
        sb_buf[72] = 1;  /* one data block */
        sb_buf[80] = 32; /* salt size */
        memcpy(sb_buf + 88, salt, sizeof(salt));
        ASSERT_OK(verity_superblock_parse(sb_buf, sizeof(sb_buf), &sb));
        ASSERT_EQ(sb.data_block_size, 4096);
        ASSERT_EQ(sb.data_blocks, 1);
        ASSERT_STREQ(sb.algorithm, "sha256");

        ASSERT_TRUE(ctx);
        ASSERT_TRUE(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(ctx, salt, 32) == 1 &&
                    EVP_DigestUpdate(ctx, data, sizeof(data)) == 1 && EVP_DigestFinal_ex(ctx, top, &len) == 1);
        ASSERT_TRUE(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(ctx, salt, 32) == 1 &&
                    EVP_DigestUpdate(ctx, top, sizeof(top)) == 1 && EVP_DigestFinal_ex(ctx, digest, &len) == 1);
        EVP_MD_CTX_free(ctx);
        for (size_t i = 0; i < 32; i++)
                snprintf(want + 2 * i, 3, "%02x", digest[i]);
        ASSERT_OK(verity_root_hash(&sb, top, &hex));
        ASSERT_STREQ(hex, want);
        free(hex);

        sb_buf[0] = 'V';
        ASSERT_EQ(verity_superblock_parse(sb_buf, sizeof(sb_buf), &sb), -EBADMSG);
        sb_buf[0] = 'v';
        sb_buf[65] = 0x11; /* not a power of two */
        ASSERT_EQ(verity_superblock_parse(sb_buf, sizeof(sb_buf), &sb), -EBADMSG);
}

static void test_sig_json(void) {
        static const char good[] = "{\"rootHash\":\"ABCDEF\",\"certificateFingerprint\":\"00\",\"signature\":\"aGVsbG8=\"}\0\0\0";
        char *rh = NULL;
        uint8_t *sig = NULL;
        size_t n = 0;

        ASSERT_OK(verity_sig_parse(good, sizeof(good) - 1, &rh, &sig, &n));
        ASSERT_STREQ(rh, "abcdef");
        ASSERT_EQ(n, 5);
        ASSERT_TRUE(memcmp(sig, "hello", 5) == 0);
        /* "hello" is no PKCS#7 signature. */
        ASSERT_EQ(verity_sig_check(rh, sig, n, NULL), -EBADMSG);
        free(rh);
        free(sig);
        ASSERT_EQ(verity_sig_parse("{\"rootHash\":1,\"signature\":\"aGVsbG8=\"}", 36, &rh, &sig, &n), -EBADMSG);
        ASSERT_EQ(verity_sig_parse("{\"rootHash\":\"ab\",\"signature\":\"a!\"}", 34, &rh, &sig, &n), -EBADMSG);
        ASSERT_EQ(verity_sig_parse("not json", 8, &rh, &sig, &n), -EBADMSG);
}

static size_t put_cpio(uint8_t *p, const char *name, size_t filesize) {
        size_t n = strlen(name) + 1, len;

        len = (size_t) sprintf((char *) p, "070701%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X", 1u, 0100755u, 0u, 0u, 1u, 0u,
                               filesize, 0u, 0u, 0u, 0u, n, 0u);
        memcpy(p + len, name, n);
        len = (len + n + 3) & ~(size_t) 3;
        memset(p + len, 'x', filesize);
        return (len + filesize + 3) & ~(size_t) 3;
}

static void test_initrd(void) {
        uint8_t buf[4096] = {};
        size_t n = 0;
        InitrdFacts f;

        n += put_cpio(buf + n, "early_cpio", 2);
        n += put_cpio(buf + n, "TRAILER!!!", 0);
        n += 512; /* zero padding between archives */
        n += put_cpio(buf + n, ".", 0);
        n += put_cpio(buf + n, "usr/lib/systemd/system-generators/systemd-gpt-auto-generator", 7);
        n += put_cpio(buf + n, "./usr/lib/systemd/systemd-veritysetup", 5);
        n += put_cpio(buf + n, "TRAILER!!!", 0);
        ASSERT_OK(initrd_scan(buf, n, &f));
        ASSERT_TRUE(f.complete);
        ASSERT_TRUE(f.gpt_auto);
        ASSERT_TRUE(f.veritysetup);
        ASSERT_EQ(f.n_files, 4);

        /* Unknown data after a readable archive: what was read counts, the rest is unknown. */
        memcpy(buf + n, "BZh9", 4);
        ASSERT_OK(initrd_scan(buf, n + 4, &f));
        ASSERT_FALSE(f.complete);
        ASSERT_TRUE(f.gpt_auto);
        ASSERT_CONTAINS(f.unknown_what, "unknown format");

        /* A header whose name runs past the end. */
        n = put_cpio(buf, "lib/x", 0);
        ASSERT_OK(initrd_scan(buf, 100, &f));
        ASSERT_FALSE(f.complete);
        ASSERT_FALSE(f.gpt_auto);
}

static const char *role_name(PartitionRole r) {
        return r < 0 ? "boot" : partition_role_to_string(r);
}

/* "check IMAGE [CERT]": what the engine makes of an image, for tests/integration/test-image-usr.sh:
 * "refused: SENTENCE" and exit 1, or one "key value" line per fact. */
static int check_image(const char *path, const char *cert_path) {
        _cleanup_(image_freep) Image *img = NULL;
        _cleanup_(plan_source_freep) PlanSource *src = NULL;
        _cleanup_(freep) char *cert = NULL;
        int r;

        if (cert_path && read_full_file(cert_path, &cert, NULL) < 0) {
                fprintf(stderr, "cannot read %s\n", cert_path);
                return 2;
        }
        r = image_open(path, &img);
        if (r >= 0)
                r = image_load_boot(img);
        if (r >= 0 && cert)
                r = image_check_usr(img, cert);
        if (r >= 0)
                r = image_to_plan_source(img, &src);
        if (r < 0) {
                printf("refused: %s\n", error_message_for(r));
                return 1;
        }
        printf("kind %s\n", img->kind == IMAGE_KIND_USR ? "usr" : "root");
        printf("source-kind %s\n", src->kind == PLAN_SOURCE_USR ? "usr" : "root");
        printf("usrhash %s\n", img->usrhash ?: "-");
        printf("image %s %s\n", img->image_id ?: "-", img->image_version ?: "-");
        printf("sdboot %s\n", img->sdboot_version ?: "-");
        printf("repart %zu transfers %zu\n", img->n_repart, img->n_transfers);
        printf("root-fstype %s home-fstype %s\n", src->root_fstype ?: "-", src->home_fstype ?: "-");
        for (size_t i = 0; i < src->n_partitions; i++)
                printf("partition %s %u size %" PRIu64 " slot %" PRIu64 " label %s install-label %s\n",
                       partition_role_to_string(src->partitions[i].role), src->partitions[i].partno, src->partitions[i].size,
                       src->partitions[i].slot_size, src->partitions[i].label ?: "-", src->partitions[i].install_label ?: "-");
        for (size_t i = 0; i < src->n_entries; i++)
                printf("entry %s install-as %s on %s\n", src->entries[i].file, src->entries[i].install_as ?: "-",
                       role_name(src->entries[i].install_on));
        printf("note %s\n", src->note ?: "-");
        return 0;
}

int main(int argc, char *argv[]) {
        if (argc >= 3 && streq(argv[1], "check"))
                return check_image(argv[2], argc > 3 ? argv[3] : NULL);
        if (argc > 1) {
                fprintf(stderr, "usage: %s [check IMAGE [CERTIFICATE]]\n", argv[0]);
                return 2;
        }
        test_patterns();
        test_types();
        test_repart();
        test_transfers();
        test_verity();
        test_sig_json();
        test_initrd();
        return 0;
}
