/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One model for what imprint shows as a table: built once (the plan's partitions, the disk list),
 * rendered as text for people or as JSON for programs. The idea is systemd's format-table.
 *
 * A column has a header for people (NULL: JSON only; the caller may replace it with a translated
 * one) and a key for JSON (camelCase and stable; NULL: text only). Cells are added left to right,
 * row after row: a new row starts when the last one is full. Text columns are as wide as their
 * widest cell or header, measured in terminal cells (so "RÔLE" and "créer" line up), at least the
 * column's minimum and at most its maximum (longer cells are cut). The last column is not padded
 * and no line ends in blanks. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "macro.h"

typedef struct Table Table;

typedef enum TableAlign {
        TABLE_LEFT,
        TABLE_RIGHT,
} TableAlign;

Table *table_new(void);
Table *table_free(Table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Table *, table_free);

/* Returns the new column's index, or -ENOMEM. header and json_key are copied. */
int table_add_column(Table *t, const char *header, const char *json_key, TableAlign align);
int table_set_header(Table *t, size_t col, const char *header);
/* max 0: no maximum. */
void table_set_width(Table *t, size_t col, size_t min, size_t max);
/* Blanks after the column in text (default 1). */
void table_set_gap(Table *t, size_t col, size_t gap);
/* The text shows these columns in this order (default: every column with a header, in order).
 * Columns without a header are skipped. */
int table_set_display(Table *t, const size_t *cols, size_t n);

/* Cells. A string NULL is "-" in text and null in JSON; a size is FORMAT_BYTES() in text and a
 * number of bytes in JSON; a boolean is "yes"/"no" in text; table_add_null() is "-" and null;
 * table_add_json() takes the reference j (NULL: null) and is "-" in text. */
int table_add_string(Table *t, const char *s);
int table_add_size(Table *t, uint64_t bytes);
int table_add_unsigned(Table *t, uint64_t u);
int table_add_boolean(Table *t, bool b);
int table_add_null(Table *t);
int table_add_json(Table *t, json_object *j);

size_t table_get_rows(const Table *t);
/* The text of a cell as the table shows it; NULL for a row or column that is not there. */
const char *table_get_text(const Table *t, size_t row, size_t col, char buf[static 32]);
/* Replaces a cell with a string (a front end decorating or translating what it shows). */
int table_set_string(Table *t, size_t row, size_t col, const char *s);

/* Text: *ret_lines[0] is the header line, then one line per row. */
int table_format_lines(const Table *t, char ***ret_lines, size_t *ret_n);
int table_format(const Table *t, char **ret);
/* The terminal cell where column col starts in the text, or -1 if it is not shown. */
int table_column_offset(const Table *t, size_t col);
/* An array with one object per row, keyed by the JSON keys, in column order. */
json_object *table_to_json(const Table *t);

void table_free_lines(char **lines, size_t n);
/* Terminal cells the UTF-8 string s takes (wcwidth() per character; 1 where it knows none). */
size_t utf8_display_width(const char *s);
