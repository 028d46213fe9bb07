/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Recovery keys: format, randomness, normalization, the typed-back check, the QR rendering, the
 * escrow directory's safety checks, and stock cryptsetup as the referee that the string really is
 * the LUKS passphrase. No root needed:
 * cryptsetup formats and tests LUKS2 headers on a plain file. Exits 77 (skip) only if cryptsetup
 * is not installed, after every other check has passed. */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "recovery.h"
#include "run.h"
#include "secret.h"
#include "tests.h"

#define N_KEYS 1000

static const char modhex[] = "cbdefghijklnrtuv";

static int modhex_value(char c) {
        const char *p = c ? strchr(modhex, c) : NULL;
        return p ? (int) (p - modhex) : -1;
}

static void assert_canonical(const Secret *key) {
        ASSERT_EQ(key->size, RECOVERY_KEY_LENGTH);
        ASSERT_EQ(strlen((const char *) key->data), 71);
        for (size_t i = 0; i < RECOVERY_KEY_LENGTH; i++) {
                if (i % 9 == 8)
                        ASSERT_EQ(key->data[i], '-');
                else
                        ASSERT_TRUE(modhex_value((char) key->data[i]) >= 0);
        }
}

/* The key's 32 bytes, decoded independently of the module. */
static void decode_key(const Secret *key, unsigned char out[RECOVERY_KEY_BYTES]) {
        size_t k = 0;
        int nibbles[64];

        for (size_t i = 0; i < RECOVERY_KEY_LENGTH; i++)
                if (key->data[i] != '-')
                        nibbles[k++] = modhex_value((char) key->data[i]);
        ASSERT_EQ(k, 64);
        for (size_t i = 0; i < RECOVERY_KEY_BYTES; i++) {
                ASSERT_TRUE(nibbles[2 * i] >= 0 && nibbles[2 * i + 1] >= 0);
                out[i] = (unsigned char) (nibbles[2 * i] << 4 | nibbles[2 * i + 1]);
        }
        secret_wipe(nibbles, sizeof(nibbles));
}

static double chi_square(const unsigned counts[16], unsigned total) {
        double expected = total / 16.0, chi = 0;

        for (int i = 0; i < 16; i++)
                chi += (counts[i] - expected) * (counts[i] - expected) / expected;
        return chi;
}

static int cmp_keys(const void *a, const void *b) {
        return memcmp(a, b, RECOVERY_KEY_BYTES);
}

static void test_format(void) {
        _cleanup_(secret_freep) Secret *key = NULL;

        ASSERT_OK(recovery_key_generate(&key));
        assert_canonical(key);
        ASSERT_EQ(key->data[71], 0);
        ASSERT_EQ(RECOVERY_KEY_LENGTH, 71);
        ASSERT_EQ(RECOVERY_KEY_BYTES, 32);
}

static void test_randomness(void) {
        unsigned char (*bytes)[RECOVERY_KEY_BYTES] = calloc(N_KEYS, RECOVERY_KEY_BYTES);
        unsigned all[16] = {}, high[16] = {}, low[16] = {};
        double chi_all, chi_high, chi_low;

        ASSERT_TRUE(bytes);
        for (size_t k = 0; k < N_KEYS; k++) {
                _cleanup_(secret_freep) Secret *key = NULL;

                ASSERT_OK(recovery_key_generate(&key));
                assert_canonical(key);
                decode_key(key, bytes[k]);
                for (size_t i = 0; i < RECOVERY_KEY_BYTES; i++) {
                        all[bytes[k][i] >> 4]++, all[bytes[k][i] & 0xf]++;
                        high[bytes[k][i] >> 4]++, low[bytes[k][i] & 0xf]++;
                }
        }

        qsort(bytes, N_KEYS, RECOVERY_KEY_BYTES, cmp_keys);
        for (size_t k = 1; k < N_KEYS; k++)
                ASSERT_TRUE(memcmp(bytes[k - 1], bytes[k], RECOVERY_KEY_BYTES) != 0);

        /* 15 degrees of freedom: mean 15, standard deviation 5.5. A bound of 80 is beyond p = 1e-10
         * for fair random bytes, yet a stuck bit (a nibble value never appearing, or one appearing
         * twice as often) lands in the thousands. */
        chi_all = chi_square(all, N_KEYS * 64);
        chi_high = chi_square(high, N_KEYS * 32);
        chi_low = chi_square(low, N_KEYS * 32);
        printf("nibble chi-square (15 dof): all %.1f, high %.1f, low %.1f\n", chi_all, chi_high, chi_low);
        ASSERT_TRUE(chi_all < 80);
        ASSERT_TRUE(chi_high < 80);
        ASSERT_TRUE(chi_low < 80);

        secret_wipe(bytes, (size_t) N_KEYS * RECOVERY_KEY_BYTES);
        free(bytes);
}

/* A key with distinct, known groups, for the deterministic tests. */
#define KNOWN_KEY "cbdefghi-jklnrtuv-vutrnlkj-ihgfedbc-ccccbbbb-ddddeeee-ffffgggg-hhhhiiii"

static Secret *known_key(void) {
        Secret *k = NULL;

        ASSERT_OK(recovery_key_normalize(KNOWN_KEY, &k));
        ASSERT_STREQ((const char *) k->data, KNOWN_KEY);
        return k;
}

/* The key, transformed as a person might type it, in a Secret. */
static Secret *typed_form(const Secret *key, bool upper, bool dashes, const char *sep) {
        Secret *t = secret_new(256);
        size_t at = 0;

        ASSERT_TRUE(t);
        for (size_t i = 0; i < RECOVERY_KEY_LENGTH; i++) {
                unsigned char c = key->data[i];
                if (c == '-') {
                        if (dashes)
                                t->data[at++] = '-';
                        for (const char *s = sep; *s; s++)
                                t->data[at++] = (unsigned char) *s;
                        continue;
                }
                t->data[at++] = upper ? (unsigned char) toupper(c) : c;
        }
        t->data[at] = 0;
        t->size = at;
        return t;
}

static void assert_normalizes_to(const Secret *key, const char *typed) {
        _cleanup_(secret_freep) Secret *n = NULL;

        ASSERT_OK(recovery_key_normalize(typed, &n));
        ASSERT_EQ(n->size, RECOVERY_KEY_LENGTH);
        ASSERT_TRUE(memcmp(n->data, key->data, RECOVERY_KEY_LENGTH + 1) == 0);
}

static void assert_rejected(const Secret *key, const char *typed, const char *expect) {
        Secret *n = NULL;
        const char *msg;

        error_clear();
        ASSERT_EQ(recovery_key_normalize(typed, &n), -EINVAL);
        ASSERT_TRUE(!n);
        msg = error_message();
        ASSERT_CONTAINS(msg, expect);
        /* Never the key, not even one of its groups. */
        if (key)
                for (size_t g = 0; g < 8; g++) {
                        char group[9];
                        memcpy(group, key->data + g * 9, 8);
                        group[8] = 0;
                        ASSERT_TRUE(!strstr(msg, group));
                }
}

static void test_normalize(void) {
        _cleanup_(secret_freep) Secret *key = NULL, *t = NULL;
        char buf[256];

        ASSERT_OK(recovery_key_generate(&key));
        assert_normalizes_to(key, (const char *) key->data);

        t = typed_form(key, true, true, "");
        assert_normalizes_to(key, (const char *) t->data);
        t = secret_free(t);

        t = typed_form(key, true, false, "");
        assert_normalizes_to(key, (const char *) t->data);
        t = secret_free(t);

        t = typed_form(key, false, false, "");
        assert_normalizes_to(key, (const char *) t->data);
        t = secret_free(t);

        t = typed_form(key, false, false, " ");
        assert_normalizes_to(key, (const char *) t->data);
        t = secret_free(t);

        t = typed_form(key, true, true, "  ");
        snprintf(buf, sizeof(buf), "   %s \n", (const char *) t->data);
        assert_normalizes_to(key, buf);
        /* A space inside a group, as a person reading in pairs might type it. */
        snprintf(buf, sizeof(buf), "%.4s %s", (const char *) t->data, (const char *) t->data + 4);
        assert_normalizes_to(key, buf);
        t = secret_free(t);
        secret_wipe(buf, sizeof(buf));

        /* Rejections: the messages say what is wrong without echoing the key. */
        secret_free(key);
        key = known_key();
        t = typed_form(key, false, false, "");
        ASSERT_EQ(t->size, 64);

        memcpy(buf, t->data, 63), buf[63] = 0;
        assert_rejected(key, buf, "has 63 letters, but it must have 64");
        memcpy(buf, t->data, 64), buf[64] = 'c', buf[65] = 0;
        assert_rejected(key, buf, "has 65 letters, but it must have 64");
        snprintf(buf, sizeof(buf), "%s-cbdefghi", (const char *) key->data);
        assert_rejected(key, buf, "has 72 letters");

        memcpy(buf, key->data, 72);
        buf[12] = 'a'; /* group 2, character 4 */
        assert_rejected(key, buf, "'a' (group 2, character 4)");
        buf[12] = 'A';
        assert_rejected(key, buf, "'A' (group 2, character 4)");
        memcpy(buf, t->data, 65);
        buf[63] = 'x'; /* last letter, without dashes */
        assert_rejected(key, buf, "'x' (group 8, character 8)");
        memcpy(buf, t->data, 65);
        buf[0] = (char) 0xc3, buf[1] = (char) 0xa9; /* é */
        assert_rejected(key, buf, "a character that is not one of its letters (group 1, character 1)");
        assert_rejected(NULL, "", "No recovery key");
        assert_rejected(NULL, NULL, "No recovery key");
        assert_rejected(NULL, "   ---  ", "has 0 letters");
        secret_wipe(buf, sizeof(buf));
}

static void test_challenge(void) {
        unsigned groups[8], seen[9][9] = {};

        for (unsigned n = 1; n <= 8; n++) {
                ASSERT_OK(recovery_key_challenge(n, groups, ELEMENTSOF(groups)));
                for (unsigned i = 0; i < n; i++) {
                        ASSERT_TRUE(groups[i] >= 1 && groups[i] <= 8);
                        if (i > 0)
                                ASSERT_TRUE(groups[i - 1] < groups[i]); /* sorted, hence distinct */
                }
        }

        /* Every pair of groups comes up: 28 pairs in 2000 draws. */
        for (unsigned k = 0; k < 2000; k++) {
                ASSERT_OK(recovery_key_challenge(2, groups, 2));
                seen[groups[0]][groups[1]]++;
        }
        for (unsigned a = 1; a <= 8; a++)
                for (unsigned b = a + 1; b <= 8; b++)
                        ASSERT_TRUE(seen[a][b] > 0);

        ASSERT_EQ(recovery_key_challenge(0, groups, 8), -EINVAL);
        ASSERT_EQ(recovery_key_challenge(9, groups, 9), -EINVAL);
        ASSERT_EQ(recovery_key_challenge(3, groups, 2), -EINVAL);
        ASSERT_EQ(recovery_key_challenge(2, NULL, 2), -EINVAL);
}

static void assert_check_rejected(const Secret *key, const unsigned groups[], size_t n, const char *typed, const char *expect) {
        error_clear();
        ASSERT_EQ(recovery_key_check_groups(key, groups, n, typed), -EKEYREJECTED);
        ASSERT_CONTAINS(error_message(), expect);
}

static void test_check_groups(void) {
        _cleanup_(secret_freep) Secret *key = known_key(), *random_key = NULL;
        const unsigned g37[] = { 3, 7 }, g4[] = { 4 }, g73[] = { 7, 3 };
        const unsigned bad0[] = { 0 }, bad9[] = { 2, 9 };
        unsigned groups[2];
        char typed[64];

        /* Groups 3 and 7 of KNOWN_KEY are vutrnlkj and ffffgggg. */
        ASSERT_OK(recovery_key_check_groups(key, g37, 2, "vutrnlkjffffgggg"));
        ASSERT_OK(recovery_key_check_groups(key, g37, 2, "VUTRNLKJ-FFFFGGGG"));
        ASSERT_OK(recovery_key_check_groups(key, g37, 2, "  vutr nlkj  FFFF gggg \n"));
        ASSERT_OK(recovery_key_check_groups(key, g73, 2, "ffffgggg vutrnlkj"));
        ASSERT_OK(recovery_key_check_groups(key, g4, 1, "ihgfedbc"));

        /* One wrong letter, in either group; both wrong: all compared, no early exit. */
        assert_check_rejected(key, g37, 2, "vutrnlkjffffggg", "16 letters of recovery key groups 3 and 7");
        assert_check_rejected(key, g37, 2, "vutrnlkjffffgggh", "group 7 does not match");
        assert_check_rejected(key, g37, 2, "cutrnlkjffffgggg", "group 3 does not match");
        assert_check_rejected(key, g37, 2, "cutrnlkjffffgggh", "groups 3 and 7 do not match");
        assert_check_rejected(key, g37, 2, "ffffggggvutrnlkj", "groups 3 and 7 do not match"); /* swapped */
        /* The wrong group: group 4's letters where group 3 was asked for. */
        assert_check_rejected(key, g37, 2, "ihgfedbcffffgggg", "group 3 does not match");
        assert_check_rejected(key, g4, 1, "vutrnlkj", "group 4 does not match");
        assert_check_rejected(key, g4, 1, "", "8 letters of recovery key group 4;");
        assert_check_rejected(key, g4, 1, NULL, "0 letters were typed");

        ASSERT_EQ(recovery_key_check_groups(key, bad0, 1, "cbdefghi"), -EINVAL);
        ASSERT_EQ(recovery_key_check_groups(key, bad9, 2, "cbdefghicbdefghi"), -EINVAL);
        ASSERT_EQ(recovery_key_check_groups(key, g37, 0, ""), -EINVAL);
        ASSERT_EQ(recovery_key_check_groups(NULL, g37, 2, "vutrnlkjffffgggg"), -EINVAL);
        {
                _cleanup_(secret_freep) Secret *bad = secret_new_from("cbdefghi", 8);
                ASSERT_EQ(recovery_key_check_groups(bad, g4, 1, "cbdefghi"), -EINVAL);
        }

        /* The whole flow with a random key and a random challenge. */
        ASSERT_OK(recovery_key_generate(&random_key));
        ASSERT_OK(recovery_key_challenge(2, groups, ELEMENTSOF(groups)));
        snprintf(typed, sizeof(typed), "%.8s %.8s", (const char *) random_key->data + (groups[0] - 1) * 9,
                 (const char *) random_key->data + (groups[1] - 1) * 9);
        ASSERT_OK(recovery_key_check_groups(random_key, groups, 2, typed));
        typed[3] = typed[3] == 'c' ? 'b' : 'c';
        ASSERT_EQ(recovery_key_check_groups(random_key, groups, 2, typed), -EKEYREJECTED);
        secret_wipe(typed, sizeof(typed));
}

/* ---- QR code ---- */

typedef struct Matrix {
        size_t side;      /* modules, quiet zone included */
        bool light[256][256];
} Matrix;

/* Reads the ASCII rendering back into modules; checks its shape on the way. */
static void parse_ascii(const Secret *text, Matrix *m) {
        const char *p = (const char *) text->data;
        size_t rows = 0;

        ASSERT_EQ(strlen(p), text->size);
        m->side = 0;
        while (*p) {
                const char *nl = strchr(p, '\n');
                size_t len;

                ASSERT_TRUE(nl);
                len = (size_t) (nl - p);
                ASSERT_TRUE(len % 2 == 0);
                if (rows == 0)
                        m->side = len / 2;
                ASSERT_EQ(len / 2, m->side); /* every line as wide as the first */
                ASSERT_TRUE(rows < 256 && m->side < 256);
                for (size_t x = 0; x < m->side; x++) {
                        ASSERT_TRUE(p[2 * x] == p[2 * x + 1]);
                        ASSERT_TRUE(p[2 * x] == '#' || p[2 * x] == ' ');
                        m->light[rows][x] = p[2 * x] == '#';
                }
                rows++;
                p = nl + 1;
        }
        ASSERT_EQ(rows, m->side); /* square */
}

/* Reads the half-block rendering back; the lower half of a last odd line must be blank. */
static void parse_unicode(const Secret *text, Matrix *m, size_t side) {
        const char *p = (const char *) text->data;
        size_t line = 0;

        m->side = side;
        while (*p) {
                size_t x = 0;

                for (; *p && *p != '\n'; x++) {
                        bool top, bottom;

                        if (strncmp(p, "\u2588", 3) == 0)
                                top = bottom = true, p += 3;
                        else if (strncmp(p, "\u2580", 3) == 0)
                                top = true, bottom = false, p += 3;
                        else if (strncmp(p, "\u2584", 3) == 0)
                                top = false, bottom = true, p += 3;
                        else if (*p == ' ')
                                top = bottom = false, p++;
                        else
                                FAIL("unexpected byte 0x%02x in the unicode QR code", (unsigned char) *p);
                        ASSERT_TRUE(x < side);
                        m->light[2 * line][x] = top;
                        if (2 * line + 1 < side)
                                m->light[2 * line + 1][x] = bottom;
                        else
                                ASSERT_FALSE(bottom);
                }
                ASSERT_EQ(x, side);
                ASSERT_EQ(*p, '\n');
                p++;
                line++;
        }
        ASSERT_EQ(line, (side + 1) / 2);
}

static bool dark(const Matrix *m, size_t x, size_t y) {
        return !m->light[y + 4][x + 4]; /* symbol coordinates: past the quiet zone */
}

/* The first module where the 7x7 block at (x0, y0) differs from a finder pattern, or -1. */
static int finder_mismatch(const Matrix *m, size_t x0, size_t y0) {
        for (size_t y = 0; y < 7; y++)
                for (size_t x = 0; x < 7; x++) {
                        bool ring = x == 0 || y == 0 || x == 6 || y == 6;
                        bool core = x >= 2 && x <= 4 && y >= 2 && y <= 4;
                        if (dark(m, x0 + x, y0 + y) != (ring || core))
                                return (int) (y * 7 + x);
                }
        return -1;
}

static void assert_finder(const Matrix *m, size_t x0, size_t y0) {
        int k = finder_mismatch(m, x0, y0);
        if (k >= 0)
                FAIL("finder pattern at (%zu,%zu) wrong at module (%d,%d)", x0, y0, k % 7, k / 7);
}

/* The 15 format bits around the top-left finder (ISO/IEC 18004 §7.9; the bit order libqrencode
 * writes: bit 0 at (8,0) going down column 8, bits 8..14 along row 8 leftwards from column 7),
 * unmasked. Checked against their BCH code, so a misreading cannot pass. */
static unsigned read_format(const Matrix *m) {
        unsigned f = 0, data, rem;

        for (unsigned i = 0; i < 8; i++)
                if (dark(m, 8, i < 6 ? i : i + 1))
                        f |= 1u << i;
        for (unsigned i = 0; i < 7; i++)
                if (dark(m, i == 0 ? 7 : 6 - i, 8))
                        f |= 1u << (8 + i);
        f ^= 0x5412;
        data = f >> 10;
        rem = data << 10;
        for (int b = 14; b >= 10; b--)
                if (rem & (1u << b))
                        rem ^= 0x537u << (b - 10);
        ASSERT_EQ(rem, f & 0x3ff);
        return data;
}

static bool mask_bit(unsigned mask, size_t x, size_t y) {
        size_t i = y, j = x;
        switch (mask) {
        case 0: return (i + j) % 2 == 0;
        case 1: return i % 2 == 0;
        case 2: return j % 3 == 0;
        case 3: return (i + j) % 3 == 0;
        case 4: return (i / 2 + j / 3) % 2 == 0;
        case 5: return (i * j) % 2 + (i * j) % 3 == 0;
        case 6: return ((i * j) % 2 + (i * j) % 3) % 2 == 0;
        default: return ((i + j) % 2 + (i * j) % 3) % 2 == 0;
        }
}

/* When zbarimg (Debian: zbar-tools) is installed, it is a second referee: a real QR decoder reads
 * the modules back (light glyphs as white, as documented) and must find exactly the key. The image
 * goes to it through a pipe, like every secret. */
static void decode_with_zbar(const Matrix *m, const Secret *key) {
        const size_t scale = 4, px = m->side * scale, row_bytes = (px + 7) / 8;
        char *argv[] = { (char *) "zbarimg", (char *) "-q", (char *) "--raw", (char *) "pbm:-", NULL };
        _cleanup_(secret_freep) Secret *pbm = NULL;
        char *out = NULL;
        size_t out_size = 0;
        int header, r;

        if (!find_executable("zbarimg")) {
                printf("zbarimg is not installed (Debian: zbar-tools): QR checked by structure only\n");
                return;
        }

        pbm = secret_new(64 + px * row_bytes);
        ASSERT_TRUE(pbm);
        header = snprintf((char *) pbm->data, 64, "P4\n%zu %zu\n", px, px);
        for (size_t y = 0; y < px; y++)
                for (size_t x = 0; x < px; x++)
                        if (!m->light[y / scale][x / scale]) /* P4: 1 is black */
                                pbm->data[(size_t) header + y * row_bytes + x / 8] |= (unsigned char) (0x80 >> (x % 8));
        pbm->size = (size_t) header + px * row_bytes;

        r = run_command(argv, &(RunOptions) { .stdin_data = pbm->data, .stdin_size = pbm->size,
                                              .ret_stdout = &out, .ret_stdout_size = &out_size, .quiet_stderr = true });
        if (r < 0)
                FAIL("zbarimg could not read the QR code: %s", error_message() ?: strerror(-r));
        ASSERT_EQ(out_size, RECOVERY_KEY_LENGTH + 1);
        ASSERT_TRUE(memcmp(out, key->data, RECOVERY_KEY_LENGTH) == 0 && out[RECOVERY_KEY_LENGTH] == '\n');
        printf("zbarimg decoded the QR code to the key\n");
        secret_wipe(out, out_size);
        free(out);
}

static void test_qr(void) {
        _cleanup_(secret_freep) Secret *key = NULL, *ascii = NULL, *uni = NULL;
        static Matrix ma, mu;
        size_t w, format;
        unsigned first = 0;
        QRcode *q;

        ASSERT_OK(recovery_key_generate(&key));
        ASSERT_OK(recovery_key_qr_text(key, false, &ascii));
        ASSERT_OK(recovery_key_qr_text(key, true, &uni));

        parse_ascii(ascii, &ma);
        w = ma.side - 8;
        ASSERT_TRUE(w >= 21 && (w - 21) % 4 == 0);
        printf("QR code: version %zu, %zu modules, %zu with quiet zone\n", (w - 21) / 4 + 1, w, ma.side);

        /* Quiet zone: 4 light modules all round. */
        for (size_t y = 0; y < ma.side; y++)
                for (size_t x = 0; x < ma.side; x++)
                        if (x < 4 || y < 4 || x >= ma.side - 4 || y >= ma.side - 4)
                                ASSERT_TRUE(ma.light[y][x]);

        /* The three finder patterns, in the top-left, top-right and bottom-left corners, and no
         * fourth one bottom-right; the timing pattern between them. */
        assert_finder(&ma, 0, 0);
        assert_finder(&ma, w - 7, 0);
        assert_finder(&ma, 0, w - 7);
        ASSERT_TRUE(finder_mismatch(&ma, w - 7, w - 7) >= 0);
        for (size_t i = 8; i < w - 8; i++) {
                ASSERT_EQ(dark(&ma, i, 6), i % 2 == 0);
                ASSERT_EQ(dark(&ma, 6, i), i % 2 == 0);
        }

        /* Error correction level M (indicator 00). */
        format = read_format(&ma);
        ASSERT_EQ(format >> 3, 0);

        /* The first codeword, at the bottom-right corner going up in column pairs: mode indicator
         * 0100 (8-bit bytes), then the high nibble of the count, 71 = 0x47: one 8-bit segment of
         * the whole key. */
        for (unsigned b = 0; b < 8; b++) {
                size_t x = w - 1 - b % 2, y = w - 1 - b / 2;
                first = first << 1 | (unsigned) (dark(&ma, x, y) ^ mask_bit(format & 7, x, y));
        }
        ASSERT_EQ(first, 0x44);

        /* Module for module what libqrencode makes of the key (level M, 8-bit, case kept). */
        q = QRcode_encodeString((const char *) key->data, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
        ASSERT_TRUE(q);
        ASSERT_EQ((size_t) q->width, w);
        for (size_t y = 0; y < w; y++)
                for (size_t x = 0; x < w; x++)
                        ASSERT_EQ(dark(&ma, x, y), q->data[y * w + x] & 1);
        secret_wipe(q->data, w * w);
        QRcode_free(q);

        /* The half-block rendering shows the same modules in half the lines. */
        parse_unicode(uni, &mu, ma.side);
        for (size_t y = 0; y < ma.side; y++)
                for (size_t x = 0; x < ma.side; x++)
                        ASSERT_EQ(mu.light[y][x], ma.light[y][x]);

        decode_with_zbar(&mu, key);

        /* A malformed key is refused. */
        {
                _cleanup_(secret_freep) Secret *bad = secret_new_from("cbdefghi", 8), *out = NULL;
                ASSERT_EQ(recovery_key_qr_text(bad, true, &out), -EINVAL);
                ASSERT_TRUE(!out);
        }
        explicit_bzero(&ma, sizeof(ma));
        explicit_bzero(&mu, sizeof(mu));
}

static void test_explanation(void) {
        const char *s = recovery_key_explanation();

        ASSERT_TRUE(s && strlen(s) > 40);
        ASSERT_CONTAINS(s, "QWERTY");
        ASSERT_CONTAINS(s, "QWERTZ");
        ASSERT_CONTAINS(s, "AZERTY");
        ASSERT_TRUE(strchr(s, '\n') == NULL);
        ASSERT_TRUE(s[strlen(s) - 1] == '.');
}

/* ---- The referee: stock cryptsetup takes the key as a LUKS2 passphrase. ---- */

static int cryptsetup_with_key(const char *verb, const char *path, const Secret *passphrase) {
        char *argv_format[] = { (char *) "cryptsetup", (char *) "luksFormat", (char *) "--type", (char *) "luks2",
                                (char *) "--pbkdf", (char *) "pbkdf2", (char *) "--pbkdf-force-iterations", (char *) "1000",
                                (char *) "--batch-mode", (char *) "--key-file=-", (char *) path, NULL };
        char *argv_test[] = { (char *) "cryptsetup", (char *) "open", (char *) "--test-passphrase",
                              (char *) "--key-file=-", (char *) path, NULL };
        RunOptions opts = {
                /* Through a pipe on stdin, exactly the string: no newline, never argv. */
                .stdin_data = passphrase->data,
                .stdin_size = passphrase->size,
                .quiet_stderr = true,
        };

        error_clear();
        return run_command(streq(verb, "format") ? argv_format : argv_test, &opts);
}

static Secret *with_one_wrong_letter(const Secret *key, size_t group) {
        Secret *k = secret_new_from(key->data, key->size);
        size_t at = (group - 1) * 9 + 5;

        ASSERT_TRUE(k);
        k->data[at] = k->data[at] == 'c' ? 'v' : 'c';
        return k;
}

static bool test_cryptsetup(void) {
        _cleanup_(secret_freep) Secret *key = NULL, *typed = NULL, *normalized = NULL, *wrong = NULL;
        char dir[] = "/tmp/test-recovery-XXXXXX", path[64];
        int fd, r;

        if (!find_executable("cryptsetup")) {
                printf("cryptsetup is not installed (Debian: cryptsetup-bin): the LUKS check is skipped\n");
                return false;
        }

        ASSERT_TRUE(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/luks.img", dir);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(ftruncate(fd, 32 * 1024 * 1024) < 0 ? -errno : 0);
        close(fd);

        ASSERT_OK(recovery_key_generate(&key));
        r = cryptsetup_with_key("format", path, key);
        if (r < 0)
                FAIL("luksFormat failed: %s", error_message() ?: strerror(-r));

        /* What a person types: upper case, no dashes. Normalized, cryptsetup accepts it. */
        typed = typed_form(key, true, false, "");
        ASSERT_OK(recovery_key_normalize((const char *) typed->data, &normalized));
        r = cryptsetup_with_key("test", path, normalized);
        if (r < 0)
                FAIL("the normalized key was refused: %s", error_message() ?: strerror(-r));

        /* Unnormalized it is not (systemd-cryptsetup does not normalize either): the reason
         * normalization and the canonical form matter. Exit status 2 is cryptsetup's "no key
         * available with this passphrase", not some other failure. */
        ASSERT_EQ(cryptsetup_with_key("test", path, typed), -EPROTO);
        ASSERT_CONTAINS(error_message(), "exit status 2");

        /* One group wrong: refused. */
        wrong = with_one_wrong_letter(normalized, 5);
        ASSERT_EQ(cryptsetup_with_key("test", path, wrong), -EPROTO);
        ASSERT_CONTAINS(error_message(), "exit status 2");

        /* And the right key still opens it afterwards. */
        ASSERT_OK(cryptsetup_with_key("test", path, key));

        ASSERT_OK(unlink(path) < 0 ? -errno : 0);
        ASSERT_OK(rmdir(dir) < 0 ? -errno : 0);
        return true;
}

/* The escrow directory: only one that nobody but root and the running user can redirect or write
 * into. Ownership by another user needs root to set up; as non-root those cases are left out. */
static void escrow_refused(const char *dir, int err, const char *expect) {
        int fd;

        error_clear();
        fd = recovery_key_escrow_dir_open(dir);
        if (fd >= 0)
                FAIL("escrow directory %s was accepted", dir);
        ASSERT_EQ(fd, err);
        ASSERT_CONTAINS(error_message(), expect);
        printf("escrow refused as it should be: %s\n", error_message());
}

static void escrow_accepted(const char *dir, const char *marker) {
        struct stat st;
        int fd;

        fd = recovery_key_escrow_dir_open(dir);
        if (fd < 0)
                FAIL("escrow directory %s refused: %s", dir, error_message());
        /* The very directory: the marker file in it is seen through the fd. */
        ASSERT_OK(fstatat(fd, marker, &st, 0));
        ASSERT_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
        close(fd);
}

static void test_escrow_dir(void) {
        char base[] = "/tmp/test-escrow.XXXXXX", p[512], q[512], cwd[4096];
        bool root = geteuid() == 0;

        ASSERT_TRUE(mkdtemp(base));
        ASSERT_OK(chmod(base, 0755));
#define P(fmt, ...) (snprintf(p, sizeof(p), "%s/" fmt, base, ##__VA_ARGS__), p)
        ASSERT_OK(mkdir(P("keys"), 0700));
        ASSERT_OK(chmod(p, 0755));
        ASSERT_OK(close(open(P("keys/marker"), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)));

        escrow_accepted(P("keys"), "marker");
        escrow_accepted(P("./keys/"), "marker");
        escrow_accepted(P("keys/../keys"), "marker");

        /* Others may write: refused, sticky or not. */
        ASSERT_OK(chmod(P("keys"), 0775));
        escrow_refused(p, -EPERM, "may be written by other users (mode 0775)");
        ASSERT_OK(chmod(P("keys"), 01777));
        escrow_refused(p, -EPERM, "may be written by other users (mode 1777)");
        ASSERT_OK(chmod(P("keys"), 0700));
        escrow_accepted(p, "marker");

        /* A directory on the way that others may write: they could swap keys for a link. With
         * the sticky bit (as /tmp) they cannot move what is not theirs. */
        ASSERT_OK(mkdir(P("open"), 0777));
        ASSERT_OK(chmod(p, 0777));
        ASSERT_OK(mkdir(P("open/keys"), 0755));
        ASSERT_OK(close(open(P("open/keys/marker"), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)));
        snprintf(q, sizeof(q), "%s/open", base);
        escrow_refused(P("open/keys"), -EPERM, q);
        ASSERT_OK(chmod(P("open"), 01777));
        escrow_accepted(P("open/keys"), "marker");

        /* A link the user owns is followed, relative or absolute, and resolved step by step. */
        ASSERT_OK(symlink("keys", P("rel")));
        escrow_accepted(P("rel"), "marker");
        snprintf(q, sizeof(q), "%s/keys", base);
        ASSERT_OK(symlink(q, P("abs")));
        escrow_accepted(P("abs"), "marker");
        ASSERT_OK(symlink("../keys", P("open/up")));
        escrow_accepted(P("open/up"), "marker");
        /* ... and a link to an unsafe directory is no way around the check. */
        ASSERT_OK(mkdir(P("world"), 0755));
        ASSERT_OK(chmod(p, 0777));
        ASSERT_OK(symlink("world", P("to-world")));
        escrow_refused(P("to-world"), -EPERM, "may be written by other users (mode 0777)");

        /* Relative to the working directory. */
        ASSERT_TRUE(getcwd(cwd, sizeof(cwd)));
        ASSERT_OK(chdir(base));
        escrow_accepted("keys", "marker");
        escrow_accepted("rel/", "marker");
        ASSERT_OK(chdir(cwd));

        /* What the kernel would say. */
        escrow_refused(P("missing"), -ENOENT, "missing");
        escrow_refused(P("keys/marker"), -ENOTDIR, "is not a directory");
        ASSERT_OK(symlink("loop2", P("loop1")));
        ASSERT_OK(symlink("loop1", P("loop2")));
        escrow_refused(P("loop1"), -ELOOP, "too many symbolic links");

        if (root) {
                /* A link someone else owns, even in a sticky directory: they can point it anywhere. */
                ASSERT_OK(symlink(q, P("open/theirs")));
                ASSERT_OK(lchown(p, 65534, 65534));
                escrow_refused(p, -EPERM, "is a symbolic link that belongs to UID 65534");
                /* A directory someone else owns, on the way or at the end. */
                ASSERT_OK(mkdir(P("nobody"), 0755));
                ASSERT_OK(chown(p, 65534, 65534));
                escrow_refused(p, -EPERM, "belongs to UID 65534, neither root nor the user running imprint");
                ASSERT_OK(mkdir(P("nobody/keys"), 0755));
                escrow_refused(p, -EPERM, "nobody belongs to UID 65534");
        } else
                printf("escrow: not root, links and directories of other users not checked\n");
#undef P
        ASSERT_TRUE(run_command((char *[]) { (char *) "rm", (char *) "-rf", base, NULL }, NULL) >= 0);
        printf("escrow directory: ok\n");
}

int main(void) {
        bool referee;

        test_format();
        test_randomness();
        test_normalize();
        test_challenge();
        test_check_groups();
        test_qr();
        test_explanation();
        test_escrow_dir();
        referee = test_cryptsetup();

        printf("test-recovery: all checks passed%s\n", referee ? "" : " (LUKS check skipped)");
        return referee ? 0 : 77;
}
