#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The Varlink client of tests/e2e/test-live-install.sh --varlink. The rig passes this file to the
# live medium as the system credential imprint-rig.client and a unit (also a credential) runs it
# with bash once the system is up. It plays a graphical installer, with stock varlinkctl as its
# Varlink library: it introspects io.imprint.Installer on /run/imprint/io.imprint.Installer, lists
# the disks, asks for the TPM's status, plans, tries bad input, and installs with --more, typing the
# recovery key's groups back from a second connection. It prints what it sees as lines
# "IMPRINT-VARLINK …" on the serial console only (never into the journal, which it searches for
# the secrets at the end), "IMPRINT-VARLINK ok: …" for each check that passed, and ends with
# "IMPRINT-VARLINK PASS" or "IMPRINT-VARLINK FAIL: why", then powers the machine off.
#
# Credentials (from $CREDENTIALS_DIRECTORY): imprint-rig.passphrase and imprint-rig.password, the
# secrets of the request (read from files and given to varlinkctl on stdin, never in argv);
# imprint-rig.request, the rest of the request as JSON members ("userName":"…",…) without the
# node and the secrets. RIG_TARGET overrides the target (/dev/disk/by-id/virtio-target).
set -u
export SYSTEMD_LOG_TARGET=console   # varlinkctl's messages to stderr (this console), not the journal
export SYSTEMD_PAGER=cat SYSTEMD_COLORS=0 LC_ALL=C.UTF-8
A=/run/imprint/io.imprint.Installer
I=io.imprint.Installer
T=${RIG_TARGET:-/dev/disk/by-id/virtio-target}
C=${CREDENTIALS_DIRECTORY:?no credentials}
W=/run/imprint-rig
umask 077
mkdir -p "$W"

say() { printf 'IMPRINT-VARLINK %s\n' "$*"; }
ok() { say "ok: $*"; }
fail() {
        say "FAIL: $*"
        [ -n "${RIG_TARGET:-}" ] || systemctl poweroff
        exit 1
}
# jstr NAME JSON: the string member NAME of a one-line JSON object (varlinkctl --json=short).
jstr() { printf '%s' "$2" | grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d'"' -f4; }
# jesc: a JSON string's contents from stdin (backslash and quote escaped; no control characters).
jesc() { sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr -d '\n'; }
# call METHOD [varlinkctl options] <PARAMS: one call, parameters from stdin (not a pipe: call sets
# variables). Sets OUT (the reply, one line: on an error its parameters), ERR (the Varlink error's
# name, as varlinkctl reports it: "Method call …() failed: NAME"; empty on success), MSG (that
# line) and RC.
call() {
        local m=$1
        shift
        varlinkctl call --json=short "$@" "$A" "$m" - >"$W/out" 2>"$W/err"
        RC=$?
        OUT=$(tr -d '\036' <"$W/out" | head -n 1)
        MSG=$(grep -a 'failed' "$W/err" | tail -n 1)
        ERR=$(printf '%s' "$MSG" | grep -o 'failed: [a-zA-Z0-9_.]*$' | cut -d' ' -f2)
        if [ "$RC" = 0 ]; then ERR=; fi
        rm -f "$W/err" "$W/params"
}
# expect_error NAME WHAT: the last call() failed with the Varlink error NAME.
expect_error() {
        [ "$RC" != 0 ] || fail "$2: the call succeeded ($OUT), expected $1"
        [ "$ERR" = "$1" ] || fail "$2: expected the error $1, got ${ERR:-none} (varlinkctl: $MSG)"
        say "$2: $ERR $OUT"
}
# blank: nothing on the target: no partition table, no signature, the first and last MiB zero.
blank() {
        local size
        ! sfdisk -d "$T" >/dev/null 2>&1 || return 1
        blkid -p "$T" >/dev/null 2>&1; [ $? = 2 ] || return 1
        cmp -s -n 1048576 "$T" /dev/zero || return 1
        size=$(blockdev --getsize64 "$T" 2>/dev/null || stat -L -c %s "$T")
        dd if="$T" bs=1M skip=$((size / 1048576 - 1)) count=1 status=none | cmp -s -n 1048576 - /dev/zero
}

say "client started: $(varlinkctl --version | head -n 1)"
if [ -z "${RIG_TARGET:-}" ]; then
        udevadm wait --timeout=300 "$T" || fail "no $T"
fi
T=$(readlink -f "$T")
blank || fail "the target $T is not blank at the start"

# --- the socket: root only ----------------------------------------------------------------------
say "socket: $(stat -c '%A %U:%G %n' "${A%/*}" "$A" | tr '\n' ' ')"
[ "$(stat -c '%a %U %G' "$A")" = "600 root root" ] || fail "$A is not 0600 root:root"
[ "$(stat -c '%a %U' "${A%/*}")" = "700 root" ] || fail "${A%/*} is not 0700 root"
if setpriv --reuid=65534 --regid=65534 --clear-groups varlinkctl info "$A" >/dev/null 2>"$W/nobody.err"; then
        fail "an unprivileged user could talk to $A"
fi
say "as nobody: $(tail -n 1 "$W/nobody.err")"
ok "the socket is root's only"

# --- a. the interface: stock varlinkctl parses it -----------------------------------------------
varlinkctl info "$A" >"$W/info" 2>&1 || { cat "$W/info"; fail "varlinkctl info $A"; }
sed 's/^/IMPRINT-VARLINK info: /' "$W/info"
varlinkctl introspect "$A" "$I" >"$W/served.varlink" 2>"$W/introspect.err" \
        || fail "varlinkctl introspect $A $I: $(tail -n 1 "$W/introspect.err")"
say "introspect: $(grep -c '^method ' "$W/served.varlink") methods, $(grep -c '^error ' "$W/served.varlink") errors, $(grep -c '^type ' "$W/served.varlink") types"
varlinkctl validate-idl "$W/served.varlink" >"$W/served.idl" 2>"$W/validate.err" \
        || fail "varlinkctl validate-idl on the served interface: $(tail -n 1 "$W/validate.err")"
ok "varlinkctl introspect parses io.imprint.Installer and validate-idl accepts it"
published=/usr/share/imprint/io.imprint.Installer.varlink
if [ -f "$published" ]; then
        varlinkctl validate-idl "$published" >"$W/published.idl" 2>"$W/validate.err" \
                || fail "varlinkctl validate-idl $published: $(tail -n 1 "$W/validate.err")"
        cmp -s "$W/published.idl" "$W/served.idl" \
                || { diff "$W/published.idl" "$W/served.idl" | head -n 20 | sed 's/^/IMPRINT-VARLINK diff: /'; fail "the served interface differs from $published"; }
        ok "the served interface is the published $published"
fi
for m in ListCandidateDevices GetTPMStatus Plan Install ConfirmRecoveryKey; do
        grep -q "^method $m(" "$W/served.varlink" || fail "the interface has no method $m"
done

# --- f. bad input (before anything is written) ---------------------------------------------------
call "$I.NoSuchMethod" <<<'{}'
expect_error org.varlink.service.MethodNotFound "unknown method"
call "$I.GetTPMStatus" <<<'{"bogus":1}'
expect_error org.varlink.service.InvalidParameter "unknown parameter"
printf '%s' "$OUT" | grep -q '"parameter":"bogus"' || fail "InvalidParameter does not name the parameter: $OUT"
ok "an unknown method gets MethodNotFound, an unknown parameter InvalidParameter naming it"

# --- b. the disks ------------------------------------------------------------------------------
varlinkctl call --more --json=short "$A" "$I.ListCandidateDevices" '{}' >"$W/devices.raw" 2>"$W/devices.err" \
        || fail "ListCandidateDevices: $(tail -n 1 "$W/devices.err")"
tr -d '\036' <"$W/devices.raw" | grep -a . >"$W/devices"
sed 's/^/IMPRINT-VARLINK device: /' "$W/devices"
tline=$(grep -aF "\"node\":\"$T\"" "$W/devices" | head -n 1)
[ -n "$tline" ] || fail "ListCandidateDevices does not list the target $T"
[ "$(jstr fit "$tline")" = enough_free_space ] || fail "the target's fit is $(jstr fit "$tline"), not enough_free_space"
printf '%s' "$tline" | grep -qF '"/dev/disk/by-id/virtio-target"' || fail "the target's symlinks lack /dev/disk/by-id/virtio-target"
lline=$(grep -aF '"/dev/disk/by-id/virtio-live"' "$W/devices" | head -n 1)
if [ -z "${RIG_TARGET:-}" ]; then
        [ -n "$lline" ] || fail "ListCandidateDevices does not list the live medium"
        [ "$(jstr fit "$lline")" = refused ] || fail "the live medium's fit is $(jstr fit "$lline"), not refused"
        # Refused as the disk the system runs from: imprint's medium boots its root from the stick
        # (system_disk); a medium that loop-mounts an image from it is a live_medium.
        printf '%s' "$lline" | grep -Eq '"refusals":\[[^]]*"(system_disk|live_medium)"' || fail "the live medium's refusals name neither system_disk nor live_medium"
        [ -n "$(jstr reason "$lline")" ] || fail "the live medium is refused without a reason"
        ok "the target fits (enough_free_space); the live medium is refused: $(jstr reason "$lline")"
fi
varlinkctl call --more --json=short "$A" "$I.ListCandidateDevices" '{"candidatesOnly":true}' 2>/dev/null | tr -d '\036' | grep -a . >"$W/candidates"
! grep -aq '"fit":"refused"' "$W/candidates" || fail "candidatesOnly lists a refused disk"
grep -aqF "\"node\":\"$T\"" "$W/candidates" || fail "candidatesOnly does not list the target"
ok "candidatesOnly lists $(wc -l <"$W/candidates") disk(s), none refused"

# --- c. the TPM -----------------------------------------------------------------------------------
call "$I.GetTPMStatus" <<<'{}'
[ "$RC" = 0 ] || fail "GetTPMStatus: $ERR $MSG"
say "tpm: $OUT"
printf '%s' "$OUT" | grep -q '"usable":true' || fail "GetTPMStatus does not say usable"
ok "GetTPMStatus: usable"

# --- d. the plan ----------------------------------------------------------------------------------
# The request: the rig's members, the node, and the secrets from their credential files.
{
        printf '{"node":"%s",%s' "$T" "$(cat "$C/imprint-rig.request")"
        printf ',"passphrase":"%s"' "$(jesc <"$C/imprint-rig.passphrase")"
        printf ',"userPassword":"%s"}' "$(jesc <"$C/imprint-rig.password")"
} >"$W/request.json"
{ printf '{"request":'; cat "$W/request.json"; printf '}'; } >"$W/params"
call "$I.Plan" <"$W/params"
[ "$RC" = 0 ] || fail "Plan: $ERR $OUT $MSG"
say "plan: $OUT"
name=$(printf '%s' "$OUT" | grep -o '"target":{"[^{]*' | grep -o '"name":"[^"]*"' | head -n 1 | cut -d'"' -f4)
[ -n "$name" ] || fail "the plan names no target (plan.target.name)"
printf '%s' "$OUT" | grep -q '"encryption":{"enabled":true,"tpm2":true' || fail "the plan does not encrypt with the TPM2"
printf '%s' "$OUT" | grep -q '"passphrase":true' || fail "the plan has no passphrase keyslot"
printf '%s' "$OUT" | grep -q '"recoveryKey":true' || fail "the plan has no recovery key"
blank || fail "Plan wrote to the target"
ok "Plan: target $name, encrypted with TPM2, passphrase and recovery key; nothing written"

# --- f. Install with the wrong name: NotConfirmed, nothing written -------------------------------
{ printf '{"request":'; cat "$W/request.json"; printf ',"confirm":"not-%s"}' "$name"; } >"$W/params"
call "$I.Install" --more --timeout=600 <"$W/params"
expect_error io.imprint.Installer.NotConfirmed "Install confirmed with the wrong name"
[ "$(jstr expected "$OUT")" = "$name" ] || fail "NotConfirmed does not expect \"$name\": $OUT"
blank || fail "the target was written after NotConfirmed"
ok "Install with the wrong name: NotConfirmed, the target untouched (sfdisk, blkid, first and last MiB zero)"

# --- e. the install ---------------------------------------------------------------------------------
# confirm TOKEN TYPED: ConfirmRecoveryKey on a connection of its own, parameters on stdin.
confirm() { printf '{"token":"%s","typed":"%s"}' "$1" "$2" >"$W/params"; call "$I.ConfirmRecoveryKey" <"$W/params"; }
{ printf '{"request":'; cat "$W/request.json"; printf ',"confirm":"%s"}' "$name"; } >"$W/install.json"
rm -f "$W/request.json"
key='' last='' n_update=0 n_fields=0 seen_key=0 prev=''
t0=$(date +%s)
while IFS= read -r line; do
        line=${line#$'\036'}
        [ -n "$line" ] || continue
        ev=$(jstr event "$line")
        last=$ev
        case $ev in
        update)
                n_update=$((n_update + 1))
                printf '%s' "$line" | grep -q '"phase":"[^"]*".*"progress":[0-9]' && n_fields=$((n_fields + 1))
                # One line per step and ten per cent: enough to follow, not a flood.
                cur="$(jstr phase "$line") $(($(printf '%s' "$line" | grep -o '"progress":[0-9]*' | cut -d: -f2 | head -n 1) / 10))"
                [ "$cur" = "$prev" ] || say "install: $line"
                prev=$cur
                ;;
        recoveryKey)
                # The hand-over: shown on this console (the serial log is the screen the person
                # reads it from), typed back below.
                say "install: $line"
                seen_key=1
                key=$(jstr recoveryKey "$line")
                token=$(jstr recoveryKeyToken "$line")
                groups=$(printf '%s' "$line" | grep -o '"recoveryKeyGroups":\[[0-9,]*\]' | grep -o '\[.*\]' | tr -d '[]' | tr ',' ' ')
                say "recovery-key: $key"
                printf '%s' "$key" >"$W/key"
                printf '%s' "$key" | grep -Eq '^([cbdefghijklnrtuv]{8}-){7}[cbdefghijklnrtuv]{8}$' || fail "the recovery key has not the form of systemd's"
                { [ -n "$token" ] && [ -n "$groups" ]; } || fail "the recoveryKey reply lacks the token or the groups"
                blank || fail "the target was written before the recovery key was confirmed"
                ok "recovery key handed over (groups $groups to type); the target is still blank"
                typed='' wrong=''
                for g in $groups; do
                        typed="$typed $(printf '%s' "$key" | cut -d- -f"$g")"
                        wrong="$wrong bbbbbbbb"
                done
                typed=${typed# } wrong=${wrong# }
                confirm "not-the-token" "$typed"
                expect_error io.imprint.Installer.NoSuchRecoveryKey "ConfirmRecoveryKey with a wrong token"
                confirm "$token" "$wrong"
                expect_error io.imprint.Installer.RecoveryKeyMismatch "ConfirmRecoveryKey with wrong groups"
                confirm "$token" "$typed"
                [ "$RC" = 0 ] || fail "ConfirmRecoveryKey with the right groups: $ERR $OUT $MSG"
                say "ConfirmRecoveryKey: confirmed"
                ok "a wrong token gets NoSuchRecoveryKey, wrong groups RecoveryKeyMismatch, the right ones are accepted"
                ;;
        *)
                say "install: $line"
                ;;
        esac
done < <(stdbuf -oL varlinkctl call --more --timeout=infinity --json=short "$A" "$I.Install" - \
                <"$W/install.json" 2>"$W/install.err"
         echo $? >"$W/install.rc")
rm -f "$W/install.json"
rc=$(cat "$W/install.rc")
sed 's/^/IMPRINT-VARLINK install stderr: /' "$W/install.err"
say "install: varlinkctl exited $rc after $(($(date +%s) - t0)) s; $n_update update replies, $n_fields with phase and progress"
[ "$rc" = 0 ] || fail "Install failed (varlinkctl exit status $rc)"
[ "$seen_key" = 1 ] || fail "Install handed over no recovery key"
[ "$last" = finished ] || fail "the Install stream ended with \"$last\", not \"finished\""
[ "$n_fields" -ge 1 ] || fail "no update reply carries SysInstall's phase and progress"
ok "Install streamed to \"finished\" with SysInstall's phase, object and progress fields"
sfdisk -d "$T" >/dev/null 2>&1 || fail "no partition table on the target after the install"
say "target: $(sfdisk -d "$T" 2>/dev/null | grep -c '^/') partitions; $(blkid -o export -s TYPE "$T"* 2>/dev/null | grep -c '^TYPE=crypto_LUKS') LUKS"

# --- no secret in the live system's journal -----------------------------------------------------
if [ -z "${RIG_TARGET:-}" ]; then
        journalctl --sync 2>/dev/null
        journalctl -b -o export --no-pager >"$W/journal" 2>/dev/null
        [ -s "$W/journal" ] || fail "journalctl gives no journal of this boot"
        k=$(grep -acF -f "$W/key" "$W/journal")
        k2=$(tr -d '-' <"$W/key" >"$W/key2"; grep -acF -f "$W/key2" "$W/journal")
        p=$(grep -acF -f "$C/imprint-rig.passphrase" "$W/journal")
        u=$(grep -acF -f "$C/imprint-rig.password" "$W/journal")
        say "journal: $(grep -ac '^__CURSOR=' "$W/journal") entries; recovery-key=$k recovery-key-without-dashes=$k2 passphrase=$p password=$u"
        [ "$k$k2$p$u" = 0000 ] || fail "a secret is in the live system's journal"
        rm -f "$W/journal" "$W/key2"
        ok "neither the recovery key, the passphrase nor the password is in the journal"
        journalctl -b -u imprint-varlink.service -u imprint-varlink.socket -o short-monotonic --no-pager 2>/dev/null \
                | tail -n 40 | sed 's/^/IMPRINT-VARLINK service log: /'
fi
rm -f "$W/key"

# --- the service ends by itself once no client is connected ----------------------------------------
if [ -z "${RIG_TARGET:-}" ]; then
        t0=$(date +%s)
        while [ "$(systemctl is-active imprint-varlink.service)" = active ] && [ $(($(date +%s) - t0)) -lt 300 ]; do
                sleep 2
        done
        state=$(systemctl is-active imprint-varlink.service)
        say "service: $state $(($(date +%s) - t0)) s after the last call; $(systemctl show -P Result imprint-varlink.service) (exit status $(systemctl show -P ExecMainStatus imprint-varlink.service)); socket $(systemctl is-active imprint-varlink.socket)"
        [ "$state" = inactive ] || fail "imprint-varlink.service is $state, 300 s after the last client left"
        [ "$(systemctl is-active imprint-varlink.socket)" = active ] || fail "imprint-varlink.socket stopped listening"
        ok "the service exited by itself when idle; the socket listens on"
fi
say PASS
[ -n "${RIG_TARGET:-}" ] || systemctl poweroff
