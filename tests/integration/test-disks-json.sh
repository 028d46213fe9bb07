#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# imprint disks --json lists the loop devices this test sets up, with the right sizes, sector
# sizes, transport and partition types, as libblkid and sysfs report them.
. "$(dirname "$0")/lib.sh"
need_root "loop devices"
need_tool jq

a=$WORK/a.img
b=$WORK/b.img
truncate -s 5G "$a"
truncate -s 3500M "$b"
sfdisk -q "$a" <<'SFDISK'
label: gpt
size=512MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="ESP"
size=2GiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="root-x86-64", attrs="GUID:59"
type=933AC7E1-2EB4-4F13-B844-0E14E2AEF915, name="home"
SFDISK
mkfs.vfat -F 32 --offset 2048 "$a" $((512 * 1024)) >/dev/null
mkdir -p "$WORK/rootfs/etc"
printf 'NAME="Imprint Test OS"\nPRETTY_NAME="Imprint Test OS 42"\nID=imprinttest\n' >"$WORK/rootfs/etc/os-release"
mkfs.ext4 -q -F -d "$WORK/rootfs" -E offset=$((513 * 1024 * 1024)) "$a" 2G
attach "$a"
deva=$ATTACHED
attach "$b"
devb=$ATTACHED

"$IMPRINT" disks --json >"$WORK/disks.json"

jq -e --arg d "$deva" --arg f "$a" '
        [.[] | select(.path == $d)] | length == 1 and (.[0] as $x
        | $x.size == 5368709120
        and $x.transport == "loop"
        and $x.logicalSectorSize == 512
        and $x.backingFile == $f
        and $x.partitionTable.type == "gpt"
        and ($x.partitions | map(.typeName)) == ["esp", "root-x86-64", "home"]
        and ($x.partitions | map(.label)) == ["ESP", "root-x86-64", "home"]
        and ($x.partitions | map(.size))[0:2] == [536870912, 2147483648]
        and ($x.partitions | map(.start)) == [1048576, 537919488, 2685403136]
        and $x.partitions[0].fstype == "vfat"
        and $x.partitions[1].fstype == "ext4"
        and ($x.partitions[1].flagNames | index("growfs")) != null
        and ($x.partitions[1].node == ($d + "p2"))
        and ($x.installed | any(test("Imprint Test OS 42")))
        and $x.usable == true)
' "$WORK/disks.json" >/dev/null || { jq --arg d "$deva" '.[] | select(.path == $d)' "$WORK/disks.json" >&2; fail "$deva is not listed as expected"; }
pass "$deva: size, transport, backing file, partitions, types, labels, flags and installed OS"

jq -e --arg d "$devb" '
        [.[] | select(.path == $d)] | length == 1 and (.[0] as $x
        | $x.size == 3670016000 and $x.partitionTable == null and $x.partitions == [] and $x.usable == true)
' "$WORK/disks.json" >/dev/null || { jq --arg d "$devb" '.[] | select(.path == $d)' "$WORK/disks.json" >&2; fail "$devb is not listed as expected"; }
pass "$devb: an empty 3500 MiB disk without a partition table"

# Partition sizes agree with stock sfdisk, disk sizes with the kernel's own view.
sfdisk --json "$deva" | jq -e --slurpfile me "$WORK/disks.json" --arg d "$deva" '
        [.partitiontable.partitions[].size * 512] == [$me[0][] | select(.path == $d) | .partitions[].size]' >/dev/null \
        || fail "partition sizes differ from sfdisk"

for d in "$deva" "$devb"; do
        want=$(blockdev --getsize64 "$d")
        got=$(jq -r --arg d "$d" '.[] | select(.path == $d) | .size' "$WORK/disks.json")
        [ "$want" = "$got" ] || fail "$d: size $got, blockdev says $want"
done
pass "sizes match blockdev --getsize64"

# The text listing shows the same disks.
"$IMPRINT" disks >"$WORK/disks.txt"
grep -q "^$deva " "$WORK/disks.txt" || fail "$deva missing from the text listing"
grep -q "Imprint Test OS 42" "$WORK/disks.txt" || fail "the installed OS is missing from the text listing"
pass "text listing"
