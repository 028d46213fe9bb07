/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The few widgets the screens are made of: a frame, text (wide characters, clipped and wrapped by
 * display width), fields, check boxes, radio lines, bars and a message box. Colour where the
 * terminal has it; attributes alone (reverse, bold, underline) where it has not. */

#include <curses.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "secret.h"
#include "ui.h"

enum {
        PAIR_TITLE = 1,
        PAIR_FOCUS,
        PAIR_DIM,
        PAIR_ERROR,
        PAIR_OK,
        PAIR_FIELD,
        PAIR_QR,
};

static bool use_color;

void ui_init_colors(Tui *t) {
        use_color = !t->mono && has_colors();
        if (!use_color)
                return;
        start_color();
        init_pair(PAIR_TITLE, COLOR_WHITE, COLOR_BLUE);
        init_pair(PAIR_FOCUS, COLOR_BLACK, COLOR_CYAN);
        init_pair(PAIR_DIM, COLOR_BLACK, COLOR_BLACK);
        init_pair(PAIR_ERROR, COLOR_RED, COLOR_BLACK);
        init_pair(PAIR_OK, COLOR_GREEN, COLOR_BLACK);
        init_pair(PAIR_FIELD, COLOR_BLACK, COLOR_WHITE);
        init_pair(PAIR_QR, COLOR_WHITE, COLOR_BLACK);
}

/* The QR code's glyphs are its light modules: they must be light on dark, whatever the theme. */
int ui_attr_qr(void) {
        return use_color ? (int) (COLOR_PAIR(PAIR_QR) | A_BOLD) : 0;
}

static int attr_title(void) {
        return use_color ? (int) (COLOR_PAIR(PAIR_TITLE) | A_BOLD) : (int) A_REVERSE;
}
static int attr_focus(void) {
        return use_color ? (int) COLOR_PAIR(PAIR_FOCUS) : (int) (A_REVERSE | A_BOLD);
}
static int attr_dim(void) {
        /* Bold black is grey on the Linux console and in 8-colour terminals. */
        return use_color ? (int) (COLOR_PAIR(PAIR_DIM) | A_BOLD) : (int) A_DIM;
}
static int attr_field(void) {
        return use_color ? (int) COLOR_PAIR(PAIR_FIELD) : (int) A_UNDERLINE;
}

int ui_attr_dim(void) {
        return attr_dim();
}
int ui_attr_error(void) {
        return use_color ? (int) (COLOR_PAIR(PAIR_ERROR) | A_BOLD) : (int) A_BOLD;
}
int ui_attr_ok(void) {
        return use_color ? (int) (COLOR_PAIR(PAIR_OK) | A_BOLD) : (int) A_BOLD;
}
int ui_attr_focus(void) {
        return attr_focus();
}

static wchar_t *to_wide(const char *s) {
        size_t n = mbstowcs(NULL, s, 0);
        wchar_t *w;

        if (n == (size_t) -1) {
                /* Not valid in this locale: show the bytes that are ASCII. */
                n = strlen(s);
                w = calloc(n + 1, sizeof(wchar_t));
                if (!w)
                        return NULL;
                for (size_t i = 0; i < n; i++)
                        w[i] = (unsigned char) s[i] < 0x80 ? (wchar_t) s[i] : L'?';
                return w;
        }
        w = calloc(n + 1, sizeof(wchar_t));
        if (w)
                mbstowcs(w, s, n + 1);
        return w;
}

static int wc_width(wchar_t c) {
        int w = wcwidth(c);
        return w < 0 ? 1 : w;
}

int ui_width(const char *utf8) {
        _cleanup_(freep) wchar_t *w = to_wide(utf8);
        int n = 0;

        for (size_t i = 0; w && w[i]; i++)
                n += wc_width(w[i]);
        return n;
}

int ui_width_n(const char *utf8, size_t bytes) {
        _cleanup_(freep) char *s = strndup(utf8, bytes);

        return s ? ui_width(s) : 0;
}

static int put_wide(int y, int x, int width, int attr, const wchar_t *w, size_t len) {
        int used = 0;
        size_t i;

        for (i = 0; i < len && w[i]; i++) {
                int cw = wc_width(w[i]);
                if (used + cw > width)
                        break;
                used += cw;
        }
        attron(attr);
        mvaddnwstr(y, x, w, (int) i);
        attroff(attr);
        return used;
}

int ui_text(int y, int x, int width, int attr, const char *utf8) {
        _cleanup_(freep) wchar_t *w = NULL;

        if (!utf8 || width <= 0 || y < 0 || y >= LINES)
                return 0;
        w = to_wide(utf8);
        if (!w)
                return 0;
        return put_wide(y, x, width, attr, w, wcslen(w));
}

int ui_wrap(int y, int x, int width, int max_rows, int attr, const char *utf8) {
        return ui_wrap_hanging(y, x, width, 0, max_rows, attr, utf8);
}

int ui_wrap_hanging(int y, int x, int width, int hang, int max_rows, int attr, const char *utf8) {
        _cleanup_(freep) wchar_t *w = NULL;
        size_t i = 0, n;
        int rows = 0;

        if (!utf8 || width <= 0)
                return 0;
        /* Continuation rows need some room: at least 12 columns. */
        if (hang < 0 || hang > width - 12)
                hang = 0;
        w = to_wide(utf8);
        if (!w)
                return 0;
        n = wcslen(w);
        while (i < n && rows < max_rows) {
                size_t start = i, last_space = (size_t) -1, end;
                int used = 0, row_x = rows > 0 ? x + hang : x, row_width = rows > 0 ? width - hang : width;
                bool text = false;

                while (i < n && w[i] != L'\n') {
                        int cw = wc_width(w[i]);
                        if (used + cw > row_width)
                                break;
                        /* Break at a space after some text, never inside the indentation. */
                        if (w[i] == L' ' && text)
                                last_space = i;
                        else if (w[i] != L' ')
                                text = true;
                        used += cw;
                        i++;
                }
                end = i;
                if (i < n && w[i] != L'\n' && last_space != (size_t) -1 && last_space > start) {
                        end = last_space;
                        i = last_space + 1;
                } else if (i < n && w[i] == L'\n')
                        i++;
                put_wide(y + rows, row_x, row_width, attr, w + start, end - start);
                rows++;
                while (i < n && w[i] == L' ' && i > start && w[i - 1] != L'\n')
                        i++;
        }
        return rows;
}

bool ui_frame(Tui *t, const char *title, int step, const char *keys) {
        char right[64] = "";

        erase();
        if (COLS < UI_MIN_COLS || LINES < UI_MIN_LINES) {
                char msg[256];

                /* TRANSLATORS: %d×%d are the terminal's columns and lines now. */
                snprintf(msg, sizeof(msg), _("This terminal is too small: imprint needs 80 columns and 24 lines; it has %d×%d. "
                                             "Make the window larger."),
                         COLS, LINES);
                ui_wrap(0, 0, COLS, LINES, A_BOLD, msg);
                return false;
        }
        attron(attr_title());
        mvhline(0, 0, ' ', COLS);
        attroff(attr_title());
        ui_text(0, 1, COLS - 20, attr_title(), title);
        if (step > 0) {
                /* TRANSLATORS: the installer's steps, top right; %d is the step, 6 the number of steps. */
                snprintf(right, sizeof(right), _("Step %d of 6"), step);
                ui_text(0, COLS - 1 - ui_width(right), 20, attr_title(), right);
        }
        attron(attr_title());
        mvhline(LINES - 1, 0, ' ', COLS);
        attroff(attr_title());
        ui_text(LINES - 1, 1, COLS - 2, attr_title(), keys);
        return true;
}

void ui_field(Tui *t, int y, int x, int label_width, int field_width, const char *label, const TextField *f, bool focused) {
        char shown[sizeof(f->buf) * 3 + 1];
        int vw;

        ui_text(y, x, label_width, focused ? A_BOLD : 0, label);
        if (f->masked) {
                size_t n = mbstowcs(NULL, f->buf, 0);
                if (n == (size_t) -1)
                        n = strlen(f->buf);
                shown[0] = 0;
                for (size_t i = 0; i < n && i < sizeof(f->buf); i++)
                        strcat(shown, t->utf8 ? "•" : "*");
        } else
                snprintf(shown, sizeof(shown), "%s", f->buf);
        attron(focused ? attr_focus() : attr_field());
        mvhline(y, x + label_width, ' ', field_width);
        attroff(focused ? attr_focus() : attr_field());
        /* The end of a long value stays visible while typing. */
        vw = ui_width(shown);
        if (vw > field_width - 1) {
                _cleanup_(freep) wchar_t *w = to_wide(shown);
                size_t n = w ? wcslen(w) : 0, s = 0;
                int cut = vw - (field_width - 1);
                while (s < n && cut > 0)
                        cut -= wc_width(w[s++]);
                if (w)
                        put_wide(y, x + label_width, field_width - 1, focused ? attr_focus() : attr_field(), w + s, n - s);
                vw = field_width - 1;
        } else
                ui_text(y, x + label_width, field_width - 1, focused ? attr_focus() : attr_field(), shown);
        if (focused) {
                move(y, x + label_width + vw);
                curs_set(1);
        }
}

static void choice(Tui *t, int y, int x, int width, const char *mark, const char *label, bool focused, bool disabled) {
        int a = disabled ? attr_dim() : focused ? attr_focus() : 0;
        char line[512];

        snprintf(line, sizeof(line), "%s %s", mark, label);
        if (focused) {
                attron(a);
                mvhline(y, x, ' ', width);
                attroff(a);
        }
        ui_text(y, x, width, a, line);
}

void ui_check(Tui *t, int y, int x, int width, const char *label, bool on, bool focused, bool disabled) {
        choice(t, y, x, width, on ? "[x]" : "[ ]", label, focused, disabled);
}

void ui_radio(Tui *t, int y, int x, int width, const char *label, bool on, bool focused, bool disabled) {
        choice(t, y, x, width, on ? (t->utf8 ? "(•)" : "(*)") : "( )", label, focused, disabled);
}

void ui_bar(Tui *t, int y, int x, int width, uint64_t done, uint64_t total) {
        int inner = width - 7, filled;
        char pct[8];

        if (inner < 2)
                return;
        filled = total ? (int) ((double) inner * (double) MIN(done, total) / (double) total) : 0;
        mvaddch(y, x, '[');
        for (int i = 0; i < inner; i++) {
                if (i < filled) {
                        if (use_color) {
                                attron(COLOR_PAIR(PAIR_FOCUS));
                                mvaddch(y, x + 1 + i, '#');
                                attroff(COLOR_PAIR(PAIR_FOCUS));
                        } else
                                mvaddch(y, x + 1 + i, '#');
                } else
                        mvaddch(y, x + 1 + i, t->utf8 ? ' ' : '.');
        }
        mvaddch(y, x + 1 + inner, ']');
        snprintf(pct, sizeof(pct), "%3u%%", total ? (unsigned) (MIN(done, total) * 100 / total) : 0);
        mvaddstr(y, x + inner + 3, pct);
}

bool ui_field_key(TextField *f, UiKey k) {
        size_t n = strlen(f->buf);

        if (k.is_char && (k.ch == 127 || k.ch == 8)) {
                goto backspace;
        }
        if (!k.is_char && k.ch == KEY_BACKSPACE)
                goto backspace;
        if (k.is_char && k.ch == 21) { /* Ctrl-U */
                secret_wipe(f->buf, sizeof(f->buf));
                return true;
        }
        if (k.is_char && k.ch >= 0x20 && k.ch != 127) {
                char mb[MB_LEN_MAX + 1];
                mbstate_t st = {};
                size_t m = wcrtomb(mb, (wchar_t) k.ch, &st);
                if (m == (size_t) -1 || n + m >= sizeof(f->buf))
                        return true;
                memcpy(f->buf + n, mb, m);
                f->buf[n + m] = 0;
                secret_wipe(mb, sizeof(mb));
                return true;
        }
        return false;

backspace:
        if (n == 0)
                return true;
        /* Back over one whole (possibly multi-byte) character. */
        n--;
        while (n > 0 && ((unsigned char) f->buf[n] & 0xC0) == 0x80)
                n--;
        secret_wipe(f->buf + n, sizeof(f->buf) - n);
        return true;
}

void ui_field_wipe(TextField *f) {
        secret_wipe(f->buf, sizeof(f->buf));
}

bool ui_key_is(UiKey k, int code) {
        if (code == UI_KEY_ESC || code == UI_KEY_TAB || code == UI_KEY_ENTER)
                return k.is_char && (k.ch == (wint_t) code || (code == UI_KEY_ENTER && k.ch == '\r'));
        return !k.is_char && k.ch == (wint_t) code;
}

static void show_help(Tui *t) {
        const char *keys = _("Enter: close");
        char text[2048];

        /* TRANSLATORS: shown under every screen's own help. */
        snprintf(text, sizeof(text), "%s\n\n%s", t->help ? _(t->help) : "",
                 t->reset
                         /* TRANSLATORS: shown under every reset screen's own help. */
                         ? _("Keys: Tab and the arrow keys move between fields, Space toggles, Enter goes on, Esc goes back, "
                             "F1 shows this help. Nothing is erased before you confirm by typing the disk's name.")
                         : _("Keys: Tab and the arrow keys move between fields, Space toggles, Enter goes on, Esc goes back, "
                             "F1 shows this help. Nothing is written to any disk before you confirm on the summary."));
        ui_message(t, _("Help"), text, keys);
}

static UiKey read_key(Tui *t, bool wait) {
        UiKey k = { false, (wint_t) UI_KEY_NONE };
        wint_t c;
        int r;

        timeout(wait ? -1 : 0);
        r = get_wch(&c);
        if (r == ERR)
                return k;
        k.is_char = r == OK;
        k.ch = c;
        if (wait && !k.is_char && c == KEY_F(1)) {
                show_help(t);
                k.ch = KEY_RESIZE;
        }
        /* Ctrl-L, as in every full-screen program: draw everything again, e.g. after a message
         * of the kernel or another program wrote over the screen (a serial console). */
        if (k.is_char && c == 12) {
                clearok(curscr, TRUE);
                k.is_char = false;
                k.ch = KEY_RESIZE;
        }
        return k;
}

UiKey ui_key(Tui *t) {
        return read_key(t, true);
}

UiKey ui_key_poll(Tui *t) {
        return read_key(t, false);
}

bool ui_message(Tui *t, const char *title, const char *text, const char *keys) {
        for (;;) {
                int w, h, y0, x0, rows;
                UiKey k;

                if (COLS < UI_MIN_COLS || LINES < UI_MIN_LINES)
                        ui_frame(t, "", 0, "");
                else {
                        w = MIN(COLS - 8, 72);
                        x0 = (COLS - w) / 2;
                        /* Measure, then draw. */
                        rows = ui_wrap(LINES, 0, w - 4, LINES - 6, 0, text);
                        h = rows + 4;
                        y0 = (LINES - h) / 2;
                        for (int y = y0; y < y0 + h; y++)
                                mvhline(y, x0, ' ', w);
                        attron(A_BOLD);
                        mvaddch(y0, x0, ACS_ULCORNER);
                        mvhline(y0, x0 + 1, ACS_HLINE, w - 2);
                        mvaddch(y0, x0 + w - 1, ACS_URCORNER);
                        mvvline(y0 + 1, x0, ACS_VLINE, h - 2);
                        mvvline(y0 + 1, x0 + w - 1, ACS_VLINE, h - 2);
                        mvaddch(y0 + h - 1, x0, ACS_LLCORNER);
                        mvhline(y0 + h - 1, x0 + 1, ACS_HLINE, w - 2);
                        mvaddch(y0 + h - 1, x0 + w - 1, ACS_LRCORNER);
                        attroff(A_BOLD);
                        ui_text(y0, x0 + 2, w - 4, A_BOLD, title);
                        ui_wrap(y0 + 2, x0 + 2, w - 4, rows, 0, text);
                        ui_text(y0 + h - 1, x0 + w - 3 - ui_width(keys), w - 4, A_BOLD, keys);
                }
                curs_set(0);
                refresh();
                k = read_key(t, true);
                if (!k.is_char && k.ch == KEY_RESIZE)
                        erase();
                if (ui_key_is(k, UI_KEY_ENTER))
                        return true;
                if (ui_key_is(k, UI_KEY_ESC))
                        return false;
        }
}
