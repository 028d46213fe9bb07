/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Screen 9: done. Reboot, power off, or leave to a shell. */

#include <curses.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ui.h"

static int power(Tui *t, bool reboot) {
        ui_log_line(t, "systemctl %s", reboot ? "reboot" : "poweroff");
        return session_power(reboot);
}

UiNext screen_done(Tui *t, const Plan *p) {
        const char *items[] = { N_("Restart the computer"), N_("Switch off the computer"), N_("Exit to a shell") };
        size_t sel = t->disk->kind == DISK_BLOCK ? 0 : 2;

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
                        for (size_t i = 0; i < ELEMENTSOF(items); i++)
                                ui_radio(t, y + (int) i, 4, 40, _(items[i]), i == sel, i == sel, false);
                        /* TRANSLATORS: %s is the log file's path. */
                        snprintf(line, sizeof(line), _("The log of this install: %s"), t->log_path ?: "-");
                        ui_wrap(LINES - 3, 2, COLS - 4, 2, ui_attr_dim(), line);
                }
                refresh();
                k = ui_key(t);
                if (ui_key_is(k, KEY_UP) && sel > 0)
                        sel--;
                else if (ui_key_is(k, KEY_DOWN) && sel + 1 < ELEMENTSOF(items))
                        sel++;
                else if (ui_key_is(k, UI_KEY_ENTER)) {
                        int r;
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
