/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Screen 3: the layout. Erase the whole disk, or use its free space and keep what is there, and
 * the sizes of root, home and swap. The planner's answer is shown as a table below the choices,
 * rebuilt when they change, so a layout that does not fit says so here and not at the end. */

#include <curses.h>
#include <stdlib.h>
#include <string.h>

#include "size.h"
#include "ui.h"

typedef struct Preview {
        char key[1024];     /* the choices the plan was made for */
        const Plan *plan;   /* the session's */
        char *error;
} Preview;

static void preview_update(Tui *t, Preview *pv) {
        SessionRequest req;
        const Plan *p;
        char key[1024];
        int r;

        snprintf(key, sizeof(key), "%s|%d|%s|%s|%s", t->disk->path, t->mode, t->root_size.buf, t->home_size.buf, t->swap_size.buf);
        if (streq(key, pv->key))
                return;
        snprintf(pv->key, sizeof(pv->key), "%s", key);
        pv->plan = NULL;
        pv->error = mfree(pv->error);
        /* The layout alone: encryption (and its TPM check), the account and the settings are
         * chosen on the next screens. The disk is the one discovered on the disk screen. */
        session_request_init(&req);
        req.target = t->disk->path;
        req.with_image = true;
        req.encrypt.encrypt = 0;
        r = ui_layout_options(t, &req.layout);
        if (r >= 0)
                r = session_plan(t->session, &req, &p);
        if (r >= 0)
                pv->plan = p;
        else
                pv->error = strdup(session_error_message(r));
}

Table *ui_plan_table(const Plan *p, bool mark_encrypted) {
        static const size_t shown[] = { PLAN_COLUMN_PARTNO, PLAN_COLUMN_ROLE,  PLAN_COLUMN_ACTION, PLAN_COLUMN_START,
                                        PLAN_COLUMN_SIZE,   PLAN_COLUMN_FS,    PLAN_COLUMN_LABEL };
        _cleanup_(table_freep) Table *t = NULL;
        char buf[32];

        if (plan_partition_table(p, &t) < 0 || table_set_display(t, shown, ELEMENTSOF(shown)) < 0)
                return NULL;
        /* TRANSLATORS: column headings of the partition table. */
        if (table_set_header(t, PLAN_COLUMN_ROLE, _("ROLE")) < 0 || table_set_header(t, PLAN_COLUMN_ACTION, _("ACTION")) < 0 ||
            table_set_header(t, PLAN_COLUMN_START, _("START")) < 0 || table_set_header(t, PLAN_COLUMN_SIZE, _("SIZE")) < 0 ||
            table_set_header(t, PLAN_COLUMN_FS, _("FS")) < 0 || table_set_header(t, PLAN_COLUMN_LABEL, _("LABEL")) < 0)
                return NULL;
        for (size_t i = 0; i < table_get_rows(t); i++) {
                const char *action = table_get_text(t, i, PLAN_COLUMN_ACTION, buf);
                _cleanup_(freep) char *label = NULL;

                if (table_set_string(t, i, PLAN_COLUMN_ACTION,
                                     streq(action, "copy") ? _("copy") : streq(action, "keep") ? _("keep") : _("create")) < 0)
                        return NULL;
                if (!mark_encrypted || !streq(table_get_text(t, i, PLAN_COLUMN_ENCRYPT, buf), "yes"))
                        continue;
                if (asprintf(&label, "%s%s", table_get_text(t, i, PLAN_COLUMN_LABEL, buf), _(" (encrypted)")) < 0)
                        return NULL;
                if (table_set_string(t, i, PLAN_COLUMN_LABEL, label) < 0)
                        return NULL;
        }
        return TAKE_PTR(t);
}

static void draw_table(Tui *t, int y, int ymax, const Plan *p) {
        _cleanup_(table_freep) Table *table = ui_plan_table(p, false);
        char **lines = NULL, line[256];
        size_t n = 0;

        if (table && table_format_lines(table, &lines, &n) >= 0)
                for (size_t i = 0; i < n && y < ymax; i++)
                        ui_text(y++, 2, COLS - 4, i == 0 ? A_BOLD : 0, lines[i]);
        table_free_lines(lines, n);
        if (y < ymax && p->n_doomed > 0) {
                /* TRANSLATORS: %zu is a number of partitions; the summary lists them. */
                snprintf(line, sizeof(line),
                         ngettext("This destroys %zu existing partition (the summary names it).",
                                  "This destroys %zu existing partitions (the summary names them).", p->n_doomed),
                         p->n_doomed);
                ui_text(y + 1, 2, COLS - 4, ui_attr_error(), line);
        }
}

UiNext screen_layout(Tui *t) {
        Preview pv = {};
        bool can_free = session_can_keep_partitions(t->disk);
        int focus = t->mode == PLAN_FREE ? 1 : 0;
        UiNext next;

        if (!can_free)
                t->mode = PLAN_ERASE;
        t->help = N_("Erase: a new partition table; everything on the disk is lost. Free space: existing partitions and "
                     "systems are kept, the new system goes into the largest free region and shares an existing EFI "
                     "system partition. Sizes take K, M, G, T (20G), \"rest\" for the rest of the space, \"none\" to leave a "
                     "partition out, \"auto\" for the default.");

        for (;;) {
                UiKey k;
                int y;

                preview_update(t, &pv);
                if (ui_frame(t, _("Layout"), 3, _("F1 Help  Up/Down/Tab Move  Space Select  Enter Continue  Esc Back"))) {
                        ui_text(2, 2, COLS - 4, A_BOLD, t->disk->path);
                        ui_radio(t, 4, 2, COLS - 4, _("Erase the whole disk and install"), t->mode == PLAN_ERASE, focus == 0, false);
                        if (can_free)
                                ui_radio(t, 5, 2, COLS - 4, _("Use free space and keep the existing systems"), t->mode == PLAN_FREE,
                                         focus == 1, false);
                        else
                                ui_radio(t, 5, 2, COLS - 4, _("Use free space (the disk has no GPT partitions to keep)"), false,
                                         focus == 1, true);
                        ui_text(7, 2, COLS - 4, 0, _("Adjust sizes:"));
                        ui_field(t, 8, 4, 14, 14, _("Root"), &t->root_size, focus == 2);
                        ui_field(t, 8, 34, 8, 12, _("Home"), &t->home_size, focus == 3);
                        ui_field(t, 8, 58, 8, 12, _("Swap"), &t->swap_size, focus == 4);
                        y = 10;
                        if (pv.error)
                                ui_wrap(y, 2, COLS - 4, LINES - 2 - y, ui_attr_error(), pv.error);
                        else if (pv.plan)
                                draw_table(t, y, LINES - 2, pv.plan);
                        if (focus >= 2)
                                ui_field(t, 8, focus == 2 ? 4 : focus == 3 ? 34 : 58, focus == 2 ? 14 : 8, focus == 2 ? 14 : 12,
                                         focus == 2 ? _("Root") : focus == 3 ? _("Home") : _("Swap"),
                                         focus == 2 ? &t->root_size : focus == 3 ? &t->home_size : &t->swap_size, true);
                        else
                                curs_set(0);
                }
                refresh();
                k = ui_key(t);
                curs_set(0);
                if (ui_key_is(k, UI_KEY_ESC)) {
                        next = UI_BACK;
                        break;
                }
                if (ui_key_is(k, UI_KEY_ENTER)) {
                        if (focus <= 1 && !(focus == 1 && !can_free))
                                t->mode = focus == 1 ? PLAN_FREE : PLAN_ERASE;
                        preview_update(t, &pv);
                        if (pv.plan) {
                                next = UI_NEXT;
                                break;
                        }
                        continue;
                }
                if (ui_key_is(k, UI_KEY_TAB) || ui_key_is(k, KEY_DOWN))
                        focus = (focus + 1) % 5;
                else if (ui_key_is(k, KEY_BTAB) || ui_key_is(k, KEY_UP))
                        focus = (focus + 4) % 5;
                else if (focus <= 1 && k.is_char && k.ch == ' ') {
                        if (focus == 0 || can_free)
                                t->mode = focus == 1 ? PLAN_FREE : PLAN_ERASE;
                } else if (focus >= 2)
                        ui_field_key(focus == 2 ? &t->root_size : focus == 3 ? &t->home_size : &t->swap_size, k);
        }
        free(pv.error);
        return next;
}
