/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Which machine, which disk (machine.h): the "machines" allowlist, "target" rules and the
 * countdown of an OEM line's configuration. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "error.h"
#include "interrupt.h"
#include "log.h"
#include "machine.h"
#include "size.h"

/* The transports a rule may name (disk.h's Transport, as its string table spells them). "loop"
 * is for tests (IMPRINT_TARGET_ALLOW_LOOP=1). */
static const Transport rule_transports[] = {
        TRANSPORT_NVME, TRANSPORT_SATA, TRANSPORT_USB, TRANSPORT_VIRTIO, TRANSPORT_SCSI, TRANSPORT_MMC, TRANSPORT_LOOP,
};

static void strv_free_local(char **l) {
        for (char **i = l; i && *i; i++)
                free(*i);
        free(l);
}

static size_t strv_len(char *const *l) {
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

static int strv_push(char ***l, const char *s) {
        size_t n = strv_len(*l);
        char **m = realloc(*l, (n + 2) * sizeof(char *));

        if (!m)
                return -ENOMEM;
        *l = m;
        m[n] = strdup(s);
        m[n + 1] = NULL;
        return m[n] ? 0 : -ENOMEM;
}

/* ---- configuration ------------------------------------------------------------------------- */

TargetRule *target_rule_free(TargetRule *r) {
        if (!r)
                return NULL;
        free(r->by_id);
        free(r->by_path);
        strv_free_local(r->transports);
        free(r);
        return NULL;
}

static void machine_rules_free(MachineRule *m, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(m[i].vendor);
                free(m[i].product);
                free(m[i].sku);
                free(m[i].board);
        }
        free(m);
}

static int rule_string(char **field, json_object *v, const char *key, const char *origin) {
        char *s;

        if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
                return error_setf(-EINVAL, "%s: \"%s\" must be a non-empty string (a glob such as \"LENOVO*\").", origin, key);
        s = strdup(json_object_get_string(v));
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

static int rule_size(uint64_t *field, json_object *v, const char *key, const char *origin) {
        uint64_t u;

        if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) > 0)
                u = (uint64_t) json_object_get_int64(v);
        else if (!json_object_is_type(v, json_type_string) || parse_size(json_object_get_string(v), &u) < 0 || u == 0)
                return error_setf(-EINVAL, "%s: \"%s\" must be a size such as \"100G\" or \"2T\".", origin, key);
        *field = u;
        return 0;
}

static int rule_transport(TargetRule *t, json_object *v, const char *origin) {
        Transport tr;

        if (!json_object_is_type(v, json_type_string))
                return error_setf(-EINVAL, "%s: \"target.transport\" must be a transport or a list of them, such as \"nvme\" or [\"nvme\", \"sata\"].",
                                  origin);
        tr = transport_from_string(json_object_get_string(v));
        for (size_t i = 0; i < ELEMENTSOF(rule_transports); i++)
                if (tr == rule_transports[i])
                        return strv_push(&t->transports, json_object_get_string(v));
        return error_setf(-EINVAL, "%s: \"target.transport\": \"%s\" is not a transport; use nvme, sata, usb, virtio, scsi or mmc.", origin,
                          json_object_get_string(v));
}

static int parse_target_rule(json_object *o, const char *origin, TargetRule **ret) {
        TargetRule *t;
        int r = 0;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->rotational = -1;
        json_object_object_foreach(o, key, v) {
                if (streq(key, "byId"))
                        r = rule_string(&t->by_id, v, "target.byId", origin);
                else if (streq(key, "byPath"))
                        r = rule_string(&t->by_path, v, "target.byPath", origin);
                else if (streq(key, "minSize"))
                        r = rule_size(&t->min_size, v, "target.minSize", origin);
                else if (streq(key, "maxSize"))
                        r = rule_size(&t->max_size, v, "target.maxSize", origin);
                else if (streq(key, "rotational")) {
                        if (!json_object_is_type(v, json_type_boolean))
                                r = error_setf(-EINVAL, "%s: \"target.rotational\" must be true or false.", origin);
                        else
                                t->rotational = json_object_get_boolean(v);
                } else if (streq(key, "transport")) {
                        if (json_object_is_type(v, json_type_array)) {
                                if (json_object_array_length(v) == 0)
                                        r = error_setf(-EINVAL, "%s: \"target.transport\" is an empty list; name at least one transport.", origin);
                                for (size_t i = 0; r >= 0 && i < json_object_array_length(v); i++)
                                        r = rule_transport(t, json_object_array_get_idx(v, i), origin);
                        } else
                                r = rule_transport(t, v, origin);
                } else
                        r = error_setf(-EINVAL, "%s: unknown key \"target.%s\".", origin, key);
                if (r < 0)
                        break;
        }
        if (r >= 0 && json_object_object_length(o) == 0)
                r = error_setf(-EINVAL, "%s: \"target\" needs at least one rule: byId, byPath, minSize, maxSize, transport or rotational.", origin);
        if (r >= 0 && t->min_size > 0 && t->max_size > 0 && t->min_size > t->max_size) {
                char a[FORMAT_BYTES_MAX], b[FORMAT_BYTES_MAX];

                r = error_setf(-EINVAL, "%s: \"target.minSize\" (%s) is larger than \"target.maxSize\" (%s), so no disk could match.", origin,
                               format_bytes(a, sizeof(a), t->min_size), format_bytes(b, sizeof(b), t->max_size));
        }
        if (r < 0) {
                target_rule_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

int config_set_target(InstallConfig *c, json_object *v, const char *key, const char *origin) {
        TargetRule *t = NULL;
        char *s = NULL;
        int r;

        if (json_object_is_type(v, json_type_object)) {
                r = parse_target_rule(v, origin, &t);
                if (r < 0)
                        return r;
        } else if (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0) {
                s = strdup(json_object_get_string(v));
                if (!s)
                        return -ENOMEM;
        } else
                return error_setf(-EINVAL,
                                  "%s: \"%s\" must be a disk's path, \"auto\", or an object of rules such as {\"transport\": \"nvme\", \"minSize\": \"100G\"}.",
                                  origin, key);
        /* A later source (the configuration after the defaults) replaces the target, in either form. */
        free(c->target);
        c->target = s;
        target_rule_free(c->target_rule);
        c->target_rule = t;
        return 0;
}

int config_set_machines(InstallConfig *c, json_object *v, const char *origin) {
        MachineRule *m;
        size_t n;
        int r = 0;

        if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0)
                return error_setf(-EINVAL,
                                  "%s: \"machines\" must be a non-empty list of machines such as [{\"vendor\": \"LENOVO\", \"product\": \"21K*\"}].",
                                  origin);
        n = json_object_array_length(v);
        m = calloc(n, sizeof(MachineRule));
        if (!m)
                return -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                json_object *e = json_object_array_get_idx(v, i);
                char name[64];

                if (!json_object_is_type(e, json_type_object) || json_object_object_length(e) == 0) {
                        r = error_setf(-EINVAL, "%s: \"machines[%zu]\" must be an object with at least one of vendor, product, sku, board.",
                                       origin, i);
                        break;
                }
                json_object_object_foreach(e, key, f) {
                        char **field = streq(key, "vendor")    ? &m[i].vendor
                                       : streq(key, "product") ? &m[i].product
                                       : streq(key, "sku")     ? &m[i].sku
                                       : streq(key, "board")   ? &m[i].board
                                                               : NULL;

                        if (!field) {
                                r = error_setf(-EINVAL, "%s: unknown key \"machines[%zu].%s\" (use vendor, product, sku, board).", origin, i, key);
                                break;
                        }
                        snprintf(name, sizeof(name), "machines[%zu].%s", i, key);
                        r = rule_string(field, f, name, origin);
                        if (r < 0)
                                break;
                }
        }
        if (r < 0) {
                machine_rules_free(m, n);
                return r;
        }
        machine_rules_free(c->machines, c->n_machines);
        c->machines = m;
        c->n_machines = n;
        return 0;
}

int config_set_countdown(InstallConfig *c, json_object *v, const char *origin) {
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 || json_object_get_int64(v) > 3600)
                return error_setf(-EINVAL, "%s: \"countdownSeconds\" must be a number from 0 to 3600.", origin);
        c->countdown_sec = (int) json_object_get_int64(v);
        return 0;
}

void config_machine_done(InstallConfig *c) {
        machine_rules_free(c->machines, c->n_machines);
        c->machines = NULL;
        c->n_machines = 0;
        c->target_rule = target_rule_free(c->target_rule);
}

/* ---- which machine ------------------------------------------------------------------------- */

static bool glob_matches(const char *glob, const char *value) {
        return !glob || fnmatch(glob, value ?: "", 0) == 0;
}

bool machine_rule_matches(const MachineRule *m, const DmiInfo *d) {
        return glob_matches(m->vendor, d->sys_vendor) && glob_matches(m->product, d->product_name) &&
               glob_matches(m->sku, d->product_sku) && glob_matches(m->board, d->board_name);
}

/* The console is the unit's stderr (journal+console): a framed block stands out among the JSON
 * lines and the kernel's messages on a serial line. */
static void print_framed(const char *title, const char *body) {
        static const char bar[] = "################################################################################";
        const char *p = body;

        fprintf(stderr, "\n%s\n##\n##  %s\n##\n", bar, title);
        /* Wrap the sentence at word boundaries, 74 columns. */
        while (*p) {
                size_t len = strlen(p), cut = len;

                if (len > 74) {
                        cut = 74;
                        while (cut > 0 && p[cut] != ' ')
                                cut--;
                        if (cut == 0)
                                cut = 74;
                }
                fprintf(stderr, "##  %.*s\n", (int) cut, p);
                p += cut;
                while (*p == ' ')
                        p++;
        }
        fprintf(stderr, "##\n%s\n\n", bar);
        fflush(stderr);
}

static const char *or_none(const char *s) {
        return s ?: "(none)";
}

int machine_check_allowed(const InstallConfig *c, const DmiInfo *d) {
        const char *origin = c->origin ?: "The configuration";
        int r;

        if (c->n_machines == 0)
                return 0;
        if (!d->sys_vendor && !d->product_name && !d->product_sku && !d->board_name) {
                r = error_setf(-EPERM,
                               "This machine has no DMI identity (no vendor, product, SKU or board in /sys/class/dmi/id), and %s "
                               "allows only the machines on its \"machines\" allowlist; nothing was written.",
                               origin);
                print_framed("THIS MACHINE IS NOT ON THE ALLOWLIST - NOTHING WAS WRITTEN", error_message());
                return r;
        }
        for (size_t i = 0; i < c->n_machines; i++)
                if (machine_rule_matches(&c->machines[i], d)) {
                        log_info("This machine (%s %s) matches entry %zu of the \"machines\" allowlist.", or_none(d->sys_vendor),
                                 or_none(d->product_name), i + 1);
                        return 0;
                }
        r = error_setf(-EPERM,
                       "This machine (vendor \"%s\", product \"%s\", SKU \"%s\", board \"%s\") is not on the \"machines\" allowlist of %s; "
                       "nothing was written.",
                       or_none(d->sys_vendor), or_none(d->product_name), or_none(d->product_sku), or_none(d->board_name), origin);
        print_framed("THIS MACHINE IS NOT ON THE ALLOWLIST - NOTHING WAS WRITTEN", error_message());
        return r;
}

/* ---- which disk ---------------------------------------------------------------------------- */

bool target_allow_loop(const Disk *d) {
        const char *e = getenv("IMPRINT_TARGET_ALLOW_LOOP");
        size_t n;

        if (!d || d->transport != TRANSPORT_LOOP || !e)
                return false;
        if (streq(e, "1"))
                return true;
        /* A list: only these loop devices, so that a test never picks the loop device of another
         * test running beside it. */
        n = d->devnode ? strlen(d->devnode) : 0;
        for (const char *p = e; n > 0 && *p;) {
                size_t len = strcspn(p, ": ,");

                if (len == n && strncmp(p, d->devnode, n) == 0)
                        return true;
                p += len;
                p += strspn(p, ": ,");
        }
        return false;
}

/* Appends ", "-separated text to a memstream. */
static void reason_add(FILE *f, bool *first, const char *fmt, ...) _printf_(3, 4);
static void reason_add(FILE *f, bool *first, const char *fmt, ...) {
        va_list ap;

        if (!*first)
                fputs(", ", f);
        *first = false;
        va_start(ap, fmt);
        vfprintf(f, fmt, ap);
        va_end(ap);
}

/* "8 GiB (below minSize 100 GiB)"; in bytes when the rounded sizes would read the same. */
static void reason_add_size(FILE *f, bool *first, uint64_t size, const char *what, uint64_t bound) {
        char a[FORMAT_BYTES_MAX], b[FORMAT_BYTES_MAX];

        char ua[FORMAT_BYTES_MAX] = "", ub[FORMAT_BYTES_MAX] = "";
        double na = 0, nb = 0;

        /* "2 TiB" and "2.0 TiB" read the same: say the bytes. */
        format_bytes(a, sizeof(a), size);
        format_bytes(b, sizeof(b), bound);
        if (sscanf(a, "%lf %15s", &na, ua) == 2 && sscanf(b, "%lf %15s", &nb, ub) == 2 && na == nb && streq(ua, ub))
                reason_add(f, first, "%" PRIu64 " bytes (%s %" PRIu64 " bytes)", size, what, bound);
        else
                reason_add(f, first, "%s (%s %s)", a, what, b);
}

static bool any_name_matches(const char *glob, char *const *names) {
        for (size_t i = 0; names && names[i]; i++) {
                const char *base = strrchr(names[i], '/');

                /* Globs name the link ("nvme-Samsung*"); one that starts with a slash names the path. */
                if (fnmatch(glob, glob[0] == '/' ? names[i] : base ? base + 1 : names[i], 0) == 0)
                        return true;
        }
        return false;
}

int target_rule_check_disk(const TargetRule *rule, const Disk *d, char *const *by_path, char **ret_reason) {
        char *buf = NULL;
        size_t len = 0;
        bool first = true;
        FILE *f;

        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        if (rule->transports) {
                bool ok = false;

                for (char **t = rule->transports; *t; t++)
                        ok = ok || transport_from_string(*t) == d->transport;
                if (!ok) {
                        reason_add(f, &first, "transport %s (not ", transport_to_string(d->transport) ?: "unknown");
                        for (char **t = rule->transports; *t; t++)
                                fprintf(f, "%s%s", t == rule->transports ? "" : " or ", *t);
                        fputs(")", f);
                }
        }
        if (rule->min_size > 0 && d->size < rule->min_size)
                reason_add_size(f, &first, d->size, "below minSize", rule->min_size);
        if (rule->max_size > 0 && d->size > rule->max_size)
                reason_add_size(f, &first, d->size, "above maxSize", rule->max_size);
        if (rule->rotational >= 0 && d->rotational != (rule->rotational > 0))
                reason_add(f, &first, "%s (not %s)", d->rotational ? "rotational" : "solid state", rule->rotational ? "rotational" : "solid state");
        if (rule->by_id && !any_name_matches(rule->by_id, d->by_id))
                reason_add(f, &first, "%s (byId \"%s\")", strv_len(d->by_id) ? "no /dev/disk/by-id name matches" : "no /dev/disk/by-id name", rule->by_id);
        if (rule->by_path && !any_name_matches(rule->by_path, by_path))
                reason_add(f, &first, "%s (byPath \"%s\")", strv_len(by_path) ? "no /dev/disk/by-path name matches" : "no /dev/disk/by-path name",
                           rule->by_path);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        if (len == 0) {
                free(buf);
                buf = NULL;
        }
        *ret_reason = buf;
        return 0;
}

char *target_rule_describe(const TargetRule *rule) {
        char a[FORMAT_BYTES_MAX];
        char *buf = NULL;
        size_t len = 0;
        bool first = true;
        FILE *f;

        f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        if (rule->by_id)
                reason_add(f, &first, "byId \"%s\"", rule->by_id);
        if (rule->by_path)
                reason_add(f, &first, "byPath \"%s\"", rule->by_path);
        if (rule->transports) {
                reason_add(f, &first, "transport ");
                for (char **t = rule->transports; *t; t++)
                        fprintf(f, "%s%s", t == rule->transports ? "" : " or ", *t);
        }
        if (rule->min_size > 0)
                reason_add(f, &first, "minSize %s", format_bytes(a, sizeof(a), rule->min_size));
        if (rule->max_size > 0)
                reason_add(f, &first, "maxSize %s", format_bytes(a, sizeof(a), rule->max_size));
        if (rule->rotational >= 0)
                reason_add(f, &first, "%s", rule->rotational ? "rotational" : "solid state");
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* The disk's /dev/disk/by-path links (udev); NULL when there are none or no udev. */
static int disk_by_path(const Disk *d, char ***ret) {
        DIR *dir;
        struct dirent *de;
        struct stat st_disk;
        char **l = NULL;
        int r = 0;

        *ret = NULL;
        if (!d->devnode || stat(d->devnode, &st_disk) < 0 || !S_ISBLK(st_disk.st_mode))
                return 0;
        dir = opendir("/dev/disk/by-path");
        if (!dir)
                return 0;
        while (r >= 0 && (de = readdir(dir))) {
                struct stat st;
                char *s;

                if (de->d_name[0] == '.')
                        continue;
                if (fstatat(dirfd(dir), de->d_name, &st, 0) < 0 || !S_ISBLK(st.st_mode) || st.st_rdev != st_disk.st_rdev)
                        continue;
                if (asprintf(&s, "/dev/disk/by-path/%s", de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = strv_push(&l, s);
                free(s);
        }
        closedir(dir);
        if (r < 0) {
                strv_free_local(l);
                return r;
        }
        *ret = l;
        return 0;
}

/* "/dev/nvme0n1 (Samsung SSD 990, 1.8 TiB, nvme)" */
static void describe_disk(FILE *f, const Disk *d) {
        char a[FORMAT_BYTES_MAX];

        fprintf(f, "%s (%s, %s, %s)", d->devnode ?: d->path, d->model ?: "no model", format_bytes(a, sizeof(a), d->size),
                transport_to_string(d->transport) ?: "unknown");
}

/* A refusal text is sentences ("It is mounted on /."); in a list it reads better without the
 * final full stop. */
static void put_refusal(FILE *f, const char *text) {
        size_t n = strlen(text);

        while (n > 0 && strchr(" .\n", text[n - 1]))
                n--;
        fprintf(f, "cannot be a target: %.*s", (int) n, text);
}

int target_rule_resolve(const TargetRule *rule, const DiskList *l, const char *origin, char **ret) {
        _cleanup_(freep) char *why = NULL, *matched = NULL, *what = NULL;
        size_t why_len = 0, matched_len = 0, n = 0;
        const Disk *found = NULL;
        FILE *fw, *fm;
        int r = 0;

        origin = origin ?: "the configuration";
        fw = open_memstream(&why, &why_len);
        if (!fw)
                return -ENOMEM;
        fm = open_memstream(&matched, &matched_len);
        if (!fm) {
                fclose(fw);
                return -ENOMEM;
        }
        for (size_t i = 0; i < l->n_disks; i++) {
                const Disk *d = l->disks[i];
                _cleanup_(freep) char *reason = NULL;
                char **by_path = NULL;
                bool loop_refused = d->transport == TRANSPORT_LOOP && !target_allow_loop(d);

                r = disk_by_path(d, &by_path);
                if (r >= 0)
                        r = target_rule_check_disk(rule, d, by_path, &reason);
                strv_free_local(by_path);
                if (r < 0)
                        break;
                if (!reason && disk_is_usable(d) && !loop_refused) {
                        if (n > 0)
                                fputs("; ", fm);
                        describe_disk(fm, d);
                        found = d;
                        n++;
                        continue;
                }
                fprintf(fw, "%s%s: ", ftell(fw) > 0 ? "; " : "", d->devnode ?: d->path);
                if (reason)
                        fputs(reason, fw);
                if (loop_refused)
                        fprintf(fw, "%sa loop device (never a target)", reason ? ", " : "");
                else if (!disk_is_usable(d)) {
                        fputs(reason ? ", and it " : "it ", fw);
                        put_refusal(fw, d->refusal_text ?: "it is in use");
                }
        }
        if (fclose(fw) != 0 || fclose(fm) != 0)
                r = r < 0 ? r : -ENOMEM;
        if (r < 0)
                return r;

        what = target_rule_describe(rule);
        if (!what)
                return -ENOMEM;
        if (n == 1) {
                char *s = strdup(found->devnode ?: found->path);

                if (!s)
                        return -ENOMEM;
                log_info("The target rules of %s (%s) match one disk: %s.", origin, what, matched);
                *ret = s;
                return 0;
        }
        if (n > 1)
                return error_setf(-EBUSY, "%zu disks match the \"target\" rules of %s (%s): %s. Nothing was written; make the rules match one disk.",
                                  n, origin, what, matched);
        if (l->n_disks == 0)
                return error_setf(-ENOENT, "No disk matches the \"target\" rules of %s (%s): this machine has no disks. Nothing was written.",
                                  origin, what);
        return error_setf(-ENOENT, "No disk matches the \"target\" rules of %s (%s): %s. Nothing was written.", origin, what, why);
}

int machine_resolve_target(InstallConfig *c) {
        const char *origin = c->origin ?: "the configuration";
        char *found = NULL;
        int r;

        /* Disks appear a moment after boot (udev, a slow NVMe controller): while none matches,
         * look again each second. More disks will not make several matches fewer. */
        for (unsigned waited = 0;; waited++) {
                DiskList l = {};

                r = disk_list_discover(&(DiscoverOptions) {}, &l);
                if (r < 0)
                        return r;
                r = target_rule_resolve(c->target_rule, &l, origin, &found);
                disk_list_done(&l);
                if (r != -ENOENT || waited >= c->wait_for_target_sec)
                        break;
                sleep(1);
        }
        if (r < 0)
                return r;
        free(c->target);
        c->target = found;
        return 0;
}

/* ---- the countdown ------------------------------------------------------------------------- */

int machine_countdown_seconds(const InstallConfig *c) {
        if (c->countdown_sec >= 0)
                return c->countdown_sec;
        return isatty(STDIN_FILENO) && isatty(STDERR_FILENO) ? 10 : 0;
}

/* Where a key press can come from: stdin when it is a terminal, else the controlling terminal, else
 * the system console (a service's stdin is /dev/null; its console is the serial line or the
 * screen). -1 when there is none. *ret_close: the fd was opened here. */
static int open_keyboard(bool *ret_close) {
        static const char *const paths[] = { "/dev/tty", "/dev/console" };

        *ret_close = false;
        if (isatty(STDIN_FILENO))
                return STDIN_FILENO;
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                int fd = open(paths[i], O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

                if (fd < 0)
                        continue;
                if (!isatty(fd)) {
                        close(fd);
                        continue;
                }
                *ret_close = true;
                return fd;
        }
        return -1;
}

static void print_countdown_event(int seconds, const char *target) {
        json_object *j = json_object_new_object();

        json_object_object_add(j, "event", json_object_new_string("countdown"));
        json_object_object_add(j, "seconds", json_object_new_int(seconds));
        json_object_object_add(j, "target", json_object_new_string(target));
        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        fflush(stdout);
        json_object_put(j);
}

int machine_countdown(const InstallConfig *c, const char *target) {
        _cleanup_(disk_freep) Disk *d = NULL;
        char what[768], disk[512], size[FORMAT_BYTES_MAX];
        const char *image = NULL;
        struct termios saved, raw;
        bool close_fd, restore = false, cancelled = false;
        int seconds = machine_countdown_seconds(c), fd;

        if (seconds <= 0 || !target)
                return 0;
        fd = open_keyboard(&close_fd);
        if (fd < 0) {
                log_warning("No console to cancel the countdown from; going on at once.");
                return 0;
        }

        /* "Installing fakeos.img to /dev/nvme0n1 (Samsung SSD 990, 1.8 TiB)". */
        if (!c->reset && c->source) {
                image = strrchr(c->source, '/');
                image = image ? image + 1 : c->source;
        }
        if (disk_discover(target, &(DiscoverOptions) {}, &d) >= 0 && d)
                snprintf(disk, sizeof(disk), "%s (%s, %s)", target, d->model ?: "no model", format_bytes(size, sizeof(size), d->size));
        else
                snprintf(disk, sizeof(disk), "%s", target);
        if (c->reset)
                snprintf(what, sizeof(what), "Resetting %s", disk);
        else
                snprintf(what, sizeof(what), "Installing %s to %s", image ?: "the image", disk);

        print_countdown_event(seconds, target);

        /* Non-canonical, no echo: one key is enough, and it does not appear among the lines. Ctrl-C
         * still sends SIGINT. What was typed before the countdown does not count. */
        if (tcgetattr(fd, &saved) >= 0) {
                raw = saved;
                raw.c_lflag &= ~(ICANON | ECHO);
                raw.c_cc[VMIN] = 0;
                raw.c_cc[VTIME] = 0;
                if (tcsetattr(fd, TCSANOW, &raw) >= 0)
                        restore = true;
                (void) tcflush(fd, TCIFLUSH);
        }

        for (int left = seconds; left > 0 && !cancelled; left--) {
                struct timespec start, now;
                long elapsed_ms = 0;

                fprintf(stderr, "%s in %d s - press any key to cancel\n", what, left);
                fflush(stderr);
                clock_gettime(CLOCK_MONOTONIC, &start);
                while (elapsed_ms < 1000 && !cancelled) {
                        struct pollfd p = { .fd = fd, .events = POLLIN };
                        int k = poll(&p, 1, (int) (1000 - elapsed_ms));

                        if (interrupt_pending())
                                cancelled = true;
                        else if (k > 0 && (p.revents & POLLIN)) {
                                char buf[64];
                                ssize_t n = read(fd, buf, sizeof(buf));

                                if (n > 0)
                                        cancelled = true;
                        } else if (k > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL))) {
                                /* The terminal went away: nobody can cancel any more; wait out the second. */
                                usleep((useconds_t) (1000 - elapsed_ms) * 1000);
                        }
                        clock_gettime(CLOCK_MONOTONIC, &now);
                        elapsed_ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
                }
        }

        if (restore)
                (void) tcsetattr(fd, TCSANOW, &saved);
        if (close_fd)
                close(fd);
        if (cancelled)
                return error_setf(-ECANCELED, "The countdown was cancelled by a key press; nothing was written.");
        return 0;
}
