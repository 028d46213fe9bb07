/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Screen 4: encryption. The TPM's pre-flight check (session_tpm()) says whether the disk can unlock
 * by itself; the person chooses whether to encrypt, a TPM PIN, and a passphrase. Image files are
 * never encrypted, and the screen says why (the engine's note). */

#include <curses.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

enum {
        ITEM_ENCRYPT,
        ITEM_PIN,
        ITEM_PIN1,
        ITEM_PIN2,
        ITEM_PASSPHRASE,
        ITEM_PASS1,
        ITEM_PASS2,
        _ITEM_MAX,
};

static size_t items(Tui *t, int ret[]) {
        size_t n = 0;

        ret[n++] = ITEM_ENCRYPT;
        if (!t->encrypt)
                return n;
        if (t->tpm_usable > 0) {
                ret[n++] = ITEM_PIN;
                if (t->tpm_pin) {
                        ret[n++] = ITEM_PIN1;
                        ret[n++] = ITEM_PIN2;
                }
        }
        ret[n++] = ITEM_PASSPHRASE;
        if (t->passphrase) {
                ret[n++] = ITEM_PASS1;
                ret[n++] = ITEM_PASS2;
        }
        return n;
}

/* NULL when the choices can be used; else what is missing. */
static const char *check(Tui *t, char *buf, size_t size) {
        if (!t->encrypt)
                return NULL;
        if (t->tpm_usable > 0 && t->tpm_pin) {
                if (isempty(t->pin1.buf))
                        return _("Type the PIN.");
                if (!streq(t->pin1.buf, t->pin2.buf))
                        return _("The two PINs differ.");
        }
        if (t->tpm_usable <= 0 && !t->passphrase)
                return _("Without a TPM, the disk needs a passphrase to open at boot.");
        if (t->passphrase) {
                int r;
                if (isempty(t->passphrase1.buf))
                        return _("Type the passphrase.");
                r = session_rate_secret(SESSION_SECRET_PASSPHRASE, t->passphrase1.buf, NULL);
                if (r < 0 && !t->opts->allow_weak_password) {
                        /* TRANSLATORS: %s is libpwquality's reason (English). */
                        snprintf(buf, size, _("Too weak: %s"), session_error_message(r));
                        return buf;
                }
                if (!streq(t->passphrase1.buf, t->passphrase2.buf))
                        return _("The two passphrases differ.");
        }
        return NULL;
}

static TextField *field_of(Tui *t, int item) {
        switch (item) {
        case ITEM_PIN1:
                return &t->pin1;
        case ITEM_PIN2:
                return &t->pin2;
        case ITEM_PASS1:
                return &t->passphrase1;
        case ITEM_PASS2:
                return &t->passphrase2;
        default:
                return NULL;
        }
}

static void draw_image_file(Tui *t) {
        EncryptRequest req;
        _cleanup_(freep) char *why = NULL;
        char text[1024], note[768];
        size_t n;

        ui_encrypt_request(t, &req);
        if (session_encryption_note(t->session, t->disk, &req, &why) < 0 || !why)
                return;
        /* The engine's sentence ends with its own full stop; the one of the format below ends it
         * here (not "encrypt.."). */
        snprintf(note, sizeof(note), "%s", why);
        n = strlen(note);
        if (n > 0 && note[n - 1] == '.')
                note[n - 1] = 0;
        /* TRANSLATORS: %s is the engine's (English) reason. */
        snprintf(text, sizeof(text), _("Not encrypted: %s."), note);
        ui_wrap(4, 2, COLS - 4, 4, A_BOLD, text);
        ui_wrap(9, 2, COLS - 4, 4, 0,
                _("The TPM of this computer is not checked: it is not the one that will start the installed system."));
}

UiNext screen_encryption(Tui *t) {
        size_t focus = 0;
        bool tried = false;

        t->help = N_("Encryption protects the data if the disk is stolen. With a usable TPM the disk opens by itself when "
                     "this computer starts unchanged; a PIN adds something to type. A passphrase opens the disk anywhere. "
                     "A recovery key is always made: it is shown, and part of it must be typed back, before anything is written.");

        if (session_can_encrypt(t->disk) && !t->tpm_checked) {
                ui_frame(t, _("Encryption"), 4, "");
                ui_text(2, 2, COLS - 4, 0, _("Checking the TPM…"));
                refresh();
                t->tpm_usable = session_tpm(t->session, NULL, &t->tpm);
                t->tpm_checked = true;
                if (t->tpm_usable <= 0)
                        t->passphrase = true;
        }

        for (;;) {
                int list[_ITEM_MAX];
                size_t n = items(t, list);
                char buf[512];
                const char *problem = NULL;
                UiKey k;
                int cur = -1;

                if (focus >= n)
                        focus = n - 1;
                if (ui_frame(t, _("Encryption"), 4, _("F1 Help  Up/Down/Tab Move  Space Toggle  Enter Continue  Esc Back"))) {
                        curs_set(0);
                        ui_text(2, 2, COLS - 4, A_BOLD, t->disk->path);
                        if (!session_can_encrypt(t->disk))
                                draw_image_file(t);
                        else {
                                int y = 4;
                                if (t->tpm_usable > 0)
                                        y += ui_wrap(y, 2, COLS - 4, 3, ui_attr_ok(),
                                                     _("TPM 2.0: usable. The encrypted disk unlocks by itself at boot, as long as the "
                                                       "firmware and Secure Boot settings stay the same."));
                                else {
                                        /* TRANSLATORS: %s is the engine's (English) reason. */
                                        snprintf(buf, sizeof(buf), _("The TPM cannot be used: %s An encrypted disk then asks for a passphrase or the recovery key at every boot."),
                                                 (t->tpm ? t->tpm->problem : NULL) ?: _("no TPM was found."));
                                        y += ui_wrap(y, 2, COLS - 4, 4, 0, buf);
                                }
                                y++;
                                for (size_t i = 0; i < n; i++, y++) {
                                        bool f = i == focus;
                                        switch (list[i]) {
                                        case ITEM_ENCRYPT:
                                                ui_check(t, y, 2, COLS - 4, _("Encrypt root and home (recommended)"), t->encrypt, f, false);
                                                break;
                                        case ITEM_PIN:
                                                ui_check(t, y, 4, COLS - 6, _("The TPM asks for a PIN at boot"), t->tpm_pin, f, false);
                                                break;
                                        case ITEM_PASSPHRASE:
                                                ui_check(t, y, 4, COLS - 6, _("A passphrase that opens the disk"), t->passphrase, f,
                                                         false);
                                                break;
                                        default:
                                                if (f)
                                                        cur = y;
                                                ui_field(t, y, 8, 18, 40,
                                                         list[i] == ITEM_PIN1 ? _("PIN") : list[i] == ITEM_PASS1 ? _("Passphrase") : _("Again"),
                                                         field_of(t, list[i]), f);
                                        }
                                }
                                if (t->encrypt && t->passphrase && !isempty(t->passphrase1.buf)) {
                                        int r = session_rate_secret(SESSION_SECRET_PASSPHRASE, t->passphrase1.buf, NULL);
                                        if (r >= 0)
                                                /* TRANSLATORS: %d is libpwquality's score. */
                                                snprintf(buf, sizeof(buf), _("Strength: %d of 100"), r);
                                        else
                                                snprintf(buf, sizeof(buf), _("Too weak: %s"), session_error_message(r));
                                        ui_wrap(y, 8, COLS - 10, 2, r >= 0 ? ui_attr_ok() : ui_attr_error(), buf);
                                        y += 2;
                                        /* Checked without the cracklib dictionary: say so, where there is room. */
                                        if (session_password_note() && y + 2 <= LINES - 4)
                                                y += ui_wrap(y, 8, COLS - 10, 2, ui_attr_dim(), session_password_note());
                                }
                                ui_wrap(LINES - 4, 2, COLS - 4, 2, ui_attr_dim(),
                                        t->encrypt ? _("A recovery key is made and shown before anything is written.")
                                                   : _("Not encrypted: anyone who has the disk can read it."));
                                if (tried && (problem = check(t, buf, sizeof(buf))))
                                        ui_text(LINES - 2, 2, COLS - 4, ui_attr_error(), problem);
                                if (cur >= 0)
                                        ui_field(t, cur, 8, 18, 40,
                                                 list[focus] == ITEM_PIN1 ? _("PIN") : list[focus] == ITEM_PASS1 ? _("Passphrase") : _("Again"),
                                                 field_of(t, list[focus]), true);
                        }
                }
                refresh();
                k = ui_key(t);
                if (ui_key_is(k, UI_KEY_ESC))
                        return UI_BACK;
                if (ui_key_is(k, UI_KEY_ENTER)) {
                        if (!session_can_encrypt(t->disk) || !check(t, buf, sizeof(buf)))
                                return UI_NEXT;
                        tried = true;
                        continue;
                }
                if (!session_can_encrypt(t->disk))
                        continue;
                if (ui_key_is(k, UI_KEY_TAB) || ui_key_is(k, KEY_DOWN))
                        focus = (focus + 1) % n;
                else if (ui_key_is(k, KEY_BTAB) || ui_key_is(k, KEY_UP))
                        focus = (focus + n - 1) % n;
                else if (k.is_char && k.ch == ' ' && !field_of(t, list[focus])) {
                        bool *b = list[focus] == ITEM_ENCRYPT ? &t->encrypt : list[focus] == ITEM_PIN ? &t->tpm_pin : &t->passphrase;
                        *b = !*b;
                } else if (field_of(t, list[focus]))
                        ui_field_key(field_of(t, list[focus]), k);
        }
}
