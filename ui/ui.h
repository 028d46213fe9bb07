/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The full-screen front end: what its screens share. It fills in the same request as the
 * line-by-line dialogue (src/plain.c) and drives the same install session (session.h); no disk
 * logic and no policy lives here. Every screen is a function that draws itself from the state below on every key (cheap at
 * 80x24, and a resize is then just another key) and returns where to go next. */

#include <libintl.h>
#include <stdbool.h>
#include <stdio.h>
#include <wchar.h>

#include "i18n-frontend.h"
#include "session.h"
#include "tui.h"

#define _(s) gettext(s)
#define N_(s) (s)

#define UI_MIN_COLS 80
#define UI_MIN_LINES 24

/* What a screen asks the main loop to do next. */
typedef enum UiNext {
        UI_NEXT,
        UI_BACK,
        UI_QUIT,
} UiNext;

/* Keys beyond what get_wch() returns. */
enum {
        UI_KEY_NONE = -1,
        UI_KEY_ESC = 27,
        UI_KEY_TAB = '\t',
        UI_KEY_ENTER = '\n',
};

/* One key: ch is a character (wide) when is_char, else a KEY_* code. */
typedef struct UiKey {
        bool is_char;
        wint_t ch;
} UiKey;

#define UI_LOG_LINES 200

typedef struct TextField {
        char buf[256];
        bool masked;
} TextField;

typedef struct Tui {
        const TuiOptions *opts;
        Session *session;            /* the image, the disks, the plan, the install */
        bool mono;
        bool utf8;
        const char *help;            /* F1 text of the current screen (translated when drawn) */

        size_t language, keymap;     /* indexes into i18n_languages[], ui_keymaps[] */

        const Disk *disk;            /* the chosen one (the session's) */

        /* layout */
        PlanMode mode;
        TextField root_size, home_size, swap_size;

        /* encryption */
        bool tpm_checked;
        int tpm_usable;              /* session_tpm(): 1 usable, 0 not */
        const Tpm2Status *tpm;       /* the session's */
        bool encrypt, tpm_pin, passphrase;
        TextField passphrase1, passphrase2, pin1, pin2;

        /* account and settings */
        TextField user, real_name, password1, password2, hostname, timezone;
        bool admin;
        AccountStorage storage;

        /* factory reset: "Reset an installed system" on the welcome screen, or TuiOptions.reset */
        bool reset;
        const ResetTarget *reset_target; /* the session's, for disk */
        bool keep_home;
        TextField old_key;           /* the disk's current recovery key, when the TPM cannot unlock home */
        char erase_report[2048];     /* what the erase steps said they did */

        /* the install */
        FILE *log;
        char *log_path;
        char *log_lines[UI_LOG_LINES];  /* ring buffer for the live log */
        size_t n_log;
        int exit_code;               /* of the last install: 0, or session_exit_code() of its failure */
        bool interrupted;            /* the install was stopped by SIGTERM/SIGHUP: leave, with exit_message */
        char exit_message[1024];
        bool exec_shell;             /* "Exit to a shell" was chosen and opts->shell_after is set */
} Tui;

extern const char *const ui_keymaps[];
extern const size_t ui_n_keymaps;

/* ---- widgets.c ---------------------------------------------------------------------------- */

void ui_init_colors(Tui *t);
int ui_attr_dim(void);
int ui_attr_error(void);
int ui_attr_ok(void);
int ui_attr_focus(void);
int ui_attr_qr(void);
/* Clears and draws the title bar (screen title, "Step n of 6"), and the key help at the bottom.
 * Returns false when the terminal is smaller than 80x24 (a notice is drawn instead). */
bool ui_frame(Tui *t, const char *title, int step, const char *keys);
/* Draws utf8 text at y, x, clipped to width columns; returns the columns used. */
int ui_text(int y, int x, int width, int attr, const char *utf8);
/* Word-wraps utf8 into width columns from row y on, at most max_rows rows; returns rows used. */
int ui_wrap(int y, int x, int width, int max_rows, int attr, const char *utf8);
/* The same, with the rows after the first starting hang columns further right. */
int ui_wrap_hanging(int y, int x, int width, int hang, int max_rows, int attr, const char *utf8);
/* Columns text takes on screen; of its first bytes bytes. */
int ui_width(const char *utf8);
int ui_width_n(const char *utf8, size_t bytes);
/* An input field: label, then the value (masked with '•' or '*'), highlighted when focused. */
void ui_field(Tui *t, int y, int x, int label_width, int field_width, const char *label, const TextField *f, bool focused);
/* A check box line "[x] label". */
void ui_check(Tui *t, int y, int x, int width, const char *label, bool on, bool focused, bool disabled);
/* A radio line "(•) label". */
void ui_radio(Tui *t, int y, int x, int width, const char *label, bool on, bool focused, bool disabled);
/* A progress bar of width columns for done/total, with a percentage after it. */
void ui_bar(Tui *t, int y, int x, int width, uint64_t done, uint64_t total);
/* Edits f with k: printable characters append, Backspace deletes, Ctrl-U clears. True if
 * consumed. */
bool ui_field_key(TextField *f, UiKey k);
void ui_field_wipe(TextField *f);

/* Waits for a key. F1 shows the current screen's help and returns KEY_RESIZE (redraw). */
UiKey ui_key(Tui *t);
/* The same without waiting: is_char false and ch UI_KEY_NONE when none is pending. */
UiKey ui_key_poll(Tui *t);
bool ui_key_is(UiKey k, int code);

/* A modal box with a message; waits for Enter (returns true) or Esc (false). */
bool ui_message(Tui *t, const char *title, const char *text, const char *keys);

/* ---- the screens ------------------------------------------------------------------------------ */

UiNext screen_welcome(Tui *t);
UiNext screen_disk(Tui *t);
UiNext screen_layout(Tui *t);
UiNext screen_encryption(Tui *t);
UiNext screen_user(Tui *t);
/* Summary, recovery key and progress are the executor's callbacks; this runs it. */
UiNext screen_install(Tui *t);
UiNext screen_done(Tui *t, const Plan *p);

/* What the session's install events become on screen (summary.c, recovery.c, progress.c). */
int ui_confirm(Tui *t, const Plan *p);
int ui_recovery_key(Tui *t, const Plan *p, const Secret *key);
void ui_progress(Tui *t, const ProgressEvent *ev);
void ui_progress_reset(Tui *t);
void ui_progress_set_plan(const Plan *p);

/* reset.c: the factory reset's screens (disk, what to keep, then the run: the erase/keep table
 * confirmed by the disk's name, the new recovery key, progress, the result with the method). */
UiNext screen_reset_disk(Tui *t);
UiNext screen_reset_options(Tui *t);
UiNext screen_reset_run(Tui *t);
int ui_reset_confirm(Tui *t, const Plan *p);

/* failure.c: what failed, the disk's state, the log; returns UI_NEXT to retry, UI_BACK, UI_QUIT. */
UiNext screen_failure(Tui *t, const Plan *p, const char *message);

/* tui.c */
/* The choices so far as engine requests (layout, encryption, account, settings). */
int ui_layout_options(Tui *t, PlanOptions *o);
void ui_encrypt_request(Tui *t, EncryptRequest *e);
void ui_account_request(Tui *t, AccountRequest *a);
void ui_settings(Tui *t, PlanSettings *s);
/* All of them as the session's request for the chosen disk. */
int ui_request(Tui *t, SessionRequest *r);
void ui_log_line(Tui *t, const char *fmt, ...) _printf_(2, 3);
void ui_set_language(Tui *t, size_t i);
/* s padded with spaces to width columns (before it when right-aligned), into buf: printf's %-9s
 * counts bytes, and "RÔLE" or "créer" take fewer columns than bytes. */
const char *ui_pad(char *buf, size_t size, const char *s, int width, bool right);
/* The plan's partition table as the layout and summary screens show it: translated headers and
 * actions; mark_encrypted adds " (encrypted)" to the labels of encrypted partitions. */
Table *ui_plan_table(const Plan *p, bool mark_encrypted);
/* Draws text lines (plan_print_table() output and the like) from first, between rows y0 and y1. */
void ui_lines(Tui *t, int y0, int y1, int x, int width, char **lines, size_t n, size_t first);
/* Splits text into lines (malloc'ed array of malloc'ed strings). */
char **ui_split_lines(const char *text, size_t *ret_n);
void ui_free_lines(char **l, size_t n);
