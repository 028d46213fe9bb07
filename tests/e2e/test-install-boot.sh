#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The referee: imprint installs the real test image (Debian trixie, systemd 257, a UKI) into an
# image file, without privileges beyond writing it, and that file boots under QEMU + OVMF +
# swtpm: systemd-boot starts the UKI, root is found by gpt-auto with no root= on the command
# line, the system reaches multi-user, and the root filesystem grew to fill its partition.
set -euo pipefail
here=$(dirname "$0")
IMPRINT=${IMPRINT:-$here/../../build/imprint}
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/imprint-e2e.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
SECONDS=0

phase() { printf '== %s (%ds so far)\n' "$*" "$SECONDS"; }

phase "building (or reusing) the test image"
src=$(bash "$here/../image/build-ddi.sh")
echo "image: $src"

phase "installing it into a 4 GiB image file"
truncate -s 4G "$WORK/disk.img"
"$IMPRINT" install --source "$src" --target "$WORK/disk.img" --seed e2e --yes

root_part=$(sfdisk --json "$WORK/disk.img" | jq '.partitiontable.partitions[] | select(.type == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709") | .size * 512')
phase "booting the installed disk alone (root partition $root_part bytes)"
bash "$here/boot-image.sh" "$WORK/disk.img" --timeout 400 \
        --expect "IMPRINT-CHECK root-part-bytes=$root_part" \
        --expect 'IMPRINT-CHECK root-fs-bytes=3[0-9]{9}' \
        --expect 'IMPRINT-CHECK root-partlabel=imprint-test_1'
phase "done"
echo "e2e: install + boot passed in ${SECONDS}s"
