#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# sb-firmware-check.sh [--record DIR] — the firmware side of issue 17's Secure Boot proof, without
# the installer's Secure Boot support: the signed test image (tests/image/build-signed-ddi.sh)
# installed by imprint into an image file on the host (no encryption, --no-variables), then by
# hand (mtools) what the installer does in setup mode: the image's loader/keys/auto/*.auth copied
# to the target ESP and "secure-boot-enroll force" added to loader/loader.conf. Then under QEMU
# with the Secure Boot build of OVMF (tests/e2e/boot-image.sh --secure-boot) and a fresh variable
# store (OVMF_VARS_4M.fd: no PK, setup mode):
#   boot 1  systemd-boot enrolls db, KEK, PK and resets ("Custom Secure Boot keys successfully
#           enrolled"); the machine comes up again in the same run with Secure Boot on: bootctl
#           says "Secure Boot: enabled (user)", SecureBoot=1, SetupMode=0, PK/KEK/db are the
#           image's, the kernel is locked down (integrity), the signed UKI started;
#   boot 2  the same variables: no enrollment again, Secure Boot on, PCR 7 as on boot 1;
#   boot 3  the UKI on the ESP swapped for the unsigned one of build-ddi.sh: systemd-boot cannot
#           load it ("Access denied"), no kernel starts;
#   boot 4  one more dbx entry written offline into the enrolled store (ovmf-vars-pcr7.sh): the
#           firmware accepts the edited store, Secure Boot stays on, dbx holds the entry, PCR 7
#           differs from boot 2's.
# Phase times are printed. --record DIR writes boot 2's efivarfs files (the guest's own, from
# check.d/40-secureboot's "efivar" lines) into DIR, named as in efivarfs. Needs root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
RECORD=
while [ $# -gt 0 ]; do
        case $1 in
        --record) RECORD=${2:?}; shift ;;
        *) echo "usage: $0 [--record DIR]" >&2; exit 2 ;;
        esac
        shift
done
IMPRINT=${IMPRINT:-$top/build/imprint}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
export PATH=/usr/sbin:/usr/bin:/sbin:/bin MTOOLS_SKIP_CHECK=1
WORK=$(mktemp -d /var/tmp/imprint-sbfw.XXXXXX)
STAMP_PID=
BOOTS=0
# shellcheck source=lib-rig.sh
. "$here/lib-rig.sh"
trap 'rm -f "$WORK"/*.img "$WORK"/*.fd; rm -rf "$WORK/tpm"; echo "work directory: $WORK (logs only)"' EXIT

t=$EPOCHREALTIME
sbimg=$(bash "$top/tests/image/build-signed-ddi.sh") || failed "building the signed test image"
plain=$(bash "$top/tests/image/build-ddi.sh") || failed "building the test image"
keys=${sbimg%/*}/keys
phase_done "images" "$t"

t=$EPOCHREALTIME
truncate -s 4G "$WORK/disk.img"
"$IMPRINT" install --source "$sbimg" --target "$WORK/disk.img" --seed sbfw --yes --no-variables >"$WORK/install.log" 2>&1 \
        || failed "imprint install (log $WORK/install.log)"
esp=$(sfdisk --json "$WORK/disk.img" | jq '.partitiontable.partitions[] | select(.type == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B") | .start * 512')
E="$WORK/disk.img@@$esp"
for f in EFI/systemd/systemd-bootx64.efi EFI/BOOT/BOOTX64.EFI EFI/Linux/imprint-test_1.efi; do
        mcopy -n -i "$E" "::/$f" "$WORK/x.efi"
        sbverify --cert "$keys/db.crt" "$WORK/x.efi" >/dev/null 2>&1 || failed "$f on the installed ESP is not signed by the image's db key"
done
echo "ok: imprint installed systemd-boot (both paths) and the UKI signed by the image's db key (sbverify)"
mmd -i "$E" ::/loader/keys 2>/dev/null || true         # imprint may have made them already
mmd -i "$E" ::/loader/keys/auto 2>/dev/null || true
for k in PK KEK db; do mcopy -o -i "$E" "$keys/$k.auth" "::/loader/keys/auto/$k.auth"; done
{ mtype -i "$E" ::/loader/loader.conf; echo "secure-boot-enroll force"; } >"$WORK/loader.conf"
mcopy -o -i "$E" "$WORK/loader.conf" ::/loader/loader.conf
echo "loader.conf: $(tr '\n' ';' <"$WORK/loader.conf")"
phase_done "install + keys by hand" "$t"

C='IMPRINT-CHECK check.d/40-secureboot:'
sb_boot() {     # sb_boot NAME VARS boot-image.sh options…
        local name=$1 vars=$2
        shift 2
        run_stamped "$WORK/$name.log" "$WORK/$name.stamps" bash "$here/boot-image.sh" "$WORK/disk.img" --secure-boot --reboot \
                --vars "$vars" --tpm-state "$WORK/tpm" --log "$WORK/$name.log" --timeout 700 "$@"
}

echo "== boot 1: setup mode; systemd-boot enrolls and resets, then Secure Boot is on"
t=$EPOCHREALTIME
cp /usr/share/OVMF/OVMF_VARS_4M.fd "$WORK/vars.fd"
sb_boot boot1 "$WORK/vars.fd" \
        --expect '^Enrolling secure boot keys from directory: \\loader\\keys\\auto' \
        --expect 'Custom Secure Boot keys successfully enrolled, rebooting the system now!' \
        --expect 'EFI stub: UEFI Secure Boot is enabled' \
        --expect 'IMPRINT-CHECK bootctl: Secure Boot: enabled \(user\)' \
        --expect "$C secure-boot=1" --expect "$C setup-mode=0" --expect "$C lockdown=.*\\[integrity\\]" \
        --expect "$C pk=CN=imprint test PK" --expect "$C kek=CN=imprint test KEK" --expect "$C db=CN=imprint test db" \
        || failed "boot 1 (serial log $WORK/boot1.log)"
t_enr=$(stamp_of "$WORK/boot1.stamps" 'Enrolling secure boot keys' first)
t_done=$(stamp_of "$WORK/boot1.stamps" 'successfully enrolled' first)
t_fw2=$(stamp_of "$WORK/boot1.stamps" 'BdsDxe: (loading|starting) Boot' last)
t_k=$(stamp_of "$WORK/boot1.stamps" 'Linux version [0-9]' first)
MEASURED+=("boot 1: enrollment $(since "$t_enr" "$t_done") s (no countdown in a VM), reset to firmware's next boot option $(since "$t_done" "$t_fw2") s, to the kernel $(since "$t_done" "$t_k") s")
[ "$(plain_log "$WORK/boot1.log" | grep -c 'Linux version [0-9]')" = 1 ] || failed "boot 1 started more than one kernel"
phase_done "boot 1 (enroll + reset + boot)" "$t"

echo "== boot 2: the same variables: Secure Boot on, no enrollment"
t=$EPOCHREALTIME
sb_boot boot2 "$WORK/vars.fd" \
        --expect 'IMPRINT-CHECK bootctl: Secure Boot: enabled \(user\)' --expect "$C secure-boot=1" \
        || failed "boot 2 (serial log $WORK/boot2.log)"
! grep -aq 'Enrolling secure boot keys' "$WORK/boot2.log" || failed "boot 2 enrolled keys again"
pcr7_1=$(check_val "$WORK/boot1.log" pcr7)
pcr7_2=$(check_val "$WORK/boot2.log" pcr7)
[ -n "$pcr7_2" ] && [ "$pcr7_1" = "$pcr7_2" ] || failed "PCR 7 differs between boot 1 and boot 2 ($pcr7_1, $pcr7_2)"
echo "ok: PCR 7 with the image's keys enrolled: $pcr7_2 (the same on boots 1 and 2)"
if [ -n "$RECORD" ]; then
        mkdir -p "$RECORD"
        plain_log "$WORK/boot2.log" | grep -ao "$C efivar [^ ]* [A-Za-z0-9+/=]*" | while read -r _ _ _ name b64; do
                printf '%s' "$b64" | base64 -d >"$RECORD/$name"
        done
        echo "recorded: $(ls "$RECORD" | tr '\n' ' ')"
fi
phase_done "boot 2 (Secure Boot on)" "$t"

echo "== boot 3: an unsigned UKI is refused"
t=$EPOCHREALTIME
cp --sparse=always "$WORK/disk.img" "$WORK/disk-signed.img"
mcopy -o -i "$E" "${plain%/*}/imprint-test_1.efi" ::/EFI/Linux/imprint-test_1.efi
cp "$WORK/vars.fd" "$WORK/vars3.fd"
sb_boot boot3 "$WORK/vars3.fd" --no-check --timeout 300 \
        --stop-after 'Linux version [0-9]' --stop-after 'Error loading .*imprint-test_1\.efi' \
        --expect 'Error loading \\EFI\\Linux\\imprint-test_1\.efi: Access denied' \
        || failed "boot 3 (serial log $WORK/boot3.log)"
! grep -aq 'Linux version [0-9]' "$WORK/boot3.log" || failed "the unsigned UKI started a kernel"
mv "$WORK/disk-signed.img" "$WORK/disk.img"
phase_done "boot 3 (unsigned UKI refused)" "$t"

echo "== boot 4: one more dbx entry, written offline into the enrolled store"
t=$EPOCHREALTIME
bash "$here/ovmf-vars-pcr7.sh" "$WORK/vars.fd" "$WORK/vars4.fd"
sb_boot boot4 "$WORK/vars4.fd" \
        --expect 'IMPRINT-CHECK bootctl: Secure Boot: enabled \(user\)' --expect "$C secure-boot=1" \
        --expect "$C dbx-bytes=76" \
        || failed "boot 4 (serial log $WORK/boot4.log)"
pcr7_4=$(check_val "$WORK/boot4.log" pcr7)
[ -n "$pcr7_4" ] && [ "$pcr7_4" != "$pcr7_2" ] || failed "PCR 7 did not change with the dbx entry ($pcr7_2, then $pcr7_4)"
echo "ok: the edited store is accepted, Secure Boot stays on, PCR 7 changed ($pcr7_4)"
phase_done "boot 4 (dbx entry)" "$t"

report_times
echo "PASS: setup mode -> enrollment by systemd-boot -> Secure Boot on with the image's keys; unsigned UKI refused; dbx edit accepted"
