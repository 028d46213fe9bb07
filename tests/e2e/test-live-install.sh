#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-live-install.sh [--interactive] [--keep] — the live medium, booted under QEMU + OVMF +
# swtpm with a blank 8 GiB target disk (serial "target", /dev/disk/by-id/virtio-target).
#
# Default (unattended): the install configuration reaches the medium as the system credential
# imprint.config, passed by QEMU as an SMBIOS type 11 string
#   -smbios type=11,value=io.systemd.credential.binary:imprint.config=BASE64(JSON)
# (base64 avoids QEMU's comma escaping). PID 1 imports it, imprint-unattended.service runs
# "imprint unattended", which prints JSON progress on the serial console, installs the image the
# medium carries, and powers off. The run must show {"event":"result","success":true}. Then the
# target boots alone, with the same TPM state and the same firmware variables (imprint made a
# boot entry there), and must pass the test image's boot checks (sd-boot started the UKI, root
# from gpt-auto, multi-user, IMPRINT-CHECK-DONE), list an ESP and a root partition, and have the
# root partition named imprint-test_1.
#
# --interactive: no credential; imprint@ttyS0.service must show imprint's first screen
# ("Welcome to imprint") on the serial console; the VM is then stopped (boot-image.sh
# --stop-after), which counts as success.
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
        --keep) KEEP=1 ;;
        -h | --help) sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
        esac
        shift
done

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (the live medium is built in a chroot)"; exit 77; }
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
if ! command -v qemu-img >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-utils >/dev/null
fi

WORK=$(mktemp -d /var/tmp/imprint-live-e2e.XXXXXX)
cleanup() {
        local rc=$?
        if [ "$KEEP" = 0 ]; then
                rm -rf "$WORK/tpm"
                rm -f "$WORK/target.img" "$WORK/live.qcow2" "$WORK/OVMF_VARS.fd"
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

# imprint --plain's first line. Not systemd's "Welcome to <PRETTY_NAME>!" line.
WELCOME='Welcome to imprint([.!,:]|$)'

if [ "$MODE" = interactive ]; then
        echo "== live boot, interactive: imprint's first screen on the serial console"
        t=$EPOCHREALTIME
        "${BOOT[@]}" --log "$WORK/live-serial.log" --timeout 400 \
                --stop-after "$WELCOME" --expect "$WELCOME" \
                || failed "imprint's first screen did not appear (serial log $WORK/live-serial.log)"
        phase_done "live boot to first screen" "$t"
        report_times
        echo "PASS: live medium, interactive"
        exit 0
fi

# --- unattended install from the live medium ----------------------------------------------------
config=$(printf '{"source":"%s","target":"/dev/disk/by-id/virtio-target","seed":"e2e-live","afterInstall":"poweroff","onFailure":"poweroff"}' "$source_image")
echo "== live boot + unattended install; imprint.config: $config"
t=$EPOCHREALTIME
"${BOOT[@]}" --log "$WORK/live-serial.log" --timeout 900 \
        --qemu-arg -smbios --qemu-arg "type=11,value=io.systemd.credential.binary:imprint.config=$(printf '%s' "$config" | base64 -w0)" \
        --stop-after 'imprint-unattended\.service failed:' \
        --expect '"event": ?"result".*"success": ?true' \
        || failed "unattended install (serial log $WORK/live-serial.log)"
phase_done "live boot+install" "$t"

# --- the installed disk, alone ------------------------------------------------------------------
echo "== target boot"
t=$EPOCHREALTIME
bash "$here/boot-image.sh" "$WORK/target.img" --tpm-state "$WORK/tpm" --vars "$WORK/OVMF_VARS.fd" \
        --log "$WORK/target-serial.log" --timeout 400 \
        --expect 'IMPRINT-CHECK lsblk: .*PARTTYPE="c12a7328-f81f-11d2-ba4b-00a0c93ec93b"' \
        --expect 'IMPRINT-CHECK lsblk: .*PARTTYPE="4f68bce3-e8cd-4db1-96e7-fbcaf984b709"' \
        --expect 'IMPRINT-CHECK root-partlabel=imprint-test_1' \
        --expect 'IMPRINT-CHECK loader-image-identifier=\\EFI\\systemd\\systemd-bootx64\.efi' \
        || failed "booting the installed target (serial log $WORK/target-serial.log)"
# The firmware started systemd-boot through the "Linux Boot Manager" entry imprint added to its
# variables during the install (same OVMF VARS file), not through the removable-media fallback
# EFI/BOOT/BOOTX64.EFI: the line above shows the path it was loaded from.
phase_done "target boot" "$t"

report_times
echo "PASS: live medium, unattended install, installed system boots"
