/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Screen 6: the summary. It is the executor's confirm callback, so what it shows is the plan the
 * executor runs next, after its pre-flight checks passed: the target, the image, encryption, the
 * account and settings, the partition table, and every existing partition the plan destroys, by
 * number, size, type, label and what is on it. Typing the disk's short name confirms; Esc goes back
 * with nothing written. */

#include <curses.h>
#include <stdlib.h>
#include <string.h>

#include "size.h"
#include "ui.h"

typedef struct Body {
        char **lines;
        int *attrs;
        int *hangs;   /* where continuation rows of a wrapped line start (columns from the left) */
        size_t n;
} Body;

/* Continuation rows line up under the value of "Label:    value" lines, under the text of an
 * indented line, and under the LABEL column of a partition row (set by the caller). */
static int hang_of(const char *line) {
        int lead = (int) strspn(line, " ");
        const char *colon = strchr(line, ':');

        if (lead == 0 && colon && colon - line < 24 && colon[1] == ' ' && colon[2] == ' ')
                return ui_width_n(line, (size_t) (colon - line + 1)) + (int) strspn(colon + 1, " ");
        return lead;
}

static void body_add(Body *b, int attr, const char *fmt, ...) _printf_(3, 4);
static void body_add(Body *b, int attr, const char *fmt, ...) {
        char line[1024];
        char **l;
        int *a, *h;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        l = realloc(b->lines, (b->n + 1) * sizeof(char *));
        if (!l)
                return;
        b->lines = l;
        a = realloc(b->attrs, (b->n + 1) * sizeof(int));
        if (!a)
                return;
        b->attrs = a;
        h = realloc(b->hangs, (b->n + 1) * sizeof(int));
        if (!h)
                return;
        b->hangs = h;
        b->lines[b->n] = strdup(line);
        if (!b->lines[b->n])
                return;
        b->hangs[b->n] = hang_of(line);
        b->attrs[b->n++] = attr;
}

static void body_done(Body *b) {
        ui_free_lines(b->lines, b->n);
        free(b->attrs);
        free(b->hangs);
}

static void build_body(Tui *t, const Plan *p, Body *b) {
        _cleanup_(table_freep) Table *table = NULL;
        char **lines = NULL;
        size_t n_lines = 0;

        body_add(b, A_BOLD,
                 p->mode == PLAN_ERASE
                         /* TRANSLATORS: %s is the disk's path. */
                         ? _("Erase %s and install:")
                         : _("Install into the free space of %s:"),
                 p->target);
        body_add(b, 0, "  %s", p->target_description ?: "");
        if (p->source)
                /* TRANSLATORS: first %s is the OS name, second the image file. */
                body_add(b, 0, _("System:      %s from %s"), p->source->os_name ?: _("unknown OS"), p->source->path);
        if (p->encryption.enabled)
                body_add(b, 0, _("Encryption:  LUKS2 with a recovery key%s%s%s"), p->encryption.tpm2 ? _(", unlocked by the TPM") : "",
                         p->encryption.tpm2_pin ? _(" with a PIN") : "", p->encryption.passphrase ? _(", and a passphrase") : "");
        else
                body_add(b, 0, "%s", _("Encryption:  none"));
        /* Under the value of the line above, in every language. */
        if (p->encryption.note && b->n > 0)
                body_add(b, ui_attr_dim(), "%*s%s", b->hangs[b->n - 1], "", p->encryption.note);
        if (p->secure_boot.decided) {
                const PlanSecureBoot *sb = &p->secure_boot;
                /* What the plan says, and who signed the image, matter when Secure Boot is on or
                 * about to be; otherwise a few words say it. */
                bool detail = sb->action == SECURE_BOOT_TRUSTED || sb->action == SECURE_BOOT_ENROLL ||
                              sb->action == SECURE_BOOT_UNBOOTABLE;

                const char *what = sb->action == SECURE_BOOT_TRUSTED      ? _("on, and its keys trust this system")
                                 : sb->action == SECURE_BOOT_ENROLL       ? _("the first boot enrolls the image's keys, then it is on")
                                 : sb->action == SECURE_BOOT_UNBOOTABLE   ? _("on, and the firmware will refuse to start this system")
                                 : sb->action == SECURE_BOOT_OTHER_MACHINE ? _("decided by the machine that boots the image file")
                                                                           : _("off: this machine is not protected by it");

                /* TRANSLATORS: what Secure Boot means for this install, a few words; two spaces after the colon, as in "Encryption:  ". */
                body_add(b, sb->action == SECURE_BOOT_UNBOOTABLE ? ui_attr_error() : 0, _("Secure Boot:  %s"), what);
                if (detail && sb->note && b->n > 0)
                        body_add(b, ui_attr_dim(), "%*s%s", b->hangs[b->n - 1], "", sb->note);
                if (detail && sb->chain && b->n > 0)
                        body_add(b, ui_attr_dim(), "%*s%s", b->hangs[b->n - 1], "", sb->chain);
        }
        if (p->account)
                body_add(b, 0, _("Account:     %s%s%s%s, %s%s"), p->account->user_name, p->account->real_name ? " (" : "",
                         p->account->real_name ?: "", p->account->real_name ? ")" : "",
                         p->account->kind == ACCOUNT_HOMED ? _("systemd-homed") : _("classic"),
                         p->account->admin ? _(", administrator") : "");
        else
                body_add(b, 0, "%s", _("Account:     none (asked at first boot)"));
        /* TRANSLATORS: hostname, time zone, locale, keymap of the installed system. */
        body_add(b, 0, _("Settings:    %s, %s, %s, keyboard %s"), p->settings.hostname ?: "-", p->settings.timezone ?: "-",
                 p->settings.locale ?: "-", p->settings.keymap ?: "-");
        body_add(b, 0, "%s", "");
        table = ui_plan_table(p, true);
        if (table && table_format_lines(table, &lines, &n_lines) >= 0) {
                /* A long label (or the encryption mark) wraps under the LABEL column. */
                int label_at = table_column_offset(table, PLAN_COLUMN_LABEL);

                for (size_t i = 0; i < n_lines; i++) {
                        size_t n = b->n;

                        body_add(b, i == 0 ? A_BOLD : 0, "%s", lines[i]);
                        if (i > 0 && b->n > n && label_at > 0)
                                b->hangs[n] = label_at;
                }
        }
        table_free_lines(lines, n_lines);
        body_add(b, 0, "%s", "");
        if (p->n_doomed > 0) {
                body_add(b, ui_attr_error() | A_BOLD, "%s", _("DESTROYED by this install:"));
                for (size_t i = 0; i < p->n_doomed; i++) {
                        const PlanDoomed *d = &p->doomed[i];
                        /* TRANSLATORS: %u is the partition number, then size, type, label, filesystem. */
                        body_add(b, ui_attr_error(), _("  partition %u: %s, %s%s%s%s%s%s"), d->partno, FORMAT_BYTES(d->size),
                                 d->type_name ?: _("unknown type"), d->label ? ", \"" : "", d->label ?: "", d->label ? "\"" : "",
                                 d->fstype ? ", " : "", d->fstype ?: "");
                        if (d->os)
                                body_add(b, ui_attr_error(), _("      holds: %s"), d->os);
                }
        } else if (p->mode == PLAN_ERASE)
                body_add(b, 0, "%s", _("No partition is destroyed: the disk holds none."));
        else
                body_add(b, 0, "%s", _("Existing partitions are kept."));
}

int ui_confirm(Tui *t, const Plan *p) {
        Body b = {};
        TextField typed = {};
        size_t first = 0;
        bool wrong = false;
        int r;

        t->help = N_("This is exactly what will be written, in this order, once you confirm. Type the disk's short name "
                     "to confirm; Esc goes back and nothing is written. PgUp and PgDn scroll.");
        build_body(t, p, &b);
        for (;;) {
                char prompt[256];
                int rows = 0;
                UiKey k;

                if (ui_frame(t, _("Summary"), 6, _("F1 Help  PgUp/PgDn Scroll  Enter Install  Esc Back"))) {
                        int y0 = 2, y1 = LINES - 5;
                        rows = y1 - y0;
                        curs_set(0);
                        size_t i = first;
                        for (int y = y0; y < y1 && i < b.n; i++) {
                                int used = ui_wrap_hanging(y, 2, COLS - 4, b.hangs[i], y1 - y, b.attrs[i], b.lines[i]);
                                y += MAX(used, 1);
                        }
                        if (i < b.n)
                                ui_text(y1, COLS - 16, 14, ui_attr_dim(), _("(more: PgDn)"));
                        /* TRANSLATORS: %s is the target's path; the warning is for an erase. */
                        snprintf(prompt, sizeof(prompt),
                                 p->mode == PLAN_ERASE ? _("This DESTROYS everything on %s.") : _("This writes to %s."), p->target);
                        ui_text(LINES - 4, 2, COLS - 4, p->mode == PLAN_ERASE ? ui_attr_error() | A_BOLD : A_BOLD, prompt);
                        /* TRANSLATORS: %s is the disk's short name, to be typed. */
                        snprintf(prompt, sizeof(prompt), _("Type \"%s\" to install:"), p->target_name);
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
                } else if (ui_key_is(k, KEY_NPAGE) || ui_key_is(k, KEY_DOWN)) {
                        size_t step = ui_key_is(k, KEY_NPAGE) ? (size_t) MAX(rows - 1, 1) : 1;
                        if (rows > 0 && b.n > (size_t) rows)
                                first = MIN(first + step, b.n - (size_t) rows);
                } else if (ui_key_is(k, KEY_PPAGE) || ui_key_is(k, KEY_UP)) {
                        size_t step = ui_key_is(k, KEY_PPAGE) ? (size_t) MAX(rows - 1, 1) : 1;
                        first = first > step ? first - step : 0;
                } else if (ui_field_key(&typed, k))
                        wrong = false;
        }
        curs_set(0);
        body_done(&b);
        ui_log_line(t, r > 0 ? "The summary was confirmed." : "The summary was not confirmed; nothing was written.");
        return r;
}
