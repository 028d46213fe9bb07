/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fileio.h"
#include "fsread.h"
#include "i18n.h"
#include "imagedefs.h"
#include "log.h"
#include "size.h"
#include "uuid.h"

/* One "Key=Value" of a file, with its section; the callback returns < 0 to stop. */
typedef int (*IniCallback)(const char *file, const char *section, const char *key, const char *value, void *userdata);

static char *strip(char *s) {
        char *e;

        while (isspace((unsigned char) *s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char) e[-1]))
                e--;
        *e = 0;
        return s;
}

static int ini_parse(const char *file, const char *text, IniCallback cb, void *userdata) {
        _cleanup_(freep) char *buf = strdup(text), *section = NULL;
        unsigned lineno = 0;
        int r;

        if (!buf)
                return -ENOMEM;
        for (char *line = buf; line && *line;) {
                char *eol = strchrnul(line, '\n'), *next = *eol ? eol + 1 : eol, *l, *eq;

                *eol = 0;
                lineno++;
                l = strip(line);
                line = next;
                if (*l == 0 || *l == '#' || *l == ';')
                        continue;
                if (l[strlen(l) - 1] == '\\')
                        return error_setf(-EBADMSG, _("The image's %s continues line %u with a backslash, which imprint does not read."),
                                          file, lineno);
                if (*l == '[') {
                        size_t n = strlen(l);
                        if (n < 3 || l[n - 1] != ']')
                                return error_setf(-EBADMSG, _("The image's %s is malformed: line %u is not a [section] header."), file,
                                                  lineno);
                        free(section);
                        section = strndup(l + 1, n - 2);
                        if (!section)
                                return -ENOMEM;
                        continue;
                }
                eq = strchr(l, '=');
                if (!eq)
                        return error_setf(-EBADMSG, _("The image's %s is malformed: line %u is not of the form Key=Value."), file, lineno);
                *eq = 0;
                r = cb(file, section ?: "", strip(l), strip(eq + 1), userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_boolean(const char *v) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" }, *const no[] = { "0", "no", "n", "false", "f", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(v, yes[i]) == 0)
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(v, no[i]) == 0)
                        return 0;
        return -EINVAL;
}

static int invalid_value(const char *file, const char *key, const char *value) {
        return error_setf(-EBADMSG, _("The image's %s has an invalid value %s=%s."), file, key, value);
}

PartitionRole image_defs_parse_type(const char *s) {
        _cleanup_(freep) char *copy = NULL;
        sd_id128_t id;
        PartitionRole role;

        if (!s || !*s)
                return _ROLE_INVALID;
        if (uuid_parse(s, &id) >= 0) {
                const DpsType *t = dps_type_from_uuid(id);
                return t ? t->role : _ROLE_INVALID;
        }
        role = partition_role_from_string(s);
        if (role >= 0)
                return role;
        /* "usr-x86-64-verity" → "usr-verity": drop an architecture (or "-native") infix/suffix. */
        copy = strdup(s);
        if (!copy)
                return _ROLE_INVALID;
        for (int a = -1; a < _ARCH_MAX; a++) {
                char needle[32];
                char *p;

                snprintf(needle, sizeof(needle), "-%s", a < 0 ? "native" : architecture_to_string((Architecture) a));
                p = strstr(copy, needle);
                if (!p)
                        continue;
                size_t n = strlen(needle);
                if (p[n] != 0 && p[n] != '-')
                        continue;
                memmove(p, p + n, strlen(p + n) + 1);
                return partition_role_from_string(copy);
        }
        return _ROLE_INVALID;
}

/* Label=: %A is IMAGE_VERSION, %% a percent sign; other specifiers stay as they are. */
static int expand_label(const char *v, const char *image_version, char **ret) {
        size_t cap = strlen(v) + (image_version ? strlen(image_version) * 4 : 0) + 1, n = 0;
        char *out = malloc(cap);

        if (!out)
                return -ENOMEM;
        for (const char *p = v; *p; p++) {
                if (p[0] == '%' && p[1] == 'A' && image_version) {
                        size_t l = strlen(image_version);
                        if (n + l + 1 > cap) {
                                char *o = realloc(out, cap = n + l + strlen(p) + 1);
                                if (!o) {
                                        free(out);
                                        return -ENOMEM;
                                }
                                out = o;
                        }
                        memcpy(out + n, image_version, l);
                        n += l;
                        p++;
                } else if (p[0] == '%' && p[1] == '%') {
                        out[n++] = '%';
                        p++;
                } else
                        out[n++] = *p;
        }
        out[n] = 0;
        *ret = out;
        return 0;
}

typedef struct RepartCtx {
        ImageRepartDef *def;
        const char *image_version;
        bool has_type;
} RepartCtx;

static int repart_cb(const char *file, const char *section, const char *key, const char *value, void *userdata) {
        RepartCtx *c = userdata;
        ImageRepartDef *d = c->def;
        int r;

        if (!streq(section, "Partition"))
                return 0;
        if (streq(key, "Type")) {
                d->role = image_defs_parse_type(value);
                if (d->role < 0)
                        d->role = ROLE_OTHER;
                c->has_type = true;
        } else if (streq(key, "Label")) {
                free(d->label);
                d->label = NULL;
                if (*value) {
                        r = expand_label(value, c->image_version, &d->label);
                        if (r < 0)
                                return r;
                }
        } else if (streq(key, "SizeMinBytes") || streq(key, "SizeMaxBytes")) {
                uint64_t v;
                if (parse_size(value, &v) < 0)
                        return invalid_value(file, key, value);
                *(streq(key, "SizeMinBytes") ? &d->size_min : &d->size_max) = v;
        } else if (streq(key, "Format")) {
                free(d->format);
                d->format = *value ? strdup(value) : NULL;
                if (*value && !d->format)
                        return -ENOMEM;
        } else if (streq(key, "FactoryReset")) {
                r = parse_boolean(value);
                if (r < 0)
                        return invalid_value(file, key, value);
                d->factory_reset = r;
        }
        return 0;
}

void image_repart_def_done(ImageRepartDef *d) {
        if (!d)
                return;
        free(d->file);
        free(d->label);
        free(d->format);
        *d = (ImageRepartDef) { .role = _ROLE_INVALID };
}

int image_repart_def_parse(const char *file, const char *text, const char *image_version, ImageRepartDef *ret) {
        ImageRepartDef d = { .role = _ROLE_INVALID };
        RepartCtx c = { .def = &d, .image_version = image_version };
        int r;

        d.file = strdup(file);
        if (!d.file)
                return -ENOMEM;
        r = ini_parse(file, text, repart_cb, &c);
        if (r >= 0 && !c.has_type)
                r = error_setf(-EBADMSG, _("The image's %s has no Type= in its [Partition] section."), file);
        if (r >= 0 && d.size_max > 0 && d.size_min > d.size_max)
                r = error_setf(-EBADMSG, _("The image's %s asks for SizeMinBytes= larger than SizeMaxBytes=."), file);
        if (r < 0) {
                image_repart_def_done(&d);
                return r;
        }
        *ret = d;
        return 0;
}

/* Adds the space-separated words of value to a NULL-terminated list; an empty value empties it. */
static int strv_extend_words(char ***list, const char *value) {
        size_t n = 0;

        if (!*value) {
                strv_free(*list);
                *list = NULL;
                return 0;
        }
        while (*list && (*list)[n])
                n++;
        for (const char *p = value; *p;) {
                size_t len;
                char **l;

                while (isspace((unsigned char) *p))
                        p++;
                if (!*p)
                        break;
                len = strcspn(p, " \t");
                /* A word in quotes loses them, as systemd's word splitting does. */
                l = realloc(*list, (n + 2) * sizeof(char *));
                if (!l)
                        return -ENOMEM;
                *list = l;
                if (len >= 2 && (p[0] == '"' || p[0] == '\'') && p[len - 1] == p[0])
                        l[n] = strndup(p + 1, len - 2);
                else
                        l[n] = strndup(p, len);
                if (!l[n])
                        return -ENOMEM;
                l[++n] = NULL;
                p += len;
        }
        return 0;
}

static int parse_int_value(const char *file, const char *key, const char *value, int *ret) {
        char *end;
        long v;

        errno = 0;
        v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < 0 || v > 1000000)
                return invalid_value(file, key, value);
        *ret = (int) v;
        return 0;
}

static int transfer_cb(const char *file, const char *section, const char *key, const char *value, void *userdata) {
        ImageTransfer *t = userdata;
        int r;

        if (!streq(section, "Target"))
                return 0;
        if (streq(key, "Type")) {
                free(t->target_type);
                if (!(t->target_type = strdup(value)))
                        return -ENOMEM;
        } else if (streq(key, "MatchPartitionType")) {
                t->partition_role = image_defs_parse_type(value);
        } else if (streq(key, "MatchPattern")) {
                r = strv_extend_words(&t->match_patterns, value);
                if (r < 0)
                        return r;
        } else if (streq(key, "Path") || streq(key, "PathRelativeTo")) {
                char **field = streq(key, "Path") ? &t->path : &t->path_relative_to;
                free(*field);
                *field = *value ? strdup(value) : NULL;
                if (*value && !*field)
                        return -ENOMEM;
        } else if (streq(key, "TriesLeft") || streq(key, "TriesDone")) {
                r = parse_int_value(file, key, value, streq(key, "TriesLeft") ? &t->tries_left : &t->tries_done);
                if (r < 0)
                        return r;
        } else if (streq(key, "ReadOnly") || streq(key, "NoAuto") || streq(key, "GrowFileSystem")) {
                r = parse_boolean(value);
                if (r < 0)
                        return invalid_value(file, key, value);
                *(streq(key, "ReadOnly") ? &t->read_only : streq(key, "NoAuto") ? &t->no_auto : &t->growfs) = r;
        }
        return 0;
}

void image_transfer_done(ImageTransfer *t) {
        if (!t)
                return;
        free(t->file);
        free(t->target_type);
        strv_free(t->match_patterns);
        free(t->path);
        free(t->path_relative_to);
        *t = (ImageTransfer) { .partition_role = _ROLE_INVALID, .tries_left = -1, .tries_done = -1, .read_only = -1, .no_auto = -1, .growfs = -1 };
}

int image_transfer_parse(const char *file, const char *text, ImageTransfer *ret) {
        ImageTransfer t = { .partition_role = _ROLE_INVALID, .tries_left = -1, .tries_done = -1, .read_only = -1, .no_auto = -1, .growfs = -1 };
        int r;

        t.file = strdup(file);
        if (!t.file)
                return -ENOMEM;
        r = ini_parse(file, text, transfer_cb, &t);
        if (r >= 0 && !t.target_type)
                r = error_setf(-EBADMSG, _("The image's %s has no Type= in its [Target] section."), file);
        if (r >= 0 && (!t.match_patterns || !t.match_patterns[0]))
                r = error_setf(-EBADMSG, _("The image's %s has no MatchPattern= in its [Target] section."), file);
        if (r < 0) {
                image_transfer_done(&t);
                return r;
        }
        *ret = t;
        return 0;
}

const ImageRepartDef *image_defs_find(const ImageRepartDef *defs, size_t n, PartitionRole role) {
        for (size_t i = 0; i < n; i++)
                if (defs[i].role == role && !streq_ptr(defs[i].label, "_empty"))
                        return &defs[i];
        return NULL;
}

static uint64_t def_size(const ImageRepartDef *d) {
        uint64_t s = d->size_min;

        if (d->size_max > 0 && s > d->size_max)
                s = d->size_max;
        return s;
}

uint64_t image_defs_slot_size(const ImageRepartDef *defs, size_t n, PartitionRole role) {
        const ImageRepartDef *a;

        for (size_t i = 0; i < n; i++)
                if (defs[i].role == role && streq_ptr(defs[i].label, "_empty") && def_size(&defs[i]) > 0)
                        return def_size(&defs[i]);
        a = image_defs_find(defs, n, role);
        return a ? def_size(a) : 0;
}

static bool path_is_efi_linux(const char *p) {
        size_t n;

        if (!p)
                return false;
        while (*p == '/')
                p++;
        n = strlen(p);
        while (n > 0 && p[n - 1] == '/')
                n--;
        return n == strlen("EFI/Linux") && strncasecmp(p, "EFI/Linux", n) == 0;
}

const ImageTransfer *image_find_transfer(const Image *img, PartitionRole role) {
        for (size_t i = 0; i < img->n_transfers; i++) {
                const ImageTransfer *t = &img->transfers[i];

                if (role >= 0 && streq_ptr(t->target_type, "partition") && t->partition_role == role)
                        return t;
                if (role < 0 && streq_ptr(t->target_type, "regular-file") && path_is_efi_linux(t->path))
                        return t;
        }
        return NULL;
}

int image_pattern_instantiate(const char *pattern, const char *version, int tries_left, int tries_done, char **ret) {
        char *out = NULL;
        size_t size = 0;
        FILE *f;

        if (!pattern || !version)
                return -EINVAL;
        f = open_memstream(&out, &size);
        if (!f)
                return -ENOMEM;
        for (const char *p = pattern; *p; p++) {
                if (*p != '@') {
                        fputc(*p, f);
                        continue;
                }
                switch (p[1]) {
                case 'v':
                        fputs(version, f);
                        break;
                case 'l':
                        fprintf(f, "%d", tries_left >= 0 ? tries_left : 3);
                        break;
                case 'd':
                        fprintf(f, "%d", tries_done >= 0 ? tries_done : 0);
                        break;
                default:
                        /* @u, @a, @h, … name what imprint cannot know before installing. */
                        fclose(f);
                        free(out);
                        return -EINVAL;
                }
                p++;
        }
        if (fclose(f) != 0) {
                free(out);
                return -ENOMEM;
        }
        *ret = out;
        return 0;
}
