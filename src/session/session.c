/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The install session (session.h): the request, what was opened for it, the plan, the secrets,
 * and the install with its event stream. Front ends call this; this calls the engine. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "fileio.h"
#include "i18n.h"
#include "interrupt.h"
#include "log.h"
#include "logsave.h"
#include "run.h"
#include "quality.h"
#include "recovery-entry.h"
#include "secureboot.h"
#include "session.h"
#include "stream.h"
#include "validate.h"

struct Session {
        char *source_path;           /* resolved */
        Image *image;
        char *image_cert;            /* PEM text of --image-certificate, NULL: none */
        char *image_cert_path;

        char **targets;              /* offer only these (NULL: all) */
        size_t n_targets;
        DiskList disks;              /* the last discovery */
        DiskList extra;              /* disks asked for by path that the list does not hold */

        /* reset_probe() of the disks asked about, until the next discovery or write */
        struct {
                const Disk *disk;
                ResetTarget *target;
        } *reset_targets;
        size_t n_reset_targets;

        bool tpm_checked;
        int tpm_usable;
        char *tpm_tcti;
        Tpm2Status tpm;

        Plan *plan;
        Secret *secrets[_SESSION_SECRET_MAX];

        /* the last install */
        bool wrote;
        int interrupted;             /* the signal that stopped it */
        char *failed_step, *failed_step_id;
        SessionEventHandler handler;
        void *userdata;
        const char *escrow_dir;
        const char *escrow_certificate;

        /* What the plan was made from: a streamed image's plan is made again once its big
         * partition is written (stream.h). Its strings belong to the front end. */
        SessionRequest request;
        bool have_request;
        char *image_key;             /* "imageKey": the key SHA256SUMS' signature is checked with */
        SourceOptions source_options;
};

int session_new(Session **ret) {
        Session *s;

        error_clear();
        s = calloc(1, sizeof(Session));
        if (!s)
                return error_setf(-ENOMEM, "Out of memory.");
        *ret = s;
        return 0;
}

static void secrets_clear(Session *s) {
        for (size_t i = 0; i < _SESSION_SECRET_MAX; i++)
                s->secrets[i] = secret_free(s->secrets[i]);
}

static void reset_targets_clear(Session *s) {
        for (size_t i = 0; i < s->n_reset_targets; i++)
                reset_target_free(s->reset_targets[i].target);
        s->reset_targets = mfree(s->reset_targets);
        s->n_reset_targets = 0;
}

static void strv_free_n(char **l, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(l[i]);
        free(l);
}

Session *session_free(Session *s) {
        if (!s)
                return NULL;
        free(s->source_path);
        image_free(s->image);
        free(s->image_cert);
        free(s->image_key);
        free(s->image_cert_path);
        strv_free_n(s->targets, s->n_targets);
        disk_list_done(&s->disks);
        disk_list_done(&s->extra);
        reset_targets_clear(s);
        tpm2_status_done(&s->tpm);
        free(s->tpm_tcti);
        plan_free(s->plan);
        secrets_clear(s);
        free(s->failed_step);
        free(s->failed_step_id);
        free(s);
        return NULL;
}

/* ---- errors -------------------------------------------------------------------------------- */

enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1,    /* the operation failed (I/O error, a tool failed, …) */
        EXIT_USAGE = 2,     /* bad command line or bad input (options, plan file, names) */
        EXIT_REFUSED = 3,   /* the target may not be written: in use, mounted, system disk, read-only, conflicting */
        EXIT_TOO_SMALL = 4, /* the layout does not fit on the target */
        EXIT_CHANGED = 5,   /* the target changed since the plan was made */
        EXIT_CANCELED = 6,  /* not confirmed; nothing was written */
        EXIT_BAD_IMAGE = 7, /* the OS image is unusable: truncated, damaged, checksum mismatch, not a DDI */
};

int session_exit_code(int r) {
        switch (-r) {
        case 0:
                return EXIT_OK;
        case EINVAL:
        case ENOENT:
        case ENOTBLK:
        case EOPNOTSUPP:
        case E2BIG:
                return EXIT_USAGE;
        case EBUSY:
        case EROFS:
        case EEXIST:
        case EPERM:
        case EACCES:
                return EXIT_REFUSED;
        case ENOSPC:
                return EXIT_TOO_SMALL;
        case ESTALE:
                return EXIT_CHANGED;
        case ECANCELED:
                return EXIT_CANCELED;
        case EBADMSG:
                return EXIT_BAD_IMAGE;
        default:
                return EXIT_FAILED;
        }
}

const char *session_error_message(int r) {
        return error_message_for(r) ?: strerror(r < 0 ? -r : r);
}

/* ---- the source ---------------------------------------------------------------------------- */

int session_set_source(Session *s, const char *source) {
        _cleanup_(install_config_done) InstallConfig defaults = {};
        _cleanup_(freep) char *path = NULL;
        int r;

        error_clear();
        if (!source) {
                install_config_init(&defaults);
                r = install_config_load_defaults(&defaults);
                if (r < 0)
                        return r;
                source = defaults.source;
                if (!source)
                        return error_setf(-EINVAL, _("No OS image is configured: start imprint --source IMAGE."));
                /* The configured image's key comes with it, unless one was given. */
                if (defaults.image_key && !s->image_key) {
                        r = session_set_image_key(s, defaults.image_key);
                        if (r < 0)
                                return r;
                }
        }
        if (streq(source, "self"))
                r = image_resolve_self(&path);
        else
                r = (path = strdup(source)) ? 0 : -ENOMEM;
        if (r < 0)
                return r;
        if (streq_ptr(s->source_path, path))
                return 0;
        s->image = image_free(s->image);
        free(s->source_path);
        s->source_path = TAKE_PTR(path);
        return 0;
}

int session_set_image_key(Session *s, const char *path) {
        _cleanup_(freep) char *p = NULL;
        SumsKeyKind kind;
        int r;

        error_clear();
        if (path) {
                r = sums_key_kind(path, &kind);
                if (r < 0)
                        return r;
                p = strdup(path);
                if (!p)
                        return -ENOMEM;
        }
        free(s->image_key);
        s->image_key = TAKE_PTR(p);
        s->image = image_free(s->image);
        return 0;
}

int session_set_image_certificate(Session *s, const char *path) {
        _cleanup_(freep) char *text = NULL, *p = NULL;
        size_t size = 0;
        int r;

        error_clear();
        if (path) {
                r = read_full_file(path, &text, &size);
                if (r < 0)
                        return error_setf(r == -ENOENT ? -ENOENT : -EINVAL, _("Cannot read the image certificate %s: %s"), path,
                                          strerror(-r));
                if (!strstr(text, "-----BEGIN CERTIFICATE-----"))
                        return error_setf(-EINVAL, _("%s is not a PEM certificate (no \"-----BEGIN CERTIFICATE-----\" line)."), path);
                p = strdup(path);
                if (!p)
                        return -ENOMEM;
        }
        free(s->image_cert);
        free(s->image_cert_path);
        s->image_cert = TAKE_PTR(text);
        s->image_cert_path = TAKE_PTR(p);
        /* An image opened without it is checked again. */
        s->image = image_free(s->image);
        return 0;
}

int session_open_source(Session *s) {
        _cleanup_(image_freep) Image *img = NULL;
        int r;

        error_clear();
        if (!s->source_path)
                return error_setf(-EINVAL, _("No OS image is named."));
        if (s->image)
                return 0;
        r = image_location_is_stream(s->source_path);
        if (r < 0)
                return error_setf(r, _("Cannot open the image %s: %s"), s->source_path, strerror(-r));
        if (r > 0) {
                /* Read once, start to end: up to its big partition now, the rest while installing. */
                r = image_stream_open(s->source_path, &(StreamOpenOptions) { .key_path = s->image_key, .source = s->source_options },
                                      &img);
                if (r < 0)
                        return r;
                if (s->image_cert && (img->kind != IMAGE_KIND_USR || !img->usr_verity_sig))
                        return error_setf(-EINVAL, _("The image %s has no usr-verity-sig partition, so the certificate %s cannot check it."),
                                          s->source_path, s->image_cert_path);
                s->image = TAKE_PTR(img);
                return 0;
        }
        if (s->image_key) {
                r = image_check_signed_sums(s->source_path, s->image_key);
                if (r < 0)
                        return r;
        }
        r = image_open(s->source_path, &img);
        if (r >= 0)
                r = image_find_checksum(img);
        if (r >= 0)
                r = image_load_boot(img);
        if (r >= 0 && s->image_cert) {
                /* The certificate is for a usr image's signature partition; given for anything
                 * else, it would be a check that silently did not happen. */
                if (img->kind != IMAGE_KIND_USR || !img->usr_verity_sig)
                        r = error_setf(-EINVAL, _("The image %s has no usr-verity-sig partition, so the certificate %s cannot check it."),
                                       s->source_path, s->image_cert_path);
                else
                        r = image_check_usr(img, s->image_cert);
        }
        if (r < 0)
                return r;
        s->image = TAKE_PTR(img);
        return 0;
}

const Image *session_image(const Session *s) {
        return s->image;
}

const char *session_source_path(const Session *s) {
        return s->source_path;
}

const char *session_source_name(const Session *s) {
        return s->image ? s->image->pretty_name : NULL;
}

/* ---- disks --------------------------------------------------------------------------------- */

int session_set_targets(Session *s, char *const *targets, size_t n) {
        char **l = NULL;

        error_clear();
        if (n > 0) {
                l = calloc(n, sizeof(char *));
                if (!l)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++)
                        if (!(l[i] = strdup(targets[i]))) {
                                strv_free_n(l, n);
                                return -ENOMEM;
                        }
        }
        strv_free_n(s->targets, s->n_targets);
        s->targets = l;
        s->n_targets = n;
        return 0;
}

static int disk_list_append(DiskList *l, Disk *d) {
        Disk **n = realloc(l->disks, (l->n_disks + 1) * sizeof(Disk *));

        if (!n)
                return -ENOMEM;
        l->disks = n;
        l->disks[l->n_disks++] = d;
        return 0;
}

/* Discovers one disk or image file by path, saying what to do when it does not exist. */
static int discover_path(const char *path, bool probe_os, Disk **ret) {
        int r = disk_discover(path, &(DiscoverOptions) { .probe_os = probe_os }, ret);

        if (r == -ENOENT && access(path, F_OK) < 0 && errno == ENOENT) {
                if (strncmp(path, "/dev/", 5) == 0)
                        return error_setf(r, _("%s does not exist; imprint disks lists the disks of this machine."), path);
                return error_setf(r, _("%s does not exist. To install into an image file, make one first, for example a sparse "
                                       "16 GiB file: truncate -s 16G %s"), path, path);
        }
        return r;
}

int session_discover(Session *s, bool probe_os) {
        DiskList l = {};
        int r = 0;

        error_clear();
        if (s->n_targets == 0)
                r = disk_list_discover(&(DiscoverOptions) { .probe_os = probe_os }, &l);
        else
                for (size_t i = 0; i < s->n_targets && r >= 0; i++) {
                        Disk *d = NULL;

                        r = discover_path(s->targets[i], probe_os, &d);
                        if (r >= 0 && disk_list_append(&l, d) < 0) {
                                disk_free(d);
                                r = -ENOMEM;
                        }
                }
        if (r < 0) {
                disk_list_done(&l);
                return r;
        }
        /* The plan may point at a disk of the old list only through its own copies. */
        reset_targets_clear(s);
        disk_list_done(&s->disks);
        disk_list_done(&s->extra);
        s->disks = l;
        return 0;
}

const DiskList *session_disks(const Session *s) {
        return &s->disks;
}

static Disk *find_disk(DiskList *l, const char *path) {
        _cleanup_(freep) char *real = realpath(path, NULL);

        for (size_t i = 0; i < l->n_disks; i++) {
                Disk *d = l->disks[i];
                if (streq_ptr(d->path, path) || (real && streq_ptr(d->path, real)))
                        return d;
                if (real && d->path) {
                        _cleanup_(freep) char *dr = realpath(d->path, NULL);
                        if (dr && streq(dr, real))
                                return d;
                }
        }
        return NULL;
}

int session_disk(Session *s, const char *path, const Disk **ret) {
        Disk *d;
        int r;

        error_clear();
        if (!path)
                return error_setf(-EINVAL, _("No target disk or image file is named."));
        d = find_disk(&s->disks, path) ?: find_disk(&s->extra, path);
        if (!d) {
                r = discover_path(path, true, &d);
                if (r < 0)
                        return r;
                if (disk_list_append(&s->extra, d) < 0) {
                        disk_free(d);
                        return -ENOMEM;
                }
        }
        *ret = d;
        return 0;
}

/* After an install wrote to a disk, what the session knows about it is old: look again, so that
 * a retry plans from what is there now. */
static void refresh_disk(Session *s, const char *path) {
        DiskList *lists[] = { &s->disks, &s->extra };

        for (size_t k = 0; k < ELEMENTSOF(lists); k++)
                for (size_t i = 0; i < lists[k]->n_disks; i++) {
                        Disk *d = lists[k]->disks[i], *n = NULL;

                        if (!streq_ptr(d->path, path))
                                continue;
                        Disk tmp;

                        if (disk_discover(path, &(DiscoverOptions) { .probe_os = true }, &n) < 0)
                                continue; /* the old facts stay; the executor's checks catch a change */
                        /* In place: front ends hold pointers to the disks of the list. */
                        tmp = *d;
                        *d = *n;
                        *n = tmp;
                        disk_free(n);
                }
}

/* ---- policy -------------------------------------------------------------------------------- */

bool session_can_keep_partitions(const Disk *d) {
        return plan_can_use_free_space(d);
}

bool session_can_encrypt(const Disk *d) {
        return encryption_possible(d->kind);
}

int session_tpm(Session *s, const char *tcti, const Tpm2Status **ret) {
        int r;

        error_clear();
        if (!s->tpm_checked || !streq_ptr(s->tpm_tcti, tcti)) {
                tpm2_status_done(&s->tpm);
                free(s->tpm_tcti);
                s->tpm_tcti = NULL;
                if (tcti && !(s->tpm_tcti = strdup(tcti)))
                        return -ENOMEM;
                r = tpm2_check(tcti, &s->tpm);
                if (r < 0)
                        return r;
                s->tpm_usable = r;
                s->tpm_checked = true;
        }
        if (ret)
                *ret = &s->tpm;
        return s->tpm_usable;
}

int session_encryption_note(Session *s, const Disk *d, const EncryptRequest *req, char **ret_note) {
        _cleanup_(plan_encryption_done) PlanEncryption e = {};
        int r;

        error_clear();
        r = encryption_decide(req, d->kind, s->image, &e);
        if (r < 0)
                return r;
        *ret_note = TAKE_PTR(e.note);
        return 0;
}

int session_account_is_homed(Session *s, const Disk *d, const AccountRequest *req, char **ret_note) {
        _cleanup_(plan_account_freep) PlanAccount *a = NULL;
        AccountRequest q = *req;
        int r;

        error_clear();
        if (!q.user_name)
                q.user_name = "user";
        r = account_decide(&q, s->image, d->kind, &a);
        if (r < 0)
                return r;
        if (ret_note)
                *ret_note = TAKE_PTR(a->note);
        return a->kind == ACCOUNT_HOMED;
}

/* A setting of the running (live) system: key in an env file, or (key NULL) the zone a
 * /etc/localtime link points to. */
static char *live_setting(const char *file, const char *key) {
        char *v = NULL;

        if (key) {
                _cleanup_(freep) char *text = NULL;
                if (read_full_file(file, &text, NULL) >= 0)
                        v = env_file_get(text, key);
        } else {
                char buf[256];
                ssize_t n = readlink(file, buf, sizeof(buf) - 1);
                if (n > 0) {
                        const char *z;
                        buf[n] = 0;
                        z = strstr(buf, "zoneinfo/");
                        v = z ? strdup(z + strlen("zoneinfo/")) : NULL;
                }
        }
        return v;
}

int session_live_settings(PlanSettings *ret) {
        error_clear();
        *ret = (PlanSettings) {
                .hostname = strdup("imprint"),
                .timezone = live_setting("/etc/localtime", NULL),
                .locale = live_setting("/etc/locale.conf", "LANG"),
                .keymap = live_setting("/etc/vconsole.conf", "KEYMAP"),
        };
        if (!ret->hostname) {
                plan_settings_done(ret);
                return -ENOMEM;
        }
        return 0;
}

/* ---- unattended installs ---------------------------------------------------------------- */

int session_find_config(Session *s, const char *explicit_path, InstallConfig *c) {
        int r;

        error_clear();
        r = install_config_find(c, explicit_path);
        if (r < 0)
                return r;
        if (r == 0)
                return error_setf(-EINVAL, "No install configuration: pass --config FILE, the credential imprint.config, "
                                           "or imprint.config=PATH on the kernel command line.");
        /* A reset needs an image only for classic images (session_plan_reset() says so then). */
        if (!c->source && !c->reset)
                return error_setf(-EINVAL, "%s: no \"source\" image is named.", c->origin);
        return 0;
}

/* The one disk that carries an imprint install record (as for an install's "auto", several or
 * none are an error naming them: a reset never guesses). */
static int find_reset_disk(Session *s, const char *what, const Disk **ret) {
        const DiskList *l;
        const Disk *found = NULL;
        char names[1024] = "";
        size_t n = 0;
        int r;

        if (session_disks(s)->n_disks == 0) {
                r = session_discover(s, false);
                if (r < 0)
                        return r;
        }
        l = session_disks(s);
        for (size_t i = 0; i < l->n_disks; i++) {
                const ResetTarget *t;
                size_t len = strlen(names);

                if (session_reset_target(s, l->disks[i], &t) <= 0)
                        continue;
                snprintf(names + len, sizeof(names) - len, "%s%s", n ? ", " : "", l->disks[i]->path);
                found = l->disks[i];
                n++;
        }
        error_clear();
        if (n == 0)
                /* TRANSLATORS: %s is what was looked for: "Reset target \"auto\"" or "No disk was named". */
                return error_setf(-ENOENT, _("%s: no disk here carries an imprint install record (see imprint disks)."), what);
        if (n > 1)
                return error_setf(-EBUSY, _("%s: %zu disks were installed by imprint (%s); name one."), what, n, names);
        *ret = found;
        return 0;
}

static int resolve_reset_auto(Session *s, InstallConfig *c) {
        const Disk *d;
        int r;

        r = find_reset_disk(s, "Reset target \"auto\"", &d);
        if (r < 0)
                return r;
        free(c->reset_target);
        c->reset_target = strdup(d->devnode ?: d->path);
        if (!c->reset_target)
                return -ENOMEM;
        log_info("reset target \"auto\" is %s", c->reset_target);
        return 0;
}

int session_resolve_config_target(Session *s, InstallConfig *c) {
        error_clear();
        if (!c->reset)
                return install_config_resolve_target(c);
        /* No target: the disk the recovery entry was started from (session_plan_reset()). */
        if (!c->reset_target)
                return 0;
        if (streq(c->reset_target, "auto"))
                return resolve_reset_auto(s, c);
        for (unsigned i = 0; access(c->reset_target, F_OK) < 0 && i < c->wait_for_target_sec * 10; i++)
                usleep(100 * 1000);
        if (access(c->reset_target, F_OK) < 0)
                return error_setf(-ENOENT, "The reset target %s did not appear within %u seconds.", c->reset_target,
                                  c->wait_for_target_sec);
        return 0;
}

/* ---- the plan ------------------------------------------------------------------------------ */

bool session_user_name_is_valid(const char *name) {
        return user_name_is_valid(name);
}

int session_check_settings(const PlanSettings *s) {
        error_clear();
        return settings_validate(s);
}

/* ---- factory reset -------------------------------------------------------------------------- */

static void set_plan(Session *s, Plan *p);

void session_reset_request_init(SessionResetRequest *r) {
        *r = (SessionResetRequest) { .entry_point = RESET_FROM_LIVE_MEDIUM };
}

int session_reset_target(Session *s, const Disk *d, const ResetTarget **ret) {
        _cleanup_(reset_target_freep) ResetTarget *t = NULL;
        void *n;
        int r;

        error_clear();
        for (size_t i = 0; i < s->n_reset_targets; i++)
                if (s->reset_targets[i].disk == d) {
                        if (ret)
                                *ret = s->reset_targets[i].target;
                        return !s->reset_targets[i].target->refusal;
                }
        r = reset_probe(d, &t);
        if (r < 0)
                return r;
        /* reset_probe() says 0 with a refusal; keep the two in step whatever it returned. */
        if (r == 0 && !t->refusal && !(t->refusal = strdup(_("It cannot be reset."))))
                return -ENOMEM;
        n = realloc(s->reset_targets, (s->n_reset_targets + 1) * sizeof(*s->reset_targets));
        if (!n)
                return -ENOMEM;
        s->reset_targets = n;
        s->reset_targets[s->n_reset_targets].disk = d;
        s->reset_targets[s->n_reset_targets].target = t;
        s->n_reset_targets++;
        if (ret)
                *ret = t;
        TAKE_PTR(t);
        return !s->reset_targets[s->n_reset_targets - 1].target->refusal;
}

int session_plan_reset(Session *s, const SessionResetRequest *r, const Plan **ret) {
        _cleanup_(plan_freep) Plan *p = NULL;
        const ResetTarget *t;
        const Disk *d;
        ResetRequest req;
        int k;

        error_clear();
        if (r->target) {
                k = session_disk(s, r->target, &d);
                if (k < 0)
                        return k;
        } else {
                /* The recovery entry resets the disk it was started from; elsewhere (the live
                 * medium, a disk the firmware did not boot from) the one disk imprint installed. */
                if (session_disks(s)->n_disks == 0) {
                        k = session_discover(s, false);
                        if (k < 0)
                                return k;
                }
                k = reset_boot_disk(session_disks(s), &d);
                if (k >= 0 && session_reset_target(s, d, NULL) <= 0)
                        k = -ENXIO;
                if (k < 0) {
                        k = find_reset_disk(s, _("No disk was named"), &d);
                        if (k < 0)
                                return k;
                }
        }

        k = session_reset_target(s, d, &t);
        if (k < 0)
                return k;
        if (k == 0)
                /* TRANSLATORS: %s is the disk, then the engine's sentence saying why (it names the disk too). */
                return error_setf(-EPERM, _("Cannot reset %s: %s Nothing was written."), d->path, t->refusal);
        if (r->keep_home && !t->has_home)
                return error_setf(-EINVAL, _("%s has no home partition to keep."), d->path);
        if (r->account.user_name && !user_name_is_valid(r->account.user_name))
                return error_setf(-EINVAL, _("\"%s\" cannot be a user name: lower-case letters, digits, _ and -, starting with a letter."),
                                  r->account.user_name);
        k = settings_validate(&r->settings);
        if (k < 0)
                return k;
        /* Classic images deploy root again from the medium's image: open it when one is named. */
        if (t->kind == PLAN_SOURCE_ROOT && s->source_path && !s->image) {
                k = session_open_source(s);
                if (k < 0)
                        return k;
        }
        /* A reset erases before it deploys: its image must be at hand, not on a server. */
        if (t->kind == PLAN_SOURCE_ROOT && s->image && s->image->stream)
                return error_setf(-EINVAL,
                                  _("A factory reset deploys root again from an image file on the medium, not from %s, which can only be "
                                    "read once as it comes; decompress or download it to the medium first."),
                                  s->source_path);

        reset_request_init(&req);
        req.target = d->path;
        req.entry_point = r->entry_point;
        req.keep_home = r->keep_home;
        req.secure_erase = r->secure_erase;
        req.tpm_clear = r->tpm_clear;
        req.tpm2_tcti = r->account.tpm2_tcti;
        req.account = r->account.user_name ? &r->account : NULL;
        req.settings = &r->settings;
        k = reset_plan(d, &req, t->kind == PLAN_SOURCE_ROOT ? s->image : NULL, &p);
        if (k < 0)
                return k;
        if (p->mode != PLAN_RESET || !p->reset)
                return error_setf(-EINVAL, "The reset plan for %s is not a reset plan.", d->path);
        set_plan(s, TAKE_PTR(p));
        if (ret)
                *ret = s->plan;
        return 0;
}

void session_request_init(SessionRequest *r) {
        *r = (SessionRequest) {};
        plan_options_init(&r->layout);
        encrypt_request_init(&r->encrypt);
}

static void set_plan(Session *s, Plan *p) {
        plan_free(s->plan);
        s->plan = p;
        /* Secrets belong to the plan they were set for. */
        secrets_clear(s);
}

static int make_plan(Session *s, const SessionRequest *req, Plan **ret);

int session_plan(Session *s, const SessionRequest *req, const Plan **ret) {
        Plan *p = NULL;
        int r;

        error_clear();
        r = make_plan(s, req, &p);
        if (r < 0)
                return r;
        set_plan(s, p);
        s->request = *req;
        s->have_request = true;
        if (ret)
                *ret = p;
        return 0;
}

static int make_plan(Session *s, const SessionRequest *req, Plan **ret) {
        _cleanup_(plan_source_freep) PlanSource *src = NULL;
        _cleanup_(plan_encryption_done) PlanEncryption e = {};
        _cleanup_(plan_secure_boot_done) PlanSecureBoot sb = {};
        _cleanup_(plan_account_freep) PlanAccount *acct = NULL;
        _cleanup_(freep) char *recovery_uki = NULL;
        PlanOptions o = req->layout;
        const Disk *d;
        Plan *p;
        int r;

        error_clear();
        if (req->with_image) {
                uint64_t recovery_uki_size;

                if (!s->image)
                        return error_setf(-EINVAL, _("No OS image is open to install."));
                r = image_to_plan_source(s->image, &src);
                if (r < 0)
                        return r;
                o.source = src;
                /* The recovery entry this medium carries (none: the install has none). */
                r = recovery_entry_find(&recovery_uki, &recovery_uki_size);
                if (r < 0)
                        return r;
                if (!o.recovery_uki)
                        o.recovery_uki = recovery_uki;
        } else
                o.source = NULL;
        o.encryption = NULL;
        o.account = NULL;
        o.settings = NULL;

        r = session_disk(s, req->target, &d);
        if (r < 0)
                return r;
        if (req->with_image && d->kind == DISK_IMAGE_FILE) {
                _cleanup_(freep) char *t = realpath(d->path, NULL);
                if (t && streq_ptr(t, s->source_path))
                        return error_setf(-EINVAL, _("The image and the target are the same file, %s."), t);
        }
        /* Secure Boot before encryption: enrolling keys at first boot decides the TPM2 policy. */
        if (req->with_image) {
                r = secureboot_decide(&(SecureBootRequest) { .allow_unbootable = req->allow_unbootable,
                                                             .recovery_uki = o.recovery_uki },
                                      d->kind, s->image, &sb);
                if (r < 0)
                        return r;
                if (sb.recovery_refused)
                        o.recovery_uki = NULL;
                o.secure_boot = &sb;
        } else
                o.secure_boot = NULL;
        r = encryption_decide(&req->encrypt, d->kind, req->with_image ? s->image : NULL, &e);
        if (r < 0)
                return r;
        if (req->with_image) {
                r = secureboot_adjust_encryption(&sb, s->image, &req->encrypt, &e);
                if (r < 0)
                        return r;
        }
        o.encryption = &e;
        if (req->account.user_name) {
                AccountRequest a = req->account;

                if (!req->with_image)
                        return error_setf(-EINVAL, _("An account can only be created by an install of an image (--source)."));
                if (!a.tpm2_tcti)
                        a.tpm2_tcti = req->encrypt.tpm2_tcti;
                r = account_decide(&a, s->image, d->kind, &acct);
                if (r < 0)
                        return r;
                o.account = acct;
        }
        r = settings_validate(&req->settings);
        if (r < 0)
                return r;
        o.settings = &req->settings;

        r = plan_build(d, &o, &p);
        if (r < 0)
                return r;
        *ret = p;
        return 0;
}

/* The executor's image_streamed: the image's big partition is on disk at offset; the checks that
 * waited for it run there, and the plan is made again from the whole image and taken over. */
static int on_image_streamed(const char *disk, uint64_t offset, void *userdata) {
        Session *s = userdata;
        _cleanup_(plan_freep) Plan *next = NULL;
        int r;

        r = image_stream_complete(s->image, disk, offset, s->image_cert);
        if (r < 0)
                return r;
        if (!s->have_request)
                return error_setf(-EINVAL, _("The plan for the streamed image %s was not made in this session."), s->plan->source->path);
        r = make_plan(s, &s->request, &next);
        if (r < 0)
                return error_prefixf(r, _("Once its %s partition was read, the image %s does not fit the plan"),
                                     s->image->kind == IMAGE_KIND_USR ? "usr" : "root", s->plan->source->path);
        r = plan_update_streamed(s->plan, next);
        if (r < 0)
                return r;
        log_info("the plan is brought up to date with what the image %s holds", s->plan->source->path);
        return 0;
}

int session_load_plan(Session *s, const char *path, const Plan **ret) {
        _cleanup_(plan_freep) Plan *p = NULL;
        int r;

        error_clear();
        r = plan_load(path, &p);
        if (r < 0)
                return r;
        if (p->source) {
                r = session_set_source(s, p->source->path);
                if (r >= 0)
                        r = session_open_source(s);
                if (r < 0)
                        return r;
        }
        set_plan(s, TAKE_PTR(p));
        if (ret)
                *ret = s->plan;
        return 0;
}

int session_save_plan(Session *s, const char *path) {
        error_clear();
        if (!s->plan)
                return error_setf(-EINVAL, _("There is no plan to save."));
        return plan_save(s->plan, path);
}

const Plan *session_current_plan(const Session *s) {
        return s->plan;
}

/* ---- secrets ------------------------------------------------------------------------------- */

bool session_needs_secret(const Session *s, SessionSecret which) {
        const Plan *p = s->plan;

        if (!p)
                return false;
        switch (which) {
        case SESSION_SECRET_PASSPHRASE:
                return p->encryption.enabled && p->encryption.passphrase;
        case SESSION_SECRET_TPM2_PIN:
                return p->encryption.enabled && p->encryption.tpm2_pin;
        case SESSION_SECRET_USER_PASSWORD:
                return p->account != NULL;
        case SESSION_SECRET_OLD_RECOVERY_KEY:
                /* Optional: the TPM may unlock home. Front ends offer it for a reset that keeps an
                 * encrypted home (plan->reset->keep_home); nothing requires it. */
                return false;
        default:
                return false;
        }
}

const char *session_secret_credential(SessionSecret which) {
        static const char *const table[_SESSION_SECRET_MAX] = {
                [SESSION_SECRET_PASSPHRASE] = "imprint.passphrase",
                [SESSION_SECRET_TPM2_PIN] = "imprint.tpm2-pin",
                [SESSION_SECRET_USER_PASSWORD] = "imprint.user-password",
                [SESSION_SECRET_OLD_RECOVERY_KEY] = "imprint.old-recovery-key",
        };
        return which >= 0 && which < _SESSION_SECRET_MAX ? table[which] : NULL;
}

const char *session_secret_name(SessionSecret which) {
        static const char *const table[_SESSION_SECRET_MAX] = {
                [SESSION_SECRET_PASSPHRASE] = N_("passphrase"),
                [SESSION_SECRET_TPM2_PIN] = N_("TPM2 PIN"),
                [SESSION_SECRET_USER_PASSWORD] = N_("password"),
                [SESSION_SECRET_OLD_RECOVERY_KEY] = N_("current recovery key"),
        };
        return which >= 0 && which < _SESSION_SECRET_MAX ? _(table[which]) : NULL;
}

/* Checks value as which; returns the score or -EINVAL (a refused secret is bad input, not a
 * target that may not be written: -EPERM's exit status would say the latter). */
static int check_secret(Session *s, SessionSecret which, const Secret *value, bool allow_weak) {
        int r;

        if (which == SESSION_SECRET_TPM2_PIN)
                return 0;
        if (which == SESSION_SECRET_OLD_RECOVERY_KEY)
                return 0; /* an existing key: its form is checked (and made canonical) by the caller */
        if (which == SESSION_SECRET_USER_PASSWORD) {
                if (!s->plan || !s->plan->account)
                        return error_setf(-EINVAL, _("The plan creates no account."));
                r = account_password_check(s->plan->account, value);
        } else
                r = password_quality_check((const char *) value->data, NULL);
        if (r == -EPERM && allow_weak)
                return 0;
        if (r == -EPERM) {
                char why[1024];

                snprintf(why, sizeof(why), "%s", error_message_for(-EPERM) ?: _("It is too weak."));
                return error_setf(-EINVAL, "%s", why);
        }
        return r;
}

int session_set_secret(Session *s, SessionSecret which, Secret *value, bool allow_weak) {
        int r;

        error_clear();
        if (which < 0 || which >= _SESSION_SECRET_MAX || !value) {
                secret_free(value);
                return -EINVAL;
        }
        if (which == SESSION_SECRET_OLD_RECOVERY_KEY) {
                Secret *canonical = NULL;

                /* What was typed or stored, as the executor's unlock wants it: dashes, lower case. */
                r = recovery_key_normalize((const char *) value->data, &canonical);
                secret_free(value);
                if (r < 0)
                        return error_prefixf(-EINVAL, "%s", _("The current recovery key is not a recovery key"));
                value = canonical;
        }
        r = check_secret(s, which, value, allow_weak);
        if (r < 0) {
                secret_free(value);
                return r;
        }
        secret_free(s->secrets[which]);
        s->secrets[which] = value;
        return r;
}

/* Why secret_read_credential() refused a credential, for the sentence after "Cannot read …: ". */
static const char *credential_problem(int r) {
        switch (-r) {
        case EINVAL:
                return _("it is empty, holds a NUL byte, or is not a regular file");
        case E2BIG:
                return _("it is longer than 512 bytes");
        default:
                return strerror(-r);
        }
}

int session_secret_from_credential(Session *s, SessionSecret which, bool allow_weak) {
        const char *cred = session_secret_credential(which);
        Secret *v = NULL;
        int r;

        error_clear();
        if (!cred)
                return -EINVAL;
        r = secret_read_credential(cred, 512, &v);
        if (r == -ENOENT)
                return r;
        if (r < 0)
                return error_setf(r, _("Cannot read the credential %s: %s."), cred, credential_problem(r));
        r = session_set_secret(s, which, v, allow_weak);
        if (r < 0)
                return error_prefixf(r, which == SESSION_SECRET_USER_PASSWORD && s->plan && s->plan->account
                                                ? _("The password for %s from the credential %s is refused")
                                                : _("The %s from the credential %s is too weak"),
                                     which == SESSION_SECRET_USER_PASSWORD && s->plan && s->plan->account
                                             ? s->plan->account->user_name
                                             : session_secret_name(which),
                                     cred);
        return r;
}

int session_rate_secret(SessionSecret which, const char *text, const char *user_name) {
        error_clear();
        if (which == SESSION_SECRET_TPM2_PIN)
                return 0;
        return password_quality_check(text, which == SESSION_SECRET_USER_PASSWORD ? user_name : NULL);
}

const char *session_password_note(void) {
        return password_quality_note();
}

int session_check_secrets(const Session *s) {
        error_clear();
        for (SessionSecret w = 0; w < _SESSION_SECRET_MAX; w++)
                if (session_needs_secret(s, w) && !s->secrets[w]) {
                        if (w == SESSION_SECRET_USER_PASSWORD)
                                return error_setf(-EINVAL,
                                                  _("The plan creates the account %s, but neither the credential %s nor a "
                                                    "terminal to ask on is there."),
                                                  s->plan->account->user_name, session_secret_credential(w));
                        return error_setf(-EINVAL, _("The plan has a %s, but neither the credential %s nor a terminal to ask on is there."),
                                          session_secret_name(w), session_secret_credential(w));
                }
        return 0;
}

/* ---- installing ---------------------------------------------------------------------------- */

static int emit(Session *s, const SessionEvent *ev) {
        return s->handler ? s->handler(ev, s->userdata) : 0;
}

static void on_progress(const ProgressEvent *ev, void *userdata) {
        Session *s = userdata;

        switch (ev->type) {
        case PROGRESS_BEGIN:
                /* Everything after checking the image writes to the target. */
                if (!streq(ev->id, "verify-image"))
                        s->wrote = true;
                break;
        case PROGRESS_FAILED:
                free(s->failed_step);
                free(s->failed_step_id);
                s->failed_step = strdup(ev->description);
                s->failed_step_id = strdup(ev->id);
                break;
        default:
                break;
        }
        (void) emit(s, &(SessionEvent) { .type = SESSION_EVENT_PROGRESS, .plan = s->plan, .progress = ev });
}

static int on_confirm(const Plan *p, void *userdata) {
        Session *s = userdata;

        if (!s->handler)
                return error_setf(-ECANCELED, _("Nothing confirms the install: refusing to write to %s."), p->target);
        return emit(s, &(SessionEvent) { .type = SESSION_EVENT_CONFIRM, .plan = p });
}

static int on_recovery_key(const Plan *p, const Secret *key, void *userdata) {
        Session *s = userdata;
        int r;

        if (s->escrow_dir) {
                _cleanup_(freep) char *path = NULL;

                r = encryption_escrow_recovery_key(p, key, s->escrow_dir, s->escrow_certificate, &path);
                if (r < 0)
                        return r;
                (void) emit(s, &(SessionEvent) { .type = SESSION_EVENT_RECOVERY_KEY_DELIVERED, .plan = p, .path = path,
                                                 .message = s->escrow_certificate ? "cms" : "plaintext" });
                return 1;
        }
        if (!s->handler)
                return error_setf(-ECANCELED, _("The recovery key of the encrypted disk would reach nobody. Nothing was written to %s."),
                                  p->target);
        return emit(s, &(SessionEvent) { .type = SESSION_EVENT_RECOVERY_KEY, .plan = p, .recovery_key = key });
}

int session_install(Session *s, const SessionInstallOptions *o, SessionEventHandler handler, void *userdata) {
        _cleanup_(image_freep) Image *reopened = NULL;
        bool needs_image;
        int r, interrupt;

        error_clear();
        if (!s->plan)
                return error_setf(-EINVAL, _("There is no plan to install."));
        r = session_check_secrets(s);
        if (r < 0)
                return r;
        /* The plan was made from the session's image (session_plan(), session_load_plan()); the
         * executor checks that it is still the same bytes. A reset of a usr image copies nothing
         * from an image: its source only describes what was installed (reset.h). */
        needs_image = s->plan->source && !(s->plan->mode == PLAN_RESET && s->plan->source->kind == PLAN_SOURCE_USR);
        if (needs_image && !s->image)
                return error_setf(-EINVAL, _("The plan's image %s is not open."), s->plan->source->path);

        s->wrote = false;
        s->interrupted = 0;
        s->failed_step = mfree(s->failed_step);
        s->failed_step_id = mfree(s->failed_step_id);
        s->handler = handler;
        s->userdata = userdata;
        s->escrow_dir = o ? o->escrow_dir : NULL;
        s->escrow_certificate = o && o->escrow_dir ? o->escrow_certificate : NULL;

        /* Ctrl-C, SIGTERM, SIGHUP: stop at a safe point and say where, instead of dying with the
         * disk half written. */
        interrupt = interrupt_install();
        r = executor_run(s->plan, needs_image ? s->image : NULL,
                         &(ExecOptions) {
                                 .no_variables = o && o->no_variables,
                                 .passphrase = s->secrets[SESSION_SECRET_PASSPHRASE],
                                 .tpm2_pin = s->secrets[SESSION_SECRET_TPM2_PIN],
                                 .user_password = s->secrets[SESSION_SECRET_USER_PASSWORD],
                                 .old_recovery_key = s->secrets[SESSION_SECRET_OLD_RECOVERY_KEY],
                         },
                         &(ExecCallbacks) {
                                 .progress = on_progress,
                                 .confirm = on_confirm,
                                 .recovery_key = on_recovery_key,
                                 .image_streamed = on_image_streamed,
                                 .userdata = s,
                         });
        s->interrupted = r == -EINTR ? interrupt_pending() : 0;
        if (interrupt >= 0)
                interrupt_uninstall();
        if (r < 0 && r != -ENOMEM && !error_message_for(r))
                (void) error_setf(r, "%s", strerror(-r));
        (void) emit(s, &(SessionEvent) {
                .type = SESSION_EVENT_RESULT,
                .plan = s->plan,
                .error = r,
                .message = r < 0 ? session_error_message(r) : NULL,
        });
        if (s->wrote) {
                /* What a reset probed of the disk is old now too. */
                reset_targets_clear(s);
                refresh_disk(s, s->plan->target);
        }
        s->handler = NULL;
        s->userdata = NULL;
        s->escrow_dir = NULL;
        s->escrow_certificate = NULL;
        return r;
}

int session_interrupted(const Session *s) {
        return s->interrupted;
}

bool session_wrote(const Session *s) {
        return s->wrote;
}

const char *session_failed_step(const Session *s) {
        return s->failed_step;
}

const char *session_failed_step_id(const Session *s) {
        return s->failed_step_id;
}

/* ---- after an install ---------------------------------------------------------------------- */

int session_save_log(Session *s, const char *log_path, char **ret_where) {
        error_clear();
        return log_save_to_removable(log_path, s->plan ? s->plan->target : NULL, ret_where);
}

int session_power(bool reboot) {
        char *argv[] = { (char *) "systemctl", (char *) (reboot ? "reboot" : "poweroff"), NULL };

        error_clear();
        /* Only a system run by systemd can be told to power off this way. */
        if (access("/run/systemd/system", F_OK) < 0)
                return error_setf(-EOPNOTSUPP, "%s", _("This system is not run by systemd: restart or switch off the computer yourself."));
        log_info("systemctl %s", argv[1]);
        return run_command(argv, NULL);
}

void session_set_console_keymap(const char *map) {
        const char *term = getenv("TERM");
        char *argv[] = { (char *) "loadkeys", (char *) "-q", (char *) map, NULL };

        if (!map || !streq_ptr(term, "linux") || geteuid() != 0 || !find_executable("loadkeys"))
                return;
        (void) run_command(argv, &(RunOptions) { .quiet_stderr = true });
}
