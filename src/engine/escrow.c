/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h> /* before cms.h, whose PEM_*_CMS declarations need its macros */
#include <openssl/cms.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "error.h"
#include "escrow.h"
#include "fileio.h"
#include "log.h"

/* A PEM certificate of a 16384-bit RSA key with a long chain of extensions is well below this. */
#define CERTIFICATE_MAX (256 * 1024)

DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CMS_ContentInfo *, CMS_ContentInfo_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_EXTENSION *, X509_EXTENSION_free);
static void BIO_freep(BIO **b) {
        if (*b)
                BIO_free(*b);
}

/* The last libcrypto error as text, for a sentence. */
static const char *crypto_error(char *buf, size_t size) {
        unsigned long e = ERR_peek_last_error();

        if (e == 0)
                snprintf(buf, size, "unknown error");
        else
                ERR_error_string_n(e, buf, size);
        ERR_clear_error();
        return buf;
}

/* A bare public key as a certificate CMS can address: the key and its subject key identifier
 * (SHA-1 of the key's BIT STRING, RFC 5280 4.2.1.2), which names the recipient in the message.
 * The certificate is never written anywhere. It is filled in and signed by a throwaway key so that
 * it is a complete certificate: libcrypto found no key identifier in one with only the key and
 * the extension ("certificate has no keyid"). */
static int recipient_from_public_key(EVP_PKEY *key, X509 **ret) {
        _cleanup_(X509_freep) X509 *x = X509_new();
        _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *signer = NULL;
        X509_NAME *name;
        X509V3_CTX ctx;

        if (!x || !X509_set_version(x, X509_VERSION_3) || !X509_set_pubkey(x, key) ||
            !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) || !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
            !X509_gmtime_adj(X509_getm_notAfter(x), 0))
                return -ENOMEM;
        name = X509_get_subject_name(x);
        if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) "imprint escrow recipient", -1, -1, 0) ||
            !X509_set_issuer_name(x, name))
                return -ENOMEM;
        X509V3_set_ctx(&ctx, NULL, x, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
        if (!ext || !X509_add_ext(x, ext, -1))
                return -ENOMEM;
        signer = EVP_EC_gen("P-256");
        if (!signer || !X509_sign(x, signer, EVP_sha256()))
                return -ENOMEM;
        *ret = TAKE_PTR(x);
        return 0;
}

/* Reads the recipient from path: a certificate, else a public key. ret_keyid: name the recipient
 * by its subject key identifier (a bare key has no issuer and serial). */
static int recipient_load(const char *path, const char *what, X509 **ret, bool *ret_keyid) {
        _cleanup_(BIO_freep) BIO *b = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *bare = NULL;
        _cleanup_(freep) char *data = NULL;
        EVP_PKEY *key;
        size_t size = 0;
        bool keyid = false, private;
        int r;

        /* A regular file of a sane size: neither a FIFO nor /dev/zero may hang the check. */
        r = read_regular_file(path, "the certificate", CERTIFICATE_MAX, &data, &size);
        if (r < 0) {
                char why[1024];

                snprintf(why, sizeof(why), "%s", error_message() ?: strerror(-r));
                return error_setf(r, "%s: %s", what, why);
        }
        b = BIO_new_mem_buf(data, (int) size);
        if (!b)
                return -ENOMEM;
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        ERR_clear_error();
        if (!x) {
                BIO_free(b);
                b = BIO_new_mem_buf(data, (int) size);
                if (!b)
                        return -ENOMEM;
                bare = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
                ERR_clear_error();
        }
        /* The OEM's private key must never travel with the installer; it is wiped from memory
         * here too. */
        private = !x && !bare && strstr(data, "PRIVATE KEY-----");
        secret_wipe(data, size);
        if (private)
                return error_setf(-EINVAL,
                                  "%s: %s is a private key; give the certificate or public key that belongs to it, and keep the "
                                  "private key away from the machines being installed.",
                                  what, path);
        if (!x && !bare)
                return error_setf(-EINVAL,
                                  "%s: %s is neither a PEM certificate (\"-----BEGIN CERTIFICATE-----\") nor a PEM public key "
                                  "(\"-----BEGIN PUBLIC KEY-----\").",
                                  what, path);
        key = x ? X509_get0_pubkey(x) : bare;
        if (!key)
                return error_setf(-EINVAL, "%s: the certificate %s holds a public key libcrypto cannot read.", what, path);
        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA && EVP_PKEY_get_base_id(key) != EVP_PKEY_EC)
                return error_setf(-EINVAL, "%s: %s holds a key of type %s; the recovery key can only be encrypted to an RSA or EC key.", what,
                                  path, OBJ_nid2sn(EVP_PKEY_get_base_id(key)));
        if (!x) {
                r = recipient_from_public_key(bare, &x);
                if (r < 0)
                        return r;
                keyid = true;
        }
        *ret = TAKE_PTR(x);
        *ret_keyid = keyid;
        return 0;
}

static int encrypt_to(X509 *x, bool keyid, const char *path, const void *data, size_t size, char **ret_pem) {
        _cleanup_(CMS_ContentInfo_freep) CMS_ContentInfo *cms = NULL;
        _cleanup_(BIO_freep) BIO *in = NULL, *out = NULL;
        char buf[256], *pem;
        BUF_MEM *mem = NULL;

        /* A recipient added after CMS_encrypt(…, CMS_PARTIAL) may be named by its key identifier;
         * the content is read straight from the caller's locked memory (no copy). */
        cms = CMS_encrypt(NULL, NULL, EVP_aes_256_cbc(), CMS_BINARY | CMS_PARTIAL);
        if (!cms)
                return error_setf(-ENOMEM, "Cannot encrypt the recovery key: %s.", crypto_error(buf, sizeof(buf)));
        if (!CMS_add1_recipient_cert(cms, x, keyid ? CMS_USE_KEYID : 0))
                return error_setf(-EINVAL, "Cannot encrypt the recovery key to %s: %s.", path, crypto_error(buf, sizeof(buf)));
        in = BIO_new_mem_buf(data, (int) size);
        out = BIO_new(BIO_s_mem());
        if (!in || !out)
                return -ENOMEM;
        if (!CMS_final(cms, in, NULL, CMS_BINARY))
                return error_setf(-EINVAL, "Cannot encrypt the recovery key to %s: %s.", path, crypto_error(buf, sizeof(buf)));
        if (!PEM_write_bio_CMS(out, cms))
                return error_setf(-ENOMEM, "Cannot encode the encrypted recovery key: %s.", crypto_error(buf, sizeof(buf)));
        BIO_get_mem_ptr(out, &mem);
        pem = strndup(mem->data, mem->length);
        if (!pem)
                return -ENOMEM;
        *ret_pem = pem;
        return 0;
}

int escrow_check_certificate(const char *path, const char *what) {
        _cleanup_(X509_freep) X509 *x = NULL;
        _cleanup_(freep) char *pem = NULL;
        bool keyid;
        int r;

        r = recipient_load(path, what, &x, &keyid);
        if (r < 0)
                return r;
        /* What CMS refuses (an EC curve it has no ECDH for, say) is refused now, not after the
         * disk was formatted. */
        r = encrypt_to(x, keyid, path, "test", 4, &pem);
        if (r < 0) {
                char why[512];

                snprintf(why, sizeof(why), "%s", error_message() ?: strerror(-r));
                return error_setf(r, "%s: %s", what, why);
        }
        return 0;
}

int escrow_encrypt(const char *certificate, const Secret *plaintext, char **ret_pem) {
        _cleanup_(X509_freep) X509 *x = NULL;
        bool keyid;
        int r;

        r = recipient_load(certificate, "The recovery key's escrow", &x, &keyid);
        if (r < 0)
                return r;
        return encrypt_to(x, keyid, certificate, plaintext->data, plaintext->size, ret_pem);
}

/* ---- configuration ---------------------------------------------------------------------------- */

static void escrow_reset(InstallConfig *c) {
        c->escrow_dir = mfree(c->escrow_dir);
        c->escrow_certificate = mfree(c->escrow_certificate);
        c->escrow_plaintext = false;
}

int config_set_escrow(InstallConfig *c, json_object *v, const char *key, const char *origin) {
        _cleanup_(freep) char *dir = NULL, *certificate = NULL;
        bool plaintext = false, plaintext_given = false;
        int r;

        if (json_object_is_type(v, json_type_string))
                /* The string form was a directory only: the key would sit on a share in plaintext
                 * without the configuration ever saying that was intended. */
                return error_setf(-EINVAL,
                                  "%s: \"%s\" must say how the recovery key is protected: {\"directory\": \"%s\", \"certificate\": "
                                  "\"/etc/imprint/oem.pem\"} encrypts it to the OEM's certificate or public key, {\"directory\": \"%s\", "
                                  "\"plaintext\": true} writes it unencrypted.",
                                  origin, key, json_object_get_string(v), json_object_get_string(v));
        if (!json_object_is_type(v, json_type_object))
                return error_setf(-EINVAL,
                                  "%s: \"%s\" must be an object such as {\"directory\": \"/mnt/escrow\", \"certificate\": \"/etc/imprint/oem.pem\"}.",
                                  origin, key);
        json_object_object_foreach(v, k, e) {
                if (streq(k, "directory") || streq(k, "certificate")) {
                        const char *s = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;

                        if (!s || s[0] != '/')
                                return error_setf(-EINVAL, "%s: \"%s.%s\" must be an absolute path.", origin, key, k);
                        char **field = streq(k, "directory") ? &dir : &certificate;

                        free(*field);
                        *field = strdup(s);
                        if (!*field)
                                return -ENOMEM;
                } else if (streq(k, "plaintext")) {
                        if (!json_object_is_type(e, json_type_boolean))
                                return error_setf(-EINVAL, "%s: \"%s.plaintext\" must be true or false.", origin, key);
                        plaintext = json_object_get_boolean(e);
                        plaintext_given = true;
                } else
                        return error_setf(-EINVAL, "%s: unknown key \"%s.%s\".", origin, key, k);
        }
        if (!dir)
                return error_setf(-EINVAL, "%s: \"%s\" needs a \"directory\": where the recovery key is delivered.", origin, key);
        if (certificate && plaintext)
                return error_setf(-EINVAL, "%s: \"%s\" gives a \"certificate\" and \"plaintext\": true; give one of them.", origin, key);
        if (!certificate && !plaintext)
                return error_setf(-EINVAL,
                                  "%s: \"%s\" has no \"certificate\" to encrypt the recovery key to; give the OEM's certificate or public "
                                  "key (PEM), or \"plaintext\": true to write the key unencrypted%s.",
                                  origin, key, plaintext_given ? "" : " (only where the directory is as safe as the key)");
        if (certificate) {
                char what[256];

                snprintf(what, sizeof(what), "%s: \"%s.certificate\"", origin, key);
                r = escrow_check_certificate(certificate, what);
                if (r < 0)
                        return r;
        }
        escrow_reset(c);
        c->escrow_dir = TAKE_PTR(dir);
        c->escrow_certificate = TAKE_PTR(certificate);
        c->escrow_plaintext = plaintext;
        return 0;
}

void config_escrow_done(InstallConfig *c) {
        c->escrow_certificate = mfree(c->escrow_certificate);
        c->escrow_plaintext = false;
}
