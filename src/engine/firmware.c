/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "efivars.h"
#include "error.h"
#include "firmware.h"
#include "i18n.h"
#include "string-table.h"

/* EFI_SIGNATURE_LIST (UEFI 2.10 §32.4.1): SignatureType GUID, SignatureListSize u32,
 * SignatureHeaderSize u32, SignatureSize u32, then SignatureHeaderSize bytes of header, then
 * entries of SignatureSize bytes each: EFI_SIGNATURE_DATA = SignatureOwner GUID + data. All
 * little-endian. Fields are assembled byte by byte: the buffer is untrusted and unaligned. */
#define ESL_HEADER_SIZE 28
#define ESL_LIST_SIZE 16
#define ESL_HEADER_SIZE_FIELD 20
#define ESL_SIGNATURE_SIZE 24
#define ESD_OWNER_SIZE 16
#define SHA256_SIZE 32

/* EFI_VARIABLE_AUTHENTICATION_2 (UEFI 2.10 §8.2.2): EFI_TIME (16 bytes), then
 * WIN_CERTIFICATE_UEFI_GUID: dwLength u32 (the whole structure), wRevision u16, wCertificateType
 * u16 (WIN_CERT_TYPE_EFI_GUID 0x0EF1), CertType GUID (EFI_CERT_TYPE_PKCS7_GUID), CertData. */
#define EFI_TIME_SIZE 16
#define WIN_CERTIFICATE_HEADER_SIZE 8
#define WIN_CERT_TYPE_EFI_GUID 0x0EF1
#define WIN_CERTIFICATE_UEFI_GUID_HEADER_SIZE (WIN_CERTIFICATE_HEADER_SIZE + 16)

/* GUIDs in their on-disk form (Data1 u32, Data2 u16, Data3 u16 little-endian, Data4[8] as is). */
static const uint8_t efi_cert_x509_guid[16] = { /* a5c059a1-94e4-4aa7-87b5-ab155c2bf072 */
        0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72,
};
static const uint8_t efi_cert_sha256_guid[16] = { /* c1c41626-504c-4092-aca9-41f936934328 */
        0x26, 0x16, 0xc4, 0xc1, 0x4c, 0x50, 0x92, 0x40, 0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28,
};
static const uint8_t efi_cert_type_pkcs7_guid[16] = { /* 4aafd29d-68df-49ee-8aa9-347d375665a7 */
        0x9d, 0xd2, 0xaf, 0x4a, 0xdf, 0x68, 0xee, 0x49, 0x8a, 0xa9, 0x34, 0x7d, 0x37, 0x56, 0x65, 0xa7,
};

static const char *const firmware_mode_table[_FIRMWARE_MODE_MAX] = {
        [FIRMWARE_NOT_UEFI] = "not-uefi",
        [FIRMWARE_NO_SECURE_BOOT] = "no-secure-boot",
        [FIRMWARE_SETUP] = "setup",
        [FIRMWARE_AUDIT] = "audit",
        [FIRMWARE_USER_OFF] = "user-off",
        [FIRMWARE_USER_ON] = "user",
        [FIRMWARE_DEPLOYED] = "deployed",
};

DEFINE_STRING_TABLE_LOOKUP(firmware_mode, FirmwareMode);

static uint16_t get_le16(const uint8_t *p) {
        return (uint16_t) (p[0] | (p[1] << 8));
}

static uint32_t get_le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static void guid_to_string(const uint8_t g[static 16], char ret[static 37]) {
        snprintf(ret, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6],
                 g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

static void firmware_cert_done(FirmwareCert *c) {
        free(c->subject);
        free(c->common_name);
        free(c->der);
        *c = (FirmwareCert) {};
}

void firmware_sigdb_done(FirmwareSigDb *db) {
        if (!db)
                return;
        for (size_t i = 0; i < db->n_certs; i++)
                firmware_cert_done(&db->certs[i]);
        free(db->certs);
        free(db->sha256);
        *db = (FirmwareSigDb) {};
}

void firmware_state_done(FirmwareState *s) {
        if (!s)
                return;
        firmware_sigdb_done(&s->pk);
        firmware_sigdb_done(&s->kek);
        firmware_sigdb_done(&s->db);
        firmware_sigdb_done(&s->dbx);
        free(s->root);
        *s = (FirmwareState) { .mode = FIRMWARE_NOT_UEFI };
}

/* The UTF-8 text of the last entry of nid in name, or NULL. */
static int name_entry_utf8(const X509_NAME *name, int nid, char **ret) {
        const X509_NAME_ENTRY *e;
        unsigned char *utf8 = NULL;
        char *s;
        int i, n;

        *ret = NULL;
        i = X509_NAME_get_index_by_NID(name, nid, -1);
        if (i < 0)
                return 0;
        /* The most specific one: RFC 2253 prints the last RDN first. */
        for (int j = i; j >= 0; j = X509_NAME_get_index_by_NID(name, nid, j))
                i = j;
        e = X509_NAME_get_entry(name, i);
        if (!e)
                return 0;
        n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
        if (n < 0)
                return 0; /* not representable: no short name, not an error */
        s = strndup((const char *) utf8, (size_t) n);
        OPENSSL_free(utf8);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Fills subject and common_name from the DER; a DER that does not parse leaves both NULL. */
static int cert_describe(FirmwareCert *c) {
        const unsigned char *p = c->der;
        X509 *x;
        BIO *bio = NULL;
        char *buf;
        long n;
        int r = 0;

        x = d2i_X509(NULL, &p, (long) c->der_size);
        if (!x)
                return 0;

        bio = BIO_new(BIO_s_mem());
        if (!bio) {
                r = -ENOMEM;
                goto finish;
        }
        if (X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) < 0)
                goto finish;
        n = BIO_get_mem_data(bio, &buf);
        if (n < 0)
                goto finish;
        c->subject = strndup(buf, (size_t) n);
        if (!c->subject) {
                r = -ENOMEM;
                goto finish;
        }

        r = name_entry_utf8(X509_get_subject_name(x), NID_commonName, &c->common_name);
        if (r >= 0 && !c->common_name)
                r = name_entry_utf8(X509_get_subject_name(x), NID_organizationName, &c->common_name);

finish:
        BIO_free(bio);
        X509_free(x);
        return r;
}

int firmware_sigdb_parse(const void *data, size_t size, const char *what, FirmwareSigDb *ret) {
        const uint8_t *buf = data;
        FirmwareSigDb db = { .present = true, .size = size };
        size_t off = 0, list = 0;
        int r;

        if (!ret || (!data && size > 0))
                return error_setf(-EINVAL, "firmware_sigdb_parse() needs data and an output argument.");
        what = what ?: "signature database";

        while (off < size) {
                const uint8_t *h = buf + off;
                uint32_t list_size, header_size, sig_size;
                size_t n_entries;
                bool x509, sha256;

                list++;
                if (size - off < ESL_HEADER_SIZE) {
                        r = error_setf(-EBADMSG, "%s is malformed: signature list %zu is truncated (%zu bytes left, a list header needs %d).",
                                       what, list, size - off, ESL_HEADER_SIZE);
                        goto fail;
                }
                list_size = get_le32(h + ESL_LIST_SIZE);
                header_size = get_le32(h + ESL_HEADER_SIZE_FIELD);
                sig_size = get_le32(h + ESL_SIGNATURE_SIZE);

                if (list_size > size - off) {
                        r = error_setf(-EBADMSG, "%s is malformed: signature list %zu claims %" PRIu32 " bytes, but only %zu are left.",
                                       what, list, list_size, size - off);
                        goto fail;
                }
                if ((uint64_t) ESL_HEADER_SIZE + header_size > list_size) {
                        r = error_setf(-EBADMSG, "%s is malformed: signature list %zu is %" PRIu32 " bytes, too small for its headers (%d + %" PRIu32 ").",
                                       what, list, list_size, ESL_HEADER_SIZE, header_size);
                        goto fail;
                }
                if (sig_size <= ESD_OWNER_SIZE) {
                        r = error_setf(-EBADMSG, "%s is malformed: signature list %zu has entries of %" PRIu32 " bytes, not more than the %d-byte owner.",
                                       what, list, sig_size, ESD_OWNER_SIZE);
                        goto fail;
                }
                if ((list_size - ESL_HEADER_SIZE - header_size) % sig_size != 0) {
                        r = error_setf(-EBADMSG, "%s is malformed: signature list %zu holds %" PRIu32 " bytes of entries, not a multiple of its entry size %" PRIu32 ".",
                                       what, list, list_size - ESL_HEADER_SIZE - header_size, sig_size);
                        goto fail;
                }
                n_entries = (list_size - ESL_HEADER_SIZE - header_size) / sig_size;

                x509 = memcmp(h, efi_cert_x509_guid, 16) == 0;
                sha256 = memcmp(h, efi_cert_sha256_guid, 16) == 0;
                if (sha256 && sig_size != ESD_OWNER_SIZE + SHA256_SIZE) {
                        r = error_setf(-EBADMSG, "%s is malformed: signature list %zu holds SHA-256 hashes in entries of %" PRIu32 " bytes, not %d.",
                                       what, list, sig_size, ESD_OWNER_SIZE + SHA256_SIZE);
                        goto fail;
                }
                if ((sha256 || x509) && header_size != 0) {
                        r = error_setf(-EBADMSG, "%s is malformed: signature list %zu has a %" PRIu32 "-byte header, which its type does not have.",
                                       what, list, header_size);
                        goto fail;
                }

                if (x509 && n_entries > 0) {
                        FirmwareCert *certs = reallocarray(db.certs, db.n_certs + n_entries, sizeof(FirmwareCert));
                        if (!certs) {
                                r = -ENOMEM;
                                goto oom;
                        }
                        db.certs = certs;
                } else if (sha256 && n_entries > 0) {
                        uint8_t (*hashes)[32] = reallocarray(db.sha256, db.n_sha256 + n_entries, 32);
                        if (!hashes) {
                                r = -ENOMEM;
                                goto oom;
                        }
                        db.sha256 = hashes;
                }

                for (size_t i = 0; i < n_entries; i++) {
                        const uint8_t *e = h + ESL_HEADER_SIZE + header_size + i * sig_size;

                        if (x509) {
                                FirmwareCert *c = &db.certs[db.n_certs];

                                *c = (FirmwareCert) { .der_size = sig_size - ESD_OWNER_SIZE };
                                guid_to_string(e, c->owner);
                                c->der = malloc(c->der_size);
                                if (!c->der) {
                                        r = -ENOMEM;
                                        goto oom;
                                }
                                db.n_certs++;
                                memcpy(c->der, e + ESD_OWNER_SIZE, c->der_size);
                                r = cert_describe(c);
                                if (r < 0)
                                        goto oom;
                        } else if (sha256)
                                memcpy(db.sha256[db.n_sha256++], e + ESD_OWNER_SIZE, SHA256_SIZE);
                        else
                                db.n_other++;
                }

                off += list_size;
        }

        *ret = db;
        return 0;

oom:
        r = error_setf(r, "Out of memory reading %s.", what);
fail:
        firmware_sigdb_done(&db);
        return r;
}

int firmware_auth_payload(const void *data, size_t size, const char *what, size_t *ret_offset) {
        const uint8_t *buf = data;
        uint32_t length;

        if (!ret_offset || (!data && size > 0))
                return error_setf(-EINVAL, "firmware_auth_payload() needs data and an output argument.");
        what = what ?: "authenticated variable";

        if (size < EFI_TIME_SIZE + WIN_CERTIFICATE_UEFI_GUID_HEADER_SIZE)
                return error_setf(-EBADMSG, "%s is not an authenticated variable: %zu bytes are too few for its EFI_VARIABLE_AUTHENTICATION_2 header.",
                                  what, size);
        length = get_le32(buf + EFI_TIME_SIZE);
        if (get_le16(buf + EFI_TIME_SIZE + 6) != WIN_CERT_TYPE_EFI_GUID)
                return error_setf(-EBADMSG, "%s is not an authenticated variable: its certificate type is 0x%04x, not WIN_CERT_TYPE_EFI_GUID (0x0EF1).",
                                  what, get_le16(buf + EFI_TIME_SIZE + 6));
        if (memcmp(buf + EFI_TIME_SIZE + WIN_CERTIFICATE_HEADER_SIZE, efi_cert_type_pkcs7_guid, 16) != 0)
                return error_setf(-EBADMSG, "%s is not an authenticated variable: its certificate is not of type EFI_CERT_TYPE_PKCS7_GUID.", what);
        if (length < WIN_CERTIFICATE_UEFI_GUID_HEADER_SIZE || length > size - EFI_TIME_SIZE)
                return error_setf(-EBADMSG, "%s is malformed: its certificate claims %" PRIu32 " bytes, but %zu follow the time stamp.",
                                  what, length, size - EFI_TIME_SIZE);

        *ret_offset = EFI_TIME_SIZE + length;
        return 0;
}

/* Reads a Secure Boot mode variable: one byte, 0 or 1. Absent: false (returns 0); present: 1. */
static int read_flag(const EfiVars *v, const char *name, bool *ret) {
        _cleanup_(freep) uint8_t *data = NULL;
        size_t size;
        int r;

        r = efi_get_variable(v, name, (void **) &data, &size);
        if (r == -ENOENT) {
                *ret = false;
                return 0;
        }
        if (r < 0)
                return r;
        if (size != 1 || data[0] > 1)
                return error_setf(-EBADMSG, "EFI variable %s in %s is malformed: it holds %zu bytes%s, not one byte 0 or 1.",
                                  name, v->root, size, size == 1 ? " (a value above 1)" : "");
        *ret = data[0];
        return 1;
}

static int read_sigdb(const EfiVars *v, const char *name, FirmwareSigDb *ret) {
        _cleanup_(freep) uint8_t *data = NULL;
        _cleanup_(freep) char *what = NULL;
        size_t size;
        int r;

        r = efi_get_variable(v, name, (void **) &data, &size);
        if (r == -ENOENT) {
                *ret = (FirmwareSigDb) {};
                return 0;
        }
        if (r < 0)
                return r;
        if (asprintf(&what, "EFI variable %s in %s", name, v->root) < 0)
                return error_setf(-ENOMEM, "Out of memory reading EFI variable %s.", name);
        return firmware_sigdb_parse(data, size, what, ret);
}

int firmware_read(const char *root, FirmwareState *ret) {
        FirmwareState s = { .mode = FIRMWARE_NOT_UEFI };
        bool has_secure_boot;
        struct stat st;
        EfiVars v;
        int r;

        if (!ret)
                return error_setf(-EINVAL, "firmware_read() needs an output argument.");
        if (!root)
                root = getenv(FIRMWARE_EFIVARFS_ENV);
        if (isempty(root))
                root = EFIVARS_ROOT_DEFAULT;

        s.root = strdup(root);
        if (!s.root)
                return error_setf(-ENOMEM, "Out of memory reading the firmware's state.");
        v = (EfiVars) { .root = s.root };

        if (stat(root, &st) < 0) {
                if (errno != ENOENT && errno != ENOTDIR) {
                        r = error_setf(-errno, "Cannot read the EFI variable directory %s: %m", root);
                        goto fail;
                }
                *ret = s; /* not booted through UEFI, or efivarfs not mounted */
                return 0;
        }
        if (!S_ISDIR(st.st_mode)) {
                r = error_setf(-ENOTDIR, "The EFI variable directory %s is not a directory.", root);
                goto fail;
        }

        r = read_flag(&v, "SecureBoot-" EFI_GLOBAL_VARIABLE_GUID_STR, &s.secure_boot);
        if (r < 0)
                goto fail;
        has_secure_boot = r > 0;
        r = read_flag(&v, "SetupMode-" EFI_GLOBAL_VARIABLE_GUID_STR, &s.setup_mode);
        if (r < 0)
                goto fail;
        r = read_flag(&v, "AuditMode-" EFI_GLOBAL_VARIABLE_GUID_STR, &s.audit_mode);
        if (r < 0)
                goto fail;
        r = read_flag(&v, "DeployedMode-" EFI_GLOBAL_VARIABLE_GUID_STR, &s.deployed_mode);
        if (r < 0)
                goto fail;

        r = read_sigdb(&v, "PK-" EFI_GLOBAL_VARIABLE_GUID_STR, &s.pk);
        if (r < 0)
                goto fail;
        r = read_sigdb(&v, "KEK-" EFI_GLOBAL_VARIABLE_GUID_STR, &s.kek);
        if (r < 0)
                goto fail;
        r = read_sigdb(&v, "db-" EFI_IMAGE_SECURITY_DATABASE_GUID_STR, &s.db);
        if (r < 0)
                goto fail;
        r = read_sigdb(&v, "dbx-" EFI_IMAGE_SECURITY_DATABASE_GUID_STR, &s.dbx);
        if (r < 0)
                goto fail;

        if (!has_secure_boot)
                s.mode = FIRMWARE_NO_SECURE_BOOT;
        else if (s.audit_mode)
                /* Audit mode has SetupMode 1 too (UEFI 2.10 §32.3): checked first, so that it is
                 * never taken for setup mode, where keys are enrolled. */
                s.mode = FIRMWARE_AUDIT;
        else if (s.setup_mode)
                s.mode = FIRMWARE_SETUP;
        else if (s.secure_boot)
                s.mode = s.deployed_mode ? FIRMWARE_DEPLOYED : FIRMWARE_USER_ON;
        else
                s.mode = FIRMWARE_USER_OFF;

        *ret = s;
        return 0;

fail:
        firmware_state_done(&s);
        return r;
}

bool firmware_enforcing(const FirmwareState *s) {
        return s && (s->mode == FIRMWARE_USER_ON || s->mode == FIRMWARE_DEPLOYED);
}

/* "A, B, C and 2 more" of db's certificates (their CN, else subject), or "no certificate". */
static char *trusted_names(const FirmwareSigDb *db) {
        char *list = NULL, *t;
        size_t shown = MIN(db->n_certs, (size_t) 3);

        if (db->n_certs == 0)
                /* TRANSLATORS: what db trusts when it holds no certificate ("db trusts no certificate") */
                return strdup(_("no certificate"));

        for (size_t i = 0; i < shown; i++) {
                const FirmwareCert *c = &db->certs[i];
                const char *name = c->common_name ?: c->subject ?: _("an unreadable certificate");

                if (asprintf(&t, "%s%s%s", list ?: "", list ? ", " : "", name) < 0) {
                        free(list);
                        return NULL;
                }
                free(list);
                list = t;
        }
        if (db->n_certs > shown) {
                size_t more = db->n_certs - shown;

                /* TRANSLATORS: the first certificates' names, then how many more db holds */
                if (asprintf(&t, ngettext("%s and %zu more", "%s and %zu more", more), list, more) < 0)
                        t = NULL;
                free(list);
                list = t;
        }
        return list;
}

char *firmware_state_describe(const FirmwareState *s) {
        _cleanup_(freep) char *names = NULL, *dbx = NULL;
        char *ret = NULL;
        size_t n_dbx;

        if (!s)
                return NULL;

        switch (s->mode) {
        case FIRMWARE_NOT_UEFI:
                return strdup(_("This machine did not boot through UEFI."));
        case FIRMWARE_NO_SECURE_BOOT:
                return strdup(_("The firmware has no Secure Boot; the machine is not protected by Secure Boot."));
        case FIRMWARE_SETUP:
                return strdup(_("The firmware is in setup mode: Secure Boot is off and keys can be enrolled."));
        case FIRMWARE_AUDIT:
                return strdup(_("The firmware is in audit mode: signatures are checked and logged, but not enforced."));
        case FIRMWARE_USER_OFF:
                return strdup(_("Secure Boot is off; the machine is not protected by Secure Boot."));
        case FIRMWARE_USER_ON:
        case FIRMWARE_DEPLOYED:
                break;
        default:
                return NULL;
        }

        names = trusted_names(&s->db);
        if (!names)
                return NULL;
        n_dbx = s->dbx.n_certs + s->dbx.n_sha256 + s->dbx.n_other;
        if (asprintf(&dbx, ngettext("dbx has %zu entry.", "dbx has %zu entries.", n_dbx), n_dbx) < 0)
                return NULL;
        /* TRANSLATORS: the second %s is "dbx has N entries." */
        if (asprintf(&ret, s->mode == FIRMWARE_DEPLOYED ? _("Secure Boot is on (deployed mode); db trusts %s; %s")
                                                        : _("Secure Boot is on (user mode); db trusts %s; %s"),
                     names, dbx) < 0)
                return NULL;
        return ret;
}

static json_object *sigdb_to_json(const FirmwareSigDb *db) {
        json_object *j, *certs;

        j = json_object_new_object();
        certs = json_object_new_array();
        if (!j || !certs) {
                json_object_put(j);
                json_object_put(certs);
                return NULL;
        }
        json_object_object_add(j, "present", json_object_new_boolean(db->present));
        json_object_object_add(j, "size", json_object_new_int64((int64_t) db->size));
        for (size_t i = 0; i < db->n_certs; i++) {
                const FirmwareCert *c = &db->certs[i];
                uint8_t md[32];
                char hex[65];
                json_object *o = json_object_new_object();

                if (!o || EVP_Digest(c->der, c->der_size, md, NULL, EVP_sha256(), NULL) != 1) {
                        json_object_put(o);
                        json_object_put(certs);
                        json_object_put(j);
                        return NULL;
                }
                for (size_t k = 0; k < 32; k++)
                        snprintf(hex + 2 * k, 3, "%02x", md[k]);
                json_object_object_add(o, "owner", json_object_new_string(c->owner));
                json_object_object_add(o, "subject", c->subject ? json_object_new_string(c->subject) : NULL);
                json_object_object_add(o, "commonName", c->common_name ? json_object_new_string(c->common_name) : NULL);
                json_object_object_add(o, "sha256", json_object_new_string(hex));
                json_object_array_add(certs, o);
        }
        json_object_object_add(j, "certificates", certs);
        json_object_object_add(j, "hashes", json_object_new_int64((int64_t) db->n_sha256));
        json_object_object_add(j, "other", json_object_new_int64((int64_t) db->n_other));
        return j;
}

json_object *firmware_state_to_json(const FirmwareState *s) {
        static const struct {
                const char *key;
                size_t offset;
        } dbs[] = {
                { "pk", offsetof(FirmwareState, pk) },
                { "kek", offsetof(FirmwareState, kek) },
                { "db", offsetof(FirmwareState, db) },
                { "dbx", offsetof(FirmwareState, dbx) },
        };
        json_object *j;

        if (!s)
                return NULL;
        j = json_object_new_object();
        if (!j)
                return NULL;
        json_object_object_add(j, "mode", json_object_new_string(firmware_mode_to_string(s->mode) ?: "invalid"));
        json_object_object_add(j, "secureBoot", json_object_new_boolean(s->secure_boot));
        json_object_object_add(j, "setupMode", json_object_new_boolean(s->setup_mode));
        json_object_object_add(j, "auditMode", json_object_new_boolean(s->audit_mode));
        json_object_object_add(j, "deployedMode", json_object_new_boolean(s->deployed_mode));
        for (size_t i = 0; i < ELEMENTSOF(dbs); i++) {
                json_object *d = sigdb_to_json((const FirmwareSigDb *) ((const uint8_t *) s + dbs[i].offset));
                if (!d) {
                        json_object_put(j);
                        return NULL;
                }
                json_object_object_add(j, dbs[i].key, d);
        }
        return j;
}
