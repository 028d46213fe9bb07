#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# imprint install onto a loop device (root): partition nodes, mkfs and mtools through the nodes,
# BLKZEROOUT for skipped ranges. The old content of the disk must not survive in the root
# partition's copied range, and stock systemd-dissect must see a bootable DDI.
. "$(dirname "$0")/lib.sh"
need_root "loop devices"
need_tool jq
need_tool objcopy
need_tool debugfs
need_tool systemd-dissect

src=$WORK/fakeos.img
bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 300

# A disk full of old data: every byte non-zero, so a skipped hole that is not zeroed shows.
tgt=$WORK/disk.img
truncate -s 4G "$tgt"
/usr/bin/python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    block = b"\xa5" * (1 << 20)
    for _ in range(2048):
        f.write(block)
' "$tgt"
attach "$tgt"
dev=$ATTACHED

"$IMPRINT" plan --source "$src" --target "$dev" --seed loop --no-encrypt --plan-file "$WORK/plan.json" >/dev/null
"$IMPRINT" install --plan-file "$WORK/plan.json" --yes >"$WORK/out" || { cat "$WORK/out" >&2; fail "install onto $dev failed"; }
compare_with_sfdisk "$WORK/plan.json" "$dev"
pass "sfdisk $dev matches the plan"

s_off=$(jq -r '.source.partitions[0].start' "$WORK/plan.json")
s_len=$(jq -r '.source.partitions[0].size' "$WORK/plan.json")
root_partno=$(jq -r '.partitions[] | select(.role == "root") | .partno' "$WORK/plan.json")
same_root_files "$src" "$s_off" "${dev}p$root_partno" || fail "the installed root differs from the image's root"
pass "root partition on $dev holds the image's files (the verify step read the copy back byte for byte)"

[ "$(blkid -p -o value -s TYPE "${dev}p1")" = vfat ] || fail "${dev}p1 is not vfat"
MTOOLS_SKIP_CHECK=1 mdir -b -i "${dev}p1" ::/EFI/Linux | grep -q fakeos_7.efi || fail "the UKI is not on ${dev}p1"
systemd-dissect --json=short "$dev" >"$WORK/dissect.json" 2>"$WORK/dissect.err" || { cat "$WORK/dissect.err" >&2; fail "systemd-dissect failed"; }
jq -e '.useBootableUefi == true and ([.mounts[].designator] | sort) == ["esp", "root"]
       and (.mounts[] | select(.designator == "root") | .fstype == "ext4" and .growfs == true)' "$WORK/dissect.json" >/dev/null \
        || { cat "$WORK/dissect.json" >&2; fail "systemd-dissect does not see a bootable DDI"; }
grep -q "Imprint Fake OS 7 is installed on $dev" "$WORK/out" || fail "no success message"
pass "systemd-dissect sees a bootable UEFI image with a growfs root"
