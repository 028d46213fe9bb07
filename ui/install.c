/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* From the choices to the executor: builds the plan (build_plan(), as the command line does),
 * hands the secrets over in locked memory, and runs the executor with this front end's
 * callbacks: the summary confirms, the recovery key is handed over, progress is drawn. A failure
 * goes to the failure screen, which may retry; success to the done screen. */

#include <curses.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "error.h"
#include "interrupt.h"
#include "ui.h"

static Secret *secret_from_field(const TextField *f) {
        return secret_new_from(f->buf, strlen(f->buf));
}

UiNext screen_install(Tui *t) {
        for (;;) {
                _cleanup_(plan_freep) Plan *p = NULL;
                _cleanup_(image_freep) Image *img = NULL;
                _cleanup_(secret_freep) Secret *passphrase = NULL, *pin = NULL, *password = NULL;
                PlanOptions o;
                EncryptRequest er;
                AccountRequest ar;
                PlanSettings st;
                char msg[2048];
                UiNext n;
                int r, sig;

                ui_frame(t, _("Summary"), 6, "");
                ui_text(2, 2, COLS - 4, 0, _("Planning…"));
                refresh();
                r = ui_layout_options(t, &o);
                ui_encrypt_request(t, &er);
                ui_account_request(t, &ar);
                ui_settings(t, &st);
                if (r >= 0)
                        r = build_plan(t->disk->path, t->source, &o, &er, ar.user_name ? &ar : NULL, &st, &img, &p);
                if (r >= 0 && p->encryption.passphrase && !(passphrase = secret_from_field(&t->passphrase1)))
                        r = -ENOMEM;
                if (r >= 0 && p->encryption.tpm2_pin && !(pin = secret_from_field(&t->pin1)))
                        r = -ENOMEM;
                if (r >= 0 && p->account) {
                        password = secret_from_field(&t->password1);
                        if (!password)
                                r = -ENOMEM;
                        else {
                                r = account_password_check(p->account, password);
                                if (r == -EPERM && t->opts->allow_weak_password)
                                        r = 0;
                        }
                }
                if (r < 0) {
                        /* TRANSLATORS: %s is the engine's sentence (translated itself). */
                        snprintf(msg, sizeof(msg), _("The install cannot be planned: %s"), error_message() ?: strerror(-r));
                        ui_log_line(t, "planning failed: %s", error_message() ?: strerror(-r));
                        ui_message(t, _("Error"), msg, _("Enter: back"));
                        return UI_BACK;
                }

                ui_progress_reset(t);
                ui_progress_set_plan(p);
                ui_log_line(t, "plan for %s ready; asking for confirmation", p->target);
                /* While the executor runs, SIGTERM, SIGHUP (the terminal went away) and SIGINT stop
                 * it at a safe point instead of killing the process with the disk half written. */
                (void) interrupt_install();
                r = executor_run(p, img,
                                 &(ExecOptions) { .passphrase = passphrase, .tpm2_pin = pin, .user_password = password },
                                 &(ExecCallbacks) {
                                         .progress = ui_progress,
                                         .confirm = ui_confirm,
                                         .recovery_key = ui_recovery_key,
                                         .userdata = t,
                                 });
                ui_progress_set_plan(NULL);
                sig = interrupt_pending();
                interrupt_uninstall();
                if (r == -EINTR && sig != 0 && sig != SIGINT) {
                        /* Asked to end (shutdown, a closed terminal): say what state the disk is in,
                         * in the log and on leaving, and end. */
                        ui_log_line(t, "%s", error_message() ?: "interrupted");
                        t->exit_code = interrupt_exit_status(sig);
                        t->interrupted = true;
                        snprintf(t->exit_message, sizeof(t->exit_message), "%s", error_message() ?: "");
                        return UI_QUIT;
                }
                if (r == -ECANCELED && !t->wrote)
                        return UI_BACK;
                if (r < 0) {
                        snprintf(msg, sizeof(msg), "%s", error_message() ?: strerror(-r));
                        ui_log_line(t, "the install failed: %s", msg);
                        t->exit_code = exit_code_from_errno(r);
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
