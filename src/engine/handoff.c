/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fsread.h"
#include "handoff.h"
#include "i18n.h"
#include "log.h"
#include "macro.h"
#include "rootfile.h"

/* The hand-off on the console. Stock tools only: systemd-cryptenroll (v257: --recovery-key,
 * --wipe-slot=, --unlock-tpm2-device=auto; the new passphrase of the other volumes from the
 * credential cryptenroll.new-passphrase, read by its ask-password logic). Every step can run
 * again after a power cut: the TPM2 keyslot unlocks each volume, so a new key simply replaces
 * whatever recovery or passphrase keyslots the volume has, the previous attempt's included
 * (--wipe-slot= spares the keyslot just enrolled). The key goes to the console (stdout is the
 * tty, StandardOutput=tty) and, for the other volumes, into a credential file in a private
 * directory on /run (tmpfs), removed at exit; never to argv, the environment, the journal or
 * the disk. */
static const char handoff_script[] =
        "#!/bin/sh\n"
        "# SPDX-License-Identifier: LGPL-2.1-or-later\n"
        "# Written by imprint (imprint(1), \"OEM hand-off\"); run by " HANDOFF_UNIT " on the console at the\n"
        "# customer's first boot, until " HANDOFF_MARKER " exists. Replaces the recovery key that the\n"
        "# factory's line made by a new one, with stock systemd-cryptenroll unlocking through the TPM;\n"
        "# the TPM2 keyslot stays. The key is shown here only, and typed back in part.\n"
        "set -u\n"
        "umask 077\n"
        "PATH=/usr/bin:/usr/sbin:/bin:/sbin\n"
        "MARKER=" HANDOFF_MARKER "\n"
        "KEY_RE='([cbdefghijklnrtuv]{8}-){7}[cbdefghijklnrtuv]{8}'\n"
        "\n"
        "# The backing partitions of the LUKS2 volumes open now (root, home); not a loop device (a\n"
        "# systemd-homed home image is the user's, with no TPM2 keyslot).\n"
        "volumes() {\n"
        "        for d in /sys/block/dm-*; do\n"
        "                [ -r \"$d/dm/uuid\" ] || continue\n"
        "                case $(cat \"$d/dm/uuid\") in CRYPT-LUKS2-*) ;; *) continue ;; esac\n"
        "                for s in \"$d\"/slaves/*; do\n"
        "                        case ${s##*/} in loop*) continue ;; esac\n"
        "                        [ -e \"$s\" ] && printf '/dev/%s\\n' \"${s##*/}\"\n"
        "                done\n"
        "        done\n"
        "}\n"
        "\n"
        "devs=$(volumes)\n"
        "if [ -n \"$devs\" ]; then\n"
        "        creds=$(mktemp -d /run/imprint-handoff.XXXXXX) || exit 1\n"
        "        trap 'rm -rf \"$creds\"' EXIT\n"
        "        key=\n"
        "        for dev in $devs; do\n"
        "                if [ -z \"$key\" ]; then\n"
        "                        out=$(systemd-cryptenroll --unlock-tpm2-device=auto --recovery-key --wipe-slot=recovery,password \"$dev\" </dev/null 2>/dev/null)\n"
        "                        rc=$?\n"
        "                        key=$(printf '%s\\n' \"$out\" | grep -oE \"$KEY_RE\" | head -n 1)\n"
        "                        out=\n"
        "                        if [ \"$rc\" != 0 ] || [ -z \"$key\" ]; then\n"
        "                                echo \"imprint: systemd-cryptenroll could not make a new recovery key for $dev (exit $rc). This runs again at the next boot.\"\n"
        "                                exit 1\n"
        "                        fi\n"
        "                        printf '%s' \"$key\" >\"$creds/cryptenroll.new-passphrase\"\n"
        "                        continue\n"
        "                fi\n"
        "                if ! CREDENTIALS_DIRECTORY=$creds systemd-cryptenroll --unlock-tpm2-device=auto --password --wipe-slot=recovery,password \"$dev\" </dev/null >/dev/null 2>&1; then\n"
        "                        echo \"imprint: systemd-cryptenroll could not enroll the new recovery key on $dev. This runs again at the next boot.\"\n"
        "                        exit 1\n"
        "                fi\n"
        "        done\n"
        "        rm -f \"$creds/cryptenroll.new-passphrase\"\n"
        "        want=\"${key%%-*}-${key##*-}\"\n"
        "        printf '\\033[H\\033[2J'\n"
        "        echo\n"
        "        echo \"This computer's disk is encrypted. The TPM unlocks it at every boot; when it cannot (a\"\n"
        "        echo \"firmware update, another disk, a repair), this recovery key opens it instead:\"\n"
        "        echo\n"
        "        echo \"    Recovery key: $key\"\n"
        "        echo\n"
        "        echo \"Write it down now and keep it apart from the computer. Nobody else has it: the key the\"\n"
        "        echo \"factory used no longer opens this disk.\"\n"
        "        echo\n"
        "        while :; do\n"
        "                printf '%s' 'Type the first and the last group of the recovery key (first-last): '\n"
        "                answer=\n"
        "                IFS= read -r answer || { echo; echo 'imprint: the console closed. This runs again at the next boot.'; exit 1; }\n"
        "                answer=$(printf '%s' \"$answer\" | tr -d ' \\t\\r' | tr 'A-Z' 'a-z')\n"
        "                [ \"$answer\" = \"$want\" ] && break\n"
        "                echo 'That does not match the key shown above. Check what you wrote down and type it again.'\n"
        "        done\n"
        "        key= want= answer=\n"
        "        printf '\\033[H\\033[2J'\n"
        "fi\n"
        "mkdir -p \"${MARKER%/*}\"\n"
        "date -u +%Y-%m-%dT%H:%M:%SZ >\"$MARKER.tmp\" && chmod 0644 \"$MARKER.tmp\" && mv \"$MARKER.tmp\" \"$MARKER\" || exit 1\n"
        "sync\n"
        "echo 'imprint: the hand-off is complete; this computer is yours.'\n";

static const char handoff_unit[] =
        "# Written by imprint (imprint(1), \"OEM hand-off\"): the customer's first boot replaces the\n"
        "# factory's recovery key (" HANDOFF_SCRIPT "). Until " HANDOFF_MARKER " exists, every boot runs it\n"
        "# again; first-boot-complete.target (which commits /etc/machine-id) waits for it.\n"
        "[Unit]\n"
        "Description=Hand this computer over: a new recovery key\n"
        "Documentation=man:imprint(1)\n"
        "ConditionPathExists=!" HANDOFF_MARKER "\n"
        "After=systemd-firstboot.service systemd-homed-firstboot.service systemd-vconsole-setup.service\n"
        "After=cryptsetup.target local-fs.target systemd-homed.service\n"
        "Before=systemd-user-sessions.service getty-pre.target first-boot-complete.target\n"
        "Conflicts=shutdown.target\n"
        "Before=shutdown.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        "ExecStart=/bin/sh " HANDOFF_SCRIPT "\n"
        "StandardInput=tty\n"
        "StandardOutput=tty\n"
        "StandardError=tty\n"
        "TTYPath=/dev/console\n"
        "TTYReset=yes\n"
        "TTYVHangup=yes\n"
        "TimeoutSec=infinity\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n";

void plan_oem_free(PlanOem *o) {
        if (!o)
                return;
        free(o->note);
        free(o);
}

/* Whether the image's systemd has systemd-homed-firstboot.service: 1 yes, 0 no, <0 cannot tell. */
static int source_has_homed_firstboot(const PlanSource *s) {
        _cleanup_(freep) void *buf = NULL;
        size_t size = 0;
        int r = -ENOENT;

        /* A streamed image: not known until it is written; the plan is made again then. */
        if (s->content_pending)
                return 1;

        for (size_t i = 0; i < s->n_partitions; i++) {
                const PlanSourcePartition *sp = &s->partitions[i];
                /* A streamed image's big partition is read where it was written. */
                bool moved = s->streaming && i == s->streamed && s->streamed_disk;
                const FsLocation l = { .disk = moved ? s->streamed_disk : s->path, .offset = moved ? s->streamed_offset : sp->start,
                                       .fstype = sp->fstype };

                if (!sp->fstype || !s->path)
                        continue;
                if (sp->role == ROLE_ROOT)
                        r = fs_read_file(&l, "/usr/lib/systemd/system/systemd-homed-firstboot.service", &buf, &size);
                else if (sp->role == ROLE_USR)
                        r = fs_read_file(&l, "/lib/systemd/system/systemd-homed-firstboot.service", &buf, &size);
                else
                        continue;
                if (r >= 0)
                        return 1;
                if (r == -ENOENT)
                        return 0;
                return r;
        }
        return r == -ENOENT ? -EOPNOTSUPP : r;
}

int handoff_plan(const PlanSource *source, const PlanEncryption *encryption, const PlanSettings *settings, PlanOem **ret) {
        _cleanup_(plan_oem_freep) PlanOem *o = NULL;
        int r;

        if (!source)
                return error_setf(-EINVAL, _("\"oem\": true needs an image to install (a source): the customer's first boot is set up in "
                                             "the installed system."));
        o = calloc(1, sizeof(PlanOem));
        if (!o)
                return -ENOMEM;
        o->ask_locale = !(settings && settings->locale);
        o->ask_keymap = !(settings && settings->keymap);
        o->ask_timezone = !(settings && settings->timezone);
        o->ask_hostname = !(settings && settings->hostname);
        o->new_recovery_key = encryption && encryption->enabled && encryption->recovery_key;

        r = source_has_homed_firstboot(source);
        error_clear();
        if (r > 0)
                o->account = HANDOFF_ACCOUNT_HOMED;
        else {
                o->account = HANDOFF_ACCOUNT_ROOT_PASSWORD;
                o->note = strdup(r == 0 ? "The image's systemd has no systemd-homed-firstboot.service (systemd 256 or newer): at the "
                                          "first boot systemd-firstboot asks the customer for root's password instead, and the customer "
                                          "makes the account from there."
                                        : "imprint cannot look into the image's root filesystem to find systemd-homed-firstboot.service: "
                                          "it is enabled in case it is there, and systemd-firstboot asks for root's password as well.");
                if (!o->note)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(o);
        return 0;
}

char *handoff_asks_text(const PlanOem *o) {
        const char *parts[4];
        size_t n = 0;
        char *s = NULL;

        if (o->ask_locale)
                parts[n++] = "locale";
        if (o->ask_keymap)
                parts[n++] = "keymap";
        if (o->ask_timezone)
                parts[n++] = "time zone";
        if (o->ask_hostname)
                parts[n++] = "host name";
        if (n == 0)
                return NULL;
        if (n == 1)
                return strdup(parts[0]);
        if (n == 2)
                return asprintf(&s, "%s and %s", parts[0], parts[1]) < 0 ? NULL : s;
        if (n == 3)
                return asprintf(&s, "%s, %s and %s", parts[0], parts[1], parts[2]) < 0 ? NULL : s;
        return asprintf(&s, "%s, %s, %s and %s", parts[0], parts[1], parts[2], parts[3]) < 0 ? NULL : s;
}

/* The drop-in that makes systemd-firstboot.service ask: --force, because an image brings its own
 * defaults (Debian's /etc/hostname from the build), which would otherwise count as chosen;
 * without a --prompt-* for what the line set, --force leaves that alone. */
static int firstboot_dropin(const PlanOem *o, char **ret) {
        return asprintf(ret,
                        "# Written by imprint (imprint(1), \"OEM hand-off\"): at the customer's first boot,\n"
                        "# systemd-firstboot asks for what the factory's line left unset.\n"
                        "[Service]\n"
                        "ExecStart=\n"
                        "ExecStart=systemd-firstboot --force%s%s%s%s%s\n",
                        o->ask_locale ? " --prompt-locale" : "", o->ask_keymap ? " --prompt-keymap" : "",
                        o->ask_timezone ? " --prompt-timezone" : "", o->ask_hostname ? " --prompt-hostname" : "",
                        o->account == HANDOFF_ACCOUNT_ROOT_PASSWORD ? " --prompt-root-password" : "") < 0 ? -ENOMEM : 0;
}

int handoff_write_root(const Plan *p, const char *root) {
        static const char *const dirs[] = {
                "/etc", "/etc/imprint", "/etc/systemd", "/etc/systemd/system", "/etc/systemd/system/systemd-firstboot.service.d",
                "/etc/systemd/system/multi-user.target.wants", "/etc/systemd/system/systemd-homed.service.wants",
        };
        _cleanup_(freep) char *dropin = NULL;
        int r;

        if (!p || !p->oem || !root)
                return error_setf(-EINVAL, "handoff_write_root() needs an OEM plan and a root.");

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                r = root_mkdir(root, dirs[i]);
                if (r < 0)
                        return r;
        }
        r = firstboot_dropin(p->oem, &dropin);
        if (r < 0)
                return r;
        r = root_write_file(root, HANDOFF_FIRSTBOOT_DROPIN, dropin, 0644);
        if (r >= 0)
                r = root_write_file(root, HANDOFF_SCRIPT, handoff_script, 0755);
        if (r >= 0)
                r = root_write_file(root, "/etc/systemd/system/" HANDOFF_UNIT, handoff_unit, 0644);
        if (r >= 0)
                r = root_symlink(root, "/etc/systemd/system/multi-user.target.wants/" HANDOFF_UNIT, "../" HANDOFF_UNIT);
        /* Debian installs systemd-homed-firstboot.service disabled (no preset enables it); its
         * [Install] says WantedBy=systemd-homed.service. Enabled also where imprint could not tell
         * whether the image has it: a link to a missing unit does nothing. */
        if (r >= 0)
                r = root_symlink(root, "/etc/systemd/system/systemd-homed.service.wants/systemd-homed-firstboot.service",
                            "/usr/lib/systemd/system/systemd-homed-firstboot.service");
        if (r < 0)
                return error_prefixf(r, _("Cannot set up the customer's first boot"));

        log_info("the customer's first boot is set up: systemd-firstboot asks (%s), %s, %s, then %s",
                 HANDOFF_FIRSTBOOT_DROPIN,
                 p->oem->account == HANDOFF_ACCOUNT_HOMED ? "systemd-homed-firstboot makes the account" : "root's password is asked",
                 p->oem->new_recovery_key ? HANDOFF_UNIT " replaces the recovery key" : HANDOFF_UNIT " has no key to replace",
                 HANDOFF_MARKER);
        return 0;
}
