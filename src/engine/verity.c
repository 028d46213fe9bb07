/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "log.h"
#include "macro.h"
#include "run.h"
#include "verity.h"

static uint32_t rd_le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* struct verity_sb of cryptsetup: signature "verity\0\0", version, hash_type, uuid[16],
 * algorithm[32], data_block_size, hash_block_size, data_blocks (64 bit), salt_size (16 bit),
 * 6 bytes padding, salt[256], padding to 512 bytes; little endian. */
int verity_superblock_parse(const uint8_t *b, size_t size, VeritySuperblock *ret) {
        VeritySuperblock sb = {};

        if (size < VERITY_SUPERBLOCK_SIZE || memcmp(b, "verity\0\0", 8) != 0)
                return -EBADMSG;
        sb.version = rd_le32(b + 8);
        sb.hash_type = rd_le32(b + 12);
        memcpy(sb.algorithm, b + 32, 32);
        sb.data_block_size = rd_le32(b + 64);
        sb.hash_block_size = rd_le32(b + 68);
        sb.data_blocks = (uint64_t) rd_le32(b + 72) | (uint64_t) rd_le32(b + 76) << 32;
        sb.salt_size = (uint16_t) (b[80] | b[81] << 8);
        if (sb.version != 1 || sb.hash_type > 1 || sb.salt_size > sizeof(sb.salt) || sb.data_blocks == 0)
                return -EBADMSG;
        for (uint32_t *bs = &sb.data_block_size; bs <= &sb.hash_block_size; bs++)
                if (*bs < 512 || *bs > 1024 * 1024 || (*bs & (*bs - 1)) != 0)
                        return -EBADMSG;
        for (size_t i = 0; i < 32 && sb.algorithm[i]; i++)
                if (!isalnum((unsigned char) sb.algorithm[i]) && sb.algorithm[i] != '-')
                        return -EBADMSG;
        memcpy(sb.salt, b + 88, sb.salt_size);
        *ret = sb;
        return 0;
}

static char *hex_string(const uint8_t *p, size_t n) {
        char *s = malloc(n * 2 + 1);

        if (!s)
                return NULL;
        for (size_t i = 0; i < n; i++)
                snprintf(s + 2 * i, 3, "%02x", p[i]);
        s[n * 2] = 0;
        return s;
}

int verity_root_hash(const VeritySuperblock *sb, const uint8_t *top, char **ret_hex) {
        const EVP_MD *md = EVP_get_digestbyname(sb->algorithm);
        uint8_t digest[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        EVP_MD_CTX *ctx;
        bool ok;

        if (!md)
                return -EOPNOTSUPP;
        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        ok = EVP_DigestInit_ex(ctx, md, NULL) == 1 &&
             (sb->hash_type == 0 || EVP_DigestUpdate(ctx, sb->salt, sb->salt_size) == 1) &&
             EVP_DigestUpdate(ctx, top, sb->hash_block_size) == 1 &&
             (sb->hash_type == 1 || EVP_DigestUpdate(ctx, sb->salt, sb->salt_size) == 1) &&
             EVP_DigestFinal_ex(ctx, digest, &len) == 1;
        EVP_MD_CTX_free(ctx);
        if (!ok)
                return -EIO;
        *ret_hex = hex_string(digest, len);
        return *ret_hex ? 0 : -ENOMEM;
}

static int base64_decode(const char *s, uint8_t **ret, size_t *ret_size) {
        size_t len = strlen(s), pad = 0;
        uint8_t *buf;
        int n;

        if (len == 0 || len % 4 != 0 || len > INT32_MAX)
                return -EBADMSG;
        for (size_t i = 0; i < len; i++)
                if (!isalnum((unsigned char) s[i]) && !strchr("+/=", s[i]))
                        return -EBADMSG;
        pad = (s[len - 1] == '=') + (s[len - 2] == '=');
        buf = malloc(len / 4 * 3 + 1);
        if (!buf)
                return -ENOMEM;
        n = EVP_DecodeBlock(buf, (const unsigned char *) s, (int) len);
        if (n < 0 || (size_t) n < pad) {
                free(buf);
                return -EBADMSG;
        }
        *ret = buf;
        *ret_size = (size_t) n - pad;
        return 0;
}

int verity_sig_parse(const char *text, size_t size, char **ret_root_hash, uint8_t **ret_sig, size_t *ret_sig_size) {
        _cleanup_(freep) char *copy = strndup(text, size);
        json_object *o = NULL, *rh, *sig;
        int r = -EBADMSG;

        if (!copy)
                return -ENOMEM;
        o = json_tokener_parse(copy);
        if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "rootHash", &rh) ||
            !json_object_is_type(rh, json_type_string) || !json_object_object_get_ex(o, "signature", &sig) ||
            !json_object_is_type(sig, json_type_string))
                goto out;
        *ret_root_hash = strdup(json_object_get_string(rh));
        if (!*ret_root_hash) {
                r = -ENOMEM;
                goto out;
        }
        for (char *c = *ret_root_hash; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        r = base64_decode(json_object_get_string(sig), ret_sig, ret_sig_size);
        if (r < 0) {
                free(*ret_root_hash);
                *ret_root_hash = NULL;
        }
out:
        json_object_put(o);
        return r;
}

int verity_sig_check(const char *root_hash, const uint8_t *sig, size_t sig_size, const char *cert_pem) {
        const unsigned char *p = sig;
        PKCS7 *p7 = NULL;
        BIO *cbio = NULL, *data = NULL;
        X509 *cert = NULL;
        STACK_OF(X509) *certs = NULL;
        X509_STORE *store = NULL;
        int r;

        if (sig_size > LONG_MAX)
                return -EBADMSG;
        p7 = d2i_PKCS7(NULL, &p, (long) sig_size);
        if (!p7 || !PKCS7_type_is_signed(p7)) {
                r = -EBADMSG;
                goto out;
        }
        if (!cert_pem) {
                r = 0;
                goto out;
        }
        cbio = BIO_new_mem_buf(cert_pem, -1);
        cert = cbio ? PEM_read_bio_X509(cbio, NULL, NULL, NULL) : NULL;
        if (!cert) {
                r = -EINVAL;
                goto out;
        }
        certs = sk_X509_new_null();
        store = X509_STORE_new();
        data = BIO_new_mem_buf(root_hash, (int) strlen(root_hash));
        if (!certs || !store || !data || !sk_X509_push(certs, cert)) {
                r = -ENOMEM;
                goto out;
        }
        cert = NULL; /* owned by certs now */
        /* The certificate given is the trust anchor itself (as systemd's verity.d certificates
         * are): no chain is built, only the signer must be it and the signature must match. */
        r = PKCS7_verify(p7, certs, store, data, NULL, PKCS7_NOVERIFY | PKCS7_NOINTERN | PKCS7_BINARY) == 1 ? 0 : -EKEYREJECTED;
out:
        PKCS7_free(p7);
        BIO_free(cbio);
        BIO_free(data);
        X509_free(cert);
        sk_X509_pop_free(certs, X509_free);
        X509_STORE_free(store);
        return r;
}

static unsigned long hex8(const uint8_t *p) {
        char b[9];
        memcpy(b, p, 8);
        b[8] = 0;
        for (int i = 0; i < 8; i++)
                if (!isxdigit((unsigned char) b[i]))
                        return ULONG_MAX;
        return strtoul(b, NULL, 16);
}

static void note_name(InitrdFacts *f, const char *name, size_t len) {
        static const struct {
                const char *path;
                size_t off;
        } wanted[] = {
                { "usr/lib/systemd/system-generators/systemd-gpt-auto-generator", offsetof(InitrdFacts, gpt_auto) },
                { "lib/systemd/system-generators/systemd-gpt-auto-generator", offsetof(InitrdFacts, gpt_auto) },
                { "usr/lib/systemd/systemd-veritysetup", offsetof(InitrdFacts, veritysetup) },
                { "lib/systemd/systemd-veritysetup", offsetof(InitrdFacts, veritysetup) },
        };

        while (len > 0 && (name[0] == '/' || (len > 1 && name[0] == '.' && name[1] == '/'))) {
                size_t skip = name[0] == '/' ? 1 : 2;
                name += skip;
                len -= skip;
        }
        f->n_files++;
        for (size_t i = 0; i < ELEMENTSOF(wanted); i++)
                if (len == strlen(wanted[i].path) && memcmp(name, wanted[i].path, len) == 0)
                        *(bool *) ((char *) f + wanted[i].off) = true;
}

static int scan(const uint8_t *buf, size_t size, InitrdFacts *f, unsigned depth);

static int decompress_and_scan(const char *tool, const uint8_t *buf, size_t size, InitrdFacts *f, unsigned depth) {
        _cleanup_(freep) char *out = NULL;
        size_t out_size = 0;
        int status = 0, r;

        /* Trailing padding after the last frame makes some tools exit non-zero after writing
         * everything; what they wrote is judged by the cpio reader. */
        char *argv[] = { (char *) tool, (char *) "-dc", NULL };
        r = run_command(argv, &(RunOptions) { .stdin_data = buf, .stdin_size = size, .ret_stdout = &out, .ret_stdout_size = &out_size,
                                              .ret_status = &status, .quiet_stderr = true });
        if (r == -ENOMEM)
                return r;
        if (r < 0 || out_size == 0) {
                f->complete = false;
                snprintf(f->unknown_what, sizeof(f->unknown_what), "%s-compressed data", tool);
                return 0;
        }
        return scan((const uint8_t *) out, out_size, f, depth + 1);
}

static int scan(const uint8_t *buf, size_t size, InitrdFacts *f, unsigned depth) {
        size_t pos = 0;

        while (pos < size) {
                const uint8_t *p = buf + pos;
                size_t left = size - pos;

                if (p[0] == 0) { /* padding between archives */
                        pos++;
                        continue;
                }
                if (left >= 110 && (memcmp(p, "070701", 6) == 0 || memcmp(p, "070702", 6) == 0)) {
                        unsigned long filesize = hex8(p + 54), namesize = hex8(p + 94);
                        size_t name_end, data_end;

                        if (filesize == ULONG_MAX || namesize == ULONG_MAX || namesize == 0 || namesize > left - 110)
                                goto damaged;
                        name_end = ROUND_UP(110 + (size_t) namesize, 4);
                        if (filesize > left || name_end > left - filesize)
                                goto damaged;
                        data_end = ROUND_UP(name_end + (size_t) filesize, 4);
                        if (namesize == sizeof("TRAILER!!!") && memcmp(p + 110, "TRAILER!!!", namesize) == 0) {
                                pos += MIN(data_end, left);
                                continue;
                        }
                        note_name(f, (const char *) p + 110, namesize - 1);
                        pos += MIN(data_end, left);
                        continue;
                }
                if (depth > 0)
                        goto damaged; /* compressed data inside compressed data: not an initrd */
                if (left >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
                        return decompress_and_scan("zstd", p, left, f, depth);
                if (left >= 2 && p[0] == 0x1f && p[1] == 0x8b)
                        return decompress_and_scan("gzip", p, left, f, depth);
                if (left >= 6 && memcmp(p, "\xfd" "7zXZ\0", 6) == 0)
                        return decompress_and_scan("xz", p, left, f, depth);
                f->complete = false;
                snprintf(f->unknown_what, sizeof(f->unknown_what), "data of an unknown format (%02x %02x %02x %02x)", p[0],
                         left > 1 ? p[1] : 0, left > 2 ? p[2] : 0, left > 3 ? p[3] : 0);
                return 0;
        }
        return 0;

damaged:
        f->complete = false;
        snprintf(f->unknown_what, sizeof(f->unknown_what), "a damaged cpio archive");
        return 0;
}

int initrd_scan(const uint8_t *buf, size_t size, InitrdFacts *ret) {
        InitrdFacts f = { .complete = true };
        int r;

        r = scan(buf, size, &f, 0);
        if (r < 0)
                return r;
        *ret = f;
        return 0;
}
