/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "error.h"
#include "i18n.h"
#include "macro.h"
#include "tpm2.h"
#include "validate.h"

static bool has_control_character(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return true;
        return false;
}

bool user_name_is_valid(const char *name) {
        static const char *const reserved[] = { "root", "nobody", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail",
                                                "news", "uucp", "proxy", "www-data", "backup", "list", "irc", "systemd-network" };
        size_t n;

        if (isempty(name))
                return false;
        n = strlen(name);
        if (n > 31 || !(islower((unsigned char) name[0]) || name[0] == '_'))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!islower((unsigned char) name[i]) && !isdigit((unsigned char) name[i]) && name[i] != '_' && name[i] != '-')
                        return false;
        for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                if (streq(name, reserved[i]))
                        return false;
        return true;
}

int validate_user_name(const char *name) {
        if (!user_name_is_valid(name))
                return error_setf(-EINVAL,
                                  _("\"%s\" cannot be a user name: use lower-case letters, digits, '_' and '-', start with a letter, "
                                    "at most 31 characters, and not a system account's name."),
                                  name ?: "");
        return 0;
}

int validate_real_name(const char *name) {
        if (!name || strchr(name, ':') || has_control_character(name) || strlen(name) > 256)
                return error_setf(-EINVAL, _("The real name must not contain ':' or control characters such as line breaks, "
                                             "and must not be longer than 256 bytes."));
        return 0;
}

static bool hostname_is_valid(const char *h) {
        size_t label = 0, n = strlen(h);

        if (n == 0 || n > 64 || h[0] == '.' || h[n - 1] == '.')
                return false;
        for (size_t i = 0; i < n; i++) {
                if (h[i] == '.') {
                        if (label == 0 || h[i - 1] == '-')
                                return false;
                        label = 0;
                        continue;
                }
                if (!isalnum((unsigned char) h[i]) && !(h[i] == '-' && label > 0))
                        return false;
                label++;
        }
        return h[n - 1] != '-';
}

static bool word_is_valid(const char *s, const char *extra) {
        if (isempty(s) || strlen(s) > 128 || strstr(s, "..") || s[0] == '/' || s[0] == '-')
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr(extra, *p))
                        return false;
        return true;
}

int validate_hostname(const char *hostname) {
        if (!hostname || !hostname_is_valid(hostname))
                return error_setf(-EINVAL, _("\"%s\" is not a valid hostname (letters, digits and inner dashes, dot-separated, up to 64)."),
                                  hostname ?: "");
        return 0;
}

int validate_timezone(const char *timezone) {
        if (!word_is_valid(timezone, "/_-+"))
                return error_setf(-EINVAL, _("\"%s\" is not a timezone name such as Europe/Berlin."), timezone ?: "");
        return 0;
}

int validate_locale(const char *locale) {
        if (!word_is_valid(locale, "._-@"))
                return error_setf(-EINVAL, _("\"%s\" is not a locale name such as de_DE.UTF-8."), locale ?: "");
        return 0;
}

int validate_keymap(const char *keymap) {
        if (!word_is_valid(keymap, "._-"))
                return error_setf(-EINVAL, _("\"%s\" is not a keymap name such as de or us."), keymap ?: "");
        return 0;
}

int settings_validate(const PlanSettings *s) {
        int r = 0;

        if (s->hostname)
                r = validate_hostname(s->hostname);
        if (r >= 0 && s->timezone)
                r = validate_timezone(s->timezone);
        if (r >= 0 && s->locale)
                r = validate_locale(s->locale);
        if (r >= 0 && s->keymap)
                r = validate_keymap(s->keymap);
        return r;
}

int validate_partition_label(const char *label) {
        size_t units = 0;

        /* UTF-16 code units: one per character, two for those beyond U+FFFF (4-byte UTF-8). */
        for (const unsigned char *p = (const unsigned char *) (label ?: ""); *p; p++)
                if ((*p & 0xC0) != 0x80)
                        units += *p >= 0xF0 ? 2 : 1;
        if (!label || units > 36 || has_control_character(label))
                return error_setf(-EINVAL, _("\"%s\" cannot be a partition label: a GPT partition name holds at most 36 characters, "
                                             "and no control characters."),
                                  label ?: "");
        return 0;
}

int validate_seed(const char *seed) {
        if (isempty(seed) || has_control_character(seed))
                return error_setf(-EINVAL, _("The seed must not be empty or contain control characters."));
        return 0;
}

int validate_tpm2_tcti(const char *tcti) {
        if (!tcti || !tpm2_tcti_is_safe(tcti) || has_control_character(tcti))
                return error_setf(-EINVAL, _("\"%s\" is not a device:, swtpm: or mssim: TCTI."), tcti ?: "");
        return 0;
}
