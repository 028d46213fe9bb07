/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The failure screen: what failed (the step and the engine's sentence), what state the disk is
 * in (untouched when no step that writes began), where the log is; retry, save the log to a USB
 * stick (session_save_log(): the engine finds the stick and refuses the target), go back to change
 * the choices, or quit. */

#include <curses.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

UiNext screen_failure(Tui *t, const Plan *p, const char *message) {
        const char *items[] = { N_("Retry the install"), N_("Save the log to a USB stick"), N_("Back: change the choices"),
                                N_("Quit") };
        size_t sel = 0;
        char note[512] = "";

        t->help = N_("Retry runs the same install again (the summary is shown again first). The log records every step and "
                     "every command that ran; save it to a USB stick to report the problem.");
        for (;;) {
                char line[2048];
                /* Rows for the engine's message: fewer when the choices would not fit above the
                 * note (rows LINES-3 and LINES-2) otherwise; the log has the whole message. */
                int message_rows = MAX(LINES - 16, 5);
                UiKey k;

                while (ui_frame(t, _("The install failed"), 0, _("F1 Help  Up/Down Choose  Enter Select"))) {
                        int y = 2, w = 40, drawn;
                        curs_set(0);
                        ui_text(y++, 2, COLS - 4, ui_attr_error(), _("The install failed."));
                        y++;
                        if (session_failed_step(t->session)) {
                                /* TRANSLATORS: %s is the step (English, from the engine). */
                                snprintf(line, sizeof(line), _("What failed: %s"), session_failed_step(t->session));
                                y += ui_wrap(y, 2, COLS - 4, 2, A_BOLD, line);
                        }
                        drawn = ui_wrap(y, 2, COLS - 4, message_rows, 0, message);
                        y += drawn;
                        y++;
                        if (!session_wrote(t->session))
                                /* TRANSLATORS: %s is the target's path. */
                                snprintf(line, sizeof(line), _("The disk: nothing was written to %s; it is as it was."), p->target);
                        else if (p->mode == PLAN_ERASE)
                                snprintf(line, sizeof(line),
                                         _("The disk: %s was partly written. What was on it before is gone, and it does not start "
                                           "a system yet. Retry installs it again."),
                                         p->target);
                        else
                                snprintf(line, sizeof(line),
                                         _("The disk: new partitions were written to the free space of %s; the partitions that "
                                           "were there are kept. The new system does not start yet. Retry installs it again."),
                                         p->target);
                        y += ui_wrap(y, 2, COLS - 4, 3, A_BOLD, line);
                        snprintf(line, sizeof(line), _("The log of this install: %s"), t->log_path ?: "-");
                        y += ui_wrap(y, 2, COLS - 4, 2, 0, line);
                        y++;
                        if (y + (int) ELEMENTSOF(items) > LINES - 3 && message_rows > 2) {
                                message_rows = MAX(drawn - (y + (int) ELEMENTSOF(items) - (LINES - 3)), 2);
                                continue;
                        }
                        /* 40 columns, or what a translation needs ("Enregistrer le journal sur une clé
                         * USB" was cut at 40). */
                        for (size_t i = 0; i < ELEMENTSOF(items); i++)
                                w = MAX(w, ui_width(_(items[i])) + 4);
                        for (size_t i = 0; i < ELEMENTSOF(items) && y < LINES - 2; i++, y++)
                                ui_radio(t, y, 4, MIN(w, COLS - 6), _(items[i]), i == sel, i == sel, false);
                        if (note[0])
                                ui_wrap(LINES - 3, 2, COLS - 4, 2, ui_attr_dim(), note);
                        break;
                }
                refresh();
                k = ui_key(t);
                if (ui_key_is(k, UI_KEY_ESC))
                        return UI_BACK;
                if (ui_key_is(k, KEY_UP) && sel > 0)
                        sel--;
                else if (ui_key_is(k, KEY_DOWN) && sel + 1 < ELEMENTSOF(items))
                        sel++;
                else if (ui_key_is(k, UI_KEY_ENTER)) {
                        switch (sel) {
                        case 0:
                                return UI_NEXT;
                        case 1: {
                                int r;
                                ui_frame(t, _("The install failed"), 0, "");
                                ui_text(2, 2, COLS - 4, 0, _("Looking for a USB stick…"));
                                refresh();
                                {
                                        _cleanup_(freep) char *where = NULL;

                                        if (t->log)
                                                fflush(t->log);
                                        r = session_save_log(t->session, t->log_path, &where);
                                        if (r < 0)
                                                snprintf(note, sizeof(note), "%s", session_error_message(r));
                                        else
                                                snprintf(note, sizeof(note), "%s", where);
                                }
                                break;
                        }
                        case 2:
                                return UI_BACK;
                        default:
                                return UI_QUIT;
                        }
                }
        }
}
