/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Record and replay: the configuration that repeats an attended install (config-record.h), and
 * the "credentials" key that marks where its secrets come from. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-record.h"
#include "error.h"
#include "fileio.h"
#include "i18n.h"
#include "size.h"
#include "tpm2.h"

/* The credentials a configuration may rely on for its secrets: the names the session reads them
 * from (session_secret_credential(); the engine does not call up into the session). */
static const char *const known_credentials[] = {
        "imprint.user-password",
        "imprint.passphrase",
        "imprint.tpm2-pin",
        "imprint.old-recovery-key",
};

bool config_credential_is_known(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(known_credentials); i++)
                if (streq_ptr(name, known_credentials[i]))
                        return true;
        return false;
}

int config_set_credentials(InstallConfig *c, json_object *v, const char *origin) {
        char **l = NULL;
        size_t n;
        int r = 0;

        if (!json_object_is_type(v, json_type_array))
                return error_setf(-EINVAL, "%s: \"credentials\" must be a list of credential names such as [\"imprint.user-password\"].",
                                  origin);
        n = json_object_array_length(v);
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n && r >= 0; i++) {
                json_object *e = json_object_array_get_idx(v, i);
                const char *name = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;

                if (!config_credential_is_known(name)) {
                        r = error_setf(-EINVAL,
                                       "%s: \"credentials\" lists %s%s%s, which is not a credential imprint reads (imprint.user-password, "
                                       "imprint.passphrase, imprint.tpm2-pin, imprint.old-recovery-key).",
                                       origin, name ? "\"" : "", name ?: "something that is not a name", name ? "\"" : "");
                        break;
                }
                for (size_t k = 0; k < i; k++)
                        if (streq(l[k], name))
                                r = error_setf(-EINVAL, "%s: \"credentials\" lists \"%s\" twice.", origin, name);
                if (r >= 0 && !(l[i] = strdup(name)))
                        r = -ENOMEM;
        }
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        free(l[i]);
                free(l);
                return r;
        }
        config_credentials_done(c);
        c->credentials = l;
        c->n_credentials = n;
        return 0;
}

void config_credentials_done(InstallConfig *c) {
        for (size_t i = 0; i < c->n_credentials; i++)
                free(c->credentials[i]);
        free(c->credentials);
        c->credentials = NULL;
        c->n_credentials = 0;
}

int install_config_check_credentials(const InstallConfig *c) {
        const char *dir = getenv("CREDENTIALS_DIRECTORY");

        for (size_t i = 0; i < c->n_credentials; i++) {
                _cleanup_(freep) char *path = NULL;

                if (dir && asprintf(&path, "%s/%s", dir, c->credentials[i]) < 0)
                        return -ENOMEM;
                if (!path || access(path, R_OK) < 0)
                        return error_setf(-EINVAL,
                                          "%s: the configuration needs the credential %s, which is not given (systemd-creds, "
                                          "LoadCredential= or $CREDENTIALS_DIRECTORY). Nothing was written.",
                                          c->origin ?: "The configuration", c->credentials[i]);
        }
        return 0;
}

/* ---- the record ------------------------------------------------------------------------------ */

/* A by-id name people recognise (model and serial: ata-…, nvme-Model_Serial, usb-…, virtio-…) over
 * the numeric ones (wwn-0x…, nvme-eui.…), which name the same disk. */
static bool by_id_is_numeric(const char *link) {
        const char *b = strrchr(link, '/');

        b = b ? b + 1 : link;
        return strncmp(b, "wwn-", 4) == 0 || strncmp(b, "nvme-eui.", 9) == 0 || strncmp(b, "nvme-nvme.", 10) == 0;
}

const char *config_record_target_name(const Disk *target) {
        const char *fallback = NULL;

        if (!target)
                return NULL;
        for (size_t i = 0; target->kind == DISK_BLOCK && target->by_id && target->by_id[i]; i++) {
                if (!by_id_is_numeric(target->by_id[i]))
                        return target->by_id[i];
                fallback = fallback ?: target->by_id[i];
        }
        return fallback ?: target->path;
}

/* A size as size_request_parse() reads it back: "rest", or whole K/M/G/T where it divides. */
static json_object *size_to_json(const SizeRequest *s) {
        static const struct {
                uint64_t unit;
                char suffix;
        } units[] = { { TiB, 'T' }, { GiB, 'G' }, { MiB, 'M' }, { KiB, 'K' } };
        char buf[32];

        if (s->kind == SIZE_NONE)
                return json_object_new_string("none");
        if (s->kind == SIZE_REST)
                return json_object_new_string("rest");
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (s->bytes % units[i].unit == 0) {
                        snprintf(buf, sizeof(buf), "%" PRIu64 "%c", s->bytes / units[i].unit, units[i].suffix);
                        return json_object_new_string(buf);
                }
        snprintf(buf, sizeof(buf), "%" PRIu64, s->bytes);
        return json_object_new_string(buf);
}

static bool size_equal(const SizeRequest *a, const SizeRequest *b) {
        return a->kind == b->kind && (a->kind != SIZE_FIXED || a->bytes == b->bytes);
}

/* Adds key: the size asked for, when it is not the default (which the replay applies as well). */
static void add_size(json_object *j, const char *key, const SizeRequest *asked, const SizeRequest *def) {
        if (!size_equal(asked, def))
                json_object_object_add(j, key, size_to_json(asked));
}

static void add_string(json_object *j, const char *key, const char *value) {
        if (value)
                json_object_object_add(j, key, json_object_new_string(value));
}

static int absolute_source(const char *source, const Plan *p, char **ret) {
        const char *s = source && streq(source, "self") ? source : p->source ? p->source->path : source;
        char *a;

        if (!s)
                return error_setf(-EINVAL, "The install has no image to record.");
        a = streq(s, "self") ? NULL : realpath(s, NULL);
        *ret = a ?: strdup(s);
        return *ret ? 0 : -ENOMEM;
}

/* The credentials a replay of p needs for its secrets, in the order they are asked for. */
static size_t record_credentials(const Plan *p, const char *ret[static 3]) {
        const PlanEncryption *e = &p->encryption;
        size_t n = 0;

        if (p->account)
                ret[n++] = "imprint.user-password";
        if (e->enabled && e->passphrase)
                ret[n++] = "imprint.passphrase";
        if (e->enabled && e->tpm2 && e->tpm2_pin)
                ret[n++] = "imprint.tpm2-pin";
        return n;
}

int config_record_build(const Plan *p, const Disk *target, const PlanOptions *layout, const char *source, json_object **ret) {
        _cleanup_(freep) char *src = NULL, *target_abs = NULL;
        const PlanEncryption *e = &p->encryption;
        PlanOptions def;
        json_object *j, *creds;
        const char *t, *names[3];
        int r;

        if (p->mode != PLAN_ERASE && p->mode != PLAN_FREE)
                return error_setf(-EINVAL, "Only an install can be recorded, not a %s.", plan_mode_to_string(p->mode) ?: "plan");
        r = absolute_source(source, p, &src);
        if (r < 0)
                return r;
        t = target ? config_record_target_name(target) : p->target;
        if (t && (!target || target->kind != DISK_BLOCK) && t[0] != '/')
                t = target_abs = realpath(t, NULL) ?: strdup(t);
        if (!t)
                return -ENOMEM;

        plan_options_init(&def);
        j = json_object_new_object();
        if (!j)
                return -ENOMEM;
        json_object_object_add(j, "source", json_object_new_string(src));
        json_object_object_add(j, "target", json_object_new_string(t));
        json_object_object_add(j, "mode", json_object_new_string(plan_mode_to_string(p->mode)));
        if (layout) {
                add_size(j, "espSize", &layout->esp, &def.esp);
                add_size(j, "xbootldrSize", &layout->xbootldr, &def.xbootldr);
                add_size(j, "rootSize", &layout->root, &def.root);
                add_size(j, "homeSize", &layout->home, &def.home);
                add_size(j, "swapSize", &layout->swap, &def.swap);
                add_string(j, "rootFs", layout->root_fs);
                add_string(j, "homeFs", layout->home_fs);
                add_string(j, "rootLabel", layout->root_label);
                add_string(j, "seed", layout->seed);
        }

        json_object_object_add(j, "encrypt", json_object_new_boolean(e->enabled));
        /* What the attended install did, not what it would have tried: a TPM that was used is
         * required on the replay (unattended never ships a machine without it by accident); one
         * that was not used is not asked for. */
        json_object_object_add(j, "tpm2", json_object_new_string(e->enabled && e->tpm2 ? "required" : "off"));
        if (e->enabled && e->tpm2) {
                _cleanup_(freep) char *pcrs = tpm2_pcr_mask_to_string(e->tpm2_pcrs);

                if (!pcrs) {
                        json_object_put(j);
                        return -ENOMEM;
                }
                if (e->tpm2_pcrs != 0) /* 0: the default, PCR 7 */
                        json_object_object_add(j, "tpm2Pcrs", json_object_new_string(pcrs));
                json_object_object_add(j, "tpm2SignedPcr11", json_object_new_boolean(e->tpm2_pubkey_pcrs != 0));
                json_object_object_add(j, "tpm2Pin", json_object_new_boolean(e->tpm2_pin));
                add_string(j, "tpm2Tcti", e->tpm2_tcti);
        }
        if (e->enabled)
                json_object_object_add(j, "passphrase", json_object_new_boolean(e->passphrase));

        if (p->account) {
                json_object *u = json_object_new_object();

                json_object_object_add(u, "name", json_object_new_string(p->account->user_name));
                add_string(u, "realName", p->account->real_name);
                json_object_object_add(u, "storage", json_object_new_string(account_storage_to_string(p->account->storage)));
                json_object_object_add(u, "admin", json_object_new_boolean(p->account->admin));
                json_object_object_add(u, "autoLogin", json_object_new_boolean(p->account->auto_login));
                json_object_object_add(u, "classic", json_object_new_boolean(p->account->kind == ACCOUNT_CLASSIC));
                json_object_object_add(j, "user", u);
        }
        add_string(j, "hostname", p->settings.hostname);
        add_string(j, "timezone", p->settings.timezone);
        add_string(j, "locale", p->settings.locale);
        add_string(j, "keymap", p->settings.keymap);
        /* The attended front ends always write the firmware boot entry. */
        json_object_object_add(j, "noVariables", json_object_new_boolean(false));

        creds = json_object_new_array();
        for (size_t i = 0, n = record_credentials(p, names); i < n; i++)
                json_object_array_add(creds, json_object_new_string(names[i]));
        json_object_object_add(j, "credentials", creds);

        *ret = j;
        return 0;
}

int config_record_check_path(const char *path) {
        _cleanup_(freep) char *dir = NULL;
        struct stat st;
        char *slash;

        if (isempty(path))
                return error_setf(-EINVAL, "--record needs a file name.");
        if (stat(path, &st) >= 0 && !S_ISREG(st.st_mode))
                return error_setf(-EINVAL, "Cannot record to %s: it is %s, not a file.", path, file_type_name(st.st_mode));
        dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (!slash)
                strcpy(dir, ".");
        else if (slash == dir)
                slash[1] = 0;
        else
                *slash = 0;
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return error_setf(-ENOENT, "Cannot record to %s: the directory %s does not exist.", path, dir);
        if (access(dir, W_OK) < 0)
                return error_setf(-EACCES, "Cannot record to %s: the directory %s is not writable.", path, dir);
        return 0;
}

int config_record_write(const Plan *p, const Disk *target, const PlanOptions *layout, const char *source, const char *path) {
        _cleanup_(freep) char *tmp = NULL;
        _cleanup_(closep) int fd = -EBADF;
        json_object *j = NULL;
        const char *text;
        size_t len;
        int r;

        r = config_record_build(p, target, layout, source, &j);
        if (r < 0)
                return r;
        text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text || asprintf(&tmp, "%s.XXXXXX", path) < 0) {
                json_object_put(j);
                return -ENOMEM;
        }
        len = strlen(text);
        /* mkstemp() makes it 0600 from the start: no moment at which others may read it. */
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                json_object_put(j);
                return error_setf(r, "Cannot write the recorded configuration %s: %s.", path, strerror(-r));
        }
        r = pwrite_full(fd, text, len, 0);
        if (r >= 0 && pwrite_full(fd, "\n", 1, len) < 0)
                r = -EIO;
        json_object_put(j);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return error_setf(r, "Cannot write the recorded configuration %s: %s.", path, strerror(-r));
        }
        return 0;
}

char *config_record_note(const Plan *p, const char *path) {
        _cleanup_(freep) char *first = NULL, *escrow = NULL, *creds = NULL;
        const PlanEncryption *e = &p->encryption;
        const char *names[3];
        size_t n = record_credentials(p, names);
        char list[128] = "";
        char *ret;

        for (size_t i = 0; i < n; i++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i > 0 ? ", " : "", names[i]);
        /* TRANSLATORS: %s is the file given with --record. */
        if (asprintf(&first, _("The configuration that repeats this install is in %s."), path) < 0)
                return NULL;
        if (e->enabled && !(escrow = strdup(_(" Before imprint unattended replays it, add \"recoveryKeyEscrow\": where the "
                                               "recovery key of each machine goes."))))
                return NULL;
        /* TRANSLATORS: %s lists credential names, e.g. "imprint.user-password, imprint.passphrase". */
        if (list[0] && asprintf(&creds, _(" The replay needs the credentials it lists: %s."), list) < 0)
                return NULL;
        if (asprintf(&ret, "%s%s%s", first, escrow ?: "", creds ?: "") < 0)
                return NULL;
        return ret;
}
