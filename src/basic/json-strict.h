/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* JSON that people and machines hand to imprint (plan files, install configurations, the
 * signature section of a UKI) is read more strictly than json-c reads it. json-c, even with
 * JSON_TOKENER_STRICT, lets the last of two equal keys win silently, cuts a string at "\u0000"
 * (json_object_get_string() is a C string), and accepts single-quoted strings and NaN; its
 * whole-file reader has no size limit and waits on a FIFO. Here, before json-c builds the
 * objects, the text is checked against RFC 8259 and refused, with the line and column, when:
 *   - it is not one JSON value followed only by whitespace (trailing data);
 *   - an object has the same key twice (compared after unescaping: "a" and "\u0061" are equal);
 *   - a string or a key holds U+0000, written as \u0000 or as a raw NUL byte;
 *   - a string holds a raw control character, a lone UTF-16 surrogate or invalid UTF-8;
 *   - values nest deeper than JSON_STRICT_MAX_DEPTH. */

#include <stddef.h>

#include <json-c/json.h>

/* JSON input files are read whole, and are refused above this size (a plan with 128 partitions
 * is about 100 KiB). Documented in imprint(1). */
#define JSON_FILE_MAX (1024 * 1024)

#define JSON_STRICT_MAX_DEPTH 32

/* Parses text (size bytes; it need not be NUL-terminated) as above. On failure returns -EINVAL
 * with the sentence "<What> is not valid JSON: <problem> (line L, column C)." where what names
 * the input ("the plan file /root/p.json"; its first letter is capitalized). */
int json_parse_strict(const char *text, size_t size, const char *what, json_object **ret);

/* Reads path with read_regular_file() (a regular file of at most JSON_FILE_MAX bytes) and parses
 * it with json_parse_strict(). what names the kind of file ("the plan file"); the sentences name
 * the path too. */
int json_read_file_strict(const char *path, const char *what, json_object **ret);
