#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-sysupdate.sh [--keep] — the life cycle of an image-based system that imprint installed,
# with stock systemd (trixie, 257) under QEMU + OVMF + swtpm: install, boot, A/B updates with
# systemd-sysupdate, and the fallback of systemd-boot's boot counting.
#
# Images (cached in /var/cache/imprint-test): tests/image/build-usr-ddi.sh builds imprint-usr
# versions 1-4 (squashfs /usr, usr-verity, usr-verity-sig, a UKI with usrhash=, repart.d and
# sysupdate.d; 4 never reaches boot-complete.target) and prints its cache directory; the live
# medium is iso/build-live.sh's.
#
#  1. Install: the live medium boots with a blank 8 GiB target (serial "target"), the escrow disk
#     and imprint-usr_1.raw as one more disk (serial "usrimg", through a qcow2 overlay: the cache
#     stays untouched); imprint-unattended installs /dev/disk/by-id/virtio-usrimg encrypted (TPM2 +
#     recovery key, delivered to the escrow disk) with the account alice. The host then reads the
#     target's GPT and ESP: usr, usr-verity and usr-verity-sig of v1 in the A slots (labels
#     imprint-usr_1, UUIDs from the root hash), the B slots labelled _empty, root LUKS2, and the
#     UKI named for boot counting (imprint-usr_1+1-0.efi: the image's transfer gives one try).
#  2. The installed disk boots alone, always with the TPM state and firmware variables of the
#     install; the test image's imprint-lifecycle.service prints IMPRINT-CHECK lines (the guest
#     protocol of CONTRACT: version, /usr's dm-verity root hash, the usr partition, root's
#     dm-crypt and its TPM2 unlock, the selected entry, blessing, the account, markers, the slots
#     and UKIs), acts on the system credential imprint.action (SMBIOS type 11) and powers off:
#       boot v1  mark,update  v1 from the A slot, blessed, alice exists; writes the markers;
#                         then the update disk (ext4 "imprint-upd") carries only v2: stock
#                         systemd-sysupdate writes it into the B slot and adds its UKI
#       boot v2  update   v2 from the B slot (its UUID is B's), v1 still in A; update disk: v3,
#                         which goes into the A slot (v1 is the older one)
#       boot v3  update   v3 from the A slot, v2 still in B; update disk: v4
#       boot v4 ×TriesLeft  the broken v4 (its UKI imprint-usr_4+L-D.efi): imprint-broken.service
#                         fails before boot-complete.target, the entry is never blessed, the
#                         guest powers off; sd-boot counts the tries in the file name
#       boot v3  check    sd-boot fell back to v3 (LoaderEntrySelected), the v4 UKI is
#                         imprint-usr_4+0-N.efi
#     The markers written by v1 in /home and /etc are checked at every later boot.
#  3. Timings: the install (host clock from the first to the last JSON event of imprint),
#     each update (the guest's update-seconds= and the host clock between the first and the
#     last sysupdate line), and every phase.
#
# --keep keeps the disks, the TPM state and the firmware variables; the serial logs are always
# kept (their paths are printed).
#
# Needs root (building the images in a chroot; qcow2 overlays).
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

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (the images are built in a chroot)"; exit 77; }
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
need_pkgs=()
command -v qemu-img >/dev/null || need_pkgs+=(qemu-utils)
command -v sfdisk >/dev/null || need_pkgs+=(fdisk)
command -v jq >/dev/null || need_pkgs+=(jq)
command -v mdir >/dev/null || need_pkgs+=(mtools)
command -v mkfs.ext4 >/dev/null || need_pkgs+=(e2fsprogs)
if [ ${#need_pkgs[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

WORK=$(mktemp -d /var/tmp/imprint-sysupdate-e2e.XXXXXX)
STAMP_PID=
cleanup() {
        local rc=$?
        [ -z "$STAMP_PID" ] || kill "$STAMP_PID" 2>/dev/null || true
        if [ "$KEEP" = 0 ]; then
                rm -rf "$WORK/tpm"
                rm -f "$WORK/target.img" "$WORK/live.qcow2" "$WORK/usrimg.qcow2" "$WORK/OVMF_VARS.fd" "$WORK/escrow.img" \
                        "$WORK"/update-v*.img "$WORK/recovery.key"
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

# run_stamped LOG STAMPS COMMAND…: runs COMMAND (a boot-image.sh run writing LOG) and writes each
# line of LOG, as it appears, to STAMPS prefixed with the host's clock (seconds since the epoch):
# when the guest did what, on the host's wall clock.
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
        sed -E "s#\x1b\[[0-?]*[ -/]*[@-~]##g" "$1" | tr -d '\r\000' | grep -aE -- "^[0-9.]+ .*($2)" | sed -n "${sel}p" | cut -d' ' -f1
}

# The guest protocol's values: "IMPRINT-CHECK KEY=VALUE …" lines (several pairs per line; not the
# sysupdate output it relays). check_val LOG KEY [first|last]
check_val() {
        local sel=1
        [ "${3:-first}" = last ] && sel='$'
        plain_log "$1" | grep -a -o 'IMPRINT-CHECK .*' | grep -av '^IMPRINT-CHECK sysupdate:' \
                | grep -a -o -E "(^IMPRINT-CHECK | )$2=[^ ]*" | sed -n "${sel}p" | sed -E "s/^.*$2=//"
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

# The root hash of version N: the JSON of its usr-verity-sig artefact (zero-padded), as
# systemd-repart wrote it; usrhash= of its UKI names the same.
declare -A ROOTHASH
for v in 1 2 3 4; do
        sig=$(ls "$usr_dir"/imprint-usr_"$v"[._]*usr-verity-sig*.raw 2>/dev/null | head -n 1)
        [ -n "$sig" ] || failed "no usr-verity-sig artefact of version $v in $usr_dir"
        ROOTHASH[$v]=$(tr -d '\000' <"$sig" | jq -r .rootHash)
        [[ ${ROOTHASH[$v]} =~ ^[0-9a-f]{64}$ ]] || failed "no root hash in $sig"
done
# The UUIDs the Discoverable Partitions Specification derives from a root hash: data partition
# = first 128 bits, verity partition = last 128 bits.
uuid_of() { local h=${1:0:32}; printf '%s-%s-%s-%s-%s' "${h:0:8}" "${h:8:4}" "${h:12:4}" "${h:16:4}" "${h:20:12}"; }
data_uuid() { uuid_of "${ROOTHASH[$1]:0:32}"; }
verity_uuid() { uuid_of "${ROOTHASH[$1]:32:32}"; }
for v in 1 2 3 4; do echo "v$v: usrhash ${ROOTHASH[$v]}"; done

# --- the update disks: one version each ---------------------------------------------------------
# What a sysupdate source directory holds for version N (tests/image/make-update-disk.sh): its split
# artefacts, the names the image's sysupdate.d Source MatchPatterns expect, and a SHA256SUMS of
# them, in an ext4 file system labelled imprint-upd, which the image mounts on
# /run/imprint-updates. One version per disk: each sysupdate run can only pick the intended one.
make_update_disk() {
        bash "$top/tests/image/make-update-disk.sh" "$usr_dir" "$1" "$2" >/dev/null || failed "making the update disk of v$1"
        echo "update disk of v$1: $(debugfs -R 'ls -p /' "$2" 2>/dev/null | awk -F/ '$6 ~ /^(imprint-usr|SHA256SUMS)/ { print $6 }' | paste -sd' ' -) ($(($(stat -c %s "$2") / 1048576)) MiB)"
}

# --- the installed disk, read on the host (the VM is off) ---------------------------------------
GUID_ESP=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
GUID_XBOOTLDR=BC13C2FF-59E6-4262-A352-B275FD6F7172
GUID_ROOT=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709
GUID_USR=8484680C-9521-48C6-9C11-B0720656F69E
GUID_USR_VERITY=77FF5F63-E7B6-4633-ACF4-1565B864C0E6
GUID_USR_SIG=E7BB33FB-06CF-4E81-8273-E543B413E2E2
# gpt TYPE: "PARTNO NAME UUID" of the target's partitions of that type, in disk order.
gpt() {
        sfdisk --json "$WORK/target.img" | jq -r --arg t "$1" '.partitiontable.partitions[] | select((.type | ascii_upcase) == $t)
                | "\(.node | capture("(?<n>[0-9]+)$").n) \(if (.name // "") == "" then "-" else .name end) \(.uuid | ascii_downcase)"'
}
# ukis: the file names in /EFI/Linux of $BOOT (XBOOTLDR when the disk has one, else the ESP), sorted.
ukis() {
        local type=$GUID_ESP start
        [ -z "$(gpt "$GUID_XBOOTLDR")" ] || type=$GUID_XBOOTLDR
        start=$(sfdisk --json "$WORK/target.img" | jq -r --arg t "$type" '.partitiontable.partitions[] | select((.type | ascii_upcase) == $t) | .start')
        MTOOLS_SKIP_CHECK=1 mdir -b -i "$WORK/target.img@@$((start * 512))" ::/EFI/Linux 2>/dev/null | sed 's|.*/||' \
                | { grep -v '^imprint-recovery\.efi$' || true; } | LC_ALL=C sort | paste -sd, -
}
# The recovery entry (imprint's own, tests/e2e/test-reset.sh tests it) sits beside the OS's UKIs
# in $BOOT/EFI/Linux; ukis() lists the OS's alone, which is what sysupdate manages.
recovery_entry_present() {
        local type=$GUID_ESP start
        [ -z "$(gpt "$GUID_XBOOTLDR")" ] || type=$GUID_XBOOTLDR
        start=$(sfdisk --json "$WORK/target.img" | jq -r --arg t "$type" '.partitiontable.partitions[] | select((.type | ascii_upcase) == $t) | .start')
        MTOOLS_SKIP_CHECK=1 mdir -b -i "$WORK/target.img@@$((start * 512))" ::/EFI/Linux 2>/dev/null | grep '/imprint-recovery\.efi$' >/dev/null
}
# slot ROLE-GUID A|B: "PARTNO NAME UUID" of the A (first) or B (second) partition of that type.
slot() { gpt "$1" | sed -n "$([ "$2" = A ] && echo 1 || echo 2)p"; }
# expect_slot GUID A|B NAME UUID WHAT: the slot's GPT name and UUID as expected.
expect_slot() {
        local partno name uuid
        read -r partno name uuid <<<"$(slot "$1" "$2")"
        [ -n "$partno" ] || failed "no $5 slot $2 on the installed disk"
        [ "$name" = "$3" ] || failed "$5 slot $2 (partition $partno) is named '$name', not '$3'"
        [ -z "$4" ] || [ "$uuid" = "$4" ] || failed "$5 slot $2 (partition $partno) has UUID $uuid, not $4"
}
# expect_slots A-VERSION|_empty B-VERSION|_empty: usr, usr-verity and usr-verity-sig of both slots.
expect_slots() {
        local s v name
        for s in A B; do
                v=$1
                [ "$s" = B ] && v=$2
                if [ "$v" = _empty ]; then
                        for g in "$GUID_USR" "$GUID_USR_VERITY" "$GUID_USR_SIG"; do expect_slot "$g" "$s" _empty "" "$g"; done
                else
                        name=imprint-usr_$v
                        expect_slot "$GUID_USR" "$s" "$name" "$(data_uuid "$v")" usr
                        expect_slot "$GUID_USR_VERITY" "$s" "$name" "$(verity_uuid "$v")" usr-verity
                        expect_slot "$GUID_USR_SIG" "$s" "$name" "" usr-verity-sig
                fi
        done
        echo "ok: on disk, slot A holds $1, slot B $2 (usr, usr-verity, usr-verity-sig: GPT names; usr and verity UUIDs from the root hash)"
}

# --- install v1 from the live medium --------------------------------------------------------------
qemu-img create -q -f qcow2 -F raw -b "$live" "$WORK/live.qcow2"
qemu-img create -q -f qcow2 -F raw -b "$usr_dir/imprint-usr_1.raw" "$WORK/usrimg.qcow2"
truncate -s 8G "$WORK/target.img"
truncate -s 64M "$WORK/escrow.img"
mkfs.ext4 -q -F -L escrow "$WORK/escrow.img"
user_password="Sysupdate-lantern $(basename "$WORK") 42"
# The image's signing certificate reaches the medium as a credential too: imprint must verify the
# usr-verity-sig signature against it (imageCertificate) before it writes anything.
[ -s "$usr_dir/test-cert.pem" ] || failed "no test-cert.pem in $usr_dir"
config=$(jq -cn '{source: "/dev/disk/by-id/virtio-usrimg", target: "/dev/disk/by-id/virtio-target", seed: "e2e-sysupdate",
        imageCertificate: "/run/credentials/imprint-unattended.service/imprint.image-certificate",
        encrypt: true, tpm2: "required", recoveryKeyEscrow: {directory: "/run/imprint-escrow", plaintext: true},
        user: {name: "alice", realName: "Alice Example", admin: true, storage: "directory"},
        hostname: "imprint-usr", afterInstall: "poweroff", onFailure: "poweroff"}')
fstab_extra='/dev/disk/by-id/virtio-escrow /run/imprint-escrow ext4 defaults,x-systemd.device-timeout=10min 0 0'
echo "== live boot + unattended install of imprint-usr_1; imprint.config: $config"
t=$EPOCHREALTIME
run_stamped "$WORK/live-serial.log" "$WORK/live-serial.stamps" \
        bash "$here/boot-image.sh" "$WORK/target.img" --tpm-state "$WORK/tpm" --vars "$WORK/OVMF_VARS.fd" \
        --disk "$WORK/live.qcow2:live" --boot-first live --disk "$WORK/escrow.img:escrow" --disk "$WORK/usrimg.qcow2:usrimg" \
        --qemu-arg -smbios --qemu-arg "$(cred imprint.config "$config")" \
        --qemu-arg -smbios --qemu-arg "$(cred imprint.user-password "$user_password")" \
        --qemu-arg -smbios --qemu-arg "$(cred imprint.image-certificate "$(cat "$usr_dir/test-cert.pem")")" \
        --qemu-arg -smbios --qemu-arg "$(cred fstab.extra "$fstab_extra")" \
        --no-check --log "$WORK/live-serial.log" --timeout 1200 \
        --stop-after 'imprint-unattended\.service failed:' \
        --stop-after 'You are in emergency mode' \
        --expect '"event": ?"recoveryKey".*"deliveredTo": ?"/run/imprint-escrow/recovery-key-' \
        --expect '"event": ?"end".*"id": ?"encrypt-root"' \
        --expect '"event": ?"end".*"id": ?"verify-usr"' \
        --expect '"event": ?"end".*"id": ?"verify-usr-verity"' \
        --expect '"event": ?"end".*"id": ?"verify-usr-verity-sig"' \
        --expect '"event": ?"end".*"id": ?"clear-usr"' \
        --expect '"event": ?"result".*"success": ?true' \
        || failed "the unattended install of imprint-usr_1 (serial log $WORK/live-serial.log)"
phase_done "live boot + install" "$t"
a=$(stamp_of "$WORK/live-serial.stamps" '"event": ?"[a-zA-Z]+"' first)
b=$(stamp_of "$WORK/live-serial.stamps" '"event": ?"result"' last)
[ -n "$a" ] && [ -n "$b" ] && MEASURED+=("install (imprint's first to last progress event, host clock) $(since "$a" "$b")s")
keyfile=$(plain_log "$WORK/live-serial.log" | grep -aoE '"deliveredTo": ?"/run/imprint-escrow/recovery-key-[^"/]*\.txt"' | tail -n 1 | sed -E 's|.*/||; s|"$||')
[ -n "$keyfile" ] || failed "the install named no escrowed key file"
umask 077
debugfs -R "cat /$keyfile" "$WORK/escrow.img" 2>/dev/null | tail -n 1 | tr -d '\n' >"$WORK/recovery.key"
umask 022
grep -Eq '^([cbdefghijklnrtuv]{8}-){7}[cbdefghijklnrtuv]{8}$' "$WORK/recovery.key" || failed "the escrowed file $keyfile does not end with a recovery key"
echo "ok: installed; recovery key escrowed as $keyfile"

# The layout, read on the host: A holds v1, B is empty; root is LUKS2; the UKI is named for boot
# counting as the image's sysupdate.d UKI transfer expects (TriesLeft=1, TriesDone=0).
expect_slots 1 _empty
read -r root_partno _ _ <<<"$(gpt "$GUID_ROOT" | head -n 1)"
[ -n "$root_partno" ] || failed "no root partition on the installed disk"
root_start=$(sfdisk --json "$WORK/target.img" | jq -r --arg n "$root_partno" '.partitiontable.partitions[] | select(.node | endswith($n)) | .start')
[ "$(dd if="$WORK/target.img" bs=512 skip="$root_start" count=1 status=none | head -c 6 | od -An -tx1 | tr -d ' \n')" = 4c554b53babe ] \
        || failed "the root partition (partition $root_partno) is not LUKS"
uki=$(ukis)
[ "$uki" = "imprint-usr_1+1-0.efi" ] || failed "\$BOOT/EFI/Linux holds '$uki', not imprint-usr_1+1-0.efi"
recovery_entry_present || failed "\$BOOT/EFI/Linux has no imprint-recovery.efi beside the OS's UKI"
echo "ok: root (partition $root_partno) is LUKS; \$BOOT/EFI/Linux: $uki"

# --- boots of the installed disk ------------------------------------------------------------------
# boot_installed NAME ACTION [boot-image.sh options…]: the installed disk with the install's TPM
# state and firmware variables, imprint.action as a system credential; the log is
# $WORK/serial-NAME.log (and .stamps). The update disk, when wanted, is passed as --disk FILE:upd.
# ACTION may list several, comma-separated (doubled for QEMU, whose options escape a comma so).
BOOTS=0
boot_installed() {
        local name=$1 action=$2
        shift 2
        BOOTS=$((BOOTS + 1))
        run_stamped "$WORK/serial-$name.log" "$WORK/serial-$name.stamps" \
                bash "$here/boot-image.sh" "$WORK/target.img" --tpm-state "$WORK/tpm" --vars "$WORK/OVMF_VARS.fd" \
                --no-check --log "$WORK/serial-$name.log" --timeout 900 \
                --qemu-arg -smbios --qemu-arg "type=11,value=io.systemd.credential:imprint.action=${action//,/,,}" \
                --stop-after '^Please enter passphrase' \
                --stop-after 'You are in emergency mode' \
                --expect 'IMPRINT-CHECK-DONE' \
                "$@"
}
# expect_common LOG VERSION SLOT(A|B) MARKER(none|v1): what every boot of VERSION must show.
expect_common() {
        local log=$1 v=$2 s=$3 m=$4 val partno name uuid
        val=$(check_val "$log" version)
        [ "$val" = "$v" ] || failed "the system runs version '$val', not $v (serial log $log)"
        [ "$(check_val "$log" usr-verity)" = yes ] || failed "/usr is not on dm-verity (serial log $log)"
        val=$(check_val "$log" roothash)
        [ "$val" = "${ROOTHASH[$v]}" ] || failed "/usr's verity root hash is '$val', not v$v's ${ROOTHASH[$v]} (serial log $log)"
        read -r partno name uuid <<<"$(slot "$GUID_USR" "$s")"
        val=$(check_val "$log" usr-partlabel)
        [ "$val" = "imprint-usr_$v" ] || failed "/usr's data partition is named '$val', not imprint-usr_$v (serial log $log)"
        val=$(check_val "$log" usr-partuuid)
        [ "${val,,}" = "$uuid" ] || failed "/usr's data partition has UUID '$val': not slot $s's ($uuid, partition $partno) (serial log $log)"
        [ "$(check_val "$log" root-crypt)" = yes ] || failed "root is not on dm-crypt (serial log $log)"
        val=$(check_val "$log" root-unlock)
        [ "$val" = tpm2 ] || failed "root was unlocked by '$val', not by the TPM2 token (serial log $log)"
        val=$(check_val "$log" account)
        [ "$val" = alice ] || failed "the account is '$val', not alice (serial log $log)"
        val="$(check_val "$log" marker-home) $(check_val "$log" marker-etc)"
        [ "$val" = "$m $m" ] || failed "markers (home etc) are '$val', not '$m $m' (serial log $log)"
        echo "ok: v$v runs from slot $s (partition $partno, $name, $uuid) on dm-verity (root hash ${ROOTHASH[$v]:0:16}…); root dm-crypt unlocked by the TPM2; alice uid $(check_val "$log" uid); markers $m"
}
# expect_entry LOG GLOB: LoaderEntrySelected (sd-boot's ID: the file name, with or without the
# boot counter).
expect_entry() {
        local val
        val=$(check_val "$1" entry)
        # shellcheck disable=SC2053,SC2254  # a glob on purpose
        [[ ${val,,} == $2 ]] || failed "LoaderEntrySelected is '$val', not $2 (serial log $1)"
}
# expect_update LOG FROM TO: the update ran and succeeded; its time.
expect_update() {
        local log=$1 stamps=${1%.log}.stamps rc secs a b
        rc=$(check_val "$log" update-rc last)
        secs=$(check_val "$log" update-seconds last)
        [ "$rc" = 0 ] || {
                plain_log "$log" | grep -a 'IMPRINT-CHECK sysupdate:' | tail -n 20
                failed "systemd-sysupdate update from v$2 to v$3 exited with '$rc' (serial log $log)"
        }
        # The guest prints update-source= just before it starts systemd-sysupdate (and relays its
        # output afterwards).
        a=$(stamp_of "$stamps" 'IMPRINT-CHECK update-source=' first)
        b=$(stamp_of "$stamps" 'IMPRINT-CHECK update-rc=' last)
        MEASURED+=("update v$2 -> v$3: ${secs}s in the guest (update-seconds), $( [ -n "$a" ] && [ -n "$b" ] && since "$a" "$b" || echo '?')s on the host clock")
        echo "ok: systemd-sysupdate updated v$2 to v$3 in ${secs}s; slots now $(check_val "$log" slots last), UKIs $(check_val "$log" uki last)"
}
# uki_list: the guest's uki= of LOG (first|last) as the host sees the ESP now.
expect_ukis_on_disk() {
        local val
        val=$(ukis)
        [[ $val =~ $1 ]] || failed "\$BOOT/EFI/Linux holds '$val', expected /$1/"
        echo "ok: \$BOOT/EFI/Linux: $val"
}

# Boot 1: v1, first boot. The account made by systemd-homed from imprint's credentials, the entry
# blessed by systemd-bless-boot; then the markers, then sysupdate to v2 (into the B slot) — one
# boot for both, as every boot under TCG costs two minutes.
echo "== boot 1: v1, first boot (imprint.action=mark,update): markers, then update to v2"
make_update_disk 2 "$WORK/update-v2.img"
t=$EPOCHREALTIME
boot_installed v1-first mark,update --disk "$WORK/update-v2.img:upd" || failed "the first boot of the installed v1 (serial log $WORK/serial-v1-first.log)"
expect_common "$WORK/serial-v1-first.log" 1 A none
expect_entry "$WORK/serial-v1-first.log" 'imprint-usr_1*.efi'
[ "$(check_val "$WORK/serial-v1-first.log" blessed)" = yes ] || failed "the v1 entry was not blessed (serial log $WORK/serial-v1-first.log)"
[ "$(check_val "$WORK/serial-v1-first.log" slots)" = "imprint-usr_1,_empty" ] \
        || failed "the guest sees the usr slots as '$(check_val "$WORK/serial-v1-first.log" slots)', not imprint-usr_1,_empty"
[ "$(check_val "$WORK/serial-v1-first.log" marked)" = v1 ] || failed "the first boot wrote no markers (serial log $WORK/serial-v1-first.log)"
expect_update "$WORK/serial-v1-first.log" 1 2
phase_done "boot v1 (first boot, markers, update to v2)" "$t"
expect_slots 1 2
# The v1 file lost its counter: systemd-bless-boot renamed it after the good boot.
expect_ukis_on_disk '^imprint-usr_1\.efi,imprint-usr_2\+1-0\.efi$'
echo "ok: the v1 entry was blessed (sd-boot counted the try, systemd-bless-boot dropped the counter)"

# Boot 3: v2 from B, v1 still in A (slots= in the guest names both); sysupdate to v3 (into A).
echo "== boot 3: v2 from the B slot, update to v3"
make_update_disk 3 "$WORK/update-v3.img"
t=$EPOCHREALTIME
boot_installed v2 update --disk "$WORK/update-v3.img:upd" || failed "booting v2 (serial log $WORK/serial-v2.log)"
expect_common "$WORK/serial-v2.log" 2 B v1
expect_entry "$WORK/serial-v2.log" 'imprint-usr_2*.efi'
[ "$(check_val "$WORK/serial-v2.log" blessed)" = yes ] || failed "the v2 entry was not blessed (serial log $WORK/serial-v2.log)"
val=$(check_val "$WORK/serial-v2.log" slots)
[ "$val" = "imprint-usr_1,imprint-usr_2" ] || failed "the guest running v2 sees the usr slots as '$val', not imprint-usr_1,imprint-usr_2"
echo "ok: v2 runs from the B slot while v1 is still on disk (slots $val), its entry blessed"
expect_update "$WORK/serial-v2.log" 2 3
phase_done "boot v2 + update to v3" "$t"
expect_slots 3 2
expect_ukis_on_disk '^imprint-usr_2\.efi,imprint-usr_3\+1-0\.efi$'

# Boot 4: v3 from A (reused); sysupdate to the broken v4 (into B).
echo "== boot 4: v3 from the A slot, update to v4"
make_update_disk 4 "$WORK/update-v4.img"
t=$EPOCHREALTIME
boot_installed v3 update --disk "$WORK/update-v4.img:upd" || failed "booting v3 (serial log $WORK/serial-v3.log)"
expect_common "$WORK/serial-v3.log" 3 A v1
expect_entry "$WORK/serial-v3.log" 'imprint-usr_3*.efi'
[ "$(check_val "$WORK/serial-v3.log" blessed)" = yes ] || failed "the v3 entry was not blessed (serial log $WORK/serial-v3.log)"
val=$(check_val "$WORK/serial-v3.log" slots)
[ "$val" = "imprint-usr_3,imprint-usr_2" ] || failed "the guest running v3 sees the usr slots as '$val', not imprint-usr_3,imprint-usr_2"
echo "ok: v3 reuses the A slot (slots $val), its entry blessed"
expect_update "$WORK/serial-v3.log" 3 4
phase_done "boot v3 + update to v4" "$t"
expect_slots 3 4
expect_ukis_on_disk '^imprint-usr_3\.efi,imprint-usr_4\+1-0\.efi$'
rm -f "$WORK"/update-v*.img

# The broken v4: every try boots it, imprint-broken.service fails before boot-complete.target,
# the entry is not blessed, the guest powers off; sd-boot counted the try in the file name.
tries=$(ukis | grep -o 'imprint-usr_4+[0-9]*' | sed 's/.*+//')
[ -n "$tries" ] && [ "$tries" -gt 0 ] || failed "no v4 UKI with tries left: $(ukis)"
n=0
while [ "$n" -lt "$tries" ]; do
        n=$((n + 1))
        echo "== boot $((4 + n)): the broken v4, try $n of $tries"
        t=$EPOCHREALTIME
        log=$WORK/serial-v4-try$n.log
        boot_installed "v4-try$n" check --expect 'IMPRINT-CHECK broken-boot version=4' || failed "the broken v4, try $n (serial log $log)"
        expect_common "$log" 4 B v1
        expect_entry "$log" 'imprint-usr_4*.efi'
        [ "$(check_val "$log" blessed)" = no ] || failed "the broken v4 entry was blessed (serial log $log)"
        phase_done "boot v4 (broken, try $n)" "$t"
        expect_ukis_on_disk "^imprint-usr_3\\.efi,imprint-usr_4\\+$((tries - n))-$n\\.efi\$"
done

# sd-boot now sorts the exhausted v4 last and starts v3.
echo "== boot $((5 + tries)): sd-boot falls back to v3"
t=$EPOCHREALTIME
boot_installed v3-fallback check || failed "booting after v4's tries ran out (serial log $WORK/serial-v3-fallback.log)"
log=$WORK/serial-v3-fallback.log
expect_common "$log" 3 A v1
expect_entry "$log" 'imprint-usr_3*.efi'
val=$(check_val "$log" uki)
[[ $val =~ (^|,)imprint-usr_4\+0-$tries\.efi(,|$) ]] || failed "the guest sees the UKIs '$val': no imprint-usr_4+0-$tries.efi"
phase_done "boot v3 (fallback)" "$t"
echo "ok: after $tries failed tries of v4 sd-boot selected $(check_val "$log" entry) (v3); the v4 UKI is imprint-usr_4+0-$tries.efi"

report_times
echo "PASS: imprint-usr v1 installed (encrypted, TPM2, alice), updated to v2 (B) and v3 (A) by stock systemd-sysupdate, broken v4 tried $tries times, fallback to v3; $BOOTS boots of the installed disk"
