/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* imprint --plain: the installer as a line-by-line dialogue, for screen readers, serial consoles
 * and terminals too small or too simple for the full-screen front end. It asks the same
 * questions and drives the same install session (session.h); every answer can be typed, nothing
 * needs cursor keys. */

#include <errno.h>
#include <langinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config-record.h"
#include "dialogue.h"
#include "fileio.h"
#include "i18n-frontend.h"
#include "plain.h"
#include "session.h"
#include "size.h"

/* Reads one answer; NULL at end of input (the dialogue then ends without writing anything). */
static char *ask(const char *question, char *buf, size_t size) {
        printf("%s", question);
        fflush(stdout);
        if (!fgets(buf, (int) size, stdin))
                return NULL;
        buf[strcspn(buf, "\r\n")] = 0;
        return strstrip(buf);
}

static void describe(const Disk *d, char *buf, size_t size) {
        char serial[128] = "";

        if (d->serial)
                /* TRANSLATORS: after a disk's model in the disk list; %s is its serial number. */
                snprintf(serial, sizeof(serial), _("  serial %s"), d->serial);
        snprintf(buf, size, "%s  %s  %s%s%s%s", d->path, FORMAT_BYTES(d->size), transport_to_string(d->transport) ?: "?",
                 d->model ? "  " : "", d->model ?: "", serial);
}

/* The language of the dialogue, and what it suggests for the installed system: the same list as
 * the full-screen installer's. Enter keeps the one preselected (--lang, imprint.language=, the
 * environment); a number, a code ("de") or a name chooses. */
static int choose_language(const char *preferred) {
        char answer[64];
        size_t k = i18n_frontend_init(preferred);

        i18n_set_language(k);
        for (;;) {
                char question[256];
                char *a;
                int i;

                printf("\n%s\n", _("Language of the installer and of the installed system:"));
                for (size_t j = 0; j < i18n_n_languages; j++)
                        printf("  %zu) %s\n", j + 1, i18n_languages[j].name);
                /* TRANSLATORS: %zu is the number of the language that Enter keeps, %s its name. */
                snprintf(question, sizeof(question), _("Which language? [number, Enter for %zu (%s)]: "), k + 1,
                         i18n_languages[k].name);
                a = ask(question, answer, sizeof(answer));
                if (!a)
                        return -ECANCELED;
                if (!*a)
                        return 0;
                i = i18n_language_find(a);
                for (size_t j = 0; i < 0 && j < i18n_n_languages; j++)
                        if (strcasecmp(a, i18n_languages[j].name) == 0)
                                i = (int) j;
                if (i < 0) {
                        char *end;
                        long n = strtol(a, &end, 10);
                        if (!*end && n >= 1 && (size_t) n <= i18n_n_languages)
                                i = (int) n - 1;
                }
                if (i >= 0) {
                        i18n_set_language((size_t) i);
                        return 0;
                }
                printf(_("Please type a number from 1 to %zu.\n"), i18n_n_languages);
        }
}

static int choose_disk(const DiskList *l, const Disk **ret) {
        char line[256], answer[64];
        size_t n_usable = 0;
        const Disk *usable[64];

        printf("\n%s\n", _("Disks:"));
        for (size_t i = 0; i < l->n_disks; i++) {
                const Disk *d = l->disks[i];

                describe(d, line, sizeof(line));
                if (disk_is_usable(d) && n_usable < ELEMENTSOF(usable)) {
                        usable[n_usable++] = d;
                        printf("  %zu) %s\n", n_usable, line);
                        for (size_t k = 0; d->installed && d->installed[k]; k++)
                                /* TRANSLATORS: under a disk in the list; %s is an installed system, e.g. "Debian GNU/Linux 12". */
                                printf(_("       holds: %s\n"), d->installed[k]);
                        if (d->n_partitions == 0)
                                printf("       %s\n", _("empty"));
                } else
                        /* TRANSLATORS: under a disk that cannot be installed to; %s says why. */
                        printf(_("  -) %s\n       cannot be used: %s\n"), line, d->refusal_text ?: "");
        }
        if (n_usable == 0) {
                printf("\n%s\n", _("No disk here can be installed to."));
                return -ENOENT;
        }
        for (;;) {
                char *a = ask(n_usable == 1 ? _("\nInstall to which disk? [1, q to quit]: ") : _("\nInstall to which disk? [number, q to quit]: "),
                              answer, sizeof(answer));
                char *end;
                long k;

                if (!a || streq(a, "q"))
                        return -ECANCELED;
                k = strtol(a, &end, 10);
                if (*a && !*end && k >= 1 && (size_t) k <= n_usable) {
                        *ret = usable[k - 1];
                        return 0;
                }
                printf(_("Please type a number from 1 to %zu.\n"), n_usable);
        }
}

static int choose_encryption(Session *s, const Disk *d, EncryptRequest *e) {
        const Tpm2Status *tpm = NULL;
        const char *problem;
        char answer[64];

        if (!session_can_encrypt(d))
                return 0; /* the engine's default: not encrypted, and the plan says why */
        problem = session_tpm(s, NULL, &tpm) > 0 ? NULL : tpm && tpm->problem ? tpm->problem : _("no TPM was found.");
        if (!problem)
                printf("%s", _("\nThis computer has a usable TPM2: the encrypted disk unlocks by itself at boot, as long as the\n"
                               "firmware and Secure Boot settings stay the same.\n"));
        else
                /* TRANSLATORS: %s says why, e.g. "no TPM was found." */
                printf(_("\nThe TPM2 cannot be used: %s\nAn encrypted disk then asks for a passphrase or the recovery key at every boot.\n"),
                       problem);
        for (;;) {
                char *a = ask(_("Encrypt root and home (recommended)? [Y/n]: "), answer, sizeof(answer));
                if (!a)
                        return -ECANCELED;
                if (!*a || i18n_answer_is_yes(a)) {
                        e->encrypt = 1;
                        break;
                }
                if (i18n_answer_is_no(a)) {
                        e->encrypt = 0;
                        return 0;
                }
                printf("%s\n", _("Please type y or n."));
        }
        for (;;) {
                char *a = ask(problem ? _("Add a passphrase to type at boot (recommended without a TPM)? [Y/n]: ")
                                         : _("Also add a passphrase that opens the disk? [y/N]: "),
                              answer, sizeof(answer));
                if (!a)
                        return -ECANCELED;
                if (!*a) {
                        e->passphrase = problem != NULL;
                        return 0;
                }
                if (i18n_answer_is_yes(a) || i18n_answer_is_no(a)) {
                        e->passphrase = i18n_answer_is_yes(a);
                        return 0;
                }
                printf("%s\n", _("Please type y or n."));
        }
}

static int choose_layout(const Disk *d, PlanOptions *o) {
        char answer[64];

        if (session_can_keep_partitions(d)) {
                for (;;) {
                        char *a = ask(_("\nErase the whole disk (e), or keep its partitions and use free space (f)? [e]: "), answer,
                                      sizeof(answer));
                        if (!a)
                                return -ECANCELED;
                        if (!*a || streq(a, "e")) {
                                o->mode = PLAN_ERASE;
                                break;
                        }
                        if (streq(a, "f")) {
                                o->mode = PLAN_FREE;
                                break;
                        }
                        printf("%s\n", _("Please type e or f."));
                }
        }
        for (;;) {
                /* TRANSLATORS: "rest" is typed as it is (not translated). */
                char *a = ask(_("A separate home partition? Type a size (e.g. 50G), \"rest\", or press Enter for none: "), answer,
                              sizeof(answer));
                if (!a)
                        return -ECANCELED;
                if (!*a) {
                        o->home = (SizeRequest) { SIZE_NONE, 0 };
                        return 0;
                }
                if (size_request_parse(a, &o->home) >= 0)
                        return 0;
                printf(_("\"%s\" is not a size.\n"), a);
        }
}

static int ask_text(const char *question, const char *def, char **ret) {
        char q[256], answer[256];
        char *a;

        if (def)
                /* TRANSLATORS: a question (%s) and, in [ ], the answer that Enter takes. */
                snprintf(q, sizeof(q), _("%s [%s]: "), question, def);
        else
                /* TRANSLATORS: a question (%s) that is answered on the same line. */
                snprintf(q, sizeof(q), _("%s: "), question);
        a = ask(q, answer, sizeof(answer));
        if (!a)
                return -ECANCELED;
        free(*ret);
        *ret = strdup(*a ? a : def ?: "");
        return *ret ? 0 : -ENOMEM;
}

static int choose_account(AccountRequest *ar, char **user, char **real, PlanSettings *st) {
        _cleanup_(plan_settings_done) PlanSettings live = {};
        _cleanup_(freep) char *admin = NULL;
        const Language *chosen = &i18n_languages[i18n_current_language()];
        const char *tz, *lang, *km;
        int r;

        (void) session_live_settings(&live);
        tz = live.timezone;
        lang = live.locale;
        km = live.keymap;

        /* The language chosen for the dialogue suggests the system's locale and keymap, as in the
         * full-screen installer; the live system's own settings only when they are that language. */
        if (i18n_language_find(lang) != (int) i18n_current_language())
                lang = km = NULL;

        printf("\n%s\n", _("Your account on the installed system."));
        for (;;) {
                r = ask_text(_("User name (lower case; Enter for none)"), NULL, user);
                if (r < 0)
                        return r;
                if (!**user) {
                        *user = mfree(*user);
                        break;
                }
                if (session_user_name_is_valid(*user))
                        break;
                printf(_("\"%s\" cannot be a user name: lower-case letters, digits, _ and -, starting with a letter.\n"), *user);
        }
        if (*user) {
                r = ask_text(_("Your full name"), NULL, real);
                if (r < 0)
                        return r;
                if (!**real)
                        *real = mfree(*real);
                /* TRANSLATORS: the suggested answer, in [ ], is the translation of "y" (the letter for yes). */
                r = ask_text(_("May this account administer the system (sudo)? y/n"), _("y"), &admin);
                if (r < 0)
                        return r;
                ar->user_name = *user;
                ar->real_name = *real;
                ar->admin = i18n_answer_is_yes(admin);
        }
        printf("\n%s\n", _("Settings of the installed system (Enter takes the suggestion, \"-\" keeps what the image has):"));
        for (;;) {
                r = ask_text(_("Computer name"), "imprint", &st->hostname);
                if (r < 0)
                        return r;
                r = ask_text(_("Time zone"), tz ?: "UTC", &st->timezone);
                if (r < 0)
                        return r;
                r = ask_text(_("Language (locale)"), lang ?: chosen->locale, &st->locale);
                if (r < 0)
                        return r;
                r = ask_text(_("Keyboard layout (keymap)"), km ?: chosen->keymap, &st->keymap);
                if (r < 0)
                        return r;
                if (streq_ptr(st->hostname, "-"))
                        st->hostname = mfree(st->hostname);
                if (streq_ptr(st->timezone, "-"))
                        st->timezone = mfree(st->timezone);
                if (streq_ptr(st->locale, "-"))
                        st->locale = mfree(st->locale);
                if (streq_ptr(st->keymap, "-"))
                        st->keymap = mfree(st->keymap);
                r = session_check_settings(st);
                if (r >= 0)
                        return 0;
                printf("%s\n", session_error_message(r));
        }
}

static int plain_confirm(const Plan *p) {
        char answer[256], question[256];
        char *a;

        printf("\n");
        if (p->mode == PLAN_RESET) {
                reset_plan_print(p, stdout);
                snprintf(question, sizeof(question),
                         p->reset && p->reset->keep_home
                                 /* TRANSLATORS: the first %s is the disk (/dev/sda), the second its name (sda), typed to confirm. */
                                 ? _("\nThis ERASES the system on %s for good; home is kept. Type \"%s\" to reset, anything else goes back: ")
                                 /* TRANSLATORS: the first %s is the disk (/dev/sda), the second its name (sda), typed to confirm. */
                                 : _("\nThis ERASES the system and every user's files on %s for good. Type \"%s\" to reset, anything else goes back: "),
                         p->target, p->target_name);
                a = ask(question, answer, sizeof(answer));
                return a && streq(a, p->target_name);
        }
        plan_print_table(p, stdout);
        if (p->mode == PLAN_ERASE)
                /* TRANSLATORS: the first %s is the disk (/dev/sda), the second its name (sda), typed to confirm. */
                snprintf(question, sizeof(question), _("\nThis writes to %s and DESTROYS everything on it. Type \"%s\" to install, anything else goes back: "),
                         p->target, p->target_name);
        else
                /* TRANSLATORS: the first %s is the disk (/dev/sda), the second its name (sda), typed to confirm. */
                snprintf(question, sizeof(question), _("\nThis writes to %s. Type \"%s\" to install, anything else goes back: "), p->target,
                         p->target_name);
        a = ask(question, answer, sizeof(answer));
        return a && streq(a, p->target_name);
}

/* What a reset's erase steps said they did, for the result. */
static char erase_report[2048];

/* The install's events, line by line: progress, the confirmation, the recovery key. */
static int on_event(const SessionEvent *ev, void *userdata) {
        switch (ev->type) {
        case SESSION_EVENT_PROGRESS:
                if (ev->progress->type == PROGRESS_END && strncmp(ev->progress->id, "erase-", 6) == 0 && ev->progress->message) {
                        size_t len = strlen(erase_report);
                        snprintf(erase_report + len, sizeof(erase_report) - len, "  %s: %s\n", ev->progress->id + 6,
                                 ev->progress->message);
                }
                progress_print_text(ev->progress);
                return 0;
        case SESSION_EVENT_CONFIRM:
                return plain_confirm(ev->plan);
        case SESSION_EVENT_RECOVERY_KEY:
                return recovery_key_dialogue(ev->plan, ev->recovery_key, stdin, stdout);
        default:
                return 0;
        }
}

/* After the plan (r: how planning and the questions before it went): the account's password,
 * then the run itself, reporting through on_event. Returns 1 when it succeeded, 0 to ask again
 * (nothing was written, or it failed and the reason was shown), -1 to end with *ret_exit. */
static int run_current_plan(Session *s, const Plan *p, int r, bool reset, int *ret_exit) {
        if (r >= 0 && p->account) {
                if (p->account->note)
                        printf("%s\n", p->account->note);
                r = session_secret_from_credential(s, SESSION_SECRET_USER_PASSWORD, false);
                if (r == -ENOENT)
                        r = ask_user_password(s, false);
        }
        if (r == -ECANCELED || r == -ENOENT) {
                printf("%s\n", _("Nothing was written."));
                *ret_exit = session_exit_code(-ECANCELED);
                return -1;
        }
        if (r < 0) {
                printf("\n%s\n", session_error_message(r));
                return 0;
        }

        r = session_install(s, NULL, on_event, NULL);
        if (r == -EINTR && session_interrupted(s)) {
                printf("\n%s\n", session_error_message(r));
                *ret_exit = 128 + session_interrupted(s);
                return -1;
        }
        if (r == -ECANCELED) {
                printf("%s\n", _("Nothing was written."));
                return 0;
        }
        if (r < 0) {
                if (reset)
                        /* TRANSLATORS: %s is why, one sentence. */
                        printf(_("\nThe reset failed: %s\n"), session_error_message(r));
                else
                        /* TRANSLATORS: %s is why, one sentence. */
                        printf(_("\nThe install failed: %s\n"), session_error_message(r));
                return 0;
        }
        return 1;
}

static void finish(void) {
        char answer[32];

        for (;;) {
                /* TRANSLATORS: r, p and s are typed as they are (not translated); keep them in [ ]. */
                char *a = ask(_("\n[r]eboot, [p]ower off, or [s]hell? "), answer, sizeof(answer));
                int r;

                if (!a)
                        return;
                if (streq(a, "s"))
                        return;
                if (streq(a, "r") || streq(a, "p")) {
                        r = session_power(streq(a, "r"));
                        if (r < 0)
                                printf("%s\n", session_error_message(r));
                        return;
                }
        }
}

/* ---- factory reset --------------------------------------------------------------------------- */

/* The disks a reset could be for: the ones imprint installed numbered, the others with the reason. */
static int choose_reset_disk(Session *s, const Disk **ret, const ResetTarget **ret_target) {
        const DiskList *l = session_disks(s);
        const Disk *usable[64];
        const ResetTarget *targets[64];
        size_t n_usable = 0;
        char line[256], about[1024], answer[64];

        printf("\n%s\n", _("Disks:"));
        for (size_t i = 0; i < l->n_disks; i++) {
                const Disk *d = l->disks[i];
                const ResetTarget *t = NULL;
                int r;

                describe(d, line, sizeof(line));
                r = session_reset_target(s, d, &t);
                if (r < 0) {
                        /* TRANSLATORS: under a disk that cannot be reset; %s says why. */
                        printf(_("  -) %s\n       cannot be reset: %s\n"), line, session_error_message(r));
                        continue;
                }
                reset_target_describe(t, about, sizeof(about));
                if (r > 0 && n_usable < ELEMENTSOF(usable)) {
                        usable[n_usable] = d;
                        targets[n_usable++] = t;
                        printf("  %zu) %s\n", n_usable, line);
                } else
                        printf("  -) %s\n", line);
                for (char *p = about, *e; p && *p; p = e ? e + 1 : NULL) {
                        e = strchr(p, '\n');
                        printf("       %.*s\n", e ? (int) (e - p) : (int) strlen(p), p);
                }
        }
        if (n_usable == 0) {
                printf("\n%s\n", _("No disk here was installed by imprint, so none can be reset."));
                return -ENOENT;
        }
        for (;;) {
                char *a = ask(n_usable == 1 ? _("\nReset which disk? [1, q to quit]: ") : _("\nReset which disk? [number, q to quit]: "),
                              answer, sizeof(answer));
                char *end;
                long k;

                if (!a || streq(a, "q"))
                        return -ECANCELED;
                k = strtol(a, &end, 10);
                if (*a && !*end && k >= 1 && (size_t) k <= n_usable) {
                        *ret = usable[k - 1];
                        *ret_target = targets[k - 1];
                        return 0;
                }
                printf(_("Please type a number from 1 to %zu.\n"), n_usable);
        }
}

static int ask_yes_no(const char *question, bool def, bool *ret) {
        char answer[64];

        for (;;) {
                char *a = ask(question, answer, sizeof(answer));
                if (!a)
                        return -ECANCELED;
                if (!*a) {
                        *ret = def;
                        return 0;
                }
                if (i18n_answer_is_yes(a) || i18n_answer_is_no(a)) {
                        *ret = i18n_answer_is_yes(a);
                        return 0;
                }
                printf("%s\n", _("Please type y or n."));
        }
}

/* The account after a reset: made now, or left to the system's first start. */
static int choose_reset_account(AccountRequest *ar, char **user, char **real) {
        _cleanup_(freep) char *admin = NULL;
        int r;

        for (;;) {
                r = ask_text(_("User name for a new account (lower case; Enter: the system asks at its first start)"), NULL, user);
                if (r < 0)
                        return r;
                if (!**user) {
                        *user = mfree(*user);
                        return 0;
                }
                if (session_user_name_is_valid(*user))
                        break;
                printf(_("\"%s\" cannot be a user name: lower-case letters, digits, _ and -, starting with a letter.\n"), *user);
        }
        r = ask_text(_("Your full name"), NULL, real);
        if (r < 0)
                return r;
        if (!**real)
                *real = mfree(*real);
        r = ask_text(_("May this account administer the system (sudo)? y/n"), _("y"), &admin);
        if (r < 0)
                return r;
        ar->user_name = *user;
        ar->real_name = *real;
        ar->admin = i18n_answer_is_yes(admin);
        return 0;
}

static void print_reset_result(Session *s, const Plan *p) {
        const ResetTarget *t = NULL;
        const Disk *d = NULL;

        /* TRANSLATORS: %s is the disk. */
        printf(_("\nThe reset of %s is complete.\n"), p->target);
        if (erase_report[0])
                printf("%s\n%s", _("Erased:"), erase_report);
        /* The audit record on the ESP says what was done, and by which method. */
        if (session_disk(s, p->target, &d) >= 0 && session_reset_target(s, d, &t) >= 0 && t->last_reset)
                /* TRANSLATORS: %s is the audit record's one-line summary. */
                printf(_("Audit record: %s\n"), t->last_reset);
}

/* "Reset an installed system": which disk, keep home?, the account, then the session's reset
 * with the same events as an install (the plan and the typed name, the new recovery key). */
static int reset_dialogue(Session *s) {
        _cleanup_(freep) char *request = NULL;
        ResetEntryPoint entry_point = reset_entry_point_here();
        int r;

        printf("\n%s\n", _("A reset erases the system, and unless you keep it, every user's files; the ESP, the system image "
                           "slots and vendor partitions are kept. It makes new keys and a new recovery key."));
        if (reset_request_here(&request) > 0)
                /* TRANSLATORS: %s describes the firmware's reset request. */
                printf(_("The installed system asked for this reset: %s\n"), request);

        for (;;) {
                _cleanup_(freep) char *user = NULL, *real = NULL;
                const ResetTarget *t = NULL;
                const Disk *d = NULL;
                const Plan *p = NULL;
                SessionResetRequest req;

                session_reset_request_init(&req);
                req.entry_point = entry_point;
                erase_report[0] = 0;
                r = session_discover(s, true);
                if (r >= 0)
                        r = choose_reset_disk(s, &d, &t);
                if (r >= 0 && t->has_home)
                        r = ask_yes_no(_("Keep home (the users' files) and erase only the system? [y/N]: "), false, &req.keep_home);
                if (r >= 0)
                        r = choose_reset_account(&req.account, &user, &real);
                if (r >= 0) {
                        req.target = d->path;
                        r = session_plan_reset(s, &req, &p);
                }
                if (r >= 0 && p->reset->keep_home && p->encryption.enabled) {
                        r = session_secret_from_credential(s, SESSION_SECRET_OLD_RECOVERY_KEY, false);
                        if (r == -ENOENT)
                                r = ask_old_recovery_key(s);
                }
                {
                        int exit_code = 0, k = run_current_plan(s, p, r, true, &exit_code);

                        if (k < 0)
                                return exit_code;
                        if (k == 0)
                                continue;
                }
                print_reset_result(s, p);
                finish();
                return 0;
        }
}

/* The live medium's first question: install, or reset a system imprint installed. */
static int choose_task(bool *ret_reset) {
        char answer[64];

        printf("\n%s\n", _("What do you want to do?"));
        printf("  1) %s\n", _("Install an operating system"));
        printf("  2) %s\n", _("Reset an installed system: erase it and make it new"));
        for (;;) {
                char *a = ask(_("Which? [1, 2; Enter for 1]: "), answer, sizeof(answer));
                if (!a)
                        return -ECANCELED;
                if (!*a || streq(a, "1")) {
                        *ret_reset = false;
                        return 0;
                }
                if (streq(a, "2")) {
                        *ret_reset = true;
                        return 0;
                }
                printf(_("Please type a number from 1 to %zu.\n"), (size_t) 2);
        }
}

/* --record FILE: the configuration that repeats the install just done, and what a replay needs. */
static void record_install(const Plan *p, const Disk *d, const PlanOptions *layout, const char *source_arg, const char *path) {
        _cleanup_(freep) char *note = NULL;
        int r;

        r = config_record_write(p, d, layout, source_arg, path);
        if (r < 0) {
                /* TRANSLATORS: %s is why, one sentence. */
                printf(_("\nThe install is complete, but it was not recorded: %s\n"), session_error_message(r));
                return;
        }
        note = config_record_note(p, path);
        if (note)
                printf("\n%s\n", note);
}

int plain_run(const char *source_arg, const char *language, bool reset) {
        return plain_run_record(source_arg, language, reset, NULL);
}

int plain_run_record(const char *source_arg, const char *language, bool reset, const char *record_path) {
        _cleanup_(session_freep) Session *s = NULL;
        int r;

        r = choose_language(language);
        if (r < 0) {
                printf("%s\n", _("Nothing was written."));
                return session_exit_code(r);
        }
        printf("\n%s\n", _("Welcome to imprint."));
        if (!reset) {
                r = choose_task(&reset);
                if (r < 0) {
                        printf("%s\n", _("Nothing was written."));
                        return session_exit_code(r);
                }
        }
        r = session_new(&s);
        if (r >= 0 && reset) {
                /* The medium's image is needed only to reset a classic image; the plan says so then. */
                int k = session_set_source(s, source_arg);

                if (k < 0 && source_arg) {
                        printf("%s\n", session_error_message(k));
                        return session_exit_code(k);
                }
                if (record_path)
                        /* TRANSLATORS: %s is the file given with --record. */
                        printf(_("A reset is not recorded: %s will not be written.\n"), record_path);
                return reset_dialogue(s);
        }
        if (r >= 0)
                r = session_set_source(s, source_arg);
        if (r >= 0)
                r = session_open_source(s);
        if (r < 0) {
                printf("%s\n", session_error_message(r));
                return session_exit_code(r);
        }
        if (session_image(s)->sha256)
                /* TRANSLATORS: "This installs Debian GNU/Linux 13 from /run/media/os.raw, checked against
                 * /run/media/os.raw.sha256." */
                printf(_("This installs %s from %s, checked against %s.\n"), session_source_name(s) ?: _("an OS image"),
                       session_source_path(s), session_image(s)->sha256_origin);
        else
                /* TRANSLATORS: "This installs Debian GNU/Linux 13 from /run/media/os.raw." */
                printf(_("This installs %s from %s.\n"), session_source_name(s) ?: _("an OS image"), session_source_path(s));

        for (;;) {
                _cleanup_(plan_settings_done) PlanSettings st = {};
                _cleanup_(freep) char *user = NULL, *real = NULL;
                const Disk *d = NULL;
                const Plan *p = NULL;
                AccountRequest ar = {};
                SessionRequest req;

                session_request_init(&req);
                r = session_discover(s, true);
                if (r >= 0)
                        r = choose_disk(session_disks(s), &d);
                if (r >= 0)
                        r = choose_layout(d, &req.layout);
                if (r >= 0)
                        r = choose_encryption(s, d, &req.encrypt);
                if (r >= 0)
                        r = choose_account(&ar, &user, &real, &st);
                if (r >= 0) {
                        req.target = d->path;
                        req.with_image = true;
                        req.account = ar;
                        req.settings = st;
                        r = session_plan(s, &req, &p);
                }
                if (r >= 0 && session_needs_secret(s, SESSION_SECRET_PASSPHRASE)) {
                        Secret *v = NULL;

                        r = ask_secret(_("Passphrase for the disk: "), true, &v);
                        if (r >= 0)
                                r = session_set_secret(s, SESSION_SECRET_PASSPHRASE, v, false);
                }
                {
                        int exit_code = 0, k = run_current_plan(s, p, r, false, &exit_code);

                        if (k < 0)
                                return exit_code;
                        if (k == 0)
                                continue;
                }
                /* TRANSLATORS: "Debian GNU/Linux is installed on /dev/sda. …" */
                printf(_("\n%s is installed on %s. Remove the installation medium before you start it.\n"),
                       p->source->os_name ?: _("The system"), p->target);
                if (record_path)
                        record_install(p, d, &req.layout, source_arg, record_path);
                finish();
                return 0;
        }
}
