#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# imprint refuses disks it must not touch, says why, exits with the documented code, and leaves
# the disk bit-for-bit unchanged: mounted, claimed by another program, active swap, too small,
# and the disk holding the running system.
. "$(dirname "$0")/lib.sh"
need_root "loop devices and mounts"
need_tool jq


img=$WORK/used.img
truncate -s 4G "$img"
"$IMPRINT" apply --target "$img" --seed refusals --swap-size 256M --yes >/dev/null
attach "$img"
dev=$ATTACHED
sum=$(checksum "$img")

# Mounted: the root partition (p3: esp, swap, root) is mounted read-only.
mkdir "$WORK/mnt"
mount -o ro "${dev}p3" "$WORK/mnt"
MOUNTS+=("$WORK/mnt")
"$IMPRINT" disks --json "$dev" >"$WORK/disks.json"
jq -e '.[0].usable == false and (.[0].refusals | index("mounted"))' "$WORK/disks.json" >/dev/null || fail "disks does not flag the mount"
expect_exit 3 "$IMPRINT" apply --target "$dev" --yes
expect_stderr "is mounted on $WORK/mnt"
expect_exit 3 "$IMPRINT" plan --target "$dev"
expect_stderr "is mounted on"
# The image file behind the loop device is in use too.
expect_exit 3 "$IMPRINT" apply --target "$img" --yes
expect_stderr "$dev"
umount "$WORK/mnt"
[ "$(checksum "$img")" = "$sum" ] || fail "a refused apply changed the disk"
pass "mounted loop device refused (exit 3), disk unchanged"

# A plan made while the disk was free, applied while it is mounted, is refused at apply time.
"$IMPRINT" plan --target "$dev" --seed later --no-encrypt --plan-file "$WORK/plan.json" >/dev/null
mount -o ro "${dev}p3" "$WORK/mnt"
expect_exit 3 "$IMPRINT" apply --plan-file "$WORK/plan.json" --yes
expect_stderr "is mounted on"
umount "$WORK/mnt"
[ "$(checksum "$img")" = "$sum" ] || fail "a refused apply changed the disk"
pass "plan made before the mount is refused at apply time"

# Claimed: another program holds the disk open exclusively (as mkfs, a RAID or a VM would).
/usr/bin/python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL)
open(sys.argv[2], "w").close()
time.sleep(60)
' "$dev" "$WORK/claimed" &
holder=$!
for _ in $(seq 100); do [ -e "$WORK/claimed" ] && break; sleep 0.1; done
expect_exit 3 "$IMPRINT" apply --plan-file "$WORK/plan.json" --yes
expect_stderr "in use"
kill "$holder"; wait "$holder" 2>/dev/null || true
[ "$(checksum "$img")" = "$sum" ] || fail "a refused apply changed the disk"
pass "exclusively claimed loop device refused (exit 3), disk unchanged"

# Active swap on one of its partitions.
swapon "${dev}p2"
SWAPS+=("${dev}p2")
expect_exit 3 "$IMPRINT" apply --plan-file "$WORK/plan.json" --yes
expect_stderr "swap is active on ${dev}p2"
swapoff "${dev}p2"
[ "$(checksum "$img")" = "$sum" ] || fail "a refused apply changed the disk"
pass "loop device with active swap refused (exit 3), disk unchanged"

# Too small: a 2 GiB disk cannot hold a 1 GiB ESP and a 2 GiB root.
small=$WORK/small.img
truncate -s 2G "$small"
attach "$small"
sdev=$ATTACHED
ssum=$(checksum "$small")
expect_exit 4 "$IMPRINT" apply --target "$sdev" --yes
expect_stderr "$sdev is too small for this layout: it has 2 GiB"
expect_stderr "needs at least 3 GiB"
expect_exit 4 "$IMPRINT" apply --target "$small" --yes
[ "$(checksum "$small")" = "$ssum" ] || fail "a refused apply changed the small disk"
pass "too-small disk refused (exit 4) with the numbers, disk unchanged"

# The disk holding this system's root filesystem is never a target.
rootdisk=$("$IMPRINT" disks --json | jq -r '[.[] | select(.refusals | index("root-disk"))][0].path')
[ -n "$rootdisk" ] && [ "$rootdisk" != null ] || fail "disks does not flag the disk that holds /"
expect_exit 3 "$IMPRINT" plan --target "$rootdisk"
expect_stderr "running system"
pass "the disk holding / ($rootdisk) is refused"

# A partition is not a disk.
expect_exit 2 "$IMPRINT" plan --target "${dev}p1"
expect_stderr "is a partition of"
pass "a partition node is refused with the disk to use instead"

# Without --yes and without a terminal, nothing is written.
expect_exit 6 "$IMPRINT" apply --target "$dev" --no-encrypt </dev/null
expect_stderr "Pass --yes"
[ "$(checksum "$img")" = "$sum" ] || fail "an unconfirmed apply changed the disk"
pass "no confirmation, no write (exit 6)"
