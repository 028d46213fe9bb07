/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Dialogue pieces that every front end shares and that tests drive through streams: the
 * recovery key hand-over (show it, have part of it typed back) and asking for a new secret. */

#include <errno.h>
#include <inttypes.h>
#include <langinfo.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dialogue.h"
#include "erase.h"
#include "error.h"
#include "fileio.h"
#include "i18n.h"
#include "session.h"
#include "proc-cmdline.h"
#include "recovery-entry.h"
#include "size.h"

#ifndef USEC_PER_SEC
#define USEC_PER_SEC UINT64_C(1000000)
#endif

/* Writes straight to the terminal, not through stdio, whose buffers would keep a copy of a key. */
static void write_secret_text(FILE *out, const void *buf, size_t n) {
        const char *p = buf;

        fflush(out);
        while (n > 0) {
                ssize_t k = write(fileno(out), p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return;
                p += k;
                n -= (size_t) k;
        }
}

static bool terminal_is_utf8(void) {
        return streq_ptr(nl_langinfo(CODESET), "UTF-8");
}

int recovery_key_dialogue(const Plan *p, const Secret *key, FILE *in, FILE *out) {
        _cleanup_(secret_freep) Secret *qr = NULL;
        unsigned groups[2];
        int r;

        r = recovery_key_qr_text(key, terminal_is_utf8(), &qr);
        if (r < 0)
                /* TRANSLATORS: %s is the system's error text. */
                return error_setf(r, _("Cannot draw the recovery key as a QR code: %s"), strerror(-r));
        r = recovery_key_challenge(ELEMENTSOF(groups), groups, ELEMENTSOF(groups));
        if (r < 0)
                return r;

        for (unsigned attempt = 0;; attempt++) {
                char typed[256], question[160];

                if (attempt % 3 == 0) {
                        char intro[1024];

                        /* TRANSLATORS: %s is the disk's name (sda). Keep the line breaks near 100 columns. */
                        snprintf(intro, sizeof(intro), _("\nRECOVERY KEY for the encrypted disk %s\n\n"
                                       "If the TPM ever refuses to unlock the disk (a firmware update, Secure Boot changed, the disk\n"
                                       "moved to another computer), this key is the only way in. Write it down or scan the code, and\n"
                                       "keep it apart from the computer. Nothing has been written to the disk yet.\n"),
                                 p->target_name);
                        fputs(intro, out);
                        fprintf(out, "\n    ");
                        write_secret_text(out, key->data, key->size);
                        fprintf(out, "\n\n");
                        write_secret_text(out, qr->data, qr->size);
                        fprintf(out, "\n%s\n", recovery_key_explanation());
                }
                /* TRANSLATORS: the two numbers are groups of the recovery key, counted from 1; "q" is typed as it is. */
                snprintf(question, sizeof(question), _("\nTo show you have it, type groups %u and %u of the key (q cancels): "), groups[0],
                         groups[1]);
                fprintf(out, "%s", question);
                fflush(out);
                if (!fgets(typed, sizeof(typed), in)) {
                        secret_wipe(typed, sizeof(typed));
                        return 0;
                }
                typed[strcspn(typed, "\r\n")] = 0;
                if (streq(strstrip(typed), "q")) {
                        secret_wipe(typed, sizeof(typed));
                        return 0;
                }
                r = recovery_key_check_groups(key, groups, ELEMENTSOF(groups), typed);
                secret_wipe(typed, sizeof(typed));
                if (r >= 0)
                        break;
                if (r != -EKEYREJECTED)
                        return r;
                fprintf(out, "%s\n", session_error_message(r));
        }
        /* Off the screen (and the terminal's scrollback) before the install goes on. */
        if (isatty(fileno(out)))
                fprintf(out, "\033[H\033[2J\033[3J");
        fprintf(out, "%s\n", _("Thank you: the recovery key is confirmed."));
        fflush(out);
        return 1;
}

int ask_secret(const char *prompt, bool check_quality, Secret **ret) {
        for (unsigned attempt = 0; attempt < 5; attempt++) {
                _cleanup_(secret_freep) Secret *a = NULL, *b = NULL;
                int r;

                fflush(stdout);
                if (isatty(STDIN_FILENO)) {
                        r = secret_read_tty(STDIN_FILENO, STDOUT_FILENO, prompt, 512, &a);
                        if (r >= 0)
                                r = secret_read_tty(STDIN_FILENO, STDOUT_FILENO, _("Type it again: "), 512, &b);
                } else {
                        /* A pipe (a test driver, a screen reader's helper): no echo to turn off. */
                        char line[514];

                        printf("%s", prompt);
                        fflush(stdout);
                        r = fgets(line, sizeof(line), stdin) ? 0 : -ECANCELED;
                        if (r >= 0) {
                                line[strcspn(line, "\r\n")] = 0;
                                a = secret_new_from(line, strlen(line));
                                b = a ? secret_new_from(line, strlen(line)) : NULL;
                                if (!b)
                                        r = -ENOMEM;
                        }
                        secret_wipe(line, sizeof(line));
                }
                if (r < 0)
                        /* TRANSLATORS: %s is the system's error text. */
                        return r == -ECANCELED ? r : error_setf(r, _("Cannot read from the terminal: %s"), strerror(-r));
                if (a->size == 0) {
                        printf("%s\n", _("It must not be empty."));
                        continue;
                }
                if (a->size != b->size || memcmp(a->data, b->data, a->size) != 0) {
                        printf("%s\n", _("The two did not match. Once more."));
                        continue;
                }
                if (check_quality) {
                        r = session_rate_secret(SESSION_SECRET_PASSPHRASE, (const char *) a->data, NULL);
                        if (r < 0) {
                                /* TRANSLATORS: %s is libpwquality's reason, one sentence. */
                                printf(_("Too weak: %s Choose another.\n"), session_error_message(r));
                                continue;
                        }
                        printf(_("Strength: %d of 100.\n"), r);
                }
                *ret = TAKE_PTR(a);
                return 0;
        }
        return error_setf(-ECANCELED, _("Too many attempts."));
}

void progress_print_text(const ProgressEvent *ev) {
        bool tty = isatty(STDOUT_FILENO);

        switch (ev->type) {
        case PROGRESS_BEGIN:
                printf("[%u/%u] %s …%s", ev->step, ev->n_steps, ev->description, tty ? "" : "\n");
                break;
        case PROGRESS_UPDATE:
                if (tty) {
                        char eta[32] = "";

                        if (ev->eta_usec >= 0)
                                /* TRANSLATORS: minutes:seconds left of a step. */
                                snprintf(eta, sizeof(eta), _(", %" PRIi64 ":%02" PRIi64 " left"), ev->eta_usec / 60000000,
                                         ev->eta_usec / 1000000 % 60);
                        /* TRANSLATORS: step/steps, the step, bytes done of all, percent, rate, time left. */
                        fputs("\r\033[K", stdout);
                        printf(_("[%u/%u] %s … %s of %s (%u%%), %s/s%s"), ev->step, ev->n_steps, ev->description,
                               FORMAT_BYTES(ev->done), FORMAT_BYTES(ev->total),
                               ev->total ? (unsigned) (ev->done * 100 / ev->total) : 0, FORMAT_BYTES(ev->rate), eta);
                }
                break;
        case PROGRESS_END:
                /* On a terminal the line replaces the step's progress; in a log or a pipe each line
                 * says which step it is about on its own. */
                if (tty)
                        printf("\r\033[K");
                printf(_("[%u/%u] %s … done (%.1f s)\n"), ev->step, ev->n_steps, ev->description, (double) ev->elapsed_usec / 1e6);
                break;
        case PROGRESS_FAILED:
                printf(_("%s[%u/%u] %s … FAILED\n"), tty ? "\r\033[K" : "", ev->step, ev->n_steps, ev->description);
                break;
        default:
                break;
        }
        fflush(stdout);
}

int ask_user_password(Session *s, bool allow_weak) {
        const Plan *p = session_current_plan(s);
        char prompt[128];
        int r;

        if (!p || !p->account)
                return -EINVAL;
        /* TRANSLATORS: %s is the user name. */
        printf(_("Password for %s (the login of the installed system):\n"), p->account->user_name);
        /* TRANSLATORS: %s is the user name. */
        snprintf(prompt, sizeof(prompt), _("Password for %s: "), p->account->user_name);
        for (;;) {
                Secret *v = NULL;

                r = ask_secret(prompt, false, &v);
                if (r < 0)
                        return r;
                r = session_set_secret(s, SESSION_SECRET_USER_PASSWORD, v, allow_weak);
                if (r >= 0) {
                        /* 0 is also what a refused password that is let through gets: no score then. */
                        if (r > 0)
                                printf(_("Strength: %d of 100.\n"), r);
                        return 0;
                }
                /* TRANSLATORS: %s is libpwquality's reason, one sentence. */
                printf(_("Too weak: %s Choose another.\n"), session_error_message(r));
        }
}

/* ---- factory reset ------------------------------------------------------------------------------ */

/* The method erase_partition() is expected to use for pp, and how long it would take (0: unknown
 * or instant). Without an answer from the device: what the partition's encryption implies. */
static EraseMethod reset_expected_method(const Plan *p, const PlanPartition *pp, uint64_t *ret_usec) {
        EraseTarget t = {
                .file = p->target,
                .fd = -EBADF,
                .offset = pp->start,
                .size = pp->size,
                .is_block = p->target_kind == DISK_BLOCK,
                .secure = p->reset && p->reset->secure_erase,
        };
        EraseMethod m;
        uint64_t usec = 0;

        if (erase_probe(&t, &m, &usec) >= 0 && m >= 0 && m < _ERASE_METHOD_MAX) {
                *ret_usec = usec;
                return m;
        }
        error_clear();
        *ret_usec = 0;
        return pp->encrypt ? ERASE_CRYPTO : ERASE_DISCARD;
}

static const char *reset_method_text(EraseMethod m) {
        switch (m) {
        case ERASE_CRYPTO:
                return _("crypto-erase: every keyslot and both LUKS2 header copies destroyed, so nothing can rebuild the "
                         "volume key; the encrypted data area is discarded where the disk supports it");
        case ERASE_DISCARD:
                return _("discard: the disk drops the data (where it cannot, it is overwritten with zeroes)");
        case ERASE_OVERWRITE:
                return _("overwrite with zeroes");
        case ERASE_SECURE_DISCARD:
                return _("secure erase (the disk's secure discard), as asked");
        default:
                return "?";
        }
}

int reset_partition_fate(const Plan *p, size_t i, char *buf, size_t size) {
        const PlanPartition *pp;

        if (i >= p->n_partitions)
                return -EINVAL;
        pp = &p->partitions[i];
        if (pp->action == ACTION_KEEP)
                snprintf(buf, size, "%s", _("kept as it is"));
        else if (pp->action == ACTION_REENROLL)
                snprintf(buf, size, "%s",
                         _("kept with its data; re-enrolled: a new recovery key and TPM2 enrollment, every old key removed"));
        else {
                char what[256], when[128] = "";
                uint64_t usec = 0;
                EraseMethod m = pp->erase ? reset_expected_method(p, pp, &usec) : _ERASE_METHOD_INVALID;

                if (pp->copy_from >= 0)
                        snprintf(what, sizeof(what), "%s", _("deployed again from the image"));
                else
                        /* TRANSLATORS: %s is a file system type, e.g. "ext4". */
                        snprintf(what, sizeof(what), _("a new empty %s file system"), pp->fstype ?: "ext4");
                if (usec >= 60 * USEC_PER_SEC)
                        /* TRANSLATORS: how long overwriting takes; %u is a number of minutes. */
                        snprintf(when, sizeof(when), _(" (about %u minutes)"), (unsigned) ((usec + 59 * USEC_PER_SEC) / (60 * USEC_PER_SEC)));
                if (pp->erase)
                        /* TRANSLATORS: first %s: how it is erased; second: how long (may be empty); third: what
                         * replaces it; fourth: ", encrypted with new keys" or nothing. */
                        snprintf(buf, size, _("ERASED by %s%s; then %s%s"), reset_method_text(m), when, what,
                                 pp->encrypt ? _(", encrypted with new keys") : "");
                else
                        snprintf(buf, size, _("recreated: %s%s"), what, pp->encrypt ? _(", encrypted with new keys") : "");
        }
        return 0;
}

void reset_plan_print(const Plan *p, FILE *out) {
        char fate[1024];

        /* TRANSLATORS: %s is the disk (/dev/sda), then its description ("QEMU HARDDISK (SATA, 20 GiB)"). */
        fprintf(out, _("Factory reset of %s (%s)\n"), p->target, p->target_description ?: p->target_name);
        if (p->reset && (p->reset->installed_at || p->reset->image_version))
                /* TRANSLATORS: "Installed: 2026-12-03T10:15:00Z by imprint 0.9, system version 7". */
                fprintf(out, _("Installed: %s by imprint %s, system version %s\n"), p->reset->installed_at ?: "?",
                        p->reset->installed_by ?: "?", p->reset->image_version ?: "?");
        fprintf(out, "%s\n", _("What happens to each partition:"));
        for (size_t i = 0; i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];

                (void) reset_partition_fate(p, i, fate, sizeof(fate));
                fprintf(out, "  %2u  %-10s %-18.18s %10s  %s\n", pp->partno, partition_role_to_string(pp->role) ?: "-",
                        pp->label ?: "-", FORMAT_BYTES(pp->size), fate);
        }
        if (p->reset && p->reset->account_note)
                /* TRANSLATORS: %s says what happens to the account, one sentence. */
                fprintf(out, _("Account: %s\n"), p->reset->account_note);
        if (p->encryption.enabled)
                fprintf(out, "%s\n", _("New keys: new volume keys, a new TPM2 enrollment where the TPM can hold one, and a new "
                                      "recovery key; the old recovery key opens nothing afterwards."));
        if (p->reset && p->reset->secure_erase)
                fprintf(out, "%s\n", _("Secure erase: asked; used where the disk offers it, and the result says whether it did."));
        if (p->reset && p->reset->tpm_clear)
                fprintf(out, "%s\n", _("TPM: the firmware is asked to clear it at the next start."));
}

json_object *reset_plan_to_json(const Plan *p) {
        json_object *j = json_object_new_object(), *a = json_object_new_array();

        json_object_object_add(j, "target", json_object_new_string(p->target));
        json_object_object_add(j, "entryPoint", p->reset ? json_object_new_string(reset_entry_point_to_string(p->reset->entry_point)) : NULL);
        json_object_object_add(j, "keepHome", json_object_new_boolean(p->reset && p->reset->keep_home));
        json_object_object_add(j, "secureErase", json_object_new_boolean(p->reset && p->reset->secure_erase));
        json_object_object_add(j, "tpmClear", json_object_new_boolean(p->reset && p->reset->tpm_clear));
        for (size_t i = 0; i < p->n_partitions; i++) {
                const PlanPartition *pp = &p->partitions[i];
                json_object *o = json_object_new_object();
                const char *action = pp->action == ACTION_KEEP ? "keep" : pp->action == ACTION_REENROLL ? "reenroll" : pp->erase ? "erase" : "create";
                uint64_t usec = 0;

                json_object_object_add(o, "partno", json_object_new_int((int) pp->partno));
                json_object_object_add(o, "role", json_object_new_string(partition_role_to_string(pp->role) ?: "other"));
                json_object_object_add(o, "label", pp->label ? json_object_new_string(pp->label) : NULL);
                json_object_object_add(o, "size", json_object_new_int64((int64_t) pp->size));
                json_object_object_add(o, "action", json_object_new_string(action));
                json_object_object_add(o, "method",
                                       pp->action == ACTION_CREATE && pp->erase
                                               ? json_object_new_string(erase_method_to_string(reset_expected_method(p, pp, &usec)))
                                               : NULL);
                json_object_object_add(o, "recreate",
                                       pp->action == ACTION_CREATE ? json_object_new_string(pp->copy_from >= 0 ? "image" : "empty") : NULL);
                json_object_object_add(o, "encrypted", json_object_new_boolean(pp->encrypt));
                json_object_array_add(a, o);
        }
        json_object_object_add(j, "partitions", a);
        json_object_object_add(j, "account", p->reset && p->reset->account_note ? json_object_new_string(p->reset->account_note) : NULL);
        json_object_object_add(j, "plan", plan_to_json(p));
        return j;
}

int ask_old_recovery_key(Session *s) {
        const char *prompt = _("The disk's current recovery key, to unlock home if the TPM cannot (Enter to skip): ");

        for (unsigned attempt = 0; attempt < 3; attempt++) {
                Secret *v = NULL;
                int r;

                fflush(stdout);
                if (isatty(STDIN_FILENO))
                        r = secret_read_tty(STDIN_FILENO, STDOUT_FILENO, prompt, 512, &v);
                else {
                        char line[514];

                        printf("%s", prompt);
                        fflush(stdout);
                        r = fgets(line, sizeof(line), stdin) ? 0 : -ECANCELED;
                        if (r >= 0) {
                                line[strcspn(line, "\r\n")] = 0;
                                v = secret_new_from(line, strlen(line));
                                if (!v)
                                        r = -ENOMEM;
                        }
                        secret_wipe(line, sizeof(line));
                }
                if (r < 0)
                        return r == -ECANCELED ? r : error_setf(r, _("Cannot read from the terminal: %s"), strerror(-r));
                if (v->size == 0) {
                        secret_free(v);
                        return 0;
                }
                r = session_set_secret(s, SESSION_SECRET_OLD_RECOVERY_KEY, v, false);
                if (r >= 0)
                        return 1;
                printf("%s\n", session_error_message(r));
        }
        return 0;
}

ResetEntryPoint reset_entry_point_here(void) {
        _cleanup_(freep) char *v = NULL;

        if (proc_cmdline_get_key("imprint.recovery", &v) > 0 && !streq_ptr(v, "0"))
                return RESET_FROM_BOOT_MENU;
        return RESET_FROM_LIVE_MEDIUM;
}

int reset_request_here(char **ret) {
        int r;

        *ret = NULL;
        if (!efi_booted())
                return 0;
        r = recovery_request_pending(&(EfiVars) {}, ret);
        if (r <= 0) {
                *ret = mfree(*ret);
                error_clear();
                return 0;
        }
        return 1;
}

void reset_target_describe(const ResetTarget *t, char *buf, size_t size) {
        size_t len;

        if (t->refusal) {
                /* TRANSLATORS: %s says why, one sentence. */
                snprintf(buf, size, _("cannot be reset: %s"), t->refusal);
                return;
        }
        /* TRANSLATORS: "Debian GNU/Linux 13, version 13.2, installed by imprint; encrypted, with home". */
        snprintf(buf, size, _("%s, version %s, installed by imprint%s%s"), t->os_name ?: _("an OS image"), t->image_version ?: "?",
                 t->encrypted ? _("; encrypted") : "", t->has_home ? _("; with a home partition") : "");
        len = strlen(buf);
        if (t->interrupted)
                snprintf(buf + len, size - len, "\n%s", _("A reset of this disk was interrupted: it does not start as it is; reset it again."));
        else if (t->last_reset)
                /* TRANSLATORS: %s is the audit record's summary of the last reset. */
                snprintf(buf + len, size - len, _("\nlast reset: %s"), t->last_reset);
}
