/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Screen 9: done. Reboot, power off, or leave to a shell; with --record, record the install first. */

#include <curses.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config-record.h"
#include "ui.h"

static int power(Tui *t, bool reboot) {
        ui_log_line(t, "systemctl %s", reboot ? "reboot" : "poweroff");
        return session_power(reboot);
}

/* --record FILE: the configuration that repeats this install (config-record.h), written when the
 * person asks for it here; the message says what a replay needs that it cannot hold. */
static bool record(Tui *t, const Plan *p) {
        _cleanup_(freep) char *note = NULL;
        PlanOptions layout;
        char msg[2048];
        int r;

        r = ui_layout_options(t, &layout);
        if (r >= 0)
                r = config_record_write(p, t->disk, &layout, t->opts->source, t->opts->record_path);
        if (r < 0) {
                ui_log_line(t, "recording the install to %s failed: %s", t->opts->record_path, session_error_message(r));
                /* TRANSLATORS: %s is why, one sentence. */
                snprintf(msg, sizeof(msg), _("The install is complete, but it was not recorded: %s"), session_error_message(r));
                ui_message(t, _("Error"), msg, _("Enter: close"));
                return false;
        }
        ui_log_line(t, "recorded the install to %s", t->opts->record_path);
        note = config_record_note(p, t->opts->record_path);
        ui_message(t, _("Recorded"), note ?: t->opts->record_path, _("Enter: close"));
        return true;
}

UiNext screen_done(Tui *t, const Plan *p) {
        const char *items[] = { N_("Restart the computer"), N_("Switch off the computer"), N_("Exit to a shell"),
                                N_("Record this install for imprint unattended") };
        size_t sel_default = t->disk->kind == DISK_BLOCK ? 0 : 2;
        /* Offered only with --record, and first chosen: it writes nothing to any disk. */
        bool offer = t->opts->record_path;
        size_t n_items = ELEMENTSOF(items) - (offer ? 0 : 1);
        size_t sel = offer ? 3 : sel_default;

        t->help = N_("The installed system starts at the next boot from the disk. Remove the installation medium first, or "
                     "the computer may start it again.");
        for (;;) {
                char line[512];
                UiKey k;

                if (ui_frame(t, _("Done"), 0, _("F1 Help  Up/Down Choose  Enter Select"))) {
                        int y = 2;
                        curs_set(0);
                        /* TRANSLATORS: first %s is the OS name, second the target's path. */
                        snprintf(line, sizeof(line), _("%s is installed on %s."), p->source && p->source->os_name ? p->source->os_name : _("The system"),
                                 p->target);
                        y += ui_wrap(y, 2, COLS - 4, 2, ui_attr_ok(), line);
                        y++;
                        if (p->target_kind == DISK_BLOCK)
                                y += ui_wrap(y, 2, COLS - 4, 3, 0,
                                             _("Remove the installation medium, then restart: the computer starts the installed system."));
                        else
                                y += ui_wrap(y, 2, COLS - 4, 3, 0,
                                             _("The image file can now be written to a disk or started in a virtual machine."));
                        if (p->encryption.enabled)
                                y += ui_wrap(y + 1, 2, COLS - 4, 3, 0,
                                             _("Keep the recovery key you wrote down apart from the computer.")) + 1;
                        if (p->account) {
                                /* TRANSLATORS: %s is the user name. */
                                snprintf(line, sizeof(line), _("Log in as %s with the password you chose."), p->account->user_name);
                                y += ui_wrap(y + 1, 2, COLS - 4, 2, 0, line) + 1;
                        }
                        y += 2;
                        for (size_t i = 0; i < n_items; i++)
                                ui_radio(t, y + (int) i, 4, i == 3 ? 60 : 40, _(items[i]), i == sel, i == sel, false);
                        if (t->opts->record_path && !offer) {
                                /* TRANSLATORS: %s is the file given with --record. */
                                snprintf(line, sizeof(line), _("The configuration that repeats this install is in %s."),
                                         t->opts->record_path);
                                ui_wrap(LINES - 5, 2, COLS - 4, 2, 0, line);
                        }
                        /* TRANSLATORS: %s is the log file's path. */
                        snprintf(line, sizeof(line), _("The log of this install: %s"), t->log_path ?: "-");
                        ui_wrap(LINES - 3, 2, COLS - 4, 2, ui_attr_dim(), line);
                }
                refresh();
                k = ui_key(t);
                if (ui_key_is(k, KEY_UP) && sel > 0)
                        sel--;
                else if (ui_key_is(k, KEY_DOWN) && sel + 1 < n_items)
                        sel++;
                else if (ui_key_is(k, UI_KEY_ENTER)) {
                        int r;
                        if (sel == 3) {
                                if (record(t, p)) {
                                        offer = false;
                                        n_items--;
                                        sel = sel_default;
                                }
                                continue;
                        }
                        if (sel == 2) {
                                t->exec_shell = t->opts->shell_after;
                                return UI_QUIT;
                        }
                        r = power(t, sel == 0);
                        if (r >= 0)
                                return UI_QUIT;
                        ui_message(t, _("Error"), session_error_message(r), _("Enter: close"));
                }
        }
}
