/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The table model: text columns line up by terminal cells (multi-byte UTF-8 headers and cells),
 * NULL cells, sizes, text-only and JSON-only columns, and JSON that json-c parses back. */

#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"
#include "tests.h"

/* Where, in terminal cells, the text "needle" starts in line. */
static size_t cell_of(const char *line, const char *needle) {
        const char *at = strstr(line, needle);
        _cleanup_(freep) char *head = NULL;

        ASSERT_TRUE(at);
        head = strndup(line, (size_t) (at - line));
        return utf8_display_width(head);
}

static Table *french_table(void) {
        Table *t = table_new();

        ASSERT_TRUE(t);
        ASSERT_EQ(table_add_column(t, "#", "partno", TABLE_LEFT), 0);
        ASSERT_EQ(table_add_column(t, "RÔLE", "role", TABLE_LEFT), 1);
        ASSERT_EQ(table_add_column(t, "ACTION", "action", TABLE_LEFT), 2);
        ASSERT_EQ(table_add_column(t, "TAILLE", "size", TABLE_RIGHT), 3);
        ASSERT_EQ(table_add_column(t, NULL, "typeUuid", TABLE_LEFT), 4);  /* JSON only */
        ASSERT_EQ(table_add_column(t, "NOM", "label", TABLE_LEFT), 5);
        ASSERT_EQ(table_add_column(t, "FLAGS", NULL, TABLE_LEFT), 6);     /* text only */
        ASSERT_EQ(table_add_column(t, NULL, "encrypt", TABLE_LEFT), 7);

        ASSERT_OK(table_add_unsigned(t, 1));
        ASSERT_OK(table_add_string(t, "esp"));
        ASSERT_OK(table_add_string(t, "créer"));
        ASSERT_OK(table_add_size(t, 1024ULL * 1024 * 1024));
        ASSERT_OK(table_add_string(t, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"));
        ASSERT_OK(table_add_string(t, "Système EFI"));
        ASSERT_OK(table_add_string(t, "no-auto"));
        ASSERT_OK(table_add_boolean(t, false));

        ASSERT_OK(table_add_unsigned(t, 12));
        ASSERT_OK(table_add_string(t, "root"));
        ASSERT_OK(table_add_string(t, "copie"));
        ASSERT_OK(table_add_size(t, 3 * 1024ULL * 1024 * 1024 + 1));
        ASSERT_OK(table_add_null(t));
        ASSERT_OK(table_add_string(t, NULL));
        ASSERT_OK(table_add_string(t, NULL));
        ASSERT_OK(table_add_boolean(t, true));
        return t;
}

static void test_text(void) {
        _cleanup_(table_freep) Table *t = french_table();
        char **lines = NULL;
        size_t n = 0;

        ASSERT_EQ(table_get_rows(t), 2);
        ASSERT_OK(table_format_lines(t, &lines, &n));
        ASSERT_EQ(n, 3);
        /* JSON-only columns are not shown; NULL is "-"; sizes as people read them; no trailing
         * blanks; the right-aligned column ends where its header ends. */
        ASSERT_STREQ(lines[0], "#  RÔLE ACTION  TAILLE NOM         FLAGS");
        ASSERT_STREQ(lines[1], "1  esp  créer    1 GiB Système EFI no-auto");
        ASSERT_STREQ(lines[2], "12 root copie  3.0 GiB -           -");
        ASSERT_EQ(cell_of(lines[1], "esp"), cell_of(lines[0], "RÔLE"));
        ASSERT_EQ(cell_of(lines[2], "root"), cell_of(lines[0], "RÔLE"));
        ASSERT_EQ(cell_of(lines[1], "créer"), cell_of(lines[0], "ACTION"));
        ASSERT_EQ(cell_of(lines[2], "copie"), cell_of(lines[0], "ACTION"));
        ASSERT_EQ(cell_of(lines[1], "GiB") + 3, cell_of(lines[0], "TAILLE") + 6);
        ASSERT_EQ(cell_of(lines[2], "GiB") + 3, cell_of(lines[0], "TAILLE") + 6);
        ASSERT_EQ(cell_of(lines[1], "Système"), cell_of(lines[0], "NOM"));
        ASSERT_EQ(cell_of(lines[1], "no-auto"), cell_of(lines[0], "FLAGS"));
        ASSERT_EQ(table_column_offset(t, 5), (int) cell_of(lines[0], "NOM"));
        ASSERT_EQ(table_column_offset(t, 4), -1);
        table_free_lines(lines, n);
}

static void test_display_widths(void) {
        _cleanup_(table_freep) Table *t = french_table();
        _cleanup_(freep) char *s = NULL;
        const size_t order[] = { 0, 3, 5, 1 };
        char buf[32];

        /* A chosen order, a minimum, a maximum that cuts by cells (not bytes), a wider gap, and a
         * translated header set by the caller. */
        ASSERT_OK(table_set_display(t, order, 4));
        table_set_width(t, 0, 3, 0);
        table_set_width(t, 5, 0, 6);
        table_set_gap(t, 3, 2);
        ASSERT_OK(table_set_header(t, 5, "ÉTIQUETTE"));
        ASSERT_OK(table_set_string(t, 1, 1, "räcine"));
        ASSERT_STREQ(table_get_text(t, 1, 1, buf), "räcine");
        ASSERT_STREQ(table_get_text(t, 1, 3, buf), "3.0 GiB");
        ASSERT_TRUE(table_get_text(t, 2, 0, buf) == NULL);
        ASSERT_OK(table_format(t, &s));
        ASSERT_STREQ(s, "#    TAILLE  ÉTIQUE RÔLE\n"
                        "1     1 GiB  Systèm esp\n"
                        "12  3.0 GiB  -      räcine\n");
}

static void test_json(void) {
        _cleanup_(table_freep) Table *t = french_table();
        json_object *j = table_to_json(t), *back, *e, *v;
        enum json_tokener_error err;

        ASSERT_TRUE(j);
        back = json_tokener_parse_verbose(json_object_to_json_string(j), &err);
        json_object_put(j);
        ASSERT_TRUE(back);
        ASSERT_TRUE(json_object_is_type(back, json_type_array));
        ASSERT_EQ(json_object_array_length(back), 2);

        e = json_object_array_get_idx(back, 0);
        ASSERT_EQ(json_object_object_length(e), 7);  /* FLAGS is text only */
        ASSERT_FALSE(json_object_object_get_ex(e, "FLAGS", NULL));
        ASSERT_TRUE(json_object_object_get_ex(e, "partno", &v) && json_object_get_int(v) == 1);
        ASSERT_TRUE(json_object_object_get_ex(e, "action", &v));
        ASSERT_STREQ(json_object_get_string(v), "créer");
        ASSERT_TRUE(json_object_object_get_ex(e, "size", &v) && json_object_is_type(v, json_type_int));
        ASSERT_EQ(json_object_get_int64(v), 1073741824);
        ASSERT_TRUE(json_object_object_get_ex(e, "typeUuid", &v));
        ASSERT_STREQ(json_object_get_string(v), "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
        ASSERT_TRUE(json_object_object_get_ex(e, "encrypt", &v) && json_object_is_type(v, json_type_boolean));
        ASSERT_FALSE(json_object_get_boolean(v));

        e = json_object_array_get_idx(back, 1);
        ASSERT_TRUE(json_object_object_get_ex(e, "size", &v));
        ASSERT_EQ(json_object_get_int64(v), 3221225473);
        /* NULL cells are null, present. */
        ASSERT_TRUE(json_object_object_get_ex(e, "label", &v) && v == NULL);
        ASSERT_TRUE(json_object_object_get_ex(e, "typeUuid", &v) && v == NULL);
        ASSERT_TRUE(json_object_object_get_ex(e, "encrypt", &v) && json_object_get_boolean(v));
        json_object_put(back);
}

static void test_nested_json(void) {
        _cleanup_(table_freep) Table *t = table_new();
        json_object *j, *a = json_object_new_array(), *v;

        ASSERT_OK(table_add_column(t, "DISK", "path", TABLE_LEFT));
        ASSERT_OK(table_add_column(t, NULL, "byId", TABLE_LEFT));
        json_object_array_add(a, json_object_new_string("usb-Stick"));
        ASSERT_OK(table_add_string(t, "/dev/sda"));
        ASSERT_OK(table_add_json(t, a));
        ASSERT_OK(table_add_string(t, "/dev/sdb"));
        ASSERT_OK(table_add_json(t, NULL));
        /* Columns are fixed once cells are in. */
        ASSERT_EQ(table_add_column(t, "LATE", "late", TABLE_LEFT), -EBUSY);

        j = table_to_json(t);
        ASSERT_STREQ(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN),
                     "[{\"path\":\"\\/dev\\/sda\",\"byId\":[\"usb-Stick\"]},{\"path\":\"\\/dev\\/sdb\",\"byId\":null}]");
        /* The table keeps its own reference. */
        ASSERT_TRUE(json_object_object_get_ex(json_object_array_get_idx(j, 0), "byId", &v) && v == a);
        json_object_put(j);
}

int main(void) {
        /* Widths must not depend on the locale: the command line may run under LANG=C. */
        test_text();
        test_display_widths();
        test_json();
        test_nested_json();
        if (setlocale(LC_ALL, "C.UTF-8")) {
                test_text();
                test_display_widths();
        }
        return 0;
}
