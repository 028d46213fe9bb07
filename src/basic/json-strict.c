/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A strict check of JSON text (RFC 8259) before json-c builds objects from it: see json-strict.h
 * for what is refused and why. The checker is a plain recursive descent over the bytes with a
 * depth limit; it builds nothing but the decoded keys of the object it is in, to find duplicates. */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fileio.h"
#include "json-strict.h"
#include "macro.h"
#include "utf8.h"

typedef struct Key {
        char *name; /* decoded, no NUL inside (refused before) */
        size_t len;
        size_t offset; /* of its opening quote */
} Key;

typedef struct Scanner {
        const char *s;
        size_t n, i;
        char problem[160];
        size_t problem_at;
} Scanner;

_printf_(3, 4) static int scan_fail(Scanner *sc, size_t at, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(sc->problem, sizeof(sc->problem), fmt, ap);
        va_end(ap);
        sc->problem_at = at;
        return -EINVAL;
}

static void skip_ws(Scanner *sc) {
        while (sc->i < sc->n && (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t' || sc->s[sc->i] == '\n' || sc->s[sc->i] == '\r'))
                sc->i++;
}

static int hex4(const char *p, uint32_t *ret) {
        uint32_t v = 0;

        for (int k = 0; k < 4; k++) {
                int c = (unsigned char) p[k];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (uint32_t) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (uint32_t) (c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (uint32_t) (c - 'A' + 10);
                else
                        return -EINVAL;
        }
        *ret = v;
        return 0;
}

/* Length of the well-formed UTF-8 sequence at p (at most avail bytes), 0 when it is not one
 * (overlong forms, surrogates, beyond U+10FFFF: Unicode 15, table 3-7). */
static size_t utf8_sequence_length(const unsigned char *p, size_t avail) {
        unsigned char c = p[0];
        size_t len;
        unsigned char lo = 0x80, hi = 0xBF;

        if (c < 0x80)
                return 1;
        if (c >= 0xC2 && c <= 0xDF)
                len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
                len = 3;
                if (c == 0xE0)
                        lo = 0xA0;
                else if (c == 0xED)
                        hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
                len = 4;
                if (c == 0xF0)
                        lo = 0x90;
                else if (c == 0xF4)
                        hi = 0x8F;
        } else
                return 0;
        if (avail < len || p[1] < lo || p[1] > hi)
                return 0;
        for (size_t k = 2; k < len; k++)
                if (p[k] < 0x80 || p[k] > 0xBF)
                        return 0;
        return len;
}

/* A string at sc->i (its opening quote). With ret, the decoded bytes are returned (keys). */
static int scan_string(Scanner *sc, bool is_key, char **ret, size_t *ret_len) {
        const char *what = is_key ? "a key" : "a string";
        size_t start = sc->i, len = 0;
        _cleanup_(freep) char *out = NULL;

        if (ret) {
                /* Never longer decoded than written: as long as the text up to the closing quote
                 * (or the end; the loop below says what is wrong then). */
                size_t end = start + 1;

                while (end < sc->n && sc->s[end] != '"')
                        end += sc->s[end] == '\\' ? 2 : 1;
                out = malloc(MIN(end, sc->n) - start + 1);
                if (!out)
                        return -ENOMEM;
        }
        sc->i++;
        for (;;) {
                unsigned char c;
                char buf[4];
                size_t k = 0;

                if (sc->i >= sc->n)
                        return scan_fail(sc, start, "%s is not closed", what);
                c = (unsigned char) sc->s[sc->i];
                if (c == '"') {
                        sc->i++;
                        break;
                }
                if (c < 0x20)
                        return scan_fail(sc, sc->i, "%s holds the control character 0x%02x unescaped", what, c);
                if (c >= 0x80) {
                        k = utf8_sequence_length((const unsigned char *) sc->s + sc->i, sc->n - sc->i);
                        if (k == 0)
                                return scan_fail(sc, sc->i, "%s is not valid UTF-8", what);
                        memcpy(buf, sc->s + sc->i, k);
                        sc->i += k;
                } else if (c != '\\') {
                        buf[0] = (char) c;
                        k = 1;
                        sc->i++;
                } else {
                        size_t esc = sc->i;
                        uint32_t cp, lo;

                        if (sc->i + 1 >= sc->n)
                                return scan_fail(sc, start, "%s is not closed", what);
                        switch (sc->s[sc->i + 1]) {
                        case '"':
                        case '\\':
                        case '/':
                                buf[0] = sc->s[sc->i + 1];
                                break;
                        case 'b':
                                buf[0] = '\b';
                                break;
                        case 'f':
                                buf[0] = '\f';
                                break;
                        case 'n':
                                buf[0] = '\n';
                                break;
                        case 'r':
                                buf[0] = '\r';
                                break;
                        case 't':
                                buf[0] = '\t';
                                break;
                        case 'u':
                                if (sc->n - sc->i < 6 || hex4(sc->s + sc->i + 2, &cp) < 0)
                                        return scan_fail(sc, esc, "%s has a \\u escape without four hex digits", what);
                                sc->i += 6;
                                if (cp == 0)
                                        return scan_fail(sc, esc, "%s holds a NUL character (\\u0000), which would cut it short", what);
                                if (cp >= 0xDC00 && cp <= 0xDFFF)
                                        return scan_fail(sc, esc, "%s holds a lone UTF-16 surrogate", what);
                                if (cp >= 0xD800 && cp <= 0xDBFF) {
                                        if (sc->n - sc->i < 6 || sc->s[sc->i] != '\\' || sc->s[sc->i + 1] != 'u' ||
                                            hex4(sc->s + sc->i + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                                                return scan_fail(sc, esc, "%s holds a lone UTF-16 surrogate", what);
                                        sc->i += 6;
                                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                }
                                k = utf8_encode_unichar(cp, buf);
                                break;
                        default:
                                return scan_fail(sc, esc, "%s has an invalid escape", what);
                        }
                        if (k == 0) {
                                k = 1;
                                sc->i += 2;
                        }
                }
                if (out) {
                        memcpy(out + len, buf, k);
                        len += k;
                }
        }
        if (ret) {
                out[len] = 0;
                *ret = TAKE_PTR(out);
                *ret_len = len;
        }
        return 0;
}

static int scan_number(Scanner *sc) {
        size_t start = sc->i;
        const char *s = sc->s;

#define DIGIT(k) ((k) < sc->n && s[k] >= '0' && s[k] <= '9')
        if (sc->i < sc->n && s[sc->i] == '-')
                sc->i++;
        if (!DIGIT(sc->i))
                return scan_fail(sc, start, "a number is malformed");
        if (s[sc->i] == '0')
                sc->i++;
        else
                while (DIGIT(sc->i))
                        sc->i++;
        if (sc->i < sc->n && s[sc->i] == '.') {
                sc->i++;
                if (!DIGIT(sc->i))
                        return scan_fail(sc, start, "a number is malformed");
                while (DIGIT(sc->i))
                        sc->i++;
        }
        if (sc->i < sc->n && (s[sc->i] == 'e' || s[sc->i] == 'E')) {
                sc->i++;
                if (sc->i < sc->n && (s[sc->i] == '+' || s[sc->i] == '-'))
                        sc->i++;
                if (!DIGIT(sc->i))
                        return scan_fail(sc, start, "a number is malformed");
                while (DIGIT(sc->i))
                        sc->i++;
        }
#undef DIGIT
        return 0;
}

static int key_compare(const void *a, const void *b) {
        const Key *x = a, *y = b;
        int c;

        if (x->len != y->len)
                return x->len < y->len ? -1 : 1;
        c = memcmp(x->name, y->name, x->len);
        if (c != 0)
                return c;
        return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static void keys_free(Key *keys, size_t n) {
        for (size_t k = 0; k < n; k++)
                free(keys[k].name);
        free(keys);
}

/* The key for a message: printable, at most 40 bytes. */
static void key_for_message(const Key *k, char out[48]) {
        size_t o = 0;

        for (size_t i = 0; i < k->len && o < 40; i++)
                out[o++] = (unsigned char) k->name[i] < 0x20 || k->name[i] == 0x7f ? '?' : k->name[i];
        if (k->len > 40)
                out[o++] = '.', out[o++] = '.', out[o++] = '.';
        out[o] = 0;
}

static int scan_value(Scanner *sc, unsigned depth);

static int scan_object(Scanner *sc, unsigned depth) {
        Key *keys = NULL;
        size_t n_keys = 0, allocated = 0;
        int r = 0;

        sc->i++;
        skip_ws(sc);
        if (sc->i < sc->n && sc->s[sc->i] == '}') {
                sc->i++;
                return 0;
        }
        for (;;) {
                Key k = { .offset = sc->i };

                if (sc->i >= sc->n || sc->s[sc->i] != '"') {
                        r = scan_fail(sc, sc->i, sc->i >= sc->n ? "the text ends inside an object" : "a key in double quotes is expected");
                        break;
                }
                r = scan_string(sc, true, &k.name, &k.len);
                if (r < 0)
                        break;
                if (n_keys == allocated) {
                        Key *nk;

                        allocated = allocated ? allocated * 2 : 16;
                        nk = realloc(keys, allocated * sizeof(Key));
                        if (!nk) {
                                free(k.name);
                                r = -ENOMEM;
                                break;
                        }
                        keys = nk;
                }
                keys[n_keys++] = k;
                skip_ws(sc);
                if (sc->i >= sc->n || sc->s[sc->i] != ':') {
                        r = scan_fail(sc, sc->i, "a ':' after the key is expected");
                        break;
                }
                sc->i++;
                r = scan_value(sc, depth + 1);
                if (r < 0)
                        break;
                skip_ws(sc);
                if (sc->i < sc->n && sc->s[sc->i] == ',') {
                        sc->i++;
                        skip_ws(sc);
                        continue;
                }
                if (sc->i < sc->n && sc->s[sc->i] == '}') {
                        sc->i++;
                        break;
                }
                r = scan_fail(sc, sc->i, sc->i >= sc->n ? "the text ends inside an object" : "a ',' or '}' is expected");
                break;
        }

        if (r >= 0 && n_keys > 1) {
                /* Sorted by name, then position: of two equal neighbours the second is the later
                 * one, the one json-c would have kept silently. */
                qsort(keys, n_keys, sizeof(Key), key_compare);
                for (size_t k = 1; k < n_keys; k++)
                        if (keys[k].len == keys[k - 1].len && memcmp(keys[k].name, keys[k - 1].name, keys[k].len) == 0) {
                                char name[48];

                                key_for_message(&keys[k], name);
                                r = scan_fail(sc, keys[k].offset, "the key \"%s\" appears twice in one object", name);
                                break;
                        }
        }
        keys_free(keys, n_keys);
        return r;
}

static int scan_array(Scanner *sc, unsigned depth) {
        int r;

        sc->i++;
        skip_ws(sc);
        if (sc->i < sc->n && sc->s[sc->i] == ']') {
                sc->i++;
                return 0;
        }
        for (;;) {
                r = scan_value(sc, depth + 1);
                if (r < 0)
                        return r;
                skip_ws(sc);
                if (sc->i < sc->n && sc->s[sc->i] == ',') {
                        sc->i++;
                        continue;
                }
                if (sc->i < sc->n && sc->s[sc->i] == ']') {
                        sc->i++;
                        return 0;
                }
                return scan_fail(sc, sc->i, sc->i >= sc->n ? "the text ends inside an array" : "a ',' or ']' is expected");
        }
}

static int scan_value(Scanner *sc, unsigned depth) {
        static const char *const literals[] = { "true", "false", "null" };
        char c;

        skip_ws(sc);
        if (sc->i >= sc->n)
                return scan_fail(sc, sc->i, "a value is expected, but the text ends");
        c = sc->s[sc->i];
        if (c == '{' || c == '[') {
                if (depth >= JSON_STRICT_MAX_DEPTH)
                        return scan_fail(sc, sc->i, "objects and arrays nest deeper than %d levels", JSON_STRICT_MAX_DEPTH);
                return c == '{' ? scan_object(sc, depth) : scan_array(sc, depth);
        }
        if (c == '"')
                return scan_string(sc, false, NULL, NULL);
        if (c == '-' || (c >= '0' && c <= '9'))
                return scan_number(sc);
        for (size_t k = 0; k < ELEMENTSOF(literals); k++) {
                size_t len = strlen(literals[k]);
                if (sc->n - sc->i >= len && memcmp(sc->s + sc->i, literals[k], len) == 0) {
                        sc->i += len;
                        return 0;
                }
        }
        if (c == '\'')
                return scan_fail(sc, sc->i, "strings must be in double quotes");
        if (isprint((unsigned char) c))
                return scan_fail(sc, sc->i, "a value is expected, not '%c'", c);
        return scan_fail(sc, sc->i, "a value is expected, not the byte 0x%02x", (unsigned char) c);
}

static void position(const char *s, size_t at, unsigned *ret_line, unsigned *ret_column) {
        unsigned line = 1;
        size_t bol = 0;

        for (size_t k = 0; k < at; k++)
                if (s[k] == '\n') {
                        line++;
                        bol = k + 1;
                }
        *ret_line = line;
        *ret_column = (unsigned) (at - bol + 1);
}

static int parse_fail(const char *what, const char *text, size_t at, const char *problem) {
        char w[512];
        unsigned line, column;

        snprintf(w, sizeof(w), "%s", what);
        w[0] = (char) toupper((unsigned char) w[0]);
        position(text, at, &line, &column);
        return error_setf(-EINVAL, "%s is not valid JSON: %s (line %u, column %u).", w, problem, line, column);
}

int json_parse_strict(const char *text, size_t size, const char *what, json_object **ret) {
        Scanner sc = { .s = text, .n = size };
        struct json_tokener *tok;
        enum json_tokener_error err;
        json_object *j;
        const char *nul;
        size_t end;
        int r;

        if (size > INT_MAX)
                return error_setf(-E2BIG, "%s is too large.", what);
        nul = memchr(text, 0, size);
        if (nul)
                return parse_fail(what, text, (size_t) (nul - text), "it holds a NUL byte");

        r = scan_value(&sc, 0);
        if (r == -ENOMEM)
                return r;
        if (r >= 0) {
                skip_ws(&sc);
                if (sc.i < sc.n)
                        r = scan_fail(&sc, sc.i, "more follows the JSON value");
        }
        if (r < 0)
                return parse_fail(what, text, sc.problem_at, sc.problem);

        /* The text is well-formed: json-c builds the objects. Its own limits stay above ours. */
        tok = json_tokener_new_ex(JSON_STRICT_MAX_DEPTH + 2);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        j = json_tokener_parse_ex(tok, text, (int) size);
        end = json_tokener_get_parse_end(tok);
        err = json_tokener_get_error(tok);
        json_tokener_free(tok);
        if (err != json_tokener_success || end < size) {
                json_object_put(j);
                return parse_fail(what, text, MIN(end, size), json_tokener_error_desc(err) ?: "json-c refuses it");
        }
        *ret = j; /* NULL for the text "null" */
        return 0;
}

int json_read_file_strict(const char *path, const char *what, json_object **ret) {
        _cleanup_(freep) char *text = NULL, *full = NULL;
        size_t size = 0;
        int r;

        r = read_regular_file(path, what, JSON_FILE_MAX, &text, &size);
        if (r < 0)
                return r;
        if (asprintf(&full, "%s %s", what, path) < 0)
                return -ENOMEM;
        return json_parse_strict(text, size, full, ret);
}
