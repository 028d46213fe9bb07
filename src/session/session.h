/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The install session: the one layer every front end drives — the command-line verbs, the
 * line-by-line dialogue (--plain), the full-screen installer (ui/), unattended installs and the
 * Varlink service (io.imprint.Installer). A new front end needs only this header.
 *
 * Dependencies point one way: front ends → session → engine → basic. A front end never discovers
 * disks, opens images, decides policy (what can be encrypted, when free space can be used, which
 * password is good enough) or maps errors itself; it asks the session.
 *
 * A session holds:
 *   - the source: the OS image, resolved ("self") and opened once;
 *   - the disks, discovered once (all of them, or the ones the front end was told to offer), and
 *     rediscovered only when asked;
 *   - the plan made from the last request, and the secrets it needs;
 *   - an install's state: whether a step that writes began, and which step failed.
 * Installing reports through one event handler: progress, the two questions (write? is the
 * recovery key in safe hands?), the recovery key's delivery, and the result.
 *
 * A front end, in full (error handling left out):
 *
 *     static int on_event(const SessionEvent *ev, void *userdata) {
 *             switch (ev->type) {
 *             case SESSION_EVENT_PROGRESS:     draw(ev->progress); return 0;
 *             case SESSION_EVENT_CONFIRM:      return ask_to_type(ev->plan->target_name);
 *             case SESSION_EVENT_RECOVERY_KEY: return show_and_check(ev->recovery_key);
 *             default:                         return 0;
 *             }
 *     }
 *
 *     session_new(&s);
 *     session_set_source(s, NULL);             // the medium's image; session_open_source(s)
 *     session_discover(s, true);               // session_disks(s): show them, with why not
 *     session_request_init(&req);              // fill in what the person chose
 *     req.target = chosen->path; req.with_image = true; …
 *     session_plan(s, &req, &plan);            // show the plan; errors say what to change
 *     session_set_secret(s, SESSION_SECRET_USER_PASSWORD, typed, false);   // what it needs
 *     r = session_install(s, NULL, on_event, NULL);
 *     printf("%s\n", r < 0 ? session_error_message(r) : "installed");
 *     return session_exit_code(r);
 *
 * src/plain.c is the shortest real one; src/varlink-installer.c drives it from another thread.
 *
 * Errors: every function returns 0 (or a documented positive value) or a negative errno, and
 * records one sentence for the person at the screen; session_error_message(r) returns the sentence
 * recorded for that r (never one left over from an earlier failure). Every function here starts
 * by clearing the previous sentence. session_exit_code(r) is imprint's exit status for r. */

#include <stdbool.h>
#include <stddef.h>

#include "account.h"
#include "config.h"
#include "disk.h"
#include "encrypt.h"
#include "executor.h"
#include "image.h"
#include "macro.h"
#include "plan.h"
#include "reset.h"
#include "recovery.h"  /* the recovery key hand-over: recovery_key_challenge(), _check_groups(), _qr_text() */
#include "secret.h"
#include "tpm2.h"

typedef struct Session Session;

int session_new(Session **ret);
Session *session_free(Session *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Session *, session_free);

/* ---- the source: the OS image ------------------------------------------------------------- */

/* Resolves source (a path; "self": the disk this system runs from; NULL: the medium's default from
 * /etc/imprint/imprint.conf). Cheap: nothing is opened yet. -EINVAL when no image is named or
 * configured. */
int session_set_source(Session *s, const char *source);
/* Opens the source set (once): its checksum, UKIs and systemd-boot are read and kept for every plan
 * and the install. */
int session_open_source(Session *s);
/* The certificate (PEM file) a usr image's usr-verity-sig signature must verify against
 * (image_check_usr()); NULL: none. Read now; checked when the source is opened, which it is again
 * if it already was. -EINVAL (with a sentence) when the file cannot be read. */
int session_set_image_certificate(Session *s, const char *path);
/* The key SHA256SUMS beside the image must be signed with ("imageKey", --image-key): a PEM public
 * key (SHA256SUMS.sig) or an OpenPGP key (SHA256SUMS.gpg). Required for an image named by URL;
 * for a file, the signature is then checked too. NULL: none. */
int session_set_image_key(Session *s, const char *path);
/* NULL until session_open_source() succeeded. */
const Image *session_image(const Session *s);
/* The resolved path of the image, or NULL. */
const char *session_source_path(const Session *s);
/* The image's name for people (os-release PRETTY_NAME), or NULL. */
const char *session_source_name(const Session *s);

/* ---- disks -------------------------------------------------------------------------------- */

/* Offer only these disks or image files (tests, demos, `imprint disks FILE…`); NULL/0: every
 * disk of this machine. Copied. Takes effect at the next session_discover(). */
int session_set_targets(Session *s, char *const *targets, size_t n);
/* (Re)discovers the disks: what they are, what is on them (probe_os: look inside partitions for
 * installed systems; slower), and whether and why they cannot be written. */
int session_discover(Session *s, bool probe_os);
/* The disks of the last session_discover() (empty before). */
const DiskList *session_disks(const Session *s);
/* The disk at path: from the discovered list when it is there, else discovered now. -ENOENT with a
 * sentence that says what to do when it does not exist. The pointer stays valid until the next
 * session_discover() or session_free(). */
int session_disk(Session *s, const char *path, const Disk **ret);

/* ---- policy: front ends ask, the engine decides ------------------------------------------- */

/* Whether "keep the partitions, use free space" can be offered for d (a GPT disk with partitions). */
bool session_can_keep_partitions(const Disk *d);
/* Whether root and home on d can be encrypted (a disk, not an image file). */
bool session_can_encrypt(const Disk *d);
/* This machine's TPM 2.0, checked once per session (tcti NULL: the kernel's /dev/tpmrm0). Returns 1
 * when usable, 0 when not (ret->problem says why), < 0 on errors. */
int session_tpm(Session *s, const char *tcti, const Tpm2Status **ret);
/* The note the plan will carry about encrypting d as req asks (an image file is not encrypted, the
 * TPM2 is not used, …), or NULL in *ret_note when there is none. Asks the TPM only when req needs it. */
int session_encryption_note(Session *s, const Disk *d, const EncryptRequest *req, char **ret_note);
/* Whether an account asked for as req would be a systemd-homed one (1) or a classic one (0) when
 * the session's image is installed to d; *ret_note (may be NULL) says why it is classic. */
int session_account_is_homed(Session *s, const Disk *d, const AccountRequest *req, char **ret_note);
/* Suggestions for the installed system's settings from the running (live) system: time zone,
 * locale, keymap (each NULL when unknown; hostname is "imprint"). Free with plan_settings_done(). */
int session_live_settings(PlanSettings *ret);

/* The checks session_plan() applies to a user name and to the settings, for screens that check
 * while they are typed: false / -EINVAL with a sentence. */
bool session_user_name_is_valid(const char *name);
int session_check_settings(const PlanSettings *s);

/* ---- unattended installs ---------------------------------------------------------------- */

/* Finds the install configuration (config.h): explicit_path, else the credential imprint.config,
 * else imprint.config=PATH on the kernel command line, over the medium's defaults. -EINVAL with a
 * sentence when there is none or it names no image. c must be install_config_init()ed. */
int session_find_config(Session *s, const char *explicit_path, InstallConfig *c);
/* Resolves the configuration's target "auto" to the one disk that can be installed to (several
 * or none: -EINVAL naming them; an unattended install never guesses). */
int session_resolve_config_target(Session *s, InstallConfig *c);

/* ---- the request and the plan ------------------------------------------------------------- */

/* What a front end asks for: the same choices `imprint install` takes. Strings are borrowed for
 * the duration of the call that takes the request. */
typedef struct SessionRequest {
        const char *target;          /* disk path or image file */
        PlanOptions layout;          /* mode, sizes, file systems, seed, architecture, root label;
                                      * its source/encryption/account/settings are the session's */
        EncryptRequest encrypt;      /* encrypt -1: the engine's default for the target */
        AccountRequest account;      /* user_name NULL: no account */
        PlanSettings settings;       /* NULL fields: keep what the image has */
        bool with_image;             /* plan the install of the session's image (else: partition only) */
        bool allow_unbootable;       /* install even when Secure Boot would not start it (secureboot.h) */
} SessionRequest;

void session_request_init(SessionRequest *r);

/* Plans r: finds the target disk (session_disk()), decides encryption and the account, checks the
 * settings, and builds the plan. The plan is kept by the session (replacing an earlier one) and
 * returned; it stays valid until the next session_plan()/session_load_plan() or session_free().
 * Nothing is written. */
int session_plan(Session *s, const SessionRequest *r, const Plan **ret);
/* A plan saved by `imprint plan --plan-file` (and its image, opened, when it installs one). */
int session_load_plan(Session *s, const char *path, const Plan **ret);
int session_save_plan(Session *s, const char *path);
/* The current plan, or NULL. */
const Plan *session_current_plan(const Session *s);

/* ---- secrets ------------------------------------------------------------------------------ */

typedef enum SessionSecret {
        SESSION_SECRET_PASSPHRASE,     /* the plan's passphrase keyslot */
        SESSION_SECRET_TPM2_PIN,       /* the plan's TPM2 PIN */
        SESSION_SECRET_USER_PASSWORD,  /* the plan's account */
        SESSION_SECRET_OLD_RECOVERY_KEY, /* reset, home kept: the disk's current recovery key, when the
                                        * TPM cannot unlock home ("imprint.old-recovery-key") */
        _SESSION_SECRET_MAX,
} SessionSecret;

/* Whether the current plan needs this secret. */
bool session_needs_secret(const Session *s, SessionSecret which);
/* The credential that may carry it: "imprint.passphrase", "imprint.tpm2-pin", "imprint.user-password". */
const char *session_secret_credential(SessionSecret which);
/* What to call it in a sentence: "passphrase", "TPM2 PIN", "password". */
const char *session_secret_name(SessionSecret which);
/* Sets a secret the plan needs, taking ownership of value (wiped and freed on failure too). The
 * passphrase and the account's password are checked with libpwquality (the password against the
 * account's names) unless allow_weak; returns the score (0–100) or 0, or -EINVAL with a sentence
 * saying why it is refused. */
int session_set_secret(Session *s, SessionSecret which, Secret *value, bool allow_weak);
/* Sets it from its credential ($CREDENTIALS_DIRECTORY). -ENOENT (no sentence) when there is no such
 * credential; other errors say what is wrong with it. */
int session_secret_from_credential(Session *s, SessionSecret which, bool allow_weak);
/* How good text would be as which, for screens that check while it is typed (before there is a
 * plan): libpwquality's rules, the password also against user_name (may be NULL). Returns the
 * score (0–100), or -EPERM with a sentence saying why it is refused. */
int session_rate_secret(SessionSecret which, const char *text, const char *user_name);
/* A note to show beside the rating when the checks are weaker than usual (no cracklib
 * dictionary), or NULL. */
const char *session_password_note(void);
/* -EINVAL naming the first secret the plan needs and that was not set (with its credential's name). */
int session_check_secrets(const Session *s);

/* ---- installing --------------------------------------------------------------------------- */

typedef enum SessionEventType {
        SESSION_EVENT_PROGRESS,        /* ev->progress: a step was planned, began, moved, ended, failed */
        SESSION_EVENT_CONFIRM,         /* question: write ev->plan to its target? */
        SESSION_EVENT_RECOVERY_KEY,    /* question: show ev->recovery_key to a person and have part
                                        * of it typed back (recovery_key_challenge(),
                                        * recovery_key_check_groups()); answered > 0 when done */
        SESSION_EVENT_RECOVERY_KEY_DELIVERED, /* the key was written to ev->path (escrow); ev->message:
                                        * "cms" (encrypted to a certificate or public key) or
                                        * "plaintext" */
        SESSION_EVENT_RESULT,          /* the end: ev->error (0 or negative errno), ev->message */
        _SESSION_EVENT_MAX,
} SessionEventType;

typedef struct SessionEvent {
        SessionEventType type;
        const Plan *plan;
        const ProgressEvent *progress;
        const Secret *recovery_key;    /* never to be logged, kept or written to a file */
        const char *path;
        int error;
        const char *message;
} SessionEvent;

/* Returns, for questions: > 0 yes, 0 no (nothing is written; the install ends with -ECANCELED),
 * < 0 an error. Ignored for the other events. */
typedef int (*SessionEventHandler)(const SessionEvent *ev, void *userdata);

typedef struct SessionInstallOptions {
        bool no_variables;           /* no firmware boot entry */
        const char *escrow_dir;      /* deliver the recovery key there instead of asking the handler */
        const char *escrow_certificate; /* escrow.c: encrypt it to this certificate or public key
                                      * (PEM); NULL: written as it is */
} SessionInstallOptions;

/* Runs the current plan (pre-flight checks, the questions, then the writes) with the secrets set,
 * reporting through handler. Ctrl-C, SIGTERM and SIGHUP stop it at a safe point (-EINTR). */
int session_install(Session *s, const SessionInstallOptions *o, SessionEventHandler handler, void *userdata);
/* The signal (SIGINT, SIGTERM, SIGHUP) that stopped the last install at a safe point, or 0. */
int session_interrupted(const Session *s);
/* Whether the last install began a step that writes to the target. */
bool session_wrote(const Session *s);
/* The description of the step the last install failed at, or NULL. */
const char *session_failed_step(const Session *s);
/* The id ("copy-root", …) of that step, or NULL. */
const char *session_failed_step_id(const Session *s);

/* ---- factory reset ------------------------------------------------------------------------ */

/* A reset is planned here and then run with session_install(), which reports through the same
 * events: CONFIRM (the reset plan: what is erased and what is kept, per partition; have the disk's
 * name typed), RECOVERY_KEY (the NEW recovery key) or RECOVERY_KEY_DELIVERED (escrow), PROGRESS,
 * RESULT. */

typedef struct SessionResetRequest {
        const char *target;           /* NULL: the recovery entry's own disk (reset_boot_disk()) */
        ResetEntryPoint entry_point;
        bool keep_home, secure_erase, tpm_clear;
        AccountRequest account;       /* user_name NULL: left to the first boot */
        PlanSettings settings;
} SessionResetRequest;

void session_reset_request_init(SessionResetRequest *r);

/* What d is to a reset (reset_probe()); cached per disk until the next session_discover(). */
int session_reset_target(Session *s, const Disk *d, const ResetTarget **ret);
/* Plans the reset of r->target. Classic images need the session's source (the medium's image).
 * Nothing is written. The plan replaces the session's current one. */
int session_plan_reset(Session *s, const SessionResetRequest *r, const Plan **ret);

/* ---- after an install --------------------------------------------------------------------- */

/* Saves the log at log_path to the first USB stick or other removable disk that is not the
 * current plan's target and has a filesystem that can take it. *ret_where: a sentence saying
 * where it went. */
int session_save_log(Session *s, const char *log_path, char **ret_where);

/* On the Linux console ($TERM=linux, as root), makes map (a kbd keymap) the console's keyboard
 * layout right away (loadkeys), so that what follows types as chosen; elsewhere (a terminal
 * emulator has its own layout) nothing. Errors are ignored: it is a convenience. */
void session_set_console_keymap(const char *map);

/* Restarts (reboot) or switches off this computer through systemd (systemctl); -EOPNOTSUPP with a
 * sentence when this system is not run by systemd. */
int session_power(bool reboot);

/* ---- errors ------------------------------------------------------------------------------- */

/* The sentence recorded for r, or strerror(-r) when none was recorded for this r. */
const char *session_error_message(int r);
/* imprint's exit status for r (imprint(1), EXIT STATUS): 0, 1 failed, 2 bad input, 3 refused,
 * 4 too small, 5 changed, 6 canceled, 7 bad image. */
int session_exit_code(int r);
