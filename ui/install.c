/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* From the choices to the install: the session plans the request (as for the command line), takes
 * the secrets, and installs, its events drawn by this front end: the summary confirms, the
 * recovery key is handed over, progress is drawn. A failure
 * goes to the failure screen, which may retry; success to the done screen. */

#include <curses.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

static Secret *secret_from_field(const TextField *f) {
        return secret_new_from(f->buf, strlen(f->buf));
}

/* The install's events, drawn: progress, the summary that confirms, the recovery key. */
static int on_event(const SessionEvent *ev, void *userdata) {
        Tui *t = userdata;

        switch (ev->type) {
        case SESSION_EVENT_PROGRESS:
                ui_progress(t, ev->progress);
                return 0;
        case SESSION_EVENT_CONFIRM:
                return ui_confirm(t, ev->plan);
        case SESSION_EVENT_RECOVERY_KEY:
                return ui_recovery_key(t, ev->plan, ev->recovery_key);
        default:
                return 0;
        }
}

/* The secrets typed on the encryption and account screens, for the plan that needs them. */
static int hand_over_secrets(Tui *t) {
        static const SessionSecret which[] = { SESSION_SECRET_PASSPHRASE, SESSION_SECRET_TPM2_PIN, SESSION_SECRET_USER_PASSWORD };
        const TextField *fields[] = { &t->passphrase1, &t->pin1, &t->password1 };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(which); i++) {
                Secret *v;

                if (!session_needs_secret(t->session, which[i]))
                        continue;
                v = secret_from_field(fields[i]);
                if (!v)
                        return -ENOMEM;
                r = session_set_secret(t->session, which[i], v,
                                       which[i] == SESSION_SECRET_USER_PASSWORD && t->opts->allow_weak_password);
                if (r < 0)
                        return r;
        }
        return 0;
}

UiNext screen_install(Tui *t) {
        for (;;) {
                SessionRequest req;
                const Plan *p = NULL;
                char msg[2048];
                UiNext n;
                int r, sig;

                ui_frame(t, _("Summary"), 6, "");
                ui_text(2, 2, COLS - 4, 0, _("Planning…"));
                refresh();
                r = ui_request(t, &req);
                if (r >= 0)
                        r = session_plan(t->session, &req, &p);
                if (r >= 0)
                        r = hand_over_secrets(t);
                if (r < 0) {
                        /* TRANSLATORS: %s is the engine's sentence (translated itself). */
                        snprintf(msg, sizeof(msg), _("The install cannot be planned: %s"), session_error_message(r));
                        ui_log_line(t, "planning failed: %s", session_error_message(r));
                        ui_message(t, _("Error"), msg, _("Enter: back"));
                        return UI_BACK;
                }

                ui_progress_reset(t);
                ui_progress_set_plan(p);
                ui_log_line(t, "plan for %s ready; asking for confirmation", p->target);
                /* SIGTERM, SIGHUP (the terminal went away) and SIGINT stop the install at a safe
                 * point instead of killing the process with the disk half written. */
                r = session_install(t->session, NULL, on_event, t);
                ui_progress_set_plan(NULL);
                sig = session_interrupted(t->session);
                if (r == -EINTR && sig != 0 && sig != SIGINT) {
                        /* Asked to end (shutdown, a closed terminal): say what state the disk is in,
                         * in the log and on leaving, and end. */
                        ui_log_line(t, "%s", session_error_message(r));
                        t->exit_code = 128 + sig; /* as for the command line: imprint(1), EXIT STATUS */
                        t->interrupted = true;
                        snprintf(t->exit_message, sizeof(t->exit_message), "%s", session_error_message(r));
                        return UI_QUIT;
                }
                if (r == -ECANCELED && !session_wrote(t->session))
                        return UI_BACK;
                if (r < 0) {
                        snprintf(msg, sizeof(msg), "%s", session_error_message(r));
                        ui_log_line(t, "the install failed: %s", msg);
                        t->exit_code = session_exit_code(r);
                        n = screen_failure(t, p, msg);
                        if (n == UI_NEXT)
                                continue;
                        return n;
                }
                ui_log_line(t, "installed on %s", p->target);
                t->exit_code = 0;
                return screen_done(t, p);
        }
}
