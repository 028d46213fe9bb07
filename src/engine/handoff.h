/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The OEM hand-off: the customer's first boot (config.h: "oem").
 *
 * The line installs and encrypts but makes no account and sets nothing the customer chooses. At
 * the customer's first boot only stock components of the installed OS ask; imprint configures
 * them in the installed /etc (handoff_write_root(), from the executor's configure step):
 *   - systemd-firstboot.service asks for the locale, keymap, time zone and host name the line
 *     left unset (a drop-in with --force: an image's own defaults, e.g. Debian's /etc/hostname,
 *     are asked again; what the configuration set is kept);
 *   - systemd-homed-firstboot.service ("homectl firstboot --prompt-new-user") makes the account;
 *     where the image has no such unit (systemd < 256), systemd-firstboot asks for root's
 *     password instead (the classic fallback, said in the plan's note);
 *   - imprint-handoff.service runs HANDOFF_SCRIPT on the console: stock systemd-cryptenroll,
 *     unlocking with the TPM, replaces the line's recovery key of every open LUKS2 volume by a
 *     new one, shows it and has part of it typed back; the TPM2 keyslot stays;
 *   - HANDOFF_MARKER is written only at the very end. Until then every boot runs the hand-off
 *     again (each of its steps may be repeated), and first-boot-complete.target (which commits
 *     /etc/machine-id, ending ConditionFirstBoot=) waits for it. */

#include <stdbool.h>

#include "plan.h"

#define HANDOFF_MARKER "/var/lib/imprint/handoff-done"
#define HANDOFF_SCRIPT "/etc/imprint/handoff.sh"
#define HANDOFF_UNIT "imprint-handoff.service"
#define HANDOFF_FIRSTBOOT_DROPIN "/etc/systemd/system/systemd-firstboot.service.d/imprint-handoff.conf"

/* What the customer's first boot will do, for the plan: source is the image (its root or usr
 * filesystem is read for systemd-homed-firstboot.service), settings what the line set. Refuses
 * (one sentence) a plan without an image. */
int handoff_plan(const PlanSource *source, const PlanEncryption *encryption, const PlanSettings *settings, PlanOem **ret);

/* Writes the hand-off into the mounted installed root (a directory). */
int handoff_write_root(const Plan *p, const char *root);

/* "locale, keymap, time zone and host name": what systemd-firstboot will ask, newly allocated;
 * NULL when it asks nothing. */
char *handoff_asks_text(const PlanOem *o);
