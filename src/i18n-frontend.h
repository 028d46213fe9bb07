/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The languages the front ends speak (the full-screen installer and the line-by-line dialogue
 * offer the same list), and binding the gettext catalogs (po/, text domain "imprint") for them.
 * The command-line verbs and the unattended install never call this: they stay English. */

#include <stdbool.h>
#include <stddef.h>

#include "i18n.h"

typedef struct Language {
        const char *code;     /* for LANGUAGE= */
        const char *name;     /* in its own language: never translated */
        const char *locale;   /* suggested for the installed system */
        const char *keymap;   /* the keyboard layout it suggests */
} Language;

extern const Language i18n_languages[];
extern const size_t i18n_n_languages;

/* Binds the catalogs (IMPRINT_LOCALEDIR overrides the installed ones, for tests) and makes sure
 * gettext honours LANGUAGE (not in the C locale). Returns the language to preselect: the one
 * named by preferred (e.g. --lang), else imprint.language= on the kernel command line, else
 * LANGUAGE, LC_ALL, LC_MESSAGES or LANG when it is one of ours, else English. */
size_t i18n_frontend_init(const char *preferred);

/* The index of the language that code ("de", "de_DE.UTF-8", "de:en") names, or -1. */
int i18n_language_find(const char *code);

/* Switches the messages to language i at once, also what gettext has already looked up. */
void i18n_set_language(size_t i);

/* The language currently set with i18n_set_language(). */
size_t i18n_current_language(void);

/* Whether an answer means yes: "y"/"yes" always, and the current language's letter ("j", "o")
 * and word. */
bool i18n_answer_is_yes(const char *a);
bool i18n_answer_is_no(const char *a);
