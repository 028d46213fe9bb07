/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "i18n.h"
#include "json-strict.h"
#include "log.h"
#include "record.h"

static inline void json_object_putp(json_object **j) {
        if (*j)
                json_object_put(*j);
}

InstallRecord *install_record_free(InstallRecord *r) {
        if (!r)
                return NULL;
        free(r->imprint_version);
        free(r->installed_at);
        plan_free(r->plan);
        free(r);
        return NULL;
}

/* RFC 3339 ("2026-12-03T10:15:00Z"), or compact for file names ("20261203T101500Z"). */
static int utc_now(char *buf, size_t size, bool compact) {
        struct tm tm;
        time_t t = time(NULL);

        if (!gmtime_r(&t, &tm))
                return -EINVAL;
        if ((compact ? strftime(buf, size, "%Y%m%dT%H%M%SZ", &tm) : strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm)) == 0)
                return -EINVAL;
        return 0;
}

static int record_dir_make(const FsLocation *esp) {
        const char *dirs[] = { RECORD_DIR, NULL };
        return fat_mkdirs(esp, dirs);
}

static int write_json(const FsLocation *esp, const char *path, json_object *j) {
        const char *text;
        int r;

        text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
        if (!text)
                return -ENOMEM;
        r = record_dir_make(esp);
        if (r < 0)
                return error_prefixf(r, _("Cannot create %s on the ESP of %s"), RECORD_DIR, esp->disk);
        r = fat_write_file(esp, path, text, strlen(text));
        if (r < 0)
                return error_prefixf(r, _("Cannot write %s on the ESP of %s"), path, esp->disk);
        return 0;
}

static int install_record_write_full(const Plan *p, const char *version, const char *installed_at, const FsLocation *esp) {
        _cleanup_(json_object_putp) json_object *j = json_object_new_object();
        json_object *plan;
        int r;

        if (!j)
                return -ENOMEM;
        plan = plan_to_json(p);
        if (!plan)
                return -ENOMEM;
        json_object_object_add(j, "formatVersion", json_object_new_int(RECORD_FORMAT_VERSION));
        json_object_object_add(j, "imprintVersion", json_object_new_string(version));
        json_object_object_add(j, "installedAt", json_object_new_string(installed_at));
        json_object_object_add(j, "plan", plan);
        r = write_json(esp, RECORD_INSTALL_PATH, j);
        if (r < 0)
                return r;
        log_info("wrote the install record %s on the ESP of %s", RECORD_INSTALL_PATH, esp->disk);
        return 0;
}

int record_install_write(const Plan *p, const FsLocation *esp) {
        char now[32];
        int r;

        r = utc_now(now, sizeof(now), false);
        if (r < 0)
                return r;
        return install_record_write_full(p, IMPRINT_VERSION, now, esp);
}

int record_install_update(const InstallRecord *r, const FsLocation *esp) {
        return install_record_write_full(r->plan, r->imprint_version ?: IMPRINT_VERSION, r->installed_at ?: "?", esp);
}

static int read_json(const FsLocation *esp, const char *path, json_object **ret) {
        _cleanup_(freep) void *buf = NULL;
        _cleanup_(freep) char *what = NULL;
        size_t size = 0;
        int r;

        r = fs_read_file(esp, path, &buf, &size);
        if (r == -ENOENT)
                return -ENOENT;
        if (r < 0)
                return error_setf(r, _("Cannot read %s on the ESP of %s: %s"), path, esp->disk, strerror(-r));
        if (size > JSON_FILE_MAX)
                return error_setf(-EBADMSG, _("%s on the ESP of %s is too large to be an imprint record."), path, esp->disk);
        if (asprintf(&what, "the record %s on the ESP of %s", path, esp->disk) < 0)
                return -ENOMEM;
        r = json_parse_strict(buf ?: "", size, what, ret);
        if (r < 0) {
                char why[2048];

                /* Copied first: error_setf() writes where error_message() points. */
                snprintf(why, sizeof(why), "%s", error_message() ?: _("The record is not valid JSON."));
                return error_setf(-EBADMSG, "%s", why);
        }
        return 0;
}

int record_install_read(const FsLocation *esp, InstallRecord **ret) {
        _cleanup_(json_object_putp) json_object *j = NULL;
        _cleanup_(install_record_freep) InstallRecord *rec = NULL;
        json_object *v = NULL, *plan = NULL;
        int r;

        r = read_json(esp, RECORD_INSTALL_PATH, &j);
        if (r < 0)
                return r;
        if (!json_object_is_type(j, json_type_object) || !json_object_object_get_ex(j, "formatVersion", &v) ||
            !json_object_is_type(v, json_type_int))
                return error_setf(-EBADMSG, _("%s on the ESP of %s is not an imprint install record."), RECORD_INSTALL_PATH, esp->disk);
        if (json_object_get_int64(v) != RECORD_FORMAT_VERSION)
                return error_setf(-EBADMSG, _("%s on the ESP of %s has format version %" PRId64 ", which this imprint does not read."),
                                  RECORD_INSTALL_PATH, esp->disk, (int64_t) json_object_get_int64(v));
        rec = calloc(1, sizeof(InstallRecord));
        if (!rec)
                return -ENOMEM;
        rec->format_version = RECORD_FORMAT_VERSION;
        if (json_object_object_get_ex(j, "imprintVersion", &v) && json_object_is_type(v, json_type_string) &&
            !(rec->imprint_version = strdup(json_object_get_string(v))))
                return -ENOMEM;
        if (json_object_object_get_ex(j, "installedAt", &v) && json_object_is_type(v, json_type_string) &&
            !(rec->installed_at = strdup(json_object_get_string(v))))
                return -ENOMEM;
        if (!json_object_object_get_ex(j, "plan", &plan) || !json_object_is_type(plan, json_type_object))
                return error_setf(-EBADMSG, _("%s on the ESP of %s holds no plan."), RECORD_INSTALL_PATH, esp->disk);
        r = plan_from_json(plan, &rec->plan);
        if (r < 0) {
                char why[1024];

                snprintf(why, sizeof(why), "%s", error_message() ?: strerror(-r));
                return error_setf(-EBADMSG, _("The plan in %s on the ESP of %s cannot be read: %s"), RECORD_INSTALL_PATH, esp->disk, why);
        }
        *ret = TAKE_PTR(rec);
        return 0;
}

int record_reset_name(char **ret) {
        char now[32];
        char *s;
        int r;

        r = utc_now(now, sizeof(now), true);
        if (r < 0)
                return r;
        if (asprintf(&s, "reset-%s.json", now) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static bool is_reset_name(const char *n) {
        size_t l = strlen(n);

        return strncmp(n, "reset-", 6) == 0 && l > 11 && streq(n + l - 5, ".json") && !strchr(n, '/');
}

int record_reset_write(const FsLocation *esp, const char *name, json_object *audit) {
        _cleanup_(freep) char *path = NULL;

        if (!name || !is_reset_name(name))
                return -EINVAL;
        if (asprintf(&path, RECORD_DIR "/%s", name) < 0)
                return -ENOMEM;
        return write_json(esp, path, audit);
}

int record_reset_last(const FsLocation *esp, json_object **ret, char **ret_name) {
        _cleanup_(freep) char *path = NULL;
        char **names = NULL;
        const char *newest = NULL;
        int r;

        r = fs_list_dir(esp, RECORD_DIR, &names);
        if (r < 0)
                return r == -ENOMEM ? r : -ENOENT;
        /* The UTC start time in the name sorts them; two resets in the same second cannot be. */
        for (char **n = names; *n; n++)
                if (is_reset_name(*n) && (!newest || strcmp(*n, newest) > 0))
                        newest = *n;
        if (!newest) {
                strv_free(names);
                return -ENOENT;
        }
        if (asprintf(&path, RECORD_DIR "/%s", newest) < 0) {
                strv_free(names);
                return -ENOMEM;
        }
        if (ret_name && !(*ret_name = strdup(newest))) {
                strv_free(names);
                return -ENOMEM;
        }
        strv_free(names);
        r = read_json(esp, path, ret);
        if (r >= 0 && !json_object_is_type(*ret, json_type_object)) {
                json_object_put(*ret);
                *ret = NULL;
                r = error_setf(-EBADMSG, _("%s on the ESP of %s is not an imprint audit record."), path, esp->disk);
        }
        if (r < 0 && ret_name)
                *ret_name = mfree(*ret_name);
        return r;
}

static const char *audit_string(json_object *o, const char *key) {
        json_object *v = NULL;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

int record_reset_summary(json_object *audit, char **ret) {
        const char *status = audit_string(audit, "status"), *started = audit_string(audit, "startedAt"),
                   *entry = audit_string(audit, "entryPoint"), *error = audit_string(audit, "error");
        _cleanup_(freep) char *erased = NULL, *kept = NULL;
        const char *from;
        char when[32] = "?";
        json_object *parts = NULL;
        int k;

        if (!json_object_is_type(audit, json_type_object) || !status)
                return -EBADMSG;

        /* "2026-12-03T10:15:00Z" → "2026-12-03 10:15 UTC" */
        if (started && strlen(started) >= 16)
                snprintf(when, sizeof(when), "%.10s %.5s UTC", started, started + 11);
        from = streq_ptr(entry, "boot-menu") ? _("from the boot menu")
             : streq_ptr(entry, "unattended") ? _("unattended")
             : _("from the live medium");

        if (json_object_object_get_ex(audit, "partitions", &parts) && json_object_is_type(parts, json_type_array))
                for (size_t i = 0; i < json_object_array_length(parts); i++) {
                        json_object *p = json_object_array_get_idx(parts, i);
                        const char *role = audit_string(p, "role"), *action = audit_string(p, "action"), *method = audit_string(p, "method");
                        char **into;
                        char item[128];

                        if (!role || !action)
                                continue;
                        if (streq(action, "erased"))
                                into = &erased;
                        else if (streq(action, "reenrolled"))
                                into = &kept;
                        else
                                continue;
                        snprintf(item, sizeof(item), "%s%s%s%s", role, method ? " (" : "", method ?: "", method ? ")" : "");
                        if (!*into)
                                *into = strdup(item);
                        else {
                                char *n = NULL;
                                if (asprintf(&n, "%s, %s", *into, item) < 0)
                                        n = NULL;
                                free(*into);
                                *into = n;
                        }
                        if (!*into)
                                return -ENOMEM;
                }

        if (streq(status, "running"))
                /* TRANSLATORS: the time, where it was started from; then what was erased. */
                k = asprintf(ret, _("reset on %s %s was interrupted: resume it from the recovery entry or with imprint reset"), when, from);
        else if (streq(status, "failed"))
                k = asprintf(ret, _("reset on %s %s failed: %s"), when, from, error ?: _("unknown error"));
        else
                /* TRANSLATORS: the time, where it was started from, what was erased (with the method), what was kept. */
                k = asprintf(ret, _("reset on %s %s: erased %s%s%s (complete)"), when, from, erased ?: _("nothing"),
                             kept ? _("; home kept and re-enrolled: ") : "", kept ?: "");
        return k < 0 ? -ENOMEM : 0;
}
