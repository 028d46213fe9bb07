/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Sealing to a TPM in the format of systemd's "systemd-tpm2" LUKS2 token, against swtpm.
 *
 * Needs root (the referee uses a mount namespace) and swtpm; exits 77 without them. Starts its own
 * swtpm on free ports and kills it on exit (swtpm-util.[ch], shared with test-encrypt). What it checks:
 *   - pre-flight facts, for a missing device and for swtpm;
 *   - seal/unseal round trips (plain, with PIN, with a signed PCR 11 policy and a signature);
 *   - the policy hashes, recomputed here from the TPM 2.0 specification's formulas
 *     (formats.md §3.4) and the PCR values read on a separate connection;
 *   - the token JSON field by field (§3.1, §3.5) and its blob, unmarshalled with tss2-mu;
 *   - that extending PCR 7 makes unsealing fail with a message naming the PCR;
 *   - the referee: the token and the base64 passphrase go into a LUKS2 header on a plain file with
 *     stock cryptsetup, stock systemd-cryptenroll lists the slot as tpm2, and stock systemd's
 *     libcryptsetup-token-systemd-tpm2.so unlocks it (cryptsetup open --test-passphrase
 *     --token-only). systemd 252's plugin only uses the TPM it finds in /sys/class/tpmrm, so the
 *     plugin runs in a private mount namespace where /sys/class/tpmrm/tpmrm0 exists and
 *     /dev/tpmrm0 is a pseudo-terminal that a relay process connects to swtpm.
 * Secrets reach cryptsetup through pipes only, never argv or files. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>

#include "error.h"
#include "log.h"
#include "run.h"
#include "secret.h"
#include "swtpm-util.h"
#include "tests.h"
#include "tpm2.h"

static char workdir[] = "/var/tmp/test-tpm2.XXXXXX";
static bool have_workdir;
static Swtpm tpm = SWTPM_INIT;

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

static size_t put32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24), p[1] = (uint8_t) (v >> 16), p[2] = (uint8_t) (v >> 8), p[3] = (uint8_t) v;
        return 4;
}

/* ---- PCRs, on a separate ESYS connection ------------------------------------------------------ */

static void pcr_read(TestEsys *t, unsigned pcr, uint8_t out[32]) {
        TPML_PCR_SELECTION sel = {
                .count = 1,
                .pcrSelections[0] = { .hash = TPM2_ALG_SHA256, .sizeofSelect = 3 },
        };
        TPML_PCR_SELECTION *sel_out = NULL;
        TPML_DIGEST *values = NULL;
        UINT32 counter;

        sel.pcrSelections[0].pcrSelect[pcr / 8] = (uint8_t) (1u << (pcr % 8));
        ASSERT_EQ(Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel, &counter, &sel_out, &values),
                  TSS2_RC_SUCCESS);
        ASSERT_EQ(values->count, 1);
        ASSERT_EQ(values->digests[0].size, 32);
        memcpy(out, values->digests[0].buffer, 32);
        Esys_Free(sel_out);
        Esys_Free(values);
}

static void pcr_extend(unsigned pcr) {
        TestEsys t = test_esys_open(tpm.tcti);
        TPML_DIGEST_VALUES d = { .count = 1, .digests[0].hashAlg = TPM2_ALG_SHA256 };

        memset(d.digests[0].digest.sha256, 0x5a, 32);
        ASSERT_EQ(Esys_PCR_Extend(t.esys, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &d),
                  TSS2_RC_SUCCESS);
        test_esys_close(&t);
}

/* ---- policy digests from the specification (TPM 2.0 Part 3 §23; formats.md §3.4) -------------- */

static void sha256_of(const void *p, size_t n, uint8_t out[32]) {
        ASSERT_TRUE(EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL) == 1);
}

/* PolicyPCR: H(old || TPM_CC_PolicyPCR || TPML_PCR_SELECTION || H(PCR values in index order)). */
static void policy_pcr(uint8_t digest[32], unsigned pcr, const uint8_t value[32]) {
        uint8_t buf[32 + 4 + 4 + 2 + 1 + 3 + 32];
        size_t n = 0;

        memcpy(buf, digest, 32), n += 32;
        n += put32(buf + n, 0x0000017F);
        n += put32(buf + n, 1);                   /* count */
        buf[n++] = 0x00, buf[n++] = 0x0B;         /* TPM_ALG_SHA256 */
        buf[n++] = 3;                             /* sizeofSelect */
        buf[n] = buf[n + 1] = buf[n + 2] = 0;
        buf[n + pcr / 8] = (uint8_t) (1u << (pcr % 8));
        n += 3;
        sha256_of(value, 32, buf + n), n += 32;
        sha256_of(buf, n, digest);
}

/* PolicyAuthorize: H(H(old || TPM_CC_PolicyAuthorize || keyName) || policyRef); the digest is
 * reset first, so old is all zeros. */
static void policy_authorize(uint8_t digest[32], const uint8_t *name, size_t name_size) {
        uint8_t buf[32 + 4 + sizeof(TPMU_NAME)];
        size_t n = 0;

        memset(buf, 0, 32), n += 32;
        n += put32(buf + n, 0x0000016A);
        memcpy(buf + n, name, name_size), n += name_size;
        sha256_of(buf, n, digest);
        sha256_of(digest, 32, digest); /* empty policyRef */
}

/* PolicyAuthValue: H(old || TPM_CC_PolicyAuthValue). */
static void policy_auth_value(uint8_t digest[32]) {
        uint8_t buf[36];

        memcpy(buf, digest, 32);
        put32(buf + 32, 0x0000016B);
        sha256_of(buf, sizeof(buf), digest);
}

/* The name systemd's loaded PCR key gets: nameAlg || SHA256(TPMT_PUBLIC), with the public area as
 * S252 openssl_pubkey_to_tpm2_pubkey() fills it (RSA, sha256, decrypt|sign|userWithAuth, no
 * scheme, no symmetric, exponent 65537). */
static void rsa_key_name(EVP_PKEY *pkey, uint8_t *name, size_t *name_size) {
        TPMT_PUBLIC pub = {
                .type = TPM2_ALG_RSA,
                .nameAlg = TPM2_ALG_SHA256,
                .objectAttributes = TPMA_OBJECT_DECRYPT | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_USERWITHAUTH,
                .parameters.rsaDetail = {
                        .symmetric.algorithm = TPM2_ALG_NULL,
                        .scheme.scheme = TPM2_ALG_NULL,
                        .keyBits = 2048,
                        .exponent = 65537,
                },
        };
        uint8_t buf[sizeof(TPMT_PUBLIC)];
        size_t offset = 0;
        BIGNUM *n = NULL;

        ASSERT_TRUE(EVP_PKEY_get_bn_param(pkey, "n", &n));
        pub.unique.rsa.size = (UINT16) BN_num_bytes(n);
        ASSERT_EQ(BN_bn2bin(n, pub.unique.rsa.buffer), 256);
        BN_free(n);
        ASSERT_EQ(Tss2_MU_TPMT_PUBLIC_Marshal(&pub, buf, sizeof(buf), &offset), TSS2_RC_SUCCESS);
        name[0] = 0x00, name[1] = 0x0B;
        sha256_of(buf, offset, name + 2);
        *name_size = 34;
}

/* ---- encodings -------------------------------------------------------------------------------- */

static char *hex(const uint8_t *p, size_t n) {
        char *s = malloc(2 * n + 1);

        ASSERT_TRUE(s);
        for (size_t i = 0; i < n; i++)
                sprintf(s + 2 * i, "%02x", p[i]);
        return s;
}

static char *b64(const void *p, size_t n) {
        char *s = malloc(4 * ((n + 2) / 3) + 1);

        ASSERT_TRUE(s);
        EVP_EncodeBlock((unsigned char *) s, p, (int) n);
        return s;
}

static uint8_t *unb64(const char *s, size_t *ret_size) {
        size_t len = strlen(s), pad = 0;
        uint8_t *buf = malloc(len / 4 * 3 + 1);
        int n;

        ASSERT_TRUE(buf);
        ASSERT_TRUE(len > 0 && len % 4 == 0);
        pad = (s[len - 1] == '=') + (s[len - 2] == '=');
        n = EVP_DecodeBlock(buf, (const unsigned char *) s, (int) len);
        ASSERT_TRUE(n >= 0);
        *ret_size = (size_t) n - pad;
        return buf;
}

static bool secrets_equal(const Secret *a, const Secret *b) {
        return a && b && a->size == b->size && memcmp(a->data, b->data, a->size) == 0;
}

/* ---- the token JSON, field by field (formats.md §3.1, §3.5) ------------------------------------ */

static void check_token(const Tpm2Sealed *s, int keyslot, bool signed_policy) {
        static const char *const keys_plain[] = {
                "type", "keyslots", "tpm2-blob", "tpm2-pcrs", "tpm2-pcr-bank", "tpm2-primary-alg",
                "tpm2-policy-hash", "tpm2-pin",
        };
        static const char *const keys_signed[] = {
                "type", "keyslots", "tpm2-blob", "tpm2-pcrs", "tpm2-pcr-bank", "tpm2-primary-alg",
                "tpm2-policy-hash", "tpm2-pin", "tpm2_pubkey_pcrs", "tpm2_pubkey",
        };
        const char *const *keys = signed_policy ? keys_signed : keys_plain;
        size_t n_keys = signed_policy ? ELEMENTSOF(keys_signed) : ELEMENTSOF(keys_plain), i = 0;
        json_object *token = tpm2_token_json(s, keyslot), *reparsed, *v;
        const char *text;
        char slot[16], *h;
        uint8_t *blob;
        size_t blob_size, offset = 0;
        TPM2B_PRIVATE private = {};
        TPM2B_PUBLIC public = {};

        ASSERT_TRUE(token);
        text = json_object_to_json_string_ext(token, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        printf("token: %s\n", text);
        reparsed = json_tokener_parse(text);
        ASSERT_TRUE(reparsed);

        /* Exactly these keys, in v252's order. */
        json_object_object_foreach(reparsed, key, val) {
                (void) val;
                ASSERT_TRUE(i < n_keys);
                ASSERT_STREQ(key, keys[i]);
                i++;
        }
        ASSERT_EQ(i, n_keys);

        ASSERT_TRUE(json_object_object_get_ex(reparsed, "type", &v));
        ASSERT_STREQ(json_object_get_string(v), "systemd-tpm2");

        snprintf(slot, sizeof(slot), "%d", keyslot);
        ASSERT_TRUE(json_object_object_get_ex(reparsed, "keyslots", &v));
        ASSERT_TRUE(json_object_is_type(v, json_type_array));
        ASSERT_EQ(json_object_array_length(v), 1);
        ASSERT_TRUE(json_object_is_type(json_object_array_get_idx(v, 0), json_type_string));
        ASSERT_STREQ(json_object_get_string(json_object_array_get_idx(v, 0)), slot);

        ASSERT_TRUE(json_object_object_get_ex(reparsed, "tpm2-pcrs", &v));
        ASSERT_TRUE(json_object_is_type(v, json_type_array));
        ASSERT_EQ(json_object_array_length(v), 1);
        ASSERT_TRUE(json_object_is_type(json_object_array_get_idx(v, 0), json_type_int));
        ASSERT_EQ(json_object_get_int(json_object_array_get_idx(v, 0)), 7);

        ASSERT_TRUE(json_object_object_get_ex(reparsed, "tpm2-pcr-bank", &v));
        ASSERT_TRUE(json_object_is_type(v, json_type_string));
        ASSERT_STREQ(json_object_get_string(v), "sha256");

        ASSERT_TRUE(json_object_object_get_ex(reparsed, "tpm2-primary-alg", &v));
        ASSERT_TRUE(json_object_is_type(v, json_type_string));
        ASSERT_STREQ(json_object_get_string(v), "ecc");

        ASSERT_TRUE(json_object_object_get_ex(reparsed, "tpm2-pin", &v));
        ASSERT_TRUE(json_object_is_type(v, json_type_boolean));
        ASSERT_EQ(json_object_get_boolean(v), s->pin);

        /* Policy hash: 64 lowercase hex digits of the digest. */
        ASSERT_TRUE(json_object_object_get_ex(reparsed, "tpm2-policy-hash", &v));
        ASSERT_TRUE(json_object_is_type(v, json_type_string));
        ASSERT_EQ(strlen(json_object_get_string(v)), 64);
        ASSERT_EQ(strspn(json_object_get_string(v), "0123456789abcdef"), 64);
        h = hex(s->policy_hash, 32);
        ASSERT_STREQ(json_object_get_string(v), h);
        free(h);

        /* Blob: one base64 string; TPM2B_PRIVATE then TPM2B_PUBLIC and nothing else. */
        ASSERT_TRUE(json_object_object_get_ex(reparsed, "tpm2-blob", &v));
        ASSERT_TRUE(json_object_is_type(v, json_type_string));
        blob = unb64(json_object_get_string(v), &blob_size);
        ASSERT_EQ(blob_size, s->blob_size);
        ASSERT_TRUE(memcmp(blob, s->blob, blob_size) == 0);
        ASSERT_EQ(Tss2_MU_TPM2B_PRIVATE_Unmarshal(blob, blob_size, &offset, &private), TSS2_RC_SUCCESS);
        ASSERT_EQ(Tss2_MU_TPM2B_PUBLIC_Unmarshal(blob, blob_size, &offset, &public), TSS2_RC_SUCCESS);
        ASSERT_EQ(offset, blob_size);
        free(blob);

        /* The sealed object (§3.3). */
        ASSERT_EQ(public.publicArea.type, TPM2_ALG_KEYEDHASH);
        ASSERT_EQ(public.publicArea.nameAlg, TPM2_ALG_SHA256);
        ASSERT_EQ(public.publicArea.objectAttributes, TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT);
        ASSERT_EQ(public.publicArea.parameters.keyedHashDetail.scheme.scheme, TPM2_ALG_NULL);
        ASSERT_EQ(public.publicArea.authPolicy.size, 32);
        ASSERT_TRUE(memcmp(public.publicArea.authPolicy.buffer, s->policy_hash, 32) == 0);
        ASSERT_TRUE(private.size > 0);

        if (signed_policy) {
                uint8_t *pem;
                size_t pem_size;

                ASSERT_TRUE(json_object_object_get_ex(reparsed, "tpm2_pubkey_pcrs", &v));
                ASSERT_TRUE(json_object_is_type(v, json_type_array));
                ASSERT_EQ(json_object_array_length(v), 1);
                ASSERT_EQ(json_object_get_int(json_object_array_get_idx(v, 0)), 11);

                /* base64 of the PEM file's bytes (§3.1) */
                ASSERT_TRUE(json_object_object_get_ex(reparsed, "tpm2_pubkey", &v));
                ASSERT_TRUE(json_object_is_type(v, json_type_string));
                pem = unb64(json_object_get_string(v), &pem_size);
                ASSERT_EQ(pem_size, strlen(s->pubkey_pem));
                ASSERT_TRUE(memcmp(pem, s->pubkey_pem, pem_size) == 0);
                free(pem);
        }

        ASSERT_FALSE(json_object_object_get_ex(reparsed, "tpm2_srk", NULL));
        ASSERT_FALSE(json_object_object_get_ex(reparsed, "tpm2_salt", NULL));
        ASSERT_FALSE(json_object_object_get_ex(reparsed, "tpm2_pcrlock", NULL));

        json_object_put(reparsed);
        json_object_put(token);
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void test_check_missing_device(void) {
        Tpm2Status st = {};

        ASSERT_EQ(tpm2_check("device:/dev/imprint-no-such-tpm", &st), 0);
        ASSERT_FALSE(st.present);
        ASSERT_CONTAINS(st.problem, "/dev/imprint-no-such-tpm does not exist");
        printf("missing device: %s\n", st.problem);
        tpm2_status_done(&st);
}

static void test_check_swtpm(void) {
        Tpm2Status st = {};

        ASSERT_EQ(tpm2_check(tpm.tcti, &st), 1);
        ASSERT_TRUE(st.present);
        ASSERT_TRUE(st.sha256_bank);
        ASSERT_FALSE(st.lockout);
        ASSERT_TRUE(st.transient_room);
        ASSERT_TRUE(st.problem == NULL);
        tpm2_status_done(&st);
}

static Tpm2Context *open_ctx(void) {
        Tpm2Context *c = NULL;

        ASSERT_OK(tpm2_context_new(tpm.tcti, &c));
        return c;
}

static void test_passphrase(const Secret *secret) {
        _cleanup_(secret_freep) Secret *pass = NULL;
        char *argv[] = { "base64", "-w0", NULL };
        char *reference = NULL;

        ASSERT_OK(tpm2_secret_to_passphrase(secret, &pass));
        ASSERT_EQ(pass->size, 44);
        ASSERT_EQ(strlen((const char *) pass->data), 44);
        ASSERT_TRUE(pass->data[43] == '=');
        /* coreutils base64 as the reference encoder; the secret goes through a pipe. */
        ASSERT_OK(run_command(argv, &(RunOptions) { .stdin_data = secret->data, .stdin_size = secret->size,
                                                    .ret_stdout = &reference }));
        ASSERT_STREQ((const char *) pass->data, reference);
        secret_wipe(reference, strlen(reference));
        free(reference);
}

/* Build the LUKS2 header like systemd-cryptenroll: the passphrase in keyslot 1 under PBKDF2-SHA512
 * with 1000 iterations (§3.2), the token imported and assigned through its keyslots field. */
static void make_luks_image(const char *path, const Secret *passphrase, const Tpm2Sealed *s, int keyslot) {
        _cleanup_(secret_freep) Secret *initial = secret_new(32);
        char slot[16], fdpath[32];
        json_object *token;
        const char *json;
        int pipefd[2], fd;

        snprintf(slot, sizeof(slot), "%d", keyslot);
        ASSERT_TRUE(initial);
        ASSERT_EQ(getrandom(initial->data, 32, 0), 32);

        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(ftruncate(fd, 32 << 20) == 0);
        close(fd);

        {
                char *argv[] = { "cryptsetup", "luksFormat", "--type", "luks2", "--batch-mode", "--pbkdf", "pbkdf2",
                                 "--pbkdf-force-iterations", "1000", "--key-file", "-", (char *) path, NULL };
                ASSERT_OK(run_command(argv, &(RunOptions) { .stdin_data = initial->data, .stdin_size = initial->size }));
        }

        /* The existing key through a pipe on an inherited fd, the new one on stdin. */
        ASSERT_TRUE(pipe2(pipefd, O_CLOEXEC) == 0);
        ASSERT_TRUE(write_full(pipefd[1], initial->data, initial->size));
        close(pipefd[1]);
        snprintf(fdpath, sizeof(fdpath), "/dev/fd/%d", pipefd[0]);
        {
                char *argv[] = { "cryptsetup", "luksAddKey", "--batch-mode", "--pbkdf", "pbkdf2", "--hash", "sha512",
                                 "--pbkdf-force-iterations", "1000", "--key-file", fdpath, "--new-key-slot", slot,
                                 "--new-keyfile", "-", (char *) path, NULL };
                ASSERT_OK(run_command(argv, &(RunOptions) { .stdin_data = passphrase->data,
                                                            .stdin_size = passphrase->size, .keep_fd = pipefd[0] }));
        }
        close(pipefd[0]);

        token = tpm2_token_json(s, keyslot);
        ASSERT_TRUE(token);
        json = json_object_to_json_string_ext(token, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        {
                char *argv[] = { "cryptsetup", "token", "import", "--token-id", "0", "--json-file", "-", (char *) path, NULL };
                ASSERT_OK(run_command(argv, &(RunOptions) { .stdin_data = json, .stdin_size = strlen(json) }));
        }
        json_object_put(token);
}

static void check_luks_listing(const char *path, int keyslot, const Tpm2Sealed *s) {
        char *out = NULL, want[64], *save = NULL;
        bool found = false;

        {
                char *argv[] = { "systemd-cryptenroll", (char *) path, NULL };
                ASSERT_OK(run_command(argv, &(RunOptions) { .ret_stdout = &out }));
        }
        printf("--- systemd-cryptenroll %s\n%s---\n", path, out);
        for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                int n;
                char type[32];
                if (sscanf(line, " %d %31s", &n, type) == 2 && n == keyslot) {
                        ASSERT_STREQ(type, "tpm2");
                        found = true;
                }
        }
        ASSERT_TRUE(found);
        free(out), out = NULL;

        {
                char *argv[] = { "cryptsetup", "luksDump", (char *) path, NULL };
                ASSERT_OK(run_command(argv, &(RunOptions) { .ret_stdout = &out }));
        }
        printf("--- cryptsetup luksDump %s (tokens)\n%s---\n", path, strstr(out, "Tokens:") ?: out);
        ASSERT_CONTAINS(out, "0: systemd-tpm2");
        snprintf(want, sizeof(want), "Keyslot:    %d", keyslot);
        ASSERT_CONTAINS(strstr(out, "Tokens:"), want);
        /* These lines come from systemd's plugin (cryptsetup_token_dump()), so it parsed the token. */
        ASSERT_CONTAINS(out, "tpm2-hash-pcrs:   7\n");
        ASSERT_CONTAINS(out, "tpm2-pcr-bank:    sha256\n");
        ASSERT_CONTAINS(out, "tpm2-primary-alg: ecc\n");
        ASSERT_CONTAINS(out, s->pin ? "tpm2-pin:         true\n" : "tpm2-pin:         false\n");
        ASSERT_CONTAINS(out, s->pubkey_pcr_mask ? "tpm2-pubkey-pcrs: 11\n" : "tpm2-pubkey-pcrs: n/a\n");
        free(out);
}

static int test_passphrase_opens(const char *path, int keyslot, const Secret *passphrase) {
        char slot[16];
        char *argv[] = { "cryptsetup", "open", "--test-passphrase", "--key-slot", slot, "--key-file", "-",
                         (char *) path, NULL };

        snprintf(slot, sizeof(slot), "%d", keyslot);
        return run_command(argv, &(RunOptions) { .stdin_data = passphrase->data, .stdin_size = passphrase->size });
}

/* systemd's own token plugin, as systemd-cryptsetup would call it, against swtpm (swtpm-util.h). */
static int plugin_unlocks(const char *path, const char *signature, const Secret *pin) {
        return swtpm_plugin_unlocks(&tpm, path, signature, pin);
}

static char *write_signature(const char *name, EVP_PKEY *pkey, const uint8_t pcr11[32]) {
        uint8_t approved[32] = {}, fp[32], sig[512];
        unsigned char *der = NULL;
        size_t sig_size = sizeof(sig);
        char path[512], *json, *fph, *polh, *sigb;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        int der_size, fd;

        /* The policy systemd-measure signs: PolicyPCR over PCR 11 alone, from a zero digest. */
        policy_pcr(approved, 11, pcr11);
        ASSERT_TRUE(md);
        ASSERT_TRUE(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) == 1);
        ASSERT_TRUE(EVP_DigestSign(md, sig, &sig_size, approved, sizeof(approved)) == 1);
        EVP_MD_CTX_free(md);
        der_size = i2d_PublicKey(pkey, &der); /* "pkfp": S252 pubkey_fingerprint() */
        ASSERT_TRUE(der_size > 0);
        sha256_of(der, (size_t) der_size, fp);
        OPENSSL_free(der);

        fph = hex(fp, 32), polh = hex(approved, 32), sigb = b64(sig, sig_size);
        ASSERT_TRUE(asprintf(&json, "{\"sha256\":[{\"pcrs\":[11],\"pkfp\":\"%s\",\"pol\":\"%s\",\"sig\":\"%s\"}]}",
                             fph, polh, sigb) > 0);
        free(fph), free(polh), free(sigb);

        snprintf(path, sizeof(path), "%s/%s", workdir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(write_full(fd, json, strlen(json)));
        close(fd);
        return json;
}

int main(void) {
        _cleanup_(secret_freep) Secret *secret = NULL, *again = NULL, *pin_secret = NULL, *signed_secret = NULL,
                *passphrase = NULL, *signed_passphrase = NULL, *pin_passphrase = NULL, *pin = NULL, *wrong_pin = NULL;
        Tpm2Sealed sealed = {}, pin_sealed = {}, signed_sealed = {}, parsed = {};
        uint8_t pcr7[32], pcr11[32], expected[32];
        uint8_t name[34];
        size_t name_size;
        char image[512], signed_image[512], pin_image[512], sig_path[512], *pem = NULL, *signature = NULL;
        EVP_PKEY *pkey;
        Tpm2Context *c;
        json_object *token;
        BIO *bio;

        if (swtpm_test_requirements() != 0)
                return 77;
        setvbuf(stdout, NULL, _IOLBF, 0);
        log_set_max_level(LOG_INFO);
        /* The tss2 libraries log TCTI trouble to stderr; errors reach us as return codes anyway. */
        setenv("TSS2_LOG", "all+NONE", 1);

        ASSERT_TRUE(mkdtemp(workdir));
        have_workdir = true;
        atexit(cleanup);
        signal(SIGABRT, on_abort);
        swtpm_start(&tpm, workdir);
        swtpm_start_relay(&tpm);

        /* Pre-flight. */
        test_check_missing_device();
        test_check_swtpm();

        /* Seal and unseal on one connection. */
        c = open_ctx();
        ASSERT_OK(tpm2_seal(c, TPM2_PCR_MASK_DEFAULT, NULL, 0, &secret, &sealed));
        ASSERT_EQ(secret->size, 32);
        ASSERT_STREQ(sealed.primary_alg, "ecc");
        ASSERT_STREQ(sealed.pcr_bank, "sha256");
        ASSERT_EQ(sealed.pcr_mask, 1u << 7);
        ASSERT_EQ(sealed.pubkey_pcr_mask, 0);
        ASSERT_FALSE(sealed.pin);
        ASSERT_OK(tpm2_unseal(c, &sealed, &again));
        ASSERT_TRUE(secrets_equal(secret, again));
        again = secret_free(again);

        test_passphrase(secret);
        ASSERT_OK(tpm2_secret_to_passphrase(secret, &passphrase));
        check_token(&sealed, 1, false);

        /* The token read back unseals too. */
        token = tpm2_token_json(&sealed, 1);
        ASSERT_EQ(tpm2_token_parse(token, &parsed), 1);
        json_object_put(token);
        ASSERT_OK(tpm2_unseal(c, &parsed, &again));
        ASSERT_TRUE(secrets_equal(secret, again));
        again = secret_free(again);
        tpm2_sealed_done(&parsed);

        /* With a PIN (v252's unsalted SHA256). */
        pin = secret_new_from("1234-abcd", 9);
        wrong_pin = secret_new_from("1234-abce", 9);
        ASSERT_OK(tpm2_seal_with_pin(c, TPM2_PCR_MASK_DEFAULT, NULL, 0, pin, &pin_secret, &pin_sealed));
        ASSERT_TRUE(pin_sealed.pin);
        ASSERT_OK(tpm2_secret_to_passphrase(pin_secret, &pin_passphrase));
        check_token(&pin_sealed, 2, false);
        ASSERT_OK(tpm2_unseal_full(c, &pin_sealed, pin, NULL, &again));
        ASSERT_TRUE(secrets_equal(pin_secret, again));
        again = secret_free(again);
        ASSERT_EQ(tpm2_unseal(c, &pin_sealed, &again), -ENOANO);
        ASSERT_EQ(tpm2_unseal_full(c, &pin_sealed, wrong_pin, NULL, &again), -EACCES);
        printf("wrong PIN: %s\n", error_message());

        /* A signed PCR 11 policy before the literal PCR 7 one. */
        pkey = EVP_RSA_gen(2048);
        ASSERT_TRUE(pkey);
        bio = BIO_new(BIO_s_mem());
        ASSERT_TRUE(bio && PEM_write_bio_PUBKEY(bio, pkey) == 1);
        {
                char *p;
                long n = BIO_get_mem_data(bio, &p);
                pem = strndup(p, (size_t) n);
                ASSERT_TRUE(pem);
        }
        BIO_free(bio);
        ASSERT_OK(tpm2_seal(c, TPM2_PCR_MASK_DEFAULT, pem, TPM2_PUBKEY_PCR_MASK_DEFAULT, &signed_secret, &signed_sealed));
        ASSERT_EQ(signed_sealed.pubkey_pcr_mask, 1u << 11);
        check_token(&signed_sealed, 1, true);
        ASSERT_EQ(tpm2_unseal(c, &signed_sealed, &again), -ENXIO);
        ASSERT_OK(tpm2_secret_to_passphrase(signed_secret, &signed_passphrase));
        c = tpm2_context_free(c);

        /* The policy hashes from the specification, with PCRs read on a separate connection. */
        {
                TestEsys t = test_esys_open(tpm.tcti);
                pcr_read(&t, 7, pcr7);
                pcr_read(&t, 11, pcr11);
                test_esys_close(&t);
        }
        memset(expected, 0, 32);
        policy_pcr(expected, 7, pcr7);
        ASSERT_TRUE(memcmp(expected, sealed.policy_hash, 32) == 0);
        policy_auth_value(expected);
        ASSERT_TRUE(memcmp(expected, pin_sealed.policy_hash, 32) == 0);
        rsa_key_name(pkey, name, &name_size);
        policy_authorize(expected, name, name_size);
        policy_pcr(expected, 7, pcr7);
        ASSERT_TRUE(memcmp(expected, signed_sealed.policy_hash, 32) == 0);
        printf("policy hashes match the specification's formulas\n");

        /* Unsealing the signed policy needs the signature over PCR 11's current policy. */
        signature = write_signature("tpm2-pcr-signature.json", pkey, pcr11);
        snprintf(sig_path, sizeof(sig_path), "%s/tpm2-pcr-signature.json", workdir);
        c = open_ctx();
        ASSERT_OK(tpm2_unseal_full(c, &signed_sealed, NULL, signature, &again));
        ASSERT_TRUE(secrets_equal(signed_secret, again));
        again = secret_free(again);
        c = tpm2_context_free(c);

        /* THE REFEREE: stock cryptsetup, systemd-cryptenroll and systemd's token plugin. */
        snprintf(image, sizeof(image), "%s/luks.img", workdir);
        make_luks_image(image, passphrase, &sealed, 1);
        check_luks_listing(image, 1, &sealed);
        ASSERT_OK(test_passphrase_opens(image, 1, passphrase));
        ASSERT_TRUE(test_passphrase_opens(image, 1, signed_passphrase) < 0);
        ASSERT_OK(plugin_unlocks(image, NULL, NULL));
        printf("systemd's token plugin unlocked %s through swtpm\n", image);

        snprintf(signed_image, sizeof(signed_image), "%s/luks-signed.img", workdir);
        make_luks_image(signed_image, signed_passphrase, &signed_sealed, 1);
        check_luks_listing(signed_image, 1, &signed_sealed);
        ASSERT_OK(test_passphrase_opens(signed_image, 1, signed_passphrase));
        ASSERT_TRUE(plugin_unlocks(signed_image, NULL, NULL) < 0);
        ASSERT_OK(plugin_unlocks(signed_image, sig_path, NULL));
        printf("systemd's token plugin unlocked %s with the signed PCR 11 policy\n", signed_image);

        /* The PIN token: systemd hashes the PIN as we do. */
        snprintf(pin_image, sizeof(pin_image), "%s/luks-pin.img", workdir);
        make_luks_image(pin_image, pin_passphrase, &pin_sealed, 2);
        check_luks_listing(pin_image, 2, &pin_sealed);
        ASSERT_TRUE(plugin_unlocks(pin_image, NULL, wrong_pin) < 0);
        ASSERT_OK(plugin_unlocks(pin_image, NULL, pin));
        printf("systemd's token plugin unlocked %s with the PIN\n", pin_image);

        /* A changed PCR 7: we and systemd both refuse. */
        pcr_extend(7);
        c = open_ctx();
        ASSERT_EQ(tpm2_unseal(c, &sealed, &again), -EPERM);
        ASSERT_CONTAINS(error_message(), "PCR 7");
        printf("after extending PCR 7: %s\n", error_message());
        ASSERT_EQ(tpm2_unseal_full(c, &signed_sealed, NULL, signature, &again), -EPERM);
        c = tpm2_context_free(c);
        ASSERT_TRUE(plugin_unlocks(image, NULL, NULL) < 0);
        printf("systemd's token plugin refuses after the PCR 7 change: %s\n", error_message());

        /* A changed PCR 11: the old signature no longer matches. */
        pcr_extend(11);
        c = open_ctx();
        ASSERT_EQ(tpm2_unseal_full(c, &signed_sealed, NULL, signature, &again), -ENXIO);
        printf("after extending PCR 11: %s\n", error_message());
        c = tpm2_context_free(c);

        /* Still not in lockout after one wrong PIN. */
        test_check_swtpm();

        tpm2_sealed_done(&sealed);
        tpm2_sealed_done(&pin_sealed);
        tpm2_sealed_done(&signed_sealed);
        EVP_PKEY_free(pkey);
        free(pem);
        free(signature);
        printf("ok\n");
        return 0;
}
