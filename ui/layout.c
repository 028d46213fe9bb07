/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Screen 3: the layout. Erase the whole disk, or use its free space and keep what is there, and
 * the sizes of root, home and swap. The planner's answer is shown as a table below the choices,
 * rebuilt when they change, so a layout that does not fit says so here and not at the end. */

#include <curses.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
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

static void draw_table(Tui *t, int y, int ymax, const Plan *p) {
        char line[256], c[5][64];

        /* TRANSLATORS: column headings of the partition table; keep the widths (9, 7, 10, 10, 6). */
        snprintf(line, sizeof(line), "%-3s %s %s %s %s  %s %s", "#", ui_pad(c[0], sizeof(c[0]), _("ROLE"), 9, false),
                 ui_pad(c[1], sizeof(c[1]), _("ACTION"), 7, false), ui_pad(c[2], sizeof(c[2]), _("START"), 10, true),
                 ui_pad(c[3], sizeof(c[3]), _("SIZE"), 10, true), ui_pad(c[4], sizeof(c[4]), _("FS"), 6, false), _("LABEL"));
        ui_text(y++, 2, COLS - 4, A_BOLD, line);
        for (size_t i = 0; i < p->n_partitions && y < ymax; i++) {
                const PlanPartition *pp = &p->partitions[i];
                const char *action = pp->copy_from >= 0 ? _("copy") : pp->action == ACTION_KEEP ? _("keep") : _("create");

                snprintf(line, sizeof(line), "%-3u %-9s %s %10s %10s  %-6s %s", pp->partno, partition_role_to_string(pp->role),
                         ui_pad(c[0], sizeof(c[0]), action, 7, false),
                         FORMAT_BYTES(pp->start), FORMAT_BYTES(pp->size),
                         pp->copy_from >= 0 ? (p->source->partitions[pp->copy_from].fstype ?: "?") : (pp->fstype ?: "-"),
                         pp->label ?: "-");
                ui_text(y++, 2, COLS - 4, 0, line);
        }
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
