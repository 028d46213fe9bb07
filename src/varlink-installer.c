/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* imprint --varlink: the io.imprint.Installer service (data/io.imprint.Installer.varlink,
 * imprint-varlink(7)), socket-activated on /run/imprint/io.imprint.Installer. A front end of the
 * install session like the others: every call gets its own session; Install runs its session in a
 * worker thread and streams the session's events as replies, while the loop goes on answering
 * other calls (ConfirmRecoveryKey above all, which comes on another connection). One install at a
 * time. The service ends after a minute without connections or calls. */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "escrow.h"
#include "io-imprint-installer-varlink.h"
#include "log.h"
#include "session.h"
#include "source.h"
#include "size.h"
#include "varlink-installer.h"
#include "varlink.h"

#define IFACE "io.imprint.Installer."
/* How long an install waits for the recovery key to be confirmed before it ends, nothing written. */
#define RECOVERY_KEY_TIMEOUT_SEC (10 * 60)
#define IDLE_TIMEOUT_MSEC (60 * 1000)

/* ---- the request ------------------------------------------------------------------------- */

static const VarlinkField request_fields[] = {
        { "node", json_type_string },
        { "image", json_type_string, VARLINK_NULLABLE },
        { "imageCertificate", json_type_string, VARLINK_NULLABLE },
        { "imageKey", json_type_string, VARLINK_NULLABLE },
        { "erase", json_type_boolean, VARLINK_NULLABLE },
        { "espSize", json_type_string, VARLINK_NULLABLE },
        { "xbootldrSize", json_type_string, VARLINK_NULLABLE },
        { "rootSize", json_type_string, VARLINK_NULLABLE },
        { "homeSize", json_type_string, VARLINK_NULLABLE },
        { "swapSize", json_type_string, VARLINK_NULLABLE },
        { "rootFileSystem", json_type_string, VARLINK_NULLABLE },
        { "homeFileSystem", json_type_string, VARLINK_NULLABLE },
        { "encrypt", json_type_boolean, VARLINK_NULLABLE },
        { "tpm2", json_type_string, VARLINK_NULLABLE },
        { "tpm2Pcrs", json_type_string, VARLINK_NULLABLE },
        { "passphrase", json_type_string, VARLINK_NULLABLE },
        { "tpm2Pin", json_type_string, VARLINK_NULLABLE },
        { "userName", json_type_string, VARLINK_NULLABLE },
        { "realName", json_type_string, VARLINK_NULLABLE },
        { "userPassword", json_type_string, VARLINK_NULLABLE },
        { "admin", json_type_boolean, VARLINK_NULLABLE },
        { "autoLogin", json_type_boolean, VARLINK_NULLABLE },
        { "userStorage", json_type_string, VARLINK_NULLABLE },
        { "classicUser", json_type_boolean, VARLINK_NULLABLE },
        { "allowWeakPassword", json_type_boolean, VARLINK_NULLABLE },
        { "allowUnbootable", json_type_boolean, VARLINK_NULLABLE },
        { "hostname", json_type_string, VARLINK_NULLABLE },
        { "timezone", json_type_string, VARLINK_NULLABLE },
        { "locale", json_type_string, VARLINK_NULLABLE },
        { "keymap", json_type_string, VARLINK_NULLABLE },
        { "seed", json_type_string, VARLINK_NULLABLE },
        {}
};

static const char *get_string(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* -1 when missing or null. */
static int get_bool(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : -1;
}

static int invalid_request(VarlinkCall *call, const char *parameter, const char *message) {
        json_object *e = json_object_new_object();

        json_object_object_add(e, "parameter", parameter ? json_object_new_string(parameter) : NULL);
        json_object_object_add(e, "message", json_object_new_string(message));
        (void) varlink_call_error(call, IFACE "InvalidRequest", e);
        return -EINVAL;
}

static int parse_size_parameter(VarlinkCall *call, json_object *o, const char *key, SizeRequest *ret) {
        const char *s = get_string(o, key);
        char name[64], message[256];

        if (!s)
                return 0;
        if (size_request_parse(s, ret) >= 0)
                return 0;
        snprintf(name, sizeof(name), "request.%s", key);
        snprintf(message, sizeof(message), "\"%s\" is not a size (use e.g. 512M, 20G, \"rest\" or \"none\").", s);
        return invalid_request(call, name, message);
}

/* The session's request from the call's "request" object. The strings stay in o (valid while the
 * call is). The secrets are not part of it: see set_secrets(). */
static int parse_request(VarlinkCall *call, json_object *o, SessionRequest *r) {
        const char *s;
        int b, k;

        session_request_init(r);
        /* The service's working directory is not the caller's: a relative path would name
         * another file than the caller means. */
        r->target = get_string(o, "node");
        if (r->target[0] != '/')
                return invalid_request(call, "request.node", "The disk or image file must be given as an absolute path.");
        s = get_string(o, "image");
        if (s && !streq(s, "self") && s[0] != '/' && !source_is_url(s))
                return invalid_request(call, "request.image",
                                       "The OS image must be given as an absolute path, an http(s):// URL, or as \"self\".");
        s = get_string(o, "imageKey");
        if (s && s[0] != '/')
                return invalid_request(call, "request.imageKey", "The image key must be given as an absolute path.");
        s = get_string(o, "imageCertificate");
        if (s && s[0] != '/')
                return invalid_request(call, "request.imageCertificate", "The image certificate must be given as an absolute path.");
        r->with_image = true;
        r->allow_unbootable = get_bool(o, "allowUnbootable") > 0;
        if ((b = get_bool(o, "erase")) >= 0)
                r->layout.mode = b ? PLAN_ERASE : PLAN_FREE;
        if ((k = parse_size_parameter(call, o, "espSize", &r->layout.esp)) < 0 ||
            (k = parse_size_parameter(call, o, "xbootldrSize", &r->layout.xbootldr)) < 0 ||
            (k = parse_size_parameter(call, o, "rootSize", &r->layout.root)) < 0 ||
            (k = parse_size_parameter(call, o, "homeSize", &r->layout.home)) < 0 ||
            (k = parse_size_parameter(call, o, "swapSize", &r->layout.swap)) < 0)
                return k;
        if (r->layout.root.kind == SIZE_NONE && get_string(o, "rootSize"))
                return invalid_request(call, "request.rootSize", "The root partition cannot be left out.");
        r->layout.root_fs = get_string(o, "rootFileSystem");
        r->layout.home_fs = get_string(o, "homeFileSystem");
        r->layout.seed = get_string(o, "seed");

        if ((b = get_bool(o, "encrypt")) >= 0)
                r->encrypt.encrypt = b;
        if ((s = get_string(o, "tpm2"))) {
                r->encrypt.tpm2 = tpm2_use_from_string(s);
                if (r->encrypt.tpm2 < 0)
                        return invalid_request(call, "request.tpm2", "Not one of auto, required, off.");
        }
        if ((s = get_string(o, "tpm2Pcrs")) && pcr_mask_parse(s, &r->encrypt.tpm2_pcrs) < 0)
                return invalid_request(call, "request.tpm2Pcrs", "Not a list of PCRs such as 7 or 0+7.");
        r->encrypt.passphrase = get_string(o, "passphrase") != NULL;
        r->encrypt.tpm2_pin = get_string(o, "tpm2Pin") != NULL;

        r->account.user_name = get_string(o, "userName");
        r->account.real_name = get_string(o, "realName");
        r->account.admin = get_bool(o, "admin") > 0;
        r->account.auto_login = get_bool(o, "autoLogin") > 0;
        r->account.classic = get_bool(o, "classicUser") > 0;
        if ((s = get_string(o, "userStorage"))) {
                r->account.storage = account_storage_from_string(s);
                if (r->account.storage < 0)
                        return invalid_request(call, "request.userStorage", "Not one of luks, directory, subvolume.");
        }
        if (!r->account.user_name &&
            (r->account.real_name || r->account.admin || r->account.auto_login || r->account.classic || get_string(o, "userPassword")))
                return invalid_request(call, "request.userName", "realName, admin, autoLogin, classicUser and userPassword need userName.");
        r->settings.hostname = (char *) get_string(o, "hostname");
        r->settings.timezone = (char *) get_string(o, "timezone");
        r->settings.locale = (char *) get_string(o, "locale");
        r->settings.keymap = (char *) get_string(o, "keymap");
        return 0;
}

/* The errno of a session call as the interface's error; returns r. */
static int session_error(VarlinkCall *call, int r, const char *node, const Session *s) {
        const char *m = session_error_message(r);
        json_object *e = json_object_new_object();
        const char *name;

        switch (-r) {
        case ENOENT:
                name = IFACE "NoSuchDevice";
                json_object_object_add(e, "node", json_object_new_string(node ?: ""));
                break;
        case EBUSY:
        case EROFS:
        case EPERM:
        case EACCES:
        case EEXIST:
                name = IFACE "DeviceRefused";
                json_object_object_add(e, "node", json_object_new_string(node ?: ""));
                json_object_object_add(e, "message", json_object_new_string(m));
                break;
        case ENOSPC:
                name = IFACE "DiskTooSmall";
                json_object_object_add(e, "message", json_object_new_string(m));
                break;
        case ESTALE:
                name = IFACE "DiskChanged";
                json_object_object_add(e, "message", json_object_new_string(m));
                break;
        case EBADMSG:
                name = IFACE "BadImage";
                json_object_object_add(e, "message", json_object_new_string(m));
                break;
        case ECANCELED:
                name = IFACE "RecoveryKeyNotConfirmed";
                break;
        case EINTR:
                name = IFACE "Interrupted";
                json_object_object_add(e, "message", json_object_new_string(m));
                break;
        case EINVAL:
        case E2BIG:
        case EOPNOTSUPP:
        case ENOTBLK:
        case ENODEV:
        case ENOKEY:
                if (!s || !session_wrote(s)) {
                        name = IFACE "InvalidRequest";
                        json_object_object_add(e, "parameter", NULL);
                        json_object_object_add(e, "message", json_object_new_string(m));
                        break;
                }
                __attribute__((fallthrough));
        default:
                name = IFACE "InstallFailed";
                json_object_object_add(e, "step", s && session_failed_step_id(s) ? json_object_new_string(session_failed_step_id(s)) : NULL);
                json_object_object_add(e, "message", json_object_new_string(m));
                json_object_object_add(e, "written", json_object_new_boolean(s && session_wrote(s)));
                break;
        }
        (void) varlink_call_error(call, name, e);
        return r;
}

/* A session for the call's request: the image opened, the plan made. */
static int plan_request(VarlinkCall *call, json_object *request, Session **ret) {
        _cleanup_(session_freep) Session *s = NULL;
        SessionRequest req;
        int r;

        r = parse_request(call, request, &req);
        if (r < 0)
                return r;
        r = session_new(&s);
        if (r >= 0)
                r = session_set_source(s, get_string(request, "image"));
        if (r >= 0 && get_string(request, "imageCertificate")) {
                r = session_set_image_certificate(s, get_string(request, "imageCertificate"));
                if (r < 0)
                        return invalid_request(call, "request.imageCertificate", session_error_message(r));
        }
        if (r >= 0 && get_string(request, "imageKey")) {
                r = session_set_image_key(s, get_string(request, "imageKey"));
                if (r < 0)
                        return invalid_request(call, "request.imageKey", session_error_message(r));
        }
        if (r >= 0)
                r = session_open_source(s);
        /* An image that is missing or not named is the request's image, not the target
         * (NoSuchDevice names the target's node). */
        if (r == -ENOENT || r == -EINVAL)
                return invalid_request(call, "request.image", session_error_message(r));
        if (r >= 0)
                r = session_plan(s, &req, NULL);
        if (r < 0)
                return session_error(call, r, req.target, NULL);
        *ret = TAKE_PTR(s);
        return 0;
}

/* Moves the secrets of the request into the session (and wipes them in the request). */
static int set_secrets(VarlinkCall *call, Session *s, json_object *request, bool check_only) {
        static const struct {
                const char *key;
                SessionSecret which;
        } table[] = {
                { "passphrase", SESSION_SECRET_PASSPHRASE },
                { "tpm2Pin", SESSION_SECRET_TPM2_PIN },
                { "userPassword", SESSION_SECRET_USER_PASSWORD },
        };
        bool allow_weak = get_bool(request, "allowWeakPassword") > 0;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                const char *v = get_string(request, table[i].key);
                char name[64];
                Secret *secret;

                if (!v)
                        continue;
                if (!session_needs_secret(s, table[i].which))
                        continue; /* e.g. a passphrase for an image file, which is not encrypted */
                secret = secret_new_from(v, strlen(v));
                explicit_bzero((char *) v, strlen(v));
                if (!secret)
                        return -ENOMEM;
                if (check_only) {
                        r = session_rate_secret(table[i].which, (const char *) secret->data,
                                                get_string(request, "userName"));
                        secret_free(secret);
                        if (r == -EPERM && allow_weak && table[i].which == SESSION_SECRET_USER_PASSWORD)
                                r = 0;
                } else
                        r = session_set_secret(s, table[i].which, secret, allow_weak);
                if (r < 0) {
                        snprintf(name, sizeof(name), "request.%s", table[i].key);
                        return invalid_request(call, name, session_error_message(r));
                }
        }
        if (check_only)
                return 0;
        r = session_check_secrets(s);
        if (r < 0)
                return invalid_request(call, NULL, session_error_message(r));
        return 0;
}

/* ---- ListCandidateDevices, GetTPMStatus, Plan ----------------------------------------------- */

static const char *refusal_name(unsigned bit) {
        switch (bit) {
        case REFUSE_LIVE_MEDIUM:
                return "live_medium";
        case REFUSE_ROOT_DISK:
        case REFUSE_BOOT_DISK:
                return "system_disk";
        case REFUSE_MOUNTED:
                return "mounted";
        case REFUSE_HOLDERS:
        case REFUSE_SWAP:
                return "in_use";
        case REFUSE_READ_ONLY:
                return "read_only";
        case REFUSE_TOO_SMALL:
                return "too_small";
        case REFUSE_NOT_WHOLE_DISK:
                return "not_a_disk";
        case REFUSE_NO_MEDIUM:
                return "no_media";
        default:
                return NULL;
        }
}

static json_object *string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static json_object *device_to_json(const Disk *d) {
        json_object *j = json_object_new_object(), *a;
        bool usable = disk_is_usable(d);
        const char *fit;

        json_object_object_add(j, "node", json_object_new_string(d->devnode ?: d->path));
        a = json_object_new_array();
        for (size_t i = 0; d->by_id && d->by_id[i]; i++)
                json_object_array_add(a, json_object_new_string(d->by_id[i]));
        json_object_object_add(j, "symlinks", a);
        json_object_object_add(j, "diskseq", d->diskseq ? json_object_new_int64((int64_t) d->diskseq) : NULL);
        json_object_object_add(j, "sizeBytes", json_object_new_int64((int64_t) d->size));
        json_object_object_add(j, "vendor", string_or_null(d->vendor));
        json_object_object_add(j, "model", string_or_null(d->model));
        json_object_object_add(j, "serial", string_or_null(d->serial));
        json_object_object_add(j, "transport", string_or_null(d->transport != TRANSPORT_UNKNOWN ? transport_to_string(d->transport) : NULL));
        json_object_object_add(j, "removable", json_object_new_boolean(d->removable));
        json_object_object_add(j, "partitionTable", string_or_null(d->pttype));
        a = json_object_new_array();
        for (size_t i = 0; d->installed && d->installed[i]; i++)
                json_object_array_add(a, json_object_new_string(d->installed[i]));
        json_object_object_add(j, "installed", a);
        /* Too small is a fit, not a refusal, in io.systemd.SysInstall's terms. */
        if (usable)
                fit = "enough_free_space";
        else if (d->refusals == REFUSE_TOO_SMALL)
                fit = "disk_too_small";
        else
                fit = "refused";
        json_object_object_add(j, "fit", json_object_new_string(fit));
        json_object_object_add(j, "minimalSizeBytes", json_object_new_int64((int64_t) DISK_MIN_SIZE));
        if (d->refusals) {
                a = json_object_new_array();
                for (unsigned bit = 1; bit <= REFUSE_NO_MEDIUM; bit <<= 1) {
                        const char *n = (d->refusals & bit) ? refusal_name(bit) : NULL;
                        bool seen = false;

                        for (size_t i = 0; n && i < json_object_array_length(a); i++)
                                seen = seen || streq(json_object_get_string(json_object_array_get_idx(a, i)), n);
                        if (n && !seen)
                                json_object_array_add(a, json_object_new_string(n));
                }
                json_object_object_add(j, "refusals", a);
        } else
                json_object_object_add(j, "refusals", NULL);
        json_object_object_add(j, "reason", string_or_null(usable ? NULL : d->refusal_text));
        return j;
}

static int method_list_candidate_devices(VarlinkCall *call, json_object *p, void *userdata) {
        static const VarlinkField fields[] = {
                { "candidatesOnly", json_type_boolean, VARLINK_NULLABLE },
                {}
        };
        _cleanup_(session_freep) Session *s = NULL;
        const DiskList *l;
        json_object *last = NULL;
        bool only;
        int r;

        r = varlink_check_parameters(call, p, fields);
        if (r < 0)
                return r;
        only = get_bool(p, "candidatesOnly") > 0;
        r = session_new(&s);
        if (r >= 0)
                r = session_discover(s, true);
        if (r < 0)
                return session_error(call, r, NULL, NULL);
        l = session_disks(s);
        for (size_t i = 0; i < l->n_disks; i++) {
                if (only && !disk_is_usable(l->disks[i]))
                        continue;
                if (last)
                        (void) varlink_call_notify(call, last);
                last = device_to_json(l->disks[i]);
        }
        if (!last)
                return varlink_call_error(call, IFACE "NoCandidateDevices", NULL);
        return varlink_call_reply(call, last);
}

static int method_get_tpm_status(VarlinkCall *call, json_object *p, void *userdata) {
        static const VarlinkField fields[] = { {} };
        _cleanup_(session_freep) Session *s = NULL;
        const Tpm2Status *st = NULL;
        json_object *j;
        int r;

        r = varlink_check_parameters(call, p, fields);
        if (r < 0)
                return r;
        r = session_new(&s);
        if (r >= 0)
                r = session_tpm(s, NULL, &st);
        if (r < 0)
                return session_error(call, r, NULL, NULL);
        j = json_object_new_object();
        json_object_object_add(j, "usable", json_object_new_boolean(r > 0));
        json_object_object_add(j, "present", json_object_new_boolean(st->present));
        json_object_object_add(j, "sha256Bank", json_object_new_boolean(st->sha256_bank));
        json_object_object_add(j, "lockout", json_object_new_boolean(st->lockout));
        json_object_object_add(j, "transientRoom", json_object_new_boolean(st->transient_room));
        json_object_object_add(j, "problem", string_or_null(st->problem));
        return varlink_call_reply(call, j);
}

static const VarlinkField plan_fields[] = {
        { "request", json_type_object, 0, request_fields },
        {}
};

static int method_plan(VarlinkCall *call, json_object *p, void *userdata) {
        _cleanup_(session_freep) Session *s = NULL;
        json_object *request, *j;
        int r;

        r = varlink_check_parameters(call, p, plan_fields);
        if (r < 0)
                return r;
        request = json_object_object_get(p, "request");
        r = plan_request(call, request, &s);
        if (r < 0)
                return r;
        /* Refused secrets are refused here already, before anything could be written. */
        r = set_secrets(call, s, request, true);
        if (r < 0)
                return r;
        j = json_object_new_object();
        json_object_object_add(j, "plan", plan_to_json(session_current_plan(s)));
        return varlink_call_reply(call, j);
}

/* ---- Install and the recovery key hand-over ------------------------------------------------- */

typedef struct Install {
        Session *session;
        VarlinkCall *call;
        SessionInstallOptions options;
        char *escrow_dir;
        char *escrow_certificate;
        uint64_t last_update_usec;

        /* The recovery key waiting for ConfirmRecoveryKey (under lock). */
        const Secret *key;
        char token[33];
        unsigned groups[2];
        bool confirmed;
} Install;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static Install *current = NULL; /* the install running, under lock */

static uint64_t now_usec(clockid_t clock) {
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static void notify_progress(Install *in, const ProgressEvent *ev) {
        json_object *j;

        if (!varlink_call_more(in->call))
                return;
        /* One update a second is plenty for a front end, as for the command line's JSON. */
        if (ev->type == PROGRESS_UPDATE && ev->done < ev->total) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (now - in->last_update_usec < 1000000)
                        return;
                in->last_update_usec = now;
        }
        j = json_object_new_object();
        json_object_object_add(j, "event", json_object_new_string(progress_event_type_to_string(ev->type)));
        json_object_object_add(j, "phase", json_object_new_string(ev->id));
        json_object_object_add(j, "object", string_or_null(session_current_plan(in->session)->target));
        json_object_object_add(j, "progress", json_object_new_int(ev->total ? (int) (ev->done * 100 / ev->total) : 0));
        json_object_object_add(j, "step", json_object_new_int((int) ev->step));
        json_object_object_add(j, "steps", json_object_new_int((int) ev->n_steps));
        json_object_object_add(j, "description", json_object_new_string(ev->description));
        json_object_object_add(j, "doneBytes", json_object_new_int64((int64_t) ev->done));
        json_object_object_add(j, "totalBytes", json_object_new_int64((int64_t) ev->total));
        json_object_object_add(j, "rateBytesPerSecond", json_object_new_int64((int64_t) ev->rate));
        json_object_object_add(j, "etaSeconds", ev->eta_usec >= 0 ? json_object_new_double((double) ev->eta_usec / 1e6) : NULL);
        if (ev->message)
                json_object_object_add(j, "message", json_object_new_string(ev->message));
        (void) varlink_call_notify(in->call, j);
}

/* Hands the key to the caller of Install, and only to it, then waits until ConfirmRecoveryKey
 * shows that a person has it. 0 (nothing is written) when the caller goes away or time runs out. */
static int hand_over_recovery_key(Install *in, const Secret *key) {
        uint8_t raw[16];
        json_object *j, *groups;
        uint64_t deadline;
        int r, result;

        if (!varlink_call_more(in->call))
                return error_setf(-ECANCELED, "The recovery key would reach nobody: call Install with \"more\", or give "
                                              "recoveryKeyEscrow. Nothing was written.");
        if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
                return -errno;
        r = recovery_key_challenge(ELEMENTSOF(in->groups), in->groups, ELEMENTSOF(in->groups));
        if (r < 0)
                return r;

        pthread_mutex_lock(&lock);
        for (size_t i = 0; i < sizeof(raw); i++)
                snprintf(in->token + 2 * i, 3, "%02x", raw[i]);
        in->key = key;
        in->confirmed = false;
        pthread_mutex_unlock(&lock);
        explicit_bzero(raw, sizeof(raw));

        j = json_object_new_object();
        json_object_object_add(j, "event", json_object_new_string("recoveryKey"));
        json_object_object_add(j, "recoveryKey", json_object_new_string((const char *) key->data));
        json_object_object_add(j, "recoveryKeyToken", json_object_new_string(in->token));
        groups = json_object_new_array();
        for (size_t i = 0; i < ELEMENTSOF(in->groups); i++)
                json_object_array_add(groups, json_object_new_int((int) in->groups[i]));
        json_object_object_add(j, "recoveryKeyGroups", groups);
        r = varlink_call_notify(in->call, j); /* the reply's strings are wiped once sent */
        log_info("Recovery key handed over to the caller of Install; waiting for ConfirmRecoveryKey.");

        deadline = now_usec(CLOCK_MONOTONIC) + (uint64_t) RECOVERY_KEY_TIMEOUT_SEC * 1000000;
        pthread_mutex_lock(&lock);
        while (r >= 0 && !in->confirmed && !varlink_call_is_gone(in->call) && now_usec(CLOCK_MONOTONIC) < deadline) {
                struct timespec ts;

                /* Wake up every second to notice a caller that went away. */
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 1;
                pthread_cond_timedwait(&cond, &lock, &ts);
        }
        result = in->confirmed ? 1 : 0;
        in->key = NULL;
        explicit_bzero(in->token, sizeof(in->token));
        pthread_mutex_unlock(&lock);
        if (!result)
                log_warning("The recovery key was not confirmed (%s): nothing is written.",
                            r < 0 || varlink_call_is_gone(in->call) ? "the caller went away" : "time ran out");
        return result;
}

static int on_event(const SessionEvent *ev, void *userdata) {
        Install *in = userdata;

        switch (ev->type) {
        case SESSION_EVENT_PROGRESS:
                notify_progress(in, ev->progress);
                return 0;
        case SESSION_EVENT_CONFIRM:
                return 1; /* Install's "confirm" named the target: checked before the install began */
        case SESSION_EVENT_RECOVERY_KEY:
                return hand_over_recovery_key(in, ev->recovery_key);
        case SESSION_EVENT_RECOVERY_KEY_DELIVERED:
                if (varlink_call_more(in->call)) {
                        json_object *j = json_object_new_object();
                        json_object_object_add(j, "event", json_object_new_string("recoveryKeyDelivered"));
                        json_object_object_add(j, "recoveryKeyPath", json_object_new_string(ev->path));
                        json_object_object_add(j, "recoveryKeyFormat", json_object_new_string(ev->message ?: "plaintext"));
                        (void) varlink_call_notify(in->call, j);
                }
                return 0;
        default:
                return 0;
        }
}

static void install_free(Install *in) {
        if (!in)
                return;
        session_free(in->session);
        varlink_call_unref(in->call);
        free(in->escrow_dir);
        free(in->escrow_certificate);
        free(in);
}

static void *install_thread(void *userdata) {
        Install *in = userdata;
        const Plan *p = session_current_plan(in->session);
        int r;

        log_info("Installing %s on %s for a Varlink client.", p->source ? p->source->path : "-", p->target);
        r = session_install(in->session, &in->options, on_event, in);
        if (r < 0) {
                log_error("The install on %s failed: %s", p->target, session_error_message(r));
                if (r == -ECANCELED && session_wrote(in->session))
                        r = -EIO; /* not "nothing written" */
                (void) session_error(in->call, r, p->target, in->session);
        } else {
                json_object *j = json_object_new_object();

                log_info("%s is installed on %s.", p->source && p->source->os_name ? p->source->os_name : "The system", p->target);
                json_object_object_add(j, "event", json_object_new_string("finished"));
                json_object_object_add(j, "osName", string_or_null(p->source ? p->source->os_name : NULL));
                json_object_object_add(j, "target", json_object_new_string(p->target));
                (void) varlink_call_reply(in->call, j);
        }
        pthread_mutex_lock(&lock);
        current = NULL;
        pthread_mutex_unlock(&lock);
        install_free(in);
        return NULL;
}

static int method_install(VarlinkCall *call, json_object *p, void *userdata) {
        static const VarlinkField fields[] = {
                { "request", json_type_object, 0, request_fields },
                { "confirm", json_type_string },
                { "variables", json_type_boolean, VARLINK_NULLABLE },
                { "recoveryKeyEscrow", json_type_string, VARLINK_NULLABLE },
                { "recoveryKeyEscrowCertificate", json_type_string, VARLINK_NULLABLE },
                {}
        };
        _cleanup_(session_freep) Session *s = NULL;
        json_object *request;
        const char *confirm, *escrow, *escrow_certificate;
        const Plan *plan;
        Install *in;
        pthread_t t;
        pthread_attr_t attr;
        bool busy;
        int r;

        r = varlink_check_parameters(call, p, fields);
        if (r < 0)
                return r;
        escrow = get_string(p, "recoveryKeyEscrow");
        if (escrow && escrow[0] != '/')
                return invalid_request(call, "recoveryKeyEscrow", "The directory for the recovery key must be given as an absolute path.");
        escrow_certificate = get_string(p, "recoveryKeyEscrowCertificate");
        if (escrow_certificate) {
                if (!escrow)
                        return invalid_request(call, "recoveryKeyEscrowCertificate",
                                               "recoveryKeyEscrowCertificate needs recoveryKeyEscrow, the directory the encrypted recovery "
                                               "key is written to.");
                if (escrow_certificate[0] != '/')
                        return invalid_request(call, "recoveryKeyEscrowCertificate",
                                               "The certificate for the recovery key must be given as an absolute path.");
                r = escrow_check_certificate(escrow_certificate, "recoveryKeyEscrowCertificate");
                if (r < 0)
                        return invalid_request(call, "recoveryKeyEscrowCertificate", session_error_message(r));
        }
        pthread_mutex_lock(&lock);
        busy = current != NULL;
        pthread_mutex_unlock(&lock);
        if (busy)
                return varlink_call_error(call, IFACE "Busy", NULL);

        request = json_object_object_get(p, "request");
        r = plan_request(call, request, &s);
        if (r < 0)
                return r;
        plan = session_current_plan(s);
        confirm = get_string(p, "confirm");
        if (!streq(confirm, plan->target_name)) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "expected", json_object_new_string(plan->target_name));
                log_info("Install on %s refused: \"confirm\" does not name it. Nothing was written.", plan->target);
                return varlink_call_error(call, IFACE "NotConfirmed", e);
        }
        r = set_secrets(call, s, request, false);
        if (r < 0)
                return r;
        if (plan->encryption.enabled && !escrow && !varlink_call_more(call))
                return invalid_request(call, "recoveryKeyEscrow",
                                       "The install encrypts the disk: its recovery key is handed over in the stream of replies, so call "
                                       "Install with \"more\", or give recoveryKeyEscrow. Nothing was written.");

        in = calloc(1, sizeof(Install));
        if (!in)
                return -ENOMEM;
        in->escrow_dir = escrow ? strdup(escrow) : NULL;
        in->escrow_certificate = escrow_certificate ? strdup(escrow_certificate) : NULL;
        if ((escrow && !in->escrow_dir) || (escrow_certificate && !in->escrow_certificate)) {
                free(in->escrow_dir);
                free(in->escrow_certificate);
                free(in);
                return -ENOMEM;
        }
        in->options = (SessionInstallOptions) { .no_variables = get_bool(p, "variables") == 0, .escrow_dir = in->escrow_dir,
                                                .escrow_certificate = in->escrow_certificate };
        in->session = TAKE_PTR(s);
        in->call = varlink_call_ref(call);

        pthread_mutex_lock(&lock);
        if (current) {
                pthread_mutex_unlock(&lock);
                install_free(in);
                return varlink_call_error(call, IFACE "Busy", NULL);
        }
        current = in;
        pthread_mutex_unlock(&lock);

        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        r = -pthread_create(&t, &attr, install_thread, in);
        pthread_attr_destroy(&attr);
        if (r < 0) {
                pthread_mutex_lock(&lock);
                current = NULL;
                pthread_mutex_unlock(&lock);
                install_free(in);
                return r;
        }
        /* Deferred: the reference this handler was called with is ours now; the thread holds its
         * own, and answers. */
        varlink_call_unref(call);
        return VARLINK_DEFERRED;
}

static int method_confirm_recovery_key(VarlinkCall *call, json_object *p, void *userdata) {
        static const VarlinkField fields[] = {
                { "token", json_type_string },
                { "typed", json_type_string },
                {}
        };
        const char *token, *typed;
        int r;

        r = varlink_check_parameters(call, p, fields);
        if (r < 0)
                return r;
        token = get_string(p, "token");
        typed = get_string(p, "typed");

        pthread_mutex_lock(&lock);
        if (!current || !current->key || strlen(token) != strlen(current->token)) {
                pthread_mutex_unlock(&lock);
                return varlink_call_error(call, IFACE "NoSuchRecoveryKey", NULL);
        }
        {
                unsigned char diff = 0;
                for (size_t i = 0; current->token[i]; i++)
                        diff |= (unsigned char) (current->token[i] ^ token[i]);
                if (diff) {
                        pthread_mutex_unlock(&lock);
                        return varlink_call_error(call, IFACE "NoSuchRecoveryKey", NULL);
                }
        }
        r = recovery_key_check_groups(current->key, current->groups, ELEMENTSOF(current->groups), typed);
        explicit_bzero((char *) typed, strlen(typed));
        if (r >= 0) {
                current->confirmed = true;
                pthread_cond_broadcast(&cond);
        }
        pthread_mutex_unlock(&lock);
        if (r == -EKEYREJECTED) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "message", json_object_new_string(session_error_message(r)));
                return varlink_call_error(call, IFACE "RecoveryKeyMismatch", e);
        }
        if (r < 0)
                return invalid_request(call, "typed", session_error_message(r));
        log_info("The recovery key was confirmed.");
        return varlink_call_reply(call, NULL);
}

/* ---- the service ---------------------------------------------------------------------------- */

int varlink_installer_run(const char *listen_path) {
        _cleanup_(varlink_server_freep) VarlinkServer *server = NULL;
        int r;

        r = varlink_server_new(&server);
        if (r >= 0)
                r = varlink_server_set_info(server, "imprint", "imprint", IMPRINT_VERSION, "https://github.com/imprint-installer/imprint");
        if (r >= 0)
                r = varlink_server_add_interface(server, io_imprint_installer_varlink);
        if (r >= 0)
                r = varlink_server_add_method(server, IFACE "ListCandidateDevices", method_list_candidate_devices,
                                              VARLINK_METHOD_REQUIRES_MORE, NULL);
        if (r >= 0)
                r = varlink_server_add_method(server, IFACE "GetTPMStatus", method_get_tpm_status, 0, NULL);
        if (r >= 0)
                r = varlink_server_add_method(server, IFACE "Plan", method_plan, 0, NULL);
        if (r >= 0)
                r = varlink_server_add_method(server, IFACE "Install", method_install, 0, NULL);
        if (r >= 0)
                r = varlink_server_add_method(server, IFACE "ConfirmRecoveryKey", method_confirm_recovery_key, 0, NULL);
        if (r < 0)
                return error_setf(r, "Cannot set up the Varlink service: %s", strerror(-r));

        if (listen_path)
                r = varlink_server_listen_path(server, listen_path, 0600);
        else {
                r = varlink_server_listen_auto(server);
                if (r == 0)
                        r = error_setf(-EINVAL, "No socket was passed (socket activation, imprint-varlink.socket); give --listen=PATH.");
        }
        if (r < 0)
                return r;
        varlink_server_set_idle_timeout(server, IDLE_TIMEOUT_MSEC);
        log_info("Serving io.imprint.Installer%s%s.", listen_path ? " on " : "", listen_path ?: "");

        for (;;) {
                bool busy;

                r = varlink_server_run(server);
                if (r < 0)
                        return r;
                /* Idle, but an install may still run for a client that went away: it ends first. */
                pthread_mutex_lock(&lock);
                busy = current != NULL;
                pthread_mutex_unlock(&lock);
                if (!busy)
                        break;
                sleep(1);
        }
        return 0;
}
