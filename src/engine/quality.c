/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pwquality.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "i18n.h"
#include "log.h"
#include "quality.h"

/* Nothing a cracklib dictionary holds, nor anything its rules object to (length, variety,
 * sequences): cracklib refuses it only when it cannot load the dictionary. */
static const char dictionary_probe[] = "vQ3#Lm8!tZ6@xR1%";

/* The verdict about the last dictionary path asked about (NULL: cracklib's default). */
static struct {
        bool known;
        char *path;
        bool missing;
} dictionary;
static bool warned;
static bool last_without_dictionary;

static void settings_freep(pwquality_settings_t **pq) {
        if (*pq)
                pwquality_free_settings(*pq);
}

static bool path_equal(const char *a, const char *b) {
        return a == b || (a && b && streq(a, b));
}

/* Asks cracklib, through libpwquality's built-in settings and the same dictionary path, about
 * dictionary_probe. Returns 1 when the dictionary cannot be used, 0 when it can. */
static int dictionary_probe_missing(const char *path) {
        _cleanup_(settings_freep) pwquality_settings_t *pq = NULL;
        void *auxerror = NULL;
        int r;

        pq = pwquality_default_settings();
        if (!pq)
                return -ENOMEM;
        if (path && pwquality_set_str_value(pq, PWQ_SETTING_DICT_PATH, path) < 0)
                return -ENOMEM;
        r = pwquality_check(pq, dictionary_probe, NULL, NULL, &auxerror);
        if (r == PWQ_ERROR_MEM_ALLOC)
                return -ENOMEM;
        if (r != PWQ_ERROR_CRACKLIB_CHECK)
                return 0;
        if (!warned) {
                /* Once per process: the TUI checks at every key typed. */
                log_warning("The password dictionary (cracklib) is missing, so passwords are not checked against it "
                            "(cracklib at %s: %s). Install cracklib-runtime to check them.",
                            path ?: "its default path", auxerror ? (const char *) auxerror : "refuses every password");
                warned = true;
        }
        return 1;
}

/* Whether the dictionary at path (NULL: the default) cannot be used; asked once per path. */
static int dictionary_missing(const char *path) {
        char *copy = NULL;
        int r;

        if (dictionary.known && path_equal(dictionary.path, path))
                return dictionary.missing;
        r = dictionary_probe_missing(path);
        if (r < 0)
                return r;
        if (path && !(copy = strdup(path)))
                return -ENOMEM;
        free(dictionary.path);
        dictionary.path = copy;
        dictionary.missing = r > 0;
        dictionary.known = true;
        return r;
}

int password_quality_check_with(const char *password, const char *user, const char *const *settings) {
        _cleanup_(settings_freep) pwquality_settings_t *pq = NULL;
        const char *path = NULL;
        void *auxerror = NULL;
        char buf[PWQ_MAX_ERROR_MESSAGE_LEN];
        int dict_check = 0, r;

        last_without_dictionary = false;
        pq = pwquality_default_settings();
        if (!pq)
                return error_setf(-ENOMEM, "Cannot check the password: %s", strerror(ENOMEM));
        /* A missing or broken configuration file leaves the built-in defaults, as in passwd. */
        (void) pwquality_read_config(pq, NULL, NULL);
        for (const char *const *s = settings; s && *s; s++)
                if (pwquality_set_option(pq, *s) < 0)
                        return error_setf(-EINVAL, "libpwquality does not take the setting \"%s\".", *s);

        if (pwquality_get_int_value(pq, PWQ_SETTING_DICT_CHECK, &dict_check) < 0)
                dict_check = 1;
        if (dict_check) {
                (void) pwquality_get_str_value(pq, PWQ_SETTING_DICT_PATH, &path);
                r = dictionary_missing(path);
                if (r < 0)
                        return error_setf(r, "Cannot check the password: %s", strerror(-r));
                if (r > 0) {
                        /* Every other rule still applies: only cracklib's part is left out. */
                        if (pwquality_set_int_value(pq, PWQ_SETTING_DICT_CHECK, 0) < 0)
                                return error_setf(-ENOMEM, "Cannot check the password: %s", strerror(ENOMEM));
                        last_without_dictionary = true;
                }
        }

        r = pwquality_check(pq, password, NULL, user, &auxerror);
        if (r == PWQ_ERROR_MEM_ALLOC)
                return error_setf(-ENOMEM, "Cannot check the password: %s", strerror(ENOMEM));
        if (r < 0)
                return error_setf(-EPERM, "%s.", pwquality_strerror(buf, sizeof(buf), r, auxerror));
        return r;
}

int password_quality_check(const char *password, const char *user) {
        return password_quality_check_with(password, user, NULL);
}

const char *password_quality_note(void) {
        return last_without_dictionary ? _("The password dictionary (cracklib) is missing, so passwords are not checked against it.")
                                       : NULL;
}
