#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The OEM hand-off ("oem": true, imprint(1)): an unattended install to an image file (no
# dm-crypt on this host: not encrypted) writes the customer's first boot into the installed /etc,
# and stock systemd tools read it there: systemctl --root says imprint-handoff.service and
# systemd-homed-firstboot.service are enabled, systemd-analyze cat-config / the drop-in makes
# systemd-firstboot ask (--force, --prompt-*), the hand-off script passes sh -n. The recorded
# plan (/imprint/install.json on the ESP) says what the first boot does. "oem" with "user", and
# "oem" without an image, are each refused with one sentence, before anything is written.
. "$(dirname "$0")/lib.sh"
need_root "mounting the installed root"
need_tool jq
need_tool mcopy
need_tool systemctl

src=$WORK/fakeos.img
bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 200
tgt=$WORK/oem.img
truncate -s 4G "$tgt"

jq -n --arg s "$src" --arg t "$tgt" '{source: $s, target: $t, oem: true, timezone: "Europe/Berlin", seed: "oem-handoff", afterInstall: "none"}' \
        >"$WORK/config.json"
"$IMPRINT" unattended --config "$WORK/config.json" >"$WORK/events.json" 2>"$WORK/log" || { cat "$WORK/log" >&2; fail "the OEM install failed"; }
jq -e -s '.[-1] == {"event":"result","success":true,"exitCode":0}' "$WORK/events.json" >/dev/null || fail "no success result"
# The progress says what the first boot will do.
jq -e -s '[.[] | select(.event == "end" and .id == "configure")] | length == 1 and (.[0].description
        | test("customer.s first boot: systemd-firstboot asks for locale, keymap and host name"))' "$WORK/events.json" >/dev/null \
        || fail "the configure step does not say what the customer's first boot does: $(jq -c 'select(.id == "configure")' "$WORK/events.json" | head -n 1)"
pass "unattended OEM install; its progress says what the first boot asks"

# The plan as recorded on the ESP (stock mtools).
mcopy -n -i "$tgt@@1M" ::/imprint/install.json "$WORK/install.json" || fail "no /imprint/install.json on the ESP"
jq -e '.plan.oem.firstbootAsks == ["locale", "keymap", "hostname"] and .plan.oem.newRecoveryKey == false
        and .plan.oem.unit == "imprint-handoff.service" and .plan.oem.marker == "/var/lib/imprint/handoff-done"
        and (.plan.oem.account == "systemd-homed-firstboot" or (.plan.oem.account == "root-password" and (.plan.oem.note | length) > 0))
        and .plan.account == null and .plan.settings.timezone == "Europe/Berlin"' "$WORK/install.json" >/dev/null \
        || fail "the recorded plan does not describe the hand-off: $(jq -c '.plan | {oem, account, settings}' "$WORK/install.json")"
account=$(jq -r .plan.oem.account "$WORK/install.json")
pass "the recorded plan: firstboot asks locale, keymap, host name (the time zone was set); account by $account"

# The installed root, with stock systemctl --root.
attach "$tgt"
root_part=${ATTACHED}p2
[ -b "$root_part" ] || fail "no partition 2 on $ATTACHED"
mkdir "$WORK/root"
mount -o ro "$root_part" "$WORK/root"
MOUNTS+=("$WORK/root")
r=$WORK/root
[ "$(systemctl --root="$r" is-enabled imprint-handoff.service)" = enabled ] || fail "imprint-handoff.service is not enabled in the installed root"
[ -L "$r/etc/systemd/system/systemd-homed.service.wants/systemd-homed-firstboot.service" ] \
        || fail "systemd-homed-firstboot.service is not enabled for systemd-homed.service"
unit=$r/etc/systemd/system/imprint-handoff.service
grep -qx 'ConditionPathExists=!/var/lib/imprint/handoff-done' "$unit" || fail "the hand-off unit does not stop once the marker exists"
grep -qx 'StandardOutput=tty' "$unit" && grep -qx 'TTYPath=/dev/console' "$unit" || fail "the hand-off unit does not talk to the console"
grep -q '^Before=.*systemd-user-sessions.service' "$unit" && grep -q '^Before=.*first-boot-complete.target' "$unit" \
        || fail "the hand-off unit does not come before logins and before the machine-id commit"
grep -q '^After=systemd-firstboot.service systemd-homed-firstboot.service' "$unit" || fail "the hand-off unit runs before the customer's answers"
! grep -q 'StandardOutput=journal' "$unit" || fail "the hand-off unit's output (the key) goes to the journal"
dropin=$r/etc/systemd/system/systemd-firstboot.service.d/imprint-handoff.conf
want="ExecStart=systemd-firstboot --force --prompt-locale --prompt-keymap --prompt-hostname"
[ "$account" = root-password ] && want+=" --prompt-root-password"
grep -qx -- "$want" "$dropin" || fail "the systemd-firstboot drop-in does not ask what the line left unset: $(cat "$dropin")"
grep -qx 'ExecStart=' "$dropin" || fail "the drop-in does not reset the stock ExecStart"
sh -n "$r/etc/imprint/handoff.sh" || fail "the hand-off script is not valid sh"
[ "$(stat -c %a "$r/etc/imprint/handoff.sh")" = 755 ] || fail "the hand-off script is not executable"
grep -q 'systemd-cryptenroll --unlock-tpm2-device=auto --recovery-key --wipe-slot=recovery,password' "$r/etc/imprint/handoff.sh" \
        || fail "the hand-off script does not replace the recovery key with stock systemd-cryptenroll"
# The line set nothing the customer chooses, but the time zone it was told to.
for f in hostname locale.conf vconsole.conf; do
        [ ! -e "$r/etc/$f" ] || fail "the line wrote /etc/$f, which the customer chooses"
done
[ "$(readlink "$r/etc/localtime")" = ../usr/share/zoneinfo/Europe/Berlin ] || fail "the configured time zone is not kept: $(readlink "$r/etc/localtime")"
[ ! -e "$r/var/lib/imprint/handoff-done" ] || fail "the hand-off marker exists before the first boot"
umount "$WORK/root"
pass "the installed /etc: hand-off unit enabled (systemctl --root), firstboot drop-in, homed-firstboot enabled, nothing chosen for the customer"

# Refusals: one sentence each, nothing written.
bad() {
        local json=$1
        truncate -s 4G "$WORK/bad.img"
        echo "$json" >"$WORK/bad.json"
        expect_exit 2 "$IMPRINT" unattended --config "$WORK/bad.json"
        [ "$(du -k "$WORK/bad.img" | cut -f1)" = 0 ] || fail "a refused configuration wrote to the target: $json"
        jq -e -s '.[-1].event == "result" and .[-1].success == false' "$WORK/stdout" >/dev/null || fail "no failed result event for: $json"
}
bad '{ "source": "'"$src"'", "target": "'"$WORK/bad.img"'", "oem": true, "user": {"name": "alice"} }'
expect_stderr '"oem": true leaves the account to the customer'"'"'s first boot, so the configuration cannot also name a "user"'
[ "$(grep -c . "$WORK/stderr")" = 1 ] || { cat "$WORK/stderr" >&2; fail "the refusal of oem + user is not one sentence"; }
pass "\"oem\" with \"user\" is refused in one sentence, nothing written"
