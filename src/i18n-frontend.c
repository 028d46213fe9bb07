/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The front ends' languages and the gettext setup they share (ui/tui.c, src/plain.c). */

#include <ctype.h>
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "i18n-frontend.h"
#include "macro.h"
#include "proc-cmdline.h"

#ifndef LOCALEDIR
#define LOCALEDIR "/usr/share/locale"
#endif

const Language i18n_languages[] = {
        { "en", "English", "en_US.UTF-8", "us" },
        { "de", "Deutsch", "de_DE.UTF-8", "de" },
        { "fr", "Français", "fr_FR.UTF-8", "fr" },
};
const size_t i18n_n_languages = ELEMENTSOF(i18n_languages);

static size_t current;

int i18n_language_find(const char *code) {
        if (!code)
                return -1;
        for (size_t i = 0; i < i18n_n_languages; i++) {
                size_t n = strlen(i18n_languages[i].code);

                /* "de", "de_AT.UTF-8", "de:en", "de-CH"; not "dex". */
                if (strncasecmp(code, i18n_languages[i].code, n) == 0 && !isalpha((unsigned char) code[n]))
                        return (int) i;
        }
        return -1;
}

void i18n_set_language(size_t i) {
        char again[128];
        const char *m;

        if (i >= i18n_n_languages)
                i = 0;
        current = i;
        setenv("LANGUAGE", i18n_languages[i].code, 1);
        m = setlocale(LC_MESSAGES, NULL);
        snprintf(again, sizeof(again), "%s", m ?: "C.UTF-8");
        setlocale(LC_MESSAGES, again);
        /* gettext caches every translation it found until it is told the catalogs changed. Setting
         * the same locale again does not tell it (German strings stayed on screen after switching
         * from Deutsch to Français); textdomain() does: it increments _nl_msg_cat_cntr, which is
         * what the gettext manual ("Being a gettext grok") asks for after changing LANGUAGE. */
        textdomain("imprint");
}

size_t i18n_current_language(void) {
        return current;
}

size_t i18n_frontend_init(const char *preferred) {
        const char *dir = getenv("IMPRINT_LOCALEDIR") ?: LOCALEDIR;
        const char *env[] = { "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG" };
        _cleanup_(freep) char *cmdline = NULL;
        const char *m;
        int k;

        bindtextdomain("imprint", dir);
        bind_textdomain_codeset("imprint", "UTF-8");
        textdomain("imprint");
        /* gettext ignores LANGUAGE when messages are in the C locale; C.UTF-8 is always there. */
        m = setlocale(LC_MESSAGES, NULL);
        if (!m || streq(m, "C") || streq(m, "POSIX"))
                setlocale(LC_MESSAGES, "C.UTF-8");

        k = i18n_language_find(preferred);
        if (k < 0 && proc_cmdline_get_key("imprint.language", &cmdline) > 0)
                k = i18n_language_find(cmdline);
        /* The live system's language, when it is one we have: the first variable that is set
         * decides, as for gettext itself (LANG=de_DE.UTF-8 with LC_ALL=C is English). */
        for (size_t i = 0; k < 0 && i < ELEMENTSOF(env); i++) {
                const char *v = getenv(env[i]);
                if (isempty(v))
                        continue;
                k = i18n_language_find(v);
                if (k < 0)
                        k = 0;
        }
        return k < 0 ? 0 : (size_t) k;
}

static bool answer_is(const char *a, const char *letter, const char *word, const char *local_letter, const char *local_word) {
        return a && (strcasecmp(a, letter) == 0 || strcasecmp(a, word) == 0 || strcasecmp(a, local_letter) == 0 ||
                     strcasecmp(a, local_word) == 0);
}

bool i18n_answer_is_yes(const char *a) {
        /* TRANSLATORS: the letter typed for "yes" in answers such as [Y/n] (German j, French o);
         * "y" is always understood too. The same letter as in the questions' [Y/n] and y/n. */
        return answer_is(a, "y", "yes", _("y"), _("yes"));
}

bool i18n_answer_is_no(const char *a) {
        /* TRANSLATORS: the letter typed for "no" in answers such as [Y/n]; "n" is always
         * understood too. */
        return answer_is(a, "n", "no", _("n"), _("no"));
}
