/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <wchar.h>

#include "size.h"
#include "table.h"

typedef enum CellType {
        CELL_STRING,
        CELL_SIZE,
        CELL_UNSIGNED,
        CELL_BOOLEAN,
        CELL_NULL,
        CELL_JSON,
} CellType;

typedef struct Cell {
        CellType type;
        char *s;
        uint64_t u;
        bool b;
        json_object *j;
} Cell;

typedef struct Column {
        char *header;
        char *json_key;
        TableAlign align;
        size_t min, max, gap;
} Column;

struct Table {
        Column *columns;
        size_t n_columns;
        Cell *cells;  /* row-major, n_cells / n_columns rows (the last one may be partial) */
        size_t n_cells;
        size_t *display;
        size_t n_display;
        bool display_set;
};

Table *table_new(void) {
        return calloc(1, sizeof(Table));
}

static void cell_done(Cell *c) {
        free(c->s);
        json_object_put(c->j);
        *c = (Cell) {};
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_columns; i++) {
                free(t->columns[i].header);
                free(t->columns[i].json_key);
        }
        for (size_t i = 0; i < t->n_cells; i++)
                cell_done(&t->cells[i]);
        free(t->columns);
        free(t->cells);
        free(t->display);
        free(t);
        return NULL;
}

static int strdup_or_null(const char *s, char **ret) {
        char *c = NULL;

        if (s && !(c = strdup(s)))
                return -ENOMEM;
        *ret = c;
        return 0;
}

int table_add_column(Table *t, const char *header, const char *json_key, TableAlign align) {
        Column c = { .align = align, .gap = 1 }, *n;

        /* Columns are fixed once the first cell is in. */
        if (t->n_cells > 0)
                return -EBUSY;
        if (strdup_or_null(header, &c.header) < 0 || strdup_or_null(json_key, &c.json_key) < 0) {
                free(c.header);
                return -ENOMEM;
        }
        n = realloc(t->columns, (t->n_columns + 1) * sizeof(Column));
        if (!n) {
                free(c.header), free(c.json_key);
                return -ENOMEM;
        }
        t->columns = n;
        t->columns[t->n_columns] = c;
        return (int) t->n_columns++;
}

int table_set_header(Table *t, size_t col, const char *header) {
        char *h;

        if (col >= t->n_columns)
                return -EINVAL;
        if (strdup_or_null(header, &h) < 0)
                return -ENOMEM;
        free(t->columns[col].header);
        t->columns[col].header = h;
        return 0;
}

void table_set_width(Table *t, size_t col, size_t min, size_t max) {
        if (col < t->n_columns)
                t->columns[col].min = min, t->columns[col].max = max;
}

void table_set_gap(Table *t, size_t col, size_t gap) {
        if (col < t->n_columns)
                t->columns[col].gap = gap;
}

int table_set_display(Table *t, const size_t *cols, size_t n) {
        size_t *d = malloc(MAX(n, 1) * sizeof(size_t));

        if (!d)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (cols[i] >= t->n_columns) {
                        free(d);
                        return -EINVAL;
                }
                d[i] = cols[i];
        }
        free(t->display);
        t->display = d;
        t->n_display = n;
        t->display_set = true;
        return 0;
}

static int add_cell(Table *t, Cell c) {
        Cell *n;

        if (t->n_columns == 0) {
                cell_done(&c);
                return -EINVAL;
        }
        n = realloc(t->cells, (t->n_cells + 1) * sizeof(Cell));
        if (!n) {
                cell_done(&c);
                return -ENOMEM;
        }
        t->cells = n;
        t->cells[t->n_cells++] = c;
        return 0;
}

int table_add_string(Table *t, const char *s) {
        Cell c = { .type = CELL_STRING };

        if (strdup_or_null(s, &c.s) < 0)
                return -ENOMEM;
        return add_cell(t, c);
}

int table_add_size(Table *t, uint64_t bytes) {
        return add_cell(t, (Cell) { .type = CELL_SIZE, .u = bytes });
}

int table_add_unsigned(Table *t, uint64_t u) {
        return add_cell(t, (Cell) { .type = CELL_UNSIGNED, .u = u });
}

int table_add_boolean(Table *t, bool b) {
        return add_cell(t, (Cell) { .type = CELL_BOOLEAN, .b = b });
}

int table_add_null(Table *t) {
        return add_cell(t, (Cell) { .type = CELL_NULL });
}

int table_add_json(Table *t, json_object *j) {
        return add_cell(t, (Cell) { .type = j ? CELL_JSON : CELL_NULL, .j = j });
}

size_t table_get_rows(const Table *t) {
        return t->n_columns > 0 ? DIV_ROUND_UP(t->n_cells, t->n_columns) : 0;
}

static const Cell *cell_at(const Table *t, size_t row, size_t col) {
        size_t i = row * t->n_columns + col;

        return col < t->n_columns && i < t->n_cells ? &t->cells[i] : NULL;
}

static const char *cell_text(const Cell *c, char buf[static 32]) {
        if (!c)
                return "";
        switch (c->type) {
        case CELL_STRING:
                return c->s ?: "-";
        case CELL_SIZE:
                return format_bytes(buf, 32, c->u);
        case CELL_UNSIGNED:
                snprintf(buf, 32, "%" PRIu64, c->u);
                return buf;
        case CELL_BOOLEAN:
                return c->b ? "yes" : "no";
        default:
                return "-";
        }
}

const char *table_get_text(const Table *t, size_t row, size_t col, char buf[static 32]) {
        const Cell *c = cell_at(t, row, col);

        return c ? cell_text(c, buf) : NULL;
}

int table_set_string(Table *t, size_t row, size_t col, const char *s) {
        Cell *c = (Cell *) cell_at(t, row, col);
        char *n;

        if (!c)
                return -EINVAL;
        if (strdup_or_null(s, &n) < 0)
                return -ENOMEM;
        cell_done(c);
        *c = (Cell) { .type = CELL_STRING, .s = n };
        return 0;
}

/* Decodes one UTF-8 sequence at s; an invalid byte is taken as one character of its own. */
static size_t utf8_next(const char *s, uint32_t *ret_cp) {
        const unsigned char *u = (const unsigned char *) s;
        size_t n = u[0] < 0x80 ? 1 : (u[0] & 0xE0) == 0xC0 ? 2 : (u[0] & 0xF0) == 0xE0 ? 3 : (u[0] & 0xF8) == 0xF0 ? 4 : 0;
        uint32_t cp = n == 1 ? u[0] : n == 2 ? u[0] & 0x1F : n == 3 ? u[0] & 0x0F : u[0] & 0x07;

        for (size_t i = 1; i < n; i++) {
                if ((u[i] & 0xC0) != 0x80)
                        n = 0;
                else
                        cp = (cp << 6) | (u[i] & 0x3F);
        }
        *ret_cp = n > 0 ? cp : 0xFFFD;
        return MAX(n, (size_t) 1);
}

/* The bytes of s (whole characters) that fit into max terminal cells; *ret_width: the cells they take. */
static size_t utf8_cut(const char *s, size_t max, size_t *ret_width) {
        size_t bytes = 0, width = 0;

        while (s[bytes]) {
                uint32_t cp;
                size_t n = utf8_next(s + bytes, &cp);
                int w = wcwidth((wchar_t) cp);

                /* Outside a UTF-8 locale wcwidth() knows no letter beyond ASCII: count one. */
                w = w < 0 ? 1 : w;
                if (width + (size_t) w > max)
                        break;
                width += (size_t) w;
                bytes += n;
        }
        if (ret_width)
                *ret_width = width;
        return bytes;
}

size_t utf8_display_width(const char *s) {
        size_t w;

        utf8_cut(s, SIZE_MAX, &w);
        return w;
}

/* The shown columns, in order; *ret is malloc'ed. */
static int shown_columns(const Table *t, size_t **ret, size_t *ret_n) {
        size_t *d = malloc(MAX(t->n_columns, t->n_display) * sizeof(size_t) + 1), n = 0;

        if (!d)
                return -ENOMEM;
        if (t->display_set) {
                for (size_t i = 0; i < t->n_display; i++)
                        if (t->columns[t->display[i]].header)
                                d[n++] = t->display[i];
        } else
                for (size_t i = 0; i < t->n_columns; i++)
                        if (t->columns[i].header)
                                d[n++] = i;
        *ret = d;
        *ret_n = n;
        return 0;
}

static size_t column_width(const Table *t, size_t col) {
        const Column *c = &t->columns[col];
        size_t w = MAX(c->min, utf8_display_width(c->header));
        char buf[32];

        for (size_t r = 0; r < table_get_rows(t); r++)
                w = MAX(w, utf8_display_width(cell_text(cell_at(t, r, col), buf)));
        return c->max > 0 ? MIN(w, c->max) : w;
}

static char *blanks(char *p, size_t n) {
        memset(p, ' ', n);
        return p + n;
}

/* row -1 is the header line. */
static const char *line_text(const Table *t, size_t col, ssize_t row, char buf[static 32]) {
        return row < 0 ? t->columns[col].header : cell_text(cell_at(t, (size_t) row, col), buf);
}

static char *format_line(const Table *t, const size_t *cols, const size_t *widths, size_t n, ssize_t row) {
        size_t len = 1;
        char *line, *p, buf[32];

        for (size_t i = 0; i < n; i++)
                len += strlen(line_text(t, cols[i], row, buf)) + widths[i] + t->columns[cols[i]].gap;
        line = p = malloc(len);
        if (!line)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                const Column *c = &t->columns[cols[i]];
                const char *s = line_text(t, cols[i], row, buf);
                size_t w, bytes = utf8_cut(s, widths[i], &w), pad = widths[i] - w;

                if (c->align == TABLE_RIGHT)
                        p = blanks(p, pad);
                p = mempcpy(p, s, bytes);
                if (c->align == TABLE_LEFT)
                        p = blanks(p, pad);
                if (i + 1 < n)
                        p = blanks(p, c->gap);
        }
        while (p > line && p[-1] == ' ')
                p--;
        *p = 0;
        return line;
}

int table_format_lines(const Table *t, char ***ret_lines, size_t *ret_n) {
        _cleanup_(freep) size_t *cols = NULL, *widths = NULL;
        size_t n, rows = table_get_rows(t);
        char **lines;
        int r;

        r = shown_columns(t, &cols, &n);
        if (r < 0)
                return r;
        widths = calloc(n + 1, sizeof(size_t));
        lines = calloc(rows + 1, sizeof(char *));
        if (!widths || !lines) {
                free(lines);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                widths[i] = column_width(t, cols[i]);
        for (size_t i = 0; i <= rows; i++)
                if (!(lines[i] = format_line(t, cols, widths, n, (ssize_t) i - 1))) {
                        table_free_lines(lines, i);
                        return -ENOMEM;
                }
        *ret_lines = lines;
        *ret_n = rows + 1;
        return 0;
}

void table_free_lines(char **lines, size_t n) {
        for (size_t i = 0; lines && i < n; i++)
                free(lines[i]);
        free(lines);
}

int table_format(const Table *t, char **ret) {
        char **lines, *s = NULL;
        size_t n, len = 0;
        FILE *f;
        int r;

        r = table_format_lines(t, &lines, &n);
        if (r < 0)
                return r;
        f = open_memstream(&s, &len);
        if (f) {
                for (size_t i = 0; i < n; i++)
                        fprintf(f, "%s\n", lines[i]);
                if (fclose(f) < 0)
                        s = mfree(s);
        }
        table_free_lines(lines, n);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int table_column_offset(const Table *t, size_t col) {
        _cleanup_(freep) size_t *cols = NULL;
        size_t n, x = 0;

        if (shown_columns(t, &cols, &n) < 0)
                return -1;
        for (size_t i = 0; i < n; i++) {
                if (cols[i] == col)
                        return (int) x;
                x += column_width(t, cols[i]) + t->columns[cols[i]].gap;
        }
        return -1;
}

static json_object *cell_json(const Cell *c) {
        switch (c->type) {
        case CELL_STRING:
                return c->s ? json_object_new_string(c->s) : NULL;
        case CELL_SIZE:
        case CELL_UNSIGNED:
                return json_object_new_uint64(c->u);
        case CELL_BOOLEAN:
                return json_object_new_boolean(c->b);
        case CELL_JSON:
                return json_object_get(c->j);
        default:
                return NULL;
        }
}

json_object *table_to_json(const Table *t) {
        json_object *a = json_object_new_array();

        for (size_t r = 0; a && r < table_get_rows(t); r++) {
                json_object *o = json_object_new_object();

                if (!o || json_object_array_add(a, o) < 0) {
                        json_object_put(o);
                        return json_object_put(a), NULL;
                }
                for (size_t i = 0; i < t->n_columns; i++) {
                        const Cell *c = cell_at(t, r, i);

                        if (t->columns[i].json_key && c)
                                json_object_object_add(o, t->columns[i].json_key, cell_json(c));
                }
        }
        return a;
}
