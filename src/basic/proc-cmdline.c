/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "macro.h"
#include "proc-cmdline.h"

/* Copies the next word of *p (quotes removed) into a new string; NULL at the end. */
static int next_word(const char **p, char **ret) {
        const char *s = *p;
        char *w, *o;
        bool quoted = false;

        while (isspace((unsigned char) *s))
                s++;
        if (!*s) {
                *ret = NULL;
                return 0;
        }
        w = o = malloc(strlen(s) + 1);
        if (!w)
                return -ENOMEM;
        for (; *s && (quoted || !isspace((unsigned char) *s)); s++) {
                if (*s == '"')
                        quoted = !quoted;
                else
                        *o++ = *s;
        }
        *o = 0;
        *p = s;
        *ret = w;
        return 1;
}

int cmdline_get_key(const char *line, const char *key, char **ret_value) {
        _cleanup_(freep) char *found = NULL;
        size_t n = strlen(key);
        const char *p = line;
        int r;

        for (;;) {
                _cleanup_(freep) char *w = NULL;

                r = next_word(&p, &w);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (strncmp(w, key, n) == 0 && w[n] == '=') {
                        free(found);
                        found = strdup(w + n + 1);
                        if (!found)
                                return -ENOMEM;
                }
        }
        if (!found)
                return 0;
        *ret_value = TAKE_PTR(found);
        return 1;
}

int proc_cmdline_get_key(const char *key, char **ret_value) {
        _cleanup_(freep) char *line = NULL;
        int r;

        r = read_full_file("/proc/cmdline", &line, NULL);
        if (r < 0)
                return r;
        return cmdline_get_key(line, key, ret_value);
}
