/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "fileio.h"
#include "json-strict.h"
#include "log.h"
#include "machine.h"
#include "proc-cmdline.h"
#include "size.h"
#include "validate.h"

#define DEFAULTS_PATH "/etc/imprint/imprint.conf"
#define CREDENTIAL_NAME "imprint.config"

static const char *const after_action_table[_AFTER_ACTION_MAX] = {
        [AFTER_NONE] = "none",
        [AFTER_POWEROFF] = "poweroff",
        [AFTER_REBOOT] = "reboot",
};
DEFINE_STRING_TABLE_LOOKUP(after_action, AfterAction);

void install_config_init(InstallConfig *c) {
        *c = (InstallConfig) { .wait_for_target_sec = 30, .after_reset = AFTER_REBOOT, .countdown_sec = -1 };
        plan_options_init(&c->plan);
        encrypt_request_init(&c->enc);
        /* A line that installs thousands of machines must not ship some without TPM unlocking
         * because one TPM misbehaved: fail loudly unless the configuration says "auto". */
        c->enc.tpm2 = TPM2_USE_REQUIRED;
}

void install_config_done(InstallConfig *c) {
        free(c->origin);
        free(c->source);
        free(c->target);
        free(c->seed);
        free(c->root_fs);
        free(c->home_fs);
        free(c->root_label);
        free(c->tpm2_tcti);
        free(c->escrow_dir);
        free(c->image_certificate);
        free(c->image_key);
        free(c->user_name);
        free(c->real_name);
        free(c->reset_target);
        config_machine_done(c);
        config_report_done(c);
        config_escrow_done(c);
        config_credentials_done(c);
        plan_settings_done(&c->settings);
        *c = (InstallConfig) {};
}

static int set_string(char **field, json_object *v, const char *key, const char *origin) {
        char *s;

        if (!json_object_is_type(v, json_type_string) || isempty(json_object_get_string(v)))
                return error_setf(-EINVAL, "%s: \"%s\" must be a non-empty string.", origin, key);
        s = strdup(json_object_get_string(v));
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

/* A string field with the same check as its command-line option. */
static int set_checked_string(char **field, json_object *v, const char *key, const char *origin, int (*validate)(const char *)) {
        int r;

        r = set_string(field, v, key, origin);
        if (r < 0)
                return r;
        r = validate(*field);
        if (r < 0)
                return error_prefixf(r, "%s: \"%s\"", origin, key);
        return 0;
}

static int set_size(SizeRequest *field, json_object *v, const char *key, const char *origin) {
        if (!json_object_is_type(v, json_type_string) || size_request_parse(json_object_get_string(v), field) < 0)
                return error_setf(-EINVAL, "%s: \"%s\" must be a size such as \"20G\", \"rest\" or \"none\".", origin, key);
        return 0;
}

static int set_bool(bool *field, json_object *v, const char *key, const char *origin) {
        if (!json_object_is_type(v, json_type_boolean))
                return error_setf(-EINVAL, "%s: \"%s\" must be true or false.", origin, key);
        *field = json_object_get_boolean(v);
        return 0;
}

static int set_after(AfterAction *field, json_object *v, const char *key, const char *origin) {
        AfterAction a = json_object_is_type(v, json_type_string) ? after_action_from_string(json_object_get_string(v))
                                                                  : _AFTER_ACTION_INVALID;
        if (a < 0)
                return error_setf(-EINVAL, "%s: \"%s\" must be \"none\", \"poweroff\" or \"reboot\".", origin, key);
        *field = a;
        return 0;
}

static int set_user(InstallConfig *c, json_object *u, const char *origin) {
        int r = 0;

        if (!json_object_is_type(u, json_type_object))
                return error_setf(-EINVAL, "%s: \"user\" must be an object such as {\"name\": \"alice\"}.", origin);
        json_object_object_foreach(u, key, v) {
                if (streq(key, "name"))
                        r = set_checked_string(&c->user_name, v, "user.name", origin, validate_user_name);
                else if (streq(key, "realName"))
                        r = set_checked_string(&c->real_name, v, "user.realName", origin, validate_real_name);
                else if (streq(key, "storage")) {
                        AccountStorage st = json_object_is_type(v, json_type_string) ? account_storage_from_string(json_object_get_string(v))
                                                                                      : _ACCOUNT_STORAGE_INVALID;
                        if (st < 0)
                                return error_setf(-EINVAL, "%s: \"user.storage\" must be \"luks\", \"directory\" or \"subvolume\".", origin);
                        c->account.storage = st;
                } else if (streq(key, "admin"))
                        r = set_bool(&c->account.admin, v, "user.admin", origin);
                else if (streq(key, "autoLogin"))
                        r = set_bool(&c->account.auto_login, v, "user.autoLogin", origin);
                else if (streq(key, "classic"))
                        r = set_bool(&c->account.classic, v, "user.classic", origin);
                else
                        return error_setf(-EINVAL, "%s: unknown key \"user.%s\".", origin, key);
                if (r < 0)
                        return r;
        }
        if (!c->user_name)
                return error_setf(-EINVAL, "%s: \"user\" needs a \"name\".", origin);
        return 0;
}

/* "reset": {…}: a factory reset instead of an install (config.h). */
static int set_reset(InstallConfig *c, json_object *o, const char *origin) {
        int r = 0;

        if (!json_object_is_type(o, json_type_object))
                return error_setf(-EINVAL, "%s: \"reset\" must be an object such as {\"target\": \"auto\"}.", origin);
        json_object_object_foreach(o, key, v) {
                if (streq(key, "target"))
                        r = set_string(&c->reset_target, v, "reset.target", origin);
                else if (streq(key, "keepHome"))
                        r = set_bool(&c->reset_keep_home, v, "reset.keepHome", origin);
                else if (streq(key, "secureErase"))
                        r = set_bool(&c->reset_secure_erase, v, "reset.secureErase", origin);
                else if (streq(key, "tpmClear"))
                        r = set_bool(&c->reset_tpm_clear, v, "reset.tpmClear", origin);
                else if (streq(key, "recoveryKeyEscrow"))
                        r = config_set_escrow(c, v, "reset.recoveryKeyEscrow", origin);
                else if (streq(key, "user"))
                        r = set_user(c, v, origin);
                else if (streq(key, "afterReset"))
                        r = set_after(&c->after_reset, v, "reset.afterReset", origin);
                else
                        return error_setf(-EINVAL, "%s: unknown key \"reset.%s\".", origin, key);
                if (r < 0)
                        return r;
        }
        c->reset = true;
        return 0;
}

int install_config_merge_json(InstallConfig *c, json_object *j, const char *origin) {
        int r = 0;

        if (!json_object_is_type(j, json_type_object))
                return error_setf(-EINVAL, "%s: the configuration must be a JSON object.", origin);

        json_object_object_foreach(j, key, v) {
                if (streq(key, "source"))
                        r = set_string(&c->source, v, key, origin);
                else if (streq(key, "imageCertificate"))
                        r = set_string(&c->image_certificate, v, key, origin);
                else if (streq(key, "imageKey"))
                        r = set_string(&c->image_key, v, key, origin);
                else if (streq(key, "target"))
                        r = config_set_target(c, v, key, origin);
                else if (streq(key, "machines"))
                        r = config_set_machines(c, v, origin);
                else if (streq(key, "countdownSeconds"))
                        r = config_set_countdown(c, v, origin);
                else if (streq(key, "seed"))
                        r = set_checked_string(&c->seed, v, key, origin, validate_seed);
                else if (streq(key, "rootFs"))
                        r = set_string(&c->root_fs, v, key, origin);
                else if (streq(key, "homeFs"))
                        r = set_string(&c->home_fs, v, key, origin);
                else if (streq(key, "rootLabel"))
                        r = set_checked_string(&c->root_label, v, key, origin, validate_partition_label);
                else if (streq(key, "espSize"))
                        r = set_size(&c->plan.esp, v, key, origin);
                else if (streq(key, "xbootldrSize"))
                        r = set_size(&c->plan.xbootldr, v, key, origin);
                else if (streq(key, "rootSize"))
                        r = set_size(&c->plan.root, v, key, origin);
                else if (streq(key, "homeSize"))
                        r = set_size(&c->plan.home, v, key, origin);
                else if (streq(key, "swapSize"))
                        r = set_size(&c->plan.swap, v, key, origin);
                else if (streq(key, "noVariables"))
                        r = set_bool(&c->no_variables, v, key, origin);
                else if (streq(key, "afterInstall"))
                        r = set_after(&c->after_install, v, key, origin);
                else if (streq(key, "onFailure"))
                        r = set_after(&c->on_failure, v, key, origin);
                else if (streq(key, "mode")) {
                        PlanMode m = json_object_is_type(v, json_type_string) ? plan_mode_from_string(json_object_get_string(v))
                                                                               : _PLAN_MODE_INVALID;
                        if (m < 0)
                                return error_setf(-EINVAL, "%s: \"mode\" must be \"erase\" or \"free\".", origin);
                        c->plan.mode = m;
                } else if (streq(key, "encrypt")) {
                        bool b = false;
                        r = set_bool(&b, v, key, origin);
                        if (r >= 0)
                                c->enc.encrypt = b;
                } else if (streq(key, "tpm2")) {
                        Tpm2Use u = json_object_is_type(v, json_type_string) ? tpm2_use_from_string(json_object_get_string(v))
                                                                              : _TPM2_USE_INVALID;
                        if (u < 0)
                                return error_setf(-EINVAL, "%s: \"tpm2\" must be \"required\", \"auto\" or \"off\".", origin);
                        c->enc.tpm2 = u;
                } else if (streq(key, "tpm2Pcrs")) {
                        if (!json_object_is_type(v, json_type_string) || pcr_mask_parse(json_object_get_string(v), &c->enc.tpm2_pcrs) < 0)
                                return error_setf(-EINVAL, "%s: \"tpm2Pcrs\" must be a list of PCRs such as \"7\" or \"0+7\".", origin);
                } else if (streq(key, "tpm2SignedPcr11"))
                        r = set_bool(&c->enc.tpm2_signed_pcr11, v, key, origin);
                else if (streq(key, "tpm2Pin"))
                        r = set_bool(&c->enc.tpm2_pin, v, key, origin);
                else if (streq(key, "passphrase"))
                        r = set_bool(&c->enc.passphrase, v, key, origin);
                else if (streq(key, "tpm2Tcti"))
                        r = set_checked_string(&c->tpm2_tcti, v, key, origin, validate_tpm2_tcti);
                else if (streq(key, "recoveryKeyEscrow"))
                        r = config_set_escrow(c, v, key, origin);
                else if (streq(key, "report"))
                        r = config_set_report(c, v, origin);
                else if (streq(key, "credentials"))
                        r = config_set_credentials(c, v, origin);
                else if (streq(key, "oem"))
                        r = set_bool(&c->oem, v, key, origin);
                else if (streq(key, "user"))
                        r = set_user(c, v, origin);
                else if (streq(key, "reset"))
                        r = set_reset(c, v, origin);
                else if (streq(key, "allowWeakPassword"))
                        r = set_bool(&c->allow_weak_password, v, key, origin);
                else if (streq(key, "allowUnbootable"))
                        r = set_bool(&c->allow_unbootable, v, key, origin);
                else if (streq(key, "hostname"))
                        r = set_checked_string(&c->settings.hostname, v, key, origin, validate_hostname);
                else if (streq(key, "timezone"))
                        r = set_checked_string(&c->settings.timezone, v, key, origin, validate_timezone);
                else if (streq(key, "locale"))
                        r = set_checked_string(&c->settings.locale, v, key, origin, validate_locale);
                else if (streq(key, "keymap"))
                        r = set_checked_string(&c->settings.keymap, v, key, origin, validate_keymap);
                else if (streq(key, "waitForTargetSeconds")) {
                        if (!json_object_is_type(v, json_type_int) || json_object_get_int(v) < 0 || json_object_get_int(v) > 3600)
                                return error_setf(-EINVAL, "%s: \"waitForTargetSeconds\" must be a number from 0 to 3600.", origin);
                        c->wait_for_target_sec = (unsigned) json_object_get_int(v);
                } else
                        return error_setf(-EINVAL, "%s: unknown key \"%s\".", origin, key);
                if (r < 0)
                        return r;
        }

        if (c->plan.root.kind == SIZE_NONE && json_object_object_get_ex(j, "rootSize", NULL))
                return error_setf(-EINVAL, "%s: the root partition cannot be left out (\"rootSize\": \"none\").", origin);

        /* The PlanOptions strings live in this struct. */
        c->plan.seed = c->seed;
        c->plan.root_fs = c->root_fs;
        c->plan.home_fs = c->home_fs;
        c->plan.root_label = c->root_label;
        c->plan.oem = c->oem;
        c->enc.tpm2_tcti = c->tpm2_tcti;
        c->account.user_name = c->user_name;
        c->account.real_name = c->real_name;
        c->account.tpm2_tcti = c->tpm2_tcti;
        r = settings_validate(&c->settings);
        if (r < 0)
                return error_prefixf(r, "%s", origin);

        free(c->origin);
        c->origin = strdup(origin);
        return c->origin ? 0 : -ENOMEM;
}

int install_config_merge_file(InstallConfig *c, const char *path) {
        json_object *j = NULL;
        int r;

        r = json_read_file_strict(path, "the configuration", &j);
        if (r < 0)
                return r;
        r = install_config_merge_json(c, j, path);
        json_object_put(j);
        return r;
}

int install_config_load_defaults(InstallConfig *c) {
        if (access(DEFAULTS_PATH, F_OK) < 0)
                return 0;
        return install_config_merge_file(c, DEFAULTS_PATH);
}

/* imprint.config=PATH on the kernel command line (quoted if it has spaces; the last one wins). */
static int cmdline_config_path(char **ret) {
        _cleanup_(freep) char *path = NULL;
        int r;

        r = proc_cmdline_get_key("imprint.config", &path);
        if (r == -ENOMEM)
                return r;
        if (r <= 0 || isempty(path))
                return 0;
        *ret = TAKE_PTR(path);
        return 1;
}

int install_config_find(InstallConfig *c, const char *explicit_path) {
        _cleanup_(freep) char *cmdline_path = NULL, *cred = NULL;
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        int r;

        r = install_config_load_defaults(c);
        if (r < 0)
                return r;

        if (explicit_path) {
                r = install_config_merge_file(c, explicit_path);
                return r < 0 ? r : 1;
        }
        /* The credential: passed by the service manager (ImportCredential=/LoadCredential=) from
         * SMBIOS, fw_cfg, the kernel command line or /etc/credstore. */
        if (dir && asprintf(&cred, "%s/" CREDENTIAL_NAME, dir) < 0)
                return -ENOMEM;
        if (cred && access(cred, F_OK) == 0) {
                r = install_config_merge_file(c, cred);
                return r < 0 ? r : 1;
        }
        r = cmdline_config_path(&cmdline_path);
        if (r < 0)
                return r;
        if (r > 0) {
                r = install_config_merge_file(c, cmdline_path);
                return r < 0 ? r : 1;
        }
        return 0;
}

int install_config_resolve_target(InstallConfig *c) {
        DiskList l = {};
        Disk *found = NULL;
        char names[1024] = "";
        size_t n = 0;
        int r;

        if (c->target_rule)
                return machine_resolve_target(c);
        if (!c->target)
                return error_setf(-EINVAL, "%s: no \"target\" disk is named.", c->origin ?: "The configuration");
        if (!streq(c->target, "auto")) {
                /* udev creates /dev/disk/by-id links a moment after boot: wait for them. */
                for (unsigned i = 0; access(c->target, F_OK) < 0 && i < c->wait_for_target_sec * 10; i++)
                        usleep(100 * 1000);
                if (access(c->target, F_OK) < 0)
                        return error_setf(-ENOENT, "The target %s did not appear within %u seconds.", c->target, c->wait_for_target_sec);
                return 0;
        }

        r = disk_list_discover(&(DiscoverOptions) {}, &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l.n_disks; i++) {
                Disk *d = l.disks[i];
                size_t len = strlen(names);

                /* Loop devices never count, but in tests (machine.h, IMPRINT_TARGET_ALLOW_LOOP). */
                if (!disk_is_usable(d) || (d->transport == TRANSPORT_LOOP && !target_allow_loop(d)))
                        continue;
                snprintf(names + len, sizeof(names) - len, "%s%s", n ? ", " : "", d->path);
                found = d;
                n++;
        }
        if (n == 1) {
                free(c->target);
                c->target = strdup(found->devnode ?: found->path);
                disk_list_done(&l);
                if (!c->target)
                        return -ENOMEM;
                log_info("target \"auto\" is %s", c->target);
                return 0;
        }
        disk_list_done(&l);
        if (n == 0)
                return error_setf(-ENOENT, "Target \"auto\": no disk here can be a target (see imprint disks).");
        return error_setf(-EBUSY, "Target \"auto\": %zu disks could be the target (%s); name one in the configuration.", n, names);
}
