/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* "Reset an installed system": the factory reset's screens. The disks imprint installed (the
 * others dimmed, with the reason session_reset_target() gives), keep home or not and the account,
 * then the session plans the reset and runs it with the install's events: the erase/keep table
 * that is confirmed by typing the disk's name, the new recovery key (recovery.c), progress
 * (progress.c), and the result, which names the erase method the audit record holds. */

#include <curses.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialogue.h"
#include "error.h"
#include "size.h"
#include "ui.h"

/* What a reset keeps and erases, for F1 on every reset screen. */
static const char *const reset_help =
        N_("A reset erases the system (root) and, unless you keep it, home with every user's files: encrypted partitions by "
           "destroying their keys and LUKS2 headers (crypto-erase), others by discarding or overwriting them. It keeps the "
           "ESP, the system image slots and vendor partitions byte for byte. It makes new keys and a new recovery key. Only "
           "disks imprint installed can be reset.");

/* ---- which disk ------------------------------------------------------------------------------ */

static int draw_reset_disk(Tui *t, int y, int ymax, const Disk *d, const ResetTarget *rt, bool can, bool selected) {
        int a = !can ? ui_attr_dim() : selected ? ui_attr_focus() : 0;
        char line[512], about[1024];
        int rows = 1;

        snprintf(line, sizeof(line), "%s %-18s %10s  %-6s %s%s%s", selected ? ">" : " ", d->path, FORMAT_BYTES(d->size),
                 transport_to_string(d->transport) ?: "?", d->model ?: (d->kind == DISK_IMAGE_FILE ? _("image file") : ""),
                 d->serial ? "  " : "", d->serial ?: "");
        if (y < ymax) {
                if (selected) {
                        attron(a);
                        mvhline(y, 2, ' ', COLS - 4);
                        attroff(a);
                }
                ui_text(y, 2, COLS - 4, a, line);
        }
        if (rt)
                reset_target_describe(rt, about, sizeof(about));
        else
                snprintf(about, sizeof(about), "%s", _("cannot be reset: it cannot be read."));
        for (char *p = about, *e; p && *p && y + rows < ymax; p = e ? e + 1 : NULL) {
                e = strchr(p, '\n');
                if (e)
                        *e = 0;
                rows += ui_wrap(y + rows, 6, COLS - 10, ymax - y - rows, can ? 0 : ui_attr_dim(), p);
        }
        return rows;
}

UiNext screen_reset_disk(Tui *t) {
        _cleanup_(freep) char *request = NULL;
        const DiskList *disks = session_disks(t->session);
        bool need_scan = true;
        size_t sel = 0;

        /* A reset the installed system asked for (systemd's FactoryResetRequest): say so. */
        (void) reset_request_here(&request);

        t->help = reset_help;
        for (;;) {
                UiKey k;
                size_t n_can = 0;

                if (ui_frame(t, _("Which system to reset"), 0, _("F1 Help  Up/Down Choose  F5 Rescan  Enter Continue  Esc Back"))) {
                        int y = 4, ymax = LINES - 3;
                        size_t first = 0;

                        if (need_scan) {
                                int r;

                                ui_text(2, 2, COLS - 4, 0, _("Looking for disks…"));
                                refresh();
                                t->disk = NULL;
                                t->reset_target = NULL;
                                r = session_discover(t->session, true);
                                need_scan = false;
                                if (r < 0) {
                                        ui_message(t, _("Error"), session_error_message(r), _("Enter: back"));
                                        return UI_BACK;
                                }
                                sel = SIZE_MAX;
                                for (size_t i = 0; i < disks->n_disks; i++)
                                        if (session_reset_target(t->session, disks->disks[i], NULL) > 0 && sel == SIZE_MAX)
                                                sel = i;
                                continue;
                        }
                        ui_text(2, 2, COLS - 4, A_BOLD, _("Choose the disk to reset. Only disks imprint installed can be reset."));
                        if (request) {
                                char line[512];

                                /* TRANSLATORS: %s describes the firmware's reset request. */
                                snprintf(line, sizeof(line), _("The installed system asked for this reset: %s"), request);
                                ui_text(3, 2, COLS - 4, 0, line);
                        }
                        if (sel != SIZE_MAX && sel > (size_t) (ymax - y) / 3)
                                first = sel - (size_t) (ymax - y) / 3;
                        for (size_t i = first; i < disks->n_disks && y < ymax; i++) {
                                const ResetTarget *rt = NULL;
                                bool can = session_reset_target(t->session, disks->disks[i], &rt) > 0;

                                n_can += can;
                                y += draw_reset_disk(t, y, ymax, disks->disks[i], rt, can, can && i == sel) + 1;
                        }
                        if (n_can == 0 && sel == SIZE_MAX)
                                ui_wrap(LINES - 3, 2, COLS - 4, 2, ui_attr_error(),
                                        _("No disk here was installed by imprint, so none can be reset. Plug one in and press F5."));
                }
                curs_set(0);
                refresh();
                k = ui_key(t);
                if (ui_key_is(k, UI_KEY_ESC))
                        return UI_BACK;
                if (ui_key_is(k, KEY_F(5)))
                        need_scan = true;
                else if (ui_key_is(k, UI_KEY_ENTER) && sel < disks->n_disks) {
                        const ResetTarget *rt = NULL;

                        if (session_reset_target(t->session, disks->disks[sel], &rt) > 0) {
                                if (t->disk != disks->disks[sel])
                                        t->keep_home = false;
                                t->disk = disks->disks[sel];
                                t->reset_target = rt;
                                return UI_NEXT;
                        }
                } else if ((ui_key_is(k, KEY_UP) || ui_key_is(k, KEY_DOWN)) && sel != SIZE_MAX) {
                        bool up = ui_key_is(k, KEY_UP);
                        for (size_t i = sel;;) {
                                if (up ? i == 0 : i + 1 >= disks->n_disks)
                                        break;
                                i = up ? i - 1 : i + 1;
                                if (session_reset_target(t->session, disks->disks[i], NULL) > 0) {
                                        sel = i;
                                        break;
                                }
                        }
                }
        }
}

/* ---- keep home, the account ---------------------------------------------------------------- */

enum {
        OPT_KEEP_HOME,
        OPT_OLD_KEY,
        OPT_USER,
        OPT_PW1,
        OPT_PW2,
        _OPT_MAX,
};

static bool option_enabled(Tui *t, int item) {
        const ResetTarget *rt = t->reset_target;

        switch (item) {
        case OPT_KEEP_HOME:
                return rt && rt->has_home;
        case OPT_OLD_KEY:
                return rt && rt->has_home && rt->encrypted && t->keep_home;
        case OPT_PW1:
        case OPT_PW2:
                return !isempty(t->user.buf);
        default:
                return true;
        }
}

static TextField *option_field(Tui *t, int item) {
        switch (item) {
        case OPT_OLD_KEY:
                return &t->old_key;
        case OPT_USER:
                return &t->user;
        case OPT_PW1:
                return &t->password1;
        case OPT_PW2:
                return &t->password2;
        default:
                return NULL;
        }
}

UiNext screen_reset_options(Tui *t) {
        int focus = option_enabled(t, OPT_KEEP_HOME) ? OPT_KEEP_HOME : OPT_USER;
        char problem[512] = "";

        t->help = reset_help;
        for (;;) {
                int lw = 34;
                UiKey k;

                if (ui_frame(t, _("Reset: what to keep"), 0, _("F1 Help  Tab Next  Space Toggle  Enter Continue  Esc Back"))) {
                        char line[512];
                        int y = 2;

                        /* The bottom line first: the focused field, drawn last, keeps the cursor. */
                        if (problem[0])
                                ui_wrap(LINES - 4, 2, COLS - 4, 2, ui_attr_error(), problem);
                        else
                                ui_wrap(LINES - 4, 2, COLS - 4, 2, ui_attr_dim(), _("Nothing is erased before you confirm on the next screen."));
                        curs_set(0);
                        /* TRANSLATORS: %s is the OS name, then the disk. */
                        snprintf(line, sizeof(line), _("Reset %s on %s."), t->reset_target && t->reset_target->os_name ? t->reset_target->os_name : _("the system"),
                                 t->disk->path);
                        y += ui_wrap(y, 2, COLS - 4, 2, A_BOLD, line) + 1;
                        ui_check(t, y++, 2, COLS - 4, _("Keep home: the users' files stay, only the system is erased"), t->keep_home,
                                 focus == OPT_KEEP_HOME, !option_enabled(t, OPT_KEEP_HOME));
                        if (!option_enabled(t, OPT_KEEP_HOME))
                                ui_text(y++, 6, COLS - 8, ui_attr_dim(), _("This disk has no home partition."));
                        y++;
                        if (option_enabled(t, OPT_OLD_KEY)) {
                                ui_wrap(y++, 2, COLS - 4, 1, 0, _("Home stays encrypted; the TPM unlocks it to give it new keys. If it cannot:"));
                                ui_field(t, y++, 2, lw, 36, _("Current recovery key (optional)"), &t->old_key, focus == OPT_OLD_KEY);
                                y++;
                        }
                        ui_wrap(y++, 2, COLS - 4, 1, 0, _("A new account now, or leave it to the system's first start (empty name):"));
                        ui_field(t, y++, 2, lw, 24, _("User name"), &t->user, focus == OPT_USER);
                        ui_field(t, y++, 2, lw, 36, _("Password"), &t->password1, focus == OPT_PW1 && option_enabled(t, OPT_PW1));
                        ui_field(t, y++, 2, lw, 36, _("Again"), &t->password2, focus == OPT_PW2 && option_enabled(t, OPT_PW2));
                }
                refresh();
                k = ui_key(t);
                if (ui_key_is(k, UI_KEY_ESC))
                        return UI_BACK;
                if (ui_key_is(k, UI_KEY_ENTER)) {
                        problem[0] = 0;
                        if (!isempty(t->user.buf) && !session_user_name_is_valid(t->user.buf))
                                /* TRANSLATORS: %s is what was typed as the user name. */
                                snprintf(problem, sizeof(problem), _("\"%s\" cannot be a user name: lower-case letters, digits, _ and -, starting with a letter."),
                                         t->user.buf);
                        else if (!isempty(t->user.buf) && !streq(t->password1.buf, t->password2.buf))
                                snprintf(problem, sizeof(problem), "%s", _("The two passwords differ."));
                        else if (!isempty(t->user.buf) && isempty(t->password1.buf))
                                snprintf(problem, sizeof(problem), "%s", _("The account needs a password."));
                        if (!problem[0])
                                return UI_NEXT;
                } else if (ui_key_is(k, UI_KEY_TAB) || ui_key_is(k, KEY_DOWN) || ui_key_is(k, KEY_BTAB) || ui_key_is(k, KEY_UP)) {
                        int step = ui_key_is(k, KEY_BTAB) || ui_key_is(k, KEY_UP) ? _OPT_MAX - 1 : 1;
                        do
                                focus = (focus + step) % _OPT_MAX;
                        while (!option_enabled(t, focus));
                } else if (focus == OPT_KEEP_HOME && k.is_char && k.ch == ' ') {
                        t->keep_home = !t->keep_home;
                        if (!t->keep_home)
                                ui_field_wipe(&t->old_key);
                } else if (option_field(t, focus))
                        ui_field_key(option_field(t, focus), k);
        }
}

/* ---- the erase/keep table, confirmed by the disk's name -------------------------------------- */

int ui_reset_confirm(Tui *t, const Plan *p) {
        TextField typed = {};
        bool wrong = false;
        int r;

        t->help = reset_help;
        for (;;) {
                char line[1024], prompt[256];
                UiKey k;

                if (ui_frame(t, _("Reset: what is erased and what is kept"), 0, _("F1 Help  Enter Reset  Esc Back"))) {
                        int y = 2;

                        /* TRANSLATORS: %s is the disk, then its description. */
                        snprintf(line, sizeof(line), _("Factory reset of %s (%s)"), p->target, p->target_description ?: p->target_name);
                        y += ui_wrap(y, 2, COLS - 4, 2, A_BOLD, line) + 1;
                        for (size_t i = 0; i < p->n_partitions && y < LINES - 8; i++) {
                                const PlanPartition *pp = &p->partitions[i];
                                char fate[768];

                                (void) reset_partition_fate(p, i, fate, sizeof(fate));
                                snprintf(line, sizeof(line), "%2u %-8s %9s  %s", pp->partno, partition_role_to_string(pp->role) ?: "-",
                                         FORMAT_BYTES(pp->size), fate);
                                y += ui_wrap_hanging(y, 2, COLS - 4, 23, LINES - 8 - y,
                                                     pp->action == ACTION_CREATE && pp->erase ? ui_attr_error() : 0, line);
                        }
                        if (p->reset && p->reset->account_note && y < LINES - 7)
                                y += ui_wrap(y, 2, COLS - 4, LINES - 7 - y, 0, p->reset->account_note);
                        if (p->encryption.enabled && y < LINES - 7)
                                ui_wrap(y, 2, COLS - 4, LINES - 7 - y, 0,
                                        _("New keys and a new recovery key; the old recovery key opens nothing afterwards."));
                        snprintf(prompt, sizeof(prompt),
                                 p->reset && p->reset->keep_home
                                         /* TRANSLATORS: %s is the disk's path. */
                                         ? _("This ERASES the system on %s for good; home is kept.")
                                         : _("This ERASES the system and every user's files on %s for good."),
                                 p->target);
                        ui_wrap(LINES - 6, 2, COLS - 4, 2, ui_attr_error() | A_BOLD, prompt);
                        /* TRANSLATORS: %s is the disk's short name, to be typed. */
                        snprintf(prompt, sizeof(prompt), _("Type \"%s\" to reset:"), p->target_name);
                        if (wrong)
                                ui_text(LINES - 2, 2, COLS - 4, ui_attr_error(), _("That is not the disk's name. Nothing was written."));
                        ui_field(t, LINES - 3, 2, ui_width(prompt) + 1, 30, prompt, &typed, true);
                }
                refresh();
                k = ui_key(t);
                if (ui_key_is(k, UI_KEY_ESC)) {
                        r = 0;
                        break;
                }
                if (ui_key_is(k, UI_KEY_ENTER)) {
                        if (streq(typed.buf, p->target_name)) {
                                r = 1;
                                break;
                        }
                        wrong = true;
                        ui_field_wipe(&typed);
                } else if (ui_field_key(&typed, k))
                        wrong = false;
        }
        curs_set(0);
        ui_log_line(t, r > 0 ? "The reset was confirmed." : "The reset was not confirmed; nothing was written.");
        return r;
}

/* ---- running it ------------------------------------------------------------------------------ */

static int on_event(const SessionEvent *ev, void *userdata) {
        Tui *t = userdata;

        switch (ev->type) {
        case SESSION_EVENT_PROGRESS:
                if (ev->progress->type == PROGRESS_END && strncmp(ev->progress->id, "erase-", 6) == 0 && ev->progress->message) {
                        size_t len = strlen(t->erase_report);
                        snprintf(t->erase_report + len, sizeof(t->erase_report) - len, "%s%s: %s", len ? "\n" : "",
                                 ev->progress->id + 6, ev->progress->message);
                }
                ui_progress(t, ev->progress);
                return 0;
        case SESSION_EVENT_CONFIRM:
                return ui_reset_confirm(t, ev->plan);
        case SESSION_EVENT_RECOVERY_KEY:
                return ui_recovery_key(t, ev->plan, ev->recovery_key);
        default:
                return 0;
        }
}

static int hand_over_reset_secrets(Tui *t, const Plan *p) {
        int r;

        if (p->account) {
                Secret *v = secret_new_from(t->password1.buf, strlen(t->password1.buf));
                if (!v)
                        return -ENOMEM;
                r = session_set_secret(t->session, SESSION_SECRET_USER_PASSWORD, v, t->opts->allow_weak_password);
                if (r < 0)
                        return r;
        }
        if (p->reset && p->reset->keep_home && p->encryption.enabled) {
                r = session_secret_from_credential(t->session, SESSION_SECRET_OLD_RECOVERY_KEY, false);
                if (r == -ENOENT && !isempty(t->old_key.buf)) {
                        Secret *v = secret_new_from(t->old_key.buf, strlen(t->old_key.buf));
                        if (!v)
                                return -ENOMEM;
                        r = session_set_secret(t->session, SESSION_SECRET_OLD_RECOVERY_KEY, v, false);
                }
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        return 0;
}

static UiNext screen_reset_done(Tui *t, const Plan *p);

UiNext screen_reset_run(Tui *t) {
        for (;;) {
                SessionResetRequest req;
                const Plan *p = NULL;
                char msg[2048];
                int r, sig;

                ui_frame(t, _("Reset: what is erased and what is kept"), 0, "");
                ui_text(2, 2, COLS - 4, 0, _("Planning…"));
                refresh();
                session_reset_request_init(&req);
                req.target = t->disk->path;
                req.entry_point = reset_entry_point_here();
                req.keep_home = t->keep_home;
                req.account.user_name = isempty(t->user.buf) ? NULL : t->user.buf;
                req.account.admin = true;
                t->erase_report[0] = 0;
                r = session_plan_reset(t->session, &req, &p);
                if (r >= 0)
                        r = hand_over_reset_secrets(t, p);
                if (r < 0) {
                        /* TRANSLATORS: %s is the engine's sentence (translated itself). */
                        snprintf(msg, sizeof(msg), _("The reset cannot be planned: %s"), session_error_message(r));
                        ui_log_line(t, "planning the reset failed: %s", session_error_message(r));
                        ui_message(t, _("Error"), msg, _("Enter: back"));
                        return UI_BACK;
                }

                ui_progress_reset(t);
                ui_progress_set_plan(p);
                ui_log_line(t, "reset plan for %s ready; asking for confirmation", p->target);
                r = session_install(t->session, NULL, on_event, t);
                ui_progress_set_plan(NULL);
                sig = session_interrupted(t->session);
                if (r == -EINTR && sig != 0 && sig != SIGINT) {
                        ui_log_line(t, "%s", session_error_message(r));
                        t->exit_code = 128 + sig;
                        t->interrupted = true;
                        snprintf(t->exit_message, sizeof(t->exit_message), "%s", session_error_message(r));
                        return UI_QUIT;
                }
                if (r == -ECANCELED && !session_wrote(t->session))
                        return UI_BACK;
                if (r < 0) {
                        t->exit_code = session_exit_code(r);
                        ui_log_line(t, "the reset failed: %s", session_error_message(r));
                        snprintf(msg, sizeof(msg),
                                 session_wrote(t->session)
                                         /* TRANSLATORS: %s is why, one sentence. */
                                         ? _("The reset failed: %s\n\nThe disk was partly reset: it does not start as it is. Start the reset again; it begins anew.")
                                         : _("The reset failed: %s\n\nNothing was written."),
                                 session_error_message(r));
                        if (ui_message(t, _("The reset failed"), msg, _("Enter: try again   Esc: back")))
                                continue;
                        return UI_BACK;
                }
                ui_log_line(t, "reset %s", p->target);
                t->exit_code = 0;
                return screen_reset_done(t, p);
        }
}

static UiNext screen_reset_done(Tui *t, const Plan *p) {
        const char *items[] = { N_("Restart the computer"), N_("Switch off the computer"), N_("Exit to a shell") };
        size_t sel = p->target_kind == DISK_BLOCK ? 0 : 2;
        const ResetTarget *rt = NULL;
        const Disk *d = NULL;

        /* The audit record on the ESP says what was done and by which method. */
        if (session_disk(t->session, p->target, &d) < 0 || session_reset_target(t->session, d, &rt) < 0)
                rt = NULL;
        t->help = reset_help;
        for (;;) {
                char line[1024];
                UiKey k;

                if (ui_frame(t, _("Reset done"), 0, _("F1 Help  Up/Down Choose  Enter Select"))) {
                        int y = 2;

                        curs_set(0);
                        /* TRANSLATORS: %s is the disk. */
                        snprintf(line, sizeof(line), _("The reset of %s is complete."), p->target);
                        y += ui_wrap(y, 2, COLS - 4, 2, ui_attr_ok(), line) + 1;
                        if (t->erase_report[0]) {
                                ui_text(y++, 2, COLS - 4, A_BOLD, _("Erased:"));
                                y += ui_wrap_hanging(y, 4, COLS - 6, 2, 6, 0, t->erase_report) + 1;
                        }
                        if (rt && rt->last_reset) {
                                /* TRANSLATORS: %s is the audit record's one-line summary. */
                                snprintf(line, sizeof(line), _("Audit record: %s"), rt->last_reset);
                                y += ui_wrap(y, 2, COLS - 4, 3, 0, line) + 1;
                        }
                        if (p->encryption.enabled)
                                y += ui_wrap(y, 2, COLS - 4, 2, 0, _("Keep the new recovery key you wrote down apart from the computer.")) + 1;
                        y++;
                        for (size_t i = 0; i < ELEMENTSOF(items) && y + (int) i < LINES - 3; i++)
                                ui_radio(t, y + (int) i, 4, 40, _(items[i]), i == sel, i == sel, false);
                        /* TRANSLATORS: %s is the log file's path. */
                        snprintf(line, sizeof(line), _("The log of this reset: %s"), t->log_path ?: "-");
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
                        ui_log_line(t, "systemctl %s", sel == 0 ? "reboot" : "poweroff");
                        r = session_power(sel == 0);
                        if (r >= 0)
                                return UI_QUIT;
                        ui_message(t, _("Error"), session_error_message(r), _("Enter: close"));
                }
        }
}
