/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Screen 1: welcome, what is installed from where, install or "Reset an installed system", the
 * language of the installer (and of the installed system) and the keyboard layout. The recovery
 * entry (TuiOptions.reset) comes here for the language and keyboard only: it resets. */

#include <curses.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ui.h"

static void draw_list(Tui *t, int y, int x, int w, int rows, const char *const *items, size_t n, size_t sel, bool focused) {
        size_t first = sel >= (size_t) rows ? sel - (size_t) rows + 1 : 0;

        for (int i = 0; i < rows && first + (size_t) i < n; i++) {
                size_t k = first + (size_t) i;
                ui_radio(t, y + i, x, w, items[k], k == sel, focused && k == sel, false);
        }
        if (first > 0)
                ui_text(y - 1, x + w - 2, 2, 0, t->utf8 ? "▲" : "^");
        if (first + (size_t) rows < n)
                ui_text(y + rows, x + w - 2, 2, 0, t->utf8 ? "▼" : "v");
}

UiNext screen_welcome(Tui *t) {
        const char *names[8];
        bool reset_only = t->opts->reset;
        int focus = 0; /* 0 language, 1 keyboard layout, 2 install or reset */

        for (size_t i = 0; i < i18n_n_languages && i < ELEMENTSOF(names); i++)
                names[i] = i18n_languages[i].name;
        t->help = reset_only ? N_("Choose the language and the keyboard layout you type with. A reset erases the system (root) and, "
                                  "unless you keep it, home with every user's files: encrypted partitions by destroying their keys "
                                  "(crypto-erase), others by discarding or overwriting them. It keeps the ESP, the system image "
                                  "slots and vendor partitions, and makes new keys and a new recovery key.")
                             : N_("Choose the language of the installer and of the installed system, and the keyboard layout you type "
                                  "with. On the Linux console the layout takes effect at once. \"Reset an installed system\" erases "
                                  "a system imprint installed and makes it new: root (and home, unless kept) are erased, the ESP, "
                                  "the system image slots and vendor partitions are kept.");

        for (;;) {
                char text[1024];
                int y, rows;
                UiKey k;

                if (ui_frame(t, reset_only ? _("Reset an installed system") : _("Welcome to imprint"), reset_only || t->reset ? 0 : 1,
                             _("F1 Help  Tab Next list  Up/Down Choose  Enter Continue  Esc Quit"))) {
                        if (reset_only) {
                                y = 2 + ui_wrap(2, 2, COLS - 4, 2, A_BOLD,
                                                _("This program resets a system imprint installed on this computer: it erases it and makes it new."));
                        } else {
                                y = 2 + ui_wrap(2, 2, COLS - 4, 2, A_BOLD,
                                                _("Welcome. This program installs an operating system onto this computer."));
                                if (!session_image(t->session)) {
                                        ui_text(y + 1, 2, COLS - 4, 0, _("Reading the image…"));
                                        refresh();
                                        {
                                                int r = session_open_source(t->session);
                                                if (r < 0) {
                                                        char msg[1024];
                                                        /* TRANSLATORS: %s is the engine's sentence (translated itself) saying why. */
                                                        snprintf(msg, sizeof(msg), _("The OS image cannot be used: %s"), session_error_message(r));
                                                        ui_message(t, _("Error"), msg, _("Enter: quit"));
                                                        return UI_QUIT;
                                                }
                                        }
                                        continue;
                                }
                                /* TRANSLATORS: first %s is the OS name ("Debian GNU/Linux 13"), second the image file. */
                                snprintf(text, sizeof(text), _("It installs %s from %s."), session_source_name(t->session) ?: _("an OS image"),
                                         session_source_path(t->session));
                                rows = ui_wrap(y + 1, 2, COLS - 4, 3, 0, text);
                                y += 1 + rows + 1;
                                ui_radio(t, y, 2, 26, _("Install"), !t->reset, focus == 2 && !t->reset, false);
                                ui_radio(t, y, 30, COLS - 32, _("Reset an installed system"), t->reset, focus == 2 && t->reset, false);
                        }
                        y += 2;
                        ui_text(y, 2, 24, A_BOLD, _("Language"));
                        ui_text(y, 30, 30, A_BOLD, _("Keyboard layout"));
                        draw_list(t, y + 2, 2, 24, (int) i18n_n_languages, names, i18n_n_languages, t->language, focus == 0);
                        draw_list(t, y + 2, 30, 30, LINES - y - 8, ui_keymaps, ui_n_keymaps, t->keymap, focus == 1);
                        ui_wrap(LINES - 4, 2, COLS - 4, 2, ui_attr_dim(),
                                t->reset || reset_only ? _("Nothing is erased before you confirm by typing the disk's name.")
                                                       : _("Nothing is written to any disk before you confirm on the summary."));
                }
                curs_set(0);
                refresh();
                k = ui_key(t);
                if (ui_key_is(k, UI_KEY_ESC))
                        return UI_BACK;
                if (ui_key_is(k, UI_KEY_ENTER))
                        return UI_NEXT;
                if (ui_key_is(k, UI_KEY_TAB) || ui_key_is(k, KEY_RIGHT))
                        focus = (focus + 1) % (reset_only ? 2 : 3);
                else if (ui_key_is(k, KEY_BTAB) || ui_key_is(k, KEY_LEFT))
                        focus = (focus + (reset_only ? 1 : 2)) % (reset_only ? 2 : 3);
                else if ((ui_key_is(k, KEY_UP) || ui_key_is(k, KEY_DOWN)) && focus == 2)
                        t->reset = ui_key_is(k, KEY_DOWN);
                else if (ui_key_is(k, KEY_UP) || ui_key_is(k, KEY_DOWN)) {
                        bool up = ui_key_is(k, KEY_UP);
                        if (focus == 0) {
                                size_t l = t->language;
                                if (up && l > 0)
                                        l--;
                                else if (!up && l + 1 < i18n_n_languages)
                                        l++;
                                if (l != t->language) {
                                        ui_set_language(t, l);
                                        /* A language suggests its layout. */
                                        for (size_t i = 0; i < ui_n_keymaps; i++)
                                                if (streq(ui_keymaps[i], i18n_languages[l].keymap))
                                                        t->keymap = i;
                                        session_set_console_keymap(ui_keymaps[t->keymap]);
                                }
                        } else {
                                if (up && t->keymap > 0)
                                        t->keymap--;
                                else if (!up && t->keymap + 1 < ui_n_keymaps)
                                        t->keymap++;
                                session_set_console_keymap(ui_keymaps[t->keymap]);
                        }
                }
        }
}
