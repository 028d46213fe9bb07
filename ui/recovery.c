/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Screen 6b: the recovery key, right after the summary is confirmed and before anything is
 * written (the executor asks then, so that no disk is encrypted with a key nobody has). The key as
 * text and as a QR code; two groups picked at random must be typed back
 * (recovery_key_check_groups()). The key is drawn from its Secret and wiped from the screen after. */

#include <curses.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ui.h"

static void draw_qr(Tui *t, const Secret *qr, int y, int x, int max_rows, int skip) {
        const char *p = (const char *) qr->data, *end = p + qr->size;
        int row = 0, line = 0;

        while (p < end && row < max_rows) {
                const char *e = memchr(p, '\n', (size_t) (end - p));
                char buf[512];
                size_t n;

                if (!e)
                        e = end;
                n = MIN((size_t) (e - p), sizeof(buf) - 1);
                if (line >= skip) {
                        memcpy(buf, p, n);
                        buf[n] = 0;
                        ui_text(y + row, x, COLS - x, ui_attr_qr(), buf);
                        secret_wipe(buf, sizeof(buf));
                        row++;
                }
                line++;
                p = e + 1;
        }
}

static int qr_lines(const Secret *qr) {
        int n = 0;
        for (size_t i = 0; i < qr->size; i++)
                n += qr->data[i] == '\n';
        return n;
}

static int qr_width(const Secret *qr) {
        const char *p = (const char *) qr->data, *e = memchr(p, '\n', qr->size);
        _cleanup_(freep) char *first = strndup(p, e ? (size_t) (e - p) : qr->size);
        int w = first ? ui_width(first) : 0;
        if (first)
                secret_wipe(first, strlen(first));
        return w;
}

int ui_recovery_key(Tui *t, const Plan *p, const Secret *key) {
        _cleanup_(secret_freep) Secret *qr = NULL;
        TextField typed = {};
        unsigned groups[2];
        char message[512] = "";
        bool qr_only = false;
        int r, result;

        r = recovery_key_qr_text(key, t->utf8, &qr);
        if (r < 0)
                return error_setf(r, "Cannot draw the recovery key as a QR code: %s", strerror(-r));
        r = recovery_key_challenge(ELEMENTSOF(groups), groups, ELEMENTSOF(groups));
        if (r < 0)
                return r;
        t->help = N_("If the TPM ever refuses to unlock the disk (a firmware update, Secure Boot changed, the disk moved to "
                     "another computer), this key is the only way in. Write it down or scan the code, and keep it apart from "
                     "the computer. F2 shows the QR code alone, larger.");

        for (;;) {
                int h = qr_lines(qr), w = qr_width(qr);
                UiKey k;

                if (qr_only) {
                        erase();
                        /* The whole screen, quiet zone trimmed only if it must be. */
                        draw_qr(t, qr, MAX((LINES - h) / 2, 0), MAX((COLS - w) / 2, 0), LINES, MAX((h - LINES + 1) / 2, 0));
                        curs_set(0);
                } else if (ui_frame(t, _("Recovery key"), 6, _("F1 Help  F2 QR code alone  Enter Check  Esc Cancel"))) {
                        int left = COLS - w - 3, y = 2, skip = MAX((h - (LINES - 2) + 1) / 2, 0);
                        bool side = left >= 34 && skip <= 1;
                        char prompt[128];

                        if (!side)
                                left = COLS - 4;
                        /* TRANSLATORS: %s is the disk's short name. */
                        snprintf(prompt, sizeof(prompt), _("RECOVERY KEY for %s"), p->target_name);
                        ui_text(y, 2, left, A_BOLD, prompt);
                        y += 2;
                        /* Two groups a line: the key is 8 groups of 8 letters. */
                        for (int g = 0; g < 8; g += 2) {
                                char part[32];
                                memcpy(part, key->data + g * 9, 17);
                                part[17] = 0;
                                ui_text(y++, 4, left, A_BOLD, part);
                                secret_wipe(part, sizeof(part));
                        }
                        y++;
                        y += ui_wrap(y, 2, left, 6, 0,
                                     _("Write it down or scan the code, and keep it apart from the computer. Nothing has been "
                                       "written to the disk yet."));
                        y++;
                        y += ui_wrap(y, 2, left, 3, ui_attr_dim(), recovery_key_explanation());
                        if (side)
                                draw_qr(t, qr, 1 + MAX((LINES - 2 - h + 2 * skip) / 2, 0), COLS - w - 1, LINES - 2, skip);
                        else
                                ui_wrap(y++, 2, left, 2, ui_attr_dim(), _("F2 shows the QR code."));
                        if (message[0])
                                ui_wrap(LINES - 5, 2, left, 2, ui_attr_error(), message);
                        /* TRANSLATORS: %u are group numbers, 1 to 8. */
                        snprintf(prompt, sizeof(prompt), _("Type groups %u and %u:"), groups[0], groups[1]);
                        ui_text(LINES - 3, 2, left, A_BOLD, prompt);
                        ui_field(t, LINES - 2, 2, 0, MIN(left, 30), "", &typed, true);
                }
                refresh();
                k = ui_key(t);
                if (qr_only) {
                        if (!(!k.is_char && k.ch == KEY_RESIZE))
                                qr_only = false;
                        continue;
                }
                if (ui_key_is(k, KEY_F(2)))
                        qr_only = true;
                else if (ui_key_is(k, UI_KEY_ESC)) {
                        if (ui_message(t, _("Cancel"), _("Stop the install? Nothing has been written."), _("Enter: stop   Esc: stay"))) {
                                result = 0;
                                break;
                        }
                } else if (ui_key_is(k, UI_KEY_ENTER)) {
                        r = recovery_key_check_groups(key, groups, ELEMENTSOF(groups), typed.buf);
                        ui_field_wipe(&typed);
                        if (r >= 0) {
                                result = 1;
                                break;
                        }
                        if (r != -EKEYREJECTED) {
                                result = r;
                                break;
                        }
                        snprintf(message, sizeof(message), "%s", session_error_message(r));
                } else
                        ui_field_key(&typed, k);
        }
        ui_field_wipe(&typed);
        /* Off the screen before the install goes on. */
        erase();
        clear();
        refresh();
        ui_log_line(t, result > 0 ? "The recovery key was shown and confirmed." : "The recovery key was not confirmed.");
        return result;
}
