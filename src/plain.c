/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* imprint --plain: the installer as a line-by-line dialogue, for screen readers, serial consoles
 * and terminals too small or too simple for the full-screen front end. It asks the same
 * questions and drives the same plan and executor; every answer can be typed, nothing needs
 * cursor keys. */

#include <errno.h>
#include <langinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "encrypt.h"
#include "error.h"
#include "fileio.h"
#include "i18n-frontend.h"
#include "interrupt.h"
#include "log.h"
#include "quality.h"
#include "recovery.h"
#include "run.h"
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

static int choose_disk(DiskList *l, Disk **ret) {
        char line[256], answer[64];
        size_t n_usable = 0;
        Disk *usable[64];

        printf("\n%s\n", _("Disks:"));
        for (size_t i = 0; i < l->n_disks; i++) {
                Disk *d = l->disks[i];

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

static int choose_encryption(const Disk *d, EncryptRequest *e) {
        char answer[64];
        _cleanup_(tpm2_status_done) Tpm2Status st = {};

        if (d->kind != DISK_BLOCK) {
                e->encrypt = 0;
                return 0;
        }
        if (tpm2_check(NULL, &st) > 0)
                printf("%s", _("\nThis computer has a usable TPM2: the encrypted disk unlocks by itself at boot, as long as the\n"
                               "firmware and Secure Boot settings stay the same.\n"));
        else
                /* TRANSLATORS: %s says why, e.g. "no TPM was found." */
                printf(_("\nThe TPM2 cannot be used: %s\nAn encrypted disk then asks for a passphrase or the recovery key at every boot.\n"),
                       st.problem ?: _("no TPM was found."));
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
                char *a = ask(st.problem ? _("Add a passphrase to type at boot (recommended without a TPM)? [Y/n]: ")
                                         : _("Also add a passphrase that opens the disk? [y/N]: "),
                              answer, sizeof(answer));
                if (!a)
                        return -ECANCELED;
                if (!*a) {
                        e->passphrase = st.problem != NULL;
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

        if (d->n_partitions > 0 && streq_ptr(d->pttype, "gpt")) {
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

/* A default from the running (live) system, so that Enter keeps what the medium was set up with. */
static char *live_setting(const char *file, const char *key) {
        char *v = NULL;

        if (key) {
                _cleanup_(freep) char *text = NULL;
                if (read_full_file(file, &text, NULL) >= 0)
                        v = env_file_get(text, key);
        } else {
                char buf[256];
                ssize_t n = readlink(file, buf, sizeof(buf) - 1);
                if (n > 0) {
                        const char *z;
                        buf[n] = 0;
                        z = strstr(buf, "zoneinfo/");
                        v = z ? strdup(z + strlen("zoneinfo/")) : NULL;
                }
        }
        return v;
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
        _cleanup_(freep) char *tz = live_setting("/etc/localtime", NULL), *lang = live_setting("/etc/locale.conf", "LANG"),
                              *km = live_setting("/etc/vconsole.conf", "KEYMAP"), *admin = NULL;
        const Language *chosen = &i18n_languages[i18n_current_language()];
        int r;

        /* The language chosen for the dialogue suggests the system's locale and keymap, as in the
         * full-screen installer; the live system's own settings only when they are that language. */
        if (i18n_language_find(lang) != (int) i18n_current_language()) {
                lang = mfree(lang);
                km = mfree(km);
        }

        printf("\n%s\n", _("Your account on the installed system."));
        for (;;) {
                r = ask_text(_("User name (lower case; Enter for none)"), NULL, user);
                if (r < 0)
                        return r;
                if (!**user) {
                        *user = mfree(*user);
                        break;
                }
                if (user_name_is_valid(*user))
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
                if (settings_validate(st) >= 0)
                        return 0;
                printf("%s\n", error_message());
        }
}

static int plain_confirm(const Plan *p, void *userdata) {
        char answer[256], question[256];
        char *a;

        printf("\n");
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

static int plain_recovery_key(const Plan *p, const Secret *key, void *userdata) {
        return recovery_key_dialogue(p, key, stdin, stdout);
}

static void finish(void) {
        char answer[32];

        for (;;) {
                /* TRANSLATORS: r, p and s are typed as they are (not translated); keep them in [ ]. */
                char *a = ask(_("\n[r]eboot, [p]ower off, or [s]hell? "), answer, sizeof(answer));
                char *argv[] = { (char *) "systemctl", NULL, NULL };

                if (!a)
                        return;
                if (streq(a, "s"))
                        return;
                if (streq(a, "r") || streq(a, "p")) {
                        argv[1] = (char *) (streq(a, "r") ? "reboot" : "poweroff");
                        if (run_command(argv, NULL) < 0)
                                printf("%s\n", error_message() ?: _("Failed."));
                        return;
                }
        }
}

int plain_run(const char *source_arg, const char *language) {
        _cleanup_(install_config_done) InstallConfig defaults = {};
        _cleanup_(image_freep) Image *probe = NULL;
        _cleanup_(freep) char *self = NULL;
        const char *source;
        int r;

        install_config_init(&defaults);
        r = install_config_load_defaults(&defaults);
        if (r < 0)
                return fail(r);
        source = source_arg ?: defaults.source;

        r = choose_language(language);
        if (r < 0) {
                printf("%s\n", _("Nothing was written."));
                return exit_code_from_errno(r);
        }
        printf("\n%s\n", _("Welcome to imprint."));
        if (!source) {
                printf("%s\n", _("No OS image is configured: start imprint --plain --source IMAGE."));
                return exit_code_from_errno(-EINVAL);
        }
        if (streq(source, "self")) {
                r = image_resolve_self(&self);
                if (r < 0)
                        return fail(r);
                source = self;
        }
        r = open_image(source, &probe);
        if (r < 0)
                return fail(r);
        if (probe->sha256)
                /* TRANSLATORS: "This installs Debian GNU/Linux 13 from /run/media/os.raw, checked against
                 * /run/media/os.raw.sha256." */
                printf(_("This installs %s from %s, checked against %s.\n"), probe->pretty_name ?: _("an OS image"), source,
                       probe->sha256_origin);
        else
                /* TRANSLATORS: "This installs Debian GNU/Linux 13 from /run/media/os.raw." */
                printf(_("This installs %s from %s.\n"), probe->pretty_name ?: _("an OS image"), source);
        probe = image_free(probe);

        for (;;) {
                _cleanup_(plan_freep) Plan *p = NULL;
                _cleanup_(image_freep) Image *img = NULL;
                DiskList l = {};
                Disk *d = NULL;
                _cleanup_(secret_freep) Secret *passphrase = NULL, *password = NULL;
                _cleanup_(plan_settings_done) PlanSettings st = {};
                _cleanup_(freep) char *user = NULL, *real = NULL;
                AccountRequest ar = {};
                PlanOptions o;
                EncryptRequest er;
                int code;

                r = disk_list_discover(&(DiscoverOptions) { .probe_os = true }, &l);
                if (r < 0)
                        return fail(r);
                r = choose_disk(&l, &d);
                if (r >= 0) {
                        plan_options_init(&o);
                        encrypt_request_init(&er);
                        r = choose_layout(d, &o);
                }
                if (r >= 0)
                        r = choose_encryption(d, &er);
                if (r >= 0)
                        r = choose_account(&ar, &user, &real, &st);
                if (r >= 0)
                        r = build_plan(d->path, source, &o, &er, &ar, &st, &img, &p);
                if (r >= 0 && p->encryption.passphrase)
                        r = ask_secret(_("Passphrase for the disk: "), true, &passphrase);
                if (r >= 0 && p->account) {
                        if (p->account->note)
                                printf("%s\n", p->account->note);
                        r = collect_user_password(p, false, false, &password);
                }
                disk_list_done(&l);
                if (r == -ECANCELED || r == -ENOENT) {
                        printf("%s\n", _("Nothing was written."));
                        return exit_code_from_errno(-ECANCELED);
                }
                if (r < 0) {
                        printf("\n%s\n", error_message() ?: strerror(-r));
                        continue;
                }

                (void) interrupt_install();
                r = executor_run(p, img, &(ExecOptions) { .passphrase = passphrase, .user_password = password },
                                 &(ExecCallbacks) { .progress = on_progress, .confirm = plain_confirm, .recovery_key = plain_recovery_key });
                if (r == -EINTR && interrupt_pending()) {
                        printf("\n%s\n", error_message() ?: strerror(-r));
                        return interrupt_exit_status(interrupt_pending());
                }
                if (r == -ECANCELED) {
                        printf("%s\n", _("Nothing was written."));
                        continue;
                }
                code = exit_code_from_errno(r);
                if (r < 0) {
                        /* TRANSLATORS: %s is why, one sentence. */
                        printf(_("\nThe install failed: %s\n"), error_message() ?: strerror(-r));
                        continue;
                }
                /* TRANSLATORS: "Debian GNU/Linux is installed on /dev/sda. …" */
                printf(_("\n%s is installed on %s. Remove the installation medium before you start it.\n"),
                       p->source->os_name ?: _("The system"), p->target);
                finish();
                return code;
        }
}
