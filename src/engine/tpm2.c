/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The systemd-tpm2 token: sealing and unsealing with tpm2-tss ESAPI. Every structure that decides
 * whether stock systemd can unlock what we seal (the primary template, the sealed object's public
 * area, the policy steps and their order, the blob and token encodings) follows formats.md §3 and
 * the systemd sources it cites; the comments name the section. */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "base64.h"
#include "error.h"
#include "i18n.h"
#include "json-strict.h"
#include "log.h"
#include "tpm2.h"

struct Tpm2Context {
        TSS2_TCTI_CONTEXT *tcti;
        ESYS_CONTEXT *esys;
};

/* The legacy templates: S252 tpm2_make_primary(), identical to S257 tpm2_get_legacy_template()
 * ("Do not modify", formats.md §3.3). The unique field stays empty and the sensitive area,
 * outside info and creation PCRs are empty too, so the owner seed always yields the same key. */
static const TPM2B_PUBLIC legacy_primary_ecc = {
        .publicArea = {
                .type = TPM2_ALG_ECC,
                .nameAlg = TPM2_ALG_SHA256,
                .objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM |
                                    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                    TPMA_OBJECT_USERWITHAUTH,
                .parameters.eccDetail = {
                        .symmetric = {
                                .algorithm = TPM2_ALG_AES,
                                .keyBits.aes = 128,
                                .mode.aes = TPM2_ALG_CFB,
                        },
                        .scheme.scheme = TPM2_ALG_NULL,
                        .curveID = TPM2_ECC_NIST_P256,
                        .kdf.scheme = TPM2_ALG_NULL,
                },
        },
};

static const TPM2B_PUBLIC legacy_primary_rsa = {
        .publicArea = {
                .type = TPM2_ALG_RSA,
                .nameAlg = TPM2_ALG_SHA256,
                .objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM |
                                    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                    TPMA_OBJECT_USERWITHAUTH,
                .parameters.rsaDetail = {
                        .symmetric = {
                                .algorithm = TPM2_ALG_AES,
                                .keyBits.aes = 128,
                                .mode.aes = TPM2_ALG_CFB,
                        },
                        .scheme.scheme = TPM2_ALG_NULL,
                        .keyBits = 2048,
                        .exponent = 0, /* the TPM's default, 65537 */
                },
        },
};

/* Sessions: AES-128-CFB parameter encryption with SHA256 HMACs, as S252 tpm2_make_encryption_session()
 * and tpm2_make_policy_session(). */
static const TPMT_SYM_DEF session_symmetric = {
        .algorithm = TPM2_ALG_AES,
        .keyBits.aes = 128,
        .mode.aes = TPM2_ALG_CFB,
};

#define TAKE_ESYS_TR(h)                                  \
        ({                                               \
                ESYS_TR _h_ = (h);                       \
                (h) = ESYS_TR_NONE;                      \
                _h_;                                     \
        })

/* Unsealing starts over when a PCR changes between PolicyPCR and Unseal (S252 RETRY_UNSEAL_MAX). */
#define UNSEAL_RETRIES 30U

/* ---- small helpers ---------------------------------------------------------------------------- */

static void esys_freep(void *p) {
        Esys_Free(*(void **) p);
}

static void evp_pkey_freep(EVP_PKEY **p) {
        EVP_PKEY_free(*p);
}

static void json_object_putp(json_object **p) {
        if (*p)
                json_object_put(*p);
}

/* The base code of a TPM response code: without the handle/session/parameter number (format 1). */
static TSS2_RC rc_base(TSS2_RC rc) {
        if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER)
                return rc;
        if (rc & TPM2_RC_FMT1)
                return rc & (TPM2_RC_FMT1 | 0x3F);
        return rc;
}

/* The response code behind the last tss_error(), for callers that translate it once they know
 * the context (a wrong PIN shows up wherever the PIN-bound session is first used). */
static _Thread_local TSS2_RC tss_last_rc;

static int tss_error(int r, TSS2_RC rc, const char *what) {
        tss_last_rc = rc;
        /* TRANSLATORS: what the TPM could not do, then the TSS library's reason (English). */
        return error_setf(r, _("%s: %s."), what, Tss2_RC_Decode(rc));
}

static bool pcr_mask_valid(uint32_t mask) {
        return mask < (UINT32_C(1) << TPM2_PCRS_MAX);
}

char *tpm2_pcr_mask_to_string(uint32_t mask) {
        char buf[TPM2_PCRS_MAX * 3 + 1] = "";
        size_t n = 0;

        for (unsigned i = 0; i < TPM2_PCRS_MAX; i++)
                if (mask & (UINT32_C(1) << i))
                        n += (size_t) snprintf(buf + n, sizeof(buf) - n, "%s%u", n > 0 ? "+" : "", i);
        return strdup(n > 0 ? buf : "none");
}

static TPML_PCR_SELECTION pcr_selection_sha256(uint32_t mask) {
        /* One selection for the bank, three bytes of bitmap (S252 tpm2_pcr_mask_to_selection(), §3.4). */
        return (TPML_PCR_SELECTION) {
                .count = 1,
                .pcrSelections[0] = {
                        .hash = TPM2_ALG_SHA256,
                        .sizeofSelect = 3,
                        .pcrSelect = { mask & 0xFF, (mask >> 8) & 0xFF, (mask >> 16) & 0xFF },
                },
        };
}

static char *hex_encode(const uint8_t *p, size_t n) {
        char *s = malloc(n * 2 + 1);

        if (!s)
                return NULL;
        for (size_t i = 0; i < n; i++)
                sprintf(s + 2 * i, "%02x", p[i]);
        s[2 * n] = 0;
        return s;
}

static int unhexchar(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static int hex_decode(const char *s, uint8_t *buf, size_t size) {
        if (strlen(s) != size * 2)
                return -EBADMSG;
        for (size_t i = 0; i < size; i++) {
                int a = unhexchar(s[2 * i]), b = unhexchar(s[2 * i + 1]);
                if (a < 0 || b < 0)
                        return -EBADMSG;
                buf[i] = (uint8_t) (a << 4 | b);
        }
        return 0;
}

static int sha256(const void *p, size_t n, uint8_t out[static 32]) {
        return EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
}

static int parse_pcr_array(json_object *a, uint32_t *ret) {
        uint32_t mask = 0;

        if (!json_object_is_type(a, json_type_array))
                return -EBADMSG;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *e = json_object_array_get_idx(a, i);
                int64_t v;

                if (!json_object_is_type(e, json_type_int))
                        return -EBADMSG;
                v = json_object_get_int64(e);
                if (v < 0 || v >= TPM2_PCRS_MAX)
                        return -EBADMSG;
                mask |= UINT32_C(1) << v;
        }
        *ret = mask;
        return 0;
}

/* ---- context ---------------------------------------------------------------------------------- */

bool tpm2_tcti_is_safe(const char *tcti) {
        static const char *const ok[] = { "device", "swtpm", "mssim" };

        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                size_t n = strlen(ok[i]);
                if (strncmp(tcti, ok[i], n) == 0 && (tcti[n] == 0 || tcti[n] == ':'))
                        return true;
        }
        return false;
}

int tpm2_context_new(const char *tcti, Tpm2Context **ret) {
        _cleanup_(tpm2_context_freep) Tpm2Context *c = NULL;
        const char *conf = tcti ?: TPM2_TCTI_DEFAULT;
        TSS2_RC rc;

        if (!tpm2_tcti_is_safe(conf))
                return error_setf(-EINVAL, _("The TPM2 TCTI \"%s\" is not accepted: use device:, swtpm: or mssim:."), conf);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;

        rc = Tss2_TctiLdr_Initialize(conf, &c->tcti);
        if (rc != TSS2_RC_SUCCESS) {
                c->tcti = NULL;
                return error_setf(-ENODEV, _("Cannot open the TPM through \"%s\": %s."), conf, Tss2_RC_Decode(rc));
        }

        rc = Esys_Initialize(&c->esys, c->tcti, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                c->esys = NULL;
                return error_setf(-ENODEV, _("Cannot talk to the TPM through \"%s\": %s."), conf, Tss2_RC_Decode(rc));
        }

        /* Firmware normally started the TPM already; then it answers TPM2_RC_INITIALIZE (S252
         * tpm2_context_init()). */
        rc = Esys_Startup(c->esys, TPM2_SU_CLEAR);
        if (rc != TSS2_RC_SUCCESS && rc_base(rc) != TPM2_RC_INITIALIZE)
                return error_setf(-EIO, _("Cannot start up the TPM at \"%s\": %s."), conf, Tss2_RC_Decode(rc));

        log_debug("Connected to the TPM through %s.", conf);
        *ret = TAKE_PTR(c);
        return 0;
}

Tpm2Context *tpm2_context_free(Tpm2Context *c) {
        if (!c)
                return NULL;
        if (c->esys)
                Esys_Finalize(&c->esys);
        if (c->tcti)
                Tss2_TctiLdr_Finalize(&c->tcti);
        free(c);
        return NULL;
}

/* ---- pre-flight ------------------------------------------------------------------------------- */

void tpm2_status_done(Tpm2Status *s) {
        if (!s)
                return;
        free(s->problem);
        *s = (Tpm2Status) {};
}

static int status_problem(Tpm2Status *s, const char *fmt, ...) _printf_(2, 3);
static int status_problem(Tpm2Status *s, const char *fmt, ...) {
        va_list ap;
        int n;

        if (s->problem) /* only the first failure is reported */
                return 0;
        va_start(ap, fmt);
        n = vasprintf(&s->problem, fmt, ap);
        va_end(ap);
        if (n < 0) {
                s->problem = NULL;
                return -ENOMEM;
        }
        return 0;
}

static int check_pcr_banks(Tpm2Context *c, Tpm2Status *s) {
        _cleanup_(esys_freep) TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more = TPM2_NO;
        TSS2_RC rc;

        rc = Esys_GetCapability(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                TPM2_CAP_PCRS, 0, 1, &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return status_problem(s, _("The TPM does not report its PCR banks (%s); it cannot be used for disk unlocking."),
                                      Tss2_RC_Decode(rc));

        for (uint32_t i = 0; i < cap->data.assignedPCR.count; i++) {
                const TPMS_PCR_SELECTION *p = &cap->data.assignedPCR.pcrSelections[i];

                /* Allocated means PCR 7 is selected in the bank; an unallocated bank lists none. */
                if (p->hash == TPM2_ALG_SHA256 && p->sizeofSelect >= 1 && (p->pcrSelect[0] & 0x80))
                        s->sha256_bank = true;
        }
        if (!s->sha256_bank)
                return status_problem(s, _("The TPM's sha256 PCR bank is not active (only older banks are allocated); "
                                           "enable the SHA-256 PCR bank in the firmware's TPM settings."));
        return 0;
}

static int check_properties(Tpm2Context *c, Tpm2Status *s) {
        _cleanup_(esys_freep) TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more = TPM2_NO;
        uint32_t permanent = 0, transient_avail = 0;
        bool have_permanent = false, have_transient = false;
        TSS2_RC rc;
        int r;

        /* TPM2_PT_PERMANENT … TPM2_PT_LOCKOUT_RECOVERY are consecutive in the PT_VAR group. */
        rc = Esys_GetCapability(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                TPM2_CAP_TPM_PROPERTIES, TPM2_PT_PERMANENT,
                                TPM2_PT_LOCKOUT_RECOVERY - TPM2_PT_PERMANENT + 1, &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return status_problem(s, _("The TPM does not report its state (%s); it cannot be used for disk unlocking."),
                                      Tss2_RC_Decode(rc));

        for (uint32_t i = 0; i < cap->data.tpmProperties.count; i++) {
                const TPMS_TAGGED_PROPERTY *p = &cap->data.tpmProperties.tpmProperty[i];

                if (p->property == TPM2_PT_PERMANENT)
                        permanent = p->value, have_permanent = true;
                else if (p->property == TPM2_PT_HR_TRANSIENT_AVAIL)
                        transient_avail = p->value, have_transient = true;
                else if (p->property == TPM2_PT_LOCKOUT_INTERVAL)
                        s->lockout_interval = p->value;
        }

        s->lockout = have_permanent && (permanent & TPMA_PERMANENT_INLOCKOUT);
        s->transient_room = have_transient && transient_avail > 0;

        if (!have_permanent)
                r = status_problem(s, _("The TPM does not report whether it is in dictionary-attack lockout; "
                                        "it cannot be used for disk unlocking."));
        else if (s->lockout && s->lockout_interval > 0)
                r = status_problem(s, _("The TPM is in dictionary-attack lockout; it leaves lockout by itself after "
                                        "%" PRIu32 " seconds without failed authorizations (or clear the TPM lockout in the "
                                        "firmware setup), then try again."), s->lockout_interval);
        else if (s->lockout)
                r = status_problem(s, _("The TPM is in dictionary-attack lockout and does not leave it by itself; clear "
                                        "the TPM lockout in the firmware setup, then try again."));
        else
                r = 0;
        if (r < 0)
                return r;

        if (!s->transient_room)
                return status_problem(s, _("The TPM has no room for another transient object: all its object slots are "
                                           "taken (is another program holding the TPM without the kernel's resource manager?)."));
        return 0;
}

int tpm2_check(const char *tcti, Tpm2Status *ret) {
        _cleanup_(tpm2_context_freep) Tpm2Context *c = NULL;
        const char *conf = tcti ?: TPM2_TCTI_DEFAULT;
        Tpm2Status s = {};
        int r;

        if (!tpm2_tcti_is_safe(conf))
                return error_setf(-EINVAL, _("The TPM2 TCTI \"%s\" is not accepted: use device:, swtpm: or mssim:."), conf);

        /* For the device TCTI, look for the node first: no node, no TPM, and no TCTI loader noise. */
        if (strncmp(conf, "device:", 7) == 0 || streq(conf, "device")) {
                const char *node = conf[6] == ':' && conf[7] ? conf + 7 : "/dev/tpmrm0";

                if (access(node, F_OK) < 0) {
                        r = status_problem(&s, _("No TPM 2.0 was found (%s does not exist); enable the TPM (often called "
                                                 "fTPM, PTT or Security Chip) in the firmware setup, or unlock with a "
                                                 "passphrase or recovery key only."), node);
                        if (r < 0)
                                return r;
                        *ret = s;
                        return 0;
                }
        }

        r = tpm2_context_new(conf, &c);
        if (r < 0) {
                r = status_problem(&s, _("No TPM 2.0 answered at %s: %s"), conf, error_message() ?: strerror(-r));
                error_clear();
                if (r < 0)
                        return r;
                *ret = s;
                return 0;
        }
        s.present = true;

        r = check_pcr_banks(c, &s);
        if (r >= 0)
                r = check_properties(c, &s);
        if (r < 0) {
                tpm2_status_done(&s);
                return r;
        }

        *ret = s;
        return s.problem ? 0 : 1;
}

/* ---- handles ---------------------------------------------------------------------------------- */

/* A transient object or session, flushed when it goes out of scope. Errors are ignored there: it
 * runs on error paths too, where nothing better can be done. */
typedef struct Tpm2Handle {
        Tpm2Context *c;
        ESYS_TR h;
} Tpm2Handle;

#define TPM2_HANDLE_INIT(ctx) { .c = (ctx), .h = ESYS_TR_NONE }

static void tpm2_handle_flush(Tpm2Handle *t) {
        if (t->c && t->h != ESYS_TR_NONE)
                (void) Esys_FlushContext(t->c->esys, t->h);
        t->h = ESYS_TR_NONE;
}

/* ---- keys ------------------------------------------------------------------------------------- */

static const char *primary_alg_to_string(TPMI_ALG_PUBLIC alg) {
        return alg == TPM2_ALG_ECC ? "ecc" : alg == TPM2_ALG_RSA ? "rsa" : NULL;
}

static int primary_alg_from_string(const char *s, TPMI_ALG_PUBLIC *ret) {
        if (streq_ptr(s, "ecc"))
                *ret = TPM2_ALG_ECC;
        else if (streq_ptr(s, "rsa"))
                *ret = TPM2_ALG_RSA;
        else
                return -EINVAL;
        return 0;
}

static TSS2_RC create_primary_from(Tpm2Context *c, const TPM2B_PUBLIC *template, ESYS_TR *ret) {
        static const TPM2B_SENSITIVE_CREATE sensitive = {};
        static const TPM2B_DATA outside_info = {};
        static const TPML_PCR_SELECTION creation_pcr = {};

        return Esys_CreatePrimary(c->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                  &sensitive, template, &outside_info, &creation_pcr, ret, NULL, NULL, NULL, NULL);
}

/* The legacy primary in the owner hierarchy (§3.3): alg 0 tries ECC and falls back to RSA, as
 * S252 tpm2_make_primary() does when sealing; unsealing names the algorithm from the token. */
static int create_legacy_primary(Tpm2Context *c, TPMI_ALG_PUBLIC alg, Tpm2Handle *ret, TPMI_ALG_PUBLIC *ret_alg) {
        TSS2_RC rc = TSS2_RC_SUCCESS, base;

        if (alg == 0 || alg == TPM2_ALG_ECC) {
                rc = create_primary_from(c, &legacy_primary_ecc, &ret->h);
                if (rc == TSS2_RC_SUCCESS) {
                        *ret_alg = TPM2_ALG_ECC;
                        return 0;
                }
                if (alg == 0)
                        log_info("The TPM cannot create an ECC P-256 primary key (%s); using RSA-2048, which is slower.",
                                 Tss2_RC_Decode(rc));
        }
        if (alg == 0 || alg == TPM2_ALG_RSA) {
                rc = create_primary_from(c, &legacy_primary_rsa, &ret->h);
                if (rc == TSS2_RC_SUCCESS) {
                        *ret_alg = TPM2_ALG_RSA;
                        return 0;
                }
        }

        ret->h = ESYS_TR_NONE;
        base = rc_base(rc);
        if (base == TPM2_RC_BAD_AUTH || base == TPM2_RC_AUTH_FAIL)
                return error_setf(-EACCES, _("The TPM's owner hierarchy has a password, so the primary key systemd "
                                             "uses cannot be created; clear the TPM in the firmware setup."));
        if (base == TPM2_RC_LOCKOUT)
                return error_setf(-ENOLCK, _("The TPM is in dictionary-attack lockout and refuses to create its primary key."));
        return tss_error(-EIO, rc, _("The TPM could not create its primary key"));
}

typedef struct Tpm2Pubkey {
        EVP_PKEY *pkey;
        TPM2B_PUBLIC public;
        /* The "pkfp" of PCR signatures: SHA256 of i2d_PublicKey(), for RSA the PKCS#1 RSAPublicKey
         * DER, not the SubjectPublicKeyInfo (S252 and S257 pubkey_fingerprint()). */
        uint8_t fingerprint[32];
} Tpm2Pubkey;

static void tpm2_pubkey_done(Tpm2Pubkey *k) {
        EVP_PKEY_free(k->pkey);
        *k = (Tpm2Pubkey) {};
}

static void bn_freep(BIGNUM **p) {
        BN_free(*p);
}

static void openssl_freep(unsigned char **p) {
        OPENSSL_free(*p);
}

/* The RSA public key as the TPM object S252 openssl_pubkey_to_tpm2_pubkey() loads (§3.4). Its name
 * goes into PolicyAuthorize, so every field matters. systemd v252 copies the exponent's big-endian
 * bytes into the little-endian field, which yields the right value only for exponents like 65537;
 * v255+ try the literal value and then 0. 65537 with its literal value satisfies both. */
static int tpm2_pubkey_load(const char *pem, Tpm2Pubkey *ret) {
        _cleanup_(evp_pkey_freep) EVP_PKEY *pkey = NULL;
        _cleanup_(bn_freep) BIGNUM *n = NULL, *e = NULL;
        _cleanup_(openssl_freep) unsigned char *der = NULL;
        Tpm2Pubkey k = {};
        int n_bytes, der_size, r;
        BIO *bio;

        bio = BIO_new_mem_buf(pem, -1);
        if (!bio)
                return -ENOMEM;
        pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (!pkey)
                return error_setf(-EINVAL, _("The PCR signing key is not a PEM public key."));
        if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA)
                return error_setf(-EOPNOTSUPP, _("The PCR signing key is not an RSA key; systemd 252 supports only RSA."));

        if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) ||
            !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e))
                return error_setf(-EINVAL, _("Cannot read the modulus and exponent of the PCR signing key."));
        n_bytes = BN_num_bytes(n);
        if (n_bytes <= 0 || (size_t) n_bytes > sizeof(k.public.publicArea.unique.rsa.buffer))
                return error_setf(-EINVAL, _("The PCR signing key's modulus is too large for the TPM."));
        if (BN_get_word(e) != 65537)
                return error_setf(-EOPNOTSUPP, _("The PCR signing key's public exponent is not 65537; systemd 252 would "
                                                 "compute a different key name."));

        k.public.publicArea = (TPMT_PUBLIC) {
                .type = TPM2_ALG_RSA,
                .nameAlg = TPM2_ALG_SHA256,
                .objectAttributes = TPMA_OBJECT_DECRYPT | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_USERWITHAUTH,
                .parameters.rsaDetail = {
                        .symmetric.algorithm = TPM2_ALG_NULL,
                        .scheme.scheme = TPM2_ALG_NULL,
                        .keyBits = (TPMI_RSA_KEY_BITS) (n_bytes * 8),
                        .exponent = 65537,
                },
                .unique.rsa.size = (UINT16) n_bytes,
        };
        if (BN_bn2bin(n, k.public.publicArea.unique.rsa.buffer) != n_bytes)
                return error_setf(-EINVAL, _("Cannot convert the PCR signing key's modulus."));

        der_size = i2d_PublicKey(pkey, &der);
        if (der_size <= 0)
                return -ENOMEM;
        r = sha256(der, (size_t) der_size, k.fingerprint);
        if (r < 0)
                return r;

        k.pkey = TAKE_PTR(pkey);
        *ret = k;
        return 0;
}

/* ---- policy ----------------------------------------------------------------------------------- */

/* A salted HMAC session with AES-128-CFB parameter encryption in both directions, salted with the
 * primary key so only the TPM learns the session key; bound to bind (the sealed object when
 * unsealing) or unbound (S252 tpm2_make_encryption_session(), §3.3). */
static int start_encryption_session(Tpm2Context *c, ESYS_TR primary, ESYS_TR bind, Tpm2Handle *ret) {
        _cleanup_(tpm2_handle_flush) Tpm2Handle session = TPM2_HANDLE_INIT(c);
        TSS2_RC rc;

        rc = Esys_StartAuthSession(c->esys, primary, bind, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                   NULL, TPM2_SE_HMAC, &session_symmetric, TPM2_ALG_SHA256, &session.h);
        if (rc != TSS2_RC_SUCCESS) {
                session.h = ESYS_TR_NONE;
                return tss_error(-EIO, rc, _("The TPM could not open an encrypted session"));
        }

        rc = Esys_TRSess_SetAttributes(c->esys, session.h,
                                       TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION,
                                       0xff);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(-EIO, rc, _("Cannot configure the TPM session"));

        ret->h = TAKE_ESYS_TR(session.h);
        return 0;
}

static int start_policy_session(Tpm2Context *c, ESYS_TR primary, ESYS_TR encryption, TPM2_SE type, Tpm2Handle *ret) {
        TSS2_RC rc;

        rc = Esys_StartAuthSession(c->esys, primary, ESYS_TR_NONE, encryption, ESYS_TR_NONE, ESYS_TR_NONE,
                                   NULL, type, &session_symmetric, TPM2_ALG_SHA256, &ret->h);
        if (rc != TSS2_RC_SUCCESS) {
                ret->h = ESYS_TR_NONE;
                return tss_error(-EIO, rc, _("The TPM could not open a policy session"));
        }
        return 0;
}

/* Finds the signature of approved in a tpm2-pcr-signature.json: bank "sha256", then the entry whose
 * "pcrs", "pkfp" and "pol" match (the lookup of S252 find_signature()). */
static int find_signature(const char *signature_json, uint32_t pcr_mask, const Tpm2Pubkey *key,
                          const TPM2B_DIGEST *approved, void **ret, size_t *ret_size) {
        _cleanup_(json_object_putp) json_object *root = NULL;
        json_object *bank;
        int r;

        /* Strictly, as every JSON imprint reads (json-strict.h): one of two equal keys would
         * otherwise win silently. */
        r = json_parse_strict(signature_json, strlen(signature_json), "the PCR signature file", &root);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        if (!root || !json_object_is_type(root, json_type_object))
                return error_setf(-EBADMSG, _("The PCR signature file is not a JSON object."));
        if (!json_object_object_get_ex(root, "sha256", &bank) || !json_object_is_type(bank, json_type_array))
                return error_setf(-ENXIO, _("The PCR signature file has no signatures for the sha256 bank."));

        for (size_t i = 0; i < json_object_array_length(bank); i++) {
                json_object *e = json_object_array_get_idx(bank, i), *pcrs, *pkfp, *pol, *sig;
                uint8_t fp[32], digest[TPM2_POLICY_HASH_SIZE];
                uint32_t mask = 0;

                if (!json_object_is_type(e, json_type_object) ||
                    !json_object_object_get_ex(e, "pcrs", &pcrs) ||
                    !json_object_object_get_ex(e, "pkfp", &pkfp) || !json_object_is_type(pkfp, json_type_string) ||
                    !json_object_object_get_ex(e, "pol", &pol) || !json_object_is_type(pol, json_type_string) ||
                    !json_object_object_get_ex(e, "sig", &sig) || !json_object_is_type(sig, json_type_string))
                        continue;
                if (parse_pcr_array(pcrs, &mask) < 0 || mask != pcr_mask)
                        continue;
                if (hex_decode(json_object_get_string(pkfp), fp, sizeof(fp)) < 0 ||
                    memcmp(fp, key->fingerprint, sizeof(fp)) != 0)
                        continue;
                if (approved->size != sizeof(digest) ||
                    hex_decode(json_object_get_string(pol), digest, sizeof(digest)) < 0 ||
                    memcmp(digest, approved->buffer, sizeof(digest)) != 0)
                        continue;
                if (base64_decode(json_object_get_string(sig), ret, ret_size) < 0)
                        return error_setf(-EBADMSG, _("The PCR signature file holds a signature that is not base64."));
                return 0;
        }

        return error_setf(-ENXIO, _("The PCR signature file has no signature for the current PCR values with this key "
                                    "(was the system booted from a different UKI?)."));
}

typedef struct PolicyInput {
        uint32_t pcr_mask;
        const Tpm2Pubkey *pubkey;     /* NULL: no signed policy */
        uint32_t pubkey_pcr_mask;
        const char *signature_json;   /* NULL when sealing (a null ticket is used) */
        bool pin;
} PolicyInput;

/* §3.4 step 1: PolicyPCR over the signed PCRs, its digest approved by the key through
 * PolicyAuthorize. Enrollment passes a null ticket, which only a trial session accepts (S252);
 * unlocking verifies the signature in the TPM first and passes the ticket it returns. */
static int build_policy_signed(Tpm2Context *c, ESYS_TR session, const PolicyInput *in) {
        static const TPM2B_NONCE policy_ref = {};
        static const TPMT_TK_VERIFIED null_ticket = {
                .tag = TPM2_ST_VERIFIED,
                .hierarchy = TPM2_RH_OWNER,
        };
        _cleanup_(tpm2_handle_flush) Tpm2Handle key = TPM2_HANDLE_INIT(c);
        _cleanup_(esys_freep) TPM2B_DIGEST *approved = NULL;
        _cleanup_(esys_freep) TPMT_TK_VERIFIED *ticket = NULL;
        _cleanup_(esys_freep) TPM2B_NAME *name = NULL;
        TPML_PCR_SELECTION selection;
        TSS2_RC rc;
        int r;

        rc = Esys_LoadExternal(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
                               &in->pubkey->public, ESYS_TR_RH_OWNER, &key.h);
        if (rc != TSS2_RC_SUCCESS) {
                key.h = ESYS_TR_NONE;
                return tss_error(-EIO, rc, _("The TPM could not load the PCR signing key"));
        }

        rc = Esys_TR_GetName(c->esys, key.h, &name);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(-EIO, rc, _("Cannot get the name of the PCR signing key"));

        selection = pcr_selection_sha256(in->pubkey_pcr_mask);
        rc = Esys_PolicyPCR(c->esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL, &selection);
        if (rc == TSS2_RC_SUCCESS)
                rc = Esys_PolicyGetDigest(c->esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &approved);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(-EIO, rc, _("The TPM could not compute the policy of the signed PCRs"));

        if (in->signature_json) {
                _cleanup_(freep) void *sig = NULL;
                TPM2B_DIGEST sig_digest = { .size = 32 };
                TPMT_SIGNATURE signature = {
                        .sigAlg = TPM2_ALG_RSASSA,
                        .signature.rsassa.hash = TPM2_ALG_SHA256,
                };
                size_t sig_size = 0;

                r = find_signature(in->signature_json, in->pubkey_pcr_mask, in->pubkey, approved, &sig, &sig_size);
                if (r < 0)
                        return r;
                if (sig_size > sizeof(signature.signature.rsassa.sig.buffer))
                        return error_setf(-EBADMSG, _("The PCR policy signature is too large."));
                memcpy(signature.signature.rsassa.sig.buffer, sig, sig_size);
                signature.signature.rsassa.sig.size = (UINT16) sig_size;

                /* TPM2_VerifySignature checks the RSA part; the SHA256 is ours to do (S252). */
                r = sha256(approved->buffer, approved->size, sig_digest.buffer);
                if (r < 0)
                        return r;
                rc = Esys_VerifySignature(c->esys, key.h, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                          &sig_digest, &signature, &ticket);
                if (rc != TSS2_RC_SUCCESS)
                        return tss_error(-EPERM, rc, _("The TPM rejected the PCR policy signature"));
        }

        rc = Esys_PolicyAuthorize(c->esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                  approved, &policy_ref, name, ticket ?: &null_ticket);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(-EIO, rc, _("The TPM refused the signed PCR policy"));
        return 0;
}

/* Runs the policy steps in systemd's order (§3.4: signed policy, literal PCRs, PIN) in session and
 * returns its digest. */
static int build_policy(Tpm2Context *c, ESYS_TR session, const PolicyInput *in, TPM2B_DIGEST *ret_digest) {
        _cleanup_(esys_freep) TPM2B_DIGEST *digest = NULL;
        TPML_PCR_SELECTION selection;
        TSS2_RC rc;
        int r;

        if (in->pubkey) {
                r = build_policy_signed(c, session, in);
                if (r < 0)
                        return r;
        }

        if (in->pcr_mask != 0) {
                /* An empty pcrDigest: the TPM takes the PCRs' current values (§3.4 "literal PCRs"). */
                selection = pcr_selection_sha256(in->pcr_mask);
                rc = Esys_PolicyPCR(c->esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL, &selection);
                if (rc != TSS2_RC_SUCCESS)
                        return tss_error(-EIO, rc, _("The TPM could not add the PCR policy"));
        }

        if (in->pin) {
                rc = Esys_PolicyAuthValue(c->esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE);
                if (rc != TSS2_RC_SUCCESS)
                        return tss_error(-EIO, rc, _("The TPM could not add the PIN policy"));
        }

        rc = Esys_PolicyGetDigest(c->esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &digest);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(-EIO, rc, _("The TPM could not report the policy digest"));
        if (digest->size != TPM2_POLICY_HASH_SIZE)
                return error_setf(-EIO, _("The TPM returned a policy digest of %u bytes instead of 32."), digest->size);
        *ret_digest = *digest;
        return 0;
}

/* v252 hashes the PIN without salt: authValue = SHA256(PIN) (S252 hash_pin(), §3.3). */
static int pin_to_auth(const Secret *pin, TPM2B_AUTH *ret) {
        ret->size = 32;
        return sha256(pin->data, pin->size, ret->buffer);
}

/* Warns when the firmware apparently measured nothing into the PCRs (all zeros or all ones): the
 * policy then protects nothing. S252 tpm2_pcr_mask_good() proceeds with a warning too. */
static void warn_unmeasured_pcrs(Tpm2Context *c, uint32_t mask) {
        for (unsigned i = 0; i < TPM2_PCRS_MAX; i++) {
                _cleanup_(esys_freep) TPML_PCR_SELECTION *out = NULL;
                _cleanup_(esys_freep) TPML_DIGEST *values = NULL;
                TPML_PCR_SELECTION sel;
                bool zero = true, ones = true;
                UINT32 counter;

                if (!(mask & (UINT32_C(1) << i)))
                        continue;
                sel = pcr_selection_sha256(UINT32_C(1) << i);
                if (Esys_PCR_Read(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel, &counter, &out, &values) !=
                            TSS2_RC_SUCCESS || values->count != 1)
                        continue;
                for (unsigned j = 0; j < values->digests[0].size; j++) {
                        zero = zero && values->digests[0].buffer[j] == 0x00;
                        ones = ones && values->digests[0].buffer[j] == 0xFF;
                }
                if (zero || ones)
                        log_warning("PCR %u in the sha256 bank was never extended: the firmware does not measure "
                                    "into it, so binding to it does not protect the secret.", i);
        }
}

/* ---- seal ------------------------------------------------------------------------------------- */

void tpm2_sealed_done(Tpm2Sealed *s) {
        if (!s)
                return;
        free(s->blob);
        free(s->pubkey_pem);
        *s = (Tpm2Sealed) {};
}

static int marshal_blob(const TPM2B_PRIVATE *private, const TPM2B_PUBLIC *public, void **ret, size_t *ret_size) {
        size_t size = sizeof(TPM2B_PRIVATE) + sizeof(TPM2B_PUBLIC), offset = 0;
        _cleanup_(freep) uint8_t *buf = NULL;
        TSS2_RC rc;

        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        /* §3.1 tpm2-blob: TPM2B_PRIVATE then TPM2B_PUBLIC, nothing after (no seed: not imported). */
        rc = Tss2_MU_TPM2B_PRIVATE_Marshal(private, buf, size, &offset);
        if (rc == TSS2_RC_SUCCESS)
                rc = Tss2_MU_TPM2B_PUBLIC_Marshal(public, buf, size, &offset);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(-EIO, rc, _("Cannot marshal the sealed object"));
        *ret = TAKE_PTR(buf);
        *ret_size = offset;
        return 0;
}

static int unmarshal_blob(const void *blob, size_t size, TPM2B_PRIVATE *ret_private, TPM2B_PUBLIC *ret_public) {
        TPM2B_PRIVATE private = {};
        TPM2B_PUBLIC public = {};
        size_t offset = 0;
        TSS2_RC rc;

        rc = Tss2_MU_TPM2B_PRIVATE_Unmarshal(blob, size, &offset, &private);
        if (rc == TSS2_RC_SUCCESS)
                rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(blob, size, &offset, &public);
        if (rc != TSS2_RC_SUCCESS)
                return error_setf(-EBADMSG, _("The sealed TPM object is damaged: %s."), Tss2_RC_Decode(rc));
        if (offset != size)
                return error_setf(-EBADMSG, _("The sealed TPM object has %zu stray bytes after it (an imported or "
                                              "newer-format blob that systemd 252 cannot use)."), size - offset);
        *ret_private = private;
        *ret_public = public;
        return 0;
}

static int unseal_loaded(Tpm2Context *c, ESYS_TR primary, const Tpm2Sealed *s, const Tpm2Pubkey *pubkey,
                         const Secret *pin, const char *signature_json, Secret **ret_secret);

/* Creates the sealed object (§3.3): a KEYEDHASH data object whose only authorization is the policy
 * digest, holding the secret, with userAuth SHA256(PIN) when there is one. The command travels
 * through the salted encryption session, so the secret crosses the bus encrypted. */
static int create_sealed_object(Tpm2Context *c, ESYS_TR primary, ESYS_TR encryption, const TPM2B_DIGEST *policy,
                                const Secret *secret, const Secret *pin,
                                TPM2B_PRIVATE **ret_private, TPM2B_PUBLIC **ret_public) {
        static const TPML_PCR_SELECTION creation_pcr = {};
        const TPM2B_PUBLIC template = {
                .publicArea = {
                        .type = TPM2_ALG_KEYEDHASH,
                        .nameAlg = TPM2_ALG_SHA256,
                        .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT,
                        .authPolicy = *policy,
                        .parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL,
                        .unique.keyedHash.size = 32,
                },
        };
        TPM2B_SENSITIVE_CREATE sensitive = {};
        TSS2_RC rc;
        int r = 0;

        sensitive.sensitive.data.size = (UINT16) secret->size;
        memcpy(sensitive.sensitive.data.buffer, secret->data, secret->size);
        if (pin)
                r = pin_to_auth(pin, &sensitive.sensitive.userAuth);
        if (r >= 0) {
                rc = Esys_Create(c->esys, primary, encryption, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &template,
                                 NULL, &creation_pcr, ret_private, ret_public, NULL, NULL, NULL);
                if (rc != TSS2_RC_SUCCESS)
                        r = tss_error(-EIO, rc, _("The TPM could not seal the secret"));
        }
        secret_wipe(&sensitive, sizeof(sensitive));
        return r;
}

int tpm2_seal_with_pin(Tpm2Context *c, uint32_t pcr_mask, const char *pubkey_pem, uint32_t pubkey_pcr_mask,
                       const Secret *pin, Secret **ret_secret, Tpm2Sealed *ret) {
        _cleanup_(tpm2_handle_flush) Tpm2Handle primary = TPM2_HANDLE_INIT(c), encryption = TPM2_HANDLE_INIT(c),
                policy = TPM2_HANDLE_INIT(c);
        _cleanup_(esys_freep) TPM2B_PRIVATE *private = NULL;
        _cleanup_(esys_freep) TPM2B_PUBLIC *public = NULL;
        _cleanup_(secret_freep) Secret *secret = NULL, *check = NULL;
        _cleanup_(tpm2_sealed_done) Tpm2Sealed sealed = {};
        _cleanup_(tpm2_pubkey_done) Tpm2Pubkey key = {};
        TPM2B_DIGEST digest = {};
        TPMI_ALG_PUBLIC alg = 0;
        ssize_t n;
        int r;

        if (!c || !ret_secret || !ret)
                return -EINVAL;
        if (pubkey_pem && pubkey_pcr_mask == 0)
                pubkey_pcr_mask = TPM2_PUBKEY_PCR_MASK_DEFAULT;
        if (!pubkey_pem)
                pubkey_pcr_mask = 0;
        if (!pcr_mask_valid(pcr_mask) || !pcr_mask_valid(pubkey_pcr_mask))
                return error_setf(-EINVAL, "PCR masks must name PCRs 0 to 23 only.");
        if (pin && pin->size == 0)
                return error_setf(-EINVAL, _("An empty TPM PIN is not a PIN."));

        if (pubkey_pem) {
                r = tpm2_pubkey_load(pubkey_pem, &key);
                if (r < 0)
                        return r;
                sealed.pubkey_pem = strdup(pubkey_pem);
                if (!sealed.pubkey_pem)
                        return -ENOMEM;
        }

        /* The secret comes from the kernel, not from the TPM (§3.2). */
        secret = secret_new(TPM2_SECRET_SIZE);
        if (!secret)
                return -ENOMEM;
        n = getrandom(secret->data, TPM2_SECRET_SIZE, 0);
        if (n != (ssize_t) TPM2_SECRET_SIZE)
                return error_setf(n < 0 ? -errno : -EIO, _("Cannot get random bytes from the kernel."));

        log_debug("Creating the legacy primary key in the TPM's owner hierarchy.");
        r = create_legacy_primary(c, 0, &primary, &alg);
        if (r < 0)
                return r;

        warn_unmeasured_pcrs(c, pcr_mask | pubkey_pcr_mask);

        r = start_encryption_session(c, primary.h, ESYS_TR_NONE, &encryption);
        if (r < 0)
                return r;

        /* Trial only where a null ticket requires it; some TPMs implement trial sessions badly (S252). */
        r = start_policy_session(c, primary.h, encryption.h, pubkey_pem ? TPM2_SE_TRIAL : TPM2_SE_POLICY, &policy);
        if (r < 0)
                return r;
        r = build_policy(c, policy.h, &(const PolicyInput) {
                                 .pcr_mask = pcr_mask,
                                 .pubkey = pubkey_pem ? &key : NULL,
                                 .pubkey_pcr_mask = pubkey_pcr_mask,
                                 .pin = !!pin,
                         }, &digest);
        if (r < 0)
                return r;
        tpm2_handle_flush(&policy);

        log_debug("Sealing the secret in the TPM.");
        r = create_sealed_object(c, primary.h, encryption.h, &digest, secret, pin, &private, &public);
        if (r < 0)
                return r;
        tpm2_handle_flush(&encryption);

        sealed.pcr_mask = pcr_mask;
        sealed.pubkey_pcr_mask = pubkey_pcr_mask;
        sealed.pcr_bank = "sha256";
        sealed.primary_alg = primary_alg_to_string(alg);
        sealed.pin = !!pin;
        memcpy(sealed.policy_hash, digest.buffer, TPM2_POLICY_HASH_SIZE);
        r = marshal_blob(private, public, &sealed.blob, &sealed.blob_size);
        if (r < 0)
                return r;

        /* Unseal once before anything depends on it, as systemd-cryptenroll does. A signed policy
         * cannot be checked without a signature for the current PCRs, which enrollment lacks. */
        if (!pubkey_pem) {
                r = unseal_loaded(c, primary.h, &sealed, NULL, pin, NULL, &check);
                if (r < 0)
                        return error_prefixf(r, _("The TPM sealed the secret but could not unseal it again"));
                if (check->size != secret->size || memcmp(check->data, secret->data, secret->size) != 0)
                        return error_setf(-EIO, _("The TPM sealed the secret but returned different bytes when unsealing it."));
        }

        *ret_secret = TAKE_PTR(secret);
        *ret = sealed;
        sealed = (Tpm2Sealed) {};
        return 0;
}

int tpm2_seal(Tpm2Context *c, uint32_t pcr_mask, const char *pubkey_pem, uint32_t pubkey_pcr_mask,
              Secret **ret_secret, Tpm2Sealed *ret) {
        return tpm2_seal_with_pin(c, pcr_mask, pubkey_pem, pubkey_pcr_mask, NULL, ret_secret, ret);
}

/* ---- unseal ----------------------------------------------------------------------------------- */

static int policy_mismatch_error(const Tpm2Sealed *s) {
        _cleanup_(freep) char *pcrs = tpm2_pcr_mask_to_string(s->pcr_mask);

        if (s->pubkey_pcr_mask != 0)
                return error_setf(-EPERM, _("The TPM policy no longer matches: the current values of PCR %s (sha256) "
                                            "or the signed policy differ from enrollment, so the TPM will not release "
                                            "the secret."), pcrs ?: "?");
        return error_setf(-EPERM, _("The current values of PCR %s in the sha256 bank differ from those the secret was "
                                    "sealed to (the firmware, boot loader or Secure Boot state changed since "
                                    "enrollment), so the TPM will not release it."), pcrs ?: "?");
}

/* One attempt: sessions, policy, compare, TPM2_Unseal. Returns 1 when a PCR changed between
 * PolicyPCR and Unseal, so the caller can start over. */
static int unseal_attempt(Tpm2Context *c, ESYS_TR primary, ESYS_TR object, const Tpm2Sealed *s,
                          const Tpm2Pubkey *pubkey, const char *signature_json, Secret **ret_secret) {
        _cleanup_(tpm2_handle_flush) Tpm2Handle encryption = TPM2_HANDLE_INIT(c), policy = TPM2_HANDLE_INIT(c);
        _cleanup_(esys_freep) TPM2B_SENSITIVE_DATA *unsealed = NULL;
        TPM2B_DIGEST digest = {};
        Secret *secret;
        TSS2_RC rc;
        int r;

        r = start_encryption_session(c, primary, object, &encryption);
        if (r < 0)
                return r;
        r = start_policy_session(c, primary, encryption.h, TPM2_SE_POLICY, &policy);
        if (r < 0)
                return r;
        r = build_policy(c, policy.h, &(const PolicyInput) {
                                 .pcr_mask = s->pcr_mask,
                                 .pubkey = pubkey,
                                 .pubkey_pcr_mask = s->pubkey_pcr_mask,
                                 .signature_json = signature_json,
                                 .pin = s->pin,
                         }, &digest);
        if (r < 0)
                return r;

        /* Compare first, as systemd does: a mismatch is certain failure. */
        if (memcmp(digest.buffer, s->policy_hash, TPM2_POLICY_HASH_SIZE) != 0)
                return policy_mismatch_error(s);

        rc = Esys_Unseal(c->esys, object, policy.h, encryption.h, ESYS_TR_NONE, &unsealed);
        if (rc_base(rc) == TPM2_RC_PCR_CHANGED)
                return 1;
        if (rc_base(rc) == TPM2_RC_POLICY_FAIL)
                return policy_mismatch_error(s);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(-EIO, rc, _("The TPM could not unseal the secret"));

        secret = secret_new_from(unsealed->buffer, unsealed->size);
        secret_wipe(unsealed->buffer, sizeof(unsealed->buffer));
        if (!secret)
                return -ENOMEM;
        *ret_secret = secret;
        return 0;
}

static int unseal_loaded(Tpm2Context *c, ESYS_TR primary, const Tpm2Sealed *s, const Tpm2Pubkey *pubkey,
                         const Secret *pin, const char *signature_json, Secret **ret_secret) {
        _cleanup_(tpm2_handle_flush) Tpm2Handle object = TPM2_HANDLE_INIT(c);
        TPM2B_PRIVATE private;
        TPM2B_PUBLIC public;
        TSS2_RC rc, base;
        int r;

        r = unmarshal_blob(s->blob, s->blob_size, &private, &public);
        if (r < 0)
                return r;

        rc = Esys_Load(c->esys, primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &private, &public, &object.h);
        if (rc != TSS2_RC_SUCCESS) {
                object.h = ESYS_TR_NONE;
                if (rc_base(rc) == TPM2_RC_LOCKOUT)
                        return error_setf(-ENOLCK, _("The TPM is in dictionary-attack lockout and refuses to load the sealed secret."));
                if (rc_base(rc) == TPM2_RC_INTEGRITY)
                        return error_setf(-ENOKEY, _("The sealed secret belongs to a different TPM, or the TPM was cleared "
                                                     "since enrollment (%s)."), Tss2_RC_Decode(rc));
                return tss_error(-EIO, rc, _("The TPM could not load the sealed secret"));
        }

        if (pin) {
                TPM2B_AUTH auth;

                r = pin_to_auth(pin, &auth);
                if (r >= 0) {
                        rc = Esys_TR_SetAuth(c->esys, object.h, &auth);
                        if (rc != TSS2_RC_SUCCESS)
                                r = tss_error(-EIO, rc, _("Cannot pass the PIN to the TPM"));
                }
                secret_wipe(&auth, sizeof(auth));
                if (r < 0)
                        return r;
        }

        for (unsigned i = 0; i <= UNSEAL_RETRIES; i++) {
                r = unseal_attempt(c, primary, object.h, s, pubkey, signature_json, ret_secret);
                if (r != 1)
                        break;
                log_debug("A PCR changed while unsealing; trying again.");
        }
        if (r == 1)
                return error_setf(-EAGAIN, _("The PCRs kept changing while unsealing the secret."));
        if (r != -EIO)
                return r;

        /* The encryption session is bound to the object, so a wrong PIN already fails the first
         * command that uses that session, not only TPM2_Unseal. */
        base = rc_base(tss_last_rc);
        if (pin && (base == TPM2_RC_AUTH_FAIL || base == TPM2_RC_BAD_AUTH))
                return error_setf(-EACCES, _("The TPM PIN is wrong."));
        if (base == TPM2_RC_LOCKOUT)
                return error_setf(-ENOLCK, _("The TPM is in dictionary-attack lockout and refuses to unseal the "
                                             "secret; wait for it to recover and try again."));
        return r;
}

int tpm2_unseal_full(Tpm2Context *c, const Tpm2Sealed *s, const Secret *pin, const char *signature_json,
                     Secret **ret_secret) {
        _cleanup_(tpm2_handle_flush) Tpm2Handle primary = TPM2_HANDLE_INIT(c);
        _cleanup_(tpm2_pubkey_done) Tpm2Pubkey key = {};
        TPMI_ALG_PUBLIC alg, created;
        int r;

        if (!c || !s || !s->blob || !ret_secret)
                return -EINVAL;
        if (!streq_ptr(s->pcr_bank ?: "sha256", "sha256"))
                return error_setf(-EOPNOTSUPP, "Only tokens bound to the sha256 PCR bank are supported.");
        if (primary_alg_from_string(s->primary_alg ?: "ecc", &alg) < 0)
                return error_setf(-EINVAL, "Unknown TPM primary key algorithm \"%s\".", s->primary_alg);
        if (s->pin && !pin)
                return error_setf(-ENOANO, "This TPM token needs a PIN.");
        if (!s->pin)
                pin = NULL;
        if (s->pubkey_pcr_mask != 0) {
                if (!s->pubkey_pem)
                        return error_setf(-EINVAL, "The token has a signed PCR policy but no public key.");
                if (!signature_json)
                        return error_setf(-ENXIO, "This TPM token uses a signed PCR policy; a PCR signature is needed to unseal it.");
                r = tpm2_pubkey_load(s->pubkey_pem, &key);
                if (r < 0)
                        return r;
        }

        r = create_legacy_primary(c, alg, &primary, &created);
        if (r < 0)
                return r;
        return unseal_loaded(c, primary.h, s, s->pubkey_pcr_mask != 0 ? &key : NULL, pin, signature_json, ret_secret);
}

int tpm2_unseal(Tpm2Context *c, const Tpm2Sealed *s, Secret **ret_secret) {
        return tpm2_unseal_full(c, s, NULL, NULL, ret_secret);
}

/* ---- token ------------------------------------------------------------------------------------ */

static json_object *pcr_mask_to_json(uint32_t mask) {
        json_object *a = json_object_new_array();

        for (unsigned i = 0; a && i < TPM2_PCRS_MAX; i++)
                if ((mask & (UINT32_C(1) << i)) && json_object_array_add(a, json_object_new_int((int) i)) < 0) {
                        json_object_put(a);
                        return NULL;
                }
        return a;
}

static bool add(json_object *o, const char *key, json_object *v) {
        if (!v)
                return false;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return false;
        }
        return true;
}

json_object *tpm2_token_json(const Tpm2Sealed *s, int keyslot) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_(freep) char *blob = NULL, *hash = NULL, *pubkey = NULL;
        json_object *keyslots;
        char slot[16];

        if (!s || !s->blob || keyslot < 0)
                return NULL;
        snprintf(slot, sizeof(slot), "%i", keyslot);

        blob = base64_encode(s->blob, s->blob_size);
        hash = hex_encode(s->policy_hash, sizeof(s->policy_hash));
        if (!blob || !hash)
                return NULL;

        o = json_object_new_object();
        keyslots = json_object_new_array();
        if (!o || !add(o, "type", json_object_new_string("systemd-tpm2")) || !add(o, "keyslots", keyslots) ||
            json_object_array_add(keyslots, json_object_new_string(slot)) < 0 ||
            !add(o, "tpm2-blob", json_object_new_string(blob)) ||
            !add(o, "tpm2-pcrs", pcr_mask_to_json(s->pcr_mask)) ||
            !add(o, "tpm2-pcr-bank", json_object_new_string("sha256")) ||
            !add(o, "tpm2-primary-alg", json_object_new_string(s->primary_alg ?: "ecc")) ||
            !add(o, "tpm2-policy-hash", json_object_new_string(hash)) ||
            /* v252 always writes tpm2-pin; v257 accepts it (§3.1). */
            !add(o, "tpm2-pin", json_object_new_boolean(s->pin)))
                return NULL;

        /* Only for signed policies, as S252 tpm2_make_luks2_json(); the key is the PEM file's bytes. */
        if (s->pubkey_pcr_mask != 0 && s->pubkey_pem) {
                pubkey = base64_encode(s->pubkey_pem, strlen(s->pubkey_pem));
                if (!pubkey || !add(o, "tpm2_pubkey_pcrs", pcr_mask_to_json(s->pubkey_pcr_mask)) ||
                    !add(o, "tpm2_pubkey", json_object_new_string(pubkey)))
                        return NULL;
        }

        return TAKE_PTR(o);
}

int tpm2_token_parse(json_object *token, Tpm2Sealed *ret) {
        json_object *v, *e;
        Tpm2Sealed s = { .pcr_bank = "sha256", .primary_alg = "ecc" };
        const char *str;
        char *end;
        long slot;
        int r;

        if (!json_object_is_type(token, json_type_object) ||
            !json_object_object_get_ex(token, "type", &v) || !streq_ptr(json_object_get_string(v), "systemd-tpm2"))
                return error_setf(-EBADMSG, "This is not a systemd-tpm2 token.");

        /* Exactly one keyslot (S252 cryptsetup_get_keyslot_from_token(), §3.1). */
        if (!json_object_object_get_ex(token, "keyslots", &v) || !json_object_is_type(v, json_type_array) ||
            json_object_array_length(v) != 1 || !json_object_is_type(e = json_object_array_get_idx(v, 0), json_type_string))
                return error_setf(-EBADMSG, "The TPM token does not name exactly one keyslot.");
        str = json_object_get_string(e);
        errno = 0;
        slot = strtol(str, &end, 10);
        if (errno != 0 || end == str || *end || slot < 0 || slot > INT32_MAX)
                return error_setf(-EBADMSG, "The TPM token names an invalid keyslot \"%s\".", str);

        if (json_object_object_get_ex(token, "tpm2_srk", NULL) || json_object_object_get_ex(token, "tpm2_salt", NULL) ||
            (json_object_object_get_ex(token, "tpm2_pcrlock", &v) && json_object_get_boolean(v)))
                return error_setf(-EOPNOTSUPP, "The TPM token uses features of systemd 253 or newer (SRK, salted PIN "
                                               "or pcrlock) that this installer does not seal or unseal.");

        if (!json_object_object_get_ex(token, "tpm2-pcrs", &v) || parse_pcr_array(v, &s.pcr_mask) < 0)
                return error_setf(-EBADMSG, "The TPM token's tpm2-pcrs field is missing or invalid.");

        if (json_object_object_get_ex(token, "tpm2-pcr-bank", &v) && !streq_ptr(json_object_get_string(v), "sha256"))
                return error_setf(-EOPNOTSUPP, "The TPM token is bound to the %s PCR bank; only sha256 is supported.",
                                  json_object_get_string(v));

        if (json_object_object_get_ex(token, "tpm2-primary-alg", &v)) {
                TPMI_ALG_PUBLIC alg;

                if (primary_alg_from_string(json_object_get_string(v), &alg) < 0)
                        return error_setf(-EBADMSG, "The TPM token names an unknown primary key algorithm.");
                s.primary_alg = primary_alg_to_string(alg);
        }

        if (!json_object_object_get_ex(token, "tpm2-policy-hash", &v) || !json_object_is_type(v, json_type_string) ||
            hex_decode(json_object_get_string(v), s.policy_hash, sizeof(s.policy_hash)) < 0)
                return error_setf(-EBADMSG, "The TPM token's tpm2-policy-hash is missing or not 64 hex digits.");

        if (json_object_object_get_ex(token, "tpm2-pin", &v)) {
                if (!json_object_is_type(v, json_type_boolean))
                        return error_setf(-EBADMSG, "The TPM token's tpm2-pin field is not a boolean.");
                s.pin = json_object_get_boolean(v);
        }

        if (json_object_object_get_ex(token, "tpm2_pubkey_pcrs", &v) && parse_pcr_array(v, &s.pubkey_pcr_mask) < 0)
                return error_setf(-EBADMSG, "The TPM token's tpm2_pubkey_pcrs field is invalid.");

        if (!json_object_object_get_ex(token, "tpm2-blob", &v) || !json_object_is_type(v, json_type_string))
                return error_setf(-EBADMSG, "The TPM token's tpm2-blob is missing or sharded (systemd 252 needs one string).");
        r = base64_decode(json_object_get_string(v), &s.blob, &s.blob_size);
        if (r < 0)
                return r == -ENOMEM ? r : error_setf(r, "The TPM token's tpm2-blob is not base64.");

        if (json_object_object_get_ex(token, "tpm2_pubkey", &v)) {
                void *pem = NULL;
                size_t pem_size = 0;

                if (!json_object_is_type(v, json_type_string) ||
                    base64_decode(json_object_get_string(v), &pem, &pem_size) < 0) {
                        tpm2_sealed_done(&s);
                        return error_setf(-EBADMSG, "The TPM token's tpm2_pubkey is not base64.");
                }
                /* The decoder leaves room for a terminating NUL. */
                ((char *) pem)[pem_size] = 0;
                if (strlen(pem) != pem_size) {
                        free(pem);
                        tpm2_sealed_done(&s);
                        return error_setf(-EBADMSG, "The TPM token's tpm2_pubkey is not a PEM text.");
                }
                s.pubkey_pem = pem;
        } else if (s.pubkey_pcr_mask != 0) {
                tpm2_sealed_done(&s);
                return error_setf(-EBADMSG, "The TPM token has tpm2_pubkey_pcrs but no tpm2_pubkey.");
        }

        *ret = s;
        return (int) slot;
}

/* ---- passphrase ------------------------------------------------------------------------------- */

int tpm2_secret_to_passphrase(const Secret *secret, Secret **ret) {
        Secret *p;

        if (!secret || !ret || secret->size == 0 || secret->size > 1024)
                return -EINVAL;
        /* Standard alphabet, '=' padding, no line breaks: systemd's base64mem() (§3.2). The Secret
         * holds one byte beyond its size, which takes EVP_EncodeBlock()'s NUL. */
        p = secret_new(4 * DIV_ROUND_UP(secret->size, 3));
        if (!p)
                return -ENOMEM;
        if ((size_t) EVP_EncodeBlock(p->data, secret->data, (int) secret->size) != p->size) {
                secret_free(p);
                return -EIO;
        }
        *ret = p;
        return 0;
}
