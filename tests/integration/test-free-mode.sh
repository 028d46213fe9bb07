#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Dual boot beside Windows: a disk with a small ESP holding the Windows Boot Manager, an MSR and
# an NTFS data partition. imprint --free keeps all three, reuses the ESP untouched, adds an
# XBOOTLDR partition for UKIs and a root in the free space.
. "$(dirname "$0")/lib.sh"
need_tool sfdisk
need_tool jq
need_tool mkfs.vfat
need_tool mcopy

img=$WORK/windows.img
truncate -s 20G "$img"
sfdisk -q "$img" <<'SFDISK'
label: gpt
size=260MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI system partition"
size=16MiB, type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE, name="Microsoft reserved partition"
size=8GiB, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="Basic data partition"
SFDISK
# 512-byte clusters: the default 4 KiB clusters give too few for FAT32 at this size.
mkfs.vfat -F 32 -s 1 --offset 2048 "$img" $((260 * 1024)) >/dev/null
mmd -i "$img@@1M" ::/EFI ::/EFI/Microsoft ::/EFI/Microsoft/Boot
echo "not really bootmgfw" >"$WORK/bootmgfw.efi"
mcopy -i "$img@@1M" "$WORK/bootmgfw.efi" ::/EFI/Microsoft/Boot/bootmgfw.efi
sfdisk --json "$img" >"$WORK/before.json"
esp_sum=$(dd if="$img" bs=1M skip=1 count=260 status=none | sha256sum)

"$IMPRINT" disks --json "$img" >"$WORK/disk.json"
jq -e '.[0].installed | any(test("Windows Boot Manager"))' "$WORK/disk.json" >/dev/null \
        || { cat "$WORK/disk.json" >&2; fail "disks does not see the Windows Boot Manager on the ESP"; }
pass "disks sees the Windows Boot Manager"

"$IMPRINT" plan --free --target "$img" --seed dualboot --plan-file "$WORK/plan.json" >"$WORK/table"
jq -e '[.partitions[] | {role, action, partno}] == [
        {"role":"esp","action":"keep","partno":1},
        {"role":"xbootldr","action":"create","partno":4},
        {"role":"root","action":"create","partno":5}]' "$WORK/plan.json" >/dev/null \
        || { cat "$WORK/plan.json" >&2; fail "unexpected free-mode plan"; }
jq -e '.destroyed == []' "$WORK/plan.json" >/dev/null || fail "free mode must destroy nothing"
grep -q "free space" "$WORK/table" || fail "the table does not say free-space mode"
pass "plan keeps the ESP, adds XBOOTLDR and root, destroys nothing"

"$IMPRINT" apply --plan-file "$WORK/plan.json" --yes >/dev/null
compare_with_sfdisk "$WORK/plan.json" "$img"

# The three Windows partitions are exactly as before, and so is the ESP's content.
sfdisk --json "$img" >"$WORK/after.json"
jq -e --slurpfile b "$WORK/before.json" '
        ($b[0].partitiontable.partitions) as $old
        | (.partitiontable.id == $b[0].partitiontable.id)
        and ([.partitiontable.partitions[] | select(.node | test("[123]$"))] == $old)
' "$WORK/after.json" >/dev/null || fail "existing partitions changed"
[ "$(dd if="$img" bs=1M skip=1 count=260 status=none | sha256sum)" = "$esp_sum" ] || fail "the kept ESP was modified"
mdir -b -i "$img@@1M" ::/EFI/Microsoft/Boot | grep -q bootmgfw.efi || fail "the Windows loader is gone"
pass "Windows partitions, disk GUID and ESP content unchanged"

start=$(jq -r '.partitions[] | select(.role=="xbootldr") | .start' "$WORK/plan.json")
[ "$(blkid -p -o value -s TYPE -O "$start" "$img")" = vfat ] || fail "XBOOTLDR is not FAT"
pass "XBOOTLDR formatted as FAT"
