/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Screen 5: the account of the person who installs (name, password with libpwquality's verdict
 * while it is typed, administrator, home storage) and the computer's name and time zone. Whether
 * the account is a systemd-homed one or a classic /etc/passwd user is the engine's decision
 * (account_decide()), shown with its reason. */

#include <curses.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

enum {
        ITEM_REAL,
        ITEM_USER,
        ITEM_PW1,
        ITEM_PW2,
        ITEM_ADMIN,
        ITEM_STORAGE,
        ITEM_HOST,
        ITEM_TZ,
        _ITEM_MAX,
};

static TextField *field_of(Tui *t, int item) {
        switch (item) {
        case ITEM_REAL:
                return &t->real_name;
        case ITEM_USER:
                return &t->user;
        case ITEM_PW1:
                return &t->password1;
        case ITEM_PW2:
                return &t->password2;
        case ITEM_HOST:
                return &t->hostname;
        case ITEM_TZ:
                return &t->timezone;
        default:
                return NULL;
        }
}

static const char *label_of(int item) {
        switch (item) {
        case ITEM_REAL:
                return _("Full name");
        case ITEM_USER:
                return _("User name");
        case ITEM_PW1:
                return _("Password");
        case ITEM_PW2:
                return _("Again");
        case ITEM_HOST:
                return _("Computer name");
        default:
                return _("Time zone");
        }
}

static int field_width_of(int item) {
        return item == ITEM_USER ? 24 : item == ITEM_HOST || item == ITEM_TZ ? 30 : 40;
}

/* The labels' column: 18 wide, or wider when a translation needs it ("Nom de l'ordinateur" ran
 * into the field). */
static int label_width(void) {
        static const int items[] = { ITEM_REAL, ITEM_USER, ITEM_PW1, ITEM_PW2, ITEM_HOST, ITEM_TZ };
        int w = 18;

        for (size_t i = 0; i < ELEMENTSOF(items); i++)
                w = MAX(w, ui_width(label_of(items[i])) + 1);
        return w;
}

static const char *check(Tui *t, char *buf, size_t size) {
        PlanSettings s;
        int r;

        ui_settings(t, &s);
        r = session_check_settings(&s);
        if (r < 0) {
                snprintf(buf, size, "%s", session_error_message(r));
                return buf;
        }
        if (isempty(t->user.buf))
                return NULL;
        if (!session_user_name_is_valid(t->user.buf)) {
                /* TRANSLATORS: %s is the name typed. */
                snprintf(buf, size, _("\"%s\" cannot be a user name: lower-case letters, digits, _ and -, starting with a letter."),
                         t->user.buf);
                return buf;
        }
        if (isempty(t->password1.buf))
                return _("Type a password.");
        r = session_rate_secret(SESSION_SECRET_USER_PASSWORD, t->password1.buf, t->user.buf);
        if (r < 0 && !t->opts->allow_weak_password) {
                snprintf(buf, size, _("Too weak: %s"), session_error_message(r));
                return buf;
        }
        if (!streq(t->password1.buf, t->password2.buf))
                return _("The two passwords differ.");
        return NULL;
}

static const char *storage_label(AccountStorage s) {
        switch (s) {
        case ACCOUNT_STORAGE_LUKS:
                return _("encrypted home image (luks)");
        case ACCOUNT_STORAGE_DIRECTORY:
                return _("plain directory");
        default:
                return _("btrfs subvolume");
        }
}

UiNext screen_user(Tui *t) {
        _cleanup_(freep) char *classic_note = NULL;
        int homed;
        size_t focus = 0;
        bool tried = false;
        int list[_ITEM_MAX];
        size_t n = 0;

        t->help = N_("The account you log in with on the installed system. Leave the user name empty to create none: the "
                     "installed system then asks at its first boot. An administrator may use sudo. The password is checked "
                     "with the system's password-quality rules while you type.");

        /* What kind of account the engine will make here, and why. */
        {
                AccountRequest req;
                ui_account_request(t, &req);
                req.user_name = "user";
                homed = session_account_is_homed(t->session, t->disk, &req, &classic_note);
        }
        list[n++] = ITEM_REAL;
        list[n++] = ITEM_USER;
        list[n++] = ITEM_PW1;
        list[n++] = ITEM_PW2;
        list[n++] = ITEM_ADMIN;
        if (homed > 0)
                list[n++] = ITEM_STORAGE;
        list[n++] = ITEM_HOST;
        list[n++] = ITEM_TZ;

        for (;;) {
                char buf[512];
                const char *problem;
                int y_of[_ITEM_MAX] = {};
                UiKey k;

                if (ui_frame(t, _("Your account"), 5, _("F1 Help  Up/Down/Tab Move  Space Toggle  Enter Continue  Esc Back"))) {
                        int y = 2, lw = label_width();
                        curs_set(0);
                        ui_text(y, 2, COLS - 4, A_BOLD, _("Your account on the installed system"));
                        y += 2;
                        for (size_t i = 0; i < n; i++) {
                                int it = list[i];
                                bool f = i == focus;

                                if (it == ITEM_HOST)
                                        y++;
                                y_of[it] = y;
                                switch (it) {
                                case ITEM_REAL:
                                case ITEM_USER:
                                case ITEM_PW1:
                                        ui_field(t, y, 2, lw, field_width_of(it), label_of(it), field_of(t, it), f);
                                        break;
                                case ITEM_PW2:
                                        ui_field(t, y, 2, lw, field_width_of(it), label_of(it), field_of(t, it), f);
                                        if (!isempty(t->password1.buf)) {
                                                int r = session_rate_secret(SESSION_SECRET_USER_PASSWORD, t->password1.buf, isempty(t->user.buf) ? NULL : t->user.buf);
                                                if (r >= 0)
                                                        snprintf(buf, sizeof(buf), _("Strength: %d of 100"), r);
                                                else
                                                        snprintf(buf, sizeof(buf), _("Too weak: %s"), session_error_message(r));
                                                y++;
                                                ui_text(y, 2 + lw, COLS - 4 - lw, r >= 0 ? ui_attr_ok() : ui_attr_error(), buf);
                                        } else
                                                y++;
                                        break;
                                case ITEM_ADMIN:
                                        ui_check(t, y, 2, COLS - 4, _("Administrator (may use sudo)"), t->admin, f, false);
                                        break;
                                case ITEM_STORAGE:
                                        /* TRANSLATORS: %s is one of the storage kinds below. */
                                        snprintf(buf, sizeof(buf), _("Home: %s  (Space changes)"), storage_label(t->storage));
                                        ui_radio(t, y, 2, COLS - 4, buf, true, f, false);
                                        break;
                                case ITEM_HOST:
                                case ITEM_TZ:
                                        ui_field(t, y, 2, lw, field_width_of(it), label_of(it), field_of(t, it), f);
                                        break;
                                }
                                y++;
                        }
                        if (homed == 0 && classic_note) {
                                /* TRANSLATORS: %s is the engine's (English) reason. */
                                snprintf(buf, sizeof(buf), _("A classic account: %s"), classic_note);
                                ui_wrap(y + 1, 2, COLS - 4, LINES - y - 4, ui_attr_dim(), buf);
                        } else if (homed > 0)
                                ui_wrap(y + 1, 2, COLS - 4, 2, ui_attr_dim(),
                                        _("A systemd-homed account: created at the first boot of the installed system."));
                        if (tried && (problem = check(t, buf, sizeof(buf))))
                                ui_wrap(LINES - 3, 2, COLS - 4, 2, ui_attr_error(), problem);
                        else if (!isempty(t->password1.buf) && session_password_note())
                                /* The check above ran without the cracklib dictionary: say so. */
                                ui_wrap(LINES - 3, 2, COLS - 4, 2, ui_attr_dim(), session_password_note());
                        if (field_of(t, list[focus]))
                                ui_field(t, y_of[list[focus]], 2, lw, field_width_of(list[focus]), label_of(list[focus]),
                                         field_of(t, list[focus]), true);
                }
                refresh();
                k = ui_key(t);
                if (ui_key_is(k, UI_KEY_ESC))
                        return UI_BACK;
                if (ui_key_is(k, UI_KEY_ENTER)) {
                        if (!check(t, buf, sizeof(buf)))
                                return UI_NEXT;
                        tried = true;
                        continue;
                }
                if (ui_key_is(k, UI_KEY_TAB) || ui_key_is(k, KEY_DOWN))
                        focus = (focus + 1) % n;
                else if (ui_key_is(k, KEY_BTAB) || ui_key_is(k, KEY_UP))
                        focus = (focus + n - 1) % n;
                else if (list[focus] == ITEM_ADMIN && k.is_char && k.ch == ' ')
                        t->admin = !t->admin;
                else if (list[focus] == ITEM_STORAGE && k.is_char && k.ch == ' ')
                        t->storage = (t->storage + 1) % _ACCOUNT_STORAGE_MAX;
                else if (field_of(t, list[focus]))
                        ui_field_key(field_of(t, list[focus]), k);
        }
}
