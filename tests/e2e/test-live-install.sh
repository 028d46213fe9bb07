#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-live-install.sh [--interactive|--tui|--varlink] [--keep] — the live medium, booted under QEMU +
# OVMF + swtpm with a blank 8 GiB target disk (serial "target", /dev/disk/by-id/virtio-target).
#
# Default (unattended, encrypted, interrupted once): the install configuration reaches the medium as the system
# credential imprint.config, passed by QEMU as an SMBIOS type 11 string
#   -smbios type=11,value=io.systemd.credential.binary:imprint.config=BASE64(JSON)
# (base64 avoids QEMU's comma escaping), with the credentials imprint.passphrase and
# imprint.user-password beside it and fstab.extra mounting an "escrow" disk. imprint-unattended
# installs the image the medium carries with root and home encrypted (TPM2 + recovery key +
# passphrase), the recovery key delivered to the escrow disk, the account alice (systemd-homed)
# and hostname, time zone, locale and keymap. Throughout, a unit given as a credential
# (systemd.extra-unit.*) makes udev "change" events on the target in a loop, so udev keeps probing
# it under its shared BSD lock while imprint wants its exclusive one. The first boot is
# switched off (QEMU quits, the guest gets no shutdown) once the JSON progress on the serial console
# says that 100 MB of the root partition are copied; the medium then boots again with the same
# disks, TPM and firmware variables, and the same unattended install runs again and must end with
# {"event":"result","success":true}; the key file it names on the escrow disk is the one used below.
# Then the target boots alone with the same TPM state and firmware variables: no prompt, root and
# home are dm-crypt LUKS2 volumes opened as "root" and "home", alice exists as a homed user with a
# LUKS home and logs in through PAM with her password (and not with a wrong one), and the settings
# are as chosen. Then with a dbx entry added to the variables (PCR 7 changes) it must ask, take the
# recovery key typed on the serial console, and boot. Finally neither the recovery key, the
# passphrase nor the password may be found on the installed disk, the live overlay or any log.
#
# Secure Boot (issue 17), in the same run: every boot of the default mode runs the Secure Boot
# build of OVMF (boot-image.sh --secure-boot) on a variable store that starts without a PK (setup
# mode), and what gets installed is not the medium's image but the signed one of
# tests/image/build-signed-ddi.sh (its own PK/KEK/db in loader/keys/auto, sd-boot and UKI signed
# by its db key, a signed PCR 11 policy in the UKI), given to the live system as one more disk
# (serial "sbimg", through a qcow2 overlay; "source" is /dev/disk/by-id/virtio-sbimg). A unit
# given as a credential prints `imprint firmware --json` on the console before the install: mode
# "setup". The report (on the console) says the plan enrolls the keys at first boot; the installed
# ESP has the image's .auth files byte for byte and "secure-boot-enroll force" (mtools on the host).
# Target boot 1 (resets allowed): systemd-boot enrolls the keys and resets the machine, which then
# boots with Secure Boot on (bootctl: "enabled (user)"; SecureBoot 1, the image's PK/KEK/db), the
# TPM unlocks root and home with no prompt (the key was sealed to the signed PCR 11 policy only)
# and imprint's unit binds the TPM2 tokens to PCR 7 + the signed PCR 11 policy (luksDump in the
# guest, check.d/40-secureboot of the signed image). Target boot 2: no prompt again, Secure Boot
# on, the same PCR 7, the tokens still PCR 7 + 11. The dbx boot above is boot 3 (the entry is
# written into the enrolled store offline; the firmware accepts it and Secure Boot stays on).
#
# --interactive: no credential; imprint@ttyS0.service runs the line-by-line dialogue on the serial
# console, and the rig types a whole install into it (disk, layout, no encryption, the account bob
# with his password, hostname, time zone, locale, keymap, the disk's name, power off). The target
# then boots with the account created by systemd-homed, a PAM login for bob, and the settings.
#
# --tui: no credential either; the kernel command line (SMBIOS io.systemd.stub.kernel-cmdline-extra,
# which systemd-stub appends without Secure Boot) says imprint.frontend.ttyS0=tui, so the serial
# console shows the full-screen installer (TERM tmux-256color). The rig makes tmux the terminal at
# the other end of the serial line: a pane of 80x24 shows the serial output and sends its keys to
# the guest, and the test reads the screens with capture-pane and types as a person would: language
# and keyboard, the disk, the layout with a 1 GiB home, encryption with the TPM, a TPM PIN and a
# passphrase, the account carol with her password, computer name and time zone, the disk's name,
# then the recovery key — read off the screen, two groups typed back — the progress (every step listed, the live log), and "Exit to
# a shell", from which the Linux console's screen (tty1, /dev/vcsu1) is read and the machine
# switched off. The key read off the screen and the passphrase must open root and home with
# stock cryptsetup on the host, a wrong passphrase must not; the target then boots
# with the PIN typed at systemd's prompt: root and home dm-crypt LUKS2, carol a homed user who
# logs in. Neither the key nor the password, PIN or passphrase may be on the installed disk or in the live
# medium's overlay (the key is in the serial log: that is the screen it was shown on).
#
# --varlink: no imprint.config either; a program drives imprint through its Varlink API
# (io.imprint.Installer, imprint-varlink(7)), with stock varlinkctl as its Varlink client. The
# client, tests/e2e/varlink-client.sh, reaches the medium as the credential imprint-rig.client and
# a unit given as a credential (systemd.extra-unit.*) runs it once the system is up; the serial
# dialogue is masked (systemd.mask= on the kernel command line), so the serial console shows only
# what the client sees, as "IMPRINT-VARLINK …" lines. On /run/imprint/io.imprint.Installer,
# activated by imprint-varlink.socket: the socket is root's only (nobody is refused); varlinkctl
# introspect parses the interface and validate-idl accepts it, the same as the published file; an
# unknown method gets MethodNotFound, an unknown parameter InvalidParameter; ListCandidateDevices
# gives the target enough_free_space and refuses the live medium (the system disk: the live system's
# root is on it) with a reason; GetTPMStatus says
# usable (swtpm); Plan plans the request (encrypted, TPM2 auto, a passphrase, the account dave with
# his password, 1 GiB home, settings); Install with the wrong name gets NotConfirmed and the target
# stays blank (sfdisk, blkid, first and last MiB); then `varlinkctl call --more … Install`: when the
# reply with the recovery key arrives the target is still blank, ConfirmRecoveryKey from a second
# connection gets NoSuchRecoveryKey for a wrong token and RecoveryKeyMismatch for wrong groups,
# then takes the right ones, and the stream ends with "finished". The client then searches the live
# system's journal (journalctl -o export) for the key, the passphrase and the password: none. The
# host keeps the key from the serial log (the API's hand-over), and stock cryptsetup on the host
# opens root and home with it and with the passphrase, not with a wrong one; the target then boots
# alone with the same TPM: no prompt, root and home dm-crypt LUKS2, dave logs in, the settings as
# requested. Neither the key nor the passphrase nor the password is on either disk, and only the key
# is in the serial log.
#
# --keep keeps the disks, the TPM state and the firmware variables; the serial logs are always
# kept (their paths are printed). Phase durations are printed at the end.
#
# Needs root (building the medium; cached in /var/cache/imprint-test, see iso/build-live.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
MODE=unattended
KEEP=0
while [ $# -gt 0 ]; do
        case $1 in
        --interactive) MODE=interactive ;;
        --tui) MODE=tui ;;
        --varlink) MODE=varlink ;;
        --keep) KEEP=1 ;;
        -h | --help) sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
        esac
        shift
done

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (the live medium is built in a chroot)"; exit 77; }
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
need_pkgs=()
command -v qemu-img >/dev/null || need_pkgs+=(qemu-utils)
if [ "$MODE" = tui ]; then
        command -v tmux >/dev/null || need_pkgs+=(tmux)
        command -v cryptsetup >/dev/null || need_pkgs+=(cryptsetup-bin)
        command -v sfdisk >/dev/null || need_pkgs+=(fdisk)
fi
if [ "$MODE" = varlink ]; then
        command -v cryptsetup >/dev/null || need_pkgs+=(cryptsetup-bin)
        command -v sfdisk >/dev/null || need_pkgs+=(fdisk)
        command -v jq >/dev/null || need_pkgs+=(jq)
fi
if [ "$MODE" = unattended ]; then      # Secure Boot: the installed ESP read on the host
        command -v jq >/dev/null || need_pkgs+=(jq)
        command -v sfdisk >/dev/null || need_pkgs+=(fdisk)
        command -v mtype >/dev/null || need_pkgs+=(mtools)
        command -v sbverify >/dev/null || need_pkgs+=(sbsigntool)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

WORK=$(mktemp -d /var/tmp/imprint-live-e2e.XXXXXX)
cleanup() {
        local rc=$?
        if [ "$KEEP" = 0 ]; then
                rm -rf "$WORK/tpm"
                rm -f "$WORK/target.img" "$WORK/live.qcow2" "$WORK/sbimg.qcow2" "$WORK/OVMF_VARS.fd" "$WORK/OVMF_VARS-pcr7.fd" "$WORK/escrow.img" "$WORK/recovery.key" \
                        "$WORK/password" "$WORK/pin" "$WORK/pin.answer" "$WORK/groups" "$WORK/passphrase"
        fi
        echo "work directory: $WORK ($([ "$KEEP" = 1 ] && echo "disks kept" || echo "logs only"))"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

T_ALL=$EPOCHREALTIME
TIMES=()
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
phase_done() { TIMES+=("$1 $(since "$2")s"); }
report_times() { printf 'time: %s\n' "${TIMES[@]}" "total $(since "$T_ALL")s"; }
failed() {
        echo "FAIL: $*"
        report_times
        exit 1
}

# --- build (or reuse) the medium ----------------------------------------------------------------
echo "== live medium"
t=$EPOCHREALTIME
live=$(bash "$top/iso/build-live.sh") || failed "building the live medium"
phase_done build "$t"
source_image=$(awk '$1 == "carried-image" { print $2 }' "${live%/*}/build-info.txt")
[ -n "$source_image" ] || failed "no carried-image in ${live%/*}/build-info.txt"
echo "medium: $live (carries $source_image)"

# The cached medium stays untouched: the VM writes to a qcow2 overlay.
qemu-img create -q -f qcow2 -F raw -b "$live" "$WORK/live.qcow2"
truncate -s 8G "$WORK/target.img"
BOOT=(bash "$here/boot-image.sh" "$WORK/target.img" --disk "$WORK/live.qcow2:live" --boot-first live
        --tpm-state "$WORK/tpm" --vars "$WORK/OVMF_VARS.fd" --no-check)

# An SMBIOS type 11 string carrying the system credential NAME with VALUE (base64: no QEMU comma
# escaping).
cred() { printf 'type=11,value=io.systemd.credential.binary:%s=%s' "$1" "$(printf '%s' "$2" | base64 -w0)"; }

# boot_target USER PASSWORD [boot-image.sh options…]: the installed disk alone, with the TPM state
# and firmware variables of the install; the test image's check unit learns the account to try and
# its password from test-only credentials (check.d/60-account).
boot_target() {
        local user=$1 password=$2
        shift 2
        bash "$here/boot-image.sh" "$WORK/target.img" --tpm-state "$WORK/tpm" --vars "$WORK/OVMF_VARS.fd" \
                --log "$WORK/target-serial.log" --timeout 700 \
                --qemu-arg -smbios --qemu-arg "$(cred imprint-test.user "$user")" \
                --qemu-arg -smbios --qemu-arg "$(cred imprint-test.password "$password")" "$@"
}

# The serial log without ANSI escape sequences (CSI, OSC, charset), CRs and NULs, as boot-image.sh
# matches it.
plain_log() {
        sed -E "s#\x1b\][^\x07\x1b]*(\x07|\x1b\\\\)?##g; s#\x1b\[[0-?]*[ -/]*[@-~]##g; s#\x1b[()][A-Za-z0-9]##g; s#\x1b[DEHMc78>=]##g" "$1" \
                | tr -d '\r\000'
}

# luks_keys_open KEYFILE PASSFILE: the encrypted partitions of the target (root and home by their
# DPS types) are LUKS2, and KEYFILE and PASSFILE each open both, a wrong passphrase neither: stock
# cryptsetup on this host, on a read-only loop device over each partition (--test-passphrase needs
# no device-mapper).
luks_keys_open() {
        local start size type loop rc n=0
        while read -r start size type; do
                case ${type^^} in
                4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 | 933AC7E1-2EB4-4F13-B844-0E14E2AEF915) ;;
                *) continue ;;
                esac
                loop=$(losetup --find --show --read-only --offset $((start * 512)) --sizelimit $((size * 512)) "$WORK/target.img")
                rc=0
                cryptsetup isLuks --type luks2 "$loop" || rc=1
                [ "$rc" = 1 ] || cryptsetup open --test-passphrase --key-file="$1" "$loop" || rc=2
                [ "$rc" != 0 ] || cryptsetup open --test-passphrase --key-file="$2" "$loop" || rc=3
                [ "$rc" != 0 ] || ! printf 'not-the-passphrase' | cryptsetup open --test-passphrase --key-file=- "$loop" 2>/dev/null || rc=4
                losetup -d "$loop"
                case $rc in
                0) ;;
                1) failed "partition type $type at sector $start is not LUKS2" ;;
                2) failed "the recovery key does not open the partition at sector $start" ;;
                3) failed "the passphrase does not open the partition at sector $start" ;;
                *) failed "a wrong passphrase opens the partition at sector $start" ;;
                esac
                n=$((n + 1))
        done < <(sfdisk --json "$WORK/target.img" | jq -r '.partitiontable.partitions[] | "\(.start) \(.size) \(.type)"')
        [ "$n" = 2 ] || failed "$n encrypted partitions on the installed disk, not root and home"
}

# imprint --plain's first line. Not systemd's "Welcome to <PRETTY_NAME>!" line.
WELCOME='Welcome to imprint([.!,:]|$)'

if [ "$MODE" = interactive ]; then
        # A person at the serial console: imprint --plain (imprint@ttyS0.service) asks, the rig
        # types (boot-image.sh --answer; every answer from a file, the password never in argv).
        # Unencrypted here: the recovery key hand-over is covered by the unattended run and by
        # tests/unit/test-dialogue.c.
        echo "== live boot, interactive: a whole install typed on the serial console"
        user_password="Serial-lantern $(basename "$WORK") 7"
        A=()
        answer() { local f; f=$WORK/answer.$(( ${#A[@]} / 2 )); printf '%s\n' "$2" >"$f"; A+=(--answer "$1" "$f"); }
        answer 'Which language\? \[[^]]*\]: ' 1
        answer 'Which\? \[1, 2; Enter for 1\]: ' 1
        answer 'Install to which disk\? \[1, q to quit\]: ' 1
        answer 'or press Enter for none: ' ''
        answer 'Encrypt root and home \(recommended\)\? \[Y/n\]: ' n
        answer 'User name \(lower case; Enter for none\): ' bob
        answer 'Your full name: ' 'Bob Example'
        answer 'administer the system \(sudo\)\? y/n \[y\]: ' y
        answer 'Computer name \[[^]]*\]: ' imprint-serial
        answer 'Time zone \[[^]]*\]: ' Europe/Paris
        answer 'Language \(locale\) \[[^]]*\]: ' fr_FR.UTF-8
        answer 'Keyboard layout \(keymap\) \[[^]]*\]: ' fr
        answer 'Password for bob: ' "$user_password"
        answer 'Type it again: ' "$user_password"
        # The target is the only usable disk; its kernel name depends on the order QEMU adds them.
        for n in vda vdb vdc; do answer "Type \"$n\" to install" "$n"; done
        answer 'or \[s\]hell\? ' p
        t=$EPOCHREALTIME
        "${BOOT[@]}" --log "$WORK/live-serial.log" --timeout 900 "${A[@]}" \
                --expect "$WELCOME" \
                --expect 'is installed on /dev/vd[a-z]\. Remove the installation medium' \
                || failed "the interactive install on the serial console (serial log $WORK/live-serial.log)"
        phase_done "live boot + typed install" "$t"

        # What the dialogue wrote into the installed root, read on the host (unencrypted here):
        # the account as the credentials systemd-homed-firstboot creates it from, and the
        # settings as systemd-firstboot wrote them. That the installed system then boots, creates
        # the homed user from such credentials and logs it in is the unattended run's target boot
        # (same engine, same files); a second boot here cost CI two minutes of its ninety.
        echo "== the installed root: bob's account credentials and the settings as typed"
        t=$EPOCHREALTIME
        read -r rstart _ <<<"$(sfdisk --json "$WORK/target.img" | jq -r '.partitiontable.partitions[]
                | select(.type == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709") | "\(.start) \(.size)"')"
        [ -n "$rstart" ] || failed "no root partition on the target"
        rootfs="$WORK/target.img?offset=$((rstart * 512))"
        rcat() { debugfs -R "cat $1" "$rootfs" 2>/dev/null; }
        rcat /etc/credstore/home.create.bob >"$WORK/bob.json"
        jq -e '.userName == "bob" and .realName == "Bob Example"
                and ((.memberOf // []) | index("sudo") != null or index("wheel") != null)
                and (.privileged.hashedPassword | length) > 0' "$WORK/bob.json" >/dev/null \
                || failed "the installed root has no homed user record for bob as typed: $(head -c 300 "$WORK/bob.json")"
        ! grep -qF -- "$user_password" "$WORK/bob.json" || failed "bob's password is in his user record in plain text"
        debugfs -R "stat /etc/credstore.encrypted/home.password" "$rootfs" 2>/dev/null | grep -q "Type: regular" \
                || failed "the installed root has no sealed password for bob (/etc/credstore.encrypted/home.password)"
        [ "$(rcat /etc/hostname)" = imprint-serial ] || failed "the hostname is '$(rcat /etc/hostname)', not imprint-serial"
        debugfs -R "stat /etc/localtime" "$rootfs" 2>/dev/null | grep -q "Europe/Paris" \
                || failed "/etc/localtime does not point at Europe/Paris"
        rcat /etc/locale.conf | grep -qx 'LANG=fr_FR.UTF-8' || failed "/etc/locale.conf is not LANG=fr_FR.UTF-8: $(rcat /etc/locale.conf)"
        # Debian's /etc/vconsole.conf is a link to default/keyboard (debugfs does not follow links).
        { rcat /etc/vconsole.conf; rcat /etc/default/keyboard; } | grep -Eq '^(KEYMAP|XKBLAYOUT)="?fr"?$' \
                || failed "neither /etc/vconsole.conf nor /etc/default/keyboard says the keymap fr: $(rcat /etc/default/keyboard | tr '\n' ' ')"
        echo "ok: bob's homed record (Bob Example, administrator, hashed password) and sealed password, hostname, time zone, locale and keymap as typed"
        phase_done "installed root read on the host" "$t"
        for f in "$WORK/target.img" "$WORK/live.qcow2" "$WORK/live-serial.log"; do
                ! grep -aqF -- "$user_password" "$f" || failed "the password is in $f"
        done
        echo "ok: the password typed on the serial console is on no disk and in no log"
        report_times
        echo "PASS: live medium, interactive install on the serial console"
        exit 0
fi

if [ "$MODE" = tui ]; then
        # A person at a terminal on the serial line: tmux is that terminal. Its pane shows what the
        # guest writes to ttyS0 (the serial log, followed) and sends what is typed into the pane to
        # the guest (boot-image.sh's serial.in FIFO). Secrets are typed from tmux paste buffers
        # loaded from files, never from a command line.
        echo "== live boot, full-screen installer on the serial console (tmux as the terminal)"
        user_password="Harbour-signal $(basename "$WORK") 5"
        pin="tui-pin-$(basename "$WORK")"
        passphrase="Quiet orchard $(basename "$WORK") lamp 31"
        umask 077
        printf '%s' "$passphrase" >"$WORK/passphrase"
        printf '%s' "$user_password" >"$WORK/password"
        printf '%s' "$pin" >"$WORK/pin"
        printf '%s\n' "$pin" >"$WORK/pin.answer"
        SOCK=imprint-live-tui-$$
        tm() { tmux -L "$SOCK" "$@"; }
        screen() { tm capture-pane -p -t main 2>/dev/null || true; }
        # shot NAME: the screen, kept in the work directory (a record of the run, also on failure).
        shot() { { echo "---- $1"; screen; } >>"$WORK/screens.txt"; }
        # wait_for TEXT SECONDS: until TEXT (fixed string) is on the screen; Ctrl-L once half-way
        # in case a kernel message wrote over it.
        wait_for() {
                local i n=$((${2:-60} * 5))
                for ((i = 0; i < n; i++)); do
                        screen | grep -qF -- "$1" && return 0
                        [ $i != $((n / 2)) ] || tm send-keys -t main C-l
                        kill -0 "$boot_pid" 2>/dev/null || break
                        sleep 0.2
                done
                shot "waiting for \"$1\""
                screen
                failed "\"$1\" never appeared on the serial console's screen (screens: $WORK/screens.txt)"
        }
        # wait_re REGEX SECONDS WHAT: until a line of the screen matches REGEX (grep -E).
        wait_re() {
                local i
                for ((i = 0; i < $2 * 5; i++)); do
                        screen | grep -qE -- "$1" && return 0
                        sleep 0.2
                done
                shot "waiting for /$1/"
                failed "$3"
        }
        # keys KEY…: as tmux send-keys; then a pause for the serial line and the redraw.
        keys() { tm send-keys -t main "$@"; sleep 1; }
        # type_file FILE: its text typed into the focused field, from a paste buffer.
        type_file() { tm load-buffer -b secret "$1"; tm paste-buffer -d -b secret -t main; sleep 1; }

        # (exit $rc): cleanup reads the script's exit status from $?, which cleanup_tui changes.
        cleanup_tui() { local rc=$?; tm kill-server 2>/dev/null || true; kill "$boot_pid" 2>/dev/null || true; return "$rc"; }
        trap 'cleanup_tui; cleanup' EXIT
        # systemd-stub appends this SMBIOS string to the UKI's command line (no Secure Boot here).
        extra='imprint.frontend.ttyS0=tui systemd.tty.term.ttyS0=tmux-256color'
        t=$EPOCHREALTIME
        "${BOOT[@]}" --log "$WORK/live-serial.log" --timeout 1500 \
                --qemu-arg -smbios --qemu-arg "type=11,value=io.systemd.stub.kernel-cmdline-extra=$extra" \
                >"$WORK/live-boot.out" 2>&1 &
        boot_pid=$!
        run=
        for _ in $(seq 100); do
                run=$(sed -n 's/^run directory: //p' "$WORK/live-boot.out")
                [ -n "$run" ] && [ -p "$run/serial.in" ] && break
                sleep 0.2
        done
        [ -n "$run" ] && [ -p "$run/serial.in" ] || { cat "$WORK/live-boot.out"; failed "boot-image.sh made no serial input"; }
        tm -f /dev/null new-session -d -s main -x 80 -y 24 \
                "stty raw -echo; tail -c +1 -F '$WORK/live-serial.log' 2>/dev/null & exec cat >'$run/serial.in'"
        tm set-option -g status off >/dev/null
        tm resize-window -t main -x 80 -y 24 2>/dev/null || true

        wait_for "Welcome to imprint" 600
        phase_done "live boot to the first screen" "$t"
        t=$EPOCHREALTIME
        shot welcome
        keys Enter
        wait_for "Choose the disk to install to" 60
        shot disk
        # The target is offered (its serial number is "target"); the medium the live system runs
        # from is shown but cannot be chosen.
        screen | grep -q 'target' || failed "the disk screen does not show the target disk"
        keys Enter
        wait_for "Erase the whole disk and install" 60
        # A home partition of 1 GiB (Tab to the Home size; the table is planned again at once).
        keys Tab Tab Tab C-u 1G
        wait_re '^ +3 +home +create' 30 "the layout table shows no home partition after setting its size"
        shot layout
        keys Enter
        wait_for "TPM 2.0: usable" 120
        shot encryption
        # Encrypt (on by default), the TPM asks for a PIN: PIN, Space, then the PIN twice; and a
        # passphrase: Space, then it twice.
        keys Down Space Down
        type_file "$WORK/pin"
        keys Down
        type_file "$WORK/pin"
        keys Down Space Down
        type_file "$WORK/passphrase"
        keys Down
        type_file "$WORK/passphrase"
        shot encryption-pin
        screen | grep -q 'Strength: ' || failed "the encryption screen shows no strength for the passphrase"
        keys Enter
        wait_for "Full name" 60
        # A systemd-homed account: the storage choice is offered.
        keys 'Carol Example' Tab carol Tab
        type_file "$WORK/password"
        keys Tab
        type_file "$WORK/password"
        shot user
        screen | grep -q 'luks' || failed "the account screen offers no home storage: not a systemd-homed account"
        keys Tab Tab Tab C-u imprint-tui Tab C-u Europe/Rome
        shot user-filled
        keys Enter
        wait_for "to install:" 60
        shot summary
        name=$(screen | grep -o 'Type "vd[a-z]*" to install' | head -n 1 | cut -d'"' -f2)
        [ -n "$name" ] || failed "the summary names no disk to type"
        screen | tr -s ' \n' ' ' | grep -q 'unlocked by the TPM with a PIN, and a passphrase' \
                || failed "the summary does not say TPM + PIN and a passphrase unlock the disk"
        screen | grep -qE '^ {40,}\(encrypted\)' || failed "the summary's root row does not say \"(encrypted)\" under its LABEL column"
        keys "$name" Enter
        wait_for "RECOVERY KEY for $name" 300
        shot recovery-key
        # The key as a person reads it off the screen: four lines of two groups.
        key=$(screen | grep -oE '^ +[cbdefghijklnrtuv]{8}-[cbdefghijklnrtuv]{8}' | tr -d ' ' | paste -sd-)
        printf '%s' "$key" | grep -Eq '^([cbdefghijklnrtuv]{8}-){7}[cbdefghijklnrtuv]{8}$' \
                || failed "no recovery key on the recovery key screen"
        printf '%s' "$key" >"$WORK/recovery.key"
        read -r g1 g2 < <(screen | sed -n 's/.*Type groups \([1-8]\) and \([1-8]\):.*/\1 \2/p' | head -n 1)
        [ -n "${g2:-}" ] || failed "the recovery key screen asks for no groups"
        printf '%s %s' "$(cut -d- -f"$g1" "$WORK/recovery.key")" "$(cut -d- -f"$g2" "$WORK/recovery.key")" >"$WORK/groups"
        type_file "$WORK/groups"
        rm -f "$WORK/groups"
        keys Enter
        wait_for "Overall" 120
        screen | grep -qE '[cbdefghijklnrtuv]{8}-[cbdefghijklnrtuv]{8}' && failed "the recovery key is still on the screen during the install"
        shot progress
        # Every step is listed from the start, the later ones by their titles.
        screen | grep -q 'Flushing /dev/' || failed "the progress screen does not list the steps to come"
        # L: the live log, and back.
        keys l
        wait_for "L Show the steps" 30
        shot progress-log
        keys l
        wait_for "is installed on /dev/$name" 1500
        shot done
        phase_done "typed install (full-screen, serial)" "$t"
        screen | grep -q 'The log of this install: /var/log/imprint' || failed "the done screen names no log in /var/log"
        # "Exit to a shell": root's login shell in the installer's place on this terminal. From it,
        # the screen of the Linux console (tty1, where imprint@tty1 shows the full-screen installer
        # with TERM=linux) is read from /dev/vcsu1, then the machine is switched off.
        keys Down Down
        shot done-shell
        keys Enter
        wait_for 'Type "exit" to go back to the installer.' 30
        # $((…)): the markers in the output are not the ones in the echoed command line.
        # The screen comes as one line of characters; it is cut into rows here (fold counts bytes,
        # which moves every row after a "•").
        keys 'echo VCS-$((1+1))-BEGIN; stty -F /dev/tty1 size; iconv -f UTF-32LE -t UTF-8 /dev/vcsu1; echo; tr "\0" "\n" </proc/"$(systemctl show -P MainPID imprint@tty1.service)"/environ | grep ^TERM=; echo "SHELL-ENV=$HOME $USER $(pwd)"; echo VCS-$((1+1))-END' Enter
        sleep 3
        keys 'systemctl poweroff' Enter
        rc=0
        wait "$boot_pid" || rc=$?
        cat "$WORK/live-boot.out"
        [ "$rc" = 0 ] || failed "the live system did not power off after the install (serial log $WORK/live-serial.log)"
        tm kill-server 2>/dev/null || true
        sed -E "s/\x1b\[[0-?]*[ -\/]*[@-~]//g; s/\r//g" "$WORK/live-serial.log" | sed -n '/^VCS-2-BEGIN/,/^VCS-2-END/p' \
                | python3 -X utf8 -c '
import sys
lines = sys.stdin.read().split("\n")
cols = int(lines[1].split()[1]) if len(lines) > 1 and len(lines[1].split()) == 2 else 80
for i, l in enumerate(lines):
    if i == 2:
        for k in range(0, len(l), cols):
            print(l[k:k + cols])
    elif l:
        print(l)' >"$WORK/tty1-screen.txt"
        cat "$WORK/tty1-screen.txt"
        grep -q 'Welcome to imprint' "$WORK/tty1-screen.txt" && grep -q 'Step 1 of 6' "$WORK/tty1-screen.txt" \
                || failed "the Linux console (tty1) does not show the full-screen installer (see $WORK/tty1-screen.txt)"
        grep -qx 'TERM=linux' "$WORK/tty1-screen.txt" || failed "the installer on tty1 does not run with TERM=linux"
        grep -qx 'SHELL-ENV=/root root /root' "$WORK/tty1-screen.txt" || failed "the shell from the last screen has no login environment (HOME, USER, working directory)"
        # The language list is one column: a console that counts the bytes of "•" as glyphs (not
        # in UTF-8 mode) pushes the rows after it to the right.
        c_en=$(grep -m1 'English' "$WORK/tty1-screen.txt" | awk '{ print index($0, "(") }')
        c_de=$(grep -m1 'Deutsch' "$WORK/tty1-screen.txt" | awk '{ print index($0, "(") }')
        [ -n "$c_en" ] && [ "$c_en" = "$c_de" ] || failed "the Linux console's rows are misaligned (English at column $c_en, Deutsch at $c_de)"
        echo "ok: the Linux console (tty1, TERM=linux) shows the full-screen installer's first screen meanwhile"

        # The key the screen showed opens the encrypted partitions, as judged by stock cryptsetup
        # on this host (a loop device over each partition; no device-mapper needed to test a key).
        luks_keys_open "$WORK/recovery.key" "$WORK/passphrase"
        echo "ok: the recovery key shown on the screen and the passphrase typed open root and home, a wrong one does not (stock cryptsetup)"

        echo "== target boot: the TPM asks for the PIN; carol exists and logs in"
        t=$EPOCHREALTIME
        E='IMPRINT-CHECK check.d/50-encryption:'
        C='IMPRINT-CHECK check.d/60-account:'
        boot_target carol "$user_password" \
                --answer '^[^A-Za-z]*Please enter .*PIN' "$WORK/pin.answer" \
                --stop-after '^Please enter passphrase' \
                --expect 'Please enter .*PIN' \
                --expect "$E root-crypt=root luks2" \
                --expect "$E root-crypt-backing=.* 4f68bce3-e8cd-4db1-96e7-fbcaf984b709" \
                --expect "$E home-crypt=home luks2" \
                --expect "$E home-crypt-backing=.* 933ac7e1-2eb4-4f13-b844-0e14e2aef915" \
                --expect "$C user-kind=homed" \
                --expect "$C user-real-name=Carol Example" \
                --expect "$C user-id-groups=.*\\bsudo\\b" \
                --expect "$C user-auth-homed=ok" \
                --expect "$C user-auth-wrong=rejected" \
                --expect "$C hostname=imprint-tui\$" \
                --expect "$C timezone=Europe/Rome\$" \
                || failed "booting the disk installed through the full-screen installer (serial log $WORK/target-serial.log)"
        phase_done "target boot (TPM + PIN)" "$t"
        echo "ok: the installed disk asked for the TPM PIN, opened root and home with it, and carol logs in"

        key=$(cat "$WORK/recovery.key")
        for f in "$WORK/target.img" "$WORK/live.qcow2" "$WORK/live-serial.log" "$WORK/target-serial.log"; do
                ! grep -aqF -- "$user_password" "$f" || failed "the password is in $f"
                ! grep -aqF -- "$pin" "$f" || failed "the PIN is in $f"
                ! grep -aqF -- "$passphrase" "$f" || failed "the passphrase is in $f"
        done
        for f in "$WORK/target.img" "$WORK/live.qcow2" "$WORK/target-serial.log"; do
                ! grep -aqF -- "$key" "$f" || failed "the recovery key is in $f"
                ! grep -aqF -- "${key//-/}" "$f" || failed "the recovery key (without dashes) is in $f"
        done
        rm -f "$WORK/password" "$WORK/pin" "$WORK/pin.answer" "$WORK/passphrase"
        echo "ok: the password, the PIN and the passphrase are on no disk and in no log; the recovery key is on neither disk"
        report_times
        echo "PASS: live medium, full-screen install on the serial console with TPM + PIN, recovery key and a homed account"
        exit 0
fi

if [ "$MODE" = varlink ]; then
        # A program at the other end of imprint's Varlink socket: tests/e2e/varlink-client.sh, run on
        # the medium by a unit given as a credential. Its secrets come as credentials too (files in
        # the guest, given to varlinkctl on stdin); the rest of the request is JSON members.
        echo "== live boot, an install driven through io.imprint.Installer by varlinkctl"
        passphrase="Varlink orchard $(basename "$WORK") 19"
        user_password="Signal-lamp $(basename "$WORK") 8"
        umask 077
        printf '%s' "$passphrase" >"$WORK/passphrase"
        request='"encrypt":true,"tpm2":"auto","homeSize":"1G","userName":"dave","realName":"Dave Example","admin":true,"hostname":"imprint-varlink","timezone":"Europe/Lisbon","locale":"pt_PT.UTF-8","keymap":"pt-latin1"'
        client_unit=$(cat <<'UNIT'
[Unit]
Description=rig: a Varlink client installs through io.imprint.Installer
ConditionPathExists=!/etc/initrd-release
After=imprint-varlink.socket systemd-udev-trigger.service local-fs.target
[Service]
Type=exec
ImportCredential=imprint-rig.*
ExecStart=/bin/bash %d/imprint-rig.client
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
UNIT
)
        client_wants=$(printf '[Unit]\nWants=imprint-rig-varlink-client.service\n')
        # systemd-stub appends this SMBIOS string to the UKI's command line (no Secure Boot here): the
        # serial line belongs to the client, not to the line-by-line dialogue.
        extra='systemd.mask=imprint@ttyS0.service'
        V='IMPRINT-VARLINK'
        t=$EPOCHREALTIME
        "${BOOT[@]}" --log "$WORK/live-serial.log" --timeout 1500 \
                --qemu-arg -smbios --qemu-arg "type=11,value=io.systemd.stub.kernel-cmdline-extra=$extra" \
                --qemu-arg -smbios --qemu-arg "$(cred imprint-rig.client "$(cat "$here/varlink-client.sh")")" \
                --qemu-arg -smbios --qemu-arg "$(cred imprint-rig.request "$request")" \
                --qemu-arg -smbios --qemu-arg "$(cred imprint-rig.passphrase "$passphrase")" \
                --qemu-arg -smbios --qemu-arg "$(cred imprint-rig.password "$user_password")" \
                --qemu-arg -smbios --qemu-arg "$(cred systemd.extra-unit.imprint-rig-varlink-client.service "$client_unit")" \
                --qemu-arg -smbios --qemu-arg "$(cred systemd.unit-dropin.multi-user.target "$client_wants")" \
                --stop-after "$V FAIL" \
                --stop-after 'You are in emergency mode' \
                --expect "$V ok: the socket is root's only" \
                --expect "$V ok: varlinkctl introspect parses io.imprint.Installer and validate-idl accepts it" \
                --expect "$V ok: the served interface is the published /usr/share/imprint/io.imprint.Installer.varlink" \
                --expect "$V ok: an unknown method gets MethodNotFound, an unknown parameter InvalidParameter" \
                --expect "$V ok: the target fits \(enough_free_space\); the live medium is refused: ." \
                --expect "$V ok: GetTPMStatus: usable" \
                --expect "$V ok: Plan: target vd[a-z], encrypted with TPM2, passphrase and recovery key; nothing written" \
                --expect "$V ok: Install with the wrong name: NotConfirmed, the target untouched" \
                --expect "$V ok: recovery key handed over .*; the target is still blank" \
                --expect "$V ok: a wrong token gets NoSuchRecoveryKey, wrong groups RecoveryKeyMismatch, the right ones are accepted" \
                --expect "$V ok: Install streamed to \"finished\"" \
                --expect "$V ok: neither the recovery key, the passphrase nor the password is in the journal" \
                --expect "$V ok: the service exited by itself when idle; the socket listens on" \
                --expect "$V PASS" \
                || failed "the install through io.imprint.Installer (serial log $WORK/live-serial.log)"
        phase_done "live boot + Varlink install" "$t"
        plain_log "$WORK/live-serial.log" | grep -ao "$V install: varlinkctl exited .*" | sed 's/^/  /' || true
        # The key as the API handed it over (the client printed it: the console is its screen).
        plain_log "$WORK/live-serial.log" | grep -ao "$V recovery-key: [a-z-]*" | tail -n 1 | cut -d' ' -f3 | tr -d '\n' >"$WORK/recovery.key"
        grep -Eq '^([cbdefghijklnrtuv]{8}-){7}[cbdefghijklnrtuv]{8}$' "$WORK/recovery.key" \
                || failed "no recovery key in the serial log"
        # The disks as the client listed them, judged here by jq too.
        plain_log "$WORK/live-serial.log" | sed -n "s/.*$V device: //p" >"$WORK/devices.json"
        jq -e -s 'any(.[]; (.symlinks // []) | index("/dev/disk/by-id/virtio-target")) and
                  all(.[]; if ((.symlinks // []) | index("/dev/disk/by-id/virtio-target")) then .fit == "enough_free_space"
                          elif ((.symlinks // []) | index("/dev/disk/by-id/virtio-live")) then .fit == "refused" and ((.refusals | index("system_disk")) or (.refusals | index("live_medium"))) and (.reason | length > 0)
                          else true end)' "$WORK/devices.json" >/dev/null \
                || failed "ListCandidateDevices as printed does not give the target enough_free_space and the live medium refused (see $WORK/devices.json)"
        echo "ok: $(wc -l <"$WORK/devices.json") disks listed; the target fits, the live medium is refused"

        t=$EPOCHREALTIME
        luks_keys_open "$WORK/recovery.key" "$WORK/passphrase" || exit 1
        phase_done "cryptsetup on the host" "$t"
        echo "ok: the recovery key handed over through the API and the passphrase of the request open root and home, a wrong one does not (stock cryptsetup)"

        echo "== target boot (same TPM, same firmware variables): no prompt; dave exists and logs in"
        t=$EPOCHREALTIME
        E='IMPRINT-CHECK check.d/50-encryption:'
        C='IMPRINT-CHECK check.d/60-account:'
        boot_target dave "$user_password" \
                --stop-after '^Please enter passphrase' \
                --expect "$E root-crypt=root luks2" \
                --expect "$E root-crypt-backing=.* 4f68bce3-e8cd-4db1-96e7-fbcaf984b709" \
                --expect "$E home-crypt=home luks2" \
                --expect "$E home-crypt-backing=.* 933ac7e1-2eb4-4f13-b844-0e14e2aef915" \
                --expect "$C user-kind=homed" \
                --expect "$C user-real-name=Dave Example" \
                --expect "$C user-id-groups=.*\\bsudo\\b" \
                --expect "$C user-auth-homed=ok" \
                --expect "$C user-auth-wrong=rejected" \
                --expect "$C hostname=imprint-varlink\$" \
                --expect "$C timezone=Europe/Lisbon\$" \
                --expect "$C locale=pt_PT.UTF-8\$" \
                --expect "$C keymap=pt-latin1\$" \
                || failed "booting the disk installed through io.imprint.Installer (serial log $WORK/target-serial.log)"
        ! grep -aq 'Please enter passphrase' "$WORK/target-serial.log" || failed "the installed disk asked for a passphrase"
        phase_done "target boot (TPM)" "$t"
        echo "ok: root and home unlocked by the TPM without a prompt; dave was created by systemd-homed and logs in; the settings are as requested"

        key=$(cat "$WORK/recovery.key")
        for f in "$WORK/target.img" "$WORK/live.qcow2" "$WORK/live-serial.log" "$WORK/target-serial.log"; do
                ! grep -aqF -- "$passphrase" "$f" || failed "the passphrase is in $f"
                ! grep -aqF -- "$user_password" "$f" || failed "the password is in $f"
        done
        for f in "$WORK/target.img" "$WORK/live.qcow2" "$WORK/target-serial.log"; do
                ! grep -aqF -- "$key" "$f" || failed "the recovery key is in $f"
                ! grep -aqF -- "${key//-/}" "$f" || failed "the recovery key (without dashes) is in $f"
        done
        rm -f "$WORK/passphrase"
        echo "ok: the passphrase and the password are on no disk and in no log; the recovery key is on neither disk (the live system's journal was searched from inside)"
        report_times
        echo "PASS: live medium, encrypted install driven through io.imprint.Installer by varlinkctl, TPM unlock, account"
        exit 0
fi

# --- unattended, encrypted install from the live medium -----------------------------------------
# The escrow "USB stick": imprint delivers the recovery key there. The live system mounts it from
# the credential fstab.extra (systemd-fstab-generator, v254+), before imprint-unattended.service.
truncate -s 64M "$WORK/escrow.img"
mkfs.ext4 -q -F -L escrow "$WORK/escrow.img"
# A passphrase keyslot too, from the credential imprint.passphrase: the grep below must not find it.
passphrase="e2e Passphrase for $(basename "$WORK") 7!"
# The account (systemd-homed, made at first boot from credentials imprint writes, its password
# sealed to the TPM) and the settings the first boot would otherwise ask for.
user_password="Lantern-harbour $(basename "$WORK") 42"
# Seeded, as an OEM line's reproducible install is: the LUKS UUIDs are the same in both runs, so the
# run after the interruption below finds the first run's escrow file (same name) and must keep it
# under another name and deliver its own, not refuse (the same machine and disk).
# The source is the signed test image on a disk of its own (Secure Boot, above); the report goes to
# the console, where the rig reads what was decided about Secure Boot.
echo "== the signed test image (Secure Boot)"
t=$EPOCHREALTIME
sbimg=$(bash "$top/tests/image/build-signed-ddi.sh") || failed "building the signed test image"
sbkeys=${sbimg%/*}/keys
qemu-img create -q -f qcow2 -F raw -b "$sbimg" "$WORK/sbimg.qcow2"
phase_done "build signed image" "$t"
echo "signed image: $sbimg"
config=$(printf '{"source":"%s","target":"/dev/disk/by-id/virtio-target","seed":"e2e-live","homeSize":"1G","passphrase":true,"recoveryKeyEscrow":{"directory":"/run/imprint-escrow","plaintext":true},"user":{"name":"alice","realName":"Alice Example","admin":true},"hostname":"imprint-e2e","timezone":"Europe/Berlin","locale":"de_DE.UTF-8","keymap":"de","report":{"console":true},"afterInstall":"poweroff","onFailure":"poweroff"}' /dev/disk/by-id/virtio-sbimg)
# A generous device timeout: on a loaded machine under TCG, udev's coldplug has taken longer than
# systemd's default 90 s (the live system then went to emergency mode).
fstab_extra='/dev/disk/by-id/virtio-escrow /run/imprint-escrow ext4 defaults,x-systemd.device-timeout=10min 0 0'
# udev churn on the target, for as long as the live system runs: a "change" event, a pause of 0.2 s,
# and again (about one a second under TCG on a busy machine, where udevadm itself is slow); each
# makes systemd-udevd take its shared BSD lock on the disk and probe it. An
# installer that tries flock(LOCK_EX|LOCK_NB) once fails on it ("Cannot lock /dev/vda: another
# program holds it"); imprint must wait for the probe (src/engine/disklock.h). An extra unit and a
# drop-in that pulls it in before imprint-unattended.service, both as system credentials
# (systemd-debug-generator, v256+; the medium runs 257). In a unit file $$ is $ and %% is %.
churn_unit=$(cat <<'EOF'
[Unit]
Description=rig: udev change events on the target disk during the install
ConditionPathExists=!/etc/initrd-release
After=systemd-udev-trigger.service
Before=imprint-unattended.service
[Service]
Type=exec
ExecStart=/bin/sh -c 'd=/dev/disk/by-id/virtio-target; udevadm wait --timeout=300 $$d || exit 1; echo "IMPRINT-RIG udev-churn: started"; n=0; while :; do udevadm trigger --action=change $$d; n=$$((n + 1)); [ $$((n %% 25)) != 0 ] || echo "IMPRINT-RIG udev-churn: $$n change events"; sleep 0.2; done'
StandardOutput=journal+console
EOF
)
# What imprint reads of the firmware before the install (Secure Boot): one line on the console.
firmware_unit=$(cat <<'EOF'
[Unit]
Description=rig: the firmware's Secure Boot state as imprint reads it, before the install
ConditionPathExists=!/etc/initrd-release
Before=imprint-unattended.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "IMPRINT-RIG firmware: $$(imprint firmware --json 2>&1 | paste -sd " ")"'
StandardOutput=journal+console
EOF
)
churn_dropin=$(printf '[Unit]\nWants=imprint-rig-udev-churn.service imprint-rig-firmware.service\n')
# Both live boots: the live medium, the target, the escrow disk, the configuration, its secrets,
# and the churn.
LIVE=("${BOOT[@]}" --secure-boot --disk "$WORK/escrow.img:escrow" --disk "$WORK/sbimg.qcow2:sbimg"
        --qemu-arg -smbios --qemu-arg "$(cred imprint.config "$config")"
        --qemu-arg -smbios --qemu-arg "$(cred imprint.passphrase "$passphrase")"
        --qemu-arg -smbios --qemu-arg "$(cred imprint.user-password "$user_password")"
        --qemu-arg -smbios --qemu-arg "$(cred fstab.extra "$fstab_extra")"
        --qemu-arg -smbios --qemu-arg "$(cred systemd.extra-unit.imprint-rig-udev-churn.service "$churn_unit")"
        --qemu-arg -smbios --qemu-arg "$(cred systemd.extra-unit.imprint-rig-firmware.service "$firmware_unit")"
        --qemu-arg -smbios --qemu-arg "$(cred systemd.unit-dropin.imprint-unattended.service "$churn_dropin")")

# The power goes in the middle of the copy: once the JSON progress says that 100 MB of the root
# partition are copied, QEMU is told to quit (SIGTERM: the guest gets no shutdown, as with a power
# cut; QEMU itself still flushes its qcow2 overlay of the medium, which SIGKILL with cache=unsafe
# could corrupt). A copy that ends before that, or an install that fails, ends the boot too, and
# then the check below fails.
echo "== live boot 1 + unattended install, switched off in the middle of the copy; imprint.config: $config"
t=$EPOCHREALTIME
"${LIVE[@]}" --log "$WORK/live-serial-1.log" --timeout 900 \
        --stop-after '"event": ?"update".*"id": ?"copy-root".*"done": ?[1-9][0-9]{8,},' \
        --stop-after '"event": ?"(end|failed)".*"id": ?"copy-root"' \
        --stop-after '"event": ?"result"' \
        --stop-after 'imprint-unattended\.service failed:' \
        --stop-after 'You are in emergency mode' \
        --expect 'IMPRINT-RIG udev-churn: started' \
        --expect 'IMPRINT-RIG firmware: .*"mode": ?"setup"' \
        --expect '"event": ?"end".*"id": ?"encrypt-root"' \
        --expect '"event": ?"update".*"id": ?"copy-root"' \
        || failed "the first unattended install, up to the middle of the copy (serial log $WORK/live-serial-1.log)"
# The firmware as imprint saw it before the install: setup mode, no PK (Secure Boot, above).
echo "live firmware: $(plain_log "$WORK/live-serial-1.log" | grep -ao 'IMPRINT-RIG firmware: .*' | head -n 1 | cut -c 23-)"
! plain_log "$WORK/live-serial-1.log" | grep -aqE '"event": ?"(end|failed|result)".*"id": ?"copy-root"|"event": ?"result"' \
        || failed "the first install was not cut off in the middle of the copy (serial log $WORK/live-serial-1.log)"
echo "ok: switched off at $(plain_log "$WORK/live-serial-1.log" | grep -aoE '"id": ?"copy-root".*"done": ?[0-9]+,"total": ?[0-9]+' | tail -n 1 | sed -E 's/.*"done": ?([0-9]+),"total": ?([0-9]+)/\1 of \2 bytes/') of the root copy"
phase_done "live boot 1 + install cut mid-copy" "$t"

# The same medium, disks, TPM and firmware variables, booted again: the unattended install runs
# again from the start, plans afresh on the half-written target, and completes. This is the
# install that the rest of the test checks.
echo "== live boot 2 + unattended encrypted install, after the interruption"
t=$EPOCHREALTIME
"${LIVE[@]}" --log "$WORK/live-serial.log" --timeout 1200 \
        --stop-after 'imprint-unattended\.service failed:' \
        --stop-after 'You are in emergency mode' \
        --expect 'IMPRINT-RIG udev-churn: started' \
        --expect '"event": ?"recoveryKey".*"deliveredTo": ?"/run/imprint-escrow/recovery-key-' \
        --expect '"event": ?"end".*"id": ?"encrypt-root"' \
        --expect '"event": ?"end".*"id": ?"encrypt-home"' \
        --expect '"event": ?"end".*"id": ?"verify-root"' \
        --expect '"event": ?"end".*"id": ?"configure"' \
        --expect '"event": ?"result".*"success": ?true' \
        --expect 'IMPRINT-RIG firmware: .*"mode": ?"setup"' \
        --expect '^IMPRINT-REPORT-END' \
        || failed "unattended install after the interruption (serial log $WORK/live-serial.log)"
phase_done "live boot 2 + install" "$t"
# What the install decided about Secure Boot, from its report (one JSON line between the markers):
# the firmware in setup mode, the image's keys installed for systemd-boot to enroll at first boot.
plain_log "$WORK/live-serial.log" | sed -n '/^IMPRINT-REPORT-BEGIN/,/^IMPRINT-REPORT-END/p' | grep -a '^{' | tail -n 1 >"$WORK/report.json"
jq -e . "$WORK/report.json" >/dev/null 2>&1 || failed "no report JSON between IMPRINT-REPORT-BEGIN and -END (serial log $WORK/live-serial.log)"
echo "report: secureBoot $(jq -c .secureBoot "$WORK/report.json")"
jq -e '.secureBoot.firmwareMode == "setup" and .secureBoot.action == "enroll" and .secureBoot.keysEnrolledAtFirstBoot == true' \
        "$WORK/report.json" >/dev/null || failed "the report does not say that the keys are enrolled at first boot from setup mode"
# The plan's sentence for it (in the report's copy of the plan), as the person would read it.
jq -e '[.. | objects | select(.action? == "enroll") | .note // "" | test("enrol"; "i")] | any' "$WORK/report.json" >/dev/null \
        || failed "the plan in the report has no sentence about the key enrollment"
echo "plan: $(jq -r '[.. | objects | select(.action? == "enroll") | .note // empty] | first' "$WORK/report.json")"
# The medium's recovery entry is not signed by the image's db key: once the keys are enrolled it
# could only fail, so the plan leaves it out and says so.
jq -e '.plan.recoveryUki == null and .plan.secureBoot.recoveryEntryRefused == true
       and (.plan.secureBoot.note | test("recovery entry is not installed"))' "$WORK/report.json" >/dev/null \
        || failed "the unsigned recovery entry is planned although the enrolled keys would refuse it"
# The installed ESP (not encrypted), read on the host with mtools: the image's keys byte for byte,
# secure-boot-enroll in loader.conf, systemd-boot and the UKI signed by the image's db key (sbverify).
esp_off=$(sfdisk --json "$WORK/target.img" | jq '.partitiontable.partitions[] | select(.type == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B") | .start * 512')
[ -n "$esp_off" ] || failed "no ESP on the installed disk"
for k in PK KEK db; do
        MTOOLS_SKIP_CHECK=1 mtype -i "$WORK/target.img@@$esp_off" "::/loader/keys/auto/$k.auth" 2>/dev/null | cmp -s - "$sbkeys/$k.auth" \
                || failed "loader/keys/auto/$k.auth on the installed ESP is not the image's"
done
MTOOLS_SKIP_CHECK=1 mtype -i "$WORK/target.img@@$esp_off" ::/loader/loader.conf 2>/dev/null | grep -qx 'secure-boot-enroll  *force' \
        || failed "the installed loader.conf has no \"secure-boot-enroll force\""
for f in EFI/systemd/systemd-bootx64.efi EFI/BOOT/BOOTX64.EFI EFI/Linux/imprint-test_1.efi; do
        MTOOLS_SKIP_CHECK=1 mcopy -n -i "$WORK/target.img@@$esp_off" "::/$f" "$WORK/esp-file.efi" 2>/dev/null || failed "no $f on the installed ESP"
        sbverify --cert "$sbkeys/db.crt" "$WORK/esp-file.efi" >/dev/null 2>&1 || failed "$f on the installed ESP is not signed by the image's db key"
done
rm -f "$WORK/esp-file.efi"
! MTOOLS_SKIP_CHECK=1 mtype -i "$WORK/target.img@@$esp_off" ::/EFI/Linux/imprint-recovery.efi >/dev/null 2>&1 \
        || failed "the unsigned recovery entry is on the installed ESP"
echo "ok: the installed ESP has the image's PK/KEK/db.auth, \"secure-boot-enroll force\" and systemd-boot and the UKI signed by its db key"
# The churn ran while imprint worked: change events counted between the first step and the result.
n_churn=$(plain_log "$WORK/live-serial.log" | sed -n '/"event": \{0,1\}"begin"/,/"event": \{0,1\}"result"/p' \
        | grep -ac 'IMPRINT-RIG udev-churn: [0-9]* change events' || true)
[ "${n_churn:-0}" -ge 1 ] || failed "no udev change events were made on the target during the install (serial log $WORK/live-serial.log)"
echo "ok: the install succeeded with udev change events on the target throughout ($(plain_log "$WORK/live-serial.log" | grep -ao 'IMPRINT-RIG udev-churn: [0-9]* change events' | tail -n 1 | grep -o '[0-9]*') by the last count; $n_churn counts during the install)"
plain_log "$WORK/live-serial.log" | grep -ao 'is locked by .*waiting up to.*\|locked /dev/[^ ]* after waiting [0-9.]* s' | sed 's/^/  imprint: /' || true

# The key, as the OEM's escrow received it: a file of mode 0600 whose last line is the key. The
# escrow also holds the key of the interrupted run, kept as recovery-key-UUID.previous-1.txt (same
# seed, so same LUKS UUID): the one that counts is the one the second run named.
keyfile=$(plain_log "$WORK/live-serial.log" | grep -aoE '"deliveredTo": ?"/run/imprint-escrow/recovery-key-[^"/]*\.txt"' | tail -n 1 \
        | sed -E 's|.*/||; s|"$||')
[ -n "$keyfile" ] || failed "the second install named no escrowed key file"
debugfs -R 'ls -p /' "$WORK/escrow.img" 2>/dev/null | awk -F/ '{ print $6 }' | grep -qxF "$keyfile" \
        || failed "$keyfile is not on the escrow disk"
echo "escrow disk: $(debugfs -R 'ls -p /' "$WORK/escrow.img" 2>/dev/null | awk -F/ '$6 ~ /^recovery-key-/ { printf "%s ", $6 }')"
debugfs -R 'ls -p /' "$WORK/escrow.img" 2>/dev/null | awk -F/ '{ print $6 }' | grep -qxF "${keyfile%.txt}.previous-1.txt" \
        || failed "the interrupted run's key was not kept as ${keyfile%.txt}.previous-1.txt"
mode=$(debugfs -R "stat /$keyfile" "$WORK/escrow.img" 2>/dev/null | sed -n 's/.*Mode: *\([0-7]*\).*/\1/p')
[ "$mode" = 0600 ] || failed "the escrowed key file has mode $mode, not 0600"
umask 077
debugfs -R "cat /$keyfile" "$WORK/escrow.img" 2>/dev/null | tail -n 1 | tr -d '\n' >"$WORK/recovery.key"
grep -Eq '^([cbdefghijklnrtuv]{8}-){7}[cbdefghijklnrtuv]{8}$' "$WORK/recovery.key" \
        || failed "the escrowed file does not end with a recovery key"
echo "ok: recovery key delivered to the escrow disk as $keyfile (mode 0600)"

# --- the installed disk, alone: unlocked by the TPM, no prompt ----------------------------------
echo "== target boot 1 (same TPM, same firmware variables): systemd-boot enrolls the keys and resets; then Secure Boot is on, no prompt; the account exists and logs in"
t=$EPOCHREALTIME
E='IMPRINT-CHECK check.d/50-encryption:'
A='IMPRINT-CHECK check.d/60-account:'
S='IMPRINT-CHECK check.d/40-secureboot:'
# The TPM2 tokens after imprint's unit (imprint-tpm2-pcr7.service) ran: PCR 7 by value and the
# signed PCR 11 policy; it ran before the check (it is ordered before multi-user.target's end).
SB_ON=(--secure-boot --reboot
        --expect 'IMPRINT-CHECK bootctl: Secure Boot: enabled \(user\)'
        --expect "$S secure-boot=1" --expect "$S setup-mode=0"
        --expect "$S pk=CN=imprint test PK" --expect "$S kek=CN=imprint test KEK" --expect "$S db=CN=imprint test db"
        --expect "$S root-tpm2-token=pcrs=7 pubkey-pcrs=11 " --expect "$S home-tpm2-token=pcrs=7 pubkey-pcrs=11 ")
boot_target alice "$user_password" "${SB_ON[@]}" \
        --expect '^Enrolling secure boot keys from directory: \\loader\\keys\\auto' \
        --expect 'Custom Secure Boot keys successfully enrolled, rebooting the system now!' \
        --expect "$A user-kind=homed" \
        --expect "$A user-storage=luks" \
        --expect "$A user-real-name=Alice Example" \
        --expect "$A user-id-groups=.*\\bsudo\\b" \
        --expect "$A user-auth-homed=ok" \
        --expect "$A user-auth=ok" \
        --expect "$A user-auth-wrong=rejected" \
        --expect "$A hostname=imprint-e2e\$" \
        --expect "$A timezone=Europe/Berlin\$" \
        --expect "$A locale=de_DE.UTF-8\$" \
        --expect "$A keymap=de\$" \
        --stop-after '^Please enter passphrase' \
        --expect 'IMPRINT-CHECK lsblk: .*PARTTYPE="c12a7328-f81f-11d2-ba4b-00a0c93ec93b"' \
        --expect 'IMPRINT-CHECK lsblk: NAME="vda2" .*PARTLABEL="imprint-test_1" FSTYPE="crypto_LUKS"' \
        --expect 'IMPRINT-CHECK loader-image-identifier=\\EFI\\systemd\\systemd-bootx64\.efi' \
        --expect "$E root-crypt=root luks2" \
        --expect "$E root-crypt-backing=.* 4f68bce3-e8cd-4db1-96e7-fbcaf984b709" \
        --expect "$E home-crypt=home luks2" \
        --expect "$E home-crypt-backing=.* 933ac7e1-2eb4-4f13-b844-0e14e2aef915" \
        || failed "booting the installed target (serial log $WORK/target-serial.log)"
! grep -aq 'Please enter passphrase' "$WORK/target-serial.log" || failed "the first boot asked for a passphrase"
[ "$(plain_log "$WORK/target-serial.log" | grep -ac 'Linux version [0-9]')" = 1 ] || failed "the first boot started more than one kernel"
pcr7_a=$(grep -ao "$E pcr7=[0-9a-f]*" "$WORK/target-serial.log" | head -n 1 | sed 's/.*pcr7=//')
[ -n "$pcr7_a" ] || failed "no PCR 7 value in the first boot's log"
echo "ok: systemd-boot enrolled the image's keys and reset the machine; it came up with Secure Boot on (user mode)"
echo "ok: root and home unlocked by the TPM without a prompt (PCR 7 $pcr7_a); their TPM2 tokens are now bound to PCR 7 + the signed PCR 11 policy"
plain_log "$WORK/target-serial.log" | grep -ao "$S \(root\|home\)-tpm2-token=.*\|$S unit.*" | sed 's/^IMPRINT-CHECK check.d\/40-secureboot: /  /' || true
! plain_log "$WORK/target-serial.log" | grep -aqE "$S (root|home)-tpm2-token=pcrs=none" \
        || failed "a TPM2 token without PCR 7 is left after the re-seal (serial log $WORK/target-serial.log)"
echo "ok: alice was created by systemd-homed at first boot (LUKS home, sudo) and logs in through PAM; hostname, time zone, locale and keymap as chosen"
# The firmware started systemd-boot through the "Linux Boot Manager" entry imprint added to its
# variables during the install (same OVMF VARS file), not through the removable-media fallback.
phase_done "target boot 1 (enroll, Secure Boot on, TPM)" "$t"

# --- Secure Boot on, the TPM bound to PCR 7 + 11: no prompt again --------------------------------
echo "== target boot 2: Secure Boot on; the TPM (now PCR 7 + signed PCR 11) unlocks with no prompt"
t=$EPOCHREALTIME
bash "$here/boot-image.sh" "$WORK/target.img" --tpm-state "$WORK/tpm" --vars "$WORK/OVMF_VARS.fd" \
        --log "$WORK/target-serial-sb2.log" --timeout 700 "${SB_ON[@]}" \
        --stop-after '^Please enter passphrase' \
        --expect "$E root-crypt=root luks2" \
        --expect "$E home-crypt=home luks2" \
        || failed "the second boot with Secure Boot on (serial log $WORK/target-serial-sb2.log)"
! grep -aq 'Please enter passphrase' "$WORK/target-serial-sb2.log" || failed "the second boot asked for a passphrase"
! grep -aq 'Enrolling secure boot keys' "$WORK/target-serial-sb2.log" || failed "the second boot enrolled keys again"
! grep -aq "$S unit: imprint-tpm2-pcr7" "$WORK/target-serial-sb2.log" || failed "imprint-tpm2-pcr7.service is still there on the second boot"
pcr7_s=$(grep -ao "$E pcr7=[0-9a-f]*" "$WORK/target-serial-sb2.log" | head -n 1 | sed 's/.*pcr7=//')
[ "$pcr7_s" = "$pcr7_a" ] || failed "PCR 7 changed between the two boots with Secure Boot on ($pcr7_a, then $pcr7_s)"
echo "ok: no prompt on the second boot either; Secure Boot on, PCR 7 unchanged, the re-seal unit gone"
phase_done "target boot 2 (Secure Boot on, TPM)" "$t"

# --- PCR 7 changed: systemd asks, the recovery key opens ------------------------------------------
echo "== target boot 3: PCR 7 changed (a dbx update in the firmware variables); recovery key typed"
t=$EPOCHREALTIME
bash "$here/ovmf-vars-pcr7.sh" "$WORK/OVMF_VARS.fd" "$WORK/OVMF_VARS-pcr7.fd" >/dev/null || failed "changing the firmware variables"
bash "$here/boot-image.sh" "$WORK/target.img" --tpm-state "$WORK/tpm" --vars "$WORK/OVMF_VARS-pcr7.fd" \
        --log "$WORK/target-serial-2.log" --timeout 600 --secure-boot --reboot \
        --answer '^Please enter passphrase' "$WORK/recovery.key" \
        --expect 'Please enter passphrase' \
        --expect "$E root-crypt=root luks2" \
        --expect "$E home-crypt=home luks2" \
        --expect 'IMPRINT-CHECK bootctl: Secure Boot: enabled \(user\)' \
        --expect "$S dbx-bytes=76" \
        || failed "booting with a changed PCR 7 and the recovery key (serial log $WORK/target-serial-2.log)"
pcr7_b=$(grep -ao "$E pcr7=[0-9a-f]*" "$WORK/target-serial-2.log" | head -n 1 | sed 's/.*pcr7=//')
[ -n "$pcr7_b" ] && [ "$pcr7_b" != "$pcr7_a" ] || failed "PCR 7 did not change ($pcr7_a, then $pcr7_b)"
echo "ok: with PCR 7 changed ($pcr7_b) the boot asked, and the recovery key opened root and home"
phase_done "target boot (recovery key)" "$t"

# --- no secret where it does not belong -------------------------------------------------------------
# The installed disk, the live medium's overlay (its journal among it) and every serial log must
# not hold the recovery key or the passphrase (the escrow disk does, by design).
key=$(cat "$WORK/recovery.key")
for f in "$WORK/target.img" "$WORK/live.qcow2" "$WORK/live-serial-1.log" "$WORK/live-serial.log" "$WORK/target-serial.log" "$WORK/target-serial-sb2.log" "$WORK/target-serial-2.log" "$WORK/report.json"; do
        ! grep -aqF -- "$key" "$f" || failed "the recovery key is in $f"
        ! grep -aqF -- "$passphrase" "$f" || failed "the passphrase is in $f"
        ! grep -aqF -- "$user_password" "$f" || failed "the user's password is in $f"
        # The key without dashes, as a QR code or a normalizer might hold it.
        ! grep -aqF -- "${key//-/}" "$f" || failed "the recovery key (without dashes) is in $f"
done
echo "ok: neither the recovery key, the passphrase nor the user's password is on the installed disk, the live medium or in the logs"

report_times
echo "PASS: live medium, unattended encrypted install of the signed image in setup mode, key enrollment at first boot, Secure Boot on, TPM unlock on two boots (PCR 11, then PCR 7 + 11), recovery key after a PCR 7 change"
