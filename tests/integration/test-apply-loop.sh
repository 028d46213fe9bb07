#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# imprint apply on loop devices (root): the kernel sees the new partitions, and stock sfdisk,
# blkid and systemd-dissect agree with the plan. Also dissects an applied image file.
. "$(dirname "$0")/lib.sh"
need_root "loop devices and systemd-dissect"
need_tool jq
need_tool systemd-dissect

# 1. A loop device attached with partition scanning, holding an old MBR and filesystem.
img=$WORK/a.img
truncate -s 6G "$img"
printf 'label: dos\n,1G,83\n' | sfdisk -q "$img"
mkfs.ext4 -q -F -E offset=1048576 "$img" 1G
attach "$img"
dev=$ATTACHED

"$IMPRINT" plan --target "$dev" --seed loop-a --no-encrypt --home-size rest --root-size 3G --json >"$WORK/plan.json"
jq -e '.destroyed | length == 1' "$WORK/plan.json" >/dev/null || fail "the old MBR partition is not listed as destroyed"
"$IMPRINT" apply --target "$dev" --seed loop-a --no-encrypt --home-size rest --root-size 3G --yes >"$WORK/out" \
        || { cat "$WORK/out" >&2; fail "apply on $dev failed"; }
compare_with_sfdisk "$WORK/plan.json" "$dev"
pass "sfdisk $dev matches the plan"

for n in 1 2 3; do
        [ -b "${dev}p$n" ] || fail "${dev}p$n does not exist after apply"
done
[ "$(blkid -p -o value -s TYPE "${dev}p1")" = vfat ] || fail "${dev}p1 is not vfat"
[ "$(blkid -p -o value -s TYPE "${dev}p2")" = ext4 ] || fail "${dev}p2 is not ext4"
[ "$(blkid -p -o value -s PART_ENTRY_UUID "${dev}p2")" = "$(jq -r '.partitions[1].uuid' "$WORK/plan.json")" ] \
        || fail "PARTUUID of ${dev}p2 differs from the plan"
pass "partition nodes exist and hold the planned filesystems"

compare_with_dissect "$WORK/plan.json" "$dev"
pass "systemd-dissect $dev finds esp, root and home as planned"

# The old MBR partition's ext4 signature is gone from the disk.
if blkid -p -o value -s TYPE -O 1048576 "$img" | grep -q ext4; then
        fail "the old ext4 signature survived at 1 MiB"
fi
pass "old signatures wiped"

# 2. A loop device attached without partition scanning: imprint turns scanning on.
img2=$WORK/b.img
truncate -s 4G "$img2"
attach "$img2" --no-partscan
dev2=$ATTACHED
"$IMPRINT" apply --target "$dev2" --seed loop-b --no-encrypt --yes >/dev/null
[ -b "${dev2}p2" ] || fail "${dev2}p2 did not appear on a loop device without partscan"
pass "partitions appear on a loop device attached without --partscan"

# 3. An image file applied without loop devices is a valid DDI for systemd-dissect.
img3=$WORK/c.img
truncate -s 5G "$img3"
"$IMPRINT" plan --target "$img3" --seed file-c --swap-size 256M --home-size 1G --plan-file "$WORK/plan3.json" >/dev/null
"$IMPRINT" apply --plan-file "$WORK/plan3.json" --yes >/dev/null
compare_with_dissect "$WORK/plan3.json" "$img3"
pass "systemd-dissect on the image file finds esp, swap, root and home as planned"
