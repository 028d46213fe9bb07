/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The full-screen installer's main loop: sets up the terminal, the language and the log, then
 * walks the screens welcome → disk → layout → encryption → user → summary (→ recovery key) →
 * progress → done, Esc going back one screen. What the person chooses becomes the same request
 * the command line builds (SessionRequest), the session plans it and installs, and this front
 * end draws the install's events. */

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "plain.h"
#include "error.h"
#include "log.h"
#include "terminal.h"
#include "ui.h"

/* Console keymaps as kbd names them (localectl list-keymaps). */
const char *const ui_keymaps[] = {
        "us", "uk", "de", "de-latin1-nodeadkeys", "fr", "fr-latin9", "ch", "fr_CH", "be-latin1", "es", "it", "nl", "pt-latin1",
        "se-latin1", "no", "dk", "fi", "pl", "cz", "hu", "us-acentos", "dvorak",
};
const size_t ui_n_keymaps = ELEMENTSOF(ui_keymaps);

void ui_set_language(Tui *t, size_t i) {
        t->language = i;
        i18n_set_language(i);
}

static void i18n_init(Tui *t) {
        t->language = i18n_frontend_init(t->opts->language);
        if (!streq_ptr(nl_langinfo(CODESET), "UTF-8") && !getenv("IMPRINT_ASCII"))
                setlocale(LC_CTYPE, "C.UTF-8");
        t->utf8 = streq_ptr(nl_langinfo(CODESET), "UTF-8");
        ui_set_language(t, t->language);
        for (size_t i = 0; i < ui_n_keymaps; i++)
                if (streq(ui_keymaps[i], i18n_languages[t->language].keymap))
                        t->keymap = i;
}

/* ---- the log: a file for after the fact, a ring buffer for the live-log view ----------------- */

void ui_log_line(Tui *t, const char *fmt, ...) {
        char line[1024], stamp[32];
        struct timespec ts;
        struct tm tm;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
        if (t->log) {
                fprintf(t->log, "%s %s\n", stamp, line);
                fflush(t->log);
        }
        free(t->log_lines[t->n_log % UI_LOG_LINES]);
        t->log_lines[t->n_log % UI_LOG_LINES] = strdup(line);
        t->n_log++;
}

static void log_sink(int level, const char *line, void *userdata) {
        Tui *t = userdata;

        if (level > LOG_INFO)
                return;
        ui_log_line(t, "%s", line);
}

/* The log: --log FILE if given (and nothing else), else /var/log/imprint.log; when another
 * installer writes that one (the live medium runs one on the screen and one on the serial port)
 * /var/log/imprint-PID.log, and on a read-only /var a file in /tmp. */
/* "Exit to a shell" on a terminal that imprint --console owns: root's login shell takes imprint's
 * place; when it ends, the service starts the installer again. */
static void exec_login_shell(void) {
        const struct passwd *pw = getpwuid(getuid());
        const char *shell = pw && !isempty(pw->pw_shell) ? pw->pw_shell : "/bin/sh";
        const char *base = strrchr(shell, '/') ? strrchr(shell, '/') + 1 : shell;
        char argv0[64];

        snprintf(argv0, sizeof(argv0), "-%s", base);
        printf("%s\n", _("A shell. Type \"exit\" to go back to the installer."));
        fflush(stdout);
        /* A service has no login environment: set what login(1) would. */
        if (pw) {
                (void) setenv("HOME", pw->pw_dir, 1);
                (void) setenv("USER", pw->pw_name, 1);
                (void) setenv("LOGNAME", pw->pw_name, 1);
        }
        (void) setenv("SHELL", shell, 1);
        if (!pw || chdir(pw->pw_dir) < 0)
                (void) !chdir("/");
        execl(shell, argv0, (char *) NULL);
        fprintf(stderr, "imprint: %s: %m\n", shell);
}

static int log_open(Tui *t) {
        char own[64], tmp[64];
        const char *candidates[3];
        size_t n = 0;
        int fd;

        snprintf(own, sizeof(own), "/var/log/imprint-%d.log", (int) getpid());
        snprintf(tmp, sizeof(tmp), "/tmp/imprint-%d.log", (int) getpid());
        if (t->opts->log_path)
                candidates[n++] = t->opts->log_path;
        else {
                candidates[n++] = "/var/log/imprint.log";
                candidates[n++] = own;
                candidates[n++] = tmp;
        }
        for (size_t i = 0; i < n; i++) {
                const char *p = candidates[i];

                fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
                if (fd < 0)
                        continue;
                /* Held while this installer runs: the shared name is one installer's log. */
                if (!t->opts->log_path && i == 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
                        close(fd);
                        continue;
                }
                t->log = fdopen(fd, "a");
                if (!t->log) {
                        close(fd);
                        continue;
                }
                t->log_path = realpath(p, NULL) ?: strdup(p);
                return 0;
        }
        return error_setf(-EACCES, "Cannot open a log file (%s).", t->opts->log_path ?: "/var/log/imprint.log");
}

/* ---- choices → engine requests ------------------------------------------------------------------ */

static int parse_size_field(const char *what, const TextField *f, bool allow_none, SizeRequest *ret) {
        const char *s = f->buf;

        if (isempty(s) || streq(s, "auto")) {
                *ret = (SizeRequest) { SIZE_NONE, 0 };
                return 0;
        }
        if (size_request_parse(s, ret) < 0 || (!allow_none && ret->kind == SIZE_NONE))
                /* TRANSLATORS: first %s is a field ("Root size"), second what was typed there. */
                return error_setf(-EINVAL, _("%s: \"%s\" is not a size (examples: 20G, 512M, rest%s)."), what, s,
                                  allow_none ? _(", none") : "");
        return 0;
}

int ui_layout_options(Tui *t, PlanOptions *o) {
        int r;

        plan_options_init(o);
        o->mode = t->mode;
        o->seed = t->opts->seed;
        r = parse_size_field(_("Root size"), &t->root_size, false, &o->root);
        if (r >= 0)
                r = parse_size_field(_("Home size"), &t->home_size, true, &o->home);
        if (r >= 0)
                r = parse_size_field(_("Swap size"), &t->swap_size, true, &o->swap);
        return r;
}

void ui_encrypt_request(Tui *t, EncryptRequest *e) {
        encrypt_request_init(e);
        if (t->disk && !session_can_encrypt(t->disk)) {
                e->encrypt = -1; /* the engine's default: not encrypted, and the plan says why */
                return;
        }
        e->encrypt = t->encrypt;
        if (!t->encrypt)
                return;
        e->tpm2 = TPM2_USE_AUTO;
        e->tpm2_pin = t->tpm_usable > 0 && t->tpm_pin;
        e->passphrase = t->passphrase;
}

void ui_account_request(Tui *t, AccountRequest *a) {
        *a = (AccountRequest) {
                .user_name = isempty(t->user.buf) ? NULL : t->user.buf,
                .real_name = isempty(t->real_name.buf) ? NULL : t->real_name.buf,
                .storage = t->storage,
                .admin = t->admin,
        };
}

void ui_settings(Tui *t, PlanSettings *s) {
        *s = (PlanSettings) {
                .hostname = isempty(t->hostname.buf) ? NULL : t->hostname.buf,
                .timezone = isempty(t->timezone.buf) ? NULL : t->timezone.buf,
                .locale = (char *) i18n_languages[t->language].locale,
                .keymap = (char *) ui_keymaps[t->keymap],
        };
}

int ui_request(Tui *t, SessionRequest *r) {
        int k;

        session_request_init(r);
        r->target = t->disk->path;
        r->with_image = true;
        k = ui_layout_options(t, &r->layout);
        if (k < 0)
                return k;
        ui_encrypt_request(t, &r->encrypt);
        ui_account_request(t, &r->account);
        ui_settings(t, &r->settings);
        return 0;
}

/* ---- text lines --------------------------------------------------------------------------------- */

char **ui_split_lines(const char *text, size_t *ret_n) {
        char **l = NULL;
        size_t n = 0;
        const char *p = text;

        while (p && *p) {
                const char *e = strchrnul(p, '\n');
                char **nl = realloc(l, (n + 1) * sizeof(char *));
                if (!nl)
                        break;
                l = nl;
                l[n] = strndup(p, (size_t) (e - p));
                if (!l[n])
                        break;
                n++;
                p = *e ? e + 1 : e;
        }
        *ret_n = n;
        return l;
}

void ui_free_lines(char **l, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(l[i]);
        free(l);
}

const char *ui_pad(char *buf, size_t size, const char *s, int width, bool right) {
        int pad = MAX(width - ui_width(s), 0);

        snprintf(buf, size, "%*s%s%*s", right ? pad : 0, "", s, right ? 0 : pad, "");
        return buf;
}

void ui_lines(Tui *t, int y0, int y1, int x, int width, char **lines, size_t n, size_t first) {
        for (int y = y0; y < y1 && first < n; y++, first++)
                ui_text(y, x, width, 0, lines[first]);
}

/* ---- main loop ---------------------------------------------------------------------------------- */

static bool ask_quit(Tui *t) {
        return ui_message(t, _("Quit"),
                          session_wrote(t->session) ? _("Quit the installer? The install that failed had begun to write: that disk does not "
                                       "start a system.")
                                   : _("Quit the installer? Nothing has been written to any disk."),
                          _("Enter: quit   Esc: stay"));
}

static void tui_done(Tui *t) {
        t->disk = NULL;
        t->session = session_free(t->session);
        ui_field_wipe(&t->password1);
        ui_field_wipe(&t->password2);
        ui_field_wipe(&t->passphrase1);
        ui_field_wipe(&t->passphrase2);
        ui_field_wipe(&t->pin1);
        ui_field_wipe(&t->pin2);
        ui_field_wipe(&t->old_key);
        for (size_t i = 0; i < UI_LOG_LINES; i++)
                free(t->log_lines[i]);
        free(t->log_path);
        if (t->log)
                fclose(t->log);
}

int tui_run(const TuiOptions *o) {
        static UiNext (*const install_screens[])(Tui *t) = {
                screen_welcome, screen_disk, screen_layout, screen_encryption, screen_user, screen_install,
        };
        /* "Reset an installed system" (welcome screen, or TuiOptions.reset: the recovery entry). */
        static UiNext (*const reset_screens[])(Tui *t) = {
                screen_welcome, screen_reset_disk, screen_reset_options, screen_reset_run,
        };
        Tui t = {
                .opts = o,
                .mode = PLAN_ERASE,
                .encrypt = true,
                .admin = true,
                .storage = ACCOUNT_STORAGE_LUKS,
                .reset = o->reset,
        };
        SCREEN *scr;
        size_t state = 0;
        bool shell;
        int r, code = 0, saved_stderr;

        /* The passwords, passphrase and PIN are typed into fields of t: keep it out of swap. */
        (void) mlock(&t, sizeof(t));
        i18n_init(&t);
        t.mono = o->mono || getenv("NO_COLOR");
        t.password1.masked = t.password2.masked = t.passphrase1.masked = t.passphrase2.masked = t.pin1.masked =
                t.pin2.masked = t.old_key.masked = true;
        snprintf(t.root_size.buf, sizeof(t.root_size.buf), "auto");
        snprintf(t.home_size.buf, sizeof(t.home_size.buf), "none");
        snprintf(t.swap_size.buf, sizeof(t.swap_size.buf), "none");
        snprintf(t.hostname.buf, sizeof(t.hostname.buf), "imprint");
        {
                _cleanup_(plan_settings_done) PlanSettings live = {};
                (void) session_live_settings(&live);
                snprintf(t.timezone.buf, sizeof(t.timezone.buf), "%s", live.timezone ?: "UTC");
        }

        r = session_new(&t.session);
        if (r >= 0)
                r = session_set_targets(t.session, o->targets, o->n_targets);
        if (r >= 0) {
                r = session_set_source(t.session, o->source);
                /* The recovery entry resets: it needs the medium's image only for classic images, and
                 * the reset's plan says so then. */
                if (r < 0 && o->reset && !o->source)
                        r = 0;
        }
        if (r < 0) {
                fprintf(stderr, "imprint: %s\n", session_error_message(r));
                tui_done(&t);
                return session_exit_code(r);
        }
        r = log_open(&t);
        if (r < 0) {
                fprintf(stderr, "imprint: %s\n", session_error_message(r));
                tui_done(&t);
                return session_exit_code(r);
        }
        log_set_sink(log_sink, &t);
        log_set_max_level(LOG_INFO);
        ui_log_line(&t, "imprint " IMPRINT_VERSION " full-screen installer, image %s", session_source_path(t.session) ?: "-");

        /* Whatever a library prints would scribble over the screen: it goes to the log instead. */
        fflush(stderr);
        saved_stderr = dup(STDERR_FILENO);
        dup2(fileno(t.log), STDERR_FILENO);

        if (t.utf8)
                (void) terminal_vt_set_utf8(STDOUT_FILENO);
        scr = newterm(NULL, stdout, stdin);
        if (!scr) {
                dup2(saved_stderr, STDERR_FILENO);
                close(saved_stderr);
                log_set_sink(log_sink_stderr, NULL);
                tui_done(&t);
                fprintf(stderr, "imprint: %s\n", _("This terminal cannot show the full-screen installer; the line-by-line one starts."));
                return plain_run_record(o->source, i18n_languages[t.language].code, o->reset, o->record_path);
        }
        set_escdelay(25);
        cbreak();
        noecho();
        nonl();
        keypad(stdscr, TRUE);
        curs_set(0);
        ui_init_colors(&t);

        for (;;) {
                UiNext (*const *screens)(Tui *t) = t.reset ? reset_screens : install_screens;
                size_t n_screens = t.reset ? ELEMENTSOF(reset_screens) : ELEMENTSOF(install_screens);
                UiNext n = screens[state](&t);

                curs_set(0);
                if (n == UI_QUIT) {
                        code = t.exit_code;
                        if (state < n_screens - 1 && !t.interrupted)
                                code = session_exit_code(-ECANCELED);
                        break;
                }
                if (n == UI_BACK) {
                        if (state == 0) {
                                if (ask_quit(&t)) {
                                        /* After a failed install: its exit status, as for Quit on the failure screen. */
                                        code = session_wrote(t.session) && t.exit_code != 0 ? t.exit_code : session_exit_code(-ECANCELED);
                                        break;
                                }
                        } else
                                state--;
                        continue;
                }
                if (state + 1 < n_screens)
                        state++;
                else
                        break;
        }

        endwin();
        delscreen(scr);
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        log_set_sink(log_sink_stderr, NULL);
        if (t.interrupted && t.exit_message[0])
                fprintf(stderr, "imprint: %s\n", t.exit_message);
        shell = t.exec_shell;
        tui_done(&t);
        explicit_bzero(&t, sizeof(t));
        munlock(&t, sizeof(t));
        if (shell)
                exec_login_shell();
        return code;
}
