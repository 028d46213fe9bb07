/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "account.h"
#include "stream.h"
#include "error.h"
#include "fileio.h"
#include "fsread.h"
#include "i18n.h"
#include "image.h"
#include "log.h"
#include "quality.h"
#include "run.h"
#include "tpm2.h"

/* Does the image's systemd create users from home.create.* credentials at first boot?
 * -EOPNOTSUPP when its root filesystem cannot be read without mounting it (btrfs, xfs, …). */
static int image_has_homed_firstboot(const Image *img) {
        _cleanup_(freep) void *buf = NULL;
        size_t size = 0;
        int r;

        if (!img)
                return 0;
        /* A streamed image: not known until it is written; the plan is made again then. */
        if (image_stream_pending(img))
                return 1;
        if (img->root) {
                FsLocation l = image_fs_location(img, img->root);
                r = fs_read_file(&l, "/usr/lib/systemd/system/systemd-homed-firstboot.service", &buf, &size);
        } else if (img->usr) {
                /* A usr image: the filesystem is /usr itself. */
                FsLocation l = image_fs_location(img, img->usr);
                r = fs_read_file(&l, "/lib/systemd/system/systemd-homed-firstboot.service", &buf, &size);
        }
        else
                return 0;
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return memmem(buf, size, "ImportCredential=home.", strlen("ImportCredential=home.")) != NULL;
}

int account_decide(const AccountRequest *req, const Image *img, DiskKind target_kind, PlanAccount **ret) {
        _cleanup_(plan_account_freep) PlanAccount *a = NULL;
        _cleanup_(tpm2_status_done) Tpm2Status st = {};
        char note[1024] = "";
        int r;

        r = validate_user_name(req->user_name);
        if (r < 0)
                return r;
        if (req->real_name && (r = validate_real_name(req->real_name)) < 0)
                return r;

        a = calloc(1, sizeof(PlanAccount));
        if (!a)
                return -ENOMEM;
        a->user_name = strdup(req->user_name);
        a->real_name = strdup_safe(req->real_name);
        if (!a->user_name || (req->real_name && !a->real_name))
                return -ENOMEM;
        a->storage = req->storage;
        a->admin = req->admin;
        a->auto_login = req->auto_login;
        a->kind = ACCOUNT_HOMED;

        r = image_has_homed_firstboot(img);
        if (r < 0 && r != -EOPNOTSUPP)
                return r;
        if (req->classic)
                snprintf(note, sizeof(note), "%s", _("A classic user, as asked."));
        else if (r == -EOPNOTSUPP)
                snprintf(note, sizeof(note),
                         /* TRANSLATORS: %s is the filesystem type (btrfs, xfs). */
                         _("imprint cannot look into the image's %s root filesystem without mounting it, so it cannot tell whether "
                           "the image's systemd has systemd-homed-firstboot.service: a classic user (/etc/passwd, /etc/shadow) is "
                           "created instead."),
                         (img->root ?: img->usr)->fstype ?: "?");
        else if (r == 0)
                snprintf(note, sizeof(note), "%s",
                         _("The image's systemd cannot create systemd-homed users at first boot (no systemd-homed-firstboot.service, "
                           "systemd 256 or newer): a classic user (/etc/passwd, /etc/shadow) is created instead."));
        else if (target_kind != DISK_BLOCK)
                snprintf(note, sizeof(note), "%s",
                         _("For an image file the password cannot be sealed to the TPM of the computer that will boot it: a classic "
                           "user (/etc/passwd, /etc/shadow) is created instead of a systemd-homed one."));
        else if ((r = tpm2_check(req->tpm2_tcti, &st)) <= 0) {
                if (r < 0)
                        return r;
                snprintf(note, sizeof(note),
                         /* TRANSLATORS: %s is the sentence that says why the TPM cannot be used. */
                         _("%s The password can only reach the first boot sealed to the TPM, so a classic user (/etc/passwd, "
                           "/etc/shadow) is created instead of a systemd-homed one."),
                         st.problem);
        }
        if (note[0]) {
                a->kind = ACCOUNT_CLASSIC;
                a->note = strdup(note);
                if (!a->note)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(a);
        return 0;
}

int account_password_check(const PlanAccount *a, const Secret *password) {
        if (!password || password->size == 0)
                return error_setf(-EINVAL, _("The password must not be empty."));
        if (memchr(password->data, 0, password->size) || memchr(password->data, '\n', password->size))
                return error_setf(-EINVAL, _("The password must not contain NUL bytes or line breaks."));
        return password_quality_check((const char *) password->data, a->user_name);
}

/* A yescrypt hash (libxcrypt's strongest default), as passwd and homectl make them. */
static int hash_password(const Secret *password, char **ret) {
        struct crypt_data *cd;
        char *salt, *h;
        int r = 0;

        cd = calloc(1, sizeof(*cd));
        if (!cd)
                return -ENOMEM;
        salt = crypt_gensalt_rn("$y$", 0, NULL, 0, cd->setting, sizeof(cd->setting));
        if (!salt)
                r = error_setf(-errno ?: -EINVAL, _("Cannot make a password salt: %m"));
        else {
                h = crypt_r((const char *) password->data, salt, cd);
                if (!h || h[0] == '*')
                        r = error_setf(-EINVAL, _("Cannot hash the password."));
                else if (!(*ret = strdup(h)))
                        r = -ENOMEM;
        }
        secret_wipe(cd, sizeof(*cd));
        free(cd);
        return r;
}

/* Writes data to root/path (created with mode; parents must exist); refuses symlinks. */
static int write_new_file(const char *root, const char *path, const void *data, size_t size, mode_t mode) {
        _cleanup_(freep) char *full = NULL;
        _cleanup_(closep) int fd = -EBADF;

        if (asprintf(&full, "%s%s", root, path) < 0)
                return -ENOMEM;
        (void) unlink(full);
        fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return error_setf(-errno, _("Cannot create %s in the installed system: %m"), path);
        if (pwrite_full(fd, data, size, 0) < 0 || fchmod(fd, mode) < 0 || fsync(fd) < 0)
                return error_setf(-errno, _("Cannot write %s in the installed system: %m"), path);
        return 0;
}

static int mkdir_in_root(const char *root, const char *path, mode_t mode) {
        _cleanup_(freep) char *full = NULL;

        if (asprintf(&full, "%s%s", root, path) < 0)
                return -ENOMEM;
        if (mkdir(full, mode) < 0 && errno != EEXIST)
                return error_setf(-errno, _("Cannot create %s in the installed system: %m"), path);
        (void) chmod(full, mode);
        return 0;
}

static bool group_exists(const char *root, const char *group) {
        _cleanup_(freep) char *path = NULL, *text = NULL;
        size_t n = strlen(group);

        if (asprintf(&path, "%s/etc/group", root) < 0 || read_full_file(path, &text, NULL) < 0)
                return false;
        for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                if (strncmp(l, group, n) == 0 && l[n] == ':')
                        return true;
        return false;
}

/* Sets KEY=VALUE in an environment-style file of the installed root, keeping its other lines.
 * A symlink inside /etc (Debian keeps /etc/vconsole.conf -> default/keyboard and recreates it at
 * every boot) is followed once, so the value lands where the installed system reads it. */
static int set_env_in_root(const char *root, const char *path, const char *const *keys, const char *value) {
        _cleanup_(freep) char *full = NULL, *text = NULL, *out = NULL, *resolved = NULL;
        char target[PATH_MAX];
        ssize_t n;
        size_t len = 0, cap;
        FILE *f;

        if (asprintf(&full, "%s%s", root, path) < 0)
                return -ENOMEM;
        n = readlink(full, target, sizeof(target) - 1);
        if (n > 0) {
                target[n] = 0;
                if (strstr(target, "..") || (target[0] == '/' && strncmp(target, "/etc/", 5) != 0))
                        return error_setf(-ELOOP, _("%s in the installed system points outside /etc (%s)."), path, target);
                if (target[0] == '/' ? asprintf(&resolved, "%s", target) < 0
                                     : asprintf(&resolved, "%.*s/%s", (int) (strrchr(path, '/') - path), path, target) < 0)
                        return -ENOMEM;
                path = resolved;
                free(full);
                if (asprintf(&full, "%s%s", root, path) < 0)
                        return -ENOMEM;
        }
        (void) read_full_file(full, &text, NULL);

        f = open_memstream(&out, &cap);
        if (!f)
                return -ENOMEM;
        for (char *l = text, *next; l && *l; l = next) {
                bool drop = false;

                next = strchr(l, '\n');
                if (next)
                        *next++ = 0;
                for (size_t i = 0; keys[i]; i++)
                        if (strncmp(l, keys[i], strlen(keys[i])) == 0 && l[strlen(keys[i])] == '=')
                                drop = true;
                if (!drop)
                        fprintf(f, "%s\n", l);
        }
        for (size_t i = 0; keys[i]; i++)
                fprintf(f, "%s=%s\n", keys[i], value); /* validated: no spaces or quotes */
        if (fclose(f) != 0)
                return -ENOMEM;
        len = strlen(out);
        return write_new_file(root, path, out, len, 0644);
}

static int configure_settings(const Plan *p, const char *root) {
        const PlanSettings *s = &p->settings;
        _cleanup_(freep) char *a_root = NULL, *a_host = NULL, *a_tz = NULL;
        char *argv[6];
        size_t n = 0;
        int r;

        /* Hostname and time zone through the stock tool. Locale and keymap by hand: Debian
         * keeps /etc/default/locale -> ../locale.conf and /etc/vconsole.conf -> default/keyboard
         * as symlinks that tmpfiles restores at every boot, and systemd-firstboot replaces them
         * with files (252) or refuses keymaps the image has no data for (257), so its values
         * would be lost at first boot. */
        if (s->hostname || s->timezone) {
                if (asprintf(&a_root, "--root=%s", root) < 0 || (s->hostname && asprintf(&a_host, "--hostname=%s", s->hostname) < 0) ||
                    (s->timezone && asprintf(&a_tz, "--timezone=%s", s->timezone) < 0))
                        return -ENOMEM;
                argv[n++] = (char *) "systemd-firstboot";
                argv[n++] = a_root;
                /* The image may ship defaults (a hostname from the build): the choice made now wins. */
                argv[n++] = (char *) "--force";
                if (a_host)
                        argv[n++] = a_host;
                if (a_tz)
                        argv[n++] = a_tz;
                argv[n] = NULL;
                r = run_command(argv, &(RunOptions) { .quiet_stderr = true });
                if (r < 0)
                        return r;
        }
        if (s->locale) {
                r = set_env_in_root(root, "/etc/locale.conf", (const char *const[]) { "LANG", NULL }, s->locale);
                if (r < 0)
                        return r;
        }
        if (s->keymap) {
                /* KEYMAP for the console; XKBLAYOUT for Debian's localed and graphical sessions. */
                r = set_env_in_root(root, "/etc/vconsole.conf", (const char *const[]) { "KEYMAP", "XKBLAYOUT", NULL }, s->keymap);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int configure_homed(const Plan *p, const char *root, const Secret *password, const char *hash) {
        const PlanAccount *a = p->account;
        _cleanup_(freep) char *cred = NULL, *out = NULL, *unit = NULL, *link = NULL, *tpm_dev = NULL;
        json_object *rec, *priv, *hashes, *groups;
        const char *text;
        int r;

        rec = json_object_new_object();
        priv = json_object_new_object();
        hashes = json_object_new_array();
        groups = json_object_new_array();
        json_object_object_add(rec, "userName", json_object_new_string(a->user_name));
        if (a->real_name)
                json_object_object_add(rec, "realName", json_object_new_string(a->real_name));
        json_object_object_add(rec, "disposition", json_object_new_string("regular"));
        json_object_object_add(rec, "storage", json_object_new_string(account_storage_to_string(a->storage)));
        if (a->admin) {
                /* homed ignores groups that do not exist; Debian's admins are in sudo, others' in wheel.
                 * A root that starts empty (usr images) has no /etc/group yet: both, and homed
                 * keeps the one the system has at first boot. */
                _cleanup_(freep) char *group_file = NULL;
                bool none = asprintf(&group_file, "%s/etc/group", root) >= 0 && access(group_file, F_OK) < 0 && errno == ENOENT;

                if (none || group_exists(root, "sudo"))
                        json_object_array_add(groups, json_object_new_string("sudo"));
                if (none || group_exists(root, "wheel"))
                        json_object_array_add(groups, json_object_new_string("wheel"));
        }
        json_object_object_add(rec, "memberOf", groups);
        if (a->auto_login)
                json_object_object_add(rec, "autoLogin", json_object_new_boolean(true));
        json_object_array_add(hashes, json_object_new_string(hash));
        json_object_object_add(priv, "hashedPassword", hashes);
        json_object_object_add(rec, "privileged", priv);

        r = mkdir_in_root(root, "/etc/credstore", 0700);
        if (r >= 0)
                r = mkdir_in_root(root, "/etc/credstore.encrypted", 0700);
        if (r < 0) {
                json_object_put(rec);
                return r;
        }
        if (asprintf(&cred, "/etc/credstore/home.create.%s", a->user_name) < 0) {
                json_object_put(rec);
                return -ENOMEM;
        }
        text = json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN);
        r = write_new_file(root, cred, text, strlen(text), 0600);
        json_object_put(rec);
        if (r < 0)
                return r;

        /* The password, sealed by the stock tool to this computer's TPM (PCR 7, as the disk key):
         * the installed system decrypts it at first boot, nobody else can. It goes in on stdin. */
        if (asprintf(&out, "%s/etc/credstore.encrypted/home.password", root) < 0)
                return -ENOMEM;
        if (p->encryption.tpm2_tcti && strncmp(p->encryption.tpm2_tcti, "device:", 7) == 0 &&
            asprintf(&tpm_dev, "--tpm2-device=%s", p->encryption.tpm2_tcti + 7) < 0)
                return -ENOMEM;
        /* When the first boot enrolls Secure Boot keys, PCR 7 changes before the password is read
         * (secureboot.h): then it is sealed as the disk key is, to the UKI's signed PCR 11 policy
         * (the public key in a file that is gone again at once), or without a PCR when the UKI has
         * no .pcrpkey. It lives until systemd-homed-firstboot has made the account. */
        {
                bool enroll = p->secure_boot.decided && p->secure_boot.action == SECURE_BOOT_ENROLL;
                char keyfile[] = "/run/imprint-pcr-public-key.XXXXXX";
                _cleanup_(freep) char *key_arg = NULL;
                char *argv[12];
                size_t n = 0;
                int kfd = -EBADF;

                if (enroll && p->encryption.tpm2_pubkey) {
                        kfd = mkstemp(keyfile);
                        if (kfd < 0)
                                return error_setf(-errno, _("Cannot write the PCR public key for sealing the password: %m"));
                        r = pwrite_full(kfd, p->encryption.tpm2_pubkey, strlen(p->encryption.tpm2_pubkey), 0);
                        close(kfd);
                        if (r < 0 || asprintf(&key_arg, "--tpm2-public-key=%s", keyfile) < 0) {
                                (void) unlink(keyfile);
                                return r < 0 ? r : -ENOMEM;
                        }
                }
                argv[n++] = (char *) "systemd-creds";
                argv[n++] = (char *) "encrypt";
                argv[n++] = (char *) "--with-key=tpm2";
                argv[n++] = (char *) (enroll ? "--tpm2-pcrs=" : "--tpm2-pcrs=7");
                if (key_arg) {
                        argv[n++] = key_arg;
                        argv[n++] = (char *) "--tpm2-public-key-pcrs=11";
                }
                argv[n++] = (char *) "--name=home.password";
                argv[n++] = tpm_dev ?: (char *) "--tpm2-device=auto";
                argv[n++] = (char *) "-";
                argv[n++] = out;
                argv[n] = NULL;
                (void) unlink(out);
                r = run_command(argv, &(RunOptions) { .stdin_data = password->data, .stdin_size = password->size, .quiet_stderr = true });
                if (key_arg)
                        (void) unlink(keyfile);
                if (r < 0)
                        return error_prefixf(r, _("Cannot seal the password for the first boot"));
                (void) chmod(out, 0600);
        }

        /* Once homectl knows the user, the credentials have done their job. */
        if (asprintf(&unit,
                     "# Written by imprint: the account %s was handed to systemd-homed-firstboot.service as credentials;\n"
                     "# once the user exists they are removed.\n"
                     "[Unit]\n"
                     "Description=Remove the installer's account credentials\n"
                     "After=systemd-homed-firstboot.service systemd-homed.service\n"
                     "ConditionPathExists=/etc/credstore.encrypted/home.password\n\n"
                     "[Service]\n"
                     "Type=oneshot\n"
                     "ExecCondition=homectl inspect %s\n"
                     "ExecStart=rm -f /etc/credstore.encrypted/home.password /etc/credstore/home.create.%s\n\n"
                     "[Install]\n"
                     "WantedBy=multi-user.target\n",
                     a->user_name, a->user_name, a->user_name) < 0)
                return -ENOMEM;
        r = write_new_file(root, "/etc/systemd/system/imprint-firstboot-cleanup.service", unit, strlen(unit), 0644);
        if (r < 0)
                return r;
        r = mkdir_in_root(root, "/etc/systemd/system/multi-user.target.wants", 0755);
        if (r < 0)
                return r;
        if (asprintf(&link, "%s/etc/systemd/system/multi-user.target.wants/imprint-firstboot-cleanup.service", root) < 0)
                return -ENOMEM;
        (void) unlink(link);
        if (symlink("../imprint-firstboot-cleanup.service", link) < 0)
                return error_setf(-errno, _("Cannot enable imprint-firstboot-cleanup.service: %m"));
        /* Debian installs systemd-homed-firstboot.service disabled (no preset enables it). */
        r = mkdir_in_root(root, "/etc/systemd/system/systemd-homed.service.wants", 0755);
        if (r < 0)
                return r;
        free(link);
        if (asprintf(&link, "%s/etc/systemd/system/systemd-homed.service.wants/systemd-homed-firstboot.service", root) < 0)
                return -ENOMEM;
        (void) unlink(link);
        if (symlink("/usr/lib/systemd/system/systemd-homed-firstboot.service", link) < 0)
                return error_setf(-errno, _("Cannot enable systemd-homed-firstboot.service: %m"));
        log_info("The account %s will be created by systemd-homed at first boot (storage %s).", a->user_name,
                 account_storage_to_string(a->storage));
        return 0;
}

static int configure_classic(const Plan *p, const char *root, const char *hash) {
        const PlanAccount *a = p->account;
        _cleanup_(freep) char *line = NULL, *groups = NULL;
        char *argv[16];
        size_t n = 0;
        int r;

        if (a->admin) {
                bool sudo = group_exists(root, "sudo"), wheel = group_exists(root, "wheel");
                if (sudo || wheel)
                        groups = strdup(sudo && wheel ? "sudo,wheel" : sudo ? "sudo" : "wheel");
        }
        argv[n++] = (char *) "useradd";
        argv[n++] = (char *) "--root";
        argv[n++] = (char *) root;
        argv[n++] = (char *) "--create-home";
        argv[n++] = (char *) "--user-group";
        argv[n++] = (char *) "--shell";
        argv[n++] = (char *) "/bin/bash";
        if (a->real_name) {
                argv[n++] = (char *) "--comment";
                argv[n++] = a->real_name;
        }
        if (groups) {
                argv[n++] = (char *) "--groups";
                argv[n++] = groups;
        }
        argv[n++] = a->user_name;
        argv[n] = NULL;
        r = run_command(argv, &(RunOptions) { .quiet_stderr = true });
        if (r < 0)
                return r;

        /* The hash goes in on stdin, never on a command line. */
        if (asprintf(&line, "%s:%s\n", a->user_name, hash) < 0)
                return -ENOMEM;
        {
                char *cp[] = { (char *) "chpasswd", (char *) "--root", (char *) root, (char *) "--encrypted", NULL };
                r = run_command(cp, &(RunOptions) { .stdin_data = line, .stdin_size = strlen(line), .quiet_stderr = true });
        }
        secret_wipe(line, strlen(line));
        if (r < 0)
                return r;
        if (a->auto_login)
                log_warning("Automatic login is only set up for systemd-homed accounts; %s logs in with the password.", a->user_name);
        log_info("Created the classic user %s in the installed system.", a->user_name);
        return 0;
}

int account_configure_root(const Plan *p, const char *root, const Secret *password) {
        _cleanup_(freep) char *hash = NULL;
        int r;

        r = configure_settings(p, root);
        if (r < 0)
                return error_prefixf(r, _("Cannot write hostname, timezone, locale and keymap"));
        if (!p->account)
                return 0;
        if (!password)
                return error_setf(-EINVAL, _("The plan creates the account %s, but no password was given."), p->account->user_name);
        r = hash_password(password, &hash);
        if (r < 0)
                return r;
        if (p->account->kind == ACCOUNT_HOMED)
                r = configure_homed(p, root, password, hash);
        else
                r = configure_classic(p, root, hash);
        secret_wipe(hash, strlen(hash));
        return r;
}
