/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Authenticode signatures of EFI binaries, checked the way UEFI firmware (edk2's
 * DxeImageVerificationLib, which uses OpenSSL too) checks them: see authenticode.h. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "authenticode.h"
#include "error.h"
#include "i18n.h"
#include "pe.h"

/* PE header offsets (PE format, "Optional Header Windows-Specific Fields", "Optional Header Data
 * Directories"). The buffer is untrusted and unaligned: fields are assembled byte by byte. */
#define DOS_E_LFANEW 0x3C
#define COFF_SIZE_OF_OPTIONAL_HEADER 16
#define COFF_HEADER_SIZE 20
#define OPT_MAGIC_PE32PLUS UINT16_C(0x020B)
#define OPT_SIZE_OF_HEADERS 60
#define OPT_CHECKSUM 64
#define OPT_NUMBER_OF_RVA_AND_SIZES_PE32 92
#define OPT_NUMBER_OF_RVA_AND_SIZES_PE32PLUS 108
#define OPT_DATA_DIRECTORIES_PE32 96
#define OPT_DATA_DIRECTORIES_PE32PLUS 112
#define DATA_DIRECTORY_SIZE 8
#define DATA_DIRECTORY_CERTIFICATE_TABLE 4

/* WIN_CERTIFICATE (PE format, "The Attribute Certificate Table"). */
#define WIN_CERTIFICATE_HEADER_SIZE 8
#define WIN_CERT_REVISION_1_0 UINT16_C(0x0100)
#define WIN_CERT_REVISION_2_0 UINT16_C(0x0200)
#define WIN_CERT_TYPE_PKCS_SIGNED_DATA UINT16_C(0x0002)

/* SPC_INDIRECT_DATA_OBJID (Authenticode PE, "Authenticode-Specific Structures"). */
#define SPC_INDIRECT_DATA_OID "1.3.6.1.4.1.311.2.1.4"

/* shim's own GUID (SHIM_LOCK_GUID), the owner given to its vendor certificate. */
#define SHIM_LOCK_GUID_STR "605dab50-e046-4300-abb6-3dd810dd8b23"
#define SHIM_CERT_TABLE_SIZE 16

/* More signatures than this in one binary is not something a signing tool makes. */
#define SIGNATURES_MAX 16

DEFINE_TRIVIAL_CLEANUP_FUNC(PKCS7 *, PKCS7_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE *, X509_STORE_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OBJECT *, ASN1_OBJECT_free);

/* Where the parts the image hash skips lie. */
typedef struct Layout {
        PeFile pe;
        uint64_t checksum;      /* offset of CheckSum */
        uint64_t cert_entry;    /* offset of the certificate table's data directory entry, 0: none */
        uint32_t cert_offset;   /* the certificate table: a file offset, not an RVA */
        uint32_t cert_size;
        uint32_t size_of_headers;
} Layout;

static void layout_done(Layout *l) {
        pe_file_done(&l->pe);
}

static int layout_read(const void *buf, size_t size, const char *what, Layout *ret) {
        _cleanup_(pe_file_done) PeFile pe = {};
        const uint8_t *p = buf;
        uint64_t opt, opt_end, n_rva_at, dirs, end_of_skips;
        uint32_t n_rva;
        Layout l = {};
        int r;

        /* pe_parse() checks the DOS header, the PE signature, the optional header's magic and
         * that the optional header and section table lie inside buf. */
        r = pe_parse(buf, size, what, &pe);
        if (r < 0)
                return r;

        opt = (uint64_t) pe_le32(p + DOS_E_LFANEW) + 4 + COFF_HEADER_SIZE;
        opt_end = opt + pe_le16(p + opt - COFF_HEADER_SIZE + COFF_SIZE_OF_OPTIONAL_HEADER);

        l.checksum = opt + OPT_CHECKSUM;
        if (l.checksum + 4 > opt_end)
                return error_setf(-EBADMSG, _("%s is not a PE file: its optional header is too short to hold the CheckSum field."),
                                  what);
        l.size_of_headers = pe_le32(p + opt + OPT_SIZE_OF_HEADERS);

        n_rva_at = opt + (pe.pe32plus ? OPT_NUMBER_OF_RVA_AND_SIZES_PE32PLUS : OPT_NUMBER_OF_RVA_AND_SIZES_PE32);
        dirs = opt + (pe.pe32plus ? OPT_DATA_DIRECTORIES_PE32PLUS : OPT_DATA_DIRECTORIES_PE32);
        n_rva = n_rva_at + 4 <= opt_end ? pe_le32(p + n_rva_at) : 0;
        /* As edk2: with no certificate table entry the image cannot be signed, and the hash covers
         * the headers without CheckSum only. */
        if (n_rva > DATA_DIRECTORY_CERTIFICATE_TABLE &&
            dirs + (DATA_DIRECTORY_CERTIFICATE_TABLE + 1) * DATA_DIRECTORY_SIZE <= opt_end) {
                l.cert_entry = dirs + DATA_DIRECTORY_CERTIFICATE_TABLE * DATA_DIRECTORY_SIZE;
                l.cert_offset = pe_le32(p + l.cert_entry);
                l.cert_size = pe_le32(p + l.cert_entry + 4);
        }

        end_of_skips = l.cert_entry > 0 ? l.cert_entry + DATA_DIRECTORY_SIZE : l.checksum + 4;
        if (l.size_of_headers < end_of_skips || l.size_of_headers > size)
                return error_setf(-EBADMSG,
                                  _("%s is not a PE file: its SizeOfHeaders (%" PRIu32 ") does not cover its optional header or lies beyond the end of the file (%zu bytes)."),
                                  what, l.size_of_headers, size);

        if (l.cert_size > 0 && (l.cert_offset < l.size_of_headers || !pe_range_ok(l.cert_offset, l.cert_size, size)))
                return error_setf(-EBADMSG,
                                  _("%s has a malformed signature: its certificate table (%" PRIu32 " bytes at offset 0x%" PRIx32 ") lies outside the file (%zu bytes)."),
                                  what, l.cert_size, l.cert_offset, size);

        l.pe = pe;
        pe = (PeFile) {};
        *ret = l;
        return 0;
}

static int compare_raw_offset(const void *a, const void *b) {
        const PeSection *x = *(const PeSection *const *) a, *y = *(const PeSection *const *) b;

        if (x->raw_offset != y->raw_offset)
                return x->raw_offset < y->raw_offset ? -1 : 1;
        return x < y ? -1 : x > y;
}

static int hash_range(EVP_MD_CTX *ctx, const uint8_t *p, uint64_t from, uint64_t to) {
        if (to <= from)
                return 0;
        return EVP_DigestUpdate(ctx, p + from, (size_t) (to - from)) == 1 ? 0 : -EIO;
}

/* The hash of Microsoft's Authenticode PE specification, "Calculating the PE Image Hash", steps as
 * edk2's HashPeImage() and sbsigntool's image_find_regions() take them. */
static int layout_hash(const void *buf, size_t size, const Layout *l, const char *what, uint8_t ret[static 32]) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        _cleanup_(freep) const PeSection **sorted = NULL;
        const uint8_t *p = buf;
        uint64_t hashed, tail_from, cert_end;
        unsigned n = 0;
        int r;

        ctx = EVP_MD_CTX_new();
        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
                return error_setf(-ENOMEM, "Cannot hash %s: OpenSSL cannot set up SHA-256.", what);

        /* The headers, without CheckSum and without the certificate table's directory entry. */
        r = hash_range(ctx, p, 0, l->checksum);
        if (r >= 0 && l->cert_entry > 0) {
                r = hash_range(ctx, p, l->checksum + 4, l->cert_entry);
                if (r >= 0)
                        r = hash_range(ctx, p, l->cert_entry + DATA_DIRECTORY_SIZE, l->size_of_headers);
        } else if (r >= 0)
                r = hash_range(ctx, p, l->checksum + 4, l->size_of_headers);
        if (r < 0)
                return error_setf(r, "Cannot hash %s: SHA-256 failed.", what);
        hashed = l->size_of_headers;

        /* The sections in file order; pe_parse() checked each lies inside buf. */
        if (l->pe.n_sections > 0) {
                sorted = calloc(l->pe.n_sections, sizeof(*sorted));
                if (!sorted)
                        return error_setf(-ENOMEM, "Cannot hash %s: out of memory.", what);
        }
        for (size_t i = 0; i < l->pe.n_sections; i++)
                if (l->pe.sections[i].raw_size > 0)
                        sorted[n++] = &l->pe.sections[i];
        if (n > 0)
                qsort(sorted, n, sizeof(*sorted), compare_raw_offset);
        for (unsigned i = 0; i < n; i++) {
                r = hash_range(ctx, p, sorted[i]->raw_offset, (uint64_t) sorted[i]->raw_offset + sorted[i]->raw_size);
                if (r < 0)
                        return error_setf(r, "Cannot hash %s: SHA-256 failed.", what);
                hashed += sorted[i]->raw_size;
        }

        /* What follows the sections (as in edk2, it starts where the hashed bytes' count points),
         * without the certificate table. */
        tail_from = hashed;
        cert_end = (uint64_t) l->cert_offset + l->cert_size;
        if (l->cert_size > 0) {
                r = hash_range(ctx, p, tail_from, MIN((uint64_t) size, MAX(tail_from, (uint64_t) l->cert_offset)));
                if (r >= 0)
                        r = hash_range(ctx, p, MAX(tail_from, cert_end), size);
        } else
                r = hash_range(ctx, p, tail_from, size);
        if (r < 0)
                return error_setf(r, "Cannot hash %s: SHA-256 failed.", what);

        if (EVP_DigestFinal_ex(ctx, ret, NULL) != 1)
                return error_setf(-EIO, "Cannot hash %s: SHA-256 failed.", what);
        return 0;
}

int authenticode_sha256(const void *buf, size_t size, const char *what, uint8_t ret[32]) {
        _cleanup_(layout_done) Layout l = {};
        int r;

        if (!what)
                what = "EFI binary";
        r = layout_read(buf, size, what, &l);
        if (r < 0)
                return r;
        return layout_hash(buf, size, &l, what, ret);
}

/* One PKCS#7 SignedData of the certificate table. */
typedef struct Signature {
        PKCS7 *p7;
        const uint8_t *content;  /* SpcIndirectDataContent without its tag and length: what the
                                  * signature's messageDigest covers (inside p7's memory) */
        size_t content_size;
        bool digest_is_sha256;
        uint8_t digest[32];
        X509 *signer;            /* in p7's certificate bag; NULL if the bag lacks it */
} Signature;

typedef struct Signatures {
        Signature sig[SIGNATURES_MAX];
        size_t n;
} Signatures;

static void signatures_done(Signatures *s) {
        for (size_t i = 0; i < s->n; i++)
                PKCS7_free(s->sig[i].p7);
        *s = (Signatures) {};
}

/* One DER element: tag (universal class expected), content pointer and length, advancing *p. */
static bool der_next(const uint8_t **p, const uint8_t *end, int tag, const uint8_t **ret, long *ret_len) {
        const unsigned char *q = *p;
        long len;
        int t, class, flags;

        if (*p >= end)
                return false;
        flags = ASN1_get_object(&q, &len, &t, &class, end - *p);
        if (flags & 0x80 || t != tag || class != V_ASN1_UNIVERSAL || len < 0 || len > end - q)
                return false;
        *ret = q;
        *ret_len = len;
        *p = q + len;
        return true;
}

static int signature_parse(const uint8_t *data, size_t n, const char *what, size_t index, Signature *ret) {
        _cleanup_(PKCS7_freep) PKCS7 *p7 = NULL;
        _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *spc = NULL;
        const unsigned char *q = data;
        const uint8_t *p, *end, *v, *digest_info, *alg, *oid_der;
        long len, digest_info_len, alg_len;
        ASN1_TYPE *other;
        STACK_OF(X509) *signers;
        Signature s = {};
        int nid;

        if (n > LONG_MAX)
                n = LONG_MAX;
        p7 = d2i_PKCS7(NULL, &q, (long) n);
        ERR_clear_error();
        if (!p7 || !PKCS7_type_is_signed(p7) || !p7->d.sign || !p7->d.sign->contents)
                return error_setf(-EBADMSG, _("%s has a malformed signature: certificate %zu is not a PKCS#7 SignedData structure."),
                                  what, index + 1);

        spc = OBJ_txt2obj(SPC_INDIRECT_DATA_OID, 1);
        if (!spc)
                return error_setf(-ENOMEM, "Cannot read the signature of %s: out of memory.", what);
        other = p7->d.sign->contents->d.other;
        if (!p7->d.sign->contents->type || OBJ_cmp(p7->d.sign->contents->type, spc) != 0 ||
            !other || other->type != V_ASN1_SEQUENCE || !other->value.sequence)
                return error_setf(-EBADMSG, _("%s has a malformed signature: certificate %zu does not sign an Authenticode SpcIndirectDataContent."),
                                  what, index + 1);

        /* Authenticode signs with exactly one digest algorithm and one SignerInfo. Anything else
         * is refused here, also because OpenSSL 3.0's PKCS7_verify() leaks its copy of the
         * content when it cannot set up the digests (found by fuzz-authenticode). */
        if (sk_X509_ALGOR_num(p7->d.sign->md_algs) != 1 || sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info) != 1)
                return error_setf(-EBADMSG, _("%s has a malformed signature: certificate %zu does not have exactly one digest algorithm and one signer."),
                                  what, index + 1);
        {
                const ASN1_OBJECT *md_obj;

                X509_ALGOR_get0(&md_obj, NULL, NULL, sk_X509_ALGOR_value(p7->d.sign->md_algs, 0));
                nid = OBJ_obj2nid(md_obj);
                if (nid != NID_sha1 && nid != NID_sha256 && nid != NID_sha384 && nid != NID_sha512)
                        return error_setf(-EBADMSG, _("%s has a malformed signature: certificate %zu uses a digest algorithm other than SHA-1 or SHA-2."),
                                          what, index + 1);
        }

        /* SpcIndirectDataContent ::= SEQUENCE { data SpcAttributeTypeAndOptionalValue,
         *                                       messageDigest DigestInfo }
         * DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier, digest OCTETSTRING } */
        p = ASN1_STRING_get0_data(other->value.sequence);
        end = p + ASN1_STRING_length(other->value.sequence);
        if (!der_next(&p, end, V_ASN1_SEQUENCE, &s.content, &len))
                goto malformed;
        s.content_size = (size_t) len;
        p = s.content;
        end = s.content + len;
        if (!der_next(&p, end, V_ASN1_SEQUENCE, &v, &len) ||
            !der_next(&p, end, V_ASN1_SEQUENCE, &digest_info, &digest_info_len))
                goto malformed;
        p = digest_info;
        end = digest_info + digest_info_len;
        if (!der_next(&p, end, V_ASN1_SEQUENCE, &alg, &alg_len))
                goto malformed;
        {
                const uint8_t *ap = alg, *aend = alg + alg_len, *digest;
                _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *o = NULL;
                long oid_len, digest_len;

                oid_der = ap;
                if (!der_next(&ap, aend, V_ASN1_OBJECT, &v, &oid_len))
                        goto malformed;
                q = oid_der;
                o = d2i_ASN1_OBJECT(NULL, &q, ap - oid_der);
                ERR_clear_error();
                if (!o)
                        goto malformed;
                nid = OBJ_obj2nid(o);

                if (!der_next(&p, end, V_ASN1_OCTET_STRING, &digest, &digest_len))
                        goto malformed;
                s.digest_is_sha256 = nid == NID_sha256 && digest_len == 32;
                if (s.digest_is_sha256)
                        memcpy(s.digest, digest, 32);
        }

        /* The signer: the certificate of the bag whose issuer and serial the SignerInfo names. */
        signers = PKCS7_get0_signers(p7, NULL, 0);
        ERR_clear_error();
        if (signers && sk_X509_num(signers) > 0)
                s.signer = sk_X509_value(signers, 0);
        sk_X509_free(signers);

        s.p7 = TAKE_PTR(p7);
        *ret = s;
        return 0;

malformed:
        return error_setf(-EBADMSG, _("%s has a malformed signature: the SpcIndirectDataContent of certificate %zu cannot be parsed."),
                          what, index + 1);
}

/* Every PKCS_SIGNED_DATA entry of the certificate table. */
static int signatures_read(const void *buf, size_t size, const Layout *l, const char *what, Signatures *ret) {
        const uint8_t *p = buf;
        uint64_t off = l->cert_offset, end = (uint64_t) l->cert_offset + l->cert_size;
        size_t index = 0;
        int r;

        *ret = (Signatures) {};
        if (l->cert_size == 0)
                return 0;

        /* Entries are 8-byte aligned; fewer than a header's bytes left are padding. */
        while (end - off >= WIN_CERTIFICATE_HEADER_SIZE) {
                uint32_t length = pe_le32(p + off);
                uint16_t revision = pe_le16(p + off + 4), type = pe_le16(p + off + 6);

                if (length < WIN_CERTIFICATE_HEADER_SIZE || length > end - off) {
                        signatures_done(ret);
                        return error_setf(-EBADMSG,
                                          _("%s has a malformed signature: certificate %zu claims %" PRIu32 " bytes, but the certificate table has %" PRIu64 " left."),
                                          what, index + 1, length, end - off);
                }
                if (type == WIN_CERT_TYPE_PKCS_SIGNED_DATA &&
                    (revision == WIN_CERT_REVISION_2_0 || revision == WIN_CERT_REVISION_1_0)) {
                        if (ret->n >= SIGNATURES_MAX) {
                                signatures_done(ret);
                                return error_setf(-EBADMSG, _("%s has a malformed signature: it holds more than %u signatures."),
                                                  what, SIGNATURES_MAX);
                        }
                        r = signature_parse(p + off + WIN_CERTIFICATE_HEADER_SIZE, length - WIN_CERTIFICATE_HEADER_SIZE,
                                            what, index, &ret->sig[ret->n]);
                        if (r < 0) {
                                signatures_done(ret);
                                return r;
                        }
                        ret->n++;
                }
                index++;
                off += ROUND_UP((uint64_t) length, 8);
                if (off >= end)
                        break;
        }
        return 0;
}

/* RFC 2253 text of a name. */
static char *name_rfc2253(const X509_NAME *name) {
        _cleanup_(BIO_freep) BIO *b = NULL;
        char *data, *s;
        long n;

        b = BIO_new(BIO_s_mem());
        if (!b || X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) < 0)
                return NULL;
        n = BIO_get_mem_data(b, &data);
        s = n >= 0 ? strndup(data, (size_t) n) : NULL;
        return s;
}

/* The name's CN, else its O, else its RFC 2253 text. */
static char *name_short(const X509_NAME *name) {
        static const int nids[] = { NID_commonName, NID_organizationName };

        for (size_t i = 0; i < ELEMENTSOF(nids); i++) {
                int idx = X509_NAME_get_index_by_NID(name, nids[i], -1);
                unsigned char *utf8 = NULL;
                char *s;
                int n;

                if (idx < 0)
                        continue;
                n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
                if (n < 0) {
                        ERR_clear_error();
                        continue;
                }
                s = strndup((const char *) utf8, (size_t) n);
                OPENSSL_free(utf8);
                return s;
        }
        return name_rfc2253(name);
}

void pe_signature_done(PeSignature *s) {
        if (!s)
                return;
        free(s->signer_subject);
        free(s->signer_common_name);
        free(s->signer_issuer);
        *s = (PeSignature) {};
}

int authenticode_read(const void *buf, size_t size, const char *what, PeSignature *ret) {
        _cleanup_(layout_done) Layout l = {};
        _cleanup_(signatures_done) Signatures sigs = {};
        _cleanup_(pe_signature_done) PeSignature s = {};
        int r;

        if (!what)
                what = "EFI binary";
        r = layout_read(buf, size, what, &l);
        if (r < 0)
                return r;
        r = layout_hash(buf, size, &l, what, s.image_sha256);
        if (r < 0)
                return r;
        r = signatures_read(buf, size, &l, what, &sigs);
        if (r < 0)
                return r;

        s.n_signatures = sigs.n;
        s.present = sigs.n > 0;
        if (s.present) {
                const Signature *first = &sigs.sig[0];

                s.digest_matches = first->digest_is_sha256 && memcmp(first->digest, s.image_sha256, 32) == 0;
                if (first->signer) {
                        s.signer_subject = name_rfc2253(X509_get_subject_name(first->signer));
                        s.signer_common_name = name_short(X509_get_subject_name(first->signer));
                        s.signer_issuer = name_rfc2253(X509_get_issuer_name(first->signer));
                        if (!s.signer_subject || !s.signer_common_name || !s.signer_issuer)
                                return error_setf(-ENOMEM, "Cannot read the signer of %s: out of memory.", what);
                }
        }

        *ret = s;
        s = (PeSignature) {};
        return 0;
}

/* A store as firmware builds one from db: certificates trusted whether they are roots,
 * intermediates or the signer itself, no validity period, no key usage (edk2's Pkcs7Verify()). */
static X509_STORE *store_new(void) {
        X509_STORE *store = X509_STORE_new();

        if (!store)
                return NULL;
        if (X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_NO_CHECK_TIME) != 1 ||
            X509_STORE_set_purpose(store, X509_PURPOSE_ANY) != 1) {
                X509_STORE_free(store);
                return NULL;
        }
        return store;
}

static int store_add_der(X509_STORE *store, const void *der, size_t der_size) {
        _cleanup_(X509_freep) X509 *x = NULL;
        const unsigned char *q = der;

        if (!der || der_size == 0 || der_size > LONG_MAX)
                return 0;
        x = d2i_X509(NULL, &q, (long) der_size);
        if (!x) {
                /* An entry that does not parse cannot trust anything (firmware skips it too). */
                ERR_clear_error();
                return 0;
        }
        if (X509_STORE_add_cert(store, x) != 1)
                ERR_clear_error(); /* a duplicate */
        return 1;
}

/* Whether the signature verifies over its content; with store also whether its signer chains to a
 * certificate of store. */
static bool signature_verifies(const Signature *s, X509_STORE *store) {
        _cleanup_(X509_STORE_freep) X509_STORE *empty = NULL;
        _cleanup_(BIO_freep) BIO *in = NULL;
        int flags = PKCS7_BINARY, r;

        if (!store) {
                empty = store_new();
                if (!empty)
                        return false;
                store = empty;
                flags |= PKCS7_NOVERIFY;
        }
        in = BIO_new_mem_buf(s->content, (int) MIN(s->content_size, (size_t) INT_MAX));
        if (!in)
                return false;
        r = PKCS7_verify(s->p7, NULL, store, in, NULL, flags);
        ERR_clear_error();
        return r == 1;
}

static bool hash_listed(const FirmwareSigDb *db, const uint8_t h[static 32]) {
        if (!db)
                return false;
        for (size_t i = 0; i < db->n_sha256; i++)
                if (memcmp(db->sha256[i], h, 32) == 0)
                        return true;
        return false;
}

/* The name of db's i-th certificate, for a sentence. */
static char *cert_display_name(const FirmwareCert *c) {
        _cleanup_(X509_freep) X509 *x = NULL;
        const unsigned char *q = c->der;

        if (c->common_name)
                return strdup(c->common_name);
        if (c->der && c->der_size > 0 && c->der_size <= LONG_MAX)
                x = d2i_X509(NULL, &q, (long) c->der_size);
        ERR_clear_error();
        return x ? name_short(X509_get_subject_name(x)) : strdup("?");
}

/* The first certificate of db the signature chains to (index), or -1. */
static ssize_t signature_trusted_by(const Signature *s, const FirmwareSigDb *db) {
        if (!db)
                return -1;
        for (size_t i = 0; i < db->n_certs; i++) {
                _cleanup_(X509_STORE_freep) X509_STORE *store = store_new();

                if (!store)
                        return -1;
                if (store_add_der(store, db->certs[i].der, db->certs[i].der_size) <= 0)
                        continue;
                if (signature_verifies(s, store))
                        return (ssize_t) i;
        }
        return -1;
}

static char *signer_name(const Signature *s) {
        return s->signer ? name_short(X509_get_subject_name(s->signer)) : strdup(_("an unknown signer"));
}

static int set_reason(char **ret_reason, const char *fmt, ...) _printf_(2, 3);
static int set_reason(char **ret_reason, const char *fmt, ...) {
        va_list ap;
        char *s = NULL;

        if (!ret_reason)
                return 0;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        *ret_reason = s;
        return 0;
}

int authenticode_trusted(const void *buf, size_t size, const char *what, const FirmwareSigDb *db,
                         const FirmwareSigDb *dbx, char **ret_reason) {
        _cleanup_(layout_done) Layout l = {};
        _cleanup_(signatures_done) Signatures sigs = {};
        _cleanup_(freep) char *signer = NULL, *by = NULL;
        const Signature *first;
        uint8_t h[32];
        ssize_t k;
        int r;

        if (!what)
                what = "EFI binary";
        if (ret_reason)
                *ret_reason = NULL;

        r = layout_read(buf, size, what, &l);
        if (r < 0)
                return r;
        r = layout_hash(buf, size, &l, what, h);
        if (r < 0)
                return r;
        r = signatures_read(buf, size, &l, what, &sigs);
        if (r < 0)
                return r;

        /* dbx first: a forbidden hash or signer wins over anything db says. */
        if (hash_listed(dbx, h)) {
                set_reason(ret_reason, _("%s is forbidden by dbx (its hash)."), what);
                return 0;
        }
        for (size_t i = 0; i < sigs.n; i++) {
                k = signature_trusted_by(&sigs.sig[i], dbx);
                if (k >= 0) {
                        by = cert_display_name(&dbx->certs[k]);
                        set_reason(ret_reason, _("%s is forbidden by dbx (the certificate %s in its signer's chain)."),
                                   what, by ?: "?");
                        return 0;
                }
        }

        if (hash_listed(db, h)) {
                set_reason(ret_reason, _("%s is allowed by db (its hash)."), what);
                return 1;
        }

        if (sigs.n == 0) {
                set_reason(ret_reason, _("%s is not signed."), what);
                return 0;
        }

        for (size_t i = 0; i < sigs.n; i++) {
                const Signature *s = &sigs.sig[i];

                if (!s->digest_is_sha256 || memcmp(s->digest, h, 32) != 0)
                        continue;
                k = signature_trusted_by(s, db);
                if (k < 0)
                        continue;
                signer = signer_name(s);
                by = cert_display_name(&db->certs[k]);
                if (streq_ptr(signer, by))
                        set_reason(ret_reason, _("%s is signed by %s, which db trusts."), what, signer);
                else
                        set_reason(ret_reason, _("%s is signed by %s, which db trusts through %s."),
                                   what, signer ?: "?", by ?: "?");
                return 1;
        }

        /* Not trusted: say why, after the first signature. */
        first = &sigs.sig[0];
        signer = signer_name(first);
        if (!first->digest_is_sha256)
                set_reason(ret_reason, _("%s is signed by %s with a digest other than SHA-256, which imprint cannot check."),
                           what, signer ?: "?");
        else if (memcmp(first->digest, h, 32) != 0)
                set_reason(ret_reason, _("%s was changed after it was signed: its contents no longer match the signature by %s."),
                           what, signer ?: "?");
        else if (!signature_verifies(first, NULL))
                set_reason(ret_reason, _("%s carries a signature by %s that does not verify."), what, signer ?: "?");
        else
                set_reason(ret_reason, _("%s is signed by %s, which db does not trust."), what, signer ?: "?");
        return 0;
}

/* The section called name. Images keep names longer than 8 characters as "/N": N is an offset into
 * the COFF string table after the symbol table, which is how shim's .vendor_cert is stored; GNU
 * objcopy --add-section into an image cuts such a name to its first 8 characters instead, and that
 * is accepted too. */
static const PeSection *find_section_long(const void *buf, size_t size, const PeFile *pe, const char *name) {
        const uint8_t *p = buf;
        uint64_t coff, strtab;
        size_t n = strlen(name);

        coff = (uint64_t) pe_le32(p + DOS_E_LFANEW) + 4; /* pe_parse() checked the COFF header is inside buf */
        strtab = (uint64_t) pe_le32(p + coff + 8) + (uint64_t) pe_le32(p + coff + 12) * 18;

        for (size_t i = 0; i < pe->n_sections; i++) {
                const char *s = pe->sections[i].name;
                uint64_t off = 0;
                size_t k;

                if (s[0] != '/') {
                        if (strncmp(s, name, 8) == 0)
                                return &pe->sections[i];
                        continue;
                }
                for (k = 1; k < 8 && s[k] >= '0' && s[k] <= '9'; k++)
                        off = off * 10 + (uint64_t) (s[k] - '0');
                if (k == 1 || (k < 8 && s[k] != 0))
                        continue;
                if (pe_range_ok(strtab + off, n + 1, size) && memcmp(p + strtab + off, name, n + 1) == 0)
                        return &pe->sections[i];
        }
        return NULL;
}

int authenticode_shim_vendor_db(const void *buf, size_t size, const char *what, FirmwareSigDb *ret) {
        _cleanup_(pe_file_done) PeFile pe = {};
        _cleanup_(X509_freep) X509 *x = NULL;
        _cleanup_(freep) FirmwareCert *certs = NULL;
        const PeSection *s;
        const uint8_t *data, *cert;
        const unsigned char *q;
        size_t n;
        uint32_t cert_size, cert_offset;
        int r;

        if (!what)
                what = "shim";
        r = pe_parse(buf, size, what, &pe);
        if (r < 0)
                return r;
        s = find_section_long(buf, size, &pe, ".vendor_cert");
        if (!s) {
                *ret = (FirmwareSigDb) {};
                return 0;
        }
        r = pe_section_view(buf, size, s, &data, &n);
        if (r < 0)
                return error_prefixf(r, _("Cannot read the vendor certificate of %s"), what);
        if (n < SHIM_CERT_TABLE_SIZE)
                return error_setf(-EBADMSG, _("%s has a malformed .vendor_cert section: it is %zu bytes, too short for shim's certificate table."),
                                  what, n);

        /* struct cert_table { vendor_authorized_size, vendor_deauthorized_size,
         *                     vendor_authorized_offset, vendor_deauthorized_offset } */
        cert_size = pe_le32(data);
        cert_offset = pe_le32(data + 8);
        if (cert_size == 0) {
                /* A shim built without VENDOR_CERT_FILE trusts only db and MOK. */
                *ret = (FirmwareSigDb) {};
                return 0;
        }
        if (!pe_range_ok(cert_offset, cert_size, n))
                return error_setf(-EBADMSG,
                                  _("%s has a malformed .vendor_cert section: its certificate (%" PRIu32 " bytes at offset %" PRIu32 ") lies outside the section (%zu bytes)."),
                                  what, cert_size, cert_offset, n);
        cert = data + cert_offset;
        q = cert;
        x = d2i_X509(NULL, &q, (long) cert_size);
        ERR_clear_error();
        if (!x)
                return error_setf(-EBADMSG,
                                  _("%s has a malformed .vendor_cert section: its vendor certificate is not a DER X.509 certificate (a vendor database in EFI_SIGNATURE_LIST form is not supported)."),
                                  what);

        certs = calloc(1, sizeof(FirmwareCert));
        if (!certs)
                return error_setf(-ENOMEM, "Cannot read the vendor certificate of %s: out of memory.", what);
        strcpy(certs[0].owner, SHIM_LOCK_GUID_STR);
        certs[0].subject = name_rfc2253(X509_get_subject_name(x));
        certs[0].common_name = name_short(X509_get_subject_name(x));
        certs[0].der = malloc(cert_size);
        if (!certs[0].subject || !certs[0].common_name || !certs[0].der) {
                free(certs[0].subject);
                free(certs[0].common_name);
                free(certs[0].der);
                return error_setf(-ENOMEM, "Cannot read the vendor certificate of %s: out of memory.", what);
        }
        memcpy(certs[0].der, cert, cert_size);
        certs[0].der_size = cert_size;

        *ret = (FirmwareSigDb) {
                .present = true,
                .size = cert_size,
                .certs = TAKE_PTR(certs),
                .n_certs = 1,
        };
        return 1;
}
