#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-reset.sh [--keep] — imprint's factory reset, proved in the VM rig (QEMU + OVMF + swtpm)
# with stock tools as referees: one installed disk, one TPM state and one firmware variable store
# throughout, seven boots.
#
# Images (cached in /var/cache/imprint-test): the usr test image v1 (tests/image/build-usr-ddi.sh)
# and the live medium (iso/build-live.sh), which carries the recovery UKI
# /usr/lib/imprint/imprint-recovery.efi.
#
#  1. Install (boot 1, live medium): imprint-unattended installs imprint-usr_1 on a blank 8 GiB
#     target, root and a 1 GiB home encrypted (TPM2 PCR 7 + recovery key escrowed on the "escrow"
#     disk, which the host reads afterwards), the homed account alice. On the host: the ESP holds
#     $BOOT/EFI/Linux/imprint-recovery.efi (its size is printed) and /imprint/install.json.
#  2. Boot 2, the installed disk: root and home unlocked by the TPM, alice exists; the guest
#     (imprint.action, tests/image/rootfs-usr/usr/lib/imprint-usr/lifecycle) writes a marker on
#     root (/var/lib/imprint-rig/marker) and in home (/home/.imprint-rig-marker), then runs stock
#     "systemctl reboot --boot-loader-entry=imprint-recovery.efi" (QEMU runs with -no-reboot: the
#     VM stops there). The host reads LoaderEntryOneShot from the firmware variables
#     (ovmf-var.sh) and keeps, from the disk image: the GPT, the first 16 MiB (LUKS2 header and
#     keyslot area) of root and home, the sha256 of every other partition and every file of the
#     ESP.
#  3. Boot 3: sd-boot honours the one-shot entry (the serial console shows imprint-recovery.target);
#     the recovery entry finds the reset configuration (credential imprint.config: {"reset":
#     {"target":"auto", "recoveryKeyEscrow":{…}, "user": alice, "afterReset":"poweroff"}}) and resets
#     unattended. QEMU is killed (as a power cut) as soon as the JSON progress says the erase of
#     home (or the format of root) began. The host sees the interrupted state: the audit record
#     on the ESP says "running", LoaderEntryDefault names the recovery entry, root and home are
#     named imprint-incomplete in the GPT.
#  4. Boot 4: nothing selects an entry but LoaderEntryDefault: the recovery entry comes up again
#     and the reset completes and powers off. The host checks, with the VM off: the old recovery
#     key opens neither new header (nor the copies taken after), it opened the copies taken before;
#     no 4 KiB block of the old headers and keyslot areas is left and the old LUKS UUIDs are found
#     nowhere in the partitions; the NEW key from the escrow disk opens both; GPT, usr slots and
#     every other partition are byte-identical, the ESP's files too except /imprint/reset-*.json,
#     /imprint/install.json (rewritten with the new LUKS UUIDs, checked) and /loader/random-seed
#     (sd-boot refreshes it at every boot); LoaderEntryDefault is restored; the audit record
#     (mtype) says complete, boot-menu, crypto-erase of root and home, the old and new LUKS UUIDs,
#     and holds neither key.
#  5. Boot 5, the installed disk: both markers gone, root and home unlocked by the TPM with no
#     prompt, alice exists again (from the reset's account answers, homed at first boot); new
#     markers are written.
#  6. Boot 6, the live medium: the same kind of configuration with "keepHome": true and the target
#     named, run by the medium's imprint-unattended. The host: root re-created (new LUKS UUID,
#     old key refused, new one opens), home's volume kept (same LUKS UUID) and re-enrolled: the
#     previous recovery key no longer opens it, the new one does; the audit record says home
#     "reenrolled".
#  7. Boot 7, the installed disk: the home marker survived, the root marker is gone, home unlocked
#     by the TPM under the new enrollment.
#
# Every phase's time and the reset steps' times (from the audit records) are printed at the end.
# --keep keeps the disks, the TPM state and the firmware variables; the serial logs are always
# kept (their paths are printed).
#
# Needs root (building the images in a chroot; loop devices for cryptsetup on the host).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
KEEP=0
while [ $# -gt 0 ]; do
        case $1 in
        --keep) KEEP=1 ;;
        -h | --help) sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
        esac
        shift
done

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (the images are built in a chroot; loop devices)"; exit 77; }
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
need_pkgs=()
command -v qemu-img >/dev/null || need_pkgs+=(qemu-utils)
command -v sfdisk >/dev/null || need_pkgs+=(fdisk)
command -v jq >/dev/null || need_pkgs+=(jq)
command -v mdir >/dev/null || need_pkgs+=(mtools)
command -v mkfs.ext4 >/dev/null || need_pkgs+=(e2fsprogs)
command -v cryptsetup >/dev/null || need_pkgs+=(cryptsetup-bin)
[ -x /usr/bin/python3 ] || need_pkgs+=(python3-minimal)
if [ ${#need_pkgs[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
# shellcheck source=tests/e2e/disk-util.sh
. "$here/disk-util.sh"

WORK=$(mktemp -d /var/tmp/imprint-reset-e2e.XXXXXX)
STAMP_PID=
cleanup() {
        local rc=$?
        [ -z "$STAMP_PID" ] || kill "$STAMP_PID" 2>/dev/null || true
        if [ "$KEEP" = 0 ]; then
                rm -rf "$WORK/tpm" "$WORK/snap"
                rm -f "$WORK/target.img" "$WORK/live.qcow2" "$WORK/usrimg.qcow2" "$WORK/OVMF_VARS.fd" "$WORK/escrow.img" \
                        "$WORK"/*.key "$WORK/password" "$WORK/live.raw" "$WORK/usr1.raw"
        fi
        echo "work directory: $WORK ($([ "$KEEP" = 1 ] && echo "disks kept" || echo "logs only"))"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

T_ALL=$EPOCHREALTIME
TIMES=()
MEASURED=()
since() { awk -v a="$1" -v b="${2:-$EPOCHREALTIME}" 'BEGIN { printf "%.1f", b - a }'; }
phase_done() { TIMES+=("$1 $(since "$2")s"); }
report_times() {
        printf 'time: %s\n' "${TIMES[@]}" "total $(since "$T_ALL")s"
        [ ${#MEASURED[@]} = 0 ] || printf 'measured: %s\n' "${MEASURED[@]}"
}
failed() {
        echo "FAIL: $*"
        report_times
        exit 1
}

# An SMBIOS type 11 string carrying the system credential NAME with VALUE (base64: no QEMU comma
# escaping).
cred() { printf 'type=11,value=io.systemd.credential.binary:%s=%s' "$1" "$(printf '%s' "$2" | base64 -w0)"; }

# The serial log without ANSI escape sequences (CSI, OSC, charset), CRs and NULs, as boot-image.sh
# matches it.
plain_log() {
        sed -E "s#\x1b\][^\x07\x1b]*(\x07|\x1b\\\\)?##g; s#\x1b\[[0-?]*[ -/]*[@-~]##g; s#\x1b[()][A-Za-z0-9]##g; s#\x1b[DEHMc78>=]##g" "$1" \
                | tr -d '\r\000'
}

# run_stamped LOG STAMPS COMMAND…: runs COMMAND (a boot-image.sh run writing LOG); each line of LOG
# goes to STAMPS prefixed with the host's clock, as it appears.
run_stamped() {
        local log=$1 stamps=$2 pid rc=0
        shift 2
        : >"$log"
        "$@" &
        pid=$!
        tail -n +1 -F --pid="$pid" "$log" 2>/dev/null | while IFS= read -r line; do
                printf '%s %s\n' "$EPOCHREALTIME" "$line"
        done >"$stamps" &
        STAMP_PID=$!
        wait "$pid" || rc=$?
        wait "$STAMP_PID" 2>/dev/null || true
        STAMP_PID=
        return "$rc"
}
# stamp_of STAMPS REGEX first|last: the host time of the first or last line matching REGEX.
stamp_of() {
        local sel=1
        [ "$3" = last ] && sel='$'
        sed -E "s#\x1b\[[0-?]*[ -/]*[@-~]##g" "$1" | tr -d '\r\000' | grep -aE -- "^[0-9.]+ .*($2)" | sed -n "${sel}p" | cut -d' ' -f1 || true
}

# The guest protocol's values (lifecycle): "IMPRINT-CHECK KEY=VALUE …". check_val LOG KEY [first|last]
check_val() {
        local sel=1
        [ "${3:-first}" = last ] && sel='$'
        plain_log "$1" | grep -a -o 'IMPRINT-CHECK .*' | grep -avE '^IMPRINT-CHECK (sysupdate|reboot|cryptsetup-[a-z]+):' \
                | grep -a -o -E "(^IMPRINT-CHECK | )$2=[^ ]*" | sed -n "${sel}p" | sed -E "s/^.*$2=//" || true
}

# imprint's JSON progress events in a serial log: json_events LOG → one compact object per line.
json_events() {
        plain_log "$1" | grep -aoE '\{ ?"event": ?"[a-zA-Z]+".*\}' | while IFS= read -r l; do jq -c . <<<"$l" 2>/dev/null || true; done || true
}

# PID 1 of a guest that found no time to start: under TCG on a loaded 2-core host, the generators
# have taken longer than PID 1 gives them (90 s): "Failed to fork off sandboxing environment for
# executing generators: Protocol error", "Failed to start up manager", "Freezing execution"
# (tests/image/build-usr-ddi.sh). Nothing of the guest ran then: the rig boots once more, where
# that is the same boot again (not after a one-shot entry was consumed).
FROZE='Freezing execution|Failed to start up manager'
pid1_froze() { plain_log "$1" | grep -aqE "$FROZE"; }
# again NAME LOG COMMAND…: runs COMMAND; when it failed because PID 1 froze at start-up, keeps
# the log as LOG.froze and runs COMMAND once more.
again() {
        local name=$1 log=$2 rc=0
        shift 2
        "$@" || rc=$?
        if [ "$rc" != 0 ] && pid1_froze "$log"; then
                mv "$log" "$log.froze"
                echo "note: $name: PID 1 froze at start-up (a loaded host: $(plain_log "$log.froze" | grep -aoE 'Failed to fork off[^.]*' | head -n 1)); booting again"
                MEASURED+=("$name: PID 1 froze at start-up once (log $log.froze); booted again")
                BOOTS=$((BOOTS + 1))
                rc=0
                "$@" || rc=$?
        fi
        return "$rc"
}

# --- images -------------------------------------------------------------------------------------
echo "== images"
t=$EPOCHREALTIME
usr_dir=$(bash "$top/tests/image/build-usr-ddi.sh") || failed "building the usr images (tests/image/build-usr-ddi.sh)"
[ -f "$usr_dir/complete" ] && [ -f "$usr_dir/imprint-usr_1.raw" ] || failed "$usr_dir has no complete imprint-usr_1.raw"
live=$(bash "$top/iso/build-live.sh") || failed "building the live medium"
phase_done "images (build or cache)" "$t"
echo "usr images: $usr_dir"
echo "medium:     $live"
[ -s "$usr_dir/test-cert.pem" ] || failed "no test-cert.pem in $usr_dir"

# The recovery UKI on the medium (its root partition, read through a read-only loop device).
read -r _ lstart lsize _ <<<"$(du_part "$live" 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709)"
[ -n "$lstart" ] || failed "the live medium has no root partition"
loop=$(du_loop "$live" "$lstart" "$lsize")
debugfs -R "dump /usr/lib/imprint/imprint-recovery.efi $WORK/medium-recovery.efi" "$loop" >/dev/null 2>&1 || true
losetup -d "$loop"
[ -s "$WORK/medium-recovery.efi" ] || failed "the live medium carries no /usr/lib/imprint/imprint-recovery.efi (iso/build-live.sh of the recovery branch builds it)"
RECOVERY_SHA=$(sha256sum <"$WORK/medium-recovery.efi" | cut -d' ' -f1)
RECOVERY_SIZE=$(stat -c %s "$WORK/medium-recovery.efi")
MEASURED+=("recovery UKI on the medium: $((RECOVERY_SIZE / DU_MIB)) MiB ($RECOVERY_SIZE bytes)")
rm -f "$WORK/medium-recovery.efi"

GUID_ESP=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
GUID_ROOT=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709
GUID_HOME=933AC7E1-2EB4-4F13-B844-0E14E2AEF915
IMG=$WORK/target.img
VARS=$WORK/OVMF_VARS.fd

# --- boot 1: install from the live medium --------------------------------------------------------
# The cache keeps only its newest entries, and other builds may run meanwhile: the overlays' backing
# files are this run's own links to the cached media (a copy where a link cannot be made).
keep_file() { ln -f "$1" "$2" 2>/dev/null || cp --sparse=always "$1" "$2"; }
keep_file "$live" "$WORK/live.raw"
keep_file "$usr_dir/imprint-usr_1.raw" "$WORK/usr1.raw"
qemu-img create -q -f qcow2 -F raw -b "$WORK/live.raw" "$WORK/live.qcow2"
qemu-img create -q -f qcow2 -F raw -b "$WORK/usr1.raw" "$WORK/usrimg.qcow2"
truncate -s 8G "$IMG"
truncate -s 64M "$WORK/escrow.img"
mkfs.ext4 -q -F -L escrow "$WORK/escrow.img"
user_password="Reset-lantern $(basename "$WORK") 42"
umask 077
printf '%s' "$user_password" >"$WORK/password"
umask 022
USER_JSON='{"name": "alice", "realName": "Alice Example", "admin": true, "storage": "directory"}'
config=$(jq -cn --argjson user "$USER_JSON" '{source: "/dev/disk/by-id/virtio-usrimg", target: "/dev/disk/by-id/virtio-target", seed: "e2e-reset",
        imageCertificate: "/run/credentials/imprint-unattended.service/imprint.image-certificate",
        encrypt: true, tpm2: "required", recoveryKeyEscrow: {directory: "/run/imprint-escrow", plaintext: true}, homeSize: "1G",
        user: $user, hostname: "imprint-reset", afterInstall: "poweroff", onFailure: "poweroff"}')
fstab_extra='/dev/disk/by-id/virtio-escrow /run/imprint-escrow ext4 defaults,x-systemd.device-timeout=10min 0 0'
BOOTS=0
echo "== boot 1: live medium, unattended install of imprint-usr_1 (encrypted root + home, TPM2, alice); imprint.config: $config"
t=$EPOCHREALTIME
BOOTS=$((BOOTS + 1))
again "boot 1" "$WORK/serial-1-install.log" run_stamped "$WORK/serial-1-install.log" "$WORK/serial-1-install.stamps" \
        bash "$here/boot-image.sh" "$IMG" --tpm-state "$WORK/tpm" --vars "$VARS" \
        --disk "$WORK/live.qcow2:live" --boot-first live --disk "$WORK/escrow.img:escrow" --disk "$WORK/usrimg.qcow2:usrimg" \
        --qemu-arg -smbios --qemu-arg "$(cred imprint.config "$config")" \
        --qemu-arg -smbios --qemu-arg "$(cred imprint.user-password "$user_password")" \
        --qemu-arg -smbios --qemu-arg "$(cred imprint.image-certificate "$(cat "$usr_dir/test-cert.pem")")" \
        --qemu-arg -smbios --qemu-arg "$(cred fstab.extra "$fstab_extra")" \
        --no-check --log "$WORK/serial-1-install.log" --timeout 1200 \
        --stop-after 'imprint-unattended\.service failed:' \
        --stop-after 'You are in emergency mode' \
        --stop-after "$FROZE" \
        --expect '"event": ?"recoveryKey".*"deliveredTo": ?"/run/(imprint-)?escrow/recovery-key-' \
        --expect '"event": ?"end".*"id": ?"encrypt-root"' \
        --expect '"event": ?"end".*"id": ?"encrypt-home"' \
        --expect '"event": ?"result".*"success": ?true' \
        || failed "the unattended install (serial log $WORK/serial-1-install.log)"
phase_done "boot 1: live medium + install" "$t"
a=$(stamp_of "$WORK/serial-1-install.stamps" '"event": ?"[a-zA-Z]+"' first)
b=$(stamp_of "$WORK/serial-1-install.stamps" '"event": ?"result"' last)
[ -n "$a" ] && [ -n "$b" ] && MEASURED+=("install (imprint's first to last progress event, host clock) $(since "$a" "$b")s")

# escrowed_key LOG OUT: the recovery key that LOG's last "deliveredTo" names, read from the escrow
# disk (debugfs: no mount) into OUT, without a newline.
escrowed_key() {
        local f
        f=$(plain_log "$1" | grep -aoE '"deliveredTo": ?"/run/(imprint-)?escrow/recovery-key-[^"/]*\.txt"' | tail -n 1 | sed -E 's|.*/||; s|"$||' || true)
        [ -n "$f" ] || failed "no escrowed key file named in $1"
        umask 077
        debugfs -R "cat /$f" "$WORK/escrow.img" 2>/dev/null | tail -n 1 | tr -d '\n' >"$2"
        umask 022
        grep -Eq '^([cbdefghijklnrtuv]{8}-){7}[cbdefghijklnrtuv]{8}$' "$2" || failed "the escrowed file $f does not end with a recovery key"
        echo "$f"
}
f=$(escrowed_key "$WORK/serial-1-install.log" "$WORK/install.key")
echo "ok: installed; recovery key escrowed as $f"

read -r _ esp_start _ <<<"$(du_part "$IMG" "$GUID_ESP")"
[ -n "$esp_start" ] || failed "no ESP on the installed disk"
# $BOOT: XBOOTLDR when the install made one (a small ESP), else the ESP.
boot_start=$esp_start
read -r _ x _ <<<"$(du_part "$IMG" BC13C2FF-59E6-4262-A352-B275FD6F7172)"
[ -z "$x" ] || boot_start=$x
du_esp_cat "$IMG" "$boot_start" /EFI/Linux/imprint-recovery.efi >"$WORK/esp-recovery.efi" 2>/dev/null \
        || failed "no \$BOOT/EFI/Linux/imprint-recovery.efi after the install; \$BOOT/EFI/Linux: $(du_esp_ls "$IMG" "$boot_start" /EFI/Linux | paste -sd' ')"
[ "$(sha256sum <"$WORK/esp-recovery.efi" | cut -d' ' -f1)" = "$RECOVERY_SHA" ] || failed "\$BOOT/EFI/Linux/imprint-recovery.efi differs from the medium's"
rm -f "$WORK/esp-recovery.efi"
du_esp_cat "$IMG" "$esp_start" /imprint/install.json >"$WORK/install-1.json" 2>/dev/null || failed "no /imprint/install.json on the ESP"
jq -e '.formatVersion == 1 and (.plan | type == "object")' "$WORK/install-1.json" >/dev/null || failed "/imprint/install.json is not an install record: $(head -c 300 "$WORK/install-1.json")"
echo "ok: \$BOOT/EFI/Linux: $(du_esp_ls "$IMG" "$boot_start" /EFI/Linux | paste -sd' '); the recovery entry is the medium's UKI ($((RECOVERY_SIZE / DU_MIB)) MiB); /imprint/install.json present"

# --- boots of the installed disk ------------------------------------------------------------------
# boot_installed NAME ACTION [boot-image.sh options…]: the installed disk alone with the TPM state and
# firmware variables of the install; imprint.action as a system credential (commas doubled for
# QEMU). Log: $WORK/serial-NAME.log.
boot_installed() {
        local name=$1 action=$2
        shift 2
        BOOTS=$((BOOTS + 1))
        again "boot $name" "$WORK/serial-$name.log" run_stamped "$WORK/serial-$name.log" "$WORK/serial-$name.stamps" \
                bash "$here/boot-image.sh" "$IMG" --tpm-state "$WORK/tpm" --vars "$VARS" \
                --no-check --log "$WORK/serial-$name.log" --timeout 900 \
                --stop-after "$FROZE" \
                --qemu-arg -smbios --qemu-arg "type=11,value=io.systemd.credential:imprint.action=${action//,/,,}" \
                --stop-after '^Please enter passphrase' \
                --stop-after 'Please enter (the )?recovery key' \
                --stop-after 'You are in emergency mode' \
                --expect 'IMPRINT-CHECK-DONE' \
                "$@"
}
# home_unlocked_by_tpm LOG: /home is dm-crypt, unlocked with no prompt by the TPM2. The host's
# systemd-cryptsetup@home (gpt-auto's, in the booted system) names the TPM2 when it unseals itself
# (tpm2-device=auto), and says nothing when libcryptsetup's systemd-tpm2 token plugin did it
# ("token"); home's only other keyslot is the recovery key, which needs a prompt, and the boot
# stops at any prompt. tokens_are_tpm2 checks on the host that the token is the systemd-tpm2 one.
home_unlocked_by_tpm() {
        local v
        v="$(check_val "$1" home-crypt) $(check_val "$1" home-unlock)"
        case $v in
        "yes tpm2" | "yes token") ;;
        *) failed "home ($(check_val "$1" home-source)): dm-crypt and unlock '$v', not by the TPM2 with no prompt (serial log $1)" ;;
        esac
}
# tokens_are_tpm2 START SIZE WHAT: the LUKS2 header there has exactly two keyslots (the recovery
# key's and the TPM2's), one systemd-tpm2 token and no other token but systemd-recovery (which
# systemd-cryptenroll puts beside a recovery key) (cryptsetup luksDump --dump-json-metadata).
tokens_are_tpm2() {
        local loop j
        loop=$(du_loop "$IMG" "$1" "$2")
        j=$(cryptsetup luksDump --dump-json-metadata "$loop" 2>/dev/null) || true
        losetup -d "$loop"
        jq -e '(.keyslots | length) == 2 and ([.tokens[] | select(.type == "systemd-tpm2")] | length) == 1
                and ([.tokens[] | .type] - ["systemd-tpm2", "systemd-recovery"] | length) == 0' <<<"$j" >/dev/null \
                || failed "$3's LUKS2 header: keyslots $(jq -c '.keyslots | keys' <<<"$j"), tokens $(jq -c '[.tokens[] | .type]' <<<"$j"): not the recovery key's and the TPM2's, with one systemd-tpm2 token"
}

# expect_installed LOG ROOT-MARKER HOME-MARKER: an installed boot as every one must be — imprint-usr
# v1 from its own entry, root and home on dm-crypt unlocked by the TPM2 token (no prompt: the boot
# stops at one), alice exists; the rig's markers as given ("none": absent).
expect_installed() {
        local log=$1 val
        val=$(check_val "$log" version)
        [ "$val" = 1 ] || failed "the installed system runs version '$val', not 1 (serial log $log)"
        val=$(check_val "$log" entry)
        # shellcheck disable=SC2053  # a glob on purpose
        [[ ${val,,} == imprint-usr_1*.efi ]] || failed "LoaderEntrySelected is '$val', not the installed imprint-usr_1 (serial log $log)"
        [ "$(check_val "$log" root-crypt) $(check_val "$log" root-unlock)" = "yes tpm2" ] \
                || failed "root: dm-crypt '$(check_val "$log" root-crypt)', unlocked by '$(check_val "$log" root-unlock)', not by the TPM2 token (serial log $log)"
        home_unlocked_by_tpm "$log"
        val=$(check_val "$log" account)
        [ "$val" = alice ] || failed "the account is '$val', not alice (serial log $log)"
        val="$(check_val "$log" rig-marker-root) $(check_val "$log" rig-marker-home)"
        [ "$val" = "$2 $3" ] || failed "the markers (root home) are '$val', not '$2 $3' (serial log $log)"
        echo "ok: v1 booted from $(check_val "$log" entry); root and home dm-crypt unlocked by the TPM2, no prompt; alice uid $(check_val "$log" uid); markers root=$2 home=$3"
}

echo "== boot 2: installed disk; markers on root and in home, then systemctl reboot --boot-loader-entry=imprint-recovery.efi"
t=$EPOCHREALTIME
default_before=$(bash "$here/ovmf-var.sh" "$VARS" LoaderEntryDefault) || default_before=
boot_installed 2-mark mark-root=r1,mark-home=r1,reboot-entry=imprint-recovery.efi \
        || failed "boot 2 of the installed disk (serial log $WORK/serial-2-mark.log)"
log=$WORK/serial-2-mark.log
expect_installed "$log" none none
[[ ,$(check_val "$log" loader-entries), == *,imprint-recovery.efi,* ]] \
        || failed "sd-boot offered no imprint-recovery.efi entry (LoaderEntries: $(check_val "$log" loader-entries))"
[ "$(check_val "$log" marked-root) $(check_val "$log" marked-home)" = "r1 r1" ] || failed "the guest wrote no markers (serial log $log)"
[ "$(check_val "$log" reboot-request)" = imprint-recovery.efi ] && [ -z "$(check_val "$log" oneshot-before)" ] \
        || failed "the guest did not ask for the one-shot reboot, or a one-shot entry was set before (serial log $log)"
val=$(check_val "$log" reboot-rc)
[ -z "$val" ] || [ "$val" = 0 ] || failed "systemctl reboot --boot-loader-entry=imprint-recovery.efi exited with '$val': $(plain_log "$log" | grep -a 'IMPRINT-CHECK reboot:' | tail -n 3 | tr '\n' ' ')"
plain_log "$log" | grep -aqE 'reboot: (Restarting system|machine restart)' || failed "the installed system did not reboot after systemctl reboot --boot-loader-entry=… (serial log $log)"
phase_done "boot 2: installed, markers, one-shot reboot" "$t"
# The firmware's view, with the VM off: logind wrote the one-shot entry.
val=$(bash "$here/ovmf-var.sh" "$VARS" LoaderEntryOneShot) || val=
[ "$val" = imprint-recovery.efi ] || failed "LoaderEntryOneShot in the firmware variables is '$val', not imprint-recovery.efi"
echo "ok: sd-boot offers $(check_val "$log" loader-entries); stock systemctl set LoaderEntryOneShot=$val (read from the VARS file)"

# --- the disk before the reset --------------------------------------------------------------------
# snapshot NAME: what the host keeps of the disk: the GPT (sfdisk --dump), the first 16 MiB of
# root and home (or up to their data offset, if that is further), sha256 of every other partition,
# the ESP's files; in $WORK/snap/NAME.
HDR_BYTES=$((16 * DU_MIB))
snapshot() {
        local d=$WORK/snap/$1 partno start size type uuid name
        rm -rf "$d"
        mkdir -p "$d"
        sfdisk --dump "$IMG" | grep -v '^device:' >"$d/gpt.dump"
        : >"$d/partitions.sha"
        while read -r partno start size type uuid name; do
                case $type in
                "$GUID_ROOT" | "$GUID_HOME")
                        du_range_copy "$IMG" "$start" "$HDR_BYTES" "$d/hdr-$partno.img"
                        echo "$partno $start $size $type" >>"$d/crypt.list"
                        # the data area after the header: kept home must keep it byte for byte
                        [ "$type" != "$GUID_HOME" ] \
                                || du_range_sha "$IMG" $((start + HDR_BYTES / 512)) $((size - HDR_BYTES / 512)) >"$d/data-$partno.sha"
                        ;;
                "$GUID_ESP")
                        du_esp_pull "$IMG" "$start" "$d/esp" || failed "cannot read the ESP's files (mcopy)"
                        echo "$partno $start $size $type" >"$d/esp.part"
                        ;;
                *) echo "$partno $start $size $type $(du_range_sha "$IMG" "$start" "$size")" >>"$d/partitions.sha" ;;
                esac
        done < <(du_parts "$IMG")
        (cd "$d/esp" && find . | LC_ALL=C sort) >"$d/esp.tree"
        du_esp_manifest "$d/esp" >"$d/esp.manifest"
}
t=$EPOCHREALTIME
snapshot before
read -r ROOT_NO ROOT_START ROOT_SIZE _ <<<"$(du_part "$IMG" "$GUID_ROOT")"
read -r HOME_NO HOME_START HOME_SIZE _ <<<"$(du_part "$IMG" "$GUID_HOME")"
[ -n "$ROOT_NO" ] && [ -n "$HOME_NO" ] || failed "the installed disk has no root or no home partition: $(du_parts "$IMG" | tr '\n' ';')"
ROOT_UUID_0=$(du_luks_uuid "$IMG" "$ROOT_START" "$ROOT_SIZE")
HOME_UUID_0=$(du_luks_uuid "$IMG" "$HOME_START" "$HOME_SIZE")
[ -n "$ROOT_UUID_0" ] && [ -n "$HOME_UUID_0" ] || failed "root or home is not LUKS after the install"
tokens_are_tpm2 "$ROOT_START" "$ROOT_SIZE" root
tokens_are_tpm2 "$HOME_START" "$HOME_SIZE" home
# The copies are what the key opened: the reference for "after".
for p in "$ROOT_NO" "$HOME_NO"; do
        du_luks_opens "$WORK/snap/before/hdr-$p.img" "$WORK/install.key" || failed "the install's recovery key does not open the copy of partition $p's header"
done
phase_done "host: copies before the reset" "$t"
echo "ok: before: root $ROOT_UUID_0 (partition $ROOT_NO), home $HOME_UUID_0 (partition $HOME_NO), both opened by the install's key (copies of the first 16 MiB); $(wc -l <"$WORK/snap/before/partitions.sha") other partitions hashed, $(wc -l <"$WORK/snap/before/esp.manifest") ESP files"

# --- boots 3 and 4: the recovery entry --------------------------------------------------------------
# The recovery entry runs in its initrd (imprint-recovery.target, no switch to the installed root):
# the escrow disk is mounted there by a mount unit given as a credential, and the drop-in that makes
# imprint's recovery service wait for it is one too (systemd-debug-generator: systemd.extra-unit.*,
# systemd.unit-dropin.*, v256+; fstab.extra is for the system after the initrd).
reset_config=$(jq -cn --argjson user "$USER_JSON" '{reset: {target: "auto", recoveryKeyEscrow: {directory: "/run/escrow", plaintext: true},
        user: $user, afterReset: "poweroff"}, onFailure: "poweroff"}')
escrow_mount=$(printf '[Unit]\nDescription=rig: the escrow disk\n[Mount]\nWhat=/dev/disk/by-id/virtio-escrow\nWhere=/run/escrow\nType=ext4\n')
escrow_dropin=$(printf '[Unit]\nRequiresMountsFor=/run/escrow\n')
RECOVERY_ARGS=(--disk "$WORK/escrow.img:escrow"
        --qemu-arg -smbios --qemu-arg "$(cred imprint.config "$reset_config")"
        --qemu-arg -smbios --qemu-arg "$(cred imprint.user-password "$user_password")"
        --qemu-arg -smbios --qemu-arg "$(cred systemd.extra-unit.run-escrow.mount "$escrow_mount")"
        --qemu-arg -smbios --qemu-arg "$(cred systemd.unit-dropin.imprint-recovery-unattended.service "$escrow_dropin")")
boot_recovery() {
        local name=$1
        shift
        BOOTS=$((BOOTS + 1))
        run_stamped "$WORK/serial-$name.log" "$WORK/serial-$name.stamps" \
                bash "$here/boot-image.sh" "$IMG" --tpm-state "$WORK/tpm" --vars "$VARS" \
                --no-check --log "$WORK/serial-$name.log" --timeout 1200 "${RECOVERY_ARGS[@]}" \
                --stop-after 'You are in emergency mode' \
                --stop-after 'imprint-[a-z-]*\.service failed:' \
                --stop-after "$FROZE" \
                --expect 'imprint-recovery(\.target|-unattended)' \
                "$@"
}
# audit_last → the newest /imprint/reset-*.json into $WORK/audit-NAME.json; prints its name.
audit_last() {
        local n
        n=$(du_esp_ls "$IMG" "$esp_start" /imprint | grep -E '^reset-[0-9TZ]+\.json$' | LC_ALL=C sort | tail -n 1 || true)
        [ -n "$n" ] || return 1
        du_esp_cat "$IMG" "$esp_start" "/imprint/$n" >"$WORK/audit-$1.json" || return 1
        echo "$n"
}

echo "== boot 3: the one-shot recovery entry resets unattended; the power is cut once the erase of home (or root's format) began; imprint.config: $reset_config"
t=$EPOCHREALTIME
boot_recovery 3-reset-cut \
        --stop-after '"event": ?"begin".*"id": ?"(erase-home|encrypt-root|format-root)"' \
        --stop-after '"event": ?"result"' \
        --expect '"event": ?"end".*"id": ?"reset-begin"' \
        || failed "boot 3, the recovery entry up to the middle of the reset (serial log $WORK/serial-3-reset-cut.log)"
log=$WORK/serial-3-reset-cut.log
! plain_log "$log" | grep -aqE '"event": ?"result"' || failed "the reset ended before the power was cut (serial log $log)"
phase_done "boot 3: recovery entry (one-shot), reset cut" "$t"
cut_at=$(json_events "$log" | jq -r 'select(.event == "begin") | .id' | tail -n 1)
done_steps=$(json_events "$log" | jq -r 'select(.event == "end") | .id' | paste -sd' ')
echo "ok: sd-boot started the recovery entry once (its initrd reached imprint-recovery.target); power cut at the begin of $cut_at after: $done_steps"
val=$(bash "$here/ovmf-var.sh" "$VARS" LoaderEntryOneShot) && failed "LoaderEntryOneShot is still set ('$val'): sd-boot did not consume it"
val=$(bash "$here/ovmf-var.sh" "$VARS" LoaderEntryDefault) || val=
[ "$val" = imprint-recovery.efi ] || failed "during the reset LoaderEntryDefault is '$val', not imprint-recovery.efi: a power cut would boot the half-reset system"
n=$(audit_last cut) || failed "no /imprint/reset-*.json on the ESP after the reset began"
cut_record=$n
[ "$(jq -r .status "$WORK/audit-cut.json")" = running ] || failed "the audit record $n of the cut reset says '$(jq -r .status "$WORK/audit-cut.json")', not running"
names=$(du_parts "$IMG" | awk -v r="$ROOT_NO" -v h="$HOME_NO" '$1 == r || $1 == h { print $6 }' | paste -sd' ')
[ "$names" = "imprint-incomplete imprint-incomplete" ] || failed "during the reset root and home are named '$names' in the GPT, not imprint-incomplete"
state=
for p in "$ROOT_NO:$ROOT_START:$ROOT_SIZE:root" "$HOME_NO:$HOME_START:$HOME_SIZE:home"; do
        IFS=: read -r _ s z r <<<"$p"
        rc=0; du_luks_opens "$IMG" "$WORK/install.key" "$s" "$z" || rc=$?
        case $rc in 0) state+=" $r: old header intact;" ;; 1) state+=" $r: a LUKS header the old key does not open;" ;; *) state+=" $r: no LUKS header;" ;; esac
done
echo "ok: interrupted state: LoaderEntryDefault=imprint-recovery.efi, audit record $n running, root and home named imprint-incomplete;$state"

echo "== boot 4: nothing but LoaderEntryDefault selects the recovery entry; the reset completes"
t=$EPOCHREALTIME
boot_recovery 4-reset \
        --expect '"event": ?"recoveryKey".*"deliveredTo": ?"/run/(imprint-)?escrow/recovery-key-' \
        --expect '"event": ?"end".*"id": ?"reset-end"' \
        --expect '"event": ?"result".*"success": ?true' \
        || failed "boot 4, the recovery entry again, the reset to its end (serial log $WORK/serial-4-reset.log)"
log=$WORK/serial-4-reset.log
phase_done "boot 4: recovery entry (default), reset completes" "$t"
a=$(stamp_of "$WORK/serial-4-reset.stamps" '"event": ?"[a-zA-Z]+"' first)
b=$(stamp_of "$WORK/serial-4-reset.stamps" '"event": ?"result"' last)
[ -n "$a" ] && [ -n "$b" ] && MEASURED+=("reset from the boot menu, resumed (imprint's first to last event, host clock) $(since "$a" "$b")s")
f=$(escrowed_key "$log" "$WORK/reset1.key")
! cmp -s "$WORK/reset1.key" "$WORK/install.key" || failed "the reset escrowed the install's recovery key again"
echo "ok: the recovery entry came up again by itself and completed the reset; new recovery key escrowed as $f"

# --- the host's verdict on the reset ----------------------------------------------------------------
# expect_kept BEFORE AFTER: GPT, every partition other than root, home and ESP, and the ESP's files
# (but the reset's records and sd-boot's random seed) byte-identical.
expect_kept() {
        local b=$WORK/snap/$1 a=$WORK/snap/$2 ex='^\./(imprint/reset-[0-9TZ]+\.json|imprint/install\.json|loader/random-seed)$'
        diff -u "$b/gpt.dump" "$a/gpt.dump" || failed "the partition table changed ($1 → $2)"
        diff -u "$b/partitions.sha" "$a/partitions.sha" || failed "a partition other than root, home and the ESP changed ($1 → $2)"
        diff -u <(grep -vE "$ex" "$b/esp.tree") <(grep -vE "$ex" "$a/esp.tree") || failed "files were added to or removed from the ESP ($1 → $2)"
        diff -u <(grep -vE "  ${ex#^}" "$b/esp.manifest") <(grep -vE "  ${ex#^}" "$a/esp.manifest") \
                || failed "a file on the ESP changed ($1 → $2)"
        echo "ok: GPT, $(wc -l <"$a/partitions.sha") other partitions (usr slots: $(awk '{ print $1 }' "$a/partitions.sha" | paste -sd,)) and $(grep -cvE "  ${ex#^}" "$a/esp.manifest") ESP files byte-identical ($1 → $2)"
}
# expect_header_gone BEFORE AFTER PARTNO OLDKEY OLDUUID: the old key opens the copy taken before
# and neither the partition now nor the copy taken after; no non-zero 4 KiB block of the old
# header area is left at its place; the old LUKS UUID is nowhere in the partition.
expect_header_gone() {
        local b=$WORK/snap/$1/hdr-$3.img a=$WORK/snap/$2/hdr-$3.img start size rc same
        read -r _ start size _ <<<"$(awk -v n="$3" '$1 == n' "$WORK/snap/$2/crypt.list")"
        du_luks_opens "$b" "$4" || failed "the old key does not open the copy of partition $3 taken before ($1)"
        rc=0; du_luks_opens "$IMG" "$4" "$start" "$size" || rc=$?
        [ "$rc" != 0 ] || failed "the old recovery key still opens partition $3"
        rc=0; du_luks_opens "$a" "$4" || rc=$?
        [ "$rc" != 0 ] || failed "the old recovery key opens the copy of partition $3 taken after ($2)"
        same=$(/usr/bin/python3 - "$b" "$a" <<'EOF'
import sys
b, a = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
z = bytes(4096)
print(sum(1 for o in range(0, min(len(a), len(b)), 4096) if b[o:o + 4096] != z and b[o:o + 4096] == a[o:o + 4096]))
EOF
)
        [ "$same" = 0 ] || failed "$same non-zero 4 KiB blocks of partition $3's old header area are still in place"
        if dd if="$IMG" bs=1M iflag=skip_bytes,count_bytes skip=$((start * 512)) count=$((size * 512)) status=none | grep -aqF -- "$5"; then
                failed "the old LUKS UUID $5 is still found in partition $3"
        fi
}
# expect_new_key PARTNO KEY: KEY opens the partition now and the copy taken after.
expect_new_key() {
        local start size
        read -r _ start size _ <<<"$(awk -v n="$1" '$1 == n' "$WORK/snap/$3/crypt.list")"
        du_luks_opens "$IMG" "$2" "$start" "$size" || failed "the new recovery key does not open partition $1"
        du_luks_opens "$WORK/snap/$3/hdr-$1.img" "$2" || failed "the new recovery key does not open the copy of partition $1 taken after"
}
t=$EPOCHREALTIME
snapshot reset1
expect_kept before reset1
for p in "$ROOT_NO" "$HOME_NO"; do
        uuid=$ROOT_UUID_0
        [ "$p" = "$HOME_NO" ] && uuid=$HOME_UUID_0
        expect_header_gone before reset1 "$p" "$WORK/install.key" "$uuid"
        expect_new_key "$p" "$WORK/reset1.key" reset1
done
ROOT_UUID_1=$(du_luks_uuid "$IMG" "$ROOT_START" "$ROOT_SIZE")
HOME_UUID_1=$(du_luks_uuid "$IMG" "$HOME_START" "$HOME_SIZE")
[ "$ROOT_UUID_1" != "$ROOT_UUID_0" ] && [ "$HOME_UUID_1" != "$HOME_UUID_0" ] || failed "root or home kept its LUKS UUID"
tokens_are_tpm2 "$ROOT_START" "$ROOT_SIZE" root
tokens_are_tpm2 "$HOME_START" "$HOME_SIZE" home
echo "ok: the old recovery key opened the copies taken before and opens neither root nor home now (nor the copies taken after); no block of the old headers and keyslot areas is left, the old LUKS UUIDs are gone; the new key opens root $ROOT_UUID_1 and home $HOME_UUID_1, each with one systemd-tpm2 token beside it"
val=$(bash "$here/ovmf-var.sh" "$VARS" LoaderEntryDefault) || val=
[ "$val" = "$default_before" ] || failed "LoaderEntryDefault is '$val' after the reset, not what it was before ('$default_before')"
echo "ok: LoaderEntryDefault restored ('$val')"

# expect_audit NAME ENTRY KEEPHOME CUT OLDROOT NEWROOT OLDHOME NEWHOME KEYS…: the newest audit record
# says complete, the entry point (a regex), keepHome; root (and home unless kept) erased into the
# new LUKS UUIDs, and crypto-erased from the old ones (destroying at least one keyslot) — by this
# record, or, for a reset that was cut and then started again, by it or the record of the cut one
# (CUT, a file, or "-"): the restarted reset finds no header where the cut one finished its erase
# (it then says "discard"), or a header whose keyslots the cut one destroyed before the power went
# (it then says crypto-erase of 0 keyslots); the host's checks of the headers are the referee of
# what is left. A kept home re-enrolled, its volume the same. Neither recovery key (KEYS: files)
# is in either record.
expect_audit() {
        local name=$1 entry=$2 keep=$3 cut=$4 n j k
        n=$(audit_last "$name") || failed "no audit record on the ESP after the reset"
        j=$WORK/audit-$name.json
        [ "$cut" != - ] || cut=$WORK/audit-none.json
        [ -f "$cut" ] || echo '{"partitions": []}' >"$cut"
        jq -e --arg e "$entry" --argjson keep "$keep" '.formatVersion == 1 and .status == "complete" and (.entryPoint | test($e))
                and .keepHome == $keep and .finishedAt != null and .error == null and (.steps | length > 0)' "$j" >/dev/null \
                || failed "audit record $n: $(jq -c '{status, entryPoint, keepHome, finishedAt, error}' "$j") (want complete, $entry, keepHome $keep)"
        part() { jq -c --arg r "$1" '[.partitions[] | select(.role == $r)] | first' "$2"; }
        # erased ROLE OLD NEW: the rule above, as jq over the record and the cut one.
        erased() {
                jq -e -n --slurpfile f "$j" --slurpfile c "$cut" --arg r "$1" --arg o "$2" --arg n "$3" '
                        def p($x): [$x[0].partitions[] | select(.role == $r)] | first;
                        def lc: if . == null then null else ascii_downcase end;
                        def crypto($x): $x != null and $x.method == "crypto-erase" and ($x.oldLuksUuid | lc) == $o;
                        p($f) as $F | p($c) as $C
                        | $F.action == "erased" and ($F.newLuksUuid | lc) == $n and (crypto($F) or crypto($C))
                          and ($C != null or $F.keyslotsDestroyed >= 1)' >/dev/null \
                        || failed "audit record $n, $1: $(part "$1" "$j")$([ -s "$cut" ] && echo "; the cut reset's record: $(part "$1" "$cut")") (want erased into $3, crypto-erased from $2)"
        }
        erased root "$5" "$6"
        if [ "$keep" = true ]; then
                jq -e --arg o "$7" '[.partitions[] | select(.role == "home")] | first | .action == "reenrolled"
                        and ((.newLuksUuid // .oldLuksUuid) | ascii_downcase) == $o' "$j" >/dev/null \
                        || failed "audit record $n, home: $(part home "$j") (want reenrolled, volume $7 kept)"
        else
                erased home "$7" "$8"
        fi
        shift 8
        for k in "$@"; do
                for f in "$j" "$cut"; do
                        ! grep -qF -- "$(cat "$k")" "$f" || failed "audit record $f holds a recovery key"
                        ! grep -qF -- "$(tr -d '-' <"$k")" "$f" || failed "audit record $f holds a recovery key (without dashes)"
                done
        done
        MEASURED+=("reset steps ($name, $n): $(jq -r '[.steps[] | "\(.id) \(.seconds)s"] | join(", ")' "$j")")
        echo "ok: audit record $n: $(jq -r '"\(.status), \(.entryPoint), keepHome \(.keepHome), " + ([.partitions[] | "\(.role) \(.action)\(if .method then " (" + .method + ", data discarded: " + (.dataDiscarded | tostring) + ")" else "" end)"] | join("; ")) + "; account: \(.account)"' "$j")"
        echo "   records on the ESP: $(du_esp_ls "$IMG" "$esp_start" /imprint | paste -sd' ')"
}
# the record of the cut reset as it is now on the ESP (the restarted one may have replaced it)
du_esp_cat "$IMG" "$esp_start" "/imprint/$cut_record" >"$WORK/audit-cut-now.json" 2>/dev/null || cp "$WORK/audit-cut.json" "$WORK/audit-cut-now.json"
expect_audit reset1 '^boot-menu$' false "$WORK/audit-cut-now.json" "$ROOT_UUID_0" "$ROOT_UUID_1" "$HOME_UUID_0" "$HOME_UUID_1" "$WORK/install.key" "$WORK/reset1.key"
# install.json: rewritten at the end of the reset, it names the volumes as they are now.
du_esp_cat "$IMG" "$esp_start" /imprint/install.json >"$WORK/install-2.json" || failed "no /imprint/install.json after the reset"
val=$(jq -r '[.plan.partitions[] | select(.luksUuid != null) | .luksUuid | ascii_downcase] | sort | join(" ")' "$WORK/install-2.json")
[ "$val" = "$(printf '%s\n' "$ROOT_UUID_1" "$HOME_UUID_1" | sort | paste -sd' ')" ] \
        || failed "/imprint/install.json names the LUKS UUIDs '$val', not the new root and home"
echo "ok: /imprint/install.json names the new LUKS UUIDs"
phase_done "host: checks after the reset" "$t"

# --- boot 5: the reset system -------------------------------------------------------------------------
echo "== boot 5: installed disk after the reset: markers gone, TPM unlock, alice; new markers"
t=$EPOCHREALTIME
boot_installed 5-after mark-root=r2,mark-home=r2 || failed "boot 5, the installed disk after the reset (serial log $WORK/serial-5-after.log)"
expect_installed "$WORK/serial-5-after.log" none none
[ "$(check_val "$WORK/serial-5-after.log" marked-root) $(check_val "$WORK/serial-5-after.log" marked-home)" = "r2 r2" ] \
        || failed "the guest wrote no new markers (serial log $WORK/serial-5-after.log)"
phase_done "boot 5: installed after the reset" "$t"

# --- boot 6: reset from the live medium, home kept ----------------------------------------------------
t=$EPOCHREALTIME
snapshot before2
phase_done "host: copies before the second reset" "$t"
keep_config=$(jq -cn '{reset: {target: "/dev/disk/by-id/virtio-target", keepHome: true, recoveryKeyEscrow: {directory: "/run/imprint-escrow", plaintext: true},
        afterReset: "poweroff"}, onFailure: "poweroff"}')
echo "== boot 6: live medium, unattended reset keeping home; imprint.config: $keep_config"
t=$EPOCHREALTIME
BOOTS=$((BOOTS + 1))
again "boot 6" "$WORK/serial-6-keephome.log" run_stamped "$WORK/serial-6-keephome.log" "$WORK/serial-6-keephome.stamps" \
        bash "$here/boot-image.sh" "$IMG" --tpm-state "$WORK/tpm" --vars "$VARS" \
        --disk "$WORK/live.qcow2:live" --boot-first live --disk "$WORK/escrow.img:escrow" \
        --qemu-arg -smbios --qemu-arg "$(cred imprint.config "$keep_config")" \
        --qemu-arg -smbios --qemu-arg "$(cred fstab.extra "$fstab_extra")" \
        --no-check --log "$WORK/serial-6-keephome.log" --timeout 1200 \
        --stop-after 'imprint-unattended\.service failed:' \
        --stop-after 'You are in emergency mode' \
        --stop-after "$FROZE" \
        --expect '"event": ?"recoveryKey".*"deliveredTo": ?"/run/(imprint-)?escrow/recovery-key-' \
        --expect '"event": ?"end".*"id": ?"reenroll-home"' \
        --expect '"event": ?"result".*"success": ?true' \
        || failed "boot 6, the reset from the live medium keeping home (serial log $WORK/serial-6-keephome.log)"
phase_done "boot 6: live medium, reset keeping home" "$t"
a=$(stamp_of "$WORK/serial-6-keephome.stamps" '"event": ?"[a-zA-Z]+"' first)
b=$(stamp_of "$WORK/serial-6-keephome.stamps" '"event": ?"result"' last)
[ -n "$a" ] && [ -n "$b" ] && MEASURED+=("reset from the live medium, home kept (imprint's first to last event, host clock) $(since "$a" "$b")s")
f=$(escrowed_key "$WORK/serial-6-keephome.log" "$WORK/reset2.key")
echo "ok: reset from the live medium; new recovery key escrowed as $f"

t=$EPOCHREALTIME
snapshot reset2
expect_kept before2 reset2
expect_header_gone before2 reset2 "$ROOT_NO" "$WORK/reset1.key" "$ROOT_UUID_1"
expect_new_key "$ROOT_NO" "$WORK/reset2.key" reset2
ROOT_UUID_2=$(du_luks_uuid "$IMG" "$ROOT_START" "$ROOT_SIZE")
HOME_UUID_2=$(du_luks_uuid "$IMG" "$HOME_START" "$HOME_SIZE")
[ "$HOME_UUID_2" = "$HOME_UUID_1" ] || failed "home's LUKS UUID changed ($HOME_UUID_1 → $HOME_UUID_2): its volume was not kept"
rc=0; du_luks_opens "$IMG" "$WORK/reset1.key" "$HOME_START" "$HOME_SIZE" || rc=$?
[ "$rc" = 1 ] || failed "home after the reset keeping it: the previous recovery key $([ "$rc" = 0 ] && echo "still opens it" || echo "finds no LUKS header")"
expect_new_key "$HOME_NO" "$WORK/reset2.key" reset2
tokens_are_tpm2 "$ROOT_START" "$ROOT_SIZE" root
tokens_are_tpm2 "$HOME_START" "$HOME_SIZE" home
cmp -s "$WORK/snap/before2/data-$HOME_NO.sha" "$WORK/snap/reset2/data-$HOME_NO.sha" \
        || failed "home's data area (after its first 16 MiB) changed in the reset that keeps home"
du_luks_opens "$WORK/snap/before2/hdr-$HOME_NO.img" "$WORK/reset1.key" || failed "the previous key did not open the copy of home taken before"
echo "ok: root re-created ($ROOT_UUID_1 → $ROOT_UUID_2, the previous key refused, no block of its old header left); home's volume kept ($HOME_UUID_2, its data area byte-identical): the previous recovery key opened it before and no longer does, the new one does"
expect_audit reset2 '^(live-medium|unattended)$' true - "$ROOT_UUID_1" "$ROOT_UUID_2" "$HOME_UUID_1" "$HOME_UUID_2" "$WORK/reset1.key" "$WORK/reset2.key"
phase_done "host: checks after the second reset" "$t"

echo "== boot 7: installed disk after the reset keeping home: home marker kept, root marker gone, TPM unlock"
t=$EPOCHREALTIME
boot_installed 7-kept check || failed "boot 7, the installed disk after the reset keeping home (serial log $WORK/serial-7-kept.log)"
log=$WORK/serial-7-kept.log
val="$(check_val "$log" rig-marker-root) $(check_val "$log" rig-marker-home)"
[ "$val" = "none r2" ] || failed "after the reset keeping home the markers (root home) are '$val', not 'none r2' (serial log $log)"
[ "$(check_val "$log" root-crypt) $(check_val "$log" root-unlock)" = "yes tpm2" ] || failed "root not unlocked by the TPM2 (serial log $log)"
home_unlocked_by_tpm "$log"
echo "ok: home marker kept, root marker gone; root and home unlocked by the TPM2 with no prompt; account: $(check_val "$log" account)"
phase_done "boot 7: installed after the reset keeping home" "$t"

report_times
echo "PASS: factory reset from the boot menu (one-shot entry, power cut mid-reset, resumed by the recovery entry) and from the live medium keeping home; $BOOTS boots"
