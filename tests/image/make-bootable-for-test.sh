#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# make-bootable-for-test.sh IMAGE OUT — THROWAWAY HELPER, NOT THE INSTALLER.
#
# Exists only to validate the test DDI (build-ddi.sh) and the QEMU rig (tests/e2e/boot-image.sh)
# before imprint can install anything: it copies IMAGE to OUT (sparse) and does by hand the one
# thing the installer will do for booting — put the image's own systemd-boot on the ESP:
#   /EFI/BOOT/BOOTX64.EFI and /EFI/systemd/systemd-bootx64.efi (from the root's
#   usr/lib/systemd/boot/efi/, read with debugfs), /loader/loader.conf "timeout 0".
# No EFI Boot#### entry is made: OVMF finds the removable-media path /EFI/BOOT/BOOTX64.EFI.
# Nothing is mounted and no loop device is used. Replace its uses with imprint once it installs.
#
#   tests/image/make-bootable-for-test.sh "$(tests/image/build-ddi.sh)" /var/tmp/bootable.raw
#   tests/e2e/boot-image.sh /var/tmp/bootable.raw
set -euo pipefail

host_packages=(e2fsprogs mtools fdisk coreutils)

ESP_TYPE=c12a7328-f81f-11d2-ba4b-00a0c93ec93b
ROOT_TYPE=4f68bce3-e8cd-4db1-96e7-fbcaf984b709
SDBOOT=/usr/lib/systemd/boot/efi/systemd-bootx64.efi

[ $# = 2 ] || { sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
IMAGE=$1
OUT=$2
[ -f "$IMAGE" ] || { echo "no such image: $IMAGE" >&2; exit 2; }

missing=()
for p in "${host_packages[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export MTOOLS_SKIP_CHECK=1

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# partition_offset TYPE: byte offset of the first partition of that type in $OUT
partition_offset() {
        sfdisk --dump "$OUT" | awk -v type="$1" '
                /^[^ ].* : start=/ {
                        t = tolower($0); sub(/.*type=/, "", t); sub(/,.*/, "", t)
                        if (t == type) { s = $0; sub(/.*start= */, "", s); sub(/,.*/, "", s); print s * 512; exit }
                }'
}

cp --sparse=always "$IMAGE" "$OUT"
esp=$(partition_offset "$ESP_TYPE")
root=$(partition_offset "$ROOT_TYPE")
if [ -z "$esp" ] || [ -z "$root" ]; then
        echo "$IMAGE has no ESP or no x86-64 root partition" >&2
        exit 1
fi

debugfs -R "dump $SDBOOT $TMP/systemd-bootx64.efi" "$OUT?offset=$root" 2>/dev/null
[ -s "$TMP/systemd-bootx64.efi" ] || { echo "no $SDBOOT in the root file system" >&2; exit 1; }
printf 'timeout 0\n' >"$TMP/loader.conf"

ESP="$OUT@@$esp"
mmd -D s -i "$ESP" ::/EFI/BOOT ::/EFI/systemd ::/loader 2>/dev/null || true
mcopy -o -i "$ESP" "$TMP/systemd-bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -o -i "$ESP" "$TMP/systemd-bootx64.efi" ::/EFI/systemd/systemd-bootx64.efi
mcopy -o -i "$ESP" "$TMP/loader.conf" ::/loader/loader.conf
mdir -/ -b -i "$ESP" ::/ >&2
echo "$OUT"
